//! The page's charts: SVG documents drawn on the server from a history source's series.
//!
//! Pure functions, no I/O: the web server loads each chart's quantities for a span (at the
//! coarsest store resolution that still fills the chart) and calls [`render`]. Every chart
//! has a time axis in the station's local time, shows values in the unit system the reader
//! asked for (through [`crate::units`], never converting stored values), draws the min/max
//! band of aggregated points, and leaves a gap where data is missing instead of joining the
//! points on either side. A chart with nothing to show is still a valid SVG that says so.
//!
//! We write the SVG ourselves ([`svg`]) rather than through `plotters`: a wind rose and a
//! polar direction plot are not plotters chart types, gaps and min/max bands need per-segment
//! paths anyway, and our output stays a few kilobytes (one path per series, coordinates to
//! a tenth of a pixel, at most one point per pixel column).

mod axis;
mod line;
mod panels;
mod rain;
mod rose;
mod svg;
mod track;

#[cfg(test)]
mod tests;

use chrono_tz::Tz;

use crate::reading::{Quantity, Timestamp};
use crate::units::UnitSystem;

pub use track::render_track;

/// Said by a chart with nothing to draw.
pub const NO_DATA: &str = "no data for this period";

/// The time span a chart covers, ending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// The last 24 hours (`24h`).
    Day,
    /// The last 7 days (`7d`).
    Week,
    /// The last 30 days (`30d`).
    Month,
    /// The last 365 days (`1y`).
    Year,
}

impl Span {
    /// Every span, shortest first.
    pub const ALL: [Span; 4] = [Span::Day, Span::Week, Span::Month, Span::Year];

    /// The name used in URLs: `24h`, `7d`, `30d`, `1y`.
    pub fn as_str(self) -> &'static str {
        match self {
            Span::Day => "24h",
            Span::Week => "7d",
            Span::Month => "30d",
            Span::Year => "1y",
        }
    }

    /// Parses a URL name (see [`Span::as_str`]).
    pub fn parse(text: &str) -> Option<Span> {
        Span::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The span's length in milliseconds.
    pub fn duration_ms(self) -> i64 {
        const DAY: i64 = 86_400_000;
        match self {
            Span::Day => DAY,
            Span::Week => 7 * DAY,
            Span::Month => 30 * DAY,
            Span::Year => 365 * DAY,
        }
    }
}

/// How a chart draws its quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Lines over time on one value axis (quantities share a unit), with min/max bands.
    Line,
    /// Dots over time on a 0–360° axis (wind direction).
    Dots,
    /// A wind rose: direction sectors × speed bands (first quantity direction, second speed).
    Rose,
    /// Rain per bar and the running total over the span.
    Bars,
    /// One small line chart per quantity that has data, stacked (water quantities).
    Panels,
    /// A buoy's track on a plain map of positions (latitude, longitude).
    Track,
}

/// One chart the page shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartSpec {
    /// URL name: `/chart/{name}.svg`.
    pub name: &'static str,
    /// Title drawn on the chart.
    pub title: &'static str,
    /// The quantities the server loads for it, in drawing order.
    pub quantities: &'static [Quantity],
    /// How it is drawn.
    pub kind: ChartKind,
}

const SPECS: &[ChartSpec] = &[
    ChartSpec {
        name: "temperature",
        title: "Temperature and dew point",
        quantities: &[Quantity::AirTemperature, Quantity::DewPoint],
        kind: ChartKind::Line,
    },
    ChartSpec {
        name: "humidity",
        title: "Relative humidity",
        quantities: &[Quantity::RelativeHumidity],
        kind: ChartKind::Line,
    },
    ChartSpec {
        name: "pressure",
        title: "Air pressure",
        quantities: &[Quantity::SeaLevelPressure, Quantity::AirPressure],
        kind: ChartKind::Line,
    },
    ChartSpec {
        name: "wind",
        title: "Wind speed and gusts",
        quantities: &[Quantity::WindSpeed, Quantity::WindGust],
        kind: ChartKind::Line,
    },
    ChartSpec {
        name: "wind_direction",
        title: "Wind direction",
        quantities: &[Quantity::WindDirection],
        kind: ChartKind::Dots,
    },
    ChartSpec {
        name: "wind_rose",
        title: "Wind rose",
        quantities: &[Quantity::WindDirection, Quantity::WindSpeed],
        kind: ChartKind::Rose,
    },
    ChartSpec {
        name: "rain",
        title: "Rain",
        quantities: &[Quantity::Rain],
        kind: ChartKind::Bars,
    },
    ChartSpec {
        name: "water",
        title: "Water",
        quantities: &[
            Quantity::WaterTemperature,
            Quantity::Ph,
            Quantity::Conductivity,
            Quantity::DissolvedOxygen,
        ],
        kind: ChartKind::Panels,
    },
    // A buoy's GPS positions; a station without a GPS gets "no position data".
    ChartSpec {
        name: "track",
        title: "Buoy track",
        quantities: &[Quantity::Latitude, Quantity::Longitude],
        kind: ChartKind::Track,
    },
];

