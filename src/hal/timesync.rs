//! Is the system clock synchronised? A Pi has no real-time clock: it boots with the time
//! `fake-hwclock` saved at the last shutdown (or 1970) and only learns the real time from
//! the network. Raspberry Pi OS uses `systemd-timesyncd`, which creates
//! `/run/systemd/timesync/synchronized` once it has set the clock.

use std::path::Path;

/// What the machine says about its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// A time service has synchronised the clock.
    Synchronized,
    /// A time service runs but has not synchronised yet.
    Waiting,
    /// No time service known to Anemone runs (a container, CI, a Pi with an RTC and no
    /// network): the clock is trusted as it is.
    NoService,
}

/// The machine's clock synchronisation state.
pub fn sync_state() -> SyncState {
    let timesyncd = Path::new("/run/systemd/timesync");
    if timesyncd.join("synchronized").exists() {
        SyncState::Synchronized
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
