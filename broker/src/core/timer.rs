//! The broker's single timer queue: will delays, session expiry, keep-alive and CONNECT
//! timeouts, ordered by due time and then by insertion.
//!
//! Ordering by due time (never by the interval that produced it) is what makes a later,
//! shorter will delay fire before an earlier, longer one.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use super::moment::Moment;

/// A handle to a scheduled timer, used to cancel it: 16 bytes, stored in the queue and with
/// whatever the timer is for; `seq` is never 0, so an `Option<TimerKey>` is 16 bytes too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey {
    due: Moment,
    seq: NonZeroU64,
}

impl TimerKey {
    pub fn due(&self) -> Moment {
        self.due
    }
}

#[derive(Debug)]
pub struct TimerQueue<T> {
    timers: BTreeMap<TimerKey, T>,
    next_seq: NonZeroU64,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        TimerQueue {
            timers: BTreeMap::new(),
            next_seq: NonZeroU64::MIN,
        }
    }
}

impl<T> TimerQueue<T> {
    pub fn schedule(&mut self, due: Moment, timer: T) -> TimerKey {
        let key = TimerKey {
            due,
            seq: self.next_seq,
        };
        self.next_seq = self.next_seq.saturating_add(1);
        self.timers.insert(key, timer);
        key
    }

    /// Cancels a timer; cancelling one that already fired is a no-op.
    pub fn cancel(&mut self, key: TimerKey) {
        self.timers.remove(&key);
    }

    pub fn next_deadline(&self) -> Option<Moment> {
        self.timers.first_key_value().map(|(key, _)| key.due)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Moment) -> Option<(TimerKey, T)> {
        let (key, _) = self.timers.first_key_value()?;
        if key.due > now {
            return None;
        }
        self.timers.pop_first()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fires_by_due_time_then_insertion() {
        let mut q = TimerQueue::default();
        let s = |secs| Moment::from(Duration::from_secs(secs));
        q.schedule(s(30), "long delay scheduled first");
        q.schedule(s(5), "short delay scheduled later");
        q.schedule(s(5), "same instant, later insertion");
        let cancelled = q.schedule(s(1), "cancelled");
        q.cancel(cancelled);
        assert_eq!(q.next_deadline(), Some(s(5)));
        assert_eq!(q.pop_due(s(4)), None);
        let fired: Vec<_> = std::iter::from_fn(|| q.pop_due(s(60)).map(|(_, t)| t)).collect();
        assert_eq!(
            fired,
            [
                "short delay scheduled later",
                "same instant, later insertion",
                "long delay scheduled first"
            ]
        );
    }
}
