//! Atlas Scientific EZO-EC conductivity circuit on I2C (default address 0x64): specific
//! conductance in µS/cm, compensated to 25 °C with the water temperature of another sensor
//! (`temperature_sensor`). The pipeline derives salinity (PSS-78) from it. The circuit keeps
//! its own calibration (`anemone calibrate ec`).
//!
//! Wiring: as every EZO circuit ([`anemone_drivers::ezo`]); on a buoy with several probes,
//! put it on an isolated carrier board or the probes disturb each other.

use anemone_drivers::ezo_ec::{EzoEc, DEFAULT_ADDRESS};
use serde::{Deserialize, Serialize};

use super::ezo_circuit::{check_reference, ezo_error, latest_of, SimEzoCircuit};
use super::i2c_chip::i2c_resource;
use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::SimWorldBuilder;
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::latest::Latest;
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// `type = "ec_ezo"`: an Atlas Scientific EZO-EC circuit on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcEzoConfig {
    /// I2C bus.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// I2C address (default 0x64).
    #[serde(default = "default_address")]
    pub address: u8,
    /// Id of the sensor whose water temperature compensates the reading (else 25 °C).
    #[serde(default)]
    pub temperature_sensor: Option<String>,
    /// The probe's cell constant K (printed on it: 0.1, 1.0 or 10), set at start when
    /// given; else the circuit keeps the one it has.
    #[serde(default)]
    pub probe_k: Option<f64>,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    DEFAULT_ADDRESS
}

impl SensorKindSpec for EcEzoConfig {
    const TYPE: &'static str = "ec_ezo";
    const PROBE_HINT: Option<&'static str> = Some("EZO-EC 0x64");

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::Conductivity]
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        check_reference(
            station,
            "temperature_sensor",
            &self.temperature_sensor,
            Quantity::WaterTemperature,
            p,
        );
        if let Some(k) = self.probe_k {
            if !(0.1..=10.0).contains(&k) {
                p.push((
                    "probe_k",
                    format!("{k} is not a probe constant: use the K printed on the probe (0.1–10)"),
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
        let where_ = format!("{:#04x} on {}", self.address, i2c.describe());
        let mut dev = EzoEc::new(i2c, self.address);
        let mut delay = hal.delay();
        let err = |e| ezo_error("EZO-EC", &where_, e);
        dev.status(&mut delay).map_err(err)?;
        dev.enable_conductivity_only(&mut delay).map_err(err)?;
        if let Some(k) = self.probe_k {
            dev.set_probe_constant(k, &mut delay).map_err(err)?;
        }
        Ok(Box::new(EcSource {
            id,
            dev,
            delay,
            temperature_sensor: self.temperature_sensor.clone(),
            latest: ctx.latest.clone(),
            where_,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimEzoCircuit::new(
            world.weather().clone(),
            world.clock().clone(),
            "EC",
            |w, t| format!("{:.0}", w.conductivity(t)),
            3,
        );
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }
}

struct EcSource {
    id: SensorId,
    dev: EzoEc<I2cBus>,
    delay: HalDelay,
    temperature_sensor: Option<String>,
    latest: Latest,
    where_: String,
}

impl Source for EcSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let temp = latest_of(
            &self.latest,
            &self.temperature_sensor,
            Quantity::WaterTemperature,
            now,
        );
        let us_cm = match temp {
            Some(t) => self.dev.read_compensated(t, &mut self.delay),
            None => self.dev.read(&mut self.delay),
        }
        .map_err(|e| ezo_error("EZO-EC", &self.where_, e))?;
        Ok(vec![Reading::new(
            now,
            &self.id,
            Quantity::Conductivity,
            us_cm,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate_text;

    #[test]
    fn simulated_circuit_gives_sea_water() {
        let text = "[hal]\nsimulate = true\n[[sensor]]\ntype = \"ec_ezo\"\nid = \"ec\"\n";
        let t = 1_780_272_000_000;
        let (mut source, weather) = crate::sensors::testing::simulated_source(text, t);
        let r = source.sample(t).unwrap();
        assert_eq!(r[0].quantity, Quantity::Conductivity);
        assert!((r[0].value.unwrap() - weather.conductivity(t)).abs() < 1.0);
    }

    #[test]
    fn rules() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"ec_ezo\"\nid = \"ec\"\ntemperature_sensor = \"sea\"\nprobe_k = 20\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
