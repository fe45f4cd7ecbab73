//! `export` and `stats` over a small stored day.

use std::sync::Arc;

use anemone::config::Synchronous;
use anemone::reading::{Flags, Quantity, Reading, SensorId, Timestamp};
use anemone::report::{export, stats, stats_json, ExportOptions, Format, ReportError};
use anemone::store::{Query, Resolution, Store, StoreOptions};
use chrono::NaiveDate;

fn ts(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("test timestamp")
        .timestamp_millis()
}

/// A London station day (BST): temperatures, a flagged spike, rain and gusts.
fn station() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anemone.db");
    let tz = chrono_tz::Europe::London;
    let mut s = Store::open(
        &path,
        &StoreOptions {
            synchronous: Synchronous::Normal,
            tz,
            vfs: None,
        },
    )
    .unwrap();
    let mast: SensorId = Arc::from("mast");
    let gauge: SensorId = Arc::from("rain, gauge");
    let mut spike = Reading::new(
        ts("2026-06-01T12:00:00Z"),
        &mast,
        Quantity::AirTemperature,
        55.0,
    );
    spike.flags = Flags::SPIKE | Flags::OUT_OF_RANGE;
    s.insert_batch(&[
        Reading::new(
            ts("2026-06-01T04:30:00Z"),
            &mast,
            Quantity::AirTemperature,
            9.5,
        ),
        Reading::new(
            ts("2026-06-01T13:15:00Z"),
            &mast,
            Quantity::AirTemperature,
            21.25,
        ),
        spike,
        Reading::new(ts("2026-06-01T10:00:00Z"), &gauge, Quantity::Rain, 0.2),
        Reading::new(ts("2026-06-01T10:05:00Z"), &gauge, Quantity::Rain, 0.4),
        Reading::new(ts("2026-06-01T15:02:00Z"), &mast, Quantity::WindGust, 14.5),
        Reading::new(ts("2026-06-01T16:00:00Z"), &mast, Quantity::WindGust, 9.0),
        Reading::sensor_error(
            ts("2026-06-01T16:00:00Z"),
            &mast,
            Quantity::RelativeHumidity,
        ),
        // Local day 2 June starts at 23:00 UTC on 1 June.
        Reading::new(
            ts("2026-06-01T23:30:00Z"),
            &mast,
            Quantity::AirTemperature,
            12.0,
        ),
    ])
    .unwrap();
    drop(s);
    let ro = Store::open_read_only(&path, tz).unwrap();
    (dir, ro)
}

fn run(store: &Store, format: Format, resolution: Resolution, query: Query) -> (u64, String) {
    let mut out = Vec::new();
    let n = export(
        store,
        &ExportOptions {
            format,
            resolution,
            query,
            precision: Default::default(),
            units: anemone::units::UnitSystem::Metric,
        },
        &mut out,
        false,
    )
    .unwrap();
    (n, String::from_utf8(out).unwrap())
}

