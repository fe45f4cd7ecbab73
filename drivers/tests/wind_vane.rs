use anemone_drivers::wind_vane::{VaneError, VaneTable, SPARKFUN_80422_OHMS};
use proptest::prelude::*;

proptest! {
    #[test]
    fn lookup_never_panics(volts in any::<f64>(), tol in any::<f64>(), vref in any::<f64>()) {
        let t = VaneTable::new(&SPARKFUN_80422_OHMS, 10_000.0, vref);
        match t.direction(volts, tol) {
            Ok(deg) => prop_assert!((0.0..360.0).contains(&deg)),
            Err(VaneError::Unmatched { nearest_deg, .. }) => {
                prop_assert!((0.0..360.0).contains(&nearest_deg));
            }
        }
        let _ = t.voltage_for_direction(volts);
        let _ = t.voltage(usize::MAX);
    }

    #[test]
    fn simulator_voltage_maps_back(deg in -720.0f64..720.0) {
        let t = VaneTable::sparkfun_80422(3.3);
        let v = t.voltage_for_direction(deg);
        let got = t.direction(v, 1e-9).unwrap();
        // The nearest 22.5° step, wrapped.
        let diff = (got - deg).rem_euclid(360.0);
        prop_assert!(diff <= 11.25 + 1e-9 || diff >= 360.0 - 11.25 - 1e-9, "{} -> {}", deg, got);
    }
}
