//! The MQTT topic names of the contract, in one place: the publisher, discovery and
//! `mqtt check` build them, and `validate` measures them against MQTT's length limit.
//! `Topics::new` (from a config) is defined in `config`, which this module does not see.

use crate::reading::Quantity;

/// Every topic the publisher uses, derived from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `anemone/<station id>` unless configured otherwise.
    pub prefix: String,
    /// `<prefix>/status`: retained `online` / `offline`.
    pub status: String,
    /// `<prefix>/state`: retained snapshot.
    pub state: String,
    /// `<prefix>/meta`: retained station description.
    pub meta: String,
    /// Home Assistant discovery prefix (`homeassistant`).
    pub discovery_prefix: String,
    /// Station id used in discovery object ids.
    pub station_id: String,
}

/// Payload of `status` while connected.
pub const ONLINE: &str = "online";
/// Payload of `status` after a clean shutdown, and the last will.
pub const OFFLINE: &str = "offline";

impl Topics {
    /// The topics under `prefix`, with discovery under `discovery_prefix` for the
    /// station `station_id`.
    pub fn from_parts(prefix: String, discovery_prefix: &str, station_id: &str) -> Topics {
        Topics {
            status: format!("{prefix}/status"),
            state: format!("{prefix}/state"),
            meta: format!("{prefix}/meta"),
            prefix,
            discovery_prefix: discovery_prefix.to_string(),
            station_id: station_id.to_string(),
        }
    }

    /// `<prefix>/reading/<sensor>`.
    pub fn reading(&self, sensor: &str) -> String {
        format!("{}/reading/{sensor}", self.prefix)
    }

    /// `<prefix>/alert/<sensor>`: retained alerts (a GPS buoy off station).
    pub fn alert(&self, sensor: &str) -> String {
        format!("{}/alert/{sensor}", self.prefix)
    }

    /// `<prefix>/chain`: the retained head of the tamper-evident chain.
    pub fn chain(&self) -> String {
        format!("{}/chain", self.prefix)
    }

    /// `<prefix>/check`: where `anemone mqtt check` tests publish permission.
    pub fn check(&self) -> String {
        format!("{}/check", self.prefix)
    }

    /// The Home Assistant object id `<station>_<sensor>_<quantity>` (also the unique_id).
    pub fn object_id(&self, sensor: &str, quantity: Quantity) -> String {
        format!("{}_{sensor}_{}", self.station_id, quantity.as_str())
    }

    /// `homeassistant/sensor/<station>_<sensor>_<quantity>/config`.
    pub fn discovery(&self, sensor: &str, quantity: Quantity) -> String {
        format!(
            "{}/sensor/{}/config",
            self.discovery_prefix,
            self.object_id(sensor, quantity)
        )
    }

    /// `homeassistant/sensor/+/config`: every sensor's discovery config (the retained ones
    /// tell the station which entities it announced in earlier runs).
    pub fn discovery_filter(&self) -> String {
        format!("{}/sensor/+/config", self.discovery_prefix)
    }

    /// True for a topic `discovery_filter` matches that may be this station's
    /// (`homeassistant/sensor/<station>_…/config`).
    pub fn is_own_discovery(&self, topic: &str) -> bool {
        topic
            .strip_prefix(&self.discovery_prefix)
            .and_then(|t| t.strip_prefix("/sensor/"))
            .and_then(|t| t.strip_prefix(&self.station_id))
            .is_some_and(|t| t.starts_with('_') && t.ends_with("/config"))
    }

    /// `homeassistant/status`: Home Assistant's birth message; `online` asks for
    /// discovery again.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn default_topics() {
        let mut cfg = Config::builtin();
        cfg.station.id = "mast".into();
        let t = Topics::new(&cfg);
        assert_eq!(t.status, "anemone/mast/status");
        assert_eq!(t.state, "anemone/mast/state");
        assert_eq!(t.meta, "anemone/mast/meta");
        assert_eq!(t.reading("air"), "anemone/mast/reading/air");
        assert_eq!(
            t.discovery("air", Quantity::AirTemperature),
            "homeassistant/sensor/mast_air_air_temperature/config"
        );
        cfg.mqtt.topic_prefix = Some("school/roof".into());
        assert_eq!(Topics::new(&cfg).status, "school/roof/status");
    }
}
