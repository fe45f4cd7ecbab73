//! The one writer task: batches readings into few commits on the station clock.
//!
//! * The first reading is committed at once; after that readings wait in memory until
//!   the next commit, every
//!   `commit_interval` of **station** time (so an accelerated simulated day writes in the
//!   same pattern as a real day). One commit = one transaction with the readings and the
//!   publish cursor acknowledged since the last one.
//! * Aggregates are persisted every [`AGGREGATE_PERSIST_MS`] of station time (aligned to
//!   that grid), on [`WriterMsg::Flush`] / [`WriterMsg::Finish`] and at shutdown.
//! * Retention runs at the first commit and then every [`RETENTION_EVERY_MS`], deleting at
//!   most [`EXPIRE_PER_CYCLE`] rows per commit cycle in small transactions. It never
//!   deletes a reading the broker has not acknowledged while MQTT is configured
//!   ([`Unpublished::Keep`]), never runs while clock safety does not trust
//!   the station clock ([`WriterMsg::ClockTrusted`]), and its "now" advances only by
//!   station time actually elapsed ([`crate::clock::Clock::elapsed_ms`]), from the value
//!   it last persisted: see the `retention` module docs.
//! * When a commit fails (disk full, I/O error) the batch stays in memory and is retried
//!   at each interval; one ERROR names the file and the fix, one INFO says when writing
//!   resumed. Beyond `max_buffered` readings the oldest are dropped, counted and logged.
//! * SQLite work runs on tokio's blocking pool, never on a runtime thread. While it runs
//!   the writer is awake, so a virtual clock waits for it.
//! * Ids are assigned here, when a reading arrives, and the reading goes to the live feed
//!   (MQTT) at once, before its commit: the commit interval decides how often the SD card
//!   is written, not how fresh the dashboards are. An id handed out may be lost in a
//!   crash with its uncommitted reading, so it must never be reused: ids are reserved in
//!   blocks of [`ID_BLOCK`] by a synced commit ([`Store::commit_stored`]), and no id goes
//!   to the live feed before its block is reserved. The feed's companion, a watch of the
//!   *committed-through* id (every id up to it is stored or will never be), tells the
//!   publisher when the store holds what the live feed could not carry.

use std::collections::VecDeque;

use tokio::sync::{mpsc, oneshot, watch};

use super::{Head, Resolution, Store, StoreError, StoredReading, Unpublished};
use crate::clock::{Clock, Participant};
use crate::config::StorageConfig;
use crate::reading::{Reading, Timestamp};

/// Aggregates are persisted on this grid of station time (and at flush/shutdown). Hourly:
/// each persist rewrites the pages of the open minute, hour and day buckets, and after a
/// crash the aggregates are folded again exactly from the raw readings after the last
/// persist (at most an hour of them), so persisting more often only wears the card.
pub const AGGREGATE_PERSIST_MS: i64 = 60 * 60_000;
/// Retention runs this often (station time).
pub const RETENTION_EVERY_MS: i64 = 3_600_000;
/// Most raw rows deleted by retention per commit cycle (the rest waits for the next).
pub const EXPIRE_PER_CYCLE: u64 = 20_000;
/// Reading ids are reserved this many at a time (one synced commit per block; a crash
/// skips the rest of the block). Hours of readings at 1 Hz, and still far from `i64`.
pub const ID_BLOCK: i64 = 100_000;
/// Live readings held while the live feed is full, before the oldest are left to the
/// store (the publisher notices the gap and reads them from there). About 0.1 MB.
const LIVE_PENDING_MAX: usize = 2_048;
/// After `Finish`, how often a failed commit or a full live feed is retried.
const FINISHED_RETRY: std::time::Duration = std::time::Duration::from_millis(200);
/// Live readings go out in batches of at most this many, and as soon as this many wait,
/// even while more keep arriving (an accelerated run never lets the writer's queue run
/// empty).
const LIVE_BATCH: usize = 256;

/// Work to run on the writer's store between commits (register a sensor with its
/// hardware id, record a calibration): the writer owns the only read-write connection.
pub type StoreJob = Box<dyn FnOnce(&mut Store) -> Result<(), StoreError> + Send>;

