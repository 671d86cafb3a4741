//! Readers for the scenario language's value types: durations, wire intervals, instants,
//! reason codes, hex bytes, payloads, ranges, protocol versions, QoS, levels and `broker:`
//! settings.

use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{Protocol, QoS, ReasonCode, UserProperty};
use lastwill_broker::config::{self, Credential, Kind, Setting};

use super::model::{Level, PropertyCheck, Range, TimeRef};
use super::yaml::{Fields, Node, R, Value, did_you_mean, parse_uint};

const DURATION_HELP: &str = "a number and a unit (ms, s, m or h), like `250ms`, `5s` or `2m`";

/// `250ms`, `5s`, `1.5s`, `2m`, `1h`.
pub fn duration(node: &Node) -> R<Duration> {
    let text = node.text(&format!("a duration: {DURATION_HELP}"))?;
    parse_duration(text).ok_or_else(|| {
        node.err(format!(
            "invalid duration `{text}`: expected {DURATION_HELP}"
        ))
    })
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let unit_ns: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return None;
    }
    let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let whole: u128 = whole.parse().ok()?;
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let nanos = whole
        .checked_mul(unit_ns)?
        .checked_add(fraction.checked_mul(unit_ns)? / scale)?;
    Some(Duration::new(
        u64::try_from(nanos / 1_000_000_000).ok()?,
        u32::try_from(nanos % 1_000_000_000).ok()?,
    ))
}

/// An interval that travels on the wire in whole seconds: `60` (seconds), `60s` or `2m`.
pub fn seconds<T: TryFrom<u64> + Into<u64> + Copy + super::yaml::Bounded>(node: &Node) -> R<T> {
    let secs = seconds_in(node, T::MIN.into(), T::MAX.into())?;
    T::try_from(secs).map_err(|_| node.expected("whole seconds"))
}

/// Whole seconds within `min..=max`, written as for [`seconds`].
fn seconds_in(node: &Node, min: u64, max: u64) -> R<u64> {
    if matches!(&node.value, Value::Scalar { text, plain: true, .. } if parse_uint(text).is_some())
    {
        return node.uint_in(min, max);
    }
    let text = node.text("whole seconds: `60`, `60s` or `2m`")?;
    let value = parse_duration(text).ok_or_else(|| {
        node.err(format!(
            "invalid duration `{text}`: expected seconds (`60`) or {DURATION_HELP}"
        ))
    })?;
    if value.subsec_nanos() != 0 {
        return Err(node.err(format!(
            "`{text}` is not a whole number of seconds (this interval travels in seconds)"
        )));
    }
    let secs = value.as_secs();
    if secs < min {
        return Err(node.err(format!("`{text}` is out of range: at least {min} seconds")));
    }
    if secs > max {
        return Err(node.err(format!("`{text}` is out of range: at most {max} seconds")));
    }
    Ok(secs)
}

/// `NAME`, `NAME + 5s`, `5s` (from the start) or `start + 5s`. Mark names are checked by the
/// caller.
pub fn time_ref(node: &Node) -> R<TimeRef> {
    let help = "an instant: `MARK`, `MARK + DURATION` or `DURATION` (from the start)";
    let text = node.text(help)?;
    let invalid = || node.err(format!("invalid instant `{text}`: expected {help}"));
    let (mark, offset) = match text.split_once('+') {
        Some((mark, offset)) => (
            mark.trim(),
            parse_duration(offset.trim()).ok_or_else(|| {
                node.err(format!(
                    "invalid duration `{}` in `{text}`: expected {DURATION_HELP}",
                    offset.trim()
                ))
            })?,
        ),
        None => match parse_duration(text.trim()) {
            Some(offset) => ("start", offset),
            None => (text.trim(), Duration::ZERO),
        },
    };
    if !is_mark_name(mark) {
        return Err(invalid());
    }
    Ok(TimeRef {
        mark: (mark != "start").then(|| mark.to_owned()),
        offset,
    })
}

