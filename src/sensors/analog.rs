//! `type = "analog"`: any sensor with a voltage output, on a channel of an ADS1115, MCP3008
//! or MCP3427, turned into one quantity by a curve from volts: a line, a polynomial, or the
//! logarithmic response of an ion-selective electrode. Presets carry the curve of a known
//! sensor (turbidity: DFRobot SEN0189; nitrate: a nitrate ion-selective electrode).
//!
//! The chain, for each sample:
//!
//! ```text
//! ADC volts × input_scale                 the sensor's output (undoing a divider)
//!   → offset_volts + gain × that          the two-point calibration (`anemone calibrate analog`)
//!   → curve(volts)                        the quantity
//! ```
//!
//! A voltage outside the curve's `valid_volts` is clamped to that range for the value, and
//! the reading is flagged `out_of_range`. The two-point calibration corrects the sensor's
//! voltage (an ageing LED, another supply, an electrode's offset) and keeps the curve's
//! shape, so it works the same for every form of curve: the stored correction maps the two
//! measured voltages onto the voltages at which the curve gives the standards' values.

use anemone_drivers::ads1115::{Ads1115, Fsr};
use anemone_drivers::mcp3008::{mcp3008_volts, Mcp3008};
use anemone_drivers::mcp3427::{self, Mcp3427};
use serde::{Deserialize, Serialize};

use super::wind_vane::AdcKind;
use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::{SimChannel, SimWorldBuilder, Weather};
use crate::hal::{Hal, HalDelay, I2cBus, SpiBus};
use crate::reading::{Flags, Quantity, Reading, SensorId, Timestamp};

/// Volts → quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Curve {
    /// `offset + per_volt × V`.
    Linear {
        /// The value at 0 V.
        offset: f64,
        /// The change per volt.
        per_volt: f64,
    },
    /// `c0 + c1·V + c2·V² + …` (the coefficients from c0 up).
    Polynomial(Vec<f64>),
    /// An ion-selective electrode: `10^((V − e0_volts) / slope_volts_per_decade)`.
    Log {
        /// The voltage at a value of 1 (in the quantity's unit).
        e0_volts: f64,
        /// Volts per tenfold change (Nernst at 25 °C: ±0.05916 / charge of the ion).
        slope_volts_per_decade: f64,
    },
}

impl Curve {
    /// The value at `v` volts.
    pub fn value(&self, v: f64) -> f64 {
        match self {
            Curve::Linear { offset, per_volt } => offset + per_volt * v,
            Curve::Polynomial(c) => c.iter().rev().fold(0.0, |acc, k| acc * v + k),
            Curve::Log {
                e0_volts,
                slope_volts_per_decade,
            } => 10f64.powf((v - e0_volts) / slope_volts_per_decade),
        }
    }

    /// The voltage within `valid` at which the curve gives `value` (bisection; the curve
    /// must be monotonic there, which `check` makes sure of). `None` when `value` is
    /// outside what the curve gives over `valid`.
    pub fn volts_for(&self, value: f64, valid: (f64, f64)) -> Option<f64> {
        let (mut lo, mut hi) = valid;
        let (f_lo, f_hi) = (self.value(lo) - value, self.value(hi) - value);
        if !(f_lo.is_finite() && f_hi.is_finite()) || f_lo * f_hi > 0.0 {
            return None;
        }
        let rising = f_hi > f_lo;
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if (self.value(mid) < value) == rising {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(0.5 * (lo + hi))
    }

    /// Why the curve cannot be used over `valid`, if it cannot.
    fn problem(&self, valid: (f64, f64)) -> Option<String> {
        match self {
            Curve::Linear { per_volt, .. } if *per_volt == 0.0 || !per_volt.is_finite() => {
                return Some("linear.per_volt must be a number other than 0".into())
            }
            Curve::Polynomial(c) if c.len() < 2 || c.iter().any(|k| !k.is_finite()) => {
                return Some(
                    "polynomial needs at least two finite coefficients, c0 first: [c0, c1, …]"
                        .into(),
                )
            }
            Curve::Log {
                slope_volts_per_decade,
                e0_volts,
            } if *slope_volts_per_decade == 0.0 || !e0_volts.is_finite() => {
                return Some(
                    "log.slope_volts_per_decade must not be 0 (a nitrate electrode: -0.05916)"
                        .into(),
                )
            }
            _ => {}
        }
        // Monotonic over the valid range, or neither the reading nor the calibration can be
        // trusted (two voltages would give one value).
        let n = 200;
        let step = (valid.1 - valid.0) / f64::from(n);
        let values: Vec<f64> = (0..=n)
            .map(|i| self.value(valid.0 + step * f64::from(i)))
            .collect();
        let up = values.windows(2).all(|w| w[1] > w[0]);
        let down = values.windows(2).all(|w| w[1] < w[0]);
        (!(up || down)).then(|| {
            format!(
                "the curve is not monotonic between {} V and {} V: narrow valid_volts to where it only rises or only falls",
                valid.0, valid.1
            )
        })
    }
}

/// A known sensor's curve and quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// DFRobot Gravity analog turbidity sensor SEN0189 at 5 V: NTU = −1120.4·V² + 5742.3·V
    /// − 4352.9 (the curve on DFRobot's SEN0189 wiki page, drawn for 2.5–4.2 V: 4.2 V is
    /// clear water, 2.5 V about 3000 NTU). Used from 2.57 V up: the parabola turns over at
    /// 2.563 V. Its output reaches 4.5 V: divide it for a 3.3 V ADC.
    TurbiditySen0189,
    /// A nitrate (NO₃⁻) ion-selective electrode behind a high-impedance amplifier (the kind of
    /// board analog pH probes use): Nernstian, −59.16 mV per tenfold nitrate at 25 °C (an
    /// anion), 1 mg/L at 1.5 V until the two-point calibration (1 and 100 mg/L standards)
    /// says where this electrode's 1 mg/L is.
    NitrateIse,
}

