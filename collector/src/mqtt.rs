//! MQTT in: rumqttc with a persistent session (`clean_session = false`, a fixed client id),
//! QoS 1 and manual acknowledgements. This task only polls the connection and hands each
//! message on; the writer acknowledges a message once the transaction holding it has
//! committed. Reconnects wait 0.5 s, then twice as long each time up to 30 s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;

use crate::config::Config;

/// A message and the connection it came on (acknowledgements only count on that one).
#[derive(Debug)]
pub struct Incoming {
    /// The message.
    pub publish: Publish,
    /// The connection's number ([`Connection::generation`] at arrival).
    pub generation: u64,
}

/// The connection's shared state.
#[derive(Debug, Default)]
pub struct Connection {
    /// Counts connections (ConnAcks); an acknowledgement of a message from an earlier
    /// connection would name a packet id the broker may have given to another message.
    pub generation: AtomicU64,
    /// Set when the collector is shutting down.
    pub stopping: AtomicBool,
    /// Acknowledgements handed to rumqttc (QoS 1 messages).
    pub acks_queued: AtomicU64,
    /// Acknowledgements rumqttc has written to the broker.
    pub acks_sent: AtomicU64,
    /// Messages handed to the writer and not taken by it yet.
    pub pending: AtomicU64,
    /// QoS 0 messages dropped because the writer was [`QOS0_BACKLOG`] behind.
    pub dropped_qos0: AtomicU64,
}

/// How many messages may wait for the writer before a QoS 0 message is dropped (the
/// broker does not hold QoS 0 messages back for unacknowledged ones; QoS 1 messages are
/// never dropped: the broker's in-flight window bounds them).
pub const QOS0_BACKLOG: u64 = 100_000;

/// Above this many messages waiting for the writer, the broker's in-flight window is too
/// large (or unlimited) for the collector's memory: a warning says what to set.
pub const WINDOW_WARNING: u64 = 1_000_000;

impl Connection {
    /// Acknowledgements handed to rumqttc and not written to the broker yet.
    pub fn unsent_acks(&self) -> u64 {
        let queued = self.acks_queued.load(Ordering::SeqCst);
        queued.saturating_sub(self.acks_sent.load(Ordering::SeqCst))
    }
}

/// The subscriptions: readings (shared when `share_group` is set) and the retained
/// status, meta, state and chain head of every station (never shared: brokers send retained messages
/// only to plain subscriptions, and every collector keeps the stations up to date).
pub fn filters(cfg: &Config) -> Vec<SubscribeFilter> {
    let p = &cfg.mqtt.topic_prefix;
    let readings = match &cfg.mqtt.share_group {
        Some(g) => format!("$share/{g}/{p}/+/reading/+"),
        None => format!("{p}/+/reading/+"),
    };
    [
        readings,
        format!("{p}/+/status"),
        format!("{p}/+/meta"),
        format!("{p}/+/state"),
        format!("{p}/+/chain"),
    ]
    .into_iter()
    .map(|path| SubscribeFilter::new(path, QoS::AtLeastOnce))
    .collect()
}

/// The client options of `cfg` (the password already read).
pub fn options(cfg: &Config, password: Option<String>) -> Result<MqttOptions, String> {
    let (host, port) = cfg.broker_addr()?;
    let mut o = MqttOptions::new(cfg.mqtt.client_id.clone(), host, port);
    o.set_keep_alive(cfg.mqtt.keep_alive.0)
        .set_clean_session(false)
        .set_manual_acks(true)
        // Anything up to MQTT's own limit is read, so that an oversized message becomes a
        // dead letter instead of a connection that fails on it forever.
        .set_max_packet_size(268_435_456, 1 << 20)
        .set_request_channel_capacity(cfg.batch.size.saturating_mul(10).max(1_000));
    if let Some(user) = &cfg.mqtt.username {
        o.set_credentials(user.clone(), password.unwrap_or_default());
    }
    Ok(o)
}

/// Polls the connection until shutdown, sending messages to `tx`.
///
/// The poller never waits for the writer: rumqttc answers pings and sends the writer's
/// acknowledgements only while it is polled, so a poller that waited on a busy writer
/// lost the connection after the keep-alive and the broker sent every unacknowledged
/// message again. What it holds for the writer is bounded by the broker instead: QoS 1
/// messages are acknowledged only after their commit, so at most the broker's in-flight
/// window (Mosquitto `max_inflight_messages`) is ever waiting; QoS 0 messages beyond
/// [`QOS0_BACKLOG`] waiting are dropped.
pub async fn poll(
    cfg: Config,
    client: AsyncClient,
    mut eventloop: EventLoop,
    tx: mpsc::UnboundedSender<Incoming>,
    conn: Arc<Connection>,
) {
    let mut warned_window = false;
    let filters = filters(&cfg);
    let mut backoff = Duration::from_millis(500);
    let mut failures = 0u32;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                let n = conn.generation.fetch_add(1, Ordering::SeqCst) + 1;
                tracing::info!(broker = %cfg.mqtt.broker, client_id = %cfg.mqtt.client_id, session_present = ack.session_present, connection = n, "Connected to the broker");
                backoff = Duration::from_millis(500);
                failures = 0;
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
                    tracing::warn!(error = %e, "Could not subscribe; reconnecting");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, SubscribeReasonCode::Failure))
                    .count();
                if refused == 0 {
                    tracing::info!(topics = filters.len(), "Subscribed to the stations' topics");
                }
                for (code, f) in ack.return_codes.iter().zip(&filters) {
                    if matches!(code, SubscribeReasonCode::Failure) {
                        tracing::error!(topic = %f.path, "The broker refused the subscription to {}: give the collector's account read access to it in the broker's ACL", f.path);
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let generation = conn.generation.load(Ordering::SeqCst);
                let waiting = conn.pending.load(Ordering::SeqCst);
                if publish.qos == QoS::AtMostOnce && waiting >= QOS0_BACKLOG {
                    let n = conn.dropped_qos0.fetch_add(1, Ordering::SeqCst) + 1;
                    if n == 1 || n % 10_000 == 0 {
                        tracing::warn!(topic = %publish.topic, dropped = n, "Dropped a QoS 0 message: the database is {waiting} messages behind (stations should publish readings with QoS 1)");
                    }
                    continue;
                }
                if waiting >= WINDOW_WARNING && !warned_window {
                    warned_window = true;
                    tracing::warn!(waiting, "{waiting} messages wait for the database: the broker's in-flight window is too large; set Mosquitto's max_inflight_messages to a few times [batch] size");
                }
                conn.pending.fetch_add(1, Ordering::SeqCst);
                // When the writer has gone (shutting down) the message stays unacknowledged
                // and the broker sends it again to the next session.
                if tx
                    .send(Incoming {
                        publish,
                        generation,
                    })
                    .is_err()
                {
                    conn.pending.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Ok(Event::Outgoing(Outgoing::PubAck(_))) => {
                conn.acks_sent.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                // rumqttc drops the acknowledgements still queued: those messages come
                // again on the next connection and are acknowledged then.
                let queued = conn.acks_queued.load(Ordering::SeqCst);
                conn.acks_sent.store(queued, Ordering::SeqCst);
                if conn.stopping.load(Ordering::SeqCst) {
                    return;
                }
                failures += 1;
                if failures == 1 || failures % 10 == 0 {
                    tracing::warn!(error = %e, broker = %cfg.mqtt.broker, retry_in_ms = backoff.as_millis() as u64, "The broker connection failed ({failures} in a row); retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
