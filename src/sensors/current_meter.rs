//! Water current meter: a paddle wheel or propeller whose magnet closes a reed switch (or
//! pulses a Hall sensor) as it turns → water current speed.
//!
//! Wire the switch between a GPIO pin (default GPIO 26, pin 37) and GND; the line is
//! requested with the internal pull-up ([`crate::hal::gpio`]). A Hall sensor with an
//! open-collector output wires the same way (its supply to 3V3, never 5 V, on a Pi).
//!
//! Pulses are counted per interval exactly as the anemometer's are (the same debounced
//! counting path) and become `current_speed` in m/s through the calibration factor
//! `mps_per_hz` (m/s per pulse per second, from the maker's sheet or from towing the meter
//! at a known speed). The pipeline's derived stage adds the 2- and 10-minute means
//! (`current_speed_avg_2min`, `current_speed_avg_10min`) through the windows it keeps for
//! the wind.

use anemone_drivers::anemometer::AnemometerParams;
use serde::{Deserialize, Serialize};

use super::anemometer::{pulse_speed_source, PulseLine};
use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::{SimWorldBuilder, Switch};
use crate::hal::Hal;
use crate::reading::{Quantity, SensorId};

/// `type = "current_meter"`: a paddle-wheel or propeller current sensor on a GPIO line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrentMeterConfig {
    /// GPIO chip number (`/dev/gpiochip<chip>`).
    #[serde(default)]
    pub chip: u8,
    /// BCM line number.
    #[serde(default = "default_gpio")]
    pub gpio: u32,
    /// Current speed in m/s per pulse per second (the calibration factor).
    #[serde(default = "default_mps_per_hz")]
    pub mps_per_hz: f64,
    /// Ignore contact bounce shorter than this.
    #[serde(default = "default_debounce")]
    pub debounce: Span,
}

fn default_gpio() -> u32 {
    26
}
fn default_mps_per_hz() -> f64 {
    0.1
}
fn default_debounce() -> Span {
    Span::millis(1)
}

impl CurrentMeterConfig {
    fn line(&self) -> PulseLine {
        PulseLine {
            chip: self.chip,
            gpio: self.gpio,
            debounce: self.debounce,
        }
    }

    /// The counting path's parameters: one pulse per turn, and the factor in the
    /// anemometer's km/h per hertz.
    fn params(&self) -> AnemometerParams {
        AnemometerParams {
            pulses_per_revolution: 1.0,
            kmh_per_hz: self.mps_per_hz * 3.6,
        }
    }
}

impl SensorKindSpec for CurrentMeterConfig {
    const TYPE: &'static str = "current_meter";

    fn default_interval(&self) -> Span {
        Span::secs(5)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::CurrentSpeed]
    }

    fn resources(&self) -> Vec<String> {
        vec![self.line().resource()]
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        self.line().check(p);
        if !super::positive(self.mps_per_hz) {
            p.push((
                "mps_per_hz",
                "must be more than 0 (m/s per pulse per second, from the meter's sheet)".into(),
            ));
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        pulse_speed_source(id, hal, self.line(), self.params(), Quantity::CurrentSpeed)
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        world.switch(self.chip, self.gpio, Switch::CurrentMeter(self.params()));
    }

    fn gpio_line(&self) -> Option<(u8, u32)> {
        Some((self.chip, self.gpio))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate_text;
    use crate::sensors::testing::simulated_source;

    #[test]
    fn rules() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"current_meter\"\nid = \"c\"\nmps_per_hz = 0.0\ndebounce = \"2m\"\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    /// The simulated tidal stream through the real counting path: strong at mid-tide,
    /// slack in between, and doubling the factor doubles the speed.
    #[test]
    fn simulated_tidal_stream() {
        let t0 = 1_780_272_000_000;
        let text = "[hal]\nsimulate = true\n[[sensor]]\ntype = \"current_meter\"\nid = \"c\"\n";
        let (mut src, weather) = simulated_source(text, t0);
        let mut speeds = Vec::new();
        let mut expected = Vec::new();
        src.sample(t0).unwrap();
        for k in 1..=(13 * 60) {
            let now = t0 + k * 60_000;
            let r = src.sample(now).unwrap();
            assert_eq!(r[0].quantity, Quantity::CurrentSpeed);
            speeds.push(r[0].value.unwrap());
            expected.push(weather.current_speed(now - 30_000));
        }
        let max = speeds.iter().cloned().fold(0.0, f64::max);
        let min = speeds.iter().cloned().fold(f64::MAX, f64::min);
        assert!(max > 0.6 && max < 1.1, "{max}");
        assert!(min < 0.15, "slack water: {min}");
        // Minute means of the counted pulses follow the simulated stream.
        let err = speeds
            .iter()
            .zip(&expected)
            .map(|(s, e)| (s - e).abs())
            .fold(0.0, f64::max);
        assert!(err < 0.1, "{err}");

        let doubled = text.replace("id = \"c\"", "id = \"c\"\nmps_per_hz = 0.2");
        let t1 = t0 + 3 * 3_600_000;
        let (mut src2, _) = simulated_source(&doubled, t1 - 60_000);
        src2.sample(t1 - 60_000).unwrap();
        let v = src2.sample(t1).unwrap()[0].value.unwrap();
        let e = weather.current_speed(t1 - 30_000);
        assert!(e > 0.3 && (v - e).abs() < 0.1, "{v} vs {e}");
    }
}
