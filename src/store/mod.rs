//! The SQLite store: the station's source of truth and the MQTT outbox.
//!
//! # Files and durability
//! One database file (`[storage] path`) in WAL mode, plus its `-wal` and `-shm` companions.
//! One writer ([`writer::run_writer`]) owns the read-write [`Store`]; `export` and `stats`
//! use [`Store::open_read_only`], which never creates or changes anything and may run
//! while the daemon writes.
//!
//! * A crashed process loses at most the readings buffered since the last commit (one
//!   `commit_interval`, default 2 min of station time).
//! * With `synchronous = "full"` (default) every commit is synced: a power cut loses no
//!   more than a crash. With `synchronous = "normal"` a power cut may also roll back the
//!   commits made since SQLite last synced the WAL (at checkpoints and id reservations:
//!   up to about 5½ h at the default settings, measured by `tests/powercut/`), for about
//!   10 % fewer bytes written.
//!
//! # What a reading costs on the SD card
//! Every commit writes each page it touches to the WAL (4 KiB) and again at checkpoint.
//! The layout keeps that set small:
//! * `readings` is a rowid table appended in time order (`id` = reading id, the MQTT
//!   reading id): a commit touches the last leaf page or two. A row is ~20 bytes, so one
//!   4 KiB page holds ~170 readings.
//! * **No secondary index.** An index on `ts` would add a second b-tree tail to every
//!   commit. Time ranges are found through the hour aggregates instead: each bucket keeps
//!   the lowest and highest reading id it holds (`first_id`, `last_id`), so a time range
//!   maps to a rowid range plus a filter on `ts`; this stays exact when the clock jumps
//!   (readings out of time order), it only scans more rows.
//! * Aggregates (minute, hour, local day) live in memory and are persisted every
//!   [`writer::AGGREGATE_PERSIST_MS`] of station time (aligned, so hour and day buckets are
//!   written soon after they close), on every flush and on shutdown. Their primary key
//!   starts with `(resolution, start)`, so new buckets append at three tails rather than
//!   scattering over the file. Readings committed after the last persist are folded in
//!   again on open (exactly: the persisted buckets record the highest reading id they
//!   cover), so a crash loses nothing from the day's summary.
//!
//! Measured by the test `store::bytes_per_reading` (15 series, each sampled every 10 s,
//! aggregates persisted every 5 min, 4 KiB pages): **~680 WAL bytes per reading with
//! 5-s commits** (about 1.2 pages per commit; a reading row itself is ~22 bytes) and
//! **~175 bytes per reading with 60-s commits**. Checkpoints write each distinct page once
//! more, at most as much again. The commit interval is the lever: each commit costs about
//! one 4 KiB page whatever it holds. The default is 2 min (MQTT gets readings before
//! their commit, so dashboards do not wait for it) and aggregates are persisted hourly:
//! the bench harness measures ~119 bytes written to disk per reading over a simulated day
//! of the default station, WAL and checkpoints included (bench/README.md).
//!
//! # Retention
//! Raw readings older than `[storage] retention` are deleted by the writer (hourly, in
//! small transactions); aggregates are kept forever. Retention never loses data that is
//! still owed or still young:
//! * **Unpublished readings stay.** While MQTT is configured the store is the outbox:
//!   only readings with an id at or below the publish cursor (acknowledged by the broker)
//!   are deleted ([`Unpublished::Keep`]). A broker away for a month means a month more on
//!   disk, not a month lost.
//! * **Clock steps do not delete.** Retention runs only while clock safety trusts the
//!   station clock, and its own "now" is `min(station clock, T + elapsed)`, where `T` is
//!   the last "now" it acted on (persisted in `meta` as `retention_now`; for an older
//!   database, its newest reading's time) and `elapsed` is station time that actually
//!   passed since, by the monotonic clock ([`crate::clock::Clock::elapsed_ms`]). So a
//!   step forward of a year — an NTP or GPS fault, a mis-set RTC, at run time or across
//!   a restart — deletes nothing that was inside the window before it; rows age out as
//!   real time passes. The price: time the station was off (or its clock untrusted)
//!   does not count, so after a long power-off old rows are deleted that much later,
//!   never earlier. A step backwards only delays deletion.
//! * **Only a full disk drops readings**, and only those not yet written: beyond
//!   `max_buffered` readings held in memory the writer drops the oldest, counts them
//!   ([`writer::WriterStats::dropped`]) and logs an ERROR.
//!
//! # Refusals and corruption
//! A file that is not SQLite, a SQLite file of another application (another
//! `application_id`, or tables but no id) and a database from a newer Anemone are
//! refused with an error naming the file and the fix; none is ever written. A corrupt
//! Anemone database is never written into either: read-only opens refuse it, and the
//! read-write [`Store::open`] (and the writer, on SQLITE_CORRUPT while running) moves it
//! aside and starts a new file — ids, publish cursor and what is copied are described in
//! the `quarantine` module.

mod aggregate;
mod quarantine;
mod schema;
pub mod writer;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::config::Synchronous;
use crate::reading::{Flags, Quantity, Reading, SensorId, Timestamp};

pub use aggregate::{local_date, local_day_bounds, Resolution, UnknownResolution};
pub use quarantine::Quarantine;
pub use schema::{quantity_code, quantity_from_code, APPLICATION_ID, SCHEMA_VERSION};

use aggregate::{AggState, Bucket, Key, BUCKET_COLUMNS, HOUR_MS, MAX_DAY_MS};

