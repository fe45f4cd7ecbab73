//! Reed-switch and resistor-network instruments: anemometer, wind vane, rain gauge.

use anemone_drivers::ads1115::{Ads1115, Fsr};
use anemone_drivers::anemometer::{speed_mps, AnemometerParams};
use anemone_drivers::mcp3008::{mcp3008_volts, Mcp3008};
use anemone_drivers::pulse::{Edge, PulseCounter};
use anemone_drivers::rain_gauge::{tips_to_mm, RainGauge};
use anemone_drivers::wind_vane::VaneTable;

use super::{Source, SourceError};
use crate::config::{AdcKind, SensorKind};
use crate::hal::{EdgeSource, Hal, HalDelay, I2cBus, SpiBus, Switch};
use crate::reading::{Flags, Quantity, Reading, SensorId, Timestamp};

/// Cup anemometer: debounced closures per interval → speed.
pub(super) struct AnemometerSource {
    id: SensorId,
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

impl AnemometerSource {
    pub(super) fn build(id: SensorId, kind: &SensorKind, hal: &Hal) -> Result<Self, SourceError> {
        let SensorKind::Anemometer {
            chip,
            gpio,
            pulses_per_revolution,
            kmh_per_hz,
            debounce,
        } = kind
        else {
            return Err(SourceError::Device("not an anemometer config".into()));
        };
        let params = AnemometerParams {
            pulses_per_revolution: *pulses_per_revolution,
            kmh_per_hz: *kmh_per_hz,
        };
        let debounce_us = debounce.0.as_micros() as u64;
        let edges = hal.edges(*chip, *gpio, debounce_us, Switch::Anemometer(params))?;
        Ok(AnemometerSource {
            id,
            edges,
            counter: PulseCounter::new(debounce_us.min(u64::from(u32::MAX)) as u32),
            params,
            last: None,
            carried: 0,
            reported: false,
            buf: Vec::new(),
        })
    }
}

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
        Ok(vec![Reading::new(
            now,
            &self.id,
            Quantity::WindSpeed,
            speed,
        )])
    }
}

enum VaneAdc {
    Mcp3008(Mcp3008<SpiBus>, u8),
    Ads1115(Ads1115<I2cBus>, u8, HalDelay),
}

/// Wind vane: divider voltage → one of 16 directions.
pub(super) struct VaneSource {
    id: SensorId,
    adc: VaneAdc,
    table: VaneTable,
    vref: f64,
    tolerance: f64,
    offset_deg: f64,
}

impl VaneSource {
    pub(super) fn build(id: SensorId, kind: &SensorKind, hal: &Hal) -> Result<Self, SourceError> {
        let SensorKind::WindVane {
            adc,
            channel,
            spi_bus,
            spi_cs,
            bus,
            address,
            vref,
            divider_ohms,
            resistors,
            tolerance_volts,
            offset_deg,
        } = kind
        else {
            return Err(SourceError::Device("not a wind vane config".into()));
        };
        let ohms = crate::config::vane_ohms(resistors);
        let adc = match adc {
            AdcKind::Mcp3008 => {
                VaneAdc::Mcp3008(Mcp3008::new(hal.spi(*spi_bus, *spi_cs)?), *channel)
            }
            AdcKind::Ads1115 => VaneAdc::Ads1115(
                Ads1115::new(hal.i2c(*bus)?, *address),
                *channel,
                hal.delay(),
            ),
        };
        let mut source = VaneSource {
            id,
            adc,
            table: VaneTable::new(&ohms, *divider_ohms, *vref),
            vref: *vref,
            tolerance: *tolerance_volts,
            offset_deg: *offset_deg,
        };
        // One read now, so an absent ADC is reported at start-up.
        source.volts()?;
        Ok(source)
    }

    fn volts(&mut self) -> Result<f64, SourceError> {
        match &mut self.adc {
            VaneAdc::Mcp3008(dev, ch) => dev
                .read(*ch)
                .map(|c| mcp3008_volts(c, self.vref))
                .map_err(|e| SourceError::Device(format!("MCP3008 read failed: {e:?}"))),
            VaneAdc::Ads1115(dev, ch, delay) => dev
                .read_volts(*ch, Fsr::V4_096, delay)
                .map_err(|e| SourceError::Absent(format!("ADS1115 read failed: {e:?}"))),
        }
    }
}

impl Source for VaneSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        let volts = self.volts()?;
        match self.table.direction(volts, self.tolerance) {
            Ok(deg) => Ok(vec![Reading::new(
                now,
                &self.id,
                Quantity::WindDirection,
                (deg + self.offset_deg).rem_euclid(360.0),
            )]),
            Err(e) => Err(SourceError::Device(format!(
                "wind vane: {e}; check divider_ohms, vref and the wiring"
            ))),
        }
    }
}

/// Tipping-bucket rain gauge: plausible tips per interval → mm.
pub(super) struct RainSource {
    id: SensorId,
    edges: EdgeSource,
    gauge: RainGauge,
    buf: Vec<Edge>,
}

impl RainSource {
    pub(super) fn build(id: SensorId, kind: &SensorKind, hal: &Hal) -> Result<Self, SourceError> {
        let SensorKind::RainGauge {
            chip,
            gpio,
            mm_per_tip,
            debounce,
            min_tip_interval,
        } = kind
        else {
            return Err(SourceError::Device("not a rain gauge config".into()));
        };
        let debounce_us = debounce.0.as_micros() as u64;
        let edges = hal.edges(
            *chip,
            *gpio,
            debounce_us,
            Switch::RainGauge {
                mm_per_tip: *mm_per_tip,
            },
        )?;
        Ok(RainSource {
            id,
            edges,
            gauge: RainGauge::new(
                *mm_per_tip,
                debounce_us.min(u64::from(u32::MAX)) as u32,
                min_tip_interval.0.as_micros() as u64,
            ),
            buf: Vec::new(),
        })
    }
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
