//! ams (Austria Microsystems) AS3935 Franklin lightning sensor over I2C: why its interrupt
//! line rose (a strike, a disturber, too much noise), the estimated distance to the storm
//! front and the strike's energy; the indoor/outdoor gain and the noise floor (one of the
//! build-your-own weather station guide's extras).
//!
//! # Hardware guide
//!
//! I2C address from the ADD0/ADD1 pins: 0x01, 0x02 or 0x03 ([`DEFAULT_ADDRESS`], both
//! high, as on most breakout boards). The IRQ pin goes high when the chip has something to
//! say: wire it to a GPIO input. Keep the antenna away from the Pi and its power supply,
//! which the chip hears as disturbers and noise.
//!
//! # Protocol (AS3935 datasheet v1-04, "Register map" and "Interrupt management")
//!
//! Register 0x00: AFE_GB (bits 5–1, [`Location`]: indoor 10010, outdoor 01110) and PWD.
//! 0x01: noise floor level NF_LEV (bits 6–4) and watchdog threshold WDTH (bits 3–0).
//! 0x02: minimum number of lightning (bits 5–4) and spike rejection SREJ (bits 3–0).
//! 0x03: MASK_DIST (bit 5) and the interrupt reason INT (bits 3–0): 0x01 noise level too
//! high, 0x04 disturber, 0x08 lightning ([`Interrupt`]); the datasheet asks for 2 ms after
//! IRQ goes high before reading it. 0x04–0x06: the strike's energy, 20 bits, a number
//! without physical unit. 0x07: distance estimation (bits 5–0): a table of values that are
//! kilometres, 1 for "storm overhead" and 0x3F for "out of range" ([`Distance`]).
//! Direct commands: 0x96 to 0x3C restores the defaults, 0x96 to 0x3D calibrates the
//! internal RC oscillators.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Registers, masks and direct commands.
pub struct Register;

impl Register {
    /// AFE gain and power-down.
    pub const AFE: u8 = 0x00;
    /// Noise floor level and watchdog threshold.
    pub const NOISE: u8 = 0x01;
    /// Statistics, minimum number of lightning, spike rejection.
    pub const STATISTICS: u8 = 0x02;
    /// Frequency division, mask disturber, interrupt reason.
    pub const INTERRUPT: u8 = 0x03;
    /// Energy, least significant byte (then 0x05, 0x06, and the distance at 0x07).
    pub const ENERGY_L: u8 = 0x04;
    /// Distance estimation.
    pub const DISTANCE: u8 = 0x07;
    /// Direct command: preset default.
    pub const PRESET_DEFAULT: u8 = 0x3C;
    /// Direct command: calibrate the RC oscillators.
    pub const CALIB_RCO: u8 = 0x3D;
    /// The value a direct command is written with.
    pub const DIRECT_COMMAND: u8 = 0x96;
    /// INT: noise level too high.
    pub const INT_NOISE: u8 = 0x01;
    /// INT: disturber detected.
    pub const INT_DISTURBER: u8 = 0x04;
    /// INT: lightning.
    pub const INT_LIGHTNING: u8 = 0x08;
    /// MASK_DIST bit.
    pub const MASK_DIST: u8 = 0x20;
    /// Distance: out of range.
    pub const DISTANCE_OUT_OF_RANGE: u8 = 0x3F;
    /// Distance: storm overhead.
    pub const DISTANCE_OVERHEAD: u8 = 0x01;
}

/// Address with ADD0 and ADD1 high.
pub const DEFAULT_ADDRESS: u8 = 0x03;
/// Wait after IRQ before reading the interrupt register, µs (datasheet: 2 ms).
pub const IRQ_SETTLE_US: u32 = 2_000;
/// The distances the chip can report, km (datasheet "Distance estimation" table).
pub const DISTANCES_KM: [u8; 14] = [40, 37, 34, 31, 27, 24, 20, 17, 14, 12, 10, 8, 6, 5];

/// Where the antenna is: sets the analog front-end gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Location {
    /// Indoors, AFE_GB = 10010 (more gain).
    Indoor,
    /// Outdoors, AFE_GB = 01110.
    #[default]
    Outdoor,
}

