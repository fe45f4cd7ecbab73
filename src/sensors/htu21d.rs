//! HTU21D(F): air temperature and relative humidity over I2C (the chip on the Raspberry
//! Pi Oracle Weather Station HAT).
//!
//! Wire VDD to 3V3 (pin 1), GND, SDA to GPIO 2 (pin 3) and SCL to GPIO 3 (pin 5). The
//! address is always 0x40 (the chip has no address pin): a second HTU21D needs a second
//! bus. The humidity is the datasheet's temperature-compensated value, unclamped (QC flags
//! what is out of range).

use anemone_drivers::htu21d::{
    self, Htu21d, Kind, Register, Resolution as DriverResolution, ADDRESS,
};
use embedded_hal::i2c::I2c;
use serde::{Deserialize, Serialize};

use super::i2c_chip::{check_fixed_address, i2c_resource, I2cChipAt};
use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::clock::Clock;
use crate::duration::Span;
use crate::hal::sim::{SimI2cChip, SimWorldBuilder, Weather};
use crate::hal::{BusError, Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// Measurement resolution (user register bits 7 and 0). Lower resolutions convert faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum HtuResolution {
    /// 12-bit humidity, 14-bit temperature (the chip's default).
    #[default]
    #[serde(rename = "rh12_t14")]
    Rh12T14,
    /// 11-bit humidity, 11-bit temperature.
    #[serde(rename = "rh11_t11")]
    Rh11T11,
    /// 10-bit humidity, 13-bit temperature.
    #[serde(rename = "rh10_t13")]
    Rh10T13,
    /// 8-bit humidity, 12-bit temperature.
    #[serde(rename = "rh8_t12")]
    Rh8T12,
}

impl HtuResolution {
    fn driver(self) -> DriverResolution {
        match self {
            HtuResolution::Rh12T14 => DriverResolution::Rh12T14,
            HtuResolution::Rh11T11 => DriverResolution::Rh11T11,
            HtuResolution::Rh10T13 => DriverResolution::Rh10T13,
            HtuResolution::Rh8T12 => DriverResolution::Rh8T12,
        }
    }
}

/// `type = "htu21d"`: a TE Connectivity HTU21D(F) on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Htu21dConfig {
    /// I2C bus number (`/dev/i2c-<bus>`).
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// Always 0x40: the chip's only address.
    #[serde(default = "default_address")]
    pub address: u8,
    /// `rh12_t14` (default), `rh11_t11`, `rh10_t13` or `rh8_t12`.
    #[serde(default)]
    pub resolution: HtuResolution,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    ADDRESS
}

impl SensorKindSpec for Htu21dConfig {
    const TYPE: &'static str = "htu21d";
    const PROBE_HINT: Option<&'static str> = Some("HTU21D 0x40");

    fn default_interval(&self) -> Span {
        Span::secs(10)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::AirTemperature, Quantity::RelativeHumidity]
    }

    /// The configured resolution: humidity steps of 0.04 % (12 bits) to 0.7 % (8 bits),
    /// temperature steps of 0.01 °C (14 bits) to 0.09 °C (11 bits).
    fn decimals(&self, quantity: Quantity) -> Option<u8> {
        use HtuResolution::*;
        match (quantity, self.resolution) {
            (Quantity::RelativeHumidity, Rh12T14) => Some(2),
            (Quantity::RelativeHumidity, Rh11T11 | Rh10T13) => Some(1),
            (Quantity::RelativeHumidity, Rh8T12) => Some(0),
            (Quantity::AirTemperature, Rh11T11) => Some(1),
            (Quantity::AirTemperature, _) => Some(2),
            _ => None,
        }
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        check_fixed_address("HTU21D", self.address, ADDRESS, p);
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(Htu21dSource::build(id, self, hal)?))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimHtu21d::new(world.weather().clone(), world.clock().clone());
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }

    fn scan_i2c(i2c: &mut I2cBus, _delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        // No chip id: an answer to "read user register" at 0x40 is the best sign there is.
        let mut user = [0u8];
        if i2c
            .write_read(ADDRESS, &[Register::READ_USER], &mut user)
            .is_err()
        {
            return Vec::new();
        }
        vec![I2cFound {
            address: ADDRESS,
            what: format!(
                "HTU21D(F) or a compatible chip (temperature, humidity; user register {:#04x})",
                user[0]
            ),
            snippet: Some(format!(
                "[[sensor]]\ntype = \"htu21d\"\nid = \"air_htu\"\nbus = {bus}\n"
            )),
        }]
    }
}

