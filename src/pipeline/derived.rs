//! Derived quantities: computed from the station's own readings, then stored and
//! published like any other quantity. Each family can be switched off in `[derived]`.
//!
//! This stage owns every statistic over time (DESIGN: "build it once, in one place"):
//!
//! * **Air** (per air sensor, per sample): dew point (Magnus, a = 17.27, b = 237.7 °C),
//!   sea-level pressure, wind chill (NWS/Environment Canada, only for T ≤ 10 °C and wind
//!   above 4.8 km/h, otherwise equal to the air temperature), heat index (NWS Rothfusz
//!   with its adjustments, only from 26.7 °C / 80 °F), feels-like.
//! * **Wind** (WMO practice), once a minute: gust = highest 3-s mean of the last 10 min
//!   and its direction, 2-min and 10-min mean speed, speed-weighted vector-mean direction
//!   of the last 10 min (none when calm).
//! * **Water current** (a paddle-wheel sensor's `current_speed`), once a minute, through
//!   the same windows as the wind: 2-min and 10-min mean speed (no gust, no direction).
//! * **Rain** (per gauge, per reading): rain rate over a sliding 15 min, rain today
//!   (reset at local midnight in the station's zone, so 23-h and 25-h days are right),
//!   rain over the last 24 h. Never negative.
//! * **Water** (per conductivity reading): salinity, PSS-78 ([`super::salinity`]).
//!
//! A derived reading carries the id of the sensor it was derived from. Minute statistics
//! for the minute ending at `M` use readings with `ts ≤ M` and are emitted when the first
//! wind reading after `M` arrives, so every reading of that minute has been seen whatever
//! the order in which sensors delivered them.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::TimeZone;

use super::usable;
use crate::config::{Config, DerivedConfig};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// Magnus coefficients.
const MAGNUS_A: f64 = 17.27;
const MAGNUS_B: f64 = 237.7;

/// Dew point in °C from air temperature (°C) and relative humidity (%), Magnus formula
/// with a = 17.27, b = 237.7 °C. `None` for a humidity of 0 or less.
pub fn dew_point(t_c: f64, rh_pct: f64) -> Option<f64> {
    if rh_pct <= 0.0 {
        return None;
    }
    let gamma = (rh_pct.min(100.0) / 100.0).ln() + MAGNUS_A * t_c / (MAGNUS_B + t_c);
    Some(MAGNUS_B * gamma / (MAGNUS_A - gamma))
}

/// Sea-level pressure in hPa from station pressure (hPa), altitude (m) and air
/// temperature (°C): the hypsometric reduction with the standard lapse rate
/// (0.0065 K/m), as most station software does it.
pub fn sea_level_pressure(p_hpa: f64, altitude_m: f64, t_c: f64) -> f64 {
    let lapse = 0.0065 * altitude_m;
    p_hpa * (1.0 - lapse / (t_c + lapse + 273.15)).powf(-5.257)
}

/// Wind chill in °C (NWS / Environment Canada 2001) from air temperature (°C) and wind
/// speed (km/h at 10 m). Defined for T ≤ 10 °C and V > 4.8 km/h; elsewhere it equals the
/// air temperature.
pub fn wind_chill(t_c: f64, v_kmh: f64) -> f64 {
    if t_c > 10.0 || v_kmh <= 4.8 {
        return t_c;
    }
    let v = v_kmh.powf(0.16);
    13.12 + 0.6215 * t_c - 11.37 * v + 0.3965 * t_c * v
}

