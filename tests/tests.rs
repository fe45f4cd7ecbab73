//! Integration tests: one binary, one module per area.

mod cli;
mod common;
mod faults;
mod gps;
mod hat;
mod mqtt;
mod powercut;
mod report;
mod science;
mod station;
mod store;
