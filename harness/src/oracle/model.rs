//! The executable will model: a scenario's steps replayed against the will rules of MQTT
//! 3.1.1 and 5.0 as `/work/shared/spec/will-statements.md` states them, producing every
//! message each client must (or may) receive and why.
//!
//! It keeps what the rules need and nothing else: which connection each client has open,
//! the sessions by client identifier (subscriptions, a will waiting for its delay, messages
//! queued while offline), the retained messages, and timers for will delays, session ends and
//! keep-alive expiry. Every decision that depends on the order of two instants is taken only
//! when they are [`MARGIN`](super::time::MARGIN) apart; otherwise the scenario is
//! [`Unsupported`].

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, MessageProperties, Protocol, QoS, RetainHandling, SubscriptionRequest,
};

use super::Unsupported;
use super::raw::{self, RawPacket};
use super::time::{Bounds, Instant, Order, ROUND_TRIP, TICK, Timeline, When};
use super::topic::{self, Filter};
use crate::scenario::{
    Action, ClientSpec, DropMode, Level, PropertiesMatcher, PropertyCheck, PublishSpec, Range,
    Scenario, Step, StepExpectation, StepKind, SubscribeSpec,
};

type Outcome<T = ()> = Result<T, Unsupported>;

fn unsupported<T>(why: impl Into<String>) -> Outcome<T> {
    Err(Unsupported(why.into()))
}

/// A piece of a reasoning line; instants are named once the marks are chosen.
#[derive(Clone, Debug)]
pub enum Piece {
    Text(String),
    At(Instant),
    Between(Instant, Instant),
    After(Instant),
}

pub type Line = Vec<Piece>;

fn text(s: impl Into<String>) -> Piece {
    Piece::Text(s.into())
}

/// When a predicted message reaches its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    At(Instant),
    Between(Instant, Instant),
    /// Some time after this instant (a message queued for a session that resumes then).
    After(Instant),
}

impl Arrival {
    fn of(when: When) -> Arrival {
        if when.is_exact() {
            Arrival::At(when.earliest)
        } else {
            Arrival::Between(when.earliest, when.latest)
        }
    }

    fn piece(self) -> Piece {
        match self {
            Arrival::At(at) => Piece::At(at),
            Arrival::Between(a, b) => Piece::Between(a, b),
            Arrival::After(a) => Piece::After(a),
        }
    }

    /// The latest instant the message can come, for comparing with the end of the run.
    fn latest(self) -> When {
        match self {
            Arrival::At(at) | Arrival::After(at) => When::exactly(at),
            Arrival::Between(_, b) => When::exactly(b),
        }
    }
}

/// One message the oracle predicts for one client.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The scenario client that receives it.
    pub client: String,
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: PropertiesMatcher,
    pub arrival: Arrival,
    pub level: Level,
    pub count: Range,
}

/// An Application Message on its way through the server: a will or a PUBLISH.
#[derive(Clone, Debug)]
struct Message {
    topic: String,
    payload: Bytes,
    qos: QoS,
    retain: bool,
    /// The v5 properties; `None` when the publisher spoke 3.1.1 (no properties exist).
    properties: Option<MessageProperties>,
    /// The client identifier of the publishing connection (for No Local).
    publisher: String,
    /// "device's will", "publisher's PUBLISH (step 4)".
    what: String,
    is_will: bool,
}

#[derive(Clone, Debug)]
struct Will {
    message: Message,
    /// Will Delay Interval, seconds (0 when absent, and always in 3.1.1).
    delay: u32,
    /// Why the server may have refused the CONNECT that carried it: it may then never come.
    doubt: Option<String>,
}

/// How long a session outlives its network connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// v5 Session Expiry Interval absent or 0; 3.1.1 Clean Session 1.
    WithConnection,
    After(u32),
    /// v5 0xFFFFFFFF; 3.1.1 Clean Session 0.
    Never,
}

impl Expiry {
    fn v5(interval: Option<u32>) -> Expiry {
        match interval {
            None | Some(0) => Expiry::WithConnection,
            Some(u32::MAX) => Expiry::Never,
            Some(n) => Expiry::After(n),
        }
    }

    fn describe(self) -> String {
        match self {
            Expiry::WithConnection => "the session ends with the connection".into(),
            Expiry::After(n) => format!("session expiry {n} s"),
            Expiry::Never => "the session never expires".into(),
        }
    }
}

#[derive(Clone, Debug)]
struct Subscription {
    /// As written in SUBSCRIBE (a re-subscription to it replaces it, [MQTT-3.8.4-3]).
    text: String,
    filter: Filter,
    granted: QoS,
    no_local: bool,
    retain_as_published: bool,
    identifier: Option<u32>,
}

/// A message waiting in an offline session ([MQTT-4.5.0-1]).
#[derive(Clone, Debug)]
struct Queued {
    message: Message,
    qos: QoS,
    count: Range,
    retain: bool,
    identifiers: Vec<u32>,
    published: When,
    level: Level,
    because: String,
}

#[derive(Clone, Debug)]
struct Session {
    protocol: Protocol,
    /// The client whose open connection holds the session.
    holder: Option<String>,
    expiry: Expiry,
    subscriptions: Vec<Subscription>,
    /// A v5 will whose connection closed, waiting for its delay; with its timer.
    pending_will: Option<(Will, u64)>,
    /// The timer that ends the session, while it is offline with a finite expiry.
    end_timer: Option<u64>,
    queue: Vec<Queued>,
    /// A QoS 1/2 message was sent and will not be acknowledged (silent or vanished client):
    /// resuming the session redelivers it, which the oracle does not model.
    unacknowledged: bool,
    /// Instants the session's state changed and was read, with the event that did it.
    changes: Vec<Touch>,
    reads: Vec<Touch>,
}

/// A read or a change of shared state (a session, a retained message), to find races.
#[derive(Clone, Debug)]
struct Touch {
    /// When the server did it: for a step, from its start until its response came back (or
    /// a moment after a fire-and-forget action); for a timer, its instant.
    when: When,
    /// The step or timer that did it.
    event: u64,
    /// The client whose step did it; `None` for a timer.
    by: Option<String>,
    /// The step or timer, in words.
    what: String,
    /// The events that set off this one (a will's due time follows the close that set it).
    causes: Vec<u64>,
}

/// The client stopped talking on an open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quiet {
    /// `silence`: it still reads.
    Silent(Instant),
    /// `vanish`: nothing in or out.
    Vanished(Instant),
}

/// An accepted network connection, as the server holds it.
#[derive(Clone, Debug)]
struct Connection {
    client_id: String,
    protocol: Protocol,
    /// Seconds; the Server Keep Alive when the CONNACK has one ([MQTT-3.2.2-21]).
    keep_alive: u16,
    /// v5 Session Expiry Interval of the CONNECT.
    session_expiry: Option<u32>,
    /// 3.1.1 Clean Session.
    clean: bool,
    will: Option<Will>,
    quiet: Option<Quiet>,
    keep_alive_timer: Option<u64>,
    /// Why the server may have refused it after all.
    doubt: Option<String>,
    maximum_packet_size: Option<u32>,
    topic_alias_maximum: Option<u16>,
}

/// What the client knows of its own connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Closed,
    Open,
    /// The server closed it then; the client reads the close a moment later.
    ClosedByServer(When),
}

struct Client {
    spec: ClientSpec,
    view: View,
    link: Option<Connection>,
}

#[derive(Clone, Debug)]
struct Retained {
    message: Message,
    published: When,
    /// `Should` for a 3.1.1 QoS 0 message, which the server may discard ([MQTT-3.3.1-7]).
    level: Level,
}

#[derive(Clone, Debug)]
enum TimerKind {
    WillDue(String),
    SessionEnd(String),
    KeepAlive(String),
}

#[derive(Clone, Debug)]
struct Timer {
    id: u64,
    at: When,
    kind: TimerKind,
    /// The event that set it, and that event's causes.
    causes: Vec<u64>,
}

/// How a connection ends.
#[derive(Clone, Debug)]
enum Ending {
    /// The client sent DISCONNECT and closed the connection.
    Disconnect {
        code: u8,
        session_expiry: Option<u32>,
    },
    /// The server closed it, for this reason (citing the statement).
    Server(String),
    /// It was lost without DISCONNECT, this way.
    Lost(String),
    /// The server must disconnect the client, and the spec does not say whether the will goes.
    Unclear(String),
}

/// What a client step does, decided before the step is timed.
enum Effect {
    /// Nothing reaches the server.
    Nothing,
    Connect(Box<Connect>, Option<String>),
    /// The server refuses the CONNECT and closes the new connection.
    Refused(String),
    /// The connection ends.
    Ends(Ending),
    Subscribe(SubscribeSpec),
    Unsubscribe(Vec<String>),
    Publish(PublishSpec),
    Quiet(Quiet),
    /// A PINGREQ: the connection is used, nothing else changes.
    Ping,
}

impl Effect {
    /// Whether the server closes the connection in answer.
    fn server_closes(&self) -> bool {
        matches!(self, Effect::Refused(_) | Effect::Ends(Ending::Server(_)))
    }
}

/// The server's capabilities that will rules depend on, from `broker:`. Unset means what
/// the spec assumes when a CONNACK does not say: QoS 2, retain available, no size limit.
struct Limits {
    max_qos: QoS,
    retain_available: bool,
    max_packet_size: Option<u32>,
    server_keep_alive: Option<u16>,
    max_session_expiry: Option<u32>,
    credentials: Option<Vec<(String, String)>>,
    wildcard_subscriptions: bool,
    subscription_identifiers: bool,
    shared_subscriptions: bool,
}

impl Limits {
    fn of(scenario: &Scenario) -> Outcome<Limits> {
        let b = &scenario.broker;
        let bounded = b.max_queued_messages.is_some()
            || b.max_connections.is_some()
            || b.max_queued_bytes.is_some()
            || b.memory_budget.is_some()
            || b.frame_timeout.is_some()
            || b.write_timeout.is_some();
        if bounded {
            return unsupported(
                "broker limits: a bound on queued messages, bytes, connections or I/O time is not modelled",
            );
        }
        Ok(Limits {
            max_qos: b.max_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: b.retain_available.unwrap_or(true),
            max_packet_size: b.max_packet_size,
            server_keep_alive: b.server_keep_alive,
            max_session_expiry: b.max_session_expiry,
            credentials: b.credentials.as_ref().map(|list| {
                list.iter()
                    .map(|c| (c.username.clone(), c.password.clone()))
                    .collect()
            }),
            wildcard_subscriptions: b.wildcard_subscriptions.unwrap_or(true),
            subscription_identifiers: b.subscription_identifiers.unwrap_or(true),
            shared_subscriptions: b.shared_subscriptions.unwrap_or(true),
        })
    }
}