/// False precision: exports give each value to its sensor's resolution; the store keeps
/// the value as measured.
#[test]
fn export_rounds_values_and_the_store_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anemone.db");
    let tz = chrono_tz::Europe::London;
    let opts = StoreOptions {
        synchronous: Synchronous::Normal,
        tz,
        vfs: None,
    };
    let mut s = Store::open(&path, &opts).unwrap();
    let air: SensorId = Arc::from("air");
    let t0 = ts("2026-06-01T10:00:00Z");
    s.insert_batch(&[
        Reading::new(t0, &air, Quantity::AirPressure, 1004.8946875),
        Reading::new(t0, &air, Quantity::AirTemperature, 5.793498442625405),
    ])
    .unwrap();
    drop(s);
    let ro = Store::open_read_only(&path, tz).unwrap();
    let (_, csv) = run(&ro, Format::Csv, Resolution::Raw, Query::default());
    assert!(csv.contains(",air,air_pressure,1004.89,hPa,"), "{csv}");
    assert!(csv.contains(",air,air_temperature,5.79,°C,"), "{csv}");
    let (_, nd) = run(&ro, Format::Ndjson, Resolution::Raw, Query::default());
    assert!(nd.contains(r#""value":1004.89}"#), "{nd}");
    assert!(nd.contains(r#""value":5.79}"#), "{nd}");
    let (_, hours) = run(&ro, Format::Csv, Resolution::Hour, Query::default());
    assert!(hours.contains(",1004.89,"), "{hours}");
    assert!(!hours.contains("1004.894"), "{hours}");
    // A sensor whose kind has a coarser resolution.
    let mut precision = anemone::reading::Precision::default();
    precision.set("air", Quantity::AirPressure, 1);
    let mut out = Vec::new();
    export(
        &ro,
        &ExportOptions {
            format: Format::Csv,
            resolution: Resolution::Raw,
            query: Query::default(),
            precision,
            units: anemone::units::UnitSystem::Metric,
        },
        &mut out,
        false,
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&out).contains(",air_pressure,1004.9,"));
    // Stored as measured.
    let mut stored = Vec::new();
    ro.for_each_reading::<anemone::store::StoreError>(&Query::default(), |r| {
        stored.push(r.reading.value);
        Ok(())
    })
    .unwrap();
    assert!(stored.contains(&Some(1004.8946875)), "{stored:?}");
    assert!(stored.contains(&Some(5.793498442625405)), "{stored:?}");
}

#[test]
fn export_csv_has_the_public_shape_and_quotes() {
    let (_d, s) = station();
    let (n, text) = run(&s, Format::Csv, Resolution::Raw, Query::default());
    assert_eq!(n, 9);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "ts,sensor,quantity,value,unit,flags");
    assert_eq!(lines.len(), 10);
    assert_eq!(
        lines[1],
        "2026-06-01T04:30:00.000Z,mast,air_temperature,9.5,°C,ok"
    );
    assert_eq!(
        lines[3],
        "2026-06-01T12:00:00.000Z,mast,air_temperature,55,°C,out_of_range|spike"
    );
    assert_eq!(
        lines[4],
        "2026-06-01T10:00:00.000Z,\"rain, gauge\",rain,0.2,mm,ok"
    );
    assert_eq!(
        lines[8],
        "2026-06-01T16:00:00.000Z,mast,relative_humidity,,%,sensor_error"
    );
}

#[test]
fn export_json_and_ndjson_use_reading_objects() {
    let (_d, s) = station();
    let q = Query {
        sensor: Some("mast".into()),
        quantity: Some(Quantity::AirTemperature),
        from: Some(ts("2026-06-01T00:00:00Z")),
        to: Some(ts("2026-06-01T23:00:00Z")),
    };
    let (n, text) = run(&s, Format::Json, Resolution::Raw, q.clone());
    assert_eq!(n, 3);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(
        arr[0],
        serde_json::json!({"ts": "2026-06-01T04:30:00.000Z", "sensor": "mast",
            "quantity": "air_temperature", "value": 9.5, "unit": "°C", "flags": ["ok"]})
    );
    assert_eq!(
        arr[2]["flags"],
        serde_json::json!(["out_of_range", "spike"])
    );

    let (n, text) = run(&s, Format::Ndjson, Resolution::Raw, q);
    assert_eq!(n, 3);
    let objs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs, arr.clone());

    let none = Query {
        sensor: Some("nobody".into()),
        ..Query::default()
    };
    let (n, text) = run(&s, Format::Json, Resolution::Raw, none);
    assert_eq!((n, text.as_str()), (0, "[]\n"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.as_array().unwrap().is_empty());
}

#[test]
fn export_aggregates_by_day_and_hour() {
    let (_d, s) = station();
    let q = Query {
        quantity: Some(Quantity::AirTemperature),
        ..Query::default()
    };
    let (n, text) = run(&s, Format::Csv, Resolution::Day, q.clone());
    assert_eq!(n, 2);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "start,end,sensor,quantity,unit,count,flagged,min,min_ts,max,max_ts,mean,sum"
    );
    // The mean is given to the sensor's resolution (0.01 °C), like every value.
    assert_eq!(
        lines[1],
        "2026-05-31T23:00:00.000Z,2026-06-01T23:00:00.000Z,mast,air_temperature,°C,2,1,\
         9.5,2026-06-01T04:30:00.000Z,21.25,2026-06-01T13:15:00.000Z,15.38,30.75"
    );
    let (_, text) = run(&s, Format::Ndjson, Resolution::Hour, q);
    let hours: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hours.len(), 4);
    assert_eq!(hours[1]["start"], "2026-06-01T12:00:00.000Z");
    assert_eq!(hours[1]["count"], 0);
    assert_eq!(hours[1]["flagged"], 1);
    assert!(hours[1]["mean"].is_null());
}

