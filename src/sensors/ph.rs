//! What the two pH kinds share: the source (an EZO-pH circuit or an analog board
//! through an ADS1115), compensated with the water temperature of another sensor, and
//! the rule for naming that sensor.

use anemone_drivers::ads1115::{Ads1115, Fsr};
use anemone_drivers::analog_ph::{ph_from_volts, PhCalibration};
use anemone_drivers::ezo_ph::EzoPh;

use super::{Source, SourceContext, SourceError, StationFacts};
use crate::hal::{Hal, HalDelay, I2cBus};
use crate::latest::Latest;
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

/// The two ways to read a pH electrode.
pub(super) enum Probe {
    /// Atlas Scientific EZO-pH circuit.
    Ezo(EzoPh<I2cBus>),
    /// Analog board through an ADS1115 channel.
    Analog {
        adc: Ads1115<I2cBus>,
        channel: u8,
        calibration: PhCalibration,
    },
}

/// The `temperature_sensor` key: another sensor that measures water temperature.
pub(super) fn check_temperature_sensor(
    station: &dyn StationFacts,
    temperature_sensor: &Option<String>,
    p: &mut Vec<(&'static str, String)>,
) {
    if let Some(id) = temperature_sensor {
        match station.sensor(id) {
            None => p.push((
                "temperature_sensor",
                format!("no sensor has id \"{id}\": name the DS18B20 in the water, or remove the key to compensate at 25 °C"),
            )),
            Some(t) if !t.kind.quantities().contains(&Quantity::WaterTemperature) => p.push((
                "temperature_sensor",
                format!("sensor \"{id}\" does not measure water_temperature: give its quantity = \"water_temperature\""),
            )),
            Some(_) => {}
        }
    }
}

struct PhSource {
    id: SensorId,
    probe: Probe,
    delay: HalDelay,
    temperature_sensor: Option<String>,
    latest: Latest,
    where_: String,
}

/// Builds a pH source on `probe` and talks to it once, so an absent probe is reported
/// at start-up.
pub(super) fn start(
    id: SensorId,
    probe: Probe,
    temperature_sensor: Option<String>,
    where_: String,
    hal: &Hal,
    ctx: &SourceContext,
) -> Result<Box<dyn Source>, SourceError> {
    let mut source = PhSource {
        id,
        probe,
        delay: hal.delay(),
        temperature_sensor,
        latest: ctx.latest.clone(),
        where_,
    };
    source.check()?;
    Ok(Box::new(source))
}

impl PhSource {
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
