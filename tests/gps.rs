//! The GPS kind against a real gpsd fed by `gpsfake` (gpsd's own replay tool, Debian's
//! `gpsd-clients`) with NMEA logs written here: a buoy at anchor, one dragging its anchor,
//! a receiver with no fix, and a fix that comes late.
//!
//! Without `gpsfake` installed these tests say so and pass, except under CI (`CI` set),
//! where they fail: CI installs gpsd first (`.ci/gps/install-gpsd.sh`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anemone::config::Config;
use anemone::hal::Hal;
use anemone::reading::{Flags, Quantity, Reading};
use anemone::sensors::{build, SourceContext};

/// The anchor of the logs: off Cairns, on the reef.
const ANCHOR_LAT: f64 = -16.9;
const ANCHOR_LON: f64 = 145.8;
const RADIUS_M: f64 = 50.0;
/// The logs' first fix: 2026-06-01T12:00:00Z.
const LOG_START_MS: i64 = 1_780_315_200_000;

fn sentence(body: &str) -> String {
    let sum = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{sum:02X}\r\n")
}

fn nmea_angle(deg: f64, width: usize, pos: char, neg: char) -> String {
    let hemi = if deg < 0.0 { neg } else { pos };
    let a = deg.abs();
    let whole = a.trunc();
    let minutes = (a - whole) * 60.0;
    format!("{:0width$}{:07.4},{hemi}", whole as u32, minutes)
}

/// One receiver epoch (one second): GGA, GSA, GSV and RMC, with a fix at `pos` metres
/// (north, east) from the anchor, or none.
fn epoch(second: u32, pos: Option<(f64, f64)>) -> String {
    let t = format!("1200{:02}.00", second % 60);
    let mut s = String::new();
    match pos {
        Some((north, east)) => {
            let lat = ANCHOR_LAT + north / 111_320.0;
            let lon = ANCHOR_LON + east / (111_320.0 * ANCHOR_LAT.to_radians().cos());
            let (la, lo) = (nmea_angle(lat, 2, 'N', 'S'), nmea_angle(lon, 3, 'E', 'W'));
            s += &sentence(&format!("GPGGA,{t},{la},{lo},1,04,1.1,3.0,M,50.0,M,,"));
            s += &sentence("GPGSA,A,3,01,02,03,04,,,,,,,,,2.0,1.1,1.7");
            s += &sentence("GPGSV,1,1,04,01,45,090,40,02,30,180,38,03,60,270,42,04,20,010,35");
            s += &sentence(&format!("GPRMC,{t},A,{la},{lo},0.8,10.0,010626,,,A"));
        }
        None => {
            s += &sentence(&format!("GPGGA,{t},,,,,0,00,,,M,,M,,"));
            s += &sentence("GPGSA,A,1,,,,,,,,,,,,,,,");
            s += &sentence("GPGSV,1,1,02,01,45,090,20,02,30,180,18");
            s += &sentence(&format!("GPRMC,{t},V,,,,,,,010626,,,N"));
        }
    }
    s
}

/// gpsfake serving `log` on a free port, stopped when dropped.
struct GpsFake {
    child: Child,
    port: u16,
}

impl Drop for GpsFake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_gpsfake() -> bool {
    Command::new("gpsfake")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Starts gpsfake on `log`; `None` (skipped) when it is not installed outside CI.
fn gpsfake(dir: &Path, log: &str) -> Option<GpsFake> {
    if !have_gpsfake() {
        if std::env::var_os("CI").is_some() {
            panic!("gpsfake is not installed, and CI is set: CI must install it (.ci/gps/install-gpsd.sh)");
        }
        eprintln!("Skipped: no gpsfake installed (apt-get install gpsd gpsd-clients); under CI this test fails instead.");
        return None;
    }
    let path = dir.join("log.nmea");
    std::fs::write(&path, log).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // -1: play the log once; -c: 0.1 s between sentences; -q: quiet. gpsfake starts
    // feeding when the first client watches. (It runs as root here without extra flags;
    // after the log it waits for its own timeout, so the tests end it themselves.)
    let child = Command::new("gpsfake")
        .args(["-1", "-q", "-c", "0.1", "-P", &port.to_string()])
        .arg(&path)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fake = GpsFake { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "gpsd did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(fake)
}

/// A second gpsd client that reports when gpsfake has played its whole log: gpsd then
/// deactivates the fake receiver (`"activated":0`).
fn end_of_log(port: u16) -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let _ = s.write_all(anemone::hal::gpsd::WATCH);
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            if line.contains("\"class\":\"DEVICE\"") && line.contains("\"activated\":0") {
                let _ = tx.send(());
                return;
            }
        }
    });
    rx
}

