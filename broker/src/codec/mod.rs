//! The MQTT wire format: our own strict encoder and decoder for MQTT 3.1.1 and 5.0.
//!
//! It exposes a version-neutral packet model ([`Packet`]) and the reason codes
//! ([`ReasonCode`], [`ConnectReturnCode`], [`ConnAckCode`]), and it is strict: what the spec
//! calls malformed, or a protocol error detectable from one packet alone, is rejected here
//! with the reason code the broker must use.
//!
//! It began as a wrapper of mqttbytes 0.6 and is its own codec now: a strict decoder has to
//! walk every byte of a frame (reserved bits, duplicate and misplaced properties, minimal
//! VBIs, U+0000, trailing bytes), and mqttbytes' readers check none of that, so wrapping them
//! meant parsing each frame twice. Its writers cannot represent our model without loss (a
//! `String` password, enum-only reason codes, the DISCONNECT reason, several Subscription
//! Identifiers) and corrupt strings over 65,535 bytes. See the architecture's list of
//! mqttbytes defects; the tests in `tests.rs` pin each of them, and mqttbytes is left only as
//! a dev-dependency that cross-checks our encoding (`broker/tests/it/codec_mqttbytes.rs`).
//!
//! - `frame`: fixed header and framing; `wire`: data representations (§1.5); `props`: v5
//!   properties; `topic`: Topic Name rules; `reason`: the reason code tables.
//! - One module per packet family: `connect`, `publish`, `subscribe`, `disconnect`; the
//!   model they share is in `packet`.

mod connect;
mod disconnect;
mod frame;
mod packet;
mod props;
mod publish;
mod reason;
mod subscribe;
#[cfg(test)]
mod tests;
mod topic;
mod wire;

pub use packet::*;
pub use reason::{ConnAckCode, ConnectReturnCode, ReasonCode};

use bytes::{Buf, Bytes, BytesMut};

use frame::PacketType;

/// Why a frame could not be decoded, and the reason code the receiver must close with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} (0x{:02X}): {detail}", self.kind.describe(), u8::from(self.kind.reason_code()))]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    /// What exactly was wrong, for logs and transcripts.
    pub detail: String,
    /// The protocol level read from a CONNECT before the error was found, if any. It decides
    /// whether a failed CONNECT gets a v5 CONNACK with a reason code or a bare close
    /// ([MQTT-3.1.4-1]).
    pub protocol: Option<Protocol>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// 0x81: the packet cannot be parsed according to the specification.
    Malformed,
    /// 0x82: parsed, but breaks a rule (duplicate property, packet before CONNECT, ...).
    ProtocolError,
    /// 0x95: bigger than the receiver's Maximum Packet Size.
    PacketTooLarge,
    /// 0x84 (v5) / 0x01 (3.1.1): CONNECT with a protocol name or level we do not speak.
    UnsupportedProtocolVersion,
    /// 0x90: a Topic Name (also the Will Topic) that is well-formed UTF-8 but not a valid
    /// topic: empty, or containing `+`/`#` ([MQTT-4.7.0-1], [MQTT-4.7.3-1]).
    TopicNameInvalid,
}

impl DecodeErrorKind {
    /// The MQTT 5 reason code for CONNACK (before CONNACK) or DISCONNECT (after).
    pub fn reason_code(self) -> ReasonCode {
        match self {
            DecodeErrorKind::Malformed => ReasonCode::MALFORMED_PACKET,
            DecodeErrorKind::ProtocolError => ReasonCode::PROTOCOL_ERROR,
            DecodeErrorKind::PacketTooLarge => ReasonCode::PACKET_TOO_LARGE,
            DecodeErrorKind::UnsupportedProtocolVersion => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeErrorKind::TopicNameInvalid => ReasonCode::TOPIC_NAME_INVALID,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            DecodeErrorKind::Malformed => "malformed packet",
            DecodeErrorKind::ProtocolError => "protocol error",
            DecodeErrorKind::PacketTooLarge => "packet too large",
            DecodeErrorKind::UnsupportedProtocolVersion => "unsupported protocol version",
            DecodeErrorKind::TopicNameInvalid => "topic name invalid",
        }
    }
}

