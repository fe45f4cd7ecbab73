//! MQTT out: the dashboard contract, availability, Home Assistant discovery, TLS/auth,
//! store-and-forward, the embedded broker and `anemone mqtt check`. The client side is our
//! own MQTT 5 and 3.1.1 code ([`wire`] for the packets, [`connect`] for the settings that
//! reach the broker, [`link`] for a connection and the choice of version, [`diagnose`] for
//! what a failure means) and the [`publisher`].
//!
//! # Topics (prefix `anemone/<station id>`, `[mqtt] topic_prefix` to change it)
//!
//! | topic | retained | QoS | payload |
//! |---|---|---|---|
//! | `…/status` | yes | 1 | `online`, or `offline` (last will, and on a clean shutdown) |
//! | `…/state` | yes | 0 | latest value of every quantity, see [`payload::StateSnapshot`] |
//! | `…/reading/<sensor>` | no | 1 | one reading, see [`payload::reading_payload`] |
//! | `…/meta` | yes | 1 | station description, see [`payload::meta_payload`] |
//! | `homeassistant/sensor/<station>_<sensor>_<quantity>/config` | yes | 1 | discovery |
//!
//! # Store-and-forward
//!
//! The SQLite store is the outbox. The store's writer sends every reading on the *live
//! feed* as soon as it has its id — before its commit, so dashboards are as fresh as the
//! sensors whatever the commit interval — and the publisher sends those readings at once
//! while connected. Beside it the writer keeps a *committed-through* watch: every id up to
//! it is in the store or never will be (lost in a crash, dropped on a full disk). Live
//! readings the publisher could not carry (not connected, queue full, a gap in the ids)
//! are read back from the store, and the publisher does not call the backlog done before
//! the store has committed past them. What the broker
//! has acknowledged (PUBACK; under MQTT 5 only with a reason code below 0x80) moves the
//! *publish cursor*: the highest reading id such that it
//! and every lower stored id were acknowledged. The publisher sends cursor advances to the
//! writer, which persists them. After a connection (the first, or any reconnect: every
//! connection is a clean session, so unacknowledged QoS 1 messages are forgotten by both
//! sides) everything above the cursor is
//! read back from the store through [`Backlog`] and replayed in id order with
//! `"backfill": true`, at most `[mqtt] backfill_rate` messages per second, live readings first.
//! Duplicates are possible (QoS 1), and carry the same reading `id`.
//!
//! # Wiring (daemon)
//!
//! ```no_run
//! # async fn wire(cfg: anemone::config::Config, backlog: Box<dyn anemone::mqtt::Backlog>) {
//! use std::time::Duration;
//! let (live_tx, live_rx) = tokio::sync::mpsc::channel(64); // writer → publisher
//! let (cursor_tx, mut cursor_rx) = tokio::sync::mpsc::channel(64); // publisher → writer
//! let (_committed_tx, committed_rx) = tokio::sync::watch::channel(0i64); // committed-through
//! let feeds = anemone::mqtt::Feeds { live: live_rx, backlog, cursor: cursor_tx, committed: Some(committed_rx), pause: None, chain: None };
//! let mqtt = anemone::mqtt::start(&cfg, feeds).await;
//! // … the writer sends `Vec<StoredReading>` on live_tx as ids are assigned, its
//! // committed-through id after each commit, and persists every `i64` it receives on
//! // cursor_rx as the publish cursor …
//! # drop((live_tx, &mut cursor_rx));
//! let summary = mqtt.shutdown(Duration::from_secs(10)).await;
//! # let _ = summary;
//! # }
//! ```

pub mod backoff;
pub mod broker;
pub mod check;
pub mod connect;
pub mod diagnose;
pub mod discovery;
pub mod link;
pub mod outbox;
pub mod payload;
pub mod publisher;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::reading::StoredReading;

/// The topic names (defined beside the config so that `validate` can measure them).
pub use crate::topics;
pub use broker::{choose_broker, BrokerChoice, EmbeddedBroker};
pub use check::{check, render, CheckReport, CheckStep, StepStatus};
pub use connect::{ConnectError, ConnectSettings};
pub use publisher::{Publisher, PublisherSummary, Tuning};

