//! MQTT 3.1.1 packets on the wire: what the publisher and `mqtt check` send (CONNECT,
//! PUBLISH, PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT) encoded into a byte buffer, and what a
//! broker sends back decoded from one.
//!
//! Encoding appends to a caller's buffer, so the publisher can put every message that is due
//! into one buffer and hand it to the socket with one write. Decoding takes the bytes read so
//! far and returns a packet with its length, or `None` when the packet is not complete yet.
//! Layouts are those of the OASIS MQTT 3.1.1 standard, section 3 (one fixed header byte, the
//! "remaining length" as 1–4 bytes of 7 bits, strings and binary data with a 16-bit length).

use std::fmt;

/// MQTT quality of service, as far as Anemone uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// At most once (no packet id, no acknowledgement).
    AtMostOnce = 0,
    /// At least once (packet id, PUBACK).
    AtLeastOnce = 1,
}

/// The last will: published by the broker when the connection ends without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Payload.
    pub payload: &'a [u8],
    /// QoS of the will message.
    pub qos: Qos,
    /// Retained.
    pub retain: bool,
}

/// The CONNECT packet's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Client identifier.
    pub client_id: &'a str,
    /// Keep-alive in seconds (0: off).
    pub keep_alive: u16,
    /// Clean session.
    pub clean_session: bool,
    /// Last will.
    pub will: Option<Will<'a>>,
    /// User name.
    pub username: Option<&'a str>,
    /// Password (only with a user name, as 3.1.1 requires).
    pub password: Option<&'a [u8]>,
}

/// A packet from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// CONNACK: session present, return code (0 = accepted).
    ConnAck {
        /// The broker kept a session for this client id.
        session_present: bool,
        /// 0 accepted; 1–5 refusals (see [`connack_code_text`]).
        code: u8,
    },
    /// PUBACK of one of our QoS 1 publishes.
    PubAck(u16),
    /// SUBACK: packet id and one return code per topic filter (0x80 = refused).
    SubAck {
        /// Packet id of the SUBSCRIBE.
        pkid: u16,
        /// Granted QoS per filter, or 0x80.
        codes: Vec<u8>,
    },
    /// A message on a topic we subscribed to.
    Publish {
        /// Topic name.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
        /// QoS 0, 1 or 2.
        qos: u8,
        /// Packet id (QoS > 0).
        pkid: Option<u16>,
        /// Retained message.
        retain: bool,
    },
    /// PINGRESP.
    PingResp,
    /// Another packet type a broker may send (PUBREC, PUBREL, PUBCOMP, UNSUBACK).
    Other(u8),
}