/// Why a packet could not be encoded (a string over 65,535 bytes, a value out of range).
/// Nothing is written to the buffer when this is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {packet}: {detail}")]
pub struct EncodeError {
    pub packet: &'static str,
    pub detail: String,
}

/// Reads one packet from the front of `buf`.
///
/// - `Ok(Some(packet))`: exactly that packet's bytes were consumed.
/// - `Ok(None)`: `buf` does not hold a whole frame yet; nothing was consumed.
/// - `Err(_)`: the connection must be closed with the error's reason code.
///
/// `protocol` is `None` until CONNECT has been decoded: then only a CONNECT is accepted and
/// its protocol level decides how it is parsed. `max_packet_size` is the receiver's limit on
/// a whole frame (fixed header included); a larger frame is rejected as soon as its length is
/// known, without waiting for its bytes.
///
/// Errors found in the fixed header (packet type, flags, Remaining Length, size) are reported
/// as soon as the bytes showing them arrive and consume nothing; errors in a complete frame
/// consume that frame. Either way the connection is to be closed.
pub fn decode(
    buf: &mut BytesMut,
    protocol: Option<Protocol>,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = frame::read_header(buf, protocol)? else {
        return Ok(None);
    };
    let frame_len = header.frame_len();
    if frame_len > max_packet_size as usize {
        let mut error = wire::error(
            DecodeErrorKind::PacketTooLarge,
            format!("{frame_len}-byte packet exceeds the maximum of {max_packet_size} bytes"),
        );
        if protocol.is_none() && header.packet_type == PacketType::Connect {
            // [MQTT-3.1.4-1] a v5 server MAY answer CONNACK 0x95 first: wait for the few
            // bytes that say which protocol the CONNECT speaks
            let body = &buf[header.header_len..];
            if body.len() < connect::PROTOCOL_PREFIX_LEN {
                return Ok(None);
            }
            error.protocol = connect::peek_protocol(body);
        }
        return Err(error);
    }
    if buf.len() < frame_len {
        return Ok(None);
    }
    let body = take_body(buf, header.header_len, frame_len);
    let packet = match (protocol, header.packet_type) {
        (Some(protocol), packet_type) => decode_packet(packet_type, header.flags, body, protocol)?,
        (None, PacketType::Connect) => Packet::Connect(connect::decode_connect(body)?),
        // read_header already refuses these from their first byte ([MQTT-3.1.0-1]).
        (None, packet_type) => {
            return Err(wire::protocol_error(format!(
                "{packet_type:?} before CONNECT"
            )));
        }
    };
    Ok(Some(packet))
}

/// Takes the frame at the front of `buf` and returns its body. A decoded packet keeps slices
/// of its body (a will's payload, a message's), so a body cut from a larger read buffer would
/// pin all of it for as long as the packet lives: a stored will would hold its connection's
/// whole read chunk. A frame smaller than half the buffer is copied out instead, so that
/// what a packet pins is at most twice its size.
fn take_body(buf: &mut BytesMut, header_len: usize, frame_len: usize) -> Bytes {
    if frame_len * 2 < buf.capacity() {
        let body = Bytes::copy_from_slice(&buf[header_len..frame_len]);
        buf.advance(frame_len);
        body
    } else {
        buf.split_to(frame_len).freeze().split_off(header_len)
    }
}

