//! History brought in by `anemone import`: readings another program measured, stored
//! beside the station's own.
//!
//! * They are stored under a sensor of kind [`IMPORT_KIND`] (the importer names it, e.g.
//!   `oracle-import`), with the source in its hardware id, so `export --sensor` and
//!   `stats` show where a value came from.
//! * They are not live data: [`Store::unpublished`] never offers them to MQTT, and an
//!   import that finds nothing owed advances the publish cursor past them in its own
//!   transaction (so retention may expire them like any reading MQTT has).
//! * Each source row's id is recorded per source (`imported_rows`) in the same
//!   transaction as its readings: a second import of the same rows, or a re-run after a
//!   crash, adds nothing.
//! * They fold into the minute, hour and day aggregates like any reading; the aggregates
//!   are persisted after every batch, so memory stays bounded over years of history.

use std::collections::HashSet;

use rusqlite::params;

use super::{schema, Store, StoreError, StoredReading};
use crate::reading::Reading;

pub use schema::IMPORT_KIND;

/// One row of the source and the readings it gives.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// The row's id in the source (its primary key).
    pub row_id: i64,
    /// Its readings (possibly none: every value was NULL or left out).
    pub readings: Vec<Reading>,
}

/// What one imported batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Source rows stored now.
    pub rows: u64,
    /// Readings stored now.
    pub readings: u64,
    /// Source rows skipped: imported before.
    pub already: u64,
}

impl Store {
    /// Registers `sensor` as the sensor of imported history from `source`. Refuses a name
    /// that a sensor of the station already uses.
    pub fn register_import_sensor(&mut self, sensor: &str, source: &str) -> Result<(), StoreError> {
        let kind: Option<String> = {
            use rusqlite::OptionalExtension;
            self.db(self
                .conn
                .query_row("SELECT kind FROM sensors WHERE name = ?1", [sensor], |r| {
                    r.get(0)
                })
                .optional())?
        };
        if let Some(k) = kind {
            if k != IMPORT_KIND {
                return Err(StoreError::InvalidQuery(format!(
                    "the sensor name `{sensor}` belongs to a `{k}` sensor of this station: \
                     import under another name (--sensor)"
                )));
            }
        }
        self.register_sensor(sensor, IMPORT_KIND, Some(source))
    }

    /// Stores the rows of `batch` not imported from `source` before, with their readings,
    /// in one transaction, then persists the aggregates.
    pub fn import_batch(
        &mut self,
        source: &str,
        batch: &[SourceRow],
    ) -> Result<BatchOutcome, StoreError> {
        let mut out = BatchOutcome::default();
        let done = self.imported_among(source, batch)?;
        let mut fresh: Vec<i64> = Vec::new();
        let mut seen = HashSet::new();
        let mut readings: Vec<&Reading> = Vec::new();
        for row in batch {
            if done.contains(&row.row_id) || !seen.insert(row.row_id) {
                out.already += 1;
                continue;
            }
            fresh.push(row.row_id);
            readings.extend(row.readings.iter());
        }
        if fresh.is_empty() {
            return Ok(out);
        }
        let floor = self.id_floor()?;
        let rows: Vec<StoredReading> = readings
            .into_iter()
            .zip(floor + 1..)
            .map(|(r, id)| StoredReading {
                id,
                reading: r.clone(),
            })
            .collect();
        // Nothing owed to MQTT below: the cursor may pass the history at once.
        let cursor = match rows.last() {
            Some(last) if self.publish_cursor()? >= floor => Some(last.id),
            _ => None,
        };
        let record = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<()> {
            let mut ins =
                tx.prepare_cached("INSERT INTO imported_rows (source, row_id) VALUES (?1, ?2)")?;
            for id in &fresh {
                ins.execute(params![source, id])?;
            }
            Ok(())
        };
        self.commit_rows(&rows, cursor, None, Some(&record))?;
        self.flush_aggregates()?;
        out.rows = fresh.len() as u64;
        out.readings = rows.len() as u64;
        Ok(out)
    }

