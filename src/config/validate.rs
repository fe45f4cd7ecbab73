//! `anemone validate`: every problem of a config file in one run.
//!
//! The file is first parsed as a TOML document. Each section is then deserialized on its
//! own; when serde refuses a key, that key is reported and set aside (its default takes
//! over) and the section is tried again, so one typo does not hide the next problem.
//! Finally the cross-section rules are checked (unique ids, known time zone, free pins…).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::DeserializeOwned;

use super::rules::{self, client_id_problem, span_problem, topic_part_problem};
use super::secrets;
use super::{
    Config, DerivedConfig, HalConfig, MqttConfig, QcConfig, SensorConfig, Span, StationConfig,
    StorageConfig, WebConfig,
};
use crate::sensors::SensorKind;
use crate::sensors::COMMON_KEYS;

/// One problem in a config file: the key it concerns and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `station.timezone` or `sensor #2 ("wind").interval`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

const SECTIONS: [&str; 8] = [
    "station", "hal", "storage", "qc", "mqtt", "derived", "web", "sensor",
];

/// Parses and checks config text. Returns the config when it could be built (possibly
/// with defaults standing in for bad keys) and every problem found; the config is only
/// valid when the list is empty. No problem shows the value of a secret key
/// ([`secrets`]): `run`, `validate` and `mqtt check` all print these.
pub fn validate_text(text: &str) -> (Option<Config>, Vec<Problem>) {
    let (config, problems) = check_text(text);
    let secret_values = secrets::secret_values(text);
    let problems = problems
        .into_iter()
        .map(|p| Problem {
            key: secrets::redact(&p.key, &secret_values),
            message: secrets::redact(&p.message, &secret_values),
        })
        .collect();
    (config, problems)
}

fn check_text(text: &str) -> (Option<Config>, Vec<Problem>) {
    let mut problems = Problems(Vec::new());
    let doc: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.add(
                "(file)",
                format!(
                    "not valid TOML at {} (the line is not shown: it may hold a password)",
                    secrets::syntax_error(text, &e)
                ),
            );
            return (None, problems.0);
        }
    };
    let mut doc = doc;
    for key in doc.keys().cloned().collect::<Vec<_>>() {
        if !SECTIONS.contains(&key.as_str()) {
            let hint = did_you_mean(&key, &SECTIONS);
            problems.add(
                key.clone(),
                format!(
                    "unknown section.{hint} Known sections: [station], [hal], [storage], [qc], [mqtt], [derived], [web], [[sensor]]"
                ),
            );
            doc.remove(&key);
        }
    }
    let explicit_id = doc
        .get("station")
        .and_then(|s| s.as_table())
        .is_some_and(|s| s.contains_key("id"));
    let mut station: StationConfig = section(&mut doc, "station", &mut problems);
    let hal: HalConfig = section(&mut doc, "hal", &mut problems);
    if !explicit_id {
        // Unique per board (the board's serial number), not the same on every Pi.
        if let Some(id) = crate::hal::BoardIds::read(&hal).station_id() {
            station.id = id.clone();
            station.derived_id = Some(id);
        }
    }
    let storage: StorageConfig = section(&mut doc, "storage", &mut problems);
    let qc: QcConfig = section(&mut doc, "qc", &mut problems);
    let mqtt: MqttConfig = section(&mut doc, "mqtt", &mut problems);
    let derived: DerivedConfig = section(&mut doc, "derived", &mut problems);
    let web: WebConfig = section(&mut doc, "web", &mut problems);
    let sensors = sensors(doc.remove("sensor"), &mut problems);

    let config = Config {
        station,
        hal,
        storage,
        qc,
        mqtt,
        derived,
        web,
        sensors: sensors.iter().map(|(_, s)| s.clone()).collect(),
    };
    check_station(&config, &mut problems);
    check_storage(&config, &mut problems);
    check_qc(&config, &mut problems);
    check_mqtt(&config, &mut problems);
    problems.0.extend(super::web::check_web(&config.web));
    check_sensors(&config, &sensors, &mut problems);
    (Some(config), problems.0)
}

