//! Unit tests of the core's will rules, without tokio: packets and time go in, outputs come
//! out. Each test names the spec statement it checks.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::{Broker, ConnectionId, Output};
use crate::codec::{
    Ack, ConnAck, ConnAckCode, Connect, ConnectReturnCode, DecodeError, DecodeErrorKind,
    Disconnect, LastWill, MessageProperties, Packet, Protocol, Publish, QoS, ReasonCode,
    RetainHandling, Subscribe, SubscriptionRequest,
};
use crate::config::Config;

/// What one connection saw, with the time it happened.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Packet(Duration, Box<Packet>),
    Closed(Duration),
}

/// Drives a core like a driver would, recording everything per connection.
struct Rig {
    broker: Broker,
    now: Duration,
    next_id: ConnectionId,
    seen: BTreeMap<ConnectionId, Vec<Seen>>,
}

const V5: Protocol = Protocol::V5;
const V311: Protocol = Protocol::V311;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn will(topic: &str, payload: &str) -> LastWill {
    LastWill {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos: QoS::AtMostOnce,
        retain: false,
        delay_interval: None,
        properties: MessageProperties::default(),
    }
}

fn connect(protocol: Protocol, client_id: &str) -> Connect {
    Connect::new(protocol, client_id)
}

fn with_will(protocol: Protocol, client_id: &str, will: LastWill) -> Connect {
    Connect {
        will: Some(will),
        ..connect(protocol, client_id)
    }
}

fn delayed(delay: u32, session_expiry: Option<u32>) -> Connect {
    let mut w = will("status/dev", "offline");
    w.delay_interval = Some(delay);
    Connect {
        session_expiry_interval: session_expiry,
        ..with_will(V5, "dev", w)
    }
}

impl Rig {
    fn new() -> Rig {
        Rig::with_config(Config::default())
    }

    fn with_config(config: Config) -> Rig {
        Rig {
            broker: Broker::new(config),
            now: Duration::ZERO,
            next_id: 1,
            seen: BTreeMap::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(output) = self.broker.poll_output() {
            match output {
                Output::Send {
                    connection, packet, ..
                } => self
                    .seen
                    .entry(connection)
                    .or_default()
                    .push(Seen::Packet(self.now, Box::new(packet))),
                Output::Close { connection } => self
                    .seen
                    .entry(connection)
                    .or_default()
                    .push(Seen::Closed(self.now)),
            }
        }
    }

    /// Opens a connection and sends `connect` on it; returns the id and the CONNACK, if any.
    fn connect(&mut self, connect: Connect) -> (ConnectionId, Option<ConnAck>) {
        let id = self.next_id;
        self.next_id += 1;
        self.broker.connection_opened(self.now, id);
        self.packet(id, Packet::Connect(connect));
        let connack = self.packets(id).into_iter().find_map(|p| match p {
            Packet::ConnAck(c) => Some(c),
            _ => None,
        });
        (id, connack)
    }

    /// Connects and asserts success.
    fn online(&mut self, connect: Connect) -> ConnectionId {
        let protocol = connect.protocol;
        let (id, connack) = self.connect(connect);
        let accepted = ConnAckCode::success(protocol);
        assert_eq!(connack.map(|c| c.code), Some(accepted), "CONNACK");
        id
    }

    fn subscriber(
        &mut self,
        protocol: Protocol,
        client_id: &str,
        filter: &str,
        qos: QoS,
    ) -> ConnectionId {
        let id = self.online(connect(protocol, client_id));
        self.subscribe(id, SubscriptionRequest::new(filter, qos));
        id
    }

    fn subscribe(&mut self, id: ConnectionId, request: SubscriptionRequest) {
        self.subscribe_with_id(id, request, None)
    }

    fn subscribe_with_id(
        &mut self,
        id: ConnectionId,
        request: SubscriptionRequest,
        subscription_id: Option<u32>,
    ) {
        self.packet(
            id,
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![request],
                subscription_identifier: subscription_id,
                user_properties: vec![],
            }),
        );
    }

    fn packet(&mut self, id: ConnectionId, packet: Packet) {
        self.broker.packet_received(self.now, id, packet);
        self.drain();
    }

    fn lose(&mut self, id: ConnectionId) {
        self.broker.connection_lost(self.now, id);
        self.drain();
    }

    fn disconnect(&mut self, id: ConnectionId, disconnect: Disconnect) {
        self.packet(id, Packet::Disconnect(disconnect));
    }

    /// Advances virtual time by `by`, firing timers at their exact due times.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(due) = self.broker.next_deadline().filter(|d| *d <= target) {
            self.now = self.now.max(due);
            self.broker.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    fn packets(&self, id: ConnectionId) -> Vec<Packet> {
        self.seen
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(|s| match s {
                Seen::Packet(_, p) => Some((**p).clone()),
                Seen::Closed(_) => None,
            })
            .collect()
    }

    /// PUBLISH packets `id` received, with their arrival times.
    fn publishes(&self, id: ConnectionId) -> Vec<(Duration, Publish)> {
        self.seen
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(|s| match s {
                Seen::Packet(at, packet) => match &**packet {
                    Packet::Publish(p) => Some((*at, p.clone())),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn payloads(&self, id: ConnectionId) -> Vec<String> {
        self.publishes(id)
            .into_iter()
            .map(|(_, p)| String::from_utf8_lossy(&p.payload).into_owned())
            .collect()
    }

    fn closed_at(&self, id: ConnectionId) -> Option<Duration> {
        self.seen.get(&id)?.iter().find_map(|s| match s {
            Seen::Closed(at) => Some(*at),
            _ => None,
        })
    }

    fn server_disconnect(&self, id: ConnectionId) -> Option<ReasonCode> {
        self.packets(id).into_iter().find_map(|p| match p {
            Packet::Disconnect(d) => Some(d.code),
            _ => None,
        })
    }
}

// ---- triggers -------------------------------------------------------------------------

#[test]
fn connection_lost_publishes_the_will_v5_and_v311() {
    // [MQTT-3.1.2-7] [MQTT-3.1.2-8]/a (v5), [MQTT-3.1.2-8] (3.1.1)
    for protocol in [V5, V311] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(protocol, "watcher", "t/1", QoS::AtMostOnce);
        let device = rig.online(with_will(
            protocol,
            "device",
            will("t/1", "A will message from MQTTX CLI"),
        ));
        rig.advance(secs(1.0));
        rig.lose(device);
        let got = rig.publishes(watcher);
        assert_eq!(got.len(), 1, "{protocol}");
        assert_eq!(got[0].0, secs(1.0));
        assert_eq!(got[0].1.topic, "t/1");
        assert_eq!(&got[0].1.payload[..], b"A will message from MQTTX CLI");
    }
}

#[test]
fn without_a_will_flag_nothing_is_published() {
    // [MQTT-3.1.2-12] (3.1.1)
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V311, "watcher", "#", QoS::AtMostOnce);
    let device = rig.online(connect(V311, "device"));
    rig.lose(device);
    assert!(rig.publishes(watcher).is_empty());
}

#[test]
fn normal_disconnect_discards_the_will() {
    // [MQTT-3.14.4-3] (v5 reason 0x00, with and without a delay) and 3.1.1 DISCONNECT
    for (protocol, delay) in [(V5, None), (V5, Some(3)), (V311, None)] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(protocol, "watcher", "t/#", QoS::AtMostOnce);
        let mut w = will("t/1", "gone");
        w.delay_interval = delay;
        let device = rig.online(Connect {
            session_expiry_interval: delay.map(|_| 60),
            ..with_will(protocol, "device", w)
        });
        rig.disconnect(
            device,
            Disconnect::with_code(ReasonCode::NORMAL_DISCONNECTION),
        );
        assert!(rig.closed_at(device).is_some());
        rig.advance(secs(120.0));
        assert!(rig.publishes(watcher).is_empty(), "{protocol} {delay:?}");
        assert!(rig.broker.pending_wills().is_empty());
    }
}

