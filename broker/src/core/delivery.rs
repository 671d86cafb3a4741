//! How Application Messages, wills included, travel from their publisher to every matching
//! session: the message itself, fan-out, QoS downgrade, queueing, the client's Receive
//! Maximum window, redelivery, and the PUBLISH each subscriber gets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::warn;

use crate::log_limit::DropLog;

use crate::codec::{Ack, MessageProperties, Packet, Protocol, Publish, QoS, encoded_len};

use super::moment::Moment;
use super::session::Awaiting;
use super::topic;
use super::{Broker, ClientId, ConnectionId};

/// An Application Message inside the broker, shared by every subscriber it goes to.
#[derive(Debug)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Forwarded unaltered, except Message Expiry which is recomputed on each send.
    pub properties: MessageProperties,
    /// When the Message Expiry Interval runs out.
    pub expires_at: Option<Moment>,
    /// Client id of the publisher (for No Local); a will counts as published by its client
    /// ({A9}).
    pub origin: ClientId,
}

impl Message {
    /// The message `origin` publishes at `now`, from a PUBLISH as it arrived or from a will
    /// as it is published: every message a subscriber gets is built here. Message Expiry
    /// counts from `now` ([MQTT-3.3.2-6]; for a will, from publication, {A12}).
    pub fn new(
        now: Moment,
        origin: &ClientId,
        topic: String,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: MessageProperties,
    ) -> Arc<Message> {
        Arc::new(Message {
            expires_at: properties
                .message_expiry_interval
                .map(|secs| now + Duration::from_secs(u64::from(secs))),
            topic,
            payload,
            qos,
            retain,
            properties,
            origin: ClientId::clone(origin),
        })
    }

    pub fn is_expired(&self, now: Moment) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The Message Expiry Interval to send at `now`: what is left of it, rounded up so that
    /// a message forwarded at once keeps its value ([MQTT-3.3.2-6]).
    pub fn remaining_expiry(&self, now: Moment) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at - now;
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}

/// One message as it will go to one session.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub message: Arc<Message>,
    /// min(message QoS, granted QoS) ([MQTT-3.8.4-8]).
    pub qos: QoS,
    /// The RETAIN flag as sent ([MQTT-3.3.1-12], [MQTT-3.3.1-13]).
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
}

impl Delivery {
    /// What it counts against `max_queued_bytes`: its payload and topic.
    pub fn size(&self) -> usize {
        self.message.payload.len() + self.message.topic.len()
    }
}

/// The bytes all sessions hold in their queues and windows, and what was dropped to keep
/// each within `max_queued_messages` and `max_queued_bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Payload and topic bytes of every queued and in-flight QoS 1/2 message.
    pub queued_bytes: usize,
    /// The most one session ever held.
    pub peak_session_bytes: usize,
    /// QoS 1/2 messages dropped from a full session.
    pub dropped_messages: u64,
}

/// [`QueueStats`] kept up to date, and the drops logged as counts.
#[derive(Debug)]
pub(super) struct QueueAccounting {
    pub stats: QueueStats,
    log: DropLog,
}

impl Default for QueueAccounting {
    fn default() -> Self {
        QueueAccounting {
            stats: QueueStats::default(),
            log: DropLog::new(
                "QoS 1/2 messages dropped from full session queues (max_queued_messages or max_queued_bytes)",
            ),
        }
    }
}

impl QueueAccounting {
    /// `size` bytes joined a session that now holds `session_bytes`.
    fn queued(&mut self, size: usize, session_bytes: usize) {
        self.stats.queued_bytes += size;
        self.stats.peak_session_bytes = self.stats.peak_session_bytes.max(session_bytes);
    }

    /// `size` bytes left a session (delivered, expired, or the session ended).
    pub fn released(&mut self, size: usize) {
        self.stats.queued_bytes -= size;
    }

    /// A message of `size` queued bytes (0: it was never queued) was dropped.
    fn dropped(&mut self, now: Moment, size: usize) {
        self.released(size);
        self.stats.dropped_messages += 1;
        self.log.dropped(now.into());
    }
}

/// A member of a shared subscription group that could take a message: its client id, the
/// delivery it would get, and whether it is connected. Keyed by (group, filter).
type SharedCandidate<'a> = (&'a ClientId, Delivery, bool);

