//! `anemone import`: a school's Oracle Weather Station history (its `WEATHER_MEASUREMENT`
//! table) brought into the station's database, from a running MariaDB/MySQL server
//! ([`server`]) or from a `mysqldump` file ([`dump`]).
//!
//! Each row is mapped to readings by [`oracle`] and stored through the store's import
//! path (`store::import`): under one sensor of kind `import` (default `oracle-import`), in
//! batches of one transaction each that also record the source rows' ids, so a second
//! import, or a re-run after a crash, adds nothing. A row that cannot be read is counted
//! and named (line or row, and the fix) and the rest goes on.
//!
//! Stop the station first (`sudo systemctl stop anemone`): the store has one writer.

pub mod dump;
pub mod oracle;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono_tz::Tz;

use crate::reading::SensorId;
use crate::store::{SourceRow, Store, StoreError};
use oracle::{Layout, TimeBasis};

/// A value of the source: SQL `NULL` or its text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// Anything else, as text (numbers as written).
    Text(String),
}

/// Why an import stopped (rows stored before it stay stored).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A wrong argument; the message says the fix.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server or its client program failed.
    #[error("the server: {0}")]
    Server(String),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The sensor the history is stored under.
    pub sensor: String,
    /// The source's name in the store (row ids are remembered per source); `None`: the
    /// database's name.
    pub source: Option<String>,
    /// The zone `CREATED` is in where it is local wall time (the station's zone).
    pub tz: Tz,
    /// Source rows per transaction.
    pub batch: usize,
}

/// The problems listed in a report (the rest are counted).
pub const PROBLEMS_LISTED: usize = 20;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// The source's name in the store.
    pub source: String,
    /// Rows read from the source.
    pub rows: u64,
    /// Rows stored now.
    pub imported: u64,
    /// Readings stored now.
    pub readings: u64,
    /// Rows imported before (skipped).
    pub already: u64,
    /// Rows that could not be read (skipped).
    pub bad: u64,
    /// The first problems, each naming its line or row and the fix.
    pub problems: Vec<String>,
    /// Why reading the source stopped early (rows before it were imported).
    pub stopped: Option<String>,
    /// How `CREATED` was read.
    pub times: String,
}

impl ImportReport {
    /// True when every row of the source is in the store.
    pub fn complete(&self) -> bool {
        self.bad == 0 && self.stopped.is_none()
    }

    fn problem(&mut self, what: String) {
        self.bad += 1;
        if self.problems.len() < PROBLEMS_LISTED {
            self.problems.push(what);
        }
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Source `{}`: {} rows read ({}).",
            self.source, self.rows, self.times
        )?;
        writeln!(
            f,
            "Imported {} rows ({} readings); {} imported before, skipped; {} could not be read.",
            self.imported, self.readings, self.already, self.bad
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        if self.bad as usize > self.problems.len() {
            writeln!(
                f,
                "  … and {} more.",
                self.bad as usize - self.problems.len()
            )?;
        }
        if let Some(s) = &self.stopped {
            writeln!(f, "Stopped early: {s}")?;
            writeln!(
                f,
                "Fix it and import again: rows already imported are skipped."
            )?;
        } else if self.bad > 0 {
            writeln!(
                f,
                "Fix those rows at the source and import again: rows already imported are skipped."
            )?;
        }
        Ok(())
    }
}

/// Batches rows into the store.
struct Sink<'s> {
    store: &'s mut Store,
    sensor: SensorId,
    batch: Vec<SourceRow>,
    size: usize,
    report: ImportReport,
}

