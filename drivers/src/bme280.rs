//! Bosch BME280 temperature, pressure and humidity sensor over I2C.
//!
//! # Hardware guide
//!
//! Enable I2C with `dtparam=i2c_arm=on` in `/boot/firmware/config.txt` (or `raspi-config`),
//! wire SDA to GPIO 2 (pin 3), SCL to GPIO 3 (pin 5), VIN to 3.3 V and GND. The sensor answers
//! at `0x76` (SDO to GND, most breakouts) or `0x77` (SDO to VDDIO); `i2cdetect -y 1` shows
//! which. "Permission denied" on `/dev/i2c-1` means the user is not in the `i2c` group.
//!
//! # Why not the `bme280` crate
//!
//! DESIGN.md allows wrapping it, but this crate depends on `embedded-hal` alone, so that it
//! builds for bare-metal targets with nothing else to audit, and so that the register
//! sequence, the error cases (BMP280 vs BME280, NACK, "skipped" samples, calibration that
//! never loads) and the integer compensation are ours to test against the datasheet. The
//! `bme280` crate computes in `f32`; here the datasheet's 32/64-bit integer formulas are used,
//! which are exact and reproducible on every target.
//!
//! # BMP280
//!
//! The BMP280 (chip id `0x58`) looks the same on the bus and is often sold as a "BME280"
//! breakout; it measures pressure and temperature only, with no humidity. [`Bme280::init`]
//! refuses it with [`Error::Bmp280`] instead of returning made-up humidity.
//!
//! # Bus errors
//!
//! [`Error::is_no_device`] is true when the chip did not acknowledge its address (wrong
//! address, not wired, not powered). Note that the Pi's `i2c-bcm2835` kernel driver reports a
//! NACK as `EREMOTEIO`, which `linux-embedded-hal` 0.5 maps to `ErrorKind::Other`; the daemon's
//! HAL layer should treat that errno as "no device" too.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Registers, commands and bit masks of the BME280.
pub struct Register;

impl Register {
    /// First calibration block, 0x88..=0xA1 (26 bytes).
    pub const CALIB_00: u8 = 0x88;
    /// Chip id register.
    pub const ID: u8 = 0xD0;
    /// Soft reset register.
    pub const RESET: u8 = 0xE0;
    /// Second calibration block, 0xE1..=0xE7 (7 bytes).
    pub const CALIB_26: u8 = 0xE1;
    /// Humidity oversampling; takes effect on the next write of `CTRL_MEAS`.
    pub const CTRL_HUM: u8 = 0xF2;
    /// Status register.
    pub const STATUS: u8 = 0xF3;
    /// Temperature/pressure oversampling and mode.
    pub const CTRL_MEAS: u8 = 0xF4;
    /// Standby time, IIR filter.
    pub const CONFIG: u8 = 0xF5;
    /// First data register (press_msb); 0xF7..=0xFE is one burst.
    pub const DATA: u8 = 0xF7;

    /// Value written to `RESET` for a power-on reset.
    pub const RESET_COMMAND: u8 = 0xB6;
    /// Chip id of the BME280.
    pub const CHIP_ID_BME280: u8 = 0x60;
    /// Chip id of the BMP280 (no humidity).
    pub const CHIP_ID_BMP280: u8 = 0x58;
    /// `STATUS` bit: a conversion is running.
    pub const STATUS_MEASURING: u8 = 0x08;
    /// `STATUS` bit: NVM data are being copied to image registers.
    pub const STATUS_IM_UPDATE: u8 = 0x01;
    /// `CTRL_MEAS` mode bits: sleep.
    pub const MODE_SLEEP: u8 = 0b00;
    /// `CTRL_MEAS` mode bits: forced (one measurement, then sleep).
    pub const MODE_FORCED: u8 = 0b01;
    /// `CTRL_MEAS` mode bits: normal (continuous).
    pub const MODE_NORMAL: u8 = 0b11;
    /// `CONFIG` standby bits used in normal mode: 1000 ms (t_sb = 0b101).
    pub const STANDBY_1000_MS: u8 = 0b101;
    /// Raw pressure/temperature value of a skipped measurement.
    pub const SKIPPED_20BIT: i32 = 0x80000;
    /// Raw humidity value of a skipped measurement.
    pub const SKIPPED_16BIT: i32 = 0x8000;
}