impl Broker {
    /// Delivers a message to every session with a matching subscription, one copy per
    /// session ([MQTT-3.3.4-2]) and one member per shared subscription group.
    pub(super) fn route(&mut self, now: Moment, message: &Arc<Message>) {
        if message.retain && self.config.retain_available {
            self.retained.store(message);
        }
        let mut deliveries: Vec<(ClientId, Delivery)> = Vec::new();
        let mut shared: BTreeMap<(&str, &str), Vec<SharedCandidate>> = BTreeMap::new();
        // client ids in order, each session's matching subscriptions in key order: the same
        // order as walking every session, at the cost of the matches only
        for (client_id, keys) in self.subscribers.matching(&message.topic) {
            let Some((client_id, session)) = self.sessions.get_key_value(client_id) else {
                continue;
            };
            let mut direct: Option<Delivery> = None;
            for subscription in keys
                .into_iter()
                .filter_map(|key| session.subscriptions.get(key))
            {
                debug_assert!(topic::matches(&subscription.filter.filter, &message.topic));
                let is_v5 = session.protocol == Protocol::V5;
                let delivery = Delivery {
                    message: Arc::clone(message),
                    qos: message.qos.min(subscription.qos),
                    // [MQTT-3.3.1-12] [MQTT-3.3.1-13]; 3.1.1 forwards with RETAIN 0
                    // ([MQTT-3.3.1-9] of 3.1.1)
                    retain: is_v5 && subscription.retain_as_published && message.retain,
                    subscription_ids: subscription.subscription_id.into_iter().collect(),
                };
                if let Some(group) = &subscription.filter.share_group {
                    let connected = session.connection.is_some();
                    shared
                        .entry((group.as_str(), subscription.filter.filter.as_str()))
                        .or_default()
                        .push((client_id, delivery, connected));
                    continue;
                }
                // [MQTT-3.8.3-3] No Local: not back to the publishing client (a will counts
                // as published by its client, {A9})
                if subscription.no_local && message.origin == *client_id {
                    continue;
                }
                direct = Some(match direct {
                    None => delivery,
                    Some(mut merged) => {
                        // overlapping subscriptions: the highest QoS, every identifier
                        // ([MQTT-3.3.4-3] [MQTT-3.3.4-5])
                        merged.qos = merged.qos.max(delivery.qos);
                        merged.retain |= delivery.retain;
                        merged.subscription_ids.extend(delivery.subscription_ids);
                        merged
                    }
                });
            }
            if let Some(delivery) = direct {
                deliveries.push((ClientId::clone(client_id), delivery));
            }
        }
        for members in shared.into_values() {
            // one member per group ({W5-SHARED}): round robin over connected members,
            // falling back to all members when none is connected
            let connected: Vec<_> = members.iter().filter(|(_, _, c)| *c).collect();
            let pool: Vec<_> = if connected.is_empty() {
                members.iter().collect()
            } else {
                connected
            };
            let (client_id, delivery, _) = pool[(self.shared_turn % pool.len() as u64) as usize];
            deliveries.push((ClientId::clone(client_id), delivery.clone()));
        }
        if !deliveries.is_empty() {
            self.shared_turn = self.shared_turn.wrapping_add(1);
        }
        for (client_id, delivery) in deliveries {
            self.deliver(now, &client_id, delivery);
        }
    }

    /// Hands one delivery to a session: QoS 0 goes out now or nowhere (QoS 0 is not queued
    /// for offline sessions, {A16}); QoS 1/2 wait in the session queue for the connection and
    /// for room in the client's Receive Maximum window ([MQTT-3.3.4-9], [MQTT-4.5.0-1]).
    ///
    /// The queue holds at most `max_queued_messages`, and queue plus window at most
    /// `max_queued_bytes`: to make room the oldest waiting message is dropped; when the
    /// messages in flight alone fill the bytes, the new one is. Either way it is counted.
    pub(super) fn deliver(&mut self, now: Moment, client_id: &str, delivery: Delivery) {
        let max_messages = self.config.max_queued_messages;
        let max_bytes = self.config.max_queued_bytes;
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if delivery.qos == QoS::AtMostOnce {
            if let Some(id) = session.connection {
                self.send_publish(now, id, client_id, delivery, None);
            }
            return;
        }
        let size = delivery.size();
        let flow = session.flow_mut();
        while flow.queue.len() >= max_messages
            || (flow.queued_bytes + size > max_bytes && !flow.queue.is_empty())
        {
            let Some(dropped) = flow.queue.pop_front() else {
                break;
            };
            flow.queued_bytes -= dropped.size();
            self.queues.dropped(now, dropped.size());
        }
        if flow.queue.len() >= max_messages || flow.queued_bytes + size > max_bytes {
            self.queues.dropped(now, 0);
            return;
        }
        flow.queue.push_back(delivery);
        flow.queued_bytes += size;
        self.queues.queued(size, flow.queued_bytes);
        self.pump(now, client_id);
    }

