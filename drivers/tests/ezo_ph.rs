use anemone_drivers::ezo_ph::{parse_reply, CalPoint, EzoError, EzoPh, Slope, Status};
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};
use proptest::prelude::*;

const ADDR: u8 = 0x63;

fn reply(code: u8, text: &str) -> Vec<u8> {
    let mut v = vec![0u8; 32];
    v[0] = code;
    v[1..1 + text.len()].copy_from_slice(text.as_bytes());
    v
}

fn cmd(c: &str) -> T {
    T::write(ADDR, c.as_bytes().to_vec())
}

#[test]
fn read_ph() {
    let t = [cmd("R"), T::read(ADDR, reply(1, "9.560"))];
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    assert_eq!(ezo.read(&mut NoopDelay::new()), Ok(9.56));
    ezo.destroy().done();
}

#[test]
fn compensated_read_and_temperature() {
    let t = [
        cmd("RT,19.50"),
        T::read(ADDR, reply(1, "7.012")),
        cmd("T,-1.25"),
        T::read(ADDR, reply(1, "")),
    ];
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    let mut d = NoopDelay::new();
    assert_eq!(ezo.read_compensated(19.5, &mut d), Ok(7.012));
    assert_eq!(ezo.set_temperature(-1.25, &mut d), Ok(()));
    ezo.destroy().done();
}

#[test]
fn calibration_commands() {
    let t = [
        cmd("Cal,mid,7.00"),
        T::read(ADDR, reply(1, "")),
        cmd("Cal,low,4.00"),
        T::read(ADDR, reply(1, "")),
        cmd("Cal,high,10.00"),
        T::read(ADDR, reply(1, "")),
        cmd("Cal,?"),
        T::read(ADDR, reply(1, "?CAL,3")),
        cmd("Slope,?"),
        T::read(ADDR, reply(1, "?Slope,99.7,100.3,-0.89")),
        cmd("Cal,clear"),
        T::read(ADDR, reply(1, "")),
        cmd("Status"),
        T::read(ADDR, reply(1, "?STATUS,P,5.038")),
    ];
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    let mut d = NoopDelay::new();
    ezo.calibrate(CalPoint::Mid, 7.0, &mut d).unwrap();
    ezo.calibrate(CalPoint::Low, 4.0, &mut d).unwrap();
    ezo.calibrate(CalPoint::High, 10.0, &mut d).unwrap();
    assert_eq!(ezo.calibration_points(&mut d), Ok(3));
    assert_eq!(
        ezo.slope(&mut d),
        Ok(Slope {
            acid_pct: 99.7,
            base_pct: 100.3,
            zero_offset_mv: Some(-0.89)
        })
    );
    ezo.clear_calibration(&mut d).unwrap();
    assert_eq!(
        ezo.status(&mut d),
        Ok(Status {
            restart_reason: 'P',
            vcc: 5.038
        })
    );
    ezo.destroy().done();
}

#[test]
fn pending_then_success() {
    let t = [
        cmd("R"),
        T::read(ADDR, reply(254, "")),
        T::read(ADDR, reply(1, "4.001")),
    ];
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    assert_eq!(ezo.read(&mut NoopDelay::new()), Ok(4.001));
    ezo.destroy().done();
}

#[test]
fn pending_forever() {
    let mut t = vec![cmd("R")];
    for _ in 0..4 {
        t.push(T::read(ADDR, reply(254, "")));
    }
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    assert_eq!(ezo.read(&mut NoopDelay::new()), Err(EzoError::Pending));
    ezo.destroy().done();
}

#[test]
fn syntax_error() {
    let t = [cmd("Cal,?"), T::read(ADDR, reply(2, ""))];
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    assert_eq!(
        ezo.calibration_points(&mut NoopDelay::new()),
        Err(EzoError::Syntax)
    );
    ezo.destroy().done();
}

#[test]
fn no_data() {
    let t = [cmd("R"), T::read(ADDR, reply(255, ""))];
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    assert_eq!(ezo.read(&mut NoopDelay::new()), Err(EzoError::NoData));
    ezo.destroy().done();
}

#[test]
fn bad_reply() {
    let t = [
        cmd("R"),
        T::read(ADDR, reply(1, "pH?")),
        cmd("Status"),
        T::read(ADDR, reply(1, "?STATUS")),
    ];
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    let mut d = NoopDelay::new();
    assert_eq!(ezo.read(&mut d), Err(EzoError::BadReply));
    assert_eq!(ezo.status(&mut d), Err(EzoError::BadReply));
    ezo.destroy().done();
}

#[test]
fn no_device() {
    let t = [cmd("R").with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))];
    let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
    let err = ezo.read(&mut NoopDelay::new()).unwrap_err();
    assert!(err.is_no_device());
    ezo.destroy().done();
}

#[test]
fn non_finite_argument_is_not_sent() {
    let mut ezo = EzoPh::new(Mock::new(&[]), ADDR);
    assert_eq!(
        ezo.read_compensated(f64::NAN, &mut NoopDelay::new()),
        Err(EzoError::Syntax)
    );
    ezo.destroy().done();
}

proptest! {
    #[test]
    fn parse_reply_never_panics(buf in prop::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(s) = parse_reply(&buf) {
            prop_assert!(s.is_ascii());
            prop_assert_eq!(buf[0], 1);
        }
    }

    #[test]
    fn text_replies_round_trip(text in "[ -~]{0,30}") {
        let buf = reply(1, &text);
        prop_assert_eq!(parse_reply(&buf), Ok(text.trim()));
    }

    #[test]
    fn driver_never_panics_on_arbitrary_replies(buf in prop::collection::vec(any::<u8>(), 32)) {
        // A 254 reply asks for re-reads; script three more of the same, then give up.
        let reads = if buf[0] == 254 { 4 } else { 1 };
        let mut t = vec![cmd("Slope,?")];
        for _ in 0..reads {
            t.push(T::read(ADDR, buf.clone()));
        }
        let mut ezo = EzoPh::new(Mock::new(&t), ADDR);
        let r = ezo.slope(&mut NoopDelay::new());
        if buf[0] == 254 {
            prop_assert_eq!(r, Err(EzoError::Pending));
        }
        ezo.destroy().done();
    }
}
