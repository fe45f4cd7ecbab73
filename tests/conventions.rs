//! Issue 20's conventions: exit 78 for a config that cannot run, `ANEMONE_CONFIG`,
//! `--json` on `validate`, `probe` and `mqtt check`, journald priorities, the man page and
//! completions, and `anemone read` for a user who is not root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::cli::bin;

const EX_CONFIG: i32 = 78;

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run anemone")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `body` (a config, `{db}` standing for `dir/<name>.db`) to `dir/<name>.toml`.
fn config_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let db = dir.join(format!("{name}.db"));
    std::fs::write(&path, body.replace("{db}", &db.display().to_string())).unwrap();
    path
}

/// A simulated one-sensor station with MQTT off and its database in `dir`.
fn good_config(dir: &Path) -> PathBuf {
    config_file(
        dir,
        "good",
        "[hal]\nsimulate = true\n\n[storage]\npath = \"{db}\"\n\n[mqtt]\nenabled = false\n\n[[sensor]]\ntype = \"bme280\"\nid = \"air\"\n",
    )
}

/// A config with a problem `validate` finds (an unknown time zone).
fn bad_config(dir: &Path) -> PathBuf {
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[station]\ntimezone = \"Mars/Olympus\"\n").unwrap();
    path
}

#[test]
fn every_command_that_loads_a_config_exits_78_when_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_config(dir.path());
    let missing = dir.path().join("no-such.toml");
    let commands: &[&[&str]] = &[
        &["validate"],
        &["run", "--simulate", "--speed", "max", "--duration", "1m"],
        &["read", "--simulate"],
        &["stats"],
        &["export"],
        &["probe", "--simulate"],
        &["mqtt", "check"],
        &[
            "calibrate",
            "ph",
            "--sensor",
            "ph",
            "--status",
            "--simulate",
        ],
    ];
    for args in commands {
        for cfg in [&bad, &missing] {
            let out = run(bin().args(*args).arg("--config").arg(cfg));
            assert_eq!(
                out.status.code(),
                Some(EX_CONFIG),
                "{args:?} with {}: {}",
                cfg.display(),
                text(&out)
            );
        }
    }
    // Other failures keep exit 1: a good config, a wrong option value (and an empty
    // ANEMONE_CONFIG is no config at all).
    let good = good_config(dir.path());
    let out = run(bin()
        .args(["run", "--speed", "max", "--duration", "banana", "--config"])
        .arg(&good)
        .env("ANEMONE_CONFIG", ""));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--duration"), "{}", text(&out));
}

#[test]
fn a_missing_password_file_stops_validate_and_run_with_78() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("station.secret");
    let body = "[hal]\nsimulate = true\n\n[mqtt]\nbroker = \"mqtts://127.0.0.1:1\"\nusername = \"station\"\npassword_file = \"SECRET\"\n\n[[sensor]]\ntype = \"bme280\"\nid = \"air\"\n";
    let cfg = config_file(
        dir.path(),
        "pw",
        &body.replace("SECRET", &secret.display().to_string()),
    );
    let validate = run(bin().args(["validate", "--config"]).arg(&cfg));
    assert_eq!(
        validate.status.code(),
        Some(EX_CONFIG),
        "{}",
        text(&validate)
    );
    assert!(
        text(&validate).contains("mqtt.password_file"),
        "{}",
        text(&validate)
    );
    let started = run(bin()
        .arg("--db")
        .arg(dir.path().join("pw.db"))
        .args([
            "run",
            "--simulate",
            "--speed",
            "max",
            "--duration",
            "1m",
            "--config",
        ])
        .arg(&cfg));
    assert_eq!(started.status.code(), Some(EX_CONFIG), "{}", text(&started));
    assert!(
        text(&started).contains("station.secret"),
        "{}",
        text(&started)
    );
    let check = run(bin()
        .args(["mqtt", "check", "--json", "--config"])
        .arg(&cfg));
    assert_eq!(check.status.code(), Some(EX_CONFIG), "{}", text(&check));
    assert_eq!(json_of(&check)["failed_step"], "settings");
    assert!(
        !dir.path().join("pw.db").exists(),
        "run stored before refusing"
    );
}

