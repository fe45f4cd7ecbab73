//! Analog pH probes (a glass electrode behind an amplifier board, read through an ADC):
//! volts → pH with temperature compensation, and 1–3 point calibration.
//!
//! # Model
//!
//! A glass electrode follows the Nernst equation around its isopotential point, taken as
//! pH 7: the voltage changes by `S(T)` per pH unit, and the slope is proportional to absolute
//! temperature, `S(T) = S25 · (T + 273.15) / 298.15` (≈ −59.16 mV/pH at 25 °C for a bare
//! electrode; an amplifier board scales and offsets it and may flip its sign). So
//!
//! ```text
//! pH = 7 + (V − V7) / S(T)
//! ```
//!
//! Temperature compensation rescales the slope around pH 7; it does **not** scale the whole
//! voltage. Measure the solution's temperature (a DS18B20 beside the probe) and pass it in.
//!
//! # Calibration
//!
//! [`calibrate`] takes the buffer readings, each with the temperature it was taken at, and
//! solves for `V7` and `S25` (slopes normalised to 25 °C): one point shifts the offset and
//! keeps the default slope, two points give the exact line, three or more a least-squares fit.

use core::fmt;

/// Ideal Nernst slope at 25 °C for a bare electrode, V/pH (negative: the voltage falls as pH
/// rises). Amplifier boards have their own slope; calibrate with two buffers.
pub const NERNST_SLOPE_25: f64 = -0.059_16;

/// Reference temperature of the slope, K.
const T_REF_K: f64 = 298.15;
/// 0 °C in K.
const ZERO_C_K: f64 = 273.15;

/// A probe's calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhCalibration {
    /// Voltage at pH 7.
    pub neutral_volts: f64,
    /// Slope at 25 °C, V per pH unit (signed).
    pub slope_volts_per_ph: f64,
}

/// One buffer reading used for calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalPointV {
    /// The buffer's pH (at its temperature).
    pub ph: f64,
    /// Voltage read.
    pub volts: f64,
    /// Solution temperature, °C.
    pub temp_c: f64,
}

/// Why a calibration could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalError {
    /// No points given.
    NoPoints,
    /// A pH, voltage or temperature (or the default slope) is not a finite number, or a
    /// temperature is at or below absolute zero.
    NonFinite,
    /// The points do not determine a slope (same pH and temperature twice), or the fitted
    /// slope is zero.
    Degenerate,
}

impl fmt::Display for CalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalError::NoPoints => f.write_str("pH calibration needs at least one buffer reading"),
            CalError::NonFinite => {
                f.write_str("pH calibration reading is not a number; check the ADC and probe")
            }
            CalError::Degenerate => f.write_str(
                "pH calibration points do not determine a slope; use buffers of different pH \
                 (7 and 4, optionally 10)",
            ),
        }
    }
}

impl core::error::Error for CalError {}

/// Slope at `temp_c`: `S25 · (T + 273.15) / 298.15`.
pub fn slope_at(slope_25: f64, temp_c: f64) -> f64 {
    slope_25 * (temp_c + ZERO_C_K) / T_REF_K
}

/// pH from a voltage: `7 + (V − V7) / S(T)`. NaN when the slope is zero.
pub fn ph_from_volts(volts: f64, temp_c: f64, cal: &PhCalibration) -> f64 {
    let s = slope_at(cal.slope_volts_per_ph, temp_c);
    if s == 0.0 {
        return f64::NAN;
    }
    7.0 + (volts - cal.neutral_volts) / s
}

/// The voltage a probe with `cal` gives at `ph` and `temp_c` — the inverse of
/// [`ph_from_volts`], for the simulator.
pub fn volts_for_ph(ph: f64, temp_c: f64, cal: &PhCalibration) -> f64 {
    cal.neutral_volts + (ph - 7.0) * slope_at(cal.slope_volts_per_ph, temp_c)
}

