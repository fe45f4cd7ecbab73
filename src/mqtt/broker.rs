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
//!
//! # Who may log in
//!
//! With any account — `[[mqtt.users]]` entries, or the station's own `username` and
//! `password` / `password_file` — the embedded broker asks every client for a user name and
//! password and refuses the rest. The station logs in with its own `username` and password
//! when both are configured; otherwise, when the broker has accounts, with the user
//! `anemone-station` and a random password made at each start and never written anywhere.
//! Without accounts the broker takes anonymous clients, which the shared config rules allow
//! only on a loopback address or with `allow_anonymous = true` (warned at every start).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{rules, MqttConfig};

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
    /// How the station logs in to it (`None`: it takes anonymous clients).
    pub login: Option<Login>,
}

/// A user name and password for the embedded broker. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// User name.
    pub username: String,
    password: String,
}

impl Login {
    /// A login.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Login {
        Login {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password, for CONNECT.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The embedded broker's accounts. Its `Debug` shows no password.
#[derive(Clone)]
pub struct Accounts {
    /// User name → password, the station's own account among them.
    pub logins: HashMap<String, String>,
    /// How the station logs in.
    pub station: Login,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut users: Vec<&String> = self.logins.keys().collect();
        users.sort();
        f.debug_struct("Accounts")
            .field("users", &users)
            .field("station", &self.station)
            .finish()
    }
}

/// The embedded broker's accounts and the station's own login, for this config;
/// `Ok(None)` when it takes anonymous clients.
pub fn accounts(m: &MqttConfig) -> Result<Option<Accounts>, String> {
    if !rules::embedded_needs_login(m) {
        return Ok(None);
    }
    let mut map: HashMap<String, String> = m
        .users
        .iter()
        .map(|u| (u.username.clone(), u.password.clone()))
        .collect();
    let username = rules::station_user(m).to_string();
    let password = match (&m.username, &m.password, &m.password_file) {
        (Some(_), Some(p), _) => p.clone(),
        (Some(_), None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read mqtt.password_file {}: {e}", path.display()))?;
            text.lines()
                .next()
                .unwrap_or("")
                .trim_end_matches('\r')
                .to_string()
        }
        _ => random_password()?,
    };
    map.insert(username.clone(), password.clone());
    Ok(Some(Accounts {
        logins: map,
        station: Login::new(username, password),
    }))
}

/// 24 random bytes from the operating system, as hex.
fn random_password() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| {
            "the operating system gave no random bytes for the station's broker password"
                .to_string()
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
    let addr: SocketAddr = match rules::parse_listen(&m.listen) {
        Ok(a) => a,
        Err(e) => {
            let why = format!("mqtt.listen {e}");
            tracing::error!("MQTT publishing is off: {why}. Readings are still stored.");
            return BrokerChoice::Unavailable(why);
        }
    };
    let target = super::loopback(addr);
    match probe(target).await {
        Probe::Mqtt => {
            tracing::info!("An MQTT broker already answers on {target}; publishing to it instead of starting the embedded broker.");
            if !m.users.is_empty() {
                tracing::warn!("The accounts in mqtt.users are not used: they belong to the embedded broker, and the broker already on {target} keeps its own.");
            }
            BrokerChoice::Existing(addr)
        }
        Probe::Other(what) => {
            let why = format!("{target} is held by something that is not an MQTT broker ({what})");
            tracing::error!("The embedded MQTT broker cannot start: {why}. Readings are still stored; free the port or set mqtt.listen / mqtt.broker.");
            BrokerChoice::Unavailable(why)
        }
        Probe::Free => match accounts(m) {
            Err(why) => {
                tracing::error!(
                    "The embedded MQTT broker cannot start: {why}. Readings are still stored."
                );
                BrokerChoice::Unavailable(why)
            }
            Ok(accounts) => start_chosen(addr, accounts).await,
        },
    }
}

async fn start_chosen(addr: SocketAddr, accounts: Option<Accounts>) -> BrokerChoice {
    let logins = accounts.as_ref().map_or(0, |a| a.logins.len());
    match start_embedded_with(addr, accounts).await {
        Ok(b) => {
            if logins == 0 {
                tracing::info!(
                    "Started the embedded MQTT broker on {addr}; it takes anonymous clients."
                );
            } else {
                tracing::info!(
                    "Started the embedded MQTT broker on {addr}; {logins} account(s) may log in."
                );
            }
            BrokerChoice::Embedded(b)
        }
        Err(e) => {
            tracing::error!(
                "The embedded MQTT broker cannot start: {e}. Readings are still stored."
            );
            BrokerChoice::Unavailable(e.to_string())
        }
    }
}

/// Looks at what answers on `addr`: nothing, an MQTT broker, or something else.
pub async fn probe(addr: SocketAddr) -> Probe {
    probe_as(addr, None).await
}

/// Like [`probe`], logging in with `login`.
pub async fn probe_as(addr: SocketAddr, login: Option<&Login>) -> Probe {
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await;
    let mut stream = match connect {
        Err(_) => return Probe::Other("no answer to a TCP connection within 2 s".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Probe::Free,
        Ok(Err(e)) => return Probe::Other(e.to_string()),
        Ok(Ok(s)) => s,
    };
    let hello = connect_packet(&format!("anemone-probe-{}", std::process::id()), login);
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

/// An MQTT 3.1.1 CONNECT with a clean session, with `login` or no credentials (each
/// string cut to 30 bytes, so the packet stays under 128 bytes and its length one byte).
fn connect_packet(client_id: &str, login: Option<&Login>) -> Vec<u8> {
    fn field(p: &mut Vec<u8>, s: &[u8]) {
        p.extend_from_slice(&(s.len() as u16).to_be_bytes());
        p.extend_from_slice(s);
    }
    let cut = |s: &str| -> Vec<u8> { s.as_bytes()[..s.len().min(30)].to_vec() };
    let flags = if login.is_some() { 0xC2 } else { 0x02 };
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x0A];
    field(&mut body, &cut(client_id));
    if let Some(l) = login {
        field(&mut body, l.username.as_bytes());
        field(&mut body, l.password.as_bytes());
    }
    let mut p = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        p.push(byte);
        if len == 0 {
            break;
        }
    }
    p.extend_from_slice(&body);
    p
}

/// The rumqttd config: one MQTT 3.1.1 listener, sized for a small Pi (a few dozen
/// clients, about 1 MiB of log per subscription filter), with these accounts (user →
/// password; `None`: anonymous clients are taken).
pub fn rumqttd_config(addr: SocketAddr, auth: Option<HashMap<String, String>>) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 500,
        auth,
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

/// Starts rumqttd on `addr`, taking anonymous clients, on a thread of its own and waits
/// until it answers.
pub async fn start_embedded(addr: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
    start_embedded_with(addr, None).await
}

/// Starts rumqttd on `addr` with these accounts and the station's login among them (see
/// [`accounts`]; `None`: anonymous clients), on a thread of its own, and waits until it
/// answers the station's login.
pub async fn start_embedded_with(
    addr: SocketAddr,
    accounts: Option<Accounts>,
) -> Result<EmbeddedBroker, BrokerError> {
    // rumqttd only logs a failed bind on its thread: find out here first.
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| BrokerError::Bind { addr, source })?;
    let (auth, login) = match accounts {
        Some(a) => (Some(a.logins), Some(a.station)),
        None => (None, None),
    };
    let config = rumqttd_config(addr, auth);
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
        if probe_as(target, login.as_ref()).await == Probe::Mqtt {
            return Ok(EmbeddedBroker { addr, login });
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
        let p = connect_packet("abc", None);
        assert_eq!(p[0], 0x10);
        assert_eq!(usize::from(p[1]), p.len() - 2);
        assert_eq!(&p[2..8], &[0, 4, b'M', b'Q', b'T', b'T']);
        assert_eq!(&p[p.len() - 3..], b"abc");
        let login = Login::new("user", "a".repeat(200));
        let p = connect_packet("abc", Some(&login));
        assert_eq!(p[10], 0xC2, "user name and password flags");
        // Two length bytes: 10 + 5 + 6 + 202 = 223 = 0x5F + 1·128.
        assert_eq!(&p[1..3], &[0xDF, 0x01]);
        assert_eq!(p.len(), 3 + 223);
        assert!(!format!("{login:?}").contains("aaa"));
    }

