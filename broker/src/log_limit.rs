//! Warnings that could repeat once per message (a flood to a client that does not read) are
//! counted and written as one line with the count, at most once per [`INTERVAL`]: a hostile
//! client must not turn into a flood of log lines.

use std::time::Duration;

use tracing::warn;

/// At most one line per this interval, per kind of drop.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Counts one kind of drop and logs the count now and then.
#[derive(Debug)]
pub struct DropLog {
    what: &'static str,
    unreported: u64,
    last: Option<Duration>,
}

impl DropLog {
    pub const fn new(what: &'static str) -> DropLog {
        DropLog {
            what,
            unreported: 0,
            last: None,
        }
    }

    /// One more dropped at `now` (a monotonic time, such as the broker's clock).
    pub fn dropped(&mut self, now: Duration) {
        self.unreported += 1;
        if self
            .last
            .is_none_or(|last| now.saturating_sub(last) >= INTERVAL)
        {
            self.flush(now);
        }
    }

    /// Logs what has not been logged yet, whatever the time.
    pub fn flush(&mut self, now: Duration) {
        if self.unreported > 0 {
            warn!(dropped = self.unreported, "{}", self.what);
            self.unreported = 0;
            self.last = Some(now);
        }
    }
}
