//! Proptest strategies for [`History`] values.
//!
//! Every dimension is drawn, and the simplest value of each comes first, so that shrinking
//! heads for fewer devices, watchers and events (shorter vectors), shorter waits (smaller
//! numbers), QoS 0, MQTT 5, clean starts, no delay and no properties, and clients on node 1:
//! `prop_oneof!` shrinks toward its first alternative and integers toward their lower bound.

use std::time::Duration;

use lastwill_broker::codec::{Protocol, QoS};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::history::*;
use crate::scenario::{DropMode, MessageMatcher, Receives, Scenario};

/// DISCONNECT reason codes a client may send besides 0x00 and 0x04 (Table 3-10).
pub const CLIENT_DISCONNECT_CODES: &[u8] = &[
    0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
];

/// DISCONNECT reason codes outside Table 3-10: reserved, so the packet is malformed.
pub const RESERVED_DISCONNECT_CODES: &[u8] = &[0x01, 0x05, 0x42, 0x7F, 0x84, 0xA3, 0xFF];

/// The most devices a history has.
pub const MAX_DEVICES: usize = 20;

/// How large a drawn history may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub devices: usize,
    pub watchers: usize,
    pub events: usize,
    /// The nodes of the target's cluster, over which every client is placed at random; 1 for
    /// one broker, where nothing is drawn for placements (so a seed draws the same histories
    /// it always did).
    pub nodes: usize,
}

impl Size {
    /// 20 devices, 3 watchers, 24 events.
    pub const FULL: Size = Size {
        devices: MAX_DEVICES,
        watchers: 3,
        events: 24,
        nodes: 1,
    };

    /// The size of case `case` of an exploration: one device, one watcher and one event at
    /// first, growing to [`Size::FULL`] by case 100, so that a divergence is met in a small
    /// history first (shrinking on a real broker costs real time per run).
    pub fn of_case(case: usize) -> Size {
        Size {
            devices: (1 + case / 5).min(Self::FULL.devices),
            watchers: (1 + case / 20).min(Self::FULL.watchers),
            events: (1 + case / 4).min(Self::FULL.events),
            nodes: 1,
        }
    }

    /// The same size, with clients placed over `nodes` nodes.
    pub fn on_nodes(self, nodes: usize) -> Size {
        Size { nodes, ..self }
    }
}

/// Any will history up to `size`: devices and watchers each speaking MQTT 5 or 3.1.1, and
/// events. Small histories are drawn more often than large ones: a simulated run costs time
/// in proportion to its clients and its length.
pub fn history(size: Size) -> impl Strategy<Value = History> {
    let most = |n: usize| n.clamp(1, size.devices.max(1));
    let events = prop_oneof![
        2 => vec(event(), 0..=size.events.min(8)),
        1 => vec(event(), 0..=size.events),
    ];
    let placed_device = || device(size.nodes);
    let devices = prop_oneof![
        4 => vec(placed_device(), 1..=most(4)),
        2 => vec(placed_device(), 1..=most(10)),
        1 => vec(placed_device(), 1..=most(MAX_DEVICES)),
    ];
    let watchers = vec(watcher(size.nodes), 1..=size.watchers.max(1));
    (devices, watchers, events).prop_map(|(devices, watchers, events)| History {
        devices,
        watchers,
        events,
    })
}

