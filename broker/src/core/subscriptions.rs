//! SUBSCRIBE and UNSUBSCRIBE, and retained messages sent at subscribe time.

use crate::codec::{
    Packet, Protocol, ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

use super::delivery::Delivery;
use super::moment::Moment;
use super::session::Subscription;
use super::topic::{self, FilterError};
use super::{Broker, ConnectionId};

impl Broker {
    pub(super) fn handle_subscribe(
        &mut self,
        now: Moment,
        id: ConnectionId,
        client_id: &str,
        subscribe: Subscribe,
    ) {
        if subscribe.subscription_identifier.is_some() && !self.config.subscription_identifiers {
            // §3.8.2.1.2: a Subscription Identifier the server did not announce
            self.close_by_server(now, id, ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
            return;
        }
        let protocol = self
            .connections
            .get(&id)
            .and_then(|c| c.protocol)
            .unwrap_or(Protocol::V5);
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut retained_to_send = Vec::new();
        for request in subscribe.filters {
            let parsed = match topic::parse_filter(&request.filter) {
                Ok(parsed) => parsed,
                Err(FilterError::Invalid) => {
                    codes.push(failure(protocol, ReasonCode::TOPIC_FILTER_INVALID));
                    continue;
                }
            };
            if parsed.share_group.is_some() && !self.config.shared_subscriptions {
                codes.push(failure(
                    protocol,
                    ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
                ));
                continue;
            }
            if parsed.has_wildcards() && !self.config.wildcard_subscriptions {
                codes.push(failure(
                    protocol,
                    ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                ));
                continue;
            }
            if parsed.share_group.is_some() && request.no_local {
                // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error
                self.close_by_server(now, id, ReasonCode::PROTOCOL_ERROR);
                return;
            }
            // [MQTT-3.2.2-9] granted QoS never exceeds the broker's Maximum QoS
            let granted = request.qos.min(self.config.max_qos);
            let Some(session) = self.sessions.get_mut(client_id) else {
                return;
            };
            let subscription = Subscription {
                qos: granted,
                no_local: request.no_local,
                retain_as_published: request.retain_as_published,
                subscription_id: subscribe.subscription_identifier,
                filter: parsed,
            };
            self.subscribers
                .insert(&subscription.filter.filter, client_id, &request.filter);
            // [MQTT-3.8.4-3] a subscription to the same filter replaces the old one
            let existed = session
                .subscriptions
                .insert(request.filter, subscription.clone())
                .is_some();
            // [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] Retain Handling; shared
            // subscriptions never get retained messages at subscribe time (§4.8.2)
            let send_retained = subscription.filter.share_group.is_none()
                && match request.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                retained_to_send.push(subscription);
            }
            codes.push(ReasonCode::granted(granted));
        }
        self.send(
            id,
            Packet::SubAck(SubAck {
                packet_id: subscribe.packet_id,
                codes,
                reason_string: None,
            }),
        );
        for subscription in retained_to_send {
            for message in self.retained.matching(&subscription.filter.filter, now) {
                let delivery = Delivery {
                    qos: message.qos.min(subscription.qos),
                    // [MQTT-3.3.1-8] (3.1.1) and §3.3.1.3: RETAIN 1 when sent because of a
                    // new subscription
                    retain: true,
                    subscription_ids: subscription.subscription_id.into_iter().collect(),
                    message,
                };
                self.deliver(now, client_id, delivery);
            }
        }
    }

    pub(super) fn handle_unsubscribe(
        &mut self,
        id: ConnectionId,
        client_id: &str,
        unsubscribe: Unsubscribe,
    ) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        let codes: Vec<ReasonCode> = unsubscribe
            .filters
            .iter()
            .map(|filter| match session.subscriptions.remove(filter) {
                Some(removed) => {
                    self.subscribers
                        .remove(&removed.filter.filter, client_id, filter);
                    ReasonCode::SUCCESS
                }
                None => ReasonCode::NO_SUBSCRIPTION_EXISTED,
            })
            .collect();
        let protocol = self.connections.get(&id).and_then(|c| c.protocol);
        let codes = if protocol == Some(Protocol::V5) {
            codes
        } else {
            Vec::new()
        };
        self.send(
            id,
            Packet::UnsubAck(UnsubAck {
                packet_id: unsubscribe.packet_id,
                codes,
            }),
        );
    }
}

/// A SUBACK failure code: the v5 reason, or 0x80 in 3.1.1.
fn failure(protocol: Protocol, v5_code: ReasonCode) -> ReasonCode {
    match protocol {
        Protocol::V5 => v5_code,
        Protocol::V311 => SubAck::V311_FAILURE,
    }
}
