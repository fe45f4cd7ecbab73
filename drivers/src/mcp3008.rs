//! Microchip MCP3008 8-channel 10-bit ADC over SPI.
//!
//! # Hardware guide
//!
//! Enable SPI with `dtparam=spi=on` in `/boot/firmware/config.txt`; the chip then appears as
//! `/dev/spidev0.0` (CE0, GPIO 8) or `/dev/spidev0.1` (CE1, GPIO 7). Wire CLK to GPIO 11,
//! DOUT to MISO (GPIO 9), DIN to MOSI (GPIO 10), CS/SHDN to CE0, VDD and VREF to 3.3 V, AGND
//! and DGND to GND. Use SPI mode 0 and at most 1.35 MHz at 3.3 V (the datasheet's limit at
//! 2.7 V). "Permission denied" on `/dev/spidev0.0` means the user is not in the `spi` group.
//!
//! SPI has no acknowledge: a missing chip reads as 0 (MISO pulled low) or 1023 (floating high)
//! on every channel, so the daemon's QC, not this driver, has to notice a dead ADC.
//!
//! # Protocol
//!
//! One transaction of three bytes: `[0x01, 0x80 | channel << 4, 0x00]` (start bit, then
//! single-ended + channel), and the result is `((b1 & 0x03) << 8) | b2`.

use core::fmt;
use embedded_hal::spi::SpiDevice;

/// Command bits of the MCP3008.
pub struct Register;

impl Register {
    /// First byte: the start bit.
    pub const START: u8 = 0x01;
    /// Single-ended mode bit in the second byte.
    pub const SINGLE_ENDED: u8 = 0x80;
    /// Number of channels.
    pub const CHANNELS: u8 = 8;
    /// Full-scale count + 1 (10 bits).
    pub const FULL_SCALE: u16 = 1024;
}

/// MCP3008 errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI bus reported an error.
    Bus(E),
    /// Channel outside 0..=7; nothing was sent.
    InvalidChannel(u8),
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "MCP3008 SPI bus error: {e:?}"),
            Error::InvalidChannel(c) => write!(f, "MCP3008 has channels 0..=7, not {c}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// MCP3008 on an SPI device (bus + chip select).
#[derive(Debug)]
pub struct Mcp3008<SPI> {
    spi: SPI,
}

impl<SPI: SpiDevice> Mcp3008<SPI> {
    /// Take ownership of the SPI device.
    pub fn new(spi: SPI) -> Self {
        Self { spi }
    }

    /// Read one single-ended channel (0..=7): counts 0..=1023.
    pub fn read(&mut self, channel: u8) -> Result<u16, Error<SPI::Error>> {
        if channel >= Register::CHANNELS {
            return Err(Error::InvalidChannel(channel));
        }
        let mut buf = [
            Register::START,
            Register::SINGLE_ENDED | (channel << 4),
            0x00,
        ];
        self.spi.transfer_in_place(&mut buf).map_err(Error::Bus)?;
        Ok((u16::from(buf[1] & 0x03) << 8) | u16::from(buf[2]))
    }

    /// Read one channel and convert to volts with [`mcp3008_volts`].
    pub fn read_volts(&mut self, channel: u8, vref: f64) -> Result<f64, Error<SPI::Error>> {
        Ok(mcp3008_volts(self.read(channel)?, vref))
    }

    /// Release the SPI device.
    pub fn destroy(self) -> SPI {
        self.spi
    }
}

/// Volts for a count: `counts * vref / 1024` (datasheet equation 4-1, code = 1024·Vin/Vref).
pub fn mcp3008_volts(counts: u16, vref: f64) -> f64 {
    f64::from(counts) * vref / f64::from(Register::FULL_SCALE)
}

/// The count the MCP3008 gives for `volts` (rounded, clamped to 0..=1023; 0 for NaN or a
/// non-positive reference) — the inverse of [`mcp3008_volts`], for the simulator.
pub fn mcp3008_counts(volts: f64, vref: f64) -> u16 {
    if vref.is_nan() || vref <= 0.0 || volts.is_nan() {
        return 0;
    }
    let x = volts / vref * f64::from(Register::FULL_SCALE) + 0.5;
    if x <= 0.0 {
        0
    } else if x >= 1023.0 {
        1023
    } else {
        x as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion() {
        assert_eq!(mcp3008_volts(0, 3.3), 0.0);
        assert_eq!(mcp3008_volts(512, 3.3), 1.65);
        assert!((mcp3008_volts(1023, 3.3) - 3.296_777).abs() < 1e-6);
        // Datasheet example: Vref 5 V, Vin 3.25 V → code 665.6 → 665/666.
        assert_eq!(mcp3008_counts(3.25, 5.0), 666);
    }

    #[test]
    fn inverse_round_trips_and_clamps() {
        for c in 0..1024u16 {
            assert_eq!(mcp3008_counts(mcp3008_volts(c, 3.3), 3.3), c);
        }
        assert_eq!(mcp3008_counts(-1.0, 3.3), 0);
        assert_eq!(mcp3008_counts(9.0, 3.3), 1023);
        assert_eq!(mcp3008_counts(f64::NAN, 3.3), 0);
        assert_eq!(mcp3008_counts(1.0, 0.0), 0);
    }
}
