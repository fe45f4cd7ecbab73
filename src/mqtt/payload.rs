//! The JSON payloads of the contract. Values are JSON numbers (or `null`), never strings.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::reading::{format_ts, Precision, Quantity, Reading, StoredReading, Timestamp};

/// `…/reading/<sensor>`: the public reading shape (`ts`, `sensor`, `quantity`, `value`,
/// `unit`, `flags`) plus the reading `id` and `backfill`, as a tree. The publisher writes
/// the same bytes with [`write_reading_payload`]; both come from
/// [`StoredReading::json_with_id`], the one serialisation of a reading. The value is
/// rounded as `precision` says (the sensor's resolution).
///
/// ```json
/// {"flags": ["ok"], "quantity": "air_temperature", "sensor": "air",
///  "ts": "2026-11-14T10:00:00.000Z", "unit": "°C", "value": 12.5,
///  "id": 1042, "backfill": false}
/// ```
pub fn reading_payload(r: &StoredReading, backfill: bool, precision: &Precision) -> Value {
    serde_json::to_value(r.json_with_id(backfill, precision)).unwrap_or(Value::Null)
}

/// [`reading_payload`] serialised into `out` without building a JSON tree first (cleared
/// first; the publisher reuses one buffer for every reading it sends).
pub fn write_reading_payload(
    out: &mut Vec<u8>,
    r: &StoredReading,
    backfill: bool,
    precision: &Precision,
) {
    out.clear();
    r.json_with_id(backfill, precision).write_to(out);
}

