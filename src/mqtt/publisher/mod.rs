//! The publisher task: one connection at a time (our own MQTT client, [`super::link`]),
//! readings sent live and from the store, acknowledgements turned into cursor advances,
//! reconnects with backoff, keep-alive pings, a stall watchdog, and a bounded drain at
//! shutdown.
//!
//! The stall watchdog ends a session when nothing is acknowledged for the stall timeout,
//! and when the oldest message in flight has waited that long although the broker has
//! acknowledged later ones (a withheld acknowledgement): the next connection sends it
//! again. The backoff between attempts is reset only by a connection that lasted
//! ([`Tuning::backoff_reset_after`]), so a broker that accepts the station and drops it at
//! once gets growing delays, and the cause is named once it repeats.
//!
//! Each pass of the loop handles what is ready (a packet from the broker, live readings, a
//! page of the backlog, a timer), then encodes every message that is due into the
//! connection's write buffer; the socket gets the buffer in one write. So a tick's readings
//! cost one system call, not one each.
//!
//! Every connection is a clean session: what the previous one had in flight is forgotten
//! and sent again from the store (QoS 1 allows the duplicates; they carry the same reading
//! `id`).
//!
//! The parts, each in its own file under `publisher/`: `announce.rs` (status, meta,
//! discovery, state), `live.rs` (the writer's live feed), `replay.rs` (the backlog read from
//! the store at `backfill_rate`, the cursor, refused readings), `watchdog.rs` (keep-alive
//! pings and the stall watchdog), `session.rs` (one connection, from CONNECT to its end) and
//! `end.rs` (why a session ended, and how that is reported). This file holds what they
//! share (`Ctx`, the per-connection `Session`, and `publish`) and the reconnect loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::backoff::{Backoff, Reconnects};
use super::connect::ConnectSettings;
use super::discovery;
use super::link::{Reader, Writer};
use super::outbox::{Outbox, Tag};
use super::payload::StateSnapshot;
use super::topics::Topics;
use super::wire::{self, Qos};
use super::{Backlog, Feeds};
use crate::config::Config;
use crate::reading::{Precision, Quantity, StoredReading};

mod alert;
mod announce;
mod chain;
mod end;
mod live;
mod pause;
mod replay;
mod session;
mod watchdog;

use end::SessionEnd;
use replay::{RateLimit, Refusals, Replay};
use watchdog::KeepAlive;

/// The per-connection part.
struct Session {
    reader: Reader,
    writer: Writer,
    keep_alive: KeepAlive,
    /// Live readings to send before the backlog.
    live_queue: VecDeque<StoredReading>,
    replay: Replay,
    rate: RateLimit,
    /// When `state` was last published.
    last_state: Option<Instant>,
    /// The next marker for a message whose acknowledgement is waited for.
    next_marker: u32,
    /// The run's first connection, made within [`Tuning::startup_grace`]: readings this
    /// run sampled before it are live, not backfill.
    startup: bool,
}

/// Encodes one PUBLISH into the connection's write buffer and records it in the outbox
/// (QoS 1 gets a packet id).
fn publish(
    outbox: &mut Outbox,
    writer: &mut Writer,
    topic: &str,
    qos: Qos,
    retain: bool,
    payload: &[u8],
    tag: Tag,
) -> Result<(), SessionEnd> {
    let pkid = match qos {
        Qos::AtMostOnce => None,
        Qos::AtLeastOnce => Some(outbox.next_pkid().ok_or(SessionEnd::PacketIdsExhausted)?),
    };
    wire::publish(
        &mut writer.buf,
        writer.version,
        topic,
        payload,
        qos,
        retain,
        pkid.unwrap_or(0),
    );
    outbox.sent_on(topic, tag, pkid);
    Ok(())
}

/// Knobs of the publisher that are not user configuration (tests shrink them).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// A connection that stays up this long resets the backoff (earlier, the delays keep
    /// growing: a broker that drops the station right after accepting it is not stormed).
    pub backoff_reset_after: Duration,
    /// Readings sent and not yet acknowledged, at most.
    pub window: usize,
    /// Readings read from the store per backlog query.
    pub page: usize,
    /// Reconnect when readings wait this long for an acknowledgement; `None`: three
    /// keep-alives, at least 15 s.
    pub stall_timeout: Option<Duration>,
    /// A changed `state` waits at most this long after the last one; it goes sooner, with
    /// the readings that change it, once half of this has passed.
    pub state_interval: Duration,
    /// Live readings queued in memory before the rest is left to the backlog.
    pub live_queue_max: usize,
    /// How long the final `offline` and DISCONNECT may take.
    pub disconnect_timeout: Duration,
    /// How often backfill progress is logged.
    pub progress_interval: Duration,
    /// First wait before readings the broker refused (MQTT 5) are offered again in the same
    /// connection; it doubles up to 60 times this while refusals go on.
    pub refused_retry: Duration,
    /// A first connection made within this time of the start is the station's normal
    /// start-up (the network and the broker come up after the station): readings sampled
    /// before it are sent live, not as backfill. A later first connection ends an outage.
    pub startup_grace: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            backoff_reset_after: Duration::from_secs(30),
            window: 1000,
            page: 500,
            stall_timeout: None,
            state_interval: Duration::from_secs(1),
            live_queue_max: 2_048,
            disconnect_timeout: Duration::from_secs(3),
            progress_interval: Duration::from_secs(10),
            refused_retry: Duration::from_secs(60),
            startup_grace: Duration::from_secs(120),
        }
    }
}

