//! The low-battery policy: below `low_battery_v` the station samples at a longer interval
//! (every sensor's interval × `saving_interval_factor`), back to normal at or above
//! `resume_v` — two thresholds, so a battery hovering at one does not flap. The battery's
//! INA219 (`type = "ina219"`, `role = "battery"`) feeds it and reports each change as a
//! `power_saving` reading (1 saving, 0 normal) and a log line; the sensor tasks read the
//! shared [`PowerState`], and the MQTT publisher pauses while it says saving
//! ([`PowerState::watch_saving`]): the store keeps every reading, and what was stored
//! meanwhile is published as backfill once the battery has recovered.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// Whether the station is saving power, shared by the battery's sensor and the sensor
/// tasks.
#[derive(Debug, Clone)]
pub struct PowerState {
    saving: Arc<watch::Sender<bool>>,
    factor: Arc<AtomicU32>,
}

impl Default for PowerState {
    fn default() -> Self {
        PowerState {
            saving: Arc::new(watch::Sender::new(false)),
            factor: Arc::new(AtomicU32::new(1)),
        }
    }
}

impl PowerState {
    /// True while the battery is low.
    pub fn is_saving(&self) -> bool {
        *self.saving.borrow()
    }

    /// Follows [`PowerState::is_saving`]: the MQTT publisher's pause.
    pub fn watch_saving(&self) -> watch::Receiver<bool> {
        self.saving.subscribe()
    }

    /// `interval_ms` as it is now: stretched while saving.
    pub fn interval_ms(&self, interval_ms: i64) -> i64 {
        if self.is_saving() {
            interval_ms.saturating_mul(i64::from(self.factor.load(Ordering::Relaxed).max(1)))
        } else {
            interval_ms
        }
    }

    fn set(&self, saving: bool, factor: u32) {
        self.factor.store(factor.max(1), Ordering::Relaxed);
        self.saving.send_replace(saving);
    }
}

/// The thresholds and the state machine over them.
#[derive(Debug, Clone)]
pub struct LowBatteryPolicy {
    /// Below this battery voltage the station saves power, V.
    pub low_v: f64,
    /// At or above this it returns to normal, V (above `low_v`).
    pub resume_v: f64,
    /// Interval multiplier while saving.
    pub factor: u32,
    state: PowerState,
}

impl LowBatteryPolicy {
    /// A policy that drives `state`.
    pub fn new(low_v: f64, resume_v: f64, factor: u32, state: PowerState) -> LowBatteryPolicy {
        LowBatteryPolicy {
            low_v,
            resume_v,
            factor,
            state,
        }
    }

    /// Feeds a battery voltage; `Some(saving)` when the state changed.
    pub fn update(&mut self, volts: f64) -> Option<bool> {
        if !volts.is_finite() {
            return None;
        }
        let saving = self.state.is_saving();
        let next = if saving {
            volts < self.resume_v
        } else {
            volts < self.low_v
        };
        if next == saving {
            return None;
        }
        self.state.set(next, self.factor);
        if next {
            tracing::warn!(
                volts,
                threshold = self.low_v,
                "Battery low: sampling every interval × {} and MQTT publishing paused (readings are stored) until it is back at {} V",
                self.factor,
                self.resume_v
            );
        } else {
            tracing::info!(
                volts,
                "Battery recovered: sampling at the normal intervals; MQTT publishing resumes"
            );
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_between_the_two_thresholds() {
        let state = PowerState::default();
        let pause = state.watch_saving();
        let mut p = LowBatteryPolicy::new(11.8, 12.4, 10, state.clone());
        assert_eq!(state.interval_ms(60_000), 60_000);
        assert_eq!(p.update(12.6), None);
        assert_eq!(p.update(11.9), None);
        assert_eq!(p.update(11.7), Some(true));
        assert!(state.is_saving());
        assert!(*pause.borrow(), "the publisher's pause follows the policy");
        assert_eq!(state.interval_ms(60_000), 600_000);
        // Between the thresholds it stays saving: no flapping.
        assert_eq!(p.update(12.0), None);
        assert_eq!(p.update(12.39), None);
        assert_eq!(p.update(f64::NAN), None);
        assert_eq!(p.update(12.4), Some(false));
        assert!(!state.is_saving());
        assert!(!*pause.borrow());
        assert_eq!(p.update(11.9), None);
    }
}
