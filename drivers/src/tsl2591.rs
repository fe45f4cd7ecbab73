//! ams TSL2591 light-to-digital converter over I2C: illuminance in lux, with gain and
//! integration time chosen automatically (one of the build-your-own weather station guide's
//! extras).
//!
//! # Hardware guide
//!
//! One fixed address, [`ADDRESS`] `0x29` (`i2cdetect -y 1` shows `29`); VDD 3.3 V. The id
//! register reads [`CHIP_ID`] `0x50`.
//!
//! # Protocol (ams TSL2591 datasheet DS000338, "Register set")
//!
//! Every access starts with a command byte `0xA0 | register` (CMD bit 7, normal
//! transaction bits 6–5 = 01). ENABLE (0x00) has PON (bit 0) and AEN (bit 1); CONTROL (0x01)
//! has AGAIN (bits 5–4: low 1×, medium 24.5×, high 400×, maximum 9200× typical) and ATIME
//! (bits 2–0: 100–600 ms); STATUS (0x13) bit 0 AVALID says an integration has completed;
//! C0DATAL..C1DATAH (0x14–0x17) hold the full-spectrum (CH0) and infrared (CH1) counts,
//! little-endian. The largest count is 36863 at 100 ms and 65535 from 200 ms.
//!
//! A measurement turns the ALS off, writes CONTROL, turns it on (so a whole integration
//! at the new settings follows), waits the integration time, polls AVALID a bounded number
//! of times and reads the four data bytes in one transaction.
//!
//! # Lux and auto-ranging
//!
//! The datasheet gives no lux equation; ams's lux coefficients (as in its application
//! notes) are counts per lux CPL = ATIME_ms · AGAIN / 408 and
//! lux = (CH0 − CH1) · (1 − CH1/CH0) / CPL ([`lux`]). [`Tsl2591::measure_auto`] steps the
//! gain down when a channel is within 10 % of saturation and up when CH0 is below 1 % of
//! full scale, and returns [`Error::Saturated`] when even the lowest gain and shortest time
//! saturate (direct sun on an unfiltered sensor can).

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Registers and bits (datasheet "Register set").
pub struct Register;

impl Register {
    /// Command bit and normal transaction: OR with the register address.
    pub const COMMAND: u8 = 0xA0;
    /// ENABLE.
    pub const ENABLE: u8 = 0x00;
    /// CONTROL (gain, integration time, reset).
    pub const CONTROL: u8 = 0x01;
    /// Device id.
    pub const ID: u8 = 0x12;
    /// STATUS.
    pub const STATUS: u8 = 0x13;
    /// First data byte (C0DATAL).
    pub const C0DATAL: u8 = 0x14;
    /// ENABLE: power on.
    pub const PON: u8 = 0x01;
    /// ENABLE: ALS enable.
    pub const AEN: u8 = 0x02;
    /// STATUS: ALS valid.
    pub const AVALID: u8 = 0x01;
}

/// The TSL2591's only I2C address.
pub const ADDRESS: u8 = 0x29;
/// What the id register reads.
pub const CHIP_ID: u8 = 0x50;
/// Device factor of ams's lux coefficients.
pub const LUX_DF: f64 = 408.0;
/// Polls of AVALID after the integration time before [`Error::NotReady`].
pub const MAX_POLLS: u32 = 10;
const POLL_INTERVAL_US: u32 = 10_000;
/// Margin added to the integration time before the first status read, µs.
const SETTLE_US: u32 = 10_000;

/// Analog gain (CONTROL bits 5–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gain {
    /// 1×.
    Low,
    /// 24.5× typical.
    Medium,
    /// 400× typical.
    High,
    /// 9200× typical (CH0).
    Max,
}

impl Gain {
    /// Typical gain relative to low (datasheet "Gain scaling").
    pub fn factor(self) -> f64 {
        match self {
            Gain::Low => 1.0,
            Gain::Medium => 24.5,
            Gain::High => 400.0,
            Gain::Max => 9200.0,
        }
    }

    fn bits(self) -> u8 {
        (self as u8) << 4
    }

    fn from_bits(control: u8) -> Gain {
        match (control >> 4) & 0b11 {
            0 => Gain::Low,
            1 => Gain::Medium,
            2 => Gain::High,
            _ => Gain::Max,
        }
    }

    fn down(self) -> Option<Gain> {
        match self {
            Gain::Low => None,
            Gain::Medium => Some(Gain::Low),
            Gain::High => Some(Gain::Medium),
            Gain::Max => Some(Gain::High),
        }
    }

    fn up(self) -> Option<Gain> {
        match self {
            Gain::Low => Some(Gain::Medium),
            Gain::Medium => Some(Gain::High),
            Gain::High => Some(Gain::Max),
            Gain::Max => None,
        }
    }
}

/// Integration time, 100–600 ms (CONTROL bits 2–0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrationTime(u8);

