//! Keep-alive pings and the stall watchdog, checked at every tick of a session.
//!
//! The watchdog ends a session when nothing is acknowledged for the stall timeout, when the
//! oldest message in flight has waited that long although the broker has acknowledged later
//! ones (a withheld acknowledgement), and when a ping goes unanswered that long.

use std::time::Duration;

use tokio::time::Instant;

use super::end::SessionEnd;
use super::{Ctx, Session};
use crate::mqtt::outbox::Tag;
use crate::mqtt::wire;

/// A session's keep-alive state.
pub(super) struct KeepAlive {
    /// A PINGREQ is unanswered since then.
    pub(super) ping_sent: Option<Instant>,
    /// The last acknowledgement (or refusal) of a reading, or the connection's start.
    pub(super) last_ack: Instant,
}

impl KeepAlive {
    pub(super) fn new(now: Instant) -> KeepAlive {
        KeepAlive {
            ping_sent: None,
            last_ack: now,
        }
    }
}

impl Ctx {
    /// Readings waiting this long for an acknowledgement end the session.
    pub(super) fn stall_timeout(&self) -> Duration {
        self.tuning
            .stall_timeout
            .unwrap_or_else(|| (self.settings.keep_alive * 3).max(Duration::from_secs(15)))
    }

    /// When [`Ctx::watch`] next has something to check: the ping due at half the
    /// keep-alive of quiet, the unanswered ping's, the acknowledgement stall's or the
    /// overtaken message's timeout. (It compares with `>`: a millisecond later.)
    pub(super) fn watch_due(&mut self, s: &Session, stall: Duration) -> Instant {
        let late = stall + Duration::from_millis(1);
        let mut at = match s.keep_alive.ping_sent {
            Some(t) => t + late,
            None => s.writer.last_sent() + self.settings.keep_alive / 2,
        };
        if self.outbox.unacked() > 0 {
            at = at.min(s.keep_alive.last_ack + late);
        }
        if let Some(t) = self.outbox.overtaken_since() {
            at = at.min(t + late);
        }
        at
    }

    /// Ends the session when the broker has stalled; sends a PINGREQ when the connection
    /// has been quiet for half the keep-alive.
    pub(super) fn watch(&mut self, s: &mut Session, stall: Duration) -> Result<(), SessionEnd> {
        if let Some((tag, waited)) = self.outbox.overdue(Instant::now(), stall) {
            let what = match tag {
                Tag::Reading(id) => format!("reading {id}"),
                _ => "a message".to_string(),
            };
            return Err(SessionEnd::Withheld { what, waited });
        }
        if self.outbox.unacked() > 0 && s.keep_alive.last_ack.elapsed() > stall {
            return Err(SessionEnd::AckStall {
                stall,
                in_flight: self.outbox.unacked(),
            });
        }
        match s.keep_alive.ping_sent {
            Some(t) if t.elapsed() > stall => return Err(SessionEnd::PingUnanswered { stall }),
            Some(_) => {}
            None if s.writer.last_sent().elapsed() >= self.settings.keep_alive / 2 => {
                wire::pingreq(&mut s.writer.buf);
                s.keep_alive.ping_sent = Some(Instant::now());
            }
            None => {}
        }
        Ok(())
    }
}
