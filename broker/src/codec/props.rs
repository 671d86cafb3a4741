//! MQTT 5 properties (§2.2.2): one strict reader for every packet type, and a writer.
//!
//! The reader enforces what holds for a property wherever it appears: identifiers valid for
//! the packet (else Malformed, §2.2.2.2), no duplicates except User Property and PUBLISH
//! Subscription Identifiers (else Protocol Error), value ranges the spec calls a Protocol
//! Error, and the string rules of §1.5.4.

use std::fmt::{self, Display};

use bytes::{BufMut, Bytes, BytesMut};

use super::topic::is_valid_topic_name;
use super::wire::{Reader, malformed, protocol_error, put_binary, put_string, put_vbi};
use super::{DecodeError, MessageProperties, QoS, UserProperty};

pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub const CONTENT_TYPE: u8 = 0x03;
pub const RESPONSE_TOPIC: u8 = 0x08;
pub const CORRELATION_DATA: u8 = 0x09;
pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub const SERVER_KEEP_ALIVE: u8 = 0x13;
pub const AUTHENTICATION_METHOD: u8 = 0x15;
pub const AUTHENTICATION_DATA: u8 = 0x16;
pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub const WILL_DELAY_INTERVAL: u8 = 0x18;
pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub const RESPONSE_INFORMATION: u8 = 0x1A;
pub const SERVER_REFERENCE: u8 = 0x1C;
pub const REASON_STRING: u8 = 0x1F;
pub const RECEIVE_MAXIMUM: u8 = 0x21;
pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub const TOPIC_ALIAS: u8 = 0x23;
pub const MAXIMUM_QOS: u8 = 0x24;
pub const RETAIN_AVAILABLE: u8 = 0x25;
pub const USER_PROPERTY: u8 = 0x26;
pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// Which properties a packet may carry (Table 2-4), and which of them more than once.
pub struct Allowed {
    pub context: &'static str,
    pub ids: &'static [u8],
    pub repeatable: &'static [u8],
}

/// User Property is the only property every packet may repeat (§2.2.2.2).
const USER_PROPERTY_ONLY: &[u8] = &[USER_PROPERTY];

pub const CONNECT: Allowed = Allowed {
    context: "CONNECT properties",
    ids: &[
        SESSION_EXPIRY_INTERVAL,
        RECEIVE_MAXIMUM,
        MAXIMUM_PACKET_SIZE,
        TOPIC_ALIAS_MAXIMUM,
        REQUEST_RESPONSE_INFORMATION,
        REQUEST_PROBLEM_INFORMATION,
        USER_PROPERTY,
        AUTHENTICATION_METHOD,
        AUTHENTICATION_DATA,
    ],
    repeatable: USER_PROPERTY_ONLY,
};

/// {W5-PROP-ID}: 0x01, 0x02, 0x03, 0x08, 0x09, 0x18 and 0x26 only.
pub const WILL: Allowed = Allowed {
    context: "Will Properties",
    ids: &[
        PAYLOAD_FORMAT_INDICATOR,
        MESSAGE_EXPIRY_INTERVAL,
        CONTENT_TYPE,
        RESPONSE_TOPIC,
        CORRELATION_DATA,
        USER_PROPERTY,
        WILL_DELAY_INTERVAL,
    ],
    repeatable: USER_PROPERTY_ONLY,
};

pub const CONNACK: Allowed = Allowed {
    context: "CONNACK properties",
    ids: &[
        SESSION_EXPIRY_INTERVAL,
        RECEIVE_MAXIMUM,
        MAXIMUM_QOS,
        RETAIN_AVAILABLE,
        MAXIMUM_PACKET_SIZE,
        ASSIGNED_CLIENT_IDENTIFIER,
        TOPIC_ALIAS_MAXIMUM,
        REASON_STRING,
        USER_PROPERTY,
        WILDCARD_SUBSCRIPTION_AVAILABLE,
        SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        SHARED_SUBSCRIPTION_AVAILABLE,
        SERVER_KEEP_ALIVE,
        RESPONSE_INFORMATION,
        SERVER_REFERENCE,
        AUTHENTICATION_METHOD,
        AUTHENTICATION_DATA,
    ],
    repeatable: USER_PROPERTY_ONLY,
};

