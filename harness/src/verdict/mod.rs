//! Verdicts: scenario expectations evaluated against what happened.
//!
//! Step expectations are checked against the [`Outcome`] of their step; final expectations
//! against the whole [`Transcript`], never by sleeping and polling. Each expectation becomes
//! one [`Check`]; a failed `must` check fails the scenario, a failed `should` check warns, a
//! `may` check only records what the broker did.

use std::collections::BTreeMap;
use std::time::Duration;

use lastwill_broker::codec::{
    ConnAck, ConnAckCode, Connect, MessageProperties, Packet, Protocol, Publish, ReasonCode,
};

use crate::client::Outcome;
use crate::raw_connect;
use crate::scenario::{
    Action, ClientExpectation, ConnAckExpectation, EndState, Level, Location, MessageMatcher,
    PropertiesMatcher, PropertyCheck, Receives, Scenario, Step, StepExpectation, StepKind, TimeRef,
    Window,
};
use crate::transcript::{EventKind, Fault, Transcript, code_name, quoted, seconds};
use describe::Shown;
pub use timeline::{Arrival, ExpectedWindow, Timeline, timeline};

mod describe;
mod timeline;

/// How far a time window is widened: a message may come `early` before its window opens
/// and `late` after it closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    pub early: Duration,
    pub late: Duration,
}

impl Tolerance {
    /// The simulator's: enough for simulated link latency, tight enough to tell 0 s from 1 s.
    pub const SIMULATOR: Tolerance = Tolerance {
        early: Duration::from_millis(100),
        late: Duration::from_millis(500),
    };

    /// How far a remaining Message Expiry Interval may stray from the scenario's range, in
    /// whole seconds. The broker counts it down from its own publication of the message
    /// ([MQTT-3.3.2-6]), so it moves with the same lateness the time windows allow: a broker
    /// that notices a dropped connection late publishes its will late, and the will then waits
    /// less before its subscriber returns. Whole seconds of `late` only, so the simulator's
    /// sub-second tolerance keeps the range exact.
    pub fn expiry_slack(&self) -> u32 {
        u32::try_from(self.late.as_secs()).unwrap_or(u32::MAX)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub level: Level,
    pub passed: bool,
    /// What was expected, in words.
    pub expected: String,
    /// What happened, when it differs.
    pub observed: String,
    pub location: Location,
    pub scope: Scope,
}

/// What a check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One step's outcome (its `expect:`, or whether it could be carried out).
    Step,
    /// The whole run: the final `expect:` and the rules every exchange keeps.
    Run,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn of(checks: &[Check]) -> Verdict {
        checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| match c.level {
                Level::Must => Verdict::Fail,
                Level::Should => Verdict::Warn,
                Level::May => Verdict::Pass,
            })
            .max()
            .unwrap_or(Verdict::Pass)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

impl Check {
    /// Whether the check records a choice the spec leaves to the broker: a `may` check about
    /// the whole run, or one that did not hold (a `may` step check that held is only set-up
    /// going as planned).
    pub fn is_choice(&self) -> bool {
        self.level == Level::May && (self.scope == Scope::Run || !self.passed)
    }

    /// What the broker chose, for a `may` check: what was expected when it held, what
    /// happened instead when it did not (`closed without DISCONNECT`). `None` for `must` and
    /// `should` checks.
    pub fn chose(&self) -> Option<&str> {
        let chosen = if self.passed {
            &self.expected
        } else {
            &self.observed
        };
        (self.level == Level::May).then_some(chosen.as_str())
    }

