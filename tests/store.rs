//! The SQLite store: round trips, the batched writer on a virtual clock, restarts,
//! aggregates (incl. DST days), retention, migration, refusals and a full disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anemone::clock::Clock;
use anemone::config::{Span, StorageConfig, Synchronous};
use anemone::reading::{Flags, Quantity, Reading, SensorId, Timestamp};
use anemone::store::writer::{run_writer, WriterConfig, WriterMsg, WriterStats};
use anemone::store::{
    Query, Resolution, Store, StoreError, StoreOptions, StoredReading, Unpublished,
};
use chrono::NaiveDate;
use chrono_tz::Tz;
use rusqlite::OptionalExtension;
use tokio::sync::{mpsc, oneshot};

pub fn ts(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("test timestamp")
        .timestamp_millis()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

pub fn opts(tz: Tz) -> StoreOptions {
    StoreOptions {
        synchronous: Synchronous::Normal,
        tz,
        vfs: None,
    }
}

fn sensor(name: &str) -> SensorId {
    Arc::from(name)
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("anemone.db")
}

#[test]
fn insert_and_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    s.register_sensor("water", "ds18b20", Some("28-0000075d3b2a"))
        .unwrap();
    let mast = sensor("mast");
    let water = sensor("water");
    let t0 = ts("2026-06-01T12:00:00Z");
    let mut bad = Reading::new(t0 + 2_000, &mast, Quantity::AirTemperature, 99.0);
    bad.flags = Flags::OUT_OF_RANGE;
    let batch = vec![
        Reading::new(t0, &mast, Quantity::AirTemperature, 21.5),
        Reading::new(t0 + 1_000, &water, Quantity::WaterTemperature, 14.25),
        bad,
        Reading::sensor_error(t0 + 3_000, &mast, Quantity::RelativeHumidity),
    ];
    let stored = s.insert_batch(&batch).unwrap();
    assert_eq!(stored.len(), 4);
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
    let back = s.readings(&Query::default()).unwrap();
    assert_eq!(back, stored);
    assert_eq!(
        back.iter().map(|r| r.reading.clone()).collect::<Vec<_>>(),
        batch
    );

    let only_mast = Query {
        sensor: Some("mast".into()),
        ..Query::default()
    };
    assert_eq!(s.count_readings(&only_mast).unwrap(), 3);
    let window = Query {
        from: Some(t0 + 1_000),
        to: Some(t0 + 3_000),
        ..Query::default()
    };
    let got: Vec<i64> = s.readings(&window).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(got, vec![stored[1].id, stored[2].id]);
    let nobody = Query {
        sensor: Some("nobody".into()),
        ..Query::default()
    };
    assert!(s.readings(&nobody).unwrap().is_empty());

    assert_eq!(
        s.unpublished(stored[1].id, 10).unwrap(),
        stored[2..].to_vec()
    );
    assert_eq!(s.last_reading_ts().unwrap(), Some(t0 + 3_000));
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let sensors = s.sensors().unwrap();
    assert!(sensors.contains(&(
        "water".into(),
        "ds18b20".into(),
        Some("28-0000075d3b2a".into())
    )));
    assert!(sensors.contains(&("mast".into(), "unknown".into(), None)));
}

#[test]
fn aggregates_keep_extremes_with_times_and_skip_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let m = sensor("mast");
    let t0 = ts("2026-06-01T12:00:00Z");
    let mut spike = Reading::new(t0 + 20_000, &m, Quantity::AirTemperature, 80.0);
    spike.flags = Flags::SPIKE;
    s.insert_batch(&[
        Reading::new(t0, &m, Quantity::AirTemperature, 20.0),
        Reading::new(t0 + 10_000, &m, Quantity::AirTemperature, 18.0),
        spike,
        Reading::sensor_error(t0 + 30_000, &m, Quantity::AirTemperature),
        Reading::new(t0 + 70_000, &m, Quantity::AirTemperature, 25.0),
    ])
    .unwrap();
    let check = |s: &Store| {
        let minutes = s.aggregates(Resolution::Minute, &Query::default()).unwrap();
        assert_eq!(minutes.len(), 2);
        let a = &minutes[0];
        assert_eq!((a.start, a.end), (t0, t0 + 60_000));
        assert_eq!((a.count, a.flagged), (2, 2));
        assert_eq!(a.min, Some((18.0, t0 + 10_000)));
        assert_eq!(a.max, Some((20.0, t0)));
        assert_eq!(a.mean(), Some(19.0));
        let hours = s.aggregates(Resolution::Hour, &Query::default()).unwrap();
        assert_eq!(hours.len(), 1);
        assert_eq!(hours[0].max, Some((25.0, t0 + 70_000)));
        assert_eq!(hours[0].count, 3);
        let day = s.day_summary(date("2026-06-01")).unwrap();
        assert_eq!(day.len(), 1);
        assert_eq!(day[0].flagged, 2);
        assert_eq!(day[0].sum, 63.0);
        assert_eq!(s.days().unwrap(), vec![date("2026-06-01")]);
        // A range that starts inside the second minute sees only it.
        let late = Query {
            from: Some(t0 + 65_000),
            ..Query::default()
        };
        assert_eq!(s.aggregates(Resolution::Minute, &late).unwrap().len(), 1);
    };
    check(&s); // from memory
    s.flush_aggregates().unwrap();
    check(&s); // persisted
    let ro = Store::open_read_only(&db(&dir), chrono_tz::UTC).unwrap();
    check(&ro);
    assert!(matches!(
        s.aggregates(Resolution::Raw, &Query::default()),
        Err(StoreError::InvalidQuery(_))
    ));
}

#[test]
fn restart_loses_nothing_and_rebuilds_todays_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let tz = chrono_tz::Europe::London;
    let m = sensor("mast");
    let t0 = ts("2026-06-01T06:00:00Z");
    {
        let mut s = Store::open(&db(&dir), &opts(tz)).unwrap();
        let first: Vec<Reading> = (0..100)
            .map(|i| Reading::new(t0 + i * 60_000, &m, Quantity::AirTemperature, i as f64))
            .collect();
        s.insert_batch(&first).unwrap();
        // Persist part of the day, then store more and "crash" (no flush).
        s.flush_aggregates().unwrap();
        let second: Vec<Reading> = (100..200)
            .map(|i| Reading::new(t0 + i * 60_000, &m, Quantity::AirTemperature, i as f64))
            .collect();
        s.insert_batch(&second).unwrap();
    }
    let s = Store::open(&db(&dir), &opts(tz)).unwrap();
    assert_eq!(s.count_readings(&Query::default()).unwrap(), 200);
    let day = s.day_summary(date("2026-06-01")).unwrap();
    assert_eq!(day.len(), 1);
    assert_eq!(day[0].count, 200, "no reading lost or counted twice");
    assert_eq!(day[0].max, Some((199.0, t0 + 199 * 60_000)));
    assert_eq!(day[0].min, Some((0.0, t0)));
    // The same from a read-only store (export/stats while the daemon runs).
    let ro = Store::open_read_only(&db(&dir), tz).unwrap();
    assert_eq!(ro.day_summary(date("2026-06-01")).unwrap(), day);
    let hours = ro.aggregates(Resolution::Hour, &Query::default()).unwrap();
    assert_eq!(hours.iter().map(|h| h.count).sum::<u64>(), 200);
}

