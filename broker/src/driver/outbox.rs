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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc};

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
        if self.packets.is_empty() {
            // an idle connection keeps no queue (it grows to 4 slots, 160 B, at the CONNACK)
            self.packets = VecDeque::new();
        }
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

/// What a connection's two ends share: its window, and the batches handed over and not yet
/// taken. A mutex-guarded slot and a [`Notify`] rather than a channel: an idle connection
/// holds a few dozen bytes here, where an mpsc channel allocates a block of 32 slots
/// (~1.3 KiB) up front, and batches handed over before the task wakes are gathered into one
/// write as they arrive.
#[derive(Debug, Default)]
struct Shared {
    /// Bytes handed to the task and not yet written.
    unwritten: AtomicUsize,
    /// The core task has more for this connection: tell it once below [`LOW_WATER`].
    wants_more: AtomicBool,
    handoff: Mutex<Handoff>,
    /// Wakes the task when a batch, a close or the core task's end was handed over.
    ready: Notify,
}

/// Handed over by the core task, not yet taken by the connection task.
#[derive(Debug, Default)]
struct Handoff {
    /// The first batch, passed on as it is when nothing follows it.
    first: Option<Bytes>,
    /// Once a second batch arrives: everything so far, gathered for one write.
    gathered: BytesMut,
    close: bool,
    /// The core task dropped its end (shutting down, or it gave up on this peer).
    core_gone: bool,
    /// The connection task is gone: nothing more can be written to it.
    task_gone: bool,
}

impl Handoff {
    fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if self.first.is_none() && self.gathered.is_empty() {
            self.first = Some(bytes);
            return;
        }
        if let Some(first) = self.first.take() {
            self.gathered.reserve(first.len() + bytes.len());
            self.gathered.extend_from_slice(&first);
        }
        self.gathered.extend_from_slice(&bytes);
    }

    fn take_bytes(&mut self) -> Bytes {
        match self.first.take() {
            Some(first) => first,
            None => std::mem::take(&mut self.gathered).freeze(),
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.gathered.is_empty()
    }
}

/// Creates a connection's write queue: the core task's end and the connection task's end.
/// `drained` is where the task says "room again" (one message per [`WriteQueue::fill`] that
/// left packets behind).
pub(crate) fn write_queue(
    id: ConnectionId,
    metrics: Arc<Metrics>,
    drained: mpsc::UnboundedSender<ConnectionId>,
) -> (WriteQueue, WriteQueueReceiver) {
    let shared = Arc::new(Shared::default());
    (
        WriteQueue {
            shared: Arc::clone(&shared),
        },
        WriteQueueReceiver {
            id,
            shared,
            metrics,
            drained,
        },
    )
}

/// The core task's end of a connection's write queue.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    shared: Arc<Shared>,
}

/// The connection task is gone: nothing more can be written to it.
#[derive(Debug)]
pub(crate) struct TaskGone;

impl WriteQueue {
    /// Bytes waiting for this connection: in its outbox and handed over, not yet written.
    pub fn backlog(&self, outbox: &Outbox) -> usize {
        outbox.bytes() + self.shared.unwritten.load(Ordering::Acquire)
    }

    /// Moves packets from `outbox` to the task while its window has room. When packets stay
    /// behind, the task will ask for more (through `drained`) once it has caught up.
    pub fn fill(&self, outbox: &mut Outbox) -> Result<(), TaskGone> {
        let window = &*self.shared;
        loop {
            let unwritten = window.unwritten.load(Ordering::Acquire);
            if unwritten < WRITE_WINDOW
                && let Some(bytes) = outbox.take(WRITE_WINDOW - unwritten)
            {
                self.send(bytes, false)?;
                continue;
            }
            if outbox.is_empty() {
                return Ok(());
            }
            window.wants_more.store(true, Ordering::Release);
            // The task may have caught up between the load above and the store: if it is
            // below the low-water mark now and nobody took the flag, go on filling here.
            if window.unwritten.load(Ordering::Acquire) >= LOW_WATER
                || !window.wants_more.swap(false, Ordering::AcqRel)
            {
                return Ok(());
            }
        }
    }

    /// Asks the task to close after what it was given.
    pub fn close(&self) -> Result<(), TaskGone> {
        self.send(Bytes::new(), true)
    }

    fn send(&self, bytes: Bytes, close: bool) -> Result<(), TaskGone> {
        let len = bytes.len();
        {
            let mut handoff = self.shared.handoff.lock().expect("handoff lock");
            if handoff.task_gone {
                return Err(TaskGone);
            }
            self.shared.unwritten.fetch_add(len, Ordering::AcqRel);
            handoff.push(bytes);
            handoff.close |= close;
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Drop for WriteQueue {
    fn drop(&mut self) {
        self.shared.handoff.lock().expect("handoff lock").core_gone = true;
        self.shared.ready.notify_one();
    }
}

/// The connection task's end of its write queue.
pub(crate) struct WriteQueueReceiver {
    id: ConnectionId,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    drained: mpsc::UnboundedSender<ConnectionId>,
}

impl WriteQueueReceiver {
    /// Everything handed over since the last call (up to and with a close) as one batch, so
    /// that a subscriber flooded with wills gets them in a few large writes. `None` once the
    /// core task has dropped its end and nothing is left. Cancel-safe: nothing is taken
    /// until it is returned.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        loop {
            {
                let mut handoff = self.shared.handoff.lock().expect("handoff lock");
                if !handoff.is_empty() || handoff.close {
                    let close = std::mem::take(&mut handoff.close);
                    let bytes = handoff.take_bytes();
                    return Some(Outgoing { bytes, close });
                }
                if handoff.core_gone {
                    return None;
                }
            }
            self.shared.ready.notified().await;
        }
    }

    /// `len` bytes taken from the queue were written (or will never be).
    pub fn written(&self, len: usize) {
        self.metrics.unqueued(len);
        let window = &*self.shared;
        let left = window.unwritten.fetch_sub(len, Ordering::AcqRel) - len;
        if left < LOW_WATER && window.wants_more.swap(false, Ordering::AcqRel) {
            // An error means the core task is gone (shutting down): nobody to tell.
            let _ = self.drained.send(self.id);
        }
    }
}

impl Drop for WriteQueueReceiver {
    fn drop(&mut self) {
        // Batches never taken are never written: take them out of the accounting.
        let mut handoff = self.shared.handoff.lock().expect("handoff lock");
        handoff.task_gone = true;
        let untaken = handoff.take_bytes();
        self.metrics.unqueued(untaken.len());
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
        let (queue, receiver) = write_queue(7, Arc::default(), drained_tx);
        let mut outbox = Outbox::default();
        for _ in 0..3 {
            outbox.push(Bytes::from(vec![0; WRITE_WINDOW / 2]), false);
        }
        queue.fill(&mut outbox).unwrap();
        // one window handed over, one packet left behind
        assert_eq!(outbox.bytes(), WRITE_WINDOW / 2);
        let batch = receiver.shared.handoff.lock().unwrap().take_bytes();
        assert_eq!(batch.len(), WRITE_WINDOW);
        assert!(drained_rx.try_recv().is_err());
        receiver.written(batch.len());
        assert_eq!(drained_rx.try_recv().unwrap(), 7);
        queue.fill(&mut outbox).unwrap();
        assert!(outbox.is_empty());
    }
}
