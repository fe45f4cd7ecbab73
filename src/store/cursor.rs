//! The MQTT publish cursor: the highest reading id the broker acknowledged.
//!
//! The store is the outbox: the cursor only moves forward, in the writer's transactions
//! (with the readings of a commit), and every reading above it is what MQTT still owes.

use rusqlite::{params, Connection};

use super::{schema, Store, StoreError, StoredReading};

impl Store {
    /// Highest reading id the broker acknowledged (0 when none).
    pub fn publish_cursor(&self) -> Result<i64, StoreError> {
        Ok(self.meta_i64(schema::META_PUBLISH_CURSOR)?.unwrap_or(0))
    }

    /// Advances the publish cursor to `id`; a lower id leaves it where it is.
    pub fn set_publish_cursor(&mut self, id: i64) -> Result<(), StoreError> {
        self.db(set_cursor(&self.conn, id))
    }

    /// Up to `limit` readings with an id above `after_id`, in id order: what MQTT still
    /// owes. Readings of imported history (sensors of kind [`schema::IMPORT_KIND`]) are
    /// never owed: they were not measured by this station now (see `store::import`).
    pub fn unpublished(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let mut stmt = self.db(self.conn.prepare_cached(
            "SELECT id, ts, sensor, quantity, value, flags FROM readings \
             WHERE id > ?1 AND sensor NOT IN (SELECT id FROM sensors WHERE kind = ?3) \
             ORDER BY id LIMIT ?2",
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = self.db(stmt.query(params![after_id, limit, schema::IMPORT_KIND]))?;
        let mut out = Vec::new();
        while let Some(row) = self.db(rows.next())? {
            out.push(self.row_reading(row)?);
        }
        Ok(out)
    }
}

/// Advances the stored cursor to `id` (never backwards).
pub(super) fn set_cursor(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value) \
         WHERE excluded.value > value",
        params![schema::META_PUBLISH_CURSOR, id],
    )?;
    Ok(())
}