/// Samples a `gps` sensor on gpsfake's gpsd until gpsfake has played its log; every
/// reading, and the Hal (for the GPS time it recorded).
fn run(log: &str) -> Option<(Vec<Reading>, Hal)> {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = gpsfake(dir.path(), log)?;
    let text = format!(
        "[[sensor]]\ntype = \"gps\"\nid = \"buoy\"\ngpsd = \"127.0.0.1:{}\"\nanchor = {{ latitude = {ANCHOR_LAT}, longitude = {ANCHOR_LON}, radius_m = {RADIUS_M} }}\n",
        fake.port
    );
    let config = Config::from_toml(&text, "test").unwrap();
    let hal = Hal::real(&config.hal);
    let mut source = build(&config.sensors[0], &hal, &SourceContext::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let end = end_of_log(fake.port);
    let mut readings = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let done = end.try_recv().is_ok();
        let now = chrono::Utc::now().timestamp_millis();
        readings.extend(source.sample(now).unwrap_or_else(|e| panic!("{e}")));
        if done {
            break;
        }
        assert!(
            fake.child.try_wait().unwrap().is_none(),
            "gpsfake ended before its log was played"
        );
        assert!(Instant::now() < deadline, "gpsfake did not finish its log");
    }
    drop(fake);
    Some((readings, hal))
}

fn values(rs: &[Reading], q: Quantity) -> Vec<&Reading> {
    rs.iter().filter(|r| r.quantity == q).collect()
}

/// Moored within its radius: every fix has a position, the anchor distance, 4 satellites
/// and a 3D mode, none flagged; the fix's time went to clock safety.
#[test]
fn gpsfake_buoy_at_anchor() {
    let log: String = (0..12)
        .map(|s| epoch(s, Some((10.0 + f64::from(s % 3), -5.0))))
        .collect();
    let Some((rs, hal)) = run(&log) else { return };
    let lat = values(&rs, Quantity::Latitude);
    // gpsd may report once before the receiver's first complete epoch: no fix yet.
    let first = lat.iter().position(|r| r.value.is_some()).unwrap();
    assert!(lat.len() - first >= 2, "{rs:?}");
    for r in &lat[first..] {
        let v = r.value.unwrap();
        assert!((v - (ANCHOR_LAT + 10.0 / 111_320.0)).abs() < 3e-5, "{v}");
        assert!(r.flags.is_ok(), "{r:?}");
    }
    for r in values(&rs, Quantity::AnchorDistance) {
        let d = r.value.unwrap();
        assert!((9.0..14.0).contains(&d), "{d}");
        assert!(r.flags.is_ok());
    }
    assert_eq!(
        values(&rs, Quantity::GpsFixMode).last().unwrap().value,
        Some(3.0)
    );
    assert!(values(&rs, Quantity::GpsSatellites)
        .iter()
        .any(|r| r.value == Some(4.0)));
    assert!(!values(&rs, Quantity::SpeedOverGround).is_empty());
    // GPS time: the logs' 2026-06-01T12:00Z against this machine's clock.
    let offset = hal.gps_clock().fresh().expect("a fix time").offset_ms;
    let expected = LOG_START_MS - chrono::Utc::now().timestamp_millis();
    assert!(
        (offset - expected).abs() < 120_000,
        "{offset} vs {expected}"
    );
}

/// Dragging its anchor: 12 m further north every second. Fixes within 50 m are fine, the
/// ones beyond are flagged `off_station` (position and distance).
#[test]
fn gpsfake_buoy_dragging_its_anchor() {
    let log: String = (0..14)
        .map(|s| epoch(s, Some((12.0 * f64::from(s), 0.0))))
        .collect();
    let Some((rs, _)) = run(&log) else { return };
    let dist = values(&rs, Quantity::AnchorDistance);
    assert!(!dist.is_empty());
    let mut saw_off = false;
    for r in &dist {
        let d = r.value.unwrap();
        let off = r.flags.contains(Flags::OFF_STATION);
        assert_eq!(off, d > RADIUS_M, "{r:?}");
        saw_off |= off;
    }
    assert!(saw_off, "the drag went beyond the radius: {dist:?}");
    let last_lat = values(&rs, Quantity::Latitude).pop().unwrap();
    assert!(last_lat.flags.contains(Flags::OFF_STATION));
    assert_eq!(last_lat.flags.names(), vec!["off_station"]);
}