#[test]
fn stats_table_for_the_latest_and_a_given_day() {
    let (_d, s) = station();
    let tz = chrono_tz::Europe::London;
    let day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let text = stats(&s, Some(day), tz).unwrap();
    assert!(text.starts_with("Station day 2026-06-01 (Europe/London, 24 h"));
    let row = text
        .lines()
        .find(|l| l.starts_with("mast") && l.contains("air_temperature"))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "mast",
            "air_temperature",
            "°C",
            "2",
            "1",
            "9.50",
            "05:30",
            "BST",
            "21.25",
            "14:15",
            "BST",
            "15.38"
        ]
    );
    // Columns line up: the unit sits under the "unit" heading.
    let header = text.lines().find(|l| l.starts_with("sensor")).unwrap();
    let col = |l: &str, pat: &str| l.find(pat).map(|b| l[..b].chars().count());
    assert_eq!(col(header, "unit"), col(row, "°C"));
    assert!(text.contains("Rain total: 0.60 mm"));
    assert!(text.contains("Max wind gust: 14.50 m/s at 16:02 BST (mast)"));
    // How many readings each QC check flagged that day.
    let qc = text
        .lines()
        .find(|l| l.starts_with("QC checks flagged"))
        .unwrap();
    assert!(
        qc.contains("out_of_range 1, spike 1, stuck 0, inconsistent 0 ("),
        "{qc}"
    );
    assert!(qc.contains("sensor_error 1"), "{qc}");

    // Default: the latest day with data (2 June, local).
    let latest = stats(&s, None, tz).unwrap();
    assert!(latest.starts_with("Station day 2026-06-02"), "{latest}");
    assert!(latest.contains("Rain total: no rain readings"));

    let j = stats_json(&s, Some(day), tz).unwrap();
    assert_eq!(j["hours"], 24);
    let rain = j["rain_total_mm"].as_f64().unwrap();
    assert!((rain - 0.6).abs() < 1e-9, "{rain}");
    assert_eq!(j["max_gust"]["value"], 14.5);
    assert_eq!(j["qc"]["spike"], 1);
    assert_eq!(j["qc"]["stuck"], 0);
    assert_eq!(j["qc"]["inconsistent_by_quantity"]["wind_gust"], 0);
    assert_eq!(j["max_gust"]["local"], "16:02 BST");
}

#[test]
fn stats_on_an_empty_database_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    drop(
        Store::open(
            &path,
            &StoreOptions {
                synchronous: Synchronous::Normal,
                tz: chrono_tz::UTC,
                vfs: None,
            },
        )
        .unwrap(),
    );
    let s = Store::open_read_only(&path, chrono_tz::UTC).unwrap();
    let e = stats(&s, None, chrono_tz::UTC).unwrap_err();
    assert!(matches!(e, ReportError::NoData(_)));
    assert!(e.to_string().contains("empty.db"));
}