/// Any error a [`Backlog`] implementation returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Read access to the outbox (the store): the persisted cursor and the readings above it.
///
/// Calls block (SQLite); the publisher makes them on a blocking thread.
pub trait Backlog: Send + 'static {
    /// The persisted publish cursor (0 when nothing was ever acknowledged).
    fn cursor(&mut self) -> Result<i64, BoxError>;
    /// Up to `limit` stored readings with `id > after`, in id order.
    fn after(&mut self, after: i64, limit: usize) -> Result<Vec<StoredReading>, BoxError>;
}

/// The channels between the store and the publisher.
pub struct Feeds {
    /// Every reading in id order, from the store's writer, as soon as it has its id (the
    /// live feed).
    pub live: mpsc::Receiver<Vec<StoredReading>>,
    /// The store, read-only: the cursor and the backlog above it.
    pub backlog: Box<dyn Backlog>,
    /// Cursor advances for the writer to persist (`WriterMsg::SetCursor`). Monotonic.
    pub cursor: mpsc::Sender<i64>,
    /// The writer's committed-through id (see the module docs). `None`: the live feed
    /// carries committed readings only, any ids (tests and tools).
    pub committed: Option<watch::Receiver<i64>>,
    /// While this says true the publisher stays disconnected and the readings wait in the
    /// store (the low-battery policy: [`crate::power::PowerState::watch_saving`]).
    pub pause: Option<watch::Receiver<bool>>,
    /// The tamper-evident chain's head from the writer, published retained on
    /// `…/chain` (`None`: nothing is published there).
    pub chain: Option<watch::Receiver<Option<crate::store::Head>>>,
}

/// The running MQTT side of the daemon: which broker was chosen, and the publisher.
pub struct Mqtt {
    /// The broker that was chosen (or why none runs).
    pub choice: BrokerChoice,
    inner: Inner,
}

enum Inner {
    Publishing(Publisher),
    /// No publisher: the live feed is read and discarded (the store keeps every reading
    /// unpublished, so a later run with a broker replays them).
    Idle(tokio::task::JoinHandle<()>),
}

/// Starts MQTT for the daemon: chooses the broker (starting the embedded one where
/// configured and free), then the publisher. Never fails: when no broker can be used it
/// logs why and keeps reading the live feed, so storing is never held up.
pub async fn start(cfg: &Config, feeds: Feeds) -> Mqtt {
    let choice = if cfg.mqtt.enabled {
        choose_broker(&cfg.mqtt).await
    } else {
        BrokerChoice::Disabled
    };
    let target = match &choice {
        BrokerChoice::Embedded(b) => Some(loopback(b.addr)),
        BrokerChoice::Existing(addr) => Some(loopback(*addr)),
        BrokerChoice::External => None,
        BrokerChoice::Disabled | BrokerChoice::Unavailable(_) => {
            return Mqtt {
                choice,
                inner: Inner::Idle(tokio::spawn(discard(feeds.live))),
            }
        }
    };
    // The station's own login to the embedded broker it started (configured or made at
    // this start); elsewhere the configured credentials.
    let login_cfg;
    let cfg = match &choice {
        BrokerChoice::Embedded(EmbeddedBroker {
            login: Some(login), ..
        }) => {
            let mut c = cfg.clone();
            c.mqtt.username = Some(login.username.clone());
            c.mqtt.password = Some(login.password().to_string());
            c.mqtt.password_file = None;
            login_cfg = c;
            &login_cfg
        }
        _ => cfg,
    };
    match ConnectSettings::from_config(cfg, target) {
        Ok(settings) => {
            let publisher = Publisher::spawn(cfg, settings, feeds, Tuning::default());
            Mqtt {
                choice,
                inner: Inner::Publishing(publisher),
            }
        }
        Err(e) => {
            tracing::error!("MQTT publishing is off: {e}. Readings are still stored and will be published once this is fixed.");
            Mqtt {
                choice: BrokerChoice::Unavailable(e.to_string()),
                inner: Inner::Idle(tokio::spawn(discard(feeds.live))),
            }
        }
    }
}

impl Mqtt {
    /// True while the publisher is connected to its broker (always false without one).
    pub fn connected(&self) -> watch::Receiver<bool> {
        match &self.inner {
            Inner::Publishing(p) => p.connected(),
            Inner::Idle(_) => watch::channel(false).1,
        }
    }

