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
    Salinity => "salinity", "PSU", "Practical salinity (PSS-78), derived from conductivity.";
    OxygenSaturation => "oxygen_saturation", "%", "Dissolved oxygen as % of saturation (EZO-DO).";
    Orp => "orp", "mV", "Oxidation-reduction potential (EZO-ORP).";
    Co2 => "co2", "ppm", "Carbon dioxide in air (SCD41).";
    BatteryVoltage => "battery_voltage", "V", "Battery voltage (INA219, role battery).";
    BatteryCurrent => "battery_current", "A", "Battery current, positive while charging (INA219).";
    BatteryPower => "battery_power", "W", "Power into (or out of) the battery (INA219).";
    SolarVoltage => "solar_voltage", "V", "Solar panel voltage (INA219, role solar).";
    SolarCurrent => "solar_current", "A", "Solar charge current (INA219, role solar).";
    SolarPower => "solar_power", "W", "Solar charge power (INA219, role solar).";
    PowerSaving => "power_saving", "", "Low-battery policy state: 1 saving power (longer intervals), 0 normal.";
    Turbidity => "turbidity", "NTU", "Turbidity of the water (an `analog` sensor, e.g. DFRobot SEN0189).";
    Nitrate => "nitrate", "mg/L", "Nitrate in the water (an `analog` sensor: a nitrate ion-selective electrode).";
    AnalogVoltage => "analog_voltage", "V", "The voltage of an `analog` sensor without a curve for a physical quantity.";
    Latitude => "latitude", "°", "Latitude of a GPS fix, degrees north (WGS 84; negative south).";
    Longitude => "longitude", "°", "Longitude of a GPS fix, degrees east (WGS 84; negative west).";
    GpsFixMode => "gps_fix_mode", "", "GPS fix mode as gpsd reports it: 0 unknown, 1 no fix, 2 two-dimensional, 3 three-dimensional.";
    GpsSatellites => "gps_satellites", "satellites", "Satellites the GPS uses in its fix.";
    SpeedOverGround => "speed_over_ground", "m/s", "Speed over ground from GPS (a moored buoy's swing, or its drift once adrift).";
    AnchorDistance => "anchor_distance", "m", "Distance of a GPS fix from the configured anchor position (anchor watch).";
    CurrentSpeed => "current_speed", "m/s", "Water current speed from a paddle-wheel or propeller sensor (instantaneous sample).";
    CurrentSpeedAvg2m => "current_speed_avg_2min", "m/s", "Mean water current speed over the last 2 minutes.";
    CurrentSpeedAvg10m => "current_speed_avg_10min", "m/s", "Mean water current speed over the last 10 minutes.";
}

/// `degrees` as a compass direction in `[0, 360)`. `rem_euclid(360.0)` alone answers
/// 360.0 for a value a hair below 0 (the remainder rounds up to the modulus): that is
/// north, 0.
pub fn compass(degrees: f64) -> f64 {
    let d = degrees.rem_euclid(360.0);
    if d >= 360.0 {
        0.0
    } else {
        d
    }
}

/// The circular mean in degrees, `[0, 360)`, of `count` directions whose sines sum to
/// `sum_sin` and cosines to `sum_cos`: the direction of the sum of their unit vectors (350°
/// and 10° give 0°, not 180°; the same set of directions gives the same mean in any
/// order). `None` when `count` is 0, and when the vector sum is about zero (shorter than
/// `count` × 10⁻⁹: 0° and 180°, or four directions 90° apart), where no mean direction is
/// defined. The station's aggregates and the collector's rollups both average directions
/// with it.
pub fn circular_mean(sum_sin: f64, sum_cos: f64, count: u64) -> Option<f64> {
    if count == 0 || sum_sin.hypot(sum_cos) <= 1e-9 * count as f64 {
        return None;
    }
    Some(compass(sum_sin.atan2(sum_cos).to_degrees()))
}

impl Quantity {
    /// True for the compass directions (°, 0 = N, clockwise), whose means are taken around
    /// the circle, not along a line: 350° and 10° average to 0°, not 180°. The one list of
    /// them (the station's aggregates and the collector's rollups both ask here).
    pub fn is_direction(self) -> bool {
        matches!(
            self,
            Quantity::WindDirection | Quantity::WindDirectionAvg10m | Quantity::WindGustDirection
        )
    }

