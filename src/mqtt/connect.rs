//! How to reach the broker: address, TLS (rustls on `ring`, server certificate verified),
//! credentials and client certificates (what a failed connection means in words is
//! [`super::diagnose`]).
//!
//! * `mqtts://host:8883` verifies the broker's certificate against `ca_file` when given,
//!   else against the system's roots (`/etc/ssl/certs`, via `rustls-native-certs`; on a Pi
//!   that is the `ca-certificates` package). The host name in the URL must match the
//!   certificate (an IP address needs an IP SAN).
//! * `username` with `password` or `password_file` (first line). A password is never sent
//!   over plain `mqtt://` unless `allow_insecure = true`, and is never logged.
//! * `client_cert` + `client_key` (PEM) for brokers that require client certificates.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::wire;
use crate::config::Config;
pub use crate::config::Protocol;

/// A setting that keeps the broker from being reached, found before connecting.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `[mqtt] broker` is not `mqtt://host:port` or `mqtts://host:port`; why (the config
    /// rules' message, which never repeats credentials).
    #[error("mqtt.broker: {0}")]
    BadBroker(String),
    /// A password over plain TCP without `allow_insecure`.
    #[error("refusing to send the MQTT password unencrypted over mqtt://: use mqtts:// or set mqtt.allow_insecure = true on a trusted network")]
    InsecurePassword,
    /// The password file could not be read.
    #[error("cannot read mqtt.password_file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file (CA, client certificate or key) could not be read or holds nothing usable.
    #[error("cannot use {key} {path}: {reason}")]
    Pem {
        /// The config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No CA certificates on this system and no `ca_file`.
    #[error("no system CA certificates found for mqtts:// ({0}): install the ca-certificates package or set mqtt.ca_file")]
    NoRoots(String),
    /// rustls refused the TLS settings (e.g. a key that does not match the certificate).
    #[error("TLS settings rejected: {0}")]
    Tls(#[from] rustls::Error),
}

/// A password that never shows up in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Everything needed to open a connection, checked and loaded once.
#[derive(Clone)]
pub struct ConnectSettings {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
    /// MQTT client id.
    pub client_id: String,
    /// Username, if any.
    pub username: Option<String>,
    password: Option<Secret>,
    /// MQTT keep-alive (whole seconds, at least 1).
    pub keep_alive: Duration,
    /// How long a TCP + TLS + CONNECT may take.
    pub connect_timeout: Duration,
    /// The MQTT version asked for.
    pub protocol: Protocol,
    /// The version the broker took, once known (shared by clones of these settings, so a
    /// publisher decides once and keeps it across reconnects).
    spoken: Arc<Mutex<Option<wire::Version>>>,
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("url", &self.url())
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ConnectSettings {
    /// Settings for the configured broker; `target` overrides the address (the embedded
    /// broker, or the broker found on its port).
    pub fn from_config(cfg: &Config, target: Option<SocketAddr>) -> Result<Self, ConnectError> {
        let m = &cfg.mqtt;
        let (host, port, tls) = match target {
            Some(addr) => (addr.ip().to_string(), addr.port(), false),
            None => parse_broker(&m.broker)?,
        };
        let password = match (&m.password, &m.password_file) {
            (Some(p), _) => Some(Secret(p.clone())),
            (None, Some(path)) => Some(read_password(path)?),
            (None, None) => None,
        };
        if password.is_some() && crate::config::rules::password_in_clear(m) && !m.allow_insecure {
            return Err(ConnectError::InsecurePassword);
        }
        let tls_config = if tls {
            Some(Arc::new(tls_client_config(
                m.ca_file.as_deref(),
                m.client_cert.as_deref().zip(m.client_key.as_deref()),
            )?))
        } else {
            None
        };
        // What CONNECT can carry (whole seconds, 1..=65 535), so the pings follow it.
        let keep_alive = Duration::from_secs(u64::from(keep_alive_secs(m.keep_alive.0)));
        Ok(ConnectSettings {
            host,
            port,
            tls,
            client_id: crate::config::rules::client_id(m, &cfg.station.id),
            username: m.username.clone(),
            password,
            keep_alive,
            connect_timeout: Duration::from_secs(10),
            protocol: m.protocol,
            spoken: Arc::new(Mutex::new(None)),
            tls_config,
        })
    }

    /// `mqtt://host:port` or `mqtts://host:port`, for logs (no credentials).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// `host:port`, for DNS and TCP checks.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The MQTT version the broker accepted, once a connection was made.
    pub fn spoken(&self) -> Option<wire::Version> {
        self.spoken.lock().map(|v| *v).unwrap_or(None)
    }

    /// Keeps the version the broker accepted for later connections.
    pub(crate) fn remember(&self, version: wire::Version) {
        if let Ok(mut v) = self.spoken.lock() {
            *v = Some(version);
        }
    }

    /// The rustls client config (mqtts only).
    pub fn tls_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls_config.clone()
    }

    /// The password, for CONNECT (only ever sent with a username).
    pub fn password(&self) -> Option<&[u8]> {
        self.password.as_ref().map(|s| s.0.as_bytes())
    }

    /// The CONNECT of a clean session with these credentials and keep-alive.
    pub fn connect_packet<'a>(
        &'a self,
        client_id: &'a str,
        will: Option<wire::Will<'a>>,
    ) -> wire::Connect<'a> {
        let username = self.username.as_deref();
        wire::Connect {
            client_id,
            keep_alive: keep_alive_secs(self.keep_alive),
            clean_session: true,
            will,
            username,
            password: username.and(self.password()),
        }
    }
}

