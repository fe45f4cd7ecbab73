//! The SQLite store: the station's source of truth and the MQTT outbox.
//!
//! One database file in WAL mode. One writer task ([`writer`]) owns the read-write
//! [`Store`]; `export` and `stats` open the file read-only while it runs. One concern per
//! file, each documented there:
//!
//! * `identity`: what a file is (ours, foreign, not SQLite, newer, corrupt), found before
//!   anything is written; the refusals.
//! * `open`: read-write and read-only opens, migrations (`schema`), durability.
//! * `registry`: sensors and their calibrations.
//! * `commit`: storing readings with reserved ids; what a reading costs on the SD card.
//! * `aggregate`: minute, hour and local-day aggregates, in memory and persisted.
//! * `query`: readings and aggregates by time, sensor and quantity.
//! * `retention`: deleting old raw readings (whole chain batches) and aggregates without
//!   losing what MQTT still owes.
//! * `chain`: the tamper-evident chain of commit batches, and `verify`.
//! * `cursor`: the MQTT publish cursor and the backlog above it.
//! * `import`: history from another program (`anemone import`), recorded per source row.
//! * `quarantine`: a corrupt file kept aside and a new one started.
//! * [`writer`]: the writer task, batching commits on the station clock.

mod aggregate;
mod calibrations;
mod chain;
mod commit;
mod cursor;
mod error;
mod identity;
mod import;
mod open;
mod quarantine;
mod query;
mod registry;
mod retention;
mod schema;
pub mod writer;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension};

use crate::config::Synchronous;

pub use aggregate::{local_date, local_day_bounds, Resolution, UnknownResolution};
pub use chain::{hex, parse_hex, ChainReport, Hash, Head, Link, LinkKind, Tampered, GENESIS_ROWS};
pub use error::StoreError;
pub use identity::QUICK_CHECK_AT_OPEN_BYTES;
pub use import::{BatchOutcome, SourceRow, IMPORT_KIND};
pub use open::ReadOnlyFollower;
pub use quarantine::Quarantine;
pub use query::{Aggregate, Extent, Query};
pub use registry::CalibrationRecord;
pub use retention::{Unpublished, EXPIRE_CHUNK};
pub use schema::{quantity_code, quantity_from_code, APPLICATION_ID, SCHEMA_VERSION};

use aggregate::AggState;
use error::classify;
use registry::Sensors;

/// How the read-write store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `synchronous` pragma in force.
    pub synchronous: Synchronous,
    /// The station's zone: local days of the day aggregates.
    pub tz: Tz,
    /// The SQLite VFS the read-write connection goes through; `None` (the daemon) is
    /// SQLite's default. It exists for the crash tests (`tests/powercut/`), whose VFS
    /// holds every write until it is synced and drops the rest at a simulated power cut.
    /// (The identity check before the open still reads the file as it is on disk.)
    pub vfs: Option<String>,
}

/// A reading with its id (the `readings` rowid, also the MQTT reading id).
pub use crate::reading::StoredReading;

/// The database. Owns one connection; `Send`, not shared.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    tz: Tz,
    read_only: bool,
    sensors: RefCell<Sensors>,
    agg: AggState,
    /// The in-memory aggregates missed readings (an error while folding): rebuild them.
    agg_stale: bool,
    /// Read-only stores: the overlay of the last query (see [`Store::overlay`]), reused
    /// while the persisted aggregates are the same, so a query folds only the readings
    /// stored since the previous one instead of everything since the last persist.
    overlay_cache: RefCell<Option<AggState>>,
    /// The `synchronous` level in force (a reservation commit is synced regardless).
    synchronous: Synchronous,
    /// How it was opened (to start a new file after corruption).
    opts: StoreOptions,
    /// The corrupt file this store replaced when it was opened.
    quarantined: Option<Quarantine>,
    /// `quick_check` ran at open (false: the file was too large; see [`Store::check_file`]).
    checked_at_open: bool,
}

impl Store {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The station zone used for local days.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Maps a SQLite result on this store's file to a [`StoreError`].
    fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T, StoreError> {
        r.map_err(|e| classify(&self.path, e))
    }

    /// An integer of the `meta` table, `None` when unset.
    fn meta_i64(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.db(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional())
            .map(Option::flatten)
    }
}

#[cfg(test)]
mod tests {
    use super::query::PAGE;
    use super::*;
    use crate::reading::{Quantity, Reading, SensorId};
    use std::sync::Arc;

    fn opts() -> StoreOptions {
        StoreOptions {
            synchronous: Synchronous::Normal,
            tz: chrono_tz::UTC,
            vfs: None,
        }
    }

    #[test]
    fn store_is_send() {
        fn send<T: Send>() {}
        send::<Store>();
    }

    #[test]
    fn cursor_never_moves_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("a.db"), &opts()).unwrap();
        assert_eq!(s.publish_cursor().unwrap(), 0);
        s.set_publish_cursor(10).unwrap();
        s.set_publish_cursor(4).unwrap();
        assert_eq!(s.publish_cursor().unwrap(), 10);
        s.commit(&[], Some(12)).unwrap();
        assert_eq!(s.publish_cursor().unwrap(), 12);
    }

    #[test]
    fn sparse_matches_page_through() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("a.db"), &opts()).unwrap();
        let a: SensorId = Arc::from("a");
        let b: SensorId = Arc::from("b");
        let mut batch = Vec::new();
        for i in 0..(PAGE * 2 + 10) {
            batch.push(Reading::new(i * 10, &a, Quantity::Rain, 0.0));
            if i % 1000 == 0 {
                batch.push(Reading::new(i * 10, &b, Quantity::Rain, 1.0));
            }
        }
        s.insert_batch(&batch).unwrap();
        let q = Query {
            sensor: Some("b".into()),
            ..Query::default()
        };
        assert_eq!(s.readings(&q).unwrap().len(), 11);
        assert_eq!(s.count_readings(&q).unwrap(), 11);
        let all = Query::default();
        assert_eq!(s.count_readings(&all).unwrap(), batch.len() as u64);
        assert_eq!(s.readings(&all).unwrap().len(), batch.len());
    }
}
