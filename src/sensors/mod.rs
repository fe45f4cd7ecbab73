//! One module per sensor kind: its config, rules, driver on a HAL and simulated chip.
//!
//! Every kind is a config struct that implements [`SensorKindSpec`], in its own file
//! beside its siblings, and one line of the [`sensor_kinds!`] registration below, which
//! declares the [`SensorKind`] enum, the list of type names `validate` offers, and the
//! one dispatch from the enum to the kinds. Adding a kind is: its driver (in `drivers/`),
//! its module here, its line in the registration, and its documentation.
//!
//! A source is built from its `[[sensor]]` entry ([`build`]) and then sampled by the
//! scheduler ([`scheduler`]) at its interval, or once by `anemone read`; both go through
//! [`start_on_bus`] and [`sample_on_bus`]. Sources never know about storage or MQTT.

pub mod analog;
pub mod anemometer;
pub mod as3935;
pub mod bme280;
pub mod bmp180;
pub mod current_meter;
pub mod do_ezo;
pub mod ds18b20;
pub mod ec_ezo;
mod entry;
mod ezo_circuit;
pub mod gps;
pub mod htu21d;
mod i2c_chip;
pub mod ina219;
pub mod ltr390;
pub mod orp_ezo;
mod ph;
pub mod ph_analog;
pub mod ph_ezo;
pub mod rain_gauge;
pub mod scd41;
pub mod scheduler;
pub mod tgs2600;
pub mod tsl2591;
pub mod wind_vane;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::Clock;
use crate::duration::Span;
use crate::hal::sim::SimWorldBuilder;
use crate::hal::{GpioError, Hal, HalConfig, HalDelay, I2cBus, OpenError, W1Error};
use crate::latest::Latest;
use crate::reading::{Precision, Quantity, Reading, SensorId, Timestamp};

pub(crate) use entry::COMMON_KEYS;
pub use entry::{OnStartupError, SensorConfig};
pub use ph::PhCalibrationInForce;

/// Longest debounce or minimum time between rain tips.
pub const DEBOUNCE_MAX: Span = Span::secs(60);

/// What the sensor kinds need to know of the station beyond their own entry: its
/// buses, its place (for the simulated weather) and the other sensors (for rules that
/// name one). `config::Config` implements it, so the kinds never see the whole file.
pub trait StationFacts {
    /// The `[hal]` section.
    fn hal(&self) -> &HalConfig;
    /// Longitude in degrees east and altitude in metres.
    fn site(&self) -> (f64, f64);
    /// Every `[[sensor]]` entry.
    fn sensors(&self) -> &[SensorConfig];

    /// Latitude in degrees north (where the simulated GPS is, without an anchor).
    fn latitude(&self) -> f64 {
        0.0
    }

    /// The sensor with this id.
    fn sensor(&self, id: &str) -> Option<&SensorConfig> {
        self.sensors().iter().find(|s| s.id == id)
    }
}

impl<T: StationFacts + ?Sized> StationFacts for Arc<T> {
    fn hal(&self) -> &HalConfig {
        (**self).hal()
    }
    fn site(&self) -> (f64, f64) {
        (**self).site()
    }
    fn sensors(&self) -> &[SensorConfig] {
        (**self).sensors()
    }
    fn latitude(&self) -> f64 {
        (**self).latitude()
    }
}

/// What a kind's config struct knows about itself. One implementation per kind.
pub trait SensorKindSpec: Sized + Serialize + for<'de> Deserialize<'de> {
    /// The `type = "…"` name.
    const TYPE: &'static str;

    /// A real station's interval for this kind.
    fn default_interval(&self) -> Span;

    /// The quantities it measures.
    fn quantities(&self) -> Vec<Quantity>;

    /// The hardware it claims, as human strings (`I2C bus 1 address 0x76`), so
    /// `validate` can refuse two sensors on one address or pin.
    fn resources(&self) -> Vec<String>;

