//! `anemone stats`: the summary of one station-local day.
//!
//! Per sensor and quantity: count, min and max with their local times, mean (unflagged
//! readings only; flagged ones are counted apart), then the day's rain total (sum of
//! `rain`) and highest wind gust. The default day is the latest local day with data.
//! Days follow the station zone and are 23 or 25 hours long on DST change days.
//! Values are shown in the unit system asked for (`--units`, [`crate::units`]); the
//! database keeps SI.
//!
//! A last line counts how many of the day's readings each QC check flagged (from the raw
//! readings, while retention keeps them; a reading can be flagged by several checks).

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::config::qc::CONSISTENCY;
use crate::reading::{format_ts, Flags, Quantity, Timestamp};
use crate::store::{local_day_bounds, Aggregate, Query, Store};
use crate::units::{display_rounded, display_sum, display_unit, display_value, UnitSystem};

use super::ReportError;

struct Day {
    day: NaiveDate,
    start: Timestamp,
    end: Timestamp,
    rows: Vec<Aggregate>,
}

fn load(store: &Store, day: Option<NaiveDate>) -> Result<Day, ReportError> {
    let day = match day {
        Some(d) => d,
        None => match store.days()?.last() {
            Some(d) => *d,
            None => {
                return Err(ReportError::NoData(format!(
                    "{} holds no readings yet",
                    store.path().display()
                )))
            }
        },
    };
    let (start, end) = local_day_bounds(store.tz(), day);
    let mut rows = store.day_summary(day)?;
    rows.sort_by(|a, b| (&a.sensor, a.quantity).cmp(&(&b.sensor, b.quantity)));
    Ok(Day {
        day,
        start,
        end,
        rows,
    })
}