/// The DISCONNECT reason codes a client may send (Table 3-10, "Sent by: Client" or both);
/// any other code from a client breaks [MQTT-3.14.2-1].
fn client_disconnect_code(code: u8) -> bool {
    matches!(
        code,
        0x00 | 0x04 | 0x80..=0x83 | 0x90 | 0x93..=0x99
    )
}

pub struct Model<'s> {
    scenario: &'s Scenario,
    limits: Limits,
    pub timeline: Timeline,
    clients: BTreeMap<String, Client>,
    sessions: BTreeMap<String, Session>,
    retained: BTreeMap<String, Retained>,
    /// Per topic: when its retained message changed and was read.
    retained_changes: BTreeMap<String, Vec<Touch>>,
    retained_reads: BTreeMap<String, Vec<Touch>>,
    timers: Vec<Timer>,
    next_timer: u64,
    /// Numbers each step and timer, so that one event's own reads and writes never race.
    event: u64,
    events: u64,
    /// While a step is applied: when the server acts on it, and whose step it is.
    step_effect: Option<When>,
    step_client: Option<String>,
    /// The step or timer being handled, in words, and what set it off.
    event_name: String,
    causes: Vec<u64>,
    /// Why what is published now may not be seen (the run ends about then).
    doubt: Option<String>,
    pub deliveries: Vec<Delivery>,
    pub reasoning: Vec<Line>,
    /// The instant the run ends.
    pub end: Instant,
}

/// Replays the scenario through the model.
pub fn run(scenario: &Scenario) -> Outcome<Model<'_>> {
    let mut model = Model::new(scenario)?;
    for (index, step) in scenario.steps.iter().enumerate() {
        model.step(index, step)?;
    }
    model.finish()?;
    Ok(model)
}

