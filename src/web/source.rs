//! Where the page and the API get history from: [`HistorySource`], implemented here for
//! the station's SQLite store ([`SqliteSource`], read-only connections, blocking work on
//! tokio's blocking threads) and later by the collector over PostgreSQL.
//!
//! Every method takes the station it asks about (`None`: the only one). The trait names
//! no SQLite type and returns boxed futures, so it stays object safe and an asynchronous
//! database client implements it directly.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::reading::{Flags, Precision, Quantity, StoredReading, Timestamp};
use crate::report::export::{export, ExportOptions, Format};
use crate::report::stats::{max_gust, rain_total};
use crate::store::{
    local_date, Aggregate, Extent, Query, ReadOnlyFollower, Resolution, Store, StoreError,
};

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request names a station this source does not hold.
    #[error("unknown station `{0}`")]
    UnknownStation(String),
    /// The database failed.
    #[error("the database could not be read: {0}")]
    Backend(String),
}

impl From<StoreError> for SourceError {
    fn from(e: StoreError) -> Self {
        SourceError::Backend(e.to_string())
    }
}

/// One point of a history series: a raw reading, or one aggregate bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The reading's time, or the bucket's start.
    pub ts: Timestamp,
    /// The sensor it comes from.
    pub sensor: String,
    /// The value (raw), or the mean of the unflagged values (aggregate).
    pub value: Option<f64>,
    /// Lowest unflagged value of the bucket (aggregates only).
    pub min: Option<f64>,
    /// Highest unflagged value of the bucket (aggregates only).
    pub max: Option<f64>,
    /// Unflagged values in the bucket (aggregates only).
    pub count: Option<u64>,
    /// QC outcome (raw readings only).
    pub flags: Option<Flags>,
}

/// A quantity's history over `[from, to)` at one resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The quantity.
    pub quantity: Quantity,
    /// The resolution the points have (coarser than asked when the range is large).
    pub resolution: Resolution,
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// The points, oldest first.
    pub points: Vec<Point>,
}

/// A value with the time it was reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtTime {
    /// The value.
    pub value: f64,
    /// When.
    pub ts: Timestamp,
}

/// One quantity's lowest and highest value of the day (unflagged readings).
#[derive(Debug, Clone, PartialEq)]
pub struct Extremes {
    /// The quantity.
    pub quantity: Quantity,
    /// The sensor.
    pub sensor: String,
    /// Lowest value.
    pub min: Option<AtTime>,
    /// Highest value.
    pub max: Option<AtTime>,
}

/// The station's local day so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Today {
    /// The local date.
    pub date: NaiveDate,
    /// Min and max of every quantity measured today.
    pub extremes: Vec<Extremes>,
    /// Rain since local midnight, in mm (`None`: no rain gauge reported today).
    pub rain_mm: Option<f64>,
    /// The day's highest gust, in m/s.
    pub max_gust: Option<AtTime>,
    /// Where that gust came from, in degrees (0 = N), when a direction was recorded then.
    pub max_gust_direction: Option<f64>,
}

/// What to export as CSV.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportRequest {
    /// Time range and filters.
    pub query: Query,
}

/// Who a station is, for a source that holds several (the collector's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationInfo {
    /// The station's id.
    pub id: String,
    /// Its name, when it published one.
    pub name: Option<String>,
    /// The IANA zone its times are shown in.
    pub timezone: String,
}

/// A stream of CSV bytes, produced while it is read.
pub type ByteStream = mpsc::Receiver<Result<Vec<u8>, std::io::Error>>;

