//! DS18B20 1-Wire probes: ground, water or air temperature from the kernel's `w1_slave`.
//!
//! A probe is chosen by its kernel ROM id (`28-…`, listed by `anemone probe`); the
//! sensor's `id` is the user's name for it and the store keeps the ROM id beside it.

use anemone_drivers::ds18b20::parse_w1_slave;
use serde::{Deserialize, Serialize};

use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::SimWorldBuilder;
use crate::hal::{Hal, W1Bus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// `type = "ds18b20"`: a Maxim DS18B20 1-Wire temperature probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ds18b20Config {
    /// Kernel ROM id (`28-…`), or `auto` for the only probe on the bus.
    #[serde(default = "default_rom")]
    pub rom: String,
    /// What it measures: `ground_temperature`, `water_temperature` or `air_temperature`.
    #[serde(default = "default_quantity")]
    pub quantity: Quantity,
}

fn default_rom() -> String {
    "auto".into()
}
fn default_quantity() -> Quantity {
    Quantity::GroundTemperature
}

impl SensorKindSpec for Ds18b20Config {
    const TYPE: &'static str = "ds18b20";

    fn default_interval(&self) -> Span {
        Span::secs(30)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![self.quantity]
    }

    fn resources(&self) -> Vec<String> {
        if self.rom == "auto" {
            vec![]
        } else {
            vec![format!("1-Wire probe {}", self.rom)]
        }
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        let rom = &self.rom;
        let ok_rom = rom == "auto"
            || (rom.len() == 15
                && rom.starts_with("28-")
                && rom[3..].chars().all(|c| c.is_ascii_hexdigit()));
        if !ok_rom {
            p.push(("rom", format!("\"{rom}\" is not a DS18B20 ROM id: copy it from `anemone probe`, e.g. rom = \"28-0316a2791cff\"")));
        }
        if ![
            Quantity::GroundTemperature,
            Quantity::WaterTemperature,
            Quantity::AirTemperature,
        ]
        .contains(&self.quantity)
        {
            p.push((
                "quantity",
                "a DS18B20 measures ground_temperature, water_temperature or air_temperature"
                    .into(),
            ));
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(Ds18b20Source::build(
            id,
            &self.rom,
            self.quantity,
            hal,
        )?))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        world.ds18b20(&self.rom, self.quantity);
    }
}

struct Ds18b20Source {
    id: SensorId,
    rom: String,
    quantity: Quantity,
    bus: W1Bus,
}

impl Ds18b20Source {
    fn build(id: SensorId, rom: &str, quantity: Quantity, hal: &Hal) -> Result<Self, SourceError> {
        let bus = hal.w1();
        let rom = bus.resolve(rom)?;
        // Fail now if the probe is absent, so the start-up policy applies.
        bus.read_slave(&rom)?;
        Ok(Ds18b20Source {
            id,
            rom,
            quantity,
            bus,
        })
    }
}

impl Source for Ds18b20Source {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let text = self.bus.read_slave(&self.rom)?;
        let celsius = parse_w1_slave(&text)
            .map_err(|e| SourceError::Device(format!("DS18B20 {}: {e}", self.rom)))?;
        Ok(vec![Reading::new(now, &self.id, self.quantity, celsius)])
    }

    fn hardware_id(&self) -> Option<String> {
        Some(self.rom.clone())
    }
}
