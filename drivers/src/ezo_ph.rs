//! Atlas Scientific EZO-pH circuit over I2C.
//!
//! # Hardware guide
//!
//! The EZO circuit ships in UART mode. Switch it to I2C once: with the circuit powered, short
//! PGND to TX and power-cycle (the LED turns blue), or send `I2C,99` over UART. Its default
//! address is `0x63` (99). Wire SDA/SCL to GPIO 2/3 and VCC to 3.3 V; use Atlas's electrically
//! isolated carrier board when the probe sits in the same water as other probes, or readings
//! interfere. Enable I2C with `dtparam=i2c_arm=on`.
//!
//! # Protocol
//!
//! Write an ASCII command; wait (900 ms for `R`, `RT` and `Cal,mid/low/high`, 300 ms for the
//! others); read up to 32 bytes: byte 0 is the response code (1 success, 2 syntax error, 254
//! still processing, 255 no data), then an ASCII payload terminated by NUL. A 254 reply is
//! re-read after another 300 ms, a bounded number of times.
//!
//! # Calibration
//!
//! Always calibrate the mid point (pH 7.00) first: `Cal,mid` clears the low and high points.
//! Then `Cal,low,4.00` and optionally `Cal,high,10.00`.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Protocol constants of the EZO circuits.
pub struct Register;

impl Register {
    /// Response code: success.
    pub const SUCCESS: u8 = 1;
    /// Response code: syntax error.
    pub const SYNTAX_ERROR: u8 = 2;
    /// Response code: still processing.
    pub const PENDING: u8 = 254;
    /// Response code: no data to send.
    pub const NO_DATA: u8 = 255;
    /// Bytes read per reply.
    pub const REPLY_LEN: usize = 32;
    /// Processing time of `R`, `RT` and `Cal,mid/low/high`, ms.
    pub const LONG_WAIT_MS: u32 = 900;
    /// Processing time of every other command, ms.
    pub const SHORT_WAIT_MS: u32 = 300;
}

/// Default I2C address (99).
pub const DEFAULT_ADDRESS: u8 = 0x63;

/// Re-reads after a "still processing" (254) reply before giving up with
/// [`EzoError::Pending`].
pub const PENDING_RETRIES: u32 = 3;

/// EZO-pH errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EzoError<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// The circuit answered 2: syntax error (also returned, without sending, for a
    /// non-finite argument the circuit would reject).
    Syntax,
    /// The circuit was still processing (254) after the retries.
    Pending,
    /// The circuit answered 255: no data (nothing pending; often a command sent too early).
    NoData,
    /// The reply could not be understood.
    BadReply,
}

impl<E: embedded_hal::i2c::Error> EzoError<E> {
    /// True when the circuit did not acknowledge its address: not present (or still in UART
    /// mode).
    pub fn is_no_device(&self) -> bool {
        match self {
            EzoError::Bus(e) => crate::is_no_ack(e),
            _ => false,
        }
    }
}

impl<E: fmt::Debug> fmt::Display for EzoError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EzoError::Bus(e) => write!(
                f,
                "EZO-pH I2C bus error: {e:?}; is the circuit in I2C mode (LED blue) at 0x63?"
            ),
            EzoError::Syntax => f.write_str("EZO-pH rejected the command as a syntax error"),
            EzoError::Pending => {
                f.write_str("EZO-pH was still processing after the wait; try again")
            }
            EzoError::NoData => f.write_str("EZO-pH had no data to send"),
            EzoError::BadReply => f.write_str("EZO-pH sent a reply that could not be parsed"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for EzoError<E> {}

/// A reply whose response code is not "success", or that is not a valid reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCode {
    /// Code 2.
    Syntax,
    /// Code 254.
    Pending,
    /// Code 255.
    NoData,
    /// Any other code.
    Unknown(u8),
    /// Empty buffer, or a payload that is not printable ASCII.
    Malformed,
}

/// Split a raw reply into its payload: byte 0 must be 1 (success); the payload runs to the
/// first NUL (or the end of the buffer), must be printable ASCII, and is trimmed.
pub fn parse_reply(buf: &[u8]) -> Result<&str, ReplyCode> {
    let (&code, rest) = buf.split_first().ok_or(ReplyCode::Malformed)?;
    match code {
        Register::SUCCESS => {}
        Register::SYNTAX_ERROR => return Err(ReplyCode::Syntax),
        Register::PENDING => return Err(ReplyCode::Pending),
        Register::NO_DATA => return Err(ReplyCode::NoData),
        other => return Err(ReplyCode::Unknown(other)),
    }
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let payload = &rest[..end];
    if !payload
        .iter()
        .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\r' || b == b'\n')
    {
        return Err(ReplyCode::Malformed);
    }
    core::str::from_utf8(payload)
        .map(str::trim)
        .map_err(|_| ReplyCode::Malformed)
}

