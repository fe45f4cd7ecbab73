//! The report side of the CLI: `anemone export` and `anemone stats`.
//!
//! Both read the database through [`Store::open_read_only`](crate::store::Store::open_read_only),
//! so they run beside the daemon and never change the file.

pub mod export;
pub mod stats;

pub use export::{
    export, export_calibrations, export_to, export_what, export_what_to, ExportOptions, Format,
    UnknownFormat, What,
};
pub use stats::{stats, stats_in, stats_json, stats_json_in};

use crate::store::StoreError;

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The output could not be written.
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
    /// Nothing to report.
    #[error("no data: {0}")]
    NoData(String),
    /// `--output` was refused or could not be created.
    #[error(transparent)]
    Output(#[from] export::OutputError),
}
