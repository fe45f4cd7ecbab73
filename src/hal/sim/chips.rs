//! Simulated chips: register maps and command protocols as their datasheets describe.

use anemone_drivers::analog_ph::{volts_for_ph, PhCalibration};
use anemone_drivers::bme280::{compensate, Calibration, Raw};
use anemone_drivers::mcp3008::mcp3008_counts;
use anemone_drivers::mcp3427::{self, Config as Mcp3427Config};
use anemone_drivers::tgs2600::{volts_for_resistance, Circuit};
use anemone_drivers::wind_vane::VaneTable;

use super::{SimI2cChip, Weather};
use crate::clock::Clock;
use crate::hal::error::BusError;

/// Finds the raw ADC value in `lo..=hi` whose compensated output is closest to `target`,
/// by bisection on a function that is monotonic (either direction).
pub(crate) fn invert(lo: i32, hi: i32, target: f64, f: impl Fn(i32) -> f64) -> i32 {
    let increasing = f(hi) > f(lo);
    let (mut a, mut b) = (lo, hi);
    while b - a > 1 {
        let mid = a + (b - a) / 2;
        let v = f(mid);
        if (v < target) == increasing {
            a = mid;
        } else {
            b = mid;
        }
    }
    if (f(a) - target).abs() <= (f(b) - target).abs() {
        a
    } else {
        b
    }
}

/// BME280 register map (Bosch datasheet §5): id 0x60, calibration at 0x88/0xE1, data at
/// 0xF7..0xFE computed from the weather when the data block is addressed.
pub(super) struct SimBme280 {
    weather: Weather,
    clock: Clock,
    regs: [u8; 256],
    pointer: u8,
    calibration: Calibration,
}

impl SimBme280 {
    pub(super) fn new(weather: Weather, clock: Clock) -> SimBme280 {
        let calibration = Calibration::datasheet_example();
        let (block1, block2) = calibration.to_registers();
        let mut regs = [0u8; 256];
        regs[0x88..0x88 + 26].copy_from_slice(&block1);
        regs[0xE1..0xE1 + 7].copy_from_slice(&block2);
        regs[0xD0] = 0x60;
        SimBme280 {
            weather,
            clock,
            regs,
            pointer: 0,
            calibration,
        }
    }

    /// Fills 0xF7..0xFE with the raw values that compensate to the current weather.
    fn sample(&mut self) {
        let t = self.clock.now();
        let cal = self.calibration;
        let temp = self.weather.air_temperature(t);
        let pressure_hpa = self.weather.station_pressure(t);
        let humidity = self.weather.relative_humidity(t);
        let raw = |adc_t, adc_p, adc_h| Raw {
            adc_t,
            adc_p,
            adc_h,
        };
        let adc_t = invert(0, (1 << 20) - 1, temp, |v| {
            compensate(raw(v, 0x50000, 0x6000), &cal).temperature_c
        });
        let adc_p = invert(0, (1 << 20) - 1, pressure_hpa, |v| {
            compensate(raw(adc_t, v, 0x6000), &cal).pressure_hpa
        });
        let adc_h = invert(0, 0xFFFF, humidity, |v| {
            compensate(raw(adc_t, adc_p, v), &cal).humidity_pct
        });
        // 0x80000 / 0x8000 are what the chip reports for a skipped measurement, and the
        // driver rejects them; a real conversion landing exactly there is one in 65 536,
        // so the simulator steps one count away rather than feign a fault.
        let away = |v: i32, skipped: i32| if v == skipped { v + 1 } else { v };
        let p = away(adc_p, 0x80000) as u32;
        let tt = away(adc_t, 0x80000) as u32;
        let h = away(adc_h, 0x8000) as u32;
        self.regs[0xF7] = (p >> 12) as u8;
        self.regs[0xF8] = (p >> 4) as u8;
        self.regs[0xF9] = ((p & 0xF) << 4) as u8;
        self.regs[0xFA] = (tt >> 12) as u8;
        self.regs[0xFB] = (tt >> 4) as u8;
        self.regs[0xFC] = ((tt & 0xF) << 4) as u8;
        self.regs[0xFD] = (h >> 8) as u8;
        self.regs[0xFE] = h as u8;
    }
}

