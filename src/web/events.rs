//! The live side of the page: the fan-out of the store writer's live feed, the latest
//! value of every series (for `/api/now`), and `/api/events` (Server-Sent Events).
//!
//! The writer's live feed goes to one fan-out task ([`fan_out`]): each batch is first
//! offered to a `tokio::sync::broadcast` channel, which never waits (a subscriber that
//! falls more than [`FEED_DEPTH`] batches behind misses the oldest and is told so), and
//! then handed to the MQTT publisher as before. A slow browser therefore never slows or
//! blocks the publisher, and the publisher's back-pressure on the writer is unchanged.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit};

use crate::reading::{Quantity, Reading, StoredReading};

use super::api::ApiError;
use super::AppState;

/// Batches of the live feed a subscriber may fall behind before it misses some.
pub const FEED_DEPTH: usize = 256;
/// Batches between the writer and the fan-out task.
const FAN_OUT_DEPTH: usize = 16;
/// A comment line this often keeps idle connections (and proxies) open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One batch of the live feed, shared by every subscriber.
pub type LiveBatch = Arc<Vec<StoredReading>>;

/// Returns the sender the store writer should feed: every batch goes to `web` (never
/// waiting) and then to `next` (the MQTT publisher, waiting as the writer's feed did).
pub fn fan_out(
    web: broadcast::Sender<LiveBatch>,
    next: Option<mpsc::Sender<Vec<StoredReading>>>,
) -> mpsc::Sender<Vec<StoredReading>> {
    let (tx, mut rx) = mpsc::channel::<Vec<StoredReading>>(FAN_OUT_DEPTH);
    tokio::spawn(async move {
        let mut next = next;
        while let Some(batch) = rx.recv().await {
            let shared = Arc::new(batch);
            // No subscriber is not an error: nobody has the page open.
            let _ = web.send(shared.clone());
            if let Some(tx) = &next {
                let batch = Arc::try_unwrap(shared).unwrap_or_else(|a| a.as_ref().clone());
                if tx.send(batch).await.is_err() {
                    next = None;
                }
            }
        }
    });
    tx
}

/// The newest reading of every (sensor, quantity), kept from the live feed.
#[derive(Clone, Default)]
pub struct NowCache {
    inner: Arc<Mutex<BTreeMap<(String, Quantity), Reading>>>,
}

impl NowCache {
    /// Keeps `r` when it is newer than what is held for its series.
    pub fn update(&self, r: &Reading) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (r.sensor.to_string(), r.quantity);
        match m.get(&key) {
            Some(old) if old.ts > r.ts => {}
            _ => {
                m.insert(key, r.clone());
            }
        }
    }

    /// Every series' newest reading, in (sensor, quantity) order.
    pub fn snapshot(&self) -> Vec<Reading> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.values().cloned().collect()
    }

    /// Follows the live feed until it closes or `stop` is set.
    pub async fn follow(
        self,
        mut rx: broadcast::Receiver<LiveBatch>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                batch = rx.recv() => match batch {
                    Ok(b) => b.iter().for_each(|r| self.update(&r.reading)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = stop.changed() => break,
            }
        }
    }
}

/// One SSE client: its place in the live feed, the slot it holds, and the stop signal.
struct Subscriber {
    rx: broadcast::Receiver<LiveBatch>,
    stop: watch::Receiver<bool>,
    pending: std::collections::VecDeque<Event>,
    _slot: OwnedSemaphorePermit,
}

impl Subscriber {
    /// The next event: a reading of the live feed, or `None` when the station stops.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if *self.stop.borrow() {
                return None;
            }
            tokio::select! {
                batch = self.rx.recv() => match batch {
                    Ok(b) => self.pending.extend(b.iter().map(reading_event)),
                    // A slow client misses what it could not take.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!("A live page fell behind and missed {n} batches of readings.");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                changed = self.stop.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}

/// `event: reading` with the reading's one JSON serialisation as its data.
fn reading_event(r: &StoredReading) -> Event {
    let mut json = Vec::with_capacity(160);
    r.reading.json().write_to(&mut json);
    Event::default()
        .event("reading")
        .data(String::from_utf8_lossy(&json))
}

/// `GET /api/events`: one `reading` event per reading, a keep-alive comment every 15 s.
/// Beyond `[web] max_sse_clients` open streams the answer is 503.
pub async fn events(State(state): State<AppState>) -> Response {
    let Ok(slot) = state.sse_slots.clone().try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} live pages are open already ([web] max_sse_clients); close one or raise the limit",
                state.config.web.max_sse_clients
            ),
        )
        .into_response();
    };
    let sub = Subscriber {
        rx: state.live.subscribe(),
        stop: state.stop.clone(),
        pending: std::collections::VecDeque::new(),
        _slot: slot,
    };
    // Fused, like the CSV download's: a body may be polled again after its end.
    let stream =
        futures_util::StreamExt::fuse(futures_util::stream::unfold(sub, |mut sub| async move {
            sub.next().await.map(|e| (Ok::<Event, Infallible>(e), sub))
        }));
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Quantity, Reading, SensorId};

    fn batch(id: i64) -> Vec<StoredReading> {
        let s: SensorId = Arc::from("air");
        vec![StoredReading {
            id,
            reading: Reading::new(id * 1000, &s, Quantity::AirTemperature, 1.0),
        }]
    }

    #[tokio::test]
    async fn a_stuck_page_never_holds_up_mqtt_and_misses_the_oldest() {
        let (web, _) = broadcast::channel::<LiveBatch>(FEED_DEPTH);
        let mut stuck = web.subscribe();
        let (mqtt_tx, mut mqtt_rx) = mpsc::channel(8);
        let feed = fan_out(web.clone(), Some(mqtt_tx));
        let n = (FEED_DEPTH * 4) as i64;
        let producer = tokio::spawn(async move {
            for id in 1..=n {
                feed.send(batch(id)).await.unwrap();
            }
        });
        // MQTT receives every batch, in order, although the page reads nothing.
        for id in 1..=n {
            assert_eq!(mqtt_rx.recv().await.unwrap()[0].id, id);
        }
        producer.await.unwrap();
        // The page missed the oldest and is told so, then reads the newest.
        assert!(matches!(
            stuck.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
        let mut last = 0;
        while let Ok(b) = stuck.try_recv() {
            last = b[0].id;
        }
        assert_eq!(last, n);
    }

    #[test]
    fn the_cache_keeps_the_newest_of_each_series() {
        let cache = NowCache::default();
        let s: SensorId = Arc::from("air");
        cache.update(&Reading::new(2, &s, Quantity::AirTemperature, 2.0));
        cache.update(&Reading::new(1, &s, Quantity::AirTemperature, 1.0));
        cache.update(&Reading::new(1, &s, Quantity::RelativeHumidity, 50.0));
        let snap = cache.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].value, Some(2.0));
    }
}
