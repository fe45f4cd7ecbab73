//! `anemone-collector`: MQTT → PostgreSQL for a network of Anemone stations.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anemone_collector::collector::{self, RunError, Stats};
use anemone_collector::config::Config;
use anemone_collector::{db, schema};
use clap::{Parser, Subcommand};

/// Collects the readings of a network of Anemone stations from MQTT into PostgreSQL.
#[derive(Parser)]
#[command(name = "anemone-collector", version, about)]
struct Cli {
    /// The collector's config file.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "/etc/anemone/collector.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Collect until SIGINT/SIGTERM (the default).
    Run,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Compare the chain heads received from the stations with a station's database
    /// (`--db`), or with each other; names the station and the first batch that no longer
    /// matches and exits 1.
    Verify {
        /// A station's database file (a copy, or the file on the station).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// The station [default: the one the database records; without --db, every
        /// station].
        #[arg(long, value_name = "ID")]
        station: Option<String>,
    },
}

/// EX_CONFIG: the config cannot work; a service manager should not restart.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cfg = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("anemone-collector: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anemone-collector: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command.unwrap_or(Cmd::Run) {
            Cmd::Run => {
                let page = network_page(&cfg).await?;
                let result = collector::run(
                    cfg,
                    Arc::new(Stats::default()),
                    anemone::station::shutdown_signal(),
                )
                .await;
                if let Some(page) = page {
                    page.shutdown().await;
                }
                result.map(|()| true)
            }
            Cmd::Migrate => migrate(&cfg).await.map(|()| true),
            Cmd::Verify { db, station } => verify(&cfg, db.as_deref(), station.as_deref()).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e @ RunError::Config(_)) | Err(e @ RunError::Broker(_)) => {
            eprintln!("anemone-collector: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            eprintln!("anemone-collector: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(cfg: &Config) -> Result<(), RunError> {
    let mut client = db::connect(&cfg.postgres.url)
        .await
        .map_err(RunError::Database)?;
    let (before, after) = schema::migrate(&mut client).await?;
    if before == after {
        eprintln!("The schema is up to date (version {after}).");
    } else {
        eprintln!("Migrated the schema from version {before} to {after}.");
    }
    Ok(())
}

/// Prints one line per station; false when one does not match.
async fn verify(
    cfg: &Config,
    db: Option<&std::path::Path>,
    station: Option<&str>,
) -> Result<bool, RunError> {
    let client = db::connect(&cfg.postgres.url)
        .await
        .map_err(RunError::Database)?;
    let verdicts = match anemone_collector::verify::run(&client, db, station).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("anemone-collector: verify: {e}");
            return Ok(false);
        }
    };
    if verdicts.is_empty() {
        println!("No chain heads received yet.");
    }
    for v in &verdicts {
        println!("{v}");
    }
    Ok(verdicts.iter().all(|v| v.ok()))
}

/// Starts the network page when `[web]` is set and enabled.
async fn network_page(cfg: &Config) -> Result<Option<anemone::web::WebServer>, RunError> {
    let Some(web) = cfg.web.as_ref().filter(|w| w.enabled) else {
        return Ok(None);
    };
    let client = db::connect(&cfg.postgres.url)
        .await
        .map_err(RunError::Database)?;
    let source = anemone_collector::pgsource::PgSource::new(client);
    match anemone_collector::web::start(web, source).await {
        Ok(server) => {
            tracing::info!(addr = %server.local_addr(), "Network page: {}", server.url());
            Ok(Some(server))
        }
        Err(e) => Err(RunError::Config(
            anemone_collector::config::ConfigError::Invalid {
                path: "[web]".into(),
                message: e.to_string(),
            },
        )),
    }
}
