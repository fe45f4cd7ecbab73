//! The embedded broker for the zero-setup default (`[mqtt] broker = "embedded"`).
//!
//! Anemone runs rumqttd in-process on `[mqtt] listen` (127.0.0.1:1883 by default;
//! `0.0.0.0:1883` lets a classroom's laptops subscribe). rumqttd's `start()` blocks and has
//! no shutdown, so it runs on a thread of its own for the life of the process.
//!
//! Before starting it, Anemone looks at the port:
//! * nothing listens: the embedded broker starts there;
//! * an MQTT broker answers (a Mosquitto on the Pi, a CI machine's broker): Anemone publishes
//!   to that broker instead and logs so;
//! * something else holds it: Anemone says which port and keeps storing; the readings are
//!   published by a later run once the port is free or `broker` points elsewhere.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::MqttConfig;

/// Which broker the daemon publishes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerChoice {
    /// The in-process broker, started by us.
    Embedded(EmbeddedBroker),
    /// An MQTT broker already answered on the embedded broker's address.
    Existing(SocketAddr),
    /// `broker = "mqtt://…"` or `"mqtts://…"`.
    External,
    /// No broker can be used; why.
    Unavailable(String),
    /// `[mqtt] enabled = false`.
    Disabled,
}

/// A running in-process broker (it runs until the process exits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedBroker {
    /// Where it listens.
    pub addr: SocketAddr,
}

/// What answers on a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Nothing listens.
    Free,
    /// An MQTT broker (it answered CONNECT with CONNACK).
    Mqtt,
    /// Something that is not an MQTT broker, or cannot be reached; what happened.
    Other(String),
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The broker thread could not be started.
    #[error("cannot start the broker thread: {0}")]
    Thread(std::io::Error),
    /// It started but does not answer.
    #[error("the embedded broker on {0} does not answer")]
    NoAnswer(SocketAddr),
}

/// Chooses the broker for this config, starting the embedded one where configured and free.
pub async fn choose_broker(m: &MqttConfig) -> BrokerChoice {
    if !m.enabled {
        return BrokerChoice::Disabled;
    }
    if m.broker != "embedded" {
        return BrokerChoice::External;
    }
    let addr: SocketAddr = match m.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            let why = format!("mqtt.listen \"{}\" is not an address", m.listen);
            tracing::error!("MQTT publishing is off: {why}. Readings are still stored.");
            return BrokerChoice::Unavailable(why);
        }
    };
    let target = super::loopback(addr);
    match probe(target).await {
        Probe::Mqtt => {
            tracing::info!("An MQTT broker already answers on {target}; publishing to it instead of starting the embedded broker.");
            BrokerChoice::Existing(addr)
        }
        Probe::Other(what) => {
            let why = format!("{target} is held by something that is not an MQTT broker ({what})");
            tracing::error!("The embedded MQTT broker cannot start: {why}. Readings are still stored; free the port or set mqtt.listen / mqtt.broker.");
            BrokerChoice::Unavailable(why)
        }
        Probe::Free => match start_embedded(addr).await {
            Ok(b) => {
                tracing::info!("Started the embedded MQTT broker on {addr}.");
                BrokerChoice::Embedded(b)
            }
            Err(e) => {
                tracing::error!(
                    "The embedded MQTT broker cannot start: {e}. Readings are still stored."
                );
                BrokerChoice::Unavailable(e.to_string())
            }
        },
    }
}

/// Looks at what answers on `addr`: nothing, an MQTT broker, or something else.
pub async fn probe(addr: SocketAddr) -> Probe {
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await;
    let mut stream = match connect {
        Err(_) => return Probe::Other("no answer to a TCP connection within 2 s".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Probe::Free,
        Ok(Err(e)) => return Probe::Other(e.to_string()),
        Ok(Ok(s)) => s,
    };
    let hello = connect_packet(&format!("anemone-probe-{}", std::process::id()));
    let exchange = async {
        stream.write_all(&hello).await?;
        let mut buf = [0u8; 4];
        let n = stream.read(&mut buf).await?;
        Ok::<_, std::io::Error>((n, buf))
    };
    let probe = match tokio::time::timeout(Duration::from_secs(2), exchange).await {
        Ok(Ok((n, buf))) if n >= 1 && buf[0] == 0x20 => Probe::Mqtt,
        Ok(Ok((0, _))) => Probe::Other("it closed the connection on an MQTT CONNECT".into()),
        Ok(Ok(_)) => Probe::Other("it answered an MQTT CONNECT with something else".into()),
        Ok(Err(e)) => Probe::Other(e.to_string()),
        Err(_) => Probe::Other("it did not answer an MQTT CONNECT within 2 s".into()),
    };
    if probe == Probe::Mqtt {
        // DISCONNECT, so no will or session lingers.
        let _ = stream.write_all(&[0xE0, 0x00]).await;
    }
    probe
}

/// An MQTT 3.1.1 CONNECT with a clean session and no credentials.
fn connect_packet(client_id: &str) -> Vec<u8> {
    let id = client_id.as_bytes();
    let id = &id[..id.len().min(100)];
    let mut p = vec![0x10, (10 + 2 + id.len()) as u8];
    p.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A]);
    p.extend_from_slice(&(id.len() as u16).to_be_bytes());
    p.extend_from_slice(id);
    p
}

/// The rumqttd config: one MQTT 3.1.1 listener, sized for a small Pi (a few dozen
/// clients, about 1 MiB of log per subscription filter).
pub fn rumqttd_config(addr: SocketAddr) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "anemone-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let mut v4 = HashMap::new();
    v4.insert("1".to_string(), server);
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            max_segment_size: 256 * 1024,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(v4),
        ..Default::default()
    }
}

/// Starts rumqttd on `addr` on a thread of its own and waits until it answers.
pub async fn start_embedded(addr: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
    // rumqttd only logs a failed bind on its thread: find out here first.
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| BrokerError::Bind { addr, source })?;
    let config = rumqttd_config(addr);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(
                    "The embedded MQTT broker stopped: {e}. Readings are still stored."
                );
            }
        })
        .map_err(BrokerError::Thread)?;
    let target = super::loopback(addr);
    let limit = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < limit {
        if probe(target).await == Probe::Mqtt {
            return Ok(EmbeddedBroker { addr });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BrokerError::NoAnswer(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packet_is_well_formed() {
        let p = connect_packet("abc");
        assert_eq!(p[0], 0x10);
        assert_eq!(usize::from(p[1]), p.len() - 2);
        assert_eq!(&p[2..8], &[0, 4, b'M', b'Q', b'T', b'T']);
        assert_eq!(&p[p.len() - 3..], b"abc");
    }
}