/// What the writer is told.
pub enum WriterMsg {
    /// Store this reading at the next commit.
    Reading(Reading),
    /// Store these readings at the next commit.
    Readings(Vec<Reading>),
    /// The broker acknowledged readings up to this id: advance the publish cursor at the
    /// next commit.
    SetCursor(i64),
    /// Commit and persist everything now; answer when done (also when it failed: the
    /// data stays buffered).
    Flush(oneshot::Sender<()>),
    /// The station stopped: commit and persist everything now (answer when done), and
    /// from then on commit only at exit. Periodic commits are over: on a virtual clock
    /// nothing else moves station time, so they would run back to back while the
    /// publisher drains.
    Finish(oneshot::Sender<()>),
    /// Run this on the store (on the blocking pool) and answer with its result.
    Run(StoreJob, oneshot::Sender<Result<(), StoreError>>),
    /// Record this sensor's kind and hardware id (found when its source started) with the
    /// next commit: a commit of its own would cost a WAL append and a sync for a few
    /// bytes.
    RegisterSensor {
        sensor: String,
        kind: &'static str,
        hardware_id: String,
    },
    /// Clock safety now trusts the station clock (it was synchronised, or the wait for
    /// it is over): retention may run.
    ClockTrusted,
}

impl std::fmt::Debug for WriterMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterMsg::Reading(r) => f.debug_tuple("Reading").field(r).finish(),
            WriterMsg::Readings(r) => f.debug_tuple("Readings").field(&r.len()).finish(),
            WriterMsg::SetCursor(id) => f.debug_tuple("SetCursor").field(id).finish(),
            WriterMsg::Flush(_) => f.write_str("Flush"),
            WriterMsg::Finish(_) => f.write_str("Finish"),
            WriterMsg::Run(..) => f.write_str("Run"),
            WriterMsg::RegisterSensor { sensor, .. } => {
                f.debug_tuple("RegisterSensor").field(sensor).finish()
            }
            WriterMsg::ClockTrusted => f.write_str("ClockTrusted"),
        }
    }
}

/// Writer settings, built by [`WriterConfig::from_storage`] only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Station time between commits.
    commit_interval_ms: i64,
    /// Raw readings older than this are deleted; 0 keeps them forever.
    retention_ms: i64,
    /// Minute, hour and day aggregates older than these are deleted; 0 keeps them.
    aggregate_retention_ms: [(Resolution, i64); 3],
    /// Readings held in memory while commits fail, before the oldest are dropped.
    max_buffered: usize,
    /// What retention does with readings above the publish cursor.
    unpublished: Unpublished,
    /// Clock safety trusts the station clock from the start.
    clock_trusted: bool,
}

impl WriterConfig {
    /// The writer's settings: the `[storage]` section; what retention does with readings
    /// the broker has not acknowledged ([`Unpublished::Keep`] while MQTT is configured);
    /// and whether clock safety trusts the station clock from the start (otherwise
    /// retention waits for [`WriterMsg::ClockTrusted`]).
    pub fn from_storage(
        storage: &StorageConfig,
        unpublished: Unpublished,
        clock_trusted: bool,
    ) -> WriterConfig {
        WriterConfig {
            commit_interval_ms: storage.commit_interval.as_millis_i64(),
            retention_ms: storage.retention.as_millis_i64(),
            aggregate_retention_ms: [
                (Resolution::Minute, storage.retention_minute.as_millis_i64()),
                (Resolution::Hour, storage.retention_hour.as_millis_i64()),
                (Resolution::Day, storage.retention_day.as_millis_i64()),
            ],
            max_buffered: storage.max_buffered,
            unpublished,
            clock_trusted,
        }
    }
}

/// What the writer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Readings committed.
    pub committed: u64,
    /// Successful commits that stored readings.
    pub commits: u64,
    /// Readings lost: dropped beyond `max_buffered`, or still unwritable at shutdown.
    pub dropped: u64,
}