/// Mark names start with a letter, then letters, digits, `_`, `-` or `.`.
pub fn is_mark_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A reason code: `0x8E`, `142` or `session-taken-over`.
pub fn reason_code(node: &Node) -> R<u8> {
    let help = "a reason code: a number (`0x8E`, `142`) or a name (`session-taken-over`)";
    let text = node.text(help)?;
    if let Some(n) = parse_uint(text) {
        return u8::try_from(n).map_err(|_| {
            node.err(format!(
                "reason code {text} is out of range: expected 0 to 255 (0x00 to 0xFF)"
            ))
        });
    }
    let names = || ReasonCode::ALL.iter().filter_map(|code| code.name());
    ReasonCode::from_name(text)
        .map(u8::from)
        .or((text == "normal-disconnection").then_some(0))
        .ok_or_else(|| {
            node.err(format!(
                "unknown reason code `{text}`: expected a number (0x00 to 0xFF) or a name such \
                 as `success`, `session-taken-over`{}",
                did_you_mean(text, names())
            ))
        })
}

/// Hex bytes with optional whitespace between bytes: `"10 0d 00 04"`.
pub fn hex(node: &Node) -> R<Bytes> {
    let text = node.text("hex bytes like `\"00 ff\"`")?;
    let mut bytes = Vec::new();
    let mut high: Option<(usize, u8)> = None;
    for (i, c) in text.chars().enumerate() {
        if c.is_whitespace() {
            if let Some((at, _)) = high {
                return Err(split_byte(node, at));
            }
            continue;
        }
        let Some(digit) = c.to_digit(16) else {
            return Err(super::yaml::Located {
                location: node.location_of_char(i),
                message: format!(
                    "malformed hex: `{c}` is not a hex digit (expected byte pairs like `0d ff`)"
                ),
            });
        };
        let digit = digit as u8;
        match high.take() {
            Some((_, h)) => bytes.push(h << 4 | digit),
            None => high = Some((i, digit)),
        }
    }
    match high {
        Some((at, _)) => Err(split_byte(node, at)),
        None => Ok(bytes.into()),
    }
}

fn split_byte(node: &Node, at: usize) -> super::yaml::Located {
    super::yaml::Located {
        location: node.location_of_char(at),
        message: "malformed hex: a lone hex digit; every byte takes two digits (`0d`, not `d`)"
            .into(),
    }
}

/// The most bytes a topic name can take: its length is a two-byte integer ([MQTT-4.7.3-3]).
pub const MAX_TOPIC_BYTES: u32 = 65_535;

/// A topic name: text, or `{size: 65535}` (that many `x` bytes), to reach the encoding limit
/// without writing it out.
pub fn topic(node: &Node) -> R<String> {
    match &node.value {
        Value::Map(_) => {
            let f = Fields::of(node, "a topic", &["size"])?;
            let size = f.req("size", "a topic", |n| n.uint_in(0u32, MAX_TOPIC_BYTES))?;
            Ok("x".repeat(size as usize))
        }
        _ => node
            .text("a topic: text or `{size: 65535}`")
            .map(str::to_owned),
    }
}

/// Binary data: UTF-8 text, `{hex: "00 ff"}` or `{size: 1024}` (that many `x` bytes).
pub fn payload(node: &Node) -> R<Bytes> {
    let what = "a payload: text, `{hex: \"00 ff\"}` or `{size: 1024}`";
    match &node.value {
        Value::Map(_) => {
            let f = Fields::of(node, "a payload", &["hex", "size"])?;
            match (f.get("hex"), f.get("size")) {
                (Some(h), None) => hex(h),
                (None, Some(size)) => {
                    Ok(vec![b'x'; size.uint_in(0u32, 268_435_455)? as usize].into())
                }
                _ => Err(node.err(format!("expected {what} (exactly one of `hex`, `size`)"))),
            }
        }
        Value::Seq(_) => Err(node.expected(what)),
        Value::Scalar { text, .. } => match node.is_null() {
            true => Err(node.expected(what)),
            false => Ok(Bytes::copy_from_slice(text.as_bytes())),
        },
    }
}