/// (start, sensor id, quantity code) of a bucket within one resolution.
type SeriesBucket = (i64, i64, i64);

/// Readings deleted per retention transaction (bounds the WAL a deletion writes).
pub const EXPIRE_CHUNK: i64 = 2_000;

/// Rows read per page by the streaming queries (bounds memory and read-snapshot length).
const PAGE: i64 = 5_000;

/// Why the store could not do what was asked. Every message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A SQLite database of another program.
    #[error("{} is a SQLite database of another application ({detail}), not an Anemone database; it was left untouched. Set [storage] path to a new file name", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What identified it.
        detail: String,
    },
    /// Not a SQLite file at all.
    #[error("{} is not a SQLite database; it was left untouched. Set [storage] path to a new file name or move that file away", path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// A damaged database.
    #[error("database {} is corrupt ({detail}); nothing was written into it. `anemone run` moves it aside and starts a new file; `sqlite3 FILE '.recover' | sqlite3 recovered.db` may save its data", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SQLite's words.
        detail: String,
    },
    /// Written by a newer Anemone.
    #[error("database {} has schema version {found}, newer than this Anemone understands ({supported}); upgrade Anemone, or set [storage] path to another file", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// This build's [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A read-only open of a database that still needs migrating.
    #[error("database {} has schema version {found}; this Anemone reads version {supported}. Start `anemone run` once to upgrade it", path.display())]
    NeedsMigration {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// This build's [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// Read-only open of a file that does not exist or is empty.
    #[error("no Anemone database at {}: nothing has been stored there yet. Check [storage] path (or --config), or start `anemone run` first", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// SQLITE_FULL.
    #[error("the disk holding {} is full: free space on that filesystem (old logs, `journalctl --vacuum-size`) or shorten [storage] retention; readings are kept in memory meanwhile", path.display())]
    DiskFull {
        /// The file.
        path: PathBuf,
    },
    /// SQLITE_IOERR and friends.
    #[error("I/O error on {} ({detail}): check the SD card or disk (dmesg) and free space", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// SQLite's words.
        detail: String,
    },
    /// The file cannot be opened or read.
    #[error("cannot open {} ({detail}): check that the directory exists and that the anemone user may read and write it", path.display())]
    CannotOpen {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A stored code this build does not know.
    #[error("database {} holds unknown {what} code {code}; it may be corrupt or from a newer Anemone", path.display())]
    UnknownCode {
        /// The file.
        path: PathBuf,
        /// Which code.
        what: &'static str,
        /// The value.
        code: i64,
    },
    /// A query that cannot be answered as asked.
    #[error("{0}")]
    InvalidQuery(String),
    /// The writer task died.
    #[error("the store writer task failed: {0}")]
    Task(String),
    /// Any other SQLite error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// True for conditions that may clear by themselves (disk full, I/O, a busy lock):
    /// the writer keeps the readings and retries.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::DiskFull { .. } | StoreError::Io { .. } => true,
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

impl StoreError {
    /// True when SQLite found the file damaged: it must not be written into again.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }
}

/// Maps a SQLite error on `path` to the error the operator can act on.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    let detail = e.to_string();
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
        Some(C::DiskFull) => StoreError::DiskFull { path },
        Some(C::SystemIoFailure) => StoreError::Io { path, detail },
        Some(C::DatabaseCorrupt | C::NotADatabase) => StoreError::Corrupt { path, detail },
        Some(C::CannotOpen | C::PermissionDenied | C::ReadOnly) => {
            StoreError::CannotOpen { path, detail }
        }
        _ => StoreError::Sqlite(e),
    }
}

/// What retention does with readings the MQTT broker has not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpublished {
    /// MQTT is configured: every reading above the publish cursor is kept, whatever its
    /// age (the store is the outbox).
    Keep,
    /// No MQTT: age alone decides.
    Expire,
}

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

/// What to read. `from` is inclusive, `to` exclusive; `None` means unbounded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Earliest time (inclusive).
    pub from: Option<Timestamp>,
    /// Latest time (exclusive).
    pub to: Option<Timestamp>,
    /// Only this sensor.
    pub sensor: Option<String>,
    /// Only this quantity.
    pub quantity: Option<Quantity>,
}

/// One aggregate bucket of one sensor's quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Bucket start (inclusive).
    pub start: Timestamp,
    /// Bucket end (exclusive): +1 min, +1 h, or the next local midnight.
    pub end: Timestamp,
    /// Sensor id.
    pub sensor: String,
    /// Quantity.
    pub quantity: Quantity,
    /// Unflagged readings with a value.
    pub count: u64,
    /// Readings left out (QC-flagged or without a value).
    pub flagged: u64,
    /// Lowest value and its time.
    pub min: Option<(f64, Timestamp)>,
    /// Highest value and its time.
    pub max: Option<(f64, Timestamp)>,
    /// Sum of the counted values.
    pub sum: f64,
}

impl Aggregate {
    /// Mean of the counted values, `None` when nothing was counted.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

#[derive(Default)]
struct Sensors {
    by_name: HashMap<String, i64>,
    by_id: HashMap<i64, SensorId>,
}

impl Sensors {
    fn add(&mut self, id: i64, name: &str) {
        self.by_name.insert(name.to_string(), id);
        self.by_id.insert(id, Arc::from(name));
    }
}

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
    /// The `synchronous` level in force (a reservation commit is synced regardless).
    synchronous: Synchronous,
    /// How it was opened (to start a new file after corruption).
    opts: StoreOptions,
    /// The corrupt file this store replaced when it was opened.
    quarantined: Option<Quarantine>,
    /// `quick_check` ran at open (false: the file was too large; see [`Store::check_file`]).
    checked_at_open: bool,
}

