//! INA219 bus behaviour with the datasheet's calibration example.

use anemone_drivers::ina219::{Calibration, Error, Ina219};
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

const A: u8 = 0x41;

#[test]
fn init_and_measure_with_the_datasheet_calibration() {
    let cal = Calibration::for_shunt(0.5, 0.6).unwrap();
    let t = [
        T::write(A, vec![0x00, 0x39, 0x9F]),
        T::write(A, vec![0x05, 0x10, 0x00]),
        // 12.000 V bus, 100 mV shunt, 10 000 × 20 µA = 0.2 A, 6 000 × 0.4 mW = 2.4 W.
        T::write_read(A, vec![0x02], vec![0x5D, 0xC2]),
        T::write_read(A, vec![0x01], vec![0x27, 0x10]),
        T::write_read(A, vec![0x04], vec![0x27, 0x10]),
        T::write_read(A, vec![0x03], vec![0x17, 0x70]),
        // A discharging battery: negative current.
        T::write_read(A, vec![0x02], vec![0x5D, 0xC2]),
        T::write_read(A, vec![0x01], vec![0xD8, 0xF0]),
        T::write_read(A, vec![0x04], vec![0xD8, 0xF0]),
        T::write_read(A, vec![0x03], vec![0x17, 0x70]),
        T::write_read(A, vec![0x02], vec![0x5D, 0xC3]),
    ];
    let mut ina = Ina219::new(Mock::new(&t), A, cal);
    ina.init().unwrap();
    let m = ina.measure().unwrap();
    assert!((m.bus_v - 12.0).abs() < 1e-9);
    assert!((m.shunt_v - 0.1).abs() < 1e-9);
    assert!((m.current_a - 0.2).abs() < 1e-9);
    assert!((m.power_w - 2.4).abs() < 1e-9);
    let m = ina.measure().unwrap();
    assert!((m.current_a + 0.2).abs() < 1e-9);
    assert_eq!(ina.measure(), Err(Error::Overflow));
    ina.destroy().done();
}