    /// What a `may` check recorded, in one line: the expectation when it held, what happened
    /// instead when it did not (`line 19: CONNACK 0x00 success, not reason 0x95
    /// packet-too-large`). `None` for `must` and `should` checks.
    pub fn recorded(&self) -> Option<String> {
        let line = self.location.line;
        (self.level == Level::May).then(|| match self.passed {
            true => format!("line {line}: {}", self.expected),
            false => format!("line {line}: {}, not {}", self.observed, self.expected),
        })
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match (self.passed, self.level) {
            (true, _) => "ok",
            (false, Level::Must) => "FAILED",
            (false, Level::Should) => "WARNING",
            (false, Level::May) => "recorded",
        };
        write!(
            f,
            "line {}: {status}: {}",
            self.location.line, self.expected
        )?;
        if !self.passed {
            write!(f, "\n    observed: {}", self.observed)?;
        }
        Ok(())
    }
}

/// Instants named by `mark:`, and the start of the run.
pub type Marks = BTreeMap<String, Duration>;

pub fn resolve(time: &TimeRef, marks: &Marks) -> Option<Duration> {
    let base = match &time.mark {
        None => Duration::ZERO,
        Some(mark) => *marks.get(mark)?,
    };
    Some(base + time.offset)
}

/// Checks one step's inline expectations against its outcome.
pub fn step_checks(step: &Step, outcome: &Outcome, default_level: Level) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(error) = &outcome.error {
        checks.push(Check {
            level: default_level,
            passed: false,
            expected: "the step can be carried out".into(),
            observed: error.to_string(),
            location: step.location,
            scope: Scope::Step,
        });
    }
    for expectation in &step.expect {
        let level = expectation.level.unwrap_or(default_level);
        let mut push = |expected: String, observed: Option<String>| {
            checks.push(Check {
                level,
                passed: observed.is_none(),
                expected,
                observed: observed.unwrap_or_default(),
                location: step.location,
                scope: Scope::Step,
            })
        };
        let protocol = connect_protocol(step, outcome);
        check_step(expectation, connect_of(step), protocol, outcome, &mut push);
    }
    checks
}

/// The structured CONNECT a step sends, if it sends one.
fn connect_of(step: &Step) -> Option<&Connect> {
    match &step.kind {
        StepKind::Client {
            action: Action::Connect(connect),
            ..
        } => Some(connect),
        _ => None,
    }
}

/// The protocol of the CONNECT a step sent (structured, or raw bytes by their Protocol
/// Level), or else of the CONNACK it got: a `reason:` on it is a code of that protocol's
/// CONNACK table.
fn connect_protocol(step: &Step, outcome: &Outcome) -> Option<Protocol> {
    let sent = match &step.kind {
        StepKind::Client {
            action: Action::Connect(connect),
            ..
        } => Some(connect.protocol),
        StepKind::Client {
            action: Action::Send(bytes),
            ..
        } => raw_connect::protocol(bytes),
        _ => None,
    };
    sent.or_else(|| {
        outcome.connack.as_ref().map(|connack| match connack.code {
            ConnAckCode::V5(_) => Protocol::V5,
            ConnAckCode::V311(_) => Protocol::V311,
        })
    })
}

