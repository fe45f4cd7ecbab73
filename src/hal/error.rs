//! Bus failures as the drivers see them: shared by the kernel's buses ([`super::bus`])
//! and the simulated ones ([`super::sim`]), so neither imports the other for them.

use std::fmt;

use embedded_hal::i2c::{self, ErrorKind, NoAcknowledgeSource};
use embedded_hal::spi;

/// A bus failure, with the kind the drivers understand.
#[derive(Debug, Clone)]
pub struct BusError {
    /// What kind of failure (NACK = nobody answered).
    pub kind: ErrorKind,
    /// Text from the kernel or the simulator.
    pub detail: String,
}

impl BusError {
    /// Nobody answered at the address.
    pub fn no_ack(detail: impl Into<String>) -> BusError {
        BusError {
            kind: ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address),
            detail: detail.into(),
        }
    }

    /// Any other failure.
    pub fn other(detail: impl Into<String>) -> BusError {
        BusError {
            kind: ErrorKind::Other,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.detail, self.kind)
    }
}

impl std::error::Error for BusError {}

impl i2c::Error for BusError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// SPI errors only need a kind; ours is always `Other`.
#[derive(Debug, Clone)]
pub struct SpiBusError(pub String);

impl fmt::Display for SpiBusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpiBusError {}

impl spi::Error for SpiBusError {
    fn kind(&self) -> spi::ErrorKind {
        spi::ErrorKind::Other
    }
}
