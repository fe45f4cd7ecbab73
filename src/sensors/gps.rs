//! GPS through gpsd: position, fix mode, satellites used and speed over ground, an anchor
//! watch, and GPS time for clock safety (a buoy at sea has no network time).
//!
//! Wire the receiver as its maker says (a GPS HAT's TX to the Pi's RX, GPIO 15, pin 10,
//! with `enable_uart=1` and the serial console off in `raspi-config`; or USB) and let gpsd
//! own it: `sudo apt install gpsd`, the receiver's port in `DEVICES` of
//! `/etc/default/gpsd`. Anemone reads gpsd's JSON reports ([`crate::hal::gpsd`]) and, at each `interval`, writes the
//! latest fix: `latitude`, `longitude` (°), `gps_fix_mode` (0–3), `gps_satellites` and
//! `speed_over_ground` (m/s). Without a fix it writes the fix mode (and satellites) and,
//! for the position, `sensor_error` readings without a value — never a made-up position —
//! and logs once that the fix is lost or not yet acquired.
//!
//! **Anchor watch**: with `anchor = { latitude = …, longitude = …, radius_m = … }` each fix
//! also gives `anchor_distance` (m, great-circle distance from the anchor), and a fix
//! farther than `radius_m` has its position and distance flagged `off_station`; the MQTT
//! publisher announces it on the retained `…/alert` topic (see the README).
//!
//! **GPS time**: each 2D/3D fix's time is recorded for clock safety
//! ([`crate::hal::timesync::GpsClock`]), which takes it as known time while no
//! network time service has synchronised the clock.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{SensorKindSpec, Source, SourceContext, SourceError, StationFacts};
use crate::duration::Span;
use crate::hal::gpsd::{parse_line, GpsdError, GpsdFeed, Report, Tpv, DEFAULT_GPSD};
use crate::hal::sim::{Mooring, SimWorldBuilder, SWING_FRACTION};
use crate::hal::timesync::GpsClock;
use crate::hal::Hal;
use crate::reading::{Flags, Quantity, Reading, SensorId, Timestamp};

/// Mean Earth radius (IUGG), m.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Without a TPV report from gpsd for this long, gpsd has no receiver.
const SILENT_AFTER: Duration = Duration::from_secs(15);

/// Where the buoy is moored, and how far it may swing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// Degrees north (negative south).
    pub latitude: f64,
    /// Degrees east (negative west).
    pub longitude: f64,
    /// A fix farther than this from the anchor is off station, m.
    pub radius_m: f64,
}

/// `type = "gps"`: a GPS receiver served by gpsd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpsConfig {
    /// gpsd's address, `host:port` (default `127.0.0.1:2947`).
    #[serde(default = "default_gpsd")]
    pub gpsd: String,
    /// The anchor watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
}

fn default_gpsd() -> String {
    DEFAULT_GPSD.to_string()
}

/// Great-circle distance between two points (degrees), m (the haversine formula).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

impl SensorKindSpec for GpsConfig {
    const TYPE: &'static str = "gps";

    fn default_interval(&self) -> Span {
        Span::secs(10)
    }

    fn quantities(&self) -> Vec<Quantity> {
        let mut q = vec![
            Quantity::Latitude,
            Quantity::Longitude,
            Quantity::GpsFixMode,
            Quantity::GpsSatellites,
            Quantity::SpeedOverGround,
        ];
        if self.anchor.is_some() {
            q.push(Quantity::AnchorDistance);
        }
        q
    }

    fn resources(&self) -> Vec<String> {
        vec![format!("gpsd at {}", self.gpsd)]
    }

