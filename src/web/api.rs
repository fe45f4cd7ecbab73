//! The JSON API (`/api/now`, `/api/history`, `/api/health`) and `/export.csv`. Read-only;
//! field names are the data model's; times are RFC 3339 UTC.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::hal::disk::disk_space;
use crate::hal::timesync::{sync_state, SyncState};
use crate::reading::{format_ts, Flags, Quantity};
use crate::units::{conversions, UnitSystem};

use super::params::{choose, BadParam, Params};
use super::source::{ExportRequest, Point, SourceError, Today};
use super::AppState;

/// An error answer: its status and `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error answer with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<BadParam> for ApiError {
    fn from(e: BadParam) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::UnknownStation(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            SourceError::Backend(_) => {
                tracing::warn!("The web page could not read the store: {e}");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

/// A JSON number, or null for a missing or non-finite value.
fn num(v: Option<f64>) -> Value {
    v.filter(|x| x.is_finite())
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn today_json(t: &Today) -> Value {
    let extremes: Vec<Value> = t
        .extremes
        .iter()
        .map(|e| {
            json!({
                "quantity": e.quantity,
                "sensor": e.sensor,
                "unit": e.quantity.unit(),
                "min": num(e.min.map(|m| m.value)),
                "min_ts": e.min.map(|m| format_ts(m.ts)),
                "max": num(e.max.map(|m| m.value)),
                "max_ts": e.max.map(|m| format_ts(m.ts)),
            })
        })
        .collect();
    json!({
        "date": t.date.to_string(),
        "extremes": extremes,
        "rain_today": t.rain_mm.map(|v| json!({"value": num(Some(v)), "unit": Quantity::Rain.unit()})),
        "max_gust": t.max_gust.map(|g| json!({
            "value": num(Some(g.value)),
            "unit": Quantity::WindGust.unit(),
            "ts": format_ts(g.ts),
            "direction": num(t.max_gust_direction),
        })),
    })
}

/// `GET /api/now`: the newest value of every series, today so far, and the imperial
/// conversions the page's unit switch uses.
pub async fn now(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(q, &["station"])?;
    let station = p.get("station").map(str::to_string);
    let now = state.clock.now();
    let info = state.source.station_info(station.clone()).await?;
    let today = state.source.today(station.clone(), now).await?;
    // Ages against the time of the snapshot: readings kept arriving meanwhile.
    let latest = match &info {
        Some(_) => (state.source.latest(station).await?)
            .into_iter()
            .map(|r| r.reading)
            .collect(),
        None => state.now.snapshot(),
    };
    let now = state.clock.now();
    // Rounded as on MQTT: a GPS position to `[station] position_decimals`.
    let precision = state.config.precision();
    let readings: Vec<Value> = latest
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r.json_in(&precision)).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                let age_ms = (now - r.ts).max(0);
                m.insert("age_s".into(), num(Some(age_ms as f64 / 1000.0)));
            }
            v
        })
        .collect();
    let s = &state.config.station;
    let (id, name, timezone) = match info {
        Some(i) => (i.id, i.name, i.timezone),
        None => (
            s.id.clone(),
            Some(s.name.clone()),
            s.tz().name().to_string(),
        ),
    };
    Ok(Json(json!({
        "station": id,
        "name": name,
        "ts": format_ts(now),
        "timezone": timezone,
        "readings": readings,
        "today": today_json(&today),
        "units": { "imperial": conversions(UnitSystem::Imperial) },
    })))
}

fn point_json(p: &Point) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("ts".into(), format_ts(p.ts).into());
    m.insert("sensor".into(), p.sensor.clone().into());
    m.insert("value".into(), num(p.value));
    if let Some(c) = p.count {
        m.insert("min".into(), num(p.min));
        m.insert("max".into(), num(p.max));
        m.insert("count".into(), c.into());
    }
    if let Some(f) = p.flags {
        m.insert("flags".into(), json!(f.names()));
    }
    Value::Object(m)
}

/// `GET /api/history?quantity=…&from=…&to=…&resolution=…`: one quantity's history. A
/// range too large for the resolution asked is answered at a coarser one, named in the
/// answer's `resolution`.
pub async fn history(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(q, &["quantity", "from", "to", "resolution", "station"])?;
    let quantity = p.quantity("quantity")?.ok_or_else(|| BadParam {
        name: "quantity".into(),
        message: "missing; give a quantity such as air_temperature".into(),
    })?;
    let range = p.range(state.clock.now())?;
    let wanted = p.resolution("resolution")?;
    let station = p.get("station").map(str::to_string);
    let source = state.source.as_ref();
    let res = choose(source, station.clone(), quantity, range, wanted).await?;
    let series = source
        .history(station, quantity, range.0, range.1, res)
        .await?;
    Ok(Json(json!({
        "quantity": quantity,
        "unit": quantity.unit(),
        "resolution": series.resolution.as_str(),
        "from": format_ts(series.from),
        "to": format_ts(series.to),
        "points": series.points.iter().map(point_json).collect::<Vec<_>>(),
    })))
}

