//! `anemone calibrate analog`: the two-point calibration of an `analog` sensor, recorded
//! like the pH's. Put the sensor in a standard (formazin for turbidity, a nitrate standard
//! for nitrate), wait for the reading to settle, then:
//!
//! | Step (`--step`) | What Anemone does |
//! |---|---|
//! | `first --value V` | measures the sensor's voltage, records the point; starts a new calibration (one point: the voltage is shifted) |
//! | `second --value V` | measures, records the point; the two points give shift and scale |
//!
//! Each point is the measured voltage and the voltage at which the sensor's curve gives
//! the standard's value; the fitted [`VoltsCorrection`] maps one onto the other and is
//! recorded after every point (the latest after the latest `first` or clear is in force,
//! from the next `anemone run`). `--clear` records a clear (back to the bare curve);
//! `--status` lists the history. Every record is kept.

use crate::calibrate::{history, CalibrateError};
use crate::calibrate_circuit::CircuitAction;
use crate::config::Config;
use crate::hal::Hal;
use crate::reading::Timestamp;
use crate::sensors::analog::{AnalogCalibrationInForce, AnalogConfig, VoltsCorrection};
use crate::sensors::SensorKind;
use crate::store::{Store, StoreError};

/// A measured point.
pub const KIND_POINT: &str = "analog_point";
/// A fitted correction (the one in force is the latest).
pub const KIND_FIT: &str = "analog_fit";
/// Back to the bare curve.
pub const KIND_CLEAR: &str = "analog_clear";

/// Runs `action` on the `analog` sensor `id`, recording at `now`. Returns a report.
pub fn calibrate_analog(
    config: &Config,
    hal: &Hal,
    store: &mut Store,
    id: &str,
    action: CircuitAction,
    now: Timestamp,
) -> Result<String, CalibrateError> {
    let sensor = config.sensor(id).ok_or_else(|| {
        CalibrateError::Sensor(format!("no sensor has id \"{id}\" in the config"))
    })?;
    let SensorKind::Analog(c) = &sensor.kind else {
        return Err(CalibrateError::Sensor(format!(
            "sensor \"{id}\" is a {}, not an analog sensor (type = \"analog\")",
            sensor.kind.type_name()
        )));
    };
    match action {
        CircuitAction::Status => {
            let in_force = in_force(store, id)?;
            let head = match in_force {
                Some(k) => format!(
                    "{id}: sensor volts × {:.5} {:+.5} V, recorded {}",
                    k.correction.gain,
                    k.correction.offset_volts,
                    crate::reading::format_ts(k.ts)
                ),
                None => format!("{id}: no calibration recorded: the bare curve is in use"),
            };
            Ok(format!("{head}\n{}", history(store, id)?))
        }
        CircuitAction::Clear => {
            store.record_calibration(id, now, KIND_CLEAR, &serde_json::json!({}))?;
            Ok(format!(
                "Cleared the calibration of {id}: the bare curve is used from the next run."
            ))
        }
        CircuitAction::Step(step, value) => {
            let first = match step.as_str() {
                "first" => true,
                "second" => false,
                other => {
                    return Err(CalibrateError::Sensor(format!(
                        "\"{other}\" is not a calibration step of analog: use first or second"
                    )))
                }
            };
            let value = value.ok_or_else(|| {
                CalibrateError::Sensor(format!(
                    "step {step} needs --value: the standard's value in {}",
                    c.quantity().map(|q| q.unit()).unwrap_or("its unit")
                ))
            })?;
            if !first && points_since_start(store, id)?.is_empty() {
                return Err(CalibrateError::Sensor(format!(
                    "no first point recorded for {id}: run --step first in the first standard"
                )));
            }
            let wanted = wanted_volts(c, value)?;
            let measured = c
                .measure_volts(hal)
                .map_err(|e| CalibrateError::Device(format!("{id}: {e}")))?;
            let mut points = if first {
                Vec::new()
            } else {
                points_since_start(store, id)?
            };
            points.push((measured, wanted));
            // A sensor off by more than a factor of two is miswired, or the two standards
            // read alike (mixed up, or the probe was not moved): nothing is recorded.
            let k = VoltsCorrection::fit(&points)
                .filter(|k| (0.5..=2.0).contains(&k.gain))
                .ok_or_else(|| {
                    CalibrateError::Device(format!(
                        "{id}: {measured:.4} V in this standard does not fit the first point {:?} (a correction gain outside 0.5–2): the two standards must read clearly apart (e.g. 0 and 1000 NTU); nothing recorded",
                        points.first().map(|p| p.0)
                    ))
                })?;
            store.record_calibration(
                id,
                now,
                KIND_POINT,
                &serde_json::json!({"step": step, "value": value, "volts": measured, "curve_volts": wanted}),
            )?;
            store.record_calibration(
                id,
                now,
                KIND_FIT,
                &serde_json::json!({"gain": k.gain, "offset_volts": k.offset_volts, "points": points.len()}),
            )?;
            Ok(format!(
                "Recorded {step} point of {id}: {measured:.4} V for {value} (the curve's {wanted:.4} V); in force from the next run: volts × {:.5} {:+.5} V.",
                k.gain, k.offset_volts
            ))
        }
    }
}

