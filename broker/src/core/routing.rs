//! Packets from connected clients, and the way Application Messages (wills included) travel
//! from a publisher to every matching session: fan-out, QoS downgrade, queueing, the
//! client's Receive Maximum window, acknowledgements and redelivery.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::codec::{
    Ack, Disconnect, LastWill, Packet, Protocol, Publish, QoS, encoded_len, reason,
};

use super::session::{Delivery, Inflight, InflightState, Message};
use super::topic;
use super::will::CloseCause;
use super::{Broker, ConnectionId};

/// A member of a shared subscription group that could take a message: its client id, the
/// delivery it would get, and whether it is connected. Keyed by (group, filter).
type SharedCandidate<'a> = (&'a str, Delivery, bool);

impl Broker {
    pub(super) fn handle_active_packet(
        &mut self,
        now: Duration,
        id: ConnectionId,
        client_id: &str,
        packet: Packet,
    ) {
        match packet {
            Packet::Publish(publish) => self.handle_publish(now, id, client_id, publish),
            Packet::PubAck(ack) => {
                if let Some(session) = self.sessions.get_mut(client_id) {
                    session.remove_inflight(ack.packet_id, InflightState::AwaitPubAck);
                }
                self.pump(now, client_id);
            }
            Packet::PubRec(ack) => self.handle_pubrec(now, id, client_id, ack),
            Packet::PubRel(ack) => {
                let released = self
                    .sessions
                    .get_mut(client_id)
                    .is_some_and(|s| s.inbound_qos2.remove(&ack.packet_id));
                let code = if released {
                    reason::SUCCESS
                } else {
                    reason::PACKET_IDENTIFIER_NOT_FOUND
                };
                self.send(
                    id,
                    Packet::PubComp(Ack {
                        packet_id: ack.packet_id,
                        code,
                    }),
                );
            }
            Packet::PubComp(ack) => {
                if let Some(session) = self.sessions.get_mut(client_id) {
                    session.remove_inflight(ack.packet_id, InflightState::AwaitPubComp);
                }
                self.pump(now, client_id);
            }
            Packet::Subscribe(subscribe) => self.handle_subscribe(now, id, client_id, subscribe),
            Packet::Unsubscribe(unsubscribe) => self.handle_unsubscribe(id, client_id, unsubscribe),
            Packet::PingReq => self.send(id, Packet::PingResp),
            Packet::Disconnect(disconnect) => {
                self.handle_disconnect(now, id, client_id, disconnect)
            }
            // [MQTT-3.1.0-2] a second CONNECT is a Protocol Error; so is any packet only a
            // server may send.
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => {
                info!(client_id, "protocol error: unexpected packet from client");
                self.close_by_server(now, id, reason::PROTOCOL_ERROR);
            }
        }
    }

    fn handle_disconnect(
        &mut self,
        now: Duration,
        id: ConnectionId,
        client_id: &str,
        disconnect: Disconnect,
    ) {
        let protocol = self.connections.get(&id).and_then(|c| c.protocol);
        if protocol == Some(Protocol::V311) {
            // [MQTT-3.14.4-3] (3.1.1) any DISCONNECT discards the will
            self.end_connection(now, id, CloseCause::NormalDisconnect);
            return;
        }
        if let Some(expiry) = disconnect.session_expiry_interval {
            let zero_at_connect = self
                .connections
                .get(&id)
                .is_some_and(|c| c.connected_with_zero_expiry);
            if zero_at_connect && expiry != 0 {
                // §3.14.2.2.2: not a valid DISCONNECT; the will stays ({W5-DISC-SEI-PE}, A11)
                info!(
                    client_id,
                    "protocol error: DISCONNECT sets session expiry after CONNECT set 0"
                );
                self.close_by_server(now, id, reason::PROTOCOL_ERROR);
                return;
            }
            let capped = self
                .config
                .max_session_expiry
                .map_or(expiry, |max| expiry.min(max));
            if let Some(session) = self.sessions.get_mut(client_id) {
                // {W5-DISC-SEI-0} {W5-DISC-SEI-UP} DISCONNECT replaces the session expiry
                session.expiry_interval = capped;
            }
        }
        let cause = match disconnect.code {
            reason::NORMAL_DISCONNECTION => CloseCause::NormalDisconnect,
            code if reason::is_client_disconnect_code(code) => {
                CloseCause::DisconnectWithReason(code)
            }
            code => {
                // [MQTT-3.14.2-1] a code outside Table 3-10 is malformed: not a 0x00, so the
                // will is published
                info!(client_id, code, "malformed DISCONNECT reason code");
                self.close_by_server(now, id, reason::MALFORMED_PACKET);
                return;
            }
        };
        self.end_connection(now, id, cause);
    }

