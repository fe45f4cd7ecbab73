//! Bosch BMP180 barometric pressure and temperature sensor over I2C (the BMP085's
//! successor) — the pressure chip on the Raspberry Pi Oracle Weather Station HAT.
//!
//! # Hardware guide
//!
//! One fixed address, [`ADDRESS`] `0x77`; `i2cdetect -y 1` shows `77`. Its chip id register
//! (`0xD0`) reads [`CHIP_ID`] `0x55` (a BME280/BMP280 at 0x77 reads 0x60/0x58 and is refused
//! with [`Error::WrongChip`]). VDD is 1.8–3.6 V: on a Pi, 3V3 (pin 1).
//!
//! # Protocol (datasheet BST-BMP180-DS000-09, section 3.3 "Measurement of pressure and
//! temperature", p.11–15)
//!
//! At start-up the driver reads the 11 calibration words from the EEPROM at `0xAA..0xBF`
//! (big-endian; AC4–AC6 unsigned, the others signed). The datasheet's communication check is
//! that no word is `0x0000` or `0xFFFF`: such a word is [`Error::Calibration`].
//! A measurement writes a control value to `0xF4` — `0x2E` for temperature, `0x34 + (oss << 6)`
//! for pressure at oversampling setting `oss` 0–3 — waits the conversion time (4.5 ms for
//! temperature; 4.5, 7.5, 13.5, 25.5 ms for pressure at oss 0–3, datasheet table 3 p.12) and
//! reads `0xF6..0xF8`. UP = (MSB << 16 | LSB << 8 | XLSB) >> (8 − oss).
//!
//! # Conversion
//!
//! The datasheet's integer algorithm (figure 4, p.15), done in `i64` so no intermediate can
//! overflow; a calibration that would divide by zero is [`Error::Calibration`], never a panic.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Registers and command values of the BMP180 (datasheet section 5 "Global memory map").
pub struct Register;

impl Register {
    /// First calibration EEPROM register (AC1 MSB).
    pub const CALIB_START: u8 = 0xAA;
    /// Chip id register.
    pub const CHIP_ID: u8 = 0xD0;
    /// Soft reset register (write [`Register::RESET_VALUE`]).
    pub const SOFT_RESET: u8 = 0xE0;
    /// The value that triggers a soft reset.
    pub const RESET_VALUE: u8 = 0xB6;
    /// Measurement control register.
    pub const CTRL_MEAS: u8 = 0xF4;
    /// Result MSB (then LSB at 0xF7, XLSB at 0xF8).
    pub const OUT_MSB: u8 = 0xF6;
    /// Control value: measure temperature.
    pub const MEASURE_TEMPERATURE: u8 = 0x2E;
    /// Control value: measure pressure at oss 0 (add `oss << 6`).
    pub const MEASURE_PRESSURE: u8 = 0x34;
}

/// The BMP180's only I2C address.
pub const ADDRESS: u8 = 0x77;
/// What the chip id register of a BMP180 (and BMP085) reads.
pub const CHIP_ID: u8 = 0x55;
/// Temperature conversion time, µs (datasheet table 3: max 4.5 ms).
pub const TEMPERATURE_CONVERSION_US: u32 = 4_500;
/// Start-up time after a soft reset, µs (datasheet: 10 ms).
const STARTUP_US: u32 = 10_000;

/// BMP180 driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// The chip id register did not read 0x55.
    WrongChip(u8),
    /// A calibration word is 0x0000 or 0xFFFF (index 0 = AC1 … 10 = MD), or the words make
    /// the algorithm divide by zero (index 255).
    Calibration(u8),
    /// The oversampling setting is not 0–3.
    Oversampling(u8),
}

