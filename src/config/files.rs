//! The files a config names (MQTT password file, CA and client certificates) must be
//! readable by whoever runs the station: `validate` and `run` both check them, so a missing
//! file is a config problem (exit 78) at the start, not an MQTT error hours later.
//! Only the paths are ever printed, never what the files hold.

use std::path::Path;

use super::{Config, Problem};

/// One problem per file the config names that cannot be opened for reading (only where it
/// is used: MQTT switched on).
pub fn file_problems(c: &Config) -> Vec<Problem> {
    let m = &c.mqtt;
    if !m.enabled {
        return Vec::new();
    }
    let named = [
        ("mqtt.password_file", m.password_file.as_deref()),
        ("mqtt.ca_file", m.ca_file.as_deref()),
        ("mqtt.client_cert", m.client_cert.as_deref()),
        ("mqtt.client_key", m.client_key.as_deref()),
    ];
    let mut problems: Vec<Problem> = named
        .into_iter()
        .filter_map(|(key, path)| path.and_then(|p| unreadable(key, p)))
        .collect();
    // The signing key: absent is fine (the first start creates it); one others may read,
    // or not a key, is not.
    if let Some(p) = c.station.signing_key.as_deref().filter(|p| p.exists()) {
        if let Err(e) = crate::signing::StationKey::load(p) {
            problems.push(Problem {
                key: "station.signing_key".to_string(),
                message: e.to_string(),
            });
        }
    }
    problems
}

fn unreadable(key: &str, path: &Path) -> Option<Problem> {
    let error = std::fs::File::open(path).err()?;
    let fix = match error.kind() {
        std::io::ErrorKind::NotFound => "create it, or correct the path".to_string(),
        std::io::ErrorKind::PermissionDenied => format!(
            "the user running Anemone may not read it: `sudo chgrp anemone {0} && sudo chmod 640 {0}` for the service",
            path.display()
        ),
        _ => "check the path and its permissions".to_string(),
    };
    Some(Problem {
        key: key.to_string(),
        message: format!("cannot read {}: {error}; {fix}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(file: &Path) -> Config {
        let text = format!(
            "[mqtt]\nbroker = \"mqtts://broker.example:8883\"\nusername = \"station\"\npassword_file = \"{}\"\n",
            file.display()
        );
        match Config::from_toml(&text, "test") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_missing_password_file_is_a_problem_naming_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.secret");
        let problems = file_problems(&config_with(&missing));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "mqtt.password_file");
        assert!(problems[0].message.contains("nope.secret"), "{problems:?}");
    }

    #[test]
    fn a_readable_file_and_mqtt_off_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "x\n").unwrap();
        assert!(file_problems(&config_with(&file)).is_empty());
        let mut off = config_with(&dir.path().join("missing"));
        off.mqtt.enabled = false;
        assert!(file_problems(&off).is_empty());
    }
}