    /// A free port on loopback (never 1883).
    fn free_addr() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        l.local_addr().expect("local addr")
    }

    #[tokio::test]
    async fn embedded_broker_with_accounts_refuses_anonymous_and_wrong_passwords() {
        let m = MqttConfig {
            users: vec![crate::config::BrokerUser {
                username: "lab".into(),
                password: "lab-pw-1".into(),
            }],
            ..MqttConfig::default()
        };
        let Ok(Some(accounts)) = accounts(&m) else {
            panic!("accounts expected");
        };
        assert_eq!(accounts.station.username, rules::STATION_USER);
        assert_eq!(
            accounts.station.password().len(),
            48,
            "a generated password"
        );
        assert!(!format!("{accounts:?}").contains(accounts.station.password()));
        let addr = free_addr();
        let broker = start_embedded_with(addr, Some(accounts)).await;
        let Ok(broker) = broker else {
            panic!("{broker:?}");
        };
        assert!(broker.login.is_some());
        assert_eq!(probe_as(addr, broker.login.as_ref()).await, Probe::Mqtt);
        assert_eq!(
            probe_as(addr, Some(&Login::new("lab", "lab-pw-1"))).await,
            Probe::Mqtt
        );
        for refused in [
            None,
            Some(Login::new("lab", "lab-pw-2")),
            Some(Login::new("nobody", "lab-pw-1")),
            Some(Login::new(rules::STATION_USER, "guess")),
        ] {
            let answer = probe_as(addr, refused.as_ref()).await;
            assert!(
                matches!(&answer, Probe::Other(why) if why.contains("closed")),
                "{refused:?}: {answer:?}"
            );
        }
    }

    #[test]
    fn the_station_logs_in_with_its_configured_password() {
        let m = MqttConfig {
            username: Some("station".into()),
            password: Some("st-pw".into()),
            ..MqttConfig::default()
        };
        let Ok(Some(a)) = accounts(&m) else {
            panic!("accounts expected");
        };
        assert_eq!(a.station, Login::new("station", "st-pw"));
        assert_eq!(a.logins.get("station").map(String::as_str), Some("st-pw"));
        assert!(matches!(accounts(&MqttConfig::default()), Ok(None)));
    }
}