/// Heat index in °C (NWS: Rothfusz regression with its low- and high-humidity
/// adjustments, and Steadman's simple formula below 80 °F). `None` below 26.7 °C
/// (80 °F), where the heat index is not defined.
pub fn heat_index(t_c: f64, rh: f64) -> Option<f64> {
    let t = t_c * 9.0 / 5.0 + 32.0;
    if t < 80.0 {
        return None;
    }
    let rh = rh.clamp(0.0, 100.0);
    let simple = 0.5 * (t + 61.0 + (t - 68.0) * 1.2 + rh * 0.094);
    let hi_f = if (simple + t) / 2.0 < 80.0 {
        simple
    } else {
        let mut hi = -42.379 + 2.049_015_23 * t + 10.143_331_27 * rh
            - 0.224_755_41 * t * rh
            - 0.006_837_83 * t * t
            - 0.054_817_17 * rh * rh
            + 0.001_228_74 * t * t * rh
            + 0.000_852_82 * t * rh * rh
            - 0.000_001_99 * t * t * rh * rh;
        if rh < 13.0 && (80.0..=112.0).contains(&t) {
            hi -= (13.0 - rh) / 4.0 * ((17.0 - (t - 95.0).abs()) / 17.0).sqrt();
        } else if rh > 85.0 && (80.0..=87.0).contains(&t) {
            hi += (rh - 85.0) / 10.0 * ((87.0 - t) / 5.0);
        }
        hi
    };
    Some((hi_f - 32.0) * 5.0 / 9.0)
}

/// Feels-like temperature in °C: wind chill where it is defined, heat index where it is
/// defined, the air temperature otherwise.
pub fn feels_like(t_c: f64, rh: f64, v_kmh: Option<f64>) -> f64 {
    if let Some(v) = v_kmh {
        if t_c <= 10.0 && v > 4.8 {
            return wind_chill(t_c, v);
        }
    }
    heat_index(t_c, rh).unwrap_or(t_c)
}

/// Speed-weighted vector mean of `(speed, direction°)` pairs; `None` when calm (every
/// weight zero) — a direction is never invented for still air.
pub fn vector_mean_direction(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut x, mut y, mut w) = (0.0, 0.0, 0.0);
    for (speed, dir) in pairs {
        let r = dir.to_radians();
        x += speed * r.sin();
        y += speed * r.cos();
        w += speed;
    }
    if w <= 0.0 || (x.abs() < 1e-12 && y.abs() < 1e-12) {
        return None;
    }
    Some(crate::reading::compass(x.atan2(y).to_degrees()))
}

/// Values of one sample (one timestamp) of one air sensor.
#[derive(Default)]
struct AirSample {
    ts: Timestamp,
    t: Option<f64>,
    rh: Option<f64>,
    p: Option<f64>,
    done_rh: bool,
    done_p: bool,
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60_000;
const GUST_MS: i64 = 3 * SECOND;
const TEN_MIN: i64 = 10 * MINUTE;
const TWO_MIN: i64 = 2 * MINUTE;
const RAIN_RATE_MS: i64 = 15 * MINUTE;
const DAY: i64 = 86_400_000;
/// Wind speed older than this is not used for wind chill / feels-like.
const WIND_MAX_AGE: i64 = 10 * MINUTE;

/// The quantities a [`Wind`] reads and derives: the wind's, or the water current's.
#[derive(Clone, Copy)]
struct Family {
    /// The instantaneous speed it is fed.
    speed: Quantity,
    /// Its 2-min and 10-min means.
    avg2: Quantity,
    avg10: Quantity,
    /// Whether it has gusts and a direction (the wind) or only means (the current).
    gusts: bool,
}

const WIND: Family = Family {
    speed: Quantity::WindSpeed,
    avg2: Quantity::WindSpeedAvg2m,
    avg10: Quantity::WindSpeedAvg10m,
    gusts: true,
};

const CURRENT: Family = Family {
    speed: Quantity::CurrentSpeed,
    avg2: Quantity::CurrentSpeedAvg2m,
    avg10: Quantity::CurrentSpeedAvg10m,
    gusts: false,
};

impl Default for Family {
    fn default() -> Self {
        WIND
    }
}

/// Station-level wind: the anemometer's samples paired with the vane's by timestamp (and,
/// with the [`CURRENT`] family, the water current's samples alone).
#[derive(Default)]
struct Wind {
    family: Family,
    speed_sensor: Option<SensorId>,
    vane_sensor: Option<SensorId>,
    /// Speed samples of the last 10 min.
    speeds: BTreeMap<Timestamp, f64>,
    /// Direction samples of the last 10 min.
    dirs: BTreeMap<Timestamp, f64>,
    /// Last minute boundary whose statistics were emitted.
    emitted: Option<Timestamp>,
    /// Latest 2-min mean (ts, m/s) for wind chill.
    recent_mean: Option<(Timestamp, f64)>,
    /// The anemometer's sampling interval: a 3-s mean needs samples covering 3 s.
    interval_ms: i64,
}

impl Wind {
    fn prune(&mut self, now: Timestamp) {
        let keep_from = now - TEN_MIN - MINUTE - GUST_MS;
        self.speeds = self.speeds.split_off(&keep_from);
        self.dirs = self.dirs.split_off(&keep_from);
    }

