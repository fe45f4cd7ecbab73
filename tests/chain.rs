//! The tamper-evident chain (`store::chain`): `verify` passes on an untouched database and
//! names the first batch changed in every tampered one; retention keeps it checkable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anemone::reading::{Quantity, Reading, SensorId, Timestamp};
use anemone::store::{ChainReport, LinkKind, Store, StoredReading, Unpublished};

use super::store::{opts, ts};

const DAY: i64 = 86_400_000;

/// A database of `batches` commits of `per` readings 10 s apart, starting at `start`.
/// Returns its path and the rows of each batch.
fn station(
    dir: &tempfile::TempDir,
    start: Timestamp,
    batches: usize,
    per: usize,
) -> (PathBuf, Vec<Vec<StoredReading>>) {
    let path = dir.path().join("chain.db");
    let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let m: SensorId = Arc::from("mast");
    let w: SensorId = Arc::from("vane");
    let mut out = Vec::new();
    let mut t = start;
    for b in 0..batches {
        let mut rows = Vec::new();
        for i in 0..per {
            let (sensor, q) = if i % 2 == 0 {
                (&m, Quantity::AirTemperature)
            } else {
                (&w, Quantity::WindDirection)
            };
            rows.push(Reading::new(t, sensor, q, (b * per + i) as f64 / 4.0));
            t += 10_000;
        }
        out.push(s.insert_batch(&rows).unwrap());
    }
    s.flush_aggregates().unwrap();
    (path, out)
}

fn verify(path: &Path) -> ChainReport {
    Store::open_read_only(path, chrono_tz::UTC)
        .unwrap()
        .verify_chain()
        .unwrap()
}

/// Runs `sql` on the file behind the store's back.
fn tamper(path: &Path, sql: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(sql).unwrap();
}

/// The batch `verify` names, with its words for the failure message.
fn named(path: &Path) -> i64 {
    let r = verify(path);
    let Some(t) = r.tampered.clone() else {
        panic!("tampering not found: {r:?}");
    };
    assert!(!t.what.is_empty());
    t.batch
}

#[test]
fn an_untouched_database_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    let r = verify(&path);
    assert_eq!(r.tampered, None, "{r:?}");
    // The empty genesis record, then one record per commit.
    assert_eq!(r.records, 6);
    assert_eq!(r.rows, 200);
    let head = r.head.unwrap();
    assert_eq!(head.batch, 5);
    assert_eq!(head.last_id, batches[4].last().unwrap().id);
    let s = Store::open_read_only(&path, chrono_tz::UTC).unwrap();
    assert_eq!(s.chain_head().unwrap(), Some(head));
}

#[test]
fn commits_without_readings_add_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 2, 10);
    let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    s.commit(&[], Some(batches[1][3].id)).unwrap();
    assert_eq!(s.chain_head().unwrap().unwrap().batch, 2);
}

#[test]
fn an_edited_value_is_named_by_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    let id = batches[2][7].id;
    tamper(
        &path,
        &format!("UPDATE readings SET value = value + 0.1 WHERE id = {id}"),
    );
    assert_eq!(
        named(&path),
        3,
        "commit 3 is batch 3 (batch 0 is the genesis)"
    );
}

#[test]
fn an_edited_timestamp_or_flag_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 3, 10);
    let id = batches[0][0].id;
    tamper(
        &path,
        &format!("UPDATE readings SET flags = 4 WHERE id = {id}"),
    );
    assert_eq!(named(&path), 1);
    tamper(
        &path,
        &format!("UPDATE readings SET flags = 0 WHERE id = {id}"),
    );
    assert_eq!(verify(&path).tampered, None, "put back, it verifies again");
    let id = batches[1][9].id;
    tamper(
        &path,
        &format!("UPDATE readings SET ts = ts + 1 WHERE id = {id}"),
    );
    assert_eq!(named(&path), 2);
}

#[test]
fn a_deleted_row_is_named_by_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    let id = batches[1][0].id;
    tamper(&path, &format!("DELETE FROM readings WHERE id = {id}"));
    assert_eq!(named(&path), 2);
    assert!(verify(&path).tampered.unwrap().what.contains("deleted"));
}

