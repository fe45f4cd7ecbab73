//! The writer's live feed: readings queued to be sent first, and what the feed could not
//! carry (a full queue, a gap, no connection) left to the backlog replay.

use std::collections::VecDeque;

use tokio::sync::mpsc;

use super::{Ctx, Session};
use crate::reading::StoredReading;

impl Ctx {
    /// Every id up to this is in the store or never will be.
    pub(super) fn committed_now(&self) -> i64 {
        self.feed
            .committed
            .as_ref()
            .map_or(i64::MAX, |w| *w.borrow())
    }

    /// Notes a live batch's ids; true when ids before it never came on the live feed
    /// (the writer dropped them when the feed was full): they are in the store.
    pub(super) fn note_live_ids(&mut self, batch: &[StoredReading]) -> bool {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return false;
        };
        let expected = match self.feed.last_live {
            Some(l) => l + 1,
            None => self.committed_now().saturating_add(1),
        };
        self.feed.last_live = Some(last.id);
        self.feed.first_live.get_or_insert(first.id);
        let gap = self.feed.committed.is_some() && first.id > expected;
        if gap {
            self.feed.must_scan = self.feed.must_scan.max(first.id - 1);
        }
        gap
    }

    /// Live readings that will not be sent from the live feed: the backlog covers them.
    pub(super) fn leave_to_store(&mut self, batch: &[StoredReading]) {
        if let Some(last) = batch.last() {
            self.feed.must_scan = self.feed.must_scan.max(last.id);
        }
    }

    /// Live readings to send first; a batch that does not fit in `live_queue_max` is left
    /// to the backlog (the queue keeps what it holds: it is sent live, and the backlog
    /// replay skips what was sent). True when the backlog must be read (again) for readings
    /// the feed did not carry.
    pub(super) fn queue_live(
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
    pub(super) fn take_ready_live(&mut self, s: &mut Session) {
        while !self.feed.closed {
            match self.feed.rx.try_recv() {
                Ok(b) => {
                    if self.queue_live(&mut s.live_queue, b) {
                        s.replay.done = false;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.feed.closed = true,
            }
        }
    }
}
