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
    Illuminance => "illuminance", "lx", "Illuminance: visible light on the sensor (TSL2591, LTR390).";
    UvIndex => "uv_index", "UVI", "UV index (WHO scale: 0–2 low … 11+ extreme), from a UV sensor (LTR390).";
    AirQualityRatio => "air_quality_ratio", "Rs/R0", "Gas sensor resistance over its clean-air resistance (TGS2600): 1 in the calibration's clean air, below 1 with reducing gases (smoke, CO, hydrogen, alcohol). Not a concentration.";
    AirQualityResistance => "air_quality_resistance", "Ω", "Gas sensor resistance Rs (TGS2600): falls as reducing gases rise.";
    LightningStrikes => "lightning_strikes", "strikes", "Lightning strikes detected during the reading's interval (AS3935).";
    LightningDistance => "lightning_distance", "km", "Estimated distance to the storm front at the interval's last strike (AS3935; 0 = overhead).";
    LightningEnergy => "lightning_energy", "", "Energy of the interval's strongest strike as the AS3935 reports it: a relative number without physical unit.";
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

    /// The public JSON shape, as a tree (see [`ReadingJson`], which writes it).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json()).unwrap_or(serde_json::Value::Null)
    }

    /// The one serialisation of this reading: `{flags, quantity, sensor, ts, unit, value}`.
    pub fn json(&self) -> ReadingJson<'_> {
        ReadingJson {
            reading: self,
            id: None,
            backfill: None,
        }
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

impl StoredReading {
    /// The reading's JSON with its store `id` and whether it is sent as `backfill`: the
    /// MQTT `…/reading/<sensor>` payload.
    pub fn json_with_id(&self, backfill: bool) -> ReadingJson<'_> {
        ReadingJson {
            reading: &self.reading,
            id: Some(self.id),
            backfill: Some(backfill),
        }
    }
}

/// The one JSON serialisation of a reading, used by `export --format json|ndjson`,
/// `read --json` and the MQTT reading payloads.
///
/// The object holds the public fields in this order (the order `export` has always
/// written them in):
///
/// ```json
/// {"flags": ["ok"], "quantity": "air_temperature", "sensor": "air",
///  "ts": "2026-06-01T12:00:10.000Z", "unit": "°C", "value": 17.42}
/// ```
///
/// `value` is a JSON number, or `null` when the sensor failed or the value is not finite.
/// [`StoredReading::json_with_id`] appends `"id"` and `"backfill"`. It implements
/// `Serialize` (a tree or pretty output through serde_json) and writes itself straight
/// into a byte buffer with [`ReadingJson::write_to`], without building a tree.
#[derive(Debug, Clone, Copy)]
pub struct ReadingJson<'a> {
    reading: &'a Reading,
    id: Option<i64>,
    backfill: Option<bool>,
}

impl ReadingJson<'_> {
    /// Appends the JSON object, compact, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Writing strings and numbers into a Vec cannot fail: every value here has a JSON
        // form (a non-finite number is written as null).
        let _ = serde_json::to_writer(out, self);
    }
}

/// Serialises flag names as a sequence without collecting them first.
struct FlagNames(Flags);

impl Serialize for FlagNames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let flags = self.0;
        if flags.is_ok() {
            return ["ok"].serialize(s);
        }
        let mut seq = s.serialize_seq(None)?;
        for (f, name) in Flags::NAMES.iter() {
            if flags.contains(*f) {
                seq.serialize_element(name)?;
            }
        }
        seq.end()
    }
}

impl Serialize for ReadingJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.reading;
        let extra = usize::from(self.id.is_some()) + usize::from(self.backfill.is_some());
        let mut map = s.serialize_struct("Reading", 6 + extra)?;
        map.serialize_field("flags", &FlagNames(r.flags))?;
        map.serialize_field("quantity", r.quantity.as_str())?;
        map.serialize_field("sensor", &*r.sensor)?;
        map.serialize_field("ts", &format_ts(r.ts))?;
        map.serialize_field("unit", r.unit())?;
        map.serialize_field("value", &r.value.filter(|v| v.is_finite()))?;
        if let Some(id) = self.id {
            map.serialize_field("id", &id)?;
        }
        if let Some(backfill) = self.backfill {
            map.serialize_field("backfill", &backfill)?;
        }
        map.end()
    }
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
    fn reading_json_bytes() {
        let s: SensorId = Arc::from("mast");
        let mut r = Reading::new(1_700_000_000_123, &s, Quantity::AirTemperature, 21.5);
        let mut out = Vec::new();
        r.json().write_to(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"flags":["ok"],"quantity":"air_temperature","sensor":"mast","ts":"2023-11-14T22:13:20.123Z","unit":"°C","value":21.5}"#
        );
        r.value = Some(f64::NAN);
        r.flags = Flags::SPIKE | Flags::STUCK;
        let stored = StoredReading { id: 7, reading: r };
        out.clear();
        stored.json_with_id(true).write_to(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"flags":["spike","stuck"],"quantity":"air_temperature","sensor":"mast","ts":"2023-11-14T22:13:20.123Z","unit":"°C","value":null,"id":7,"backfill":true}"#
        );
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_ts("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_ts("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_ts("nope"), None);
    }
}
