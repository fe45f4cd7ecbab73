//! The collector's run: MQTT messages into batches, each batch one PostgreSQL transaction,
//! each message acknowledged to the broker only after its transaction committed.
//!
//! A collector killed at any moment has committed some batches (acknowledged or not yet)
//! and holds others uncommitted; the broker sends every unacknowledged message again to the
//! same client id, and rows already committed make those redeliveries no-ops. A database
//! that goes away is retried with backoff while the messages wait at the broker.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::AsyncClient;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{Config, ConfigError};
use crate::db::{self, Batch, Db, StationUpdate};
use crate::message::{self, Parsed};
use crate::mqtt::{self, Connection, Incoming};
use crate::schema::{self, SchemaError, SCHEMA_VERSION};

/// Why the collector stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The config names a broker the client cannot use.
    #[error("{0}")]
    Broker(String),
    /// The schema is missing, old or too new.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// PostgreSQL cannot be used at start.
    #[error("cannot use PostgreSQL at [postgres] url: {0}")]
    Database(tokio_postgres::Error),
    /// The database's schema is not this collector's.
    #[error("the database has schema version {found}, this collector needs {SCHEMA_VERSION}: run `anemone-collector --config <file> migrate` first")]
    NotMigrated {
        /// The version found.
        found: i32,
    },
}

/// Counters of a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received.
    pub messages: AtomicU64,
    /// New reading rows committed.
    pub inserted: AtomicU64,
    /// Readings that were already stored (redeliveries).
    pub duplicates: AtomicU64,
    /// Dead letters committed.
    pub dead: AtomicU64,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Failed write attempts (retried).
    pub write_failures: AtomicU64,
}

/// How long a shutdown waits for a database that is away before giving up on the batch
/// it holds (the broker keeps those messages: they were never acknowledged).
const SHUTDOWN_WRITE_GRACE: Duration = Duration::from_secs(10);

/// How long a shutdown waits for its acknowledgements to reach the broker.
const SHUTDOWN_ACK_GRACE: Duration = Duration::from_secs(30);

