//! AS3935: lightning strikes, the distance to the storm and the strikes' energy, from the
//! Franklin lightning sensor on I2C with its interrupt line on a GPIO (the build-your-own
//! weather station guide's lightning detector).
//!
//! Wire VCC to 3V3 (pin 1), GND, SDA to GPIO 2 (pin 3), SCL to GPIO 3 (pin 5), and IRQ to a
//! free GPIO (default GPIO 16, pin 36; the Oracle Weather Station HAT uses 4, 5 and 6).
//! The address is set by the board's ADD0/ADD1 jumpers: 0x03 on most boards. Mount the
//! antenna away from the Pi, its power supply and fluorescent lamps, which the chip hears
//! as disturbers and noise; indoors set `location = "indoor"`.
//!
//! The IRQ line rises when the chip has an event and stays high until the interrupt
//! register is read, so the line is polled every `interval` (default 1 s): each rise is
//! read once (strike, disturber or noise). Readings are written at the first sample and
//! then once per `report_every` (default 5 minutes, on its multiples): `lightning_strikes` (count, 0 when there was none), and when there
//! were strikes, `lightning_distance` (km to the storm front at the last strike that had an
//! estimate) and `lightning_energy` (the strongest strike's energy, a relative number).
//! Noise interrupts are logged with advice: raise `noise_floor` or move the sensor.

use anemone_drivers::as3935::{
    As3935, Distance, Interrupt, Location, Register, Settings, DEFAULT_ADDRESS,
};
use anemone_drivers::pulse::Edge;
use serde::{Deserialize, Serialize};

use super::i2c_chip::I2cChipAt;
use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::clock::Clock;
use crate::duration::{span_problem, Span};
use crate::hal::sim::{SimI2cChip, SimWorldBuilder, Switch, Weather};
use crate::hal::EdgeSource;
use crate::hal::{BusError, Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// Where the antenna is, for the analog front-end gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AntennaLocation {
    /// Indoors: more gain.
    Indoor,
    /// Outdoors (default).
    #[default]
    Outdoor,
}

/// `type = "as3935"`: an AS3935 lightning sensor on I2C with its IRQ on a GPIO line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct As3935Config {
    /// I2C bus number.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// I2C address: 0x01, 0x02 or 0x03 (ADD0/ADD1).
    #[serde(default = "default_address")]
    pub address: u8,
    /// GPIO chip of the IRQ line.
    #[serde(default)]
    pub chip: u8,
    /// BCM line number of the IRQ line.
    #[serde(default = "default_gpio")]
    pub gpio: u32,
    /// `outdoor` (default) or `indoor`.
    #[serde(default)]
    pub location: AntennaLocation,
    /// Noise floor level 0–7 (default 2): higher ignores more noise, and weaker strikes.
    #[serde(default = "default_noise_floor")]
    pub noise_floor: u8,
    /// Strikes within 15 minutes before the first is reported: 1, 5, 9 or 16.
    #[serde(default = "default_min_strikes")]
    pub min_strikes: u8,
    /// Do not raise the interrupt for disturbers.
    #[serde(default)]
    pub mask_disturbers: bool,
    /// How often the counts are written (1 minute to 1 hour).
    #[serde(default = "default_report_every")]
    pub report_every: Span,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    DEFAULT_ADDRESS
}
fn default_gpio() -> u32 {
    16
}
fn default_noise_floor() -> u8 {
    2
}
fn default_min_strikes() -> u8 {
    1
}
fn default_report_every() -> Span {
    Span::secs(300)
}

impl As3935Config {
    fn settings(&self) -> Settings {
        Settings {
            location: match self.location {
                AntennaLocation::Indoor => Location::Indoor,
                AntennaLocation::Outdoor => Location::Outdoor,
            },
            noise_floor: self.noise_floor,
            min_strikes: self.min_strikes,
            mask_disturbers: self.mask_disturbers,
            ..Settings::default()
        }
    }
}

impl SensorKindSpec for As3935Config {
    const TYPE: &'static str = "as3935";

    fn default_interval(&self) -> Span {
        Span::secs(1)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![
            Quantity::LightningStrikes,
            Quantity::LightningDistance,
            Quantity::LightningEnergy,
        ]
    }

