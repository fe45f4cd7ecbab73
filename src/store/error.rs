//! What the store reports when it cannot do what was asked.

use std::path::{Path, PathBuf};

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
        /// This build's [`SCHEMA_VERSION`](super::SCHEMA_VERSION).
        supported: i64,
    },
    /// A read-only open of a database that still needs migrating.
    #[error("database {} has schema version {found}; this Anemone reads version {supported}. Start `anemone run` once to upgrade it", path.display())]
    NeedsMigration {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// This build's [`SCHEMA_VERSION`](super::SCHEMA_VERSION).
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
    #[error("cannot open {} ({detail}): check that the directory exists and that the user running Anemone may read it (and, for `run`, write it). The service's database: add yourself to group anemone (`sudo usermod -aG anemone $USER`, then log in again) or use `sudo -u anemone`; a station of your own: pass --db ~/anemone.db or set [storage] path", path.display())]
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

    /// True when SQLite found the file damaged: it must not be written into again.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }
}

/// Maps a SQLite error on `path` to the error the operator can act on.
pub(super) fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
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
