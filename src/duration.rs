//! Human durations in config: `"500ms"`, `"5s"`, `"10m"`, `"2h"`, `"365d"`, or a bare number
//! of seconds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the way people write them in a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl Span {
    /// A span of whole seconds.
    pub const fn secs(s: u64) -> Span {
        Span(Duration::from_secs(s))
    }

    /// A span of milliseconds.
    pub const fn millis(ms: u64) -> Span {
        Span(Duration::from_millis(ms))
    }

    /// Length in milliseconds (saturating).
    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }

    /// True for a zero-length span.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

/// Parses `"500ms"`, `"5s"`, `"1.5s"`, `"10m"`, `"2h"`, `"365d"`, `"1w"`, or `"30"` (seconds).
pub fn parse_span(text: &str) -> Result<Span, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!(
            "`{text}` is not a duration: write e.g. \"500ms\", \"5s\", \"10m\", \"2h\" or \"365d\""
        )
    })?;
    let factor_ms = match unit.trim() {
        "ms" => 1.0,
        "" | "s" | "sec" | "secs" => 1_000.0,
        "m" | "min" | "mins" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        "w" | "week" | "weeks" => 604_800_000.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`: use ms, s, m, h, d or w"
            ))
        }
    };
    let ms = value * factor_ms;
    if !(0.0..=MAX_MS as f64).contains(&ms) {
        return Err(format!("`{text}` is out of range for a duration"));
    }
    Ok(Span(Duration::from_millis(ms.round() as u64)))
}

/// The longest span any duration may have (about 31 700 years), so that no arithmetic on
/// a span, in milliseconds or microseconds, can overflow; each key has its own, lower
/// bound in the config rules.
const MAX_MS: u64 = 1_000_000_000_000_000;

/// A bare number of seconds, within the same bound as [`parse_span`].
fn span_of_secs(secs: u64) -> Result<Span, String> {
    match secs.checked_mul(1_000) {
        Some(ms) if ms <= MAX_MS => Ok(Span::secs(secs)),
        _ => Err(format!("{secs} seconds is out of range for a duration")),
    }
}

/// What is wrong with a span that must lie within `min..=max`, if anything.
pub fn span_problem(span: Span, min: Span, max: Span, example: &str) -> Option<String> {
    if span < min {
        if min <= Span::millis(1) {
            return Some(format!("must be more than 0: e.g. \"{example}\""));
        }
        return Some(format!("must be at least {min}: e.g. \"{example}\""));
    }
    if span > max {
        return Some(format!("must be at most {max}: e.g. \"{example}\""));
    }
    None
}

/// A length of time for people to read: `850 ms`, `4.2 s`, `1 min 42 s`, `1 h`,
/// `2 h 5 min`, `3 d 4 h`; two units at most, the smaller one rounded. Negative lengths
/// read as zero.
pub fn human(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    if ms < 10_000 {
        let tenths = (ms + 50) / 100;
        return if tenths % 10 == 0 {
            format!("{} s", tenths / 10)
        } else {
            format!("{}.{} s", tenths / 10, tenths % 10)
        };
    }
    const UNITS: [(i64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    for (i, (size, name)) in UNITS.iter().enumerate() {
        let Some((small, small_name)) = UNITS.get(i + 1) else {
            return format!("{} {name}", (ms + size / 2) / size);
        };
        // Round to the smaller unit first, so 59.6 s is `1 min`, never `0 min 60 s`.
        let total = (ms + small / 2) / small;
        let per = size / small;
        if total < per {
            continue;
        }
        let (big, rest) = (total / per, total % per);
        return if rest == 0 {
            format!("{big} {name}")
        } else {
            format!("{big} {name} {rest} {small_name}")
        };
    }
    format!("{ms} ms")
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        const UNITS: [(u128, &str); 5] = [
            (604_800_000, "w"),
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ];
        if ms == 0 {
            return f.write_str("0s");
        }
        for (size, unit) in UNITS {
            if ms % size == 0 {
                return write!(f, "{}{}", ms / size, unit);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\", \"10m\" or \"365d\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Span, E> {
                parse_span(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Span, E> {
                let secs =
                    u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
                span_of_secs(secs).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Span, E> {
                span_of_secs(v).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Span, E> {
                parse_span(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn human_lengths_read_like_a_person_would_say_them() {
        assert_eq!(human(0), "0 ms");
        assert_eq!(human(850), "850 ms");
        assert_eq!(human(4_230), "4.2 s");
        assert_eq!(human(5_000), "5 s");
        assert_eq!(human(102_517), "1 min 43 s");
        assert_eq!(human(59_600), "1 min");
        assert_eq!(human(3_600_000), "1 h");
        assert_eq!(human(3_600_000 + 5 * 60_000 + 20_000), "1 h 5 min");
        assert_eq!(human(102_516), "1 min 43 s");
        assert_eq!(human(3 * 86_400_000 + 4 * 3_600_000), "3 d 4 h");
        assert_eq!(human(-5), "0 ms");
        // The bug this replaces: 102.5 s of station time printed as "0.028477… simulated h".
        assert_eq!(human(102_518), "1 min 43 s");
    }

    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(parse_span("500ms"), Ok(Span::millis(500)));
        assert_eq!(parse_span("5s"), Ok(Span::secs(5)));
        assert_eq!(parse_span("1.5s"), Ok(Span::millis(1500)));
        assert_eq!(parse_span("10m"), Ok(Span::secs(600)));
        assert_eq!(parse_span("365d"), Ok(Span::secs(365 * 86_400)));
        assert_eq!(parse_span("30"), Ok(Span::secs(30)));
        assert!(parse_span("5 parsecs").is_err());
        assert!(parse_span("").is_err());
        assert_eq!(Span::secs(600).to_string(), "10m");
        assert_eq!(Span::millis(1500).to_string(), "1500ms");
        assert_eq!(Span::secs(365 * 86_400).to_string(), "365d");
    }

    #[test]
    fn bare_seconds_are_bounded_like_text() {
        #[derive(Deserialize)]
        struct T {
            s: Span,
        }
        let ok: Result<T, _> = toml::from_str("s = 30");
        assert_eq!(ok.map(|t| t.s).ok(), Some(Span::secs(30)));
        for big in ["s = 9223372036854775807", "s = 1000000000001"] {
            assert!(toml::from_str::<T>(big).is_err(), "{big}");
        }
        assert!(parse_span("1000000000001s").is_err());
    }
}
