//! Atlas Scientific EZO-ORP oxidation-reduction potential circuit over I2C (default address
//! `0x62`, 98).
//!
//! Speaks the shared EZO protocol ([`crate::ezo`]). Processing delays: 900 ms for `R` and
//! `Cal,<mV>`, 300 ms for the others. A reading is mV (`"209.6"`).
//!
//! The default address `0x62` is also the Sensirion SCD41's fixed address: on one bus with
//! an SCD41, move the circuit (`I2C,<address>`, for example `I2C,103` for `0x67`).
//!
//! # Calibration
//!
//! One point: `Cal,<mV>` in a calibration solution (225 mV is the common one).

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use crate::ezo::{finite, number, Ezo};
pub use crate::ezo::{EzoError, Status};

/// Default I2C address (98).
pub const DEFAULT_ADDRESS: u8 = 0x62;
/// Processing time of `R` and `Cal,<mV>`, ms.
pub const LONG_WAIT_MS: u32 = 900;

/// Parse an ORP reading, mV.
pub fn parse_orp(payload: &str) -> Option<f64> {
    number(payload)
}

/// EZO-ORP circuit on an I2C bus.
#[derive(Debug)]
pub struct EzoOrp<I2C> {
    ezo: Ezo<I2C>,
}

impl<I2C: I2c> EzoOrp<I2C> {
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

    /// Take a reading (`R`), mV.
    pub fn read<D: DelayNs>(&mut self, d: &mut D) -> Result<f64, EzoError<I2C::Error>> {
        self.ezo
            .query(format_args!("R"), LONG_WAIT_MS, d, parse_orp)
    }

    /// Calibrate to a solution of `mv` (`Cal,<mV>`).
    pub fn calibrate<D: DelayNs>(
        &mut self,
        mv: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        finite(mv)?;
        self.ezo
            .command(format_args!("Cal,{mv:.1}"), LONG_WAIT_MS, d)
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
