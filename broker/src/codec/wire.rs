//! The MQTT data representations (§1.5): integers, Variable Byte Integers, Binary Data and
//! UTF-8 Encoded Strings, read strictly from a frame and written with their length checks.

use std::fmt::Display;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{DecodeError, DecodeErrorKind};

/// The largest value a Variable Byte Integer can carry (four bytes).
pub const VBI_MAX: u32 = 268_435_455;

pub fn malformed(detail: impl Into<String>) -> DecodeError {
    error(DecodeErrorKind::Malformed, detail)
}

pub fn protocol_error(detail: impl Into<String>) -> DecodeError {
    error(DecodeErrorKind::ProtocolError, detail)
}

pub fn error(kind: DecodeErrorKind, detail: impl Into<String>) -> DecodeError {
    DecodeError {
        kind,
        detail: detail.into(),
        protocol: None,
    }
}

/// What a Variable Byte Integer at the front of some bytes turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Vbi {
    /// The value and how many bytes encoded it.
    Complete(u32, usize),
    /// Every byte so far has the continuation bit set and fewer than four were seen.
    Incomplete,
}

/// Parses a Variable Byte Integer, rejecting more than four bytes and non-minimal encodings
/// ([MQTT-1.5.5-1]) as Malformed.
pub fn parse_vbi(bytes: &[u8]) -> Result<Vbi, DecodeError> {
    let mut value: u32 = 0;
    for (index, &byte) in bytes.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            if index > 0 && byte == 0 {
                return Err(malformed("variable byte integer not in its minimal form"));
            }
            return Ok(Vbi::Complete(value, index + 1));
        }
    }
    if bytes.len() >= 4 {
        return Err(malformed("variable byte integer longer than four bytes"));
    }
    Ok(Vbi::Incomplete)
}

/// A cursor over one complete frame body. Running out of bytes is Malformed: the frame's
/// Remaining Length promised them.
pub struct Reader {
    bytes: Bytes,
}

impl Reader {
    pub fn new(bytes: Bytes) -> Reader {
        Reader { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn need(&self, count: usize, what: impl Display) -> Result<(), DecodeError> {
        if self.bytes.len() < count {
            return Err(malformed(format!(
                "{what}: needs {count} byte(s), {} left in the packet",
                self.bytes.len()
            )));
        }
        Ok(())
    }

    pub fn u8(&mut self, what: impl Display) -> Result<u8, DecodeError> {
        self.need(1, what)?;
        Ok(self.bytes.get_u8())
    }

    pub fn u16(&mut self, what: impl Display) -> Result<u16, DecodeError> {
        self.need(2, what)?;
        Ok(self.bytes.get_u16())
    }

    pub fn u32(&mut self, what: impl Display) -> Result<u32, DecodeError> {
        self.need(4, what)?;
        Ok(self.bytes.get_u32())
    }

    pub fn vbi(&mut self, what: impl Display) -> Result<u32, DecodeError> {
        match parse_vbi(&self.bytes)? {
            Vbi::Complete(value, len) => {
                self.bytes.advance(len);
                Ok(value)
            }
            Vbi::Incomplete => Err(malformed(format!(
                "{what}: truncated variable byte integer"
            ))),
        }
    }

    /// `count` raw bytes, without copying.
    pub fn take(&mut self, count: usize, what: impl Display) -> Result<Bytes, DecodeError> {
        self.need(count, what)?;
        Ok(self.bytes.split_to(count))
    }

    /// Everything left in the frame (a PUBLISH payload, a SUBSCRIBE's filter list).
    pub fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.bytes)
    }

    /// Binary Data: a two-byte length, then that many bytes (§1.5.6).
    pub fn binary(&mut self, what: impl Display + Copy) -> Result<Bytes, DecodeError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// A UTF-8 Encoded String (§1.5.4): well-formed UTF-8 without surrogates
    /// ([MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]) and without U+0000 ([MQTT-1.5.4-2], 3.1.1
    /// [MQTT-1.5.3-2]). A BOM is kept as U+FEFF ([MQTT-1.5.4-3]).
    pub fn string(&mut self, what: impl Display + Copy) -> Result<String, DecodeError> {
        let bytes = self.binary(what)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| malformed(format!("{what}: ill-formed UTF-8 ({e})")))?;
        if text.contains('\0') {
            return Err(malformed(format!("{what}: contains U+0000")));
        }
        Ok(text.to_owned())
    }

    /// A Packet Identifier: non-zero in every packet that has one ([MQTT-2.2.1-3]; 3.1.1
    /// [MQTT-2.3.1-1]), and acknowledgements echo a non-zero one. 0 is a Protocol Error.
    pub fn packet_id(&mut self) -> Result<u16, DecodeError> {
        match self.u16("Packet Identifier")? {
            0 => Err(protocol_error("Packet Identifier 0")),
            id => Ok(id),
        }
    }

    /// Fails unless the whole frame was read: trailing bytes make a packet Malformed.
    pub fn finish(&self, packet: &str) -> Result<(), DecodeError> {
        if !self.bytes.is_empty() {
            return Err(malformed(format!(
                "{packet}: {} unexpected byte(s) after the end of the packet",
                self.bytes.len()
            )));
        }
        Ok(())
    }
}