impl<'s> Model<'s> {
    fn new(scenario: &'s Scenario) -> Outcome<Model<'s>> {
        for client in &scenario.clients {
            if !client.auto_ack {
                return unsupported(format!(
                    "acknowledgement flow: client {} holds back its acknowledgements \
                     (`auto_ack: false`)",
                    client.name
                ));
            }
            if !client.keep_alive_pings {
                return unsupported(format!(
                    "keep alive: client {} sends no PINGREQ (`keep_alive_pings: false`)",
                    client.name
                ));
            }
        }
        let clients = scenario
            .clients
            .iter()
            .map(|spec| {
                (
                    spec.name.clone(),
                    Client {
                        spec: spec.clone(),
                        view: View::Closed,
                        link: None,
                    },
                )
            })
            .collect();
        Ok(Model {
            scenario,
            limits: Limits::of(scenario)?,
            timeline: Timeline::default(),
            clients,
            sessions: BTreeMap::new(),
            retained: BTreeMap::new(),
            retained_changes: BTreeMap::new(),
            retained_reads: BTreeMap::new(),
            timers: Vec::new(),
            next_timer: 0,
            event: 0,
            events: 0,
            step_effect: None,
            step_client: None,
            event_name: String::new(),
            causes: Vec::new(),
            doubt: None,
            deliveries: Vec::new(),
            reasoning: Vec::new(),
            end: Instant::START,
        })
    }

    fn new_event(&mut self) -> u64 {
        self.events += 1;
        self.events
    }

    fn say(&mut self, line: Line) {
        self.reasoning.push(line);
    }

    fn step(&mut self, index: usize, step: &Step) -> Outcome {
        self.event = self.new_event();
        self.event_name = describe_step(index, step);
        let at = match &step.at {
            None => None,
            Some(time) => Some(self.timeline.resolve(self.scenario, time).ok_or_else(|| {
                Unsupported(format!("step {}: `at:` names an unknown mark", index + 1))
            })?),
        };
        let start = self.timeline.start_of_next(at).map_err(|_| {
            Unsupported(format!(
                "race: step {} (line {}) starts at its `at:` or when the previous step ends, \
                 and the two are too close to tell apart",
                index + 1,
                step.location.line
            ))
        })?;
        match &step.kind {
            StepKind::Wait(d) => {
                self.timeline.push_step(start, *d, *d + TICK);
                Ok(())
            }
            StepKind::Mark => {
                self.timeline
                    .push_step(start, Duration::ZERO, Duration::ZERO);
                Ok(())
            }
            StepKind::BrokerRestart => unsupported(
                "broker restart: what a server does with sessions and wills across a restart \
                 is its choice ({W5-SHUTDOWN}, {A1})",
            ),
            StepKind::Net(_) => unsupported("network faults: `net:` steps are not modelled"),
            StepKind::Node(_) => unsupported(
                "node kill/restart: what a cluster does with the wills of a dead node's \
                 clients is its choice ({W5-SHUTDOWN}, {A1})",
            ),
            StepKind::Client { client, action } => {
                if let Action::Connect(c) = action {
                    self.settle_half_open(client, &c.client_id, start)?;
                }
                self.fire_timers_before(start)?;
                let effect = self.plan(client, action, start, index)?;
                let (min, max) = self.duration(client, action, &effect, &step.expect);
                // every client step costs a tick, and one more to wake at its `at:`
                let slack = if step.at.is_some() { TICK * 2 } else { TICK };
                let end = self.timeline.push_step(start, min, max + slack);
                let span = When {
                    earliest: start,
                    latest: end,
                };
                // a step that waits for a response has had its effect when the response comes;
                // a fire-and-forget one reaches the server a moment after it
                self.step_effect = Some(if max.is_zero() {
                    // fire and forget
                    When {
                        earliest: start,
                        latest: start.plus(ROUND_TRIP),
                    }
                } else {
                    span
                });
                self.step_client = Some(client.clone());
                let applied = self.apply(client, effect, span, index, step);
                self.step_effect = None;
                self.step_client = None;
                applied?;
                // a step that waits for the close has seen it
                if waits_for_close(&step.expect)
                    && let Some(c) = self.clients.get_mut(client)
                    && matches!(c.view, View::ClosedByServer(_))
                {
                    c.view = View::Closed;
                }
                Ok(())
            }
        }
    }

    /// How long a client step takes: its exchange with the server, and the wait for the
    /// server to close the connection when the step expects that.
    fn duration(
        &self,
        client: &str,
        action: &Action,
        effect: &Effect,
        expect: &[StepExpectation],
    ) -> (Duration, Duration) {
        let round_trips: u32 = match (effect, action) {
            (Effect::Nothing, _) => 0,
            (Effect::Connect(..) | Effect::Refused(_), _) => 2,
            (Effect::Subscribe(_) | Effect::Unsubscribe(_) | Effect::Ping, _) => 1,
            (Effect::Publish(p), _) => p.qos.as_u8().into(),
            (Effect::Ends(Ending::Server(_)), Action::Connect(_)) => 1,
            (Effect::Ends(_) | Effect::Quiet(_), _) => 0,
        };
        let exchange = ROUND_TRIP * round_trips;
        if !waits_for_close(expect) {
            return (Duration::ZERO, exchange);
        }
        let view = self.clients.get(client).map(|c| c.view);
        let closing = effect.server_closes() || matches!(view, Some(View::ClosedByServer(_)));
        let client_closes = matches!(
            effect,
            Effect::Ends(Ending::Disconnect { .. } | Ending::Lost(_))
        ) || view == Some(View::Closed);
        if closing {
            (Duration::ZERO, exchange + ROUND_TRIP)
        } else if client_closes {
            (Duration::ZERO, exchange)
        } else if let Effect::Quiet(Quiet::Silent(_)) = effect
            && let Some(ka) = self.keep_alive_of(client)
        {
            (Duration::ZERO, keep_alive_limit(ka) + ROUND_TRIP)
        } else {
            // nothing closes the connection: the step waits out its time
            let within = expect
                .iter()
                .find_map(|e| e.within)
                .unwrap_or(crate::scenario::DEFAULT_WITHIN);
            (within, within)
        }
    }

    fn keep_alive_of(&self, client: &str) -> Option<u16> {
        let ka = self.clients.get(client)?.link.as_ref()?.keep_alive;
        (ka > 0).then_some(ka)
    }

    // ---- timers ----

    fn add_timer(&mut self, at: When, kind: TimerKind) -> u64 {
        self.next_timer += 1;
        let id = self.next_timer;
        let mut causes = self.causes.clone();
        causes.push(self.event);
        self.timers.push(Timer {
            id,
            at,
            kind,
            causes,
        });
        id
    }

    fn cancel_timer(&mut self, id: u64) {
        self.timers.retain(|t| t.id != id);
    }

    /// The earliest the run can have reached `at`, to put events in order. Which of a timer
    /// and a step close to it the server handles first matters only when both touch the same
    /// session or retained message, and the touches check that.
    fn estimate(&self, at: Instant) -> i64 {
        self.timeline.between(Instant::START, at).min
    }

    /// The next timer, in time order, among those due by `limit`. A timer known only within
    /// bounds (a keep-alive expiry) is handled once its latest instant has passed, so that a
    /// reconnect within them can still settle the quiet connection.
    fn next_timer_by(&self, limit: i64) -> Option<u64> {
        self.timers
            .iter()
            .map(|t| (self.estimate(t.at.latest), t.id))
            .filter(|(at, _)| *at <= limit)
            .min()
            .map(|(_, id)| id)
    }

    fn take_timer(&mut self, id: u64) -> Timer {
        let position = self.timers.iter().position(|t| t.id == id).expect("timer");
        self.timers.remove(position)
    }

    /// Fires, in time order, the timers due before a step that starts at `start`.
    fn fire_timers_before(&mut self, start: Instant) -> Outcome {
        while let Some(id) = self.next_timer_by(self.estimate(start)) {
            let timer = self.take_timer(id);
            self.fire(timer)?;
        }
        Ok(())
    }

    fn describe_timer(&self, timer: &Timer) -> String {
        match &timer.kind {
            TimerKind::WillDue(id) => format!("the due time of {id}'s delayed will"),
            TimerKind::SessionEnd(id) => format!("the end of session {id}"),
            TimerKind::KeepAlive(client) => format!("the keep-alive expiry of {client}"),
        }
    }

    fn fire(&mut self, timer: Timer) -> Outcome {
        let arrival = Arrival::of(timer.at);
        let name = self.describe_timer(&timer);
        let step_name = std::mem::replace(&mut self.event_name, name);
        let step_causes = std::mem::replace(&mut self.causes, timer.causes.clone());
        let event = self.new_event();
        let step_event = std::mem::replace(&mut self.event, event);
        let fired = self.fire_timer(timer, arrival);
        self.event_name = step_name;
        self.causes = step_causes;
        self.event = step_event;
        fired
    }

    fn fire_timer(&mut self, timer: Timer, arrival: Arrival) -> Outcome {
        match timer.kind {
            TimerKind::WillDue(client_id) => {
                self.session_changed(&client_id, timer.at)?;
                let Some(session) = self.sessions.get_mut(&client_id) else {
                    return Ok(());
                };
                let Some((will, _)) = session.pending_will.take() else {
                    return Ok(());
                };
                let line = vec![
                    text(format!(
                        "{}: its will delay of {} s has passed ",
                        will.message.what, will.delay
                    )),
                    arrival.piece(),
                    text(" and the session still exists: published [MQTT-3.1.2-8]"),
                ];
                self.say(line);
                self.publish_will(will, timer.at, arrival)
            }
            TimerKind::SessionEnd(client_id) => {
                let why = match self.sessions.get(&client_id).map(|s| s.expiry) {
                    Some(Expiry::After(n)) => {
                        format!("its Session Expiry Interval of {n} s has passed [MQTT-4.1.0-2]")
                    }
                    _ => "it expired".into(),
                };
                self.end_session(&client_id, timer.at, arrival, &why)
            }
            TimerKind::KeepAlive(client) => {
                let (protocol, ka) = match self.clients.get(&client).and_then(|c| c.link.as_ref()) {
                    Some(link) => (link.protocol, link.keep_alive),
                    None => return Ok(()),
                };
                let statement = match protocol {
                    Protocol::V5 => "[MQTT-3.1.2-22]",
                    Protocol::V311 => "[MQTT-3.1.2-24]",
                };
                let why = format!(
                    "no control packet within 1.5 × its keep alive of {ka} s: the server closes \
                     the connection {statement} (any time up to then, {{A13}})"
                );
                if let Some(c) = self.clients.get_mut(&client)
                    && c.view == View::Open
                {
                    c.view = View::ClosedByServer(timer.at);
                }
                self.close(&client, Ending::Lost(why), timer.at, arrival)
            }
        }
    }

    // ---- touches: reads and writes of shared state must not race ----

    fn touch(&self, when: When) -> Touch {
        match (&self.step_effect, &self.step_client) {
            (Some(effect), Some(client)) => Touch {
                when: *effect,
                event: self.event,
                by: Some(client.clone()),
                what: self.event_name.clone(),
                causes: self.causes.clone(),
            },
            _ => Touch {
                when,
                event: self.event,
                by: None,
                what: self.event_name.clone(),
                causes: self.causes.clone(),
            },
        }
    }

    /// Whether the server certainly did `a` and `b` in a known order:
    /// - one client's steps, in step order (a drop and a reconnect end the same way for the
    ///   will in either order: as a close then a new connection, or as a takeover);
    /// - steps of different clients, when the first was over (its response back, or a round
    ///   trip after a fire-and-forget packet) before the second began;
    /// - a step and a timer, when the step was over by the timer's instant (a server never
    ///   publishes a will early) or the timer came [`MARGIN`](super::time::MARGIN) before the
    ///   step (it may run its timers late);
    /// - two timers, [`MARGIN`](super::time::MARGIN) apart.
    fn ordered(&self, a: &Touch, b: &Touch) -> bool {
        let t = &self.timeline;
        match (&a.by, &b.by) {
            _ if a.event == b.event
                || a.causes.contains(&b.event)
                || b.causes.contains(&a.event) =>
            {
                true
            }
            // a will's due time and its session's end, set by one close: in either order the
            // will goes out once, then the session ends
            (None, None) if a.causes.last().is_some() && a.causes.last() == b.causes.last() => true,
            (Some(x), Some(y)) if x == y => true,
            (Some(_), Some(_)) => {
                t.no_later(a.when.latest, b.when.earliest)
                    || t.no_later(b.when.latest, a.when.earliest)
            }
            (Some(_), None) => {
                t.step_then_timer(a.when, b.when) || t.timer_then_step(b.when, a.when)
            }
            (None, Some(_)) => {
                t.step_then_timer(b.when, a.when) || t.timer_then_step(a.when, b.when)
            }
            (None, None) => matches!(t.order(a.when, b.when), Order::Before | Order::After),
        }
    }

    fn race(&self, what: &str, a: &Touch, b: &Touch) -> Unsupported {
        Unsupported(format!(
            "race: {what}: {} and {} are too close to tell which the server handles first",
            a.what, b.what
        ))
    }

    fn session_changed(&mut self, client_id: &str, when: When) -> Outcome {
        let touch = self.touch(when);
        let Some(session) = self.sessions.get(client_id) else {
            return Ok(());
        };
        if let Some(other) = session
            .reads
            .iter()
            .chain(&session.changes)
            .find(|r| !self.ordered(r, &touch))
        {
            return Err(self.race(&format!("session {client_id}"), other, &touch));
        }
        if let Some(session) = self.sessions.get_mut(client_id) {
            session.changes.push(touch);
        }
        Ok(())
    }

    fn session_read(&mut self, client_id: &str, when: When) -> Outcome {
        let touch = self.touch(when);
        let Some(session) = self.sessions.get(client_id) else {
            return Ok(());
        };
        if let Some(other) = session.changes.iter().find(|c| !self.ordered(c, &touch)) {
            return Err(self.race(&format!("session {client_id}"), other, &touch));
        }
        if let Some(session) = self.sessions.get_mut(client_id) {
            session.reads.push(touch);
        }
        Ok(())
    }

    fn retained_touched(&mut self, topic: &str, when: When, write: bool) -> Outcome {
        let touch = self.touch(when);
        let changes = self.retained_changes.get(topic).into_iter().flatten();
        let reads = self.retained_reads.get(topic).into_iter().flatten();
        let conflicting = if write {
            changes.chain(reads).find(|o| !self.ordered(o, &touch))
        } else {
            changes.into_iter().find(|o| !self.ordered(o, &touch))
        };
        if let Some(other) = conflicting {
            return Err(self.race(&format!("the retained message of {topic}"), other, &touch));
        }
        let mine = if write {
            &mut self.retained_changes
        } else {
            &mut self.retained_reads
        };
        mine.entry(topic.to_owned()).or_default().push(touch);
        Ok(())
    }

    // ---- planning a client step ----

    fn plan(
        &mut self,
        name: &str,
        action: &Action,
        start: Instant,
        index: usize,
    ) -> Outcome<Effect> {
        let step = index + 1;
        let client = self
            .clients
            .get(name)
            .expect("clients are checked by the parser");
        // the client learns of a close by the server a moment after it happens
        if let View::ClosedByServer(at) = client.view {
            let harmless = matches!(
                action,
                Action::Drop(_)
                    | Action::Vanish
                    | Action::Silence
                    | Action::Disconnect(_)
                    | Action::Ack
            );
            // it reads the close within a round trip
            match self.timeline.no_later(at.latest.plus(ROUND_TRIP), start) {
                true => {
                    if let Some(c) = self.clients.get_mut(name) {
                        c.view = View::Closed;
                    }
                }
                false if harmless => return Ok(Effect::Nothing),
                false => {
                    return unsupported(format!(
                        "race: {name} acts at step {step} as the server closes its connection"
                    ));
                }
            }
        }
        let client = &self.clients[name];
        let view = client.view;
        if let Some(link) = &client.link {
            if link.quiet.is_some() {
                return unsupported(format!(
                    "keep alive: {name} acts again at step {step} after `silence`/`vanish`, \
                     before its connection is certainly closed (the server may close it any \
                     time, {{A13}})"
                ));
            }
            if link.doubt.is_some()
                && !matches!(action, Action::Drop(_) | Action::Vanish | Action::Silence)
            {
                return unsupported(format!(
                    "uncertain CONNECT: {name} acts at step {step} on a connection the server may \
                     have refused"
                ));
            }
        }
        let open = view == View::Open;
        Ok(match action {
            Action::Connect(_) if open => Effect::Ends(Ending::Server(
                "a second CONNECT on the connection is a protocol error [MQTT-3.1.0-2]".into(),
            )),
            Action::Connect(connect) => self.plan_connect(name, connect, step)?,
            _ if !open && !matches!(action, Action::Send(_)) => Effect::Nothing,
            Action::Subscribe(spec) => Effect::Subscribe(spec.clone()),
            Action::Unsubscribe(spec) => Effect::Unsubscribe(spec.filters.clone()),
            Action::Publish(spec) => self.plan_publish(name, spec)?,
            Action::Ping => Effect::Ping,
            Action::Disconnect(d) => Effect::Ends(Ending::Disconnect {
                code: u8::from(d.code),
                session_expiry: d.session_expiry_interval,
            }),
            Action::Drop(DropMode::Rst) => Effect::Ends(Ending::Lost(
                "the connection was reset without DISCONNECT".into(),
            )),
            Action::Drop(DropMode::Fin) => Effect::Ends(Ending::Lost(
                "the client closed the connection without DISCONNECT".into(),
            )),
            Action::Silence => Effect::Quiet(Quiet::Silent(start)),
            Action::Vanish => Effect::Quiet(Quiet::Vanished(start)),
            Action::Ack => Effect::Nothing,
            Action::Send(_) if !open => {
                return unsupported(
                    "raw bytes: a raw CONNECT (or raw bytes on a new connection) is not modelled",
                );
            }
            Action::Send(bytes) => {
                let protocol = client
                    .link
                    .as_ref()
                    .map_or(client.spec.protocol, |l| l.protocol);
                match raw::classify(bytes, protocol, self.limits.max_qos.as_u8())
                    .map_err(Unsupported)?
                {
                    RawPacket::Disconnect {
                        code,
                        session_expiry,
                    } => Effect::Ends(Ending::Disconnect {
                        code,
                        session_expiry,
                    }),
                    RawPacket::Violation(why) => Effect::Ends(Ending::Server(format!(
                        "{why}: the server closes the connection"
                    ))),
                    RawPacket::UnclearDisconnect => Effect::Ends(Ending::Unclear(
                        "a 3.1.1 DISCONNECT with reserved bits set makes the server disconnect \
                         the client [MQTT-3.14.1-1]; whether the will goes out is not said \
                         ({A5})"
                            .into(),
                    )),
                }
            }
        })
    }

    /// Whether the server accepts a CONNECT on a new connection.
    fn plan_connect(&self, name: &str, c: &Connect, step: usize) -> Outcome<Effect> {
        let v5 = c.protocol == Protocol::V5;
        if c.client_id.is_empty() {
            return unsupported("client identifier: an empty client id is not modelled");
        }
        if c.authentication_method.is_some() {
            return unsupported("enhanced authentication is not modelled");
        }
        if let (Some(max), Some(requested)) =
            (self.limits.max_session_expiry, c.session_expiry_interval)
            && v5
            && requested > max
        {
            return unsupported(
                "session expiry: a server that shortens the requested session expiry",
            );
        }
        if self.limits.server_keep_alive.is_some() && !v5 {
            return unsupported("keep alive: a Server Keep Alive with a 3.1.1 client");
        }
        if let Some(holder) = self.holder_of(&c.client_id)
            && self.clients[&holder]
                .link
                .as_ref()
                .is_some_and(|l| l.doubt.is_some())
        {
            return unsupported(format!(
                "uncertain CONNECT: step {step} takes over a connection the server may have \
                 refused"
            ));
        }
        let busy = self.holder_of(&c.client_id).is_some()
            || self
                .sessions
                .get(&c.client_id)
                .is_some_and(|s| s.pending_will.is_some());
        let refuse = |why: String| -> Outcome<Effect> {
            if busy {
                return unsupported(format!(
                    "refused CONNECT: step {step} is refused for a client id with an open \
                     connection or a pending will; whether that ends them is not said ({{A3}})"
                ));
            }
            Ok(Effect::Refused(why))
        };
        if let Some(users) = &self.limits.credentials {
            let password = c
                .password
                .as_ref()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let known = users.iter().any(|(user, pass)| {
                c.username.as_deref() == Some(user.as_str()) && password.as_deref() == Some(pass)
            });
            if !known {
                return refuse(format!(
                    "{name}'s CONNECT has credentials the server does not accept: refused \
                     [MQTT-3.1.4-2]"
                ));
            }
        }
        let mut doubts = Vec::new();
        if let Some(will) = &c.will {
            if let Some(why) = topic::invalid_topic_name(&will.topic) {
                return unsupported(format!(
                    "will topic: a will topic with {why}; the server's answer varies ({{A7}})"
                ));
            }
            if will.qos > self.limits.max_qos {
                if !v5 {
                    return unsupported(
                        "capabilities: a 3.1.1 will above the server's maximum QoS ({A8})",
                    );
                }
                return refuse(format!(
                    "{name}'s Will QoS {} exceeds the server's Maximum QoS {}: refused \
                     [MQTT-3.2.2-12]",
                    will.qos.as_u8(),
                    self.limits.max_qos.as_u8()
                ));
            }
            if will.retain && !self.limits.retain_available {
                if !v5 {
                    return unsupported(
                        "capabilities: a 3.1.1 retained will on a server without retain",
                    );
                }
                return refuse(format!(
                    "{name}'s will is retained and the server has no retained messages: \
                     refused [MQTT-3.2.2-13]"
                ));
            }
            if will.topic.starts_with('$') {
                doubts.push(
                    "the server should prevent clients from using topics starting with $ \
                     (§4.7.2), so it may refuse the will"
                        .to_owned(),
                );
            }
            if topic::has_disallowed_code_points(&will.topic) {
                doubts.push(format!(
                    "the will topic holds a disallowed code point, which the server may treat \
                     as malformed ({})",
                    if v5 {
                        "{W5-DISALLOWED-CP}"
                    } else {
                        "{W3-DISALLOWED-CP}"
                    }
                ));
            }
            if v5
                && will.properties.payload_format_indicator == Some(1)
                && std::str::from_utf8(&will.payload).is_err()
            {
                doubts.push(
                    "the will payload is marked UTF-8 and is not: the server may refuse it \
                     with 0x99 ({W5-PFI-VALID}, {A15})"
                        .to_owned(),
                );
            }
            if v5
                && will
                    .properties
                    .response_topic
                    .as_deref()
                    .is_some_and(|t| t.contains(['+', '#']))
            {
                doubts.push(
                    "the will's Response Topic has a wildcard, which no PUBLISH may carry \
                     [MQTT-3.3.2-14]: the server may refuse the CONNECT ({A7}) and the will can \
                     never be sent"
                        .to_owned(),
                );
            }
        }
        if let Some(limit) = self.limits.max_packet_size {
            let size = connect_size(c);
            if size > u64::from(limit) {
                doubts.push(format!(
                    "the CONNECT ({size} bytes) exceeds the server's Maximum Packet Size \
                     {limit}: it may refuse it ({{W5-RC-0x95}})"
                ));
            }
        }
        if doubts.is_empty() {
            return Ok(Effect::Connect(Box::new(c.clone()), None));
        }
        if busy || self.sessions.contains_key(&c.client_id) {
            return unsupported(format!(
                "uncertain CONNECT: step {step} may be refused, and a session exists for its \
                 client id"
            ));
        }
        Ok(Effect::Connect(
            Box::new(c.clone()),
            Some(doubts.join("; ")),
        ))
    }

    fn plan_publish(&self, name: &str, p: &PublishSpec) -> Outcome<Effect> {
        let link = self.clients[name]
            .link
            .as_ref()
            .expect("open view has a link");
        let v5 = link.protocol == Protocol::V5;
        if p.topic_alias.is_some() {
            return unsupported("topic alias: a PUBLISH with a Topic Alias is not modelled");
        }
        if let Some(why) = topic::invalid_topic_name(&p.topic) {
            return unsupported(format!("publish: a PUBLISH to {why}"));
        }
        let breaks = |why: &str| {
            Effect::Ends(Ending::Server(format!(
                "{why}: the server closes the connection"
            )))
        };
        if p.qos > self.limits.max_qos {
            if !v5 {
                return unsupported("capabilities: a 3.1.1 PUBLISH above the server's maximum QoS");
            }
            return Ok(breaks(
                "a PUBLISH above the server's Maximum QoS [MQTT-3.2.2-11]",
            ));
        }
        if p.retain && !self.limits.retain_available {
            if !v5 {
                return unsupported("capabilities: a 3.1.1 retained PUBLISH without retain");
            }
            return Ok(breaks(
                "a retained PUBLISH to a server without retained messages [MQTT-3.2.2-14]",
            ));
        }
        if let Some(limit) = self.limits.max_packet_size {
            let properties = v5.then_some(&p.properties);
            let size = publish_size(&p.topic, &p.payload, p.qos, properties, &[]);
            if size.abs_diff(u64::from(limit)) <= 16 {
                return unsupported("packet size: a PUBLISH within 16 bytes of the size limit");
            }
            if size > u64::from(limit) {
                if !v5 {
                    return unsupported("packet size: a 3.1.1 PUBLISH above a size limit");
                }
                return Ok(breaks(&format!(
                    "a PUBLISH of {size} bytes above the server's Maximum Packet Size {limit} \
                     [MQTT-3.2.2-15]"
                )));
            }
        }
        Ok(Effect::Publish(p.clone()))
    }

    // ---- applying a client step ----

    fn apply(
        &mut self,
        name: &str,
        effect: Effect,
        span: When,
        index: usize,
        step: &Step,
    ) -> Outcome {
        let arrival = Arrival::At(span.latest);
        let number = index + 1;
        match effect {
            Effect::Nothing => Ok(()),
            Effect::Connect(connect, doubt) => self.connect(name, *connect, doubt, span),
            Effect::Refused(why) => {
                if let Some(c) = self.clients.get_mut(name) {
                    c.view = View::ClosedByServer(span);
                }
                self.say(vec![text(format!(
                    "step {number}: {why}; no will is stored"
                ))]);
                Ok(())
            }
            Effect::Ends(ending) => {
                if let Ending::Server(_) | Ending::Unclear(_) = ending
                    && let Some(c) = self.clients.get_mut(name)
                {
                    c.view = View::ClosedByServer(span);
                }
                // what a step sets off is timed from its own end (its mark)
                let (when, arrival) = (When::exactly(span.latest), arrival);
                if let Some(c) = self.clients.get_mut(name)
                    && c.view == View::Open
                {
                    c.view = View::Closed;
                }
                self.close(name, ending, when, arrival)
            }
            Effect::Subscribe(spec) => self.subscribe(name, &spec, span, step),
            Effect::Unsubscribe(filters) => {
                let client_id = self.client_id(name);
                self.session_changed(&client_id, span)?;
                if let Some(session) = self.sessions.get_mut(&client_id) {
                    session.subscriptions.retain(|s| !filters.contains(&s.text));
                }
                Ok(())
            }
            Effect::Publish(spec) => {
                let link = self.clients[name].link.as_ref().expect("connected");
                let v5 = link.protocol == Protocol::V5;
                let message = Message {
                    topic: spec.topic.clone(),
                    payload: spec.payload.clone(),
                    qos: spec.qos,
                    retain: spec.retain,
                    properties: v5.then(|| spec.properties.clone()),
                    publisher: link.client_id.clone(),
                    what: format!("{name}'s PUBLISH (step {number})"),
                    is_will: false,
                };
                self.publish(message, span, arrival, None)
            }
            Effect::Quiet(quiet) => {
                // timed from the step's mark, unless the step lasts until the server closes
                let since = if waits_for_close(&step.expect) {
                    span.earliest
                } else {
                    span.latest
                };
                let quiet = match quiet {
                    Quiet::Silent(_) => Quiet::Silent(since),
                    Quiet::Vanished(_) => Quiet::Vanished(since),
                };
                self.go_quiet(name, quiet, step)
            }
            Effect::Ping => Ok(()),
        }
    }

    fn client_id(&self, name: &str) -> String {
        self.clients[name].link.as_ref().map_or_else(
            || self.clients[name].spec.client_id.clone(),
            |l| l.client_id.clone(),
        )
    }

    /// The client whose open connection has this client identifier.
    fn holder_of(&self, client_id: &str) -> Option<String> {
        self.clients
            .iter()
            .find(|(_, c)| c.link.as_ref().is_some_and(|l| l.client_id == client_id))
            .map(|(name, _)| name.clone())
    }

    /// A CONNECT for a client id whose connection went quiet (`vanish`, `silence`) and whose
    /// keep alive has not certainly expired: the server may have closed that connection at
    /// any time since ({A13}; with keep alive 0, {W5-KA0}), and closes it at the latest now,
    /// as a takeover ([MQTT-3.1.4-3], 3.1.1 [MQTT-3.1.4-2]).
    fn settle_half_open(&mut self, connecting: &str, client_id: &str, start: Instant) -> Outcome {
        let Some(holder) = self.holder_of(client_id) else {
            return Ok(());
        };
        let link = self.clients[&holder]
            .link
            .as_ref()
            .expect("holder is connected");
        let (Some(Quiet::Silent(since) | Quiet::Vanished(since)), v5) =
            (link.quiet, link.protocol == Protocol::V5)
        else {
            return Ok(());
        };
        if let Some(timer) = link
            .keep_alive_timer
            .and_then(|id| self.timers.iter().find(|t| t.id == id))
            && self
                .timeline
                .timer_then_step(timer.at, When::exactly(start))
        {
            return Ok(()); // it expired before: the timer closes it
        }
        // with keep alive 0 nothing closes it before ({W5-KA0}); else keep alive may have
        let when = if link.keep_alive == 0 {
            When::exactly(start)
        } else {
            When {
                earliest: since,
                latest: start,
            }
        };
        if let Some(c) = self.clients.get_mut(&holder)
            && c.view == View::Open
        {
            c.view = View::ClosedByServer(when);
        }
        let step_name = std::mem::replace(
            &mut self.event_name,
            format!("the end of {holder}'s quiet connection"),
        );
        // part of the connecting client's step, done at some point since the connection
        // went quiet
        self.step_effect = Some(when);
        self.step_client = Some(connecting.to_owned());
        let statement = if v5 {
            "[MQTT-3.1.4-3]"
        } else {
            "[MQTT-3.1.4-2]"
        };
        let closed = self.close(
            &holder,
            Ending::Lost(format!(
                "the connection went quiet and the server closes it by keep alive ({{A13}}) or, \
                 at the latest, when client id {client_id} connects again {statement}"
            )),
            when,
            Arrival::of(when),
        );
        self.event_name = step_name;
        self.step_effect = None;
        self.step_client = None;
        closed
    }

    fn go_quiet(&mut self, name: &str, quiet: Quiet, step: &Step) -> Outcome {
        let waits = waits_for_close(&step.expect);
        let Some(link) = self.clients.get_mut(name).and_then(|c| c.link.as_mut()) else {
            return Ok(());
        };
        link.quiet = Some(quiet);
        let ka = link.keep_alive;
        let since = match quiet {
            Quiet::Silent(at) | Quiet::Vanished(at) => at,
        };
        if let Quiet::Vanished(_) = quiet
            && let Some(c) = self.clients.get_mut(name)
        {
            c.view = View::Closed;
        }
        if ka == 0 {
            // [MQTT-3.1.2-22] is off; a server may still drop an inactive client ({W5-KA0})
            return Ok(());
        }
        let at = When {
            earliest: since,
            latest: since.plus(keep_alive_limit(ka)),
        };
        let id = self.add_timer(at, TimerKind::KeepAlive(name.to_owned()));
        if let Some(link) = self.clients.get_mut(name).and_then(|c| c.link.as_mut()) {
            link.keep_alive_timer = Some(id);
        }
        if waits && matches!(quiet, Quiet::Silent(_)) {
            // the step lasts until the server closes the connection
            let position = self.timers.iter().position(|t| t.id == id).expect("timer");
            let timer = self.timers.remove(position);
            self.fire(timer)?;
        }
        Ok(())
    }

    fn connect(&mut self, name: &str, c: Connect, doubt: Option<String>, span: When) -> Outcome {
        // what the CONNECT sets off is seen when its CONNACK comes
        let arrival = Arrival::At(span.latest);
        let span = When::exactly(span.latest);
        let v5 = c.protocol == Protocol::V5;
        if let Some(old) = self.holder_of(&c.client_id) {
            let statement = if v5 {
                "[MQTT-3.1.4-3]"
            } else {
                "[MQTT-3.1.4-2]"
            };
            if let Some(client) = self.clients.get_mut(&old)
                && client.view == View::Open
            {
                client.view = View::ClosedByServer(span);
            }
            self.close(
                &old,
                Ending::Server(format!(
                    "{name} connects with the same client id: the server closes the existing \
                     connection (takeover) {statement}"
                )),
                span,
                arrival,
            )?;
        }
        self.session_changed(&c.client_id, span)?;
        let resumed = match self.sessions.get(&c.client_id) {
            Some(session) if session.protocol != c.protocol => {
                return unsupported("a session resumed with the other protocol version");
            }
            Some(_) if c.clean_start => {
                let why = if v5 {
                    "Clean Start 1 discards it [MQTT-3.1.2-4]"
                } else {
                    "Clean Session 1 discards it [MQTT-3.1.2-6]"
                };
                self.end_session(&c.client_id, span, arrival, why)?;
                false
            }
            Some(_) => true,
            None => false,
        };
        if resumed {
            self.resume(name, &c.client_id, span)?;
        } else {
            self.sessions.insert(
                c.client_id.clone(),
                Session {
                    protocol: c.protocol,
                    holder: None,
                    expiry: Expiry::WithConnection,
                    subscriptions: Vec::new(),
                    pending_will: None,
                    end_timer: None,
                    queue: Vec::new(),
                    unacknowledged: false,
                    changes: vec![self.touch(span)],
                    reads: Vec::new(),
                },
            );
        }
        let keep_alive = match (v5, self.limits.server_keep_alive) {
            (true, Some(server)) => server,
            _ => c.keep_alive,
        };
        let will = c.will.as_ref().map(|w| Will {
            message: Message {
                topic: w.topic.clone(),
                payload: w.payload.clone(),
                qos: w.qos,
                retain: w.retain,
                properties: v5.then(|| w.properties.clone()),
                publisher: c.client_id.clone(),
                what: format!("{name}'s will ({})", w.topic),
                is_will: true,
            },
            delay: if v5 { w.delay_interval.unwrap_or(0) } else { 0 },
            doubt: doubt.clone(),
        });
        if let Some(will) = &will {
            let stored = if v5 {
                "stored with the session [MQTT-3.1.2-7]"
            } else {
                "stored with the network connection [MQTT-3.1.2-8]"
            };
            let mut line = format!("{}: CONNECT accepted, will {stored}", will.message.what);
            if let Some(doubt) = &doubt {
                line.push_str(&format!("; but {doubt}"));
            }
            self.say(vec![text(line)]);
        }
        let session = self.sessions.get_mut(&c.client_id).expect("session");
        session.holder = Some(name.to_owned());
        session.expiry = if v5 {
            Expiry::v5(c.session_expiry_interval)
        } else if c.clean_start {
            Expiry::WithConnection
        } else {
            Expiry::Never
        };
        if let Some(id) = session.end_timer.take() {
            self.cancel_timer(id);
        }
        let client = self.clients.get_mut(name).expect("client");
        client.view = View::Open;
        client.link = Some(Connection {
            client_id: c.client_id.clone(),
            protocol: c.protocol,
            keep_alive,
            session_expiry: c.session_expiry_interval,
            clean: c.clean_start,
            will,
            quiet: None,
            keep_alive_timer: None,
            doubt,
            maximum_packet_size: c.maximum_packet_size,
            topic_alias_maximum: c.topic_alias_maximum,
        });
        // the messages queued while it was away go out once the session is back
        let queued =
            std::mem::take(&mut self.sessions.get_mut(&c.client_id).expect("session").queue);
        for q in queued {
            self.deliver_queued(name, q, span)?;
        }
        Ok(())
    }

    /// A CONNECT with Clean Start 0 finds its session: the pending will is cancelled.
    fn resume(&mut self, name: &str, client_id: &str, span: When) -> Outcome {
        let session = self.sessions.get_mut(client_id).expect("session");
        if session.unacknowledged {
            return unsupported(
                "redelivery: a session resumes with a QoS 1/2 message its client never \
                 acknowledged [MQTT-4.4.0-1]",
            );
        }
        if let Some((will, timer)) = session.pending_will.take() {
            self.cancel_timer(timer);
            self.say(vec![
                text(format!(
                    "{}: cancelled, {name} reconnects to the session ",
                    will.message.what
                )),
                Piece::At(span.latest),
                text(" before the will delay has passed [MQTT-3.1.3-9]"),
            ]);
        }
        Ok(())
    }

    fn subscribe(&mut self, name: &str, spec: &SubscribeSpec, span: When, step: &Step) -> Outcome {
        let link = self.clients[name].link.as_ref().expect("connected");
        let v5 = link.protocol == Protocol::V5;
        let client_id = link.client_id.clone();
        if spec.subscription_identifier.is_some() && !self.limits.subscription_identifiers {
            return unsupported("capabilities: subscription identifiers on a server without them");
        }
        let granted = granted_codes(step, self.scenario.level);
        self.session_changed(&client_id, span)?;
        for (i, request) in spec.filters.iter().enumerate() {
            let Some(filter) = Filter::parse(&request.filter, v5) else {
                return unsupported(format!(
                    "subscribe: the filter {:?} is not a valid topic filter",
                    request.filter
                ));
            };
            if filter.share.is_some() && !self.limits.shared_subscriptions
                || request.filter.contains(['+', '#']) && !self.limits.wildcard_subscriptions
            {
                return unsupported("capabilities: a subscription the server does not support");
            }
            let qos = match granted.as_ref().and_then(|codes| codes.get(i)) {
                Some(&code) if code >= 0x80 => continue,
                Some(&code) => QoS::from_u8(code).ok_or_else(|| {
                    Unsupported("subscribe: an expected SUBACK code that is not a QoS".into())
                })?,
                None => {
                    if request.qos > self.limits.max_qos {
                        return unsupported(
                            "subscribe: the granted QoS of a request above the server's maximum \
                             is the server's choice (§3.9.3)",
                        );
                    }
                    request.qos
                }
            };
            let subscription = Subscription {
                text: request.filter.clone(),
                filter,
                granted: qos,
                no_local: v5 && request.no_local,
                retain_as_published: v5 && request.retain_as_published,
                identifier: if v5 {
                    spec.subscription_identifier
                } else {
                    None
                },
            };
            let session = self.sessions.get_mut(&client_id).expect("session");
            let existed = session
                .subscriptions
                .iter()
                .any(|s| s.text == request.filter);
            session.subscriptions.retain(|s| s.text != request.filter);
            session.subscriptions.push(subscription.clone());
            self.send_retained(name, request, &subscription, existed, span)?;
        }
        Ok(())
    }

    /// Retained messages for a new subscription: with RETAIN 1 ([MQTT-3.3.1-9], 3.1.1
    /// [MQTT-3.3.1-8]), as Retain Handling says (v5, [MQTT-3.3.1-9..11]), never to a shared
    /// subscription (v5 §4.8.2).
    fn send_retained(
        &mut self,
        name: &str,
        request: &SubscriptionRequest,
        subscription: &Subscription,
        existed: bool,
        span: When,
    ) -> Outcome {
        let v5 = self.clients[name]
            .link
            .as_ref()
            .expect("connected")
            .protocol
            == Protocol::V5;
        if subscription.filter.share.is_some() {
            return Ok(());
        }
        if v5 {
            match request.retain_handling {
                RetainHandling::SendAtSubscribe => {}
                RetainHandling::SendIfNew if !existed => {}
                _ => return Ok(()),
            }
        }
        let topics: Vec<String> = self
            .retained
            .keys()
            .filter(|t| subscription.filter.matches(t))
            .cloned()
            .collect();
        for t in self.retained_changes.keys().cloned().collect::<Vec<_>>() {
            if subscription.filter.matches(&t) {
                self.retained_touched(&t, span, false)?;
            }
        }
        for topic_name in topics {
            let r = self.retained[&topic_name].clone();
            let at = span.latest;
            if let Some(waited) = self.expired(&r.message, r.published, span, "retained")? {
                let qos = r.message.qos.min(subscription.granted);
                let level = r.level;
                let because = format!(
                    "{} is the retained message of {topic_name}: sent with RETAIN 1 when {name} \
                     subscribes to {} [MQTT-3.3.1-9]{}",
                    r.message.what,
                    subscription.text,
                    if level == Level::Should {
                        " (a 3.1.1 server should store a retained QoS 0 message and may discard \
                         it, [MQTT-3.3.1-7])"
                    } else {
                        ""
                    }
                );
                self.deliver(
                    name,
                    &r.message,
                    qos,
                    true,
                    subscription.identifier.into_iter().collect(),
                    Some(waited),
                    Arrival::At(at),
                    level,
                    Range::exactly(1),
                    because,
                )?;
            }
        }
        Ok(())
    }

    /// Whether a message with a Message Expiry Interval is still alive when it would be sent
    /// in `span`: `Some(time it waited)` if so, `None` if it expired ([MQTT-3.3.2-5]).
    fn expired(
        &self,
        message: &Message,
        published: When,
        span: When,
        what: &str,
    ) -> Outcome<Option<Bounds>> {
        let waited = self.waited(published, span);
        let Some(expiry) = message
            .properties
            .as_ref()
            .and_then(|p| p.message_expiry_interval)
        else {
            return Ok(Some(waited));
        };
        let dies = published.plus(Duration::from_secs(expiry.into()));
        match self.timeline.order(span, dies) {
            Order::Before => Ok(Some(waited)),
            Order::After => Ok(None),
            _ => unsupported(format!(
                "race: a {what} message's Message Expiry ends within 0.5 s of its delivery"
            )),
        }
    }

    /// How long a message published in `published` has waited in the server when it reaches
    /// a client sent it in `sent`, counting the trip to the client.
    fn waited(&self, published: When, sent: When) -> Bounds {
        let least = self.timeline.between(published.latest, sent.earliest).min;
        let most = self.timeline.between(published.earliest, sent.latest).max;
        Bounds {
            min: least.max(0),
            max: most.max(0) + i64::try_from(ROUND_TRIP.as_millis()).unwrap_or(0),
        }
    }

    // ---- ends of connections and sessions ----

    fn close(&mut self, name: &str, ending: Ending, when: When, arrival: Arrival) -> Outcome {
        let Some(link) = self.clients.get_mut(name).and_then(|c| c.link.take()) else {
            return Ok(());
        };
        if let Some(id) = link.keep_alive_timer {
            self.cancel_timer(id);
        }
        let client_id = link.client_id.clone();
        self.session_changed(&client_id, when)?;
        let v5 = link.protocol == Protocol::V5;
        let connect_expiry = link.session_expiry.unwrap_or(0);
        // which rule ends the connection, whether it deletes the will, the session expiry after
        let (how, discard, expiry, unclear) = match ending {
            Ending::Disconnect { .. } if !v5 => (
                "DISCONNECT deletes the will [MQTT-3.14.4-3]".to_owned(),
                true,
                None,
                None,
            ),
            Ending::Disconnect { code, .. } if !client_disconnect_code(code) => (
                format!(
                    "DISCONNECT 0x{code:02X} is not a client reason code of Table 3-10, a \
                     malformed packet [MQTT-3.14.2-1]: the server closes without a valid \
                     DISCONNECT 0x00"
                ),
                false,
                link.session_expiry,
                None,
            ),
            Ending::Disconnect {
                session_expiry: Some(requested),
                ..
            } if requested != 0 && connect_expiry == 0 => (
                format!(
                    "a DISCONNECT setting session expiry {requested} s after CONNECT had none is \
                     a protocol error, not a valid DISCONNECT ({{W5-DISC-SEI-PE}}, {{A11}})"
                ),
                false,
                link.session_expiry,
                None,
            ),
            Ending::Disconnect {
                code,
                session_expiry,
            } => {
                let expiry = session_expiry.or(link.session_expiry);
                let changed = match session_expiry {
                    Some(s) => {
                        format!(", session expiry now {s} s ({{W5-DISC-SEI-0}}/{{W5-DISC-SEI-UP}})")
                    }
                    None => String::new(),
                };
                if code == 0 {
                    (
                        format!("DISCONNECT 0x00 deletes the will [MQTT-3.14.4-3]{changed}"),
                        true,
                        expiry,
                        None,
                    )
                } else {
                    let rule = if code == 0x04 {
                        "{W5-DISC-04}"
                    } else {
                        "[MQTT-3.1.2-8/d]"
                    };
                    (
                        format!(
                            "DISCONNECT 0x{code:02X} is not 0x00, so the will stays to be \
                             published {rule}{changed}"
                        ),
                        false,
                        expiry,
                        None,
                    )
                }
            }
            Ending::Server(why) => (
                format!("{why} without receiving DISCONNECT 0x00 [MQTT-3.1.2-8]"),
                false,
                link.session_expiry,
                None,
            ),
            Ending::Lost(why) => (
                format!("{why} [MQTT-3.1.2-8]"),
                false,
                link.session_expiry,
                None,
            ),
            Ending::Unclear(why) => (why.clone(), false, None, Some(why)),
        };
        let expiry = if v5 {
            Expiry::v5(expiry)
        } else if link.clean {
            Expiry::WithConnection
        } else {
            Expiry::Never
        };
        if let Some(session) = self.sessions.get_mut(&client_id) {
            session.holder = None;
            session.expiry = expiry;
        }
        if let Some(mut will) = link.will {
            if let Some(why) = unclear {
                will.doubt = Some(why);
            }
            let what = will.message.what.clone();
            if discard {
                self.say(vec![text(format!("{what}: discarded: {how}"))]);
            } else if !v5 || will.delay == 0 {
                let rule = if v5 {
                    "no will delay"
                } else {
                    "3.1.1 has no will delay"
                };
                self.say(vec![
                    text(format!("{what}: published ")),
                    arrival.piece(),
                    text(format!(": {how}; {rule}")),
                ]);
                self.publish_will(will, when, arrival)?;
            } else {
                let delay = will.delay;
                match expiry {
                    Expiry::WithConnection => {
                        self.say(vec![
                            text(format!("{what}: published ")),
                            arrival.piece(),
                            text(format!(
                                ": {how}; the session ends with the connection \
                                 ({{W5-SEI-ABSENT}}), before the will delay of {delay} s \
                                 [MQTT-3.1.2-8/g] ({{A2}})"
                            )),
                        ]);
                        self.publish_will(will, when, arrival)?;
                    }
                    Expiry::After(n) if n <= delay => {
                        self.say(vec![
                            text(format!("{what}: due when the session ends ")),
                            Arrival::of(when.plus(secs(n))).piece(),
                            text(format!(
                                ": {how}; session expiry {n} s ≤ will delay {delay} s \
                                 [MQTT-3.1.2-8/g] ({{W5-WDI-MIN}})"
                            )),
                        ]);
                        let session = self.sessions.get_mut(&client_id).expect("session");
                        session.pending_will = Some((will, 0));
                    }
                    _ => {
                        let due = when.plus(secs(delay));
                        self.say(vec![
                            text(format!("{what}: due ")),
                            Arrival::of(due).piece(),
                            text(format!(
                                ": {how}; will delay {delay} s < {} ({{W5-WDI-MIN}})",
                                expiry.describe()
                            )),
                        ]);
                        let id = self.add_timer(due, TimerKind::WillDue(client_id.clone()));
                        let session = self.sessions.get_mut(&client_id).expect("session");
                        session.pending_will = Some((will, id));
                    }
                }
            }
        }
        match expiry {
            Expiry::WithConnection => {
                let why = if v5 {
                    "its session expiry is 0 or absent: it ends with the connection \
                     ({W5-SEI-ABSENT})"
                } else {
                    "Clean Session 1: it ends with the connection [MQTT-3.1.2-6]"
                };
                self.end_session(&client_id, when, arrival, why)
            }
            Expiry::After(n) => {
                let id =
                    self.add_timer(when.plus(secs(n)), TimerKind::SessionEnd(client_id.clone()));
                if let Some(session) = self.sessions.get_mut(&client_id) {
                    session.end_timer = Some(id);
                }
                Ok(())
            }
            Expiry::Never => Ok(()),
        }
    }

    /// The session ends: a will still waiting for its delay is published now
    /// ([MQTT-3.1.2-8]: "or the Session ends, whichever happens first").
    fn end_session(&mut self, client_id: &str, when: When, arrival: Arrival, why: &str) -> Outcome {
        self.session_changed(client_id, when)?;
        let Some(session) = self.sessions.remove(client_id) else {
            return Ok(());
        };
        if let Some(id) = session.end_timer {
            self.cancel_timer(id);
        }
        if let Some((will, timer)) = session.pending_will {
            self.cancel_timer(timer);
            if session
                .subscriptions
                .iter()
                .any(|s| s.filter.matches(&will.message.topic))
            {
                return unsupported(
                    "a will published as its own session ends, to a subscription of that session",
                );
            }
            self.say(vec![
                text(format!("{}: published ", will.message.what)),
                arrival.piece(),
                text(format!(
                    ": session {client_id} ends ({why}) before the will delay of {} s has \
                     passed [MQTT-3.1.2-8]",
                    will.delay
                )),
            ]);
            self.publish_will(will, when, arrival)?;
        }
        Ok(())
    }

    fn publish_will(&mut self, will: Will, when: When, arrival: Arrival) -> Outcome {
        let doubt = will.doubt.clone();
        self.publish(will.message, when, arrival, doubt)
    }

    // ---- publication and delivery ----

    /// An Application Message is published: the retained message of its topic is updated and
    /// every matching subscription gets it.
    fn publish(
        &mut self,
        message: Message,
        when: When,
        arrival: Arrival,
        doubt: Option<String>,
    ) -> Outcome {
        let doubt = doubt.or_else(|| self.doubt.clone());
        if message.retain {
            self.retained_touched(&message.topic, when, true)?;
            let v5 = message.properties.is_some();
            if message.payload.is_empty() {
                // [MQTT-3.3.1-6] / 3.1.1 [MQTT-3.3.1-10]: removes, and is not stored
                self.retained.remove(&message.topic);
            } else {
                let level = if !v5 && message.qos == QoS::AtMostOnce {
                    Level::Should
                } else {
                    Level::Must
                };
                self.retained.insert(
                    message.topic.clone(),
                    Retained {
                        message: message.clone(),
                        published: when,
                        level: if doubt.is_some() { Level::May } else { level },
                    },
                );
            }
        }
        let mut plain: Vec<(String, Vec<Subscription>)> = Vec::new();
        let mut groups: BTreeMap<(String, String), Vec<(String, Subscription)>> = BTreeMap::new();
        for (client_id, session) in &self.sessions {
            let matching: Vec<&Subscription> = session
                .subscriptions
                .iter()
                .filter(|s| s.filter.matches(&message.topic))
                .collect();
            let (shared, own): (Vec<&Subscription>, Vec<&Subscription>) =
                matching.into_iter().partition(|s| s.filter.share.is_some());
            if !own.is_empty() && !shared.is_empty() {
                return unsupported(
                    "overlapping subscriptions: a session with shared and plain subscriptions \
                     matching one message",
                );
            }
            for s in shared {
                let group = s.filter.share.clone().unwrap_or_default();
                groups
                    .entry((group, s.filter.pattern.clone()))
                    .or_default()
                    .push((client_id.clone(), s.clone()));
            }
            if !own.is_empty() {
                plain.push((client_id.clone(), own.into_iter().cloned().collect()));
            }
        }
        for (client_id, subscriptions) in plain {
            for (subscription, count, note) in copies(&message, &subscriptions)? {
                let share = note.map(|n| (n, count));
                self.route(
                    &client_id,
                    &subscription,
                    &message,
                    when,
                    arrival,
                    doubt.clone(),
                    share,
                )?;
            }
        }
        for ((group, _), members) in groups {
            if members
                .iter()
                .any(|(id, _)| self.sessions[id].holder.is_none())
            {
                return unsupported(
                    "shared subscriptions: a group with an offline member (the server chooses \
                     who gets the message)",
                );
            }
            let share = (members.len() > 1).then(|| {
                (
                    format!(
                        "one of the {} sessions of shared subscription group {group} gets it \
                         [MQTT-4.8.2-3]",
                        members.len()
                    ),
                    Range { min: 0, max: 1 },
                )
            });
            for (client_id, subscription) in members {
                self.route(
                    &client_id,
                    &subscription,
                    &message,
                    when,
                    arrival,
                    doubt.clone(),
                    share.clone(),
                )?;
            }
        }
        Ok(())
    }

    /// One matching subscription: delivered now if its session is connected, queued if not.
    #[allow(clippy::too_many_arguments)]
    fn route(
        &mut self,
        client_id: &str,
        subscription: &Subscription,
        message: &Message,
        when: When,
        arrival: Arrival,
        doubt: Option<String>,
        share: Option<(String, Range)>,
    ) -> Outcome {
        self.session_read(client_id, when)?;
        let mut level = if doubt.is_some() {
            Level::May
        } else {
            Level::Must
        };
        let mut notes = Vec::new();
        if let Some(doubt) = &doubt {
            notes.push(doubt.clone());
        }
        if subscription.no_local && message.publisher == client_id {
            if !message.is_will {
                return Ok(()); // [MQTT-3.8.3-3]
            }
            level = Level::May;
            notes.push(
                "No Local: whether the will counts as published by the same client id is not \
                 said ({A9})"
                    .into(),
            );
        }
        let qos = message.qos.min(subscription.granted);
        let session = &self.sessions[client_id];
        let v5_session = session.protocol == Protocol::V5;
        let retain = v5_session && subscription.retain_as_published && message.retain;
        let identifiers: Vec<u32> = subscription.identifier.into_iter().collect();
        let mut because = format!(
            "qos {} = min({} {}, granted {}) [MQTT-3.8.4-8], retain {} ({})",
            qos.as_u8(),
            if message.is_will { "will" } else { "published" },
            message.qos.as_u8(),
            subscription.granted.as_u8(),
            u8::from(retain),
            match (v5_session, subscription.retain_as_published) {
                (true, true) => "Retain As Published [MQTT-3.3.1-13]",
                (true, false) => "no Retain As Published [MQTT-3.3.1-12]",
                (false, _) => "3.1.1 live subscription [MQTT-3.3.1-9]",
            }
        );
        for note in &notes {
            because.push_str("; ");
            because.push_str(note);
        }
        let count = match share {
            Some((why, count)) => {
                because.push_str("; ");
                because.push_str(&why);
                count
            }
            None => Range::exactly(1),
        };
        match session.holder.clone() {
            Some(holder) => {
                let link = self.clients[&holder]
                    .link
                    .as_ref()
                    .expect("holder is connected");
                if qos != QoS::AtMostOnce && link.quiet.is_some() {
                    self.sessions
                        .get_mut(client_id)
                        .expect("session")
                        .unacknowledged = true;
                }
                if let Some(Quiet::Vanished(_)) = link.quiet {
                    self.say(vec![text(format!(
                        "{} → {holder}: lost, {holder} has vanished",
                        message.what
                    ))]);
                    return Ok(());
                }
                let waited = self.waited(when, when);
                self.deliver(
                    &holder,
                    message,
                    qos,
                    retain,
                    identifiers,
                    Some(waited),
                    arrival,
                    level,
                    count,
                    because,
                )
            }
            None => {
                let (level, rule) = if qos == QoS::AtMostOnce {
                    (
                        Level::May,
                        "a QoS 0 message may be queued for an offline session ({A16})",
                    )
                } else if v5_session {
                    (level, "queued for the offline session [MQTT-4.5.0-1]")
                } else {
                    (level, "queued for the offline session [MQTT-3.1.2-5]")
                };
                let session = self.sessions.get_mut(client_id).expect("session");
                session.queue.push(Queued {
                    message: message.clone(),
                    qos,
                    count,
                    retain,
                    identifiers,
                    published: when,
                    level,
                    because: format!("{rule}; {because}"),
                });
                Ok(())
            }
        }
    }

    /// A queued message goes out when its session resumes, unless it expired
    /// ([MQTT-3.3.2-5]).
    fn deliver_queued(&mut self, name: &str, q: Queued, span: When) -> Outcome {
        match self.expired(&q.message, q.published, span, "queued")? {
            None => {
                self.say(vec![text(format!(
                    "{} → {name}: discarded, its Message Expiry passed while queued \
                     [MQTT-3.3.2-5]",
                    q.message.what
                ))]);
                Ok(())
            }
            Some(waited) => self.deliver(
                name,
                &q.message,
                q.qos,
                q.retain,
                q.identifiers,
                Some(waited),
                Arrival::After(span.latest),
                q.level,
                q.count,
                q.because,
            ),
        }
    }

    /// Records one predicted message for a connected client.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        name: &str,
        message: &Message,
        qos: QoS,
        retain: bool,
        identifiers: Vec<u32>,
        waited: Option<Bounds>,
        arrival: Arrival,
        level: Level,
        count: Range,
        because: String,
    ) -> Outcome {
        let link = self.clients[name].link.as_ref().expect("connected");
        let v5 = link.protocol == Protocol::V5;
        if v5 && link.topic_alias_maximum.is_some_and(|m| m > 0) {
            return unsupported("topic alias: a subscriber that allows the server Topic Aliases");
        }
        if let Some(limit) = link.maximum_packet_size.filter(|_| v5) {
            let properties = message.properties.as_ref();
            let size = publish_size(
                &message.topic,
                &message.payload,
                qos,
                properties,
                &identifiers,
            );
            if size.abs_diff(u64::from(limit)) <= 16 {
                return unsupported(
                    "packet size: a message within 16 bytes of a subscriber's Maximum Packet Size",
                );
            }
            if size > u64::from(limit) {
                self.say(vec![text(format!(
                    "{} → {name}: not sent, {size} bytes exceed its Maximum Packet Size {limit} \
                     [MQTT-3.1.2-24]",
                    message.what
                ))]);
                return Ok(());
            }
        }
        let properties = match (&message.properties, v5) {
            (Some(p), true) => forwarded(p, waited, &identifiers),
            // a 3.1.1 subscriber sees no properties; across versions none are asserted ({A17})
            (None, true) => PropertiesMatcher {
                subscription_identifiers: Some(identifiers),
                topic_alias: Some(PropertyCheck::Absent),
                ..PropertiesMatcher::default()
            },
            (_, false) => PropertiesMatcher::default(),
        };
        let strength = match (level, count.min) {
            (Level::Must, 0) => "may arrive, at most once,",
            (Level::Must, _) => "must arrive once",
            (Level::Should, _) => "should arrive once",
            (Level::May, _) => "may arrive",
        };
        self.say(vec![
            text(format!("{} → {name}: {strength} ", message.what)),
            arrival.piece(),
            text(format!(": {because}")),
        ]);
        self.deliveries.push(Delivery {
            client: name.to_owned(),
            topic: message.topic.clone(),
            payload: message.payload.clone(),
            qos,
            retain,
            properties,
            arrival,
            level,
            count,
        });
        Ok(())
    }

