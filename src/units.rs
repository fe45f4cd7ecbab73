//! Display units: the one table that turns a stored (SI) value into what a reader asked for.
//!
//! Stored and published values never change unit: a reading is in its quantity's unit
//! ([`Quantity::unit`]) everywhere it is kept or leaves on MQTT. `stats`, `export` and the
//! web page may *show* values in imperial units; they all convert through this table, and
//! the web page receives the same table as JSON ([`conversions`]) instead of a copy in script.
//!
//! Every conversion here is affine (`shown = value × scale + offset`), so the table is
//! plain data and a difference (a temperature range, a rain total) converts with `scale` only.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::reading::Quantity;

/// The unit system a reader asked to see values in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitSystem {
    /// The stored units: °C, hPa, m/s, mm, mm/h (the data model's units).
    #[default]
    Metric,
    /// °F, inHg, mph, in, in/h, mi; units with no common imperial form (%, °, pH, µS/cm, mg/L,
    /// lx, UV index, Ω, counts, PSU, mV, ppm, V, A, W)
    /// stay as they are.
    Imperial,
}

impl UnitSystem {
    /// The name used on the command line and in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitSystem::Metric => "metric",
            UnitSystem::Imperial => "imperial",
        }
    }
}

impl fmt::Display for UnitSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A unit system name that is neither `metric` nor `imperial`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown unit system `{0}`: use `metric` or `imperial`")]
pub struct UnknownUnitSystem(pub String);

impl FromStr for UnitSystem {
    type Err = UnknownUnitSystem;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "metric" | "si" => Ok(UnitSystem::Metric),
            "imperial" | "us" => Ok(UnitSystem::Imperial),
            _ => Err(UnknownUnitSystem(s.to_string())),
        }
    }
}

/// One affine conversion from a stored unit to an imperial one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Conversion {
    /// The stored unit, as [`Quantity::unit`] spells it.
    pub from: &'static str,
    /// The unit shown.
    pub to: &'static str,
    /// `shown = value × scale + offset`.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// Decimals worth showing in the shown unit.
    pub decimals: u8,
}

/// The imperial conversions, one per stored unit that has one.
/// Exact factors: 1 in = 25.4 mm, 1 mile = 1609.344 m, 1 inHg = 33.8638866667 hPa (at 0 °C).
const IMPERIAL: &[Conversion] = &[
    Conversion {
        from: "°C",
        to: "°F",
        scale: 1.8,
        offset: 32.0,
        decimals: 1,
    },
    Conversion {
        from: "hPa",
        to: "inHg",
        scale: 1.0 / 33.863_886_666_7,
        offset: 0.0,
        decimals: 2,
    },
    Conversion {
        from: "m/s",
        to: "mph",
        scale: 3600.0 / 1609.344,
        offset: 0.0,
        decimals: 1,
    },
    Conversion {
        from: "mm",
        to: "in",
        scale: 1.0 / 25.4,
        offset: 0.0,
        decimals: 2,
    },
    Conversion {
        from: "mm/h",
        to: "in/h",
        scale: 1.0 / 25.4,
        offset: 0.0,
        decimals: 2,
    },
    Conversion {
        from: "m",
        to: "ft",
        scale: 1.0 / 0.3048,
        offset: 0.0,
        decimals: 0,
    },
    Conversion {
        from: "km",
        to: "mi",
        scale: 1000.0 / 1609.344,
        offset: 0.0,
        decimals: 0,
    },
];

/// The conversion table for a unit system (empty for metric): what the web page receives.
pub fn conversions(system: UnitSystem) -> &'static [Conversion] {
    match system {
        UnitSystem::Metric => &[],
        UnitSystem::Imperial => IMPERIAL,
    }
}

/// The conversion that applies to values in `unit` under `system`, if any.
pub fn conversion_for(unit: &str, system: UnitSystem) -> Option<&'static Conversion> {
    conversions(system).iter().find(|c| c.from == unit)
}

/// The unit a value of `quantity` is shown in under `system`.
pub fn display_unit(quantity: Quantity, system: UnitSystem) -> &'static str {
    conversion_for(quantity.unit(), system).map_or(quantity.unit(), |c| c.to)
}

/// A value of `quantity` (in its stored unit) as shown under `system`.
pub fn display_value(quantity: Quantity, value: f64, system: UnitSystem) -> f64 {
    conversion_for(quantity.unit(), system).map_or(value, |c| value * c.scale + c.offset)
}

/// A *difference* of two values of `quantity` (a range, a change) as shown under `system`:
/// the scale applies, the offset does not (a 10 °C range is an 18 °F range).
pub fn display_difference(quantity: Quantity, delta: f64, system: UnitSystem) -> f64 {
    conversion_for(quantity.unit(), system).map_or(delta, |c| delta * c.scale)
}

