//! The Linux side: I2C and SPI through linux-embedded-hal, GPIO edge events through the
//! kernel GPIO character device, 1-Wire through `w1_root`, and the simulated buses.
//! Nothing else in `src/` touches `/dev` or `/sys`.

pub mod bus;
pub mod disk;
pub mod error;
pub mod gpio;
pub mod gpsd;
pub mod identity;
pub mod paths;
pub mod sim;
pub mod timesync;
pub mod w1;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::reading::Timestamp;
pub use bus::{HalDelay, I2cBus, OpenError, SpiBus};
pub use error::{BusError, SpiBusError};
pub use gpio::{EdgeSource, GpioError};
pub use identity::BoardIds;
pub use sim::SimWorld;
pub use w1::{W1Bus, W1Error};

/// `[hal]`: where the buses are, and whether they are simulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HalConfig {
    /// Run every sensor on simulated buses (same drivers, simulated weather).
    pub simulate: bool,
    /// Seed of the simulated weather.
    pub seed: u64,
    /// Root of the kernel's 1-Wire device tree.
    pub w1_root: PathBuf,
    /// Root of sysfs, where the board's serial number and network addresses are read for
    /// the default station id (tests point it at a fake tree).
    pub sys_root: PathBuf,
    /// The machine-id file, the default station id's fallback.
    pub machine_id_file: PathBuf,
}

impl Default for HalConfig {
    fn default() -> Self {
        HalConfig {
            simulate: false,
            seed: 1,
            w1_root: PathBuf::from(paths::DEFAULT_W1_ROOT),
            sys_root: PathBuf::from(identity::DEFAULT_SYS_ROOT),
            machine_id_file: PathBuf::from(identity::DEFAULT_MACHINE_ID_FILE),
        }
    }
}

/// Access to the station's buses: real ones on a Pi, simulated ones with `--simulate`.
#[derive(Clone)]
pub struct Hal {
    sim: Option<Arc<SimWorld>>,
    w1_root: PathBuf,
    start: Timestamp,
    gps_clock: timesync::GpsClock,
}

impl Hal {
    /// The real buses (`crate::sensors::open_hal` chooses between real and simulated).
    pub fn real(config: &HalConfig) -> Hal {
        Hal {
            sim: None,
            w1_root: config.w1_root.clone(),
            start: 0,
            gps_clock: timesync::GpsClock::default(),
        }
    }

    /// The simulated buses of `world`; its switches start at station time `start`.
    pub fn simulated(config: &HalConfig, world: Arc<SimWorld>, start: Timestamp) -> Hal {
        Hal {
            sim: Some(world),
            w1_root: config.w1_root.clone(),
            start,
            gps_clock: timesync::GpsClock::default(),
        }
    }

    /// True when the buses are simulated.
    pub fn is_simulated(&self) -> bool {
        self.sim.is_some()
    }

    /// The simulated world, when simulating.
    pub fn sim(&self) -> Option<&Arc<SimWorld>> {
        self.sim.as_ref()
    }

    /// I2C bus `bus`.
    pub fn i2c(&self, bus: u8) -> Result<I2cBus, OpenError> {
        match &self.sim {
            Some(w) => Ok(I2cBus::Sim(w.i2c(bus))),
            None => open_i2c(bus),
        }
    }

    /// SPI device `bus`.`cs`.
    pub fn spi(&self, bus: u8, cs: u8) -> Result<SpiBus, OpenError> {
        match &self.sim {
            Some(w) => Ok(SpiBus::Sim(w.spi(bus, cs))),
            None => open_spi(bus, cs),
        }
    }

    /// The 1-Wire bus.
    pub fn w1(&self) -> W1Bus {
        match &self.sim {
            Some(w) => W1Bus::Sim(w.clone()),
            None => W1Bus::Files(self.w1_root.clone()),
        }
    }

    /// Edges of the reed switch on `line` of GPIO chip `chip`.
    pub fn edges(&self, chip: u8, line: u32, debounce_us: u64) -> Result<EdgeSource, GpioError> {
        match &self.sim {
            Some(w) => match w.edges(chip, line, self.start) {
                Some(e) => Ok(EdgeSource::Sim(Box::new(e))),
                None => Err(GpioError::Request {
                    chip: format!("simulated GPIO chip {chip}"),
                    line,
                    detail: "no simulated switch is wired to this line".into(),
                }),
            },
            None => open_edges(chip, line, debounce_us),
        }
    }

    /// Where GPS sources record their fixes' times for clock safety.
    pub fn gps_clock(&self) -> &timesync::GpsClock {
        &self.gps_clock
    }

    /// The gpsd at `addr` (`host:port`): a TCP connection, or the simulated gpsd.
    pub fn gpsd(&self, addr: &str) -> Result<gpsd::GpsdFeed, gpsd::GpsdError> {
        match &self.sim {
            Some(w) => match w.gpsd(addr, self.start) {
                Some(g) => Ok(gpsd::GpsdFeed::Sim(Box::new(g))),
                None => Err(gpsd::GpsdError::Connect {
                    addr: addr.to_string(),
                    detail: "no simulated gpsd serves this address".into(),
                }),
            },
            None => gpsd::GpsdClient::connect(addr).map(gpsd::GpsdFeed::Tcp),
        }
    }

    /// The I2C bus numbers present (`/dev/i2c-N`; the configured ones when simulating).
    pub fn i2c_buses(&self) -> Vec<u8> {
        match &self.sim {
            Some(w) => w.i2c_buses(),
            None => paths::list_i2c_buses(),
        }
    }

    /// A delay for drivers: real on hardware, none in simulation.
    pub fn delay(&self) -> HalDelay {
        HalDelay {
            real: self.sim.is_none(),
        }
    }
}

#[cfg(target_os = "linux")]
fn open_i2c(bus: u8) -> Result<I2cBus, OpenError> {
    I2cBus::open_linux(bus)
}

#[cfg(target_os = "linux")]
fn open_spi(bus: u8, cs: u8) -> Result<SpiBus, OpenError> {
    SpiBus::open_linux(bus, cs)
}

#[cfg(target_os = "linux")]
fn open_edges(chip: u8, line: u32, debounce_us: u64) -> Result<EdgeSource, GpioError> {
    gpio::LinuxEdges::open(chip, line, debounce_us).map(EdgeSource::Linux)
}

#[cfg(not(target_os = "linux"))]
fn open_i2c(bus: u8) -> Result<I2cBus, OpenError> {
    Err(OpenError::Other {
        path: paths::i2c_device(bus),
        detail: "real buses need Linux; use --simulate".into(),
    })
}

#[cfg(not(target_os = "linux"))]
fn open_spi(bus: u8, cs: u8) -> Result<SpiBus, OpenError> {
    Err(OpenError::Other {
        path: paths::spi_device(bus, cs),
        detail: "real buses need Linux; use --simulate".into(),
    })
}

#[cfg(not(target_os = "linux"))]
fn open_edges(chip: u8, line: u32, _debounce_us: u64) -> Result<EdgeSource, GpioError> {
    Err(GpioError::Request {
        chip: paths::gpio_chip(chip).display().to_string(),
        line,
        detail: "real GPIO needs Linux; use --simulate".into(),
    })
}