    // ---- the end of the run ----

    fn finish(&mut self) -> Outcome {
        let last = (self.timeline.step_count().checked_sub(1))
            .and_then(|i| self.timeline.end(i))
            .unwrap_or(Instant::START);
        self.end = match self.scenario.duration {
            None => last,
            Some(d) => {
                let limit = Instant::START.plus(d);
                match self
                    .timeline
                    .order(When::exactly(last), When::exactly(limit))
                {
                    Order::Before | Order::Same => limit,
                    Order::After => last,
                    Order::Close => {
                        return unsupported(
                            "race: the scenario's `duration:` ends within 0.5 s of its last step",
                        );
                    }
                }
            }
        };
        let end = When::exactly(self.end);
        while let Some(id) = self.next_timer_by(i64::MAX) {
            let timer = self.take_timer(id);
            if self.timeline.step_then_timer(end, timer.at) {
                let what = self.describe_timer(&timer);
                self.say(vec![
                    text(format!("{what} comes after the run ends (")),
                    Arrival::of(timer.at).piece(),
                    text("): nothing from it is observed"),
                ]);
                continue;
            }
            if !self.timeline.timer_then_step(timer.at, end) {
                self.doubt = Some("the run ends within 0.5 s of it, so it may not be seen".into());
            }
            self.fire(timer)?;
            self.doubt = None;
        }
        // a quiet connection without keep alive stays open: no rule makes the server close it
        let open: Vec<(String, Protocol)> = self
            .clients
            .iter()
            .filter_map(|(name, c)| {
                let link = c.link.as_ref()?;
                (link.quiet.is_some() && link.keep_alive == 0 && link.will.is_some())
                    .then(|| (name.clone(), link.protocol))
            })
            .collect();
        for (name, protocol) in open {
            self.say(vec![text(format!(
                "{name}'s will: not published: with keep alive 0 the server does not close the \
                 quiet connection ({}; a server may still drop an inactive client, which this \
                 oracle does not expect)",
                if protocol == Protocol::V5 {
                    "{W5-KA0}"
                } else {
                    "{W3-KA0}"
                }
            ))]);
        }
        // what would arrive as the run ends may not be seen
        for d in &mut self.deliveries {
            let latest = d.arrival.latest();
            if self.timeline.order(latest, end) != Order::Before && d.level != Level::May {
                d.level = Level::May;
                self.reasoning.push(vec![
                    text(format!("{}'s message on {}: ", d.client, d.topic)),
                    d.arrival.piece(),
                    text(" is within 0.5 s of the end of the run: may be seen or not"),
                ]);
            }
        }
        Ok(())
    }
}

