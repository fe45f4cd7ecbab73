//! Microchip MCP3427 16-bit two-channel delta-sigma ADC over I2C — the ADC of the Raspberry
//! Pi Oracle Weather Station HAT (wind vane on the main board's ADC at `0x69`, channel 0;
//! the TGS2600 air-quality sensor on the snap-off AIR board's ADC at `0x6A`, channel 0).
//!
//! # Hardware guide
//!
//! Address `0x68` with both address pins low (the table of datasheet section 5.3.2 gives
//! 0x68–0x6F from the Adr0/Adr1 pins); `i2cdetect -y 1` shows it. Its inputs are
//! differential, CHn+ against CHn−, full scale ±2.048 V / PGA from the internal reference.
//!
//! # Protocol (datasheet DS22226A, section 5 "Using the devices")
//!
//! Everything is the one configuration byte ([`Config`]): bit 7 RDY (write 1 to start a
//! one-shot conversion; reads 0 once the result is ready), bits 6–5 the channel, bit 4
//! continuous (1) or one-shot (0), bits 3–2 the resolution and rate (12 bits 240 SPS,
//! 14 bits 60 SPS, 16 bits 15 SPS), bits 1–0 the PGA gain 1/2/4/8. A read returns the two
//! result bytes (two's complement, sign-extended at 12 and 14 bits) and the configuration
//! byte. This driver starts a one-shot conversion, waits the conversion time of the
//! slowest rate the datasheet allows (minimum 176/44/11 SPS, table "Electrical
//! characteristics"), and re-reads while RDY is still 1, a bounded number of times.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Configuration-byte bits (datasheet register 5-1).
pub struct Register;

impl Register {
    /// RDY: write 1 to start a one-shot conversion; reads 1 while it is not ready.
    pub const READY: u8 = 0x80;
    /// Continuous conversion mode (0 = one-shot).
    pub const CONTINUOUS: u8 = 0x10;
    /// I2C general call address.
    pub const GENERAL_CALL: u8 = 0x00;
    /// General call reset command.
    pub const GENERAL_CALL_RESET: u8 = 0x06;
}

/// The address with both address pins low.
pub const DEFAULT_ADDRESS: u8 = 0x68;
/// Internal reference, volts.
pub const VREF: f64 = 2.048;
/// Re-reads while RDY is still 1 before [`Error::NotReady`].
pub const MAX_POLLS: u32 = 10;
/// Delay between re-reads, µs.
const POLL_INTERVAL_US: u32 = 2_000;

/// Resolution and sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    /// 12 bits, 240 SPS, LSB 1 mV.
    Bits12,
    /// 14 bits, 60 SPS, LSB 250 µV.
    Bits14,
    /// 16 bits, 15 SPS, LSB 62.5 µV (the HAT's setting).
    #[default]
    Bits16,
}

impl Resolution {
    fn bits(self) -> u8 {
        match self {
            Resolution::Bits12 => 0b00 << 2,
            Resolution::Bits14 => 0b01 << 2,
            Resolution::Bits16 => 0b10 << 2,
        }
    }

    /// Bits of the result.
    pub fn width(self) -> u32 {
        match self {
            Resolution::Bits12 => 12,
            Resolution::Bits14 => 14,
            Resolution::Bits16 => 16,
        }
    }

    /// Volts per count at PGA 1: 2 · 2.048 V / 2^N (datasheet table 4-1).
    pub fn lsb_volts(self) -> f64 {
        2.0 * VREF / f64::from(1u32 << self.width())
    }

    /// Longest one-shot conversion, µs: one sample at the slowest rate the datasheet
    /// allows (176, 44, 11 SPS).
    pub fn max_conversion_us(self) -> u32 {
        match self {
            Resolution::Bits12 => 1_000_000 / 176 + 1,
            Resolution::Bits14 => 1_000_000 / 44 + 1,
            Resolution::Bits16 => 1_000_000 / 11 + 1,
        }
    }
}

/// Programmable gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gain {
    /// ×1 (±2.048 V full scale).
    #[default]
    X1,
    /// ×2.
    X2,
    /// ×4.
    X4,
    /// ×8.
    X8,
}

impl Gain {
    fn bits(self) -> u8 {
        match self {
            Gain::X1 => 0,
            Gain::X2 => 1,
            Gain::X4 => 2,
            Gain::X8 => 3,
        }
    }

    /// The factor.
    pub fn factor(self) -> f64 {
        f64::from(1u8 << self.bits())
    }
}

/// One configuration byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config(pub u8);

