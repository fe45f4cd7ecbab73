//! Sensirion SCD41 photoacoustic CO2 sensor (with temperature and humidity) over I2C, fixed
//! address `0x62`.
//!
//! # Protocol (SCD4x datasheet, "Sensor communication")
//!
//! Every command is a 16-bit word, big-endian. Data words travel as two bytes followed by
//! the Sensirion CRC-8 of those two bytes (polynomial 0x31, initial value 0xFF, no
//! reflection, no final XOR; the datasheet's example: 0xBEEF gives 0x92). A read sends the
//! command, waits the command's execution time and reads the words back.
//!
//! * **Periodic mode**: `start_periodic_measurement` (0x21B1), then a new value every 5 s;
//!   `get_data_ready_status` (0xE4B8) and `read_measurement` (0xEC05: CO2 ppm, temperature
//!   −45 + 175·w/65535 °C, humidity 100·w/65535 %). `stop_periodic_measurement` (0x3F86)
//!   takes 500 ms, and most settings need it stopped.
//! * **Single shot** (SCD41 only): `measure_single_shot` (0x219D) takes 5 s, then
//!   `read_measurement`. Between shots the sensor idles at about 0.5 mA: the low-power
//!   mode of a buoy.
//! * **Compensation**: `set_ambient_pressure` (0xE000, hPa; allowed while measuring)
//!   from the barometer, `set_temperature_offset` (0x241D, w = offset·65535/175): the
//!   sensor's own heat, 4 °C by default.
//! * **Forced recalibration** (0x362F, target ppm; 400 ms): after 3 minutes in air of a
//!   known concentration (outdoors ≈ 420 ppm), measuring, then stopped. The answer is the
//!   correction + 0x8000, 0xFFFF when it failed.
//!
//! # Hardware guide
//!
//! VDD 3.3 V (2.4–5.5 V), GND, SDA GPIO 2 (pin 3), SCL GPIO 3 (pin 5). Keep the sensor
//! in a vented, shaded housing: it measures the air it sits in.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// The only I2C address.
pub const ADDRESS: u8 = 0x62;

/// Command words.
pub struct Register;

impl Register {
    /// Start periodic measurement (a value every 5 s).
    pub const START_PERIODIC: u16 = 0x21B1;
    /// Read the last measurement (3 words).
    pub const READ_MEASUREMENT: u16 = 0xEC05;
    /// Stop periodic measurement (500 ms).
    pub const STOP_PERIODIC: u16 = 0x3F86;
    /// Set the temperature offset.
    pub const SET_TEMPERATURE_OFFSET: u16 = 0x241D;
    /// Read the temperature offset.
    pub const GET_TEMPERATURE_OFFSET: u16 = 0x2318;
    /// Set the ambient pressure (hPa).
    pub const SET_AMBIENT_PRESSURE: u16 = 0xE000;
    /// Forced recalibration (target ppm).
    pub const FORCED_RECALIBRATION: u16 = 0x362F;
    /// Data-ready status.
    pub const DATA_READY: u16 = 0xE4B8;
    /// Serial number (3 words).
    pub const SERIAL_NUMBER: u16 = 0x3682;
    /// Single-shot measurement (SCD41; 5 s).
    pub const MEASURE_SINGLE_SHOT: u16 = 0x219D;
}

/// Execution times, ms.
pub struct Wait;

impl Wait {
    /// `read_measurement`, settings, data ready, serial number.
    pub const COMMAND_MS: u32 = 1;
    /// `stop_periodic_measurement`.
    pub const STOP_MS: u32 = 500;
    /// `perform_forced_recalibration`.
    pub const FRC_MS: u32 = 400;
    /// `measure_single_shot`.
    pub const SINGLE_SHOT_MS: u32 = 5000;
}

/// The Sensirion CRC-8 of a data word (polynomial 0x31, init 0xFF).
pub fn crc8(data: &[u8]) -> u8 {
    let mut crc: u8 = 0xFF;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x31
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// CO2, ppm.
    pub co2_ppm: u16,
    /// Temperature, °C.
    pub temperature_c: f64,
    /// Relative humidity, %.
    pub humidity_pct: f64,
}

