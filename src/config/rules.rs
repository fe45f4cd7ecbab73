//! The rules that `validate`, `run` and `mqtt check` share: one definition each.
//!
//! `validate` reports them through [`super::validate_text`]; `run` and `mqtt check` load the
//! config through the same function, and the MQTT side calls the parsers here (the broker
//! URL, the embedded broker's listen address, who may log in to it) rather than parsing
//! again. A config that `validate` accepts therefore starts the same way under `run`.

use std::net::SocketAddr;

pub use crate::duration::span_problem;

use super::{MqttConfig, Span};

/// MQTT's limit on a topic name and on a client id: a two-byte length (65 535 bytes).
pub const MQTT_MAX_STRING_BYTES: usize = 65_535;

/// MQTT 3.1.1 guarantees every broker accepts client ids of 1–23 characters of
/// `[0-9a-zA-Z]` (MQTT-3.1.3-5); longer ones are commonly accepted, not guaranteed.
pub const PORTABLE_CLIENT_ID_CHARS: usize = 23;

/// The longest id a station or sensor may have (`validate` refuses longer ones).
pub const MAX_ID_CHARS: usize = 64;

/// The user name the station logs in with to its own embedded broker when
/// `[mqtt] username` is not set.
pub const STATION_USER: &str = "anemone-station";

/// MQTT keep-alive travels as whole seconds in two bytes.
pub const KEEP_ALIVE_MIN: Span = Span::secs(5);
/// See [`KEEP_ALIVE_MIN`].
pub const KEEP_ALIVE_MAX: Span = Span::secs(65_535);
/// Longest sensor interval: one day.
pub const INTERVAL_MAX: Span = Span::secs(86_400);
/// Longest wait for the clock to be synchronised: one day.
pub const CLOCK_SYNC_WAIT_MAX: Span = Span::secs(86_400);
/// Longest retention of raw readings: 100 years of 365.25 days.
pub const RETENTION_MAX: Span = Span::secs(3_155_760_000);
pub use crate::sensors::DEBOUNCE_MAX;

/// A broker URL: `mqtt://host[:port]` or `mqtts://host[:port]` (IPv6 in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// Port (1883 for `mqtt://`, 8883 for `mqtts://` when not given).
    pub port: u16,
    /// `mqtts://`.
    pub tls: bool,
}

/// Why a broker URL is refused. The messages never repeat a URL that carries credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    /// Neither `mqtt://` nor `mqtts://`.
    #[error(
        "\"{0}\" is not a broker: use \"embedded\", \"mqtt://host:1883\" or \"mqtts://host:8883\""
    )]
    Scheme(String),
    /// No usable host, or a port that is not a number from 1 to 65 535.
    #[error("\"{0}\" is not host:port: e.g. \"mqtt://192.168.1.10:1883\", \"mqtts://broker.example:8883\" or \"mqtt://[::1]:1883\"")]
    HostPort(String),
    /// `mqtt://user:password@host`.
    #[error("the broker URL must not carry a user name or password (they would be printed and logged with it): remove `…@` and set mqtt.username and mqtt.password_file")]
    Credentials,
}

/// Parses a broker URL. The one parser: `validate`, `run` and `mqtt check` all call it.
pub fn parse_broker_url(url: &str) -> Result<BrokerUrl, BrokerUrlError> {
    let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false, 1883)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true, 8883)
    } else if url.contains('@') {
        return Err(BrokerUrlError::Credentials);
    } else {
        return Err(BrokerUrlError::Scheme(url.to_string()));
    };
    if rest.contains('@') {
        return Err(BrokerUrlError::Credentials);
    }
    let bad = || BrokerUrlError::HostPort(rest.to_string());
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => default_port,
            None => return Err(bad()),
        };
        (h.to_string(), port)
    } else {
        let (h, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (hostport, default_port),
        };
        let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if h.is_empty() || !h.chars().all(host_char) {
            return Err(bad());
        }
        (h.to_string(), port)
    };
    if port == 0 {
        return Err(bad());
    }
    Ok(BrokerUrl { host, port, tls })
}

/// The embedded broker's `listen` address. The one parser: `validate`, the broker and
/// `mqtt check` call it.
pub fn parse_listen(listen: &str) -> Result<SocketAddr, String> {
    listen.parse::<SocketAddr>().map_err(|_| {
        format!(
            "\"{listen}\" is not an address: use e.g. \"127.0.0.1:1883\" (this Pi only) or \"0.0.0.0:1883\" (the network, with [[mqtt.users]])"
        )
    })
}

/// What is wrong with `value` as a part of MQTT topic names (a prefix, the discovery
/// prefix), if anything.
pub fn topic_part_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".into());
    }
    if value.contains(['+', '#']) {
        return Some(
            "must not contain the wildcards `+` or `#`: brokers close the connection of a client that publishes to one".into(),
        );
    }
    if value.contains('\0') {
        return Some("must not contain NUL (\\u0000): MQTT forbids it in topics".into());
    }
    if value.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    if value.starts_with('$') {
        return Some(
            "must not start with `$`: such topics belong to the broker (e.g. $SYS)".into(),
        );
    }
    if value.ends_with('/') {
        return Some("must not end with `/`".into());
    }
    if value.len() > MQTT_MAX_STRING_BYTES {
        return Some(format!(
            "is {} bytes long; an MQTT topic holds at most {MQTT_MAX_STRING_BYTES}",
            value.len()
        ));
    }
    None
}

