//! Issue acceptance: a 1 Hz simulated station publishing through a link that goes down
//! for one simulated hour and comes back: every stored reading arrives, in order per
//! sensor, none missing; duplicates only as QoS 1 allows, with the same reading id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anemone::clock::Clock;
use anemone::station::{self, RunOptions};
use anemone::store::{Query, Store};

use super::support::*;

/// 2026-06-01T00:00Z.
const START: i64 = 1_780_272_000_000;
/// Station seconds per real second: one simulated hour in 10 s.
const SPEED: f64 = 360.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_of_one_simulated_hour_loses_nothing() {
    let broker = TestBroker::start().await;
    let proxy = Proxy::start(broker.addr).await;
    let id = station_id("outage");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("outage.db");
    let mut cfg = broker.config(&id, proxy.addr);
    cfg.storage.path = db.clone();
    cfg.hal.simulate = true;
    cfg.mqtt.discovery = false;
    // The 1 Hz instruments: anemometer and vane.
    cfg.sensors
        .retain(|s| matches!(s.kind.type_name(), "anemometer" | "wind_vane"));

    let prefix = format!("anemone/{id}");
    let mut sub = Subscriber::connect(
        &broker,
        &format!("{id}-dash"),
        &[format!("{prefix}/reading/#")],
    )
    .await;

    let run = tokio::spawn(station::run(
        Arc::new(cfg),
        RunOptions {
            clock: Clock::scaled(START, SPEED),
            duration_ms: Some(3 * 3_600_000),
            db_path: db.clone(),
            live: None,
            writer_handle: None,
            progress: None,
            web_addr: None,
        },
        std::future::pending(),
    ));
    // Simulated hour 1 online, hour 2 offline, hour 3 online.
    sub.collect_for(10_000).await;
    proxy.cut();
    sub.collect_for(10_000).await;
    proxy.restore();
    let summary = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run ends")
        .expect("join")
        .expect("run ok");
    // Let the last acknowledged messages reach the dashboard.
    sub.collect_for(2_000).await;

    let store = Store::open_read_only(&db, chrono_tz::UTC).expect("open");
    let stored = store.readings(&Query::default()).expect("readings");
    assert_eq!(stored.len() as u64, summary.committed);
    // Two 1-Hz sensors for 3 simulated h at ×360 are ≈ 21 600 readings; a loaded machine
    // cannot keep every tick of the scaled clock, so the bound is loose.
    assert!(stored.len() > 5_000, "a 3-h 1 Hz run: {}", stored.len());
    let stored_ids: BTreeSet<i64> = stored.iter().map(|r| r.id).collect();

    let mut seen: BTreeMap<i64, serde_json::Value> = BTreeMap::new();
    let mut per_sensor: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for m in sub.seen.iter().filter(|m| m.topic.contains("/reading/")) {
        let j = m.json();
        let rid = j["id"].as_i64().expect("id");
        if let Some(prev) = seen.get(&rid) {
            // A QoS 1 duplicate: the same reading under the same id.
            assert_eq!(prev["ts"], j["ts"]);
            assert_eq!(prev["value"], j["value"]);
            continue;
        }
        per_sensor
            .entry(j["sensor"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push((rid, j["ts"].as_str().unwrap_or_default().to_string()));
        seen.insert(rid, j);
    }
    let missing: Vec<i64> = stored_ids
        .difference(&seen.keys().copied().collect())
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} stored readings never arrived, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        seen.values().any(|j| j["backfill"] == true),
        "the outage was replayed as backfill"
    );
    // In order per sensor and quantity: timestamps never go backwards in arrival order of
    // first deliveries, except where the backlog (older) interleaves with live readings,
    // so check the order within each of the two streams.
    for (sensor, rows) in &per_sensor {
        let live: Vec<&(i64, String)> = rows
            .iter()
            .filter(|(rid, _)| seen[rid]["backfill"] == false)
            .collect();
        let back: Vec<&(i64, String)> = rows
            .iter()
            .filter(|(rid, _)| seen[rid]["backfill"] == true)
            .collect();
        for stream in [live, back] {
            assert!(
                stream.windows(2).all(|w| w[0].0 < w[1].0),
                "{sensor}: ids out of order"
            );
        }
    }
}
