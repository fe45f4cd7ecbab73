//! Issue 7, benchmark 3 "Pulses": the highest edge rate the GPIO counting path counts
//! without loss on this host. Run it with `cargo bench --bench pulses` (release profile).
//!
//! The path is the station's own: a simulated reed switch (`SimEdges`, as `--simulate`
//! uses) behind an [`EdgeSource`], drained once per sample interval, every edge fed to the
//! drivers' [`PulseCounter`] (anemometer) or [`RainGauge`] (rain gauge) with the debounce
//! of the default config (`etc/anemone.toml`, what `anemone config init` writes). The
//! per-interval loops below are the ones of `AnemometerSource::sample` and
//! `RainSource::sample` (`src/sources/wind.rs`), which are private to the daemon. The
//! switch is a fixed-rate pulse train ([`Switch::Square`]); the ground truth is
//! [`SimEdges::delivered`], the real closures among the drained edges.
//!
//! For each line the rate is doubled from 1 Hz until a closure is lost, then bisected to
//! 1 Hz. Each step simulates a bounded span (`step_secs`), so no step does more than about
//! a million closures' work. A debounce of D µs merges edges less than D apart by design:
//! a closure is counted only if the switch was quiet for D before it, so a clean switch is
//! counted exactly up to about 1 / (2 D) closures per second (a bouncing one less, by the
//! length of its bounce). Above that every gap is shorter than D and the whole train is one
//! endless burst, so almost nothing is counted. The station's own simulator drives a clean
//! switch; the bouncing line shows what contact bounce costs. Separately, the raw
//! throughput (edges per second) shows how far the CPU is from being the limit. Times are
//! wall clock (`Instant`), so on a loaded machine they are upper bounds; the ns/edge of the
//! rate rows include a clock read per drain, which dominates at low rates.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use anemone::config::{Config, EXAMPLE};
use anemone::hal::sim::{SimEdges, Switch, Weather};
use anemone::hal::{EdgeSource, GpioError};
use anemone::sensors::SensorKind;
use anemone_drivers::pulse::{Edge, PulseCounter};
use anemone_drivers::rain_gauge::{RainGauge, DEFAULT_MM_PER_TIP};

/// Closures a step aims to simulate (the span is clamped to `MIN_SECS..=MAX_SECS`).
const TARGET_CLOSURES: f64 = 500_000.0;
/// Shortest simulated span of a step, s.
const MIN_SECS: u64 = 3_600;
/// Longest simulated span of a step (one day), s.
const MAX_SECS: u64 = 86_400;
/// The doubling stops here: a line still exact at this rate is reported as "≥".
const MAX_HZ: u64 = 1 << 20;
/// The target of issue 7, in closures per second.
const TARGET_HZ: u64 = 200;
/// Runs of the throughput measurement (the fastest and the median are reported).
const THROUGHPUT_RUNS: usize = 5;
/// Closures per throughput run.
const THROUGHPUT_CLOSURES: f64 = 1_000_000.0;

/// How the edges are counted: the anemometer's or the rain gauge's state machine.
#[derive(Clone, Copy)]
enum Counter {
    Anemometer { debounce_us: u32 },
    RainGauge { debounce_us: u32, min_tip_us: u64 },
}

impl Counter {
    fn debounce_us(self) -> u32 {
        match self {
            Counter::Anemometer { debounce_us } | Counter::RainGauge { debounce_us, .. } => {
                debounce_us
            }
        }
    }
}

/// One benchmarked configuration.
struct Line {
    name: &'static str,
    counter: Counter,
    /// The sensor's sample interval: how often the source drains its edges, ms.
    interval_ms: i64,
    /// Contact bounce of the simulated switch: (within µs, extra toggles).
    bounce: Option<(u64, u32)>,
}

/// What one rate gave.
struct Step {
    hz: u64,
    secs: u64,
    edges: u64,
    closures: u64,
    /// Closures the counter reported (for the rain gauge: plausible + flagged tips).
    counted: u64,
    /// Rain-gauge tips reported but flagged implausible (stored flagged, not added).
    flagged: u64,
    shortest_gap_us: u64,
    drain_ns: u128,
    count_ns: u128,
}

impl Step {
    fn lost(&self) -> i128 {
        i128::from(self.closures) - i128::from(self.counted)
    }

    fn exact(&self) -> bool {
        self.lost() == 0
    }

    fn ns_per_edge(&self, ns: u128) -> f64 {
        ns as f64 / self.edges.max(1) as f64
    }
}

/// The simulated span of a step at `hz`: about `TARGET_CLOSURES`, within
/// `MIN_SECS..=MAX_SECS`, a whole number of sample intervals.
fn step_secs(hz: u64, interval_ms: i64) -> u64 {
    let secs = (TARGET_CLOSURES / hz.max(1) as f64).ceil() as u64;
    let secs = secs.clamp(MIN_SECS, MAX_SECS);
    let interval_s = (interval_ms / 1000).max(1) as u64;
    secs.div_ceil(interval_s) * interval_s
}

