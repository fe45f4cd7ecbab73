//! DS18B20 1-Wire temperature probes, read through the Linux kernel's `w1_therm` driver.
//!
//! # Hardware guide
//!
//! Enable the bit-banged 1-Wire master with `dtoverlay=w1-gpio` in `/boot/firmware/config.txt`
//! (GPIO 4 by default; `dtoverlay=w1-gpio,gpiopin=17` to move it) and reboot. Wire the probe's
//! data line to that pin with a **4.7 kΩ pull-up to 3.3 V** (not 5 V: the Pi's GPIOs are not
//! 5 V tolerant), VDD to 3.3 V and GND to GND. Each probe then appears as
//! `/sys/bus/w1/devices/28-xxxxxxxxxxxx/w1_slave`; reading that file starts a conversion
//! (≈750 ms at 12 bits) and returns two lines:
//!
//! ```text
//! 72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
//! 72 01 4b 46 7f ff 0e 10 57 t=23125
//! ```
//!
//! The first line is the 9-byte scratchpad, the CRC the kernel computed and its verdict; the
//! second repeats the scratchpad and gives the temperature in millidegrees. This module
//! re-validates everything itself: the kernel's `t=` line is printed even when the CRC failed.
//!
//! # What the errors mean
//!
//! * [`Ds18b20Error::NoDevice`]: an all-zero scratchpad; the data line is held low (short, or
//!   the probe wired the wrong way round).
//! * [`Ds18b20Error::CrcMismatch`]: noise on the line; check the pull-up and keep long cables
//!   (tens of metres) on twisted pair, or lower the pull-up to 2.2 kΩ.
//! * [`Ds18b20Error::PowerOnValue`]: 85.000 °C, the reset value; the conversion did not run,
//!   usually parasite power without a strong pull-up or a brown-out. Power VDD from 3.3 V.
//! * [`Ds18b20Error::Impossible`]: outside the sensor's −55..=125 °C range, or the all-ones
//!   garbage (`t=-62`, −0.0625 °C) that an undriven line reads.
//!
//! The `ds18b20` crate is deliberately not used: it is unmaintained, on embedded-hal 0.2, and
//! mis-decodes negative temperatures. The decoding here follows the Maxim datasheet.

use core::fmt;

/// Scratchpad byte offsets and constants of the DS18B20.
pub struct Register;

impl Register {
    /// Temperature LSB.
    pub const TEMP_LSB: usize = 0;
    /// Temperature MSB.
    pub const TEMP_MSB: usize = 1;
    /// TH alarm register (user byte 1).
    pub const TH: usize = 2;
    /// TL alarm register (user byte 2).
    pub const TL: usize = 3;
    /// Configuration register (resolution in bits 6:5).
    pub const CONFIG: usize = 4;
    /// Reserved, reads 0xFF.
    pub const RESERVED_5: usize = 5;
    /// Reserved.
    pub const RESERVED_6: usize = 6;
    /// Reserved, reads 0x10.
    pub const RESERVED_7: usize = 7;
    /// CRC of bytes 0..8.
    pub const CRC: usize = 8;
    /// Raw power-on reset temperature, +85 °C.
    pub const POWER_ON_RAW: i16 = 0x0550;
    /// 1-Wire family code of the DS18B20.
    pub const FAMILY: &'static str = "28";
}

/// Lowest temperature the DS18B20 measures, °C.
pub const MIN_CELSIUS: f64 = -55.0;
/// Highest temperature the DS18B20 measures, °C.
pub const MAX_CELSIUS: f64 = 125.0;

/// Why a DS18B20 reading was rejected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ds18b20Error {
    /// The `w1_slave` text is not in the kernel's format.
    Malformed,
    /// The scratchpad's CRC is wrong (or the kernel said `crc=.. NO`).
    CrcMismatch,
    /// All-zero scratchpad: no device answering, or the data line is held low.
    NoDevice,
    /// 85.000 °C, the power-on reset value: no conversion took place.
    PowerOnValue,
    /// A temperature the sensor cannot produce, in millidegrees Celsius.
    Impossible(i32),
    /// The kernel's `t=` value differs from the scratchpad's temperature.
    Disagree,
}

