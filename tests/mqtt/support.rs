//! Test rig: a broker on a free port (in-process rumqttd, or the Mosquitto named by
//! ANEMONE_TEST_BROKER), a TCP proxy that can cut the network, an in-memory store that
//! plays the outbox, and a subscriber that records what arrives.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anemone::config::Config;
use anemone::mqtt::{Backlog, BoxError, ConnectSettings, Feeds, Publisher, Tuning};
use anemone::reading::{Quantity, Reading, SensorId, StoredReading};
use rumqttc::{AsyncClient, Event, Incoming, QoS};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

/// A port nothing listens on right now (never 1883).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// The broker the tests talk to.
#[derive(Clone, Debug)]
pub struct TestBroker {
    pub addr: SocketAddr,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca_file: Option<String>,
    /// True for a broker outside this process (Mosquitto in CI).
    #[allow(dead_code)]
    pub external: bool,
}

impl TestBroker {
    /// The broker from ANEMONE_TEST_BROKER, else rumqttd in-process on a free port.
    pub async fn start() -> TestBroker {
        if let Ok(url) = std::env::var("ANEMONE_TEST_BROKER") {
            let (tls, rest) = match url.strip_prefix("mqtts://") {
                Some(r) => (true, r),
                None => (false, url.trim_start_matches("mqtt://")),
            };
            let addr: SocketAddr = rest
                .trim_end_matches('/')
                .parse()
                .expect("ANEMONE_TEST_BROKER is mqtt(s)://IP:PORT");
            return TestBroker {
                addr,
                tls,
                username: std::env::var("ANEMONE_TEST_USERNAME").ok(),
                password: std::env::var("ANEMONE_TEST_PASSWORD").ok(),
                ca_file: std::env::var("ANEMONE_TEST_CA_FILE").ok(),
                external: true,
            };
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let b = anemone::mqtt::broker::start_embedded(addr)
            .await
            .expect("start rumqttd");
        TestBroker {
            addr: b.addr,
            tls: false,
            username: None,
            password: None,
            ca_file: None,
            external: false,
        }
    }

    /// A config for a station publishing to `target` (the broker, or a proxy before it).
    pub fn config(&self, station: &str, target: SocketAddr) -> Config {
        let mut cfg = Config::builtin();
        cfg.web.enabled = false;
        cfg.station.id = station.to_string();
        cfg.station.name = format!("Test {station}");
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        cfg.mqtt.broker = format!("{scheme}://{target}");
        cfg.mqtt.username = self.username.clone();
        cfg.mqtt.password = self.password.clone();
        cfg.mqtt.ca_file = self.ca_file.as_ref().map(Into::into);
        cfg.mqtt.allow_insecure = true;
        cfg.mqtt.client_id = Some(format!("anemone-{station}"));
        cfg
    }
}

static STATION_SEQ: AtomicU64 = AtomicU64::new(0);

/// A station id no other test (or earlier run against the same Mosquitto) uses.
pub fn station_id(name: &str) -> String {
    let n = STATION_SEQ.fetch_add(1, Ordering::SeqCst);
    format!("t{}-{n}-{name}", std::process::id() % 100_000)
}

/// Fast reconnects for tests.
pub fn fast_tuning() -> Tuning {
    Tuning {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        state_interval: Duration::from_millis(200),
        progress_interval: Duration::from_millis(500),
        ..Tuning::default()
    }
}

// ---- the in-memory outbox ------------------------------------------------------------

#[derive(Default)]
struct StoreInner {
    rows: Vec<StoredReading>,
    cursor: i64,
    next_id: i64,
    cursor_history: Vec<i64>,
}

/// The store as the publisher sees it: rows in id order (with gaps), and a cursor that a
/// "writer" task persists.
#[derive(Clone, Default)]
pub struct MemStore(Arc<Mutex<StoreInner>>);

impl MemStore {
    /// Stores readings, giving them ids (every 5th id is skipped: stores have gaps).
    pub fn append(&self, readings: Vec<Reading>) -> Vec<StoredReading> {
        let mut s = self.0.lock().expect("store lock");
        let mut out = Vec::new();
        for r in readings {
            s.next_id += 1;
            if s.next_id % 5 == 0 {
                s.next_id += 1;
            }
            let sr = StoredReading {
                id: s.next_id,
                reading: r,
            };
            s.rows.push(sr.clone());
            out.push(sr);
        }
        out
    }