/// Calibration point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalPoint {
    /// Mid point (pH 7.00); clears the other points, so calibrate it first.
    Mid,
    /// Low point (pH 4.00).
    Low,
    /// High point (pH 10.00).
    High,
}

/// Probe slope relative to an ideal probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slope {
    /// Acid-side slope, % of ideal.
    pub acid_pct: f64,
    /// Base-side slope, % of ideal.
    pub base_pct: f64,
    /// Zero-point offset, mV (firmware 2.12 and later).
    pub zero_offset_mv: Option<f64>,
}

/// Device status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    /// Restart reason: P power-on, S software, B brown-out, W watchdog, U unknown.
    pub restart_reason: char,
    /// Supply voltage, V.
    pub vcc: f64,
}

/// Parse `"?Slope,99.7,100.3,-0.89"` (the offset is optional).
pub fn parse_slope(payload: &str) -> Option<Slope> {
    let rest = strip_prefix_ci(payload, "?Slope,")?;
    let mut it = rest.split(',');
    let acid_pct = number(it.next()?)?;
    let base_pct = number(it.next()?)?;
    let zero_offset_mv = match it.next() {
        Some(s) => Some(number(s)?),
        None => None,
    };
    if it.next().is_some() {
        return None;
    }
    Some(Slope {
        acid_pct,
        base_pct,
        zero_offset_mv,
    })
}

/// Parse `"?STATUS,P,5.038"`.
pub fn parse_status(payload: &str) -> Option<Status> {
    let rest = strip_prefix_ci(payload, "?STATUS,")?;
    let (reason, vcc) = rest.split_once(',')?;
    let mut chars = reason.trim().chars();
    let restart_reason = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    Some(Status {
        restart_reason,
        vcc: number(vcc)?,
    })
}

/// Parse `"?CAL,2"` (0..=3 points).
pub fn parse_cal_points(payload: &str) -> Option<u8> {
    let n: u8 = strip_prefix_ci(payload, "?CAL,")?.trim().parse().ok()?;
    (n <= 3).then_some(n)
}

/// Parse a pH reading such as `"9.560"`.
pub fn parse_reading(payload: &str) -> Option<f64> {
    number(payload)
}

