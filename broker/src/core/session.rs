//! Session state ([MQTT-4.1.0-1]): subscriptions, the will, and messages on their way to the
//! client (queued, or in flight awaiting acknowledgement).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::codec::{Protocol, QoS};

use super::ConnectionId;
use super::delivery::Delivery;
use super::timer::TimerKey;
use super::topic::ParsedFilter;
use super::will::WillState;

/// Session Expiry Interval meaning "never expires" (§3.1.2.11.2).
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// What an in-flight message waits for from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[expect(
    clippy::enum_variant_names,
    reason = "each variant is the packet awaited"
)]
pub enum Awaiting {
    /// QoS 1 PUBLISH sent.
    PubAck,
    /// QoS 2 PUBLISH sent.
    PubRec,
    /// QoS 2 PUBREL sent.
    PubComp,
}

#[derive(Debug)]
pub struct Inflight {
    pub packet_id: u16,
    pub delivery: Delivery,
    pub awaiting: Awaiting,
    /// Send order, for redelivery in the original order ([MQTT-4.6.0-1]).
    sent: u64,
}

/// The messages sent to a client and not yet fully acknowledged, by packet id.
///
/// Every operation is O(log n) in the messages in flight, whatever order the client acks
/// them in: the ids in use are also kept as merged intervals, so the next free id is one
/// lookup away even when 65,534 ids around it are taken ([MQTT-2.2.1-4]).
#[derive(Debug, Default)]
pub struct InflightWindow {
    by_id: BTreeMap<u16, Inflight>,
    /// The ids in use as `start -> end` (inclusive), merged, never adjacent.
    used: BTreeMap<u16, u16>,
    last_id: u16,
    sent: u64,
}

impl InflightWindow {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Records `delivery` as sent with a new packet id, and returns the id: the first free
    /// one after the last id handed out, wrapping from 65,535 to 1. `None` when all 65,535
    /// are in flight.
    pub fn push(&mut self, delivery: Delivery, awaiting: Awaiting) -> Option<u16> {
        let after_last = self.last_id.checked_add(1).unwrap_or(1);
        let packet_id = self.free_from(after_last).or_else(|| self.free_from(1))?;
        self.last_id = packet_id;
        self.mark_used(packet_id);
        self.sent += 1;
        let inflight = Inflight {
            packet_id,
            delivery,
            awaiting,
            sent: self.sent,
        };
        self.by_id.insert(packet_id, inflight);
        Some(packet_id)
    }

    pub fn get_mut(&mut self, packet_id: u16) -> Option<&mut Inflight> {
        self.by_id.get_mut(&packet_id)
    }

    /// Removes the message with `packet_id` if it is waiting for `awaiting`.
    pub fn remove(&mut self, packet_id: u16, awaiting: Awaiting) -> Option<Inflight> {
        if self.by_id.get(&packet_id)?.awaiting != awaiting {
            return None;
        }
        self.mark_free(packet_id);
        self.by_id.remove(&packet_id)
    }

    /// Every message in flight, in the order it was first sent.
    pub fn in_send_order(&self) -> Vec<&Inflight> {
        let mut all: Vec<&Inflight> = self.by_id.values().collect();
        all.sort_by_key(|inflight| inflight.sent);
        all
    }

    /// The interval of used ids that holds `id`, if any.
    fn used_interval(&self, id: u16) -> Option<(u16, u16)> {
        let (&start, &end) = self.used.range(..=id).next_back()?;
        (id <= end).then_some((start, end))
    }

    /// The first free id at or after `from` (no wrapping).
    fn free_from(&self, from: u16) -> Option<u16> {
        match self.used_interval(from) {
            // intervals are merged, so the id after one is free (or past 65,535)
            Some((_, end)) => end.checked_add(1),
            None => Some(from),
        }
    }

    fn mark_used(&mut self, id: u16) {
        let mut start = id;
        let mut end = id;
        if let Some(before) = id.checked_sub(1)
            && let Some((left, _)) = self.used_interval(before)
        {
            self.used.remove(&left);
            start = left;
        }
        if let Some(after) = id.checked_add(1)
            && let Some(right_end) = self.used.remove(&after)
        {
            end = right_end;
        }
        self.used.insert(start, end);
    }

    fn mark_free(&mut self, id: u16) {
        let Some((start, end)) = self.used_interval(id) else {
            return;
        };
        self.used.remove(&start);
        if start < id {
            self.used.insert(start, id - 1);
        }
        if id < end {
            self.used.insert(id + 1, end);
        }
    }