#[test]
fn london_dst_days_have_23_and_25_hours() {
    let dir = tempfile::tempdir().unwrap();
    let tz = chrono_tz::Europe::London;
    let mut s = Store::open(&db(&dir), &opts(tz)).unwrap();
    let m = sensor("mast");
    // One reading at the top of every UTC hour from 27 March to 27 October.
    let start = ts("2026-03-27T00:00:00Z");
    let end = ts("2026-10-27T00:00:00Z");
    let mut batch = Vec::new();
    let mut t = start;
    while t < end {
        batch.push(Reading::new(t, &m, Quantity::Rain, 1.0));
        t += 3_600_000;
    }
    s.insert_batch(&batch).unwrap();
    s.flush_aggregates().unwrap();
    for (day, hours, start) in [
        ("2026-03-28", 24, "2026-03-28T00:00:00Z"),
        ("2026-03-29", 23, "2026-03-29T00:00:00Z"),
        ("2026-03-30", 24, "2026-03-29T23:00:00Z"),
        ("2026-10-25", 25, "2026-10-24T23:00:00Z"),
        ("2026-10-26", 24, "2026-10-26T00:00:00Z"),
    ] {
        let sum = s.day_summary(date(day)).unwrap();
        assert_eq!(sum.len(), 1, "{day}");
        assert_eq!(sum[0].count, hours, "{day}");
        assert_eq!(sum[0].sum, hours as f64, "{day}: rain total");
        assert_eq!(sum[0].start, ts(start), "{day}");
        assert_eq!(sum[0].end - sum[0].start, hours as i64 * 3_600_000, "{day}");
    }
    let days = s.days().unwrap();
    assert_eq!(days.first(), Some(&date("2026-03-27")));
    assert_eq!(days.last(), Some(&date("2026-10-26")));
}

#[test]
fn retention_deletes_old_raw_rows_and_keeps_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let m = sensor("mast");
    let old = ts("2025-01-10T00:00:00Z");
    let now = ts("2026-03-01T00:00:00Z");
    let old_rows: Vec<Reading> = (0..5_000)
        .map(|i| {
            Reading::new(
                old + i * 10_000,
                &m,
                Quantity::AirPressure,
                1000.0 + i as f64,
            )
        })
        .collect();
    let new_rows: Vec<Reading> = (0..100)
        .map(|i| Reading::new(now + i * 10_000, &m, Quantity::AirPressure, 990.0))
        .collect();
    s.insert_batch(&old_rows).unwrap();
    s.insert_batch(&new_rows).unwrap();
    let before = s.day_summary(date("2025-01-10")).unwrap();
    // Nothing was acknowledged by an MQTT broker: with MQTT configured nothing expires
    // (this test used to assert the deletion of these 5 000 unpublished readings).
    assert_eq!(
        s.expire(now - 365 * 86_400_000, Unpublished::Keep).unwrap(),
        0
    );
    assert_eq!(s.count_readings(&Query::default()).unwrap(), 5_100);
    // Without MQTT, or once acknowledged, they go.
    let deleted = s
        .expire(now - 365 * 86_400_000, Unpublished::Expire)
        .unwrap();
    assert_eq!(deleted, 5_000);
    assert_eq!(s.count_readings(&Query::default()).unwrap(), 100);
    assert_eq!(s.day_summary(date("2025-01-10")).unwrap(), before);
    assert_eq!(before[0].count, 5_000);
    assert_eq!(
        s.expire(now - 365 * 86_400_000, Unpublished::Expire)
            .unwrap(),
        0
    );
    drop(s);
    let s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    assert_eq!(s.day_summary(date("2025-01-10")).unwrap(), before);
}

/// The first schema, written by hand as version 1 of Anemone created it.
const SCHEMA_V1: &str = r#"
    CREATE TABLE sensors (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL, hardware_id TEXT);
    CREATE TABLE readings (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
        sensor INTEGER NOT NULL, quantity INTEGER NOT NULL, value REAL, flags INTEGER NOT NULL);
    CREATE TABLE aggregates (resolution INTEGER NOT NULL, start INTEGER NOT NULL,
        sensor INTEGER NOT NULL, quantity INTEGER NOT NULL, end INTEGER NOT NULL,
        count INTEGER NOT NULL, flagged INTEGER NOT NULL, min REAL, min_ts INTEGER,
        max REAL, max_ts INTEGER, sum REAL NOT NULL, first_id INTEGER NOT NULL,
        last_id INTEGER NOT NULL, PRIMARY KEY (resolution, start, sensor, quantity)) WITHOUT ROWID;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
    PRAGMA application_id = 1097745773;
    PRAGMA user_version = 1;
"#;

#[test]
fn migrates_a_version_1_database_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(SCHEMA_V1).unwrap();
        c.execute_batch(
            "INSERT INTO sensors VALUES (1, 'probe', 'ds18b20', '28-00000abc');
             INSERT INTO readings VALUES (1, 1780000000000, 1, 15, 12.5, 0);
             INSERT INTO readings VALUES (2, 1780000060000, 1, 15, 13.5, 0);
             INSERT INTO meta VALUES ('publish_cursor', 1);",
        )
        .unwrap();
    }
    let s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let rows = s.readings(&Query::default()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].reading.value, Some(13.5));
    assert_eq!(rows[1].reading.quantity, Quantity::WaterTemperature);
    assert_eq!(&*rows[0].reading.sensor, "probe");
    assert_eq!(s.publish_cursor().unwrap(), 1);
    let day = s.day_summary(anemone::store::local_date(chrono_tz::UTC, 1780000000000));
    assert_eq!(
        day.unwrap()[0].count,
        2,
        "aggregates rebuilt from the raw rows"
    );
    drop(s);
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, anemone::store::SCHEMA_VERSION);
    assert_eq!(v, 6);
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('calibrations', 'imported_rows')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2);
}

fn fingerprint(path: &Path) -> (u64, std::time::SystemTime, bool, bool) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).unwrap().hash(&mut h);
    let bytes = h.finish();
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let wal = path.with_extension("db-wal").exists();
    let shm = path.with_extension("db-shm").exists();
    (bytes, mtime, wal, shm)
}

fn assert_refused(path: &Path, check: impl Fn(&StoreError) -> bool) {
    let before = fingerprint(path);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let e = Store::open(path, &opts(chrono_tz::UTC))
        .err()
        .expect("must be refused");
    assert!(check(&e), "unexpected error {e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    let e2 = Store::open_read_only(path, chrono_tz::UTC)
        .err()
        .expect("must be refused read-only too");
    assert!(check(&e2), "unexpected error {e2:?}");
    assert_eq!(fingerprint(path), before, "the file must not change");
}

#[test]
fn refuses_a_foreign_sqlite_database_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA application_id = 305419896;
             CREATE TABLE photos (id INTEGER PRIMARY KEY, file TEXT);
             INSERT INTO photos (file) VALUES ('cat.jpg');",
        )
        .unwrap();
    }
    assert_refused(&path, |e| matches!(e, StoreError::Foreign { .. }));
}

#[test]
fn refuses_a_foreign_database_without_application_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE readings (x); INSERT INTO readings VALUES (1);")
            .unwrap();
    }
    assert_refused(&path, |e| matches!(e, StoreError::Foreign { .. }));
}

