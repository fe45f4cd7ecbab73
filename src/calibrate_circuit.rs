//! `anemone calibrate ec|do|orp`: calibration steps of the circuits that keep their own
//! calibration (Atlas Scientific EZO-EC, EZO-DO, EZO-ORP). Anemone sends the step, reads
//! back how many points the circuit holds, and records both in the store with their time,
//! as it does for the EZO-pH (see [`crate::calibrate`]).
//!
//! | Kind | Steps (`--step`) | Command sent |
//! |---|---|---|
//! | `ec_ezo` | `dry` (first, probe dry), `single --value µS/cm`, `low --value`, `high --value` | `Cal,dry`, `Cal,n`, `Cal,low,n`, `Cal,high,n` |
//! | `do_ezo` | `air` (probe in air), `zero` (zero-oxygen solution) | `Cal`, `Cal,0` |
//! | `orp_ezo` | `point --value mV` (default 225) | `Cal,n` |
//! | `scd41` | `frc --value ppm` (default 420: outdoor air) | `perform_forced_recalibration` |
//!
//! The SCD41's forced recalibration needs the sensor to have measured for 3 minutes in air
//! of the known concentration (run the station outdoors first, then stop it and
//! calibrate); Anemone stops periodic measurement, sends the target, records the
//! correction the sensor applied, and restarts periodic measurement.
//! `--clear` sends `Cal,clear`; `--status` reads `Cal,?` and lists the recorded history.

use anemone_drivers::ezo::{Ezo, EzoError};
use anemone_drivers::ezo_do::{self, EzoDo};
use anemone_drivers::ezo_ec::{self, EzoEc};
use anemone_drivers::ezo_orp::EzoOrp;
use anemone_drivers::scd41::Scd41;

use crate::calibrate::{history, CalibrateError};
use crate::config::Config;
use crate::hal::{BusError, Hal, I2cBus};
use crate::reading::Timestamp;
use crate::sensors::scd41::{Scd41Config, Scd41Mode};
use crate::sensors::SensorKind;
use crate::store::Store;

/// What to do with a circuit.
#[derive(Debug, Clone, PartialEq)]
pub enum CircuitAction {
    /// One calibration step by name, with its value where it takes one.
    Step(String, Option<f64>),
    /// Clear the circuit's calibration.
    Clear,
    /// Report the points held and the history.
    Status,
}

/// Kind names recorded in the store.
pub const KIND_EC: &str = "ec_ezo";
/// EZO-DO records.
pub const KIND_DO: &str = "do_ezo";
/// EZO-ORP records.
pub const KIND_ORP: &str = "orp_ezo";

enum Circuit {
    Ec(EzoEc<I2cBus>),
    Do(EzoDo<I2cBus>),
    Orp(EzoOrp<I2cBus>),
}

impl Circuit {
    fn ezo(&mut self) -> &mut Ezo<I2cBus> {
        match self {
            Circuit::Ec(d) => d.ezo(),
            Circuit::Do(d) => d.ezo(),
            Circuit::Orp(d) => d.ezo(),
        }
    }
}

fn unknown_step(kind: &str, step: &str, steps: &str) -> CalibrateError {
    CalibrateError::Sensor(format!(
        "\"{step}\" is not a calibration step of {kind}: use one of {steps}"
    ))
}

fn needs_value(step: &str, value: Option<f64>, what: &str) -> Result<f64, CalibrateError> {
    value.ok_or_else(|| {
        CalibrateError::Sensor(format!(
            "step {step} needs --value: the {what} of the calibration solution"
        ))
    })
}

