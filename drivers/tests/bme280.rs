use anemone_drivers::bme280::{Bme280, Calibration, Error, Mode, Raw, Register, Settings};
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

const ADDR: u8 = 0x76;

fn init_transactions(settings_ctrl_hum: u8, config: u8, ctrl_meas: u8) -> Vec<T> {
    let (b1, b2) = Calibration::datasheet_example().to_registers();
    vec![
        T::write_read(ADDR, vec![0xD0], vec![0x60]),
        T::write(ADDR, vec![0xE0, 0xB6]),
        // NVM copy still running once, then done.
        T::write_read(ADDR, vec![0xF3], vec![0x01]),
        T::write_read(ADDR, vec![0xF3], vec![0x00]),
        T::write_read(ADDR, vec![0x88], b1.to_vec()),
        T::write_read(ADDR, vec![0xE1], b2.to_vec()),
        T::write(ADDR, vec![0xF2, settings_ctrl_hum]),
        T::write(ADDR, vec![0xF5, config]),
        T::write(ADDR, vec![0xF4, ctrl_meas]),
    ]
}

fn example_data() -> Vec<u8> {
    Raw {
        adc_t: 519_888,
        adc_p: 415_148,
        adc_h: 30_000,
    }
    .to_registers()
    .to_vec()
}

#[test]
fn init_and_forced_measurement() {
    // ×1 oversampling: osrs 0b001; filter 4 → 0b010; forced: sleep in init.
    let mut t = init_transactions(0x01, 0b010 << 2, (0b001 << 5) | (0b001 << 2));
    t.extend([
        T::write(ADDR, vec![0xF4, (0b001 << 5) | (0b001 << 2) | 0b01]),
        T::write_read(ADDR, vec![0xF3], vec![0x08]),
        T::write_read(ADDR, vec![0xF3], vec![0x00]),
        T::write_read(ADDR, vec![0xF7], example_data()),
    ]);
    let mut dev = Bme280::new(Mock::new(&t), ADDR);
    let mut delay = NoopDelay::new();
    dev.init(
        &mut delay,
        Settings {
            mode: Mode::Forced,
            oversampling: 1,
            iir_filter: 4,
        },
    )
    .unwrap();
    assert_eq!(dev.calibration(), Some(&Calibration::datasheet_example()));
    let m = dev.measure(&mut delay).unwrap();
    assert_eq!(m.temperature_c, 25.08);
    assert!((m.pressure_hpa - 1006.5325).abs() < 1e-3);
    assert!((m.humidity_pct - 55.0).abs() < 0.01);
    dev.destroy().done();
}

#[test]
fn init_normal_mode_and_read() {
    // ×16: 0b101; filter 16: 0b100; standby 1000 ms: 0b101; normal: 0b11.
    let mut t = init_transactions(
        0x05,
        (0b101 << 5) | (0b100 << 2),
        (0b101 << 5) | (0b101 << 2) | 0b11,
    );
    t.push(T::write_read(ADDR, vec![0xF7], example_data()));
    let mut dev = Bme280::new(Mock::new(&t), ADDR);
    let mut delay = NoopDelay::new();
    dev.init(
        &mut delay,
        Settings {
            mode: Mode::Normal,
            oversampling: 16,
            iir_filter: 16,
        },
    )
    .unwrap();
    assert_eq!(dev.measure(&mut delay).unwrap().temperature_c, 25.08);
    dev.destroy().done();
}

#[test]
fn no_device_is_a_nack() {
    let t = [T::write_read(ADDR, vec![0xD0], vec![0x00])
        .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))];
    let mut dev = Bme280::new(Mock::new(&t), ADDR);
    let err = dev
        .init(&mut NoopDelay::new(), Settings::default())
        .unwrap_err();
    assert!(err.is_no_device());
    assert!(matches!(err, Error::Bus(_)));
    dev.destroy().done();
}

#[test]
fn other_bus_errors_are_not_no_device() {
    let t = [T::write_read(ADDR, vec![0xD0], vec![0x00]).with_error(ErrorKind::Bus)];
    let mut dev = Bme280::new(Mock::new(&t), ADDR);
    let err = dev
        .init(&mut NoopDelay::new(), Settings::default())
        .unwrap_err();
    assert!(!err.is_no_device());
    dev.destroy().done();
}

#[test]
fn bmp280_is_reported_as_such() {
    let t = [T::write_read(ADDR, vec![0xD0], vec![0x58])];
    let mut dev = Bme280::new(Mock::new(&t), ADDR);
    let err = dev
        .init(&mut NoopDelay::new(), Settings::default())
        .unwrap_err();
    assert_eq!(err, Error::Bmp280);
    assert!(err.to_string().contains("no humidity"));
    dev.destroy().done();
}

#[test]
fn unknown_chip() {
    let t = [T::write_read(ADDR, vec![0xD0], vec![0x61])];
    let mut dev = Bme280::new(Mock::new(&t), ADDR);
    let err = dev
        .init(&mut NoopDelay::new(), Settings::default())
        .unwrap_err();
    assert_eq!(err, Error::UnknownChip(0x61));
    assert!(err.to_string().contains("0x61"));
    dev.destroy().done();
}

#[test]
fn nvm_copy_never_finishes() {
    let mut t = vec![
        T::write_read(ADDR, vec![0xD0], vec![0x60]),
        T::write(ADDR, vec![0xE0, 0xB6]),
    ];
    for _ in 0..20 {
        t.push(T::write_read(
            ADDR,
            vec![0xF3],
            vec![Register::STATUS_IM_UPDATE],
        ));
    }
    let mut dev = Bme280::new(Mock::new(&t), ADDR);
    let err = dev
        .init(&mut NoopDelay::new(), Settings::default())
        .unwrap_err();
    assert_eq!(err, Error::NotReady);
    dev.destroy().done();
}

#[test]
fn measure_before_init_is_not_ready() {
    let mut dev = Bme280::new(Mock::new(&[]), ADDR);
    assert_eq!(dev.measure(&mut NoopDelay::new()), Err(Error::NotReady));
    dev.destroy().done();
}

#[test]
fn skipped_samples_are_invalid_data() {
    for data in [
        [0x80, 0x00, 0x00, 0x7E, 0xED, 0x00, 0x75, 0x30], // pressure skipped
        [0x65, 0x5A, 0xC0, 0x80, 0x00, 0x00, 0x75, 0x30], // temperature skipped
        [0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x80, 0x00], // humidity skipped
    ] {
        let mut t = init_transactions(0x01, 0, (0b001 << 5) | (0b001 << 2));
        t.extend([
            T::write(ADDR, vec![0xF4, (0b001 << 5) | (0b001 << 2) | 0b01]),
            T::write_read(ADDR, vec![0xF3], vec![0x00]),
            T::write_read(ADDR, vec![0xF7], data.to_vec()),
        ]);
        let mut dev = Bme280::new(Mock::new(&t), ADDR);
        let mut delay = NoopDelay::new();
        dev.init(&mut delay, Settings::default()).unwrap();
        assert_eq!(dev.measure(&mut delay), Err(Error::InvalidData));
        dev.destroy().done();
    }
}
