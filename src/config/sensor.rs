//! `[[sensor]]` entries: a closed, type-tagged set of sensor kinds.

use serde::{Deserialize, Deserializer, Serialize};

use super::Span;
use crate::reading::Quantity;

/// What to do when a sensor does not answer at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnStartupError {
    /// Stop Anemone with an error.
    Fail,
    /// Keep trying; record `sensor_error` readings meanwhile (default).
    #[default]
    Retry,
    /// Log it and run without this sensor.
    Skip,
}

/// One `[[sensor]]` entry: the keys every sensor has, plus its kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorConfig {
    /// The user's name for the sensor, unique in the file (`[a-z0-9_-]`).
    pub id: String,
    /// How often it is read; default depends on the kind.
    pub interval: Span,
    /// What to do when it is absent at start-up.
    pub on_startup_error: OnStartupError,
    /// The kind and its settings.
    #[serde(flatten)]
    pub kind: SensorKind,
}

/// Keys shared by every sensor kind, taken out before the kind is parsed.
pub(crate) const COMMON_KEYS: [&str; 3] = ["id", "interval", "on_startup_error"];

impl<'de> Deserialize<'de> for SensorConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let id = match table.remove("id") {
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`id` must be a string, not {}",
                    other.type_str()
                )))
            }
            None => return Err(D::Error::missing_field("id")),
        };
        let interval = table
            .remove("interval")
            .map(|v| Span::deserialize(v).map_err(|e| D::Error::custom(format!("interval: {e}"))))
            .transpose()?;
        let on_startup_error = table
            .remove("on_startup_error")
            .map(|v| {
                OnStartupError::deserialize(v)
                    .map_err(|e| D::Error::custom(format!("on_startup_error: {e}")))
            })
            .transpose()?
            .unwrap_or_default();
        let kind = SensorKind::deserialize(toml::Value::Table(table)).map_err(D::Error::custom)?;
        let interval = interval.unwrap_or_else(|| kind.default_interval());
        Ok(SensorConfig {
            id,
            interval,
            on_startup_error,
            kind,
        })
    }
}

/// Which ADC a wind vane or analog probe is read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdcKind {
    /// MCP3008, 10-bit, on SPI.
    #[default]
    Mcp3008,
    /// ADS1115, 16-bit, on I2C.
    Ads1115,
}

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

/// Calibration of an analog pH probe, used until `anemone calibrate` records one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhAnalogCalibration {
    /// Probe output (after the amplifier) at pH 7.00, in volts.
    pub neutral_volts: f64,
    /// Slope at 25 °C in volts per pH unit (negative for a bare electrode, −0.05916).
    pub slope_volts_per_ph: f64,
}

impl Default for PhAnalogCalibration {
    fn default() -> Self {
        PhAnalogCalibration {
            neutral_volts: 1.5,
            slope_volts_per_ph: -0.05916,
        }
    }
}

fn d_i2c_bus() -> u8 {
    1
}
fn d_bme_addr() -> u8 {
    0x76
}
fn d_oversampling() -> u8 {
    1
}
fn d_ds_quantity() -> Quantity {
    Quantity::GroundTemperature
}
fn d_auto() -> String {
    "auto".into()
}
fn d_anemo_gpio() -> u32 {
    5
}
fn d_rain_gpio() -> u32 {
    6
}
fn d_one() -> f64 {
    1.0
}
fn d_kmh_per_hz() -> f64 {
    2.4
}
fn d_anemo_debounce() -> Span {
    Span::millis(1)
}
fn d_rain_debounce() -> Span {
    Span::millis(25)
}
fn d_mm_per_tip() -> f64 {
    0.2794
}
fn d_vref() -> f64 {
    3.3
}
fn d_divider() -> f64 {
    4_700.0
}
fn d_tolerance() -> f64 {
    0.1
}
fn d_ads_addr() -> u8 {
    0x48
}
fn d_ezo_addr() -> u8 {
    0x63
}
fn d_min_tip_interval() -> Span {
    Span::millis(500)
}

/// The standard 16-position reed-switch vane (SparkFun/Argent 80422), ohms per direction
/// from N (0°) clockwise in 22.5° steps.
pub const DEFAULT_VANE_OHMS: [f64; 16] = [
    33_000.0, 6_570.0, 8_200.0, 891.0, 1_000.0, 688.0, 2_200.0, 1_410.0, 3_900.0, 3_140.0,
    16_000.0, 14_120.0, 120_000.0, 42_120.0, 64_900.0, 21_880.0,
];

