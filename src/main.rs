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
    /// Config file; `--config` wins over the ANEMONE_CONFIG environment variable
    /// [default: /etc/anemone/anemone.toml if it exists, else the built-in simulated
    /// station].
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
    /// Check a config file and print every problem with its key and the fix; exits 78
    /// (EX_CONFIG) when there is one.
    Validate(ValidateArgs),
    /// Config helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Export stored readings or aggregates.
    Export(ExportArgs),
    /// Daily summary: min and max with their times, mean, rain total, max gust.
    Stats(StatsArgs),
    /// Check the tamper-evident chain of the database: names the first commit batch
    /// changed, deleted, inserted or reordered after it was written; exits 1 if one was.
    Verify(VerifyArgs),
    /// Create the station's Ed25519 signing key (mode 0600) at `[station] signing_key`
    /// or `--out`, and print its public key; never replaces an existing key.
    Keygen(KeygenArgs),
    /// Find the sensors wired to this Pi and print a config snippet for them.
    Probe(ProbeArgs),
    /// Calibrate a probe and record the calibration in the database.
    #[command(subcommand)]
    Calibrate(CalibrateCommand),
    /// MQTT helpers.
    #[command(subcommand)]
    Mqtt(MqttCommand),
    /// Write the man page or a shell completion script (used to build the packages).
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
    /// Bring an Oracle Weather Station's history (its WEATHER_MEASUREMENT table) into
    /// the database, from a MariaDB/MySQL server or a mysqldump file. Stop the station
    /// first; a second import of the same rows adds nothing.
    Import(ImportArgs),
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("origin").required(true).args(["from", "from_dump"]))]
struct ImportArgs {
    /// The server: mysql://USER@HOST[:PORT]/DATABASE (read through the `mariadb` or
    /// `mysql` client program).
    #[arg(long)]
    from: Option<String>,
    /// A mysqldump file of the weather station's database.
    #[arg(long, value_name = "FILE")]
    from_dump: Option<PathBuf>,
    /// A file whose first line is the server password (never give it on the command line).
    #[arg(
        long,
        value_name = "FILE",
        requires = "from",
        conflicts_with = "ask_password"
    )]
    password_file: Option<PathBuf>,
    /// Let the client program ask for the server password on the terminal.
    #[arg(long, requires = "from")]
    ask_password: bool,
    /// The sensor the history is stored under.
    #[arg(long, default_value = "oracle-import")]
    sensor: String,
    /// The source's name in the database (rows are remembered per source)
    /// [default: the database's name].
    #[arg(long)]
    source: Option<String>,
    /// The zone of local times in the source [default: the config's [station] timezone].
    #[arg(long)]
    timezone: Option<String>,
    /// Source rows per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
}

#[derive(Subcommand)]
enum GenerateCommand {
    /// The man page anemone(1), in roff, to standard output.
    Man,
    /// The completion script for a shell, to standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct ValidateArgs {
    /// Print one JSON document instead of text (see the README's "Command line").
    #[arg(long)]
    json: bool,
    /// Do not check that the files the config names (password_file, ca_file,
    /// client_cert, client_key) can be read: for a config written for another machine.
    #[arg(long)]
    skip_files: bool,
}

#[derive(Args)]
struct JsonArg {
    /// Print one JSON document instead of text (see the README's "Command line").
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum MqttCommand {
    /// Connect with the configured settings and report DNS, TCP, TLS, auth and publish
    /// permission step by step; exits 1 when a step fails (78 when the settings cannot be
    /// used: a file the config names cannot be read).
    Check(JsonArg),
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
    /// Analog sensor (type = "analog"): two-point calibration in standards, `--step first`
    /// then `--step second`, each with `--value` (the standard's value in the quantity's unit).
    Analog(CircuitCalArgs),
    /// Any sensor quantity: record a correction (offset, scale or polynomial, or one or
    /// two `--point RAW=REFERENCE` readings beside a reference); the station applies it
    /// from its next start, before QC.
    Correction(CorrectionCalArgs),
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true)
    .args(["offset", "scale", "polynomial", "point", "clear", "status"]))]
