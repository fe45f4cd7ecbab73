use anemone_drivers::ads1115::{Ads1115, Error, Fsr};
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

const ADDR: u8 = 0x48;

#[test]
fn single_shot_read() {
    let t = [
        // AIN2, ±4.096 V: 0xE383.
        T::write(ADDR, vec![0x01, 0xE3, 0x83]),
        // Still converting (OS = 0), then idle (OS = 1).
        T::write_read(ADDR, vec![0x01], vec![0x63, 0x83]),
        T::write_read(ADDR, vec![0x01], vec![0xE3, 0x83]),
        // 8000 counts × 125 µV = 1.000 V.
        T::write_read(ADDR, vec![0x00], vec![0x1F, 0x40]),
    ];
    let mut adc = Ads1115::new(Mock::new(&t), ADDR);
    let v = adc
        .read_volts(2, Fsr::V4_096, &mut NoopDelay::new())
        .unwrap();
    assert_eq!(v, 1.0);
    adc.destroy().done();
}

#[test]
fn negative_result() {
    let t = [
        T::write(ADDR, vec![0x01, 0xC5, 0x83]),
        T::write_read(ADDR, vec![0x01], vec![0xC5, 0x83]),
        T::write_read(ADDR, vec![0x00], vec![0xFF, 0xF0]),
    ];
    let mut adc = Ads1115::new(Mock::new(&t), ADDR);
    let v = adc
        .read_volts(0, Fsr::V2_048, &mut NoopDelay::new())
        .unwrap();
    assert_eq!(v, -16.0 * 62.5e-6);
    adc.destroy().done();
}

#[test]
fn no_device() {
    let t = [T::write(ADDR, vec![0x01, 0xC5, 0x83])
        .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))];
    let mut adc = Ads1115::new(Mock::new(&t), ADDR);
    let err = adc
        .read_volts(0, Fsr::V2_048, &mut NoopDelay::new())
        .unwrap_err();
    assert!(err.is_no_device());
    adc.destroy().done();
}

#[test]
fn conversion_never_finishes() {
    let mut t = vec![T::write(ADDR, vec![0x01, 0xC5, 0x83])];
    for _ in 0..10 {
        t.push(T::write_read(ADDR, vec![0x01], vec![0x45, 0x83]));
    }
    let mut adc = Ads1115::new(Mock::new(&t), ADDR);
    assert_eq!(
        adc.read_volts(0, Fsr::V2_048, &mut NoopDelay::new()),
        Err(Error::NotReady)
    );
    adc.destroy().done();
}

#[test]
fn invalid_channel_sends_nothing() {
    let mut adc = Ads1115::new(Mock::new(&[]), ADDR);
    assert_eq!(
        adc.read_volts(4, Fsr::V2_048, &mut NoopDelay::new()),
        Err(Error::InvalidChannel(4))
    );
    adc.destroy().done();
}