impl IntegrationTime {
    /// 100 ms · (1 + `steps`), `steps` 0–5; `None` otherwise.
    pub fn from_steps(steps: u8) -> Option<IntegrationTime> {
        (steps <= 5).then_some(IntegrationTime(steps))
    }

    /// The time for `ms` (100, 200, …, 600).
    pub fn from_ms(ms: u32) -> Option<IntegrationTime> {
        if ms % 100 != 0 || !(100..=600).contains(&ms) {
            return None;
        }
        Some(IntegrationTime((ms / 100 - 1) as u8))
    }

    /// Milliseconds.
    pub fn ms(self) -> u32 {
        100 * (u32::from(self.0) + 1)
    }

    /// The largest count at this time: 36863 at 100 ms, 65535 above.
    pub fn max_count(self) -> u16 {
        if self.0 == 0 {
            36_863
        } else {
            65_535
        }
    }
}

/// The CONTROL byte for `gain` and `time`.
pub fn control(gain: Gain, time: IntegrationTime) -> u8 {
    gain.bits() | time.0
}

/// Settings encoded in a CONTROL byte.
pub fn settings_of(control: u8) -> (Gain, IntegrationTime) {
    (
        Gain::from_bits(control),
        IntegrationTime((control & 0b111).min(5)),
    )
}

/// Counts per lux at these settings: ATIME_ms · AGAIN / 408.
pub fn counts_per_lux(gain: Gain, time: IntegrationTime) -> f64 {
    f64::from(time.ms()) * gain.factor() / LUX_DF
}

/// Lux from the two channels: (CH0 − CH1) · (1 − CH1/CH0) / CPL; 0 in darkness (CH0 = 0).
/// `None` when CH1 > CH0, which no light gives (a misread or a sensor fault).
pub fn lux(ch0: u16, ch1: u16, gain: Gain, time: IntegrationTime) -> Option<f64> {
    if ch1 > ch0 {
        return None;
    }
    if ch0 == 0 {
        return Some(0.0);
    }
    let (c0, c1) = (f64::from(ch0), f64::from(ch1));
    Some((c0 - c1) * (1.0 - c1 / c0) / counts_per_lux(gain, time))
}

