//! The collector's config file: a small TOML.
//!
//! ```toml
//! [mqtt]
//! broker = "mqtt://127.0.0.1:1883"
//! client_id = "collector-1"            # fixed: the broker keeps this session's messages
//! username = "collector"
//! password_file = "/etc/anemone/collector.password"
//! share_group = "collectors"           # optional: several collectors share the readings
//! topic_prefix = "anemone"
//!
//! [postgres]
//! url = "postgresql://collector@127.0.0.1:5432/anemone"
//!
//! [batch]
//! size = 5000
//! interval = "200ms"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anemone::duration::Span;
use serde::Deserialize;

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the collector config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not describe a collector config.
    #[error("the collector config {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value is out of range or contradicts another.
    #[error("the collector config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The password file cannot be read.
    #[error("cannot read the MQTT password file {path} named by [mqtt] password_file: {source}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The whole config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the stations publish.
    pub mqtt: MqttConfig,
    /// Where the readings go.
    pub postgres: PostgresConfig,
    /// How readings are grouped into transactions.
    #[serde(default)]
    pub batch: BatchConfig,
    /// `[web]`: the network page (the station's `[web]` keys); absent: no page.
    #[serde(default)]
    pub web: Option<anemone::config::web::WebConfig>,
}

/// `[mqtt]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:port` (port 1883 when absent).
    pub broker: String,
    /// The client id: fixed per collector, so the broker keeps its session (and the
    /// messages not yet acknowledged) across restarts.
    pub client_id: String,
    /// User name at the broker.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (prefer `password_file`).
    #[serde(default)]
    pub password: Option<String>,
    /// A file whose first line is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Subscribe to the readings through `$share/<group>/…` so several collectors share them.
    #[serde(default)]
    pub share_group: Option<String>,
    /// The stations' topic prefix without the station id (`anemone`).
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Keep-alive.
    #[serde(default = "default_keep_alive")]
    pub keep_alive: Span,
    /// Larger payloads are dead letters.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("broker", &self.broker)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("password_file", &self.password_file)
            .field("share_group", &self.share_group)
            .field("topic_prefix", &self.topic_prefix)
            .finish_non_exhaustive()
    }
}

/// `[postgres]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq-style URL or key=value string (`postgresql://user@host:port/db`).
    pub url: String,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.write_str("PostgresConfig { url: … }")
    }
}

/// `[batch]`: a transaction closes at `size` messages or `interval` after its first one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Messages per transaction at most.
    #[serde(default = "default_batch_size")]
    pub size: usize,
    /// Longest wait between a message's arrival and its commit.
    #[serde(default = "default_batch_interval")]
    pub interval: Span,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            size: default_batch_size(),
            interval: default_batch_interval(),
        }
    }
}

fn default_prefix() -> String {
    "anemone".into()
}
fn default_keep_alive() -> Span {
    Span::secs(30)
}
fn default_max_payload() -> usize {
    64 * 1024
}
fn default_batch_size() -> usize {
    5_000
}
fn default_batch_interval() -> Span {
    Span::millis(200)
}

