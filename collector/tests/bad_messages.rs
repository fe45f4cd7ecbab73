//! Bad messages become dead letters with their reason, and the collector keeps going.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_message_is_a_dead_letter_and_the_collector_keeps_going() {
    let Some(net) = Net::start(Default::default()).await else {
        return;
    };
    let mut collector = net.collector("collector-1", None, "max_payload_bytes = 1024\n");
    let mut o = MqttOptions::new("bad-publisher", "127.0.0.1", net.broker.port());
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(o, 100);
    let acks = tokio::spawn(async move {
        let mut n = 0;
        while n < 12 {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => n += 1,
                Ok(_) => {}
                Err(e) => panic!("the test publisher failed: {e}"),
            }
        }
    });
    let db = net.client().await;

    let ts = start_ago(1);
    let t = "anemone/lab/reading/air";
    let good = |id: i64| payload(id, ts + id * 1000);
    let text = |id: i64| String::from_utf8(good(id)).unwrap();
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            t,
            b"{\"flags\": [\"ok\"], \"quantity\":".to_vec(),
            "not JSON",
        ),
        (
            t,
            text(101)
                .replace("\"value\":20.1", "\"value\":\"20.1\"")
                .into_bytes(),
            "wrong type",
        ),
        (
            t,
            text(102)
                .replace("air_temperature", "air_temprature")
                .into_bytes(),
            "unknown quantity `air_temprature`",
        ),
        (t, vec![b' '; 4000], "oversized"),
        (
            t,
            text(104)
                .replacen('{', "{\"station\":\"other\",", 1)
                .into_bytes(),
            "topic station `lab` does not match payload station `other`",
        ),
        (
            "anemone/lab/meta",
            br#"{"station": "other", "name": "x"}"#.to_vec(),
            "topic station `lab` does not match payload station `other`",
        ),
    ];
    for id in 1..=3 {
        client
            .publish(t, QoS::AtLeastOnce, false, good(id))
            .await
            .unwrap();
    }
    for (topic, p, _) in &bad {
        client
            .publish(*topic, QoS::AtLeastOnce, false, p.clone())
            .await
            .unwrap();
    }
    for id in 4..=6 {
        client
            .publish(t, QoS::AtLeastOnce, false, good(id))
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(60), acks)
        .await
        .expect("the broker acknowledges")
        .unwrap();

    wait_for_rows(&db, "lab", 6, 60).await;
    let (rows, twice) = rows(&db, "lab").await;
    assert_eq!(twice, 0);
    let mut ids: Vec<i64> = rows.keys().copied().collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![1, 2, 3, 4, 5, 6],
        "the good readings around the bad ones are stored"
    );
    let dead = db
        .query(
            "SELECT topic, payload, reason FROM dead_letters ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), bad.len(), "one dead letter per bad message");
    for (row, (topic, p, reason)) in dead.iter().zip(&bad) {
        let (got_topic, got_payload, got_reason): (String, Vec<u8>, String) =
            (row.get(0), row.get(1), row.get(2));
        assert_eq!(&got_topic, topic);
        assert!(
            got_reason.contains(reason),
            "reason `{got_reason}` names `{reason}`"
        );
        let kept = p.len().min(1024);
        assert_eq!(
            got_payload,
            p[..kept],
            "the payload is kept (an oversized one truncated)"
        );
    }
    assert!(
        collector.log().contains("Dead letter"),
        "{}",
        collector.log()
    );
    assert!(collector.terminate(), "{}", collector.log());
}
