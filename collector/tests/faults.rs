//! The fault tests of issue 16: each checks row by row that every reading a station
//! stored is in the database exactly once.

use std::time::Duration;

use anemone_collector::testkit::{free_port, MosquittoOptions};

use crate::support::*;

/// Station time of a streaming run: 20 minutes at 120× (10 s), ~6 000 readings.
const STREAM_MS: i64 = 20 * 60_000;
const SPEED: f64 = 120.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_killed_mid_stream_loses_nothing_and_stores_nothing_twice() {
    let Some(net) = Net::start(MosquittoOptions::default()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut collector = net.collector("collector-1", None, "");
    let cfg = station_config("kill9", &net.broker.url(), dir.path(), None, "");
    let station = tokio::spawn(run_station(cfg, start_ago(2), Some(SPEED), STREAM_MS));
    tokio::time::sleep(Duration::from_secs(3)).await;
    collector.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut collector = net.collector("collector-1", None, "");
    let db = station.await.unwrap();
    let client = net.client().await;
    assert_exactly_once(&client, "kill9", &stored(&db)).await;
    assert!(
        collector.terminate(),
        "the collector exits cleanly on SIGTERM: {}",
        collector.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_stream_loses_nothing_and_stores_nothing_twice() {
    let Some(mut net) = Net::start(MosquittoOptions::default()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut collector = net.collector("collector-1", None, "");
    let cfg = station_config("pgrestart", &net.broker.url(), dir.path(), None, "");
    let station = tokio::spawn(run_station(cfg, start_ago(2), Some(SPEED), STREAM_MS));
    tokio::time::sleep(Duration::from_secs(3)).await;
    net.pg.stop_immediately();
    tokio::time::sleep(Duration::from_secs(3)).await;
    net.pg.restart();
    let db = station.await.unwrap();
    let client = net.client().await;
    assert_exactly_once(&client, "pgrestart", &stored(&db)).await;
    assert!(
        collector.log().contains("Writing a batch failed")
            || collector.log().contains("PostgreSQL"),
        "the outage was seen: {}",
        collector.log()
    );
    assert!(collector.terminate(), "{}", collector.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weeks_backfill_keeps_its_times_and_backfill_mark_and_rolls_up() {
    let Some(net) = Net::start(MosquittoOptions::default()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut collector = net.collector("collector-1", None, "");
    // A week offline: the broker it names does not answer.
    let week = 7 * 86_400_000;
    let start = start_ago(7 * 24 + 1);
    let dead_broker = format!("mqtt://127.0.0.1:{}", free_port());
    let mut cfg = station_config("buoy", &dead_broker, dir.path(), None, "");
    cfg.sensors[0].interval = anemone::duration::Span::secs(600);
    let db = run_station(cfg.clone(), start, None, week).await;
    let offline = stored(&db);
    let last_offline = offline.iter().map(|r| r.id).max().unwrap();
    // Back online for a few minutes of station time: the backlog goes out first.
    cfg.mqtt.broker = net.broker.url();
    run_station(cfg, start + week, Some(60.0), 5 * 60_000).await;
    let all = stored(&db);
    assert!(all.len() > offline.len());
    let client = net.client().await;
    let rows = assert_exactly_once(&client, "buoy", &all).await;
    for r in &offline {
        assert!(
            rows[&r.id].backfill,
            "reading {} stored offline arrives marked backfill",
            r.id
        );
    }
    assert!(
        rows.iter().any(|(id, r)| *id > last_offline && !r.backfill),
        "live readings are not marked backfill"
    );
    // The rollups cover the week: one row per hour and quantity, counts that add up.
    let hourly: i64 = client
        .query_one("SELECT coalesce(sum(count + flagged), 0)::bigint FROM rollups_hourly WHERE station = 'buoy'", &[])
        .await
        .unwrap()
        .get(0);
    let daily: i64 = client
        .query_one("SELECT coalesce(sum(count + flagged), 0)::bigint FROM rollups_daily WHERE station = 'buoy'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        hourly as usize,
        all.len(),
        "every reading is counted once in the hourly rollups"
    );
    assert_eq!(daily as usize, all.len(), "and once in the daily rollups");
    let (mean, expected): (f64, f64) = {
        let r = client
            .query_one(
                "SELECT (SELECT sum / count FROM rollups_daily WHERE station = 'buoy' AND quantity = 'air_temperature' ORDER BY start LIMIT 1 OFFSET 2),
                        (SELECT avg(value) FROM readings WHERE station = 'buoy' AND quantity = 'air_temperature' AND flags = 0
                           AND ts >= (SELECT start FROM rollups_daily WHERE station = 'buoy' AND quantity = 'air_temperature' ORDER BY start LIMIT 1 OFFSET 2)
                           AND ts < (SELECT start FROM rollups_daily WHERE station = 'buoy' AND quantity = 'air_temperature' ORDER BY start LIMIT 1 OFFSET 2) + interval '1 day')",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(
        (mean - expected).abs() < 1e-9,
        "a day's mean is the mean of its readings: {mean} vs {expected}"
    );
    let station: (Option<String>, Option<f64>) = {
        let r = client
            .query_one("SELECT name, latitude FROM stations WHERE id = 'buoy'", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        station,
        (Some("Station buoy".into()), Some(50.1)),
        "meta reached the stations table"
    );
    // The station's run ended cleanly: its retained status says `offline`, and its last
    // `state` snapshot is kept.
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = client
            .query_one("SELECT online, state IS NOT NULL, first_seen <= last_seen FROM stations WHERE id = 'buoy'", &[])
            .await
            .unwrap();
        let (online, state, seen): (Option<bool>, bool, bool) = (r.get(0), r.get(1), r.get(2));
        if online == Some(false) && state && seen {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "status offline and a state: {online:?} {state} {seen}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let partitions: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(partitions >= 2, "a month partition beside the default one");
    let in_default: i64 = client
        .query_one("SELECT count(*) FROM readings_default", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_default, 0, "rows go to their month's partition");
    assert!(collector.terminate(), "{}", collector.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_on_one_shared_subscription_one_killed() {
    let Some(net) = Net::start(MosquittoOptions::default()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c1 = net.collector("collector-1", Some("anemone"), "");
    let mut c2 = net.collector("collector-2", Some("anemone"), "");
    let s1 = tokio::spawn(run_station(
        station_config("mast", &net.broker.url(), dir.path(), None, ""),
        start_ago(2),
        Some(SPEED),
        STREAM_MS,
    ));
    let s2 = tokio::spawn(run_station(
        station_config("reef", &net.broker.url(), dir.path(), None, ""),
        start_ago(2),
        Some(SPEED),
        STREAM_MS,
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    c1.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Its session kept what the broker had given it: the same client id takes it back.
    let mut c1 = net.collector("collector-1", Some("anemone"), "");
    let (db1, db2) = (s1.await.unwrap(), s2.await.unwrap());
    let client = net.client().await;
    assert_exactly_once(&client, "mast", &stored(&db1)).await;
    assert_exactly_once(&client, "reef", &stored(&db2)).await;
    assert!(c1.terminate(), "{}", c1.log());
    assert!(c2.terminate(), "{}", c2.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_publishing_under_another_id_is_refused_by_the_broker() {
    let accounts = [
        ("collector", "pw-c"),
        ("pier", "pw-p"),
        ("intruder", "pw-i"),
    ]
    .map(|(u, p)| (u.to_string(), p.to_string()))
    .to_vec();
    let acl = "user collector\ntopic read anemone/#\n\npattern write anemone/%u/#\n".to_string();
    let Some(net) = Net::start(MosquittoOptions {
        accounts,
        acl: Some(acl),
        ..MosquittoOptions::default()
    })
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut collector = net.collector(
        "collector-1",
        None,
        "username = \"collector\"\npassword = \"pw-c\"\n",
    );
    let honest = station_config(
        "pier",
        &net.broker.url(),
        dir.path(),
        Some(("pier", "pw-p")),
        "",
    );
    // Logs in as `intruder` but publishes as `pier2`.
    let intruder = station_config(
        "pier2",
        &net.broker.url(),
        dir.path(),
        Some(("intruder", "pw-i")),
        "protocol = \"3.1.1\"\n",
    );
    let a = tokio::spawn(run_station(honest, start_ago(2), Some(60.0), 5 * 60_000));
    let b = tokio::spawn(run_station(intruder, start_ago(2), Some(60.0), 5 * 60_000));
    let (db_a, db_b) = (a.await.unwrap(), b.await.unwrap());
    let client = net.client().await;
    assert_exactly_once(&client, "pier", &stored(&db_a)).await;
    assert!(!stored(&db_b).is_empty(), "the intruder did try");
    // Give the broker every chance to have passed something on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM readings WHERE station = 'pier2'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n, 0,
        "no reading published under another station's id reaches the database"
    );
    let s: i64 = client
        .query_one("SELECT count(*) FROM stations WHERE id = 'pier2'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(s, 0, "nor its status or meta");
    assert!(collector.terminate(), "{}", collector.log());
}

/// A database that does not answer for three keep-alives (a lock held on `readings`) while
/// a station streams: the collector keeps its broker connection (the poller never waits
/// for the writer), and every reading arrives once, none sent twice by the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_slower_than_the_keep_alive_keeps_the_broker_connection() {
    // A window far larger than a batch: the whole window waits for the writer.
    let opts = MosquittoOptions {
        max_inflight: Some(5_000),
        ..MosquittoOptions::default()
    };
    let Some(net) = Net::start(opts).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut collector = net.collector("collector-1", None, "keep_alive = \"5s\"\n");
    let cfg = station_config("slowdb", &net.broker.url(), dir.path(), None, "");
    let mut locker = net.client().await;
    let station = tokio::spawn(run_station(cfg, start_ago(2), Some(SPEED), STREAM_MS));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    // Mosquitto drops a client silent for 1.5 keep-alives (7.5 s).
    tokio::time::sleep(Duration::from_secs(16)).await;
    lock.commit().await.unwrap();
    let db = station.await.unwrap();
    let client = net.client().await;
    assert_exactly_once(&client, "slowdb", &stored(&db)).await;
    assert!(collector.terminate(), "{}", collector.log());
    let log = collector.log();
    assert!(
        !log.contains("The broker connection failed") && !log.contains("connection=2"),
        "the collector lost its broker connection while the database was slow: {log}"
    );
    assert!(
        log.contains("duplicates=0"),
        "the broker sent readings again: {log}"
    );
}
