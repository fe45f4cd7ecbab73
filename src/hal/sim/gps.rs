//! The simulated gpsd: a buoy that swings on its mooring with the tide.
//!
//! It speaks gpsd's JSON (`SKY` and `TPV` lines), which the GPS kind reads through the
//! same parser as a real gpsd's ([`crate::hal::gpsd::parse_line`]). The receiver has no fix
//! for its first [`FIX_AFTER_MS`] after the start (a cold start), then a 3D fix. The buoy
//! lies down-current of its anchor: the tidal stream (period [`TIDE_PERIOD_MS`], the
//! semidiurnal M2 tide, the same as [`super::Weather::current_speed`]) pushes it out along the channel, and at slack water it swings
//! round across it, always within [`SWING_FRACTION`] of the watch radius; waves rock it on
//! a small orbit, which is most of its speed over ground.

use std::f64::consts::TAU;

use super::weather::TIDE_PERIOD_MS;
use crate::reading::{format_ts, Timestamp};

/// A cold start: no fix for this long after the start, ms.
pub const FIX_AFTER_MS: i64 = 40_000;
/// The swing's reach as a fraction of the anchor watch radius.
pub const SWING_FRACTION: f64 = 0.6;
/// Metres per degree of latitude.
pub const METRES_PER_DEGREE: f64 = 111_320.0;
/// Wave orbit: radius (m) and period (ms).
const WAVE_RADIUS_M: f64 = 0.5;
const WAVE_PERIOD_MS: f64 = 9_000.0;

/// Where the simulated buoy is moored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mooring {
    /// Anchor latitude, degrees north.
    pub latitude: f64,
    /// Anchor longitude, degrees east.
    pub longitude: f64,
    /// Reach of the swing, m.
    pub swing_m: f64,
}

/// A simulated gpsd serving one receiver on a moored buoy.
#[derive(Debug, Clone)]
pub struct SimGpsd {
    mooring: Mooring,
    start: Timestamp,
    /// Direction of the flood stream, radians from north (seeded).
    channel: f64,
}

impl SimGpsd {
    /// The receiver on `mooring`, switched on at station time `start`.
    pub fn new(mooring: Mooring, start: Timestamp, seed: u64) -> SimGpsd {
        SimGpsd {
            mooring,
            start,
            channel: (seed % 360) as f64 * TAU / 360.0,
        }
    }

    /// The buoy's offset from its anchor at `t` (east, north in m) and its velocity (m/s).
    pub fn offset(&self, t: Timestamp) -> ((f64, f64), (f64, f64)) {
        let r = self.mooring.swing_m;
        let w_tide = TAU / TIDE_PERIOD_MS;
        let w_wave = TAU / WAVE_PERIOD_MS;
        let tp = w_tide * t as f64;
        let wp = w_wave * t as f64;
        // Along the channel with the stream, across it at slack water.
        let (along, across) = (r * tp.sin(), 0.3 * r * tp.cos());
        let (v_along, v_across) = (r * w_tide * tp.cos(), -0.3 * r * w_tide * tp.sin());
        let (s, c) = self.channel.sin_cos();
        let east = along * s + across * c + WAVE_RADIUS_M * wp.cos();
        let north = along * c - across * s + WAVE_RADIUS_M * wp.sin();
        let ve = (v_along * s + v_across * c - WAVE_RADIUS_M * w_wave * wp.sin()) * 1000.0;
        let vn = (v_along * c - v_across * s + WAVE_RADIUS_M * w_wave * wp.cos()) * 1000.0;
        ((east, north), (ve, vn))
    }

    /// The lines gpsd would have sent for the receiver's report at station time `now`.
    pub fn lines(&mut self, now: Timestamp, out: &mut Vec<String>) {
        let time = format_ts(now);
        if now - self.start < FIX_AFTER_MS {
            out.push(r#"{"class":"SKY","device":"/dev/serial0","nSat":3,"uSat":0}"#.into());
            out.push(format!(
                r#"{{"class":"TPV","device":"/dev/serial0","mode":1,"time":"{time}"}}"#
            ));
            return;
        }
        let ((east, north), (ve, vn)) = self.offset(now);
        let lat = self.mooring.latitude + north / METRES_PER_DEGREE;
        let lon = self.mooring.longitude
            + east / (METRES_PER_DEGREE * self.mooring.latitude.to_radians().cos().max(0.01));
        let used = 7 + (now / 600_000).rem_euclid(4);
        let speed = ve.hypot(vn);
        out.push(format!(
            r#"{{"class":"SKY","device":"/dev/serial0","nSat":{},"uSat":{used}}}"#,
            used + 3
        ));
        out.push(format!(
            r#"{{"class":"TPV","device":"/dev/serial0","mode":3,"time":"{time}","lat":{lat:.9},"lon":{lon:.9},"speed":{speed:.3}}}"#
        ));
    }
}
