//! The station's own web page and JSON API (`[web]`): read-only, served by the binary on
//! the station's tokio runtime with axum.
//!
//! * `GET /`, `/app.js`, `/app.css`, `/favicon.svg`: the page.
//! * `GET /api/now`, `/api/history`, `/api/health`: JSON ([`api`]).
//! * `GET /api/events`: live readings as Server-Sent Events ([`events`]).
//! * `GET /export.csv`: a range as CSV, through `anemone export`'s code.
//! * `GET /chart/{name}.svg?span=24h|7d|30d|1y&units=metric|imperial`: one chart, drawn
//!   by [`charts`] from the history at the resolution that fills it ([`chart`]).
//!
//! The page's assets are in [`page`], its SVG charts in [`charts`] (pure rendering).
//!
//! History comes from a [`source::HistorySource`] (the station's SQLite store here, the
//! collector's PostgreSQL later); live values from the store writer's live feed through a
//! broadcast fan-out that never holds up MQTT.
//!
//! Limits: `[web] request_timeout` per request (408), `max_connections` open at once
//! (more wait to be accepted), `max_sse_clients` live streams (more get 503), gzip for
//! every compressible answer, and long ranges answered at a coarser resolution
//! ([`params::choose`]). Every route is GET (HEAD too); other methods get 405. With
//! `password_file`, every route needs HTTP basic auth ([`auth`]).

pub mod api;
pub mod assets;
pub mod auth;
pub mod chart;
pub mod charts;
pub mod events;
pub mod page;
pub mod params;
pub mod source;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit, Semaphore};
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;

use crate::clock::Clock;
use crate::config::web::{parse_web_listen, web_password, WebPasswordError};
use crate::config::Config;
use crate::reading::Timestamp;

use events::{LiveBatch, NowCache};
use source::HistorySource;

/// What the station tells the page about itself.
pub struct StationStatus {
    /// The database file (its file system's free space is shown).
    pub db_path: PathBuf,
    /// Station time at start.
    pub started: Timestamp,
    /// When the process started serving (uptime).
    pub started_at: Instant,
    /// Whether the MQTT publisher is connected (`None`: no publisher).
    pub mqtt_connected: Option<watch::Receiver<bool>>,
    /// The last GPS fix's time (clock safety's GPS source), shared with the HAL.
    pub gps_clock: crate::hal::timesync::GpsClock,
}

/// Everything a handler may read.
#[derive(Clone)]
pub struct AppState {
    /// The station's config (never shown).
    pub config: Arc<Config>,
    /// History.
    pub source: Arc<dyn HistorySource>,
    /// The live feed's fan-out.
    pub live: broadcast::Sender<LiveBatch>,
    /// The newest reading of every series.
    pub now: NowCache,
    /// The station clock ("now", "today").
    pub clock: Clock,
    /// Status for `/api/health`.
    pub status: Arc<StationStatus>,
    /// Free places for live streams.
    pub sse_slots: Arc<Semaphore>,
    /// Set when the station stops (ends the live streams).
    pub stop: watch::Receiver<bool>,
}

/// Why the page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// `[web] listen` is not an address (`validate` refuses it first).
    #[error("web.listen: {0}")]
    Listen(String),
    /// The address is taken or not ours to bind.
    #[error("cannot serve the web page on {addr}: {source}. Another program probably uses this port: set [web] listen to another address (e.g. \"0.0.0.0:8081\") or stop the other program")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The password file cannot be used (the page is not served without its password).
    #[error(transparent)]
    Password(#[from] WebPasswordError),
}

/// The running web server.
pub struct WebServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WebServer {
    /// The address it listens on (with the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL for people: `localhost` for an all-interfaces or loopback address.
    pub fn url(&self) -> String {
        page_url(self.addr)
    }

    /// Ends the live streams, stops accepting, and waits (briefly) for answers in flight.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(std::time::Duration::from_secs(3), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// `http://localhost:PORT/` for an unspecified or loopback address, else the address.
pub fn page_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        format!("http://localhost:{}/", addr.port())
    } else {
        format!("http://{addr}/")
    }
}

/// The parts of the page the station provides.
pub struct WebParts {
    /// History.
    pub source: Arc<dyn HistorySource>,
    /// The live feed's fan-out (see [`events::fan_out`]).
    pub live: broadcast::Sender<LiveBatch>,
    /// The station clock.
    pub clock: Clock,
    /// Status for `/api/health`.
    pub status: StationStatus,
}