#[test]
fn refuses_text_corrupt_and_newer_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "[station]\nid = \"oops, a config file\"\n").unwrap();
    assert_refused(&text, |e| matches!(e, StoreError::NotADatabase { .. }));

    // An Anemone database whose schema page was overwritten.
    let corrupt = dir.path().join("corrupt.db");
    drop(Store::open(&corrupt, &opts(chrono_tz::UTC)).unwrap());
    let mut bytes = std::fs::read(&corrupt).unwrap();
    for (i, b) in bytes.iter_mut().enumerate().take(4096).skip(100) {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1];
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    // Read-only commands refuse it and change nothing. The daemon used to refuse it too;
    // since issue 13 it moves it aside, untouched, and starts a new file (the test
    // `corrupt_database_is_kept_aside_untouched_and_a_new_one_started`).
    let before = fingerprint(&corrupt);
    let e = Store::open_read_only(&corrupt, chrono_tz::UTC).err();
    assert!(matches!(e, Some(StoreError::Corrupt { .. })), "{e:?}");
    assert_eq!(fingerprint(&corrupt), before, "the file must not change");
    let hash = file_hash(&corrupt);
    drop(Store::open(&corrupt, &opts(chrono_tz::UTC)).unwrap());
    let kept = kept_aside(&corrupt);
    assert_eq!(kept.len(), 1);
    assert_eq!(file_hash(&kept[0]), hash);

    let newer = dir.path().join("newer.db");
    {
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.execute_batch(&format!(
            "PRAGMA application_id = {}; PRAGMA user_version = 99; CREATE TABLE future (x);",
            anemone::store::APPLICATION_ID
        ))
        .unwrap();
    }
    assert_refused(&newer, |e| {
        matches!(
            e,
            StoreError::TooNew {
                found: 99,
                supported: anemone::store::SCHEMA_VERSION,
                ..
            }
        )
    });
}

#[test]
fn creates_a_missing_or_empty_file_and_read_only_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let e = Store::open_read_only(&path, chrono_tz::UTC).err();
    assert!(matches!(e, Some(StoreError::Missing { .. })));
    assert!(!path.exists());
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        Store::open_read_only(&path, chrono_tz::UTC).err(),
        Some(StoreError::Missing { .. })
    ));
    drop(Store::open(&path, &opts(chrono_tz::UTC)).unwrap());
    drop(Store::open(&path, &opts(chrono_tz::UTC)).unwrap());
    let ro = Store::open_read_only(&path, chrono_tz::UTC).unwrap();
    assert_eq!(ro.count_readings(&Query::default()).unwrap(), 0);
}

#[test]
fn full_disk_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    s.set_max_pages(1).unwrap();
    let m = sensor("mast");
    let batch: Vec<Reading> = (0..2_000)
        .map(|i| Reading::new(i, &m, Quantity::WindSpeed, 3.0))
        .collect();
    let e = s.insert_batch(&batch).expect_err("disk full");
    assert!(matches!(e, StoreError::DiskFull { .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("free space"));
    assert_eq!(s.count_readings(&Query::default()).unwrap(), 0);
    s.set_max_pages(1_000_000).unwrap();
    s.insert_batch(&batch).unwrap();
    assert_eq!(s.count_readings(&Query::default()).unwrap(), 2_000);
    let day = s.day_summary(date("1970-01-01")).unwrap();
    assert_eq!(
        day[0].count, 2_000,
        "the failed batch left no trace in the aggregates"
    );
}

/// Runs a writer on a virtual clock; `produce` feeds it through its own participant.
async fn with_writer<F, Fut>(
    store: Store,
    clock: &Clock,
    cfg: WriterConfig,
    produce: F,
) -> (Store, WriterStats, Vec<(Timestamp, Vec<StoredReading>)>)
where
    F: FnOnce(mpsc::Sender<WriterMsg>, anemone::clock::Participant) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(1024);
    let (ctx, mut crx) = mpsc::channel(1024);
    // Both participants exist before either task runs, or time could jump early.
    let (wp, pp) = (clock.participant(), clock.participant());
    let writer = tokio::spawn(run_writer(store, rx, wp, cfg, Some(ctx)));
    let producer = tokio::spawn(produce(tx, pp));
    let c2 = clock.clone();
    let feed = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(rows) = crx.recv().await {
            seen.push((c2.now(), rows));
        }
        seen
    });
    producer.await.unwrap();
    let (store, stats) = writer.await.unwrap().unwrap();
    (store, stats, feed.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_commits_on_the_station_clock_and_flushes_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let t0 = ts("2026-06-01T00:00:00Z");
    let clock = Clock::virtual_at(t0);
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(5_000),
            retention: Span::millis(365 * 86_400_000),
            max_buffered: 1_000,
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        true,
    );
    let path = db(&dir);
    let (store, stats, feed) = with_writer(store, &clock, cfg, move |tx, p| async move {
        let m = sensor("mast");
        for i in 1..=12 {
            p.sleep_until(t0 + i * 1_000 + 500).await;
            let r = Reading::new(p.now(), &m, Quantity::AirTemperature, i as f64);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
        // Interval commits happened without any flush: another connection sees them.
        let ro = Store::open_read_only(&path, chrono_tz::UTC).unwrap();
        let seen = ro.count_readings(&Query::default()).unwrap();
        assert!((4..12).contains(&seen), "{seen} committed before the flush");
        tx.send(WriterMsg::SetCursor(3)).await.unwrap();
        let (done, flushed) = oneshot::channel();
        tx.send(WriterMsg::Flush(done)).await.unwrap();
        drop(p); // a flush must not wait for station time
        flushed.await.unwrap();
    })
    .await;
    assert_eq!(stats.committed, 12);
    assert_eq!(stats.dropped, 0);
    // Commits at about 5 s and 10 s of station time, then the flush. (A message to a
    // sleeping participant does not stop the virtual clock, so a reading can land one
    // batch later than in real time; none is lost or reordered.)
    // (+1: the first reading is committed at once.)
    assert!((3..=5).contains(&stats.commits), "{stats:?}");
    // The live feed runs ahead of the commits (readings go live once their ids are
    // reserved, in batches per moment), so its batch count is not the commit count — it
    // was equal most of the time, and the test failed about 1 run in 10 (4 batches, 3
    // commits). What it must carry: every reading once, in id order, no empty batch.
    assert!(feed.iter().all(|(_, rows)| !rows.is_empty()), "{feed:?}");
    let ids: Vec<i64> = feed
        .iter()
        .flat_map(|(_, r)| r.iter().map(|x| x.id))
        .collect();
    assert_eq!(ids, (1..=12).collect::<Vec<_>>());
    assert_eq!(store.publish_cursor().unwrap(), 3);
    // Aggregates were persisted by the flush: a read-only view sees them.
    let ro = Store::open_read_only(store.path(), chrono_tz::UTC).unwrap();
    assert_eq!(ro.day_summary(date("2026-06-01")).unwrap()[0].count, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_flushes_everything_when_the_channel_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let t0 = ts("2026-06-01T00:00:00Z");
    let clock = Clock::virtual_at(t0);
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(60_000),
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        true,
    );
    let (store, stats, _) = with_writer(store, &clock, cfg, move |tx, p| async move {
        let m = sensor("mast");
        for i in 0..7 {
            let r = Reading::new(t0 + i, &m, Quantity::Ph, 7.0);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
        drop(p);
    })
    .await;
    assert_eq!(stats.committed, 7);
    assert!((1..=3).contains(&stats.commits));
    assert_eq!(store.count_readings(&Query::default()).unwrap(), 7);
    drop(store);
    let s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    assert_eq!(s.day_summary(date("2026-06-01")).unwrap()[0].count, 7);
}

/// A hardware id found when a source starts waits for the next commit (no commit of its
/// own) and is stored with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_records_hardware_ids_with_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let t0 = ts("2026-06-01T00:00:00Z");
    let clock = Clock::virtual_at(t0);
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(60_000),
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        true,
    );
    let path = db(&dir);
    let hardware_id = move || {
        let c = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        c.query_row(
            "SELECT kind, hardware_id FROM sensors WHERE name = 'water'",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .optional()
        .unwrap()
    };
    let check = hardware_id.clone();
    let (_, stats, _) = with_writer(store, &clock, cfg, move |tx, p| async move {
        let w = sensor("water");
        tx.send(WriterMsg::Reading(Reading::new(
            t0,
            &w,
            Quantity::WaterTemperature,
            18.0,
        )))
        .await
        .unwrap();
        tx.send(WriterMsg::RegisterSensor {
            sensor: "water".into(),
            kind: "ds18b20",
            hardware_id: "28-0000075d3b2a".into(),
        })
        .await
        .unwrap();
        // The first reading's immediate commit may or may not carry it; a commit later
        // in the interval certainly does.
        p.sleep_until(t0 + 61_000).await;
        let r = Reading::new(p.now(), &w, Quantity::WaterTemperature, 18.1);
        tx.send(WriterMsg::Reading(r)).await.unwrap();
        p.sleep_until(t0 + 125_000).await;
        assert_eq!(
            check(),
            Some(("ds18b20".to_string(), Some("28-0000075d3b2a".to_string())))
        );
        drop(p);
    })
    .await;
    assert_eq!(stats.committed, 2);
    assert_eq!(
        hardware_id(),
        Some(("ds18b20".to_string(), Some("28-0000075d3b2a".to_string())))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_keeps_readings_through_a_full_disk_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    store.set_max_pages(1).unwrap();
    let t0 = ts("2026-06-01T00:00:00Z");
    let clock = Clock::virtual_at(t0);
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(5_000),
            retention: Span::millis(0),
            max_buffered: 100_000,
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        true,
    );
    let (store, stats, _) = with_writer(store, &clock, cfg, move |tx, p| async move {
        let m = sensor("anemometer");
        for s in 0..30 {
            p.sleep_until(t0 + s * 1_000).await;
            for k in 0..200 {
                let r = Reading::new(p.now() + k, &m, Quantity::WindSpeed, 2.0);
                tx.send(WriterMsg::Reading(r)).await.unwrap();
            }
            if s == 17 {
                // An operator frees space: the cap goes.
                let (done, ok) = oneshot::channel();
                let job = Box::new(|s: &mut Store| s.set_max_pages(1_000_000).map(|_| ()));
                tx.send(WriterMsg::Run(job, done)).await.unwrap();
                ok.await.unwrap().unwrap();
            }
        }
    })
    .await;
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.committed, 6_000);
    assert_eq!(store.count_readings(&Query::default()).unwrap(), 6_000);
    let ids: Vec<i64> = store
        .readings(&Query::default())
        .unwrap()
        .iter()
        .map(|r| r.reading.ts)
        .collect();
    let bad: Vec<_> = ids.windows(2).filter(|w| w[0] >= w[1]).take(3).collect();
    assert!(bad.is_empty(), "order kept: {bad:?} {:?}", &ids[..3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_counts_readings_dropped_beyond_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    store.set_max_pages(1).unwrap();
    let t0 = ts("2026-06-01T00:00:00Z");
    let clock = Clock::virtual_at(t0);
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(5_000),
            retention: Span::millis(0),
            max_buffered: 1_000,
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        true,
    );
    let (store, stats, _) = with_writer(store, &clock, cfg, move |tx, p| async move {
        let m = sensor("anemometer");
        for s in 0..10 {
            p.sleep_until(t0 + s * 1_000).await;
            for k in 0..500 {
                let r = Reading::new(p.now() + k, &m, Quantity::WindSpeed, 2.0);
                tx.send(WriterMsg::Reading(r)).await.unwrap();
            }
        }
    })
    .await;
    // The very first reading is committed at once and may still fit in the file's
    // existing pages; everything after it meets the full disk.
    assert!(stats.committed <= 1, "{stats:?}");
    assert_eq!(
        stats.committed + stats.dropped,
        5_000,
        "every reading is accounted for"
    );
    assert_eq!(
        store.count_readings(&Query::default()).unwrap(),
        stats.committed
    );
}