impl Config {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks a config given as text (`origin` names it in errors).
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        cfg.check(origin)?;
        Ok(cfg)
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: origin.to_string(),
            message,
        };
        self.broker_addr().map_err(invalid)?;
        if self.mqtt.client_id.trim().is_empty() {
            return Err(invalid("[mqtt] client_id is empty: give each collector its own fixed id (e.g. \"collector-1\")".into()));
        }
        if self.mqtt.password.is_some() && self.mqtt.password_file.is_some() {
            return Err(invalid(
                "[mqtt] has both password and password_file: keep one (password_file is better)"
                    .into(),
            ));
        }
        if (self.mqtt.password.is_some() || self.mqtt.password_file.is_some())
            && self.mqtt.username.is_none()
        {
            return Err(invalid(
                "[mqtt] has a password but no username: add username".into(),
            ));
        }
        if let Some(g) = &self.mqtt.share_group {
            if g.is_empty() || g.contains(['/', '+', '#']) {
                return Err(invalid(format!(
                    "[mqtt] share_group `{g}` must be a non-empty name without `/`, `+` or `#`"
                )));
            }
        }
        let p = &self.mqtt.topic_prefix;
        if p.is_empty() || p.contains(['+', '#']) || p.ends_with('/') {
            return Err(invalid(format!("[mqtt] topic_prefix `{p}` must be a topic without wildcards or a trailing `/` (e.g. \"anemone\")")));
        }
        if self.batch.size == 0 || self.batch.size > 100_000 {
            return Err(invalid(format!(
                "[batch] size = {} must be between 1 and 100000",
                self.batch.size
            )));
        }
        let ms = self.batch.interval.as_millis_i64();
        if !(1..=60_000).contains(&ms) {
            return Err(invalid(
                "[batch] interval must be between 1ms and 60s (e.g. \"200ms\")".into(),
            ));
        }
        if self.mqtt.keep_alive.as_millis_i64() < 5_000 {
            return Err(invalid("[mqtt] keep_alive must be at least 5s".into()));
        }
        if self.mqtt.max_payload_bytes < 1024 {
            return Err(invalid(
                "[mqtt] max_payload_bytes must be at least 1024".into(),
            ));
        }
        self.postgres
            .url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| invalid(format!("[postgres] url is not a PostgreSQL connection string ({e}); e.g. \"postgresql://collector@127.0.0.1:5432/anemone\"")))?;
        Ok(())
    }

    /// The broker's host and port from `[mqtt] broker`.
    pub fn broker_addr(&self) -> Result<(String, u16), String> {
        let b = &self.mqtt.broker;
        let rest = b.strip_prefix("mqtt://").ok_or_else(|| {
            format!("[mqtt] broker `{b}` must start with mqtt:// (e.g. \"mqtt://127.0.0.1:1883\"); TLS is not supported by the collector yet: run it beside the broker")
        })?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("[mqtt] broker `{b}`: `{p}` is not a port"))?,
            ),
            None => (rest, 1883),
        };
        if host.is_empty() {
            return Err(format!("[mqtt] broker `{b}` has no host"));
        }
        Ok((host.trim_matches(['[', ']']).to_string(), port))
    }

    /// The password, from the config or its file (first line).
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        if let Some(p) = &self.mqtt.password {
            return Ok(Some(p.clone()));
        }
        let Some(path) = &self.mqtt.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::PasswordFile {
            path: path.clone(),
            source,
        })?;
        Ok(Some(text.lines().next().unwrap_or("").to_string()))
    }

    /// The batch interval as a `Duration`.
    pub fn batch_interval(&self) -> Duration {
        self.batch.interval.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [mqtt]
        broker = "mqtt://127.0.0.1:1884"
        client_id = "c1"
        [postgres]
        url = "host=127.0.0.1 port=5433 user=postgres dbname=anemone"
    "#;

    #[test]
    fn a_small_config_gets_defaults() {
        let c = Config::from_toml(GOOD, "t").unwrap();
        assert_eq!(c.broker_addr().unwrap(), ("127.0.0.1".into(), 1884));
        assert_eq!(c.batch.size, 5_000);
        assert_eq!(c.batch_interval(), Duration::from_millis(200));
        assert_eq!(c.mqtt.topic_prefix, "anemone");
    }

    #[test]
    fn mistakes_are_named() {
        let e = Config::from_toml(&GOOD.replace("mqtt://", "tcp://"), "t").unwrap_err();
        assert!(e.to_string().contains("must start with mqtt://"), "{e}");
        let e = Config::from_toml(&GOOD.replace("client_id", "clientid"), "t").unwrap_err();
        assert!(e.to_string().contains("clientid"), "{e}");
        let e = Config::from_toml(&format!("{GOOD}\n[batch]\nsize = 0\n"), "t").unwrap_err();
        assert!(e.to_string().contains("[batch] size"), "{e}");
        let bad = GOOD.replace(
            "client_id = \"c1\"",
            "client_id = \"c1\"\nshare_group = \"a/b\"",
        );
        let e = Config::from_toml(&bad, "t").unwrap_err();
        assert!(e.to_string().contains("share_group"), "{e}");
        let bad = GOOD.replace(
            "client_id = \"c1\"",
            "client_id = \"c1\"\npassword = \"s3cret\"",
        );
        let e = Config::from_toml(&bad, "t").unwrap_err();
        assert!(
            e.to_string().contains("no username") && !e.to_string().contains("s3cret"),
            "{e}"
        );
    }
}
