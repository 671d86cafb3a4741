//! What waits to be written to one client, and how it flows to the client's task.
//!
//! The core task never waits on a connection, so whatever the core produces for a client is
//! encoded at once and kept here, in the connection's [`Outbox`]. From there it moves to the
//! connection task through a [`WriteQueue`] only while less than [`WRITE_WINDOW`] bytes are
//! handed over and not yet written; the task says when it has caught up. So a client that
//! reads receives any amount, however it arrives (a retained set, a resumed queue, pipelined
//! publishes), in writes of a bounded size, and the bytes that pile up are the ones behind a
//! client that is *not* reading. Those are bounded: past `max_queued_bytes` for the client,
//! or past the memory budget for all clients, the oldest QoS 0 PUBLISH waiting for it are
//! dropped (counted in [`Metrics`]). QoS 1/2 PUBLISH and acks are never dropped here: the
//! core's in-flight window bounds them, and the core believes them sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::core::ConnectionId;

use super::metrics::Metrics;

/// Bytes handed to a connection task and not yet written, at most (plus one packet).
pub(crate) const WRITE_WINDOW: usize = 256 * 1024;

/// The task asks for more once it is below this.
const LOW_WATER: usize = WRITE_WINDOW / 2;

/// What the core task sends a connection task: bytes to write, then perhaps close.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub bytes: Bytes,
    pub close: bool,
}

/// One encoded packet waiting for its client.
#[derive(Debug)]
struct Queued {
    bytes: Bytes,
    /// A QoS 0 PUBLISH: may be dropped when the client is behind ([MQTT-4.3.1]: at most once).
    droppable: bool,
}

/// The packets the core produced for one connection that its task has not taken yet.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    packets: VecDeque<Queued>,
    bytes: usize,
    droppable: usize,
    /// The core closed the connection: send a close once everything before it is out.
    pub closing: bool,
}

impl Outbox {
    pub fn push(&mut self, bytes: Bytes, droppable: bool) {
        self.bytes += bytes.len();
        self.droppable += usize::from(droppable);
        self.packets.push_back(Queued { bytes, droppable });
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The packets at the front that fit in `room` bytes (always at least one), as one batch.
    fn take(&mut self, room: usize) -> Option<Bytes> {
        let first = self.pop()?;
        if self
            .packets
            .front()
            .is_none_or(|next| first.len() + next.bytes.len() > room)
        {
            return Some(first);
        }
        let mut batch = BytesMut::with_capacity(room.min(self.bytes + first.len()));
        batch.extend_from_slice(&first);
        while let Some(next) = self.packets.front()
            && batch.len() + next.bytes.len() <= room
        {
            let next = self.pop().expect("a front packet");
            batch.extend_from_slice(&next);
        }
        Some(batch.freeze())
    }

    fn pop(&mut self) -> Option<Bytes> {
        let queued = self.packets.pop_front()?;
        self.bytes -= queued.bytes.len();
        self.droppable -= usize::from(queued.droppable);
        Some(queued.bytes)
    }

    /// Drops the oldest QoS 0 PUBLISH; returns its size, or `None` when there is none.
    pub fn drop_oldest_qos0(&mut self) -> Option<usize> {
        if self.droppable == 0 {
            return None;
        }
        let index = self.packets.iter().position(|q| q.droppable)?;
        let queued = self.packets.remove(index)?;
        self.bytes -= queued.bytes.len();
        self.droppable -= 1;
        Some(queued.bytes.len())
    }
}

/// The state a connection's two ends share about its window.
#[derive(Debug, Default)]
struct Window {
    /// Bytes handed to the task and not yet written.
    unwritten: AtomicUsize,
    /// The core task has more for this connection: tell it once below [`LOW_WATER`].
    wants_more: AtomicBool,
}

/// Creates a connection's write queue: the core task's end and the connection task's end.
/// `drained` is where the task says "room again" (one message per [`WriteQueue::fill`] that
/// left packets behind).
pub(crate) fn write_queue(
    id: ConnectionId,
    metrics: Arc<Metrics>,
    drained: mpsc::UnboundedSender<ConnectionId>,
) -> (WriteQueue, WriteQueueReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let window = Arc::new(Window::default());
    (
        WriteQueue {
            tx,
            window: Arc::clone(&window),
        },
        WriteQueueReceiver {
            id,
            rx,
            window,
            metrics,
            drained,
        },
    )
}

/// The core task's end of a connection's write queue.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    tx: mpsc::UnboundedSender<Outgoing>,
    window: Arc<Window>,
}

/// The connection task is gone: nothing more can be written to it.
#[derive(Debug)]
pub(crate) struct TaskGone;

impl WriteQueue {
    /// Bytes waiting for this connection: in its outbox and handed over, not yet written.
    pub fn backlog(&self, outbox: &Outbox) -> usize {
        outbox.bytes() + self.window.unwritten.load(Ordering::Acquire)
    }

