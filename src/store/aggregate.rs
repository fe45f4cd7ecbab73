//! Per-minute, per-hour and per-local-day aggregates, kept in memory and persisted at a
//! coarser interval.
//!
//! A bucket holds count, sum, min and max (each with its time) of the *unflagged* readings
//! that have a finite value (for a compass direction also the sums of their sines and
//! cosines, whose vector gives the mean direction), and counts the others (`flagged`: QC
//! flags or no value). It also keeps the lowest and highest reading id it contains, so hour
//! buckets double as a sparse time index into the raw table.
//!
//! Persistence is incremental and exact: the `meta` key
//! [`META_AGG_THROUGH`](super::schema::META_AGG_THROUGH) records the highest reading id
//! folded into the persisted buckets, written in the same transaction as the buckets. On
//! open, every reading with a higher id is folded again into the persisted buckets it
//! touches, so a crash between two persists loses nothing from any summary.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use rusqlite::{params, Connection, OptionalExtension};

use super::error::classify;
use super::{schema, Store, StoreError};
use crate::reading::{Flags, Timestamp};

/// One minute in ms.
pub const MINUTE_MS: i64 = 60_000;
/// One hour in ms.
pub const HOUR_MS: i64 = 3_600_000;
/// Longest possible local day (25 h on a DST fall-back day), plus slack for zones that
/// once shifted by more than an hour.
pub const MAX_DAY_MS: i64 = 27 * HOUR_MS;

/// Clean buckets whose end is this far behind the newest reading are dropped from memory.
const EVICT_AFTER_MS: i64 = 10 * MINUTE_MS;

/// Time resolution of a query or export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// Every reading.
    Raw,
    /// UTC minutes.
    Minute,
    /// UTC hours.
    Hour,
    /// Station-local days (IANA zone from the config, DST-safe).
    Day,
}

impl Resolution {
    /// The aggregate resolutions, finest first.
    pub const AGGREGATES: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    /// The stored code (`None` for [`Resolution::Raw`], which has no buckets).
    pub fn code(self) -> Option<i64> {
        match self {
            Resolution::Raw => None,
            Resolution::Minute => Some(1),
            Resolution::Hour => Some(2),
            Resolution::Day => Some(3),
        }
    }

    /// The public name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resolution name other than `raw`, `minute`, `hour` or `day`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resolution `{0}`: use raw, minute, hour or day")]
pub struct UnknownResolution(pub String);

impl FromStr for Resolution {
    type Err = UnknownResolution;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raw" => Ok(Resolution::Raw),
            "minute" => Ok(Resolution::Minute),
            "hour" => Ok(Resolution::Hour),
            "day" => Ok(Resolution::Day),
            other => Err(UnknownResolution(other.to_string())),
        }
    }
}

/// The first instant of local day `date` in `tz`: local midnight, or the first local time
/// that exists when a DST gap swallows midnight.
pub fn local_day_start(tz: Tz, date: NaiveDate) -> Timestamp {
    let mut t = date.and_time(chrono::NaiveTime::MIN);
    for _ in 0..(24 * 4) {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.timestamp_millis();
        }
        t += chrono::Duration::minutes(15);
    }
    date.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_millis()
}

/// `[start, end)` of local day `date`: 24 h, or 23 h / 25 h on DST change days.
pub fn local_day_bounds(tz: Tz, date: NaiveDate) -> (Timestamp, Timestamp) {
    let next = date.succ_opt().unwrap_or(date);
    (local_day_start(tz, date), local_day_start(tz, next))
}

/// The local date of instant `ts` in `tz`.
pub fn local_date(tz: Tz, ts: Timestamp) -> NaiveDate {
    match chrono::Utc.timestamp_millis_opt(ts).single() {
        Some(t) => t.with_timezone(&tz).date_naive(),
        None => NaiveDate::MIN,
    }
}

/// Bucket key in memory: (resolution code, start, sensor id, quantity code), time first
/// (the newest buckets, and the ones to evict, are found by time). On disk the key leads
/// with the quantity (migration 4).
pub type Key = (i64, Timestamp, i64, i64);

