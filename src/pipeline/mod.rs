//! Reading → correction ([`correct`]) → QC (flag, never drop: range, step, persistence,
//! consistency; see [`qc`]) → derived quantities (from unflagged readings only, [`usable`]) → sinks.
//!
//! The pipeline is a plain synchronous state machine ([`Pipeline::process`]); its task
//! ([`task::PipelineTask`]) runs it between the sensor tasks and the store writer.

pub mod clock_guard;
pub mod correct;
pub mod derived;
pub mod qc;
pub mod salinity;
pub mod task;

use crate::config::Config;
use crate::latest::Latest;
use crate::reading::{Flags, Reading};

/// The processing stages, in order.
pub struct Pipeline {
    correct: correct::Corrections,
    qc: qc::Qc,
    derived: derived::Derived,
    latest: Latest,
}

impl Pipeline {
    /// A pipeline for `config`, publishing good values into `latest`.
    pub fn new(config: &Config, latest: Latest) -> Pipeline {
        Pipeline {
            correct: correct::Corrections::default(),
            qc: qc::Qc::new(&config.qc),
            derived: derived::Derived::new(config),
            latest,
        }
    }

    /// Feeds history (readings already stored) to the stateful stages without emitting,
    /// so rain today and the wind windows continue across a restart.
    pub fn prime(&mut self, history: &[Reading]) {
        self.derived.prime(history);
    }

    /// Sets the corrections in force ([`correct::load`]); none until then.
    pub fn set_corrections(&mut self, corrections: correct::Corrections) {
        self.correct = corrections;
    }

    /// Processes one reading; appends it (corrected, flagged as QC says) and any derived
    /// readings to `out`.
    pub fn process(&mut self, mut reading: Reading, out: &mut Vec<Reading>) {
        self.correct.apply(&mut reading);
        self.qc.check(&mut reading);
        if let (true, Some(v)) = (reading.flags.is_ok(), reading.value) {
            self.latest
                .set(&reading.sensor, reading.quantity, reading.ts, v);
        }
        let start = out.len();
        self.derived.feed(&reading, out);
        for d in &mut out[start..] {
            self.qc.check(d);
        }
        out.insert(start, reading);
        self.qc.cross_check(&mut out[start..]);
    }
}

/// True when a reading can feed statistics and derived quantities.
pub fn usable(r: &Reading) -> Option<f64> {
    match r.value {
        Some(v) if r.flags == Flags::OK && v.is_finite() => Some(v),
        _ => None,
    }
}