impl SimI2cChip for SimBme280 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let Some((&reg, values)) = bytes.split_first() else {
            return Ok(());
        };
        self.pointer = reg;
        for (i, v) in values.iter().enumerate() {
            let r = reg.wrapping_add(i as u8);
            match r {
                // Soft reset: registers back to their reset values, calibration stays.
                0xE0 if *v == 0xB6 => {
                    self.regs[0xF2] = 0;
                    self.regs[0xF4] = 0;
                    self.regs[0xF5] = 0;
                }
                0xF2 | 0xF4 | 0xF5 => {
                    self.regs[r as usize] = *v;
                    // A forced-mode trigger measures at once; the mode bits return to sleep.
                    if r == 0xF4 && v & 0b11 != 0 {
                        self.sample();
                        if v & 0b11 != 0b11 {
                            self.regs[0xF4] = v & !0b11;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        if self.pointer == 0xF7 && self.regs[0xF4] & 0b11 == 0b11 {
            // Normal mode: always a fresh sample.
            self.sample();
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.regs[self.pointer.wrapping_add(i as u8) as usize];
        }
        // Status (0xF3): never measuring, never copying NVM.
        Ok(())
    }
}

/// What an ADC channel is wired to.
pub enum SimChannel {
    /// The wind vane's divider.
    Vane {
        /// Voltage per direction.
        table: VaneTable,
        /// Degrees between the vane's N mark and true north.
        offset_deg: f64,
    },
    /// An analog pH probe board.
    Ph(PhCalibration),
    /// A TGS2600 gas sensor's load-resistor voltage, with its clean-air resistance.
    AirQuality {
        /// The measuring circuit.
        circuit: Circuit,
        /// Rs in clean air, ohms.
        clean_air_ohms: f64,
    },
    /// A generic analog sensor (the `analog` kind): the voltage at the ADC pin, from the
    /// simulated water and the sensor's curve, which the kind supplies.
    Analog(AnalogVolts),
}

/// The voltage an analog sensor puts on its ADC pin at a time, in the simulated world.
pub type AnalogVolts = Box<dyn Fn(&Weather, crate::reading::Timestamp) -> f64 + Send + Sync>;

impl SimChannel {
    fn volts(&self, weather: &Weather, t: crate::reading::Timestamp) -> f64 {
        match self {
            SimChannel::Vane { table, offset_deg } => table
                .voltage_for_direction((weather.wind_direction(t) - offset_deg).rem_euclid(360.0)),
            SimChannel::Ph(cal) => volts_for_ph(weather.ph(t), weather.water_temperature(t), cal),
            SimChannel::AirQuality {
                circuit,
                clean_air_ohms,
            } => volts_for_resistance(weather.air_quality_ratio(t) * clean_air_ohms, *circuit),
            SimChannel::Analog(volts) => volts(weather, t),
        }
    }
}

/// MCP3008: 10-bit SPI ADC; each channel returns the voltage of what is wired to it.
pub(super) struct SimMcp3008 {
    weather: Weather,
    clock: Clock,
    vref: f64,
    channels: [Option<SimChannel>; 8],
}

impl SimMcp3008 {
    pub(super) fn new(weather: Weather, clock: Clock, vref: f64) -> SimMcp3008 {
        SimMcp3008 {
            weather,
            clock,
            vref,
            channels: Default::default(),
        }
    }

    pub(super) fn attach(&mut self, channel: u8, source: SimChannel) {
        if let Some(slot) = self.channels.get_mut(channel as usize) {
            *slot = Some(source);
        }
    }

    /// One full-duplex transfer: start bit, single-ended + channel, then 10 bits back.
    pub(super) fn transfer(&mut self, read: &mut [u8], write: &[u8]) {
        read.fill(0);
        if write.len() < 3 || read.len() < 3 || write[0] & 0x01 == 0 {
            return;
        }
        let channel = ((write[1] >> 4) & 0x07) as usize;
        let volts = match &self.channels[channel] {
            Some(src) => src.volts(&self.weather, self.clock.now()),
            None => 0.0,
        };
        let counts = mcp3008_counts(volts, self.vref);
        read[1] = ((counts >> 8) & 0x03) as u8;
        read[2] = counts as u8;
    }
}

/// ADS1115: 16-bit I2C ADC in single-shot mode (pointer register, config, conversion).
pub(super) struct SimAds1115 {
    weather: Weather,
    clock: Clock,
    channels: [Option<SimChannel>; 4],
    pointer: u8,
    config: u16,
    conversion: i16,
}

impl SimAds1115 {
    pub(super) fn new(weather: Weather, clock: Clock) -> SimAds1115 {
        SimAds1115 {
            weather,
            clock,
            channels: Default::default(),
            pointer: 0,
            config: 0x8583,
            conversion: 0,
        }
    }

    pub(super) fn attach(&mut self, channel: u8, source: SimChannel) {
        if let Some(slot) = self.channels.get_mut(channel as usize) {
            *slot = Some(source);
        }
    }

    fn full_scale(config: u16) -> f64 {
        match (config >> 9) & 0b111 {
            0 => 6.144,
            1 => 4.096,
            2 => 2.048,
            3 => 1.024,
            4 => 0.512,
            _ => 0.256,
        }
    }

    fn convert(&mut self) {
        let mux = (self.config >> 12) & 0b111;
        let volts = if mux >= 0b100 {
            match &self.channels[(mux - 0b100) as usize] {
                Some(src) => src.volts(&self.weather, self.clock.now()),
                None => 0.0,
            }
        } else {
            0.0
        };
        let fs = Self::full_scale(self.config);
        let counts = (volts / fs * 32768.0).round().clamp(-32768.0, 32767.0);
        self.conversion = counts as i16;
    }
}

impl SimI2cChip for SimAds1115 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let Some((&reg, values)) = bytes.split_first() else {
            return Ok(());
        };
        self.pointer = reg & 0b11;
        if self.pointer == 1 && values.len() >= 2 {
            self.config = u16::from_be_bytes([values[0], values[1]]);
            if self.config & 0x8000 != 0 {
                self.convert();
            }
            // Conversion done at once: OS reads back as 1 (not busy).
            self.config |= 0x8000;
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        let value = match self.pointer {
            0 => self.conversion as u16,
            1 => self.config,
            _ => 0,
        };
        let bytes = value.to_be_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0);
        }
        Ok(())
    }
}