/// Solve for `V7` and `S25` from buffer readings.
///
/// Model: `V = V7 + S25 · x` with `x = (pH − 7) · (T + 273.15) / 298.15`. One point: keep
/// `default_slope_25` and shift `V7` (exactly the reading for a pH 7 buffer). Two points: the
/// exact line through both. Three or more: least squares.
pub fn calibrate(points: &[CalPointV], default_slope_25: f64) -> Result<PhCalibration, CalError> {
    if points.is_empty() {
        return Err(CalError::NoPoints);
    }
    for p in points {
        if !(p.ph.is_finite() && p.volts.is_finite() && p.temp_c.is_finite())
            || p.temp_c <= -ZERO_C_K
        {
            return Err(CalError::NonFinite);
        }
    }
    let x = |p: &CalPointV| (p.ph - 7.0) * (p.temp_c + ZERO_C_K) / T_REF_K;

    let (v7, s25) = match points {
        [p] => {
            if !default_slope_25.is_finite() {
                return Err(CalError::NonFinite);
            }
            (p.volts - default_slope_25 * x(p), default_slope_25)
        }
        [a, b] => {
            let dx = x(a) - x(b);
            if dx == 0.0 {
                return Err(CalError::Degenerate);
            }
            let s = (a.volts - b.volts) / dx;
            (a.volts - s * x(a), s)
        }
        _ => {
            let n = points.len() as f64;
            let mx = points.iter().map(x).sum::<f64>() / n;
            let mv = points.iter().map(|p| p.volts).sum::<f64>() / n;
            let sxx: f64 = points.iter().map(|p| (x(p) - mx) * (x(p) - mx)).sum();
            let sxv: f64 = points.iter().map(|p| (x(p) - mx) * (p.volts - mv)).sum();
            if sxx == 0.0 {
                return Err(CalError::Degenerate);
            }
            let s = sxv / sxx;
            (mv - s * mx, s)
        }
    };
    if s25 == 0.0 || !s25.is_finite() || !v7.is_finite() {
        return Err(CalError::Degenerate);
    }
    Ok(PhCalibration {
        neutral_volts: v7,
        slope_volts_per_ph: s25,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(a: f64, b: f64, tol: f64) -> bool {
        let d = a - b;
        d <= tol && d >= -tol
    }

    fn pt(ph: f64, volts: f64, temp_c: f64) -> CalPointV {
        CalPointV { ph, volts, temp_c }
    }

    #[test]
    fn two_point_at_25c_by_hand() {
        // pH 7 → 1.500 V, pH 4 → 1.680 V at 25 °C:
        // S25 = (1.500 − 1.680) / (0 − (−3)) = −0.060 V/pH, V7 = 1.500 V.
        let cal = calibrate(&[pt(7.0, 1.5, 25.0), pt(4.0, 1.68, 25.0)], NERNST_SLOPE_25).unwrap();
        assert!(near(cal.slope_volts_per_ph, -0.06, 1e-12));
        assert!(near(cal.neutral_volts, 1.5, 1e-12));
        // 1.560 V at 25 °C: pH = 7 + 0.060 / −0.060 = 6.00.
        assert!(near(ph_from_volts(1.56, 25.0, &cal), 6.0, 1e-12));
    }

    #[test]
    fn two_point_at_5c_by_hand() {
        // At 5 °C the slope is S25 · 278.15 / 298.15 = −0.060 · 0.932920 = −0.05597518 V/pH,
        // so a probe with S25 = −0.060 reads pH 4 at 1.500 + 3 · 0.05597518 = 1.667925541 V.
        let cal = calibrate(
            &[pt(7.0, 1.5, 5.0), pt(4.0, 1.667_925_541, 5.0)],
            NERNST_SLOPE_25,
        )
        .unwrap();
        assert!(near(cal.slope_volts_per_ph, -0.06, 1e-9));
        assert!(near(cal.neutral_volts, 1.5, 1e-12));
        // Reading the pH 4 voltage at 25 °C instead would give 7 − 0.16792554 / 0.06 = 4.2012.
        assert!(near(
            ph_from_volts(1.667_925_541, 25.0, &cal),
            4.201_24,
            1e-4
        ));
        assert!(near(ph_from_volts(1.667_925_541, 5.0, &cal), 4.0, 1e-7));
    }

    #[test]
    fn temperature_compensation_pivots_on_ph7() {
        let cal = PhCalibration {
            neutral_volts: 2.5,
            slope_volts_per_ph: -0.18,
        };
        for t in [0.0, 5.0, 25.0, 40.0] {
            assert_eq!(ph_from_volts(2.5, t, &cal), 7.0);
        }
        // Not a scaling of the whole voltage: the same voltage off neutral reads further from
        // 7 when cold.
        assert!(ph_from_volts(2.86, 5.0, &cal) < ph_from_volts(2.86, 25.0, &cal));
    }

    #[test]
    fn inverse_round_trips() {
        let cal = PhCalibration {
            neutral_volts: 1.52,
            slope_volts_per_ph: -0.0575,
        };
        for ph in [2.0, 4.0, 7.0, 8.1, 10.0, 12.5] {
            for t in [2.0, 18.0, 25.0, 35.0] {
                assert!(near(
                    ph_from_volts(volts_for_ph(ph, t, &cal), t, &cal),
                    ph,
                    1e-12
                ));
            }
        }
    }

    #[test]
    fn one_point() {
        let s = -0.058;
        let cal = calibrate(&[pt(7.0, 1.49, 20.0)], s).unwrap();
        assert_eq!(cal.neutral_volts, 1.49);
        assert_eq!(cal.slope_volts_per_ph, s);
        // A pH 4 buffer shifts the offset and keeps the slope.
        let cal = calibrate(&[pt(4.0, 1.67, 25.0)], s).unwrap();
        assert!(near(cal.neutral_volts, 1.67 + 3.0 * s, 1e-12));
        assert!(near(ph_from_volts(1.67, 25.0, &cal), 4.0, 1e-12));
    }

    #[test]
    fn three_points_least_squares() {
        let truth = PhCalibration {
            neutral_volts: 1.5,
            slope_volts_per_ph: -0.06,
        };
        let pts = [
            pt(4.0, volts_for_ph(4.0, 22.0, &truth) + 0.001, 22.0),
            pt(7.0, volts_for_ph(7.0, 22.0, &truth), 22.0),
            pt(10.0, volts_for_ph(10.0, 22.0, &truth) - 0.001, 22.0),
        ];
        let cal = calibrate(&pts, NERNST_SLOPE_25).unwrap();
        assert!(near(cal.neutral_volts, 1.5, 1e-9));
        // Exact points would give −0.06; the ±1 mV residuals steepen it slightly.
        assert!(near(
            cal.slope_volts_per_ph,
            -0.06 - 0.002 / (6.0 * 295.15 / 298.15),
            1e-9
        ));
        // Exact data fit exactly.
        let exact: [CalPointV; 3] =
            [4.0, 7.0, 10.0].map(|ph| pt(ph, volts_for_ph(ph, 30.0, &truth), 30.0));
        let cal = calibrate(&exact, NERNST_SLOPE_25).unwrap();
        assert!(near(cal.slope_volts_per_ph, -0.06, 1e-12));
    }

    #[test]
    fn errors() {
        assert_eq!(calibrate(&[], NERNST_SLOPE_25), Err(CalError::NoPoints));
        assert_eq!(
            calibrate(&[pt(7.0, 1.5, 25.0), pt(7.0, 1.6, 25.0)], NERNST_SLOPE_25),
            Err(CalError::Degenerate)
        );
        assert_eq!(
            calibrate(&[pt(7.0, f64::NAN, 25.0)], NERNST_SLOPE_25),
            Err(CalError::NonFinite)
        );
        assert_eq!(
            calibrate(&[pt(7.0, 1.5, 25.0), pt(4.0, 1.5, 25.0)], NERNST_SLOPE_25),
            Err(CalError::Degenerate)
        );
        assert!(ph_from_volts(
            1.0,
            25.0,
            &PhCalibration {
                neutral_volts: 1.0,
                slope_volts_per_ph: 0.0
            }
        )
        .is_nan());
    }
}
