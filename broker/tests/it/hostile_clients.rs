//! The reference broker against hostile and heavy clients (issue 10), over real TCP on
//! 127.0.0.1. Each test is one attack; each asserts an outcome: another client is answered
//! before its keep-alive runs out, memory stays within the configured bound as the broker's
//! own accounting reports it, every will and message arrives. Every wait is bounded.

use std::time::Duration;

use crate::support::{Client, TestBroker, start_broker, start_broker_with};
use bytes::{Bytes, BytesMut};
use lastwill_broker::codec::{
    self, Ack, Connect, LastWill, MessageProperties, Packet, Protocol, Publish, QoS, Subscribe,
    SubscriptionRequest,
};
use lastwill_broker::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A generous bound for anything that should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

async fn connected(broker: &TestBroker, connect: Connect) -> Client {
    let mut client = Client::connect(broker.addr, connect.protocol).await;
    client.send(Packet::Connect(connect)).await;
    match client.recv().await {
        Some(Packet::ConnAck(c)) if c.code.is_success() => client,
        other => panic!("expected CONNACK 0x00, got {other:?}"),
    }
}

async fn subscribe(client: &mut Client, filter: &str, qos: QoS) {
    client
        .send(Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![SubscriptionRequest::new(filter, qos)],
            subscription_identifier: None,
            user_properties: vec![],
        }))
        .await;
    match client.recv_within(PATIENCE).await {
        Some(Packet::SubAck(_)) => {}
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn encoded(packets: impl IntoIterator<Item = Packet>, protocol: Protocol) -> BytesMut {
    let mut out = BytesMut::new();
    for packet in packets {
        codec::encode(&packet, protocol, &mut out).unwrap();
    }
    out
}

fn qos1(topic: &str, payload: Bytes, packet_id: u16) -> Packet {
    let mut publish = Publish::new(topic, payload, QoS::AtLeastOnce);
    publish.packet_id = Some(packet_id);
    Packet::Publish(publish)
}

fn will(topic: &str, payload: Bytes, qos: QoS) -> LastWill {
    LastWill {
        topic: topic.into(),
        payload,
        qos,
        retain: false,
        delay_interval: None,
        properties: MessageProperties::default(),
    }
}

/// A publisher that writes `bytes` in one go from its own task, reading (and ignoring)
/// whatever the broker answers so that its acks never back up.
async fn pipelined_publisher(broker: &TestBroker, client_id: &str, bytes: BytesMut) {
    let publisher = connected(broker, Connect::new(Protocol::V5, client_id)).await;
    let (mut read, mut write) = publisher.stream.into_split();
    tokio::spawn(async move {
        let mut sink = vec![0; 64 * 1024];
        while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    tokio::spawn(async move {
        write.write_all(&bytes).await.unwrap();
        // keep the connection open until the test ends
        std::future::pending::<()>().await;
    });
}

/// Sends `publishes` (QoS 1) from a new client `publisher` in one write and waits for the
/// `count` PUBACKs.
async fn publish_acknowledged(
    broker: &TestBroker,
    publishes: impl IntoIterator<Item = Packet>,
    count: usize,
) {
    let mut publisher = connected(broker, Connect::new(Protocol::V5, "publisher")).await;
    publisher
        .stream
        .write_all(&encoded(publishes, Protocol::V5))
        .await
        .unwrap();
    for _ in 0..count {
        assert!(matches!(
            publisher.recv_within(PATIENCE).await,
            Some(Packet::PubAck(_))
        ));
    }
}

/// Pings with `client` and asserts the PINGRESP comes before its keep-alive runs out.
async fn answered_within_keep_alive(client: &mut Client, keep_alive: Duration, when: &str) {
    client.send(Packet::PingReq).await;
    match client.recv_within(keep_alive).await {
        Some(Packet::PingResp) => {}
        other => panic!("{when}: no PINGRESP within the keep-alive of {keep_alive:?}: {other:?}"),
    }
}

/// A client with a 10 s keep-alive that pings every second, from its own task, and fails
/// (when joined) if a PINGRESP ever took longer than its keep-alive. Stops when `stop` fires.
async fn keep_alive_watch(
    broker: &TestBroker,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<usize> {
    const KEEP_ALIVE: u16 = 10;
    let connect = Connect {
        keep_alive: KEEP_ALIVE,
        ..Connect::new(Protocol::V5, "pinger")
    };
    let mut pinger = connected(broker, connect).await;
    tokio::spawn(async move {
        let mut stop = std::pin::pin!(stop);
        let mut pings = 0;
        loop {
            let keep_alive = Duration::from_secs(KEEP_ALIVE.into());
            answered_within_keep_alive(&mut pinger, keep_alive, &format!("ping {pings}")).await;
            pings += 1;
            tokio::select! {
                biased;
                _ = &mut stop => return pings,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}

/// The next PUBLISH on `client`, skipping nothing else.
async fn next_publish(client: &mut Client, wait: Duration) -> Option<Publish> {
    match client.recv_within(wait).await {
        Some(Packet::Publish(publish)) => Some(publish),
        Some(other) => panic!("expected PUBLISH, got {other:?}"),
        None => None,
    }
}

// ---- One client stalls every client ------------------------------------------------------

/// A subscriber fills the whole packet-id space (65,535 QoS 1 messages in flight, the most
/// MQTT allows), then acks, one after another, the id just behind the last one sent. With a
/// linear search for a free packet id each of those PUBACKs cost the broker seconds; another
/// client's PINGREQ must still be answered within its keep-alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_back_pubacks_acked_behind_the_last_id_do_not_stall_other_clients() {
    const WINDOW: usize = u16::MAX as usize;
    const QUEUED: usize = 5;
    let broker = start_broker_with(Config {
        max_inflight: u16::MAX,
        max_queued_messages: QUEUED,
        ..Config::default()
    })
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let pinger = keep_alive_watch(&broker, stopped).await;
    let mut hoarder = connected(&broker, Connect::new(Protocol::V5, "hoarder")).await;
    subscribe(&mut hoarder, "flood", QoS::AtLeastOnce).await;

    let payload = Bytes::from_static(b"x");
    let publishes =
        (0..WINDOW + QUEUED).map(|i| qos1("flood", payload.clone(), (i % WINDOW) as u16 + 1));
    pipelined_publisher(&broker, "publisher", encoded(publishes, Protocol::V5)).await;

    // read the whole window without acking anything
    let mut last_id = 0;
    for n in 0..WINDOW {
        let publish = next_publish(&mut hoarder, PATIENCE)
            .await
            .unwrap_or_else(|| panic!("only {n} of {WINDOW} messages arrived"));
        last_id = publish.packet_id.unwrap();
    }
    assert_eq!(last_id, u16::MAX);

    // five PUBACKs, each for the id just behind the last one sent, in one write
    let acks = (0..QUEUED as u16).map(|k| Packet::PubAck(Ack::success(u16::MAX - 1 - k)));
    hoarder
        .stream
        .write_all(&encoded(acks, Protocol::V5))
        .await
        .unwrap();
    for n in 0..QUEUED {
        assert!(
            next_publish(&mut hoarder, PATIENCE).await.is_some(),
            "queued message {n} was not sent when the window opened"
        );
    }
    stop.send(()).unwrap();
    assert!(pinger.await.unwrap() > 0);
}

/// A v5 client that sets no Receive Maximum gets at most `max_inflight` unacknowledged QoS 1
/// messages at a time, not 65,535.
#[tokio::test]
async fn a_client_without_receive_maximum_gets_at_most_max_inflight_unacked() {
    let broker = start_broker().await;
    let mut hoarder = connected(&broker, Connect::new(Protocol::V5, "hoarder")).await;
    subscribe(&mut hoarder, "flood", QoS::AtLeastOnce).await;
    let publishes = (1..=200).map(|i| qos1("flood", Bytes::from_static(b"x"), i));
    pipelined_publisher(&broker, "publisher", encoded(publishes, Protocol::V5)).await;

    let mut unacked = 0;
    while next_publish(&mut hoarder, Duration::from_millis(500))
        .await
        .is_some()
    {
        unacked += 1;
        assert!(unacked <= 32, "{unacked} QoS 1 messages in flight");
    }
    assert_eq!(unacked, 32);
}

// ---- Memory without bound -------------------------------------------------------------------

/// A subscriber that reads but never acks, under 2,000 QoS 1 messages of 16 KiB (32 MB):
/// at most `max_inflight` are sent to it, and what its session holds, in flight and queued,
/// stays within `max_queued_bytes`; the rest is dropped and counted.
#[tokio::test]
async fn a_subscriber_that_reads_but_never_acks_holds_bounded_memory() {
    const MAX_QUEUED: usize = 1 << 20;
    let broker = start_broker_with(Config {
        max_queued_bytes: MAX_QUEUED,
        ..Config::default()
    })
    .await;
    let mut hoarder = connected(&broker, Connect::new(Protocol::V5, "hoarder")).await;
    subscribe(&mut hoarder, "flood", QoS::AtLeastOnce).await;
    let payload = Bytes::from(vec![b'q'; 16 * 1024]);
    let publishes = (1..=2000).map(|i| qos1("flood", payload.clone(), i));
    publish_acknowledged(&broker, publishes, 2000).await;
    let mut received = 0;
    while next_publish(&mut hoarder, Duration::from_millis(300))
        .await
        .is_some()
    {
        received += 1;
    }
    assert_eq!(received, 32, "messages of 16 KiB in flight without an ack");
    let metrics = broker.metrics.snapshot();
    assert!(
        metrics.peak_session_queued_bytes <= MAX_QUEUED,
        "{metrics:?}"
    );
    assert!(metrics.dropped_queued_messages > 0, "{metrics:?}");
}

/// Twenty subscribers that never read, under a flood of 64 KiB QoS 0 messages (25 MiB for
/// each): what waits for each stays within `max_queued_bytes` plus the write window, the
/// oldest messages are dropped and counted, and the publisher is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_reading_subscribers_under_a_qos0_flood_hold_bounded_memory() {
    const MAX_QUEUED: usize = 1 << 20;
    const PAYLOAD: usize = 64 * 1024;
    let broker = start_broker_with(Config {
        max_queued_bytes: MAX_QUEUED,
        ..Config::default()
    })
    .await;
    let mut stuck = Vec::new();
    for i in 0..20 {
        let mut client = connected(&broker, Connect::new(Protocol::V5, format!("stuck-{i}"))).await;
        subscribe(&mut client, "flood", QoS::AtMostOnce).await;
        stuck.push(client);
    }
    let mut publisher = connected(&broker, Connect::new(Protocol::V5, "publisher")).await;
    let payload = Bytes::from(vec![b'f'; PAYLOAD]);
    for _ in 0..400 {
        publisher
            .send(Packet::Publish(Publish::new(
                "flood",
                payload.clone(),
                QoS::AtMostOnce,
            )))
            .await;
    }
    answered_within_keep_alive(&mut publisher, PATIENCE, "after the flood").await;
    let metrics = broker.metrics.snapshot();
    // the outbox bound, the write window (256 KiB) and one packet on top of it
    let bound = MAX_QUEUED + 256 * 1024 + PAYLOAD + 64;
    assert!(metrics.peak_connection_queued_bytes <= bound, "{metrics:?}");
    assert!(metrics.peak_queued_bytes <= 21 * bound, "{metrics:?}");
    assert!(metrics.dropped_messages > 0, "{metrics:?}");
}

/// Connections that start a 1 MiB frame, send 100 KiB of it and stop, after a CONNECT with
/// keep-alive 0 (so no keep-alive ever closes them): their buffers hold what arrived, not
/// what the frame announced, and they are closed once `frame_timeout` has passed.
#[tokio::test]
async fn unfinished_frames_are_closed_after_the_frame_time_limit() {
    const HOLDERS: usize = 50;
    let broker = start_broker_with(Config {
        frame_timeout: 1,
        ..Config::default()
    })
    .await;
    let mut holders = Vec::new();
    for i in 0..HOLDERS {
        holders.push(unfinished_frame(&broker, &format!("holder-{i}"), 100 * 1024).await);
    }
    for (i, stream) in holders.iter_mut().enumerate() {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "connection {i} with an unfinished frame is still open"
        );
    }
    let metrics = broker.metrics.snapshot();
    assert_eq!(metrics.unfinished_frames, HOLDERS as u64, "{metrics:?}");
    assert!(
        metrics.peak_read_buffer_bytes <= HOLDERS * 256 * 1024,
        "{metrics:?}"
    );
}

/// A v5 connection with keep-alive 0 that has sent `sent` bytes of a PUBLISH announcing
/// 1 MiB - 8 bytes, and nothing since.
async fn unfinished_frame(broker: &TestBroker, client_id: &str, sent: usize) -> TcpStream {
    let mut stream = connected_with_keep_alive_0(broker, client_id).await;
    start_frame(&mut stream, sent).await;
    stream
}

async fn connected_with_keep_alive_0(broker: &TestBroker, client_id: &str) -> TcpStream {
    let connect = Connect {
        keep_alive: 0,
        ..Connect::new(Protocol::V5, client_id)
    };
    connected(broker, connect).await.stream
}

async fn start_frame(stream: &mut TcpStream, sent: usize) {
    let mut frame = vec![0x30, 0xF8, 0xFF, 0x3F];
    frame.extend(vec![0; sent]);
    stream.write_all(&frame).await.unwrap();
}

/// Past the memory budget (here spent on the read buffers of unfinished frames) new clients
/// are refused with CONNACK 0x97 (v5) / 0x03 (3.1.1); once the memory is free again they are
/// accepted.
#[tokio::test]
async fn new_connections_are_refused_past_the_memory_budget() {
    let broker = start_broker_with(Config {
        memory_budget: 2 << 20,
        ..Config::default()
    })
    .await;
    // connected while the budget is untouched, then each sends half a frame
    let mut holders = Vec::new();
    for i in 0..8 {
        holders.push(connected_with_keep_alive_0(&broker, &format!("holder-{i}")).await);
    }
    for stream in &mut holders {
        start_frame(stream, 512 * 1024).await;
    }
    // the holders' bytes reach the broker's buffers in their own time
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while broker.metrics.memory_in_use() <= 2 << 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            broker.metrics.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (protocol, code) in [(Protocol::V5, 0x97), (Protocol::V311, 0x03)] {
        let mut client = Client::connect(broker.addr, protocol).await;
        client
            .send(Packet::Connect(Connect::new(protocol, "late")))
            .await;
        match client.recv().await {
            Some(Packet::ConnAck(c)) => assert_eq!(u8::from(c.code), code, "{protocol}"),
            other => panic!("{protocol}: expected CONNACK {code:#04x}, got {other:?}"),
        }
        assert!(client.recv().await.is_none(), "{protocol}: not closed");
    }
    assert_eq!(broker.metrics.snapshot().refused_connections, 2);
    drop(holders);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while broker.metrics.memory_in_use() > 2 << 20 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    connected(&broker, Connect::new(Protocol::V5, "later")).await;
}

// ---- Fast clients dropped -------------------------------------------------------------------

/// Reads `count` PUBLISH of `size` payload bytes, or says how many came.
async fn receive_all(client: &mut Client, count: usize, size: usize) {
    for n in 0..count {
        match next_publish(client, PATIENCE).await {
            Some(publish) => assert_eq!(publish.payload.len(), size),
            None => panic!("only {n} of {count} messages arrived"),
        }
    }
}

const MIB: usize = 1000 * 1000;

#[tokio::test]
async fn a_subscription_matching_12_mb_of_retained_messages_gets_its_suback_and_all_of_them() {
    let broker = start_broker().await;
    let mut publisher = connected(&broker, Connect::new(Protocol::V5, "publisher")).await;
    let payload = Bytes::from(vec![b'r'; MIB]);
    for i in 0..12 {
        let mut publish = Publish::new(format!("retained/{i}"), payload.clone(), QoS::AtMostOnce);
        publish.retain = true;
        publisher.send(Packet::Publish(publish)).await;
    }
    answered_within_keep_alive(&mut publisher, PATIENCE, "after retaining").await;
    let mut reader = connected(&broker, Connect::new(Protocol::V5, "reader")).await;
    subscribe(&mut reader, "retained/#", QoS::AtMostOnce).await;
    receive_all(&mut reader, 12, MIB).await;
}

#[tokio::test]
async fn a_session_resumed_with_15_mb_queued_gets_its_connack_and_every_message() {
    let broker = start_broker().await;
    let persistent = || Connect {
        clean_start: false,
        session_expiry_interval: Some(600),
        ..Connect::new(Protocol::V5, "resumer")
    };
    let mut reader = connected(&broker, persistent()).await;
    subscribe(&mut reader, "queued", QoS::AtLeastOnce).await;
    drop(reader);
    let payload = Bytes::from(vec![b'q'; MIB]);
    let publishes = (1..=15).map(|i| qos1("queued", payload.clone(), i));
    publish_acknowledged(&broker, publishes, 15).await;
    let mut reader = Client::connect(broker.addr, Protocol::V5).await;
    reader.send(Packet::Connect(persistent())).await;
    match reader.recv_within(PATIENCE).await {
        Some(Packet::ConnAck(c)) => assert!(c.session_present),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    for n in 0..15 {
        let publish = next_publish(&mut reader, PATIENCE)
            .await
            .unwrap_or_else(|| panic!("only {n} of 15 queued messages arrived"));
        reader
            .send(Packet::PubAck(Ack::success(publish.packet_id.unwrap())))
            .await;
    }
}

#[tokio::test]
async fn forty_pipelined_1_mb_publishes_all_reach_a_reading_subscriber() {
    let broker = start_broker().await;
    let mut reader = connected(&broker, Connect::new(Protocol::V5, "reader")).await;
    subscribe(&mut reader, "big", QoS::AtMostOnce).await;
    let payload = Bytes::from(vec![b'b'; MIB]);
    let publishes =
        (0..40).map(|_| Packet::Publish(Publish::new("big", payload.clone(), QoS::AtMostOnce)));
    pipelined_publisher(&broker, "publisher", encoded(publishes, Protocol::V5)).await;
    receive_all(&mut reader, 40, MIB).await;
}

// ---- Wills lost at shutdown -----------------------------------------------------------------

/// `count` v5 clients with a will of `size` bytes at `qos` on `will/<i>`.
async fn will_clients(broker: &TestBroker, count: usize, size: usize, qos: QoS) -> Vec<Client> {
    let payload = Bytes::from(vec![b'w'; size]);
    let mut clients = Vec::new();
    for i in 0..count {
        let connect = Connect {
            will: Some(will(&format!("will/{i}"), payload.clone(), qos)),
            ..Connect::new(Protocol::V5, format!("will-{i}"))
        };
        clients.push(connected(broker, connect).await);
    }
    clients
}

/// Acks every QoS 1 PUBLISH and counts them until the broker closes the connection.
async fn count_until_closed(mut subscriber: Client) -> usize {
    let mut received = 0;
    loop {
        match subscriber.recv_within(PATIENCE).await {
            Some(Packet::Publish(publish)) => {
                received += 1;
                if let Some(id) = publish.packet_id {
                    // the broker may already be closing: a failed ack changes nothing
                    let ack = encoded([Packet::PubAck(Ack::success(id))], Protocol::V5);
                    let _ = subscriber.stream.write_all(&ack).await;
                }
            }
            Some(Packet::Disconnect(_)) => {}
            Some(other) => panic!("unexpected {other:?}"),
            None => return received,
        }
    }
}

#[tokio::test]
async fn shutdown_delivers_every_will_to_a_subscriber_with_receive_maximum_20() {
    let broker = start_broker().await;
    let mut subscriber = connected(
        &broker,
        Connect {
            receive_maximum: Some(20),
            ..Connect::new(Protocol::V5, "subscriber")
        },
    )
    .await;
    subscribe(&mut subscriber, "will/#", QoS::AtLeastOnce).await;
    let _clients = will_clients(&broker, 300, 16, QoS::AtLeastOnce).await;
    let counted = tokio::spawn(count_until_closed(subscriber));
    broker.shut_down().await;
    assert_eq!(counted.await.unwrap(), 300);
}

#[tokio::test]
async fn shutdown_delivers_10_mb_of_wills() {
    let broker = start_broker().await;
    let mut subscriber = connected(&broker, Connect::new(Protocol::V5, "subscriber")).await;
    subscribe(&mut subscriber, "will/#", QoS::AtMostOnce).await;
    let _clients = will_clients(&broker, 200, 50 * 1000, QoS::AtMostOnce).await;
    let counted = tokio::spawn(count_until_closed(subscriber));
    broker.shut_down().await;
    assert_eq!(counted.await.unwrap(), 200);
}

// ---- $SYS is writable -----------------------------------------------------------------------

/// Whatever reaches `watcher` first: a `$SYS` message would come before the control message
/// published after it.
async fn first_topic(watcher: &mut Client) -> String {
    next_publish(watcher, PATIENCE)
        .await
        .expect("no message")
        .topic
}

async fn sys_watcher(broker: &TestBroker) -> Client {
    let mut watcher = connected(broker, Connect::new(Protocol::V5, "watcher")).await;
    subscribe(&mut watcher, "$SYS/#", QoS::AtMostOnce).await;
    subscribe(&mut watcher, "control", QoS::AtMostOnce).await;
    watcher
}

#[tokio::test]
async fn v5_publish_to_sys_is_refused_with_puback_0x87() {
    let broker = start_broker().await;
    let mut watcher = sys_watcher(&broker).await;
    let mut client = connected(&broker, Connect::new(Protocol::V5, "intruder")).await;
    let mut publish = Publish::new("$SYS/broker/uptime", "forged", QoS::AtLeastOnce);
    publish.packet_id = Some(7);
    publish.retain = true;
    client.send(Packet::Publish(publish)).await;
    match client.recv().await {
        Some(Packet::PubAck(ack)) => assert_eq!((ack.packet_id, u8::from(ack.code)), (7, 0x87)),
        other => panic!("expected PUBACK 0x87, got {other:?}"),
    }
    client
        .send(Packet::Publish(Publish::new(
            "control",
            "c",
            QoS::AtMostOnce,
        )))
        .await;
    assert_eq!(first_topic(&mut watcher).await, "control");
    // and nothing was retained: a new subscriber to $SYS/# gets no retained message
    let mut late = connected(&broker, Connect::new(Protocol::V5, "late")).await;
    subscribe(&mut late, "$SYS/#", QoS::AtMostOnce).await;
    assert!(
        next_publish(&mut late, Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn v311_publish_to_sys_is_dropped() {
    let broker = start_broker().await;
    let mut watcher = sys_watcher(&broker).await;
    let mut client = connected(&broker, Connect::new(Protocol::V311, "intruder")).await;
    client
        .send(Packet::Publish(Publish::new(
            "$SYS/broker/x",
            "forged",
            QoS::AtMostOnce,
        )))
        .await;
    client
        .send(Packet::Publish(Publish::new(
            "control",
            "c",
            QoS::AtMostOnce,
        )))
        .await;
    assert_eq!(first_topic(&mut watcher).await, "control");
}

#[tokio::test]
async fn a_will_to_sys_is_refused_at_connect() {
    let broker = start_broker().await;
    for (protocol, code) in [(Protocol::V5, 0x87), (Protocol::V311, 0x05)] {
        let mut client = Client::connect(broker.addr, protocol).await;
        let connect = Connect {
            will: Some(will(
                "$SYS/broker/will",
                Bytes::from_static(b"w"),
                QoS::AtMostOnce,
            )),
            ..Connect::new(protocol, "intruder")
        };
        client.send(Packet::Connect(connect)).await;
        match client.recv().await {
            Some(Packet::ConnAck(c)) => assert_eq!(u8::from(c.code), code, "{protocol}"),
            other => panic!("{protocol}: expected CONNACK {code:#04x}, got {other:?}"),
        }
        assert!(client.recv().await.is_none(), "{protocol}: not closed");
    }
}

// ---- The README's CONNACK 0x95 ----------------------------------------------------------

#[tokio::test]
async fn an_oversized_v5_connect_gets_connack_0x95() {
    let broker = start_broker().await;
    let mut stream = TcpStream::connect(broker.addr).await.unwrap();
    // CONNECT, Remaining Length 2 MiB, protocol name and level 5; the rest never comes
    let mut frame = vec![0x10, 0x80, 0x80, 0x80, 0x01];
    frame.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0]);
    stream.write_all(&frame).await.unwrap();
    let response = crate::support::read_to_close(&mut stream).await;
    assert_eq!(response, [0x20, 0x03, 0x00, 0x95, 0x00]);
}

// ---- Cost: logging --------------------------------------------------------------------------

/// Collects what the broker logs at the default level (INFO) on this test's thread.
#[derive(Clone, Default)]
struct LogLines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogLines {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }
}

#[tokio::test]
async fn the_default_log_level_writes_no_line_per_client_or_per_dropped_message() {
    let log = LogLines::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let broker = start_broker_with(Config {
        max_queued_messages: 10,
        ..Config::default()
    })
    .await;

    // 50 client lifecycles: connect with a will, drop, will published
    let mut watcher = connected(&broker, Connect::new(Protocol::V5, "watcher")).await;
    subscribe(&mut watcher, "will/#", QoS::AtMostOnce).await;
    drop(will_clients(&broker, 50, 8, QoS::AtMostOnce).await);
    for _ in 0..50 {
        assert!(next_publish(&mut watcher, PATIENCE).await.is_some());
    }
    // an offline session whose queue overflows 990 times
    let offline = Connect {
        clean_start: false,
        session_expiry_interval: Some(600),
        ..Connect::new(Protocol::V5, "offline")
    };
    let mut client = connected(&broker, offline).await;
    subscribe(&mut client, "queued", QoS::AtLeastOnce).await;
    drop(client);
    let publishes = (1..=1000).map(|i| qos1("queued", Bytes::from_static(b"q"), i));
    publish_acknowledged(&broker, publishes, 1000).await;
    let lines = log.lines();
    assert!(
        lines.len() <= 5,
        "{} lines at INFO and above, e.g.:\n{}",
        lines.len(),
        lines[..lines.len().min(8)].join("\n")
    );
}
