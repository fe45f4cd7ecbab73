use anemone_drivers::htu21d::{
    frame_for, temperature_raw_for, Error, Htu21d, Kind, Resolution, MAX_POLLS,
};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

const ADDR: u8 = 0x40;

/// A delay that adds up what the driver asked for.
#[derive(Default)]
struct TotalDelay {
    ns: u64,
}

impl DelayNs for TotalDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.ns += u64::from(ns);
    }
}

fn nack() -> ErrorKind {
    ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
}

/// Datasheet HPC199_3, "Communication protocol", no hold master sequence: command 0xF5,
/// one read NACKed while measuring, then 0x7C 0x82 (status bits '10') and checksum 0x97;
/// before that a temperature read of the "CRC Checksum" example word 0x683A (CRC 0x7C).
#[test]
fn no_hold_measurement() {
    let t = [
        T::write(ADDR, vec![0xF3]),
        T::read(ADDR, vec![0x68, 0x3A, 0x7C]),
        T::write(ADDR, vec![0xF5]),
        T::read(ADDR, vec![0; 3]).with_error(nack()),
        T::read(ADDR, vec![0x7C, 0x82, 0x97]),
    ];
    let mut dev = Htu21d::new(Mock::new(&t));
    let mut delay = TotalDelay::default();
    let m = dev.measure(&mut delay).unwrap();
    assert!((m.temperature_c - 24.686_401_367_187_5).abs() < 1e-9);
    assert!((m.humidity_uncompensated_pct - 54.791_015_625).abs() < 1e-12);
    let expected = 54.791_015_625 + (25.0 - m.temperature_c) * -0.15;
    assert!((m.humidity_pct - expected).abs() < 1e-12);
    // 50 ms (14-bit T) + 16 ms (12-bit RH) + one 1 ms re-read after the NACK.
    assert_eq!(delay.ns, 67_000_000);
    dev.destroy().done();
}

#[test]
fn crc_failure() {
    let t = [
        T::write(ADDR, vec![0xF3]),
        T::read(ADDR, vec![0x68, 0x3A, 0x7D]),
    ];
    let mut dev = Htu21d::new(Mock::new(&t));
    let err = dev.read_temperature(&mut NoopDelay::new()).unwrap_err();
    assert_eq!(
        err,
        Error::Crc {
            computed: 0x7C,
            received: 0x7D
        }
    );
    assert!(!err.is_no_device());
    assert!(err.to_string().contains("checksum"));
    dev.destroy().done();
}

#[test]
fn floating_bus_fails_crc_and_held_low_bus_is_invalid() {
    let t = [
        T::write(ADDR, vec![0xF3]),
        T::read(ADDR, vec![0xFF, 0xFF, 0xFF]),
        T::write(ADDR, vec![0xF5]),
        T::read(ADDR, vec![0x00, 0x00, 0x00]),
    ];
    let mut dev = Htu21d::new(Mock::new(&t));
    let mut delay = NoopDelay::new();
    assert!(matches!(
        dev.read_temperature(&mut delay),
        Err(Error::Crc { .. })
    ));
    assert_eq!(dev.read_humidity(&mut delay), Err(Error::InvalidData));
    dev.destroy().done();
}

#[test]
fn absent_sensor_is_no_device() {
    let t = [T::write(ADDR, vec![0xF3]).with_error(nack())];
    let mut dev = Htu21d::new(Mock::new(&t));
    let err = dev.measure(&mut NoopDelay::new()).unwrap_err();
    assert!(err.is_no_device());
    assert!(matches!(err, Error::Bus(_)));
    dev.destroy().done();
}

#[test]
fn other_bus_errors_are_not_retried() {
    let t = [
        T::write(ADDR, vec![0xF5]),
        T::read(ADDR, vec![0; 3]).with_error(ErrorKind::ArbitrationLoss),
    ];
    let mut dev = Htu21d::new(Mock::new(&t));
    let err = dev.read_humidity(&mut NoopDelay::new()).unwrap_err();
    assert_eq!(err, Error::Bus(ErrorKind::ArbitrationLoss));
    assert!(!err.is_no_device());
    dev.destroy().done();
}

