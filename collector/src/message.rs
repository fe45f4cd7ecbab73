//! What a station's message means: a reading row, a status, a station description, a state
//! snapshot, or a dead letter with the reason.
//!
//! The payloads are the station's MQTT contract (README "MQTT: dashboards", `src/reading.rs`):
//! the names here are the library's ([`Quantity`], [`Flags`], [`parse_ts`], [`ONLINE`] /
//! [`OFFLINE`]), so a contract change breaks this crate's build rather than its data.

use anemone::reading::{parse_ts, Flags, Quantity, Timestamp};
use anemone::topics::{OFFLINE, ONLINE};
use serde::Deserialize;

/// One reading as it will be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRow {
    /// The station id, from the topic.
    pub station: String,
    /// The station's reading id (unique per station, never reused).
    pub id: i64,
    /// The original sample time (UTC ms).
    pub ts: Timestamp,
    /// The sensor's configured id.
    pub sensor: String,
    /// What was measured.
    pub quantity: Quantity,
    /// The value; `None` when the sensor failed.
    pub value: Option<f64>,
    /// Quality-control outcome.
    pub flags: Flags,
    /// Sent from the station's backlog after an outage.
    pub backfill: bool,
}

/// A station's description from its retained `meta`.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// The station id.
    pub station: String,
    /// The human name, when given.
    pub name: Option<String>,
    /// Latitude, longitude and altitude, when given.
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
    /// Altitude in metres.
    pub altitude_m: Option<f64>,
    /// The whole payload.
    pub json: serde_json::Value,
}

/// A station's chain head from its retained `chain` (see the station's `store::chain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The station.
    pub station: String,
    /// The batch number.
    pub batch: i64,
    /// The last reading id the batch covers.
    pub last_id: i64,
    /// The batch's SHA-256, lowercase hex.
    pub hash: String,
    /// The station's Ed25519 public key, lowercase hex, when it signs its heads.
    pub public_key: Option<String>,
    /// The head's signature, lowercase hex (see `anemone::signing`).
    pub signature: Option<String>,
}

/// A message that cannot be stored as what its topic says it is.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The topic it came on.
    pub topic: String,
    /// The payload (the first `max_payload_bytes` of an oversized one).
    pub payload: Vec<u8>,
    /// Why it was refused.
    pub reason: String,
}

/// What a message means.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A reading.
    Reading(ReadingRow),
    /// `online` / `offline` (the last will).
    Status {
        /// The station.
        station: String,
        /// True for `online`.
        online: bool,
    },
    /// The station's description.
    Meta(Meta),
    /// The latest values.
    State {
        /// The station.
        station: String,
        /// The payload.
        json: serde_json::Value,
    },
    /// The head of the station's tamper-evident chain.
    Chain(ChainHead),
    /// An empty retained message (a topic being cleared): nothing to store.
    Cleared,
    /// A bad message.
    Dead(DeadLetter),
}

/// The `reading/<sensor>` payload, by the field names of `ReadingJson` (src/reading.rs).
#[derive(Deserialize)]
struct ReadingPayload {
    flags: Vec<String>,
    quantity: String,
    sensor: String,
    ts: String,
    #[serde(default)]
    unit: Option<String>,
    value: Option<f64>,
    id: i64,
    #[serde(default)]
    backfill: bool,
    /// Not sent by Anemone; checked against the topic when another publisher adds it.
    #[serde(default)]
    station: Option<String>,
}