/// Timer interleavings: `devices` (20 to 30) MQTT 5 devices whose wills all have a drawn
/// delay of 1–30 s and a session that never expires, dropped one after another in a drawn
/// order at drawn intervals (0 or 1 s), so that every delay runs concurrently and they fall
/// due in an order unrelated to the order they were set. Each will falls due after the last
/// drop, at its own whole second (a drawn delay is moved to the next free second), so no due
/// time meets a step and their order is defined. One watcher takes every will at QoS 1.
pub fn delayed_wills(devices: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = History> {
    devices
        .prop_flat_map(|n| {
            let delays = vec((1u32..=30, qos()), n);
            let order = Just((0..n).collect::<Vec<usize>>()).prop_shuffle();
            let gaps = vec(0u64..=1, n);
            (delays, order, gaps)
        })
        .prop_map(|(mut delays, order, gaps)| {
            let closes: Vec<u64> = gaps
                .iter()
                .scan(0, |at, gap| {
                    *at += gap;
                    Some(*at)
                })
                .collect();
            let last = closes.last().copied().unwrap_or(0);
            // earliest drops first: theirs are the narrowest choices of due second
            let mut taken: Vec<u64> = Vec::new();
            for (&device, &closed) in order.iter().zip(&closes) {
                let lowest = (last + 1 - closed).max(1) as u32;
                let delay = &mut delays[device].0;
                *delay = lowest + (*delay - 1) % (31 - lowest.min(30));
                for _ in 0..30 {
                    if !taken.contains(&(closed + u64::from(*delay))) {
                        break;
                    }
                    *delay = if *delay >= 30 { lowest } else { *delay + 1 };
                }
                taken.push(closed + u64::from(*delay));
            }
            History {
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
                        node: None,
                        twin_node: None,
                    })
                    .collect(),
                watchers: vec![Watcher {
                    protocol: Protocol::V5,
                    subscriptions: vec![(Filter::All, QoS::AtLeastOnce)],
                    persistent: false,
                    node: None,
                }],
                events: order
                    .into_iter()
                    .zip(gaps)
                    .map(|(device, gap)| Event {
                        wait: Duration::from_secs(gap),
                        what: Happening::End {
                            device,
                            how: Ending::Drop(DropMode::Rst),
                        },
                    })
                    .collect(),
            }
        })
}

/// Makes a prediction for a [`delayed_wills`] history check the order of the wills too: every
/// watcher's expected messages sorted by due time (close time plus will delay, from the
/// history's waits), with `ordered: true`.
pub fn in_due_order(history: &History, predicted: &mut Scenario) {
    let mut due: Vec<(String, Duration)> = Vec::new();
    let mut now = Duration::ZERO;
    for event in &history.events {
        now += event.wait;
        if let Happening::End { device, .. } = event.what {
            let device = device % history.devices.len();
            let delay = history.devices[device].will.delay.unwrap_or(0);
            due.push((
                history.will_topic(device, 1),
                now + Duration::from_secs(u64::from(delay)),
            ));
        }
    }
    let due_of = |m: &MessageMatcher| {
        m.topic
            .as_ref()
            .and_then(|t| due.iter().find(|(topic, _)| topic == t))
            .map(|&(_, at)| at)
    };
    for block in &mut predicted.expect {
        if let Some(Receives::Messages(matchers)) = &mut block.receives {
            matchers.sort_by_key(|m| due_of(m));
            block.ordered = true;
        }
    }
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

/// Waits: mostly short (0.25–2 s in quarter seconds), sometimes long enough to pass a will
/// delay.
fn wait() -> impl Strategy<Value = Duration> {
    prop_oneof![
        6 => short_wait(),
        1 => (1u64..=35).prop_map(Duration::from_secs),
    ]
}

/// A quarter second to two seconds: never zero, so that two events of different clients,
/// whose packets travel on different connections, happen in a known order.
fn short_wait() -> impl Strategy<Value = Duration> {
    (1u64..=8).prop_map(|quarters| Duration::from_millis(quarters * 250))
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
        1 => Just(None),
        1 => Just(Some(0)),
        2 => (1u32..=5).prop_map(Some),
        1 => (1u32..=30).prop_map(Some),
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

/// A node of `nodes`, shrinking toward node 1; on one broker none, drawing nothing.
fn node(nodes: usize) -> BoxedStrategy<Node> {
    match nodes {
        0 | 1 => Just(None).boxed(),
        n => (1..=n).prop_map(Some).boxed(),
    }
}

fn device(nodes: usize) -> impl Strategy<Value = Device> {
    let keep_alive = prop_oneof![4 => 1u16..=10, 1 => Just(0u16)];
    (
        protocol(),
        keep_alive,
        clean_start(),
        session(),
        will(),
        sometimes(0.2),
        (node(nodes), node(nodes)),
    )
        .prop_map(
            |(protocol, keep_alive, clean_start, session, will, deep, (node, twin_node))| Device {
                protocol,
                keep_alive,
                clean_start,
                session,
                will,
                deep,
                node,
                twin_node,
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

fn watcher(nodes: usize) -> impl Strategy<Value = Watcher> {
    let subscriptions = vec((filter(), qos()), 1..=3);
    (protocol(), subscriptions, sometimes(0.4), node(nodes)).prop_map(
        |(protocol, subscriptions, persistent, node)| Watcher {
            protocol,
            subscriptions,
            persistent,
            node,
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
