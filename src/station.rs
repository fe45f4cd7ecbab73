//! The running station: sensors → pipeline → store writer (→ MQTT), on one clock.
//!
//! This module only wires: it opens the store, builds the HAL, starts the writer, the
//! MQTT publisher, the web page, the pipeline task ([`crate::pipeline::task`]) and one task per sensor,
//! connects their channels, and waits for the end of the run or a shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::Config;
use crate::hal::timesync;
use crate::mqtt::{Backlog, BoxError, Feeds};
use crate::notify::{self, Judge, Notifier, Progress};
use crate::pipeline::clock_guard::{ClockGuard, GuardState};
use crate::pipeline::task::{recent_history, PipelineTask};
use crate::pipeline::Pipeline;
use crate::reading::{Reading, StoredReading, Timestamp};
use crate::sensors::scheduler::{run_sensor, SensorTask, StartupFailed};
use crate::sensors::{sample_on_bus, start_on_bus, SourceContext};
use crate::store::writer::{run_writer_with_progress, LiveFeeds, WriterConfig, WriterMsg};
use crate::store::{ReadOnlyFollower, Store, StoreError, StoreOptions, Unpublished};
use crate::web::events::LiveBatch;
use crate::web::source::SqliteSource;
use crate::web::{StationStatus, WebParts};

/// Readings in flight between stages before senders wait (back-pressure).
const CHANNEL_DEPTH: usize = 4096;
/// How long a finite run waits for the broker to acknowledge what it owes.
const FINITE_RUN_DRAIN: Duration = Duration::from_secs(60);
/// How long a stop on SIGTERM/SIGINT waits for the broker.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// The MQTT outbox: a read-only connection to the store that follows the file.
struct StoreBacklog(ReadOnlyFollower);

impl Backlog for StoreBacklog {
    fn cursor(&mut self) -> Result<i64, BoxError> {
        Ok(self.0.store()?.publish_cursor()?)
    }

    fn after(&mut self, after: i64, limit: usize) -> Result<Vec<StoredReading>, BoxError> {
        Ok(self.0.store()?.unpublished(after, limit)?)
    }
}

/// How to run.
pub struct RunOptions {
    /// The station clock (real, scaled or virtual).
    pub clock: Clock,
    /// Stop after this much station time (a finite, e.g. simulated, run).
    pub duration_ms: Option<i64>,
    /// The database file.
    pub db_path: PathBuf,
    /// Receives every reading with its id, before its commit (the MQTT publisher's live
    /// feed).
    pub live: Option<mpsc::Sender<Vec<StoredReading>>>,
    /// Receives the writer's command channel, e.g. for the MQTT publish cursor.
    pub writer_handle: Option<tokio::sync::oneshot::Sender<mpsc::Sender<WriterMsg>>>,
    /// Progress counters shared with the systemd watchdog (created if absent).
    pub progress: Option<Arc<Progress>>,
    /// Receives the address the web page listens on, once it does (`[web] enabled`).
    pub web_addr: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Readings committed.
    pub committed: u64,
    /// Commits made.
    pub commits: u64,
    /// Readings lost because the disk refused them beyond the in-memory bound.
    pub dropped: u64,
    /// Station time at start.
    pub started: Timestamp,
    /// Station time when sensing stopped (the end of `--duration`, or the shutdown
    /// request); the flush and the MQTT drain after it are not counted.
    pub ended: Timestamp,
}

impl RunSummary {
    /// The line `run` prints when it ends, in units people read: `Stored 1 747 readings
    /// in 6 commits: 1 h of simulated time in 2.1 s.` (`simulated`: the station clock was
    /// not the real one; `wall`: how long the run really took).
    pub fn describe(&self, simulated: bool, wall: Duration) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let span = crate::duration::human(self.ended - self.started);
        let mut line = format!(
            "Stored {} in {}",
            plural(self.committed, "reading", "readings"),
            plural(self.commits, "commit", "commits")
        );
        if simulated {
            let wall_ms = i64::try_from(wall.as_millis()).unwrap_or(i64::MAX);
            line += &format!(
                ": {span} of simulated time in {}.",
                crate::duration::human(wall_ms)
            );
        } else {
            line += &format!(" over {span}.");
        }
        if self.dropped > 0 {
            line += &format!(
                " {} lost: the disk refused them (see the log).",
                plural(self.dropped, "reading", "readings")
            );
        }
        line
    }
}