/// What [`inspect`] found.
enum Found {
    Missing,
    Empty,
    /// An Anemone (or empty SQLite) database, opened read-only, at this schema version.
    Ours(Connection, i64),
}

/// Looks at a file without changing it: header bytes first, then a read-only open.
fn inspect(path: &Path) -> Result<Found, StoreError> {
    let cannot = |e: std::io::Error| StoreError::CannotOpen {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(cannot(e)),
    };
    let mut header = Vec::with_capacity(100);
    file.by_ref()
        .take(100)
        .read_to_end(&mut header)
        .map_err(cannot)?;
    drop(file);
    if header.is_empty() {
        return Ok(Found::Empty);
    }
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(StoreError::NotADatabase {
            path: path.to_path_buf(),
        });
    }
    let header_app_id = i32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    if header_app_id != 0 && header_app_id != schema::APPLICATION_ID {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: format!("application_id {header_app_id:#010x}"),
        });
    }
    // A read-only open of a WAL-mode file may create its `-wal` and `-shm` companions;
    // when the file is refused, the ones this probe created (and left empty) go again.
    let companions = [companion(path, "-wal"), companion(path, "-shm")];
    let existed = companions.clone().map(|p| p.exists());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    match check_identity(path, &conn) {
        Ok(version) => Ok(Found::Ours(conn, version)),
        Err(e) => {
            drop(conn);
            let wal_empty = std::fs::metadata(&companions[0]).map_or(true, |m| m.len() == 0);
            if wal_empty {
                for (p, existed) in companions.iter().zip(existed) {
                    if !existed {
                        let _ = std::fs::remove_file(p);
                    }
                }
            }
            Err(e)
        }
    }
}

/// True when `path` starts with the header of an Anemone database (SQLite magic and our
/// `application_id`): a damaged file of ours is moved aside, anything else is refused.
fn is_ours(path: &Path) -> bool {
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    read.is_ok()
        && header.starts_with(b"SQLite format 3\0")
        && i32::from_be_bytes([header[68], header[69], header[70], header[71]])
            == schema::APPLICATION_ID
}

/// `PRAGMA quick_check` on a read-only connection: `Corrupt` unless it says "ok".
fn quick_check(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| classify(path, e))?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(|e| classify(path, e))?;
    if lines.len() == 1 && lines[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("quick_check: {}", lines.join("; ")),
    })
}

/// `path` with `suffix` appended to its file name (SQLite's companion files).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Reads the identity of an opened file: ours (with its schema version) or an error.
fn check_identity(path: &Path, conn: &Connection) -> Result<i64, StoreError> {
    let probe = || -> rusqlite::Result<(i32, i64, Vec<String>)> {
        let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
        let tables = stmt.query_map([], |r| r.get(0))?;
        let tables = tables.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok((app, version, tables))
    };
    let (app, version, tables) = probe().map_err(|e| classify(path, e))?;
    let objects = tables.len();
    if app != schema::APPLICATION_ID && (app != 0 || version != 0 || objects != 0) {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: if app == 0 {
                format!("{objects} schema objects and no Anemone application_id")
            } else {
                format!("application_id {app:#010x}")
            },
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version >= 1 {
        let missing: Vec<&str> = ["sensors", "readings", "aggregates", "meta"]
            .into_iter()
            .filter(|t| !tables.iter().any(|n| n == t))
            .collect();
        if !missing.is_empty() {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("tables missing: {}", missing.join(", ")),
            });
        }
    }
    Ok(version)
}

/// Files up to this size (with their WAL) are checked with `quick_check` at open; larger
/// ones in the background by the writer.
pub const QUICK_CHECK_AT_OPEN_BYTES: u64 = 256 * 1024 * 1024;

