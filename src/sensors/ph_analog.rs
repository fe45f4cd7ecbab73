//! Analog pH probe board read through an ADS1115 channel, compensated with the water
//! temperature of another sensor. Volts become pH with the calibration recorded by
//! `anemone calibrate ph` (or the config's fallback).

use anemone_drivers::ads1115::{Ads1115, Register, DEFAULT_ADDRESS};
use anemone_drivers::analog_ph::PhCalibration;
use embedded_hal::i2c::I2c;
use serde::{Deserialize, Serialize};

use super::ph::{check_temperature_sensor, start, Probe};
use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::{SimChannel, SimWorldBuilder};
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, SensorId};

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

impl PhAnalogCalibration {
    /// The drivers' form.
    pub fn to_driver(self) -> PhCalibration {
        PhCalibration {
            neutral_volts: self.neutral_volts,
            slope_volts_per_ph: self.slope_volts_per_ph,
        }
    }
}

/// `type = "ph_analog"`: an analog pH probe board read through an ADS1115.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhAnalogConfig {
    /// I2C bus.
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// ADS1115 address.
    #[serde(default = "default_address")]
    pub address: u8,
    /// ADS1115 channel 0–3.
    #[serde(default)]
    pub channel: u8,
    /// Id of the sensor whose water temperature compensates the reading.
    #[serde(default)]
    pub temperature_sensor: Option<String>,
    /// Fallback calibration (a stored `anemone calibrate` result takes precedence).
    #[serde(default)]
    pub calibration: PhAnalogCalibration,
}

fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    DEFAULT_ADDRESS
}

/// The four addresses an ADS1115 can take (ADDR to GND, VDD, SDA, SCL).
const ADS1115_ADDRESSES: std::ops::RangeInclusive<u8> = DEFAULT_ADDRESS..=DEFAULT_ADDRESS + 3;

impl SensorKindSpec for PhAnalogConfig {
    const TYPE: &'static str = "ph_analog";
    const PROBE_HINT: Option<&'static str> = Some("ADS1115 0x48–0x4B");

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::Ph, Quantity::PhTemperature]
    }

    fn resources(&self) -> Vec<String> {
        vec![format!(
            "ADS1115 on I2C bus {} address {:#04x} channel {}",
            self.bus, self.address, self.channel
        )]
    }

    fn check(&self, station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        if self.channel > 3 {
            p.push(("channel", "the ADS1115 has channels 0–3".into()));
        }
        if self.calibration.slope_volts_per_ph == 0.0 {
            p.push((
                "calibration.slope_volts_per_ph",
                "must not be 0 (a bare electrode: −0.05916)".into(),
            ));
        }
        check_temperature_sensor(station, &self.temperature_sensor, p);
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let i2c = hal.i2c(self.bus)?;
        let where_ = format!(
            "ADS1115 {:#04x} channel {} on {}",
            self.address,
            self.channel,
            i2c.describe()
        );
        let stored = ctx.ph_calibrations.get(&*id).map(|c| c.calibration);
        let probe = Probe::Analog {
            adc: Ads1115::new(i2c, self.address),
            channel: self.channel,
            calibration: stored.unwrap_or(self.calibration.to_driver()),
        };
        start(id, probe, self.temperature_sensor.clone(), where_, hal, ctx)
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        world.ads1115_channel(
            self.bus,
            self.address,
            self.channel,
            SimChannel::Ph(self.calibration.to_driver()),
        );
    }

    /// An ADS1115 (the wind vane's or a pH board's) answers a read of its config register.
    fn scan_i2c(i2c: &mut I2cBus, _delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        let mut out = Vec::new();
        for address in ADS1115_ADDRESSES {
            let mut cfg = [0u8; 2];
            if i2c
                .write_read(address, &[Register::CONFIG], &mut cfg)
                .is_ok()
            {
                out.push(I2cFound {
                    address,
                    what: "ADS1115 16-bit ADC (or another chip at this address)".into(),
                    snippet: Some(format!("# An ADS1115 at {address:#04x} on bus {bus}: use it for a wind vane (type = \"wind_vane\", adc = \"ads1115\", address = {address:#04x}, channel = N)\n# or an analog pH probe (type = \"ph_analog\", address = {address:#04x}, channel = N).\n")),
                });
            }
        }
        out
    }
}
