//! The network page (`[web]` in the collector's config): served with the station's own
//! handlers ([`anemone::web::routes`]) over [`PgSource`], plus
//!
//! * `GET /`: the network page (a map of the stations and a sortable table),
//! * `GET /network.js`: its script,
//! * `GET /station?station=ID`: the station's own page, its API calls carrying the station,
//! * `GET /api/stations`: every station with its position, online state and newest values.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anemone::config::web::WebConfig;
use anemone::reading::format_ts;
use anemone::web::api::ApiError;
use anemone::web::page::{NETWORK_HTML, NETWORK_JS};
use anemone::web::{assets, StationStatus, WebError, WebParts, WebServer};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

use crate::pgsource::PgSource;

/// Starts the network page on `web.listen`, reading through `source`.
pub async fn start(web: &WebConfig, source: PgSource) -> Result<WebServer, WebError> {
    let mut config = anemone::config::Config::builtin();
    config.web = web.clone();
    // The network's charts are drawn in UTC; each station's page shows its own zone.
    config.station.timezone = "UTC".into();
    let (live, _) = tokio::sync::broadcast::channel(1);
    let parts = WebParts {
        source: Arc::new(source.clone()),
        live,
        clock: anemone::clock::Clock::real(),
        status: StationStatus {
            db_path: PathBuf::from("."),
            started: anemone::clock::system_now(),
            started_at: Instant::now(),
            mqtt_connected: None,
            gps_clock: Default::default(),
        },
    };
    let routes = anemone::web::routes()
        .route("/", get(|| page(NETWORK_HTML, "text/html; charset=utf-8")))
        .route(
            "/network.js",
            get(|| page(NETWORK_JS, "text/javascript; charset=utf-8")),
        )
        .route("/station", get(assets::index))
        .route("/api/stations", get(move || stations(source.clone())));
    anemone::web::start_with(Arc::new(config), parts, routes).await
}

async fn page(body: &'static str, kind: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `GET /api/stations`.
async fn stations(source: PgSource) -> Result<Json<Value>, ApiError> {
    let list = source.stations().await?;
    let stations: Vec<Value> = list
        .iter()
        .map(|s| {
            let readings: Vec<Value> = s.latest.iter().map(|r| r.reading.to_json()).collect();
            json!({
                "station": s.id,
                "name": s.name,
                "latitude": s.latitude,
                "longitude": s.longitude,
                "online": s.online,
                "last_seen": format_ts(s.last_seen),
                "readings": readings,
            })
        })
        .collect();
    Ok(Json(json!({ "stations": stations })))
}
