//! CONNECT (§3.1) and CONNACK (§3.2).

use bytes::{BufMut, Bytes, BytesMut};

use super::DecodeErrorKind::UnsupportedProtocolVersion;
use super::frame::PacketType;
use super::props::{self, Properties};
use super::topic::check_topic_name;
use super::wire::{Reader, error, malformed, protocol_error, put_binary, put_string};
use super::{
    ConnAck, ConnAckCode, ConnAckProperties, Connect, DecodeError, LastWill, Protocol, QoS,
};

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL_FLAG: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

/// Bytes of a CONNECT body up to and including the protocol level.
pub const PROTOCOL_PREFIX_LEN: usize = 7;

/// The protocol a CONNECT body announces, read from its first [`PROTOCOL_PREFIX_LEN`] bytes
/// alone: enough to answer a CONNECT that is refused before it is read whole (too large).
pub fn peek_protocol(body: &[u8]) -> Option<Protocol> {
    match body.get(..PROTOCOL_PREFIX_LEN)? {
        [0, 4, b'M', b'Q', b'T', b'T', 4] => Some(Protocol::V311),
        [0, 4, b'M', b'Q', b'T', b'T', 5] => Some(Protocol::V5),
        _ => None,
    }
}

/// Decodes a CONNECT body. Every error after the protocol level was read carries that level,
/// so the broker knows whether to answer with a v5 CONNACK or close ([MQTT-3.1.4-1]).
pub fn decode_connect(body: Bytes) -> Result<Connect, DecodeError> {
    let mut reader = Reader::new(body);
    let name = reader.binary("Protocol Name")?;
    let level = reader.u8("Protocol Version")?;
    let protocol = match (&name[..], level) {
        (b"MQTT", 4) => Protocol::V311,
        (b"MQTT", 5) => Protocol::V5,
        // [MQTT-3.1.2-1] / [MQTT-3.1.2-2] (3.1.1: CONNACK 0x01): a name or level we do not
        // speak. The CONNACK form follows the level: v5 for 5 and above, 3.1.1 below.
        _ => {
            let mut err = error(
                UnsupportedProtocolVersion,
                format!(
                    "protocol name {:?} level {level}",
                    String::from_utf8_lossy(&name)
                ),
            );
            err.protocol = Some(if level < 5 {
                Protocol::V311
            } else {
                Protocol::V5
            });
            return Err(err);
        }
    };
    read_connect(&mut reader, protocol).map_err(|mut err| {
        err.protocol = Some(protocol);
        err
    })
}

fn read_connect(reader: &mut Reader, protocol: Protocol) -> Result<Connect, DecodeError> {
    let flags = reader.u8("Connect Flags")?;
    let will_qos = check_connect_flags(flags, protocol)?;
    let keep_alive = reader.u16("Keep Alive")?;
    let props = match protocol {
        Protocol::V5 => props::read(reader, &props::CONNECT)?,
        Protocol::V311 => Properties::default(),
    };
    if props.authentication_data.is_some() && props.authentication_method.is_none() {
        // §3.1.2.11.10: Authentication Data without an Authentication Method.
        return Err(protocol_error(
            "CONNECT: Authentication Data without Authentication Method",
        ));
    }

    // [MQTT-3.1.3-1] Payload order: Client Identifier, Will Properties, Will Topic, Will
    // Payload, User Name, Password; each present exactly when its flag says so
    // ([MQTT-3.1.2-9]; 3.1.1 [MQTT-3.1.2-9], [MQTT-3.1.2-11]).
    let client_id = reader.string("Client Identifier")?;
    let will = if flags & WILL_FLAG != 0 {
        Some(read_will(reader, flags, will_qos, protocol)?)
    } else {
        None
    };
    let username = match flags & USERNAME {
        0 => None,
        _ => Some(reader.string("User Name")?),
    };
    let password = match flags & PASSWORD {
        0 => None,
        _ => Some(reader.binary("Password")?),
    };
    reader.finish("CONNECT")?;
    if let Some(will) = &will {
        check_topic_name(&will.topic, "Will Topic")?;
    }

    Ok(Connect {
        protocol,
        client_id,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        session_expiry_interval: props.session_expiry_interval,
        receive_maximum: props.receive_maximum,
        maximum_packet_size: props.maximum_packet_size,
        topic_alias_maximum: props.topic_alias_maximum,
        request_response_information: props.request_response_information,
        request_problem_information: props.request_problem_information,
        authentication_method: props.authentication_method,
        authentication_data: props.authentication_data,
        user_properties: props.user_properties,
        will,
        username,
        password,
    })
}