/// One bucket's running summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// End of the bucket (exclusive).
    pub end: Timestamp,
    /// Unflagged readings with a finite value.
    pub count: u64,
    /// Readings left out: flagged by QC or without a value.
    pub flagged: u64,
    /// Lowest value and when it was first seen.
    pub min: Option<(f64, Timestamp)>,
    /// Highest value and when it was first seen.
    pub max: Option<(f64, Timestamp)>,
    /// Sum of the counted values (for a direction, unwrapped: see [`Bucket::add`]).
    pub sum: f64,
    /// For a compass direction: the sums of the sines and of the cosines of the counted
    /// values, whose vector sum gives the mean direction. `None` for other quantities, and
    /// for a direction bucket stored before schema version 6 whose readings were gone when
    /// the upgrade filled the others in (its mean is then the older one, from `sum`).
    pub vector: Option<(f64, f64)>,
    /// Lowest reading id in the bucket (counted or not).
    pub first_id: i64,
    /// Highest reading id in the bucket (counted or not).
    pub last_id: i64,
    /// Changed since it was last persisted.
    pub dirty: bool,
}

impl Bucket {
    fn empty(end: Timestamp, circular: bool) -> Bucket {
        Bucket {
            end,
            count: 0,
            flagged: 0,
            min: None,
            max: None,
            sum: 0.0,
            vector: circular.then_some((0.0, 0.0)),
            first_id: i64::MAX,
            last_id: i64::MIN,
            dirty: true,
        }
    }

    /// Adds one reading. For a compass direction (`circular`), `vector` adds the angle's
    /// sine and cosine: the mean direction is that of the vector sum
    /// ([`Aggregate::mean`](super::Aggregate::mean)), the same for a set of directions in
    /// any order. Speeds are in other rows, so it is the unweighted mean of the
    /// directions. `sum` adds the angle unwrapped to within ±180° of the running mean of
    /// `sum` (what buckets before schema version 6 averaged; kept for them and for the
    /// exported `sum`).
    fn add(&mut self, id: i64, ts: Timestamp, value: Option<f64>, flags: Flags, circular: bool) {
        self.first_id = self.first_id.min(id);
        self.last_id = self.last_id.max(id);
        self.dirty = true;
        match value {
            Some(v) if flags.is_ok() && v.is_finite() => {
                let unwrapped = if circular && self.count > 0 {
                    let mean = self.sum / self.count as f64;
                    mean + (v - mean + 180.0).rem_euclid(360.0) - 180.0
                } else {
                    v
                };
                if circular {
                    if self.count == 0 && self.vector.is_none() {
                        self.vector = Some((0.0, 0.0));
                    }
                    if let Some((sin, cos)) = &mut self.vector {
                        let r = v.to_radians();
                        *sin += r.sin();
                        *cos += r.cos();
                    }
                }
                self.count += 1;
                self.sum += unwrapped;
                if self.min.is_none_or(|(m, _)| v < m) {
                    self.min = Some((v, ts));
                }
                if self.max.is_none_or(|(m, _)| v > m) {
                    self.max = Some((v, ts));
                }
            }
            _ => self.flagged += 1,
        }
    }

    /// Reads a bucket from an `aggregates` row whose columns start at `end`.
    pub fn from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Bucket> {
        let min: Option<f64> = row.get(first + 3)?;
        let min_ts: Option<i64> = row.get(first + 4)?;
        let max: Option<f64> = row.get(first + 5)?;
        let max_ts: Option<i64> = row.get(first + 6)?;
        let sin: Option<f64> = row.get(first + 10)?;
        let cos: Option<f64> = row.get(first + 11)?;
        Ok(Bucket {
            end: row.get(first)?,
            count: row.get::<_, i64>(first + 1)?.max(0) as u64,
            flagged: row.get::<_, i64>(first + 2)?.max(0) as u64,
            min: min.zip(min_ts),
            max: max.zip(max_ts),
            sum: row.get(first + 7)?,
            vector: sin.zip(cos),
            first_id: row.get(first + 8)?,
            last_id: row.get(first + 9)?,
            dirty: false,
        })
    }
}

/// The columns [`Bucket::from_row`] reads, in order.
pub const BUCKET_COLUMNS: &str =
    "end, count, flagged, min, min_ts, max, max_ts, sum, first_id, last_id, sum_sin, sum_cos";