/// Why the station stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sensor with `on_startup_error = "fail"` did not start.
    #[error(transparent)]
    Startup(#[from] StartupFailed),
    /// A task ended abnormally.
    #[error("internal task failure: {0}")]
    Task(String),
    /// `[station] signing_key` names a file that cannot be used (or created).
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The config with the station id the database decided on (see
/// [`crate::config::StationConfig::id_for_store`]), and a word about it in the log.
fn with_station_id(config: Arc<Config>, recorded: Option<&str>, id: String) -> Arc<Config> {
    let how = if config.station.id_is_derived() {
        "derived from this board; set [station] id to choose one"
    } else {
        "from the config"
    };
    if id != config.station.id {
        tracing::info!(
            "Station id \"{id}\": this database ran under it before this board's own id \"{}\" existed; it is kept so topics and Home Assistant entities stay the same. Set [station] id to change it.",
            config.station.id
        );
    } else {
        tracing::info!("Station id \"{id}\" ({how}).");
    }
    if let Some(old) = recorded.filter(|r| *r != id) {
        tracing::warn!(
            "The station id changed from \"{old}\" (this database's last run) to \"{id}\": MQTT topics, the client id and Home Assistant entities follow the new id. If the card was cloned from another station, that is right; otherwise set [station] id = \"{old}\"."
        );
    }
    if id == config.station.id {
        return config;
    }
    let mut c = (*config).clone();
    c.station.id = id;
    Arc::new(c)
}

/// Runs the station until `shutdown` resolves or `opts.duration_ms` of station time has
/// passed, then flushes everything to the store.
pub async fn run(
    config: Arc<Config>,
    opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunSummary, StationError> {
    let clock = opts.clock.clone();
    let started = clock.now();
    let end = opts.duration_ms.map(|d| started + d);

    // The signing key: checked (and created at the first start) before anything runs.
    if let Some(key_path) = &config.station.signing_key {
        let (key, created) = crate::signing::StationKey::load_or_create(key_path)?;
        if created {
            tracing::info!(
                "created the chain signing key {} (public key {})",
                key_path.display(),
                key.public_key_hex()
            );
        }
    }

    let store_opts = StoreOptions {
        synchronous: config.storage.synchronous,
        tz: config.station.tz(),
        vfs: None,
    };
    let path = opts.db_path.clone();
    let sensors: Vec<(String, &'static str)> = config
        .sensors
        .iter()
        .map(|s| (s.id.clone(), s.kind.type_name()))
        .collect();
    type Opened = (
        Store,
        Vec<Reading>,
        std::collections::HashMap<String, crate::sensors::PhCalibrationInForce>,
        (Option<String>, String),
        crate::pipeline::correct::Corrections,
    );
    let station_cfg = config.station.clone();
    let correct_cfg = config.clone();
    let (store, history, ph_calibrations, (recorded_id, station_id), corrections) =
        tokio::task::spawn_blocking(move || -> Result<Opened, StoreError> {
            let mut store = Store::open(&path, &store_opts)?;
            let recorded = store.station_id()?;
            let id = station_cfg.id_for_store(recorded.as_deref(), store.has_readings()?);
            store.in_one_commit(|store| {
                if recorded.as_deref() != Some(id.as_str()) {
                    store.record_station_id(&id)?;
                }
                for (id, kind) in &sensors {
                    store.register_sensor(id, kind, None)?;
                }
                Ok(())
            })?;
            let history = recent_history(&store, started)?;
            let mut cals = std::collections::HashMap::new();
            for (id, kind) in &sensors {
                if *kind == "ph_analog" {
                    if let Some(c) = crate::calibrate::in_force(&store, id)? {
                        cals.insert(id.clone(), c);
                    }
                }
            }
            let corrections = crate::pipeline::correct::load(&mut store, &correct_cfg, started)?;
            Ok((store, history, cals, (recorded, id), corrections))
        })
        .await
        .map_err(|e| StationError::Task(e.to_string()))??;
    let config = with_station_id(config, recorded_id.as_deref(), station_id);
    tracing::info!(
        db = %opts.db_path.display(),
        sensors = config.sensors.len(),
        simulated = config.hal.simulate,
        "Station started"
    );

    let hal = crate::sensors::open_hal(&config, &clock, started);
    let ctx = SourceContext {
        ph_calibrations,
        analog_calibrations: crate::calibrate_analog::all_in_force(&store, &config)?,
        ..SourceContext::default()
    };
    let progress = opts.progress.clone().unwrap_or_default();

    let (sensor_tx, sensor_rx) = mpsc::channel::<Vec<Reading>>(CHANNEL_DEPTH);
    let (writer_tx, writer_rx) = mpsc::channel::<WriterMsg>(CHANNEL_DEPTH);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (hw_tx, hw_rx) = mpsc::unbounded_channel::<(String, String)>();

    // Participants are registered before any task starts, so the virtual clock cannot
    // move before everyone is asleep.
    let writer_participant = clock.participant();
    let main_participant = end.map(|_| clock.participant());
    let sensor_participants: Vec<_> = config.sensors.iter().map(|_| clock.participant()).collect();
    if let Some(h) = opts.writer_handle {
        let _ = h.send(writer_tx.clone());
    }

    let guard = if clock.is_real() && !config.station.clock_sync_wait.is_zero() {
        ClockGuard::new(
            timesync::sync_state(hal.gps_clock()),
            config.station.clock_sync_wait.0,
        )
    } else {
        ClockGuard::trusted()
    };
    // Retention keeps what MQTT still owes, and never acts on a clock that clock safety
    // does not trust yet.
    let unpublished = if config.mqtt.enabled {
        Unpublished::Keep
    } else {
        Unpublished::Expire
    };
    let writer_cfg = WriterConfig::from_storage(
        &config.storage,
        unpublished,
        guard.state() == GuardState::Trusted,
    );
    // MQTT: the writer's live feed goes to the publisher; acknowledged ids come back as
    // publish-cursor advances that the writer persists.
    let (live_tx, live_rx) = match opts.live {
        Some(tx) => (Some(tx), None),
        None if config.mqtt.enabled => {
            let (tx, rx) = mpsc::channel(256);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    // The web page: a fan-out of the live feed that never holds up MQTT.
    let web_feed = config
        .web
        .enabled
        .then(|| tokio::sync::broadcast::channel::<LiveBatch>(crate::web::events::FEED_DEPTH).0);
    let live_tx = match &web_feed {
        Some(feed) => Some(crate::web::events::fan_out(feed.clone(), live_tx)),
        None => live_tx,
    };
    let (committed_tx, committed_rx) = watch::channel(0i64);
    let (chain_tx, chain_rx) = watch::channel(None);
    let feeds = LiveFeeds {
        live: live_tx,
        committed_through: Some(committed_tx),
        chain: Some(chain_tx),
    };
    let writer = tokio::spawn(run_writer_with_progress(
        store,
        writer_rx,
        writer_participant,
        writer_cfg,
        feeds,
        Some(progress.clone()),
    ));
    let control_tx = writer_tx.clone();
    let mut mqtt = None;
    let mut cursor_forward = None;
    if let Some(live) = live_rx {
        let (cursor_tx, mut cursor_rx) = mpsc::channel::<i64>(64);
        let backlog = Box::new(StoreBacklog(ReadOnlyFollower::forward_only(
            opts.db_path.clone(),
            config.station.tz(),
        )));
        mqtt = Some(
            crate::mqtt::start(
                &config,
                Feeds {
                    live,
                    backlog,
                    cursor: cursor_tx,
                    committed: Some(committed_rx),
                    pause: Some(ctx.power.watch_saving()),
                    chain: Some(chain_rx),
                },
            )
            .await,
        );
        let wtx = writer_tx.clone();
        cursor_forward = Some(tokio::spawn(async move {
            while let Some(id) = cursor_rx.recv().await {
                if wtx.send(WriterMsg::SetCursor(id)).await.is_err() {
                    break;
                }
            }
        }));
    }

    let web = match web_feed {
        Some(live) => {
            let parts = WebParts {
                source: Arc::new({
                    let source = SqliteSource::new(
                        &config.station.id,
                        opts.db_path.clone(),
                        config.station.tz(),
                    );
                    let source = source.with_precision(config.precision());
                    if config.mqtt.enabled {
                        source
                    } else {
                        source.without_backlog()
                    }
                }),
                live,
                clock: clock.clone(),
                status: StationStatus {
                    db_path: opts.db_path.clone(),
                    started,
                    started_at: std::time::Instant::now(),
                    mqtt_connected: mqtt.as_ref().map(|m| m.connected()),
                    gps_clock: hal.gps_clock().clone(),
                },
            };
            let server = crate::web::start_for_station(config.clone(), parts).await;
            if let (Some(s), Some(tx)) = (&server, opts.web_addr) {
                let _ = tx.send(s.local_addr());
            }
            server
        }
        None => None,
    };

    let mut pipeline = Pipeline::new(&config, ctx.latest.clone());
    pipeline.set_corrections(corrections);
    pipeline.prime(&history);
    drop(history);
    let pipe = tokio::spawn(
        PipelineTask {
            pipeline,
            guard,
            readings: sensor_rx,
            hardware_ids: hw_rx,
            writer: writer_tx.clone(),
            kinds: config
                .sensors
                .iter()
                .map(|s| (s.id.clone(), s.kind.type_name()))
                .collect(),
            progress: progress.clone(),
            clock: clock.clone(),
            gps_clock: hal.gps_clock().clone(),
        }
        .run(),
    );
    drop(writer_tx);

    let mut sensors = JoinSet::new();
    for (sensor, participant) in config.sensors.iter().zip(sensor_participants) {
        let task = SensorTask {
            sensor: sensor.clone(),
            hal: hal.clone(),
            ctx: ctx.clone(),
            tx: sensor_tx.clone(),
            stop: stop_rx.clone(),
            end,
            hardware_id: Some(hw_tx.clone()),
        };
        sensors.spawn(run_sensor(task, participant));
    }
    drop(sensor_tx);
    drop(hw_tx);

    let notifier = Notifier::from_env();
    let _ = notifier.send("READY=1");
    let watchdog = notify::watchdog_interval().map(|interval| {
        tokio::spawn(notify::run_watchdog(
            notifier.clone(),
            interval,
            Judge::new(progress.clone(), !config.sensors.is_empty()),
        ))
    });

    // Wait for the end of the run, a shutdown request, or a sensor that must stop us.
    let mut failure: Option<StationError> = None;
    {
        let until_end = async {
            match (&main_participant, end) {
                (Some(p), Some(end)) => p.sleep_until(end).await,
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(until_end);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut until_end => break,
                _ = &mut shutdown => {
                    tracing::info!("Shutdown requested; flushing buffered readings");
                    break;
                }
                joined = sensors.join_next(), if !sensors.is_empty() => {
                    match joined {
                        Some(Ok(Err(e))) => { failure = Some(e.into()); break; }
                        Some(Err(e)) => { failure = Some(StationError::Task(e.to_string())); break; }
                        _ => {}
                    }
                }
            }
        }
    }
    // Station time stops counting here: what follows (flushing, draining what the broker
    // is owed) is not time the station sensed, even where the station clock keeps running.
    let sensed_until = match end {
        Some(end) => clock.now().min(end),
        None => clock.now(),
    };
    let _ = notifier.send("STOPPING=1");
    if let Some(w) = watchdog {
        w.abort();
    }
    if let Some(w) = web {
        w.shutdown().await;
    }
    let _ = stop_tx.send(true);
    drop(main_participant);
    while let Some(joined) = sensors.join_next().await {
        if let (Some(Err(e)), None) = (joined.ok(), &failure) {
            failure = Some(e.into());
        }
    }
    pipe.await.map_err(|e| StationError::Task(e.to_string()))?;
    if let Some(m) = mqtt {
        // Commit what is buffered so its batch reaches the publisher, let the publisher
        // drain what it owes (bounded), then let the writer persist the final cursor.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if control_tx.send(WriterMsg::Finish(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
        let drain = if end.is_some() {
            FINITE_RUN_DRAIN
        } else {
            SHUTDOWN_DRAIN
        };
        let summary = m.shutdown(drain).await;
        tracing::info!(
            published = summary.published,
            backfilled = summary.backfilled,
            cursor = summary.cursor,
            drained = summary.drained,
            "MQTT publisher stopped"
        );
        if let Some(mut f) = cursor_forward {
            if tokio::time::timeout(Duration::from_secs(2), &mut f)
                .await
                .is_err()
            {
                f.abort();
            }
        }
    }
    drop(control_tx);
    let (_store, stats) = writer
        .await
        .map_err(|e| StationError::Task(e.to_string()))??;
    let summary = RunSummary {
        committed: stats.committed,
        commits: stats.commits,
        dropped: stats.dropped,
        started,
        ended: sensed_until,
    };
    tracing::info!(
        committed = summary.committed,
        commits = summary.commits,
        "Station stopped; every accepted reading is stored"
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// `anemone read`: builds every sensor, takes one sample of each, runs it through QC,
/// and returns the readings (failed sensors as `sensor_error` readings). Pulse-counting
/// sensors need a window, so they are sampled twice, `window_ms` apart.
pub async fn read_once(config: Arc<Config>, clock: Clock, window_ms: i64) -> Vec<Reading> {
    let start = clock.now();
    let hal = crate::sensors::open_hal(&config, &clock, start);
    let ctx = SourceContext::default();
    let mut pipeline = Pipeline::new(&config, ctx.latest.clone());
    let participant = clock.participant();
    let mut out = Vec::new();
    let mut sources = Vec::new();
    let inline = hal.is_simulated();
    for sensor in &config.sensors {
        let id: crate::reading::SensorId = Arc::from(sensor.id.as_str());
        match start_on_bus(sensor, &hal, &ctx).await {
            Ok(source) => {
                let now = clock.now();
                match sample_on_bus(source, inline, now).await {
                    (Some(source), Ok(readings)) if readings.is_empty() => {
                        sources.push((sensor.clone(), source))
                    }
                    (_, Ok(readings)) => out.extend(readings),
                    (_, Err(e)) => {
                        tracing::warn!(sensor = %id, "Sensor failed: {e}");
                        out.extend(crate::sensors::error_readings(
                            &id,
                            &sensor.kind.quantities(),
                            now,
                        ));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(sensor = %id, "Sensor failed to start: {e}");
                out.extend(crate::sensors::error_readings(
                    &id,
                    &sensor.kind.quantities(),
                    start,
                ));
            }
        }
    }
    if !sources.is_empty() {
        participant.sleep_until(start + window_ms).await;
        for (sensor, source) in sources {
            let id: crate::reading::SensorId = Arc::from(sensor.id.as_str());
            let now = clock.now();
            match sample_on_bus(source, inline, now).await {
                (_, Ok(readings)) => out.extend(readings),
                (_, Err(e)) => {
                    tracing::warn!(sensor = %id, "Sensor failed: {e}");
                    out.extend(crate::sensors::error_readings(
                        &id,
                        &sensor.kind.quantities(),
                        now,
                    ));
                }
            }
        }
    }
    let mut result = Vec::new();
    for r in out {
        pipeline.process(r, &mut result);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(committed: u64, commits: u64, span_ms: i64) -> RunSummary {
        RunSummary {
            committed,
            commits,
            dropped: 0,
            started: 1_000,
            ended: 1_000 + span_ms,
        }
    }

    #[test]
    fn summaries_speak_human_units() {
        assert_eq!(
            summary(1747, 6, 3_600_000).describe(true, Duration::from_millis(2_140)),
            "Stored 1747 readings in 6 commits: 1 h of simulated time in 2.1 s."
        );
        // Was "0.028477222222222223 simulated h".
        assert_eq!(
            summary(1, 1, 102_518).describe(false, Duration::from_secs(103)),
            "Stored 1 reading in 1 commit over 1 min 43 s."
        );
        let mut lost = summary(10, 2, 60_000);
        lost.dropped = 3;
        assert!(lost
            .describe(false, Duration::ZERO)
            .ends_with("3 readings lost: the disk refused them (see the log)."));
    }
}
