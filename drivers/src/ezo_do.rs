//! Atlas Scientific EZO-DO dissolved-oxygen circuit over I2C (default address `0x61`, 97).
//!
//! Speaks the shared EZO protocol ([`crate::ezo`]). Processing delays: 600 ms for `R` and
//! `RT`, 1300 ms for `Cal` and `Cal,0`, 300 ms for the others.
//!
//! A reading is mg/L, followed by % saturation once `O,%,1` has switched that output on
//! ([`EzoDo::enable_outputs`]). Oxygen solubility falls with salinity and rises with
//! pressure: the circuit compensates for the salinity (`S,<µS/cm>`, the conductivity an
//! EZO-EC measures) and the air pressure (`P,<kPa>`) last set, and for the temperature
//! sent with `RT`.
//!
//! # Calibration
//!
//! `Cal` with the probe in air (atmospheric oxygen), optionally `Cal,0` in a zero-oxygen
//! solution.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use crate::ezo::{finite, number, Ezo, Register};
pub use crate::ezo::{EzoError, Status};

/// Default I2C address (97).
pub const DEFAULT_ADDRESS: u8 = 0x61;
/// Processing time of `R` and `RT`, ms.
pub const READ_WAIT_MS: u32 = 600;
/// Processing time of `Cal` and `Cal,0`, ms.
pub const CAL_WAIT_MS: u32 = 1300;

/// A dissolved-oxygen reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Oxygen {
    /// Dissolved oxygen, mg/L.
    pub mg_per_l: f64,
    /// Saturation, % (when the output is on).
    pub saturation_pct: Option<f64>,
}

/// A calibration point of the EZO-DO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalPoint {
    /// `Cal`: the probe in air.
    Atmospheric,
    /// `Cal,0`: the probe in a zero-oxygen solution.
    Zero,
}

/// Parse `"7.82"` or `"7.82,84.3"` (mg/L, then % saturation).
pub fn parse_oxygen(payload: &str) -> Option<Oxygen> {
    let mut it = payload.split(',');
    let mg_per_l = number(it.next()?).filter(|v| *v >= 0.0)?;
    let saturation_pct = match it.next() {
        Some(s) => Some(number(s).filter(|v| *v >= 0.0)?),
        None => None,
    };
    if it.next().is_some() {
        return None;
    }
    Some(Oxygen {
        mg_per_l,
        saturation_pct,
    })
}

/// EZO-DO circuit on an I2C bus.
#[derive(Debug)]
pub struct EzoDo<I2C> {
    ezo: Ezo<I2C>,
}

impl<I2C: I2c> EzoDo<I2C> {
    /// Take ownership of the bus.
    pub fn new(i2c: I2C, address: u8) -> Self {
        Self {
            ezo: Ezo::new(i2c, address),
        }
    }

    /// The shared EZO commands (status, calibration count, clear).
    pub fn ezo(&mut self) -> &mut Ezo<I2C> {
        &mut self.ezo
    }

    /// Output mg/L and % saturation (`O,mg,1`, `O,%,1`).
    pub fn enable_outputs<D: DelayNs>(&mut self, d: &mut D) -> Result<(), EzoError<I2C::Error>> {
        self.ezo
            .command(format_args!("O,mg,1"), Register::SHORT_WAIT_MS, d)?;
        self.ezo
            .command(format_args!("O,%,1"), Register::SHORT_WAIT_MS, d)
    }

    /// Salinity compensation as conductivity (`S,<µS/cm>`; 0 for fresh water).
    pub fn set_salinity_conductivity<D: DelayNs>(
        &mut self,
        us_per_cm: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        finite(us_per_cm)?;
        self.ezo.command(
            format_args!("S,{:.0}", us_per_cm.max(0.0)),
            Register::SHORT_WAIT_MS,
            d,
        )
    }

    /// Pressure compensation (`P,<kPa>`), from the air pressure in hPa.
    pub fn set_pressure_hpa<D: DelayNs>(
        &mut self,
        hpa: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        finite(hpa)?;
        let kpa = hpa / 10.0;
        self.ezo
            .command(format_args!("P,{kpa:.2}"), Register::SHORT_WAIT_MS, d)
    }

    /// Take a reading (`R`).
    pub fn read<D: DelayNs>(&mut self, d: &mut D) -> Result<Oxygen, EzoError<I2C::Error>> {
        self.ezo
            .query(format_args!("R"), READ_WAIT_MS, d, parse_oxygen)
    }

    /// Compensate for `temp_c` and take a reading (`RT,<°C>`).
    pub fn read_compensated<D: DelayNs>(
        &mut self,
        temp_c: f64,
        d: &mut D,
    ) -> Result<Oxygen, EzoError<I2C::Error>> {
        finite(temp_c)?;
        self.ezo.query(
            format_args!("RT,{temp_c:.2}"),
            READ_WAIT_MS,
            d,
            parse_oxygen,
        )
    }

    /// One calibration point.
    pub fn calibrate<D: DelayNs>(
        &mut self,
        point: CalPoint,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        match point {
            CalPoint::Atmospheric => self.ezo.command(format_args!("Cal"), CAL_WAIT_MS, d),
            CalPoint::Zero => self.ezo.command(format_args!("Cal,0"), CAL_WAIT_MS, d),
        }
    }

    /// Restart reason and supply voltage.
    pub fn status<D: DelayNs>(&mut self, d: &mut D) -> Result<Status, EzoError<I2C::Error>> {
        self.ezo.status(d)
    }

    /// Release the bus.
    pub fn destroy(self) -> I2C {
        self.ezo.destroy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oxygen_payloads() {
        assert_eq!(
            parse_oxygen("7.82"),
            Some(Oxygen {
                mg_per_l: 7.82,
                saturation_pct: None
            })
        );
        assert_eq!(
            parse_oxygen("7.82,84.3"),
            Some(Oxygen {
                mg_per_l: 7.82,
                saturation_pct: Some(84.3)
            })
        );
        assert_eq!(parse_oxygen("7.82,84.3,1"), None);
        assert_eq!(parse_oxygen("x"), None);
    }
}