/// The one broker-URL parser of the config rules (`validate` calls it too).
fn parse_broker(broker: &str) -> Result<(String, u16, bool), ConnectError> {
    crate::config::parse_broker_url(broker)
        .map(|u| (u.host, u.port, u.tls))
        .map_err(|e| ConnectError::BadBroker(e.to_string()))
}

fn read_password(path: &Path) -> Result<Secret, ConnectError> {
    crate::config::secrets::password_file_line(path)
        .map(Secret)
        .map_err(|source| ConnectError::PasswordFile {
            path: path.to_path_buf(),
            source,
        })
}

fn pem_err(key: &'static str, path: &Path, reason: impl fmt::Display) -> ConnectError {
    ConnectError::Pem {
        key,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(key, path, e))?;
    if certs.is_empty() {
        return Err(pem_err(key, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// The rustls client config: `ring`, TLS 1.2/1.3, the broker verified against `ca_file` or
/// the system's roots, and the client certificate if given.
pub fn tls_client_config(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs("mqtt.ca_file", path)? {
                roots
                    .add(cert)
                    .map_err(|e| pem_err("mqtt.ca_file", path, e))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "the system store is empty".into());
                return Err(ConnectError::NoRoots(why));
            }
        }
    }
    let builder = builder.with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let certs = read_certs("mqtt.client_cert", cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| pem_err("mqtt.client_key", key, e))?;
            builder.with_client_auth_cert(certs, key_der)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// Keep-alive in whole seconds for CONNECT (at least 1, at most 18 h).
pub fn keep_alive_secs(d: Duration) -> u16 {
    u16::try_from(d.as_secs().max(1)).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_and_the_connection_read_broker_urls_alike() {
        for url in [
            "mqtt://[::1]",
            "mqtt://[::1]:1884",
            "mqtts://broker.example",
            "mqtt://10.0.0.2:1884/",
            "mqtt://[::1]x",
            "mqtt://::1",
            "mqtt://host:0",
            "mqtt://host:1883/path",
            "mqtt://u:p@host",
            "tcp://host",
        ] {
            let text = format!("[mqtt]\nbroker = \"{url}\"\n");
            let (config, ps) = crate::config::validate_text(&text);
            let Some(config) = config else {
                panic!("{url}: {ps:?}");
            };
            let connects = ConnectSettings::from_config(&config, None).is_ok();
            assert_eq!(ps.is_empty(), connects, "{url}: {ps:?}");
        }
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker("mqtt://10.0.0.2:1884").ok(),
            Some(("10.0.0.2".into(), 1884, false))
        );
        assert_eq!(
            parse_broker("mqtts://broker.example").ok(),
            Some(("broker.example".into(), 8883, true))
        );
        assert_eq!(
            parse_broker("mqtt://[::1]:1883").ok(),
            Some(("::1".into(), 1883, false))
        );
        assert!(parse_broker("http://x").is_err());
        assert!(parse_broker("mqtt://:1883").is_err());
    }

    #[test]
    fn password_needs_tls_or_consent() {
        let mut cfg = Config::builtin();
        cfg.mqtt.broker = "mqtt://127.0.0.1:1883".into();
        cfg.mqtt.username = Some("u".into());
        cfg.mqtt.password = Some("hunter2".into());
        assert!(matches!(
            ConnectSettings::from_config(&cfg, None),
            Err(ConnectError::InsecurePassword)
        ));
        cfg.mqtt.allow_insecure = true;
        let s = ConnectSettings::from_config(&cfg, None).map_err(|e| e.to_string());
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn connect_packet_without_password_and_with_a_long_keep_alive() {
        let mut cfg = Config::builtin();
        cfg.mqtt.broker = "mqtt://127.0.0.1:1883".into();
        cfg.mqtt.username = Some("u".into());
        cfg.mqtt.keep_alive = crate::config::Span::secs(200_000);
        let s = ConnectSettings::from_config(&cfg, None).map_err(|e| e.to_string());
        let Ok(s) = s else {
            panic!("{s:?}");
        };
        let c = s.connect_packet("id", None);
        assert_eq!(c.username, Some("u"));
        assert_eq!(c.password, None, "no password flag without a password");
        assert_eq!(c.keep_alive, u16::MAX);
        assert_eq!(
            s.keep_alive,
            Duration::from_secs(u64::from(u16::MAX)),
            "pings follow what CONNECT announced"
        );
    }

    #[test]
    fn protocol_key_of_the_config() {
        for (text, want) in [
            ("auto", Protocol::Auto),
            ("5", Protocol::V5),
            ("3.1.1", Protocol::V311),
        ] {
            let c = Config::from_toml(&format!("[mqtt]\nprotocol = \"{text}\"\n"), "t");
            assert_eq!(c.map(|c| c.mqtt.protocol).ok(), Some(want), "{text}");
        }
        assert_eq!(Config::builtin().mqtt.protocol, Protocol::Auto);
        assert!(Config::from_toml("[mqtt]\nprotocol = \"4\"\n", "t").is_err());
    }

    #[test]
    fn missing_ca_file_is_named() {
        let e = tls_client_config(Some(Path::new("/nonexistent/ca.pem")), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("mqtt.ca_file"), "{e}");
    }
}
