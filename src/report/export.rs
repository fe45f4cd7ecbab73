//! `anemone export`: readings or aggregates as CSV, a JSON array or NDJSON.
//!
//! Raw readings use the public reading shape everywhere: `ts` (RFC 3339 UTC with `Z`),
//! `sensor`, `quantity`, `value` (number or null), `unit`, `flags` (names); JSON and NDJSON
//! are written by [`crate::reading::ReadingJson`], the one serialisation of a reading. CSV has the
//! header `ts,sensor,quantity,value,unit,flags` with flags joined by `|`.
//!
//! Aggregates (`--resolution minute|hour|day`) have one row per bucket, sensor and
//! quantity: `start,end,sensor,quantity,unit,count,flagged,min,min_ts,max,max_ts,mean,sum`
//! (`count`, `min`, `max`, `mean` and `sum` cover unflagged readings only; `flagged`
//! counts the others).
//!
//! Units (`--units metric|imperial`, [`crate::units`]): metric, the default, writes the
//! stored values untouched. Imperial converts every value that has an imperial unit
//! through the one unit table and rounds it to the decimals the table gives that unit; the
//! `unit` field (column) then names the unit shown (`°F`, `inHg`, `mph`, `in`), so a row
//! never pairs a number with the wrong unit. Aggregates convert `min`, `max` and `mean`
//! the same way and `sum` as the sum of the shown values. The database is never changed.
//!
//! Calibration (`--with-calibration`, [`What::DataWithCalibration`]): raw readings get two
//! more fields, `calibration` (the id of the `correction` record that produced the stored
//! value; empty in CSV and null in JSON when it was stored uncorrected) and `uncorrected`
//! (the value the sensor sent, recovered by undoing that correction; see
//! [`crate::correction`]). `--calibrations` ([`export_calibrations`]) writes the
//! calibration records themselves.
//!
//! Memory stays bounded: rows are read from the store a page at a time and written as
//! they come.
//!
//! `--output FILE` never overwrites by accident ([`create_output`]): an existing file is
//! refused unless `--force` is given, and the database being exported — or its `-wal`,
//! `-shm` or `-journal` companion, which hold committed data too — is refused always,
//! whatever name reaches it (a relative path, `..`, a symlink or a hard link: paths are
//! compared canonicalised, files by device and inode).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use std::collections::HashMap;

use crate::correction::Timeline;
use crate::reading::{format_ts, Precision, Quantity, Reading};
use crate::store::{Aggregate, CalibrationRecord, Query, Resolution, Store, StoredReading};
use crate::units::{conversion_for, display_rounded, display_sum, display_unit, UnitSystem};

use super::ReportError;

/// Above this many readings, `export` shows a progress bar (when asked to).
pub const PROGRESS_THRESHOLD: u64 = 50_000;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// A format name other than `csv`, `json` or `ndjson`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format `{0}`: use csv, json or ndjson")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "ndjson" => Ok(Format::Ndjson),
            other => Err(UnknownFormat(other.to_string())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
        })
    }
}

/// What to export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// Output format.
    pub format: Format,
    /// Raw readings or aggregate buckets.
    pub resolution: Resolution,
    /// Time range (`from` inclusive, `to` exclusive), sensor and quantity filters.
    pub query: Query,
    /// Decimals of each sensor's values (the store keeps them as measured).
    pub precision: Precision,
    /// The units values are written in (metric: as stored).
    pub units: UnitSystem,
}

const READING_HEADER: &str = "ts,sensor,quantity,value,unit,flags";
const AGGREGATE_HEADER: &str =
    "start,end,sensor,quantity,unit,count,flagged,min,min_ts,max,max_ts,mean,sum";

/// Quotes a CSV field when it needs it (RFC 4180: comma, quote, CR or LF; we also quote
/// leading/trailing spaces so spreadsheets keep them).
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    let needs = s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if needs {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => x.to_string(),
        _ => String::new(),
    }
}

