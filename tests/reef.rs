//! The reef-buoy preset (`hardware/reef-buoy.toml`): validated, then a simulated day that
//! stores every quantity of its sensors.

use std::path::Path;

use anemone::reading::Quantity;

use crate::cli::bin;

fn preset_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/reef-buoy.toml")
}

#[test]
fn reef_preset_validates() {
    let out = bin()
        // --skip-files: the preset names /etc/anemone/mqtt-password, a file of the Pi's.
        .args(["validate", "--skip-files", "--config"])
        .arg(preset_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reef_preset_simulated_day_stores_every_quantity() {
    let (readings, seen) = crate::common::simulated_preset_day("reef-buoy.toml", 1);
    use Quantity::*;
    for (sensor, q) in [
        ("water", WaterTemperature),
        ("ph", Ph),
        ("ec", Conductivity),
        ("ec", Salinity),
        ("oxygen", DissolvedOxygen),
        ("oxygen", OxygenSaturation),
        ("co2", Co2),
        ("co2", AirTemperature),
        ("co2", RelativeHumidity),
        ("pressure", AirPressure),
        ("battery", BatteryVoltage),
        ("battery", BatteryCurrent),
        ("battery", BatteryPower),
        ("battery", PowerSaving),
        ("solar", SolarVoltage),
        ("solar", SolarCurrent),
        ("solar", SolarPower),
        ("buoy", Latitude),
        ("buoy", Longitude),
        ("buoy", GpsFixMode),
        ("buoy", GpsSatellites),
        ("buoy", SpeedOverGround),
        ("buoy", AnchorDistance),
        ("current", CurrentSpeed),
        ("current", CurrentSpeedAvg2m),
        ("current", CurrentSpeedAvg10m),
        ("turbidity", Turbidity),
    ] {
        assert!(
            seen.contains(&(sensor.to_string(), q)),
            "{sensor} {q}: not stored unflagged; stored: {seen:?}"
        );
    }
    // The battery charges by day and discharges by night.
    let current: Vec<f64> = readings
        .iter()
        .filter(|r| r.reading.quantity == BatteryCurrent)
        .filter_map(|r| r.reading.value)
        .collect();
    assert!(current.iter().any(|&a| a > 0.1) && current.iter().any(|&a| a < 0.0));
    // The simulated receiver has no fix for its first 40 s: those positions are stored as
    // sensor errors (never a made-up position). Nothing else is flagged.
    let first_fix = readings
        .iter()
        .filter(|r| r.reading.quantity == Latitude && r.reading.flags.is_ok())
        .map(|r| r.reading.ts)
        .min()
        .expect("a GPS fix in a simulated day");
    let errors: Vec<_> = readings
        .iter()
        .filter(|r| !r.reading.flags.is_ok())
        .filter(|r| !(r.reading.sensor.as_ref() == "buoy" && r.reading.ts < first_fix))
        .collect();
    assert!(
        errors.is_empty(),
        "flagged readings in a simulated day: {errors:?}"
    );
}

/// `anemone calibrate analog`: a one-point calibration is recorded with its time and the
/// next run reads through it; a second point that reads like the first is refused (in the
/// simulation the probe cannot be moved into another standard).
#[test]
fn analog_calibration_is_recorded_and_used_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("turb.db");
    let cfg = dir.path().join("turb.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[station]
id = "turb"
latitude = 27.85
longitude = 34.31
timezone = "UTC"

[hal]
simulate = true

[storage]
path = "{}"

[mqtt]
enabled = false

[web]
enabled = false

[[sensor]]
type = "analog"
id = "turbidity"
preset = "turbidity_sen0189"
input_scale = 1.5
interval = "60s"
"#,
            db.display()
        ),
    )
    .unwrap();
    let run_hour = |db: &Path| {
        let out = bin()
            .args(["run", "--simulate", "--speed", "max", "--duration", "1h"])
            .args(["--seed", "1", "--start", "2026-06-06", "--config"])
            .arg(&cfg)
            .arg("--db")
            .arg(db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = anemone::store::Store::open_read_only(db, chrono_tz::UTC).unwrap();
        let rows = store.readings(&Default::default()).unwrap();
        assert!(rows.len() >= 50, "{} readings", rows.len());
        rows.iter()
            .map(|r| {
                assert!(r.reading.flags.is_ok(), "{r:?}");
                (r.reading.ts, r.reading.value.unwrap())
            })
            .collect::<std::collections::BTreeMap<i64, f64>>()
    };
    let before = run_hour(&dir.path().join("before.db"));

    let calibrate = |args: &[&str]| {
        bin()
            .args(["calibrate", "analog", "--sensor", "turbidity"])
            .args(args)
            .args(["--simulate", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    // The simulated water is a few NTU: calling it 50 NTU shifts every reading by ~45.
    let out = calibrate(&["--step", "first", "--value", "50"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Recorded first point of turbidity"), "{text}");
    // The same water again as the "second standard": refused, nothing recorded.
    let out = calibrate(&["--step", "second", "--value", "1000"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must read clearly apart"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = calibrate(&["--status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("analog_point").count(), 1, "{text}");
    assert_eq!(text.matches("analog_fit").count(), 1, "{text}");

    let after = run_hour(&db);
    assert_eq!(before.len(), after.len());
    for (ts, b) in &before {
        let shift = after[ts] - b;
        assert!(
            (40.0..=50.0).contains(&shift),
            "at {ts}: {b} → {}",
            after[ts]
        );
    }
}
