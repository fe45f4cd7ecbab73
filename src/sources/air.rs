//! BME280: air temperature, humidity and station pressure over I2C.

use anemone_drivers::bme280::{Bme280, Error as BmeError, Mode, Settings};

use super::{Source, SourceError};
use crate::config::{BmeMode, SensorKind};
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

pub(super) struct Bme280Source {
    id: SensorId,
    dev: Bme280<I2cBus>,
    delay: HalDelay,
    where_: String,
    address: u8,
}

fn explain(err: &BmeError<crate::hal::BusError>, where_: &str, address: u8) -> SourceError {
    match err {
        e if e.is_no_device() => {
            let other = if address == 0x76 { 0x77 } else { 0x76 };
            SourceError::Absent(format!(
                "no BME280 answered at {address:#04x} on {where_}: check wiring (3V3, GND, SDA pin 3, SCL pin 5) or try address = {other:#04x}"
            ))
        }
        BmeError::Bmp280 => SourceError::Device(format!(
            "the chip at {address:#04x} on {where_} is a BMP280 (chip id 0x58), not a BME280: it has no humidity sensor; use a BME280 board"
        )),
        BmeError::UnknownChip(id) => SourceError::Device(format!(
            "the chip at {address:#04x} on {where_} has id {id:#04x}, not a BME280's 0x60: check the address and the board"
        )),
        other => SourceError::Device(format!("BME280 at {address:#04x} on {where_}: {other}")),
    }
}

impl Bme280Source {
    pub(super) fn build(id: SensorId, kind: &SensorKind, hal: &Hal) -> Result<Self, SourceError> {
        let SensorKind::Bme280 {
            bus,
            address,
            mode,
            oversampling,
            iir_filter,
        } = kind
        else {
            return Err(SourceError::Device("not a BME280 config".into()));
        };
        let i2c = hal.i2c(*bus)?;
        let where_ = i2c.describe();
        let mut dev = Bme280::new(i2c, *address);
        let mut delay = hal.delay();
        let settings = Settings {
            mode: match mode {
                BmeMode::Forced => Mode::Forced,
                BmeMode::Normal => Mode::Normal,
            },
            oversampling: *oversampling,
            iir_filter: *iir_filter,
        };
        dev.init(&mut delay, settings)
            .map_err(|e| explain(&e, &where_, *address))?;
        Ok(Bme280Source {
            id,
            dev,
            delay,
            where_,
            address: *address,
        })
    }
}

impl Source for Bme280Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let m = self
            .dev
            .measure(&mut self.delay)
            .map_err(|e| explain(&e, &self.where_, self.address))?;
        Ok(vec![
            Reading::new(now, &self.id, Quantity::AirTemperature, m.temperature_c),
            Reading::new(now, &self.id, Quantity::RelativeHumidity, m.humidity_pct),
            Reading::new(now, &self.id, Quantity::AirPressure, m.pressure_hpa),
        ])
    }
}
