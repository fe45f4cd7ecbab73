//! The TOML configuration model.
//!
//! One file (`--config PATH`, default `/etc/anemone/anemone.toml` when it exists) with the
//! sections `[station]`, `[hal]`, `[storage]`, `[qc]`, `[mqtt]`, `[derived]`, `[web]` and one `[[sensor]]` entry
//! per sensor. Every key except a sensor's `type` and `id` has a default, and unknown keys
//! are errors. [`validate`] reports every problem in one run.

mod files;
pub mod qc;
pub mod rules;
pub mod secrets;
mod validate;
mod warnings;
pub mod web;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::duration::{parse_span, Span};
pub use crate::hal::HalConfig;
pub use crate::sensors::{OnStartupError, SensorConfig};
pub use files::file_problems;
pub use qc::{Limits, QcConfig, QcRule};
pub use rules::{parse_broker_url, parse_listen, BrokerUrl, BrokerUrlError};
pub use validate::{validate_text, Problem};
pub use warnings::warnings;
pub use web::WebConfig;

use crate::reading::Precision;
use crate::topics::Topics;

/// The commented example printed by `anemone config init`.
pub const EXAMPLE: &str = include_str!("../../etc/anemone.toml");

/// Where the daemon looks for its config when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/anemone/anemone.toml";

/// The station id of a board that says nothing about itself, and the default of versions
/// before the per-board id (a database of such a station keeps it: see `station::run`).
pub const LEGACY_STATION_ID: &str = "anemone";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Who and where the station is.
    #[serde(default)]
    pub station: StationConfig,
    /// Bus paths and simulation.
    #[serde(default)]
    pub hal: HalConfig,
    /// The SQLite database.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Quality-control limits per quantity.
    #[serde(default)]
    pub qc: QcConfig,
    /// MQTT publishing.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// Derived quantities computed from the station's own readings.
    #[serde(default)]
    pub derived: DerivedConfig,
    /// The station's own web page and JSON API.
    #[serde(default)]
    pub web: WebConfig,
    /// The sensors, one `[[sensor]]` entry each.
    #[serde(default, rename = "sensor")]
    pub sensors: Vec<SensorConfig>,
}

/// Default `[station] position_decimals`: 3 decimals of a degree, about 110 m.
pub const DEFAULT_POSITION_DECIMALS: u8 = 3;

/// `[station]`: identity and location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StationConfig {
    /// Short machine id, used in MQTT topics and Home Assistant ids (`[a-z0-9_-]`).
    /// Default: unique per board, `anemone-` and 8 hex digits derived from the board's
    /// serial number (else the machine id and network address; see `hal::identity`).
    pub id: String,
    /// The id derived from the board when the file has none (`id` is it then, unless
    /// changed since).
    #[serde(skip)]
    pub derived_id: Option<String>,
    /// Human name shown on dashboards.
    pub name: String,
    /// Latitude in degrees north.
    pub latitude: f64,
    /// Longitude in degrees east.
    pub longitude: f64,
    /// Height of the barometer above sea level, in metres.
    pub altitude_m: f64,
    /// Decimals of the position as published and shown: `latitude`/`longitude` in MQTT
    /// `meta`, and GPS latitude and longitude readings (MQTT, the page, `read --json`,
    /// exports). Default 3 (about 110 m); 0 to 7. The database keeps what was measured.
    pub position_decimals: u8,
    /// IANA time zone (e.g. `Europe/London`): "today" and daily summaries follow it.
    pub timezone: String,
    /// How long to hold readings while a time service has not yet synchronised the
    /// clock (a Pi has no RTC); they are re-stamped once it has. `"0s"` trusts the clock.
    pub clock_sync_wait: Span,
    /// The station's Ed25519 signing key file (see `signing`): when set, every published
    /// chain head is signed and the public key is in `meta`. Created (mode 0600) at the
    /// first start when absent; refused when others may read it. Default: unset (off).
    pub signing_key: Option<PathBuf>,
}

