//! PostgreSQL out: one transaction per batch. Readings go through binary `COPY` into a
//! temporary staging table, then `INSERT … SELECT … ON CONFLICT DO NOTHING` into `readings`,
//! so a redelivered reading is a no-op. The same statement adds the rows it really inserted
//! to the hourly rollups (one row per station, sensor, quantity and hour touched; the daily
//! rollups are a view over them), and the transaction updates the stations and stores the
//! dead letters.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Datelike, TimeZone, Utc};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

use crate::message::{ChainHead, DeadLetter, Meta, ReadingRow};

/// The non-reading messages of a batch, applied in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub enum StationUpdate {
    /// `online` / `offline`.
    Status(String, bool),
    /// The station's description.
    Meta(Meta),
    /// The latest values.
    State(String, serde_json::Value),
    /// The head of the station's tamper-evident chain.
    Chain(ChainHead),
}

/// What one transaction holds.
#[derive(Debug, Default)]
pub struct Batch {
    /// Readings.
    pub readings: Vec<ReadingRow>,
    /// Status, meta and state messages in arrival order.
    pub updates: Vec<StationUpdate>,
    /// Bad messages.
    pub dead: Vec<DeadLetter>,
}

impl Batch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty() && self.updates.is_empty() && self.dead.is_empty()
    }

    /// Forgets everything (after a commit).
    pub fn clear(&mut self) {
        self.readings.clear();
        self.updates.clear();
        self.dead.clear();
    }

    fn stations(&self) -> Vec<String> {
        let mut set: BTreeSet<&str> = self.readings.iter().map(|r| r.station.as_str()).collect();
        for u in &self.updates {
            set.insert(match u {
                StationUpdate::Status(s, _) | StationUpdate::State(s, _) => s,
                StationUpdate::Meta(m) => &m.station,
                StationUpdate::Chain(h) => &h.station,
            });
        }
        set.into_iter().map(str::to_string).collect()
    }
}

/// What a committed batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// New reading rows.
    pub inserted: u64,
    /// Readings already present (redeliveries).
    pub duplicates: u64,
    /// Dead letters stored.
    pub dead: u64,
}

/// A connection to PostgreSQL ready to write batches.
pub struct Db {
    client: Client,
    /// Months (`year * 12 + month0`) that have their own partition.
    partitions: HashSet<i32>,
}

/// Connects with `url`; the connection's task ends with the client.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "The PostgreSQL connection ended");
        }
    });
    Ok(client)
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn month_of(ms: i64) -> i32 {
    let t = utc(ms);
    t.year() * 12 + t.month0() as i32
}

