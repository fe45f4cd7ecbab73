//! Reed-switch edges from GPIO lines, counted by edge events, never by polling.
//!
//! On the Pi, lines are requested from the kernel's GPIO character device
//! (`/dev/gpiochipN`, GPIO uAPI v2 through `gpiocdev`) as inputs with the internal
//! pull-up, both edges detected, the kernel's debounce filter where the chip offers it,
//! and realtime kernel timestamps. A reader thread moves events into a queue that the
//! source drains on its schedule; the debounce and counting logic itself lives in the
//! drivers crate (`anemone_drivers::pulse`) and is the same for simulated edges.
//!
//! Wiring: switch between the GPIO pin and GND (the pull-up makes an open switch read
//! high). "Permission denied" on `/dev/gpiochip0` means the user is not in the `gpio`
//! group.

use anemone_drivers::pulse::Edge;

use super::sim::SimEdges;
use crate::reading::Timestamp;

/// Why edges could not be had.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// The line could not be requested.
    #[error("cannot watch GPIO {line} on {chip}: {detail}")]
    Request {
        /// Chip device.
        chip: String,
        /// Line (BCM number).
        line: u32,
        /// What went wrong and the fix.
        detail: String,
    },
    /// The reader thread stopped.
    #[error("the edge reader for GPIO {line} on {chip} stopped: {detail}")]
    Stopped {
        /// Chip device.
        chip: String,
        /// Line.
        line: u32,
        /// Why.
        detail: String,
    },
}

/// A source of timestamped edges.
pub enum EdgeSource {
    /// Kernel edge events from a GPIO line.
    #[cfg(target_os = "linux")]
    Linux(LinuxEdges),
    /// Simulated switch.
    Sim(Box<SimEdges>),
}

impl EdgeSource {
    /// Moves every edge that happened up to station time `until` into `out`.
    pub fn drain(&mut self, until: Timestamp, out: &mut Vec<Edge>) -> Result<(), GpioError> {
        match self {
            #[cfg(target_os = "linux")]
            EdgeSource::Linux(l) => l.drain(out),
            EdgeSource::Sim(s) => {
                s.drain(until, out);
                Ok(())
            }
        }
    }
}

/// Kernel edge events read by a background thread.
#[cfg(target_os = "linux")]
pub struct LinuxEdges {
    rx: std::sync::mpsc::Receiver<Result<Edge, String>>,
    chip: String,
    line: u32,
}

#[cfg(target_os = "linux")]
impl LinuxEdges {
    /// Requests `line` on GPIO chip `chip` with pull-up, both edges and `debounce_us`.
    pub fn open(chip: u8, line: u32, debounce_us: u64) -> Result<LinuxEdges, GpioError> {
        use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, EventClock};
        let path = super::paths::gpio_chip(chip);
        let chip_name = path.display().to_string();
        let fail = |detail: String| GpioError::Request {
            chip: chip_name.clone(),
            line,
            detail,
        };
        if !path.exists() {
            return Err(fail(format!(
                "{chip_name} does not exist: is this a Raspberry Pi with a current kernel?"
            )));
        }
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(&path)
            .with_consumer("anemone")
            .with_line(line)
            .as_input()
            .with_bias(Bias::PullUp)
            .with_edge_detection(EdgeDetection::BothEdges)
            .with_event_clock(EventClock::Realtime);
        if debounce_us > 0 {
            builder.with_debounce_period(std::time::Duration::from_micros(debounce_us));
        }
        let request = builder.request().map_err(|e| {
            let text = e.to_string();
            if text.contains("ermission") {
                fail("permission denied: add the user to the `gpio` group (sudo usermod -aG gpio $USER)".into())
            } else if text.contains("busy") || text.contains("Busy") {
                fail(format!("the line is in use by another program ({text}): stop it or pick another pin (if it is the station's own service, `sudo systemctl stop anemone` while you test, or read what it stores with `anemone stats`)"))
            } else {
                fail(text)
            }
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("gpio{line}-edges"))
            .spawn(move || loop {
                match request.read_edge_event() {
                    Ok(ev) => {
                        let edge = Edge {
                            ts_us: ev.timestamp_ns / 1000,
                            rising: matches!(ev.kind, EdgeKind::Rising),
                        };
                        if tx.send(Ok(edge)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            })
            .map_err(|e| fail(format!("cannot start the edge reader thread: {e}")))?;
        Ok(LinuxEdges {
            rx,
            chip: chip_name,
            line,
        })
    }

    fn drain(&mut self, out: &mut Vec<Edge>) -> Result<(), GpioError> {
        loop {
            match self.rx.try_recv() {
                Ok(Ok(e)) => out.push(e),
                Ok(Err(detail)) => {
                    return Err(GpioError::Stopped {
                        chip: self.chip.clone(),
                        line: self.line,
                        detail,
                    })
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(()),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(GpioError::Stopped {
                        chip: self.chip.clone(),
                        line: self.line,
                        detail: "the reader thread ended".into(),
                    })
                }
            }
        }
    }
}