impl Default for StationConfig {
    fn default() -> Self {
        StationConfig {
            id: LEGACY_STATION_ID.into(),
            derived_id: None,
            name: "Anemone station".into(),
            latitude: 0.0,
            longitude: 0.0,
            altitude_m: 0.0,
            position_decimals: DEFAULT_POSITION_DECIMALS,
            timezone: "UTC".into(),
            clock_sync_wait: Span::secs(15 * 60),
            signing_key: None,
        }
    }
}

impl StationConfig {
    /// The id to run under, given the id the database recorded at its last run
    /// (`recorded`) and whether it holds readings. An explicit id always wins. A derived
    /// id gives way to the old default `anemone` where the database shows that the
    /// station ran under it (recorded, or readings from before ids were recorded), so an
    /// existing station keeps its topics, client id and Home Assistant entities.
    pub fn id_for_store(&self, recorded: Option<&str>, has_readings: bool) -> String {
        let legacy = match recorded {
            Some(r) => r == LEGACY_STATION_ID,
            None => has_readings,
        };
        if self.id_is_derived() && legacy {
            LEGACY_STATION_ID.to_string()
        } else {
            self.id.clone()
        }
    }

    /// True when the id in force is the one derived from the board (no `id` in the file).
    pub fn id_is_derived(&self) -> bool {
        self.derived_id.as_deref() == Some(self.id.as_str())
    }

    /// The station's time zone (UTC if the configured name is not valid; `validate`
    /// reports that case).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// How hard SQLite syncs to the SD card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// WAL + NORMAL: a power cut may roll back the commits made since SQLite last synced
    /// the WAL (at checkpoints: measured up to about 5½ h at the default settings).
    Normal,
    /// WAL + FULL (default): every commit is synced, so a power cut loses at most the
    /// readings not yet committed; about 10 % more bytes written than `normal`.
    #[default]
    Full,
}

/// `[storage]`: the SQLite database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Database file.
    pub path: PathBuf,
    /// How often buffered readings are committed (fewer commits, less SD-card wear).
    pub commit_interval: Span,
    /// How long raw readings are kept (whole commit batches go; see `store::chain`).
    pub retention: Span,
    /// How long minute aggregates are kept; `"0"` (default): forever.
    pub retention_minute: Span,
    /// How long hour aggregates are kept; `"0"` (default): forever. At least `retention`
    /// (hour buckets are the time index into the raw readings).
    pub retention_hour: Span,
    /// How long day aggregates are kept; `"0"` (default): forever.
    pub retention_day: Span,
    /// `full` (default) or `normal`.
    pub synchronous: Synchronous,
    /// Readings held in memory while the disk refuses writes, before loss is counted.
    pub max_buffered: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from("anemone.db"),
            commit_interval: Span::secs(120),
            retention: Span::secs(365 * 86_400),
            retention_minute: Span::secs(0),
            retention_hour: Span::secs(0),
            retention_day: Span::secs(0),
            synchronous: Synchronous::Full,
            max_buffered: 100_000,
        }
    }
}

/// `[derived]`: which derived quantities the pipeline computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DerivedConfig {
    /// Dew point from air temperature and humidity.
    pub dew_point: bool,
    /// Sea-level pressure from station pressure, altitude and temperature.
    pub sea_level_pressure: bool,
    /// Wind gust (highest 3-s mean) from wind speed samples.
    pub wind_gust: bool,
    /// Rain rate and rain today from rain readings.
    pub rain: bool,
    /// Wind chill, where defined.
    pub wind_chill: bool,
    /// Heat index, where defined.
    pub heat_index: bool,
    /// Feels-like temperature.
    pub feels_like: bool,
    /// Salinity (PSS-78) from conductivity.
    pub salinity: bool,
    /// Pressure at the conductivity probe for salinity, dbar (its depth in metres, near
    /// enough; 0 at the surface).
    pub salinity_pressure_dbar: f64,
    /// 2-/10-min means of the water current speed.
    pub current: bool,
}

impl Default for DerivedConfig {
    fn default() -> Self {
        DerivedConfig {
            dew_point: true,
            sea_level_pressure: true,
            wind_gust: true,
            rain: true,
            wind_chill: true,
            heat_index: true,
            feels_like: true,
            salinity: true,
            salinity_pressure_dbar: 0.0,
            current: true,
        }
    }
}

