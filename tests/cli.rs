//! The `anemone` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anemone::store::Store;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anemone"));
    c.env("RUST_LOG", "warn");
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run anemone")
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// A config for the simulated station with MQTT off and a 1-s commit interval.
fn sim_config(dir: &Path, db: &Path) -> PathBuf {
    let text = anemone::config::EXAMPLE
        .replace("simulate = false", "simulate = true")
        .replace("commit_interval = \"2m\"", "commit_interval = \"1s\"")
        .replace("[mqtt]\n", "[mqtt]\nenabled = false\n")
        .replace(
            "path = \"/var/lib/anemone/anemone.db\"",
            &format!("path = \"{}\"", db.display()),
        );
    let path = dir.join("sim.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn validate_reports_four_problems_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        r#"
[station]
id = "mast"
timezone = "Europe/Lodnon"

[storage]
comit_interval = "5s"

[[sensor]]
type = "bme280"
id = "air"
interval = "0s"

[[sensor]]
type = "anemometer"
id = "air"
"#,
    )
    .unwrap();
    let out = run(bin().args(["validate", "--config"]).arg(&cfg));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("- "))
        .collect();
    assert_eq!(problems.len(), 4, "{text}");
    assert!(
        text.contains("storage.comit_interval: unknown key. Did you mean `commit_interval`?"),
        "{text}"
    );
    assert!(
        text.contains("station.timezone: unknown time zone"),
        "{text}"
    );
    assert!(text.contains("interval: must be more than 0"), "{text}");
    assert!(text.contains("duplicate sensor id \"air\""), "{text}");
}

#[test]
fn config_init_prints_a_valid_example() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("anemone.toml");
    let out = run(bin().args(["config", "init", "--output"]).arg(&cfg));
    assert!(out.status.success(), "{out:?}");
    let out = run(bin().args(["validate", "--config"]).arg(&cfg));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Refuses to overwrite without --force.
    let out = run(bin().args(["config", "init", "--output"]).arg(&cfg));
    assert!(!out.status.success());
}

#[test]
fn w1_fixture_gives_one_good_and_two_flagged_readings() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture("w1/three-probes");
    let text = std::fs::read_to_string(root.join("anemone.toml"))
        .unwrap()
        .replace(
            "w1_root = \".\"",
            &format!("w1_root = \"{}\"", root.display()),
        );
    let cfg = dir.path().join("w1.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = run(bin().args(["read", "--json", "--config"]).arg(&cfg));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected.json")).unwrap())
            .unwrap();
    let arr = readings.as_array().unwrap();
    assert_eq!(arr.len(), 3, "{readings:#}");
    let find = |sensor: &str| arr.iter().find(|r| r["sensor"] == sensor).unwrap();
    let good = find("ground");
    for key in ["sensor", "quantity", "value", "flags"] {
        assert_eq!(good[key], expected["good"][key], "{key}");
    }
    for e in expected["flagged"].as_array().unwrap() {
        let r = find(e["sensor"].as_str().unwrap());
        for key in ["quantity", "value", "flags"] {
            assert_eq!(r[key], e[key], "{key} of {}", e["sensor"]);
        }
    }
}

#[test]
fn simulated_hour_then_stats_and_csv_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let cfg = sim_config(dir.path(), &db);
    let out = run(bin()
        .args([
            "run",
            "--simulate",
            "--speed",
            "max",
            "--duration",
            "1h",
            "--seed",
            "1",
        ])
        .args(["--start", "2026-06-01", "--config"])
        .arg(&cfg));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(bin().args(["stats", "--config"]).arg(&cfg));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.contains("2026-06-01"), "{stats}");
    assert!(stats.contains("air_temperature"), "{stats}");
    let csv = dir.path().join("a.csv");
    let out = run(bin()
        .args(["export", "--format", "csv", "--output"])
        .arg(&csv)
        .arg("--config")
        .arg(&cfg));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ts,sensor,quantity,value,unit,flags"));
    let first = lines.next().unwrap();
    assert!(first.starts_with("2026-06-01T00:00:"), "{first}");
    assert!(first.contains("Z,"), "{first}");
    assert!(lines.count() > 1000);
}

