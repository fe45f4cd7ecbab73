//! Corrections of a sensor quantity: an offset, a scale, or a polynomial, applied by the
//! pipeline before QC (see [`crate::pipeline::correct`]) and recorded in the store's
//! calibrations table with their time.
//!
//! One shape, [`CorrectionSpec`], is both a `[[sensor]]` entry's `correction.<quantity>`
//! table and the payload of a `correction` record, so what the config said and what the
//! store holds are compared field by field.
//!
//! Every correction can be undone ([`Correction::invert`]): the stored value is the
//! corrected one, and the uncorrected value is recovered from it and the record. That is
//! why a correction that cannot be undone is refused where it is set ([`Correction::new`]):
//! a scale of 0, a constant polynomial, or a polynomial that is not strictly monotonic over
//! the range it was fitted on. Outside that range a polynomial continues as the straight
//! line of its slope at the nearer end, so it stays monotonic (and invertible) for every
//! value a sensor can send.
//!
//! `wind_direction` takes an offset only (a vane whose north mark is turned), and the
//! result wraps into 0–360°.

use serde::{Deserialize, Serialize};

use crate::reading::Quantity;

/// The highest polynomial degree accepted (a cubic: what sensor calibration sheets give).
pub const MAX_DEGREE: usize = 3;

/// Record kind of a correction (set or cleared) in the calibrations table.
pub const KIND_CORRECTION: &str = "correction";
/// Record kind of the start of a range of readings corrected by one correction (or by
/// none): written by `run` when the correction it applies to a sensor quantity changes.
pub const KIND_APPLIED: &str = "correction_applied";

/// A correction as written: `corrected = raw × scale + offset`, or
/// `corrected = c0 + c1·raw + c2·raw² + c3·raw³` for `polynomial = [c0, c1, c2, c3]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CorrectionSpec {
    /// Added after scaling, in the quantity's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    /// Multiplies the raw value (1.05 for a rain gauge that tips 5 % light).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Coefficients from the constant term up (at most a cubic); not with offset or scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polynomial: Option<Vec<f64>>,
    /// The raw values the polynomial was fitted over, `[low, high]`; required for a
    /// polynomial of degree 2 or 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

/// A checked correction, ready to apply and to undo.
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    /// Coefficients from the constant term up (a linear correction has two).
    coeffs: Vec<f64>,
    /// Where a polynomial of degree ≥ 2 is itself; outside, its end tangents.
    range: Option<(f64, f64)>,
    /// Directions: add the offset modulo 360.
    wraps: bool,
}

fn eval(c: &[f64], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, k| acc * x + k)
}

fn slope(c: &[f64], x: f64) -> f64 {
    c.iter()
        .enumerate()
        .skip(1)
        .rev()
        .fold(0.0, |acc, (i, k)| acc * x + i as f64 * k)
}