    /// Statistics of the 10 minutes ending at `m`.
    fn minute_stats(&mut self, m: Timestamp, out: &mut Vec<Reading>) {
        let Some(speed_id) = self.speed_sensor.clone() else {
            return;
        };
        let window: Vec<(Timestamp, f64)> = self
            .speeds
            .range(m - TEN_MIN + 1..=m)
            .map(|(t, v)| (*t, *v))
            .collect();
        if window.is_empty() {
            return;
        }
        let mean = |from: Timestamp| -> Option<f64> {
            let v: Vec<f64> = window
                .iter()
                .filter(|(t, _)| *t > from)
                .map(|(_, s)| *s)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        // Highest 3-s running mean ending in the window (using the samples just before
        // it), counted only where the samples cover the full 3 s, and its direction.
        let mut best: Option<(f64, Timestamp)> = None;
        let mut queue: VecDeque<(Timestamp, f64)> = VecDeque::new();
        let mut sum = 0.0;
        let interval = self.interval_ms.max(1);
        for (t, s) in self.speeds.range(m - TEN_MIN - GUST_MS + 1..=m) {
            queue.push_back((*t, *s));
            sum += s;
            while queue.front().is_some_and(|(t0, _)| *t0 <= t - GUST_MS) {
                if let Some((_, s0)) = queue.pop_front() {
                    sum -= s0;
                }
            }
            if *t <= m - TEN_MIN || (queue.len() as i64) * interval < GUST_MS {
                continue;
            }
            let m3 = sum / queue.len() as f64;
            if best.is_none_or(|(b, _)| m3 > b + 1e-12) {
                best = Some((m3, *t));
            }
        }
        if let Some((gust, at)) = best.filter(|_| self.family.gusts) {
            out.push(Reading::new(
                m,
                &speed_id,
                Quantity::WindGust,
                gust.max(0.0),
            ));
            let pairs = self.pairs(at - GUST_MS + 1, at);
            if let (Some(vane), Some(dir)) = (&self.vane_sensor, vector_mean_direction(pairs)) {
                out.push(Reading::new(m, vane, Quantity::WindGustDirection, dir));
            }
        }
        if let Some(m2) = mean(m - TWO_MIN) {
            out.push(Reading::new(m, &speed_id, self.family.avg2, m2));
            self.recent_mean = Some((m, m2));
        }
        if let Some(m10) = mean(m - TEN_MIN) {
            out.push(Reading::new(m, &speed_id, self.family.avg10, m10));
        }
        if let (Some(vane), Some(dir)) = (
            &self.vane_sensor,
            vector_mean_direction(self.pairs(m - TEN_MIN + 1, m)),
        ) {
            out.push(Reading::new(m, vane, Quantity::WindDirectionAvg10m, dir));
        }
    }

    /// Takes a speed or direction sample; emits the statistics of every minute boundary it
    /// has passed.
    fn feed(&mut self, r: &Reading, out: &mut Vec<Reading>) {
        // Emit the statistics of every minute boundary this reading has passed.
        let boundary = (r.ts - 1).div_euclid(MINUTE) * MINUTE;
        match self.emitted {
            None => self.emitted = Some(boundary),
            Some(last) if boundary > last => {
                let mut m = last + MINUTE;
                // After a long gap only the latest boundary matters.
                if boundary - m > TEN_MIN {
                    m = boundary;
                }
                while m <= boundary {
                    self.minute_stats(m, out);
                    m += MINUTE;
                }
                self.emitted = Some(boundary);
            }
            _ => {}
        }
        let Some(v) = usable(r) else {
            return;
        };
        match r.quantity {
            q if q == self.family.speed => {
                self.speed_sensor.get_or_insert_with(|| r.sensor.clone());
                if self.speed_sensor.as_ref() == Some(&r.sensor) {
                    self.speeds.insert(r.ts, v.max(0.0));
                }
            }
            _ => {
                self.vane_sensor.get_or_insert_with(|| r.sensor.clone());
                if self.vane_sensor.as_ref() == Some(&r.sensor) {
                    self.dirs.insert(r.ts, v);
                }
            }
        }
        self.prune(r.ts);
    }

    /// (speed, direction) pairs with both samples at the same timestamp in `[from, to]`.
    fn pairs(&self, from: Timestamp, to: Timestamp) -> Vec<(f64, f64)> {
        self.speeds
            .range(from..=to)
            .filter_map(|(t, s)| self.dirs.get(t).map(|d| (*s, *d)))
            .collect()
    }
}

/// Rain accounting of one gauge.
struct Rain {
    /// (ts, mm) of the last 24 h.
    window: VecDeque<(Timestamp, f64)>,
    /// Local day being summed and its total.
    day: Option<chrono::NaiveDate>,
    today: f64,
}

/// The derived-quantities stage.
pub struct Derived {
    enabled: DerivedConfig,
    altitude_m: f64,
    tz: chrono_tz::Tz,
    air: HashMap<SensorId, AirSample>,
    wind: Wind,
    current: Wind,
    rain: HashMap<SensorId, Rain>,
    salinity: super::salinity::Salinity,
}

impl Derived {
    /// The stage for `config`.
    pub fn new(config: &Config) -> Derived {
        Derived {
            enabled: config.derived.clone(),
            altitude_m: config.station.altitude_m,
            tz: config.station.tz(),
            air: HashMap::new(),
            wind: Wind {
                interval_ms: config
                    .sensors
                    .iter()
                    .find(|s| s.kind.type_name() == "anemometer")
                    .map_or(1_000, |s| s.interval.as_millis_i64()),
                ..Wind::default()
            },
            current: Wind {
                family: CURRENT,
                ..Wind::default()
            },
            rain: HashMap::new(),
            salinity: super::salinity::Salinity {
                pressure_dbar: config.derived.salinity_pressure_dbar,
            },
        }
    }