fn edge_source(line: &Line, hz: u64) -> EdgeSource {
    let sim = SimEdges::new(Weather::new(1, 0.0, 0.0), Switch::Square(hz as f64), 0);
    let sim = match line.bounce {
        Some((within_us, toggles)) => sim.with_bounce(within_us, toggles),
        None => sim,
    };
    EdgeSource::Sim(Box::new(sim))
}

fn delivered(source: &EdgeSource) -> u64 {
    match source {
        EdgeSource::Sim(s) => s.delivered(),
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}

/// Runs `line` at `hz` closures per second for `secs` simulated seconds.
fn run(line: &Line, hz: u64, secs: u64) -> Result<Step, GpioError> {
    let mut source = edge_source(line, hz);
    let mut pulses = PulseCounter::new(line.counter.debounce_us());
    let mut gauge = match line.counter {
        Counter::RainGauge {
            debounce_us,
            min_tip_us,
        } => Some(RainGauge::new(DEFAULT_MM_PER_TIP, debounce_us, min_tip_us)),
        Counter::Anemometer { .. } => None,
    };
    let mut buf: Vec<Edge> = Vec::new();
    let (mut edges, mut counted, mut flagged) = (0u64, 0u64, 0u64);
    let (mut drain_ns, mut count_ns) = (0u128, 0u128);
    let mut last_ts: Option<u64> = None;
    let mut shortest_gap_us = u64::MAX;
    let end_ms = secs as i64 * 1000;
    let mut now = line.interval_ms;
    while now <= end_ms {
        buf.clear();
        let t0 = Instant::now();
        source.drain(now, &mut buf)?;
        let t1 = Instant::now();
        // The loops of AnemometerSource::sample and RainSource::sample.
        match gauge.as_mut() {
            None => {
                for e in &buf {
                    if pulses.edge(*e).is_some() {
                        counted += 1;
                    }
                }
            }
            Some(g) => {
                for e in &buf {
                    match g.edge(*e) {
                        Some(t) if t.plausible => counted += 1,
                        Some(_) => {
                            counted += 1;
                            flagged += 1;
                        }
                        None => {}
                    }
                }
            }
        }
        let t2 = Instant::now();
        drain_ns += (t1 - t0).as_nanos();
        count_ns += (t2 - t1).as_nanos();
        edges += buf.len() as u64;
        for e in &buf {
            if let Some(prev) = last_ts {
                shortest_gap_us = shortest_gap_us.min(e.ts_us.saturating_sub(prev));
            }
            last_ts = Some(e.ts_us);
        }
        now += line.interval_ms;
    }
    Ok(Step {
        hz,
        secs,
        edges,
        closures: delivered(&source),
        counted: black_box(counted),
        flagged,
        shortest_gap_us,
        drain_ns,
        count_ns,
    })
}

fn print_header() {
    println!(
        "| closures/s (Hz) | edges/s | simulated s | edges generated | closures generated | closures counted | of which flagged | lost | shortest edge gap µs | ns/edge drain | ns/edge count |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

fn print_row(line: &Line, s: &Step) {
    let flagged = match line.counter {
        Counter::RainGauge { .. } => s.flagged.to_string(),
        Counter::Anemometer { .. } => "–".to_string(),
    };
    let gap = if s.shortest_gap_us == u64::MAX {
        "–".to_string()
    } else {
        s.shortest_gap_us.to_string()
    };
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
        s.hz,
        2 * s.hz,
        s.secs,
        s.edges,
        s.closures,
        s.counted,
        flagged,
        s.lost(),
        gap,
        s.ns_per_edge(s.drain_ns),
        s.ns_per_edge(s.count_ns),
    );
}

/// Doubles from 1 Hz until a closure is lost, then bisects; returns (highest exact rate,
/// lowest lossy rate seen).
fn search(line: &Line) -> Result<(u64, Option<u64>), GpioError> {
    println!(
        "\n### {} (debounce {} µs, drained every {} ms{})\n",
        line.name,
        line.counter.debounce_us(),
        line.interval_ms,
        match line.bounce {
            Some((within, toggles)) => format!(
                ", contact bounce: {} extra edges within {within} µs of every edge",
                toggles + toggles % 2
            ),
            None => String::new(),
        }
    );
    print_header();
    let step = |hz: u64| -> Result<Step, GpioError> {
        let s = run(line, hz, step_secs(hz, line.interval_ms))?;
        print_row(line, &s);
        Ok(s)
    };
    let mut lo = 0u64;
    let mut hi = None;
    let mut hz = 1u64;
    while hz <= MAX_HZ {
        if step(hz)?.exact() {
            lo = hz;
            hz *= 2;
        } else {
            hi = Some(hz);
            break;
        }
    }
    if let Some(mut h) = hi {
        while h - lo > 1 {
            let mid = lo + (h - lo) / 2;
            if step(mid)?.exact() {
                lo = mid;
            } else {
                h = mid;
            }
        }
        hi = Some(h);
    }
    Ok((lo, hi))
}

/// Edges per second (wall clock) at `hz`: drain + count, and count alone, median and best of
/// `THROUGHPUT_RUNS`. The edges of one drain (about 1000 at 500 Hz) sit in the cache, as in
/// the station.
fn throughput(line: &Line, hz: u64) -> Result<(), GpioError> {
    let secs = ((THROUGHPUT_CLOSURES / hz.max(1) as f64).ceil() as u64).max(1);
    let mut path = Vec::new();
    let mut count = Vec::new();
    let mut edges = 0;
    for _ in 0..THROUGHPUT_RUNS {
        let s = run(line, hz, secs)?;
        path.push(s.ns_per_edge(s.drain_ns + s.count_ns));
        count.push(s.ns_per_edge(s.count_ns));
        edges = s.edges;
    }
    println!(
        "\n### Throughput: {} at {hz} Hz ({edges} edges a run, {THROUGHPUT_RUNS} runs)\n",
        line.name
    );
    println!("| what | ns/edge median | ns/edge best | edges/s (best) |");
    println!("|---|---:|---:|---:|");
    for (what, v) in [
        (
            "drain (simulated switch; the kernel + channel on a Pi) + count, per 1-s sample",
            &mut path,
        ),
        (
            "count alone (PulseCounter::edge), per 1-s sample",
            &mut count,
        ),
    ] {
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        let best = v[0];
        println!(
            "| {what} | {median:.2} | {best:.2} | {:.0} |",
            1e9 / best.max(1e-9)
        );
    }
    Ok(())
}

fn bench() -> Result<(), String> {
    let config = Config::from_toml(EXAMPLE, "etc/anemone.toml").map_err(|e| e.to_string())?;
    let (mut anemo, mut rain) = (None, None);
    for s in &config.sensors {
        let interval_ms = s.interval.0.as_millis() as i64;
        match &s.kind {
            SensorKind::Anemometer(a) if anemo.is_none() => {
                anemo = Some((a.debounce.0.as_micros(), interval_ms));
            }
            SensorKind::RainGauge(r) if rain.is_none() => {
                rain = Some((
                    r.debounce.0.as_micros(),
                    r.min_tip_interval.0.as_micros() as u64,
                    interval_ms,
                ));
            }
            _ => {}
        }
    }
    let (Some((anemo_us, anemo_ms)), Some((rain_us, min_tip_us, rain_ms))) = (anemo, rain) else {
        return Err("the default config has no anemometer or no rain gauge".into());
    };
    // As the sources do: debounce in µs, saturated to u32.
    let to_u32 = |us: u128| us.min(u128::from(u32::MAX)) as u32;
    let lines = [
        Line {
            name: "Anemometer, clean switch",
            counter: Counter::Anemometer {
                debounce_us: to_u32(anemo_us),
            },
            interval_ms: anemo_ms,
            bounce: None,
        },
        Line {
            name: "Anemometer, bouncing switch",
            counter: Counter::Anemometer {
                debounce_us: to_u32(anemo_us),
            },
            interval_ms: anemo_ms,
            bounce: Some((400, 4)),
        },
        Line {
            name: "Rain gauge, clean switch",
            counter: Counter::RainGauge {
                debounce_us: to_u32(rain_us),
                min_tip_us,
            },
            interval_ms: rain_ms,
            bounce: None,
        },
    ];
    println!("## Pulses: highest closure rate counted without loss (issue 7, benchmark 3)");
    let mut summary = Vec::new();
    for line in &lines {
        let (lo, hi) = search(line).map_err(|e| e.to_string())?;
        summary.push((line, lo, hi));
    }
    println!("\n### Summary\n");
    println!(
        "| line | debounce µs | highest exact closures/s (edges/s) | first lossy closures/s |"
    );
    println!("|---|---:|---:|---:|");
    for (line, lo, hi) in &summary {
        let hi = match hi {
            Some(h) => h.to_string(),
            None => format!("none up to {MAX_HZ}"),
        };
        let ge = if *lo >= MAX_HZ { "≥ " } else { "" };
        println!(
            "| {} | {} | {ge}{lo} ({}) | {hi} |",
            line.name,
            line.counter.debounce_us(),
            2 * lo
        );
    }
    if let Some((line, lo, _)) = summary.first() {
        let met = if *lo >= TARGET_HZ { "met" } else { "NOT met" };
        println!(
            "\nTarget (issue 7) 200 Hz with zero loss, {}: {met} (exact up to {lo} closures/s = {} edges/s).",
            line.name,
            2 * lo
        );
        let hz = (*lo).clamp(1, MAX_HZ);
        throughput(line, hz).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pulses benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