impl Preset {
    fn quantity(self) -> Quantity {
        match self {
            Preset::TurbiditySen0189 => Quantity::Turbidity,
            Preset::NitrateIse => Quantity::Nitrate,
        }
    }

    fn curve(self) -> Curve {
        match self {
            Preset::TurbiditySen0189 => Curve::Polynomial(vec![-4352.9, 5742.3, -1120.4]),
            Preset::NitrateIse => Curve::Log {
                e0_volts: 1.5,
                slope_volts_per_decade: -0.059_16,
            },
        }
    }

    fn valid_volts(self) -> (f64, f64) {
        match self {
            Preset::TurbiditySen0189 => (2.57, 4.2),
            // 0.01–1000 mg/L around the nominal 1 mg/L at 1.5 V.
            Preset::NitrateIse => (1.5 - 3.0 * 0.059_16, 1.5 + 2.0 * 0.059_16),
        }
    }
}

/// `type = "analog"`: a voltage-output sensor on an ADC channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalogConfig {
    /// `ads1115` (default), `mcp3008` (SPI) or `mcp3427`.
    #[serde(default = "default_adc")]
    pub adc: AdcKind,
    /// ADC channel (ADS1115: 0–3, MCP3008: 0–7, MCP3427: 0–1).
    #[serde(default)]
    pub channel: u8,
    /// I2C bus (ADS1115, MCP3427).
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// I2C address (ADS1115: 0x48–0x4B; MCP3427: 0x68–0x6F).
    #[serde(default = "default_address")]
    pub address: u8,
    /// SPI bus (MCP3008).
    #[serde(default)]
    pub spi_bus: u8,
    /// SPI chip select (MCP3008).
    #[serde(default)]
    pub spi_cs: u8,
    /// The MCP3008's reference voltage.
    #[serde(default = "default_vref")]
    pub vref: f64,
    /// A known sensor: its quantity, curve and valid voltages (each can be overridden).
    #[serde(default)]
    pub preset: Option<Preset>,
    /// The quantity stored (`turbidity`, `nitrate`, `analog_voltage`, or any other quantity
    /// name); the preset's, else `analog_voltage`.
    #[serde(default)]
    pub quantity: Option<String>,
    /// The unit, as a check: it must be the quantity's unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Volts → quantity; the preset's, else the voltage itself.
    #[serde(default)]
    pub curve: Option<Curve>,
    /// The sensor voltages the curve holds for, `[low, high]`; the preset's, else 0–5 V.
    #[serde(default)]
    pub valid_volts: Option<[f64; 2]>,
    /// Sensor volts per ADC volt: 1.5 behind a 10 kΩ / 20 kΩ divider (5 V sensor, 3.3 V ADC).
    #[serde(default = "default_input_scale")]
    pub input_scale: f64,
}

fn default_adc() -> AdcKind {
    AdcKind::Ads1115
}
fn default_bus() -> u8 {
    1
}
fn default_address() -> u8 {
    anemone_drivers::ads1115::DEFAULT_ADDRESS
}
fn default_vref() -> f64 {
    3.3
}
fn default_input_scale() -> f64 {
    1.0
}

