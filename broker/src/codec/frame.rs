//! The fixed header (§2.1): packet type, flags and Remaining Length. Framing happens here,
//! before any packet is parsed, so that an incomplete frame is never consumed and an
//! oversized one is refused as soon as its length is known.

use bytes::{BufMut, BytesMut};

use super::wire::{Vbi, malformed, parse_vbi, protocol_error, put_vbi};
use super::{DecodeError, Protocol};

/// The control packet types (Table 2-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
}

impl PacketType {
    /// The first byte of the fixed header for this type with `flags` in the low nibble.
    pub fn byte1(self, flags: u8) -> u8 {
        (self as u8) << 4 | flags
    }
}

/// A parsed fixed header whose flags are valid for its packet type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    pub packet_type: PacketType,
    pub flags: u8,
    /// Byte 1 plus the Remaining Length bytes.
    pub header_len: usize,
    pub remaining_len: usize,
}

impl FixedHeader {
    pub fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Reads the fixed header at the front of `buf`: `Ok(None)` when more bytes are needed.
///
/// Errors are reported from the first byte that shows them, so a broken packet type or flag
/// nibble is refused without waiting for the rest of the frame.
pub fn read_header(
    buf: &[u8],
    protocol: Option<Protocol>,
) -> Result<Option<FixedHeader>, DecodeError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let packet_type = packet_type(byte1 >> 4, protocol)?;
    let flags = byte1 & 0x0F;
    check_flags(packet_type, flags)?;
    match parse_vbi(&buf[1..])? {
        Vbi::Incomplete => Ok(None),
        Vbi::Complete(remaining_len, len) => Ok(Some(FixedHeader {
            packet_type,
            flags,
            header_len: 1 + len,
            remaining_len: remaining_len as usize,
        })),
    }
}

fn packet_type(nibble: u8, protocol: Option<Protocol>) -> Result<PacketType, DecodeError> {
    let Some(protocol) = protocol else {
        // [MQTT-3.1.0-1] The first packet sent on a Network Connection MUST be a CONNECT.
        return match nibble {
            1 => Ok(PacketType::Connect),
            _ => Err(protocol_error(format!(
                "packet type {nibble} before CONNECT: the first packet must be CONNECT"
            ))),
        };
    };
    Ok(match nibble {
        1 => PacketType::Connect,
        2 => PacketType::ConnAck,
        3 => PacketType::Publish,
        4 => PacketType::PubAck,
        5 => PacketType::PubRec,
        6 => PacketType::PubRel,
        7 => PacketType::PubComp,
        8 => PacketType::Subscribe,
        9 => PacketType::SubAck,
        10 => PacketType::Unsubscribe,
        11 => PacketType::UnsubAck,
        12 => PacketType::PingReq,
        13 => PacketType::PingResp,
        14 => PacketType::Disconnect,
        // No Authentication Method is ever accepted, so an AUTH is out of place
        // (§4.12: AUTH only follows a CONNECT with an Authentication Method).
        15 if protocol.is_v5() => {
            return Err(protocol_error(
                "AUTH: enhanced authentication is not supported",
            ));
        }
        _ => return Err(malformed(format!("reserved packet type {nibble}"))),
    })
}

/// Reserved flag bits MUST have the values of Table 2-2 ([MQTT-2.1.3-1]; 3.1.1
/// [MQTT-2.2.2-1], [MQTT-2.2.2-2]); PUBLISH's flags are DUP, QoS and RETAIN.
fn check_flags(packet_type: PacketType, flags: u8) -> Result<(), DecodeError> {
    match packet_type {
        PacketType::Publish => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                // [MQTT-3.3.1-4] A PUBLISH packet MUST NOT have both QoS bits set to 1.
                return Err(malformed("PUBLISH with QoS bits 11"));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
                return Err(malformed("PUBLISH with DUP set at QoS 0"));
            }
            Ok(())
        }
        // [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]: flags MUST be 0010.
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe if flags == 0b0010 => {
            Ok(())
        }
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Err(malformed(
            format!("{packet_type:?} fixed header flags {flags:04b}, must be 0010"),
        )),
        _ if flags == 0 => Ok(()),
        _ => Err(malformed(format!(
            "{packet_type:?} fixed header flags {flags:04b}, must be 0000"
        ))),
    }
}

/// Appends a fixed header, or explains why `remaining_len` cannot be encoded.
pub fn put_header(buf: &mut BytesMut, byte1: u8, remaining_len: usize) -> Result<(), String> {
    let mut header = BytesMut::with_capacity(5);
    header.put_u8(byte1);
    put_vbi(&mut header, remaining_len, "Remaining Length")?;
    buf.put_slice(&header);
    Ok(())
}