#[test]
fn disconnect_with_will_message_publishes_it() {
    // Table 3-10 {W5-DISC-04}: the client asks for its will
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::AtMostOnce);
    let device = rig.online(with_will(V5, "device", will("t/1", "bye")));
    rig.disconnect(
        device,
        Disconnect::with_code(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE),
    );
    assert_eq!(rig.payloads(watcher), ["bye"]);
}

#[test]
fn every_client_reason_code_other_than_0x00_publishes_the_will() {
    // [MQTT-3.1.2-8]/d
    for code in [
        0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    ] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::AtMostOnce);
        let device = rig.online(with_will(V5, "device", will("t/1", "bye")));
        rig.disconnect(device, Disconnect::with_code(code.into()));
        assert_eq!(rig.payloads(watcher), ["bye"], "code 0x{code:02X}");
        assert_eq!(
            rig.server_disconnect(device),
            None,
            "no DISCONNECT back for 0x{code:02X}"
        );
    }
}

#[test]
fn disconnect_code_outside_table_3_10_is_malformed_and_publishes_the_will() {
    // [MQTT-3.14.2-1]: 0x01 and 0xFF are not client DISCONNECT codes
    for code in [0x01, 0x8E, 0xFF] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::AtMostOnce);
        let device = rig.online(with_will(V5, "device", will("t/1", "bye")));
        rig.disconnect(device, Disconnect::with_code(code.into()));
        assert_eq!(
            rig.server_disconnect(device),
            Some(ReasonCode::MALFORMED_PACKET)
        );
        assert_eq!(rig.payloads(watcher), ["bye"], "code 0x{code:02X}");
    }
}

#[test]
fn keep_alive_expiry_closes_at_one_and_a_half_times_and_publishes() {
    // [MQTT-3.1.2-22] (v5, with DISCONNECT 0x8D) and [MQTT-3.1.2-24] (3.1.1, bare close)
    for protocol in [V5, V311] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(protocol, "watcher", "t/1", QoS::AtMostOnce);
        let device = rig.online(Connect {
            keep_alive: 2,
            ..with_will(protocol, "device", will("t/1", "silent"))
        });
        rig.advance(secs(1.0));
        rig.packet(device, Packet::PingReq); // activity at 1 s moves the deadline to 4 s
        rig.advance(secs(2.9));
        assert_eq!(rig.closed_at(device), None, "{protocol}: too early");
        rig.advance(secs(0.2));
        assert_eq!(rig.closed_at(device), Some(secs(4.0)), "{protocol}");
        let expected = (protocol == V5).then_some(ReasonCode::KEEP_ALIVE_TIMEOUT);
        assert_eq!(rig.server_disconnect(device), expected);
        assert_eq!(rig.publishes(watcher)[0].0, secs(4.0));
    }
}

#[test]
fn server_keep_alive_replaces_the_clients() {
    // [MQTT-3.2.2-21] [MQTT-3.2.2-22]
    let mut rig = Rig::with_config(Config {
        server_keep_alive: Some(4),
        ..Config::default()
    });
    let (device, connack) = rig.connect(Connect {
        keep_alive: 60,
        ..with_will(V5, "device", will("t/1", "x"))
    });
    assert_eq!(connack.unwrap().properties.server_keep_alive, Some(4));
    rig.advance(secs(10.0));
    assert_eq!(rig.closed_at(device), Some(secs(6.0)));
}