fn clock_json(state: SyncState) -> Value {
    let gps;
    let (name, detail) = match state {
        SyncState::Gps { offset_ms } => {
            gps = format!(
                "no network time; the station takes a GPS fix's time as known time \
                 (system clock off by {:.1} s)",
                offset_ms as f64 / 1000.0
            );
            ("gps", gps.as_str())
        }
        SyncState::Synchronized => ("synchronised", "a time service has set the clock"),
        SyncState::HardwareClock => (
            "hardware_clock",
            "the clock was set from the real-time clock at boot; the time is known",
        ),
        SyncState::Waiting => (
            "unsynchronised",
            "a time service runs but has not set the clock yet; readings are held until it has",
        ),
        SyncState::NoService => (
            "no_sync_service",
            "no time service runs; the clock is trusted as it is",
        ),
    };
    json!({ "state": name, "detail": detail })
}

/// `GET /api/health`: sensors in error, MQTT, free disk, clock, uptime, version, store.
pub async fn health(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(q, &["station"])?;
    let station = p.get("station").map(str::to_string);
    Ok(Json(health_json(&state, station).await?))
}

/// The health object (also sent as the `health` event).
pub async fn health_json(state: &AppState, station: Option<String>) -> Result<Value, SourceError> {
    let store = state.source.extent(station.clone()).await?;
    // A station of a network: its sensors are those it reported (type unknown here).
    let (latest, sensors) = match state.source.station_info(station.clone()).await? {
        Some(_) => {
            let latest: Vec<_> = (state.source.latest(station).await?)
                .into_iter()
                .map(|r| r.reading)
                .collect();
            let mut ids: Vec<(String, &str)> =
                latest.iter().map(|r| (r.sensor.to_string(), "")).collect();
            ids.dedup();
            (latest, ids)
        }
        None => (
            state.now.snapshot(),
            (state.config.sensors.iter())
                .map(|s| (s.id.to_string(), s.kind.type_name()))
                .collect(),
        ),
    };
    let sensors: Vec<Value> = sensors
        .iter()
        .map(|(id, kind)| {
            let mine: Vec<_> = latest.iter().filter(|r| *r.sensor == **id).collect();
            let failed: Vec<&str> = mine
                .iter()
                .filter(|r| r.flags.contains(Flags::SENSOR_ERROR))
                .map(|r| r.quantity.as_str())
                .collect();
            let last = mine.iter().map(|r| r.ts).max();
            let error = (!failed.is_empty())
                .then(|| format!("no value for {} in its latest reading", failed.join(", ")));
            json!({
                "sensor": id,
                "type": kind,
                "state": if error.is_some() { "error" } else { "ok" },
                "error": error,
                "last_reading": last.map(format_ts),
            })
        })
        .collect();
    let m = &state.config.mqtt;
    let connected = state
        .status
        .mqtt_connected
        .as_ref()
        .is_some_and(|rx| *rx.borrow());
    let backlog = store.backlog;
    // The directory whose file system holds the database (the space readings need).
    let db = &state.status.db_path;
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
        _ => ".".to_string(),
    };
    let disk = match disk_space(db) {
        Ok(d) => json!({"free_bytes": d.free_bytes, "total_bytes": d.total_bytes, "path": dir}),
        Err(e) => json!({"path": dir, "error": e.to_string()}),
    };
    let uptime = state.status.started_at.elapsed().as_secs();
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": uptime,
        "started": format_ts(state.status.started),
        "sensors": sensors,
        "mqtt": {
            "enabled": m.enabled,
            "connected": connected,
            "backlog": if m.enabled { json!(backlog) } else { Value::Null },
            // Validation refuses a broker URL with credentials: this names the host only.
            "broker": m.broker,
        },
        "disk": disk,
        "clock": clock_json(sync_state(&state.status.gps_clock)),
        "store": {
            "readings": store.extent.readings,
            "oldest": store.extent.oldest.map(format_ts),
            "newest": store.extent.newest.map(format_ts),
        },
    }))
}

/// `GET /export.csv?from=…&to=…[&quantity=…][&sensor=…]`: the readings as CSV, written by
/// `anemone export --format csv`'s code, streamed as it is read.
pub async fn export_csv(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["from", "to", "quantity", "sensor", "station"])?;
    let (from, to) = p.range(state.clock.now())?;
    let query = crate::store::Query {
        from: Some(from),
        to: Some(to),
        sensor: p.get("sensor").map(str::to_string),
        quantity: p.quantity("quantity")?,
    };
    let station = p.get("station").map(str::to_string);
    let rx = state
        .source
        .export_csv(station.clone(), ExportRequest { query })
        .await?;
    // Fused: gzip (tower-http's CompressionLayer) polls the body again after its end, and
    // an unfused `unfold` panics there, which cut every compressed download short
    // (tower-http issue #732).
    let stream =
        futures_util::StreamExt::fuse(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        }));
    let name = format!(
        "anemone-{}-{}-{}.csv",
        station.as_deref().unwrap_or(&state.config.station.id),
        format_ts(from).replace(':', ""),
        format_ts(to).replace(':', "")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
