//! Lite-On LTR-390UV-01 ultraviolet and ambient light sensor over I2C: UV index and
//! illuminance (one of the build-your-own weather station guide's extras).
//!
//! # Hardware guide
//!
//! One fixed address, [`ADDRESS`] `0x53`; VDD 1.7–3.6 V (3V3 on a Pi). PART_ID (0x06)
//! reads `0xB2` (part number 0xB in the high nibble, revision in the low one).
//!
//! # Protocol (datasheet DS86-2015-0004, "Register set")
//!
//! MAIN_CTRL (0x00): LS_EN bit 1, UVS_MODE bit 3 (1 = UV, 0 = ambient light), SW reset bit 4.
//! ALS_UVS_MEAS_RATE (0x04): resolution bits 6–4 (20 bits/400 ms … 13 bits/12.5 ms).
//! ALS_UVS_GAIN (0x05): 1, 3, 6, 9, 18. MAIN_STATUS (0x07): data status bit 3 (cleared when
//! read). ALS_DATA 0x0D–0x0F and UVS_DATA 0x10–0x12: 20-bit, least significant byte first.
//! The chip measures one of the two at a time, so [`Ltr390::measure`] runs the ambient light
//! mode, then the UV mode, each waiting its conversion time and polling the data status.
//!
//! # Conversion (datasheet "ALS lux formula" and "UVI formula")
//!
//! lux = 0.6 · ALS_DATA / (gain · Int) · Wfac, with Int the integration time / 100 ms;
//! UVI = UVS_DATA / UV sensitivity · Wfac, the UV sensitivity being 2300 counts per UVI at
//! gain 18 and 20 bits (400 ms), proportional to gain and integration time. Wfac is 1 for a
//! sensor under open sky or a clear window, more behind a tinted one.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Registers and bits.
pub struct Register;

impl Register {
    /// MAIN_CTRL.
    pub const MAIN_CTRL: u8 = 0x00;
    /// ALS_UVS_MEAS_RATE.
    pub const MEAS_RATE: u8 = 0x04;
    /// ALS_UVS_GAIN.
    pub const GAIN: u8 = 0x05;
    /// PART_ID.
    pub const PART_ID: u8 = 0x06;
    /// MAIN_STATUS.
    pub const MAIN_STATUS: u8 = 0x07;
    /// ALS_DATA_0.
    pub const ALS_DATA: u8 = 0x0D;
    /// UVS_DATA_0.
    pub const UVS_DATA: u8 = 0x10;
    /// MAIN_CTRL: light sensor enable.
    pub const LS_EN: u8 = 0x02;
    /// MAIN_CTRL: UV mode.
    pub const UVS_MODE: u8 = 0x08;
    /// MAIN_STATUS: new data.
    pub const DATA_STATUS: u8 = 0x08;
}

/// The LTR390's only I2C address.
pub const ADDRESS: u8 = 0x53;
/// PART_ID's part number (high nibble).
pub const PART_NUMBER: u8 = 0xB;
/// UV counts per UV index at gain 18 and 400 ms (datasheet).
pub const UV_SENSITIVITY: f64 = 2300.0;
/// Data-status polls after the conversion time before [`Error::NotReady`].
pub const MAX_POLLS: u32 = 10;
const POLL_INTERVAL_US: u32 = 10_000;

/// Resolution and integration time (MEAS_RATE bits 6–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// 20 bits, 400 ms.
    Bits20,
    /// 19 bits, 200 ms.
    Bits19,
    /// 18 bits, 100 ms (the chip's default).
    Bits18,
    /// 17 bits, 50 ms.
    Bits17,
    /// 16 bits, 25 ms.
    Bits16,
    /// 13 bits, 12.5 ms.
    Bits13,
}

impl Resolution {
    fn bits(self) -> u8 {
        (self as u8) << 4
    }

    /// Integration time, µs.
    pub fn integration_us(self) -> u32 {
        match self {
            Resolution::Bits20 => 400_000,
            Resolution::Bits19 => 200_000,
            Resolution::Bits18 => 100_000,
            Resolution::Bits17 => 50_000,
            Resolution::Bits16 => 25_000,
            Resolution::Bits13 => 12_500,
        }
    }

    /// Int of the lux formula: integration time / 100 ms.
    pub fn int_factor(self) -> f64 {
        f64::from(self.integration_us()) / 100_000.0
    }

