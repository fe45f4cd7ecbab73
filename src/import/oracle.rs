//! The Oracle Weather Station's `WEATHER_MEASUREMENT` row, mapped to Anemone's quantities.
//!
//! The Raspberry Pi Foundation's logger (2016) wrote one row every few minutes (cron,
//! five minutes by default). What each column held, learnt from its code:
//!
//! | column | held | stored as |
//! | --- | --- | --- |
//! | `AMBIENT_TEMPERATURE` | HTU21D, °C | `air_temperature` °C |
//! | `GROUND_TEMPERATURE` | DS18B20 probe, °C | `ground_temperature` °C |
//! | `HUMIDITY` | HTU21D, % | `relative_humidity` % |
//! | `AIR_PRESSURE` | BMP180, hPa (the very first release wrote kPa) | `air_pressure` hPa |
//! | `WIND_DIRECTION` | vane, degrees; `NULL` when no direction matched | `wind_direction` ° |
//! | `WIND_SPEED` | km/h, mean since the previous row | `wind_speed` m/s |
//! | `WIND_GUST_SPEED` | km/h, the largest 5-s count since the previous row | `wind_gust` m/s |
//! | `RAINFALL` | mm fallen since the previous row (counter reset after each row) | `rain` mm |
//! | `AIR_QUALITY` | a percentage of the ADC's range, no physical unit | not imported |
//! | `CREATED` | the Pi's local time when the row was written | `ts`, UTC |
//!
//! A pressure below 200 can only be kPa (no station reads 200 hPa): it is multiplied by
//! ten. A `NULL` skips that quantity of the row only.

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::Value;
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// The table's name.
pub const TABLE: &str = "WEATHER_MEASUREMENT";

/// The Foundation's `create.sql` column order (what an `INSERT` without a column list
/// follows when the dump has no `CREATE TABLE`).
pub const COLUMNS: &[&str] = &[
    "ID",
    "REMOTE_ID",
    "AMBIENT_TEMPERATURE",
    "GROUND_TEMPERATURE",
    "AIR_QUALITY",
    "AIR_PRESSURE",
    "HUMIDITY",
    "WIND_DIRECTION",
    "WIND_SPEED",
    "WIND_GUST_SPEED",
    "RAINFALL",
    "CREATED",
];

/// A conversion from the old column's unit to the quantity's.
type Convert = fn(f64) -> f64;

/// The imported columns, their quantity and the conversion to its unit.
const MAPPED: &[(&str, Quantity, Convert)] = &[
    ("AMBIENT_TEMPERATURE", Quantity::AirTemperature, same),
    ("GROUND_TEMPERATURE", Quantity::GroundTemperature, same),
    ("HUMIDITY", Quantity::RelativeHumidity, same),
    ("AIR_PRESSURE", Quantity::AirPressure, pressure_hpa),
    ("WIND_DIRECTION", Quantity::WindDirection, same),
    ("WIND_SPEED", Quantity::WindSpeed, kmh_to_ms),
    ("WIND_GUST_SPEED", Quantity::WindGust, kmh_to_ms),
    ("RAINFALL", Quantity::Rain, same),
];

fn same(v: f64) -> f64 {
    v
}

/// km/h → m/s.
pub fn kmh_to_ms(v: f64) -> f64 {
    v / 3.6
}

/// hPa, from hPa or (the first release) kPa.
pub fn pressure_hpa(v: f64) -> f64 {
    if v.abs() < 200.0 {
        v * 10.0
    } else {
        v
    }
}

/// How `CREATED` values are to be read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeBasis {
    /// Already UTC (a server session in `+00:00`, a dump written with `--tz-utc`).
    Utc,
    /// Local wall time in this zone.
    Local(Tz),
}

/// Where each column of the source is, found once from its column names.
#[derive(Debug, Clone)]
pub struct Layout {
    id: usize,
    created: usize,
    mapped: Vec<(usize, Quantity, Convert)>,
    width: usize,
}

impl Layout {
    /// The layout of `columns` (names, any case); an error names a missing column.
    pub fn new(columns: &[String]) -> Result<Layout, String> {
        let find = |name: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(name));
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                format!(
                    "the table has no `{name}` column (it has {}): is it the Oracle Weather \
                     Station's {TABLE}?",
                    columns.join(", ")
                )
            })
        };
        Ok(Layout {
            id: need("ID")?,
            created: need("CREATED")?,
            mapped: MAPPED
                .iter()
                .filter_map(|(c, q, f)| find(c).map(|i| (i, *q, *f)))
                .collect(),
            width: columns.len(),
        })
    }

    /// The row's id and readings; an error says what is wrong with it.
    pub fn row(
        &self,
        values: &[Value],
        sensor: &SensorId,
        basis: TimeBasis,
    ) -> Result<(i64, Vec<Reading>), String> {
        if values.len() != self.width {
            return Err(format!(
                "{} values for {} columns",
                values.len(),
                self.width
            ));
        }
        let id = match &values[self.id] {
            Value::Text(t) => t
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("ID `{t}` is not a whole number"))?,
            Value::Null => return Err("ID is NULL".into()),
        };
        let ts = match &values[self.created] {
            Value::Text(t) => created_ms(t, basis)?,
            Value::Null => return Err(format!("row {id}: CREATED is NULL")),
        };
        let mut out = Vec::with_capacity(self.mapped.len());
        for (i, q, f) in &self.mapped {
            let v = match &values[*i] {
                Value::Null => continue,
                Value::Text(t) => t
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("row {id}: {} `{t}` is not a number", column_of(*q)))?,
            };
            out.push(Reading::new(ts, sensor, *q, f(v)));
        }
        Ok((id, out))
    }
}

