//! pH: Atlas Scientific EZO-pH over I2C, or an analog probe board through an ADS1115,
//! compensated with the water temperature of another sensor.

use anemone_drivers::ads1115::{Ads1115, Fsr};
use anemone_drivers::analog_ph::{ph_from_volts, PhCalibration};
use anemone_drivers::ezo_ph::EzoPh;

use super::{Source, SourceContext, SourceError};
use crate::config::{Config, SensorKind};
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// Water temperature older than this is not used for compensation.
const MAX_TEMPERATURE_AGE_MS: i64 = 10 * 60 * 1000;
/// Temperature assumed when none is available (the EZO's own default).
const DEFAULT_TEMPERATURE_C: f64 = 25.0;

/// An analog probe's calibration recorded by `anemone calibrate`, with its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhCalibrationInForce {
    /// When it was recorded.
    pub ts: Timestamp,
    /// Offset and slope.
    pub calibration: PhCalibration,
}

enum Probe {
    Ezo(EzoPh<I2cBus>),
    Analog {
        adc: Ads1115<I2cBus>,
        channel: u8,
        calibration: PhCalibration,
    },
}

pub(super) struct PhSource {
    id: SensorId,
    probe: Probe,
    delay: HalDelay,
    temperature_sensor: Option<String>,
    latest: super::Latest,
    where_: String,
}

impl PhSource {
    pub(super) fn build(
        _config: &Config,
        id: SensorId,
        kind: &SensorKind,
        hal: &Hal,
        ctx: &SourceContext,
    ) -> Result<Self, SourceError> {
        let delay = hal.delay();
        let (probe, temperature_sensor, where_) = match kind {
            SensorKind::PhEzo {
                bus,
                address,
                temperature_sensor,
            } => {
                let i2c = hal.i2c(*bus)?;
                let where_ = format!("{address:#04x} on {}", i2c.describe());
                (
                    Probe::Ezo(EzoPh::new(i2c, *address)),
                    temperature_sensor.clone(),
                    where_,
                )
            }
            SensorKind::PhAnalog {
                bus,
                address,
                channel,
                temperature_sensor,
                calibration,
            } => {
                let i2c = hal.i2c(*bus)?;
                let where_ = format!(
                    "ADS1115 {address:#04x} channel {channel} on {}",
                    i2c.describe()
                );
                let stored = ctx.ph_calibrations.get(&*id).map(|c| c.calibration);
                let calibration = stored.unwrap_or(PhCalibration {
                    neutral_volts: calibration.neutral_volts,
                    slope_volts_per_ph: calibration.slope_volts_per_ph,
                });
                (
                    Probe::Analog {
                        adc: Ads1115::new(i2c, *address),
                        channel: *channel,
                        calibration,
                    },
                    temperature_sensor.clone(),
                    where_,
                )
            }
            _ => return Err(SourceError::Device("not a pH config".into())),
        };
        let mut source = PhSource {
            id,
            probe,
            delay,
            temperature_sensor,
            latest: ctx.latest.clone(),
            where_,
        };
        source.check()?;
        Ok(source)
    }

    /// Talks to the device once so an absent probe is reported at start-up.
    fn check(&mut self) -> Result<(), SourceError> {
        let where_ = self.where_.clone();
        match &mut self.probe {
            Probe::Ezo(dev) => dev.status(&mut self.delay).map(|_| ()).map_err(|e| {
                SourceError::Absent(format!(
                    "no EZO-pH answered at {where_}: check wiring and that the circuit is in I2C mode ({e:?})"
                ))
            }),
            Probe::Analog { adc, channel, .. } => adc
                .read_volts(*channel, Fsr::V4_096, &mut self.delay)
                .map(|_| ())
                .map_err(|e| {
                    SourceError::Absent(format!("no ADS1115 answered at {where_}: check wiring ({e:?})"))
                }),
        }
    }

    fn temperature(&self, now: Timestamp) -> Option<f64> {
        let sensor = self.temperature_sensor.as_ref()?;
        self.latest.get(
            sensor,
            Quantity::WaterTemperature,
            now,
            MAX_TEMPERATURE_AGE_MS,
        )
    }
}

impl Source for PhSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let temp = self.temperature(now);
        let where_ = self.where_.clone();
        let ph = match &mut self.probe {
            Probe::Ezo(dev) => match temp {
                Some(t) => dev.read_compensated(t, &mut self.delay),
                None => dev.read(&mut self.delay),
            }
            .map_err(|e| SourceError::Device(format!("EZO-pH at {where_}: {e:?}")))?,
            Probe::Analog {
                adc,
                channel,
                calibration,
            } => {
                let volts = adc
                    .read_volts(*channel, Fsr::V4_096, &mut self.delay)
                    .map_err(|e| SourceError::Device(format!("{where_}: {e:?}")))?;
                ph_from_volts(volts, temp.unwrap_or(DEFAULT_TEMPERATURE_C), calibration)
            }
        };
        // The temperature the reading was compensated for travels with it.
        Ok(vec![
            Reading::new(now, &self.id, Quantity::Ph, ph),
            Reading::new(
                now,
                &self.id,
                Quantity::PhTemperature,
                temp.unwrap_or(DEFAULT_TEMPERATURE_C),
            ),
        ])
    }
}