impl Sink<'_> {
    fn new<'s>(
        store: &'s mut Store,
        opts: &ImportOptions,
        source: String,
    ) -> Result<Sink<'s>, ImportError> {
        store.register_import_sensor(&opts.sensor, &source)?;
        Ok(Sink {
            store,
            sensor: Arc::from(opts.sensor.as_str()),
            batch: Vec::new(),
            size: opts.batch.max(1),
            report: ImportReport {
                source,
                ..ImportReport::default()
            },
        })
    }

    /// One row of the source: `at` names it in messages ("line 12", "row 3").
    fn row(
        &mut self,
        layout: &Layout,
        values: &[Value],
        basis: TimeBasis,
        at: &str,
    ) -> Result<(), ImportError> {
        self.report.rows += 1;
        match layout.row(values, &self.sensor, basis) {
            Ok((row_id, readings)) => {
                self.batch.push(SourceRow { row_id, readings });
                if self.batch.len() >= self.size {
                    self.flush()?;
                }
            }
            Err(what) => self.report.problem(format!("{at}: {what}")),
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let out = self.store.import_batch(&self.report.source, &self.batch)?;
        self.batch.clear();
        self.report.imported += out.rows;
        self.report.readings += out.readings;
        self.report.already += out.already;
        Ok(())
    }

    fn finish(mut self) -> Result<ImportReport, ImportError> {
        self.flush()?;
        Ok(self.report)
    }
}

/// A dump's column list and the layout found for it.
type ColumnsLayout = (Arc<Vec<String>>, Result<Layout, String>);

/// Imports the table from a `mysqldump` file.
pub fn from_dump(
    store: &mut Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let source = opts
        .source
        .clone()
        .or_else(|| dump_database(&bytes))
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dump".into());
    let mut sink = Sink::new(store, opts, source)?;
    sink.report.times = "no rows".into();
    let mut reader = dump::DumpReader::new(&bytes, oracle::TABLE, oracle::COLUMNS);
    // One layout per column list seen (most dumps have one).
    let mut layouts: Vec<ColumnsLayout> = Vec::new();
    loop {
        let items = match reader.next_insert() {
            Ok(Some(items)) => items,
            Ok(None) => break,
            Err(e) => {
                sink.report.stopped = Some(format!("{}: {e}", path.display()));
                break;
            }
        };
        let basis = if reader.tz_utc && !reader.created_is_datetime("CREATED") {
            TimeBasis::Utc
        } else {
            TimeBasis::Local(opts.tz)
        };
        for item in items {
            match item {
                dump::Item::Bad(b) => {
                    sink.report
                        .problem(format!("{} line {}: {}", path.display(), b.line, b.what))
                }
                dump::Item::Row(r) => {
                    let at = format!("{} line {}", path.display(), r.line);
                    let layout = match layouts.iter().find(|(c, _)| Arc::ptr_eq(c, &r.columns)) {
                        Some((_, l)) => l.clone(),
                        None => {
                            let l = Layout::new(&r.columns);
                            layouts.push((r.columns.clone(), l.clone()));
                            l
                        }
                    };
                    match layout {
                        Ok(l) => sink.row(&l, &r.values, basis, &at)?,
                        Err(what) => {
                            sink.report.rows += 1;
                            sink.report.problem(format!("{at}: {what}"));
                        }
                    }
                }
            }
        }
        sink.report.times = match basis {
            TimeBasis::Utc => "times in UTC: the dump set TIME_ZONE='+00:00'".into(),
            TimeBasis::Local(tz) => format!("times read as local time in {tz}"),
        };
    }
    if reader.inserts == 0 && sink.report.stopped.is_none() {
        sink.report.stopped = Some(format!(
            "{} holds no INSERT into {}: is it a dump of the weather station's database \
             (mysqldump DATABASE {})?",
            path.display(),
            oracle::TABLE,
            oracle::TABLE
        ));
    }
    sink.finish()
}

/// The database a dump is of, from its `-- Host: … Database: NAME` header.
fn dump_database(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    head.lines()
        .filter(|l| l.starts_with("--"))
        .find_map(|l| l.split_once("Database: "))
        .map(|(_, db)| db.trim().to_string())
        .filter(|db| !db.is_empty())
}