/// Address with SDO to GND (most breakouts).
pub const DEFAULT_ADDRESS: u8 = 0x76;
/// Address with SDO to VDDIO.
pub const SECONDARY_ADDRESS: u8 = 0x77;

/// Polls of the status register before giving up with [`Error::NotReady`].
const MAX_POLLS: u32 = 20;
/// Delay between status polls, µs.
const POLL_INTERVAL_US: u32 = 1_000;
/// Start-up time after a soft reset (datasheet t_startup: 2 ms).
const STARTUP_US: u32 = 2_000;

/// BME280 driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// The chip is a BMP280 (id 0x58): pressure and temperature only, no humidity.
    Bmp280,
    /// The chip id is neither a BME280's nor a BMP280's.
    UnknownChip(u8),
    /// The chip stayed busy (NVM copy or conversion), or `measure` was called before `init`.
    NotReady,
    /// The chip returned a "skipped" sample (0x80000 / 0x8000).
    InvalidData,
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
            Error::Bus(e) => write!(f, "BME280 I2C bus error: {e:?}"),
            Error::Bmp280 => f.write_str(
                "chip id 0x58 is a BMP280, which measures pressure and temperature only (no \
                 humidity); fit a real BME280",
            ),
            Error::UnknownChip(id) => write!(
                f,
                "chip id {id:#04x} is not a BME280 (0x60); check the I2C address (0x76 or 0x77)"
            ),
            Error::NotReady => {
                f.write_str("BME280 did not become ready (not initialised, or busy)")
            }
            Error::InvalidData => {
                f.write_str("BME280 returned a skipped sample; check the oversampling settings")
            }
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// Measurement mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One measurement per [`Bme280::measure`], sleeping in between (Bosch's recommendation
    /// for weather monitoring).
    Forced,
    /// Continuous measurement with 1000 ms standby; `measure` reads the latest result.
    Normal,
}

/// Sensor settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Measurement mode.
    pub mode: Mode,
    /// Oversampling for temperature, pressure and humidity: 1, 2, 4, 8 or 16 (other values
    /// are rounded up to the next supported one; 0 is treated as 1).
    pub oversampling: u8,
    /// IIR filter coefficient: 0 (off), 2, 4, 8 or 16 (others rounded up).
    pub iir_filter: u8,
}

impl Default for Settings {
    /// Bosch's "weather monitoring" use case: forced mode, ×1 oversampling, filter off.
    fn default() -> Self {
        Self {
            mode: Mode::Forced,
            oversampling: 1,
            iir_filter: 0,
        }
    }
}

/// Register code (osrs_x bits) for an oversampling factor.
pub fn oversampling_bits(factor: u8) -> u8 {
    match factor {
        0..=1 => 0b001,
        2 => 0b010,
        3..=4 => 0b011,
        5..=8 => 0b100,
        _ => 0b101,
    }
}

/// Register code (filter bits) for an IIR coefficient.
pub fn filter_bits(coefficient: u8) -> u8 {
    match coefficient {
        0 => 0b000,
        1..=2 => 0b001,
        3..=4 => 0b010,
        5..=8 => 0b011,
        _ => 0b100,
    }
}

/// Maximum measurement time in µs for an oversampling register code (datasheet 9.1):
/// 1.25 + 2.3·T + (2.3·P + 0.575) + (2.3·H + 0.575) ms, all three at the same oversampling.
pub fn max_measurement_time_us(osrs_bits: u8) -> u32 {
    let n: u32 = match osrs_bits {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        4 => 8,
        _ => 16,
    };
    1_250 + 2_300 * n + (2_300 * n + 575) + (2_300 * n + 575)
}

