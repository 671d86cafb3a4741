//! The model's predictions written as a scenario's final expectations: one `receives:` block
//! per client, time windows on marks (existing ones where they name the instant, `oracle-N`
//! added otherwise), and the reasoning lines with those marks in them.

use super::model::{Arrival, Delivery, Line, Model, Piece};
use super::time::{Anchor, Instant, Timeline};
use crate::scenario::{
    ClientExpectation, Level, Location, MessageMatcher, Range, Receives, Scenario, TimeRef, Window,
};
use crate::transcript::seconds;

/// Two copies of the same message closer than this are one matcher with a count, so that
/// neither copy falls in the other's window once a runner widens it (TCP: 0.5 s early, 1.5 s
/// late).
const DISTINCT: i64 = 2_000;

/// Names instants by marks, adding `oracle-N` marks to steps that need one.
struct Marks<'t> {
    timeline: &'t Timeline,
    /// The mark of each step, as the prediction will have it.
    names: Vec<Option<String>>,
}

impl Marks<'_> {
    fn name(&mut self, at: Instant) -> TimeRef {
        // the latest marked step ending at the same anchor, no later than `at`
        let best = self
            .names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let end = self.timeline.end(i)?;
                (name.is_some() && end.anchor == at.anchor && end.offset <= at.offset)
                    .then_some((end.offset, i))
            })
            .max();
        match (best, at.anchor) {
            (Some((offset, i)), _) => TimeRef {
                mark: self.names[i].clone(),
                offset: at.offset - offset,
            },
            (None, Anchor::Start) => TimeRef {
                mark: None,
                offset: at.offset,
            },
            (None, Anchor::End(i)) => {
                let name = format!("oracle-{}", i + 1);
                self.names[i] = Some(name.clone());
                TimeRef {
                    mark: Some(name),
                    offset: at.offset,
                }
            }
        }
    }

    fn window(&mut self, arrival: Arrival) -> Window {
        match arrival {
            Arrival::At(at) => Window::At(self.name(at)),
            Arrival::Between(after, before) => Window::Between {
                after: Some(self.name(after)),
                before: Some(self.name(before)),
            },
            Arrival::After(after) => Window::Between {
                after: Some(self.name(after)),
                before: None,
            },
        }
    }

    fn show(&mut self, piece: &Piece) -> String {
        match piece {
            Piece::Text(t) => t.clone(),
            Piece::At(at) => format!("at {}", show_time(&self.name(*at))),
            Piece::Between(a, b) => format!(
                "between {} and {}",
                show_time(&self.name(*a)),
                show_time(&self.name(*b))
            ),
            Piece::After(a) => format!("after {}", show_time(&self.name(*a))),
        }
    }
}

fn show_time(t: &TimeRef) -> String {
    let offset = if t.offset.is_zero() {
        String::new()
    } else {
        format!(" + {}s", seconds(t.offset))
    };
    match &t.mark {
        Some(mark) => format!("{mark}{offset}"),
        None if t.offset.is_zero() => "the start".into(),
        None => format!("{}s", seconds(t.offset)),
    }
}

/// The predicted scenario (marks added, expectations replaced) and the reasoning.
pub fn write(scenario: &Scenario, model: &Model) -> (Scenario, Vec<String>) {
    let mut marks = Marks {
        timeline: &model.timeline,
        names: scenario.steps.iter().map(|s| s.mark.clone()).collect(),
    };
    let mut expect = Vec::new();
    let mut silent = Vec::new();
    for client in &scenario.clients {
        let deliveries = merged(
            &model.timeline,
            model.deliveries.iter().filter(|d| d.client == client.name),
        );
        let receives = if deliveries.is_empty() {
            silent.push(client.name.clone());
            Receives::Nothing
        } else {
            Receives::Messages(
                deliveries
                    .iter()
                    .map(|d| matcher(d, marks.window(d.arrival)))
                    .collect(),
            )
        };
        expect.push(ClientExpectation {
            client: client.name.clone(),
            level: Some(Level::Must),
            only: matches!(receives, Receives::Messages(_)),
            receives: Some(receives),
            ordered: false,
            end_state: None,
            location: Location::default(),
        });
    }
    let mut reasoning: Vec<String> = model
        .reasoning
        .iter()
        .map(|line: &Line| line.iter().map(|p| marks.show(p)).collect())
        .collect();
    for name in silent {
        reasoning.push(format!(
            "{name}: receives nothing: no will or message reaches a subscription of its sessions"
        ));
    }
    let mut predicted = scenario.clone();
    for (step, name) in predicted.steps.iter_mut().zip(marks.names) {
        step.mark = name;
    }
    predicted.expect = expect;
    (predicted, reasoning)
}