/// The copies a session gets of a message matching several of its subscriptions: one at the
/// highest QoS of them, and the server may send one more per further subscription, each at
/// that subscription's QoS ([MQTT-3.3.4-2], 3.1.1 [MQTT-3.3.5-1]). One subscription: one copy.
#[allow(clippy::type_complexity)]
fn copies(
    message: &Message,
    subscriptions: &[Subscription],
) -> Outcome<Vec<(Subscription, Range, Option<String>)>> {
    if let [only] = subscriptions {
        return Ok(vec![(only.clone(), Range::exactly(1), None)]);
    }
    let first = &subscriptions[0];
    if subscriptions.iter().any(|s| {
        s.identifier.is_some() || s.no_local || s.retain_as_published != first.retain_as_published
    }) {
        return unsupported(
            "overlapping subscriptions with subscription identifiers, No Local or differing \
             Retain As Published (which copy carries what is the server's choice, \
             [MQTT-3.3.4-2])",
        );
    }
    let qos = |s: &Subscription| message.qos.min(s.granted);
    let highest = subscriptions.iter().map(qos).max().unwrap_or_default();
    let mut out = Vec::new();
    for level in [QoS::ExactlyOnce, QoS::AtLeastOnce, QoS::AtMostOnce] {
        let same: Vec<&Subscription> = subscriptions.iter().filter(|s| qos(s) == level).collect();
        let Some(&representative) = same.first() else {
            continue;
        };
        let n = u32::try_from(same.len()).unwrap_or(u32::MAX);
        let count = Range {
            min: u32::from(level == highest),
            max: n,
        };
        let note = format!(
            "{} overlapping subscriptions: one copy at the highest QoS, and the server may send \
             one more per further subscription [MQTT-3.3.4-2]",
            subscriptions.len()
        );
        out.push((representative.clone(), count, Some(note)));
    }
    Ok(out)
}

