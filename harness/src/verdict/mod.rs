//! Verdicts: scenario expectations evaluated against what happened.
//!
//! Step expectations are checked against the [`Outcome`] of their step; final expectations
//! against the whole [`Transcript`], never by sleeping and polling. Each expectation becomes
//! one [`Check`]; a failed `must` check fails the scenario, a failed `should` check warns, a
//! `may` check only records what the broker did.

use std::collections::BTreeMap;
use std::time::Duration;

use lastwill_broker::codec::{
    ConnAck, ConnAckCode, MessageProperties, Packet, Protocol, Publish, ReasonCode,
};

use crate::client::Outcome;
use crate::scenario::{
    Action, ClientExpectation, ConnAckExpectation, EndState, Level, Location, MessageMatcher,
    PropertiesMatcher, PropertyCheck, Receives, Scenario, Step, StepExpectation, StepKind, TimeRef,
    Window,
};
use crate::transcript::{EventKind, Fault, Transcript, code_name, quoted, seconds};

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

fn show_time(time: &TimeRef) -> String {
    match &time.mark {
        None => format!("{}s", seconds(time.offset)),
        Some(mark) if time.offset.is_zero() => mark.clone(),
        Some(mark) => format!("{mark} + {}s", seconds(time.offset)),
    }
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
            })
        };
        check_step(
            expectation,
            connect_protocol(step, outcome),
            outcome,
            &mut push,
        );
    }
    checks
}

/// The protocol of the CONNECT a step sent, or of the CONNACK it got (a `send` of raw bytes),
/// if either: a `reason:` on it is a code of that protocol's CONNACK table.
fn connect_protocol(step: &Step, outcome: &Outcome) -> Option<Protocol> {
    match (&step.kind, &outcome.connack) {
        (
            StepKind::Client {
                action: Action::Connect(connect),
                ..
            },
            _,
        ) => Some(connect.protocol),
        (_, Some(connack)) => Some(match connack.code {
            ConnAckCode::V5(_) => Protocol::V5,
            ConnAckCode::V311(_) => Protocol::V311,
        }),
        _ => None,
    }
}

