//! Resistor-network wind vane read through a voltage divider and an ADC.
//!
//! # Wiring
//!
//! A fixed resistor (`divider_ohms`, 10 kΩ in the SparkFun datasheet) runs from the ADC's
//! reference voltage to the ADC input node; the vane runs from that node to GND. The vane
//! closes one or two of its eight reed switches, selecting one of 16 resistances, so
//!
//! ```text
//! V = vref * R / (R + divider_ohms)
//! ```
//!
//! Power the divider from the ADC's own reference (3.3 V for an MCP3008 on the Pi) so that a
//! drifting supply cancels out.
//!
//! # Table
//!
//! Index `i` is `i * 22.5` degrees clockwise from north. [`SPARKFUN_80422_OHMS`] holds the
//! resistances from the SparkFun/Argent 80422 datasheet. Mount the vane with its "N" mark
//! pointing true north, or correct the offset in the daemon's calibration.
//!
//! Some adjacent entries are close together (67.5°/90°/112.5° are 891 Ω, 1 kΩ, 688 Ω), so
//! keep `tolerance_v` below half the smallest gap between table voltages; a reading farther
//! than that from every entry is reported as [`VaneError::Unmatched`] rather than guessed.

use core::fmt;

/// Vane resistances (Ω) of the SparkFun/Argent 80422 vane, index `i` = `i * 22.5°`.
pub const SPARKFUN_80422_OHMS: [f64; 16] = [
    33_000.0, 6_570.0, 8_200.0, 891.0, 1_000.0, 688.0, 2_200.0, 1_410.0, 3_900.0, 3_140.0,
    16_000.0, 14_120.0, 120_000.0, 42_120.0, 64_900.0, 21_880.0,
];

/// Degrees between adjacent table entries.
pub const STEP_DEG: f64 = 22.5;

/// The 16 divider voltages of a vane, one per compass point.
#[derive(Clone, Debug, PartialEq)]
pub struct VaneTable {
    volts: [f64; 16],
}

/// A vane voltage that matches no table entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VaneError {
    /// The nearest entry is farther than the tolerance.
    Unmatched {
        /// The voltage read.
        volts: f64,
        /// Direction of the nearest table entry, degrees.
        nearest_deg: f64,
        /// Distance to the nearest entry, volts (NaN for a NaN reading).
        distance_v: f64,
    },
}

impl fmt::Display for VaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaneError::Unmatched {
                volts,
                nearest_deg,
                distance_v,
            } => write!(
                f,
                "wind vane voltage {volts:.3} V matches no direction (nearest {nearest_deg}° is \
                 {distance_v:.3} V away); check the divider resistor, the ADC reference voltage \
                 and the vane cable"
            ),
        }
    }
}

impl core::error::Error for VaneError {}

impl VaneTable {
    /// Build the table from the 16 vane resistances, the fixed divider resistor and the
    /// reference voltage.
    pub fn new(resistors_ohm: &[f64; 16], divider_ohms: f64, vref: f64) -> Self {
        let mut volts = [0.0; 16];
        for (v, r) in volts.iter_mut().zip(resistors_ohm.iter()) {
            *v = vref * r / (r + divider_ohms);
        }
        Self { volts }
    }

    /// The SparkFun/Argent 80422 vane with a 10 kΩ divider at `vref`.
    pub fn sparkfun_80422(vref: f64) -> Self {
        Self::new(&SPARKFUN_80422_OHMS, 10_000.0, vref)
    }

    /// Divider voltage of entry `index` (`index * 22.5°`); the index wraps modulo 16.
    pub fn voltage(&self, index: usize) -> f64 {
        self.volts[index % 16]
    }

    /// Direction (degrees, 0 = N, clockwise) of the table voltage nearest to `volts`.
    ///
    /// Returns [`VaneError::Unmatched`] when the nearest entry is farther than `tolerance_v`
    /// (a NaN reading never matches).
    pub fn direction(&self, volts: f64, tolerance_v: f64) -> Result<f64, VaneError> {
        let mut best = 0usize;
        let mut best_d = f64::INFINITY;
        for (i, v) in self.volts.iter().enumerate() {
            let d = abs(v - volts);
            if d < best_d {
                best = i;
                best_d = d;
            }
        }
        if volts.is_nan() {
            best_d = f64::NAN;
        }
        let nearest_deg = best as f64 * STEP_DEG;
        if best_d <= tolerance_v {
            Ok(nearest_deg)
        } else {
            Err(VaneError::Unmatched {
                volts,
                nearest_deg,
                distance_v: best_d,
            })
        }
    }

    /// For the simulator: the voltage of the table entry nearest to `deg` (any angle; it is
    /// wrapped into 0..360).
    pub fn voltage_for_direction(&self, deg: f64) -> f64 {
        self.volts[index_for_direction(deg)]
    }
}

/// Table index nearest to `deg` (wrapped into 0..360; NaN and infinities give 0).
pub fn index_for_direction(deg: f64) -> usize {
    if !deg.is_finite() {
        return 0;
    }
    let steps = deg / STEP_DEG;
    // Round half up, then wrap into 0..16 without overflow for huge angles.
    let steps = steps - 16.0 * floor(steps / 16.0);
    let i = floor(steps + 0.5) as usize;
    i % 16
}

fn abs(x: f64) -> f64 {
    if x < 0.0 {
        -x
    } else {
        x
    }
}

fn floor(x: f64) -> f64 {
    if !x.is_finite() || abs(x) >= 4_503_599_627_370_496.0 {
        return x;
    }
    let t = x as i64 as f64;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Voltages printed in the SparkFun datasheet (5 V, 10 kΩ).
    const DATASHEET_V: [f64; 16] = [
        3.84, 1.98, 2.25, 0.41, 0.45, 0.32, 0.90, 0.62, 1.40, 1.19, 3.08, 2.93, 4.62, 4.04, 4.33,
        3.43,
    ];

    #[test]
    fn matches_datasheet_table() {
        let t = VaneTable::sparkfun_80422(5.0);
        for (i, v) in DATASHEET_V.iter().enumerate() {
            assert!(abs(t.voltage(i) - v) < 0.006, "entry {i}: {}", t.voltage(i));
        }
    }

    #[test]
    fn lookup_each_direction() {
        let t = VaneTable::sparkfun_80422(3.3);
        for i in 0..16 {
            let v = t.voltage(i);
            assert_eq!(t.direction(v + 0.005, 0.02), Ok(i as f64 * 22.5));
            assert_eq!(t.voltage_for_direction(i as f64 * 22.5), v);
        }
    }

    #[test]
    fn unmatched_reports_nearest() {
        let t = VaneTable::sparkfun_80422(5.0);
        match t.direction(4.95, 0.05) {
            Err(VaneError::Unmatched {
                nearest_deg,
                distance_v,
                ..
            }) => {
                assert_eq!(nearest_deg, 270.0);
                assert!(distance_v > 0.3);
            }
            other => panic!("{other:?}"),
        }
        assert!(t.direction(f64::NAN, 1.0).is_err());
    }

    #[test]
    fn direction_wraps() {
        assert_eq!(index_for_direction(359.0), 0);
        assert_eq!(index_for_direction(-22.5), 15);
        assert_eq!(index_for_direction(11.2), 0);
        assert_eq!(index_for_direction(11.25), 1);
        assert_eq!(index_for_direction(720.0 + 90.0), 4);
        assert_eq!(index_for_direction(1e300), index_for_direction(1e300));
        assert_eq!(index_for_direction(f64::NAN), 0);
    }
}
