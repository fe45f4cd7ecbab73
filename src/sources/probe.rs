//! DS18B20 1-Wire probes: ground, water or air temperature from `w1_slave`.

use anemone_drivers::ds18b20::parse_w1_slave;

use super::{Source, SourceError};
use crate::hal::{Hal, W1Bus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

pub(super) struct Ds18b20Source {
    id: SensorId,
    rom: String,
    quantity: Quantity,
    bus: W1Bus,
}

impl Ds18b20Source {
    pub(super) fn build(
        id: SensorId,
        rom: &str,
        quantity: Quantity,
        hal: &Hal,
    ) -> Result<Self, SourceError> {
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
