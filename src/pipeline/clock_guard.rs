//! Clock safety: no reading is stored with the stale time a Pi boots with.
//!
//! Policy (documented in the README): while a time service runs but has not yet
//! synchronised the clock, readings are **held in memory** together with the monotonic
//! instant they were taken. When synchronisation arrives they are **re-stamped** —
//! `ts = now − (monotonic now − monotonic at reading)` — and released in order, so their
//! times are right even though the wall clock jumped. If no synchronisation comes within
//! `wait` (default 15 min), the held readings are released with the system clock's time
//! and an ERROR says so (add network or an RTC): storing is never stopped. A clock set from
//! a battery-backed hardware RTC at boot is trusted from the start (readings held before the
//! RTC's driver set it are re-stamped as on synchronisation). Where no time service exists
//! at all, the clock is trusted from the start and a warning is logged once. Simulated
//! clocks are always trusted.
//!
//! GPS time (a buoy at sea): while no network time service has synchronised the clock, a
//! GPS fix's time is known time ([`SyncState::Gps`]). Held readings are re-stamped from it,
//! and from then on every reading is stamped with the system clock corrected by the
//! clock's offset from GPS time (none when they agree to [`GPS_AGREEMENT_MS`]); the log
//! says so. Network time, once it synchronises, takes over.

use std::time::{Duration, Instant};

use crate::hal::timesync::SyncState;
use crate::reading::{Reading, Timestamp};

/// Where the guard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardState {
    /// Waiting for synchronisation; readings are held.
    Holding,
    /// The clock is trusted; readings pass through.
    Trusted,
}

/// Offsets from GPS time up to this are the latency of gpsd's reports, not a wrong clock.
pub const GPS_AGREEMENT_MS: i64 = 2_000;

/// Holds readings until the clock can be trusted.
pub struct ClockGuard {
    state: GuardState,
    held: Vec<(Reading, Instant)>,
    since: Instant,
    wait: Duration,
    /// The clock is right by network time or an RTC: GPS time is not needed.
    synchronised: bool,
    /// Correction applied to each reading's time while GPS time is in use, ms.
    gps_offset: Option<i64>,
}

impl ClockGuard {
    /// A guard that starts from the machine's `initial` sync state.
    pub fn new(initial: SyncState, wait: Duration) -> ClockGuard {
        let state = match initial {
            SyncState::Waiting | SyncState::Gps { .. } => {
                tracing::warn!(
                    "The system clock is not synchronised yet; readings are held and re-stamped once it is (at most {} min)",
                    wait.as_secs() / 60
                );
                GuardState::Holding
            }
            SyncState::NoService => {
                tracing::warn!(
                    "No time synchronisation service found; trusting the system clock as it is"
                );
                GuardState::Trusted
            }
            SyncState::Synchronized => GuardState::Trusted,
            SyncState::HardwareClock => {
                tracing::info!(
                    "The system clock was set from the hardware real-time clock; trusting it from the start"
                );
                GuardState::Trusted
            }
        };
        ClockGuard {
            state,
            held: Vec::new(),
            since: Instant::now(),
            wait,
            synchronised: matches!(initial, SyncState::Synchronized | SyncState::HardwareClock),
            gps_offset: None,
        }
    }

    /// A guard that trusts the clock (simulated and accelerated clocks).
    pub fn trusted() -> ClockGuard {
        ClockGuard {
            state: GuardState::Trusted,
            held: Vec::new(),
            since: Instant::now(),
            wait: Duration::ZERO,
            synchronised: true,
            gps_offset: None,
        }
    }

    /// True while [`ClockGuard::poll`] has something to learn: readings are held, or the
    /// clock is trusted without synchronisation and GPS time may correct it.
    pub fn wants_poll(&self) -> bool {
        self.state == GuardState::Holding || !self.synchronised
    }

    /// The correction GPS time applies to readings' times, ms (`None`: not in use).
    pub fn gps_offset(&self) -> Option<i64> {
        self.gps_offset
    }

    /// The current state.
    pub fn state(&self) -> GuardState {
        self.state
    }

    /// Readings held so far.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Passes `r` through, or holds it (taken at monotonic instant `at`).
    pub fn admit(&mut self, mut r: Reading, at: Instant, out: &mut Vec<Reading>) {
        match self.state {
            GuardState::Trusted => {
                r.ts += self.gps_offset.unwrap_or(0);
                out.push(r)
            }
            GuardState::Holding => self.held.push((r, at)),
        }
    }