/// `[mqtt] protocol`: which MQTT version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Protocol {
    /// MQTT 5 where the broker speaks it, else MQTT 3.1.1 (decided at the first
    /// connection and kept for the life of the process).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// MQTT 5 only.
    #[serde(rename = "5")]
    V5,
    /// MQTT 3.1.1 only.
    #[serde(rename = "3.1.1")]
    V311,
}

/// `[mqtt]`: publishing to dashboards. Its `Debug` never shows a password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Publish at all.
    pub enabled: bool,
    /// `"embedded"` (an in-process broker), `"mqtt://host:port"` or `"mqtts://host:port"`.
    pub broker: String,
    /// Address the embedded broker listens on (`0.0.0.0:1883` for a classroom).
    pub listen: String,
    /// Topic prefix; default `anemone/<station id>`.
    pub topic_prefix: Option<String>,
    /// MQTT client id; default `anemone-<station id>`.
    pub client_id: Option<String>,
    /// Username for the broker.
    pub username: Option<String>,
    /// Password for the broker (prefer `password_file`).
    pub password: Option<String>,
    /// File whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) to verify the broker; default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    pub client_key: Option<PathBuf>,
    /// Allow a password over plain `mqtt://` (never do this off a trusted LAN).
    pub allow_insecure: bool,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    /// Home Assistant discovery prefix.
    pub discovery_prefix: String,
    /// MQTT keep-alive.
    pub keep_alive: Span,
    /// Backlog messages published per second while live readings keep flowing.
    pub backfill_rate: u32,
    /// Accounts on the embedded broker (`broker = "embedded"`), for the dashboards and
    /// laptops that subscribe: `[[mqtt.users]]` with `username` and `password`. With any
    /// account (or the station's own `username` + `password`), every client must log in.
    pub users: Vec<BrokerUser>,
    /// Let the embedded broker listen beyond this machine (e.g. `0.0.0.0:1883`) without
    /// accounts: anyone on the network can then publish as this station.
    pub allow_anonymous: bool,
    /// MQTT version: `"auto"` (5 where the broker speaks it, else 3.1.1), `"5"`, `"3.1.1"`.
    pub protocol: Protocol,
}

/// One account on the embedded broker. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerUser {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for BrokerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerUser")
            .field("username", &self.username)
            .field("password", &secrets::REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("enabled", &self.enabled)
            .field("broker", &self.broker)
            .field("listen", &self.listen)
            .field("topic_prefix", &self.topic_prefix)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field(
                "password",
                &self.password.as_ref().map(|_| secrets::REDACTED),
            )
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("allow_insecure", &self.allow_insecure)
            .field("discovery", &self.discovery)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("keep_alive", &self.keep_alive)
            .field("backfill_rate", &self.backfill_rate)
            .field("users", &self.users)
            .field("allow_anonymous", &self.allow_anonymous)
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: true,
            broker: "embedded".into(),
            listen: "127.0.0.1:1883".into(),
            topic_prefix: None,
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            allow_insecure: false,
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            keep_alive: Span::secs(30),
            backfill_rate: 50_000,
            users: Vec::new(),
            allow_anonymous: false,
            protocol: Protocol::Auto,
        }
    }
}

