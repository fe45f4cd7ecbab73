//! The Oracle Weather Station preset (`hardware/oracle-weather-station.toml`), run as a
//! school would run it with no HAT: validated, then a simulated day.

use std::path::Path;

use anemone::reading::Quantity;

use crate::cli::bin;

fn preset() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/oracle-weather-station.toml");
    std::fs::read_to_string(path).unwrap()
}

/// `anemone validate` accepts the preset as shipped.
#[test]
fn oracle_preset_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/oracle-weather-station.toml");
    let out = bin()
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `anemone run --simulate --config hardware/oracle-weather-station.toml --speed max
/// --duration 24h` stores every quantity of the HAT and the extras, unflagged (a thundery
/// June day of seed 1, so the lightning sensor has strikes to count).
#[test]
fn oracle_preset_simulated_day_stores_every_quantity() {
    let (readings, seen) = crate::common::simulated_preset_day("oracle-weather-station.toml", 1);
    use Quantity::*;
    let expected = [
        ("air", AirTemperature),
        ("air", RelativeHumidity),
        ("pressure", AirPressure),
        ("vane", WindDirection),
        ("air_quality", AirQualityResistance),
        ("air_quality", AirQualityRatio),
        ("ground", GroundTemperature),
        ("wind", WindSpeed),
        ("rain", Rain),
        ("light", Illuminance),
        ("uv", UvIndex),
        ("uv", Illuminance),
        ("lightning", LightningStrikes),
        ("lightning", LightningDistance),
        ("lightning", LightningEnergy),
    ];
    for (sensor, q) in expected {
        assert!(
            seen.contains(&(sensor.to_string(), q)),
            "{sensor} {q}: not stored; stored: {seen:?}"
        );
    }
    // Nothing failed all day.
    let errors = readings
        .iter()
        .filter(|r| r.reading.value.is_none())
        .count();
    assert_eq!(errors, 0);
    // The lightning sensor reports at its start, then every 5 minutes.
    let reports = readings
        .iter()
        .filter(|r| r.reading.quantity == LightningStrikes)
        .count();
    assert!((288..=289).contains(&reports), "{reports}");
}

/// `anemone probe` on a simulated HAT: the chips are listed, the HAT is recognised and
/// its preset offered; a BMP180 is not called an unknown chip at a BME280 address.
#[test]
fn probe_recognises_the_hat_and_offers_the_preset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("oracle.toml");
    std::fs::write(&cfg, preset()).unwrap();
    let out = bin()
        .args(["probe", "--simulate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "bus 1 address 0x40: HTU21D",
        "bus 1 address 0x77: BMP180",
        "bus 1 address 0x69: MCP3427",
        "bus 1 address 0x6a: MCP3427",
        "bus 1 address 0x29: TSL2591",
        "bus 1 address 0x53: LTR390",
        "Raspberry Pi Oracle Weather Station HAT",
        "examples/oracle-weather-station.toml /etc/anemone/anemone.toml",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    assert!(!text.contains("unknown chip"), "{text}");
    // Without the HAT's chips (the weather mast), no HAT.
    let mast = Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/weather-mast.toml");
    let out = bin()
        .args(["probe", "--simulate", "--config"])
        .arg(&mast)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Oracle"));
}