/// The history the page and the API need.
pub trait HistorySource: Send + Sync + 'static {
    /// The newest reading of every (sensor, quantity) of the last hours.
    fn latest(
        &self,
        station: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<StoredReading>, SourceError>>;

    /// The local day holding `now`, so far (in the station's zone).
    fn today(
        &self,
        station: Option<String>,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<Today, SourceError>>;

    /// The history of `quantity` over `[from, to)` at `resolution` (raw readings or
    /// minute, hour or day buckets).
    fn history(
        &self,
        station: Option<String>,
        quantity: Quantity,
        from: Timestamp,
        to: Timestamp,
        resolution: Resolution,
    ) -> BoxFuture<'_, Result<Series, SourceError>>;

    /// How many raw readings of `quantity` lie in `[from, to)`, counting no further than
    /// `limit` (so the caller can choose a coarser resolution cheaply).
    fn count_raw(
        &self,
        station: Option<String>,
        quantity: Quantity,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> BoxFuture<'_, Result<u64, SourceError>>;

    /// What the store holds, and the MQTT publish cursor.
    fn extent(&self, station: Option<String>) -> BoxFuture<'_, Result<StoreState, SourceError>>;

    /// The readings of `req` as CSV, in `anemone export --format csv`'s shape.
    fn export_csv(
        &self,
        station: Option<String>,
        req: ExportRequest,
    ) -> BoxFuture<'_, Result<ByteStream, SourceError>>;

    /// Who `station` is, for a source of several stations: then `/api/now` answers from
    /// [`HistorySource::latest`] and this. `None` (the default, the station's own store):
    /// the station's config and its live feed answer.
    fn station_info(
        &self,
        station: Option<String>,
    ) -> BoxFuture<'_, Result<Option<StationInfo>, SourceError>> {
        let _ = station;
        Box::pin(async { Ok(None) })
    }
}

/// What the store holds, for the health panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreState {
    /// The raw table's extent.
    pub extent: Extent,
    /// Highest reading id the MQTT broker acknowledged (with every lower one).
    pub publish_cursor: i64,
    /// Readings stored above the cursor: what MQTT still owes. Counted, not taken from
    /// ids: each start reserves a fresh block of ids, so ids skip.
    pub backlog: u64,
}

/// The station's SQLite store, read through read-only connections.
///
/// Two connections are kept open and reused (opened again when the file at the path is
/// another one: the writer moved a corrupt file aside); each call runs on a blocking
/// thread, so a slow query never holds up the async threads. Calls take a free
/// connection or wait for one; an export opens its own.
pub struct SqliteSource {
    station: String,
    path: PathBuf,
    tz: chrono_tz::Tz,
    /// A few connections: the charts of one page load side by side.
    conns: Arc<Vec<Mutex<ReadOnlyFollower>>>,
    /// Count what MQTT still owes for `/api/health` (off without MQTT: the cursor never
    /// moves, and counting every stored reading on each request is the page's slowest part).
    count_backlog: bool,
    /// Decimals for what leaves through the page: the CSV download as `anemone export`
    /// gives it, positions capped at `[station] position_decimals` in charts and history.
    precision: Precision,
}

/// Read-only connections kept open for the page (a Pi has up to four cores; a page asks
/// for nine charts at once).
const CONNECTIONS: usize = 2;

/// Raw readings looked at for [`HistorySource::latest`]: this far behind the newest one.
pub const LATEST_WINDOW_MS: i64 = 2 * 3_600_000;

impl SqliteSource {
    /// A source over the database at `path` of station `station` (its zone `tz`).
    pub fn new(station: &str, path: PathBuf, tz: chrono_tz::Tz) -> SqliteSource {
        SqliteSource {
            station: station.to_string(),
            conns: Arc::new(
                (0..CONNECTIONS)
                    .map(|_| Mutex::new(ReadOnlyFollower::new(path.clone(), tz)))
                    .collect(),
            ),
            path,
            tz,
            count_backlog: true,
            precision: Precision::default(),
        }
    }

    /// The same source rounding as the station's config says ([`Config::precision`]): the
    /// CSV download to each sensor's resolution, latitude and longitude to
    /// `[station] position_decimals` wherever the page shows them.
    ///
    /// [`Config::precision`]: crate::config::Config::precision
    pub fn with_precision(mut self, precision: Precision) -> SqliteSource {
        self.precision = precision;
        self
    }

    /// The same source for a station without MQTT: its health has no backlog to count
    /// (reported as 0; the page shows none when MQTT is off).
    pub fn without_backlog(mut self) -> SqliteSource {
        self.count_backlog = false;
        self
    }

    fn check_station(&self, station: Option<String>) -> Result<(), SourceError> {
        match station {
            Some(s) if s != self.station => Err(SourceError::UnknownStation(s)),
            _ => Ok(()),
        }
    }

