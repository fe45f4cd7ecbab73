//! `anemone calibrate correction`: set, clear or show the correction of one sensor
//! quantity ([`crate::correction`]) and record it in the store with its time.
//!
//! The station reads the corrections in force when it starts ([`crate::pipeline::correct`]),
//! so a correction recorded while it runs applies from its next start; the
//! `correction_applied` record written then is what ties stored readings to it.

use crate::calibrate::CalibrateError;
use crate::config::Config;
use crate::correction::{
    check, AppliedRecord, Correction, CorrectionRecord, CorrectionSpec, KIND_APPLIED,
    KIND_CORRECTION, SOURCE_CALIBRATE,
};
use crate::reading::{format_ts, Quantity, Timestamp};
use crate::store::Store;

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CorrectionAction {
    /// Record this correction.
    Set(CorrectionSpec),
    /// Record the correction that makes the raw values read the references:
    /// `(raw, reference)` pairs, one (an offset) or two (a scale and offset).
    Points(Vec<(f64, f64)>),
    /// Record that the quantity is no longer corrected.
    Clear,
    /// Show the records (of one quantity, or all).
    Status,
}

/// A coefficient for people: at most 6 decimals, no trailing zeros (the record keeps
/// the exact value).
fn short(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `corrected = …` in words.
pub fn describe(spec: &CorrectionSpec) -> String {
    let mut s = String::from("corrected = ");
    if let Some(p) = &spec.polynomial {
        for (i, c) in p.iter().enumerate() {
            let term = match i {
                0 => String::new(),
                1 => "·raw".to_string(),
                _ => format!("·raw^{i}"),
            };
            if i == 0 {
                s.push_str(&short(*c));
            } else if *c < 0.0 {
                s.push_str(&format!(" − {}{term}", short(-c)));
            } else {
                s.push_str(&format!(" + {}{term}", short(*c)));
            }
        }
        if let Some([lo, hi]) = spec.range {
            s.push_str(&format!(" (fitted over {} to {})", short(lo), short(hi)));
        }
        return s;
    }
    match spec.scale {
        Some(k) if k != 1.0 => s.push_str(&format!("raw × {}", short(k))),
        _ => s.push_str("raw"),
    }
    match spec.offset {
        Some(o) if o < 0.0 => s.push_str(&format!(" − {}", short(-o))),
        Some(o) if o > 0.0 => s.push_str(&format!(" + {}", short(o))),
        _ => {}
    }
    s
}

/// Runs `action` for `sensor`'s `quantity` at time `now`; returns the report.
pub fn calibrate_correction(
    config: &Config,
    store: &mut Store,
    sensor: &str,
    quantity: Option<Quantity>,
    action: CorrectionAction,
    now: Timestamp,
) -> Result<String, CalibrateError> {
    let s = config.sensor(sensor).ok_or_else(|| {
        CalibrateError::Sensor(format!("no sensor has id \"{sensor}\" in the config"))
    })?;
    let measured = s.kind.quantities();
    let (clear, spec) = match action {
        CorrectionAction::Status => return status(store, sensor, quantity),
        CorrectionAction::Set(spec) => (false, spec),
        CorrectionAction::Points(points) => (
            false,
            Correction::spec_from_points(&points).map_err(CalibrateError::Sensor)?,
        ),
        CorrectionAction::Clear => (true, CorrectionSpec::default()),
    };
    let q = quantity.ok_or_else(|| {
        let names: Vec<&str> = measured.iter().map(|q| q.as_str()).collect();
        CalibrateError::Sensor(format!(
            "say which quantity with --quantity: {sensor} measures {}",
            names.join(", ")
        ))
    })?;
    if clear {
        if !measured.contains(&q) {
            check(sensor, &measured, q, &spec).map_err(CalibrateError::Sensor)?;
        }
    } else {
        check(sensor, &measured, q, &spec).map_err(CalibrateError::Sensor)?;
    }
    let record = CorrectionRecord {
        quantity: q,
        source: SOURCE_CALIBRATE.to_string(),
        clear,
        spec: spec.clone(),
    };
    let payload = serde_json::to_value(&record)
        .map_err(|e| CalibrateError::Sensor(format!("cannot record the correction: {e}")))?;
    let id = store.record_calibration(sensor, now, KIND_CORRECTION, &payload)?;
    let what = if clear {
        format!(
            "Recorded #{id}: {sensor} {} is no longer corrected.",
            q.as_str()
        )
    } else {
        format!(
            "Recorded correction #{id} of {sensor} {}: {}.",
            q.as_str(),
            describe(&spec)
        )
    };
    let mut report = format!(
        "{what}\nIt applies from the station's next start (`sudo systemctl restart anemone`); readings stored before then keep their values."
    );
    if let Some(in_file) = s.correction.get(&q) {
        // The config's entry is recorded at a start when it differs from its last record.
        let recorded = store
            .calibrations(sensor)?
            .into_iter()
            .filter(|r| r.kind == KIND_CORRECTION)
            .filter_map(|r| serde_json::from_value::<CorrectionRecord>(r.payload).ok())
            .rfind(|r| r.quantity == q && r.source == crate::correction::SOURCE_CONFIG)
            .is_some_and(|r| !r.clear && &r.spec == in_file);
        report.push_str(&format!("\nThe config's correction.{}", q.as_str()));
        report.push_str(if recorded {
            " is older: it stays out of force until that entry changes."
        } else {
            " is not recorded yet: the next start records it, and being newer it is the one in force then. Remove it from the config to keep this one."
        });
    }
    Ok(report)
}

fn status(
    store: &Store,
    sensor: &str,
    quantity: Option<Quantity>,
) -> Result<String, CalibrateError> {
    let mut s = format!("Corrections of {sensor}:\n");
    let mut any = false;
    for r in store.calibrations(sensor)? {
        let line = match r.kind.as_str() {
            KIND_CORRECTION => match serde_json::from_value::<CorrectionRecord>(r.payload) {
                Ok(c) if quantity.is_none_or(|q| q == c.quantity) => {
                    let what = if c.clear {
                        "cleared".to_string()
                    } else {
                        describe(&c.spec)
                    };
                    format!(
                        "#{}  {}  set by {}: {what}",
                        r.id,
                        c.quantity.as_str(),
                        c.source
                    )
                }
                _ => continue,
            },
            KIND_APPLIED => match serde_json::from_value::<AppliedRecord>(r.payload) {
                Ok(a) if quantity.is_none_or(|q| q == a.quantity) => match a.calibration {
                    Some(id) => format!(
                        "#{}  {}  readings from here on corrected by #{id}",
                        r.id,
                        a.quantity.as_str()
                    ),
                    None => format!(
                        "#{}  {}  readings from here on uncorrected",
                        r.id,
                        a.quantity.as_str()
                    ),
                },
                _ => continue,
            },
            _ => continue,
        };
        any = true;
        s.push_str(&format!("  {}  {line}\n", format_ts(r.ts)));
    }
    if !any {
        s.push_str("  (none recorded)\n");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_corrections_in_words() {
        let lin = CorrectionSpec {
            offset: Some(-1.8999999999999986),
            scale: Some(1.032258064516129),
            ..CorrectionSpec::default()
        };
        assert_eq!(describe(&lin), "corrected = raw × 1.032258 − 1.9");
        let poly = CorrectionSpec {
            polynomial: Some(vec![-1.5, 1.03, -0.0001]),
            range: Some([0.0, 100.0]),
            ..CorrectionSpec::default()
        };
        assert_eq!(
            describe(&poly),
            "corrected = -1.5 + 1.03·raw − 0.0001·raw^2 (fitted over 0 to 100)"
        );
        let off = CorrectionSpec {
            offset: Some(0.5),
            ..CorrectionSpec::default()
        };
        assert_eq!(describe(&off), "corrected = raw + 0.5");
    }
}
