//! The gpsd client: the one place that talks to gpsd.
//!
//! Linux runs a GPS through **gpsd** (Debian's `gpsd` package): it owns the serial port
//! (`/dev/serial0` for a HAT on the Pi's UART, `/dev/ttyACM0` or `/dev/ttyUSB0` for a USB
//! receiver) and serves the fixes as JSON on TCP port 2947. Anemone connects, sends
//! `?WATCH={"enable":true,"json":true}` and reads one JSON object per line: `TPV` (time,
//! position, velocity) and `SKY` (satellites) reports are parsed ([`parse_line`]); the rest
//! (`VERSION`, `DEVICES`, `WATCH`) is skipped.
//!
//! Set up gpsd with `sudo apt install gpsd`, `DEVICES="/dev/serial0"` (your receiver's
//! port) in `/etc/default/gpsd`, and `sudo systemctl enable --now gpsd`; `gpspipe -w` shows
//! what it serves. A lost connection is retried with a growing wait (1 s to 1 minute) on
//! each sample, never in a tight loop.
//!
//! Under `--simulate` the same lines come from the simulated gpsd ([`super::sim::SimGpsd`])
//! and go through the same parser.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::sim::SimGpsd;
use crate::reading::Timestamp;

/// gpsd's own port.
pub const DEFAULT_GPSD: &str = "127.0.0.1:2947";

/// What asks gpsd to stream its reports as JSON.
pub const WATCH: &[u8] = b"?WATCH={\"enable\":true,\"json\":true}\n";

/// The first and the longest wait before connecting again.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A line longer than this is not gpsd's (its SKY reports are a few kB).
const MAX_LINE: usize = 64 * 1024;

/// Why gpsd gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum GpsdError {
    /// Nothing answers at the address.
    #[error("cannot connect to gpsd at {addr}: {detail}; is gpsd running? Install it with `sudo apt install gpsd`, set DEVICES=\"/dev/serial0\" (your receiver's port) in /etc/default/gpsd and run `sudo systemctl enable --now gpsd`")]
    Connect {
        /// The configured address.
        addr: String,
        /// What the system said.
        detail: String,
    },
    /// The address is not `host:port`.
    #[error("gpsd address `{0}` is not host:port (for example 127.0.0.1:2947)")]
    Address(String),
    /// The connection broke; it is retried after `retry_in`.
    #[error("connection to gpsd at {addr} lost ({detail}); connecting again in {retry_in:?}")]
    Lost {
        /// The configured address.
        addr: String,
        /// What happened.
        detail: String,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// Waiting before connecting again.
    #[error("gpsd at {addr} unreachable; connecting again in {retry_in:?}")]
    Waiting {
        /// The configured address.
        addr: String,
        /// The wait left.
        retry_in: Duration,
    },
}

/// One gpsd report Anemone uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "class")]
pub enum Report {
    /// Time, position, velocity.
    #[serde(rename = "TPV")]
    Tpv(Tpv),
    /// The satellites in view.
    #[serde(rename = "SKY")]
    Sky(Sky),
    /// Anything else gpsd says (`VERSION`, `DEVICES`, `WATCH`, `PPS`, …).
    #[serde(other)]
    Other,
}

/// A `TPV` report (fields gpsd omits are `None`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Tpv {
    /// 0 unknown, 1 no fix, 2 2D, 3 3D.
    #[serde(default)]
    pub mode: u8,
    /// UTC time of the fix, RFC 3339.
    pub time: Option<String>,
    /// Degrees north.
    pub lat: Option<f64>,
    /// Degrees east.
    pub lon: Option<f64>,
    /// Speed over ground, m/s.
    pub speed: Option<f64>,
}

impl Tpv {
    /// True for a 2D or 3D fix with a position.
    pub fn has_fix(&self) -> bool {
        self.mode >= 2 && self.lat.is_some() && self.lon.is_some()
    }

    /// The fix's time in ms since the epoch.
    pub fn time_ms(&self) -> Option<Timestamp> {
        let t = chrono::DateTime::parse_from_rfc3339(self.time.as_deref()?).ok()?;
        Some(t.timestamp_millis())
    }
}

/// A `SKY` report.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Sky {
    /// Satellites used (gpsd 3.23 and later).
    #[serde(rename = "uSat")]
    pub used: Option<u32>,
    /// Each satellite in view (older gpsd gives only this).
    #[serde(default)]
    pub satellites: Vec<Satellite>,
}

impl Sky {
    /// Satellites used in the fix; `None` when the report does not say.
    pub fn used(&self) -> Option<u32> {
        self.used.or_else(|| {
            (!self.satellites.is_empty())
                .then(|| self.satellites.iter().filter(|s| s.used).count() as u32)
        })
    }
}

/// One satellite of a `SKY` report.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Satellite {
    /// Used in the fix.
    #[serde(default)]
    pub used: bool,
}

/// Parses one line gpsd sent. `None` for a line that is not a gpsd JSON object.
pub fn parse_line(line: &str) -> Option<Report> {
    serde_json::from_str(line.trim()).ok()
}

/// A TCP connection to gpsd that reconnects with backoff.
pub struct GpsdClient {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    backoff: Duration,
    next_attempt: Option<Instant>,
}

