//! A corrupt database is never written into again: it is kept aside and a new one started.
//!
//! Once a file is known corrupt — `PRAGMA quick_check` fails when the daemon opens it, or
//! SQLite answers SQLITE_CORRUPT / SQLITE_NOTADB while it runs — the writer's connection
//! is closed **without the checkpoint** SQLite normally runs at close (which would copy
//! WAL pages into the damaged file), and the file is renamed, with its `-wal` and `-shm`
//! (the WAL holds committed readings too), to `<name>.corrupt-<UTC minute>` next to it
//! (`-1`, `-2`, … appended when that name is taken: nothing is ever overwritten or
//! deleted). A new database is created at the configured path and one ERROR names both
//! files and the recovery command.
//!
//! # Ids and the publish cursor in the new file
//! A reading id is its MQTT message identity: the new file must never give a dashboard an
//! id it has seen. The new file's id reservation (`meta reading_ids_reserved`) starts at
//! the highest of every id the old file held or reserved (read from it, read-only, as far
//! as it can still be read) and, in the writer, every id this run handed out. Where the
//! old file's ids cannot be read, the floor is derived from time instead (see
//! [`time_floor`]).
//!
//! The new file's publish cursor is the old file's cursor (0 when unreadable), not the
//! id floor: readings the broker never acknowledged are **not** claimed published. They
//! are not in the new file either — they stay in the kept file, listed in the ERROR as
//! an id range, and can be recovered from it; the publisher simply finds no rows for
//! those ids (as for ids skipped by a crash) and goes on with the new readings.
//!
//! The sensors (kinds and hardware ids) and recorded calibrations are copied into the new
//! file as far as they can be read, so a pH probe keeps its calibration. Raw readings and
//! aggregates are not copied: reading a damaged file row by row is `.recover`'s job.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::identity::companion;
use super::{schema, StoreError};

/// What a quarantine did: the text of its ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// The configured path, now a new database.
    pub path: PathBuf,
    /// Where the corrupt file (and its `-wal`, `-shm`) went.
    pub kept: PathBuf,
    /// What SQLite said.
    pub detail: String,
    /// New reading ids start above this.
    pub id_floor: i64,
    /// The old file's publish cursor, carried into the new file.
    pub cursor: i64,
    /// The floor had to be derived from time: the old file's ids could not be read.
    pub floor_from_time: bool,
}

impl std::fmt::Display for Quarantine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Database {} is corrupt ({}): nothing more is written into it. It was moved, with its -wal and -shm files, to {}, and readings now go to a new database at {} (reading ids continue above {}{}).",
            self.path.display(),
            self.detail,
            self.kept.display(),
            self.path.display(),
            self.id_floor,
            if self.floor_from_time { ", a floor derived from the time because the old ids could not be read" } else { "" },
        )?;
        if self.id_floor > self.cursor {
            write!(
                f,
                " Readings the broker had not acknowledged (ids {} to {}) were not published and remain in the old file.",
                self.cursor + 1,
                self.id_floor
            )?;
        }
        write!(
            f,
            " The old file's readings and summaries are not in the new one: recover what it holds with `sqlite3 {} '.recover' | sqlite3 recovered.db`, and check the SD card or disk (dmesg).",
            self.kept.display()
        )
    }
}

/// What could still be read from a corrupt file.
#[derive(Debug, Default)]
pub(super) struct OldFile {
    /// Highest id the file stored, held in aggregates or reserved, among what was read.
    high: i64,
    /// Both the stored ids and the reservation could be read.
    complete: bool,
    cursor: i64,
    sensors: Vec<(String, String, Option<String>)>,
    calibrations: Vec<(String, i64, String, String)>,
    /// Latest modification time of the file and its WAL (ms since 1970).
    modified_ms: i64,
}

impl OldFile {
    /// Reads, read-only and value by value, whatever the damaged file still gives.
    pub(super) fn read(path: &Path) -> OldFile {
        let mut old = OldFile {
            modified_ms: [path.to_path_buf(), companion(path, "-wal")]
                .iter()
                .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
                .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .max()
                .unwrap_or(0),
            ..OldFile::default()
        };
        let Ok(conn) = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) else {
            return old;
        };
        let one = |sql: &str| -> Option<i64> {
            conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .optional()
                .ok()
                .map(|v| v.flatten().unwrap_or(0))
        };
        let meta = |key: &str| -> Option<i64> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()
            .ok()
            .map(|v| v.flatten().unwrap_or(0))
        };
        let stored = one("SELECT max(id) FROM readings");
        let reserved = meta(schema::META_IDS_RESERVED);
        let aggregated = one("SELECT max(last_id) FROM aggregates");
        let cursor = meta(schema::META_PUBLISH_CURSOR);
        old.complete = stored.is_some() && reserved.is_some();
        old.cursor = cursor.unwrap_or(0);
        old.high = [stored, reserved, aggregated, cursor]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0);
        if let Ok(mut stmt) = conn.prepare("SELECT name, kind, hardware_id FROM sensors") {
            if let Ok(rows) = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))) {
                old.sensors = rows.filter_map(Result::ok).collect();
            }
        }
        if let Ok(mut stmt) = conn.prepare(
            "SELECT s.name, c.ts, c.kind, c.payload FROM calibrations c \
             JOIN sensors s ON s.id = c.sensor ORDER BY c.id",
        ) {
            if let Ok(rows) =
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            {
                old.calibrations = rows.filter_map(Result::ok).collect();
            }
        }
        old
    }
}