/// SD-card wear: WAL bytes written per reading for an hour of a typical station
/// (15 series sampled every 10 s, aggregates persisted every 5 min), committing every
/// `commit_s` seconds.
fn wal_bytes_per_reading(commit_s: i64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let sensors: Vec<SensorId> = (0..5).map(|i| sensor(&format!("s{i}"))).collect();
    let qs = [
        Quantity::AirTemperature,
        Quantity::RelativeHumidity,
        Quantity::AirPressure,
    ];
    let t0 = ts("2026-06-01T00:00:00Z");
    s.wal_checkpoint().unwrap();
    let (mut frames, mut readings) = (0, 0);
    let mut batch = Vec::new();
    for step in 0..720 {
        let now = t0 + step * 5_000;
        for (i, sn) in sensors.iter().enumerate() {
            for q in qs {
                // Each series every 10 s, staggered.
                if (step + i as i64) % 2 == 0 {
                    batch.push(Reading::new(now, sn, q, 20.0 + (step % 7) as f64));
                }
            }
        }
        let mut wrote = false;
        if (step + 1) % (commit_s / 5) == 0 {
            readings += batch.len();
            s.insert_batch(&batch).unwrap();
            batch.clear();
            wrote = true;
        }
        if (step + 1) % 60 == 0 {
            s.flush_aggregates().unwrap();
            wrote = true;
        }
        // The WAL restarts after a complete checkpoint, so after each write it holds
        // exactly the frames written since the previous count.
        if wrote {
            frames += s.wal_checkpoint().unwrap();
        }
    }
    let per = frames as f64 * (s.page_size().unwrap() as f64 + 24.0) / readings as f64;
    eprintln!(
        "commit every {commit_s} s: {readings} readings, {frames} WAL frames, {per:.0} WAL bytes per reading"
    );
    per
}

#[test]
fn bytes_per_reading() {
    let five = wal_bytes_per_reading(5);
    let minute = wal_bytes_per_reading(60);
    // A 5-s commit writes the readings' tail, the row of the tamper-evident chain
    // (`store::chain`, one row per commit), the cursor's and the header's pages: ~1 240
    // bytes per reading with 4 KiB pages, ~420 with the 1 KiB pages of a new file.
    assert!(five < 600.0, "{five} bytes per reading");
    assert!(
        minute < five / 3.0,
        "longer commits amortise: {minute} vs {five}"
    );
}

/// Readings every 10 min from `from` to `to` (exclusive), in one batch.
fn ten_minute_rows(m: &SensorId, from: Timestamp, to: Timestamp) -> Vec<Reading> {
    (0..)
        .map(|i| from + i * 600_000)
        .take_while(|t| *t < to)
        .map(|t| Reading::new(t, m, Quantity::AirPressure, 1000.0))
        .collect()
}