#[test]
fn the_unit_does_not_restart_a_config_that_cannot_run() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/anemone.service"),
    )
    .unwrap();
    let keys: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(keys.contains(&"RestartPreventExitStatus=78"), "{unit}");
    assert!(keys.contains(&"Restart=on-failure"), "{unit}");
    // RestartPreventExitStatus= does not cover ExecStartPre= (systemd #11868).
    assert!(
        !keys.iter().any(|l| l.starts_with("ExecStartPre=")),
        "{unit}"
    );
}

#[test]
fn anemone_config_is_used_unless_config_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_config(dir.path());
    let bad = bad_config(dir.path());
    let env_only = run(bin().arg("validate").env("ANEMONE_CONFIG", &good));
    assert!(env_only.status.success(), "{}", text(&env_only));
    assert!(
        text(&env_only).contains("good.toml: OK"),
        "{}",
        text(&env_only)
    );
    let flag_wins = run(bin()
        .args(["validate", "--config"])
        .arg(&good)
        .env("ANEMONE_CONFIG", &bad));
    assert!(flag_wins.status.success(), "{}", text(&flag_wins));
    let env_bad = run(bin().arg("validate").env("ANEMONE_CONFIG", &bad));
    assert_eq!(env_bad.status.code(), Some(EX_CONFIG), "{}", text(&env_bad));
    let help = run(bin().arg("--help"));
    let help = text(&help);
    assert!(
        help.contains("ANEMONE_CONFIG") && help.contains("wins"),
        "{help}"
    );
}

fn json_of(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}"))
}

#[test]
fn validate_probe_and_mqtt_check_print_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let bad = run(bin()
        .args(["validate", "--json", "--config"])
        .arg(bad_config(dir.path())));
    assert_eq!(bad.status.code(), Some(EX_CONFIG));
    let v = json_of(&bad);
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["key"], "station.timezone", "{v}");
    assert!(v["warnings"].is_array());

    let good = good_config(dir.path());
    let ok = json_of(&run(bin()
        .args(["validate", "--json", "--config"])
        .arg(&good)));
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["problems"].as_array().map(Vec::len), Some(0));

    let probe = run(bin()
        .args(["probe", "--simulate", "--json", "--config"])
        .arg(&good));
    assert!(probe.status.success(), "{}", text(&probe));
    let p = json_of(&probe);
    let chips = p["i2c"].as_array().expect("i2c array");
    assert!(
        chips.iter().any(|c| c["address"] == 0x76),
        "the simulated BME280 at 0x76: {p}"
    );
    assert!(
        p["snippet"].as_str().unwrap_or("").contains("bme280"),
        "{p}"
    );

    // A broker that is not there: the check fails at `tcp`, as JSON, exit 1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("mqtt.toml");
    std::fs::write(
        &cfg,
        format!("[mqtt]\nbroker = \"mqtt://127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let check = run(bin()
        .args(["mqtt", "check", "--json", "--config"])
        .arg(&cfg));
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let c = json_of(&check);
    assert_eq!(c["ok"], false);
    assert_eq!(c["failed_step"], "tcp", "{c}");
    assert_eq!(c["steps"][0]["name"], "settings", "{c}");
}

#[test]
fn under_journald_every_log_line_carries_its_priority() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let good = good_config(dir.path());
    let log = dir.path().join("journal");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let out = bin()
        .env("RUST_LOG", "info")
        .env("JOURNAL_STREAM", &stream)
        .args(["run", "--speed", "max", "--duration", "1m", "--config"])
        .arg(&good)
        .stdin(Stdio::null())
        .stderr(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let written = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("<6>")), "{written}");
    for l in &lines {
        let prefixed = ["<3>", "<4>", "<6>", "<7>"]
            .iter()
            .any(|p| l.starts_with(p));
        // The closing summary is for people at a terminal, printed as is.
        assert!(prefixed || l.starts_with("Stored "), "{l}");
    }

    // The final error line of a config that cannot run is an error for journald.
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let out = bin()
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .arg("run")
        .arg("--config")
        .arg(bad_config(dir.path()))
        .stdin(Stdio::null())
        .stderr(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(EX_CONFIG));
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.starts_with("<3>error:"), "{written}");
    assert!(written.lines().all(|l| l.starts_with("<3>")), "{written}");

    // Standard error redirected elsewhere (not the journal's stream): no prefix.
    let out = run(bin()
        .env("JOURNAL_STREAM", &stream)
        .arg("run")
        .arg("--config")
        .arg(bad_config(dir.path())));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error:"));
}

