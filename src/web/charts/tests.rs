//! Tests of the charts: valid SVG in every case, values where they belong, sizes.

use chrono_tz::Tz;

use super::axis::time_ticks;
use super::rain::bars;
use super::rose::{band, sector, tally, BANDS, SECTORS};
use super::*;

const HOUR: i64 = 3_600_000;
/// 2026-06-01T00:00:00Z.
const T0: i64 = 1_780_272_000_000;

fn london() -> Tz {
    "Europe/London".parse().unwrap()
}

/// A small well-formedness check: tags nest and close, attributes are quoted, `&` starts an
/// entity, the root is one `<svg>` element with the SVG namespace. Returns the element count.
fn check_svg(doc: &str) -> usize {
    assert!(
        doc.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "not an svg document: {}",
        &doc[..doc.len().min(80)]
    );
    let mut stack: Vec<String> = Vec::new();
    let mut elements = 0;
    let mut rest = doc;
    let mut closed_root = false;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        assert!(!closed_root, "content after the root element");
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().expect("closing tag without opening");
            assert_eq!(top, name, "mismatched closing tag");
            closed_root = stack.is_empty();
        } else {
            elements += 1;
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
            let name = &body[..name_end];
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "bad element name in <{tag}>"
            );
            check_attributes(&body[name_end..]);
            if self_closing {
                closed_root = stack.is_empty();
            } else {
                stack.push(name.to_string());
            }
        }
        rest = &rest[close + 1..];
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    assert!(closed_root, "no root element");
    elements
}

fn check_text(text: &str) {
    assert!(!text.contains('>'), "raw > in text: {text}");
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        let end = rest[i..].find(';').expect("& without entity") + i;
        let entity = &rest[i + 1..end];
        assert!(
            ["amp", "lt", "gt", "quot", "#39"].contains(&entity),
            "unknown entity &{entity};"
        );
        rest = &rest[end + 1..];
    }
}

fn check_attributes(mut attrs: &str) {
    loop {
        attrs = attrs.trim_start();
        if attrs.is_empty() {
            return;
        }
        let eq = attrs.find('=').expect("attribute without value");
        let name = &attrs[..eq];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'),
            "bad attribute name {name}"
        );
        assert!(
            attrs[eq + 1..].starts_with('"'),
            "unquoted attribute {name}"
        );
        let end = attrs[eq + 2..].find('"').expect("unterminated attribute") + eq + 2;
        let value = &attrs[eq + 2..end];
        assert!(!value.contains('<'), "< in attribute {name}");
        check_text(value);
        attrs = &attrs[end + 1..];
    }
}

/// A day of minute buckets of a smooth daily curve, with min/max.
fn minutes(q: Quantity, base: f64, amp: f64) -> ChartData {
    let points = (0..1440)
        .map(|m| {
            let v = base + amp * (m as f64 / 1440.0 * std::f64::consts::TAU).sin();
            SeriesPoint {
                ts: T0 + m * 60_000,
                value: v,
                min: Some(v - 0.3),
                max: Some(v + 0.3),
                count: Some(6),
            }
        })
        .collect();
    ChartData {
        quantity: q,
        points,
    }
}

fn day_of_everything() -> Vec<ChartData> {
    let mut data = vec![
        minutes(Quantity::AirTemperature, 15.0, 6.0),
        minutes(Quantity::DewPoint, 9.0, 2.0),
        minutes(Quantity::RelativeHumidity, 70.0, 15.0),
        minutes(Quantity::SeaLevelPressure, 1013.0, 4.0),
        minutes(Quantity::AirPressure, 1001.0, 4.0),
        minutes(Quantity::WindSpeed, 4.0, 3.5),
        minutes(Quantity::WindGust, 7.0, 5.0),
        minutes(Quantity::WaterTemperature, 12.0, 1.0),
        minutes(Quantity::Ph, 8.0, 0.1),
    ];
    let mut dir = minutes(Quantity::WindDirection, 180.0, 170.0);
    for p in &mut dir.points {
        p.min = Some(p.value - 20.0);
        p.max = Some(p.value + 20.0);
    }
    data.push(dir);
    let mut rain = minutes(Quantity::Rain, 0.0, 0.0);
    for (i, p) in rain.points.iter_mut().enumerate() {
        p.value = if (600..700).contains(&i) { 0.05 } else { 0.0 };
        p.min = Some(0.0);
        p.max = Some(p.value);
    }
    data.push(rain);
    data
}