/// A config that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file has problems; each names its key and the fix.
    #[error("{path} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file (or `<built-in>`).
        path: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl Config {
    /// Parses and validates config text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let (config, problems) = validate_text(text);
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(ConfigError::Invalid {
                path: origin.to_string(),
                problems,
            }),
        }
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// The built-in simulated station (weather mast + water probe) used when no config
    /// file exists: the example config on simulated buses, database in the current
    /// directory.
    pub fn builtin() -> Config {
        let mut c = match Config::from_toml(EXAMPLE, "<built-in example>") {
            Ok(c) => c,
            // The example is checked by a unit test; this arm is unreachable in a build
            // that passed its tests, and still yields a working (sensor-less) station.
            Err(_) => Config::minimal(),
        };
        c.hal.simulate = true;
        c.station.id = "sim".into();
        c.station.name = "Simulated station".into();
        c.storage.path = PathBuf::from("anemone.db");
        c
    }

    fn minimal() -> Config {
        Config {
            station: StationConfig::default(),
            hal: HalConfig::default(),
            storage: StorageConfig::default(),
            qc: QcConfig::default(),
            mqtt: MqttConfig::default(),
            derived: DerivedConfig::default(),
            web: WebConfig::default(),
            sensors: Vec::new(),
        }
    }

    /// The sensor with this id.
    pub fn sensor(&self, id: &str) -> Option<&SensorConfig> {
        self.sensors.iter().find(|s| s.id == id)
    }

    /// How many decimals each sensor's values get on the wire and in exports.
    pub fn precision(&self) -> Precision {
        let mut p = crate::sensors::precision(&self.sensors);
        p.cap_position(self.station.position_decimals);
        p
    }

    /// The MQTT topic prefix in force.
    pub fn topic_prefix(&self) -> String {
        self.mqtt
            .topic_prefix
            .clone()
            .unwrap_or_else(|| format!("anemone/{}", self.station.id))
    }

    /// Serializes back to TOML.
    ///
    /// A station id derived from the board is left out, so a file written on one Pi and
    /// copied to another does not pin the first one's id there.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        if !self.station.id_is_derived() {
            return toml::to_string(self);
        }
        let mut table = toml::Table::try_from(self)?;
        if let Some(toml::Value::Table(station)) = table.get_mut("station") {
            station.remove("id");
        }
        toml::to_string(&table)
    }
}

impl Topics {
    /// The topics for this config.
    pub fn new(cfg: &Config) -> Topics {
        Topics::from_parts(
            cfg.topic_prefix(),
            &cfg.mqtt.discovery_prefix,
            &cfg.station.id,
        )
    }
}