fn decode_packet(
    packet_type: PacketType,
    flags: u8,
    body: Bytes,
    protocol: Protocol,
) -> Result<Packet, DecodeError> {
    Ok(match packet_type {
        PacketType::Connect => Packet::Connect(connect::decode_connect(body)?),
        PacketType::ConnAck => Packet::ConnAck(connect::decode_connack(body, protocol)?),
        PacketType::Publish => Packet::Publish(publish::decode_publish(flags, body, protocol)?),
        PacketType::PubAck => Packet::PubAck(publish::decode_ack(body, protocol, "PUBACK")?),
        PacketType::PubRec => Packet::PubRec(publish::decode_ack(body, protocol, "PUBREC")?),
        PacketType::PubRel => Packet::PubRel(publish::decode_ack(body, protocol, "PUBREL")?),
        PacketType::PubComp => Packet::PubComp(publish::decode_ack(body, protocol, "PUBCOMP")?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode_subscribe(body, protocol)?),
        PacketType::SubAck => Packet::SubAck(subscribe::decode_suback(body, protocol)?),
        PacketType::Unsubscribe => {
            Packet::Unsubscribe(subscribe::decode_unsubscribe(body, protocol)?)
        }
        PacketType::UnsubAck => Packet::UnsubAck(subscribe::decode_unsuback(body, protocol)?),
        PacketType::PingReq => {
            wire::Reader::new(body).finish("PINGREQ")?;
            Packet::PingReq
        }
        PacketType::PingResp => {
            wire::Reader::new(body).finish("PINGRESP")?;
            Packet::PingResp
        }
        PacketType::Disconnect => {
            Packet::Disconnect(disconnect::decode_disconnect(body, protocol)?)
        }
    })
}

/// Appends the encoding of `packet` for `protocol` to `buf`. On error nothing is appended.
///
/// Fields the protocol does not have (v5 properties and reason codes in 3.1.1) are left out.
/// A CONNECT is encoded for its own `protocol` field, whatever `protocol` says.
pub fn encode(packet: &Packet, protocol: Protocol, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let mut body = BytesMut::new();
    let byte1 = match packet {
        Packet::Connect(connect) => connect::encode_connect(connect, &mut body),
        Packet::ConnAck(connack) => connect::encode_connack(connack, protocol, &mut body),
        Packet::Publish(publish) => publish::encode_publish(publish, protocol, &mut body),
        Packet::PubAck(ack) => Ok(publish::encode_ack(
            ack,
            protocol,
            PacketType::PubAck,
            &mut body,
        )),
        Packet::PubRec(ack) => Ok(publish::encode_ack(
            ack,
            protocol,
            PacketType::PubRec,
            &mut body,
        )),
        Packet::PubRel(ack) => Ok(publish::encode_ack(
            ack,
            protocol,
            PacketType::PubRel,
            &mut body,
        )),
        Packet::PubComp(ack) => Ok(publish::encode_ack(
            ack,
            protocol,
            PacketType::PubComp,
            &mut body,
        )),
        Packet::Subscribe(subscribe) => subscribe::encode_subscribe(subscribe, protocol, &mut body),
        Packet::SubAck(suback) => subscribe::encode_suback(suback, protocol, &mut body),
        Packet::Unsubscribe(unsubscribe) => {
            subscribe::encode_unsubscribe(unsubscribe, protocol, &mut body)
        }
        Packet::UnsubAck(unsuback) => subscribe::encode_unsuback(unsuback, protocol, &mut body),
        Packet::PingReq => Ok(PacketType::PingReq.byte1(0)),
        Packet::PingResp => Ok(PacketType::PingResp.byte1(0)),
        Packet::Disconnect(disconnect) => {
            disconnect::encode_disconnect(disconnect, protocol, &mut body)
        }
    };
    byte1
        .and_then(|byte1| frame::put_header(buf, byte1, body.len()))
        .map_err(|detail| EncodeError {
            packet: packet.name(),
            detail,
        })?;
    buf.extend_from_slice(&body);
    Ok(())
}

/// The size in bytes of `packet`'s encoding (fixed header included), used to honour a peer's
/// Maximum Packet Size before sending ([MQTT-3.1.2-24]).
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
    let mut buf = BytesMut::new();
    encode(packet, protocol, &mut buf)?;
    Ok(buf.len())
}
