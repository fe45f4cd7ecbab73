//! Acknowledgement bookkeeping: which reading ids are in flight under which MQTT packet id,
//! and how far the publish cursor may move.
//!
//! The publisher gives every QoS 1 message a packet id (pkid) from [`Outbox::next_pkid`]
//! when it encodes it, and records it with [`Outbox::sent`]; the broker's `PubAck(pkid)`
//! acknowledges it. [`Outbox`] keeps the map pkid → what the message carries, and the set of
//! reading ids sent in this connection with their acknowledgement state. The cursor moves
//! over the longest acknowledged prefix, but never past `bound`: the highest id below which
//! every stored reading is known to have been sent in this connection.
//!
//! Readings acknowledged in an earlier connection stay acknowledged: a new connection sends
//! again only what was in flight when the last one ended, never more than the window.
//!
//! [`Outbox::overdue`] is the stall watchdog's view: the oldest message in flight, once the
//! broker has acknowledged a message sent after it. A broker acknowledges QoS 1 messages in
//! the order it received them (MQTT 3.1.1 § 4.6), so that message is not merely slow: its
//! acknowledgement is missing, and only a new connection brings it again.
//!
//! Under MQTT 5 a broker may answer a publish with a PUBACK whose reason code is 0x80 or
//! above (its ACL denies the topic, a quota…): [`Outbox::refused`]. A refused reading is not
//! a delivery: the cursor stays below it, it is not sent again in this connection (no hot
//! loop), and it is offered again at the next connection or after
//! [`Outbox::retry_refused`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

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

/// Bookkeeping of one publisher; what is in flight is forgotten at every new connection,
/// the cursor and the acknowledged readings above it are kept.
#[derive(Debug, Default)]
pub struct Outbox {
    cursor: i64,
    /// Reading ids sent in this connection and not acknowledged (at most the window).
    unacked: BTreeSet<i64>,
    /// Reading ids above the cursor acknowledged (in this connection or an earlier one), as
    /// ranges: while the backlog is replayed the cursor waits below it, and hundreds of
    /// thousands of live readings acknowledged meanwhile are a handful of ranges.
    acked: Ranges,
    /// Reading ids above the cursor the broker refused in this connection.
    refused: Ranges,
    pkids: HashMap<u16, InFlight>,
    /// The packet ids in flight by the order they were sent (`InFlight::seq`).
    order: BTreeMap<u64, u16>,
    next_seq: u64,
    /// The latest-sent message the broker answered (acknowledged or refused) in this
    /// connection (its `seq`).
    acked_seq: Option<u64>,
    last_pkid: u16,
    /// The topics messages were sent on, each once (a handful: status, meta, state, one
    /// per sensor, discovery), so a refusal can name its topic without a string per
    /// message.
    topics: Vec<Box<str>>,
    topic_ids: HashMap<Box<str>, u32>,
}

/// A QoS 1 message waiting for its acknowledgement.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    tag: Tag,
    /// Sending order in this connection.
    seq: u64,
    sent: Instant,
    /// Its topic, an index into `Outbox::topics` ([`NO_TOPIC`] for a SUBSCRIBE).
    topic: u32,
}

/// No topic recorded (a SUBSCRIBE).
const NO_TOPIC: u32 = u32::MAX;

/// Disjoint inclusive ranges of ids, `start → end`, never adjacent.
#[derive(Debug, Default)]
struct Ranges(BTreeMap<i64, i64>);

impl Ranges {
    fn contains(&self, id: i64) -> bool {
        self.0
            .range(..=id)
            .next_back()
            .is_some_and(|(_, &end)| end >= id)
    }

    fn insert(&mut self, id: i64) {
        if self.contains(id) {
            return;
        }
        let before = self
            .0
            .range(..id)
            .next_back()
            .filter(|(_, &end)| end == id - 1)
            .map(|(&start, _)| start);
        let after = self.0.get(&(id + 1)).copied();
        if after.is_some() {
            self.0.remove(&(id + 1));
        }
        match before {
            Some(start) => {
                self.0.insert(start, after.unwrap_or(id));
            }
            None => {
                self.0.insert(id, after.unwrap_or(id));
            }
        }
    }

    /// The highest id in the set that is `<= limit`.
    fn highest_up_to(&self, limit: i64) -> Option<i64> {
        self.0
            .range(..=limit)
            .next_back()
            .map(|(_, &end)| end.min(limit))
    }