pub const PUBLISH: Allowed = Allowed {
    context: "PUBLISH properties",
    ids: &[
        PAYLOAD_FORMAT_INDICATOR,
        MESSAGE_EXPIRY_INTERVAL,
        CONTENT_TYPE,
        RESPONSE_TOPIC,
        CORRELATION_DATA,
        USER_PROPERTY,
        TOPIC_ALIAS,
        SUBSCRIPTION_IDENTIFIER,
    ],
    // §3.3.2.3.8: one Subscription Identifier per matching subscription.
    repeatable: &[USER_PROPERTY, SUBSCRIPTION_IDENTIFIER],
};

/// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
pub const ACK: Allowed = Allowed {
    context: "acknowledgement properties",
    ids: &[REASON_STRING, USER_PROPERTY],
    repeatable: USER_PROPERTY_ONLY,
};

pub const SUBSCRIBE: Allowed = Allowed {
    context: "SUBSCRIBE properties",
    ids: &[SUBSCRIPTION_IDENTIFIER, USER_PROPERTY],
    repeatable: USER_PROPERTY_ONLY,
};

pub const UNSUBSCRIBE: Allowed = Allowed {
    context: "UNSUBSCRIBE properties",
    ids: &[USER_PROPERTY],
    repeatable: USER_PROPERTY_ONLY,
};

pub const DISCONNECT: Allowed = Allowed {
    context: "DISCONNECT properties",
    ids: &[
        SESSION_EXPIRY_INTERVAL,
        REASON_STRING,
        SERVER_REFERENCE,
        USER_PROPERTY,
    ],
    repeatable: USER_PROPERTY_ONLY,
};

/// Every property a packet carried; the packet decoder moves out the ones it has.
#[derive(Debug, Default)]
pub struct Properties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<QoS>,
    pub retain_available: Option<bool>,
    pub user_properties: Vec<UserProperty>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifier_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
}

impl Properties {
    /// The Application Message properties shared by PUBLISH and the Will.
    pub fn take_message(&mut self) -> MessageProperties {
        MessageProperties {
            payload_format_indicator: self.payload_format_indicator.take(),
            message_expiry_interval: self.message_expiry_interval.take(),
            content_type: self.content_type.take(),
            response_topic: self.response_topic.take(),
            correlation_data: self.correlation_data.take(),
            user_properties: std::mem::take(&mut self.user_properties),
        }
    }
}

/// Names a property (or the Property Length) in error messages, formatted only on error.
#[derive(Clone, Copy)]
struct Field {
    context: &'static str,
    id: Option<u8>,
}

impl Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "{}: property 0x{id:02X}", self.context),
            None => write!(f, "{}: Property Length", self.context),
        }
    }
}

/// Reads a Property Length and the properties it covers. The length is mandatory, also when
/// there are no properties ([MQTT-2.2.2-1]).
pub fn read(reader: &mut Reader, allowed: &Allowed) -> Result<Properties, DecodeError> {
    let context = allowed.context;
    let len = reader.vbi(Field { context, id: None })?;
    let mut reader = Reader::new(reader.take(len as usize, context)?);
    let mut props = Properties::default();
    let mut seen: u64 = 0;
    while !reader.is_empty() {
        let id = reader.u8(context)?;
        if !allowed.ids.contains(&id) {
            // §2.2.2.2: an Identifier not valid for the packet is a Malformed Packet.
            return Err(malformed(format!(
                "{context}: property 0x{id:02X} is not allowed here"
            )));
        }
        if !allowed.repeatable.contains(&id) && seen & (1 << id) != 0 {
            // "It is a Protocol Error to include <property> more than once" (§3.x.2.x).
            return Err(protocol_error(format!(
                "{context}: property 0x{id:02X} included more than once"
            )));
        }
        seen |= 1 << id;
        read_value(&mut reader, id, context, &mut props)?;
    }
    Ok(props)
}

