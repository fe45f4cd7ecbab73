//! Integration tests: one binary, one module per area.

mod cli;
mod common;
mod report;
mod station;
mod store;
