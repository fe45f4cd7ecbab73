//! The on-disk schema, its forward migrations, and the stable numeric codes stored in it.
//!
//! The schema version lives in `PRAGMA user_version`; [`MIGRATIONS`]`[n - 1]` takes a
//! database from version `n - 1` to `n`. Migrations only ever move forward and each runs in
//! the same transaction as the `user_version` bump, so a crash mid-migration leaves the
//! previous version intact. A database whose version is newer than [`SCHEMA_VERSION`] was
//! written by a newer Anemone and is refused rather than guessed at.
//!
//! To change the schema: append a migration (never edit a published one), bump nothing
//! else — [`SCHEMA_VERSION`] is the length of [`MIGRATIONS`] — and add a test that opens a
//! database of the previous version.

use crate::reading::Quantity;

/// `PRAGMA application_id` of every Anemone database: ASCII `"AnEm"`.
///
/// A SQLite file with another non-zero id belongs to another program and is refused
/// without being opened for writing.
pub const APPLICATION_ID: i32 = 0x416E_456D;

/// Forward migrations; index `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE sensors (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL,
        hardware_id TEXT
    );
    -- Append-only, clustered by append order (the rowid), which is time order up to a few
    -- seconds of skew between sensors. No secondary index: see the module docs of `store`.
    CREATE TABLE readings (
        id       INTEGER PRIMARY KEY,
        ts       INTEGER NOT NULL,
        sensor   INTEGER NOT NULL,
        quantity INTEGER NOT NULL,
        value    REAL,
        flags    INTEGER NOT NULL
    );
    -- Keyed by time first, so new buckets append at the end of each resolution's range.
    -- first_id/last_id bound the reading ids inside the bucket: hour buckets double as a
    -- sparse time index into `readings`.
    CREATE TABLE aggregates (
        resolution INTEGER NOT NULL,
        start      INTEGER NOT NULL,
        sensor     INTEGER NOT NULL,
        quantity   INTEGER NOT NULL,
        end        INTEGER NOT NULL,
        count      INTEGER NOT NULL,
        flagged    INTEGER NOT NULL,
        min        REAL,
        min_ts     INTEGER,
        max        REAL,
        max_ts     INTEGER,
        sum        REAL NOT NULL,
        first_id   INTEGER NOT NULL,
        last_id    INTEGER NOT NULL,
        PRIMARY KEY (resolution, start, sensor, quantity)
    ) WITHOUT ROWID;
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value
    ) WITHOUT ROWID;
    "#,
    // 2: calibrations recorded by `anemone calibrate` (a later issue), newest per sensor
    // found by (sensor, ts).
    r#"
    CREATE TABLE calibrations (
        id      INTEGER PRIMARY KEY,
        sensor  INTEGER NOT NULL,
        ts      INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX calibrations_by_sensor ON calibrations (sensor, ts);
    "#,
    // 3: rows brought in by `anemone import`: the source's row ids, so a second import of
    // the same rows adds nothing (see `store::import`).
    r#"
    CREATE TABLE imported_rows (
        source TEXT NOT NULL,
        row_id INTEGER NOT NULL,
        PRIMARY KEY (source, row_id)
    ) WITHOUT ROWID;
    "#,
    // 4: aggregates clustered by quantity. A chart reads one quantity of one resolution
    // over a time range; keyed (resolution, start, ...) that read every quantity of the
    // range (EXPLAIN QUERY PLAN: the key's range, filtered), and an index on
    // (resolution, quantity, start) was not chosen, nor faster when forced (each entry
    // costs a lookup into the same pages). Keyed (resolution, quantity, start, sensor) a
    // chart reads only its rows, in order. Queries over every quantity (a day's summary,
    // exports) go through `aggregates_by_time`, the old key as an index. Buckets are
    // written when aggregates are persisted (hourly), never on the readings' commit path.
    r#"
    CREATE TABLE aggregates_v4 (
        resolution INTEGER NOT NULL,
        start      INTEGER NOT NULL,
        sensor     INTEGER NOT NULL,
        quantity   INTEGER NOT NULL,
        end        INTEGER NOT NULL,
        count      INTEGER NOT NULL,
        flagged    INTEGER NOT NULL,
        min        REAL,
        min_ts     INTEGER,
        max        REAL,
        max_ts     INTEGER,
        sum        REAL NOT NULL,
        first_id   INTEGER NOT NULL,
        last_id    INTEGER NOT NULL,
        PRIMARY KEY (resolution, quantity, start, sensor)
    ) WITHOUT ROWID;
    INSERT INTO aggregates_v4 (resolution, start, sensor, quantity, end, count, flagged,
        min, min_ts, max, max_ts, sum, first_id, last_id)
        SELECT resolution, start, sensor, quantity, end, count, flagged,
        min, min_ts, max, max_ts, sum, first_id, last_id FROM aggregates;
    DROP TABLE aggregates;
    ALTER TABLE aggregates_v4 RENAME TO aggregates;
    CREATE INDEX aggregates_by_time ON aggregates (resolution, start, sensor, quantity);
    "#,
    // 5: the tamper-evident chain (see `store::chain`): one row per commit batch,
    // appended at the tail of a rowid table. The genesis records over the readings already
    // stored are written right after this migration, in Rust (`chain::start_if_pending`).
    r#"
    CREATE TABLE chain (
        batch    INTEGER PRIMARY KEY,
        kind     INTEGER NOT NULL,
        first_id INTEGER NOT NULL,
        last_id  INTEGER NOT NULL,
        rows     INTEGER NOT NULL,
        hash     BLOB NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('chain_pending', 1);
    "#,
    // 6: the sums of the sines and cosines of a direction bucket's counted readings, its
    // mean direction being that of their vector sum (`reading::circular_mean`); NULL in
    // the buckets of other quantities. Filled for the buckets already stored from their
    // readings right after this migration, in Rust (`aggregate::fill_direction_vectors`).
    r#"
    ALTER TABLE aggregates ADD COLUMN sum_sin REAL;
    ALTER TABLE aggregates ADD COLUMN sum_cos REAL;
    INSERT INTO meta (key, value) VALUES ('direction_vectors_pending', 1);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `meta` key: highest reading id acknowledged by the MQTT broker.
pub const META_PUBLISH_CURSOR: &str = "publish_cursor";
/// `meta` key: highest reading id folded into the persisted aggregates.
pub const META_AGG_THROUGH: &str = "aggregates_through_id";
/// `meta` key: every reading id up to this one is taken (handed to MQTT before its commit
/// perhaps), even where no stored reading has it: new readings get higher ids.
pub const META_IDS_RESERVED: &str = "reading_ids_reserved";
/// `meta` key: the station time retention last acted on (ms); retention's notion of
/// "now" advances from it only by station time actually elapsed (see `store` docs).
pub const META_RETENTION_NOW: &str = "retention_now";
/// `meta` key: the IANA zone the persisted day buckets were cut in.
pub const META_DAY_TZ: &str = "day_timezone";
/// `meta` key: the station id the station last ran under (see `station::run`).
pub const META_STATION_ID: &str = "station_id";

/// `meta` key: set by migration 5 until the chain's genesis records are written.
pub const META_CHAIN_PENDING: &str = "chain_pending";

/// `meta` key: set by migration 6 until the direction buckets already stored have their
/// sums of sines and cosines.
pub const META_DIRECTION_VECTORS_PENDING: &str = "direction_vectors_pending";

/// `sensors.kind` of the sensors `anemone import` stores history under: their readings
/// are not offered to MQTT as live data (see `store::import`).
pub const IMPORT_KIND: &str = "import";

/// True for the codes of compass directions ([`Quantity::is_direction`]: averaged around
/// the circle, not along a line; see `aggregate::Bucket::add`).
pub fn is_direction_code(code: i64) -> bool {
    quantity_from_code(code).is_some_and(Quantity::is_direction)
}

/// The stored code of a quantity. These numbers are on disk: never change or reuse one;
/// a new quantity takes the next free number.
pub fn quantity_code(q: Quantity) -> i64 {
    match q {
        Quantity::AirTemperature => 1,
        Quantity::RelativeHumidity => 2,
        Quantity::AirPressure => 3,
        Quantity::SeaLevelPressure => 4,
        Quantity::DewPoint => 5,
        Quantity::WindChill => 6,
        Quantity::HeatIndex => 7,
        Quantity::FeelsLike => 8,
        Quantity::WindSpeed => 9,
        Quantity::WindGust => 10,
        Quantity::WindDirection => 11,
        Quantity::Rain => 12,
        Quantity::RainRate => 13,
        Quantity::RainToday => 14,
        Quantity::WaterTemperature => 15,
        Quantity::GroundTemperature => 16,
        Quantity::Ph => 17,
        Quantity::Conductivity => 18,
        Quantity::DissolvedOxygen => 19,
        Quantity::WindSpeedAvg2m => 20,
        Quantity::WindSpeedAvg10m => 21,
        Quantity::WindDirectionAvg10m => 22,
        Quantity::WindGustDirection => 23,
        Quantity::RainLast24h => 24,
        Quantity::PhTemperature => 25,
        Quantity::Illuminance => 26,
        Quantity::UvIndex => 27,
        Quantity::AirQualityRatio => 28,
        Quantity::AirQualityResistance => 29,
        Quantity::LightningStrikes => 30,
        Quantity::LightningDistance => 31,
        Quantity::LightningEnergy => 32,
        Quantity::Salinity => 33,
        Quantity::OxygenSaturation => 34,
        Quantity::Orp => 35,
        Quantity::Co2 => 36,
        Quantity::BatteryVoltage => 37,
        Quantity::BatteryCurrent => 38,
        Quantity::BatteryPower => 39,
        Quantity::SolarVoltage => 40,
        Quantity::SolarCurrent => 41,
        Quantity::SolarPower => 42,
        Quantity::PowerSaving => 43,
        Quantity::Turbidity => 44,
        Quantity::Nitrate => 45,
        Quantity::AnalogVoltage => 46,
        // 33–59: the reef buoy's chemistry, gases and power.
        Quantity::Latitude => 60,
        Quantity::Longitude => 61,
        Quantity::GpsFixMode => 62,
        Quantity::GpsSatellites => 63,
        Quantity::SpeedOverGround => 64,
        Quantity::AnchorDistance => 65,
        Quantity::CurrentSpeed => 66,
        Quantity::CurrentSpeedAvg2m => 67,
        Quantity::CurrentSpeedAvg10m => 68,
    }
}

/// The quantity stored as `code`, if this build knows it.
pub fn quantity_from_code(code: i64) -> Option<Quantity> {
    Quantity::ALL
        .iter()
        .copied()
        .find(|q| quantity_code(*q) == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for q in Quantity::ALL {
            let c = quantity_code(*q);
            assert!(seen.insert(c), "code {c} reused");
            assert_eq!(quantity_from_code(c), Some(*q));
        }
        assert_eq!(quantity_from_code(0), None);
    }

    #[test]
    fn application_id_spells_anem() {
        assert_eq!(&APPLICATION_ID.to_be_bytes(), b"AnEm");
    }
}