/// An id floor no database can have reached by wall time `now_ms`, for when the old
/// file's ids cannot be read: ids are handed out one per reading from 1, and a station
/// takes tens of readings a second, never a million, so fewer than `now_ms × 1000` ids
/// (a million a second since 1970) were ever handed out. A file started from such a floor
/// at time t₀ stays below `now_ms × 1000` at any later time for the same reason, so the
/// rule holds across repeated quarantines. The time used is the latest of the system
/// clock and the old file's modification times (a clock set back cannot lower it). It
/// stays below 2⁵³ (exact in a JavaScript dashboard) until the year 2255.
fn time_floor(old_modified_ms: i64) -> i64 {
    crate::clock::system_now()
        .max(old_modified_ms)
        .max(0)
        .saturating_mul(1_000)
}

/// Renames `path` and its `-wal` and `-shm` to `<path>.corrupt-<UTC minute>[-n]`, never
/// over an existing file. The WAL goes first: should the move stop half-way, the
/// configured path never holds a new database beside the old file's WAL.
pub(super) fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%MZ");
    let fail = |e: std::io::Error, what: &Path| StoreError::CannotOpen {
        path: what.to_path_buf(),
        detail: format!("the corrupt file cannot be moved aside: {e}; move it away by hand"),
    };
    for n in 0..1_000u32 {
        let mut name = path.as_os_str().to_os_string();
        name.push(format!(".corrupt-{stamp}"));
        if n > 0 {
            name.push(format!("-{n}"));
        }
        let kept = PathBuf::from(name);
        let taken = ["", "-wal", "-shm"]
            .iter()
            .any(|s| companion(&kept, s).symlink_metadata().is_ok());
        if taken {
            continue;
        }
        for suffix in ["-wal", "-shm", ""] {
            let from = companion(path, suffix);
            if from.symlink_metadata().is_ok() {
                std::fs::rename(&from, companion(&kept, suffix)).map_err(|e| fail(e, &from))?;
            }
        }
        return Ok(kept);
    }
    Err(StoreError::CannotOpen {
        path: path.to_path_buf(),
        detail: "a thousand corrupt copies are kept beside it already; move them away".into(),
    })
}

/// Prepares the new database `conn` at `path` to continue after `old` (kept at `kept`):
/// the id reservation above everything the old file (or, `known_floor`, this run) handed
/// out, the old publish cursor, the sensors and calibrations.
pub(super) fn continue_after(
    conn: &mut Connection,
    path: &Path,
    kept: PathBuf,
    old: &OldFile,
    known_floor: Option<i64>,
    detail: String,
) -> Result<Quarantine, StoreError> {
    let from_time = !old.complete && known_floor.is_none();
    let mut floor = old.high.max(known_floor.unwrap_or(0));
    if from_time {
        floor = floor.max(time_floor(old.modified_ms));
    }
    let cursor = old.cursor.min(floor);
    let err = |e| super::error::classify(path, e);
    let tx = conn.transaction().map_err(err)?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        rusqlite::params![schema::META_IDS_RESERVED, floor],
    )
    .map_err(err)?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        rusqlite::params![schema::META_PUBLISH_CURSOR, cursor],
    )
    .map_err(err)?;
    for (name, kind, hw) in &old.sensors {
        tx.execute(
            "INSERT INTO sensors (name, kind, hardware_id) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO NOTHING",
            rusqlite::params![name, kind, hw],
        )
        .map_err(err)?;
    }
    for (sensor, ts, kind, payload) in &old.calibrations {
        tx.execute(
            "INSERT INTO calibrations (sensor, ts, kind, payload) \
             SELECT id, ?2, ?3, ?4 FROM sensors WHERE name = ?1",
            rusqlite::params![sensor, ts, kind, payload],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)?;
    Ok(Quarantine {
        path: path.to_path_buf(),
        kept,
        detail,
        id_floor: floor,
        cursor,
        floor_from_time: from_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_aside_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        std::fs::write(&db, b"one").unwrap();
        std::fs::write(companion(&db, "-wal"), b"wal one").unwrap();
        let k1 = move_aside(&db).unwrap();
        assert!(!db.exists());
        std::fs::write(&db, b"two").unwrap();
        let k2 = move_aside(&db).unwrap();
        assert_ne!(k1, k2);
        assert_eq!(std::fs::read(&k1).unwrap(), b"one");
        assert_eq!(std::fs::read(companion(&k1, "-wal")).unwrap(), b"wal one");
        assert_eq!(std::fs::read(&k2).unwrap(), b"two");
        assert!(k1.to_string_lossy().contains("a.db.corrupt-"));
    }

    #[test]
    fn time_floor_is_above_any_plausible_id_and_exact_in_javascript() {
        let f = time_floor(0);
        assert!(f > 1_700_000_000_000_000);
        assert!(f < 1 << 53);
    }
}