impl crate::sensors::StationFacts for Config {
    fn hal(&self) -> &HalConfig {
        &self.hal
    }
    fn site(&self) -> (f64, f64) {
        (self.station.longitude, self.station.altitude_m)
    }
    fn sensors(&self) -> &[SensorConfig] {
        &self.sensors
    }
    fn latitude(&self) -> f64 {
        self.station.latitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Quantity;

    #[test]
    fn example_is_valid_and_round_trips() {
        let c = Config::from_toml(EXAMPLE, "example").unwrap();
        assert!(!c.sensors.is_empty());
        let text = c.to_toml().unwrap();
        let again = Config::from_toml(&text, "round trip").unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn builtin_is_simulated_weather_mast_and_water_probe() {
        let c = Config::builtin();
        assert!(c.hal.simulate);
        let kinds: Vec<&str> = c.sensors.iter().map(|s| s.kind.type_name()).collect();
        for k in [
            "bme280",
            "ds18b20",
            "anemometer",
            "wind_vane",
            "rain_gauge",
            "ph_ezo",
        ] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
    }

    #[test]
    fn empty_file_is_a_valid_config() {
        let c = Config::from_toml("", "empty").unwrap();
        assert_eq!(c.storage.commit_interval, Span::secs(120));
        assert_eq!(
            c.hal.w1_root,
            PathBuf::from(crate::hal::paths::DEFAULT_W1_ROOT)
        );
        assert_eq!(c.topic_prefix(), format!("anemone/{}", c.station.id));
    }

    #[test]
    fn an_existing_station_keeps_the_old_default_id() {
        let derived = StationConfig {
            id: "anemone-1a2b3c4d".into(),
            derived_id: Some("anemone-1a2b3c4d".into()),
            ..StationConfig::default()
        };
        // A new database, or one of this board: the derived id.
        assert_eq!(derived.id_for_store(None, false), "anemone-1a2b3c4d");
        assert_eq!(
            derived.id_for_store(Some("anemone-1a2b3c4d"), true),
            "anemone-1a2b3c4d"
        );
        // Readings from before ids were recorded, or the old default recorded: kept.
        assert_eq!(derived.id_for_store(None, true), LEGACY_STATION_ID);
        assert_eq!(
            derived.id_for_store(Some("anemone"), true),
            LEGACY_STATION_ID
        );
        // A card cloned from another board's: this board's id.
        assert_eq!(
            derived.id_for_store(Some("anemone-99999999"), true),
            "anemone-1a2b3c4d"
        );
        // An explicit id always wins.
        let explicit = StationConfig {
            id: "mast".into(),
            ..StationConfig::default()
        };
        assert_eq!(explicit.id_for_store(Some("anemone"), true), "mast");
    }

    /// Without `[station] id`, the id comes from the board (here a fake sysfs tree): two
    /// boards, two ids; the same board, the same id at every start; an explicit id wins.
    #[test]
    fn default_station_id_is_unique_per_board() {
        let dir = tempfile::tempdir().unwrap();
        let mut ids = Vec::new();
        for (board, serial) in [("a", "10000000a1b2c3d4"), ("b", "10000000e5f60718")] {
            let sys = dir.path().join(board);
            let dt = sys.join("firmware/devicetree/base");
            std::fs::create_dir_all(&dt).unwrap();
            std::fs::write(dt.join("serial-number"), format!("{serial}\0")).unwrap();
            let text = format!(
                "[hal]\nsys_root = \"{}\"\nmachine_id_file = \"{}\"\n",
                sys.display(),
                dir.path().join("machine-id").display()
            );
            let c = Config::from_toml(&text, "board").unwrap();
            assert!(c.station.id_is_derived());
            assert!(c.station.id.starts_with("anemone-"), "{}", c.station.id);
            assert_eq!(c.topic_prefix(), format!("anemone/{}", c.station.id));
            // Stable across restarts.
            assert_eq!(
                Config::from_toml(&text, "again").unwrap().station.id,
                c.station.id
            );
            // Not written into a config file.
            let written = c.to_toml().unwrap();
            assert!(!written.contains(&c.station.id), "{written}");
            assert_eq!(Config::from_toml(&written, "written").unwrap(), c);
            // An id set since (as tests and tools do) is an explicit one.
            let mut renamed = c.clone();
            renamed.station.id = "renamed".into();
            assert!(!renamed.station.id_is_derived());
            assert!(renamed.to_toml().unwrap().contains("id = \"renamed\""));
            let explicit =
                Config::from_toml(&format!("[station]\nid = \"mast\"\n{text}"), "x").unwrap();
            assert_eq!(explicit.station.id, "mast");
            assert!(!explicit.station.id_is_derived());
            ids.push(c.station.id);
        }
        assert_ne!(ids[0], ids[1]);
        // Nothing known about the board: the old default.
        let text = format!(
            "[hal]\nsys_root = \"{}\"\nmachine_id_file = \"{}\"\n",
            dir.path().join("none").display(),
            dir.path().join("none-id").display()
        );
        let c = Config::from_toml(&text, "bare").unwrap();
        assert_eq!(c.station.id, LEGACY_STATION_ID);
        assert!(!c.station.id_is_derived());
    }

    #[test]
    fn embedded_broker_accounts_round_trip_and_never_show_in_debug() {
        let text = "[mqtt]\nlisten = \"0.0.0.0:1883\"\nusername = \"station\"\npassword = \"st-secret-1\"\nusers = [{ username = \"lab\", password = \"lab-secret-2\" }]\n";
        let c = Config::from_toml(text, "t").unwrap();
        assert_eq!(c.mqtt.users.len(), 1);
        let again = Config::from_toml(&c.to_toml().unwrap(), "round trip").unwrap();
        assert_eq!(c, again);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("st-secret-1"), "{dbg}");
        assert!(!dbg.contains("lab-secret-2"), "{dbg}");
        assert!(dbg.contains("lab"), "{dbg}");
    }

    #[test]
    fn qc_overrides_merge_with_defaults() {
        let c =
            Config::from_toml("[qc]\nair_temperature = { min = -10, max = 40 }\n", "t").unwrap();
        assert_eq!(c.qc.limits(Quantity::AirTemperature).max, 40.0);
        assert_eq!(c.qc.limits(Quantity::Ph).max, 14.0);
    }
}
