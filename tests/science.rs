//! Weather-science acceptance: DST days, a restart a second before midnight, rain and
//! gusts against the simulated pulse trains.

use anemone::config::Config;
use anemone::hal::sim::{SimEdges, Switch, Weather};
use anemone::reading::{Quantity, Timestamp};
use anemone::sensors::SensorKind;
use anemone::store::{Query, Store};

use crate::common::run_virtual;

const HOUR: i64 = 3_600_000;

/// The simulated station cut down to the vane, anemometer and rain gauge, in London.
fn london(db: &std::path::Path) -> Config {
    let mut c = Config::builtin();
    c.web.enabled = false;
    c.storage.path = db.to_path_buf();
    c.mqtt.enabled = false;
    c.station.timezone = "Europe/London".into();
    c.sensors.retain(|s| {
        matches!(
            s.kind,
            SensorKind::WindVane(_) | SensorKind::RainGauge(_) | SensorKind::Anemometer(_)
        )
    });
    c
}

fn values(store: &Store, q: Quantity) -> Vec<(Timestamp, f64)> {
    let mut v: Vec<(Timestamp, f64)> = store
        .readings(&Query {
            quantity: Some(q),
            ..Query::default()
        })
        .unwrap()
        .into_iter()
        .filter(|r| r.reading.flags.is_ok())
        .filter_map(|r| r.reading.value.map(|x| (r.reading.ts, x)))
        .collect();
    v.sort_by_key(|x| x.0);
    v
}

