//! A buoy's track on a plain map of positions: latitude against longitude (longitude
//! scaled by the cosine of the mean latitude, so distances look right), no map tiles.
//!
//! No position quantity exists yet (the reef-buoy issue adds latitude and longitude): the
//! `track` chart loads no series and says "no position data". [`render_track`] draws a
//! track from latitude and longitude series as soon as there are some.

use chrono::DateTime;
use chrono_tz::Tz;

use super::axis::{nice_step, Plot, Scale};
use super::line::gap_threshold;
use super::svg::{polyline_d, Anchor, Svg, PALETTE, WIDTH};
use super::{ChartData, Frame, SeriesPoint};
use crate::reading::Timestamp;

const HEIGHT: f64 = 420.0;
/// Height of the chart when there is nothing to draw.
const EMPTY_HEIGHT: f64 = 110.0;

/// Said when there are no positions to draw.
pub const NO_POSITION: &str = "no position data";

/// The `track` chart: a track from its first two series (latitude, longitude) when the spec
/// has them, else "no position data".
pub fn render(frame: &Frame<'_>, series: &[&ChartData]) -> String {
    match series {
        [lat, lon, ..] => render_track(
            frame.spec.title,
            frame.from,
            frame.to,
            &lat.points,
            &lon.points,
            frame.tz,
        ),
        _ => render_track(frame.spec.title, frame.from, frame.to, &[], &[], frame.tz),
    }
}

/// Draws positions paired from a latitude and a longitude series (degrees, same times) in
/// `[from, to]`: the track as lines (broken where positions are missing), the first position
/// as an open circle and the latest as a filled one, each with its local time.
pub fn render_track(
    title: &str,
    from: Timestamp,
    to: Timestamp,
    latitude: &[SeriesPoint],
    longitude: &[SeriesPoint],
    tz: Tz,
) -> String {
    let positions: Vec<(Timestamp, f64, f64)> = latitude
        .iter()
        .filter(|p| p.ts >= from && p.ts <= to && p.value.is_finite())
        .filter_map(|la| {
            let i = longitude.partition_point(|p| p.ts < la.ts);
            longitude
                .get(i)
                .filter(|lo| lo.ts == la.ts && lo.value.is_finite())
                .map(|lo| (la.ts, la.value, lo.value))
        })
        .collect();
    let (Some(first), Some(last)) = (positions.first(), positions.last()) else {
        // A station without positions gets a short note, not a large empty map.
        let mut svg = Svg::new(EMPTY_HEIGHT, title);
        svg.message(0.0, 30.0, WIDTH, EMPTY_HEIGHT - 30.0, NO_POSITION);
        return svg.finish();
    };
    let mut svg = Svg::new(HEIGHT, title);
    let mean_lat = positions.iter().map(|p| p.1).sum::<f64>() / positions.len() as f64;
    let k = mean_lat.to_radians().cos().max(0.05);
    let lat = Scale::fit(positions.iter().map(|p| p.1)).unwrap_or(Scale { lo: 0.0, hi: 1.0 });
    let lon = Scale::fit(positions.iter().map(|p| p.2)).unwrap_or(Scale { lo: 0.0, hi: 1.0 });
    // One scale for both axes (in degrees of latitude), centred, so the map is not stretched.
    let (w_deg, h_deg) = ((lon.hi - lon.lo) * k, lat.hi - lat.lo);
    let area = Plot {
        left: 70.0,
        top: 40.0,
        width: WIDTH - 70.0 - 20.0,
        height: HEIGHT - 40.0 - 40.0,
        from,
        to,
    };
    let px_per_deg = (area.width / w_deg).min(area.height / h_deg);
    let cx = (lon.lo + lon.hi) / 2.0;
    let cy = (lat.lo + lat.hi) / 2.0;
    let x = |lon_deg: f64| area.left + area.width / 2.0 + (lon_deg - cx) * k * px_per_deg;
    let y = |lat_deg: f64| area.top + area.height / 2.0 - (lat_deg - cy) * px_per_deg;

    // A graticule at round fractions of a degree.
    let step = nice_step(((area.height / px_per_deg) / 4.0).max(1e-6));
    let decimals = (-step.log10()).ceil().max(0.0) as usize;
    let half_h = area.height / 2.0 / px_per_deg;
    let half_w = area.width / 2.0 / px_per_deg / k;
    let mut v = ((cy - half_h) / step).ceil() * step;
    while v <= cy + half_h {
        svg.line(area.left, y(v), area.right(), y(v), "#e0e0e0", 1.0);
        svg.text(
            area.left - 6.0,
            y(v) + 4.0,
            &format!("{v:.decimals$}°"),
            Anchor::End,
            "#444",
            None,
        );
        v += step;
    }
    let lon_step = nice_step(((area.width / px_per_deg / k) / 5.0).max(1e-6));
    let lon_decimals = (-lon_step.log10()).ceil().max(0.0) as usize;
    let mut v = ((cx - half_w) / lon_step).ceil() * lon_step;
    while v <= cx + half_w {
        svg.line(x(v), area.top, x(v), area.bottom(), "#e0e0e0", 1.0);
        svg.text(
            x(v),
            area.bottom() + 16.0,
            &format!("{v:.lon_decimals$}°"),
            Anchor::Middle,
            "#444",
            None,
        );
        v += lon_step;
    }

    let points: Vec<SeriesPoint> = positions
        .iter()
        .map(|p| SeriesPoint::raw(p.0, 0.0))
        .collect();
    let threshold = gap_threshold(&points, from, to);
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut prev: Option<Timestamp> = None;
    for (ts, la, lo) in &positions {
        let joined = prev.is_some_and(|p| ts - p <= threshold);
        match runs.last_mut() {
            Some(run) if joined => run.push((x(*lo), y(*la))),
            _ => runs.push(vec![(x(*lo), y(*la))]),
        }
        prev = Some(*ts);
    }
    svg.path(
        &polyline_d(&runs),
        "none",
        PALETTE[1],
        2.0,
        " stroke-linejoin=\"round\"",
    );
    let when = |ts: Timestamp| {
        DateTime::from_timestamp_millis(ts)
            .map(|t| t.with_timezone(&tz).format("%d %b %H:%M").to_string())
            .unwrap_or_default()
    };
    svg.circle(
        x(first.2),
        y(first.1),
        5.0,
        "#fff",
        &format!(" stroke=\"{}\" stroke-width=\"2\"", PALETTE[1]),
    );
    svg.circle(x(last.2), y(last.1), 6.0, PALETTE[0], "");
    let (lx, anchor) = if x(last.2) > WIDTH - 220.0 {
        (x(last.2) - 9.0, Anchor::End)
    } else {
        (x(last.2) + 9.0, Anchor::Start)
    };
    svg.text(
        lx,
        y(last.1) - 6.0,
        &format!("latest {}", when(last.0)),
        anchor,
        "#111",
        None,
    );
    svg.text(
        area.left,
        HEIGHT - 8.0,
        &format!(
            "first {} · {} positions · local time ({})",
            when(first.0),
            positions.len(),
            tz.name()
        ),
        Anchor::Start,
        "#555",
        None,
    );
    svg.finish()
}