#[test]
fn an_inserted_row_is_named_by_the_batch_whose_range_it_falls_in() {
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    // Ids are contiguous: move batch 5's readings out of the way and put a row of our own
    // at the start of its range.
    let last = batches[3].last().unwrap().id;
    tamper(
        &path,
        &format!(
            "UPDATE readings SET id = id + 1000000 WHERE id > {last};
             INSERT INTO readings (id, ts, sensor, quantity, value, flags)
                 SELECT {last} + 1, ts, sensor, quantity, 30.0, 0 FROM readings WHERE id = {last};"
        ),
    );
    // Batch 4 now lacks its own rows and holds a stranger: named.
    assert_eq!(named(&path), 5);

    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 3, 10);
    let after = batches[2].last().unwrap().id + 1;
    tamper(
        &path,
        &format!("INSERT INTO readings (id, ts, sensor, quantity, value, flags) VALUES ({after}, 0, 1, 1, 5.0, 0)"),
    );
    let t = verify(&path).tampered.unwrap();
    assert_eq!(
        t.batch, 4,
        "a row after the head: the batch that would follow it"
    );
    assert!(t.what.contains("inserted"), "{}", t.what);
}

#[test]
fn a_row_inserted_into_an_id_gap_is_found() {
    // After a restart ids skip the rest of a reserved block: the gap belongs to the next
    // batch's range, so a row put there is found.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gap.db");
    let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let m: SensorId = Arc::from("mast");
    let t0 = ts("2026-06-01T00:00:00Z");
    let a = StoredReading {
        id: 10,
        reading: Reading::new(t0, &m, Quantity::AirTemperature, 1.0),
    };
    let b = StoredReading {
        id: 500,
        reading: Reading::new(t0 + 10_000, &m, Quantity::AirTemperature, 2.0),
    };
    s.commit_stored(&[a], None, None).unwrap();
    s.commit_stored(&[b], None, None).unwrap();
    drop(s);
    assert_eq!(verify(&path).tampered, None);
    tamper(&path, "INSERT INTO readings VALUES (200, 0, 1, 1, 9.0, 0)");
    assert_eq!(named(&path), 2);
}

#[test]
fn swapped_batches_are_named() {
    // The records of two batches swapped (renumbered).
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    tamper(
        &path,
        "UPDATE chain SET batch = -1 WHERE batch = 2;
         UPDATE chain SET batch = 2 WHERE batch = 3;
         UPDATE chain SET batch = 3 WHERE batch = -1;",
    );
    assert_eq!(named(&path), 2);

    // The readings of two batches of the same size swapped (each keeps the other's ids).
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    let (a, b) = (batches[1][0].id, batches[3][0].id);
    tamper(
        &path,
        &format!(
            "UPDATE readings SET id = id + 1000000 WHERE id >= {a} AND id < {a} + 40;
             UPDATE readings SET id = id - {b} + {a} WHERE id >= {b} AND id < {b} + 40;
             UPDATE readings SET id = id - 1000000 - {a} + {b} WHERE id >= 1000000;"
        ),
    );
    assert_eq!(named(&path), 2);
}

#[test]
fn a_truncated_end_is_named() {
    // The last batch's readings deleted: that batch is named.
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    let from = batches[4][0].id;
    tamper(&path, &format!("DELETE FROM readings WHERE id >= {from}"));
    assert_eq!(named(&path), 5);

    // Readings and their chain records deleted: the aggregates still count them.
    let dir = tempfile::tempdir().unwrap();
    let (path, batches) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    let from = batches[3][0].id;
    tamper(
        &path,
        &format!("DELETE FROM readings WHERE id >= {from}; DELETE FROM chain WHERE batch >= 4;"),
    );
    let t = verify(&path).tampered.unwrap();
    assert_eq!(t.batch, 4);
    assert!(t.what.contains("cut off"), "{}", t.what);
}

