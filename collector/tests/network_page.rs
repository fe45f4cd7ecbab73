//! The network page: two simulated stations through the collector, then the page and the
//! JSON API (with `station`) over the collector's PostgreSQL.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use anemone::reading::{format_ts, Quantity};
use anemone_collector::testkit::{free_port, CollectorProcess, MosquittoOptions};
use serde_json::Value;

use crate::support::*;

/// One GET over HTTP/1.0 (no compression, the body ends with the connection): status
/// and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the page");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

fn json(port: u16, path: &str) -> Value {
    let (status, body) = get(port, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_page_serves_each_station_from_postgres() {
    let Some(net) = Net::start(MosquittoOptions::default()).await else {
        return;
    };
    let port = free_port();
    let config = format!(
        "{}[web]\nlisten = \"127.0.0.1:{port}\"\n",
        net.collector_config("collector-web", None, "")
    );
    let mut collector = CollectorProcess::spawn(Path::new(BIN), &config);
    tokio::task::block_in_place(|| collector.wait_subscribed());
    assert!(
        collector.log().contains("Network page: http://localhost:"),
        "{}",
        collector.log()
    );

    let dir = tempfile::tempdir().unwrap();
    let start = start_ago(1);
    let a = station_config("alpha", &net.broker.url(), dir.path(), None, "");
    let mut b = station_config("beta", &net.broker.url(), dir.path(), None, "");
    b.hal.seed = 11;
    b.station.latitude = 51.0;
    let (da, db) = tokio::join!(
        run_station(a, start, None, 600_000),
        run_station(b, start + 500, None, 600_000)
    );
    let (sa, sb) = (stored(&da), stored(&db));
    let client = net.client().await;
    // Every reading exactly once, and the rows (values as published, at wire precision).
    let ra = assert_exactly_once(&client, "alpha", &sa).await;
    let rb = assert_exactly_once(&client, "beta", &sb).await;
    // The meta (name, position) and status arrive beside the readings.
    tokio::time::sleep(Duration::from_secs(1)).await;

    tokio::task::block_in_place(|| {
        // /api/now per station: its own newest values, as it stored them.
        let mut nows = Vec::new();
        for (id, store, rows) in [("alpha", &sa, &ra), ("beta", &sb, &rb)] {
            let now = json(port, &format!("/api/now?station={id}"));
            assert_eq!(now["station"], id);
            assert_eq!(now["name"], format!("Station {id}"));
            let readings = now["readings"].as_array().unwrap();
            assert!(!readings.is_empty(), "{now}");
            for r in readings {
                let (q, sensor) = (
                    r["quantity"].as_str().unwrap(),
                    r["sensor"].as_str().unwrap(),
                );
                let newest = store
                    .iter()
                    .filter(|s| s.reading.quantity.as_str() == q && &*s.reading.sensor == sensor)
                    .max_by_key(|s| s.reading.ts)
                    .unwrap();
                assert_eq!(r["ts"], format_ts(newest.reading.ts), "{id} {q}");
                let v = r["value"].as_f64().unwrap();
                // The stored reading's value as published (rounded to the sensor's precision).
                assert_eq!(Some(v), rows[&newest.id].value, "{id} {q}: {newest:?}");
            }
            assert!(
                !now["today"]["extremes"].as_array().unwrap().is_empty(),
                "{now}"
            );
            nows.push(now["readings"].clone());
        }
        assert_ne!(nows[0], nows[1], "the two stations' values differ");

        // /api/history per station: every raw reading of the range, then minute buckets.
        let (from, to) = (format_ts(start), format_ts(start + 3_600_000));
        let h = json(
            port,
            &format!("/api/history?station=alpha&quantity=air_temperature&from={from}&to={to}&resolution=raw"),
        );
        let expected = sa
            .iter()
            .filter(|s| s.reading.quantity == Quantity::AirTemperature)
            .count();
        assert_eq!(h["resolution"], "raw");
        assert_eq!(h["points"].as_array().unwrap().len(), expected);
        let m = json(
            port,
            &format!("/api/history?station=beta&quantity=air_temperature&from={from}&to={to}&resolution=minute"),
        );
        let counted: u64 = m["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .sum();
        let beta_temps = sb
            .iter()
            .filter(|s| s.reading.quantity == Quantity::AirTemperature && s.reading.flags.is_ok())
            .count();
        assert_eq!(counted as usize, beta_temps);

        // The CSV download: the station's readings in `anemone export`'s shape.
        let (status, csv) = get(
            port,
            &format!("/export.csv?station=alpha&from={from}&to={to}"),
        );
        assert_eq!(status, 200);
        assert_eq!(
            csv.lines().count(),
            sa.len() + 1,
            "a header and one row per reading"
        );

        // The network: both stations, with position and online state.
        let list = json(port, "/api/stations");
        let stations = list["stations"].as_array().unwrap();
        let ids: Vec<&str> = stations
            .iter()
            .map(|s| s["station"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["alpha", "beta"]);
        for s in stations {
            assert!(
                s["online"].is_boolean(),
                "online state from the status topic: {s}"
            );
            assert!(s["latitude"].is_number(), "{s}");
            assert!(!s["readings"].as_array().unwrap().is_empty(), "{s}");
        }
        assert_eq!(stations[1]["latitude"], 51.0);
        let (status, page) = get(port, "/");
        assert_eq!(status, 200);
        assert!(page.contains("Anemone network") && page.contains("/network.js"));
        let (status, script) = get(port, "/network.js");
        assert_eq!(status, 200);
        assert!(script.contains("/api/stations") && script.contains("/station?station="));
        let (status, station_page) = get(port, "/station?station=alpha");
        assert_eq!(status, 200);
        assert!(station_page.contains("/app.js"));
        let (status, svg) = get(port, "/chart/temperature.svg?span=24h&station=beta");
        assert_eq!(status, 200);
        assert!(svg.contains("<svg"));

        // Unknown station: 404 naming it. Bad parameters: 400 naming the parameter.
        let (status, body) = get(port, "/api/now?station=nowhere");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("unknown station `nowhere`"), "{body}");
        let (status, body) = get(
            port,
            "/api/history?station=nowhere&quantity=air_temperature",
        );
        assert_eq!(status, 404, "{body}");
        let (status, body) = get(port, "/api/history?station=alpha&quantity=air_temp");
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("quantity"), "{body}");
        let (status, body) = get(
            port,
            "/api/history?station=alpha&quantity=rain&resolution=weekly",
        );
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("resolution"), "{body}");
        let (status, body) = get(port, "/api/now?station=alpha&colour=red");
        assert_eq!(status, 400, "{body}");
    });
    assert!(collector.terminate(), "{}", collector.log());
}
