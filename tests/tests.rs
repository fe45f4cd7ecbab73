//! Integration tests: one binary, one module per area.

mod calibration;
mod chain;
mod cli;
mod common;
mod conventions;
mod faults;
mod gps;
mod hat;
mod import;
mod mqtt;
mod powercut;
mod readme;
mod reef;
mod report;
mod science;
mod station;
mod store;
mod web;