struct Writer {
    store: Option<Store>,
    cfg: WriterConfig,
    buf: VecDeque<StoredReading>,
    cursor: Option<i64>,
    stats: WriterStats,
    /// Sensors to record (name, kind, hardware id) with the next commit.
    sensors_pending: Vec<(String, &'static str, String)>,
    /// The next id to assign, and the highest reserved one (durably).
    next_id: i64,
    reserved: i64,
    /// Readings not yet on the live feed (feed full, or ids not yet reserved).
    live_pending: Vec<StoredReading>,
    live: Option<mpsc::Sender<Vec<StoredReading>>>,
    committed_through: Option<watch::Sender<i64>>,
    /// The tamper-evident chain's head after each commit (for MQTT's `…/chain`).
    chain: Option<watch::Sender<Option<Head>>>,
    /// An error was logged and writing has not succeeded since.
    failing: bool,
    dropped_logged: u64,
    next_aggregates: Timestamp,
    next_retention: Timestamp,
    retention: RetentionClock,
    /// How many corrupt files this run replaced.
    replaced: u32,
}

/// Retention's own notion of "now": the last value it acted on (persisted in the store)
/// plus station time elapsed since, as the monotonic source measures it. A wall-clock
/// step forward, however large, cannot move it faster than time really passes.
struct RetentionClock {
    clock: Clock,
    /// Clock safety trusts the station clock.
    trusted: bool,
    /// Retention's "now" at `base_elapsed` (`None`: a new database, nothing to protect).
    base: Option<Timestamp>,
    base_elapsed: i64,
    /// The clock ran ahead of retention's "now" and this was logged.
    ahead_logged: bool,
}

impl RetentionClock {
    /// Retention's "now" for station time `now`: never later than the clock, never
    /// later than the base plus elapsed time. Returns (that, the value to carry on).
    fn now(&mut self, now: Timestamp) -> (Timestamp, Timestamp) {
        let elapsed = self.clock.elapsed_ms();
        let allowed = self
            .base
            .map_or(now, |b| b.saturating_add(elapsed - self.base_elapsed));
        if now > allowed.saturating_add(86_400_000) && !self.ahead_logged {
            tracing::warn!(
                ahead_h = (now - allowed) / 3_600_000,
                "The station clock is ahead of the time that has really passed since retention last ran (a clock step, or the station was off): retention deletes by elapsed time only, so old readings are kept longer; nothing is lost."
            );
            self.ahead_logged = true;
        }
        (now.min(allowed), allowed)
    }

    fn advance(&mut self, to: Timestamp) {
        self.base = Some(to);
        self.base_elapsed = self.clock.elapsed_ms();
    }
}

/// Result of one blocking cycle.
struct Cycle {
    result: Result<(), StoreError>,
    batch: VecDeque<StoredReading>,
    cursor: Option<i64>,
    /// The sensors this cycle recorded (given back when the commit failed).
    sensors: Vec<(String, &'static str, String)>,
    aggregates: Option<Result<(), StoreError>>,
    expired: Option<Result<(u64, bool), StoreError>>,
    /// The chain's head after a commit that stored readings.
    head: Option<Result<Option<Head>, StoreError>>,
}

fn align_up(t: Timestamp, grid: i64) -> Timestamp {
    (t.div_euclid(grid) + 1) * grid
}

impl Writer {
    fn push(&mut self, reading: Reading) {
        let row = StoredReading {
            id: self.next_id,
            reading,
        };
        self.next_id += 1;
        if self.live.is_some() {
            self.live_pending.push(row.clone());
            // Bounded even while no id block can be reserved (a full disk): the oldest are
            // left to the store, and the publisher sees the gap in the ids.
            if self.live_pending.len() > LIVE_PENDING_MAX {
                let excess = self.live_pending.len() - LIVE_PENDING_MAX;
                self.live_pending.drain(..excess);
                tracing::debug!("The live feed is behind; the publisher re-reads the oldest readings from the store.");
            }
        }
        self.buf.push_back(row);
        let bound = self.cfg.max_buffered.max(1);
        while self.buf.len() > bound {
            self.buf.pop_front();
            self.stats.dropped += 1;
        }
        if self.stats.dropped > self.dropped_logged && self.dropped_logged == 0 {
            self.log_dropped();
        }
    }

    fn log_dropped(&mut self) {
        let path = self.store.as_ref().map(|s| s.path().display().to_string());
        tracing::error!(
            path = path.unwrap_or_default(),
            dropped = self.stats.dropped,
            max_buffered = self.cfg.max_buffered,
            "Readings are being lost: the database cannot be written and the memory buffer is full. Free space on the disk or fix the error logged before; raise [storage] max_buffered to hold more."
        );
        self.dropped_logged = self.stats.dropped;
    }

