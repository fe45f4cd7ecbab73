//! Issue 7, "Power cut" with a broker: the real `anemone` binary publishes a fast simulated
//! station to a broker and is killed (SIGKILL) at random moments. After every cut the
//! database is intact and the MQTT publish cursor never points past what the broker
//! acknowledged: every stored reading at or below the persisted cursor reached a
//! subscriber. The station restarts on the same database each time, and after a last,
//! finite run every stored reading has been published.
//!
//! The check does not assume contiguous ids (a writer may reserve ids that a cut leaves
//! unused) nor a cursor at or below the highest stored id.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anemone::reading::{format_ts, Timestamp};
use rusqlite::{OpenFlags, OptionalExtension};

use super::support::*;
use crate::cli::bin;
use crate::common::{Lcg, JUNE_1};

/// Station seconds per real second: about 1,500 readings per real second, which the
/// publisher keeps up with, so the cuts land in steady live traffic. A scaled clock (not
/// `max`) keeps a run's length in real time the same in debug and release builds.
const SPEED: &str = "600";
/// Power cuts before the last, uninterrupted run.
const CUTS: u32 = 5;
/// How long a cut waits for the broker to hand the subscriber what it already
/// acknowledged (generous: the check itself is not about time).
const DRAIN_SECS: u64 = 20;

/// What a cut left in the database, read with plain SQL (independent of the store's API).
struct Snapshot {
    integrity: String,
    /// `meta.publish_cursor` (the store's `META_PUBLISH_CURSOR`); 0 when absent.
    cursor: i64,
    /// Stored reading ids, ascending.
    ids: Vec<i64>,
    last_ts: Option<Timestamp>,
}

fn snapshot(db: &Path) -> Snapshot {
    let what = |e: rusqlite::Error| format!("{}: {e}", db.display());
    let conn = rusqlite::Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}", what(e)));
    let mut check = conn
        .prepare("PRAGMA integrity_check")
        .unwrap_or_else(|e| panic!("integrity_check: {}", what(e)));
    let integrity = check
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("integrity_check: {}", what(e)))
        .join("\n");
    let cursor: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'publish_cursor'",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap_or_else(|e| panic!("publish cursor: {}", what(e)));
    let mut select = conn
        .prepare("SELECT id FROM readings ORDER BY id")
        .unwrap_or_else(|e| panic!("reading ids: {}", what(e)));
    let ids = select
        .query_map([], |r| r.get::<_, i64>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("reading ids: {}", what(e)));
    let last_ts: Option<Timestamp> = conn
        .query_row("SELECT max(ts) FROM readings", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("last timestamp: {}", what(e)));
    Snapshot {
        integrity,
        cursor: cursor.unwrap_or(0),
        ids,
        last_ts,
    }
}

/// Reading ids the subscriber has received, kept up to date from `Subscriber::seen`.
#[derive(Default)]
struct Received {
    ids: BTreeSet<i64>,
    scanned: usize,
}

impl Received {
    fn update(&mut self, sub: &Subscriber) {
        for m in &sub.seen[self.scanned..] {
            if m.topic.contains("/reading/") {
                if let Some(id) = m.json()["id"].as_i64() {
                    self.ids.insert(id);
                }
            }
        }
        self.scanned = sub.seen.len();
    }

    /// Waits up to `secs` for every id of `want`; returns those still missing.
    async fn wait_for_all(&mut self, sub: &mut Subscriber, want: &[i64], secs: u64) -> Vec<i64> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            self.update(sub);
            let missing: Vec<i64> = want
                .iter()
                .copied()
                .filter(|id| !self.ids.contains(id))
                .collect();
            if missing.is_empty() || tokio::time::Instant::now() >= deadline {
                return missing;
            }
            sub.collect_for(200).await;
        }
    }
}

/// The last lines the station logged (warnings and errors), for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The station process; killed if a failed assertion leaves it running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_station(cfg: &Path, start: Timestamp, duration: &str, log: &Path) -> Running {
    let log_file = File::create(log).expect("create the station's log file");
    let child = bin()
        .args(["run", "--simulate", "--speed", SPEED, "--seed", "7"])
        .args([
            "--start",
            &format_ts(start),
            "--duration",
            duration,
            "--config",
        ])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start anemone");
    Running(child)
}

