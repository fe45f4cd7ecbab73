//! Atlas Scientific EZO-pH circuit on I2C (default address 0x63), compensated with the
//! water temperature of another sensor. The circuit keeps its own calibration
//! (`anemone calibrate ph`).

use anemone_drivers::ezo_ph::{parse_reply, EzoPh, Register, DEFAULT_ADDRESS};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use serde::{Deserialize, Serialize};

use super::ezo_circuit::SimEzoCircuit;
use super::ph::{check_temperature_sensor, start, Probe};
use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::SimWorldBuilder;
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, SensorId};

/// `type = "ph_ezo"`: an Atlas Scientific EZO-pH circuit on I2C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhEzoConfig {
    /// I2C bus.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// I2C address (default 0x63).
    #[serde(default = "default_address")]
    pub address: u8,
    /// Id of the sensor whose water temperature compensates the reading.
    #[serde(default)]
    pub temperature_sensor: Option<String>,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    DEFAULT_ADDRESS
}

impl SensorKindSpec for PhEzoConfig {
    const TYPE: &'static str = "ph_ezo";
    const PROBE_HINT: Option<&'static str> = Some("EZO-pH 0x63");

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::Ph, Quantity::PhTemperature]
    }

    /// The EZO-pH circuit reports to 0.001 pH.
    fn decimals(&self, quantity: Quantity) -> Option<u8> {
        (quantity == Quantity::Ph).then_some(3)
    }

    fn resources(&self) -> Vec<String> {
        vec![format!(
            "I2C bus {} address {:#04x}",
            self.bus, self.address
        )]
    }

    fn check(&self, station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        check_temperature_sensor(station, &self.temperature_sensor, p);
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let i2c = hal.i2c(self.bus)?;
        let where_ = format!("{:#04x} on {}", self.address, i2c.describe());
        start(
            id,
            Probe::Ezo(EzoPh::new(i2c, self.address)),
            self.temperature_sensor.clone(),
            where_,
            hal,
            ctx,
        )
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let chip = SimEzoCircuit::new(
            world.weather().clone(),
            world.clock().clone(),
            "pH",
            |w, t| format!("{:.3}", w.ph(t)),
            3,
        );
        world.i2c_chip(self.bus, self.address, Box::new(chip));
    }

    /// Asks the default address for its device information (`i` → `?I,pH,…`).
    fn scan_i2c(i2c: &mut I2cBus, delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        let address = DEFAULT_ADDRESS;
        if i2c.write(address, b"i").is_err() {
            return Vec::new();
        }
        delay.delay_ms(Register::SHORT_WAIT_MS);
        let mut buf = [0u8; 24];
        if i2c.read(address, &mut buf).is_err() {
            return Vec::new();
        }
        let Ok(text) = parse_reply(&buf) else {
            return Vec::new();
        };
        if !text.starts_with("?I,pH") {
            return Vec::new();
        }
        vec![I2cFound {
            address,
            what: format!("Atlas Scientific EZO-pH ({text})"),
            snippet: Some(format!(
                "[[sensor]]\ntype = \"ph_ezo\"\nid = \"ph\"\nbus = {bus}\naddress = {address:#04x}\n# temperature_sensor = \"water\"\n"
            )),
        }]
    }
}
