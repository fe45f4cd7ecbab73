//! Figaro TGS2600 air-contamination gas sensor, read as a voltage through an ADC (on the
//! Raspberry Pi Oracle Weather Station HAT: the AIR board's MCP3427 at `0x6A`, channel 0).
//!
//! # What it measures
//!
//! A tin-dioxide element whose resistance Rs falls when reducing gases (hydrogen, carbon
//! monoxide, alcohol, cooking and cigarette smoke) are in the air. Figaro's "basic measuring
//! circuit" puts Rs in series with a load resistor RL across the circuit voltage Vc and reads
//! the voltage VRL across RL, so Rs = (Vc / VRL − 1) · RL. The datasheet characterises the
//! sensor by the ratio Rs/R0, where R0 is Rs in clean air: a ratio below 1 means more
//! contamination. Neither Rs nor the ratio is a concentration of any one gas, so this module
//! computes only those two (no "ppm" and no percentage): [`resistance_ohms`] and [`ratio`].
//! R0 differs from sensor to sensor (10–90 kΩ in the datasheet's specification) and drifts;
//! it comes from a calibration in clean air ([`CleanAirBaseline`]). Rs/R0 does not depend on
//! RL ([`ratio_from_volts`]), so a wrong RL scales the resistance but not the ratio.
//!
//! The heater needs 5 V and a warm-up (the datasheet's conditioning is days for full
//! stability); readings in the first minutes after power-on are high.

use core::fmt;

/// Why a voltage gives no resistance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Error {
    /// VRL is 0 or below: the sensor is disconnected, its heater is off, or Rs is beyond
    /// measure.
    NoSignal(f64),
    /// VRL is at or above the circuit voltage: RL or the ADC input is shorted to Vc.
    AboveSupply {
        /// Measured VRL.
        volts: f64,
        /// Configured Vc.
        supply: f64,
    },
    /// The circuit voltage, the load resistor or the baseline is not a positive number.
    BadParameter,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSignal(v) => write!(
                f,
                "TGS2600 load voltage {v:.4} V: no signal (sensor unplugged or heater off)"
            ),
            Error::AboveSupply { volts, supply } => write!(
                f,
                "TGS2600 load voltage {volts:.4} V is not below the circuit voltage {supply} V; \
                 check circuit_volts and the wiring"
            ),
            Error::BadParameter => f.write_str(
                "TGS2600 circuit voltage, load resistor and clean-air resistance must be above 0",
            ),
        }
    }
}

impl core::error::Error for Error {}

/// True for a number above 0 (false for NaN).
fn positive(x: f64) -> bool {
    x > 0.0
}

/// The measuring circuit: circuit voltage Vc and load resistor RL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circuit {
    /// Vc, volts.
    pub supply_volts: f64,
    /// RL, ohms.
    pub load_ohms: f64,
}

/// Rs = (Vc / VRL − 1) · RL, ohms (Figaro's basic measuring circuit).
pub fn resistance_ohms(vrl: f64, circuit: Circuit) -> Result<f64, Error> {
    if !positive(circuit.supply_volts) || !positive(circuit.load_ohms) {
        return Err(Error::BadParameter);
    }
    if vrl.is_nan() || vrl <= 0.0 {
        return Err(Error::NoSignal(vrl));
    }
    if vrl >= circuit.supply_volts {
        return Err(Error::AboveSupply {
            volts: vrl,
            supply: circuit.supply_volts,
        });
    }
    Ok((circuit.supply_volts / vrl - 1.0) * circuit.load_ohms)
}

/// VRL for a sensor resistance `rs` — for the simulator.
pub fn volts_for_resistance(rs: f64, circuit: Circuit) -> f64 {
    circuit.supply_volts * circuit.load_ohms / (circuit.load_ohms + rs)
}

/// A clean-air resistance R0 from calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanAirBaseline {
    /// R0, ohms.
    pub r0_ohms: f64,
}