/// Bytes that are not an MQTT 3.1.1 packet a broker would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// A malformed packet, with what is wrong.
    Malformed(&'static str),
    /// A packet longer than we accept.
    TooLarge {
        /// Its announced length.
        len: usize,
        /// Our limit.
        max: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Malformed(what) => write!(f, "malformed MQTT packet: {what}"),
            WireError::TooLarge { len, max } => {
                write!(f, "MQTT packet of {len} bytes exceeds the limit of {max}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// The largest remaining length MQTT can express (4 length bytes).
pub const MAX_REMAINING: usize = 268_435_455;

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

/// The meaning of a CONNACK return code, in words an operator can act on.
pub fn connack_code_text(code: u8) -> String {
    match code {
        0 => "connected".into(),
        1 => "the broker does not speak MQTT 3.1.1".into(),
        2 => "the broker rejected the client id (set mqtt.client_id)".into(),
        3 => "the broker says it is unavailable".into(),
        4 => "the broker rejected the username or password (check mqtt.username and mqtt.password / password_file)".into(),
        5 => "the broker refused the connection: not authorised (a wrong username or password, anonymous access off, or this user may not connect)".into(),
        other => format!("the broker refused the connection with CONNACK code {other}"),
    }
}

fn put_remaining(buf: &mut Vec<u8>, mut len: usize) {
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

/// Appends a CONNECT packet.
pub fn connect(buf: &mut Vec<u8>, c: &Connect<'_>) {
    let mut flags = 0u8;
    let mut len = field_len(b"MQTT") + 1 + 1 + 2 + field_len(c.client_id.as_bytes());
    if c.clean_session {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | ((w.qos as u8) << 3);
        if w.retain {
            flags |= 0x20;
        }
        len += field_len(w.topic.as_bytes()) + field_len(w.payload);
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
    buf.push(4); // protocol level 3.1.1
    buf.push(flags);
    buf.extend_from_slice(&c.keep_alive.to_be_bytes());
    put_field(buf, c.client_id.as_bytes());
    if let Some(w) = &c.will {
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

/// Appends a PUBLISH packet (`pkid` is ignored at QoS 0).
pub fn publish(buf: &mut Vec<u8>, topic: &str, payload: &[u8], qos: Qos, retain: bool, pkid: u16) {
    let mut first = (PUBLISH << 4) | ((qos as u8) << 1);
    if retain {
        first |= 0x01;
    }
    let id_len = if qos == Qos::AtMostOnce { 0 } else { 2 };
    let len = field_len(topic.as_bytes()) + id_len + payload.len();
    buf.push(first);
    put_remaining(buf, len);
    put_field(buf, topic.as_bytes());
    if id_len > 0 {
        buf.extend_from_slice(&pkid.to_be_bytes());
    }
    buf.extend_from_slice(payload);
}

/// Appends a PUBACK (our answer to a QoS 1 message from the broker).
pub fn puback(buf: &mut Vec<u8>, pkid: u16) {
    buf.push(PUBACK << 4);
    buf.push(2);
    buf.extend_from_slice(&pkid.to_be_bytes());
}

/// Appends a SUBSCRIBE to one topic filter.
pub fn subscribe(buf: &mut Vec<u8>, pkid: u16, filter: &str, qos: Qos) {
    buf.push((SUBSCRIBE << 4) | 0x02);
    put_remaining(buf, 2 + field_len(filter.as_bytes()) + 1);
    buf.extend_from_slice(&pkid.to_be_bytes());
    put_field(buf, filter.as_bytes());
    buf.push(qos as u8);
}

/// Appends a PINGREQ.
pub fn pingreq(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[PINGREQ << 4, 0]);
}

/// Appends a DISCONNECT.
pub fn disconnect(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[DISCONNECT << 4, 0]);
}

/// The first complete packet in `bytes`, with how many bytes it took; `Ok(None)` when more
/// bytes are needed. Packets whose remaining length exceeds `max` are refused before they
/// are read.
pub fn decode(bytes: &[u8], max: usize) -> Result<Option<(Incoming, usize)>, WireError> {
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
    let packet = match kind {
        CONNACK => match body {
            [ack, code] => Incoming::ConnAck {
                session_present: ack & 1 == 1,
                code: *code,
            },
            _ => return Err(WireError::Malformed("CONNACK is not 2 bytes long")),
        },
        PUBACK => match body {
            [hi, lo] => Incoming::PubAck(u16::from_be_bytes([*hi, *lo])),
            _ => return Err(WireError::Malformed("PUBACK is not 2 bytes long")),
        },
        SUBACK => match body {
            [hi, lo, codes @ ..] if !codes.is_empty() => Incoming::SubAck {
                pkid: u16::from_be_bytes([*hi, *lo]),
                codes: codes.to_vec(),
            },
            _ => return Err(WireError::Malformed("SUBACK without a return code")),
        },
        PINGRESP if body.is_empty() => Incoming::PingResp,
        PINGRESP => return Err(WireError::Malformed("PINGRESP with a body")),
        PUBLISH => decode_publish(flags, body)?,
        CONNECT | SUBSCRIBE | PINGREQ | DISCONNECT => {
            return Err(WireError::Malformed("a client packet type from the broker"))
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
        PUBLISH | 0 | 15 => return Ok(()),
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
        _ => ("DISCONNECT with reserved flags set", 0),
    };
    if flags == expected {
        Ok(())
    } else {
        Err(WireError::Malformed(name))
    }
}

fn decode_publish(flags: u8, body: &[u8]) -> Result<Incoming, WireError> {
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
    Ok(Incoming::Publish {
        topic,
        payload: rest.to_vec(),
        qos,
        pkid,
        retain: flags & 1 == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_boundaries_of_the_standard() {
        // MQTT 3.1.1, table 2.4: the first and last value of each length size.
        for (len, bytes) in [
            (0usize, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
            (2_097_151, vec![0xff, 0xff, 0x7f]),
            (2_097_152, vec![0x80, 0x80, 0x80, 0x01]),
            (MAX_REMAINING, vec![0xff, 0xff, 0xff, 0x7f]),
        ] {
            let mut buf = Vec::new();
            put_remaining(&mut buf, len);
            assert_eq!(buf, bytes, "{len}");
        }
    }

    #[test]
    fn connect_bytes_by_hand() {
        let mut buf = Vec::new();
        connect(
            &mut buf,
            &Connect {
                client_id: "ab",
                keep_alive: 60,
                clean_session: true,
                will: Some(Will {
                    topic: "t",
                    payload: b"off",
                    qos: Qos::AtLeastOnce,
                    retain: true,
                }),
                username: Some("u"),
                password: Some(b"pw"),
            },
        );
        let expected: Vec<u8> = [
            &[0x10, 29][..],
            &[0, 4, b'M', b'Q', b'T', b'T', 4],
            // user, password, will retain, will QoS 1, will, clean session
            &[0b1110_1110],
            &[0, 60],
            &[0, 2, b'a', b'b'],
            &[0, 1, b't'],
            &[0, 3, b'o', b'f', b'f'],
            &[0, 1, b'u'],
            &[0, 2, b'p', b'w'],
        ]
        .concat();
        assert_eq!(buf, expected);
    }

    #[test]
    fn publish_and_friends_by_hand() {
        let mut buf = Vec::new();
        publish(&mut buf, "a/b", b"{}", Qos::AtLeastOnce, false, 0x0102);
        assert_eq!(buf, [0x32, 9, 0, 3, b'a', b'/', b'b', 1, 2, b'{', b'}']);
        buf.clear();
        publish(&mut buf, "s", b"x", Qos::AtMostOnce, true, 7);
        assert_eq!(buf, [0x31, 4, 0, 1, b's', b'x']);
        buf.clear();
        subscribe(&mut buf, 9, "h/s", Qos::AtLeastOnce);
        assert_eq!(buf, [0x82, 8, 0, 9, 0, 3, b'h', b'/', b's', 1]);
        buf.clear();
        puback(&mut buf, 0xbeef);
        pingreq(&mut buf);
        disconnect(&mut buf);
        assert_eq!(buf, [0x40, 2, 0xbe, 0xef, 0xc0, 0, 0xe0, 0]);
    }

    #[test]
    fn decodes_what_brokers_send_and_waits_for_the_rest() {
        let stream = [
            &[0x20, 2, 1, 0][..],                     // CONNACK, session present, accepted
            &[0x40, 2, 0, 5],                         // PUBACK 5
            &[0x90, 3, 0, 6, 0x80],                   // SUBACK 6, refused
            &[0xd0, 0],                               // PINGRESP
            &[0x33, 7, 0, 1, b't', 0, 9, b'o', b'n'], // PUBLISH QoS 1 retained
            &[0x50, 2, 0, 1],                         // PUBREC: not ours to handle
        ]
        .concat();
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((p, n)) = decode(&stream[at..], 1024).unwrap_or(None) {
            at += n;
            got.push(p);
        }
        assert_eq!(at, stream.len());
        assert_eq!(
            got,
            vec![
                Incoming::ConnAck {
                    session_present: true,
                    code: 0
                },
                Incoming::PubAck(5),
                Incoming::SubAck {
                    pkid: 6,
                    codes: vec![0x80]
                },
                Incoming::PingResp,
                Incoming::Publish {
                    topic: "t".into(),
                    payload: b"on".to_vec(),
                    qos: 1,
                    pkid: Some(9),
                    retain: true
                },
                Incoming::Other(5),
            ]
        );
        // Every strict prefix of a packet is "not yet".
        for cut in 0..9 {
            assert_eq!(decode(&stream[14..14 + cut], 1024), Ok(None), "{cut}");
        }
    }

    #[test]
    fn refuses_what_no_broker_sends() {
        assert!(matches!(
            decode(&[0x20, 3, 0, 0, 0], 64),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[0x10, 0], 64),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[0x36, 3, 0, 1, b't'], 64),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], 64),
            Err(WireError::Malformed(_))
        ));
        assert_eq!(
            decode(&[0x30, 0x80, 0x01], 64),
            Err(WireError::TooLarge { len: 128, max: 64 })
        );
        // An HTTP server on the port: "HTTP/1.1 400" starts with 'H' = 0x48 (type 4 with
        // flags): a PUBACK whose length byte is 'T' (84) — refused as too large or malformed,
        // never taken as an acknowledgement.
        assert!(decode(b"HTTP/1.1 400 Bad Request\r\n", 64).is_err());
    }

    #[test]
    fn refuses_reserved_flag_bits_of_every_packet_type() {
        // MQTT 3.1.1 table 2.2 and §2.2.2 (MQTT-2.2.2-2): flags that are not the specified
        // value make the packet malformed, and the connection must be closed.
        let bodies: [(u8, u8, &[u8]); 9] = [
            (2, 0b0000, &[0, 0]),       // CONNACK
            (4, 0b0000, &[0, 1]),       // PUBACK
            (5, 0b0000, &[0, 1]),       // PUBREC
            (6, 0b0010, &[0, 1]),       // PUBREL
            (7, 0b0000, &[0, 1]),       // PUBCOMP
            (9, 0b0000, &[0, 1, 0]),    // SUBACK
            (11, 0b0000, &[0, 1]),      // UNSUBACK
            (13, 0b0000, &[]),          // PINGRESP
            (3, 0b0000, &[0, 1, b't']), // PUBLISH QoS 0 (flags are DUP/QoS/RETAIN)
        ];
        for (kind, good, body) in bodies {
            let packet = |flags: u8| {
                let mut p = vec![(kind << 4) | flags, body.len() as u8];
                p.extend_from_slice(body);
                p
            };
            assert!(
                matches!(decode(&packet(good), 64), Ok(Some(_))),
                "type {kind} with its specified flags {good:#06b}"
            );
            if kind == 3 {
                continue;
            }
            for flags in (0..16u8).filter(|&f| f != good) {
                match decode(&packet(flags), 64) {
                    Err(WireError::Malformed(what)) => {
                        assert!(what.contains("flags"), "type {kind}, {flags:#06b}: {what}")
                    }
                    other => panic!("type {kind} with flags {flags:#06b} accepted: {other:?}"),
                }
            }
        }
        // PUBLISH: QoS 3 (both QoS bits set) is malformed whatever the other bits.
        for flags in [0b0110, 0b0111, 0b1110, 0b1111] {
            assert!(
                matches!(
                    decode(&[0x30 | flags, 5, 0, 1, b't', 0, 1], 64),
                    Err(WireError::Malformed(_))
                ),
                "{flags:#06b}"
            );
        }
    }

    /// Our packets read back by rumqttc's decoder (an independent implementation, a
    /// dev-dependency only).
    fn rumqttc_reads(bytes: &[u8]) -> rumqttc::mqttbytes::v4::Packet {
        let mut b = bytes::BytesMut::from(bytes);
        let p = rumqttc::mqttbytes::v4::Packet::read(&mut b, 1 << 20);
        assert!(b.is_empty(), "rumqttc left {} bytes", b.len());
        match p {
            Ok(p) => p,
            Err(e) => panic!("rumqttc refused {bytes:?}: {e:?}"),
        }
    }

    #[test]
    fn another_implementation_reads_our_packets() {
        use rumqttc::mqttbytes::v4::Packet as P;
        use rumqttc::mqttbytes::QoS as Q;
        let mut buf = Vec::new();
        connect(
            &mut buf,
            &Connect {
                client_id: "anemone-mast",
                keep_alive: 30,
                clean_session: true,
                will: Some(Will {
                    topic: "anemone/mast/status",
                    payload: b"offline",
                    qos: Qos::AtLeastOnce,
                    retain: true,
                }),
                username: Some("station"),
                password: Some(b"s3cret"),
            },
        );
        match rumqttc_reads(&buf) {
            P::Connect(c) => {
                assert_eq!(c.client_id, "anemone-mast");
                assert_eq!(c.keep_alive, 30);
                assert!(c.clean_session);
                let will = c
                    .last_will
                    .as_ref()
                    .map(|w| (w.topic.as_str(), &w.message[..], w.qos, w.retain));
                assert_eq!(
                    will,
                    Some(("anemone/mast/status", &b"offline"[..], Q::AtLeastOnce, true))
                );
                let login = c
                    .login
                    .as_ref()
                    .map(|l| (l.username.as_str(), l.password.as_str()));
                assert_eq!(login, Some(("station", "s3cret")));
            }
            other => panic!("{other:?}"),
        }
        buf.clear();
        let long = vec![b'x'; 300]; // a two-byte remaining length
        publish(
            &mut buf,
            "anemone/mast/reading/air",
            &long,
            Qos::AtLeastOnce,
            false,
            513,
        );
        match rumqttc_reads(&buf) {
            P::Publish(p) => {
                assert_eq!(
                    (p.topic.as_str(), p.pkid, p.qos, p.retain),
                    ("anemone/mast/reading/air", 513, Q::AtLeastOnce, false)
                );
                assert_eq!(&p.payload[..], &long[..]);
            }
            other => panic!("{other:?}"),
        }
        buf.clear();
        publish(
            &mut buf,
            "anemone/mast/state",
            b"{}",
            Qos::AtMostOnce,
            true,
            0,
        );
        match rumqttc_reads(&buf) {
            P::Publish(p) => assert_eq!((p.pkid, p.qos, p.retain), (0, Q::AtMostOnce, true)),
            other => panic!("{other:?}"),
        }
        buf.clear();
        subscribe(&mut buf, 7, "homeassistant/status", Qos::AtLeastOnce);
        match rumqttc_reads(&buf) {
            P::Subscribe(s) => {
                assert_eq!(s.pkid, 7);
                let f: Vec<_> = s.filters.iter().map(|f| (f.path.as_str(), f.qos)).collect();
                assert_eq!(f, vec![("homeassistant/status", Q::AtLeastOnce)]);
            }
            other => panic!("{other:?}"),
        }
        buf.clear();
        puback(&mut buf, 9);
        assert!(matches!(rumqttc_reads(&buf), P::PubAck(a) if a.pkid == 9));
        buf.clear();
        pingreq(&mut buf);
        assert!(matches!(rumqttc_reads(&buf), P::PingReq));
        buf.clear();
        disconnect(&mut buf);
        assert!(matches!(rumqttc_reads(&buf), P::Disconnect));
    }

    proptest::proptest! {
        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = decode(&bytes, 32);
        }

        #[test]
        fn a_publish_decodes_to_what_was_encoded(
            topic in "[a-z/_0-9]{1,40}",
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            qos1 in proptest::bool::ANY,
            retain in proptest::bool::ANY,
            pkid in 1u16..,
        ) {
            let qos = if qos1 { Qos::AtLeastOnce } else { Qos::AtMostOnce };
            let mut buf = Vec::new();
            publish(&mut buf, &topic, &payload, qos, retain, pkid);
            let decoded = decode(&buf, 1 << 20);
            let expected = Incoming::Publish {
                topic: topic.clone(),
                payload: payload.clone(),
                qos: qos as u8,
                pkid: qos1.then_some(pkid),
                retain,
            };
            proptest::prop_assert_eq!(decoded, Ok(Some((expected, buf.len()))));
        }
    }
}