/// The configured vane resistances as the 16 the drivers take (missing ones are 0;
/// `validate` insists on exactly 16).
pub fn vane_ohms(resistors: &[f64]) -> [f64; 16] {
    let mut ohms = [0.0; 16];
    for (o, r) in ohms.iter_mut().zip(resistors) {
        *o = *r;
    }
    ohms
}

fn d_vane_ohms() -> Vec<f64> {
    DEFAULT_VANE_OHMS.to_vec()
}

/// The kinds of sensor Anemone can read, with their settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SensorKind {
    /// Bosch BME280 on I2C: air temperature, humidity, pressure.
    Bme280 {
        /// I2C bus number (`/dev/i2c-<bus>`).
        #[serde(default = "d_i2c_bus")]
        bus: u8,
        /// 0x76 (SDO to GND) or 0x77 (SDO to 3V3).
        #[serde(default = "d_bme_addr")]
        address: u8,
        /// `forced` (default) or `normal`.
        #[serde(default)]
        mode: BmeMode,
        /// Oversampling for T, P and H: 1, 2, 4, 8 or 16.
        #[serde(default = "d_oversampling")]
        oversampling: u8,
        /// IIR filter coefficient: 0 (off), 2, 4, 8 or 16.
        #[serde(default)]
        iir_filter: u8,
    },
    /// Maxim DS18B20 1-Wire temperature probe.
    Ds18b20 {
        /// Kernel ROM id (`28-…`), or `auto` for the only probe on the bus.
        #[serde(default = "d_auto")]
        rom: String,
        /// What it measures: `ground_temperature`, `water_temperature` or `air_temperature`.
        #[serde(default = "d_ds_quantity")]
        quantity: Quantity,
    },
    /// Cup anemometer with a reed switch on a GPIO line.
    Anemometer {
        /// GPIO chip number (`/dev/gpiochip<chip>`).
        #[serde(default)]
        chip: u8,
        /// BCM line number.
        #[serde(default = "d_anemo_gpio")]
        gpio: u32,
        /// Switch closures per revolution of the cups.
        #[serde(default = "d_one")]
        pulses_per_revolution: f64,
        /// km/h per revolution per second (datasheet: 2.4).
        #[serde(default = "d_kmh_per_hz")]
        kmh_per_hz: f64,
        /// Ignore contact bounce shorter than this.
        #[serde(default = "d_anemo_debounce")]
        debounce: Span,
    },
    /// Resistor-network wind vane read through an ADC.
    WindVane {
        /// `mcp3008` (SPI) or `ads1115` (I2C).
        #[serde(default)]
        adc: AdcKind,
        /// ADC channel (MCP3008: 0–7, ADS1115: 0–3).
        #[serde(default)]
        channel: u8,
        /// SPI bus (MCP3008).
        #[serde(default)]
        spi_bus: u8,
        /// SPI chip select (MCP3008).
        #[serde(default)]
        spi_cs: u8,
        /// I2C bus (ADS1115).
        #[serde(default = "d_i2c_bus")]
        bus: u8,
        /// I2C address (ADS1115).
        #[serde(default = "d_ads_addr")]
        address: u8,
        /// Reference / supply voltage of the divider.
        #[serde(default = "d_vref")]
        vref: f64,
        /// The fixed resistor of the divider, in ohms.
        #[serde(default = "d_divider")]
        divider_ohms: f64,
        /// Vane resistance per direction, from N clockwise (16 values).
        #[serde(default = "d_vane_ohms")]
        resistors: Vec<f64>,
        /// Largest distance in volts from a table entry still accepted.
        #[serde(default = "d_tolerance")]
        tolerance_volts: f64,
        /// Degrees to add when the vane's N mark does not point north.
        #[serde(default)]
        offset_deg: f64,
    },
    /// Tipping-bucket rain gauge with a reed switch on a GPIO line.
    RainGauge {
        /// GPIO chip number.
        #[serde(default)]
        chip: u8,
        /// BCM line number.
        #[serde(default = "d_rain_gpio")]
        gpio: u32,
        /// Rain per tip in mm.
        #[serde(default = "d_mm_per_tip")]
        mm_per_tip: f64,
        /// Ignore contact bounce shorter than this.
        #[serde(default = "d_rain_debounce")]
        debounce: Span,
        /// Tips closer than this are physically impossible and flagged.
        #[serde(default = "d_min_tip_interval")]
        min_tip_interval: Span,
    },
    /// Atlas Scientific EZO-pH circuit on I2C.
    PhEzo {
        /// I2C bus.
        #[serde(default = "d_i2c_bus")]
        bus: u8,
        /// I2C address (default 0x63).
        #[serde(default = "d_ezo_addr")]
        address: u8,
        /// Id of the sensor whose water temperature compensates the reading.
        #[serde(default)]
        temperature_sensor: Option<String>,
    },
    /// Analog pH probe board read through an ADS1115.
    PhAnalog {
        /// I2C bus.
        #[serde(default = "d_i2c_bus")]
        bus: u8,
        /// ADS1115 address.
        #[serde(default = "d_ads_addr")]
        address: u8,
        /// ADS1115 channel 0–3.
        #[serde(default)]
        channel: u8,
        /// Id of the sensor whose water temperature compensates the reading.
        #[serde(default)]
        temperature_sensor: Option<String>,
        /// Fallback calibration (a stored `anemone calibrate` result takes precedence).
        #[serde(default)]
        calibration: PhAnalogCalibration,
    },
}

