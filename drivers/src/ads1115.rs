//! Texas Instruments ADS1115 16-bit 4-channel ADC over I2C, single-shot.
//!
//! # Hardware guide
//!
//! Enable I2C (`dtparam=i2c_arm=on`), wire SDA/SCL to GPIO 2/3, VDD to 3.3 V. The ADDR pin
//! selects the address: GND `0x48` (default), VDD `0x49`, SDA `0x4A`, SCL `0x4B`. Inputs must
//! stay between GND − 0.3 V and VDD + 0.3 V whatever the programmable gain: the full-scale
//! range ([`Fsr`]) only sets the resolution, it does not let a 3.3 V-powered chip read 6 V.
//!
//! # Protocol
//!
//! Write the config register (0x01) with OS = 1 (start), MUX = `0b100 + channel` (AINx vs
//! GND), the gain, MODE = single-shot, DR = 128 SPS and the comparator disabled; wait one
//! conversion (7.8 ms), poll OS until it reads 1 (idle), then read the conversion register
//! (0x00), a big-endian two's-complement count.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Registers and config bits of the ADS1115.
pub struct Register;

impl Register {
    /// Conversion result register.
    pub const CONVERSION: u8 = 0x00;
    /// Configuration register.
    pub const CONFIG: u8 = 0x01;
    /// OS bit: write 1 to start a conversion; reads 1 when idle.
    pub const OS: u16 = 1 << 15;
    /// MUX for single-ended AIN0 vs GND (add the channel).
    pub const MUX_SINGLE_0: u16 = 0b100;
    /// MUX field shift.
    pub const MUX_SHIFT: u16 = 12;
    /// PGA field shift.
    pub const PGA_SHIFT: u16 = 9;
    /// MODE bit: single-shot.
    pub const MODE_SINGLE: u16 = 1 << 8;
    /// DR = 128 samples per second (0b100 in bits 7:5).
    pub const DR_128SPS: u16 = 0b100 << 5;
    /// COMP_QUE = 0b11: comparator disabled.
    pub const COMP_DISABLE: u16 = 0b11;
}

/// Address with ADDR to GND.
pub const DEFAULT_ADDRESS: u8 = 0x48;

/// Conversion time at 128 SPS, rounded up, µs.
const CONVERSION_US: u32 = 8_000;
/// Polls of the OS bit before [`Error::NotReady`].
const MAX_POLLS: u32 = 10;
/// Delay between polls, µs.
const POLL_INTERVAL_US: u32 = 1_000;

/// Programmable full-scale range (PGA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsr {
    /// ±6.144 V.
    V6_144,
    /// ±4.096 V.
    V4_096,
    /// ±2.048 V (power-on default).
    V2_048,
    /// ±1.024 V.
    V1_024,
    /// ±0.512 V.
    V0_512,
    /// ±0.256 V.
    V0_256,
}

impl Fsr {
    /// Full-scale voltage.
    pub fn volts(self) -> f64 {
        match self {
            Fsr::V6_144 => 6.144,
            Fsr::V4_096 => 4.096,
            Fsr::V2_048 => 2.048,
            Fsr::V1_024 => 1.024,
            Fsr::V0_512 => 0.512,
            Fsr::V0_256 => 0.256,
        }
    }

    /// Volts per count (LSB size): full scale / 32768, e.g. 187.5 µV at ±6.144 V.
    pub fn volts_per_count(self) -> f64 {
        self.volts() / 32_768.0
    }

    /// PGA field value (bits 11:9).
    pub fn bits(self) -> u16 {
        match self {
            Fsr::V6_144 => 0b000,
            Fsr::V4_096 => 0b001,
            Fsr::V2_048 => 0b010,
            Fsr::V1_024 => 0b011,
            Fsr::V0_512 => 0b100,
            Fsr::V0_256 => 0b101,
        }
    }
}

/// The config register value that starts a single-shot conversion of `channel` (0..=3).
pub fn config_word(channel: u8, fsr: Fsr) -> u16 {
    Register::OS
        | ((Register::MUX_SINGLE_0 + u16::from(channel & 0x03)) << Register::MUX_SHIFT)
        | (fsr.bits() << Register::PGA_SHIFT)
        | Register::MODE_SINGLE
        | Register::DR_128SPS
        | Register::COMP_DISABLE
}

/// Volts for a raw conversion result.
pub fn ads1115_volts(raw: i16, fsr: Fsr) -> f64 {
    f64::from(raw) * fsr.volts_per_count()
}

/// The raw result the ADS1115 gives for `volts` (rounded, clamped to i16) — for the simulator.
pub fn ads1115_raw(volts: f64, fsr: Fsr) -> i16 {
    if volts.is_nan() {
        return 0;
    }
    let x = volts / fsr.volts_per_count();
    let x = if x >= 0.0 { x + 0.5 } else { x - 0.5 };
    // Saturating cast: the chip clips at 0x7FFF / 0x8000 too.
    x as i16
}

