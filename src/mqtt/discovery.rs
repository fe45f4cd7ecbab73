//! Home Assistant MQTT discovery: one retained config per sensor and quantity at
//! `homeassistant/sensor/<station>_<sensor>_<quantity>/config`, reading its value out of the
//! retained `…/state` snapshot.
//!
//! The payloads follow Home Assistant's current discovery schema: `default_entity_id`
//! (`sensor.<station>_<sensor>_<quantity>`; `object_id` is ignored since 2026.4), an
//! `origin` block, and no `measurement` state class on the per-interval `rain` (long-term
//! statistics would average rainfall; `rain_today` is the `total_increasing` one). The
//! oldest Home Assistant that accepts them is [`OLDEST_HOME_ASSISTANT`]. Configs of sensors
//! (or quantities) no longer configured are cleared with an empty retained payload
//! ([`is_stale`] decides which, from the retained configs the broker hands back).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::topics::Topics;
use crate::config::Config;
use crate::reading::Quantity;

/// Home Assistant's view of a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaClass {
    /// `device_class`, where Home Assistant has one.
    pub device_class: Option<&'static str>,
    /// `state_class`; empty where the quantity gets none (per-interval rain).
    pub state_class: &'static str,
    /// `unit_of_measurement`; `None` where Home Assistant wants no unit (pH).
    pub unit: Option<&'static str>,
    /// `suggested_display_precision`.
    pub precision: u8,
}

/// The Home Assistant classes of a quantity.
pub fn ha_class(q: Quantity) -> HaClass {
    use Quantity::*;
    let (device_class, state_class, precision) = match q {
        AirTemperature | DewPoint | WindChill | HeatIndex | FeelsLike | WaterTemperature
        | GroundTemperature | PhTemperature => (Some("temperature"), "measurement", 1),
        RelativeHumidity => (Some("humidity"), "measurement", 0),
        AirPressure | SeaLevelPressure => (Some("atmospheric_pressure"), "measurement", 1),
        WindSpeed | WindGust | WindSpeedAvg2m | WindSpeedAvg10m => {
            (Some("wind_speed"), "measurement", 1)
        }
        WindDirection | WindDirectionAvg10m | WindGustDirection => {
            (Some("wind_direction"), "measurement_angle", 0)
        }
        // Per interval: no state class, so Home Assistant keeps no statistics that would
        // average rainfall. `rain_today` carries the statistics.
        Rain => (Some("precipitation"), "", 1),
        RainToday => (Some("precipitation"), "total_increasing", 1),
        RainRate => (Some("precipitation_intensity"), "measurement", 1),
        RainLast24h => (Some("precipitation"), "measurement", 1),
        Ph => (Some("ph"), "measurement", 2),
        Conductivity => (Some("conductivity"), "measurement", 0),
        DissolvedOxygen => (None, "measurement", 1),
        Illuminance => (Some("illuminance"), "measurement", 0),
        UvIndex => (None, "measurement", 1),
        AirQualityRatio => (None, "measurement", 2),
        AirQualityResistance => (None, "measurement", 0),
        LightningStrikes => (None, "measurement", 0),
        LightningDistance => (Some("distance"), "measurement", 0),
        LightningEnergy => (None, "measurement", 0),
        Salinity => (None, "measurement", 2),
        OxygenSaturation => (None, "measurement", 0),
        Orp => (Some("voltage"), "measurement", 0),
        Co2 => (Some("carbon_dioxide"), "measurement", 0),
        BatteryVoltage | SolarVoltage => (Some("voltage"), "measurement", 2),
        BatteryCurrent | SolarCurrent => (Some("current"), "measurement", 2),
        BatteryPower | SolarPower => (Some("power"), "measurement", 1),
        PowerSaving => (None, "measurement", 0),
        Turbidity | Nitrate => (None, "measurement", 1),
        AnalogVoltage => (Some("voltage"), "measurement", 3),
        Latitude | Longitude => (None, "measurement", 6),
        GpsFixMode | GpsSatellites => (None, "measurement", 0),
        SpeedOverGround => (Some("speed"), "measurement", 2),
        AnchorDistance => (Some("distance"), "measurement", 0),
        CurrentSpeed | CurrentSpeedAvg2m | CurrentSpeedAvg10m => (Some("speed"), "measurement", 2),
    };
    let unit = match q {
        Ph | LightningEnergy | PowerSaving | GpsFixMode => None,
        _ => Some(q.unit()),
    };
    HaClass {
        device_class,
        state_class,
        unit,
        precision,
    }
}

