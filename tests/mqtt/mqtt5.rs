//! MQTT 5 where the broker speaks it, 3.1.1 where it does not (issue 13, item 5): a PUBACK
//! whose reason code is 0x80 or above is not a delivery.
//!
//! * A real Mosquitto started here (free port, its own config and ACL in a temporary
//!   directory) whose ACL denies the reading topics: the cursor stays, the log names the
//!   topic once, and the readings go out once the ACL allows them.
//! * The same Mosquitto allowing everything: MQTT 5 is spoken and the cursor follows the
//!   PUBACKs as before.
//! * A scripted 3.1.1-only broker (CONNACK code 1 to an MQTT 5 CONNECT) and rumqttd's 3.1.1
//!   listener (which closes the connection): the station falls back and remembers it.
//!
//! Without a `mosquitto` binary the Mosquitto tests say so and pass, except under CI (`CI`
//! set), where they fail: CI installs Mosquitto first (`.ci/mqtt/install-mosquitto.sh`).

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anemone::config::Config;
use anemone::mqtt::{check, StepStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::support::*;
use super::{prefix, T0};

// ---- the log, captured -----------------------------------------------------------------

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }

    fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }
}

struct LogWriter(Logs);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 .0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures this thread's log (the tests run on a current-thread runtime, so the
/// publisher's task logs here too).
fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || LogWriter(sink.clone()))
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// Runs `f` for at most `secs`; on a timeout the captured log is shown.
async fn bounded_logged<F: std::future::Future<Output = ()>>(secs: u64, logs: &Logs, f: F) {
    if tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .is_err()
    {
        panic!("test took too long; log:\n{}", logs.text());
    }
}

/// Waits (bounded by the test's own timeout) until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- Mosquitto, started here ------------------------------------------------------------