    /// Drains what is owed to the broker (at most `drain_timeout`, and not at all when the
    /// broker is unreachable), publishes `offline`, disconnects. Call it after the store's
    /// writer has sent its last batch, and keep the writer reading cursor messages until
    /// this returns.
    pub async fn shutdown(self, drain_timeout: Duration) -> PublisherSummary {
        match self.inner {
            Inner::Publishing(p) => p.shutdown(drain_timeout).await,
            Inner::Idle(task) => {
                task.abort();
                PublisherSummary::default()
            }
        }
    }
}

/// Where to connect for a broker listening on `addr` (`0.0.0.0` means this machine).
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = match addr {
            SocketAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

async fn discard(mut live: mpsc::Receiver<Vec<StoredReading>>) {
    while live.recv().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{ConnectReturnCode, Event, Incoming, QoS};

    struct NoBacklog;

    impl Backlog for NoBacklog {
        fn cursor(&mut self) -> Result<i64, BoxError> {
            Ok(0)
        }
        fn after(&mut self, _: i64, _: usize) -> Result<Vec<StoredReading>, BoxError> {
            Ok(Vec::new())
        }
    }

    /// The first message on `topic` that a client logging in with `login` receives, or
    /// why it receives none (a refused login ends the wait at once; 30 s bound the rest).
    async fn first_message(
        addr: SocketAddr,
        login: Option<(&str, &str)>,
        topic: &str,
    ) -> Result<String, String> {
        let id = format!("watch-{}", login.map_or("anonymous", |l| l.0));
        let mut o = rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_clean_session(true);
        if let Some((user, pass)) = login {
            o.set_credentials(user, pass);
        }
        let (client, mut events) = rumqttc::AsyncClient::new(o, 16);
        client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .map_err(|e| e.to_string())?;
        let wait = async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == topic => {
                        return Ok(String::from_utf8_lossy(&p.payload).into_owned())
                    }
                    Ok(Event::Incoming(Incoming::ConnAck(c)))
                        if c.code != ConnectReturnCode::Success =>
                    {
                        return Err(format!("refused: {:?}", c.code))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(format!("refused: {e}")),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .map_err(|_| "no message within 30 s".to_string())?
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_station_publishes_through_its_embedded_broker_with_accounts() {
        for station_login in [None, Some(("station", "st-pw-9"))] {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or_default();
            let mut cfg = Config::builtin();
            cfg.station.id = "acct".into();
            cfg.mqtt.listen = format!("0.0.0.0:{port}");
            cfg.mqtt.users = vec![crate::config::BrokerUser {
                username: "lab".into(),
                password: "lab-pw-1".into(),
            }];
            if let Some((user, pass)) = station_login {
                cfg.mqtt.username = Some(user.into());
                cfg.mqtt.password = Some(pass.into());
            }
            let (live_tx, live_rx) = mpsc::channel(8);
            let (cursor_tx, _cursor_rx) = mpsc::channel(8);
            let feeds = Feeds {
                live: live_rx,
                backlog: Box::new(NoBacklog),
                cursor: cursor_tx,
                committed: None,
                pause: None,
                chain: None,
            };
            let mqtt = start(&cfg, feeds).await;
            assert!(
                matches!(
                    &mqtt.choice,
                    BrokerChoice::Embedded(EmbeddedBroker { login: Some(_), .. })
                ),
                "{:?}",
                mqtt.choice
            );
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let status = "anemone/acct/status";
            // The station got in: an account holder sees its `online`.
            assert_eq!(
                first_message(addr, Some(("lab", "lab-pw-1")), status).await,
                Ok("online".to_string()),
                "station login {station_login:?}"
            );
            if let Some(login) = station_login {
                assert_eq!(
                    first_message(addr, Some(login), status).await,
                    Ok("online".to_string())
                );
            }
            // Nobody else does.
            for login in [None, Some(("lab", "wrong")), Some(("anemone-station", "x"))] {
                let seen = first_message(addr, login, status).await;
                assert!(
                    matches!(&seen, Err(why) if why.starts_with("refused")),
                    "{login:?}: {seen:?}"
                );
            }
            drop(live_tx);
            mqtt.shutdown(Duration::from_secs(1)).await;
        }
    }
}