fn read_value(
    reader: &mut Reader,
    id: u8,
    context: &'static str,
    props: &mut Properties,
) -> Result<(), DecodeError> {
    let what = Field {
        context,
        id: Some(id),
    };
    match id {
        PAYLOAD_FORMAT_INDICATOR => {
            props.payload_format_indicator = Some(zero_or_one(reader, what)?)
        }
        MESSAGE_EXPIRY_INTERVAL => props.message_expiry_interval = Some(reader.u32(what)?),
        CONTENT_TYPE => props.content_type = Some(reader.string(what)?),
        RESPONSE_TOPIC => {
            let topic = reader.string(what)?;
            // [MQTT-3.3.2-14] The Response Topic MUST NOT contain wildcards; it is a Topic
            // Name, so it is not empty either ([MQTT-4.7.3-1]). No reason code is given for
            // it: we treat it as a Protocol Error.
            if !is_valid_topic_name(&topic) {
                return Err(protocol_error(format!(
                    "{what}: Response Topic {topic:?} is not a valid Topic Name"
                )));
            }
            props.response_topic = Some(topic);
        }
        CORRELATION_DATA => props.correlation_data = Some(reader.binary(what)?),
        SUBSCRIPTION_IDENTIFIER => {
            let value = reader.vbi(what)?;
            if value == 0 {
                // §3.3.2.3.8 / §3.8.2.1.2: a Subscription Identifier of 0 is a Protocol Error.
                return Err(protocol_error(format!("{what}: Subscription Identifier 0")));
            }
            props.subscription_identifiers.push(value);
        }
        SESSION_EXPIRY_INTERVAL => props.session_expiry_interval = Some(reader.u32(what)?),
        ASSIGNED_CLIENT_IDENTIFIER => props.assigned_client_identifier = Some(reader.string(what)?),
        SERVER_KEEP_ALIVE => props.server_keep_alive = Some(reader.u16(what)?),
        AUTHENTICATION_METHOD => props.authentication_method = Some(reader.string(what)?),
        AUTHENTICATION_DATA => props.authentication_data = Some(reader.binary(what)?),
        REQUEST_PROBLEM_INFORMATION => {
            props.request_problem_information = Some(zero_or_one(reader, what)?)
        }
        WILL_DELAY_INTERVAL => props.will_delay_interval = Some(reader.u32(what)?),
        REQUEST_RESPONSE_INFORMATION => {
            props.request_response_information = Some(zero_or_one(reader, what)?)
        }
        RESPONSE_INFORMATION => props.response_information = Some(reader.string(what)?),
        SERVER_REFERENCE => props.server_reference = Some(reader.string(what)?),
        REASON_STRING => props.reason_string = Some(reader.string(what)?),
        RECEIVE_MAXIMUM => props.receive_maximum = Some(non_zero_u16(reader, what)?),
        TOPIC_ALIAS_MAXIMUM => props.topic_alias_maximum = Some(reader.u16(what)?),
        // [MQTT-3.3.2-8] A Topic Alias of 0 is not permitted; it is decoded so that the
        // receiver can answer with its own reason code (the broker closes with 0x94, Topic
        // Alias invalid, as it does for an alias above its maximum).
        TOPIC_ALIAS => props.topic_alias = Some(reader.u16(what)?),
        MAXIMUM_QOS => {
            props.maximum_qos = Some(match zero_or_one(reader, what)? {
                0 => QoS::AtMostOnce,
                _ => QoS::AtLeastOnce,
            });
        }
        RETAIN_AVAILABLE => props.retain_available = Some(flag(reader, what)?),
        USER_PROPERTY => {
            // [MQTT-1.5.7-1] Both strings of a pair MUST be valid UTF-8 Encoded Strings.
            let name = reader.string(what)?;
            let value = reader.string(what)?;
            props.user_properties.push((name, value));
        }
        MAXIMUM_PACKET_SIZE => {
            let value = reader.u32(what)?;
            if value == 0 {
                return Err(protocol_error(format!("{what}: Maximum Packet Size 0")));
            }
            props.maximum_packet_size = Some(value);
        }
        WILDCARD_SUBSCRIPTION_AVAILABLE => {
            props.wildcard_subscription_available = Some(flag(reader, what)?)
        }
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
            props.subscription_identifier_available = Some(flag(reader, what)?);
        }
        SHARED_SUBSCRIPTION_AVAILABLE => {
            props.shared_subscription_available = Some(flag(reader, what)?)
        }
        _ => unreachable!("property 0x{id:02X} passed the allowed-list check"),
    }
    Ok(())
}

