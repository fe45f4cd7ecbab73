//! The wind rose: how often the wind blew from each of 16 directions, split by speed.

use std::f64::consts::PI;

use super::svg::{num, Anchor, Svg, WIDTH};
use super::{visible, ChartData, Frame, SeriesPoint};
use crate::reading::Quantity;
use crate::units::{display_unit, display_value};

/// Directions the rose counts: 16 sectors of 22.5°, the first centred on north.
pub const SECTORS: usize = 16;

/// Below this speed (m/s) the wind is calm and has no direction worth counting.
pub const CALM_MS: f64 = 0.5;

/// Upper edges (m/s) of the speed bands above calm; the last band is open.
pub const BAND_EDGES: [f64; 5] = [2.0, 4.0, 6.0, 8.0, 11.0];

/// Number of speed bands.
pub const BANDS: usize = BAND_EDGES.len() + 1;

const BAND_COLOURS: [&str; BANDS] = [
    "#a6cee3", "#3b8bc2", "#2a9d5b", "#e6a817", "#d4472a", "#7a0d0d",
];

const SECTOR_NAMES: [&str; SECTORS] = [
    "N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW",
    "NNW",
];

const HEIGHT: f64 = 360.0;

/// Counts of (direction, speed) observations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tally {
    /// `counts[sector][band]`.
    pub counts: [[u64; BANDS]; SECTORS],
    /// Observations below [`CALM_MS`].
    pub calm: u64,
}

impl Tally {
    /// All observations counted.
    pub fn total(&self) -> u64 {
        self.calm + self.counts.iter().flatten().sum::<u64>()
    }

    /// Adds one observation: direction in degrees (from), speed in m/s.
    pub fn add(&mut self, direction: f64, speed: f64) {
        if speed < CALM_MS {
            self.calm += 1;
            return;
        }
        self.counts[sector(direction)][band(speed)] += 1;
    }

    /// The share of all observations in a sector, in percent.
    pub fn sector_percent(&self, sector: usize) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        self.counts[sector].iter().sum::<u64>() as f64 * 100.0 / total as f64
    }
}

/// The sector a direction falls in (0 = N, clockwise).
pub fn sector(direction: f64) -> usize {
    let width = 360.0 / SECTORS as f64;
    (((direction.rem_euclid(360.0) + width / 2.0) / width).floor() as usize) % SECTORS
}

/// The speed band a speed (m/s, not calm) falls in.
pub fn band(speed: f64) -> usize {
    BAND_EDGES
        .iter()
        .position(|&edge| speed < edge)
        .unwrap_or(BANDS - 1)
}

/// Pairs each direction with the speed taken at (nearly) the same time and tallies them.
/// An aggregated direction is its bucket's mean direction (the vector mean, as in the
/// direction plot).
pub fn tally(directions: &[SeriesPoint], speeds: &[SeriesPoint]) -> Tally {
    let mut t = Tally::default();
    let step = directions
        .windows(2)
        .map(|w| w[1].ts - w[0].ts)
        .min()
        .unwrap_or(1000);
    let tolerance = (step / 2).max(1000);
    for d in directions {
        let i = speeds.partition_point(|s| s.ts < d.ts);
        let nearest = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|j| speeds.get(j))
            .min_by_key(|s| (s.ts - d.ts).abs());
        if let Some(s) = nearest.filter(|s| (s.ts - d.ts).abs() <= tolerance) {
            t.add(d.value, s.value);
        }
    }
    t
}