    /// Gives readings ids without storing them (the writer's side before a commit).
    pub fn assign(&self, readings: Vec<Reading>) -> Vec<StoredReading> {
        let mut s = self.0.lock().expect("store lock");
        readings
            .into_iter()
            .map(|reading| {
                s.next_id += 1;
                StoredReading {
                    id: s.next_id,
                    reading,
                }
            })
            .collect()
    }

    /// Stores readings that already have their ids (a commit).
    pub fn commit(&self, rows: &[StoredReading]) {
        let mut s = self.0.lock().expect("store lock");
        s.rows.extend(rows.iter().cloned());
        s.rows.sort_by_key(|r| r.id);
    }

    pub fn cursor(&self) -> i64 {
        self.0.lock().expect("store lock").cursor
    }

    pub fn last_id(&self) -> i64 {
        self.0
            .lock()
            .expect("store lock")
            .rows
            .last()
            .map_or(0, |r| r.id)
    }

    pub fn rows(&self) -> Vec<StoredReading> {
        self.0.lock().expect("store lock").rows.clone()
    }

    pub fn ids(&self) -> Vec<i64> {
        self.0
            .lock()
            .expect("store lock")
            .rows
            .iter()
            .map(|r| r.id)
            .collect()
    }

    /// Every cursor value the writer persisted, in order.
    pub fn cursor_history(&self) -> Vec<i64> {
        self.0.lock().expect("store lock").cursor_history.clone()
    }

    /// The read side for the publisher.
    pub fn backlog(&self) -> Box<dyn Backlog> {
        Box::new(MemBacklog(self.clone()))
    }

    /// The writer's side of the cursor channel: persists every advance.
    pub fn spawn_writer(&self) -> mpsc::Sender<i64> {
        let (tx, mut rx) = mpsc::channel::<i64>(16);
        let store = self.clone();
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                let mut s = store.0.lock().expect("store lock");
                s.cursor_history.push(c);
                s.cursor = s.cursor.max(c);
            }
        });
        tx
    }
}

struct MemBacklog(MemStore);

impl Backlog for MemBacklog {
    fn cursor(&mut self) -> Result<i64, BoxError> {
        Ok(self.0.cursor())
    }

    fn after(&mut self, id: i64, limit: usize) -> Result<Vec<StoredReading>, BoxError> {
        let s = self.0 .0.lock().map_err(|_| "poisoned")?;
        Ok(s.rows
            .iter()
            .filter(|r| r.id > id)
            .take(limit)
            .cloned()
            .collect())
    }
}

/// A publisher wired to a MemStore: `push` stores readings and sends them on the live feed.
pub struct Station {
    pub cfg: Config,
    pub store: MemStore,
    pub live: mpsc::Sender<Vec<StoredReading>>,
    pub publisher: Option<Publisher>,
}

impl Station {
    pub fn start(cfg: Config, store: MemStore, tuning: Tuning) -> Station {
        Station::start_with(cfg, store, tuning, None)
    }

    /// Like the daemon: live readings may come before their commit, and `committed`
    /// says how far the store has committed.
    pub fn start_with(
        cfg: Config,
        store: MemStore,
        tuning: Tuning,
        committed: Option<tokio::sync::watch::Receiver<i64>>,
    ) -> Station {
        let (live, live_rx) = mpsc::channel(256);
        let settings = ConnectSettings::from_config(&cfg, None).expect("connect settings");
        let feeds = Feeds {
            live: live_rx,
            backlog: store.backlog(),
            cursor: store.spawn_writer(),
            committed,
            pause: None,
            chain: None,
        };
        let publisher = Publisher::spawn(&cfg, settings, feeds, tuning);
        Station {
            cfg,
            store,
            live,
            publisher: Some(publisher),
        }
    }

    /// Stores readings and sends them on the live feed, like the store's writer.
    pub async fn push(&self, readings: Vec<Reading>) -> Vec<StoredReading> {
        let stored = self.store.append(readings);
        self.live
            .send(stored.clone())
            .await
            .expect("live feed open");
        stored
    }

    pub async fn shutdown(&mut self, drain: Duration) -> anemone::mqtt::PublisherSummary {
        match self.publisher.take() {
            Some(p) => p.shutdown(drain).await,
            None => Default::default(),
        }
    }

    pub fn kill(&mut self) {
        if let Some(p) = self.publisher.take() {
            p.abort();
        }
    }
}