impl CleanAirBaseline {
    /// The baseline from resistances measured in clean air: their mean.
    pub fn from_samples(rs: &[f64]) -> Result<CleanAirBaseline, Error> {
        let n = rs.len() as f64;
        let mean = rs.iter().sum::<f64>() / n;
        if rs.is_empty() || !positive(mean) || !mean.is_finite() {
            return Err(Error::BadParameter);
        }
        Ok(CleanAirBaseline { r0_ohms: mean })
    }
}

/// Rs/R0: 1 in the calibration's clean air, below 1 with reducing gases.
pub fn ratio(rs: f64, baseline: CleanAirBaseline) -> Result<f64, Error> {
    if !positive(baseline.r0_ohms) || rs.is_nan() || rs < 0.0 {
        return Err(Error::BadParameter);
    }
    Ok(rs / baseline.r0_ohms)
}

/// Rs/R0 straight from VRL now and VRL in clean air (RL cancels out).
pub fn ratio_from_volts(vrl: f64, clean_air_vrl: f64, supply_volts: f64) -> Result<f64, Error> {
    let c = Circuit {
        supply_volts,
        load_ohms: 1.0,
    };
    let r0 = resistance_ohms(clean_air_vrl, c)?;
    ratio(resistance_ohms(vrl, c)?, CleanAirBaseline { r0_ohms: r0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAT: Circuit = Circuit {
        supply_volts: 5.0,
        load_ohms: 10_000.0,
    };

    /// Figaro TGS2600 product information, "Basic measuring circuit": Rs = (Vc/VRL − 1)·RL.
    /// At Vc = 5 V and RL = 10 kΩ, VRL = 1 V is Rs = 40 kΩ (inside the datasheet's clean-air
    /// 10–90 kΩ), and the datasheet's Rs/R0 of 0.3–0.6 in 10 ppm hydrogen is VRL 1.82–2.94 V.
    #[test]
    fn datasheet_measuring_circuit() {
        assert_eq!(resistance_ohms(1.0, HAT), Ok(40_000.0));
        let b = CleanAirBaseline { r0_ohms: 40_000.0 };
        let r = ratio(resistance_ohms(2.5, HAT).unwrap(), b).unwrap();
        assert_eq!(r, 0.25);
        let v = volts_for_resistance(0.45 * 40_000.0, HAT);
        assert!((ratio(resistance_ohms(v, HAT).unwrap(), b).unwrap() - 0.45).abs() < 1e-12);
    }

    #[test]
    fn ratio_does_not_depend_on_the_load_resistor() {
        for rl in [1_000.0, 10_000.0, 47_000.0] {
            let c = Circuit {
                supply_volts: 5.0,
                load_ohms: rl,
            };
            let r0 = resistance_ohms(1.0, c).unwrap();
            let rs = resistance_ohms(1.7, c).unwrap();
            let r = ratio(rs, CleanAirBaseline { r0_ohms: r0 }).unwrap();
            assert!((r - ratio_from_volts(1.7, 1.0, 5.0).unwrap()).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(resistance_ohms(0.0, HAT), Err(Error::NoSignal(0.0)));
        assert!(matches!(
            resistance_ohms(f64::NAN, HAT),
            Err(Error::NoSignal(_))
        ));
        assert_eq!(
            resistance_ohms(5.0, HAT),
            Err(Error::AboveSupply {
                volts: 5.0,
                supply: 5.0
            })
        );
        let bad = Circuit {
            supply_volts: 0.0,
            load_ohms: 1.0,
        };
        assert_eq!(resistance_ohms(1.0, bad), Err(Error::BadParameter));
        assert_eq!(
            CleanAirBaseline::from_samples(&[]),
            Err(Error::BadParameter)
        );
        assert_eq!(
            CleanAirBaseline::from_samples(&[30_000.0, 50_000.0]),
            Ok(CleanAirBaseline { r0_ohms: 40_000.0 })
        );
        assert_eq!(
            ratio(1.0, CleanAirBaseline { r0_ohms: 0.0 }),
            Err(Error::BadParameter)
        );
    }
}