/// Every chart the page shows, in page order.
pub fn specs() -> &'static [ChartSpec] {
    SPECS
}

/// The chart called `name`, if there is one.
pub fn spec(name: &str) -> Option<&'static ChartSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// One point of a series, in the quantity's stored unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// UTC milliseconds: the reading's time, or the start of an aggregate bucket.
    pub ts: Timestamp,
    /// The reading's value, or the bucket's mean.
    pub value: f64,
    /// The bucket's lowest value (`None` for a raw point).
    pub min: Option<f64>,
    /// The bucket's highest value (`None` for a raw point).
    pub max: Option<f64>,
    /// How many readings the bucket holds (`None` for a raw point).
    pub count: Option<u64>,
}

impl SeriesPoint {
    /// A raw reading's point.
    pub fn raw(ts: Timestamp, value: f64) -> SeriesPoint {
        SeriesPoint {
            ts,
            value,
            min: None,
            max: None,
            count: None,
        }
    }

    /// The amount this point stands for when values add up (rain): the value for a raw
    /// point, mean × count for a bucket.
    pub fn total(&self) -> f64 {
        match self.count {
            Some(n) => self.value * n as f64,
            None => self.value,
        }
    }

    fn low(&self) -> f64 {
        self.min.unwrap_or(self.value)
    }

    fn high(&self) -> f64 {
        self.max.unwrap_or(self.value)
    }
}

/// One quantity's series for a chart, sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    /// The quantity.
    pub quantity: Quantity,
    /// Its points, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// Everything a renderer needs besides the data.
#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    spec: &'a ChartSpec,
    span: Span,
    from: Timestamp,
    to: Timestamp,
    units: UnitSystem,
    tz: Tz,
}

/// Draws `spec` for `[from, to]` (UTC ms) from `data` (any order of quantities; a quantity
/// missing from `data` is treated as having no points), as a standalone SVG document.
pub fn render(
    spec: &ChartSpec,
    span: Span,
    from: i64,
    to: i64,
    data: &[ChartData],
    units: UnitSystem,
    tz: Tz,
) -> String {
    let (from, to) = if to > from { (from, to) } else { (to - 1, to) };
    let frame = Frame {
        spec,
        span,
        from,
        to,
        units,
        tz,
    };
    let series: Vec<&ChartData> = spec
        .quantities
        .iter()
        .filter_map(|q| data.iter().find(|d| d.quantity == *q))
        .filter(|d| d.points.iter().any(|p| p.value.is_finite()))
        .collect();
    match spec.kind {
        ChartKind::Line => line::render_lines(&frame, &series),
        ChartKind::Dots => line::render_dots(&frame, &series),
        ChartKind::Rose => rose::render(&frame, &series),
        ChartKind::Bars => rain::render(&frame, &series),
        ChartKind::Panels => panels::render(&frame, &series),
        ChartKind::Track => track::render(&frame, &series),
    }
}

/// The points of `data` inside `[from, to]` with a finite value.
fn visible(data: &ChartData, from: Timestamp, to: Timestamp) -> Vec<SeriesPoint> {
    data.points
        .iter()
        .filter(|p| p.ts >= from && p.ts <= to && p.value.is_finite())
        .copied()
        .collect()
}
