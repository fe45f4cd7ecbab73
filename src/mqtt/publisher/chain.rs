//! `…/chain`: the head of the tamper-evident chain (`store::chain`), retained, published
//! at every connection and after every commit that stored readings, so a copy of it is
//! held outside the station (the broker, the network collector).

use std::sync::Arc;

use tokio::sync::watch;

use super::end::SessionEnd;
use super::{publish, Ctx, Session};
use crate::mqtt::outbox::Tag;
use crate::mqtt::payload::chain_payload;
use crate::mqtt::wire::Qos;
use crate::signing::StationKey;
use crate::store::Head;

/// The writer's head and the one last published.
pub(super) struct ChainFeed {
    rx: Option<watch::Receiver<Option<Head>>>,
    sent: Option<Head>,
    /// The writer is gone: its last head stays readable, but no change will come.
    closed: bool,
}

impl ChainFeed {
    pub(super) fn new(rx: Option<watch::Receiver<Option<Head>>>) -> ChainFeed {
        ChainFeed {
            rx,
            sent: None,
            closed: false,
        }
    }

    /// Resolves when the writer's head changes (never without a feed, or once the writer
    /// is gone): the session then publishes it without polling for it.
    pub(super) async fn changed(&mut self) {
        match &mut self.rx {
            Some(rx) if !self.closed => {
                if rx.changed().await.is_err() {
                    self.closed = true;
                }
            }
            _ => std::future::pending().await,
        }
    }
}

/// The signing key named by `[station] signing_key`, if any. The daemon checked it (and
/// created it when absent) before starting; if it has become unreadable since, heads go
/// out unsigned and the error says why (never the key itself).
pub(super) fn load_key(cfg: &crate::config::Config) -> Option<Arc<StationKey>> {
    let path = cfg.station.signing_key.as_deref()?;
    match StationKey::load(path) {
        Ok(k) => Some(Arc::new(k)),
        Err(e) => {
            tracing::error!("chain heads are published unsigned: {e}");
            None
        }
    }
}

impl Ctx {
    /// The head when it changed since the last one published, or now when `force`d (a
    /// new connection). QoS 1, retained.
    pub(super) fn publish_chain(&mut self, s: &mut Session, force: bool) -> Result<(), SessionEnd> {
        let Some(rx) = &self.chain.rx else {
            return Ok(());
        };
        let head = *rx.borrow();
        let Some(head) = head else {
            return Ok(());
        };
        if !force && self.chain.sent == Some(head) {
            return Ok(());
        }
        let payload = chain_payload(&self.cfg.station.id, &head, self.key.as_deref()).to_string();
        publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.chain(),
            Qos::AtLeastOnce,
            true,
            payload.as_bytes(),
            Tag::Other,
        )?;
        self.chain.sent = Some(head);
        Ok(())
    }
}
