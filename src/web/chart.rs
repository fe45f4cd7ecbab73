//! `GET /chart/{name}.svg?span=24h|7d|30d|1y&units=metric|imperial`: one of the page's
//! charts ([`super::charts::specs`]), drawn from each of its quantities' history over the
//! span at the coarsest resolution that still fills it (raw → minute → hour → day, see
//! [`super::params::choose`]).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::units::UnitSystem;

use super::api::ApiError;
use super::charts::{self, ChartData, SeriesPoint, Span};
use super::params::{choose, BadParam, Params};
use super::source::Series;
use super::AppState;

/// The points of the sensor with the most points (two sensors of one quantity are two
/// series; a chart draws one), as chart points.
fn chart_points(series: &Series) -> Vec<SeriesPoint> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in &series.points {
        *counts.entry(p.sensor.as_str()).or_default() += 1;
    }
    let Some(sensor) = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(s, _)| s)
    else {
        return Vec::new();
    };
    series
        .points
        .iter()
        .filter(|p| p.sensor == sensor)
        .filter(|p| p.flags.is_none_or(|f| f.is_ok()))
        .filter_map(|p| {
            p.value.map(|value| SeriesPoint {
                ts: p.ts,
                value,
                min: p.min,
                max: p.max,
                count: p.count,
            })
        })
        .collect()
}

/// `GET /chart/{name}.svg`.
pub async fn chart(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let name = file.strip_suffix(".svg").unwrap_or(&file);
    let Some(spec) = charts::spec(name) else {
        let known: Vec<&str> = charts::specs().iter().map(|s| s.name).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no chart `{file}`; the charts are {}",
                known
                    .iter()
                    .map(|k| format!("{k}.svg"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let p = Params::new(q, &["span", "units", "station"])?;
    let span = match p.get("span") {
        None => Span::Day,
        Some(s) => Span::parse(s).ok_or_else(|| BadParam {
            name: "span".into(),
            message: format!("`{s}` is not a span; use 24h, 7d, 30d or 1y"),
        })?,
    };
    let units = match p.get("units") {
        None => UnitSystem::Metric,
        Some(u) => u.parse::<UnitSystem>().map_err(|e| BadParam {
            name: "units".into(),
            message: e.to_string(),
        })?,
    };
    let station = p.get("station").map(str::to_string);
    let to = state.clock.now();
    let from = to - span.duration_ms();
    let source = state.source.as_ref();
    let mut data = Vec::new();
    for &quantity in spec.quantities {
        let res = choose(source, station.clone(), quantity, (from, to), None).await?;
        let series = source
            .history(station.clone(), quantity, from, to, res)
            .await?;
        data.push(ChartData {
            quantity,
            points: chart_points(&series),
        });
    }
    let svg = charts::render(
        spec,
        span,
        from,
        to,
        &data,
        units,
        state.config.station.tz(),
    );
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        svg,
    )
        .into_response())
}
