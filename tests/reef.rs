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