    /// Sends queued QoS 1/2 deliveries while the session is connected and its window open.
    pub(super) fn pump(&mut self, now: Moment, client_id: &str) {
        loop {
            let Some(session) = self.sessions.get_mut(client_id) else {
                return;
            };
            let Some(id) = session.connection else {
                return;
            };
            if !session.window_open() {
                return;
            }
            let Some(flow) = session.flow.as_deref_mut() else {
                return;
            };
            let Some(delivery) = flow.queue.pop_front() else {
                return;
            };
            // [MQTT-3.3.2-5] an expired message whose delivery has not started is dropped
            if delivery.message.is_expired(now) {
                flow.queued_bytes -= delivery.size();
                self.queues.released(delivery.size());
                continue;
            }
            let awaiting = match delivery.qos {
                QoS::ExactlyOnce => Awaiting::PubRec,
                _ => Awaiting::PubAck,
            };
            let Some(packet_id) = flow.inflight.push(delivery.clone(), awaiting) else {
                // all 65,535 ids in flight (only with max_inflight 65,535): wait for an ack
                flow.queue.push_front(delivery);
                return;
            };
            if !self.send_publish(now, id, client_id, delivery, Some((packet_id, false))) {
                self.acknowledged(client_id, packet_id, awaiting);
            }
        }
    }

    /// The client is done with the message in flight under `packet_id` (acked it, refused
    /// it, or it was never sendable): it leaves the window and its bytes are released.
    pub(super) fn acknowledged(&mut self, client_id: &str, packet_id: u16, awaiting: Awaiting) {
        let Some(flow) = self
            .sessions
            .get_mut(client_id)
            .and_then(|session| session.flow.as_deref_mut())
        else {
            return;
        };
        if let Some(done) = flow.inflight.remove(packet_id, awaiting) {
            flow.queued_bytes -= done.delivery.size();
            self.queues.released(done.delivery.size());
        }
    }

    /// On a resumed session: resend unacknowledged PUBLISH with DUP=1 and their original
    /// packet ids, and PUBREL for released ones, in the order first sent ([MQTT-4.4.0-1],
    /// [MQTT-4.6.0-1]), then queued messages.
    pub(super) fn resume_deliveries(&mut self, now: Moment, client_id: &str) {
        let Some(session) = self.sessions.get(client_id) else {
            return;
        };
        let Some(id) = session.connection else {
            return;
        };
        let resends: Vec<_> = session
            .flow
            .iter()
            .flat_map(|flow| flow.inflight.in_send_order())
            .map(|f| (f.packet_id, f.awaiting, f.delivery.clone()))
            .collect();
        for (packet_id, awaiting, delivery) in resends {
            match awaiting {
                Awaiting::PubComp => self.send(id, Packet::PubRel(Ack::success(packet_id))),
                _ => {
                    self.send_publish(now, id, client_id, delivery, Some((packet_id, true)));
                }
            }
        }
        self.pump(now, client_id);
    }

    /// Encodes one delivery as a PUBLISH to connection `id`. Returns false when it was
    /// discarded because it exceeds the client's Maximum Packet Size, which counts as sent
    /// ([MQTT-3.1.2-24] [MQTT-3.1.2-25]).
    fn send_publish(
        &mut self,
        now: Moment,
        id: ConnectionId,
        client_id: &str,
        delivery: Delivery,
        packet_id: Option<(u16, bool)>,
    ) -> bool {
        let message = &delivery.message;
        let mut properties = message.properties.clone();
        properties.message_expiry_interval = message.remaining_expiry(now);
        let publish = Publish {
            // [MQTT-3.3.1-1] [MQTT-3.3.1-3] DUP only on redelivery
            dup: packet_id.is_some_and(|(_, dup)| dup),
            qos: delivery.qos,
            retain: delivery.retain,
            topic: message.topic.clone(),
            packet_id: packet_id.map(|(id, _)| id),
            payload: message.payload.clone(),
            properties,
            // [MQTT-3.1.2-26] [MQTT-3.1.2-27] the broker never sends Topic Aliases
            topic_alias: None,
            subscription_identifiers: delivery.subscription_ids,
        };
        let packet = Packet::Publish(publish);
        let limit = self
            .sessions
            .get(client_id)
            .and_then(|s| s.maximum_packet_size);
        let protocol = self.connections.get(&id).and_then(|c| c.protocol);
        if let (Some(limit), Some(protocol)) = (limit, protocol) {
            let size = encoded_len(&packet, protocol).unwrap_or(usize::MAX);
            if size > limit as usize {
                warn!(
                    client_id,
                    size, limit, "PUBLISH exceeds the client's Maximum Packet Size: discarded"
                );
                return false;
            }
        }
        self.send(id, packet);
        true
    }
}