/// `30` or `29..30` (inclusive).
pub fn range(node: &Node) -> R<Range> {
    let help = "a number (`30`) or an inclusive range (`29..30`)";
    let text = node.text(help)?;
    let number = |s: &str| parse_uint(s.trim()).and_then(|n| u32::try_from(n).ok());
    let range = match text.split_once("..") {
        Some((min, max)) => number(min)
            .zip(number(max))
            .map(|(min, max)| Range { min, max }),
        None => number(text).map(Range::exactly),
    };
    match range {
        Some(r) if r.min <= r.max => Ok(r),
        Some(_) => Err(node.err(format!("empty range `{text}`: the first bound is larger"))),
        None => Err(node.err(format!("invalid range `{text}`: expected {help}"))),
    }
}

pub fn protocol(node: &Node) -> R<Protocol> {
    let help = "`3.1.1` or `5`";
    match node.text(help)? {
        "3.1.1" => Ok(Protocol::V311),
        "5" | "5.0" => Ok(Protocol::V5),
        other => Err(node.err(format!("unsupported protocol `{other}`: expected {help}"))),
    }
}

pub fn qos(node: &Node) -> R<QoS> {
    node.uint_in(0u8, 2)
        .map(|q| QoS::from_u8(q).unwrap_or_default())
}

/// A `broker:` setting's value, read as its kind says.
pub fn setting_value(node: &Node, setting: &Setting) -> R<config::Value> {
    let (min, max) = setting.range;
    Ok(match setting.kind {
        Kind::Bool => config::Value::Bool(node.bool()?),
        Kind::Qos => config::Value::Qos(qos(node)?),
        Kind::Seconds => config::Value::Number(seconds_in(node, min, max)?),
        Kind::Bytes | Kind::Count => config::Value::Number(node.uint_in(min, max)?),
        Kind::Credentials => config::Value::Credentials(node.list(|c| {
            let f = Fields::of(c, "a credential", &["username", "password"])?;
            Ok(Credential {
                username: f.req("username", "a credential", Node::string)?,
                password: f.req("password", "a credential", Node::string)?,
            })
        })?),
    })
}

pub fn level(node: &Node) -> R<Level> {
    let text = node.text("`must`, `should` or `may`")?;
    match text {
        "must" => Ok(Level::Must),
        "should" => Ok(Level::Should),
        "may" => Ok(Level::May),
        _ => Err(node.err(format!(
            "unknown level `{text}`: expected `must`, `should` or `may`"
        ))),
    }
}

/// `absent`, `present`, or a value read by `read`.
pub fn check<T>(node: &Node, read: impl FnOnce(&Node) -> R<T>) -> R<PropertyCheck<T>> {
    match &node.value {
        Value::Scalar {
            text, plain: true, ..
        } if text == "absent" => Ok(PropertyCheck::Absent),
        Value::Scalar {
            text, plain: true, ..
        } if text == "present" => Ok(PropertyCheck::Present),
        _ => read(node).map(PropertyCheck::Is),
    }
}

/// User properties in order: `[{key: value}, [key, value], ...]`.
pub fn user_properties(node: &Node) -> R<Vec<UserProperty>> {
    let what = "a user property: `{name: value}` or `[name, value]`";
    let Value::Seq(items) = &node.value else {
        return Err(node.expected("a list of user properties like `[{region: eu}, {a: \"1\"}]`"));
    };
    items
        .iter()
        .map(|item| match &item.value {
            Value::Map(entries) if entries.len() == 1 => {
                Ok((entries[0].0.string()?, entries[0].1.string()?))
            }
            Value::Seq(pair) if pair.len() == 2 => Ok((pair[0].string()?, pair[1].string()?)),
            _ => Err(item.expected(what)),
        })
        .collect()
}
