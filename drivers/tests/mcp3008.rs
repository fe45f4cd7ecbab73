use anemone_drivers::mcp3008::{mcp3008_volts, Error, Mcp3008};
use embedded_hal_mock::eh1::spi::{Mock, Transaction as T};

#[test]
fn reads_each_channel() {
    let mut t = Vec::new();
    for ch in 0..8u8 {
        t.push(T::transaction_start());
        // The chip answers with don't-care bits in b1's upper bits; only b1 & 0x03 counts.
        t.push(T::transfer_in_place(
            vec![0x01, 0x80 | (ch << 4), 0x00],
            vec![0xFF, 0xFC | (ch & 0x03), 0x40 + ch],
        ));
        t.push(T::transaction_end());
    }
    let mut adc = Mcp3008::new(Mock::new(&t));
    for ch in 0..8u8 {
        let counts = adc.read(ch).unwrap();
        assert_eq!(counts, (u16::from(ch & 0x03) << 8) | u16::from(0x40 + ch));
    }
    adc.destroy().done();
}

#[test]
fn read_volts() {
    let t = [
        T::transaction_start(),
        T::transfer_in_place(vec![0x01, 0x90, 0x00], vec![0x00, 0x02, 0x00]),
        T::transaction_end(),
    ];
    let mut adc = Mcp3008::new(Mock::new(&t));
    assert_eq!(adc.read_volts(1, 3.3).unwrap(), mcp3008_volts(512, 3.3));
    adc.destroy().done();
}

#[test]
fn invalid_channel_sends_nothing() {
    let mut adc = Mcp3008::new(Mock::new(&[]));
    assert_eq!(adc.read(8), Err(Error::InvalidChannel(8)));
    adc.destroy().done();
}
