//! The simulated station: simulated buses under the real drivers.
//!
//! There is one simulation mechanism. A [`SimWorld`] holds the seeded [`Weather`] and
//! the simulated chips the config describes: a BME280 register map and an EZO-pH that
//! answer on a simulated I2C bus, an MCP3008 / ADS1115 that return the vane's and the
//! probe's voltages, DS18B20 `w1_slave` text, and timestamped reed-switch edges for the
//! anemometer and rain gauge. The real drivers read them exactly as they read hardware,
//! so the simulated station exercises the same conversion code as a real one. Each
//! sensor kind registers its chip through a [`SimWorldBuilder`].

mod chips;
mod edges;
pub mod gps;
pub mod weather;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use embedded_hal::i2c::Operation;
use embedded_hal::spi;

pub(crate) use chips::invert;
pub use chips::{AnalogVolts, SimChannel};
pub use edges::{SimEdges, Switch};
pub use gps::{Mooring, SimGpsd, SWING_FRACTION};
pub use weather::Weather;

use super::error::{BusError, SpiBusError};
use crate::clock::Clock;
use crate::reading::Quantity;
use chips::{SimAds1115, SimBme280, SimMcp3008, SimMcp3427};

/// A simulated I2C chip: what it does with the bytes a driver writes, and what it
/// answers when read. A kind whose chip is not among ours ([`SimWorldBuilder::bme280`]
/// and its siblings) implements this beside its driver model and registers it with
/// [`SimWorldBuilder::i2c_chip`].
pub trait SimI2cChip: Send {
    /// The driver wrote `bytes` (register pointer, command, data).
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError>;
    /// The driver reads `buf.len()` bytes.
    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError>;
}

/// The simulated station: weather, clock and chips.
pub struct SimWorld {
    weather: Weather,
    clock: Clock,
    i2c: Mutex<HashMap<(u8, u8), Box<dyn SimI2cChip>>>,
    spi: Mutex<HashMap<(u8, u8), SimMcp3008>>,
    w1: HashMap<String, Quantity>,
    switches: HashMap<(u8, u32), Switch>,
    gpsd: HashMap<String, Mooring>,
    seed: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// ROM id the simulator gives a DS18B20 configured with `rom = "auto"`.
pub const AUTO_ROM: &str = "28-000000000a0e";

/// Collects the simulated chips, probes and switches; each sensor kind registers its own
/// (`SensorKindSpec::register_sim` in `crate::sensors`).
pub struct SimWorldBuilder {
    weather: Weather,
    clock: Clock,
    i2c: HashMap<(u8, u8), Box<dyn SimI2cChip>>,
    spi: HashMap<(u8, u8), SimMcp3008>,
    ads: HashMap<(u8, u8), SimAds1115>,
    mcp3427: HashMap<(u8, u8), SimMcp3427>,
    w1: HashMap<String, Quantity>,
    switches: HashMap<(u8, u32), Switch>,
    gpsd: HashMap<String, Mooring>,
    seed: u64,
    latitude: f64,
    longitude: f64,
}

impl SimWorldBuilder {
    /// An empty station with seeded weather at `longitude` (for the sun) and
    /// `altitude_m` (for the pressure).
    pub fn new(seed: u64, longitude: f64, altitude_m: f64, clock: Clock) -> SimWorldBuilder {
        SimWorldBuilder {
            weather: Weather::new(seed, longitude, altitude_m),
            clock,
            i2c: HashMap::new(),
            spi: HashMap::new(),
            ads: HashMap::new(),
            mcp3427: HashMap::new(),
            w1: HashMap::new(),
            switches: HashMap::new(),
            gpsd: HashMap::new(),
            seed,
            latitude: 0.0,
            longitude,
        }
    }

    /// Sets the station's latitude (where a GPS without an anchor is moored).
    pub fn set_latitude(&mut self, latitude: f64) {
        self.latitude = latitude;
    }

    /// The station's latitude and longitude, degrees.
    pub fn site(&self) -> (f64, f64) {
        (self.latitude, self.longitude)
    }

    /// A simulated gpsd at `addr` serving a receiver on a buoy moored at `mooring`.
    pub fn gpsd(&mut self, addr: &str, mooring: Mooring) {
        self.gpsd.insert(addr.to_string(), mooring);
    }

