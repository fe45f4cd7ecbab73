//! Quality control: flags readings, never removes them. The rules per quantity and their
//! sourced defaults are one table in `config::qc` (`[qc]` overrides them); this stage
//! runs them in order:
//!
//! 1. **Range**: outside the quantity's min/max → `out_of_range`; a non-finite value →
//!    `sensor_error` with no value.
//! 2. **Step**: a change from the previous accepted reading of the same sensor and
//!    quantity larger than `step + step_per_hour × hours between them` → `spike`. The
//!    spike does not become the reference, so the next normal reading passes; a real
//!    level shift is accepted once the allowance has grown with the time since.
//! 3. **Persistence**: a value that has stayed within `resolution` of where it started
//!    for `stuck_after` → `stuck`, and every reading after it until it moves again
//!    (not for calm wind, nor for humidity at saturation).
//! 4. **Internal consistency** → `inconsistent`: humidity above 100 % + tolerance (on
//!    the humidity reading), dew point above the air temperature of the same sensor and
//!    time (on the dew point), a gust below the 2- or 10-min mean of the same minute (on
//!    the gust). Dew points and gusts are derived, so [`Qc::cross_check`] runs on the
//!    derived readings once their whole batch is known.
//!
//! Only readings that passed range and step feed the step and persistence state.

use std::collections::HashMap;

use crate::config::qc::{Rule, CALM_BELOW};
use crate::config::QcConfig;
use crate::reading::{Flags, Quantity, Reading, SensorId, Timestamp};

const HOUR_MS: f64 = 3_600_000.0;
/// How far apart in time an air temperature may be from the dew point it is checked
/// against.
const PAIR_MS: i64 = 60_000;
/// Rounding slack for the consistency comparisons.
const EPSILON: f64 = 1e-9;

/// One sensor quantity's memory.
#[derive(Debug, Default)]
struct Series {
    /// The last reading that passed range and step: the step check's reference.
    accepted: Option<(Timestamp, f64)>,
    /// Where the current run of unchanged values started, and its value.
    run: Option<(Timestamp, f64)>,
}

/// The QC stage.
pub struct Qc {
    rules: HashMap<Quantity, Rule>,
    series: HashMap<(SensorId, Quantity), Series>,
    /// The latest accepted wind speed (the vane is not checked for persistence in calm).
    wind: Option<f64>,
}

/// The distance between two values: around the compass for directions.
fn distance(q: Quantity, a: f64, b: f64) -> f64 {
    let d = (a - b).abs();
    if q.is_direction() {
        let d = d.rem_euclid(360.0);
        d.min(360.0 - d)
    } else {
        d
    }
}

impl Qc {
    /// QC with the configured rules.
    pub fn new(config: &QcConfig) -> Qc {
        Qc {
            rules: Quantity::ALL
                .iter()
                .map(|q| (*q, config.rule(*q)))
                .collect(),
            series: HashMap::new(),
            wind: None,
        }
    }

    /// Runs range, step, persistence and the humidity check on one reading and sets its
    /// flags; never removes it.
    pub fn check(&mut self, r: &mut Reading) {
        let Some(v) = r.value else {
            return;
        };
        if !v.is_finite() {
            r.value = None;
            r.flags.insert(Flags::SENSOR_ERROR);
            return;
        }
        let Some(rule) = self.rules.get(&r.quantity).copied() else {
            return;
        };
        if v < rule.limits.min || v > rule.limits.max {
            r.flags.insert(Flags::OUT_OF_RANGE);
        }
        if r.quantity == Quantity::RelativeHumidity {
            if let Some(t) = rule.tolerance {
                if v > 100.0 + t + EPSILON {
                    r.flags.insert(Flags::INCONSISTENT);
                }
            }
        }
        if r.flags.contains(Flags::OUT_OF_RANGE) {
            return;
        }
        let calm = self.wind.is_some_and(|w| w < CALM_BELOW);
        let s = self
            .series
            .entry((r.sensor.clone(), r.quantity))
            .or_default();
        if let (Some(step), Some((t0, v0))) = (rule.step, s.accepted) {
            if r.ts > t0 {
                let allowed = step.max_change + step.per_hour * (r.ts - t0) as f64 / HOUR_MS;
                if distance(r.quantity, v, v0) > allowed {
                    r.flags.insert(Flags::SPIKE);
                    return;
                }
            }
        }
        if s.accepted.is_none_or(|(t0, _)| r.ts > t0) {
            s.accepted = Some((r.ts, v));
        }
        if let Some(p) = rule.persistence {
            match s.run {
                Some((start, anchor)) if distance(r.quantity, v, anchor) < p.resolution => {
                    let exempt = anchor < p.active_from
                        || anchor >= p.active_below
                        || (r.quantity == Quantity::WindDirection && calm);
                    if r.ts - start >= p.window_ms && !exempt {
                        r.flags.insert(Flags::STUCK);
                    }
                }
                _ => s.run = Some((r.ts, v)),
            }
        }
        if r.quantity == Quantity::WindSpeed && r.flags.is_ok() {
            self.wind = Some(v);
        }
    }

