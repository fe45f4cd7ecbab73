//! Atlas Scientific EZO-DO dissolved-oxygen circuit on I2C (default address 0x61):
//! dissolved oxygen in mg/L and % saturation. Before each reading the circuit is given the
//! latest water temperature (`temperature_sensor`), the conductivity an EZO-EC measured
//! (`conductivity_sensor`, salinity compensation) and the barometer's station pressure
//! (`pressure_sensor`, pressure compensation), each when configured and fresh. The circuit
//! keeps its own calibration (`anemone calibrate do`).

use anemone_drivers::ezo_do::{EzoDo, DEFAULT_ADDRESS};
use serde::{Deserialize, Serialize};

use super::ezo_circuit::{check_reference, ezo_error, latest_of, SimEzoCircuit};
use super::i2c_chip::i2c_resource;
use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::SimWorldBuilder;
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::latest::Latest;
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// `type = "do_ezo"`: an Atlas Scientific EZO-DO circuit on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoEzoConfig {
    /// I2C bus.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// I2C address (default 0x61).
    #[serde(default = "default_address")]
    pub address: u8,
    /// Id of the sensor whose water temperature compensates the reading.
    #[serde(default)]
    pub temperature_sensor: Option<String>,
    /// Id of the EZO-EC whose conductivity compensates for salinity (else fresh water).
    #[serde(default)]
    pub conductivity_sensor: Option<String>,
    /// Id of the barometer whose station pressure compensates the reading (else
    /// 101.325 kPa).
    #[serde(default)]
    pub pressure_sensor: Option<String>,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    DEFAULT_ADDRESS
}

impl SensorKindSpec for DoEzoConfig {
    const TYPE: &'static str = "do_ezo";
    const PROBE_HINT: Option<&'static str> = Some("EZO-DO 0x61");

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::DissolvedOxygen, Quantity::OxygenSaturation]
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        for (key, id, q) in [
            (
                "temperature_sensor",
                &self.temperature_sensor,
                Quantity::WaterTemperature,
            ),
            (
                "conductivity_sensor",
                &self.conductivity_sensor,
                Quantity::Conductivity,
            ),
            (
                "pressure_sensor",
                &self.pressure_sensor,
                Quantity::AirPressure,
            ),
        ] {
            check_reference(station, key, id, q, p);
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
        let mut dev = EzoDo::new(i2c, self.address);
        let mut delay = hal.delay();
        let err = |e| ezo_error("EZO-DO", &where_, e);
        dev.status(&mut delay).map_err(err)?;
        dev.enable_outputs(&mut delay).map_err(err)?;
        Ok(Box::new(DoSource {
            id,
            dev,
            delay,
            config: self.clone(),
            latest: ctx.latest.clone(),
            where_,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimEzoCircuit::new(
            world.weather().clone(),
            world.clock().clone(),
            "DO",
            |w, t| format!("{:.2},{:.1}", w.dissolved_oxygen(t), w.oxygen_saturation(t)),
            2,
        );
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }
}

struct DoSource {
    id: SensorId,
    dev: EzoDo<I2cBus>,
    delay: HalDelay,
    config: DoEzoConfig,
    latest: Latest,
    where_: String,
}

impl Source for DoSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let c = &self.config;
        let err = |e| ezo_error("EZO-DO", &self.where_, e);
        if let Some(us_cm) = latest_of(
            &self.latest,
            &c.conductivity_sensor,
            Quantity::Conductivity,
            now,
        ) {
            self.dev
                .set_salinity_conductivity(us_cm, &mut self.delay)
                .map_err(err)?;
        }
        if let Some(hpa) = latest_of(&self.latest, &c.pressure_sensor, Quantity::AirPressure, now) {
            self.dev
                .set_pressure_hpa(hpa, &mut self.delay)
                .map_err(err)?;
        }
        let temp = latest_of(
            &self.latest,
            &c.temperature_sensor,
            Quantity::WaterTemperature,
            now,
        );
        let o = match temp {
            Some(t) => self.dev.read_compensated(t, &mut self.delay),
            None => self.dev.read(&mut self.delay),
        }
        .map_err(err)?;
        let mut out = vec![Reading::new(
            now,
            &self.id,
            Quantity::DissolvedOxygen,
            o.mg_per_l,
        )];
        if let Some(pct) = o.saturation_pct {
            out.push(Reading::new(now, &self.id, Quantity::OxygenSaturation, pct));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate_text;

    #[test]
    fn simulated_circuit_gives_both_outputs_and_compensates() {
        let text = "[hal]\nsimulate = true\n[[sensor]]\ntype = \"do_ezo\"\nid = \"do\"\nconductivity_sensor = \"ec\"\npressure_sensor = \"p\"\n[[sensor]]\ntype = \"ec_ezo\"\nid = \"ec\"\n[[sensor]]\ntype = \"bmp180\"\nid = \"p\"\n";
        let t = 1_780_272_000_000 + 15 * 3_600_000;
        let (mut source, weather) = crate::sensors::testing::simulated_source(text, t);
        let r = source.sample(t).unwrap();
        assert_eq!(r.len(), 2);
        assert!((r[0].value.unwrap() - weather.dissolved_oxygen(t)).abs() < 0.01);
        assert!((r[1].value.unwrap() - weather.oxygen_saturation(t)).abs() < 0.1);
    }

    #[test]
    fn references_must_measure_their_quantity() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"do_ezo\"\nid = \"do\"\nconductivity_sensor = \"do\"\npressure_sensor = \"nope\"\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("does not measure conductivity"),
            "{problems:?}"
        );
    }
}
