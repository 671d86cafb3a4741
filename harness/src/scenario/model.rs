//! The typed scenario model: what a YAML scenario file means, with every default resolved
//! and every name checked. It holds no runtime state; the simulator and TCP runners read it.
//!
//! Packets a client sends are kept in the broker codec's own types ([`Connect`],
//! [`LastWill`], [`SubscriptionRequest`], [`Disconnect`], [`MessageProperties`]) so that a
//! runner sends them as they are. Interval fields that travel on the wire (keep alive,
//! session expiry, will delay, message expiry, server keep alive) are whole seconds, as on the
//! wire; every other time is a [`Duration`].

use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, Disconnect, MessageProperties, Protocol, QoS, SubscriptionRequest, UserProperty,
};
/// A scenario's `broker:` section: the reference broker's own settings table, every key optional.
pub use lastwill_broker::config::Overrides;

/// A line and column in the scenario file, both 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One scenario file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file name given to [`parse`](super::parse) (the path for [`load`](super::load)).
    pub file: String,
    /// `name:` one line saying what the scenario shows.
    pub name: String,
    /// `description:` optional longer text.
    pub description: Option<String>,
    /// `refs:` the spec statements checked, as written (`MQTT-3.1.3-9`, `W5-QOS3`).
    pub refs: Vec<String>,
    /// `tags:` free-form labels for selecting scenarios.
    pub tags: Vec<String>,
    /// `protocol:` the default protocol of every client (default 5).
    pub protocol: Protocol,
    /// `level:` what a failed check means (default `must`). Expectations may override it.
    pub level: Level,
    /// `seed:` the simulator seed for this scenario; `None` uses the run's seed.
    pub seed: Option<u64>,
    /// `duration:` the run lasts at least this long from its start: after the last step the
    /// runner keeps observing until then. `None`: the run ends with the last step.
    pub duration: Option<Duration>,
    /// `broker:` changes to the reference broker's configuration (requirements on an
    /// external broker).
    pub broker: Overrides,
    /// `control:` whether the runner adds a control arm to the negative expectations (default
    /// true; see `runner::control_arm`). `control: false` opts out, with the reason in a
    /// comment, where no watcher can be shown to be able to receive a will at the end.
    pub control: bool,
    /// `clients:` in file order.
    pub clients: Vec<ClientSpec>,
    /// `steps:` in order.
    pub steps: Vec<Step>,
    /// `expect:` final expectations, one entry per client block (file order).
    pub expect: Vec<ClientExpectation>,
}

/// How long a step waits for its outcome unless its `expect:` says `within:`.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);

/// The longest a scenario may last: the simulator's horizon, checked at parse time. Virtual
/// time is cheap but not free (each simulated millisecond is one step of every host: about
/// 18 s of CPU per simulated hour with one client, debug build), and a real broker takes it
/// in real time.
pub const MAX_LENGTH: Duration = Duration::from_secs(24 * 3600);

impl Scenario {
    /// How long the run lasts when every step gets its answer at once: its waits, `at:` and
    /// `duration:`.
    pub fn length(&self) -> Duration {
        self.schedule(|_| Duration::ZERO).1
    }

    /// The longest the run can last: [`Scenario::length`] with every client step taking all of
    /// its [`Step::within`] (a broker restart as long as a step). Runs end by then.
    pub fn longest(&self) -> Duration {
        self.schedule(Step::longest).1
    }

    /// When each step ends, and when the run does, if a step takes `takes(step)` once it
    /// starts: a step starts when the one before it ends, or at its `at:` if that is later.
    pub(super) fn schedule(&self, takes: impl Fn(&Step) -> Duration) -> (Vec<Duration>, Duration) {
        let mut now = Duration::ZERO;
        let mut marks: Vec<(&str, Duration)> = Vec::new();
        let mut ends = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            if let Some(at) = &step.at {
                let base = match &at.mark {
                    None => Some(Duration::ZERO),
                    Some(mark) => marks.iter().find(|(m, _)| m == mark).map(|(_, t)| *t),
                };
                if let Some(start) = base.map(|b| b.saturating_add(at.offset)) {
                    now = now.max(start);
                }
            }
            now = now.saturating_add(match step.kind {
                StepKind::Wait(wait) => wait,
                _ => takes(step),
            });
            if let Some(mark) = &step.mark {
                marks.push((mark, now));
            }
            ends.push(now);
        }
        let end = self.duration.map_or(now, |d| now.max(d));
        (ends, end)
    }

    /// The client with this name (names are checked at parse time).
    pub fn client(&self, name: &str) -> Option<&ClientSpec> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// How many broker nodes the scenario names: the highest `node:` of a client or a node
    /// step (nodes are numbered from 1); 0 when it names none.
    pub fn nodes(&self) -> usize {
        let placed = self.clients.iter().filter_map(|c| c.node);
        let stepped = self.steps.iter().filter_map(|s| match &s.kind {
            StepKind::Node(action) => Some(action.node()),
            _ => None,
        });
        placed.chain(stepped).max().unwrap_or(0)
    }

    /// Every mark defined by the steps, in step order.
    pub fn marks(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().filter_map(|s| s.mark.as_deref())
    }
}

