//! The station's web page and JSON API, on a simulated station: every route's status and
//! shape, bad parameters, 405, live events, limits; the password and a taken port through
//! the binary (`cli`).

mod cli;
mod client;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anemone::clock::Clock;
use anemone::config::Config;
use anemone::reading::{format_ts, parse_ts};
use anemone::station::{self, RunOptions};

use crate::common::{run_virtual, sim_config, JUNE_1};
use client::{get, request};

/// Simulated history before the live run.
const HISTORY_MS: i64 = 3 * 3_600_000;

/// A station running on its own thread and runtime, serving its page on a free port.
pub struct Station {
    pub addr: SocketAddr,
    _stop: std::sync::mpsc::Sender<()>,
}

/// Runs `config` live (a clock 20× real time from `start`) on a thread of its own.
fn start(config: Config, db: PathBuf, start: i64, history: bool) -> Station {
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            if history {
                let mut quiet = config.clone();
                quiet.web.enabled = false;
                run_virtual(quiet, start - HISTORY_MS, HISTORY_MS).await;
            }
            let opts = RunOptions {
                clock: Clock::scaled(start, 20.0),
                duration_ms: None,
                db_path: db,
                live: None,
                writer_handle: None,
                progress: None,
                web_addr: Some(addr_tx),
            };
            let stop = async move {
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            };
            let _ = station::run(Arc::new(config), opts, stop).await;
        });
    });
    let addr = addr_rx.blocking_recv().expect("the web page listens");
    Station {
        addr,
        _stop: stop_tx,
    }
}

/// The built-in simulated station with its page on a free loopback port.
fn config(db: &Path) -> Config {
    let mut c = sim_config(db, 3);
    c.web.enabled = true;
    c.web.listen = "127.0.0.1:0".into();
    c.storage.commit_interval = anemone::config::Span::secs(5);
    c
}

/// One station with three hours of history, shared by the read-only tests.
fn shared() -> SocketAddr {
    static STATION: OnceLock<(Station, tempfile::TempDir)> = OnceLock::new();
    STATION
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("web.db");
            (start(config(&db), db, JUNE_1 + HISTORY_MS, true), dir)
        })
        .0
        .addr
}

#[test]
fn the_page_and_its_assets_are_served_with_their_types() {
    let addr = shared();
    for (path, ty) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let a = get(addr, path);
        assert_eq!(a.status, 200, "{path}");
        assert!(a.header("content-type").unwrap().starts_with(ty), "{path}");
        assert_eq!(a.header("cache-control"), Some("no-cache"), "{path}");
        let tag = a.header("etag").expect("an ETag").to_string();
        let again = request(addr, "GET", path, &[("If-None-Match", &tag)]);
        assert_eq!(again.status, 304, "{path}");
    }
    let gz = request(addr, "GET", "/app.js", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.body.len() < get(addr, "/app.js").body.len());
}