/// Writes a Variable Byte Integer, or explains why `value` does not fit in one.
pub fn put_vbi(buf: &mut BytesMut, value: usize, what: impl Display) -> Result<(), String> {
    if value > VBI_MAX as usize {
        return Err(format!("{what} {value} exceeds {VBI_MAX}"));
    }
    let mut rest = value;
    loop {
        let byte = (rest % 128) as u8;
        rest /= 128;
        if rest == 0 {
            buf.put_u8(byte);
            return Ok(());
        }
        buf.put_u8(byte | 0x80);
    }
}

/// Writes Binary Data, refusing more than 65,535 bytes instead of truncating the length.
pub fn put_binary(buf: &mut BytesMut, bytes: &[u8], what: impl Display) -> Result<(), String> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| format!("{what} is {} bytes, more than 65,535", bytes.len()))?;
    buf.put_u16(len);
    buf.put_slice(bytes);
    Ok(())
}

/// Writes a UTF-8 Encoded String ([MQTT-1.5.4-1]: at most 65,535 bytes).
pub fn put_string(buf: &mut BytesMut, text: &str, what: impl Display) -> Result<(), String> {
    put_binary(buf, text.as_bytes(), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vbi_accepts_minimal_encodings_up_to_four_bytes() {
        assert_eq!(parse_vbi(&[0x00]).unwrap(), Vbi::Complete(0, 1));
        assert_eq!(parse_vbi(&[0x7F]).unwrap(), Vbi::Complete(127, 1));
        assert_eq!(parse_vbi(&[0x80, 0x01]).unwrap(), Vbi::Complete(128, 2));
        assert_eq!(
            parse_vbi(&[0xFF, 0xFF, 0xFF, 0x7F]).unwrap(),
            Vbi::Complete(VBI_MAX, 4)
        );
        assert_eq!(parse_vbi(&[0x80, 0x80]).unwrap(), Vbi::Incomplete);
        assert_eq!(parse_vbi(&[]).unwrap(), Vbi::Incomplete);
    }

    #[test]
    fn vbi_rejects_five_bytes_and_non_minimal_forms() {
        for bytes in [
            &[0x80, 0x80, 0x80, 0x80][..],
            &[0x80, 0x00],
            &[0xFF, 0x80, 0x00],
        ] {
            let err = parse_vbi(bytes).unwrap_err();
            assert_eq!(err.kind, DecodeErrorKind::Malformed, "{bytes:02X?}");
        }
    }

    #[test]
    fn vbi_writes_round_trip_and_refuse_overflow() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            VBI_MAX as usize,
        ] {
            let mut buf = BytesMut::new();
            put_vbi(&mut buf, value, "v").unwrap();
            assert_eq!(
                parse_vbi(&buf).unwrap(),
                Vbi::Complete(value as u32, buf.len())
            );
        }
        assert!(put_vbi(&mut BytesMut::new(), VBI_MAX as usize + 1, "v").is_err());
    }

    #[test]
    fn strings_reject_ill_formed_utf8_and_nul_but_keep_a_bom() {
        for bad in [
            &[0x00, 0x01, 0xFF][..],
            &[0x00, 0x02, 0xC0, 0x80],
            &[0x00, 0x03, 0xED, 0xA0, 0x80],
            &[0x00, 0x02, 0xE2, 0x82],
            &[0x00, 0x03, b'a', 0x00, b'b'],
        ] {
            let err = Reader::new(Bytes::copy_from_slice(bad))
                .string("s")
                .unwrap_err();
            assert_eq!(err.kind, DecodeErrorKind::Malformed, "{bad:02X?}");
        }
        let bom = [0x00, 0x04, 0xEF, 0xBB, 0xBF, b'x'];
        let text = Reader::new(Bytes::copy_from_slice(&bom))
            .string("s")
            .unwrap();
        assert_eq!(text, "\u{FEFF}x");
    }

    #[test]
    fn oversized_strings_are_refused_when_writing() {
        let mut buf = BytesMut::new();
        assert!(put_string(&mut buf, &"a".repeat(65_536), "topic").is_err());
        assert!(buf.is_empty());
        put_string(&mut buf, &"a".repeat(65_535), "topic").unwrap();
        assert_eq!(buf.len(), 65_537);
    }
}