    /// Largest count.
    pub fn max_count(self) -> u32 {
        let bits = match self {
            Resolution::Bits20 => 20,
            Resolution::Bits19 => 19,
            Resolution::Bits18 => 18,
            Resolution::Bits17 => 17,
            Resolution::Bits16 => 16,
            Resolution::Bits13 => 13,
        };
        (1 << bits) - 1
    }

    /// The resolution in a MEAS_RATE value.
    pub fn from_meas_rate(value: u8) -> Resolution {
        match (value >> 4) & 0b111 {
            0 => Resolution::Bits20,
            1 => Resolution::Bits19,
            2 => Resolution::Bits18,
            3 => Resolution::Bits17,
            4 => Resolution::Bits16,
            _ => Resolution::Bits13,
        }
    }
}

/// Gain (ALS_UVS_GAIN bits 2–0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gain {
    /// 1×.
    X1,
    /// 3× (the chip's default).
    X3,
    /// 6×.
    X6,
    /// 9×.
    X9,
    /// 18×.
    X18,
}

impl Gain {
    /// The factor.
    pub fn factor(self) -> f64 {
        match self {
            Gain::X1 => 1.0,
            Gain::X3 => 3.0,
            Gain::X6 => 6.0,
            Gain::X9 => 9.0,
            Gain::X18 => 18.0,
        }
    }

    /// The register value.
    pub fn bits(self) -> u8 {
        self as u8
    }

    /// The gain in a GAIN register value.
    pub fn from_bits(value: u8) -> Gain {
        match value & 0b111 {
            0 => Gain::X1,
            1 => Gain::X3,
            2 => Gain::X6,
            3 => Gain::X9,
            _ => Gain::X18,
        }
    }
}

/// Gain and resolution of one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Gain.
    pub gain: Gain,
    /// Resolution.
    pub resolution: Resolution,
}

impl Settings {
    /// The datasheet's UV setting: gain 18, 20 bits.
    pub const UV: Settings = Settings {
        gain: Gain::X18,
        resolution: Resolution::Bits20,
    };
    /// The ambient light setting: gain 1, 18 bits, whose 262 143 counts reach the
    /// datasheet's 157 000 lx (at the chip's default gain 3 it would saturate at 52 000 lx,
    /// below full sun).
    pub const ALS: Settings = Settings {
        gain: Gain::X1,
        resolution: Resolution::Bits18,
    };
}

/// lux = 0.6 · ALS / (gain · Int) · Wfac.
pub fn lux(als: u32, s: Settings, wfac: f64) -> f64 {
    0.6 * f64::from(als) / (s.gain.factor() * s.resolution.int_factor()) * wfac
}

/// UV counts per UV index at these settings: 2300 at gain 18, 400 ms, proportional to both.
pub fn uv_sensitivity(s: Settings) -> f64 {
    UV_SENSITIVITY * (s.gain.factor() / 18.0) * (s.resolution.int_factor() / 4.0)
}

/// UVI = UVS / sensitivity · Wfac.
pub fn uv_index(uvs: u32, s: Settings, wfac: f64) -> f64 {
    f64::from(uvs) / uv_sensitivity(s) * wfac
}

/// The 20-bit value of three data bytes, least significant first (upper 4 bits ignored).
pub fn data(bytes: [u8; 3]) -> u32 {
    (u32::from(bytes[2] & 0x0F) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[0])
}

/// LTR390 driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// PART_ID's part number is not 0xB.
    WrongChip(u8),
    /// The data status stayed 0.
    NotReady,
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
            Error::Bus(e) => write!(f, "LTR390 I2C bus error: {e:?}"),
            Error::WrongChip(id) => write!(
                f,
                "the chip at 0x53 has part id {id:#04x}, not an LTR390 (0xB2)"
            ),
            Error::NotReady => f.write_str("LTR390 conversion did not complete (no new data)"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// One UV and light measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Ambient light counts.
    pub als: u32,
    /// UV counts.
    pub uvs: u32,
    /// Illuminance, lx.
    pub lux: f64,
    /// UV index.
    pub uv_index: f64,
}

/// An LTR390 on an I2C bus.
pub struct Ltr390<I2C> {
    i2c: I2C,
}

