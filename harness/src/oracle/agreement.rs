//! Does a scenario's own final expectation say what the oracle predicts, wherever it speaks
//! about wills?
//!
//! Each of the scenario's matchers on a will topic, and each `receives: nothing`, is compared
//! with the oracle's matchers for the same client: the oracle's copies of that message (same
//! topic and payload, agreeing on every field the scenario checks, in a window inside the
//! scenario's) must add up to a count the scenario accepts, at a level the scenario's level
//! agrees with. Windows are compared as instants (a mark and an offset), through the
//! prediction's [`Timeline`]. A difference is a [`Conflict`](Kind::Conflict) when the two
//! contradict, and [`Looser`](Kind::Looser) when the scenario accepts all the oracle requires
//! and more (no window, a wider window or range, a weaker level).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use super::time::{Instant, Timeline};
use crate::scenario::{
    Level, MessageMatcher, PropertiesMatcher, PropertyCheck, Range, Receives, Scenario, Window,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Looser,
    Conflict,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub kind: Kind,
    pub client: String,
    /// The line of the scenario's expectation.
    pub line: usize,
    /// What the scenario says, and what the oracle says instead.
    pub scenario: String,
    pub oracle: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Looser => "looser",
            Kind::Conflict => "CONFLICT",
        };
        write!(
            f,
            "{kind} line {} ({}):\n    scenario: {}\n    oracle:   {}",
            self.line, self.client, self.scenario, self.oracle
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Agreement {
    /// How many of the scenario's expectations about wills were compared.
    pub compared: usize,
    pub differences: Vec<Difference>,
}

impl Agreement {
    pub fn conflicts(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| d.kind == Kind::Conflict)
    }
}

/// One of the oracle's matchers, with its effective level.
struct Predicted<'p> {
    matcher: &'p MessageMatcher,
    level: Level,
}

/// How a scenario window relates to an oracle window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relation {
    Same,
    /// The scenario's window holds the oracle's and more.
    Wider,
    /// They share instants, but the scenario's does not hold the oracle's.
    Overlapping,
    Apart,
}