impl Location {
    /// Register 0x00 with this gain, powered up.
    pub fn afe_register(self) -> u8 {
        match self {
            Location::Indoor => 0b1_0010 << 1,
            Location::Outdoor => 0b0_1110 << 1,
        }
    }
}

/// Noise floor threshold in µV rms for `level` 0–7 (datasheet "Noise floor generator
/// threshold" table), or `None` for another level.
pub fn noise_floor_uvrms(level: u8, location: Location) -> Option<u16> {
    const OUTDOOR: [u16; 8] = [390, 630, 860, 1100, 1140, 1570, 1800, 2000];
    const INDOOR: [u16; 8] = [28, 45, 62, 78, 95, 112, 130, 146];
    let table = match location {
        Location::Outdoor => &OUTDOOR,
        Location::Indoor => &INDOOR,
    };
    table.get(usize::from(level)).copied()
}

/// Why the IRQ line rose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Nothing pending (INT 0: read too late, or the line was already handled).
    None,
    /// The noise level is above the noise floor: raise the floor or move the sensor.
    Noise,
    /// A man-made disturber was heard and rejected.
    Disturber,
    /// A lightning strike.
    Lightning,
}

/// The estimated distance to the head of the storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    /// The storm is overhead.
    Overhead,
    /// About this many km.
    Km(u8),
    /// Farther than 40 km.
    OutOfRange,
}

impl Distance {
    /// Decodes register 0x07 (bits 5–0); `None` for a value not in the datasheet's table.
    pub fn from_register(value: u8) -> Option<Distance> {
        match value & 0x3F {
            Register::DISTANCE_OUT_OF_RANGE => Some(Distance::OutOfRange),
            Register::DISTANCE_OVERHEAD => Some(Distance::Overhead),
            v if DISTANCES_KM.contains(&v) => Some(Distance::Km(v)),
            _ => None,
        }
    }

    /// Kilometres: 0 overhead, `None` out of range.
    pub fn km(self) -> Option<f64> {
        match self {
            Distance::Overhead => Some(0.0),
            Distance::Km(k) => Some(f64::from(k)),
            Distance::OutOfRange => None,
        }
    }

    /// The register value for a distance of `km` (the nearest the table has) — for the
    /// simulator.
    pub fn register_for_km(km: f64) -> u8 {
        if km > 40.0 {
            return Register::DISTANCE_OUT_OF_RANGE;
        }
        if km < 3.0 {
            return Register::DISTANCE_OVERHEAD;
        }
        let mut best = DISTANCES_KM[0];
        for d in DISTANCES_KM {
            if (f64::from(d) - km).abs() < (f64::from(best) - km).abs() {
                best = d;
            }
        }
        best
    }
}

/// A strike read after a lightning interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strike {
    /// Estimated distance to the storm.
    pub distance: Distance,
    /// Energy, 20 bits, no physical unit.
    pub energy: u32,
}

/// An interrupt and, for lightning, the strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Why the line rose.
    pub reason: Interrupt,
    /// The strike, for [`Interrupt::Lightning`].
    pub strike: Option<Strike>,
}

/// Settings of the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Indoor or outdoor gain.
    pub location: Location,
    /// Noise floor level 0–7 (chip default 2).
    pub noise_floor: u8,
    /// Watchdog threshold 0–15 (default 2).
    pub watchdog: u8,
    /// Spike rejection 0–15 (default 2).
    pub spike_rejection: u8,
    /// Strikes within 15 minutes before the first interrupt: 1, 5, 9 or 16.
    pub min_strikes: u8,
    /// Do not raise IRQ for disturbers.
    pub mask_disturbers: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: Location::Outdoor,
            noise_floor: 2,
            watchdog: 2,
            spike_rejection: 2,
            min_strikes: 1,
            mask_disturbers: false,
        }
    }
}

