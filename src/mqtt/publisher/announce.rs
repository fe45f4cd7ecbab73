//! The retained messages that describe the station: `status`, `meta`, Home Assistant
//! discovery and `state`, published at every connection (and discovery again when Home
//! Assistant comes online, or a reading brings a new sensor and quantity).

use tokio::time::Instant;

use super::end::SessionEnd;
use super::{publish, Ctx, Session};
use crate::mqtt::discovery;
use crate::mqtt::outbox::Tag;
use crate::mqtt::payload::meta_payload;
use crate::mqtt::topics::ONLINE;
use crate::mqtt::wire::{self, Qos};
use crate::reading::{Quantity, StoredReading};

impl Ctx {
    /// Status, meta, discovery and the current state, at every connection.
    pub(super) fn announce(&mut self, s: &mut Session) -> Result<(), SessionEnd> {
        publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.status,
            Qos::AtLeastOnce,
            true,
            ONLINE.as_bytes(),
            Tag::Other,
        )?;
        self.publish_meta(s)?;
        if self.cfg.mqtt.discovery {
            self.subscribe(s, &self.topics.ha_status(), Qos::AtLeastOnce)?;
            // The retained configs the broker hands back name what earlier runs announced:
            // those of sensors no longer configured are cleared (see `clear_if_stale`).
            self.subscribe(s, &self.topics.discovery_filter(), Qos::AtMostOnce)?;
            self.publish_discovery(s)?;
        }
        if !self.announced.state.is_empty() {
            self.publish_state(s, true)?;
        }
        self.publish_chain(s, true)
    }

    /// A SUBSCRIBE to `filter`, its SUBACK waited for like a PUBACK.
    fn subscribe(&mut self, s: &mut Session, filter: &str, qos: Qos) -> Result<(), SessionEnd> {
        let pkid = self
            .outbox
            .next_pkid()
            .ok_or(SessionEnd::PacketIdsExhausted)?;
        self.outbox.sent(Tag::Other, Some(pkid));
        wire::subscribe(&mut s.writer.buf, s.writer.version, pkid, filter, qos);
        Ok(())
    }

    fn publish_meta(&mut self, s: &mut Session) -> Result<(), SessionEnd> {
        let meta = meta_payload(&self.cfg, &self.announced.seen, self.key.as_deref()).to_string();
        publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.meta,
            Qos::AtLeastOnce,
            true,
            meta.as_bytes(),
            Tag::Other,
        )
    }

    /// Every discovery config announced so far.
    pub(super) fn publish_discovery(&mut self, s: &mut Session) -> Result<(), SessionEnd> {
        let pairs: Vec<(String, Quantity)> = self
            .announced
            .discovery
            .iter()
            .flat_map(|(sensor, qs)| qs.iter().map(|q| (sensor.clone(), *q)))
            .collect();
        for (sensor, q) in pairs {
            self.publish_discovery_of(s, &sensor, q)?;
        }
        Ok(())
    }

    /// The retained Home Assistant discovery config of one (sensor, quantity).
    fn publish_discovery_of(
        &mut self,
        s: &mut Session,
        sensor: &str,
        q: Quantity,
    ) -> Result<(), SessionEnd> {
        let payload = discovery::config_payload(&self.cfg, &self.topics, sensor, q);
        let topic = self.topics.discovery(sensor, q);
        publish(
            &mut self.outbox,
            &mut s.writer,
            &topic,
            Qos::AtLeastOnce,
            true,
            payload.to_string().as_bytes(),
            Tag::Other,
        )
    }

    /// A retained discovery config of this station that no configured sensor (nor any
    /// quantity announced in this run) accounts for: an empty retained config removes the
    /// entity from Home Assistant.
    pub(super) fn clear_if_stale(
        &mut self,
        s: &mut Session,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), SessionEnd> {
        if !self.topics.is_own_discovery(topic) {
            return Ok(());
        }
        let expected = |t: &str| {
            self.expected
                .iter()
                .chain(self.announced.discovery.iter())
                .any(|(sensor, qs)| qs.iter().any(|q| self.topics.discovery(sensor, *q) == t))
        };
        if !discovery::is_stale(&self.cfg, topic, payload, &expected) {
            return Ok(());
        }
        tracing::info!(
            "Removing the Home Assistant entity at {topic}: its sensor is no longer in the config."
        );
        publish(
            &mut self.outbox,
            &mut s.writer,
            topic,
            Qos::AtLeastOnce,
            true,
            b"",
            Tag::Other,
        )
    }

    /// When a changed `state` is sent at the latest when no readings come first:
    /// `state_interval` after the last one.
    pub(super) fn state_due(&self, s: &Session) -> Option<Instant> {
        self.announced.state_dirty.then(|| {
            s.last_state
                .map_or_else(Instant::now, |t| t + self.tuning.state_interval)
        })
    }

    /// `state` when it changed and is due, or now when `force`d. It goes with the readings
    /// that changed it once half of `state_interval` has passed since the last one, so a
    /// 1-Hz sensor's readings and `state` share one wake-up and one write (a `state` sent
    /// by the timer of [`Ctx::state_due`] falls back into step with the readings at the
    /// next ones, instead of chasing them a fraction of a second later every second).
    pub(super) fn publish_state(&mut self, s: &mut Session, force: bool) -> Result<(), SessionEnd> {
        self.publish_alerts(s)?;
        let half = self.tuning.state_interval / 2;
        let due = self.announced.state_dirty && s.last_state.is_none_or(|t| t.elapsed() >= half);
        if !(force || due) {
            return Ok(());
        }
        self.announced.state_dirty = false;
        s.last_state = Some(Instant::now());
        let payload = self.announced.state.to_json().to_string();
        publish(
            &mut self.outbox,
            &mut s.writer,
            &self.topics.state,
            Qos::AtMostOnce,
            true,
            payload.as_bytes(),
            Tag::Other,
        )
    }

    /// A (sensor, quantity) not in the config (a derived quantity): announce it.
    pub(super) fn note_pair(
        &mut self,
        s: &mut Session,
        r: &StoredReading,
    ) -> Result<(), SessionEnd> {
        let known = self
            .announced
            .discovery
            .get(&*r.reading.sensor)
            .is_some_and(|qs| qs.contains(&r.reading.quantity));
        if known {
            return Ok(());
        }
        let key = (r.reading.sensor.to_string(), r.reading.quantity);
        self.announced
            .discovery
            .entry(key.0.clone())
            .or_default()
            .insert(key.1);
        let qs = self.announced.seen.entry(key.0.clone()).or_default();
        if !qs.contains(&key.1) {
            qs.push(key.1);
        }
        if self.cfg.mqtt.discovery {
            self.publish_discovery_of(s, &key.0, key.1)?;
        }
        self.publish_meta(s)
    }

    /// Takes note of live readings that are not sent now (state, new sensors).
    pub(super) fn observe(&mut self, batch: &[StoredReading]) {
        for r in batch {
            self.alerts.observe(r);
            if self.announced.state.update(&r.reading) {
                self.announced.state_dirty = true;
            }
            let known = self
                .announced
                .seen
                .get(&*r.reading.sensor)
                .is_some_and(|qs| qs.contains(&r.reading.quantity));
            if !known {
                self.announced
                    .seen
                    .entry(r.reading.sensor.to_string())
                    .or_default()
                    .push(r.reading.quantity);
            }
        }
    }
}