#[test]
fn api_now_has_every_series_today_and_the_unit_table() {
    let now = get(shared(), "/api/now");
    assert_eq!(now.status, 200);
    let j = now.json();
    assert_eq!(j["station"], "sim");
    assert_eq!(j["timezone"], "Europe/London");
    let ts = parse_ts(j["ts"].as_str().unwrap()).unwrap();
    assert!(ts >= JUNE_1 + HISTORY_MS, "{ts}");
    let readings = j["readings"].as_array().unwrap();
    let quantities: Vec<&str> = readings
        .iter()
        .map(|r| r["quantity"].as_str().unwrap())
        .collect();
    for q in [
        "air_temperature",
        "wind_speed",
        "wind_direction",
        "ph",
        "rain",
    ] {
        assert!(quantities.contains(&q), "{q} missing from {j}");
    }
    for r in readings {
        for key in [
            "flags", "quantity", "sensor", "ts", "unit", "value", "age_s",
        ] {
            assert!(r.get(key).is_some(), "{key} missing from {r}");
        }
        assert!(r["age_s"].as_f64().unwrap() >= 0.0, "{r}");
    }
    let today = &j["today"];
    assert_eq!(today["date"], "2026-06-01");
    let air = today["extremes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["quantity"] == "air_temperature")
        .expect("air temperature extremes");
    assert!(air["min"].as_f64().unwrap() <= air["max"].as_f64().unwrap());
    assert!(parse_ts(air["min_ts"].as_str().unwrap()).is_some());
    assert_eq!(today["rain_today"]["unit"], "mm");
    assert!(today["rain_today"]["value"].as_f64().unwrap() >= 0.0);
    let gust = &today["max_gust"];
    assert_eq!(gust["unit"], "m/s");
    assert!(gust["value"].as_f64().unwrap() > 0.0, "{gust}");
    let dir = gust["direction"].as_f64().expect("the gust's direction");
    assert!((0.0..=360.0).contains(&dir), "{dir}");
    let imperial = j["units"]["imperial"].as_array().unwrap();
    assert!(imperial
        .iter()
        .any(|c| c["from"] == "°C" && c["to"] == "°F"));
}

#[test]
fn api_history_answers_at_the_resolution_that_fits_the_range() {
    let addr = shared();
    let from = format_ts(JUNE_1);
    let to = format_ts(JUNE_1 + HISTORY_MS);
    let url = |res: &str| format!("/api/history?quantity=air_temperature&from={from}&to={to}{res}");
    let raw = get(addr, &url("&resolution=raw")).json();
    assert_eq!(raw["resolution"], "raw");
    assert_eq!(raw["unit"], "°C");
    let points = raw["points"].as_array().unwrap();
    assert!(points.len() > 500, "{}", points.len());
    assert!(points[0]["flags"].is_array() && points[0].get("count").is_none());
    let minute = get(addr, &url("&resolution=minute")).json();
    assert_eq!(minute["resolution"], "minute");
    let m = minute["points"].as_array().unwrap();
    assert!((170..=181).contains(&m.len()), "{}", m.len());
    for key in ["ts", "value", "min", "max", "count"] {
        assert!(m[0].get(key).is_some(), "{key} missing from {}", m[0]);
    }
    // Unasked, three hours is raw (fewer than 300 minutes); a year is days.
    assert_eq!(get(addr, &url("")).json()["resolution"], "raw");
    let year = get(
        addr,
        "/api/history?quantity=wind_speed&from=2025-06-01&to=2026-06-02",
    )
    .json();
    assert_eq!(year["resolution"], "day");
    // Raw wind over a week is refused for a coarser resolution, said in the answer.
    let week = get(
        addr,
        "/api/history?quantity=wind_speed&from=2026-05-26&to=2026-06-02&resolution=raw",
    )
    .json();
    assert_eq!(week["resolution"], "minute");
}

#[test]
fn api_health_reports_sensors_mqtt_disk_clock_and_store() {
    let a = get(shared(), "/api/health");
    assert_eq!(a.status, 200);
    let j = a.json();
    assert_eq!(j["version"], env!("CARGO_PKG_VERSION"));
    assert!(j["uptime_s"].is_u64());
    let sensors = j["sensors"].as_array().unwrap();
    assert_eq!(sensors.len(), 7, "{sensors:?}");
    assert!(sensors
        .iter()
        .all(|s| s["state"] == "ok" && s["error"].is_null()));
    assert!(sensors
        .iter()
        .any(|s| s["sensor"] == "wind" && s["type"] == "anemometer"));
    assert_eq!(j["mqtt"]["enabled"], false);
    assert_eq!(j["mqtt"]["connected"], false);
    assert!(j["disk"]["free_bytes"].as_u64().unwrap() > 0);
    assert!(j["disk"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(j["clock"]["state"].is_string() && j["clock"]["detail"].is_string());
    assert!(j["store"]["readings"].as_u64().unwrap() > 1000);
    assert_eq!(j["store"]["oldest"], "2026-06-01T00:00:00.000Z");
    assert!(j["disk"]["path"].is_string());
    // Nothing of the config beyond what the page shows.
    for secret in ["password", "listen", "web.db"] {
        assert!(!a.text().contains(secret), "{}", a.text());
    }
}

#[test]
fn export_csv_is_the_export_commands_csv() {
    let a = get(
        shared(),
        "/export.csv?from=2026-06-01T00:00:00Z&to=2026-06-01T00:10:00Z&quantity=air_temperature",
    );
    assert_eq!(a.status, 200);
    assert!(a.header("content-type").unwrap().starts_with("text/csv"));
    assert!(a
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment; filename=\"anemone-sim-"));
    let text = a.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ts,sensor,quantity,value,unit,flags"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 60, "one reading every 10 s for 10 minutes");
    assert!(rows[0].starts_with("2026-06-01T00:00:00.000Z,air,air_temperature,"));
}

#[test]
fn charts_are_svg_for_every_span_and_unknown_ones_404() {
    let addr = shared();
    for span in ["24h", "7d", "30d", "1y"] {
        let a = get(
            addr,
            &format!("/chart/temperature.svg?span={span}&units=imperial"),
        );
        assert_eq!(a.status, 200, "{span}: {}", a.text());
        assert_eq!(a.header("content-type"), Some("image/svg+xml"));
        assert!(a.text().contains("<svg"), "{span}");
    }
    assert_eq!(get(addr, "/chart/nothing.svg").status, 404);
}

#[test]
fn bad_parameters_get_400_naming_the_parameter() {
    let addr = shared();
    for (path, name, accepts) in [
        ("/api/history", "quantity", "air_temperature"),
        ("/api/history?quantity=temp", "quantity", "air_temperature"),
        (
            "/api/history?quantity=rain&from=yesterday",
            "from",
            "RFC 3339",
        ),
        ("/api/history?quantity=rain&to=soon", "to", "RFC 3339"),
        (
            "/api/history?quantity=rain&from=2026-06-02&to=2026-06-01",
            "from",
            "before `to`",
        ),
        (
            "/api/history?quantity=rain&resolution=week",
            "resolution",
            "raw, minute, hour or day",
        ),
        (
            "/api/history?quantity=rain&colour=red",
            "colour",
            "quantity, from, to",
        ),
        ("/export.csv?quantity=x", "quantity", "air_temperature"),
        ("/chart/rain.svg?span=2d", "span", "24h, 7d, 30d or 1y"),
        ("/chart/rain.svg?units=kelvin", "units", "metric"),
        ("/api/now?x=1", "x", "station"),
    ] {
        let a = get(addr, path);
        assert_eq!(a.status, 400, "{path}");
        let e = a.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains(&format!("`{name}`")), "{path}: {e}");
        assert!(e.contains(accepts), "{path}: {e}");
    }
    let other = get(addr, "/api/now?station=elsewhere");
    assert_eq!(other.status, 404);
}

#[test]
fn nothing_but_get_is_accepted() {
    let addr = shared();
    for path in [
        "/",
        "/api/now",
        "/api/history",
        "/api/health",
        "/api/events",
        "/export.csv",
    ] {
        for method in ["POST", "PUT", "DELETE"] {
            assert_eq!(
                request(addr, method, path, &[]).status,
                405,
                "{method} {path}"
            );
        }
    }
}

/// Reads SSE lines from `/api/events` until `pred` holds for a reading, or 60 s pass.
fn first_reading_after(addr: SocketAddr, after: i64) -> serde_json::Value {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(client::send(addr, "GET", "/api/events", &[]));
    let (status, headers) = client::head(&mut r);
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut event = String::new();
    while Instant::now() < deadline {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let j: serde_json::Value = serde_json::from_str(data).unwrap();
            if event == "reading" && parse_ts(j["ts"].as_str().unwrap()).unwrap() > after {
                return j;
            }
        }
    }
    panic!("no live reading within 60 s");
}

#[test]
fn live_events_carry_each_new_reading_in_its_one_json_shape() {
    let addr = shared();
    let now = parse_ts(get(addr, "/api/now").json()["ts"].as_str().unwrap()).unwrap();
    let j = first_reading_after(addr, now);
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["flags", "quantity", "sensor", "ts", "unit", "value"]);
}

#[test]
fn live_streams_beyond_the_cap_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cap.db");
    let mut c = config(&db);
    c.web.max_sse_clients = 1;
    let st = start(c, db, JUNE_1, false);
    let mut held = std::io::BufReader::new(client::send(st.addr, "GET", "/api/events", &[]));
    assert_eq!(client::head(&mut held).0, 200);
    let second = get(st.addr, "/api/events");
    assert_eq!(second.status, 503);
    assert!(second.json()["error"]
        .as_str()
        .unwrap()
        .contains("max_sse_clients"));
    drop(held);
}
