//! Raw CONNECT bytes of a scenario's `send:` step, read as far as the harness needs: which
//! protocol they speak (so the CONNACK's code is named from that version's table), and where
//! a user name and password go (so `--username/--password` reach a broker that refuses
//! anonymous clients even in the scenarios that write their own bytes).
//!
//! Only the frame's structure is read, never its meaning: a raw CONNECT is usually malformed
//! on purpose somewhere, and what is wrong with it must survive the splice.

use bytes::{BufMut, Bytes, BytesMut};
use lastwill_broker::codec::Protocol;

/// The protocol of a raw CONNECT, from its Protocol Level: 5 is MQTT 5, 3 and 4 are 3.1 and
/// 3.1.1 (one return-code table). `None` for bytes that are no CONNECT or other levels.
pub fn protocol(bytes: &[u8]) -> Option<Protocol> {
    let header = Header::read(bytes)?;
    match bytes.get(header.level_at)? {
        5 => Some(Protocol::V5),
        3 | 4 => Some(Protocol::V311),
        _ => None,
    }
}

/// Whether the bytes start a CONNECT (packet type 1).
fn is_connect(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| b >> 4 == 1)
}

/// The bytes with `username` (and `password`) added to their first CONNECT, flags and
/// Remaining Length fixed. Bytes that do not start a CONNECT, and a CONNECT that names a user
/// already, come back as they are. `None` when the CONNECT cannot take them: its frame is not
/// well-formed from the fixed header to the end of its payload (client id, will fields as
/// its flags say), or it has a password without a user name (3.1.1: [MQTT-3.1.2-22]).
pub fn with_credentials(bytes: &Bytes, username: &str, password: Option<&str>) -> Option<Bytes> {
    if !is_connect(bytes) {
        return Some(bytes.clone());
    }
    let header = Header::read(bytes)?;
    let level = *bytes.get(header.level_at)?;
    let flags_at = header.level_at + 1;
    let flags = *bytes.get(flags_at)?;
    if flags & USERNAME != 0 {
        return Some(bytes.clone());
    }
    if flags & PASSWORD != 0 {
        return None;
    }
    let mut at = flags_at + 3; // flags and Keep Alive
    if level == 5 {
        skip_properties(bytes, &mut at)?;
    }
    skip_prefixed(bytes, &mut at)?; // client identifier
    if flags & WILL != 0 {
        if level == 5 {
            skip_properties(bytes, &mut at)?;
        }
        skip_prefixed(bytes, &mut at)?; // will topic
        skip_prefixed(bytes, &mut at)?; // will payload
    }
    if at != header.end {
        return None;
    }
    let mut added = BytesMut::new();
    put_prefixed(&mut added, username.as_bytes())?;
    let mut flags = flags | USERNAME;
    if let Some(password) = password {
        put_prefixed(&mut added, password.as_bytes())?;
        flags |= PASSWORD;
    }
    let remaining = header.end - header.body_at + added.len();
    let mut out = BytesMut::with_capacity(bytes.len() + added.len() + 4);
    out.put_u8(bytes[0]);
    put_vbi(&mut out, remaining)?;
    out.put_slice(&bytes[header.body_at..flags_at]);
    out.put_u8(flags);
    out.put_slice(&bytes[flags_at + 1..header.end]);
    out.put_slice(&added);
    out.put_slice(&bytes[header.end..]);
    Some(out.freeze())
}

const USERNAME: u8 = 0x80;
const PASSWORD: u8 = 0x40;
const WILL: u8 = 0x04;

/// Where a CONNECT frame's parts start: its variable header, its Protocol Level byte, and
/// where the frame ends (it may be followed by more packets).
struct Header {
    body_at: usize,
    level_at: usize,
    end: usize,
}

impl Header {
    fn read(bytes: &[u8]) -> Option<Header> {
        if bytes.first() != Some(&0x10) {
            return None;
        }
        let mut at = 1;
        let remaining = vbi(bytes, &mut at)?;
        let body_at = at;
        let end = body_at.checked_add(remaining)?;
        if end > bytes.len() {
            return None;
        }
        skip_prefixed(&bytes[..end], &mut at)?; // protocol name
        Some(Header {
            body_at,
            level_at: at,
            end,
        })
    }
}