#[test]
fn retention_never_deletes_unpublished_readings() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let m = sensor("mast");
    let now = ts("2026-06-01T00:00:00Z");
    // Ten days of readings, all far older than the 1-day cutoff below but the last, in
    // commits of 100 (retention removes whole commit batches: see `store::chain`).
    let mut rows = Vec::new();
    for chunk in ten_minute_rows(&m, now - 10 * 86_400_000, now).chunks(100) {
        rows.extend(s.insert_batch(chunk).unwrap());
    }
    let total = rows.len() as u64;
    // The broker acknowledged only the first 100: the rest is still owed.
    s.set_publish_cursor(rows[99].id).unwrap();
    let deleted = s.expire(now - 86_400_000, Unpublished::Keep).unwrap();
    assert_eq!(deleted, 100, "only acknowledged readings may expire");
    let left = s.readings(&Query::default()).unwrap();
    assert_eq!(left.len() as u64, total - 100);
    assert_eq!(
        left[0].id, rows[100].id,
        "every unpublished reading is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_jump_forward_deletes_nothing_inside_the_old_window() {
    let dir = tempfile::tempdir().unwrap();
    let m = sensor("mast");
    let t0 = ts("2026-06-01T00:00:00Z");
    let day = 86_400_000;
    let mut store = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    // Three days of readings up to t0, all acknowledged by the broker: only the clock
    // rule can protect them.
    // Hourly commits: retention removes whole commit batches (see `store::chain`).
    let mut rows = Vec::new();
    for hour in ten_minute_rows(&m, t0 - 3 * day, t0).chunks(6) {
        rows.extend(store.insert_batch(hour).unwrap());
    }
    let last = rows.last().unwrap().id;
    store.set_publish_cursor(last).unwrap();
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(60_000),
            retention: Span::secs(86_400),
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        true,
    );
    // Station time actually elapsed in both runs is at most 4 h + 3 h: retention may
    // delete up to t0 - 1 day + 7 h, never more, whatever the wall clock says.
    let inside = |store: &Store| {
        store
            .readings(&Query {
                from: Some(t0 - day + 8 * 3_600_000),
                ..Query::default()
            })
            .unwrap()
            .into_iter()
            .filter(|r| r.id <= last)
            .count()
    };
    let expected = rows
        .iter()
        .filter(|r| r.reading.ts >= t0 - day + 8 * 3_600_000)
        .count();
    assert!(expected > 90, "{expected}");
    let clock = Clock::virtual_at(t0);
    let c2 = clock.clone();
    let (store, _, _) = with_writer(store, &clock, cfg.clone(), move |tx, p| async move {
        p.sleep_until(t0 + 3_600_000).await;
        // An NTP server (or a GPS) steps the clock 400 days ahead.
        c2.jump(400 * day);
        for i in 0..18 {
            p.sleep_ms(600_000).await;
            let r = Reading::new(p.now(), &m, Quantity::AirPressure, 990.0 + i as f64);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
        let (done, flushed) = oneshot::channel();
        tx.send(WriterMsg::Flush(done)).await.unwrap();
        drop(p);
        flushed.await.unwrap();
    })
    .await;
    let older = store
        .readings(&Query {
            to: Some(t0 - day),
            ..Query::default()
        })
        .unwrap();
    assert!(
        older.is_empty(),
        "retention still works: {} left",
        older.len()
    );
    assert_eq!(inside(&store), expected, "the jump deleted readings");
    // A restart with the jumped clock does not delete them either.
    let path = store.path().to_path_buf();
    drop(store);
    let store = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let clock = Clock::virtual_at(t0 + 400 * day + 4 * 3_600_000);
    let (store, _, _) = with_writer(store, &clock, cfg, move |tx, p| async move {
        let m = sensor("mast");
        for _ in 0..18 {
            p.sleep_ms(600_000).await;
            let r = Reading::new(p.now(), &m, Quantity::AirPressure, 1001.0);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
    })
    .await;
    assert_eq!(inside(&store), expected, "the restart deleted readings");
}

/// Everything logged while `f` runs on this thread.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .finish();
    let t = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (t, text)
}

fn file_hash(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).unwrap().hash(&mut h);
    h.finish()
}

/// Files beside `path` named `<name>.corrupt-…` (without the -wal/-shm companions).
fn kept_aside(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut v: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("{name}.corrupt-"))
                && !n.ends_with("-wal")
                && !n.ends_with("-shm")
        })
        .collect();
    v.sort();
    v
}