/// How much a failed check weighs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// A mismatch fails the scenario.
    #[default]
    Must,
    /// A mismatch is a warning.
    Should,
    /// Nothing fails: the outcome is only recorded.
    May,
}

impl Level {
    /// As written in a scenario.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
            Level::May => "may",
        }
    }
}

/// A named client: one network connection at a time, re-connectable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSpec {
    /// The key under `clients:`.
    pub name: String,
    /// `client_id:` default for its CONNECTs (default: the name). Already applied to every
    /// [`Action::Connect`] of this client that does not set its own.
    pub client_id: String,
    /// `protocol:` (default: the scenario's). Already applied to its CONNECTs.
    pub protocol: Protocol,
    /// `auto_ack:` answer incoming QoS 1/2 PUBLISH (PUBACK, PUBREC, PUBCOMP) by itself
    /// (default true). When false, only the [`Action::Ack`] step acknowledges.
    pub auto_ack: bool,
    /// `keep_alive_pings:` send PINGREQ when the keep alive is due while otherwise idle
    /// (default true). [`Action::Silence`] stops them regardless.
    pub keep_alive_pings: bool,
    /// `node:` the cluster node (from 1) its connections go to on a cluster target; `None`
    /// lets the runner spread the clients over the nodes. A single broker (the simulator, a
    /// plain target) is every node at once: the simulator runs such a scenario, a plain TCP
    /// target skips it (see `runner::tcp::Cluster`).
    pub node: Option<usize>,
    pub location: Location,
}

/// One entry of `steps:`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    /// `mark:` names the instant this step completed; usable in `at:` of later steps and in
    /// time windows of expectations. A step written as `- mark: NAME` alone is a
    /// [`StepKind::Mark`] with this field set.
    pub mark: Option<String>,
    /// `at:` the step starts no earlier than this instant (immediately if it is past).
    pub at: Option<TimeRef>,
    /// `expect:` checks of this step's outcome. A connect step that states no outcome
    /// (`reason`, `refused`, `no_connack`) gets an implied `reason: success` check.
    pub expect: Vec<StepExpectation>,
    pub location: Location,
}

impl Step {
    /// How long the step waits for its outcome: its `within:`, or [`DEFAULT_WITHIN`].
    pub fn within(&self) -> Duration {
        self.expect
            .iter()
            .find_map(|e| e.within)
            .unwrap_or(DEFAULT_WITHIN)
    }