    /// Runs `f` on the shared read-only connection on a blocking thread.
    fn with_store<T: Send + 'static>(
        &self,
        station: Option<String>,
        f: impl FnOnce(&Store) -> Result<T, SourceError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, SourceError>> {
        let checked = self.check_station(station);
        let conns = self.conns.clone();
        Box::pin(async move {
            checked?;
            tokio::task::spawn_blocking(move || {
                // A free connection, else wait for the first.
                let free = conns.iter().find_map(|c| c.try_lock().ok());
                let mut follower = match free {
                    Some(f) => f,
                    None => conns[0].lock().unwrap_or_else(|p| p.into_inner()),
                };
                f(follower.store()?)
            })
            .await
            .map_err(|e| SourceError::Backend(e.to_string()))?
        })
    }
}

/// The direction recorded within this long of a gust counts as the gust's direction.
const GUST_DIRECTION_WINDOW_MS: i64 = 5_000;

fn today_from(store: &Store, now: Timestamp) -> Result<Today, SourceError> {
    let date = local_date(store.tz(), now);
    let mut rows = store.day_summary(date)?;
    rows.sort_by(|a, b| (a.quantity, &a.sensor).cmp(&(b.quantity, &b.sensor)));
    let direction = match day_gust(&rows) {
        Some(g) => gust_direction(store, g.ts)?,
        None => None,
    };
    Ok(Today::from_summary(date, &rows, direction))
}

/// The day's highest gust in `rows` (one summary row per sensor and quantity).
pub fn day_gust(rows: &[Aggregate]) -> Option<AtTime> {
    max_gust(rows).map(|(value, ts, _)| AtTime { value, ts })
}

impl Today {
    /// The day `date` from its summary `rows`, with the direction of its highest gust
    /// (found by the source near [`day_gust`]'s time).
    pub fn from_summary(date: NaiveDate, rows: &[Aggregate], direction: Option<f64>) -> Today {
        Today {
            date,
            rain_mm: rain_total(rows),
            max_gust: day_gust(rows),
            max_gust_direction: direction,
            extremes: rows
                .iter()
                .filter(|a| a.min.is_some() || a.max.is_some())
                .map(|a| Extremes {
                    quantity: a.quantity,
                    sensor: a.sensor.clone(),
                    min: a.min.map(|(value, ts)| AtTime { value, ts }),
                    max: a.max.map(|(value, ts)| AtTime { value, ts }),
                })
                .collect(),
        }
    }
}

impl Point {
    /// A raw reading as a point.
    pub fn raw(r: &StoredReading) -> Point {
        Point {
            ts: r.reading.ts,
            sensor: r.reading.sensor.to_string(),
            value: r.reading.value,
            min: None,
            max: None,
            count: None,
            flags: Some(r.reading.flags),
        }
    }
}

