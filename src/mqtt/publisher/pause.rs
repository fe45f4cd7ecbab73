//! The pause: while [`super::super::Feeds::pause`] says true (the low-battery policy,
//! `crate::power`), the publisher is not connected. A session in progress says `offline` and
//! disconnects; no new one is made until the pause ends. Live readings are left to the store
//! meanwhile, so what was stored while paused is sent from the backlog afterwards, marked
//! `"backfill": true` and at `backfill_rate`, like the readings of a network outage.

use std::future::pending;

use tokio::sync::watch;

use super::Ctx;

/// Whether publishing is paused, and the changes of it.
pub(super) struct Pause {
    /// `None`: never paused (no source, or its sender is gone).
    rx: Option<watch::Receiver<bool>>,
}

impl Pause {
    pub(super) fn new(rx: Option<watch::Receiver<bool>>) -> Pause {
        Pause { rx }
    }

    /// True while publishing is paused.
    pub(super) fn is_on(&self) -> bool {
        self.rx.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves once the pause is `on` (at once if it already is); never, without a source.
    pub(super) async fn reached(&mut self, on: bool) {
        let Some(rx) = self.rx.as_mut() else {
            return pending().await;
        };
        if rx.wait_for(|&p| p == on).await.is_err() {
            // The sender is gone: the pause stays as it last was, so never again.
            self.rx = None;
            pending::<()>().await;
        }
    }
}

impl Ctx {
    /// While paused: reads the live feed (leaving the readings to the store) until the
    /// pause ends or shutdown is requested.
    pub(super) async fn wait_while_paused(&mut self) {
        if !self.pause.is_on() {
            return;
        }
        tracing::info!(
            "Battery low: MQTT publishing paused; readings are stored and sent as backfill when the battery has recovered."
        );
        loop {
            tokio::select! {
                _ = self.pause.reached(false) => {
                    tracing::info!("Battery recovered: MQTT publishing resumes.");
                    return;
                }
                changed = self.shutdown.rx.changed() => {
                    self.shutdown.note(changed.is_err());
                    return;
                }
                batch = self.feed.rx.recv(), if !self.feed.closed => match batch {
                    Some(b) => {
                        self.observe(&b);
                        self.note_live_ids(&b);
                        self.leave_to_store(&b);
                    }
                    None => self.feed.closed = true,
                },
            }
        }
    }
}
