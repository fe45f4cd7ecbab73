//! Opening the database: read-write (creating and migrating it) or read-only, and the
//! pragmas that decide its durability.
//!
//! # Files and durability
//! One database file (`[storage] path`) in WAL mode, plus its `-wal` and `-shm` companions.
//! One writer ([`run_writer`](super::writer::run_writer)) owns the read-write [`Store`];
//! `export` and `stats` use [`Store::open_read_only`], which never creates or changes
//! anything and may run while the daemon writes.
//!
//! * A crashed process loses at most the readings buffered since the last commit (one
//!   `commit_interval`, default 2 min of station time).
//! * With `synchronous = "full"` (default) every commit is synced: a power cut loses no
//!   more than a crash. With `synchronous = "normal"` a power cut may also roll back the
//!   commits made since SQLite last synced the WAL (at checkpoints and id reservations:
//!   up to about 2 h in a new file, 5½ h in one with 4 KiB pages, measured by `tests/powercut/`), for about
//!   10 % fewer bytes written.

use std::cell::RefCell;
use std::path::Path;

use chrono_tz::Tz;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::aggregate::AggState;
use super::error::classify;
use super::identity::{
    file_bytes, inspect, is_ours, quick_check, Found, QUICK_CHECK_AT_OPEN_BYTES,
};
use super::registry::Sensors;
use super::{quarantine, schema, Quarantine, Store, StoreError, StoreOptions, SCHEMA_VERSION};
use crate::config::Synchronous;

/// Page size of a new database file, bytes (SQLite's default is 4096).
///
/// Every commit writes each page it touches whole, to the WAL and again at the next
/// checkpoint, and a commit of the default station touches a few pages besides the new
/// readings (the file header, the readings' root, the last partly filled leaf, the
/// chain's and the cursor's rows): with 1 KiB pages those cost 1 KiB each instead of 4,
/// and a new file's dozen tables and indexes start at 1 KiB each. Measured with
/// `bench/lean.sh` (bytes written per reading): see `store::commit`.
pub const NEW_FILE_PAGE_SIZE: u32 = 1024;

/// SQLite page cache of the writer's connection, KiB.
const WRITER_CACHE_KIB: u32 = 256;
/// SQLite page cache of the daemon's MQTT backlog reader, KiB. It walks the readings
/// forward one b-tree path at a time and a page it misses comes from the kernel's page
/// cache; at 256 KiB its cache was 0.26 MB of a max-speed day's peak heap (heaptrack:
/// peak heap 2.23 → 2.09 MB at 64).
const READER_CACHE_KIB: u32 = 64;

