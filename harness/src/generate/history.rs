//! A will history as drawn: devices with wills, watchers with subscriptions, and the events
//! after everyone is connected. [`History::scenario`] lowers it to a [`Scenario`], the model
//! the YAML parser produces, so that every history is a scenario file.
//!
//! On a cluster target every client also has the node its connections go to (`node:` in the
//! scenario), so a saved history replays with the same placements.
//!
//! Lowering is total: any history, however shrunk, is a valid scenario. Events name devices
//! and watchers by index (modulo how many there are), and an event that does not apply in
//! the state its device is in at that point (ending a connection that is already closed,
//! reconnecting one that is open) is left out.

use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, Disconnect, LastWill, MessageProperties, Protocol, QoS, SubscriptionRequest,
    UserProperty,
};

use crate::scenario::{
    Action, ClientSpec, DropMode, Level, Location, Scenario, Step, StepExpectation, StepKind,
    SubscribeSpec,
};

/// Where every will topic lives: `lw/<device>` (`lw/<device>.<n>` for the device's n-th
/// will, `.../state` below that for deep topics).
pub const TOPIC_ROOT: &str = "lw";

/// The session expiry a persistent watcher asks for (MQTT 5), seconds: longer than any
/// generated history, so its session outlives the run.
pub const WATCHER_SESSION_EXPIRY: u32 = 300;

/// How long after the last event the run keeps watching, beyond the longest timer a
/// history can start: room for the broker's and the network's latency.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(2);

/// A generated will history.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// Devices: clients with wills, connected in order after the watchers (1 to 20).
    pub devices: Vec<Device>,
    /// Watchers: clients that subscribe to will topics before any device connects.
    pub watchers: Vec<Watcher>,
    /// What happens once everyone is connected, in order.
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub protocol: Protocol,
    /// Keep Alive of every CONNECT, seconds (a vanished device is noticed after 1.5 times
    /// this [MQTT-3.1.2-22]; 0 turns keep-alive off).
    pub keep_alive: u16,
    /// Clean Start (Clean Session in 3.1.1) of the first CONNECT.
    pub clean_start: bool,
    /// Session Expiry Interval of the first CONNECT (MQTT 5).
    pub session: SessionExpiry,
    /// The will of the first CONNECT.
    pub will: Will,
    /// Its will topic is `lw/<device>/state` rather than `lw/<device>`, out of reach of `lw/+`.
    pub deep: bool,
    /// The node of its own connections, and of its takeover twin's (the second client with
    /// its client id): on different nodes, a takeover crosses nodes.
    pub node: Node,
    pub twin_node: Node,
}

/// The cluster node a client is placed on, from 1 as a scenario's `node:`; `None` when the
/// target is one broker.
pub type Node = Option<usize>;

/// A Session Expiry Interval as drawn: absent, 0, finite or "never" (0xFFFFFFFF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionExpiry {
    Absent,
    Seconds(u32),
    Never,
}

impl SessionExpiry {
    pub fn interval(self) -> Option<u32> {
        match self {
            SessionExpiry::Absent => None,
            SessionExpiry::Seconds(s) => Some(s),
            SessionExpiry::Never => Some(u32::MAX),
        }
    }
}

/// A will; the topic is the device's (see [`TOPIC_ROOT`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Will {
    pub qos: QoS,
    pub retain: bool,
    pub payload: Payload,
    /// Will Delay Interval, seconds (MQTT 5): absent, 0 or 1 to 30.
    pub delay: Option<u32>,
    /// Message Expiry Interval, seconds (MQTT 5).
    pub message_expiry: Option<u32>,
    /// User Properties (MQTT 5), in order.
    pub user_properties: Vec<UserProperty>,
    /// Content Type (MQTT 5).
    pub content_type: Option<String>,
    /// Response Topic (MQTT 5).
    pub response_topic: Option<String>,
    /// Correlation Data (MQTT 5).
    pub correlation_data: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Empty,
    /// UTF-8 text; sent with Payload Format Indicator 1 (MQTT 5).
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Watcher {
    pub protocol: Protocol,
    /// One SUBSCRIBE with these filters, each at its QoS; a filter that matches a topic an
    /// earlier one matches is left out, so that no will reaches a watcher through two
    /// subscriptions (one copy or one per subscription is the server's choice,
    /// [MQTT-3.3.4-2]).
    pub subscriptions: Vec<(Filter, QoS)>,
    /// A session that outlives its connections: Clean Start 0 / Session Expiry
    /// [`WATCHER_SESSION_EXPIRY`] (MQTT 5) or Clean Session 0 (3.1.1). Only persistent
    /// watchers go away and come back.
    pub persistent: bool,
    pub node: Node,
}

