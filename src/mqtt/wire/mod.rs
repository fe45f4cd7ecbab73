//! MQTT 3.1.1 and MQTT 5 packets on the wire: what the publisher and `mqtt check` send
//! (CONNECT, PUBLISH, PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT) encoded into a byte buffer, and
//! what a broker sends back decoded from one.
//!
//! Encoding appends to a caller's buffer, so the publisher can put every message that is due
//! into one buffer and hand it to the socket with one write. Decoding takes the bytes read so
//! far and returns a packet with its length, or `None` when the packet is not complete yet.
//! Layouts are those of the OASIS MQTT 3.1.1 standard, section 3 (one fixed header byte, the
//! "remaining length" as 1–4 bytes of 7 bits, strings and binary data with a 16-bit length).
//!
//! MQTT 5 (OASIS MQTT 5.0, section 3) adds *properties* after the variable header and reason
//! codes to the acknowledgements. Anemone sends no properties (an empty list: a clean start
//! without Session Expiry Interval ends the session with the connection, exactly like a 3.1.1
//! clean session) and reads the ones it uses: Receive Maximum, Server Keep Alive and Reason
//! String. What matters is the PUBACK's reason code: 0x80 and above means the broker did not
//! take the message (e.g. 0x87, its ACL denies the topic), where 3.1.1 has only "acknowledged".

use std::fmt;

mod decode;
mod encode;
mod properties;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::{connect, disconnect, pingreq, puback, publish, subscribe};

/// The protocol version spoken on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5 (protocol level 5).
    V5,
}

impl Version {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Version::V311 => 4,
            Version::V5 => 5,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V311 => "MQTT 3.1.1",
            Version::V5 => "MQTT 5",
        })
    }
}

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
        /// 0 accepted; 3.1.1: 1–5 refusals, MQTT 5: reason codes 0x80 and above (see
        /// [`connack_code_text`]).
        code: u8,
        /// MQTT 5 Receive Maximum: QoS 1 publishes the broker takes unacknowledged at once.
        receive_maximum: Option<u16>,
        /// MQTT 5 Server Keep Alive: the keep-alive the client must use instead of its own.
        server_keep_alive: Option<u16>,
        /// MQTT 5 Reason String: the broker's own words.
        reason: Option<String>,
    },
    /// PUBACK of one of our QoS 1 publishes (MQTT 5: with a reason code below 0x80, e.g.
    /// 0x10 "no matching subscribers", which is a delivery too).
    PubAck(u16),
    /// MQTT 5 PUBACK with a reason code of 0x80 or above: the broker refused the message
    /// (see [`reason_code_name`]). It is not a delivery.
    PubRefused {
        /// Packet id of the refused PUBLISH.
        pkid: u16,
        /// The reason code (0x87 not authorized, 0x90 topic name invalid, 0x97 quota…).
        reason: u8,
    },
    /// MQTT 5 DISCONNECT from the broker: why it ends the session.
    Disconnect {
        /// The reason code (0x8E session taken over, 0x87 not authorized, …).
        reason: u8,
        /// The broker's Reason String, if it sent one.
        text: Option<String>,
    },
    /// SUBACK: packet id and one return code per topic filter (0x80 and above: refused).
    SubAck {
        /// Packet id of the SUBSCRIBE.
        pkid: u16,
        /// Granted QoS per filter, or a refusal (0x80 and above).
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

/// Bytes that are not an MQTT packet a broker would send.
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

/// Control packet type (the high nibble of the fixed header).
pub(super) const CONNECT: u8 = 1;
pub(super) const CONNACK: u8 = 2;
pub(super) const PUBLISH: u8 = 3;
pub(super) const PUBACK: u8 = 4;
pub(super) const SUBSCRIBE: u8 = 8;
pub(super) const SUBACK: u8 = 9;
pub(super) const PINGREQ: u8 = 12;
pub(super) const PINGRESP: u8 = 13;
pub(super) const DISCONNECT: u8 = 14;

/// The name MQTT 5 gives a reason code (OASIS MQTT 5.0, table 2.6), for logs and errors.
pub fn reason_code_name(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        0x10 => "no matching subscribers",
        0x80 => "unspecified error",
        0x81 => "malformed packet",
        0x82 => "protocol error",
        0x83 => "implementation specific error",
        0x84 => "unsupported protocol version",
        0x85 => "client identifier not valid",
        0x86 => "bad user name or password",
        0x87 => "not authorized",
        0x88 => "server unavailable",
        0x89 => "server busy",
        0x8A => "banned",
        0x8B => "server shutting down",
        0x8C => "bad authentication method",
        0x8D => "keep alive timeout",
        0x8E => "session taken over",
        0x8F => "topic filter invalid",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x93 => "receive maximum exceeded",
        0x94 => "topic alias invalid",
        0x95 => "packet too large",
        0x96 => "message rate too high",
        0x97 => "quota exceeded",
        0x98 => "administrative action",
        0x99 => "payload format invalid",
        0x9A => "retain not supported",
        0x9B => "QoS not supported",
        0x9C => "use another server",
        0x9D => "server moved",
        0x9F => "connection rate exceeded",
        0xA0 => "maximum connect time",
        _ => "unknown reason code",
    }
}

/// The meaning of a CONNACK code under `version`, in words an operator can act on.
pub fn connack_code_text(version: Version, code: u8) -> String {
    if version == Version::V5 && code != 1 {
        return match code {
            0 => "connected".into(),
            0x84 => "the broker does not speak MQTT 5 (set mqtt.protocol = \"3.1.1\")".into(),
            0x85 => "the broker rejected the client id (MQTT 5 reason 0x85, client identifier not valid: set mqtt.client_id)".into(),
            0x86 => "the broker rejected the username or password (MQTT 5 reason 0x86: check mqtt.username and mqtt.password / password_file)".into(),
            0x87 => "the broker refused the connection: not authorised (MQTT 5 reason 0x87: a wrong username or password, anonymous access off, or this user may not connect)".into(),
            0x8A => "the broker refused the connection: this client is banned (MQTT 5 reason 0x8A)".into(),
            other => format!(
                "the broker refused the connection: {} (MQTT 5 reason {other:#04x})",
                reason_code_name(other)
            ),
        };
    }
    match code {
        0 => "connected".into(),
        1 => "the broker does not speak this MQTT version (CONNACK code 1)".into(),
        2 => "the broker rejected the client id (set mqtt.client_id)".into(),
        3 => "the broker says it is unavailable".into(),
        4 => "the broker rejected the username or password (check mqtt.username and mqtt.password / password_file)".into(),
        5 => "the broker refused the connection: not authorised (a wrong username or password, anonymous access off, or this user may not connect)".into(),
        other => format!("the broker refused the connection with CONNACK code {other}"),
    }
}