fn check_step(
    e: &StepExpectation,
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
        check_connack_properties(&e.connack, outcome.connack.as_ref(), push);
    }
    if let Some(granted) = &e.granted {
        let got = outcome.suback.as_ref().map(|s| bytes_of(&s.codes));
        push(
            format!("SUBACK codes {}", hex_codes(granted)),
            (got.as_ref() != Some(granted)).then(|| match got {
                Some(codes) => format!("SUBACK codes {}", hex_codes(&codes)),
                None => "no SUBACK".into(),
            }),
        );
    }
    if let Some(codes) = &e.codes {
        let got = outcome.unsuback.as_ref().map(|s| bytes_of(&s.codes));
        push(
            format!("UNSUBACK codes {}", hex_codes(codes)),
            (got.as_ref() != Some(codes)).then(|| match got {
                Some(codes) => format!("UNSUBACK codes {}", hex_codes(&codes)),
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

fn check_connack_properties(
    e: &ConnAckExpectation,
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
    property(
        push,
        "server_keep_alive",
        &e.server_keep_alive,
        p.server_keep_alive.as_ref(),
        |a, b| a == b,
    );
}

/// Checks one optional property against `absent` / `present` / a value.
fn property<E: std::fmt::Debug, V: std::fmt::Debug>(
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
    let expected = match check {
        PropertyCheck::Absent => format!("{name} absent"),
        PropertyCheck::Present => format!("{name} present"),
        PropertyCheck::Is(v) => format!("{name} = {v:?}"),
    };
    let observed = match value {
        Some(v) => format!("{name} = {v:?}"),
        None => format!("{name} absent"),
    };
    push(expected, (!ok).then_some(observed));
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

fn hex_codes(codes: &[u8]) -> String {
    let items: Vec<String> = codes.iter().map(|c| format!("0x{c:02X}")).collect();
    format!("[{}]", items.join(", "))
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
                .map(|(at, p)| describe_received(*at, p))
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
                let times = match &matcher.window {
                    Some(w) => format!(" {}", show_window(w, marks, tolerance)),
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
                        show_count(matcher),
                        show_matcher(matcher)
                    ),
                    observed: format!("{count} matching in time{stray_note}; {}", listing()),
                    location: matcher.location,
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
                });
            }
            if block.only {
                let stray: Vec<String> = received
                    .iter()
                    .filter(|(_, p)| !matchers.iter().any(|m| matches(m, p, tolerance)))
                    .map(|(at, p)| describe_received(*at, p))
                    .collect();
                checks.push(Check {
                    level,
                    passed: stray.is_empty(),
                    expected: format!("{client} receives only the listed messages"),
                    observed: format!("also received {}", stray.join("; ")),
                    location: block.location,
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
        });
    }
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

fn show_window(window: &Window, marks: &Marks, tolerance: Tolerance) -> String {
    let (lo, hi) = window_bounds(window, marks, tolerance);
    let bounds = if hi == Duration::MAX {
        format!("[{}s, end]", seconds(lo))
    } else {
        format!("[{}s, {}s]", seconds(lo), seconds(hi))
    };
    let named = match window {
        Window::At(t) => format!("at {}", show_time(t)),
        Window::Between { after, before } => {
            let mut parts = Vec::new();
            if let Some(t) = after {
                parts.push(format!("after {}", show_time(t)));
            }
            if let Some(t) = before {
                parts.push(format!("before {}", show_time(t)));
            }
            parts.join(" and ")
        }
    };
    format!("{named} {bounds}")
}

fn show_count(m: &MessageMatcher) -> String {
    match (m.count.min, m.count.max) {
        (1, 1) => "exactly once".into(),
        (a, b) if a == b => format!("exactly {a} times"),
        (a, u32::MAX) => format!("at least {a} times"),
        (a, b) => format!("{a} to {b} times"),
    }
}

fn show_matcher(m: &MessageMatcher) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &m.topic {
        parts.push(format!("topic={}", quoted(t.as_bytes())));
    }
    if let Some(p) = &m.payload {
        parts.push(format!("payload={}", quoted(p)));
    }
    if let Some(q) = m.qos {
        parts.push(format!("qos={}", q.as_u8()));
    }
    if let Some(r) = m.retain {
        parts.push(format!("retain={}", u8::from(r)));
    }
    if let Some(d) = m.dup {
        parts.push(format!("dup={}", u8::from(d)));
    }
    if m.properties != PropertiesMatcher::default() {
        parts.push(format!("properties={:?}", m.properties));
    }
    format!("{{{}}}", parts.join(", "))
}

fn describe_received(at: Duration, p: &Publish) -> String {
    format!(
        "{}s {} {} qos={} retain={}",
        seconds(at),
        quoted(p.topic.as_bytes()),
        quoted(&p.payload),
        p.qos.as_u8(),
        u8::from(p.retain)
    )
}

/// Does a received PUBLISH satisfy a matcher (window aside)?
pub fn matches(m: &MessageMatcher, p: &Publish, tolerance: Tolerance) -> bool {
    m.topic.as_ref().is_none_or(|t| *t == p.topic)
        && m.payload.as_ref().is_none_or(|b| *b == p.payload)
        && m.qos.is_none_or(|q| q == p.qos)
        && m.retain.is_none_or(|r| r == p.retain)
        && m.dup.is_none_or(|d| d == p.dup)
        && properties_match(&m.properties, p, tolerance)
}

fn properties_match(m: &PropertiesMatcher, p: &Publish, tolerance: Tolerance) -> bool {
    let props: &MessageProperties = &p.properties;
    let holds = |check: &Option<PropertyCheck<_>>, value: Option<&_>| -> bool {
        check
            .as_ref()
            .is_none_or(|c| property_holds(c, value, |a: &String, b: &String| a == b))
    };
    m.payload_format
        .as_ref()
        .is_none_or(|c| property_holds(c, props.payload_format_indicator.as_ref(), |a, b| a == b))
        && m.message_expiry.as_ref().is_none_or(|c| {
            property_holds(c, props.message_expiry_interval.as_ref(), |range, v| {
                let slack = tolerance.expiry_slack();
                (range.min.saturating_sub(slack)..=range.max.saturating_add(slack)).contains(v)
            })
        })
        && holds(&m.content_type, props.content_type.as_ref())
        && holds(&m.response_topic, props.response_topic.as_ref())
        && m.correlation_data
            .as_ref()
            .is_none_or(|c| property_holds(c, props.correlation_data.as_ref(), |a, b| a == b))
        && m.user_properties
            .as_ref()
            .is_none_or(|u| *u == props.user_properties)
        && m.subscription_identifiers
            .as_ref()
            .is_none_or(|ids| *ids == p.subscription_identifiers)
        && m.topic_alias
            .as_ref()
            .is_none_or(|c| property_holds(c, p.topic_alias.as_ref(), |a, b| a == b))
}

#[cfg(test)]
mod tests;