#[test]
fn kill_9_then_restart_loses_at_most_one_commit_interval() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let cfg = sim_config(dir.path(), &db);
    let mut child = bin()
        .args(["run", "--simulate", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let it commit a few times (1-s commit interval), then pull the plug.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_millis(4500) {
            break;
        }
    }
    let kill_at = anemone::clock::system_now();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let last = store
        .last_reading_ts()
        .unwrap()
        .expect("some readings were committed");
    let committed = store.count_readings(&Default::default()).unwrap();
    drop(store);
    // At most one commit interval (1 s) plus the wind sensor's 1-s tick is missing.
    assert!(
        kill_at - last <= 2_500,
        "last stored reading {} ms before the kill",
        kill_at - last
    );

    // Restart on the same database: it opens clean and keeps what was there.
    let mut child = bin()
        .args(["run", "--simulate", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SIGTERM: a clean stop flushes everything.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert!(store.count_readings(&Default::default()).unwrap() > committed);
}

#[test]
fn probe_finds_the_simulated_station_and_prints_a_snippet() {
    let out = run(bin().args(["probe", "--simulate"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bus 1 address 0x76: BME280"), "{text}");
    assert!(
        text.contains("address 0x63: Atlas Scientific EZO-pH"),
        "{text}"
    );
    assert!(text.contains("28-00000a1b2c3d"), "{text}");
    assert!(text.contains("type = \"bme280\""), "{text}");
    // The snippet it prints is a valid config.
    let snippet = &text[text.find("[[sensor]]").unwrap()..];
    let (_, problems) = anemone::config::validate_text(snippet);
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn ph_calibration_is_recorded_with_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cal.db");
    let cfg = sim_config(dir.path(), &db);
    let calibrate = |args: &[&str]| {
        run(bin()
            .args(["calibrate", "ph", "--sensor"])
            .args(args)
            .args(["--simulate", "--config"])
            .arg(&cfg))
    };
    let out = calibrate(&["ph", "--point", "mid"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Calibrated ph at mid (pH 7.00)"));
    let out = calibrate(&["ph", "--point", "low"]);
    assert!(out.status.success());
    let out = calibrate(&["ph", "--status"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("calibration point(s); slope acid"), "{text}");
    assert_eq!(text.matches("ph_ezo").count(), 2, "{text}");
    // Not a pH sensor: a clear error.
    let out = calibrate(&["air", "--point", "mid"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pH probe"));
}

#[test]
fn example_configs_in_hardware_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = run(bin().args(["validate", "--config"]).arg(&path));
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stdout)
            );
            n += 1;
        }
    }
    assert!(n >= 2);
}

#[test]
fn no_dev_or_sys_paths_outside_the_hal() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path != src.join("hal") {
                    stack.push(path);
                }
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for needle in ["\"/dev/", "\"/sys/"] {
                assert!(
                    !text.contains(needle),
                    "{} names a {needle} path",
                    path.display()
                );
            }
        }
    }
}

/// A small station database (WAL mode, so `-wal` and `-shm` exist while it is open).
fn small_db(dir: &Path) -> (PathBuf, Store) {
    use anemone::reading::{Quantity, Reading, SensorId};
    let path = dir.join("exp.db");
    let opts = anemone::store::StoreOptions {
        synchronous: anemone::config::Synchronous::Normal,
        tz: chrono_tz::UTC,
    };
    let mut s = Store::open(&path, &opts).unwrap();
    let m: SensorId = std::sync::Arc::from("mast");
    let rows: Vec<Reading> = (0..50)
        .map(|i| {
            Reading::new(
                1_780_000_000_000 + i * 1_000,
                &m,
                Quantity::AirTemperature,
                20.0,
            )
        })
        .collect();
    s.insert_batch(&rows).unwrap();
    (path, s)
}

fn digest(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn export_to(db: &Path, output: &Path, force: bool) -> Output {
    let mut cmd = bin();
    cmd.arg("--db")
        .arg(db)
        .args(["export", "--output"])
        .arg(output);
    if force {
        cmd.arg("--force");
    }
    run(&mut cmd)
}

#[test]
fn export_refuses_to_overwrite_the_database_it_exports() {
    let dir = tempfile::tempdir().unwrap();
    // Held open, as a running station holds it.
    let (db, live) = small_db(dir.path());
    let wal = dir.path().join("exp.db-wal");
    let shm = dir.path().join("exp.db-shm");
    std::fs::create_dir(dir.path().join("x")).unwrap();
    std::os::unix::fs::symlink(&db, dir.path().join("link.csv")).unwrap();
    std::fs::hard_link(&db, dir.path().join("hard.csv")).unwrap();
    // (Readers update the -shm index, so only its existence is compared.)
    // The same files under other names: relative, `..`, a symlink, a hard link.
    let same_db = [
        db.clone(),
        dir.path().join("x/../exp.db"),
        dir.path().join("./exp.db"),
        dir.path().join("link.csv"),
        dir.path().join("hard.csv"),
    ];
    let before = (digest(&db), digest(&wal), shm.exists());
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the WAL holds the readings"
    );
    for force in [false, true] {
        for target in same_db.iter().chain([&wal, &shm]) {
            let out = export_to(&db, target, force);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{} (force {force}) was accepted",
                target.display()
            );
            assert!(err.contains(&target.display().to_string()), "{err}");
            assert!(err.contains("database"), "{err}");
            assert_eq!(
                (digest(&db), digest(&wal), shm.exists()),
                before,
                "{}",
                target.display()
            );
        }
    }
    // Relative to the working directory too.
    let out = run(bin()
        .current_dir(dir.path())
        .args(["--db", "exp.db", "export", "--output", "exp.db", "--force"]));
    assert!(!out.status.success());
    assert_eq!((digest(&db), digest(&wal), shm.exists()), before);
    drop(live);
    let s = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
    assert_eq!(s.count_readings(&Default::default()).unwrap(), 50);
}

#[test]
fn export_refuses_an_existing_file_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _live) = small_db(dir.path());
    let csv = dir.path().join("old.csv");
    std::fs::write(&csv, "precious\n").unwrap();
    let out = export_to(&db, &csv, false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an existing file was overwritten");
    assert!(err.contains(&csv.display().to_string()), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "precious\n");
    let out = export_to(&db, &csv, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 51, "{text}");
    // A new file needs no --force.
    let fresh = dir.path().join("new.csv");
    let out = export_to(&db, &fresh, false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&fresh).unwrap().lines().count(), 51);
}