/// Checks the Connect Flags (§3.1.2.3) and returns the Will QoS they carry.
fn check_connect_flags(flags: u8, protocol: Protocol) -> Result<QoS, DecodeError> {
    let v5 = protocol.is_v5();
    if flags & RESERVED != 0 {
        // [MQTT-3.1.2-3] The reserved flag MUST be 0 (both versions).
        return Err(malformed("CONNECT reserved flag (bit 0) is set"));
    }
    let Some(will_qos) = QoS::from_u8((flags >> WILL_QOS_SHIFT) & 0b11) else {
        // 5.0 §3.1.2.6 {W5-QOS3}; 3.1.1 [MQTT-3.1.2-14].
        return Err(malformed("CONNECT Will QoS 3"));
    };
    if flags & WILL_FLAG == 0 {
        if will_qos != QoS::AtMostOnce {
            let id = if v5 {
                "[MQTT-3.1.2-11]"
            } else {
                "[MQTT-3.1.2-13]"
            };
            return Err(malformed(format!(
                "CONNECT Will QoS {} without Will Flag {id}",
                will_qos.as_u8()
            )));
        }
        if flags & WILL_RETAIN != 0 {
            let id = if v5 {
                "[MQTT-3.1.2-13]"
            } else {
                "[MQTT-3.1.2-15]"
            };
            return Err(malformed(format!(
                "CONNECT Will Retain without Will Flag {id}"
            )));
        }
    }
    if !v5 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
        // 3.1.1 [MQTT-3.1.2-22]: no Password Flag without the User Name Flag.
        return Err(malformed("CONNECT Password Flag without User Name Flag"));
    }
    Ok(will_qos)
}

fn read_will(
    reader: &mut Reader,
    flags: u8,
    qos: QoS,
    protocol: Protocol,
) -> Result<LastWill, DecodeError> {
    let mut props = match protocol {
        // [MQTT-2.2.2-1] The Will Property Length is present even when it is 0.
        Protocol::V5 => props::read(reader, &props::WILL)?,
        Protocol::V311 => Properties::default(),
    };
    let topic = reader.string("Will Topic")?;
    let payload = reader.binary("Will Payload")?;
    Ok(LastWill {
        topic,
        payload,
        qos,
        retain: flags & WILL_RETAIN != 0,
        delay_interval: props.will_delay_interval,
        properties: props.take_message(),
    })
}

/// Encodes a CONNECT body for the protocol level in `connect.protocol`.
pub fn encode_connect(connect: &Connect, body: &mut BytesMut) -> Result<u8, String> {
    let v5 = connect.protocol.is_v5();
    let mut flags = 0;
    if connect.clean_start {
        flags |= CLEAN_START;
    }
    if let Some(will) = &connect.will {
        flags |= WILL_FLAG | will.qos.as_u8() << WILL_QOS_SHIFT;
        if will.retain {
            flags |= WILL_RETAIN;
        }
    }
    if connect.username.is_some() {
        flags |= USERNAME;
    }
    if connect.password.is_some() {
        flags |= PASSWORD;
    }

    put_string(body, "MQTT", "Protocol Name")?;
    body.put_u8(connect.protocol.level());
    body.put_u8(flags);
    body.put_u16(connect.keep_alive);
    if v5 {
        let mut props = props::Writer::default();
        props.u32(
            props::SESSION_EXPIRY_INTERVAL,
            connect.session_expiry_interval,
        );
        props.u16(props::RECEIVE_MAXIMUM, connect.receive_maximum);
        props.u32(props::MAXIMUM_PACKET_SIZE, connect.maximum_packet_size);
        props.u16(props::TOPIC_ALIAS_MAXIMUM, connect.topic_alias_maximum);
        props.u8(
            props::REQUEST_RESPONSE_INFORMATION,
            connect.request_response_information,
        );
        props.u8(
            props::REQUEST_PROBLEM_INFORMATION,
            connect.request_problem_information,
        );
        props.string(
            props::AUTHENTICATION_METHOD,
            connect.authentication_method.as_deref(),
        )?;
        props.binary(
            props::AUTHENTICATION_DATA,
            connect.authentication_data.as_deref(),
        )?;
        props.user_properties(&connect.user_properties)?;
        props.finish(body)?;
    }
    put_string(body, &connect.client_id, "Client Identifier")?;
    if let Some(will) = &connect.will {
        if v5 {
            let mut props = props::Writer::default();
            props.u32(props::WILL_DELAY_INTERVAL, will.delay_interval);
            props.message(&will.properties)?;
            props.finish(body)?;
        }
        put_string(body, &will.topic, "Will Topic")?;
        put_binary(body, &will.payload, "Will Payload")?;
    }
    if let Some(username) = &connect.username {
        put_string(body, username, "User Name")?;
    }
    if let Some(password) = &connect.password {
        put_binary(body, password, "Password")?;
    }
    Ok(PacketType::Connect.byte1(0))
}