/// No fix: fix mode 1, and the position only as `sensor_error` readings without a value;
/// no GPS time.
#[test]
fn gpsfake_no_fix_gives_no_position() {
    let log: String = (0..10).map(|s| epoch(s, None)).collect();
    let Some((rs, hal)) = run(&log) else { return };
    let lat = values(&rs, Quantity::Latitude);
    assert!(!lat.is_empty(), "{rs:?}");
    for r in lat.iter().chain(values(&rs, Quantity::Longitude).iter()) {
        assert_eq!(r.value, None);
        assert!(r.flags.contains(Flags::SENSOR_ERROR));
    }
    assert!(values(&rs, Quantity::AnchorDistance).is_empty());
    assert!(values(&rs, Quantity::GpsFixMode)
        .iter()
        .all(|r| r.value.unwrap() <= 1.0));
    assert!(hal.gps_clock().fresh().is_none());
}

/// A fix that comes late: no position first, then positions at the anchor.
#[test]
fn gpsfake_late_fix() {
    let log: String = (0..16)
        .map(|s| epoch(s, (s >= 8).then_some((5.0, 5.0))))
        .collect();
    let Some((rs, hal)) = run(&log) else { return };
    let lat = values(&rs, Quantity::Latitude);
    let first_fix = lat.iter().position(|r| r.value.is_some());
    let Some(first_fix) = first_fix else {
        panic!("no fix came: {rs:?}")
    };
    assert!(first_fix > 0, "the fix came late: {lat:?}");
    assert!(lat[..first_fix]
        .iter()
        .all(|r| r.flags.contains(Flags::SENSOR_ERROR)));
    assert!(lat[first_fix..].iter().all(|r| r.value.is_some()));
    assert!(hal.gps_clock().fresh().is_some());
}

/// `anemone run --simulate` with a GPS buoy and a current meter: the simulated gpsd's
/// fixes (after its cold start) and the tidal stream are stored, with the current's
/// minute means, and a moored buoy is never off station.
#[test]
fn simulated_buoy_hour_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("buoy.db");
    let cfg = dir.path().join("buoy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[station]\nlatitude = {ANCHOR_LAT}\nlongitude = {ANCHOR_LON}\n[storage]\npath = \"{}\"\n[mqtt]\nenabled = false\n[[sensor]]\ntype = \"gps\"\nid = \"buoy\"\nanchor = {{ latitude = {ANCHOR_LAT}, longitude = {ANCHOR_LON}, radius_m = {RADIUS_M} }}\n[[sensor]]\ntype = \"current_meter\"\nid = \"paddle\"\n",
            db.display()
        ),
    )
    .unwrap();
    let out = crate::cli::bin()
        .args(["run", "--simulate", "--speed", "max", "--duration", "1h"])
        .args(["--seed", "1", "--start", "2026-06-06", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GPS has no fix"), "{stderr}");
    let rows = crate::common::all_readings(&db);
    let with_value = |q: Quantity| {
        rows.iter()
            .filter(|r| r.reading.quantity == q && r.reading.value.is_some())
            .count()
    };
    for q in [
        Quantity::Latitude,
        Quantity::Longitude,
        Quantity::GpsFixMode,
        Quantity::GpsSatellites,
        Quantity::SpeedOverGround,
        Quantity::AnchorDistance,
        Quantity::CurrentSpeed,
        Quantity::CurrentSpeedAvg2m,
        Quantity::CurrentSpeedAvg10m,
    ] {
        assert!(with_value(q) > 0, "{q} not stored");
    }
    // The cold start: no position for the first fixes, flagged, never made up.
    let first = rows
        .iter()
        .find(|r| r.reading.quantity == Quantity::Latitude)
        .unwrap();
    assert_eq!(first.reading.value, None);
    assert!(rows
        .iter()
        .all(|r| !r.reading.flags.contains(Flags::OFF_STATION)));
}