impl Correction {
    /// Checks `spec` for quantity `q`; the error says what is wrong and how to fix it.
    pub fn new(q: Quantity, spec: &CorrectionSpec) -> Result<Correction, String> {
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!("`{name}` must be a finite number"))
            }
        };
        if let Some(p) = &spec.polynomial {
            if spec.offset.is_some() || spec.scale.is_some() {
                return Err("give either `polynomial` or `offset`/`scale`, not both (fold the offset into the polynomial's first coefficient)".into());
            }
            if q.is_direction() {
                return Err(format!(
                    "{} takes an offset only (the vane's north error in degrees)",
                    q.as_str()
                ));
            }
            if p.len() < 2 || p.len() > MAX_DEGREE + 1 {
                return Err(format!(
                    "`polynomial` needs 2 to {} coefficients, constant term first (e.g. [0.3, 1.02, 0.0004]); it has {}",
                    MAX_DEGREE + 1,
                    p.len()
                ));
            }
            for v in p {
                finite("polynomial", *v)?;
            }
            let mut coeffs = p.clone();
            while coeffs.len() > 2 && coeffs.last() == Some(&0.0) {
                coeffs.pop();
            }
            if coeffs.len() == 2 {
                if coeffs[1] == 0.0 {
                    return Err("a polynomial with no slope maps every reading to one value and cannot be undone: its second coefficient must not be 0".into());
                }
                return Ok(Correction {
                    coeffs,
                    range: None,
                    wraps: false,
                });
            }
            let Some([lo, hi]) = spec.range else {
                return Err("a polynomial of degree 2 or 3 needs `range = [low, high]`, the raw values it was fitted over (it must rise or fall steadily there)".into());
            };
            let (lo, hi) = (finite("range", lo)?, finite("range", hi)?);
            if lo >= hi {
                return Err(format!(
                    "`range = [{lo}, {hi}]`: the low end must be below the high end"
                ));
            }
            // The slope is at most a quadratic: its extremes on [lo, hi] are at the ends
            // or at its vertex.
            let mut points = vec![lo, hi];
            if coeffs.len() == 4 && coeffs[3] != 0.0 {
                let vertex = -2.0 * coeffs[2] / (6.0 * coeffs[3]);
                if vertex > lo && vertex < hi {
                    points.push(vertex);
                }
            }
            let slopes: Vec<f64> = points.iter().map(|x| slope(&coeffs, *x)).collect();
            let rising = slopes.iter().all(|s| *s > 0.0);
            let falling = slopes.iter().all(|s| *s < 0.0);
            if !rising && !falling {
                let (x, _) = points
                    .iter()
                    .zip(&slopes)
                    .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .unwrap_or((&lo, &0.0));
                return Err(format!(
                    "the polynomial turns within `range = [{lo}, {hi}]` (its slope is about 0 near {x:.4}), so two raw values would give one corrected value and the raw value could not be recovered: fit one that rises or falls steadily over the range, or narrow the range"
                ));
            }
            return Ok(Correction {
                coeffs,
                range: Some((lo, hi)),
                wraps: false,
            });
        }
        if spec.range.is_some() {
            return Err("`range` goes with a `polynomial` only".into());
        }
        let offset = spec.offset.map(|v| finite("offset", v)).transpose()?;
        let scale = spec.scale.map(|v| finite("scale", v)).transpose()?;
        if offset.is_none() && scale.is_none() {
            return Err("give `offset`, `scale` or `polynomial` (e.g. offset = -1.2)".into());
        }
        if scale == Some(0.0) {
            return Err("`scale = 0` would turn every reading into the offset and cannot be undone: use the factor the sensor is off by, e.g. scale = 1.05".into());
        }
        if q.is_direction() && scale.is_some() {
            return Err(format!(
                "{} takes an offset only (the vane's north error in degrees)",
                q.as_str()
            ));
        }
        Ok(Correction {
            coeffs: vec![offset.unwrap_or(0.0), scale.unwrap_or(1.0)],
            range: None,
            wraps: q.is_direction(),
        })
    }

    /// A correction from two (or one) points: `(raw, reference)` pairs, the sensor's value
    /// beside a reference instrument's. One point gives an offset; two, a scale and offset.
    pub fn spec_from_points(points: &[(f64, f64)]) -> Result<CorrectionSpec, String> {
        for (raw, reference) in points {
            if !raw.is_finite() || !reference.is_finite() {
                return Err("every point needs two finite numbers, RAW=REFERENCE".into());
            }
        }
        match points {
            [(raw, reference)] => Ok(CorrectionSpec {
                offset: Some(reference - raw),
                ..CorrectionSpec::default()
            }),
            [(r1, t1), (r2, t2)] => {
                if r1 == r2 {
                    return Err(format!(
                        "both points have the raw value {r1}: take the second one at another temperature, pressure or level"
                    ));
                }
                let scale = (t2 - t1) / (r2 - r1);
                Ok(CorrectionSpec {
                    offset: Some(t1 - scale * r1),
                    scale: Some(scale),
                    ..CorrectionSpec::default()
                })
            }
            _ => Err(format!(
                "give one point (an offset) or two (a scale and offset), not {}",
                points.len()
            )),
        }
    }

    /// The corrected value of `raw`.
    pub fn apply(&self, raw: f64) -> f64 {
        if self.wraps {
            return crate::reading::compass(raw + self.coeffs[0]);
        }
        match self.range {
            Some((lo, _)) if raw < lo => {
                eval(&self.coeffs, lo) + slope(&self.coeffs, lo) * (raw - lo)
            }
            Some((_, hi)) if raw > hi => {
                eval(&self.coeffs, hi) + slope(&self.coeffs, hi) * (raw - hi)
            }
            _ => eval(&self.coeffs, raw),
        }
    }

    /// The raw value that [`apply`](Correction::apply) turned into `corrected`.
    pub fn invert(&self, corrected: f64) -> f64 {
        if self.wraps {
            return crate::reading::compass(corrected - self.coeffs[0]);
        }
        let Some((lo, hi)) = self.range else {
            return (corrected - self.coeffs[0]) / self.coeffs[1];
        };
        let (ylo, yhi) = (eval(&self.coeffs, lo), eval(&self.coeffs, hi));
        let rising = yhi > ylo;
        let below = if rising {
            corrected < ylo
        } else {
            corrected > ylo
        };
        let above = if rising {
            corrected > yhi
        } else {
            corrected < yhi
        };
        if below {
            return lo + (corrected - ylo) / slope(&self.coeffs, lo);
        }
        if above {
            return hi + (corrected - yhi) / slope(&self.coeffs, hi);
        }
        // Monotonic on [lo, hi]: bisection converges to the one root.
        let (mut a, mut b) = (lo, hi);
        for _ in 0..200 {
            let m = 0.5 * (a + b);
            if m <= a || m >= b {
                break;
            }
            let ym = eval(&self.coeffs, m);
            if (ym < corrected) == rising {
                a = m;
            } else {
                b = m;
            }
        }
        0.5 * (a + b)
    }
}