/// What a watcher subscribes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// The first will topic of this device (index modulo the number of devices).
    Exact(usize),
    /// `lw/#`: every will.
    All,
    /// `lw/+`: every will with a shallow topic.
    OneLevel,
    /// `lw/+/state`: every will with a deep topic.
    Deep,
}

/// One event, after a wait.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Time that passes before it (a `wait:` step; none when zero).
    pub wait: Duration,
    pub what: Happening,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Happening {
    /// The device's open connection ends.
    End { device: usize, how: Ending },
    /// The device, its connection closed, connects again with the same client id.
    Reconnect { device: usize, connect: Reconnect },
    /// While the device is connected, a second client connects with its client id.
    Takeover { device: usize, connect: Reconnect },
    /// A persistent watcher disconnects (DISCONNECT 0x00); its session stays.
    WatcherLeaves { watcher: usize },
    /// A persistent watcher that left connects again with Clean Start 0.
    WatcherReturns { watcher: usize },
}

/// How a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Without DISCONNECT: RST or FIN.
    Drop(DropMode),
    /// The machine disappears: no FIN, no RST; the server notices at keep-alive expiry.
    /// The next event comes after that (see [`keep_alive_expiry`]).
    Vanish,
    /// DISCONNECT with this reason code (MQTT 5; 3.1.1 has none), and optionally a new
    /// Session Expiry Interval.
    Disconnect {
        code: u8,
        session: Option<SessionExpiry>,
    },
    /// A second CONNECT on the open connection, a protocol error [MQTT-3.1.0-2].
    SecondConnect,
}

/// The CONNECT of a reconnect or a takeover.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    pub clean_start: bool,
    pub session: SessionExpiry,
    /// A new will, or none.
    pub will: Option<Will>,
}

/// Lowering state of one device: which of its two clients holds its connection, whether that
/// connection is open, and how many wills it has had.
struct DeviceState {
    name: String,
    /// Index into `[name, twin]` of the client that connected last.
    current: usize,
    connected: bool,
    connections: u32,
    /// Whether the takeover twin was ever used (then it is declared).
    twin_used: bool,
    /// The will delay of the open connection's will (zero without one).
    will_delay: Duration,
}

impl DeviceState {
    fn client(&self, which: usize) -> String {
        match which {
            0 => self.name.clone(),
            _ => format!("{}b", self.name),
        }
    }
}

/// What lowering tracks while it walks the events.
struct Lowering {
    devices: Vec<DeviceState>,
    /// Per watcher: it has left and not come back.
    away: Vec<bool>,
    /// Marks handed out, by name without its number.
    marks: std::collections::BTreeMap<String, u32>,
    /// The longest will delay an event started. Every will that becomes pending is due within
    /// this long of the event that closed its connection (of the wait after it, for a
    /// vanished device).
    longest_timer: Duration,
}

impl Lowering {
    /// `d1-gone`, then `d1-gone2`, `d1-gone3`...
    fn mark(&mut self, base: String) -> String {
        let n = self.marks.entry(base.clone()).or_insert(0);
        *n += 1;
        match *n {
            1 => base,
            n => format!("{base}{n}"),
        }
    }
}

impl History {
    pub fn device_name(index: usize) -> String {
        format!("d{}", index + 1)
    }

    pub fn watcher_name(index: usize) -> String {
        format!("w{}", index + 1)
    }

    /// The will topic of a device's `connection`-th CONNECT (1 for the first).
    pub fn will_topic(&self, device: usize, connection: u32) -> String {
        let base = match connection {
            1 => format!("{TOPIC_ROOT}/{}", Self::device_name(device)),
            n => format!("{TOPIC_ROOT}/{}.{n}", Self::device_name(device)),
        };
        match self.devices[device].deep {
            true => format!("{base}/state"),
            false => base,
        }
    }

