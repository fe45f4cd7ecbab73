//! The correction stage: each sensor quantity's correction in force ([`crate::correction`])
//! applied to its readings before QC, so QC, the derived quantities, the store, MQTT and
//! the page all see the corrected value.
//!
//! [`load`] runs once when the station starts, on the store it opens (sources never open
//! the store; the pipeline receives what it needs):
//!
//! 1. A correction in the config that is new or changed since the config's last record for
//!    that sensor quantity is recorded (`correction`, source `config`); one removed from
//!    the config is recorded as cleared. An unchanged one is not recorded again.
//! 2. The correction in force for each sensor quantity is the latest `correction` record,
//!    whoever set it (the config, or `anemone calibrate correction`).
//! 3. When that differs from what the station applied last, a `correction_applied` record
//!    marks the start of a range: readings of that quantity from this time on were stored
//!    corrected by that record (or uncorrected). These ranges, not the `correction` records'
//!    own times, say which correction produced a stored reading — a correction set while
//!    the station runs takes effect at its next start, and the range says so. They cost
//!    nothing per reading.

use std::collections::HashMap;

use crate::config::Config;
use crate::correction::{
    AppliedRecord, Correction, CorrectionRecord, CorrectionSpec, KIND_APPLIED, KIND_CORRECTION,
    SOURCE_CONFIG,
};
use crate::reading::{Quantity, Reading, Timestamp};
use crate::store::{Store, StoreError};

/// The corrections in force, by sensor and quantity.
#[derive(Debug, Clone, Default)]
pub struct Corrections {
    by_sensor: HashMap<String, HashMap<Quantity, Correction>>,
}

impl Corrections {
    /// Adds the correction of `sensor`'s `quantity`.
    pub fn insert(&mut self, sensor: &str, quantity: Quantity, c: Correction) {
        self.by_sensor
            .entry(sensor.to_string())
            .or_default()
            .insert(quantity, c);
    }

    /// True when nothing is corrected.
    pub fn is_empty(&self) -> bool {
        self.by_sensor.values().all(HashMap::is_empty)
    }

    /// Corrects the reading's value in place (a reading without a finite value is left
    /// for QC).
    pub fn apply(&self, r: &mut Reading) {
        let Some(v) = r.value.filter(|v| v.is_finite()) else {
            return;
        };
        if let Some(c) = self
            .by_sensor
            .get(&*r.sensor)
            .and_then(|m| m.get(&r.quantity))
        {
            r.value = Some(c.apply(v));
        }
    }
}

/// What the store says about one sensor quantity's corrections.
#[derive(Default)]
struct History {
    /// The latest record set by the config: (cleared, spec).
    last_config: Option<(bool, CorrectionSpec)>,
    /// The latest record of anyone: id, cleared, spec.
    latest: Option<(i64, bool, CorrectionSpec)>,
    /// The correction the last `correction_applied` record names.
    applied: Option<Option<i64>>,
}

