//! The anchor watch on MQTT: a GPS buoy off station is announced on the retained
//! `…/alert/<sensor>` topic, and so is its return within the radius.

use std::sync::Arc;
use std::time::Duration;

use anemone::reading::{Flags, Quantity, Reading, SensorId};

use super::support::*;
use super::{bounded, prefix, T0};

fn distance(ts: i64, buoy: &SensorId, d: f64, off: bool) -> Reading {
    let mut r = Reading::new(ts, buoy, Quantity::AnchorDistance, d);
    if off {
        r.flags.insert(Flags::OFF_STATION);
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_station_is_announced_on_the_alert_topic() {
    bounded(60, async {
        let broker = TestBroker::start().await;
        let id = station_id("alert");
        let p = prefix(&id);
        let topic = format!("{p}/alert/buoy");
        let mut sub =
            Subscriber::connect(&broker, &format!("{id}-a"), std::slice::from_ref(&topic)).await;
        let mut station = Station::start(
            broker.config(&id, broker.addr),
            MemStore::default(),
            fast_tuning(),
        );
        let buoy: SensorId = Arc::from("buoy");
        station.push(vec![distance(T0, &buoy, 20.0, false)]).await;
        station
            .push(vec![distance(T0 + 10_000, &buoy, 80.0, true)])
            .await;
        station
            .push(vec![distance(T0 + 20_000, &buoy, 95.0, true)])
            .await;
        let alert = sub.wait_for("the alert", 10, |m| m.topic == topic).await;
        let v = alert.json();
        assert_eq!(v["active"], true, "{v}");
        assert_eq!(v["alert"], "off_station");
        assert_eq!(v["sensor"], "buoy");
        assert_eq!(v["anchor_distance"], 80.0);
        assert!(v["ts"].as_str().is_some_and(|t| t.ends_with('Z')));

        // Retained: a subscriber that comes later finds it.
        let mut late =
            Subscriber::connect(&broker, &format!("{id}-b"), std::slice::from_ref(&topic)).await;
        let kept = late
            .wait_for("the retained alert", 10, |m| m.topic == topic)
            .await;
        assert!(kept.retain);
        assert_eq!(kept.json()["active"], true);

        station
            .push(vec![distance(T0 + 30_000, &buoy, 30.0, false)])
            .await;
        let clear = sub
            .wait_for("the all-clear", 10, |m| {
                m.topic == topic && m.json()["active"] == false
            })
            .await;
        assert_eq!(clear.json()["anchor_distance"], 30.0);
        sub.collect_for(300).await;
        let alerts = sub.seen.iter().filter(|m| m.topic == topic).count();
        assert_eq!(alerts, 2, "only changes are published: {:?}", sub.seen);
        station.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}