fn month_start(month: i32) -> DateTime<Utc> {
    let (y, m0) = (month.div_euclid(12), month.rem_euclid(12));
    Utc.with_ymd_and_hms(y, m0 as u32 + 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl Db {
    /// Opens a writer on `client` (whose schema is migrated).
    pub async fn new(client: Client) -> Result<Db, tokio_postgres::Error> {
        client
            .batch_execute(
                "CREATE TEMP TABLE staging (
                    station text, id bigint, ts timestamptz, sensor text, quantity text,
                    value double precision, flags smallint, backfill boolean
                 ) ON COMMIT DELETE ROWS",
            )
            .await?;
        let rows = client
            .query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'readings'::regclass",
                &[],
            )
            .await?;
        let partitions = rows
            .iter()
            .filter_map(|r| partition_month(r.get::<_, &str>(0)))
            .collect();
        Ok(Db { client, partitions })
    }

    /// The client, for queries beside the writer.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// True when the connection has gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Creates the partition of every month the readings fall in that has none yet.
    async fn ensure_partitions(
        &mut self,
        readings: &[ReadingRow],
    ) -> Result<(), tokio_postgres::Error> {
        let months: BTreeSet<i32> = readings
            .iter()
            .map(|r| month_of(r.ts))
            .filter(|m| !self.partitions.contains(m))
            .collect();
        for m in months {
            let (from, to) = (month_start(m), month_start(m + 1));
            let name = format!(
                "readings_{:04}_{:02}",
                m.div_euclid(12),
                m.rem_euclid(12) + 1
            );
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF readings FOR VALUES FROM ('{}') TO ('{}')",
                from.to_rfc3339(),
                to.to_rfc3339()
            );
            match self.client.batch_execute(&sql).await {
                Ok(()) => {
                    tracing::info!(partition = %name, "Created the readings partition {name}")
                }
                // Another collector created it at the same moment.
                Err(e) if matches!(e.code(), Some(c) if *c == SqlState::DUPLICATE_TABLE || *c == SqlState::UNIQUE_VIOLATION) =>
                    {}
                // The default partition already holds rows of that month: they stay there,
                // and so do this month's next rows.
                Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {
                    tracing::warn!(partition = %name, "The default partition holds rows of {name}'s month; that month stays in the default partition");
                }
                Err(e) => return Err(e),
            }
            self.partitions.insert(m);
        }
        Ok(())
    }

    /// Writes the batch in one transaction and commits it.
    pub async fn write(&mut self, batch: &Batch) -> Result<Written, tokio_postgres::Error> {
        self.ensure_partitions(&batch.readings).await?;
        let tx = self.client.transaction().await?;
        let mut written = Written::default();
        // Rows of one station are added to the rollups by one transaction at a time, the
        // locks taken first and in a fixed order, so two collectors never wait for each
        // other in a circle on the rollup rows they both update.
        let stations = batch.stations();
        if !stations.is_empty() {
            tx.execute(
                "SELECT pg_advisory_xact_lock(k) FROM
                   (SELECT DISTINCT hashtextextended(s, 1) AS k FROM unnest($1::text[]) s ORDER BY k) t",
                &[&stations],
            )
            .await?;
            tx.execute(
                "INSERT INTO stations (id, first_seen, last_seen)
                 SELECT s, now(), now() FROM unnest($1::text[]) s
                 ON CONFLICT (id) DO UPDATE SET last_seen = GREATEST(stations.last_seen, now())",
                &[&stations],
            )
            .await?;
        }
        if !batch.readings.is_empty() {
            let sink = tx
                .copy_in(
                    "COPY staging (station, id, ts, sensor, quantity, value, flags, backfill) FROM STDIN BINARY",
                )
                .await?;
            let types = [
                Type::TEXT,
                Type::INT8,
                Type::TIMESTAMPTZ,
                Type::TEXT,
                Type::TEXT,
                Type::FLOAT8,
                Type::INT2,
                Type::BOOL,
            ];
            let writer = BinaryCopyInWriter::new(sink, &types);
            pin_mut!(writer);
            for r in &batch.readings {
                let ts = utc(r.ts);
                let flags = i16::from(r.flags.bits());
                let row: [&(dyn ToSql + Sync); 8] = [
                    &r.station,
                    &r.id,
                    &ts,
                    &r.sensor,
                    &r.quantity.as_str(),
                    &r.value,
                    &flags,
                    &r.backfill,
                ];
                writer.as_mut().write(&row).await?;
            }
            writer.finish().await?;
            // Only the rows this statement really inserts (RETURNING skips the ones already
            // stored) are added to the hourly and daily rollups: a redelivery changes
            // nothing, and no batch re-reads the rows of the hours it touches.
            let inserted: i64 = tx.query_one(&*INSERT_AND_ROLL_UP, &[]).await?.get(0);
            written.inserted = inserted as u64;
            written.duplicates = batch.readings.len() as u64 - written.inserted;
        }

        for u in &batch.updates {
            match u {
                StationUpdate::Status(s, online) => {
                    tx.execute(
                        "UPDATE stations SET online = $2, status_at = now() WHERE id = $1",
                        &[s, online],
                    )
                    .await?;
                }
                StationUpdate::State(s, json) => {
                    tx.execute(
                        "UPDATE stations SET state = $2, state_at = now() WHERE id = $1",
                        &[s, json],
                    )
                    .await?;
                }
                StationUpdate::Chain(h) => {
                    // Every distinct head is kept: a second hash for one batch is the
                    // evidence `anemone-collector verify` reports.
                    tx.execute(
                        "INSERT INTO chain_heads
                           (station, batch, last_id, hash, received_at, public_key, signature)
                         VALUES ($1, $2, $3, $4, now(), $5, $6) ON CONFLICT DO NOTHING",
                        &[
                            &h.station,
                            &h.batch,
                            &h.last_id,
                            &h.hash,
                            &h.public_key,
                            &h.signature,
                        ],
                    )
                    .await?;
                    if let Some(k) = &h.public_key {
                        remember_key(&tx, &h.station, k).await?;
                    }
                    let first = station_key(&tx, &h.station).await?;
                    if let Some(problem) = crate::verify::signature_problem(first.as_deref(), h) {
                        tracing::warn!(
                            station = %h.station,
                            batch = h.batch,
                            "chain head: {problem}"
                        );
                    }
                }
                StationUpdate::Meta(m) => {
                    if let Some(k) = m.json.get("public_key").and_then(|k| k.as_str()) {
                        if anemone::signing::is_public_key_hex(k) {
                            let k = k.to_ascii_lowercase();
                            match station_key(&tx, &m.station).await? {
                                Some(first) if first != k => tracing::warn!(
                                    station = %m.station,
                                    "meta announces public key {k}, not the key {first} first seen for the station: heads signed with it are reported by `anemone-collector verify`"
                                ),
                                Some(_) => {}
                                None => remember_key(&tx, &m.station, &k).await?,
                            }
                        }
                    }
                    tx.execute(
                        "UPDATE stations SET name = $2, latitude = $3, longitude = $4,
                           altitude_m = $5, metadata = $6 WHERE id = $1",
                        &[
                            &m.station,
                            &m.name,
                            &m.latitude,
                            &m.longitude,
                            &m.altitude_m,
                            &m.json,
                        ],
                    )
                    .await?;
                }
            }
        }
        for d in &batch.dead {
            tx.execute(
                "INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES ($1, $2, $3, now())",
                &[&d.topic, &d.payload, &d.reason],
            )
            .await?;
        }
        written.dead = batch.dead.len() as u64;
        tx.commit().await?;
        Ok(written)
    }
}

