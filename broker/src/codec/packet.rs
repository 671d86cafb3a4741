//! The version-neutral packet model shared by the broker core and the harness client.
//!
//! One struct per control packet, with MQTT 5 properties as typed optional fields. A 3.1.1
//! packet is the same struct with the v5-only fields left at their defaults; the encoder
//! drops them and the decoder never fills them.

use bytes::Bytes;

use super::reason::{ConnAckCode, ReasonCode};

/// The protocol level negotiated by CONNECT (byte 7 of the variable header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// MQTT 3.1.1, protocol level 4.
    V311,
    /// MQTT 5.0, protocol level 5.
    V5,
}

impl Protocol {
    pub fn level(self) -> u8 {
        match self {
            Protocol::V311 => 4,
            Protocol::V5 => 5,
        }
    }

    pub fn is_v5(self) -> bool {
        self == Protocol::V5
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::V311 => "3.1.1",
            Protocol::V5 => "5",
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A UTF-8 string pair (MQTT 5 User Property). Order and duplicates are significant
/// ([MQTT-3.3.2-18]), so they travel as a vector, never a map.
pub type UserProperty = (String, String);

/// The properties an Application Message carries from publisher to subscribers. They are
/// shared by PUBLISH and by the Will (Will Properties minus Will Delay Interval).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageProperties {
    /// 0x01 Payload Format Indicator.
    pub payload_format_indicator: Option<u8>,
    /// 0x02 Message Expiry Interval, seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
    /// 0x08 Response Topic.
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// 0x26 User Property, in wire order.
    pub user_properties: Vec<UserProperty>,
}

impl MessageProperties {
    pub fn is_empty(&self) -> bool {
        *self == MessageProperties::default()
    }
}

/// The Will of a CONNECT: topic, payload, flags and (v5) Will Properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastWill {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// 0x18 Will Delay Interval, seconds; `None` when absent (same as 0).
    pub delay_interval: Option<u32>,
    pub properties: MessageProperties,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    pub protocol: Protocol,
    pub client_id: String,
    /// Clean Start (v5) or Clean Session (3.1.1).
    pub clean_start: bool,
    pub keep_alive: u16,
    /// 0x11 Session Expiry Interval, seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x21 Receive Maximum.
    pub receive_maximum: Option<u16>,
    /// 0x27 Maximum Packet Size.
    pub maximum_packet_size: Option<u32>,
    /// 0x22 Topic Alias Maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x19 Request Response Information.
    pub request_response_information: Option<u8>,
    /// 0x17 Request Problem Information.
    pub request_problem_information: Option<u8>,
    /// 0x15 Authentication Method (enhanced authentication is not supported by the broker).
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data.
    pub authentication_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
    pub will: Option<LastWill>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
}

impl Connect {
    /// A minimal CONNECT: clean start, keep-alive 60 s, no will, no properties.
    pub fn new(protocol: Protocol, client_id: impl Into<String>) -> Connect {
        Connect {
            protocol,
            client_id: client_id.into(),
            clean_start: true,
            keep_alive: 60,
            session_expiry_interval: None,
            receive_maximum: None,
            maximum_packet_size: None,
            topic_alias_maximum: None,
            request_response_information: None,
            request_problem_information: None,
            authentication_method: None,
            authentication_data: None,
            user_properties: Vec::new(),
            will: None,
            username: None,
            password: None,
        }
    }
}

/// CONNACK properties (v5). The broker announces its capabilities here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAckProperties {
    pub session_expiry_interval: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_qos: Option<QoS>,
    pub retain_available: Option<bool>,
    pub maximum_packet_size: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub topic_alias_maximum: Option<u16>,
    pub reason_string: Option<String>,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifiers_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
    pub server_keep_alive: Option<u16>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub user_properties: Vec<UserProperty>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    /// v5 reason code (Table 3-1) or 3.1.1 return code (Table 3.1).
    pub code: ConnAckCode,
    pub properties: ConnAckProperties,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in v5 when a Topic Alias stands for it.
    pub topic: String,
    /// Present exactly when `qos > 0`.
    pub packet_id: Option<u16>,
    pub payload: Bytes,
    pub properties: MessageProperties,
    /// 0x23 Topic Alias.
    pub topic_alias: Option<u16>,
    /// 0x0B Subscription Identifiers (server to client only), in order.
    pub subscription_identifiers: Vec<u32>,
}

impl Publish {
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>, qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            packet_id: None,
            payload: payload.into(),
            properties: MessageProperties::default(),
            topic_alias: None,
            subscription_identifiers: Vec::new(),
        }
    }
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub packet_id: u16,
    /// v5 reason code; 0x00 in 3.1.1.
    pub code: ReasonCode,
}

impl Ack {
    pub fn success(packet_id: u16) -> Ack {
        Ack {
            packet_id,
            code: ReasonCode::SUCCESS,
        }
    }
}

/// Retain Handling subscription option (v5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription does not already exist.
    SendIfNew = 1,
    /// 2: do not send retained messages at subscribe.
    DoNotSend = 2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub filter: String,
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionRequest {
    pub fn new(filter: impl Into<String>, qos: QoS) -> SubscriptionRequest {
        SubscriptionRequest {
            filter: filter.into(),
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: u16,
    pub filters: Vec<SubscriptionRequest>,
    /// 0x0B Subscription Identifier (1..=268,435,455).
    pub subscription_identifier: Option<u32>,
    pub user_properties: Vec<UserProperty>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: u16,
    /// One per filter: granted QoS (0x00..=0x02) or a failure code (>= 0x80). 3.1.1 has the
    /// same granted codes and one failure code, [`SubAck::V311_FAILURE`].
    pub codes: Vec<ReasonCode>,
    pub reason_string: Option<String>,
}

impl SubAck {
    /// The 3.1.1 SUBACK return code Failure (0x80, §3.9.3 of 3.1.1): every v5 failure code
    /// is sent to a 3.1.1 client as this one.
    pub const V311_FAILURE: ReasonCode = ReasonCode::UNSPECIFIED_ERROR;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub filters: Vec<String>,
    pub user_properties: Vec<UserProperty>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: u16,
    /// v5 only: one per filter. Empty in 3.1.1.
    pub codes: Vec<ReasonCode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// v5 reason code (Table 3-10); 0x00 in 3.1.1.
    pub code: ReasonCode,
    pub session_expiry_interval: Option<u32>,
    pub reason_string: Option<String>,
    pub server_reference: Option<String>,
    pub user_properties: Vec<UserProperty>,
}

impl Disconnect {
    pub fn with_code(code: ReasonCode) -> Disconnect {
        Disconnect {
            code,
            ..Disconnect::default()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
}

impl Packet {
    /// What a receiver answers in the QoS 1 and 2 flows, with reason 0x00: PUBACK to a QoS 1
    /// PUBLISH, PUBREC to a QoS 2 PUBLISH, PUBCOMP to a PUBREL; nothing to anything else.
    pub fn receiver_ack(&self) -> Option<Packet> {
        match self {
            Packet::Publish(publish) => match (publish.qos, publish.packet_id) {
                (QoS::AtLeastOnce, Some(id)) => Some(Packet::PubAck(Ack::success(id))),
                (QoS::ExactlyOnce, Some(id)) => Some(Packet::PubRec(Ack::success(id))),
                _ => None,
            },
            Packet::PubRel(ack) => Some(Packet::PubComp(Ack::success(ack.packet_id))),
            _ => None,
        }
    }

    /// The control packet name as the spec writes it (`CONNECT`, `PUBACK`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
        }
    }
}
