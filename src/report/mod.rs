//! The report side of the CLI: `anemone export` and `anemone stats` (being written).
#![allow(missing_docs, unused)]
use crate::store::*; use crate::reading::*;
#[derive(Debug, thiserror::Error)] pub enum ReportError { #[error("x")] X }
pub enum ExportFormat { Csv, Json, Ndjson }
pub struct ExportOptions { pub from: Option<Timestamp>, pub to: Option<Timestamp>, pub sensor: Option<String>, pub quantity: Option<Quantity>, pub format: ExportFormat, pub resolution: Resolution }
pub fn export(store: &Store, opts: &ExportOptions, out: &mut dyn std::io::Write, progress: bool) -> Result<u64, ReportError> { todo!() }
pub fn stats(store: &Store, day: Option<chrono::NaiveDate>, tz: chrono_tz::Tz) -> Result<String, ReportError> { todo!() }
pub fn stats_json(store: &Store, day: Option<chrono::NaiveDate>, tz: chrono_tz::Tz) -> Result<serde_json::Value, ReportError> { todo!() }
