//! Warnings: settings that work but expose something. `validate` prints them and every
//! start of `run` logs them; they never stop the station.

use std::path::Path;

use super::rules::{self, client_id_problem};
use super::{Config, Problem};

struct Warnings(Vec<Problem>);

impl Warnings {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

/// What `validate` and every start of `run` warn about: settings that work but expose
/// something (a password file others can read, a password sent in clear, a broker open
/// to the network, a client id a strict broker may refuse). `config_file` is the file the
/// config came from, when any.
pub fn warnings(c: &Config, config_file: Option<&Path>) -> Vec<Problem> {
    let mut w = Warnings(Vec::new());
    if let Some(path) = c.web.password_file.as_ref().filter(|_| c.web.enabled) {
        if readable_by_others(path) {
            w.add(
                "web.password_file",
                format!(
                    "{} is readable by every user of this machine: run `chmod 600 {}` (or `chmod 640` with group anemone)",
                    path.display(),
                    path.display()
                ),
            );
        }
    }
    let m = &c.mqtt;
    if !m.enabled {
        return w.0;
    }
    if let Some(path) = &m.password_file {
        if readable_by_others(path) {
            w.add(
                "mqtt.password_file",
                format!(
                    "{} is readable by every user of this machine: run `chmod 600 {}` (or `chmod 640` with group anemone)",
                    path.display(),
                    path.display()
                ),
            );
        }
    }
    if let Some(file) = config_file {
        let holds_password = m.password.is_some() || !m.users.is_empty();
        if holds_password && readable_by_others(file) {
            w.add(
                "mqtt.password",
                format!(
                    "{} holds a password and is readable by every user of this machine: run `chmod 640 {}` with group anemone (or move the password to a password_file)",
                    file.display(),
                    file.display()
                ),
            );
        }
    }
    if rules::password_in_clear(m) && m.allow_insecure {
        w.add(
            "mqtt.allow_insecure",
            format!(
                "the MQTT password goes unencrypted to {}: anyone on the network path can read it; use mqtts://",
                m.broker
            ),
        );
    }
    if m.broker == "embedded" && m.allow_anonymous {
        if let Ok(addr) = rules::parse_listen(&m.listen) {
            if !addr.ip().is_loopback() {
                w.add(
                    "mqtt.allow_anonymous",
                    format!("the embedded broker on {addr} takes anonymous clients: anyone on the network can publish as this station"),
                );
            }
        }
    }
    if m.broker != "embedded" && (!m.users.is_empty() || m.allow_anonymous) {
        w.add(
            "mqtt.users",
            format!(
                "users and allow_anonymous apply to the embedded broker only; {} keeps its own accounts",
                m.broker
            ),
        );
    }
    if let (None, Some(msg)) = client_id_problem(&rules::client_id(m, &c.station.id)) {
        w.add("mqtt.client_id", msg);
    }
    w.0
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|md| md.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}
