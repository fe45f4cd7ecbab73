//! Sensirion SCD41 on I2C (address 0x62): CO2 in ppm, with the air temperature and
//! humidity it measures beside it. Periodic mode (a value every 5 s, about 15 mA) or
//! single-shot mode (5 s per reading on request, about 0.5 mA between: the buoy's choice).
//! Ambient pressure compensation from a barometer (`pressure_sensor`), a temperature offset
//! for the sensor's own heat, and forced recalibration through `anemone calibrate co2`.
//!
//! 0x62 is also an EZO-ORP's default address: move the circuit when both share a bus.

use anemone_drivers::scd41::{crc8, Register, Scd41, ADDRESS};
use serde::{Deserialize, Serialize};

use super::ezo_circuit::{check_reference, latest_of};
use super::i2c_chip::{check_fixed_address, i2c_resource, I2cChipAt};
use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::clock::Clock;
use crate::duration::Span;
use crate::hal::sim::{SimI2cChip, SimWorldBuilder, Weather};
use crate::hal::{BusError, Hal, HalDelay, I2cBus};
use crate::latest::Latest;
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// How the SCD41 measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scd41Mode {
    /// A measurement every 5 s; the station reads the latest at its interval.
    #[default]
    Periodic,
    /// One 5-s measurement per reading, idle between (low power).
    SingleShot,
}

/// `type = "scd41"`: a Sensirion SCD41 CO2 sensor on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scd41Config {
    /// I2C bus.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// Always 0x62.
    #[serde(default = "default_address")]
    pub address: u8,
    /// `periodic` (default) or `single_shot`.
    #[serde(default)]
    pub mode: Scd41Mode,
    /// Temperature offset, °C (0–20): how much warmer the sensor is than the air. The
    /// sensor's own default (4 °C) stays when not given.
    #[serde(default)]
    pub temperature_offset_c: Option<f64>,
    /// Id of the barometer whose station pressure compensates the reading.
    #[serde(default)]
    pub pressure_sensor: Option<String>,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    ADDRESS
}

