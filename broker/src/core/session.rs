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
    /// QoS 1/2 deliveries waiting for the connection or for room in the client's window.
    pub queue: VecDeque<Delivery>,
    /// Sent and not yet fully acknowledged, in send order.
    pub inflight: VecDeque<Inflight>,
    /// Packet ids of inbound QoS 2 PUBLISH received but not yet released by PUBREL.
    pub inbound_qos2: BTreeSet<u16>,
    /// Largest number of unacknowledged QoS 1/2 PUBLISH the client accepts (Receive Maximum).
    pub receive_maximum: u16,
    /// Largest packet the client accepts (Maximum Packet Size), if it set one.
    pub maximum_packet_size: Option<u32>,
    last_packet_id: u16,
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
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            inbound_qos2: BTreeSet::new(),
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            last_packet_id: 0,
        }
    }

    /// A non-zero packet id not used by any message in flight ([MQTT-2.2.1-4]).
    /// The caller guarantees a free one exists (the window is at most 65,535).
    pub fn next_packet_id(&mut self) -> u16 {
        loop {
            self.last_packet_id = self.last_packet_id.checked_add(1).unwrap_or(1);
            let id = self.last_packet_id;
            if !self.inflight.iter().any(|f| f.packet_id == id) {
                return id;
            }
        }
    }

    pub fn window_open(&self) -> bool {
        self.inflight.len() < usize::from(self.receive_maximum)
    }

    pub fn inflight_mut(&mut self, packet_id: u16) -> Option<&mut Inflight> {
        self.inflight.iter_mut().find(|f| f.packet_id == packet_id)
    }

    pub fn remove_inflight(&mut self, packet_id: u16, awaiting: Awaiting) -> bool {
        match self
            .inflight
            .iter()
            .position(|f| f.packet_id == packet_id && f.awaiting == awaiting)
        {
            Some(index) => {
                self.inflight.remove(index);
                true
            }
            None => false,
        }
    }
}
