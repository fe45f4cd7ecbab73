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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::backoff::{Backoff, Reconnects};
use super::connect::ConnectSettings;
use super::diagnose::{explain, explain_lost, Stage};
use super::discovery;
use super::link::{Link, LinkError, Reader, Writer};
use super::outbox::{Outbox, Tag};
use super::payload::{meta_payload, write_reading_payload, StateSnapshot};
use super::topics::{Topics, OFFLINE, ONLINE};
use super::wire::{self, Incoming, Qos, Will};
use super::{Backlog, Feeds};
use crate::config::Config;
use crate::reading::{format_ts, Quantity, StoredReading};

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
    /// `state` is published at most this often.
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
        Publisher {
            shutdown,
            task: tokio::spawn(ctx.run()),
        }
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

type Fetch = JoinHandle<(
    Box<dyn Backlog>,
    Result<Vec<StoredReading>, super::BoxError>,
)>;

/// The result of the backlog query in progress (never resolves when there is none).
async fn next_page(
    fetch: &mut Option<Fetch>,
) -> Result<
    (
        Box<dyn Backlog>,
        Result<Vec<StoredReading>, super::BoxError>,
    ),
    tokio::task::JoinError,
> {
    match fetch {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// The next change of the committed-through id (never resolves without a watch, or once
/// the writer is gone).
async fn committed_changed(committed: &mut Option<watch::Receiver<i64>>) {
    match committed {
        Some(rx) => {
            if rx.changed().await.is_err() {
                *committed = None;
            }
        }
        None => std::future::pending().await,
    }
}

enum End {
    /// Shutdown requested and handled.
    Shutdown,
    /// The connection failed or was lost; reconnect.
    Lost,
}

struct Ctx {
    cfg: Config,
    settings: ConnectSettings,
    topics: Topics,
    tuning: Tuning,
    live: mpsc::Receiver<Vec<StoredReading>>,
    live_closed: bool,
    /// The writer's committed-through id (`None`: live readings are committed ones).
    committed: Option<watch::Receiver<i64>>,
    /// The highest live id that was not queued for sending (not connected, queue full,
    /// a gap): the backlog is not done before the store has committed through it.
    must_scan: i64,
    /// The last live id seen, to notice gaps.
    last_live: Option<i64>,
    backlog: Option<Box<dyn Backlog>>,
    cursor_tx: mpsc::Sender<i64>,
    cursor_unsent: Option<i64>,
    cursor_loaded: bool,
    outbox: Outbox,
    state: StateSnapshot,
    state_dirty: bool,
    seen: BTreeMap<String, Vec<Quantity>>,
    /// Discovery announced, by sensor (looked up for every reading, without allocating).
    announced: BTreeMap<String, BTreeSet<Quantity>>,
    /// `…/reading/<sensor>` by sensor, built once.
    reading_topics: BTreeMap<String, String>,
    /// The payload being encoded (one buffer reused for every reading).
    scratch: Vec<u8>,
    shutdown_rx: watch::Receiver<Option<Instant>>,
    deadline: Option<Instant>,
    summary: PublisherSummary,
    reconnects: Reconnects,
    /// The broker closed the current connection (not our watchdog, not the network).
    closed_by_broker: bool,
    last_failure: Option<String>,
    refusals: Refusals,
}

/// Publishes the broker refused (MQTT 5): which topics were reported, and when the refused
/// readings are offered again.
struct Refusals {
    /// Topic → the reason code last reported for it (an ERROR once per topic and reason).
    reported: BTreeMap<String, u8>,
    /// When the readings refused in this connection are sent again.
    retry_at: Option<Instant>,
    delay: Duration,
}

/// The per-connection part.
struct Session {
    reader: Reader,
    writer: Writer,
    /// A PINGREQ is unanswered since then.
    ping_sent: Option<Instant>,
    live_queue: VecDeque<StoredReading>,
    scan_pos: i64,
    scan_buf: VecDeque<StoredReading>,
    scan_done: bool,
    /// The backlog read came back empty before the store committed through `must_scan`:
    /// read again after the next commit.
    scan_wait: bool,
    /// Committed-through when the fetch in progress started.
    fetch_committed: i64,
    fetch: Option<Fetch>,
    tokens: f64,
    last_refill: Instant,
    last_ack: Instant,
    last_state: Option<Instant>,
    backfilled_here: u64,
    last_progress: Instant,
    next_marker: u32,
}

impl Ctx {
    fn new(
        cfg: &Config,
        settings: ConnectSettings,
        feeds: Feeds,
        tuning: Tuning,
        shutdown_rx: watch::Receiver<Option<Instant>>,
    ) -> Ctx {
        let mut announced: BTreeMap<String, BTreeSet<Quantity>> = BTreeMap::new();
        for (sensor, q) in discovery::configured_pairs(cfg) {
            announced.entry(sensor).or_default().insert(q);
        }
        let tuning_refused_retry = tuning.refused_retry;
        Ctx {
            topics: Topics::new(cfg),
            state: StateSnapshot::new(cfg),
            cfg: cfg.clone(),
            settings,
            reconnects: Reconnects::new(
                Backoff::new(tuning.backoff_initial, tuning.backoff_max),
                tuning.backoff_reset_after,
            ),
            closed_by_broker: false,
            tuning,
            live: feeds.live,
            live_closed: false,
            committed: feeds.committed,
            must_scan: 0,
            last_live: None,
            backlog: Some(feeds.backlog),
            cursor_tx: feeds.cursor,
            cursor_unsent: None,
            cursor_loaded: false,
            outbox: Outbox::new(0),
            state_dirty: false,
            seen: BTreeMap::new(),
            announced,
            reading_topics: BTreeMap::new(),
            scratch: Vec::with_capacity(256),
            shutdown_rx,
            deadline: None,
            summary: PublisherSummary::default(),
            last_failure: None,
            refusals: Refusals {
                reported: BTreeMap::new(),
                retry_at: None,
                delay: tuning_refused_retry,
            },
        }
    }

    fn stall_timeout(&self) -> Duration {
        self.tuning
            .stall_timeout
            .unwrap_or_else(|| (self.settings.keep_alive * 3).max(Duration::from_secs(15)))
    }

    async fn run(mut self) -> PublisherSummary {
        tracing::info!(
            "Publishing to the MQTT broker at {} under {}.",
            self.settings.url(),
            self.topics.prefix
        );
        loop {
            if self.deadline.is_some() {
                break;
            }
            self.closed_by_broker = false;
            let end = self.session().await;
            self.note_end();
            if let End::Shutdown = end {
                break;
            }
            if self.deadline.is_some() {
                tracing::info!("Not connected to the broker at shutdown; unpublished readings stay in the store for the next run.");
                break;
            }
            let delay = self.reconnects.next_delay();
            tracing::debug!("Reconnecting in {:.1} s.", delay.as_secs_f64());
            let until = Instant::now() + delay;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    changed = self.shutdown_rx.changed() => {
                        self.note_shutdown(changed.is_err());
                        break;
                    }
                    batch = self.live.recv(), if !self.live_closed => {
                        // Not connected: the readings wait in the store.
                        match batch {
                            Some(b) => {
                                self.observe(&b);
                                self.note_live_ids(&b);
                                self.leave_to_store(&b);
                            }
                            None => self.live_closed = true,
                        }
                    }
                }
            }
        }
        self.flush_cursor().await;
        self.summary.cursor = self.outbox.cursor();
        self.summary.clone()
    }

    /// Once the connection has lasted `backoff_reset_after`: the backoff starts again, and
    /// a cause seen again after this is news again.
    fn note_stable(&mut self) {
        let churning = self.reconnects.churning();
        if !self.reconnects.check_stable(Instant::now()) {
            return;
        }
        self.last_failure = None;
        if churning {
            tracing::info!(
                "The connection to the MQTT broker at {} has lasted {:.0} s: the broker no longer closes it at once.",
                self.settings.url(),
                self.tuning.backoff_reset_after.as_secs_f64()
            );
        }
    }

    /// A session ended: counts a connection the broker closed before it was stable, and
    /// names the likely cause when that keeps happening (logged at 3, 6, 12, … in a row).
    fn note_end(&mut self) {
        self.note_stable();
        let repeated = self.reconnects.ended(Instant::now(), self.closed_by_broker);
        self.summary.early_closes = self.reconnects.early_closes();
        if let Some(n) = repeated {
            tracing::warn!(
                "The broker at {} closed the connection right after accepting it {n} times: another client is probably using the client id \"{}\" (a cloned SD card? set [mqtt] client_id or [station] id). Reconnecting with growing delays; readings are kept in the store.",
                self.settings.url(),
                self.settings.client_id
            );
        }
    }

    fn note_shutdown(&mut self, sender_gone: bool) {
        let requested = *self.shutdown_rx.borrow();
        self.deadline = match requested {
            Some(d) => Some(d),
            None if sender_gone => Some(Instant::now()),
            None => self.deadline,
        };
    }

    /// Every id up to this is in the store or never will be.
    fn committed_now(&self) -> i64 {
        self.committed.as_ref().map_or(i64::MAX, |w| *w.borrow())
    }

    /// Notes a live batch's ids; true when ids before it never came on the live feed
    /// (the writer dropped them when the feed was full): they are in the store.
    fn note_live_ids(&mut self, batch: &[StoredReading]) -> bool {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return false;
        };
        let expected = match self.last_live {
            Some(l) => l + 1,
            None => self.committed_now().saturating_add(1),
        };
        self.last_live = Some(last.id);
        let gap = self.committed.is_some() && first.id > expected;
        if gap {
            self.must_scan = self.must_scan.max(first.id - 1);
        }
        gap
    }

    /// Live readings that will not be sent from the live feed: the backlog covers them.
    fn leave_to_store(&mut self, batch: &[StoredReading]) {
        if let Some(last) = batch.last() {
            self.must_scan = self.must_scan.max(last.id);
        }
    }

    /// Takes note of live readings that are not sent now (state, new sensors).
    fn observe(&mut self, batch: &[StoredReading]) {
        for r in batch {
            if self.state.update(&r.reading) {
                self.state_dirty = true;
            }
            let known = self
                .seen
                .get(&*r.reading.sensor)
                .is_some_and(|qs| qs.contains(&r.reading.quantity));
            if !known {
                self.seen
                    .entry(r.reading.sensor.to_string())
                    .or_default()
                    .push(r.reading.quantity);
            }
        }
    }

    /// Live readings to send first; a batch that does not fit in `live_queue_max` is left
    /// to the backlog (the queue keeps what it holds: it is sent live, and the backlog
    /// replay skips what was sent). True when the backlog must be read (again) for readings
    /// the feed did not carry.
    fn queue_live(
        &mut self,
        queue: &mut VecDeque<StoredReading>,
        batch: Vec<StoredReading>,
    ) -> bool {
        self.observe(&batch);
        let mut rescan = self.note_live_ids(&batch);
        if queue.len() + batch.len() > self.tuning.live_queue_max {
            tracing::debug!("Live readings arrive faster than the broker acknowledges; the rest will come from the store.");
            self.leave_to_store(&batch);
            rescan = true;
        } else {
            queue.extend(batch);
        }
        rescan
    }

    /// Takes every live batch that is already waiting (so one write carries them all).
    fn take_ready_live(&mut self, s: &mut Session) {
        while !self.live_closed {
            match self.live.try_recv() {
                Ok(b) => {
                    if self.queue_live(&mut s.live_queue, b) {
                        s.scan_done = false;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.live_closed = true,
            }
        }
    }

    async fn load_cursor(&mut self) -> Result<(), String> {
        if self.cursor_loaded {
            return Ok(());
        }
        let Some(mut backlog) = self.backlog.take() else {
            return Err("the store is busy".into());
        };
        let (backlog, result) = match tokio::task::spawn_blocking(move || {
            let r = backlog.cursor();
            (backlog, r)
        })
        .await
        {
            Ok(v) => v,
            Err(e) => return Err(format!("reading the publish cursor failed: {e}")),
        };
        self.backlog = Some(backlog);
        match result {
            Ok(c) => {
                self.outbox = Outbox::new(c);
                self.cursor_loaded = true;
                Ok(())
            }
            Err(e) => Err(format!(
                "cannot read the publish cursor from the store: {e}"
            )),
        }
    }

    async fn session(&mut self) -> End {
        if let Err(msg) = self.load_cursor().await {
            tracing::warn!("{msg}; retrying.");
            return End::Lost;
        }
        // What came live before this connection (sent in a lost one, or not sent at all)
        // comes from the store.
        self.must_scan = self.must_scan.max(self.last_live.unwrap_or(0));
        let mut early = VecDeque::new();
        let settings = self.settings.clone();
        let status = self.topics.status.clone();
        let will = Will {
            topic: &status,
            payload: OFFLINE.as_bytes(),
            qos: Qos::AtLeastOnce,
            retain: true,
        };
        let packet = settings.connect_packet(&settings.client_id, Some(will));
        let attempt = Link::connect(&settings, &packet);
        tokio::pin!(attempt);
        // Connect (the live feed keeps being read meanwhile).
        let link = loop {
            tokio::select! {
                r = &mut attempt => match r {
                    Ok(link) => break link,
                    Err(e) => {
                        self.report_failure(&e);
                        return End::Lost;
                    }
                },
                changed = self.shutdown_rx.changed() => {
                    self.note_shutdown(changed.is_err());
                    return End::Lost;
                }
                batch = self.live.recv(), if !self.live_closed => match batch {
                    Some(b) => {
                        self.queue_live(&mut early, b);
                    }
                    None => self.live_closed = true,
                },
            }
        };
        if let Some(k) = link.server_keep_alive {
            // MQTT 5: the broker's keep-alive replaces ours.
            self.settings.keep_alive = k;
        }
        self.refusals.retry_at = None;
        let now = Instant::now();
        let mut s = Session {
            reader: link.reader,
            writer: link.writer,
            ping_sent: None,
            live_queue: early,
            scan_pos: self.outbox.cursor(),
            scan_buf: VecDeque::new(),
            scan_done: false,
            scan_wait: false,
            fetch_committed: 0,
            fetch: None,
            tokens: 0.0,
            last_refill: now,
            last_ack: now,
            last_state: None,
            backfilled_here: 0,
            last_progress: now,
            next_marker: 1,
        };
        self.outbox.new_session();
        let end = self.serve(&mut s).await;
        // A backlog read still running holds the store handle: take it back for the
        // next connection.
        if let Some(fetch) = s.fetch.take() {
            if let Ok((backlog, _)) = fetch.await {
                self.backlog = Some(backlog);
            }
        }
        end
    }

    /// One connection, from CONNACK to its end.
    async fn serve(&mut self, s: &mut Session) -> End {
        self.summary.connections += 1;
        self.reconnects.connected(Instant::now());
        if self.reconnects.churning() {
            // The broker keeps closing the session: not a line per attempt.
            tracing::debug!("Reconnected to the MQTT broker at {}.", self.settings.url());
        } else if self.last_failure.is_some() || self.summary.connections > 1 {
            tracing::info!("Reconnected to the MQTT broker at {}.", self.settings.url());
        } else {
            tracing::info!("Connected to the MQTT broker at {}.", self.settings.url());
        }
        if s.scan_pos > 0 {
            tracing::debug!(
                "Replaying stored readings above id {} (the publish cursor).",
                s.scan_pos
            );
        }

        if self.announce(s).is_err() {
            return End::Lost;
        }

        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stall = self.stall_timeout();
        loop {
            let now = Instant::now();
            let write_at = s.writer.write_due(now);
            tokio::select! {
                packet = s.reader.next() => match packet {
                    Ok(p) => {
                        if self.on_packet(s, p).is_err() {
                            return End::Lost;
                        }
                    }
                    Err(e) => {
                        self.report_lost(&e);
                        return End::Lost;
                    }
                },
                written = s.writer.write_some(), if write_at.is_some_and(|t| t <= now) => {
                    if let Err(e) = written {
                        self.report_lost(&e);
                        return End::Lost;
                    }
                }
                _ = tokio::time::sleep_until(write_at.unwrap_or(now)), if write_at.is_some_and(|t| t > now) => {}
                batch = self.live.recv(), if !self.live_closed => match batch {
                    Some(b) => {
                        if self.queue_live(&mut s.live_queue, b) {
                            s.scan_done = false;
                        }
                    }
                    None => self.live_closed = true,
                },
                fetched = next_page(&mut s.fetch), if s.fetch.is_some() => {
                    s.fetch = None;
                    match fetched {
                        Ok((backlog, Ok(rows))) => {
                            self.backlog = Some(backlog);
                            self.take_page(s, rows);
                        }
                        Ok((backlog, Err(e))) => {
                            self.backlog = Some(backlog);
                            tracing::warn!("Reading the backlog from the store failed: {e}; retrying.");
                        }
                        Err(e) => {
                            tracing::error!("The backlog reader stopped ({e}); backfill resumes after the next reconnect.");
                            return End::Lost;
                        }
                    }
                }
                _ = committed_changed(&mut self.committed), if s.scan_wait => {
                    s.scan_wait = false;
                }
                _ = tick.tick() => {
                    self.note_stable();
                    if let Some((tag, waited)) = self.outbox.overdue(Instant::now(), stall) {
                        let what = match tag {
                            Tag::Reading(id) => format!("reading {id}"),
                            _ => "a message".to_string(),
                        };
                        tracing::warn!(
                            "The broker acknowledged later messages but not {what}, sent {} s ago; reconnecting to send it again.",
                            waited.as_secs()
                        );
                        return End::Lost;
                    }
                    if self.outbox.unacked() > 0 && s.last_ack.elapsed() > stall {
                        tracing::warn!(
                            "No acknowledgement from the broker for {} s with {} readings in flight; reconnecting.",
                            stall.as_secs(),
                            self.outbox.unacked()
                        );
                        return End::Lost;
                    }
                    match s.ping_sent {
                        Some(t) if t.elapsed() > stall => {
                            tracing::warn!(
                                "No answer to a keep-alive ping from the broker for {} s; reconnecting.",
                                stall.as_secs()
                            );
                            return End::Lost;
                        }
                        Some(_) => {}
                        None if s.writer.last_sent().elapsed() >= self.settings.keep_alive / 2 => {
                            wire::pingreq(&mut s.writer.buf);
                            s.ping_sent = Some(Instant::now());
                        }
                        None => {}
                    }
                    if self.publish_state(s, false).is_err() {
                        return End::Lost;
                    }
                    self.retry_refused(s);
                    self.log_progress(s);
                }
                changed = self.shutdown_rx.changed(), if self.deadline.is_none() => {
                    self.note_shutdown(changed.is_err());
                }
            }
            // Everything else that is ready now goes into the same write: the packets
            // already read (acknowledgements come in bursts) and the waiting live batches.
            loop {
                match s.reader.buffered() {
                    Ok(Some(p)) => {
                        if self.on_packet(s, p).is_err() {
                            return End::Lost;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.report_lost(&e);
                        return End::Lost;
                    }
                }
            }
            self.take_ready_live(s);
            self.advance_cursor(s);
            if self.pump(s).is_err() {
                return End::Lost;
            }
            if let Some(deadline) = self.deadline {
                let owed = self.owes(s);
                if !owed || Instant::now() >= deadline {
                    if owed {
                        tracing::warn!(
                            "Drain timeout: {} readings not yet acknowledged; they stay in the store for the next run.",
                            self.outbox.unacked() + self.outbox.refused_count() + s.live_queue.len() + s.scan_buf.len()
                        );
                    }
                    self.summary.drained = !owed;
                    self.goodbye(s).await;
                    return End::Shutdown;
                }
            }
        }
    }

    /// Status, meta, discovery and the current state, at every connection.
    fn announce(&mut self, s: &mut Session) -> Result<(), ()> {
        publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.status,
            Qos::AtLeastOnce,
            true,
            ONLINE.as_bytes(),
            Tag::Other,
        )?;
        self.publish_meta(s)?;
        if self.cfg.mqtt.discovery {
            let pkid = self.outbox.next_pkid().ok_or(())?;
            self.outbox.sent(Tag::Other, Some(pkid));
            wire::subscribe(
                &mut s.writer.buf,
                s.writer.version,
                pkid,
                &self.topics.ha_status(),
                Qos::AtLeastOnce,
            );
            self.publish_discovery(s)?;
        }
        if !self.state.is_empty() {
            self.publish_state(s, true)?;
        }
        Ok(())
    }

    fn publish_meta(&mut self, s: &mut Session) -> Result<(), ()> {
        let meta = meta_payload(&self.cfg, &self.seen).to_string();
        publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.meta,
            Qos::AtLeastOnce,
            true,
            meta.as_bytes(),
            Tag::Other,
        )
    }

    fn publish_discovery(&mut self, s: &mut Session) -> Result<(), ()> {
        let pairs: Vec<(String, Quantity)> = self
            .announced
            .iter()
            .flat_map(|(sensor, qs)| qs.iter().map(|q| (sensor.clone(), *q)))
            .collect();
        for (sensor, q) in pairs {
            self.publish_discovery_of(s, &sensor, q)?;
        }
        Ok(())
    }

    /// The retained Home Assistant discovery config of one (sensor, quantity).
    fn publish_discovery_of(
        &mut self,
        s: &mut Session,
        sensor: &str,
        q: Quantity,
    ) -> Result<(), ()> {
        let payload = discovery::config_payload(&self.cfg, &self.topics, sensor, q);
        let topic = self.topics.discovery(sensor, q);
        publish(
            &mut self.outbox,
            &mut s.writer,
            &topic,
            Qos::AtLeastOnce,
            true,
            payload.to_string().as_bytes(),
            Tag::Other,
        )
    }

    fn publish_state(&mut self, s: &mut Session, force: bool) -> Result<(), ()> {
        let due = s
            .last_state
            .is_none_or(|t| t.elapsed() >= self.tuning.state_interval);
        if !(force || (self.state_dirty && due)) {
            return Ok(());
        }
        self.state_dirty = false;
        s.last_state = Some(Instant::now());
        let payload = self.state.to_json().to_string();
        publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.state,
            Qos::AtMostOnce,
            true,
            payload.as_bytes(),
            Tag::Other,
        )
    }

    fn on_packet(&mut self, s: &mut Session, packet: Incoming) -> Result<(), ()> {
        match packet {
            Incoming::PubAck(pkid) => {
                if let Tag::Reading(_) = self.outbox.puback(pkid) {
                    self.summary.acknowledged += 1;
                    s.last_ack = Instant::now();
                }
            }
            Incoming::PubRefused { pkid, reason } => self.on_refused(s, pkid, reason),
            Incoming::PingResp => s.ping_sent = None,
            Incoming::SubAck { pkid, codes } => {
                self.outbox.puback(pkid);
                if codes.iter().any(|&c| c >= 0x80) {
                    tracing::warn!(
                        "The broker refused the subscription to {}: discovery is sent again at each connection only, not when Home Assistant restarts.",
                        self.topics.ha_status()
                    );
                }
            }
            Incoming::Publish {
                topic,
                payload,
                qos,
                pkid,
                ..
            } => {
                if let (1, Some(id)) = (qos, pkid) {
                    wire::puback(&mut s.writer.buf, id);
                }
                if topic == self.topics.ha_status() && payload == ONLINE.as_bytes() {
                    tracing::info!("Home Assistant came online; publishing discovery again.");
                    self.publish_discovery(s)?;
                    self.publish_state(s, true)?;
                }
            }
            Incoming::ConnAck { .. } | Incoming::Disconnect { .. } | Incoming::Other(_) => {}
        }
        Ok(())
    }

    /// An MQTT 5 PUBACK with a reason code of 0x80 or above: not a delivery. The reading
    /// stays owed (the cursor waits below it) and is offered again later; the topic is
    /// named once, at ERROR, since only an operator can change what the broker allows.
    fn on_refused(&mut self, s: &mut Session, pkid: u16, reason: u8) {
        let Some((tag, topic)) = self.outbox.refused(pkid) else {
            return;
        };
        let reading = matches!(tag, Tag::Reading(_));
        if self.refusals.reported.get(topic) != Some(&reason) {
            let what = if reading {
                "Readings on it are not counted as delivered: they stay in the store and are offered again later"
            } else {
                "Dashboards miss this message until it is allowed"
            };
            tracing::error!(
                "The broker refuses publishes to {topic}: {} (MQTT 5 reason code {reason:#04x}). {what}. Allow client \"{}\" to publish there (e.g. in the broker's ACL).",
                wire::reason_code_name(reason),
                self.settings.client_id
            );
            self.refusals.reported.insert(topic.to_string(), reason);
        }
        if reading {
            self.summary.refused += 1;
            s.last_ack = Instant::now();
            if self.refusals.retry_at.is_none() {
                self.refusals.retry_at = Some(Instant::now() + self.refusals.delay);
            }
        }
    }

    /// Offers the refused readings again once their retry is due: the store is replayed
    /// from the cursor (what was acknowledged is skipped). The wait doubles each time.
    fn retry_refused(&mut self, s: &mut Session) {
        let due = self.refusals.retry_at.is_some_and(|t| t <= Instant::now());
        if !due || s.fetch.is_some() {
            return;
        }
        self.refusals.retry_at = None;
        self.refusals.delay = (self.refusals.delay * 2).min(self.tuning.refused_retry * 60);
        if let Some(last) = self.outbox.retry_refused() {
            tracing::debug!("Offering the readings the broker refused again.");
            self.must_scan = self.must_scan.max(last);
            s.scan_pos = self.outbox.cursor();
            s.scan_buf.clear();
            s.scan_done = false;
            s.scan_wait = false;
        }
    }

    fn take_page(&mut self, s: &mut Session, rows: Vec<StoredReading>) {
        match rows.last() {
            None if s.fetch_committed < self.must_scan => {
                // Readings the live feed could not carry are not committed yet.
                s.scan_wait = true;
            }
            None => {
                s.scan_done = true;
                if s.backfilled_here > 0 {
                    tracing::info!(
                        "Backlog replayed: {} stored readings sent since the connection.",
                        s.backfilled_here
                    );
                }
            }
            Some(last) => {
                s.scan_pos = s.scan_pos.max(last.id);
                s.scan_buf.extend(rows);
            }
        }
    }

    /// The highest id below which every stored reading has been sent in this connection;
    /// `None` once the backlog has been read to its end.
    fn bound(&self, s: &Session) -> Option<i64> {
        if let Some(front) = s.scan_buf.front() {
            return Some(front.id - 1);
        }
        if s.scan_done {
            None
        } else {
            Some(s.scan_pos)
        }
    }

    fn advance_cursor(&mut self, s: &Session) {
        if let Some(c) = self.outbox.advance(self.bound(s)) {
            self.cursor_unsent = Some(c);
        }
        if let Some(c) = self.cursor_unsent {
            match self.cursor_tx.try_send(c) {
                Ok(()) => self.cursor_unsent = None,
                Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => self.cursor_unsent = None,
            }
        }
    }

    async fn flush_cursor(&mut self) {
        if let Some(c) = self.cursor_unsent.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.cursor_tx.send(c)).await;
        }
    }

    fn owes(&self, s: &Session) -> bool {
        !s.scan_done
            || !s.scan_buf.is_empty()
            || !s.live_queue.is_empty()
            || !self.outbox.all_acked()
            || self.outbox.has_refused()
            || (!self.live_closed && !self.live.is_empty())
            || s.fetch.is_some()
    }

    /// Sends what the window allows: live readings first, then the backlog at
    /// `backfill_rate`.
    fn pump(&mut self, s: &mut Session) -> Result<(), ()> {
        let rate = f64::from(self.cfg.mqtt.backfill_rate.max(1));
        let now = Instant::now();
        s.tokens = (s.tokens + rate * (now - s.last_refill).as_secs_f64()).min(rate.max(1.0));
        s.last_refill = now;
        while self.outbox.unacked() < self.tuning.window {
            if self.outbox.in_flight() >= s.writer.receive_maximum {
                // The broker's Receive Maximum (MQTT 5) is reached: what is buffered goes
                // out now rather than lingering for company that cannot come.
                s.writer.write_now();
                break;
            }
            if let Some(r) = s.live_queue.pop_front() {
                if self.outbox.is_handled(r.id) {
                    continue;
                }
                self.send_reading(s, &r, false)?;
                self.summary.published += 1;
                continue;
            }
            if s.tokens < 1.0 {
                break;
            }
            if let Some(r) = s.scan_buf.pop_front() {
                if self.outbox.is_handled(r.id) {
                    continue;
                }
                if self.state.update(&r.reading) {
                    self.state_dirty = true;
                }
                self.send_reading(s, &r, true)?;
                s.tokens -= 1.0;
                s.backfilled_here += 1;
                self.summary.backfilled += 1;
                continue;
            }
            break;
        }
        if s.scan_buf.is_empty() && !s.scan_done && !s.scan_wait && s.fetch.is_none() {
            if let Some(mut backlog) = self.backlog.take() {
                s.fetch_committed = self.committed_now();
                let (after, limit) = (s.scan_pos, self.tuning.page);
                s.fetch = Some(tokio::task::spawn_blocking(move || {
                    let r = backlog.after(after, limit);
                    (backlog, r)
                }));
            }
        }
        Ok(())
    }

    fn send_reading(
        &mut self,
        s: &mut Session,
        r: &StoredReading,
        backfill: bool,
    ) -> Result<(), ()> {
        self.note_pair(s, r)?;
        write_reading_payload(&mut self.scratch, r, backfill);
        let sensor: &str = &r.reading.sensor;
        if !self.reading_topics.contains_key(sensor) {
            let topic = self.topics.reading(sensor);
            self.reading_topics.insert(sensor.to_string(), topic);
        }
        let topic = self.reading_topics.get(sensor).map_or("", String::as_str);
        publish(
            &mut self.outbox,
            &mut s.writer,
            topic,
            Qos::AtLeastOnce,
            false,
            &self.scratch,
            Tag::Reading(r.id),
        )
    }

    /// A (sensor, quantity) not in the config (a derived quantity): announce it.
    fn note_pair(&mut self, s: &mut Session, r: &StoredReading) -> Result<(), ()> {
        let known = self
            .announced
            .get(&*r.reading.sensor)
            .is_some_and(|qs| qs.contains(&r.reading.quantity));
        if known {
            return Ok(());
        }
        let key = (r.reading.sensor.to_string(), r.reading.quantity);
        self.announced
            .entry(key.0.clone())
            .or_default()
            .insert(key.1);
        let qs = self.seen.entry(key.0.clone()).or_default();
        if !qs.contains(&key.1) {
            qs.push(key.1);
        }
        if self.cfg.mqtt.discovery {
            self.publish_discovery_of(s, &key.0, key.1)?;
        }
        self.publish_meta(s)
    }

    fn log_progress(&mut self, s: &mut Session) {
        if s.scan_done || s.backfilled_here == 0 {
            return;
        }
        if s.last_progress.elapsed() < self.tuning.progress_interval {
            return;
        }
        s.last_progress = Instant::now();
        let at = s
            .scan_buf
            .front()
            .map(|r| format_ts(r.reading.ts))
            .unwrap_or_else(|| "the end of a page".into());
        tracing::info!(
            "Backfill in progress: {} stored readings sent since the connection, now at {at} (cursor id {}).",
            s.backfilled_here,
            self.outbox.cursor()
        );
    }

    /// `offline` (retained), waited for, then DISCONNECT.
    async fn goodbye(&mut self, s: &mut Session) {
        let marker = s.next_marker;
        s.next_marker += 1;
        if publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.status,
            Qos::AtLeastOnce,
            true,
            OFFLINE.as_bytes(),
            Tag::Marker(marker),
        )
        .is_err()
        {
            return;
        }
        let limit = Instant::now() + self.tuning.disconnect_timeout;
        let mut acked = false;
        while !acked {
            tokio::select! {
                packet = s.reader.next() => match packet {
                    Ok(Incoming::PubAck(pkid)) => {
                        match self.outbox.puback(pkid) {
                            Tag::Marker(m) if m == marker => acked = true,
                            Tag::Reading(_) => self.summary.acknowledged += 1,
                            _ => {}
                        }
                        self.advance_cursor(s);
                    }
                    Ok(other) => {
                        let _ = self.on_packet(s, other);
                    }
                    Err(_) => return,
                },
                written = s.writer.write_some(), if s.writer.pending() => {
                    if written.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(limit) => break,
            }
        }
        wire::disconnect(&mut s.writer.buf);
        let closed = tokio::time::timeout_at(limit, s.writer.close()).await;
        if matches!(closed, Ok(Ok(()))) {
            tracing::info!("Disconnected from the MQTT broker (status offline).");
        }
    }

    /// An established connection ended (logged once per distinct reason, like failures;
    /// while the broker keeps closing new connections at once, `note_end` speaks for them
    /// all, however each close looked: EOF or reset).
    fn report_lost(&mut self, e: &LinkError) {
        self.closed_by_broker = closed_by_peer(e);
        let msg = explain_lost(e, &self.settings.url(), &self.settings.client_id);
        let churn = self.closed_by_broker && self.reconnects.churning();
        if churn {
            tracing::debug!("MQTT connection lost: {msg}.");
        } else if self.last_failure.as_deref() != Some(msg.as_str()) {
            tracing::warn!(
                "MQTT connection lost: {msg}. Reconnecting; readings are kept in the store."
            );
        }
        self.last_failure = Some(msg);
    }

    fn report_failure(&mut self, e: &LinkError) {
        let (stage, msg) = explain(e, &self.settings.url());
        let repeated = self.last_failure.as_deref() == Some(msg.as_str());
        if !repeated {
            match stage {
                // An operator must fix these; readings wait in the store meanwhile.
                Stage::Auth | Stage::Tls => tracing::error!(
                    "MQTT connection failed: {msg}. Readings are kept in the store until it works."
                ),
                _ => tracing::warn!(
                    "MQTT connection failed: {msg}. Retrying; readings are kept in the store."
                ),
            }
        }
        self.last_failure = Some(msg);
    }
}

/// True when the other side closed the connection (EOF, reset), as a broker does to the
/// older of two clients with one client id.
fn closed_by_peer(e: &LinkError) -> bool {
    use std::io::ErrorKind;
    match e {
        LinkError::Closed => true,
        LinkError::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::BrokenPipe
        ),
        _ => false,
    }
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
) -> Result<(), ()> {
    let pkid = match qos {
        Qos::AtMostOnce => None,
        Qos::AtLeastOnce => match outbox.next_pkid() {
            Some(p) => Some(p),
            None => {
                tracing::warn!(
                    "Every MQTT packet id is waiting for an acknowledgement; reconnecting."
                );
                return Err(());
            }
        },
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
