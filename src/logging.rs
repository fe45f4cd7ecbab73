//! Logging setup: text or JSON lines on standard error, and under systemd the priority
//! prefix journald understands.
//!
//! journald reads a service's standard error line by line; a line that starts with `<N>`
//! (sd-daemon(3): 3 error, 4 warning, 6 info, 7 debug) is stored with priority N and the
//! prefix removed, so `journalctl -u anemone -p warning` shows the warnings and errors and
//! nothing else. Without the prefix every line would be stored as info. The prefix is
//! written only when standard error really is the journal: systemd sets `JOURNAL_STREAM`
//! to the `device:inode` of that stream, and a child whose standard error was redirected
//! elsewhere (a pipe, a file) sees a different one. Timestamps are left to journald then.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The log line format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The sd-daemon priority of a tracing level.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `text` with `<priority>` before each of its lines (journald stores each line as its
/// own entry, so a multi-line message keeps its priority on every line).
pub fn prefix_lines(priority: u8, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for line in text.lines() {
        out.push_str(&format!("<{priority}>{line}\n"));
    }
    out
}

/// True when `journal_stream` (the value of `JOURNAL_STREAM`, `device:inode`) names the
/// stream whose `(device, inode)` is `stderr`.
pub fn stream_is_journal(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(var), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = var.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

/// The device and inode of this process's standard error.
fn stderr_id() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/self/fd/2").ok()?;
    Some((m.dev(), m.ino()))
}

/// True when standard error is connected to the journal.
pub fn under_journald() -> bool {
    stream_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref(), stderr_id())
}

/// An event format that puts the journald priority before every line of another format.
pub struct Prioritised<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for Prioritised<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&prefix_lines(priority(*event.metadata().level()), &line))
    }
}

/// Sets up the global subscriber: `RUST_LOG` filter (default `info`, the embedded broker's
/// own chatter at `warn`), standard error, and the journald prefix under systemd.
pub fn init(format: Format) {
    use tracing_subscriber::fmt::format as f;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rumqttd=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match (format, under_journald()) {
        (Format::Text, false) => builder.init(),
        (Format::Json, false) => builder.json().init(),
        (Format::Text, true) => builder
            .with_ansi(false)
            .event_format(Prioritised(f().with_ansi(false).without_time()))
            .init(),
        (Format::Json, true) => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(Prioritised(f().json().without_time()))
            .init(),
    }
}

/// Prints a message that ends the program (the `error: …` line) on standard error, with
/// the error priority when that is the journal.
pub fn print_error(text: &str) {
    if under_journald() {
        eprint!("{}", prefix_lines(3, text));
    } else {
        eprintln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn captured(json: bool, emit: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let out = buf.clone();
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || out.clone());
        if json {
            let sub = builder
                .fmt_fields(JsonFields::new())
                .event_format(Prioritised(tracing_subscriber::fmt::format().json()))
                .finish();
            tracing::subscriber::with_default(sub, emit);
        } else {
            let sub = builder
                .event_format(Prioritised(
                    tracing_subscriber::fmt::format()
                        .with_ansi(false)
                        .without_time(),
                ))
                .finish();
            tracing::subscriber::with_default(sub, emit);
        }
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn every_line_carries_the_priority_journald_reads() {
        let text = captured(false, || {
            tracing::error!("Disk full");
            tracing::warn!(sensor = "air", "Sensor failed");
            tracing::info!("Station started");
            tracing::debug!("Detail");
            tracing::warn!("First line\nsecond line");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(
            lines[0].starts_with("<3>") && lines[0].contains("Disk full"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("<4>") && lines[1].contains("air"),
            "{text}"
        );
        assert!(lines[2].starts_with("<6>"), "{text}");
        assert!(lines[3].starts_with("<7>"), "{text}");
        assert!(
            lines[4].starts_with("<4>") && lines[5].starts_with("<4>second line"),
            "{text}"
        );
    }

    #[test]
    fn json_lines_are_prefixed_too() {
        let text = captured(true, || tracing::warn!("Clock not synchronised"));
        let line = text.lines().next().unwrap_or_default();
        let json = line.strip_prefix("<4>").expect("prefix");
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["level"], "WARN");
    }

    #[test]
    fn the_journal_is_recognised_by_device_and_inode_only() {
        assert!(stream_is_journal(Some("8:1234"), Some((8, 1234))));
        assert!(!stream_is_journal(Some("8:1234"), Some((8, 99))));
        assert!(!stream_is_journal(None, Some((8, 1234))));
        assert!(!stream_is_journal(Some("garbage"), Some((8, 1234))));
        assert!(!stream_is_journal(Some("8:1234"), None));
    }
}
