//! Small multiples: one line panel per quantity that has data (the water quantities, whose
//! units differ), stacked in one SVG.

use super::axis::Plot;
use super::line::{draw_series_panel, label, plot_area};
use super::svg::{Anchor, Svg};
use super::{ChartData, Frame};

/// Height of one panel.
const PANEL: f64 = 170.0;
/// Height of the title row above the panels.
const HEADER: f64 = 30.0;

/// Draws one panel per series; a single "no data" panel when there is none.
pub fn render(frame: &Frame<'_>, series: &[&ChartData]) -> String {
    let panels = series.len().max(1);
    let height = HEADER + PANEL * panels as f64;
    let mut svg = Svg::new(height, frame.spec.title);
    if series.is_empty() {
        let plot = panel_plot(frame, 0);
        draw_series_panel(&mut svg, frame, &plot, &[], false);
        return svg.finish();
    }
    for (i, data) in series.iter().enumerate() {
        let plot = panel_plot(frame, i);
        svg.text(
            plot.left + 4.0,
            plot.top - 12.0,
            &label(data.quantity),
            Anchor::Start,
            "#111",
            Some("bold"),
        );
        draw_series_panel(&mut svg, frame, &plot, &[*data], false);
    }
    svg.finish()
}

fn panel_plot(frame: &Frame<'_>, i: usize) -> Plot {
    let top = HEADER + PANEL * i as f64 + 34.0;
    plot_area(frame, top, PANEL - 34.0 - 40.0)
}
