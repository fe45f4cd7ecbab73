//! Acknowledgement bookkeeping: which reading ids are in flight under which MQTT packet id,
//! and how far the publish cursor may move.
//!
//! The publisher gives every QoS 1 message a packet id (pkid) from [`Outbox::next_pkid`]
//! when it encodes it, and records it with [`Outbox::sent`]; the broker's `PubAck(pkid)`
//! acknowledges it. [`Outbox`] keeps the map pkid → what the message carries, and the set of
//! reading ids sent in this connection with their acknowledgement state. The cursor moves
//! over the longest acknowledged prefix, but never past `bound`: the highest id below which
//! every stored reading is known to have been sent in this connection.

use std::collections::{BTreeMap, HashMap};

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
    pkids: HashMap<u16, Tag>,
    last_pkid: u16,
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

    /// A packet id not in flight (`None` only if all 65 535 are, which the publisher's
    /// window never allows).
    pub fn next_pkid(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            self.last_pkid = self.last_pkid.checked_add(1).unwrap_or(1);
            if !self.pkids.contains_key(&self.last_pkid) {
                return Some(self.last_pkid);
            }
        }
        None
    }

    /// Records a message handed to the connection: `pkid` for QoS 1 (an acknowledgement
    /// will come), `None` for QoS 0.
    pub fn sent(&mut self, tag: Tag, pkid: Option<u16>) {
        if let Tag::Reading(id) = tag {
            if self.sent.insert(id, false).is_none() {
                self.unacked += 1;
            }
        }
        if let Some(p) = pkid {
            self.pkids.insert(p, tag);
        }
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

    /// Sends `tag` at QoS 1 and returns its pkid.
    fn send(o: &mut Outbox, tag: Tag) -> u16 {
        let pkid = o.next_pkid().unwrap_or(0);
        o.sent(tag, Some(pkid));
        pkid
    }

    #[test]
    fn prefix_in_order_and_out_of_order() {
        let mut o = Outbox::new(10);
        for id in [11, 12, 14] {
            send(&mut o, Tag::Reading(id));
        }
        send(&mut o, Tag::Other); // a status message in between
        send(&mut o, Tag::Reading(15));
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
    fn packet_ids_in_flight_are_never_reused() {
        let mut o = Outbox::new(0);
        let first = send(&mut o, Tag::Reading(1));
        // Go round the whole id space: the id still in flight is skipped, 0 never used.
        let mut seen_zero = false;
        for i in 2..70_000i64 {
            let p = send(&mut o, Tag::Other);
            assert_ne!(p, first, "at {i}");
            seen_zero |= p == 0;
            o.puback(p);
        }
        assert!(!seen_zero);
        assert_eq!(o.puback(first), Tag::Reading(1));
        assert_eq!(o.advance(None), Some(1));
    }

    #[test]
    fn new_session_forgets_in_flight() {
        let mut o = Outbox::new(5);
        let p = send(&mut o, Tag::Reading(6));
        o.new_session();
        assert!(!o.is_handled(6));
        assert_eq!(o.puback(p), Tag::Other);
        assert_eq!(o.cursor(), 5);
        assert!(o.is_handled(5));
    }
}
