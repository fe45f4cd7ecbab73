//! Debounced edge counting for reed switches (anemometer cups, rain-gauge buckets).
//!
//! # Wiring
//!
//! A reed switch sits between a GPIO pin and GND; the pin's pull-up (internal or an external
//! 10 kΩ to 3.3 V) keeps the line **high** while the switch is open. A closure pulls the line
//! low, so a *falling* edge after a quiet period is one closure. The daemon reads timestamped
//! edges from the kernel GPIO character device and feeds them here; this module never touches
//! hardware, which keeps it testable and `no_std`.
//!
//! # Debouncing
//!
//! A reed switch bounces: one real closure shows up as a short burst of several edges. An
//! edge that comes less than `debounce_us` after the previous *raw* edge belongs to the same
//! burst and is ignored. A burst counts as one closure when its first edge is falling.
//!
//! Pick `debounce_us` longer than the bounce (typically well under 1 ms for a reed switch)
//! and shorter than the quietest gap between real edges at the fastest rate you expect. The
//! SparkFun/Argent anemometer at 200 km/h closes about 83 times per second (12 ms period), so
//! 1000 µs is a safe default.

/// One raw edge on a GPIO line, as reported by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Timestamp in microseconds (any monotonic epoch; must not decrease between edges).
    pub ts_us: u64,
    /// `true` for a low-to-high transition, `false` for high-to-low.
    pub rising: bool,
}

impl Edge {
    /// The line going low at `ts_us` (a reed switch closing against the pull-up).
    pub const fn falling(ts_us: u64) -> Edge {
        Edge {
            ts_us,
            rising: false,
        }
    }

    /// The line going high at `ts_us` (the switch opening).
    pub const fn rising(ts_us: u64) -> Edge {
        Edge {
            ts_us,
            rising: true,
        }
    }
}

/// Counts debounced switch closures from a stream of raw edges.
#[derive(Clone, Debug)]
pub struct PulseCounter {
    debounce_us: u32,
    last_raw_us: Option<u64>,
    count: u64,
}

impl PulseCounter {
    /// Create a counter that treats edges closer than `debounce_us` as contact bounce.
    pub fn new(debounce_us: u32) -> Self {
        Self {
            debounce_us,
            last_raw_us: None,
            count: 0,
        }
    }

    /// Feed one raw edge (timestamps non-decreasing).
    ///
    /// Returns `Some(ts_us)` when this edge starts a new debounced pulse: a falling edge
    /// (switch closure; the pull-up idles high) that comes at least `debounce_us` after the
    /// previous raw edge. Every other edge returns `None`. An edge whose timestamp is earlier
    /// than the previous one is treated as part of the current burst.
    pub fn edge(&mut self, e: Edge) -> Option<u64> {
        let new_burst = match self.last_raw_us {
            None => true,
            Some(prev) => e.ts_us.saturating_sub(prev) >= u64::from(self.debounce_us),
        };
        // Keep the latest timestamp so that a burst extends while the contact chatters.
        self.last_raw_us = Some(match self.last_raw_us {
            Some(prev) if prev > e.ts_us => prev,
            _ => e.ts_us,
        });
        if new_burst && !e.rising {
            self.count += 1;
            Some(e.ts_us)
        } else {
            None
        }
    }

    /// Closures counted since [`PulseCounter::new`].
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The debounce interval this counter was built with.
    pub fn debounce_us(&self) -> u32 {
        self.debounce_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fall(ts_us: u64) -> Edge {
        Edge::falling(ts_us)
    }
    fn rise(ts_us: u64) -> Edge {
        Edge::rising(ts_us)
    }

    #[test]
    fn clean_pulses_count_on_falling_edges() {
        let mut c = PulseCounter::new(1000);
        assert_eq!(c.edge(fall(10_000)), Some(10_000));
        assert_eq!(c.edge(rise(15_000)), None);
        assert_eq!(c.edge(fall(20_000)), Some(20_000));
        assert_eq!(c.count(), 2);
    }

    #[test]
    fn bounce_within_window_is_ignored() {
        let mut c = PulseCounter::new(1000);
        assert_eq!(c.edge(fall(0)), Some(0));
        assert_eq!(c.edge(rise(100)), None);
        assert_eq!(c.edge(fall(300)), None);
        assert_eq!(c.count(), 1);
    }

    #[test]
    fn a_burst_that_starts_rising_is_not_a_closure() {
        let mut c = PulseCounter::new(1000);
        assert_eq!(c.edge(rise(5_000)), None);
        assert_eq!(c.edge(fall(5_200)), None);
        assert_eq!(c.edge(rise(5_400)), None);
        assert_eq!(c.count(), 0);
    }

    #[test]
    fn chatter_extends_the_burst() {
        let mut c = PulseCounter::new(1000);
        // Each edge is 900 µs after the previous one: one long burst.
        for i in 0..10u64 {
            c.edge(Edge {
                ts_us: i * 900,
                rising: i % 2 == 1,
            });
        }
        assert_eq!(c.count(), 1);
    }

    #[test]
    fn exactly_debounce_apart_is_a_new_burst() {
        let mut c = PulseCounter::new(1000);
        c.edge(fall(0));
        c.edge(rise(500));
        assert_eq!(c.edge(fall(1500)), Some(1500));
    }

    #[test]
    fn backwards_timestamp_does_not_panic() {
        let mut c = PulseCounter::new(1000);
        c.edge(fall(5000));
        assert_eq!(c.edge(fall(10)), None);
        assert_eq!(c.count(), 1);
    }
}
