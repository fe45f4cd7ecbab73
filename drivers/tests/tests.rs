//! The one integration-test binary of `anemone-drivers`: bus behaviour with scripted
//! `embedded-hal-mock` transactions, and property tests.

mod ads1115;
mod bme280;
mod ds18b20;
mod ezo_ph;
mod htu21d;
mod mcp3008;
mod pulse;
mod wind_vane;
