//! SIGTERM: the collector commits and acknowledges what it holds, then exits.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::support::*;

/// Publishes readings 1..=n of station `lab` at QoS 1 and waits for the broker's PUBACKs.
/// A plain publisher: unlike a station it never sends a reading twice, so every
/// duplicate the collector sees is a redelivery by the broker.
async fn publish_readings(port: u16, n: i64) {
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("lab-publisher", "127.0.0.1", port), 1000);
    let ts = start_ago(1);
    let publisher = tokio::spawn(async move {
        for id in 1..=n {
            if id % 50 == 0 {
                // About 5 000 a second: long enough to stop a collector in the middle.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            client
                .publish(
                    "anemone/lab/reading/air",
                    QoS::AtLeastOnce,
                    false,
                    payload(id, ts + id * 100),
                )
                .await
                .unwrap();
        }
    });
    let mut acked = 0;
    while acked < n {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => panic!("the test publisher failed: {e}"),
        }
    }
    publisher.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_commits_and_acknowledges_what_the_collector_holds() {
    let Some(net) = Net::start(Default::default()).await else {
        return;
    };
    let mut first = net.collector("collector-1", None, "");
    const N: i64 = 10_000;
    let publishing = tokio::spawn(publish_readings(net.broker.port(), N));
    let db = net.client().await;
    wait_for_rows(&db, "lab", 500, 60).await;
    assert!(first.terminate(), "exits cleanly: {}", first.log());
    assert!(first.log().contains("Collector stopped"), "{}", first.log());
    let stored_by_first = rows(&db, "lab").await.0.len();
    assert!(stored_by_first < N as usize, "stopped mid-stream");
    let mut second = net.collector("collector-1", None, "");
    publishing.await.unwrap();
    wait_for_rows(&db, "lab", N as usize, 120).await;
    let (rows, twice) = rows(&db, "lab").await;
    assert_eq!(twice, 0);
    let mut ids: Vec<i64> = rows.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, (1..=N).collect::<Vec<_>>(), "every reading once");
    assert!(second.terminate(), "{}", second.log());
    // Everything the first collector committed it also acknowledged: the broker sent none
    // of it again to the second.
    let log = second.log();
    assert!(
        log.contains("duplicates=0"),
        "the second collector stored no redelivery: {log}\nthe first one's log: {}",
        first.log()
    );
}