/// Byte properties whose only legal values are 0 and 1; anything else is a Protocol Error.
fn zero_or_one(reader: &mut Reader, what: Field) -> Result<u8, DecodeError> {
    match reader.u8(what)? {
        value @ (0 | 1) => Ok(value),
        value => Err(protocol_error(format!(
            "{what}: value {value}, must be 0 or 1"
        ))),
    }
}

fn flag(reader: &mut Reader, what: Field) -> Result<bool, DecodeError> {
    Ok(zero_or_one(reader, what)? == 1)
}

/// Receive Maximum and Topic Alias: a value of 0 is a Protocol Error.
fn non_zero_u16(reader: &mut Reader, what: Field) -> Result<u16, DecodeError> {
    match reader.u16(what)? {
        0 => Err(protocol_error(format!("{what}: value 0 is not permitted"))),
        value => Ok(value),
    }
}

/// Collects properties, then writes them behind their Property Length.
#[derive(Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    pub fn u8(&mut self, id: u8, value: Option<u8>) {
        if let Some(value) = value {
            self.buf.put_u8(id);
            self.buf.put_u8(value);
        }
    }

    pub fn flag(&mut self, id: u8, value: Option<bool>) {
        self.u8(id, value.map(u8::from));
    }

    pub fn u16(&mut self, id: u8, value: Option<u16>) {
        if let Some(value) = value {
            self.buf.put_u8(id);
            self.buf.put_u16(value);
        }
    }

    pub fn u32(&mut self, id: u8, value: Option<u32>) {
        if let Some(value) = value {
            self.buf.put_u8(id);
            self.buf.put_u32(value);
        }
    }

    pub fn vbi(&mut self, id: u8, value: u32) -> Result<(), String> {
        self.buf.put_u8(id);
        put_vbi(
            &mut self.buf,
            value as usize,
            Field {
                context: "property",
                id: Some(id),
            },
        )
    }

    pub fn string(&mut self, id: u8, value: Option<&str>) -> Result<(), String> {
        self.binary(id, value.map(str::as_bytes))
    }

    pub fn binary(&mut self, id: u8, value: Option<&[u8]>) -> Result<(), String> {
        if let Some(value) = value {
            self.buf.put_u8(id);
            put_binary(
                &mut self.buf,
                value,
                Field {
                    context: "property",
                    id: Some(id),
                },
            )?;
        }
        Ok(())
    }

    pub fn user_properties(&mut self, pairs: &[UserProperty]) -> Result<(), String> {
        for (name, value) in pairs {
            self.buf.put_u8(USER_PROPERTY);
            put_string(&mut self.buf, name, "User Property name")?;
            put_string(&mut self.buf, value, "User Property value")?;
        }
        Ok(())
    }

    pub fn message(&mut self, props: &MessageProperties) -> Result<(), String> {
        self.u8(PAYLOAD_FORMAT_INDICATOR, props.payload_format_indicator);
        self.u32(MESSAGE_EXPIRY_INTERVAL, props.message_expiry_interval);
        self.string(CONTENT_TYPE, props.content_type.as_deref())?;
        self.string(RESPONSE_TOPIC, props.response_topic.as_deref())?;
        self.binary(CORRELATION_DATA, props.correlation_data.as_deref())?;
        self.user_properties(&props.user_properties)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn finish(self, out: &mut BytesMut) -> Result<(), String> {
        put_vbi(out, self.buf.len(), "Property Length")?;
        out.put_slice(&self.buf);
        Ok(())
    }
}
