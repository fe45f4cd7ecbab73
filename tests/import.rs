//! `anemone import` against a real MariaDB server: the test creates its own database on
//! the machine's server (127.0.0.1:3306, root without a password, as DESIGN.md allows;
//! `.ci/mariadb/ensure-mariadb.sh` installs and starts it), writes the Oracle Weather Station's
//! table and rows into it, imports them from the server and from a `mysqldump` of it,
//! checks every value, imports again (nothing added), and drops the database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anemone::reading::Quantity;
use anemone::store::{Query, Store};

use crate::cli::bin;

const HOST: &str = "127.0.0.1";
const PORT: &str = "3306";

/// The Foundation's `create.sql` schema (written here from its column list and types).
const CREATE: &str = "CREATE TABLE WEATHER_MEASUREMENT(
   ID BIGINT NOT NULL AUTO_INCREMENT,
   REMOTE_ID BIGINT,
   AMBIENT_TEMPERATURE DECIMAL(6,2) NOT NULL,
   GROUND_TEMPERATURE DECIMAL(6,2) NOT NULL,
   AIR_QUALITY DECIMAL(6,2) NOT NULL,
   AIR_PRESSURE DECIMAL(6,2) NOT NULL,
   HUMIDITY DECIMAL(6,2) NOT NULL,
   WIND_DIRECTION DECIMAL(6,2) NULL,
   WIND_SPEED DECIMAL(6,2) NOT NULL,
   WIND_GUST_SPEED DECIMAL(6,2) NOT NULL,
   RAINFALL DECIMAL(6,2) NOT NULL,
   CREATED TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
   PRIMARY KEY (ID));";

fn client() -> Command {
    let mut c = Command::new("mariadb");
    c.args(["--user=root", "--batch", "--raw"])
        .arg(format!("--host={HOST}"))
        .arg(format!("--port={PORT}"));
    c
}

fn sql(db: Option<&str>, text: &str) -> String {
    let mut c = client();
    if let Some(db) = db {
        c.arg(format!("--database={db}"));
    }
    let out =
        c.arg("-e").arg(text).output().expect(
            "run the mariadb client: install it (.ci/mariadb/ensure-mariadb.sh installs it)",
        );
    assert!(
        out.status.success(),
        "mariadb -e {text:?}: {} (is the server running on {HOST}:{PORT}? .ci/mariadb/ensure-mariadb.sh starts it)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A database of the test's own, dropped at the end.
struct TestDb(String);

impl TestDb {
    fn new() -> TestDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("anemone_import_{}_{nanos}", std::process::id());
        sql(None, &format!("CREATE DATABASE `{name}`"));
        TestDb(name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = client()
            .arg("-e")
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.0))
            .output();
    }
}

/// One row the test writes: (id, local time at +01:00, column values as SQL text).
struct Row {
    id: i64,
    /// Minutes after 2017-07-01 12:00 local (BST, +01:00).
    minute: i64,
    amb: f64,
    ground: f64,
    pressure: f64,
    humidity: f64,
    direction: Option<f64>,
    speed_kmh: f64,
    gust_kmh: f64,
    rain: f64,
}

fn rows() -> Vec<Row> {
    (1..=30)
        .map(|i| Row {
            id: i,
            minute: 5 * i,
            amb: 15.0 + i as f64 * 0.25,
            ground: 10.0 + i as f64 * 0.5,
            // The first release logged kPa.
            pressure: if i == 1 { 101.25 } else { 1000.0 + i as f64 },
            humidity: 60.0 + i as f64,
            direction: (i % 5 != 0).then(|| (i as f64 * 22.5) % 360.0),
            speed_kmh: i as f64 * 1.8,
            gust_kmh: i as f64 * 3.6,
            rain: if i % 3 == 0 { 0.28 } else { 0.0 },
        })
        .collect()
}

fn local(minute: i64) -> String {
    format!("2017-07-01 {:02}:{:02}:00", 12 + minute / 60, minute % 60)
}

/// 2017-07-01 12:00 BST in UTC ms.
const NOON_BST_UTC_MS: i64 = 1_498_906_800_000;