/// The one rule for a correction of sensor `sensor` (which measures `measured`), shared
/// by `validate`, `run` and `anemone calibrate correction`.
pub fn check(
    sensor: &str,
    measured: &[Quantity],
    q: Quantity,
    spec: &CorrectionSpec,
) -> Result<Correction, String> {
    if !measured.contains(&q) {
        let names: Vec<&str> = measured.iter().map(|m| m.as_str()).collect();
        return Err(format!(
            "sensor \"{sensor}\" does not measure {}: correct one of {} (derived quantities follow from the corrected ones)",
            q.as_str(),
            names.join(", ")
        ));
    }
    Correction::new(q, spec)
}

/// A `correction` record's payload: which quantity, who set it, and the correction (or
/// `clear`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorrectionRecord {
    /// The quantity corrected.
    pub quantity: Quantity,
    /// `config` or `calibrate`.
    pub source: String,
    /// True when this record ends the correction (no correction from then on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear: bool,
    /// The correction (empty when cleared).
    #[serde(flatten)]
    pub spec: CorrectionSpec,
}

/// Source name of corrections set in the config file.
pub const SOURCE_CONFIG: &str = "config";
/// Source name of corrections set with `anemone calibrate correction`.
pub const SOURCE_CALIBRATE: &str = "calibrate";

/// A `correction_applied` record's payload: from its time on, readings of `quantity` were
/// stored corrected by calibration record `calibration` (none: uncorrected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedRecord {
    /// The quantity.
    pub quantity: Quantity,
    /// The `correction` record's id, or null.
    pub calibration: Option<i64>,
}

/// Which correction produced each stored reading of one sensor: the `correction_applied`
/// ranges and the corrections they name, built from the sensor's calibration records.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Per quantity: (from ts, correction id and correction), in time order.
    ranges: std::collections::HashMap<Quantity, Vec<Range>>,
}

/// From this time on (ms), readings were stored corrected by this record (id and
/// correction), or uncorrected.
type Range = (i64, Option<(i64, Correction)>);

