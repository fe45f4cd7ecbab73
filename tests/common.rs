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

/// A day of a `hardware/` preset run as a user would try it: `anemone run --simulate
/// --speed max --duration 24h --seed <seed> --start 2026-06-06` with MQTT off, into a
/// temporary database. Returns every stored reading and the (sensor, quantity) pairs that
/// have an unflagged value.
pub fn simulated_preset_day(
    preset: &str,
    seed: u64,
) -> (
    Vec<StoredReading>,
    std::collections::BTreeSet<(String, Quantity)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("preset.db");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hardware")
        .join(preset);
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace(
            "path = \"/var/lib/anemone/anemone.db\"",
            &format!("path = \"{}\"", db.display()),
        )
        .replace("[mqtt]\n", "[mqtt]\nenabled = false\n");
    // No page on a fixed port in a test.
    let text = if text.contains("\n[web]") {
        text.replace("\n[web]\n", "\n[web]\nenabled = false\n")
    } else {
        format!("{text}\n[web]\nenabled = false\n")
    };
    let cfg = dir.path().join("preset.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = crate::cli::bin()
        .args(["run", "--simulate", "--speed", "max", "--duration", "24h"])
        .args([
            "--seed",
            &seed.to_string(),
            "--start",
            "2026-06-06",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readings = Store::open_read_only(&db, chrono_tz::UTC)
        .unwrap()
        .readings(&Default::default())
        .unwrap();
    let seen = readings
        .iter()
        .map(|r| &r.reading)
        .filter(|r| r.value.is_some() && r.flags.is_ok())
        .map(|r| (r.sensor.to_string(), r.quantity))
        .collect();
    (readings, seen)
}
