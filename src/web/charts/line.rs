//! Line charts over time (with min/max bands and gaps) and the wind-direction dot plot.

use super::axis::{draw_time_axis, draw_value_axis, Plot, Scale};
use super::svg::{polyline_d, Svg, PALETTE, WIDTH};
use super::{visible, ChartData, Frame, SeriesPoint};
use crate::reading::{Quantity, Timestamp};
use crate::units::{display_unit, display_value};
use std::fmt::Write as _;

/// Height of a single line chart.
pub const HEIGHT: f64 = 260.0;

/// The plot area of a chart `height` high whose plot starts `top` pixels down.
pub fn plot_area(frame: &Frame<'_>, top: f64, height: f64) -> Plot {
    Plot {
        left: 58.0,
        top,
        width: WIDTH - 58.0 - 18.0,
        height,
        from: frame.from,
        to: frame.to,
    }
}

/// A quantity's name for people: `air_temperature` → `Air temperature`.
pub fn label(q: Quantity) -> String {
    if q == Quantity::Ph {
        return "pH".to_string();
    }
    let name = q.as_str().replace('_', " ");
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => name,
    }
}

/// The longest time between two points still joined by a line: five times the series'
/// usual step, and never less than 1/200 of the chart (a missed reading is not an outage).
pub fn gap_threshold(points: &[SeriesPoint], from: Timestamp, to: Timestamp) -> i64 {
    let mut steps: Vec<i64> = points.windows(2).map(|w| w[1].ts - w[0].ts).collect();
    let floor = ((to - from) / 200).max(1);
    if steps.is_empty() {
        return floor;
    }
    steps.sort_unstable();
    (steps[steps.len() / 2] * 5).max(floor)
}

/// Splits points (sorted by time) into runs with no gap longer than `threshold`.
pub fn segments(points: &[SeriesPoint], threshold: i64) -> Vec<Vec<SeriesPoint>> {
    let mut runs: Vec<Vec<SeriesPoint>> = Vec::new();
    for p in points {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|last| p.ts - last.ts <= threshold) => run.push(*p),
            _ => runs.push(vec![*p]),
        }
    }
    runs
}

/// Pixels per drawn point of a long series.
const COLUMN_PX: f64 = 2.0;

/// At most one point per two-pixel column: the column's mean, with its lowest and highest
/// values as the band, so no extreme is lost when a long series is drawn narrow.
pub fn decimate(run: &[SeriesPoint], plot: &Plot) -> Vec<SeriesPoint> {
    if run.len() as f64 <= plot.width / COLUMN_PX {
        return run.to_vec();
    }
    let mut out: Vec<SeriesPoint> = Vec::new();
    let mut column = i64::MIN;
    let mut n = 0.0;
    for p in run {
        let c = (plot.x(p.ts) / COLUMN_PX).floor() as i64;
        if c != column || out.is_empty() {
            column = c;
            n = 1.0;
            out.push(SeriesPoint {
                min: Some(p.low()),
                max: Some(p.high()),
                ..*p
            });
            continue;
        }
        if let Some(acc) = out.last_mut() {
            n += 1.0;
            acc.value += (p.value - acc.value) / n;
            acc.min = Some(acc.low().min(p.low()));
            acc.max = Some(acc.high().max(p.high()));
            acc.count = match (acc.count, p.count) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
    }
    out
}

/// One quantity ready to draw: its runs (gaps between them), in display units.
struct Prepared {
    quantity: Quantity,
    runs: Vec<Vec<SeriesPoint>>,
}

fn prepare(frame: &Frame<'_>, data: &ChartData, plot: &Plot) -> Prepared {
    let points = visible(data, frame.from, frame.to);
    let threshold = gap_threshold(&points, frame.from, frame.to);
    let q = data.quantity;
    let shown = |v: f64| display_value(q, v, frame.units);
    let runs = segments(&points, threshold)
        .iter()
        .map(|run| {
            decimate(run, plot)
                .into_iter()
                .map(|p| SeriesPoint {
                    value: shown(p.value),
                    min: p.min.map(shown),
                    max: p.max.map(shown),
                    ..p
                })
                .collect()
        })
        .collect();
    Prepared { quantity: q, runs }
}

/// Draws one or more quantities sharing a unit as lines over time.
pub fn render_lines(frame: &Frame<'_>, series: &[&ChartData]) -> String {
    let mut svg = Svg::new(HEIGHT, frame.spec.title);
    let plot = plot_area(frame, 46.0, HEIGHT - 46.0 - 44.0);
    draw_series_panel(&mut svg, frame, &plot, series, true);
    svg.finish()
}

/// Draws `series` into `plot` of `svg`: value axis, time axis, bands, lines, and (if
/// `legend`) a legend at the top. Says "no data for this period" when there is nothing.
pub fn draw_series_panel(
    svg: &mut Svg,
    frame: &Frame<'_>,
    plot: &Plot,
    series: &[&ChartData],
    legend: bool,
) {
    let prepared: Vec<Prepared> = series.iter().map(|d| prepare(frame, d, plot)).collect();
    let all = prepared
        .iter()
        .flat_map(|p| p.runs.iter().flatten())
        .flat_map(|p| [p.value, p.low(), p.high()]);
    draw_time_axis(svg, plot, frame.tz);
    let Some(scale) = Scale::fit(all) else {
        svg.message(plot.left, plot.top, plot.width, plot.height, super::NO_DATA);
        return;
    };
    let unit = series
        .first()
        .map(|d| display_unit(d.quantity, frame.units))
        .unwrap_or("");
    draw_value_axis(svg, plot, &scale, unit, 5);
    for (i, p) in prepared.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut band = String::new();
        let mut lines = Vec::new();
        for run in &p.runs {
            if run.iter().any(|pt| pt.high() > pt.low()) {
                band.push_str(&band_d(run, plot, &scale));
            }
            lines.push(
                run.iter()
                    .map(|pt| (plot.x(pt.ts), scale.y(plot, pt.value)))
                    .collect::<Vec<_>>(),
            );
        }
        svg.path(&band, colour, "none", 0.0, " fill-opacity=\"0.18\"");
        let (single, joined): (Vec<_>, Vec<_>) = lines.into_iter().partition(|l| l.len() == 1);
        svg.path(
            &polyline_d(&joined),
            "none",
            colour,
            2.0,
            " stroke-linejoin=\"round\"",
        );
        for l in single {
            svg.circle(l[0].0, l[0].1, 2.5, colour, "");
        }
    }
    if legend {
        let entries: Vec<(String, &str)> = prepared
            .iter()
            .enumerate()
            .map(|(i, p)| (label(p.quantity), PALETTE[i % PALETTE.len()]))
            .collect();
        svg.legend(&entries);
    }
}