#[test]
fn a_deleted_record_in_the_middle_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = station(&dir, ts("2026-06-01T00:00:00Z"), 5, 40);
    tamper(&path, "DELETE FROM chain WHERE batch = 2");
    assert_eq!(named(&path), 2);
}

#[test]
fn retention_keeps_the_chain_checkable() {
    let dir = tempfile::tempdir().unwrap();
    let old = ts("2025-01-10T00:00:00Z");
    let (path, batches) = station(&dir, old, 6, 50);
    let now = old + 400 * DAY;
    let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let m: SensorId = Arc::from("mast");
    let young = s
        .insert_batch(&[Reading::new(now, &m, Quantity::AirTemperature, 3.0)])
        .unwrap();
    let head = s.chain_head().unwrap().unwrap();
    // The first three commits are older than the cutoff, the rest younger.
    let cutoff = batches[3][0].reading.ts;
    let deleted = s.expire(cutoff, Unpublished::Expire).unwrap();
    assert_eq!(deleted, 150, "whole batches 1–3");
    let anchor = s.chain_anchor().unwrap().unwrap();
    assert_eq!(anchor.kind, LinkKind::Anchor);
    assert_eq!(anchor.batch, 3);
    assert_eq!(anchor.last_id, batches[2].last().unwrap().id);
    assert_eq!(anchor.rows, 150);
    assert_eq!(s.chain_head().unwrap(), Some(head), "the head is untouched");
    // Everything old, the head's batch excepted.
    let deleted = s.expire(now + DAY, Unpublished::Expire).unwrap();
    assert_eq!(deleted, 150);
    let anchor = s.chain_anchor().unwrap().unwrap();
    assert_eq!(anchor.batch, 6);
    assert_eq!(anchor.rows, 300, "the anchor counts every removed reading");
    assert_eq!(s.readings(&Default::default()).unwrap(), young);
    drop(s);
    let r = verify(&path);
    assert_eq!(r.tampered, None, "{r:?}");
    assert_eq!(r.anchor, Some(6));
    assert_eq!(r.head.unwrap(), head);

    // A reading put back into the removed range is found, as is an edit after the anchor.
    tamper(
        &path,
        &format!(
            "INSERT INTO readings VALUES ({}, 0, 1, 1, 9.0, 0)",
            batches[0][0].id
        ),
    );
    assert_eq!(named(&path), 6);
    tamper(
        &path,
        &format!("DELETE FROM readings WHERE id = {}", batches[0][0].id),
    );
    assert_eq!(verify(&path).tampered, None);
    tamper(
        &path,
        &format!("UPDATE readings SET value = 4 WHERE id = {}", young[0].id),
    );
    assert_eq!(named(&path), 7);
}

#[test]
fn retention_removes_no_partly_young_or_unacknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let old = ts("2025-01-10T00:00:00Z");
    let (path, batches) = station(&dir, old, 4, 50);
    let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    // Cutoff inside batch 2: only batch 1 is wholly older.
    let deleted = s
        .expire(batches[1][10].reading.ts, Unpublished::Expire)
        .unwrap();
    assert_eq!(deleted, 50);
    // Acknowledged only into batch 2: it stays, although old.
    s.set_publish_cursor(batches[1][20].id).unwrap();
    let deleted = s.expire(old + 400 * DAY, Unpublished::Keep).unwrap();
    assert_eq!(deleted, 0);
    drop(s);
    assert_eq!(verify(&path).tampered, None);
}

