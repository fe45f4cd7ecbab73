//! TE Connectivity (Measurement Specialties) HTU21D(F) temperature and humidity sensor over
//! I2C — the chip on the Raspberry Pi Oracle Weather Station HAT.
//!
//! # Hardware guide
//!
//! Enable I2C with `dtparam=i2c_arm=on` in `/boot/firmware/config.txt` (or `raspi-config`),
//! wire SDA to GPIO 2 (pin 3), SCL to GPIO 3 (pin 5), VDD to 3.3 V and GND. The chip has one
//! fixed address, [`ADDRESS`] `0x40`, and no address pin: two HTU21Ds need two buses (or a
//! multiplexer). `i2cdetect -y 1` shows `40` when it is there — but only between
//! measurements: while converting it does not acknowledge its address (see below).
//! "Permission denied" on `/dev/i2c-1` means the user is not in the `i2c` group.
//!
//! # Protocol (datasheet HPC199, communication protocol and commands)
//!
//! A measurement is one command byte — `0xF3` temperature, `0xF5` relative humidity ("no hold
//! master") — then a 3-byte read: data MSB, data LSB, CRC. The two lowest bits of the LSB are
//! status bits, not data: they are masked to 0 before conversion (12-bit humidity and 14-bit
//! temperature are left-aligned in the 16-bit word at every resolution).
//!
//! This driver uses only the **no hold master** commands. With the "hold master" commands
//! (`0xE3`/`0xE5`) the sensor stretches the clock for up to 50 ms, which the Raspberry Pi's
//! BCM2835 I2C controller does not handle reliably, and which blocks every other chip on the
//! bus meanwhile. In no-hold mode the sensor simply **does not acknowledge its address while
//! it is converting** (a NACK on the read header); the datasheet tells the master to issue the
//! start condition again until it does. So [`Htu21d::read_raw`] waits the datasheet's maximum
//! conversion time for the current [`Resolution`], reads, and on a NACK re-reads every
//! millisecond, a bounded number of times ([`Error::NotReady`] after that). A NACK on the
//! command write, before any conversion has started, means the sensor is not there:
//! [`Error::is_no_device`].
//!
//! # Checksum
//!
//! The third byte is a CRC-8 over the two data bytes: polynomial x⁸+x⁵+x⁴+1 (`0x31`), initial
//! value 0, MSB first, no final XOR ([`crc8`]; datasheet "CRC Checksum"). A mismatch is
//! [`Error::Crc`]. An all-zero frame passes that CRC but is what a bus with SDA held low reads
//! (the held-low line also looks like an ACK), and it would be −46.85 °C, below the sensor's
//! −40 °C range: it is [`Error::InvalidData`]. A floating bus reads `FF FF FF`, which fails the
//! CRC.
//!
//! # Conversion, and why humidity is not clamped
//!
//! The datasheet's formulas ("Conversion of signal outputs"), at every resolution:
//! T = −46.85 + 175.72 · S_T / 2¹⁶ °C and RH = −6 + 125 · S_RH / 2¹⁶ %RH, then the
//! temperature-coefficient compensation RH_comp = RH + (25 − T) · (−0.15) %RH/°C, which the
//! datasheet specifies for 0..80 °C. The datasheet notes that, to absorb process tolerances,
//! the humidity output goes below 0 %RH and above 100 %RH (−6 %RH at the minimum output, a
//! clamp at 118 %RH in the chip itself). This driver returns the computed value as it is, unclamped, also outside
//! 0..80 °C (where the compensation is extrapolated; [`compensation_characterised`] says
//! whether it was): the daemon's QC flags an out-of-range reading instead of hiding it
//! (DESIGN.md: flag, never clamp or drop).

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Commands and bit masks of the HTU21D(F) (datasheet "Commands", "User register").
pub struct Register;

