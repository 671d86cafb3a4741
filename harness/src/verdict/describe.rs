//! Expectations and observations in words, as checks report them: values are written the way
//! the transcript writes packets (`qos=1`, `retain=0`, quoted text, `hex:` bytes), never in
//! Rust's debug notation.

use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{Publish, QoS, UserProperty};

use super::{Marks, Tolerance, window_bounds};
use crate::scenario::{MessageMatcher, PropertiesMatcher, PropertyCheck, Range, TimeRef, Window};
use crate::transcript::{quoted, seconds};

/// A property value as the transcript writes it.
pub(super) trait Shown {
    fn shown(&self) -> String;
}

macro_rules! shown_as_number {
    ($($t:ty),*) => {$(impl Shown for $t {
        fn shown(&self) -> String {
            self.to_string()
        }
    })*};
}
shown_as_number!(u8, u16, u32);

impl Shown for bool {
    fn shown(&self) -> String {
        u8::from(*self).to_string()
    }
}

impl Shown for QoS {
    fn shown(&self) -> String {
        self.as_u8().to_string()
    }
}

impl Shown for String {
    fn shown(&self) -> String {
        quoted(self.as_bytes())
    }
}

impl Shown for Bytes {
    fn shown(&self) -> String {
        quoted(self)
    }
}

impl Shown for Range {
    fn shown(&self) -> String {
        if self.min == self.max {
            self.min.to_string()
        } else {
            format!("{}..{}", self.min, self.max)
        }
    }
}

/// `name absent`, `name present` or `name=value`.
pub(super) fn property_check<T: Shown>(name: &str, check: &PropertyCheck<T>) -> String {
    match check {
        PropertyCheck::Absent => format!("{name} absent"),
        PropertyCheck::Present => format!("{name} present"),
        PropertyCheck::Is(value) => format!("{name}={}", value.shown()),
    }
}

/// What a packet carried for a checked property: `name=value` or `name absent`.
pub(super) fn property_value<T: Shown>(name: &str, value: Option<&T>) -> String {
    match value {
        Some(value) => format!("{name}={}", value.shown()),
        None => format!("{name} absent"),
    }
}

pub(super) fn time(time: &TimeRef) -> String {
    match &time.mark {
        None => format!("{}s", seconds(time.offset)),
        Some(mark) if time.offset.is_zero() => mark.clone(),
        Some(mark) => format!("{mark} + {}s", seconds(time.offset)),
    }
}

/// `[0x00, 0x80]`
pub(super) fn hex_codes(codes: &[u8]) -> String {
    let items: Vec<String> = codes.iter().map(|c| format!("0x{c:02X}")).collect();
    format!("[{}]", items.join(", "))
}

/// `at dropped + 5.000s [4.900s, 5.500s]`: the window as written, then its bounds on this
/// runner.
pub(super) fn window(window: &Window, marks: &Marks, tolerance: Tolerance) -> String {
    let (lo, hi) = window_bounds(window, marks, tolerance);
    let bounds = if hi == Duration::MAX {
        format!("[{}s, end]", seconds(lo))
    } else {
        format!("[{}s, {}s]", seconds(lo), seconds(hi))
    };
    let named = match window {
        Window::At(t) => format!("at {}", time(t)),
        Window::Between { after, before } => {
            let mut parts = Vec::new();
            if let Some(t) = after {
                parts.push(format!("after {}", time(t)));
            }
            if let Some(t) = before {
                parts.push(format!("before {}", time(t)));
            }
            parts.join(" and ")
        }
    };
    format!("{named} {bounds}")
}

pub(super) fn count(m: &MessageMatcher) -> String {
    match (m.count.min, m.count.max) {
        (1, 1) => "exactly once".into(),
        (a, b) if a == b => format!("exactly {a} times"),
        (a, u32::MAX) => format!("at least {a} times"),
        (a, b) => format!("{a} to {b} times"),
    }
}

/// `{topic="will/a", payload="gone", qos=1, content_type="text/plain"}`
pub(super) fn matcher(m: &MessageMatcher) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &m.topic {
        parts.push(format!("topic={}", quoted(t.as_bytes())));
    }
    if let Some(p) = &m.payload {
        parts.push(format!("payload={}", quoted(p)));
    }
    if let Some(q) = m.qos {
        parts.push(format!("qos={}", q.as_u8()));
    }
    if let Some(r) = m.retain {
        parts.push(format!("retain={}", u8::from(r)));
    }
    if let Some(d) = m.dup {
        parts.push(format!("dup={}", u8::from(d)));
    }
    parts.extend(properties(&m.properties));
    format!("{{{}}}", parts.join(", "))
}

/// Each checked property of a matcher, named as in the transcript's PUBLISH lines.
fn properties(m: &PropertiesMatcher) -> Vec<String> {
    fn checked<T: Shown>(name: &str, check: &Option<PropertyCheck<T>>) -> Option<String> {
        check.as_ref().map(|c| property_check(name, c))
    }
    let user = m.user_properties.as_deref().map(only_user_properties);
    let ids = m.subscription_identifiers.as_deref().map(subscription_ids);
    [
        checked("payload_format", &m.payload_format),
        checked("message_expiry", &m.message_expiry),
        checked("content_type", &m.content_type),
        checked("response_topic", &m.response_topic),
        checked("correlation_data", &m.correlation_data),
        user,
        ids,
        checked("topic_alias", &m.topic_alias),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `user["k"]="v" user["k2"]="w"`, or `no user properties`: what a message carried.
pub(super) fn user_properties(list: &[UserProperty]) -> String {
    if list.is_empty() {
        return "no user properties".to_owned();
    }
    let items: Vec<String> = list
        .iter()
        .map(|(k, v)| format!("user[{}]={}", quoted(k.as_bytes()), quoted(v.as_bytes())))
        .collect();
    items.join(" ")
}

/// `only user["k"]="v"`, or `no user properties`: what a matcher expects.
pub(super) fn only_user_properties(list: &[UserProperty]) -> String {
    match list {
        [] => user_properties(list),
        _ => format!("only {}", user_properties(list)),
    }
}

/// `subscription_ids=[1,2]`
pub(super) fn subscription_ids(ids: &[u32]) -> String {
    let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("subscription_ids=[{}]", ids.join(","))
}

/// `1.021s "will/a" "gone" qos=1 retain=0`
pub(super) fn received(at: Duration, p: &Publish) -> String {
    format!("{}s {}", seconds(at), publish(p))
}

/// `"will/a" "gone" qos=1 retain=0`, with ` dup=1` on a redelivery.
pub(super) fn publish(p: &Publish) -> String {
    format!(
        "{} {} qos={} retain={}{}",
        quoted(p.topic.as_bytes()),
        quoted(&p.payload),
        p.qos.as_u8(),
        u8::from(p.retain),
        if p.dup { " dup=1" } else { "" }
    )
}
