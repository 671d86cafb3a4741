//! Packets from connected clients: PUBLISH and its acknowledgements, PINGREQ, DISCONNECT,
//! and the packets a client may not send. SUBSCRIBE and UNSUBSCRIBE are in `subscriptions`.

use tracing::{info, warn};

use crate::codec::{Ack, Disconnect, Packet, Protocol, Publish, QoS, ReasonCode};

use super::delivery::Message;
use super::moment::Moment;
use super::session::Awaiting;
use super::topic;
use super::will::CloseCause;
use super::{Broker, ClientId, ConnectionId};

impl Broker {
    pub(super) fn handle_active_packet(
        &mut self,
        now: Moment,
        id: ConnectionId,
        client_id: &ClientId,
        packet: Packet,
    ) {
        match packet {
            Packet::Publish(publish) => self.handle_publish(now, id, client_id, publish),
            Packet::PubAck(ack) => {
                self.acknowledged(client_id, ack.packet_id, Awaiting::PubAck);
                self.pump(now, client_id);
            }
            Packet::PubRec(ack) => self.handle_pubrec(now, id, client_id, ack),
            Packet::PubRel(ack) => {
                let released = self
                    .sessions
                    .get_mut(client_id)
                    .and_then(|s| s.flow.as_deref_mut())
                    .is_some_and(|flow| flow.inbound_qos2.remove(&ack.packet_id));
                let code = if released {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
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
                self.acknowledged(client_id, ack.packet_id, Awaiting::PubComp);
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
                info!(%client_id, "protocol error: unexpected packet from client");
                self.close_by_server(now, id, ReasonCode::PROTOCOL_ERROR);
            }
        }
    }

    fn handle_disconnect(
        &mut self,
        now: Moment,
        id: ConnectionId,
        client_id: &str,
        disconnect: Disconnect,
    ) {
        // an active connection has read its CONNECT, so it knows its protocol
        let Some(protocol) = self.connections.get(&id).and_then(|c| c.protocol) else {
            return;
        };
        let Some(cause) = CloseCause::of_disconnect(protocol, disconnect.code) else {
            // [MQTT-3.14.2-1] a code outside Table 3-10 is malformed: not a 0x00, so the will
            // is published; nothing else in the packet (its Session Expiry) is acted on
            let code = u8::from(disconnect.code);
            info!(client_id, code, "malformed DISCONNECT reason code");
            self.close_by_server(now, id, ReasonCode::MALFORMED_PACKET);
            return;
        };
        if protocol == Protocol::V5
            && let Some(expiry) = disconnect.session_expiry_interval
        {
            let zero_at_connect = self
                .connections
                .get(&id)
                .is_some_and(|c| c.connected_with_zero_expiry);
            if zero_at_connect && expiry != 0 {
                // §3.14.2.2.2: not a valid DISCONNECT; the will stays ({W5-DISC-SEI-PE}, {A11})
                info!(
                    client_id,
                    "protocol error: DISCONNECT sets session expiry after CONNECT set 0"
                );
                self.close_by_server(now, id, ReasonCode::PROTOCOL_ERROR);
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
        self.end_connection(now, id, cause);
    }

    fn handle_publish(
        &mut self,
        now: Moment,
        id: ConnectionId,
        client_id: &ClientId,
        mut publish: Publish,
    ) {
        if publish.qos > self.config.max_qos {
            // [MQTT-3.2.2-11] QoS above the announced Maximum QoS
            self.close_by_server(now, id, ReasonCode::QOS_NOT_SUPPORTED);
            return;
        }
        if publish.retain && !self.config.retain_available {
            // [MQTT-3.2.2-14]
            self.close_by_server(now, id, ReasonCode::RETAIN_NOT_SUPPORTED);
            return;
        }
        if let Err(code) = self.resolve_topic_alias(id, &mut publish) {
            self.close_by_server(now, id, code);
            return;
        }
        if topic::is_broker_topic(&publish.topic) {
            self.refuse_broker_topic(id, client_id, &publish);
            return;
        }
        let (qos, packet_id) = (publish.qos, publish.packet_id);
        let message = Message::new(
            now,
            client_id,
            publish.topic,
            publish.payload,
            qos,
            publish.retain,
            publish.properties,
        );
        match (qos, packet_id) {
            (QoS::AtMostOnce, _) | (_, None) => self.route(now, &message),
            (QoS::AtLeastOnce, Some(packet_id)) => {
                self.route(now, &message);
                self.send(id, Packet::PubAck(Ack::success(packet_id)));
            }
            (QoS::ExactlyOnce, Some(packet_id)) => {
                let Some(session) = self.sessions.get_mut(client_id) else {
                    return;
                };
                let inbound_qos2 = &mut session.flow_mut().inbound_qos2;
                // [MQTT-4.3.3-9]: a retransmitted QoS 2 PUBLISH is not delivered again
                if !inbound_qos2.contains(&packet_id) {
                    if inbound_qos2.len() >= usize::from(self.config.receive_maximum) {
                        // [MQTT-3.3.4-8]
                        self.close_by_server(now, id, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
                        return;
                    }
                    inbound_qos2.insert(packet_id);
                    self.route(now, &message);
                }
                self.send(id, Packet::PubRec(Ack::success(packet_id)));
            }
        }
    }

    /// Replaces a Topic Alias by its topic, recording new mappings (§3.3.2.3.4).
    fn resolve_topic_alias(
        &mut self,
        id: ConnectionId,
        publish: &mut Publish,
    ) -> Result<(), ReasonCode> {
        let Some(alias) = publish.topic_alias else {
            return Ok(());
        };
        // [MQTT-3.3.2-8] [MQTT-3.3.2-9] 0 or above our Topic Alias Maximum is invalid
        if alias == 0 || alias > self.config.topic_alias_maximum {
            return Err(ReasonCode::TOPIC_ALIAS_INVALID);
        }
        let connection = self
            .connections
            .get_mut(&id)
            .ok_or(ReasonCode::PROTOCOL_ERROR)?;
        if publish.topic.is_empty() {
            publish.topic = connection
                .topic_alias(alias)
                .cloned()
                .ok_or(ReasonCode::PROTOCOL_ERROR)?;
        } else {
            connection
                .rare_mut()
                .topic_aliases
                .insert(alias, publish.topic.clone());
        }
        publish.topic_alias = None;
        Ok(())
    }

    fn handle_pubrec(&mut self, now: Moment, id: ConnectionId, client_id: &str, ack: Ack) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if ack.code.is_failure() {
            // the receiver refused the message: the flow ends here (§4.3.3)
            self.acknowledged(client_id, ack.packet_id, Awaiting::PubRec);
            self.pump(now, client_id);
            return;
        }
        match session
            .flow
            .as_deref_mut()
            .and_then(|flow| flow.inflight.get_mut(ack.packet_id))
        {
            Some(inflight) if inflight.awaiting == Awaiting::PubRec => {
                inflight.awaiting = Awaiting::PubComp;
                self.send(id, Packet::PubRel(Ack::success(ack.packet_id)));
            }
            Some(inflight) if inflight.awaiting == Awaiting::PubComp => {
                self.send(id, Packet::PubRel(Ack::success(ack.packet_id)));
            }
            _ => {}
        }
    }

    /// `$SYS/…` belongs to the broker: a client's PUBLISH there is not delivered or
    /// retained. v5 says why in the PUBACK/PUBREC (0x87 Not authorized, [MQTT-3.3.4-1] still
    /// answers it); 3.1.1 has no negative acks, so it gets the usual one and the message is
    /// dropped, with one log line per connection.
    fn refuse_broker_topic(&mut self, id: ConnectionId, client_id: &str, publish: &Publish) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        let v5 = connection.protocol == Some(Protocol::V5);
        if !std::mem::replace(&mut connection.rare_mut().wrote_to_broker_topic, true) {
            warn!(client_id, topic = %publish.topic, "PUBLISH to a $SYS topic dropped (logged once per connection)");
        }
        let code = if v5 {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::SUCCESS
        };
        let Some(packet_id) = publish.packet_id else {
            return;
        };
        let ack = Ack { packet_id, code };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(id, Packet::PubAck(ack)),
            // 3.1.1: a PUBREC 0x00 promises delivery; the flow completes and nothing is sent
            QoS::ExactlyOnce => self.send(id, Packet::PubRec(ack)),
        }
    }
}