fn file_bytes(path: &Path) -> u64 {
    [path.to_path_buf(), companion(path, "-wal")]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// SQLite page cache of the daemon's connections, KiB.
const WRITER_CACHE_KIB: u32 = 256;

impl Store {
    /// Caps this connection's page cache (the daemon's MQTT backlog reader scans forward
    /// once and needs little).
    pub fn small_cache(&self) -> Result<(), StoreError> {
        self.db(self
            .conn
            .execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB};")))
    }

    /// Opens the station database read-write, creating it when the file is missing or
    /// empty and migrating an older schema. Refuses foreign and newer files without
    /// writing to them. An Anemone database found corrupt (`PRAGMA quick_check`, or an
    /// error while opening) is moved aside untouched and a new one is started at `path`
    /// ([`Store::quarantined`] says so; see the `quarantine` docs). Rebuilds the
    /// in-memory aggregates from readings stored after the last persisted ones.
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        match Store::open_file(path, opts) {
            Err(StoreError::Corrupt { detail, .. }) if is_ours(path) => {
                let old = quarantine::OldFile::read(path);
                Store::start_after_corrupt(path, opts, old, None, detail)
            }
            other => other,
        }
    }

    /// Moves the corrupt file at `path` aside and opens a new store there, continuing
    /// after `old`; logs the ERROR.
    fn start_after_corrupt(
        path: &Path,
        opts: &StoreOptions,
        old: quarantine::OldFile,
        known_floor: Option<i64>,
        detail: String,
    ) -> Result<Store, StoreError> {
        let kept = quarantine::move_aside(path)?;
        let mut store = Store::open_file(path, opts)?;
        let q = quarantine::continue_after(&mut store.conn, path, kept, &old, known_floor, detail)?;
        store.load_sensors()?;
        tracing::error!(path = %path.display(), kept = %q.kept.display(), "{q}");
        store.quarantined = Some(q);
        Ok(store)
    }

    /// False when the file was too large to be checked at open: the writer runs
    /// [`Store::check_file`] in the background.
    pub fn checked_at_open(&self) -> bool {
        self.checked_at_open
    }

    /// Leaves the check of this file to the writer's background check, as for a file too
    /// large to check at open (lets tests exercise that path on a small file).
    #[doc(hidden)]
    pub fn defer_check(&mut self) {
        self.checked_at_open = false;
    }

    /// `PRAGMA quick_check` of the file at `path` on its own read-only connection (it may
    /// run while the writer writes): [`StoreError::Corrupt`] unless the file is sound.
    pub fn check_file(path: &Path) -> Result<(), StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        quick_check(path, &conn)
    }

    /// The corrupt file this store replaced when it was opened, if any.
    pub fn quarantined(&self) -> Option<&Quarantine> {
        self.quarantined.as_ref()
    }

    /// This store's file was found corrupt while running: closes it without writing
    /// into it again (no checkpoint at close), moves it aside and returns a new store at
    /// the same path whose ids start above `known_floor` (every id this run handed out)
    /// and above everything the old file still shows.
    pub fn replace_corrupt(self, known_floor: i64, detail: String) -> Result<Store, StoreError> {
        // SQLite checkpoints the WAL into the database when the last connection closes:
        // that would write into the damaged file.
        if let Err(e) = self
            .conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "Could not turn off the checkpoint at close");
        }
        let path = self.path.clone();
        let opts = self.opts.clone();
        let old = quarantine::OldFile::read(&path);
        drop(self);
        Store::start_after_corrupt(&path, &opts, old, Some(known_floor), detail)
    }

    fn open_file(path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        let mut checked = true;
        if let Found::Ours(probe, version) = inspect(path)? {
            // Damaged pages anywhere in the file are found before anything is written:
            // `quick_check` reads every page once — about 0.1 s for 15 MB and 0.6 s for
            // 150 MB on a PC, several seconds on a Pi's SD card. A larger file (a year of
            // a busy station is gigabytes) would hold up the start (systemd allows 90 s),
            // so the writer checks it in the background instead (`checked_at_open`).
            if version >= 1 {
                if file_bytes(path) <= QUICK_CHECK_AT_OPEN_BYTES {
                    quick_check(path, &probe)?;
                } else {
                    checked = false;
                }
            }
            drop(probe);
        }
        let err = |e| classify(path, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match &opts.vfs {
            None => Connection::open_with_flags(path, flags),
            Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs.as_str()),
        }
        .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "SQLite refused WAL mode; commits will write more");
        }
        let sync = match opts.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        // The writer appends at the tail of a few b-trees: a small page cache serves it as
        // well as SQLite's default 2 MiB, which would be a fifth of the daemon's memory.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA journal_size_limit = 4194304; \
             PRAGMA cache_size = -{WRITER_CACHE_KIB};"
        ))
        .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            tz: opts.tz,
            read_only: false,
            sensors: RefCell::new(Sensors::default()),
            agg: AggState::new(opts.tz, 0),
            agg_stale: false,
            synchronous: opts.synchronous,
            opts: opts.clone(),
            quarantined: None,
            checked_at_open: checked,
        };
        let ready = store
            .migrate()
            .and_then(|()| store.load_sensors())
            .and_then(|()| store.check_tz())
            .and_then(|()| store.rebuild_aggregates());
        if let Err(e) = ready {
            if e.is_corrupt() {
                // Closing must not checkpoint into the damaged file.
                let _ = store
                    .conn
                    .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
            }
            return Err(e);
        }
        Ok(store)
    }

    /// Opens an existing database for reading only (export, stats). Creates nothing and
    /// writes nothing; works while the daemon is writing.
    pub fn open_read_only(path: &Path, tz: Tz) -> Result<Store, StoreError> {
        let (conn, version) = match inspect(path)? {
            Found::Ours(conn, v) => (conn, v),
            Found::Missing | Found::Empty => {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                })
            }
        };
        if version == 0 {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        if version < SCHEMA_VERSION {
            return Err(StoreError::NeedsMigration {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| classify(path, e))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            tz,
            read_only: true,
            sensors: RefCell::new(Sensors::default()),
            agg: AggState::new(tz, 0),
            agg_stale: false,
            synchronous: Synchronous::Normal,
            opts: StoreOptions {
                synchronous: Synchronous::Normal,
                tz,
                vfs: None,
            },
            quarantined: None,
            checked_at_open: true,
        };
        store.load_sensors()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The station zone used for local days.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T, StoreError> {
        r.map_err(|e| classify(&self.path, e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let mut version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        while version < SCHEMA_VERSION {
            let Some(sql) = schema::MIGRATIONS.get(version as usize) else {
                break;
            };
            let tx = self.conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            if version == 0 {
                tx.execute_batch(&format!(
                    "PRAGMA application_id = {}",
                    schema::APPLICATION_ID
                ))
                .map_err(err)?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))
                .map_err(err)?;
            tx.commit().map_err(err)?;
            if version > 0 {
                tracing::info!(path = %path.display(), from = version, to = version + 1, "Migrated the database schema.");
            }
            version += 1;
        }
        Ok(())
    }

    fn load_sensors(&self) -> Result<(), StoreError> {
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

    fn meta_i64(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.db(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional())
            .map(Option::flatten)
    }

    fn check_tz(&mut self) -> Result<(), StoreError> {
        let stored: Option<String> = self.db(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [schema::META_DAY_TZ],
                |r| r.get(0),
            )
            .optional())?;
        let name = self.tz.name();
        if stored.as_deref() == Some(name) {
            return Ok(());
        }
        if let Some(old) = stored {
            tracing::warn!(path = %self.path.display(), old, new = name,
                "The station time zone changed: day summaries stored so far keep their old local days.");
        }
        self.db(self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![schema::META_DAY_TZ, name],
        ))?;
        Ok(())
    }

    /// Rebuilds the in-memory aggregates: the persisted buckets plus every reading stored
    /// after them.
    fn rebuild_aggregates(&mut self) -> Result<(), StoreError> {
        let through = self.meta_i64(schema::META_AGG_THROUGH)?.unwrap_or(0);
        let mut agg = AggState::new(self.tz, through);
        let n = self.db(agg.catch_up(&self.conn))?;
        if n > 0 {
            tracing::info!(path = %self.path.display(), readings = n,
                "Rebuilt aggregates from readings stored after the last persisted ones.");
        }
        self.agg = agg;
        self.agg_stale = false;
        Ok(())
    }

    /// Records a sensor (or updates its kind and hardware id).
    pub fn register_sensor(
        &mut self,
        sensor: &str,
        kind: &str,
        hardware_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let id: i64 = self.db(self.conn.query_row(
            "INSERT INTO sensors (name, kind, hardware_id) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, \
             hardware_id = coalesce(excluded.hardware_id, hardware_id) \
             RETURNING id",
            params![sensor, kind, hardware_id],
            |r| r.get(0),
        ))?;
        self.sensors.borrow_mut().add(id, sensor);
        Ok(())
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
        let result = self.commit_rows(rows, cursor, reserve);
        if synced {
            let back = self.conn.execute_batch("PRAGMA synchronous = NORMAL");
            if let Err(e) = back {
                tracing::warn!(path = %self.path.display(), error = %e, "Could not return to synchronous = normal");
            }
        }
        result
    }

    fn commit_rows(
        &mut self,
        rows: &[StoredReading],
        cursor: Option<i64>,
        reserve: Option<i64>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let mut new_sensors: Vec<(i64, SensorId)> = Vec::new();
        let tx = self.conn.transaction().map_err(err)?;
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
                insert
                    .execute(params![
                        id,
                        r.ts,
                        sensor,
                        schema::quantity_code(r.quantity),
                        value,
                        r.flags.bits()
                    ])
                    .map_err(err)?;
            }
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

    /// Persists the in-memory aggregates (changed buckets and the id they cover) in one
    /// transaction.
    pub fn flush_aggregates(&mut self) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        if self.agg_stale {
            self.rebuild_aggregates()?;
        }
        if !self.agg.has_unpersisted() {
            return Ok(());
        }
        let keys = self.agg.dirty_keys();
        let through = self.agg.through_id;
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for k in &keys {
            if let Some(b) = self.agg.buckets.get(k) {
                aggregate::save_bucket(&tx, *k, b).map_err(err)?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![schema::META_AGG_THROUGH, through],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        self.agg.persisted(&keys, through);
        Ok(())
    }

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
    pub fn expire_some(
        &mut self,
        older_than: Timestamp,
        unpublished: Unpublished,
        max_rows: u64,
    ) -> Result<(u64, bool), StoreError> {
        // Rows about to go must be in the persisted aggregates first.
        self.flush_aggregates()?;
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
        let lo: Option<i64> =
            self.db(self
                .conn
                .query_row("SELECT min(id) FROM readings", [], |r| r.get(0)))?;
        let Some(mut lo) = lo else {
            return Ok((0, false));
        };
        let mut deleted = 0u64;
        while lo <= hi {
            if deleted >= max_rows {
                return Ok((deleted, true));
            }
            let end = lo.saturating_add(EXPIRE_CHUNK).min(hi.saturating_add(1));
            let n = self.db(self.conn.execute(
                "DELETE FROM readings WHERE id >= ?1 AND id < ?2 AND ts < ?3",
                params![lo, end, older_than],
            ))?;
            deleted += n as u64;
            lo = end;
        }
        Ok((deleted, false))
    }

    /// The station time retention last acted on ([`Store::set_retention_now`]), `None`
    /// before it first ran.
    pub fn retention_now(&self) -> Result<Option<Timestamp>, StoreError> {
        self.meta_i64(schema::META_RETENTION_NOW)
    }

    /// Records the station time retention acted on, so that after a restart its notion
    /// of "now" continues from there (see the module docs, "Retention").
    pub fn set_retention_now(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.db(self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![schema::META_RETENTION_NOW, now],
        ))?;
        Ok(())
    }

    /// Reads the sensor name of a stored sensor id (reloading the table once for a sensor
    /// registered by another connection).
    fn sensor_name(&self, id: i64) -> Result<SensorId, StoreError> {
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

    fn quantity(&self, code: i64) -> Result<Quantity, StoreError> {
        schema::quantity_from_code(code).ok_or_else(|| StoreError::UnknownCode {
            path: self.path.clone(),
            what: "quantity",
            code,
        })
    }

    /// The stored id of a sensor name, `None` when no such sensor was ever stored.
    fn sensor_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        if let Some(id) = self.sensors.borrow().by_name.get(name) {
            return Ok(Some(*id));
        }
        self.load_sensors()?;
        Ok(self.sensors.borrow().by_name.get(name).copied())
    }

    fn row_reading(&self, row: &rusqlite::Row<'_>) -> Result<StoredReading, StoreError> {
        let id: i64 = self.db(row.get(0))?;
        let ts: i64 = self.db(row.get(1))?;
        let sensor: i64 = self.db(row.get(2))?;
        let quantity: i64 = self.db(row.get(3))?;
        let value: Option<f64> = self.db(row.get(4))?;
        let flags: i64 = self.db(row.get(5))?;
        Ok(StoredReading {
            id,
            reading: Reading {
                ts,
                sensor: self.sensor_name(sensor)?,
                quantity: self.quantity(quantity)?,
                value,
                flags: Flags::from_bits(flags as u8),
            },
        })
    }

    /// The aggregates to overlay on the persisted ones: the writer's memory, or for a
    /// read-only store the readings stored after the last persist, folded afresh.
    fn overlay(&self) -> Result<std::borrow::Cow<'_, AggState>, StoreError> {
        if !self.read_only && !self.agg_stale {
            return Ok(std::borrow::Cow::Borrowed(&self.agg));
        }
        let through = self.meta_i64(schema::META_AGG_THROUGH)?.unwrap_or(0);
        let mut agg = AggState::new(self.tz, through);
        self.db(agg.catch_up(&self.conn))?;
        Ok(std::borrow::Cow::Owned(agg))
    }

    /// Rowid ranges that hold every reading in `[from, to)` (plus some outside it).
    fn id_ranges(&self, q: &Query) -> Result<Vec<(i64, i64)>, StoreError> {
        if q.from.is_none() && q.to.is_none() {
            return Ok(vec![(i64::MIN, i64::MAX)]);
        }
        let from = q.from.map_or(i64::MIN, |f| f.div_euclid(HOUR_MS) * HOUR_MS);
        let to = q.to.unwrap_or(i64::MAX);
        if from >= to {
            return Ok(Vec::new());
        }
        let (mut lo, mut hi): (Option<i64>, Option<i64>) = self.db(self.conn.query_row(
            "SELECT min(first_id), max(last_id) FROM aggregates \
             WHERE resolution = ?1 AND start >= ?2 AND start < ?3",
            params![Resolution::Hour.code(), from, to],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?;
        let covered = if self.read_only || self.agg_stale {
            self.meta_i64(schema::META_AGG_THROUGH)?.unwrap_or(0)
        } else {
            let code = Resolution::Hour.code().unwrap_or(0);
            for (k, b) in self
                .agg
                .buckets
                .range((code, from, i64::MIN, i64::MIN)..(code, to, i64::MIN, i64::MIN))
            {
                debug_assert_eq!(k.0, code);
                lo = Some(lo.map_or(b.first_id, |l| l.min(b.first_id)));
                hi = Some(hi.map_or(b.last_id, |h| h.max(b.last_id)));
            }
            self.agg.through_id
        };
        let tail = covered.saturating_add(1);
        Ok(match (lo, hi) {
            (Some(lo), Some(hi)) if hi.saturating_add(1) >= tail => vec![(lo, i64::MAX)],
            (Some(lo), Some(hi)) => vec![(lo, hi), (tail, i64::MAX)],
            _ => vec![(tail, i64::MAX)],
        })
    }

    /// Calls `f` for every reading matching `q`, in id order, reading pages of a few
    /// thousand rows (bounded memory; no long-held read snapshot).
    pub fn for_each_reading<E: From<StoreError>>(
        &self,
        q: &Query,
        mut f: impl FnMut(&StoredReading) -> Result<(), E>,
    ) -> Result<(), E> {
        let sensor = match &q.sensor {
            Some(name) => match self.sensor_id(name)? {
                Some(id) => Some(id),
                None => return Ok(()),
            },
            None => None,
        };
        let quantity = q.quantity.map(schema::quantity_code);
        let (from, to) = (q.from.unwrap_or(i64::MIN), q.to.unwrap_or(i64::MAX));
        for (lo, hi) in self.id_ranges(q)? {
            let mut after = lo.saturating_sub(1);
            loop {
                let page = self.reading_page(after, hi, from, to, sensor, quantity)?;
                let Some(last) = page.last_id else { break };
                for r in &page.rows {
                    f(r)?;
                }
                after = last;
                if !page.full {
                    break;
                }
            }
        }
        Ok(())
    }

    fn reading_page(
        &self,
        after: i64,
        hi: i64,
        from: Timestamp,
        to: Timestamp,
        sensor: Option<i64>,
        quantity: Option<i64>,
    ) -> Result<ReadingPage, StoreError> {
        let mut stmt = self.db(self.conn.prepare_cached(
            "SELECT id, ts, sensor, quantity, value, flags FROM readings \
             WHERE id > ?1 AND id <= ?2 AND ts >= ?3 AND ts < ?4 \
             AND (?5 IS NULL OR sensor = ?5) AND (?6 IS NULL OR quantity = ?6) \
             ORDER BY id LIMIT ?7",
        ))?;
        let mut rows = self.db(stmt.query(params![after, hi, from, to, sensor, quantity, PAGE]))?;
        let mut page = ReadingPage {
            rows: Vec::new(),
            last_id: None,
            full: false,
        };
        while let Some(row) = self.db(rows.next())? {
            let r = self.row_reading(row)?;
            page.last_id = Some(r.id);
            page.rows.push(r);
        }
        page.full = page.rows.len() as i64 == PAGE;
        Ok(page)
    }

    /// Every reading matching `q`, in id order (see [`Store::for_each_reading`] for
    /// large ranges).
    pub fn readings(&self, q: &Query) -> Result<Vec<StoredReading>, StoreError> {
        let mut out = Vec::new();
        self.for_each_reading::<StoreError>(q, |r| {
            out.push(r.clone());
            Ok(())
        })?;
        Ok(out)
    }

    /// How many readings match `q`.
    pub fn count_readings(&self, q: &Query) -> Result<u64, StoreError> {
        let sensor = match &q.sensor {
            Some(name) => match self.sensor_id(name)? {
                Some(id) => Some(id),
                None => return Ok(0),
            },
            None => None,
        };
        let quantity = q.quantity.map(schema::quantity_code);
        let (from, to) = (q.from.unwrap_or(i64::MIN), q.to.unwrap_or(i64::MAX));
        let mut n = 0u64;
        for (lo, hi) in self.id_ranges(q)? {
            let c: i64 = self.db(self.conn.query_row(
                "SELECT count(*) FROM readings WHERE id >= ?1 AND id <= ?2 \
                 AND ts >= ?3 AND ts < ?4 \
                 AND (?5 IS NULL OR sensor = ?5) AND (?6 IS NULL OR quantity = ?6)",
                params![lo, hi, from, to, sensor, quantity],
                |r| r.get(0),
            ))?;
            n += c.max(0) as u64;
        }
        Ok(n)
    }

    /// Calls `f` for each bucket of `res` overlapping `[from, to)` that matches `q`, in
    /// (start, sensor, quantity) order, paging through the table.
    pub fn for_each_aggregate<E: From<StoreError>>(
        &self,
        res: Resolution,
        q: &Query,
        mut f: impl FnMut(&Aggregate) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(code) = res.code() else {
            return Err(StoreError::InvalidQuery(
                "raw readings are not aggregates: use readings()".into(),
            )
            .into());
        };
        let sensor = match &q.sensor {
            Some(name) => match self.sensor_id(name)? {
                Some(id) => Some(id),
                None => return Ok(()),
            },
            None => None,
        };
        let quantity = q.quantity.map(schema::quantity_code);
        let from = q.from.unwrap_or(i64::MIN);
        let to = q.to.unwrap_or(i64::MAX);
        let start_min = match res {
            Resolution::Day => from.saturating_sub(MAX_DAY_MS),
            _ => from.saturating_sub(HOUR_MS),
        };
        if start_min >= to {
            return Ok(());
        }
        let wanted = |k: &Key, b: &Bucket| {
            k.0 == code
                && k.1 >= start_min
                && k.1 < to
                && b.end > from
                && sensor.is_none_or(|s| s == k.2)
                && quantity.is_none_or(|qc| qc == k.3)
        };
        // The overlay (newest buckets) is small: collect it, then merge it into the
        // stream of persisted rows, the overlay winning on equal keys.
        let overlay = self.overlay()?;
        let mut mem: BTreeMap<(i64, i64, i64), Bucket> = overlay
            .buckets
            .range((code, start_min, i64::MIN, i64::MIN)..(code, to, i64::MIN, i64::MIN))
            .filter(|(k, b)| wanted(k, b))
            .map(|(k, b)| ((k.1, k.2, k.3), b.clone()))
            .collect();
        drop(overlay);
        let mut after = (start_min, i64::MIN, i64::MIN);
        let mut first = true;
        loop {
            let page = self.aggregate_page(code, after, first, to, from, sensor, quantity)?;
            first = false;
            let full = page.len() as i64 == PAGE;
            for (key, bucket) in &page {
                while let Some(entry) = mem.first_entry() {
                    if entry.key() >= key {
                        break;
                    }
                    let (k, b) = entry.remove_entry();
                    f(&self.to_aggregate(k, &b)?)?;
                }
                let b = mem.remove(key).unwrap_or_else(|| bucket.clone());
                f(&self.to_aggregate(*key, &b)?)?;
                after = *key;
            }
            if !full {
                break;
            }
        }
        for (k, b) in mem {
            f(&self.to_aggregate(k, &b)?)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn aggregate_page(
        &self,
        code: i64,
        after: (i64, i64, i64),
        inclusive: bool,
        to: Timestamp,
        from: Timestamp,
        sensor: Option<i64>,
        quantity: Option<i64>,
    ) -> Result<Vec<(SeriesBucket, Bucket)>, StoreError> {
        let op = if inclusive { ">=" } else { ">" };
        let mut stmt = self.db(self.conn.prepare_cached(&format!(
            "SELECT start, sensor, quantity, {BUCKET_COLUMNS} FROM aggregates \
             WHERE resolution = ?1 AND (start, sensor, quantity) {op} (?2, ?3, ?4) \
             AND start < ?5 AND end > ?6 \
             AND (?7 IS NULL OR sensor = ?7) AND (?8 IS NULL OR quantity = ?8) \
             ORDER BY start, sensor, quantity LIMIT ?9"
        )))?;
        let rows = self.db(stmt.query_map(
            params![code, after.0, after.1, after.2, to, from, sensor, quantity, PAGE],
            |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), Bucket::from_row(r, 3)?)),
        ))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.db(r)?);
        }
        Ok(out)
    }

    fn to_aggregate(&self, k: (i64, i64, i64), b: &Bucket) -> Result<Aggregate, StoreError> {
        Ok(Aggregate {
            start: k.0,
            end: b.end,
            sensor: self.sensor_name(k.1)?.to_string(),
            quantity: self.quantity(k.2)?,
            count: b.count,
            flagged: b.flagged,
            min: b.min,
            max: b.max,
            sum: b.sum,
        })
    }

    /// Buckets of `res` (minute, hour or day) overlapping `[from, to)` that match `q`.
    pub fn aggregates(&self, res: Resolution, q: &Query) -> Result<Vec<Aggregate>, StoreError> {
        let mut out = Vec::new();
        self.for_each_aggregate::<StoreError>(res, q, |a| {
            out.push(a.clone());
            Ok(())
        })?;
        Ok(out)
    }

    /// The day buckets (per sensor × quantity) of local day `day` in the station zone.
    pub fn day_summary(&self, day: NaiveDate) -> Result<Vec<Aggregate>, StoreError> {
        let (start, _) = local_day_bounds(self.tz, day);
        let q = Query {
            from: Some(start),
            to: Some(start + 1),
            ..Query::default()
        };
        self.aggregates(Resolution::Day, &q)
    }

    /// Every local day that has a day bucket, oldest first.
    pub fn days(&self) -> Result<Vec<NaiveDate>, StoreError> {
        let mut stmt = self.db(self
            .conn
            .prepare("SELECT DISTINCT start FROM aggregates WHERE resolution = ?1"))?;
        let rows = self.db(stmt.query_map([Resolution::Day.code()], |r| r.get::<_, i64>(0)))?;
        let mut days = std::collections::BTreeSet::new();
        for r in rows {
            days.insert(local_date(self.tz, self.db(r)?));
        }
        let code = Resolution::Day.code().unwrap_or(0);
        let overlay = self.overlay()?;
        for k in overlay.buckets.keys().filter(|k| k.0 == code) {
            days.insert(local_date(self.tz, k.1));
        }
        Ok(days.into_iter().collect())
    }

    /// Highest reading id the broker acknowledged (0 when none).
    pub fn publish_cursor(&self) -> Result<i64, StoreError> {
        Ok(self.meta_i64(schema::META_PUBLISH_CURSOR)?.unwrap_or(0))
    }

    /// Advances the publish cursor to `id`; a lower id leaves it where it is.
    pub fn set_publish_cursor(&mut self, id: i64) -> Result<(), StoreError> {
        self.db(set_cursor(&self.conn, id))
    }

    /// Up to `limit` readings with an id above `after_id`, in id order.
    pub fn unpublished(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let mut stmt = self.db(self.conn.prepare_cached(
            "SELECT id, ts, sensor, quantity, value, flags FROM readings \
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = self.db(stmt.query(params![after_id, limit]))?;
        let mut out = Vec::new();
        while let Some(row) = self.db(rows.next())? {
            out.push(self.row_reading(row)?);
        }
        Ok(out)
    }

    /// Highest reading id stored (0 when empty).
    pub fn last_reading_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> =
            self.db(self
                .conn
                .query_row("SELECT max(id) FROM readings", [], |r| r.get(0)))?;
        Ok(id.unwrap_or(0))
    }

    /// Latest timestamp among the most recently stored readings (the last few hundred
    /// rows; the table is in append order), `None` when empty.
    pub fn last_reading_ts(&self) -> Result<Option<Timestamp>, StoreError> {
        self.db(self.conn.query_row(
            "SELECT max(ts) FROM (SELECT ts FROM readings ORDER BY id DESC LIMIT 256)",
            [],
            |r| r.get(0),
        ))
    }

    /// Caps the database file at `pages` pages (`PRAGMA max_page_count`, never below its
    /// current size) for this connection; returns the cap in force. Writes beyond it fail
    /// as [`StoreError::DiskFull`], which is also how tests simulate a full disk.
    pub fn set_max_pages(&self, pages: u64) -> Result<u64, StoreError> {
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        let cap: i64 =
            self.db(self
                .conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                    r.get(0)
                }))?;
        Ok(cap.max(0) as u64)
    }

    /// Runs a passive WAL checkpoint; returns how many frames (pages of
    /// `page_size`, 4 KiB by default) the WAL held, i.e. were written since the last
    /// completed checkpoint.
    pub fn wal_checkpoint(&self) -> Result<u64, StoreError> {
        let (_busy, log, _done): (i64, i64, i64) =
            self.db(self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                }))?;
        Ok(log.max(0) as u64)
    }

    /// SQLite's `PRAGMA integrity_check`: `"ok"` or the problems found, one per line.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let mut stmt = self.db(self.conn.prepare("PRAGMA integrity_check"))?;
        let rows = self.db(stmt.query_map([], |r| r.get::<_, String>(0)))?;
        let mut lines = Vec::new();
        for r in rows {
            lines.push(self.db(r)?);
        }
        Ok(lines.join("\n"))
    }
}

struct ReadingPage {
    rows: Vec<StoredReading>,
    last_id: Option<i64>,
    full: bool,
}

fn set_cursor(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value) \
         WHERE excluded.value > value",
        params![schema::META_PUBLISH_CURSOR, id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
