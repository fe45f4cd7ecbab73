//! Cup anemometer: debounced reed-switch closures per interval → wind speed.
//!
//! Wire the switch between a GPIO pin (default GPIO 5) and GND; the line is requested
//! with the internal pull-up ([`crate::hal::gpio`]).

use anemone_drivers::anemometer::{speed_mps, AnemometerParams};
use anemone_drivers::pulse::{Edge, PulseCounter};
use serde::{Deserialize, Serialize};

use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::span_problem;
use crate::duration::Span;
use crate::hal::sim::{SimWorldBuilder, Switch};
use crate::hal::{EdgeSource, Hal};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// `type = "anemometer"`: a cup anemometer with a reed switch on a GPIO line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnemometerConfig {
    /// GPIO chip number (`/dev/gpiochip<chip>`).
    #[serde(default)]
    pub chip: u8,
    /// BCM line number.
    #[serde(default = "default_gpio")]
    pub gpio: u32,
    /// Switch closures per revolution of the cups.
    #[serde(default = "default_pulses_per_revolution")]
    pub pulses_per_revolution: f64,
    /// km/h per revolution per second (datasheet: 2.4).
    #[serde(default = "default_kmh_per_hz")]
    pub kmh_per_hz: f64,
    /// Ignore contact bounce shorter than this.
    #[serde(default = "default_debounce")]
    pub debounce: Span,
}

fn default_gpio() -> u32 {
    5
}
fn default_pulses_per_revolution() -> f64 {
    1.0
}
fn default_kmh_per_hz() -> f64 {
    2.4
}
fn default_debounce() -> Span {
    Span::millis(1)
}

impl AnemometerConfig {
    fn line(&self) -> PulseLine {
        PulseLine {
            chip: self.chip,
            gpio: self.gpio,
            debounce: self.debounce,
        }
    }

    fn params(&self) -> AnemometerParams {
        AnemometerParams {
            pulses_per_revolution: self.pulses_per_revolution,
            kmh_per_hz: self.kmh_per_hz,
        }
    }
}

impl SensorKindSpec for AnemometerConfig {
    const TYPE: &'static str = "anemometer";

    fn default_interval(&self) -> Span {
        Span::secs(1)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::WindSpeed]
    }

    fn resources(&self) -> Vec<String> {
        vec![self.line().resource()]
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        self.line().check(p);
        if !super::positive(self.pulses_per_revolution) {
            p.push((
                "pulses_per_revolution",
                "must be more than 0 (usually 1 or 2)".into(),
            ));
        }
        if !super::positive(self.kmh_per_hz) {
            p.push(("kmh_per_hz", "must be more than 0 (datasheet: 2.4)".into()));
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        pulse_speed_source(id, hal, self.line(), self.params(), Quantity::WindSpeed)
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        world.switch(self.chip, self.gpio, Switch::Anemometer(self.params()));
    }

    fn gpio_line(&self) -> Option<(u8, u32)> {
        Some((self.chip, self.gpio))
    }
}

/// A reed switch or Hall sensor on a GPIO line.
#[derive(Debug, Clone, Copy)]
pub(super) struct PulseLine {
    /// GPIO chip number.
    pub chip: u8,
    /// BCM line number.
    pub gpio: u32,
    /// Contact bounce shorter than this is ignored.
    pub debounce: Span,
}

impl PulseLine {
    /// The resource it claims, for `validate`.
    pub fn resource(&self) -> String {
        format!("GPIO chip {} line {}", self.chip, self.gpio)
    }

    /// Its own rule: a debounce up to [`super::DEBOUNCE_MAX`].
    pub fn check(&self, p: &mut Vec<(&'static str, String)>) {
        if let Some(m) = span_problem(self.debounce, Span::secs(0), super::DEBOUNCE_MAX, "1ms") {
            p.push(("debounce", m));
        }
    }
}

/// A source that counts the debounced pulses on `line` per interval and gives the speed
/// they mean (`params`) as `quantity`: the anemometer's counting path, which the water
/// current meter shares.
pub(super) fn pulse_speed_source(
    id: SensorId,
    hal: &Hal,
    line: PulseLine,
    params: AnemometerParams,
    quantity: Quantity,
) -> Result<Box<dyn Source>, SourceError> {
    let debounce_us = line.debounce.0.as_micros() as u64;
    let edges = hal.edges(line.chip, line.gpio, debounce_us)?;
    Ok(Box::new(AnemometerSource {
        id,
        quantity,
        edges,
        counter: PulseCounter::new(debounce_us.min(u64::from(u32::MAX)) as u32),
        params,
        last: None,
        carried: 0,
        reported: false,
        buf: Vec::new(),
    }))
}

struct AnemometerSource {
    id: SensorId,
    quantity: Quantity,
    edges: EdgeSource,
    counter: PulseCounter,
    params: AnemometerParams,
    last: Option<Timestamp>,
    /// Pulses of a first window too short to report, carried into the next one.
    carried: u64,
    /// A speed was reported (the minimum window applies to the first one only).
    reported: bool,
    buf: Vec<Edge>,
}

/// The first wind speed needs a window at least this long (ms): the start-up sample just
/// before an aligned tick would otherwise give a speed from a few milliseconds of pulses.
/// (Later windows are the configured interval, whatever it is.)
const MIN_WINDOW_MS: i64 = 500;

impl Source for AnemometerSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        self.buf.clear();
        self.edges.drain(now, &mut self.buf)?;
        let mut pulses = 0u64;
        for e in &self.buf {
            if self.counter.edge(*e).is_some() {
                pulses += 1;
            }
        }
        let Some(last) = self.last else {
            // First call opens the first window; nothing to report yet.
            self.last = Some(now);
            return Ok(Vec::new());
        };
        if !self.reported && now - last < MIN_WINDOW_MS {
            self.carried += pulses;
            return Ok(Vec::new());
        }
        self.last = Some(now);
        self.reported = true;
        let pulses = pulses + std::mem::take(&mut self.carried);
        let window_us = ((now - last).max(0) as u64) * 1000;
        let speed = speed_mps(pulses, window_us, &self.params);
        Ok(vec![Reading::new(now, &self.id, self.quantity, speed)])
    }
}