/// How long a sensor's last value stays in `state` without a newer reading before it is
/// shown as `null`: three sensor intervals, at least a minute.
pub fn stale_after_ms(cfg: &Config, sensor: &str) -> i64 {
    const MIN_MS: i64 = 60_000;
    const UNKNOWN_MS: i64 = 600_000;
    match cfg.sensor(sensor) {
        Some(s) => (s.interval.as_millis_i64().saturating_mul(3)).max(MIN_MS),
        None => UNKNOWN_MS,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    ts: Timestamp,
    value: Option<f64>,
}

/// The retained `…/state` snapshot: the latest value of every quantity, keyed by sensor
/// then quantity.
///
/// ```json
/// {"ts": "2026-11-14T10:00:00.000Z",
///  "sensors": {"air": {"air_temperature": 12.5, "relative_humidity": 81.0},
///              "ph": {"ph": null}},
///  "units": {"air_temperature": "°C", "relative_humidity": "%", "ph": "pH"}}
/// ```
///
/// `ts` is the time of the newest reading in the snapshot. A value is `null` when the
/// sensor's last reading failed, or when the sensor has not reported for three of its
/// intervals (at least a minute) before `ts`: a stale value is never shown as current.
#[derive(Debug, Clone, Default)]
pub struct StateSnapshot {
    entries: BTreeMap<String, BTreeMap<Quantity, Entry>>,
    stale_after: BTreeMap<String, i64>,
    precision: Precision,
}

impl StateSnapshot {
    /// An empty snapshot that knows each configured sensor's staleness limit.
    pub fn new(cfg: &Config) -> StateSnapshot {
        let stale_after = cfg
            .sensors
            .iter()
            .map(|s| (s.id.clone(), stale_after_ms(cfg, &s.id)))
            .collect();
        StateSnapshot {
            entries: BTreeMap::new(),
            stale_after,
            precision: cfg.precision(),
        }
    }

    /// Takes a reading into the snapshot if it is not older than what is there.
    /// Returns true when the snapshot changed.
    pub fn update(&mut self, r: &Reading) -> bool {
        let entry = Entry {
            ts: r.ts,
            value: r
                .value
                .filter(|v| v.is_finite())
                .map(|v| self.precision.round(&r.sensor, r.quantity, v)),
        };
        if !self.entries.contains_key(&*r.sensor) {
            self.entries.insert(r.sensor.to_string(), BTreeMap::new());
        }
        let Some(per_sensor) = self.entries.get_mut(&*r.sensor) else {
            return false;
        };
        match per_sensor.get(&r.quantity) {
            Some(old) if old.ts > r.ts || *old == entry => false,
            _ => {
                per_sensor.insert(r.quantity, entry);
                true
            }
        }
    }

    /// True before the first reading.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The JSON payload.
    pub fn to_json(&self) -> Value {
        let newest = self
            .entries
            .values()
            .flat_map(|m| m.values().map(|e| e.ts))
            .max();
        let mut sensors = Map::new();
        let mut units = Map::new();
        for (sensor, quantities) in &self.entries {
            let limit = self.stale_after.get(sensor).copied().unwrap_or(600_000);
            let mut m = Map::new();
            for (q, e) in quantities {
                let fresh = newest.is_none_or(|n| n - e.ts <= limit);
                let value = if fresh { e.value } else { None };
                m.insert(q.as_str().into(), json!(value));
                units.insert(q.as_str().into(), json!(q.unit()));
            }
            sensors.insert(sensor.clone(), Value::Object(m));
        }
        json!({
            "ts": newest.map(format_ts),
            "sensors": sensors,
            "units": units,
        })
    }
}

/// The retained `…/meta` station description.
///
/// ```json
/// {"station": "mast", "name": "School mast",
///  "location": {"latitude": 50.1, "longitude": -5.0, "altitude_m": 42.0},
///  "timezone": "Europe/London",
///  "sensors": [{"id": "air", "type": "bme280", "interval_s": 10.0,
///               "quantities": ["air_temperature", "relative_humidity", "air_pressure"]}],
///  "units": {"air_temperature": "°C", …}, "version": "0.1.0",
///  "topics": {"status": "anemone/mast/status", …}}
/// ```
///
/// `sensors` lists the configured sensors and also every sensor id seen in readings
/// (derived quantities), the latter without `type`. With a signing key (`[station]
/// signing_key`), `public_key` is its Ed25519 public key in lowercase hex, the key the
/// `…/chain` heads are signed with (see `crate::signing`); without one there is no
/// `public_key` field.
pub fn meta_payload(
    cfg: &Config,
    seen: &BTreeMap<String, Vec<Quantity>>,
    key: Option<&crate::signing::StationKey>,
) -> Value {
    let topics = super::topics::Topics::new(cfg);
    let mut sensors: Vec<Value> = Vec::new();
    for s in &cfg.sensors {
        let mut qs = s.kind.quantities();
        for q in seen.get(&s.id).into_iter().flatten() {
            if !qs.contains(q) {
                qs.push(*q);
            }
        }
        sensors.push(json!({
            "id": s.id,
            "type": s.kind.type_name(),
            "interval_s": s.interval.0.as_secs_f64(),
            "quantities": qs.iter().map(|q| q.as_str()).collect::<Vec<_>>(),
        }));
    }
    for (id, qs) in seen {
        if cfg.sensor(id).is_none() {
            sensors.push(json!({
                "id": id,
                "quantities": qs.iter().map(|q| q.as_str()).collect::<Vec<_>>(),
            }));
        }
    }
    let units: Map<String, Value> = Quantity::ALL
        .iter()
        .map(|q| (q.as_str().to_string(), json!(q.unit())))
        .collect();
    let mut meta = json!({
        "station": cfg.station.id,
        "name": cfg.station.name,
        "location": {
            "latitude": crate::reading::round_to(cfg.station.latitude, cfg.station.position_decimals),
            "longitude": crate::reading::round_to(cfg.station.longitude, cfg.station.position_decimals),
            "altitude_m": cfg.station.altitude_m,
        },
        "timezone": cfg.station.timezone,
        "sensors": sensors,
        "units": units,
        "version": env!("CARGO_PKG_VERSION"),
        "topics": {
            "status": topics.status,
            "state": topics.state,
            "readings": format!("{}/reading/+", topics.prefix),
            "chain": topics.chain(),
        },
    });
    if let (Some(k), Some(obj)) = (key, meta.as_object_mut()) {
        obj.insert("public_key".into(), json!(k.public_key_hex()));
    }
    meta
}

/// The payload of `…/chain`: the head of the station's tamper-evident chain (see
/// `store::chain`), e.g.
/// `{"station": "mast", "batch": 1042, "last_id": 123456, "hash": "9f86…"}`.
/// `hash` is the SHA-256 of batch `batch` in lowercase hex; `last_id` the last reading
/// id the batch covers. With a signing key, also `public_key` (as in `meta`) and
/// `signature`: the Ed25519 signature, lowercase hex, of the canonical text of
/// [`crate::signing::signed_message`] (station, batch, last_id, hash).
pub fn chain_payload(
    station: &str,
    head: &crate::store::Head,
    key: Option<&crate::signing::StationKey>,
) -> Value {
    let hash = crate::store::hex(&head.hash);
    let mut v = json!({
        "station": station,
        "batch": head.batch,
        "last_id": head.last_id,
        "hash": hash,
    });
    if let (Some(k), Some(obj)) = (key, v.as_object_mut()) {
        obj.insert("public_key".into(), json!(k.public_key_hex()));
        obj.insert(
            "signature".into(),
            json!(k.sign_head(station, head.batch, head.last_id, &hash)),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Flags, SensorId};
    use std::sync::Arc;

    #[test]
    fn reading_payload_fields() {
        let s: SensorId = Arc::from("air");
        let r = StoredReading {
            id: 7,
            reading: Reading::new(1_700_000_000_000, &s, Quantity::AirTemperature, 12.5),
        };
        let p = Precision::default();
        let v = reading_payload(&r, true, &p);
        assert_eq!(v["id"], 7);
        assert_eq!(v["ts"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["sensor"], "air");
        assert_eq!(v["quantity"], "air_temperature");
        assert_eq!(v["value"], 12.5);
        assert_eq!(v["unit"], "°C");
        assert_eq!(v["flags"], json!(["ok"]));
        assert_eq!(v["backfill"], true);
        for (value, flags) in [(Some(12.5), Flags::OK), (None, Flags::SENSOR_ERROR)] {
            let mut reading = r.reading.clone();
            reading.value = value;
            reading.flags = flags;
            let r = StoredReading { id: 9, reading };
            let mut buf = b"left over from the previous reading".to_vec();
            for backfill in [false, true] {
                write_reading_payload(&mut buf, &r, backfill, &p);
                let fast: Value = serde_json::from_slice(&buf).expect("valid JSON");
                assert_eq!(fast, reading_payload(&r, backfill, &p));
            }
        }
    }

    #[test]
    fn state_nulls_failures_and_stale_values() {
        let cfg = Config::builtin();
        let mut st = StateSnapshot::new(&cfg);
        let air: SensorId = Arc::from("air");
        let other: SensorId = Arc::from("derived");
        assert!(st.update(&Reading::new(0, &air, Quantity::AirTemperature, 10.0)));
        assert!(st.update(&Reading::sensor_error(
            1_000,
            &air,
            Quantity::RelativeHumidity
        )));
        let mut nan = Reading::new(1_000, &air, Quantity::AirPressure, f64::NAN);
        nan.flags = crate::reading::Flags::OK;
        st.update(&nan);
        let v = st.to_json();
        assert_eq!(v["sensors"]["air"]["air_temperature"], 10.0);
        assert!(v["sensors"]["air"]["relative_humidity"].is_null());
        assert!(v["sensors"]["air"]["air_pressure"].is_null());
        assert_eq!(v["units"]["air_temperature"], "°C");
        // An older reading never replaces a newer one.
        assert!(!st.update(&Reading::new(-5, &air, Quantity::AirTemperature, 99.0)));
        // An hour later another sensor reports: the air values are stale now.
        st.update(&Reading::new(3_600_000, &other, Quantity::DewPoint, 3.0));
        let v = st.to_json();
        assert!(v["sensors"]["air"]["air_temperature"].is_null());
        assert_eq!(v["sensors"]["derived"]["dew_point"], 3.0);
        assert_eq!(v["ts"], "1970-01-01T01:00:00.000Z");
        // Values are rounded to the sensor's resolution.
        st.update(&Reading::new(
            3_600_000,
            &air,
            Quantity::AirPressure,
            1004.8946875,
        ));
        st.update(&Reading::new(
            3_600_000,
            &other,
            Quantity::DewPoint,
            3.04159,
        ));
        let v = st.to_json();
        assert_eq!(v["sensors"]["air"]["air_pressure"], 1004.89);
        assert_eq!(v["sensors"]["derived"]["dew_point"], 3.0);
    }

    #[test]
    fn meta_lists_sensors_and_units() {
        let cfg = Config::builtin();
        let mut seen = BTreeMap::new();
        seen.insert("derived".to_string(), vec![Quantity::DewPoint]);
        let v = meta_payload(&cfg, &seen, None);
        assert_eq!(v["station"], "sim");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["units"]["ph"], "pH");
        let sensors = v["sensors"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(sensors, cfg.sensors.len() + 1);
        assert!(v["location"]["altitude_m"].is_number());
    }

    /// With a key, the head carries a signature that verifies with the public key that
    /// `meta` also carries; a tampered head does not verify; without a key neither has
    /// the fields.
    #[test]
    fn a_signed_chain_head_verifies_with_the_meta_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::signing::StationKey::generate(&dir.path().join("k")).unwrap();
        let head = crate::store::Head {
            batch: 12,
            last_id: 3456,
            hash: [7u8; 32],
        };
        let cfg = Config::builtin();
        let meta = meta_payload(&cfg, &BTreeMap::new(), Some(&key));
        let pk = meta["public_key"].as_str().unwrap().to_string();
        let v = chain_payload("mast", &head, Some(&key));
        assert_eq!(v["public_key"], pk.as_str());
        let sig = v["signature"].as_str().unwrap();
        let hash = v["hash"].as_str().unwrap();
        assert!(crate::signing::verify_head(
            &pk, sig, "mast", 12, 3456, hash
        ));
        assert!(!crate::signing::verify_head(
            &pk, sig, "mast", 12, 3457, hash
        ));
        let plain = chain_payload("mast", &head, None);
        assert!(plain.get("signature").is_none() && plain.get("public_key").is_none());
        assert!(meta_payload(&cfg, &BTreeMap::new(), None)
            .get("public_key")
            .is_none());
    }
}