impl Timeline {
    /// Builds the timeline from `(id, ts, kind, payload)` records, oldest first.
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = (i64, i64, &'a str, &'a serde_json::Value)>,
    ) -> Timeline {
        let mut corrections = std::collections::HashMap::new();
        let mut t = Timeline::default();
        // Corrections first: a range may start before the record it names was made (a
        // simulated run on a past day applying a correction recorded today).
        let records: Vec<_> = records.into_iter().collect();
        for (id, _, kind, payload) in &records {
            if *kind == KIND_CORRECTION {
                if let Ok(r) = serde_json::from_value::<CorrectionRecord>((*payload).clone()) {
                    if let (false, Ok(c)) = (r.clear, Correction::new(r.quantity, &r.spec)) {
                        corrections.insert(*id, c);
                    }
                }
            }
        }
        for (_, ts, kind, payload) in records {
            if kind != KIND_APPLIED {
                continue;
            }
            if let Ok(a) = serde_json::from_value::<AppliedRecord>(payload.clone()) {
                let c = a
                    .calibration
                    .and_then(|cid| corrections.get(&cid).map(|c| (cid, c.clone())));
                t.ranges.entry(a.quantity).or_default().push((ts, c));
            }
        }
        for v in t.ranges.values_mut() {
            v.sort_by_key(|(ts, _)| *ts);
        }
        t
    }

    /// The correction (record id and correction) a reading of `q` at `ts` was stored
    /// with; `None` when it was stored uncorrected.
    pub fn at(&self, q: Quantity, ts: i64) -> Option<(i64, &Correction)> {
        let ranges = self.ranges.get(&q)?;
        let i = ranges.partition_point(|(from, _)| *from <= ts);
        let (_, c) = ranges.get(i.checked_sub(1)?)?;
        c.as_ref().map(|(id, c)| (*id, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(offset: Option<f64>, scale: Option<f64>) -> CorrectionSpec {
        CorrectionSpec {
            offset,
            scale,
            ..CorrectionSpec::default()
        }
    }

    #[test]
    fn offset_and_scale_apply_and_invert() {
        let c = Correction::new(Quantity::Rain, &spec(Some(0.1), Some(1.05))).unwrap();
        assert!((c.apply(2.0) - 2.2).abs() < 1e-12);
        assert!((c.invert(2.2) - 2.0).abs() < 1e-12);
        let t = Correction::new(Quantity::AirTemperature, &spec(Some(-1.2), None)).unwrap();
        assert!((t.apply(21.7) - 20.5).abs() < 1e-12);
    }

    #[test]
    fn refuses_what_cannot_be_undone() {
        let e = Correction::new(Quantity::Rain, &spec(None, Some(0.0))).unwrap_err();
        assert!(e.contains("scale = 0"), "{e}");
        let e = Correction::new(Quantity::Rain, &spec(None, None)).unwrap_err();
        assert!(e.contains("offset"), "{e}");
        let flat = CorrectionSpec {
            polynomial: Some(vec![3.0, 0.0]),
            ..CorrectionSpec::default()
        };
        assert!(Correction::new(Quantity::Rain, &flat).is_err());
        // x² turns at 0, inside [-10, 10].
        let turning = CorrectionSpec {
            polynomial: Some(vec![0.0, 0.0, 1.0]),
            range: Some([-10.0, 10.0]),
            ..CorrectionSpec::default()
        };
        let e = Correction::new(Quantity::AirTemperature, &turning).unwrap_err();
        assert!(e.contains("turns"), "{e}");
        let no_range = CorrectionSpec {
            polynomial: Some(vec![0.0, 1.0, 0.001]),
            ..CorrectionSpec::default()
        };
        assert!(Correction::new(Quantity::AirTemperature, &no_range)
            .unwrap_err()
            .contains("range"));
        // A cubic whose slope dips below zero between the ends (vertex check).
        let dip = CorrectionSpec {
            polynomial: Some(vec![0.0, 1.0, -3.0, 1.0]),
            range: Some([0.0, 3.0]),
            ..CorrectionSpec::default()
        };
        assert!(Correction::new(Quantity::AirTemperature, &dip).is_err());
        let both = CorrectionSpec {
            offset: Some(1.0),
            polynomial: Some(vec![0.0, 1.0]),
            ..CorrectionSpec::default()
        };
        assert!(Correction::new(Quantity::AirTemperature, &both).is_err());
        assert!(Correction::new(Quantity::WindDirection, &spec(None, Some(2.0))).is_err());
        assert!(Correction::new(Quantity::AirTemperature, &spec(Some(f64::NAN), None)).is_err());
    }

    #[test]
    fn polynomial_inverts_inside_and_outside_its_range() {
        let s = CorrectionSpec {
            polynomial: Some(vec![0.3, 1.02, 0.0004, -0.000002]),
            range: Some([-30.0, 50.0]),
            ..CorrectionSpec::default()
        };
        let c = Correction::new(Quantity::AirTemperature, &s).unwrap();
        for raw in [-80.0, -30.0, -12.5, 0.0, 21.7, 49.9, 50.0, 70.0] {
            let y = c.apply(raw);
            assert!(
                (c.invert(y) - raw).abs() < 1e-9,
                "raw {raw}: {}",
                c.invert(y)
            );
        }
        // Continuous at the ends.
        assert!((c.apply(50.0 + 1e-9) - c.apply(50.0)).abs() < 1e-6);
    }

    #[test]
    fn directions_wrap() {
        let c = Correction::new(Quantity::WindDirection, &spec(Some(15.0), None)).unwrap();
        assert_eq!(c.apply(350.0), 5.0);
        assert_eq!(c.invert(5.0), 350.0);
        assert_eq!(c.invert(c.apply(10.0)), 10.0);
        // A raw direction that the offset takes a hair below north is north, never 360.
        let c = Correction::new(
            Quantity::WindDirection,
            &spec(Some(-5.000000000000001), None),
        )
        .unwrap();
        assert_eq!(c.apply(5.0), 0.0);
    }

    #[test]
    fn points_give_offset_or_line() {
        let one = Correction::spec_from_points(&[(21.2, 20.0)]).unwrap();
        assert!((one.offset.unwrap() + 1.2).abs() < 1e-12);
        assert_eq!(one.scale, None);
        let two = Correction::spec_from_points(&[(10.0, 9.0), (30.0, 30.0)]).unwrap();
        let c = Correction::new(Quantity::AirTemperature, &two).unwrap();
        assert!((c.apply(10.0) - 9.0).abs() < 1e-12);
        assert!((c.apply(30.0) - 30.0).abs() < 1e-12);
        assert!(Correction::spec_from_points(&[(1.0, 2.0), (1.0, 3.0)]).is_err());
        assert!(Correction::spec_from_points(&[]).is_err());
    }

    #[test]
    fn timeline_names_the_range_of_each_time() {
        use serde_json::json;
        let c = json!({"quantity": "air_temperature", "source": "config", "offset": -1.0});
        let a1 = json!({"quantity": "air_temperature", "calibration": 7});
        let a2 = json!({"quantity": "air_temperature", "calibration": null});
        let recs = [
            (7, 100, KIND_CORRECTION, &c),
            (8, 100, KIND_APPLIED, &a1),
            (9, 500, KIND_APPLIED, &a2),
        ];
        let t = Timeline::from_records(recs);
        assert!(t.at(Quantity::AirTemperature, 99).is_none());
        assert_eq!(t.at(Quantity::AirTemperature, 100).map(|x| x.0), Some(7));
        assert_eq!(t.at(Quantity::AirTemperature, 499).map(|x| x.0), Some(7));
        assert!(t.at(Quantity::AirTemperature, 500).is_none());
        assert!(t.at(Quantity::RelativeHumidity, 200).is_none());
    }
}