    fn check(&self, _station: &dyn StationFacts, p: &mut Vec<(&'static str, String)>) {
        if !self.gpsd.contains(':') {
            p.push((
                "gpsd",
                format!(
                    "`{}` is not host:port (gpsd listens on 127.0.0.1:2947)",
                    self.gpsd
                ),
            ));
        }
        if let Some(a) = &self.anchor {
            if !(-90.0..=90.0).contains(&a.latitude) {
                p.push(("anchor", "latitude must be -90 to 90 degrees".into()));
            }
            if !(-180.0..=180.0).contains(&a.longitude) {
                p.push(("anchor", "longitude must be -180 to 180 degrees".into()));
            }
            if !super::positive(a.radius_m) {
                p.push((
                    "anchor",
                    "radius_m must be more than 0 (the mooring's swing plus the GPS error, e.g. 50)"
                        .into(),
                ));
            }
        }
    }

    fn build(
        &self,
        id: SensorId,
        hal: &Hal,
        _ctx: &SourceContext,
    ) -> Result<Box<dyn Source>, SourceError> {
        let feed = hal.gpsd(&self.gpsd).map_err(|e| match e {
            GpsdError::Address(_) => SourceError::Device(e.to_string()),
            e => SourceError::Absent(e.to_string()),
        })?;
        Ok(Box::new(GpsSource {
            id,
            feed,
            gps_clock: hal.gps_clock().clone(),
            anchor: self.anchor,
            lines: Vec::new(),
            tpv: None,
            used: None,
            heard: Instant::now(),
            had_fix: None,
            was_off: false,
        }))
    }

    fn register_sim(&self, world: &mut SimWorldBuilder) {
        let (latitude, longitude, radius_m) = match self.anchor {
            Some(a) => (a.latitude, a.longitude, a.radius_m),
            None => {
                let (lat, lon) = world.site();
                (lat, lon, 50.0)
            }
        };
        world.gpsd(
            &self.gpsd,
            Mooring {
                latitude,
                longitude,
                swing_m: radius_m * SWING_FRACTION,
            },
        );
    }
}

struct GpsSource {
    id: SensorId,
    feed: GpsdFeed,
    gps_clock: GpsClock,
    anchor: Option<Anchor>,
    lines: Vec<String>,
    /// The latest TPV report.
    tpv: Option<Tpv>,
    /// Satellites used, from the latest SKY report.
    used: Option<u32>,
    /// When the latest TPV report came.
    heard: Instant,
    /// Whether the last sample had a fix (`None` before the first).
    had_fix: Option<bool>,
    /// Whether the last fix was off station.
    was_off: bool,
}

impl GpsSource {
    fn fix_readings(&mut self, now: Timestamp, tpv: &Tpv, lat: f64, lon: f64) -> Vec<Reading> {
        let mut position = vec![
            Reading::new(now, &self.id, Quantity::Latitude, lat),
            Reading::new(now, &self.id, Quantity::Longitude, lon),
        ];
        if let Some(a) = self.anchor {
            let d = haversine_m(a.latitude, a.longitude, lat, lon);
            position.push(Reading::new(now, &self.id, Quantity::AnchorDistance, d));
            let off = d > a.radius_m;
            if off {
                for r in &mut position {
                    r.flags.insert(Flags::OFF_STATION);
                }
            }
            if off && !self.was_off {
                tracing::error!(
                    sensor = %self.id,
                    distance_m = d.round(),
                    radius_m = a.radius_m,
                    latitude = lat,
                    longitude = lon,
                    "Off station: the buoy is outside its anchor watch radius; it may have broken its mooring"
                );
            } else if !off && self.was_off {
                tracing::info!(sensor = %self.id, distance_m = d.round(), "Back within the anchor watch radius");
            }
            self.was_off = off;
        }
        if let Some(speed) = tpv.speed {
            position.push(Reading::new(
                now,
                &self.id,
                Quantity::SpeedOverGround,
                speed,
            ));
        }
        position
    }
}

impl Source for GpsSource {
    fn sample(&mut self, now: Timestamp) -> Result<Vec<Reading>, SourceError> {
        self.lines.clear();
        self.feed
            .lines(now, &mut self.lines)
            .map_err(|e| SourceError::Device(e.to_string()))?;
        for line in &self.lines {
            match parse_line(line) {
                Some(Report::Tpv(t)) => {
                    if t.has_fix() {
                        if let Some(fix_ms) = t.time_ms() {
                            self.gps_clock
                                .record(fix_ms, chrono::Utc::now().timestamp_millis());
                        }
                    }
                    self.tpv = Some(t);
                    self.heard = Instant::now();
                }
                Some(Report::Sky(s)) => self.used = s.used().or(self.used),
                Some(Report::Other) | None => {}
            }
        }
        let Some(tpv) = self.tpv.clone() else {
            if self.heard.elapsed() > SILENT_AFTER {
                return Err(SourceError::Device(
                    "gpsd sends no position reports: is the receiver connected, and named in DEVICES in /etc/default/gpsd? (`gpspipe -w` shows what gpsd serves)"
                        .into(),
                ));
            }
            // Just connected: gpsd's first report is on its way.
            return Ok(Vec::new());
        };
        let mut out = vec![Reading::new(
            now,
            &self.id,
            Quantity::GpsFixMode,
            f64::from(tpv.mode),
        )];
        if let Some(n) = self.used {
            out.push(Reading::new(
                now,
                &self.id,
                Quantity::GpsSatellites,
                f64::from(n),
            ));
        }
        let fix = match (tpv.has_fix(), tpv.lat, tpv.lon) {
            (true, Some(lat), Some(lon)) => Some((lat, lon)),
            _ => None,
        };
        match fix {
            Some((lat, lon)) => {
                if self.had_fix == Some(false) {
                    tracing::info!(sensor = %self.id, mode = tpv.mode, "GPS fix acquired");
                }
                out.extend(self.fix_readings(now, &tpv, lat, lon));
            }
            None => {
                if self.had_fix != Some(false) {
                    tracing::warn!(
                        sensor = %self.id,
                        mode = tpv.mode,
                        "GPS has no fix: no position is recorded until it has one (it needs open sky)"
                    );
                }
                out.push(Reading::sensor_error(now, &self.id, Quantity::Latitude));
                out.push(Reading::sensor_error(now, &self.id, Quantity::Longitude));
            }
        }
        self.had_fix = Some(fix.is_some());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate_text;
    use crate::sensors::testing::simulated_source;

    #[test]
    fn haversine_matches_known_distances() {
        // One minute of latitude is one nautical mile (1852 m) to within 0.5 %.
        let d = haversine_m(-16.0, 145.0, -16.0 + 1.0 / 60.0, 145.0);
        assert!((d - 1852.0).abs() < 10.0, "{d}");
        // Quarter of a great circle.
        let q = haversine_m(0.0, 0.0, 0.0, 90.0);
        assert!((q - EARTH_RADIUS_M * std::f64::consts::FRAC_PI_2).abs() < 1e-6);
        assert_eq!(haversine_m(10.0, 20.0, 10.0, 20.0), 0.0);
    }

    #[test]
    fn rules() {
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"gps\"\nid = \"g\"\ngpsd = \"localhost\"\nanchor = { latitude = 95.0, longitude = 10.0, radius_m = 0.0 }\n",
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        let (_, problems) = validate_text(
            "[[sensor]]\ntype = \"gps\"\nid = \"g\"\nanchor = { latitude = -16.9, longitude = 145.8, radius_m = 40.0 }\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    /// The simulated buoy: no fix at first (no position, a sensor_error), then a 3D fix
    /// that swings within the watch radius with the tide and is never off station.
    #[test]
    fn simulated_buoy_swings_on_its_mooring() {
        let t0 = 1_780_272_000_000;
        let (mut src, _) = simulated_source(
            "[hal]\nsimulate = true\n[[sensor]]\ntype = \"gps\"\nid = \"buoy\"\nanchor = { latitude = -16.9, longitude = 145.8, radius_m = 40.0 }\n",
            t0,
        );
        let first = src.sample(t0 + 10_000).unwrap();
        let lat = first
            .iter()
            .find(|r| r.quantity == Quantity::Latitude)
            .unwrap();
        assert_eq!(lat.value, None);
        assert!(lat.flags.contains(Flags::SENSOR_ERROR));
        let mut distances = Vec::new();
        for k in 0..=13 * 60 {
            let now = t0 + 60_000 + k * 60_000;
            let rs = src.sample(now).unwrap();
            let mode = rs.iter().find(|r| r.quantity == Quantity::GpsFixMode);
            assert_eq!(mode.and_then(|r| r.value), Some(3.0));
            let d = rs
                .iter()
                .find(|r| r.quantity == Quantity::AnchorDistance)
                .unwrap();
            assert!(d.flags.is_ok(), "{d:?}");
            distances.push(d.value.unwrap());
        }
        let max = distances.iter().cloned().fold(0.0, f64::max);
        let min = distances.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            max > 20.0 && max < 40.0,
            "swings out with the stream: {max}"
        );
        assert!(min < 12.0, "swings round at slack water: {min}");
    }
}