/// Where a topic points.
enum Route<'a> {
    Reading(&'a str, &'a str),
    Status(&'a str),
    Meta(&'a str),
    State(&'a str),
    Chain(&'a str),
}

fn route<'a>(prefix: &str, topic: &'a str) -> Option<Route<'a>> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let (station, what) = rest.split_once('/')?;
    if station.is_empty() {
        return None;
    }
    Some(match what {
        "status" => Route::Status(station),
        "meta" => Route::Meta(station),
        "state" => Route::State(station),
        "chain" => Route::Chain(station),
        _ => {
            let sensor = what.strip_prefix("reading/")?;
            if sensor.is_empty() || sensor.contains('/') {
                return None;
            }
            Route::Reading(station, sensor)
        }
    })
}

/// Reads one message. `prefix` is the topic prefix without the station (`anemone`).
pub fn parse(prefix: &str, max_payload: usize, topic: &str, payload: &[u8]) -> Parsed {
    let dead = |reason: String| {
        Parsed::Dead(DeadLetter {
            topic: topic.to_string(),
            payload: payload[..payload.len().min(max_payload)].to_vec(),
            reason,
        })
    };
    if payload.len() > max_payload {
        return dead(format!(
            "oversized: {} bytes, more than max_payload_bytes = {max_payload} (payload kept truncated)",
            payload.len()
        ));
    }
    let Some(route) = route(prefix, topic) else {
        return dead(format!(
            "topic is not one of {prefix}/<station>/reading/<sensor>, status, meta, state or chain"
        ));
    };
    match route {
        Route::Reading(station, sensor) => match reading(station, sensor, payload) {
            Ok(row) => Parsed::Reading(row),
            Err(reason) => dead(reason),
        },
        Route::Status(station) => match payload {
            b"" => Parsed::Cleared,
            p if p == ONLINE.as_bytes() => Parsed::Status {
                station: station.to_string(),
                online: true,
            },
            p if p == OFFLINE.as_bytes() => Parsed::Status {
                station: station.to_string(),
                online: false,
            },
            _ => dead(format!("status is neither `{ONLINE}` nor `{OFFLINE}`")),
        },
        Route::Meta(station) => {
            if payload.is_empty() {
                return Parsed::Cleared;
            }
            match meta(station, payload) {
                Ok(m) => Parsed::Meta(m),
                Err(reason) => dead(reason),
            }
        }
        Route::Chain(station) => {
            if payload.is_empty() {
                return Parsed::Cleared;
            }
            match chain(station, payload) {
                Ok(h) => Parsed::Chain(h),
                Err(reason) => dead(reason),
            }
        }
        Route::State(station) => {
            if payload.is_empty() {
                return Parsed::Cleared;
            }
            match serde_json::from_slice::<serde_json::Value>(payload) {
                Ok(json @ serde_json::Value::Object(_)) => Parsed::State {
                    station: station.to_string(),
                    json,
                },
                Ok(_) => dead("wrong type: state is not a JSON object".into()),
                Err(e) => dead(format!("not JSON: {e}")),
            }
        }
    }
}

fn json_error(e: serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => format!("wrong type: {e}"),
        _ => format!("not JSON: {e}"),
    }
}

fn reading(station: &str, sensor: &str, payload: &[u8]) -> Result<ReadingRow, String> {
    let p: ReadingPayload = serde_json::from_slice(payload).map_err(json_error)?;
    if let Some(s) = &p.station {
        if s != station {
            return Err(format!(
                "topic station `{station}` does not match payload station `{s}`"
            ));
        }
    }
    if p.sensor != sensor {
        return Err(format!(
            "topic sensor `{sensor}` does not match payload sensor `{}`",
            p.sensor
        ));
    }
    let quantity: Quantity = p
        .quantity
        .parse()
        .map_err(|_| format!("unknown quantity `{}`", p.quantity))?;
    if let Some(unit) = &p.unit {
        if unit != quantity.unit() {
            return Err(format!(
                "unit `{unit}` is not {}'s unit `{}`",
                quantity.as_str(),
                quantity.unit()
            ));
        }
    }
    let ts = parse_ts(&p.ts).ok_or_else(|| format!("ts `{}` is not an RFC 3339 time", p.ts))?;
    let mut flags = Flags::OK;
    for name in &p.flags {
        flags.insert(Flags::from_name(name).ok_or_else(|| format!("unknown flag `{name}`"))?);
    }
    if p.id < 1 {
        return Err(format!("reading id {} is not positive", p.id));
    }
    if p.value.is_some_and(|v| !v.is_finite()) {
        return Err("wrong type: value is not a finite number".into());
    }
    Ok(ReadingRow {
        station: station.to_string(),
        id: p.id,
        ts,
        sensor: p.sensor,
        quantity,
        value: p.value,
        flags,
        backfill: p.backfill,
    })
}