/// Decode the three words of `read_measurement`.
pub fn decode_measurement(words: [u16; 3]) -> Measurement {
    Measurement {
        co2_ppm: words[0],
        temperature_c: -45.0 + 175.0 * f64::from(words[1]) / 65535.0,
        humidity_pct: 100.0 * f64::from(words[2]) / 65535.0,
    }
}

/// The word of a temperature offset (°C, 0–175), as `set_temperature_offset` takes it.
pub fn temperature_offset_word(offset_c: f64) -> Option<u16> {
    // no_std has no `f64::round`: add a half and truncate (the value is not negative).
    let w = offset_c * 65535.0 / 175.0 + 0.5;
    (offset_c.is_finite() && (0.5..65536.0).contains(&w)).then_some(w as u16)
}

/// SCD41 errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// A word's CRC did not match.
    Crc,
    /// The sensor had no new measurement (CO2 word 0 right after start).
    NotReady,
    /// Forced recalibration failed (0xFFFF): it needs 3 minutes of periodic measurement
    /// first.
    RecalibrationFailed,
    /// An argument outside what the command takes.
    InvalidArgument,
}

impl<E: embedded_hal::i2c::Error> Error<E> {
    /// True when nothing acknowledged 0x62.
    pub fn is_no_device(&self) -> bool {
        matches!(self, Error::Bus(e) if crate::is_no_ack(e))
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "SCD41 I2C bus error: {e:?}"),
            Error::Crc => f.write_str("SCD41 data failed its CRC check (wiring or noise)"),
            Error::NotReady => f.write_str("SCD41 had no measurement ready yet"),
            Error::RecalibrationFailed => f.write_str(
                "SCD41 forced recalibration failed: run it in periodic mode for 3 minutes in air of the known concentration first",
            ),
            Error::InvalidArgument => f.write_str("SCD41 argument out of range"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// SCD41 on an I2C bus.
#[derive(Debug)]
pub struct Scd41<I2C> {
    i2c: I2C,
}

impl<I2C: I2c> Scd41<I2C> {
    /// Take ownership of the bus.
    pub fn new(i2c: I2C) -> Self {
        Self { i2c }
    }

    fn send(&mut self, command: u16) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write(ADDRESS, &command.to_be_bytes())
            .map_err(Error::Bus)
    }

    fn send_word(&mut self, command: u16, word: u16) -> Result<(), Error<I2C::Error>> {
        let [c0, c1] = command.to_be_bytes();
        let [w0, w1] = word.to_be_bytes();
        self.i2c
            .write(ADDRESS, &[c0, c1, w0, w1, crc8(&[w0, w1])])
            .map_err(Error::Bus)
    }

    fn read_words<const N: usize, D: DelayNs>(
        &mut self,
        command: u16,
        wait_ms: u32,
        d: &mut D,
    ) -> Result<[u16; N], Error<I2C::Error>> {
        self.send(command)?;
        d.delay_ms(wait_ms);
        self.read_back(d)
    }

    fn read_back<const N: usize, D: DelayNs>(
        &mut self,
        _d: &mut D,
    ) -> Result<[u16; N], Error<I2C::Error>> {
        let mut buf = [0u8; 9];
        let raw = buf.get_mut(..N * 3).ok_or(Error::InvalidArgument)?;
        self.i2c.read(ADDRESS, raw).map_err(Error::Bus)?;
        let mut words = [0u16; N];
        for (i, chunk) in raw.chunks_exact(3).enumerate() {
            if crc8(&chunk[..2]) != chunk[2] {
                return Err(Error::Crc);
            }
            words[i] = u16::from_be_bytes([chunk[0], chunk[1]]);
        }
        Ok(words)
    }

    /// Start periodic measurement (the first value comes after 5 s).
    pub fn start_periodic(&mut self) -> Result<(), Error<I2C::Error>> {
        self.send(Register::START_PERIODIC)
    }

    /// Stop periodic measurement (waits the 500 ms it takes).
    pub fn stop_periodic<D: DelayNs>(&mut self, d: &mut D) -> Result<(), Error<I2C::Error>> {
        self.send(Register::STOP_PERIODIC)?;
        d.delay_ms(Wait::STOP_MS);
        Ok(())
    }

    /// True when a new measurement is ready (data-ready status: any of the low 11 bits).
    pub fn data_ready<D: DelayNs>(&mut self, d: &mut D) -> Result<bool, Error<I2C::Error>> {
        let [w] = self.read_words::<1, D>(Register::DATA_READY, Wait::COMMAND_MS, d)?;
        Ok(w & 0x07FF != 0)
    }

    /// Read the last measurement.
    pub fn read_measurement<D: DelayNs>(
        &mut self,
        d: &mut D,
    ) -> Result<Measurement, Error<I2C::Error>> {
        let words = self.read_words::<3, D>(Register::READ_MEASUREMENT, Wait::COMMAND_MS, d)?;
        if words[0] == 0 {
            return Err(Error::NotReady);
        }
        Ok(decode_measurement(words))
    }

    /// One single-shot measurement (SCD41): 5 s, then the reading.
    pub fn measure_single_shot<D: DelayNs>(
        &mut self,
        d: &mut D,
    ) -> Result<Measurement, Error<I2C::Error>> {
        self.send(Register::MEASURE_SINGLE_SHOT)?;
        d.delay_ms(Wait::SINGLE_SHOT_MS);
        self.read_measurement(d)
    }

    /// Ambient pressure compensation, hPa (700–1200; allowed while measuring).
    pub fn set_ambient_pressure<D: DelayNs>(
        &mut self,
        hpa: f64,
        d: &mut D,
    ) -> Result<(), Error<I2C::Error>> {
        if !(700.0..=1200.0).contains(&hpa) {
            return Err(Error::InvalidArgument);
        }
        self.send_word(Register::SET_AMBIENT_PRESSURE, (hpa + 0.5) as u16)?;
        d.delay_ms(Wait::COMMAND_MS);
        Ok(())
    }

    /// Temperature offset, °C (periodic measurement stopped).
    pub fn set_temperature_offset<D: DelayNs>(
        &mut self,
        offset_c: f64,
        d: &mut D,
    ) -> Result<(), Error<I2C::Error>> {
        let w = temperature_offset_word(offset_c).ok_or(Error::InvalidArgument)?;
        self.send_word(Register::SET_TEMPERATURE_OFFSET, w)?;
        d.delay_ms(Wait::COMMAND_MS);
        Ok(())
    }

    /// Forced recalibration to `target_ppm` (periodic measurement stopped, after 3 minutes
    /// of it in air of that concentration). Returns the correction applied, ppm.
    pub fn forced_recalibration<D: DelayNs>(
        &mut self,
        target_ppm: u16,
        d: &mut D,
    ) -> Result<i32, Error<I2C::Error>> {
        self.send_word(Register::FORCED_RECALIBRATION, target_ppm)?;
        d.delay_ms(Wait::FRC_MS);
        let [w] = self.read_back::<1, D>(d)?;
        if w == 0xFFFF {
            return Err(Error::RecalibrationFailed);
        }
        Ok(i32::from(w) - 0x8000)
    }

    /// The 48-bit serial number.
    pub fn serial_number<D: DelayNs>(&mut self, d: &mut D) -> Result<u64, Error<I2C::Error>> {
        let w = self.read_words::<3, D>(Register::SERIAL_NUMBER, Wait::COMMAND_MS, d)?;
        Ok((u64::from(w[0]) << 32) | (u64::from(w[1]) << 16) | u64::from(w[2]))
    }

    /// Release the bus.
    pub fn destroy(self) -> I2C {
        self.i2c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_datasheet_example() {
        assert_eq!(crc8(&[0xBE, 0xEF]), 0x92);
    }

    #[test]
    fn measurement_datasheet_example() {
        // read_measurement example: 0x01F4, 0x6667, 0x5EB9 → 500 ppm, 25 °C, 37 %.
        let m = decode_measurement([0x01F4, 0x6667, 0x5EB9]);
        assert_eq!(m.co2_ppm, 500);
        assert!((m.temperature_c - 25.0).abs() < 0.01, "{m:?}");
        assert!((m.humidity_pct - 37.0).abs() < 0.01, "{m:?}");
        // set_temperature_offset example: 5.4 °C → 0x07E6.
        assert_eq!(temperature_offset_word(5.4), Some(0x07E6));
        assert_eq!(temperature_offset_word(-1.0), None);
    }
}
