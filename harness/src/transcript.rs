//! Transcripts: everything that happened in one scenario run, as seen from the clients, with
//! its time, rendered as stable, readable text.
//!
//! Times are offsets from the start of the run: virtual time (`turmoil::sim_elapsed`) in the
//! simulator, the harness's monotonic clock against a real broker. The rendering depends on
//! nothing else, so the same seed gives a byte-identical transcript.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Ack, ConnAck, Connect, DecodeError, Disconnect, LastWill, MessageProperties, Packet, Publish,
    QoS, ReasonCode, Subscribe,
};

use crate::scenario::DropMode;

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A packet the client sent.
    Sent(Packet),
    /// A packet the client received.
    Received(Packet),
    /// Raw bytes the client wrote (`send:`).
    SentRaw(Bytes),
    /// The client could not open a connection.
    ConnectFailed(String),
    /// The peer closed the connection (EOF, reset or error).
    Closed,
    /// The broker sent bytes that do not decode.
    Undecodable(DecodeError),
    /// A fault the client applied to itself.
    Fault(Fault),
    /// A scenario-level step: `wait 2s`, `broker restart`, `net partition [device]`.
    Step(String),
    /// A step expectation that did not hold (so the failure shows where it happened).
    Check(String),
    /// The broker broke a protocol rule that every exchange must keep, whatever the
    /// scenario expects (a DISCONNECT before CONNACK, a CONNACK code outside its table).
    Violation(String),
    /// The run ended.
    End,
}

/// A fault a client applies to itself (its scenario step of the same name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connection ends without DISCONNECT (`drop rst`, `drop fin`).
    Drop(DropMode),
    /// The client stops sending; the connection stays open.
    Silence,
    /// The client's machine disappears: nothing more in or out.
    Vanish,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Drop(mode) => write!(f, "drop {}", mode.as_str()),
            Fault::Silence => f.write_str("silence"),
            Fault::Vanish => f.write_str("vanish"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub at: Duration,
    /// The client's name; empty for scenario-level events.
    pub client: String,
    pub kind: EventKind,
    /// The mark that names this instant, if any.
    pub mark: Option<String>,
}

/// The record of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcript {
    pub events: Vec<Event>,
}

/// A shared handle through which every client and the director append events.
#[derive(Clone, Default)]
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    pub fn record(&self, at: Duration, client: &str, kind: EventKind) {
        self.events.lock().expect("recorder lock").push(Event {
            at,
            client: client.to_owned(),
            kind,
            mark: None,
        });
    }

    /// Names the latest event of `client` (or a new scenario-level event) with `mark`.
    pub fn mark(&self, at: Duration, client: Option<&str>, mark: &str) {
        let mut events = self.events.lock().expect("recorder lock");
        let last = client.and_then(|c| {
            events
                .iter_mut()
                .rev()
                .find(|e| e.client == c && e.mark.is_none())
        });
        match last {
            Some(event) if event.at == at => event.mark = Some(mark.to_owned()),
            _ => events.push(Event {
                at,
                client: client.unwrap_or_default().to_owned(),
                kind: EventKind::Step("mark".into()),
                mark: Some(mark.to_owned()),
            }),
        }
    }

    pub fn transcript(&self) -> Transcript {
        Transcript {
            events: self.events.lock().expect("recorder lock").clone(),
        }
    }
}

