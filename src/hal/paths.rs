//! Where the Linux kernel exposes the Pi's buses. Only the HAL knows these paths.

use std::path::PathBuf;

/// Default root of the kernel's 1-Wire devices (the `w1-gpio` overlay).
pub const DEFAULT_W1_ROOT: &str = "/sys/bus/w1/devices";

/// Character device of I2C bus `n` (`dtparam=i2c_arm=on` gives bus 1).
pub fn i2c_device(bus: u8) -> PathBuf {
    PathBuf::from(format!("/dev/i2c-{bus}"))
}

/// Character device of SPI bus `bus`, chip select `cs` (`dtparam=spi=on`).
pub fn spi_device(bus: u8, cs: u8) -> PathBuf {
    PathBuf::from(format!("/dev/spidev{bus}.{cs}"))
}

/// Character device of GPIO chip `n` (the Pi's header is chip 0 on a Pi 1–4 and on a
/// Pi 5 with a current kernel).
pub fn gpio_chip(chip: u8) -> PathBuf {
    PathBuf::from(format!("/dev/gpiochip{chip}"))
}

/// Where the kernel lists the real-time clocks (`rtc0`, …), e.g. the Oracle Weather
/// Station HAT's PCF8523 under `dtoverlay=i2c-rtc,pcf8523`.
pub const RTC_CLASS: &str = "/sys/class/rtc";

/// Numbers of the I2C buses the kernel exposes, sorted.
pub fn list_i2c_buses() -> Vec<u8> {
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return Vec::new();
    };
    let mut buses: Vec<u8> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix("i2c-").and_then(|b| b.parse().ok()))
        .collect();
    buses.sort_unstable();
    buses
}