    /// How many rows of `source` were imported.
    pub fn imported_count(&self, source: &str) -> Result<u64, StoreError> {
        let n: i64 = self.db(self.conn.query_row(
            "SELECT count(*) FROM imported_rows WHERE source = ?1",
            [source],
            |r| r.get(0),
        ))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The row ids of `batch` already imported from `source`.
    fn imported_among(
        &self,
        source: &str,
        batch: &[SourceRow],
    ) -> Result<HashSet<i64>, StoreError> {
        let mut stmt = self.db(self
            .conn
            .prepare_cached("SELECT 1 FROM imported_rows WHERE source = ?1 AND row_id = ?2"))?;
        let mut done = HashSet::new();
        for row in batch {
            if self.db(stmt.exists(params![source, row.row_id]))? {
                done.insert(row.row_id);
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Synchronous;
    use crate::reading::{Quantity, SensorId};
    use crate::store::{Query, StoreOptions};
    use std::sync::Arc;

    fn open(dir: &tempfile::TempDir) -> Store {
        let opts = StoreOptions {
            synchronous: Synchronous::Normal,
            tz: chrono_tz::UTC,
            vfs: None,
        };
        Store::open(&dir.path().join("a.db"), &opts).unwrap()
    }

    fn rows(sensor: &SensorId, ids: std::ops::Range<i64>) -> Vec<SourceRow> {
        ids.map(|i| SourceRow {
            row_id: i,
            readings: vec![
                Reading::new(i * 300_000, sensor, Quantity::AirTemperature, i as f64),
                Reading::new(i * 300_000, sensor, Quantity::Rain, 0.2794),
            ],
        })
        .collect()
    }

    #[test]
    fn second_import_adds_nothing_and_mqtt_is_not_owed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(&dir);
        let sensor: SensorId = Arc::from("oracle-import");
        s.register_import_sensor("oracle-import", "weather")
            .unwrap();
        let first = s.import_batch("weather", &rows(&sensor, 1..6)).unwrap();
        assert_eq!((first.rows, first.readings, first.already), (5, 10, 0));
        let again = s.import_batch("weather", &rows(&sensor, 3..9)).unwrap();
        assert_eq!((again.rows, again.readings, again.already), (3, 6, 3));
        assert_eq!(s.count_readings(&Query::default()).unwrap(), 16);
        assert_eq!(s.imported_count("weather").unwrap(), 8);
        // Another source's row 1 is another row.
        let other = s.import_batch("school-b", &rows(&sensor, 1..2)).unwrap();
        assert_eq!(other.rows, 1);
        // Nothing was owed, so the cursor passed the history; and it is never offered.
        assert_eq!(s.publish_cursor().unwrap(), s.last_reading_id().unwrap());
        assert!(s.unpublished(0, 100).unwrap().is_empty());
    }

    #[test]
    fn history_is_never_offered_even_when_live_readings_are_owed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(&dir);
        let live: SensorId = Arc::from("htu21d");
        s.insert_batch(&[Reading::new(1, &live, Quantity::AirTemperature, 20.0)])
            .unwrap();
        let sensor: SensorId = Arc::from("oracle-import");
        s.register_import_sensor("oracle-import", "weather")
            .unwrap();
        s.import_batch("weather", &rows(&sensor, 1..4)).unwrap();
        assert_eq!(
            s.publish_cursor().unwrap(),
            0,
            "the live reading is still owed"
        );
        let owed = s.unpublished(0, 100).unwrap();
        assert_eq!(owed.len(), 1);
        assert_eq!(&*owed[0].reading.sensor, "htu21d");
    }

    #[test]
    fn a_live_sensor_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(&dir);
        s.register_sensor("air", "htu21d", None).unwrap();
        let e = s.register_import_sensor("air", "weather").unwrap_err();
        assert!(e.to_string().contains("--sensor"), "{e}");
    }
}