impl fmt::Display for Ds18b20Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ds18b20Error::Malformed => f.write_str(
                "DS18B20 w1_slave text is malformed; is this a w1_therm device file (28-…/w1_slave)?",
            ),
            Ds18b20Error::CrcMismatch => f.write_str(
                "DS18B20 scratchpad CRC mismatch; check the wiring, the 4.7 kΩ pull-up to 3.3 V \
                 and the cable length (use twisted pair for long runs)",
            ),
            Ds18b20Error::NoDevice => f.write_str(
                "DS18B20 returned an all-zero scratchpad; the data line is held low: check the \
                 wiring (probe reversed or shorted) and the 4.7 kΩ pull-up",
            ),
            Ds18b20Error::PowerOnValue => f.write_str(
                "DS18B20 reported its 85 °C power-on value, so no conversion ran; power VDD from \
                 3.3 V instead of parasite power and check the 4.7 kΩ pull-up",
            ),
            Ds18b20Error::Impossible(mdeg) => {
                let sign = if *mdeg < 0 { "-" } else { "" };
                let a = mdeg.unsigned_abs();
                write!(
                    f,
                    "DS18B20 reported an impossible {sign}{}.{:03} °C; check the wiring, the \
                     4.7 kΩ pull-up and the cable length",
                    a / 1000,
                    a % 1000
                )
            }
            Ds18b20Error::Disagree => f.write_str(
                "DS18B20 t= value disagrees with the scratchpad; the read was corrupted: check \
                 the wiring, the 4.7 kΩ pull-up and the cable length",
            ),
        }
    }
}

impl core::error::Error for Ds18b20Error {}

/// Dallas/Maxim CRC-8 (polynomial x⁸+x⁵+x⁴+1, 0x31 reflected = 0x8C, initial value 0).
///
/// Over a full scratchpad including its CRC byte the result is 0.
pub fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in bytes {
        let mut byte = b;
        for _ in 0..8 {
            let mix = (crc ^ byte) & 0x01;
            crc >>= 1;
            if mix != 0 {
                crc ^= 0x8C;
            }
            byte >>= 1;
        }
    }
    crc
}

/// Resolution in bits (9..=12) from the configuration byte.
pub fn resolution_bits(config: u8) -> u8 {
    9 + ((config >> 5) & 0x03)
}

/// Raw temperature (1/16 °C) with the bits that are undefined at this resolution cleared.
fn masked_raw(sp: &[u8; 9]) -> i16 {
    let raw = i16::from_le_bytes([sp[Register::TEMP_LSB], sp[Register::TEMP_MSB]]);
    let undefined = 12 - resolution_bits(sp[Register::CONFIG]);
    // Clearing low bits of a two's-complement value rounds toward −∞, as the chip does.
    raw & !((1i16 << undefined) - 1)
}

/// Millidegrees of a raw 1/16 °C value (exact: 1/16 °C = 62.5 m°C, rounded toward zero like
/// the kernel).
fn raw_to_mdeg(raw: i16) -> i32 {
    i32::from(raw) * 1000 / 16
}

/// Decode and validate a 9-byte scratchpad to °C.
///
/// Checks, in order: all-zero ([`Ds18b20Error::NoDevice`]), all-ones (the undriven line's
/// −0.0625 °C garbage, [`Ds18b20Error::Impossible`]), the CRC in byte 8, the 85 °C power-on
/// value, and the −55..=125 °C range. The temperature is two's complement in 1/16 °C; the
/// low bits that the configured resolution (byte 4, bits 6:5) leaves undefined are masked.
pub fn decode_scratchpad(sp: &[u8; 9]) -> Result<f64, Ds18b20Error> {
    if sp.iter().all(|&b| b == 0) {
        return Err(Ds18b20Error::NoDevice);
    }
    if sp.iter().all(|&b| b == 0xFF) {
        return Err(Ds18b20Error::Impossible(raw_to_mdeg(-1)));
    }
    if crc8(&sp[..8]) != sp[Register::CRC] {
        return Err(Ds18b20Error::CrcMismatch);
    }
    let raw = masked_raw(sp);
    if raw == Register::POWER_ON_RAW {
        return Err(Ds18b20Error::PowerOnValue);
    }
    let celsius = f64::from(raw) / 16.0;
    if !(MIN_CELSIUS..=MAX_CELSIUS).contains(&celsius) {
        return Err(Ds18b20Error::Impossible(raw_to_mdeg(raw)));
    }
    Ok(celsius)
}

