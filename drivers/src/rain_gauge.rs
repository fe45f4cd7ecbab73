//! Tipping-bucket rain gauge: debounced tips → millimetres.
//!
//! The bucket's reed switch is wired like the anemometer's (GPIO with pull-up to GND), so the
//! same [`PulseCounter`] debounces it. A tip that follows the previous accepted tip sooner than
//! `min_tip_interval_us` is physically implausible (the bucket cannot refill that fast; a
//! knock or a loose wire is likelier) and is flagged, not added. Rain rate and "rain today"
//! are the pipeline's business.
//!
//! The SparkFun/Argent 80422 gauge tips once per 0.2794 mm (0.011 in) of rain
//! ([`DEFAULT_MM_PER_TIP`]); calibrate yours by pouring a known volume through it.

use crate::pulse::{Edge, PulseCounter};

/// Rain per tip of the SparkFun/Argent 80422 gauge, mm.
pub const DEFAULT_MM_PER_TIP: f64 = 0.2794;

/// One debounced bucket tip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tip {
    /// When the tip happened (the edge's timestamp), µs.
    pub ts_us: u64,
    /// `false` when it came sooner than the minimum interval after the previous accepted tip;
    /// such a tip is reported but not added to the total.
    pub plausible: bool,
}

/// Tipping-bucket state machine.
#[derive(Clone, Debug)]
pub struct RainGauge {
    pulses: PulseCounter,
    mm_per_tip: f64,
    min_tip_interval_us: u64,
    last_accepted_us: Option<u64>,
    total: u64,
}

impl RainGauge {
    /// A gauge with `mm_per_tip`, a switch debounce and a minimum plausible tip interval.
    pub fn new(mm_per_tip: f64, debounce_us: u32, min_tip_interval_us: u64) -> Self {
        Self {
            pulses: PulseCounter::new(debounce_us),
            mm_per_tip,
            min_tip_interval_us,
            last_accepted_us: None,
            total: 0,
        }
    }

    /// Feed one raw edge; returns a [`Tip`] when the edge completes a debounced closure.
    pub fn edge(&mut self, e: Edge) -> Option<Tip> {
        let ts_us = self.pulses.edge(e)?;
        let plausible = match self.last_accepted_us {
            None => true,
            Some(prev) => ts_us.saturating_sub(prev) >= self.min_tip_interval_us,
        };
        if plausible {
            self.total += 1;
            self.last_accepted_us = Some(ts_us);
        }
        Some(Tip { ts_us, plausible })
    }

    /// Plausible tips since [`RainGauge::new`]; only ever increases.
    pub fn total_tips(&self) -> u64 {
        self.total
    }

    /// Millimetres of rain per tip.
    pub fn mm_per_tip(&self) -> f64 {
        self.mm_per_tip
    }

    /// Total rain in mm of the plausible tips.
    pub fn total_mm(&self) -> f64 {
        tips_to_mm(self.total, self.mm_per_tip)
    }
}

/// Rain in mm for `tips` tips: `tips as f64 * mm_per_tip`, a single multiplication, so totals
/// are exact to the f64 rounding of one product (no accumulated error).
pub fn tips_to_mm(tips: u64, mm_per_tip: f64) -> f64 {
    tips as f64 * mm_per_tip
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
    fn tips_and_implausible_tips() {
        let mut g = RainGauge::new(DEFAULT_MM_PER_TIP, 1000, 500_000);
        assert_eq!(
            g.edge(fall(1_000_000)),
            Some(Tip {
                ts_us: 1_000_000,
                plausible: true
            })
        );
        assert_eq!(g.edge(rise(1_000_300)), None); // bounce
        assert_eq!(g.edge(rise(1_100_000)), None);
        // 200 ms after the accepted tip: flagged, not added.
        assert_eq!(
            g.edge(fall(1_200_000)),
            Some(Tip {
                ts_us: 1_200_000,
                plausible: false
            })
        );
        assert_eq!(g.edge(rise(1_300_000)), None);
        // 600 ms after the accepted tip (not after the implausible one): accepted.
        assert_eq!(
            g.edge(fall(1_600_000)),
            Some(Tip {
                ts_us: 1_600_000,
                plausible: true
            })
        );
        assert_eq!(g.total_tips(), 2);
        assert_eq!(g.mm_per_tip(), DEFAULT_MM_PER_TIP);
        assert_eq!(g.total_mm(), 2.0 * DEFAULT_MM_PER_TIP);
    }

    #[test]
    fn mm_is_one_product() {
        assert_eq!(tips_to_mm(0, DEFAULT_MM_PER_TIP), 0.0);
        assert_eq!(tips_to_mm(1000, DEFAULT_MM_PER_TIP), 1000.0 * 0.2794);
        assert!((tips_to_mm(1000, DEFAULT_MM_PER_TIP) - 279.4).abs() < 1e-9);
    }
}
