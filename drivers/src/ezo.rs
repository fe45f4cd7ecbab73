//! The I2C protocol every Atlas Scientific EZO circuit speaks (EZO-pH, EZO-EC, EZO-DO,
//! EZO-ORP): one layer, shared by [`crate::ezo_ph`], [`crate::ezo_ec`], [`crate::ezo_do`]
//! and [`crate::ezo_orp`].
//!
//! # Protocol
//!
//! Write an ASCII command; wait the command's processing delay (each circuit's datasheet
//! gives it: 300 ms for most commands, 600–1300 ms for readings and calibrations); read up
//! to 32 bytes: byte 0 is the response code (1 success, 2 syntax error, 254 still
//! processing, 255 no data), then an ASCII payload terminated by NUL. A 254 reply is re-read
//! after another 300 ms, a bounded number of times ([`PENDING_RETRIES`]).
//!
//! Every circuit also answers `Status` (`?STATUS,P,5.038`: restart reason and supply
//! voltage), `Cal,?` (`?CAL,n`: calibration points stored), `Cal,clear` and `i`
//! (`?I,pH,2.16`: device type and firmware).
//!
//! # Hardware guide
//!
//! The circuits ship in UART mode. Switch each to I2C once: with the circuit powered, short
//! PGND to TX and power-cycle (the LED turns blue), or send `I2C,<address>` over UART. Wire
//! SDA/SCL to GPIO 2/3 and VCC to 3.3 V; use Atlas's electrically isolated carrier board
//! when several probes sit in the same water, or their readings interfere. Enable I2C with
//! `dtparam=i2c_arm=on`.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Protocol constants shared by the EZO circuits.
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
    /// Processing time of the commands that are neither readings nor calibrations, ms.
    pub const SHORT_WAIT_MS: u32 = 300;
}

/// Re-reads after a "still processing" (254) reply before giving up with
/// [`EzoError::Pending`].
pub const PENDING_RETRIES: u32 = 3;

/// Errors of an EZO circuit.
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
                "EZO circuit I2C bus error: {e:?}; is the circuit in I2C mode (LED blue) at its address?"
            ),
            EzoError::Syntax => f.write_str("EZO circuit rejected the command as a syntax error"),
            EzoError::Pending => {
                f.write_str("EZO circuit was still processing after the wait; try again")
            }
            EzoError::NoData => f.write_str("EZO circuit had no data to send"),
            EzoError::BadReply => f.write_str("EZO circuit sent a reply that could not be parsed"),
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

/// Device status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    /// Restart reason: P power-on, S software, B brown-out, W watchdog, U unknown.
    pub restart_reason: char,
    /// Supply voltage, V.
    pub vcc: f64,
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

/// Parse `"?CAL,2"` (0..=3 points: the most any EZO circuit stores).
pub fn parse_cal_points(payload: &str) -> Option<u8> {
    let n: u8 = strip_prefix_ci(payload, "?CAL,")?.trim().parse().ok()?;
    (n <= 3).then_some(n)
}

/// Parse the device information `"?I,EC,2.10"` into its type (`EC`) and firmware (`2.10`).
pub fn parse_info(payload: &str) -> Option<(&str, &str)> {
    let rest = strip_prefix_ci(payload, "?I,")?;
    let (kind, firmware) = rest.split_once(',')?;
    (!kind.is_empty() && !firmware.is_empty()).then_some((kind, firmware))
}

/// A finite number (`"9.560"`, `"-12.5"`), trimmed.
pub fn number(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// `s` without `prefix`, compared case-insensitively (`?Slope` and `?SLOPE` both occur).
pub fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
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

/// Any EZO circuit on an I2C bus: the commands they all share. The circuit-specific drivers
/// wrap one.
#[derive(Debug)]
pub struct Ezo<I2C> {
    i2c: I2C,
    address: u8,
}

impl<I2C: I2c> Ezo<I2C> {
    /// Take ownership of the bus.
    pub fn new(i2c: I2C, address: u8) -> Self {
        Self { i2c, address }
    }

    /// The circuit's address.
    pub fn address(&self) -> u8 {
        self.address
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
        self.command(format_args!("Cal,clear"), Register::SHORT_WAIT_MS, d)
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

    /// Set the temperature used for compensation (`T,<°C>` with 2 decimals).
    pub fn set_temperature<D: DelayNs>(
        &mut self,
        temp_c: f64,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        finite(temp_c)?;
        self.command(format_args!("T,{temp_c:.2}"), Register::SHORT_WAIT_MS, d)
    }

    /// Send a command whose only answer is "success".
    pub fn command<D: DelayNs>(
        &mut self,
        command: fmt::Arguments<'_>,
        wait_ms: u32,
        d: &mut D,
    ) -> Result<(), EzoError<I2C::Error>> {
        self.query(command, wait_ms, d, |_| Some(()))
    }

    /// Send a command, wait `wait_ms`, read the reply (re-reading while it says 254) and
    /// parse its payload with `parse` (`None`: [`EzoError::BadReply`]).
    pub fn query<D: DelayNs, T>(
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

    /// Release the bus.
    pub fn destroy(self) -> I2C {
        self.i2c
    }
}

/// [`EzoError::Syntax`] for a value the circuit could not take (NaN, infinity), before
/// anything is sent.
pub fn finite<E>(x: f64) -> Result<(), EzoError<E>> {
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
    fn shared_payloads() {
        assert_eq!(number("9.560"), Some(9.56));
        assert_eq!(number("nan"), None);
        assert_eq!(number(""), None);
        assert_eq!(parse_cal_points("?CAL,2"), Some(2));
        assert_eq!(parse_cal_points("?Cal,0"), Some(0));
        assert_eq!(parse_cal_points("?CAL,9"), None);
        assert_eq!(
            parse_status("?STATUS,P,5.038"),
            Some(Status {
                restart_reason: 'P',
                vcc: 5.038
            })
        );
        assert_eq!(parse_status("?STATUS,PX,5.038"), None);
        assert_eq!(parse_status("?STATUS"), None);
        assert_eq!(parse_info("?I,EC,2.10"), Some(("EC", "2.10")));
        assert_eq!(parse_info("?I,pH,2.16"), Some(("pH", "2.16")));
        assert_eq!(parse_info("?I,DO"), None);
    }
}