    /// Drops every id `<= id`.
    fn remove_through(&mut self, id: i64) {
        while let Some((&start, &end)) = self.0.first_key_value() {
            if start > id {
                break;
            }
            self.0.pop_first();
            if end > id {
                self.0.insert(id + 1, end);
                break;
            }
        }
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn first(&self) -> Option<i64> {
        self.0.first_key_value().map(|(&start, _)| start)
    }

    fn last(&self) -> Option<i64> {
        self.0.last_key_value().map(|(_, &end)| end)
    }
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

    /// Forgets what the previous connection had in flight (its unacknowledged messages are
    /// gone with it and will be sent again); what it acknowledged stays acknowledged.
    pub fn new_session(&mut self) {
        self.unacked.clear();
        self.refused.clear();
        self.pkids.clear();
        self.order.clear();
        self.acked_seq = None;
    }

    /// True when `id` is acknowledged, or was sent (or refused) in this connection.
    pub fn is_handled(&self, id: i64) -> bool {
        id <= self.cursor
            || self.unacked.contains(&id)
            || self.acked.contains(id)
            || self.refused.contains(id)
    }

    /// QoS 1 messages (and subscriptions) waiting for their acknowledgement, readings or
    /// not: what an MQTT 5 broker's Receive Maximum limits.
    pub fn in_flight(&self) -> usize {
        self.pkids.len()
    }

    /// True when the broker refused readings in this connection.
    pub fn has_refused(&self) -> bool {
        !self.refused.0.is_empty()
    }

    /// Readings the broker refused in this connection.
    pub fn refused_count(&self) -> usize {
        self.refused
            .0
            .iter()
            .map(|(&start, &end)| usize::try_from(end - start + 1).unwrap_or(0))
            .sum()
    }

    /// Forgets this connection's refusals so the refused readings are sent again (by a
    /// replay of the store from the cursor). Returns the highest refused id: the replay
    /// must not end before the store has committed through it.
    pub fn retry_refused(&mut self) -> Option<i64> {
        let last = self.refused.last();
        self.refused.clear();
        last
    }

    /// Readings sent in this connection and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// True when nothing sent is waiting for an acknowledgement.
    pub fn all_acked(&self) -> bool {
        self.unacked.is_empty()
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

    /// Records a message handed to the connection without a topic (a SUBSCRIBE): `pkid`
    /// for QoS 1 (an acknowledgement will come), `None` for QoS 0.
    pub fn sent(&mut self, tag: Tag, pkid: Option<u16>) {
        self.record(tag, pkid, NO_TOPIC, Instant::now());
    }

    /// [`Outbox::sent`], at `now`.
    pub fn sent_at(&mut self, tag: Tag, pkid: Option<u16>, now: Instant) {
        self.record(tag, pkid, NO_TOPIC, now);
    }

    /// Records a PUBLISH to `topic` handed to the connection (see [`Outbox::sent`]).
    pub fn sent_on(&mut self, topic: &str, tag: Tag, pkid: Option<u16>) {
        let index = match pkid {
            None => NO_TOPIC,
            Some(_) => match self.topic_ids.get(topic) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(self.topics.len()).unwrap_or(NO_TOPIC);
                    self.topics.push(topic.into());
                    self.topic_ids.insert(topic.into(), i);
                    i
                }
            },
        };
        self.record(tag, pkid, index, Instant::now());
    }

    fn record(&mut self, tag: Tag, pkid: Option<u16>, topic: u32, now: Instant) {
        if let Tag::Reading(id) = tag {
            // The publisher sends only readings that are not `is_handled`.
            self.unacked.insert(id);
        }
        if let Some(p) = pkid {
            let seq = self.next_seq;
            self.next_seq += 1;
            if let Some(old) = self.pkids.insert(
                p,
                InFlight {
                    tag,
                    seq,
                    sent: now,
                    topic,
                },
            ) {
                self.order.remove(&old.seq);
            }
            self.order.insert(seq, p);
        }
    }

    /// The broker refused the publish with packet id `pkid` (an MQTT 5 PUBACK with a reason
    /// code of 0x80 or above). Returns what it carried and its topic (`None` when the
    /// packet id is not ours to track). A refused reading holds the cursor below it.
    pub fn refused(&mut self, pkid: u16) -> Option<(Tag, &str)> {
        let InFlight {
            tag, seq, topic, ..
        } = self.pkids.remove(&pkid)?;
        // A refusal is an answer: the stall watchdog counts it like an acknowledgement.
        self.order.remove(&seq);
        self.acked_seq = self.acked_seq.max(Some(seq));
        if let Tag::Reading(id) = tag {
            if self.unacked.remove(&id) {
                self.refused.insert(id);
            }
        }
        let topic = usize::try_from(topic)
            .ok()
            .and_then(|i| self.topics.get(i))
            .map_or("", |t| &**t);
        Some((tag, topic))
    }

