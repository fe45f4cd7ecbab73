//! `anemone calibrate ph`: talk to the probe, record the calibration in the store.
//!
//! * **EZO-pH**: the circuit keeps its own calibration; Anemone sends `Cal,mid,7.00`
//!   (first: it clears the other points), `Cal,low,4.00`, `Cal,high,10.00`, `Cal,clear`,
//!   and reads `Cal,?` / `Slope,?` for `--status`. Each command is recorded with its time.
//! * **Analog probe**: Anemone measures the probe's voltage in the buffer (and the water
//!   temperature, if a `temperature_sensor` is configured), records the point, and fits
//!   the calibration from the points since the last `mid` (1 point: offset only; 2:
//!   slope and offset; 3: least squares). `run` uses the latest fitted calibration.
//!
//! Every record is kept, so each pH reading can be traced to the calibration in force at
//! its time.

use anemone_drivers::ads1115::{Ads1115, Fsr};
use anemone_drivers::analog_ph::{calibrate as fit, CalPointV, PhCalibration};
use anemone_drivers::ezo_ph::{CalPoint, EzoPh};

use crate::config::Config;
use crate::hal::Hal;
use crate::reading::Timestamp;
use crate::sensors::{PhCalibrationInForce, SensorKind};
use crate::store::{Store, StoreError};

/// Which buffer the probe sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// pH 7 (always first).
    Mid,
    /// pH 4.
    Low,
    /// pH 10.
    High,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::Mid => "mid",
            Point::Low => "low",
            Point::High => "high",
        }
    }
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Calibrate one point at the buffer's pH.
    Point(Point, f64),
    /// Clear the calibration.
    Clear,
    /// Report the calibration state.
    Status,
}