fn section<T: DeserializeOwned + Default>(
    doc: &mut toml::Table,
    name: &str,
    problems: &mut Problems,
) -> T {
    match doc.remove(name) {
        None => T::default(),
        Some(toml::Value::Table(t)) => lenient(t, name, problems).unwrap_or_default(),
        Some(other) => {
            problems.add(
                name,
                format!(
                    "must be a table `[{name}]`, not a {}; defaults are used",
                    other.type_str()
                ),
            );
            T::default()
        }
    }
}

/// Deserializes `table`, reporting and setting aside each key serde refuses.
fn lenient<T: DeserializeOwned>(
    mut table: toml::Table,
    path: &str,
    problems: &mut Problems,
) -> Option<T> {
    for _ in 0..64 {
        let err = match try_de::<T>(&table) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        // An unknown field of this table (one inside a nested table, e.g. an inline
        // `users` entry, is the nested key's problem: found below).
        if let Some(field) =
            backticked_after(&err, "unknown field `").filter(|f| table.contains_key(f))
        {
            let expected = expected_names(&err);
            let names: Vec<&str> = expected.iter().map(String::as_str).collect();
            let hint = did_you_mean(&field, &names);
            let known = if names.is_empty() {
                String::new()
            } else {
                format!(" Known keys here: {}.", names.join(", "))
            };
            problems.add(join(path, &field), format!("unknown key.{hint}{known}"));
            table.remove(&field);
            continue;
        }
        // Find the key whose removal changes the error: that key is the culprit.
        let culprit = table.keys().find(|k| {
            let mut without = table.clone();
            without.remove(*k);
            match try_de::<T>(&without) {
                Ok(_) => true,
                Err(e2) => e2 != err,
            }
        });
        match culprit.cloned() {
            Some(key) => {
                problems.add(join(path, &key), fix_message(&key, &err));
                table.remove(&key);
            }
            None => {
                let msg = if let Some(f) = backticked_after(&err, "missing field `") {
                    format!("missing required key `{f}`: add it")
                } else {
                    err
                };
                problems.add(path, msg);
                return None;
            }
        }
    }
    problems.add(path, "too many problems in this section to continue");
    None
}