/// The oldest Home Assistant release that accepts the payloads: `default_entity_id`
/// arrived in 2025.10 (`measurement_angle` for wind direction needs 2025.4).
pub const OLDEST_HOME_ASSISTANT: &str = "2025.10";

/// The display name of a quantity: "air_temperature" → "Air temperature"; units and
/// abbreviations keep their spelling ("pH", "pH temperature").
pub fn display_name(q: Quantity) -> String {
    let text = match q {
        Quantity::Ph => return "pH".into(),
        Quantity::PhTemperature => return "pH temperature".into(),
        Quantity::WindSpeedAvg2m => return "Wind speed (2-min mean)".into(),
        Quantity::WindSpeedAvg10m => return "Wind speed (10-min mean)".into(),
        Quantity::WindDirectionAvg10m => return "Wind direction (10-min mean)".into(),
        Quantity::RainLast24h => return "Rain (last 24 h)".into(),
        Quantity::GpsFixMode => return "GPS fix mode".into(),
        Quantity::GpsSatellites => return "GPS satellites".into(),
        Quantity::CurrentSpeedAvg2m => return "Current speed (2-min mean)".into(),
        Quantity::CurrentSpeedAvg10m => return "Current speed (10-min mean)".into(),
        _ => q.as_str().replace('_', " "),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// The `origin` block: which software announced the entity.
pub fn origin() -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!("Anemone"));
    m.insert("sw_version".into(), json!(env!("CARGO_PKG_VERSION")));
    let url = support_url();
    if !url.is_empty() {
        m.insert("support_url".into(), json!(url));
    }
    Value::Object(m)
}

/// Where users get help: the package's repository (or home page) from Cargo.toml.
pub fn support_url() -> &'static str {
    match env!("CARGO_PKG_REPOSITORY") {
        "" => env!("CARGO_PKG_HOMEPAGE"),
        repo => repo,
    }
}

/// Home Assistant's entity id for an object id: `sensor.` and the object id as a slug
/// (lower case letters, digits and `_`).
pub fn default_entity_id(object_id: &str) -> String {
    let mut slug = String::with_capacity(object_id.len());
    for c in object_id.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    format!("sensor.{}", slug.trim_matches('_'))
}