#[test]
fn man_page_and_completions_come_from_the_binary() {
    let man = run(bin().args(["generate", "man"]));
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH anemone 1"), "{page}");
    for word in [
        "validate",
        "ANEMONE_CONFIG",
        "\\-\\-config",
        "EXIT STATUS",
        "78",
    ] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef anemone"),
        ("fish", "complete -c anemone"),
    ] {
        let out = run(bin().args(["generate", "completions", shell]));
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("validate"), "{shell}");
    }
}

/// A simulated hour stored in `dir`; returns the config.
fn simulated_hour(dir: &Path) -> PathBuf {
    let cfg = config_file(
        dir,
        "hour",
        "[hal]\nsimulate = true\n\n[storage]\npath = \"{db}\"\ncommit_interval = \"1m\"\n\n[mqtt]\nenabled = false\n\n[[sensor]]\ntype = \"bme280\"\nid = \"air\"\n\n[[sensor]]\ntype = \"rain_gauge\"\nid = \"rain\"\n",
    );
    let out = run(bin()
        .args(["run", "--speed", "max", "--duration", "1h", "--seed", "3"])
        .args(["--start", "2026-06-01T00:00:00Z", "--config"])
        .arg(&cfg));
    assert!(out.status.success(), "{}", text(&out));
    cfg
}

fn csv_rows(out: &Output) -> Vec<Vec<String>> {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

#[test]
fn export_and_stats_show_imperial_units_and_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = simulated_hour(dir.path());
    let export = |units: &str| {
        csv_rows(&run(bin()
            .args(["export", "--format", "csv", "--units", units, "--config"])
            .arg(&cfg)))
    };
    let metric = export("metric");
    let imperial = export("imperial");
    assert_eq!(metric.len(), imperial.len());
    assert!(!metric.is_empty());
    let mut seen = std::collections::BTreeSet::new();
    for (m, i) in metric.iter().zip(&imperial) {
        // ts, sensor, quantity, value, unit, flags
        assert_eq!((&m[0], &m[1], &m[2], &m[5]), (&i[0], &i[1], &i[2], &i[5]));
        let (mv, iv): (f64, f64) = (m[3].parse().unwrap(), i[3].parse().unwrap());
        // Metric values are rounded to the sensor's resolution, imperial ones converted from
        // the stored value and rounded to the shown unit's decimals: allow both roundings.
        let half = |s: &str| 0.5 * 10f64.powi(-(s.split('.').nth(1).map_or(0, str::len) as i32));
        let (expect_unit, scale, offset) = match m[4].as_str() {
            "°C" => ("°F", 1.8, 32.0),
            "hPa" => ("inHg", 1.0 / 33.863_886_666_7, 0.0),
            "mm" => ("in", 1.0 / 25.4, 0.0),
            "mm/h" => ("in/h", 1.0 / 25.4, 0.0),
            "%" => ("%", 1.0, 0.0),
            other => panic!("unexpected unit {other} in {m:?}"),
        };
        let (expect, tol) = (
            mv * scale + offset,
            half(&m[3]) * scale + half(&i[3]) + 1e-9,
        );
        assert_eq!(i[4], expect_unit, "{m:?} -> {i:?}");
        assert!((iv - expect).abs() <= tol, "{m:?} -> {i:?}");
        seen.insert(i[4].clone());
    }
    assert!(
        seen.contains("°F") && seen.contains("inHg") && seen.contains("in"),
        "{seen:?}"
    );

    // Aggregates: the unit column names the shown unit, min <= mean <= max in it.
    let hourly = csv_rows(&run(bin()
        .args([
            "export",
            "--resolution",
            "hour",
            "--units",
            "imperial",
            "--config",
        ])
        .arg(&cfg)));
    let t = hourly
        .iter()
        .find(|r| r[3] == "air_temperature")
        .expect("an air temperature hour");
    assert_eq!(t[4], "°F");
    let (min, max, mean): (f64, f64, f64) = (
        t[7].parse().unwrap(),
        t[9].parse().unwrap(),
        t[11].parse().unwrap(),
    );
    assert!(min <= mean && mean <= max && min > 32.0, "{t:?}");

    // stats: the table and the JSON say °F, and the database still holds °C.
    let table = run(bin()
        .args(["stats", "--units", "imperial", "--config"])
        .arg(&cfg));
    let table = text(&table);
    assert!(
        table.contains("°F") && table.contains("Rain total:") && !table.contains("°C"),
        "{table}"
    );
    let json = run(bin()
        .args(["stats", "--json", "--units", "imperial", "--config"])
        .arg(&cfg));
    let v = json_of(&json);
    assert_eq!(v["units"], "imperial");
    let air = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["quantity"] == "air_temperature")
        .unwrap();
    assert_eq!(air["unit"], "°F");
    assert_eq!(v["rain_total"]["unit"], "in");
    assert_eq!(export("metric"), metric, "the database changed");
}

