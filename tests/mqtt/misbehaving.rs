//! Brokers that misbehave (issue 13, items 4 and 10): one that withholds an
//! acknowledgement, one that closes every connection right after accepting it, and two
//! stations that share one client id on a real broker.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anemone::mqtt::Tuning;

use super::scripted::{logged, Script, ScriptedBroker};
use super::support::*;
use super::{bounded, T0};

/// The most connections a publisher can make in `elapsed` when every reconnect waits at
/// least its backoff delay: `initial`, doubling up to `max`, each at least 75 % of itself
/// (the jitter). Counting from the first attempt, which does not wait.
fn backoff_ceiling(elapsed: Duration, initial: Duration, max: Duration) -> usize {
    let (mut waited, mut base, mut n) = (Duration::ZERO, initial, 1);
    loop {
        waited += base.mul_f64(0.75);
        if waited > elapsed {
            return n;
        }
        n += 1;
        base = (base * 2).min(max);
    }
}

/// Item 4: the broker acknowledges every reading but one. The stall watchdog sees that the
/// oldest message in flight waits while later ones are acknowledged, ends the session, and
/// the reading is sent again on the next connection: the cursor moves past it while
/// readings keep flowing, and only what was in flight is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_a_withheld_acknowledgement_does_not_hold_the_cursor() {
    bounded(120, async {
        // Connection 1 never acknowledges the first reading it receives.
        let withheld: Arc<OnceLock<i64>> = Arc::new(OnceLock::new());
        let w = withheld.clone();
        let broker = ScriptedBroker::start(Script::default().withhold(move |p| {
            p.connection == 1
                && p.reading_id()
                    .is_some_and(|id| *w.get_or_init(|| id) == id)
        }))
        .await;
        let id = station_id("withheld");
        let window = 50;
        let tuning = Tuning {
            window,
            stall_timeout: Some(Duration::from_millis(1_000)),
            ..fast_tuning()
        };
        let store = MemStore::default();
        let mut station = Station::start(broker.config(&id), store.clone(), tuning);

        // Readings keep coming (a station samples every second), so acknowledgements of
        // later readings keep arriving all the time.
        let mut passed_at = None;
        for n in 0..800 {
            station.push(mast_readings(T0 + n * 1000, n)).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            if withheld.get().is_some_and(|w| store.cursor() >= *w) {
                passed_at = Some(n);
                break;
            }
        }
        let w = *withheld.get().expect("a reading was withheld");
        let later_acked = broker
            .publishes()
            .iter()
            .filter(|p| p.reading_id().is_some_and(|i| i > w) && !p.withheld)
            .count();
        assert!(
            passed_at.is_some(),
            "the cursor stayed at {} below the unacknowledged reading {w} while {later_acked} later readings were acknowledged",
            store.cursor()
        );
        let summary = station.shutdown(Duration::from_secs(10)).await;
        assert!(summary.drained, "{summary:?}");
        assert_eq!(store.cursor(), store.last_id());
        assert!(summary.connections >= 2, "{summary:?}");

        let publishes = broker.publishes();
        // The withheld reading came again on a later connection, with the same id.
        assert!(
            publishes
                .iter()
                .any(|p| p.connection >= 2 && p.reading_id() == Some(w)),
            "reading {w} was not sent again"
        );
        // Only what was in flight when the session ended is sent twice.
        let mut times: BTreeMap<i64, usize> = BTreeMap::new();
        for i in publishes.iter().filter_map(|p| p.reading_id()) {
            *times.entry(i).or_default() += 1;
        }
        let twice = times.values().filter(|&&k| k > 1).count();
        assert!(
            twice <= window,
            "{twice} readings were sent more than once (window {window}); summary {summary:?}"
        );
        eprintln!(
            "Reading {w} withheld; the cursor passed it after {} pushes; {twice} readings sent twice; {summary:?}",
            passed_at.unwrap_or_default()
        );
        let hist = store.cursor_history();
        assert!(
            hist.windows(2).all(|p| p[0] <= p[1]),
            "cursor went backwards: {hist:?}"
        );
    })
    .await;
}

