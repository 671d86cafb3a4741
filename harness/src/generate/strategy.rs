//! Proptest strategies for [`History`] values.
//!
//! Every dimension is drawn, and the simplest value of each comes first, so that shrinking
//! heads for fewer devices, watchers and events (shorter vectors), shorter waits (smaller
//! numbers), QoS 0, MQTT 5, clean starts, no delay and no properties: `prop_oneof!` shrinks
//! toward its first alternative and integers toward their lower bound.

use std::time::Duration;

use lastwill_broker::codec::{Protocol, QoS};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::history::*;
use crate::scenario::DropMode;

/// DISCONNECT reason codes a client may send besides 0x00 and 0x04 (Table 3-10).
pub const CLIENT_DISCONNECT_CODES: &[u8] = &[
    0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
];

/// DISCONNECT reason codes outside Table 3-10: reserved, so the packet is malformed.
pub const RESERVED_DISCONNECT_CODES: &[u8] = &[0x01, 0x05, 0x42, 0x7F, 0x84, 0xA3, 0xFF];

/// The most devices a history has.
pub const MAX_DEVICES: usize = 20;

/// Any will history: 1–20 devices and 1–3 watchers, each speaking MQTT 5 or 3.1.1, and up to
/// 24 events.
pub fn history() -> impl Strategy<Value = History> {
    (
        vec(device(), 1..=MAX_DEVICES),
        vec(watcher(), 1..=3),
        vec(event(), 0..=24),
    )
        .prop_map(|(devices, watchers, events)| History {
            devices,
            watchers,
            events,
        })
}

/// Timer interleavings: `devices` (at least 20) MQTT 5 devices whose wills all have a drawn
/// delay of 1–30 s and a session that outlives it, dropped one after another in a drawn
/// order at drawn intervals, so that their delays run concurrently and fall due in an order
/// unrelated to the order they were set. One watcher takes every will at QoS 1.
pub fn delayed_wills(devices: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = History> {
    devices
        .prop_flat_map(|n| {
            let delays = vec((1u32..=30, qos()), n);
            let order = Just((0..n).collect::<Vec<usize>>()).prop_shuffle();
            let gaps = vec(short_wait(), n);
            (delays, order, gaps)
        })
        .prop_map(|(delays, order, gaps)| History {
            devices: delays
                .into_iter()
                .map(|(delay, qos)| Device {
                    protocol: Protocol::V5,
                    keep_alive: 60,
                    clean_start: true,
                    session: SessionExpiry::Never,
                    will: Will {
                        delay: Some(delay),
                        ..Will::plain(qos)
                    },
                    deep: false,
                })
                .collect(),
            watchers: vec![Watcher {
                protocol: Protocol::V5,
                subscriptions: vec![(Filter::All, QoS::AtLeastOnce)],
                persistent: false,
            }],
            events: order
                .into_iter()
                .zip(gaps)
                .map(|(device, wait)| Event {
                    wait,
                    what: Happening::End {
                        device,
                        how: Ending::Drop(DropMode::Rst),
                    },
                })
                .collect(),
        })
}

impl Will {
    /// A will with this QoS and nothing else: empty payload, no retain, no properties.
    pub fn plain(qos: QoS) -> Will {
        Will {
            qos,
            retain: false,
            payload: Payload::Empty,
            delay: None,
            message_expiry: None,
            user_properties: Vec::new(),
            content_type: None,
            response_topic: None,
            correlation_data: None,
        }
    }
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![4 => Just(Protocol::V5), 1 => Just(Protocol::V311)]
}

fn qos() -> impl Strategy<Value = QoS> {
    (0u8..=2).prop_map(|q| QoS::from_u8(q).unwrap_or_default())
}

/// `true` shrinking to `false`, drawn `true` with probability `p`.
fn sometimes(p: f64) -> impl Strategy<Value = bool> {
    proptest::bool::weighted(p)
}

/// Clean Start: mostly 1, shrinking to 1.
fn clean_start() -> impl Strategy<Value = bool> {
    sometimes(0.3).prop_map(|resume| !resume)
}

fn session() -> impl Strategy<Value = SessionExpiry> {
    prop_oneof![
        Just(SessionExpiry::Absent),
        Just(SessionExpiry::Seconds(0)),
        (1u32..=60).prop_map(SessionExpiry::Seconds),
        Just(SessionExpiry::Never),
    ]
}

/// Waits: mostly short (0–2 s in quarter seconds), sometimes long enough to pass a will delay.
fn wait() -> impl Strategy<Value = Duration> {
    prop_oneof![
        3 => short_wait(),
        1 => (1u64..=35).prop_map(Duration::from_secs),
    ]
}

fn short_wait() -> impl Strategy<Value = Duration> {
    (0u64..=8).prop_map(|quarters| Duration::from_millis(quarters * 250))
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        Just(Payload::Empty),
        "[a-z]{1,8}( [a-z]{1,8})?".prop_map(Payload::Text),
        vec(any::<u8>(), 1..8).prop_map(Payload::Binary),
    ]
}

