//! BME280: air temperature, humidity and station pressure over I2C.
//!
//! Wire VIN to 3V3 (pin 1), GND, SDA to GPIO 2 (pin 3) and SCL to GPIO 3 (pin 5); the
//! address is 0x76 with SDO to GND, 0x77 with SDO to 3V3.

use anemone_drivers::bme280::{
    Bme280, Error as BmeError, Mode, Register, Settings, DEFAULT_ADDRESS, SECONDARY_ADDRESS,
};
use embedded_hal::i2c::I2c;
use serde::{Deserialize, Serialize};

use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::SimWorldBuilder;
use crate::hal::{BusError, Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// BME280 measurement mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BmeMode {
    /// One measurement per read, then sleep (Bosch's weather-monitoring setting).
    #[default]
    Forced,
    /// Continuous measurement with standby time.
    Normal,
}

/// `type = "bme280"`: a Bosch BME280 on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bme280Config {
    /// I2C bus number (`/dev/i2c-<bus>`).
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// 0x76 (SDO to GND) or 0x77 (SDO to 3V3).
    #[serde(default = "default_address")]
    pub address: u8,
    /// `forced` (default) or `normal`.
    #[serde(default)]
    pub mode: BmeMode,
    /// Oversampling for T, P and H: 1, 2, 4, 8 or 16.
    #[serde(default = "default_oversampling")]
    pub oversampling: u8,
    /// IIR filter coefficient: 0 (off), 2, 4, 8 or 16.
    #[serde(default)]
    pub iir_filter: u8,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    DEFAULT_ADDRESS
}
fn default_oversampling() -> u8 {
    1
}

impl SensorKindSpec for Bme280Config {
    const TYPE: &'static str = "bme280";
    const PROBE_HINT: Option<&'static str> = Some("BME280 0x76/0x77");

    fn default_interval(&self) -> Span {
        Span::secs(10)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![
            Quantity::AirTemperature,
            Quantity::RelativeHumidity,
            Quantity::AirPressure,
        ]
    }

    fn resources(&self) -> Vec<String> {
        vec![format!(
            "I2C bus {} address {:#04x}",
            self.bus, self.address
        )]
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        let address = self.address;
        if address != DEFAULT_ADDRESS && address != SECONDARY_ADDRESS {
            p.push((
                "address",
                format!("{address:#04x} is not a BME280 address: use 0x76 or 0x77"),
            ));
        }
        if ![1, 2, 4, 8, 16].contains(&self.oversampling) {
            p.push(("oversampling", "must be 1, 2, 4, 8 or 16".into()));
        }
        if ![0, 2, 4, 8, 16].contains(&self.iir_filter) {
            p.push(("iir_filter", "must be 0 (off), 2, 4, 8 or 16".into()));
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(Bme280Source::build(id, self, hal)?))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        world.bme280(self.bus, self.address);
    }

    fn scan_i2c(i2c: &mut I2cBus, _delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        let mut out = Vec::new();
        for address in [DEFAULT_ADDRESS, SECONDARY_ADDRESS] {
            let mut id = [0u8];
            if i2c.write_read(address, &[Register::ID], &mut id).is_err() {
                continue;
            }
            let found = match id[0] {
                Register::CHIP_ID_BME280 => I2cFound {
                    address,
                    what: "BME280 (temperature, humidity, pressure)".into(),
                    snippet: Some(format!(
                        "[[sensor]]\ntype = \"bme280\"\nid = \"air\"\nbus = {bus}\naddress = {address:#04x}\n"
                    )),
                },
                Register::CHIP_ID_BMP280 => I2cFound {
                    address,
                    what: format!(
                        "BMP280 (chip id {:#04x}): temperature and pressure only, no humidity — not supported as a BME280",
                        Register::CHIP_ID_BMP280
                    ),
                    snippet: None,
                },
                // A BMP180/BMP085: the bmp180 kind reports it.
                anemone_drivers::bmp180::CHIP_ID => continue,
                other => I2cFound {
                    address,
                    what: format!("unknown chip (id {other:#04x}) at a BME280 address"),
                    snippet: None,
                },
            };
            out.push(found);
        }
        out
    }
}

struct Bme280Source {
    id: SensorId,
    dev: Bme280<I2cBus>,
    delay: HalDelay,
    where_: String,
    address: u8,
}

fn explain(err: &BmeError<BusError>, where_: &str, address: u8) -> SourceError {
    match err {
        e if e.is_no_device() => {
            let other = if address == DEFAULT_ADDRESS {
                SECONDARY_ADDRESS
            } else {
                DEFAULT_ADDRESS
            };
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
    fn build(id: SensorId, c: &Bme280Config, hal: &Hal) -> Result<Self, SourceError> {
        let i2c = hal.i2c(c.bus)?;
        let where_ = i2c.describe();
        let mut dev = Bme280::new(i2c, c.address);
        let mut delay = hal.delay();
        let settings = Settings {
            mode: match c.mode {
                BmeMode::Forced => Mode::Forced,
                BmeMode::Normal => Mode::Normal,
            },
            oversampling: c.oversampling,
            iir_filter: c.iir_filter,
        };
        dev.init(&mut delay, settings)
            .map_err(|e| explain(&e, &where_, c.address))?;
        Ok(Bme280Source {
            id,
            dev,
            delay,
            where_,
            address: c.address,
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