fn check_step(
    e: &StepExpectation,
    connect: Option<&Connect>,
    connect_protocol: Option<Protocol>,
    outcome: &Outcome,
    push: &mut impl FnMut(String, Option<String>),
) {
    let connack_code = outcome.connack.as_ref().map(|c| u8::from(c.code));
    let shown_connack = || match &outcome.connack {
        Some(c) => format!("CONNACK {}", c.code),
        None if outcome.closed => "closed without CONNACK".into(),
        None => "no CONNACK".into(),
    };
    if let Some(code) = e.reason {
        let got = connack_code.or(outcome.publish_ack);
        let ok = got == Some(code);
        // a 3.1.1 return code is named from its own table (4 is bad-user-name-or-password
        // there, not v5's disconnect-with-will); acks are v5 only
        let expected = match connect_protocol {
            Some(protocol) => ConnAckCode::read(protocol, code).to_string(),
            None => code_name(code),
        };
        push(
            format!("reason {expected}"),
            (!ok).then(|| match outcome.publish_ack {
                Some(ack) if outcome.connack.is_none() => format!("ack {}", code_name(ack)),
                _ => shown_connack(),
            }),
        );
    }
    if let Some(refused) = e.refused {
        let was_refused = match connack_code {
            // 3.1.1 return codes 1..=5 are refusals too
            Some(code) => code != 0,
            None => outcome.closed,
        };
        push(
            if refused {
                "CONNECT refused (CONNACK >= 0x80 or close)"
            } else {
                "CONNECT accepted"
            }
            .into(),
            (was_refused != refused).then(shown_connack),
        );
    }
    if let Some(no_connack) = e.no_connack {
        let ok = (outcome.connack.is_none() && outcome.closed) == no_connack;
        push(
            if no_connack {
                "closed without CONNACK"
            } else {
                "a CONNACK"
            }
            .into(),
            (!ok).then(shown_connack),
        );
    }
    if let Some(present) = e.session_present {
        let got = outcome.connack.as_ref().map(|c| c.session_present);
        push(
            format!("session_present={}", u8::from(present)),
            (got != Some(present)).then(|| match got {
                Some(got) => format!("session_present={}", u8::from(got)),
                None => shown_connack(),
            }),
        );
    }
    if !e.connack.is_empty() {
        let keep_alive = connect.map(|c| c.keep_alive);
        check_connack_properties(&e.connack, keep_alive, outcome.connack.as_ref(), push);
    }
    if let Some(granted) = &e.granted {
        let got = outcome.suback.as_ref().map(|s| bytes_of(&s.codes));
        push(
            format!("SUBACK codes {}", describe::hex_codes(granted)),
            (got.as_ref() != Some(granted)).then(|| match got {
                Some(codes) => format!("SUBACK codes {}", describe::hex_codes(&codes)),
                None => "no SUBACK".into(),
            }),
        );
    }
    if let Some(codes) = &e.codes {
        let got = outcome.unsuback.as_ref().map(|s| bytes_of(&s.codes));
        push(
            format!("UNSUBACK codes {}", describe::hex_codes(codes)),
            (got.as_ref() != Some(codes)).then(|| match got {
                Some(codes) => format!("UNSUBACK codes {}", describe::hex_codes(&codes)),
                None => "no UNSUBACK".into(),
            }),
        );
    }
    if let Some(closed) = e.closed {
        push(
            if closed {
                "the server closes the connection"
            } else {
                "the connection stays open"
            }
            .into(),
            (outcome.closed != closed).then(|| {
                if outcome.closed {
                    "closed"
                } else {
                    "still open"
                }
                .into()
            }),
        );
    }
    if let Some(disconnect) = &e.disconnect {
        let got = outcome.disconnect.as_ref().map(|d| u8::from(d.code));
        let ok = match disconnect.reason {
            Some(code) => got == Some(code),
            None => got.is_some(),
        };
        let expected = match disconnect.reason {
            Some(code) => format!("server DISCONNECT {}", code_name(code)),
            None => "a server DISCONNECT".into(),
        };
        push(
            expected,
            (!ok).then(|| match got {
                Some(code) => format!("DISCONNECT {}", code_name(code)),
                None if outcome.closed => "closed without DISCONNECT".into(),
                None => "no DISCONNECT".into(),
            }),
        );
    }
}