/// The closed outline of a run's min/max band.
fn band_d(run: &[SeriesPoint], plot: &Plot, scale: &Scale) -> String {
    let mut outline: Vec<(f64, f64)> = run
        .iter()
        .map(|p| (plot.x(p.ts), scale.y(plot, p.high())))
        .collect();
    outline.extend(
        run.iter()
            .rev()
            .map(|p| (plot.x(p.ts), scale.y(plot, p.low()))),
    );
    let mut d = polyline_d(&[outline]);
    d.push('Z');
    d
}

/// Draws wind direction as dots on a 0–360° axis labelled N E S W N. An aggregate's dot is
/// its mean direction, that of the sum of its directions' unit vectors (350° and 10° give
/// north); a bucket whose directions cancel out has no mean and no dot. (Leaving out every
/// bucket whose lowest and highest values were more than 180° apart, as this did, left
/// out every bucket of a wind from the north.)
pub fn render_dots(frame: &Frame<'_>, series: &[&ChartData]) -> String {
    let mut svg = Svg::new(HEIGHT, frame.spec.title);
    let plot = plot_area(frame, 46.0, HEIGHT - 46.0 - 44.0);
    draw_time_axis(&mut svg, &plot, frame.tz);
    let scale = Scale { lo: 0.0, hi: 360.0 };
    let points: Vec<SeriesPoint> = series
        .first()
        .map(|d| visible(d, frame.from, frame.to))
        .unwrap_or_default();
    if points.is_empty() {
        svg.message(plot.left, plot.top, plot.width, plot.height, super::NO_DATA);
        return svg.finish();
    }
    for (deg, name) in [
        (0.0, "N"),
        (90.0, "E"),
        (180.0, "S"),
        (270.0, "W"),
        (360.0, "N"),
    ] {
        let y = scale.y(&plot, deg);
        svg.line(plot.left, y, plot.right(), y, "#ddd", 1.0);
        svg.text(
            plot.left - 6.0,
            y + 4.0,
            name,
            super::svg::Anchor::End,
            "#333",
            None,
        );
    }
    // One dot per whole pixel: a week of minute buckets is 10 000 dots, most of them on a
    // pixel another dot already covers.
    let mut seen = std::collections::HashSet::new();
    let mut d = String::new();
    for p in &points {
        let (x, y) = (
            plot.x(p.ts).round() as i64,
            scale.y(&plot, p.value.rem_euclid(360.0)).round() as i64,
        );
        if seen.insert((x, y)) {
            // Writing to a String cannot fail.
            let _ = write!(d, "M{x} {y}h0");
        }
    }
    svg.path(
        &d,
        "none",
        PALETTE[1],
        3.5,
        " stroke-linecap=\"round\" stroke-opacity=\"0.7\"",
    );
    svg.finish()
}