    #[cfg(test)]
    fn used_intervals(&self) -> Vec<(u16, u16)> {
        self.used.iter().map(|(&s, &e)| (s, e)).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub filter: ParsedFilter,
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub subscription_id: Option<u32>,
}

#[derive(Debug)]
pub struct Session {
    pub protocol: Protocol,
    pub connection: Option<ConnectionId>,
    /// Seconds the session outlives its connection; 0 ends it at close.
    pub expiry_interval: u32,
    pub expiry_timer: Option<TimerKey>,
    /// Keyed by the filter as the client wrote it (a new SUBSCRIBE to the same filter
    /// replaces the old one, [MQTT-3.8.4-3]).
    pub subscriptions: BTreeMap<String, Subscription>,
    pub will: WillState,
    /// Largest number of unacknowledged QoS 1/2 PUBLISH sent to the client at once: its
    /// Receive Maximum, at most the broker's `max_inflight`.
    pub receive_maximum: u16,
    /// Largest packet the client accepts (Maximum Packet Size), if it set one.
    pub maximum_packet_size: Option<u32>,
    /// Allocated with the session's first QoS 1/2 message: many sessions (a device that
    /// only holds a will) never have one.
    pub flow: Option<Box<MessageFlow>>,
}

/// A session's QoS 1/2 messages, both ways.
#[derive(Debug, Default)]
pub struct MessageFlow {
    /// QoS 1/2 deliveries waiting for the connection or for room in the client's window.
    pub queue: VecDeque<Delivery>,
    /// Sent and not yet fully acknowledged.
    pub inflight: InflightWindow,
    /// Bytes of the messages in `queue` and `inflight` (payload and topic), held against
    /// `max_queued_bytes`.
    pub queued_bytes: usize,
    /// Packet ids of inbound QoS 2 PUBLISH received but not yet released by PUBREL.
    pub inbound_qos2: BTreeSet<u16>,
}

impl Session {
    pub fn new(protocol: Protocol) -> Session {
        Session {
            protocol,
            connection: None,
            expiry_interval: 0,
            expiry_timer: None,
            subscriptions: BTreeMap::new(),
            will: WillState::None,
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            flow: None,
        }
    }

    /// The session's QoS 1/2 messages, allocated now if this is the first.
    pub fn flow_mut(&mut self) -> &mut MessageFlow {
        self.flow.get_or_insert_default()
    }

    /// Bytes held against `max_queued_bytes`.
    pub fn queued_bytes(&self) -> usize {
        self.flow.as_ref().map_or(0, |flow| flow.queued_bytes)
    }

    pub fn window_open(&self) -> bool {
        let inflight = self.flow.as_ref().map_or(0, |flow| flow.inflight.len());
        inflight < usize::from(self.receive_maximum)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::core::delivery::Message;

    fn delivery() -> Delivery {
        let message = Message::new(
            Duration::ZERO.into(),
            &"origin".into(),
            "t".into(),
            Bytes::new(),
            QoS::AtLeastOnce,
            false,
            Default::default(),
        );
        Delivery {
            message: Arc::clone(&message),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: vec![],
        }
    }

    #[test]
    fn ids_are_handed_out_in_turn_and_reused_after_a_wrap() {
        let mut window = InflightWindow::default();
        for expected in 1..=u16::MAX {
            assert_eq!(window.push(delivery(), Awaiting::PubAck), Some(expected));
        }
        assert_eq!(window.used_intervals(), [(1, u16::MAX)]);
        assert_eq!(window.push(delivery(), Awaiting::PubAck), None);
        // acked just behind the last id: that one is next, found in one lookup
        assert!(window.remove(u16::MAX - 1, Awaiting::PubAck).is_some());
        assert!(window.remove(7, Awaiting::PubComp).is_none());
        assert!(window.remove(7, Awaiting::PubAck).is_some());
        assert_eq!(
            window.used_intervals(),
            [(1, 6), (8, u16::MAX - 2), (u16::MAX, u16::MAX)]
        );
        assert_eq!(window.push(delivery(), Awaiting::PubAck), Some(7));
        assert_eq!(
            window.push(delivery(), Awaiting::PubAck),
            Some(u16::MAX - 1)
        );
        assert_eq!(window.used_intervals(), [(1, u16::MAX)]);
        assert_eq!(window.len(), usize::from(u16::MAX));
    }

    #[test]
    fn redelivery_order_is_send_order() {
        let mut window = InflightWindow::default();
        for _ in 0..3 {
            window.push(delivery(), Awaiting::PubAck);
        }
        window.remove(1, Awaiting::PubAck);
        assert_eq!(window.push(delivery(), Awaiting::PubAck), Some(4));
        window.remove(2, Awaiting::PubAck);
        let order: Vec<u16> = window.in_send_order().iter().map(|f| f.packet_id).collect();
        assert_eq!(order, [3, 4]);
    }
}