#[test]
fn keep_alive_zero_never_times_out() {
    // {W5-KA0} {W3-KA0}
    let mut rig = Rig::new();
    let device = rig.online(Connect {
        keep_alive: 0,
        ..with_will(V5, "device", will("t/1", "x"))
    });
    rig.advance(secs(3600.0));
    assert_eq!(rig.closed_at(device), None);
}

#[test]
fn protocol_error_after_connack_publishes_the_will() {
    // [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error ([MQTT-3.1.2-8]/e, 3.1.1 /d)
    for protocol in [V5, V311] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(protocol, "watcher", "t/1", QoS::AtMostOnce);
        let device = rig.online(with_will(protocol, "device", will("t/1", "broken")));
        rig.packet(device, Packet::Connect(connect(protocol, "device")));
        let expected = (protocol == V5).then_some(ReasonCode::PROTOCOL_ERROR);
        assert_eq!(rig.server_disconnect(device), expected);
        assert!(rig.closed_at(device).is_some());
        assert_eq!(rig.payloads(watcher), ["broken"], "{protocol}");
    }
}

#[test]
fn malformed_packet_after_connack_publishes_the_will() {
    // [MQTT-4.13.1-1] then [MQTT-3.1.2-8]/e
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::AtMostOnce);
    let device = rig.online(with_will(V5, "device", will("t/1", "garbled")));
    let error = DecodeError {
        kind: DecodeErrorKind::Malformed,
        detail: "test".into(),
        protocol: None,
    };
    rig.broker.decode_failed(rig.now, device, &error);
    rig.drain();
    assert_eq!(
        rig.server_disconnect(device),
        Some(ReasonCode::MALFORMED_PACKET)
    );
    assert_eq!(rig.payloads(watcher), ["garbled"]);
}

// ---- refused CONNECTs ---------------------------------------------------------------

#[test]
fn malformed_connect_gets_connack_in_v5_and_bare_close_in_v311() {
    // [MQTT-3.1.4-1] [MQTT-3.2.2-6] [MQTT-3.2.2-7] [MQTT-3.14.0-1]
    for (protocol, expected) in [
        (
            Some(V5),
            Some(ConnAckCode::V5(ReasonCode::MALFORMED_PACKET)),
        ),
        (Some(V311), None),
        (None, None),
    ] {
        let mut rig = Rig::new();
        rig.broker.connection_opened(rig.now, 7);
        let error = DecodeError {
            kind: DecodeErrorKind::Malformed,
            detail: "will QoS 3".into(),
            protocol,
        };
        rig.broker.decode_failed(rig.now, 7, &error);
        rig.drain();
        let codes: Vec<_> = rig
            .packets(7)
            .into_iter()
            .map(|p| match p {
                Packet::ConnAck(c) => {
                    assert!(!c.session_present);
                    c.code
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            codes,
            expected.into_iter().collect::<Vec<_>>(),
            "{protocol:?}"
        );
        assert!(rig.closed_at(7).is_some());
        assert_eq!(rig.broker.session_count(), 0);
    }
}

#[test]
fn unsupported_protocol_level_is_refused_with_the_versions_code() {
    // [MQTT-3.1.2-2] (3.1.1: 0x01) and v5 0x84
    for (protocol, code) in [(V311, 0x01), (V5, 0x84)] {
        let mut rig = Rig::new();
        rig.broker.connection_opened(rig.now, 1);
        let error = DecodeError {
            kind: DecodeErrorKind::UnsupportedProtocolVersion,
            detail: "level 6".into(),
            protocol: Some(protocol),
        };
        rig.broker.decode_failed(rig.now, 1, &error);
        rig.drain();
        let code = ConnAckCode::read(protocol, code);
        assert!(matches!(&rig.packets(1)[..], [Packet::ConnAck(c)] if c.code == code));
    }
}

#[test]
fn will_qos_above_maximum_qos_is_refused_with_0x9b() {
    // [MQTT-3.2.2-12]
    let mut rig = Rig::with_config(Config {
        max_qos: QoS::AtLeastOnce,
        ..Config::default()
    });
    let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::ExactlyOnce);
    let mut w = will("t/1", "x");
    w.qos = QoS::ExactlyOnce;
    let (device, connack) = rig.connect(with_will(V5, "device", w.clone()));
    let connack = connack.unwrap();
    assert_eq!(
        (connack.code, connack.session_present),
        (ConnAckCode::V5(ReasonCode::QOS_NOT_SUPPORTED), false)
    );
    assert!(rig.closed_at(device).is_some());
    rig.lose(device);
    assert!(rig.publishes(watcher).is_empty());
    // 3.1.1 has no code for it: close without CONNACK
    let (device, connack) = rig.connect(with_will(V311, "device3", w));
    assert_eq!(connack, None);
    assert!(rig.closed_at(device).is_some());
}

#[test]
fn retained_will_without_retain_support_is_refused_with_0x9a() {
    // [MQTT-3.2.2-13] {W5-RETAIN-AVAIL}
    let mut rig = Rig::with_config(Config {
        retain_available: false,
        ..Config::default()
    });
    let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::AtMostOnce);
    let mut w = will("t/1", "x");
    w.retain = true;
    let (_, connack) = rig.connect(with_will(V5, "device", w.clone()));
    assert_eq!(
        connack.unwrap().code,
        ConnAckCode::V5(ReasonCode::RETAIN_NOT_SUPPORTED)
    );
    w.retain = false;
    let (device, connack) = rig.connect(with_will(V5, "device", w));
    assert_eq!(connack.unwrap().properties.retain_available, Some(false));
    rig.lose(device);
    assert_eq!(rig.payloads(watcher), ["x"]);
}