/// Why calibration failed.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// No such sensor, or not a pH sensor.
    #[error("{0}")]
    Sensor(String),
    /// The probe did not answer or refused.
    #[error("{0}")]
    Device(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Kind names recorded in the store.
pub const KIND_EZO: &str = "ph_ezo";
/// Analog point records.
pub const KIND_ANALOG_POINT: &str = "ph_analog_point";
/// Analog fitted calibrations (the one in force is the latest).
pub const KIND_ANALOG_FIT: &str = "ph_analog_fit";
/// Analog clear records.
pub const KIND_ANALOG_CLEAR: &str = "ph_analog_clear";

/// Runs `action` on sensor `id` and records it at time `now`. Returns a report.
pub fn calibrate(
    config: &Config,
    hal: &Hal,
    store: &mut Store,
    id: &str,
    action: Action,
    now: Timestamp,
) -> Result<String, CalibrateError> {
    let sensor = config.sensor(id).ok_or_else(|| {
        CalibrateError::Sensor(format!("no sensor has id \"{id}\" in the config"))
    })?;
    let mut delay = hal.delay();
    match &sensor.kind {
        SensorKind::PhEzo(c) => {
            let (bus, address) = (&c.bus, &c.address);
            let i2c = hal
                .i2c(*bus)
                .map_err(|e| CalibrateError::Device(e.to_string()))?;
            let mut dev = EzoPh::new(i2c, *address);
            let fail = |what: &str, e: &dyn std::fmt::Debug| {
                CalibrateError::Device(format!("EZO-pH at {address:#04x}: {what} failed: {e:?}"))
            };
            match action {
                Action::Point(point, ph) => {
                    let p = match point {
                        Point::Mid => CalPoint::Mid,
                        Point::Low => CalPoint::Low,
                        Point::High => CalPoint::High,
                    };
                    dev.calibrate(p, ph, &mut delay)
                        .map_err(|e| fail("Cal", &e))?;
                    let points = dev
                        .calibration_points(&mut delay)
                        .map_err(|e| fail("Cal,?", &e))?;
                    store.record_calibration(
                        id,
                        now,
                        KIND_EZO,
                        &serde_json::json!({"action": "point", "point": point.name(), "ph": ph, "points_after": points}),
                    )?;
                    Ok(format!("Calibrated {id} at {} (pH {ph:.2}); the circuit now holds {points} point(s).", point.name()))
                }
                Action::Clear => {
                    dev.clear_calibration(&mut delay)
                        .map_err(|e| fail("Cal,clear", &e))?;
                    store.record_calibration(
                        id,
                        now,
                        KIND_EZO,
                        &serde_json::json!({"action": "clear"}),
                    )?;
                    Ok(format!("Cleared the calibration of {id}."))
                }
                Action::Status => {
                    let points = dev
                        .calibration_points(&mut delay)
                        .map_err(|e| fail("Cal,?", &e))?;
                    let slope = dev.slope(&mut delay).map_err(|e| fail("Slope,?", &e))?;
                    let mut s = format!(
                        "{id}: {points} calibration point(s); slope acid {:.1} %, base {:.1} %",
                        slope.acid_pct, slope.base_pct
                    );
                    if let Some(z) = slope.zero_offset_mv {
                        s.push_str(&format!(", zero offset {z:.2} mV"));
                    }
                    s.push('\n');
                    s.push_str(&history(store, id)?);
                    Ok(s)
                }
            }
        }
        SensorKind::PhAnalog(c) => {
            let (bus, address, channel) = (&c.bus, &c.address, &c.channel);
            let (calibration, temperature_sensor) = (&c.calibration, &c.temperature_sensor);
            let default_slope = calibration.slope_volts_per_ph;
            match action {
                Action::Point(point, ph) => {
                    let i2c = hal
                        .i2c(*bus)
                        .map_err(|e| CalibrateError::Device(e.to_string()))?;
                    let mut adc = Ads1115::new(i2c, *address);
                    // Average a few conversions: a pH electrode is a high-impedance source.
                    let mut sum = 0.0;
                    const N: u32 = 8;
                    for _ in 0..N {
                        sum += adc
                            .read_volts(*channel, Fsr::V4_096, &mut delay)
                            .map_err(|e| {
                                CalibrateError::Device(format!("ADS1115 at {address:#04x}: {e:?}"))
                            })?;
                    }
                    let volts = sum / f64::from(N);
                    let temp_c = temperature_sensor
                        .as_deref()
                        .and_then(|t| read_temperature(config, hal, t))
                        .unwrap_or(25.0);
                    store.record_calibration(
                        id,
                        now,
                        KIND_ANALOG_POINT,
                        &serde_json::json!({"point": point.name(), "ph": ph, "volts": volts, "temp_c": temp_c}),
                    )?;
                    let cal = refit(store, id, default_slope, now)?;
                    Ok(format!(
                        "Recorded {} point of {id}: pH {ph:.2} at {volts:.4} V, {temp_c:.1} °C.\nCalibration in force: {:.4} V at pH 7, {:.2} mV/pH at 25 °C.",
                        point.name(),
                        cal.neutral_volts,
                        cal.slope_volts_per_ph * 1000.0
                    ))
                }
                Action::Clear => {
                    store.record_calibration(id, now, KIND_ANALOG_CLEAR, &serde_json::json!({}))?;
                    Ok(format!("Cleared the stored calibration of {id}; the config's fallback is in force."))
                }
                Action::Status => {
                    let inforce = in_force(store, id)?;
                    let mut s = match inforce {
                        Some(c) => format!(
                            "{id}: {:.4} V at pH 7, {:.2} mV/pH at 25 °C (recorded {})\n",
                            c.calibration.neutral_volts,
                            c.calibration.slope_volts_per_ph * 1000.0,
                            crate::reading::format_ts(c.ts)
                        ),
                        None => format!(
                            "{id}: no stored calibration; using the config's {:.4} V at pH 7, {:.2} mV/pH\n",
                            calibration.neutral_volts,
                            calibration.slope_volts_per_ph * 1000.0
                        ),
                    };
                    s.push_str(&history(store, id)?);
                    Ok(s)
                }
            }
        }
        other => Err(CalibrateError::Sensor(format!(
            "sensor \"{id}\" is a {}, not a pH probe",
            other.type_name()
        ))),
    }
}

fn read_temperature(config: &Config, hal: &Hal, id: &str) -> Option<f64> {
    let s = config.sensor(id)?;
    let mut source = crate::sensors::build(s, hal, &Default::default()).ok()?;
    let readings = source.sample(crate::clock::system_now()).ok()?;
    readings.into_iter().find_map(|r| r.value)
}

/// Fits the points recorded since the last `mid` (or clear) and records the result.
fn refit(
    store: &mut Store,
    id: &str,
    default_slope: f64,
    now: Timestamp,
) -> Result<PhCalibration, CalibrateError> {
    let records = store.calibrations(id)?;
    let mut points: Vec<CalPointV> = Vec::new();
    for r in &records {
        match r.kind.as_str() {
            KIND_ANALOG_CLEAR => points.clear(),
            KIND_ANALOG_POINT => {
                let get = |k: &str| r.payload.get(k).and_then(|v| v.as_f64());
                if r.payload.get("point").and_then(|v| v.as_str()) == Some("mid") {
                    points.clear();
                }
                if let (Some(ph), Some(volts), Some(temp_c)) =
                    (get("ph"), get("volts"), get("temp_c"))
                {
                    points.push(CalPointV { ph, volts, temp_c });
                }
            }
            _ => {}
        }
    }
    let cal = fit(&points, default_slope)
        .map_err(|e| CalibrateError::Device(format!("cannot fit the calibration points: {e:?}")))?;
    store.record_calibration(
        id,
        now,
        KIND_ANALOG_FIT,
        &serde_json::json!({"neutral_volts": cal.neutral_volts, "slope_volts_per_ph": cal.slope_volts_per_ph, "points": points.len()}),
    )?;
    Ok(cal)
}

/// The stored analog calibration in force for `id` (the latest fit after the latest clear).
pub fn in_force(store: &Store, id: &str) -> Result<Option<PhCalibrationInForce>, StoreError> {
    let mut current = None;
    for r in store.calibrations(id)? {
        match r.kind.as_str() {
            KIND_ANALOG_CLEAR => current = None,
            KIND_ANALOG_FIT => {
                let get = |k: &str| r.payload.get(k).and_then(|v| v.as_f64());
                if let (Some(neutral_volts), Some(slope_volts_per_ph)) =
                    (get("neutral_volts"), get("slope_volts_per_ph"))
                {
                    current = Some(PhCalibrationInForce {
                        ts: r.ts,
                        calibration: PhCalibration {
                            neutral_volts,
                            slope_volts_per_ph,
                        },
                    });
                }
            }
            _ => {}
        }
    }
    Ok(current)
}

pub(crate) fn history(store: &Store, id: &str) -> Result<String, StoreError> {
    let mut s = String::from("History:\n");
    let records = store.calibrations(id)?;
    if records.is_empty() {
        s.push_str("  (none recorded)\n");
    }
    for r in records {
        s.push_str(&format!(
            "  {}  {}  {}\n",
            crate::reading::format_ts(r.ts),
            r.kind,
            r.payload
        ));
    }
    Ok(s)
}