fn describe_step(index: usize, step: &Step) -> String {
    let what = match &step.kind {
        StepKind::Client { client, action } => {
            let action = match action {
                Action::Connect(_) => "connect",
                Action::Subscribe(_) => "subscribe",
                Action::Unsubscribe(_) => "unsubscribe",
                Action::Publish(_) => "publish",
                Action::Ping => "ping",
                Action::Disconnect(_) => "disconnect",
                Action::Drop(_) => "drop",
                Action::Silence => "silence",
                Action::Vanish => "vanish",
                Action::Ack => "ack",
                Action::Send(_) => "send",
            };
            format!("{client}: {action}")
        }
        StepKind::Wait(_) => "wait".into(),
        StepKind::Mark => "mark".into(),
        StepKind::BrokerRestart => "broker restart".into(),
        StepKind::Node(action) => format!("node {} {}", action.verb(), action.node()),
        StepKind::Net(_) => "net".into(),
    };
    format!("step {} ({what}, line {})", index + 1, step.location.line)
}

/// Whether a step waits until the server closes the connection (or sends DISCONNECT).
fn waits_for_close(expect: &[StepExpectation]) -> bool {
    expect
        .iter()
        .any(|e| e.closed == Some(true) || e.disconnect.is_some())
}

fn secs(n: u32) -> Duration {
    Duration::from_secs(n.into())
}