/// What is wrong with a client id, if anything (refused), and what is merely not portable
/// (a warning).
pub fn client_id_problem(id: &str) -> (Option<String>, Option<String>) {
    if id.is_empty() {
        return (
            Some("must not be empty: leave it out for the default anemone-<station id>".into()),
            None,
        );
    }
    if id.contains('\0') || id.chars().any(char::is_control) {
        return (
            Some("must not contain NUL or control characters".into()),
            None,
        );
    }
    if id.len() > MQTT_MAX_STRING_BYTES {
        return (
            Some(format!(
                "is {} bytes long; MQTT carries at most {MQTT_MAX_STRING_BYTES}",
                id.len()
            )),
            None,
        );
    }
    let portable = id.chars().count() <= PORTABLE_CLIENT_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric());
    if portable {
        return (None, None);
    }
    if id.chars().count() > PORTABLE_CLIENT_ID_CHARS {
        return (
            None,
            Some(format!(
                "\"{id}\" is longer than the {PORTABLE_CLIENT_ID_CHARS} characters every MQTT 3.1.1 broker must accept; most accept it, a strict one may refuse the connection"
            )),
        );
    }
    (None, None)
}

/// The client id in force.
pub fn client_id(m: &MqttConfig, station_id: &str) -> String {
    m.client_id
        .clone()
        .unwrap_or_else(|| format!("anemone-{station_id}"))
}

/// True when the station has a password for its broker (`password` or `password_file`).
pub fn has_password(m: &MqttConfig) -> bool {
    m.password.is_some() || m.password_file.is_some()
}

/// True when a password would go to a broker on another machine without TLS
/// (`mqtt://`): refused unless `allow_insecure = true`. A password for the embedded broker
/// (or the broker found on its port) never leaves this machine.
pub fn password_in_clear(m: &MqttConfig) -> bool {
    has_password(m) && m.broker != "embedded" && parse_broker_url(&m.broker).is_ok_and(|u| !u.tls)
}

/// True when the embedded broker asks every client for a login: when it has any account
/// (`[[mqtt.users]]`, or the station's own `username` + `password`).
pub fn embedded_needs_login(m: &MqttConfig) -> bool {
    !m.users.is_empty() || (m.username.is_some() && has_password(m))
}

/// The user name the station logs in with to its embedded broker.
pub fn station_user(m: &MqttConfig) -> &str {
    m.username.as_deref().unwrap_or(STATION_USER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let u = |s: &str| parse_broker_url(s).map(|u| (u.host, u.port, u.tls));
        assert_eq!(
            u("mqtt://10.0.0.2:1884"),
            Ok(("10.0.0.2".into(), 1884, false))
        );
        assert_eq!(
            u("mqtts://broker.example"),
            Ok(("broker.example".into(), 8883, true))
        );
        assert_eq!(u("mqtt://[::1]:1883"), Ok(("::1".into(), 1883, false)));
        assert_eq!(u("mqtt://[::1]"), Ok(("::1".into(), 1883, false)));
        assert_eq!(u("mqtt://host/"), Ok(("host".into(), 1883, false)));
        for bad in [
            "http://x",
            "mqtt://:1883",
            "mqtt://",
            "mqtt://::1",
            "mqtt://[zz]:1883",
            "mqtt://host:0",
            "mqtt://host:99999",
            "mqtt://host:1883/path",
            "mqtt://ho st",
        ] {
            assert!(u(bad).is_err(), "{bad}");
        }
        let e = parse_broker_url("mqtt://u:hunter22@host").unwrap_err();
        assert_eq!(e, BrokerUrlError::Credentials);
        assert!(!e.to_string().contains("hunter22"));
        let e = parse_broker_url("tcp://u:hunter22@host").unwrap_err();
        assert!(!e.to_string().contains("hunter22"));
    }

    #[test]
    fn topic_parts() {
        assert_eq!(topic_part_problem("anemone/school"), None);
        for bad in ["", "a/#", "a/+/b", "a\0b", "a\nb", "$SYS/x", "a/"] {
            assert!(topic_part_problem(bad).is_some(), "{bad:?}");
        }
        assert!(topic_part_problem(&"a".repeat(70_000)).is_some());
    }

    #[test]
    fn client_ids() {
        assert_eq!(client_id_problem("anemonemast"), (None, None));
        assert_eq!(client_id_problem("anemone-mast"), (None, None));
        assert!(client_id_problem("").0.is_some());
        assert!(client_id_problem("a\0b").0.is_some());
        assert!(client_id_problem(&"a".repeat(70_000)).0.is_some());
        let (refused, warned) = client_id_problem("anemone-a-rather-long-station-name");
        assert!(refused.is_none());
        assert!(warned.is_some());
    }
}
