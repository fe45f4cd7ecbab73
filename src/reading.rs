//! The `Reading` and `Quantity` model every room shares.
//!
//! A reading is `(ts, sensor, quantity, value, unit, flags)`. The unit is not stored
//! with each reading: it is fixed by the quantity (see [`Quantity::unit`]).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// UTC time in integer milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// Formats a timestamp as RFC 3339 UTC with milliseconds and a `Z`, the wire format.
pub fn format_ts(ts: Timestamp) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ts) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => format!("{ts}ms"),
    }
}

/// Parses an RFC 3339 time or a date (`YYYY-MM-DD`, midnight UTC) into a timestamp.
pub fn parse_ts(text: &str) -> Option<Timestamp> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

macro_rules! quantities {
    ($( $variant:ident => $name:literal, $unit:literal, $doc:literal; )*) => {
        /// The closed set of measured and derived quantities, each with a fixed unit.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Quantity {
            $( #[doc = $doc] $variant, )*
        }

        impl Quantity {
            /// Every quantity, in a fixed order.
            pub const ALL: &'static [Quantity] = &[ $( Quantity::$variant, )* ];

            /// The public (snake_case) name used in config, storage and on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $( Quantity::$variant => $name, )* }
            }

            /// The fixed unit of this quantity.
            pub fn unit(self) -> &'static str {
                match self { $( Quantity::$variant => $unit, )* }
            }
        }

        impl FromStr for Quantity {
            type Err = UnknownQuantity;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $name => Ok(Quantity::$variant), )*
                    _ => Err(UnknownQuantity(s.to_string())),
                }
            }
        }
    };
}

quantities! {
    AirTemperature => "air_temperature", "°C", "Air temperature.";
    RelativeHumidity => "relative_humidity", "%", "Relative humidity.";
    AirPressure => "air_pressure", "hPa", "Station (absolute) air pressure.";
    SeaLevelPressure => "sea_level_pressure", "hPa", "Air pressure reduced to sea level.";
    DewPoint => "dew_point", "°C", "Dew point.";
    WindChill => "wind_chill", "°C", "Wind chill temperature.";
    HeatIndex => "heat_index", "°C", "Heat index.";
    FeelsLike => "feels_like", "°C", "Apparent (feels-like) temperature.";
    WindSpeed => "wind_speed", "m/s", "Wind speed (instantaneous sample).";
    WindGust => "wind_gust", "m/s", "Wind gust: highest 3-second mean speed.";
    WindDirection => "wind_direction", "°", "Wind direction the wind blows from, 0 = N, clockwise.";
    WindSpeedAvg2m => "wind_speed_avg_2min", "m/s", "Mean wind speed over the last 2 minutes.";
    WindSpeedAvg10m => "wind_speed_avg_10min", "m/s", "Mean wind speed over the last 10 minutes.";
    WindDirectionAvg10m => "wind_direction_avg_10min", "°", "Speed-weighted vector-mean wind direction over the last 10 minutes.";
    WindGustDirection => "wind_gust_direction", "°", "Direction of the wind gust.";
    Rain => "rain", "mm", "Rain fallen during the reading's interval.";
    RainRate => "rain_rate", "mm/h", "Rain rate.";
    RainToday => "rain_today", "mm", "Rain since local midnight.";
    RainLast24h => "rain_last_24h", "mm", "Rain over the last 24 hours.";
    WaterTemperature => "water_temperature", "°C", "Water temperature.";
    GroundTemperature => "ground_temperature", "°C", "Ground (soil) temperature.";
    Ph => "ph", "pH", "Acidity of the water.";
    PhTemperature => "ph_temperature", "°C", "Water temperature a pH reading was compensated for.";
    Conductivity => "conductivity", "µS/cm", "Electrical conductivity of the water.";
    DissolvedOxygen => "dissolved_oxygen", "mg/L", "Dissolved oxygen.";
}