pub fn compare(original: &Scenario, predicted: &Scenario, timeline: &Timeline) -> Agreement {
    let will_topics: BTreeSet<&str> = original
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            crate::scenario::StepKind::Client {
                action: crate::scenario::Action::Connect(c),
                ..
            } => c.will.as_ref().map(|w| w.topic.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Agreement::default();
    let windows = Windows {
        timeline,
        original,
        predicted,
    };
    for block in &original.expect {
        let level = block.level.unwrap_or(original.level);
        let client = block.client.as_str();
        let oracle: Vec<Predicted> = predicted
            .expect
            .iter()
            .filter(|b| b.client == client)
            .flat_map(|b| {
                let block_level = b.level.unwrap_or(predicted.level);
                match &b.receives {
                    Some(Receives::Messages(ms)) => ms
                        .iter()
                        .map(|m| Predicted {
                            matcher: m,
                            level: m.level.unwrap_or(block_level),
                        })
                        .collect(),
                    _ => Vec::new(),
                }
            })
            .collect();
        let mut differ = |kind, scenario: String, oracle: String| {
            out.differences.push(Difference {
                kind,
                client: client.to_owned(),
                line: block.location.line,
                scenario,
                oracle,
            })
        };
        match &block.receives {
            None => {}
            Some(Receives::Nothing) => {
                out.compared += 1;
                for p in &oracle {
                    // a scenario may record "nothing" where the spec lets a will come
                    if level != Level::Must && p.level == Level::May {
                        continue;
                    }
                    differ(
                        Kind::Conflict,
                        format!("receives nothing ({})", level_name(level)),
                        format!("{} {}", level_name(p.level), describe(p.matcher)),
                    );
                }
            }
            Some(Receives::Messages(matchers)) => {
                for m in matchers {
                    let Some(topic) = &m.topic else { continue };
                    if !will_topics.contains(topic.as_str()) {
                        continue;
                    }
                    out.compared += 1;
                    let m_level = m.level.unwrap_or(level);
                    for (kind, oracle_says) in judge(m, m_level, &oracle, &windows) {
                        differ(
                            kind,
                            format!(
                                "line {}: {} {}",
                                m.location.line,
                                level_name(m_level),
                                describe(m)
                            ),
                            oracle_says,
                        );
                    }
                }
                if block.only {
                    for p in oracle.iter().filter(|p| {
                        p.level == Level::Must
                            && p.matcher
                                .topic
                                .as_deref()
                                .is_some_and(|t| will_topics.contains(t))
                    }) {
                        let accepted = matchers.iter().any(|m| content(m, p.matcher).is_some());
                        if !accepted {
                            differ(
                                Kind::Conflict,
                                "`only: true` excludes it".into(),
                                format!("must {}", describe(p.matcher)),
                            );
                        }
                    }
                }
            }
        }
    }
    out
}

/// The differences between one scenario matcher and the oracle's matchers for its client.
fn judge(
    m: &MessageMatcher,
    level: Level,
    oracle: &[Predicted],
    windows: &Windows,
) -> Vec<(Kind, String)> {
    let mut out = Vec::new();
    let mut looser = Vec::new();
    let mut counted: Vec<&Predicted> = Vec::new();
    for p in oracle {
        let Some(content_looser) = content(m, p.matcher) else {
            continue;
        };
        match windows.relation(m.window.as_ref(), p.matcher.window.as_ref()) {
            Relation::Apart => continue,
            Relation::Overlapping => {
                out.push((
                    Kind::Conflict,
                    format!("{} (the windows differ)", describe(p.matcher)),
                ));
                continue;
            }
            Relation::Wider => looser.push("a wider window"),
            Relation::Same => {}
        }
        if content_looser {
            looser.push("a wider Message Expiry range");
        }
        counted.push(p);
    }
    // copies the oracle holds to at least the scenario's level count towards its minimum
    let least: u32 = counted
        .iter()
        .filter(|p| p.level <= level)
        .map(|p| p.matcher.count.min)
        .sum();
    let most: u32 = counted
        .iter()
        .map(|p| p.matcher.count.max)
        .fold(0, u32::saturating_add);
    let strongest = counted.iter().map(|p| p.level).min();
    let shown = || {
        if counted.is_empty() {
            "no such message".to_owned()
        } else {
            counted
                .iter()
                .map(|p| format!("{} {}", level_name(p.level), describe(p.matcher)))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let fits = m.count.min <= least && most <= m.count.max;
    let range = Range {
        min: least,
        max: most,
    };
    if !fits {
        out.push((
            Kind::Conflict,
            format!("count {} — {}", show_range(range), shown()),
        ));
    } else if strongest.is_some_and(|l| l < level) {
        looser.push("a weaker level");
    }
    if out.is_empty() && !looser.is_empty() {
        out.push((
            Kind::Looser,
            format!("{} (the scenario has {})", shown(), looser.join(", ")),
        ));
    }
    out
}

/// Whether the oracle's message is one the scenario matcher accepts on every field the
/// matcher checks: `Some(true)` when it does only through a wider Message Expiry range.
fn content(m: &MessageMatcher, o: &MessageMatcher) -> Option<bool> {
    fn implies<T: PartialEq>(m: &Option<T>, o: &Option<T>) -> bool {
        m.is_none() || m == o
    }
    let fields = implies(&m.topic, &o.topic)
        && implies(&m.payload, &o.payload)
        && implies(&m.qos, &o.qos)
        && implies(&m.retain, &o.retain)
        && implies(&m.dup, &o.dup);
    if !fields {
        return None;
    }
    let (mp, op): (&PropertiesMatcher, &PropertiesMatcher) = (&m.properties, &o.properties);
    let plain = implies(&mp.payload_format, &op.payload_format)
        && implies(&mp.content_type, &op.content_type)
        && implies(&mp.response_topic, &op.response_topic)
        && implies(&mp.correlation_data, &op.correlation_data)
        && implies(&mp.user_properties, &op.user_properties)
        && implies(&mp.subscription_identifiers, &op.subscription_identifiers)
        && implies(&mp.topic_alias, &op.topic_alias);
    if !plain {
        return None;
    }
    match (&mp.message_expiry, &op.message_expiry) {
        (None, _) => Some(false),
        (Some(a), Some(b)) if a == b => Some(false),
        (Some(PropertyCheck::Is(a)), Some(PropertyCheck::Is(b)))
            if a.min <= b.min && b.max <= a.max =>
        {
            Some(true)
        }
        (Some(PropertyCheck::Present), Some(PropertyCheck::Is(_))) => Some(true),
        _ => None,
    }
}

/// How far two instants may differ and still be the same instant of a scenario: the
/// simulator's early tolerance, well above what the steps between two neighbouring marks cost.
const SLACK: Duration = Duration::from_millis(100);

struct Windows<'a> {
    timeline: &'a Timeline,
    original: &'a Scenario,
    predicted: &'a Scenario,
}

impl Windows<'_> {
    fn bounds(
        &self,
        scenario: &Scenario,
        window: Option<&Window>,
    ) -> (Option<Instant>, Option<Instant>) {
        let at = |t| self.timeline.resolve(scenario, t);
        match window {
            None => (None, None),
            Some(Window::At(t)) => (at(t), at(t)),
            Some(Window::Between { after, before }) => {
                (after.as_ref().and_then(at), before.as_ref().and_then(at))
            }
        }
    }

    fn relation(&self, scenario: Option<&Window>, oracle: Option<&Window>) -> Relation {
        let (s_lo, s_hi) = self.bounds(self.original, scenario);
        let (o_lo, o_hi) = self.bounds(self.predicted, oracle);
        let t = self.timeline;
        // marks of neighbouring steps name the same instant but for the steps' slack
        let same = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => t.same(a, b, SLACK),
            (a, b) => a.is_none() && b.is_none(),
        };
        if same(s_lo, o_lo) && same(s_hi, o_hi) {
            return Relation::Same;
        }
        // `a` certainly before `b`; a missing bound is open
        let before = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => t.between(a, b).min > 0,
            _ => false,
        };
        if before(s_hi, o_lo) || before(o_hi, s_lo) {
            return Relation::Apart;
        }
        // a ≤ b, where a missing lower bound is −∞ and a missing upper bound +∞
        let lower = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => t.no_later_than(a, b, SLACK),
        };
        let upper = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => t.no_later_than(a, b, SLACK),
        };
        if lower(s_lo, o_lo) && upper(o_hi, s_hi) {
            Relation::Wider
        } else {
            Relation::Overlapping
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Must => "must",
        Level::Should => "should",
        Level::May => "may",
    }
}

