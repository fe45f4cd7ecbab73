//! The tests' network: a PostgreSQL and a Mosquitto of their own, `anemone-collector`
//! processes, and real stations (`anemone::station::run` on simulated buses, the same code
//! as `anemone run --simulate`) whose SQLite store is the truth the database is checked
//! against, row by row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anemone::clock::Clock;
use anemone::config::Config as StationConfig;
use anemone::reading::{Quantity, Reading, StoredReading};
use anemone::station::{self, RunOptions};
use anemone::store::{Query, Store};
use anemone_collector::testkit::{CollectorProcess, Mosquitto, MosquittoOptions, PgCluster};

pub const BIN: &str = env!("CARGO_BIN_EXE_anemone-collector");

/// PostgreSQL with a migrated database, and a broker.
pub struct Net {
    pub pg: PgCluster,
    pub broker: Mosquitto,
    pub db_url: String,
}

impl Net {
    /// `None` when PostgreSQL or Mosquitto is missing outside CI.
    pub async fn start(opts: MosquittoOptions) -> Option<Net> {
        let pg = PgCluster::start()?;
        let broker = Mosquitto::start(&opts)?;
        let db_url = pg.create_database("network").await;
        let net = Net { pg, broker, db_url };
        CollectorProcess::migrate(Path::new(BIN), &net.collector_config("migrate", None, ""));
        Some(net)
    }

    /// A collector config: `extra` is appended inside `[mqtt]`.
    pub fn collector_config(&self, client_id: &str, share: Option<&str>, extra: &str) -> String {
        let share = share
            .map(|g| format!("share_group = \"{g}\"\n"))
            .unwrap_or_default();
        format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"{client_id}\"\n{share}{extra}\n\
             [postgres]\nurl = \"{}\"\n[batch]\nsize = 200\ninterval = \"100ms\"\n",
            self.broker.url(),
            self.db_url
        )
    }

    /// Starts a collector and waits until it has subscribed (the broker keeps nothing for
    /// a session that does not exist yet).
    pub fn collector(&self, client_id: &str, share: Option<&str>, extra: &str) -> CollectorProcess {
        let c = CollectorProcess::spawn(
            Path::new(BIN),
            &self.collector_config(client_id, share, extra),
        );
        tokio::task::block_in_place(|| c.wait_subscribed());
        c
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        anemone_collector::db::connect(&self.db_url)
            .await
            .expect("connect to the test database")
    }
}

/// A simulated station's config: one BME280 every second, publishing to `broker`.
pub fn station_config(
    id: &str,
    broker: &str,
    dir: &Path,
    login: Option<(&str, &str)>,
    extra_mqtt: &str,
) -> StationConfig {
    let login = login
        .map(|(u, p)| format!("username = \"{u}\"\npassword = \"{p}\"\nallow_insecure = true\n"))
        .unwrap_or_default();
    let text = format!(
        r#"
[station]
id = "{id}"
name = "Station {id}"
latitude = 50.1
longitude = -5.5
altitude_m = 40.0

[hal]
simulate = true
seed = 3

[storage]
path = "{db}"
commit_interval = "10s"

[mqtt]
broker = "{broker}"
discovery = false
{login}{extra_mqtt}

[web]
enabled = false

[[sensor]]
type = "bme280"
id = "air"
address = 0x76
interval = "1s"
"#,
        db = dir.join(format!("{id}.db")).display()
    );
    StationConfig::from_toml(&text, "test station").expect("a valid station config")
}

/// Runs a station for `duration_ms` of station time at `speed` (`None`: as fast as it goes).
pub async fn run_station(
    cfg: StationConfig,
    start: i64,
    speed: Option<f64>,
    duration_ms: i64,
) -> PathBuf {
    let db_path = cfg.storage.path.clone();
    let clock = match speed {
        Some(s) => Clock::scaled(start, s),
        None => Clock::virtual_at(start),
    };
    let opts = RunOptions {
        clock,
        duration_ms: Some(duration_ms),
        db_path: db_path.clone(),
        live: None,
        writer_handle: None,
        progress: None,
        web_addr: None,
    };
    station::run(Arc::new(cfg), opts, std::future::pending())
        .await
        .expect("the station runs");
    db_path
}

