//! # anemone-drivers
//!
//! `no_std` drivers and instrument logic for the Anemone weather and ocean station, on
//! [embedded-hal 1.0](https://docs.rs/embedded-hal/1) only: no allocation, no `unsafe`, and
//! it builds for bare-metal targets (`thumbv7em-none-eabihf`) as well as the Raspberry Pi.
//!
//! | Module | Chip / instrument | Interface | Datasheet |
//! |---|---|---|---|
//! | [`bme280`] | Bosch BME280 (T, P, RH); BMP280 detected and refused | I2C `0x76`/`0x77` | [BST-BME280-DS002](https://www.bosch-sensortec.com/media/boschsensortec/downloads/datasheets/bst-bme280-ds002.pdf) |
//! | [`htu21d`] | TE Connectivity (MEAS) HTU21D(F) (T, RH; Oracle Weather Station HAT) | I2C `0x40` (fixed: `new(bus)`) | [HTU21D(F) HPC199](https://cdn-shop.adafruit.com/datasheets/1899_HTU21D.pdf) |
//! | [`bmp180`] | Bosch BMP180 (T, P; Oracle Weather Station HAT) | I2C `0x77` (fixed) | [BST-BMP180-DS000](https://cdn-shop.adafruit.com/datasheets/BST-BMP180-DS000-09.pdf) |
//! | [`mcp3427`] | Microchip MCP3427 16-bit 2-channel delta-sigma ADC (HAT: wind vane, air quality) | I2C `0x68`–`0x6F` | [MCP3426/7/8 DS22226A](https://ww1.microchip.com/downloads/en/DeviceDoc/22226a.pdf) |
//! | [`tgs2600`] | Figaro TGS2600 air-contamination sensor (through an ADC): Rs and Rs/R0 | ADC volts | [TGS2600](https://www.figaro.co.jp/en/product/docs/tgs2600_product%20information%28en%29_rev02.pdf) |
//! | [`tsl2591`] | ams TSL2591 light sensor (lux, auto-ranging) | I2C `0x29` (fixed) | [TSL2591 DS000338](https://ams.com/documents/20143/36005/TSL2591_DS000338_6-00.pdf) |
//! | [`ltr390`] | Lite-On LTR-390UV-01 (UV index, lux) | I2C `0x53` (fixed) | [DS86-2015-0004](https://optoelectronics.liteon.com/upload/download/DS86-2015-0004/LTR-390UV_Final_%20DS_V1%201.pdf) |
//! | [`as3935`] | ams AS3935 lightning sensor (IRQ on a GPIO) | I2C `0x01`–`0x03` | [AS3935](https://www.sciosense.com/wp-content/uploads/documents/AS3935-Data-Sheet.pdf) |
//! | [`ds18b20`] | Maxim/Analog Devices DS18B20 water/ground temperature probe | 1-Wire via the kernel's `w1_slave` | [DS18B20](https://www.analog.com/media/en/technical-documentation/data-sheets/DS18B20.pdf) |
//! | [`mcp3008`] | Microchip MCP3008 10-bit 8-channel ADC | SPI | [MCP3004/3008](https://ww1.microchip.com/downloads/en/DeviceDoc/21295d.pdf) |
//! | [`ads1115`] | Texas Instruments ADS1115 16-bit 4-channel ADC | I2C `0x48`–`0x4B` | [ADS111x](https://www.ti.com/lit/ds/symlink/ads1115.pdf) |
//! | [`ezo_ph`] | Atlas Scientific EZO-pH circuit | I2C `0x63` | [EZO-pH](https://files.atlas-scientific.com/pH_EZO_Datasheet.pdf) |
//! | [`ezo_ec`] | Atlas Scientific EZO-EC conductivity circuit (shared [`ezo`] protocol) | I2C `0x64` | [EZO-EC](https://files.atlas-scientific.com/EC_EZO_Datasheet.pdf) |
//! | [`ezo_do`] | Atlas Scientific EZO-DO dissolved-oxygen circuit | I2C `0x61` | [EZO-DO](https://files.atlas-scientific.com/DO_EZO_Datasheet.pdf) |
//! | [`ezo_orp`] | Atlas Scientific EZO-ORP circuit | I2C `0x62` | [EZO-ORP](https://files.atlas-scientific.com/ORP_EZO_Datasheet.pdf) |
//! | [`scd41`] | Sensirion SCD41 CO2 (with T, RH), Sensirion CRC-8 | I2C `0x62` (fixed) | [SCD4x](https://sensirion.com/media/documents/48C4B7FB/64C134E7/Sensirion_SCD4x_Datasheet.pdf) |
//! | [`ina219`] | Texas Instruments INA219 bus voltage, current, power | I2C `0x40`–`0x4F` | [SBOS448](https://www.ti.com/lit/ds/symlink/ina219.pdf) |
//! | [`analog_ph`] | Analog pH probe + amplifier board (through an ADC) | ADC volts | no single datasheet: the [Nernst equation](https://en.wikipedia.org/wiki/Nernst_equation) |
//! | [`anemometer`], [`pulse`] | SparkFun/Argent 80422 cup anemometer (reed switch) | GPIO edges | [SparkFun Weather Meters](https://cdn.sparkfun.com/assets/d/1/e/0/6/DS-15901-Weather_Meter.pdf) |
//! | [`wind_vane`] | SparkFun/Argent 80422 wind vane (resistor network) | ADC volts | [SparkFun Weather Meters](https://cdn.sparkfun.com/assets/d/1/e/0/6/DS-15901-Weather_Meter.pdf) |
//! | [`rain_gauge`], [`pulse`] | SparkFun/Argent 80422 tipping-bucket rain gauge | GPIO edges | [SparkFun Weather Meters](https://cdn.sparkfun.com/assets/d/1/e/0/6/DS-15901-Weather_Meter.pdf) |
//!
//! Every bus driver owns its bus (`new(bus, address)`, `destroy()` hands it back; share a bus
//! with `embedded-hal-bus`), and its errors are generic over the bus error, with
//! `is_no_device()` for "nothing acknowledged at that address". Instruments with no
//! embedded-hal trait — reed switches fed by timestamped GPIO edges, 1-Wire read through the
//! kernel's files — are pure functions and state machines here; the daemon does the Linux I/O.
//! Every conversion has an inverse (`…_for_…`, `…_counts`, `scratchpad_for`,
//! `Calibration::to_registers`) for the simulated station.
//!
//! # Example: a BME280 on the Pi's `/dev/i2c-1`
//!
//! ```no_run
//! # #[cfg(target_os = "linux")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use anemone_drivers::bme280::{Bme280, Mode, Settings, DEFAULT_ADDRESS};
//! use linux_embedded_hal::{Delay, I2cdev};
//!
//! let i2c = I2cdev::new("/dev/i2c-1")?;
//! let mut delay = Delay;
//! let mut bme = Bme280::new(i2c, DEFAULT_ADDRESS);
//! match bme.init(&mut delay, Settings { mode: Mode::Forced, oversampling: 1, iir_filter: 0 }) {
//!     Err(e) if e.is_no_device() => eprintln!("No BME280 at 0x76; try 0x77 (i2cdetect -y 1)"),
//!     Err(e) => return Err(e.into()),
//!     Ok(()) => {
//!         let m = bme.measure(&mut delay)?;
//!         println!(
//!             "{:.2} °C, {:.2} hPa, {:.1} %",
//!             m.temperature_c, m.pressure_hpa, m.humidity_pct
//!         );
//!     }
//! }
//! let _i2c = bme.destroy();
//! # Ok(())
//! # }
//! # #[cfg(not(target_os = "linux"))]
//! # fn main() {}
//! ```
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod ads1115;
pub mod analog_ph;
pub mod anemometer;
pub mod as3935;
pub mod bme280;
pub mod bmp180;
pub mod ds18b20;
pub mod ezo;
pub mod ezo_do;
pub mod ezo_ec;
pub mod ezo_orp;
pub mod ezo_ph;
pub mod htu21d;
pub mod ina219;
pub mod ltr390;
pub mod mcp3008;
pub mod mcp3427;
pub mod pulse;
pub mod rain_gauge;
pub mod scd41;
pub mod tgs2600;
pub mod tsl2591;
pub mod wind_vane;

/// Reads the one-byte register `command` at `address` until `ready` accepts its value: once,
/// then up to `max_polls` more times, `interval_us` apart. `Ok(false)` when it never did.
pub(crate) fn poll_status<I: embedded_hal::i2c::I2c, D: embedded_hal::delay::DelayNs>(
    i2c: &mut I,
    address: u8,
    command: u8,
    ready: impl Fn(u8) -> bool,
    max_polls: u32,
    interval_us: u32,
    delay: &mut D,
) -> Result<bool, I::Error> {
    let mut status = [0u8];
    for poll in 0..=max_polls {
        if poll > 0 {
            delay.delay_us(interval_us);
        }
        i2c.write_read(address, &[command], &mut status)?;
        if ready(status[0]) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// True when an I2C error means "nobody acknowledged the address": the device is not
/// there (or not at this address). Every I2C driver's `is_no_device` uses it.
pub fn is_no_ack<E: embedded_hal::i2c::Error>(e: &E) -> bool {
    use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
    matches!(
        e.kind(),
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address | NoAcknowledgeSource::Unknown)
    )
}