struct CorrectionCalArgs {
    /// The sensor's id.
    #[arg(long)]
    sensor: String,
    /// The quantity to correct, e.g. air_temperature or rain (all of them for --status).
    #[arg(long, required_unless_present = "status")]
    quantity: Option<String>,
    /// Added after scaling, in the quantity's unit: `--offset -1.2`.
    #[arg(long, allow_hyphen_values = true)]
    offset: Option<f64>,
    /// Multiplies the raw value: `--scale 1.05` for a rain gauge that tips 5 % light.
    #[arg(long, allow_hyphen_values = true)]
    scale: Option<f64>,
    /// Coefficients from the constant term up, comma-separated (at most a cubic):
    /// `--polynomial 0.3,1.02,0.0004`.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, conflicts_with_all = ["offset", "scale", "point"])]
    polynomial: Option<Vec<f64>>,
    /// The raw values a polynomial of degree 2 or 3 was fitted over: `--range -20,45`.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        requires = "polynomial"
    )]
    range: Option<Vec<f64>>,
    /// RAW=REFERENCE: the sensor's value beside a reference instrument's. Once: an
    /// offset; twice (at two levels): a scale and offset.
    #[arg(long, value_name = "RAW=REFERENCE", allow_hyphen_values = true, conflicts_with_all = ["offset", "scale"])]
    point: Vec<String>,
    /// Record that the quantity is no longer corrected.
    #[arg(long, conflicts_with_all = ["offset", "scale", "polynomial", "point", "status"])]
    clear: bool,
    /// Show the corrections recorded and the ranges of readings they produced.
    #[arg(long, conflicts_with_all = ["offset", "scale", "polynomial", "point"])]
    status: bool,
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
    /// Print one JSON document (findings and the config snippet) instead of text.
    #[arg(long)]
    json: bool,
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
    /// Units of the values written; the `unit` field names them (the database keeps SI).
    #[arg(long, value_enum, default_value_t = UnitsArg::Metric)]
    units: UnitsArg,
    /// Add `calibration` (the id of the correction that produced each stored value, empty
    /// when none did) and `uncorrected` (the value the sensor sent) to raw readings.
    #[arg(long)]
    with_calibration: bool,
    /// Export the calibration records (corrections, the ranges of readings they produced,
    /// pH and EZO calibrations) instead of readings.
    #[arg(long, conflicts_with_all = ["with_calibration", "resolution", "units"])]
    calibrations: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum UnitsArg {
    /// As stored: °C, hPa, m/s, mm, mm/h.
    Metric,
    /// °F, inHg, mph, in, in/h (%, °, pH stay as they are).
    Imperial,
}

impl From<UnitsArg> for anemone::units::UnitSystem {
    fn from(u: UnitsArg) -> Self {
        match u {
            UnitsArg::Metric => anemone::units::UnitSystem::Metric,
            UnitsArg::Imperial => anemone::units::UnitSystem::Imperial,
        }
    }
}

#[derive(Args)]
struct StatsArgs {
    /// Local day (YYYY-MM-DD) [default: the latest day with data].
    #[arg(long)]
    day: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Units to show values in (the database keeps SI).
    #[arg(long, value_enum, default_value_t = UnitsArg::Metric)]
    units: UnitsArg,
}

#[derive(Args)]
struct KeygenArgs {
    /// The key file to write (default: the config's `[station] signing_key`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the public key of the existing key file instead of creating one.
    #[arg(long)]
    show: bool,
}

#[derive(Args)]
struct VerifyArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn init_logging(format: LogFormat) {
    anemone::logging::init(match format {
        LogFormat::Text => anemone::logging::Format::Text,
        LogFormat::Json => anemone::logging::Format::Json,
    });
}

/// Writes to standard output. A reader that went away (`anemone read | head`) ends the
/// output quietly, as other Unix tools do, instead of a panic.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// A JSON document, pretty, with its final newline.
fn json_doc(v: &impl serde::Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
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
        Some(p) => Config::load(p).map_err(explain_unreadable)?,
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

/// EX_CONFIG (sysexits.h): the config cannot run. The unit's `RestartPreventExitStatus=78`
/// keeps systemd from restarting a station that would only fail again.
const EX_CONFIG: u8 = 78;

/// Adds the fix to "permission denied" on a config file: the packaged one is readable by
/// root and the service only (it may hold the MQTT password).
fn explain_unreadable(e: config::ConfigError) -> anyhow::Error {
    let denied = matches!(&e, config::ConfigError::Read { error, .. }
        if error.kind() == std::io::ErrorKind::PermissionDenied);
    if denied {
        anyhow::Error::new(e).context(
            "the config is not readable by you: run the command with sudo, or make your own \
             (`anemone config init --output ~/anemone.toml`) and pass it with --config or \
             ANEMONE_CONFIG",
        )
    } else {
        e.into()
    }
}

/// True when `e` says the config cannot run (not readable, not valid, a file it names is
/// missing): exit [`EX_CONFIG`].
fn is_config_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<config::ConfigError>())
}