/// Checks the CONNACK's properties; `keep_alive` is the Keep Alive of the CONNECT it answers,
/// when the step sent a structured one.
fn check_connack_properties(
    e: &ConnAckExpectation,
    keep_alive: Option<u16>,
    connack: Option<&ConnAck>,
    push: &mut impl FnMut(String, Option<String>),
) {
    let Some(connack) = connack else {
        push("CONNACK properties".into(), Some("no CONNACK".into()));
        return;
    };
    let p = &connack.properties;
    property(
        push,
        "session_expiry",
        &e.session_expiry,
        p.session_expiry_interval.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "receive_maximum",
        &e.receive_maximum,
        p.receive_maximum.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "maximum_qos",
        &e.maximum_qos,
        p.maximum_qos.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "retain_available",
        &e.retain_available,
        p.retain_available.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "maximum_packet_size",
        &e.maximum_packet_size,
        p.maximum_packet_size.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "assigned_client_id",
        &e.assigned_client_id,
        p.assigned_client_identifier.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "topic_alias_maximum",
        &e.topic_alias_maximum,
        p.topic_alias_maximum.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "wildcard_subscription_available",
        &e.wildcard_subscription_available,
        p.wildcard_subscription_available.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "subscription_identifiers_available",
        &e.subscription_identifiers_available,
        p.subscription_identifiers_available.as_ref(),
        |a, b| a == b,
    );
    property(
        push,
        "shared_subscription_available",
        &e.shared_subscription_available,
        p.shared_subscription_available.as_ref(),
        |a, b| a == b,
    );
    // A Server Keep Alive equal to the client's changes nothing, so it meets `absent`: the
    // client's Keep Alive is in force either way ([MQTT-3.2.2-21], [MQTT-3.2.2-22]).
    if let Some(check) = &e.server_keep_alive {
        let announced = p.server_keep_alive.as_ref();
        let (ok, or_the_clients) = match (check, keep_alive) {
            (PropertyCheck::Absent, Some(ka)) => (
                announced.is_none_or(|v| *v == ka),
                format!(" (or the client's {ka})"),
            ),
            _ => (
                property_holds(check, announced, |a, b| a == b),
                String::new(),
            ),
        };
        push(
            format!(
                "{}{or_the_clients}",
                describe::property_check("server_keep_alive", check)
            ),
            (!ok).then(|| describe::property_value("server_keep_alive", announced)),
        );
    }
}

/// Checks one optional property against `absent` / `present` / a value.
fn property<E: Shown, V: Shown>(
    push: &mut impl FnMut(String, Option<String>),
    name: &str,
    check: &Option<PropertyCheck<E>>,
    value: Option<&V>,
    equal: impl Fn(&E, &V) -> bool,
) {
    let Some(check) = check else {
        return;
    };
    let ok = property_holds(check, value, equal);
    push(
        describe::property_check(name, check),
        (!ok).then(|| describe::property_value(name, value)),
    );
}

fn property_holds<E, V>(
    check: &PropertyCheck<E>,
    value: Option<&V>,
    equal: impl Fn(&E, &V) -> bool,
) -> bool {
    match (check, value) {
        (PropertyCheck::Absent, None) | (PropertyCheck::Present, Some(_)) => true,
        (PropertyCheck::Is(expected), Some(value)) => equal(expected, value),
        _ => false,
    }
}

/// SUBACK or UNSUBACK codes as the bytes a scenario lists.
fn bytes_of(codes: &[ReasonCode]) -> Vec<u8> {
    codes.iter().copied().map(u8::from).collect()
}

/// Checks the scenario's final expectations against the transcript.
pub fn final_checks(
    scenario: &Scenario,
    transcript: &Transcript,
    marks: &Marks,
    tolerance: Tolerance,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for event in &transcript.events {
        if let EventKind::Violation(what) = &event.kind {
            let client = scenario.client(&event.client);
            checks.push(Check {
                level: Level::Must,
                passed: false,
                expected: format!("{} gets only well-formed protocol exchanges", event.client),
                observed: format!("{what} at {}s", seconds(event.at)),
                location: client.map(|c| c.location).unwrap_or_default(),
                scope: Scope::Run,
            });
        }
    }
    for block in &scenario.expect {
        let level = block.level.unwrap_or(scenario.level);
        check_client(block, level, transcript, marks, tolerance, &mut checks);
    }
    checks
}