fn show_range(r: Range) -> String {
    if r.min == r.max {
        r.min.to_string()
    } else {
        format!("{}..{}", r.min, r.max)
    }
}

fn describe(m: &MessageMatcher) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &m.topic {
        parts.push(format!("topic={t:?}"));
    }
    if let Some(p) = &m.payload {
        parts.push(format!("payload={:?}", String::from_utf8_lossy(p)));
    }
    if let Some(q) = m.qos {
        parts.push(format!("qos={}", q.as_u8()));
    }
    if let Some(r) = m.retain {
        parts.push(format!("retain={}", u8::from(r)));
    }
    if let Some(PropertyCheck::Is(r)) = &m.properties.message_expiry {
        parts.push(format!("message_expiry={}", show_range(*r)));
    }
    if m.count != Range::exactly(1) {
        parts.push(format!("count={}", show_range(m.count)));
    }
    match &m.window {
        None => {}
        Some(Window::At(t)) => parts.push(format!("at {}", show(t))),
        Some(Window::Between { after, before }) => {
            if let Some(a) = after {
                parts.push(format!("after {}", show(a)));
            }
            if let Some(b) = before {
                parts.push(format!("before {}", show(b)));
            }
        }
    }
    format!("{{{}}}", parts.join(", "))
}

fn show(t: &crate::scenario::TimeRef) -> String {
    let mark = t.mark.as_deref().unwrap_or("start");
    if t.offset.is_zero() {
        mark.to_owned()
    } else {
        format!("{mark} + {}s", crate::transcript::seconds(t.offset))
    }
}
