//! `anemone`: the command line. Thin: it parses, then calls the library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use anemone::clock::{system_now, Clock};
use anemone::config::{self, parse_span, Config};
use anemone::reading::{parse_ts, Quantity, Timestamp};
use anemone::report;
use anemone::station::{self, RunOptions};
use anemone::store::{Resolution, Store};

/// Weather and ocean sensor station firmware and logger for the Raspberry Pi.
#[derive(Parser)]
#[command(name = "anemone", version, about, long_about = None)]
struct Cli {
    /// Config file [default: /etc/anemone/anemone.toml if it exists, else the built-in
    /// simulated station].
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database file (overrides `[storage] path`).
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for journald / log shippers).
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the station: read sensors on schedule, store and publish.
    Run(RunArgs),
    /// Read every configured sensor once and print the readings.
    Read(ReadArgs),
    /// Check a config file and print every problem with its key and the fix.
    Validate,
    /// Config helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Export stored readings or aggregates.
    Export(ExportArgs),
    /// Daily summary: min and max with their times, mean, rain total, max gust.
    Stats(StatsArgs),
    /// Find the sensors wired to this Pi and print a config snippet for them.
    Probe(ProbeArgs),
    /// Calibrate a probe and record the calibration in the database.
    #[command(subcommand)]
    Calibrate(CalibrateCommand),
    /// MQTT helpers.
    #[command(subcommand)]
    Mqtt(MqttCommand),
}

#[derive(Subcommand)]
enum MqttCommand {
    /// Connect with the configured settings and report DNS, TCP, TLS, auth and publish
    /// permission step by step; exits non-zero on failure.
    Check,
}

#[derive(Subcommand)]
enum CalibrateCommand {
    /// pH probe (EZO-pH or analog): put it in a buffer, wait for the reading to settle,
    /// then record the point. Always start with `--point mid`.
    Ph(PhCalArgs),
    /// EZO-EC conductivity circuit: `--step dry` first (probe dry), then `single`, or
    /// `low` and `high`, each with `--value` in µS/cm.
    Ec(CircuitCalArgs),
    /// EZO-DO dissolved-oxygen circuit: `--step air` (probe in air), optionally `zero`.
    Do(CircuitCalArgs),
    /// EZO-ORP circuit: `--step point` in a calibration solution (`--value` mV, default 225).
    Orp(CircuitCalArgs),
    /// SCD41 CO2 sensor: `--step frc` after 3 minutes in air of a known concentration
    /// (`--value` ppm, default 420 for outdoor air).
    Co2(CircuitCalArgs),
}