/// The in-memory aggregates.
#[derive(Debug, Clone)]
pub struct AggState {
    tz: Tz,
    /// Every bucket touched since it was last persisted and evicted.
    pub buckets: BTreeMap<Key, Bucket>,
    /// Highest reading id folded in.
    pub through_id: i64,
    /// Highest reading id folded into the persisted buckets.
    pub persisted_through: i64,
    latest_ts: Timestamp,
    day: Option<(Timestamp, Timestamp)>,
}

impl AggState {
    /// Empty state for a database whose persisted buckets cover ids up to `persisted`.
    pub fn new(tz: Tz, persisted: i64) -> AggState {
        AggState {
            tz,
            buckets: BTreeMap::new(),
            through_id: persisted,
            persisted_through: persisted,
            latest_ts: Timestamp::MIN,
            day: None,
        }
    }

    /// `[start, end)` of the bucket of `res` that holds `ts`.
    pub fn bounds(&mut self, res: Resolution, ts: Timestamp) -> (Timestamp, Timestamp) {
        match res {
            Resolution::Raw => (ts, ts + 1),
            Resolution::Minute => {
                let s = ts.div_euclid(MINUTE_MS) * MINUTE_MS;
                (s, s + MINUTE_MS)
            }
            Resolution::Hour => {
                let s = ts.div_euclid(HOUR_MS) * HOUR_MS;
                (s, s + HOUR_MS)
            }
            Resolution::Day => {
                if let Some((s, e)) = self.day {
                    if ts >= s && ts < e {
                        return (s, e);
                    }
                }
                let b = local_day_bounds(self.tz, local_date(self.tz, ts));
                self.day = Some(b);
                b
            }
        }
    }

    /// Adds one stored reading to its minute, hour and day buckets, loading a bucket that
    /// is not in memory from the database first (a late reading for an evicted bucket).
    #[allow(clippy::too_many_arguments)]
    pub fn fold(
        &mut self,
        conn: &Connection,
        id: i64,
        ts: Timestamp,
        sensor: i64,
        quantity: i64,
        value: Option<f64>,
        flags: Flags,
    ) -> rusqlite::Result<()> {
        let circular = schema::is_direction_code(quantity);
        for res in Resolution::AGGREGATES {
            let code = res.code().unwrap_or(0);
            let (start, end) = self.bounds(res, ts);
            let key = (code, start, sensor, quantity);
            let bucket = match self.buckets.entry(key) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(
                    load_bucket(conn, key)?.unwrap_or_else(|| Bucket::empty(end, circular)),
                ),
            };
            bucket.add(id, ts, value, flags, circular);
        }
        self.through_id = self.through_id.max(id);
        self.latest_ts = self.latest_ts.max(ts);
        Ok(())
    }

    /// Folds every reading with an id above [`AggState::through_id`]; returns how many.
    pub fn catch_up(&mut self, conn: &Connection) -> rusqlite::Result<u64> {
        let mut stmt = conn.prepare(
            "SELECT id, ts, sensor, quantity, value, flags FROM readings WHERE id > ?1 ORDER BY id",
        )?;
        let mut rows = stmt.query([self.through_id])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            let flags: i64 = row.get(5)?;
            self.fold(
                conn,
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                Flags::from_bits(flags as u8),
            )?;
            n += 1;
        }
        Ok(n)
    }

    /// Keys of the buckets changed since they were last persisted.
    pub fn dirty_keys(&self) -> Vec<Key> {
        self.buckets
            .iter()
            .filter(|(_, b)| b.dirty)
            .map(|(k, _)| *k)
            .collect()
    }

    /// After a successful persist of `keys` through id `through`: marks them clean and
    /// drops clean buckets that closed a while ago.
    pub fn persisted(&mut self, keys: &[Key], through: i64) {
        for k in keys {
            if let Some(b) = self.buckets.get_mut(k) {
                b.dirty = false;
            }
        }
        self.persisted_through = through;
        let horizon = self.latest_ts.saturating_sub(EVICT_AFTER_MS);
        self.buckets.retain(|_, b| b.dirty || b.end > horizon);
    }

    /// True when a bucket of `resolution` starting before `ts` is not yet persisted.
    pub fn has_dirty_before(&self, resolution: i64, ts: Timestamp) -> bool {
        self.buckets
            .iter()
            .any(|((r, start, ..), b)| b.dirty && *r == resolution && *start < ts)
    }

    /// True when something is not yet persisted.
    pub fn has_unpersisted(&self) -> bool {
        self.through_id > self.persisted_through || self.buckets.values().any(|b| b.dirty)
    }
}