/// The `chain` payload (`anemone::mqtt::payload::chain_payload`).
#[derive(Deserialize)]
struct ChainPayload {
    station: String,
    batch: i64,
    last_id: i64,
    hash: String,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

fn chain(station: &str, payload: &[u8]) -> Result<ChainHead, String> {
    let p: ChainPayload = serde_json::from_slice(payload).map_err(json_error)?;
    if p.station != station {
        return Err(format!(
            "topic station `{station}` does not match payload station `{}`",
            p.station
        ));
    }
    if anemone::store::parse_hex(&p.hash).is_none() {
        return Err("wrong type: chain's hash is not 64 hex digits".into());
    }
    if p.batch < 0 || p.last_id < 0 {
        return Err("wrong value: chain's batch and last_id are never negative".into());
    }
    Ok(ChainHead {
        station: p.station,
        batch: p.batch,
        last_id: p.last_id,
        hash: p.hash.to_ascii_lowercase(),
        public_key: p.public_key.map(|k| k.to_ascii_lowercase()),
        signature: p.signature.map(|s| s.to_ascii_lowercase()),
    })
}

fn meta(station: &str, payload: &[u8]) -> Result<Meta, String> {
    let json: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let Some(obj) = json.as_object() else {
        return Err("wrong type: meta is not a JSON object".into());
    };
    match obj.get("station") {
        Some(serde_json::Value::String(s)) if s != station => {
            return Err(format!(
                "topic station `{station}` does not match payload station `{s}`"
            ))
        }
        Some(serde_json::Value::String(_)) | None => {}
        Some(_) => return Err("wrong type: meta's station is not a string".into()),
    }
    let name = match obj.get("name") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("wrong type: meta's name is not a string".into()),
    };
    let location = obj.get("location");
    let number = |key: &str| -> Result<Option<f64>, String> {
        match location.and_then(|l| l.get(key)) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("wrong type: meta's location.{key} is not a number")),
        }
    };
    Ok(Meta {
        station: station.to_string(),
        name,
        latitude: number("latitude")?,
        longitude: number("longitude")?,
        altitude_m: number("altitude_m")?,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anemone::reading::{Reading, StoredReading};
    use std::sync::Arc;

    fn payload(backfill: bool) -> Vec<u8> {
        let sensor: Arc<str> = Arc::from("air");
        let r = Reading::new(1_764_000_000_500, &sensor, Quantity::AirTemperature, 12.5);
        let mut out = Vec::new();
        StoredReading { id: 42, reading: r }
            .json_with_id(backfill, &anemone::reading::Precision::default())
            .write_to(&mut out);
        out
    }

    fn reason(p: Parsed) -> String {
        match p {
            Parsed::Dead(d) => d.reason,
            other => panic!("expected a dead letter, got {other:?}"),
        }
    }

    #[test]
    fn the_stations_own_payload_is_a_reading() {
        let p = parse("anemone", 65536, "anemone/mast/reading/air", &payload(true));
        assert_eq!(
            p,
            Parsed::Reading(ReadingRow {
                station: "mast".into(),
                id: 42,
                ts: 1_764_000_000_500,
                sensor: "air".into(),
                quantity: Quantity::AirTemperature,
                value: Some(12.5),
                flags: Flags::OK,
                backfill: true,
            })
        );
    }

    #[test]
    fn each_kind_of_bad_message_has_its_reason() {
        let t = "anemone/mast/reading/air";
        assert!(reason(parse("anemone", 65536, t, b"{not json")).starts_with("not JSON"));
        let wrong = String::from_utf8(payload(false))
            .unwrap()
            .replace("12.5", "\"12.5\"");
        assert!(reason(parse("anemone", 65536, t, wrong.as_bytes())).starts_with("wrong type"));
        let unknown = String::from_utf8(payload(false))
            .unwrap()
            .replace("air_temperature", "air_temprature");
        assert_eq!(
            reason(parse("anemone", 65536, t, unknown.as_bytes())),
            "unknown quantity `air_temprature`"
        );
        assert!(reason(parse("anemone", 1024, t, &[b' '; 2000])).starts_with("oversized"));
        let other =
            String::from_utf8(payload(false))
                .unwrap()
                .replacen('{', "{\"station\":\"buoy\",", 1);
        assert!(reason(parse("anemone", 65536, t, other.as_bytes()))
            .contains("does not match payload station `buoy`"));
        let sensor = parse(
            "anemone",
            65536,
            "anemone/mast/reading/water",
            &payload(false),
        );
        assert!(reason(sensor).contains("topic sensor `water`"));
        let meta = br#"{"station": "buoy", "name": "x"}"#;
        assert!(reason(parse("anemone", 65536, "anemone/mast/meta", meta)).contains("`buoy`"));
        assert!(reason(parse("anemone", 65536, "anemone/mast/status", b"up")).contains("online"));
    }

    #[test]
    fn status_meta_state_and_cleared_topics() {
        assert_eq!(
            parse("anemone", 65536, "anemone/mast/status", b"offline"),
            Parsed::Status {
                station: "mast".into(),
                online: false
            }
        );
        assert_eq!(
            parse("anemone", 65536, "anemone/mast/meta", b""),
            Parsed::Cleared
        );
        let meta = br#"{"station": "mast", "name": "School mast",
            "location": {"latitude": 50.12, "longitude": -5.54, "altitude_m": 42.0}}"#;
        match parse("anemone", 65536, "anemone/mast/meta", meta) {
            Parsed::Meta(m) => {
                assert_eq!(m.name.as_deref(), Some("School mast"));
                assert_eq!(
                    (m.latitude, m.longitude, m.altitude_m),
                    (Some(50.12), Some(-5.54), Some(42.0))
                );
            }
            other => panic!("{other:?}"),
        }
        let state = br#"{"ts": "2026-11-14T10:00:00.000Z", "sensors": {}}"#;
        assert!(matches!(
            parse("anemone", 65536, "anemone/mast/state", state),
            Parsed::State { .. }
        ));
    }
}
