//! The one integration-test binary of `anemone-drivers`: bus behaviour with scripted
//! `embedded-hal-mock` transactions, and property tests.

mod ads1115;
mod as3935;
mod bme280;
mod bmp180;
mod ds18b20;
mod ezo_chem;
mod ezo_ph;
mod htu21d;
mod ina219;
mod ltr390;
mod mcp3008;
mod mcp3427;
mod pulse;
mod scd41;
mod tsl2591;
mod wind_vane;