    /// Feeds history (e.g. the last 24 h from the store after a restart) without
    /// emitting anything, so rain today and the wind windows continue where they were.
    pub fn prime(&mut self, history: &[Reading]) {
        let mut sink = Vec::new();
        for r in history {
            self.feed(r, &mut sink);
            sink.clear();
        }
    }

    /// Feeds one (QC-checked) reading; appends derived readings to `out`.
    pub fn feed(&mut self, r: &Reading, out: &mut Vec<Reading>) {
        match r.quantity {
            Quantity::AirTemperature | Quantity::RelativeHumidity | Quantity::AirPressure => {
                self.feed_air(r, out)
            }
            Quantity::WindSpeed | Quantity::WindDirection => self.feed_wind(r, out),
            Quantity::CurrentSpeed if self.enabled.current => self.current.feed(r, out),
            Quantity::Rain => self.feed_rain(r, out),
            Quantity::Conductivity if self.enabled.salinity => self.salinity.feed(r, out),
            _ => {}
        }
    }

    fn wind_kmh(&self, now: Timestamp) -> Option<f64> {
        self.wind
            .recent_mean
            .filter(|(ts, _)| now - ts <= WIND_MAX_AGE)
            .map(|(_, v)| v * 3.6)
    }

    fn feed_air(&mut self, r: &Reading, out: &mut Vec<Reading>) {
        let wind_kmh = self.wind_kmh(r.ts);
        let s = self.air.entry(r.sensor.clone()).or_default();
        if s.ts != r.ts {
            *s = AirSample {
                ts: r.ts,
                ..AirSample::default()
            };
        }
        let v = usable(r);
        match r.quantity {
            Quantity::AirTemperature => s.t = v,
            Quantity::RelativeHumidity => s.rh = v,
            Quantity::AirPressure => s.p = v,
            _ => {}
        }
        let id = &r.sensor;
        if let (Some(t), Some(rh), false) = (s.t, s.rh, s.done_rh) {
            s.done_rh = true;
            if self.enabled.dew_point {
                if let Some(td) = dew_point(t, rh) {
                    out.push(Reading::new(r.ts, id, Quantity::DewPoint, td));
                }
            }
            if self.enabled.wind_chill {
                if let Some(v) = wind_kmh {
                    out.push(Reading::new(
                        r.ts,
                        id,
                        Quantity::WindChill,
                        wind_chill(t, v),
                    ));
                }
            }
            if self.enabled.heat_index {
                if let Some(hi) = heat_index(t, rh) {
                    out.push(Reading::new(r.ts, id, Quantity::HeatIndex, hi));
                }
            }
            if self.enabled.feels_like {
                out.push(Reading::new(
                    r.ts,
                    id,
                    Quantity::FeelsLike,
                    feels_like(t, rh, wind_kmh),
                ));
            }
        }
        if let (Some(t), Some(p), false) = (s.t, s.p, s.done_p) {
            s.done_p = true;
            if self.enabled.sea_level_pressure {
                out.push(Reading::new(
                    r.ts,
                    id,
                    Quantity::SeaLevelPressure,
                    sea_level_pressure(p, self.altitude_m, t),
                ));
            }
        }
    }

