//! The collector's history for the network page: [`anemone::web::source::HistorySource`]
//! over the collector's PostgreSQL (readings, hourly and daily rollups, stations).
//!
//! Every call names its station; a station the database does not know is
//! [`SourceError::UnknownStation`] (a 404 on the page). Times are UTC: "today" is the UTC
//! day and `day` buckets are the daily rollups' UTC days.

use std::sync::Arc;

use anemone::reading::{circular_mean, Flags, Quantity, StoredReading, Timestamp};
use anemone::report::export::{write_readings, ExportOptions, Format};
use anemone::store::{Aggregate, Extent, Resolution};
use anemone::web::source::{
    day_gust, ByteStream, ChannelWriter, ExportRequest, HistorySource, Point, Series, SourceError,
    StationInfo, StoreState, Today, LATEST_WINDOW_MS,
};
use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::BoxFuture;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

/// Raw readings the source reads for one answer at most (an export or a raw history):
/// beyond, the answer is refused rather than held in memory.
pub const MAX_ROWS: i64 = 2_000_000;

/// The direction recorded within this long of a gust counts as the gust's direction.
const GUST_DIRECTION_WINDOW_MS: i64 = 5_000;

/// The milliseconds of a `timestamptz` column, as SQL.
const MS: &str = "(extract(epoch FROM ts) * 1000)::bigint";

/// One station of the network page.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkStation {
    /// Its id.
    pub id: String,
    /// Its name, from its `meta`.
    pub name: Option<String>,
    /// Its position, from its `meta` (`None`: not configured).
    pub latitude: Option<f64>,
    /// Its position, from its `meta`.
    pub longitude: Option<f64>,
    /// From its `status` (last will): `None` before its first status.
    pub online: Option<bool>,
    /// When the collector last heard from it (ms UTC).
    pub last_seen: Timestamp,
    /// The newest reading of each of its series.
    pub latest: Vec<StoredReading>,
}

/// A history source over one PostgreSQL connection (its queries are pipelined).
#[derive(Clone)]
pub struct PgSource {
    client: Arc<Client>,
}

fn backend(e: tokio_postgres::Error) -> SourceError {
    SourceError::Backend(e.to_string())
}

fn time(ms: Timestamp) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn quantity(row: &Row, i: usize) -> Result<Quantity, SourceError> {
    let name: String = row.get(i);
    name.parse::<Quantity>()
        .map_err(|_| SourceError::Backend(format!("unknown quantity `{name}` in the database")))
}

fn stored(row: &Row) -> Result<StoredReading, SourceError> {
    let flags: i16 = row.get(5);
    let sensor: String = row.get(2);
    Ok(StoredReading {
        id: row.get(0),
        reading: anemone::reading::Reading {
            ts: row.get(1),
            sensor: Arc::from(sensor.as_str()),
            quantity: quantity(row, 3)?,
            value: row.get(4),
            flags: Flags::from_bits(flags as u8),
        },
    })
}

impl PgSource {
    /// A source reading through `client`.
    pub fn new(client: Client) -> PgSource {
        PgSource {
            client: Arc::new(client),
        }
    }

    /// The station asked about, once the database knows it.
    async fn station(&self, station: Option<String>) -> Result<String, SourceError> {
        let Some(id) = station else {
            return Err(SourceError::UnknownStation(
                "(none given: add ?station=ID, the network page lists them)".into(),
            ));
        };
        let found = self
            .client
            .query_opt("SELECT 1 FROM stations WHERE id = $1", &[&id])
            .await
            .map_err(backend)?;
        match found {
            Some(_) => Ok(id),
            None => Err(SourceError::UnknownStation(id)),
        }
    }

