//! TGS2600: the air-quality sensor of the Raspberry Pi Oracle Weather Station HAT, read
//! through an MCP3427 ADC (on the HAT: the snap-off AIR board's MCP3427 at 0x6A, channel 0).
//!
//! What is stored is what the sensor measures: its resistance Rs
//! (`air_quality_resistance`, Ω) and, once a clean-air resistance R0 is configured from a
//! calibration, Rs/R0 (`air_quality_ratio`; 1 in clean air, lower with smoke, exhaust,
//! hydrogen or alcohol). It is not a concentration of any gas, and no "ppm" or percentage
//! is made up from it. To calibrate, run the station in clean (outdoor, windy) air for an
//! hour after a day's warm-up, note the `air_quality_resistance` values, and put their mean
//! in `clean_air_ohms`. The ratio does not depend on `load_ohms`; the resistance does.

use anemone_drivers::mcp3427::{self, Gain, Mcp3427, Resolution};
use anemone_drivers::tgs2600::{self, Circuit, CleanAirBaseline};
use serde::{Deserialize, Serialize};

use super::i2c_chip::scan_by_read;
use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::{SimChannel, SimWorldBuilder};
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// The address of the HAT's AIR-board MCP3427.
pub const HAT_AIR_ADDRESS: u8 = 0x6A;

/// `type = "tgs2600"`: a Figaro TGS2600 through an MCP3427.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tgs2600Config {
    /// I2C bus of the MCP3427.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// MCP3427 address (0x68–0x6F; 0x6A on the HAT's AIR board).
    #[serde(default = "default_address")]
    pub address: u8,
    /// MCP3427 channel, 0 or 1.
    #[serde(default)]
    pub channel: u8,
    /// Circuit voltage Vc across the sensor and its load resistor, volts.
    #[serde(default = "default_circuit_volts")]
    pub circuit_volts: f64,
    /// Load resistor RL, ohms, across which the ADC reads.
    #[serde(default = "default_load_ohms")]
    pub load_ohms: f64,
    /// Rs in clean air (R0) from your calibration, ohms; without it only the resistance
    /// is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_air_ohms: Option<f64>,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    HAT_AIR_ADDRESS
}
fn default_circuit_volts() -> f64 {
    5.0
}
fn default_load_ohms() -> f64 {
    10_000.0
}

impl Tgs2600Config {
    fn circuit(&self) -> Circuit {
        Circuit {
            supply_volts: self.circuit_volts,
            load_ohms: self.load_ohms,
        }
    }
}

impl SensorKindSpec for Tgs2600Config {
    const TYPE: &'static str = "tgs2600";

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        let mut q = vec![Quantity::AirQualityResistance];
        if self.clean_air_ohms.is_some() {
            q.push(Quantity::AirQualityRatio);
        }
        q
    }

    fn resources(&self) -> Vec<String> {
        vec![format!(
            "MCP3427 on I2C bus {} address {:#04x} channel {}",
            self.bus, self.address, self.channel
        )]
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        if !(0x68..=0x6F).contains(&self.address) {
            p.push((
                "address",
                format!(
                    "{:#04x} is not an MCP3427 address: 0x68–0x6F (0x6A on the HAT's AIR board)",
                    self.address
                ),
            ));
        }
        if self.channel > 1 {
            p.push(("channel", "the MCP3427 has channels 0 and 1".into()));
        }
        if !(self.circuit_volts > 0.0 && self.circuit_volts <= 24.0) {
            p.push((
                "circuit_volts",
                "must be the circuit voltage, e.g. 5.0 (the datasheet's maximum is 24)".into(),
            ));
        }
        if !super::positive(self.load_ohms) {
            p.push((
                "load_ohms",
                "must be the load resistor in ohms, e.g. 10000".into(),
            ));
        }
        if let Some(r0) = self.clean_air_ohms {
            if !super::positive(r0) {
                p.push((
                    "clean_air_ohms",
                    "must be the resistance measured in clean air, in ohms (e.g. 40000); leave it out until you have calibrated".into(),
                ));
            }
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let i2c = hal.i2c(self.bus)?;
        let where_ = format!(
            "MCP3427 {:#04x} channel {} on {}",
            self.address,
            self.channel,
            i2c.describe()
        );
        let mut source = Tgs2600Source {
            id,
            adc: Mcp3427::new(i2c, self.address),
            delay: hal.delay(),
            channel: self.channel,
            circuit: self.circuit(),
            baseline: self
                .clean_air_ohms
                .map(|r0_ohms| CleanAirBaseline { r0_ohms }),
            where_,
            bus: self.bus,
        };
        // One read now, so an absent ADC is reported at start-up.
        source.volts()?;
        Ok(Box::new(source))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let what = SimChannel::AirQuality {
            circuit: self.circuit(),
            // A sensor in the middle of the datasheet's 10–90 kΩ, or the calibrated one.
            clean_air_ohms: self.clean_air_ohms.unwrap_or(40_000.0),
        };
        world.mcp3427_channel(self.bus, self.address, self.channel, what);
    }

    /// The AIR board's MCP3427 at 0x6A answers a read with its result and configuration
    /// bytes (it has no id register).
    fn scan_i2c(i2c: &mut I2cBus, _delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        scan_by_read(
            i2c,
            HAT_AIR_ADDRESS,
            |_| "MCP3427 ADC, the Oracle Weather Station AIR board's (TGS2600 air quality on channel 0), or another chip at this address".into(),
            format!("[[sensor]]\ntype = \"tgs2600\"\nid = \"air_quality\"\nbus = {bus}\naddress = 0x6A\nchannel = 0\n"),
        )
    }
}

