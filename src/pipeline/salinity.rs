//! Practical salinity from conductivity: the UNESCO Practical Salinity Scale 1978
//! (PSS-78), as given in Fofonoff & Millard (1983), *Algorithms for computation of
//! fundamental properties of seawater*, UNESCO Technical Papers in Marine Science 44,
//! pp. 6–12 (the `SAL78` algorithm and its check values).
//!
//! Salinity is a derived quantity (DESIGN: derived quantities live in the pipeline's
//! derived stage): every `conductivity` reading gives a `salinity` reading with the same
//! sensor id. Conductivity from an EZO-EC is *specific* conductance (compensated to 25 °C
//! with the water temperature it was given), so salinity is computed at 25 °C, the
//! practice for specific conductance; the pressure is `[derived] salinity_pressure_dbar`
//! (the probe's depth, 0 at the surface). PSS-78 is defined for 2–42 PSU; outside that
//! range the value is still computed and QC flags it.

use crate::reading::{Quantity, Reading};

/// Conductivity of standard sea water (S = 35, 15 °C, 0 dbar), µS/cm: C(35, 15, 0) =
/// 42.914 mS/cm.
pub const C_35_15_0_US_CM: f64 = 42_914.0;

/// Temperature at which an EZO-EC's compensated conductivity is given, °C.
pub const SPECIFIC_CONDUCTANCE_T_C: f64 = 25.0;

const A: [f64; 6] = [0.0080, -0.1692, 25.3851, 14.0941, -7.0261, 2.7081];
const B: [f64; 6] = [0.0005, -0.0056, -0.0066, -0.0375, 0.0636, -0.0144];
const C: [f64; 5] = [
    0.676_609_7,
    2.005_64e-2,
    1.104_259e-4,
    -6.9698e-7,
    1.0031e-9,
];
const D: [f64; 4] = [3.426e-2, 4.464e-4, 4.215e-1, -3.107e-3];
const E: [f64; 3] = [2.070e-5, -6.370e-10, 3.989e-15];
const K: f64 = 0.0162;

/// Practical salinity (PSU) from the conductivity ratio `r` = C(S,t,p)/C(35,15,0), the
/// temperature `t68` (°C, IPTS-68, as the 1983 report uses) and the pressure `p` (dbar).
/// `None` for a ratio that is not positive or not finite.
pub fn pss78_ratio_t68(r: f64, t68: f64, p: f64) -> Option<f64> {
    if !(r.is_finite() && r > 0.0 && t68.is_finite() && p.is_finite()) {
        return None;
    }
    let rt_t = C[0] + t68 * (C[1] + t68 * (C[2] + t68 * (C[3] + t68 * C[4])));
    let rp = 1.0
        + p * (E[0] + p * (E[1] + p * E[2]))
            / (1.0 + D[0] * t68 + D[1] * t68 * t68 + (D[2] + D[3] * t68) * r);
    let rt = r / (rp * rt_t);
    if rt <= 0.0 {
        return None;
    }
    let x = rt.sqrt();
    let poly = |k: &[f64; 6]| k.iter().rev().fold(0.0, |acc, c| acc * x + c);
    let dt = t68 - 15.0;
    Some(poly(&A) + dt / (1.0 + K * dt) * poly(&B))
}

/// Practical salinity (PSU) from conductivity (µS/cm) measured at `t90` (°C, ITS-90) and
/// pressure `p` (dbar).
pub fn salinity(conductivity_us_cm: f64, t90: f64, p: f64) -> Option<f64> {
    // ITS-90 to IPTS-68 for the PSS-78 coefficients.
    pss78_ratio_t68(conductivity_us_cm / C_35_15_0_US_CM, t90 * 1.00024, p)
}

/// The derived stage's salinity family: one `salinity` reading per usable
/// `conductivity` reading.
#[derive(Debug, Clone)]
pub struct Salinity {
    /// Pressure at the probe, dbar.
    pub pressure_dbar: f64,
}

impl Salinity {
    /// Appends the salinity of `r` (a conductivity reading) to `out`.
    pub fn feed(&self, r: &Reading, out: &mut Vec<Reading>) {
        if r.quantity != Quantity::Conductivity {
            return;
        }
        let Some(c) = super::usable(r) else { return };
        if let Some(s) = salinity(c, SPECIFIC_CONDUCTANCE_T_C, self.pressure_dbar) {
            out.push(Reading::new(r.ts, &r.sensor, Quantity::Salinity, s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pss78_check_value_ratio_one_at_15_c_is_35() {
        let s = pss78_ratio_t68(1.0, 15.0, 0.0).unwrap();
        assert!((s - 35.0).abs() < 1e-6, "{s}");
        // Standard sea water's conductivity gives 35 too (ITS-90 15 °C is 15.0036 °C68).
        let s = salinity(C_35_15_0_US_CM, 15.0 / 1.00024, 0.0).unwrap();
        assert!((s - 35.0).abs() < 1e-6, "{s}");
    }

    /// Fofonoff & Millard (1983), UNESCO Technical Papers in Marine Science 44, the
    /// check values of SAL78: (R, T68, P) → S.
    #[test]
    fn pss78_unesco_1983_check_values() {
        for (r, t, p, want) in [
            (1.0, 15.0, 0.0, 35.000000),
            (1.2, 20.0, 2000.0, 37.245628),
            (0.65, 5.0, 1500.0, 27.995347),
        ] {
            let s = pss78_ratio_t68(r, t, p).unwrap();
            assert!((s - want).abs() < 1e-5, "R={r} T={t} P={p}: {s} != {want}");
        }
    }

    #[test]
    fn sea_water_specific_conductance_is_about_35() {
        // 53 000 µS/cm at 25 °C is the usual sea-water calibration standard (~35 PSU).
        let s = salinity(53_000.0, 25.0, 0.0).unwrap();
        assert!((34.0..36.5).contains(&s), "{s}");
        assert_eq!(salinity(0.0, 25.0, 0.0), None);
        assert_eq!(salinity(f64::NAN, 25.0, 0.0), None);
    }

    #[test]
    fn conductivity_readings_derive_salinity() {
        let st = Salinity { pressure_dbar: 0.0 };
        let mut out = Vec::new();
        st.feed(
            &Reading::new(1_000, &"ec".into(), Quantity::Conductivity, 53_000.0),
            &mut out,
        );
        st.feed(
            &Reading::new(1_000, &"ec".into(), Quantity::Ph, 8.1),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].quantity, Quantity::Salinity);
        assert_eq!(&*out[0].sensor, "ec");
    }
}
