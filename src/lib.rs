//! Anemone: weather and ocean sensor station firmware and logger for the Raspberry Pi.
//!
//! Data flows one way: HAL → source → pipeline → sinks (store, MQTT).

#![deny(unsafe_code)]

pub mod clock;
pub mod config;
pub mod hal;
pub mod mqtt;
pub mod reading;