struct Tgs2600Source {
    id: SensorId,
    adc: Mcp3427<I2cBus>,
    delay: HalDelay,
    channel: u8,
    circuit: Circuit,
    baseline: Option<CleanAirBaseline>,
    where_: String,
    bus: u8,
}

impl Tgs2600Source {
    fn volts(&mut self) -> Result<f64, SourceError> {
        let code = self
            .adc
            .read_code(self.channel, Resolution::Bits16, Gain::X1, &mut self.delay)
            .map_err(|e| {
                if e.is_no_device() {
                    SourceError::Absent(format!(
                        "nothing answered as {}: check the AIR board is attached and that `i2cdetect -y {}` shows it",
                        self.where_, self.bus
                    ))
                } else {
                    SourceError::Device(format!("{}: {e}", self.where_))
                }
            })?;
        if code >= i32::from(i16::MAX) {
            return Err(SourceError::Device(format!(
                "{}: the voltage is beyond the ADC's 2.048 V range; check circuit_volts, load_ohms and the wiring",
                self.where_
            )));
        }
        Ok(mcp3427::volts(code, Resolution::Bits16, Gain::X1))
    }
}

impl Source for Tgs2600Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let volts = self.volts()?;
        let rs = tgs2600::resistance_ohms(volts, self.circuit)
            .map_err(|e| SourceError::Device(format!("{}: {e}", self.where_)))?;
        let mut out = vec![Reading::new(
            now,
            &self.id,
            Quantity::AirQualityResistance,
            rs,
        )];
        if let Some(b) = self.baseline {
            let ratio = tgs2600::ratio(rs, b)
                .map_err(|e| SourceError::Device(format!("{}: {e}", self.where_)))?;
            out.push(Reading::new(
                now,
                &self.id,
                Quantity::AirQualityRatio,
                ratio,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate_text;

    #[test]
    fn simulated_sensor_gives_the_weather_ratio() {
        let text = "[hal]\nsimulate = true\n[[sensor]]\ntype = \"tgs2600\"\nid = \"air\"\nclean_air_ohms = 35000.0\n";
        let t = 1_780_272_000_000 + 8 * 3_600_000;
        let (mut source, weather) = crate::sensors::testing::simulated_source(text, t);
        let r = source.sample(t).unwrap();
        let expected = weather.air_quality_ratio(t);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].quantity, Quantity::AirQualityRatio);
        let ratio = r[1].value.unwrap();
        assert!((ratio - expected).abs() < 0.001, "{ratio} {expected}");
        let rs = r[0].value.unwrap();
        assert!((rs - expected * 35_000.0).abs() < 40.0, "{rs}");
    }

    #[test]
    fn rules() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"tgs2600\"\nid = \"a\"\naddress = 0x48\nchannel = 2\nload_ohms = 0.0\nclean_air_ohms = -1.0\n",
        );
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(problems.len(), 4, "{problems:?}");
        for k in ["address", "channel", "load_ohms", "clean_air_ohms"] {
            assert!(keys.iter().any(|key| key.ends_with(k)), "{k}: {keys:?}");
        }
        // The HAT's vane (0x69 channel 0) and air board (0x6A channel 0) do not clash.
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"tgs2600\"\nid = \"a\"\n[[sensor]]\ntype = \"wind_vane\"\nid = \"v\"\nadc = \"mcp3427\"\naddress = 0x69\ndivider_ohms = 75000.0\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let kind: crate::sensors::SensorKind = toml::from_str("type = \"tgs2600\"\n").unwrap();
        assert_eq!(kind.quantities(), vec![Quantity::AirQualityResistance]);
    }
}