async fn dst_day(day_start_utc: Timestamp, hours: i64, date: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dst.db");
    // From noon the day before to noon the day after.
    let start = day_start_utc - 12 * HOUR;
    run_virtual(london(&db), start, 12 * HOUR + hours * HOUR + 12 * HOUR).await;
    let store = Store::open_read_only(&db, chrono_tz::Europe::London).unwrap();
    let day: chrono::NaiveDate = date.parse().unwrap();
    let days = store.days().unwrap();
    assert_eq!(
        days.iter().filter(|d| **d == day).count(),
        1,
        "one summary for {day}: {days:?}"
    );
    let summary = store.day_summary(day).unwrap();
    let vane = summary
        .iter()
        .find(|a| a.quantity == Quantity::WindDirection)
        .unwrap();
    assert_eq!(
        vane.end - vane.start,
        hours * HOUR,
        "{date} lasts {hours} h"
    );
    assert_eq!(
        vane.count as i64,
        hours * 3600,
        "one vane reading a second all day"
    );
    // Rain today resets exactly once, at local midnight, and counts that day's rain.
    let today = values(&store, Quantity::RainToday);
    let in_day: Vec<_> = today
        .iter()
        .filter(|(t, _)| *t >= vane.start && *t < vane.end)
        .collect();
    let resets: Vec<Timestamp> = today
        .windows(2)
        .filter(|w| w[1].1 < w[0].1 - 1e-9)
        .map(|w| w[1].0)
        .collect();
    assert!(resets
        .iter()
        .all(|t| (*t - vane.start).rem_euclid(60_000) == 0));
    assert!(
        resets
            .iter()
            .filter(|t| **t >= vane.start && **t < vane.end)
            .count()
            <= 1
    );
    let rain_sum = summary
        .iter()
        .find(|a| a.quantity == Quantity::Rain)
        .unwrap()
        .sum;
    let last = in_day.last().unwrap().1;
    assert!(
        (last - rain_sum).abs() < 1e-9,
        "rain today {last} = day's rain {rain_sum}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_forward_day_has_23_hours_and_one_summary() {
    // 2026-03-29: clocks go forward at 01:00 GMT; local midnight = 00:00Z.
    dst_day(1_774_742_400_000, 23, "2026-03-29").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fall_back_day_has_25_hours_and_one_summary() {
    // 2026-10-25: clocks go back at 02:00 BST; local midnight = 2026-10-24T23:00Z.
    dst_day(1_792_882_800_000, 25, "2026-10-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_at_235959_loses_nothing_from_the_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("restart.db");
    // 2026-06-02 local (BST) = [2026-06-01T23:00Z, 2026-06-02T23:00Z).
    let day_start = 1_780_354_800_000;
    run_virtual(london(&db), day_start, 24 * HOUR - 1_000).await; // stops at 23:59:59 local
    run_virtual(london(&db), day_start + 24 * HOUR - 1_000, 61_000).await; // restart, into the next day
    let store = Store::open_read_only(&db, chrono_tz::Europe::London).unwrap();
    let summary = store.day_summary("2026-06-02".parse().unwrap()).unwrap();
    let vane = summary
        .iter()
        .find(|a| a.quantity == Quantity::WindDirection)
        .unwrap();
    assert_eq!(
        vane.count, 86_400,
        "every second of the day, before and after the restart"
    );
    let rain = summary
        .iter()
        .find(|a| a.quantity == Quantity::Rain)
        .unwrap();
    let raw: f64 = values(&store, Quantity::Rain)
        .iter()
        .filter(|(t, _)| *t >= vane.start && *t < vane.end)
        .map(|(_, v)| v)
        .sum();
    assert!((rain.sum - raw).abs() < 1e-9);
    // Rain today continued across the restart (primed from the store).
    let today = values(&store, Quantity::RainToday);
    let last_of_day = today.iter().rfind(|(t, _)| *t < vane.end).unwrap().1;
    assert!(
        (last_of_day - rain.sum).abs() < 1e-9,
        "{last_of_day} vs {}",
        rain.sum
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_rain_is_tips_times_mm_and_max_gust_is_the_largest_3s_mean() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("truth.db");
    let mut config = london(&db);
    config.station.timezone = "UTC".into();
    config.hal.seed = 9; // a day with showers
    let start = 1_780_272_000_000; // 2026-06-01T00:00Z
    let (kmh_per_hz, ppr, mm) =
        config
            .sensors
            .iter()
            .fold((0.0, 0.0, 0.0), |acc, s| match &s.kind {
                SensorKind::Anemometer(a) => (a.kmh_per_hz, a.pulses_per_revolution, acc.2),
                SensorKind::RainGauge(r) => (acc.0, acc.1, r.mm_per_tip),
                _ => acc,
            });
    let weather = Weather::new(
        config.hal.seed,
        config.station.longitude,
        config.station.altitude_m,
    );
    // 24 h plus two minutes so the last minutes' gusts are emitted.
    run_virtual(config, start, 24 * HOUR + 120_000).await;
    let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();

    // Ground truth: the same switches, driven by the same weather, counted perfectly.
    let mut rain = SimEdges::new(weather.clone(), Switch::RainGauge { mm_per_tip: mm }, start);
    let mut sink = Vec::new();
    rain.drain(start + 24 * HOUR, &mut sink);
    let tips = rain.delivered();
    assert!(tips > 0, "the simulated day has showers");
    let stored: f64 = values(&store, Quantity::Rain)
        .iter()
        .filter(|(t, _)| *t <= start + 24 * HOUR)
        .map(|(_, v)| v)
        .sum();
    assert!(
        (stored - tips as f64 * mm).abs() < 1e-9,
        "{stored} mm vs {tips} tips × {mm}"
    );

    let params = anemone_drivers::anemometer::AnemometerParams {
        pulses_per_revolution: ppr,
        kmh_per_hz,
    };
    let mut wind = SimEdges::new(weather, Switch::Anemometer(params), start);
    let mut per_second = Vec::new();
    let mut edges = Vec::new();
    for s in 1..=(24 * 3600) {
        edges.clear();
        wind.drain(start + s * 1000, &mut edges);
        let pulses = edges.iter().filter(|e| !e.rising).count() as u64;
        per_second.push(anemone_drivers::anemometer::speed_mps(
            pulses, 1_000_000, &params,
        ));
    }
    let truth = per_second
        .windows(3)
        .map(|w| (w[0] + w[1] + w[2]) / 3.0)
        .fold(0.0, f64::max);
    let gusts = values(&store, Quantity::WindGust);
    let max_gust = gusts
        .iter()
        .filter(|(t, _)| *t <= start + 24 * HOUR)
        .map(|(_, v)| *v)
        .fold(0.0, f64::max);
    assert!(
        (max_gust - truth).abs() < 1e-9,
        "max gust {max_gust} vs largest 3-s mean {truth}"
    );
}