pub fn decode_connack(body: Bytes, protocol: Protocol) -> Result<ConnAck, DecodeError> {
    let mut reader = Reader::new(body);
    let flags = reader.u8("Connect Acknowledge Flags")?;
    if flags & !1 != 0 {
        // [MQTT-3.2.2-1] (3.1.1 §3.2.2.1): bits 7-1 are reserved and MUST be 0.
        return Err(malformed(format!(
            "CONNACK reserved flag bits set ({flags:08b})"
        )));
    }
    let code = ConnAckCode::read(protocol, reader.u8("Connect Reason Code")?);
    let properties = match protocol {
        Protocol::V5 => {
            // Authentication Method and Data are accepted but not kept: the broker never
            // negotiates enhanced authentication.
            let p = props::read(&mut reader, &props::CONNACK)?;
            ConnAckProperties {
                session_expiry_interval: p.session_expiry_interval,
                receive_maximum: p.receive_maximum,
                maximum_qos: p.maximum_qos,
                retain_available: p.retain_available,
                maximum_packet_size: p.maximum_packet_size,
                assigned_client_identifier: p.assigned_client_identifier,
                topic_alias_maximum: p.topic_alias_maximum,
                reason_string: p.reason_string,
                wildcard_subscription_available: p.wildcard_subscription_available,
                subscription_identifiers_available: p.subscription_identifier_available,
                shared_subscription_available: p.shared_subscription_available,
                server_keep_alive: p.server_keep_alive,
                response_information: p.response_information,
                server_reference: p.server_reference,
                user_properties: p.user_properties,
            }
        }
        Protocol::V311 => ConnAckProperties::default(),
    };
    reader.finish("CONNACK")?;
    Ok(ConnAck {
        session_present: flags & 1 != 0,
        code,
        properties,
    })
}

/// The 3.1.1 form carries `code` as the return code byte and drops the properties.
pub fn encode_connack(
    connack: &ConnAck,
    protocol: Protocol,
    body: &mut BytesMut,
) -> Result<u8, String> {
    body.put_u8(u8::from(connack.session_present));
    body.put_u8(connack.code.into());
    if protocol.is_v5() {
        let p = &connack.properties;
        let mut props = props::Writer::default();
        props.u32(props::SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
        props.u16(props::RECEIVE_MAXIMUM, p.receive_maximum);
        props.u8(props::MAXIMUM_QOS, p.maximum_qos.map(QoS::as_u8));
        props.flag(props::RETAIN_AVAILABLE, p.retain_available);
        props.u32(props::MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
        props.string(
            props::ASSIGNED_CLIENT_IDENTIFIER,
            p.assigned_client_identifier.as_deref(),
        )?;
        props.u16(props::TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
        props.string(props::REASON_STRING, p.reason_string.as_deref())?;
        props.flag(
            props::WILDCARD_SUBSCRIPTION_AVAILABLE,
            p.wildcard_subscription_available,
        );
        props.flag(
            props::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            p.subscription_identifiers_available,
        );
        props.flag(
            props::SHARED_SUBSCRIPTION_AVAILABLE,
            p.shared_subscription_available,
        );
        props.u16(props::SERVER_KEEP_ALIVE, p.server_keep_alive);
        props.string(
            props::RESPONSE_INFORMATION,
            p.response_information.as_deref(),
        )?;
        props.string(props::SERVER_REFERENCE, p.server_reference.as_deref())?;
        props.user_properties(&p.user_properties)?;
        props.finish(body)?;
    }
    Ok(PacketType::ConnAck.byte1(0))
}
