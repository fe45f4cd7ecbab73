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
        }
        .into(),
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

/// The step and persistence checks run in the station: with a step of 0.001 °C (and no
/// hourly allowance) every air temperature that moved from the first is a `spike`, and with a resolution of 100 °C and a
/// one-minute window every one after the first minute is `stuck`. Both are stored, and
/// the day's aggregate counts them apart; the default checks flag nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spikes_and_stuck_readings_are_flagged_in_a_running_station() {
    use anemone::config::QcRule;
    use anemone::store::Store;
    let dir = tempfile::tempdir().unwrap();
    for (rule, flag) in [
        (
            QcRule {
                step: Some(0.001),
                step_per_hour: Some(0.0),
                stuck_after: Some(anemone::config::Span::secs(0)),
                ..QcRule::default()
            },
            Flags::SPIKE,
        ),
        (
            QcRule {
                stuck_after: Some(anemone::config::Span::secs(60)),
                resolution: Some(100.0),
                ..QcRule::default()
            },
            Flags::STUCK,
        ),
        (QcRule::default(), Flags::OK),
    ] {
        let db = dir.path().join(format!("qc-{}.db", flag.bits()));
        let mut config = sim_config(&db, 1);
        config.qc.limits.insert(Quantity::AirTemperature, rule);
        let tz = config.station.tz();
        run_virtual(config, JUNE_1, 600_000).await;
        let temps: Vec<_> = all_readings(&db)
            .into_iter()
            .filter(|r| r.reading.quantity == Quantity::AirTemperature)
            .collect();
        assert_eq!(temps.len(), 60);
        let flagged = temps.iter().filter(|r| r.reading.flags == flag).count();
        if flag == Flags::OK {
            assert_eq!(flagged, 60, "the defaults flag a normal simulated run");
            continue;
        }
        assert!(flagged >= 50, "{flag}: {flagged} of 60");
        assert!(temps.iter().all(|r| r.reading.value.is_some()));
        let s = Store::open_read_only(&db, tz).unwrap();
        let day = s.days().unwrap()[0];
        let agg = s
            .day_summary(day)
            .unwrap()
            .into_iter()
            .find(|a| a.quantity == Quantity::AirTemperature)
            .unwrap();
        assert_eq!(agg.flagged as usize, flagged, "{flag}");
        assert_eq!(agg.count as usize, 60 - flagged, "{flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backward_clock_jump_keeps_aggregates_and_cursor_consistent() {
    use anemone::clock::Clock;
    use anemone::station::{run, RunOptions};
    use anemone::store::writer::WriterMsg;
    use anemone::store::{Query, Resolution, Store};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jump.db");
    let config = sim_config(&db, 3);
    let clock = Clock::virtual_at(JUNE_1);
    let (live_tx, mut live_rx) = tokio::sync::mpsc::channel(1024);
    let (handle_tx, handle_rx) = tokio::sync::oneshot::channel();
    let station = tokio::spawn(run(
        Arc::new(config),
        RunOptions {
            clock: clock.clone(),
            duration_ms: Some(3 * 3_600_000),
            db_path: db.clone(),
            live: Some(live_tx),
            writer_handle: Some(handle_tx),
            progress: None,
            web_addr: None,
        },
        std::future::pending(),
    ));
    // A stand-in publisher: acknowledges every committed batch as the broker would.
    // (A weak sender: the acker must not keep the writer alive.)
    let writer = handle_rx.await.unwrap().downgrade();
    // The test's own participant steps the clock back one hour at about 01:30.
    let stepper = clock.participant();
    let acker = tokio::spawn(async move {
        let mut last = 0;
        while let Some(batch) = live_rx.recv().await {
            if let Some(max) = batch.iter().map(|r| r.id).max() {
                last = last.max(max);
                if let Some(w) = writer.upgrade() {
                    let _ = w.send(WriterMsg::SetCursor(last)).await;
                }
            }
        }
        last
    });
    stepper.sleep_until(JUNE_1 + 90 * 60_000).await;
    let jump_at = clock.now();
    clock.jump(-3_600_000);
    drop(stepper);
    let summary = station.await.unwrap().unwrap();
    let acked = acker.await.unwrap();

    let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let readings = store.readings(&Query::default()).unwrap();
    assert_eq!(readings.len() as u64, summary.committed);
    // Readings of the repeated hour are all there (stamped twice over that hour).
    let repeated = readings
        .iter()
        .filter(|r| r.reading.ts >= jump_at - 3_600_000 && r.reading.ts < jump_at)
        .count();
    assert!(repeated > 0);
    // The cursor counts ids, not times: it never passes what was acknowledged, and what
    // lies above it (the last batch, acknowledged after the writer's final commit) is
    // exactly what would be replayed.
    let cursor = store.publish_cursor().unwrap();
    let last_id = readings.iter().map(|r| r.id).max().unwrap();
    assert!(
        cursor <= acked && acked == last_id,
        "cursor {cursor}, acked {acked}, last {last_id}"
    );
    assert!(cursor > 0);
    let owed = store.unpublished(cursor, 1_000_000).unwrap();
    assert_eq!(owed.len() as i64, last_id - cursor);
    assert!(owed.windows(2).all(|w| w[0].id < w[1].id));
    // Every hour bucket equals a recount from the raw rows.
    let mut recount: BTreeMap<(i64, String, Quantity), (u64, f64)> = BTreeMap::new();
    for r in &readings {
        if let (Some(v), true) = (r.reading.value, r.reading.flags.is_ok()) {
            let e = recount
                .entry((
                    r.reading.ts - r.reading.ts.rem_euclid(3_600_000),
                    r.reading.sensor.to_string(),
                    r.reading.quantity,
                ))
                .or_insert((0, 0.0));
            e.0 += 1;
            e.1 += v;
        }
    }
    let aggs = store
        .aggregates(Resolution::Hour, &Query::default())
        .unwrap();
    assert_eq!(aggs.len(), recount.len());
    for a in aggs {
        let (n, sum) = recount[&(a.start, a.sensor.clone(), a.quantity)];
        assert_eq!(a.count, n, "{} {} at {}", a.sensor, a.quantity, a.start);
        assert!((a.sum - sum).abs() < 1e-6 * sum.abs().max(1.0));
    }
}

/// The station id a database ran under: an existing station whose config never named an
/// id keeps the old default `anemone` (its topics and Home Assistant entities stay); a
/// new database takes the board's own id and keeps it at every start; an explicit id wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_station_id_a_database_ran_under_is_kept() {
    use anemone::config::Synchronous;
    use anemone::reading::{Reading, SensorId};
    use anemone::store::{Store, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let recorded = |db: &std::path::Path| {
        Store::open_read_only(db, chrono_tz::UTC)
            .unwrap()
            .station_id()
            .unwrap()
    };
    let board = |db: &std::path::Path| {
        let mut c = sim_config(db, 1);
        c.station.id = "anemone-0badf00d".into();
        c.station.derived_id = Some(c.station.id.clone());
        c
    };
    // A database from before per-board ids: readings, no recorded id.
    let old = dir.path().join("old.db");
    {
        let mut s = Store::open(
            &old,
            &StoreOptions {
                synchronous: Synchronous::Normal,
                tz: chrono_tz::UTC,
                vfs: None,
            },
        )
        .unwrap();
        let air: SensorId = std::sync::Arc::from("air");
        s.insert_batch(&[Reading::new(
            JUNE_1 - 60_000,
            &air,
            Quantity::AirTemperature,
            9.0,
        )])
        .unwrap();
    }
    run_virtual(board(&old), JUNE_1, 60_000).await;
    assert_eq!(recorded(&old).as_deref(), Some("anemone"));
    run_virtual(board(&old), JUNE_1 + 60_000, 60_000).await;
    assert_eq!(recorded(&old).as_deref(), Some("anemone"));
    // A new database: this board's id, at every start.
    let new = dir.path().join("new.db");
    for n in 0..2 {
        run_virtual(board(&new), JUNE_1 + n * 60_000, 60_000).await;
        assert_eq!(recorded(&new).as_deref(), Some("anemone-0badf00d"));
    }
    // An explicit id wins over what the database recorded.
    let mut named = board(&old);
    named.station.id = "mast".into();
    run_virtual(named, JUNE_1 + 120_000, 60_000).await;
    assert_eq!(recorded(&old).as_deref(), Some("mast"));
}
