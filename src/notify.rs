//! systemd readiness and watchdog (`Type=notify`, `WatchdogSec=`).
//!
//! Anemone tells systemd `READY=1` once the store is open and the sensors are started,
//! and `STOPPING=1` when it shuts down. The watchdog is fed (`WATCHDOG=1`) only while the
//! station is making progress — sensors are delivering readings and the store writer is
//! getting through its commits — so a hung bus driver or a wedged writer makes systemd
//! restart the service instead of leaving a silent station on the mast.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where systemd listens for notifications (`$NOTIFY_SOCKET`).
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<String>,
}

impl Notifier {
    /// The notifier systemd gave this process, or a silent one when not under systemd.
    pub fn from_env() -> Notifier {
        Notifier {
            socket: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// A notifier sending to the datagram socket at `path` (tests).
    pub fn with_socket(path: PathBuf) -> Notifier {
        Notifier {
            socket: Some(path.display().to_string()),
        }
    }

    /// True when notifications go somewhere.
    pub fn is_active(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one notification such as `READY=1`; silently does nothing without a socket.
    pub fn send(&self, state: &str) -> std::io::Result<()> {
        let Some(addr) = &self.socket else {
            return Ok(());
        };
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            use std::os::unix::net::{SocketAddr, UnixDatagram};
            let sock = UnixDatagram::unbound()?;
            if let Some(name) = addr.strip_prefix('@') {
                let a = SocketAddr::from_abstract_name(name.as_bytes())?;
                sock.send_to_addr(state.as_bytes(), &a)?;
            } else {
                sock.send_to(state.as_bytes(), addr)?;
            }
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (addr, state);
            Ok(())
        }
    }
}

/// The watchdog interval systemd asked for (`$WATCHDOG_USEC`, for this PID).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Counters the station bumps as it works; the watchdog compares them between pings.
#[derive(Debug, Default)]
pub struct Progress {
    readings: AtomicU64,
    store: AtomicU64,
}

impl Progress {
    /// A reading left a sensor.
    pub fn reading(&self) {
        self.readings.fetch_add(1, Ordering::Relaxed);
    }

    /// The store writer finished a unit of work (a commit, or a handled failure).
    pub fn store_beat(&self) {
        self.store.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (u64, u64) {
        (
            self.readings.load(Ordering::Relaxed),
            self.store.load(Ordering::Relaxed),
        )
    }
}

/// Decides, check by check, whether the station made progress since the last check.
#[derive(Debug)]
pub struct Judge {
    progress: Arc<Progress>,
    last: (u64, u64),
    expect_readings: bool,
}

impl Judge {
    /// A judge over `progress`; a station without sensors is not expected to read.
    pub fn new(progress: Arc<Progress>, expect_readings: bool) -> Judge {
        let last = progress.snapshot();
        Judge {
            progress,
            last,
            expect_readings,
        }
    }

    /// True when both sensors and store moved since the previous call.
    pub fn progressed(&mut self) -> bool {
        let now = self.progress.snapshot();
        let readings_ok = !self.expect_readings || now.0 > self.last.0;
        let store_ok = now.1 > self.last.1;
        self.last = now;
        readings_ok && store_ok
    }
}

/// Feeds the systemd watchdog every `interval / 2` while the station progresses.
/// Checks run on real time: the watchdog is about the process, not station time.
pub async fn run_watchdog(notifier: Notifier, interval: Duration, mut judge: Judge) {
    let mut tick = tokio::time::interval(interval / 2);
    tick.tick().await;
    let mut stalled = false;
    loop {
        tick.tick().await;
        if judge.progressed() {
            if stalled {
                tracing::info!("The station is making progress again; feeding the watchdog");
                stalled = false;
            }
            if let Err(e) = notifier.send("WATCHDOG=1") {
                tracing::warn!("Cannot notify systemd's watchdog: {e}");
            }
        } else if !stalled {
            stalled = true;
            tracing::error!(
                "No progress from the sensors or the store since the last check; the watchdog is not fed, so systemd will restart Anemone if this lasts"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_needs_both_sensors_and_store() {
        let p = Arc::new(Progress::default());
        let mut j = Judge::new(p.clone(), true);
        assert!(!j.progressed(), "nothing happened");
        p.reading();
        assert!(!j.progressed(), "readings but no store progress");
        p.reading();
        p.store_beat();
        assert!(j.progressed());
        p.store_beat();
        assert!(!j.progressed(), "store but no readings");
        let mut j = Judge::new(p.clone(), false);
        p.store_beat();
        assert!(
            j.progressed(),
            "no sensors configured: the store alone counts"
        );
    }

    /// Pings waiting on the test's notify socket.
    #[cfg(target_os = "linux")]
    fn count(server: &std::os::unix::net::UnixDatagram) -> usize {
        let mut n = 0;
        let mut buf = [0u8; 64];
        while let Ok(len) = server.recv(&mut buf) {
            assert_eq!(&buf[..len], b"WATCHDOG=1");
            n += 1;
        }
        n
    }

    /// Makes progress until two pings arrived (up to 5 s on a loaded machine).
    #[cfg(target_os = "linux")]
    async fn progress_until_pings(
        progress: &Progress,
        server: &std::os::unix::net::UnixDatagram,
    ) -> usize {
        let mut pings = 0;
        for _ in 0..200 {
            progress.reading();
            progress.store_beat();
            tokio::time::sleep(Duration::from_millis(25)).await;
            pings += count(server);
            if pings >= 2 {
                break;
            }
        }
        pings
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn watchdog_stops_when_the_store_stalls_and_resumes() {
        use std::os::unix::net::UnixDatagram;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_nonblocking(true).unwrap();
        let progress = Arc::new(Progress::default());
        let judge = Judge::new(progress.clone(), true);
        let dog = tokio::spawn(run_watchdog(
            Notifier::with_socket(path.clone()),
            Duration::from_millis(100),
            judge,
        ));
        // Progressing: pings arrive.
        assert!(progress_until_pings(&progress, &server).await >= 2);
        // The store stalls (readings still arrive): pings stop. One may have been
        // decided just before the stall.
        for _ in 0..4 {
            progress.reading();
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(count(&server) <= 1);
        for _ in 0..8 {
            progress.reading();
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(count(&server), 0, "stalled store: the watchdog is not fed");
        // It recovers: pings resume.
        assert!(progress_until_pings(&progress, &server).await >= 2);
        dog.abort();
    }
}
