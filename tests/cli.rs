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
        .replace("listen = \"0.0.0.0:8080\"", "listen = \"127.0.0.1:0\"")
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
            // Written for a deployed Pi: the files they name exist there, not here.
            let out = run(bin()
                .args(["validate", "--skip-files", "--config"])
                .arg(&path));
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

// ---- Issue 13: secrets, warnings, the embedded broker's accounts, one set of rules ------

/// A port nothing listens on right now (never 1883).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A simulated station (one BME280), then `mqtt` as its `[mqtt]` section (and whatever
/// tables `mqtt` goes on to add). The database is given with `--db` (see [`run_cmd`]).
fn station_config(dir: &Path, mqtt: &str) -> PathBuf {
    let text = format!(
        "[hal]\nsimulate = true\n\n[[sensor]]\ntype = \"bme280\"\nid = \"air\"\n\n[web]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\n{mqtt}\n"
    );
    let path = dir.join("station.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `anemone validate`.
fn validate_cmd(cfg: &Path) -> Output {
    run(bin()
        .current_dir(cfg.parent().unwrap())
        .args(["validate", "--config"])
        .arg(cfg))
}

/// `anemone run`: a simulated minute on a virtual clock.
fn run_cmd(cfg: &Path) -> Output {
    run(bin()
        .env("RUST_LOG", "info")
        .current_dir(cfg.parent().unwrap())
        .arg("--db")
        .arg(cfg.with_file_name("station.db"))
        .args([
            "run",
            "--simulate",
            "--speed",
            "max",
            "--duration",
            "1m",
            "--config",
        ])
        .arg(cfg))
}

/// `anemone mqtt check`.
fn check_cmd(cfg: &Path) -> Output {
    run(bin()
        .current_dir(cfg.parent().unwrap())
        .args(["mqtt", "check", "--config"])
        .arg(cfg))
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The parts of a secret a reader would recognise: every run of 5 characters of it.
fn recognisable_parts(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 5 {
        return vec![secret.to_string()];
    }
    chars.windows(5).map(|w| w.iter().collect()).collect()
}

#[test]
fn no_secret_in_any_output_of_validate_run_or_mqtt_check() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("broker = \"mqtts://127.0.0.1:{port}\"\nusername = \"station\"\n");
    // (what the case is, secret, the [mqtt] section and beyond)
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "invalid escape on the password's line",
            "Tr0ub4dor\\&3\\q",
            format!("{base}password = \"Tr0ub4dor\\&3\\q\"\n"),
        ),
        (
            "integer password",
            "98765432109",
            format!("{base}password = 98765432109\n"),
        ),
        (
            "overflowing integer password",
            "987654321098765432109876",
            format!("{base}password = 987654321098765432109876\n"),
        ),
        (
            "float password",
            "31415926535.5",
            format!("{base}password = 31415926535.5\n"),
        ),
        (
            "unterminated password string",
            "Qz7Wv9Xk2Lm",
            format!("{base}password = \"Qz7Wv9Xk2Lm\nkeep_alive = \"30s\"\n"),
        ),
        (
            "syntax error on the line after the password",
            "Hy4Jd8Ns1Pq",
            format!("{base}password = \"Hy4Jd8Ns1Pq\"\nkeep_alive = = \"30s\"\n"),
        ),
        (
            "syntax error on the line before the password",
            "Ug6Rc3Vb7Te",
            format!("{base}keep_alive = \"30s\n password = \"Ug6Rc3Vb7Te\"\n"),
        ),
        (
            "syntax error right after the password on its line",
            "Mk5Fp2Ws8Yd",
            format!("{base}password = \"Mk5Fp2Ws8Yd\" x\n"),
        ),
        (
            "literal string password with a type error next to it",
            "Lr9Gt4Hq6Zc",
            format!("{base}password = 'Lr9Gt4Hq6Zc'\nkeep_alive = true\n"),
        ),
        (
            "unknown key next to the password",
            "Bn3Xe7Kw5Ja",
            format!("{base}password = \"Bn3Xe7Kw5Ja\"\npasword = \"Bn3Xe7Kw5Ja\"\n"),
        ),
        (
            "multi-line password with an invalid escape",
            "Cv8Ym2Dp4Rs",
            format!("{base}password = \"\"\"Cv8Ym2\nDp4Rs\\q\"\"\"\n"),
        ),
        (
            "multi-line literal password and a syntax error inside the next line",
            "Wq2Nh6Tz9Fb",
            format!("{base}password = '''Wq2Nh6\nTz9Fb'''\nkeep_alive \"30s\"\n"),
        ),
        (
            "password in an inline table",
            "Ep5Sa8Gx3Mv",
            format!("{base}password = \"x\"\nusers = [{{ username = \"lab\", password = \"Ep5Sa8Gx3Mv\", colour = 1 }}]\n"),
        ),
        (
            "integer password in an inline table",
            "12345678901234",
            format!("{base}users = [{{ username = \"lab\", password = 12345678901234 }}]\n"),
        ),
        (
            "password in an array of tables with an unknown key",
            "Kd7Vr2Qn9Hw",
            format!("{base}\n[[mqtt.users]]\nusername = \"lab\"\npassword = \"Kd7Vr2Qn9Hw\"\ncolour = 1\n"),
        ),
        (
            "invalid escape in an account's password",
            "Gh5\\qJk8Lp",
            format!("{base}users = [{{ username = \"lab\", password = \"Gh5\\qJk8Lp\" }}]\n"),
        ),
        (
            "overflowing integer as an account's password",
            "876543210987654321098765",
            format!("{base}\n[[mqtt.users]]\nusername = \"lab\"\npassword = 876543210987654321098765\n"),
        ),
        (
            "unterminated account password",
            "Rt8Yp3Wq6Zn",
            format!("{base}\n[[mqtt.users]]\nusername = \"lab\"\npassword = \"Rt8Yp3Wq6Zn\n"),
        ),
        (
            "account password with a syntax error on the next line",
            "Jm4Xc9Vb2Hs",
            format!("{base}\n[[mqtt.users]]\nusername = \"lab\"\npassword = \"Jm4Xc9Vb2Hs\"\ncolour = \n"),
        ),
        (
            "multi-line account password, wrong type beside it",
            "Pk7Dn3Qw5Ty",
            format!("{base}\n[[mqtt.users]]\nusername = 7\npassword = \"\"\"Pk7Dn3\nQw5Ty\"\"\"\n"),
        ),
        (
            "dotted key password with a wrong type elsewhere",
            "Zt4Pc8Bm6Lx",
            format!("{base}\n[derived]\ndew_point = 3\n[station]\nmqtt.password = \"Zt4Pc8Bm6Lx\"\n"),
        ),
        (
            "password in the broker URL",
            "Fy3Jq7Wd5Nc",
            format!("broker = \"mqtt://station:Fy3Jq7Wd5Nc@127.0.0.1:{port}\"\n"),
        ),
        (
            "password with a bad broker",
            "Sx6Hb9Kr4Tp",
            "broker = \"mqtt:/127.0.0.1\"\nusername = \"u\"\npassword = \"Sx6Hb9Kr4Tp\"\n".to_string(),
        ),
    ];
    let mut leaks = Vec::new();
    for (what, secret, mqtt) in &cases {
        let cfg = station_config(dir.path(), mqtt);
        let outputs = [
            ("validate", validate_cmd(&cfg)),
            ("run", run_cmd(&cfg)),
            ("mqtt check", check_cmd(&cfg)),
        ];
        for (command, out) in &outputs {
            let text = all_output(out);
            if out.status.success() {
                leaks.push(format!("{what}: `{command}` accepted the config:\n{text}"));
            }
            if let Some(part) = recognisable_parts(secret)
                .into_iter()
                .find(|part| text.contains(part.as_str()))
            {
                leaks.push(format!(
                    "{what}: `{command}` printed `{part}` of the secret:\n{text}"
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n----\n"));
}

/// The verdict of `validate` and of `run` on one config: accepted, or refused naming `key`.
fn same_verdict(dir: &Path, what: &str, mqtt: &str, accepted: bool, key: &str) -> Vec<String> {
    let cfg = station_config(dir, mqtt);
    let mut wrong = Vec::new();
    let v = validate_cmd(&cfg);
    let r = run_cmd(&cfg);
    for (command, out) in [("validate", &v), ("run", &r)] {
        let text = all_output(out);
        if out.status.success() != accepted {
            wrong.push(format!(
                "{what}: `{command}` {} it:\n{text}",
                if accepted { "refused" } else { "accepted" }
            ));
        } else if !accepted && !text.contains(key) {
            wrong.push(format!(
                "{what}: `{command}` does not name `{key}`:\n{text}"
            ));
        }
        if accepted && command == "run" && text.contains("publishing is off") {
            wrong.push(format!(
                "{what}: `run` started with publishing off:\n{text}"
            ));
        }
    }
    // `mqtt check` loads the config the same way: it refuses what they refuse (what they
    // accept it goes on to try against a broker, which may not be running here).
    if !accepted {
        let c = check_cmd(&cfg);
        let text = all_output(&c);
        if c.status.success() || !text.contains(key) {
            wrong.push(format!(
                "{what}: `mqtt check` does not refuse it naming `{key}`:\n{text}"
            ));
        }
    }
    wrong
}

#[test]
fn validate_and_run_agree_on_topics_client_ids_durations_and_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("listen = \"127.0.0.1:{port}\"\n");
    let long = "a".repeat(70_000);
    let cases: Vec<(&str, String, bool, &str)> = vec![
        (
            "wildcard in the discovery prefix",
            format!("{listen}discovery_prefix = \"homeassistant/#\""),
            false,
            "mqtt.discovery_prefix",
        ),
        (
            "empty discovery prefix",
            format!("{listen}discovery_prefix = \"\""),
            false,
            "mqtt.discovery_prefix",
        ),
        (
            "70 000-character topic prefix",
            format!("{listen}topic_prefix = \"{long}\""),
            false,
            "mqtt.topic_prefix",
        ),
        (
            "NUL in the topic prefix",
            format!("{listen}topic_prefix = \"school\\u0000roof\""),
            false,
            "mqtt.topic_prefix",
        ),
        (
            "plus in the topic prefix",
            format!("{listen}topic_prefix = \"school/+/roof\""),
            false,
            "mqtt.topic_prefix",
        ),
        (
            "empty client id",
            format!("{listen}client_id = \"\""),
            false,
            "mqtt.client_id",
        ),
        (
            "70 000-character client id",
            format!("{listen}client_id = \"{long}\""),
            false,
            "mqtt.client_id",
        ),
        (
            "keep-alive beyond MQTT's 65 535 s",
            format!("{listen}keep_alive = \"100000s\""),
            false,
            "mqtt.keep_alive",
        ),
        (
            "sensor interval of i64::MAX seconds",
            "enabled = false\n[[sensor]]\ntype = \"ds18b20\"\nid = \"water\"\ninterval = 9223372036854775807".into(),
            false,
            "interval",
        ),
        (
            "clock_sync_wait of 10^12 s",
            "enabled = false\n[station]\nclock_sync_wait = 1000000000000".into(),
            false,
            "station.clock_sync_wait",
        ),
        (
            "retention of 10^6 weeks",
            "enabled = false\n[storage]\nretention = \"1000000w\"".into(),
            false,
            "storage.retention",
        ),
        (
            "IPv6 broker URL",
            format!("broker = \"mqtt://[::1]:{port}\""),
            true,
            "",
        ),
        (
            "embedded broker with the station's password",
            format!("{listen}username = \"station\"\npassword = \"s3cret-pw\""),
            true,
            "",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, mqtt, accepted, key) in &cases {
        wrong.extend(same_verdict(dir.path(), what, mqtt, *accepted, key));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n----\n"));
}

#[test]
fn embedded_broker_on_the_network_needs_accounts_or_allow_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let open = format!("listen = \"0.0.0.0:{port}\"\n");
    let mut wrong = Vec::new();
    wrong.extend(same_verdict(
        dir.path(),
        "0.0.0.0 without accounts",
        &open,
        false,
        "mqtt.listen",
    ));
    wrong.extend(same_verdict(
        dir.path(),
        "0.0.0.0 with allow_anonymous",
        &format!("{open}allow_anonymous = true"),
        true,
        "",
    ));
    wrong.extend(same_verdict(
        dir.path(),
        "0.0.0.0 with accounts",
        &format!("{open}users = [{{ username = \"lab\", password = \"lab-pw-1\" }}]"),
        true,
        "",
    ));
    wrong.extend(same_verdict(
        dir.path(),
        "accounts and allow_anonymous together",
        &format!(
            "{open}allow_anonymous = true\nusers = [{{ username = \"lab\", password = \"lab-pw-1\" }}]"
        ),
        false,
        "mqtt.allow_anonymous",
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n----\n"));
    // The open broker is announced at every start.
    let cfg = station_config(dir.path(), &format!("{open}allow_anonymous = true"));
    for out in [validate_cmd(&cfg), run_cmd(&cfg)] {
        let text = all_output(&out);
        assert!(text.contains("allow_anonymous"), "{text}");
        assert!(text.to_lowercase().contains("warn"), "{text}");
    }
}

#[cfg(unix)]
#[test]
fn validate_and_run_warn_of_a_password_file_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("mqtt-password");
    std::fs::write(&secret, "pw-on-first-line\n").unwrap();
    let port = free_port();
    let cfg = station_config(
        dir.path(),
        &format!(
            "broker = \"mqtts://127.0.0.1:{port}\"\nusername = \"station\"\npassword_file = \"{}\"",
            secret.display()
        ),
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    for out in [validate_cmd(&cfg), run_cmd(&cfg)] {
        let text = all_output(&out);
        assert!(out.status.success(), "{text}");
        assert!(text.contains(&secret.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", secret.display())),
            "{text}"
        );
        assert!(!text.contains("pw-on-first-line"), "{text}");
    }
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    for out in [validate_cmd(&cfg), run_cmd(&cfg)] {
        let text = all_output(&out);
        assert!(out.status.success(), "{text}");
        assert!(!text.contains("chmod"), "{text}");
    }
}

#[test]
fn validate_and_run_warn_when_the_password_goes_unencrypted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = format!("mqtt://127.0.0.1:{port}");
    let cfg = station_config(
        dir.path(),
        &format!(
            "broker = \"{broker}\"\nusername = \"station\"\npassword = \"pw-in-clear\"\nallow_insecure = true"
        ),
    );
    for out in [validate_cmd(&cfg), run_cmd(&cfg)] {
        let text = all_output(&out);
        assert!(out.status.success(), "{text}");
        let warning = text
            .lines()
            .find(|l| l.contains("unencrypted"))
            .unwrap_or_else(|| panic!("no warning about the password in clear:\n{text}"));
        assert!(warning.contains(&broker), "{text}");
        assert!(warning.to_lowercase().contains("warn"), "{text}");
    }
    // Without a password nothing is sent in clear: no warning.
    let cfg = station_config(
        dir.path(),
        &format!("broker = \"{broker}\"\nallow_insecure = true"),
    );
    for out in [validate_cmd(&cfg), run_cmd(&cfg)] {
        let text = all_output(&out);
        assert!(!text.contains("unencrypted"), "{text}");
    }
}

#[test]
fn run_refuses_a_clock_speed_whose_arithmetic_would_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = station_config(dir.path(), "enabled = false");
    for speed in ["1e300", "1e-300"] {
        let out = run(bin()
            .current_dir(dir.path())
            .arg("--db")
            .arg(dir.path().join("speed.db"))
            .args(["run", "--simulate", "--duration", "1s", "--speed", speed])
            .arg("--config")
            .arg(&cfg));
        let text = all_output(&out);
        assert!(!out.status.success(), "--speed {speed} accepted:\n{text}");
        assert!(!text.contains("panicked"), "--speed {speed}:\n{text}");
        assert!(text.contains("--speed"), "--speed {speed}:\n{text}");
    }
}

/// A small station database (WAL mode, so `-wal` and `-shm` exist while it is open).
fn small_db(dir: &Path) -> (PathBuf, Store) {
    use anemone::reading::{Quantity, Reading, SensorId};
    let path = dir.join("exp.db");
    let opts = anemone::store::StoreOptions {
        synchronous: anemone::config::Synchronous::Normal,
        tz: chrono_tz::UTC,
        vfs: None,
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

#[test]
fn read_simulated_htu21d_prints_temperature_and_humidity() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("htu.toml");
    let db = dir.path().join("htu.db");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\npath = \"{}\"\n[mqtt]\nenabled = false\n[[sensor]]\ntype = \"htu21d\"\nid = \"hat\"\n",
            db.display()
        ),
    )
    .unwrap();
    let out = run(bin().args(["read", "--simulate", "--config"]).arg(&cfg));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for quantity in ["air_temperature", "relative_humidity"] {
        let line = text
            .lines()
            .find(|l| l.starts_with("hat") && l.contains(quantity))
            .unwrap_or_else(|| panic!("no {quantity} line: {text}"));
        let value: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!((-30.0..=100.0).contains(&value), "{line}");
    }
}

/// `read --json` gives each value to its sensor's resolution, not with false precision
/// (the simulated chips give raw-register values with many digits).
#[test]
fn read_json_rounds_values_to_the_sensor_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bin()
        .current_dir(dir.path())
        .args(["read", "--simulate", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arr = readings.as_array().unwrap();
    assert!(!arr.is_empty());
    let decimals = |v: &serde_json::Value| {
        let text = v.to_string();
        text.split_once('.').map_or(0, |(_, frac)| frac.len())
    };
    for r in arr {
        let most = match r["quantity"].as_str().unwrap_or_default() {
            "air_pressure" | "air_temperature" | "relative_humidity" | "water_temperature"
            | "ground_temperature" => 2,
            "wind_speed" | "wind_direction" | "dew_point" | "sea_level_pressure" => 1,
            _ => 3,
        };
        if r["value"].is_number() {
            assert!(decimals(&r["value"]) <= most, "{r}");
        }
    }
    assert!(
        arr.iter().any(|r| r["quantity"] == "air_pressure"),
        "{readings:#}"
    );
}