#[test]
fn the_chain_starts_over_the_readings_of_an_older_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // A version-3 database (before the chain), filled by hand.
        let c = rusqlite::Connection::open(&path).unwrap();
        let mut sql = String::from(
            "CREATE TABLE sensors (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL, hardware_id TEXT);
            CREATE TABLE readings (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
                sensor INTEGER NOT NULL, quantity INTEGER NOT NULL, value REAL, flags INTEGER NOT NULL);
            CREATE TABLE aggregates (resolution INTEGER NOT NULL, start INTEGER NOT NULL,
                sensor INTEGER NOT NULL, quantity INTEGER NOT NULL, end INTEGER NOT NULL,
                count INTEGER NOT NULL, flagged INTEGER NOT NULL, min REAL, min_ts INTEGER,
                max REAL, max_ts INTEGER, sum REAL NOT NULL, first_id INTEGER NOT NULL,
                last_id INTEGER NOT NULL, PRIMARY KEY (resolution, start, sensor, quantity)) WITHOUT ROWID;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
            CREATE TABLE calibrations (id INTEGER PRIMARY KEY, sensor INTEGER NOT NULL,
                ts INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL);
            CREATE TABLE imported_rows (source TEXT NOT NULL, row_id INTEGER NOT NULL,
                PRIMARY KEY (source, row_id)) WITHOUT ROWID;
            PRAGMA application_id = 1097745773;
            PRAGMA user_version = 3;
            INSERT INTO sensors VALUES (1, 'probe', 'ds18b20', NULL);
            BEGIN;",
        );
        for i in 1..=25_000i64 {
            sql.push_str(&format!(
                "INSERT INTO readings VALUES ({i}, {}, 1, 15, {}, 0);",
                1_780_000_000_000 + i * 1000,
                i as f64 / 8.0
            ));
        }
        sql.push_str("COMMIT;");
        c.execute_batch(&sql).unwrap();
    }
    let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let head = s.chain_head().unwrap().unwrap();
    assert_eq!(
        (head.batch, head.last_id),
        (2, 25_000),
        "three genesis records"
    );
    assert_eq!(s.chain_link(0).unwrap().unwrap().kind, LinkKind::Genesis);
    let m: SensorId = Arc::from("probe");
    s.insert_batch(&[Reading::new(
        1_790_000_000_000,
        &m,
        Quantity::WaterTemperature,
        1.0,
    )])
    .unwrap();
    drop(s);
    // Opening again does not start another chain.
    let s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    assert_eq!(s.chain_head().unwrap().unwrap().batch, 3);
    drop(s);
    let r = verify(&path);
    assert_eq!(r.tampered, None, "{r:?}");
    assert_eq!(r.rows, 25_001);
    tamper(&path, "UPDATE readings SET value = 0 WHERE id = 12345");
    assert_eq!(named(&path), 1);
    // Deleting every record does not make the chain start afresh.
    tamper(
        &path,
        "UPDATE readings SET value = 12345.0 / 8 WHERE id = 12345; DELETE FROM chain;",
    );
    drop(Store::open(&path, &opts(chrono_tz::UTC)).unwrap());
    assert_eq!(named(&path), 0);
}

/// Data minimisation: the position leaves the station with `[station] position_decimals`.
#[test]
fn the_position_is_published_with_the_configured_decimals() {
    let value = |r: &Reading, p: &anemone::reading::Precision| {
        serde_json::to_value(r.json_in(p)).unwrap()["value"].clone()
    };
    let text = "[station]\nid = \"school\"\nlatitude = 51.477912\nlongitude = -0.001475\n";
    let cfg = anemone::config::Config::from_toml(text, "test").unwrap();
    assert_eq!(cfg.station.position_decimals, 3, "the documented default");
    let meta = anemone::mqtt::payload::meta_payload(&cfg, &Default::default(), None);
    assert_eq!(meta["location"]["latitude"], 51.478);
    assert_eq!(meta["location"]["longitude"], -0.001);
    let gps: SensorId = Arc::from("gps");
    let fix = Reading::new(0, &gps, Quantity::Latitude, 51.477912);
    let p = cfg.precision();
    assert_eq!(value(&fix, &p), 51.478);
    let other = Reading::new(0, &gps, Quantity::AirTemperature, 12.3456);
    assert_eq!(
        value(&other, &p),
        12.35,
        "other quantities keep their decimals"
    );

    let one = format!("{text}position_decimals = 1\n");
    let cfg = anemone::config::Config::from_toml(&one, "test").unwrap();
    let meta = anemone::mqtt::payload::meta_payload(&cfg, &Default::default(), None);
    assert_eq!(meta["location"]["latitude"], 51.5);
    assert_eq!(value(&fix, &cfg.precision()), 51.5);
    let (_, problems) = anemone::config::validate_text(&format!("{text}position_decimals = 9\n"));
    assert!(
        problems
            .iter()
            .any(|p| p.key == "station.position_decimals"),
        "{problems:?}"
    );
}

