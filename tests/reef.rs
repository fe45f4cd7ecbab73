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