impl<E: embedded_hal::i2c::Error> Error<E> {
    /// True when nothing acknowledged the address: the chip is not there.
    pub fn is_no_device(&self) -> bool {
        matches!(self, Error::Bus(e) if crate::is_no_ack(e))
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "BMP180 I2C bus error: {e:?}"),
            Error::WrongChip(id) => write!(
                f,
                "the chip at 0x77 has id {id:#04x}, not a BMP180 (0x55); a BME280 reads 0x60, \
                 a BMP280 0x58: configure it as that kind"
            ),
            Error::Calibration(255) => f.write_str(
                "BMP180 calibration words make the datasheet's formula divide by zero; the \
                 EEPROM read is corrupt (check the wiring and pull-ups)",
            ),
            Error::Calibration(i) => write!(
                f,
                "BMP180 calibration word {i} reads 0x0000 or 0xFFFF, which the datasheet calls a \
                 communication failure; check the wiring and pull-ups"
            ),
            Error::Oversampling(o) => write!(f, "BMP180 oversampling setting {o} is not 0–3"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// The 11 calibration coefficients of the EEPROM (datasheet table 5, p.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Calibration {
    pub ac1: i16,
    pub ac2: i16,
    pub ac3: i16,
    pub ac4: u16,
    pub ac5: u16,
    pub ac6: u16,
    pub b1: i16,
    pub b2: i16,
    pub mb: i16,
    pub mc: i16,
    pub md: i16,
}

impl Calibration {
    /// The datasheet's example calibration (figure 4, p.15).
    pub const DATASHEET_EXAMPLE: Calibration = Calibration {
        ac1: 408,
        ac2: -72,
        ac3: -14383,
        ac4: 32741,
        ac5: 32757,
        ac6: 23153,
        b1: 6190,
        b2: 4,
        mb: -32768,
        mc: -8711,
        md: 2868,
    };

    /// Decodes the 22 bytes at 0xAA..0xBF, refusing a word of 0x0000 or 0xFFFF.
    pub fn from_registers(raw: &[u8; 22]) -> Result<Calibration, u8> {
        let mut w = [0u16; 11];
        for (i, word) in w.iter_mut().enumerate() {
            *word = u16::from_be_bytes([raw[2 * i], raw[2 * i + 1]]);
            if *word == 0 || *word == 0xFFFF {
                return Err(i as u8);
            }
        }
        let s = |i: usize| w[i] as i16;
        Ok(Calibration {
            ac1: s(0),
            ac2: s(1),
            ac3: s(2),
            ac4: w[3],
            ac5: w[4],
            ac6: w[5],
            b1: s(6),
            b2: s(7),
            mb: s(8),
            mc: s(9),
            md: s(10),
        })
    }

