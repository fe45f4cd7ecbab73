//! Issue 18, the low-battery policy and MQTT: below `low_battery_v` the station stops
//! publishing (status `offline`, no readings) but keeps storing; back above `resume_v` it
//! reconnects and what was stored meanwhile arrives from the backlog as backfill.
//! The pause is the policy's own state (`PowerState::watch_saving`), driven by voltages.

use std::collections::BTreeSet;
use std::time::Duration;

use anemone::mqtt::{ConnectSettings, Feeds, Publisher};
use anemone::power::{LowBatteryPolicy, PowerState};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_battery_pauses_publishing_and_the_stored_readings_follow_as_backfill() {
    let broker = TestBroker::start().await;
    let id = station_id("lowbat");
    let mut cfg = broker.config(&id, broker.addr);
    cfg.mqtt.discovery = false;
    let prefix = format!("anemone/{id}");
    let mut sub = Subscriber::connect(
        &broker,
        &format!("{id}-dash"),
        &[format!("{prefix}/reading/#"), format!("{prefix}/status")],
    )
    .await;

    let power = PowerState::default();
    let mut policy = LowBatteryPolicy::new(11.8, 12.4, 10, power.clone());
    let store = MemStore::default();
    let (live, live_rx) = tokio::sync::mpsc::channel(256);
    let settings = ConnectSettings::from_config(&cfg, None).expect("connect settings");
    let feeds = Feeds {
        live: live_rx,
        backlog: store.backlog(),
        cursor: store.spawn_writer(),
        committed: None,
        pause: Some(power.watch_saving()),
        chain: None,
    };
    let publisher = Publisher::spawn(&cfg, settings, feeds, fast_tuning());
    let push = |n: i64| {
        let rows = store.append(mast_readings(1_780_272_000_000 + n * 60_000, n));
        let live = live.clone();
        async move {
            live.send(rows.clone()).await.expect("live feed open");
            rows.iter().map(|r| r.id).collect::<Vec<i64>>()
        }
    };

    // Battery fine: published live.
    assert_eq!(policy.update(12.6), None);
    sub.wait_for("online", 20, |m| {
        m.topic.ends_with("/status") && m.payload == "online"
    })
    .await;
    let before = push(0).await;
    let last_before = *before.last().expect("readings");
    sub.wait_for("the first readings", 20, |m| {
        m.json()["id"].as_i64() == Some(last_before)
    })
    .await;

    // Battery low: the station says offline and publishes nothing, but stores.
    assert_eq!(policy.update(11.7), Some(true));
    let onlines = |sub: &Subscriber| sub.seen.iter().filter(|m| m.payload == "online").count();
    let offline_at = sub.seen.len();
    sub.wait_for("offline while the battery is low", 20, |m| {
        m.topic.ends_with("/status") && m.payload == "offline"
    })
    .await;
    assert!(sub.seen.len() > offline_at);
    let online_count = onlines(&sub);
    let mut while_low = Vec::new();
    for n in 1..=5 {
        while_low.extend(push(n).await);
    }
    // Between the thresholds it stays paused (hysteresis).
    assert_eq!(policy.update(12.2), None);
    sub.collect_for(2_000).await;
    let received: BTreeSet<i64> = sub.reading_ids().into_iter().collect();
    let sent_while_low: Vec<&i64> = while_low.iter().filter(|i| received.contains(i)).collect();
    assert!(
        sent_while_low.is_empty(),
        "readings published while the battery was low: {sent_while_low:?}"
    );
    assert_eq!(onlines(&sub), online_count, "no reconnect while low");
    assert_eq!(store.rows().len(), 4 * 6, "every reading stored");

    // Recovered: reconnects, and the stored readings arrive as backfill.
    assert_eq!(policy.update(12.5), Some(false));
    let last_low = *while_low.last().expect("readings");
    let m = sub
        .wait_for("the readings stored while low", 30, |m| {
            m.json()["id"].as_i64() == Some(last_low)
        })
        .await;
    assert_eq!(m.json()["backfill"], true, "{}", m.payload);
    let received: BTreeSet<i64> = sub.reading_ids().into_iter().collect();
    for i in &while_low {
        assert!(
            received.contains(i),
            "reading {i} stored while low never arrived"
        );
    }
    assert!(
        onlines(&sub) > online_count,
        "online again after the recovery"
    );
    let after = push(6).await;
    let last_after = *after.last().expect("readings");
    let m = sub
        .wait_for("live again", 20, |m| {
            m.json()["id"].as_i64() == Some(last_after)
        })
        .await;
    assert_eq!(m.json()["backfill"], false, "{}", m.payload);

    let summary = publisher.shutdown(Duration::from_secs(5)).await;
    assert!(summary.drained, "{summary:?}");
    assert_eq!(summary.connections, 2, "{summary:?}");
}
