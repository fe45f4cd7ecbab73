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