/// Loads one persisted bucket.
pub fn load_bucket(conn: &Connection, key: Key) -> rusqlite::Result<Option<Bucket>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BUCKET_COLUMNS} FROM aggregates \
         WHERE resolution = ?1 AND start = ?2 AND sensor = ?3 AND quantity = ?4"
    ))?;
    stmt.query_row(params![key.0, key.1, key.2, key.3], |r| {
        Bucket::from_row(r, 0)
    })
    .optional()
}

/// Writes one bucket (insert or replace).
pub fn save_bucket(conn: &Connection, key: Key, b: &Bucket) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO aggregates (resolution, start, sensor, quantity, end, count, \
         flagged, min, min_ts, max, max_ts, sum, first_id, last_id, sum_sin, sum_cos) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    stmt.execute(params![
        key.0,
        key.1,
        key.2,
        key.3,
        b.end,
        b.count as i64,
        b.flagged as i64,
        b.min.map(|m| m.0),
        b.min.map(|m| m.1),
        b.max.map(|m| m.0),
        b.max.map(|m| m.1),
        b.sum,
        b.first_id,
        b.last_id,
        b.vector.map(|v| v.0),
        b.vector.map(|v| v.1),
    ])?;
    Ok(())
}

/// What [`fill_direction_vectors`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VectorFill {
    /// Direction buckets given their sums of sines and cosines.
    pub filled: u64,
    /// Direction buckets left without: their readings could not all be read back (retention
    /// deleted some, or their day was cut in an earlier time zone), so they keep the mean
    /// direction they had.
    pub left: u64,
}

/// Buckets whose end is this far behind the newest reading read go from memory to the
/// refill's temporary table (readings arrive in time order up to a few seconds of skew
/// between sensors, so few come back; those that do are added to what is there).
const FILL_SLACK_MS: i64 = HOUR_MS;