fn matcher(d: &Delivery, window: Window) -> MessageMatcher {
    MessageMatcher {
        topic: Some(d.topic.clone()),
        payload: Some(d.payload.clone()),
        qos: Some(d.qos),
        retain: Some(d.retain),
        // first deliveries only: DUP 0 ([MQTT-3.3.1-1], [MQTT-4.3.1-1], [MQTT-4.3.2-1])
        dup: Some(false),
        properties: d.properties.clone(),
        count: d.count,
        window: Some(window),
        level: (d.level != Level::Must).then_some(d.level),
        location: Location::default(),
    }
}

/// Copies of one message for one client, close together in time, become one delivery with
/// a count and a window spanning them.
fn merged<'d>(
    timeline: &Timeline,
    deliveries: impl Iterator<Item = &'d Delivery>,
) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = Vec::new();
    for d in deliveries {
        let same = out.iter_mut().find(|o| {
            o.topic == d.topic
                && o.payload == d.payload
                && o.qos == d.qos
                && o.retain == d.retain
                && o.properties == d.properties
                && o.level == d.level
                && close(timeline, o.arrival, d.arrival)
        });
        match same {
            Some(o) => {
                o.count = Range {
                    min: o.count.min + d.count.min,
                    max: o.count.max.saturating_add(d.count.max),
                };
                o.arrival = hull(timeline, o.arrival, d.arrival);
            }
            None => out.push(d.clone()),
        }
    }
    out
}

fn bounds(a: Arrival) -> (Instant, Option<Instant>) {
    match a {
        Arrival::At(x) => (x, Some(x)),
        Arrival::Between(x, y) => (x, Some(y)),
        Arrival::After(x) => (x, None),
    }
}

fn close(timeline: &Timeline, a: Arrival, b: Arrival) -> bool {
    let (a_from, a_to) = bounds(a);
    let (b_from, b_to) = bounds(b);
    let apart = |to: Option<Instant>, from: Instant| {
        to.is_some_and(|to| timeline.between(to, from).min >= DISTINCT)
    };
    !apart(a_to, b_from) && !apart(b_to, a_from)
}

fn hull(timeline: &Timeline, a: Arrival, b: Arrival) -> Arrival {
    let (a_from, a_to) = bounds(a);
    let (b_from, b_to) = bounds(b);
    let from = if timeline.no_later(a_from, b_from) {
        a_from
    } else {
        b_from
    };
    let to = match (a_to, b_to) {
        (Some(x), Some(y)) => Some(if timeline.no_later(x, y) { y } else { x }),
        _ => None,
    };
    match to {
        Some(to) if to == from => Arrival::At(from),
        Some(to) => Arrival::Between(from, to),
        None => Arrival::After(from),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn instants_are_shown_on_marks() {
        let t = TimeRef {
            mark: Some("dropped".into()),
            offset: Duration::from_secs(5),
        };
        assert_eq!(show_time(&t), "dropped + 5.000s");
        let start = TimeRef {
            mark: None,
            offset: Duration::ZERO,
        };
        assert_eq!(show_time(&start), "the start");
    }
}
