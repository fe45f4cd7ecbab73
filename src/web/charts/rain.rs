//! Rain: bars of the rain that fell per local hour, quarter day, day or week, and the
//! running total over the chart's span on a second axis.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::axis::{draw_time_axis, draw_value_axis, Plot, Scale};
use super::line::{plot_area, HEIGHT};
use super::svg::{num, polyline_d, Anchor, Svg, PALETTE};
use super::{visible, ChartData, Frame, SeriesPoint, Span};
use crate::reading::{Quantity, Timestamp};
use crate::units::{display_unit, display_value};

/// How much local time one bar covers for a span, and its name.
fn bar_hours(span: Span) -> (i64, &'static str) {
    match span {
        Span::Day => (1, "per hour"),
        Span::Week => (6, "per 6 hours"),
        Span::Month => (24, "per day"),
        Span::Year => (24 * 7, "per week"),
    }
}

/// One bar: its start and end (UTC ms) and the rain in it (stored unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub start: Timestamp,
    pub end: Timestamp,
    pub amount: f64,
}

/// Sums the rain of `points` into bars `hours` local hours wide, aligned to local midnight
/// of the day `from` falls in (DST-safe: boundaries are local clock times).
pub fn bars(
    points: &[SeriesPoint],
    from: Timestamp,
    to: Timestamp,
    tz: Tz,
    hours: i64,
) -> Vec<Bar> {
    let Some(start) = DateTime::from_timestamp_millis(from) else {
        return Vec::new();
    };
    let mut naive: NaiveDateTime = start
        .with_timezone(&tz)
        .date_naive()
        .and_time(chrono::NaiveTime::MIN);
    let mut edges = Vec::new();
    // A year of weekly bars or a day of hourly bars is well under this many edges.
    for _ in 0..1000 {
        if let Some(t) = tz.from_local_datetime(&naive).earliest() {
            let t = t.timestamp_millis();
            edges.push(t.clamp(from, to));
            if t >= to {
                break;
            }
        }
        naive += Duration::hours(hours);
    }
    if edges.last().is_some_and(|&e| e < to) {
        edges.push(to);
    }
    edges.dedup();
    let mut out: Vec<Bar> = edges
        .windows(2)
        .map(|w| Bar {
            start: w[0],
            end: w[1],
            amount: 0.0,
        })
        .collect();
    for p in points {
        let i = out.partition_point(|b| b.end <= p.ts);
        if let Some(bar) = out.get_mut(i) {
            if p.ts >= bar.start {
                bar.amount += p.total();
            }
        }
    }
    out
}

/// Draws the rain chart.
pub fn render(frame: &Frame<'_>, series: &[&ChartData]) -> String {
    let mut svg = Svg::new(HEIGHT, frame.spec.title);
    let mut plot: Plot = plot_area(frame, 46.0, HEIGHT - 46.0 - 44.0);
    plot.width -= 40.0; // room for the running total's axis on the right
    draw_time_axis(&mut svg, &plot, frame.tz);
    let points = series
        .first()
        .map(|d| visible(d, frame.from, frame.to))
        .unwrap_or_default();
    if points.is_empty() {
        svg.message(plot.left, plot.top, plot.width, plot.height, super::NO_DATA);
        return svg.finish();
    }
    let q = Quantity::Rain;
    let shown = |v: f64| display_value(q, v, frame.units);
    let unit = display_unit(q, frame.units);
    let (hours, per) = bar_hours(frame.span);
    let bars = bars(&points, frame.from, frame.to, frame.tz, hours);

    let most = bars.iter().map(|b| shown(b.amount)).fold(0.0, f64::max);
    let bar_scale = Scale {
        lo: 0.0,
        hi: if most > 0.0 { most } else { shown(1.0) },
    };
    draw_value_axis(&mut svg, &plot, &bar_scale, unit, 4);
    let mut d = String::new();
    for b in bars.iter().filter(|b| b.amount > 0.0) {
        let (x0, x1) = (plot.x(b.start), plot.x(b.end));
        let y = bar_scale.y(&plot, shown(b.amount));
        let w = (x1 - x0 - 1.0).max(1.0);
        d.push_str(&format!(
            "M{} {}h{}V{}h-{}Z",
            num(x0),
            num(plot.bottom()),
            num(w),
            num(y),
            num(w)
        ));
    }
    svg.path(&d, PALETTE[1], "none", 0.0, "");

    // The running total: a step up at each reading that brought rain.
    let mut total = 0.0;
    let mut run = vec![(frame.from, 0.0)];
    for p in points.iter().filter(|p| p.total() > 0.0) {
        run.push((p.ts, total));
        total += p.total();
        run.push((p.ts, total));
    }
    run.push((frame.to, total));
    let total_scale = Scale {
        lo: 0.0,
        hi: if total > 0.0 {
            shown(total)
        } else {
            shown(1.0)
        },
    };
    let (ticks, decimals) = total_scale.ticks(4);
    for v in ticks {
        svg.text(
            plot.right() + 6.0,
            total_scale.y(&plot, v) + 4.0,
            &format!("{v:.decimals$}"),
            Anchor::Start,
            PALETTE[0],
            None,
        );
    }
    let line: Vec<(f64, f64)> = run
        .iter()
        .map(|(ts, v)| (plot.x(*ts), total_scale.y(&plot, shown(*v))))
        .collect();
    svg.path(&polyline_d(&[line]), "none", PALETTE[0], 2.0, "");
    let precision =
        crate::units::conversion_for(q.unit(), frame.units).map_or(1, |c| c.decimals as usize);
    svg.legend(&[
        (format!("Rain {per}"), PALETTE[1]),
        (
            format!("Total {:.precision$} {unit}", shown(total)),
            PALETTE[0],
        ),
    ]);
    svg.finish()
}
