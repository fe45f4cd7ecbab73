//! Is the system clock synchronised? A Pi has no real-time clock: it boots with the time
//! `fake-hwclock` saved at the last shutdown (or 1970) and only learns the real time from
//! the network. Raspberry Pi OS uses `systemd-timesyncd`, which creates
//! `/run/systemd/timesync/synchronized` once it has set the clock.
//!
//! A Pi with a battery-backed real-time clock (the Oracle Weather Station HAT's PCF8523,
//! `dtoverlay=i2c-rtc,pcf8523`) knows the time from the first second even with no network:
//! the kernel sets the system clock from it at boot (`hctosys`), or on Raspberry Pi OS udev's
//! `hwclock-set` does as soon as the clock's driver loads. [`set_from_rtc`] recognises that:
//! an RTC whose time is valid (its driver refuses to read a clock whose oscillator stopped,
//! and a time before 2026 is a reset clock) and which the kernel used at boot, or which
//! the system clock agrees with to a few seconds.
//!
//! A buoy at sea has neither network time nor, often, an RTC, but its GPS knows UTC: the
//! GPS kind records each 2D/3D fix's time here ([`record_gps_time`]), and while no network
//! time service has synchronised the clock, [`sync_state`] answers [`SyncState::Gps`] with
//! the system clock's offset from it, which clock safety applies. The fixes' times are kept
//! in a [`GpsClock`] that the station's [`super::Hal`] carries, so the GPS sources and clock
//! safety share it and nothing else does.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::paths;

/// The earliest time a working RTC can hold: 2026-01-01T00:00Z. A clock whose battery
/// failed restarts at its epoch (2000 for the PCF8523).
pub const RTC_VALID_FROM_S: i64 = 1_767_225_600;
/// Largest difference between the system clock and an RTC it was set from, s.
pub const RTC_AGREEMENT_S: i64 = 5;

/// A GPS fix's time against the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpsTime {
    /// GPS time minus system time when the fix was read, ms.
    pub offset_ms: i64,
    /// When it was read.
    pub at: Instant,
}

/// A GPS time older than this no longer counts as known time (the fix was lost).
pub const GPS_TIME_FRESH: Duration = Duration::from_secs(120);

/// The station's last GPS fix time (cheap to clone; clones share it).
#[derive(Debug, Clone, Default)]
pub struct GpsClock(Arc<Mutex<Option<GpsTime>>>);

impl GpsClock {
    /// Records the time of a 2D/3D GPS fix (`fix_ms`), read when the system clock said
    /// `system_ms`.
    pub fn record(&self, fix_ms: i64, system_ms: i64) {
        let t = GpsTime {
            offset_ms: fix_ms - system_ms,
            at: Instant::now(),
        };
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    /// The last GPS fix's time, while it is fresh ([`GPS_TIME_FRESH`]).
    pub fn fresh(&self) -> Option<GpsTime> {
        let t = (*self.0.lock().unwrap_or_else(|p| p.into_inner()))?;
        (t.at.elapsed() < GPS_TIME_FRESH).then_some(t)
    }
}

/// What the machine says about its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// A time service has synchronised the clock.
    Synchronized,
    /// The clock was set from a battery-backed real-time clock at boot: the time is known
    /// even before (or without) network time.
    HardwareClock,
    /// A time service runs but has not synchronised yet.
    Waiting,
    /// No time service known to Anemone runs (a container, CI, a Pi with an RTC and no
    /// network): the clock is trusted as it is.
    NoService,
    /// No network time, but a GPS fix's time is known: the system clock is `offset_ms`
    /// behind it.
    Gps {
        /// GPS time minus system time, ms.
        offset_ms: i64,
    },
}

/// The machine's clock synchronisation state, with a fresh GPS fix's time taken as known
/// time when no network time service has synchronised the clock.
pub fn sync_state(gps: &GpsClock) -> SyncState {
    let machine = machine_sync_state();
    match (machine, gps.fresh()) {
        (SyncState::Waiting | SyncState::NoService, Some(g)) => SyncState::Gps {
            offset_ms: g.offset_ms,
        },
        (m, _) => m,
    }
}