/// Parse and fully validate the kernel's `w1_slave` text, returning °C.
///
/// `crc=.. NO` gives [`Ds18b20Error::CrcMismatch`] even when a `t=` value is present. The
/// scratchpad on the first line is decoded with [`decode_scratchpad`], and the `t=` value must
/// agree with it to within one step of the configured resolution
/// ([`Ds18b20Error::Disagree`] otherwise).
pub fn parse_w1_slave(text: &str) -> Result<f64, Ds18b20Error> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().ok_or(Ds18b20Error::Malformed)?;
    let second = lines.next().ok_or(Ds18b20Error::Malformed)?;

    let (bytes_part, crc_part) = first.split_once(':').ok_or(Ds18b20Error::Malformed)?;
    let sp = parse_bytes(bytes_part)?;
    let mut crc_words = crc_part.split_whitespace();
    let crc_word = crc_words.next().ok_or(Ds18b20Error::Malformed)?;
    let crc_hex = crc_word
        .strip_prefix("crc=")
        .ok_or(Ds18b20Error::Malformed)?;
    parse_hex_byte(crc_hex)?;
    match crc_words.next() {
        Some("YES") => {}
        Some("NO") => return Err(Ds18b20Error::CrcMismatch),
        _ => return Err(Ds18b20Error::Malformed),
    }
    if crc_words.next().is_some() {
        return Err(Ds18b20Error::Malformed);
    }

    let (_, t_part) = second.split_once("t=").ok_or(Ds18b20Error::Malformed)?;
    let t_mdeg: i32 = t_part.trim().parse().map_err(|_| Ds18b20Error::Malformed)?;

    let celsius = decode_scratchpad(&sp)?;
    let step = 1000 * (1i64 << (12 - resolution_bits(sp[Register::CONFIG]))) / 16;
    let mine = raw_to_mdeg(masked_raw(&sp));
    if (i64::from(t_mdeg) - i64::from(mine)).abs() > step + 1 {
        return Err(Ds18b20Error::Disagree);
    }
    Ok(celsius)
}

fn parse_bytes(s: &str) -> Result<[u8; 9], Ds18b20Error> {
    let mut out = [0u8; 9];
    let mut n = 0;
    for word in s.split_whitespace() {
        if n == 9 {
            return Err(Ds18b20Error::Malformed);
        }
        out[n] = parse_hex_byte(word)?;
        n += 1;
    }
    if n == 9 {
        Ok(out)
    } else {
        Err(Ds18b20Error::Malformed)
    }
}

fn parse_hex_byte(s: &str) -> Result<u8, Ds18b20Error> {
    if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Ds18b20Error::Malformed);
    }
    u8::from_str_radix(s, 16).map_err(|_| Ds18b20Error::Malformed)
}

/// A 12-bit scratchpad with a valid CRC reading `celsius` (rounded to 1/16 °C and clamped to
/// the i16 range) — for the simulator and fixtures.
///
/// Bytes 2..8 are a genuine chip's defaults: TH 0x4B, TL 0x46, config 0x7F, 0xFF, the
/// `0x10 - (LSB & 0x0F)` byte 6 that genuine DS18B20s show, 0x10.
pub fn scratchpad_for(celsius: f64) -> [u8; 9] {
    let scaled = celsius * 16.0;
    // Round half away from zero without libm; the cast saturates (NaN becomes 0).
    let raw = if scaled >= 0.0 {
        (scaled + 0.5) as i16
    } else {
        (scaled - 0.5) as i16
    };
    let [lsb, msb] = raw.to_le_bytes();
    let mut sp = [
        lsb,
        msb,
        0x4B,
        0x46,
        0x7F,
        0xFF,
        0x10 - (lsb & 0x0F),
        0x10,
        0,
    ];
    sp[Register::CRC] = crc8(&sp[..8]);
    sp
}