/// Overwrites page `page` (0-based, 4 KiB) of `path` with deterministic noise.
fn damage_page(path: &Path, page: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(page * 4096)).unwrap();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(page as u32) >> 13) as u8)
        .collect();
    f.write_all(&noise).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn corrupt_database_is_kept_aside_untouched_and_a_new_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let m = sensor("mast");
    let t0 = ts("2026-06-01T00:00:00Z");
    let last_id = {
        let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
        s.register_sensor("water", "ds18b20", Some("28-0000075d3b2a"))
            .unwrap();
        let mut last = 0;
        for chunk in 0..12 {
            let rows: Vec<Reading> = (0..10_000)
                .map(|i| {
                    let t = t0 + (chunk * 10_000 + i) * 1_000;
                    Reading::new(t, &m, Quantity::WindSpeed, (i % 17) as f64)
                })
                .collect();
            last = s.insert_batch(&rows).unwrap().last().unwrap().id;
        }
        s.set_publish_cursor(100_000).unwrap();
        // Summaries persisted, as the daemon does hourly: opening reads few raw rows, so
        // only a full check finds the damage (issue 13: it went unnoticed for hours).
        s.flush_aggregates().unwrap();
        last
    };
    // Two pages in the middle of the readings overwritten (a failing SD card).
    let pages = std::fs::metadata(&path).unwrap().len() / 4096;
    assert!(pages > 200, "{pages}");
    damage_page(&path, pages / 3);
    damage_page(&path, pages / 2);
    let before = file_hash(&path);

    let (store, log) = logged(|| Store::open(&path, &opts(chrono_tz::UTC)));
    let mut store = store.expect("a new database is started");
    let kept = kept_aside(&path);
    assert_eq!(
        kept.len(),
        1,
        "the corrupt file is kept aside: {kept:?}\n{log}"
    );
    assert_eq!(file_hash(&kept[0]), before, "the corrupt file is untouched");
    // One ERROR names both files and how to recover the old one.
    let error = log.lines().find(|l| l.contains("ERROR")).unwrap_or("");
    assert!(error.contains(&path.display().to_string()), "{log}");
    assert!(error.contains(&kept[0].display().to_string()), "{log}");
    assert!(error.contains(".recover"), "{log}");
    // The new file: empty, ids above every old one, the old cursor, the sensors kept.
    assert_eq!(store.count_readings(&Query::default()).unwrap(), 0);
    let new = store
        .insert_batch(&[Reading::new(t0 + 200_000_000, &m, Quantity::WindSpeed, 1.0)])
        .unwrap();
    assert!(
        new[0].id > last_id,
        "id {} reused (old max {last_id})",
        new[0].id
    );
    assert_eq!(store.publish_cursor().unwrap(), 100_000);
    assert!(store
        .sensors()
        .unwrap()
        .iter()
        .any(|(n, _, hw)| n == "water" && hw.as_deref() == Some("28-0000075d3b2a")));
    drop(store);
    assert_eq!(file_hash(&kept[0]), before, "still untouched");
    let s = Store::open_read_only(&path, chrono_tz::UTC).unwrap();
    assert_eq!(s.count_readings(&Query::default()).unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_found_while_running_moves_to_a_new_file_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let m = sensor("mast");
    let t0 = ts("2026-06-01T00:00:00Z");
    let mut store = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let old: Vec<Reading> = (0..20_000)
        .map(|i| Reading::new(t0 - 20_000_000 + i * 1_000, &m, Quantity::WindSpeed, 2.0))
        .collect();
    let old_last = store.insert_batch(&old).unwrap().last().unwrap().id;
    let clock = Clock::virtual_at(t0);
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(5_000),
            retention: Span::millis(0),
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        true,
    );
    let p2 = path.clone();
    let (store, stats, feed) = with_writer(store, &clock, cfg, move |tx, p| async move {
        let m = sensor("mast");
        for i in 0..10 {
            let r = Reading::new(p.now() + i, &m, Quantity::WindSpeed, 3.0);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
        let (done, flushed) = oneshot::channel();
        tx.send(WriterMsg::Flush(done)).await.unwrap();
        flushed.await.unwrap();
        // The card fails under the running station: everything in the main file but
        // its first page turns to noise. (A checkpoint first, so the data is there, and a
        // write by another connection, so the writer rereads pages from the file.)
        let side = rusqlite::Connection::open(&p2).unwrap();
        side.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        side.execute("INSERT OR REPLACE INTO meta VALUES ('x', 1)", [])
            .unwrap();
        drop(side);
        let pages = std::fs::metadata(&p2).unwrap().len() / 4096;
        for page in 1..pages {
            damage_page(&p2, page);
        }
        for i in 0..30 {
            p.sleep_ms(500).await;
            let r = Reading::new(p.now() + i, &m, Quantity::WindSpeed, 4.0);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
        let (done, flushed) = oneshot::channel();
        tx.send(WriterMsg::Flush(done)).await.unwrap();
        flushed.await.unwrap();
    })
    .await;
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(kept_aside(&path).len(), 1, "the corrupt file is kept aside");
    assert_eq!(store.path(), path.as_path());
    let rows = store.readings(&Query::default()).unwrap();
    let fours = rows.iter().filter(|r| r.reading.value == Some(4.0)).count();
    assert_eq!(
        fours, 30,
        "every reading after the damage is in the new file"
    );
    // Ids given to the live feed are never given again.
    let fed: Vec<i64> = feed
        .iter()
        .flat_map(|(_, r)| r.iter().map(|x| x.id))
        .collect();
    assert_eq!(fed.len(), 40);
    assert!(fed.windows(2).all(|w| w[0] < w[1]));
    assert!(fed[0] > old_last);
    for r in &rows {
        assert!(
            fed.contains(&r.id),
            "stored id {} was not the one fed live",
            r.id
        );
    }
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_is_checked_in_the_background_and_replaced_when_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let m = sensor("mast");
    let t0 = ts("2026-06-01T00:00:00Z");
    let mut store = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let old: Vec<Reading> = (0..50_000)
        .map(|i| Reading::new(t0 - 50_000_000 + i * 1_000, &m, Quantity::WindSpeed, 2.0))
        .collect();
    let old_last = store.insert_batch(&old).unwrap().last().unwrap().id;
    store.flush_aggregates().unwrap();
    store.wal_checkpoint().unwrap();
    // Pages in the middle of the readings go bad; commits only touch the tail, so only a
    // full check can notice. (Too large to check at open, as a year of readings is.)
    let pages = std::fs::metadata(&path).unwrap().len() / 4096;
    damage_page(&path, pages / 3);
    damage_page(&path, pages / 2);
    store.defer_check();
    let clock = Clock::virtual_at(t0);
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(5_000),
            retention: Span::millis(0),
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        true,
    );
    let p2 = path.clone();
    let (store, stats, feed) = with_writer(store, &clock, cfg, move |tx, p| async move {
        let m = sensor("mast");
        for i in 0..40 {
            p.sleep_ms(1_000).await;
            let r = Reading::new(p.now() + i, &m, Quantity::WindSpeed, 4.0);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
        // Real time for the check to finish (it runs beside the writer; milliseconds for
        // this file, a minute allowed for a loaded machine).
        for _ in 0..1_200 {
            if !kept_aside(&p2).is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(kept_aside(&path).len(), 1, "the corrupt file is kept aside");
    assert_eq!(stats.dropped, 0);
    let fed: Vec<i64> = feed
        .iter()
        .flat_map(|(_, r)| r.iter().map(|x| x.id))
        .collect();
    assert!(fed[0] > old_last);
    // Every reading committed after the move is in the new file, under its fed id.
    let rows = store.readings(&Query::default()).unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| fed.contains(&r.id) && r.id > old_last));
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_waits_until_clock_safety_trusts_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let m = sensor("mast");
    let t0 = ts("2026-06-01T00:00:00Z");
    let day = 86_400_000;
    let mut store = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    // Hourly commits: retention removes whole commit batches (see `store::chain`).
    let mut rows = Vec::new();
    for hour in ten_minute_rows(&m, t0 - 3 * day, t0).chunks(6) {
        rows.extend(store.insert_batch(hour).unwrap());
    }
    let all = rows.len() as u64;
    store.set_publish_cursor(rows.last().unwrap().id).unwrap();
    let cfg = WriterConfig::from_storage(
        &StorageConfig {
            commit_interval: Span::millis(60_000),
            retention: Span::secs(86_400),
            ..StorageConfig::default()
        },
        Unpublished::Keep,
        false,
    );
    let clock = Clock::virtual_at(t0);
    let (tx_count, rx_count) = oneshot::channel();
    let path = db(&dir);
    let (store, _, _) = with_writer(store, &clock, cfg, move |tx, p| async move {
        // Two hours on a clock that is not trusted yet: retention must not run.
        for i in 0..12 {
            p.sleep_ms(600_000).await;
            let r = Reading::new(p.now(), &m, Quantity::AirPressure, i as f64);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
        let (done, flushed) = oneshot::channel();
        tx.send(WriterMsg::Flush(done)).await.unwrap();
        flushed.await.unwrap();
        let ro = Store::open_read_only(&path, chrono_tz::UTC).unwrap();
        let _ = tx_count.send(ro.count_readings(&Query::default()).unwrap());
        // Synchronised: from now on it may.
        tx.send(WriterMsg::ClockTrusted).await.unwrap();
        for _ in 0..3 {
            p.sleep_ms(600_000).await;
            let r = Reading::new(p.now(), &m, Quantity::AirPressure, 1.0);
            tx.send(WriterMsg::Reading(r)).await.unwrap();
        }
    })
    .await;
    assert_eq!(
        rx_count.await.unwrap(),
        all + 12,
        "nothing deleted on an untrusted clock"
    );
    let older = store
        .readings(&Query {
            to: Some(t0 - day),
            ..Query::default()
        })
        .unwrap();
    assert!(
        older.is_empty(),
        "{} old rows left once trusted",
        older.len()
    );
}

#[test]
fn what_mqtt_owes_is_counted_in_readings_not_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mast = sensor("mast");
    let t0 = ts("2026-06-01T12:00:00Z");
    let batch = |n: i64, from: i64| -> Vec<Reading> {
        (0..n)
            .map(|i| {
                Reading::new(
                    t0 + (from + i) * 1_000,
                    &mast,
                    Quantity::AirTemperature,
                    20.0,
                )
            })
            .collect()
    };
    let cursor = {
        let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
        let stored = s.insert_batch(&batch(4, 0)).unwrap();
        s.set_publish_cursor(stored[1].id).unwrap();
        assert_eq!(s.count_after(stored[1].id).unwrap(), 2);
        stored[1].id
    };
    // A restart: the new readings' ids may start above a gap.
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    s.insert_batch(&batch(3, 4)).unwrap();
    assert_eq!(s.publish_cursor().unwrap(), cursor);
    assert_eq!(s.count_after(cursor).unwrap(), 5);
    assert_eq!(s.count_after(i64::MAX).unwrap(), 0);
}

/// Minute buckets of every series as (start, sensor, quantity, count, sum).
fn minute_view(s: &Store) -> Vec<(Timestamp, String, Quantity, u64, f64)> {
    s.aggregates(Resolution::Minute, &Query::default())
        .unwrap()
        .into_iter()
        .map(|a| (a.start, a.sensor, a.quantity, a.count, a.sum))
        .collect()
}

#[test]
fn read_only_aggregates_follow_new_readings_across_persists() {
    // A read-only store keeps the readings it folded after the last persist and folds
    // only newer ones at the next query: it must answer as a fresh connection does.
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let r = Store::open_read_only(&db(&dir), chrono_tz::UTC).unwrap();
    let (a, b) = (sensor("a"), sensor("b"));
    let t0 = ts("2026-06-01T12:00:00Z");
    let batch = |from: i64| -> Vec<Reading> {
        (0..90)
            .flat_map(|i| {
                let t = t0 + (from + i) * 1_000;
                [
                    Reading::new(t, &a, Quantity::WindSpeed, (i % 7) as f64),
                    Reading::new(t, &b, Quantity::AirTemperature, 10.0 + i as f64),
                ]
            })
            .collect()
    };
    for (k, persist) in [
        (0, false),
        (90, false),
        (180, true),
        (270, false),
        (360, true),
    ] {
        s.insert_batch(&batch(k)).unwrap();
        if persist {
            s.flush_aggregates().unwrap();
        }
        let fresh = Store::open_read_only(&db(&dir), chrono_tz::UTC).unwrap();
        let want = minute_view(&fresh);
        assert_eq!(minute_view(&r), want, "after the batch at {k} s");
        assert_eq!(minute_view(&s), want);
        let total: u64 = want.iter().map(|w| w.3).sum();
        assert_eq!(total, 2 * (k as u64 + 90));
    }
}

#[test]
fn latest_readings_are_each_series_newest_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let (a, b, c) = (sensor("a"), sensor("b"), sensor("c"));
    let t0 = ts("2026-06-01T10:20:00Z");
    let mut rows = Vec::new();
    // a: every 10 s for 3 h; b: every 10 min until 1 h in; c: once, 4 h before the end.
    rows.push(Reading::new(t0 - 3_600_000, &c, Quantity::Rain, 0.2));
    for i in 0..(3 * 360) {
        let t = t0 + i * 10_000;
        rows.push(Reading::new(t, &a, Quantity::WindSpeed, i as f64));
        rows.push(Reading::new(
            t,
            &a,
            Quantity::WindDirection,
            (i % 360) as f64,
        ));
        if i % 60 == 0 && i <= 360 {
            rows.push(Reading::new(
                t,
                &b,
                Quantity::AirTemperature,
                i as f64 / 60.0,
            ));
        }
    }
    s.insert_batch(&rows[..1500]).unwrap();
    s.flush_aggregates().unwrap();
    s.insert_batch(&rows[1500..]).unwrap();
    let newest = rows.iter().map(|r| r.ts).max().unwrap();
    let window = 2 * 3_600_000;
    // What a scan of every raw row of the window finds.
    type Latest = ((String, Quantity), (Timestamp, Option<f64>));
    let mut want: std::collections::BTreeMap<(String, Quantity), (Timestamp, Option<f64>)> =
        Default::default();
    for r in rows.iter().filter(|r| r.ts >= newest - window) {
        want.insert((r.sensor.to_string(), r.quantity), (r.ts, r.value));
    }
    let seen = |s: &Store| -> Vec<Latest> {
        s.latest_readings(window)
            .unwrap()
            .into_iter()
            .map(|r| {
                let x = r.reading;
                ((x.sensor.to_string(), x.quantity), (x.ts, x.value))
            })
            .collect()
    };
    let want: Vec<_> = want.into_iter().collect();
    assert_eq!(
        want.len(),
        3,
        "b's last reading is inside the window, c's is not"
    );
    assert_eq!(seen(&s), want);
    let r = Store::open_read_only(&db(&dir), chrono_tz::UTC).unwrap();
    assert_eq!(seen(&r), want);
}

#[test]
fn registering_an_unchanged_sensor_writes_nothing() {
    // Every start registers every configured sensor again: that must not cost a commit.
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    let wal = db(&dir).with_extension("db-wal");
    let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    s.register_sensor("mast", "htu21d", Some("i2c-1:0x40"))
        .unwrap();
    let before = size();
    s.register_sensor("mast", "htu21d", Some("i2c-1:0x40"))
        .unwrap();
    s.register_sensor("mast", "htu21d", None).unwrap();
    assert_eq!(size(), before, "nothing changed, nothing written");
    s.register_sensor("mast", "sht31", None).unwrap();
    assert!(size() > before, "a new kind is written");
    drop(s);
    let s = Store::open(&db(&dir), &opts(chrono_tz::UTC)).unwrap();
    assert_eq!(
        s.sensors().unwrap(),
        vec![("mast".into(), "sht31".into(), Some("i2c-1:0x40".into()))]
    );
}

#[test]
fn migrates_a_version_3_database_to_aggregates_keyed_by_quantity() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    // A version-3 database with readings and persisted aggregates, made by the code of
    // the time (the schema by hand, the buckets by SQL as that version persisted them).
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(SCHEMA_V1).unwrap();
        c.execute_batch(
            "CREATE TABLE calibrations (id INTEGER PRIMARY KEY, sensor INTEGER NOT NULL,
                 ts INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL);
             CREATE INDEX calibrations_by_sensor ON calibrations (sensor, ts);
             CREATE TABLE imported_rows (source TEXT NOT NULL, row_id INTEGER NOT NULL,
                 PRIMARY KEY (source, row_id)) WITHOUT ROWID;
             PRAGMA user_version = 3;
             INSERT INTO sensors VALUES (1, 'mast', 'htu21d', NULL);
             INSERT INTO readings VALUES (1, 1780000000000, 1, 1, 12.5, 0);
             INSERT INTO readings VALUES (2, 1780000000000, 1, 2, 80.0, 0);
             INSERT INTO readings VALUES (3, 1780000060000, 1, 1, 13.5, 0);
             INSERT INTO aggregates VALUES (1, 1779999960000, 1, 1, 1780000020000, 1, 0,
                 12.5, 1780000000000, 12.5, 1780000000000, 12.5, 1, 1);
             INSERT INTO aggregates VALUES (1, 1779999960000, 1, 2, 1780000020000, 1, 0,
                 80.0, 1780000000000, 80.0, 1780000000000, 80.0, 2, 2);
             INSERT INTO meta VALUES ('aggregates_through_id', 2);",
        )
        .unwrap();
    }
    let s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let q = |quantity| Query {
        quantity: Some(quantity),
        ..Query::default()
    };
    let temps = s
        .aggregates(Resolution::Minute, &q(Quantity::AirTemperature))
        .unwrap();
    assert_eq!(
        temps.iter().map(|a| (a.start, a.sum)).collect::<Vec<_>>(),
        vec![(1779999960000, 12.5), (1780000020000, 13.5)],
        "the persisted bucket and the one rebuilt from the newer reading"
    );
    let all = s.aggregates(Resolution::Minute, &Query::default()).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(s.readings(&Query::default()).unwrap().len(), 3);
    drop(s);
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(v >= 4);
    // A chart's query reads only its quantity's rows: a range of the key.
    let plan: String = c
        .query_row(
            "EXPLAIN QUERY PLAN SELECT start FROM aggregates WHERE resolution = 1 \
             AND quantity = 1 AND start >= 0 AND start < 10",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(
        plan.contains("PRIMARY KEY (resolution=? AND quantity=? AND start>? AND start<?)"),
        "{plan}"
    );
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'aggregates_by_time'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Makes a database of this version what version 5 stored: the same buckets without the
/// sums of sines and cosines.
fn as_version_5(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "ALTER TABLE aggregates DROP COLUMN sum_sin;
         ALTER TABLE aggregates DROP COLUMN sum_cos;
         PRAGMA user_version = 5;",
    )
    .unwrap();
}

