//! The sensors the store knows (name, kind, hardware id, and the integer id the readings
//! refer to) and the calibrations recorded for them.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use super::error::classify;
use super::{schema, Store, StoreError};
use crate::reading::{Quantity, SensorId, Timestamp};

/// One recorded calibration (`anemone calibrate`).
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationRecord {
    /// Row id, increasing.
    pub id: i64,
    /// When it was recorded (UTC ms).
    pub ts: Timestamp,
    /// What was recorded (e.g. `ph_ezo`, `ph_analog_fit`).
    pub kind: String,
    /// Its details.
    pub payload: serde_json::Value,
}

/// Sensor names and ids, cached from the `sensors` table.
#[derive(Default)]
pub(super) struct Sensors {
    pub(super) by_name: HashMap<String, i64>,
    pub(super) by_id: HashMap<i64, SensorId>,
}

impl Sensors {
    pub(super) fn add(&mut self, id: i64, name: &str) {
        self.by_name.insert(name.to_string(), id);
        self.by_id.insert(id, Arc::from(name));
    }
}

impl Store {
    /// The station id the station last ran under (`None` in a database from before ids
    /// were recorded, or a new one).
    pub fn station_id(&self) -> Result<Option<String>, StoreError> {
        self.db(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [schema::META_STATION_ID],
                |r| r.get(0),
            )
            .optional())
    }

    /// Records the station id the station runs under.
    pub fn record_station_id(&mut self, id: &str) -> Result<(), StoreError> {
        self.db(self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![schema::META_STATION_ID, id],
        ))?;
        Ok(())
    }

    /// Runs `f` in one transaction: the writes of a start (station id, every configured
    /// sensor) reach the disk in one commit instead of one each. On an error nothing of
    /// `f` is kept.
    pub fn in_one_commit<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db(self.conn.execute_batch("BEGIN IMMEDIATE"))?;
        match f(self) {
            Ok(v) => {
                if let Err(e) = self.conn.execute_batch("COMMIT") {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    let _ = self.load_sensors();
                    return Err(classify(&self.path, e));
                }
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                // The sensor cache may name rows that were rolled back.
                self.load_sensors()?;
                Err(e)
            }
        }
    }

    /// True when the database holds at least one reading.
    pub fn has_readings(&self) -> Result<bool, StoreError> {
        self.db(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM readings)", [], |r| r.get(0)))
    }

    pub(super) fn load_sensors(&self) -> Result<(), StoreError> {
        let mut s = Sensors::default();
        let mut stmt = self.db(self.conn.prepare("SELECT id, name FROM sensors"))?;
        let rows =
            self.db(stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))))?;
        for row in rows {
            let (id, name) = self.db(row)?;
            s.add(id, &name);
        }
        *self.sensors.borrow_mut() = s;
        Ok(())
    }

    /// Records a sensor (or updates its kind and hardware id).
    pub fn register_sensor(
        &mut self,
        sensor: &str,
        kind: &str,
        hardware_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = self.db(upsert_sensor(&self.conn, sensor, kind, hardware_id))?;
        self.sensors.borrow_mut().add(id, sensor);
        Ok(())
    }

    /// Records sensors with their hardware ids inside a commit's transaction (the writer's
    /// [`WriterMsg::RegisterSensor`](super::writer::WriterMsg::RegisterSensor)s, which
    /// wait for the next commit rather than writing a commit each). Returns their ids,
    /// for [`Store::cache_sensors`] once the commit is through.
    pub(super) fn upsert_sensors(
        tx: &rusqlite::Transaction<'_>,
        sensors: &[(String, &'static str, String)],
    ) -> rusqlite::Result<Vec<(i64, String)>> {
        sensors
            .iter()
            .map(|(name, kind, hw)| Ok((upsert_sensor(tx, name, kind, Some(hw))?, name.clone())))
            .collect()
    }

    /// Adds committed sensors to the cache of names and ids.
    pub(super) fn cache_sensors(&self, sensors: &[(i64, String)]) {
        let mut cache = self.sensors.borrow_mut();
        for (id, name) in sensors {
            cache.add(*id, name);
        }
    }

    /// Records a calibration of `sensor` at `ts` (registering the sensor if needed).
    pub fn record_calibration(
        &mut self,
        sensor: &str,
        ts: Timestamp,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let sensor_id: i64 = self.db(self.conn.query_row(
            "INSERT INTO sensors (name, kind) VALUES (?1, 'unknown') \
             ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
            params![sensor],
            |r| r.get(0),
        ))?;
        self.sensors.borrow_mut().add(sensor_id, sensor);
        self.db(self.conn.query_row(
            "INSERT INTO calibrations (sensor, ts, kind, payload) VALUES (?1, ?2, ?3, ?4) RETURNING id",
            params![sensor_id, ts, kind, payload.to_string()],
            |r| r.get(0),
        ))
    }

    /// Every calibration recorded for `sensor`, oldest first.
    pub fn calibrations(&self, sensor: &str) -> Result<Vec<CalibrationRecord>, StoreError> {
        let Some(sensor_id) = self.sensor_id(sensor)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.db(self.conn.prepare(
            "SELECT id, ts, kind, payload FROM calibrations WHERE sensor = ?1 ORDER BY ts, id",
        ))?;
        let rows = self.db(stmt.query_map([sensor_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        }))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, ts, kind, payload) = self.db(row)?;
            let payload =
                serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload));
            out.push(CalibrationRecord {
                id,
                ts,
                kind,
                payload,
            });
        }
        Ok(out)
    }

    /// The sensors: (name, kind, hardware id).
    pub fn sensors(&self) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        let mut stmt = self.db(self
            .conn
            .prepare("SELECT name, kind, hardware_id FROM sensors ORDER BY id"))?;
        let rows = self.db(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.db(r)?);
        }
        Ok(out)
    }

    /// Reads the sensor name of a stored sensor id (reloading the table once for a sensor
    /// registered by another connection).
    pub(super) fn sensor_name(&self, id: i64) -> Result<SensorId, StoreError> {
        if let Some(n) = self.sensors.borrow().by_id.get(&id) {
            return Ok(n.clone());
        }
        self.load_sensors()?;
        match self.sensors.borrow().by_id.get(&id) {
            Some(n) => Ok(n.clone()),
            None => Err(StoreError::UnknownCode {
                path: self.path.clone(),
                what: "sensor",
                code: id,
            }),
        }
    }

    pub(super) fn quantity(&self, code: i64) -> Result<Quantity, StoreError> {
        schema::quantity_from_code(code).ok_or_else(|| StoreError::UnknownCode {
            path: self.path.clone(),
            what: "quantity",
            code,
        })
    }

    /// The stored id of a sensor name, `None` when no such sensor was ever stored.
    pub(super) fn sensor_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        if let Some(id) = self.sensors.borrow().by_name.get(name) {
            return Ok(Some(*id));
        }
        self.load_sensors()?;
        Ok(self.sensors.borrow().by_name.get(name).copied())
    }
}

/// Records `sensor` (or updates its kind, and its hardware id when one is given) and
/// returns its id. Unchanged (every start registers every sensor again): no write, so no
/// commit and no page to the WAL.
fn upsert_sensor(
    conn: &rusqlite::Connection,
    sensor: &str,
    kind: &str,
    hardware_id: Option<&str>,
) -> rusqlite::Result<i64> {
    let known: Option<(i64, String, Option<String>)> = conn
        .query_row(
            "SELECT id, kind, hardware_id FROM sensors WHERE name = ?1",
            [sensor],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((id, k, hw)) = known {
        if k == kind && (hardware_id.is_none() || hw.as_deref() == hardware_id) {
            return Ok(id);
        }
    }
    conn.query_row(
        "INSERT INTO sensors (name, kind, hardware_id) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, \
         hardware_id = coalesce(excluded.hardware_id, hardware_id) \
         RETURNING id",
        params![sensor, kind, hardware_id],
        |r| r.get(0),
    )
}