    /// The station's weather, for a chip that answers with it.
    pub fn weather(&self) -> &Weather {
        &self.weather
    }

    /// The station clock, for a chip that answers with the weather of "now".
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Any simulated chip at `address` on I2C bus `bus`.
    pub fn i2c_chip(&mut self, bus: u8, address: u8, chip: Box<dyn SimI2cChip>) {
        self.i2c.insert((bus, address), chip);
    }

    /// A BME280 register map at `address` on I2C bus `bus`.
    pub fn bme280(&mut self, bus: u8, address: u8) {
        let chip = SimBme280::new(self.weather.clone(), self.clock.clone());
        self.i2c.insert((bus, address), Box::new(chip));
    }

    /// A DS18B20 measuring `quantity` (`auto` becomes [`AUTO_ROM`]).
    pub fn ds18b20(&mut self, rom: &str, quantity: Quantity) {
        let rom = if rom == "auto" { AUTO_ROM } else { rom };
        self.w1.insert(rom.to_string(), quantity);
    }

    /// `what` on channel `channel` of the MCP3008 on SPI `bus`.`cs` (referenced to `vref`).
    pub fn mcp3008_channel(&mut self, bus: u8, cs: u8, vref: f64, channel: u8, what: SimChannel) {
        let (weather, clock) = (&self.weather, &self.clock);
        self.spi
            .entry((bus, cs))
            .or_insert_with(|| SimMcp3008::new(weather.clone(), clock.clone(), vref))
            .attach(channel, what);
    }

    /// `what` on channel `channel` of the ADS1115 at `address` on I2C bus `bus`.
    pub fn ads1115_channel(&mut self, bus: u8, address: u8, channel: u8, what: SimChannel) {
        let (weather, clock) = (&self.weather, &self.clock);
        self.ads
            .entry((bus, address))
            .or_insert_with(|| SimAds1115::new(weather.clone(), clock.clone()))
            .attach(channel, what);
    }

    /// `what` on channel `channel` of the MCP3427 at `address` on I2C bus `bus`.
    pub fn mcp3427_channel(&mut self, bus: u8, address: u8, channel: u8, what: SimChannel) {
        let (weather, clock) = (&self.weather, &self.clock);
        self.mcp3427
            .entry((bus, address))
            .or_insert_with(|| SimMcp3427::new(weather.clone(), clock.clone()))
            .attach(channel, what);
    }

    /// A reed switch driven by `switch` on `line` of GPIO chip `chip`.
    pub fn switch(&mut self, chip: u8, line: u32, switch: Switch) {
        self.switches.insert((chip, line), switch);
    }

    /// The finished station.
    pub fn build(self) -> Arc<SimWorld> {
        let mut i2c = self.i2c;
        for (key, chip) in self.ads {
            i2c.insert(key, Box::new(chip));
        }
        for (key, chip) in self.mcp3427 {
            i2c.insert(key, Box::new(chip));
        }
        Arc::new(SimWorld {
            weather: self.weather,
            clock: self.clock,
            i2c: Mutex::new(i2c),
            spi: Mutex::new(self.spi),
            w1: self.w1,
            switches: self.switches,
            gpsd: self.gpsd,
            seed: self.seed,
        })
    }
}

impl SimWorld {
    /// The simulated weather.
    pub fn weather(&self) -> &Weather {
        &self.weather
    }

    /// The simulated I2C bus `bus`.
    pub fn i2c(self: &Arc<Self>, bus: u8) -> SimI2c {
        SimI2c {
            world: self.clone(),
            bus,
        }
    }

    /// The simulated SPI device `bus`.`cs`.
    pub fn spi(self: &Arc<Self>, bus: u8, cs: u8) -> SimSpi {
        SimSpi {
            world: self.clone(),
            bus,
            cs,
        }
    }

    /// The `w1_slave` text of a simulated DS18B20, or `None` if no such probe exists.
    pub fn w1_slave(&self, rom: &str) -> Option<String> {
        let quantity = self.w1.get(rom)?;
        let t = self.clock.now();
        let celsius = match quantity {
            Quantity::WaterTemperature => self.weather.water_temperature(t),
            Quantity::AirTemperature => self.weather.air_temperature(t),
            _ => self.weather.ground_temperature(t),
        };
        let sp = anemone_drivers::ds18b20::scratchpad_for(celsius);
        Some(
            anemone_drivers::ds18b20::W1Text::from_scratchpad(&sp)
                .as_str()
                .to_string(),
        )
    }