    /// Every station with its position, online state, last contact and newest values,
    /// ordered by id (the network page's map and table).
    pub async fn stations(&self) -> Result<Vec<NetworkStation>, SourceError> {
        let rows = self
            .client
            .query(
                "SELECT id, name, latitude, longitude, online,
                        (extract(epoch FROM last_seen) * 1000)::bigint
                 FROM stations ORDER BY id",
                &[],
            )
            .await
            .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.get(0);
            let latest = self.latest_of(&id).await?;
            out.push(NetworkStation {
                name: r.get(1),
                latitude: r.get(2),
                longitude: r.get(3),
                online: r.get(4),
                last_seen: r.get(5),
                latest,
                id,
            });
        }
        Ok(out)
    }

    async fn latest_of(&self, station: &str) -> Result<Vec<StoredReading>, SourceError> {
        let sql = format!(
            "SELECT DISTINCT ON (sensor, quantity) id, {MS}, sensor, quantity, value, flags
             FROM readings
             WHERE station = $1
               AND ts >= (SELECT max(ts) FROM readings WHERE station = $1) - $2 * interval '1 millisecond'
             ORDER BY sensor, quantity, ts DESC"
        );
        let window = LATEST_WINDOW_MS as f64;
        let rows = self
            .client
            .query(&sql, &[&station, &window])
            .await
            .map_err(backend)?;
        rows.iter().map(stored).collect()
    }

    /// One bucket per (sensor, quantity) over `[from, to)` with the times of min and max.
    async fn summary(
        &self,
        station: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Aggregate>, SourceError> {
        let sql = format!(
            "SELECT sensor, quantity,
                    count(*) FILTER (WHERE flags = 0 AND value IS NOT NULL),
                    count(*) FILTER (WHERE flags <> 0 OR value IS NULL),
                    min(value) FILTER (WHERE flags = 0),
                    (array_agg({MS} ORDER BY value ASC, ts) FILTER (WHERE flags = 0 AND value IS NOT NULL))[1],
                    max(value) FILTER (WHERE flags = 0),
                    (array_agg({MS} ORDER BY value DESC, ts) FILTER (WHERE flags = 0 AND value IS NOT NULL))[1],
                    coalesce(sum(value) FILTER (WHERE flags = 0), 0),
                    coalesce(sum(sin(radians(value))) FILTER (WHERE flags = 0), 0),
                    coalesce(sum(cos(radians(value))) FILTER (WHERE flags = 0), 0)
             FROM readings WHERE station = $1 AND ts >= $2 AND ts < $3
             GROUP BY sensor, quantity ORDER BY quantity, sensor"
        );
        let rows = self
            .client
            .query(&sql, &[&station, &time(from), &time(to)])
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let at = |v: Option<f64>, t: Option<i64>| v.zip(t);
                let q = quantity(r, 1)?;
                Ok(Aggregate {
                    start: from,
                    end: to,
                    sensor: r.get(0),
                    quantity: q,
                    count: r.get::<_, i64>(2) as u64,
                    flagged: r.get::<_, i64>(3) as u64,
                    min: at(r.get(4), r.get(5)),
                    max: at(r.get(6), r.get(7)),
                    sum: r.get(8),
                    vector: q.is_direction().then(|| (r.get(9), r.get(10))),
                })
            })
            .collect()
    }

    async fn gust_direction(
        &self,
        station: &str,
        ts: Timestamp,
    ) -> Result<Option<f64>, SourceError> {
        let sql = format!(
            "SELECT value FROM readings
             WHERE station = $1 AND quantity = $2 AND ts >= $3 AND ts <= $4
               AND flags = 0 AND value IS NOT NULL
             ORDER BY abs({MS} - $5) LIMIT 1"
        );
        for q in [Quantity::WindGustDirection, Quantity::WindDirection] {
            let row = self
                .client
                .query_opt(
                    &sql,
                    &[
                        &station,
                        &q.as_str(),
                        &time(ts - GUST_DIRECTION_WINDOW_MS),
                        &time(ts + GUST_DIRECTION_WINDOW_MS),
                        &ts,
                    ],
                )
                .await
                .map_err(backend)?;
            if let Some(r) = row {
                return Ok(r.get(0));
            }
        }
        Ok(None)
    }

    async fn today_of(&self, station: &str, now: Timestamp) -> Result<Today, SourceError> {
        let day = time(now).date_naive();
        let start = day
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap_or(now);
        let rows = self.summary(station, start, now + 1).await?;
        let direction = match day_gust(&rows) {
            Some(g) => self.gust_direction(station, g.ts).await?,
            None => None,
        };
        Ok(Today::from_summary(day, &rows, direction))
    }

    async fn raw(
        &self,
        station: &str,
        quantity: Option<Quantity>,
        sensor: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StoredReading>, SourceError> {
        let sql = format!(
            "SELECT id, {MS}, sensor, quantity, value, flags FROM readings
             WHERE station = $1 AND ts >= $2 AND ts < $3
               AND ($4::text IS NULL OR quantity = $4) AND ($5::text IS NULL OR sensor = $5)
             ORDER BY ts, id LIMIT $6"
        );
        let q = quantity.map(|q| q.as_str());
        let params: [&(dyn ToSql + Sync); 6] = [
            &station,
            &time(from),
            &time(to),
            &q,
            &sensor,
            &(MAX_ROWS + 1),
        ];
        let rows = self.client.query(&sql, &params).await.map_err(backend)?;
        if rows.len() as i64 > MAX_ROWS {
            return Err(SourceError::Backend(format!(
                "more than {MAX_ROWS} readings in that range; ask for a shorter one"
            )));
        }
        rows.iter().map(stored).collect()
    }

    /// Minute buckets from the readings, hour and day buckets from the rollups. A
    /// bucket's value is the mean of its unflagged readings; for a compass direction
    /// ([`Quantity::is_direction`]) the circular mean ([`circular_mean`]).
    async fn buckets(
        &self,
        station: &str,
        quantity: Quantity,
        from: Timestamp,
        to: Timestamp,
        resolution: Resolution,
    ) -> Result<Vec<Point>, SourceError> {
        let sql = match resolution {
            Resolution::Minute => format!(
                "SELECT (extract(epoch FROM date_trunc('minute', ts)) * 1000)::bigint AS start, sensor,
                        count(*) FILTER (WHERE flags = 0 AND value IS NOT NULL),
                        min(value) FILTER (WHERE flags = 0), max(value) FILTER (WHERE flags = 0),
                        coalesce(sum(value) FILTER (WHERE flags = 0), 0),
                        coalesce(sum(sin(radians(value))) FILTER (WHERE flags = 0), 0),
                        coalesce(sum(cos(radians(value))) FILTER (WHERE flags = 0), 0)
                 FROM readings WHERE station = $1 AND quantity = $2 AND ts >= $3 AND ts < $4
                 GROUP BY 1, sensor ORDER BY 1, sensor LIMIT {MAX_ROWS}"
            ),
            _ => {
                let table = if resolution == Resolution::Hour {
                    "rollups_hourly"
                } else {
                    "rollups_daily"
                };
                format!(
                    "SELECT (extract(epoch FROM start) * 1000)::bigint, sensor, count, min, max, sum,
                            sum_sin, sum_cos
                     FROM {table} WHERE station = $1 AND quantity = $2 AND start >= $3 AND start < $4
                     ORDER BY start, sensor LIMIT {MAX_ROWS}"
                )
            }
        };
        let rows = self
            .client
            .query(
                &sql,
                &[&station, &quantity.as_str(), &time(from), &time(to)],
            )
            .await
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| {
                let count = r.get::<_, i64>(2).max(0) as u64;
                let sum: f64 = r.get(5);
                let value = if quantity.is_direction() {
                    // NULL sums: rollups whose readings could not be summed again (schema 5).
                    let (sin, cos): (Option<f64>, Option<f64>) = (r.get(6), r.get(7));
                    sin.zip(cos).and_then(|(s, c)| circular_mean(s, c, count))
                } else {
                    (count > 0).then(|| sum / count as f64)
                };
                Point {
                    ts: r.get(0),
                    sensor: r.get(1),
                    value,
                    min: r.get(3),
                    max: r.get(4),
                    count: Some(count),
                    flags: None,
                }
            })
            .collect())
    }
}

