//! BMP180: station air pressure over I2C (the pressure chip of the Raspberry Pi Oracle
//! Weather Station HAT; the BMP085's successor, which this kind reads too).
//!
//! Wire VDD to 3V3 (pin 1), GND, SDA to GPIO 2 (pin 3) and SCL to GPIO 3 (pin 5); on the
//! HAT it is soldered on. The address is always 0x77. Only the pressure is stored: the
//! chip's own temperature is the temperature inside the HAT's box, not the air's (the
//! HTU21D beside it measures that).

use anemone_drivers::bmp180::{Bmp180, Calibration, Register, ADDRESS, CHIP_ID};
use serde::{Deserialize, Serialize};

use super::i2c_chip::{check_fixed_address, i2c_resource, scan_by_id, I2cChipAt};
use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::clock::Clock;
use crate::duration::Span;
use crate::hal::sim::{invert, SimI2cChip, SimWorldBuilder, Weather};
use crate::hal::{BusError, Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// `type = "bmp180"`: a Bosch BMP180 (or BMP085) on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bmp180Config {
    /// I2C bus number (`/dev/i2c-<bus>`).
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// Always 0x77: the chip's only address.
    #[serde(default = "default_address")]
    pub address: u8,
    /// Pressure oversampling setting 0–3 (ultra low power, standard, high resolution,
    /// ultra high resolution: 4.5 to 25.5 ms per reading). Default 3.
    #[serde(default = "default_oversampling")]
    pub oversampling: u8,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    ADDRESS
}
fn default_oversampling() -> u8 {
    3
}

impl SensorKindSpec for Bmp180Config {
    const TYPE: &'static str = "bmp180";
    const PROBE_HINT: Option<&'static str> = Some("BMP180 0x77");

    fn default_interval(&self) -> Span {
        Span::secs(10)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::AirPressure]
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        check_fixed_address("BMP180", self.address, ADDRESS, p);
        if self.oversampling > 3 {
            p.push(("oversampling", "must be 0, 1, 2 or 3".into()));
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let i2c = hal.i2c(self.bus)?;
        let at = I2cChipAt {
            chip: "BMP180",
            address: ADDRESS,
            bus: self.bus,
            where_: i2c.describe(),
        };
        let mut dev = Bmp180::new(i2c);
        dev.init(self.oversampling)
            .map_err(|e| at.error(e.is_no_device(), e))?;
        Ok(Box::new(Bmp180Source {
            id,
            dev,
            delay: hal.delay(),
            at,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimBmp180::new(world.weather().clone(), world.clock().clone());
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }

    fn scan_i2c(i2c: &mut I2cBus, _delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        scan_by_id(
            i2c,
            ADDRESS,
            Register::CHIP_ID,
            |id| (id == CHIP_ID).then(|| "BMP180 or BMP085 (pressure; chip id 0x55)".into()),
            format!("[[sensor]]\ntype = \"bmp180\"\nid = \"pressure\"\nbus = {bus}\n"),
        )
    }
}

struct Bmp180Source {
    id: SensorId,
    dev: Bmp180<I2cBus>,
    delay: HalDelay,
    at: I2cChipAt,
}

impl Source for Bmp180Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let m = self
            .dev
            .measure(&mut self.delay)
            .map_err(|e| self.at.error(e.is_no_device(), e))?;
        Ok(vec![Reading::new(
            now,
            &self.id,
            Quantity::AirPressure,
            f64::from(m.pressure_pa) / 100.0,
        )])
    }
}

/// The simulated BMP180: chip id, the datasheet's example calibration in its EEPROM, and
/// conversions that give the weather's temperature and station pressure back through the
/// datasheet's formula.
struct SimBmp180 {
    weather: Weather,
    clock: Clock,
    cal: Calibration,
    pointer: u8,
    out: [u8; 3],
    ut: i32,
}

impl SimBmp180 {
    fn new(weather: Weather, clock: Clock) -> SimBmp180 {
        SimBmp180 {
            weather,
            clock,
            cal: Calibration::DATASHEET_EXAMPLE,
            pointer: 0,
            out: [0; 3],
            ut: 0,
        }
    }

    fn convert(&mut self, control: u8) {
        let t = self.clock.now();
        let cal = self.cal;
        if control == Register::MEASURE_TEMPERATURE {
            let target = self.weather.air_temperature(t) * 10.0;
            self.ut = invert(0, 0xFFFF, target, |ut| {
                f64::from(cal.temperature_decidegrees(ut).unwrap_or(i32::MIN))
            });
            let [_, _, msb, lsb] = self.ut.to_be_bytes();
            self.out = [msb, lsb, 0];
        } else if control & 0x3F == Register::MEASURE_PRESSURE {
            let oss = control >> 6;
            let target = self.weather.station_pressure(t) * 100.0;
            let ut = self.ut;
            // Below B3 (a few hundred counts) the datasheet's unsigned arithmetic wraps:
            // search above it, where pressure rises with UP.
            let up = invert(1 << (12 + oss), (1 << (16 + oss)) - 1, target, |up| {
                f64::from(cal.pressure_pa(ut, up, oss).unwrap_or(i32::MIN))
            });
            let [_, a, b, c] = (up << (8 - oss)).to_be_bytes();
            self.out = [a, b, c];
        }
    }
}

impl SimI2cChip for SimBmp180 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        match bytes {
            [Register::CTRL_MEAS, control] => self.convert(*control),
            [reg, ..] => self.pointer = *reg,
            [] => {}
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        let cal = self.cal.to_registers();
        for (i, b) in buf.iter_mut().enumerate() {
            let reg = usize::from(self.pointer) + i;
            *b = match reg {
                0xAA..=0xBF => cal[reg - 0xAA],
                0xD0 => CHIP_ID,
                0xF6..=0xF8 => self.out[reg - 0xF6],
                _ => 0,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{validate_text, Config};
    use crate::sensors::open_hal;

    #[test]
    fn simulated_chip_gives_the_weather_at_every_oversampling() {
        for oss in 0..=3 {
            let text = format!(
                "[hal]\nsimulate = true\n[[sensor]]\ntype = \"bmp180\"\nid = \"p\"\noversampling = {oss}\n"
            );
            let t = 1_780_272_000_000 + 13 * 3_600_000;
            let (mut source, weather) = crate::sensors::testing::simulated_source(&text, t);
            let r = source.sample(t).unwrap();
            let hpa = r[0].value.unwrap();
            // Within the datasheet's resolution (a few Pa) plus the 0.1 °C temperature step.
            assert!(
                (hpa - weather.station_pressure(t)).abs() < 0.1,
                "oss {oss}: {hpa}"
            );
        }
    }

    #[test]
    fn rules_and_absent_chip() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"bmp180\"\nid = \"p\"\naddress = 0x76\noversampling = 4\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        let config = Config::from_toml("[hal]\nsimulate = true\n", "test").unwrap();
        let hal = open_hal(&config, &Clock::real(), 0);
        let c: Bmp180Config = toml::from_str("").unwrap();
        let err = c
            .build(Arc::from("p"), &hal, &SourceContext::default())
            .err()
            .unwrap();
        assert!(err.is_absent(), "{err}");
        assert!(
            err.to_string().contains("i2cdetect -y 1` shows 77"),
            "{err}"
        );
    }
}