    /// The broker's `PubAck(pkid)`. Returns what was acknowledged (`Tag::Other` when the
    /// packet id is not ours to track).
    pub fn puback(&mut self, pkid: u16) -> Tag {
        let Some(InFlight { tag, seq, .. }) = self.pkids.remove(&pkid) else {
            return Tag::Other;
        };
        self.order.remove(&seq);
        self.acked_seq = self.acked_seq.max(Some(seq));
        if let Tag::Reading(id) = tag {
            if self.unacked.remove(&id) {
                self.acked.insert(id);
            }
        }
        tag
    }

    /// The oldest message in flight and how long it has waited, when that is more than
    /// `limit` although the broker has acknowledged a message sent after it (a message
    /// that is only slow, on a slow link, is never overtaken).
    pub fn overdue(&mut self, now: Instant, limit: Duration) -> Option<(Tag, Duration)> {
        let f = self.oldest_overtaken()?;
        let waited = now.saturating_duration_since(f.sent);
        (waited > limit).then_some((f.tag, waited))
    }

    /// When the oldest message in flight was sent, if the broker has already answered a
    /// message sent after it: [`Outbox::overdue`] reports it once it has waited the limit
    /// from then (the publisher sleeps until that moment instead of polling).
    pub fn overtaken_since(&mut self) -> Option<Instant> {
        self.oldest_overtaken().map(|f| f.sent)
    }

    fn oldest_overtaken(&mut self) -> Option<InFlight> {
        let (seq, pkid) = loop {
            let (&seq, &pkid) = self.order.first_key_value()?;
            // Entries whose packet id left `pkids` by another way are dropped here.
            if self.pkids.get(&pkid).is_some_and(|f| f.seq == seq) {
                break (seq, pkid);
            }
            self.order.pop_first();
        };
        let f = *self.pkids.get(&pkid)?;
        (self.acked_seq > Some(seq)).then_some(f)
    }