fn insert_sql(rows: &[Row]) -> String {
    let vals: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "({},NULL,{:.2},{:.2},42.5,{:.2},{:.2},{},{:.2},{:.2},{:.2},'{}')",
                r.id,
                r.amb,
                r.ground,
                r.pressure,
                r.humidity,
                r.direction.map_or("NULL".into(), |d| format!("{d:.2}")),
                r.speed_kmh,
                r.gust_kmh,
                r.rain,
                local(r.minute)
            )
        })
        .collect();
    format!(
        "INSERT INTO WEATHER_MEASUREMENT VALUES {};",
        vals.join(",\n")
    )
}

/// Every reading the rows must give: (ts, quantity, value), in a fixed order.
fn expected(rows: &[Row]) -> Vec<(i64, Quantity, f64)> {
    let mut out = Vec::new();
    for r in rows {
        let ts = NOON_BST_UTC_MS + r.minute * 60_000;
        out.push((ts, Quantity::AirTemperature, r.amb));
        out.push((ts, Quantity::GroundTemperature, r.ground));
        out.push((ts, Quantity::RelativeHumidity, r.humidity));
        let hpa = if r.pressure < 200.0 {
            r.pressure * 10.0
        } else {
            r.pressure
        };
        out.push((ts, Quantity::AirPressure, hpa));
        if let Some(d) = r.direction {
            out.push((ts, Quantity::WindDirection, d));
        }
        out.push((ts, Quantity::WindSpeed, r.speed_kmh / 3.6));
        out.push((ts, Quantity::WindGust, r.gust_kmh / 3.6));
        out.push((ts, Quantity::Rain, r.rain));
    }
    sorted(out)
}

fn sorted(mut v: Vec<(i64, Quantity, f64)>) -> Vec<(i64, Quantity, f64)> {
    v.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
    v
}

fn stored(db: &Path) -> Vec<(i64, Quantity, f64)> {
    let store = Store::open_read_only(db, chrono_tz::Europe::London).unwrap();
    let q = Query {
        sensor: Some("oracle-import".into()),
        ..Query::default()
    };
    let got = store
        .readings(&q)
        .unwrap()
        .into_iter()
        .map(|s| {
            assert!(s.reading.flags.is_ok());
            (s.reading.ts, s.reading.quantity, s.reading.value.unwrap())
        })
        .collect();
    sorted(got)
}

fn assert_same(got: &[(i64, Quantity, f64)], want: &[(i64, Quantity, f64)]) {
    assert_eq!(got.len(), want.len(), "reading count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0, g.1), (w.0, w.1));
        assert!(
            (g.2 - w.2).abs() < 1e-9,
            "{:?}: got {}, want {}",
            g.1,
            g.2,
            w.2
        );
    }
}

fn config(dir: &Path) -> (PathBuf, PathBuf) {
    let db = dir.join("station.db");
    let cfg = dir.join("anemone.toml");
    std::fs::write(
        &cfg,
        format!(
            "[station]\ntimezone = \"Europe/London\"\n[storage]\npath = \"{}\"\n[mqtt]\nenabled = false\n",
            db.display()
        ),
    )
    .unwrap();
    (cfg, db)
}

fn import(cfg: &Path, args: &[&str]) -> Output {
    bin()
        .arg("--config")
        .arg(cfg)
        .arg("import")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The test's database with its table and rows, written at +01:00 as a Pi in BST did.
fn loaded_db() -> TestDb {
    let db = TestDb::new();
    sql(Some(&db.0), CREATE);
    sql(
        Some(&db.0),
        &format!("SET time_zone = '+01:00'; {}", insert_sql(&rows())),
    );
    db
}

#[test]
fn from_the_server_every_value_and_again_nothing() {
    let mdb = loaded_db();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, db) = config(dir.path());
    let url = format!("mysql://root@{HOST}:{PORT}/{}", mdb.0);
    let first = import(&cfg, &["--from", &url]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("Imported 30 rows"),
        "{}",
        text(&first)
    );
    let want = expected(&rows());
    assert_same(&stored(&db), &want);

    let again = import(&cfg, &["--from", &url]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("Imported 0 rows (0 readings); 30 imported before"),
        "{}",
        text(&again)
    );
    assert_same(&stored(&db), &want);

    // The day's aggregates show the history.
    let stats = bin()
        .arg("--config")
        .arg(&cfg)
        .args(["stats", "--day", "2017-07-01", "--json"])
        .output()
        .unwrap();
    assert!(stats.status.success(), "{}", text(&stats));
    let out = String::from_utf8_lossy(&stats.stdout);
    assert!(
        out.contains("oracle-import") && out.contains("air_temperature"),
        "{out}"
    );

    // New rows on the server: only they are added.
    sql(
        Some(&mdb.0),
        "SET time_zone = '+01:00'; INSERT INTO WEATHER_MEASUREMENT VALUES \
         (31,NULL,20,11,40,1001,70,NULL,0,0,0,'2017-07-01 15:00:00')",
    );
    let third = import(&cfg, &["--from", &url]);
    assert!(
        text(&third).contains("Imported 1 rows (7 readings); 30 imported before"),
        "{}",
        text(&third)
    );
}