    /// The 22 register bytes of this calibration — for the simulator.
    pub fn to_registers(&self) -> [u8; 22] {
        let words: [u16; 11] = [
            self.ac1 as u16,
            self.ac2 as u16,
            self.ac3 as u16,
            self.ac4,
            self.ac5,
            self.ac6,
            self.b1 as u16,
            self.b2 as u16,
            self.mb as u16,
            self.mc as u16,
            self.md as u16,
        ];
        let mut out = [0u8; 22];
        for (i, w) in words.iter().enumerate() {
            out[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// B5 of the datasheet, or `None` when X1 + MD is 0.
    fn b5(&self, ut: i64) -> Option<i64> {
        let x1 = ((ut - i64::from(self.ac6)) * i64::from(self.ac5)) >> 15;
        let den = x1 + i64::from(self.md);
        if den == 0 {
            return None;
        }
        // The datasheet's example rounds this quotient down (X2 = −2344, not −2343).
        let x2 = floor_div(i64::from(self.mc) << 11, den);
        Some(x1 + x2)
    }

    /// Temperature in 0.1 °C for an uncompensated temperature `ut` (datasheet figure 4).
    pub fn temperature_decidegrees(&self, ut: i32) -> Option<i32> {
        Some(((self.b5(i64::from(ut))? + 8) >> 4) as i32)
    }

    /// Pressure in Pa for `up` measured at `oss` after temperature `ut` (datasheet figure 4).
    /// `None` when the calibration would divide by zero.
    pub fn pressure_pa(&self, ut: i32, up: i32, oss: u8) -> Option<i32> {
        let oss = i64::from(oss.min(3));
        let b6 = self.b5(i64::from(ut))? - 4000;
        let x1 = (i64::from(self.b2) * ((b6 * b6) >> 12)) >> 11;
        let x2 = (i64::from(self.ac2) * b6) >> 11;
        let x3 = x1 + x2;
        let b3 = (((i64::from(self.ac1) * 4 + x3) << oss) + 2) / 4;
        let x1 = (i64::from(self.ac3) * b6) >> 13;
        let x2 = (i64::from(self.b1) * ((b6 * b6) >> 12)) >> 16;
        let x3 = (x1 + x2 + 2) >> 2;
        // The datasheet's unsigned 32-bit arithmetic, kept in range.
        let b4 = (i64::from(self.ac4) * ((x3 + 32768) & 0xFFFF_FFFF)) >> 15;
        let b7 = ((i64::from(up) - b3) & 0xFFFF_FFFF) * (50_000 >> oss);
        if b4 == 0 {
            return None;
        }
        let p = if b7 < 0x8000_0000 {
            (b7 * 2) / b4
        } else {
            (b7 / b4) * 2
        };
        let x1 = (p >> 8) * (p >> 8);
        let x1 = (x1 * 3038) >> 16;
        let x2 = (-7357 * p) >> 16;
        Some((p + ((x1 + x2 + 3791) >> 4)) as i32)
    }
}

/// a / b rounded towards −∞ (b ≠ 0).
fn floor_div(a: i64, b: i64) -> i64 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

/// Pressure conversion time at oversampling setting `oss` 0–3, µs (datasheet table 3, max).
pub fn pressure_conversion_us(oss: u8) -> u32 {
    match oss {
        0 => 4_500,
        1 => 7_500,
        2 => 13_500,
        _ => 25_500,
    }
}

/// UP from the three result bytes at oversampling `oss`.
pub fn up_from_bytes(bytes: [u8; 3], oss: u8) -> i32 {
    let raw = (i32::from(bytes[0]) << 16) | (i32::from(bytes[1]) << 8) | i32::from(bytes[2]);
    raw >> (8 - i32::from(oss.min(3)))
}

/// One temperature and pressure measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Temperature, °C (0.1 °C steps).
    pub temperature_c: f64,
    /// Station pressure, Pa.
    pub pressure_pa: i32,
}

/// A BMP180 on an I2C bus.
pub struct Bmp180<I2C> {
    i2c: I2C,
    calibration: Option<Calibration>,
    oss: u8,
}

impl<I2C: I2c> Bmp180<I2C> {
    /// A driver for the BMP180 on `i2c` at [`ADDRESS`], oversampling setting 0.
    pub fn new(i2c: I2C) -> Self {
        Bmp180 {
            i2c,
            calibration: None,
            oss: 0,
        }
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    /// Checks the chip id and reads the calibration EEPROM; `oss` 0–3 sets the pressure
    /// oversampling (ultra low power … ultra high resolution).
    pub fn init(&mut self, oss: u8) -> Result<Calibration, Error<I2C::Error>> {
        if oss > 3 {
            return Err(Error::Oversampling(oss));
        }
        let mut id = [0u8];
        self.i2c
            .write_read(ADDRESS, &[Register::CHIP_ID], &mut id)
            .map_err(Error::Bus)?;
        if id[0] != CHIP_ID {
            return Err(Error::WrongChip(id[0]));
        }
        let mut raw = [0u8; 22];
        self.i2c
            .write_read(ADDRESS, &[Register::CALIB_START], &mut raw)
            .map_err(Error::Bus)?;
        let cal = Calibration::from_registers(&raw).map_err(Error::Calibration)?;
        self.calibration = Some(cal);
        self.oss = oss;
        Ok(cal)
    }

    /// Soft reset, then the start-up time.
    pub fn reset<D: DelayNs>(&mut self, delay: &mut D) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write(ADDRESS, &[Register::SOFT_RESET, Register::RESET_VALUE])
            .map_err(Error::Bus)?;
        delay.delay_us(STARTUP_US);
        Ok(())
    }

    fn convert<D: DelayNs>(
        &mut self,
        control: u8,
        wait_us: u32,
        delay: &mut D,
    ) -> Result<[u8; 3], Error<I2C::Error>> {
        self.i2c
            .write(ADDRESS, &[Register::CTRL_MEAS, control])
            .map_err(Error::Bus)?;
        delay.delay_us(wait_us);
        let mut out = [0u8; 3];
        self.i2c
            .write_read(ADDRESS, &[Register::OUT_MSB], &mut out)
            .map_err(Error::Bus)?;
        Ok(out)
    }

    /// Temperature then pressure, with the datasheet's conversion times.
    pub fn measure<D: DelayNs>(&mut self, delay: &mut D) -> Result<Measurement, Error<I2C::Error>> {
        let cal = match self.calibration {
            Some(c) => c,
            None => self.init(self.oss)?,
        };
        let t = self.convert(
            Register::MEASURE_TEMPERATURE,
            TEMPERATURE_CONVERSION_US,
            delay,
        )?;
        let ut = i32::from(u16::from_be_bytes([t[0], t[1]]));
        let oss = self.oss;
        let p = self.convert(
            Register::MEASURE_PRESSURE + (oss << 6),
            pressure_conversion_us(oss),
            delay,
        )?;
        let up = up_from_bytes(p, oss);
        let t = cal
            .temperature_decidegrees(ut)
            .ok_or(Error::Calibration(255))?;
        let pressure_pa = cal
            .pressure_pa(ut, up, oss)
            .ok_or(Error::Calibration(255))?;
        Ok(Measurement {
            temperature_c: f64::from(t) / 10.0,
            pressure_pa,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datasheet BST-BMP180-DS000-09, figure 4 "Algorithm for pressure and temperature
    /// measurement", p.15: UT = 27898, UP = 23843 at oss 0 with the example calibration
    /// give T = 150 (15.0 °C) and p = 69964 Pa.
    #[test]
    fn datasheet_worked_example() {
        let cal = Calibration::DATASHEET_EXAMPLE;
        assert_eq!(cal.b5(27898), Some(2399));
        assert_eq!(cal.temperature_decidegrees(27898), Some(150));
        assert_eq!(cal.pressure_pa(27898, 23843, 0), Some(69964));
    }

    #[test]
    fn calibration_round_trips_and_refuses_blank_words() {
        let cal = Calibration::DATASHEET_EXAMPLE;
        assert_eq!(Calibration::from_registers(&cal.to_registers()), Ok(cal));
        let mut raw = cal.to_registers();
        raw[6] = 0;
        raw[7] = 0;
        assert_eq!(Calibration::from_registers(&raw), Err(3));
        assert_eq!(Calibration::from_registers(&[0xFF; 22]), Err(0));
    }

    #[test]
    fn division_by_zero_is_none() {
        let mut cal = Calibration::DATASHEET_EXAMPLE;
        // X1 = (UT − AC6)·AC5 >> 15 = 0 at UT = AC6, so X1 + MD = 0 with MD = 0.
        cal.md = 0;
        assert_eq!(cal.temperature_decidegrees(i32::from(cal.ac6)), None);
        assert_eq!(cal.pressure_pa(i32::from(cal.ac6), 23843, 0), None);
    }

    #[test]
    fn up_and_conversion_times() {
        // oss 0: the 16 bits of MSB/LSB; oss 3: 19 bits.
        assert_eq!(up_from_bytes([0x5D, 0x23, 0x00], 0), 23843);
        assert_eq!(up_from_bytes([0x5D, 0x23, 0xE0], 3), (23843 << 3) | 7);
        assert_eq!(
            [0, 1, 2, 3].map(pressure_conversion_us),
            [4_500, 7_500, 13_500, 25_500]
        );
    }
}
