//! Issue 20: a finite run reports the station time it sensed, not the time it then spent
//! draining what it owed to a slow broker.

use std::sync::Arc;
use std::time::Duration;

use anemone::clock::Clock;
use anemone::station::{self, RunOptions};

use super::scripted::{Script, ScriptedBroker};

/// 2026-06-01T00:00Z.
const START: i64 = 1_780_272_000_000;
const HOUR_MS: i64 = 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_that_waits_for_a_slow_broker_reports_one_hour() {
    // The broker never acknowledges a reading and closes each connection 2 s after
    // CONNACK: the final drain waits (real time) for acknowledgements that never come.
    let broker = ScriptedBroker::start(
        Script::default()
            .withhold(|p| p.topic.contains("/reading/"))
            .drop_after(Duration::from_secs(2)),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = broker.config("summary");
    cfg.storage.path = dir.path().join("summary.db");
    cfg.hal.simulate = true;
    cfg.mqtt.discovery = false;
    cfg.web.enabled = false;
    let opts = RunOptions {
        // A scaled clock (`--speed 3600`): station time goes on while the drain waits.
        clock: Clock::scaled(START, 3600.0),
        duration_ms: Some(HOUR_MS),
        db_path: cfg.storage.path.clone(),
        live: None,
        writer_handle: None,
        progress: None,
        web_addr: None,
    };
    let summary = match station::run(Arc::new(cfg), opts, std::future::pending()).await {
        Ok(s) => s,
        Err(e) => panic!("run failed: {e}"),
    };
    assert!(summary.committed > 0);
    assert!(summary.started >= START);
    assert_eq!(
        summary.ended - summary.started,
        HOUR_MS,
        "the drain's wait was counted as station time"
    );
}