/// The two-point calibration in force: sensor volts → the volts the curve is read at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoltsCorrection {
    /// Volts added after the gain.
    pub offset_volts: f64,
    /// Multiplier of the measured volts.
    pub gain: f64,
}

impl Default for VoltsCorrection {
    fn default() -> Self {
        VoltsCorrection {
            offset_volts: 0.0,
            gain: 1.0,
        }
    }
}

impl VoltsCorrection {
    /// The correction that takes `measured` voltages to `wanted` ones: one point shifts,
    /// two points shift and scale. `None` for two equal measured voltages.
    pub fn fit(points: &[(f64, f64)]) -> Option<VoltsCorrection> {
        match points {
            [] => Some(VoltsCorrection::default()),
            [(m, w)] => Some(VoltsCorrection {
                offset_volts: w - m,
                gain: 1.0,
            }),
            [.., (m1, w1), (m2, w2)] => {
                if (m2 - m1).abs() < 1e-6 {
                    return None;
                }
                let gain = (w2 - w1) / (m2 - m1);
                Some(VoltsCorrection {
                    offset_volts: w1 - gain * m1,
                    gain,
                })
            }
        }
    }

    /// `v` corrected.
    pub fn apply(self, v: f64) -> f64 {
        self.offset_volts + self.gain * v
    }
}

/// A stored correction and when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalogCalibrationInForce {
    /// When `anemone calibrate analog` recorded it.
    pub ts: Timestamp,
    /// The correction.
    pub correction: VoltsCorrection,
}

impl AnalogConfig {
    /// The quantity stored.
    pub fn quantity(&self) -> Result<Quantity, String> {
        match (&self.quantity, self.preset) {
            (Some(name), _) => name.parse().map_err(|e| format!("{e}")),
            (None, Some(p)) => Ok(p.quantity()),
            (None, None) => Ok(Quantity::AnalogVoltage),
        }
    }

    /// The curve in use.
    pub fn curve(&self) -> Curve {
        match (&self.curve, self.preset) {
            (Some(c), _) => c.clone(),
            (None, Some(p)) => p.curve(),
            (None, None) => Curve::Linear {
                offset: 0.0,
                per_volt: 1.0,
            },
        }
    }

    /// The sensor voltages the curve holds for.
    pub fn valid(&self) -> (f64, f64) {
        match (self.valid_volts, self.preset) {
            (Some([lo, hi]), _) => (lo, hi),
            (None, Some(p)) => p.valid_volts(),
            (None, None) => (0.0, 5.0),
        }
    }

    fn adc_name(&self) -> &'static str {
        match self.adc {
            AdcKind::Ads1115 => "ADS1115",
            AdcKind::Mcp3008 => "MCP3008",
            AdcKind::Mcp3427 => "MCP3427",
        }
    }

    fn open(&self, hal: &Hal) -> Result<AnalogAdc, SourceError> {
        Ok(match self.adc {
            AdcKind::Ads1115 => {
                AnalogAdc::Ads1115(Ads1115::new(hal.i2c(self.bus)?, self.address), hal.delay())
            }
            AdcKind::Mcp3008 => {
                AnalogAdc::Mcp3008(Mcp3008::new(hal.spi(self.spi_bus, self.spi_cs)?), self.vref)
            }
            AdcKind::Mcp3427 => {
                AnalogAdc::Mcp3427(Mcp3427::new(hal.i2c(self.bus)?, self.address), hal.delay())
            }
        })
    }

    /// The sensor's voltage now (after `input_scale`, before the calibration): for
    /// `anemone calibrate analog`.
    pub fn measure_volts(&self, hal: &Hal) -> Result<f64, SourceError> {
        let mut adc = self.open(hal)?;
        Ok(adc.volts(self.channel)? * self.input_scale)
    }
}

impl SensorKindSpec for AnalogConfig {
    const TYPE: &'static str = "analog";

    fn default_interval(&self) -> Span {
        Span::secs(60)
    }

    fn quantities(&self) -> Vec<Quantity> {
        self.quantity().map(|q| vec![q]).unwrap_or_default()
    }

