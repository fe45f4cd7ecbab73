//! One session: connect (the live feed keeps being read meanwhile), announce, then serve
//! the connection until it ends, and say why in a [`SessionEnd`].
//!
//! Each pass of the loop handles what is ready (a packet from the broker, live readings, a
//! page of the backlog, a timer), then encodes every message that is due into the
//! connection's write buffer; the socket gets the buffer in one write.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use tokio::time::Instant;

use super::end::SessionEnd;
use super::replay::{committed_changed, next_page, RateLimit, Replay};
use super::watchdog::KeepAlive;

/// Messages encoded after this long without a write go out in the same wake-up (after
/// the other tasks' ready work has joined them), not after [`crate::mqtt::link::LINGER`]:
/// lingering only pays while messages keep coming (a burst, a backlog).
const QUIET: Duration = Duration::from_millis(250);
/// The shortest sleep of the session loop (a check that is due but cannot act yet, such
/// as a refused retry waiting for a backlog read, is not a busy loop).
const MIN_SLEEP: Duration = Duration::from_millis(1);
use super::{publish, Ctx, Session};
use crate::mqtt::link::Link;
use crate::mqtt::outbox::Tag;
use crate::mqtt::topics::{OFFLINE, ONLINE};
use crate::mqtt::wire::{self, Incoming, Qos, Will};

