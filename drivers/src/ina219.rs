//! Texas Instruments INA219 high-side current/power monitor over I2C (`0x40`–`0x4F`, set
//! by A0/A1): bus voltage, current through a shunt resistor, power.
//!
//! # Registers (INA219 datasheet SBOS448, section 8.6)
//!
//! 0x00 configuration, 0x01 shunt voltage (signed, 10 µV/LSB), 0x02 bus voltage (bits
//! 15–3, 4 mV/LSB; bit 1 conversion ready, bit 0 math overflow), 0x03 power, 0x04 current
//! (signed), 0x05 calibration. Current and power read 0 until the calibration register is
//! written.
//!
//! # Calibration (section 8.5.1)
//!
//! `Cal = trunc(0.04096 / (Current_LSB × R_shunt))`; current = register × Current_LSB;
//! power LSB = 20 × Current_LSB. The datasheet's example: R_shunt 0.5 Ω, a maximum of
//! 0.6 A, Current_LSB rounded up from 18.3 µA to 20 µA, Cal = 4096, power LSB 0.4 mW.
//!
//! # Hardware guide
//!
//! VCC 3.3 V, GND, SDA GPIO 2 (pin 3), SCL GPIO 3 (pin 5); VIN+ to the battery (or panel)
//! side of the shunt, VIN− to the load side; the bus voltage is measured at VIN−, up to
//! 26 V. Breakout boards carry a 0.1 Ω shunt (3.2 A full scale).

use core::fmt;
use embedded_hal::i2c::I2c;

/// Default address (A0, A1 to GND).
pub const DEFAULT_ADDRESS: u8 = 0x40;

/// Register pointers and configuration.
pub struct Register;

impl Register {
    /// Configuration.
    pub const CONFIG: u8 = 0x00;
    /// Shunt voltage.
    pub const SHUNT_VOLTAGE: u8 = 0x01;
    /// Bus voltage.
    pub const BUS_VOLTAGE: u8 = 0x02;
    /// Power.
    pub const POWER: u8 = 0x03;
    /// Current.
    pub const CURRENT: u8 = 0x04;
    /// Calibration.
    pub const CALIBRATION: u8 = 0x05;
    /// The power-on configuration: 32 V range, ±320 mV shunt range, 12-bit conversions,
    /// shunt and bus continuous.
    pub const CONFIG_DEFAULT: u16 = 0x399F;
}

/// The calibration register and the LSBs that follow from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Value of the calibration register.
    pub register: u16,
    /// Current per count, A.
    pub current_lsb_a: f64,
}

impl Calibration {
    /// The calibration for a shunt of `shunt_ohms` and a largest expected current of
    /// `max_current_a`: Current_LSB = max / 2^15, rounded up to whole 10 µA as the
    /// datasheet's example does (18.3 → 20 µA). `None` for values that give no valid
    /// register, or a shunt voltage beyond the ±320 mV range at that current.
    pub fn for_shunt(shunt_ohms: f64, max_current_a: f64) -> Option<Calibration> {
        if !(shunt_ohms > 0.0 && max_current_a > 0.0) || shunt_ohms * max_current_a > 0.320_001 {
            return None;
        }
        let min_lsb = max_current_a / 32768.0;
        let steps = min_lsb / 10e-6;
        // no_std: ceil by truncation.
        let whole = steps as u64;
        let steps = if (whole as f64) < steps {
            whole + 1
        } else {
            whole
        };
        let current_lsb_a = steps as f64 * 10e-6;
        let cal = 0.04096 / (current_lsb_a * shunt_ohms);
        if !(1.0..65535.0).contains(&cal) {
            return None;
        }
        // Bit 0 of the register is not used.
        let register = (cal as u16) & !1;
        Some(Calibration {
            register,
            current_lsb_a,
        })
    }

