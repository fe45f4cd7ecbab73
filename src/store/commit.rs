//! Storing readings: one transaction per commit, with the publish cursor and the id
//! reservation, then folded into the in-memory aggregates.
//!
//! # What a reading costs on the SD card
//! Every commit writes each page it touches whole, to the WAL and again at checkpoint.
//! The layout keeps that set small:
//! * `readings` is a rowid table appended in time order (`id` = reading id, the MQTT
//!   reading id): a commit touches the last leaf page or two. A row is ~25 bytes.
//! * **No secondary index.** An index on `ts` would add a second b-tree tail to every
//!   commit. Time ranges are found through the hour aggregates instead: each bucket keeps
//!   the lowest and highest reading id it holds (`first_id`, `last_id`), so a time range
//!   maps to a rowid range plus a filter on `ts`; this stays exact when the clock jumps
//!   (readings out of time order), it only scans more rows.
//! * Aggregates (minute, hour, local day) live in memory and are persisted every
//!   [`AGGREGATE_PERSIST_MS`](super::writer::AGGREGATE_PERSIST_MS) of station time
//!   (aligned, so hour and day buckets are written soon after they close), on every flush
//!   and on shutdown; retention persists them only when it would delete readings they do
//!   not cover yet. Readings committed after the last persist are folded in again on open
//!   (exactly: the persisted buckets record the highest reading id they cover), so a
//!   crash loses nothing from the day's summary.
//! * **1 KiB pages** in a new file ([`NEW_FILE_PAGE_SIZE`](super::open::NEW_FILE_PAGE_SIZE)).
//!   What a commit of the default station writes to the WAL (read from the frame headers
//!   with `strace`, pages mapped to tables with `dbstat`): page 1 (the header's page
//!   count: the file grew), the readings' root, the `meta` page (publish cursor), the
//!   chain's tail, the last readings leaf again and the new ones. Only the new leaves
//!   scale with the batch, so the fixed pages cost 1 KiB each rather than 4. SQLite's
//!   automatic checkpoint (every 1 000 pages) stays: see `store::open`.
//! * A new database is created in one transaction (schema, chain genesis, day zone), a
//!   start records its station id and sensors in one more, unchanged sensors are not
//!   written, and hardware ids found when sources start go with the next commit.
//!
//! Measured by the test `store::bytes_per_reading` (15 series, each sampled every 10 s,
//! aggregates persisted every 5 min): **~420 WAL bytes per reading with 5-s commits** and
//! **~130 with 60-s commits** (1 240 and 220 with 4 KiB pages). The commit interval is the
//! lever; the default is 2 min (MQTT gets readings before their commit, so dashboards do
//! not wait for it). Whole process, release build (`bench/lean.sh`, `write_bytes` /
//! readings stored): a 75-s `--speed 10` run from a new file 349 → 206 bytes per reading,
//! a whole simulated day 187 → 158 (before → after the changes above). What remains
//! besides the rows: the `-shm` file's pages (SQLite's WAL index, mapped from a file
//! beside the database and written back by the kernel), each commit's sync landing in
//! the middle of a 4 KiB page that the next commit dirties again, and the checkpoint,
//! which writes each row a second time.

use rusqlite::{params, OptionalExtension};

use super::chain;
use super::cursor::set_cursor;
use super::error::classify;
use super::{schema, Store, StoreError, StoredReading};
use crate::config::Synchronous;
use crate::reading::{Reading, SensorId};

/// More rows a commit writes in its transaction.
pub(super) type AlsoWrite<'a> = dyn Fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()> + 'a;

impl Store {
    /// Stores `readings` in one transaction; unknown sensors are registered with kind
    /// `unknown`. Returns the rows with their ids.
    pub fn insert_batch(&mut self, readings: &[Reading]) -> Result<Vec<StoredReading>, StoreError> {
        self.commit(readings, None)
    }

    /// Stores `readings` and advances the publish cursor to `cursor` (never backwards)
    /// in one transaction, then folds the readings into the in-memory aggregates. The
    /// readings get the next free ids (above every stored and every reserved id).
    pub fn commit(
        &mut self,
        readings: &[Reading],
        cursor: Option<i64>,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let first = self.id_floor()? + 1;
        let rows: Vec<StoredReading> = readings
            .iter()
            .zip(first..)
            .map(|(r, id)| StoredReading {
                id,
                reading: r.clone(),
            })
            .collect();
        self.commit_stored(&rows, cursor, None)?;
        Ok(rows)
    }

