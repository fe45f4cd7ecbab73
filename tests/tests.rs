//! Integration tests: one binary, one module per area.

mod cli;
mod common;
mod faults;
mod mqtt;
mod powercut;
mod report;
mod science;
mod station;
mod store;
mod web;
