//! A run's timeline: when each message arrived against the window it was expected in, with
//! the run's marks. Reports draw it; a late broker timer shows as a dot right of its window.

use std::time::Duration;

use lastwill_broker::codec::Packet;

use super::{Check, Marks, Tolerance, describe, matches, window_bounds};
use crate::scenario::{Level, Receives, Scenario};
use crate::transcript::{EventKind, Transcript};

/// When messages arrived against when they were expected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// When the run ended.
    pub end: Duration,
    /// Named instants, in time order.
    pub marks: Vec<(String, Duration)>,
    /// The window of every `receives:` matcher that has one.
    pub windows: Vec<ExpectedWindow>,
    /// Every PUBLISH a client received, in order.
    pub arrivals: Vec<Arrival>,
    /// Clients expected to receive nothing at all.
    pub silent: Vec<String>,
}

/// When one expected message should arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedWindow {
    pub client: String,
    /// The matcher's line in the scenario.
    pub line: usize,
    pub level: Level,
    /// What it expects, as its check says (`exactly once {topic="will/a", qos=1}`).
    pub what: String,
    /// The window as written: from, and until (`None`: the end of the run).
    pub from: Duration,
    pub until: Option<Duration>,
    /// The same widened by the runner's tolerance.
    pub early: Duration,
    pub late: Option<Duration>,
    /// Whether the matcher's check held.
    pub held: bool,
}

/// One PUBLISH a client received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub client: String,
    pub at: Duration,
    /// `"will/a" "gone" qos=1 retain=0`
    pub what: String,
    /// The line of a matcher it matches inside that matcher's (widened) window.
    pub expected_by: Option<usize>,
}

/// The timeline of a run of `scenario`, whose checks are `checks`.
pub fn timeline(
    scenario: &Scenario,
    transcript: &Transcript,
    marks: &Marks,
    tolerance: Tolerance,
    checks: &[Check],
) -> Timeline {
    let exact = Tolerance {
        early: Duration::ZERO,
        late: Duration::ZERO,
    };
    let open_ended = |t: Duration| (t != Duration::MAX).then_some(t);
    let mut windows = Vec::new();
    let mut silent = Vec::new();
    let mut matchers = Vec::new();
    for block in &scenario.expect {
        let level = block.level.unwrap_or(scenario.level);
        match &block.receives {
            Some(Receives::Nothing) => silent.push(block.client.clone()),
            Some(Receives::Messages(list)) => {
                for m in list {
                    let bounds = m.window.as_ref().map(|w| {
                        (
                            window_bounds(w, marks, exact),
                            window_bounds(w, marks, tolerance),
                        )
                    });
                    matchers.push((block.client.as_str(), m, bounds.map(|(_, wide)| wide)));
                    let Some(((from, until), (early, late))) = bounds else {
                        continue;
                    };
                    windows.push(ExpectedWindow {
                        client: block.client.clone(),
                        line: m.location.line,
                        level: m.level.unwrap_or(level),
                        what: format!("{} {}", describe::count(m), describe::matcher(m)),
                        from,
                        until: open_ended(until),
                        early,
                        late: open_ended(late),
                        held: checks.iter().any(|c| c.location == m.location && c.passed),
                    });
                }
            }
            None => {}
        }
    }
    let arrivals = transcript
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Received(Packet::Publish(p)) => Some((e, p)),
            _ => None,
        })
        .map(|(e, p)| Arrival {
            client: e.client.clone(),
            at: e.at,
            what: describe::publish(p),
            expected_by: matchers
                .iter()
                .find(|(client, m, window)| {
                    *client == e.client
                        && matches(m, p, tolerance)
                        && window.is_none_or(|(lo, hi)| e.at >= lo && e.at <= hi)
                })
                .map(|(_, m, _)| m.location.line),
        })
        .collect();
    let mut marks: Vec<(String, Duration)> = marks.iter().map(|(m, t)| (m.clone(), *t)).collect();
    marks.sort_by_key(|(name, at)| (*at, name.clone()));
    Timeline {
        end: transcript.events.last().map(|e| e.at).unwrap_or_default(),
        marks,
        windows,
        arrivals,
        silent,
    }
}