struct Htu21dSource {
    id: SensorId,
    dev: Htu21d<I2cBus>,
    delay: HalDelay,
    at: I2cChipAt,
}

impl Htu21dSource {
    fn build(id: SensorId, c: &Htu21dConfig, hal: &Hal) -> Result<Self, SourceError> {
        let i2c = hal.i2c(c.bus)?;
        let at = I2cChipAt {
            chip: "HTU21D",
            address: ADDRESS,
            bus: c.bus,
            where_: i2c.describe(),
        };
        let mut dev = Htu21d::new(i2c);
        let mut delay = hal.delay();
        dev.reset(&mut delay)
            .map_err(|e| at.error(e.is_no_device(), e))?;
        if c.resolution != HtuResolution::default() {
            dev.set_resolution(c.resolution.driver())
                .map_err(|e| at.error(e.is_no_device(), e))?;
        }
        Ok(Htu21dSource { id, dev, delay, at })
    }
}

impl Source for Htu21dSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let m = self
            .dev
            .measure(&mut self.delay)
            .map_err(|e| self.at.error(e.is_no_device(), e))?;
        Ok(vec![
            Reading::new(now, &self.id, Quantity::AirTemperature, m.temperature_c),
            Reading::new(now, &self.id, Quantity::RelativeHumidity, m.humidity_pct),
        ])
    }
}

/// The simulated HTU21D(F): no-hold trigger commands answered with the frame of the
/// weather at that moment (humidity uncompensated, so the driver's compensation gives
/// the weather's value back), the user register, and soft reset.
struct SimHtu21d {
    weather: Weather,
    clock: Clock,
    user: u8,
    reply: Vec<u8>,
}

/// The user register after power-on or soft reset (OTP reload disabled).
const SIM_USER_DEFAULT: u8 = 0x02;

impl SimHtu21d {
    fn new(weather: Weather, clock: Clock) -> SimHtu21d {
        SimHtu21d {
            weather,
            clock,
            user: SIM_USER_DEFAULT,
            reply: Vec::new(),
        }
    }

    /// The frame a measurement of `kind` gives now, at the configured resolution.
    fn measure(&self, kind: Kind) -> [u8; 3] {
        let t = self.clock.now();
        let celsius = self.weather.air_temperature(t);
        let (raw, bits) = match kind {
            Kind::Temperature => (htu21d::temperature_raw_for(celsius), self.bits().1),
            Kind::Humidity => {
                // The inverse of the driver's RH + (25 − T) · (−0.15).
                let rh = self.weather.relative_humidity(t)
                    - (25.0 - celsius) * htu21d::HUMIDITY_TEMP_COEFF;
                (htu21d::humidity_raw_for(rh), self.bits().0)
            }
        };
        let kept = !((1u32 << (16 - bits)) - 1) as u16;
        htu21d::frame_for(raw & kept, kind)
    }

    /// (humidity bits, temperature bits) of the current resolution.
    fn bits(&self) -> (u32, u32) {
        match DriverResolution::from_user_register(self.user) {
            DriverResolution::Rh12T14 => (12, 14),
            DriverResolution::Rh8T12 => (8, 12),
            DriverResolution::Rh10T13 => (10, 13),
            DriverResolution::Rh11T11 => (11, 11),
        }
    }
}

