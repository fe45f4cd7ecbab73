use anemone_drivers::mcp3427::{Error, Gain, Mcp3427, Resolution, MAX_POLLS};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

const ADDR: u8 = 0x69;

/// One-shot on channel 0 at 16 bits, gain 1 (config 0x88): one read with RDY still 1,
/// then the result 0x7FFF — datasheet DS22226A table 4-4 p.16: VREF − 1 LSB ≈ 2.048 V.
#[test]
fn one_shot_channel_0_waits_for_ready() {
    let t = [
        T::write(ADDR, vec![0x88]),
        T::read(ADDR, vec![0x00, 0x00, 0x88]),
        T::read(ADDR, vec![0x7F, 0xFF, 0x08]),
    ];
    let mut dev = Mcp3427::new(Mock::new(&t), ADDR);
    let v = dev
        .read_volts(0, Resolution::Bits16, Gain::X1, &mut NoopDelay::new())
        .unwrap();
    assert!((v - 2.048).abs() < 62.5e-6, "{v}");
    dev.destroy().done();
}

/// Channel 1, 14 bits, gain 2 (config 0b1010_0101): −1 LSB (0xFFFF sign-extended) is
/// −250 µV / 2.
#[test]
fn one_shot_channel_1_negative() {
    let t = [
        T::write(ADDR, vec![0xA5]),
        T::read(ADDR, vec![0xFF, 0xFF, 0x25]),
    ];
    let mut dev = Mcp3427::new(Mock::new(&t), ADDR);
    let v = dev
        .read_volts(1, Resolution::Bits14, Gain::X2, &mut NoopDelay::new())
        .unwrap();
    assert_eq!(v, -0.000_125);
    dev.destroy().done();
}

#[test]
fn never_ready_mismatch_and_bad_channel() {
    let mut t = vec![T::write(ADDR, vec![0x88])];
    for _ in 0..=MAX_POLLS {
        t.push(T::read(ADDR, vec![0, 0, 0x88]));
    }
    let mut dev = Mcp3427::new(Mock::new(&t), ADDR);
    let err = dev.read_code(0, Resolution::Bits16, Gain::X1, &mut NoopDelay::new());
    assert_eq!(err, Err(Error::NotReady));
    dev.destroy().done();

    // A chip that answers another configuration is not the MCP3427 we set up.
    let t = [T::write(ADDR, vec![0x88]), T::read(ADDR, vec![0, 0, 0x10])];
    let mut dev = Mcp3427::new(Mock::new(&t), ADDR);
    let err = dev.read_code(0, Resolution::Bits16, Gain::X1, &mut NoopDelay::new());
    assert_eq!(
        err,
        Err(Error::ConfigMismatch {
            written: 0x88,
            read: 0x10
        })
    );
    dev.destroy().done();

    let mut dev = Mcp3427::new(Mock::new(&[]), ADDR);
    let err = dev.read_code(2, Resolution::Bits16, Gain::X1, &mut NoopDelay::new());
    assert_eq!(err, Err(Error::Channel(2)));
    dev.destroy().done();
}
