//! DISCONNECT (§3.14), written here rather than through mqttbytes, which rejects `E0 00`,
//! hangs on `E0 01 xx` and loses the reason code when encoding.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::PacketType;
use super::props;
use super::wire::Reader;
use super::{DecodeError, Disconnect, Protocol, ReasonCode};

/// v5: Remaining Length 0 means Reason Code 0x00 and no properties, 1 means no properties
/// (§3.14.2.1, §3.14.2.2.1). The Reason Code is taken as any byte: the broker decides what a
/// code outside Table 3-10 means ([MQTT-3.14.2-1]), since the Will still has to be published.
/// 3.1.1: the packet has no variable header, so any byte after the fixed header is Malformed.
pub fn decode_disconnect(body: Bytes, protocol: Protocol) -> Result<Disconnect, DecodeError> {
    let mut reader = Reader::new(body);
    let mut disconnect = Disconnect::default();
    if protocol.is_v5() && !reader.is_empty() {
        disconnect.code = reader.u8("Disconnect Reason Code")?.into();
        if !reader.is_empty() {
            let props = props::read(&mut reader, &props::DISCONNECT)?;
            disconnect.session_expiry_interval = props.session_expiry_interval;
            disconnect.reason_string = props.reason_string;
            disconnect.server_reference = props.server_reference;
            disconnect.user_properties = props.user_properties;
        }
    }
    reader.finish("DISCONNECT")?;
    Ok(disconnect)
}

/// Writes the shortest form that keeps everything: `E0 00` for a bare 0x00, `E0 01 rc` for a
/// bare code, and the Property Length only when there are properties.
pub fn encode_disconnect(
    disconnect: &Disconnect,
    protocol: Protocol,
    body: &mut BytesMut,
) -> Result<u8, String> {
    if protocol.is_v5() {
        let mut props = props::Writer::default();
        props.u32(
            props::SESSION_EXPIRY_INTERVAL,
            disconnect.session_expiry_interval,
        );
        props.string(props::REASON_STRING, disconnect.reason_string.as_deref())?;
        props.string(
            props::SERVER_REFERENCE,
            disconnect.server_reference.as_deref(),
        )?;
        props.user_properties(&disconnect.user_properties)?;
        let has_props = !props.is_empty();
        if disconnect.code != ReasonCode::NORMAL_DISCONNECTION || has_props {
            body.put_u8(disconnect.code.into());
        }
        if has_props {
            props.finish(body)?;
        }
    }
    Ok(PacketType::Disconnect.byte1(0))
}
