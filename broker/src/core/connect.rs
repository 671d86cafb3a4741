//! CONNECT: validation against the broker's capabilities, takeover, Clean Start and session
//! resumption, and the CONNACK that announces what the broker supports.

use tracing::debug;

use crate::codec::{
    ConnAck, ConnAckCode, ConnAckProperties, Connect, ConnectReturnCode, Packet, Protocol,
    ReasonCode,
};

use super::connection::ConnectionState;
use super::moment::Moment;
use super::session::{NEVER_EXPIRES, Session};
use super::topic;
use super::{Broker, ClientId, ConnectionId, Timer};

impl Broker {
    pub(super) fn handle_connect(&mut self, now: Moment, id: ConnectionId, mut connect: Connect) {
        let protocol = connect.protocol;
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.protocol = Some(protocol);
        }
        if let Err((v5_code, v311_code)) = self.admit(&connect) {
            debug!(connection = id, client_id = %connect.client_id, code = u8::from(v5_code), "CONNECT refused");
            let code = match protocol {
                Protocol::V5 => Some(ConnAckCode::V5(v5_code)),
                Protocol::V311 => v311_code.map(ConnAckCode::V311),
            };
            self.refuse_connect(id, code);
            return;
        }

        let mut assigned_client_identifier = None;
        if connect.client_id.is_empty() {
            self.assigned_ids += 1;
            connect.client_id = format!("lastwill-{}", self.assigned_ids);
            if protocol == Protocol::V5 {
                assigned_client_identifier = Some(connect.client_id.clone());
            }
        }
        // the session's own copy when there is one: a client id is stored once
        let client_id = match self.sessions.get_key_value(connect.client_id.as_str()) {
            Some((existing, _)) => ClientId::clone(existing),
            None => ClientId::from(connect.client_id.as_str()),
        };

