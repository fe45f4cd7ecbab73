//! Anemone: weather and ocean sensor station firmware and logger for the Raspberry Pi.
//!
//! Data flows one way: HAL → sensor kind → pipeline → store → (MQTT publisher).
//!
//! * [`hal`]: the buses (real or simulated); the only module that touches `/dev`/`/sys`.
//! * [`sensors`]: one module per sensor kind, sampled on the station clock.
//! * [`pipeline`]: its own task: clock safety, QC and derived quantities, on to the store
//!   writer's queue.
//! * [`store`]: SQLite, the source of truth and the MQTT outbox.
//! * [`mqtt`]: our MQTT client, the publisher, discovery and the embedded broker.
//! * [`reading`]: the `Reading` model and its one serialisation (export, `read --json`,
//!   MQTT).
//! * [`report`]: `export` and `stats`, read-only beside the daemon.
//! * [`station`]: wires the tasks together for `run`.
//! * [`clock`]: the one source of station time.
//! * [`units`]: the one table for showing values in imperial units.
//! * [`logging`]: log lines on standard error, with journald priorities under systemd.
//! * [`web`]: the station's own web page and JSON API, read-only.

#![deny(unsafe_code)]

pub mod calibrate;
pub mod calibrate_analog;
pub mod calibrate_circuit;
pub mod calibrate_correction;
pub mod clock;
pub mod config;
pub mod correction;
pub mod duration;
pub mod hal;
pub mod import;
pub mod latest;
pub mod logging;
pub mod mqtt;
pub mod notify;
pub mod pipeline;
pub mod power;
pub mod probe;
pub mod reading;
pub mod report;
pub mod sensors;
pub mod signing;
pub mod station;
pub mod store;
pub mod topics;
pub mod units;
pub mod web;