    /// Decimal places a value of this quantity is given with on the wire (MQTT payloads,
    /// `read --json`, exports) when its sensor kind does not say otherwise: the resolution
    /// of the sensors that measure it, and a sensible one for derived values. Stored values
    /// keep every digit. [`Precision`] applies this table and each kind's own resolution.
    pub fn decimals(self) -> u8 {
        use Quantity::*;
        match self {
            // BME280 / HTU21D: 0.01 °C; DS18B20: 1/16 °C.
            AirTemperature | WaterTemperature | GroundTemperature => 2,
            // BME280: 0.0018 hPa, a noise floor around 0.01 hPa.
            AirPressure => 2,
            // BME280 and HTU21D at 12 bits: 0.01–0.04 %.
            RelativeHumidity => 2,
            // Cup anemometers: one pulse per window is a few tenths of a m/s.
            WindSpeed => 1,
            // A 16-position vane: 22.5°.
            WindDirection => 1,
            // A tip is 0.2–0.5 mm.
            Rain | RainToday | RainLast24h => 2,
            // Analog probes: 0.01 pH (an EZO circuit says 0.001, see its kind).
            Ph => 2,
            PhTemperature => 1,
            Conductivity => 0,
            DissolvedOxygen => 2,
            // Derived from the above.
            SeaLevelPressure => 1,
            DewPoint | WindChill | HeatIndex | FeelsLike => 1,
            WindGust | WindSpeedAvg2m | WindSpeedAvg10m => 1,
            WindDirectionAvg10m | WindGustDirection => 0,
            RainRate => 1,
            // TSL2591 / LTR390: fractions of a lux matter only in the dark.
            Illuminance => 1,
            // LTR390: UVI in steps of about 0.01.
            UvIndex => 2,
            // TGS2600: the ratio to its baseline, and its resistance to the ohm.
            AirQualityRatio => 3,
            AirQualityResistance => 0,
            // AS3935: counts, whole kilometres from its distance table, a raw energy number.
            LightningStrikes | LightningDistance | LightningEnergy => 0,
            // PSS-78 to 0.001 (the scale's own check value); EZO-DO 0.1 %; EZO-ORP 0.1 mV.
            Salinity => 3,
            OxygenSaturation | Orp => 1,
            // SCD41: 1 ppm.
            Co2 => 0,
            // INA219: 4 mV bus voltage, current and power to its calibration's LSB.
            BatteryVoltage | SolarVoltage => 2,
            BatteryCurrent | SolarCurrent | BatteryPower | SolarPower => 3,
            PowerSaving => 0,
            // Analog sensors: a whole NTU (SEN0189's steepness), 0.01 mg/L, the ADC's mV.
            Turbidity => 0,
            Nitrate => 2,
            AnalogVoltage => 3,
            // GPS: 1e-6° is about 0.1 m, finer than a consumer receiver's metres.
            Latitude | Longitude => 6,
            GpsFixMode | GpsSatellites => 0,
            SpeedOverGround => 2,
            AnchorDistance => 1,
            // Paddle wheels: a pulse per window is a few cm/s.
            CurrentSpeed | CurrentSpeedAvg2m | CurrentSpeedAvg10m => 2,
        }
    }
}

/// `value` rounded to `decimals` places (half away from zero); non-finite values as they
/// are.
pub fn round_to(value: f64, decimals: u8) -> f64 {
    if !value.is_finite() {
        return value;
    }
    let scale = 10f64.powi(i32::from(decimals));
    let scaled = value * scale;
    if !scaled.is_finite() || scaled.abs() >= 1e15 {
        return value;
    }
    scaled.round() / scale
}

/// The one place that decides how many decimals a reading is given on the wire: each
/// sensor's own resolution (from its kind and settings, see
/// `sensors::SensorKind::decimals`), else the quantity's [`Quantity::decimals`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Precision {
    /// Sensor id → the quantities whose decimals its kind sets.
    by_sensor: std::collections::HashMap<String, Vec<(Quantity, u8)>>,
    /// At most this many decimals for latitude and longitude (`[station]
    /// position_decimals`: a school may not publish where it is to the metre).
    position: Option<u8>,
}

impl Precision {
    /// Sets the decimals of `sensor`'s `quantity`.
    pub fn set(&mut self, sensor: &str, quantity: Quantity, decimals: u8) {
        let qs = self.by_sensor.entry(sensor.to_string()).or_default();
        qs.retain(|(q, _)| *q != quantity);
        qs.push((quantity, decimals));
    }

    /// Caps the decimals of latitude and longitude at `decimals`.
    pub fn cap_position(&mut self, decimals: u8) {
        self.position = Some(decimals);
    }

    /// Decimal places of `sensor`'s `quantity`.
    pub fn decimals(&self, sensor: &str, quantity: Quantity) -> u8 {
        let d = self
            .by_sensor
            .get(sensor)
            .and_then(|qs| qs.iter().find(|(q, _)| *q == quantity))
            .map_or_else(|| quantity.decimals(), |(_, d)| *d);
        match (quantity, self.position) {
            (Quantity::Latitude | Quantity::Longitude, Some(cap)) => d.min(cap),
            _ => d,
        }
    }

