//! What the I2C kinds share: the message for a chip that does not answer, and finding a
//! chip for `anemone probe` by one register or by a plain read.

use std::fmt::Display;

use embedded_hal::i2c::I2c;

use super::{I2cFound, SourceError};
use crate::hal::I2cBus;

/// An I2C chip's place, for its error messages.
#[derive(Debug, Clone)]
pub(crate) struct I2cChipAt {
    /// The chip's name (`BMP180`).
    pub chip: &'static str,
    /// Its address.
    pub address: u8,
    /// The bus number.
    pub bus: u8,
    /// The bus as the HAL describes it.
    pub where_: String,
}

impl I2cChipAt {
    /// A driver error as a source error: the chip is absent (with the wiring and the
    /// `i2cdetect` line to check) when nothing acknowledged its address
    /// (`no_device`), else it answered wrongly.
    pub(crate) fn error(&self, no_device: bool, err: impl Display) -> SourceError {
        let (chip, address, bus, where_) = (self.chip, self.address, self.bus, &self.where_);
        if no_device {
            SourceError::Absent(format!(
                "no {chip} answered at {address:#04x} on {where_}: check wiring (3V3, GND, SDA pin 3, SCL pin 5) and that `i2cdetect -y {bus}` shows {address:02x}"
            ))
        } else {
            SourceError::Device(format!("{chip} at {address:#04x} on {where_}: {err}"))
        }
    }
}

/// The one I2C address a chip with a fixed address claims, for `validate`.
pub(crate) fn i2c_resource(bus: u8, address: u8) -> Vec<String> {
    vec![format!("I2C bus {bus} address {address:#04x}")]
}

/// The problem of a chip with one fixed address configured at another.
pub(crate) fn check_fixed_address(
    chip: &str,
    address: u8,
    fixed: u8,
    p: &mut Vec<(&'static str, String)>,
) {
    if address != fixed {
        p.push((
            "address",
            format!(
                "{address:#04x} is not a{} {chip} address: the chip answers only at {fixed:#04x} (a second one needs another bus)",
                if chip.starts_with(['A', 'E', 'H', 'L', 'M']) { "n" } else { "" }
            ),
        ));
    }
}

/// A chip found by its id register: `command` written, one byte read, and `identify`
/// naming what answered (`None`: not this kind's chip).
pub(crate) fn scan_by_id(
    i2c: &mut I2cBus,
    address: u8,
    command: u8,
    identify: impl Fn(u8) -> Option<String>,
    snippet: String,
) -> Vec<I2cFound> {
    let mut id = [0u8];
    if i2c.write_read(address, &[command], &mut id).is_err() {
        return Vec::new();
    }
    identify(id[0])
        .map(|what| I2cFound {
            address,
            what,
            snippet: Some(snippet),
        })
        .into_iter()
        .collect()
}

/// A chip with no id register (an MCP3427) found by answering a 3-byte read; `what` gets
/// the last byte (the MCP3427's configuration).
pub(crate) fn scan_by_read(
    i2c: &mut I2cBus,
    address: u8,
    what: impl Fn(u8) -> String,
    snippet: String,
) -> Vec<I2cFound> {
    let mut buf = [0u8; 3];
    if i2c.read(address, &mut buf).is_err() {
        return Vec::new();
    }
    vec![I2cFound {
        address,
        what: what(buf[2]),
        snippet: Some(snippet),
    }]
}
