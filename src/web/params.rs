//! Query parameters of the API and the charts, each checked with a message that names the
//! parameter and what it accepts, and the choice of resolution for a time range.

use std::collections::HashMap;

use crate::reading::{parse_ts, Quantity, Timestamp};
use crate::store::Resolution;

use super::source::{HistorySource, SourceError};

/// A chart or an answer aims for at least this many points ...
pub const TARGET_POINTS: i64 = 300;
/// ... and never carries more than this many per sensor: beyond, a coarser resolution.
pub const MAX_POINTS: u64 = 20_000;
/// Raw readings are never read for a range longer than this (two days): a coarser
/// resolution answers, so a long range never scans millions of rows.
pub const RAW_MAX_SPAN_MS: i64 = 2 * 86_400_000;
/// The default range when `from` is not given: the last 24 hours.
pub const DEFAULT_SPAN_MS: i64 = 86_400_000;

/// A parameter the request got wrong: its name and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{name}`: {message}")]
pub struct BadParam {
    /// The parameter.
    pub name: String,
    /// What is wrong and what it accepts.
    pub message: String,
}

fn bad(name: &str, message: impl Into<String>) -> BadParam {
    BadParam {
        name: name.into(),
        message: message.into(),
    }
}

/// The query string of one request, checked against the parameters the route accepts.
pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    /// Refuses a parameter `accepted` does not name.
    pub fn new(map: HashMap<String, String>, accepted: &[&str]) -> Result<Params, BadParam> {
        let mut unknown: Vec<&String> = map
            .keys()
            .filter(|k| !accepted.contains(&k.as_str()))
            .collect();
        unknown.sort();
        if let Some(k) = unknown.first() {
            return Err(bad(
                k,
                format!(
                    "unknown parameter; this route accepts {}",
                    accepted.join(", ")
                ),
            ));
        }
        Ok(Params { map })
    }

    /// The raw text of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A quantity name.
    pub fn quantity(&self, name: &str) -> Result<Option<Quantity>, BadParam> {
        self.get(name)
            .map(|q| {
                q.parse::<Quantity>().map_err(|_| {
                    let known: Vec<&str> = Quantity::ALL.iter().map(|q| q.as_str()).collect();
                    bad(
                        name,
                        format!("unknown quantity `{q}`; use one of {}", known.join(", ")),
                    )
                })
            })
            .transpose()
    }

    /// An RFC 3339 time (`2026-06-01T12:00:00Z`) or a date (`2026-06-01`, midnight UTC).
    pub fn time(&self, name: &str) -> Result<Option<Timestamp>, BadParam> {
        self.get(name)
            .map(|t| {
                parse_ts(t).ok_or_else(|| {
                    bad(
                        name,
                        format!("`{t}` is not a time; use RFC 3339 (2026-06-01T12:00:00Z) or a date (2026-06-01)"),
                    )
                })
            })
            .transpose()
    }

    /// `[from, to)`: `to` defaults to `now`, `from` to 24 hours before `to`.
    pub fn range(&self, now: Timestamp) -> Result<(Timestamp, Timestamp), BadParam> {
        let to = self.time("to")?.unwrap_or(now);
        let from = self.time("from")?.unwrap_or(to - DEFAULT_SPAN_MS);
        if from >= to {
            return Err(bad("from", "must be before `to`"));
        }
        Ok((from, to))
    }

    /// `raw`, `minute`, `hour` or `day`.
    pub fn resolution(&self, name: &str) -> Result<Option<Resolution>, BadParam> {
        self.get(name)
            .map(|r| {
                r.parse::<Resolution>()
                    .map_err(|e| bad(name, e.to_string()))
            })
            .transpose()
    }
}

/// Length of one bucket of `res` (a local day counts as 24 h here).
fn bucket_ms(res: Resolution) -> i64 {
    match res {
        Resolution::Raw => 1,
        Resolution::Minute => 60_000,
        Resolution::Hour => 3_600_000,
        Resolution::Day => 86_400_000,
    }
}

fn coarser(res: Resolution) -> Resolution {
    match res {
        Resolution::Raw => Resolution::Minute,
        Resolution::Minute => Resolution::Hour,
        Resolution::Hour | Resolution::Day => Resolution::Day,
    }
}

/// The coarsest resolution that still gives about [`TARGET_POINTS`] points over `span_ms`
/// (day, hour, minute, else raw).
pub fn preferred(span_ms: i64) -> Resolution {
    [Resolution::Day, Resolution::Hour, Resolution::Minute]
        .into_iter()
        .find(|r| span_ms / bucket_ms(*r) >= TARGET_POINTS)
        .unwrap_or(Resolution::Raw)
}

/// The resolution to answer with: `wanted` (or [`preferred`]), made coarser until the
/// range holds at most [`MAX_POINTS`] points per sensor. Raw readings are counted (up to
/// the limit) over ranges of at most [`RAW_MAX_SPAN_MS`] and never read over longer ones.
pub async fn choose(
    source: &dyn HistorySource,
    station: Option<String>,
    quantity: Quantity,
    (from, to): (Timestamp, Timestamp),
    wanted: Option<Resolution>,
) -> Result<Resolution, SourceError> {
    let span = to - from;
    let mut res = wanted.unwrap_or_else(|| preferred(span));
    if res == Resolution::Raw {
        let too_many = span > RAW_MAX_SPAN_MS
            || source
                .count_raw(station, quantity, from, to, MAX_POINTS)
                .await?
                > MAX_POINTS;
        if !too_many {
            return Ok(res);
        }
        res = Resolution::Minute;
    }
    while res != Resolution::Day && (span / bucket_ms(res)) as u64 > MAX_POINTS {
        res = coarser(res);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)], accepted: &[&str]) -> Result<Params, BadParam> {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            accepted,
        )
    }

    #[test]
    fn spans_pick_the_coarsest_resolution_that_fills_a_chart() {
        let h = 3_600_000;
        assert_eq!(preferred(h), Resolution::Raw);
        assert_eq!(preferred(24 * h), Resolution::Minute);
        assert_eq!(preferred(7 * 24 * h), Resolution::Minute);
        assert_eq!(preferred(30 * 24 * h), Resolution::Hour);
        assert_eq!(preferred(365 * 24 * h), Resolution::Day);
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = params(&[("colour", "red")], &["from", "to"]).err().unwrap();
        assert_eq!(e.name, "colour");
        assert!(e.message.contains("from, to"), "{e}");
        let p = params(&[("from", "yesterday")], &["from", "to"]).unwrap();
        assert_eq!(p.range(0).unwrap_err().name, "from");
        let p = params(
            &[("from", "2026-06-02"), ("to", "2026-06-01")],
            &["from", "to"],
        )
        .unwrap();
        assert_eq!(p.range(0).unwrap_err().name, "from");
        let p = params(&[("resolution", "week")], &["resolution"]).unwrap();
        let e = p.resolution("resolution").unwrap_err();
        assert!(e.message.contains("raw, minute, hour or day"), "{e}");
        let p = params(&[("quantity", "temp")], &["quantity"]).unwrap();
        assert!(p
            .quantity("quantity")
            .unwrap_err()
            .message
            .contains("air_temperature"));
    }
}