/// Fast backoff that grows far enough to be seen.
fn growing_tuning() -> Tuning {
    Tuning {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(3_200),
        ..fast_tuning()
    }
}

/// Item 10: a broker that accepts the station and closes the connection at once. Backoff
/// is not reset by CONNACK, so the connections thin out; the repeated cause is logged once
/// and then named: another client with the same client id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_a_broker_that_drops_every_connection_gets_no_reconnect_storm() {
    bounded(60, async {
        super::scripted::captured_logs();
        let broker = ScriptedBroker::start(Script::default().drop_after(Duration::ZERO)).await;
        let id = station_id("dropped");
        let tuning = growing_tuning();
        let (initial, max) = (tuning.backoff_initial, tuning.backoff_max);
        let mut station = Station::start(broker.config(&id), MemStore::default(), tuning);

        // Six connections, however long they take.
        assert!(
            broker
                .wait_until(Duration::from_secs(40), |b| b.connections() >= 6)
                .await,
            "only {} connections",
            broker.connections()
        );
        let summary = station.shutdown(Duration::from_secs(2)).await;
        let accepted = broker.accepted();
        let first = accepted[0].at;
        // Within 20 backoff units of the first connection, at most what the backoff allows.
        let window = initial * 20;
        let in_window = accepted.iter().filter(|a| a.at - first < window).count();
        let ceiling = backoff_ceiling(window, initial, max);
        assert!(
            in_window <= ceiling,
            "{in_window} connections within {window:?} (at most {ceiling} with backoff): {:?}",
            accepted.iter().map(|a| a.at - first).collect::<Vec<_>>()
        );
        // And over the whole run.
        let last = accepted.last().map_or(first, |a| a.at);
        let all_ceiling = backoff_ceiling(last - first, initial, max);
        assert!(
            accepted.len() <= all_ceiling,
            "{} connections in {:?} (at most {all_ceiling})",
            accepted.len(),
            last - first
        );
        assert!(summary.early_closes >= 5, "{summary:?}");

        eprintln!(
            "{} connections at {:?}; {summary:?}",
            accepted.len(),
            accepted.iter().map(|a| a.at - first).collect::<Vec<_>>()
        );
        // The cause, named: the client id another client probably uses.
        let client_id = format!("anemone-{id}");
        let named = logged(&format!(
            "another client is probably using the client id \"{client_id}\""
        ));
        assert!(!named.is_empty(), "{:#?}", logged(&client_id));
        assert!(
            named[0].contains("set [mqtt] client_id or [station] id"),
            "{named:?}"
        );
        // Logged once, not at every attempt.
        let addr = broker.addr.to_string();
        let lost = logged(&addr)
            .into_iter()
            .filter(|l| l.contains("connection lost") || l.contains("Reconnected"))
            .count();
        assert!(
            lost <= 1,
            "{lost} lines about lost or renewed connections in {} connections: {:#?}",
            accepted.len(),
            logged(&addr)
        );
    })
    .await;
}

/// Item 10: a connection that lasts `backoff_reset_after` ends the series. The broker
/// drops connections 1–3 at once, keeps the 4th a while, then drops 5–7 at once: the
/// recovery is logged, and the second series is counted from 1 again ("3 times", not 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_a_connection_that_lasts_starts_the_count_again() {
    bounded(60, async {
        super::scripted::captured_logs();
        let lasting = Duration::from_millis(800);
        let broker = ScriptedBroker::start(
            Script::default()
                .drop_when(move |n| Some(if n == 4 { lasting } else { Duration::ZERO })),
        )
        .await;
        let id = station_id("recovers");
        let tuning = Tuning {
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            backoff_reset_after: Duration::from_millis(300),
            ..fast_tuning()
        };
        let mut station = Station::start(broker.config(&id), MemStore::default(), tuning);
        let needle = format!("another client is probably using the client id \"anemone-{id}\"");
        assert!(
            broker
                .wait_until(Duration::from_secs(40), |b| b.connections() >= 8)
                .await,
            "only {} connections",
            broker.connections()
        );
        let summary = station.shutdown(Duration::from_secs(2)).await;
        let notices = logged(&needle);
        assert_eq!(notices.len(), 2, "{notices:#?}");
        for n in &notices {
            assert!(n.contains("it 3 times"), "{notices:#?}");
        }
        let addr = broker.addr.to_string();
        let recovered = logged(&addr)
            .into_iter()
            .filter(|l| l.contains("no longer closes it at once"))
            .count();
        assert_eq!(recovered, 1, "{:#?}", logged(&addr));
        assert!(summary.early_closes >= 6, "{summary:?}");
    })
    .await;
}

