//! Atlas Scientific EZO-pH circuit over I2C.
//!
//! # Hardware guide
//!
//! The EZO circuit ships in UART mode. Switch it to I2C once: with the circuit powered, short
//! PGND to TX and power-cycle (the LED turns blue), or send `I2C,99` over UART. Its default
//! address is `0x63` (99). Wire SDA/SCL to GPIO 2/3 and VCC to 3.3 V; use Atlas's electrically
//! isolated carrier board when the probe sits in the same water as other probes, or readings
//! interfere. Enable I2C with `dtparam=i2c_arm=on`.
//!
//! # Protocol
//!
//! The shared EZO layer ([`crate::ezo`]); the EZO-pH's processing delays are 900 ms for `R`,
//! `RT` and `Cal,mid/low/high`, 300 ms for the others.
//!
//! # Calibration
//!
//! Always calibrate the mid point (pH 7.00) first: `Cal,mid` clears the low and high points.
//! Then `Cal,low,4.00` and optionally `Cal,high,10.00`.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use crate::ezo::{finite, number, strip_prefix_ci, Ezo};
pub use crate::ezo::{
    parse_cal_points, parse_reply, parse_status, EzoError, ReplyCode, Status, PENDING_RETRIES,
};

/// Processing delays of the EZO-pH, ms.
pub struct Register;

impl Register {
    /// `R`, `RT` and `Cal,mid/low/high`.
    pub const LONG_WAIT_MS: u32 = 900;
    /// Every other command.
    pub const SHORT_WAIT_MS: u32 = crate::ezo::Register::SHORT_WAIT_MS;
}

/// Default I2C address (99).
pub const DEFAULT_ADDRESS: u8 = 0x63;

/// Calibration point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalPoint {
    /// Mid point (pH 7.00); clears the other points, so calibrate it first.
    Mid,
    /// Low point (pH 4.00).
    Low,
    /// High point (pH 10.00).
    High,
}

/// Probe slope relative to an ideal probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slope {
    /// Acid-side slope, % of ideal.
    pub acid_pct: f64,
    /// Base-side slope, % of ideal.
    pub base_pct: f64,
    /// Zero-point offset, mV (firmware 2.12 and later).
    pub zero_offset_mv: Option<f64>,
}

/// Parse `"?Slope,99.7,100.3,-0.89"` (the offset is optional).
pub fn parse_slope(payload: &str) -> Option<Slope> {
    let rest = strip_prefix_ci(payload, "?Slope,")?;
    let mut it = rest.split(',');
    let acid_pct = number(it.next()?)?;
    let base_pct = number(it.next()?)?;
    let zero_offset_mv = match it.next() {
        Some(s) => Some(number(s)?),
        None => None,
    };
    if it.next().is_some() {
        return None;
    }
    Some(Slope {
        acid_pct,
        base_pct,
        zero_offset_mv,
    })
}

/// Parse a pH reading such as `"9.560"`.
pub fn parse_reading(payload: &str) -> Option<f64> {
    number(payload)
}

/// EZO-pH circuit on an I2C bus.
#[derive(Debug)]
pub struct EzoPh<I2C> {
    ezo: Ezo<I2C>,
}

impl<I2C: I2c> EzoPh<I2C> {
    /// Take ownership of the bus.
    pub fn new(i2c: I2C, address: u8) -> Self {
        Self {
            ezo: Ezo::new(i2c, address),
        }
    }

    /// Take a reading (`R`), pH.
    pub fn read<D: DelayNs>(&mut self, d: &mut D) -> Result<f64, EzoError<I2C::Error>> {
        self.ezo
            .query(format_args!("R"), Register::LONG_WAIT_MS, d, parse_reading)
    }

    /// Set the temperature compensation and take a reading (`RT,<°C>` with 2 decimals), pH.
    pub fn read_compensated<D: DelayNs>(
        &mut self,
        temp_c: f64,
        d: &mut D,
    ) -> Result<f64, EzoError<I2C::Error>> {
        finite(temp_c)?;
        self.ezo.query(
            format_args!("RT,{temp_c:.2}"),
            Register::LONG_WAIT_MS,
            d,
            parse_reading,
        )
    }

    /// Set the temperature used for compensation (`T,<°C>`).
    pub fn set_temperature<D: DelayNs>(
        &mut self,
        temp_c: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        self.ezo.set_temperature(temp_c, d)
    }

    /// Calibrate one point (`Cal,mid,7.00`, `Cal,low,4.00`, `Cal,high,10.00`). Calibrate the
    /// mid point first: it clears the others.
    pub fn calibrate<D: DelayNs>(
        &mut self,
        point: CalPoint,
        ph: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        finite(ph)?;
        let name = match point {
            CalPoint::Mid => "mid",
            CalPoint::Low => "low",
            CalPoint::High => "high",
        };
        self.ezo.command(
            format_args!("Cal,{name},{ph:.2}"),
            Register::LONG_WAIT_MS,
            d,
        )
    }

    /// Number of calibration points stored (`Cal,?` → `?CAL,2`).
    pub fn calibration_points<D: DelayNs>(
        &mut self,
        d: &mut D,
    ) -> Result<u8, EzoError<I2C::Error>> {
        self.ezo.calibration_points(d)
    }

    /// Delete the calibration (`Cal,clear`).
    pub fn clear_calibration<D: DelayNs>(&mut self, d: &mut D) -> Result<(), EzoError<I2C::Error>> {
        self.ezo.clear_calibration(d)
    }

    /// Probe slope (`Slope,?` → `?Slope,99.7,100.3,-0.89`).
    pub fn slope<D: DelayNs>(&mut self, d: &mut D) -> Result<Slope, EzoError<I2C::Error>> {
        self.ezo.query(
            format_args!("Slope,?"),
            Register::SHORT_WAIT_MS,
            d,
            parse_slope,
        )
    }

    /// Restart reason and supply voltage (`Status` → `?STATUS,P,5.038`).
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
    fn payloads() {
        assert_eq!(parse_reading("9.560"), Some(9.56));
        assert_eq!(parse_reading("nan"), None);
        assert_eq!(parse_reading(""), None);
        assert_eq!(parse_cal_points("?CAL,2"), Some(2));
        assert_eq!(parse_cal_points("?Cal,0"), Some(0));
        assert_eq!(parse_cal_points("?CAL,9"), None);
        assert_eq!(
            parse_slope("?Slope,99.7,100.3,-0.89"),
            Some(Slope {
                acid_pct: 99.7,
                base_pct: 100.3,
                zero_offset_mv: Some(-0.89)
            })
        );
        assert_eq!(
            parse_slope("?SLOPE,99.7,100.3"),
            Some(Slope {
                acid_pct: 99.7,
                base_pct: 100.3,
                zero_offset_mv: None
            })
        );
        assert_eq!(parse_slope("?Slope,99.7"), None);
    }
}