impl Register {
    /// Trigger a temperature measurement, hold master (clock stretching; not used here).
    pub const TRIGGER_T_HOLD: u8 = 0xE3;
    /// Trigger a humidity measurement, hold master (clock stretching; not used here).
    pub const TRIGGER_RH_HOLD: u8 = 0xE5;
    /// Trigger a temperature measurement, no hold master.
    pub const TRIGGER_T_NO_HOLD: u8 = 0xF3;
    /// Trigger a humidity measurement, no hold master.
    pub const TRIGGER_RH_NO_HOLD: u8 = 0xF5;
    /// Write the user register (followed by the new value).
    pub const WRITE_USER: u8 = 0xE6;
    /// Read the user register.
    pub const READ_USER: u8 = 0xE7;
    /// Soft reset: default settings except the heater bit.
    pub const SOFT_RESET: u8 = 0xFE;

    /// The two status bits at the bottom of a measurement's LSB.
    pub const STATUS_MASK: u16 = 0x0003;
    /// Status bit 1, set in a humidity answer (datasheet communication example: `0x7C82`).
    pub const STATUS_HUMIDITY: u16 = 0x0002;
    /// User register: measurement resolution, bits 7 and 0.
    pub const USER_RESOLUTION_MASK: u8 = 0x81;
    /// User register: end of battery, VDD < 2.25 V (read-only, updated after each measurement).
    pub const USER_END_OF_BATTERY: u8 = 0x40;
    /// User register: on-chip heater enabled.
    pub const USER_HEATER: u8 = 0x04;
    /// User register: OTP reload disabled (default 1).
    pub const USER_DISABLE_OTP_RELOAD: u8 = 0x02;
    /// CRC-8 generator polynomial x⁸+x⁵+x⁴+1 without its x⁸ term.
    pub const CRC_POLYNOMIAL: u8 = 0x31;
}

/// The HTU21D(F)'s only I2C address.
pub const ADDRESS: u8 = 0x40;

/// Soft reset time: the datasheet gives "less than 15 ms".
const SOFT_RESET_US: u32 = 15_000;
/// Re-reads after a NACK (conversion still running) before [`Error::NotReady`].
pub const MAX_POLLS: u32 = 10;
/// Delay before each re-read, µs.
const POLL_INTERVAL_US: u32 = 1_000;

/// Lowest temperature at which the datasheet specifies the humidity compensation, °C.
pub const COMPENSATION_MIN_C: f64 = 0.0;
/// Highest temperature at which the datasheet specifies the humidity compensation, °C.
pub const COMPENSATION_MAX_C: f64 = 80.0;
/// Temperature coefficient of the humidity output, %RH/°C (datasheet: −0.15).
pub const HUMIDITY_TEMP_COEFF: f64 = -0.15;

/// HTU21D(F) driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// The checksum byte does not match the two data bytes.
    Crc {
        /// CRC computed over the received data bytes.
        computed: u8,
        /// CRC byte the sensor sent.
        received: u8,
    },
    /// An all-zero answer: SDA held low, not a measurement.
    InvalidData,
    /// The sensor kept NACKing the read after the maximum conversion time and
    /// [`MAX_POLLS`] re-reads: it stopped answering mid-measurement.
    NotReady,
}

impl<E: embedded_hal::i2c::Error> Error<E> {
    /// True when the sensor did not acknowledge its address when a command was sent: not
    /// present (or not powered, or not wired).
    pub fn is_no_device(&self) -> bool {
        match self {
            Error::Bus(e) => crate::is_no_ack(e),
            _ => false,
        }
    }
}

impl<E> From<FrameError> for Error<E> {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Crc { computed, received } => Error::Crc { computed, received },
            FrameError::AllZero => Error::InvalidData,
        }
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bus(e) => write!(
                f,
                "HTU21D I2C bus error: {e:?}; is the sensor wired and powered at 0x40 \
                 (i2cdetect -y 1)?"
            ),
            Error::Crc { computed, received } => write!(
                f,
                "HTU21D checksum mismatch (computed {computed:#04x}, received {received:#04x}); \
                 check the wiring, the pull-ups and the cable length"
            ),
            Error::InvalidData => f.write_str(
                "HTU21D answered all zeros, so SDA is held low; check the wiring and power",
            ),
            Error::NotReady => f.write_str(
                "HTU21D did not finish its conversion in time (kept NACKing the read); check \
                 its power supply",
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// Why a 3-byte measurement answer was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The CRC byte does not match the data bytes.
    Crc {
        /// CRC computed over the data bytes.
        computed: u8,
        /// CRC byte received.
        received: u8,
    },
    /// All three bytes are zero (SDA held low).
    AllZero,
}

