//! One module per sensor kind: config → driver on a HAL → samples on a schedule.
//!
//! A source is built from its `[[sensor]]` entry ([`build`]) and then sampled by the
//! scheduler ([`scheduler`]) at its interval. Sources never know about storage or MQTT.

mod air;
mod ph;
mod probe;
pub mod scheduler;
mod wind;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{Config, SensorConfig, SensorKind};
use crate::hal::{GpioError, Hal, OpenError, W1Error};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

pub use ph::PhCalibrationInForce;

/// Why a sensor gave no value.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A bus could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A GPIO line could not be watched.
    #[error(transparent)]
    Gpio(#[from] GpioError),
    /// A 1-Wire probe could not be read.
    #[error(transparent)]
    W1(#[from] W1Error),
    /// The device did not answer (absent or miswired).
    #[error("{0}")]
    Absent(String),
    /// The device answered with something unusable.
    #[error("{0}")]
    Device(String),
}

impl SourceError {
    /// True when the device is simply not there (the start-up policy applies).
    pub fn is_absent(&self) -> bool {
        matches!(
            self,
            SourceError::Absent(_) | SourceError::Open(_) | SourceError::Gpio(_)
        ) || matches!(
            self,
            SourceError::W1(W1Error::NoProbe { .. } | W1Error::NoBus { .. })
        )
    }
}

/// What a failed sample records: one `sensor_error` reading (no value) per quantity.
pub fn error_readings(id: &SensorId, quantities: &[Quantity], ts: Timestamp) -> Vec<Reading> {
    quantities
        .iter()
        .map(|q| Reading::sensor_error(ts, id, *q))
        .collect()
}

/// A sensor ready to be sampled.
pub trait Source: Send {
    /// Takes one sample at station time `now` (may block on the bus).
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError>;

    /// The hardware's own id (a DS18B20's ROM id), stored beside the sensor id.
    fn hardware_id(&self) -> Option<String> {
        None
    }
}

/// The newest value and the one before it, so a reader can ask for "before now" even
/// when a value of the current tick has already arrived.
type LatestMap = HashMap<(String, Quantity), [Option<(Timestamp, f64)>; 2]>;

/// Latest good value of every (sensor, quantity), shared between the pipeline (which
/// writes) and sources that need another sensor's value (pH temperature compensation).
#[derive(Clone, Default)]
pub struct Latest {
    inner: Arc<Mutex<LatestMap>>,
}

impl Latest {
    /// Records a good value.
    pub fn set(&self, sensor: &str, q: Quantity, ts: Timestamp, value: f64) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let slot = m.entry((sensor.to_string(), q)).or_insert([None, None]);
        match slot[0] {
            Some((t, _)) if t == ts => slot[0] = Some((ts, value)),
            Some((t, _)) if t > ts => {}
            _ => {
                slot[1] = slot[0];
                slot[0] = Some((ts, value));
            }
        }
    }

    /// The latest value of `q` from `sensor` taken before `now` (a value of the same
    /// tick may or may not have arrived yet, so it is never used) and no older than
    /// `max_age_ms`.
    pub fn get(&self, sensor: &str, q: Quantity, now: Timestamp, max_age_ms: i64) -> Option<f64> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let slot = m.get(&(sensor.to_string(), q))?;
        slot.iter()
            .flatten()
            .find(|(ts, _)| *ts < now)
            .filter(|(ts, _)| now - ts <= max_age_ms)
            .map(|(_, v)| *v)
    }
}

/// What sources may need beyond their own config.
#[derive(Clone, Default)]
pub struct SourceContext {
    /// Latest values of other sensors.
    pub latest: Latest,
    /// Stored pH calibrations in force, by sensor id.
    pub ph_calibrations: HashMap<String, PhCalibrationInForce>,
}

/// Builds the source for one `[[sensor]]` entry. Fails when the hardware is absent.
pub fn build(
    config: &Config,
    sensor: &SensorConfig,
    hal: &Hal,
    ctx: &SourceContext,
) -> Result<Box<dyn Source>, SourceError> {
    let id: SensorId = Arc::from(sensor.id.as_str());
    let source: Box<dyn Source> = match &sensor.kind {
        SensorKind::Bme280 { .. } => Box::new(air::Bme280Source::build(id, &sensor.kind, hal)?),
        SensorKind::Ds18b20 { rom, quantity } => {
            Box::new(probe::Ds18b20Source::build(id, rom, *quantity, hal)?)
        }
        SensorKind::Anemometer { .. } => {
            Box::new(wind::AnemometerSource::build(id, &sensor.kind, hal)?)
        }
        SensorKind::WindVane { .. } => Box::new(wind::VaneSource::build(id, &sensor.kind, hal)?),
        SensorKind::RainGauge { .. } => Box::new(wind::RainSource::build(id, &sensor.kind, hal)?),
        SensorKind::PhEzo { .. } | SensorKind::PhAnalog { .. } => {
            Box::new(ph::PhSource::build(config, id, &sensor.kind, hal, ctx)?)
        }
    };
    Ok(source)
}