/// A compensated measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Air temperature, °C (0.01 °C resolution).
    pub temperature_c: f64,
    /// Station pressure, hPa.
    pub pressure_hpa: f64,
    /// Relative humidity, % (0..=100).
    pub humidity_pct: f64,
}

/// Raw ADC values of one measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Raw {
    /// 20-bit temperature.
    pub adc_t: i32,
    /// 20-bit pressure.
    pub adc_p: i32,
    /// 16-bit humidity.
    pub adc_h: i32,
}

impl Raw {
    /// Unpack the 8-byte burst 0xF7..=0xFE.
    pub fn from_registers(d: &[u8; 8]) -> Self {
        let b = |i: usize| i32::from(d[i]);
        Self {
            adc_p: (b(0) << 12) | (b(1) << 4) | (b(2) >> 4),
            adc_t: (b(3) << 12) | (b(4) << 4) | (b(5) >> 4),
            adc_h: (b(6) << 8) | b(7),
        }
    }

    /// Pack into the 8-byte burst 0xF7..=0xFE (for the simulator).
    pub fn to_registers(&self) -> [u8; 8] {
        let (p, t, h) = (self.adc_p, self.adc_t, self.adc_h);
        [
            (p >> 12) as u8,
            (p >> 4) as u8,
            ((p & 0x0F) << 4) as u8,
            (t >> 12) as u8,
            (t >> 4) as u8,
            ((t & 0x0F) << 4) as u8,
            (h >> 8) as u8,
            h as u8,
        ]
    }
}

/// Factory calibration (trimming) parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)] // dig_* names are the datasheet's (table 16).
pub struct Calibration {
    pub dig_t1: u16,
    pub dig_t2: i16,
    pub dig_t3: i16,
    pub dig_p1: u16,
    pub dig_p2: i16,
    pub dig_p3: i16,
    pub dig_p4: i16,
    pub dig_p5: i16,
    pub dig_p6: i16,
    pub dig_p7: i16,
    pub dig_p8: i16,
    pub dig_p9: i16,
    pub dig_h1: u8,
    pub dig_h2: i16,
    pub dig_h3: u8,
    /// 12-bit signed.
    pub dig_h4: i16,
    /// 12-bit signed.
    pub dig_h5: i16,
    pub dig_h6: i8,
}

impl Calibration {
    /// Decode the blocks read from 0x88..=0xA1 and 0xE1..=0xE7.
    pub fn from_registers(block1: &[u8; 26], block2: &[u8; 7]) -> Self {
        let u = |i: usize| u16::from_le_bytes([block1[i], block1[i + 1]]);
        let s = |i: usize| i16::from_le_bytes([block1[i], block1[i + 1]]);
        // 0xE4/0xE6 hold the signed top 8 bits; 0xE5 holds the low nibbles of H4 and H5.
        let e4 = i16::from(block2[3] as i8);
        let e5 = i16::from(block2[4]);
        let e6 = i16::from(block2[5] as i8);
        Self {
            dig_t1: u(0),
            dig_t2: s(2),
            dig_t3: s(4),
            dig_p1: u(6),
            dig_p2: s(8),
            dig_p3: s(10),
            dig_p4: s(12),
            dig_p5: s(14),
            dig_p6: s(16),
            dig_p7: s(18),
            dig_p8: s(20),
            dig_p9: s(22),
            dig_h1: block1[25],
            dig_h2: i16::from_le_bytes([block2[0], block2[1]]),
            dig_h3: block2[2],
            dig_h4: (e4 << 4) | (e5 & 0x0F),
            dig_h5: (e6 << 4) | (e5 >> 4),
            dig_h6: block2[6] as i8,
        }
    }