/// Connects to PostgreSQL, retrying with backoff until it answers or `give_up` passes.
async fn connect_db(url: &str, give_up: Option<Instant>) -> Option<Db> {
    let mut backoff = Duration::from_millis(200);
    let mut failures = 0u32;
    loop {
        let attempt = async {
            let client = db::connect(url).await?;
            Db::new(client).await
        };
        match attempt.await {
            Ok(db) => return Some(db),
            Err(e) => {
                failures += 1;
                if failures == 1 || failures % 10 == 0 {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "PostgreSQL does not answer ({failures} in a row); retrying");
                }
            }
        }
        if give_up.is_some_and(|t| Instant::now() + backoff > t) {
            return None;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Runs until `shutdown` resolves, then commits and acknowledges what it holds.
pub async fn run(
    cfg: Config,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let password = cfg.password()?;
    let options = mqtt::options(&cfg, password).map_err(RunError::Broker)?;

    let client = db::connect(&cfg.postgres.url)
        .await
        .map_err(RunError::Database)?;
    let found = schema::version(&client).await?;
    if found != SCHEMA_VERSION {
        return Err(RunError::NotMigrated { found });
    }
    let mut db = Db::new(client).await.map_err(RunError::Database)?;

    let (client, eventloop) =
        AsyncClient::new(options, cfg.batch.size.saturating_mul(10).max(1_000));
    let conn = Arc::new(Connection::default());
    // Unbounded on purpose: the poller must never wait for the writer (see `mqtt::poll`);
    // the broker's in-flight window bounds what waits here.
    let (tx, mut rx) = mpsc::unbounded_channel::<Incoming>();
    let poller = tokio::spawn(mqtt::poll(
        cfg.clone(),
        client.clone(),
        eventloop,
        tx,
        conn.clone(),
    ));
    tracing::info!(client_id = %cfg.mqtt.client_id, share_group = cfg.mqtt.share_group.as_deref().unwrap_or("-"), batch = cfg.batch.size, "Collector started");

    let mut held: Vec<Incoming> = Vec::with_capacity(cfg.batch.size);
    let mut batch = Batch::default();
    let mut acks: VecDeque<Incoming> = VecDeque::new();
    let mut deadline: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let due = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_millis(5)), if !acks.is_empty() => {
                send_acks(&client, &conn, &mut acks);
            }
            _ = tokio::time::sleep_until(due), if deadline.is_some() => {
                flush(&cfg, &mut db, &client, &conn, &stats, &mut batch, &mut held, &mut acks, None).await;
                deadline = None;
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                conn.pending.fetch_sub(1, Ordering::SeqCst);
                stats.messages.fetch_add(1, Ordering::Relaxed);
                add(&cfg, &mut batch, &msg);
                held.push(msg);
                if deadline.is_none() {
                    deadline = Some(Instant::now() + cfg.batch_interval());
                }
                if held.len() >= cfg.batch.size {
                    flush(&cfg, &mut db, &client, &conn, &stats, &mut batch, &mut held, &mut acks, None).await;
                    deadline = None;
                }
            }
        }
    }

    tracing::info!(
        held = held.len(),
        "Stopping: committing and acknowledging what the collector holds"
    );
    conn.stopping.store(true, Ordering::SeqCst);
    // Messages already handed over are part of what the collector holds.
    while let Ok(msg) = rx.try_recv() {
        conn.pending.fetch_sub(1, Ordering::SeqCst);
        stats.messages.fetch_add(1, Ordering::Relaxed);
        add(&cfg, &mut batch, &msg);
        held.push(msg);
    }
    drop(rx);
    flush(
        &cfg,
        &mut db,
        &client,
        &conn,
        &stats,
        &mut batch,
        &mut held,
        &mut acks,
        Some(Instant::now() + SHUTDOWN_WRITE_GRACE),
    )
    .await;
    // The poller no longer waits for the writer, so rumqttc's channel drains: wait until
    // every acknowledgement has been written to the broker, then disconnect.
    let end = Instant::now() + SHUTDOWN_ACK_GRACE;
    loop {
        send_acks(&client, &conn, &mut acks);
        let unsent = acks.len() as u64 + conn.unsent_acks();
        if unsent == 0 {
            break;
        }
        if Instant::now() > end {
            tracing::warn!(unsent, "Stopping with acknowledgements not sent: the broker sends those messages again (they are stored, so that is a no-op)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = client.disconnect().await;
    let mut poller = poller;
    if tokio::time::timeout(Duration::from_secs(10), &mut poller)
        .await
        .is_err()
    {
        poller.abort();
    }
    tracing::info!(
        messages = stats.messages.load(Ordering::Relaxed),
        inserted = stats.inserted.load(Ordering::Relaxed),
        duplicates = stats.duplicates.load(Ordering::Relaxed),
        dead_letters = stats.dead.load(Ordering::Relaxed),
        commits = stats.commits.load(Ordering::Relaxed),
        "Collector stopped"
    );
    Ok(())
}

fn add(cfg: &Config, batch: &mut Batch, msg: &Incoming) {
    let p = &msg.publish;
    match message::parse(
        &cfg.mqtt.topic_prefix,
        cfg.mqtt.max_payload_bytes,
        &p.topic,
        &p.payload,
    ) {
        Parsed::Reading(r) => batch.readings.push(r),
        Parsed::Status { station, online } => {
            batch.updates.push(StationUpdate::Status(station, online))
        }
        Parsed::Meta(m) => batch.updates.push(StationUpdate::Meta(m)),
        Parsed::State { station, json } => batch.updates.push(StationUpdate::State(station, json)),
        Parsed::Chain(h) => batch.updates.push(StationUpdate::Chain(h)),
        Parsed::Cleared => {}
        Parsed::Dead(d) => {
            tracing::warn!(topic = %d.topic, reason = %d.reason, "Dead letter: {}", d.reason);
            batch.dead.push(d);
        }
    }
}

/// Writes the batch (retrying until it commits, or until `give_up` passes), then
/// acknowledges its messages.
#[allow(clippy::too_many_arguments)]
async fn flush(
    cfg: &Config,
    db: &mut Db,
    client: &AsyncClient,
    conn: &Connection,
    stats: &Stats,
    batch: &mut Batch,
    held: &mut Vec<Incoming>,
    acks: &mut VecDeque<Incoming>,
    give_up: Option<Instant>,
) {
    if held.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(200);
    loop {
        if db.is_closed() {
            match connect_db(&cfg.postgres.url, give_up).await {
                Some(fresh) => {
                    tracing::info!("Reconnected to PostgreSQL");
                    *db = fresh;
                }
                None => {
                    tracing::warn!(held = held.len(), "PostgreSQL did not come back before the shutdown: these messages stay unacknowledged at the broker");
                    return;
                }
            }
        }
        match db.write(batch).await {
            Ok(w) => {
                stats.inserted.fetch_add(w.inserted, Ordering::Relaxed);
                stats.duplicates.fetch_add(w.duplicates, Ordering::Relaxed);
                stats.dead.fetch_add(w.dead, Ordering::Relaxed);
                stats.commits.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    messages = held.len(),
                    inserted = w.inserted,
                    duplicates = w.duplicates,
                    dead = w.dead,
                    "Committed a batch"
                );
                break;
            }
            Err(e) => {
                stats.write_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Writing a batch failed; retrying it");
                if give_up.is_some_and(|t| Instant::now() + backoff > t) {
                    tracing::warn!(held = held.len(), "Giving up on the batch at shutdown: its messages stay unacknowledged at the broker");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    acks.extend(held.drain(..));
    batch.clear();
    send_acks(client, conn, acks);
}

/// Queues the acknowledgements of committed messages without waiting: rumqttc's request
/// channel drains only while the connection is polled, and the poller may itself be
/// waiting for the writer, so what does not fit now is tried again shortly.
fn send_acks(client: &AsyncClient, conn: &Connection, acks: &mut VecDeque<Incoming>) {
    let current = conn.generation.load(Ordering::SeqCst);
    while let Some(msg) = acks.front() {
        // A message from an earlier connection is sent again on this one; that copy is
        // the one to acknowledge (its row is already committed, so it is a no-op).
        if msg.generation != current {
            acks.pop_front();
            continue;
        }
        match client.try_ack(&msg.publish) {
            Ok(()) => {
                if msg.publish.qos != rumqttc::QoS::AtMostOnce {
                    conn.acks_queued.fetch_add(1, Ordering::SeqCst);
                }
                acks.pop_front();
            }
            Err(_) => return,
        }
    }
}
