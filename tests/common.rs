//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anemone::clock::Clock;
use anemone::config::Config;
use anemone::reading::{Quantity, StoredReading, Timestamp};
use anemone::station::{self, RunOptions, RunSummary};
use anemone::store::{Query, Store};

/// 2026-06-01T00:00:00Z.
pub const JUNE_1: Timestamp = 1_780_272_000_000;

/// A small deterministic generator for kill delays (no dependency needed).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `below`.
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// The built-in simulated station with its database at `db`.
pub fn sim_config(db: &Path, seed: u64) -> Config {
    let mut c = Config::builtin();
    c.web.enabled = false;
    c.storage.path = db.to_path_buf();
    c.hal.seed = seed;
    c.mqtt.enabled = false;
    c
}

/// Runs `config` on a virtual clock from `start` for `duration_ms`.
pub async fn run_virtual(config: Config, start: Timestamp, duration_ms: i64) -> RunSummary {
    let db_path = config.storage.path.clone();
    let opts = RunOptions {
        clock: Clock::virtual_at(start),
        duration_ms: Some(duration_ms),
        db_path,
        live: None,
        writer_handle: None,
        progress: None,
        web_addr: None,
    };
    match station::run(Arc::new(config), opts, std::future::pending()).await {
        Ok(s) => s,
        Err(e) => panic!("run failed: {e}"),
    }
}

/// Every stored reading, sorted by (ts, sensor, quantity).
pub fn all_readings(db: &Path) -> Vec<StoredReading> {
    let store = Store::open_read_only(db, chrono_tz::UTC).expect("open db");
    let mut v = store.readings(&Query::default()).expect("query readings");
    v.sort_by(|a, b| {
        (a.reading.ts, &a.reading.sensor, a.reading.quantity).cmp(&(
            b.reading.ts,
            &b.reading.sensor,
            b.reading.quantity,
        ))
    });
    v
}

/// Count of readings per (sensor, quantity).
pub fn counts(readings: &[StoredReading]) -> BTreeMap<(String, Quantity), usize> {
    let mut m = BTreeMap::new();
    for r in readings {
        *m.entry((r.reading.sensor.to_string(), r.reading.quantity))
            .or_insert(0) += 1;
    }
    m
}