impl GpsdClient {
    /// Connects to gpsd at `addr` (`host:port`) and asks for JSON reports.
    pub fn connect(addr: &str) -> Result<GpsdClient, GpsdError> {
        let mut c = GpsdClient {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::new(),
            backoff: BACKOFF_MIN,
            next_attempt: None,
        };
        c.stream = Some(c.open()?);
        Ok(c)
    }

    fn open(&self) -> Result<TcpStream, GpsdError> {
        let connect_err = |detail: String| GpsdError::Connect {
            addr: self.addr.clone(),
            detail,
        };
        let sock = self
            .addr
            .to_socket_addrs()
            .map_err(|_| GpsdError::Address(self.addr.clone()))?
            .next()
            .ok_or_else(|| GpsdError::Address(self.addr.clone()))?;
        let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(3))
            .map_err(|e| connect_err(e.to_string()))?;
        s.write_all(WATCH).map_err(|e| connect_err(e.to_string()))?;
        s.set_nonblocking(true)
            .map_err(|e| connect_err(e.to_string()))?;
        Ok(s)
    }

    /// The complete lines gpsd sent since the last call (never blocks once connected).
    /// After a broken connection, connects again once the backoff wait is over.
    pub fn lines(&mut self, out: &mut Vec<String>) -> Result<(), GpsdError> {
        if self.stream.is_none() {
            let now = Instant::now();
            if let Some(at) = self.next_attempt.filter(|at| *at > now) {
                return Err(GpsdError::Waiting {
                    addr: self.addr.clone(),
                    retry_in: at - now,
                });
            }
            match self.open() {
                Ok(s) => {
                    tracing::info!(gpsd = %self.addr, "Connected to gpsd again");
                    self.stream = Some(s);
                    self.backoff = BACKOFF_MIN;
                    self.buf.clear();
                }
                Err(e) => {
                    self.schedule_retry();
                    return Err(e);
                }
            }
        }
        let mut chunk = [0u8; 4096];
        while let Some(stream) = self.stream.as_mut() {
            match stream.read(&mut chunk) {
                Ok(0) => return Err(self.lost("gpsd closed the connection".into())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.lost(e.to_string())),
            }
            if self.buf.len() > MAX_LINE && !self.buf.contains(&b'\n') {
                return Err(self.lost("a line of more than 64 KiB: not gpsd?".into()));
            }
        }
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        Ok(())
    }

    fn schedule_retry(&mut self) -> Duration {
        let wait = self.backoff;
        self.next_attempt = Some(Instant::now() + wait);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        wait
    }

    fn lost(&mut self, detail: String) -> GpsdError {
        self.stream = None;
        self.buf.clear();
        let retry_in = self.schedule_retry();
        GpsdError::Lost {
            addr: self.addr.clone(),
            detail,
            retry_in,
        }
    }
}

/// Where a GPS kind's lines come from: gpsd, or the simulated gpsd.
pub enum GpsdFeed {
    /// A real gpsd over TCP.
    Tcp(GpsdClient),
    /// The simulated gpsd, speaking the same JSON.
    Sim(Box<SimGpsd>),
}

impl GpsdFeed {
    /// The lines gpsd sent up to station time `now`.
    pub fn lines(&mut self, now: Timestamp, out: &mut Vec<String>) -> Result<(), GpsdError> {
        match self {
            GpsdFeed::Tcp(c) => c.lines(out),
            GpsdFeed::Sim(s) => {
                s.lines(now, out);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gpsd_reports() {
        let tpv = r#"{"class":"TPV","device":"/dev/ttyS0","mode":3,"time":"2026-06-01T12:00:01.000Z","ept":0.005,"lat":-16.9186,"lon":145.7781,"altHAE":12.3,"speed":0.25,"track":80.1}"#;
        let Some(Report::Tpv(t)) = parse_line(tpv) else {
            panic!("not a TPV")
        };
        assert!(t.has_fix());
        assert_eq!(t.lat, Some(-16.9186));
        assert_eq!(t.speed, Some(0.25));
        assert_eq!(t.time_ms(), Some(1_780_315_201_000));

        let nofix = r#"{"class":"TPV","device":"/dev/ttyS0","mode":1}"#;
        let Some(Report::Tpv(t)) = parse_line(nofix) else {
            panic!("not a TPV")
        };
        assert!(!t.has_fix());
        assert_eq!(t.time_ms(), None);

        let old_sky = r#"{"class":"SKY","satellites":[{"PRN":5,"used":true},{"PRN":7,"used":false},{"PRN":9,"used":true}]}"#;
        let Some(Report::Sky(s)) = parse_line(old_sky) else {
            panic!("not a SKY")
        };
        assert_eq!(s.used(), Some(2));
        let new_sky = r#"{"class":"SKY","nSat":12,"uSat":8}"#;
        let Some(Report::Sky(s)) = parse_line(new_sky) else {
            panic!("not a SKY")
        };
        assert_eq!(s.used(), Some(8));

        assert_eq!(
            parse_line(r#"{"class":"VERSION","release":"3.22"}"#),
            Some(Report::Other)
        );
        assert_eq!(parse_line("$GPGGA,garbage"), None);
    }

    #[test]
    fn nothing_listening_names_the_fix() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let e = GpsdClient::connect(&format!("127.0.0.1:{port}"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("apt install gpsd"), "{e}");
        assert!(e.contains("DEVICES"), "{e}");
        let e = GpsdClient::connect("no port here")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("host:port"), "{e}");
    }
}
