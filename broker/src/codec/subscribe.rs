//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (§3.8-§3.11).
//!
//! Topic Filters are checked as UTF-8 strings only: their syntax (`a+/b`, `a/#/b`, empty) is
//! judged by the broker core, which answers 0x8F (v5) or 0x80 (3.1.1) for that filter alone.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::PacketType;
use super::props;
use super::wire::{Reader, malformed, protocol_error, put_string};
use super::{
    DecodeError, Protocol, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionRequest,
    UnsubAck, Unsubscribe,
};

const NO_LOCAL: u8 = 0b0000_0100;
const RETAIN_AS_PUBLISHED: u8 = 0b0000_1000;
const RETAIN_HANDLING_SHIFT: u8 = 4;

/// The fixed header flags of SUBSCRIBE and UNSUBSCRIBE ([MQTT-3.8.1-1], [MQTT-3.10.1-1]).
const REQUEST_FLAGS: u8 = 0b0010;

pub fn decode_subscribe(body: Bytes, protocol: Protocol) -> Result<Subscribe, DecodeError> {
    let mut reader = Reader::new(body);
    let packet_id = reader.packet_id()?;
    let (subscription_identifier, user_properties) = match protocol {
        Protocol::V5 => {
            let props = props::read(&mut reader, &props::SUBSCRIBE)?;
            (
                props.subscription_identifiers.first().copied(),
                props.user_properties,
            )
        }
        Protocol::V311 => (None, Vec::new()),
    };
    let mut filters = Vec::new();
    while !reader.is_empty() {
        let filter = reader.string("Topic Filter")?;
        let options = reader.u8("Subscription Options")?;
        filters.push(subscription_request(filter, options, protocol)?);
    }
    if filters.is_empty() {
        // 5.0 [MQTT-3.8.3-2]; 3.1.1 [MQTT-3.8.3-3]: at least one Topic Filter.
        return Err(protocol_error("SUBSCRIBE without a Topic Filter"));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        subscription_identifier,
        user_properties,
    })
}

fn subscription_request(
    filter: String,
    options: u8,
    protocol: Protocol,
) -> Result<SubscriptionRequest, DecodeError> {
    let reserved = match protocol {
        Protocol::V5 => 0b1100_0000,
        Protocol::V311 => 0b1111_1100,
    };
    if options & reserved != 0 {
        // 5.0 [MQTT-3.8.3-5]; 3.1.1 [MQTT-3-8.3-4]: reserved bits set is Malformed.
        return Err(malformed(format!(
            "SUBSCRIBE options {options:08b} for {filter:?}: reserved bits set"
        )));
    }
    let Some(qos) = QoS::from_u8(options & 0b11) else {
        // 5.0 §3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3";
        // 3.1.1 [MQTT-3-8.3-4] makes it Malformed.
        let detail = format!("SUBSCRIBE requests QoS 3 for {filter:?}");
        return Err(match protocol {
            Protocol::V5 => protocol_error(detail),
            Protocol::V311 => malformed(detail),
        });
    };
    let retain_handling = match (options >> RETAIN_HANDLING_SHIFT) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        // §3.8.3.1: a Retain Handling value of 3 is a Protocol Error.
        _ => {
            return Err(protocol_error(format!(
                "SUBSCRIBE Retain Handling 3 for {filter:?}"
            )));
        }
    };
    Ok(SubscriptionRequest {
        filter,
        qos,
        no_local: options & NO_LOCAL != 0,
        retain_as_published: options & RETAIN_AS_PUBLISHED != 0,
        retain_handling,
    })
}

pub fn encode_subscribe(
    subscribe: &Subscribe,
    protocol: Protocol,
    body: &mut BytesMut,
) -> Result<u8, String> {
    body.put_u16(subscribe.packet_id);
    if protocol.is_v5() {
        let mut props = props::Writer::default();
        if let Some(id) = subscribe.subscription_identifier {
            props.vbi(props::SUBSCRIPTION_IDENTIFIER, id)?;
        }
        props.user_properties(&subscribe.user_properties)?;
        props.finish(body)?;
    }
    for request in &subscribe.filters {
        put_string(body, &request.filter, "Topic Filter")?;
        let mut options = request.qos.as_u8();
        if protocol.is_v5() {
            if request.no_local {
                options |= NO_LOCAL;
            }
            if request.retain_as_published {
                options |= RETAIN_AS_PUBLISHED;
            }
            options |= (request.retain_handling as u8) << RETAIN_HANDLING_SHIFT;
        }
        body.put_u8(options);
    }
    Ok(PacketType::Subscribe.byte1(REQUEST_FLAGS))
}