    /// Its own rules: each problem as (key inside the `[[sensor]]` entry, message).
    /// `station` gives the other sensors, for references to them.
    fn check(&self, station: &dyn StationFacts, problems: &mut Vec<(&'static str, String)>);

    /// Builds the source on `hal`. Fails when the hardware is absent.
    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError>;

    /// Puts its simulated chip (or switch, or probe) into the simulated station.
    fn register_sim(&self, world: &mut SimWorldBuilder);

    /// The GPIO line it watches (chip, line), which `probe` checks.
    fn gpio_line(&self) -> Option<(u8, u32)> {
        None
    }

    /// Decimal places its `quantity` is given with on the wire, where its resolution
    /// differs from the quantity's default ([`Quantity::decimals`]).
    fn decimals(&self, _quantity: Quantity) -> Option<u8> {
        None
    }

    /// What `probe` looks for on an I2C bus: the chips of this kind that answer.
    fn scan_i2c(_i2c: &mut I2cBus, _delay: &mut HalDelay, _bus: u8) -> Vec<I2cFound> {
        Vec::new()
    }

    /// How `probe` names what it looks for when nothing answers (`BME280 0x76/0x77`).
    const PROBE_HINT: Option<&'static str> = None;
}

/// A chip that answered `probe` on an I2C bus.
#[derive(Debug, Clone, PartialEq)]
pub struct I2cFound {
    /// 7-bit address.
    pub address: u8,
    /// What answered, for the report.
    pub what: String,
    /// A `[[sensor]]` entry (or a comment) to paste into the config.
    pub snippet: Option<String>,
}

/// Declares [`SensorKind`] (one newtype variant per kind), [`SensorKind::TYPES`] and
/// the one dispatch from the enum to each kind's [`SensorKindSpec`].
macro_rules! sensor_kinds {
    ($($(#[$doc:meta])* $variant:ident($config:ty),)*) => {
        /// The kinds of sensor Anemone can read, with their settings (`type = "…"`).
        #[derive(Debug, Clone, PartialEq)]
        pub enum SensorKind {
            $($(#[$doc])* $variant($config),)*
        }

        impl SensorKind {
            /// Every `type = "…"` name, in the order the kinds are declared.
            pub const TYPES: &'static [&'static str] =
                &[$(<$config as SensorKindSpec>::TYPE,)*];

            /// The `type = "…"` name.
            pub fn type_name(&self) -> &'static str {
                match self { $(SensorKind::$variant(_) => <$config as SensorKindSpec>::TYPE,)* }
            }

            /// A real station's interval for this kind.
            pub fn default_interval(&self) -> Span {
                match self { $(SensorKind::$variant(c) => c.default_interval(),)* }
            }

            /// The quantities this kind measures.
            pub fn quantities(&self) -> Vec<Quantity> {
                match self { $(SensorKind::$variant(c) => c.quantities(),)* }
            }

            /// The hardware resources it claims, as human strings.
            pub fn resources(&self) -> Vec<String> {
                match self { $(SensorKind::$variant(c) => c.resources(),)* }
            }

            /// The kind's own rules: (key inside the entry, message) per problem.
            pub fn check(&self, station: &dyn StationFacts) -> Vec<(&'static str, String)> {
                let mut out = Vec::new();
                match self { $(SensorKind::$variant(c) => c.check(station, &mut out),)* }
                out
            }

            fn build(
                &self,
                id: SensorId,
                hal: &Hal,
                ctx: &SourceContext,
            ) -> Result<Box<dyn Source>, SourceError> {
                match self { $(SensorKind::$variant(c) => c.build(id, hal, ctx),)* }
            }

            fn register_sim(&self, world: &mut SimWorldBuilder) {
                match self { $(SensorKind::$variant(c) => c.register_sim(world),)* }
            }

            /// The GPIO line it watches, if any.
            pub fn gpio_line(&self) -> Option<(u8, u32)> {
                match self { $(SensorKind::$variant(c) => c.gpio_line(),)* }
            }

            /// Decimal places of `quantity` on the wire, where this kind (with its
            /// settings) has its own resolution.
            pub fn decimals(&self, quantity: Quantity) -> Option<u8> {
                match self { $(SensorKind::$variant(c) => c.decimals(quantity),)* }
            }

            /// Every kind's chips that answer on `i2c`.
            pub fn scan_i2c(i2c: &mut I2cBus, delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
                let mut out = Vec::new();
                $(out.extend(<$config as SensorKindSpec>::scan_i2c(i2c, delay, bus));)*
                out
            }

            /// What `probe` looks for on I2C, for the "nothing answered" line.
            pub fn probe_hints() -> Vec<&'static str> {
                [$(<$config as SensorKindSpec>::PROBE_HINT,)*].into_iter().flatten().collect()
            }

            fn deserialize_tagged(ty: &str, table: toml::Table) -> Result<SensorKind, String> {
                $(
                    if ty == <$config as SensorKindSpec>::TYPE {
                        return <$config>::deserialize(toml::Value::Table(table))
                            .map(SensorKind::$variant)
                            .map_err(|e| e.message().trim().to_string());
                    }
                )*
                Err(format!(
                    "unknown variant `{ty}`, expected one of {}",
                    SensorKind::TYPES.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                ))
            }
        }

        impl Serialize for SensorKind {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $(SensorKind::$variant(c) => Tagged { ty: self.type_name(), config: c }.serialize(s),)* }
            }
        }
    };
}

sensor_kinds! {
    /// Bosch BME280 on I2C: air temperature, humidity, pressure.
    Bme280(bme280::Bme280Config),
    /// Maxim DS18B20 1-Wire temperature probe.
    Ds18b20(ds18b20::Ds18b20Config),
    /// Cup anemometer with a reed switch on a GPIO line.
    Anemometer(anemometer::AnemometerConfig),
    /// Resistor-network wind vane read through an ADC.
    WindVane(wind_vane::WindVaneConfig),
    /// Tipping-bucket rain gauge with a reed switch on a GPIO line.
    RainGauge(rain_gauge::RainGaugeConfig),
    /// Atlas Scientific EZO-pH circuit on I2C.
    PhEzo(ph_ezo::PhEzoConfig),
    /// Analog pH probe board read through an ADS1115.
    PhAnalog(ph_analog::PhAnalogConfig),
    /// TE Connectivity HTU21D(F) on I2C: air temperature, humidity.
    Htu21d(htu21d::Htu21dConfig),
    /// Bosch BMP180 (or BMP085) on I2C: station air pressure.
    Bmp180(bmp180::Bmp180Config),
    /// Figaro TGS2600 air-quality sensor through an MCP3427: resistance and Rs/R0.
    Tgs2600(tgs2600::Tgs2600Config),
    /// ams TSL2591 on I2C: illuminance.
    Tsl2591(tsl2591::Tsl2591Config),
    /// Lite-On LTR390 on I2C: UV index and illuminance.
    Ltr390(ltr390::Ltr390Config),
    /// ams AS3935 lightning sensor on I2C with its IRQ on a GPIO line.
    As3935(as3935::As3935Config),
    /// Atlas Scientific EZO-EC circuit on I2C: conductivity (salinity is derived).
    EcEzo(ec_ezo::EcEzoConfig),
    /// Atlas Scientific EZO-DO circuit on I2C: dissolved oxygen, % saturation.
    DoEzo(do_ezo::DoEzoConfig),
    /// Atlas Scientific EZO-ORP circuit on I2C: oxidation-reduction potential.
    OrpEzo(orp_ezo::OrpEzoConfig),
    /// Sensirion SCD41 on I2C: CO2, with air temperature and humidity.
    Scd41(scd41::Scd41Config),
    /// TI INA219 on I2C: battery or solar voltage, current, power; the low-battery policy.
    Ina219(ina219::Ina219Config),
    /// A GPS receiver served by gpsd: position, fix, speed over ground, anchor watch.
    Gps(gps::GpsConfig),
    /// Paddle-wheel or propeller water current meter on a GPIO line.
    CurrentMeter(current_meter::CurrentMeterConfig),
    /// Any voltage-output sensor on an ADC channel, through a curve (turbidity, nitrate, …).
    Analog(analog::AnalogConfig),
}

/// A kind's settings with its `type` beside them, as the TOML has them.
#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(flatten)]
    config: &'a T,
}