#[test]
fn a_wrong_password_file_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _) = config(dir.path());
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "not-the-Password-42\n").unwrap();
    let user = format!("anemone_imp_{}", std::process::id());
    sql(
        None,
        &format!("CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY 'right-one'"),
    );
    let out = import(
        &cfg,
        &[
            "--from",
            &format!("mysql://{user}@{HOST}:{PORT}/mysql"),
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    sql(None, &format!("DROP USER IF EXISTS '{user}'@'%'"));
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("Access denied"), "{t}");
    assert!(!t.contains("not-the-Password-42"), "{t}");
}

#[test]
fn from_a_mysqldump_every_value_and_again_nothing() {
    let mdb = loaded_db();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("weather.sql");
    let out = Command::new("mysqldump")
        .args([
            "--user=root",
            &format!("--host={HOST}"),
            &format!("--port={PORT}"),
        ])
        .arg(&mdb.0)
        .output()
        .expect("run mysqldump (apt-get install mariadb-client)");
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&dump, &out.stdout).unwrap();
    let (cfg, db) = config(dir.path());
    let first = import(&cfg, &["--from-dump", dump.to_str().unwrap()]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains(&format!("Source `{}`", mdb.0)),
        "{}",
        text(&first)
    );
    let want = expected(&rows());
    assert_same(&stored(&db), &want);
    let again = import(&cfg, &["--from-dump", dump.to_str().unwrap()]);
    assert!(text(&again).contains("Imported 0 rows"), "{}", text(&again));
    assert_same(&stored(&db), &want);
    // The same rows from the server (same database name, same source): nothing added.
    let url = format!("mysql://root@{HOST}:{PORT}/{}", mdb.0);
    let server = import(&cfg, &["--from", &url]);
    assert!(
        text(&server).contains("Imported 0 rows"),
        "{}",
        text(&server)
    );
}

#[test]
fn a_written_dump_with_local_times_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, db) = config(dir.path());
    let good = rows();
    // No SET TIME_ZONE: the times are the Pi's local (BST) wall time.
    let dump = format!(
        "-- MySQL dump 10.13\n--\n-- Host: localhost    Database: weather\n\
         /*!40101 SET NAMES utf8mb4 */;\n{CREATE}\n{}\n\
         INSERT INTO `WEATHER_MEASUREMENT` VALUES (90,NULL,1,2,3,4,5,6,7,8),\n\
         (91,NULL,1,2,3,1000,5,6,7,8,0,'not a time'),\n\
         (92,NULL,'1''5',2,3,1000,5,6,7,8,0,'2017-07-01 13:00:00');\n",
        insert_sql(&good)
    );
    let path = dir.path().join("weather.sql");
    std::fs::write(&path, dump).unwrap();
    let out = import(&cfg, &["--from-dump", path.to_str().unwrap()]);
    let t = text(&out);
    assert!(!out.status.success(), "bad rows: exit non-zero\n{t}");
    assert!(t.contains("Source `weather`"), "{t}");
    assert!(t.contains("Imported 30 rows"), "{t}");
    assert!(t.contains("3 could not be read"), "{t}");
    let lines = 1 + 4 + CREATE.lines().count() + good.len();
    for (n, what) in [
        (lines, "10 values for 12 columns"),
        (lines + 1, "CREATED `not a time`"),
        (lines + 2, "AMBIENT_TEMPERATURE `1'5` is not a number"),
    ] {
        assert!(
            t.contains(&format!("weather.sql line {n}: ")) && t.contains(what),
            "{n} {what}\n{t}"
        );
    }
    assert_same(&stored(&db), &expected(&good));
    let again = import(&cfg, &["--from-dump", path.to_str().unwrap()]);
    assert!(text(&again).contains("Imported 0 rows"), "{}", text(&again));
    assert_same(&stored(&db), &expected(&good));
}