fn draw(name: &str, data: &[ChartData], units: UnitSystem) -> String {
    let spec = spec(name).expect("chart exists");
    render(spec, Span::Day, T0, T0 + 24 * HOUR, data, units, london())
}

#[test]
fn every_chart_renders_valid_svg_with_data_without_data_and_in_imperial() {
    let data = day_of_everything();
    for spec in specs() {
        for units in [UnitSystem::Metric, UnitSystem::Imperial] {
            let full = draw(spec.name, &data, units);
            let elements = check_svg(&full);
            assert!(
                elements > 5 || spec.kind == ChartKind::Track,
                "{}: too few elements",
                spec.name
            );
            let empty = draw(spec.name, &[], units);
            check_svg(&empty);
            let said = if spec.kind == ChartKind::Track {
                track::NO_POSITION
            } else {
                NO_DATA
            };
            assert!(
                empty.contains(said),
                "{}: no-data message missing",
                spec.name
            );
            if spec.kind != ChartKind::Track {
                assert!(!full.contains(NO_DATA), "{}: said no data", spec.name);
            }
        }
    }
}

#[test]
fn every_span_renders() {
    let data = day_of_everything();
    for span in Span::ALL {
        let to = T0 + 24 * HOUR;
        for spec in specs() {
            let svg = render(
                spec,
                span,
                to - span.duration_ms(),
                to,
                &data,
                UnitSystem::Metric,
                london(),
            );
            check_svg(&svg);
        }
        assert_eq!(Span::parse(span.as_str()), Some(span));
    }
    assert_eq!(Span::parse("2d"), None);
}

#[test]
fn chart_names_are_unique_and_quantities_exist() {
    let mut names: Vec<&str> = specs().iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), specs().len());
    assert!(spec("nope").is_none());
}

/// Every `(x, y)` of the first stroked path of `colour` in the document.
fn path_points(svg: &str, stroke: &str) -> Vec<(f64, f64)> {
    let marker = format!("fill=\"none\" stroke=\"{stroke}\"");
    let at = svg.find(&marker).expect("stroked path");
    let start = svg[..at].rfind("d=\"").expect("path data") + 3;
    let end = svg[start..].find('"').expect("end of data") + start;
    let mut at = (0.0, 0.0);
    let mut points = Vec::new();
    let data = &svg[start..end];
    for (i, c) in data.char_indices().filter(|(_, c)| *c == 'M' || *c == 'l') {
        let rest = &data[i + 1..];
        let stop = rest.find(['M', 'l', 'Z']).unwrap_or(rest.len());
        let mut it = rest[..stop]
            .split(' ')
            .map(|n| n.parse::<f64>().expect("number"));
        let (x, y) = (it.next().expect("x"), it.next().expect("y"));
        at = if c == 'M' {
            (x, y)
        } else {
            (
                ((at.0 + x) * 10.0_f64).round() / 10.0,
                ((at.1 + y) * 10.0_f64).round() / 10.0,
            )
        };
        points.push(at);
    }
    points
}

#[test]
fn the_highest_value_is_at_the_top_of_the_plot_and_the_lowest_at_the_bottom() {
    let points = vec![
        SeriesPoint::raw(T0, 10.0),
        SeriesPoint::raw(T0 + 6 * HOUR, 20.0),
        SeriesPoint::raw(T0 + 12 * HOUR, 15.0),
        SeriesPoint::raw(T0 + 24 * HOUR, 12.0),
    ];
    let data = [ChartData {
        quantity: Quantity::RelativeHumidity,
        points,
    }];
    let svg = draw("humidity", &data, UnitSystem::Metric);
    let pts = path_points(&svg, svg::PALETTE[0]);
    assert_eq!(pts.len(), 4);
    let plot = line::plot_area(
        &Frame {
            spec: spec("humidity").unwrap(),
            span: Span::Day,
            from: T0,
            to: T0 + 24 * HOUR,
            units: UnitSystem::Metric,
            tz: london(),
        },
        46.0,
        line::HEIGHT - 90.0,
    );
    assert_eq!(pts[1].1, plot.top, "max at the top");
    assert_eq!(pts[0].1, plot.bottom(), "min at the bottom");
    assert_eq!(pts[0].0, plot.left, "first point at the left edge");
    assert_eq!(pts[3].0, plot.right(), "last point at the right edge");
    assert_eq!(pts[2].0, plot.left + plot.width / 2.0, "noon in the middle");
    // 15 % is halfway between 10 and 20.
    assert!((pts[2].1 - (plot.top + plot.height / 2.0)).abs() < 0.06);
}

