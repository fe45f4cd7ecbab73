//! Alerts: a GPS buoy outside its anchor watch radius (its `anchor_distance` readings
//! flagged `off_station`) is announced on the retained `…/alert/<sensor>` topic, and the
//! all-clear when it is back within the radius. Only changes are published (QoS 1,
//! retained), so a broker's subscribers learn of a broken mooring at once and a late
//! subscriber still finds the latest word.

use std::collections::BTreeMap;

use serde_json::json;

use super::end::SessionEnd;
use super::{publish, Ctx, Session};
use crate::mqtt::outbox::Tag;
use crate::mqtt::wire::Qos;
use crate::reading::{format_ts, Flags, Quantity, StoredReading};

/// The name of the off-station alert in its payload (the flag's name).
pub const OFF_STATION: &str = "off_station";

/// What the alert topics say, by sensor.
#[derive(Debug, Default)]
pub(super) struct Alerts {
    /// Whether each sensor's alert is active, as last observed.
    active: BTreeMap<String, bool>,
    /// Payloads to publish, by sensor (the latest change wins).
    pending: BTreeMap<String, String>,
}

/// The `…/alert/<sensor>` payload for an anchor distance reading.
pub fn alert_payload(r: &StoredReading) -> serde_json::Value {
    let rd = &r.reading;
    json!({
        "ts": format_ts(rd.ts),
        "sensor": &*rd.sensor,
        "alert": OFF_STATION,
        "active": rd.flags.contains(Flags::OFF_STATION),
        "anchor_distance": rd.value,
    })
}

impl Alerts {
    /// Takes note of a reading; a change of a sensor's off-station state is queued.
    pub(super) fn observe(&mut self, r: &StoredReading) {
        if r.reading.quantity != Quantity::AnchorDistance || r.reading.value.is_none() {
            return;
        }
        let active = r.reading.flags.contains(Flags::OFF_STATION);
        let sensor = &*r.reading.sensor;
        let before = self.active.get(sensor).copied();
        // A first observation within the radius has nothing to announce.
        if before == Some(active) || (before.is_none() && !active) {
            self.active.insert(sensor.to_string(), active);
            return;
        }
        self.active.insert(sensor.to_string(), active);
        self.pending
            .insert(sensor.to_string(), alert_payload(r).to_string());
    }
}

impl Ctx {
    /// Publishes the alerts that changed.
    pub(super) fn publish_alerts(&mut self, s: &mut Session) -> Result<(), SessionEnd> {
        while let Some((sensor, payload)) = self.alerts.pending.pop_first() {
            let topic = self.topics.alert(&sensor);
            publish(
                &mut self.outbox,
                &mut s.writer,
                &topic,
                Qos::AtLeastOnce,
                true,
                payload.as_bytes(),
                Tag::Other,
            )?;
        }
        Ok(())
    }
}
