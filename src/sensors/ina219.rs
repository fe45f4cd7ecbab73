//! Texas Instruments INA219 on I2C (0x40–0x4F): voltage, current and power of the
//! battery (`role = "battery"`, the default) or of the solar charge (`role = "solar"`), on
//! one INA219 each. The battery's carries the low-battery policy ([`crate::power`]):
//! `low_battery_v` switches the station to longer intervals, `resume_v` back.

use anemone_drivers::ina219::{Calibration, Ina219, Register, DEFAULT_ADDRESS};
use serde::{Deserialize, Serialize};

use super::i2c_chip::{i2c_resource, I2cChipAt};
use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::clock::Clock;
use crate::duration::Span;
use crate::hal::sim::{SimI2cChip, SimWorldBuilder, Weather};
use crate::hal::{BusError, Hal, I2cBus};
use crate::power::LowBatteryPolicy;
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// What an INA219 measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerRole {
    /// The battery: `battery_*` quantities and the low-battery policy.
    #[default]
    Battery,
    /// The solar panel's charge: `solar_*` quantities.
    Solar,
}

/// `type = "ina219"`: a TI INA219 current/power monitor on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ina219Config {
    /// I2C bus.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// I2C address, 0x40–0x4F (A0/A1 straps; default 0x40).
    #[serde(default = "default_address")]
    pub address: u8,
    /// `battery` (default) or `solar`.
    #[serde(default)]
    pub role: PowerRole,
    /// Shunt resistor, Ω (breakout boards: 0.1).
    #[serde(default = "default_shunt")]
    pub shunt_ohms: f64,
    /// Largest current expected, A (sets the resolution; 3.2 A for a 0.1 Ω shunt).
    #[serde(default = "default_max_current")]
    pub max_current_a: f64,
    /// Battery only: below this voltage the station saves power (longer intervals).
    #[serde(default)]
    pub low_battery_v: Option<f64>,
    /// Battery only: at or above this voltage it returns to normal (above `low_battery_v`).
    #[serde(default)]
    pub resume_v: Option<f64>,
    /// Interval multiplier while saving power (default 10).
    #[serde(default = "default_factor")]
    pub saving_interval_factor: u32,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    DEFAULT_ADDRESS
}
fn default_shunt() -> f64 {
    0.1
}
fn default_max_current() -> f64 {
    3.2
}
fn default_factor() -> u32 {
    10
}

impl Ina219Config {
    fn quantities3(&self) -> [Quantity; 3] {
        match self.role {
            PowerRole::Battery => [
                Quantity::BatteryVoltage,
                Quantity::BatteryCurrent,
                Quantity::BatteryPower,
            ],
            PowerRole::Solar => [
                Quantity::SolarVoltage,
                Quantity::SolarCurrent,
                Quantity::SolarPower,
            ],
        }
    }
}