/// Item 10 on a real broker: two stations with one client id (a cloned SD card) take each
/// other's session; the connection count stays within what the backoff allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_two_stations_with_one_client_id_do_not_storm() {
    bounded(90, async {
        super::scripted::captured_logs();
        let broker = TestBroker::start().await;
        let id = station_id("clone");
        let cfg = broker.config(&id, broker.addr);
        let tuning = growing_tuning();
        let (initial, max) = (tuning.backoff_initial, tuning.backoff_max);
        let started = Instant::now();
        let mut a = Station::start(cfg.clone(), MemStore::default(), tuning.clone());
        let mut b = Station::start(cfg, MemStore::default(), tuning);
        let client_id = format!("anemone-{id}");
        let needle = format!("another client is probably using the client id \"{client_id}\"");
        let until = Instant::now() + Duration::from_secs(60);
        while logged(&needle).is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (sa, sb) = tokio::join!(
            a.shutdown(Duration::from_secs(2)),
            b.shutdown(Duration::from_secs(2))
        );
        let elapsed = started.elapsed();
        assert!(
            !logged(&needle).is_empty(),
            "the shared client id was not named: {sa:?} {sb:?}"
        );
        eprintln!("In {elapsed:?}: {sa:?} {sb:?}");
        let ceiling = backoff_ceiling(elapsed, initial, max);
        for s in [&sa, &sb] {
            assert!(
                s.connections as usize <= ceiling,
                "{} connections in {elapsed:?} (at most {ceiling} with backoff): {sa:?} {sb:?}",
                s.connections
            );
        }
    })
    .await;
}

/// The scripted broker itself: it refuses an MQTT 5 CONNECT with 0x01 (so a client that
/// tries 5 first falls back) and serves an independent 3.1.1 client (rumqttc).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_scripted_broker_refuses_mqtt5_and_serves_3_1_1() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(30, async {
        let broker = ScriptedBroker::start(Script::default().withhold(|p| p.nth == 1)).await;
        // CONNECT, protocol level 5, clean start, keep-alive 60, no properties, client "x".
        let v5 = [
            0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 1, b'x',
        ];
        let mut sock = tokio::net::TcpStream::connect(broker.addr)
            .await
            .expect("connect");
        sock.write_all(&v5).await.expect("write");
        let mut answer = Vec::new();
        sock.read_to_end(&mut answer).await.expect("read");
        assert_eq!(
            answer,
            [0x20, 0x02, 0x00, 0x01],
            "CONNACK 0x01, then closed"
        );
        assert_eq!(broker.mqtt5_refused(), 1);
        assert_eq!(broker.connections(), 0);

        let mut opts = rumqttc::MqttOptions::new("scripted-check", "127.0.0.1", broker.addr.port());
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut events) = rumqttc::AsyncClient::new(opts, 10);
        for n in 0..3 {
            client
                .publish(
                    "t/reading/x",
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    format!("{{\"id\":{n}}}"),
                )
                .await
                .expect("publish");
        }
        let mut acked = Vec::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while acked.len() < 2 {
            match tokio::time::timeout_at(until, events.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(a)))) => {
                    acked.push(a.pkid)
                }
                Ok(Ok(_)) => {}
                other => panic!("no PUBACKs: {other:?}"),
            }
        }
        let got = broker.publishes();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got.iter()
                .filter_map(|p| p.reading_id())
                .collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let withheld: Vec<u16> = got.iter().filter(|p| p.withheld).map(|p| p.pkid).collect();
        assert_eq!(withheld.len(), 1);
        assert!(!acked.contains(&withheld[0]), "{acked:?} {withheld:?}");
        assert_eq!(broker.connections(), 1);
        assert_eq!(broker.accepted()[0].client_id, "scripted-check");
    })
    .await;
}