/// 1.5 × the keep alive ([MQTT-3.1.2-22], 3.1.1 [MQTT-3.1.2-24]).
fn keep_alive_limit(keep_alive: u16) -> Duration {
    Duration::from_millis(u64::from(keep_alive) * 1500)
}

/// The SUBACK codes a step expects at `must` level, which pin the server's choice of granted
/// QoS (§3.9.3: it may grant less than requested).
fn granted_codes(step: &Step, default: Level) -> Option<Vec<u8>> {
    step.expect
        .iter()
        .find(|e| e.granted.is_some() && e.level.unwrap_or(default) == Level::Must)
        .and_then(|e| e.granted.clone())
}

/// The properties a subscriber must see on a forwarded v5 message: all of them unaltered
/// ([MQTT-3.3.2-4], [MQTT-3.3.2-15..18], [MQTT-3.3.2-20], [MQTT-3.1.3-10]), the Message
/// Expiry reduced by the time waited, in whole seconds ([MQTT-3.3.2-6], {A12}), the
/// subscription's identifier ([MQTT-3.3.4-3]) and no Topic Alias ([MQTT-3.1.2-27]).
fn forwarded(
    p: &MessageProperties,
    waited: Option<Bounds>,
    identifiers: &[u32],
) -> PropertiesMatcher {
    let waited = waited.unwrap_or(Bounds { min: 0, max: 0 });
    let message_expiry = match p.message_expiry_interval {
        None => PropertyCheck::Absent,
        Some(mei) => {
            let most = (waited.max.max(0) + 999) / 1000;
            let least = waited.min.max(0) / 1000;
            let low = i64::from(mei) - most;
            let high = i64::from(mei) - least;
            let clamp = |x: i64| u32::try_from(x.max(0)).unwrap_or(0);
            PropertyCheck::Is(Range {
                min: clamp(low),
                max: clamp(high),
            })
        }
    };
    let string = |s: &Option<String>| {
        Some(match s {
            Some(v) => PropertyCheck::Is(v.clone()),
            None => PropertyCheck::Absent,
        })
    };
    PropertiesMatcher {
        payload_format: match p.payload_format_indicator {
            // 0 is "equivalent to not sending" it (§3.3.2.3.2): either form is right
            Some(0) => None,
            Some(v) => Some(PropertyCheck::Is(v)),
            None => Some(PropertyCheck::Absent),
        },
        message_expiry: Some(message_expiry),
        content_type: string(&p.content_type),
        response_topic: string(&p.response_topic),
        correlation_data: Some(match &p.correlation_data {
            Some(v) => PropertyCheck::Is(v.clone()),
            None => PropertyCheck::Absent,
        }),
        user_properties: Some(p.user_properties.clone()),
        subscription_identifiers: Some(identifiers.to_vec()),
        topic_alias: Some(PropertyCheck::Absent),
    }
}