fn check_client(
    block: &ClientExpectation,
    level: Level,
    transcript: &Transcript,
    marks: &Marks,
    tolerance: Tolerance,
    checks: &mut Vec<Check>,
) {
    let client = block.client.as_str();
    let received: Vec<(Duration, &Publish)> = transcript.publishes(client).collect();
    let listing = || {
        if received.is_empty() {
            "nothing received".to_owned()
        } else {
            let items: Vec<String> = received
                .iter()
                .map(|(at, p)| describe::received(*at, p))
                .collect();
            format!("received {}", items.join("; "))
        }
    };
    match &block.receives {
        None => {}
        Some(Receives::Nothing) => checks.push(Check {
            level,
            passed: received.is_empty(),
            expected: format!("{client} receives nothing"),
            observed: listing(),
            location: block.location,
            scope: Scope::Run,
        }),
        Some(Receives::Messages(matchers)) => {
            let windows: Vec<Option<(Duration, Duration)>> = matchers
                .iter()
                .map(|m| {
                    m.window
                        .as_ref()
                        .map(|w| window_bounds(w, marks, tolerance))
                })
                .collect();
            let in_window = |window: Option<(Duration, Duration)>, at: Duration| {
                window.is_none_or(|(lo, hi)| at >= lo && at <= hi)
            };
            let mut first_hits = Vec::new();
            for (matcher, window) in matchers.iter().zip(&windows) {
                let hits: Vec<usize> = received
                    .iter()
                    .enumerate()
                    .filter(|(_, (at, p))| {
                        matches(matcher, p, tolerance) && in_window(*window, *at)
                    })
                    .map(|(i, _)| i)
                    .collect();
                // A copy outside this matcher's window that no other matcher expects then is
                // a message at the wrong time (a duplicate will, a will that came too late).
                let strays: Vec<String> = received
                    .iter()
                    .filter(|(at, p)| {
                        window.is_some()
                            && matches(matcher, p, tolerance)
                            && !in_window(*window, *at)
                            && !matchers.iter().zip(&windows).any(|(other, w)| {
                                other.window.is_some()
                                    && matches(other, p, tolerance)
                                    && in_window(*w, *at)
                            })
                    })
                    .map(|(at, _)| format!("{}s", seconds(*at)))
                    .collect();
                let count = u32::try_from(hits.len()).unwrap_or(u32::MAX);
                first_hits.push(hits.first().copied());
                // Too few: say how the messages that came in time differ, so that a QoS or
                // DUP mismatch does not read as a timing failure.
                let miss_note = if count < matcher.count.min {
                    near_miss(matcher, &received, tolerance, |at, p| {
                        in_window(*window, at)
                            && !matchers.iter().zip(&windows).any(|(other, w)| {
                                !std::ptr::eq(other, matcher)
                                    && matches(other, p, tolerance)
                                    && in_window(*w, at)
                            })
                    })
                } else {
                    String::new()
                };
                let times = match &matcher.window {
                    Some(w) => format!(" {}", describe::window(w, marks, tolerance)),
                    None => String::new(),
                };
                let stray_note = if strays.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and {} outside its window (at {})",
                        strays.len(),
                        strays.join(", ")
                    )
                };
                checks.push(Check {
                    level: matcher.level.unwrap_or(level),
                    passed: matcher.count.contains(count) && strays.is_empty(),
                    expected: format!(
                        "{client} receives {} {}{times}",
                        describe::count(matcher),
                        describe::matcher(matcher)
                    ),
                    observed: format!(
                        "{count} matching in time{stray_note}{miss_note}; {}",
                        listing()
                    ),
                    location: matcher.location,
                    scope: Scope::Run,
                });
            }
            if block.ordered {
                let hits: Vec<usize> = first_hits.iter().flatten().copied().collect();
                checks.push(Check {
                    level,
                    passed: hits.windows(2).all(|w| w[0] < w[1]),
                    expected: format!("{client} receives the listed messages in order"),
                    observed: listing(),
                    location: block.location,
                    scope: Scope::Run,
                });
            }
            if block.only {
                let stray: Vec<String> = received
                    .iter()
                    .filter(|(_, p)| !matchers.iter().any(|m| matches(m, p, tolerance)))
                    .map(|(at, p)| describe::received(*at, p))
                    .collect();
                checks.push(Check {
                    level,
                    passed: stray.is_empty(),
                    expected: format!("{client} receives only the listed messages"),
                    observed: format!("also received {}", stray.join("; ")),
                    location: block.location,
                    scope: Scope::Run,
                });
            }
        }
    }
    if let Some(state) = block.end_state {
        let connected = is_connected_at_end(transcript, client);
        let wanted = state == EndState::Connected;
        checks.push(Check {
            level,
            passed: connected == wanted,
            expected: format!(
                "{client} is {} at the end",
                if wanted { "connected" } else { "closed" }
            ),
            observed: format!(
                "{client} is {}",
                if connected { "connected" } else { "closed" }
            ),
            location: block.location,
            scope: Scope::Run,
        });
    }
}

