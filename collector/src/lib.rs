//! `anemone-collector`: the readings of a network of Anemone stations, from MQTT into
//! PostgreSQL, with nothing lost and nothing stored twice.
//!
//! * [`config`]: the collector's TOML config.
//! * [`message`]: what a station's message means (reading, status, meta, state) or why it is
//!   a dead letter; the field names are the station library's.
//! * [`mqtt`]: the subscription (persistent session, QoS 1, manual acknowledgements).
//! * [`db`]: one transaction per batch (binary `COPY`, insert that ignores duplicates,
//!   stations, dead letters, rollups).
//! * [`schema`]: the versioned migrations.
//! * [`collector`]: the run that ties them together.
//! * [`verify`]: the stations' published chain heads against their databases.
//! * [`testkit`]: a PostgreSQL cluster and a Mosquitto of a test's own, for this crate's
//!   tests and the benchmarks.

#![deny(unsafe_code)]

pub mod collector;
pub mod config;
pub mod db;
pub mod message;
pub mod mqtt;
pub mod pgsource;
pub mod schema;
pub mod testkit;
pub mod verify;
pub mod web;
