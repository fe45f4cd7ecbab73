//! Acknowledgement bookkeeping: which reading ids are in flight under which MQTT packet id,
//! and how far the publish cursor may move.
//!
//! rumqttc assigns a packet id (pkid) when its event loop takes a publish request off its
//! queue, in request order, and reports it as `Outgoing::Publish(pkid)` (or
//! `Outgoing::AwaitAck(pkid)` when the id is still taken, followed later by
//! `Outgoing::Publish(pkid)` for the same message). The broker's `PubAck(pkid)` then
//! acknowledges it. [`Outbox`] mirrors that: a FIFO of requests waiting for their pkid, a map
//! pkid → reading id, and the set of reading ids sent in this connection with their
//! acknowledgement state. The cursor moves over the longest acknowledged prefix, but never
//! past `bound`: the highest id below which every stored reading is known to have been sent
//! in this connection.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// What a publish request carries, for matching its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A reading, by id.
    Reading(i64),
    /// A message whose acknowledgement someone waits for (e.g. the final `offline`).
    Marker(u32),
    /// Anything else (state, meta, discovery, QoS 0).
    Other,
}

/// Bookkeeping of one publisher; reset at every new connection except the cursor.
#[derive(Debug, Default)]
pub struct Outbox {
    cursor: i64,
    sent: BTreeMap<i64, bool>,
    waiting_pkid: VecDeque<Tag>,
    collided: Option<Tag>,
    pkids: HashMap<u16, Tag>,
    unacked: usize,
}

impl Outbox {
    /// Starts from the persisted cursor.
    pub fn new(cursor: i64) -> Outbox {
        Outbox {
            cursor,
            ..Outbox::default()
        }
    }

    /// The acknowledged prefix: every stored reading with `id <= cursor` was acknowledged.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Forgets everything about the previous connection (its unacknowledged messages are
    /// gone with it and will be sent again).
    pub fn new_session(&mut self) {
        self.sent.clear();
        self.waiting_pkid.clear();
        self.collided = None;
        self.pkids.clear();
        self.unacked = 0;
    }

    /// True when `id` is acknowledged or was sent in this connection.
    pub fn is_handled(&self, id: i64) -> bool {
        id <= self.cursor || self.sent.contains_key(&id)
    }

    /// Readings sent in this connection and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked
    }

    /// True when nothing sent is waiting for an acknowledgement.
    pub fn all_acked(&self) -> bool {
        self.unacked == 0
    }

    /// Records a publish request handed to rumqttc, in request order.
    pub fn requested(&mut self, tag: Tag) {
        if let Tag::Reading(id) = tag {
            if self.sent.insert(id, false).is_none() {
                self.unacked += 1;
            }
        }
        self.waiting_pkid.push_back(tag);
    }

    /// rumqttc's `Outgoing::Publish(pkid)`.
    pub fn outgoing_publish(&mut self, pkid: u16) {
        let next = match self.collided.take() {
            Some(held) => Some(held),
            None => self.waiting_pkid.pop_front(),
        };
        if let Some(tag) = next {
            if pkid != 0 && tag != Tag::Other {
                self.pkids.insert(pkid, tag);
            }
        }
    }

    /// rumqttc's `Outgoing::AwaitAck(pkid)`: the request is held until the pkid is free.
    pub fn outgoing_await_ack(&mut self, _pkid: u16) {
        self.collided = self.waiting_pkid.pop_front();
    }

    /// The broker's `PubAck(pkid)`. Returns what was acknowledged (`Tag::Other` when the
    /// packet id is not ours to track).
    pub fn puback(&mut self, pkid: u16) -> Tag {
        let Some(tag) = self.pkids.remove(&pkid) else {
            return Tag::Other;
        };
        if let Tag::Reading(id) = tag {
            if let Some(acked) = self.sent.get_mut(&id) {
                if !*acked {
                    *acked = true;
                    self.unacked = self.unacked.saturating_sub(1);
                }
            }
        }
        tag
    }

    /// Moves the cursor over the acknowledged prefix, not past `bound` (`None`: no bound).
    /// Returns the new cursor when it moved.
    pub fn advance(&mut self, bound: Option<i64>) -> Option<i64> {
        let before = self.cursor;
        while let Some((&id, &acked)) = self.sent.first_key_value() {
            if !acked || bound.is_some_and(|b| id > b) {
                break;
            }
            self.sent.pop_first();
            self.cursor = self.cursor.max(id);
        }
        if let Some(b) = bound {
            // Every stored id up to the bound was sent; with nothing unacknowledged below
            // it, the cursor covers the gaps (ids the store never used) too.
            let first_unacked = self.sent.keys().next().copied();
            let reach = match first_unacked {
                Some(id) => b.min(id - 1),
                None => b,
            };
            self.cursor = self.cursor.max(reach);
        }
        (self.cursor != before).then_some(self.cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_in_order_and_out_of_order() {
        let mut o = Outbox::new(10);
        for id in [11, 12, 14] {
            o.requested(Tag::Reading(id));
        }
        o.requested(Tag::Other); // a status message in between
        o.requested(Tag::Reading(15));
        for pkid in 1..=5 {
            o.outgoing_publish(pkid);
        }
        assert_eq!(o.unacked(), 4);
        assert_eq!(o.puback(2), Tag::Reading(12));
        assert_eq!(o.advance(Some(15)), None, "11 is not acknowledged yet");
        assert_eq!(o.puback(4), Tag::Other, "pkid 4 was the status message");
        assert_eq!(o.puback(1), Tag::Reading(11));
        // 13 does not exist in the store; the bound says everything up to 15 was sent.
        assert_eq!(o.advance(Some(15)), Some(13));
        assert_eq!(o.puback(3), Tag::Reading(14));
        assert_eq!(o.advance(Some(13)), None, "the bound holds the cursor");
        assert_eq!(o.advance(Some(15)), Some(14));
        assert_eq!(o.puback(5), Tag::Reading(15));
        assert_eq!(o.advance(None), Some(15));
        assert!(o.all_acked());
    }

    #[test]
    fn collision_keeps_the_mapping() {
        let mut o = Outbox::new(0);
        o.requested(Tag::Reading(1));
        o.requested(Tag::Reading(2));
        o.outgoing_publish(1);
        o.outgoing_await_ack(1); // request 2 wants pkid 1, still taken
        assert_eq!(o.puback(1), Tag::Reading(1));
        o.outgoing_publish(1); // request 2 goes out now under pkid 1
        assert_eq!(o.puback(1), Tag::Reading(2));
        assert_eq!(o.advance(None), Some(2));
    }

    #[test]
    fn new_session_forgets_in_flight() {
        let mut o = Outbox::new(5);
        o.requested(Tag::Reading(6));
        o.outgoing_publish(1);
        o.new_session();
        assert!(!o.is_handled(6));
        assert_eq!(o.puback(1), Tag::Other);
        assert_eq!(o.cursor(), 5);
        assert!(o.is_handled(5));
    }
}
