//! Raw bytes a client writes on an accepted connection (`send:`), read far enough to say what
//! they mean for its will: a DISCONNECT, or a packet the server must close the connection for.
//! Anything else is outside the model.

use lastwill_broker::codec::Protocol;

/// What a raw packet means for the will of the connection it is sent on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawPacket {
    /// A well-framed DISCONNECT; its reason code and Session Expiry Interval are judged by the
    /// same rules as a structured `disconnect`.
    Disconnect {
        code: u8,
        session_expiry: Option<u32>,
    },
    /// A packet the server must close the connection for ([MQTT-4.13.1-1], 3.1.1
    /// [MQTT-4.8.0-1]); the text says which rule it breaks.
    Violation(&'static str),
    /// A 3.1.1 DISCONNECT with reserved flag bits set: the server must disconnect the client
    /// ([MQTT-3.14.1-1]) but the spec does not say whether the will goes out ({A5}).
    UnclearDisconnect,
}

/// Reads one packet; `Err` says why the oracle does not model it.
pub fn classify(bytes: &[u8], protocol: Protocol, max_qos: u8) -> Result<RawPacket, String> {
    let not_modelled = |what: &str| Err(format!("raw bytes: {what} is not modelled"));
    let Some((&first, rest)) = bytes.split_first() else {
        return not_modelled("an empty `send:`");
    };
    let Some((remaining, body)) = variable_byte_integer(rest) else {
        return not_modelled("a packet with a broken Remaining Length");
    };
    // the server closes at the first packet that breaks a rule and reads nothing after it
    // ([MQTT-4.13.1-1]), so only a violation may be followed by more bytes
    let Some(packet) = body.get(..remaining) else {
        return not_modelled("raw bytes that end inside a packet");
    };
    let trailing = body.len() > remaining;
    match read(first, packet, protocol, max_qos)? {
        violation @ RawPacket::Violation(_) => Ok(violation),
        _ if trailing => not_modelled("raw bytes holding more than one packet"),
        other => Ok(other),
    }
}

fn read(first: u8, body: &[u8], protocol: Protocol, max_qos: u8) -> Result<RawPacket, String> {
    let not_modelled = |what: &str| Err(format!("raw bytes: {what} is not modelled"));
    let v5 = protocol == Protocol::V5;
    let flags = first & 0x0F;
    match first >> 4 {
        1 => Ok(RawPacket::Violation(
            "a second CONNECT on the connection [MQTT-3.1.0-2]",
        )),
        3 => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Ok(RawPacket::Violation("a PUBLISH with QoS 3 [MQTT-3.3.1-4]"));
            }
            if v5 && qos > max_qos {
                return Ok(RawPacket::Violation(
                    "a PUBLISH above the server's Maximum QoS [MQTT-3.2.2-11]",
                ));
            }
            if v5 && publish_topic_alias(body, qos) == Some(0) {
                return Ok(RawPacket::Violation(
                    "a PUBLISH with Topic Alias 0 [MQTT-3.3.2-8]",
                ));
            }
            not_modelled("a raw PUBLISH")
        }
        6 if flags != 0b0010 => Ok(RawPacket::Violation(
            "a PUBREL with fixed-header flags other than 0010 [MQTT-2.2.2-2]",
        )),
        8 if flags != 0b0010 => Ok(RawPacket::Violation(
            "a SUBSCRIBE with fixed-header flags other than 0010 [MQTT-3.8.1-1]",
        )),
        10 if flags != 0b0010 => Ok(RawPacket::Violation(
            "an UNSUBSCRIBE with fixed-header flags other than 0010 [MQTT-3.10.1-1]",
        )),
        14 if flags != 0 && v5 => Ok(RawPacket::Violation(
            "a DISCONNECT with reserved flag bits set [MQTT-3.14.1-1]",
        )),
        14 if flags != 0 => Ok(RawPacket::UnclearDisconnect),
        14 if !v5 => match body {
            [] => Ok(RawPacket::Disconnect {
                code: 0,
                session_expiry: None,
            }),
            _ => not_modelled("a 3.1.1 DISCONNECT with a body"),
        },
        14 => disconnect(body).map_or_else(
            || not_modelled("a DISCONNECT whose properties do not parse"),
            |(code, session_expiry)| {
                Ok(RawPacket::Disconnect {
                    code,
                    session_expiry,
                })
            },
        ),
        _ => not_modelled("this raw packet"),
    }
}