    /// `value` of `sensor`'s `quantity`, rounded for the wire.
    pub fn round(&self, sensor: &str, quantity: Quantity, value: f64) -> f64 {
        round_to(value, self.decimals(sensor, quantity))
    }
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
    /// A GPS position outside its anchor watch radius: the buoy is off its mooring.
    pub const OFF_STATION: Flags = Flags(16);
    /// Contradicts another reading (internal consistency): a dew point above the air
    /// temperature, humidity above 100 % beyond tolerance, a gust below its mean. The
    /// flagged reading's quantity says which check fired.
    pub const INCONSISTENT: Flags = Flags(32);

    const NAMES: [(Flags, &'static str); 6] = [
        (Flags::OUT_OF_RANGE, "out_of_range"),
        (Flags::SPIKE, "spike"),
        (Flags::STUCK, "stuck"),
        (Flags::SENSOR_ERROR, "sensor_error"),
        (Flags::OFF_STATION, "off_station"),
        (Flags::INCONSISTENT, "inconsistent"),
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

    /// Parses one flag name (`ok`, `out_of_range`, `spike`, `stuck`, `sensor_error`,
    /// `off_station`, `inconsistent`).
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

    /// The public JSON shape, as a tree (see [`ReadingJson`], which writes it), with the
    /// quantity's default decimals.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json()).unwrap_or(serde_json::Value::Null)
    }

    /// The one serialisation of this reading: `{flags, quantity, sensor, ts, unit, value}`,
    /// the value rounded to the quantity's default decimals ([`Quantity::decimals`]).
    pub fn json(&self) -> ReadingJson<'_> {
        self.json_in(&Precision::default())
    }

    /// [`Reading::json`] with the value rounded as `precision` says for its sensor.
    pub fn json_in(&self, precision: &Precision) -> ReadingJson<'_> {
        ReadingJson {
            reading: self,
            decimals: precision.decimals(&self.sensor, self.quantity),
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
    /// MQTT `…/reading/<sensor>` payload, the value rounded as `precision` says.
    pub fn json_with_id(&self, backfill: bool, precision: &Precision) -> ReadingJson<'_> {
        ReadingJson {
            id: Some(self.id),
            backfill: Some(backfill),
            ..self.reading.json_in(precision)
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
/// `value` is a JSON number rounded to the sensor's resolution ([`Precision`]; the store
/// keeps the value as measured), or `null` when the sensor failed or the value is not
/// finite.
/// [`StoredReading::json_with_id`] appends `"id"` and `"backfill"`. It implements
/// `Serialize` (a tree or pretty output through serde_json) and writes itself straight
/// into a byte buffer with [`ReadingJson::write_to`], without building a tree.
#[derive(Debug, Clone, Copy)]
pub struct ReadingJson<'a> {
    reading: &'a Reading,
    decimals: u8,
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
        let value = r
            .value
            .filter(|v| v.is_finite())
            .map(|v| round_to(v, self.decimals));
        map.serialize_field("value", &value)?;
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
    fn compass_directions_stay_below_360() {
        assert_eq!(compass(-1e-14), 0.0);
        assert_eq!(compass(-90.0), 270.0);
        assert_eq!(compass(720.0), 0.0);
        assert_eq!(compass(359.5), 359.5);
        assert!(compass(-1e-300) < 360.0);
    }

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
        stored
            .json_with_id(true, &Precision::default())
            .write_to(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"flags":["spike","stuck"],"quantity":"air_temperature","sensor":"mast","ts":"2023-11-14T22:13:20.123Z","unit":"°C","value":null,"id":7,"backfill":true}"#
        );
    }

    #[test]
    fn values_are_rounded_on_the_wire_only() {
        let s: SensorId = Arc::from("mast");
        let r = Reading::new(0, &s, Quantity::AirPressure, 1004.8946875);
        assert_eq!(r.to_json()["value"], 1004.89);
        let t = Reading::new(0, &s, Quantity::AirTemperature, 5.793498442625405);
        let mut out = Vec::new();
        t.json().write_to(&mut out);
        assert!(String::from_utf8_lossy(&out).contains(r#""value":5.79}"#));
        // The reading itself keeps every digit.
        assert_eq!(r.value, Some(1004.8946875));
        // A sensor's own resolution wins over the quantity's.
        let mut p = Precision::default();
        p.set("mast", Quantity::AirPressure, 0);
        assert_eq!(
            serde_json::to_value(r.json_in(&p)).unwrap()["value"],
            1005.0
        );
        let stored = StoredReading { id: 3, reading: r };
        let v = serde_json::to_value(stored.json_with_id(false, &p)).unwrap();
        assert_eq!(v["value"], 1005.0);
        assert_eq!(p.decimals("other", Quantity::AirPressure), 2);
        assert_eq!(round_to(-2.345, 1), -2.3);
        assert_eq!(round_to(0.2794 * 3.0, 2), 0.84);
        assert!(round_to(f64::NAN, 2).is_nan());
        assert_eq!(round_to(1e300, 2), 1e300);
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_ts("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_ts("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_ts("nope"), None);
    }
}