    /// The longest the step can take, waits aside: a client step its [`Step::within`], a
    /// broker restart as long, a mark or network change no time.
    pub(super) fn longest(&self) -> Duration {
        match self.kind {
            StepKind::Client { .. } | StepKind::BrokerRestart | StepKind::Node(_) => self.within(),
            StepKind::Wait(wait) => wait,
            StepKind::Mark | StepKind::Net(_) => Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// `CLIENT: ACTION`.
    Client { client: String, action: Action },
    /// `wait: 2s`: let time pass.
    Wait(Duration),
    /// `mark: NAME` alone: does nothing; the name is in [`Step::mark`].
    Mark,
    /// `broker: restart`: the broker process stops (sessions in memory are lost) and starts.
    BrokerRestart,
    /// `net: {...}`: network faults (simulator only), applied in the order written.
    Net(Vec<NetAction>),
    /// `node: {kill: N}` / `node: {restart: N}`: one node of a cluster target crashes or
    /// comes back (cluster targets with a node command only).
    Node(NodeAction),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeAction {
    /// The node dies at once (SIGKILL): its connections end without DISCONNECT and it runs
    /// no shutdown of its own.
    Kill(usize),
    /// The node starts again (stopped first if it runs) and rejoins the cluster.
    Restart(usize),
}

impl NodeAction {
    /// The node it acts on, from 1.
    pub fn node(self) -> usize {
        match self {
            NodeAction::Kill(n) | NodeAction::Restart(n) => n,
        }
    }

    /// As written in a scenario and passed to the node command: `kill`, `restart`.
    pub fn verb(self) -> &'static str {
        match self {
            NodeAction::Kill(_) => "kill",
            NodeAction::Restart(_) => "restart",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetAction {
    /// `partition: [clients]`: the links between these clients and the broker drop every
    /// segment, in both directions; sockets stay open (half-open connections).
    Partition(Vec<String>),
    /// `heal: [clients]` or `heal: all` (`None`): repair partitions.
    Heal(Option<Vec<String>>),
    /// `latency: 50ms` on every link, or `latency: {value: 50ms, clients: [a]}`.
    Latency {
        clients: Option<Vec<String>>,
        latency: Duration,
    },
}

/// What a client does in a step.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// CONNECT. `protocol` and `client_id` are already resolved from the client.
    Connect(Box<Connect>),
    /// SUBSCRIBE.
    Subscribe(SubscribeSpec),
    /// UNSUBSCRIBE.
    Unsubscribe(UnsubscribeSpec),
    /// PUBLISH; QoS 1/2 flows run to completion (the client assigns packet ids).
    Publish(PublishSpec),
    /// PINGREQ.
    Ping,
    /// DISCONNECT, then the client closes the connection (FIN). 3.1.1 ignores `code` and
    /// properties.
    Disconnect(Disconnect),
    /// The connection dies without DISCONNECT.
    Drop(DropMode),
    /// Stop sending anything (PINGREQ and acks included) while the socket stays open, until
    /// this client's next action.
    Silence,
    /// The client's machine disappears: nothing sent or received, no FIN or RST ever.
    Vanish,
    /// Acknowledge every received, not yet acknowledged QoS 1/2 PUBLISH, in order (for
    /// `auto_ack: false`).
    Ack,
    /// Raw bytes written to the connection as they are (opening one if none is open).
    Send(Bytes),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DropMode {
    /// RST (TCP: `SO_LINGER 0`; simulator: crash with unread data).
    #[default]
    Rst,
    /// FIN (orderly shutdown without DISCONNECT).
    Fin,
}

impl DropMode {
    /// As written in a scenario (`drop: rst`) and in storm reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DropMode::Rst => "rst",
            DropMode::Fin => "fin",
        }
    }
}

/// `subscribe:` one SUBSCRIBE packet; the runner assigns its packet id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeSpec {
    pub filters: Vec<SubscriptionRequest>,
    /// 0x0B Subscription Identifier.
    pub subscription_identifier: Option<u32>,
    pub user_properties: Vec<UserProperty>,
}

/// `unsubscribe:` one UNSUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubscribeSpec {
    pub filters: Vec<String>,
    pub user_properties: Vec<UserProperty>,
}

/// `publish:` one PUBLISH packet; the runner assigns its packet id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishSpec {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: MessageProperties,
    /// 0x23 Topic Alias.
    pub topic_alias: Option<u16>,
}

/// An inline check on the outcome of a step. Fields left `None` are not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepExpectation {
    /// `None`: the scenario's level.
    pub level: Option<Level>,
    /// `reason:` (or `code:`): the CONNACK reason/return code of a connect step, or the
    /// PUBACK/PUBREC reason code of a QoS 1/2 publish step.
    pub reason: Option<u8>,
    /// Connect: CONNACK Session Present.
    pub session_present: Option<bool>,
    /// Connect: `true` = CONNACK ≥ 0x80 (3.1.1: non-zero return code) or a close without
    /// CONNACK; `false` = CONNACK success.
    pub refused: Option<bool>,
    /// Connect: `true` = no CONNACK at all before the server closes.
    pub no_connack: Option<bool>,
    /// Connect: CONNACK properties.
    pub connack: ConnAckExpectation,
    /// Subscribe: SUBACK codes, one per filter.
    pub granted: Option<Vec<u8>>,
    /// Unsubscribe: UNSUBACK codes (v5).
    pub codes: Option<Vec<u8>>,
    /// `closed: true`: the server closes the connection; `false`: it is still open when the
    /// step ends.
    pub closed: Option<bool>,
    /// `disconnect:` the server sent DISCONNECT; `reason` `None` accepts any code.
    pub disconnect: Option<DisconnectExpectation>,
    /// `within:` how long the step may wait for its outcome (default [`DEFAULT_WITHIN`]).
    pub within: Option<Duration>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisconnectExpectation {
    pub reason: Option<u8>,
}

