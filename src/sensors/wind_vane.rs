//! Resistor-network wind vane: divider voltage through an ADC → one of 16 directions.
//!
//! The vane's reed switches and resistors form a divider with `divider_ohms` from
//! `vref`; an MCP3008 on SPI (default), an ADS1115 or an MCP3427 on I2C reads the voltage.
//! The Raspberry Pi Oracle Weather Station HAT has its vane on the MCP3427 at 0x69,
//! channel 0, with a 75 kΩ divider from 3.3 V, which keeps the highest voltage (120 kΩ,
//! west) under the MCP3427's 2.048 V full scale.

use anemone_drivers::ads1115::{Ads1115, Fsr};
use anemone_drivers::mcp3008::{mcp3008_volts, Mcp3008};
use anemone_drivers::mcp3427::{self, Mcp3427};
use anemone_drivers::wind_vane::VaneTable;
use serde::{Deserialize, Serialize};

use super::i2c_chip::scan_by_read;
use super::{I2cFound, SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::sim::{SimChannel, SimWorldBuilder};
use crate::hal::{Hal, HalDelay, I2cBus, SpiBus};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// Which ADC a wind vane is read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdcKind {
    /// MCP3008, 10-bit, on SPI.
    #[default]
    Mcp3008,
    /// ADS1115, 16-bit, on I2C.
    Ads1115,
    /// MCP3427, 16-bit, on I2C (the Oracle Weather Station HAT's ADC, at 0x69).
    Mcp3427,
}

/// `type = "wind_vane"`: a resistor-network wind vane read through an ADC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindVaneConfig {
    /// `mcp3008` (SPI), `ads1115` or `mcp3427` (I2C).
    #[serde(default)]
    pub adc: AdcKind,
    /// ADC channel (MCP3008: 0–7, ADS1115: 0–3, MCP3427: 0–1).
    #[serde(default)]
    pub channel: u8,
    /// SPI bus (MCP3008).
    #[serde(default)]
    pub spi_bus: u8,
    /// SPI chip select (MCP3008).
    #[serde(default)]
    pub spi_cs: u8,
    /// I2C bus (ADS1115, MCP3427).
    #[serde(default = "default_bus")]
    pub bus: u8,
    /// I2C address (ADS1115: 0x48–0x4B; MCP3427: 0x68–0x6F, 0x69 on the HAT).
    #[serde(default = "default_address")]
    pub address: u8,
    /// Reference / supply voltage of the divider.
    #[serde(default = "default_vref")]
    pub vref: f64,
    /// The fixed resistor of the divider, in ohms.
    #[serde(default = "default_divider_ohms")]
    pub divider_ohms: f64,
    /// Vane resistance per direction, from N clockwise (16 values).
    #[serde(default = "default_resistors")]
    pub resistors: Vec<f64>,
    /// Largest distance in volts from a table entry still accepted.
    #[serde(default = "default_tolerance_volts")]
    pub tolerance_volts: f64,
    /// Degrees to add when the vane's N mark does not point north.
    #[serde(default)]
    pub offset_deg: f64,
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
fn default_divider_ohms() -> f64 {
    4_700.0
}
fn default_resistors() -> Vec<f64> {
    DEFAULT_VANE_OHMS.to_vec()
}
fn default_tolerance_volts() -> f64 {
    0.1
}

/// Address of the Oracle Weather Station HAT's MCP3427, whose channel 0 is the vane.
pub const HAT_VANE_ADDRESS: u8 = 0x69;

/// The standard 16-position reed-switch vane (SparkFun/Argent 80422), ohms per direction
/// from N (0°) clockwise in 22.5° steps.
pub const DEFAULT_VANE_OHMS: [f64; 16] = [
    33_000.0, 6_570.0, 8_200.0, 891.0, 1_000.0, 688.0, 2_200.0, 1_410.0, 3_900.0, 3_140.0,
    16_000.0, 14_120.0, 120_000.0, 42_120.0, 64_900.0, 21_880.0,
];

impl WindVaneConfig {
    /// The configured resistances as the 16 the drivers take (missing ones are 0;
    /// `validate` insists on exactly 16).
    pub fn ohms(&self) -> [f64; 16] {
        let mut ohms = [0.0; 16];
        for (o, r) in ohms.iter_mut().zip(&self.resistors) {
            *o = *r;
        }
        ohms
    }

    fn table(&self) -> VaneTable {
        VaneTable::new(&self.ohms(), self.divider_ohms, self.vref)
    }
}

impl SensorKindSpec for WindVaneConfig {
    const TYPE: &'static str = "wind_vane";

    fn default_interval(&self) -> Span {
        Span::secs(1)
    }

    fn quantities(&self) -> Vec<Quantity> {
        vec![Quantity::WindDirection]
    }

