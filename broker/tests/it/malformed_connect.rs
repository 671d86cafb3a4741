//! Every malformed-will CONNECT, for 3.1.1 and 5, against the real broker over TCP: the exact
//! response (v5: a CONNACK with the reason code, then a close; 3.1.1: a close without
//! CONNACK, [MQTT-3.1.4-1]) and no will, ever.
//!
//! "Never" is checked without sleeping: a subscriber to `#` is connected throughout, and a
//! control client with a valid will drops last. The broker publishes wills in the order the
//! connections end, so when the control will arrives, any will of the malformed connections
//! would already have arrived before it.

use crate::support::{Client, field, raw_connect, read_to_close, start_broker, subscriber};
use lastwill_broker::codec::{Connect, LastWill, Packet, Protocol, QoS};
use tokio::io::AsyncWriteExt;

const CLEAN: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_QOS_1: u8 = 0x08;
const WILL_QOS_3: u8 = 0x18;
const WILL_RETAIN: u8 = 0x20;
const RESERVED: u8 = 0x01;

/// A v5 payload: client id, will properties, will topic, will payload.
fn v5_will(properties: &[u8], topic: &[u8]) -> Vec<u8> {
    let mut payload = field(b"bad");
    payload.push(u8::try_from(properties.len()).unwrap());
    payload.extend_from_slice(properties);
    payload.extend(field(topic));
    payload.extend(field(b"never"));
    payload
}

/// A 3.1.1 payload: client id, will topic, will payload.
fn v311_will(topic: &[u8]) -> Vec<u8> {
    [field(b"bad"), field(topic), field(b"never")].concat()
}

/// (what, CONNECT bytes, expected response: the CONNACK bytes, or empty for a bare close)
fn cases() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let v5 = |flags, payload: Vec<u8>| raw_connect(5, flags, Some(&[]), &payload);
    let v311 = |flags, payload: Vec<u8>| raw_connect(4, flags, None, &payload);
    let connack = |code: u8| vec![0x20, 0x03, 0x00, code, 0x00];
    let none = Vec::new;
    vec![
        // {W5-QOS3} / 3.1.1 [MQTT-3.1.2-14]
        (
            "v5 will QoS 3",
            v5(CLEAN | WILL | WILL_QOS_3, v5_will(&[], b"t")),
            connack(0x81),
        ),
        (
            "3.1.1 will QoS 3",
            v311(CLEAN | WILL | WILL_QOS_3, v311_will(b"t")),
            none(),
        ),
        // [MQTT-3.1.2-11] (v5) / [MQTT-3.1.2-13] (3.1.1)
        (
            "v5 will QoS without will flag",
            v5(CLEAN | WILL_QOS_1, field(b"bad")),
            connack(0x81),
        ),
        (
            "3.1.1 will QoS without will flag",
            v311(CLEAN | WILL_QOS_1, field(b"bad")),
            none(),
        ),
        // [MQTT-3.1.2-13] (v5) / [MQTT-3.1.2-15] (3.1.1)
        (
            "v5 will retain without will flag",
            v5(CLEAN | WILL_RETAIN, field(b"bad")),
            connack(0x81),
        ),
        (
            "3.1.1 will retain without will flag",
            v311(CLEAN | WILL_RETAIN, field(b"bad")),
            none(),
        ),
        // [MQTT-3.1.2-3]
        (
            "v5 reserved bit",
            v5(CLEAN | WILL | RESERVED, v5_will(&[], b"t")),
            connack(0x81),
        ),
        (
            "3.1.1 reserved bit",
            v311(CLEAN | WILL | RESERVED, v311_will(b"t")),
            none(),
        ),
        // [MQTT-3.1.3-11] [MQTT-1.5.4-1] / [MQTT-3.1.3-10] [MQTT-1.5.3-1]
        (
            "v5 invalid UTF-8 will topic",
            v5(CLEAN | WILL, v5_will(&[], &[0xED, 0xA0, 0x80])),
            connack(0x81),
        ),
        (
            "3.1.1 invalid UTF-8 will topic",
            v311(CLEAN | WILL, v311_will(&[0xFF])),
            none(),
        ),
        // [MQTT-1.5.4-2] / [MQTT-1.5.3-2]
        (
            "v5 U+0000 in will topic",
            v5(CLEAN | WILL, v5_will(&[], b"a\0b")),
            connack(0x81),
        ),
        (
            "3.1.1 U+0000 in will topic",
            v311(CLEAN | WILL, v311_will(b"a\0b")),
            none(),
        ),
        // [MQTT-4.7.0-1] / [MQTT-4.7.1-1]: 0x90 Topic Name invalid
        (
            "v5 wildcard will topic",
            v5(CLEAN | WILL, v5_will(&[], b"a/#")),
            connack(0x90),
        ),
        (
            "3.1.1 wildcard will topic",
            v311(CLEAN | WILL, v311_will(b"a/+")),
            none(),
        ),
        // [MQTT-4.7.3-1]
        (
            "v5 empty will topic",
            v5(CLEAN | WILL, v5_will(&[], b"")),
            connack(0x90),
        ),
        (
            "3.1.1 empty will topic",
            v311(CLEAN | WILL, v311_will(b"")),
            none(),
        ),
        // [MQTT-2.2.2-1]: the will property length is missing, so the topic length is read
        // as properties and the packet falls apart
        (
            "v5 missing will property length",
            v5(
                CLEAN | WILL,
                [field(b"bad"), field(b"t"), field(b"never")].concat(),
            ),
            connack(0x81),
        ),
        // {W5-WDI-DUP}: Will Delay Interval twice
        (
            "v5 duplicate will property",
            v5(
                CLEAN | WILL,
                v5_will(&[0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 2], b"t"),
            ),
            connack(0x82),
        ),
        // {W5-PROP-ID}: Session Expiry Interval is not a will property
        (
            "v5 invalid will property id",
            v5(CLEAN | WILL, v5_will(&[0x11, 0, 0, 0, 1], b"t")),
            connack(0x81),
        ),
    ]
}

#[tokio::test]
async fn malformed_wills_get_the_exact_response_and_are_never_published() {
    let broker = start_broker().await;
    let mut watcher = subscriber(broker.addr, "watcher", "#").await;

    for (what, bytes, expected) in cases() {
        let mut stream = tokio::net::TcpStream::connect(broker.addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let response = read_to_close(&mut stream).await;
        assert_eq!(response, expected, "{what}: response before the close");
    }

    // the control: a valid will, published when its connection drops
    let mut control = Client::connect(broker.addr, Protocol::V5).await;
    let mut connect = Connect::new(Protocol::V5, "control");
    connect.will = Some(LastWill {
        topic: "control".into(),
        payload: "gone".into(),
        qos: QoS::AtMostOnce,
        retain: false,
        delay_interval: None,
        properties: Default::default(),
    });
    control.send(Packet::Connect(connect)).await;
    assert!(matches!(control.recv().await, Some(Packet::ConnAck(c)) if c.code.is_success()));
    drop(control);
    match watcher.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(
            p.topic, "control",
            "a malformed connection's will was published"
        ),
        other => panic!("expected the control will, got {other:?}"),
    }
}
