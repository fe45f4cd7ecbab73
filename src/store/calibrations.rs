//! Every calibration record of every sensor, for `anemone export --calibrations` (the
//! per-sensor records and recording live in `registry`).

use super::registry::CalibrationRecord;
use super::{Store, StoreError};

impl Store {
    /// Every calibration recorded, with its sensor's name, oldest first.
    pub fn all_calibrations(&self) -> Result<Vec<(String, CalibrationRecord)>, StoreError> {
        let mut stmt = self.db(self.conn.prepare(
            "SELECT c.id, c.ts, s.name, c.kind, c.payload FROM calibrations c \
             JOIN sensors s ON s.id = c.sensor ORDER BY c.ts, c.id",
        ))?;
        let rows = self.db(stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        }))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, ts, sensor, kind, payload) = self.db(row)?;
            let payload =
                serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload));
            out.push((
                sensor,
                CalibrationRecord {
                    id,
                    ts,
                    kind,
                    payload,
                },
            ));
        }
        Ok(out)
    }
}