fn find_mosquitto() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// A Mosquitto of this test's own on a free port; killed when dropped.
struct Mosquitto {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts Mosquitto with `acl` as its ACL file (`None`: everyone may do everything).
    /// `None` when no mosquitto is installed and this is not CI.
    async fn start(acl: Option<&str>) -> Option<Mosquitto> {
        let Some(bin) = find_mosquitto() else {
            if std::env::var_os("CI").is_some() {
                panic!("mosquitto is not installed, and CI is set: CI must install it (.ci/mqtt/install-mosquitto.sh)");
            }
            eprintln!("Skipped: no mosquitto binary installed (apt-get install mosquitto); under CI this test fails instead.");
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {port} 127.0.0.1\npersistence false\nallow_anonymous true\nlog_dest file {}\nlog_type error\nlog_type warning\nlog_type notice\n",
            dir.path().join("mosquitto.log").display()
        );
        // (No `max_queued_messages 0`: Mosquitto 2.0.11 then drops the client after every
        // publish its ACL denies.)
        std::fs::write(&conf, "").expect("write config");
        // As root Mosquitto would switch to the `mosquitto` user, who cannot read the
        // temporary directory.
        if std::fs::metadata(&conf).map(|m| m.uid()).ok() == Some(0) {
            text.push_str("user root\n");
        }
        if let Some(acl) = acl {
            let file = dir.path().join("acl");
            std::fs::write(&file, acl).expect("write ACL");
            text.push_str(&format!("acl_file {}\n", file.display()));
        }
        std::fs::write(&conf, text).expect("write config");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut m = Mosquitto { child, addr, dir };
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_ok() {
                return Some(m);
            }
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("mosquitto exited ({status}): {}", m.log());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("mosquitto did not open {addr}: {}", m.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Replaces the ACL and makes Mosquitto reload it (SIGHUP).
    fn set_acl(&self, acl: &str) {
        std::fs::write(self.dir.path().join("acl"), acl).expect("write ACL");
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    }

    fn config(&self, station: &str) -> Config {
        station_config(station, self.addr)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn station_config(station: &str, addr: SocketAddr) -> Config {
    let mut cfg = Config::builtin();
    cfg.web.enabled = false;
    cfg.station.id = station.to_string();
    cfg.station.name = format!("Test {station}");
    cfg.mqtt.broker = format!("mqtt://{addr}");
    cfg.mqtt.client_id = Some(format!("anemone-{station}"));
    cfg
}

fn fast() -> anemone::mqtt::Tuning {
    anemone::mqtt::Tuning {
        refused_retry: Duration::from_millis(300),
        ..fast_tuning()
    }
}

// ---- the tests ------------------------------------------------------------------------

/// Mosquitto's ACL denies `anemone/<id>/reading/#` (and allows status, state, meta and
/// discovery). Under 3.1.1 it acknowledges the denied publishes like delivered ones; under
/// MQTT 5 it says 0x87, and the readings must stay owed.
#[tokio::test]
async fn mqtt5_readings_the_broker_acl_refuses_hold_the_cursor_and_are_named() {
    let id = station_id("acl");
    let p = prefix(&id);
    let allow_rest = format!(
        "topic readwrite {p}/status\ntopic readwrite {p}/state\ntopic readwrite {p}/meta\ntopic readwrite homeassistant/#\n"
    );
    let Some(broker) = Mosquitto::start(Some(&allow_rest)).await else {
        return;
    };
    let (logs, _guard) = capture();
    bounded_logged(90, &logs, async {
        let mut station = Station::start(broker.config(&id), MemStore::default(), fast());
        let mut stored = Vec::new();
        for n in 0..5 {
            stored.extend(station.push(mast_readings(T0 + n * 1000, n)).await);
        }
        let air = format!("{p}/reading/air");
        let water = format!("{p}/reading/water");
        let refused = |t: &str| format!("The broker refuses publishes to {t}: not authorized");
        // Until both topics were refused, or (the defect) the cursor moved.
        until(|| {
            station.store.cursor() > 0
                || (logs.count(&refused(&air)) > 0 && logs.count(&refused(&water)) > 0)
        })
        .await;
        assert_eq!(
            station.store.cursor(),
            0,
            "the cursor moved past readings the broker refused; log:\n{}",
            logs.text()
        );
        // The refused readings are offered again (after a wait), refused again, and the
        // topic is still named once, at ERROR.
        until(|| logs.count("Offering the readings the broker refused again") >= 2).await;
        assert_eq!(station.store.cursor(), 0, "{}", logs.text());
        assert!(
            station.store.cursor_history().is_empty(),
            "{:?}",
            station.store.cursor_history()
        );
        for t in [&air, &water] {
            assert_eq!(logs.count(&refused(t)), 1, "{}", logs.text());
        }
        let line = logs
            .text()
            .lines()
            .find(|l| l.contains(&refused(&air)))
            .map(str::to_string)
            .unwrap_or_default();
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("0x87"), "{line}");
        assert!(
            !logs
                .text()
                .contains(&format!("refuses publishes to {p}/status")),
            "status is allowed"
        );
        assert!(
            logs.count("Speaking MQTT 5 with the broker") == 1,
            "{}",
            logs.text()
        );

        // The operator fixes the ACL: the owed readings go out, the cursor reaches the end.
        broker.set_acl(&format!("{allow_rest}topic readwrite {p}/reading/#\n"));
        let last = stored.last().map_or(0, |r| r.id);
        until(|| station.store.cursor() >= last).await;
        let summary = station.shutdown(Duration::from_secs(5)).await;
        assert!(summary.refused >= 2 * stored.len() as u64, "{summary:?}");
        assert!(summary.drained, "{summary:?}");
        assert_eq!(summary.cursor, last);
    })
    .await;
}

/// With a finite run's drain, refused readings are owed: the run is not "drained".
#[tokio::test]
async fn mqtt5_a_drain_does_not_count_refused_readings_as_delivered() {
    let id = station_id("acl-drain");
    let p = prefix(&id);
    let acl = format!("topic readwrite {p}/status\ntopic readwrite {p}/meta\n");
    let Some(broker) = Mosquitto::start(Some(&acl)).await else {
        return;
    };
    let (logs, _guard) = capture();
    bounded_logged(60, &logs, async {
        let mut station = Station::start(broker.config(&id), MemStore::default(), fast());
        station.push(mast_readings(T0, 0)).await;
        until(|| logs.count("The broker refuses publishes to") > 0).await;
        let summary = station.shutdown(Duration::from_millis(500)).await;
        assert!(!summary.drained, "{summary:?}");
        assert_eq!(summary.cursor, 0, "{summary:?}");
        assert_eq!(station.store.cursor(), 0);
    })
    .await;
}

/// Mosquitto without an ACL: MQTT 5 is spoken, the cursor follows the PUBACKs (some carry
/// 0x10 "no matching subscribers", which is a delivery), and `mqtt check` names the
/// version.
#[tokio::test]
async fn mqtt5_spoken_with_mosquitto_and_the_cursor_follows_the_pubacks() {
    let Some(broker) = Mosquitto::start(None).await else {
        return;
    };
    let (logs, _guard) = capture();
    bounded_logged(60, &logs, async {
        let id = station_id("v5");
        let cfg = broker.config(&id);
        let mut station = Station::start(cfg.clone(), MemStore::default(), fast());
        let mut last = 0;
        for n in 0..50 {
            last = station
                .push(mast_readings(T0 + n * 1000, n))
                .await
                .last()
                .map_or(last, |r| r.id);
        }
        until(|| station.store.cursor() >= last).await;
        assert_eq!(logs.count("Speaking MQTT 5 with the broker"), 1);
        let summary = station.shutdown(Duration::from_secs(5)).await;
        assert!(summary.drained, "{summary:?}");
        assert_eq!(summary.cursor, last);
        assert_eq!(logs.count("refuses publishes"), 0, "{}", logs.text());

        let report = check(&cfg).await;
        let text = anemone::mqtt::render(&report);
        assert!(report.ok(), "{text}");
        let auth = report.steps.iter().find(|s| s.name == "auth");
        assert!(
            auth.is_some_and(|s| s.detail.contains("speaking MQTT 5")),
            "{text}"
        );
    })
    .await;
}

/// The packet in `buf` once complete: first byte, body.
async fn read_packet(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    loop {
        if buf.len() >= 2 {
            let mut len = 0usize;
            let mut at = 1;
            let mut complete = false;
            while let Some(&b) = buf.get(at) {
                len |= usize::from(b & 0x7f) << (7 * (at - 1));
                at += 1;
                if b & 0x80 == 0 {
                    complete = true;
                    break;
                }
            }
            if complete && buf.len() >= at + len {
                let first = buf[0];
                let body = buf[at..at + len].to_vec();
                buf.drain(..at + len);
                return Some((first, body));
            }
        }
        let mut chunk = [0u8; 4096];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A broker that speaks only 3.1.1, as the standard has it: an MQTT 5 CONNECT gets
/// CONNACK code 1 (unacceptable protocol version). It records the protocol level of every
/// CONNECT, and drops its first 3.1.1 connection after three publishes (so the station
/// must reconnect).
async fn v311_only_broker(levels: Arc<Mutex<Vec<u8>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut v4_connections = 0;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let Some((0x10, connect)) = read_packet(&mut sock, &mut buf).await else {
                continue;
            };
            let level = connect.get(6).copied().unwrap_or(0);
            levels.lock().expect("levels").push(level);
            if level != 4 {
                let _ = sock.write_all(&[0x20, 2, 0, 1]).await;
                continue;
            }
            v4_connections += 1;
            let drop_after = (v4_connections == 1).then_some(3);
            tokio::spawn(async move {
                let _ = sock.write_all(&[0x20, 2, 0, 0]).await;
                let mut publishes = 0;
                while let Some((first, body)) = read_packet(&mut sock, &mut buf).await {
                    let answer = match first >> 4 {
                        3 if (first >> 1) & 3 == 1 => {
                            publishes += 1;
                            let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
                            vec![0x40, 2, body[2 + tlen], body[3 + tlen]]
                        }
                        3 => {
                            publishes += 1;
                            vec![]
                        }
                        8 => vec![0x90, 3, body[0], body[1], 1],
                        12 => vec![0xd0, 0],
                        _ => return,
                    };
                    if sock.write_all(&answer).await.is_err() {
                        return;
                    }
                    if drop_after.is_some_and(|d| publishes >= d) {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn mqtt5_falls_back_to_3_1_1_when_the_broker_refuses_version_5_and_keeps_it() {
    let (logs, _guard) = capture();
    bounded_logged(60, &logs, async {
        let levels = Arc::new(Mutex::new(Vec::new()));
        let addr = v311_only_broker(levels.clone()).await;
        let id = station_id("v311");
        let mut station = Station::start(station_config(&id, addr), MemStore::default(), fast());
        let mut last = 0;
        for n in 0..10 {
            last = station
                .push(mast_readings(T0 + n * 1000, n))
                .await
                .last()
                .map_or(last, |r| r.id);
        }
        until(|| station.store.cursor() >= last).await;
        let summary = station.shutdown(Duration::from_secs(5)).await;
        assert!(summary.drained, "{summary:?}");
        assert!(
            summary.connections >= 2,
            "the broker dropped the first: {summary:?}"
        );
        let levels = levels.lock().expect("levels").clone();
        // MQTT 5 first, refused; 3.1.1; after the drop, 3.1.1 at once (remembered).
        assert_eq!(levels.first(), Some(&5), "{levels:?}");
        assert!(levels.len() >= 3, "{levels:?}");
        assert!(levels[1..].iter().all(|&l| l == 4), "{levels:?}");
        assert_eq!(
            logs.count("does not speak MQTT 5; speaking MQTT 3.1.1 with it from now on"),
            1,
            "{}",
            logs.text()
        );
    })
    .await;

    // mqtt.protocol = "5": no fallback, and the refusal is named.
    let levels = Arc::new(Mutex::new(Vec::new()));
    let addr = v311_only_broker(levels.clone()).await;
    let mut cfg = station_config(&station_id("v5-only"), addr);
    cfg.mqtt.protocol = anemone::mqtt::connect::Protocol::V5;
    let report = check(&cfg).await;
    let text = anemone::mqtt::render(&report);
    assert_eq!(report.failed_step().map(|s| s.name), Some("auth"), "{text}");
    assert!(text.contains("does not speak this MQTT version"), "{text}");
    assert_eq!(levels.lock().expect("levels").clone(), vec![5]);
}

/// rumqttd (the embedded broker) listens for 3.1.1 only and closes the connection on an
/// MQTT 5 CONNECT: the station falls back, and `mqtt check` says which version it speaks.
#[tokio::test]
async fn mqtt5_falls_back_to_3_1_1_with_rumqttd() {
    let (logs, _guard) = capture();
    bounded_logged(60, &logs, async {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let b = anemone::mqtt::broker::start_embedded(addr)
            .await
            .expect("start rumqttd");
        let id = station_id("rumqttd-v4");
        let cfg = station_config(&id, b.addr);
        let report = check(&cfg).await;
        let text = anemone::mqtt::render(&report);
        assert!(report.ok(), "{text}");
        assert_eq!(
            report
                .steps
                .iter()
                .find(|s| s.name == "auth")
                .map(|s| s.status),
            Some(StepStatus::Ok)
        );
        assert!(text.contains("speaking MQTT 3.1.1"), "{text}");

        let mut station = Station::start(cfg, MemStore::default(), fast());
        let last = station
            .push(mast_readings(T0, 0))
            .await
            .last()
            .map_or(0, |r| r.id);
        until(|| station.store.cursor() >= last).await;
        let summary = station.shutdown(Duration::from_secs(5)).await;
        assert!(summary.drained, "{summary:?}");
        assert!(
            logs.text().contains("does not speak MQTT 5"),
            "{}",
            logs.text()
        );
    })
    .await;
}

/// Two stations that share a station id (one config file on two Pis, a cloned card) on a
/// real Mosquitto: each connection takes the other's session (MQTT 5 reason 0x8e), and
/// each station is told, in its own log, that another station probably uses its station
/// id and how to fix it. Each runs on its own thread with its own runtime and log.
#[test]
fn mqtt5_two_stations_with_one_station_id_are_both_told() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const NEEDLE: &str = "another station probably uses the same station id";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(broker) = rt.block_on(Mosquitto::start(None)) else {
        return;
    };
    let id = station_id("twin");
    let told: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let stations: Vec<_> = (0..2)
        .map(|n| {
            let cfg = broker.config(&id);
            let told = told.clone();
            std::thread::spawn(move || {
                let (logs, _guard) = capture();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    let tuning = anemone::mqtt::Tuning {
                        backoff_initial: Duration::from_millis(100),
                        backoff_max: Duration::from_millis(800),
                        ..fast()
                    };
                    let mut station = Station::start(cfg, MemStore::default(), tuning);
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    // Both keep running until both were told (or time is up): a station
                    // that stopped early would stop taking the other's session.
                    while tokio::time::Instant::now() < deadline
                        && !told.iter().all(|t| t.load(Ordering::SeqCst))
                    {
                        if logs.count(NEEDLE) > 0 {
                            told[n].store(true, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    station.shutdown(Duration::from_secs(1)).await;
                });
                logs.text()
            })
        })
        .collect();
    let logs: Vec<String> = stations
        .into_iter()
        .map(|t| t.join().expect("station thread"))
        .collect();
    for (n, log) in logs.iter().enumerate() {
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains(NEEDLE)).collect();
        assert!(!warnings.is_empty(), "station {n} was not told:\n{log}");
        for w in &warnings {
            assert!(w.contains("WARN"), "{w}");
            assert!(w.contains("leave `[station] id` out"), "{w}");
            assert!(w.contains(&format!("\"anemone-{id}\"")), "{w}");
        }
    }
}