    /// Moves packets from `outbox` to the task while its window has room. When packets stay
    /// behind, the task will ask for more (through `drained`) once it has caught up.
    pub fn fill(&self, outbox: &mut Outbox) -> Result<(), TaskGone> {
        loop {
            let unwritten = self.window.unwritten.load(Ordering::Acquire);
            if unwritten < WRITE_WINDOW
                && let Some(bytes) = outbox.take(WRITE_WINDOW - unwritten)
            {
                self.send(Outgoing {
                    bytes,
                    close: false,
                })?;
                continue;
            }
            if outbox.is_empty() {
                return Ok(());
            }
            self.window.wants_more.store(true, Ordering::Release);
            // The task may have caught up between the load above and the store: if it is
            // below the low-water mark now and nobody took the flag, go on filling here.
            if self.window.unwritten.load(Ordering::Acquire) >= LOW_WATER
                || !self.window.wants_more.swap(false, Ordering::AcqRel)
            {
                return Ok(());
            }
        }
    }

    /// Asks the task to close after what it was given.
    pub fn close(&self) -> Result<(), TaskGone> {
        self.send(Outgoing {
            bytes: Bytes::new(),
            close: true,
        })
    }

    fn send(&self, batch: Outgoing) -> Result<(), TaskGone> {
        let len = batch.bytes.len();
        self.window.unwritten.fetch_add(len, Ordering::AcqRel);
        self.tx.send(batch).map_err(|_| {
            self.window.unwritten.fetch_sub(len, Ordering::AcqRel);
            TaskGone
        })
    }
}

/// The connection task's end of its write queue.
pub(crate) struct WriteQueueReceiver {
    id: ConnectionId,
    rx: mpsc::UnboundedReceiver<Outgoing>,
    window: Arc<Window>,
    metrics: Arc<Metrics>,
    drained: mpsc::UnboundedSender<ConnectionId>,
}

impl WriteQueueReceiver {
    /// The next batch and the batches already waiting behind it (up to a close) as one, so
    /// that a subscriber flooded with wills gets them in a few large writes. `None` once the
    /// core task has dropped its end.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let first = self.rx.recv().await?;
        if first.close {
            return Some(first);
        }
        let Ok(mut next) = self.rx.try_recv() else {
            return Some(first);
        };
        let mut bytes = BytesMut::with_capacity(first.bytes.len() + next.bytes.len());
        bytes.extend_from_slice(&first.bytes);
        loop {
            bytes.extend_from_slice(&next.bytes);
            if next.close {
                break;
            }
            match self.rx.try_recv() {
                Ok(batch) => next = batch,
                Err(_) => break,
            }
        }
        Some(Outgoing {
            bytes: bytes.freeze(),
            close: next.close,
        })
    }

    /// `len` bytes taken from the queue were written (or will never be).
    pub fn written(&self, len: usize) {
        self.metrics.unqueued(len);
        let left = self.window.unwritten.fetch_sub(len, Ordering::AcqRel) - len;
        if left < LOW_WATER && self.window.wants_more.swap(false, Ordering::AcqRel) {
            // An error means the core task is gone (shutting down): nobody to tell.
            let _ = self.drained.send(self.id);
        }
    }
}

impl Drop for WriteQueueReceiver {
    fn drop(&mut self) {
        // Batches never taken are never written: take them out of the accounting.
        self.rx.close();
        while let Ok(batch) = self.rx.try_recv() {
            self.metrics.unqueued(batch.bytes.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(packets: &[(&'static [u8], bool)]) -> Outbox {
        let mut outbox = Outbox::default();
        for &(bytes, droppable) in packets {
            outbox.push(Bytes::from_static(bytes), droppable);
        }
        outbox
    }

    #[test]
    fn take_batches_what_fits_and_always_at_least_one_packet() {
        let mut outbox = outbox(&[(b"aaaa", false), (b"bb", true), (b"cccc", false)]);
        assert_eq!(&outbox.take(2).unwrap()[..], b"aaaa");
        assert_eq!(&outbox.take(6).unwrap()[..], b"bbcccc");
        assert!(outbox.take(100).is_none());
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn only_qos0_publishes_are_dropped_oldest_first() {
        let mut outbox = outbox(&[(b"ack", false), (b"q0-old", true), (b"q0-new", true)]);
        assert_eq!(outbox.drop_oldest_qos0(), Some(6));
        assert_eq!(outbox.drop_oldest_qos0(), Some(6));
        assert_eq!(outbox.drop_oldest_qos0(), None);
        assert_eq!(&outbox.take(100).unwrap()[..], b"ack");
    }

    #[test]
    fn the_task_asks_for_more_once_below_the_low_water_mark() {
        let (drained_tx, mut drained_rx) = mpsc::unbounded_channel();
        let (queue, mut receiver) = write_queue(7, Arc::default(), drained_tx);
        let mut outbox = Outbox::default();
        for _ in 0..3 {
            outbox.push(Bytes::from(vec![0; WRITE_WINDOW / 2]), false);
        }
        queue.fill(&mut outbox).unwrap();
        // one window handed over, one packet left behind
        assert_eq!(outbox.bytes(), WRITE_WINDOW / 2);
        let batch = receiver.rx.try_recv().unwrap();
        assert_eq!(batch.bytes.len(), WRITE_WINDOW);
        assert!(drained_rx.try_recv().is_err());
        receiver.written(batch.bytes.len());
        assert_eq!(drained_rx.try_recv().unwrap(), 7);
        queue.fill(&mut outbox).unwrap();
        assert!(outbox.is_empty());
    }
}
