use anemone_drivers::ds18b20::{
    crc8, decode_scratchpad, parse_w1_slave, scratchpad_for, Ds18b20Error, W1Text,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn parser_never_panics_on_arbitrary_text(s in ".{0,200}") {
        let _ = parse_w1_slave(&s);
    }

    #[test]
    fn parser_never_panics_on_w1_like_text(
        bytes in prop::collection::vec("[0-9a-fA-Fx ]{1,3}", 0..12),
        crc in "[0-9a-f]{0,3}",
        verdict in "(YES|NO|yes|)",
        t in "-?[0-9]{0,12}",
    ) {
        let b = bytes.join(" ");
        let text = format!("{b} : crc={crc} {verdict}\n{b} t={t}\n");
        let _ = parse_w1_slave(&text);
    }

    #[test]
    fn arbitrary_scratchpads_decode_or_error(sp in any::<[u8; 9]>()) {
        let decoded = decode_scratchpad(&sp);
        let parsed = parse_w1_slave(W1Text::from_scratchpad(&sp).as_str());
        prop_assert_eq!(decoded, parsed);
        if let Ok(c) = decoded {
            prop_assert!((-55.0..=125.0).contains(&c));
        }
    }

    #[test]
    fn simulator_round_trip(c in -55.0f64..=125.0) {
        let sp = scratchpad_for(c);
        prop_assert_eq!(crc8(&sp), 0);
        let got = parse_w1_slave(W1Text::from_scratchpad(&sp).as_str());
        if sp[0] == 0x50 && sp[1] == 0x05 {
            prop_assert_eq!(got, Err(Ds18b20Error::PowerOnValue));
        } else {
            let got = got.map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert!((got - c).abs() <= 1.0 / 32.0 + 1e-12);
        }
    }
}