/// What a publisher did, returned by [`Publisher::shutdown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherSummary {
    /// Live readings sent.
    pub published: u64,
    /// Backlog readings sent (`"backfill": true`).
    pub backfilled: u64,
    /// Reading acknowledgements received.
    pub acknowledged: u64,
    /// The publish cursor at the end.
    pub cursor: i64,
    /// Connections made.
    pub connections: u64,
    /// Connections the broker closed before they had lasted
    /// [`Tuning::backoff_reset_after`] (another client with the same client id, most often).
    pub early_closes: u64,
    /// Readings the broker refused (MQTT 5 PUBACK reason ≥ 0x80); they stay owed.
    pub refused: u64,
    /// True when nothing was owed to the broker at exit.
    pub drained: bool,
}

/// A running publisher.
pub struct Publisher {
    shutdown: watch::Sender<Option<Instant>>,
    task: JoinHandle<PublisherSummary>,
    connected: watch::Receiver<bool>,
}

impl Publisher {
    /// Starts the publisher task on the current tokio runtime.
    pub fn spawn(
        cfg: &Config,
        settings: ConnectSettings,
        feeds: Feeds,
        tuning: Tuning,
    ) -> Publisher {
        let (shutdown, shutdown_rx) = watch::channel(None);
        let ctx = Ctx::new(cfg, settings, feeds, tuning, shutdown_rx);
        let connected = ctx.connected.subscribe();
        Publisher {
            shutdown,
            task: tokio::spawn(ctx.run()),
            connected,
        }
    }

    /// True while the publisher is connected to its broker.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// Sends what is owed for at most `drain_timeout` (not at all while disconnected),
    /// then publishes `offline` and disconnects.
    pub async fn shutdown(self, drain_timeout: Duration) -> PublisherSummary {
        let _ = self.shutdown.send(Some(Instant::now() + drain_timeout));
        self.task.await.unwrap_or_default()
    }

