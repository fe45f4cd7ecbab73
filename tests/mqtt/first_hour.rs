//! Issue "A school's first hour", on a real broker: readings sampled before the first
//! connection are live, values rounded to the sensor's resolution, and the discovery
//! config of a removed sensor cleared.

use std::time::Duration;

use super::support::*;
use super::{bounded, prefix, T0};

/// Readings sampled before the first connection is up are live (`"backfill": false`)
/// when that connection is the station's start-up; readings an earlier run left unsent
/// are backfill. A first connection that comes after `startup_grace` ends an outage: what
/// was sampled before it is backfill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_readings_sampled_before_the_first_connection_are_live() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        for (name, grace, this_run_backfill) in [
            ("startup", Duration::from_secs(120), false),
            ("outage", Duration::ZERO, true),
        ] {
            let proxy = Proxy::start(broker.addr).await;
            let id = station_id(name);
            let p = prefix(&id);
            let mut sub =
                Subscriber::connect(&broker, &format!("{id}-a"), &[format!("{p}/reading/#")]).await;
            let store = MemStore::default();
            // An earlier run's readings the broker never acknowledged.
            let earlier = store.append(mast_readings(T0, 0));
            // The broker is not reachable yet when the station starts.
            proxy.cut();
            let mut cfg = broker.config(&id, proxy.addr);
            cfg.mqtt.discovery = false;
            let tuning = anemone::mqtt::Tuning {
                startup_grace: grace,
                ..fast_tuning()
            };
            let mut station = Station::start(cfg, store, tuning);
            let mut this_run = Vec::new();
            for n in 1..4 {
                this_run.extend(station.push(mast_readings(T0 + n * 1000, n)).await);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            proxy.restore();
            let last = this_run.last().map(|r| r.id);
            sub.wait_for("the last reading", 20, |m| m.json()["id"].as_i64() == last)
                .await;
            sub.collect_for(200).await;
            let backfill = |rid: i64| {
                sub.seen
                    .iter()
                    .map(|m| m.json())
                    .find(|v| v["id"].as_i64() == Some(rid))
                    .map(|v| v["backfill"].clone())
            };
            for r in &earlier {
                assert_eq!(
                    backfill(r.id),
                    Some(true.into()),
                    "{name}: earlier run {}",
                    r.id
                );
            }
            for r in &this_run {
                assert_eq!(
                    backfill(r.id),
                    Some(this_run_backfill.into()),
                    "{name}: sampled before the first connection {}",
                    r.id
                );
            }
            let summary = station.shutdown(Duration::from_secs(2)).await;
            assert_eq!(summary.connections, 1, "{name}: {summary:?}");
        }
    })
    .await;
}

/// False precision: payloads give each value to its sensor's resolution (`…/reading/…`
/// and the retained `state`); the store keeps the value as measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_payloads_round_values_to_the_sensor_resolution() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        let id = station_id("precision");
        let p = prefix(&id);
        let mut sub = Subscriber::connect(&broker, &format!("{id}-a"), &[format!("{p}/#")]).await;
        let mut cfg = broker.config(&id, broker.addr);
        cfg.mqtt.discovery = false;
        let mut station = Station::start(cfg, MemStore::default(), fast_tuning());
        sub.wait_for("online", 10, |m| {
            m.topic == format!("{p}/status") && m.payload == "online"
        })
        .await;
        let air: anemone::reading::SensorId = std::sync::Arc::from("air");
        use anemone::reading::{Quantity, Reading};
        let stored = station
            .push(vec![
                Reading::new(T0, &air, Quantity::AirPressure, 1004.8946875),
                Reading::new(T0, &air, Quantity::AirTemperature, 5.793498442625405),
            ])
            .await;
        let pressure = stored[0].id;
        let last = stored[1].id;
        sub.wait_for("the readings", 10, |m| {
            m.json()["id"].as_i64() == Some(last)
        })
        .await;
        let state = sub
            .wait_for("state with both", 10, |m| {
                m.topic == format!("{p}/state")
                    && m.json()["sensors"]["air"]["air_temperature"].is_number()
            })
            .await
            .json();
        assert_eq!(state["sensors"]["air"]["air_pressure"], 1004.89);
        assert_eq!(state["sensors"]["air"]["air_temperature"], 5.79);
        let value = |rid: i64| {
            sub.seen
                .iter()
                .find(|m| m.topic.contains("/reading/") && m.json()["id"].as_i64() == Some(rid))
                .map(|m| m.payload.clone())
                .unwrap_or_default()
        };
        assert!(
            value(pressure).contains(r#""value":1004.89,"#),
            "{}",
            value(pressure)
        );
        assert!(value(last).contains(r#""value":5.79,"#), "{}", value(last));
        let kept: Vec<Option<f64>> = station
            .store
            .rows()
            .iter()
            .map(|r| r.reading.value)
            .collect();
        assert_eq!(kept, vec![Some(1004.8946875), Some(5.793498442625405)]);
        station.shutdown(Duration::from_secs(2)).await;
    })
    .await;
}

