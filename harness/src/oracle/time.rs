//! Time in a prediction: instants as the runner will see them.
//!
//! How long a step takes is not known in advance (a CONNECT waits for its CONNACK over a
//! network), so an instant is written as the end of a step whose duration is uncertain — an
//! [`Anchor`] — plus an exact offset: `dropped + 5s`. A `wait:` or an instantaneous action
//! (drop, vanish, DISCONNECT, a mark) adds exactly to the instant before it, so marks on such
//! steps name instants of an earlier anchor. Each anchor carries bounds on how long its step
//! took, which is how the oracle orders instants of different anchors.
//!
//! A decision that depends on which of two instants comes first (a reconnect against a will's
//! due time, a subscriber's return against a message's expiry) is taken only when they are at
//! least [`MARGIN`] apart; closer than that, the oracle does not guess.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::scenario::{Scenario, TimeRef};

/// The least separation at which the oracle decides which of two instants came first.
pub const MARGIN: Duration = Duration::from_millis(500);

/// The longest the oracle assumes one request/response exchange takes, on the simulator's
/// links (at most 5 ms each way) or a local network.
pub const ROUND_TRIP: Duration = Duration::from_millis(50);

/// What a step may cost beyond its exchanges: a simulation tick (the property tests and
/// `explore` run at 10 ms ticks), and a `wait:` or `at:` wakes at the next tick.
pub const TICK: Duration = Duration::from_millis(10);

/// The instant an uncertain amount of time is measured from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Anchor {
    /// The start of the run.
    Start,
    /// The end of step `i` (0-based), a step whose duration is not known exactly.
    End(usize),
}

/// An anchor plus an exact offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    pub anchor: Anchor,
    pub offset: Duration,
}

impl Instant {
    pub const START: Instant = Instant {
        anchor: Anchor::Start,
        offset: Duration::ZERO,
    };

    pub fn plus(self, d: Duration) -> Instant {
        Instant {
            anchor: self.anchor,
            offset: self.offset + d,
        }
    }
}

/// An instant known exactly, or only to lie between two instants (a keep-alive expiry, which
/// a server may detect at any moment up to 1.5 × the keep alive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct When {
    pub earliest: Instant,
    pub latest: Instant,
}

impl When {
    pub fn exactly(at: Instant) -> When {
        When {
            earliest: at,
            latest: at,
        }
    }

    pub fn is_exact(&self) -> bool {
        self.earliest == self.latest
    }

    pub fn plus(self, d: Duration) -> When {
        When {
            earliest: self.earliest.plus(d),
            latest: self.latest.plus(d),
        }
    }
}

/// Which of two instants comes first, as far as the oracle can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The first comes at least [`MARGIN`] before the second.
    Before,
    /// The first comes at least [`MARGIN`] after the second.
    After,
    /// Exactly the same instant.
    Same,
    /// Too close to tell.
    Close,
}

/// A signed span of time in milliseconds: bounds on the difference of two instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub min: i64,
    pub max: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// When every step of a scenario starts and ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Per step, in order: its start and its end.
    steps: Vec<(Instant, Instant)>,
    /// Steps whose end is an anchor: where the step started and how long it can take (ms).
    anchors: BTreeMap<usize, (Instant, Bounds)>,
}

impl Timeline {
    /// When the next step starts: at the end of the previous one, or at its `at:` instant if
    /// that is later. `Err` when the two are too close to tell.
    pub fn start_of_next(&self, at: Option<Instant>) -> Result<Instant, (Instant, Instant)> {
        let previous = self.steps.last().map_or(Instant::START, |s| s.1);
        let Some(at) = at else {
            return Ok(previous);
        };
        match self.order(When::exactly(previous), When::exactly(at)) {
            Order::Before | Order::Same => Ok(at),
            Order::After => Ok(previous),
            Order::Close => Err((previous, at)),
        }
    }