#[test]
fn migrates_a_version_5_database_to_vector_mean_directions() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let vane = sensor("vane");
    let d = |t: Timestamp, v: f64| Reading::new(t, &vane, Quantity::WindDirection, v);
    let day_a = ts("2026-06-01T12:00:00Z");
    let day_b = ts("2026-06-03T12:00:00Z");
    {
        let mut s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
        let mut speed = Reading::new(day_a, &vane, Quantity::WindSpeed, 3.0);
        speed.ts += 5_000;
        let mut spike = d(day_a + 15_000, 200.0);
        spike.flags = Flags::SPIKE;
        s.insert_batch(&[d(day_a, 0.0), speed, d(day_a + 10_000, 0.0), spike])
            .unwrap();
        s.insert_batch(&[
            d(day_a + 20_000, 90.0),
            d(day_b, 350.0),
            d(day_b + 10_000, 10.0),
        ])
        .unwrap();
        s.flush_aggregates().unwrap();
        // Stored after the last persist: folded again at the next open.
        s.insert_batch(&[d(day_b + 20_000, 20.0)]).unwrap();
    }
    as_version_5(&path);
    // Retention has since deleted one of day B's readings.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        let deleted = c
            .execute("DELETE FROM readings WHERE ts = ?1", [day_b + 10_000])
            .unwrap();
        assert_eq!(deleted, 1);
    }
    let s = Store::open(&path, &opts(chrono_tz::UTC)).unwrap();
    let q = Query {
        quantity: Some(Quantity::WindDirection),
        ..Query::default()
    };
    let expected_a = 1f64.atan2(2.0).to_degrees();
    for res in [Resolution::Minute, Resolution::Hour, Resolution::Day] {
        let aggs = s.aggregates(res, &q).unwrap();
        assert_eq!(aggs.len(), 2, "{res}: {aggs:?}");
        let (a, b) = (&aggs[0], &aggs[1]);
        // Day A's readings are all there: the vector mean (26.6°; 30° before), the
        // spike left out.
        assert_eq!((a.count, a.flagged), (3, 1), "{res}");
        let mean = a.mean().unwrap();
        assert!((mean - expected_a).abs() < 1e-9, "{res}: {mean}");
        // Day B's bucket lost a reading to retention: it keeps the mean it had
        // (350° and 10° → 0°) with the reading stored after the last persist on top.
        assert_eq!(b.count, 3, "{res}");
        assert_eq!(b.vector, None, "{res}");
        let mean = b.mean().unwrap();
        assert!((mean - 20.0 / 3.0).abs() < 1e-9, "{res}: {mean}");
    }
    let speed = s
        .aggregates(
            Resolution::Hour,
            &Query {
                quantity: Some(Quantity::WindSpeed),
                ..Query::default()
            },
        )
        .unwrap();
    assert_eq!(speed[0].vector, None);
    assert_eq!(speed[0].mean(), Some(3.0));
    drop(s);
    let c = rusqlite::Connection::open(&path).unwrap();
    let pending: Option<i64> = c
        .query_row(
            "SELECT value FROM meta WHERE key = 'direction_vectors_pending'",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap();
    assert_eq!(pending, None);
}

