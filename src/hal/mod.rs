//! The Linux side: I2C and SPI through linux-embedded-hal, GPIO edge events through the
//! kernel GPIO character device, 1-Wire through `w1_root`, and the simulated buses.
//! Nothing else in `src/` touches `/dev` or `/sys`.

pub mod paths;