    /// Hands the readings whose ids are reserved to the live feed, without waiting.
    fn feed_live(&mut self) {
        let Some(tx) = &self.live else { return };
        let ready = self.live_pending.partition_point(|r| r.id <= self.reserved);
        if ready == 0 {
            return;
        }
        let mut rows: Vec<StoredReading> = self.live_pending.drain(..ready).collect();
        while !rows.is_empty() {
            let rest = if rows.len() > LIVE_BATCH {
                rows.split_off(LIVE_BATCH)
            } else {
                Vec::new()
            };
            match tx.try_send(rows) {
                Ok(()) => rows = rest,
                Err(mpsc::error::TrySendError::Full(mut back)) => {
                    // Try again with the next readings (`push` keeps the wait bounded).
                    back.extend(rest);
                    back.append(&mut self.live_pending);
                    self.live_pending = back;
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.live = None;
                    self.live_pending.clear();
                    return;
                }
            }
        }
    }

    /// Every id up to `id` is stored or will never be.
    fn mark_committed(&mut self, id: i64) {
        if let Some(tx) = &self.committed_through {
            if tx.send(id).is_err() {
                self.committed_through = None;
            }
        }
    }

    /// Commits what is buffered; persists aggregates and runs retention when asked or due.
    async fn cycle(&mut self, now: Timestamp, force_aggregates: bool) -> Result<(), StoreError> {
        // A file found corrupt is replaced by a new one; what is buffered goes there at once.
        for _ in 0..2 {
            if !self.cycle_once(now, force_aggregates).await? {
                break;
            }
        }
        Ok(())
    }

    /// The file was found corrupt (`e`): move it aside and continue in a new one. Ids go
    /// on above every id this run handed out.
    async fn replace_corrupt(&mut self, e: &StoreError) -> Result<(), StoreError> {
        let Some(store) = self.store.take() else {
            return Err(StoreError::Task("the store was lost".into()));
        };
        let known = self.reserved.max(self.next_id - 1);
        let detail = match e {
            StoreError::Corrupt { detail, .. } => detail.clone(),
            other => other.to_string(),
        };
        let replaced = tokio::task::spawn_blocking(move || store.replace_corrupt(known, detail))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        match replaced {
            Ok(store) => {
                self.store = Some(store);
                self.failing = false;
                self.replaced += 1;
                Ok(())
            }
            Err(e) => {
                self.stats.dropped += self.buf.len() as u64;
                tracing::error!(error = %e, lost = self.buf.len(),
                    "The corrupt database could not be replaced by a new one: the station stops, and the readings held in memory are lost. Move the file away and start Anemone again.");
                Err(e)
            }
        }
    }