    /// Encode back into the two register blocks (the reserved byte 0xA0 reads 0); the
    /// simulator serves these. Exact for H4/H5 within their 12-bit range.
    pub fn to_registers(&self) -> ([u8; 26], [u8; 7]) {
        let mut b1 = [0u8; 26];
        let words: [u16; 12] = [
            self.dig_t1,
            self.dig_t2 as u16,
            self.dig_t3 as u16,
            self.dig_p1,
            self.dig_p2 as u16,
            self.dig_p3 as u16,
            self.dig_p4 as u16,
            self.dig_p5 as u16,
            self.dig_p6 as u16,
            self.dig_p7 as u16,
            self.dig_p8 as u16,
            self.dig_p9 as u16,
        ];
        for (i, w) in words.iter().enumerate() {
            b1[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
        }
        b1[25] = self.dig_h1;
        let h2 = self.dig_h2.to_le_bytes();
        let b2 = [
            h2[0],
            h2[1],
            self.dig_h3,
            (self.dig_h4 >> 4) as u8,
            ((self.dig_h4 & 0x0F) as u8) | (((self.dig_h5 & 0x0F) as u8) << 4),
            (self.dig_h5 >> 4) as u8,
            self.dig_h6 as u8,
        ];
        (b1, b2)
    }

    /// The worked example's trimming values: T and P from the Bosch BMP280 datasheet
    /// (BST-BMP280-DS001, section 3.12, table "Compensation formula"; the BME280 uses the
    /// identical T/P formulas), and humidity values typical of a production BME280 (the
    /// BME280 datasheet gives no humidity example).
    pub fn datasheet_example() -> Self {
        Self {
            dig_t1: 27504,
            dig_t2: 26435,
            dig_t3: -1000,
            dig_p1: 36477,
            dig_p2: -10685,
            dig_p3: 3024,
            dig_p4: 2855,
            dig_p5: 140,
            dig_p6: -7,
            dig_p7: 15500,
            dig_p8: -14600,
            dig_p9: 6000,
            dig_h1: 75,
            dig_h2: 362,
            dig_h3: 0,
            dig_h4: 313,
            dig_h5: 50,
            dig_h6: 30,
        }
    }
}

/// `t_fine` and temperature in 0.01 °C (datasheet 4.2.3, 32-bit formula, computed in i64 so
/// that arbitrary inputs cannot overflow).
fn compensate_t(adc_t: i32, c: &Calibration) -> (i64, i64) {
    let adc_t = i64::from(adc_t);
    let t1 = i64::from(c.dig_t1);
    let var1 = (((adc_t >> 3) - (t1 << 1)) * i64::from(c.dig_t2)) >> 11;
    let d = (adc_t >> 4) - t1;
    let var2 = (((d * d) >> 12) * i64::from(c.dig_t3)) >> 14;
    let t_fine = var1 + var2;
    (t_fine, (t_fine * 5 + 128) >> 8)
}

/// Pressure in Pa as Q24.8 (datasheet 4.2.3, 64-bit formula; wrapping arithmetic so that
/// garbage calibration cannot panic).
fn compensate_p(adc_p: i32, t_fine: i64, c: &Calibration) -> i64 {
    let mut var1 = t_fine.wrapping_sub(128_000);
    let mut var2 = var1.wrapping_mul(var1).wrapping_mul(i64::from(c.dig_p6));
    var2 = var2.wrapping_add(var1.wrapping_mul(i64::from(c.dig_p5)).wrapping_shl(17));
    var2 = var2.wrapping_add(i64::from(c.dig_p4).wrapping_shl(35));
    var1 = (var1.wrapping_mul(var1).wrapping_mul(i64::from(c.dig_p3)) >> 8)
        .wrapping_add(var1.wrapping_mul(i64::from(c.dig_p2)).wrapping_shl(12));
    var1 = ((1i64 << 47).wrapping_add(var1)).wrapping_mul(i64::from(c.dig_p1)) >> 33;
    if var1 == 0 {
        return 0;
    }
    let mut p: i64 = 1_048_576 - i64::from(adc_p);
    p = (p.wrapping_shl(31).wrapping_sub(var2))
        .wrapping_mul(3125)
        .wrapping_div(var1);
    let var1 = i64::from(c.dig_p9)
        .wrapping_mul(p >> 13)
        .wrapping_mul(p >> 13)
        >> 25;
    let var2 = i64::from(c.dig_p8).wrapping_mul(p) >> 19;
    (p.wrapping_add(var1).wrapping_add(var2) >> 8).wrapping_add(i64::from(c.dig_p7) << 4)
}

/// Humidity in %RH as Q22.10 (datasheet 4.2.3, 32-bit formula, computed in i64).
fn compensate_h(adc_h: i32, t_fine: i64, c: &Calibration) -> i64 {
    let x = t_fine.wrapping_sub(76_800);
    let h = i64::from(adc_h);
    let a = ((h << 14) - (i64::from(c.dig_h4) << 20))
        .wrapping_sub(i64::from(c.dig_h5).wrapping_mul(x))
        .wrapping_add(16_384)
        >> 15;
    let b = ((x.wrapping_mul(i64::from(c.dig_h6)) >> 10)
        .wrapping_mul((x.wrapping_mul(i64::from(c.dig_h3)) >> 11).wrapping_add(32_768))
        >> 10)
        .wrapping_add(2_097_152)
        .wrapping_mul(i64::from(c.dig_h2))
        .wrapping_add(8_192)
        >> 14;
    let mut v = a.wrapping_mul(b);
    v = v.wrapping_sub(
        ((((v >> 15).wrapping_mul(v >> 15)) >> 7).wrapping_mul(i64::from(c.dig_h1))) >> 4,
    );
    v.clamp(0, 419_430_400) >> 12
}

/// Compensate raw values with the datasheet's integer formulas (temperature first: its
/// `t_fine` feeds pressure and humidity).
pub fn compensate(raw: Raw, cal: &Calibration) -> Measurement {
    let (t_fine, t_centi) = compensate_t(raw.adc_t, cal);
    let p_q24_8 = compensate_p(raw.adc_p, t_fine, cal);
    let h_q22_10 = compensate_h(raw.adc_h, t_fine, cal);
    Measurement {
        temperature_c: t_centi as f64 / 100.0,
        pressure_hpa: p_q24_8 as f64 / 25_600.0,
        humidity_pct: h_q22_10 as f64 / 1024.0,
    }
}

/// BME280 on an I2C bus.
#[derive(Debug)]
pub struct Bme280<I2C> {
    i2c: I2C,
    address: u8,
    calibration: Option<Calibration>,
    ctrl_meas: u8,
    mode: Mode,
}

impl<I2C: I2c> Bme280<I2C> {
    /// Take ownership of the bus; nothing is sent until [`Bme280::init`].
    pub fn new(i2c: I2C, address: u8) -> Self {
        Self {
            i2c,
            address,
            calibration: None,
            ctrl_meas: 0,
            mode: Mode::Forced,
        }
    }