#[test]
fn refused_credentials_store_no_will() {
    // [MQTT-3.1.2-8]/e (3.1.1) [MQTT-3.1.4-2]
    let mut rig = Rig::with_config(Config {
        credentials: vec![crate::config::Credential {
            username: "u".into(),
            password: "p".into(),
        }],
        ..Config::default()
    });
    let mut ok = connect(V311, "watcher");
    ok.username = Some("u".into());
    ok.password = Some(Bytes::from_static(b"p"));
    let watcher = rig.online(ok);
    rig.subscribe(watcher, SubscriptionRequest::new("#", QoS::AtMostOnce));
    let (device, connack) = rig.connect(with_will(V311, "device", will("t/1", "x")));
    assert_eq!(
        connack.unwrap().code,
        ConnAckCode::V311(ConnectReturnCode::BAD_USER_NAME_OR_PASSWORD)
    );
    rig.lose(device);
    assert!(rig.publishes(watcher).is_empty());
}

// ---- delay and session expiry ---------------------------------------------------------

#[test]
fn will_delay_elapses_before_publication() {
    // [MQTT-3.1.2-8]/a with WDI: not before the delay, at the delay
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
    let device = rig.online(delayed(5, Some(60)));
    rig.lose(device);
    rig.advance(secs(4.99));
    assert!(rig.publishes(watcher).is_empty());
    assert_eq!(rig.broker.pending_wills(), ["dev"]);
    rig.advance(secs(0.01));
    assert_eq!(rig.publishes(watcher)[0].0, secs(5.0));
}

#[test]
fn will_is_due_at_the_earlier_of_delay_and_session_end() {
    // {W5-WDI-MIN} [MQTT-3.1.2-8]/g {W5-SEI-ABSENT} {W5-SEI-MAX}
    for (delay, expiry, expected) in [
        (3, Some(10), 3.0),
        (10, Some(3), 3.0),
        (5, None, 0.0),
        (5, Some(0), 0.0),
        (3, Some(u32::MAX), 3.0),
    ] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
        let device = rig.online(delayed(delay, expiry));
        rig.lose(device);
        rig.advance(secs(100.0));
        let times: Vec<_> = rig
            .publishes(watcher)
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(times, [secs(expected)], "WDI={delay} SEI={expiry:?}");
    }
}

#[test]
fn later_shorter_delay_fires_before_earlier_longer_one() {
    // the timer queue orders by due time, not by interval
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "#", QoS::AtMostOnce);
    let mut long = will("long", "30s");
    long.delay_interval = Some(30);
    let mut short = will("short", "5s");
    short.delay_interval = Some(5);
    let a = rig.online(Connect {
        session_expiry_interval: Some(100),
        ..with_will(V5, "a", long)
    });
    let b = rig.online(Connect {
        session_expiry_interval: Some(100),
        ..with_will(V5, "b", short)
    });
    rig.lose(a);
    rig.advance(secs(1.0));
    rig.lose(b);
    rig.advance(secs(60.0));
    let got: Vec<_> = rig
        .publishes(watcher)
        .into_iter()
        .map(|(at, p)| (at, p.topic))
        .collect();
    assert_eq!(
        got,
        [(secs(6.0), "short".into()), (secs(30.0), "long".into())]
    );
}

#[test]
fn reconnect_before_the_delay_cancels_the_will() {
    // [MQTT-3.1.3-9] [MQTT-3.1.2-5]
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
    let device = rig.online(delayed(5, Some(60)));
    rig.lose(device);
    rig.advance(secs(2.0));
    let (_, connack) = rig.connect(Connect {
        clean_start: false,
        session_expiry_interval: Some(60),
        ..connect(V5, "dev")
    });
    assert!(connack.unwrap().session_present);
    rig.advance(secs(30.0));
    assert!(rig.publishes(watcher).is_empty());
}

#[test]
fn clean_start_reconnect_ends_the_session_and_publishes_the_pending_will() {
    // {W5-WDI-CS1} [MQTT-3.1.2-4]
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
    let device = rig.online(delayed(30, Some(60)));
    rig.lose(device);
    rig.advance(secs(2.0));
    let (_, connack) = rig.connect(connect(V5, "dev"));
    assert!(!connack.unwrap().session_present);
    rig.advance(secs(60.0));
    let times: Vec<_> = rig
        .publishes(watcher)
        .into_iter()
        .map(|(at, _)| at)
        .collect();
    assert_eq!(times, [secs(2.0)]);
}

#[test]
fn reconnect_to_an_expired_session_finds_none() {
    // [MQTT-3.1.2-6]: the session ended at 2 s with its will; CS=0 at 4 s creates a new one
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
    let device = rig.online(delayed(10, Some(2)));
    rig.lose(device);
    rig.advance(secs(4.0));
    let (_, connack) = rig.connect(Connect {
        clean_start: false,
        ..connect(V5, "dev")
    });
    assert!(!connack.unwrap().session_present);
    assert_eq!(rig.publishes(watcher)[0].0, secs(2.0));
}

#[test]
fn disconnect_can_shorten_or_lengthen_the_session() {
    // {W5-DISC-SEI-0}: DISCONNECT 0x04 with SEI 0 -> will at once despite WDI 30
    // {W5-DISC-SEI-UP}: CONNECT SEI 2, DISCONNECT 0x04 with SEI 60 -> will at WDI 10
    for (connect_sei, disconnect_sei, delay, expected) in [(60, 0, 30, 0.0), (2, 60, 10, 10.0)] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
        let device = rig.online(delayed(delay, Some(connect_sei)));
        rig.disconnect(
            device,
            Disconnect {
                session_expiry_interval: Some(disconnect_sei),
                ..Disconnect::with_code(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE)
            },
        );
        rig.advance(secs(100.0));
        let times: Vec<_> = rig
            .publishes(watcher)
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(times, [secs(expected)]);
    }
}

