//! Atlas Scientific EZO-ORP circuit on I2C (default address 0x62): oxidation-reduction
//! potential in mV. The circuit keeps its own calibration (`anemone calibrate orp`).
//!
//! 0x62 is also the SCD41's only address: with both on one bus, move the circuit
//! (`I2C,103` over UART or I2C makes it 0x67) and set `address` here; `validate` refuses
//! two sensors on one address.

use anemone_drivers::ezo_orp::{EzoOrp, DEFAULT_ADDRESS};
use serde::{Deserialize, Serialize};

use super::ezo_circuit::{ezo_error, SimEzoCircuit};
use super::i2c_chip::i2c_resource;
use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::SimWorldBuilder;
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// `type = "orp_ezo"`: an Atlas Scientific EZO-ORP circuit on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrpEzoConfig {
    /// I2C bus.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// I2C address (default 0x62).
    #[serde(default = "default_address")]
    pub address: u8,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    DEFAULT_ADDRESS
}

impl SensorKindSpec for OrpEzoConfig {
    const TYPE: &'static str = "orp_ezo";
    const PROBE_HINT: Option<&'static str> = Some("EZO-ORP 0x62");

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::Orp]
    }

    fn resources(&self) -> Vec<String> {
        i2c_resource(self.bus, self.address)
    }

    fn check(&self, _station: &dyn StationFacts, _p: &mut Vec<(&'static str, String)>) {}

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let i2c = hal.i2c(self.bus)?;
        let where_ = format!("{:#04x} on {}", self.address, i2c.describe());
        let mut dev = EzoOrp::new(i2c, self.address);
        let mut delay = hal.delay();
        dev.status(&mut delay)
            .map_err(|e| ezo_error("EZO-ORP", &where_, e))?;
        Ok(Box::new(OrpSource {
            id,
            dev,
            delay,
            where_,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimEzoCircuit::new(
            world.weather().clone(),
            world.clock().clone(),
            "OR",
            |w, t| format!("{:.1}", w.orp(t)),
            1,
        );
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }
}

struct OrpSource {
    id: SensorId,
    dev: EzoOrp<I2cBus>,
    delay: HalDelay,
    where_: String,
}

impl Source for OrpSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let mv = self
            .dev
            .read(&mut self.delay)
            .map_err(|e| ezo_error("EZO-ORP", &self.where_, e))?;
        Ok(vec![Reading::new(now, &self.id, Quantity::Orp, mv)])
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn simulated_circuit_gives_the_potential() {
        let text = "[hal]\nsimulate = true\n[[sensor]]\ntype = \"orp_ezo\"\nid = \"orp\"\n";
        let t = 1_780_272_000_000;
        let (mut source, weather) = crate::sensors::testing::simulated_source(text, t);
        let r = source.sample(t).unwrap();
        assert!((r[0].value.unwrap() - weather.orp(t)).abs() < 0.1);
    }
}