/// Runs `action` on the EZO-EC, EZO-DO or EZO-ORP sensor `id` and records it at `now`.
pub fn calibrate_circuit(
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
    if let SensorKind::Scd41(c) = &sensor.kind {
        return calibrate_scd41(hal, store, id, c, action, now);
    }
    let (bus, address, record_kind) = match &sensor.kind {
        SensorKind::EcEzo(c) => (c.bus, c.address, KIND_EC),
        SensorKind::DoEzo(c) => (c.bus, c.address, KIND_DO),
        SensorKind::OrpEzo(c) => (c.bus, c.address, KIND_ORP),
        other => {
            return Err(CalibrateError::Sensor(format!(
                "sensor \"{id}\" is a {}, not an EZO-EC, EZO-DO, EZO-ORP or SCD41 (for pH use `anemone calibrate ph`)",
                other.type_name()
            )))
        }
    };
    let i2c = hal
        .i2c(bus)
        .map_err(|e| CalibrateError::Device(e.to_string()))?;
    let mut dev = match record_kind {
        KIND_EC => Circuit::Ec(EzoEc::new(i2c, address)),
        KIND_DO => Circuit::Do(EzoDo::new(i2c, address)),
        _ => Circuit::Orp(EzoOrp::new(i2c, address)),
    };
    let mut delay = hal.delay();
    let fail = |what: &str, e: EzoError<BusError>| {
        CalibrateError::Device(format!(
            "{record_kind} at {address:#04x}: {what} failed: {e}"
        ))
    };
    match action {
        CircuitAction::Step(step, value) => {
            let s = step.to_ascii_lowercase();
            let sent = match &mut dev {
                Circuit::Ec(d) => {
                    let point = match s.as_str() {
                        "dry" => ezo_ec::CalPoint::Dry,
                        "single" => ezo_ec::CalPoint::Single(needs_value(&s, value, "µS/cm")?),
                        "low" => ezo_ec::CalPoint::Low(needs_value(&s, value, "µS/cm")?),
                        "high" => ezo_ec::CalPoint::High(needs_value(&s, value, "µS/cm")?),
                        _ => return Err(unknown_step("an EZO-EC", &s, "dry, single, low, high")),
                    };
                    d.calibrate(point, &mut delay).map_err(|e| fail("Cal", e))?;
                    value
                }
                Circuit::Do(d) => {
                    let point = match s.as_str() {
                        "air" => ezo_do::CalPoint::Atmospheric,
                        "zero" => ezo_do::CalPoint::Zero,
                        _ => return Err(unknown_step("an EZO-DO", &s, "air, zero")),
                    };
                    d.calibrate(point, &mut delay).map_err(|e| fail("Cal", e))?;
                    None
                }
                Circuit::Orp(d) => {
                    if s != "point" {
                        return Err(unknown_step("an EZO-ORP", &s, "point"));
                    }
                    let mv = value.unwrap_or(225.0);
                    d.calibrate(mv, &mut delay).map_err(|e| fail("Cal", e))?;
                    Some(mv)
                }
            };
            let points = dev
                .ezo()
                .calibration_points(&mut delay)
                .map_err(|e| fail("Cal,?", e))?;
            store.record_calibration(
                id,
                now,
                record_kind,
                &serde_json::json!({"action": "point", "step": s, "value": sent, "points_after": points}),
            )?;
            Ok(format!(
                "Calibrated {id}: step {s}; the circuit now holds {points} point(s)."
            ))
        }
        CircuitAction::Clear => {
            dev.ezo()
                .clear_calibration(&mut delay)
                .map_err(|e| fail("Cal,clear", e))?;
            store.record_calibration(
                id,
                now,
                record_kind,
                &serde_json::json!({"action": "clear"}),
            )?;
            Ok(format!("Cleared the calibration of {id}."))
        }
        CircuitAction::Status => {
            let points = dev
                .ezo()
                .calibration_points(&mut delay)
                .map_err(|e| fail("Cal,?", e))?;
            Ok(format!(
                "{id}: {points} calibration point(s)\n{}",
                history(store, id)?
            ))
        }
    }
}

/// SCD41 records.
pub const KIND_SCD41: &str = "scd41";