#[test]
fn malformed_disconnect_does_not_change_the_session_expiry() {
    // [MQTT-3.14.2-1]: a DISCONNECT with a code outside Table 3-10 is malformed, so its
    // Session Expiry 0 is not acted on: the session still lasts 60 s, and the will waits for
    // its 5 s delay (found by the generated-history property, harness/tests/it/properties.rs)
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
    let device = rig.online(delayed(5, Some(60)));
    rig.disconnect(
        device,
        Disconnect {
            session_expiry_interval: Some(0),
            ..Disconnect::with_code(0x01.into())
        },
    );
    rig.advance(secs(100.0));
    let times: Vec<_> = rig
        .publishes(watcher)
        .into_iter()
        .map(|(at, _)| at)
        .collect();
    assert_eq!(times, [secs(5.0)]);
}

#[test]
fn disconnect_setting_expiry_after_zero_is_a_protocol_error_that_publishes() {
    // {W5-DISC-SEI-PE} {A11}: not a valid DISCONNECT, so not a 0x00 that discards the will
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::AtMostOnce);
    let device = rig.online(with_will(V5, "device", will("t/1", "x")));
    rig.disconnect(
        device,
        Disconnect {
            session_expiry_interval: Some(60),
            ..Disconnect::with_code(ReasonCode::NORMAL_DISCONNECTION)
        },
    );
    assert_eq!(
        rig.server_disconnect(device),
        Some(ReasonCode::PROTOCOL_ERROR)
    );
    assert_eq!(rig.payloads(watcher), ["x"]);
}

#[test]
fn will_is_published_at_most_once() {
    // [MQTT-3.1.2-10] (b): WDI == SEI, both timers due together -> one will
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
    let device = rig.online(delayed(3, Some(3)));
    rig.lose(device);
    rig.advance(secs(10.0));
    assert_eq!(rig.publishes(watcher).len(), 1);
    // (a): reconnect without a will and drop again: nothing more
    let device = rig.online(Connect {
        clean_start: false,
        session_expiry_interval: Some(3),
        ..connect(V5, "dev")
    });
    rig.lose(device);
    rig.advance(secs(10.0));
    assert_eq!(rig.publishes(watcher).len(), 1);
}

#[test]
fn v311_will_is_not_delayed_by_a_persistent_session() {
    // 3.1.1 [MQTT-3.1.2-4] [MQTT-3.1.2-6]: the will belongs to the connection
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V311, "watcher", "t/1", QoS::AtMostOnce);
    let device = rig.online(Connect {
        clean_start: false,
        ..with_will(V311, "device", will("t/1", "x"))
    });
    rig.lose(device);
    let (_, connack) = rig.connect(Connect {
        clean_start: false,
        ..connect(V311, "device")
    });
    assert!(connack.unwrap().session_present);
    assert_eq!(rig.payloads(watcher), ["x"]);
}

// ---- takeover -------------------------------------------------------------------------

#[test]
fn takeover_cases_a_to_d() {
    // [MQTT-3.1.4-3] /a WDI 0, /b SEI 0, /c new CS=1, /d CS=0 with WDI and SEI > 0
    for (case, delay, expiry, clean_start, expected) in [
        ("a", 0, Some(60), false, Some(0.0)),
        ("b", 30, None, false, Some(0.0)),
        ("c", 30, Some(60), true, Some(0.0)),
        ("d", 5, Some(60), false, None),
    ] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
        let old = rig.online(delayed(delay, expiry));
        let (new, connack) = rig.connect(Connect {
            clean_start,
            keep_alive: 0,
            session_expiry_interval: Some(60),
            ..connect(V5, "dev")
        });
        assert_eq!(
            rig.server_disconnect(old),
            Some(ReasonCode::SESSION_TAKEN_OVER),
            "case {case}"
        );
        assert!(rig.closed_at(old).is_some());
        assert_eq!(
            connack.unwrap().session_present,
            case == "a" || case == "d",
            "case {case}"
        );
        rig.advance(secs(100.0));
        let times: Vec<_> = rig
            .publishes(watcher)
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(
            times,
            expected.map(secs).into_iter().collect::<Vec<_>>(),
            "case {case}"
        );
        assert_eq!(rig.closed_at(new), None);
    }
}

#[test]
fn v311_takeover_closes_the_old_connection_and_publishes() {
    // [MQTT-3.1.4-2] (3.1.1): bare close, will published
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V311, "watcher", "t/1", QoS::AtMostOnce);
    let old = rig.online(with_will(V311, "device", will("t/1", "x")));
    rig.online(connect(V311, "device"));
    assert_eq!(rig.server_disconnect(old), None);
    assert!(rig.closed_at(old).is_some());
    assert_eq!(rig.payloads(watcher), ["x"]);
}

// ---- what is published ----------------------------------------------------------------