/// The voltage at which `c`'s curve gives `value`.
fn wanted_volts(c: &AnalogConfig, value: f64) -> Result<f64, CalibrateError> {
    let valid = c.valid();
    c.curve().volts_for(value, valid).ok_or_else(|| {
        let curve = c.curve();
        CalibrateError::Sensor(format!(
            "{value} is outside what the curve gives between {} V and {} V ({:.3} to {:.3}): use a standard within the sensor's range",
            valid.0,
            valid.1,
            curve.value(valid.0),
            curve.value(valid.1)
        ))
    })
}

/// The (measured, curve) volt pairs since the latest `first` point or clear.
fn points_since_start(store: &Store, id: &str) -> Result<Vec<(f64, f64)>, StoreError> {
    let mut points = Vec::new();
    for r in store.calibrations(id)? {
        match r.kind.as_str() {
            KIND_CLEAR => points.clear(),
            KIND_POINT => {
                let get = |k: &str| r.payload.get(k).and_then(|v| v.as_f64());
                if r.payload.get("step").and_then(|v| v.as_str()) == Some("first") {
                    points.clear();
                }
                if let (Some(m), Some(w)) = (get("volts"), get("curve_volts")) {
                    points.push((m, w));
                }
            }
            _ => {}
        }
    }
    Ok(points)
}

/// The correction in force for `id`: the latest fit after the latest clear.
pub fn in_force(store: &Store, id: &str) -> Result<Option<AnalogCalibrationInForce>, StoreError> {
    let mut current = None;
    for r in store.calibrations(id)? {
        match r.kind.as_str() {
            KIND_CLEAR => current = None,
            KIND_FIT => {
                let get = |k: &str| r.payload.get(k).and_then(|v| v.as_f64());
                if let (Some(gain), Some(offset_volts)) = (get("gain"), get("offset_volts")) {
                    current = Some(AnalogCalibrationInForce {
                        ts: r.ts,
                        correction: VoltsCorrection { offset_volts, gain },
                    });
                }
            }
            _ => {}
        }
    }
    Ok(current)
}

/// The corrections in force for every `analog` sensor of `config`, by id.
pub fn all_in_force(
    store: &Store,
    config: &Config,
) -> Result<std::collections::HashMap<String, AnalogCalibrationInForce>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for s in &config.sensors {
        if let SensorKind::Analog(_) = s.kind {
            if let Some(k) = in_force(store, &s.id)? {
                out.insert(s.id.clone(), k);
            }
        }
    }
    Ok(out)
}