/// Gives the direction buckets stored before schema version 6 their sums of sines and
/// cosines, when migration 6 asked for it (`meta` key
/// [`META_DIRECTION_VECTORS_PENDING`](schema::META_DIRECTION_VECTORS_PENDING)), in the
/// caller's transaction (the migration's).
///
/// One pass over the readings in id order folds the direction readings the persisted
/// buckets hold (ids up to `aggregates_through_id`) into minute, hour and day buckets, cut
/// as the store cuts them now (day buckets in the zone last recorded in `meta`). A bucket
/// the readings have left an hour behind moves from memory to a temporary table, where
/// sums for the same bucket add up (a reading out of time order — a clock step, imported
/// history — lands in the right total). Then each stored bucket takes the sums whose
/// bucket has the same bounds and counts as many readings as it does: one whose readings
/// retention deleted, even in part, or whose day was cut in an earlier zone, keeps the mean
/// it had. Memory holds the last hour or so of buckets, not the table.
pub(super) fn fill_direction_vectors(
    conn: &Connection,
    tz: Tz,
) -> rusqlite::Result<Option<VectorFill>> {
    let meta = |key: &str| -> rusqlite::Result<Option<rusqlite::types::Value>> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
    };
    if meta(schema::META_DIRECTION_VECTORS_PENDING)?.is_none() {
        return Ok(None);
    }
    let through = match meta(schema::META_AGG_THROUGH)? {
        Some(rusqlite::types::Value::Integer(n)) => n,
        _ => 0,
    };
    let day_tz = match meta(schema::META_DAY_TZ)? {
        Some(rusqlite::types::Value::Text(name)) => name.parse::<Tz>().unwrap_or(tz),
        _ => tz,
    };
    let codes: Vec<String> = crate::reading::Quantity::ALL
        .iter()
        .filter(|q| q.is_direction())
        .map(|q| schema::quantity_code(*q).to_string())
        .collect();
    let codes = codes.join(", ");
    conn.execute_batch(
        "DROP TABLE IF EXISTS temp.direction_refill;
         CREATE TEMP TABLE direction_refill (
             resolution INTEGER NOT NULL, start INTEGER NOT NULL, sensor INTEGER NOT NULL,
             quantity INTEGER NOT NULL, end INTEGER NOT NULL, n INTEGER NOT NULL,
             sin REAL NOT NULL, cos REAL NOT NULL,
             PRIMARY KEY (resolution, start, sensor, quantity)) WITHOUT ROWID;",
    )?;
    let mut spill = conn.prepare(
        "INSERT INTO temp.direction_refill VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (resolution, start, sensor, quantity) DO UPDATE SET \
         n = n + excluded.n, sin = sin + excluded.sin, cos = cos + excluded.cos",
    )?;
    let mut spill = |key: &Key, b: Bucket| -> rusqlite::Result<()> {
        let (sin, cos) = b.vector.unwrap_or_default();
        let row = params![key.0, key.1, key.2, key.3, b.end, b.count as i64, sin, cos];
        spill.execute(row)?;
        Ok(())
    };
    let mut bounds = AggState::new(day_tz, 0);
    // Folded as the live store folds them (`Bucket::add`: what counts, and its sums).
    let mut open: BTreeMap<Key, Bucket> = BTreeMap::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT ts, sensor, quantity, value, flags FROM readings \
         WHERE id <= ?1 AND quantity IN ({codes}) ORDER BY id"
    ))?;
    let mut rows = stmt.query([through])?;
    let mut latest = Timestamp::MIN;
    let mut since_evict = 0u32;
    while let Some(row) = rows.next()? {
        let ts: Timestamp = row.get(0)?;
        let value: Option<f64> = row.get(3)?;
        let flags = Flags::from_bits(row.get::<_, i64>(4)? as u8);
        for res in Resolution::AGGREGATES {
            let (start, end) = bounds.bounds(res, ts);
            let key = (res.code().unwrap_or(0), start, row.get(1)?, row.get(2)?);
            let b = open.entry(key).or_insert_with(|| Bucket::empty(end, true));
            b.add(0, ts, value, flags, true);
        }
        latest = latest.max(ts);
        since_evict += 1;
        if since_evict >= 4096 {
            since_evict = 0;
            let horizon = latest.saturating_sub(FILL_SLACK_MS);
            let done: Vec<Key> = open
                .iter()
                .filter(|(_, b)| b.end < horizon)
                .map(|(k, _)| *k)
                .collect();
            for k in done {
                if let Some(e) = open.remove(&k) {
                    spill(&k, e)?;
                }
            }
        }
    }
    for (k, e) in std::mem::take(&mut open) {
        spill(&k, e)?;
    }
    let refilled = conn.execute(
        "UPDATE aggregates SET sum_sin = r.sin, sum_cos = r.cos FROM temp.direction_refill AS r \
         WHERE aggregates.resolution = r.resolution AND aggregates.start = r.start \
         AND aggregates.sensor = r.sensor AND aggregates.quantity = r.quantity \
         AND aggregates.end = r.end AND aggregates.count = r.n",
        [],
    )? as u64;
    // Buckets that counted nothing (every reading flagged) start from a zero vector.
    let zero = conn.execute(
        &format!(
            "UPDATE aggregates SET sum_sin = 0, sum_cos = 0 \
             WHERE sum_sin IS NULL AND count = 0 AND quantity IN ({codes})"
        ),
        [],
    )? as u64;
    let left = conn
        .query_row(
            &format!(
                "SELECT count(*) FROM aggregates WHERE sum_sin IS NULL AND quantity IN ({codes})"
            ),
            [],
            |r| r.get::<_, i64>(0),
        )?
        .max(0) as u64;
    conn.execute_batch("DROP TABLE temp.direction_refill;")?;
    conn.execute(
        "DELETE FROM meta WHERE key = ?1",
        [schema::META_DIRECTION_VECTORS_PENDING],
    )?;
    Ok(Some(VectorFill {
        filled: (refilled + zero) as u64,
        left,
    }))
}

