//! The PostgreSQL schema and its forward migrations, versioned like the station's
//! (`src/store/schema.rs`): [`MIGRATIONS`]`[n - 1]` takes a database from version `n - 1` to
//! `n`, each in one transaction with the bump of `schema_version`, so a failed migration
//! leaves the previous version intact. A database newer than this build is refused.
//!
//! To change the schema: append a migration, never edit a published one.
//!
//! Readings are partitioned by month of `ts`. PostgreSQL requires a partitioned table's
//! unique key to contain the partition key, so the key is `(station, id, ts)`: a station's
//! reading id is never reused and a redelivered reading carries its original `ts`, so
//! that key admits one row per `(station, id)` for every message a station sends. The
//! default partition takes rows whose month has no partition yet, so an insert never fails
//! for a missing partition; the writer creates each month's partition before its first row.

use tokio_postgres::Client;

/// Forward migrations; index `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE stations (
        id          text PRIMARY KEY,
        name        text,
        latitude    double precision,
        longitude   double precision,
        altitude_m  double precision,
        metadata    jsonb,
        state       jsonb,
        state_at    timestamptz,
        online      boolean,
        status_at   timestamptz,
        first_seen  timestamptz NOT NULL,
        last_seen   timestamptz NOT NULL
    );
    CREATE TABLE readings (
        station     text NOT NULL,
        id          bigint NOT NULL,
        ts          timestamptz NOT NULL,
        sensor      text NOT NULL,
        quantity    text NOT NULL,
        value       double precision,
        flags       smallint NOT NULL,
        backfill    boolean NOT NULL,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (station, id, ts)
    ) PARTITION BY RANGE (ts);
    CREATE TABLE readings_default PARTITION OF readings DEFAULT;
    CREATE INDEX readings_by_station_time ON readings (station, ts);
    -- Rollups of the readings whose flags are empty (`count`, `min`, `max`, `sum`; the mean
    -- is sum / count); `flagged` counts the others. UTC hours and days.
    CREATE TABLE rollups_hourly (
        station  text NOT NULL,
        sensor   text NOT NULL,
        quantity text NOT NULL,
        start    timestamptz NOT NULL,
        count    bigint NOT NULL,
        flagged  bigint NOT NULL,
        min      double precision,
        max      double precision,
        sum      double precision NOT NULL,
        PRIMARY KEY (station, sensor, quantity, start)
    );
    CREATE TABLE rollups_daily (LIKE rollups_hourly INCLUDING ALL);
    CREATE TABLE dead_letters (
        id          bigserial PRIMARY KEY,
        topic       text NOT NULL,
        payload     bytea NOT NULL,
        reason      text NOT NULL,
        received_at timestamptz NOT NULL
    );
    "#,
    // 2: daily rollups computed from the hourly ones (UTC days hold whole UTC hours), so a
    // batch updates one rollup row per (station, sensor, quantity, hour) instead of two.
    r#"
    DROP TABLE rollups_daily;
    CREATE VIEW rollups_daily AS
    SELECT station, sensor, quantity,
           date_bin('1 day', start, '1970-01-01 00:00:00+00') AS start,
           sum(count)::bigint AS count,
           sum(flagged)::bigint AS flagged,
           min(min) AS min,
           max(max) AS max,
           sum(sum) AS sum
    FROM rollups_hourly
    GROUP BY 1, 2, 3, 4;
    "#,
    // 3: the heads of the stations' tamper-evident chains (`…/chain`), every distinct
    // one received: `anemone-collector verify` compares them with a station's database.
    r#"
    CREATE TABLE chain_heads (
        station     text NOT NULL,
        batch       bigint NOT NULL,
        last_id     bigint NOT NULL,
        hash        text NOT NULL,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (station, batch, hash)
    );
    "#,
    // 4: signed heads (`[station] signing_key`): each head's public key and signature,
    // and the first public key seen for each station (from its meta or a head), against
    // which every later head is checked.
    r#"
    ALTER TABLE chain_heads ADD COLUMN public_key text, ADD COLUMN signature text;
    CREATE TABLE station_keys (
        station    text PRIMARY KEY,
        public_key text NOT NULL,
        first_seen timestamptz NOT NULL
    );
    "#,
    // 5: circular means of compass directions (`Quantity::is_direction`): each rollup row
    // also sums the sine and cosine of its unflagged values, and the mean direction is the
    // direction of that vector sum (`pgsource`). Rows that existed before get their sums
    // rebuilt from the readings still stored; a row whose unflagged readings are no longer
    // all there (deleted by hand: the collector itself deletes none) keeps NULL, which
    // means "unknown" — such a bucket answers no mean direction rather than a wrong one,
    // and stays NULL as later readings are added. The daily view is NULL on a day with
    // any such hour.
    r#"
    ALTER TABLE rollups_hourly ADD COLUMN sum_sin double precision,
                               ADD COLUMN sum_cos double precision;
    UPDATE rollups_hourly r SET sum_sin = s.sum_sin, sum_cos = s.sum_cos
    FROM (SELECT station, sensor, quantity,
                 date_bin('1 hour', ts, '1970-01-01 00:00:00+00') AS start,
                 count(value) FILTER (WHERE flags = 0) AS count,
                 coalesce(sum(sin(radians(value))) FILTER (WHERE flags = 0), 0) AS sum_sin,
                 coalesce(sum(cos(radians(value))) FILTER (WHERE flags = 0), 0) AS sum_cos
          FROM readings GROUP BY 1, 2, 3, 4) s
    WHERE r.station = s.station AND r.sensor = s.sensor AND r.quantity = s.quantity
      AND r.start = s.start AND r.count = s.count;
    CREATE OR REPLACE VIEW rollups_daily AS
    SELECT station, sensor, quantity,
           date_bin('1 day', start, '1970-01-01 00:00:00+00') AS start,
           sum(count)::bigint AS count,
           sum(flagged)::bigint AS flagged,
           min(min) AS min,
           max(max) AS max,
           sum(sum) AS sum,
           CASE WHEN count(sum_sin) = count(*) THEN sum(sum_sin) END AS sum_sin,
           CASE WHEN count(sum_cos) = count(*) THEN sum(sum_cos) END AS sum_cos
    FROM rollups_hourly
    GROUP BY 1, 2, 3, 4;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Serialises migrations between collectors starting together (an advisory lock key).
const MIGRATION_LOCK: i64 = 0x416E_456D_0001;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// PostgreSQL refused.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Written by a newer collector.
    #[error("the database has schema version {found}, newer than this collector's {SCHEMA_VERSION}: upgrade anemone-collector")]
    TooNew {
        /// The version found.
        found: i32,
    },
}

/// The database's schema version (0 for an empty database).
pub async fn version(client: &Client) -> Result<i32, SchemaError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT version FROM schema_version", &[])
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`]; returns the versions before and after.
pub async fn migrate(client: &mut Client) -> Result<(i32, i32), SchemaError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = migrate_locked(client).await;
    // The lock also ends with the session; an error here changes nothing.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

async fn migrate_locked(client: &mut Client) -> Result<(i32, i32), SchemaError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        .await?;
    let before = version(client).await?;
    if before > SCHEMA_VERSION {
        return Err(SchemaError::TooNew { found: before });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(before as usize) {
        let to = i as i32 + 1;
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute("DELETE FROM schema_version", &[]).await?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&to])
            .await?;
        tx.commit().await?;
        tracing::info!(
            version = to,
            "Migrated the collector's schema to version {to}"
        );
    }
    Ok((before, SCHEMA_VERSION))
}