/// Binds `[web] listen` and serves the page until [`WebServer::shutdown`].
pub async fn start(config: Arc<Config>, parts: WebParts) -> Result<WebServer, WebError> {
    start_with(config, parts, routes().route("/", get(assets::index))).await
}

/// [`start`] with the routes given (the collector's: [`routes`] plus its network page).
pub async fn start_with(
    config: Arc<Config>,
    parts: WebParts,
    routes: Router<AppState>,
) -> Result<WebServer, WebError> {
    let w = &config.web;
    let addr = parse_web_listen(&w.listen).map_err(WebError::Listen)?;
    let password = web_password(w)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| WebError::Bind { addr, source })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let now = NowCache::default();
    tokio::spawn(now.clone().follow(parts.live.subscribe(), stop_rx.clone()));
    // Seed the newest values from the store (the live feed brings what follows).
    seed(&now, parts.source.as_ref()).await;
    let state = AppState {
        sse_slots: Arc::new(Semaphore::new(w.max_sse_clients)),
        config: config.clone(),
        source: parts.source,
        live: parts.live,
        now,
        clock: parts.clock,
        status: Arc::new(parts.status),
        stop: stop_rx.clone(),
    };
    let credentials = password.map(|p| auth::Credentials::new(w.username.clone(), p));
    let app = finish(routes, state, credentials, w.request_timeout.0);
    let capped = CappedListener {
        inner: listener,
        slots: Arc::new(Semaphore::new(w.max_connections)),
    };
    let mut stop = stop_rx;
    let task = tokio::spawn(async move {
        let serve = axum::serve(capped, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!("The web page stopped: {e}");
        }
    });
    Ok(WebServer {
        addr: local,
        stop: stop_tx,
        task,
    })
}

/// Fills `now` with the newest stored value of every series, trying again briefly when
/// the store is busy (the writer may be opening it).
async fn seed(now: &NowCache, source: &dyn HistorySource) {
    if !matches!(source.station_info(None).await, Ok(None)) {
        return; // Several stations: `/api/now` asks the source, not the live feed.
    }
    let mut last = None;
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        match source.latest(None).await {
            Ok(latest) => {
                latest.iter().for_each(|r| now.update(&r.reading));
                return;
            }
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        tracing::warn!("The web page starts without the latest stored values ({e}); live readings fill them in.");
    }
}

/// Starts the page for `anemone run`: logs its URL (`Web page: http://localhost:8080/`),
/// or one ERROR saying why it cannot be served and what to change; the station runs on
/// either way (readings still go to the store and MQTT).
pub async fn start_for_station(config: Arc<Config>, parts: WebParts) -> Option<WebServer> {
    match start(config, parts).await {
        Ok(server) => {
            tracing::info!(addr = %server.local_addr(), "Web page: {}", server.url());
            Some(server)
        }
        Err(e) => {
            tracing::error!("{e}. The station keeps running without its web page.");
            None
        }
    }
}

/// Every route but `/`: the page's assets, charts, the JSON API, the live feed and the
/// CSV download. The collector serves these with its own source and its network page
/// at `/` (the station's page then at `/station`), see [`finish`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app.js", get(assets::app_js))
        .route("/app.css", get(assets::app_css))
        .route("/favicon.svg", get(assets::favicon))
        .route("/chart/{file}", get(chart::chart))
        .route("/api/now", get(api::now))
        .route("/api/history", get(api::history))
        .route("/api/health", get(api::health))
        .route("/api/events", get(events::events))
        .route("/export.csv", get(api::export_csv))
}

/// `app` with its state, the timeout, gzip, and auth when a password is set.
pub fn finish(
    app: Router<AppState>,
    state: AppState,
    credentials: Option<auth::Credentials>,
    timeout: std::time::Duration,
) -> Router {
    let app = app
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CompressionLayer::new());
    match credentials {
        Some(c) => app.layer(axum::middleware::from_fn_with_state(c, auth::require)),
        None => app,
    }
}

/// A listener that accepts at most as many connections as it has slots; a connection
/// gives its slot back when it closes.
struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
}

/// A connection holding its slot.
struct CappedStream {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // The semaphore is never closed; should it be, accept without a slot.
            let slot = self.slots.clone().acquire_owned().await;
            let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            match slot {
                Ok(slot) => return (CappedStream { io, _slot: slot }, addr),
                Err(_) => {
                    self.slots = Arc::new(Semaphore::new(1));
                    continue;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