impl Transcript {
    /// PUBLISH packets `client` received, with their times, in arrival order.
    pub fn publishes<'a>(
        &'a self,
        client: &'a str,
    ) -> impl Iterator<Item = (Duration, &'a Publish)> + 'a {
        self.events.iter().filter_map(move |e| match &e.kind {
            EventKind::Received(Packet::Publish(p)) if e.client == client => Some((e.at, p)),
            _ => None,
        })
    }

    /// Renders the transcript, one line per event: time, client (padded to the longest
    /// name), an arrow for the direction, and what happened.
    pub fn render(&self) -> String {
        let width = self
            .events
            .iter()
            .map(|e| e.client.chars().count())
            .max()
            .unwrap_or(0)
            .max(3);
        let mut out = String::new();
        for event in &self.events {
            let (arrow, text) = describe(&event.kind);
            let client = if event.client.is_empty() {
                "--"
            } else {
                &event.client
            };
            let mut line = format!("{:>9} {client:<width$} {arrow} {text}", seconds(event.at));
            if let Some(mark) = &event.mark {
                let _ = write!(line, "  [{mark}]");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `12.345` seconds with millisecond precision.
pub fn seconds(at: Duration) -> String {
    format!("{}.{:03}", at.as_secs(), at.subsec_millis())
}

pub(crate) fn describe(kind: &EventKind) -> (&'static str, String) {
    match kind {
        EventKind::Sent(packet) => ("→", packet_line(packet)),
        EventKind::Received(packet) => ("←", packet_line(packet)),
        EventKind::SentRaw(bytes) => ("→", format!("RAW {}", hex(bytes))),
        EventKind::ConnectFailed(why) => ("✖", format!("connect failed: {why}")),
        EventKind::Closed => ("✖", "closed by peer".into()),
        EventKind::Undecodable(why) => ("✖", format!("undecodable bytes from broker: {why}")),
        EventKind::Fault(fault) => ("✂", fault.to_string()),
        EventKind::Step(what) => ("·", what.clone()),
        EventKind::Check(what) => ("!", what.clone()),
        EventKind::Violation(what) => ("!", format!("protocol violation: {what}")),
        EventKind::End => ("·", "end".into()),
    }
}

/// One line per packet: its name, then the fields that matter, `key=value`.
pub fn packet_line(packet: &Packet) -> String {
    match packet {
        Packet::Connect(c) => connect_line(c),
        Packet::ConnAck(c) => connack_line(c),
        Packet::Publish(p) => publish_line(p),
        Packet::PubAck(a) => ack_line("PUBACK", a),
        Packet::PubRec(a) => ack_line("PUBREC", a),
        Packet::PubRel(a) => ack_line("PUBREL", a),
        Packet::PubComp(a) => ack_line("PUBCOMP", a),
        Packet::Subscribe(s) => subscribe_line(s),
        Packet::SubAck(s) => format!("SUBACK pid={} codes={}", s.packet_id, codes(&s.codes)),
        Packet::Unsubscribe(u) => {
            format!("UNSUBSCRIBE pid={} {}", u.packet_id, u.filters.join(" "))
        }
        Packet::UnsubAck(u) if u.codes.is_empty() => format!("UNSUBACK pid={}", u.packet_id),
        Packet::UnsubAck(u) => format!("UNSUBACK pid={} codes={}", u.packet_id, codes(&u.codes)),
        Packet::PingReq => "PINGREQ".into(),
        Packet::PingResp => "PINGRESP".into(),
        Packet::Disconnect(d) => disconnect_line(d),
    }
}

fn connect_line(c: &Connect) -> String {
    let mut line = format!(
        "CONNECT v{} client_id={} clean_start={} keep_alive={}",
        c.protocol,
        quoted(c.client_id.as_bytes()),
        u8::from(c.clean_start),
        c.keep_alive
    );
    opt(&mut line, "session_expiry", c.session_expiry_interval);
    opt(&mut line, "receive_maximum", c.receive_maximum);
    opt(&mut line, "maximum_packet_size", c.maximum_packet_size);
    opt(&mut line, "topic_alias_maximum", c.topic_alias_maximum);
    if let Some(user) = &c.username {
        let _ = write!(line, " username={}", quoted(user.as_bytes()));
    }
    if c.password.is_some() {
        line.push_str(" password=***");
    }
    if let Some(will) = &c.will {
        let _ = write!(line, " will={{{}}}", will_fields(will));
    }
    line
}

fn will_fields(will: &LastWill) -> String {
    let mut line = format!(
        "topic={} qos={} retain={}",
        quoted(will.topic.as_bytes()),
        will.qos.as_u8(),
        u8::from(will.retain)
    );
    opt(&mut line, "delay", will.delay_interval);
    properties(&mut line, &will.properties);
    let _ = write!(line, " payload={}", quoted(&will.payload));
    line
}

fn connack_line(c: &ConnAck) -> String {
    // each version's code named from its own table
    let mut line = format!(
        "CONNACK {} session_present={}",
        c.code,
        u8::from(c.session_present)
    );
    let p = &c.properties;
    opt(&mut line, "session_expiry", p.session_expiry_interval);
    opt(&mut line, "receive_maximum", p.receive_maximum);
    opt(&mut line, "maximum_qos", p.maximum_qos.map(QoS::as_u8));
    opt(
        &mut line,
        "retain_available",
        p.retain_available.map(u8::from),
    );
    opt(&mut line, "maximum_packet_size", p.maximum_packet_size);
    opt(
        &mut line,
        "assigned_client_id",
        p.assigned_client_identifier.as_deref(),
    );
    opt(&mut line, "topic_alias_maximum", p.topic_alias_maximum);
    opt(
        &mut line,
        "wildcard_available",
        p.wildcard_subscription_available.map(u8::from),
    );
    opt(
        &mut line,
        "subscription_ids_available",
        p.subscription_identifiers_available.map(u8::from),
    );
    opt(
        &mut line,
        "shared_available",
        p.shared_subscription_available.map(u8::from),
    );
    opt(&mut line, "server_keep_alive", p.server_keep_alive);
    line
}

fn publish_line(p: &Publish) -> String {
    let mut line = format!(
        "PUBLISH {} qos={}",
        quoted(p.topic.as_bytes()),
        p.qos.as_u8()
    );
    opt(&mut line, "pid", p.packet_id);
    let _ = write!(
        line,
        " retain={} dup={}",
        u8::from(p.retain),
        u8::from(p.dup)
    );
    opt(&mut line, "topic_alias", p.topic_alias);
    if !p.subscription_identifiers.is_empty() {
        let ids: Vec<String> = p
            .subscription_identifiers
            .iter()
            .map(u32::to_string)
            .collect();
        let _ = write!(line, " subscription_ids=[{}]", ids.join(","));
    }
    properties(&mut line, &p.properties);
    let _ = write!(line, " payload={}", quoted(&p.payload));
    line
}

fn subscribe_line(s: &Subscribe) -> String {
    let mut line = format!("SUBSCRIBE pid={}", s.packet_id);
    for f in &s.filters {
        let _ = write!(
            line,
            " {} qos={}",
            quoted(f.filter.as_bytes()),
            f.qos.as_u8()
        );
        if f.no_local {
            line.push_str(" no_local=1");
        }
        if f.retain_as_published {
            line.push_str(" rap=1");
        }
        if f.retain_handling as u8 != 0 {
            let _ = write!(line, " rh={}", f.retain_handling as u8);
        }
    }
    opt(&mut line, "subscription_id", s.subscription_identifier);
    line
}

fn ack_line(name: &str, a: &Ack) -> String {
    if a.code == ReasonCode::SUCCESS {
        format!("{name} pid={}", a.packet_id)
    } else {
        format!("{name} pid={} {}", a.packet_id, a.code)
    }
}

fn disconnect_line(d: &Disconnect) -> String {
    let mut line = format!("DISCONNECT {}", d.code);
    opt(&mut line, "session_expiry", d.session_expiry_interval);
    opt(&mut line, "reason_string", d.reason_string.as_deref());
    line
}

fn properties(line: &mut String, p: &MessageProperties) {
    opt(line, "payload_format", p.payload_format_indicator);
    opt(line, "message_expiry", p.message_expiry_interval);
    if let Some(ct) = &p.content_type {
        let _ = write!(line, " content_type={}", quoted(ct.as_bytes()));
    }
    if let Some(rt) = &p.response_topic {
        let _ = write!(line, " response_topic={}", quoted(rt.as_bytes()));
    }
    if let Some(cd) = &p.correlation_data {
        let _ = write!(line, " correlation_data={}", quoted(cd));
    }
    for (k, v) in &p.user_properties {
        let _ = write!(
            line,
            " user[{}]={}",
            quoted(k.as_bytes()),
            quoted(v.as_bytes())
        );
    }
}

fn opt<T: std::fmt::Display>(line: &mut String, key: &str, value: Option<T>) {
    if let Some(value) = value {
        let _ = write!(line, " {key}={value}");
    }
}

/// `0x8E session-taken-over`: a v5 code a scenario names by its value.
pub fn code_name(code: u8) -> String {
    ReasonCode::from(code).to_string()
}

fn codes(codes: &[ReasonCode]) -> String {
    let items: Vec<String> = codes.iter().map(|c| format!("0x{c:02X}")).collect();
    format!("[{}]", items.join(","))
}

/// Text in double quotes when it is printable UTF-8, else `hex:..`; long values are cut.
pub fn quoted(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => {
            if text.chars().count() > MAX {
                let cut: String = text.chars().take(MAX).collect();
                format!("{cut:?}…({} bytes)", bytes.len())
            } else {
                format!("{text:?}")
            }
        }
        _ if bytes.len() > MAX => format!("hex:{}…({} bytes)", hex(&bytes[..MAX]), bytes.len()),
        _ => format!("hex:{}", hex(bytes)),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_stable_line_per_event() {
        let recorder = Recorder::default();
        let ms = Duration::from_millis;
        let mut connect = Connect::new(lastwill_broker::codec::Protocol::V5, "device-1");
        connect.session_expiry_interval = Some(60);
        recorder.record(ms(0), "device", EventKind::Sent(Packet::Connect(connect)));
        recorder.record(
            ms(2),
            "device",
            EventKind::Received(Packet::ConnAck(ConnAck {
                session_present: false,
                code: lastwill_broker::codec::ConnAckCode::V5(ReasonCode::SUCCESS),
                properties: Default::default(),
            })),
        );
        recorder.record(
            ms(10),
            "device",
            EventKind::Fault(Fault::Drop(DropMode::Rst)),
        );
        recorder.mark(ms(10), Some("device"), "dropped");
        recorder.record(ms(12_013), "", EventKind::End);
        let expected = concat!(
            "    0.000 device → CONNECT v5 client_id=\"device-1\" clean_start=1 keep_alive=60 session_expiry=60\n",
            "    0.002 device ← CONNACK 0x00 success session_present=0\n",
            "    0.010 device ✂ drop rst  [dropped]\n",
            "   12.013 --     · end\n",
        );
        assert_eq!(recorder.transcript().render(), expected);
    }

    #[test]
    fn binary_and_long_payloads_are_shown_safely() {
        assert_eq!(quoted(&[0x00, 0xff]), "hex:00 ff");
        assert_eq!(quoted(b"offline"), "\"offline\"");
        assert!(quoted(&[b'x'; 100]).ends_with("…(100 bytes)"));
    }
}