    fn resources(&self) -> Vec<String> {
        let (bus, address, channel) = (self.bus, self.address, self.channel);
        vec![match self.adc {
            AdcKind::Mcp3008 => format!(
                "MCP3008 on SPI {}.{} channel {channel}",
                self.spi_bus, self.spi_cs
            ),
            _ => format!(
                "{} on I2C bus {bus} address {address:#04x} channel {channel}",
                self.adc_name()
            ),
        }]
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        let max_ch = match self.adc {
            AdcKind::Mcp3008 => 7,
            AdcKind::Ads1115 => 3,
            AdcKind::Mcp3427 => 1,
        };
        if self.channel > max_ch {
            p.push((
                "channel",
                format!("the {} has channels 0–{max_ch}", self.adc_name()),
            ));
        }
        let addresses = match self.adc {
            AdcKind::Ads1115 => Some(0x48..=0x4B),
            AdcKind::Mcp3427 => Some(0x68..=0x6F),
            AdcKind::Mcp3008 => None,
        };
        if let Some(range) = addresses.filter(|r| !r.contains(&self.address)) {
            p.push((
                "address",
                format!(
                    "{:#04x} is not an {} address: {:#04x}–{:#04x}",
                    self.address,
                    self.adc_name(),
                    range.start(),
                    range.end()
                ),
            ));
        }
        match self.quantity() {
            Err(e) => p.push(("quantity", e)),
            Ok(q) => {
                if let Some(unit) = self.unit.as_deref().filter(|u| *u != q.unit()) {
                    p.push((
                        "unit",
                        format!(
                            "{} is stored in {}, not {unit}: convert with the curve, or leave unit out",
                            q.as_str(),
                            q.unit()
                        ),
                    ));
                }
            }
        }
        let (lo, hi) = self.valid();
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            p.push((
                "valid_volts",
                "must be [low, high] volts with low below high, e.g. [2.5, 4.2]".into(),
            ));
        } else if let Some(e) = self.curve().problem((lo, hi)) {
            p.push(("curve", e));
        }
        if !super::positive(self.input_scale) || !self.input_scale.is_finite() {
            p.push((
                "input_scale",
                "must be the sensor volts per ADC volt, e.g. 1.5 behind a 10 kΩ / 20 kΩ divider"
                    .into(),
            ));
        }
        if self.adc == AdcKind::Mcp3008 && !(self.vref > 0.0 && self.vref <= 5.5) {
            p.push((
                "vref",
                "must be the MCP3008's reference voltage, e.g. 3.3".into(),
            ));
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let quantity = self.quantity().map_err(SourceError::Device)?;
        let correction = ctx
            .analog_calibrations
            .get(&*id)
            .map(|c| c.correction)
            .unwrap_or_default();
        let mut source = AnalogSource {
            id,
            adc: self.open(hal)?,
            channel: self.channel,
            input_scale: self.input_scale,
            correction,
            curve: self.curve(),
            valid: self.valid(),
            quantity,
        };
        // One read now, so an absent ADC is reported at start-up.
        source.adc.volts(source.channel)?;
        Ok(Box::new(source))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let Ok(quantity) = self.quantity() else {
            return;
        };
        let (curve, valid, scale) = (self.curve(), self.valid(), self.input_scale);
        let pin = SimChannel::Analog(Box::new(move |weather: &Weather, t| {
            let truth = match quantity {
                Quantity::Turbidity => weather.turbidity(t),
                Quantity::Nitrate => weather.nitrate(t),
                // Anything else: a slow daily swing across the middle of the valid range.
                _ => {
                    let mid = curve.value(0.5 * (valid.0 + valid.1));
                    let swing = curve.value(0.6 * valid.1 + 0.4 * valid.0) - mid;
                    mid + swing * (std::f64::consts::TAU * t as f64 / 86_400_000.0).sin()
                }
            };
            // A value beyond the curve's range sits at the nearer end (and is flagged).
            let volts = curve.volts_for(truth, valid).unwrap_or_else(|| {
                let nearer_lo =
                    (curve.value(valid.0) - truth).abs() < (curve.value(valid.1) - truth).abs();
                if nearer_lo {
                    valid.0
                } else {
                    valid.1
                }
            });
            volts / scale
        }));
        match self.adc {
            AdcKind::Mcp3008 => {
                world.mcp3008_channel(self.spi_bus, self.spi_cs, self.vref, self.channel, pin)
            }
            AdcKind::Ads1115 => world.ads1115_channel(self.bus, self.address, self.channel, pin),
            AdcKind::Mcp3427 => world.mcp3427_channel(self.bus, self.address, self.channel, pin),
        }
    }
}

enum AnalogAdc {
    Ads1115(Ads1115<I2cBus>, HalDelay),
    Mcp3008(Mcp3008<SpiBus>, f64),
    Mcp3427(Mcp3427<I2cBus>, HalDelay),
}