impl Config {
    /// The byte that starts a one-shot conversion of `channel` (0 or 1).
    pub fn one_shot(channel: u8, resolution: Resolution, gain: Gain) -> Config {
        Config(Register::READY | ((channel & 0b11) << 5) | resolution.bits() | gain.bits())
    }

    /// True while the conversion is not finished (RDY reads 1).
    pub fn busy(self) -> bool {
        self.0 & Register::READY != 0
    }

    /// The channel bits (0–3; the MCP3427 has 0 and 1).
    pub fn channel(self) -> u8 {
        (self.0 >> 5) & 0b11
    }

    /// The resolution bits (`0b11`, 18 bits on the MCP3422/3/4, reads as 16 here).
    pub fn resolution(self) -> Resolution {
        match (self.0 >> 2) & 0b11 {
            0b00 => Resolution::Bits12,
            0b01 => Resolution::Bits14,
            _ => Resolution::Bits16,
        }
    }

    /// The gain bits.
    pub fn gain(self) -> Gain {
        match self.0 & 0b11 {
            0 => Gain::X1,
            1 => Gain::X2,
            2 => Gain::X4,
            _ => Gain::X8,
        }
    }
}

/// MCP3427 driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// The channel is not 0 or 1.
    Channel(u8),
    /// RDY stayed 1 after the conversion time and [`MAX_POLLS`] re-reads.
    NotReady,
    /// The configuration byte read back is not the one written (another master, or not an
    /// MCP3427 at that address).
    ConfigMismatch {
        /// What was written (RDY aside).
        written: u8,
        /// What was read.
        read: u8,
    },
}

