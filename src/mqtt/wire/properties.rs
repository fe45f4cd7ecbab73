//! MQTT 5 properties (OASIS MQTT 5.0, section 2.2.2): the variable byte integer and the
//! property list, of which Anemone reads Receive Maximum, Server Keep Alive and Reason
//! String, and checks the rest for shape.

use super::WireError;

/// An MQTT 5 variable byte integer at the start of `bytes`, with how many bytes it took.
fn varint(bytes: &[u8], what: &'static str) -> Result<(usize, usize), WireError> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(4) {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(WireError::Malformed(what))
}

/// The MQTT 5 properties Anemone reads (the rest are checked for shape and skipped).
#[derive(Debug, Default)]
pub(super) struct Properties {
    pub(super) receive_maximum: Option<u16>,
    pub(super) server_keep_alive: Option<u16>,
    pub(super) reason: Option<String>,
}

/// A property list (length, then properties) that fills `bytes` exactly.
pub(super) fn properties(bytes: &[u8]) -> Result<Properties, WireError> {
    let (props, rest) = properties_then(bytes)?;
    if rest.is_empty() {
        Ok(props)
    } else {
        Err(WireError::Malformed("bytes after the MQTT 5 properties"))
    }
}

/// A property list at the start of `bytes`, and what follows it.
pub(super) fn properties_then(bytes: &[u8]) -> Result<(Properties, &[u8]), WireError> {
    let bad = WireError::Malformed("MQTT 5 property list longer than the packet");
    let (len, used) = varint(bytes, "MQTT 5 property length longer than 4 bytes")?;
    let end = used.checked_add(len).ok_or(bad.clone())?;
    let mut list = bytes.get(used..end).ok_or(bad.clone())?;
    let rest = &bytes[end..];
    let mut props = Properties::default();
    while let [id, after @ ..] = list {
        let two = |b: &[u8]| match b {
            [hi, lo, ..] => Ok(u16::from_be_bytes([*hi, *lo])),
            _ => Err(bad.clone()),
        };
        let size = match id {
            // Byte
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => 1,
            // Two-byte integer
            0x13 | 0x21 | 0x22 | 0x23 => 2,
            // Four-byte integer
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            // Variable byte integer
            0x0B => varint(after, "MQTT 5 property longer than the packet")?.1,
            // UTF-8 string, binary data
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                2 + usize::from(two(after)?)
            }
            // String pair (user property)
            0x26 => {
                let first = 2 + usize::from(two(after)?);
                first + 2 + usize::from(two(after.get(first..).ok_or(bad.clone())?)?)
            }
            _ => return Err(WireError::Malformed("unknown MQTT 5 property")),
        };
        let value = after.get(..size).ok_or(bad.clone())?;
        match id {
            0x21 => props.receive_maximum = Some(two(value)?),
            0x13 => props.server_keep_alive = Some(two(value)?),
            0x1F => {
                props.reason = Some(String::from_utf8_lossy(&value[2..]).into_owned());
            }
            _ => {}
        }
        list = &after[size..];
    }
    Ok((props, rest))
}
