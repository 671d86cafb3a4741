//! What waits to be written to one client.
//!
//! The core task never waits on a connection, so whatever the core produces for a client is
//! encoded at once and kept here, in the connection's [`Outbox`]. From there the driver takes
//! one batch of at most [`WRITE_BATCH`] bytes at a time and writes it as the socket accepts
//! it. So a client that reads receives any amount, however it arrives (a retained set, a
//! resumed queue, pipelined publishes), in writes of a bounded size, and the bytes that pile
//! up are the ones behind a client that is *not* reading. Those are bounded: past
//! `max_queued_bytes` for the client, or past the memory budget for all clients, the oldest
//! QoS 0 PUBLISH waiting for it are dropped (counted in [`super::Metrics`]). QoS 1/2 PUBLISH
//! and acks are never dropped here: the core's in-flight window bounds them, and the core
//! believes them sent.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// The most bytes taken from an outbox for one write (unless its first packet is larger).
pub(crate) const WRITE_BATCH: usize = 256 * 1024;

/// One encoded packet waiting for its client.
#[derive(Debug)]
struct Queued {
    bytes: Bytes,
    /// A QoS 0 PUBLISH: may be dropped when the client is behind ([MQTT-4.3.1]: at most once).
    droppable: bool,
}

/// The packets the core produced for one connection that are not being written yet.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    packets: VecDeque<Queued>,
    bytes: usize,
    droppable: usize,
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
    pub fn take(&mut self, room: usize) -> Option<Bytes> {
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

    /// Forgets every packet (the connection cannot be written to any more).
    pub fn discard(&mut self) {
        self.packets = VecDeque::new();
        self.bytes = 0;
        self.droppable = 0;
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
}
