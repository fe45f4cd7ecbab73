//! `anemone probe`: what is wired to this Pi, and a config snippet for it.
//!
//! Scans every I2C bus for the addresses Anemone knows (BME280/BMP280 at 0x76/0x77,
//! EZO-pH at 0x63, ADS1115 at 0x48–0x4B), lists the DS18B20 probes under `w1_root` with
//! their temperature, and checks the GPIO lines the config names for the anemometer and
//! rain gauge.

use std::fmt::Write as _;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use crate::config::{Config, SensorKind};
use crate::hal::{Hal, Switch};

/// A chip found on an I2C bus.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// Bosch BME280 (chip id 0x60).
    Bme280,
    /// Bosch BMP280 (chip id 0x58): no humidity.
    Bmp280,
    /// Something answered at a BME280 address with another chip id.
    OtherChip(u8),
    /// Atlas Scientific EZO-pH (answered `i` with `?I,pH,…`).
    EzoPh(String),
    /// A device answered at an ADS1115 address.
    Ads1115,
}

/// One I2C finding.
#[derive(Debug, Clone)]
pub struct I2cFinding {
    /// Bus number.
    pub bus: u8,
    /// 7-bit address.
    pub address: u8,
    /// What answered.
    pub found: Found,
}

/// DS18B20 probes with their reading (or why it failed), or why there is no bus.
pub type W1Findings = Result<Vec<(String, Result<f64, String>)>, String>;

/// Everything `probe` found.
#[derive(Debug)]
pub struct ProbeReport {
    /// I2C buses scanned.
    pub buses: Vec<u8>,
    /// Chips found.
    pub i2c: Vec<I2cFinding>,
    /// DS18B20 probes and their reading (or why it failed); `Err` for no 1-Wire bus.
    pub w1: W1Findings,
    /// Configured GPIO lines and whether they could be watched.
    pub gpio: Vec<(String, u8, u32, Result<(), String>)>,
}

fn scan_bus(hal: &Hal, bus: u8, out: &mut Vec<I2cFinding>) {
    let Ok(mut i2c) = hal.i2c(bus) else {
        return;
    };
    let mut delay = hal.delay();
    for address in [0x76u8, 0x77] {
        let mut id = [0u8];
        if i2c.write_read(address, &[0xD0], &mut id).is_ok() {
            let found = match id[0] {
                0x60 => Found::Bme280,
                0x58 => Found::Bmp280,
                other => Found::OtherChip(other),
            };
            out.push(I2cFinding {
                bus,
                address,
                found,
            });
        }
    }
    if i2c.write(0x63, b"i").is_ok() {
        delay.delay_ms(300);
        let mut buf = [0u8; 24];
        if i2c.read(0x63, &mut buf).is_ok() && buf[0] == 1 {
            let text: String = buf[1..]
                .iter()
                .take_while(|b| **b != 0)
                .map(|b| *b as char)
                .collect();
            if text.starts_with("?I,pH") {
                out.push(I2cFinding {
                    bus,
                    address: 0x63,
                    found: Found::EzoPh(text),
                });
            }
        }
    }
    for address in 0x48u8..=0x4B {
        let mut cfg = [0u8; 2];
        if i2c.write_read(address, &[0x01], &mut cfg).is_ok() {
            out.push(I2cFinding {
                bus,
                address,
                found: Found::Ads1115,
            });
        }
    }
}

/// Scans what `config`'s HAL can see.
pub fn probe(config: &Config, hal: &Hal) -> ProbeReport {
    let mut report = ProbeReport {
        buses: hal.i2c_buses(),
        i2c: Vec::new(),
        w1: Ok(Vec::new()),
        gpio: Vec::new(),
    };
    for bus in report.buses.clone() {
        scan_bus(hal, bus, &mut report.i2c);
    }
    let w1 = hal.w1();
    report.w1 = match w1.probes() {
        Ok(roms) => Ok(roms
            .into_iter()
            .map(|rom| {
                let t = w1
                    .read_slave(&rom)
                    .map_err(|e| e.to_string())
                    .and_then(|text| {
                        anemone_drivers::ds18b20::parse_w1_slave(&text).map_err(|e| e.to_string())
                    });
                (rom, t)
            })
            .collect()),
        Err(e) => Err(e.to_string()),
    };
    for s in &config.sensors {
        let (chip, line, switch) = match &s.kind {
            SensorKind::Anemometer { chip, gpio, .. } => (
                *chip,
                *gpio,
                Switch::Anemometer(anemone_drivers::anemometer::AnemometerParams {
                    pulses_per_revolution: 1.0,
                    kmh_per_hz: 2.4,
                }),
            ),
            SensorKind::RainGauge { chip, gpio, .. } => {
                (*chip, *gpio, Switch::RainGauge { mm_per_tip: 0.2794 })
            }
            _ => continue,
        };
        let result = hal
            .edges(chip, line, 0, switch)
            .map(|_| ())
            .map_err(|e| e.to_string());
        report.gpio.push((s.id.clone(), chip, line, result));
    }
    report
}