    /// Moves the cursor over the acknowledged prefix, not past `bound` (`None`: no bound).
    /// Returns the new cursor when it moved.
    pub fn advance(&mut self, bound: Option<i64>) -> Option<i64> {
        let before = self.cursor;
        // The first id not delivered: unacknowledged, or refused by the broker.
        let first_unacked = match (self.unacked.first().copied(), self.refused.first()) {
            (Some(u), Some(r)) => Some(u.min(r)),
            (u, r) => u.or(r),
        };
        // The acknowledged ids below the first unacknowledged one, up to the bound.
        let stop = first_unacked
            .map_or(i64::MAX, |u| u - 1)
            .min(bound.unwrap_or(i64::MAX));
        if let Some(h) = self.acked.highest_up_to(stop) {
            self.cursor = self.cursor.max(h);
        }
        if let Some(b) = bound {
            // Every stored id up to the bound was sent; with nothing unacknowledged below
            // it, the cursor covers the gaps (ids the store never used) too.
            let reach = first_unacked.map_or(b, |u| b.min(u - 1));
            self.cursor = self.cursor.max(reach);
        }
        self.acked.remove_through(self.cursor);
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
    fn acknowledged_ranges_merge_and_trim() {
        let mut r = Ranges::default();
        for id in [5, 7, 6, 10, 9, 1] {
            r.insert(id);
        }
        assert_eq!(
            r.0.iter().map(|(&a, &b)| (a, b)).collect::<Vec<_>>(),
            vec![(1, 1), (5, 7), (9, 10)]
        );
        assert!(r.contains(6) && !r.contains(8) && !r.contains(11));
        assert_eq!(r.highest_up_to(8), Some(7));
        assert_eq!(r.highest_up_to(0), None);
        r.insert(8);
        assert_eq!(r.0.len(), 2, "8 joins 5..7 and 9..10");
        r.remove_through(6);
        assert_eq!(
            r.0.iter().map(|(&a, &b)| (a, b)).collect::<Vec<_>>(),
            vec![(7, 10)]
        );
    }

    #[test]
    fn a_long_replay_keeps_the_live_acknowledgements_small() {
        // The backlog replay holds the cursor at 0 while 100 000 live readings are sent
        // and acknowledged: they take one range, not 100 000 entries.
        let mut o = Outbox::new(0);
        for id in 1_000..101_000 {
            let p = send(&mut o, Tag::Reading(id));
            o.puback(p);
            assert_eq!(o.advance(Some(0)), None);
        }
        assert_eq!(o.acked.0.len(), 1);
        assert!(o.is_handled(50_000) && !o.is_handled(999));
        // The replay reaches them: the cursor jumps over the whole range.
        assert_eq!(o.advance(Some(101_000)), Some(101_000));
        assert!(o.acked.0.is_empty());
    }

    #[test]
    fn a_refused_reading_holds_the_cursor_until_it_is_delivered() {
        let mut o = Outbox::new(10);
        let mut pkid = BTreeMap::new();
        for id in 11..=14 {
            let p = o.next_pkid().unwrap_or(0);
            o.sent_on("anemone/x/reading/mast", Tag::Reading(id), Some(p));
            pkid.insert(id, p);
        }
        let p = o.next_pkid().unwrap_or(0);
        o.sent_on("anemone/x/status", Tag::Other, Some(p));
        assert_eq!(o.in_flight(), 5);
        assert_eq!(o.puback(pkid[&11]), Tag::Reading(11));
        assert_eq!(
            o.refused(pkid[&12]),
            Some((Tag::Reading(12), "anemone/x/reading/mast"))
        );
        assert_eq!(o.refused(p), Some((Tag::Other, "anemone/x/status")));
        assert_eq!(o.refused(p), None, "an unknown packet id");
        o.puback(pkid[&13]);
        o.puback(pkid[&14]);
        assert!(
            o.all_acked(),
            "a refusal is an answer: nothing waits for one"
        );
        assert_eq!(o.in_flight(), 0);
        // The cursor stops before the refused reading, bound or not.
        assert_eq!(o.advance(Some(14)), Some(11));
        assert_eq!(o.advance(None), None);
        assert_eq!(o.cursor(), 11);
        // It is not sent again in this connection…
        assert!(o.is_handled(12) && o.has_refused());
        assert_eq!(o.refused_count(), 1);
        // …until the refusals are retried: then it is owed again, and once acknowledged
        // the cursor passes it.
        assert_eq!(o.retry_refused(), Some(12));
        assert!(!o.is_handled(12) && !o.has_refused());
        let again = o.next_pkid().unwrap_or(0);
        o.sent_on("anemone/x/reading/mast", Tag::Reading(12), Some(again));
        o.puback(again);
        assert_eq!(o.advance(None), Some(14));
        // A new connection forgets refusals too: they are replayed from the store.
        let p = o.next_pkid().unwrap_or(0);
        o.sent_on("anemone/x/reading/mast", Tag::Reading(15), Some(p));
        o.refused(p);
        o.new_session();
        assert!(!o.is_handled(15));
        assert_eq!(o.cursor(), 14);
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

    #[test]
    fn overdue_is_the_oldest_in_flight_once_overtaken() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let limit = ms(1000);
        let mut o = Outbox::new(0);
        let mut pkids = Vec::new();
        for id in 1..=4 {
            let p = o.next_pkid().unwrap_or(0);
            o.sent_at(Tag::Reading(id), Some(p), t0 + ms(id as u64));
            pkids.push(p);
        }
        // In order but slow (a slow link): nothing is overdue, however long it takes.
        assert_eq!(o.overdue(t0 + ms(60_000), limit), None);
        assert_eq!(o.overtaken_since(), None);
        o.puback(pkids[0]);
        assert_eq!(o.overdue(t0 + ms(60_000), limit), None);
        // 2 is skipped: 3 and 4 are acknowledged, 2 is overdue once it has waited the limit.
        o.puback(pkids[2]);
        o.puback(pkids[3]);
        assert_eq!(o.overdue(t0 + ms(900), limit), None);
        assert_eq!(
            o.overtaken_since(),
            Some(t0 + ms(2)),
            "2 is overtaken since it was sent"
        );
        assert_eq!(
            o.overdue(t0 + ms(1502), limit),
            Some((Tag::Reading(2), ms(1500)))
        );
        assert_eq!(o.advance(None), Some(1), "2 holds the cursor");
        // A new connection sends 2 again, and only 2: 3 and 4 stay acknowledged.
        o.new_session();
        assert_eq!(o.overdue(t0 + ms(5000), limit), None);
        assert!(!o.is_handled(2));
        assert!(o.is_handled(3) && o.is_handled(4));
        let p = o.next_pkid().unwrap_or(0);
        o.sent_at(Tag::Reading(2), Some(p), t0 + ms(5000));
        assert_eq!(o.advance(Some(4)), None);
        o.puback(p);
        assert_eq!(o.advance(Some(4)), Some(4));
    }

    #[test]
    fn overdue_skips_packet_ids_answered_another_way() {
        let t0 = Instant::now();
        let mut o = Outbox::new(0);
        o.sent_at(Tag::Other, Some(1), t0);
        o.sent_at(Tag::Reading(1), Some(2), t0);
        o.sent_at(Tag::Reading(2), Some(3), t0);
        // Packet id 1 leaves the map without `puback` (e.g. a refused publish).
        o.pkids.remove(&1);
        o.puback(3);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            o.overdue(later, Duration::from_secs(1)).map(|(t, _)| t),
            Some(Tag::Reading(1))
        );
    }
}