fn histories(store: &Store, sensor: &str) -> Result<HashMap<Quantity, History>, StoreError> {
    let mut out: HashMap<Quantity, History> = HashMap::new();
    // In the order they were recorded (ids), which is time order on a real clock; a
    // simulated run on a past day records in the past.
    let mut records = store.calibrations(sensor)?;
    records.sort_by_key(|r| r.id);
    for r in records {
        match r.kind.as_str() {
            KIND_CORRECTION => {
                if let Ok(c) = serde_json::from_value::<CorrectionRecord>(r.payload) {
                    let h = out.entry(c.quantity).or_default();
                    if c.source == SOURCE_CONFIG {
                        h.last_config = Some((c.clear, c.spec.clone()));
                    }
                    h.latest = Some((r.id, c.clear, c.spec));
                }
            }
            KIND_APPLIED => {
                if let Ok(a) = serde_json::from_value::<AppliedRecord>(r.payload) {
                    out.entry(a.quantity).or_default().applied = Some(a.calibration);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Records the config's new or changed corrections and the ranges that start now (see the
/// module docs), and returns the corrections in force for the configured sensors.
pub fn load(store: &mut Store, config: &Config, now: Timestamp) -> Result<Corrections, StoreError> {
    let mut out = Corrections::default();
    for sensor in &config.sensors {
        let mut hist = histories(store, &sensor.id)?;
        let measured = sensor.kind.quantities();
        let mut quantities: Vec<Quantity> = hist.keys().copied().collect();
        quantities.extend(sensor.correction.keys().copied());
        quantities.sort();
        quantities.dedup();
        for q in quantities {
            let h = hist.entry(q).or_default();
            let wanted = sensor.correction.get(&q);
            let record = match (wanted, &h.last_config) {
                (Some(spec), Some((false, last))) if last == spec => None,
                (Some(spec), _) => Some((false, spec.clone())),
                (None, Some((false, _))) => Some((true, CorrectionSpec::default())),
                (None, _) => None,
            };
            if let Some((clear, spec)) = record {
                let payload = CorrectionRecord {
                    quantity: q,
                    source: SOURCE_CONFIG.to_string(),
                    clear,
                    spec: spec.clone(),
                };
                let id = store.record_calibration(
                    &sensor.id,
                    now,
                    KIND_CORRECTION,
                    &serde_json::to_value(&payload).unwrap_or_default(),
                )?;
                h.latest = Some((id, clear, spec));
            }
            // The correction in force; a record `validate` would refuse today (the sensor
            // no longer measures it, or the rule tightened) is not applied.
            let in_force = match &h.latest {
                Some((id, false, spec)) => crate::correction::check(&sensor.id, &measured, q, spec)
                    .map_err(|e| {
                        tracing::warn!(sensor = %sensor.id, quantity = q.as_str(), calibration = id, "Correction not applied: {e}");
                    })
                    .ok()
                    .map(|c| (*id, c)),
                _ => None,
            };
            let id = in_force.as_ref().map(|(id, _)| *id);
            if h.applied.unwrap_or(None) != id {
                let payload = AppliedRecord {
                    quantity: q,
                    calibration: id,
                };
                store.record_calibration(
                    &sensor.id,
                    now,
                    KIND_APPLIED,
                    &serde_json::to_value(&payload).unwrap_or_default(),
                )?;
            }
            if let Some((id, c)) = in_force {
                tracing::info!(sensor = %sensor.id, quantity = q.as_str(), calibration = id, "Correcting readings");
                out.insert(&sensor.id, q, c);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correction::Timeline;
    use std::sync::Arc;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[[sensor]]\ntype = \"bme280\"\nid = \"box\"\n{extra}\n[[sensor]]\ntype = \"rain_gauge\"\nid = \"rain\"\n"
        );
        match Config::from_toml(&text, "test") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn store(dir: &std::path::Path) -> Store {
        let opts = crate::store::StoreOptions {
            synchronous: crate::config::Synchronous::Normal,
            tz: chrono_tz::UTC,
            vfs: None,
        };
        Store::open(&dir.join("a.db"), &opts).unwrap()
    }

    fn reading(ts: i64, v: f64) -> Reading {
        let s: crate::reading::SensorId = Arc::from("box");
        Reading::new(ts, &s, Quantity::AirTemperature, v)
    }

    #[test]
    fn config_correction_recorded_once_and_applied_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = store(dir.path());
        // First start: no correction, nothing recorded.
        let c = load(&mut st, &config(""), 1_000).unwrap();
        assert!(c.is_empty());
        assert!(st.calibrations("box").unwrap().is_empty());
        // Second start: the config gains an offset.
        let cfg = config("correction.air_temperature = { offset = -1.2 }");
        let c = load(&mut st, &cfg, 5_000).unwrap();
        let mut r = reading(5_001, 21.7);
        c.apply(&mut r);
        assert!((r.value.unwrap() - 20.5).abs() < 1e-12);
        let recs = st.calibrations("box").unwrap();
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(recs[0].kind, KIND_CORRECTION);
        assert_eq!(recs[1].kind, KIND_APPLIED);
        // Third start, same config: nothing new.
        load(&mut st, &cfg, 9_000).unwrap();
        assert_eq!(st.calibrations("box").unwrap().len(), 2);
        // The timeline: before 5 000 uncorrected, from it corrected by record 1.
        let recs = st.calibrations("box").unwrap();
        let t = Timeline::from_records(
            recs.iter()
                .map(|r| (r.id, r.ts, r.kind.as_str(), &r.payload)),
        );
        assert!(t.at(Quantity::AirTemperature, 4_999).is_none());
        let (id, corr) = t.at(Quantity::AirTemperature, 9_500).unwrap();
        assert_eq!(id, recs[0].id);
        assert!((corr.invert(20.5) - 21.7).abs() < 1e-12);
        // Fourth start: removed from the config → cleared, a new uncorrected range.
        let c = load(&mut st, &config(""), 12_000).unwrap();
        assert!(c.is_empty());
        let recs = st.calibrations("box").unwrap();
        assert_eq!(recs.len(), 4, "{recs:?}");
        let t = Timeline::from_records(
            recs.iter()
                .map(|r| (r.id, r.ts, r.kind.as_str(), &r.payload)),
        );
        assert!(t.at(Quantity::AirTemperature, 11_999).is_some());
        assert!(t.at(Quantity::AirTemperature, 12_000).is_none());
    }

    #[test]
    fn corrections_round_trip_through_toml() {
        let c = config(
            "correction.air_temperature = { offset = -1.2, scale = 1.01 }\n[sensor.correction.relative_humidity]\npolynomial = [-1.5, 1.03, -0.0001]\nrange = [0, 100]",
        );
        assert_eq!(c.sensors[0].correction.len(), 2);
        let again = Config::from_toml(&c.to_toml().unwrap(), "round trip").unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn a_later_calibrate_record_wins_until_the_config_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = store(dir.path());
        let cfg = config("correction.air_temperature = { offset = -1.0 }");
        load(&mut st, &cfg, 1_000).unwrap();
        let payload = CorrectionRecord {
            quantity: Quantity::AirTemperature,
            source: crate::correction::SOURCE_CALIBRATE.into(),
            clear: false,
            spec: CorrectionSpec {
                offset: Some(-2.0),
                ..CorrectionSpec::default()
            },
        };
        let id = st
            .record_calibration(
                "box",
                2_000,
                KIND_CORRECTION,
                &serde_json::to_value(&payload).unwrap(),
            )
            .unwrap();
        let c = load(&mut st, &cfg, 3_000).unwrap();
        let mut r = reading(3_001, 20.0);
        c.apply(&mut r);
        assert_eq!(r.value, Some(18.0));
        let last = st.calibrations("box").unwrap().pop().unwrap();
        assert_eq!(last.kind, KIND_APPLIED);
        assert_eq!(last.payload["calibration"], serde_json::json!(id));
        // The config changes: its new value is the latest.
        let cfg = config("correction.air_temperature = { offset = -0.5 }");
        let c = load(&mut st, &cfg, 4_000).unwrap();
        let mut r = reading(4_001, 20.0);
        c.apply(&mut r);
        assert_eq!(r.value, Some(19.5));
    }
}