impl SensorKind {
    /// The `type = "…"` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            SensorKind::Bme280 { .. } => "bme280",
            SensorKind::Ds18b20 { .. } => "ds18b20",
            SensorKind::Anemometer { .. } => "anemometer",
            SensorKind::WindVane { .. } => "wind_vane",
            SensorKind::RainGauge { .. } => "rain_gauge",
            SensorKind::PhEzo { .. } => "ph_ezo",
            SensorKind::PhAnalog { .. } => "ph_analog",
        }
    }

    /// A real station's interval for this kind.
    pub fn default_interval(&self) -> Span {
        match self {
            SensorKind::Anemometer { .. } | SensorKind::WindVane { .. } => Span::secs(1),
            SensorKind::Bme280 { .. } => Span::secs(10),
            SensorKind::Ds18b20 { .. } => Span::secs(30),
            SensorKind::RainGauge { .. } => Span::secs(60),
            SensorKind::PhEzo { .. } | SensorKind::PhAnalog { .. } => Span::secs(60),
        }
    }

    /// The quantities this kind measures.
    pub fn quantities(&self) -> Vec<Quantity> {
        match self {
            SensorKind::Bme280 { .. } => vec![
                Quantity::AirTemperature,
                Quantity::RelativeHumidity,
                Quantity::AirPressure,
            ],
            SensorKind::Ds18b20 { quantity, .. } => vec![*quantity],
            SensorKind::Anemometer { .. } => vec![Quantity::WindSpeed],
            SensorKind::WindVane { .. } => vec![Quantity::WindDirection],
            SensorKind::RainGauge { .. } => vec![Quantity::Rain],
            SensorKind::PhEzo { .. } | SensorKind::PhAnalog { .. } => {
                vec![Quantity::Ph, Quantity::PhTemperature]
            }
        }
    }

    /// The hardware resources it claims, as human strings (`i2c-1@0x76`, `gpio0/5`),
    /// so `validate` can reject two sensors on one address or pin.
    pub fn resources(&self) -> Vec<String> {
        match self {
            SensorKind::Bme280 { bus, address, .. } | SensorKind::PhEzo { bus, address, .. } => {
                vec![format!("I2C bus {bus} address {address:#04x}")]
            }
            SensorKind::Ds18b20 { rom, .. } if rom != "auto" => vec![format!("1-Wire probe {rom}")],
            SensorKind::Ds18b20 { .. } => vec![],
            SensorKind::Anemometer { chip, gpio, .. }
            | SensorKind::RainGauge { chip, gpio, .. } => {
                vec![format!("GPIO chip {chip} line {gpio}")]
            }
            SensorKind::WindVane {
                adc: AdcKind::Mcp3008,
                spi_bus,
                spi_cs,
                channel,
                ..
            } => vec![format!(
                "MCP3008 on SPI {spi_bus}.{spi_cs} channel {channel}"
            )],
            SensorKind::WindVane {
                adc: AdcKind::Ads1115,
                bus,
                address,
                channel,
                ..
            }
            | SensorKind::PhAnalog {
                bus,
                address,
                channel,
                ..
            } => vec![format!(
                "ADS1115 on I2C bus {bus} address {address:#04x} channel {channel}"
            )],
        }
    }
}