    /// Releases everything held as it is stamped (shutdown before synchronisation:
    /// storing with the system clock's time beats losing the readings).
    pub fn release(&mut self, out: &mut Vec<Reading>) {
        if !self.held.is_empty() {
            tracing::warn!(
                released = self.held.len(),
                "Stopping before the clock was synchronised: held readings are stored with the system clock's time"
            );
        }
        out.extend(self.held.drain(..).map(|(r, _)| r));
    }

    /// Checks the sync state at wall time `now` (monotonic `mono_now`); releases the
    /// held readings, re-stamped, once the clock is synchronised, or as they are after
    /// the wait is over.
    pub fn poll(
        &mut self,
        sync: SyncState,
        now: Timestamp,
        mono_now: Instant,
        out: &mut Vec<Reading>,
    ) {
        if self.synchronised {
            return;
        }
        match sync {
            // Network time, or the RTC's driver loaded and set the clock (udev's
            // `hwclock-set`): either way the wall clock is now right.
            SyncState::Synchronized | SyncState::HardwareClock => {
                self.synchronised = true;
                if self.gps_offset.take().is_some() {
                    tracing::info!(
                        "The system clock is synchronised; GPS time is no longer applied"
                    );
                }
                if self.state == GuardState::Trusted {
                    return;
                }
                let n = self.held.len();
                for (mut r, at) in self.held.drain(..) {
                    let age = mono_now.saturating_duration_since(at).as_millis() as i64;
                    r.ts = now - age;
                    out.push(r);
                }
                self.state = GuardState::Trusted;
                tracing::info!(
                    restamped = n,
                    "The system clock is synchronised; held readings re-stamped and stored"
                );
            }
            SyncState::Gps { offset_ms } => {
                let offset = if offset_ms.abs() <= GPS_AGREEMENT_MS {
                    0
                } else {
                    offset_ms
                };
                // Keep the correction steady: gpsd's report latency is not a clock jump.
                if let Some(old) = self.gps_offset {
                    if (old - offset).abs() <= GPS_AGREEMENT_MS {
                        return;
                    }
                }
                let n = self.held.len();
                for (mut r, at) in self.held.drain(..) {
                    let age = mono_now.saturating_duration_since(at).as_millis() as i64;
                    r.ts = now + offset - age;
                    out.push(r);
                }
                self.state = GuardState::Trusted;
                self.gps_offset = Some(offset);
                tracing::info!(
                    restamped = n,
                    offset_s = offset as f64 / 1000.0,
                    "No network time: taking the GPS fix's time as known time; readings are stamped with the system clock corrected by the offset"
                );
            }
            _ if self.state == GuardState::Trusted => {}
            _ if mono_now.saturating_duration_since(self.since) >= self.wait => {
                let n = self.held.len();
                out.extend(self.held.drain(..).map(|(r, _)| r));
                self.state = GuardState::Trusted;
                tracing::error!(
                    released = n,
                    "The system clock is still not synchronised after {} min: storing readings with the system clock's time; give the station network access or an RTC",
                    self.wait.as_secs() / 60
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Quantity, SensorId};
    use std::sync::Arc;

    #[test]
    fn holds_then_restamps_on_sync() {
        let s: SensorId = Arc::from("air");
        let t0 = Instant::now();
        let mut g = ClockGuard::new(SyncState::Waiting, Duration::from_secs(900));
        let mut out = Vec::new();
        // The Pi believes it is 1970 + a bit: stale stamps.
        g.admit(
            Reading::new(5_000, &s, Quantity::AirTemperature, 10.0),
            t0,
            &mut out,
        );
        g.admit(
            Reading::new(15_000, &s, Quantity::AirTemperature, 11.0),
            t0 + Duration::from_secs(10),
            &mut out,
        );
        assert!(out.is_empty());
        g.poll(
            SyncState::Waiting,
            20_000,
            t0 + Duration::from_secs(15),
            &mut out,
        );
        assert!(out.is_empty(), "still waiting");
        // Sync: the real time is 2026-06-01T12:00:00Z, 20 s after the first reading.
        let real_now = 1_780_315_200_000;
        g.poll(
            SyncState::Synchronized,
            real_now,
            t0 + Duration::from_secs(20),
            &mut out,
        );
        assert_eq!(g.state(), GuardState::Trusted);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].ts, real_now - 20_000);
        assert_eq!(out[1].ts, real_now - 10_000);
        // Trusted from now on.
        g.admit(
            Reading::new(real_now + 1, &s, Quantity::AirTemperature, 12.0),
            t0,
            &mut out,
        );
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn gives_up_waiting_without_losing_readings() {
        let s: SensorId = Arc::from("air");
        let t0 = Instant::now();
        let mut g = ClockGuard::new(SyncState::Waiting, Duration::from_secs(60));
        let mut out = Vec::new();
        g.admit(
            Reading::new(1_000, &s, Quantity::AirTemperature, 10.0),
            t0,
            &mut out,
        );
        g.poll(
            SyncState::Waiting,
            61_000,
            t0 + Duration::from_secs(61),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ts, 1_000, "released as stamped");
        assert_eq!(g.state(), GuardState::Trusted);
    }

    /// A buoy at sea: timesyncd waits for a network that never comes, the system clock
    /// booted a day behind; the GPS fix's time re-stamps what was held and corrects what
    /// follows; network time, when it comes, takes over.
    #[test]
    fn gps_time_is_known_time_without_network_time() {
        let s: SensorId = Arc::from("buoy");
        let t0 = Instant::now();
        let mut g = ClockGuard::new(SyncState::Waiting, Duration::from_secs(900));
        let mut out = Vec::new();
        let day = 86_400_000;
        let stale = 1_780_315_200_000 - day;
        g.admit(
            Reading::new(stale, &s, Quantity::Latitude, 1.0),
            t0,
            &mut out,
        );
        assert!(out.is_empty());
        g.poll(
            SyncState::Gps { offset_ms: day },
            stale + 5_000,
            t0 + Duration::from_secs(5),
            &mut out,
        );
        assert_eq!(g.state(), GuardState::Trusted);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ts, 1_780_315_200_000, "re-stamped from GPS time");
        assert!(g.wants_poll(), "network time may still come");
        g.admit(
            Reading::new(stale + 10_000, &s, Quantity::Latitude, 1.0),
            t0,
            &mut out,
        );
        assert_eq!(out[1].ts, 1_780_315_210_000, "corrected by the GPS offset");
        // Report latency does not move the correction.
        g.poll(
            SyncState::Gps {
                offset_ms: day + 800,
            },
            0,
            t0,
            &mut out,
        );
        assert_eq!(g.gps_offset(), Some(day));
        // Network time arrives: the clock itself is right from now on.
        g.poll(SyncState::Synchronized, 0, t0, &mut out);
        assert_eq!(g.gps_offset(), None);
        assert!(!g.wants_poll());
        g.admit(
            Reading::new(1_780_400_000_000, &s, Quantity::Latitude, 1.0),
            t0,
            &mut out,
        );
        assert_eq!(out[2].ts, 1_780_400_000_000);

        // No time service at all, clock agreeing with GPS: trusted, no correction.
        let mut g = ClockGuard::new(SyncState::NoService, Duration::from_secs(900));
        g.poll(SyncState::Gps { offset_ms: 900 }, 0, t0, &mut out);
        assert_eq!(g.gps_offset(), Some(0));
    }

    #[test]
    fn no_service_means_trust() {
        let g = ClockGuard::new(SyncState::NoService, Duration::from_secs(60));
        assert_eq!(g.state(), GuardState::Trusted);
    }

    /// A Pi with the Oracle Weather Station HAT's RTC: trusted from the first reading; and
    /// where the RTC's driver sets the clock only after the start, what was held is
    /// re-stamped then.
    #[test]
    fn hardware_clock_is_trusted() {
        let s: SensorId = Arc::from("air");
        let t0 = Instant::now();
        let mut g = ClockGuard::new(SyncState::HardwareClock, Duration::from_secs(900));
        assert_eq!(g.state(), GuardState::Trusted);
        let mut out = Vec::new();
        g.admit(
            Reading::new(1_780_315_200_000, &s, Quantity::AirTemperature, 10.0),
            t0,
            &mut out,
        );
        assert_eq!(out.len(), 1);

        let mut g = ClockGuard::new(SyncState::Waiting, Duration::from_secs(900));
        let mut out = Vec::new();
        g.admit(
            Reading::new(5_000, &s, Quantity::AirTemperature, 10.0),
            t0,
            &mut out,
        );
        let real_now = 1_780_315_200_000;
        g.poll(
            SyncState::HardwareClock,
            real_now,
            t0 + Duration::from_secs(3),
            &mut out,
        );
        assert_eq!(g.state(), GuardState::Trusted);
        assert_eq!(out[0].ts, real_now - 3_000);
    }
}
