//! Decoding: the first complete packet a broker sent, from the bytes read so far.

use super::properties::{properties, properties_then};
use super::*;

/// `Ok(None)` when more bytes are needed. Packets whose remaining length exceeds `max` are
/// refused before they are read.
pub fn decode(
    bytes: &[u8],
    max: usize,
    version: Version,
) -> Result<Option<(Incoming, usize)>, WireError> {
    let Some(&first) = bytes.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut shift = 0;
    let mut header = 1;
    loop {
        let Some(&b) = bytes.get(header) else {
            return Ok(None);
        };
        header += 1;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if header > 4 {
            return Err(WireError::Malformed("remaining length longer than 4 bytes"));
        }
    }
    if len > max {
        return Err(WireError::TooLarge { len, max });
    }
    let Some(body) = bytes.get(header..header + len) else {
        return Ok(None);
    };
    let kind = first >> 4;
    let flags = first & 0x0f;
    check_flags(kind, flags)?;
    let v5 = version == Version::V5;
    let packet = match kind {
        // A 3.1.1 broker answers an MQTT 5 CONNECT with a 3.1.1 CONNACK (code 1): read
        // without properties whatever the version.
        CONNACK => match body {
            [ack, code] => Incoming::ConnAck {
                session_present: ack & 1 == 1,
                code: *code,
                receive_maximum: None,
                server_keep_alive: None,
                reason: None,
            },
            [ack, code, rest @ ..] if v5 => {
                let props = properties(rest)?;
                Incoming::ConnAck {
                    session_present: ack & 1 == 1,
                    code: *code,
                    receive_maximum: props.receive_maximum,
                    server_keep_alive: props.server_keep_alive,
                    reason: props.reason,
                }
            }
            _ => return Err(WireError::Malformed("CONNACK is not 2 bytes long")),
        },
        PUBACK => match body {
            [hi, lo] => Incoming::PubAck(u16::from_be_bytes([*hi, *lo])),
            [hi, lo, reason, rest @ ..] if v5 => {
                if !rest.is_empty() {
                    properties(rest)?;
                }
                let pkid = u16::from_be_bytes([*hi, *lo]);
                if *reason >= 0x80 {
                    Incoming::PubRefused {
                        pkid,
                        reason: *reason,
                    }
                } else {
                    Incoming::PubAck(pkid)
                }
            }
            _ => return Err(WireError::Malformed("PUBACK is not 2 bytes long")),
        },
        SUBACK => match body {
            [hi, lo, rest @ ..] => {
                let codes = if v5 { properties_then(rest)?.1 } else { rest };
                if codes.is_empty() {
                    return Err(WireError::Malformed("SUBACK without a return code"));
                }
                Incoming::SubAck {
                    pkid: u16::from_be_bytes([*hi, *lo]),
                    codes: codes.to_vec(),
                }
            }
            _ => return Err(WireError::Malformed("SUBACK without a return code")),
        },
        PINGRESP if body.is_empty() => Incoming::PingResp,
        PINGRESP => return Err(WireError::Malformed("PINGRESP with a body")),
        PUBLISH => decode_publish(flags, body, v5)?,
        DISCONNECT if v5 => match body {
            [] => Incoming::Disconnect {
                reason: 0,
                text: None,
            },
            [reason] => Incoming::Disconnect {
                reason: *reason,
                text: None,
            },
            [reason, rest @ ..] => Incoming::Disconnect {
                reason: *reason,
                text: properties(rest)?.reason,
            },
        },
        CONNECT | SUBSCRIBE | PINGREQ | DISCONNECT => {
            return Err(WireError::Malformed("a client packet type from the broker"))
        }
        15 if v5 => {
            return Err(WireError::Malformed(
                "AUTH, but no enhanced authentication was asked for",
            ))
        }
        0 | 15 => return Err(WireError::Malformed("reserved packet type")),
        other => Incoming::Other(other),
    };
    Ok(Some((packet, header + len)))
}

/// The fixed-header flags each packet type must carry (MQTT 3.1.1 table 2.2, the same in
/// MQTT 5 table 2.3): 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE, 0000 for every other type
/// but PUBLISH, whose flags are DUP, QoS and RETAIN (QoS 3 does not exist). Anything else is
/// a malformed packet and ends the connection (MQTT-2.2.2-2, MQTT-3.3.1-4).
fn check_flags(kind: u8, flags: u8) -> Result<(), WireError> {
    let (name, expected) = match kind {
        PUBLISH if (flags >> 1) & 0x03 == 3 => {
            return Err(WireError::Malformed(
                "PUBLISH with QoS 3 (both QoS flags set)",
            ))
        }
        PUBLISH | 0 => return Ok(()),
        CONNECT => ("CONNECT with reserved flags set", 0),
        CONNACK => ("CONNACK with reserved flags set", 0),
        PUBACK => ("PUBACK with reserved flags set", 0),
        5 => ("PUBREC with reserved flags set", 0),
        6 => ("PUBREL without its fixed-header flags 0010", 0b0010),
        7 => ("PUBCOMP with reserved flags set", 0),
        SUBSCRIBE => ("SUBSCRIBE without its fixed-header flags 0010", 0b0010),
        SUBACK => ("SUBACK with reserved flags set", 0),
        10 => ("UNSUBSCRIBE without its fixed-header flags 0010", 0b0010),
        11 => ("UNSUBACK with reserved flags set", 0),
        PINGREQ => ("PINGREQ with reserved flags set", 0),
        PINGRESP => ("PINGRESP with reserved flags set", 0),
        DISCONNECT => ("DISCONNECT with reserved flags set", 0),
        _ => ("AUTH with reserved flags set", 0),
    };
    if flags == expected {
        Ok(())
    } else {
        Err(WireError::Malformed(name))
    }
}

fn decode_publish(flags: u8, body: &[u8], v5: bool) -> Result<Incoming, WireError> {
    let qos = (flags >> 1) & 0x03;
    let [hi, lo, rest @ ..] = body else {
        return Err(WireError::Malformed("PUBLISH without a topic"));
    };
    let tlen = usize::from(u16::from_be_bytes([*hi, *lo]));
    let Some(topic) = rest.get(..tlen) else {
        return Err(WireError::Malformed("PUBLISH topic longer than the packet"));
    };
    let topic = std::str::from_utf8(topic)
        .map_err(|_| WireError::Malformed("PUBLISH topic is not UTF-8"))?
        .to_string();
    let mut rest = &rest[tlen..];
    let pkid = if qos > 0 {
        let [hi, lo, after @ ..] = rest else {
            return Err(WireError::Malformed("PUBLISH without its packet id"));
        };
        rest = after;
        Some(u16::from_be_bytes([*hi, *lo]))
    } else {
        None
    };
    if v5 {
        rest = properties_then(rest)?.1;
    }
    Ok(Incoming::Publish {
        topic,
        payload: rest.to_vec(),
        qos,
        pkid,
        retain: flags & 1 == 1,
    })
}
