//! Tamper evidence across the network: the chain heads a station publishes on
//! `…/chain` are kept by the collector, and a station database edited after publication
//! no longer matches them (`anemone-collector verify`), even where the editor rebuilt the
//! station's own chain so that `anemone verify` passes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anemone::config::Synchronous;
use anemone::reading::{Quantity, Reading, SensorId};
use anemone::store::{Store, StoreOptions};
use anemone_collector::testkit::MosquittoOptions;
use anemone_collector::verify;

use crate::support::*;

/// The highest batch received from `station`, once no new head arrived for a second.
async fn settled_head(client: &tokio_postgres::Client, station: &str) -> (i64, usize) {
    let end = Instant::now() + Duration::from_secs(20);
    let mut last = (-1, 0);
    loop {
        let row = client
            .query_one(
                "SELECT coalesce(max(batch), -1), count(*) FROM chain_heads WHERE station = $1",
                &[&station],
            )
            .await
            .unwrap();
        let now: (i64, usize) = (row.get(0), row.get::<_, i64>(1) as usize);
        if (now == last && now.0 >= 0) || Instant::now() > end {
            return now;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn collector_verify(args: &[&str], config: &Path) -> (bool, String) {
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("verify")
        .args(args)
        .output()
        .expect("run anemone-collector verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_database_edited_after_publication_no_longer_matches() {
    let Some(net) = Net::start(MosquittoOptions::default()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let _collector = net.collector("collector-chain", None, "");
    let cfg = station_config("chained", &net.broker.url(), dir.path(), None, "");
    let db = run_station(cfg, start_ago(2), Some(120.0), 10 * 60_000).await;
    let client = net.client().await;
    let (published, count) = settled_head(&client, "chained").await;
    assert!(
        published >= 1 && count >= 2,
        "heads received: {count}, up to batch {published}"
    );
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, net.collector_config("verify", None, "")).unwrap();

    // Untouched: the database matches every head, and the heads agree with each other.
    let v = verify::run(&client, Some(&db), None).await.unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].station, "chained",
        "the station id recorded in the database"
    );
    assert_eq!(v[0].mismatch, None, "{}", v[0]);
    assert_eq!(v[0].heads, count);
    let (ok, out) = collector_verify(&["--db", &db.display().to_string()], &config);
    assert!(ok, "{out}");
    assert!(out.contains("station chained: ok"), "{out}");
    let (ok, out) = collector_verify(&[], &config);
    assert!(ok, "{out}");

    // Rewritten: the last published batch's readings replaced and the chain rebuilt over
    // them, so the station's own check passes.
    let link = {
        let s = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
        s.chain_link(published)
            .unwrap()
            .expect("the published batch is stored")
    };
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(&format!(
            "DELETE FROM readings WHERE id >= {}; DELETE FROM chain WHERE batch >= {published};",
            link.first_id
        ))
        .unwrap();
    }
    let opts = StoreOptions {
        synchronous: Synchronous::Normal,
        tz: chrono_tz::UTC,
        vfs: None,
    };
    let mut s = Store::open(&db, &opts).unwrap();
    let air: SensorId = Arc::from("air");
    s.insert_batch(&[Reading::new(
        start_ago(1),
        &air,
        Quantity::AirTemperature,
        19.5,
    )])
    .unwrap();
    assert_eq!(s.chain_head().unwrap().unwrap().batch, published);
    assert_eq!(
        s.verify_chain().unwrap().tampered,
        None,
        "the local chain was rebuilt"
    );
    drop(s);
    let v = verify::run(&client, Some(&db), None).await.unwrap();
    let m = v[0].mismatch.clone().expect("the rewrite is found");
    assert_eq!(m.batch, published, "{}", v[0]);
    assert!(m.what.contains("changed after publication"), "{}", m.what);
    let (ok, out) = collector_verify(&["--db", &db.display().to_string()], &config);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "station chained: batch {published} does not match"
        )),
        "{out}"
    );

    // A head received twice with different hashes is found from the heads alone.
    client
        .execute(
            "INSERT INTO chain_heads (station, batch, last_id, hash, received_at)
             SELECT station, batch, last_id, repeat('0', 64), now() FROM chain_heads
             WHERE station = 'chained' AND batch = (SELECT min(batch) FROM chain_heads)",
            &[],
        )
        .await
        .unwrap();
    let first: i64 = client
        .query_one("SELECT min(batch) FROM chain_heads", &[])
        .await
        .unwrap()
        .get(0);
    let v = verify::run(&client, None, Some("chained")).await.unwrap();
    assert_eq!(
        v[0].mismatch.as_ref().map(|m| m.batch),
        Some(first),
        "{}",
        v[0]
    );
}