/// Waits until a reading stamped at or after `start` (this run's own) reaches the
/// subscriber, so that the cut lands in live traffic.
async fn wait_for_traffic(sub: &mut Subscriber, child: &mut Child, start: Timestamp, log: &Path) {
    let since = format_ts(start);
    let mut scanned = sub.seen.len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let fresh = sub.seen[scanned..].iter().any(|m| {
            m.topic.contains("/reading/")
                && m.json()["ts"].as_str().is_some_and(|t| t >= since.as_str())
        });
        if fresh {
            return;
        }
        scanned = sub.seen.len();
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the station stopped before publishing ({status}):\n{}",
                log_tail(log)
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reading from the station within 60 s:\n{}",
            log_tail(log)
        );
        sub.collect_for(100).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_never_move_the_cursor_past_the_broker() {
    let broker = TestBroker::start().await;
    let id = station_id("powercut");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("powercut.db");
    let cfg_path: PathBuf = dir.path().join("powercut.toml");
    let mut cfg = broker.config(&id, broker.addr);
    cfg.storage.path = db.clone();
    cfg.mqtt.discovery = false;
    std::fs::write(&cfg_path, cfg.to_toml().expect("config as TOML")).expect("write config");

    let mut sub = Subscriber::connect(
        &broker,
        &format!("{id}-dash"),
        &[format!("anemone/{id}/reading/#")],
    )
    .await;
    let mut received = Received::default();
    let mut rng = Lcg(0xC0FF_EE07);
    let mut start = JUNE_1;
    let mut cursors = Vec::new();

    for cut in 0..CUTS {
        let log = dir.path().join(format!("cut{cut}.log"));
        let mut child = start_station(&cfg_path, start, "24h", &log);
        wait_for_traffic(&mut sub, &mut child.0, start, &log).await;
        sub.collect_for(rng.next(1_500)).await;
        let _ = child.0.kill(); // SIGKILL: the power cut
        let status = child.0.wait().expect("wait for the killed station");
        assert!(
            !status.success(),
            "cut {cut}: the run ended on its own before the cut"
        );

        let snap = snapshot(&db);
        assert_eq!(snap.integrity, "ok", "cut {cut}: integrity_check");
        // The broker stays up: what it acknowledged reaches the subscriber shortly.
        let owed: Vec<i64> = snap
            .ids
            .iter()
            .copied()
            .filter(|id| *id <= snap.cursor)
            .collect();
        let missing = received.wait_for_all(&mut sub, &owed, DRAIN_SECS).await;
        assert!(
            missing.is_empty(),
            "cut {cut}: the persisted publish cursor is {} but {} of the {} stored readings \
             at or below it never reached the subscriber (within {DRAIN_SECS} s), e.g. ids {:?}",
            snap.cursor,
            missing.len(),
            owed.len(),
            &missing[..missing.len().min(10)]
        );
        cursors.push((snap.cursor, owed.len(), snap.ids.len()));
        // The power comes back a minute later (station time).
        start = snap.last_ts.map_or(start, |ts| ts + 60_000);
    }

    // The last restart runs to its end: it carries on and publishes everything still owed.
    let log = dir.path().join("last.log");
    let mut child = start_station(&cfg_path, start, "30m", &log);
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .expect("join")
        .expect("wait for the last run");
    assert!(
        status.success(),
        "the last run failed ({status}):\n{}",
        log_tail(&log)
    );
    let snap = snapshot(&db);
    assert_eq!(snap.integrity, "ok", "after the last run: integrity_check");
    assert!(
        snap.last_ts.is_some_and(|ts| ts >= start),
        "the last run stored readings of its own"
    );
    let missing = received.wait_for_all(&mut sub, &snap.ids, 30).await;
    assert!(
        missing.is_empty(),
        "{} of {} stored readings never reached the subscriber, e.g. ids {:?}",
        missing.len(),
        snap.ids.len(),
        &missing[..missing.len().min(10)]
    );
    let last_id = snap.ids.last().copied().unwrap_or(0);
    assert!(
        snap.cursor >= last_id,
        "the last run drained, yet the cursor {} is below the last stored id {last_id}",
        snap.cursor
    );
    eprintln!(
        "Power cuts (cursor, stored readings at or below it, stored readings): {cursors:?}; \
         at the end {} stored, {} distinct ids received, cursor {}.",
        snap.ids.len(),
        received.ids.len(),
        snap.cursor
    );
}