fn calibrate_scd41(
    hal: &Hal,
    store: &mut Store,
    id: &str,
    c: &Scd41Config,
    action: CircuitAction,
    now: Timestamp,
) -> Result<String, CalibrateError> {
    let step_value = match action {
        CircuitAction::Status => return Ok(format!("{id}:\n{}", history(store, id)?)),
        CircuitAction::Clear => {
            return Err(CalibrateError::Sensor(
                "an SCD41 has no calibration to clear: recalibrate it with --step frc".into(),
            ))
        }
        CircuitAction::Step(step, value) if step.eq_ignore_ascii_case("frc") => {
            value.unwrap_or(420.0)
        }
        CircuitAction::Step(step, _) => return Err(unknown_step("an SCD41", &step, "frc")),
    };
    if !(400.0..=2000.0).contains(&step_value) {
        return Err(CalibrateError::Sensor(format!(
            "--value {step_value} ppm is not a reference the SCD41 takes here: use 400–2000 (outdoor air is about 420)"
        )));
    }
    let i2c = hal
        .i2c(c.bus)
        .map_err(|e| CalibrateError::Device(e.to_string()))?;
    let mut dev = Scd41::new(i2c);
    let mut delay = hal.delay();
    let fail = |what: &str, e: anemone_drivers::scd41::Error<BusError>| {
        CalibrateError::Device(format!("SCD41 at 0x62: {what} failed: {e}"))
    };
    dev.stop_periodic(&mut delay)
        .map_err(|e| fail("stop_periodic_measurement", e))?;
    let target = step_value.round() as u16;
    let correction = dev
        .forced_recalibration(target, &mut delay)
        .map_err(|e| fail("perform_forced_recalibration", e))?;
    if c.mode == Scd41Mode::Periodic {
        dev.start_periodic()
            .map_err(|e| fail("start_periodic_measurement", e))?;
    }
    store.record_calibration(
        id,
        now,
        KIND_SCD41,
        &serde_json::json!({"action": "frc", "target_ppm": target, "correction_ppm": correction}),
    )?;
    Ok(format!(
        "Recalibrated {id} to {target} ppm; the sensor corrected itself by {correction:+} ppm."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::StoreOptions;

    /// A simulated station of `sensors` at 2026-06-01 with a store in a temporary folder.
    fn setup(sensors: &str) -> (tempfile::TempDir, Config, Hal, Store, Timestamp) {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("[hal]\nsimulate = true\n{sensors}");
        let config = Config::from_toml(&text, "test").unwrap();
        let t = 1_780_272_000_000;
        let hal = crate::sensors::open_hal(&config, &Clock::virtual_at(t), t);
        let opts = StoreOptions {
            synchronous: crate::config::Synchronous::Normal,
            tz: chrono_tz::UTC,
            vfs: None,
        };
        let store = Store::open(&dir.path().join("a.db"), &opts).unwrap();
        (dir, config, hal, store, t)
    }

    #[test]
    fn steps_are_sent_and_recorded() {
        let (_dir, config, hal, mut store, t) = setup(
            "[[sensor]]\ntype = \"ec_ezo\"\nid = \"ec\"\n[[sensor]]\ntype = \"do_ezo\"\nid = \"do\"\n[[sensor]]\ntype = \"orp_ezo\"\nid = \"orp\"\n",
        );
        let mut run =
            |id: &str, a: CircuitAction| calibrate_circuit(&config, &hal, &mut store, id, a, t);
        run("ec", CircuitAction::Clear).unwrap();
        let r = run("ec", CircuitAction::Step("dry".into(), None)).unwrap();
        assert!(r.contains("1 point"), "{r}");
        let r = run("ec", CircuitAction::Step("low".into(), None)).unwrap_err();
        assert!(r.to_string().contains("needs --value"), "{r}");
        run("ec", CircuitAction::Step("low".into(), Some(12_880.0))).unwrap();
        assert!(run("do", CircuitAction::Step("air".into(), None)).is_ok());
        let r = run("do", CircuitAction::Step("dry".into(), None)).unwrap_err();
        assert!(r.to_string().contains("air, zero"), "{r}");
        run("orp", CircuitAction::Step("point".into(), Some(225.0))).unwrap();
        let status = run("ec", CircuitAction::Status).unwrap();
        assert!(status.contains("2 calibration point(s)"), "{status}");
        assert_eq!(status.matches("ec_ezo").count(), 3, "{status}");
    }

    #[test]
    fn scd41_forced_recalibration_is_recorded() {
        let (_dir, config, hal, mut store, t) =
            setup("[[sensor]]\ntype = \"scd41\"\nid = \"co2\"\n");
        let r = calibrate_circuit(
            &config,
            &hal,
            &mut store,
            "co2",
            CircuitAction::Step("frc".into(), Some(500.0)),
            t,
        )
        .unwrap();
        assert!(r.contains("to 500 ppm"), "{r}");
        let bad = calibrate_circuit(
            &config,
            &hal,
            &mut store,
            "co2",
            CircuitAction::Step("frc".into(), Some(5.0)),
            t,
        );
        assert!(bad.is_err());
        let s =
            calibrate_circuit(&config, &hal, &mut store, "co2", CircuitAction::Status, t).unwrap();
        assert!(s.contains("correction_ppm"), "{s}");
    }
}