/// A Variable Byte Integer of at most four bytes.
fn vbi(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    for shift in [0, 7, 14, 21] {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= usize::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn put_vbi(out: &mut BytesMut, mut value: usize) -> Option<()> {
    if value > 268_435_455 {
        return None;
    }
    loop {
        let byte = (value % 128) as u8;
        value /= 128;
        if value == 0 {
            out.put_u8(byte);
            return Some(());
        }
        out.put_u8(byte | 0x80);
    }
}

/// Skips a two-byte length and that many bytes.
fn skip_prefixed(bytes: &[u8], at: &mut usize) -> Option<()> {
    let len = u16::from_be_bytes([*bytes.get(*at)?, *bytes.get(*at + 1)?]);
    *at += 2 + usize::from(len);
    (*at <= bytes.len()).then_some(())
}

/// Skips a property block: its length, then that many bytes.
fn skip_properties(bytes: &[u8], at: &mut usize) -> Option<()> {
    let len = vbi(bytes, at)?;
    *at = at.checked_add(len)?;
    (*at <= bytes.len()).then_some(())
}

fn put_prefixed(out: &mut BytesMut, bytes: &[u8]) -> Option<()> {
    out.put_u16(u16::try_from(bytes.len()).ok()?);
    out.put_slice(bytes);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Bytes {
        let digits: String = text.split_whitespace().collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }

    /// 3.1.1 CONNECT, level 4, will flag and clean session, client "device", will "w" "g".
    const V311_WILL: &str = "10 18 0004 4d515454 04 06 003c 0006 646576696365 0001 77 0001 67";

    #[test]
    fn credentials_go_after_the_payload_with_flags_and_length_fixed() {
        let spliced = with_credentials(&hex(V311_WILL), "anon", Some("x")).unwrap();
        let expected = hex(
            "10 21 0004 4d515454 04 c6 003c 0006 646576696365 0001 77 0001 67 0004 616e6f6e 0001 78",
        );
        assert_eq!(spliced, expected);
        assert_eq!(protocol(&spliced), Some(Protocol::V311));
        // without a password only the user name flag is set; a pipelined packet is kept
        let mut pipelined = hex(V311_WILL).to_vec();
        pipelined.extend_from_slice(&[0xe0, 0x00]);
        let spliced = with_credentials(&pipelined.into(), "anon", None).unwrap();
        assert_eq!(spliced[9], 0x86);
        assert!(spliced.ends_with(&[0x00, 0x04, b'a', b'n', b'o', b'n', 0xe0, 0x00]));
    }

    #[test]
    fn a_v5_connect_skips_both_property_blocks() {
        // level 5, will flag, CONNECT properties (1 byte: none), will properties of 2 bytes
        let v5 = hex("10 17 0004 4d515454 05 04 003c 00 0001 64 02 0101 0001 77 0001 67");
        let spliced = with_credentials(&v5, "u", None).unwrap();
        assert_eq!(spliced[1], 0x1a);
        assert_eq!(spliced[9], 0x84);
        assert!(spliced.ends_with(&[0x00, 0x01, b'u']));
        assert_eq!(protocol(&v5), Some(Protocol::V5));
    }

    #[test]
    fn what_cannot_take_credentials_is_none_and_the_rest_is_kept() {
        // will flag set but no will fields: the payload ends early
        let missing = hex("10 12 0004 4d515454 04 06 003c 0006 646576696365");
        assert_eq!(with_credentials(&missing, "u", None), None);
        // a frame longer than the bytes
        assert_eq!(with_credentials(&hex("10 30 0004 4d51"), "u", None), None);
        // password without user name
        let password_only = hex("10 12 0004 4d515454 04 42 003c 0000 0004 70617373");
        assert_eq!(with_credentials(&password_only, "u", None), None);
        // a user already named, and bytes that are no CONNECT, are left as they are
        let named = hex("10 0f 0004 4d515454 04 82 003c 0000 0001 75");
        assert_eq!(with_credentials(&named, "other", None), Some(named));
        let disconnect = hex("e0 00");
        assert_eq!(
            with_credentials(&disconnect, "u", None),
            Some(disconnect.clone())
        );
        assert_eq!(protocol(&disconnect), None);
    }
}
