//! What the EZO kinds (EZO-pH, EZO-EC, EZO-DO, EZO-ORP) share: naming another sensor whose
//! latest value compensates a reading, the message for a circuit that does not answer, and
//! the simulated circuit that answers the shared EZO protocol.

use std::fmt::Debug;

use anemone_drivers::ezo::EzoError;

use super::{SourceError, StationFacts};
use crate::clock::Clock;
use crate::hal::sim::{SimI2cChip, Weather};
use crate::hal::BusError;
use crate::latest::Latest;
use crate::reading::{Quantity, Timestamp};

/// A compensating value older than this is not used.
pub(super) const MAX_COMPENSATION_AGE_MS: i64 = 10 * 60 * 1000;

/// A key naming another sensor that must measure `quantity` (`temperature_sensor`,
/// `conductivity_sensor`, `pressure_sensor`).
pub(super) fn check_reference(
    station: &dyn StationFacts,
    key: &'static str,
    id: &Option<String>,
    quantity: Quantity,
    p: &mut Vec<(&'static str, String)>,
) {
    let Some(id) = id else { return };
    match station.sensor(id) {
        None => p.push((
            key,
            format!(
                "no sensor has id \"{id}\": name a sensor that measures {}, or remove the key",
                quantity.as_str()
            ),
        )),
        Some(s) if !s.kind.quantities().contains(&quantity) => p.push((
            key,
            format!(
                "sensor \"{id}\" does not measure {}: name one that does",
                quantity.as_str()
            ),
        )),
        Some(_) => {}
    }
}

/// The latest good value of `quantity` from the sensor `id` names.
pub(super) fn latest_of(
    latest: &Latest,
    id: &Option<String>,
    quantity: Quantity,
    now: Timestamp,
) -> Option<f64> {
    latest.get(id.as_deref()?, quantity, now, MAX_COMPENSATION_AGE_MS)
}

/// A circuit's error as a source error: absent when nothing acknowledged its address.
pub(super) fn ezo_error<E: embedded_hal::i2c::Error + Debug>(
    chip: &str,
    where_: &str,
    e: EzoError<E>,
) -> SourceError {
    if e.is_no_device() {
        SourceError::Absent(format!(
            "no {chip} answered at {where_}: check wiring and that the circuit is in I2C mode (LED blue; `i2cdetect` shows its address)"
        ))
    } else {
        SourceError::Device(format!("{chip} at {where_}: {e}"))
    }
}

/// What a simulated circuit reads: the payload of `R`/`RT` at a time.
pub(super) type SimReading = fn(&Weather, Timestamp) -> String;

/// A simulated EZO circuit: `R` and `RT,<°C>` answer `reading`; settings (`T`, `S`, `P`,
/// `K`, `O`) and calibration points succeed (`Cal,mid` clears the others, as on the
/// EZO-pH); `Cal,?`, `Cal,clear`, `Slope,?` (EZO-pH), `Status` and `i` answer as the circuit
/// would.
pub(super) struct SimEzoCircuit {
    weather: Weather,
    clock: Clock,
    /// Device type in `?I,<type>,<firmware>`.
    device: &'static str,
    reading: SimReading,
    max_points: u8,
    cal_points: u8,
    reply: Vec<u8>,
}

impl SimEzoCircuit {
    pub(super) fn new(
        weather: Weather,
        clock: Clock,
        device: &'static str,
        reading: SimReading,
        max_points: u8,
    ) -> SimEzoCircuit {
        SimEzoCircuit {
            weather,
            clock,
            device,
            reading,
            max_points,
            cal_points: max_points,
            reply: vec![255],
        }
    }

    fn answer(&mut self, cmd: &str) -> Vec<u8> {
        let ok = |text: &str| {
            let mut v = vec![1u8];
            v.extend_from_slice(text.as_bytes());
            v.push(0);
            v
        };
        let lower = cmd.to_ascii_lowercase();
        let setting = ["t,", "s,", "p,", "k,", "o,"]
            .iter()
            .any(|p| lower.starts_with(p));
        if lower == "r" || lower.starts_with("rt,") {
            ok(&(self.reading)(&self.weather, self.clock.now()))
        } else if setting {
            ok("")
        } else if lower == "cal,?" {
            ok(&format!("?CAL,{}", self.cal_points))
        } else if lower == "cal,clear" {
            self.cal_points = 0;
            ok("")
        } else if lower.starts_with("cal,mid,") {
            self.cal_points = 1;
            ok("")
        } else if lower == "cal" || lower.starts_with("cal,") {
            self.cal_points = (self.cal_points + 1).min(self.max_points);
            ok("")
        } else if lower == "slope,?" {
            ok("?Slope,99.7,100.3,-0.89")
        } else if lower == "status" {
            ok("?STATUS,P,3.300")
        } else if lower == "i" {
            ok(&format!("?I,{},2.16", self.device))
        } else {
            vec![2, 0]
        }
    }
}

impl SimI2cChip for SimEzoCircuit {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let cmd = String::from_utf8_lossy(bytes);
        let cmd = cmd.trim_end_matches('\0').trim();
        self.reply = self.answer(cmd);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        buf.fill(0);
        let n = buf.len().min(self.reply.len());
        buf[..n].copy_from_slice(&self.reply[..n]);
        self.reply = vec![255];
        Ok(())
    }
}