impl<'de> Deserialize<'de> for SensorKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let ty = match table.remove("type") {
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "invalid type: {}, expected a string naming the sensor type",
                    other.type_str()
                )))
            }
            None => return Err(D::Error::missing_field("type")),
        };
        SensorKind::deserialize_tagged(&ty, table).map_err(D::Error::custom)
    }
}

/// Why a sensor gave no value.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A bus could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A GPIO line could not be watched.
    #[error(transparent)]
    Gpio(#[from] GpioError),
    /// A 1-Wire probe could not be read.
    #[error(transparent)]
    W1(#[from] W1Error),
    /// The device did not answer (absent or miswired).
    #[error("{0}")]
    Absent(String),
    /// The device answered with something unusable.
    #[error("{0}")]
    Device(String),
}

impl SourceError {
    /// True when the device is simply not there (the start-up policy applies).
    pub fn is_absent(&self) -> bool {
        matches!(
            self,
            SourceError::Absent(_) | SourceError::Open(_) | SourceError::Gpio(_)
        ) || matches!(
            self,
            SourceError::W1(W1Error::NoProbe { .. } | W1Error::NoBus { .. })
        )
    }
}

/// What a failed sample records: one `sensor_error` reading (no value) per quantity.
pub fn error_readings(id: &SensorId, quantities: &[Quantity], ts: Timestamp) -> Vec<Reading> {
    quantities
        .iter()
        .map(|q| Reading::sensor_error(ts, id, *q))
        .collect()
}

/// A sensor ready to be sampled.
pub trait Source: Send {
    /// Takes one sample at station time `now` (may block on the bus).
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError>;

    /// The hardware's own id (a DS18B20's ROM id), stored beside the sensor id.
    fn hardware_id(&self) -> Option<String> {
        None
    }
}

/// What sources may need beyond their own config.
#[derive(Clone, Default)]
pub struct SourceContext {
    /// Latest values of other sensors.
    pub latest: Latest,
    /// Stored pH calibrations in force, by sensor id.
    pub ph_calibrations: HashMap<String, PhCalibrationInForce>,
    /// Stored `analog` calibrations in force, by sensor id.
    pub analog_calibrations: HashMap<String, analog::AnalogCalibrationInForce>,
    /// The low-battery policy's state: the battery's INA219 sets it, the sensor tasks
    /// stretch their intervals by it.
    pub power: crate::power::PowerState,
}

/// Builds the source for one `[[sensor]]` entry. Fails when the hardware is absent.
pub fn build(
    sensor: &SensorConfig,
    hal: &Hal,
    ctx: &SourceContext,
) -> Result<Box<dyn Source>, SourceError> {
    sensor.kind.build(Arc::from(sensor.id.as_str()), hal, ctx)
}

/// The buses `config` describes: simulated (every configured sensor's chip registered
/// by its kind) when `[hal] simulate` is set, the real ones otherwise. `start` is the
/// station time the simulated switches start from.
pub fn open_hal(config: &impl StationFacts, clock: &Clock, start: Timestamp) -> Hal {
    let hal = config.hal();
    if !hal.simulate {
        return Hal::real(hal);
    }
    let (longitude, altitude_m) = config.site();
    let mut world = SimWorldBuilder::new(hal.seed, longitude, altitude_m, clock.clone());
    world.set_latitude(config.latitude());
    for s in config.sensors() {
        s.kind.register_sim(&mut world);
    }
    Hal::simulated(hal, world.build(), start)
}

/// Runs `f` off the runtime thread when it may block on a real bus, inline on simulated
/// buses. A panic in a driver becomes an error instead of taking the station down.
async fn on_bus<T: Send + 'static>(
    inline: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    if inline {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into())
        })
    } else {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Builds a sensor's source without blocking the runtime (the scheduler and `read`).
pub async fn start_on_bus(
    sensor: &SensorConfig,
    hal: &Hal,
    ctx: &SourceContext,
) -> Result<Box<dyn Source>, SourceError> {
    let (sensor, hal2, ctx) = (sensor.clone(), hal.clone(), ctx.clone());
    match on_bus(hal.is_simulated(), move || build(&sensor, &hal2, &ctx)).await {
        Ok(r) => r,
        Err(e) => Err(SourceError::Device(format!(
            "driver panicked while starting: {e}"
        ))),
    }
}

/// Takes one sample without blocking the runtime (the scheduler and `read`). Gives the
/// source back unless the driver panicked.
pub async fn sample_on_bus(
    mut source: Box<dyn Source>,
    inline: bool,
    now: Timestamp,
) -> (Option<Box<dyn Source>>, Result<Vec<Reading>, SourceError>) {
    let joined = on_bus(inline, move || {
        let r = source.sample(now);
        (source, r)
    })
    .await;
    match joined {
        Ok((s, r)) => (Some(s), r),
        Err(panic) => (
            None,
            Err(SourceError::Device(format!("driver panicked: {panic}"))),
        ),
    }
}

/// True for a number above zero (false for NaN).
fn positive(x: f64) -> bool {
    x > 0.0
}

/// How many decimals each configured sensor's quantities get on the wire: each kind's own
/// resolution, else the quantity's default (see [`Precision`]).
pub fn precision(sensors: &[SensorConfig]) -> Precision {
    let mut p = Precision::default();
    for s in sensors {
        for q in s.kind.quantities() {
            if let Some(d) = s.kind.decimals(q) {
                p.set(&s.id, q, d);
            }
        }
    }
    p
}

/// Helpers for the kinds' tests (a test module: the config it parses sits above `sensors`).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// For the kinds' tests: the first sensor of `config_text` built on its simulated chip at
    /// station time `t`, and the weather it is simulating.
    pub(crate) fn simulated_source(
        config_text: &str,
        t: Timestamp,
    ) -> (Box<dyn Source>, crate::hal::sim::Weather) {
        let config = crate::config::Config::from_toml(config_text, "test").unwrap();
        let hal = open_hal(&config, &Clock::virtual_at(t), t);
        let source = build(&config.sensors[0], &hal, &SourceContext::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let weather = crate::hal::sim::Weather::new(
            config.hal.seed,
            config.station.longitude,
            config.station.altitude_m,
        );
        (source, weather)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Every kind's config, with its defaults, goes to TOML and back unchanged; and each
    /// type name parses to the kind that bears it.
    #[test]
    fn every_kind_round_trips_through_toml() {
        for ty in SensorKind::TYPES {
            let text = format!("type = \"{ty}\"\n");
            let kind: SensorKind = toml::from_str(&text).unwrap();
            assert_eq!(kind.type_name(), *ty);
            let back = toml::to_string(&kind).unwrap();
            let again: SensorKind = toml::from_str(&back).unwrap();
            assert_eq!(kind, again, "{back}");
        }
    }

    /// Settings other than the defaults (the enums' other variants, nested tables).
    #[test]
    fn kinds_with_settings_round_trip_through_toml() {
        for text in [
            "type = \"bme280\"\naddress = 0x77\nmode = \"normal\"\noversampling = 4\niir_filter = 2\n",
            "type = \"ds18b20\"\nrom = \"28-0316a2791cff\"\nquantity = \"water_temperature\"\n",
            "type = \"anemometer\"\nchip = 1\ngpio = 17\npulses_per_revolution = 2.0\nkmh_per_hz = 2.5\ndebounce = \"2ms\"\n",
            "type = \"wind_vane\"\nadc = \"ads1115\"\nchannel = 2\naddress = 0x49\noffset_deg = 90.0\n",
            "type = \"rain_gauge\"\ngpio = 13\nmm_per_tip = 0.5\nmin_tip_interval = \"1s\"\n",
            "type = \"ph_ezo\"\naddress = 0x64\ntemperature_sensor = \"water\"\n",
            "type = \"ph_analog\"\nchannel = 1\ncalibration = { neutral_volts = 1.6, slope_volts_per_ph = -0.055 }\n",
        ] {
            let kind: SensorKind = toml::from_str(text).unwrap();
            let back = toml::to_string(&kind).unwrap();
            let again: SensorKind = toml::from_str(&back).unwrap();
            assert_eq!(kind, again, "{back}");
        }
    }

    /// The simulator drives the switch a configured kind registered on its line (with the
    /// kind's own settings), and nothing on other lines.
    #[test]
    fn simulated_switches_are_the_configured_ones() {
        let text =
            "[hal]\nsimulate = true\n[[sensor]]\ntype = \"anemometer\"\nid = \"w\"\ngpio = 17\n";
        let config = Config::from_toml(text, "test").unwrap();
        let clock = Clock::real();
        let hal = open_hal(&config, &clock, 0);
        assert!(hal.edges(0, 17, 0).is_ok());
        let err = hal.edges(0, 5, 0).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("no simulated switch")),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_keys_and_types_are_refused() {
        let e = toml::from_str::<SensorKind>("type = \"anemometer\"\ngpoi = 5\n").unwrap_err();
        assert!(e.message().contains("unknown field `gpoi`"), "{e}");
        let e = toml::from_str::<SensorKind>("type = \"bme208\"\n").unwrap_err();
        assert!(e.message().contains("unknown variant `bme208`"), "{e}");
    }
}
