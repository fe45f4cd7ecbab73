//! 1-Wire temperature probes through the kernel's `w1_therm` driver.
//!
//! Enable with `dtoverlay=w1-gpio,gpiopin=4` in `/boot/firmware/config.txt` and wire the
//! probe's data line to GPIO 4 (pin 7) with a 4.7 kΩ pull-up to 3V3. Each probe appears as
//! a directory named by its ROM id (`28-…`) under `w1_root` (default
//! `/sys/bus/w1/devices`), with a `w1_slave` file holding the last conversion. Tests point
//! `w1_root` at fixture trees.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::sim::SimWorld;

/// Why a probe could not be read.
#[derive(Debug, thiserror::Error)]
pub enum W1Error {
    /// No 1-Wire bus at all.
    #[error("{root} does not exist: enable 1-Wire with `dtoverlay=w1-gpio,gpiopin=4` in config.txt and reboot")]
    NoBus {
        /// The w1 root.
        root: PathBuf,
    },
    /// The probe is not on the bus.
    #[error("no 1-Wire probe {rom} under {root}: check its wiring and the 4.7 kΩ pull-up, or run `anemone probe` to list the probes found")]
    NoProbe {
        /// ROM id.
        rom: String,
        /// The w1 root.
        root: PathBuf,
    },
    /// `rom = "auto"` but not exactly one probe.
    #[error("rom = \"auto\" needs exactly one DS18B20 under {root}, found {found}: set rom to one of the ids `anemone probe` lists")]
    Ambiguous {
        /// The w1 root.
        root: PathBuf,
        /// How many were found.
        found: usize,
    },
    /// Reading the file failed.
    #[error("cannot read {path}: {detail}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's words.
        detail: String,
    },
}

/// The 1-Wire bus: the kernel's sysfs tree or the simulator.
#[derive(Clone)]
pub enum W1Bus {
    /// Files under a root directory.
    Files(PathBuf),
    /// Simulated probes.
    Sim(Arc<SimWorld>),
}

impl W1Bus {
    /// The ROM ids of the DS18B20 probes (family 28) present, sorted.
    pub fn probes(&self) -> Result<Vec<String>, W1Error> {
        match self {
            W1Bus::Sim(w) => Ok(w.w1_roms()),
            W1Bus::Files(root) => {
                let entries =
                    std::fs::read_dir(root).map_err(|_| W1Error::NoBus { root: root.clone() })?;
                let mut roms: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| anemone_drivers::ds18b20::is_rom_id(n))
                    .collect();
                roms.sort();
                Ok(roms)
            }
        }
    }

    /// Resolves `auto` to the single probe present.
    pub fn resolve(&self, rom: &str) -> Result<String, W1Error> {
        if rom != "auto" {
            return Ok(rom.to_string());
        }
        let probes = self.probes()?;
        match probes.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(W1Error::Ambiguous {
                root: self.root(),
                found: probes.len(),
            }),
        }
    }

    fn root(&self) -> PathBuf {
        match self {
            W1Bus::Files(r) => r.clone(),
            W1Bus::Sim(_) => PathBuf::from("(simulated 1-Wire bus)"),
        }
    }

    /// The probe's `w1_slave` text.
    pub fn read_slave(&self, rom: &str) -> Result<String, W1Error> {
        match self {
            W1Bus::Sim(w) => w.w1_slave(rom).ok_or_else(|| W1Error::NoProbe {
                rom: rom.to_string(),
                root: self.root(),
            }),
            W1Bus::Files(root) => read_file(root, rom),
        }
    }
}

fn read_file(root: &Path, rom: &str) -> Result<String, W1Error> {
    if !root.exists() {
        return Err(W1Error::NoBus {
            root: root.to_path_buf(),
        });
    }
    let path = root.join(rom).join("w1_slave");
    std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            W1Error::NoProbe {
                rom: rom.to_string(),
                root: root.to_path_buf(),
            }
        } else {
            W1Error::Read {
                path: path.clone(),
                detail: e.to_string(),
            }
        }
    })
}
