//! Integration tests: one binary, one module per area.

mod cli;
mod common;
mod station;
mod store;