/// What a measurement measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Temperature (command `0xF3`).
    Temperature,
    /// Relative humidity (command `0xF5`).
    Humidity,
}

impl Kind {
    /// The no-hold-master trigger command.
    pub fn command(self) -> u8 {
        match self {
            Kind::Temperature => Register::TRIGGER_T_NO_HOLD,
            Kind::Humidity => Register::TRIGGER_RH_NO_HOLD,
        }
    }
}

/// Measurement resolution, user register bits 7 and 0 (datasheet "User register", p.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    /// 12-bit RH, 14-bit T (`00`, the power-on and soft-reset default).
    #[default]
    Rh12T14,
    /// 8-bit RH, 12-bit T (`01`).
    Rh8T12,
    /// 10-bit RH, 13-bit T (`10`).
    Rh10T13,
    /// 11-bit RH, 11-bit T (`11`).
    Rh11T11,
}

impl Resolution {
    /// The user register bits (7 and 0) for this resolution.
    pub fn bits(self) -> u8 {
        match self {
            Resolution::Rh12T14 => 0x00,
            Resolution::Rh8T12 => 0x01,
            Resolution::Rh10T13 => 0x80,
            Resolution::Rh11T11 => 0x81,
        }
    }

    /// The resolution encoded in a user register value (other bits ignored).
    pub fn from_user_register(value: u8) -> Self {
        match value & Register::USER_RESOLUTION_MASK {
            0x00 => Resolution::Rh12T14,
            0x01 => Resolution::Rh8T12,
            0x80 => Resolution::Rh10T13,
            _ => Resolution::Rh11T11,
        }
    }

    /// Maximum conversion time, µs (datasheet specifications, "Measuring time", max column):
    /// temperature 50/25/13/7 ms at 14/13/12/11 bits, humidity 16/8/5/3 ms at 12/11/10/8 bits.
    pub fn max_conversion_us(self, kind: Kind) -> u32 {
        let ms = match (kind, self) {
            (Kind::Temperature, Resolution::Rh12T14) => 50,
            (Kind::Temperature, Resolution::Rh10T13) => 25,
            (Kind::Temperature, Resolution::Rh8T12) => 13,
            (Kind::Temperature, Resolution::Rh11T11) => 7,
            (Kind::Humidity, Resolution::Rh12T14) => 16,
            (Kind::Humidity, Resolution::Rh11T11) => 8,
            (Kind::Humidity, Resolution::Rh10T13) => 5,
            (Kind::Humidity, Resolution::Rh8T12) => 3,
        };
        ms * 1_000
    }
}

/// A user register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRegister(pub u8);

impl UserRegister {
    /// The measurement resolution.
    pub fn resolution(self) -> Resolution {
        Resolution::from_user_register(self.0)
    }

    /// True when VDD was below 2.25 V at the last measurement.
    pub fn end_of_battery(self) -> bool {
        self.0 & Register::USER_END_OF_BATTERY != 0
    }

    /// True when the on-chip heater is on.
    pub fn heater(self) -> bool {
        self.0 & Register::USER_HEATER != 0
    }

    /// The same register with `resolution` in bits 7 and 0, every other bit (reserved ones
    /// included, which the datasheet says must not be changed) kept.
    pub fn with_resolution(self, resolution: Resolution) -> Self {
        UserRegister((self.0 & !Register::USER_RESOLUTION_MASK) | resolution.bits())
    }
}