#[test]
fn a_six_hour_outage_leaves_a_gap() {
    let mut data = minutes(Quantity::AirTemperature, 15.0, 5.0);
    data.points
        .retain(|p| !(p.ts > T0 + 6 * HOUR && p.ts < T0 + 12 * HOUR));
    let svg = draw("temperature", &[data], UnitSystem::Metric);
    check_svg(&svg);
    let marker = format!("fill=\"none\" stroke=\"{}\"", svg::PALETTE[0]);
    let at = svg.find(&marker).unwrap();
    let start = svg[..at].rfind("d=\"").unwrap();
    let d = &svg[start..at];
    assert_eq!(
        d.matches('M').count(),
        2,
        "one line each side of the outage"
    );
    // And nothing is drawn inside the outage.
    let xs = path_points(&svg, svg::PALETTE[0]);
    let plot_left = 58.0;
    let per_hour = (svg::WIDTH - 58.0 - 18.0) / 24.0;
    assert!(xs
        .iter()
        .all(|(x, _)| *x <= plot_left + 6.0 * per_hour + 0.5
            || *x >= plot_left + 12.0 * per_hour - 0.5));
}

#[test]
fn imperial_charts_show_imperial_units_and_values() {
    let data = [minutes(Quantity::AirTemperature, 25.0, 5.0)];
    let metric = draw("temperature", &data, UnitSystem::Metric);
    let imperial = draw("temperature", &data, UnitSystem::Imperial);
    assert!(metric.contains(">°C<") && !metric.contains("°F"));
    assert!(imperial.contains(">°F<") && !imperial.contains(">°C<"));
    // 20–30 °C is 68–86 °F: ticks in °F, not °C.
    assert!(imperial.contains(">80<"), "{imperial}");
    assert!(!imperial.contains(">25<"));
    let wind = draw("wind_rose", &day_of_everything(), UnitSystem::Imperial);
    assert!(wind.contains("Speed (mph)"));
}

#[test]
fn a_day_chart_is_small() {
    let data = day_of_everything();
    let mut total = 0;
    for spec in specs() {
        let svg = draw(spec.name, &data, UnitSystem::Metric);
        assert!(svg.len() < 40_000, "{}: {} bytes", spec.name, svg.len());
        total += svg.len();
    }
    assert!(total < 200_000, "all charts: {total} bytes");
}

#[test]
fn time_ticks_are_local_clock_times_across_a_dst_change() {
    // Europe/London springs forward at 01:00 UTC on 2026-03-29.
    let from = 1_774_742_400_000; // 2026-03-29T00:00:00Z
    let ticks = time_ticks(from, from + 24 * HOUR, london(), 12);
    let labels: Vec<&str> = ticks.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels[0], "Sun 29");
    assert!(labels.contains(&"06:00"));
    let six = ticks.iter().find(|t| t.label == "06:00").unwrap();
    assert_eq!(six.ts, from + 5 * HOUR, "06:00 BST is 05:00 UTC");
    // Summer: local midnight is 23:00 UTC the day before.
    let summer = time_ticks(T0, T0 + 24 * HOUR, london(), 12);
    let midnight = summer.iter().find(|t| t.label.starts_with("Tue")).unwrap();
    assert_eq!(midnight.ts, T0 + 23 * HOUR);
    // A year gets month ticks.
    let year = time_ticks(T0 - 365 * 24 * HOUR, T0, london(), 9);
    assert!(year.len() >= 4 && year.len() <= 9, "{year:?}");
    assert!(year.iter().any(|t| t.label == "Jan 2026"));
}

