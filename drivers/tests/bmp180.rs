use anemone_drivers::bmp180::{Bmp180, Calibration, Error, ADDRESS};
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

/// Datasheet BST-BMP180-DS000-09, figure 4 p.15, over the bus: the example calibration in
/// the EEPROM, UT = 27898 (0x6CFA) and UP = 23843 (0x5D23) at oss 0 → 15.0 °C, 69964 Pa.
#[test]
fn datasheet_example_over_the_bus() {
    let cal = Calibration::DATASHEET_EXAMPLE.to_registers().to_vec();
    let t = [
        T::write_read(ADDRESS, vec![0xD0], vec![0x55]),
        T::write_read(ADDRESS, vec![0xAA], cal),
        T::write(ADDRESS, vec![0xF4, 0x2E]),
        T::write_read(ADDRESS, vec![0xF6], vec![0x6C, 0xFA, 0x00]),
        T::write(ADDRESS, vec![0xF4, 0x34]),
        T::write_read(ADDRESS, vec![0xF6], vec![0x5D, 0x23, 0x00]),
    ];
    let mut dev = Bmp180::new(Mock::new(&t));
    dev.init(0).unwrap();
    let m = dev.measure(&mut NoopDelay::new()).unwrap();
    assert_eq!(m.temperature_c, 15.0);
    assert_eq!(m.pressure_pa, 69964);
    dev.destroy().done();
}

/// Oversampling 3: control 0x34 + (3 << 6) = 0xF4, UP from 19 bits.
#[test]
fn oversampling_three() {
    let cal = Calibration::DATASHEET_EXAMPLE.to_registers().to_vec();
    let t = [
        T::write_read(ADDRESS, vec![0xD0], vec![0x55]),
        T::write_read(ADDRESS, vec![0xAA], cal),
        T::write(ADDRESS, vec![0xF4, 0x2E]),
        T::write_read(ADDRESS, vec![0xF6], vec![0x6C, 0xFA, 0x00]),
        T::write(ADDRESS, vec![0xF4, 0xF4]),
        T::write_read(ADDRESS, vec![0xF6], vec![0x5D, 0x23, 0x00]),
    ];
    let mut dev = Bmp180::new(Mock::new(&t));
    dev.init(3).unwrap();
    let m = dev.measure(&mut NoopDelay::new()).unwrap();
    let expected = Calibration::DATASHEET_EXAMPLE
        .pressure_pa(27898, 23843 << 3, 3)
        .unwrap();
    assert_eq!(m.pressure_pa, expected);
    assert!((69_000..71_000).contains(&m.pressure_pa), "{m:?}");
    dev.destroy().done();
}

#[test]
fn wrong_chip_blank_eeprom_and_absent() {
    let t = [T::write_read(ADDRESS, vec![0xD0], vec![0x60])];
    let mut dev = Bmp180::new(Mock::new(&t));
    assert_eq!(dev.init(0), Err(Error::WrongChip(0x60)));
    dev.destroy().done();

    let t = [
        T::write_read(ADDRESS, vec![0xD0], vec![0x55]),
        T::write_read(ADDRESS, vec![0xAA], vec![0xFF; 22]),
    ];
    let mut dev = Bmp180::new(Mock::new(&t));
    let err = dev.init(0).unwrap_err();
    assert_eq!(err, Error::Calibration(0));
    assert!(err.to_string().contains("0xFFFF"), "{err}");
    dev.destroy().done();

    let t = [T::write_read(ADDRESS, vec![0xD0], vec![0])
        .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))];
    let mut dev = Bmp180::new(Mock::new(&t));
    assert!(dev.init(0).unwrap_err().is_no_device());
    dev.destroy().done();

    let mut dev = Bmp180::new(Mock::new(&[]));
    assert_eq!(dev.init(4), Err(Error::Oversampling(4)));
    dev.destroy().done();
}
