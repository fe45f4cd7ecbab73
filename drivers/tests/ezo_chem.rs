//! EZO-EC, EZO-DO and EZO-ORP over the shared EZO layer, with the command strings and
//! replies of their datasheets' I2C pages.

use anemone_drivers::ezo::{Ezo, EzoError};
use anemone_drivers::ezo_do::{self, EzoDo, Oxygen};
use anemone_drivers::ezo_ec::{self, EzoEc};
use anemone_drivers::ezo_orp::{self, EzoOrp};
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

/// A reply: the response code, then the ASCII text, NUL-padded. The codes are the EZO
/// datasheets' "Response codes" page (I2C mode; EZO-DO datasheet V4.1 page 44, EZO-pH
/// V5.8 page 46): 1 successful request, 2 syntax error, 254 still processing, 255 no data
/// to send.
fn reply(code: u8, text: &str) -> Vec<u8> {
    let mut v = vec![0u8; 32];
    v[0] = code;
    v[1..1 + text.len()].copy_from_slice(text.as_bytes());
    v
}

fn cmd(addr: u8, c: &str) -> T {
    T::write(addr, c.as_bytes().to_vec())
}

fn ok(addr: u8) -> T {
    T::read(addr, reply(1, ""))
}

#[test]
fn ec_reads_compensated_and_calibrates() {
    let a = ezo_ec::DEFAULT_ADDRESS;
    let t = [
        cmd(a, "O,EC,1"),
        ok(a),
        cmd(a, "O,TDS,0"),
        ok(a),
        cmd(a, "O,S,0"),
        ok(a),
        cmd(a, "O,SG,0"),
        ok(a),
        cmd(a, "RT,19.50"),
        T::read(a, reply(1, "53142")),
        cmd(a, "R"),
        // Older firmware sends every output: EC comes first.
        T::read(a, reply(1, "1413,706,0.69,1.000")),
        cmd(a, "K,1.00"),
        ok(a),
        cmd(a, "Cal,dry"),
        ok(a),
        cmd(a, "Cal,low,12880"),
        ok(a),
        cmd(a, "Cal,high,80000"),
        ok(a),
        cmd(a, "Cal,?"),
        T::read(a, reply(1, "?CAL,2")),
    ];
    let mut ec = EzoEc::new(Mock::new(&t), a);
    let mut d = NoopDelay::new();
    ec.enable_conductivity_only(&mut d).unwrap();
    assert_eq!(ec.read_compensated(19.5, &mut d), Ok(53142.0));
    assert_eq!(ec.read(&mut d), Ok(1413.0));
    ec.set_probe_constant(1.0, &mut d).unwrap();
    ec.calibrate(ezo_ec::CalPoint::Dry, &mut d).unwrap();
    ec.calibrate(ezo_ec::CalPoint::Low(12880.0), &mut d)
        .unwrap();
    ec.calibrate(ezo_ec::CalPoint::High(80000.0), &mut d)
        .unwrap();
    assert_eq!(ec.ezo().calibration_points(&mut d), Ok(2));
    ec.destroy().done();
}

#[test]
fn ec_pending_then_ready_and_syntax_error() {
    let a = ezo_ec::DEFAULT_ADDRESS;
    let t = [
        cmd(a, "R"),
        T::read(a, reply(254, "")),
        T::read(a, reply(1, "50000")),
        cmd(a, "Cal,53000"),
        T::read(a, reply(2, "")),
    ];
    let mut ec = EzoEc::new(Mock::new(&t), a);
    let mut d = NoopDelay::new();
    assert_eq!(ec.read(&mut d), Ok(50000.0));
    assert_eq!(
        ec.calibrate(ezo_ec::CalPoint::Single(53000.0), &mut d),
        Err(EzoError::Syntax)
    );
    // A NaN is refused before anything is sent.
    assert_eq!(ec.read_compensated(f64::NAN, &mut d), Err(EzoError::Syntax));
    ec.destroy().done();
}

#[test]
fn do_compensates_and_reads_both_outputs() {
    let a = ezo_do::DEFAULT_ADDRESS;
    let t = [
        cmd(a, "O,mg,1"),
        ok(a),
        cmd(a, "O,%,1"),
        ok(a),
        cmd(a, "S,53000"),
        ok(a),
        cmd(a, "P,101.32"),
        ok(a),
        cmd(a, "RT,26.00"),
        T::read(a, reply(1, "6.35,98.7")),
        cmd(a, "R"),
        T::read(a, reply(1, "8.12")),
        cmd(a, "Cal"),
        ok(a),
        cmd(a, "Cal,0"),
        ok(a),
        cmd(a, "Cal,?"),
        T::read(a, reply(1, "?CAL,2")),
    ];
    let mut dev = EzoDo::new(Mock::new(&t), a);
    let mut d = NoopDelay::new();
    dev.enable_outputs(&mut d).unwrap();
    dev.set_salinity_conductivity(53000.0, &mut d).unwrap();
    dev.set_pressure_hpa(1013.2, &mut d).unwrap();
    assert_eq!(
        dev.read_compensated(26.0, &mut d),
        Ok(Oxygen {
            mg_per_l: 6.35,
            saturation_pct: Some(98.7)
        })
    );
    assert_eq!(
        dev.read(&mut d),
        Ok(Oxygen {
            mg_per_l: 8.12,
            saturation_pct: None
        })
    );
    dev.calibrate(ezo_do::CalPoint::Atmospheric, &mut d)
        .unwrap();
    dev.calibrate(ezo_do::CalPoint::Zero, &mut d).unwrap();
    assert_eq!(dev.ezo().calibration_points(&mut d), Ok(2));
    dev.destroy().done();
}

#[test]
fn orp_reads_and_calibrates() {
    let a = ezo_orp::DEFAULT_ADDRESS;
    let t = [
        cmd(a, "R"),
        T::read(a, reply(1, "209.6")),
        cmd(a, "R"),
        T::read(a, reply(1, "-48.2")),
        cmd(a, "Cal,225.0"),
        ok(a),
        cmd(a, "Status"),
        T::read(a, reply(1, "?STATUS,P,3.296")),
    ];
    let mut orp = EzoOrp::new(Mock::new(&t), a);
    let mut d = NoopDelay::new();
    assert_eq!(orp.read(&mut d), Ok(209.6));
    assert_eq!(orp.read(&mut d), Ok(-48.2));
    orp.calibrate(225.0, &mut d).unwrap();
    assert_eq!(orp.status(&mut d).map(|s| s.vcc), Ok(3.296));
    orp.destroy().done();
}

#[test]
fn absent_circuit_is_no_device_and_no_data_is_reported() {
    let a = ezo_orp::DEFAULT_ADDRESS;
    let t = [
        T::write(a, b"R".to_vec())
            .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)),
        cmd(a, "Cal,clear"),
        T::read(a, reply(255, "")),
    ];
    let mut ezo = Ezo::new(Mock::new(&t), a);
    let mut d = NoopDelay::new();
    let e = ezo
        .query(format_args!("R"), ezo_orp::LONG_WAIT_MS, &mut d, |_| {
            Some(())
        })
        .unwrap_err();
    assert!(e.is_no_device());
    assert_eq!(ezo.clear_calibration(&mut d), Err(EzoError::NoData));
    ezo.destroy().done();
}