    /// Power per count, W.
    pub fn power_lsb_w(&self) -> f64 {
        20.0 * self.current_lsb_a
    }
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Bus voltage (at VIN−), V.
    pub bus_v: f64,
    /// Shunt voltage, V (signed).
    pub shunt_v: f64,
    /// Current, A (signed: negative when it flows from VIN− to VIN+).
    pub current_a: f64,
    /// Power, W.
    pub power_w: f64,
}

/// Bus voltage in V from the bus-voltage register, and the overflow bit.
pub fn bus_volts(reg: u16) -> (f64, bool) {
    (f64::from(reg >> 3) * 0.004, reg & 1 != 0)
}

/// INA219 errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// The math overflowed: the current exceeds the calibration's range (a larger
    /// `max_current_a`, or a smaller shunt, is needed).
    Overflow,
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
            Error::Bus(e) => write!(f, "INA219 I2C bus error: {e:?}"),
            Error::Overflow => f.write_str(
                "INA219 overflow: the current is beyond the calibrated range (raise max_current_a)",
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// INA219 on an I2C bus.
#[derive(Debug)]
pub struct Ina219<I2C> {
    i2c: I2C,
    address: u8,
    calibration: Calibration,
}

impl<I2C: I2c> Ina219<I2C> {
    /// Take ownership of the bus; call [`Ina219::init`] before measuring.
    pub fn new(i2c: I2C, address: u8, calibration: Calibration) -> Self {
        Self {
            i2c,
            address,
            calibration,
        }
    }

    fn write(&mut self, reg: u8, value: u16) -> Result<(), Error<I2C::Error>> {
        let [h, l] = value.to_be_bytes();
        self.i2c
            .write(self.address, &[reg, h, l])
            .map_err(Error::Bus)
    }

    fn read(&mut self, reg: u8) -> Result<u16, Error<I2C::Error>> {
        let mut buf = [0u8; 2];
        self.i2c
            .write_read(self.address, &[reg], &mut buf)
            .map_err(Error::Bus)?;
        Ok(u16::from_be_bytes(buf))
    }

    /// Write the configuration (power-on default) and the calibration register.
    pub fn init(&mut self) -> Result<(), Error<I2C::Error>> {
        self.write(Register::CONFIG, Register::CONFIG_DEFAULT)?;
        self.write(Register::CALIBRATION, self.calibration.register)
    }

    /// Read bus voltage, shunt voltage, current and power.
    pub fn measure(&mut self) -> Result<Measurement, Error<I2C::Error>> {
        let (bus_v, overflow) = bus_volts(self.read(Register::BUS_VOLTAGE)?);
        if overflow {
            return Err(Error::Overflow);
        }
        let shunt = self.read(Register::SHUNT_VOLTAGE)? as i16;
        let current = self.read(Register::CURRENT)? as i16;
        let power = self.read(Register::POWER)?;
        let c = self.calibration;
        Ok(Measurement {
            bus_v,
            shunt_v: f64::from(shunt) * 10e-6,
            current_a: f64::from(current) * c.current_lsb_a,
            power_w: f64::from(power) * c.power_lsb_w(),
        })
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
    fn datasheet_calibration_example() {
        // R_shunt 0.5 Ω, 0.6 A maximum → Current_LSB 20 µA, Cal 4096, power LSB 0.4 mW.
        let c = Calibration::for_shunt(0.5, 0.6).unwrap();
        assert!((c.current_lsb_a - 20e-6).abs() < 1e-12, "{c:?}");
        assert_eq!(c.register, 4096);
        assert!((c.power_lsb_w() - 0.0004).abs() < 1e-12);
        // A breakout's 0.1 Ω shunt for 3.2 A: 100 µA per count, Cal 4096.
        let c = Calibration::for_shunt(0.1, 3.2).unwrap();
        assert_eq!(c.register, 4096);
        assert_eq!(Calibration::for_shunt(0.0, 1.0), None);
        assert_eq!(Calibration::for_shunt(1.0, 10.0), None);
        assert_eq!(bus_volts(0x5DC0), (12.0, false));
        assert!(bus_volts(0x5DC1).1);
    }
}