impl AnalogAdc {
    fn volts(&mut self, channel: u8) -> Result<f64, SourceError> {
        match self {
            AnalogAdc::Ads1115(dev, delay) => dev
                .read_volts(channel, Fsr::V4_096, delay)
                .map_err(|e| SourceError::Absent(format!("ADS1115 channel {channel}: {e:?}"))),
            AnalogAdc::Mcp3008(dev, vref) => dev
                .read(channel)
                .map(|c| mcp3008_volts(c, *vref))
                .map_err(|e| SourceError::Device(format!("MCP3008 channel {channel}: {e:?}"))),
            AnalogAdc::Mcp3427(dev, delay) => dev
                .read_volts(
                    channel,
                    mcp3427::Resolution::Bits16,
                    mcp3427::Gain::X1,
                    delay,
                )
                .map_err(|e| {
                    let text = format!("MCP3427 channel {channel}: {e}");
                    if e.is_no_device() {
                        SourceError::Absent(text)
                    } else {
                        SourceError::Device(text)
                    }
                }),
        }
    }
}

/// An analog sensor: ADC volts → quantity.
struct AnalogSource {
    id: SensorId,
    adc: AnalogAdc,
    channel: u8,
    input_scale: f64,
    correction: VoltsCorrection,
    curve: Curve,
    valid: (f64, f64),
    quantity: Quantity,
}

impl Source for AnalogSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let volts = self
            .correction
            .apply(self.adc.volts(self.channel)? * self.input_scale);
        Ok(vec![reading_at(
            now,
            &self.id,
            self.quantity,
            &self.curve,
            self.valid,
            volts,
        )])
    }
}

/// The reading for a (corrected) sensor voltage: clamped into `valid` and flagged
/// `out_of_range` outside it.
pub fn reading_at(
    ts: Timestamp,
    id: &SensorId,
    quantity: Quantity,
    curve: &Curve,
    valid: (f64, f64),
    volts: f64,
) -> Reading {
    let clamped = volts.clamp(valid.0, valid.1);
    let mut r = Reading::new(ts, id, quantity, curve.value(clamped));
    if clamped != volts {
        r.flags.insert(Flags::OUT_OF_RANGE);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sen0189_curve_matches_dfrobots_points() {
        let c = Preset::TurbiditySen0189.curve();
        // DFRobot's SEN0189 wiki curve: 4.2 V is clear water (about 0 NTU), 2.5 V about
        // 3000 NTU.
        assert!((c.value(4.2) - 0.9).abs() < 0.1, "{}", c.value(4.2));
        assert!((c.value(2.5) - 3000.35).abs() < 0.1, "{}", c.value(2.5));
        let valid = Preset::TurbiditySen0189.valid_volts();
        let v = c.volts_for(1000.0, valid).expect("in range");
        assert!((c.value(v) - 1000.0).abs() < 1e-6);
        assert!(c.problem(valid).is_none());
        // The parabola turns over at 2.563 V: DFRobot's own 2.5 V end is refused.
        assert!(c.problem((2.5, 4.2)).is_some());
    }

    #[test]
    fn nitrate_electrode_is_nernstian() {
        let c = Preset::NitrateIse.curve();
        assert!((c.value(1.5) - 1.0).abs() < 1e-12);
        // An anion: tenfold nitrate lowers the voltage by 59.16 mV.
        assert!((c.value(1.5 - 0.059_16) - 10.0).abs() < 1e-9);
        let v = c
            .volts_for(100.0, Preset::NitrateIse.valid_volts())
            .expect("in range");
        assert!((v - (1.5 - 2.0 * 0.059_16)).abs() < 1e-9);
    }

    #[test]
    fn two_point_correction_maps_measured_onto_wanted() {
        let k = VoltsCorrection::fit(&[(4.0, 4.15), (3.0, 3.2)]).expect("fit");
        assert!((k.apply(4.0) - 4.15).abs() < 1e-12);
        assert!((k.apply(3.0) - 3.2).abs() < 1e-12);
        let one = VoltsCorrection::fit(&[(4.0, 4.1)]).expect("fit");
        assert!((one.apply(3.0) - 3.1).abs() < 1e-12);
        assert_eq!(VoltsCorrection::fit(&[(3.0, 3.1), (3.0, 3.3)]), None);
    }

    #[test]
    fn outside_the_valid_range_is_clamped_and_flagged() {
        let id: SensorId = Arc::from("turb");
        let c = Preset::TurbiditySen0189.curve();
        let r = reading_at(0, &id, Quantity::Turbidity, &c, (2.5, 4.2), 4.6);
        assert!(r.flags.contains(Flags::OUT_OF_RANGE));
        assert_eq!(r.value, Some(c.value(4.2)));
        let ok = reading_at(0, &id, Quantity::Turbidity, &c, (2.5, 4.2), 3.0);
        assert!(ok.flags.is_ok());
    }
}
