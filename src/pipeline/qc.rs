//! Quality control: per-quantity min/max from `[qc]`. Out-of-range readings are flagged
//! `out_of_range` and kept; non-finite values become `sensor_error` with no value.

use crate::config::QcConfig;
use crate::reading::{Flags, Reading};

/// The QC stage.
pub struct Qc {
    config: QcConfig,
}

impl Qc {
    /// QC with the configured limits.
    pub fn new(config: &QcConfig) -> Qc {
        Qc {
            config: config.clone(),
        }
    }

    /// Sets the reading's flags; never removes it.
    pub fn check(&self, r: &mut Reading) {
        let Some(v) = r.value else {
            return;
        };
        if !v.is_finite() {
            r.value = None;
            r.flags.insert(Flags::SENSOR_ERROR);
            return;
        }
        let l = self.config.limits(r.quantity);
        if v < l.min || v > l.max {
            r.flags.insert(Flags::OUT_OF_RANGE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Quantity, SensorId};
    use std::sync::Arc;

    #[test]
    fn flags_and_keeps() {
        let qc = Qc::new(&QcConfig::default());
        let s: SensorId = Arc::from("t");
        let mut hot = Reading::new(0, &s, Quantity::AirTemperature, 85.0);
        qc.check(&mut hot);
        assert_eq!(hot.flags, Flags::OUT_OF_RANGE);
        assert_eq!(hot.value, Some(85.0));
        let mut ok = Reading::new(0, &s, Quantity::AirTemperature, 20.0);
        qc.check(&mut ok);
        assert!(ok.flags.is_ok());
        let mut nan = Reading::new(0, &s, Quantity::Ph, f64::NAN);
        qc.check(&mut nan);
        assert_eq!(nan.flags, Flags::SENSOR_ERROR);
        assert_eq!(nan.value, None);
    }
}