/// glibc gives every thread that allocates its own malloc arena (up to 8 per core), and
/// the blocking pool's threads take turns with the store, so each arena ends up holding
/// fragments of SQLite's page caches and of reading batches: 0.25–0.8 MB of resident memory
/// per thread on a max-speed day (bench/README.md, "Peak RSS"). One arena serves the
/// station's few allocations a second; the runtime thread and a commit rarely contend.
/// `MALLOC_ARENA_MAX` in the environment still wins (glibc reads it before `main`, and we
/// leave it alone when it is set).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it is called first thing in
        // `main`, before any other thread exists, and its result (0 on failure) only means
        // the default stays in force.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let mut cli = Cli::parse();
    if cli.config.is_none() {
        // Set but empty counts as not set (`ANEMONE_CONFIG= anemone …`).
        cli.config = std::env::var_os("ANEMONE_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
    }
    init_logging(cli.log_format);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            anemone::logging::print_error(&format!("error: {e:#}"));
            if is_config_error(&e) {
                std::process::ExitCode::from(EX_CONFIG)
            } else {
                std::process::ExitCode::FAILURE
            }
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
        Command::Validate(args) => validate(&cli, args),
        Command::Generate(what) => {
            generate(what)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
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
        Command::Import(args) => {
            let report = import(&cli, args)?;
            print!("{report}");
            Ok(if report.complete() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Stats(args) => {
            stats(&cli, args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Verify(args) => verify(&cli, args),
        Command::Keygen(args) => {
            keygen(&cli, args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Mqtt(MqttCommand::Check(args)) => {
            let (config, _) = load_config(&cli)?;
            let rt = runtime()?;
            let report = rt.block_on(anemone::mqtt::check(&config));
            if args.json {
                emit(&json_doc(&report.json())?)?;
            } else {
                emit(&anemone::mqtt::render(&report))?;
            }
            // The `settings` step fails on what the config names but cannot be used (a
            // password file or certificate that cannot be read): a config that cannot run.
            Ok(match report.failed_step().map(|s| s.name) {
                None => std::process::ExitCode::SUCCESS,
                Some("settings") => std::process::ExitCode::from(EX_CONFIG),
                Some(_) => std::process::ExitCode::FAILURE,
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
            calibrate_circuit(&cli, args, false)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Calibrate(CalibrateCommand::Analog(args)) => {
            calibrate_circuit(&cli, args, true)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Calibrate(CalibrateCommand::Correction(args)) => {
            calibrate_correction(&cli, args)?;
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
            if args.json {
                emit(&json_doc(&report.json())?)?;
            } else {
                emit(&anemone::probe::render(&report))?;
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn validate(cli: &Cli, args: &ValidateArgs) -> Result<std::process::ExitCode> {
    let path = match &cli.config {
        Some(p) => p.clone(),
        None => PathBuf::from(config::DEFAULT_PATH),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|error| config::ConfigError::Read {
            path: path.clone(),
            error,
        })
        .map_err(explain_unreadable)
        .context("cannot check the config (pass the file with --config PATH or ANEMONE_CONFIG)")?;
    let (config, mut problems) = config::validate_text(&text);
    if let (Some(c), false) = (&config, args.skip_files) {
        problems.extend(config::file_problems(c));
    }
    let warnings = config
        .map(|c| config::warnings(&c, Some(&path)))
        .unwrap_or_default();
    if args.json {
        let list = |ps: &[config::Problem]| -> Vec<serde_json::Value> {
            ps.iter()
                .map(|p| serde_json::json!({ "key": p.key, "message": p.message }))
                .collect()
        };
        let doc = serde_json::json!({
            "file": path.display().to_string(),
            "ok": problems.is_empty(),
            "problems": list(&problems),
            "warnings": list(&warnings),
        });
        emit(&json_doc(&doc)?)?;
    } else {
        let mut text = if problems.is_empty() {
            format!("{}: OK\n", path.display())
        } else {
            format!("{}: {} problem(s)\n", path.display(), problems.len())
        };
        for p in &problems {
            text += &format!("  - {p}\n");
        }
        for w in &warnings {
            text += &format!("  warning: {w}\n");
        }
        emit(&text)?;
    }
    Ok(if problems.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(EX_CONFIG)
    })
}

/// The man page's sections that `--help` has no place for (roff): environment, exit
/// status, files.
const MAN_EXTRA: &str = include_str!("../packaging/anemone.1.extra");

/// `anemone generate`: the man page and completion scripts, from the same definition
/// `--help` prints, so they cannot drift from the program.
fn generate(what: &GenerateCommand) -> Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    match what {
        GenerateCommand::Man => {
            clap_mangen::Man::new(cmd).render(&mut out)?;
            out.write_all(MAN_EXTRA.as_bytes())?;
        }
        GenerateCommand::Completions { shell } => {
            clap_complete::generate(*shell, &mut cmd, "anemone", &mut out)
        }
    }
    out.flush()?;
    Ok(())
}

/// Logs what `validate` warns about, at every start of `run`.
fn log_warnings(config: &Config, file: Option<&Path>) {
    for w in config::warnings(config, file) {
        tracing::warn!(key = %w.key, "Config warning: {}.", w.message);
    }
}

fn config_init(output: Option<&Path>, force: bool) -> Result<()> {
    match output {
        None => emit(config::EXAMPLE)?,
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
    let problems = config::file_problems(&config);
    if !problems.is_empty() {
        return Err(config::ConfigError::Invalid {
            path: origin,
            problems,
        }
        .into());
    }
    let clock = Clock::for_run(speed, start, duration_ms.is_some())?;
    let simulated_time = !clock.is_real();
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
    let wall = std::time::Instant::now();
    let summary = rt.block_on(async move {
        let opts = RunOptions {
            clock,
            duration_ms,
            db_path,
            live: None,
            writer_handle: None,
            progress: None,
            web_addr: None,
        };
        station::run(config, opts, station::shutdown_signal()).await
    })?;
    eprintln!("{}", summary.describe(simulated_time, wall.elapsed()));
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
        emit(&json_doc(&arr)?)?;
    } else {
        let mut text = format!(
            "{:<12} {:<20} {:>10} {:<6} flags\n",
            "sensor", "quantity", "value", "unit"
        );
        for r in &readings {
            let value = r
                .value
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "—".into());
            text += &format!(
                "{:<12} {:<20} {:>10} {:<6} {}\n",
                &*r.sensor,
                r.quantity.as_str(),
                value,
                r.unit(),
                r.flags
            );
        }
        emit(&text)?;
    }
    Ok(())
}

/// The store read-write, as the config says (for the edge commands that write).
fn open_for_writing(config: &Config) -> Result<Store> {
    Ok(Store::open(
        &config.storage.path,
        &anemone::store::StoreOptions {
            synchronous: config.storage.synchronous,
            tz: config.station.tz(),
            vfs: None,
        },
    )?)
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
        units: args.units.into(),
    };
    let progress = std::io::stderr().is_terminal();
    let what = if args.calibrations {
        report::What::Calibrations
    } else if args.with_calibration {
        report::What::DataWithCalibration
    } else {
        report::What::Data
    };
    let count = report::export_what_to(
        &store,
        &opts,
        what,
        args.output.as_deref(),
        args.force,
        progress,
    )?;
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
        let v = report::stats_json_in(&store, day, config.station.tz(), args.units.into())?;
        emit(&json_doc(&v)?)?;
    } else {
        emit(&report::stats_in(
            &store,
            day,
            config.station.tz(),
            args.units.into(),
        )?)?;
    }
    Ok(())
}

fn keygen(cli: &Cli, args: &KeygenArgs) -> Result<()> {
    use anemone::signing::StationKey;
    let path = match &args.out {
        Some(p) => p.clone(),
        None => {
            let (config, _) = load_config(cli)?;
            config.station.signing_key.ok_or_else(|| {
                anyhow::anyhow!("no key file: set `[station] signing_key = \"/var/lib/anemone/chain.key\"` in the config or give --out FILE")
            })?
        }
    };
    if args.show {
        let key = StationKey::load(&path)?;
        emit(&format!("{}\n", key.public_key_hex()))?;
    } else {
        let key = StationKey::generate(&path)?;
        emit(&format!(
            "created {} (mode 0600)\npublic key: {}\n",
            path.display(),
            key.public_key_hex()
        ))?;
    }
    Ok(())
}

fn verify(cli: &Cli, args: &VerifyArgs) -> Result<std::process::ExitCode> {
    let (store, _) = open_for_reading(cli)?;
    let report = store.verify_chain()?;
    if args.json {
        emit(&json_doc(&report.to_json(store.path()))?)?;
    } else {
        emit(&format!("{}: {report}\n", store.path().display()))?;
    }
    Ok(if report.tampered.is_none() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn import(cli: &Cli, args: &ImportArgs) -> Result<anemone::import::ImportReport> {
    use anemone::import::{self, server, ImportOptions};
    let (config, _) = load_config(cli)?;
    let tz = match &args.timezone {
        Some(z) => z.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!("--timezone `{z}` is not an IANA zone: use e.g. Europe/London")
        })?,
        None => config.station.tz(),
    };
    let opts = ImportOptions {
        sensor: args.sensor.clone(),
        source: args.source.clone(),
        tz,
        batch: args.batch as usize,
    };
    station_stopped()?;
    let mut store = open_for_writing(&config)?;
    let report = match (&args.from, &args.from_dump) {
        (Some(url), _) => {
            let url: server::ServerUrl = url.parse()?;
            let password = match (&args.password_file, args.ask_password) {
                (Some(f), _) => server::Password::File(f.clone()),
                (None, true) => server::Password::Prompt,
                (None, false) => server::Password::None,
            };
            import::from_server(&mut store, &url, &password, &opts)?
        }
        (None, Some(path)) => import::from_dump(&mut store, path, &opts)?,
        (None, None) => bail!("give --from mysql://USER@HOST/DATABASE or --from-dump FILE"),
    };
    Ok(report)
}

/// Refuses to import while the packaged station runs: the database has one writer, which
/// reserves reading ids ahead of its commits.
fn station_stopped() -> Result<()> {
    if !Path::new("/run/systemd/system").is_dir() {
        return Ok(());
    }
    let active = std::process::Command::new("systemctl")
        .args(["is-active", "--quiet", "anemone.service"])
        .status()
        .is_ok_and(|s| s.success());
    if active {
        bail!("the station is running (anemone.service): stop it first with `sudo systemctl stop anemone`, import, then `sudo systemctl start anemone`");
    }
    Ok(())
}

/// `analog`: the analog kind's two-point calibration rather than a circuit's.
fn calibrate_circuit(cli: &Cli, args: &CircuitCalArgs, analog: bool) -> Result<()> {
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
    let mut store = open_for_writing(&config)?;
    let calibrate = if analog {
        anemone::calibrate_analog::calibrate_analog
    } else {
        calibrate_circuit
    };
    let report = calibrate(&config, &hal, &mut store, &args.sensor, action, clock.now())?;
    println!("{report}");
    Ok(())
}

fn calibrate_correction(cli: &Cli, args: &CorrectionCalArgs) -> Result<()> {
    use anemone::calibrate_correction::{calibrate_correction, CorrectionAction};
    use anemone::correction::CorrectionSpec;
    let (config, _) = load_config(cli)?;
    let quantity = args
        .quantity
        .as_deref()
        .map(|q| q.parse::<Quantity>())
        .transpose()?;
    let action = if args.status {
        CorrectionAction::Status
    } else if args.clear {
        CorrectionAction::Clear
    } else if !args.point.is_empty() {
        let mut points = Vec::new();
        for p in &args.point {
            let parsed = p.split_once('=').and_then(|(raw, reference)| {
                Some((
                    raw.trim().parse::<f64>().ok()?,
                    reference.trim().parse::<f64>().ok()?,
                ))
            });
            match parsed {
                Some(pair) => points.push(pair),
                None => bail!("--point {p}: write the sensor's value, `=`, then the reference's, e.g. --point 21.7=20.5"),
            }
        }
        CorrectionAction::Points(points)
    } else {
        let range = match args.range.as_deref() {
            None => None,
            Some([lo, hi]) => Some([*lo, *hi]),
            Some(other) => bail!(
                "--range takes two numbers, low and high (e.g. --range -20,45), not {}",
                other.len()
            ),
        };
        CorrectionAction::Set(CorrectionSpec {
            offset: args.offset,
            scale: args.scale,
            polynomial: args.polynomial.clone(),
            range,
        })
    };
    let mut store = open_for_writing(&config)?;
    let report = calibrate_correction(
        &config,
        &mut store,
        &args.sensor,
        quantity,
        action,
        Clock::real().now(),
    )?;
    emit(&format!("{report}\n"))?;
    Ok(())
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
    let mut store = open_for_writing(&config)?;
    let report = calibrate(&config, &hal, &mut store, &args.sensor, action, clock.now())?;
    emit(&format!("{report}\n"))?;
    Ok(())
}