#[test]
fn conversion_that_never_ends_is_not_ready() {
    let mut t = vec![T::write(ADDR, vec![0xF3])];
    for _ in 0..=MAX_POLLS {
        t.push(T::read(ADDR, vec![0; 3]).with_error(nack()));
    }
    let mut dev = Htu21d::new(Mock::new(&t));
    let mut delay = TotalDelay::default();
    let err = dev.read_temperature(&mut delay).unwrap_err();
    assert_eq!(err, Error::NotReady);
    // The NACKs came after the command was acknowledged: busy, not absent.
    assert!(!err.is_no_device());
    assert_eq!(delay.ns, 50_000_000 + u64::from(MAX_POLLS) * 1_000_000);
    dev.destroy().done();
}

#[test]
fn status_bits_are_masked() {
    // The same temperature word with each status pattern converts to the same value.
    let raw = temperature_raw_for(21.5);
    let mut t = Vec::new();
    for status in 0..4u16 {
        let [m, l] = (raw | status).to_be_bytes();
        let crc = anemone_drivers::htu21d::crc8(&[m, l]);
        t.push(T::write(ADDR, vec![0xF3]));
        t.push(T::read(ADDR, vec![m, l, crc]));
    }
    let mut dev = Htu21d::new(Mock::new(&t));
    let mut delay = NoopDelay::new();
    for _ in 0..4 {
        assert_eq!(dev.read_raw(Kind::Temperature, &mut delay), Ok(raw));
    }
    dev.destroy().done();
}

/// Datasheet HPC199_3, "User register" example (p.13): read 0x02 (the default), write 0x03
/// for 8-bit RH / 12-bit T. Reserved bits 3..5 are written back as read.
#[test]
fn set_resolution_keeps_reserved_bits_and_shortens_waits() {
    let t = [
        T::write_read(ADDR, vec![0xE7], vec![0x02]),
        T::write(ADDR, vec![0xE6, 0x03]),
        T::write_read(ADDR, vec![0xE7], vec![0x3A]),
        T::write(ADDR, vec![0xE6, 0xBB]),
        T::write(ADDR, vec![0xF5]),
        T::read(ADDR, frame_for(0x7C80, Kind::Humidity).to_vec()),
    ];
    let mut dev = Htu21d::new(Mock::new(&t));
    dev.set_resolution(Resolution::Rh8T12).unwrap();
    assert_eq!(dev.resolution(), Resolution::Rh8T12);
    dev.set_resolution(Resolution::Rh11T11).unwrap();
    let mut delay = TotalDelay::default();
    dev.read_humidity(&mut delay).unwrap();
    // 11-bit humidity: 8 ms instead of 16 ms.
    assert_eq!(delay.ns, 8_000_000);
    dev.destroy().done();
}

#[test]
fn reset_restores_default_timing() {
    let t = [
        T::write_read(ADDR, vec![0xE7], vec![0x02]),
        T::write(ADDR, vec![0xE6, 0x03]),
        T::write(ADDR, vec![0xFE]),
        T::write(ADDR, vec![0xF3]),
        T::read(ADDR, frame_for(0x6838, Kind::Temperature).to_vec()),
    ];
    let mut dev = Htu21d::new(Mock::new(&t));
    dev.set_resolution(Resolution::Rh8T12).unwrap();
    let mut delay = TotalDelay::default();
    dev.reset(&mut delay).unwrap();
    assert_eq!(delay.ns, 15_000_000);
    assert_eq!(dev.resolution(), Resolution::Rh12T14);
    dev.read_temperature(&mut delay).unwrap();
    assert_eq!(delay.ns, 15_000_000 + 50_000_000);
    dev.destroy().done();
}

#[test]
fn user_register_reports_battery_and_heater() {
    let t = [T::write_read(ADDR, vec![0xE7], vec![0x46])];
    let mut dev = Htu21d::new(Mock::new(&t));
    let reg = dev.read_user_register().unwrap();
    assert!(reg.end_of_battery());
    assert!(reg.heater());
    assert_eq!(reg.resolution(), Resolution::Rh12T14);
    dev.destroy().done();
}
