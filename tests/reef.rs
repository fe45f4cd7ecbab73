//! The reef-buoy preset (`hardware/reef-buoy.toml`): validated, then a simulated day that
//! stores every quantity of its sensors.

use std::collections::BTreeSet;
use std::path::Path;

use anemone::reading::Quantity;
use anemone::store::Store;

use crate::cli::bin;

fn preset_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/reef-buoy.toml")
}

#[test]
fn reef_preset_validates() {
    let out = bin()
        .args(["validate", "--config"])
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
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reef.db");
    let text = std::fs::read_to_string(preset_path())
        .unwrap()
        .replace(
            "path = \"/var/lib/anemone/anemone.db\"",
            &format!("path = \"{}\"", db.display()),
        )
        .replace("[mqtt]\n", "[mqtt]\nenabled = false\n");
    let cfg = dir.path().join("reef.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = bin()
        .args(["run", "--simulate", "--speed", "max", "--duration", "24h"])
        .args(["--seed", "1", "--start", "2026-06-06", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
    let readings = store.readings(&Default::default()).unwrap();
    let mut seen = BTreeSet::new();
    for r in &readings {
        let r = &r.reading;
        if r.value.is_some() && r.flags.is_ok() {
            seen.insert((r.sensor.to_string(), r.quantity));
        }
    }
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
    let errors = readings.iter().filter(|r| !r.reading.flags.is_ok()).count();
    assert_eq!(errors, 0, "flagged readings in a simulated day");
}
