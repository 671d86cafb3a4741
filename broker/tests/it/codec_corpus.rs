//! Runs the corpus of malformed frames in `corpus/malformed.txt` through `codec::decode`.

use bytes::BytesMut;
use lastwill_broker::codec::{DecodeErrorKind, Protocol, decode};

const CORPUS: &str = include_str!("corpus/malformed.txt");
const MAX_PACKET_SIZE: u32 = 256;

struct Case<'a> {
    line: usize,
    bytes: Vec<u8>,
    protocol: Option<Protocol>,
    kind: DecodeErrorKind,
    description: &'a str,
}

fn parse(line: usize, text: &str) -> Case<'_> {
    let fields: Vec<&str> = text.split('|').map(str::trim).collect();
    let [hex, protocol, kind, description] = fields[..] else {
        panic!("line {line}: expected `hex | protocol | kind | description`");
    };
    let digits: String = hex.split_whitespace().collect();
    let bytes = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("line {line}: bad hex: {e}"));
    let protocol = match protocol {
        "none" => None,
        "3.1.1" => Some(Protocol::V311),
        "5" => Some(Protocol::V5),
        other => panic!("line {line}: unknown protocol {other:?}"),
    };
    let kind = match kind {
        "malformed" => DecodeErrorKind::Malformed,
        "protocol-error" => DecodeErrorKind::ProtocolError,
        "packet-too-large" => DecodeErrorKind::PacketTooLarge,
        "unsupported-protocol-version" => DecodeErrorKind::UnsupportedProtocolVersion,
        "topic-name-invalid" => DecodeErrorKind::TopicNameInvalid,
        other => panic!("line {line}: unknown kind {other:?}"),
    };
    Case {
        line,
        bytes,
        protocol,
        kind,
        description,
    }
}

fn cases() -> Vec<Case<'static>> {
    CORPUS
        .lines()
        .enumerate()
        .filter(|(_, text)| !text.trim().is_empty() && !text.starts_with('#'))
        .map(|(index, text)| parse(index + 1, text))
        .collect()
}

#[test]
fn every_corpus_frame_is_rejected_with_its_kind() {
    let cases = cases();
    assert!(
        cases.len() >= 40,
        "the corpus shrank to {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let mut buf = BytesMut::from(&case.bytes[..]);
        match decode(&mut buf, case.protocol, MAX_PACKET_SIZE) {
            Err(err) if err.kind == case.kind => {
                // A CONNECT whose level was readable says which CONNACK form to answer with.
                if case.bytes[0] == 0x10 && case.bytes.len() > 8 {
                    assert!(
                        err.protocol.is_some(),
                        "line {}: no protocol in {err}",
                        case.line
                    );
                }
            }
            other => failures.push(format!(
                "line {}: {}: expected {:?}, got {other:?}",
                case.line, case.description, case.kind
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The corpus is about the rule named in each line, so each frame must be otherwise valid:
/// a frame cut short would only show that truncation is detected.
#[test]
fn corpus_frames_are_complete() {
    for case in cases() {
        if case.kind == DecodeErrorKind::PacketTooLarge {
            continue;
        }
        let mut buf = BytesMut::from(&case.bytes[..]);
        let _ = decode(&mut buf, case.protocol, MAX_PACKET_SIZE);
        let whole_frame_consumed = buf.is_empty();
        let refused_from_header = buf.len() == case.bytes.len();
        assert!(
            whole_frame_consumed || refused_from_header,
            "line {}: {} bytes left over",
            case.line,
            buf.len()
        );
    }
}