    /// One commit cycle; `Ok(true)` when the file was found corrupt and replaced.
    async fn cycle_once(
        &mut self,
        now: Timestamp,
        force_aggregates: bool,
    ) -> Result<bool, StoreError> {
        let Some(store) = self.store.take() else {
            return Err(StoreError::Task("the store was lost".into()));
        };
        let aggregates = force_aggregates || now >= self.next_aggregates;
        // Retention acts only on a clock that clock safety trusts, and on its own "now".
        let retention =
            (self.cfg.retention_ms > 0 && self.retention.trusted && now >= self.next_retention)
                .then(|| {
                    let (at, carry) = self.retention.now(now);
                    (at.saturating_sub(self.cfg.retention_ms), carry, at)
                });
        let aggregate_retention = self.cfg.aggregate_retention_ms;
        let unpublished = self.cfg.unpublished;
        let mut batch = std::mem::take(&mut self.buf);
        let cursor = self.cursor.take();
        let sensors = std::mem::take(&mut self.sensors_pending);
        // Reserve the next block while half of this one is still free.
        let reserve = (self.next_id + ID_BLOCK / 2 > self.reserved)
            .then(|| self.reserved.max(self.next_id - 1) + ID_BLOCK);
        let job = tokio::task::spawn_blocking(move || {
            let mut store = store;
            let result = if batch.is_empty()
                && cursor.is_none()
                && reserve.is_none()
                && sensors.is_empty()
            {
                Ok(())
            } else if sensors.is_empty() {
                store.commit_stored(batch.make_contiguous(), cursor, reserve)
            } else {
                // The ids go to the sensor cache only once the commit is through (a failed
                // commit keeps the registrations for the next one).
                let ids = std::cell::RefCell::new(Vec::new());
                let also = |tx: &rusqlite::Transaction<'_>| {
                    *ids.borrow_mut() = Store::upsert_sensors(tx, &sensors)?;
                    Ok(())
                };
                let r =
                    store.commit_stored_also(batch.make_contiguous(), cursor, reserve, Some(&also));
                if r.is_ok() {
                    store.cache_sensors(&ids.borrow());
                }
                r
            };
            let ok = result.is_ok();
            let head = (ok && !batch.is_empty()).then(|| store.chain_head());
            let aggregates = (ok && aggregates).then(|| store.flush_aggregates());
            let expired = retention.filter(|_| ok).map(|(cutoff, carry, at)| {
                store.set_retention_now(carry)?;
                let raw = store.expire_some(cutoff, unpublished, EXPIRE_PER_CYCLE)?;
                for (resolution, keep) in aggregate_retention {
                    if keep > 0 {
                        store.expire_aggregates(resolution, at.saturating_sub(keep))?;
                    }
                }
                Ok(raw)
            });
            (
                store,
                Cycle {
                    result,
                    batch,
                    cursor,
                    sensors,
                    aggregates,
                    expired,
                    head,
                },
            )
        });
        let (store, c) = job.await.map_err(|e| StoreError::Task(e.to_string()))?;
        let path = store.path().display().to_string();
        self.store = Some(store);
        match c.result {
            Ok(()) => {
                if self.failing {
                    tracing::info!(path, "Writing to the database works again.");
                    self.failing = false;
                }
                if !c.batch.is_empty() {
                    self.stats.commits += 1;
                    self.stats.committed += c.batch.len() as u64;
                }
                if let (Some(tx), Some(Ok(head))) = (&self.chain, c.head) {
                    tx.send_replace(head);
                }
                if let Some(r) = reserve {
                    self.reserved = r;
                    self.feed_live();
                }
                // Everything assigned before this cycle's batch was taken is now stored
                // or was dropped beyond `max_buffered`.
                let through = self.buf.front().map_or(self.next_id, |r| r.id) - 1;
                self.mark_committed(through);
            }
            Err(e) => {
                // Put the batch back in front of what arrived meanwhile, keeping order.
                let mut batch = c.batch;
                batch.extend(self.buf.drain(..));
                self.buf = batch;
                let bound = self.cfg.max_buffered.max(1);
                while self.buf.len() > bound {
                    self.buf.pop_front();
                    self.stats.dropped += 1;
                }
                self.cursor = match (c.cursor, self.cursor) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                let mut sensors = c.sensors;
                sensors.append(&mut self.sensors_pending);
                self.sensors_pending = sensors;
                if e.is_corrupt() {
                    self.replace_corrupt(&e).await?;
                    return Ok(true);
                }
                if self.failing {
                    tracing::debug!(path, error = %e, buffered = self.buf.len(), "Commit failed again; will retry.");
                } else {
                    tracing::error!(path, error = %e, buffered = self.buf.len(),
                        "Cannot write readings to the database; keeping them in memory and retrying every commit interval.");
                    self.failing = true;
                }
                if self.stats.dropped > self.dropped_logged {
                    self.log_dropped();
                }
                return Ok(false);
            }
        }
        let aggregates_err = c.aggregates.as_ref().and_then(|r| r.as_ref().err());
        let expired_err = c.expired.as_ref().and_then(|r| r.as_ref().err());
        if let Some(e) = aggregates_err.or(expired_err).filter(|e| e.is_corrupt()) {
            self.replace_corrupt(e).await?;
            return Ok(true);
        }
        match c.aggregates {
            Some(Ok(())) => self.next_aggregates = align_up(now, AGGREGATE_PERSIST_MS),
            Some(Err(e)) => {
                tracing::warn!(path, error = %e, "Could not persist the aggregates; they stay in memory and are retried.")
            }
            None => {}
        }
        if let (Some(Ok(_)), Some((_, carry, _))) = (&c.expired, retention) {
            self.retention.advance(carry);
        }
        match c.expired {
            Some(Ok((n, more))) => {
                if n > 0 {
                    tracing::debug!(path, deleted = n, "Retention deleted old raw readings.");
                }
                if !more {
                    self.next_retention = now + RETENTION_EVERY_MS;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(path, error = %e, "Retention failed; it is retried next hour.");
                self.next_retention = now + RETENTION_EVERY_MS;
            }
            None => {}
        }
        Ok(false)
    }