    fn resources(&self) -> Vec<String> {
        vec![
            format!("I2C bus {} address {:#04x}", self.bus, self.address),
            format!("GPIO chip {} line {}", self.chip, self.gpio),
        ]
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        if !(1..=3).contains(&self.address) {
            p.push((
                "address",
                format!(
                    "{:#04x} is not an AS3935 address: 0x01, 0x02 or 0x03 (ADD0/ADD1 jumpers)",
                    self.address
                ),
            ));
        }
        if self.noise_floor > 7 {
            p.push(("noise_floor", "must be 0–7".into()));
        }
        if ![1, 5, 9, 16].contains(&self.min_strikes) {
            p.push(("min_strikes", "must be 1, 5, 9 or 16".into()));
        }
        if let Some(m) = span_problem(self.report_every, Span::secs(60), Span::secs(3600), "5m") {
            p.push(("report_every", m));
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
            chip: "AS3935",
            address: self.address,
            bus: self.bus,
            where_: i2c.describe(),
        };
        let mut dev = As3935::new(i2c, self.address);
        let mut delay = hal.delay();
        dev.init(self.settings(), &mut delay)
            .map_err(|e| at.error(e.is_no_device(), e))?;
        let edges = hal.edges(self.chip, self.gpio, 0)?;
        Ok(Box::new(As3935Source {
            id,
            dev,
            delay,
            edges,
            buf: Vec::new(),
            at,
            period: self.report_every.as_millis_i64().max(1),
            next_report: None,
            tally: Tally::default(),
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimAs3935::new(world.weather().clone(), world.clock().clone());
        world.i2c_chip(self.bus, self.address, Box::new(chip));
        world.switch(self.chip, self.gpio, Switch::Lightning);
    }

    fn gpio_line(&self) -> Option<(u8, u32)> {
        Some((self.chip, self.gpio))
    }
}

/// What happened since the last report.
#[derive(Debug, Default)]
struct Tally {
    strikes: u64,
    last_km: Option<f64>,
    max_energy: Option<u32>,
    disturbers: u64,
    noise: u64,
}

struct As3935Source {
    id: SensorId,
    dev: As3935<I2cBus>,
    delay: HalDelay,
    edges: EdgeSource,
    buf: Vec<Edge>,
    at: I2cChipAt,
    period: i64,
    next_report: Option<Timestamp>,
    tally: Tally,
}

impl As3935Source {
    fn report(&mut self, now: Timestamp) -> Vec<Reading> {
        let t = std::mem::take(&mut self.tally);
        if t.noise > 0 {
            tracing::warn!(
                sensor = %self.id,
                interrupts = t.noise,
                "Lightning sensor hears noise above its noise floor and cannot detect strikes meanwhile; raise noise_floor or move it away from the Pi and power supplies"
            );
        }
        if t.disturbers > 0 {
            tracing::debug!(sensor = %self.id, disturbers = t.disturbers, "Lightning sensor rejected disturbers");
        }
        let mut out = vec![Reading::new(
            now,
            &self.id,
            Quantity::LightningStrikes,
            t.strikes as f64,
        )];
        if let Some(km) = t.last_km {
            out.push(Reading::new(now, &self.id, Quantity::LightningDistance, km));
        }
        if let Some(e) = t.max_energy {
            out.push(Reading::new(
                now,
                &self.id,
                Quantity::LightningEnergy,
                f64::from(e),
            ));
        }
        out
    }
}

impl Source for As3935Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        self.buf.clear();
        self.edges.drain(now, &mut self.buf)?;
        // The line stays high until the interrupt register is read: each rise is one event.
        for _ in self.buf.iter().filter(|e| e.rising) {
            let event = self
                .dev
                .read_event(&mut self.delay)
                .map_err(|e| self.at.error(e.is_no_device(), e))?;
            match event.reason {
                Interrupt::Lightning => {
                    self.tally.strikes += 1;
                    if let Some(s) = event.strike {
                        if let Some(km) = s.distance.km() {
                            self.tally.last_km = Some(km);
                        }
                        self.tally.max_energy =
                            Some(self.tally.max_energy.unwrap_or(0).max(s.energy));
                    }
                }
                Interrupt::Disturber => self.tally.disturbers += 1,
                Interrupt::Noise => self.tally.noise += 1,
                Interrupt::None => {}
            }
        }
        // The first sample reports at once (so `anemone read` shows the sensor alive), then
        // one report at every multiple of the period.
        if self.next_report.is_some_and(|next| now < next) {
            return Ok(Vec::new());
        }
        self.next_report = Some((now.div_euclid(self.period) + 1) * self.period);
        Ok(self.report(now))
    }
}

/// The simulated AS3935: its registers, and for every read of the interrupt register an
/// event of the weather at that moment (a disturber every seventh time unless masked,
/// noise every third time when the noise floor is at its lowest level), with the storm's
/// distance and an energy for strikes. The IRQ line is [`Switch::Lightning`].
struct SimAs3935 {
    weather: Weather,
    clock: Clock,
    regs: [u8; 0x40],
    pointer: u8,
    events: u64,
}

impl SimAs3935 {
    fn new(weather: Weather, clock: Clock) -> SimAs3935 {
        let mut chip = SimAs3935 {
            weather,
            clock,
            regs: [0; 0x40],
            pointer: 0,
            events: 0,
        };
        chip.preset();
        chip
    }