/// The column a quantity comes from (for messages).
#[allow(non_snake_case)]
fn column_of(q: Quantity) -> &'static str {
    MAPPED
        .iter()
        .find(|(_, m, _)| *m == q)
        .map_or("a value", |(c, _, _)| c)
}

/// `CREATED` (`YYYY-MM-DD HH:MM:SS[.ffffff]`) as UTC milliseconds.
pub fn created_ms(text: &str, basis: TimeBasis) -> Result<Timestamp, String> {
    let t = text.trim();
    let naive = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| {
            format!("CREATED `{t}` is not a time (YYYY-MM-DD HH:MM:SS): fix or delete the row")
        })?;
    let utc = match basis {
        TimeBasis::Utc => naive.and_utc(),
        TimeBasis::Local(tz) => match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => t.with_timezone(&chrono::Utc),
            // The hour the clocks went back happens twice; the logger could not say
            // which: the first is taken.
            chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&chrono::Utc),
            chrono::LocalResult::None => {
                return Err(format!(
                    "CREATED `{t}` never happened in {tz} (the clocks went forward): the \
                     zone is wrong (--timezone) or the row is damaged"
                ))
            }
        },
    };
    Ok(utc.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text(v: &[Option<&str>]) -> Vec<Value> {
        v.iter()
            .map(|x| x.map_or(Value::Null, |t| Value::Text(t.to_string())))
            .collect()
    }

    #[test]
    fn units_and_nulls() {
        let cols: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        let l = Layout::new(&cols).unwrap();
        let s: SensorId = Arc::from("oracle-import");
        let row = text(&[
            Some("7"),
            None,
            Some("21.5"),
            Some("12.25"),
            Some("57.1"),
            Some("101.3"),
            Some("80"),
            None,
            Some("36"),
            Some("72"),
            Some("0.28"),
            Some("2017-07-01 14:05:00"),
        ]);
        let (id, r) = l
            .row(&row, &s, TimeBasis::Local(chrono_tz::Europe::London))
            .unwrap();
        assert_eq!(id, 7);
        let get = |q| r.iter().find(|x| x.quantity == q).and_then(|x| x.value);
        assert_eq!(get(Quantity::AirTemperature), Some(21.5));
        assert_eq!(get(Quantity::GroundTemperature), Some(12.25));
        assert_eq!(get(Quantity::AirPressure), Some(1013.0));
        assert_eq!(get(Quantity::RelativeHumidity), Some(80.0));
        assert_eq!(
            get(Quantity::WindDirection),
            None,
            "NULL skips that quantity only"
        );
        assert_eq!(get(Quantity::WindSpeed), Some(10.0));
        assert_eq!(get(Quantity::WindGust), Some(20.0));
        assert_eq!(get(Quantity::Rain), Some(0.28));
        assert_eq!(r.len(), 7, "air quality is not imported");
        // 14:05 BST is 13:05 UTC.
        assert_eq!(
            r[0].ts,
            created_ms("2017-07-01 13:05:00", TimeBasis::Utc).unwrap()
        );
    }

    #[test]
    fn bad_rows_say_why() {
        let cols: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        let l = Layout::new(&cols).unwrap();
        let s: SensorId = Arc::from("x");
        let mut row = text(&[Some("7"); 12]);
        row[11] = Value::Text("0000-00-00 00:00:00".into());
        let e = l.row(&row, &s, TimeBasis::Utc).unwrap_err();
        assert!(e.contains("not a time"), "{e}");
        row[11] = Value::Text("2017-03-26 01:30:00".into());
        let e = l
            .row(&row, &s, TimeBasis::Local(chrono_tz::Europe::London))
            .unwrap_err();
        assert!(e.contains("clocks went forward"), "{e}");
        row[8] = Value::Text("fast".into());
        let e = l.row(&row, &s, TimeBasis::Utc).unwrap_err();
        assert!(e.contains("WIND_SPEED `fast`"), "{e}");
        let e = Layout::new(&["ID".to_string()]).unwrap_err();
        assert!(e.contains("`CREATED`"), "{e}");
    }
}
