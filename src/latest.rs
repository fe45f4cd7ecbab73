//! The latest good value of every (sensor, quantity): written by the pipeline, read by
//! sensor kinds that need another sensor's value (pH temperature compensation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::reading::{Quantity, Timestamp};

/// The newest value and the one before it, so a reader can ask for "before now" even
/// when a value of the current tick has already arrived.
type LatestMap = HashMap<(String, Quantity), [Option<(Timestamp, f64)>; 2]>;

/// Latest good value of every (sensor, quantity), shared between the pipeline (which
/// writes) and sources that need another sensor's value (pH temperature compensation).
#[derive(Clone, Default)]
pub struct Latest {
    inner: Arc<Mutex<LatestMap>>,
}

impl Latest {
    /// Records a good value.
    pub fn set(&self, sensor: &str, q: Quantity, ts: Timestamp, value: f64) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let slot = m.entry((sensor.to_string(), q)).or_insert([None, None]);
        match slot[0] {
            Some((t, _)) if t == ts => slot[0] = Some((ts, value)),
            Some((t, _)) if t > ts => {}
            _ => {
                slot[1] = slot[0];
                slot[0] = Some((ts, value));
            }
        }
    }

    /// The latest value of `q` from `sensor` taken before `now` (a value of the same
    /// tick may or may not have arrived yet, so it is never used) and no older than
    /// `max_age_ms`.
    pub fn get(&self, sensor: &str, q: Quantity, now: Timestamp, max_age_ms: i64) -> Option<f64> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let slot = m.get(&(sensor.to_string(), q))?;
        slot.iter()
            .flatten()
            .find(|(ts, _)| *ts < now)
            .filter(|(ts, _)| now - ts <= max_age_ms)
            .map(|(_, v)| *v)
    }
}
