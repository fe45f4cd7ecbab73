//! A small SVG writer: a document of fixed size, shapes and text, numbers to a tenth of a
//! pixel, text escaped.

use std::fmt::Write;

/// Chart width in pixels (the page scales the image to its column).
pub const WIDTH: f64 = 640.0;

/// The colours of the series, in order: dark enough for a projector on a white background.
pub const PALETTE: [&str; 4] = ["#c0392b", "#1f5fa8", "#1d7a3a", "#7b3fa0"];

/// An SVG document being written.
pub struct Svg {
    out: String,
}

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            _ => s.push(c),
        }
    }
    s
}

/// A coordinate to a tenth of a pixel, without a trailing `.0`.
pub fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Where text is anchored horizontally.
#[derive(Debug, Clone, Copy)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

impl Svg {
    /// Starts a document `height` pixels high, titled `title` (drawn at the top left).
    pub fn new(height: f64, title: &str) -> Svg {
        let mut out = String::with_capacity(8 * 1024);
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"15\">\
             <title>{t}</title>\
             <rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>",
            w = num(WIDTH),
            h = num(height),
            t = escape(title),
        );
        let mut svg = Svg { out };
        svg.text(10.0, 20.0, title, Anchor::Start, "#111", Some("bold"));
        svg
    }

    /// Adds raw markup that the caller has built from this module's helpers.
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// A line segment.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, width: f64) {
        let _ = write!(
            self.out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"{}\"/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2),
            num(width)
        );
    }

    /// A rectangle.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, extra: &str) {
        let _ = write!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"{extra}/>",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
    }

    /// A circle.
    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, fill: &str, extra: &str) {
        let _ = write!(
            self.out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{fill}\"{extra}/>",
            num(cx),
            num(cy),
            num(r)
        );
    }

    /// A path from its `d` attribute.
    pub fn path(&mut self, d: &str, fill: &str, stroke: &str, width: f64, extra: &str) {
        if d.is_empty() {
            return;
        }
        let _ = write!(
            self.out,
            "<path d=\"{d}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"{extra}/>",
            num(width)
        );
    }

    /// A line of text.
    pub fn text(
        &mut self,
        x: f64,
        y: f64,
        text: &str,
        anchor: Anchor,
        fill: &str,
        weight: Option<&str>,
    ) {
        let weight = weight
            .map(|w| format!(" font-weight=\"{w}\""))
            .unwrap_or_default();
        let _ = write!(
            self.out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" fill=\"{fill}\"{weight}>{}</text>",
            num(x),
            num(y),
            anchor.as_str(),
            escape(text)
        );
    }

    /// A message in the middle of the box `(x, y, w, h)`: "no data for this period" and alike.
    pub fn message(&mut self, x: f64, y: f64, w: f64, h: f64, text: &str) {
        self.text(x + w / 2.0, y + h / 2.0, text, Anchor::Middle, "#555", None);
    }

    /// A legend entry list at the top right: coloured swatch and label per entry.
    pub fn legend(&mut self, entries: &[(String, &str)]) {
        let mut x = WIDTH - 10.0;
        for (label, colour) in entries.iter().rev() {
            let w = label.chars().count() as f64 * 8.0;
            self.text(x, 20.0, label, Anchor::End, "#222", None);
            x -= w + 6.0;
            self.rect(x - 12.0, 10.0, 12.0, 12.0, colour, "");
            x -= 24.0;
        }
    }

    /// Finishes the document.
    pub fn finish(mut self) -> String {
        self.push("</svg>");
        self.out
    }
}

/// Builds a path's `d` attribute from polylines: one run per polyline, an absolute move
/// then relative line steps (shorter), exact to a tenth of a pixel.
pub fn polyline_d(runs: &[Vec<(f64, f64)>]) -> String {
    let tenths = |v: f64| (v * 10.0).round() as i64;
    let mut d = String::new();
    for run in runs {
        let mut prev = (0, 0);
        for (i, (x, y)) in run.iter().enumerate() {
            let (xi, yi) = (tenths(*x), tenths(*y));
            if i == 0 {
                d.push_str(&format!("M{} {}", num(*x), num(*y)));
            } else {
                let (dx, dy) = ((xi - prev.0) as f64 / 10.0, (yi - prev.1) as f64 / 10.0);
                d.push_str(&format!("l{} {}", num(dx), num(dy)));
            }
            prev = (xi, yi);
        }
    }
    d
}