    /// Stops the publisher without a DISCONNECT, as if the process had been killed: the
    /// broker publishes the last will. For tests and emergencies.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// The publisher's state across connections.
struct Ctx {
    cfg: Config,
    settings: ConnectSettings,
    topics: Topics,
    tuning: Tuning,
    feed: LiveFeed,
    store: StoreHandle,
    /// What is in flight, by packet id, and the cursor below it.
    outbox: Outbox,
    announced: Announcements,
    alerts: alert::Alerts,
    shutdown: Shutdown,
    summary: PublisherSummary,
    reconnects: Reconnects,
    /// The last failure reported (a cause is logged once until it changes).
    last_failure: Option<String>,
    refusals: Refusals,
    /// What the configured sensors may publish (their discovery configs are kept).
    expected: BTreeMap<String, BTreeSet<Quantity>>,
    /// The decimals of each sensor's values in the payloads.
    precision: Precision,
    /// When the publisher started.
    started: Instant,
    /// True while a connection to the broker is up (the web page's health panel).
    connected: watch::Sender<bool>,
    /// Not connected while this says so (the low-battery policy).
    pause: pause::Pause,
    /// The chain's head from the writer, and the one last published.
    chain: chain::ChainFeed,
    /// The station's signing key (`[station] signing_key`): signs `…/chain`, its public
    /// half goes in `meta`.
    key: Option<std::sync::Arc<crate::signing::StationKey>>,
}

/// The writer's live feed, and what it says about the backlog.
struct LiveFeed {
    rx: mpsc::Receiver<Vec<StoredReading>>,
    closed: bool,
    /// The writer's committed-through id (`None`: live readings are committed ones).
    committed: Option<watch::Receiver<i64>>,
    /// The highest live id that was not queued for sending (not connected, queue full,
    /// a gap): the backlog is not done before the store has committed through it.
    must_scan: i64,
    /// The last live id seen, to notice gaps.
    last_live: Option<i64>,
    /// The first live id seen: readings from it on were sampled in this run.
    first_live: Option<i64>,
}

/// The store's side: the backlog reader, and the cursor advances for the writer.
struct StoreHandle {
    /// The backlog reader (`None` while a query holds it on a blocking thread).
    backlog: Option<Box<dyn Backlog>>,
    cursor_tx: mpsc::Sender<i64>,
    cursor_unsent: Option<i64>,
    cursor_loaded: bool,
}

/// What the retained messages say, and what has been announced.
struct Announcements {
    state: StateSnapshot,
    state_dirty: bool,
    /// The quantities seen, by sensor (for `meta`).
    seen: BTreeMap<String, Vec<Quantity>>,
    /// Discovery announced, by sensor (looked up for every reading, without allocating).
    discovery: BTreeMap<String, BTreeSet<Quantity>>,
    /// `…/reading/<sensor>` by sensor, built once.
    reading_topics: BTreeMap<String, String>,
    /// The payload being encoded (one buffer reused for every reading).
    scratch: Vec<u8>,
}

/// The shutdown request: the drain deadline, once [`Publisher::shutdown`] set one.
struct Shutdown {
    rx: watch::Receiver<Option<Instant>>,
    deadline: Option<Instant>,
}

impl Shutdown {
    /// Takes note of a change of the request (`sender_gone`: the [`Publisher`] was dropped,
    /// which ends the publisher now).
    fn note(&mut self, sender_gone: bool) {
        let requested = *self.rx.borrow();
        self.deadline = match requested {
            Some(d) => Some(d),
            None if sender_gone => Some(Instant::now()),
            None => self.deadline,
        };
    }
}

impl Ctx {
    fn new(
        cfg: &Config,
        settings: ConnectSettings,
        feeds: Feeds,
        tuning: Tuning,
        shutdown_rx: watch::Receiver<Option<Instant>>,
    ) -> Ctx {
        let mut discovery: BTreeMap<String, BTreeSet<Quantity>> = BTreeMap::new();
        for (sensor, q) in discovery::configured_pairs(cfg) {
            discovery.entry(sensor).or_default().insert(q);
        }
        Ctx {
            topics: Topics::new(cfg),
            cfg: cfg.clone(),
            settings,
            reconnects: Reconnects::new(
                Backoff::new(tuning.backoff_initial, tuning.backoff_max),
                tuning.backoff_reset_after,
            ),
            feed: LiveFeed {
                rx: feeds.live,
                closed: false,
                committed: feeds.committed,
                must_scan: 0,
                last_live: None,
                first_live: None,
            },
            store: StoreHandle {
                backlog: Some(feeds.backlog),
                cursor_tx: feeds.cursor,
                cursor_unsent: None,
                cursor_loaded: false,
            },
            outbox: Outbox::new(0),
            announced: Announcements {
                state: StateSnapshot::new(cfg),
                state_dirty: false,
                seen: BTreeMap::new(),
                discovery,
                reading_topics: BTreeMap::new(),
                scratch: Vec::with_capacity(256),
            },
            alerts: alert::Alerts::default(),
            shutdown: Shutdown {
                rx: shutdown_rx,
                deadline: None,
            },
            summary: PublisherSummary::default(),
            last_failure: None,
            refusals: Refusals::new(tuning.refused_retry),
            expected: discovery::expected_pairs(cfg),
            precision: cfg.precision(),
            started: Instant::now(),
            connected: watch::channel(false).0,
            pause: pause::Pause::new(feeds.pause),
            chain: chain::ChainFeed::new(feeds.chain),
            key: chain::load_key(cfg),
            tuning,
        }
    }

    /// Connects, serves, and reconnects with backoff until shutdown.
    async fn run(mut self) -> PublisherSummary {
        tracing::info!(
            "Publishing to the MQTT broker at {} under {}.",
            self.settings.url(),
            self.topics.prefix
        );
        loop {
            if self.shutdown.deadline.is_some() {
                break;
            }
            self.wait_while_paused().await;
            if self.shutdown.deadline.is_some() {
                break;
            }
            let end = self.session().await;
            self.report_end(&end);
            self.note_end(&end);
            if let SessionEnd::Shutdown = end {
                break;
            }
            if self.shutdown.deadline.is_some() {
                tracing::info!("Not connected to the broker at shutdown; unpublished readings stay in the store for the next run.");
                break;
            }
            if let SessionEnd::Paused = end {
                continue;
            }
            let delay = self.reconnects.next_delay();
            tracing::debug!("Reconnecting in {:.1} s.", delay.as_secs_f64());
            let until = Instant::now() + delay;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    changed = self.shutdown.rx.changed() => {
                        self.shutdown.note(changed.is_err());
                        break;
                    }
                    batch = self.feed.rx.recv(), if !self.feed.closed => {
                        // Not connected: the readings wait in the store.
                        match batch {
                            Some(b) => {
                                self.observe(&b);
                                self.note_live_ids(&b);
                                self.leave_to_store(&b);
                            }
                            None => self.feed.closed = true,
                        }
                    }
                }
            }
        }
        self.flush_cursor().await;
        self.summary.cursor = self.outbox.cursor();
        self.summary.clone()
    }
}
