//! The simulated station end to end: sensors → pipeline → SQLite.

use anemone::reading::{Flags, Quantity};

use crate::common::{all_readings, counts, run_virtual, sim_config, JUNE_1};

const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_day_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("day.db");
    let summary = run_virtual(sim_config(&db, 1), JUNE_1, DAY_MS).await;
    assert_eq!(summary.ended, JUNE_1 + DAY_MS);
    let readings = all_readings(&db);
    assert_eq!(summary.committed as usize, readings.len());
    let c = counts(&readings);
    let n = |s: &str, q: Quantity| c.get(&(s.to_string(), q)).copied().unwrap_or(0);
    // Every quantity at its interval over [start, start + 24 h).
    assert_eq!(n("air", Quantity::AirTemperature), 8_640);
    assert_eq!(n("air", Quantity::RelativeHumidity), 8_640);
    assert_eq!(n("air", Quantity::AirPressure), 8_640);
    assert_eq!(n("air", Quantity::DewPoint), 8_640);
    assert_eq!(n("air", Quantity::SeaLevelPressure), 8_640);
    assert_eq!(n("ground", Quantity::GroundTemperature), 1_440);
    assert_eq!(n("water", Quantity::WaterTemperature), 2_880);
    assert_eq!(n("ph", Quantity::Ph), 1_440);
    assert_eq!(n("ph", Quantity::PhTemperature), 1_440);
    assert_eq!(n("vane", Quantity::WindDirection), 86_400);
    // The anemometer's first tick opens its first window.
    assert_eq!(n("wind", Quantity::WindSpeed), 86_399);
    assert_eq!(n("wind", Quantity::WindGust), 1_439);
    assert_eq!(n("rain", Quantity::Rain), 1_440);
    // All within [start, end), none flagged on a normal simulated day.
    for r in &readings {
        assert!(r.reading.ts >= JUNE_1 && r.reading.ts < JUNE_1 + DAY_MS);
        assert!(r.reading.flags.is_ok(), "{:?}", r.reading);
        assert!(r.reading.value.is_some());
    }
    // The simulated weather is plausible: a diurnal cycle, some wind.
    let temps: Vec<f64> = readings
        .iter()
        .filter(|r| r.reading.quantity == Quantity::AirTemperature)
        .filter_map(|r| r.reading.value)
        .collect();
    let (lo, hi) = temps
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
    assert!(hi - lo > 2.0, "diurnal range {lo}..{hi}");
    let max_wind = readings
        .iter()
        .filter(|r| r.reading.quantity == Quantity::WindSpeed)
        .filter_map(|r| r.reading.value)
        .fold(0.0, f64::max);
    assert!(max_wind > 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_identical_readings() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.db"),
        dir.path().join("b.db"),
        dir.path().join("c.db"),
    );
    run_virtual(sim_config(&a, 7), JUNE_1, 2 * 3_600_000).await;
    run_virtual(sim_config(&b, 7), JUNE_1, 2 * 3_600_000).await;
    run_virtual(sim_config(&c, 8), JUNE_1, 2 * 3_600_000).await;
    let strip = |v: Vec<anemone::reading::StoredReading>| -> Vec<_> {
        v.into_iter().map(|s| s.reading).collect()
    };
    let (ra, rb, rc) = (
        strip(all_readings(&a)),
        strip(all_readings(&b)),
        strip(all_readings(&c)),
    );
    assert!(!ra.is_empty());
    assert_eq!(ra, rb, "same seed, same day: same readings");
    assert_ne!(ra, rc, "another seed: other weather");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_readings_are_flagged_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("qc.db");
    let mut config = sim_config(&db, 1);
    // Nothing is "plausible" above −50 °C: every air temperature is flagged.
    config.qc.limits.insert(
        Quantity::AirTemperature,
        anemone::config::Limits {
            min: -90.0,
            max: -50.0,
        },
    );
    run_virtual(config, JUNE_1, 600_000).await;
    let readings = all_readings(&db);
    let temps: Vec<_> = readings
        .iter()
        .filter(|r| r.reading.quantity == Quantity::AirTemperature)
        .collect();
    assert_eq!(temps.len(), 60);
    assert!(temps.iter().all(|r| r.reading.flags == Flags::OUT_OF_RANGE));
    assert!(temps.iter().all(|r| r.reading.value.is_some()));
    // Derived quantities are not computed from flagged inputs.
    assert!(!readings
        .iter()
        .any(|r| r.reading.quantity == Quantity::DewPoint));
}