/// TSL2591 driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// The id register did not read 0x50.
    WrongChip(u8),
    /// AVALID stayed 0.
    NotReady,
    /// Saturated at the lowest gain and shortest integration time.
    Saturated,
    /// Infrared counts above full-spectrum counts.
    InvalidData {
        /// CH0 (full spectrum).
        ch0: u16,
        /// CH1 (infrared).
        ch1: u16,
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
            Error::Bus(e) => write!(f, "TSL2591 I2C bus error: {e:?}"),
            Error::WrongChip(id) => {
                write!(f, "the chip at 0x29 has id {id:#04x}, not a TSL2591 (0x50)")
            }
            Error::NotReady => f.write_str("TSL2591 integration did not complete (AVALID 0)"),
            Error::Saturated => f.write_str(
                "TSL2591 saturated at the lowest gain and 100 ms; shade it or add a diffuser",
            ),
            Error::InvalidData { ch0, ch1 } => write!(
                f,
                "TSL2591 infrared count {ch1} above full-spectrum count {ch0}: a misread"
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// One light measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Full-spectrum counts.
    pub ch0: u16,
    /// Infrared counts.
    pub ch1: u16,
    /// Gain used.
    pub gain: Gain,
    /// Integration time used.
    pub time: IntegrationTime,
    /// Illuminance, lx.
    pub lux: f64,
}

/// A TSL2591 on an I2C bus.
pub struct Tsl2591<I2C> {
    i2c: I2C,
    gain: Gain,
    time: IntegrationTime,
}

impl<I2C: I2c> Tsl2591<I2C> {
    /// A driver for the TSL2591 at [`ADDRESS`], starting at medium gain and 100 ms.
    pub fn new(i2c: I2C) -> Self {
        Tsl2591 {
            i2c,
            gain: Gain::Medium,
            time: IntegrationTime(0),
        }
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    /// The settings the next measurement starts from.
    pub fn settings(&self) -> (Gain, IntegrationTime) {
        (self.gain, self.time)
    }

    /// Sets the starting settings.
    pub fn set_settings(&mut self, gain: Gain, time: IntegrationTime) {
        self.gain = gain;
        self.time = time;
    }

    fn write(&mut self, reg: u8, value: u8) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write(ADDRESS, &[Register::COMMAND | reg, value])
            .map_err(Error::Bus)
    }

    fn read(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write_read(ADDRESS, &[Register::COMMAND | reg], buf)
            .map_err(Error::Bus)
    }

    /// Checks the id register.
    pub fn init(&mut self) -> Result<(), Error<I2C::Error>> {
        let mut id = [0u8];
        self.read(Register::ID, &mut id)?;
        if id[0] != CHIP_ID {
            return Err(Error::WrongChip(id[0]));
        }
        Ok(())
    }

    /// One integration at the current settings: (CH0, CH1).
    pub fn read_counts<D: DelayNs>(
        &mut self,
        delay: &mut D,
    ) -> Result<(u16, u16), Error<I2C::Error>> {
        self.write(Register::ENABLE, Register::PON)?;
        self.write(Register::CONTROL, control(self.gain, self.time))?;
        self.write(Register::ENABLE, Register::PON | Register::AEN)?;
        delay.delay_us(self.time.ms() * 1_000 + SETTLE_US);
        let ready = crate::poll_status(
            &mut self.i2c,
            ADDRESS,
            Register::COMMAND | Register::STATUS,
            |s| s & Register::AVALID != 0,
            MAX_POLLS,
            POLL_INTERVAL_US,
            delay,
        )
        .map_err(Error::Bus)?;
        if !ready {
            return Err(Error::NotReady);
        }
        let mut data = [0u8; 4];
        self.read(Register::C0DATAL, &mut data)?;
        Ok((
            u16::from_le_bytes([data[0], data[1]]),
            u16::from_le_bytes([data[2], data[3]]),
        ))
    }

    /// Measures, changing the gain (and at the lowest gain the integration time) until the
    /// counts are in range; the settings found are kept for the next call.
    pub fn measure_auto<D: DelayNs>(
        &mut self,
        delay: &mut D,
    ) -> Result<Measurement, Error<I2C::Error>> {
        // At most one step per gain and time setting, so the loop ends.
        for _ in 0..10 {
            let (ch0, ch1) = self.read_counts(delay)?;
            let full = self.time.max_count();
            let high = u32::from(full) * 9 / 10;
            if u32::from(ch0.max(ch1)) >= high {
                if let Some(g) = self.gain.down() {
                    self.gain = g;
                    continue;
                }
                if self.time.0 > 0 {
                    self.time = IntegrationTime(0);
                    continue;
                }
                return Err(Error::Saturated);
            }
            if u32::from(ch0) < u32::from(full) / 100 {
                if let Some(g) = self.gain.up() {
                    // Only step up when the higher gain cannot saturate on these counts.
                    let scaled = f64::from(ch0) * g.factor() / self.gain.factor();
                    if scaled < f64::from(high) {
                        self.gain = g;
                        continue;
                    }
                }
            }
            let lux = lux(ch0, ch1, self.gain, self.time).ok_or(Error::InvalidData { ch0, ch1 })?;
            return Ok(Measurement {
                ch0,
                ch1,
                gain: self.gain,
                time: self.time,
                lux,
            });
        }
        Err(Error::NotReady)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ams's lux coefficients: at medium gain (24.5×) and 100 ms, CPL = 2450/408 = 6.005;
    /// CH0 = 10000, CH1 = 2000 gives (8000 · 0.8) / 6.005 = 1065.8 lx.
    #[test]
    fn lux_formula() {
        let t = IntegrationTime::from_ms(100).unwrap();
        let cpl = counts_per_lux(Gain::Medium, t);
        assert!((cpl - 2450.0 / 408.0).abs() < 1e-12);
        let l = lux(10_000, 2_000, Gain::Medium, t).unwrap();
        assert!((l - 6400.0 / cpl).abs() < 1e-9, "{l}");
        assert!((l - 1065.8).abs() < 0.05, "{l}");
        assert_eq!(lux(0, 0, Gain::Low, t), Some(0.0));
        assert_eq!(lux(10, 11, Gain::Low, t), None);
        // The same light at 400× and 600 ms gives proportionally more counts, the same lux.
        let t6 = IntegrationTime::from_ms(600).unwrap();
        let k = 400.0 * 6.0 / 24.5;
        let l6 = lux(
            (10_000.0 * k / 100.0) as u16,
            (2_000.0 * k / 100.0) as u16,
            Gain::High,
            t6,
        )
        .unwrap();
        assert!((l6 - l / 100.0).abs() / (l / 100.0) < 0.001, "{l6}");
    }

    /// Datasheet "Control register": AGAIN bits 5–4, ATIME bits 2–0; 100 ms max count 36863.
    #[test]
    fn control_byte_and_times() {
        let t = IntegrationTime::from_ms(300).unwrap();
        assert_eq!(control(Gain::High, t), 0x22);
        assert_eq!(settings_of(0x22), (Gain::High, t));
        assert_eq!(IntegrationTime::from_ms(100).unwrap().max_count(), 36_863);
        assert_eq!(IntegrationTime::from_steps(5).unwrap().ms(), 600);
        assert_eq!(IntegrationTime::from_steps(6), None);
        assert_eq!(IntegrationTime::from_ms(150), None);
        assert_eq!(IntegrationTime::from_ms(700), None);
    }
}
