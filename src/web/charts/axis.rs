//! Plot areas, value scales with "nice" ticks, and time ticks in the station's local time.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;

use super::svg::{num, Anchor, Svg};
use crate::reading::Timestamp;

/// The rectangle data is drawn in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plot {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Plot {
    /// The x of a time.
    pub fn x(&self, ts: Timestamp) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        self.left + (ts - self.from) as f64 / span * self.width
    }

    /// The bottom edge.
    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// The right edge.
    pub fn right(&self) -> f64 {
        self.left + self.width
    }
}

/// A linear value scale onto a plot's height: `lo` at the bottom, `hi` at the top.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
}

impl Scale {
    /// The scale spanning `values` exactly (the highest value at the top edge, the lowest at
    /// the bottom); a flat series gets a small range around its value. `None` for no values.
    pub fn fit(values: impl Iterator<Item = f64>) -> Option<Scale> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            return None;
        }
        if hi - lo < 1e-9 {
            let pad = (hi.abs() * 0.01).max(0.5);
            return Some(Scale {
                lo: lo - pad,
                hi: hi + pad,
            });
        }
        Some(Scale { lo, hi })
    }

    /// The y of a value in `plot`.
    pub fn y(&self, plot: &Plot, v: f64) -> f64 {
        plot.top + (self.hi - v) / (self.hi - self.lo) * plot.height
    }

    /// Round tick values inside the scale (about `target` of them) and the decimals to
    /// print them with.
    pub fn ticks(&self, target: usize) -> (Vec<f64>, usize) {
        let step = nice_step((self.hi - self.lo) / target.max(1) as f64);
        let decimals = if step >= 1.0 {
            0
        } else {
            (-step.log10()).ceil().max(0.0) as usize
        };
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        let ticks = (first..=last).map(|i| i as f64 * step).collect();
        (ticks, decimals)
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw * (1.0 - 1e-12) {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Draws horizontal grid lines and value labels for `scale` on the left of `plot`, and
/// the unit above them.
pub fn draw_value_axis(svg: &mut Svg, plot: &Plot, scale: &Scale, unit: &str, target: usize) {
    let (ticks, decimals) = scale.ticks(target);
    for v in ticks {
        let y = scale.y(plot, v);
        svg.line(plot.left, y, plot.right(), y, "#ddd", 1.0);
        let label = format!("{v:.decimals$}");
        let label = if label == "-0" {
            "0".to_string()
        } else {
            label
        };
        svg.text(plot.left - 6.0, y + 4.0, &label, Anchor::End, "#333", None);
    }
    svg.text(
        plot.left - 6.0,
        plot.top - 12.0,
        unit,
        Anchor::End,
        "#333",
        None,
    );
}

/// One step between time ticks, in local calendar terms.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Hours(u32),
    Days(u32),
    Months(u32),
}

impl Step {
    fn approx_ms(self) -> i64 {
        match self {
            Step::Hours(n) => n as i64 * 3_600_000,
            Step::Days(n) => n as i64 * 86_400_000,
            Step::Months(n) => n as i64 * 30 * 86_400_000,
        }
    }
}

const STEPS: [Step; 11] = [
    Step::Hours(1),
    Step::Hours(2),
    Step::Hours(3),
    Step::Hours(6),
    Step::Hours(12),
    Step::Days(1),
    Step::Days(2),
    Step::Days(7),
    Step::Months(1),
    Step::Months(2),
    Step::Months(3),
];

/// A time tick: where, and its label in local time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeTick {
    pub ts: Timestamp,
    pub label: String,
}

/// Local midnight-aligned ticks between `from` and `to` (UTC ms), at most `max` of them,
/// labelled in `tz`. Hours are read on the local clock, so a tick says `06:00` at 06:00
/// local time on both sides of a DST change.
pub fn time_ticks(from: Timestamp, to: Timestamp, tz: Tz, max: usize) -> Vec<TimeTick> {
    let span = (to - from).max(1);
    let step = STEPS
        .into_iter()
        .find(|s| span / s.approx_ms() <= max as i64)
        .unwrap_or(Step::Months(6));
    let Some(start) = DateTime::from_timestamp_millis(from) else {
        return Vec::new();
    };
    let first_day = start.with_timezone(&tz).date_naive();
    let mut naive = match step {
        // Multi-month steps start on a month they divide (Jan, Mar, … for 2 months).
        Step::Months(n) => NaiveDate::from_ymd_opt(
            first_day.year(),
            first_day.month0() - first_day.month0() % n + 1,
            1,
        )
        .unwrap_or(first_day)
        .and_time(chrono::NaiveTime::MIN),
        _ => first_day.and_time(chrono::NaiveTime::MIN),
    };
    let mut ticks = Vec::new();
    // Enough iterations for any span the page asks for (a year of days, 24 h of hours).
    for _ in 0..2000 {
        let Some(at) = local_to_utc(tz, naive) else {
            naive = advance(naive, step);
            continue;
        };
        if at > to {
            break;
        }
        if at >= from {
            ticks.push(TimeTick {
                ts: at,
                label: label(naive, step),
            });
        }
        naive = advance(naive, step);
    }
    ticks
}

fn local_to_utc(tz: Tz, naive: NaiveDateTime) -> Option<Timestamp> {
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
}

fn advance(naive: NaiveDateTime, step: Step) -> NaiveDateTime {
    match step {
        Step::Hours(n) => naive + Duration::hours(n as i64),
        Step::Days(n) => naive + Duration::days(n as i64),
        Step::Months(n) => {
            let months = naive.year() * 12 + naive.month0() as i32 + n as i32;
            NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1)
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
                .unwrap_or(naive + Duration::days(30))
        }
    }
}

fn label(naive: NaiveDateTime, step: Step) -> String {
    match step {
        Step::Hours(_) if naive.hour() == 0 => naive.format("%a %d").to_string(),
        Step::Hours(_) => naive.format("%H:%M").to_string(),
        Step::Days(_) => naive.format("%a %d").to_string(),
        Step::Months(_) if naive.month() == 1 => naive.format("%b %Y").to_string(),
        Step::Months(_) => naive.format("%b").to_string(),
    }
}

/// Draws vertical grid lines and local-time labels under `plot`, and says which zone.
pub fn draw_time_axis(svg: &mut Svg, plot: &Plot, tz: Tz) {
    let max = ((plot.width / 80.0).floor() as usize).max(2);
    for tick in time_ticks(plot.from, plot.to, tz, max) {
        let x = plot.x(tick.ts);
        svg.line(x, plot.top, x, plot.bottom(), "#e4e4e4", 1.0);
        svg.line(x, plot.bottom(), x, plot.bottom() + 4.0, "#555", 1.0);
        svg.text(
            x,
            plot.bottom() + 17.0,
            &tick.label,
            Anchor::Middle,
            "#333",
            None,
        );
    }
    svg.path(
        &format!(
            "M{} {}H{}",
            num(plot.left),
            num(plot.bottom()),
            num(plot.right())
        ),
        "none",
        "#555",
        1.0,
        "",
    );
    svg.text(
        plot.right(),
        plot.bottom() + 33.0,
        &format!("local time ({})", tz.name()),
        Anchor::End,
        "#666",
        None,
    );
}