/// The human report with a ready-to-paste config snippet.
pub fn render(report: &ProbeReport) -> String {
    let mut s = String::new();
    let mut snippet = String::new();
    let _ = writeln!(
        s,
        "I2C buses: {}",
        if report.buses.is_empty() {
            "none (enable with dtparam=i2c_arm=on and reboot)".to_string()
        } else {
            report
                .buses
                .iter()
                .map(|b| format!("{b}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if report.i2c.is_empty() && !report.buses.is_empty() {
        let _ = writeln!(
            s,
            "  no known chip answered (BME280 0x76/0x77, EZO-pH 0x63, ADS1115 0x48–0x4B)"
        );
    }
    for f in &report.i2c {
        let what = match &f.found {
            Found::Bme280 => {
                let _ = writeln!(snippet, "[[sensor]]\ntype = \"bme280\"\nid = \"air\"\nbus = {}\naddress = {:#04x}\n", f.bus, f.address);
                "BME280 (temperature, humidity, pressure)".to_string()
            }
            Found::Bmp280 => "BMP280 (chip id 0x58): temperature and pressure only, no humidity — not supported as a BME280".to_string(),
            Found::OtherChip(id) => format!("unknown chip (id {id:#04x}) at a BME280 address"),
            Found::EzoPh(info) => {
                let _ = writeln!(snippet, "[[sensor]]\ntype = \"ph_ezo\"\nid = \"ph\"\nbus = {}\naddress = {:#04x}\n# temperature_sensor = \"water\"\n", f.bus, f.address);
                format!("Atlas Scientific EZO-pH ({info})")
            }
            Found::Ads1115 => {
                let _ = writeln!(snippet, "# An ADS1115 at {:#04x} on bus {}: use it for a wind vane (type = \"wind_vane\", adc = \"ads1115\", address = {:#04x}, channel = N)\n# or an analog pH probe (type = \"ph_analog\", address = {:#04x}, channel = N).\n", f.address, f.bus, f.address, f.address);
                "ADS1115 16-bit ADC (or another chip at this address)".to_string()
            }
        };
        let _ = writeln!(s, "  bus {} address {:#04x}: {what}", f.bus, f.address);
    }
    match &report.w1 {
        Err(e) => {
            let _ = writeln!(s, "1-Wire: {e}");
        }
        Ok(probes) if probes.is_empty() => {
            let _ = writeln!(
                s,
                "1-Wire: bus present, no DS18B20 found (check the 4.7 kΩ pull-up and wiring)"
            );
        }
        Ok(probes) => {
            let _ = writeln!(s, "1-Wire probes:");
            for (i, (rom, t)) in probes.iter().enumerate() {
                match t {
                    Ok(c) => {
                        let _ = writeln!(s, "  {rom}: {c:.2} °C");
                    }
                    Err(e) => {
                        let _ = writeln!(s, "  {rom}: {e}");
                    }
                }
                let _ = writeln!(snippet, "[[sensor]]\ntype = \"ds18b20\"\nid = \"probe{}\"\nrom = \"{rom}\"\nquantity = \"ground_temperature\"   # or water_temperature / air_temperature\n", i + 1);
            }
        }
    }
    if !report.gpio.is_empty() {
        let _ = writeln!(s, "GPIO lines in the config:");
        for (id, chip, line, r) in &report.gpio {
            match r {
                Ok(()) => {
                    let _ = writeln!(
                        s,
                        "  {id}: chip {chip} line {line}: OK (edge events available)"
                    );
                }
                Err(e) => {
                    let _ = writeln!(s, "  {id}: {e}");
                }
            }
        }
    }
    if !snippet.is_empty() {
        let _ = writeln!(
            s,
            "\nConfig snippet (paste into your anemone.toml, then run `anemone validate`):\n"
        );
        s.push_str(&snippet);
    }
    s
}