#[test]
fn will_properties_are_forwarded_unaltered_without_the_delay() {
    // [MQTT-3.1.3-10] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-4] [MQTT-3.3.2-15]
    // [MQTT-3.3.2-16] [MQTT-3.3.2-20] {W5-MEI-SEND} {W5-NO-WDI-IN-PUBLISH}
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::AtMostOnce);
    let properties = MessageProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(30),
        content_type: Some("application/json; charset=utf-8".into()),
        response_topic: Some("resp/abc".into()),
        correlation_data: Some(Bytes::from_static(&[0x00, 0xFF, 0x10, 0x00])),
        user_properties: vec![
            ("a".into(), "2".into()),
            ("c".into(), "3".into()),
            ("a".into(), "1".into()),
        ],
    };
    let mut w = will("t/1", "{}");
    w.delay_interval = Some(2);
    w.properties = properties.clone();
    let device = rig.online(Connect {
        session_expiry_interval: Some(10),
        ..with_will(V5, "device", w)
    });
    rig.lose(device);
    rig.advance(secs(5.0));
    let got = rig.publishes(watcher);
    // Message Expiry counts from publication {A12}, so it is still 30 at 2 s
    assert_eq!(got[0].1.properties, properties);
    assert_eq!(got[0].1.topic_alias, None);
}

#[test]
fn will_qos_is_min_of_will_and_subscription() {
    // [MQTT-3.1.2-12] [MQTT-3.8.4-8] [MQTT-4.3.2-1] [MQTT-2.2.1-4]
    for (will_qos, sub_qos, expected) in [
        (QoS::AtMostOnce, QoS::ExactlyOnce, QoS::AtMostOnce),
        (QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce),
        (QoS::ExactlyOnce, QoS::AtLeastOnce, QoS::AtLeastOnce),
        (QoS::ExactlyOnce, QoS::ExactlyOnce, QoS::ExactlyOnce),
    ] {
        let mut rig = Rig::new();
        let watcher = rig.subscriber(V5, "watcher", "t/1", sub_qos);
        let mut w = will("t/1", "x");
        w.qos = will_qos;
        let device = rig.online(with_will(V5, "device", w));
        rig.lose(device);
        let (_, publish) = rig.publishes(watcher).remove(0);
        assert_eq!(publish.qos, expected);
        assert!(!publish.dup);
        assert_eq!(publish.packet_id.is_some(), expected != QoS::AtMostOnce);
        assert_ne!(publish.packet_id, Some(0));
    }
}

#[test]
fn retained_will_is_stored_and_retain_as_published_is_honoured() {
    // [MQTT-3.1.2-15] [MQTT-3.3.1-12] [MQTT-3.3.1-13] [MQTT-3.3.1-5]
    let mut rig = Rig::new();
    let plain = rig.subscriber(V5, "plain", "t/1", QoS::AtMostOnce);
    let rap = rig.online(connect(V5, "rap"));
    rig.subscribe(
        rap,
        SubscriptionRequest {
            retain_as_published: true,
            ..SubscriptionRequest::new("t/1", QoS::AtMostOnce)
        },
    );
    let mut w = will("t/1", "retained");
    w.retain = true;
    let device = rig.online(with_will(V5, "device", w));
    rig.lose(device);
    assert!(!rig.publishes(plain)[0].1.retain);
    assert!(rig.publishes(rap)[0].1.retain);
    // a late subscriber gets it with RETAIN 1
    let late = rig.subscriber(V5, "late", "t/1", QoS::AtMostOnce);
    let got = rig.publishes(late);
    assert_eq!(
        (got[0].1.retain, &got[0].1.payload[..]),
        (true, &b"retained"[..])
    );
}

#[test]
fn non_retained_will_leaves_the_retained_message_alone() {
    // [MQTT-3.1.2-14] [MQTT-3.3.1-8]
    let mut rig = Rig::new();
    let publisher = rig.online(connect(V5, "publisher"));
    let mut old = Publish::new("t/1", "old", QoS::AtMostOnce);
    old.retain = true;
    rig.packet(publisher, Packet::Publish(old));
    let device = rig.online(with_will(V5, "device", will("t/1", "will")));
    rig.lose(device);
    let late = rig.subscriber(V5, "late", "t/1", QoS::AtMostOnce);
    assert_eq!(rig.payloads(late), ["old"]);
}

#[test]
fn empty_retained_will_clears_the_retained_message() {
    // [MQTT-3.3.1-6] [MQTT-3.3.1-7]
    let mut rig = Rig::new();
    let publisher = rig.online(connect(V5, "publisher"));
    let mut old = Publish::new("t/1", "old", QoS::AtMostOnce);
    old.retain = true;
    rig.packet(publisher, Packet::Publish(old));
    let watcher = rig.subscriber(V5, "watcher", "t/1", QoS::AtMostOnce);
    let mut w = will("t/1", "");
    w.retain = true;
    let device = rig.online(with_will(V5, "device", w));
    rig.lose(device);
    assert_eq!(rig.payloads(watcher), ["old", ""]);
    let late = rig.subscriber(V5, "late", "t/1", QoS::AtMostOnce);
    assert!(rig.publishes(late).is_empty());
    assert_eq!(rig.broker.retained_count(), 0);
}

#[test]
fn retain_handling_governs_retained_will_at_subscribe() {
    // [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]
    let mut rig = Rig::new();
    let mut w = will("t/1", "r");
    w.retain = true;
    let device = rig.online(with_will(V5, "device", w));
    rig.lose(device);
    for (handling, resubscribe, expected) in [
        (RetainHandling::SendAtSubscribe, false, 1),
        (RetainHandling::SendIfNew, false, 1),
        (RetainHandling::SendIfNew, true, 1),
        (RetainHandling::DoNotSend, false, 0),
    ] {
        let id = rig.online(connect(V5, "late"));
        let request = SubscriptionRequest {
            retain_handling: handling,
            ..SubscriptionRequest::new("t/1", QoS::AtMostOnce)
        };
        rig.subscribe(id, request.clone());
        if resubscribe {
            rig.subscribe(id, request);
        }
        assert_eq!(
            rig.publishes(id).len(),
            expected,
            "{handling:?} resubscribe={resubscribe}"
        );
    }
}