/// How many readings of a day each QC check flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QcCounts {
    /// Raw readings of the day still held (0 once retention removed them).
    pub readings: u64,
    /// `out_of_range`, `spike`, `stuck`, `sensor_error`, `off_station`, `inconsistent`.
    pub by_flag: [(Flags, &'static str, u64); 6],
    /// `inconsistent` by check: dew point above the air temperature, humidity above
    /// 100 %, gust below its mean ([`CONSISTENCY`]).
    pub by_consistency: [(Quantity, &'static str, u64); 3],
}

/// Counts the QC flags of the readings in `[start, end)`.
pub fn qc_counts(store: &Store, start: Timestamp, end: Timestamp) -> Result<QcCounts, ReportError> {
    let mut c = QcCounts {
        readings: 0,
        by_flag: [
            (Flags::OUT_OF_RANGE, "out_of_range", 0),
            (Flags::SPIKE, "spike", 0),
            (Flags::STUCK, "stuck", 0),
            (Flags::INCONSISTENT, "inconsistent", 0),
            (Flags::SENSOR_ERROR, "sensor_error", 0),
            (Flags::OFF_STATION, "off_station", 0),
        ],
        by_consistency: CONSISTENCY.map(|(q, what)| (q, what, 0)),
    };
    let q = Query {
        from: Some(start),
        to: Some(end),
        ..Query::default()
    };
    store.for_each_reading::<ReportError>(&q, |r| {
        c.readings += 1;
        let flags = r.reading.flags;
        if flags.is_ok() {
            return Ok(());
        }
        for (f, _, n) in c.by_flag.iter_mut() {
            if flags.contains(*f) {
                *n += 1;
            }
        }
        if flags.contains(Flags::INCONSISTENT) {
            for (q, _, n) in c.by_consistency.iter_mut() {
                if *q == r.reading.quantity {
                    *n += 1;
                }
            }
        }
        Ok(())
    })?;
    Ok(c)
}

/// The `stats` line of [`QcCounts`].
fn qc_line(c: &QcCounts) -> String {
    if c.readings == 0 {
        return "QC checks: the raw readings of this day are no longer kept (retention); the flagged column above still counts them.\n".to_string();
    }
    let checks: Vec<String> = c
        .by_flag
        .iter()
        .map(|(f, name, n)| {
            if *f == Flags::INCONSISTENT {
                let each: Vec<String> = c
                    .by_consistency
                    .iter()
                    .map(|(_, what, n)| format!("{what} {n}"))
                    .collect();
                format!("{name} {n} ({})", each.join(", "))
            } else {
                format!("{name} {n}")
            }
        })
        .collect();
    format!(
        "QC checks flagged ({} readings): {}\n",
        c.readings,
        checks.join(", ")
    )
}

fn local(tz: Tz, ts: Timestamp) -> String {
    match chrono::DateTime::from_timestamp_millis(ts) {
        Some(t) => t.with_timezone(&tz).format("%H:%M %Z").to_string(),
        None => format_ts(ts),
    }
}

/// The rain fallen over `rows` (the sum of their `rain` buckets), `None` without any.
pub fn rain_total(rows: &[Aggregate]) -> Option<f64> {
    let rain: Vec<&Aggregate> = rows
        .iter()
        .filter(|a| a.quantity == Quantity::Rain)
        .collect();
    (!rain.is_empty()).then(|| rain.iter().map(|a| a.sum).sum())
}

/// The highest `wind_gust` of `rows`: value, time and sensor.
pub fn max_gust(rows: &[Aggregate]) -> Option<(f64, Timestamp, &str)> {
    rows.iter()
        .filter(|a| a.quantity == Quantity::WindGust)
        .filter_map(|a| a.max.map(|(v, t)| (v, t, a.sensor.as_str())))
        .fold(None, |best: Option<(f64, Timestamp, &str)>, x| match best {
            Some(b) if b.0 >= x.0 => Some(b),
            _ => Some(x),
        })
}

fn number(v: f64) -> String {
    format!("{v:.2}")
}

/// The day's summary as an aligned text table, in metric units (`day` defaults to the
/// latest day with data; times are shown in `tz`).
pub fn stats(store: &Store, day: Option<NaiveDate>, tz: Tz) -> Result<String, ReportError> {
    stats_in(store, day, tz, UnitSystem::Metric)
}

/// [`stats`] with values shown in `units`.
pub fn stats_in(
    store: &Store,
    day: Option<NaiveDate>,
    tz: Tz,
    units: UnitSystem,
) -> Result<String, ReportError> {
    let d = load(store, day)?;
    let hours = (d.end - d.start) / 3_600_000;
    let mut out = format!(
        "Station day {} ({}, {} h, {} to {})\n\n",
        d.day,
        tz.name(),
        hours,
        local(tz, d.start),
        local(tz, d.end)
    );
    if d.rows.is_empty() {
        out.push_str("No readings on this day.\n");
        return Ok(out);
    }
    let header = [
        "sensor", "quantity", "unit", "count", "flagged", "min", "min at", "max", "max at", "mean",
    ];
    let mut table: Vec<[String; 10]> = vec![header.map(String::from)];
    for a in &d.rows {
        let q = a.quantity;
        let shown = |v: f64| number(display_value(q, v, units));
        let (min, min_at) = a
            .min
            .map_or((String::from("-"), String::from("-")), |(v, t)| {
                (shown(v), local(tz, t))
            });
        let (max, max_at) = a
            .max
            .map_or((String::from("-"), String::from("-")), |(v, t)| {
                (shown(v), local(tz, t))
            });
        table.push([
            a.sensor.clone(),
            q.as_str().to_string(),
            display_unit(q, units).to_string(),
            a.count.to_string(),
            a.flagged.to_string(),
            min,
            min_at,
            max,
            max_at,
            a.mean().map_or(String::from("-"), shown),
        ]);
    }
    let mut widths = [0usize; 10];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Text columns left-aligned, numbers right-aligned.
    let right = [
        false, false, false, true, true, true, false, true, false, true,
    ];
    for row in &table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            if right[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    match rain_total(&d.rows) {
        Some(mm) => out.push_str(&format!(
            "Rain total: {} {}\n",
            number(display_sum(Quantity::Rain, mm, 0, units)),
            display_unit(Quantity::Rain, units)
        )),
        None => out.push_str("Rain total: no rain readings\n"),
    }
    match max_gust(&d.rows) {
        Some((v, t, s)) => out.push_str(&format!(
            "Max wind gust: {} {} at {} ({s})\n",
            number(display_value(Quantity::WindGust, v, units)),
            display_unit(Quantity::WindGust, units),
            local(tz, t)
        )),
        None => out.push_str("Max wind gust: no gust readings\n"),
    }
    if d.rows.iter().any(|a| a.flagged > 0) {
        out.push_str(
            "Flagged readings (QC) are counted apart and left out of min, max and mean.\n",
        );
    }
    out.push_str(&qc_line(&qc_counts(store, d.start, d.end)?));
    Ok(out)
}

/// The day's summary as JSON (`anemone stats --json`), in metric units.
pub fn stats_json(store: &Store, day: Option<NaiveDate>, tz: Tz) -> Result<Value, ReportError> {
    stats_json_in(store, day, tz, UnitSystem::Metric)
}

/// [`stats_json`] in `units`: values and `unit` in `units`
/// (imperial values rounded to the unit table's decimals); `rain_total_mm` stays in mm for
/// scripts written before `--units`, `rain_total` is in the unit shown.
pub fn stats_json_in(
    store: &Store,
    day: Option<NaiveDate>,
    tz: Tz,
    units: UnitSystem,
) -> Result<Value, ReportError> {
    let d = load(store, day)?;
    let series: Vec<Value> = d
        .rows
        .iter()
        .map(|a| {
            let q = a.quantity;
            let shown = |v: f64| display_rounded(q, v, units);
            json!({
                "sensor": a.sensor,
                "quantity": q.as_str(),
                "unit": display_unit(q, units),
                "count": a.count,
                "flagged": a.flagged,
                "min": a.min.map(|m| shown(m.0)),
                "min_ts": a.min.map(|m| format_ts(m.1)),
                "min_local": a.min.map(|m| local(tz, m.1)),
                "max": a.max.map(|m| shown(m.0)),
                "max_ts": a.max.map(|m| format_ts(m.1)),
                "max_local": a.max.map(|m| local(tz, m.1)),
                "mean": a.mean().map(shown),
                "sum": display_sum(q, a.sum, a.count, units),
            })
        })
        .collect();
    let rain = rain_total(&d.rows);
    let qc = qc_counts(store, d.start, d.end)?;
    let mut qc_json = serde_json::Map::new();
    qc_json.insert("readings".into(), json!(qc.readings));
    for (_, name, n) in qc.by_flag {
        qc_json.insert(name.into(), json!(n));
    }
    qc_json.insert(
        "inconsistent_by_quantity".into(),
        Value::Object(
            qc.by_consistency
                .iter()
                .map(|(q, _, n)| (q.as_str().to_string(), json!(n)))
                .collect(),
        ),
    );
    Ok(json!({
        "qc": qc_json,
        "day": d.day.to_string(),
        "timezone": tz.name(),
        "start": format_ts(d.start),
        "end": format_ts(d.end),
        "hours": (d.end - d.start) / 3_600_000,
        "units": units,
        "series": series,
        "rain_total_mm": rain,
        "rain_total": rain.map(|mm| json!({
            "value": display_rounded(Quantity::Rain, mm, units),
            "unit": display_unit(Quantity::Rain, units),
        })),
        "max_gust": max_gust(&d.rows).map(|(v, t, s)| json!({
            "value": display_rounded(Quantity::WindGust, v, units),
            "unit": display_unit(Quantity::WindGust, units),
            "ts": format_ts(t),
            "local": local(tz, t),
            "sensor": s,
        })),
    }))
}
