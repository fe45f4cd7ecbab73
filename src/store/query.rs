//! Reading back: raw readings and aggregates by time, sensor and quantity, streamed in
//! pages of a few thousand rows.
//!
//! `readings` has no index on `ts`: a time range is mapped to rowid ranges through the
//! hour buckets' `first_id` and `last_id` (persisted and in memory), plus everything
//! stored after the last persist. Aggregate queries merge the persisted buckets with the
//! newer ones still in memory, the newer winning.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::params;

use super::aggregate::{Bucket, Key, BUCKET_COLUMNS, HOUR_MS, MAX_DAY_MS};
use super::{local_date, local_day_bounds, schema, Resolution, Store, StoreError, StoredReading};
use crate::reading::{Flags, Quantity, Reading, Timestamp};

/// (start, sensor id, quantity code) of a bucket within one resolution.
type SeriesBucket = (i64, i64, i64);

/// Rows read per page by the streaming queries (bounds memory and read-snapshot length).
pub(super) const PAGE: i64 = 5_000;

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
    /// A compass direction's sums of the sines and cosines of the counted values (see
    /// `aggregate::Bucket::vector`); `None` for other quantities.
    pub vector: Option<(f64, f64)>,
}

impl Aggregate {
    /// Mean of the counted values, `None` when nothing was counted. A direction's is the
    /// circular mean ([`circular_mean`](crate::reading::circular_mean): 0–360°, none where
    /// the directions cancel out), or for a bucket stored before schema version 6 whose
    /// readings were gone by the upgrade, the mean it had (around the running mean).
    pub fn mean(&self) -> Option<f64> {
        if self.quantity.is_direction() {
            if let Some((sin, cos)) = self.vector {
                return crate::reading::circular_mean(sin, cos, self.count);
            }
        }
        let m = (self.count > 0).then(|| self.sum / self.count as f64)?;
        if self.quantity.is_direction() {
            Some(crate::reading::compass(m))
        } else {
            Some(m)
        }
    }
}

impl Store {
    pub(super) fn row_reading(&self, row: &rusqlite::Row<'_>) -> Result<StoredReading, StoreError> {
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
        // One quantity (a chart): a range of the primary key (resolution, quantity, start,
        // sensor), only that quantity's rows, already in order. Every quantity: through
        // `aggregates_by_time` (resolution, start, sensor, quantity). See migration 4.
        let sql = match quantity {
            Some(_) => format!(
                "SELECT start, sensor, quantity, {BUCKET_COLUMNS} FROM aggregates \
                 WHERE resolution = ?1 AND quantity = ?9 AND (start, sensor) >= (?2, ?3) \
                 AND (start, sensor, quantity) {op} (?2, ?3, ?4) \
                 AND start < ?5 AND end > ?6 AND (?7 IS NULL OR sensor = ?7) \
                 ORDER BY start, sensor LIMIT ?8"
            ),
            None => format!(
                "SELECT start, sensor, quantity, {BUCKET_COLUMNS} FROM aggregates \
                 WHERE resolution = ?1 AND (start, sensor, quantity) {op} (?2, ?3, ?4) \
                 AND start < ?5 AND end > ?6 AND (?7 IS NULL OR sensor = ?7) \
                 ORDER BY start, sensor, quantity LIMIT ?8"
            ),
        };
        let mut stmt = self.db(self.conn.prepare_cached(&sql))?;
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![
            &code, &after.0, &after.1, &after.2, &to, &from, &sensor, &PAGE,
        ];
        if let Some(q) = &quantity {
            args.push(q);
        }
        let rows = self.db(stmt.query_map(args.as_slice(), |r| {
            Ok(((r.get(0)?, r.get(1)?, r.get(2)?), Bucket::from_row(r, 3)?))
        }))?;
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
            vector: b.vector,
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
}

struct ReadingPage {
    rows: Vec<StoredReading>,
    last_id: Option<i64>,
    full: bool,
}

/// What the raw readings table holds (for the web page's health panel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extent {
    /// Raw readings kept: the span of ids in the table (readings are deleted oldest
    /// first, so this is exact unless ids were skipped, e.g. by a crash).
    pub readings: u64,
    /// The oldest reading's time.
    pub oldest: Option<Timestamp>,
    /// The newest reading's time.
    pub newest: Option<Timestamp>,
    /// The highest reading id (0 when empty).
    pub last_id: i64,
}