#[test]
fn retained_will_expires() {
    // {W5-RET-EXPIRE} [MQTT-3.3.2-6]
    let mut rig = Rig::new();
    let mut w = will("t/1", "r");
    w.retain = true;
    w.properties.message_expiry_interval = Some(10);
    let device = rig.online(with_will(V5, "device", w));
    rig.lose(device);
    rig.advance(secs(4.0));
    let early = rig.subscriber(V5, "early", "t/1", QoS::AtMostOnce);
    assert_eq!(
        rig.publishes(early)[0].1.properties.message_expiry_interval,
        Some(6)
    );
    rig.advance(secs(7.0));
    let late = rig.subscriber(V5, "late", "t/1", QoS::AtMostOnce);
    assert!(rig.publishes(late).is_empty());
}

#[test]
fn offline_persistent_subscriber_gets_a_qos1_will_on_return() {
    // [MQTT-4.5.0-1] [MQTT-3.1.2-5] (3.1.1 too); QoS 0 is not queued {A16}
    for protocol in [V5, V311] {
        let mut rig = Rig::new();
        let persistent = Connect {
            clean_start: false,
            session_expiry_interval: (protocol == V5).then_some(300),
            ..connect(protocol, "s2")
        };
        let s2 = rig.online(persistent.clone());
        rig.subscribe(s2, SubscriptionRequest::new("t/#", QoS::AtLeastOnce));
        rig.lose(s2);
        let mut w = will("t/1", "q1");
        w.qos = QoS::AtLeastOnce;
        let device = rig.online(with_will(protocol, "device", w));
        rig.lose(device);
        let device0 = rig.online(with_will(protocol, "device0", will("t/0", "q0")));
        rig.lose(device0);
        let s2 = rig.online(persistent);
        assert_eq!(rig.payloads(s2), ["q1"], "{protocol}");
    }
}

#[test]
fn queued_will_that_expired_offline_is_not_delivered() {
    // [MQTT-3.3.2-5] [MQTT-3.3.2-6]
    for (expiry, wait, expected) in [(2, 4.0, None), (30, 5.0, Some(25))] {
        let mut rig = Rig::new();
        let persistent = Connect {
            clean_start: false,
            session_expiry_interval: Some(300),
            ..connect(V5, "s2")
        };
        let s2 = rig.online(persistent.clone());
        rig.subscribe(s2, SubscriptionRequest::new("t/1", QoS::AtLeastOnce));
        rig.lose(s2);
        let mut w = will("t/1", "x");
        w.qos = QoS::AtLeastOnce;
        w.properties.message_expiry_interval = Some(expiry);
        let device = rig.online(with_will(V5, "device", w));
        rig.lose(device);
        rig.advance(secs(wait));
        let s2 = rig.online(persistent);
        let got: Vec<_> = rig
            .publishes(s2)
            .into_iter()
            .map(|(_, p)| p.properties.message_expiry_interval.unwrap())
            .collect();
        assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
    }
}

#[test]
fn unacknowledged_will_is_redelivered_with_dup_and_the_same_packet_id() {
    // [MQTT-4.4.0-1] [MQTT-3.3.1-1]
    let mut rig = Rig::new();
    let persistent = Connect {
        clean_start: false,
        session_expiry_interval: Some(300),
        ..connect(V5, "s")
    };
    let s = rig.online(persistent.clone());
    rig.subscribe(s, SubscriptionRequest::new("t/1", QoS::AtLeastOnce));
    let mut w = will("t/1", "x");
    w.qos = QoS::AtLeastOnce;
    let device = rig.online(with_will(V5, "device", w));
    rig.lose(device);
    let (_, first) = rig.publishes(s).remove(0);
    rig.lose(s);
    let s = rig.online(persistent);
    let (_, again) = rig.publishes(s).remove(0);
    assert!(!first.dup && again.dup);
    assert_eq!(first.packet_id, again.packet_id);
    rig.packet(s, Packet::PubAck(Ack::success(again.packet_id.unwrap())));
    let in_flight = rig.broker.sessions["s"]
        .flow
        .as_ref()
        .map(|f| f.inflight.len());
    assert_eq!(in_flight, Some(0));
}

#[test]
fn receive_maximum_holds_back_the_will_until_an_ack() {
    // [MQTT-3.3.4-9]
    let mut rig = Rig::new();
    let s = rig.online(Connect {
        receive_maximum: Some(1),
        ..connect(V5, "s")
    });
    rig.subscribe(s, SubscriptionRequest::new("t/#", QoS::AtLeastOnce));
    let publisher = rig.online(connect(V5, "p"));
    let mut first = Publish::new("t/0", "first", QoS::AtLeastOnce);
    first.packet_id = Some(1);
    rig.packet(publisher, Packet::Publish(first));
    let mut w = will("t/1", "will");
    w.qos = QoS::AtLeastOnce;
    let device = rig.online(with_will(V5, "device", w));
    rig.lose(device);
    assert_eq!(rig.payloads(s), ["first"]);
    let pid = rig.publishes(s)[0].1.packet_id.unwrap();
    rig.packet(s, Packet::PubAck(Ack::success(pid)));
    assert_eq!(rig.payloads(s), ["first", "will"]);
    assert_ne!(rig.publishes(s)[1].1.packet_id, None);
}