/// CRC-8 of the HTU21D(F): polynomial x⁸+x⁵+x⁴+1 (`0x31`), initial value 0x00, MSB first,
/// no final XOR. Over the two data bytes followed by their CRC the result is 0.
pub fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in bytes {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ Register::CRC_POLYNOMIAL
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Check a 3-byte answer (MSB, LSB, CRC) and return the 16-bit word with its two status
/// bits masked to 0.
pub fn decode_frame(frame: &[u8; 3]) -> Result<u16, FrameError> {
    let computed = crc8(&frame[..2]);
    if computed != frame[2] {
        return Err(FrameError::Crc {
            computed,
            received: frame[2],
        });
    }
    if frame == &[0, 0, 0] {
        return Err(FrameError::AllZero);
    }
    Ok(u16::from_be_bytes([frame[0], frame[1]]) & !Register::STATUS_MASK)
}

/// The 3-byte answer the sensor sends for `raw` (status bits replaced: bit 1 set for
/// humidity, as in the datasheet's communication example) — for the simulator.
pub fn frame_for(raw: u16, kind: Kind) -> [u8; 3] {
    let status = match kind {
        Kind::Temperature => 0,
        Kind::Humidity => Register::STATUS_HUMIDITY,
    };
    let [msb, lsb] = ((raw & !Register::STATUS_MASK) | status).to_be_bytes();
    [msb, lsb, crc8(&[msb, lsb])]
}

/// Temperature in °C for a raw word: −46.85 + 175.72 · S_T / 2¹⁶ (status bits masked).
pub fn temperature_c(raw: u16) -> f64 {
    -46.85 + 175.72 * f64::from(raw & !Register::STATUS_MASK) / 65_536.0
}

/// Relative humidity in %RH for a raw word: −6 + 125 · S_RH / 2¹⁶ (status bits masked). Not
/// clamped: the sensor can report slightly below 0 or above 100 %RH.
pub fn humidity_pct(raw: u16) -> f64 {
    -6.0 + 125.0 * f64::from(raw & !Register::STATUS_MASK) / 65_536.0
}

/// Temperature-compensated relative humidity: RH + (25 − T) · (−0.15) %RH/°C. The datasheet
/// specifies it for 0..80 °C ([`compensation_characterised`]); outside that range the same
/// line is extrapolated. Not clamped.
pub fn compensated_humidity_pct(humidity_pct: f64, temperature_c: f64) -> f64 {
    humidity_pct + (25.0 - temperature_c) * HUMIDITY_TEMP_COEFF
}

/// True when `temperature_c` is inside the 0..=80 °C range for which the datasheet specifies
/// the humidity compensation.
pub fn compensation_characterised(temperature_c: f64) -> bool {
    (COMPENSATION_MIN_C..=COMPENSATION_MAX_C).contains(&temperature_c)
}

/// The raw temperature word (status bits 0, rounded to the 14-bit step) that converts to
/// `celsius` — for the simulator. Saturates at the ends of the range.
pub fn temperature_raw_for(celsius: f64) -> u16 {
    raw_for((celsius + 46.85) / 175.72)
}

/// The raw humidity word (status bits 0, rounded to the 14-bit step) that converts to
/// `pct` %RH (uncompensated) — for the simulator. Saturates at the ends of the range.
pub fn humidity_raw_for(pct: f64) -> u16 {
    raw_for((pct + 6.0) / 125.0)
}

fn raw_for(fraction: f64) -> u16 {
    if fraction.is_nan() {
        return 0;
    }
    // In units of the 14-bit step (4 counts of the 16-bit word), rounded half up.
    let steps = fraction * 16_384.0 + 0.5;
    let steps = if steps < 0.0 {
        0
    } else if steps >= 16_383.0 {
        16_383
    } else {
        steps as u16
    };
    steps << 2
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Temperature, °C.
    pub temperature_c: f64,
    /// Relative humidity compensated for temperature, %RH (unclamped).
    pub humidity_pct: f64,
    /// Relative humidity before the temperature compensation, %RH (unclamped).
    pub humidity_uncompensated_pct: f64,
}

/// HTU21D(F) on an I2C bus.
#[derive(Debug)]
pub struct Htu21d<I2C> {
    i2c: I2C,
    resolution: Resolution,
}

impl<I2C: I2c> Htu21d<I2C> {
    /// Take ownership of the bus; nothing is sent. The driver assumes the default resolution
    /// (12-bit RH, 14-bit T), whose conversion times are the longest, until
    /// [`Htu21d::set_resolution`].
    pub fn new(i2c: I2C) -> Self {
        Self {
            i2c,
            resolution: Resolution::default(),
        }
    }

    /// Release the bus.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    /// Soft reset (`0xFE`), then wait the 15 ms it takes. The sensor returns to its default
    /// settings (the heater bit excepted), so the resolution is 12/14 bits again.
    pub fn reset<D: DelayNs>(&mut self, delay: &mut D) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write(ADDRESS, &[Register::SOFT_RESET])
            .map_err(Error::Bus)?;
        delay.delay_us(SOFT_RESET_US);
        self.resolution = Resolution::default();
        Ok(())
    }

    /// Read the user register (`0xE7`).
    pub fn read_user_register(&mut self) -> Result<UserRegister, Error<I2C::Error>> {
        let mut b = [0u8; 1];
        self.i2c
            .write_read(ADDRESS, &[Register::READ_USER], &mut b)
            .map_err(Error::Bus)?;
        Ok(UserRegister(b[0]))
    }

    /// Set the measurement resolution: read the user register, change bits 7 and 0 only
    /// (the datasheet: reserved bits must be read first and written back unchanged), write it
    /// (`0xE6`). Later measurements wait the shorter conversion times.
    pub fn set_resolution(&mut self, resolution: Resolution) -> Result<(), Error<I2C::Error>> {
        let value = self.read_user_register()?.with_resolution(resolution);
        self.i2c
            .write(ADDRESS, &[Register::WRITE_USER, value.0])
            .map_err(Error::Bus)?;
        self.resolution = resolution;
        Ok(())
    }

    /// The resolution the driver times its measurements for.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// One no-hold measurement: send the trigger command, wait the maximum conversion time,
    /// read MSB, LSB and CRC (re-reading while the sensor NACKs), check the CRC and return
    /// the word with its status bits masked.
    pub fn read_raw<D: DelayNs>(
        &mut self,
        kind: Kind,
        delay: &mut D,
    ) -> Result<u16, Error<I2C::Error>> {
        self.i2c
            .write(ADDRESS, &[kind.command()])
            .map_err(Error::Bus)?;
        delay.delay_us(self.resolution.max_conversion_us(kind));
        let mut frame = [0u8; 3];
        let mut polls = 0;
        loop {
            match self.i2c.read(ADDRESS, &mut frame) {
                Ok(()) => break,
                Err(e) if crate::is_no_ack(&e) => {
                    // Still converting: the datasheet's "issue the start condition again".
                    if polls == MAX_POLLS {
                        return Err(Error::NotReady);
                    }
                    polls += 1;
                    delay.delay_us(POLL_INTERVAL_US);
                }
                Err(e) => return Err(Error::Bus(e)),
            }
        }
        Ok(decode_frame(&frame)?)
    }

    /// Temperature, °C.
    pub fn read_temperature<D: DelayNs>(
        &mut self,
        delay: &mut D,
    ) -> Result<f64, Error<I2C::Error>> {
        Ok(temperature_c(self.read_raw(Kind::Temperature, delay)?))
    }

    /// Relative humidity without the temperature compensation, %RH (unclamped).
    pub fn read_humidity<D: DelayNs>(&mut self, delay: &mut D) -> Result<f64, Error<I2C::Error>> {
        Ok(humidity_pct(self.read_raw(Kind::Humidity, delay)?))
    }

    /// Temperature, then humidity, and the datasheet's temperature-compensated humidity.
    pub fn measure<D: DelayNs>(&mut self, delay: &mut D) -> Result<Measurement, Error<I2C::Error>> {
        let temperature_c = self.read_temperature(delay)?;
        let humidity_uncompensated_pct = self.read_humidity(delay)?;
        Ok(Measurement {
            temperature_c,
            humidity_pct: compensated_humidity_pct(humidity_uncompensated_pct, temperature_c),
            humidity_uncompensated_pct,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datasheet HPC199_3, "CRC Checksum" (p.14 on), CRC examples: 0xDC → 0x79, 0x683A (24.7 °C) →
    /// 0x7C, 0x4E85 (32.3 %RH) → 0x6B.
    #[test]
    fn crc_datasheet_examples() {
        assert_eq!(crc8(&[0xDC]), 0x79);
        assert_eq!(crc8(&[0x68, 0x3A]), 0x7C);
        assert_eq!(crc8(&[0x4E, 0x85]), 0x6B);
        // Data followed by its CRC leaves no remainder.
        assert_eq!(crc8(&[0x68, 0x3A, 0x7C]), 0);
        assert_eq!(crc8(&[]), 0);
    }

    /// Datasheet HPC199_3, "Communication protocol", no hold master sequence: the sensor sends
    /// 0x7C 0x82 with checksum 0x97, S_RH = 0x7C80 once the status bits are cleared.
    #[test]
    fn no_hold_example_frame() {
        assert_eq!(crc8(&[0x7C, 0x82]), 0x97);
        assert_eq!(decode_frame(&[0x7C, 0x82, 0x97]), Ok(0x7C80));
        assert_eq!(frame_for(0x7C80, Kind::Humidity), [0x7C, 0x82, 0x97]);
    }

    /// Datasheet HPC199_3: the no hold master example's S_RH = 0x7C80 ("Conversion of signal
    /// outputs" formula: 54.79 %RH), and the words of the "CRC Checksum" examples, which the
    /// datasheet labels 0x683A = 24.7 °C and 0x4E85 = 32.3 %RH — values reached only once the
    /// status bits are masked.
    #[test]
    fn conversion_datasheet_examples() {
        let rh = humidity_pct(0x7C80);
        assert_eq!(rh, -6.0 + 125.0 * 31_872.0 / 65_536.0);
        assert!((rh - 54.791_015_625).abs() < 1e-12, "{rh}");
        let t = temperature_c(0x683A);
        assert_eq!(t, temperature_c(0x6838));
        assert!((t - 24.686_401_367_187_5).abs() < 1e-9, "{t}");
        assert_eq!((t * 10.0).round() / 10.0, 24.7);
        let rh = humidity_pct(0x4E85);
        assert_eq!(rh, humidity_pct(0x4E84));
        assert!((rh - 32.337_707_519_531_25).abs() < 1e-12, "{rh}");
        assert_eq!((rh * 10.0).round() / 10.0, 32.3);
    }

    /// Datasheet: the output spans −6 %RH (0x0000) to about 119 %RH (0xFFFC); the driver
    /// returns those values as they are and leaves flagging to QC.
    #[test]
    fn humidity_is_not_clamped() {
        assert_eq!(humidity_pct(0x0000), -6.0);
        assert!(humidity_pct(0xFFFF) > 118.9);
        assert!(humidity_pct(0xF000) > 100.0);
        assert_eq!(temperature_c(0x0000), -46.85);
    }

    /// Datasheet "Temperature coefficient compensation equation": RH_compT = RH_actualT +
    /// (25 − T_actual) · (−0.15) %RH/°C, from 0 to 80 °C.
    #[test]
    fn temperature_compensation() {
        assert_eq!(compensated_humidity_pct(50.0, 25.0), 50.0);
        assert!((compensated_humidity_pct(50.0, 45.0) - 53.0).abs() < 1e-12);
        assert!((compensated_humidity_pct(50.0, 5.0) - 47.0).abs() < 1e-12);
        // The datasheet's example words together: 54.79 %RH at 24.69 °C gains −0.047 %RH.
        let c = compensated_humidity_pct(humidity_pct(0x7C80), temperature_c(0x683A));
        assert!(
            (c - (54.791_015_625 - 0.313_598_632_812_5 * 0.15)).abs() < 1e-9,
            "{c}"
        );
        // Not clamped, even past 100 %RH.
        assert!(compensated_humidity_pct(99.0, 80.0) > 100.0);
        assert!(compensation_characterised(0.0));
        assert!(compensation_characterised(80.0));
        assert!(!compensation_characterised(-0.1));
        assert!(!compensation_characterised(80.1));
    }

    #[test]
    fn frames_are_checked() {
        assert_eq!(
            decode_frame(&[0x68, 0x3A, 0x7D]),
            Err(FrameError::Crc {
                computed: 0x7C,
                received: 0x7D
            })
        );
        // A floating bus (all ones) fails the CRC; a bus held low passes it but is refused.
        assert!(matches!(
            decode_frame(&[0xFF, 0xFF, 0xFF]),
            Err(FrameError::Crc { .. })
        ));
        assert_eq!(decode_frame(&[0, 0, 0]), Err(FrameError::AllZero));
        // Both status bits are masked.
        assert_eq!(
            decode_frame(&frame_for(0x6838, Kind::Temperature)),
            Ok(0x6838)
        );
        let [m, l] = 0x683Bu16.to_be_bytes();
        assert_eq!(decode_frame(&[m, l, crc8(&[m, l])]), Ok(0x6838));
    }

    #[test]
    fn user_register_resolution_keeps_other_bits() {
        // Default 0x02 (OTP reload disabled); reserved bits 3..5 set here to check they stay.
        let reg = UserRegister(0b0011_1110);
        for r in [
            Resolution::Rh12T14,
            Resolution::Rh8T12,
            Resolution::Rh10T13,
            Resolution::Rh11T11,
        ] {
            let new = reg.with_resolution(r);
            assert_eq!(new.resolution(), r);
            assert_eq!(new.0 & !Register::USER_RESOLUTION_MASK, reg.0);
        }
        // Datasheet user register example: 0x02 → 8/12 bits is 0x03.
        assert_eq!(
            UserRegister(0x02).with_resolution(Resolution::Rh8T12).0,
            0x03
        );
        assert!(UserRegister(0x42).end_of_battery());
        assert!(UserRegister(0x06).heater());
        assert!(!UserRegister(0x02).heater());
    }

    #[test]
    fn conversion_times() {
        assert_eq!(
            Resolution::Rh12T14.max_conversion_us(Kind::Temperature),
            50_000
        );
        assert_eq!(
            Resolution::Rh12T14.max_conversion_us(Kind::Humidity),
            16_000
        );
        assert_eq!(Resolution::Rh8T12.max_conversion_us(Kind::Humidity), 3_000);
        assert_eq!(
            Resolution::Rh11T11.max_conversion_us(Kind::Temperature),
            7_000
        );
    }

    #[test]
    fn inverses_round_trip() {
        for c in [-40.0, -10.5, 0.0, 24.7, 60.0, 125.0] {
            let back = temperature_c(temperature_raw_for(c));
            // Half a 14-bit step: 175.72 / 2^14 / 2 ≈ 0.0054 °C.
            assert!((back - c).abs() <= 0.0054, "{c}: {back}");
        }
        for pct in [-6.0, 0.0, 54.8, 100.0, 118.0] {
            let back = humidity_pct(humidity_raw_for(pct));
            assert!((back - pct).abs() <= 0.0039, "{pct}: {back}");
        }
        assert_eq!(temperature_raw_for(-100.0), 0);
        assert_eq!(temperature_raw_for(500.0), 0xFFFC);
        assert_eq!(humidity_raw_for(f64::NAN), 0);
        assert_eq!(temperature_raw_for(24.686_401_367_187_5), 0x6838);
    }
}
