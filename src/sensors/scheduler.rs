//! Per-sensor tasks on the station clock.
//!
//! Each sensor runs in its own tokio task and samples on ticks aligned to its interval
//! (a 10 s sensor reads at :00, :10, :20 …). Bus I/O runs on the blocking pool, so a slow
//! or hung sensor only delays itself; simulated buses are plain memory that never block,
//! so on them a sample runs inline in the task (a thread hop per sample was most of the
//! simulated station's CPU: bench/README.md). A failed sample becomes `sensor_error` readings for
//! each of the sensor's quantities plus a rate-limited log line; the sensor is retried on
//! its next tick, and its recovery is logged.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{
    error_readings, sample_on_bus, start_on_bus, OnStartupError, SensorConfig, Source,
    SourceContext, SourceError,
};
use crate::clock::Participant;
use crate::hal::Hal;
use crate::reading::{Reading, SensorId, Timestamp};

/// Log a continuing failure again after this much station time.
const REPEAT_LOG_MS: i64 = 10 * 60 * 1000;

/// A sensor that could not start under `on_startup_error = "fail"`.
#[derive(Debug, thiserror::Error)]
#[error("sensor \"{sensor}\" failed to start: {source} (set on_startup_error = \"retry\" or \"skip\" to run without it)")]
pub struct StartupFailed {
    /// Sensor id.
    pub sensor: String,
    /// Why.
    #[source]
    pub source: SourceError,
}

/// Everything one sensor task needs.
pub struct SensorTask {
    /// This sensor's entry.
    pub sensor: SensorConfig,
    /// The buses.
    pub hal: Hal,
    /// Shared context.
    pub ctx: SourceContext,
    /// Where readings go: one batch per sample.
    pub tx: mpsc::Sender<Vec<Reading>>,
    /// Becomes true when the station stops.
    pub stop: watch::Receiver<bool>,
    /// No tick at or after this station time (finite runs).
    pub end: Option<Timestamp>,
    /// Reports the hardware id once the source is built.
    pub hardware_id: Option<mpsc::UnboundedSender<(String, String)>>,
}

fn first_tick(now: Timestamp, interval: i64) -> Timestamp {
    now.div_euclid(interval) * interval
        + if now.rem_euclid(interval) == 0 {
            0
        } else {
            interval
        }
}

struct FailureLog {
    since: Option<Timestamp>,
    last_logged: Timestamp,
    last_message: String,
    count: u64,
}

impl FailureLog {
    fn failed(&mut self, id: &str, now: Timestamp, err: &SourceError) {
        let msg = err.to_string();
        self.count += 1;
        let due = now - self.last_logged >= REPEAT_LOG_MS;
        if self.since.is_none() || msg != self.last_message || due {
            if self.since.is_none() {
                tracing::warn!(sensor = id, "Sensor failed: {msg}; its readings are stored flagged sensor_error and it is retried every interval");
            } else {
                tracing::warn!(
                    sensor = id,
                    failures = self.count,
                    "Sensor still failing: {msg}"
                );
            }
            self.last_logged = now;
            self.last_message = msg;
        }
        self.since.get_or_insert(now);
    }

    fn recovered(&mut self, id: &str, now: Timestamp) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                sensor = id,
                failures = self.count,
                outage_s = (now - since) / 1000,
                "Sensor is answering again"
            );
            self.count = 0;
            self.last_message.clear();
        }
    }
}

/// Runs one sensor until `stop` or `end`. Returns `Err` only for a `fail` start-up policy.
pub async fn run_sensor(task: SensorTask, participant: Participant) -> Result<(), StartupFailed> {
    let id: SensorId = Arc::from(task.sensor.id.as_str());
    let interval = task.sensor.interval.as_millis_i64().max(1);
    let quantities = task.sensor.kind.quantities();
    let inline = task.hal.is_simulated();
    let start = || start_on_bus(&task.sensor, &task.hal, &task.ctx);
    let mut stop = task.stop.clone();
    let mut log = FailureLog {
        since: None,
        last_logged: i64::MIN / 2,
        last_message: String::new(),
        count: 0,
    };

    let mut source = match start().await {
        Ok(s) => Some(s),
        Err(e) => match task.sensor.on_startup_error {
            OnStartupError::Fail => {
                return Err(StartupFailed {
                    sensor: task.sensor.id.clone(),
                    source: e,
                })
            }
            OnStartupError::Skip => {
                tracing::warn!(sensor = %id, "Sensor skipped: {e}");
                return Ok(());
            }
            OnStartupError::Retry => {
                log.failed(&id, participant.now(), &e);
                None
            }
        },
    };
    let report_hw = |s: &dyn Source| {
        if let (Some(tx), Some(hw)) = (&task.hardware_id, s.hardware_id()) {
            let _ = tx.send((task.sensor.id.clone(), hw));
        }
    };
    if let Some(s) = &source {
        report_hw(s.as_ref());
    }

    // The first sample is taken at once, so a station shows data within a second of
    // starting; the ticks after it are aligned to the interval.
    let mut next = participant.now();
    let mut aligned = first_tick(next, interval) == next;
    loop {
        if task.end.is_some_and(|end| next >= end) || *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = participant.sleep_until(next) => {}
            _ = stop.changed() => break,
        }
        let now = participant.now();
        if source.is_none() {
            match start().await {
                Ok(s) => {
                    report_hw(s.as_ref());
                    source = Some(s);
                }
                Err(e) => log.failed(&id, now, &e),
            }
        }
        let readings = match source.take() {
            None => error_readings(&id, &quantities, now),
            Some(s) => match sample_on_bus(s, inline, now).await {
                (Some(s), Ok(readings)) => {
                    source = Some(s);
                    log.recovered(&id, now);
                    readings
                }
                (s, Err(e)) => {
                    // An absent device is rebuilt from scratch next time (it may have
                    // been re-plugged and need its init sequence again); a driver that
                    // panicked is rebuilt too.
                    if !e.is_absent() {
                        source = s;
                    }
                    log.failed(&id, now, &e);
                    error_readings(&id, &quantities, now)
                }
                (None, Ok(_)) => error_readings(&id, &quantities, now),
            },
        };
        // The readings are in flight until the pipeline has processed them: a virtual
        // clock waits, so every sensor sees the same "latest" values in every run.
        let n = readings.len() as u64;
        participant.clock().hold(n);
        if task.tx.send(readings).await.is_err() {
            participant.clock().release(n);
            return Ok(());
        }
        let now = participant.now();
        let interval = task.ctx.power.interval_ms(interval);
        if aligned {
            next += interval;
        } else {
            next = first_tick(now + 1, interval);
            aligned = true;
        }
        if next <= now {
            // Fell behind (a slow read, a suspended machine, a clock jump forward):
            // skip the missed ticks rather than firing them in a burst.
            next = first_tick(now + 1, interval);
        } else if next - now > 2 * interval {
            // The clock jumped backwards: resume from the new now.
            next = first_tick(now + 1, interval);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::first_tick;

    #[test]
    fn ticks_align_to_the_interval() {
        assert_eq!(first_tick(0, 10_000), 0);
        assert_eq!(first_tick(1, 10_000), 10_000);
        assert_eq!(first_tick(19_999, 10_000), 20_000);
        assert_eq!(first_tick(-1, 10_000), 0);
    }
}
