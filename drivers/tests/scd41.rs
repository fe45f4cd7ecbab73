//! SCD41 bus behaviour with the SCD4x datasheet's command examples (words with their CRCs).
//! Checked against Sensirion's "Datasheet SCD4x" (version 1.3, September 2022): section
//! numbers below are that version's.

use anemone_drivers::scd41::{Error, Scd41, ADDRESS};
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

#[test]
fn periodic_measurement_with_pressure_compensation() {
    let t = [
        T::write(ADDRESS, vec![0x21, 0xB1]),
        // set_ambient_pressure example (§3.6.5, Table 17): 98 700 Pa → word 0x03DB (Pa /
        // 100), CRC 0x42.
        T::write(ADDRESS, vec![0xE0, 0x00, 0x03, 0xDB, 0x42]),
        T::write(ADDRESS, vec![0xE4, 0xB8]),
        T::read(ADDRESS, vec![0x80, 0x06, crc(0x8006)]),
        // read_measurement example (§3.5.2): 0x01F4 = 500 ppm, 0x6667 = −45 + 175 × 26215 /
        // 2^16 = 25 °C, 0x5EB9 = 100 × 24249 / 2^16 = 37 %; CRCs 0x33, 0xA2, 0x3C recomputed
        // with the §3.11 CRC-8 (0xBEEF → 0x92).
        T::write(ADDRESS, vec![0xEC, 0x05]),
        T::read(
            ADDRESS,
            vec![0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C],
        ),
        T::write(ADDRESS, vec![0x3F, 0x86]),
    ];
    let mut s = Scd41::new(Mock::new(&t));
    let mut d = NoopDelay::new();
    s.start_periodic().unwrap();
    s.set_ambient_pressure(987.0, &mut d).unwrap();
    assert!(s.data_ready(&mut d).unwrap());
    let m = s.read_measurement(&mut d).unwrap();
    assert_eq!(m.co2_ppm, 500);
    assert!((m.temperature_c - 25.0).abs() < 0.01);
    s.stop_periodic(&mut d).unwrap();
    s.destroy().done();
}

fn crc(w: u16) -> u8 {
    anemone_drivers::scd41::crc8(&w.to_be_bytes())
}

#[test]
fn single_shot_offset_and_forced_recalibration() {
    let t = [
        // set_temperature_offset example (§3.6.1): 5.4 °C → 0x07E6 (trunc(5.4 × 2^16 / 175)),
        // CRC 0x48 (recomputed).
        T::write(ADDRESS, vec![0x24, 0x1D, 0x07, 0xE6, 0x48]),
        T::write(ADDRESS, vec![0x21, 0x9D]),
        T::write(ADDRESS, vec![0xEC, 0x05]),
        T::read(
            ADDRESS,
            vec![0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C],
        ),
        // perform_forced_recalibration example (§3.7.1, Table 18, page 13): 480 ppm (0x01E0,
        // CRC 0xB4); answer 0x7FCE (CRC 0x7B) = word − 0x8000 = a correction of −50 ppm;
        // 0xFFFF means the FRC failed.
        T::write(ADDRESS, vec![0x36, 0x2F, 0x01, 0xE0, 0xB4]),
        T::read(ADDRESS, vec![0x7F, 0xCE, 0x7B]),
        T::write(ADDRESS, vec![0x36, 0x2F, 0x01, 0xA4, crc(0x01A4)]),
        T::read(ADDRESS, vec![0xFF, 0xFF, crc(0xFFFF)]),
    ];
    let mut s = Scd41::new(Mock::new(&t));
    let mut d = NoopDelay::new();
    s.set_temperature_offset(5.4, &mut d).unwrap();
    assert_eq!(s.measure_single_shot(&mut d).unwrap().co2_ppm, 500);
    assert_eq!(s.forced_recalibration(480, &mut d), Ok(-50));
    assert_eq!(
        s.forced_recalibration(420, &mut d),
        Err(Error::RecalibrationFailed)
    );
    s.destroy().done();
}

#[test]
fn bad_crc_not_ready_and_absent() {
    let t = [
        T::write(ADDRESS, vec![0xEC, 0x05]),
        T::read(
            ADDRESS,
            vec![0x01, 0xF4, 0x34, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C],
        ),
        T::write(ADDRESS, vec![0xEC, 0x05]),
        T::read(
            ADDRESS,
            vec![0x00, 0x00, crc(0), 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C],
        ),
        T::write(ADDRESS, vec![0x21, 0xB1])
            .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)),
    ];
    let mut s = Scd41::new(Mock::new(&t));
    let mut d = NoopDelay::new();
    assert_eq!(s.read_measurement(&mut d), Err(Error::Crc));
    assert_eq!(s.read_measurement(&mut d), Err(Error::NotReady));
    assert!(s.start_periodic().unwrap_err().is_no_device());
    assert_eq!(
        s.set_ambient_pressure(f64::NAN, &mut d),
        Err(Error::InvalidArgument)
    );
    s.destroy().done();
}