/// A value of `quantity` as shown under `system`, rounded to the decimals the table gives
/// its shown unit (metric values are returned as they are: they are the stored ones).
pub fn display_rounded(quantity: Quantity, value: f64, system: UnitSystem) -> f64 {
    match conversion_for(quantity.unit(), system) {
        Some(c) => {
            let f = 10f64.powi(i32::from(c.decimals));
            ((value * c.scale + c.offset) * f).round() / f
        }
        None => value,
    }
}

/// A *sum* of `count` values of `quantity` as shown under `system`: the sum of the shown
/// values (`sum × scale + offset × count`), e.g. a rain total in inches.
pub fn display_sum(quantity: Quantity, sum: f64, count: u64, system: UnitSystem) -> f64 {
    conversion_for(quantity.unit(), system).map_or(sum, |c| sum * c.scale + c.offset * count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn reference_points_convert() {
        let imp = UnitSystem::Imperial;
        assert!(close(
            display_value(Quantity::AirTemperature, 100.0, imp),
            212.0,
            1e-9
        ));
        assert!(close(
            display_value(Quantity::AirTemperature, -40.0, imp),
            -40.0,
            1e-9
        ));
        assert!(close(
            display_value(Quantity::AirPressure, 1013.25, imp),
            29.921,
            1e-3
        ));
        assert!(close(
            display_value(Quantity::WindSpeed, 10.0, imp),
            22.369,
            1e-3
        ));
        assert!(close(display_value(Quantity::Rain, 25.4, imp), 1.0, 1e-12));
        assert!(close(
            display_value(Quantity::RainRate, 50.8, imp),
            2.0,
            1e-12
        ));
        assert_eq!(display_unit(Quantity::WindGust, imp), "mph");
        assert_eq!(display_unit(Quantity::DewPoint, imp), "°F");
    }

    #[test]
    fn rounded_values_and_sums_follow_the_table() {
        let imp = UnitSystem::Imperial;
        assert_eq!(display_rounded(Quantity::AirTemperature, 17.42, imp), 63.4);
        assert_eq!(display_rounded(Quantity::AirPressure, 1013.25, imp), 29.92);
        assert_eq!(
            display_rounded(Quantity::AirTemperature, 17.4213, UnitSystem::Metric),
            17.4213
        );
        // Two readings of 10 °C and 20 °C: 50 °F + 68 °F.
        assert!(close(
            display_sum(Quantity::AirTemperature, 30.0, 2, imp),
            118.0,
            1e-9
        ));
        assert!(close(display_sum(Quantity::Rain, 25.4, 7, imp), 1.0, 1e-12));
    }

    #[test]
    fn differences_take_the_scale_only() {
        let d = display_difference(Quantity::AirTemperature, 10.0, UnitSystem::Imperial);
        assert!(close(d, 18.0, 1e-9));
    }

    #[test]
    fn metric_and_unitless_quantities_are_unchanged() {
        for q in Quantity::ALL {
            assert_eq!(display_value(*q, 12.5, UnitSystem::Metric), 12.5);
            assert_eq!(display_unit(*q, UnitSystem::Metric), q.unit());
        }
        let imp = UnitSystem::Imperial;
        assert_eq!(display_value(Quantity::Ph, 8.1, imp), 8.1);
        assert_eq!(display_unit(Quantity::RelativeHumidity, imp), "%");
        assert_eq!(display_value(Quantity::WindDirection, 270.0, imp), 270.0);
    }

    #[test]
    fn every_stored_unit_is_either_converted_or_has_no_imperial_form() {
        // Light, UV index, a gas sensor's resistance and ratio, counts and the AS3935's
        // unitless energy have no imperial form either; nor have GPS satellites (a count).
        let keep = [
            "%",
            "°",
            "pH",
            "µS/cm",
            "mg/L",
            "lx",
            "UVI",
            "Rs/R0",
            "Ω",
            "strikes",
            "satellites",
            "",
            // Salinity, potentials, CO2 and electrical power are the same in either system.
            "PSU",
            "mV",
            "ppm",
            "V",
            "A",
            "W",
            // Turbidity has one unit everywhere.
            "NTU",
        ];
        for q in Quantity::ALL {
            let u = q.unit();
            assert!(
                conversion_for(u, UnitSystem::Imperial).is_some() || keep.contains(&u),
                "{q}: unit {u} has neither an imperial conversion nor a reason to keep it"
            );
        }
    }

    #[test]
    fn names_parse_and_bad_names_say_what_is_accepted() {
        assert_eq!("Imperial".parse::<UnitSystem>(), Ok(UnitSystem::Imperial));
        assert_eq!("metric".parse::<UnitSystem>(), Ok(UnitSystem::Metric));
        let err = "kelvin".parse::<UnitSystem>().unwrap_err().to_string();
        assert!(err.contains("kelvin") && err.contains("imperial"), "{err}");
    }
}