fn try_de<T: DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(table.clone())).map_err(|e| e.message().trim().to_string())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn fix_message(key: &str, err: &str) -> String {
    if secrets::is_secret_key(key) {
        if err.starts_with("invalid type") || err.starts_with("invalid value") {
            return format!(
                "{}; fix the value of `{key}` (the value is not shown)",
                secrets::without_value(err)
            );
        }
        // Field names only (unknown or missing field): no value to hide.
        return format!("{err}; fix `{key}`");
    }
    if let Some(variant) = backticked_after(err, "unknown variant `") {
        let expected = expected_names(err);
        let names: Vec<&str> = expected.iter().map(String::as_str).collect();
        let hint = did_you_mean(&variant, &names);
        return format!(
            "`{variant}` is not one of {}.{hint}",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if err.starts_with("invalid type") || err.starts_with("invalid value") {
        return format!("{err}; fix the value of `{key}` or remove it to use the default");
    }
    format!("{err}; remove `{key}` to use the default")
}

fn backticked_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

fn expected_names(err: &str) -> Vec<String> {
    let Some(pos) = err.find("expected") else {
        return Vec::new();
    };
    err[pos..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| format!(" Did you mean `{c}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn sensor_path(index: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("sensor #{} (\"{id}\")", index + 1),
        None => format!("sensor #{}", index + 1),
    }
}

/// Parses each `[[sensor]]` entry on its own; returns the good ones with their index.
fn sensors(value: Option<toml::Value>, problems: &mut Problems) -> Vec<(usize, SensorConfig)> {
    let entries = match value {
        None => return Vec::new(),
        Some(toml::Value::Array(a)) => a,
        Some(other) => {
            problems.add(
                "sensor",
                format!(
                    "must be written as `[[sensor]]` entries, not a {}",
                    other.type_str()
                ),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let toml::Value::Table(table) = entry else {
            problems.add(sensor_path(i, None), "must be a `[[sensor]]` table");
            continue;
        };
        let id = table.get("id").and_then(|v| v.as_str()).map(str::to_string);
        let path = sensor_path(i, id.as_deref());
        if !table.contains_key("type") {
            problems.add(
                &path,
                format!("missing `type`: add type = {}", type_choices()),
            );
            continue;
        }
        if id.is_none() {
            problems.add(
                &path,
                "missing `id`: add id = \"…\", the name you give this sensor",
            );
            continue;
        }
        if let Some(s) = lenient_sensor(table, &path, problems) {
            out.push((i, s));
        }
    }
    out
}

/// The known types as `"a", "b" or "c"` (the registration declares more than one).
fn type_choices() -> String {
    let quoted: Vec<String> = SensorKind::TYPES
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect();
    let n = quoted.len().saturating_sub(1);
    format!("{} or {}", quoted[..n].join(", "), quoted[n..].join(""))
}

/// Like [`lenient`], but for a sensor, whose common keys and `type` are required.
fn lenient_sensor(table: toml::Table, path: &str, problems: &mut Problems) -> Option<SensorConfig> {
    let mut table = table;
    // Check the common keys on their own so their errors name them.
    for key in COMMON_KEYS.into_iter().filter(|k| *k != "id") {
        if let Some(v) = table.get(key).cloned() {
            let mut probe = toml::Table::new();
            probe.insert("id".into(), "x".into());
            probe.insert("type".into(), SensorKind::TYPES[0].into());
            probe.insert(key.into(), v);
            if let Err(e) = try_de::<SensorConfig>(&probe) {
                let msg = e
                    .strip_prefix(&format!("{key}: "))
                    .unwrap_or(&e)
                    .to_string();
                problems.add(join(path, key), fix_message(key, &msg));
                table.remove(key);
            }
        }
    }
    let ty = table.get("type").cloned();
    if let Some(toml::Value::String(t)) = &ty {
        if !SensorKind::TYPES.contains(&t.as_str()) {
            let hint = did_you_mean(t, SensorKind::TYPES);
            problems.add(
                join(path, "type"),
                format!(
                    "unknown sensor type \"{t}\".{hint} Known types: {}",
                    SensorKind::TYPES.join(", ")
                ),
            );
            return None;
        }
    }
    lenient::<SensorConfig>(table, path, problems)
}

/// True when `a < b` (false for NaN).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= rules::MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_station(c: &Config, p: &mut Problems) {
    let s = &c.station;
    if !valid_id(&s.id) {
        p.add(
            "station.id",
            format!(
                "\"{}\" cannot be used in MQTT topics: use letters, digits, `_` and `-` only (e.g. id = \"school-mast\")",
                s.id
            ),
        );
    }
    if s.timezone.parse::<chrono_tz::Tz>().is_err() {
        p.add(
            "station.timezone",
            format!(
                "unknown time zone \"{}\": use an IANA name such as \"Europe/London\", \"Australia/Brisbane\" or \"UTC\"",
                s.timezone
            ),
        );
    }
    if !(-90.0..=90.0).contains(&s.latitude) {
        p.add(
            "station.latitude",
            format!(
                "{} is not a latitude: use degrees north, −90 to 90",
                s.latitude
            ),
        );
    }
    if s.position_decimals > 7 {
        p.add(
            "station.position_decimals",
            format!(
                "{} decimals is finer than any GPS (7 is about 1 cm): use 0 to 7, e.g. 3 (about 110 m)",
                s.position_decimals
            ),
        );
    }
    if !(-180.0..=180.0).contains(&s.longitude) {
        p.add(
            "station.longitude",
            format!(
                "{} is not a longitude: use degrees east, −180 to 180",
                s.longitude
            ),
        );
    }
    if let Some(m) = span_problem(
        s.clock_sync_wait,
        Span::secs(0),
        rules::CLOCK_SYNC_WAIT_MAX,
        "15m",
    ) {
        p.add("station.clock_sync_wait", m);
    }
    if !(-500.0..=9000.0).contains(&s.altitude_m) {
        p.add(
            "station.altitude_m",
            format!(
                "{} m is not an altitude on Earth: use metres above sea level",
                s.altitude_m
            ),
        );
    }
}

fn check_storage(c: &Config, p: &mut Problems) {
    let s = &c.storage;
    if s.commit_interval.is_zero() {
        p.add(
            "storage.commit_interval",
            "must be more than 0: e.g. commit_interval = \"5s\"",
        );
    } else if s.commit_interval.0.as_secs() > 3600 {
        p.add(
            "storage.commit_interval",
            "more than 1h would risk an hour of readings on a crash: use e.g. \"5s\" to \"5m\"",
        );
    }
    if let Some(m) = span_problem(
        s.retention,
        Span::secs(86_400),
        rules::RETENTION_MAX,
        "365d",
    ) {
        p.add("storage.retention", m);
    }
    for (key, span) in [
        ("storage.retention_minute", s.retention_minute),
        ("storage.retention_hour", s.retention_hour),
        ("storage.retention_day", s.retention_day),
    ] {
        if span.is_zero() {
            continue;
        }
        if let Some(m) = span_problem(span, Span::secs(86_400), rules::RETENTION_MAX, "400d") {
            p.add(key, format!("{m} (or \"0\": kept forever)"));
        }
    }
    if !s.retention_hour.is_zero() && s.retention_hour.0 < s.retention.0 {
        p.add(
            "storage.retention_hour",
            "must be at least `retention` (the hour aggregates are the time index into the raw readings): raise it, or \"0\" to keep them forever",
        );
    }
    if s.path.as_os_str().is_empty() {
        p.add(
            "storage.path",
            "must name the database file, e.g. path = \"/var/lib/anemone/anemone.db\"",
        );
    }
}

fn check_qc(c: &Config, p: &mut Problems) {
    for (key, message) in c.qc.problems() {
        p.add(key, message);
    }
}

fn check_mqtt(c: &Config, p: &mut Problems) {
    let m = &c.mqtt;
    if !m.enabled {
        return;
    }
    if m.broker == "embedded" {
        check_embedded(m, p);
    } else if let Err(e) = rules::parse_broker_url(&m.broker) {
        p.add("mqtt.broker", e.to_string());
    }
    if rules::password_in_clear(m) && !m.allow_insecure {
        p.add("mqtt.password", "a password would travel unencrypted over mqtt://: use mqtts:// or set allow_insecure = true on a trusted network");
    }
    if m.password.is_some() && m.password_file.is_some() {
        p.add(
            "mqtt.password_file",
            "give either password or password_file, not both",
        );
    }
    if m.client_cert.is_some() != m.client_key.is_some() {
        p.add(
            "mqtt.client_cert",
            "client_cert and client_key go together: give both or neither",
        );
    }
    if let Some(msg) = span_problem(
        m.keep_alive,
        rules::KEEP_ALIVE_MIN,
        rules::KEEP_ALIVE_MAX,
        "30s",
    ) {
        p.add(
            "mqtt.keep_alive",
            format!("{msg} (MQTT carries whole seconds, at most 65 535)"),
        );
    }
    if m.backfill_rate == 0 {
        p.add(
            "mqtt.backfill_rate",
            "must be more than 0 messages per second",
        );
    }
    if let Some(prefix) = &m.topic_prefix {
        if let Some(msg) = topic_part_problem(prefix) {
            p.add(
                "mqtt.topic_prefix",
                format!("{msg}: write a topic such as \"anemone/school\""),
            );
        }
    }
    if let Some(msg) = topic_part_problem(&m.discovery_prefix) {
        p.add(
            "mqtt.discovery_prefix",
            format!("{msg}: Home Assistant listens on \"homeassistant\""),
        );
    }
    let client_id = rules::client_id(m, &c.station.id);
    if let (Some(msg), _) = client_id_problem(&client_id) {
        p.add("mqtt.client_id", msg);
    }
    check_topic_lengths(c, p);
}

/// The longest topic the station builds from the prefixes and ids must fit MQTT's limit.
fn check_topic_lengths(c: &Config, p: &mut Problems) {
    let topics = crate::topics::Topics::new(c);
    let longest_sensor = "s".repeat(rules::MAX_ID_CHARS);
    let longest_quantity = crate::reading::Quantity::ALL
        .iter()
        .copied()
        .max_by_key(|q| q.as_str().len());
    let reading = topics.reading(&longest_sensor);
    if reading.len() > rules::MQTT_MAX_STRING_BYTES && c.mqtt.topic_prefix.is_some() {
        p.add(
            "mqtt.topic_prefix",
            format!(
                "too long: with it, a reading topic (<prefix>/reading/<sensor>) can reach {} bytes; MQTT allows {}",
                reading.len(),
                rules::MQTT_MAX_STRING_BYTES
            ),
        );
    }
    if let Some(q) = longest_quantity {
        let discovery = topics.discovery(&longest_sensor, q);
        if discovery.len() > rules::MQTT_MAX_STRING_BYTES {
            p.add(
                "mqtt.discovery_prefix",
                format!(
                    "too long: with it, a discovery topic can reach {} bytes; MQTT allows {}",
                    discovery.len(),
                    rules::MQTT_MAX_STRING_BYTES
                ),
            );
        }
    }
}

/// The embedded broker: an address, and nobody on the network publishing as the station
/// unless the config says so.
fn check_embedded(m: &MqttConfig, p: &mut Problems) {
    let addr = match rules::parse_listen(&m.listen) {
        Ok(a) => a,
        Err(e) => {
            p.add("mqtt.listen", e);
            return;
        }
    };
    let accounts = rules::embedded_needs_login(m);
    if !addr.ip().is_loopback() && !accounts && !m.allow_anonymous {
        p.add(
            "mqtt.listen",
            format!(
                "{addr} lets anyone on the network publish as this station: add accounts ([[mqtt.users]] with username and password), listen on 127.0.0.1, or set allow_anonymous = true to accept that"
            ),
        );
    }
    if m.allow_anonymous && accounts {
        p.add(
            "mqtt.allow_anonymous",
            "the embedded broker cannot take both: with accounts (mqtt.users, or the station's username and password) every client must log in; remove allow_anonymous or the accounts",
        );
    }
    let mut seen = std::collections::HashSet::new();
    let station = rules::station_user(m);
    for (i, u) in m.users.iter().enumerate() {
        let key = format!("mqtt.users #{}", i + 1);
        if u.username.is_empty() {
            p.add(&key, "username must not be empty");
        } else if !seen.insert(u.username.as_str()) {
            p.add(&key, format!("username \"{}\" is given twice", u.username));
        } else if u.username == station {
            p.add(
                &key,
                format!(
                    "\"{}\" is the name the station logs in with to its own broker: give this account another name",
                    u.username
                ),
            );
        }
        if u.password.is_empty() {
            p.add(&key, "password must not be empty");
        }
    }
}

fn check_sensors(c: &Config, sensors: &[(usize, SensorConfig)], p: &mut Problems) {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut resources: BTreeMap<String, String> = BTreeMap::new();
    for (i, s) in sensors {
        let path = sensor_path(*i, Some(&s.id));
        if !valid_id(&s.id) {
            p.add(
                join(&path, "id"),
                "use letters, digits, `_` and `-` only, e.g. id = \"mast-air\"",
            );
        }
        if let Some(first) = ids.insert(&s.id, *i) {
            p.add(
                join(&path, "id"),
                format!(
                    "duplicate sensor id \"{}\" (also {}): give each sensor its own id",
                    s.id,
                    sensor_path(first, Some(&s.id))
                ),
            );
        }
        let example = s.kind.default_interval().to_string();
        if let Some(m) = span_problem(s.interval, Span::millis(1), rules::INTERVAL_MAX, &example) {
            p.add(join(&path, "interval"), m);
        }
        for r in s.kind.resources() {
            if let Some(other) = resources.insert(r.clone(), s.id.clone()) {
                p.add(&path, format!("{r} is already used by sensor \"{other}\": each sensor needs its own address or pin"));
            }
        }
        for (key, message) in s.kind.check(c) {
            p.add(join(&path, key), message);
        }
        let measured = s.kind.quantities();
        for (q, spec) in &s.correction {
            if let Err(m) = crate::correction::check(&s.id, &measured, *q, spec) {
                p.add(join(&path, &format!("correction.{}", q.as_str())), m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        validate_text(text).1
    }

    #[test]
    fn four_problems_reported_at_once() {
        let text = r#"
[station]
id = "mast"
timzone = "Europe/London"
timezone = "Europe/Lodnon"

[[sensor]]
type = "bme280"
id = "air"
interval = "0s"

[[sensor]]
type = "anemometer"
id = "air"
"#;
        let ps = problems(text);
        let keys: Vec<&str> = ps.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(ps.len(), 4, "{ps:#?}");
        assert!(keys.contains(&"station.timzone"));
        assert!(ps[0].message.contains("Did you mean `timezone`"));
        assert!(keys.contains(&"station.timezone"));
        assert!(keys.contains(&"sensor #1 (\"air\").interval"));
        assert!(keys.contains(&"sensor #2 (\"air\").id"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let ps = problems("[storage]\ncommit_interval = \"5 parsecs\"\nretention = true\n");
        assert_eq!(ps.len(), 2, "{ps:#?}");
        assert!(ps.iter().any(|p| p.key == "storage.commit_interval"));
        assert!(ps.iter().any(|p| p.key == "storage.retention"));
    }

    #[test]
    fn unknown_sensor_key_and_type() {
        let ps = problems(
            "[[sensor]]\ntype = \"anemometer\"\nid = \"w\"\ngpoi = 5\n[[sensor]]\ntype = \"bme208\"\nid = \"b\"\n",
        );
        assert_eq!(ps.len(), 2, "{ps:#?}");
        assert_eq!(ps[0].key, "sensor #1 (\"w\").gpoi");
        assert!(ps[0].message.contains("Did you mean `gpio`"));
        assert!(ps[1].message.contains("Did you mean `bme280`"));
    }

    #[test]
    fn syntax_error_is_one_problem() {
        let ps = problems("[station\nid = 1");
        assert_eq!(ps.len(), 1);
        assert!(ps[0].message.contains("not valid TOML"));
    }

    #[test]
    fn shared_pin_is_refused() {
        let ps = problems(
            "[[sensor]]\ntype = \"anemometer\"\nid = \"a\"\ngpio = 6\n[[sensor]]\ntype = \"rain_gauge\"\nid = \"r\"\n",
        );
        assert_eq!(ps.len(), 1, "{ps:#?}");
        assert!(ps[0].message.contains("already used by sensor \"a\""));
    }

    #[test]
    fn dangling_temperature_sensor() {
        let ps =
            problems("[[sensor]]\ntype = \"ph_ezo\"\nid = \"ph\"\ntemperature_sensor = \"sea\"\n");
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].key, "sensor #1 (\"ph\").temperature_sensor");
    }

    #[test]
    fn unknown_key_inside_an_inline_table_is_named_once() {
        let ps = problems(
            "[mqtt]\nusers = [{ username = \"lab\", password = \"pw-123\", colour = 1 }]\n[qc]\nph = { min = 0, maxx = 14 }\n",
        );
        assert_eq!(ps.len(), 2, "{ps:#?}");
        assert_eq!(ps[0].key, "qc.ph");
        assert!(ps[0].message.contains("maxx"), "{ps:#?}");
        assert_eq!(ps[1].key, "mqtt.users");
        assert!(ps[1].message.contains("colour"), "{ps:#?}");
        assert!(!format!("{ps:?}").contains("pw-123"));
    }

    #[test]
    fn password_over_plain_tcp_is_refused() {
        let ps = problems(
            "[mqtt]\nbroker = \"mqtt://10.0.0.2:1883\"\nusername = \"u\"\npassword = \"p\"\n",
        );
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].key, "mqtt.password");
    }
}
