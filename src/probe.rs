//! `anemone probe`: what is wired to this Pi, and a config snippet for it.
//!
//! Asks every sensor kind to scan the I2C buses for its chips (BME280/BMP280 at
//! 0x76/0x77, EZO-pH at 0x63, ADS1115 at 0x48–0x4B today), lists the DS18B20 probes under
//! `w1_root` with their temperature, and checks the GPIO lines the configured sensors
//! watch (anemometer, rain gauge).

use std::fmt::Write as _;

use crate::config::Config;
use crate::hal::Hal;
use crate::sensors::{I2cFound, SensorKind};

/// One I2C finding.
#[derive(Debug, Clone)]
pub struct I2cFinding {
    /// Bus number.
    pub bus: u8,
    /// What answered, as the sensor kind that looks for it describes it.
    pub found: I2cFound,
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

/// Where the packages install the example configurations.
pub const EXAMPLES_DIR: &str = "/usr/share/doc/anemone/examples";

/// The chips by which the Raspberry Pi Oracle Weather Station HAT is recognised, all on
/// one bus: HTU21D 0x40, MCP3427 0x69 (wind vane) and BMP180 0x77. (Its PCF8523 clock at
/// 0x68 belongs to the kernel's rtc driver and does not answer us.)
pub const ORACLE_HAT_CHIPS: [u8; 3] = [0x40, 0x69, 0x77];

/// The bus on which every chip of the Oracle Weather Station HAT answered, if any.
pub fn oracle_hat_bus(report: &ProbeReport) -> Option<u8> {
    report.buses.iter().copied().find(|bus| {
        ORACLE_HAT_CHIPS.iter().all(|a| {
            report
                .i2c
                .iter()
                .any(|f| f.bus == *bus && f.found.address == *a)
        })
    })
}

/// Asks every sensor kind to look for its chips on `bus`.
fn scan_bus(hal: &Hal, bus: u8, out: &mut Vec<I2cFinding>) {
    let Ok(mut i2c) = hal.i2c(bus) else {
        return;
    };
    let mut delay = hal.delay();
    for found in SensorKind::scan_i2c(&mut i2c, &mut delay, bus) {
        out.push(I2cFinding { bus, found });
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
        let Some((chip, line)) = s.kind.gpio_line() else {
            continue;
        };
        let result = hal
            .edges(chip, line, 0)
            .map(|_| ())
            .map_err(|e| e.to_string());
        report.gpio.push((s.id.clone(), chip, line, result));
    }
    report
}

/// The config snippet for what was found: one `[[sensor]]` entry (or a comment) per chip
/// and per DS18B20 probe, ready to paste.
pub fn snippet(report: &ProbeReport) -> String {
    let mut snippet = String::new();
    for f in &report.i2c {
        if let Some(text) = &f.found.snippet {
            let _ = writeln!(snippet, "{text}");
        }
    }
    if let Ok(probes) = &report.w1 {
        for (i, (rom, _)) in probes.iter().enumerate() {
            let _ = writeln!(snippet, "[[sensor]]\ntype = \"ds18b20\"\nid = \"probe{}\"\nrom = \"{rom}\"\nquantity = \"ground_temperature\"   # or water_temperature / air_temperature\n", i + 1);
        }
    }
    snippet
}

impl ProbeReport {
    /// `probe --json`: `{"i2c_buses": [1], "i2c": [{"bus", "address", "what"}],
    /// "w1": {"probes": [{"rom", "celsius" | "error"}]} or {"error"}, "gpio": [{"sensor",
    /// "chip", "line", "ok", "error"?}], "snippet": "…"}`.
    pub fn json(&self) -> serde_json::Value {
        use serde_json::json;
        let i2c: Vec<_> = self
            .i2c
            .iter()
            .map(|f| json!({ "bus": f.bus, "address": f.found.address, "what": f.found.what }))
            .collect();
        let w1 = match &self.w1 {
            Ok(probes) => json!({ "probes": probes.iter().map(|(rom, t)| match t {
                Ok(c) => json!({ "rom": rom, "celsius": c }),
                Err(e) => json!({ "rom": rom, "error": e }),
            }).collect::<Vec<_>>() }),
            Err(e) => json!({ "error": e }),
        };
        let gpio: Vec<_> = self
            .gpio
            .iter()
            .map(|(sensor, chip, line, r)| match r {
                Ok(()) => json!({ "sensor": sensor, "chip": chip, "line": line, "ok": true }),
                Err(e) => {
                    json!({ "sensor": sensor, "chip": chip, "line": line, "ok": false, "error": e })
                }
            })
            .collect();
        json!({
            "i2c_buses": self.buses,
            "i2c": i2c,
            "w1": w1,
            "gpio": gpio,
            "snippet": snippet(self),
        })
    }
}

/// The human report with a ready-to-paste config snippet.
pub fn render(report: &ProbeReport) -> String {
    let mut s = String::new();
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
            "  no known chip answered ({})",
            SensorKind::probe_hints().join(", ")
        );
    }
    for f in &report.i2c {
        let _ = writeln!(
            s,
            "  bus {} address {:#04x}: {}",
            f.bus, f.found.address, f.found.what
        );
    }
    if let Some(bus) = oracle_hat_bus(report) {
        let _ = writeln!(
            s,
            "  These are the chips of the Raspberry Pi Oracle Weather Station HAT (HTU21D 0x40, \
             MCP3427 0x69, BMP180 0x77 on bus {bus}). Start from its preset:\n    \
             sudo cp {EXAMPLES_DIR}/oracle-weather-station.toml /etc/anemone/anemone.toml\n  \
             (hardware/oracle-weather-station.toml in the source), put your DS18B20's ROM id \
             in it, and remove the extras you have not fitted."
        );
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
            for (rom, t) in probes {
                match t {
                    Ok(c) => {
                        let _ = writeln!(s, "  {rom}: {c:.2} °C");
                    }
                    Err(e) => {
                        let _ = writeln!(s, "  {rom}: {e}");
                    }
                }
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
    let snippet = snippet(report);
    if !snippet.is_empty() {
        let _ = writeln!(
            s,
            "\nConfig snippet (paste into your anemone.toml, then run `anemone validate`):\n"
        );
        s.push_str(&snippet);
    }
    s
}
