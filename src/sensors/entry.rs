//! `[[sensor]]` entries: the keys every sensor has, and its kind (declared beside this
//! file, one module per kind).

use serde::{Deserialize, Deserializer, Serialize};

use std::collections::BTreeMap;

use super::SensorKind;
use crate::correction::CorrectionSpec;
use crate::duration::Span;
use crate::reading::Quantity;

/// What to do when a sensor does not answer at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnStartupError {
    /// Stop Anemone with an error.
    Fail,
    /// Keep trying; record `sensor_error` readings meanwhile (default).
    #[default]
    Retry,
    /// Log it and run without this sensor.
    Skip,
}

/// One `[[sensor]]` entry: the keys every sensor has, plus its kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorConfig {
    /// The user's name for the sensor, unique in the file (`[a-z0-9_-]`).
    pub id: String,
    /// How often it is read; default depends on the kind.
    pub interval: Span,
    /// What to do when it is absent at start-up.
    pub on_startup_error: OnStartupError,
    /// Corrections per quantity (`correction.air_temperature = { offset = -1.2 }`),
    /// applied by the pipeline before QC; see [`crate::correction`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub correction: BTreeMap<Quantity, CorrectionSpec>,
    /// The kind and its settings.
    #[serde(flatten)]
    pub kind: SensorKind,
}

/// Keys shared by every sensor kind, taken out before the kind is parsed.
pub(crate) const COMMON_KEYS: [&str; 4] = ["id", "interval", "on_startup_error", "correction"];

impl<'de> Deserialize<'de> for SensorConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let id = match table.remove("id") {
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`id` must be a string, not {}",
                    other.type_str()
                )))
            }
            None => return Err(D::Error::missing_field("id")),
        };
        let interval = table
            .remove("interval")
            .map(|v| Span::deserialize(v).map_err(|e| D::Error::custom(format!("interval: {e}"))))
            .transpose()?;
        let on_startup_error = table
            .remove("on_startup_error")
            .map(|v| {
                OnStartupError::deserialize(v)
                    .map_err(|e| D::Error::custom(format!("on_startup_error: {e}")))
            })
            .transpose()?
            .unwrap_or_default();
        let correction = table
            .remove("correction")
            .map(|v| {
                BTreeMap::<Quantity, CorrectionSpec>::deserialize(v)
                    .map_err(|e| D::Error::custom(format!("correction: {e}")))
            })
            .transpose()?
            .unwrap_or_default();
        let kind = SensorKind::deserialize(toml::Value::Table(table)).map_err(D::Error::custom)?;
        let interval = interval.unwrap_or_else(|| kind.default_interval());
        Ok(SensorConfig {
            id,
            interval,
            on_startup_error,
            correction,
            kind,
        })
    }
}