/// Imports the table from a running server.
pub fn from_server(
    store: &mut Store,
    url: &server::ServerUrl,
    password: &server::Password,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let source = opts.source.clone().unwrap_or_else(|| url.database.clone());
    let mut sink = Sink::new(store, opts, source)?;
    let mut layout: Option<(Layout, bool)> = None;
    let read = server::read_rows(url, password, oracle::TABLE, |cols, n, values| {
        let (l, typed) = match &layout {
            Some(l) => l,
            None => {
                // The last column is CREATED's type (see `server`), not the table's.
                let typed = cols.last().map(|c| c.as_str()) == Some(server::CREATED_TYPE);
                let table_cols = &cols[..cols.len() - usize::from(typed)];
                let l = Layout::new(table_cols).map_err(ImportError::Server)?;
                layout.insert((l, typed))
            }
        };
        let at = format!("row {n} of the table");
        let mut values = match values {
            Ok(v) => v,
            Err(what) => {
                sink.report.rows += 1;
                sink.report.problem(format!("{at}: {what}"));
                return Ok(());
            }
        };
        let created_type = if *typed { values.pop() } else { None };
        let basis = match created_type {
            Some(Value::Text(t)) if t.eq_ignore_ascii_case("timestamp") => TimeBasis::Utc,
            _ => TimeBasis::Local(opts.tz),
        };
        sink.row(l, &values, basis, &at)
    });
    if let Err(e) = read {
        match e {
            ImportError::Server(what) if sink.report.rows > 0 => sink.report.stopped = Some(what),
            other => return Err(other),
        }
    }
    sink.report.times = "TIMESTAMP times converted to UTC by the server".into();
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Synchronous;
    use crate::store::{Query, StoreOptions};

    fn dump_of(ids: std::ops::RangeInclusive<i64>) -> String {
        let mut s = String::from("/*!40103 SET TIME_ZONE='+00:00' */;\n");
        for id in ids {
            s.push_str(&format!(
                "INSERT INTO `WEATHER_MEASUREMENT` VALUES ({id},NULL,20.5,11,40,1001.5,70,NULL,3.6,7.2,0,'2018-01-01 00:{:02}:00');\n",
                id % 60
            ));
        }
        s
    }

    /// A dump cut short (as by a crash while copying it) imports what it holds; the whole
    /// dump afterwards adds only the rest, whatever the batch boundaries were.
    #[test]
    fn a_cut_dump_then_the_whole_one_adds_each_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let sopts = StoreOptions {
            synchronous: Synchronous::Normal,
            tz: chrono_tz::UTC,
            vfs: None,
        };
        let mut store = Store::open(&dir.path().join("a.db"), &sopts).unwrap();
        let opts = ImportOptions {
            sensor: "oracle-import".into(),
            source: Some("weather".into()),
            tz: chrono_tz::UTC,
            batch: 7,
        };
        let cut = dir.path().join("cut.sql");
        std::fs::write(
            &cut,
            format!(
                "{}INSERT INTO WEATHER_MEASUREMENT VALUES (26,'x",
                dump_of(1..=25)
            ),
        )
        .unwrap();
        let r = from_dump(&mut store, &cut, &opts).unwrap();
        assert_eq!((r.imported, r.readings), (25, 25 * 7));
        assert!(
            r.stopped.as_deref().is_some_and(|s| s.contains("line 27")),
            "{r}"
        );
        assert!(!r.complete());

        let whole = dir.path().join("whole.sql");
        std::fs::write(&whole, dump_of(1..=40)).unwrap();
        let r = from_dump(&mut store, &whole, &opts).unwrap();
        assert_eq!((r.imported, r.already, r.bad), (15, 25, 0), "{r}");
        assert!(r.complete());
        let n = store.count_readings(&Query::default()).unwrap();
        assert_eq!(n, 40 * 7);
        assert_eq!(store.imported_count("weather").unwrap(), 40);
    }
}