/// The `device` block shared by every entity of the station.
pub fn device(cfg: &Config) -> Value {
    json!({
        "identifiers": [format!("anemone_{}", cfg.station.id)],
        "name": cfg.station.name,
        "manufacturer": "Anemone",
        "model": "Anemone weather station",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

/// `expire_after` in seconds for a sensor: three intervals, at least a minute; ten
/// minutes for sensors not in the config (derived quantities).
fn expire_after_s(cfg: &Config, sensor: &str) -> u64 {
    (super::payload::stale_after_ms(cfg, sensor) / 1000).max(60) as u64
}

/// The discovery config of one sensor's quantity.
pub fn config_payload(cfg: &Config, topics: &Topics, sensor: &str, q: Quantity) -> Value {
    let class = ha_class(q);
    let object_id = topics.object_id(sensor, q);
    let mut m = Map::new();
    m.insert("unique_id".into(), json!(object_id));
    m.insert(
        "default_entity_id".into(),
        json!(default_entity_id(&object_id)),
    );
    m.insert(
        "name".into(),
        json!(format!("{} ({sensor})", display_name(q))),
    );
    if let Some(dc) = class.device_class {
        m.insert("device_class".into(), json!(dc));
    }
    if !class.state_class.is_empty() {
        m.insert("state_class".into(), json!(class.state_class));
    }
    if let Some(unit) = class.unit {
        m.insert("unit_of_measurement".into(), json!(unit));
    }
    m.insert("suggested_display_precision".into(), json!(class.precision));
    m.insert("state_topic".into(), json!(topics.state));
    m.insert(
        "value_template".into(),
        json!(format!(
            "{{{{ value_json.sensors.get('{sensor}', {{}}).get('{}') }}}}",
            q.as_str()
        )),
    );
    m.insert("availability_topic".into(), json!(topics.status));
    m.insert("payload_available".into(), json!(super::topics::ONLINE));
    m.insert(
        "payload_not_available".into(),
        json!(super::topics::OFFLINE),
    );
    m.insert("expire_after".into(), json!(expire_after_s(cfg, sensor)));
    m.insert("device".into(), device(cfg));
    m.insert("origin".into(), origin());
    Value::Object(m)
}

/// The quantities the pipeline's derived stage may compute from a sensor's quantity (a
/// derived reading carries the id of the sensor it came from).
fn derivable(q: Quantity) -> &'static [Quantity] {
    use Quantity::*;
    match q {
        AirTemperature | RelativeHumidity | AirPressure => {
            &[DewPoint, WindChill, HeatIndex, FeelsLike, SeaLevelPressure]
        }
        WindSpeed => &[WindGust, WindSpeedAvg2m, WindSpeedAvg10m],
        WindDirection => &[WindGustDirection, WindDirectionAvg10m],
        Rain => &[RainRate, RainToday, RainLast24h],
        _ => &[],
    }
}

/// Every (sensor, quantity) the configured sensors may publish, derived ones included.
pub fn expected_pairs(cfg: &Config) -> BTreeMap<String, BTreeSet<Quantity>> {
    let mut out: BTreeMap<String, BTreeSet<Quantity>> = BTreeMap::new();
    for (sensor, q) in configured_pairs(cfg) {
        let qs = out.entry(sensor).or_default();
        qs.insert(q);
        qs.extend(derivable(q).iter().copied());
    }
    out
}

/// A retained discovery config the broker holds at `topic`: true when it belongs to this
/// station's device and to none of the `expected` topics, so it must be cleared (an
/// empty retained payload removes the entity from Home Assistant).
pub fn is_stale(
    cfg: &Config,
    topic: &str,
    payload: &[u8],
    expected: &dyn Fn(&str) -> bool,
) -> bool {
    if payload.is_empty() || expected(topic) {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<Value>(payload) else {
        return false;
    };
    let ours = json!(format!("anemone_{}", cfg.station.id));
    v["device"]["identifiers"]
        .as_array()
        .is_some_and(|ids| ids.contains(&ours))
}

/// Every (sensor, quantity) the config announces.
pub fn configured_pairs(cfg: &Config) -> Vec<(String, Quantity)> {
    cfg.sensors
        .iter()
        .flat_map(|s| s.kind.quantities().into_iter().map(|q| (s.id.clone(), q)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(ha_class(Quantity::Ph).unit, None);
        assert_eq!(ha_class(Quantity::Ph).device_class, Some("ph"));
        assert_eq!(
            ha_class(Quantity::WindDirection).state_class,
            "measurement_angle"
        );
        assert_eq!(
            ha_class(Quantity::RainToday).state_class,
            "total_increasing"
        );
        assert_eq!(
            ha_class(Quantity::RainRate).device_class,
            Some("precipitation_intensity")
        );
        assert_eq!(ha_class(Quantity::AirPressure).unit, Some("hPa"));
    }

    #[test]
    fn payload_keys() {
        let cfg = Config::builtin();
        let t = Topics::new(&cfg);
        let v = config_payload(&cfg, &t, "air", Quantity::AirTemperature);
        assert_eq!(v["unique_id"], "sim_air_air_temperature");
        assert_eq!(v["device_class"], "temperature");
        assert_eq!(v["unit_of_measurement"], "°C");
        assert_eq!(v["state_topic"], "anemone/sim/state");
        assert_eq!(v["availability_topic"], "anemone/sim/status");
        assert_eq!(
            v["value_template"],
            "{{ value_json.sensors.get('air', {}).get('air_temperature') }}"
        );
        assert_eq!(v["device"]["identifiers"][0], "anemone_sim");
        assert!(v["expire_after"].as_u64().unwrap_or(0) >= 60);
        let ph = config_payload(&cfg, &t, "water", Quantity::Ph);
        assert!(ph.get("unit_of_measurement").is_none());
    }

    /// Every discovery payload, for every quantity, against Home Assistant's current
    /// rules (issue "A school's first hour").
    #[test]
    fn every_payload_follows_home_assistant_rules() {
        let mut cfg = Config::builtin();
        cfg.station.id = "School-Pi 7".into();
        let t = Topics::new(&cfg);
        for &q in Quantity::ALL {
            let v = config_payload(&cfg, &t, "mast", q);
            let what = q.as_str();
            assert!(v.get("object_id").is_none(), "{what}: object_id");
            let uid = v["unique_id"].as_str().unwrap_or_default();
            assert_eq!(
                v["default_entity_id"],
                format!("sensor.school_pi_7_mast_{what}"),
                "{what}"
            );
            assert_eq!(uid, format!("School-Pi 7_mast_{what}"));
            let origin = &v["origin"];
            assert_eq!(origin["name"], "Anemone", "{what}");
            assert_eq!(origin["sw_version"], env!("CARGO_PKG_VERSION"), "{what}");
            match support_url() {
                "" => assert!(origin.get("support_url").is_none()),
                url => assert_eq!(origin["support_url"], url),
            }
            if q == Quantity::Rain {
                assert!(v.get("state_class").is_none(), "rain: {v}");
            }
            if let Some(sc) = v.get("state_class") {
                assert!(
                    ["measurement", "measurement_angle", "total_increasing"]
                        .contains(&sc.as_str().unwrap_or_default()),
                    "{what}: {sc}"
                );
            }
            let name = v["name"].as_str().unwrap_or_default();
            assert!(
                !name.contains("Ph") && !name.contains("ph "),
                "{what}: {name}"
            );
            assert!(!name.contains('_'), "{what}: {name}");
            assert!(name.ends_with(" (mast)"), "{what}: {name}");
        }
        assert_eq!(display_name(Quantity::Ph), "pH");
        assert_eq!(display_name(Quantity::PhTemperature), "pH temperature");
        assert_eq!(display_name(Quantity::AirTemperature), "Air temperature");
    }

    #[test]
    fn only_this_stations_unexpected_configs_are_stale() {
        let cfg = Config::builtin();
        let t = Topics::new(&cfg);
        let expected = expected_pairs(&cfg);
        let is_expected = |topic: &str| {
            expected
                .iter()
                .any(|(s, qs)| qs.iter().any(|q| t.discovery(s, *q) == topic))
        };
        let gone = t.discovery("old_probe", Quantity::WaterTemperature);
        let payload = config_payload(&cfg, &t, "old_probe", Quantity::WaterTemperature);
        let bytes = payload.to_string().into_bytes();
        assert!(is_stale(&cfg, &gone, &bytes, &is_expected));
        // Already cleared, not JSON, or another device's: left alone.
        assert!(!is_stale(&cfg, &gone, b"", &is_expected));
        assert!(!is_stale(&cfg, &gone, b"{", &is_expected));
        let mut other = cfg.clone();
        other.station.id = "other".into();
        let theirs = config_payload(&other, &t, "old_probe", Quantity::WaterTemperature);
        assert!(!is_stale(
            &cfg,
            &gone,
            theirs.to_string().as_bytes(),
            &is_expected
        ));
        // A configured sensor's quantity, and a quantity derived from one, are kept.
        for (sensor, q) in configured_pairs(&cfg) {
            let p = config_payload(&cfg, &t, &sensor, q)
                .to_string()
                .into_bytes();
            assert!(!is_stale(&cfg, &t.discovery(&sensor, q), &p, &is_expected));
        }
        let rain = cfg
            .sensors
            .iter()
            .find(|s| s.kind.quantities().contains(&Quantity::Rain))
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let p = config_payload(&cfg, &t, &rain, Quantity::RainToday).to_string();
        let topic = t.discovery(&rain, Quantity::RainToday);
        assert!(!is_stale(&cfg, &topic, p.as_bytes(), &is_expected));
        assert!(t.is_own_discovery(&gone));
        assert!(!t.is_own_discovery("homeassistant/sensor/simulated_x_rain/config"));
    }
}