/// AS3935 driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// A setting is outside its range (which one).
    Setting(&'static str),
    /// The interrupt register held bits the datasheet does not define.
    InvalidInterrupt(u8),
    /// The distance register held a value not in the datasheet's table.
    InvalidDistance(u8),
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
            Error::Bus(e) => write!(f, "AS3935 I2C bus error: {e:?}"),
            Error::Setting(what) => write!(f, "AS3935 setting out of range: {what}"),
            Error::InvalidInterrupt(v) => write!(
                f,
                "AS3935 interrupt register reads {v:#04x}, not a reason the datasheet defines"
            ),
            Error::InvalidDistance(v) => write!(
                f,
                "AS3935 distance register reads {v:#04x}, not in the datasheet's table"
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// Decodes the INT bits of register 0x03.
pub fn interrupt_reason(reg: u8) -> Option<Interrupt> {
    match reg & 0x0F {
        0 => Some(Interrupt::None),
        Register::INT_NOISE => Some(Interrupt::Noise),
        Register::INT_DISTURBER => Some(Interrupt::Disturber),
        Register::INT_LIGHTNING => Some(Interrupt::Lightning),
        _ => None,
    }
}

/// Decodes registers 0x04–0x07 (energy L, M, MM and distance).
pub fn strike_from_registers<E>(regs: [u8; 4]) -> Result<Strike, Error<E>> {
    let energy = (u32::from(regs[2] & 0x1F) << 16) | (u32::from(regs[1]) << 8) | u32::from(regs[0]);
    let distance =
        Distance::from_register(regs[3]).ok_or(Error::InvalidDistance(regs[3] & 0x3F))?;
    Ok(Strike { distance, energy })
}

/// An AS3935 on an I2C bus.
pub struct As3935<I2C> {
    i2c: I2C,
    address: u8,
}

impl<I2C: I2c> As3935<I2C> {
    /// A driver for the AS3935 at `address`.
    pub fn new(i2c: I2C, address: u8) -> Self {
        As3935 { i2c, address }
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    fn write(&mut self, reg: u8, value: u8) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write(self.address, &[reg, value])
            .map_err(Error::Bus)
    }

    fn read(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write_read(self.address, &[reg], buf)
            .map_err(Error::Bus)
    }

    /// Restores the defaults, calibrates the oscillators and applies `s`.
    pub fn init<D: DelayNs>(
        &mut self,
        s: Settings,
        delay: &mut D,
    ) -> Result<(), Error<I2C::Error>> {
        if s.noise_floor > 7 {
            return Err(Error::Setting("noise floor level is 0–7"));
        }
        if s.watchdog > 15 || s.spike_rejection > 15 {
            return Err(Error::Setting("watchdog and spike rejection are 0–15"));
        }
        let min = match s.min_strikes {
            1 => 0,
            5 => 1,
            9 => 2,
            16 => 3,
            _ => return Err(Error::Setting("minimum strikes is 1, 5, 9 or 16")),
        };
        self.write(Register::PRESET_DEFAULT, Register::DIRECT_COMMAND)?;
        self.write(Register::CALIB_RCO, Register::DIRECT_COMMAND)?;
        delay.delay_us(IRQ_SETTLE_US);
        self.write(Register::AFE, s.location.afe_register())?;
        self.write(Register::NOISE, (s.noise_floor << 4) | s.watchdog)?;
        let mut stat = [0u8];
        self.read(Register::STATISTICS, &mut stat)?;
        self.write(
            Register::STATISTICS,
            (stat[0] & 0xC0) | (min << 4) | s.spike_rejection,
        )?;
        let mut int = [0u8];
        self.read(Register::INTERRUPT, &mut int)?;
        let masked = if s.mask_disturbers {
            int[0] | Register::MASK_DIST
        } else {
            int[0] & !Register::MASK_DIST
        };
        self.write(Register::INTERRUPT, masked & 0xF0)?;
        Ok(())
    }

    /// Changes the noise floor level (after [`Interrupt::Noise`], one level up).
    pub fn set_noise_floor(&mut self, level: u8) -> Result<(), Error<I2C::Error>> {
        if level > 7 {
            return Err(Error::Setting("noise floor level is 0–7"));
        }
        let mut reg = [0u8];
        self.read(Register::NOISE, &mut reg)?;
        self.write(Register::NOISE, (reg[0] & 0x8F) | (level << 4))
    }

    /// After the IRQ line rose: waits 2 ms, reads why, and for lightning the strike.
    pub fn read_event<D: DelayNs>(&mut self, delay: &mut D) -> Result<Event, Error<I2C::Error>> {
        delay.delay_us(IRQ_SETTLE_US);
        let mut int = [0u8];
        self.read(Register::INTERRUPT, &mut int)?;
        let reason = interrupt_reason(int[0]).ok_or(Error::InvalidInterrupt(int[0] & 0x0F))?;
        let strike = if reason == Interrupt::Lightning {
            let mut regs = [0u8; 4];
            self.read(Register::ENERGY_L, &mut regs)?;
            Some(strike_from_registers(regs)?)
        } else {
            None
        };
        Ok(Event { reason, strike })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datasheet "Distance estimation" table: 0x3F out of range, 0x28 = 40 km … 0x05 =
    /// 5 km, 0x01 storm overhead; every other value is refused.
    #[test]
    fn distance_table() {
        assert_eq!(Distance::from_register(0x3F), Some(Distance::OutOfRange));
        assert_eq!(Distance::from_register(0x28), Some(Distance::Km(40)));
        assert_eq!(Distance::from_register(0x0E), Some(Distance::Km(14)));
        assert_eq!(Distance::from_register(0x05), Some(Distance::Km(5)));
        assert_eq!(Distance::from_register(0x01), Some(Distance::Overhead));
        assert_eq!(Distance::from_register(0x02), None);
        assert_eq!(Distance::from_register(0x00), None);
        // Bits 7–6 are not part of the distance.
        assert_eq!(Distance::from_register(0xC5), Some(Distance::Km(5)));
        let table: [u8; 16] = [
            0x3F, 0x28, 0x25, 0x22, 0x1F, 0x1B, 0x18, 0x14, 0x11, 0x0E, 0x0C, 0x0A, 0x08, 0x06,
            0x05, 0x01,
        ];
        assert_eq!(
            (0u8..64)
                .filter(|v| Distance::from_register(*v).is_some())
                .count(),
            table.len()
        );
        assert_eq!(Distance::Overhead.km(), Some(0.0));
        assert_eq!(Distance::OutOfRange.km(), None);
        assert_eq!(Distance::register_for_km(13.0), 0x0E);
        assert_eq!(Distance::register_for_km(80.0), 0x3F);
        assert_eq!(Distance::register_for_km(1.0), 0x01);
    }

    /// Datasheet "Interrupt management": INT_NH 0001, INT_D 0100, INT_L 1000.
    #[test]
    fn interrupt_reasons() {
        assert_eq!(interrupt_reason(0x01), Some(Interrupt::Noise));
        assert_eq!(interrupt_reason(0x04), Some(Interrupt::Disturber));
        assert_eq!(interrupt_reason(0x08), Some(Interrupt::Lightning));
        assert_eq!(interrupt_reason(0x00), Some(Interrupt::None));
        // The frequency division and mask bits above are not the reason.
        assert_eq!(interrupt_reason(0xE8), Some(Interrupt::Lightning));
        assert_eq!(interrupt_reason(0x0C), None);
        assert_eq!(interrupt_reason(0x02), None);
    }

    /// Datasheet "Noise floor generator threshold" table and "AFE gain boost" (indoor
    /// 10010, outdoor 01110 in bits 5–1 of register 0x00).
    #[test]
    fn gain_and_noise_floor() {
        assert_eq!(Location::Indoor.afe_register(), 0x24);
        assert_eq!(Location::Outdoor.afe_register(), 0x1C);
        assert_eq!(noise_floor_uvrms(2, Location::Outdoor), Some(860));
        assert_eq!(noise_floor_uvrms(2, Location::Indoor), Some(62));
        assert_eq!(noise_floor_uvrms(7, Location::Outdoor), Some(2000));
        assert_eq!(noise_floor_uvrms(0, Location::Indoor), Some(28));
        assert_eq!(noise_floor_uvrms(8, Location::Indoor), None);
    }

    #[test]
    fn energy_is_twenty_bits() {
        let s = strike_from_registers::<()>([0x34, 0x12, 0xFF, 0x0E]).unwrap();
        assert_eq!(s.energy, 0x1F_1234);
        assert_eq!(s.distance, Distance::Km(14));
        assert_eq!(
            strike_from_registers::<()>([0, 0, 0, 0x03]),
            Err(Error::InvalidDistance(0x03))
        );
    }
}