fn number(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A command being built, in a fixed buffer.
struct Command {
    buf: [u8; 32],
    len: usize,
}

impl Command {
    fn new() -> Self {
        Self {
            buf: [0; 32],
            len: 0,
        }
    }
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for Command {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// EZO-pH circuit on an I2C bus.
#[derive(Debug)]
pub struct EzoPh<I2C> {
    i2c: I2C,
    address: u8,
}

impl<I2C: I2c> EzoPh<I2C> {
    /// Take ownership of the bus.
    pub fn new(i2c: I2C, address: u8) -> Self {
        Self { i2c, address }
    }

    /// Take a reading (`R`), pH.
    pub fn read<D: DelayNs>(&mut self, d: &mut D) -> Result<f64, EzoError<I2C::Error>> {
        self.query(format_args!("R"), Register::LONG_WAIT_MS, d, parse_reading)
    }

    /// Set the temperature compensation and take a reading (`RT,<°C>` with 2 decimals), pH.
    pub fn read_compensated<D: DelayNs>(
        &mut self,
        temp_c: f64,
        d: &mut D,
    ) -> Result<f64, EzoError<I2C::Error>> {
        finite(temp_c)?;
        self.query(
            format_args!("RT,{temp_c:.2}"),
            Register::LONG_WAIT_MS,
            d,
            parse_reading,
        )
    }

    /// Set the temperature used for compensation (`T,<°C>`).
    pub fn set_temperature<D: DelayNs>(
        &mut self,
        temp_c: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        finite(temp_c)?;
        self.query(
            format_args!("T,{temp_c:.2}"),
            Register::SHORT_WAIT_MS,
            d,
            ok,
        )
    }

    /// Calibrate one point (`Cal,mid,7.00`, `Cal,low,4.00`, `Cal,high,10.00`). Calibrate the
    /// mid point first: it clears the others.
    pub fn calibrate<D: DelayNs>(
        &mut self,
        point: CalPoint,
        ph: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        finite(ph)?;
        let name = match point {
            CalPoint::Mid => "mid",
            CalPoint::Low => "low",
            CalPoint::High => "high",
        };
        self.query(
            format_args!("Cal,{name},{ph:.2}"),
            Register::LONG_WAIT_MS,
            d,
            ok,
        )
    }

    /// Number of calibration points stored (`Cal,?` → `?CAL,2`).
    pub fn calibration_points<D: DelayNs>(
        &mut self,
        d: &mut D,
    ) -> Result<u8, EzoError<I2C::Error>> {
        self.query(
            format_args!("Cal,?"),
            Register::SHORT_WAIT_MS,
            d,
            parse_cal_points,
        )
    }

    /// Delete the calibration (`Cal,clear`).
    pub fn clear_calibration<D: DelayNs>(&mut self, d: &mut D) -> Result<(), EzoError<I2C::Error>> {
        self.query(format_args!("Cal,clear"), Register::SHORT_WAIT_MS, d, ok)
    }

    /// Probe slope (`Slope,?` → `?Slope,99.7,100.3,-0.89`).
    pub fn slope<D: DelayNs>(&mut self, d: &mut D) -> Result<Slope, EzoError<I2C::Error>> {
        self.query(
            format_args!("Slope,?"),
            Register::SHORT_WAIT_MS,
            d,
            parse_slope,
        )
    }

    /// Restart reason and supply voltage (`Status` → `?STATUS,P,5.038`).
    pub fn status<D: DelayNs>(&mut self, d: &mut D) -> Result<Status, EzoError<I2C::Error>> {
        self.query(
            format_args!("Status"),
            Register::SHORT_WAIT_MS,
            d,
            parse_status,
        )
    }

    /// Release the bus.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    /// Send a command, wait, read the reply (re-reading while it says 254) and parse it.
    fn query<D: DelayNs, T>(
        &mut self,
        command: fmt::Arguments<'_>,
        wait_ms: u32,
        d: &mut D,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, EzoError<I2C::Error>> {
        let mut cmd = Command::new();
        fmt::write(&mut cmd, command).map_err(|_| EzoError::Syntax)?;
        self.i2c
            .write(self.address, cmd.bytes())
            .map_err(EzoError::Bus)?;
        d.delay_ms(wait_ms);
        let mut buf = [0u8; Register::REPLY_LEN];
        let mut attempt = 0;
        loop {
            self.i2c
                .read(self.address, &mut buf)
                .map_err(EzoError::Bus)?;
            match parse_reply(&buf) {
                Ok(payload) => return parse(payload).ok_or(EzoError::BadReply),
                Err(ReplyCode::Pending) if attempt < PENDING_RETRIES => {
                    attempt += 1;
                    d.delay_ms(Register::SHORT_WAIT_MS);
                }
                Err(ReplyCode::Pending) => return Err(EzoError::Pending),
                Err(ReplyCode::Syntax) => return Err(EzoError::Syntax),
                Err(ReplyCode::NoData) => return Err(EzoError::NoData),
                Err(ReplyCode::Unknown(_) | ReplyCode::Malformed) => {
                    return Err(EzoError::BadReply)
                }
            }
        }
    }
}

fn ok(_: &str) -> Option<()> {
    Some(())
}

fn finite<E>(x: f64) -> Result<(), EzoError<E>> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(EzoError::Syntax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"\x019.560\0\0\0"), Ok("9.560"));
        assert_eq!(parse_reply(b"\x01"), Ok(""));
        assert_eq!(parse_reply(b"\x01?CAL,2"), Ok("?CAL,2"));
        assert_eq!(parse_reply(b"\x02\0"), Err(ReplyCode::Syntax));
        assert_eq!(parse_reply(b"\xfe\0"), Err(ReplyCode::Pending));
        assert_eq!(parse_reply(b"\xff\0"), Err(ReplyCode::NoData));
        assert_eq!(parse_reply(b"\x07\0"), Err(ReplyCode::Unknown(7)));
        assert_eq!(parse_reply(b""), Err(ReplyCode::Malformed));
        assert_eq!(parse_reply(b"\x019.5\x80\0"), Err(ReplyCode::Malformed));
    }

    #[test]
    fn payloads() {
        assert_eq!(parse_reading("9.560"), Some(9.56));
        assert_eq!(parse_reading("nan"), None);
        assert_eq!(parse_reading(""), None);
        assert_eq!(parse_cal_points("?CAL,2"), Some(2));
        assert_eq!(parse_cal_points("?Cal,0"), Some(0));
        assert_eq!(parse_cal_points("?CAL,9"), None);
        assert_eq!(
            parse_slope("?Slope,99.7,100.3,-0.89"),
            Some(Slope {
                acid_pct: 99.7,
                base_pct: 100.3,
                zero_offset_mv: Some(-0.89)
            })
        );
        assert_eq!(
            parse_slope("?SLOPE,99.7,100.3"),
            Some(Slope {
                acid_pct: 99.7,
                base_pct: 100.3,
                zero_offset_mv: None
            })
        );
        assert_eq!(parse_slope("?Slope,99.7"), None);
        assert_eq!(
            parse_status("?STATUS,P,5.038"),
            Some(Status {
                restart_reason: 'P',
                vcc: 5.038
            })
        );
        assert_eq!(parse_status("?STATUS,PX,5.038"), None);
        assert_eq!(parse_status("?STATUS"), None);
    }
}
