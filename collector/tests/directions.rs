//! Mean compass directions on the network page: around the circle (350° and 10° → 0°,
//! not 180°) in minute, hour and day buckets, also for rollups written before schema 5.
//! Batches go straight through `db::Db` into a PostgreSQL of the test's own.

use anemone::reading::{Flags, Quantity, Timestamp};
use anemone::store::Resolution;
use anemone::web::source::{HistorySource, Point};
use anemone_collector::db::{self, Batch, Db};
use anemone_collector::message::ReadingRow;
use anemone_collector::pgsource::PgSource;
use anemone_collector::schema::{self, MIGRATIONS};
use anemone_collector::testkit::PgCluster;
use chrono::{TimeZone, Utc};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// 2026-06-01T00:00:00Z: the first test day (a UTC day: the daily rollups' day).
fn day_one() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

fn row(
    station: &str,
    id: i64,
    ts: Timestamp,
    quantity: Quantity,
    value: f64,
    flags: Flags,
) -> ReadingRow {
    let sensor = if quantity == Quantity::AirTemperature {
        "air"
    } else {
        "vane"
    };
    ReadingRow {
        station: station.into(),
        id,
        ts,
        sensor: sensor.into(),
        quantity,
        value: Some(value),
        flags,
        backfill: false,
    }
}

async fn write(db: &mut Db, readings: Vec<ReadingRow>) {
    let batch = Batch {
        readings,
        ..Batch::default()
    };
    db.write(&batch).await.expect("write the batch");
}

/// The one bucket of `quantity` starting at `start` at `resolution`.
async fn bucket(
    source: &PgSource,
    station: &str,
    quantity: Quantity,
    start: Timestamp,
    resolution: Resolution,
) -> Point {
    let series = source
        .history(
            Some(station.into()),
            quantity,
            day_one() - DAY,
            day_one() + 3 * DAY,
            resolution,
        )
        .await
        .expect("history");
    let mut found = series.points.into_iter().filter(|p| p.ts == start);
    let point = found
        .next()
        .unwrap_or_else(|| panic!("a {resolution:?} bucket of {quantity} at {start}"));
    assert!(found.next().is_none(), "one sensor, one bucket");
    point
}

fn assert_north(p: &Point) {
    let v = p.value.expect("a mean direction");
    assert!((0.0..360.0).contains(&v), "{p:?}");
    assert!(v.min(360.0 - v) < 1e-9, "350° and 10° average to 0°: {p:?}");
}

async fn database(pg: &PgCluster, name: &str) -> (tokio_postgres::Client, PgSource) {
    let url = pg.create_database(name).await;
    let client = db::connect(&url).await.expect("connect");
    let reader = db::connect(&url).await.expect("connect");
    (client, PgSource::new(reader))
}

#[tokio::test]
async fn mean_directions_go_around_the_compass_in_minute_hour_and_day_buckets() {
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let (mut client, source) = database(&pg, "directions").await;
    schema::migrate(&mut client).await.expect("migrate");
    let mut db = Db::new(client).await.expect("a writer");
    let t = day_one() + 12 * HOUR;
    // 350° and 10° in two batches (the second adds to the rollup row the first made),
    // a spiked 180° that does not count, and temperatures of 10 and 20 °C beside them.
    write(
        &mut db,
        vec![
            row("s", 1, t, Quantity::WindDirection, 350.0, Flags::OK),
            row("s", 2, t + 1_000, Quantity::AirTemperature, 10.0, Flags::OK),
            row(
                "s",
                3,
                t + 2_000,
                Quantity::WindDirection,
                180.0,
                Flags::SPIKE,
            ),
        ],
    )
    .await;
    write(
        &mut db,
        vec![
            row("s", 4, t + 10_000, Quantity::WindDirection, 10.0, Flags::OK),
            row(
                "s",
                5,
                t + 11_000,
                Quantity::AirTemperature,
                20.0,
                Flags::OK,
            ),
            // Another day: two directions that cancel out have no mean.
            row("s", 6, t + DAY, Quantity::WindDirection, 0.0, Flags::OK),
            row(
                "s",
                7,
                t + DAY + 1_000,
                Quantity::WindDirection,
                180.0,
                Flags::OK,
            ),
        ],
    )
    .await;

    for (resolution, start) in [
        (Resolution::Minute, t),
        (Resolution::Hour, t),
        (Resolution::Day, day_one()),
    ] {
        let p = bucket(&source, "s", Quantity::WindDirection, start, resolution).await;
        assert_north(&p);
        assert_eq!(p.count, Some(2), "{resolution:?}: the spike is not counted");
        assert_eq!((p.min, p.max), (Some(10.0), Some(350.0)), "{resolution:?}");

        let temp = bucket(&source, "s", Quantity::AirTemperature, start, resolution).await;
        assert_eq!(temp.value, Some(15.0), "{resolution:?}: an ordinary mean");

        let p = bucket(
            &source,
            "s",
            Quantity::WindDirection,
            start + DAY,
            resolution,
        )
        .await;
        assert_eq!(
            p.value, None,
            "{resolution:?}: 0° and 180° have no mean: {p:?}"
        );
        assert_eq!(p.count, Some(2));
    }
}