/// MCP3427: 16-bit I2C delta-sigma ADC, one-shot conversions finished at once (datasheet
/// DS22226A: the configuration byte starts them; a read gives two result bytes and the
/// configuration with RDY 0).
pub(super) struct SimMcp3427 {
    weather: Weather,
    clock: Clock,
    channels: [Option<SimChannel>; 2],
    config: u8,
    code: i32,
}

impl SimMcp3427 {
    pub(super) fn new(weather: Weather, clock: Clock) -> SimMcp3427 {
        SimMcp3427 {
            weather,
            clock,
            channels: Default::default(),
            // Power-on default: continuous, 12 bits, gain 1, RDY 1 (no result yet).
            config: 0x90,
            code: 0,
        }
    }

    pub(super) fn attach(&mut self, channel: u8, source: SimChannel) {
        if let Some(slot) = self.channels.get_mut(channel as usize) {
            *slot = Some(source);
        }
    }
}

impl SimI2cChip for SimMcp3427 {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let Some(&byte) = bytes.first() else {
            return Ok(());
        };
        let config = Mcp3427Config(byte);
        let volts = match self.channels.get(config.channel() as usize) {
            Some(Some(src)) => src.volts(&self.weather, self.clock.now()),
            _ => 0.0,
        };
        self.code = mcp3427::code_for(volts, config.resolution(), config.gain());
        // The conversion is done at once: RDY reads 0.
        self.config = byte & !mcp3427::Register::READY;
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        let [msb, lsb] = (self.code as i16).to_be_bytes();
        let answer = [msb, lsb, self.config];
        for (i, b) in buf.iter_mut().enumerate() {
            // After the configuration byte the chip repeats it.
            *b = *answer.get(i).unwrap_or(&self.config);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invert_finds_the_input() {
        let x = invert(0, 1000, 250.0, |v| v as f64 * 0.5);
        assert_eq!(x, 500);
        let y = invert(0, 1000, 250.0, |v| 1000.0 - v as f64);
        assert_eq!(y, 750);
    }
}