impl<E: embedded_hal::i2c::Error> Error<E> {
    /// True when nothing acknowledged the address.
    pub fn is_no_device(&self) -> bool {
        matches!(self, Error::Bus(e) if crate::is_no_ack(e))
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "MCP3427 I2C bus error: {e:?}"),
            Error::Channel(c) => write!(f, "MCP3427 channel {c} does not exist (0 or 1)"),
            Error::NotReady => f.write_str("MCP3427 conversion did not finish (RDY stayed 1)"),
            Error::ConfigMismatch { written, read } => write!(
                f,
                "MCP3427 answered configuration {read:#04x} after {written:#04x} was written; \
                 is another chip at this address?"
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// Signed output code of the two result bytes at `resolution` (sign-extended from its width).
pub fn code(bytes: [u8; 2], resolution: Resolution) -> i32 {
    let raw = i32::from(u16::from_be_bytes(bytes));
    let shift = 32 - resolution.width();
    (raw << shift) >> shift
}

/// Input voltage CHn+ − CHn− of an output code: code · LSB / PGA (datasheet equation 4-4).
pub fn volts(code: i32, resolution: Resolution, gain: Gain) -> f64 {
    f64::from(code) * resolution.lsb_volts() / gain.factor()
}

/// The output code an input of `volts` gives (clamped to the code range) — for the
/// simulator.
pub fn code_for(volts: f64, resolution: Resolution, gain: Gain) -> i32 {
    let max = (1i32 << (resolution.width() - 1)) - 1;
    let c = volts * gain.factor() / resolution.lsb_volts();
    if c.is_nan() {
        return 0;
    }
    // Rounded half away from zero (no `f64::round` without std).
    let c = c.clamp(f64::from(-max - 1), f64::from(max));
    if c >= 0.0 {
        (c + 0.5) as i32
    } else {
        (c - 0.5) as i32
    }
    .clamp(-max - 1, max)
}

/// An MCP3427 on an I2C bus.
pub struct Mcp3427<I2C> {
    i2c: I2C,
    address: u8,
}

impl<I2C: I2c> Mcp3427<I2C> {
    /// A driver for the MCP3427 at `address`.
    pub fn new(i2c: I2C, address: u8) -> Self {
        Mcp3427 { i2c, address }
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    /// One one-shot conversion of `channel`: the signed output code.
    pub fn read_code<D: DelayNs>(
        &mut self,
        channel: u8,
        resolution: Resolution,
        gain: Gain,
        delay: &mut D,
    ) -> Result<i32, Error<I2C::Error>> {
        if channel > 1 {
            return Err(Error::Channel(channel));
        }
        let config = Config::one_shot(channel, resolution, gain);
        self.i2c
            .write(self.address, &[config.0])
            .map_err(Error::Bus)?;
        delay.delay_us(resolution.max_conversion_us());
        let mut buf = [0u8; 3];
        for poll in 0..=MAX_POLLS {
            if poll > 0 {
                delay.delay_us(POLL_INTERVAL_US);
            }
            self.i2c.read(self.address, &mut buf).map_err(Error::Bus)?;
            let back = Config(buf[2]);
            if back.0 & !Register::READY != config.0 & !Register::READY {
                return Err(Error::ConfigMismatch {
                    written: config.0,
                    read: back.0,
                });
            }
            if !back.busy() {
                return Ok(code([buf[0], buf[1]], resolution));
            }
        }
        Err(Error::NotReady)
    }

    /// One one-shot conversion of `channel`, in volts.
    pub fn read_volts<D: DelayNs>(
        &mut self,
        channel: u8,
        resolution: Resolution,
        gain: Gain,
        delay: &mut D,
    ) -> Result<f64, Error<I2C::Error>> {
        Ok(volts(
            self.read_code(channel, resolution, gain, delay)?,
            resolution,
            gain,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datasheet DS22226A, table 4-4 "Example of converting output code to voltage (with 16
    /// bit setting)", p.16: 0x7FFF → 2.048 V (VREF − 1 LSB), 0x0002 → 125 µV, 0x0001 →
    /// 62.5 µV, 0 → 0 V, 0xFFFF → −62.5 µV, 0xFFFE → −125 µV, 0x8000 → −2.048 V, PGA 1.
    #[test]
    fn datasheet_table_4_4() {
        let r = Resolution::Bits16;
        let v = |b: u16| volts(code(b.to_be_bytes(), r), r, Gain::X1);
        assert!((v(0x7FFF) - 2.048).abs() < 62.5e-6);
        assert!((v(0x0002) - 125e-6).abs() < 1e-12);
        assert!((v(0x0001) - 62.5e-6).abs() < 1e-12);
        assert_eq!(v(0), 0.0);
        assert!((v(0xFFFF) + 62.5e-6).abs() < 1e-12);
        assert!((v(0xFFFE) + 125e-6).abs() < 1e-12);
        assert_eq!(v(0x8000), -2.048);
    }

    /// Table 4-1 (resolution settings): LSB 1 mV, 250 µV, 62.5 µV at 12, 14, 16 bits; the 12- and 14-bit
    /// codes are sign-extended in the 16-bit result.
    #[test]
    fn lsb_and_sign_extension() {
        assert_eq!(Resolution::Bits12.lsb_volts(), 0.001);
        assert_eq!(Resolution::Bits14.lsb_volts(), 0.000_25);
        assert_eq!(Resolution::Bits16.lsb_volts(), 0.000_062_5);
        assert_eq!(code([0xF8, 0x00], Resolution::Bits12), -2048);
        assert_eq!(code([0x07, 0xFF], Resolution::Bits12), 2047);
        assert_eq!(code([0xFF, 0xFF], Resolution::Bits14), -1);
        assert_eq!(volts(1000, Resolution::Bits16, Gain::X8), 0.007_812_5);
    }

    /// Register 5-1 (configuration register): RDY 1 to start, channel in bits 6–5, S1S0 and G1G0; the
    /// power-on default 0x90 is continuous, 12 bits, gain 1.
    #[test]
    fn configuration_byte() {
        assert_eq!(
            Config::one_shot(0, Resolution::Bits16, Gain::X1).0,
            0b1000_1000
        );
        let c = Config::one_shot(1, Resolution::Bits14, Gain::X8);
        assert_eq!(c.0, 0b1010_0111);
        assert_eq!(c.channel(), 1);
        assert_eq!(c.resolution(), Resolution::Bits14);
        assert_eq!(c.gain(), Gain::X8);
        assert!(c.busy());
        assert!(!Config(0x90 & !Register::READY).busy());
        assert_eq!(Config(0x90).resolution(), Resolution::Bits12);
    }

    #[test]
    fn code_for_inverts_volts() {
        for v in [-2.0, -0.5, 0.0, 0.123_456, 1.9] {
            for g in [Gain::X1, Gain::X2] {
                let r = Resolution::Bits16;
                let back = volts(code_for(v / g.factor(), r, g), r, g);
                assert!((back - v / g.factor()).abs() <= r.lsb_volts(), "{v}");
            }
        }
        assert_eq!(code_for(5.0, Resolution::Bits16, Gain::X1), 32767);
        assert_eq!(code_for(-5.0, Resolution::Bits12, Gain::X1), -2048);
        assert_eq!(code_for(f64::NAN, Resolution::Bits12, Gain::X1), 0);
    }
}
