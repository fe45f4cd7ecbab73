use anemone_drivers::tsl2591::{lux, Error, Gain, IntegrationTime, Tsl2591, ADDRESS};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

/// The transactions of one integration at `control`, answering `ch0`/`ch1`.
fn integration(control: u8, ch0: u16, ch1: u16) -> Vec<T> {
    let [a, b] = ch0.to_le_bytes();
    let [c, d] = ch1.to_le_bytes();
    vec![
        T::write(ADDRESS, vec![0xA0, 0x01]),
        T::write(ADDRESS, vec![0xA1, control]),
        T::write(ADDRESS, vec![0xA0, 0x03]),
        T::write_read(ADDRESS, vec![0xB3], vec![0x01]),
        T::write_read(ADDRESS, vec![0xB4], vec![a, b, c, d]),
    ]
}

/// Medium gain (0x10) at 100 ms saturates (CH0 36000 of 36863), so the driver steps to
/// low gain (0x00) and computes lux there.
#[test]
fn auto_range_down_on_saturation() {
    let mut t = vec![T::write_read(ADDRESS, vec![0xB2], vec![0x50])];
    t.extend(integration(0x10, 36_000, 9_000));
    t.extend(integration(0x00, 20_000, 4_000));
    let mut dev = Tsl2591::new(Mock::new(&t));
    dev.init().unwrap();
    let m = dev.measure_auto(&mut NoopDelay::new()).unwrap();
    let t100 = IntegrationTime::from_ms(100).unwrap();
    assert_eq!(m.gain, Gain::Low);
    assert_eq!(m.lux, lux(20_000, 4_000, Gain::Low, t100).unwrap());
    // 16000 · 0.8 / (100/408) = 52224 lx: daylight.
    assert!((m.lux - 52_224.0).abs() < 1e-6, "{}", m.lux);
    dev.destroy().done();
}

/// In the dark at medium gain, CH0 = 100 (below 1 % of full scale): up to high gain (0x20).
#[test]
fn auto_range_up_in_the_dark() {
    let mut t = integration(0x10, 100, 20);
    t.extend(integration(0x20, 1_630, 330));
    let mut dev = Tsl2591::new(Mock::new(&t));
    let m = dev.measure_auto(&mut NoopDelay::new()).unwrap();
    assert_eq!(m.gain, Gain::High);
    assert_eq!(dev.settings().0, Gain::High);
    dev.destroy().done();
}

#[test]
fn saturated_at_lowest_and_bad_data() {
    let mut dev_t = Vec::new();
    for control in [0x10, 0x00] {
        dev_t.extend(integration(control, 36_863, 36_000));
    }
    let mut dev = Tsl2591::new(Mock::new(&dev_t));
    assert_eq!(
        dev.measure_auto(&mut NoopDelay::new()),
        Err(Error::Saturated)
    );
    dev.destroy().done();

    let t = integration(0x10, 1_000, 2_000);
    let mut dev = Tsl2591::new(Mock::new(&t));
    assert_eq!(
        dev.measure_auto(&mut NoopDelay::new()),
        Err(Error::InvalidData {
            ch0: 1_000,
            ch1: 2_000
        })
    );
    dev.destroy().done();

    let t = [T::write_read(ADDRESS, vec![0xB2], vec![0x51])];
    let mut dev = Tsl2591::new(Mock::new(&t));
    assert_eq!(dev.init(), Err(Error::WrongChip(0x51)));
    dev.destroy().done();
}
