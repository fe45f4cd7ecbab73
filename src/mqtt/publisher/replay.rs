//! Sending readings: live ones first, then the backlog read from the store page by page at
//! `backfill_rate` (a token bucket), within the window of readings in flight; the cursor
//! advanced below what is acknowledged; and readings the broker refused (MQTT 5) offered
//! again later.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::end::SessionEnd;
use super::{publish, Ctx, Session};
use crate::mqtt::outbox::{Outbox, Tag};
use crate::mqtt::payload::write_reading_payload;
use crate::mqtt::wire::{self, Qos};
use crate::mqtt::{Backlog, BoxError};
use crate::reading::{format_ts, StoredReading};

/// A backlog query on a blocking thread; it hands the store handle back with its rows.
pub(super) type Fetch = JoinHandle<(Box<dyn Backlog>, Result<Vec<StoredReading>, BoxError>)>;

/// The result of the backlog query in progress (never resolves when there is none).
pub(super) async fn next_page(
    fetch: &mut Option<Fetch>,
) -> Result<(Box<dyn Backlog>, Result<Vec<StoredReading>, BoxError>), tokio::task::JoinError> {
    match fetch {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// The next change of the committed-through id (never resolves without a watch, or once
/// the writer is gone).
pub(super) async fn committed_changed(committed: &mut Option<watch::Receiver<i64>>) {
    match committed {
        Some(rx) => {
            if rx.changed().await.is_err() {
                *committed = None;
            }
        }
        None => std::future::pending().await,
    }
}

/// Where a session's replay of the store stands.
pub(super) struct Replay {
    /// The highest id read from the store so far.
    pub(super) pos: i64,
    /// Read and not yet sent.
    pub(super) buf: VecDeque<StoredReading>,
    /// The store has been read to its end.
    pub(super) done: bool,
    /// The backlog read came back empty before the store committed through `must_scan`:
    /// read again after the next commit.
    pub(super) wait: bool,
    /// Committed-through when the fetch in progress started.
    pub(super) fetch_committed: i64,
    pub(super) fetch: Option<Fetch>,
    /// Stored readings sent in this connection.
    pub(super) sent: u64,
    pub(super) last_progress: Instant,
}

impl Replay {
    /// A replay from the cursor `from`.
    pub(super) fn new(from: i64, now: Instant) -> Replay {
        Replay {
            pos: from,
            buf: VecDeque::new(),
            done: false,
            wait: false,
            fetch_committed: 0,
            fetch: None,
            sent: 0,
            last_progress: now,
        }
    }

    /// The highest id below which every stored reading has been sent in this connection;
    /// `None` once the backlog has been read to its end.
    fn bound(&self) -> Option<i64> {
        if let Some(front) = self.buf.front() {
            return Some(front.id - 1);
        }
        if self.done {
            None
        } else {
            Some(self.pos)
        }
    }
}

/// While `backfill_rate` holds the backlog back, the publisher wakes this often to send
/// what the rate earned meanwhile (a burst of a tenth of the rate).
const BACKFILL_STEP: Duration = Duration::from_millis(100);

/// The token bucket that holds the backlog to `backfill_rate` readings a second.
pub(super) struct RateLimit {
    tokens: f64,
    last_refill: Instant,
}

impl RateLimit {
    pub(super) fn new(now: Instant) -> RateLimit {
        RateLimit {
            tokens: 0.0,
            last_refill: now,
        }
    }

    /// Adds what `rate` earned since the last refill (at most one second's worth).
    fn refill(&mut self, rate: f64, now: Instant) {
        self.tokens =
            (self.tokens + rate * (now - self.last_refill).as_secs_f64()).min(rate.max(1.0));
        self.last_refill = now;
    }
}

/// Publishes the broker refused (MQTT 5): which topics were reported, and when the refused
/// readings are offered again.
pub(super) struct Refusals {
    /// Topic → the reason code last reported for it (an ERROR once per topic and reason).
    reported: BTreeMap<String, u8>,
    /// When the readings refused in this connection are sent again.
    pub(super) retry_at: Option<Instant>,
    delay: Duration,
}

impl Refusals {
    pub(super) fn new(first_delay: Duration) -> Refusals {
        Refusals {
            reported: BTreeMap::new(),
            retry_at: None,
            delay: first_delay,
        }
    }
}

impl Ctx {
    /// Reads the persisted cursor once, before the first connection.
    pub(super) async fn load_cursor(&mut self) -> Result<(), SessionEnd> {
        if self.store.cursor_loaded {
            return Ok(());
        }
        let Some(mut backlog) = self.store.backlog.take() else {
            return Err(SessionEnd::StoreBusy);
        };
        let (backlog, result) = tokio::task::spawn_blocking(move || {
            let r = backlog.cursor();
            (backlog, r)
        })
        .await
        .map_err(SessionEnd::CursorTask)?;
        self.store.backlog = Some(backlog);
        let c = result.map_err(SessionEnd::Cursor)?;
        self.outbox = Outbox::new(c);
        self.store.cursor_loaded = true;
        Ok(())
    }

    /// An MQTT 5 PUBACK with a reason code of 0x80 or above: not a delivery. The reading
    /// stays owed (the cursor waits below it) and is offered again later; the topic is
    /// named once, at ERROR, since only an operator can change what the broker allows.
    pub(super) fn on_refused(&mut self, s: &mut Session, pkid: u16, reason: u8) {
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
            s.keep_alive.last_ack = Instant::now();
            if self.refusals.retry_at.is_none() {
                self.refusals.retry_at = Some(Instant::now() + self.refusals.delay);
            }
        }
    }

    /// Offers the refused readings again once their retry is due: the store is replayed
    /// from the cursor (what was acknowledged is skipped). The wait doubles each time.
    pub(super) fn retry_refused(&mut self, s: &mut Session) {
        let due = self.refusals.retry_at.is_some_and(|t| t <= Instant::now());
        if !due || s.replay.fetch.is_some() {
            return;
        }
        self.refusals.retry_at = None;
        self.refusals.delay = (self.refusals.delay * 2).min(self.tuning.refused_retry * 60);
        if let Some(last) = self.outbox.retry_refused() {
            tracing::debug!("Offering the readings the broker refused again.");
            self.feed.must_scan = self.feed.must_scan.max(last);
            s.replay.pos = self.outbox.cursor();
            s.replay.buf.clear();
            s.replay.done = false;
            s.replay.wait = false;
        }
    }

    /// A page of the backlog came back from the store.
    pub(super) fn take_page(&mut self, s: &mut Session, rows: Vec<StoredReading>) {
        match rows.last() {
            None if s.replay.fetch_committed < self.feed.must_scan => {
                // Readings the live feed could not carry are not committed yet.
                s.replay.wait = true;
            }
            None => {
                s.replay.done = true;
                if s.replay.sent > 0 {
                    tracing::info!(
                        "Backlog replayed: {} stored readings sent since the connection.",
                        s.replay.sent
                    );
                }
            }
            Some(last) => {
                s.replay.pos = s.replay.pos.max(last.id);
                s.replay.buf.extend(rows);
            }
        }
    }

    /// Moves the cursor up to what is acknowledged and tells the writer (without waiting).
    pub(super) fn advance_cursor(&mut self, s: &Session) {
        if let Some(c) = self.outbox.advance(s.replay.bound()) {
            self.store.cursor_unsent = Some(c);
        }
        if let Some(c) = self.store.cursor_unsent {
            match self.store.cursor_tx.try_send(c) {
                Ok(()) => self.store.cursor_unsent = None,
                Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => self.store.cursor_unsent = None,
            }
        }
    }

    /// Hands the writer the last cursor advance it has not taken yet (at exit).
    pub(super) async fn flush_cursor(&mut self) {
        if let Some(c) = self.store.cursor_unsent.take() {
            let _ =
                tokio::time::timeout(Duration::from_secs(1), self.store.cursor_tx.send(c)).await;
        }
    }

    /// True while readings are owed to the broker.
    pub(super) fn owes(&self, s: &Session) -> bool {
        !s.replay.done
            || !s.replay.buf.is_empty()
            || !s.live_queue.is_empty()
            || !self.outbox.all_acked()
            || self.outbox.has_refused()
            || (!self.feed.closed && !self.feed.rx.is_empty())
            || s.replay.fetch.is_some()
    }

    /// Sends what the window allows: live readings first, then the backlog at
    /// `backfill_rate`; starts the next backlog query when the page is used up.
    pub(super) fn pump(&mut self, s: &mut Session) -> Result<(), SessionEnd> {
        let rate = f64::from(self.cfg.mqtt.backfill_rate.max(1));
        s.rate.refill(rate, Instant::now());
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
            if s.rate.tokens < 1.0 {
                break;
            }
            if let Some(r) = s.replay.buf.pop_front() {
                if self.outbox.is_handled(r.id) {
                    continue;
                }
                if self.announced.state.update(&r.reading) {
                    self.announced.state_dirty = true;
                }
                let backfill = !self.sampled_at_startup(s, &r);
                self.send_reading(s, &r, backfill)?;
                s.rate.tokens -= 1.0;
                s.replay.sent += 1;
                if backfill {
                    self.summary.backfilled += 1;
                } else {
                    self.summary.published += 1;
                }
                continue;
            }
            break;
        }
        let replay = &mut s.replay;
        if replay.buf.is_empty() && !replay.done && !replay.wait && replay.fetch.is_none() {
            if let Some(mut backlog) = self.store.backlog.take() {
                replay.fetch_committed = self.committed_now();
                let (after, limit) = (replay.pos, self.tuning.page);
                replay.fetch = Some(tokio::task::spawn_blocking(move || {
                    let r = backlog.after(after, limit);
                    (backlog, r)
                }));
            }
        }
        Ok(())
    }

    /// True for a stored reading this run sampled before its first connection, when that
    /// connection came at start-up (the broker was not up yet, no outage): it is sent as
    /// live (`"backfill": false`), like the readings after it.
    fn sampled_at_startup(&self, s: &Session, r: &StoredReading) -> bool {
        s.startup && self.feed.first_live.is_some_and(|first| r.id >= first)
    }

    fn send_reading(
        &mut self,
        s: &mut Session,
        r: &StoredReading,
        backfill: bool,
    ) -> Result<(), SessionEnd> {
        self.note_pair(s, r)?;
        let out = &mut self.announced;
        write_reading_payload(&mut out.scratch, r, backfill, &self.precision);
        let sensor: &str = &r.reading.sensor;
        if !out.reading_topics.contains_key(sensor) {
            let topic = self.topics.reading(sensor);
            out.reading_topics.insert(sensor.to_string(), topic);
        }
        let topic = out.reading_topics.get(sensor).map_or("", String::as_str);
        publish(
            &mut self.outbox,
            &mut s.writer,
            topic,
            Qos::AtLeastOnce,
            false,
            &out.scratch,
            Tag::Reading(r.id),
        )
    }

    /// When the backlog, held back by `backfill_rate` with room in the window, may send
    /// again; `None` when the rate is not what holds it.
    pub(super) fn backfill_resumes(&self, s: &Session) -> Option<Instant> {
        let held = s.rate.tokens < 1.0
            && !s.replay.buf.is_empty()
            && self.outbox.unacked() < self.tuning.window;
        held.then(|| s.rate.last_refill + BACKFILL_STEP)
    }

    /// When [`Ctx::log_progress`] next has something to say.
    pub(super) fn progress_due(&self, s: &Session) -> Option<Instant> {
        (!s.replay.done && s.replay.sent > 0)
            .then(|| s.replay.last_progress + self.tuning.progress_interval)
    }

    /// Logs how far the backfill has come, every `progress_interval`.
    pub(super) fn log_progress(&mut self, s: &mut Session) {
        if s.replay.done || s.replay.sent == 0 {
            return;
        }
        if s.replay.last_progress.elapsed() < self.tuning.progress_interval {
            return;
        }
        s.replay.last_progress = Instant::now();
        let at = s
            .replay
            .buf
            .front()
            .map(|r| format_ts(r.reading.ts))
            .unwrap_or_else(|| "the end of a page".into());
        tracing::info!(
            "Backfill in progress: {} stored readings sent since the connection, now at {at} (cursor id {}).",
            s.replay.sent,
            self.outbox.cursor()
        );
    }
}