impl Store {
    /// What the raw table holds, from its first and last rows (no table scan).
    pub fn extent(&self) -> Result<Extent, StoreError> {
        let (lo, hi): (Option<i64>, Option<i64>) = self.db(self
            .conn
            // Two subqueries, each one end of the primary key: `min(id), max(id)` in
            // one SELECT is not optimised and scans every row (~0.2 s a year here).
            .query_row(
                "SELECT (SELECT min(id) FROM readings), (SELECT max(id) FROM readings)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ))?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(Extent::default());
        };
        let oldest: Option<i64> =
            self.db(self
                .conn
                .query_row("SELECT ts FROM readings WHERE id = ?1", [lo], |r| r.get(0)))?;
        Ok(Extent {
            readings: (hi - lo + 1).max(0) as u64,
            oldest,
            newest: self.last_reading_ts()?,
            last_id: hi,
        })
    }

    /// How many raw readings have an id above `id` (a range of the primary key: as cheap
    /// as the count is small, e.g. what MQTT still owes above its cursor).
    pub fn count_after(&self, id: i64) -> Result<u64, StoreError> {
        let n: i64 = self.db(self.conn.query_row(
            "SELECT count(*) FROM readings WHERE id > ?1",
            [id],
            |r| r.get(0),
        ))?;
        Ok(n.max(0) as u64)
    }

    /// The newest reading of every (sensor, quantity) stored within `window_ms` of the
    /// newest reading, in (sensor, quantity) order.
    ///
    /// Bounded: no scan of the raw rows. Each series' newest hour bucket in the window
    /// (persisted, or in the overlay of newer ones) records the highest reading id it
    /// holds (`last_id`): that row is the series' newest reading (ids follow arrival,
    /// which is time order within a series), read by its id.
    pub fn latest_readings(&self, window_ms: i64) -> Result<Vec<StoredReading>, StoreError> {
        let Some(newest) = self.last_reading_ts()? else {
            return Ok(Vec::new());
        };
        let from = newest.saturating_sub(window_ms);
        let code = Resolution::Hour.code().unwrap_or(0);
        let hour = from.div_euclid(HOUR_MS) * HOUR_MS;
        // (sensor, quantity) -> (newest bucket start, its last id)
        let mut last: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
        let mut keep = |series: (i64, i64), start: i64, id: i64| {
            let e = last.entry(series).or_insert((start, id));
            if start >= e.0 {
                *e = (start, id);
            }
        };
        {
            let mut stmt = self.db(self.conn.prepare_cached(
                "SELECT sensor, quantity, start, last_id FROM aggregates \
                 WHERE resolution = ?1 AND start >= ?2",
            ))?;
            let rows = self.db(stmt.query_map(params![code, hour], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            }))?;
            for r in rows {
                let (sensor, quantity, start, id) = self.db(r)?;
                keep((sensor, quantity), start, id);
            }
        }
        {
            let overlay = self.overlay()?;
            for (k, b) in overlay
                .buckets
                .range((code, hour, i64::MIN, i64::MIN)..(code, i64::MAX, i64::MIN, i64::MIN))
            {
                keep((k.2, k.3), k.1, b.last_id);
            }
        }
        let mut stmt = self.db(self.conn.prepare_cached(
            "SELECT id, ts, sensor, quantity, value, flags FROM readings WHERE id = ?1",
        ))?;
        let mut latest: BTreeMap<(String, Quantity), StoredReading> = BTreeMap::new();
        for (_, id) in last.into_values() {
            let mut rows = self.db(stmt.query([id]))?;
            if let Some(row) = self.db(rows.next())? {
                let r = self.row_reading(row)?;
                if r.reading.ts >= from {
                    latest.insert((r.reading.sensor.to_string(), r.reading.quantity), r);
                }
            }
        }
        Ok(latest.into_values().collect())
    }
}