    /// The highest reading id that is stored or reserved: a new reading must get a
    /// higher one. See [`Store::commit_stored`].
    pub fn id_floor(&self) -> Result<i64, StoreError> {
        let stored = self.last_reading_id()?;
        let reserved: Option<i64> = self.db(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [schema::META_IDS_RESERVED],
                |r| r.get(0),
            )
            .optional())?;
        Ok(stored.max(reserved.unwrap_or(0)))
    }

    /// Stores readings whose ids the writer assigned (increasing, above
    /// [`Store::id_floor`]) and advances the publish cursor, in one transaction.
    ///
    /// The writer hands readings to MQTT before they are committed, so an id may be seen
    /// by a dashboard and then lost in a crash; it must never be given to another
    /// reading. `reserve` records, in the same transaction and synced to the disk even
    /// under `synchronous = "normal"`, that every id up to it is taken: after a crash the
    /// next run starts above it.
    pub fn commit_stored(
        &mut self,
        rows: &[StoredReading],
        cursor: Option<i64>,
        reserve: Option<i64>,
    ) -> Result<(), StoreError> {
        self.commit_stored_also(rows, cursor, reserve, None)
    }

    /// [`Store::commit_stored`], writing more rows in the same transaction.
    pub(super) fn commit_stored_also(
        &mut self,
        rows: &[StoredReading],
        cursor: Option<i64>,
        reserve: Option<i64>,
        also: Option<&AlsoWrite<'_>>,
    ) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::InvalidQuery(
                "this store was opened read-only".into(),
            ));
        }
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let synced = reserve.is_some() && self.synchronous != Synchronous::Full;
        if synced {
            self.conn
                .execute_batch("PRAGMA synchronous = FULL")
                .map_err(err)?;
        }
        let result = self.commit_rows(rows, cursor, reserve, also);
        if synced {
            let back = self.conn.execute_batch("PRAGMA synchronous = NORMAL");
            if let Err(e) = back {
                tracing::warn!(path = %self.path.display(), error = %e, "Could not return to synchronous = normal");
            }
        }
        result
    }

    /// The one transaction of a commit; `also` writes more rows in it (the import's
    /// record of the source rows it stored).
    pub(super) fn commit_rows(
        &mut self,
        rows: &[StoredReading],
        cursor: Option<i64>,
        reserve: Option<i64>,
        also: Option<&AlsoWrite<'_>>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let mut new_sensors: Vec<(i64, SensorId)> = Vec::new();
        let tx = self.conn.transaction().map_err(err)?;
        // The batch's chain record is hashed from the rows as they go in.
        let mut sealer = if rows.is_empty() {
            None
        } else {
            Some(chain::Sealer::start(&tx).map_err(err)?)
        };
        {
            let sensors = self.sensors.borrow();
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO readings (id, ts, sensor, quantity, value, flags) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for StoredReading { id, reading: r } in rows {
                let known = sensors.by_name.get(&*r.sensor).copied().or_else(|| {
                    new_sensors
                        .iter()
                        .find(|(_, n)| *n == r.sensor)
                        .map(|(id, _)| *id)
                });
                let sensor = match known {
                    Some(id) => id,
                    None => {
                        let id: i64 = tx
                            .query_row(
                                "INSERT INTO sensors (name, kind) VALUES (?1, 'unknown') \
                                 ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
                                [&*r.sensor],
                                |row| row.get(0),
                            )
                            .map_err(err)?;
                        new_sensors.push((id, r.sensor.clone()));
                        id
                    }
                };
                let value = r.value.filter(|v| !v.is_nan());
                let quantity = schema::quantity_code(r.quantity);
                let flags = r.flags.bits();
                insert
                    .execute(params![id, r.ts, sensor, quantity, value, flags])
                    .map_err(err)?;
                if let Some(s) = &mut sealer {
                    s.row(*id, r.ts, sensor, quantity, value, i64::from(flags));
                }
            }
        }
        if let Some(s) = sealer {
            s.finish(&tx).map_err(err)?;
        }
        if let Some(c) = cursor {
            set_cursor(&tx, c).map_err(err)?;
        }
        if let Some(through) = reserve {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![schema::META_IDS_RESERVED, through],
            )
            .map_err(err)?;
        }
        if let Some(also) = also {
            also(&tx).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        {
            let mut sensors = self.sensors.borrow_mut();
            for (id, name) in &new_sensors {
                sensors.add(*id, name);
            }
        }
        if !self.agg_stale {
            for s in rows {
                let r = &s.reading;
                let folded = self.agg.fold(
                    &self.conn,
                    s.id,
                    r.ts,
                    self.sensors
                        .borrow()
                        .by_name
                        .get(&*r.sensor)
                        .copied()
                        .unwrap_or(0),
                    schema::quantity_code(r.quantity),
                    r.value,
                    r.flags,
                );
                if let Err(e) = folded {
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "Could not update the in-memory aggregates; they will be rebuilt from the stored readings.");
                    self.agg_stale = true;
                    break;
                }
            }
        }
        Ok(())
    }
}