impl SimI2cChip for SimHtu21d {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        match bytes {
            [Register::TRIGGER_T_NO_HOLD] => self.reply = self.measure(Kind::Temperature).into(),
            [Register::TRIGGER_RH_NO_HOLD] => self.reply = self.measure(Kind::Humidity).into(),
            [Register::READ_USER] => self.reply = vec![self.user],
            [Register::WRITE_USER, value] => self.user = *value,
            [Register::SOFT_RESET] => {
                self.user = SIM_USER_DEFAULT;
                self.reply.clear();
            }
            _ => {}
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        // Nothing asked for: SDA stays high, as on a real bus.
        buf.fill(0xFF);
        let n = buf.len().min(self.reply.len());
        buf[..n].copy_from_slice(&self.reply[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{validate_text, Config};
    use crate::sensors::{open_hal, SensorKind};

    const CONFIG: &str = "[hal]\nsimulate = true\n[mqtt]\nenabled = false\n[[sensor]]\ntype = \"htu21d\"\nid = \"hat\"\n";

    /// Values go on the wire to the configured resolution (the one place: `Precision`).
    #[test]
    fn values_are_given_to_the_configured_resolution() {
        let text = format!("{CONFIG}resolution = \"rh8_t12\"\n");
        let (cfg, problems) = validate_text(&text);
        assert!(problems.is_empty(), "{problems:?}");
        let p = cfg.map(|c| c.precision()).unwrap_or_default();
        assert_eq!(p.decimals("hat", Quantity::RelativeHumidity), 0);
        assert_eq!(p.decimals("hat", Quantity::AirTemperature), 2);
        assert_eq!(p.round("hat", Quantity::RelativeHumidity, 81.4), 81.0);
        let (cfg, _) = validate_text(CONFIG);
        let p = cfg.map(|c| c.precision()).unwrap_or_default();
        assert_eq!(p.round("hat", Quantity::RelativeHumidity, 81.4372), 81.44);
        // Derived from its readings: the quantity's own decimals.
        assert_eq!(p.decimals("hat", Quantity::DewPoint), 1);
    }

    #[test]
    fn config_round_trips_through_toml_and_refuses_unknown_keys() {
        for text in [
            "type = \"htu21d\"\n",
            "type = \"htu21d\"\nbus = 3\naddress = 0x40\nresolution = \"rh8_t12\"\n",
        ] {
            let kind: SensorKind = toml::from_str(text).unwrap();
            let back = toml::to_string(&kind).unwrap();
            let again: SensorKind = toml::from_str(&back).unwrap();
            assert_eq!(kind, again, "{back}");
        }
        let kind: SensorKind = toml::from_str("type = \"htu21d\"\n").unwrap();
        assert_eq!(
            kind,
            SensorKind::Htu21d(Htu21dConfig {
                bus: 1,
                address: 0x40,
                resolution: HtuResolution::Rh12T14
            })
        );
        assert_eq!(kind.resources(), vec!["I2C bus 1 address 0x40".to_string()]);
        let e = toml::from_str::<SensorKind>("type = \"htu21d\"\nadress = 0x40\n").unwrap_err();
        assert!(e.message().contains("unknown field `adress`"), "{e}");
        let e =
            toml::from_str::<SensorKind>("type = \"htu21d\"\nresolution = \"12\"\n").unwrap_err();
        assert!(e.message().contains("rh12_t14"), "{e}");
    }

    #[test]
    fn validate_refuses_two_on_one_bus_and_other_addresses() {
        let sensor = |id: &str, extra: &str| {
            format!("[[sensor]]\ntype = \"htu21d\"\nid = \"{id}\"\n{extra}")
        };
        // Beside a BME280 (0x76) and on a second bus: no clash.
        let text = format!(
            "[[sensor]]\ntype = \"bme280\"\nid = \"air\"\n{}{}",
            sensor("a", ""),
            sensor("b", "bus = 3\n")
        );
        let (_, problems) = validate_text(&text);
        assert!(problems.is_empty(), "{problems:?}");
        // Two on bus 1: the one address.
        let (_, problems) = validate_text(&format!("{}{}", sensor("a", ""), sensor("b", "")));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].message.contains("I2C bus 1 address 0x40"),
            "{problems:?}"
        );
        let (_, problems) = validate_text(&sensor("a", "address = 0x41\n"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].key.ends_with("address"), "{problems:?}");
        assert!(problems[0].message.contains("only at 0x40"), "{problems:?}");
    }

