//! Tipping-bucket rain gauge: plausible reed-switch tips per interval → mm.
//!
//! Wire the switch between a GPIO pin (default GPIO 6) and GND; the line is requested
//! with the internal pull-up ([`crate::hal::gpio`]).

use anemone_drivers::pulse::Edge;
use anemone_drivers::rain_gauge::{tips_to_mm, RainGauge};
use serde::{Deserialize, Serialize};

use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::span_problem;
use crate::duration::Span;
use crate::hal::sim::{SimWorldBuilder, Switch};
use crate::hal::{EdgeSource, Hal};
use crate::reading::{Flags, Quantity, Reading, SensorId, Timestamp};

/// `type = "rain_gauge"`: a tipping-bucket rain gauge with a reed switch on a GPIO line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RainGaugeConfig {
    /// GPIO chip number.
    #[serde(default)]
    pub chip: u8,
    /// BCM line number.
    #[serde(default = "default_gpio")]
    pub gpio: u32,
    /// Rain per tip in mm.
    #[serde(default = "default_mm_per_tip")]
    pub mm_per_tip: f64,
    /// Ignore contact bounce shorter than this.
    #[serde(default = "default_debounce")]
    pub debounce: Span,
    /// Tips closer than this are physically impossible and flagged.
    #[serde(default = "default_min_tip_interval")]
    pub min_tip_interval: Span,
}

fn default_gpio() -> u32 {
    6
}
fn default_mm_per_tip() -> f64 {
    0.2794
}
fn default_debounce() -> Span {
    Span::millis(25)
}
fn default_min_tip_interval() -> Span {
    Span::millis(500)
}

impl SensorKindSpec for RainGaugeConfig {
    const TYPE: &'static str = "rain_gauge";

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::Rain]
    }

    fn resources(&self) -> Vec<String> {
        vec![format!("GPIO chip {} line {}", self.chip, self.gpio)]
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        if let Some(m) = span_problem(self.debounce, Span::secs(0), super::DEBOUNCE_MAX, "25ms") {
            p.push(("debounce", m));
        }
        if let Some(m) = span_problem(
            self.min_tip_interval,
            Span::secs(0),
            super::DEBOUNCE_MAX,
            "500ms",
        ) {
            p.push(("min_tip_interval", m));
        }
        if !(self.mm_per_tip > 0.0 && self.mm_per_tip < 10.0) {
            p.push((
                "mm_per_tip",
                "must be the rain per tip in mm, e.g. 0.2794".into(),
            ));
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let debounce_us = self.debounce.0.as_micros() as u64;
        let edges = hal.edges(self.chip, self.gpio, debounce_us)?;
        Ok(Box::new(RainSource {
            id,
            edges,
            gauge: RainGauge::new(
                self.mm_per_tip,
                debounce_us.min(u64::from(u32::MAX)) as u32,
                self.min_tip_interval.0.as_micros() as u64,
            ),
            buf: Vec::new(),
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        world.switch(
            self.chip,
            self.gpio,
            Switch::RainGauge {
                mm_per_tip: self.mm_per_tip,
            },
        );
    }

    fn gpio_line(&self) -> Option<(u8, u32)> {
        Some((self.chip, self.gpio))
    }
}

struct RainSource {
    id: SensorId,
    edges: EdgeSource,
    gauge: RainGauge,
    buf: Vec<Edge>,
}

impl Source for RainSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        self.buf.clear();
        self.edges.drain(now, &mut self.buf)?;
        let (mut plausible, mut implausible) = (0u64, 0u64);
        for e in &self.buf {
            match self.gauge.edge(*e) {
                Some(t) if t.plausible => plausible += 1,
                Some(_) => implausible += 1,
                None => {}
            }
        }
        let mut readings = Vec::with_capacity(2);
        if implausible > 0 {
            tracing::warn!(
                sensor = %self.id,
                implausible,
                "Rain gauge tipped faster than a bucket can; those tips are stored flagged `spike` and not added to rain totals"
            );
            let mut r = Reading::new(
                now,
                &self.id,
                Quantity::Rain,
                tips_to_mm(implausible, self.gauge.mm_per_tip()),
            );
            r.flags.insert(Flags::SPIKE);
            readings.push(r);
        }
        readings.push(Reading::new(
            now,
            &self.id,
            Quantity::Rain,
            tips_to_mm(plausible, self.gauge.mm_per_tip()),
        ));
        Ok(readings)
    }
}