    /// Check the chip id, soft-reset, wait for the NVM copy, read the calibration and write
    /// ctrl_hum, config and ctrl_meas (in that order: ctrl_hum only takes effect after a
    /// ctrl_meas write).
    pub fn init<D: DelayNs>(
        &mut self,
        delay: &mut D,
        settings: Settings,
    ) -> Result<(), Error<I2C::Error>> {
        match self.read_u8(Register::ID)? {
            Register::CHIP_ID_BME280 => {}
            Register::CHIP_ID_BMP280 => return Err(Error::Bmp280),
            other => return Err(Error::UnknownChip(other)),
        }
        self.write(Register::RESET, Register::RESET_COMMAND)?;
        delay.delay_us(STARTUP_US);
        self.wait_status_clear(Register::STATUS_IM_UPDATE, delay)?;

        let mut block1 = [0u8; 26];
        self.i2c
            .write_read(self.address, &[Register::CALIB_00], &mut block1)
            .map_err(Error::Bus)?;
        let mut block2 = [0u8; 7];
        self.i2c
            .write_read(self.address, &[Register::CALIB_26], &mut block2)
            .map_err(Error::Bus)?;
        let calibration = Calibration::from_registers(&block1, &block2);

        let osrs = oversampling_bits(settings.oversampling);
        let (mode_bits, standby) = match settings.mode {
            Mode::Forced => (Register::MODE_SLEEP, 0),
            Mode::Normal => (Register::MODE_NORMAL, Register::STANDBY_1000_MS),
        };
        self.write(Register::CTRL_HUM, osrs)?;
        self.write(
            Register::CONFIG,
            (standby << 5) | (filter_bits(settings.iir_filter) << 2),
        )?;
        let ctrl_meas = (osrs << 5) | (osrs << 2);
        self.write(Register::CTRL_MEAS, ctrl_meas | mode_bits)?;

        self.ctrl_meas = ctrl_meas;
        self.mode = settings.mode;
        self.calibration = Some(calibration);
        Ok(())
    }

