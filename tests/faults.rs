//! Fault tests: power cuts, an unplugged sensor, bad input. Each is bounded in time.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anemone::reading::{Flags, Quantity};
use anemone::store::{Query, Store};

use crate::cli::bin;
use crate::common::Lcg;

/// The simulated station with MQTT off, the default commit interval and the given db.
fn config(dir: &Path, db: &Path) -> std::path::PathBuf {
    let text = anemone::config::EXAMPLE
        .replace("simulate = false", "simulate = true")
        .replace("[mqtt]\n", "[mqtt]\nenabled = false\n")
        .replace("listen = \"0.0.0.0:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "path = \"/var/lib/anemone/anemone.db\"",
            &format!("path = \"{}\"", db.display()),
        );
    let path = dir.join(format!(
        "{}.toml",
        db.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

type Series = BTreeMap<(String, Quantity), Vec<(i64, Option<f64>)>>;

fn series(db: &Path) -> Series {
    let store = Store::open_read_only(db, chrono_tz::UTC).unwrap();
    let mut m: Series = BTreeMap::new();
    let mut rows = store.readings(&Query::default()).unwrap();
    rows.sort_by_key(|r| r.id);
    for r in rows {
        m.entry((r.reading.sensor.to_string(), r.reading.quantity))
            .or_default()
            .push((r.reading.ts, r.reading.value));
    }
    m
}

#[test]
fn power_cuts_leave_a_clean_gap_free_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--simulate",
        "--speed",
        "max",
        "--seed",
        "5",
        "--start",
        "2026-06-01",
    ];
    // The reference: the same simulated hours, uninterrupted.
    let reference_db = dir.path().join("reference.db");
    let cfg = config(dir.path(), &reference_db);
    let out = bin()
        .args(args)
        .args(["--duration", "6h", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = series(&reference_db);

    let mut rng = Lcg(0x5eed);
    for round in 0..6 {
        let db = dir.path().join(format!("cut{round}.db"));
        let cfg = config(dir.path(), &db);
        let mut child = bin()
            .args(args)
            .args(["--duration", "6h", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = 150 + rng.next(1_200);
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL: the power cut
        let _ = child.wait();
        if !db.exists() {
            continue;
        }
        let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        // Nothing is owed to a broker that never acknowledged anything.
        assert_eq!(store.publish_cursor().unwrap(), 0);
        drop(store);
        let got = series(&db);
        let mut newest = i64::MIN;
        for (key, values) in &got {
            let want = &reference[key];
            assert!(
                values.len() <= want.len(),
                "round {round} {key:?}: more than the reference"
            );
            assert_eq!(
                values[..],
                want[..values.len()],
                "round {round} {key:?}: not a prefix"
            );
            newest = newest.max(values.last().map_or(i64::MIN, |v| v.0));
        }
        // A commit holds every series up to the same moment: the 1 Hz series stop within a
        // tick or two of the newest reading.
        for key in [
            ("wind".to_string(), Quantity::WindSpeed),
            ("vane".to_string(), Quantity::WindDirection),
        ] {
            if let Some(values) = got.get(&key) {
                let last = values.last().map_or(i64::MIN, |v| v.0);
                assert!(
                    newest - last <= 6_000,
                    "round {round} {key:?}: gap of {} ms",
                    newest - last
                );
            }
        }
        // And the station restarts on the same database and carries on.
        let out = bin()
            .args([
                "run",
                "--simulate",
                "--speed",
                "max",
                "--seed",
                "5",
                "--duration",
                "10m",
                "--config",
            ])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restart after cut {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugged_probe_is_flagged_recovers_and_delays_nobody() {
    use anemone::clock::Clock;
    use anemone::station::{run, RunOptions};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let w1 = dir.path().join("w1");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/w1/three-probes/28-0000000000a1/w1_slave");
    for rom in ["28-0000000000a1", "28-0000000000d4"] {
        std::fs::create_dir_all(w1.join(rom)).unwrap();
        std::fs::copy(&fixture, w1.join(rom).join("w1_slave")).unwrap();
    }
    let db = dir.path().join("unplug.db");
    let text = format!(
        "[hal]\nw1_root = \"{}\"\n[web]\nenabled = false\n[mqtt]\nenabled = false\n[storage]\npath = \"{}\"\ncommit_interval = \"1s\"\n\
         [[sensor]]\ntype = \"ds18b20\"\nid = \"steady\"\nrom = \"28-0000000000a1\"\ninterval = \"1s\"\n\
         [[sensor]]\ntype = \"ds18b20\"\nid = \"flaky\"\nrom = \"28-0000000000d4\"\ninterval = \"1s\"\n",
        w1.display(),
        db.display()
    );
    let config = anemone::config::Config::from_toml(&text, "test").unwrap();
    let started = anemone::clock::system_now();
    let station = tokio::spawn(run(
        Arc::new(config),
        RunOptions {
            clock: Clock::real(),
            duration_ms: Some(7_000),
            db_path: db.clone(),
            live: None,
            writer_handle: None,
            progress: None,
            web_addr: None,
        },
        std::future::pending(),
    ));
    // Unplug the flaky probe (the kernel removes its directory) for ~2.5 s, then plug it back.
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let flaky = w1.join("28-0000000000d4");
    let saved = dir.path().join("saved");
    std::fs::rename(&flaky, &saved).unwrap();
    let unplugged_at = anemone::clock::system_now();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    std::fs::rename(&saved, &flaky).unwrap();
    let replugged_at = anemone::clock::system_now();
    station.await.unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30));

    let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
    let rows = store.readings(&Query::default()).unwrap();
    let of = |s: &str| -> Vec<_> {
        rows.iter()
            .filter(|r| &*r.reading.sensor == s)
            .map(|r| r.reading.clone())
            .collect()
    };
    let flaky = of("flaky");
    let steady = of("steady");
    let flagged: Vec<_> = flaky
        .iter()
        .filter(|r| r.flags.contains(Flags::SENSOR_ERROR))
        .collect();
    assert!(
        !flagged.is_empty(),
        "the unplugged probe gave flagged readings"
    );
    assert!(flagged.iter().all(|r| r.value.is_none()
        && r.ts >= unplugged_at - 1_000
        && r.ts <= replugged_at + 1_000));
    assert!(
        flaky.iter().any(|r| r.ts > replugged_at && r.flags.is_ok()),
        "it recovered on its own"
    );
    // The steady probe read every second throughout: no gap beyond one interval (+ slack).
    assert!(steady.len() >= 5, "{}", steady.len());
    assert!(steady.iter().all(|r| r.flags.is_ok()));
    let gaps: Vec<i64> = steady.windows(2).map(|w| w[1].ts - w[0].ts).collect();
    assert!(
        gaps.iter().all(|g| *g <= 1_500),
        "steady probe delayed: gaps {gaps:?}"
    );
    assert!(steady.first().unwrap().ts - started <= 1_500);
}

mod bad_input {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        /// Any text at all: the validator answers with problems, never a panic.
        #[test]
        fn config_text_never_panics(text in "\\PC{0,400}") {
            let _ = anemone::config::validate_text(&text);
        }

        /// Valid TOML with values of every type under every known key: one clear problem
        /// per bad value, each naming its key, never a panic.
        #[test]
        fn malformed_values_give_one_problem_each(
            section in prop::sample::select(vec!["station", "storage", "hal", "mqtt", "qc", "derived"]),
            key in prop::sample::select(vec!["id", "timezone", "altitude_m", "commit_interval", "retention", "simulate", "seed", "w1_root", "broker", "listen", "discovery", "air_temperature", "dew_point", "latitude"]),
            value in prop::sample::select(vec!["-1", "1e400", "\"\"", "[]", "{}", "true", "\"x\"", "0", "\"-5s\"", "1979-05-27T07:32:00Z"]),
        ) {
            let text = format!("[{section}]\n{key} = {value}\n");
            let (_, problems) = anemone::config::validate_text(&text);
            for p in &problems {
                prop_assert!(!p.message.is_empty());
                prop_assert!(p.key.starts_with(section) || p.key == "(file)", "{p}");
            }
            prop_assert!(problems.len() <= 2, "{problems:?}");
        }

        /// The w1_slave parser and the vane lookup through the public HAL path: never panic.
        #[test]
        fn w1_text_never_panics(text in "\\PC{0,200}") {
            let _ = anemone_drivers::ds18b20::parse_w1_slave(&text);
        }
    }
}

/// Retention with the broker unreachable: three simulated days with `retention = "1d"`
/// keep every reading, since none was acknowledged (issue 13: two thirds were deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_what_an_unreachable_broker_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.db");
    let mut config = crate::common::sim_config(&db, 9);
    // Two probes keep the run short; the rule does not depend on the sensors.
    config
        .sensors
        .retain(|s| s.id == "ground" || s.id == "water");
    assert_eq!(config.sensors.len(), 2);
    config.storage.retention = anemone::config::Span::secs(86_400);
    // MQTT configured, its broker unreachable: a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    config.mqtt.enabled = true;
    config.mqtt.broker = format!("mqtt://127.0.0.1:{port}");
    let summary = crate::common::run_virtual(config, crate::common::JUNE_1, 3 * 86_400_000).await;
    let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
    assert_eq!(
        store.publish_cursor().unwrap(),
        0,
        "nothing was acknowledged"
    );
    let stored = store.count_readings(&Query::default()).unwrap();
    assert!(summary.committed > 5_000, "{summary:?}");
    assert_eq!(
        stored, summary.committed,
        "unpublished readings were deleted"
    );
    let oldest = store.readings(&Query::default()).unwrap()[0].reading.ts;
    assert!(oldest < crate::common::JUNE_1 + 3_600_000, "{oldest}");
}