    fn handle_publish(
        &mut self,
        now: Duration,
        id: ConnectionId,
        client_id: &str,
        mut publish: Publish,
    ) {
        if publish.qos > self.config.max_qos {
            // [MQTT-3.2.2-11] QoS above the announced Maximum QoS
            self.close_by_server(now, id, reason::QOS_NOT_SUPPORTED);
            return;
        }
        if publish.retain && !self.config.retain_available {
            // [MQTT-3.2.2-14]
            self.close_by_server(now, id, reason::RETAIN_NOT_SUPPORTED);
            return;
        }
        if let Err(code) = self.resolve_topic_alias(id, &mut publish) {
            self.close_by_server(now, id, code);
            return;
        }
        let message = Arc::new(Message {
            expires_at: publish
                .properties
                .message_expiry_interval
                .map(|secs| now + Duration::from_secs(u64::from(secs))),
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: publish.properties,
            origin: Some(client_id.to_owned()),
        });
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) | (_, None) => self.route(now, &message),
            (QoS::AtLeastOnce, Some(packet_id)) => {
                self.route(now, &message);
                self.send(id, Packet::PubAck(Ack::success(packet_id)));
            }
            (QoS::ExactlyOnce, Some(packet_id)) => {
                let Some(session) = self.sessions.get_mut(client_id) else {
                    return;
                };
                // [MQTT-4.3.3-9]: a retransmitted QoS 2 PUBLISH is not delivered again
                if !session.inbound_qos2.contains(&packet_id) {
                    if session.inbound_qos2.len() >= usize::from(self.config.receive_maximum) {
                        // [MQTT-3.3.4-8]
                        self.close_by_server(now, id, reason::RECEIVE_MAXIMUM_EXCEEDED);
                        return;
                    }
                    session.inbound_qos2.insert(packet_id);
                    self.route(now, &message);
                }
                self.send(id, Packet::PubRec(Ack::success(packet_id)));
            }
        }
    }

    /// Replaces a Topic Alias by its topic, recording new mappings (§3.3.2.3.4).
    fn resolve_topic_alias(&mut self, id: ConnectionId, publish: &mut Publish) -> Result<(), u8> {
        let Some(alias) = publish.topic_alias else {
            return Ok(());
        };
        // [MQTT-3.3.2-8] [MQTT-3.3.2-9] 0 or above our Topic Alias Maximum is invalid
        if alias == 0 || alias > self.config.topic_alias_maximum {
            return Err(reason::TOPIC_ALIAS_INVALID);
        }
        let connection = self
            .connections
            .get_mut(&id)
            .ok_or(reason::PROTOCOL_ERROR)?;
        if publish.topic.is_empty() {
            publish.topic = connection
                .topic_aliases
                .get(&alias)
                .cloned()
                .ok_or(reason::PROTOCOL_ERROR)?;
        } else {
            connection
                .topic_aliases
                .insert(alias, publish.topic.clone());
        }
        publish.topic_alias = None;
        Ok(())
    }

    fn handle_pubrec(&mut self, now: Duration, id: ConnectionId, client_id: &str, ack: Ack) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if ack.code >= 0x80 {
            // the receiver refused the message: the flow ends here (§4.3.3)
            session.remove_inflight(ack.packet_id, InflightState::AwaitPubRec);
            self.pump(now, client_id);
            return;
        }
        match session.inflight_mut(ack.packet_id) {
            Some(inflight) if inflight.state == InflightState::AwaitPubRec => {
                inflight.state = InflightState::AwaitPubComp;
                self.send(id, Packet::PubRel(Ack::success(ack.packet_id)));
            }
            Some(inflight) if inflight.state == InflightState::AwaitPubComp => {
                self.send(id, Packet::PubRel(Ack::success(ack.packet_id)));
            }
            _ => {}
        }
    }

    /// Publishes a will as an ordinary Application Message from its client: topic, payload,
    /// QoS and retain as given ([MQTT-3.1.2-14], [MQTT-3.1.2-15]), properties forwarded
    /// unaltered ([MQTT-3.1.3-10], [MQTT-3.3.2-17]); the Will Delay Interval is not a PUBLISH
    /// property and is never forwarded; Message Expiry counts from publication (A12).
    /// The will has already been removed from the session ([MQTT-3.1.2-10]).
    pub(super) fn publish_will(
        &mut self,
        now: Duration,
        client_id: &str,
        will: LastWill,
        why: &str,
    ) {
        info!(client_id, topic = %will.topic, qos = will.qos.as_u8(), retain = will.retain, why, "will published");
        let message = Arc::new(Message {
            expires_at: will
                .properties
                .message_expiry_interval
                .map(|secs| now + Duration::from_secs(u64::from(secs))),
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties: will.properties,
            origin: Some(client_id.to_owned()),
        });
        self.route(now, &message);
    }

    /// Delivers a message to every session with a matching subscription, one copy per
    /// session ([MQTT-3.3.4-2]) and one member per shared subscription group.
    pub(super) fn route(&mut self, now: Duration, message: &Arc<Message>) {
        if message.retain && self.config.retain_available {
            self.retained.store(message);
        }
        let mut deliveries: Vec<(String, Delivery)> = Vec::new();
        let mut shared: BTreeMap<(&str, &str), Vec<SharedCandidate>> = BTreeMap::new();
        // client ids in order, each session's matching subscriptions in key order: the same
        // order as walking every session, at the cost of the matches only
        for (client_id, keys) in self.subscribers.matching(&message.topic) {
            let Some(session) = self.sessions.get(client_id) else {
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
                // as published by its client, A9)
                if subscription.no_local && message.origin.as_deref() == Some(client_id) {
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
                deliveries.push((client_id.to_owned(), delivery));
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
            deliveries.push((client_id.to_string(), delivery.clone()));
        }
        if !deliveries.is_empty() {
            self.shared_turn = self.shared_turn.wrapping_add(1);
        }
        for (client_id, delivery) in deliveries {
            self.deliver(now, &client_id, delivery);
        }
    }

    /// Hands one delivery to a session: QoS 0 goes out now or nowhere (QoS 0 is not queued
    /// for offline sessions, A16); QoS 1/2 wait in the session queue for the connection and
    /// for room in the client's Receive Maximum window ([MQTT-3.3.4-9], [MQTT-4.5.0-1]).
    pub(super) fn deliver(&mut self, now: Duration, client_id: &str, delivery: Delivery) {
        let max_queued = self.config.max_queued_messages;
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if delivery.qos == QoS::AtMostOnce {
            if let Some(id) = session.connection {
                self.send_publish(now, id, client_id, delivery, None);
            }
            return;
        }
        if session.queue.len() >= max_queued {
            let dropped = session.queue.pop_front();
            warn!(
                client_id,
                topic = dropped.as_ref().map(|d| d.message.topic.as_str()),
                max_queued,
                "session queue full: dropped its oldest message"
            );
        }
        session.queue.push_back(delivery);
        self.pump(now, client_id);
    }

    /// Sends queued QoS 1/2 deliveries while the session is connected and its window open.
    pub(super) fn pump(&mut self, now: Duration, client_id: &str) {
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
            let Some(delivery) = session.queue.pop_front() else {
                return;
            };
            // [MQTT-3.3.2-5] an expired message whose delivery has not started is dropped
            if delivery.message.is_expired(now) {
                continue;
            }
            let packet_id = session.next_packet_id();
            let state = match delivery.qos {
                QoS::ExactlyOnce => InflightState::AwaitPubRec,
                _ => InflightState::AwaitPubAck,
            };
            if self.send_publish(
                now,
                id,
                client_id,
                delivery.clone(),
                Some((packet_id, false)),
            ) {
                if let Some(session) = self.sessions.get_mut(client_id) {
                    session.inflight.push_back(Inflight {
                        packet_id,
                        delivery,
                        state,
                    });
                }
            }
        }
    }

    /// On a resumed session: resend unacknowledged PUBLISH with DUP=1 and their original
    /// packet ids, and PUBREL for released ones ([MQTT-4.4.0-1]), then queued messages.
    pub(super) fn resume_deliveries(&mut self, now: Duration, client_id: &str) {
        let Some(session) = self.sessions.get(client_id) else {
            return;
        };
        let Some(id) = session.connection else {
            return;
        };
        let resends: Vec<_> = session
            .inflight
            .iter()
            .map(|f| (f.packet_id, f.state, f.delivery.clone()))
            .collect();
        for (packet_id, state, delivery) in resends {
            match state {
                InflightState::AwaitPubComp => {
                    self.send(id, Packet::PubRel(Ack::success(packet_id)))
                }
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
        now: Duration,
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