/// §1.5.5: up to four bytes, seven bits each, least significant first.
fn variable_byte_integer(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(4) {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// The Topic Alias (0x23) property of a v5 PUBLISH body, if it has one.
fn publish_topic_alias(body: &[u8], qos: u8) -> Option<u16> {
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let after_topic = 2 + topic_len + if qos > 0 { 2 } else { 0 };
    let (props_len, props) = variable_byte_integer(body.get(after_topic..)?)?;
    let mut props = props.get(..props_len)?;
    while let Some((&id, rest)) = props.split_first() {
        let skip = match id {
            0x01 => 1,
            0x02 => 4,
            0x23 => return Some(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            0x03 | 0x08 | 0x09 => {
                2 + usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]))
            }
            _ => return None,
        };
        props = rest.get(skip..)?;
    }
    None
}

/// A v5 DISCONNECT body: its reason code (absent = 0x00, §3.14.2.1) and Session Expiry
/// Interval (0x11), or `None` when the properties do not parse.
fn disconnect(body: &[u8]) -> Option<(u8, Option<u32>)> {
    let Some((&code, rest)) = body.split_first() else {
        return Some((0, None));
    };
    if rest.is_empty() {
        return Some((code, None));
    }
    let (props_len, props) = variable_byte_integer(rest)?;
    if props.len() != props_len {
        return None;
    }
    let mut props = props;
    let mut session_expiry = None;
    let string_len =
        |b: &[u8]| Some(2 + usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?])));
    while let Some((&id, rest)) = props.split_first() {
        let skip = match id {
            0x11 => {
                let b = rest.get(..4)?;
                session_expiry = Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                4
            }
            0x1F | 0x1C => string_len(rest)?,
            0x26 => {
                let key = string_len(rest)?;
                key + string_len(rest.get(key..)?)?
            }
            _ => return None,
        };
        props = rest.get(skip..)?;
    }
    Some((code, session_expiry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn disconnect_encodings_are_read() {
        let v5 = Protocol::V5;
        let normal = RawPacket::Disconnect {
            code: 0,
            session_expiry: None,
        };
        assert_eq!(classify(&hex("e0 00"), v5, 2), Ok(normal.clone()));
        assert_eq!(classify(&hex("e0 01 00"), v5, 2), Ok(normal.clone()));
        assert_eq!(classify(&hex("e0 02 00 00"), v5, 2), Ok(normal));
        assert_eq!(
            classify(&hex("e0 07 00 05 11 00 00 00 3c"), v5, 2),
            Ok(RawPacket::Disconnect {
                code: 0,
                session_expiry: Some(60)
            })
        );
        assert_eq!(
            classify(&hex("e0 02 ff 00"), v5, 2),
            Ok(RawPacket::Disconnect {
                code: 0xFF,
                session_expiry: None
            })
        );
        assert!(matches!(
            classify(&hex("e1 00"), v5, 2),
            Ok(RawPacket::Violation(_))
        ));
        assert_eq!(
            classify(&hex("e1 00"), Protocol::V311, 2),
            Ok(RawPacket::UnclearDisconnect)
        );
    }

    #[test]
    fn protocol_errors_are_recognised() {
        let v5 = Protocol::V5;
        let violation = |bytes: &str, max_qos| {
            matches!(
                classify(&hex(bytes), v5, max_qos),
                Ok(RawPacket::Violation(_))
            )
        };
        assert!(violation("36 06 00 01 74 00 01 00", 2));
        assert!(violation("34 07 00 01 74 00 01 00 78", 1));
        assert!(!violation("34 07 00 01 74 00 01 00 78", 2));
        assert!(violation("30 08 00 01 74 03 23 00 00 78", 2));
        assert!(violation("80 07 00 01 00 00 01 74 00", 2));
        assert!(violation("60 02 00 01", 2));
        assert!(violation("10 02 00 00", 2));
        assert!(classify(&hex("e0 05"), v5, 2).is_err());
    }
}