    /// Records the next step: it starts at `start` and takes between `min` and `max`.
    pub fn push_step(&mut self, start: Instant, min: Duration, max: Duration) -> Instant {
        let index = self.steps.len();
        let end = if min == max {
            start.plus(min)
        } else {
            self.anchors.insert(
                index,
                (
                    start,
                    Bounds {
                        min: millis(min),
                        max: millis(max),
                    },
                ),
            );
            Instant {
                anchor: Anchor::End(index),
                offset: Duration::ZERO,
            }
        };
        self.steps.push((start, end));
        end
    }

    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    pub fn end(&self, step: usize) -> Option<Instant> {
        self.steps.get(step).map(|s| s.1)
    }

    /// The instant a scenario's time reference names (its marks are on these steps).
    pub fn resolve(&self, scenario: &Scenario, time: &TimeRef) -> Option<Instant> {
        let base = match &time.mark {
            None => Instant::START,
            Some(mark) => {
                let step = scenario
                    .steps
                    .iter()
                    .position(|s| s.mark.as_deref() == Some(mark))?;
                self.end(step)?
            }
        };
        Some(base.plus(time.offset))
    }

    /// Bounds on `instant − anchor` for every anchor `instant` is measured from, nearest first.
    fn chain(&self, instant: Instant) -> Vec<(Anchor, Bounds)> {
        let mut out = Vec::new();
        let mut at = instant.anchor;
        let mut bounds = Bounds {
            min: millis(instant.offset),
            max: millis(instant.offset),
        };
        loop {
            out.push((at, bounds));
            let Anchor::End(step) = at else {
                return out;
            };
            let Some((start, took)) = self.anchors.get(&step) else {
                return out;
            };
            let from_start = millis(start.offset);
            bounds = Bounds {
                min: bounds.min + took.min + from_start,
                max: bounds.max + took.max + from_start,
            };
            at = start.anchor;
        }
    }

    /// Bounds on `b − a`, measured from their nearest common anchor.
    pub fn between(&self, a: Instant, b: Instant) -> Bounds {
        let from_a = self.chain(a);
        for (anchor, b_bounds) in self.chain(b) {
            if let Some((_, a_bounds)) = from_a.iter().find(|(x, _)| *x == anchor) {
                return Bounds {
                    min: b_bounds.min - a_bounds.max,
                    max: b_bounds.max - a_bounds.min,
                };
            }
        }
        unreachable!("every chain ends at the start of the run")
    }

    /// Which of `a` and `b` comes first; spans must be wholly apart.
    pub fn order(&self, a: When, b: When) -> Order {
        if a.is_exact() && a == b {
            return Order::Same;
        }
        let margin = millis(MARGIN);
        if self.between(a.latest, b.earliest).min >= margin {
            Order::Before
        } else if self.between(b.latest, a.earliest).min >= margin {
            Order::After
        } else {
            Order::Close
        }
    }

    /// A timer (due at `timer`) certainly fires after the server handled a step whose effect
    /// was over by `step`: a server publishes a will after its delay, never before
    /// ([MQTT-3.1.2-8]).
    pub fn step_then_timer(&self, step: When, timer: When) -> bool {
        self.no_later(step.latest, timer.earliest)
    }

    /// A timer certainly fires before a step's effect begins: even a server that runs its
    /// timers late by up to [`MARGIN`].
    pub fn timer_then_step(&self, timer: When, step: When) -> bool {
        self.between(timer.latest, step.earliest).min >= millis(MARGIN)
    }

    /// `a` and `b` are the same instant but for the runners' slack: they differ by less
    /// than `slack` whatever the steps between them cost.
    pub fn same(&self, a: Instant, b: Instant, slack: Duration) -> bool {
        let d = self.between(a, b);
        a == b || (d.min >= -millis(slack) && d.max <= millis(slack))
    }

    /// `a` is no later than `b`, give or take `slack`.
    pub fn no_later_than(&self, a: Instant, b: Instant, slack: Duration) -> bool {
        a == b || self.between(a, b).min >= -millis(slack)
    }

    /// `a` is certainly no later than `b` (any margin).
    pub fn no_later(&self, a: Instant, b: Instant) -> bool {
        a == b || self.between(a, b).min >= 0
    }
}