/// The gust's own direction at `ts`, else the wind direction recorded nearest to it.
fn gust_direction(store: &Store, ts: Timestamp) -> Result<Option<f64>, SourceError> {
    for quantity in [Quantity::WindGustDirection, Quantity::WindDirection] {
        let q = Query {
            from: Some(ts - GUST_DIRECTION_WINDOW_MS),
            to: Some(ts + GUST_DIRECTION_WINDOW_MS + 1),
            quantity: Some(quantity),
            ..Query::default()
        };
        let nearest = store
            .readings(&q)?
            .into_iter()
            .filter(|r| r.reading.flags.is_ok())
            .filter_map(|r| r.reading.value.map(|v| ((r.reading.ts - ts).abs(), v)))
            .min_by_key(|(d, _)| *d);
        if let Some((_, v)) = nearest {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn history_from(
    store: &Store,
    quantity: Quantity,
    from: Timestamp,
    to: Timestamp,
    resolution: Resolution,
) -> Result<Series, SourceError> {
    let q = Query {
        from: Some(from),
        to: Some(to),
        quantity: Some(quantity),
        ..Query::default()
    };
    let mut points = Vec::new();
    if resolution == Resolution::Raw {
        store.for_each_reading::<SourceError>(&q, |r| {
            points.push(Point::raw(r));
            Ok(())
        })?;
        points.sort_by_key(|p| p.ts);
    } else {
        store.for_each_aggregate::<SourceError>(resolution, &q, |a| {
            points.push(Point {
                ts: a.start,
                sensor: a.sensor.clone(),
                value: a.mean(),
                min: a.min.map(|m| m.0),
                max: a.max.map(|m| m.0),
                count: Some(a.count),
                flags: None,
            });
            Ok(())
        })?;
    }
    Ok(Series {
        quantity,
        resolution,
        from,
        to,
        points,
    })
}

/// Counts raw readings of `q`, stopping at `limit`.
fn count_raw_from(store: &Store, q: &Query, limit: u64) -> Result<u64, SourceError> {
    /// Why the scan stopped early: the limit was passed, or the store failed.
    #[derive(Debug)]
    enum Stop {
        Enough,
        Store(StoreError),
    }
    impl From<StoreError> for Stop {
        fn from(e: StoreError) -> Self {
            Stop::Store(e)
        }
    }
    let mut n = 0u64;
    match store.for_each_reading::<Stop>(q, |_| {
        n += 1;
        if n > limit {
            Err(Stop::Enough)
        } else {
            Ok(())
        }
    }) {
        Ok(()) | Err(Stop::Enough) => Ok(n),
        Err(Stop::Store(e)) => Err(e.into()),
    }
}

/// Writes what it is given to a channel, in chunks (the export runs on a blocking thread,
/// the response body reads the channel). Also used by the collector's source.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 32 * 1024;

impl ChannelWriter {
    /// A writer sending its chunks to `tx`.
    pub fn new(tx: mpsc::Sender<Result<Vec<u8>, std::io::Error>>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::new(),
        }
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl HistorySource for SqliteSource {
    fn latest(
        &self,
        station: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<StoredReading>, SourceError>> {
        self.with_store(station, |s| Ok(s.latest_readings(LATEST_WINDOW_MS)?))
    }

    fn today(
        &self,
        station: Option<String>,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<Today, SourceError>> {
        self.with_store(station, move |s| today_from(s, now))
    }

    fn history(
        &self,
        station: Option<String>,
        quantity: Quantity,
        from: Timestamp,
        to: Timestamp,
        resolution: Resolution,
    ) -> BoxFuture<'_, Result<Series, SourceError>> {
        let precision = self.precision.clone();
        self.with_store(station, move |s| {
            let mut series = history_from(s, quantity, from, to, resolution)?;
            if matches!(quantity, Quantity::Latitude | Quantity::Longitude) {
                for p in &mut series.points {
                    let round = |v: Option<f64>| v.map(|v| precision.round(&p.sensor, quantity, v));
                    p.value = round(p.value);
                    p.min = round(p.min);
                    p.max = round(p.max);
                }
            }
            Ok(series)
        })
    }

    fn count_raw(
        &self,
        station: Option<String>,
        quantity: Quantity,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> BoxFuture<'_, Result<u64, SourceError>> {
        let q = Query {
            from: Some(from),
            to: Some(to),
            quantity: Some(quantity),
            ..Query::default()
        };
        self.with_store(station, move |s| count_raw_from(s, &q, limit))
    }

    fn extent(&self, station: Option<String>) -> BoxFuture<'_, Result<StoreState, SourceError>> {
        let count_backlog = self.count_backlog;
        self.with_store(station, move |s| {
            let publish_cursor = s.publish_cursor()?;
            Ok(StoreState {
                extent: s.extent()?,
                publish_cursor,
                backlog: if count_backlog {
                    s.count_after(publish_cursor)?
                } else {
                    0
                },
            })
        })
    }

    fn export_csv(
        &self,
        station: Option<String>,
        req: ExportRequest,
    ) -> BoxFuture<'_, Result<ByteStream, SourceError>> {
        let checked = self.check_station(station);
        let path = self.path.clone();
        let tz = self.tz;
        let precision = self.precision.clone();
        Box::pin(async move {
            checked?;
            // Its own connection: a long export does not hold up the page's queries.
            let store = tokio::task::spawn_blocking(move || Store::open_read_only(&path, tz))
                .await
                .map_err(|e| SourceError::Backend(e.to_string()))??;
            let (tx, rx) = mpsc::channel(4);
            tokio::task::spawn_blocking(move || {
                let opts = ExportOptions {
                    format: Format::Csv,
                    resolution: Resolution::Raw,
                    query: req.query,
                    precision,
                    units: crate::units::UnitSystem::Metric,
                };
                let mut out = ChannelWriter {
                    tx: tx.clone(),
                    buf: Vec::new(),
                };
                if let Err(e) = export(&store, &opts, &mut out, false) {
                    tracing::warn!("A CSV download from the web page stopped: {e}");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            });
            Ok(rx)
        })
    }
}
