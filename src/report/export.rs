//! `anemone export`: readings or aggregates as CSV, a JSON array or NDJSON.
//!
//! Raw readings use the public reading shape everywhere: `ts` (RFC 3339 UTC with `Z`),
//! `sensor`, `quantity`, `value` (number or null), `unit`, `flags` (names). CSV has the
//! header `ts,sensor,quantity,value,unit,flags` with flags joined by `|`.
//!
//! Aggregates (`--resolution minute|hour|day`) have one row per bucket, sensor and
//! quantity: `start,end,sensor,quantity,unit,count,flagged,min,min_ts,max,max_ts,mean,sum`
//! (`count`, `min`, `max`, `mean` and `sum` cover unflagged readings only; `flagged`
//! counts the others).
//!
//! Memory stays bounded: rows are read from the store a page at a time and written as
//! they come.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use crate::reading::format_ts;
use crate::store::{Aggregate, Query, Resolution, Store, StoredReading};

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
    out: std::io::BufWriter<&'a mut dyn Write>,
    rows: u64,
}

impl<'a> Sink<'a> {
    fn new(format: Format, out: &'a mut dyn Write, header: &str) -> Result<Sink<'a>, ReportError> {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
        match format {
            Format::Csv => writeln!(out, "{header}")?,
            Format::Json => write!(out, "[")?,
            Format::Ndjson => {}
        }
        Ok(Sink {
            format,
            out,
            rows: 0,
        })
    }

    fn json(&mut self, v: &serde_json::Value) -> Result<(), ReportError> {
        match self.format {
            Format::Json => {
                let sep = if self.rows == 0 { "\n" } else { ",\n" };
                write!(self.out, "{sep}{v}")?;
            }
            _ => writeln!(self.out, "{v}")?,
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

    fn reading(&mut self, r: &StoredReading) -> Result<(), ReportError> {
        let r = &r.reading;
        match self.format {
            Format::Csv => self.csv(&[
                &format_ts(r.ts),
                &r.sensor,
                r.quantity.as_str(),
                &num(r.value),
                r.unit(),
                &r.flags.names().join("|"),
            ]),
            _ => self.json(&r.to_json()),
        }
    }

    fn aggregate(&mut self, a: &Aggregate) -> Result<(), ReportError> {
        let ts_opt = |m: Option<(f64, i64)>| m.map(|(_, t)| format_ts(t));
        match self.format {
            Format::Csv => self.csv(&[
                &format_ts(a.start),
                &format_ts(a.end),
                &a.sensor,
                a.quantity.as_str(),
                a.quantity.unit(),
                &a.count.to_string(),
                &a.flagged.to_string(),
                &num(a.min.map(|m| m.0)),
                &ts_opt(a.min).unwrap_or_default(),
                &num(a.max.map(|m| m.0)),
                &ts_opt(a.max).unwrap_or_default(),
                &num(a.mean()),
                &num(Some(a.sum)),
            ]),
            _ => self.json(&serde_json::json!({
                "start": format_ts(a.start),
                "end": format_ts(a.end),
                "sensor": a.sensor,
                "quantity": a.quantity.as_str(),
                "unit": a.quantity.unit(),
                "count": a.count,
                "flagged": a.flagged,
                "min": json_num(a.min.map(|m| m.0)),
                "min_ts": ts_opt(a.min),
                "max": json_num(a.max.map(|m| m.0)),
                "max_ts": ts_opt(a.max),
                "mean": json_num(a.mean()),
                "sum": json_num(Some(a.sum)),
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
    if opts.resolution == Resolution::Raw {
        let bar = if progress {
            let total = store.count_readings(&opts.query)?;
            (total > PROGRESS_THRESHOLD).then(|| progress_bar(total))
        } else {
            None
        };
        let mut sink = Sink::new(opts.format, out, READING_HEADER)?;
        store.for_each_reading::<ReportError>(&opts.query, |r| {
            sink.reading(r)?;
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
        let mut sink = Sink::new(opts.format, out, AGGREGATE_HEADER)?;
        store.for_each_aggregate::<ReportError>(opts.resolution, &opts.query, |a| {
            sink.aggregate(a)
        })?;
        sink.finish()
    }
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
