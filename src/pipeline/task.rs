//! The pipeline's own task: sensor batches in, through clock safety and [`Pipeline`], out
//! to the store writer's queue.
//!
//! The task also forwards the hardware ids sensors report (a DS18B20's ROM id) to the
//! store's sensor registry, so every write to the store leaves through one queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::clock_guard::{ClockGuard, GuardState};
use super::Pipeline;
use crate::clock::Clock;
use crate::hal::timesync;
use crate::notify::Progress;
use crate::reading::{Quantity, Reading, Timestamp};
use crate::store::writer::WriterMsg;
use crate::store::{Query, Store, StoreError};

/// How often a guard that holds readings asks whether the clock is synchronised yet.
const SYNC_CHECK: Duration = Duration::from_secs(10);

/// Everything the pipeline task reads from and writes to.
pub struct PipelineTask {
    /// The processing stages, primed with [`recent_history`].
    pub pipeline: Pipeline,
    /// Clock safety: holds readings until the clock is trusted.
    pub guard: ClockGuard,
    /// Batches of readings from the sensor tasks; the task ends when every sender is gone.
    pub readings: mpsc::Receiver<Vec<Reading>>,
    /// `(sensor, hardware id)` pairs from the sensor tasks.
    pub hardware_ids: mpsc::UnboundedReceiver<(String, String)>,
    /// The store writer's queue.
    pub writer: mpsc::Sender<WriterMsg>,
    /// Each configured sensor's type name, registered with its hardware id.
    pub kinds: HashMap<String, &'static str>,
    /// Progress counters for the systemd watchdog.
    pub progress: Arc<Progress>,
    /// The station clock; each processed reading releases it.
    pub clock: Clock,
    /// The GPS sources' fix times (clock safety's time source at sea).
    pub gps_clock: timesync::GpsClock,
}

impl PipelineTask {
    /// Runs until the sensor tasks are gone (or the writer is), then stores what clock
    /// safety still holds.
    pub async fn run(self) {
        let PipelineTask {
            mut pipeline,
            mut guard,
            readings: mut sensor_rx,
            hardware_ids: mut hw_rx,
            writer,
            kinds,
            progress,
            clock,
            gps_clock,
        } = self;
        let mut admitted = Vec::with_capacity(8);
        let mut out = Vec::with_capacity(16);
        let mut sync_check = tokio::time::interval(SYNC_CHECK);
        let mut hw_open = true;
        loop {
            tokio::select! {
                biased;
                hw = hw_rx.recv(), if hw_open => {
                    if hw.is_none() {
                        hw_open = false;
                    }
                    if let Some((sensor, hardware_id)) = hw {
                        let kind = kinds.get(&sensor).copied().unwrap_or("unknown");
                        let msg = WriterMsg::RegisterSensor { sensor: sensor.to_string(), kind, hardware_id };
                        if writer.send(msg).await.is_err() {
                            break;
                        }
                    }
                }
                batch = sensor_rx.recv() => {
                    let Some(batch) = batch else { break };
                    let now = Instant::now();
                    for r in batch {
                        progress.reading();
                        guard.admit(r, now, &mut admitted);
                    }
                }
                _ = sync_check.tick(), if guard.wants_poll() => {
                    let was = guard.state();
                    guard.poll(timesync::sync_state(&gps_clock), clock.now(), Instant::now(), &mut admitted);
                    if was == GuardState::Holding
                        && guard.state() == GuardState::Trusted
                        && writer.send(WriterMsg::ClockTrusted).await.is_err()
                    {
                        break;
                    }
                }
            }
            let processed = admitted.len() as u64;
            for r in admitted.drain(..) {
                pipeline.process(r, &mut out);
            }
            clock.release(processed);
            if !out.is_empty()
                && writer
                    .send(WriterMsg::Readings(out.split_off(0)))
                    .await
                    .is_err()
            {
                return;
            }
        }
        // Stopping before the clock was ever synchronised: store what was held rather
        // than lose it.
        guard.release(&mut admitted);
        for r in admitted.drain(..) {
            pipeline.process(r, &mut out);
        }
        if !out.is_empty() {
            // The writer is gone only when the store failed, which the station reports.
            let _ = writer.send(WriterMsg::Readings(out)).await;
        }
    }
}

/// Readings the stateful pipeline stages need after a restart: the last 24 h of rain
/// (rain today, last 24 h) and the last 11 min of wind (gusts, means).
pub fn recent_history(store: &Store, now: Timestamp) -> Result<Vec<Reading>, StoreError> {
    let mut history = Vec::new();
    for (q, span) in [
        (Quantity::Rain, 86_400_000),
        (Quantity::WindSpeed, 660_000),
        (Quantity::WindDirection, 660_000),
    ] {
        let query = Query {
            from: Some(now - span),
            to: Some(now),
            sensor: None,
            quantity: Some(q),
        };
        history.extend(store.readings(&query)?.into_iter().map(|s| s.reading));
    }
    history.sort_by_key(|r| r.ts);
    Ok(history)
}