        // [MQTT-3.1.4-3] a connection already using this client id is taken over: it gets
        // DISCONNECT 0x8E and is closed, and its will follows the ordinary rules.
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.connection) {
            debug!(
                %client_id,
                old_connection = old,
                new_connection = id,
                "session taken over"
            );
            self.close_by_server(now, old, ReasonCode::SESSION_TAKEN_OVER);
        }

        let session_expiry = self.session_expiry(&connect);
        let session_present = if connect.clean_start {
            // [MQTT-3.1.2-4] Clean Start discards the session; a will still pending in it is
            // published now, because its session ended ({W5-WDI-CS1}, [MQTT-3.1.4-3]/c).
            self.end_session(now, &client_id, "clean start by a new connection");
            false
        } else {
            // [MQTT-3.1.2-5] resume the session if there is one.
            self.sessions.contains_key(&client_id)
        };

        let session = self
            .sessions
            .entry(ClientId::clone(&client_id))
            .or_insert_with(|| Box::new(Session::new(protocol)));
        if let Some(timer) = session.expiry_timer.take() {
            self.timers.cancel(timer);
        }
        session.protocol = protocol;
        session.connection = Some(id);
        session.expiry_interval = session_expiry;
        // [MQTT-3.3.4-9] never more in flight than the client's Receive Maximum (65,535 when
        // absent), and never more than the broker's own window, which 3.1.1 clients get
        session.receive_maximum = connect
            .receive_maximum
            .unwrap_or(u16::MAX)
            .min(self.config.max_inflight);
        session.maximum_packet_size = connect.maximum_packet_size;
        self.attach_will(&client_id, connect.will.take());

        let keep_alive = match (protocol, self.config.server_keep_alive) {
            // [MQTT-3.2.2-21] [MQTT-3.2.2-22] a Server Keep Alive replaces the client's
            (Protocol::V5, Some(server)) => server,
            _ => connect.keep_alive,
        };
        let connection = self
            .connections
            .get_mut(&id)
            .expect("connection of a CONNECT");
        connection.cancel_timer(&mut self.timers);
        connection.state = ConnectionState::Active {
            client_id: ClientId::clone(&client_id),
        };
        self.active_connections += 1;
        connection.connected_with_zero_expiry = connect.session_expiry_interval.unwrap_or(0) == 0;
        connection.keep_alive = keep_alive;
        if let Some(limit) = connection.keep_alive_limit() {
            connection.timer = Some(self.timers.schedule(now + limit, Timer::Connection(id)));
        }

        let properties = match protocol {
            Protocol::V5 => {
                self.connack_properties(&connect, session_expiry, assigned_client_identifier)
            }
            Protocol::V311 => ConnAckProperties::default(),
        };
        debug!(%client_id, connection = id, %protocol, session_present, "client connected");
        self.send(
            id,
            Packet::ConnAck(ConnAck {
                session_present,
                code: ConnAckCode::success(protocol),
                properties,
            }),
        );
        if session_present {
            self.resume_deliveries(now, &client_id);
        }
    }

    /// Checks a CONNECT against credentials, limits and capabilities. On refusal, returns the
    /// v5 reason code and the 3.1.1 return code (`None`: close without CONNACK).
    fn admit(&self, connect: &Connect) -> Result<(), (ReasonCode, Option<ConnectReturnCode>)> {
        if self.active_connections >= self.config.max_connections {
            return Err((
                ReasonCode::QUOTA_EXCEEDED,
                Some(ConnectReturnCode::SERVER_UNAVAILABLE),
            ));
        }
        if connect.authentication_method.is_some() {
            // Enhanced authentication is not supported (§4.12).
            return Err((ReasonCode::BAD_AUTHENTICATION_METHOD, None));
        }
        if !self.config.credentials.is_empty() {
            let accepted = self.config.credentials.iter().any(|c| {
                connect.username.as_deref() == Some(c.username.as_str())
                    && connect.password.as_deref() == Some(c.password.as_bytes())
            });
            if !accepted {
                // [MQTT-3.1.4-2] [MQTT-3.1.2-8]/e (3.1.1): a refused CONNECT stores no will
                return Err((
                    ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                    Some(ConnectReturnCode::BAD_USER_NAME_OR_PASSWORD),
                ));
            }
        }
        if connect.client_id.is_empty()
            && !connect.clean_start
            && connect.protocol == Protocol::V311
        {
            // [MQTT-3.1.3-8] 3.1.1: an empty client id needs Clean Session 1
            return Err((
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                Some(ConnectReturnCode::IDENTIFIER_REJECTED),
            ));
        }
        if let Some(will) = &connect.will {
            // [MQTT-3.2.2-12] a will QoS above Maximum QoS is refused (3.1.1 has no code for
            // it: close without CONNACK, [MQTT-3.2.2-6] of 3.1.1)
            if will.qos > self.config.max_qos {
                return Err((ReasonCode::QOS_NOT_SUPPORTED, None));
            }
            // [MQTT-3.2.2-13] a retained will on a broker without retain is refused
            if will.retain && !self.config.retain_available {
                return Err((ReasonCode::RETAIN_NOT_SUPPORTED, None));
            }
            // `$SYS` belongs to the broker (as for PUBLISH, see `inbound`)
            if topic::is_broker_topic(&will.topic) {
                return Err((
                    ReasonCode::NOT_AUTHORIZED,
                    Some(ConnectReturnCode::NOT_AUTHORIZED),
                ));
            }
        }
        Ok(())
    }

    /// The session expiry in force: v5 from the CONNECT property (absent = 0), capped by the
    /// broker's maximum; 3.1.1 Clean Session 0 sessions never expire (unless capped).
    fn session_expiry(&self, connect: &Connect) -> u32 {
        let requested = match connect.protocol {
            Protocol::V5 => connect.session_expiry_interval.unwrap_or(0),
            Protocol::V311 if connect.clean_start => 0,
            Protocol::V311 => NEVER_EXPIRES,
        };
        self.config
            .max_session_expiry
            .map_or(requested, |max| requested.min(max))
    }

    fn connack_properties(
        &self,
        connect: &Connect,
        session_expiry: u32,
        assigned_client_identifier: Option<String>,
    ) -> ConnAckProperties {
        let requested_expiry = connect.session_expiry_interval.unwrap_or(0);
        ConnAckProperties {
            // announced only when the broker cut the requested value (§3.2.2.3.2)
            session_expiry_interval: (session_expiry != requested_expiry).then_some(session_expiry),
            assigned_client_identifier,
            // the capabilities: [MQTT-3.2.2-9] Maximum QoS when QoS 2 is not supported, and
            // each other one where it differs from what the property's absence means
            ..self.config.connack_properties()
        }
    }
}
