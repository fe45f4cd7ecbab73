use anemone_drivers::ltr390::{Error, Ltr390, ADDRESS};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

/// Ambient light at gain 1, 18 bits (5000 counts = 3000 lx), then UV at gain 18, 20 bits
/// (6900 counts = UVI 3), the datasheet's lux and UVI formulas; standby after.
#[test]
fn measure_light_then_uv() {
    let t = [
        T::write_read(ADDRESS, vec![0x06], vec![0xB2]),
        T::write(ADDRESS, vec![0x05, 0x00]),
        T::write(ADDRESS, vec![0x04, 0x22]),
        T::write(ADDRESS, vec![0x00, 0x02]),
        T::write_read(ADDRESS, vec![0x07], vec![0x00]),
        T::write_read(ADDRESS, vec![0x07], vec![0x08]),
        T::write_read(ADDRESS, vec![0x0D], vec![0x88, 0x13, 0x00]),
        T::write(ADDRESS, vec![0x05, 0x04]),
        T::write(ADDRESS, vec![0x04, 0x02]),
        T::write(ADDRESS, vec![0x00, 0x0A]),
        T::write_read(ADDRESS, vec![0x07], vec![0x08]),
        T::write_read(ADDRESS, vec![0x10], vec![0xF4, 0x1A, 0x00]),
        T::write(ADDRESS, vec![0x00, 0x00]),
    ];
    let mut dev = Ltr390::new(Mock::new(&t));
    dev.init().unwrap();
    let m = dev.measure(1.0, &mut NoopDelay::new()).unwrap();
    assert_eq!(m.als, 5000);
    assert_eq!(m.uvs, 6900);
    assert_eq!(m.lux, 3000.0);
    assert_eq!(m.uv_index, 3.0);
    dev.destroy().done();
}

#[test]
fn wrong_chip_and_no_data() {
    let t = [T::write_read(ADDRESS, vec![0x06], vec![0x72])];
    let mut dev = Ltr390::new(Mock::new(&t));
    assert_eq!(dev.init(), Err(Error::WrongChip(0x72)));
    dev.destroy().done();

    let mut t = vec![
        T::write(ADDRESS, vec![0x05, 0x00]),
        T::write(ADDRESS, vec![0x04, 0x22]),
        T::write(ADDRESS, vec![0x00, 0x02]),
    ];
    for _ in 0..=anemone_drivers::ltr390::MAX_POLLS {
        t.push(T::write_read(ADDRESS, vec![0x07], vec![0x20]));
    }
    let mut dev = Ltr390::new(Mock::new(&t));
    assert_eq!(
        dev.measure(1.0, &mut NoopDelay::new()),
        Err(Error::NotReady)
    );
    dev.destroy().done();
}