impl Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(|_| {
            let known: Vec<&str> = Quantity::ALL.iter().map(|q| q.as_str()).collect();
            serde::de::Error::custom(format!(
                "unknown variant `{name}`, expected one of {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quantity name that is not one of [`Quantity::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown quantity `{0}` (known: air_temperature, relative_humidity, air_pressure, wind_speed, …)")]
pub struct UnknownQuantity(pub String);

/// Quality-control outcome of a reading, as a small bit set. Empty means `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No problem found.
    pub const OK: Flags = Flags(0);
    /// Outside the configured min/max for the quantity.
    pub const OUT_OF_RANGE: Flags = Flags(1);
    /// Jumped implausibly from the previous value.
    pub const SPIKE: Flags = Flags(2);
    /// Has not changed for implausibly long.
    pub const STUCK: Flags = Flags(4);
    /// The sensor failed to deliver a value.
    pub const SENSOR_ERROR: Flags = Flags(8);

    const NAMES: [(Flags, &'static str); 4] = [
        (Flags::OUT_OF_RANGE, "out_of_range"),
        (Flags::SPIKE, "spike"),
        (Flags::STUCK, "stuck"),
        (Flags::SENSOR_ERROR, "sensor_error"),
    ];

    /// The raw bits, as stored.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Rebuilds flags from stored bits (unknown bits are kept).
    pub fn from_bits(bits: u8) -> Flags {
        Flags(bits)
    }

    /// True when no flag is set.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// True when every flag of `other` is set here.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// The names of the set flags; `["ok"]` when none is set.
    pub fn names(self) -> Vec<&'static str> {
        if self.is_ok() {
            return vec!["ok"];
        }
        Flags::NAMES
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
            .collect()
    }

    /// Parses one flag name (`ok`, `out_of_range`, `spike`, `stuck`, `sensor_error`).
    pub fn from_name(name: &str) -> Option<Flags> {
        if name == "ok" {
            return Some(Flags::OK);
        }
        Flags::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join("|"))
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// Name of a sensor as the user configured it (`[[sensor]] id = "…"`). Cheap to clone.
pub type SensorId = Arc<str>;

/// One sample of one quantity from one sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// When the sample was taken (UTC ms).
    pub ts: Timestamp,
    /// The sensor's configured id.
    pub sensor: SensorId,
    /// What was measured.
    pub quantity: Quantity,
    /// The value in the quantity's unit; `None` when the sensor failed.
    pub value: Option<f64>,
    /// Quality-control outcome.
    pub flags: Flags,
}

impl Reading {
    /// A good reading (flags are set later by QC).
    pub fn new(ts: Timestamp, sensor: &SensorId, quantity: Quantity, value: f64) -> Reading {
        Reading {
            ts,
            sensor: sensor.clone(),
            quantity,
            value: Some(value),
            flags: Flags::OK,
        }
    }

    /// A reading that records a sensor failure: no value, flagged `sensor_error`.
    pub fn sensor_error(ts: Timestamp, sensor: &SensorId, quantity: Quantity) -> Reading {
        Reading {
            ts,
            sensor: sensor.clone(),
            quantity,
            value: None,
            flags: Flags::SENSOR_ERROR,
        }
    }

    /// The unit of the reading's quantity.
    pub fn unit(&self) -> &'static str {
        self.quantity.unit()
    }

    /// The public JSON shape: `{ts, sensor, quantity, value, unit, flags}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ts": format_ts(self.ts),
            "sensor": &*self.sensor,
            "quantity": self.quantity.as_str(),
            "value": self.value.filter(|v| v.is_finite()),
            "unit": self.unit(),
            "flags": self.flags.names(),
        })
    }
}

/// A reading as stored, with the id the store gave it (also the MQTT reading id).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReading {
    /// The store's id: increases with every stored reading, never reused.
    pub id: i64,
    /// The reading.
    pub reading: Reading,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_names_round_trip() {
        for q in Quantity::ALL {
            assert_eq!(q.as_str().parse::<Quantity>(), Ok(*q));
            let json = serde_json::to_string(q).unwrap();
            assert_eq!(json, format!("\"{}\"", q.as_str()));
        }
        assert!("wind".parse::<Quantity>().is_err());
    }

    #[test]
    fn flags_names() {
        assert_eq!(Flags::OK.names(), vec!["ok"]);
        let f = Flags::OUT_OF_RANGE | Flags::SENSOR_ERROR;
        assert_eq!(f.names(), vec!["out_of_range", "sensor_error"]);
        assert_eq!(f.to_string(), "out_of_range|sensor_error");
        assert_eq!(Flags::from_name("spike"), Some(Flags::SPIKE));
        assert!(!Flags::OK.contains(Flags::OK));
    }

    #[test]
    fn reading_json_shape() {
        let s: SensorId = Arc::from("mast");
        let r = Reading::new(1_700_000_000_123, &s, Quantity::AirTemperature, 21.5);
        let j = r.to_json();
        assert_eq!(j["ts"], "2023-11-14T22:13:20.123Z");
        assert_eq!(j["value"], 21.5);
        assert_eq!(j["unit"], "°C");
        assert_eq!(j["flags"][0], "ok");
        let e = Reading::sensor_error(0, &s, Quantity::Ph);
        assert!(e.to_json()["value"].is_null());
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_ts("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_ts("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_ts("nope"), None);
    }
}
