//! The core's clock reading: nanoseconds since the broker started, in 8 bytes.
//!
//! Drivers speak [`Duration`] (16 bytes); the core keeps a time in every connection, timer
//! and message, so it converts once at its entry points and stores a `Moment`. A `u64` of
//! nanoseconds lasts 584 years; later readings saturate rather than wrap.

use std::ops::{Add, Sub};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moment(u64);

impl From<Duration> for Moment {
    fn from(since_start: Duration) -> Moment {
        Moment(u64::try_from(since_start.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl From<Moment> for Duration {
    fn from(moment: Moment) -> Duration {
        Duration::from_nanos(moment.0)
    }
}

impl Add<Duration> for Moment {
    type Output = Moment;

    fn add(self, interval: Duration) -> Moment {
        let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        Moment(self.0.saturating_add(nanos))
    }
}

impl Sub for Moment {
    type Output = Duration;

    /// How long after `earlier` this is, or zero if it is not after it.
    fn sub(self, earlier: Moment) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_saturates() {
        let t = Duration::new(12, 345);
        assert_eq!(Duration::from(Moment::from(t)), t);
        let start = Moment::from(Duration::ZERO);
        assert_eq!(
            start + Duration::from_secs(3) - start,
            Duration::from_secs(3)
        );
        assert_eq!(start - (start + Duration::from_secs(1)), Duration::ZERO);
        let end = Moment::from(Duration::MAX);
        assert_eq!(end + Duration::from_secs(1), end);
    }
}
