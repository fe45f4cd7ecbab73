//! Atlas Scientific EZO-EC conductivity circuit over I2C (default address `0x64`, 100).
//!
//! Speaks the shared EZO protocol ([`crate::ezo`]). Processing delays: 600 ms for `R`, `RT`
//! and every `Cal,…` but `Cal,?`/`Cal,clear`; 300 ms for the others.
//!
//! Conductivity is given in µS/cm. The circuit can also send TDS, salinity and specific
//! gravity after it (`O,TDS,1` …); [`EzoEc::enable_conductivity_only`] switches those off so a
//! reading is one number. Anemone computes salinity itself (PSS-78) from conductivity and
//! temperature.
//!
//! # Calibration
//!
//! Set the probe's K constant first (`K,1.0`, printed on the probe), then: dry calibration
//! (`Cal,dry`, probe dry, in air), then either one point (`Cal,<µS/cm>`, for example 53 000
//! for a sea-water standard) or two (`Cal,low,12880` then `Cal,high,80000`).

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use crate::ezo::{finite, number, Ezo, Register};
pub use crate::ezo::{EzoError, Status};

/// Default I2C address (100).
pub const DEFAULT_ADDRESS: u8 = 0x64;
/// Processing time of `R`, `RT` and calibration points, ms.
pub const LONG_WAIT_MS: u32 = 600;

/// A calibration step of the EZO-EC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalPoint {
    /// `Cal,dry`: the probe dry, in air. Always first.
    Dry,
    /// `Cal,<µS/cm>`: one-point calibration.
    Single(f64),
    /// `Cal,low,<µS/cm>`: the low point of a two-point calibration.
    Low(f64),
    /// `Cal,high,<µS/cm>`: the high point of a two-point calibration.
    High(f64),
}

/// Parse a conductivity reading: the first comma-separated field (`"53000"`, or
/// `"53000,26500,35.02,1.025"` when the other outputs are on), µS/cm, not negative.
pub fn parse_conductivity(payload: &str) -> Option<f64> {
    let first = payload.split(',').next()?;
    number(first).filter(|v| *v >= 0.0)
}

/// EZO-EC circuit on an I2C bus.
#[derive(Debug)]
pub struct EzoEc<I2C> {
    ezo: Ezo<I2C>,
}

impl<I2C: I2c> EzoEc<I2C> {
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

    /// Output conductivity only (`O,EC,1`, `O,TDS,0`, `O,S,0`, `O,SG,0`).
    pub fn enable_conductivity_only<D: DelayNs>(
        &mut self,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        for (param, on) in [("EC", 1), ("TDS", 0), ("S", 0), ("SG", 0)] {
            self.ezo
                .command(format_args!("O,{param},{on}"), Register::SHORT_WAIT_MS, d)?;
        }
        Ok(())
    }

    /// Set the probe's cell constant (`K,<k>`, 0.1–10).
    pub fn set_probe_constant<D: DelayNs>(
        &mut self,
        k: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        finite(k)?;
        self.ezo
            .command(format_args!("K,{k:.2}"), Register::SHORT_WAIT_MS, d)
    }

    /// Take a reading (`R`), µS/cm (compensated for the temperature last set, 25 °C by
    /// default).
    pub fn read<D: DelayNs>(&mut self, d: &mut D) -> Result<f64, EzoError<I2C::Error>> {
        self.ezo
            .query(format_args!("R"), LONG_WAIT_MS, d, parse_conductivity)
    }

    /// Compensate for `temp_c` and take a reading (`RT,<°C>`), µS/cm.
    pub fn read_compensated<D: DelayNs>(
        &mut self,
        temp_c: f64,
        d: &mut D,
    ) -> Result<f64, EzoError<I2C::Error>> {
        finite(temp_c)?;
        self.ezo.query(
            format_args!("RT,{temp_c:.2}"),
            LONG_WAIT_MS,
            d,
            parse_conductivity,
        )
    }

    /// One calibration step.
    pub fn calibrate<D: DelayNs>(
        &mut self,
        point: CalPoint,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        match point {
            CalPoint::Dry => self.ezo.command(format_args!("Cal,dry"), LONG_WAIT_MS, d),
            CalPoint::Single(v) => {
                finite(v)?;
                self.ezo
                    .command(format_args!("Cal,{v:.0}"), LONG_WAIT_MS, d)
            }
            CalPoint::Low(v) => {
                finite(v)?;
                self.ezo
                    .command(format_args!("Cal,low,{v:.0}"), LONG_WAIT_MS, d)
            }
            CalPoint::High(v) => {
                finite(v)?;
                self.ezo
                    .command(format_args!("Cal,high,{v:.0}"), LONG_WAIT_MS, d)
            }
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
    fn conductivity_payloads() {
        assert_eq!(parse_conductivity("53000"), Some(53000.0));
        assert_eq!(parse_conductivity("1413.2,706,0.69,1.000"), Some(1413.2));
        assert_eq!(parse_conductivity("-1"), None);
        assert_eq!(parse_conductivity(""), None);
    }
}
