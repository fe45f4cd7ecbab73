//! # anemone-drivers
//!
//! `no_std` drivers and instrument logic for the Anemone weather and ocean station, on
//! [embedded-hal 1.0](https://docs.rs/embedded-hal/1) only.
//!
//! | Module | Chip / instrument | Bus | Datasheet |
//! |---|---|---|---|
//! | [`pulse`], [`anemometer`], [`wind_vane`], [`rain_gauge`] | SparkFun/Argent 80422 weather meters | GPIO edges, ADC | [SparkFun Weather Meters](https://cdn.sparkfun.com/assets/d/1/e/0/6/DS-15901-Weather_Meter.pdf) |
//!
//! Instruments with no embedded-hal trait (reed switches fed by timestamped GPIO edges,
//! 1-Wire read through the kernel's `w1_slave` files) are pure functions and state machines
//! here; the daemon does the Linux I/O.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod ads1115;
pub mod analog_ph;
pub mod anemometer;
pub mod bme280;
pub mod ds18b20;
pub mod ezo_ph;
pub mod mcp3008;
pub mod pulse;
pub mod rain_gauge;
pub mod wind_vane;