/// Any code byte is accepted; the v5 User Properties are checked but not kept.
pub fn decode_suback(body: Bytes, protocol: Protocol) -> Result<SubAck, DecodeError> {
    let mut reader = Reader::new(body);
    let packet_id = reader.packet_id()?;
    let reason_string = match protocol {
        Protocol::V5 => props::read(&mut reader, &props::ACK)?.reason_string,
        Protocol::V311 => None,
    };
    Ok(SubAck {
        packet_id,
        codes: codes(&reader.rest()),
        reason_string,
    })
}

/// In 3.1.1 every failure code (>= 0x80) becomes the one failure return code 0x80
/// ([MQTT-3.9.3-2]: only 0x00, 0x01, 0x02 and 0x80 are allowed).
pub fn encode_suback(
    suback: &SubAck,
    protocol: Protocol,
    body: &mut BytesMut,
) -> Result<u8, String> {
    body.put_u16(suback.packet_id);
    match protocol {
        Protocol::V5 => {
            let mut props = props::Writer::default();
            props.string(props::REASON_STRING, suback.reason_string.as_deref())?;
            props.finish(body)?;
            put_codes(body, &suback.codes);
        }
        Protocol::V311 => {
            for &code in &suback.codes {
                body.put_u8(match u8::from(code) {
                    value @ 0..=2 => value,
                    0x80.. => SubAck::V311_FAILURE.into(),
                    value => return Err(format!("SUBACK code 0x{value:02X} has no 3.1.1 form")),
                });
            }
        }
    }
    Ok(PacketType::SubAck.byte1(0))
}

pub fn decode_unsubscribe(body: Bytes, protocol: Protocol) -> Result<Unsubscribe, DecodeError> {
    let mut reader = Reader::new(body);
    let packet_id = reader.packet_id()?;
    let user_properties = match protocol {
        Protocol::V5 => props::read(&mut reader, &props::UNSUBSCRIBE)?.user_properties,
        Protocol::V311 => Vec::new(),
    };
    let mut filters = Vec::new();
    while !reader.is_empty() {
        filters.push(reader.string("Topic Filter")?);
    }
    if filters.is_empty() {
        // [MQTT-3.10.3-2] (both versions): at least one Topic Filter.
        return Err(protocol_error("UNSUBSCRIBE without a Topic Filter"));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        user_properties,
    })
}

pub fn encode_unsubscribe(
    unsubscribe: &Unsubscribe,
    protocol: Protocol,
    body: &mut BytesMut,
) -> Result<u8, String> {
    body.put_u16(unsubscribe.packet_id);
    if protocol.is_v5() {
        let mut props = props::Writer::default();
        props.user_properties(&unsubscribe.user_properties)?;
        props.finish(body)?;
    }
    for filter in &unsubscribe.filters {
        put_string(body, filter, "Topic Filter")?;
    }
    Ok(PacketType::Unsubscribe.byte1(REQUEST_FLAGS))
}

/// 3.1.1 UNSUBACK is only a Packet Identifier; v5 adds properties (checked, not kept) and one
/// code per filter.
pub fn decode_unsuback(body: Bytes, protocol: Protocol) -> Result<UnsubAck, DecodeError> {
    let mut reader = Reader::new(body);
    let packet_id = reader.packet_id()?;
    let codes = match protocol {
        Protocol::V5 => {
            props::read(&mut reader, &props::ACK)?;
            codes(&reader.rest())
        }
        Protocol::V311 => {
            reader.finish("UNSUBACK")?;
            Vec::new()
        }
    };
    Ok(UnsubAck { packet_id, codes })
}

pub fn encode_unsuback(
    unsuback: &UnsubAck,
    protocol: Protocol,
    body: &mut BytesMut,
) -> Result<u8, String> {
    body.put_u16(unsuback.packet_id);
    if protocol.is_v5() {
        props::Writer::default().finish(body)?;
        put_codes(body, &unsuback.codes);
    }
    Ok(PacketType::UnsubAck.byte1(0))
}

/// The reason codes that end a SUBACK or UNSUBACK, one byte each.
fn codes(bytes: &[u8]) -> Vec<ReasonCode> {
    bytes.iter().copied().map(ReasonCode::from).collect()
}

fn put_codes(body: &mut BytesMut, codes: &[ReasonCode]) {
    body.extend(codes.iter().copied().map(u8::from));
}