/// `: arrived at 1.100s with qos=0, expected qos=1`: the message a matcher expects, come
/// otherwise. Candidates are the received messages `eligible` takes (in the matcher's window,
/// expected by no other matcher) that share the matcher's topic or payload where it names
/// either; the one differing in the fewest fields is named, with how many more there were.
/// Empty when there is none.
fn near_miss(
    matcher: &MessageMatcher,
    received: &[(Duration, &Publish)],
    tolerance: Tolerance,
    eligible: impl Fn(Duration, &Publish) -> bool,
) -> String {
    let same_message = |p: &Publish| {
        let topic = matcher.topic.as_ref().map(|t| *t == p.topic);
        let payload = matcher.payload.as_ref().map(|b| *b == p.payload);
        topic.unwrap_or(false) || payload.unwrap_or(false) || (topic, payload) == (None, None)
    };
    let misses: Vec<(Duration, Vec<Difference>)> = received
        .iter()
        .filter(|(at, p)| eligible(*at, p) && same_message(p))
        .map(|(at, p)| (*at, differences(matcher, p, tolerance)))
        .filter(|(_, d)| !d.is_empty())
        .collect();
    let Some((at, closest)) = misses.iter().min_by_key(|(_, d)| d.len()) else {
        return String::new();
    };
    let carried: Vec<&str> = closest.iter().map(|d| d.carried.as_str()).collect();
    let expected: Vec<&str> = closest.iter().map(|d| d.expected.as_str()).collect();
    let more = match misses.len() - 1 {
        0 => String::new(),
        n => format!(" (and {n} more in time that differ)"),
    };
    format!(
        ": arrived at {}s with {}, expected {}{more}",
        seconds(*at),
        carried.join(" and "),
        expected.join(" and ")
    )
}

/// Whether the client's last connection was still open when the run ended: it got a
/// CONNACK after its last close, drop, vanish or DISCONNECT.
fn is_connected_at_end(transcript: &Transcript, client: &str) -> bool {
    let mut connected = false;
    for event in transcript.events.iter().filter(|e| e.client == client) {
        match &event.kind {
            EventKind::Received(Packet::ConnAck(c)) => connected = c.code.is_success(),
            // silence leaves the connection open
            EventKind::Fault(Fault::Silence) => {}
            EventKind::Sent(Packet::Disconnect(_))
            | EventKind::Closed
            | EventKind::Undecodable(_)
            | EventKind::Fault(_) => connected = false,
            _ => {}
        }
    }
    connected
}

fn window_bounds(window: &Window, marks: &Marks, tolerance: Tolerance) -> (Duration, Duration) {
    let at = |t: &TimeRef| resolve(t, marks);
    let (lo, hi) = match window {
        Window::At(t) => (at(t), at(t)),
        Window::Between { after, before } => (
            after.as_ref().and_then(at).or(Some(Duration::ZERO)),
            before.as_ref().and_then(at).or(Some(Duration::MAX)),
        ),
    };
    let lo = lo.map_or(Duration::MAX, |lo| lo.saturating_sub(tolerance.early));
    let hi = hi.map_or(Duration::ZERO, |hi| hi.saturating_add(tolerance.late));
    (lo, hi)
}