#[test]
fn the_wind_rose_sums_right() {
    assert_eq!(sector(0.0), 0);
    assert_eq!(sector(11.2), 0);
    assert_eq!(sector(11.3), 1);
    assert_eq!(sector(349.0), 0);
    assert_eq!(sector(-90.0), 12);
    assert_eq!(sector(225.0), 10);
    assert_eq!(band(0.6), 0);
    assert_eq!(band(4.0), 2);
    assert_eq!(band(30.0), BANDS - 1);

    let dirs: Vec<SeriesPoint> = (0..100)
        .map(|i| SeriesPoint::raw(T0 + i * 1000, (i * 37 % 360) as f64))
        .collect();
    let speeds: Vec<SeriesPoint> = (0..100)
        .map(|i| SeriesPoint::raw(T0 + i * 1000 + 200, (i % 13) as f64))
        .collect();
    let t = tally(&dirs, &speeds);
    assert_eq!(t.total(), 100, "every pair counted once");
    let calm = (0..100).filter(|i| i % 13 == 0).count() as u64;
    assert_eq!(t.calm, calm);
    let percent: f64 = (0..SECTORS).map(|s| t.sector_percent(s)).sum::<f64>()
        + t.calm as f64 * 100.0 / t.total() as f64;
    assert!((percent - 100.0).abs() < 1e-9);
    // Hand-checked: i = 1 blows from 37° (NE, sector 2) at 1 m/s (band 0).
    let ne: u64 = (0..100)
        .filter(|i| i % 13 != 0 && sector((i * 37 % 360) as f64) == 2 && band((i % 13) as f64) == 0)
        .count() as u64;
    assert!(ne >= 1);
    assert_eq!(t.counts[2][0], ne);
    // A speed with no direction near it is not counted.
    let far = [SeriesPoint::raw(T0 + 500 * 1000, 5.0)];
    assert_eq!(tally(&dirs[..1], &far).total(), 0);
}

#[test]
fn rain_bars_add_up_buckets_by_count_and_the_total_is_drawn() {
    let points = vec![
        SeriesPoint {
            ts: T0 + 30 * 60_000,
            value: 0.2,
            min: Some(0.0),
            max: Some(0.4),
            count: Some(5),
        },
        SeriesPoint::raw(T0 + 90 * 60_000, 0.4),
        SeriesPoint::raw(T0 + 95 * 60_000, 0.2),
    ];
    let b = bars(&points, T0, T0 + 24 * HOUR, london(), 1);
    assert_eq!(b.len(), 24);
    assert_eq!(b[0].start, T0);
    assert!((b[0].amount - 1.0).abs() < 1e-9, "0.2 mm mean × 5 readings");
    assert!((b[1].amount - 0.6).abs() < 1e-9);
    assert_eq!(b.iter().map(|b| b.amount).sum::<f64>(), 1.6);
    let svg = draw(
        "rain",
        &[ChartData {
            quantity: Quantity::Rain,
            points,
        }],
        UnitSystem::Metric,
    );
    check_svg(&svg);
    assert!(svg.contains("Total 1.6 mm"), "{svg}");
}

#[test]
fn the_water_chart_has_one_panel_per_quantity_with_data() {
    let data = day_of_everything();
    let svg = draw("water", &data, UnitSystem::Metric);
    assert!(svg.contains(">Water temperature<") && svg.contains(">pH<"));
    assert!(!svg.contains("Conductivity"));
    assert!(svg.contains("height=\"370\""), "two panels");
}

#[test]
fn a_track_is_drawn_from_latitude_and_longitude() {
    let lat: Vec<SeriesPoint> = (0..50)
        .map(|i| SeriesPoint::raw(T0 + i * 600_000, -16.9 + i as f64 * 0.001))
        .collect();
    let lon: Vec<SeriesPoint> = (0..50)
        .map(|i| SeriesPoint::raw(T0 + i * 600_000, 145.8 + (i as f64 * 0.3).sin() * 0.002))
        .collect();
    let svg = render_track("Buoy track", T0, T0 + 24 * HOUR, &lat, &lon, london());
    check_svg(&svg);
    assert!(svg.contains("latest") && svg.contains("50 positions"));
    assert!(!svg.contains(track::NO_POSITION));
    let none = render_track("Buoy track", T0, T0 + 24 * HOUR, &lat, &[], london());
    check_svg(&none);
    assert!(none.contains(track::NO_POSITION));
}

#[test]
fn text_is_escaped() {
    let spec = ChartSpec {
        name: "x",
        title: "a <b> & \"c\"",
        quantities: &[],
        kind: ChartKind::Line,
    };
    let svg = render(
        &spec,
        Span::Day,
        T0,
        T0 + HOUR,
        &[],
        UnitSystem::Metric,
        london(),
    );
    check_svg(&svg);
    assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
}