    async fn run_job(&mut self, job: StoreJob) -> Result<Result<(), StoreError>, StoreError> {
        let Some(mut store) = self.store.take() else {
            return Err(StoreError::Task("the store was lost".into()));
        };
        let (store, result) = tokio::task::spawn_blocking(move || {
            let r = job(&mut store);
            (store, r)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        self.store = Some(store);
        if let Err(e) = &result {
            if e.is_corrupt() {
                self.replace_corrupt(e).await?;
            }
        }
        Ok(result)
    }
}

/// Runs until `rx` closes (all senders dropped), then commits everything buffered,
/// persists the aggregates and returns the store.
///
/// Commits every `commit_interval_ms` of station time (sleeping on `participant`).
/// Readings get their ids on arrival and go to `live` when given, before their commit and
/// without ever waiting (see the module docs).
///
/// At shutdown, readings that still cannot be written after a few attempts are counted
/// in [`WriterStats::dropped`] and logged as an ERROR.
pub async fn run_writer(
    store: Store,
    rx: mpsc::Receiver<WriterMsg>,
    participant: Participant,
    cfg: WriterConfig,
    live: Option<mpsc::Sender<Vec<StoredReading>>>,
) -> Result<(Store, WriterStats), StoreError> {
    let feeds = LiveFeeds {
        live,
        committed_through: None,
        chain: None,
    };
    run_writer_with_progress(store, rx, participant, cfg, feeds, None).await
}

/// Where the writer reports to MQTT.
#[derive(Default)]
pub struct LiveFeeds {
    /// Every reading, with its id, as soon as its id is reserved (before its commit).
    pub live: Option<mpsc::Sender<Vec<StoredReading>>>,
    /// After each commit: every reading id up to this one is stored or will never be.
    /// Starts at the highest id that existed before this run.
    pub committed_through: Option<watch::Sender<i64>>,
    /// The chain's head ([`Store::chain_head`]) at the start and after every commit
    /// that stored readings.
    pub chain: Option<watch::Sender<Option<Head>>>,
}

/// [`run_writer`], bumping `progress` after every commit cycle — a successful commit or a
/// handled failure (a full disk) alike — so the systemd watchdog can tell a working
/// writer from a hung one.
pub async fn run_writer_with_progress(
    store: Store,
    mut rx: mpsc::Receiver<WriterMsg>,
    participant: Participant,
    cfg: WriterConfig,
    feeds: LiveFeeds,
    progress: Option<std::sync::Arc<crate::notify::Progress>>,
) -> Result<(Store, WriterStats), StoreError> {
    let interval = cfg.commit_interval_ms.max(1);
    let start = participant.now();
    let (store, floor, retention_base, head) = tokio::task::spawn_blocking(move || {
        let floor = store.id_floor();
        // A head that cannot be read is not published; storing goes on.
        let head = store.chain_head().unwrap_or_default();
        // Retention continues from the time it last acted on; a database from before
        // that was recorded continues from its newest reading.
        let base = match store.retention_now() {
            Ok(Some(t)) => Ok(Some(t)),
            Ok(None) => store.last_reading_ts(),
            Err(e) => Err(e),
        };
        (store, floor, base, head)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?;
    let floor = floor?;
    let retention_base = retention_base?;
    if let Some(tx) = &feeds.committed_through {
        let _ = tx.send(floor);
    }
    if let Some(tx) = &feeds.chain {
        tx.send_replace(head);
    }
    let trusted = cfg.clock_trusted;
    let mut w = Writer {
        store: Some(store),
        cfg,
        buf: VecDeque::new(),
        cursor: None,
        stats: WriterStats::default(),
        next_id: floor + 1,
        reserved: floor,
        sensors_pending: Vec::new(),
        live_pending: Vec::new(),
        live: feeds.live,
        committed_through: feeds.committed_through,
        chain: feeds.chain,
        failing: false,
        dropped_logged: 0,
        next_aggregates: align_up(start, AGGREGATE_PERSIST_MS),
        next_retention: start,
        retention: RetentionClock {
            clock: participant.clock().clone(),
            trusted,
            base: retention_base,
            base_elapsed: participant.clock().elapsed_ms(),
            ahead_logged: false,
        },
        replaced: 0,
    };
    // A file too large to check at open is checked now, beside the writer; if it is
    // corrupt the writer moves to a new file as for any corruption found while running.
    let mut check = match &w.store {
        Some(s) if !s.checked_at_open() => {
            let path = s.path().to_path_buf();
            Some(tokio::task::spawn_blocking(move || {
                Store::check_file(&path)
            }))
        }
        _ => None,
    };
    let mut next_commit = start + interval;
    // The first reading is committed at once, so a new station shows data (and proves
    // its database works) within a second; batching starts after that.
    let mut first_pending = true;
    let mut finished = false;
    loop {
        if !finished && participant.now() >= next_commit {
            let now = participant.now();
            w.cycle(now, false).await?;
            if let Some(p) = &progress {
                p.store_beat();
            }
            next_commit = participant.now().max(now) + interval;
        }
        tokio::select! {
            biased;
            msg = rx.recv() => match msg {
                Some(WriterMsg::Reading(r)) => {
                    w.push(r);
                    if first_pending {
                        first_pending = false;
                        next_commit = participant.now();
                    }
                }
                Some(WriterMsg::Readings(rs)) => {
                    for r in rs {
                        w.push(r);
                    }
                    if first_pending {
                        first_pending = false;
                        next_commit = participant.now();
                    }
                }
                Some(WriterMsg::SetCursor(id)) => {
                    w.cursor = Some(w.cursor.map_or(id, |c| c.max(id)));
                }
                Some(WriterMsg::Flush(done)) => {
                    w.cycle(participant.now(), true).await?;
                    let _ = done.send(());
                }
                Some(WriterMsg::Finish(done)) => {
                    w.cycle(participant.now(), true).await?;
                    finished = true;
                    let _ = done.send(());
                }
                Some(WriterMsg::Run(job, done)) => {
                    let r = w.run_job(job).await?;
                    let _ = done.send(r);
                }
                Some(WriterMsg::RegisterSensor { sensor, kind, hardware_id }) => {
                    w.sensors_pending.retain(|(s, ..)| *s != sensor);
                    w.sensors_pending.push((sensor, kind, hardware_id));
                }
                Some(WriterMsg::ClockTrusted) => w.retention.trusted = true,
                None => break,
            },
            checked = async { check.as_mut()?.await.ok() }, if check.is_some() => {
                check = None;
                match checked {
                    // (Unless the file it checked was replaced meanwhile.)
                    Some(Err(e)) if e.is_corrupt() && w.replaced == 0 => w.replace_corrupt(&e).await?,
                    Some(Err(e)) => tracing::warn!(error = %e, "Could not check the database for damage."),
                    _ => {}
                }
            }
            _ = participant.sleep_until(next_commit), if !finished => {}
            // After `Finish` no commit timer runs: retry what is owed on real time (a live
            // feed that was full, a commit that failed) while the publisher drains.
            _ = tokio::time::sleep(FINISHED_RETRY), if finished && (w.failing || !w.live_pending.is_empty()) => {
                if w.failing {
                    w.cycle(participant.now(), true).await?;
                }
            }
        }
        // Once the readings of this moment are in, they go live together.
        if !w.live_pending.is_empty() && (rx.is_empty() || w.live_pending.len() >= LIVE_BATCH) {
            w.feed_live();
        }
    }
    // Shutdown: everything buffered goes to disk, with a few quick retries.
    for attempt in 0..3 {
        w.cycle(participant.now(), true).await?;
        if !w.failing {
            break;
        }
        if attempt < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    if w.failing && (!w.buf.is_empty() || w.cursor.is_some()) {
        w.stats.dropped += w.buf.len() as u64;
        let path = w.store.as_ref().map(|s| s.path().display().to_string());
        tracing::error!(
            path = path.unwrap_or_default(),
            lost = w.buf.len(),
            "Shutting down with readings that could not be written: they are lost. Free space on the disk."
        );
    }
    match w.store.take() {
        Some(s) => Ok((s, w.stats)),
        None => Err(StoreError::Task("the store was lost".into())),
    }
}