impl Store {
    /// Caps this connection's page cache at `kib` KiB.
    fn cache_kib(&self, kib: u32) -> Result<(), StoreError> {
        self.db(self
            .conn
            .execute_batch(&format!("PRAGMA cache_size = -{kib};")))
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
        let found = inspect(path)?;
        let new_file = matches!(found, Found::Missing | Found::Empty);
        if let Found::Ours(probe, version) = found {
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
        if new_file {
            // Before the first write (switching to WAL writes the header): see
            // `NEW_FILE_PAGE_SIZE`. A file keeps the page size it was created with.
            conn.execute_batch(&format!("PRAGMA page_size = {NEW_FILE_PAGE_SIZE};"))
                .map_err(err)?;
        }
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
        // SQLite's automatic checkpoint (every 1 000 pages) stays: with `synchronous =
        // "normal"` it is what syncs the WAL. Every 4 MiB with 1 KiB pages wrote less over a
        // day (137.6 against 157.7 bytes per reading) but stretched the window a power cut
        // can roll back (328 → 414 min), and the power-cut test's cuts, counted in file
        // operations, then mostly landed before any sync.
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
            overlay_cache: RefCell::new(None),
            synchronous: opts.synchronous,
            opts: opts.clone(),
            quarantined: None,
            checked_at_open: checked,
        };
        let ready = store
            .migrate()
            .and_then(|()| {
                let started = super::chain::start_if_pending(&mut store.conn);
                store.db(started)
            })
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
            overlay_cache: RefCell::new(None),
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
        // Every pending migration in one transaction: a crash leaves the version the file
        // had, and a new database is created in one commit (one WAL append, one sync)
        // rather than one per migration.
        let from = version;
        // Upgrading a large file can take minutes on a Pi (migration 4 rewrites the
        // aggregates table): tell systemd, whose start timeout and watchdog would
        // otherwise kill the start again and again, each time rolling the upgrade back.
        let slow = from > 0 && from < SCHEMA_VERSION;
        let notifier = crate::notify::Notifier::from_env();
        if slow && notifier.is_active() {
            let hour = "3600000000";
            let sent = notifier.send(&format!(
                "EXTEND_TIMEOUT_USEC={hour}\nWATCHDOG_USEC={hour}\nSTATUS=Upgrading the database schema"
            ));
            if let Err(e) = sent {
                tracing::debug!(error = %e, "Could not tell systemd about the schema upgrade");
            }
        }
        let tx = self.conn.transaction().map_err(err)?;
        while version < SCHEMA_VERSION {
            let Some(sql) = schema::MIGRATIONS.get(version as usize) else {
                break;
            };
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
            version += 1;
        }
        // What the first start would otherwise write in commits of their own (each one
        // a WAL append and a sync): the chain's genesis records, and for a new file the
        // zone its day buckets are cut in (`check_tz`).
        super::chain::start_pending_in(&tx).map_err(err)?;
        let vectors = super::aggregate::fill_direction_vectors(&tx, self.tz).map_err(err)?;
        if from == 0 {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![schema::META_DAY_TZ, self.tz.name()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        if slow && notifier.is_active() {
            // Back to the unit's watchdog interval (systemd passes it to the process).
            if let Ok(usec) = std::env::var("WATCHDOG_USEC") {
                if let Err(e) = notifier.send(&format!("WATCHDOG_USEC={usec}")) {
                    tracing::debug!(error = %e, "Could not restore the systemd watchdog interval");
                }
            }
        }
        if from > 0 && version > from {
            tracing::info!(path = %path.display(), from, to = version, "Migrated the database schema.");
        }
        if let Some(v) = vectors.filter(|v| v.left > 0) {
            tracing::info!(path = %path.display(), filled = v.filled, kept = v.left,
                "Mean directions now come from the vector sum of each bucket's directions; \
                 buckets whose readings could not all be read back (deleted by retention, or \
                 a day cut in an earlier time zone) keep their earlier mean.");
        }
        Ok(())
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

    /// The file's page size, bytes (each WAL frame holds one page and a 24-byte header).
    pub fn page_size(&self) -> Result<u32, StoreError> {
        self.db(self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get::<_, u32>(0)))
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

/// A read-only connection that follows the database file at a path: opened on first use
/// (with a capped page cache), and opened again when the file at the path is another one
/// (the writer moved a corrupt file aside and started a new one). The daemon's readers
/// (the MQTT backlog, the web page) hold one each.
pub struct ReadOnlyFollower {
    path: std::path::PathBuf,
    /// Page cache of the connection, KiB.
    cache_kib: u32,
    tz: Tz,
    store: Option<(Store, Option<(u64, u64)>)>,
}

/// Device and inode of the file at `path`.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl ReadOnlyFollower {
    /// Follows the database at `path` (local days in `tz`); opens nothing yet. The page
    /// cache is the writer's: the web page's charts read ranges of aggregates again and
    /// again (`bench/web.sh` measured its times with it).
    pub fn new(path: std::path::PathBuf, tz: Tz) -> ReadOnlyFollower {
        ReadOnlyFollower {
            path,
            cache_kib: WRITER_CACHE_KIB,
            tz,
            store: None,
        }
    }

    /// [`ReadOnlyFollower::new`] with a small page cache, for a reader that walks forward
    /// once (the MQTT backlog).
    pub fn forward_only(path: std::path::PathBuf, tz: Tz) -> ReadOnlyFollower {
        ReadOnlyFollower {
            cache_kib: READER_CACHE_KIB,
            ..ReadOnlyFollower::new(path, tz)
        }
    }

    /// The connection to the file now at the path.
    pub fn store(&mut self) -> Result<&Store, StoreError> {
        let identity = file_identity(&self.path);
        if self.store.as_ref().is_some_and(|(_, id)| *id != identity) {
            self.store = None;
        }
        let (store, _) = match self.store.take() {
            Some(open) => open,
            None => {
                let store = Store::open_read_only(&self.path, self.tz)?;
                store.cache_kib(self.cache_kib)?;
                (store, identity)
            }
        };
        Ok(&self.store.insert((store, identity)).0)
    }
}
