//! MQTT tests against a real broker on loopback: rumqttd in-process on a free port under
//! `cargo test`, Mosquitto under `.ci/mqtt/run-mosquitto-tests.sh` (ANEMONE_TEST_BROKER).

mod alert;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use anemone::mqtt::{broker, check, BrokerChoice, StepStatus};
use anemone::reading::StoredReading;
use support::*;

const T0: i64 = 1_790_000_000_000;

/// True under the Mosquitto runs: tests of the in-process broker itself skip there.
fn external_broker() -> bool {
    if std::env::var("ANEMONE_TEST_BROKER").is_ok() {
        eprintln!("Skipped: this test is about the embedded broker.");
        return true;
    }
    false
}

/// Every test is bounded in time.
async fn bounded<F: Future<Output = ()>>(secs: u64, f: F) {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test took too long");
}

/// A station id and a subscriber to its `status` topic (the availability tests).
async fn watch_status(broker: &TestBroker, name: &str) -> (String, Subscriber) {
    let id = station_id(name);
    let topic = format!("{}/status", prefix(&id));
    let sub = Subscriber::connect(broker, &format!("{id}-a"), &[topic]).await;
    (id, sub)
}

fn prefix(station: &str) -> String {
    format!("anemone/{station}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_contract_topics_payloads_and_retained() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        let id = station_id("contract");
        let p = prefix(&id);
        let mut sub = Subscriber::connect(&broker, &format!("{id}-a"), &[format!("{p}/#")]).await;
        let mut station = Station::start(
            broker.config(&id, broker.addr),
            MemStore::default(),
            fast_tuning(),
        );

        let online = sub
            .wait_for("status online", 10, |m| {
                m.topic == format!("{p}/status") && m.payload == "online"
            })
            .await;
        assert_eq!(online.payload, "online");
        let meta = sub
            .wait_for("meta", 10, |m| m.topic == format!("{p}/meta"))
            .await
            .json();
        assert_eq!(meta["station"], id.as_str());
        assert_eq!(meta["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(meta["units"]["air_pressure"], "hPa");
        assert!(meta["location"]["altitude_m"].is_number());
        assert!(meta["sensors"].as_array().is_some_and(|s| !s.is_empty()));

        let mut stored = Vec::new();
        for n in 0..4 {
            stored.extend(station.push(mast_readings(T0 + n * 1000, n)).await);
        }
        let last = stored.last().map(|r| r.id).unwrap_or_default();
        sub.wait_for("last reading", 10, |m| {
            m.json()["id"].as_i64() == Some(last)
        })
        .await;

        let readings: Vec<_> = sub
            .seen
            .iter()
            .filter(|m| m.topic.starts_with(&format!("{p}/reading/")))
            .cloned()
            .collect();
        assert_eq!(readings.len(), stored.len(), "one message per sample");
        for m in &readings {
            let v = m.json();
            for key in [
                "id", "ts", "sensor", "quantity", "value", "unit", "flags", "backfill",
            ] {
                assert!(v.get(key).is_some(), "{key} missing in {}", m.payload);
            }
            assert_eq!(
                m.topic,
                format!("{p}/reading/{}", v["sensor"].as_str().unwrap_or("?"))
            );
            assert!(v["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
            assert!(v["value"].is_number() || v["value"].is_null());
            assert_eq!(v["backfill"], false);
            assert!(!m.retain);
        }
        let air = readings
            .iter()
            .map(|m| m.json())
            .find(|v| v["quantity"] == "air_temperature")
            .expect("air temperature");
        assert_eq!(air["unit"], "°C");
        assert_eq!(air["value"], 10.0);
        assert_eq!(air["ts"], "2026-09-21T14:13:20.000Z");
        let failed = readings
            .iter()
            .map(|m| m.json())
            .find(|v| v["sensor"] == "water" && v["value"].is_null())
            .expect("failed pH");
        assert_eq!(failed["flags"][0], "sensor_error");

        // The state snapshot: latest values, null for the failed probe.
        let state = sub
            .wait_for("state with the last values", 10, |m| {
                m.topic == format!("{p}/state") && m.json()["ts"] == "2026-09-21T14:13:23.000Z"
            })
            .await
            .json();
        assert!(
            (state["sensors"]["air"]["air_temperature"]
                .as_f64()
                .unwrap_or(0.0)
                - 10.3)
                .abs()
                < 1e-9
        );
        assert!(state["sensors"]["water"]["ph"].is_null(), "{state}");
        assert_eq!(state["units"]["ph"], "pH");

        let summary = station.shutdown(Duration::from_secs(5)).await;
        assert!(summary.drained, "{summary:?}");
        assert_eq!(summary.cursor, last);
        assert_eq!(
            station.store.cursor(),
            last,
            "the writer persisted the cursor"
        );
        assert_eq!(summary.published, stored.len() as u64);
        sub.wait_for("status offline", 10, |m| {
            m.topic == format!("{p}/status") && m.payload == "offline"
        })
        .await;

        // A dashboard connecting later gets status, state and meta retained.
        let mut late = Subscriber::connect(&broker, &format!("{id}-b"), &[format!("{p}/#")]).await;
        late.wait_for("retained offline", 10, |m| {
            m.topic == format!("{p}/status") && m.payload == "offline" && m.retain
        })
        .await;
        late.wait_for("retained state", 10, |m| {
            m.topic == format!("{p}/state") && m.retain
        })
        .await;
        late.wait_for("retained meta", 10, |m| {
            m.topic == format!("{p}/meta") && m.retain
        })
        .await;
        late.collect_for(300).await;
        assert!(late.reading_ids().is_empty(), "readings are not retained");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_discovery_payloads_one_per_quantity() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        let id = station_id("disco");
        let filter = "homeassistant/sensor/+/config".to_string();
        let mut sub = Subscriber::connect(&broker, &format!("{id}-a"), &[filter]).await;
        let mut station = Station::start(
            broker.config(&id, broker.addr),
            MemStore::default(),
            fast_tuning(),
        );
        let expected: BTreeSet<String> = station
            .cfg
            .sensors
            .iter()
            .flat_map(|s| {
                let id = id.clone();
                s.kind
                    .quantities()
                    .into_iter()
                    .map(move |q| format!("{id}_{}_{}", s.id, q.as_str()))
            })
            .collect();
        let ours = |m: &Msg| m.topic.starts_with(&format!("homeassistant/sensor/{id}_"));
        let last = expected.iter().last().cloned().unwrap_or_default();
        sub.wait_for("all discovery configs", 10, |m| {
            m.topic == format!("homeassistant/sensor/{last}/config")
        })
        .await;
        sub.collect_for(300).await;
        let configs: BTreeMap<String, serde_json::Value> = sub
            .seen
            .iter()
            .filter(|m| ours(m))
            .map(|m| (m.topic.clone(), m.json()))
            .collect();
        let got: BTreeSet<String> = configs
            .values()
            .filter_map(|v| v["unique_id"].as_str().map(String::from))
            .collect();
        assert_eq!(got, expected, "one config per sensor and quantity");
        for (topic, v) in &configs {
            assert!(v.is_object(), "{topic} is not JSON");
            for key in [
                "unique_id",
                "default_entity_id",
                "origin",
                "name",
                "suggested_display_precision",
                "state_topic",
                "value_template",
                "availability_topic",
                "expire_after",
                "device",
            ] {
                assert!(v.get(key).is_some(), "{key} missing in {topic}");
            }
            assert!(v.get("object_id").is_none(), "object_id in {topic}");
            assert_eq!(v["origin"]["name"], "Anemone", "{topic}");
            if v["unique_id"]
                .as_str()
                .is_some_and(|u| u.ends_with("_rain"))
            {
                assert!(v.get("state_class").is_none(), "{topic}: {v}");
            } else {
                assert!(v.get("state_class").is_some(), "{topic}: {v}");
            }
            assert_eq!(v["state_topic"], format!("anemone/{id}/state"));
            assert_eq!(v["availability_topic"], format!("anemone/{id}/status"));
            for key in ["identifiers", "name", "manufacturer", "model", "sw_version"] {
                assert!(
                    v["device"].get(key).is_some(),
                    "device.{key} missing in {topic}"
                );
            }
            assert_eq!(
                topic,
                &format!(
                    "homeassistant/sensor/{}/config",
                    v["unique_id"].as_str().unwrap_or("")
                )
            );
        }
        let by_q = |q: &str| {
            configs
                .values()
                .find(|v| {
                    v["unique_id"]
                        .as_str()
                        .is_some_and(|u| u.ends_with(&format!("_{q}")))
                })
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(by_q("air_temperature")["device_class"], "temperature");
        assert_eq!(by_q("relative_humidity")["device_class"], "humidity");
        assert_eq!(by_q("air_pressure")["device_class"], "atmospheric_pressure");
        assert_eq!(by_q("wind_speed")["device_class"], "wind_speed");
        assert_eq!(by_q("wind_direction")["state_class"], "measurement_angle");
        assert_eq!(by_q("rain")["device_class"], "precipitation");
        assert_eq!(by_q("ph")["device_class"], "ph");
        assert!(
            by_q("ph").get("unit_of_measurement").is_none(),
            "pH has no unit in HA"
        );

        // A derived quantity seen in readings gets its own config.
        let derived: anemone::reading::SensorId = std::sync::Arc::from("derived");
        station
            .push(vec![anemone::reading::Reading::new(
                T0,
                &derived,
                anemone::reading::Quantity::RainToday,
                1.2,
            )])
            .await;
        let rt = sub
            .wait_for("rain_today discovery", 10, |m| {
                m.topic == format!("homeassistant/sensor/{id}_derived_rain_today/config")
            })
            .await
            .json();
        assert_eq!(rt["state_class"], "total_increasing");

        // Home Assistant restarts: discovery is published again.
        sub.seen.clear();
        sub.client
            .publish(
                "homeassistant/status",
                rumqttc::QoS::AtLeastOnce,
                false,
                "online",
            )
            .await
            .expect("publish birth");
        sub.wait_for("discovery again", 10, |m| ours(m) && !m.retain)
            .await;
        station.shutdown(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_last_will_when_the_process_dies() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        let (id, mut sub) = watch_status(&broker, "will").await;
        let mut station = Station::start(
            broker.config(&id, broker.addr),
            MemStore::default(),
            fast_tuning(),
        );
        sub.wait_for("online", 10, |m| m.payload == "online").await;
        station.kill(); // no DISCONNECT: the socket just closes, as when the process is killed
        sub.wait_for("offline (last will)", 20, |m| m.payload == "offline")
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_an_idle_connection_is_kept_alive() {
    // Nothing to publish for several keep-alive periods: the client's pings keep the
    // session (a broker drops a client silent for 1.5 × keep-alive and sends its will).
    bounded(60, async {
        let broker = TestBroker::start().await;
        let (id, mut sub) = watch_status(&broker, "idle").await;
        let mut cfg = broker.config(&id, broker.addr);
        cfg.mqtt.keep_alive = anemone::config::Span::secs(1); // below the config minimum (5 s), for speed
        let mut station = Station::start(cfg, MemStore::default(), fast_tuning());
        sub.wait_for("online", 10, |m| m.payload == "online").await;
        sub.collect_for(5_000).await;
        let offline = sub.seen.iter().filter(|m| m.payload == "offline").count();
        assert_eq!(
            offline, 0,
            "the broker dropped the idle client: {:?}",
            sub.seen
        );
        let summary = station.shutdown(Duration::from_secs(3)).await;
        assert_eq!(summary.connections, 1, "{summary:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_something_else_on_the_port_is_named() {
    // A web server where the broker should be: the check says it is not MQTT.
    bounded(30, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let mut cfg = anemone::config::Config::builtin();
        cfg.web.enabled = false;
        cfg.station.id = station_id("http");
        cfg.mqtt.broker = format!("mqtt://{addr}");
        let report = check(&cfg).await;
        let text = anemone::mqtt::render(&report);
        assert_eq!(report.failed_step().map(|s| s.name), Some("auth"), "{text}");
        assert!(text.contains("is it an MQTT broker?"), "{text}");

        // Something that accepts TCP and never answers: TCP is fine, CONNACK is missing.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = silent.accept().await {
                held.push(sock);
            }
        });
        cfg.mqtt.broker = format!("mqtt://{silent_addr}");
        let report = check(&cfg).await;
        let text = anemone::mqtt::render(&report);
        assert_eq!(report.failed_step().map(|s| s.name), Some("auth"), "{text}");
        assert!(text.contains("did not answer CONNECT in time"), "{text}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_last_will_when_the_network_goes_silent() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        let (id, mut sub) = watch_status(&broker, "silent").await;
        let proxy = Proxy::start(broker.addr).await;
        let mut cfg = broker.config(&id, proxy.addr);
        cfg.mqtt.keep_alive = anemone::config::Span::secs(1); // below the config minimum (5 s), for speed
        let mut station = Station::start(cfg, MemStore::default(), fast_tuning());
        sub.wait_for("online", 10, |m| m.payload == "online").await;
        // The link goes silent: no FIN, no RST. The publisher cannot say goodbye; the broker
        // notices the missing keep-alive (1.5 × 1 s) and publishes the will.
        proxy.freeze();
        sub.wait_for("offline (last will)", 20, |m| m.payload == "offline")
            .await;
        // It comes back by itself when the network does.
        proxy.restore();
        sub.seen.clear();
        sub.wait_for("online again", 20, |m| m.payload == "online")
            .await;
        station.kill();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_backlog_replayed_in_order_after_outage() {
    bounded(90, async {
        let broker = TestBroker::start().await;
        let id = station_id("outage");
        let p = prefix(&id);
        let proxy = Proxy::start(broker.addr).await;
        let mut sub =
            Subscriber::connect(&broker, &format!("{id}-a"), &[format!("{p}/reading/#")]).await;
        let mut cfg = broker.config(&id, proxy.addr);
        cfg.mqtt.backfill_rate = 400;
        let mut station = Station::start(cfg, MemStore::default(), fast_tuning());

        let mut n = 0;
        let before = station.push(mast_readings(T0, n)).await;
        sub.wait_for("first readings", 10, |m| {
            m.json()["id"].as_i64() == before.last().map(|r| r.id)
        })
        .await;

        // Broker unreachable for a while: 200 samples × 4 quantities pile up in the store.
        proxy.cut();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut during = Vec::new();
        for _ in 0..200 {
            n += 1;
            during.extend(station.push(mast_readings(T0 + n * 1000, n)).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            station.store.cursor() < during[0].id,
            "nothing acknowledged during the outage"
        );
        proxy.restore();
        // Live readings go first while the backlog replays at its bounded rate.
        sub.wait_for("replay under way", 20, |m| m.json()["backfill"] == true)
            .await;
        n += 1;
        let after = station.push(mast_readings(T0 + n * 1000, n)).await;
        let live_id = after[0].id;
        sub.wait_for("live reading during the replay", 10, |m| {
            m.json()["id"].as_i64() == Some(live_id)
        })
        .await;
        let backlog_done = sub
            .seen
            .iter()
            .filter_map(|m| m.json()["id"].as_i64())
            .any(|i| i == during.last().map_or(0, |r| r.id));
        assert!(
            !backlog_done,
            "the live reading waited for the whole backlog"
        );

        let last = station.store.last_id();
        let all = station.store.ids();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            let got: BTreeSet<i64> = sub.reading_ids().into_iter().collect();
            if all.iter().all(|i| got.contains(i)) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "missing: {:?}",
                all.iter()
                    .filter(|i| !got.contains(i))
                    .take(20)
                    .collect::<Vec<_>>()
            );
            sub.collect_for(200).await;
        }
        // In order per sensor (first arrival of each id), backfill flagged, same ids.
        let mut first: Vec<(i64, serde_json::Value)> = Vec::new();
        let mut seen = BTreeSet::new();
        for m in sub.seen.iter().filter(|m| m.topic.contains("/reading/")) {
            let v = m.json();
            let Some(rid) = v["id"].as_i64() else {
                continue;
            };
            if seen.insert(rid) {
                first.push((rid, v));
            }
        }
        let during_ids: BTreeSet<i64> = during.iter().map(|r| r.id).collect();
        for sensor in ["air", "water"] {
            let ids: Vec<i64> = first
                .iter()
                .filter(|(i, v)| v["sensor"] == sensor && during_ids.contains(i))
                .map(|(i, _)| *i)
                .collect();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "{sensor} backlog out of order"
            );
        }
        for (rid, v) in &first {
            if during_ids.contains(rid) {
                assert_eq!(v["backfill"], true, "reading {rid} came from the backlog");
            }
        }
        let live_v = &first
            .iter()
            .find(|(i, _)| *i == live_id)
            .expect("live reading")
            .1;
        assert_eq!(live_v["backfill"], false);
        // Duplicates (QoS 1) carry the same id and the same content.
        let mut by_id: BTreeMap<i64, String> = BTreeMap::new();
        for m in sub.seen.iter().filter(|m| m.topic.contains("/reading/")) {
            let mut v = m.json();
            let rid = v["id"].as_i64().unwrap_or(-1);
            v["backfill"] = serde_json::Value::Null;
            let prev = by_id.entry(rid).or_insert_with(|| v.to_string());
            assert_eq!(prev, &v.to_string(), "duplicate of {rid} differs");
        }

        let summary = station.shutdown(Duration::from_secs(10)).await;
        assert!(summary.drained, "{summary:?}");
        assert_eq!(station.store.cursor(), last);
        assert!(summary.connections >= 2, "{summary:?}");
        let hist = station.store.cursor_history();
        assert!(
            hist.windows(2).all(|w| w[0] <= w[1]),
            "cursor went backwards: {hist:?}"
        );
    })
    .await;
}

/// A broker, a proxy in front of it that a test can cut, a subscriber to the station's
/// readings (on the broker itself), an empty in-memory store and a config through the proxy.
async fn behind_a_proxy(
    name: &str,
) -> (
    TestBroker,
    Proxy,
    Subscriber,
    MemStore,
    anemone::config::Config,
) {
    let broker = TestBroker::start().await;
    let id = station_id(name);
    let p = prefix(&id);
    let proxy = Proxy::start(broker.addr).await;
    let sub = Subscriber::connect(&broker, &format!("{id}-a"), &[format!("{p}/reading/#")]).await;
    let cfg = broker.config(&id, proxy.addr);
    (broker, proxy, sub, MemStore::default(), cfg)
}

/// The daemon's writer sends readings live before it commits them. A batch the live feed
/// dropped (a gap in the ids) and readings sent while disconnected must still be
/// published from the store, once committed, and the cursor must wait for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_live_before_commit_loses_nothing() {
    bounded(90, async {
        let (_broker, proxy, mut sub, store, cfg) = behind_a_proxy("precommit").await;
        let (committed_tx, committed_rx) = tokio::sync::watch::channel(0i64);
        let mut station =
            Station::start_with(cfg, store.clone(), fast_tuning(), Some(committed_rx));
        let commit = |rows: &[StoredReading]| {
            store.commit(rows);
            let _ = committed_tx.send(rows.last().map_or(0, |r| r.id));
        };

        // Live first, committed later.
        let a = store.assign(mast_readings(T0 + 1000, 1));
        station.live.send(a.clone()).await.expect("live");
        let last_a = a.last().map(|r| r.id).expect("rows");
        sub.wait_for("a live reading", 10, |m| {
            m.json()["id"].as_i64() == Some(last_a)
        })
        .await;
        commit(&a);

        // A batch the live feed dropped, then one that arrives: a gap in the ids.
        let b = store.assign(mast_readings(T0 + 2000, 2));
        let c = store.assign(mast_readings(T0 + 3000, 3));
        station.live.send(c.clone()).await.expect("live");
        let last_c = c.last().map(|r| r.id).expect("rows");
        sub.wait_for("the batch after the gap", 10, |m| {
            m.json()["id"].as_i64() == Some(last_c)
        })
        .await;
        sub.collect_for(500).await;
        let first_b = b.first().map(|r| r.id).expect("rows");
        assert!(
            store.cursor() < first_b,
            "the cursor ({}) passed readings that were never sent ({first_b}…)",
            store.cursor()
        );
        // The store commits them: they are replayed, and the cursor moves on.
        commit(&b);
        commit(&c);

        // Disconnected: live readings are not queued, and are committed a little later.
        proxy.cut();
        let d = store.assign(mast_readings(T0 + 4000, 4));
        station.live.send(d.clone()).await.expect("live");
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.restore();
        tokio::time::sleep(Duration::from_millis(500)).await;
        commit(&d);

        let all = store.ids();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got: BTreeSet<i64> = sub.reading_ids().into_iter().collect();
            if all.iter().all(|i| got.contains(i)) && store.cursor() == store.last_id() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "lost: {:?}, cursor {} of {}",
                all.iter().filter(|i| !got.contains(i)).collect::<Vec<_>>(),
                store.cursor(),
                store.last_id()
            );
            sub.collect_for(200).await;
        }
        let summary = station.shutdown(Duration::from_secs(10)).await;
        assert!(summary.drained);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_no_loss_across_a_restart_of_anemone() {
    bounded(90, async {
        let (_broker, proxy, mut sub, store, cfg) = behind_a_proxy("restart").await;

        let mut first = Station::start(cfg.clone(), store.clone(), fast_tuning());
        let mut n = 0;
        for _ in 0..5 {
            n += 1;
            first.push(mast_readings(T0 + n * 1000, n)).await;
        }
        let acked_id = store.last_id();
        sub.wait_for("first run's readings", 10, |m| {
            m.json()["id"].as_i64() == Some(acked_id)
        })
        .await;
        // Let the cursor reach the writer, then the network drops and more readings are
        // stored that never reach the broker before the process is killed.
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while store.cursor() < acked_id && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.cursor(), acked_id);
        proxy.cut();
        for _ in 0..20 {
            n += 1;
            first.push(mast_readings(T0 + n * 1000, n)).await;
        }
        first.kill();
        // Stored while Anemone is down (the next run's sources would do this).
        for _ in 0..5 {
            n += 1;
            store.append(mast_readings(T0 + n * 1000, n));
        }
        proxy.restore();

        sub.collect_for(200).await;
        let second_starts = sub.seen.len();
        let mut second = Station::start(cfg, store.clone(), fast_tuning());
        let all = store.ids();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got: BTreeSet<i64> = sub.reading_ids().into_iter().collect();
            if all.iter().all(|i| got.contains(i)) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "lost: {:?}",
                all.iter().filter(|i| !got.contains(i)).collect::<Vec<_>>()
            );
            sub.collect_for(200).await;
        }
        // Nothing acknowledged in the first run is sent again by the second.
        let resent = sub.seen[second_starts..]
            .iter()
            .filter(|m| m.topic.contains("/reading/"))
            .filter_map(|m| m.json()["id"].as_i64())
            .filter(|i| *i <= acked_id)
            .count();
        assert_eq!(
            resent, 0,
            "readings below the persisted cursor were sent again"
        );
        let summary = second.shutdown(Duration::from_secs(10)).await;
        assert!(summary.drained);
        assert_eq!(store.cursor(), store.last_id());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_finite_run_exits_when_the_broker_is_unreachable() {
    bounded(30, async {
        let broker = TestBroker::start().await;
        let id = station_id("unreachable");
        let dead: std::net::SocketAddr =
            format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut station =
            Station::start(broker.config(&id, dead), MemStore::default(), fast_tuning());
        station.push(mast_readings(T0, 0)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let summary = station.shutdown(Duration::from_secs(20)).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown waited {:?}",
            started.elapsed()
        );
        assert!(!summary.drained);
        assert_eq!(summary.cursor, 0);
        assert_eq!(summary.connections, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_embedded_broker_or_the_one_already_there() {
    if external_broker() {
        return;
    }
    bounded(30, async {
        let port = free_port();
        let mut m = anemone::config::MqttConfig {
            listen: format!("127.0.0.1:{port}"),
            ..Default::default()
        };
        // Free port: the embedded broker starts.
        let choice = broker::choose_broker(&m).await;
        assert!(matches!(choice, BrokerChoice::Embedded(_)), "{choice:?}");
        // Now an MQTT broker answers there: it is used instead.
        let again = broker::choose_broker(&m).await;
        assert_eq!(
            again,
            BrokerChoice::Existing(m.listen.parse().expect("addr"))
        );
        // Something that is not MQTT holds the port: say so, publish nothing.
        let squatter = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = squatter.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = squatter.accept().await {
                use tokio::io::AsyncWriteExt;
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        m.listen = addr.to_string();
        let held = broker::choose_broker(&m).await;
        assert!(
            matches!(&held, BrokerChoice::Unavailable(why) if why.contains("not an MQTT broker")),
            "{held:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_daemon_start_publishes_through_the_embedded_broker() {
    if external_broker() {
        return;
    }
    bounded(30, async {
        let port = free_port();
        let mut cfg = anemone::config::Config::builtin();
        cfg.web.enabled = false;
        cfg.station.id = station_id("embedded");
        cfg.mqtt.listen = format!("127.0.0.1:{port}");
        let store = MemStore::default();
        let (live_tx, live_rx) = tokio::sync::mpsc::channel(16);
        let feeds = anemone::mqtt::Feeds {
            live: live_rx,
            backlog: store.backlog(),
            cursor: store.spawn_writer(),
            committed: None,
            pause: None,
            chain: None,
        };
        let mqtt = anemone::mqtt::start(&cfg, feeds).await;
        assert!(
            matches!(mqtt.choice, BrokerChoice::Embedded(_)),
            "{:?}",
            mqtt.choice
        );
        let b = TestBroker {
            addr: cfg.mqtt.listen.parse().expect("addr"),
            tls: false,
            username: None,
            password: None,
            ca_file: None,
            external: false,
        };
        let p = prefix(&cfg.station.id);
        let mut sub = Subscriber::connect(&b, "embedded-sub", &[format!("{p}/#")]).await;
        let stored = store.append(mast_readings(T0, 0));
        live_tx.send(stored.clone()).await.expect("send");
        sub.wait_for("status", 10, |m| {
            m.topic == format!("{p}/status") && m.payload == "online"
        })
        .await;
        sub.wait_for("reading", 10, |m| {
            m.json()["id"].as_i64() == stored.last().map(|r| r.id)
        })
        .await;
        let summary = mqtt.shutdown(Duration::from_secs(5)).await;
        assert!(summary.drained);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_check_reports_each_step() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        let id = station_id("check");
        let report = check(&broker.config(&id, broker.addr)).await;
        let text = anemone::mqtt::render(&report);
        eprintln!("{text}");
        assert!(report.ok(), "{text}");
        let names: Vec<&str> = report.steps.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["settings", "dns", "tcp", "tls", "auth", "publish"],
            "{text}"
        );
        assert_eq!(
            report.steps.last().map(|s| s.status),
            Some(StepStatus::Ok),
            "{text}"
        );
        if broker.tls {
            assert_eq!(report.steps[3].status, StepStatus::Ok, "{text}");
        }

        // Nothing listens: TCP fails, the rest is skipped.
        let dead: std::net::SocketAddr =
            format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let report = check(&broker.config(&id, dead)).await;
        let failed = report.failed_step().map(|s| s.name);
        assert_eq!(failed, Some("tcp"), "{}", anemone::mqtt::render(&report));

        // Unknown host: DNS fails.
        let mut cfg = broker.config(&id, broker.addr);
        cfg.mqtt.broker = "mqtt://no-such-host.invalid:1883".into();
        let report = check(&cfg).await;
        assert_eq!(
            report.failed_step().map(|s| s.name),
            Some("dns"),
            "{}",
            anemone::mqtt::render(&report)
        );

        // With a password-protected broker, a wrong password fails at auth.
        if broker.password.is_some() {
            let mut cfg = broker.config(&id, broker.addr);
            cfg.mqtt.password = Some("wrong-password".into());
            let report = check(&cfg).await;
            let text = anemone::mqtt::render(&report);
            eprintln!("{text}");
            assert_eq!(report.failed_step().map(|s| s.name), Some("auth"), "{text}");
            assert!(
                !text.contains("wrong-password"),
                "the password must not be shown"
            );
        }
        // With TLS, a CA that did not sign the broker's certificate fails at TLS.
        if broker.tls {
            let mut cfg = broker.config(&id, broker.addr);
            cfg.mqtt.ca_file = std::env::var("ANEMONE_TEST_WRONG_CA_FILE")
                .ok()
                .map(Into::into);
            if cfg.mqtt.ca_file.is_some() {
                let report = check(&cfg).await;
                eprintln!("{}", anemone::mqtt::render(&report));
                assert_eq!(
                    report.failed_step().map(|s| s.name),
                    Some("tls"),
                    "{}",
                    anemone::mqtt::render(&report)
                );
            }
        }
    })
    .await;
}

mod first_hour;
mod low_battery;
mod misbehaving;
mod mqtt5;
mod power_cut;
mod run_summary;
mod scripted;
mod station_outage;