    /// The watcher's filters without those that overlap an earlier one.
    fn disjoint_filters(&self, watcher: &Watcher) -> Vec<(Filter, QoS)> {
        let deep = |device: usize| self.devices[device % self.devices.len()].deep;
        let overlap = |a: Filter, b: Filter| match (a, b) {
            (Filter::All, _) | (_, Filter::All) => true,
            (Filter::OneLevel, Filter::Deep) | (Filter::Deep, Filter::OneLevel) => false,
            (Filter::Exact(d), Filter::OneLevel) | (Filter::OneLevel, Filter::Exact(d)) => !deep(d),
            (Filter::Exact(d), Filter::Deep) | (Filter::Deep, Filter::Exact(d)) => deep(d),
            (Filter::Exact(a), Filter::Exact(b)) => {
                a % self.devices.len() == b % self.devices.len()
            }
            (a, b) => a == b,
        };
        let mut kept: Vec<(Filter, QoS)> = Vec::new();
        for &(filter, qos) in &watcher.subscriptions {
            if !kept.iter().any(|&(k, _)| overlap(k, filter)) {
                kept.push((filter, qos));
            }
        }
        kept
    }

    fn filter(&self, filter: Filter) -> String {
        match filter {
            Filter::Exact(device) => self.will_topic(device % self.devices.len().max(1), 1),
            Filter::All => format!("{TOPIC_ROOT}/#"),
            Filter::OneLevel => format!("{TOPIC_ROOT}/+"),
            Filter::Deep => format!("{TOPIC_ROOT}/+/state"),
        }
    }

    /// The history as a scenario named `name`: watchers connect and subscribe, devices
    /// connect with their wills, the events happen, and the run watches for the longest timer
    /// an event started plus [`SETTLE_MARGIN`]. It has no final expectations: the oracle
    /// adds them.
    pub fn scenario(&self, name: &str) -> Scenario {
        let mut clients: Vec<ClientSpec> = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        for (i, watcher) in self.watchers.iter().enumerate() {
            let name = Self::watcher_name(i);
            clients.push(client_spec(&name, watcher.protocol, &name, watcher.node));
            let connect = self.watcher_connect(i, false);
            steps.push(client_step(&name, Action::Connect(Box::new(connect))));
            let filters = self
                .disjoint_filters(watcher)
                .into_iter()
                .map(|(filter, qos)| SubscriptionRequest::new(self.filter(filter), qos))
                .collect();
            let subscribe = SubscribeSpec {
                filters,
                subscription_identifier: None,
                user_properties: Vec::new(),
            };
            steps.push(client_step(&name, Action::Subscribe(subscribe)));
        }
        let mut lowering = Lowering {
            devices: Vec::new(),
            away: vec![false; self.watchers.len()],
            marks: Default::default(),
            longest_timer: Duration::ZERO,
        };
        for (i, device) in self.devices.iter().enumerate() {
            let name = Self::device_name(i);
            clients.push(client_spec(&name, device.protocol, &name, device.node));
            let will = Some(&device.will);
            let connect = self.device_connect(i, 1, device.clean_start, device.session, will);
            steps.push(client_step(&name, Action::Connect(Box::new(connect))));
            lowering.devices.push(DeviceState {
                name,
                current: 0,
                connected: true,
                connections: 1,
                twin_used: false,
                will_delay: device.will.delay_for(device.protocol),
            });
        }
        for event in &self.events {
            let Some(step) = self.event_step(&event.what, &mut lowering) else {
                continue;
            };
            if !event.wait.is_zero() {
                steps.push(plain_step(StepKind::Wait(event.wait)));
            }
            let vanished = match (&event.what, &step.kind) {
                (
                    Happening::End {
                        device,
                        how: Ending::Vanish,
                    },
                    _,
                ) => Some(self.devices[device % self.devices.len()].keep_alive),
                _ => None,
            };
            steps.push(step);
            if let Some(keep_alive) = vanished.filter(|&k| k > 0) {
                steps.push(plain_step(StepKind::Wait(keep_alive_expiry(keep_alive))));
            }
        }
        steps.push(plain_step(StepKind::Wait(
            lowering.longest_timer + SETTLE_MARGIN,
        )));
        // each twin that took a device over is declared after the device's own client
        for (i, device) in lowering.devices.iter().enumerate().rev() {
            if device.twin_used {
                let at = clients.iter().position(|c| c.name == device.name);
                let spec = &self.devices[i];
                let twin = client_spec(
                    &device.client(1),
                    spec.protocol,
                    &device.name,
                    spec.twin_node,
                );
                clients.insert(at.map_or(clients.len(), |at| at + 1), twin);
            }
        }
        Scenario {
            file: String::new(),
            name: name.to_owned(),
            description: None,
            refs: Vec::new(),
            tags: vec!["generated".to_owned()],
            protocol: Protocol::V5,
            level: Level::Must,
            seed: None,
            duration: None,
            broker: Default::default(),
            // a watcher that is away at the end cannot receive the control arm's will, and
            // the oracle may well expect nothing of it: such a history goes without one
            control: !lowering.away.iter().any(|&away| away),
            clients,
            steps,
            expect: Vec::new(),
        }
    }