    fn resources(&self) -> Vec<String> {
        let (bus, address, channel) = (self.bus, self.address, self.channel);
        match self.adc {
            AdcKind::Mcp3008 => vec![format!(
                "MCP3008 on SPI {}.{} channel {channel}",
                self.spi_bus, self.spi_cs
            )],
            AdcKind::Ads1115 => vec![format!(
                "ADS1115 on I2C bus {bus} address {address:#04x} channel {channel}"
            )],
            AdcKind::Mcp3427 => vec![format!(
                "MCP3427 on I2C bus {bus} address {address:#04x} channel {channel}"
            )],
        }
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        let max_ch = match self.adc {
            AdcKind::Mcp3008 => 7,
            AdcKind::Ads1115 => 3,
            AdcKind::Mcp3427 => 1,
        };
        if self.channel > max_ch {
            p.push(("channel", format!("this ADC has channels 0–{max_ch}")));
        }
        if self.adc == AdcKind::Mcp3427 {
            if !(0x68..=0x6F).contains(&self.address) {
                p.push((
                    "address",
                    format!(
                        "{:#04x} is not an MCP3427 address: 0x68–0x6F (0x69 on the Oracle Weather Station HAT)",
                        self.address
                    ),
                ));
            }
            let highest = (0..16).map(|i| self.table().voltage(i)).fold(0.0, f64::max);
            if highest >= mcp3427::VREF {
                p.push((
                    "divider_ohms",
                    format!(
                        "the vane's highest voltage, {highest:.3} V, is beyond the MCP3427's 2.048 V range: use a larger divider (the HAT has 75000)"
                    ),
                ));
            }
        }
        if !(self.vref > 0.0 && self.vref <= 5.5) {
            p.push((
                "vref",
                "must be the divider's supply voltage, e.g. 3.3".into(),
            ));
        }
        if !super::positive(self.divider_ohms) {
            p.push((
                "divider_ohms",
                "must be the fixed resistor in ohms, e.g. 4700".into(),
            ));
        }
        if self.resistors.len() != 16 || self.resistors.iter().any(|r| !super::positive(*r)) {
            p.push((
                "resistors",
                "must list 16 positive resistances in ohms, from N clockwise".into(),
            ));
        }
        if !super::positive(self.tolerance_volts) {
            p.push(("tolerance_volts", "must be more than 0, e.g. 0.1".into()));
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let adc = match self.adc {
            AdcKind::Mcp3008 => VaneAdc::Mcp3008(
                Mcp3008::new(hal.spi(self.spi_bus, self.spi_cs)?),
                self.channel,
            ),
            AdcKind::Ads1115 => VaneAdc::Ads1115(
                Ads1115::new(hal.i2c(self.bus)?, self.address),
                self.channel,
                hal.delay(),
            ),
            AdcKind::Mcp3427 => VaneAdc::Mcp3427(
                Mcp3427::new(hal.i2c(self.bus)?, self.address),
                self.channel,
                hal.delay(),
            ),
        };
        let mut source = VaneSource {
            id,
            adc,
            table: self.table(),
            vref: self.vref,
            tolerance: self.tolerance_volts,
            offset_deg: self.offset_deg,
        };
        // One read now, so an absent ADC is reported at start-up.
        source.volts()?;
        Ok(Box::new(source))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let vane = SimChannel::Vane {
            table: self.table(),
            offset_deg: self.offset_deg,
        };
        match self.adc {
            AdcKind::Mcp3008 => {
                world.mcp3008_channel(self.spi_bus, self.spi_cs, self.vref, self.channel, vane)
            }
            AdcKind::Ads1115 => world.ads1115_channel(self.bus, self.address, self.channel, vane),
            AdcKind::Mcp3427 => world.mcp3427_channel(self.bus, self.address, self.channel, vane),
        }
    }

    /// The Oracle Weather Station HAT's MCP3427 at 0x69 answers a read with its two result
    /// bytes and its configuration byte (it has no id register).
    fn scan_i2c(i2c: &mut I2cBus, _delay: &mut HalDelay, bus: u8) -> Vec<I2cFound> {
        scan_by_read(
            i2c,
            HAT_VANE_ADDRESS,
            |config| format!("MCP3427 ADC, the Oracle Weather Station HAT's wind vane ADC (or another chip at this address; configuration {config:#04x})"),
            format!("[[sensor]]\ntype = \"wind_vane\"\nid = \"vane\"\nadc = \"mcp3427\"\nbus = {bus}\naddress = 0x69\nchannel = 0\ndivider_ohms = 75000.0\n"),
        )
    }
}

enum VaneAdc {
    Mcp3008(Mcp3008<SpiBus>, u8),
    Ads1115(Ads1115<I2cBus>, u8, HalDelay),
    Mcp3427(Mcp3427<I2cBus>, u8, HalDelay),
}

/// Wind vane: divider voltage → one of 16 directions.
struct VaneSource {
    id: SensorId,
    adc: VaneAdc,
    table: VaneTable,
    vref: f64,
    tolerance: f64,
    offset_deg: f64,
}

impl VaneSource {
    fn volts(&mut self) -> Result<f64, SourceError> {
        match &mut self.adc {
            VaneAdc::Mcp3008(dev, ch) => dev
                .read(*ch)
                .map(|c| mcp3008_volts(c, self.vref))
                .map_err(|e| SourceError::Device(format!("MCP3008 read failed: {e:?}"))),
            VaneAdc::Ads1115(dev, ch, delay) => dev
                .read_volts(*ch, Fsr::V4_096, delay)
                .map_err(|e| SourceError::Absent(format!("ADS1115 read failed: {e:?}"))),
            VaneAdc::Mcp3427(dev, ch, delay) => dev
                .read_volts(*ch, mcp3427::Resolution::Bits16, mcp3427::Gain::X1, delay)
                .map_err(|e| {
                    let text = format!("MCP3427 channel {ch}: {e}");
                    if e.is_no_device() {
                        SourceError::Absent(text)
                    } else {
                        SourceError::Device(text)
                    }
                }),
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
                crate::reading::compass(deg + self.offset_deg),
            )]),
            Err(e) => Err(SourceError::Device(format!(
                "wind vane: {e}; check divider_ohms, vref and the wiring"
            ))),
        }
    }
}
