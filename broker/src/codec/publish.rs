//! PUBLISH (§3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-§3.7).

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::PacketType;
use super::props::{self, Properties};
use super::topic::check_topic_name;
use super::wire::{Reader, protocol_error, put_string};
use super::{Ack, DecodeError, Protocol, Publish, QoS, ReasonCode};

const DUP: u8 = 0b1000;
const RETAIN: u8 = 0b0001;
const QOS_SHIFT: u8 = 1;

/// Decodes a PUBLISH whose fixed header flags were already checked (QoS 3 and DUP at QoS 0
/// are refused while framing).
pub fn decode_publish(flags: u8, body: Bytes, protocol: Protocol) -> Result<Publish, DecodeError> {
    let qos = match (flags >> QOS_SHIFT) & 0b11 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let mut reader = Reader::new(body);
    let topic = reader.string("Topic Name")?;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        _ => Some(reader.packet_id()?),
    };
    let mut props = match protocol {
        Protocol::V5 => props::read(&mut reader, &props::PUBLISH)?,
        Protocol::V311 => Properties::default(),
    };
    let payload = reader.rest();

    if topic.is_empty() && protocol.is_v5() {
        // §3.3.2.1: a zero-length Topic Name stands for the Topic Alias; without one it is a
        // Protocol Error.
        if props.topic_alias.is_none() {
            return Err(protocol_error(
                "PUBLISH with an empty Topic Name and no Topic Alias",
            ));
        }
    } else {
        // [MQTT-3.3.2-2]: no wildcards; [MQTT-4.7.3-1]: not empty (3.1.1 has no alias).
        check_topic_name(&topic, "PUBLISH Topic Name")?;
    }

    Ok(Publish {
        dup: flags & DUP != 0,
        qos,
        retain: flags & RETAIN != 0,
        topic,
        packet_id,
        payload,
        properties: props.take_message(),
        topic_alias: props.topic_alias,
        subscription_identifiers: props.subscription_identifiers,
    })
}

pub fn encode_publish(
    publish: &Publish,
    protocol: Protocol,
    body: &mut BytesMut,
) -> Result<u8, String> {
    put_string(body, &publish.topic, "Topic Name")?;
    match (publish.qos, publish.packet_id) {
        (QoS::AtMostOnce, None) => {}
        (QoS::AtMostOnce, Some(_)) => return Err("a QoS 0 PUBLISH has no Packet Identifier".into()),
        (_, Some(id)) => body.put_u16(id),
        (_, None) => return Err("a QoS 1 or 2 PUBLISH needs a Packet Identifier".into()),
    }
    if protocol.is_v5() {
        let mut props = props::Writer::default();
        props.message(&publish.properties)?;
        props.u16(props::TOPIC_ALIAS, publish.topic_alias);
        for &id in &publish.subscription_identifiers {
            props.vbi(props::SUBSCRIPTION_IDENTIFIER, id)?;
        }
        props.finish(body)?;
    }
    body.put_slice(&publish.payload);

    let mut flags = publish.qos.as_u8() << QOS_SHIFT;
    if publish.dup {
        flags |= DUP;
    }
    if publish.retain {
        flags |= RETAIN;
    }
    Ok(PacketType::Publish.byte1(flags))
}

/// Decodes PUBACK, PUBREC, PUBREL or PUBCOMP. In v5 the Reason Code and the properties may
/// be left out (Remaining Length 2: code 0x00; 3: no properties). Any reason code byte is
/// accepted: judging it is the receiver's business. The Reason String and User Properties
/// are checked but not kept.
pub fn decode_ack(body: Bytes, protocol: Protocol, name: &str) -> Result<Ack, DecodeError> {
    let mut reader = Reader::new(body);
    let packet_id = reader.packet_id()?;
    let mut code = ReasonCode::SUCCESS;
    if protocol.is_v5() && !reader.is_empty() {
        code = reader.u8("Reason Code")?.into();
        if !reader.is_empty() {
            props::read(&mut reader, &props::ACK)?;
        }
    }
    reader.finish(name)?;
    Ok(Ack { packet_id, code })
}

/// Writes the shortest form: v5 omits a 0x00 Reason Code; 3.1.1 has none.
pub fn encode_ack(
    ack: &Ack,
    protocol: Protocol,
    packet_type: PacketType,
    body: &mut BytesMut,
) -> u8 {
    body.put_u16(ack.packet_id);
    if protocol.is_v5() && ack.code != ReasonCode::SUCCESS {
        body.put_u8(ack.code.into());
    }
    // [MQTT-3.6.1-1] PUBREL's fixed header flags are 0010.
    let flags = if packet_type == PacketType::PubRel {
        0b0010
    } else {
        0
    };
    packet_type.byte1(flags)
}
