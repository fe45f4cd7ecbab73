//! Derived quantities: computed from the station's own readings and then stored and
//! published like any other quantity. Each can be switched off in `[derived]`.
//!
//! A derived reading carries the id of the sensor it was derived from (the BME280's id
//! for dew point, the anemometer's for gusts), so two instruments never collide.

use std::collections::{HashMap, VecDeque};

use super::usable;
use crate::config::{Config, DerivedConfig};
use crate::reading::{Quantity, Reading, SensorId, Timestamp};

/// Magnus coefficients (Alduchov & Eskridge style, as used by most station software).
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
/// temperature (°C), by the hypsometric reduction with the standard lapse rate
/// (0.0065 K/m) used by the WMO and most station software.
pub fn sea_level_pressure(p_hpa: f64, altitude_m: f64, t_c: f64) -> f64 {
    let lapse = 0.0065 * altitude_m;
    p_hpa * (1.0 - lapse / (t_c + lapse + 273.15)).powf(-5.257)
}

/// Values of one sample (one timestamp) of one multi-quantity sensor.
#[derive(Default)]
struct Sample {
    ts: Timestamp,
    t: Option<f64>,
    rh: Option<f64>,
    p: Option<f64>,
    dew_done: bool,
    slp_done: bool,
}

/// Rolling wind state of one anemometer.
#[derive(Default)]
struct Wind {
    /// Speed samples of the last 3 s: (ts, m/s).
    recent: VecDeque<(Timestamp, f64)>,
    /// 3-s means of the last 10 min: (ts, m/s).
    means: VecDeque<(Timestamp, f64)>,
    /// Minute of the last gust emitted.
    last_minute: Option<i64>,
}

/// WMO gust averaging time.
const GUST_WINDOW_MS: i64 = 3_000;
/// Gusts are reported as the highest 3-s mean of the last 10 minutes.
const GUST_REPORT_MS: i64 = 600_000;
/// A gust reading is emitted once a minute.
const GUST_EVERY_MS: i64 = 60_000;

/// The derived-quantities stage.
pub struct Derived {
    enabled: DerivedConfig,
    altitude_m: f64,
    air: HashMap<SensorId, Sample>,
    wind: HashMap<SensorId, Wind>,
}

impl Derived {
    /// The stage for `config`.
    pub fn new(config: &Config) -> Derived {
        Derived {
            enabled: config.derived.clone(),
            altitude_m: config.station.altitude_m,
            air: HashMap::new(),
            wind: HashMap::new(),
        }
    }

    /// Feeds one (QC-checked) reading; appends derived readings to `out`.
    pub fn feed(&mut self, r: &Reading, out: &mut Vec<Reading>) {
        match r.quantity {
            Quantity::AirTemperature | Quantity::RelativeHumidity | Quantity::AirPressure => {
                self.feed_air(r, out)
            }
            Quantity::WindSpeed => self.feed_wind(r, out),
            _ => {}
        }
    }

    fn feed_air(&mut self, r: &Reading, out: &mut Vec<Reading>) {
        let s = self.air.entry(r.sensor.clone()).or_default();
        if s.ts != r.ts {
            *s = Sample {
                ts: r.ts,
                ..Sample::default()
            };
        }
        let v = usable(r);
        match r.quantity {
            Quantity::AirTemperature => s.t = v,
            Quantity::RelativeHumidity => s.rh = v,
            Quantity::AirPressure => s.p = v,
            _ => {}
        }
        if self.enabled.dew_point && !s.dew_done {
            if let (Some(t), Some(rh)) = (s.t, s.rh) {
                s.dew_done = true;
                if let Some(td) = dew_point(t, rh) {
                    out.push(Reading::new(r.ts, &r.sensor, Quantity::DewPoint, td));
                }
            }
        }
        if self.enabled.sea_level_pressure && !s.slp_done {
            if let (Some(t), Some(p)) = (s.t, s.p) {
                s.slp_done = true;
                out.push(Reading::new(
                    r.ts,
                    &r.sensor,
                    Quantity::SeaLevelPressure,
                    sea_level_pressure(p, self.altitude_m, t),
                ));
            }
        }
    }

    fn feed_wind(&mut self, r: &Reading, out: &mut Vec<Reading>) {
        if !self.enabled.wind_gust {
            return;
        }
        let Some(v) = usable(r) else {
            return;
        };
        let w = self.wind.entry(r.sensor.clone()).or_default();
        w.recent.push_back((r.ts, v));
        while w.recent.front().is_some_and(|(ts, _)| *ts <= r.ts - GUST_WINDOW_MS) {
            w.recent.pop_front();
        }
        let mean = w.recent.iter().map(|(_, s)| s).sum::<f64>() / w.recent.len() as f64;
        w.means.push_back((r.ts, mean));
        while w.means.front().is_some_and(|(ts, _)| *ts <= r.ts - GUST_REPORT_MS) {
            w.means.pop_front();
        }
        let minute = r.ts.div_euclid(GUST_EVERY_MS);
        let due = match w.last_minute {
            None => r.ts.rem_euclid(GUST_EVERY_MS) == 0,
            Some(m) => minute > m,
        };
        if w.last_minute.is_none() {
            w.last_minute = Some(minute);
        }
        if due {
            w.last_minute = Some(minute);
            let gust = w.means.iter().map(|(_, m)| *m).fold(0.0, f64::max);
            out.push(Reading::new(r.ts, &r.sensor, Quantity::WindGust, gust));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn dew_point_worked_values() {
        // Magnus (a = 17.27, b = 237.7): 25 °C at 60 % → 16.69 °C; 0 °C at 100 % → 0 °C.
        assert!((dew_point(25.0, 60.0).unwrap() - 16.69).abs() < 0.01);
        assert!(dew_point(0.0, 100.0).unwrap().abs() < 1e-9);
        assert!((dew_point(10.0, 50.0).unwrap() - 0.06).abs() < 0.02);
        assert_eq!(dew_point(20.0, 0.0), None);
    }

    #[test]
    fn sea_level_pressure_worked_values() {
        // 1000 hPa at 100 m and 15 °C → 1011.9 hPa; at sea level nothing changes.
        assert!((sea_level_pressure(1000.0, 100.0, 15.0) - 1011.92).abs() < 0.05);
        assert!((sea_level_pressure(1013.25, 0.0, 15.0) - 1013.25).abs() < 1e-9);
    }

    #[test]
    fn gust_is_highest_three_second_mean() {
        let c = Config::from_toml("", "t").unwrap();
        let mut d = Derived::new(&c);
        let s: SensorId = Arc::from("wind");
        let speeds = [2.0, 2.0, 9.0, 3.0, 3.0, 1.0];
        let mut out = Vec::new();
        for (i, v) in speeds.iter().enumerate() {
            let ts = 60_000 * 5 + (i as i64 + 1) * 1000 - 6000;
            d.feed(&Reading::new(ts, &s, Quantity::WindSpeed, *v), &mut out);
        }
        // Next minute: a gust is emitted.
        d.feed(&Reading::new(360_000, &s, Quantity::WindSpeed, 1.0), &mut out);
        let gust: Vec<f64> = out
            .iter()
            .filter(|r| r.quantity == Quantity::WindGust)
            .filter_map(|r| r.value)
            .collect();
        // 3-s means: (2+2+9)/3 = 4.33, (2+9+3)/3 = 4.67, (9+3+3)/3 = 5.0 ← highest.
        assert_eq!(gust.last().copied(), Some(5.0));
    }
}