/// A signing station: the retained `…/chain` heads carry signatures that verify with the
/// public key of its retained `meta`; the collector keeps that first key, and
/// `anemone-collector verify` reports a head whose signature no longer matches and a head
/// signed with another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_heads_verify_with_meta_key_and_bad_ones_are_reported() {
    let Some(net) = Net::start(MosquittoOptions::default()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let _collector = net.collector("collector-signed", None, "");
    let mut cfg = station_config("signer", &net.broker.url(), dir.path(), None, "");
    let key_path = dir.path().join("chain.key");
    cfg.station.signing_key = Some(key_path.clone());
    run_station(cfg, start_ago(2), Some(120.0), 10 * 60_000).await;
    // Created at the first start, readable by the station's user only.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let public = anemone::signing::StationKey::load(&key_path)
        .unwrap()
        .public_key_hex();

    let client = net.client().await;
    let (published, count) = settled_head(&client, "signer").await;
    assert!(published >= 1 && count >= 2, "heads received: {count}");
    // meta's public key (what the broker retained) is the station's.
    let end = Instant::now() + Duration::from_secs(20);
    let meta_key: String = loop {
        let row = client
            .query_opt(
                "SELECT metadata->>'public_key' FROM stations WHERE id = 'signer'",
                &[],
            )
            .await
            .unwrap();
        if let Some(k) = row.and_then(|r| r.get::<_, Option<String>>(0)) {
            break k;
        }
        assert!(Instant::now() < end, "no meta with a public key arrived");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(meta_key, public);
    let first = anemone_collector::db::station_key(&client, "signer")
        .await
        .unwrap();
    assert_eq!(first.as_deref(), Some(public.as_str()));
    // Every head received is signed and verifies with meta's key.
    let heads = verify::stored_heads(&client, "signer").await.unwrap();
    assert_eq!(heads.len(), count);
    for h in &heads {
        let sig = h.signature.as_deref().expect("every head is signed");
        assert!(
            anemone::signing::verify_head(&meta_key, sig, "signer", h.batch, h.last_id, &h.hash),
            "batch {}",
            h.batch
        );
    }
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, net.collector_config("verify", None, "")).unwrap();
    let (ok, out) = collector_verify(&["--station", "signer"], &config);
    assert!(ok, "{out}");

    // A head whose hash was changed after signing: its signature no longer verifies.
    client
        .execute(
            "UPDATE chain_heads SET hash = repeat('a', 64)
             WHERE station = 'signer' AND batch = $1",
            &[&published],
        )
        .await
        .unwrap();
    let v = verify::run(&client, None, Some("signer")).await.unwrap();
    assert!(!v[0].ok());
    assert_eq!(v[0].bad_signatures.len(), 1, "{}", v[0]);
    assert!(
        v[0].bad_signatures[0].contains(&format!("batch {published}: BAD SIGNATURE")),
        "{}",
        v[0]
    );
    let (ok, out) = collector_verify(&["--station", "signer"], &config);
    assert!(!ok, "{out}");
    assert!(out.contains("BAD SIGNATURE"), "{out}");

    // A head signed (validly) with another key is reported, not accepted.
    let other = anemone::signing::StationKey::generate(&dir.path().join("other.key")).unwrap();
    let hash = "b".repeat(64);
    let sig = other.sign_head("signer", published + 1, 1_000_000, &hash);
    client
        .execute(
            "INSERT INTO chain_heads (station, batch, last_id, hash, received_at, public_key, signature)
             VALUES ('signer', $1, 1000000, $2, now(), $3, $4)",
            &[&(published + 1), &hash, &other.public_key_hex(), &sig],
        )
        .await
        .unwrap();
    let v = verify::run(&client, None, Some("signer")).await.unwrap();
    assert!(
        v[0].bad_signatures
            .iter()
            .any(|b| b.contains("not the key") && b.contains(&other.public_key_hex())),
        "{}",
        v[0]
    );
}