    /// The datasheet's register defaults.
    fn preset(&mut self) {
        self.regs = [0; 0x40];
        self.regs[0x00] = 0x24;
        self.regs[0x01] = 0x22;
        self.regs[0x02] = 0xC2;
        self.regs[0x07] = Register::DISTANCE_OUT_OF_RANGE;
    }

    fn next_event(&mut self) {
        self.events += 1;
        let n = self.events;
        let t = self.clock.now();
        let noise_floor = (self.regs[0x01] >> 4) & 0x07;
        let masked = self.regs[0x03] & Register::MASK_DIST != 0;
        let reason = if noise_floor == 0 && n % 3 == 0 {
            Register::INT_NOISE
        } else if !masked && n % 7 == 0 {
            Register::INT_DISTURBER
        } else {
            Register::INT_LIGHTNING
        };
        self.regs[0x03] = (self.regs[0x03] & 0xF0) | reason;
        if reason == Register::INT_LIGHTNING {
            let energy = 20_000 + (t.rem_euclid(1_000_003) as u32 * 7) % 400_000;
            let [_, mm, m, l] = energy.to_be_bytes();
            self.regs[0x04] = l;
            self.regs[0x05] = m;
            self.regs[0x06] = mm & 0x1F;
            self.regs[0x07] = Distance::register_for_km(self.weather.storm_distance_km(t));
        }
    }
}

impl SimI2cChip for SimAs3935 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        match bytes {
            [Register::PRESET_DEFAULT, Register::DIRECT_COMMAND] => self.preset(),
            [Register::CALIB_RCO, Register::DIRECT_COMMAND] => {}
            [reg, value] if usize::from(*reg) < self.regs.len() => {
                self.regs[usize::from(*reg)] = *value;
            }
            [reg] => {
                self.pointer = *reg;
                if *reg == Register::INTERRUPT {
                    self.next_event();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self
                .regs
                .get(usize::from(self.pointer) + i)
                .copied()
                .unwrap_or(0);
        }
        if self.pointer == Register::INTERRUPT {
            // Reading the interrupt register clears it (and the IRQ line).
            self.regs[0x03] &= 0xF0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate_text, Config};
    use crate::sensors::open_hal;

    #[test]
    fn rules_and_resources() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"as3935\"\nid = \"l\"\naddress = 0x04\nnoise_floor = 8\nmin_strikes = 2\nreport_every = \"10s\"\n",
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        // Its IRQ line on the rain gauge's GPIO 6: a clash.
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"as3935\"\nid = \"l\"\ngpio = 6\n[[sensor]]\ntype = \"rain_gauge\"\nid = \"r\"\n",
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].message.contains("GPIO chip 0 line 6"),
            "{problems:?}"
        );
    }

    /// A thundery day in the simulator: strikes are counted per report, with the storm's
    /// distance and an energy; a noise floor of 0 brings noise interrupts instead of some.
    #[test]
    fn simulated_storm_is_counted_per_report() {
        let text =
            "[hal]\nsimulate = true\nseed = 3\n[[sensor]]\ntype = \"as3935\"\nid = \"storm\"\n";
        let config = Config::from_toml(text, "test").unwrap();
        let weather = Weather::new(
            config.hal.seed,
            config.station.longitude,
            config.station.altitude_m,
        );
        // Find a thundery hour of this seed in June 2026.
        let day = 1_780_272_000_000_i64;
        let start = (0..30 * 24)
            .map(|h| day + h * 3_600_000)
            .find(|t| weather.lightning_rate(t + 1_800_000) > 0.005)
            .expect("a thundery hour in a month");
        let clock = Clock::virtual_at(start);
        let hal = open_hal(&config, &clock, start);
        let mut source = crate::sensors::build(&config.sensors[0], &hal, &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut strikes = 0.0;
        let mut reports = 0;
        let mut distances = Vec::new();
        for s in 1..=3600 {
            let now = start + s * 1000;
            clock.jump(1000);
            for r in source.sample(now).unwrap() {
                match r.quantity {
                    Quantity::LightningStrikes => {
                        reports += 1;
                        strikes += r.value.unwrap();
                    }
                    Quantity::LightningDistance => distances.push(r.value.unwrap()),
                    Quantity::LightningEnergy => assert!(r.value.unwrap() > 0.0),
                    q => panic!("{q:?}"),
                }
            }
        }
        assert_eq!(reports, 13, "one at the start, then one every 5 minutes");
        assert!(strikes > 0.0, "no strike in a thundery hour");
        assert!(!distances.is_empty());
        assert!(
            distances.iter().all(|d| (0.0..=40.0).contains(d)),
            "{distances:?}"
        );
    }
}