    /// The step an event becomes, given the state of the devices and watchers before it, or
    /// `None` when the event does not apply then.
    fn event_step(&self, what: &Happening, lowering: &mut Lowering) -> Option<Step> {
        let device_count = self.devices.len();
        match what {
            Happening::End { device, how } => {
                let index = device % device_count;
                let protocol = self.devices[index].protocol;
                let state = &mut lowering.devices[index];
                if !state.connected {
                    return None;
                }
                state.connected = false;
                let timer = state.will_delay;
                let client = state.client(state.current);
                let name = state.name.clone();
                lowering.longest_timer = lowering.longest_timer.max(timer);
                let mut expect = Vec::new();
                let action = match *how {
                    Ending::Drop(mode) => Action::Drop(mode),
                    Ending::Vanish => Action::Vanish,
                    Ending::Disconnect { code, session } => Action::Disconnect(match protocol {
                        Protocol::V5 => Disconnect {
                            code: code.into(),
                            session_expiry_interval: session.and_then(SessionExpiry::interval),
                            ..Disconnect::default()
                        },
                        Protocol::V311 => Disconnect::default(),
                    }),
                    Ending::SecondConnect => {
                        // [MQTT-3.1.0-2] the server closes the connection, with no CONNACK
                        expect.push(StepExpectation {
                            no_connack: Some(true),
                            closed: Some(true),
                            within: Some(Duration::from_secs(2)),
                            ..StepExpectation::default()
                        });
                        let mut connect = Connect::new(protocol, name.clone());
                        connect.keep_alive = self.devices[index].keep_alive;
                        Action::Connect(Box::new(connect))
                    }
                };
                Some(Step {
                    mark: Some(lowering.mark(format!("{name}-gone"))),
                    expect,
                    ..client_step(&client, action)
                })
            }
            Happening::Reconnect { device, connect } | Happening::Takeover { device, connect } => {
                let index = device % device_count;
                let takeover = matches!(what, Happening::Takeover { .. });
                let state = &mut lowering.devices[index];
                if state.connected != takeover {
                    return None;
                }
                if takeover {
                    state.current = 1 - state.current;
                    state.twin_used |= state.current == 1;
                    lowering.longest_timer = lowering.longest_timer.max(state.will_delay);
                }
                let protocol = self.devices[index].protocol;
                state.will_delay = connect
                    .will
                    .as_ref()
                    .map_or(Duration::ZERO, |w| w.delay_for(protocol));
                state.connected = true;
                state.connections += 1;
                let (client, connection) = (state.client(state.current), state.connections);
                let what = if takeover { "taken" } else { "back" };
                let mark = lowering.mark(format!("{}-{what}", Self::device_name(index)));
                let packet = self.device_connect(
                    index,
                    connection,
                    connect.clean_start,
                    connect.session,
                    connect.will.as_ref(),
                );
                Some(Step {
                    mark: Some(mark),
                    ..client_step(&client, Action::Connect(Box::new(packet)))
                })
            }
            Happening::WatcherLeaves { watcher } | Happening::WatcherReturns { watcher } => {
                let persistent: Vec<usize> = (0..self.watchers.len())
                    .filter(|&i| self.watchers[i].persistent)
                    .collect();
                let index = *persistent.get(watcher % persistent.len().max(1))?;
                let leaving = matches!(what, Happening::WatcherLeaves { .. });
                if lowering.away[index] == leaving {
                    return None;
                }
                lowering.away[index] = leaving;
                let name = Self::watcher_name(index);
                let (action, what) = match leaving {
                    true => (Action::Disconnect(Disconnect::default()), "away"),
                    false => {
                        let connect = self.watcher_connect(index, true);
                        (Action::Connect(Box::new(connect)), "back")
                    }
                };
                Some(Step {
                    mark: Some(lowering.mark(format!("{name}-{what}"))),
                    ..client_step(&name, action)
                })
            }
        }
    }