/// `anemone` as an unprivileged user: `setpriv` to nobody when the tests run as root (as
/// CI does), else simply as the user running the tests.
fn as_user() -> Command {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let setpriv = Path::new("/usr/bin/setpriv");
    let mut c = if root && setpriv.exists() {
        let mut c = Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_anemone"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_anemone"))
    };
    c.env("RUST_LOG", "warn").env_remove("ANEMONE_CONFIG");
    c
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_user_who_is_not_root_reads_sensors_and_the_stations_data() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    // The user's own config (the example, as `config init` writes it, simulated).
    let own = dir.path().join("mine.toml");
    let init = run(as_user().args(["config", "init"]));
    assert!(init.status.success(), "{}", text(&init));
    let example =
        String::from_utf8_lossy(&init.stdout).replace("simulate = false", "simulate = true");
    std::fs::write(&own, example).unwrap();
    chmod(&own, 0o644);
    let read = run(as_user().args(["read", "--json", "--config"]).arg(&own));
    assert!(read.status.success(), "{}", text(&read));
    let readings = json_of(&read);
    assert!(
        readings.as_array().is_some_and(|a| !a.is_empty()),
        "{readings}"
    );

    // The station's database in a directory the user may read but not write (as
    // /var/lib/anemone is for a member of group anemone), service stopped: stats work.
    let station = dir.path().join("station");
    std::fs::create_dir(&station).unwrap();
    let cfg = simulated_hour(&station);
    chmod(&station, 0o755);
    for f in std::fs::read_dir(&station).unwrap() {
        chmod(&f.unwrap().path(), 0o644);
    }
    chmod(&station, 0o555);
    let stats = run(as_user().args(["stats", "--config"]).arg(&cfg));
    chmod(&station, 0o755);
    assert!(stats.status.success(), "{}", text(&stats));
    assert!(text(&stats).contains("air_temperature"), "{}", text(&stats));

    // `run` with the example's /var/lib/anemone path it cannot write: the error says how
    // to run a station of one's own.
    let mut runnable = std::fs::read_to_string(&own).unwrap();
    runnable = runnable.replace("[mqtt]\n", "[mqtt]\nenabled = false\n");
    let unwritable = dir.path().join("ro");
    std::fs::create_dir(&unwritable).unwrap();
    chmod(&unwritable, 0o555);
    runnable = runnable.replace(
        "path = \"/var/lib/anemone/anemone.db\"",
        &format!("path = \"{}/anemone.db\"", unwritable.display()),
    );
    std::fs::write(&own, runnable).unwrap();
    let started = run(as_user()
        .args(["run", "--speed", "max", "--duration", "1m", "--config"])
        .arg(&own));
    assert!(!started.status.success());
    assert!(text(&started).contains("--db"), "{}", text(&started));

    // A config only root may read: exit 78 and the way out.
    let secret = dir.path().join("root-only.toml");
    std::fs::write(&secret, "[station]\nid = \"x\"\n").unwrap();
    chmod(&secret, 0o600);
    let denied = run(as_user().arg("read").env("ANEMONE_CONFIG", &secret));
    if text(&denied).contains("Permission denied") {
        assert_eq!(denied.status.code(), Some(EX_CONFIG), "{}", text(&denied));
        assert!(text(&denied).contains("config init"), "{}", text(&denied));
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `anemone read | head -0`: the reader is gone before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let good = good_config(dir.path());
    for args in [&["read", "--simulate"][..], &["config", "init"][..]] {
        let mut child = bin()
            .args(args)
            .arg("--config")
            .arg(&good)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
