//! The driver's own accounting of the memory clients make it hold, and of what it refused or
//! dropped to stay within its limits. The core task updates it; tests and
//! operators read it ([`Metrics::snapshot`]) instead of guessing from the process's RSS.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::core::QueueStats;

/// Live counters, updated by the core task and read by anyone holding them.
#[derive(Debug, Default)]
pub struct Metrics {
    queued_bytes: AtomicUsize,
    peak_queued_bytes: AtomicUsize,
    peak_connection_queued_bytes: AtomicUsize,
    read_buffer_bytes: AtomicUsize,
    peak_read_buffer_bytes: AtomicUsize,
    dropped_messages: AtomicU64,
    refused_connections: AtomicU64,
    unfinished_frames: AtomicU64,
    session_queued_bytes: AtomicUsize,
    peak_session_queued_bytes: AtomicUsize,
    dropped_queued_messages: AtomicU64,
    panicked_connections: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Encoded bytes waiting to be written, all connections together.
    pub queued_bytes: usize,
    /// The most `queued_bytes` ever was.
    pub peak_queued_bytes: usize,
    /// The most bytes ever waiting for one connection.
    pub peak_connection_queued_bytes: usize,
    /// Capacity of every connection's read buffer together.
    pub read_buffer_bytes: usize,
    /// The most `read_buffer_bytes` ever was.
    pub peak_read_buffer_bytes: usize,
    /// QoS 0 messages dropped because their client was behind (`max_queued_bytes`,
    /// `memory_budget`).
    pub dropped_messages: u64,
    /// CONNECTs refused because the memory budget was spent.
    pub refused_connections: u64,
    /// Connections closed because a packet was not finished within `frame_timeout`.
    pub unfinished_frames: u64,
    /// Payload and topic bytes of the QoS 1/2 messages queued in or in flight from every
    /// session (the core's [`QueueStats`], as of the last wake-up of the core task).
    pub session_queued_bytes: usize,
    /// The most one session ever held.
    pub peak_session_queued_bytes: usize,
    /// QoS 1/2 messages dropped from full sessions.
    pub dropped_queued_messages: u64,
    /// Connections closed because serving them panicked (a bug; every other client goes on
    /// being served).
    pub panicked_connections: u64,
}

impl Metrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |counter: &AtomicUsize| counter.load(Ordering::Relaxed);
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MetricsSnapshot {
            queued_bytes: get(&self.queued_bytes),
            peak_queued_bytes: get(&self.peak_queued_bytes),
            peak_connection_queued_bytes: get(&self.peak_connection_queued_bytes),
            read_buffer_bytes: get(&self.read_buffer_bytes),
            peak_read_buffer_bytes: get(&self.peak_read_buffer_bytes),
            dropped_messages: count(&self.dropped_messages),
            refused_connections: count(&self.refused_connections),
            unfinished_frames: count(&self.unfinished_frames),
            session_queued_bytes: get(&self.session_queued_bytes),
            peak_session_queued_bytes: get(&self.peak_session_queued_bytes),
            dropped_queued_messages: count(&self.dropped_queued_messages),
            panicked_connections: count(&self.panicked_connections),
        }
    }

    /// The memory the budget is checked against: queued writes plus read buffers.
    pub fn memory_in_use(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed) + self.read_buffer_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn queued(&self, len: usize) {
        let now = self.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
        self.peak_queued_bytes.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn unqueued(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
    }

    pub(crate) fn connection_queued(&self, len: usize) {
        self.peak_connection_queued_bytes
            .fetch_max(len, Ordering::Relaxed);
    }

    /// A read buffer's capacity went from `old` to `new` bytes.
    pub(crate) fn read_buffer_resized(&self, old: usize, new: usize) {
        if new >= old {
            let now = self
                .read_buffer_bytes
                .fetch_add(new - old, Ordering::Relaxed)
                + (new - old);
            self.peak_read_buffer_bytes
                .fetch_max(now, Ordering::Relaxed);
        } else {
            self.read_buffer_bytes
                .fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    pub(crate) fn dropped(&self) {
        self.dropped_messages.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The core's session accounting, copied after each wake-up of the core task.
    pub(crate) fn sessions(&self, stats: QueueStats) {
        let relaxed = Ordering::Relaxed;
        self.session_queued_bytes.store(stats.queued_bytes, relaxed);
        self.peak_session_queued_bytes
            .store(stats.peak_session_bytes, relaxed);
        self.dropped_queued_messages
            .store(stats.dropped_messages, relaxed);
    }

    /// One more connection closed after a panic; returns how many there were so far.
    pub(crate) fn panicked(&self) -> u64 {
        self.panicked_connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn unfinished_frame(&self) {
        self.unfinished_frames.fetch_add(1, Ordering::Relaxed);
    }
}