impl SensorKindSpec for Ina219Config {
    const TYPE: &'static str = "ina219";

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        let mut q = self.quantities3().to_vec();
        if self.low_battery_v.is_some() {
            q.push(Quantity::PowerSaving);
        }
        q
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        if !(0x40..=0x4F).contains(&self.address) {
            p.push((
                "address",
                format!(
                    "{:#04x} is not an INA219 address: use 0x40–0x4F (set by A0/A1)",
                    self.address
                ),
            ));
        }
        if Calibration::for_shunt(self.shunt_ohms, self.max_current_a).is_none() {
            p.push((
                "shunt_ohms",
                format!(
                    "a {} Ω shunt with max_current_a = {} gives no valid calibration: both must be positive, and their product at most 0.32 V",
                    self.shunt_ohms, self.max_current_a
                ),
            ));
        }
        if self.saving_interval_factor == 0 {
            p.push(("saving_interval_factor", "must be 1 or more".into()));
        }
        match (self.role, self.low_battery_v, self.resume_v) {
            (PowerRole::Solar, Some(_), _) | (PowerRole::Solar, _, Some(_)) => p.push((
                "low_battery_v",
                "the low-battery policy belongs on the battery's INA219 (role = \"battery\")".into(),
            )),
            (PowerRole::Battery, Some(_), None) | (PowerRole::Battery, None, Some(_)) => p.push((
                "resume_v",
                "give both low_battery_v and resume_v (for example 11.8 and 12.4 for a 12 V battery)".into(),
            )),
            (PowerRole::Battery, Some(low), Some(resume)) if resume <= low => p.push((
                "resume_v",
                format!("{resume} V must be above low_battery_v ({low} V), or the policy flaps"),
            )),
            _ => {}
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let cal = Calibration::for_shunt(self.shunt_ohms, self.max_current_a).ok_or_else(|| {
            SourceError::Device("INA219: no valid calibration for the shunt and current".into())
        })?;
        let i2c = hal.i2c(self.bus)?;
        let at = I2cChipAt {
            chip: "INA219",
            address: self.address,
            bus: self.bus,
            where_: i2c.describe(),
        };
        let mut dev = Ina219::new(i2c, self.address, cal);
        dev.init().map_err(|e| at.error(e.is_no_device(), e))?;
        let policy = match (self.role, self.low_battery_v, self.resume_v) {
            (PowerRole::Battery, Some(low), Some(resume)) => Some(LowBatteryPolicy::new(
                low,
                resume,
                self.saving_interval_factor,
                ctx.power.clone(),
            )),
            _ => None,
        };
        Ok(Box::new(Ina219Source {
            id,
            dev,
            quantities: self.quantities3(),
            policy,
            announced: false,
            at,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimIna219 {
            weather: world.weather().clone(),
            clock: world.clock().clone(),
            role: self.role,
            shunt_ohms: self.shunt_ohms,
            calibration: 0,
            pointer: 0,
        };
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }
}

struct Ina219Source {
    id: SensorId,
    dev: Ina219<I2cBus>,
    quantities: [Quantity; 3],
    policy: Option<LowBatteryPolicy>,
    /// The policy's state has been stored once since start.
    announced: bool,
    at: I2cChipAt,
}

impl Source for Ina219Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let m = self
            .dev
            .measure()
            .map_err(|e| self.at.error(e.is_no_device(), e))?;
        let [qv, qi, qp] = self.quantities;
        let mut out = vec![
            Reading::new(now, &self.id, qv, m.bus_v),
            Reading::new(now, &self.id, qi, m.current_a),
            Reading::new(now, &self.id, qp, m.power_w),
        ];
        if let Some(policy) = &mut self.policy {
            let changed = policy.update(m.bus_v);
            if changed.is_some() || !self.announced {
                self.announced = true;
                let saving = changed.unwrap_or(false);
                out.push(Reading::new(
                    now,
                    &self.id,
                    Quantity::PowerSaving,
                    if saving { 1.0 } else { 0.0 },
                ));
            }
        }
        Ok(out)
    }
}

/// The simulated INA219: its registers give the weather's battery or panel voltage and
/// current back through the calibration the driver wrote.
struct SimIna219 {
    weather: Weather,
    clock: Clock,
    role: PowerRole,
    shunt_ohms: f64,
    calibration: u16,
    pointer: u8,
}

impl SimIna219 {
    fn register(&self, reg: u8) -> u16 {
        let t = self.clock.now();
        let (volts, amps) = match self.role {
            PowerRole::Battery => (
                self.weather.battery_voltage(t),
                self.weather.battery_current(t),
            ),
            PowerRole::Solar => (self.weather.solar_voltage(t), self.weather.solar_current(t)),
        };
        // Current_LSB from the calibration register (its definition, inverted).
        let lsb = if self.calibration == 0 {
            return 0;
        } else {
            0.04096 / (f64::from(self.calibration) * self.shunt_ohms)
        };
        match reg {
            Register::BUS_VOLTAGE => (((volts / 0.004).round() as u16) << 3) | 0b10,
            Register::SHUNT_VOLTAGE => ((amps * self.shunt_ohms / 10e-6).round() as i16) as u16,
            Register::CURRENT => ((amps / lsb).round() as i16) as u16,
            Register::POWER => ((volts * amps).abs() / (20.0 * lsb)).round() as u16,
            Register::CALIBRATION => self.calibration,
            Register::CONFIG => Register::CONFIG_DEFAULT,
            _ => 0,
        }
    }
}

impl SimI2cChip for SimIna219 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        match bytes {
            [Register::CALIBRATION, h, l] => self.calibration = u16::from_be_bytes([*h, *l]),
            [reg, ..] => self.pointer = *reg,
            [] => {}
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        let v = self.register(self.pointer).to_be_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = v.get(i).copied().unwrap_or(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate_text;

    #[test]
    fn simulated_battery_and_policy_readings() {
        let text = "[hal]\nsimulate = true\n[[sensor]]\ntype = \"ina219\"\nid = \"battery\"\nlow_battery_v = 11.9\nresume_v = 12.4\n";
        let t = 1_780_272_000_000 + 14 * 3_600_000;
        let (mut source, weather) = crate::sensors::testing::simulated_source(text, t);
        let r = source.sample(t).unwrap();
        assert_eq!(r.len(), 4, "{r:?}");
        assert!((r[0].value.unwrap() - weather.battery_voltage(t)).abs() < 0.005);
        assert!((r[1].value.unwrap() - weather.battery_current(t)).abs() < 0.001);
        assert_eq!(r[3].quantity, Quantity::PowerSaving);
        assert_eq!(r[3].value, Some(0.0));
        // The state is stored once, then only when it changes.
        assert_eq!(source.sample(t + 60_000).unwrap().len(), 3);
    }

    #[test]
    fn rules() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"ina219\"\nid = \"b\"\naddress = 0x50\nlow_battery_v = 12.4\nresume_v = 11.8\n[[sensor]]\ntype = \"ina219\"\nid = \"s\"\naddress = 0x41\nrole = \"solar\"\nshunt_ohms = 1.0\nmax_current_a = 10\nlow_battery_v = 11\n",
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