/// Draws the wind rose.
pub fn render(frame: &Frame<'_>, series: &[&ChartData]) -> String {
    let mut svg = Svg::new(HEIGHT, frame.spec.title);
    let find = |q: Quantity| {
        series
            .iter()
            .find(|d| d.quantity == q)
            .map(|d| visible(d, frame.from, frame.to))
            .unwrap_or_default()
    };
    let t = tally(&find(Quantity::WindDirection), &find(Quantity::WindSpeed));
    let total = t.total();
    if total == 0 {
        svg.message(0.0, 30.0, WIDTH, HEIGHT - 30.0, super::NO_DATA);
        return svg.finish();
    }
    let (cx, cy, radius) = (185.0, 195.0, 140.0);
    let most = (0..SECTORS)
        .map(|s| t.sector_percent(s))
        .fold(0.0, f64::max)
        .max(1.0);
    let ring_step = super::axis::nice_step(most / 4.0);
    let r_of = |pct: f64| pct / most * radius;
    let mut ring = ring_step;
    while ring <= most + 1e-9 {
        svg.circle(cx, cy, r_of(ring), "none", " stroke=\"#ccc\"");
        svg.text(
            cx + 3.0,
            cy - r_of(ring) - 2.0,
            &format!("{ring}%"),
            Anchor::Start,
            "#666",
            None,
        );
        ring += ring_step;
    }
    for (s, name) in SECTOR_NAMES.iter().enumerate().step_by(2) {
        let a = s as f64 * 2.0 * PI / SECTORS as f64;
        let (x, y) = (
            cx + a.sin() * (radius + 16.0),
            cy - a.cos() * (radius + 16.0),
        );
        svg.text(x, y + 5.0, name, Anchor::Middle, "#222", Some("bold"));
    }
    let half = PI / SECTORS as f64;
    for (s, counts) in t.counts.iter().enumerate() {
        let centre = s as f64 * 2.0 * PI / SECTORS as f64;
        let mut inner = 0.0;
        for (b, &n) in counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let outer = inner + n as f64 * 100.0 / total as f64;
            let d = wedge(
                cx,
                cy,
                r_of(inner),
                r_of(outer),
                centre - half * 0.9,
                centre + half * 0.9,
            );
            svg.path(&d, BAND_COLOURS[b], "#fff", 0.5, "");
            inner = outer;
        }
    }
    // The legend: speed bands in the reader's units, calm share and the count.
    let show = |v: f64| display_value(Quantity::WindSpeed, v, frame.units);
    let unit = display_unit(Quantity::WindSpeed, frame.units);
    let x = 375.0;
    svg.text(
        x,
        60.0,
        &format!("Speed ({unit})"),
        Anchor::Start,
        "#222",
        Some("bold"),
    );
    let mut lower = CALM_MS;
    for (b, colour) in BAND_COLOURS.iter().enumerate() {
        let y = 80.0 + b as f64 * 24.0;
        svg.rect(x, y, 16.0, 16.0, colour, "");
        let text = match BAND_EDGES.get(b) {
            Some(&upper) => format!("{:.1} – {:.1}", show(lower), show(upper)),
            None => format!("≥ {:.1}", show(lower)),
        };
        svg.text(x + 24.0, y + 13.0, &text, Anchor::Start, "#222", None);
        lower = BAND_EDGES.get(b).copied().unwrap_or(lower);
    }
    let calm = t.calm as f64 * 100.0 / total as f64;
    svg.text(
        x,
        80.0 + BANDS as f64 * 24.0 + 16.0,
        &format!("Calm (below {:.1} {unit}): {calm:.1}%", show(CALM_MS)),
        Anchor::Start,
        "#222",
        None,
    );
    svg.text(
        x,
        80.0 + BANDS as f64 * 24.0 + 38.0,
        &format!("{total} observations"),
        Anchor::Start,
        "#555",
        None,
    );
    svg.finish()
}

/// An annular sector between radii `r0` < `r1` and angles `a0` < `a1` (radians, 0 = up,
/// clockwise).
fn wedge(cx: f64, cy: f64, r0: f64, r1: f64, a0: f64, a1: f64) -> String {
    let p = |r: f64, a: f64| (num(cx + a.sin() * r), num(cy - a.cos() * r));
    let (x0, y0) = p(r1, a0);
    let (x1, y1) = p(r1, a1);
    let (x2, y2) = p(r0, a1);
    let (x3, y3) = p(r0, a0);
    let (o, i) = (num(r1), num(r0));
    format!("M{x0} {y0}A{o} {o} 0 0 1 {x1} {y1}L{x2} {y2}A{i} {i} 0 0 0 {x3} {y3}Z")
}