    /// The latest value of `sensor`'s `quantity` that passed range and step, if taken
    /// within [`PAIR_MS`] of `ts`.
    fn near(&self, sensor: &SensorId, q: Quantity, ts: Timestamp) -> Option<f64> {
        self.series
            .get(&(sensor.clone(), q))
            .and_then(|s| s.accepted)
            .filter(|(t, _)| (t - ts).abs() <= PAIR_MS)
            .map(|(_, v)| v)
    }

    /// The consistency checks between readings, on `batch` (derived readings and the
    /// reading they came from, all already through [`Qc::check`]): dew point above the
    /// air temperature, gust below its mean.
    pub fn cross_check(&self, batch: &mut [Reading]) {
        for i in 0..batch.len() {
            let r = &batch[i];
            let Some(v) = r.value else { continue };
            let Some(tol) = self.rules.get(&r.quantity).and_then(|x| x.tolerance) else {
                continue;
            };
            let fired = match r.quantity {
                Quantity::DewPoint => self
                    .near(&r.sensor, Quantity::AirTemperature, r.ts)
                    .is_some_and(|t| v > t + tol + EPSILON),
                Quantity::WindGust => [Quantity::WindSpeedAvg2m, Quantity::WindSpeedAvg10m]
                    .iter()
                    .filter_map(|q| {
                        batch
                            .iter()
                            .find(|m| m.quantity == *q && m.sensor == r.sensor && m.ts == r.ts)
                            .and_then(|m| m.value)
                    })
                    .any(|mean| v < mean - tol - EPSILON),
                _ => false,
            };
            if fired {
                batch[i].flags.insert(Flags::INCONSISTENT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::qc::DEFAULTS;
    use std::sync::Arc;

    const MIN: i64 = 60_000;

    fn sensor() -> SensorId {
        Arc::from("s")
    }

    /// Feeds `(ms, value)` pairs of `q` through a fresh default QC; returns the flags.
    fn run(q: Quantity, series: &[(i64, f64)]) -> Vec<Flags> {
        let mut qc = Qc::new(&QcConfig::default());
        series
            .iter()
            .map(|(t, v)| {
                let mut r = Reading::new(*t, &sensor(), q, *v);
                qc.check(&mut r);
                r.flags
            })
            .collect()
    }

    /// A value inside `q`'s default range, away from the persistence exemptions.
    fn base(q: Quantity) -> f64 {
        let r = QcConfig::default().rule(q);
        match q {
            Quantity::WindSpeed => 30.0,
            Quantity::RelativeHumidity => 40.0,
            Quantity::WindDirection => 180.0,
            _ => (r.limits.min + r.limits.max) / 2.0,
        }
    }

    fn count(flags: &[Flags], f: Flags) -> usize {
        flags.iter().filter(|x| x.contains(f)).count()
    }

    #[test]
    fn flags_and_keeps() {
        let mut qc = Qc::new(&QcConfig::default());
        let s = sensor();
        let mut hot = Reading::new(0, &s, Quantity::AirTemperature, 85.0);
        qc.check(&mut hot);
        assert_eq!(hot.flags, Flags::OUT_OF_RANGE);
        assert_eq!(hot.value, Some(85.0));
        let mut ok = Reading::new(0, &s, Quantity::AirTemperature, 20.0);
        qc.check(&mut ok);
        assert!(ok.flags.is_ok());
        let mut nan = Reading::new(0, &s, Quantity::Ph, f64::NAN);
        qc.check(&mut nan);
        assert_eq!(nan.flags, Flags::SENSOR_ERROR);
        assert_eq!(nan.value, None);
    }

    /// Every quantity: just outside its range trips `out_of_range`, the middle does not.
    #[test]
    fn range_trips_and_passes_per_quantity() {
        for q in Quantity::ALL {
            let l = QcConfig::default_limits(*q);
            let span = l.max - l.min;
            let flags = run(*q, &[(0, l.max + span * 0.01), (MIN, l.min - span * 0.01)]);
            assert_eq!(count(&flags, Flags::OUT_OF_RANGE), 2, "{q}");
            let flags = run(
                *q,
                &[(0, l.min), (MIN, l.min + span / 2.0), (2 * MIN, l.max)],
            );
            assert!(
                flags.iter().all(|f| !f.contains(Flags::OUT_OF_RANGE)),
                "{q}"
            );
        }
    }

    /// Every quantity with a step check in the defaults table: a jump just beyond the
    /// step one sample later trips `spike` (only the jump, not the return), a change just
    /// within it does not, and a slow drift at the hourly rate does not either.
    #[test]
    fn step_trips_and_passes_per_quantity() {
        let mut checked = 0;
        for row in DEFAULTS {
            let Some((step, per_hour)) = row.step else {
                continue;
            };
            for q in row.quantities {
                checked += 1;
                let b = base(*q);
                let s10 = 10_000;
                let trip = run(*q, &[(0, b), (s10, b + step * 1.2), (2 * s10, b)]);
                assert_eq!(trip[1], Flags::SPIKE, "{q}: {trip:?}");
                assert!(trip[0].is_ok() && trip[2].is_ok(), "{q}: {trip:?}");
                let down = run(*q, &[(0, b), (s10, b - step * 1.2)]);
                assert_eq!(down[1], Flags::SPIKE, "{q}");
                let pass = run(*q, &[(0, b), (s10, b + step * 0.8), (2 * s10, b)]);
                assert!(pass.iter().all(|f| f.is_ok()), "{q}: {pass:?}");
                // An hour's gap allows the hourly change on top of the step.
                let gap = run(*q, &[(0, b), (60 * MIN, b + step * 0.9 + per_hour * 0.9)]);
                assert!(gap[1].is_ok(), "{q}: {gap:?}");
            }
        }
        assert!(checked >= 4, "the table has lost its step checks");
    }

    /// Every quantity with a persistence check: a value held within its resolution for
    /// longer than the window trips `stuck` from then on and until it moves; one that
    /// moves by the resolution within every window does not.
    #[test]
    fn persistence_trips_and_passes_per_quantity() {
        let mut checked = 0;
        for row in DEFAULTS {
            let Some((minutes, resolution)) = row.stuck else {
                continue;
            };
            for q in row.quantities {
                checked += 1;
                let b = base(*q);
                let window = minutes * MIN;
                // One reading a minute for two windows, wobbling below the resolution, then
                // a move.
                let mut series: Vec<(i64, f64)> = (0..=2 * minutes)
                    .map(|i| (i * MIN, b + if i % 2 == 0 { 0.0 } else { resolution * 0.4 }))
                    .collect();
                series.push(((2 * minutes + 1) * MIN, b + resolution * 1.5));
                let flags = run(*q, &series);
                let stuck: Vec<bool> = flags.iter().map(|f| f.contains(Flags::STUCK)).collect();
                let first = stuck.iter().position(|s| *s);
                assert_eq!(
                    first,
                    Some(minutes as usize),
                    "{q}: stuck from the window on"
                );
                assert!(
                    stuck[minutes as usize..series.len() - 1].iter().all(|s| *s),
                    "{q}"
                );
                assert!(!stuck[series.len() - 1], "{q}: moving again clears it");
                assert_eq!(count(&flags, Flags::SPIKE), 0, "{q}");
                // Moving by the resolution every half window: never stuck.
                let moving: Vec<(i64, f64)> = (0..=4 * minutes)
                    .map(|i| {
                        let k = (i * MIN) / (window / 2);
                        (i * MIN, b + resolution * 1.1 * (k % 2) as f64)
                    })
                    .collect();
                let flags = run(*q, &moving);
                assert_eq!(count(&flags, Flags::STUCK), 0, "{q}");
            }
        }
        assert!(checked >= 5, "the table has lost its persistence checks");
    }

    #[test]
    fn calm_wind_and_saturated_air_are_not_stuck() {
        let hour: Vec<i64> = (0..=120).map(|i| i * MIN).collect();
        let calm: Vec<(i64, f64)> = hour.iter().map(|t| (*t, 0.0)).collect();
        assert_eq!(count(&run(Quantity::WindSpeed, &calm), Flags::STUCK), 0);
        let fog: Vec<(i64, f64)> = hour.iter().map(|t| (*t, 99.5)).collect();
        assert_eq!(
            count(&run(Quantity::RelativeHumidity, &fog), Flags::STUCK),
            0
        );
        // A vane that does not move in calm air is not stuck; in a breeze it is.
        for (speed, wobble, want) in [(0.2, 0.1, 0), (4.0, 1.0, 61)] {
            let mut qc = Qc::new(&QcConfig::default());
            let s = sensor();
            let mut stuck = 0;
            for t in &hour {
                let odd = (t / MIN % 2) as f64;
                let mut w = Reading::new(*t, &s, Quantity::WindSpeed, speed + wobble * odd);
                qc.check(&mut w);
                let dir = (359.0 + 2.0 * odd).rem_euclid(360.0);
                let mut d = Reading::new(*t, &s, Quantity::WindDirection, dir);
                qc.check(&mut d);
                stuck += usize::from(d.flags.contains(Flags::STUCK));
            }
            assert_eq!(stuck, want, "vane in {speed} m/s");
        }
    }

    /// Each consistency check of the table: a reading that contradicts its partner trips
    /// `inconsistent`, one within tolerance does not.
    #[test]
    fn consistency_trips_and_passes_per_quantity() {
        let s = sensor();
        for (q, _) in crate::config::qc::CONSISTENCY {
            let tol = QcConfig::default().rule(q).tolerance.unwrap_or(f64::NAN);
            assert!(tol >= 0.0, "{q} has a tolerance");
            for (beyond, want) in [(tol + 0.5, true), (tol * 0.5, false)] {
                let mut qc = Qc::new(&QcConfig::default());
                let mut batch = match q {
                    Quantity::RelativeHumidity => {
                        vec![Reading::new(0, &s, q, 100.0 + beyond)]
                    }
                    Quantity::DewPoint => {
                        let mut t = Reading::new(0, &s, Quantity::AirTemperature, 10.0);
                        qc.check(&mut t);
                        vec![Reading::new(0, &s, q, 10.0 + beyond)]
                    }
                    _ => vec![
                        Reading::new(MIN, &s, q, 6.0 - beyond),
                        Reading::new(MIN, &s, Quantity::WindSpeedAvg2m, 5.0),
                        Reading::new(MIN, &s, Quantity::WindSpeedAvg10m, 6.0),
                    ],
                };
                for r in batch.iter_mut() {
                    qc.check(r);
                }
                qc.cross_check(&mut batch);
                assert_eq!(
                    batch[0].flags.contains(Flags::INCONSISTENT),
                    want,
                    "{q} {beyond}"
                );
                assert!(batch[1..].iter().all(|r| r.flags.is_ok()), "{q}");
            }
        }
    }

    #[test]
    fn config_changes_the_checks() {
        let c = crate::config::Config::from_toml(
            "[qc]\nair_temperature = { step = 0.5, stuck_after = \"0s\" }\nph = { step = 0.2 }\n",
            "t",
        )
        .unwrap();
        let mut qc = Qc::new(&c.qc);
        let s = sensor();
        let mut flags = Vec::new();
        for (t, q, v) in [
            (0, Quantity::AirTemperature, 20.0),
            (10_000, Quantity::AirTemperature, 20.7),
            (0, Quantity::Ph, 8.0),
            (10_000, Quantity::Ph, 8.3),
        ] {
            let mut r = Reading::new(t, &s, q, v);
            qc.check(&mut r);
            flags.push(r.flags);
        }
        assert_eq!(flags, [Flags::OK, Flags::SPIKE, Flags::OK, Flags::SPIKE]);
        // Persistence off: two hours unchanged, never stuck.
        let flat: Vec<(i64, f64)> = (0..=120).map(|i| (i * MIN, 20.0)).collect();
        let mut qc = Qc::new(&c.qc);
        for (t, v) in flat {
            let mut r = Reading::new(t, &s, Quantity::AirTemperature, v);
            qc.check(&mut r);
            assert!(r.flags.is_ok());
        }
    }

    #[test]
    fn directions_step_around_north() {
        assert!((distance(Quantity::WindDirection, 350.0, 10.0) - 20.0).abs() < 1e-9);
        assert!((distance(Quantity::AirTemperature, 350.0, 10.0) - 340.0).abs() < 1e-9);
    }
}
