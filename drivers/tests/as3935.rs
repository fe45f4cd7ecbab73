use anemone_drivers::as3935::{As3935, Distance, Error, Interrupt, Location, Settings};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

const ADDR: u8 = 0x03;

/// Init: defaults, RCO calibration, indoor gain (0x24), noise floor 3 with watchdog 2
/// (0x32), 5 strikes and spike rejection 2 (statistics bits kept), disturbers masked.
#[test]
fn init_writes_the_settings() {
    let t = [
        T::write(ADDR, vec![0x3C, 0x96]),
        T::write(ADDR, vec![0x3D, 0x96]),
        T::write(ADDR, vec![0x00, 0x24]),
        T::write(ADDR, vec![0x01, 0x32]),
        T::write_read(ADDR, vec![0x02], vec![0xC2]),
        T::write(ADDR, vec![0x02, 0xD2]),
        T::write_read(ADDR, vec![0x03], vec![0x00]),
        T::write(ADDR, vec![0x03, 0x20]),
    ];
    let mut dev = As3935::new(Mock::new(&t), ADDR);
    let s = Settings {
        location: Location::Indoor,
        noise_floor: 3,
        min_strikes: 5,
        mask_disturbers: true,
        ..Settings::default()
    };
    dev.init(s, &mut NoopDelay::new()).unwrap();
    dev.destroy().done();
}

/// A lightning interrupt (INT 1000), energy 0x01_2345 and distance 0x0E (14 km, the
/// datasheet's distance table); then a disturber (0100) and noise (0001) with no strike.
#[test]
fn events_from_the_interrupt_register() {
    let t = [
        T::write_read(ADDR, vec![0x03], vec![0x08]),
        T::write_read(ADDR, vec![0x04], vec![0x45, 0x23, 0x01, 0x0E]),
        T::write_read(ADDR, vec![0x03], vec![0x04]),
        T::write_read(ADDR, vec![0x03], vec![0x01]),
        T::write_read(ADDR, vec![0x03], vec![0x06]),
    ];
    let mut dev = As3935::new(Mock::new(&t), ADDR);
    let mut d = NoopDelay::new();
    let e = dev.read_event(&mut d).unwrap();
    assert_eq!(e.reason, Interrupt::Lightning);
    let s = e.strike.unwrap();
    assert_eq!(s.energy, 0x01_2345);
    assert_eq!(s.distance, Distance::Km(14));
    let e = dev.read_event(&mut d).unwrap();
    assert_eq!((e.reason, e.strike), (Interrupt::Disturber, None));
    let e = dev.read_event(&mut d).unwrap();
    assert_eq!((e.reason, e.strike), (Interrupt::Noise, None));
    assert_eq!(dev.read_event(&mut d), Err(Error::InvalidInterrupt(0x06)));
    dev.destroy().done();
}

#[test]
fn noise_floor_change_and_bad_settings() {
    let t = [
        T::write_read(ADDR, vec![0x01], vec![0x22]),
        T::write(ADDR, vec![0x01, 0x52]),
    ];
    let mut dev = As3935::new(Mock::new(&t), ADDR);
    dev.set_noise_floor(5).unwrap();
    assert_eq!(
        dev.set_noise_floor(8),
        Err(Error::Setting("noise floor level is 0–7"))
    );
    let s = Settings {
        min_strikes: 3,
        ..Settings::default()
    };
    assert!(matches!(
        dev.init(s, &mut NoopDelay::new()),
        Err(Error::Setting(_))
    ));
    dev.destroy().done();
}