/// ADS1115 errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// Channel outside 0..=3; nothing was sent.
    InvalidChannel(u8),
    /// The conversion did not finish in time.
    NotReady,
}

impl<E: embedded_hal::i2c::Error> Error<E> {
    /// True when the chip did not acknowledge its address: not present at this address.
    pub fn is_no_device(&self) -> bool {
        match self {
            Error::Bus(e) => crate::is_no_ack(e),
            _ => false,
        }
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "ADS1115 I2C bus error: {e:?}"),
            Error::InvalidChannel(c) => write!(f, "ADS1115 has channels 0..=3, not {c}"),
            Error::NotReady => f.write_str("ADS1115 conversion did not finish"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// ADS1115 on an I2C bus.
#[derive(Debug)]
pub struct Ads1115<I2C> {
    i2c: I2C,
    address: u8,
}

impl<I2C: I2c> Ads1115<I2C> {
    /// Take ownership of the bus.
    pub fn new(i2c: I2C, address: u8) -> Self {
        Self { i2c, address }
    }

    /// Single-shot conversion of `channel` (0..=3, single-ended vs GND), in volts.
    pub fn read_volts<D: DelayNs>(
        &mut self,
        channel: u8,
        fsr: Fsr,
        delay: &mut D,
    ) -> Result<f64, Error<I2C::Error>> {
        Ok(ads1115_volts(self.read_raw(channel, fsr, delay)?, fsr))
    }

    /// Single-shot conversion of `channel`, raw two's-complement count.
    pub fn read_raw<D: DelayNs>(
        &mut self,
        channel: u8,
        fsr: Fsr,
        delay: &mut D,
    ) -> Result<i16, Error<I2C::Error>> {
        if channel > 3 {
            return Err(Error::InvalidChannel(channel));
        }
        let [hi, lo] = config_word(channel, fsr).to_be_bytes();
        self.i2c
            .write(self.address, &[Register::CONFIG, hi, lo])
            .map_err(Error::Bus)?;
        delay.delay_us(CONVERSION_US);
        let mut done = false;
        for i in 0..MAX_POLLS {
            if self.read_u16(Register::CONFIG)? & Register::OS != 0 {
                done = true;
                break;
            }
            if i + 1 < MAX_POLLS {
                delay.delay_us(POLL_INTERVAL_US);
            }
        }
        if !done {
            return Err(Error::NotReady);
        }
        Ok(self.read_u16(Register::CONVERSION)? as i16)
    }

    /// Release the bus.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    fn read_u16(&mut self, reg: u8) -> Result<u16, Error<I2C::Error>> {
        let mut b = [0u8; 2];
        self.i2c
            .write_read(self.address, &[reg], &mut b)
            .map_err(Error::Bus)?;
        Ok(u16::from_be_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_words() {
        // AIN0, ±2.048 V: OS 1, MUX 100, PGA 010, MODE 1, DR 100, comp off = 0xC583.
        assert_eq!(config_word(0, Fsr::V2_048), 0xC583);
        // AIN3, ±6.144 V: MUX 111, PGA 000 = 0xF183.
        assert_eq!(config_word(3, Fsr::V6_144), 0xF183);
        assert_eq!(config_word(1, Fsr::V4_096), 0xD383);
    }

    #[test]
    fn lsb_sizes_from_datasheet() {
        // Datasheet table 3: LSB = FSR / 2^15.
        assert_eq!(Fsr::V6_144.volts_per_count(), 187.5e-6);
        assert_eq!(Fsr::V4_096.volts_per_count(), 125e-6);
        assert_eq!(Fsr::V2_048.volts_per_count(), 62.5e-6);
        assert_eq!(Fsr::V1_024.volts_per_count(), 31.25e-6);
        assert_eq!(Fsr::V0_512.volts_per_count(), 15.625e-6);
        assert_eq!(Fsr::V0_256.volts_per_count(), 7.8125e-6);
        assert_eq!(ads1115_volts(0x7FFF, Fsr::V2_048), 2.048 - 62.5e-6);
        assert_eq!(ads1115_volts(-32768, Fsr::V2_048), -2.048);
    }

    #[test]
    fn inverse() {
        assert_eq!(ads1115_raw(1.0, Fsr::V4_096), 8000);
        assert_eq!(ads1115_raw(-1.0, Fsr::V4_096), -8000);
        assert_eq!(ads1115_raw(10.0, Fsr::V4_096), i16::MAX);
        assert_eq!(ads1115_raw(f64::NAN, Fsr::V4_096), 0);
    }
}
