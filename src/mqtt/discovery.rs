//! Home Assistant MQTT discovery: one retained config per sensor and quantity at
//! `homeassistant/sensor/<station>_<sensor>_<quantity>/config`, reading its value out of the
//! retained `…/state` snapshot.

use serde_json::{json, Map, Value};

use super::topics::Topics;
use crate::config::Config;
use crate::reading::Quantity;

/// Home Assistant's view of a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaClass {
    /// `device_class`, where Home Assistant has one.
    pub device_class: Option<&'static str>,
    /// `state_class`.
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
        Rain => (Some("precipitation"), "measurement", 1),
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
    };
    let unit = match q {
        Ph | LightningEnergy => None,
        _ => Some(q.unit()),
    };
    HaClass {
        device_class,
        state_class,
        unit,
        precision,
    }
}

/// "air_temperature" → "Air temperature".
fn human(q: Quantity) -> String {
    let s = q.as_str().replace('_', " ");
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => s,
    }
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
    m.insert("object_id".into(), json!(object_id));
    m.insert("name".into(), json!(format!("{} ({sensor})", human(q))));
    if let Some(dc) = class.device_class {
        m.insert("device_class".into(), json!(dc));
    }
    m.insert("state_class".into(), json!(class.state_class));
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
    Value::Object(m)
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
}