#[test]
fn the_upgrade_gives_old_direction_buckets_the_vectors_the_live_store_keeps() {
    // Three hours of a vane read every 2 s (more readings than the upgrade holds buckets
    // open for): the buckets the upgrade fills in match the ones kept as readings came.
    // One reading, stamped two days ahead by a clock that stepped and stepped back, comes
    // a third of the way in: the upgrade then meets every later bucket's readings in
    // several parts, and adds them up.
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let vane = sensor("vane");
    let t0 = ts("2026-06-01T22:30:00Z");
    let q = Query {
        quantity: Some(Quantity::WindDirection),
        ..Query::default()
    };
    let live = {
        let mut s = Store::open(&path, &opts(chrono_tz::Europe::London)).unwrap();
        let batch: Vec<Reading> = (0..5_400i64)
            .map(|i| {
                let deg = (330.0 + (i % 97) as f64 * 0.7 + (i / 600) as f64 * 3.0) % 360.0;
                Reading::new(t0 + i * 2_000, &vane, Quantity::WindDirection, deg)
            })
            .collect();
        for (i, chunk) in batch.chunks(600).enumerate() {
            s.insert_batch(chunk).unwrap();
            if i == 3 {
                let ahead = Reading::new(t0 + 2 * 86_400_000, &vane, Quantity::WindDirection, 45.0);
                s.insert_batch(&[ahead]).unwrap();
            }
        }
        s.flush_aggregates().unwrap();
        [Resolution::Minute, Resolution::Hour, Resolution::Day]
            .map(|r| s.aggregates(r, &q).unwrap())
    };
    assert_eq!(live[0].len(), 181);
    assert_eq!(live[2].len(), 3, "three local days");
    as_version_5(&path);
    let s = Store::open(&path, &opts(chrono_tz::Europe::London)).unwrap();
    for (i, res) in [Resolution::Minute, Resolution::Hour, Resolution::Day]
        .into_iter()
        .enumerate()
    {
        let upgraded = s.aggregates(res, &q).unwrap();
        assert_eq!(upgraded.len(), live[i].len(), "{res}");
        for (a, b) in upgraded.iter().zip(&live[i]) {
            let (x, y) = (a.vector.unwrap(), b.vector.unwrap());
            assert!(
                (x.0 - y.0).abs() < 1e-6 && (x.1 - y.1).abs() < 1e-6,
                "{res} {}: {x:?} against {y:?}",
                a.start
            );
            let (m, n) = (a.mean().unwrap(), b.mean().unwrap());
            assert!((m - n).abs() < 1e-9, "{res}: {m} against {n}");
        }
    }
}
