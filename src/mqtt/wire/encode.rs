//! Encoding: each packet Anemone sends, appended to the caller's buffer (so every message
//! that is due goes to the socket in one write).

use super::*;

pub(super) fn put_remaining(buf: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        buf.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// A string or binary field: 16-bit big-endian length, then the bytes. Longer fields are
/// cut at 65 535 bytes (never reached: topics, ids and credentials are short).
fn put_field(buf: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len().min(usize::from(u16::MAX));
    buf.extend_from_slice(&(n as u16).to_be_bytes());
    buf.extend_from_slice(&bytes[..n]);
}

fn field_len(bytes: &[u8]) -> usize {
    2 + bytes.len().min(usize::from(u16::MAX))
}

/// Appends a CONNECT packet. MQTT 5: no properties (a clean start whose session ends with
/// the connection, as a 3.1.1 clean session), and an empty will property list.
pub fn connect(buf: &mut Vec<u8>, version: Version, c: &Connect<'_>) {
    let v5 = version == Version::V5;
    let props = usize::from(v5); // one byte: property length 0
    let mut flags = 0u8;
    let mut len = field_len(b"MQTT") + 1 + 1 + 2 + props + field_len(c.client_id.as_bytes());
    if c.clean_session {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | ((w.qos as u8) << 3);
        if w.retain {
            flags |= 0x20;
        }
        len += props + field_len(w.topic.as_bytes()) + field_len(w.payload);
    }
    if let Some(u) = c.username {
        flags |= 0x80;
        len += field_len(u.as_bytes());
        if let Some(p) = c.password {
            flags |= 0x40;
            len += field_len(p);
        }
    }
    buf.push(CONNECT << 4);
    put_remaining(buf, len);
    put_field(buf, b"MQTT");
    buf.push(version.level());
    buf.push(flags);
    buf.extend_from_slice(&c.keep_alive.to_be_bytes());
    if v5 {
        buf.push(0); // CONNECT properties
    }
    put_field(buf, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        if v5 {
            buf.push(0); // will properties
        }
        put_field(buf, w.topic.as_bytes());
        put_field(buf, w.payload);
    }
    if let Some(u) = c.username {
        put_field(buf, u.as_bytes());
        if let Some(p) = c.password {
            put_field(buf, p);
        }
    }
}

/// Appends a PUBLISH packet (`pkid` is ignored at QoS 0; MQTT 5: no properties).
pub fn publish(
    buf: &mut Vec<u8>,
    version: Version,
    topic: &str,
    payload: &[u8],
    qos: Qos,
    retain: bool,
    pkid: u16,
) {
    let mut first = (PUBLISH << 4) | ((qos as u8) << 1);
    if retain {
        first |= 0x01;
    }
    let id_len = if qos == Qos::AtMostOnce { 0 } else { 2 };
    let props = usize::from(version == Version::V5);
    let len = field_len(topic.as_bytes()) + id_len + props + payload.len();
    buf.push(first);
    put_remaining(buf, len);
    put_field(buf, topic.as_bytes());
    if id_len > 0 {
        buf.extend_from_slice(&pkid.to_be_bytes());
    }
    if props > 0 {
        buf.push(0);
    }
    buf.extend_from_slice(payload);
}

/// Appends a PUBACK (our answer to a QoS 1 message from the broker; the same bytes in
/// MQTT 5, where a PUBACK without a reason code means success).
pub fn puback(buf: &mut Vec<u8>, pkid: u16) {
    buf.push(PUBACK << 4);
    buf.push(2);
    buf.extend_from_slice(&pkid.to_be_bytes());
}

/// Appends a SUBSCRIBE to one topic filter (MQTT 5: no properties; the options byte is the
/// QoS alone, as in 3.1.1).
pub fn subscribe(buf: &mut Vec<u8>, version: Version, pkid: u16, filter: &str, qos: Qos) {
    let props = usize::from(version == Version::V5);
    buf.push((SUBSCRIBE << 4) | 0x02);
    put_remaining(buf, 2 + props + field_len(filter.as_bytes()) + 1);
    buf.extend_from_slice(&pkid.to_be_bytes());
    if props > 0 {
        buf.push(0);
    }
    put_field(buf, filter.as_bytes());
    buf.push(qos as u8);
}

/// Appends a PINGREQ.
pub fn pingreq(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[PINGREQ << 4, 0]);
}

/// Appends a DISCONNECT (MQTT 5: no reason code, i.e. 0x00 normal disconnection).
pub fn disconnect(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[DISCONNECT << 4, 0]);
}
