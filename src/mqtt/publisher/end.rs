//! Why a session ended: every way is a variant of [`SessionEnd`], and the reconnect loop
//! reports each one (once per distinct cause where it repeats) and counts the connections
//! the broker closed right after accepting them.

use std::time::Duration;

use tokio::task::JoinError;
use tokio::time::Instant;

use super::Ctx;
use crate::mqtt::diagnose::{explain, explain_lost, Stage, SHARED_ID_FIX};
use crate::mqtt::link::LinkError;
use crate::mqtt::BoxError;

/// Why a session (one connection, or one attempt to make it) ended.
#[derive(Debug, thiserror::Error)]
pub(super) enum SessionEnd {
    /// Shutdown was requested and handled: what was owed is acknowledged or left to the
    /// store, `offline` published, DISCONNECT sent.
    #[error("shut down")]
    Shutdown,
    /// Shutdown was requested before the connection was made.
    #[error("shutdown requested while connecting")]
    ShutdownWhileConnecting,
    /// Publishing was paused (low battery): `offline` published, DISCONNECT sent.
    #[error("paused")]
    Paused,
    /// The store handle is held by a backlog query that has not come back.
    #[error("the store is busy")]
    StoreBusy,
    /// The task reading the publish cursor failed.
    #[error("reading the publish cursor failed: {0}")]
    CursorTask(#[source] JoinError),
    /// The store could not say where the cursor is.
    #[error("cannot read the publish cursor from the store: {0}")]
    Cursor(BoxError),
    /// The connection could not be made (network, TLS, credentials, not a broker).
    #[error("connecting failed: {0}")]
    ConnectFailed(#[source] LinkError),
    /// An established connection failed or was closed.
    #[error("connection lost: {0}")]
    Lost(#[source] LinkError),
    /// Every packet id waits for an acknowledgement: nothing more can be sent.
    #[error("every MQTT packet id is waiting for an acknowledgement")]
    PacketIdsExhausted,
    /// The task reading the backlog from the store failed.
    #[error("the backlog reader stopped ({0})")]
    BacklogReader(#[source] JoinError),
    /// The broker acknowledged later messages but not this one (the stall watchdog).
    #[error("the broker acknowledged later messages but not {what}, sent {} s ago", .waited.as_secs())]
    Withheld {
        /// `reading <id>` or `a message`.
        what: String,
        /// How long it has waited.
        waited: Duration,
    },
    /// Nothing was acknowledged for the stall timeout while readings were in flight.
    #[error("no acknowledgement from the broker for {} s with {in_flight} readings in flight", .stall.as_secs())]
    AckStall {
        /// The stall timeout.
        stall: Duration,
        /// Readings sent and not acknowledged.
        in_flight: usize,
    },
    /// A keep-alive ping was not answered within the stall timeout.
    #[error("no answer to a keep-alive ping from the broker for {} s", .stall.as_secs())]
    PingUnanswered {
        /// The stall timeout.
        stall: Duration,
    },
}

impl SessionEnd {
    /// True when the broker closed the connection (EOF, reset), as a broker does to the
    /// older of two clients with one client id: not our watchdog, not the network.
    fn closed_by_broker(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            SessionEnd::Lost(LinkError::Closed) => true,
            // MQTT 5: "session taken over", another client with this client id.
            SessionEnd::Lost(LinkError::Disconnected { reason: 0x8E, .. }) => true,
            SessionEnd::Lost(LinkError::Io(io)) => matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }
}

impl Ctx {
    /// Logs why a session ended, in the words an operator needs.
    pub(super) fn report_end(&mut self, end: &SessionEnd) {
        match end {
            SessionEnd::Shutdown | SessionEnd::ShutdownWhileConnecting | SessionEnd::Paused => {}
            SessionEnd::StoreBusy | SessionEnd::CursorTask(_) | SessionEnd::Cursor(_) => {
                tracing::warn!("{end}; retrying.");
            }
            SessionEnd::ConnectFailed(e) => self.report_failure(e),
            SessionEnd::Lost(e) => self.report_lost(e, end.closed_by_broker()),
            SessionEnd::PacketIdsExhausted => tracing::warn!(
                "Every MQTT packet id is waiting for an acknowledgement; reconnecting."
            ),
            SessionEnd::BacklogReader(e) => tracing::error!(
                "The backlog reader stopped ({e}); backfill resumes after the next reconnect."
            ),
            SessionEnd::Withheld { what, waited } => tracing::warn!(
                "The broker acknowledged later messages but not {what}, sent {} s ago; reconnecting to send it again.",
                waited.as_secs()
            ),
            SessionEnd::AckStall { stall, in_flight } => tracing::warn!(
                "No acknowledgement from the broker for {} s with {in_flight} readings in flight; reconnecting.",
                stall.as_secs()
            ),
            SessionEnd::PingUnanswered { stall } => tracing::warn!(
                "No answer to a keep-alive ping from the broker for {} s; reconnecting.",
                stall.as_secs()
            ),
        }
    }

    /// Once the connection has lasted `backoff_reset_after`: the backoff starts again, and
    /// a cause seen again after this is news again.
    pub(super) fn note_stable(&mut self) {
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
    pub(super) fn note_end(&mut self, end: &SessionEnd) {
        self.note_stable();
        let repeated = self
            .reconnects
            .ended(Instant::now(), end.closed_by_broker());
        self.summary.early_closes = self.reconnects.early_closes();
        if let Some(n) = repeated {
            tracing::warn!(
                "The broker at {} closed the connection right after accepting it {n} times: another client is probably using the client id \"{}\": {} (set [mqtt] client_id or [station] id). Reconnecting with growing delays; readings are kept in the store.",
                self.settings.url(),
                self.settings.client_id,
                SHARED_ID_FIX
            );
        }
    }

    /// An established connection ended (logged once per distinct reason, like failures;
    /// while the broker keeps closing new connections at once, `note_end` speaks for them
    /// all, however each close looked: EOF or reset).
    fn report_lost(&mut self, e: &LinkError, closed_by_broker: bool) {
        let msg = explain_lost(e, &self.settings.url(), &self.settings.client_id);
        let churn = closed_by_broker && self.reconnects.churning();
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