    #[test]
    fn absent_chip_names_the_bus_address_and_fix() {
        // A simulated station where nothing answers at 0x40.
        let config = Config::from_toml("[hal]\nsimulate = true\n", "test").unwrap();
        let hal = open_hal(&config, &Clock::real(), 0);
        let c: Htu21dConfig = toml::from_str("").unwrap();
        let err = c
            .build(Arc::from("hat"), &hal, &SourceContext::default())
            .err()
            .unwrap();
        assert!(err.is_absent(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("no HTU21D answered at 0x40 on simulated I2C bus 1"),
            "{text}"
        );
        assert!(text.contains("i2cdetect -y 1"), "{text}");
        let c: Htu21dConfig = toml::from_str("bus = 3").unwrap();
        let err = c
            .build(Arc::from("hat"), &hal, &SourceContext::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("simulated I2C bus 3"), "{err}");
        assert!(err.contains("i2cdetect -y 3"), "{err}");
    }

    #[test]
    fn simulated_chip_gives_the_weather_at_every_resolution() {
        for resolution in ["rh12_t14", "rh11_t11", "rh10_t13", "rh8_t12"] {
            let text = format!("{CONFIG}resolution = \"{resolution}\"\n");
            let config = Config::from_toml(&text, "test").unwrap();
            let t = crate::clock::system_now();
            let clock = Clock::virtual_at(t);
            let hal = open_hal(&config, &clock, t);
            let mut source = crate::sensors::build(&config.sensors[0], &hal, &Default::default())
                .unwrap_or_else(|e| panic!("{e}"));
            let readings = source.sample(t).unwrap();
            let value = |q| {
                readings
                    .iter()
                    .find(|r| r.quantity == q)
                    .and_then(|r| r.value)
                    .unwrap()
            };
            let weather = Weather::new(
                config.hal.seed,
                config.station.longitude,
                config.station.altitude_m,
            );
            // Within one step of the coarsest resolution (11-bit T: 175.72 / 2^11 = 0.086 °C;
            // 8-bit RH: 0.49 %RH, plus the compensation of the temperature step).
            let temp = value(Quantity::AirTemperature);
            assert!(
                (temp - weather.air_temperature(t)).abs() < 0.09,
                "{resolution}: {temp}"
            );
            let rh = value(Quantity::RelativeHumidity);
            assert!(
                (rh - weather.relative_humidity(t)).abs() < 0.6,
                "{resolution}: {rh}"
            );
            assert_eq!(readings.len(), 2);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simulated_run_stores_temperature_and_humidity() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("htu.db");
        let mut config = Config::from_toml(CONFIG, "test").unwrap();
        config.storage.path = db.clone();
        config.web.enabled = false;
        const JUNE_1: Timestamp = 1_780_272_000_000;
        let opts = crate::station::RunOptions {
            clock: Clock::virtual_at(JUNE_1),
            duration_ms: Some(3_600_000),
            db_path: db.clone(),
            live: None,
            writer_handle: None,
            progress: None,
            web_addr: None,
        };
        crate::station::run(Arc::new(config), opts, std::future::pending())
            .await
            .unwrap();
        let store = crate::store::Store::open_read_only(&db, chrono_tz::UTC).unwrap();
        let readings = store.readings(&Default::default()).unwrap();
        for (q, lo, hi) in [
            (Quantity::AirTemperature, -30.0, 45.0),
            (Quantity::RelativeHumidity, 5.0, 100.0),
        ] {
            let values: Vec<f64> = readings
                .iter()
                .filter(|r| &*r.reading.sensor == "hat" && r.reading.quantity == q)
                .map(|r| {
                    assert!(r.reading.flags.is_ok(), "{:?}", r.reading);
                    r.reading.value.unwrap()
                })
                .collect();
            // One an interval (10 s) over the hour.
            assert_eq!(values.len(), 360, "{q:?}");
            assert!(
                values.iter().all(|v| (lo..=hi).contains(v)),
                "{q:?} {values:?}"
            );
        }
    }
}