    /// Take one measurement. In forced mode: trigger via ctrl_meas, wait the maximum
    /// measurement time, poll the status "measuring" bit, then burst-read 0xF7..=0xFE. In
    /// normal mode: read the latest result.
    pub fn measure<D: DelayNs>(&mut self, delay: &mut D) -> Result<Measurement, Error<I2C::Error>> {
        let cal = self.calibration.ok_or(Error::NotReady)?;
        if self.mode == Mode::Forced {
            self.write(Register::CTRL_MEAS, self.ctrl_meas | Register::MODE_FORCED)?;
            delay.delay_us(max_measurement_time_us(self.ctrl_meas >> 5));
            self.wait_status_clear(Register::STATUS_MEASURING, delay)?;
        }
        let mut data = [0u8; 8];
        self.i2c
            .write_read(self.address, &[Register::DATA], &mut data)
            .map_err(Error::Bus)?;
        let raw = Raw::from_registers(&data);
        if raw.adc_t == Register::SKIPPED_20BIT
            || raw.adc_p == Register::SKIPPED_20BIT
            || raw.adc_h == Register::SKIPPED_16BIT
        {
            return Err(Error::InvalidData);
        }
        Ok(compensate(raw, &cal))
    }

    /// The calibration read by [`Bme280::init`].
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// Release the bus.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    fn read_u8(&mut self, reg: u8) -> Result<u8, Error<I2C::Error>> {
        let mut b = [0u8; 1];
        self.i2c
            .write_read(self.address, &[reg], &mut b)
            .map_err(Error::Bus)?;
        Ok(b[0])
    }