/// Readings of a small weather mast at `ts`: air temperature, humidity, pressure, and a
/// failed pH probe every `fail_every` calls.
pub fn mast_readings(ts: i64, n: i64) -> Vec<Reading> {
    let air: SensorId = Arc::from("air");
    let water: SensorId = Arc::from("water");
    let mut v = vec![
        Reading::new(ts, &air, Quantity::AirTemperature, 10.0 + n as f64 * 0.1),
        Reading::new(ts, &air, Quantity::RelativeHumidity, 80.0),
        Reading::new(ts, &air, Quantity::AirPressure, 1013.2),
    ];
    if n % 2 == 0 {
        v.push(Reading::new(ts, &water, Quantity::Ph, 8.1));
    } else {
        v.push(Reading::sensor_error(ts, &water, Quantity::Ph));
    }
    v
}

// ---- the subscriber --------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

impl Msg {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}

/// Options for rumqttc (the tests' independent client) from the station's settings.
pub fn rumqttc_options(settings: &ConnectSettings, client_id: &str) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(client_id, settings.host.clone(), settings.port);
    o.set_keep_alive(settings.keep_alive);
    o.set_clean_session(true);
    if let Some(user) = &settings.username {
        let pass = String::from_utf8_lossy(settings.password().unwrap_or_default()).into_owned();
        o.set_credentials(user.clone(), pass);
    }
    if let Some(tls) = settings.tls_config() {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
    }
    o
}

/// A dashboard: subscribes and records every message.
pub struct Subscriber {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    pub seen: Vec<Msg>,
    _task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    pub async fn connect(broker: &TestBroker, id: &str, filters: &[String]) -> Subscriber {
        let cfg = broker.config(id, broker.addr);
        let settings = ConnectSettings::from_config(&cfg, None).expect("settings");
        let opts = rumqttc_options(&settings, &format!("sub-{id}"));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let _ = tx.send(Msg {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                        });
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        for f in filters {
            client
                .subscribe(f.clone(), QoS::AtLeastOnce)
                .await
                .expect("subscribe");
        }
        for _ in filters {
            tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
                .await
                .expect("SUBACK in time");
        }
        Subscriber {
            client,
            rx,
            seen: Vec::new(),
            _task: task,
        }
    }

    /// Waits until a message matching `pred` arrives (or was seen), returns it.
    pub async fn wait_for(&mut self, what: &str, secs: u64, pred: impl Fn(&Msg) -> bool) -> Msg {
        if let Some(m) = self.seen.iter().find(|m| pred(m)) {
            return m.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => {
                    self.seen.push(m.clone());
                    if pred(&m) {
                        return m;
                    }
                }
                Ok(None) => panic!("subscriber stopped while waiting for {what}"),
                Err(_) => panic!(
                    "timed out after {secs} s waiting for {what}; seen: {:#?}",
                    self.seen.iter().rev().take(10).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Collects for `ms` milliseconds.
    pub async fn collect_for(&mut self, ms: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.seen.push(m);
        }
    }

    /// Reading ids received on `…/reading/…`, in arrival order.
    pub fn reading_ids(&self) -> Vec<i64> {
        self.seen
            .iter()
            .filter(|m| m.topic.contains("/reading/"))
            .filter_map(|m| m.json()["id"].as_i64())
            .collect()
    }
}

// ---- the network cutter ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    Frozen,
}

/// A TCP proxy in front of the broker whose link can be cut and restored.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut_tx: broadcast::Sender<Link>,
    _task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let (cut_tx, _) = broadcast::channel(4);
        let (up2, cut2) = (up.clone(), cut_tx.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // network down: the connection dies at once
                    continue;
                }
                let mut cut = cut2.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let how = tokio::select! {
                        _ = tokio::io::copy(&mut cr, &mut sw) => Link::Down,
                        _ = tokio::io::copy(&mut sr, &mut cw) => Link::Down,
                        how = cut.recv() => how.unwrap_or(Link::Down),
                    };
                    if how == Link::Frozen {
                        // Packets vanish but neither side sees the connection close.
                        let _ = cut.recv().await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    drop((cr, cw, sr, sw));
                });
            }
        });
        Proxy {
            addr,
            up,
            cut_tx,
            _task: task,
        }
    }

    /// The network goes down: open connections die, new ones are dropped.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        let _ = self.cut_tx.send(Link::Down);
    }

    /// The network goes silent: open connections stay open but carry nothing (a dead
    /// cellular link), new ones are dropped.
    pub fn freeze(&self) {
        self.up.store(false, Ordering::SeqCst);
        let _ = self.cut_tx.send(Link::Frozen);
    }

    /// The network comes back.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
