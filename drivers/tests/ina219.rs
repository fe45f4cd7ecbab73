//! INA219 bus behaviour: the calibration arithmetic of the datasheet's section 8.5 (Cal =
//! trunc(0.04096 / (Current_LSB × R_shunt)), power LSB = 20 × Current_LSB), and the
//! datasheet's own register example (Table 3, below).

use anemone_drivers::ina219::{Calibration, Error, Ina219};
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

const A: u8 = 0x41;

#[test]
fn init_and_measure_with_the_datasheet_calibration() {
    let cal = Calibration::for_shunt(0.5, 0.6).unwrap();
    let t = [
        T::write(A, vec![0x00, 0x39, 0x9F]),
        T::write(A, vec![0x05, 0x10, 0x00]),
        // 12.000 V bus (3000 × 4 mV, CNVR set), 100 mV shunt (10 000 × 10 µV), current =
        // shunt × Cal / 4096 = 10 000 × 20 µA = 0.2 A, power = current × bus / 5000 = 6 000
        // × 0.4 mW = 2.4 W (the datasheet's Table 3 arithmetic with this calibration).
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

/// TI INA219 datasheet (SBOS448F, Aug 2008 – rev. Sep 2011), page 24, Table 3
/// "Configure/Measure/Calculate Example": a 10 A load at 12 V common mode through a 2 mΩ
/// shunt, Current_LSB 1 mA → Calibration 5000h (20480); the registers read back shunt
/// 07D0h (20 mV), bus 5D98h (2995 × 4 mV = 11.98 V), current 2710h (10.0 A), power 1766h
/// (5990 × 20 mW = 119.8 W).
#[test]
fn measure_reproduces_the_datasheet_table_3_example() {
    let cal = Calibration {
        register: 0x5000,
        current_lsb_a: 0.001,
    };
    let t = [
        T::write(A, vec![0x00, 0x39, 0x9F]),
        T::write(A, vec![0x05, 0x50, 0x00]),
        T::write_read(A, vec![0x02], vec![0x5D, 0x98]),
        T::write_read(A, vec![0x01], vec![0x07, 0xD0]),
        T::write_read(A, vec![0x04], vec![0x27, 0x10]),
        T::write_read(A, vec![0x03], vec![0x17, 0x66]),
    ];
    let mut ina = Ina219::new(Mock::new(&t), A, cal);
    ina.init().unwrap();
    let m = ina.measure().unwrap();
    assert!((m.bus_v - 11.98).abs() < 1e-9, "{m:?}");
    assert!((m.shunt_v - 0.020).abs() < 1e-9, "{m:?}");
    assert!((m.current_a - 10.0).abs() < 1e-9, "{m:?}");
    assert!((m.power_w - 119.8).abs() < 1e-9, "{m:?}");
    ina.destroy().done();
}