    fn watcher_connect(&self, index: usize, returning: bool) -> Connect {
        let watcher = &self.watchers[index];
        let mut connect = Connect::new(watcher.protocol, Self::watcher_name(index));
        if watcher.persistent {
            match watcher.protocol {
                Protocol::V5 => {
                    connect.clean_start = !returning;
                    connect.session_expiry_interval = Some(WATCHER_SESSION_EXPIRY);
                }
                Protocol::V311 => connect.clean_start = false,
            }
        }
        connect
    }

    fn device_connect(
        &self,
        index: usize,
        connection: u32,
        clean_start: bool,
        session: SessionExpiry,
        will: Option<&Will>,
    ) -> Connect {
        let device = &self.devices[index];
        let v5 = device.protocol.is_v5();
        let mut connect = Connect::new(device.protocol, Self::device_name(index));
        connect.keep_alive = device.keep_alive;
        connect.clean_start = clean_start;
        if v5 {
            connect.session_expiry_interval = session.interval();
        }
        connect.will = will.map(|w| w.last_will(self.will_topic(index, connection), v5));
        connect
    }
}

impl Will {
    /// The Will Delay Interval this will travels with: none in 3.1.1.
    fn delay_for(&self, protocol: Protocol) -> Duration {
        match protocol {
            Protocol::V5 => Duration::from_secs(u64::from(self.delay.unwrap_or(0))),
            Protocol::V311 => Duration::ZERO,
        }
    }

    fn last_will(&self, topic: String, v5: bool) -> LastWill {
        let (payload, format) = match &self.payload {
            Payload::Empty => (Bytes::new(), None),
            Payload::Text(text) => (Bytes::from(text.clone()), Some(1)),
            Payload::Binary(bytes) => (Bytes::from(bytes.clone()), None),
        };
        let properties = match v5 {
            true => MessageProperties {
                payload_format_indicator: format,
                message_expiry_interval: self.message_expiry,
                content_type: self.content_type.clone(),
                response_topic: self.response_topic.clone(),
                correlation_data: self.correlation_data.clone().map(Bytes::from),
                user_properties: self.user_properties.clone(),
            },
            false => MessageProperties::default(),
        };
        LastWill {
            topic,
            payload,
            qos: self.qos,
            retain: self.retain,
            delay_interval: self.delay.filter(|_| v5),
            properties,
        }
    }
}

/// How long after a vanish the next event comes: past the moment the server must have noticed
/// the silence, 1.5 × the keep alive [MQTT-3.1.2-22], with a margin for its tick.
pub fn keep_alive_expiry(keep_alive: u16) -> Duration {
    Duration::from_millis(u64::from(keep_alive) * 1500) + Duration::from_secs(1)
}

fn client_spec(name: &str, protocol: Protocol, client_id: &str, node: Node) -> ClientSpec {
    ClientSpec {
        name: name.to_owned(),
        client_id: client_id.to_owned(),
        protocol,
        auto_ack: true,
        keep_alive_pings: true,
        node,
        location: Location::default(),
    }
}

fn plain_step(kind: StepKind) -> Step {
    Step {
        kind,
        mark: None,
        at: None,
        expect: Vec::new(),
        location: Location::default(),
    }
}

/// A client step with the expectations the parser would give it: a connect expects CONNACK
/// success, unless the caller replaces them with an outcome of its own.
fn client_step(client: &str, action: Action) -> Step {
    let expect = match action {
        Action::Connect(_) => vec![StepExpectation {
            reason: Some(0),
            ..StepExpectation::default()
        }],
        _ => Vec::new(),
    };
    Step {
        expect,
        ..plain_step(StepKind::Client {
            client: client.to_owned(),
            action,
        })
    }
}
