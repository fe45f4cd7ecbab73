//! I2C and SPI buses: the Pi's kernel devices (through linux-embedded-hal) or simulated
//! ones, behind one type each so sources do not care which.
//!
//! # Enabling the buses on a Pi
//! * I2C: `dtparam=i2c_arm=on` in `/boot/firmware/config.txt` (or `raspi-config` →
//!   Interface Options → I2C), then reboot; the bus is `/dev/i2c-1`.
//! * SPI: `dtparam=spi=on`; the MCP3008 on CE0 is `/dev/spidev0.0`.
//! * "Permission denied" means the user running Anemone is not in the `i2c` / `spi`
//!   group: `sudo usermod -aG i2c,spi,gpio anemone` (the .deb does this).

use std::fmt;
use std::path::{Path, PathBuf};

use embedded_hal::i2c::{self, Operation};
#[cfg(target_os = "linux")]
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal::spi;

pub use super::error::{BusError, SpiBusError};
use super::sim::{SimI2c, SimSpi};

/// Why a bus could not be opened, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The device file does not exist.
    #[error("{path} does not exist: enable the bus ({enable}) and reboot")]
    Missing {
        /// Device file.
        path: PathBuf,
        /// The config.txt line that enables it.
        enable: &'static str,
    },
    /// The device file exists but may not be opened.
    #[error("permission denied on {path}: add the user running Anemone to the `{group}` group (sudo usermod -aG {group} $USER) and log in again")]
    Permission {
        /// Device file.
        path: PathBuf,
        /// Group that owns it on Raspberry Pi OS.
        group: &'static str,
    },
    /// Anything else.
    #[error("cannot open {path}: {detail}")]
    Other {
        /// Device file.
        path: PathBuf,
        /// The system's words.
        detail: String,
    },
}

fn classify(
    path: &Path,
    err: &dyn fmt::Display,
    enable: &'static str,
    group: &'static str,
) -> OpenError {
    let text = err.to_string();
    if !path.exists() {
        OpenError::Missing {
            path: path.to_path_buf(),
            enable,
        }
    } else if text.contains("ermission") || text.contains("EACCES") {
        OpenError::Permission {
            path: path.to_path_buf(),
            group,
        }
    } else {
        OpenError::Other {
            path: path.to_path_buf(),
            detail: text,
        }
    }
}

/// An I2C bus: the kernel's `/dev/i2c-N` or a simulated one.
pub enum I2cBus {
    /// A Linux I2C character device.
    #[cfg(target_os = "linux")]
    Linux(linux_embedded_hal::I2cdev, PathBuf),
    /// A simulated bus.
    Sim(SimI2c),
}

impl I2cBus {
    /// Opens the kernel's I2C bus `bus`.
    #[cfg(target_os = "linux")]
    pub fn open_linux(bus: u8) -> Result<I2cBus, OpenError> {
        let path = super::paths::i2c_device(bus);
        linux_embedded_hal::I2cdev::new(&path)
            .map(|d| I2cBus::Linux(d, path.clone()))
            .map_err(|e| classify(&path, &e, "dtparam=i2c_arm=on", "i2c"))
    }

    /// The device path (or `sim-i2c-N`) for messages.
    pub fn describe(&self) -> String {
        match self {
            #[cfg(target_os = "linux")]
            I2cBus::Linux(_, p) => p.display().to_string(),
            I2cBus::Sim(s) => s.describe(),
        }
    }
}

impl i2c::ErrorType for I2cBus {
    type Error = BusError;
}

impl i2c::I2c for I2cBus {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), BusError> {
        match self {
            #[cfg(target_os = "linux")]
            I2cBus::Linux(dev, path) => dev.transaction(address, operations).map_err(|e| {
                // The Pi's i2c-bcm2835 reports a NACK as EREMOTEIO (121), which
                // linux-embedded-hal maps to `Other`: it means nobody answered.
                const EREMOTEIO: i32 = 121;
                let errno = match e.inner() {
                    linux_embedded_hal::i2cdev::linux::LinuxI2CError::Errno(n) => Some(*n),
                    linux_embedded_hal::i2cdev::linux::LinuxI2CError::Io(io) => io.raw_os_error(),
                };
                let kind = if errno == Some(EREMOTEIO) {
                    ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
                } else {
                    i2c::Error::kind(&e)
                };
                BusError {
                    kind,
                    detail: format!("{} address {address:#04x}: {e}", path.display()),
                }
            }),
            I2cBus::Sim(sim) => sim.transaction(address, operations),
        }
    }
}

/// An SPI device: the kernel's `/dev/spidevB.C` or a simulated one.
pub enum SpiBus {
    /// A Linux spidev device.
    #[cfg(target_os = "linux")]
    Linux(linux_embedded_hal::SpidevDevice),
    /// A simulated device.
    Sim(SimSpi),
}

impl SpiBus {
    /// Opens the kernel's SPI device `bus`.`cs`, at 1 MHz, mode 0 (MCP3008 at 3.3 V).
    #[cfg(target_os = "linux")]
    pub fn open_linux(bus: u8, cs: u8) -> Result<SpiBus, OpenError> {
        use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
        let path = super::paths::spi_device(bus, cs);
        let mut dev = linux_embedded_hal::SpidevDevice::open(&path)
            .map_err(|e| classify(&path, &e, "dtparam=spi=on", "spi"))?;
        let options = SpidevOptions::new()
            .bits_per_word(8)
            .max_speed_hz(1_000_000)
            .mode(SpiModeFlags::SPI_MODE_0)
            .build();
        dev.configure(&options)
            .map_err(|e| classify(&path, &e, "dtparam=spi=on", "spi"))?;
        Ok(SpiBus::Linux(dev))
    }
}

impl spi::ErrorType for SpiBus {
    type Error = SpiBusError;
}

impl spi::SpiDevice for SpiBus {
    fn transaction(
        &mut self,
        operations: &mut [spi::Operation<'_, u8>],
    ) -> Result<(), SpiBusError> {
        match self {
            #[cfg(target_os = "linux")]
            SpiBus::Linux(dev) => dev
                .transaction(operations)
                .map_err(|e| SpiBusError(e.to_string())),
            SpiBus::Sim(sim) => sim.transaction(operations),
        }
    }
}

/// A delay for drivers that wait on their chip: real sleeps on hardware, none in the
/// simulator (simulated chips answer at once; station time is the clock's business).
#[derive(Debug, Clone, Copy)]
pub struct HalDelay {
    /// Sleep for real (hardware) or not at all (simulation).
    pub real: bool,
}

impl embedded_hal::delay::DelayNs for HalDelay {
    fn delay_ns(&mut self, ns: u32) {
        if self.real {
            std::thread::sleep(std::time::Duration::from_nanos(u64::from(ns)));
        }
    }
}