    fn write(&mut self, reg: u8, value: u8) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write(self.address, &[reg, value])
            .map_err(Error::Bus)
    }

    fn wait_status_clear<D: DelayNs>(
        &mut self,
        mask: u8,
        delay: &mut D,
    ) -> Result<(), Error<I2C::Error>> {
        for _ in 0..MAX_POLLS {
            if self.read_u8(Register::STATUS)? & mask == 0 {
                return Ok(());
            }
            delay.delay_us(POLL_INTERVAL_US);
        }
        Err(Error::NotReady)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BMP280 datasheet worked example: adc_T = 519888, adc_P = 415148.
    const EXAMPLE: Raw = Raw {
        adc_t: 519_888,
        adc_p: 415_148,
        adc_h: 30_000,
    };

    #[test]
    fn datasheet_example_temperature_and_pressure() {
        let cal = Calibration::datasheet_example();
        let (t_fine, t) = compensate_t(EXAMPLE.adc_t, &cal);
        // Datasheet: t_fine = 128422 (float) → T = 25.08 °C.
        assert_eq!(t, 2508);
        assert!((t_fine - 128_422).abs() <= 1, "{t_fine}");
        // The datasheet's table gives 100653.27 Pa from the floating-point formula with the
        // fractional t_fine 128422.2869; the 64-bit integer formula with the integer t_fine
        // gives 25767233 / 256 = 100653.254 Pa (checked by hand with C integer semantics,
        // and the float formula with t_fine = 128422 gives 100653.258 Pa).
        assert_eq!(compensate_p(EXAMPLE.adc_p, t_fine, &cal), 25_767_233);
        let m = compensate(EXAMPLE, &cal);
        assert_eq!(m.temperature_c, 25.08);
        assert!(
            (m.pressure_hpa - 1_006.532_539).abs() < 1e-6,
            "{}",
            m.pressure_hpa
        );
    }

    /// The datasheet's double-precision humidity formula (section 8.1), as an independent
    /// check of the integer one.
    fn humidity_float(adc_h: i32, t_fine: i64, c: &Calibration) -> f64 {
        let mut h = t_fine as f64 - 76_800.0;
        h = (adc_h as f64 - (c.dig_h4 as f64 * 64.0 + c.dig_h5 as f64 / 16_384.0 * h))
            * (c.dig_h2 as f64 / 65_536.0
                * (1.0
                    + c.dig_h6 as f64 / 67_108_864.0
                        * h
                        * (1.0 + c.dig_h3 as f64 / 67_108_864.0 * h)));
        h *= 1.0 - c.dig_h1 as f64 * h / 524_288.0;
        h.clamp(0.0, 100.0)
    }

    #[test]
    fn humidity_integer_matches_float_formula() {
        let cal = Calibration::datasheet_example();
        let (t_fine, _) = compensate_t(EXAMPLE.adc_t, &cal);
        for adc_h in [22_000, 26_000, 30_000, 34_000, 38_000, 42_000] {
            let int = compensate_h(adc_h, t_fine, &cal) as f64 / 1024.0;
            let float = humidity_float(adc_h, t_fine, &cal);
            assert!((int - float).abs() < 0.01, "{adc_h}: {int} vs {float}");
        }
        let m = compensate(EXAMPLE, &cal);
        // Float formula (computed independently): 55.0007 %; integer: 56317 / 1024 = 54.997 %.
        assert_eq!(m.humidity_pct, 56_317.0 / 1024.0);
    }

    #[test]
    fn humidity_is_clamped() {
        let cal = Calibration::datasheet_example();
        let lo = compensate(
            Raw {
                adc_h: 0,
                ..EXAMPLE
            },
            &cal,
        );
        let hi = compensate(
            Raw {
                adc_h: 0xFFFF,
                ..EXAMPLE
            },
            &cal,
        );
        assert_eq!(lo.humidity_pct, 0.0);
        assert_eq!(hi.humidity_pct, 100.0);
    }

    #[test]
    fn temperature_is_monotonic() {
        let cal = Calibration::datasheet_example();
        let mut prev = f64::NEG_INFINITY;
        // −40..85 °C spans roughly adc_t 250000..750000 for these coefficients.
        let mut adc = 200_000;
        while adc < 800_000 {
            let t = compensate(
                Raw {
                    adc_t: adc,
                    ..EXAMPLE
                },
                &cal,
            )
            .temperature_c;
            assert!(t >= prev, "adc_t {adc}: {t} < {prev}");
            prev = t;
            adc += 37;
        }
    }

    #[test]
    fn calibration_round_trips_registers() {
        let cal = Calibration::datasheet_example();
        let (b1, b2) = cal.to_registers();
        assert_eq!(Calibration::from_registers(&b1, &b2), cal);
        let neg = Calibration {
            dig_h4: -300,
            dig_h5: -5,
            dig_h6: -7,
            ..cal
        };
        let (b1, b2) = neg.to_registers();
        assert_eq!(Calibration::from_registers(&b1, &b2), neg);
        // T1 = 27504 = 0x6B70, little endian at 0x88.
        assert_eq!(&b1[..2], &[0x70, 0x6B]);
    }

    #[test]
    fn raw_round_trips_registers() {
        let regs = EXAMPLE.to_registers();
        assert_eq!(Raw::from_registers(&regs), EXAMPLE);
    }

    #[test]
    fn register_codes() {
        assert_eq!(oversampling_bits(1), 1);
        assert_eq!(oversampling_bits(16), 5);
        assert_eq!(oversampling_bits(3), 3);
        assert_eq!(filter_bits(0), 0);
        assert_eq!(filter_bits(16), 4);
        // ×1: 1.25 + 2.3 + 2.875 + 2.875 = 9.3 ms.
        assert_eq!(max_measurement_time_us(1), 9_300);
    }
}