/// A sensor removed from the config: the retained discovery config an earlier run left
/// is cleared (an empty retained payload), so its entity leaves Home Assistant; another
/// station's configs are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_discovery_clears_the_config_of_a_removed_sensor() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        let id = station_id("removed");
        let cfg = broker.config(&id, broker.addr);
        let topics = anemone::mqtt::topics::Topics::new(&cfg);
        let gone_q = anemone::reading::Quantity::WaterTemperature;
        let gone = topics.discovery("old_probe", gone_q);
        let old_payload =
            anemone::mqtt::discovery::config_payload(&cfg, &topics, "old_probe", gone_q);
        let mut other_cfg = cfg.clone();
        other_cfg.station.id = format!("{id}_neighbour");
        let other_topics = anemone::mqtt::topics::Topics::new(&other_cfg);
        let kept = other_topics.discovery("probe", gone_q);
        let kept_payload =
            anemone::mqtt::discovery::config_payload(&other_cfg, &other_topics, "probe", gone_q);
        // An earlier run announced both.
        let filter = "homeassistant/sensor/+/config".to_string();
        let mut sub =
            Subscriber::connect(&broker, &format!("{id}-a"), std::slice::from_ref(&filter)).await;
        for (topic, payload) in [(&gone, &old_payload), (&kept, &kept_payload)] {
            sub.client
                .publish(
                    topic.clone(),
                    rumqttc::QoS::AtLeastOnce,
                    true,
                    payload.to_string(),
                )
                .await
                .expect("publish old config");
        }
        sub.wait_for("the old config", 10, |m| m.topic == gone)
            .await;
        sub.wait_for("the neighbour's config", 10, |m| m.topic == kept)
            .await;

        let mut station = Station::start(cfg, MemStore::default(), fast_tuning());
        sub.wait_for("the old config cleared", 10, |m| {
            m.topic == gone && m.payload.is_empty()
        })
        .await;
        sub.collect_for(300).await;
        station.shutdown(Duration::from_secs(2)).await;

        // A Home Assistant that connects now finds no config for the removed sensor, and
        // still finds the neighbour's.
        let mut late = Subscriber::connect(&broker, &format!("{id}-late"), &[filter]).await;
        late.collect_for(500).await;
        let retained = |t: &str| {
            late.seen
                .iter()
                .any(|m| m.topic == t && m.retain && !m.payload.is_empty())
        };
        assert!(
            !retained(&gone),
            "the removed sensor's config is still retained"
        );
        assert!(retained(&kept), "the neighbour's config was cleared");
        assert!(
            late.seen.iter().any(|m| m.retain
                && m.topic.starts_with(&format!("homeassistant/sensor/{id}_"))
                && m.topic != gone),
            "the station's own configs are retained"
        );
        // Leave the broker clean for later runs against the same Mosquitto.
        late.client
            .publish(kept.clone(), rumqttc::QoS::AtLeastOnce, true, "")
            .await
            .expect("clear");
    })
    .await;
}