impl Ctx {
    /// One connection, from the attempt to its end.
    pub(super) async fn session(&mut self) -> SessionEnd {
        if let Err(end) = self.load_cursor().await {
            return end;
        }
        // What came live before this connection (sent in a lost one, or not sent at all)
        // comes from the store.
        self.feed.must_scan = self.feed.must_scan.max(self.feed.last_live.unwrap_or(0));
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
                    Err(e) => return SessionEnd::ConnectFailed(e),
                },
                changed = self.shutdown.rx.changed() => {
                    self.shutdown.note(changed.is_err());
                    return SessionEnd::ShutdownWhileConnecting;
                }
                batch = self.feed.rx.recv(), if !self.feed.closed => match batch {
                    Some(b) => {
                        self.queue_live(&mut early, b);
                    }
                    None => self.feed.closed = true,
                },
            }
        };
        if let Some(k) = link.server_keep_alive {
            // MQTT 5: the broker's keep-alive replaces ours.
            self.settings.keep_alive = k;
        }
        self.refusals.retry_at = None;
        let now = Instant::now();
        let startup =
            self.summary.connections == 0 && now - self.started <= self.tuning.startup_grace;
        let mut s = Session {
            reader: link.reader,
            writer: link.writer,
            keep_alive: KeepAlive::new(now),
            live_queue: early,
            replay: Replay::new(self.outbox.cursor(), now),
            rate: RateLimit::new(now),
            last_state: None,
            next_marker: 1,
            startup,
        };
        self.outbox.new_session();
        let _ = self.connected.send(true);
        let end = match self.serve(&mut s).await {
            Err(end) => end,
            Ok(never) => match never {},
        };
        let _ = self.connected.send(false);
        // A backlog read still running holds the store handle: take it back for the
        // next connection.
        if let Some(fetch) = s.replay.fetch.take() {
            if let Ok((backlog, _)) = fetch.await {
                self.store.backlog = Some(backlog);
            }
        }
        end
    }

    /// One connection, from CONNACK to its end (every end is an `Err`, shutdown too).
    async fn serve(&mut self, s: &mut Session) -> Result<Infallible, SessionEnd> {
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
        if s.replay.pos > 0 {
            tracing::debug!(
                "Replaying stored readings above id {} (the publish cursor).",
                s.replay.pos
            );
        }

        self.announce(s)?;

        let stall = self.stall_timeout();
        let mut stable_at = Some(Instant::now() + self.tuning.backoff_reset_after);
        loop {
            let mut now = Instant::now();
            if s.writer.write_due(now).is_some_and(|t| t > now)
                && now.saturating_duration_since(s.writer.last_sent()) >= QUIET
            {
                // The first messages after a quiet spell (a 1-Hz station's readings): what
                // the other tasks have ready in this same wake-up joins them, then they go
                // at once, without a timer wake-up to end the linger.
                tokio::task::yield_now().await;
                self.take_ready_live(s);
                self.on_schedule(s, stall)?;
                self.advance_cursor(s);
                self.pump(s)?;
                s.writer.write_now();
                now = Instant::now();
            }
            let write_at = s.writer.write_due(now);
            let wake = self.next_wake(s, stall, stable_at).max(now + MIN_SLEEP);
            tokio::select! {
                packet = s.reader.next() => {
                    let p = packet.map_err(SessionEnd::Lost)?;
                    self.on_packet(s, p)?;
                }
                written = s.writer.write_some(), if write_at.is_some_and(|t| t <= now) => {
                    written.map_err(SessionEnd::Lost)?;
                }
                _ = tokio::time::sleep_until(write_at.unwrap_or(now)), if write_at.is_some_and(|t| t > now) => {}
                batch = self.feed.rx.recv(), if !self.feed.closed => match batch {
                    Some(b) => {
                        if self.queue_live(&mut s.live_queue, b) {
                            s.replay.done = false;
                        }
                    }
                    None => self.feed.closed = true,
                },
                fetched = next_page(&mut s.replay.fetch), if s.replay.fetch.is_some() => {
                    s.replay.fetch = None;
                    match fetched {
                        Ok((backlog, Ok(rows))) => {
                            self.store.backlog = Some(backlog);
                            self.take_page(s, rows);
                        }
                        Ok((backlog, Err(e))) => {
                            self.store.backlog = Some(backlog);
                            tracing::warn!("Reading the backlog from the store failed: {e}; retrying.");
                        }
                        Err(e) => return Err(SessionEnd::BacklogReader(e)),
                    }
                }
                _ = committed_changed(&mut self.feed.committed), if s.replay.wait => {
                    s.replay.wait = false;
                }
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.chain.changed() => {}
                changed = self.shutdown.rx.changed(), if self.shutdown.deadline.is_none() => {
                    self.shutdown.note(changed.is_err());
                }
                _ = self.pause.reached(true), if self.shutdown.deadline.is_none() => {
                    // What is in flight stays owed: the backlog sends it after the pause.
                    self.goodbye(s).await;
                    return Err(SessionEnd::Paused);
                }
            }
            // Everything else that is ready now goes into the same write: the packets
            // already read (acknowledgements come in bursts) and the waiting live batches.
            while let Some(p) = s.reader.buffered().map_err(SessionEnd::Lost)? {
                self.on_packet(s, p)?;
            }
            self.take_ready_live(s);
            if stable_at.is_some_and(|t| t <= Instant::now()) {
                stable_at = None;
                self.note_stable();
            }
            self.on_schedule(s, stall)?;
            self.advance_cursor(s);
            self.pump(s)?;
            if let Some(deadline) = self.shutdown.deadline {
                let owed = self.owes(s);
                if !owed || Instant::now() >= deadline {
                    if owed {
                        tracing::warn!(
                            "Drain timeout: {} readings not yet acknowledged; they stay in the store for the next run.",
                            self.outbox.unacked() + self.outbox.refused_count() + s.live_queue.len() + s.replay.buf.len()
                        );
                    }
                    self.summary.drained = !owed;
                    self.goodbye(s).await;
                    return Err(SessionEnd::Shutdown);
                }
            }
        }
    }

    /// What the session does on its own schedule, checked after every event (each does
    /// nothing until it is due): keep-alive and stall watchdog, `state`, the chain's head when
    /// it moved, refused readings
    /// offered again, backfill progress.
    fn on_schedule(&mut self, s: &mut Session, stall: Duration) -> Result<(), SessionEnd> {
        self.watch(s, stall)?;
        self.publish_state(s, false)?;
        self.publish_chain(s, false)?;
        self.retry_refused(s);
        self.log_progress(s);
        Ok(())
    }

    /// The earliest moment [`Ctx::on_schedule`] (or the backoff reset at `stable_at`, or
    /// the end of the drain at shutdown) has something to do when no event comes first:
    /// the loop sleeps until then instead of polling on a fixed tick, so a quiet
    /// connection costs no wake-ups.
    fn next_wake(&mut self, s: &Session, stall: Duration, stable_at: Option<Instant>) -> Instant {
        let retry = self.refusals.retry_at.filter(|_| s.replay.fetch.is_none());
        [
            self.state_due(s),
            retry,
            self.progress_due(s),
            self.backfill_resumes(s),
            stable_at,
            self.shutdown.deadline,
        ]
        .into_iter()
        .flatten()
        .fold(self.watch_due(s, stall), Instant::min)
    }

    /// A packet from the broker.
    fn on_packet(&mut self, s: &mut Session, packet: Incoming) -> Result<(), SessionEnd> {
        match packet {
            Incoming::PubAck(pkid) => {
                if let Tag::Reading(_) = self.outbox.puback(pkid) {
                    self.summary.acknowledged += 1;
                    s.keep_alive.last_ack = Instant::now();
                }
            }
            Incoming::PubRefused { pkid, reason } => self.on_refused(s, pkid, reason),
            Incoming::PingResp => s.keep_alive.ping_sent = None,
            Incoming::SubAck { pkid, codes } => {
                self.outbox.puback(pkid);
                if codes.iter().any(|&c| c >= 0x80) {
                    tracing::warn!(
                        "The broker refused a subscription ({} or {}): discovery is sent again at each connection only, not when Home Assistant restarts, and entities of removed sensors are not cleared.",
                        self.topics.ha_status(),
                        self.topics.discovery_filter()
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
                if self.cfg.mqtt.discovery {
                    self.clear_if_stale(s, &topic, &payload)?;
                }
            }
            Incoming::ConnAck { .. } | Incoming::Disconnect { .. } | Incoming::Other(_) => {}
        }
        Ok(())
    }

    /// `offline` (retained), waited for, then DISCONNECT.
    async fn goodbye(&mut self, s: &mut Session) {
        let marker = s.next_marker;
        s.next_marker += 1;
        if let Err(end) = publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.status,
            Qos::AtLeastOnce,
            true,
            OFFLINE.as_bytes(),
            Tag::Marker(marker),
        ) {
            self.report_end(&end);
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
                        if let Err(end) = self.on_packet(s, other) {
                            self.report_end(&end);
                        }
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
}