/// Records `key` as `station`'s public key unless one was seen first (the first key
/// stays: a changed key is reported, never silently accepted).
async fn remember_key(
    tx: &tokio_postgres::Transaction<'_>,
    station: &str,
    key: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO station_keys (station, public_key, first_seen) VALUES ($1, $2, now())
         ON CONFLICT (station) DO NOTHING",
        &[&station, &key],
    )
    .await?;
    Ok(())
}

/// The first public key seen for `station`.
pub async fn station_key(
    client: &impl tokio_postgres::GenericClient,
    station: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT public_key FROM station_keys WHERE station = $1",
            &[&station],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

fn partition_month(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("readings_")?;
    let (y, m) = rest.split_once('_')?;
    let (y, m): (i32, i32) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some(y * 12 + m - 1)
}

/// One bucket's rollup row from the rows of `ins`: count, flagged, min, max and sum of
/// the readings whose flags are empty (`flagged` counts the others), and the sums of
/// their sines and cosines (the circular mean of a direction; a NULL sum, left by schema
/// migration 5 where readings were missing, stays NULL), per station, sensor, quantity
/// and UTC bucket of `width`.
fn roll_up(table: &str, width: &str) -> String {
    format!(
        "{table} AS (
           INSERT INTO {table} (station, sensor, quantity, start, count, flagged, min, max, sum,
                                sum_sin, sum_cos)
           SELECT station, sensor, quantity, date_bin('{width}', ts, '1970-01-01 00:00:00+00'),
                  count(value) FILTER (WHERE flags = 0),
                  count(*) FILTER (WHERE flags <> 0 OR value IS NULL),
                  min(value) FILTER (WHERE flags = 0),
                  max(value) FILTER (WHERE flags = 0),
                  coalesce(sum(value) FILTER (WHERE flags = 0), 0),
                  coalesce(sum(sin(radians(value))) FILTER (WHERE flags = 0), 0),
                  coalesce(sum(cos(radians(value))) FILTER (WHERE flags = 0), 0)
           FROM ins GROUP BY 1, 2, 3, 4
           ON CONFLICT (station, sensor, quantity, start) DO UPDATE SET
             count = {table}.count + EXCLUDED.count,
             flagged = {table}.flagged + EXCLUDED.flagged,
             min = LEAST({table}.min, EXCLUDED.min),
             max = GREATEST({table}.max, EXCLUDED.max),
             sum = {table}.sum + EXCLUDED.sum,
             sum_sin = {table}.sum_sin + EXCLUDED.sum_sin,
             sum_cos = {table}.sum_cos + EXCLUDED.sum_cos
           RETURNING 1)"
    )
}

/// The staged readings into `readings` (a row already there is skipped), and the rows
/// inserted added to `rollups_hourly` (`rollups_daily` is a view of it); answers the
/// number inserted.
static INSERT_AND_ROLL_UP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH ins AS (
           INSERT INTO readings (station, id, ts, sensor, quantity, value, flags, backfill, received_at)
           SELECT station, id, ts, sensor, quantity, value, flags, backfill, now() FROM staging
           ON CONFLICT DO NOTHING
           RETURNING station, sensor, quantity, ts, value, flags),
         {}
         SELECT count(*) FROM ins",
        roll_up("rollups_hourly", "1 hour")
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_partition_names_agree() {
        let ts = 1_764_633_600_000; // 2025-12-02
        let m = month_of(ts);
        assert_eq!(
            month_start(m),
            Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            month_start(m + 1),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(partition_month("readings_2025_12"), Some(m));
        assert_eq!(partition_month("readings_default"), None);
    }
}