impl Store {
    /// Rebuilds the in-memory aggregates: the persisted buckets plus every reading stored
    /// after them.
    pub(super) fn rebuild_aggregates(&mut self) -> Result<(), StoreError> {
        let through = self.meta_i64(schema::META_AGG_THROUGH)?.unwrap_or(0);
        let mut agg = AggState::new(self.tz, through);
        let n = self.db(agg.catch_up(&self.conn))?;
        if n > 0 {
            tracing::info!(path = %self.path.display(), readings = n,
                "Rebuilt aggregates from readings stored after the last persisted ones.");
        }
        self.agg = agg;
        self.agg_stale = false;
        Ok(())
    }

    /// Persists the in-memory aggregates (changed buckets and the id they cover) in one
    /// transaction.
    pub fn flush_aggregates(&mut self) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        if self.agg_stale {
            self.rebuild_aggregates()?;
        }
        if !self.agg.has_unpersisted() {
            return Ok(());
        }
        let keys = self.agg.dirty_keys();
        let through = self.agg.through_id;
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for k in &keys {
            if let Some(b) = self.agg.buckets.get(k) {
                save_bucket(&tx, *k, b).map_err(err)?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![schema::META_AGG_THROUGH, through],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        self.agg.persisted(&keys, through);
        Ok(())
    }

    /// The aggregates to overlay on the persisted ones: the writer's memory, or for a
    /// read-only store the readings stored after the last persist, folded.
    ///
    /// A read-only store keeps what it folded ([`Store::overlay_cache`]) and, while the
    /// persisted aggregates are the ones it was folded on (`aggregates_through_id`
    /// unchanged: the writer persists buckets and that id in one transaction), folds only
    /// the readings stored since. Readings are only appended above the highest id, so
    /// that is exact. A persist starts it afresh.
    pub(super) fn overlay(&self) -> Result<std::borrow::Cow<'_, AggState>, StoreError> {
        if !self.read_only && !self.agg_stale {
            return Ok(std::borrow::Cow::Borrowed(&self.agg));
        }
        let through = self.meta_i64(schema::META_AGG_THROUGH)?.unwrap_or(0);
        let mut cache = self.overlay_cache.borrow_mut();
        let agg = match cache.take() {
            Some(agg) if agg.persisted_through == through => agg,
            _ => AggState::new(self.tz, through),
        };
        let agg = cache.insert(agg);
        if let Err(e) = agg.catch_up(&self.conn) {
            *cache = None;
            return Err(classify(&self.path, e));
        }
        Ok(std::borrow::Cow::Owned(agg.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    }

    #[test]
    fn london_dst_days_are_23_and_25_hours() {
        let tz: Tz = chrono_tz::Europe::London;
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let (s, e) = local_day_bounds(tz, d("2026-03-29"));
        assert_eq!(s, ts("2026-03-29T00:00:00Z"));
        assert_eq!(e - s, 23 * HOUR_MS);
        let (s, e) = local_day_bounds(tz, d("2026-10-25"));
        assert_eq!(s, ts("2026-10-24T23:00:00Z"));
        assert_eq!(e - s, 25 * HOUR_MS);
        let (s, e) = local_day_bounds(tz, d("2026-07-01"));
        assert_eq!(s, ts("2026-06-30T23:00:00Z"));
        assert_eq!(e - s, 24 * HOUR_MS);
    }

    #[test]
    fn midnight_in_a_dst_gap_starts_the_day_at_the_first_valid_time() {
        // Chile moves clocks forward at local midnight in September.
        let tz: Tz = chrono_tz::America::Santiago;
        let day = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let (s, e) = local_day_bounds(tz, day);
        assert_eq!(local_date(tz, s), day);
        assert_eq!(local_date(tz, s - 1), day.pred_opt().unwrap());
        assert_eq!(e - s, 23 * HOUR_MS);
    }

    #[test]
    fn bucket_keeps_extremes_with_times_and_skips_flagged() {
        let mut b = Bucket::empty(0, false);
        b.add(1, 10, Some(5.0), Flags::OK, false);
        b.add(2, 20, Some(-3.0), Flags::OK, false);
        b.add(3, 30, Some(-99.0), Flags::OUT_OF_RANGE, false);
        b.add(4, 40, None, Flags::SENSOR_ERROR, false);
        b.add(5, 50, Some(5.0), Flags::OK, false);
        assert_eq!(b.count, 3);
        assert_eq!(b.flagged, 2);
        assert_eq!(b.min, Some((-3.0, 20)));
        assert_eq!(b.max, Some((5.0, 10)));
        assert_eq!(b.sum, 7.0);
        assert_eq!(b.vector, None);
        assert_eq!((b.first_id, b.last_id), (1, 5));
    }

    fn direction_mean(dirs: &[f64]) -> Option<f64> {
        let mut b = Bucket::empty(0, true);
        for (i, d) in dirs.iter().enumerate() {
            b.add(i as i64, i as i64, Some(*d), Flags::OK, true);
        }
        b.add(99, 99, Some(180.0), Flags::SPIKE, true);
        b.add(100, 100, Some(f64::NAN), Flags::OK, true);
        let (sin, cos) = b.vector?;
        crate::reading::circular_mean(sin, cos, b.count)
    }

    #[test]
    fn directions_average_across_north() {
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        let mean = direction_mean;
        assert!(
            close(mean(&[350.0, 10.0]), 0.0),
            "{:?}",
            mean(&[350.0, 10.0])
        );
        assert!(close(mean(&[10.0, 350.0]), 0.0));
        assert!(close(mean(&[340.0, 350.0, 10.0, 20.0]), 0.0));
        assert!(close(mean(&[90.0, 100.0]), 95.0));
        assert!(close(mean(&[0.0, 90.0, 180.0]), 90.0));
        assert!(close(mean(&[270.0, 300.0, 330.0, 0.0, 30.0]), 330.0));
        assert!(close(mean(&[359.0, 1.0, 0.0]), 0.0));
        // Opposite directions have no mean; nothing counted has none either.
        assert_eq!(mean(&[0.0, 180.0]), None);
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn a_direction_mean_is_the_vector_mean_in_any_order() {
        // atan2(sin 0 + sin 0 + sin 90, cos 0 + cos 0 + cos 90) = atan2(1, 2) = 26.565°.
        // Unwrapping each angle around the running mean gave 30° here, and a mean that
        // depended on the order the readings came in.
        let expected = 1f64.atan2(2.0).to_degrees();
        for order in [[0.0, 0.0, 90.0], [0.0, 90.0, 0.0], [90.0, 0.0, 0.0]] {
            let m = direction_mean(&order);
            assert!(
                m.is_some_and(|m| (m - expected).abs() < 1e-9),
                "{order:?}: {m:?}"
            );
        }
        let orders = [
            [300.0, 20.0, 150.0],
            [150.0, 300.0, 20.0],
            [20.0, 150.0, 300.0],
        ];
        let means: Vec<Option<f64>> = orders.iter().map(|o| direction_mean(o)).collect();
        for m in &means {
            let (a, b) = (m.unwrap_or(f64::NAN), means[0].unwrap_or(f64::NAN));
            assert!((a - b).abs() < 1e-9, "{means:?}");
        }
    }

    #[test]
    fn a_direction_bucket_from_before_its_vector_keeps_its_vector_empty() {
        // A bucket stored before schema version 6 whose readings are gone: adding to it
        // cannot make a vector that leaves its earlier readings out.
        let mut b = Bucket::empty(0, true);
        b.vector = None;
        b.count = 2;
        b.sum = 20.0;
        b.add(1, 1, Some(90.0), Flags::OK, true);
        assert_eq!(b.vector, None);
        assert_eq!(b.count, 3);
        // One that counted nothing starts one.
        let mut b = Bucket::empty(0, true);
        b.vector = None;
        b.add(1, 1, Some(90.0), Flags::OK, true);
        assert!(b
            .vector
            .is_some_and(|(s, c)| (s - 1.0).abs() < 1e-12 && c.abs() < 1e-12));
    }

    #[test]
    fn resolution_names() {
        for r in ["raw", "minute", "hour", "day"] {
            assert_eq!(r.parse::<Resolution>().map(|x| x.as_str()), Ok(r));
        }
        assert!("week".parse::<Resolution>().is_err());
    }
}