/// Every reading a station stored.
pub fn stored(db: &Path) -> Vec<StoredReading> {
    let store = Store::open_read_only(db, chrono_tz::UTC).expect("open the station's store");
    store
        .readings(&Query::default())
        .expect("read the station's store")
}

/// A reading row as the collector stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ts: i64,
    pub sensor: String,
    pub quantity: String,
    pub value: Option<f64>,
    pub flags: i16,
    pub backfill: bool,
}

/// The station's rows by reading id, and how many ids appear more than once.
pub async fn rows(client: &tokio_postgres::Client, station: &str) -> (HashMap<i64, Row>, u64) {
    let rs = client
        .query(
            "SELECT id, (extract(epoch from ts) * 1000)::bigint, sensor, quantity, value, flags, backfill
             FROM readings WHERE station = $1",
            &[&station],
        )
        .await
        .expect("read the readings");
    let mut map = HashMap::new();
    let mut twice = 0;
    for r in rs {
        let row = Row {
            ts: r.get(1),
            sensor: r.get(2),
            quantity: r.get(3),
            value: r.get(4),
            flags: r.get(5),
            backfill: r.get(6),
        };
        if map.insert(r.get::<_, i64>(0), row).is_some() {
            twice += 1;
        }
    }
    (map, twice)
}

/// Waits until the database holds as many rows of `station` as `expected`.
pub async fn wait_for_rows(
    client: &tokio_postgres::Client,
    station: &str,
    expected: usize,
    secs: u64,
) {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM readings WHERE station = $1",
                &[&station],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1);
        if n >= expected as i64 || Instant::now() > end {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks row by row that every reading the station stored is in the database exactly
/// once, with its time, sensor, quantity, value and flags; returns the rows.
pub async fn assert_exactly_once(
    client: &tokio_postgres::Client,
    station: &str,
    store: &[StoredReading],
) -> HashMap<i64, Row> {
    assert!(!store.is_empty(), "station {station} stored nothing");
    wait_for_rows(client, station, store.len(), 120).await;
    let (rows, twice) = rows(client, station).await;
    assert_eq!(twice, 0, "{twice} readings of {station} are stored twice");
    for s in store {
        let Some(row) = rows.get(&s.id) else {
            panic!(
                "reading {} of {station} ({:?}) is missing from the database ({} of {} there)",
                s.id,
                s.reading,
                rows.len(),
                store.len()
            );
        };
        let r = &s.reading;
        assert_eq!(row.ts, r.ts, "time of reading {}", s.id);
        assert_eq!(row.sensor, &*r.sensor, "sensor of reading {}", s.id);
        assert_eq!(
            row.quantity,
            r.quantity.as_str(),
            "quantity of reading {}",
            s.id
        );
        assert_eq!(
            row.flags,
            i16::from(r.flags.bits()),
            "flags of reading {}",
            s.id
        );
        match (row.value, r.value) {
            (Some(a), Some(b)) => assert!(
                (a - b).abs() <= 0.05 * b.abs().max(1.0),
                "value of reading {}: {a} vs {b}",
                s.id
            ),
            (a, b) => assert_eq!(
                a.is_some(),
                b.is_some_and(f64::is_finite),
                "value of reading {}",
                s.id
            ),
        }
    }
    assert_eq!(
        rows.len(),
        store.len(),
        "the database holds readings of {station} the station never stored"
    );
    rows
}

/// Start of the current UTC hour minus `hours_ago` (station runs start there).
pub fn start_ago(hours_ago: i64) -> i64 {
    let now = anemone::clock::system_now();
    now - now.rem_euclid(3_600_000) - hours_ago * 3_600_000
}

/// A real `reading/air` payload of station `lab` (the station's own serialiser).
pub fn payload(id: i64, ts: i64) -> Vec<u8> {
    let sensor: Arc<str> = Arc::from("air");
    let r = Reading::new(
        ts,
        &sensor,
        Quantity::AirTemperature,
        10.0 + id as f64 / 10.0,
    );
    let mut out = Vec::new();
    StoredReading { id, reading: r }
        .json_with_id(false, &anemone::reading::Precision::default())
        .write_to(&mut out);
    out
}
