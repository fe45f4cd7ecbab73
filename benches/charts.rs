//! Issue 15: what drawing the page's charts costs. Run it with `cargo bench --bench charts`
//! (release profile). For each chart and span, the series the web server hands the charts
//! for that span (the store resolution it picks: minute buckets for 24 h and 7 d, hour
//! buckets for 30 d, day buckets for a year), a smooth made-up day cycle with min/max per
//! bucket, rendered `ROUNDS` times; prints the median time per chart and the SVG's size.
//! Wall-clock times (`Instant`): on a loaded machine they are upper bounds.

use std::hint::black_box;
use std::time::Instant;

use anemone::reading::Quantity;
use anemone::units::UnitSystem;
use anemone::web::charts::{render, specs, ChartData, SeriesPoint, Span};

const ROUNDS: usize = 31;
const NOW: i64 = 1_780_272_000_000;

fn series(q: Quantity, from: i64, to: i64, step: i64) -> ChartData {
    let points = (from..to)
        .step_by(step as usize)
        .map(|ts| {
            let phase = (ts % 86_400_000) as f64 / 86_400_000.0 * std::f64::consts::TAU;
            let v = match q {
                Quantity::WindDirection => 180.0 + 60.0 * phase.sin(),
                Quantity::Rain => {
                    if phase.sin() > 0.9 {
                        0.1
                    } else {
                        0.0
                    }
                }
                Quantity::RelativeHumidity => 70.0 + 20.0 * phase.cos(),
                Quantity::SeaLevelPressure | Quantity::AirPressure => 1010.0 + 5.0 * phase.sin(),
                _ => 10.0 + 5.0 * phase.sin(),
            };
            SeriesPoint {
                ts,
                value: v,
                min: Some(v - 0.5_f64.min(v.abs())),
                max: Some(v + 0.5),
                count: Some(60),
            }
        })
        .collect();
    ChartData {
        quantity: q,
        points,
    }
}

fn main() {
    let tz: chrono_tz::Tz = "Europe/London".parse().unwrap_or(chrono_tz::UTC);
    println!(
        "{:<16} {:>4} {:>8} {:>12} {:>10}",
        "chart", "span", "points", "median µs", "SVG bytes"
    );
    for (span, step) in [
        (Span::Day, 60_000),
        (Span::Week, 60_000),
        (Span::Month, 3_600_000),
        (Span::Year, 86_400_000),
    ] {
        let from = NOW - span.duration_ms();
        let mut page_us = 0.0;
        let mut page_bytes = 0;
        for spec in specs() {
            let data: Vec<ChartData> = spec
                .quantities
                .iter()
                .map(|q| series(*q, from, NOW, step))
                .collect();
            let points: usize = data.iter().map(|d| d.points.len()).sum();
            let mut times = Vec::with_capacity(ROUNDS);
            let mut bytes = 0;
            for _ in 0..ROUNDS {
                let t = Instant::now();
                let svg = render(
                    spec,
                    span,
                    from,
                    NOW,
                    black_box(&data),
                    UnitSystem::Metric,
                    tz,
                );
                times.push(t.elapsed().as_secs_f64() * 1e6);
                bytes = svg.len();
            }
            times.sort_by(f64::total_cmp);
            let median = times[ROUNDS / 2];
            page_us += median;
            page_bytes += bytes;
            println!(
                "{:<16} {:>4} {:>8} {:>12.0} {:>10}",
                spec.name,
                span.as_str(),
                points,
                median,
                bytes
            );
        }
        println!(
            "{:<16} {:>4} {:>8} {:>12.0} {:>10}",
            "all charts",
            span.as_str(),
            "",
            page_us,
            page_bytes
        );
    }
}
