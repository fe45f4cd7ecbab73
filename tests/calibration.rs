//! Corrections of sensor quantities: applied from the start they were recorded at
//! (readings before unchanged), recorded in the calibrations table, exported, and undone
//! (the uncorrected value recovered from the stored value and the record).

use std::collections::HashMap;

use anemone::calibrate_correction::{calibrate_correction, CorrectionAction};
use anemone::config::{Config, Synchronous};
use anemone::correction::{Correction, CorrectionSpec, Timeline, KIND_APPLIED, KIND_CORRECTION};
use anemone::reading::{Quantity, StoredReading, Timestamp};
use anemone::report::{export_what, ExportOptions, Format, What};
use anemone::store::{Query, Resolution, Store, StoreOptions};

use crate::common::{all_readings, run_virtual, JUNE_1};

const HOUR: i64 = 3_600_000;

/// How far a stored value may be from the exact one: the store keeps values as measured
/// today. (A store that rounds values to the sensor's resolution would need that
/// resolution here.)
const TOL: f64 = 1e-9;

fn config(db: &std::path::Path, corrections: &str) -> Config {
    let text = format!(
        "[storage]\npath = \"{}\"\n[web]\nenabled = false\n[mqtt]\nenabled = false\n[hal]\nsimulate = true\nseed = 5\n\
         [[sensor]]\ntype = \"bme280\"\nid = \"box\"\ninterval = \"1m\"\n{corrections}\n",
        db.display()
    );
    match Config::from_toml(&text, "test") {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// The readings of sensor `box` by (ts, quantity).
fn by_key(db: &std::path::Path) -> HashMap<(Timestamp, Quantity), f64> {
    all_readings(db)
        .into_iter()
        .filter(|r| &*r.reading.sensor == "box")
        // What the sensor measures; derived quantities follow from the corrected values.
        .filter(|r| {
            matches!(
                r.reading.quantity,
                Quantity::AirTemperature | Quantity::RelativeHumidity | Quantity::AirPressure
            )
        })
        .filter_map(|r: StoredReading| Some(((r.reading.ts, r.reading.quantity), r.reading.value?)))
        .collect()
}

fn export(db: &std::path::Path, what: What, format: Format) -> String {
    let store = Store::open_read_only(db, chrono_tz::UTC).unwrap();
    let mut out = Vec::new();
    export_what(
        &store,
        &ExportOptions {
            format,
            resolution: Resolution::Raw,
            query: Query {
                sensor: Some("box".into()),
                ..Query::default()
            },
            precision: Default::default(),
            units: anemone::units::UnitSystem::Metric,
        },
        what,
        &mut out,
        false,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_applies_from_its_start_is_recorded_exported_and_undone() {
    let dir = tempfile::tempdir().unwrap();
    let (db, reference) = (dir.path().join("a.db"), dir.path().join("ref.db"));
    let temp = "correction.air_temperature = { offset = -1.2 }";
    let humidity =
        "[sensor.correction.relative_humidity]\npolynomial = [-2.0, 1.05, -0.0002]\nrange = [0, 100]";
    // Hour 1 without corrections; hour 2 with the config's; hour 3 also with a two-point
    // pressure correction set by `anemone calibrate correction` after hour 2.
    run_virtual(config(&db, ""), JUNE_1, HOUR).await;
    run_virtual(
        config(&db, &format!("{temp}\n{humidity}")),
        JUNE_1 + HOUR,
        HOUR,
    )
    .await;
    {
        let cfg = config(&db, &format!("{temp}\n{humidity}"));
        let mut store = Store::open(
            &db,
            &StoreOptions {
                synchronous: Synchronous::Normal,
                tz: chrono_tz::UTC,
                vfs: None,
            },
        )
        .unwrap();
        let report = calibrate_correction(
            &cfg,
            &mut store,
            "box",
            Some(Quantity::AirPressure),
            CorrectionAction::Points(vec![(1000.0, 1001.0), (1020.0, 1021.5)]),
            JUNE_1 + 2 * HOUR - 60_000,
        )
        .unwrap();
        assert!(report.contains("next start"), "{report}");
    }
    run_virtual(
        config(&db, &format!("{temp}\n{humidity}")),
        JUNE_1 + 2 * HOUR,
        HOUR,
    )
    .await;
    // The same three hours, never corrected: what the sensor sent.
    for h in 0..3 {
        run_virtual(config(&reference, ""), JUNE_1 + h * HOUR, HOUR).await;
    }

    let stored = by_key(&db);
    let raw = by_key(&reference);
    assert_eq!(stored.len(), raw.len());
    assert!(stored.len() >= 3 * 3 * 59, "{}", stored.len());
    let poly = Correction::new(
        Quantity::RelativeHumidity,
        &CorrectionSpec {
            polynomial: Some(vec![-2.0, 1.05, -0.0002]),
            range: Some([0.0, 100.0]),
            ..CorrectionSpec::default()
        },
    )
    .unwrap();
    let pressure_scale = 0.5 / 20.0 + 1.0;
    let mut seen = [0usize; 3];
    for ((ts, q), v) in &stored {
        let r = raw[&(*ts, *q)];
        let hour = ((ts - JUNE_1) / HOUR) as usize;
        seen[hour] += 1;
        let want = match (hour, q) {
            (0, _) => r,
            (_, Quantity::AirTemperature) => r - 1.2,
            (_, Quantity::RelativeHumidity) => poly.apply(r),
            (2, Quantity::AirPressure) => 1001.0 + (r - 1000.0) * pressure_scale,
            _ => r,
        };
        assert!(
            (v - want).abs() < TOL,
            "{q:?} at {ts}: stored {v}, raw {r}, want {want}"
        );
    }
    assert!(seen.iter().all(|n| *n > 0), "{seen:?}");

    // Recorded: the corrections with their times, and the ranges they produced.
    let store = Store::open_read_only(&db, chrono_tz::UTC).unwrap();
    let recs = store.calibrations("box").unwrap();
    let kinds: Vec<(&str, Timestamp)> = recs.iter().map(|r| (r.kind.as_str(), r.ts)).collect();
    assert_eq!(
        kinds,
        [
            (KIND_CORRECTION, JUNE_1 + HOUR),
            (KIND_APPLIED, JUNE_1 + HOUR),
            (KIND_CORRECTION, JUNE_1 + HOUR),
            (KIND_APPLIED, JUNE_1 + HOUR),
            (KIND_CORRECTION, JUNE_1 + 2 * HOUR - 60_000),
            (KIND_APPLIED, JUNE_1 + 2 * HOUR),
        ],
        "{recs:#?}"
    );

    // Recovered: the stored value and the records give back what the sensor sent.
    let timeline = Timeline::from_records(
        recs.iter()
            .map(|r| (r.id, r.ts, r.kind.as_str(), &r.payload)),
    );
    for ((ts, q), v) in &stored {
        let back = match timeline.at(*q, *ts) {
            Some((_, c)) => c.invert(*v),
            None => *v,
        };
        let r = raw[&(*ts, *q)];
        assert!(
            (back - r).abs() < TOL,
            "{q:?} at {ts}: recovered {back}, raw {r}"
        );
    }
    // The pressure correction was recorded before hour 2 ended but applied from hour 3:
    // the readings between were stored uncorrected, and the timeline says so.
    let late = JUNE_1 + 2 * HOUR - 30_000;
    assert!(timeline.at(Quantity::AirPressure, late).is_none());
    assert!(timeline
        .at(Quantity::AirPressure, JUNE_1 + 2 * HOUR)
        .is_some());

    // Exported: each reading with the correction that produced it and its uncorrected value.
    let csv = export(&db, What::DataWithCalibration, Format::Csv);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("ts,sensor,quantity,value,unit,flags,calibration,uncorrected")
    );
    let temp_id = recs[0].id.to_string();
    let (mut before, mut after) = (0, 0);
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f[2] != "air_temperature" {
            continue;
        }
        let ts = anemone::reading::parse_ts(f[0]).unwrap();
        let (value, uncorrected): (f64, f64) = (f[3].parse().unwrap(), f[7].parse().unwrap());
        let r = raw[&(ts, Quantity::AirTemperature)];
        // Both rounded to the sensor's resolution (0.01 °C).
        assert!((uncorrected - r).abs() <= 0.0051, "{line}: raw {r}");
        if ts < JUNE_1 + HOUR {
            before += 1;
            assert_eq!(f[6], "", "{line}");
            assert_eq!(value, uncorrected, "{line}");
        } else {
            after += 1;
            assert_eq!(f[6], temp_id, "{line}");
            assert!((value - (uncorrected - 1.2)).abs() < 0.011, "{line}");
        }
    }
    assert!(before > 0 && after > 0);
    let ndjson = export(&db, What::DataWithCalibration, Format::Ndjson);
    let first: serde_json::Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
    assert_eq!(first["calibration"], serde_json::Value::Null);
    assert!(first["uncorrected"].is_number());

    // The calibrations themselves.
    let cals = export(&db, What::Calibrations, Format::Json);
    let cals: serde_json::Value = serde_json::from_str(&cals).unwrap();
    let cals = cals.as_array().unwrap();
    assert_eq!(cals.len(), 6, "{cals:#?}");
    assert_eq!(cals[0]["kind"], "correction");
    assert_eq!(cals[0]["quantity"], "air_temperature");
    assert_eq!(cals[0]["payload"]["offset"], -1.2);
    assert_eq!(cals[0]["payload"]["source"], "config");
    assert_eq!(cals[4]["payload"]["source"], "calibrate");
    assert_eq!(cals[5]["payload"]["calibration"], cals[4]["id"]);
    let csv = export(&db, What::Calibrations, Format::Csv);
    assert!(
        csv.starts_with("id,ts,sensor,kind,quantity,payload\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 7);
}

#[test]
fn validate_refuses_corrections_that_cannot_be_undone_or_do_not_apply() {
    let text = "[[sensor]]\ntype = \"bme280\"\nid = \"box\"\n\
        correction.air_temperature = { scale = 0 }\n\
        correction.rain = { offset = 1 }\n\
        correction.air_pressure = { ofset = 1 }\n\
        [sensor.correction.relative_humidity]\npolynomial = [0, 0, 1]\nrange = [-10, 10]\n";
    let (_, problems) = anemone::config::validate_text(text);
    let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    // An unknown key hides the sensor's other corrections until it is fixed (one serde
    // error per table); the fix shows the rest.
    assert_eq!(problems.len(), 1, "{all:#?}");
    assert!(
        all[0].contains("correction")
            && all[0].contains("ofset")
            && all[0].contains("air_pressure"),
        "{all:#?}"
    );
    let text = text.replace("ofset", "offset");
    let (_, problems) = anemone::config::validate_text(&text);
    let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 3, "{all:#?}");
    assert!(all
        .iter()
        .any(|p| p.contains("correction.air_temperature") && p.contains("scale = 0")));
    assert!(all
        .iter()
        .any(|p| p.contains("correction.rain") && p.contains("does not measure rain")));
    assert!(all
        .iter()
        .any(|p| p.contains("correction.relative_humidity") && p.contains("turns")));
}

/// The command line: `calibrate correction` records (negative numbers and points
/// included), refuses what cannot be undone, and `export` shows the records and columns.
#[test]
fn calibrate_correction_and_export_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let cfg = dir.path().join("a.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\npath = \"{}\"\n[web]\nenabled = false\n[mqtt]\nenabled = false\n\
             [[sensor]]\ntype = \"bme280\"\nid = \"box\"\ninterval = \"1m\"\n",
            db.display()
        ),
    )
    .unwrap();
    let anemone = |args: &[&str]| {
        let out = crate::cli::bin()
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let set = |more: &[&str]| {
        let mut args = vec!["calibrate", "correction", "--sensor", "box"];
        args.extend_from_slice(more);
        anemone(&args)
    };
    let (ok, out, err) = set(&["--quantity", "air_temperature", "--offset", "-1.2"]);
    assert!(ok, "{err}");
    assert!(out.contains("corrected = raw − 1.2"), "{out}");
    let (ok, out, err) = set(&[
        "--quantity",
        "air_pressure",
        "--point",
        "1000=1001",
        "--point",
        "1020=1021.5",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("corrected = raw × 1.025 − 24"), "{out}");
    let (ok, _, err) = set(&["--quantity", "air_temperature", "--scale", "0"]);
    assert!(!ok && err.contains("scale = 0"), "{err}");
    let (ok, _, err) = set(&["--quantity", "rain", "--offset", "1"]);
    assert!(!ok && err.contains("does not measure rain"), "{err}");
    let (ok, _, err) = set(&["--quantity", "air_temperature", "--point", "x=1"]);
    assert!(!ok && err.contains("--point x=1"), "{err}");
    let (ok, out, _) = set(&["--status"]);
    assert!(ok);
    assert_eq!(out.matches("set by calibrate").count(), 2, "{out}");

    // The next start applies them.
    let (ok, _, err) = anemone(&["run", "--simulate", "--speed", "max", "--duration", "10m"]);
    assert!(ok, "{err}");
    let (ok, out, err) = anemone(&["export", "--calibrations", "--format", "ndjson"]);
    assert!(ok, "{err}");
    // By time: the station's simulated start comes before the records made now.
    let mut kinds: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "\"correction\"",
            "\"correction\"",
            "\"correction_applied\"",
            "\"correction_applied\""
        ],
        "{out}"
    );
    let (ok, out, err) = anemone(&[
        "export",
        "--with-calibration",
        "--quantity",
        "air_temperature",
    ]);
    assert!(ok, "{err}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("ts,sensor,quantity,value,unit,flags,calibration,uncorrected")
    );
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(row[6], "1", "{out}");
    let (v, raw): (f64, f64) = (row[3].parse().unwrap(), row[7].parse().unwrap());
    assert!((raw - v - 1.2).abs() < 0.011, "{out}");
}