#[test]
fn will_larger_than_the_subscribers_maximum_packet_size_is_skipped() {
    // [MQTT-3.1.2-24] [MQTT-3.1.2-25]: discarded as if sent, the subscriber stays connected
    let mut rig = Rig::new();
    let s = rig.online(Connect {
        maximum_packet_size: Some(128),
        ..connect(V5, "s")
    });
    rig.subscribe(s, SubscriptionRequest::new("t/1", QoS::AtLeastOnce));
    let mut w = will("t/1", &"x".repeat(1024));
    w.qos = QoS::AtLeastOnce;
    let device = rig.online(with_will(V5, "device", w));
    rig.lose(device);
    assert!(rig.publishes(s).is_empty());
    let in_flight = rig.broker.sessions["s"]
        .flow
        .as_ref()
        .map(|f| f.inflight.len());
    assert_eq!(in_flight, Some(0));
    let publisher = rig.online(connect(V5, "p"));
    rig.packet(
        publisher,
        Packet::Publish(Publish::new("t/1", "small", QoS::AtMostOnce)),
    );
    assert_eq!(rig.payloads(s), ["small"]);
    assert_eq!(rig.closed_at(s), None);
}

#[test]
fn subscription_identifiers_of_every_matching_subscription() {
    // [MQTT-3.3.4-3] [MQTT-3.3.4-5]
    let mut rig = Rig::new();
    let s = rig.online(connect(V5, "s"));
    rig.subscribe_with_id(
        s,
        SubscriptionRequest::new("will/x", QoS::AtMostOnce),
        Some(7),
    );
    rig.subscribe_with_id(
        s,
        SubscriptionRequest::new("will/#", QoS::AtMostOnce),
        Some(9),
    );
    let device = rig.online(with_will(V5, "device", will("will/x", "x")));
    rig.lose(device);
    let got = rig.publishes(s);
    assert_eq!(got.len(), 1);
    let mut ids = got[0].1.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(ids, [7, 9]);
}

#[test]
fn shared_subscription_group_gets_one_copy() {
    // {W5-SHARED} [MQTT-4.8.2-3]
    let mut rig = Rig::new();
    let a = rig.subscriber(V5, "a", "$share/g/t/1", QoS::AtMostOnce);
    let b = rig.subscriber(V5, "b", "$share/g/t/1", QoS::AtMostOnce);
    let device = rig.online(with_will(V5, "device", will("t/1", "x")));
    rig.lose(device);
    assert_eq!(rig.publishes(a).len() + rig.publishes(b).len(), 1);
}

#[test]
fn dollar_will_topic_is_hidden_from_leading_wildcards() {
    // [MQTT-4.7.2-1]
    let mut rig = Rig::new();
    let all = rig.subscriber(V5, "all", "#", QoS::AtMostOnce);
    let exact = rig.subscriber(V5, "exact", "$will/#", QoS::AtMostOnce);
    let device = rig.online(with_will(V5, "device", will("$will/x", "x")));
    rig.lose(device);
    assert!(rig.publishes(all).is_empty());
    assert_eq!(rig.payloads(exact), ["x"]);
}

#[test]
fn shutdown_publishes_every_stored_will_before_disconnecting() {
    // {W5-SHUTDOWN}: our documented choice {A1}
    let mut rig = Rig::new();
    let watcher = rig.subscriber(V5, "watcher", "status/#", QoS::AtMostOnce);
    let pending = rig.online(delayed(60, Some(600)));
    rig.lose(pending);
    let live = rig.online(with_will(V5, "live", will("status/live", "live")));
    rig.broker.shutdown(rig.now);
    rig.drain();
    assert_eq!(rig.payloads(watcher), ["live", "offline"]);
    assert_eq!(
        rig.server_disconnect(watcher),
        Some(ReasonCode::SERVER_SHUTTING_DOWN)
    );
    assert_eq!(
        rig.server_disconnect(live),
        Some(ReasonCode::SERVER_SHUTTING_DOWN)
    );
    assert_eq!(rig.broker.next_deadline(), None);
}

#[test]
fn connect_timeout_closes_silent_connections() {
    let mut rig = Rig::new();
    rig.broker.connection_opened(rig.now, 1);
    rig.advance(secs(11.0));
    assert_eq!(rig.closed_at(1), Some(secs(10.0)));
}

#[test]
fn assigned_client_identifier_for_empty_v5_client_id() {
    let mut rig = Rig::new();
    let (_, connack) = rig.connect(connect(V5, ""));
    assert_eq!(
        connack
            .unwrap()
            .properties
            .assigned_client_identifier
            .as_deref(),
        Some("lastwill-1")
    );
    let (_, connack) = rig.connect(Connect {
        clean_start: false,
        ..connect(V311, "")
    });
    assert_eq!(
        connack.unwrap().code,
        ConnAckCode::V311(ConnectReturnCode::IDENTIFIER_REJECTED)
    );
}

/// What every idle will client costs the core, record by record (issue 10): a growth here
/// shows in `cargo bench -p lastwill-benches --bench will_memory`, so it should be a choice.
#[test]
fn the_records_of_an_idle_will_client_stay_small() {
    use std::mem::size_of;
    // the will: topic and payload in one allocation, properties boxed when present
    assert_eq!(size_of::<super::will::StoredWill>(), 32);
    assert_eq!(size_of::<super::will::WillState>(), 48);
    // the session, boxed in its map; its QoS 1/2 state is boxed on first use
    assert_eq!(size_of::<super::session::Session>(), 128);
    // the connection, boxed in its map, its rarely used state boxed on first use
    assert_eq!(size_of::<super::connection::Connection>(), 56);
    // the timer queue's key and entry
    assert_eq!(size_of::<super::moment::Moment>(), 8);
    assert_eq!(size_of::<super::timer::TimerKey>(), 16);
    assert_eq!(size_of::<super::Timer>(), 16);
}