#[derive(Args)]
struct CircuitCalArgs {
    /// The sensor's id.
    #[arg(long)]
    sensor: String,
    /// The calibration step (see the subcommand's help).
    #[arg(long, required_unless_present_any = ["clear", "status"])]
    step: Option<String>,
    /// The calibration solution's value, where the step takes one.
    #[arg(long)]
    value: Option<f64>,
    /// Clear the circuit's calibration.
    #[arg(long, conflicts_with_all = ["step", "status"])]
    clear: bool,
    /// Show the points the circuit holds and the recorded history.
    #[arg(long, conflicts_with = "step")]
    status: bool,
    /// Talk to the simulated circuit.
    #[arg(long)]
    simulate: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum PointArg {
    /// pH 7.00 buffer (first: clears the other points).
    Mid,
    /// pH 4.00 buffer.
    Low,
    /// pH 10.00 buffer.
    High,
}

#[derive(Args)]
struct PhCalArgs {
    /// The pH sensor's id.
    #[arg(long)]
    sensor: String,
    /// Which buffer the probe is in.
    #[arg(long, value_enum, required_unless_present_any = ["clear", "status"])]
    point: Option<PointArg>,
    /// The buffer's pH [default: 7.00, 4.00 or 10.00 by point].
    #[arg(long)]
    value: Option<f64>,
    /// Clear the calibration.
    #[arg(long, conflicts_with_all = ["point", "status"])]
    clear: bool,
    /// Show the calibration state and history.
    #[arg(long, conflicts_with = "point")]
    status: bool,
    /// Talk to the simulated probe.
    #[arg(long)]
    simulate: bool,
}

#[derive(Args)]
struct ProbeArgs {
    /// Probe the simulated buses instead.
    #[arg(long)]
    simulate: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Run every sensor on simulated buses with simulated weather.
    #[arg(long)]
    simulate: bool,
    /// Clock speed for simulated runs: a factor (60 = a minute per second) or `max`.
    #[arg(long, value_name = "N|max")]
    speed: Option<String>,
    /// Stop after this much station time, e.g. `24h`, then flush and exit.
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
    /// Seed of the simulated weather.
    #[arg(long)]
    seed: Option<u64>,
    /// Station time to start an accelerated run at (RFC 3339 or YYYY-MM-DD)
    /// [default: the start of the current UTC day].
    #[arg(long, value_name = "TIME")]
    start: Option<String>,
}

#[derive(Args)]
struct ReadArgs {
    /// Print one JSON array of readings.
    #[arg(long)]
    json: bool,
    /// Read simulated sensors.
    #[arg(long)]
    simulate: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the commented example config (or write it with --output).
    Init {
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Json,
    Ndjson,
}

#[derive(Clone, Copy, ValueEnum)]
enum ResolutionArg {
    Raw,
    Minute,
    Hour,
    Day,
}

#[derive(Args)]
struct ExportArgs {
    /// Start (RFC 3339 or YYYY-MM-DD, UTC), inclusive.
    #[arg(long)]
    from: Option<String>,
    /// End (RFC 3339 or YYYY-MM-DD, UTC), exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Only this sensor id.
    #[arg(long)]
    sensor: Option<String>,
    /// Only this quantity (e.g. air_temperature).
    #[arg(long)]
    quantity: Option<String>,
    /// Raw readings or aggregates.
    #[arg(long, value_enum, default_value_t = ResolutionArg::Raw)]
    resolution: ResolutionArg,
    /// Write to this file instead of standard output (never the database itself).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite the --output file if it exists.
    #[arg(long, requires = "output")]
    force: bool,
}

#[derive(Args)]
struct StatsArgs {
    /// Local day (YYYY-MM-DD) [default: the latest day with data].
    #[arg(long)]
    day: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rumqttd=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The config in force and where it came from.
fn load_config(cli: &Cli) -> Result<(Config, String)> {
    let path = match &cli.config {
        Some(p) => Some(p.clone()),
        None => {
            let default = Path::new(config::DEFAULT_PATH);
            default.exists().then(|| default.to_path_buf())
        }
    };
    let mut config = match &path {
        Some(p) => Config::load(p)?,
        None => Config::builtin(),
    };
    if let Some(db) = &cli.db {
        config.storage.path = db.clone();
    }
    let origin = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the built-in simulated station (no config file)".into());
    Ok((config, origin))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One runtime thread for everything async (the station's work is a few readings a second
/// and cross-thread wake-ups were most of its CPU: bench/README.md), and a small blocking
/// pool for bus I/O and SQLite commits. Fewer threads also means fewer malloc arenas and
/// stacks in the resident set.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(60))
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn dispatch(cli: Cli) -> Result<std::process::ExitCode> {
    match &cli.command {
        Command::Validate => validate(&cli),
        Command::Config(ConfigCommand::Init { output, force }) => {
            config_init(output.as_deref(), *force)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            run(&cli, args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Read(args) => {
            read(&cli, args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Export(args) => {
            export(&cli, args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Stats(args) => {
            stats(&cli, args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Mqtt(MqttCommand::Check) => {
            let (config, _) = load_config(&cli)?;
            let rt = runtime()?;
            let report = rt.block_on(anemone::mqtt::check(&config));
            print!("{}", anemone::mqtt::render(&report));
            Ok(if report.ok() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Calibrate(CalibrateCommand::Ph(args)) => {
            calibrate_ph(&cli, args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Calibrate(
            CalibrateCommand::Ec(args)
            | CalibrateCommand::Do(args)
            | CalibrateCommand::Orp(args)
            | CalibrateCommand::Co2(args),
        ) => {
            calibrate_circuit(&cli, args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Probe(args) => {
            let (mut config, _) = load_config(&cli)?;
            if args.simulate {
                config.hal.simulate = true;
            }
            let clock = Clock::real();
            let hal = anemone::sensors::open_hal(&config, &clock, clock.now());
            let report = anemone::probe::probe(&config, &hal);
            print!("{}", anemone::probe::render(&report));
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn validate(cli: &Cli) -> Result<std::process::ExitCode> {
    let path = match &cli.config {
        Some(p) => p.clone(),
        None => PathBuf::from(config::DEFAULT_PATH),
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: pass the file with --config PATH",
            path.display()
        )
    })?;
    let (config, problems) = config::validate_text(&text);
    let warnings = config
        .map(|c| config::warnings(&c, Some(&path)))
        .unwrap_or_default();
    if problems.is_empty() {
        println!("{}: OK", path.display());
    } else {
        println!("{}: {} problem(s)", path.display(), problems.len());
        for p in &problems {
            println!("  - {p}");
        }
    }
    for w in &warnings {
        println!("  warning: {w}");
    }
    Ok(if problems.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// Logs what `validate` warns about, at every start of `run`.
fn log_warnings(config: &Config, file: Option<&Path>) {
    for w in config::warnings(config, file) {
        tracing::warn!(key = %w.key, "Config warning: {}.", w.message);
    }
}

fn config_init(output: Option<&Path>, force: bool) -> Result<()> {
    match output {
        None => {
            std::io::stdout().write_all(config::EXAMPLE.as_bytes())?;
        }
        Some(path) => {
            if path.exists() && !force {
                bail!(
                    "{} exists already: pass --force to overwrite it",
                    path.display()
                );
            }
            std::fs::write(path, config::EXAMPLE)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "Wrote {}; edit it, then check it with `anemone validate --config {}`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(())
}

fn parse_time(text: &str, what: &str) -> Result<Timestamp> {
    parse_ts(text).with_context(|| format!("{what} `{text}` is not a time: use RFC 3339 (2026-05-01T12:00:00Z) or a date (2026-05-01)"))
}

fn run(cli: &Cli, args: &RunArgs) -> Result<()> {
    let (mut config, origin) = load_config(cli)?;
    if args.simulate {
        config.hal.simulate = true;
    }
    if let Some(seed) = args.seed {
        config.hal.seed = seed;
    }
    let duration_ms = match &args.duration {
        Some(d) => Some(
            parse_span(d)
                .map_err(anyhow::Error::msg)
                .context("--duration")?
                .as_millis_i64(),
        ),
        None => None,
    };
    let speed = args.speed.as_deref().unwrap_or("1");
    if speed != "1" && !config.hal.simulate {
        bail!("--speed only makes sense for a simulated station: add --simulate");
    }
    let start = args
        .start
        .as_deref()
        .map(|s| parse_time(s, "--start"))
        .transpose()?;
    let clock = Clock::for_run(speed, start, duration_ms.is_some())?;
    tracing::info!(config = %origin, "Using {origin}");
    log_warnings(
        &config,
        cli.config.as_deref().or_else(|| {
            let default = Path::new(config::DEFAULT_PATH);
            default.exists().then_some(default)
        }),
    );
    let db_path = config.storage.path.clone();
    let config = Arc::new(config);
    let rt = runtime()?;
    let summary = rt.block_on(async move {
        let opts = RunOptions {
            clock,
            duration_ms,
            db_path,
            live: None,
            writer_handle: None,
            progress: None,
        };
        station::run(config, opts, station::shutdown_signal()).await
    })?;
    eprintln!(
        "Stored {} readings in {} commits ({} simulated h).",
        summary.committed,
        summary.commits,
        (summary.ended - summary.started) as f64 / 3_600_000.0
    );
    Ok(())
}

fn read(cli: &Cli, args: &ReadArgs) -> Result<()> {
    let (mut config, _) = load_config(cli)?;
    if args.simulate {
        config.hal.simulate = true;
    }
    let clock = if config.hal.simulate {
        Clock::virtual_at(system_now())
    } else {
        Clock::real()
    };
    let precision = config.precision();
    let config = Arc::new(config);
    let rt = runtime()?;
    let readings = rt.block_on(station::read_once(config, clock, 1_000));
    if args.json {
        let arr: Vec<_> = readings.iter().map(|r| r.json_in(&precision)).collect();
        println!("{}", serde_json::to_string_pretty(&arr)?);
    } else {
        println!(
            "{:<12} {:<20} {:>10} {:<6} flags",
            "sensor", "quantity", "value", "unit"
        );
        for r in &readings {
            let value = r
                .value
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "—".into());
            println!(
                "{:<12} {:<20} {:>10} {:<6} {}",
                &*r.sensor,
                r.quantity.as_str(),
                value,
                r.unit(),
                r.flags
            );
        }
    }
    Ok(())
}

fn open_for_reading(cli: &Cli) -> Result<(Store, Config)> {
    let (config, _) = load_config(cli)?;
    let path = config.storage.path.clone();
    let store = Store::open_read_only(&path, config.station.tz())?;
    Ok((store, config))
}

fn export(cli: &Cli, args: &ExportArgs) -> Result<()> {
    let (store, config) = open_for_reading(cli)?;
    let quantity = match &args.quantity {
        Some(q) => Some(q.parse::<Quantity>()?),
        None => None,
    };
    let opts = report::ExportOptions {
        query: anemone::store::Query {
            from: args
                .from
                .as_deref()
                .map(|t| parse_time(t, "--from"))
                .transpose()?,
            to: args
                .to
                .as_deref()
                .map(|t| parse_time(t, "--to"))
                .transpose()?,
            sensor: args.sensor.clone(),
            quantity,
        },
        format: match args.format {
            Format::Csv => report::Format::Csv,
            Format::Json => report::Format::Json,
            Format::Ndjson => report::Format::Ndjson,
        },
        resolution: match args.resolution {
            ResolutionArg::Raw => Resolution::Raw,
            ResolutionArg::Minute => Resolution::Minute,
            ResolutionArg::Hour => Resolution::Hour,
            ResolutionArg::Day => Resolution::Day,
        },
        precision: config.precision(),
    };
    let progress = std::io::stderr().is_terminal();
    let count = report::export_to(&store, &opts, args.output.as_deref(), args.force, progress)?;
    if args.output.is_some() {
        eprintln!("Exported {count} rows.");
    }
    Ok(())
}

fn stats(cli: &Cli, args: &StatsArgs) -> Result<()> {
    let (store, config) = open_for_reading(cli)?;
    let day = match &args.day {
        Some(d) => Some(
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .with_context(|| format!("--day `{d}` is not a date: use YYYY-MM-DD"))?,
        ),
        None => None,
    };
    if args.json {
        let v = report::stats_json(&store, day, config.station.tz())?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", report::stats(&store, day, config.station.tz())?);
    }
    Ok(())
}

fn calibrate_circuit(cli: &Cli, args: &CircuitCalArgs) -> Result<()> {
    use anemone::calibrate_circuit::{calibrate_circuit, CircuitAction};
    let (mut config, _) = load_config(cli)?;
    if args.simulate {
        config.hal.simulate = true;
    }
    let action = if args.clear {
        CircuitAction::Clear
    } else if args.status {
        CircuitAction::Status
    } else {
        CircuitAction::Step(args.step.clone().unwrap_or_default(), args.value)
    };
    let clock = Clock::real();
    let hal = anemone::sensors::open_hal(&config, &clock, clock.now());
    let mut store = open_store_for_calibration(&config)?;
    let report = calibrate_circuit(&config, &hal, &mut store, &args.sensor, action, clock.now())?;
    println!("{report}");
    Ok(())
}

fn open_store_for_calibration(config: &anemone::config::Config) -> Result<Store> {
    Ok(Store::open(
        &config.storage.path,
        &anemone::store::StoreOptions {
            synchronous: config.storage.synchronous,
            tz: config.station.tz(),
            vfs: None,
        },
    )?)
}

fn calibrate_ph(cli: &Cli, args: &PhCalArgs) -> Result<()> {
    use anemone::calibrate::{calibrate, Action, Point};
    let (mut config, _) = load_config(cli)?;
    if args.simulate {
        config.hal.simulate = true;
    }
    let action = if args.clear {
        Action::Clear
    } else if args.status {
        Action::Status
    } else {
        let (point, default) = match args.point {
            Some(PointArg::Mid) | None => (Point::Mid, 7.0),
            Some(PointArg::Low) => (Point::Low, 4.0),
            Some(PointArg::High) => (Point::High, 10.0),
        };
        let value = args.value.unwrap_or(default);
        if !(0.0..=14.0).contains(&value) {
            bail!("--value {value} is not a pH: use the buffer's pH, e.g. 7.00");
        }
        Action::Point(point, value)
    };
    let clock = Clock::real();
    let hal = anemone::sensors::open_hal(&config, &clock, clock.now());
    let mut store = open_store_for_calibration(&config)?;
    let report = calibrate(&config, &hal, &mut store, &args.sensor, action, clock.now())?;
    println!("{report}");
    Ok(())
}
