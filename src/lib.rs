//! Anemone: weather and ocean sensor station firmware and logger for the Raspberry Pi.
//!
//! Data flows one way: HAL → sensor kind → pipeline → sinks (store, MQTT).
//!
//! * [`hal`]: the buses (real or simulated); the only module that touches `/dev`/`/sys`.
//! * [`sensors`]: one module per sensor kind, sampled on the station clock.
//! * [`pipeline`]: QC and derived quantities.
//! * [`store`]: SQLite, the source of truth and the MQTT outbox.
//! * [`clock`]: the one source of station time.

#![deny(unsafe_code)]

pub mod calibrate;
pub mod clock;
pub mod config;
pub mod duration;
pub mod hal;
pub mod latest;
pub mod mqtt;
pub mod notify;
pub mod pipeline;
pub mod probe;
pub mod reading;
pub mod report;
pub mod sensors;
pub mod station;
pub mod store;
pub mod topics;