impl<I2C: I2c> Ltr390<I2C> {
    /// A driver for the LTR390 at [`ADDRESS`].
    pub fn new(i2c: I2C) -> Self {
        Ltr390 { i2c }
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    fn write(&mut self, reg: u8, value: u8) -> Result<(), Error<I2C::Error>> {
        self.i2c.write(ADDRESS, &[reg, value]).map_err(Error::Bus)
    }

    fn read(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write_read(ADDRESS, &[reg], buf)
            .map_err(Error::Bus)
    }

    /// Checks PART_ID.
    pub fn init(&mut self) -> Result<(), Error<I2C::Error>> {
        let mut id = [0u8];
        self.read(Register::PART_ID, &mut id)?;
        if id[0] >> 4 != PART_NUMBER {
            return Err(Error::WrongChip(id[0]));
        }
        Ok(())
    }

    /// One conversion in UV mode (`uv`) or ambient light mode: the 20-bit count.
    pub fn read_count<D: DelayNs>(
        &mut self,
        uv: bool,
        s: Settings,
        delay: &mut D,
    ) -> Result<u32, Error<I2C::Error>> {
        self.write(Register::GAIN, s.gain.bits())?;
        self.write(Register::MEAS_RATE, s.resolution.bits() | 0x02)?;
        let mode = if uv { Register::UVS_MODE } else { 0 };
        self.write(Register::MAIN_CTRL, Register::LS_EN | mode)?;
        delay.delay_us(s.resolution.integration_us());
        let ready = crate::poll_status(
            &mut self.i2c,
            ADDRESS,
            Register::MAIN_STATUS,
            |s| s & Register::DATA_STATUS != 0,
            MAX_POLLS,
            POLL_INTERVAL_US,
            delay,
        )
        .map_err(Error::Bus)?;
        if !ready {
            return Err(Error::NotReady);
        }
        let mut bytes = [0u8; 3];
        let reg = if uv {
            Register::UVS_DATA
        } else {
            Register::ALS_DATA
        };
        self.read(reg, &mut bytes)?;
        Ok(data(bytes))
    }

    /// Ambient light at [`Settings::ALS`], then UV at [`Settings::UV`]; the sensor is put
    /// back to standby after.
    pub fn measure<D: DelayNs>(
        &mut self,
        wfac: f64,
        delay: &mut D,
    ) -> Result<Measurement, Error<I2C::Error>> {
        let als = self.read_count(false, Settings::ALS, delay)?;
        let uvs = self.read_count(true, Settings::UV, delay)?;
        self.write(Register::MAIN_CTRL, 0)?;
        Ok(Measurement {
            als,
            uvs,
            lux: lux(als, Settings::ALS, wfac),
            uv_index: uv_index(uvs, Settings::UV, wfac),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datasheet "UVI formula": 2300 counts per UVI at gain 18, 20 bits (400 ms), so 2300
    /// counts are UVI 1 and 6900 counts UVI 3; at gain 1 and 18 bits a UVI is 2300 · 1/18 ·
    /// 1/4 = 31.94 counts.
    #[test]
    fn uv_index_formula() {
        assert_eq!(uv_index(2300, Settings::UV, 1.0), 1.0);
        assert_eq!(uv_index(6900, Settings::UV, 1.0), 3.0);
        assert!((uv_sensitivity(Settings::ALS) - 2300.0 / 72.0).abs() < 1e-9);
        assert_eq!(uv_index(2300, Settings::UV, 1.5), 1.5);
    }

    /// Datasheet "ALS lux formula": lux = 0.6 · ALS / (gain · Int) · Wfac; at gain 1 and
    /// 18 bits (Int 1) 5000 counts are 3000 lx and full scale is the datasheet's 157 000 lx;
    /// at gain 18 and 20 bits (Int 4) 1000 lx is 120000 counts.
    #[test]
    fn lux_formula() {
        assert_eq!(lux(5000, Settings::ALS, 1.0), 3000.0);
        assert!((lux(Resolution::Bits18.max_count(), Settings::ALS, 1.0) - 157_285.8).abs() < 0.1);
        assert!((lux(120_000, Settings::UV, 1.0) - 1000.0).abs() < 1e-9);
        assert_eq!(Resolution::Bits13.int_factor(), 0.125);
    }

    #[test]
    fn data_bytes_and_registers() {
        assert_eq!(data([0x34, 0x12, 0x0F]), 0x0F_1234);
        // The upper nibble of the third byte is not data.
        assert_eq!(data([0x34, 0x12, 0xFF]), 0x0F_1234);
        assert_eq!(Resolution::from_meas_rate(0x22), Resolution::Bits18);
        assert_eq!(Resolution::Bits20.max_count(), 0xF_FFFF);
        assert_eq!(Gain::from_bits(4), Gain::X18);
        assert_eq!(Gain::X9.bits(), 3);
    }
}
