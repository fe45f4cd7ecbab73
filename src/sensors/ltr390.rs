//! LTR390: UV index and ambient light in lux over I2C (the build-your-own weather station
//! guide's UV sensor).
//!
//! Wire VIN to 3V3 (pin 1), GND, SDA to GPIO 2 (pin 3), SCL to GPIO 3 (pin 5); the address
//! is always 0x53. The sensor must see the sky through something that passes UV: open air,
//! or a quartz or UV-transparent acrylic window (ordinary glass and polycarbonate block most
//! UV-B). Behind such a window raise `window_factor` (Wfac of the datasheet) by the
//! window's loss, e.g. 1.25 for a window passing 80 %.

use anemone_drivers::ltr390::{
    self, Gain, Ltr390, Register, Resolution, Settings, ADDRESS, PART_NUMBER,
};
use serde::{Deserialize, Serialize};

use super::i2c_chip::{check_fixed_address, i2c_resource, scan_by_id, I2cChipAt};
use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::clock::Clock;
use crate::duration::Span;
use crate::hal::sim::{SimI2cChip, SimWorldBuilder, Weather};
use crate::hal::{BusError, Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// `type = "ltr390"`: a Lite-On LTR-390UV-01 on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ltr390Config {
    /// I2C bus number (`/dev/i2c-<bus>`).
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// Always 0x53: the chip's only address.
    #[serde(default = "default_address")]
    pub address: u8,
    /// Window correction factor Wfac (1 in open air; more behind a window).
    #[serde(default = "default_window_factor")]
    pub window_factor: f64,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    ADDRESS
}
fn default_window_factor() -> f64 {
    1.0
}

impl SensorKindSpec for Ltr390Config {
    const TYPE: &'static str = "ltr390";
    const PROBE_HINT: Option<&'static str> = Some("LTR390 0x53");

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::UvIndex, Quantity::Illuminance]
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        check_fixed_address("LTR390", self.address, ADDRESS, p);
        if !(self.window_factor >= 1.0 && self.window_factor <= 10.0) {
            p.push((
                "window_factor",
                "must be 1 (open air) or more (behind a window), at most 10".into(),
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
            chip: "LTR390",
            address: ADDRESS,
            bus: self.bus,
            where_: i2c.describe(),
        };
        let mut dev = Ltr390::new(i2c);
        dev.init().map_err(|e| at.error(e.is_no_device(), e))?;
        Ok(Box::new(Ltr390Source {
            id,
            dev,
            delay: hal.delay(),
            wfac: self.window_factor,
            at,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimLtr390 {
            weather: world.weather().clone(),
            clock: world.clock().clone(),
            wfac: self.window_factor,
            pointer: 0,
            main_ctrl: 0,
            meas_rate: 0x22,
            gain: 0x01,
        };
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }

    fn scan_i2c(i2c: &mut I2cBus, _delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        scan_by_id(
            i2c,
            ADDRESS,
            Register::PART_ID,
            |id| {
                (id >> 4 == PART_NUMBER)
                    .then(|| format!("LTR390 (UV index, light; part id {id:#04x})"))
            },
            format!("[[sensor]]\ntype = \"ltr390\"\nid = \"uv\"\nbus = {bus}\n"),
        )
    }
}

struct Ltr390Source {
    id: SensorId,
    dev: Ltr390<I2cBus>,
    delay: HalDelay,
    wfac: f64,
    at: I2cChipAt,
}

impl Source for Ltr390Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let m = self
            .dev
            .measure(self.wfac, &mut self.delay)
            .map_err(|e| self.at.error(e.is_no_device(), e))?;
        Ok(vec![
            Reading::new(now, &self.id, Quantity::UvIndex, m.uv_index),
            Reading::new(now, &self.id, Quantity::Illuminance, m.lux),
        ])
    }
}

/// The simulated LTR390: part id, the mode, gain and resolution registers, and counts that
/// give the weather's UV index and illuminance back through the datasheet's formulas.
struct SimLtr390 {
    weather: Weather,
    clock: Clock,
    wfac: f64,
    pointer: u8,
    main_ctrl: u8,
    meas_rate: u8,
    gain: u8,
}

impl SimLtr390 {
    fn count(&self) -> u32 {
        let s = Settings {
            gain: Gain::from_bits(self.gain),
            resolution: Resolution::from_meas_rate(self.meas_rate),
        };
        let t = self.clock.now();
        let counts = if self.main_ctrl & Register::UVS_MODE != 0 {
            self.weather.uv_index(t) * ltr390::uv_sensitivity(s) / self.wfac
        } else {
            self.weather.illuminance(t) * s.gain.factor() * s.resolution.int_factor()
                / 0.6
                / self.wfac
        };
        counts
            .round()
            .clamp(0.0, f64::from(s.resolution.max_count())) as u32
    }
}

impl SimI2cChip for SimLtr390 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let Some((&reg, rest)) = bytes.split_first() else {
            return Ok(());
        };
        self.pointer = reg;
        match (reg, rest) {
            (Register::MAIN_CTRL, [v, ..]) => self.main_ctrl = *v,
            (Register::MEAS_RATE, [v, ..]) => self.meas_rate = *v,
            (Register::GAIN, [v, ..]) => self.gain = *v,
            _ => {}
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        let data = self.count().to_le_bytes();
        let uv = self.main_ctrl & Register::UVS_MODE != 0;
        for (i, out) in buf.iter_mut().enumerate() {
            let reg = self.pointer + i as u8;
            *out = match reg {
                Register::MAIN_CTRL => self.main_ctrl,
                Register::MEAS_RATE => self.meas_rate,
                Register::GAIN => self.gain,
                Register::PART_ID => 0xB2,
                Register::MAIN_STATUS if self.main_ctrl & Register::LS_EN != 0 => {
                    Register::DATA_STATUS
                }
                0x0D..=0x0F if !uv => data[usize::from(reg - 0x0D)],
                0x10..=0x12 if uv => data[usize::from(reg - 0x10)],
                _ => 0,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate_text;

    #[test]
    fn simulated_chip_gives_the_weather_uv_and_light() {
        let text = "[hal]\nsimulate = true\n[[sensor]]\ntype = \"ltr390\"\nid = \"uv\"\n";
        for hour in [2, 9, 13] {
            let t = 1_780_272_000_000 + hour * 3_600_000;
            let (mut source, weather) = crate::sensors::testing::simulated_source(text, t);
            let r = source.sample(t).unwrap();
            let uvi = r[0].value.unwrap();
            // One count at gain 18, 20 bits is 1/2300 UVI.
            assert!((uvi - weather.uv_index(t)).abs() < 0.001, "{hour} h: {uvi}");
            let lux = r[1].value.unwrap();
            let expected = weather.illuminance(t);
            // One count at gain 1, 18 bits is 0.6 lx.
            assert!(
                (lux - expected).abs() < 0.31,
                "{hour} h: {lux} vs {expected}"
            );
        }
    }

    #[test]
    fn rules() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"ltr390\"\nid = \"u\"\naddress = 0x29\nwindow_factor = 0.5\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