/// `anemone keygen` writes a 0600 key once and prints its public key; `anemone run` with
/// a key file others may read stops at the start, naming the file and the `chmod` fix,
/// and `anemone validate` reports it under `station.signing_key`.
#[test]
fn keygen_writes_a_private_key_and_a_readable_one_stops_the_station() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chain.key");
    let out = super::cli::bin()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let public = anemone::signing::StationKey::load(&key)
        .unwrap()
        .public_key_hex();
    assert!(printed.contains(&public), "{printed}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Never replaced.
    let again = super::cli::bin()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = dir.path().join("station.toml");
    std::fs::write(
        &cfg,
        format!(
            "[station]\nsigning_key = \"{}\"\n\n[hal]\nsimulate = true\n\n[[sensor]]\ntype = \"bme280\"\nid = \"air\"\n\n[web]\nenabled = false\n\n[mqtt]\nbroker = \"mqtt://127.0.0.1:9\"\n",
            key.display()
        ),
    )
    .unwrap();
    let fix = format!("chmod 600 {}", key.display());
    let validate = super::cli::bin()
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&validate.stdout).into_owned()
        + &String::from_utf8_lossy(&validate.stderr);
    assert!(!validate.status.success(), "{text}");
    assert!(
        text.contains("station.signing_key") && text.contains(&fix),
        "{text}"
    );
    let run = super::cli::bin()
        .arg("--db")
        .arg(dir.path().join("station.db"))
        .args([
            "run",
            "--simulate",
            "--speed",
            "max",
            "--duration",
            "1m",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(!run.status.success(), "{text}");
    assert!(text.contains(&fix), "{text}");
}

/// The page shows the position as MQTT does: `/api/history` and the track chart read
/// latitude and longitude through the source, capped at `[station] position_decimals`;
/// the store keeps them exact.
#[tokio::test]
async fn the_page_shows_positions_with_the_configured_decimals() {
    use anemone::store::Resolution;
    use anemone::web::source::{HistorySource, SqliteSource};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anemone.db");
    let gps: SensorId = Arc::from("gps");
    let t0 = ts("2026-06-01T12:00:00Z");
    {
        let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
        s.insert_batch(&[
            Reading::new(t0, &gps, Quantity::Latitude, -16.920334),
            Reading::new(t0, &gps, Quantity::Longitude, 145.772186),
            Reading::new(t0, &gps, Quantity::SpeedOverGround, 0.123456),
        ])
        .unwrap();
    }
    let text = "[station]\nid = \"buoy\"\nposition_decimals = 2\n";
    let cfg = anemone::config::Config::from_toml(text, "test").unwrap();
    let exact = SqliteSource::new("buoy", path.clone(), chrono_tz::UTC);
    let page = SqliteSource::new("buoy", path, chrono_tz::UTC).with_precision(cfg.precision());
    let values = |s: anemone::web::source::Series| -> Vec<f64> {
        s.points.iter().filter_map(|p| p.value).collect()
    };
    let (from, to) = (t0 - 60_000, t0 + 60_000);
    for (q, rounded, stored) in [
        (Quantity::Latitude, -16.92, -16.920334),
        (Quantity::Longitude, 145.77, 145.772186),
    ] {
        let shown = page
            .history(None, q, from, to, Resolution::Raw)
            .await
            .unwrap();
        assert_eq!(values(shown), vec![rounded], "{q}");
        let kept = exact
            .history(None, q, from, to, Resolution::Raw)
            .await
            .unwrap();
        assert_eq!(values(kept), vec![stored], "{q}: the store keeps it exact");
    }
    let speed = page
        .history(None, Quantity::SpeedOverGround, from, to, Resolution::Raw)
        .await
        .unwrap();
    assert_eq!(values(speed), vec![0.123456], "only the position is capped");
}
