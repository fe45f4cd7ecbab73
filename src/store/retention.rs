//! Deleting raw readings older than `[storage] retention` and aggregates older than
//! `retention_minute`, `retention_hour`, `retention_day` (default 0: kept forever).
//!
//! The writer runs retention hourly, in small transactions. Raw readings go by whole
//! commit batches, so the tamper-evident chain stays checkable (see `store::chain`: an
//! anchor record keeps the hash of what was removed).
//! Retention never loses data that is still owed or still young:
//! * **Unpublished readings stay.** While MQTT is configured the store is the outbox:
//!   only readings with an id at or below the publish cursor (acknowledged by the broker)
//!   are deleted ([`Unpublished::Keep`]). A broker away for a month means a month more on
//!   disk, not a month lost.
//! * **Clock steps do not delete.** Retention runs only while clock safety trusts the
//!   station clock, and its own "now" is `min(station clock, T + elapsed)`, where `T` is
//!   the last "now" it acted on (persisted in `meta` as `retention_now`; for a database
//!   without it, its newest reading's time) and `elapsed` is station time that actually
//!   passed since, by the monotonic clock ([`crate::clock::Clock::elapsed_ms`]). So a
//!   step forward of a year (an NTP or GPS fault, a mis-set RTC, at run time or across
//!   a restart) deletes nothing that was inside the window before it; rows age out as
//!   real time passes. The price: time the station was off (or its clock untrusted)
//!   does not count, so after a long power-off old rows are deleted that much later,
//!   never earlier. A step backwards only delays deletion.
//! * **Only a full disk drops readings**, and only those not yet written: beyond
//!   `max_buffered` readings held in memory the writer drops the oldest, counts them
//!   ([`WriterStats::dropped`](super::writer::WriterStats::dropped)) and logs an ERROR.

use rusqlite::params;

use super::{chain, schema, Resolution, Store, StoreError};
use crate::reading::Timestamp;

/// Readings deleted per retention transaction (bounds the WAL a deletion writes).
pub const EXPIRE_CHUNK: i64 = 2_000;

/// What retention does with readings the MQTT broker has not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpublished {
    /// MQTT is configured: every reading above the publish cursor is kept, whatever its
    /// age (the store is the outbox).
    Keep,
    /// No MQTT: age alone decides.
    Expire,
}

impl Store {
    /// Deletes raw readings older than `older_than` in transactions of at most
    /// [`EXPIRE_CHUNK`] rows; aggregates are kept. With [`Unpublished::Keep`] no reading
    /// above the publish cursor is deleted. Returns how many were deleted.
    pub fn expire(
        &mut self,
        older_than: Timestamp,
        unpublished: Unpublished,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let (n, more) = self.expire_some(older_than, unpublished, u64::MAX)?;
            total += n;
            if !more {
                return Ok(total);
            }
        }
    }

    /// Like [`Store::expire`], stopping once about `max_rows` were deleted; the flag says
    /// whether old rows may remain.
    ///
    /// Readings go by whole commit batches of the tamper-evident chain (`store::chain`),
    /// oldest first: a batch goes once every reading in it is older than `older_than`
    /// and, with [`Unpublished::Keep`], acknowledged; its chain record is folded into the
    /// anchor record, so `verify` still checks what remains. The newest batch (the
    /// chain's head) always stays. Each removal is logged (batches, reading ids, count).
    pub fn expire_some(
        &mut self,
        older_than: Timestamp,
        unpublished: Unpublished,
        max_rows: u64,
    ) -> Result<(u64, bool), StoreError> {
        // Rows about to go must be in the persisted aggregates first.
        // `hi` comes from persisted hour buckets, whose readings are all at or below the
        // persisted `aggregates_through_id`: nothing deleted is missing from the persisted
        // aggregates (a crash rebuilds only what follows that id). So persist first only
        // when an hour bucket older than the cutoff is not persisted yet (old readings
        // just stored, an import); the hourly persist covers the rest, and an extra one
        // here would rewrite the open buckets' pages for nothing.
        let hour = Resolution::Hour.code();
        if self.agg_stale || hour.is_some_and(|c| self.agg.has_dirty_before(c, older_than)) {
            self.flush_aggregates()?;
        }
        let hi: Option<i64> = self.db(self.conn.query_row(
            "SELECT max(last_id) FROM aggregates WHERE resolution = ?1 AND start < ?2",
            params![Resolution::Hour.code(), older_than],
            |r| r.get(0),
        ))?;
        let Some(mut hi) = hi else {
            return Ok((0, false));
        };
        if unpublished == Unpublished::Keep {
            // The store is the MQTT outbox: what the broker has not acknowledged stays.
            hi = hi.min(self.publish_cursor()?);
        }
        let mut deleted = 0u64;
        while deleted < max_rows {
            let chunk = EXPIRE_CHUNK.max(1) as u64;
            let removed = chain::remove_oldest(
                &mut self.conn,
                hi,
                older_than,
                chunk.min(max_rows - deleted),
            );
            let removed = self.db(removed)?;
            let Some(r) = removed else {
                return Ok((deleted, false));
            };
            tracing::info!(
                path = %self.path.display(),
                batches = %format!("{}–{}", r.first_batch, r.last_batch),
                ids = %format!("{}–{}", r.first_id, r.last_id),
                readings = r.rows,
                older_than = %crate::reading::format_ts(older_than),
                "Retention deleted old raw readings (whole chain batches; the chain's anchor keeps their hash)."
            );
            deleted += r.rows;
        }
        Ok((deleted, true))
    }

    /// Deletes the `resolution` aggregates (minute, hour or day) whose bucket started
    /// before `older_than`; logs what went. Raw readings are [`Store::expire`]'s.
    pub fn expire_aggregates(
        &mut self,
        resolution: Resolution,
        older_than: Timestamp,
    ) -> Result<u64, StoreError> {
        // A bucket still to be persisted would come back after the delete; the others
        // need no persist here (an hourly persist writes them anyway).
        if resolution
            .code()
            .is_some_and(|c| self.agg_stale || self.agg.has_dirty_before(c, older_than))
        {
            self.flush_aggregates()?;
        }
        let n = self.db(self.conn.execute(
            "DELETE FROM aggregates WHERE resolution = ?1 AND start < ?2",
            params![resolution.code(), older_than],
        ))? as u64;
        if n > 0 {
            tracing::info!(
                path = %self.path.display(),
                resolution = resolution.as_str(),
                buckets = n,
                older_than = %crate::reading::format_ts(older_than),
                "Retention deleted old aggregates."
            );
        }
        Ok(n)
    }

    /// The station time retention last acted on ([`Store::set_retention_now`]), `None`
    /// before it first ran.
    pub fn retention_now(&self) -> Result<Option<Timestamp>, StoreError> {
        self.meta_i64(schema::META_RETENTION_NOW)
    }

    /// Records the station time retention acted on, so that after a restart its notion
    /// of "now" continues from there (see the module docs).
    pub fn set_retention_now(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.db(self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![schema::META_RETENTION_NOW, now],
        ))?;
        Ok(())
    }
}
