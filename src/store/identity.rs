//! What a database file is, found before anything is written to it.
//!
//! A file that is not SQLite, a SQLite file of another application (another
//! `application_id`, or tables but no id) and a database from a newer Anemone are
//! refused with an error naming the file and the fix; none is ever written. A corrupt
//! Anemone database is never written into either: read-only opens refuse it, and the
//! read-write [`Store::open`](super::Store::open) (and the writer, on SQLITE_CORRUPT while
//! running) moves it aside and starts a new file: ids, publish cursor and what is copied
//! are described in the `quarantine` module.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::error::classify;
use super::{schema, StoreError, SCHEMA_VERSION};

/// What [`inspect`] found.
pub(super) enum Found {
    Missing,
    Empty,
    /// An Anemone (or empty SQLite) database, opened read-only, at this schema version.
    Ours(Connection, i64),
}

/// Looks at a file without changing it: header bytes first, then a read-only open.
pub(super) fn inspect(path: &Path) -> Result<Found, StoreError> {
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
    let checked = check_identity(path, &conn);
    let (conn, checked) = match checked {
        // A WAL-mode file with neither companion, in a directory this user may not write
        // (a member of group `anemone` reading /var/lib/anemone while the service is
        // stopped): SQLite cannot create the `-shm` it reads through. No writer has the
        // file open (one would hold both companions) and no WAL is left to replay, so
        // the file alone is the whole database: read it as it is.
        Err(StoreError::CannotOpen { .. })
            if !existed.iter().any(|e| *e) && !companions.iter().any(|p| p.exists()) =>
        {
            drop(conn);
            let conn = open_immutable(path)?;
            let checked = check_identity(path, &conn);
            (conn, checked)
        }
        other => (conn, other),
    };
    match checked {
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

/// A read-only connection that takes the file as unchanging (SQLite's `immutable=1`):
/// no `-shm`, no locks, nothing created beside it.
fn open_immutable(path: &Path) -> Result<Connection, StoreError> {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| classify(path, e))
}

/// True when `path` starts with the header of an Anemone database (SQLite magic and our
/// `application_id`): a damaged file of ours is moved aside, anything else is refused.
pub(super) fn is_ours(path: &Path) -> bool {
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    read.is_ok()
        && header.starts_with(b"SQLite format 3\0")
        && i32::from_be_bytes([header[68], header[69], header[70], header[71]])
            == schema::APPLICATION_ID
}

/// `PRAGMA quick_check` on a read-only connection: `Corrupt` unless it says "ok".
pub(super) fn quick_check(path: &Path, conn: &Connection) -> Result<(), StoreError> {
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
        // SQLite's first row is several lines; a log line must stay one.
        detail: format!(
            "quick_check: {}",
            lines
                .iter()
                .map(|l| l.trim().replace('\n', "; "))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    })
}

/// `path` with `suffix` appended to its file name (SQLite's companion files).
pub(super) fn companion(path: &Path, suffix: &str) -> PathBuf {
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

pub(super) fn file_bytes(path: &Path) -> u64 {
    [path.to_path_buf(), companion(path, "-wal")]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