/// Checks on CONNACK properties (v5). `None` = not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAckExpectation {
    pub session_expiry: Option<PropertyCheck<u32>>,
    pub receive_maximum: Option<PropertyCheck<u16>>,
    pub maximum_qos: Option<PropertyCheck<QoS>>,
    pub retain_available: Option<PropertyCheck<bool>>,
    pub maximum_packet_size: Option<PropertyCheck<u32>>,
    pub assigned_client_id: Option<PropertyCheck<String>>,
    pub topic_alias_maximum: Option<PropertyCheck<u16>>,
    pub wildcard_subscription_available: Option<PropertyCheck<bool>>,
    pub subscription_identifiers_available: Option<PropertyCheck<bool>>,
    pub shared_subscription_available: Option<PropertyCheck<bool>>,
    pub server_keep_alive: Option<PropertyCheck<u16>>,
}

impl ConnAckExpectation {
    pub fn is_empty(&self) -> bool {
        *self == ConnAckExpectation::default()
    }
}

/// A check on one optional property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropertyCheck<T> {
    /// `absent`: the property is not in the packet.
    Absent,
    /// `present`: it is there, any value.
    Present,
    /// A value: it is there with this value (for ranges: within it).
    Is(T),
}

/// An inclusive range of integers; `30` is `30..30`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    pub min: u32,
    pub max: u32,
}

impl Range {
    pub fn exactly(n: u32) -> Range {
        Range { min: n, max: n }
    }

    pub fn contains(&self, n: u32) -> bool {
        (self.min..=self.max).contains(&n)
    }
}

/// An instant: a mark (`None` = the start of the run) plus an offset.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimeRef {
    pub mark: Option<String>,
    pub offset: Duration,
}

/// A final expectation block, `expect: {CLIENT: ...}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientExpectation {
    pub client: String,
    /// `None`: the scenario's level.
    pub level: Option<Level>,
    /// `receives:`; `None` = not checked.
    pub receives: Option<Receives>,
    /// `ordered: true`: the listed messages arrive in the order listed.
    pub ordered: bool,
    /// `only: true`: every message the client receives matches a listed matcher.
    pub only: bool,
    /// `connected: true` / `closed: true`: the client's connection state at the end.
    pub end_state: Option<EndState>,
    pub location: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Receives {
    /// `receives: nothing`: no PUBLISH at all over the whole run.
    Nothing,
    Messages(Vec<MessageMatcher>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndState {
    Connected,
    Closed,
}

/// One expected incoming PUBLISH. Fields left `None` are not checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageMatcher {
    /// Exact topic name (not a filter).
    pub topic: Option<String>,
    pub payload: Option<Bytes>,
    pub qos: Option<QoS>,
    pub retain: Option<bool>,
    pub dup: Option<bool>,
    pub properties: PropertiesMatcher,
    /// How many received messages match (default exactly 1).
    pub count: Range,
    /// When it must arrive.
    pub window: Option<Window>,
    /// `None`: the block's level.
    pub level: Option<Level>,
    pub location: Location,
}

/// Checks on the properties of a received PUBLISH. `None` = not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropertiesMatcher {
    pub payload_format: Option<PropertyCheck<u8>>,
    /// Seconds; a range allows for time spent in the broker.
    pub message_expiry: Option<PropertyCheck<Range>>,
    pub content_type: Option<PropertyCheck<String>>,
    pub response_topic: Option<PropertyCheck<String>>,
    pub correlation_data: Option<PropertyCheck<Bytes>>,
    /// The exact list, in order (`[]` = none).
    pub user_properties: Option<Vec<UserProperty>>,
    /// The exact list, in order (`[]` = none).
    pub subscription_identifiers: Option<Vec<u32>>,
    pub topic_alias: Option<PropertyCheck<u16>>,
}

/// A time window. Runners widen it by their tolerance (early before, late after).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Window {
    /// `at:` at this instant.
    At(TimeRef),
    /// `after:` / `before:` (inclusive bounds; at least one is set).
    Between {
        after: Option<TimeRef>,
        before: Option<TimeRef>,
    },
}