/// Whether `s` is a DS18B20 kernel ROM id: `28-` followed by 12 hex digits.
pub fn is_rom_id(s: &str) -> bool {
    match s.strip_prefix("28-") {
        Some(rest) => rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// Capacity of [`W1Text`]'s buffer; two kernel lines need at most 85 bytes.
const W1_TEXT_CAP: usize = 96;

/// Kernel-style `w1_slave` text rendered into a fixed buffer (no allocation).
#[derive(Clone)]
pub struct W1Text {
    buf: [u8; W1_TEXT_CAP],
    len: usize,
}

impl W1Text {
    /// Render what the kernel's `w1_therm` prints for this scratchpad: the bytes, the CRC the
    /// kernel computes over bytes 0..8 with `YES`/`NO`, the bytes again and
    /// `t=<raw * 1000 / 16>` (integer division, unmasked, as the kernel does — even when the
    /// CRC fails).
    pub fn from_scratchpad(sp: &[u8; 9]) -> Self {
        let mut t = Self {
            buf: [0; W1_TEXT_CAP],
            len: 0,
        };
        let crc = crc8(&sp[..8]);
        let verdict = if crc == sp[Register::CRC] {
            "YES"
        } else {
            "NO"
        };
        let raw = i16::from_le_bytes([sp[Register::TEMP_LSB], sp[Register::TEMP_MSB]]);
        // Cannot fail: the buffer is larger than the longest rendering.
        let _ = fmt::write(
            &mut t,
            format_args!("{} : crc={crc:02x} {verdict}\n", Hex(sp)),
        );
        let _ = fmt::write(&mut t, format_args!("{} t={}\n", Hex(sp), raw_to_mdeg(raw)));
        t
    }

    /// The rendered text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Debug for W1Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for W1Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Write for W1Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > W1_TEXT_CAP {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

struct Hex<'a>(&'a [u8; 9]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str =
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";

    fn with_temp(raw: i16, config: u8) -> [u8; 9] {
        let [l, m] = raw.to_le_bytes();
        let mut sp = [l, m, 0x4B, 0x46, config, 0xFF, 0x0C, 0x10, 0];
        sp[8] = crc8(&sp[..8]);
        sp
    }

    #[test]
    fn crc_of_kernel_example() {
        assert_eq!(
            crc8(&[0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10]),
            0x57
        );
        assert_eq!(
            crc8(&[0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10, 0x57]),
            0
        );
        // Maxim application note 27 example ROM: 02 1C B8 01 00 00 00 → CRC A2.
        assert_eq!(crc8(&[0x02, 0x1C, 0xB8, 0x01, 0x00, 0x00, 0x00]), 0xA2);
    }

    #[test]
    fn datasheet_temperature_table() {
        // Maxim DS18B20 datasheet, Table 1 (12-bit).
        for (raw, c) in [
            (0x07D0u16, 125.0),
            (0x0550, 85.0),
            (0x0191, 25.0625),
            (0x00A2, 10.125),
            (0x0008, 0.5),
            (0x0000, 0.0),
            (0xFFF8, -0.5),
            (0xFF5E, -10.125),
            (0xFE6F, -25.0625),
            (0xFC90, -55.0),
        ] {
            let sp = with_temp(raw as i16, 0x7F);
            let got = decode_scratchpad(&sp);
            if raw == 0x0550 {
                assert_eq!(got, Err(Ds18b20Error::PowerOnValue));
            } else {
                assert_eq!(got, Ok(c), "raw {raw:04x}");
            }
        }
    }

    #[test]
    fn resolution_masks_undefined_bits() {
        // 9-bit: bits 2..0 undefined; 0x0197 would be 25.4375 at 12 bits.
        assert_eq!(decode_scratchpad(&with_temp(0x0197, 0x1F)), Ok(25.0));
        // 10-bit: bits 1..0 undefined.
        assert_eq!(decode_scratchpad(&with_temp(0x0197, 0x3F)), Ok(25.25));
        // 11-bit: bit 0 undefined.
        assert_eq!(decode_scratchpad(&with_temp(0x0197, 0x5F)), Ok(25.375));
        // Negative at 9-bit: −10.125 (0xFF5E) reads as −10.5 (round toward −∞ = 0xFF58).
        assert_eq!(
            decode_scratchpad(&with_temp(0xFF5Eu16 as i16, 0x1F)),
            Ok(-10.5)
        );
    }

    #[test]
    fn failures() {
        assert_eq!(decode_scratchpad(&[0; 9]), Err(Ds18b20Error::NoDevice));
        assert_eq!(
            decode_scratchpad(&[0xFF; 9]),
            Err(Ds18b20Error::Impossible(-62))
        );
        let mut sp = with_temp(0x0191, 0x7F);
        sp[8] ^= 1;
        assert_eq!(decode_scratchpad(&sp), Err(Ds18b20Error::CrcMismatch));
        assert_eq!(
            decode_scratchpad(&with_temp(0x07E0, 0x7F)),
            Err(Ds18b20Error::Impossible(126_000))
        );
        // −127 °C (a "disconnected" marker in some libraries).
        assert_eq!(
            decode_scratchpad(&with_temp(-127 * 16, 0x7F)),
            Err(Ds18b20Error::Impossible(-127_000))
        );
        // A genuine −0.0625 °C with a valid CRC is a real near-freezing reading.
        assert_eq!(decode_scratchpad(&with_temp(-1, 0x7F)), Ok(-0.0625));
    }

    #[test]
    fn parses_kernel_example() {
        assert_eq!(parse_w1_slave(EXAMPLE), Ok(23.125));
    }

    #[test]
    fn crc_no_is_rejected_even_with_t() {
        let text = EXAMPLE.replace("YES", "NO");
        assert_eq!(parse_w1_slave(&text), Err(Ds18b20Error::CrcMismatch));
    }

    #[test]
    fn t_must_agree() {
        let text = EXAMPLE.replace("t=23125", "t=24125");
        assert_eq!(parse_w1_slave(&text), Err(Ds18b20Error::Disagree));
        let text = EXAMPLE.replace("t=23125", "t=23187");
        assert_eq!(parse_w1_slave(&text), Ok(23.125));
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n",
            "72 01 4b 46 7f ff 0e 10 : crc=57 YES\nx t=1\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 MAYBE\n72 t=1\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 t=abc\n",
            "72 01 4b 46 7f ff 0e 10 5g : crc=57 YES\n72 t=23125\n",
        ] {
            assert_eq!(parse_w1_slave(bad), Err(Ds18b20Error::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn render_round_trip() {
        let sp = [0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10, 0x57];
        assert_eq!(W1Text::from_scratchpad(&sp).as_str(), EXAMPLE);
        for c in [-55.0, -10.125, -0.5, 0.0, 21.3, 85.0625, 125.0] {
            let sp = scratchpad_for(c);
            let text = W1Text::from_scratchpad(&sp);
            let expect = f64::from(i16::from_le_bytes([sp[0], sp[1]])) / 16.0;
            assert_eq!(parse_w1_slave(text.as_str()), Ok(expect), "{c}");
        }
        assert_eq!(scratchpad_for(23.125), sp);
    }

    #[test]
    fn bad_crc_renders_no_with_kernel_t() {
        let mut sp = scratchpad_for(-10.125);
        sp[8] ^= 0xFF;
        let text = W1Text::from_scratchpad(&sp);
        assert!(text.as_str().contains(" NO\n"));
        assert!(text.as_str().ends_with(" t=-10125\n"));
        assert_eq!(
            parse_w1_slave(text.as_str()),
            Err(Ds18b20Error::CrcMismatch)
        );
    }

    #[test]
    fn rom_ids() {
        assert!(is_rom_id("28-0316a2791eff"));
        assert!(is_rom_id("28-00000A1B2C3D"));
        assert!(!is_rom_id("10-0316a2791eff"));
        assert!(!is_rom_id("28-0316a2791ef"));
        assert!(!is_rom_id("28-0316a2791efg"));
        assert!(!is_rom_id("w1_bus_master1"));
    }
}