impl HistorySource for PgSource {
    fn latest(
        &self,
        station: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<StoredReading>, SourceError>> {
        Box::pin(async move {
            let id = self.station(station).await?;
            self.latest_of(&id).await
        })
    }

    fn today(
        &self,
        station: Option<String>,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<Today, SourceError>> {
        Box::pin(async move {
            let id = self.station(station).await?;
            self.today_of(&id, now).await
        })
    }

    fn history(
        &self,
        station: Option<String>,
        quantity: Quantity,
        from: Timestamp,
        to: Timestamp,
        resolution: Resolution,
    ) -> BoxFuture<'_, Result<Series, SourceError>> {
        Box::pin(async move {
            let id = self.station(station).await?;
            let points = if resolution == Resolution::Raw {
                self.raw(&id, Some(quantity), None, from, to)
                    .await?
                    .iter()
                    .map(Point::raw)
                    .collect()
            } else {
                self.buckets(&id, quantity, from, to, resolution).await?
            };
            Ok(Series {
                quantity,
                resolution,
                from,
                to,
                points,
            })
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
        Box::pin(async move {
            let id = self.station(station).await?;
            let limit = limit.min(i64::MAX as u64 - 1) as i64 + 1;
            let row = self
                .client
                .query_one(
                    "SELECT count(*) FROM (SELECT 1 FROM readings
                       WHERE station = $1 AND quantity = $2 AND ts >= $3 AND ts < $4
                       LIMIT $5) AS r",
                    &[&id, &quantity.as_str(), &time(from), &time(to), &limit],
                )
                .await
                .map_err(backend)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn extent(&self, station: Option<String>) -> BoxFuture<'_, Result<StoreState, SourceError>> {
        Box::pin(async move {
            let id = self.station(station).await?;
            let sql = format!(
                "SELECT count(*), min({MS}), max({MS}), coalesce(max(id), 0)
                 FROM readings WHERE station = $1"
            );
            let row = self.client.query_one(&sql, &[&id]).await.map_err(backend)?;
            let last_id: i64 = row.get(3);
            Ok(StoreState {
                extent: Extent {
                    readings: row.get::<_, i64>(0) as u64,
                    oldest: row.get(1),
                    newest: row.get(2),
                    last_id,
                },
                // What the collector holds has been delivered.
                publish_cursor: last_id,
                backlog: 0,
            })
        })
    }

    fn station_info(
        &self,
        station: Option<String>,
    ) -> BoxFuture<'_, Result<Option<StationInfo>, SourceError>> {
        Box::pin(async move {
            let id = self.station(station).await?;
            let row = self
                .client
                .query_one(
                    "SELECT name, metadata->>'timezone' FROM stations WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(backend)?;
            let zone: Option<String> = row.get(1);
            Ok(Some(StationInfo {
                id,
                name: row.get(0),
                // Times are shown in the station's zone when its `meta` names a valid one.
                timezone: zone
                    .filter(|z| z.parse::<chrono_tz::Tz>().is_ok())
                    .unwrap_or_else(|| "UTC".into()),
            }))
        })
    }

    fn export_csv(
        &self,
        station: Option<String>,
        req: ExportRequest,
    ) -> BoxFuture<'_, Result<ByteStream, SourceError>> {
        Box::pin(async move {
            let id = self.station(station).await?;
            let q = req.query;
            let rows = self
                .raw(
                    &id,
                    q.quantity,
                    q.sensor.as_deref(),
                    q.from.unwrap_or(0),
                    q.to.unwrap_or(i64::MAX / 2),
                )
                .await?;
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tokio::task::spawn_blocking(move || {
                let opts = ExportOptions {
                    format: Format::Csv,
                    resolution: Resolution::Raw,
                    query: Default::default(),
                    precision: Default::default(),
                    units: anemone::units::UnitSystem::Metric,
                };
                let mut out = ChannelWriter::new(tx.clone());
                if let Err(e) = write_readings(&mut rows.into_iter(), &opts, &mut out) {
                    tracing::warn!("A CSV download from the network page stopped: {e}");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            });
            Ok(rx)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::circular_mean;

    fn mean_of(directions: &[f64]) -> Option<f64> {
        let (s, c) = directions.iter().fold((0.0, 0.0), |(s, c), d: &f64| {
            (s + d.to_radians().sin(), c + d.to_radians().cos())
        });
        circular_mean(s, c, directions.len() as u64)
    }

    #[test]
    fn directions_average_around_the_compass() {
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(
            close(mean_of(&[350.0, 10.0]), 0.0),
            "{:?}",
            mean_of(&[350.0, 10.0])
        );
        assert!(close(mean_of(&[340.0, 350.0, 10.0, 20.0]), 0.0));
        assert!(close(mean_of(&[90.0, 100.0]), 95.0));
        assert!(close(mean_of(&[270.0, 300.0, 330.0, 0.0, 30.0]), 330.0));
        assert!(close(mean_of(&[200.0, 220.0]), 210.0));
        // Always in [0, 360), also a hair west of north.
        for d in [-1e-13_f64, -1e-15, 0.0, 359.999_999_9] {
            let m = circular_mean(d.to_radians().sin(), d.to_radians().cos(), 1).unwrap();
            assert!((0.0..360.0).contains(&m), "{d}: {m}");
        }
    }

    #[test]
    fn no_mean_where_the_directions_cancel_out() {
        assert_eq!(mean_of(&[]), None);
        assert_eq!(mean_of(&[0.0, 180.0]), None);
        assert_eq!(mean_of(&[45.0, 135.0, 225.0, 315.0]), None);
        assert!(mean_of(&[0.0, 179.0]).is_some());
    }
}
