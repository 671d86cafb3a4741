//! A client that stops reading cannot hold the broker's memory or its attention: the QoS 0
//! messages waiting for it stay within `max_queued_bytes` (the oldest are dropped), and once
//! a write to it has waited `write_timeout` the broker drops it like a lost connection, and
//! its will is published. Real sockets, bounded real waits.

use std::time::Duration;

use crate::support::{Client, start_broker_with, subscribed, subscriber};
use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, LastWill, MessageProperties, Packet, Protocol, Publish, QoS,
};
use lastwill_broker::config::Config;

const PAYLOAD: usize = 64 * 1024;
const MAX_QUEUED: usize = 1 << 20;

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_dropped_and_its_will_published() {
    let broker = start_broker_with(Config {
        write_timeout: 1,
        max_queued_bytes: MAX_QUEUED,
        ..Config::default()
    })
    .await;
    let mut watcher = subscriber(broker.addr, "watcher", "will/#").await;

    // subscribed to the flood, with a will, and then never reads again
    let stuck = Connect {
        will: Some(LastWill {
            topic: "will/stuck".into(),
            payload: Bytes::from_static(b"too slow"),
            qos: QoS::AtMostOnce,
            retain: false,
            delay_interval: None,
            properties: MessageProperties::default(),
        }),
        ..Connect::new(Protocol::V5, "stuck")
    };
    let _stuck = subscribed(broker.addr, stuck, "flood/#").await;

    let mut publisher = Client::connect(broker.addr, Protocol::V5).await;
    publisher
        .send(Packet::Connect(Connect::new(Protocol::V5, "publisher")))
        .await;
    assert!(matches!(publisher.recv().await, Some(Packet::ConnAck(c)) if c.code.is_success()));

    let payload = Bytes::from(vec![b'f'; PAYLOAD]);
    let mut sent = 0usize;
    let will = loop {
        assert!(
            sent < 4_000,
            "{sent} messages of 64 KiB and the client that does not read is still connected"
        );
        publisher
            .send(Packet::Publish(Publish::new(
                "flood/x",
                payload.clone(),
                QoS::AtMostOnce,
            )))
            .await;
        sent += 1;
        let arrived = tokio::time::timeout(Duration::from_millis(2), watcher.recv()).await;
        if let Ok(Some(Packet::Publish(will))) = arrived {
            break will;
        }
    };
    assert_eq!(will.topic, "will/stuck");
    assert_eq!(&will.payload[..], b"too slow");
    let metrics = broker.metrics.snapshot();
    // the socket buffers hold what no accounting sees; what the broker held stayed bounded
    assert!(metrics.dropped_messages > 0, "{metrics:?}");
    assert!(
        metrics.peak_connection_queued_bytes <= MAX_QUEUED + 256 * 1024 + PAYLOAD + 64,
        "{metrics:?}"
    );
}