fn will() -> impl Strategy<Value = Will> {
    let delay = prop_oneof![
        Just(None),
        Just(Some(0)),
        (1u32..=5).prop_map(Some),
        (1u32..=30).prop_map(Some),
    ];
    let properties = (
        option::weighted(0.3, 1u32..=60),
        vec(("[a-z]{1,3}", "[a-z0-9]{0,4}"), 0..=2),
        option::weighted(0.2, select(&["text/plain", "application/json"][..])),
        option::weighted(0.2, "reply/[a-z]{1,4}"),
        option::weighted(0.2, vec(any::<u8>(), 1..4)),
    );
    (qos(), sometimes(0.3), payload(), delay, properties).prop_map(
        |(qos, retain, payload, delay, (expiry, user, content, response, correlation))| Will {
            qos,
            retain,
            payload,
            delay,
            message_expiry: expiry,
            user_properties: user,
            content_type: content.map(str::to_owned),
            response_topic: response,
            correlation_data: correlation,
        },
    )
}

fn device() -> impl Strategy<Value = Device> {
    let keep_alive = prop_oneof![4 => 1u16..=10, 1 => Just(0u16)];
    (
        protocol(),
        keep_alive,
        clean_start(),
        session(),
        will(),
        sometimes(0.2),
    )
        .prop_map(
            |(protocol, keep_alive, clean_start, session, will, deep)| Device {
                protocol,
                keep_alive,
                clean_start,
                session,
                will,
                deep,
            },
        )
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        2 => Just(Filter::All),
        2 => (0..MAX_DEVICES).prop_map(Filter::Exact),
        1 => Just(Filter::OneLevel),
        1 => Just(Filter::Deep),
    ]
}

fn watcher() -> impl Strategy<Value = Watcher> {
    (protocol(), vec((filter(), qos()), 1..=3), sometimes(0.4)).prop_map(
        |(protocol, subscriptions, persistent)| Watcher {
            protocol,
            subscriptions,
            persistent,
        },
    )
}

fn ending() -> impl Strategy<Value = Ending> {
    let code = prop_oneof![
        Just(0x00u8),
        Just(0x04u8),
        select(CLIENT_DISCONNECT_CODES),
        select(RESERVED_DISCONNECT_CODES),
    ];
    prop_oneof![
        3 => Just(Ending::Drop(DropMode::Rst)),
        1 => Just(Ending::Drop(DropMode::Fin)),
        1 => Just(Ending::Vanish),
        3 => (code, option::weighted(0.3, session()))
            .prop_map(|(code, session)| Ending::Disconnect { code, session }),
        1 => Just(Ending::SecondConnect),
    ]
}

fn reconnect() -> impl Strategy<Value = Reconnect> {
    (clean_start(), session(), option::weighted(0.5, will())).prop_map(
        |(clean_start, session, will)| Reconnect {
            clean_start,
            session,
            will,
        },
    )
}

fn event() -> impl Strategy<Value = Event> {
    let device = 0..MAX_DEVICES;
    let happening = prop_oneof![
        6 => (device.clone(), ending()).prop_map(|(device, how)| Happening::End { device, how }),
        3 => (device.clone(), reconnect())
            .prop_map(|(device, connect)| Happening::Reconnect { device, connect }),
        1 => (device, reconnect())
            .prop_map(|(device, connect)| Happening::Takeover { device, connect }),
        1 => (0usize..3).prop_map(|watcher| Happening::WatcherLeaves { watcher }),
        1 => (0usize..3).prop_map(|watcher| Happening::WatcherReturns { watcher }),
    ];
    (wait(), happening).prop_map(|(wait, what)| Event { wait, what })
}