/// Does a received PUBLISH satisfy a matcher (window aside)?
pub fn matches(m: &MessageMatcher, p: &Publish, tolerance: Tolerance) -> bool {
    differences(m, p, tolerance).is_empty()
}

/// One way a received PUBLISH differs from a matcher: what it carried and what was expected,
/// both as the transcript writes them (`qos=0`, `qos=1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub carried: String,
    pub expected: String,
}

/// Every field in which a received PUBLISH differs from a matcher (window aside), in the
/// order the matcher is written; empty when it matches.
pub fn differences(m: &MessageMatcher, p: &Publish, tolerance: Tolerance) -> Vec<Difference> {
    let mut found = Vec::new();
    let mut compare = |ok: bool, carried: String, expected: String| {
        if !ok {
            found.push(Difference { carried, expected });
        }
    };
    if let Some(t) = &m.topic {
        compare(
            *t == p.topic,
            format!("topic={}", quoted(p.topic.as_bytes())),
            format!("topic={}", quoted(t.as_bytes())),
        );
    }
    if let Some(b) = &m.payload {
        compare(
            *b == p.payload,
            format!("payload={}", quoted(&p.payload)),
            format!("payload={}", quoted(b)),
        );
    }
    if let Some(q) = m.qos {
        compare(
            q == p.qos,
            format!("qos={}", p.qos.as_u8()),
            format!("qos={}", q.as_u8()),
        );
    }
    if let Some(r) = m.retain {
        compare(
            r == p.retain,
            format!("retain={}", u8::from(p.retain)),
            format!("retain={}", u8::from(r)),
        );
    }
    if let Some(d) = m.dup {
        compare(
            d == p.dup,
            format!("dup={}", u8::from(p.dup)),
            format!("dup={}", u8::from(d)),
        );
    }
    property_differences(&m.properties, p, tolerance, &mut compare);
    found
}

fn property_differences(
    m: &PropertiesMatcher,
    p: &Publish,
    tolerance: Tolerance,
    compare: &mut impl FnMut(bool, String, String),
) {
    fn one<E: Shown, V: Shown>(
        compare: &mut impl FnMut(bool, String, String),
        name: &str,
        check: &Option<PropertyCheck<E>>,
        value: Option<&V>,
        equal: impl Fn(&E, &V) -> bool,
    ) {
        if let Some(check) = check {
            compare(
                property_holds(check, value, equal),
                describe::property_value(name, value),
                describe::property_check(name, check),
            );
        }
    }
    let props: &MessageProperties = &p.properties;
    let same = |a: &String, b: &String| a == b;
    one(
        compare,
        "payload_format",
        &m.payload_format,
        props.payload_format_indicator.as_ref(),
        |a, b| a == b,
    );
    one(
        compare,
        "message_expiry",
        &m.message_expiry,
        props.message_expiry_interval.as_ref(),
        |range, v| {
            let slack = tolerance.expiry_slack();
            (range.min.saturating_sub(slack)..=range.max.saturating_add(slack)).contains(v)
        },
    );
    one(
        compare,
        "content_type",
        &m.content_type,
        props.content_type.as_ref(),
        same,
    );
    one(
        compare,
        "response_topic",
        &m.response_topic,
        props.response_topic.as_ref(),
        same,
    );
    one(
        compare,
        "correlation_data",
        &m.correlation_data,
        props.correlation_data.as_ref(),
        |a, b| a == b,
    );
    if let Some(list) = &m.user_properties {
        compare(
            *list == props.user_properties,
            describe::user_properties(&props.user_properties),
            describe::only_user_properties(list),
        );
    }
    if let Some(ids) = &m.subscription_identifiers {
        compare(
            *ids == p.subscription_identifiers,
            describe::subscription_ids(&p.subscription_identifiers),
            describe::subscription_ids(ids),
        );
    }
    one(
        compare,
        "topic_alias",
        &m.topic_alias,
        p.topic_alias.as_ref(),
        |a, b| a == b,
    );
}

#[cfg(test)]
mod tests;