/// The `(x, y)` of every dot (`M{x} {y}h0`) of the wind-direction chart, as written.
fn dots(svg: &str) -> Vec<(String, String)> {
    let at = svg.find("stroke-linecap=\"round\"").expect("the dots path");
    let start = svg[..at].rfind("d=\"").expect("path data") + 3;
    let end = svg[start..].find('"').expect("end of data") + start;
    svg[start..end]
        .split('M')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = s.strip_suffix("h0").expect("a dot is `M{x} {y}h0`");
            let (x, y) = s.split_once(' ').expect("x and y");
            (x.to_string(), y.to_string())
        })
        .collect()
}

#[test]
fn direction_dots_are_whole_pixels_each_drawn_once() {
    // A week of minute buckets (10 080 dots before rounding), the direction turning.
    let points: Vec<SeriesPoint> = (0..7 * 1440)
        .map(|m| SeriesPoint {
            ts: T0 + m * 60_000,
            value: (m as f64 * 0.37).rem_euclid(360.0),
            min: None,
            max: None,
            count: Some(6),
        })
        .collect();
    let data = [ChartData {
        quantity: Quantity::WindDirection,
        points: points.clone(),
    }];
    let spec = spec("wind_direction").expect("chart exists");
    let (from, to) = (T0, T0 + 7 * 24 * HOUR);
    let svg = render(
        spec,
        Span::Week,
        from,
        to,
        &data,
        UnitSystem::Metric,
        london(),
    );
    check_svg(&svg);
    let drawn = dots(&svg);
    let mut seen = std::collections::HashSet::new();
    let mut got = std::collections::BTreeSet::new();
    for (x, y) in &drawn {
        let (x, y) = (
            x.parse::<i64>().expect("x is a whole pixel"),
            y.parse::<i64>().expect("y is a whole pixel"),
        );
        assert!(seen.insert((x, y)), "dot ({x}, {y}) drawn twice");
        got.insert((x, y));
    }
    // Exactly the pixels the points fall on.
    let frame = Frame {
        spec,
        span: Span::Week,
        from,
        to,
        units: UnitSystem::Metric,
        tz: london(),
    };
    let plot = super::line::plot_area(&frame, 46.0, super::line::HEIGHT - 46.0 - 44.0);
    let scale = super::axis::Scale { lo: 0.0, hi: 360.0 };
    let want: std::collections::BTreeSet<(i64, i64)> = points
        .iter()
        .map(|p| {
            (
                plot.x(p.ts).round() as i64,
                scale.y(&plot, p.value).round() as i64,
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(svg.len() < 60_000, "{} bytes", svg.len());
}

#[test]
fn a_wind_from_the_north_keeps_its_aggregated_dots_and_rose_counts() {
    // Hour buckets of a northerly wind: readings from 340° to 20°, so lowest 3° and highest
    // 357°, mean direction (the vector mean) a few degrees either side of north.
    let bucket = |h: i64, mean: f64| SeriesPoint {
        ts: T0 + h * HOUR,
        value: mean,
        min: Some(3.0),
        max: Some(357.0),
        count: Some(360),
    };
    let dirs = vec![bucket(0, 2.0), bucket(1, 358.0), bucket(2, 0.5)];
    let speeds: Vec<SeriesPoint> = (0..3)
        .map(|h| SeriesPoint {
            ts: T0 + h * HOUR,
            value: 5.0,
            min: Some(1.0),
            max: Some(9.0),
            count: Some(360),
        })
        .collect();
    let t = tally(&dirs, &speeds);
    assert_eq!(t.total(), 3);
    assert!(
        (t.sector_percent(0) - 100.0).abs() < 1e-9,
        "all from the north"
    );

    let data = [ChartData {
        quantity: Quantity::WindDirection,
        points: dirs,
    }];
    let spec = spec("wind_direction").expect("chart exists");
    let svg = render(
        spec,
        Span::Day,
        T0,
        T0 + 24 * HOUR,
        &data,
        UnitSystem::Metric,
        london(),
    );
    check_svg(&svg);
    assert_eq!(dots(&svg).len(), 3, "one dot per hour");
}