    fn feed_wind(&mut self, r: &Reading, out: &mut Vec<Reading>) {
        if self.enabled.wind_gust {
            self.wind.feed(r, out);
        }
    }

    fn local_day(&self, ts: Timestamp) -> Option<chrono::NaiveDate> {
        self.tz
            .timestamp_millis_opt(ts)
            .single()
            .map(|t| t.date_naive())
    }

    fn feed_rain(&mut self, r: &Reading, out: &mut Vec<Reading>) {
        if !self.enabled.rain {
            return;
        }
        let Some(mm) = usable(r) else {
            return;
        };
        let mm = mm.max(0.0);
        let day = self.local_day(r.ts);
        let g = self.rain.entry(r.sensor.clone()).or_insert(Rain {
            window: VecDeque::new(),
            day,
            today: 0.0,
        });
        if g.day != day {
            g.day = day;
            g.today = 0.0;
        }
        g.today += mm;
        g.window.push_back((r.ts, mm));
        while g.window.front().is_some_and(|(t, _)| *t <= r.ts - DAY) {
            g.window.pop_front();
        }
        let last_15: f64 = g
            .window
            .iter()
            .filter(|(t, _)| *t > r.ts - RAIN_RATE_MS)
            .map(|(_, v)| v)
            .sum();
        let last_24: f64 = g.window.iter().map(|(_, v)| v).sum();
        let id = &r.sensor;
        out.push(Reading::new(
            r.ts,
            id,
            Quantity::RainRate,
            last_15 * (3_600_000.0 / RAIN_RATE_MS as f64),
        ));
        out.push(Reading::new(r.ts, id, Quantity::RainToday, g.today));
        out.push(Reading::new(r.ts, id, Quantity::RainLast24h, last_24));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn dew_point_worked_values() {
        // Magnus (a = 17.27, b = 237.7): 25 °C at 60 % → 16.69 °C; 0 °C at 100 % → 0 °C;
        // 10 °C at 50 % → 0.06 °C.
        assert!(close(dew_point(25.0, 60.0).unwrap(), 16.69, 0.01));
        assert!(dew_point(0.0, 100.0).unwrap().abs() < 1e-9);
        assert!(close(dew_point(10.0, 50.0).unwrap(), 0.06, 0.02));
        assert_eq!(dew_point(20.0, 0.0), None);
    }

    #[test]
    fn sea_level_pressure_worked_values() {
        // 1000 hPa at 100 m and 15 °C → 1011.9 hPa; at sea level nothing changes.
        assert!(close(
            sea_level_pressure(1000.0, 100.0, 15.0),
            1011.92,
            0.05
        ));
        assert!(close(sea_level_pressure(1013.25, 0.0, 15.0), 1013.25, 1e-9));
    }

    #[test]
    fn wind_chill_matches_environment_canada_table() {
        // Environment Canada wind chill table (rounded to whole °C):
        // −10 °C at 30 km/h → −20; −20 °C at 50 km/h → −35; 0 °C at 10 km/h → −3.
        assert_eq!(wind_chill(-10.0, 30.0).round(), -20.0);
        assert_eq!(wind_chill(-20.0, 50.0).round(), -35.0);
        assert_eq!(wind_chill(0.0, 10.0).round(), -3.0);
        // Undefined: equals the air temperature.
        assert_eq!(wind_chill(15.0, 40.0), 15.0);
        assert_eq!(wind_chill(-5.0, 4.0), -5.0);
    }

    #[test]
    fn heat_index_matches_nws_table() {
        // NWS heat index chart (°F): 90 °F at 70 % → 106; 96 °F at 50 % → 108;
        // 80 °F at 40 % → 80; 86 °F at 90 % → 105.
        let f = |t_f: f64, rh: f64| {
            heat_index((t_f - 32.0) * 5.0 / 9.0, rh).map(|c| c * 9.0 / 5.0 + 32.0)
        };
        assert_eq!(f(90.0, 70.0).unwrap().round(), 106.0);
        assert_eq!(f(96.0, 50.0).unwrap().round(), 108.0);
        assert_eq!(f(80.0, 40.0).unwrap().round(), 80.0);
        assert_eq!(f(86.0, 90.0).unwrap().round(), 105.0);
        // Low-humidity adjustment: 100 °F at 10 % (NWS worked example: 95.7 °F − adj).
        assert!(f(100.0, 10.0).unwrap() < 100.0);
        assert_eq!(heat_index(20.0, 50.0), None);
    }

    #[test]
    fn feels_like_picks_the_defined_index() {
        assert_eq!(feels_like(-10.0, 50.0, Some(30.0)), wind_chill(-10.0, 30.0));
        assert_eq!(
            feels_like(32.0, 70.0, Some(10.0)),
            heat_index(32.0, 70.0).unwrap()
        );
        assert_eq!(feels_like(18.0, 50.0, Some(20.0)), 18.0);
    }

    #[test]
    fn vector_mean_wraps_through_north() {
        let d = vector_mean_direction([(1.0, 350.0), (1.0, 10.0)]).unwrap();
        assert!(close(d, 0.0, 1e-9) || close(d, 360.0, 1e-9), "{d}");
        // Weighted: a strong east wind dominates a weak west one.
        let d = vector_mean_direction([(5.0, 90.0), (1.0, 270.0)]).unwrap();
        assert!(close(d, 90.0, 1e-9));
        assert_eq!(vector_mean_direction([(0.0, 90.0), (0.0, 180.0)]), None);
        // A hair west of north is north, never 360.
        let d = vector_mean_direction([(1.0, 360.0 - 1e-14)]).unwrap();
        assert!((0.0..360.0).contains(&d), "{d}");
    }

    fn feed_all(d: &mut Derived, rs: &[Reading]) -> Vec<Reading> {
        let mut out = Vec::new();
        for r in rs {
            d.feed(r, &mut out);
        }
        out
    }

    #[test]
    fn gust_is_highest_three_second_mean_of_the_minute() {
        let c = Config::from_toml("", "t").unwrap();
        let mut d = Derived::new(&c);
        let w: SensorId = Arc::from("wind");
        let v: SensorId = Arc::from("vane");
        let speeds = [2.0, 2.0, 9.0, 3.0, 3.0, 1.0];
        let mut rs = Vec::new();
        for (i, s) in speeds.iter().enumerate() {
            let ts = 54_000 + (i as i64 + 1) * 1000; // 55 s .. 60 s
            rs.push(Reading::new(ts, &w, Quantity::WindSpeed, *s));
            rs.push(Reading::new(ts, &v, Quantity::WindDirection, 90.0));
        }
        rs.push(Reading::new(61_000, &w, Quantity::WindSpeed, 1.0));
        let out = feed_all(&mut d, &rs);
        let get = |q: Quantity| out.iter().find(|r| r.quantity == q).and_then(|r| r.value);
        // 3-s means: 2, 2, 4.33, 4.67, 5.0 ← highest, 2.33.
        assert_eq!(get(Quantity::WindGust), Some(5.0));
        assert!(close(get(Quantity::WindGustDirection).unwrap(), 90.0, 1e-9));
        assert!(close(
            get(Quantity::WindSpeedAvg10m).unwrap(),
            20.0 / 6.0,
            1e-9
        ));
        assert!(out.iter().all(|r| r.ts == 60_000));
    }

    /// The water current gets the wind's 2-/10-min means under its own names, beside the
    /// wind's own (no gust, no direction), and `[derived] current = false` turns them off.
    #[test]
    fn current_means_use_the_wind_windows() {
        let c = Config::from_toml("", "t").unwrap();
        let mut d = Derived::new(&c);
        let cur: SensorId = Arc::from("paddle");
        let w: SensorId = Arc::from("wind");
        let mut rs = Vec::new();
        // 0.2 m/s for 8 minutes, then 0.5 m/s: every 5 s up to 10 min.
        for i in 1..=120 {
            let ts = i * 5_000;
            let v = if ts <= 480_000 { 0.2 } else { 0.5 };
            rs.push(Reading::new(ts, &cur, Quantity::CurrentSpeed, v));
            rs.push(Reading::new(ts, &w, Quantity::WindSpeed, 4.0));
        }
        rs.push(Reading::new(600_001, &cur, Quantity::CurrentSpeed, 0.5));
        rs.push(Reading::new(600_001, &w, Quantity::WindSpeed, 4.0));
        let out = feed_all(&mut d, &rs);
        let at = |q: Quantity, s: &SensorId| {
            out.iter()
                .find(|r| r.quantity == q && r.ts == 600_000 && &r.sensor == s)
                .and_then(|r| r.value)
        };
        assert!(close(
            at(Quantity::CurrentSpeedAvg2m, &cur).unwrap(),
            0.5,
            1e-9
        ));
        assert!(close(
            at(Quantity::CurrentSpeedAvg10m, &cur).unwrap(),
            (96.0 * 0.2 + 24.0 * 0.5) / 120.0,
            1e-9
        ));
        assert!(close(at(Quantity::WindSpeedAvg10m, &w).unwrap(), 4.0, 1e-9));
        assert!(!out
            .iter()
            .any(|r| r.sensor == cur && r.quantity == Quantity::WindGust));

        let c = Config::from_toml("[derived]\ncurrent = false\n", "t").unwrap();
        let mut d = Derived::new(&c);
        let out = feed_all(&mut d, &rs);
        assert!(!out.iter().any(|r| r.sensor == cur));
    }

    /// Readings QC flagged (spike, stuck, inconsistent, out of range) feed no derived value:
    /// a spiked wind sample does not become the gust, a stuck humidity gives no dew point.
    #[test]
    fn flagged_inputs_feed_nothing() {
        use crate::reading::Flags;
        let c = Config::from_toml("", "t").unwrap();
        let mut d = Derived::new(&c);
        let w: SensorId = Arc::from("wind");
        let mut rs = Vec::new();
        for i in 1..=61 {
            let mut r = Reading::new(i * 1000, &w, Quantity::WindSpeed, 3.0);
            if i == 30 {
                r.value = Some(40.0);
                r.flags = Flags::SPIKE;
            }
            rs.push(r);
        }
        let out = feed_all(&mut d, &rs);
        let gust = out.iter().find(|r| r.quantity == Quantity::WindGust);
        assert_eq!(gust.and_then(|r| r.value), Some(3.0));
        let mean = out.iter().find(|r| r.quantity == Quantity::WindSpeedAvg10m);
        assert_eq!(mean.and_then(|r| r.value), Some(3.0));

        let air: SensorId = Arc::from("air");
        for flag in [Flags::STUCK, Flags::INCONSISTENT, Flags::OUT_OF_RANGE] {
            let mut d = Derived::new(&c);
            let mut rh = Reading::new(10_000, &air, Quantity::RelativeHumidity, 104.5);
            rh.flags = flag;
            let t = Reading::new(10_000, &air, Quantity::AirTemperature, 12.0);
            let out = feed_all(&mut d, &[t, rh]);
            assert!(
                !out.iter().any(|r| r.quantity == Quantity::DewPoint),
                "{flag}: {out:?}"
            );
        }
    }

    #[test]
    fn calm_has_no_mean_direction() {
        let c = Config::from_toml("", "t").unwrap();
        let mut d = Derived::new(&c);
        let w: SensorId = Arc::from("wind");
        let v: SensorId = Arc::from("vane");
        let mut rs = Vec::new();
        for i in 1..=61 {
            rs.push(Reading::new(i * 1000, &w, Quantity::WindSpeed, 0.0));
            rs.push(Reading::new(i * 1000, &v, Quantity::WindDirection, 45.0));
        }
        let out = feed_all(&mut d, &rs);
        assert!(out
            .iter()
            .any(|r| r.quantity == Quantity::WindGust && r.value == Some(0.0)));
        assert!(!out
            .iter()
            .any(|r| r.quantity == Quantity::WindDirectionAvg10m));
        assert!(!out
            .iter()
            .any(|r| r.quantity == Quantity::WindGustDirection));
    }

    #[test]
    fn rain_today_resets_at_local_midnight_on_dst_days() {
        let mut c = Config::from_toml("", "t").unwrap();
        c.station.timezone = "Europe/London".into();
        let mut d = Derived::new(&c);
        let g: SensorId = Arc::from("rain");
        // 2026-03-29 is the spring-forward day (23 h); local midnight 2026-03-30 = 23:00Z.
        let day_start = 1_774_742_400_000; // 2026-03-29T00:00Z = local midnight (GMT)
        let next_local_midnight = day_start + 23 * 3_600_000;
        let mut rs = Vec::new();
        let mut t = day_start + 60_000;
        while t < next_local_midnight + 2 * 3_600_000 {
            rs.push(Reading::new(t, &g, Quantity::Rain, 0.2794));
            t += 3_600_000;
        }
        let out = feed_all(&mut d, &rs);
        let today: Vec<(Timestamp, f64)> = out
            .iter()
            .filter(|r| r.quantity == Quantity::RainToday)
            .map(|r| (r.ts, r.value.unwrap()))
            .collect();
        let resets = today.windows(2).filter(|w| w[1].1 < w[0].1).count();
        assert_eq!(resets, 1);
        let before = today
            .iter()
            .rfind(|(ts, _)| *ts < next_local_midnight)
            .unwrap();
        assert!(
            close(before.1, 23.0 * 0.2794, 1e-9),
            "23 tips on a 23-h day: {}",
            before.1
        );
        let after = today
            .iter()
            .find(|(ts, _)| *ts >= next_local_midnight)
            .unwrap();
        assert!(close(after.1, 0.2794, 1e-12));
    }

    #[test]
    fn rain_rate_and_last_24h() {
        let c = Config::from_toml("", "t").unwrap();
        let mut d = Derived::new(&c);
        let g: SensorId = Arc::from("rain");
        let rs: Vec<Reading> = (1..=20)
            .map(|i| Reading::new(i * 60_000, &g, Quantity::Rain, 0.2794))
            .collect();
        let out = feed_all(&mut d, &rs);
        let last = |q: Quantity| {
            out.iter()
                .rev()
                .find(|r| r.quantity == q)
                .and_then(|r| r.value)
        };
        // 15 tips in the last 15 min → 15 × 0.2794 × 4 mm/h.
        assert!(close(
            last(Quantity::RainRate).unwrap(),
            15.0 * 0.2794 * 4.0,
            1e-9
        ));
        assert!(close(
            last(Quantity::RainLast24h).unwrap(),
            20.0 * 0.2794,
            1e-9
        ));
    }

    #[test]
    fn priming_continues_rain_today_after_restart() {
        let c = Config::from_toml("", "t").unwrap();
        let g: SensorId = Arc::from("rain");
        let history: Vec<Reading> = (1..=5)
            .map(|i| Reading::new(i * 60_000, &g, Quantity::Rain, 1.0))
            .collect();
        let mut d = Derived::new(&c);
        d.prime(&history);
        let out = feed_all(&mut d, &[Reading::new(360_000, &g, Quantity::Rain, 1.0)]);
        let today = out
            .iter()
            .find(|r| r.quantity == Quantity::RainToday)
            .unwrap();
        assert_eq!(today.value, Some(6.0));
    }
}