/// The machine's own clock synchronisation state (time services and RTC only).
pub fn machine_sync_state() -> SyncState {
    let timesyncd = Path::new("/run/systemd/timesync");
    let now_s = chrono::Utc::now().timestamp();
    if timesyncd.join("synchronized").exists() {
        SyncState::Synchronized
    } else if set_from_rtc(Path::new(paths::RTC_CLASS), now_s).is_some() {
        SyncState::HardwareClock
    } else if timesyncd.exists() {
        SyncState::Waiting
    } else if Path::new("/run/chrony").exists() || Path::new("/run/ntpd.pid").exists() {
        // chrony or ntpd: Anemone cannot ask them without extra tools; they slew the
        // clock rather than jumping it once synchronised, so trust them.
        SyncState::Synchronized
    } else {
        SyncState::NoService
    }
}

/// The real-time clock under `rtc_class` (the kernel's `/sys/class/rtc`) the system clock
/// was set from, as `rtc0 (rtc-pcf8523 …)`, if any: one whose time is valid (readable and
/// not before [`RTC_VALID_FROM_S`]) and which either set the system clock at boot
/// (`hctosys` = 1) or agrees with `now_s` to [`RTC_AGREEMENT_S`].
pub fn set_from_rtc(rtc_class: &Path, now_s: i64) -> Option<String> {
    let mut entries: Vec<_> = std::fs::read_dir(rtc_class)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries.into_iter().find_map(|dir| {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        // Reading `since_epoch` fails when the driver finds the clock invalid.
        let rtc_s: i64 = read("since_epoch")?.trim().parse().ok()?;
        if rtc_s < RTC_VALID_FROM_S {
            return None;
        }
        let hctosys = read("hctosys").is_some_and(|v| v.trim() == "1");
        if !hctosys && (now_s - rtc_s).abs() > RTC_AGREEMENT_S {
            return None;
        }
        let name = dir.file_name()?.to_string_lossy().into_owned();
        let driver = read("name")
            .map(|n| n.trim().to_string())
            .unwrap_or_default();
        Some(format!("{name} ({driver})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_clock_keeps_the_offset_of_the_last_fix() {
        let g = GpsClock::default();
        assert_eq!(g.fresh(), None);
        let shared = g.clone();
        shared.record(1_780_315_200_000, 1_780_315_190_000);
        assert_eq!(g.fresh().map(|t| t.offset_ms), Some(10_000));
    }

    fn rtc(root: &Path, name: &str, files: &[(&str, &str)]) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), format!("{v}\n")).unwrap();
        }
    }

    const NOW: i64 = 1_780_315_200; // 2026-06-01T12:00:00Z

    #[test]
    fn a_valid_rtc_that_set_the_clock_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        // No RTC at all, or no class directory: nothing.
        assert_eq!(set_from_rtc(&dir.path().join("none"), NOW), None);
        assert_eq!(set_from_rtc(dir.path(), NOW), None);
        // The kernel set the clock from it (hctosys), and it has run on since.
        rtc(
            dir.path(),
            "rtc0",
            &[
                ("name", "rtc-pcf8523 1-0068"),
                ("hctosys", "1"),
                ("since_epoch", "1780315100"),
            ],
        );
        assert_eq!(
            set_from_rtc(dir.path(), NOW).as_deref(),
            Some("rtc0 (rtc-pcf8523 1-0068)")
        );
    }

    #[test]
    fn udev_set_clock_agrees_with_the_rtc() {
        let dir = tempfile::tempdir().unwrap();
        // Raspberry Pi OS: the driver is a module, hctosys is 0, udev set the clock.
        rtc(
            dir.path(),
            "rtc0",
            &[
                ("name", "rtc-pcf8523 1-0068"),
                ("hctosys", "0"),
                ("since_epoch", "1780315198"),
            ],
        );
        assert!(set_from_rtc(dir.path(), NOW).is_some());
        // A system clock far from the RTC's was not set from it.
        assert_eq!(set_from_rtc(dir.path(), NOW + 3_600), None);
    }

    #[test]
    fn a_reset_or_unreadable_rtc_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        // Battery flat: the PCF8523 restarted in 2000.
        rtc(
            dir.path(),
            "rtc0",
            &[("hctosys", "1"), ("since_epoch", "946684805")],
        );
        assert_eq!(set_from_rtc(dir.path(), 946_684_805), None);
        // Oscillator stopped: the driver refuses the read (no since_epoch).
        rtc(
            dir.path(),
            "rtc1",
            &[("hctosys", "1"), ("name", "rtc-pcf8523")],
        );
        assert_eq!(set_from_rtc(dir.path(), NOW), None);
        std::fs::write(dir.path().join("rtc1/since_epoch"), "garbage").unwrap();
        assert_eq!(set_from_rtc(dir.path(), NOW), None);
    }
}