    /// ROM ids of the simulated 1-Wire probes.
    pub fn w1_roms(&self) -> Vec<String> {
        let mut roms: Vec<String> = self.w1.keys().cloned().collect();
        roms.sort();
        roms
    }

    /// Addresses answering on simulated I2C bus `bus`.
    pub fn i2c_addresses(&self, bus: u8) -> Vec<u8> {
        let mut a: Vec<u8> = lock(&self.i2c)
            .keys()
            .filter(|(b, _)| *b == bus)
            .map(|(_, a)| *a)
            .collect();
        a.sort_unstable();
        a
    }

    /// The simulated I2C bus numbers.
    pub fn i2c_buses(&self) -> Vec<u8> {
        let mut b: Vec<u8> = lock(&self.i2c).keys().map(|(b, _)| *b).collect();
        b.sort_unstable();
        b.dedup();
        b
    }

    /// The simulated gpsd at `addr`, its receiver switched on at station time `start`;
    /// `None` when no GPS sensor registered one there.
    pub fn gpsd(&self, addr: &str, start: crate::reading::Timestamp) -> Option<SimGpsd> {
        let mooring = *self.gpsd.get(addr)?;
        Some(SimGpsd::new(mooring, start, self.seed))
    }

    /// Edges of the simulated switch on `line` of GPIO chip `chip`, from station time
    /// `start`; `None` when no sensor registered a switch there.
    pub fn edges(&self, chip: u8, line: u32, start: crate::reading::Timestamp) -> Option<SimEdges> {
        let switch = *self.switches.get(&(chip, line))?;
        Some(SimEdges::new(self.weather.clone(), switch, start))
    }
}

/// A handle on one simulated I2C bus.
pub struct SimI2c {
    world: Arc<SimWorld>,
    bus: u8,
}

impl SimI2c {
    /// `sim-i2c-N` for messages.
    pub fn describe(&self) -> String {
        format!("simulated I2C bus {}", self.bus)
    }

    /// Runs an I2C transaction against the simulated chip at `address`.
    pub fn transaction(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), BusError> {
        let mut chips = lock(&self.world.i2c);
        let Some(chip) = chips.get_mut(&(self.bus, address)) else {
            return Err(BusError::no_ack(format!(
                "no device answered at {address:#04x} on simulated I2C bus {}",
                self.bus
            )));
        };
        for op in ops.iter_mut() {
            match op {
                Operation::Write(bytes) => chip.write(bytes)?,
                Operation::Read(buf) => chip.read(buf)?,
            }
        }
        Ok(())
    }
}

/// A handle on one simulated SPI device.
pub struct SimSpi {
    world: Arc<SimWorld>,
    bus: u8,
    cs: u8,
}

impl SimSpi {
    /// Runs an SPI transaction against the simulated MCP3008.
    pub fn transaction(&mut self, ops: &mut [spi::Operation<'_, u8>]) -> Result<(), SpiBusError> {
        let mut devs = lock(&self.world.spi);
        let Some(dev) = devs.get_mut(&(self.bus, self.cs)) else {
            // Nothing on the bus: MISO floats high or low; a real MCP3008 read returns
            // garbage rather than an error. Return zeros, as a pulled-down MISO would.
            for op in ops.iter_mut() {
                if let spi::Operation::Read(b) | spi::Operation::TransferInPlace(b) = op {
                    b.fill(0);
                }
                if let spi::Operation::Transfer(r, _) = op {
                    r.fill(0);
                }
            }
            return Ok(());
        };
        for op in ops.iter_mut() {
            match op {
                spi::Operation::Transfer(read, write) => dev.transfer(read, write),
                spi::Operation::TransferInPlace(buf) => {
                    let write = buf.to_vec();
                    dev.transfer(buf, &write);
                }
                spi::Operation::Write(w) => {
                    let mut sink = vec![0u8; w.len()];
                    dev.transfer(&mut sink, w);
                }
                spi::Operation::Read(r) => r.fill(0),
                spi::Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}
