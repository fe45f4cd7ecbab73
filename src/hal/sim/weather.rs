//! Seeded, deterministic simulated weather.
//!
//! Every quantity is a pure function of the seed and the time, so a run is repeatable
//! whatever the order in which tasks sample it: the same seed and the same day give the
//! same readings. Smooth "value noise" at several time scales supplies passing fronts,
//! gusts, veering wind and showers on top of the diurnal cycle.

use crate::reading::Timestamp;

const HOUR_MS: f64 = 3_600_000.0;
const DAY_MS: f64 = 86_400_000.0;
/// The M2 tide: 12 h 25 min, ms (the tidal stream and the moored buoy's swing).
pub const TIDE_PERIOD_MS: f64 = 44_712_000.0;

/// The simulated sky and sea above one station.
#[derive(Debug, Clone)]
pub struct Weather {
    seed: u64,
    /// Offset of local solar time from UTC, in ms (longitude / 15° per hour).
    solar_offset_ms: f64,
    /// Station altitude in metres (station pressure falls with height).
    altitude_m: f64,
}

/// SplitMix64: a tiny, well-mixed hash for lattice noise.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Uniform value in [-1, 1] for a lattice point.
fn lattice(seed: u64, channel: u64, k: i64) -> f64 {
    let h = mix(seed ^ mix(channel.wrapping_mul(0x1000_0000_01B3) ^ (k as u64)));
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

impl Weather {
    /// Weather for a station at `longitude` (degrees east) and `altitude_m`.
    pub fn new(seed: u64, longitude: f64, altitude_m: f64) -> Weather {
        Weather {
            seed,
            solar_offset_ms: longitude / 15.0 * HOUR_MS,
            altitude_m,
        }
    }

    /// Smooth noise in [-1, 1] with features about `scale_ms` apart.
    fn noise(&self, channel: u64, t: Timestamp, scale_ms: f64) -> f64 {
        let x = t as f64 / scale_ms;
        let k = x.floor();
        let f = x - k;
        let s = f * f * (3.0 - 2.0 * f);
        let a = lattice(self.seed, channel, k as i64);
        let b = lattice(self.seed, channel, k as i64 + 1);
        a + (b - a) * s
    }

    /// Hour of local solar time, 0..24.
    fn solar_hour(&self, t: Timestamp) -> f64 {
        ((t as f64 + self.solar_offset_ms).rem_euclid(DAY_MS)) / HOUR_MS
    }

    /// Cloudiness 0..1 from passing fronts: damps the diurnal swing, feeds showers.
    fn cloud(&self, t: Timestamp) -> f64 {
        (0.5 + 0.45 * self.noise(1, t, 9.0 * HOUR_MS) + 0.1 * self.noise(2, t, 2.0 * HOUR_MS))
            .clamp(0.0, 1.0)
    }

    /// Air temperature in °C: coolest near dawn, warmest mid-afternoon.
    pub fn air_temperature(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        let swing = 5.0 * (1.0 - 0.6 * self.cloud(t));
        let diurnal = -(std::f64::consts::TAU * (h - 3.0) / 24.0).cos();
        12.0 + 4.0 * self.noise(3, t, 36.0 * HOUR_MS)
            + swing * diurnal
            + 0.15 * self.noise(4, t, 60_000.0)
    }

    /// Relative humidity in %: anti-correlated with the temperature, higher under cloud.
    pub fn relative_humidity(&self, t: Timestamp) -> f64 {
        let base = 75.0 + 15.0 * self.cloud(t) - 10.0;
        let dt = self.air_temperature(t) - 12.0;
        (base - 3.2 * dt + 1.0 * self.noise(5, t, 120_000.0)).clamp(18.0, 99.5)
    }

    /// Sea-level pressure in hPa, drifting as fronts pass.
    pub fn sea_level_pressure(&self, t: Timestamp) -> f64 {
        1013.0 + 14.0 * self.noise(6, t, 30.0 * HOUR_MS) - 6.0 * (self.cloud(t) - 0.5)
            + 0.05 * self.noise(7, t, 600_000.0)
    }

    /// Station pressure in hPa at the station's altitude.
    pub fn station_pressure(&self, t: Timestamp) -> f64 {
        let t_k = self.air_temperature(t) + 273.15;
        self.sea_level_pressure(t)
            * (-self.altitude_m * 9.80665 * 0.028_964_4 / (8.314_462 * t_k)).exp()
    }

    /// Speed of the tidal stream at `t`, m/s: the semidiurnal tide ([`TIDE_PERIOD_MS`])
    /// runs up to about 0.8 m/s at mid-flood and mid-ebb and is slack in between; the
    /// simulated GPS buoy swings out with it.
    pub fn current_speed(&self, t: Timestamp) -> f64 {
        let phase = std::f64::consts::TAU * t as f64 / TIDE_PERIOD_MS;
        let eddies = 0.1 * self.noise(11, t, 20_000.0);
        (0.8 * phase.sin().abs() * (1.0 + eddies) + 0.02).max(0.0)
    }

    /// Wind speed in m/s: a breeze that strengthens by day, with gusts and calm spells.
    pub fn wind_speed(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        let daytime = 1.0 + 0.5 * (std::f64::consts::TAU * (h - 14.0) / 24.0).cos();
        let mean = (3.0 + 2.5 * self.noise(8, t, 5.0 * HOUR_MS)) * daytime;
        let turbulence = 0.35 * self.noise(9, t, 6_000.0) + 0.2 * self.noise(10, t, 1_500.0);
        (mean * (1.0 + turbulence)).max(0.0)
    }

    /// Direction the wind blows from, degrees 0..360 (0 = N, clockwise): veering slowly,
    /// wobbling quickly.
    pub fn wind_direction(&self, t: Timestamp) -> f64 {
        (225.0 + 90.0 * self.noise(11, t, 8.0 * HOUR_MS) + 20.0 * self.noise(12, t, 20_000.0))
            .rem_euclid(360.0)
    }

    /// Rain rate in mm/h: showers where clouds are thick.
    pub fn rain_rate(&self, t: Timestamp) -> f64 {
        let shower = self.cloud(t) + 0.35 * self.noise(13, t, 40.0 * 60_000.0) - 0.72;
        if shower <= 0.0 {
            0.0
        } else {
            shower * 30.0
        }
    }

    /// Water temperature in °C: slow, small diurnal swing lagging the air.
    pub fn water_temperature(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        18.0 + 1.2 * self.noise(14, t, 72.0 * HOUR_MS)
            + 0.4 * -(std::f64::consts::TAU * (h - 5.0) / 24.0).cos()
            + 0.02 * self.noise(15, t, 300_000.0)
    }

    /// Ground temperature in °C at probe depth: damped, lagging air temperature.
    pub fn ground_temperature(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        11.0 + 2.0 * self.noise(16, t, 72.0 * HOUR_MS)
            + 1.0 * -(std::f64::consts::TAU * (h - 6.0) / 24.0).cos()
    }

    /// Height of the sun as a fraction 0..1 of a simple day arc (06:00–18:00 solar time).
    fn daylight(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        (std::f64::consts::PI * (h - 6.0) / 12.0).sin().max(0.0)
    }

    /// Illuminance in lx: up to about 100 000 lx in clear midday sun, a tenth of that
    /// under thick cloud, a fraction of a lux at night.
    pub fn illuminance(&self, t: Timestamp) -> f64 {
        let d = self.daylight(t);
        let sky = 100_000.0 * d * d.sqrt() * (1.0 - 0.85 * self.cloud(t));
        (sky * (1.0 + 0.05 * self.noise(19, t, 30_000.0))).max(0.0) + 0.2
    }

    /// UV index: about 8 at a clear midday, less under cloud, 0 at night.
    pub fn uv_index(&self, t: Timestamp) -> f64 {
        let d = self.daylight(t);
        8.0 * d * d * (1.0 - 0.7 * self.cloud(t))
    }

    /// A gas sensor's Rs/R0: about 1 in clean air, dipping with traffic at the school run
    /// (08–09 and 15–16 local solar time) and with passing smoke.
    pub fn air_quality_ratio(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        let rush = |centre: f64| (-((h - centre) / 0.6).powi(2)).exp();
        let smoke = self.noise(20, t, 3.0 * HOUR_MS).max(0.0);
        (1.0 - 0.25 * (rush(8.5) + rush(15.5)) - 0.3 * smoke + 0.02 * self.noise(21, t, 600_000.0))
            .clamp(0.2, 1.2)
    }

    /// Lightning strikes per second: heavy showers are thundery.
    pub fn lightning_rate(&self, t: Timestamp) -> f64 {
        let r = self.rain_rate(t);
        if r <= 4.0 {
            0.0
        } else {
            (r - 4.0) / 900.0
        }
    }

    /// Distance to the head of the storm, km (1–45).
    pub fn storm_distance_km(&self, t: Timestamp) -> f64 {
        (22.0 + 22.0 * self.noise(22, t, HOUR_MS)).clamp(1.0, 45.0)
    }

    /// Sea water's specific conductance (at 25 °C), µS/cm: about 53 000 (35 PSU), a little
    /// fresher on the ebb.
    pub fn conductivity(&self, t: Timestamp) -> f64 {
        53_000.0 + 600.0 * self.noise(23, t, 12.4 * HOUR_MS) + 50.0 * self.noise(24, t, 600_000.0)
    }

    /// Dissolved oxygen, mg/L: reef photosynthesis lifts it by day (highest mid-afternoon),
    /// respiration lowers it by night.
    pub fn dissolved_oxygen(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        6.6 + 0.9 * -(std::f64::consts::TAU * (h - 3.0) / 24.0).cos()
            + 0.1 * self.noise(25, t, 1_800_000.0)
    }

    /// Dissolved oxygen as % of saturation (saturation about 6.9 mg/L in 18 °C sea water).
    pub fn oxygen_saturation(&self, t: Timestamp) -> f64 {
        self.dissolved_oxygen(t) / 6.9 * 100.0
    }

    /// Oxidation-reduction potential, mV: higher while oxygen is high.
    pub fn orp(&self, t: Timestamp) -> f64 {
        180.0 + 25.0 * (self.dissolved_oxygen(t) - 6.6) + 5.0 * self.noise(26, t, 900_000.0)
    }

    /// CO2 in the air over the reef, ppm: about 420, a little higher at night (the sea
    /// breathes out, photosynthesis stops).
    pub fn co2(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        422.0
            + 8.0 * (std::f64::consts::TAU * (h - 3.0) / 24.0).cos()
            + 3.0 * self.noise(27, t, 1_800_000.0)
    }

    /// Solar panel current, A: up to about 1.5 A in clear midday sun.
    pub fn solar_current(&self, t: Timestamp) -> f64 {
        1.5 * self.daylight(t) * (1.0 - 0.7 * self.cloud(t))
    }

    /// Solar panel voltage, V: about 18 V in the sun, sagging to the battery's at dusk,
    /// 0 in the dark.
    pub fn solar_voltage(&self, t: Timestamp) -> f64 {
        let d = self.daylight(t);
        if d <= 0.0 {
            0.0
        } else {
            self.battery_voltage(t) + 5.5 * d.sqrt()
        }
    }

    /// Battery current, A: the panel's charge minus the buoy's 0.25 A load (negative:
    /// discharging).
    pub fn battery_current(&self, t: Timestamp) -> f64 {
        self.solar_current(t) - 0.25
    }

    /// 12 V lead-acid battery voltage, V: charged by day (highest in the afternoon),
    /// sagging through the night.
    pub fn battery_voltage(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        12.3 + 0.5 * -(std::f64::consts::TAU * (h - 4.0) / 24.0).cos()
            + 0.02 * self.noise(28, t, 600_000.0)
    }

    /// Sea-water pH, drifting slowly around 8.1.
    pub fn ph(&self, t: Timestamp) -> f64 {
        8.08 + 0.06 * self.noise(17, t, 48.0 * HOUR_MS) + 0.01 * self.noise(18, t, 1_800_000.0)
    }

    /// Turbidity over the reef, NTU: clear water (about 2 NTU) clouded by sediment that the
    /// tidal current stirs up twice a tide (12.4 h), never below 0.2.
    pub fn turbidity(&self, t: Timestamp) -> f64 {
        let tide = (std::f64::consts::TAU * t as f64 / (12.4 * HOUR_MS)).sin();
        (2.0 + 3.0 * tide * tide + 0.5 * self.noise(29, t, 1_800_000.0)).max(0.2)
    }

    /// Nitrate, mg/L: a reef's trace (about 0.3), taken up by algae by day (lowest in the
    /// afternoon), never below 0.02.
    pub fn nitrate(&self, t: Timestamp) -> f64 {
        let h = self.solar_hour(t);
        (0.3 + 0.1 * (std::f64::consts::TAU * (h - 3.0) / 24.0).cos()
            + 0.03 * self.noise(30, t, 3_600_000.0))
        .max(0.02)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_plausible() {
        let a = Weather::new(7, 0.0, 50.0);
        let b = Weather::new(7, 0.0, 50.0);
        let c = Weather::new(8, 0.0, 50.0);
        let mut differs = false;
        for i in 0..2_000 {
            let t = 1_700_000_000_000 + i * 43_200;
            assert_eq!(a.air_temperature(t), b.air_temperature(t));
            differs |= a.wind_speed(t) != c.wind_speed(t);
            let temp = a.air_temperature(t);
            assert!((-5.0..35.0).contains(&temp), "{temp}");
            let rh = a.relative_humidity(t);
            assert!((0.0..=100.0).contains(&rh));
            let p = a.station_pressure(t);
            assert!((950.0..1050.0).contains(&p), "{p}");
            assert!(a.wind_speed(t) >= 0.0);
            assert!((0.0..360.0).contains(&a.wind_direction(t)));
            assert!(a.rain_rate(t) >= 0.0);
            assert!((7.8..8.4).contains(&a.ph(t)));
            assert!((0.0..130_000.0).contains(&a.illuminance(t)));
            assert!((0.0..=8.0).contains(&a.uv_index(t)));
            assert!((0.2..=1.2).contains(&a.air_quality_ratio(t)));
            assert!(a.lightning_rate(t) >= 0.0);
            assert!((1.0..=45.0).contains(&a.storm_distance_km(t)));
        }
        assert!(differs, "another seed gives other weather");
    }

    #[test]
    fn afternoon_is_warmer_than_dawn_on_average() {
        let w = Weather::new(1, 0.0, 0.0);
        let day0 = 1_767_225_600_000; // 2026-01-01T00:00Z
        let (mut dawn, mut afternoon) = (0.0, 0.0);
        for d in 0..30 {
            let base = day0 + d * 86_400_000;
            dawn += w.air_temperature(base + 4 * 3_600_000);
            afternoon += w.air_temperature(base + 15 * 3_600_000);
        }
        assert!(afternoon > dawn + 30.0 * 3.0);
    }
}