/// §1.5.5: bytes of a Variable Byte Integer.
fn vbi_len(n: u64) -> u64 {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn properties_len(p: &MessageProperties) -> u64 {
    let string = |s: &Option<String>| s.as_ref().map_or(0, |s| 3 + s.len() as u64);
    u64::from(p.payload_format_indicator.is_some()) * 2
        + u64::from(p.message_expiry_interval.is_some()) * 5
        + string(&p.content_type)
        + string(&p.response_topic)
        + p.correlation_data
            .as_ref()
            .map_or(0, |d| 3 + d.len() as u64)
        + p.user_properties
            .iter()
            .map(|(k, v)| 5 + k.len() as u64 + v.len() as u64)
            .sum::<u64>()
}

/// The size of a PUBLISH packet on the wire (§3.3): the size limits count whole packets.
fn publish_size(
    topic: &str,
    payload: &[u8],
    qos: QoS,
    properties: Option<&MessageProperties>,
    identifiers: &[u32],
) -> u64 {
    let props = properties.map(|p| {
        let ids: u64 = identifiers.iter().map(|&i| 1 + vbi_len(i.into())).sum();
        let len = properties_len(p) + ids;
        vbi_len(len) + len
    });
    let remaining = 2
        + topic.len() as u64
        + if qos == QoS::AtMostOnce { 0 } else { 2 }
        + props.unwrap_or(0)
        + payload.len() as u64;
    1 + vbi_len(remaining) + remaining
}

/// The size of a CONNECT packet on the wire (§3.1), for the server's size limit.
fn connect_size(c: &Connect) -> u64 {
    let v5 = c.protocol == Protocol::V5;
    let string = |s: &str| 2 + s.len() as u64;
    let optional = |present: bool, size: u64| if present { size } else { 0 };
    // protocol name, level, flags, keep alive
    let mut remaining = 10 + string(&c.client_id);
    if v5 {
        let properties = optional(c.session_expiry_interval.is_some(), 5)
            + optional(c.receive_maximum.is_some(), 3)
            + optional(c.maximum_packet_size.is_some(), 5)
            + optional(c.topic_alias_maximum.is_some(), 3)
            + optional(c.request_response_information.is_some(), 2)
            + optional(c.request_problem_information.is_some(), 2)
            + c.authentication_method
                .as_deref()
                .map_or(0, |m| 1 + string(m))
            + c.authentication_data
                .as_ref()
                .map_or(0, |d| 3 + d.len() as u64)
            + c.user_properties
                .iter()
                .map(|(k, v)| 1 + string(k) + string(v))
                .sum::<u64>();
        remaining += vbi_len(properties) + properties;
    }
    if let Some(w) = &c.will {
        remaining += string(&w.topic) + 2 + w.payload.len() as u64;
        if v5 {
            let properties =
                properties_len(&w.properties) + optional(w.delay_interval.is_some(), 5);
            remaining += vbi_len(properties) + properties;
        }
    }
    remaining += c.username.as_deref().map_or(0, string);
    remaining += c.password.as_ref().map_or(0, |p| 2 + p.len() as u64);
    1 + vbi_len(remaining) + remaining
}