/// Builds a database at schema version 4 (before the sums of sines and cosines).
async fn at_version_4(client: &mut tokio_postgres::Client) {
    client
        .batch_execute("CREATE TABLE schema_version (version integer NOT NULL)")
        .await
        .unwrap();
    for sql in &MIGRATIONS[..4] {
        client.batch_execute(sql).await.expect("an old migration");
    }
    client
        .batch_execute("INSERT INTO schema_version (version) VALUES (4)")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_migration_rebuilds_the_sums_of_rollups_written_before_it() {
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let (mut client, source) = database(&pg, "migrated").await;
    at_version_4(&mut client).await;
    // What a collector of schema 4 wrote: readings, and hourly rollups of count, min,
    // max and sum. Day one: 350° and 10°, 10 and 20 °C. Day two: 350° and 10° as well,
    // but one of those readings is deleted afterwards (its sums cannot be rebuilt).
    let (t, u) = (day_one() + 12 * HOUR, day_one() + DAY + 12 * HOUR);
    client
        .batch_execute(&format!(
            "INSERT INTO stations (id, first_seen, last_seen) VALUES ('old', now(), now());
             INSERT INTO readings (station, id, ts, sensor, quantity, value, flags, backfill, received_at)
             SELECT 'old', id, to_timestamp(ms / 1000.0), sensor, quantity, value, 0, false, now()
             FROM (VALUES (1, {t}, 'vane', 'wind_direction', 350.0),
                          (2, {t} + 1000, 'air', 'air_temperature', 10.0),
                          (3, {t} + 10000, 'vane', 'wind_direction', 10.0),
                          (4, {t} + 11000, 'air', 'air_temperature', 20.0),
                          (5, {u}, 'vane', 'wind_direction', 350.0),
                          (6, {u} + 10000, 'vane', 'wind_direction', 10.0))
                  AS r (id, ms, sensor, quantity, value);
             INSERT INTO rollups_hourly (station, sensor, quantity, start, count, flagged, min, max, sum)
             SELECT station, sensor, quantity, date_bin('1 hour', ts, '1970-01-01 00:00:00+00'),
                    count(value) FILTER (WHERE flags = 0),
                    count(*) FILTER (WHERE flags <> 0 OR value IS NULL),
                    min(value) FILTER (WHERE flags = 0), max(value) FILTER (WHERE flags = 0),
                    coalesce(sum(value) FILTER (WHERE flags = 0), 0)
             FROM readings GROUP BY 1, 2, 3, 4;
             DELETE FROM readings WHERE id = 6;"
        ))
        .await
        .expect("a schema 4 database with rollups");

    assert_eq!(
        schema::migrate(&mut client).await.expect("migrate"),
        (4, schema::SCHEMA_VERSION)
    );
    let sums: Vec<(String, Option<f64>)> = client
        .query(
            "SELECT quantity, sum_sin FROM rollups_hourly ORDER BY start, quantity",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(sums.len(), 3, "{sums:?}");
    assert!(sums[0].1.is_some() && sums[1].1.is_some(), "{sums:?}");
    assert_eq!(sums[2].1, None, "day two's readings are not all there");

    for (resolution, start) in [(Resolution::Hour, t), (Resolution::Day, day_one())] {
        let p = bucket(&source, "old", Quantity::WindDirection, start, resolution).await;
        assert_north(&p);
        let temp = bucket(&source, "old", Quantity::AirTemperature, start, resolution).await;
        assert_eq!(temp.value, Some(15.0), "{resolution:?}");
        // Day two: no mean rather than a wrong one; the rest of the bucket stays.
        let start = start + DAY;
        let p = bucket(&source, "old", Quantity::WindDirection, start, resolution).await;
        assert_eq!(p.value, None, "{resolution:?}: {p:?}");
        assert_eq!((p.count, p.min, p.max), (Some(2), Some(10.0), Some(350.0)));
    }

    // New readings add to the rebuilt sums; an hour whose sums are unknown stays unknown.
    let mut db = Db::new(client).await.expect("a writer");
    write(
        &mut db,
        vec![
            row(
                "old",
                7,
                t + 20_000,
                Quantity::WindDirection,
                0.0,
                Flags::OK,
            ),
            row(
                "old",
                8,
                u + 20_000,
                Quantity::WindDirection,
                0.0,
                Flags::OK,
            ),
        ],
    )
    .await;
    let p = bucket(&source, "old", Quantity::WindDirection, t, Resolution::Hour).await;
    assert_north(&p);
    assert_eq!(p.count, Some(3));
    let p = bucket(&source, "old", Quantity::WindDirection, u, Resolution::Hour).await;
    assert_eq!((p.value, p.count), (None, Some(3)));
}