impl SensorKindSpec for Scd41Config {
    const TYPE: &'static str = "scd41";
    const PROBE_HINT: Option<&'static str> = Some("SCD41 0x62");

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![
            Quantity::Co2,
            Quantity::AirTemperature,
            Quantity::RelativeHumidity,
        ]
    }

    fn decimals(&self, quantity: Quantity) -> Option<u8> {
        match quantity {
            Quantity::AirTemperature => Some(1),
            Quantity::RelativeHumidity => Some(1),
            _ => None,
        }
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        check_fixed_address("SCD41", self.address, ADDRESS, p);
        check_reference(
            station,
            "pressure_sensor",
            &self.pressure_sensor,
            Quantity::AirPressure,
            p,
        );
        if let Some(o) = self.temperature_offset_c {
            if !(0.0..=20.0).contains(&o) {
                p.push((
                    "temperature_offset_c",
                    format!(
                        "{o} °C is not a plausible offset: use 0–20 (the sensor's default is 4)"
                    ),
                ));
            }
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let i2c = hal.i2c(self.bus)?;
        let at = I2cChipAt {
            chip: "SCD41",
            address: ADDRESS,
            bus: self.bus,
            where_: i2c.describe(),
        };
        let mut dev = Scd41::new(i2c);
        let mut delay = hal.delay();
        let err = |e: anemone_drivers::scd41::Error<BusError>| at.error(e.is_no_device(), e);
        // Settings need periodic measurement stopped (a restart may find it running).
        dev.stop_periodic(&mut delay).map_err(err)?;
        dev.serial_number(&mut delay).map_err(err)?;
        if let Some(o) = self.temperature_offset_c {
            dev.set_temperature_offset(o, &mut delay).map_err(err)?;
        }
        if self.mode == Scd41Mode::Periodic {
            dev.start_periodic().map_err(err)?;
        }
        Ok(Box::new(Scd41Source {
            id,
            dev,
            delay,
            mode: self.mode,
            pressure_sensor: self.pressure_sensor.clone(),
            latest: ctx.latest.clone(),
            at,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimScd41::new(world.weather().clone(), world.clock().clone());
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }
}

struct Scd41Source {
    id: SensorId,
    dev: Scd41<I2cBus>,
    delay: HalDelay,
    mode: Scd41Mode,
    pressure_sensor: Option<String>,
    latest: Latest,
    at: I2cChipAt,
}

impl Source for Scd41Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let at = &self.at;
        let err = |e: anemone_drivers::scd41::Error<BusError>| at.error(e.is_no_device(), e);
        if let Some(hpa) = latest_of(
            &self.latest,
            &self.pressure_sensor,
            Quantity::AirPressure,
            now,
        ) {
            if (700.0..=1200.0).contains(&hpa) {
                self.dev
                    .set_ambient_pressure(hpa, &mut self.delay)
                    .map_err(err)?;
            }
        }
        let m = match self.mode {
            Scd41Mode::SingleShot => self.dev.measure_single_shot(&mut self.delay),
            Scd41Mode::Periodic => {
                if !self.dev.data_ready(&mut self.delay).map_err(err)? {
                    // No new value since the last read (an interval under 5 s).
                    return Ok(Vec::new());
                }
                self.dev.read_measurement(&mut self.delay)
            }
        }
        .map_err(err)?;
        Ok(vec![
            Reading::new(now, &self.id, Quantity::Co2, f64::from(m.co2_ppm)),
            Reading::new(now, &self.id, Quantity::AirTemperature, m.temperature_c),
            Reading::new(now, &self.id, Quantity::RelativeHumidity, m.humidity_pct),
        ])
    }
}

/// The simulated SCD41: answers the measurement, data-ready, serial-number and forced
/// recalibration commands with CRC'd words; CO2 is the weather's, shifted by the last
/// forced recalibration's correction.
pub(crate) struct SimScd41 {
    weather: Weather,
    clock: Clock,
    reply: Vec<u16>,
    correction_ppm: i32,
}

impl SimScd41 {
    pub(crate) fn new(weather: Weather, clock: Clock) -> SimScd41 {
        SimScd41 {
            weather,
            clock,
            reply: Vec::new(),
            correction_ppm: 0,
        }
    }

    fn measurement(&self) -> Vec<u16> {
        let t = self.clock.now();
        let co2 = (self.weather.co2(t) + f64::from(self.correction_ppm)).clamp(1.0, 40_000.0);
        let temp = ((self.weather.air_temperature(t) + 45.0) * 65535.0 / 175.0).clamp(0.0, 65535.0);
        let rh = (self.weather.relative_humidity(t) * 655.35).clamp(0.0, 65535.0);
        vec![co2.round() as u16, temp.round() as u16, rh.round() as u16]
    }
}

impl SimI2cChip for SimScd41 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let Some([c0, c1]) = bytes.get(..2).map(|b| [b[0], b[1]]) else {
            return Ok(());
        };
        self.reply = match u16::from_be_bytes([c0, c1]) {
            Register::READ_MEASUREMENT => self.measurement(),
            Register::DATA_READY => vec![0x8006],
            Register::SERIAL_NUMBER => vec![0xF896, 0x9F07, 0x3BB5],
            Register::FORCED_RECALIBRATION => {
                let target = bytes
                    .get(2..4)
                    .map_or(0, |w| i32::from(u16::from_be_bytes([w[0], w[1]])));
                let measured = self.weather.co2(self.clock.now()).round() as i32;
                self.correction_ppm = target - measured;
                vec![(self.correction_ppm + 0x8000).clamp(0, 0xFFFE) as u16]
            }
            _ => Vec::new(),
        };
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        let mut bytes = Vec::new();
        for w in &self.reply {
            let [a, b] = w.to_be_bytes();
            bytes.extend_from_slice(&[a, b, crc8(&[a, b])]);
        }
        buf.fill(0xFF);
        let n = buf.len().min(bytes.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate_text;

    #[test]
    fn simulated_chip_in_both_modes() {
        for mode in ["periodic", "single_shot"] {
            let text = format!(
                "[hal]\nsimulate = true\n[[sensor]]\ntype = \"scd41\"\nid = \"co2\"\nmode = \"{mode}\"\ntemperature_offset_c = 2.5\n"
            );
            let t = 1_780_272_000_000 + 9 * 3_600_000;
            let (mut source, weather) = crate::sensors::testing::simulated_source(&text, t);
            let r = source.sample(t).unwrap();
            assert_eq!(r[0].quantity, Quantity::Co2);
            assert!(
                (r[0].value.unwrap() - weather.co2(t)).abs() <= 0.5,
                "{mode}"
            );
            assert!((r[1].value.unwrap() - weather.air_temperature(t)).abs() < 0.01);
        }
        let chip = SimScd41::new(Weather::new(1, 0.0, 0.0), Clock::virtual_at(0));
        let w = chip.measurement();
        let m = anemone_drivers::scd41::decode_measurement([w[0], w[1], w[2]]);
        assert!(m.co2_ppm > 300);
    }

    #[test]
    fn rules() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"scd41\"\nid = \"co2\"\naddress = 0x61\ntemperature_offset_c = 40\npressure_sensor = \"baro\"\n",
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