fn json_num(v: Option<f64>) -> serde_json::Value {
    v.filter(|x| x.is_finite())
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Streams rows in one format.
struct Sink<'a> {
    format: Format,
    units: UnitSystem,
    out: std::io::BufWriter<&'a mut dyn Write>,
    rows: u64,
    /// With `calibration` and `uncorrected` columns: each sensor's correction timeline.
    calibration: Option<HashMap<String, Timeline>>,
}

impl<'a> Sink<'a> {
    fn new(
        format: Format,
        units: UnitSystem,
        out: &'a mut dyn Write,
        header: &str,
    ) -> Result<Sink<'a>, ReportError> {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
        match format {
            Format::Csv => writeln!(out, "{header}")?,
            Format::Json => write!(out, "[")?,
            Format::Ndjson => {}
        }
        Ok(Sink {
            format,
            units,
            out,
            rows: 0,
            calibration: None,
        })
    }

    fn json(&mut self, v: &impl serde::Serialize) -> Result<(), ReportError> {
        if self.format == Format::Json {
            let sep = if self.rows == 0 { "\n" } else { ",\n" };
            self.out.write_all(sep.as_bytes())?;
        }
        serde_json::to_writer(&mut self.out, v).map_err(std::io::Error::from)?;
        if self.format != Format::Json {
            self.out.write_all(b"\n")?;
        }
        self.rows += 1;
        Ok(())
    }

    fn csv(&mut self, fields: &[&str]) -> Result<(), ReportError> {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            self.out.write_all(csv_field(f).as_bytes())?;
        }
        self.out.write_all(b"\n")?;
        self.rows += 1;
        Ok(())
    }

    /// A value as written: in the unit system asked for, to the sensor's resolution where
    /// it keeps its stored unit, to the shown unit's decimals where it is converted.
    fn shown(&self, p: &Precision, sensor: &str, q: Quantity, v: Option<f64>) -> Option<f64> {
        v.map(|v| match conversion_for(q.unit(), self.units) {
            Some(_) => display_rounded(q, v, self.units),
            None => p.round(sensor, q, v),
        })
    }

    fn reading(&mut self, r: &StoredReading, p: &Precision) -> Result<(), ReportError> {
        if self.calibration.is_some() {
            return self.reading_with_calibration(&r.reading, p);
        }
        let r = &r.reading;
        let q = r.quantity;
        match self.format {
            Format::Csv => self.csv(&[
                &format_ts(r.ts),
                &r.sensor,
                q.as_str(),
                &num(self.shown(p, &r.sensor, q, r.value)),
                display_unit(q, self.units),
                &r.flags.names().join("|"),
            ]),
            _ if self.units == UnitSystem::Metric => self.json(&r.json_in(p)),
            _ => {
                // The one serialisation, then the value and unit as shown (the object's
                // keys are in alphabetical order either way).
                let mut v = serde_json::to_value(r.json_in(p)).map_err(std::io::Error::from)?;
                if let Some(obj) = v.as_object_mut() {
                    obj.insert(
                        "value".into(),
                        json_num(self.shown(p, &r.sensor, q, r.value)),
                    );
                    obj.insert("unit".into(), display_unit(q, self.units).into());
                }
                self.json(&v)
            }
        }
    }

    /// A reading with the correction that produced it (`calibration`: its record id, empty
    /// or null when stored uncorrected) and the value the sensor sent (`uncorrected`).
    fn reading_with_calibration(&mut self, r: &Reading, p: &Precision) -> Result<(), ReportError> {
        let q = r.quantity;
        let used = self
            .calibration
            .as_ref()
            .and_then(|t| t.get(&*r.sensor))
            .and_then(|t| t.at(q, r.ts))
            .map(|(id, c)| (id, c.clone()));
        let id = used.as_ref().map(|(id, _)| *id);
        let raw = match &used {
            Some((_, c)) => r.value.map(|v| c.invert(v)),
            None => r.value,
        };
        let value = self.shown(p, &r.sensor, q, r.value);
        let uncorrected = self.shown(p, &r.sensor, q, raw);
        match self.format {
            Format::Csv => self.csv(&[
                &format_ts(r.ts),
                &r.sensor,
                q.as_str(),
                &num(value),
                display_unit(q, self.units),
                &r.flags.names().join("|"),
                &id.map(|i| i.to_string()).unwrap_or_default(),
                &num(uncorrected),
            ]),
            _ => {
                let mut v = serde_json::to_value(r.json_in(p)).map_err(std::io::Error::from)?;
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("value".into(), json_num(value));
                    obj.insert("unit".into(), display_unit(q, self.units).into());
                    obj.insert("calibration".into(), id.into());
                    obj.insert("uncorrected".into(), json_num(uncorrected));
                }
                self.json(&v)
            }
        }
    }

    fn aggregate(&mut self, a: &Aggregate, p: &Precision) -> Result<(), ReportError> {
        let ts_opt = |m: Option<(f64, i64)>| m.map(|(_, t)| format_ts(t));
        let q = a.quantity;
        let (min, max, mean) = (
            self.shown(p, &a.sensor, q, a.min.map(|m| m.0)),
            self.shown(p, &a.sensor, q, a.max.map(|m| m.0)),
            self.shown(p, &a.sensor, q, a.mean()),
        );
        let sum = match conversion_for(q.unit(), self.units) {
            Some(_) => display_sum(q, a.sum, a.count, self.units),
            None => p.round(&a.sensor, q, a.sum),
        };
        let unit = display_unit(q, self.units);
        match self.format {
            Format::Csv => self.csv(&[
                &format_ts(a.start),
                &format_ts(a.end),
                &a.sensor,
                q.as_str(),
                unit,
                &a.count.to_string(),
                &a.flagged.to_string(),
                &num(min),
                &ts_opt(a.min).unwrap_or_default(),
                &num(max),
                &ts_opt(a.max).unwrap_or_default(),
                &num(mean),
                &num(Some(sum)),
            ]),
            _ => self.json(&serde_json::json!({
                "start": format_ts(a.start),
                "end": format_ts(a.end),
                "sensor": a.sensor,
                "quantity": q.as_str(),
                "unit": unit,
                "count": a.count,
                "flagged": a.flagged,
                "min": json_num(min),
                "min_ts": ts_opt(a.min),
                "max": json_num(max),
                "max_ts": ts_opt(a.max),
                "mean": json_num(mean),
                "sum": json_num(Some(sum)),
            })),
        }
    }

    fn finish(mut self) -> Result<u64, ReportError> {
        if self.format == Format::Json {
            let end = if self.rows == 0 { "]\n" } else { "\n]\n" };
            self.out.write_all(end.as_bytes())?;
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

/// Writes the readings (or aggregates) selected by `opts` to `out`; returns the number of
/// rows written (header not counted). With `progress`, a bar on stderr follows exports of
/// more than [`PROGRESS_THRESHOLD`] readings.
pub fn export(
    store: &Store,
    opts: &ExportOptions,
    out: &mut dyn Write,
    progress: bool,
) -> Result<u64, ReportError> {
    export_what(store, opts, What::Data, out, progress)
}

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum What {
    /// Readings or aggregates, as [`export`] writes them.
    #[default]
    Data,
    /// Raw readings with two more fields: `calibration`, the id of the correction record
    /// that produced the stored value (empty or null: stored uncorrected), and
    /// `uncorrected`, the value the sensor sent, recovered by undoing that correction.
    DataWithCalibration,
    /// The calibration records themselves ([`export_calibrations`]).
    Calibrations,
}

/// Like [`export`], writing `what`.
pub fn export_what(
    store: &Store,
    opts: &ExportOptions,
    what: What,
    out: &mut dyn Write,
    progress: bool,
) -> Result<u64, ReportError> {
    if what == What::Calibrations {
        return export_calibrations(store, opts, out);
    }
    if opts.resolution == Resolution::Raw {
        let bar = if progress {
            let total = store.count_readings(&opts.query)?;
            (total > PROGRESS_THRESHOLD).then(|| progress_bar(total))
        } else {
            None
        };
        let mut sink = if what == What::DataWithCalibration {
            let header = format!("{READING_HEADER},calibration,uncorrected");
            let mut sink = Sink::new(opts.format, opts.units, out, &header)?;
            sink.calibration = Some(timelines(store)?);
            sink
        } else {
            Sink::new(opts.format, opts.units, out, READING_HEADER)?
        };
        store.for_each_reading::<ReportError>(&opts.query, |r| {
            sink.reading(r, &opts.precision)?;
            if let Some(b) = &bar {
                b.inc(1);
            }
            Ok(())
        })?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        sink.finish()
    } else {
        if what == What::DataWithCalibration {
            return Err(ReportError::NoData(
                "calibration columns exist for raw readings only: drop --resolution or the calibration option (aggregates mix readings of several calibrations)".into(),
            ));
        }
        let mut sink = Sink::new(opts.format, opts.units, out, AGGREGATE_HEADER)?;
        store.for_each_aggregate::<ReportError>(opts.resolution, &opts.query, |a| {
            sink.aggregate(a, &opts.precision)
        })?;
        sink.finish()
    }
}

/// Each sensor's correction timeline, from every calibration record in the store.
fn timelines(store: &Store) -> Result<HashMap<String, Timeline>, ReportError> {
    let mut by_sensor: HashMap<String, Vec<CalibrationRecord>> = HashMap::new();
    for (sensor, r) in store.all_calibrations()? {
        by_sensor.entry(sensor).or_default().push(r);
    }
    Ok(by_sensor
        .into_iter()
        .map(|(sensor, recs)| {
            let t = Timeline::from_records(
                recs.iter()
                    .map(|r| (r.id, r.ts, r.kind.as_str(), &r.payload)),
            );
            (sensor, t)
        })
        .collect())
}

const CALIBRATION_HEADER: &str = "id,ts,sensor,kind,quantity,payload";

/// Writes the calibration records (corrections, the ranges of readings they produced, the
/// pH and EZO records) that `opts.query` selects: by time, sensor, and — for the records
/// that name one — quantity. CSV: `id,ts,sensor,kind,quantity,payload` (the payload as JSON
/// text); JSON/NDJSON: objects with the same keys, the payload as an object.
pub fn export_calibrations(
    store: &Store,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<u64, ReportError> {
    let mut sink = Sink::new(opts.format, opts.units, out, CALIBRATION_HEADER)?;
    let q = &opts.query;
    for (sensor, r) in store.all_calibrations()? {
        let quantity = r.payload.get("quantity").and_then(|v| v.as_str());
        let keep = q.from.is_none_or(|f| r.ts >= f)
            && q.to.is_none_or(|t| r.ts < t)
            && q.sensor.as_deref().is_none_or(|s| s == sensor)
            && q.quantity
                .is_none_or(|want| quantity == Some(want.as_str()));
        if !keep {
            continue;
        }
        match opts.format {
            Format::Csv => sink.csv(&[
                &r.id.to_string(),
                &format_ts(r.ts),
                &sensor,
                &r.kind,
                quantity.unwrap_or(""),
                &r.payload.to_string(),
            ])?,
            _ => sink.json(&serde_json::json!({
                "id": r.id,
                "ts": format_ts(r.ts),
                "sensor": sensor,
                "kind": r.kind,
                "quantity": quantity,
                "payload": r.payload,
            }))?,
        }
    }
    sink.finish()
}

/// Writes readings that come from elsewhere (the collector's PostgreSQL) in `opts`'s
/// format and units, exactly as [`export`] writes the store's raw readings.
pub fn write_readings(
    readings: &mut dyn Iterator<Item = StoredReading>,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<u64, ReportError> {
    let mut sink = Sink::new(opts.format, opts.units, out, READING_HEADER)?;
    for r in readings {
        sink.reading(&r, &opts.precision)?;
    }
    sink.finish()
}

/// `anemone export`: writes what `opts` selects to the file `output` (created by
/// [`create_output`] for the database `store` reads) or, without one, to stdout; returns
/// the number of rows. A progress bar follows long exports when `progress` is set.
pub fn export_to(
    store: &Store,
    opts: &ExportOptions,
    output: Option<&Path>,
    force: bool,
    progress: bool,
) -> Result<u64, ReportError> {
    export_what_to(store, opts, What::Data, output, force, progress)
}

/// [`export_to`] writing `what`.
pub fn export_what_to(
    store: &Store,
    opts: &ExportOptions,
    what: What,
    output: Option<&Path>,
    force: bool,
    progress: bool,
) -> Result<u64, ReportError> {
    match output {
        Some(path) => {
            let file = create_output(path, store.path(), force)?;
            let mut out = std::io::BufWriter::new(file);
            let n = export_what(store, opts, what, &mut out, progress)?;
            out.flush()?;
            Ok(n)
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = export_what(store, opts, what, &mut out, progress)?;
            out.flush()?;
            Ok(n)
        }
    }
}

/// Why `--output` was refused.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output is the database being exported or one of its companion files.
    #[error("refusing to write the export to {}: it is the database being exported ({}){}; writing there would destroy the stored readings. Choose another output file", output.display(), db.display(), if *companion { " or one of its -wal/-shm/-journal files" } else { "" })]
    IsTheDatabase {
        /// The output as given.
        output: PathBuf,
        /// The database.
        db: PathBuf,
        /// It is a companion file, not the database itself.
        companion: bool,
    },
    /// The output exists and `--force` was not given.
    #[error("{} exists already: pass --force to overwrite it, or choose another output file", .0.display())]
    Exists(PathBuf),
    /// The output cannot be created.
    #[error("cannot create {} ({}): check that its directory exists and is writable", .0.display(), .1)]
    Create(PathBuf, std::io::Error),
}

/// The absolute, symlink-free form of `p`; for a file that does not exist yet, its
/// directory's canonical form joined with its name.
fn canonical(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::canonicalize(dir).ok().map(|d| d.join(name))
}

/// True when `a` and `b` both exist and are the same file (device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Refuses `output` when it is the database `db` or one of its companion files.
pub fn check_output(output: &Path, db: &Path) -> Result<(), OutputError> {
    let mut files = vec![(db.to_path_buf(), false)];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        files.push((PathBuf::from(name), true));
    }
    let out_canon = canonical(output);
    for (file, companion) in files {
        let same_name = out_canon.is_some() && out_canon == canonical(&file);
        if same_name || same_file(output, &file) {
            return Err(OutputError::IsTheDatabase {
                output: output.to_path_buf(),
                db: db.to_path_buf(),
                companion,
            });
        }
    }
    Ok(())
}

/// Creates the export file `output` for the database `db`: never the database or its
/// companions, and an existing file only with `force`. Without `force` the file is
/// created exclusively, so a file appearing meanwhile is not overwritten either.
pub fn create_output(output: &Path, db: &Path, force: bool) -> Result<std::fs::File, OutputError> {
    check_output(output, db)?;
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    open.open(output).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            OutputError::Exists(output.to_path_buf())
        } else {
            OutputError::Create(output.to_path_buf(), e)
        }
    })
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} exporting {pos}/{len} readings [{bar:30}] {percent}% eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_of_the_database_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        std::fs::write(&db, b"x").unwrap();
        assert!(check_output(&dir.path().join("a.csv"), &db).is_ok());
        assert!(check_output(&dir.path().join("a.db-wal"), &db).is_err());
        assert!(check_output(&dir.path().join(".").join("a.db"), &db).is_err());
        // A database given relatively, the output absolutely.
        let e = check_output(&db, Path::new("/nonexistent-dir/a.db"));
        assert!(e.is_ok(), "{e:?}");
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("mast"), "mast");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(" pad"), "\" pad\"");
    }

    #[test]
    fn format_names() {
        for f in ["csv", "json", "ndjson"] {
            assert_eq!(
                f.parse::<Format>().map(|x| x.to_string()),
                Ok(f.to_string())
            );
        }
        assert!("xml".parse::<Format>().is_err());
    }
}
