//! TSL2591: illuminance in lux over I2C, from starlight to full sun (the build-your-own
//! weather station guide's light sensor).
//!
//! Wire VIN to 3V3 (pin 1), GND, SDA to GPIO 2 (pin 3), SCL to GPIO 3 (pin 5); the address
//! is always 0x29. The gain and integration time follow the light on their own (the driver
//! steps them down near saturation and up in the dark); mount it level, under a clear dome,
//! out of the shadow of the mast.

use anemone_drivers::tsl2591::{
    self, settings_of, Gain, IntegrationTime, Register, Tsl2591, ADDRESS, CHIP_ID,
};
use serde::{Deserialize, Serialize};

use super::i2c_chip::{check_fixed_address, i2c_resource, scan_by_id, I2cChipAt};
use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::clock::Clock;
use crate::duration::Span;
use crate::hal::sim::{SimI2cChip, SimWorldBuilder, Weather};
use crate::hal::{BusError, Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// `type = "tsl2591"`: an ams TSL2591 on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tsl2591Config {
    /// I2C bus number (`/dev/i2c-<bus>`).
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// Always 0x29: the chip's only address.
    #[serde(default = "default_address")]
    pub address: u8,
    /// Integration time in ms (100–600, steps of 100); longer sees further into the dark.
    #[serde(default = "default_integration_ms")]
    pub integration_ms: u32,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    ADDRESS
}
fn default_integration_ms() -> u32 {
    100
}

impl SensorKindSpec for Tsl2591Config {
    const TYPE: &'static str = "tsl2591";
    const PROBE_HINT: Option<&'static str> = Some("TSL2591 0x29");

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::Illuminance]
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        check_fixed_address("TSL2591", self.address, ADDRESS, p);
        if IntegrationTime::from_ms(self.integration_ms).is_none() {
            p.push((
                "integration_ms",
                "must be 100, 200, 300, 400, 500 or 600".into(),
            ));
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
            chip: "TSL2591",
            address: ADDRESS,
            bus: self.bus,
            where_: i2c.describe(),
        };
        let mut dev = Tsl2591::new(i2c);
        dev.init().map_err(|e| at.error(e.is_no_device(), e))?;
        let time = IntegrationTime::from_ms(self.integration_ms)
            .ok_or_else(|| SourceError::Device("invalid integration_ms".into()))?;
        dev.set_settings(Gain::Medium, time);
        Ok(Box::new(Tsl2591Source {
            id,
            dev,
            delay: hal.delay(),
            at,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimTsl2591 {
            weather: world.weather().clone(),
            clock: world.clock().clone(),
            pointer: 0,
            enable: 0,
            control: 0,
        };
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }

    fn scan_i2c(i2c: &mut I2cBus, _delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        scan_by_id(
            i2c,
            ADDRESS,
            Register::COMMAND | Register::ID,
            |id| (id == CHIP_ID).then(|| "TSL2591 (light, lux; id 0x50)".into()),
            format!("[[sensor]]\ntype = \"tsl2591\"\nid = \"light\"\nbus = {bus}\n"),
        )
    }
}

struct Tsl2591Source {
    id: SensorId,
    dev: Tsl2591<I2cBus>,
    delay: HalDelay,
    at: I2cChipAt,
}

impl Source for Tsl2591Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let m = self
            .dev
            .measure_auto(&mut self.delay)
            .map_err(|e| self.at.error(e.is_no_device(), e))?;
        Ok(vec![Reading::new(
            now,
            &self.id,
            Quantity::Illuminance,
            m.lux,
        )])
    }
}

/// Infrared share of the simulated light (CH1/CH0), as for daylight.
const SIM_IR_SHARE: f64 = 0.2;

/// The simulated TSL2591: id, ENABLE, CONTROL and the two channels, whose counts give the
/// weather's illuminance back through the lux formula at the gain and time in force.
struct SimTsl2591 {
    weather: Weather,
    clock: Clock,
    pointer: u8,
    enable: u8,
    control: u8,
}

impl SimTsl2591 {
    fn counts(&self) -> (u16, u16) {
        let (gain, time) = settings_of(self.control);
        let lux = self.weather.illuminance(self.clock.now());
        let cpl = tsl2591::counts_per_lux(gain, time);
        let full = f64::from(time.max_count());
        let ch0 = lux * cpl / ((1.0 - SIM_IR_SHARE) * (1.0 - SIM_IR_SHARE));
        let ch0 = ch0.round().clamp(0.0, full);
        let ch1 = (ch0 * SIM_IR_SHARE).round();
        (ch0 as u16, ch1 as u16)
    }
}

impl SimI2cChip for SimTsl2591 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let Some((&cmd, rest)) = bytes.split_first() else {
            return Ok(());
        };
        self.pointer = cmd & 0x1F;
        match (self.pointer, rest) {
            (Register::ENABLE, [v, ..]) => self.enable = *v,
            (Register::CONTROL, [v, ..]) => self.control = *v & 0x37,
            _ => {}
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        let (ch0, ch1) = self.counts();
        let [a, b] = ch0.to_le_bytes();
        let [c, d] = ch1.to_le_bytes();
        let on = self.enable & (Register::PON | Register::AEN) == Register::PON | Register::AEN;
        for (i, out) in buf.iter_mut().enumerate() {
            *out = match self.pointer + i as u8 {
                Register::ENABLE => self.enable,
                Register::CONTROL => self.control,
                Register::ID => CHIP_ID,
                Register::STATUS => u8::from(on),
                0x14 => a,
                0x15 => b,
                0x16 => c,
                0x17 => d,
                _ => 0,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate_text;

    /// Midnight, morning and noon: the auto-ranged lux is the weather's, within the
    /// count resolution at the gain chosen.
    #[test]
    fn simulated_chip_gives_the_weather_day_and_night() {
        let text = "[hal]\nsimulate = true\n[[sensor]]\ntype = \"tsl2591\"\nid = \"light\"\n";
        for hour in [0, 7, 12] {
            let t = 1_780_272_000_000 + hour * 3_600_000;
            let (mut source, weather) = crate::sensors::testing::simulated_source(text, t);
            let lux = source.sample(t).unwrap()[0].value.unwrap();
            let expected = weather.illuminance(t);
            assert!(
                (lux - expected).abs() <= 0.01 * expected + 0.01,
                "{hour} h: {lux} vs {expected}"
            );
        }
    }

    #[test]
    fn rules() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"tsl2591\"\nid = \"l\"\naddress = 0x39\nintegration_ms = 150\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
