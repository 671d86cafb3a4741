//! The YAML writer: a [`Scenario`] back into the scenario language, such that parsing the text
//! gives the same model again (`parse(write(s)) == s`, up to [`Scenario::without_origin`]).
//!
//! The output follows the catalogue's style: block mappings for the file and its steps, flow
//! mappings where a value fits on its line, defaults left out, reason codes by name, and
//! strings quoted only where a plain scalar would read differently. It is how generated
//! scenarios (`lastwill explore`) become files to drop into `scenarios/`.

use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, Disconnect, LastWill, MessageProperties, Protocol, QoS, ReasonCode, RetainHandling,
    SubscriptionRequest, UserProperty,
};

use lastwill_broker::config::{Overrides, SETTINGS, Value};

use super::model::*;
use super::parse::imply_outcome;

/// The longest line the writer aims for before breaking a flow value into a block.
const WIDTH: usize = 96;

/// Filler payloads and topics (all `x`) longer than this are written `{size: N}`.
const FILLER: usize = 64;

/// The scenario as a scenario file.
pub fn write(scenario: &Scenario) -> String {
    let mut out = String::new();
    block_map(&mut out, 0, &top(scenario));
    out
}

impl Scenario {
    /// The model without where it was read from (its file name and every [`Location`]): two
    /// scenarios that say the same thing compare equal this way, whatever file they came from.
    pub fn without_origin(&self) -> Scenario {
        let here = Location::default();
        let mut s = self.clone();
        s.file = String::new();
        for client in &mut s.clients {
            client.location = here;
        }
        for step in &mut s.steps {
            step.location = here;
        }
        for block in &mut s.expect {
            block.location = here;
            if let Some(Receives::Messages(matchers)) = &mut block.receives {
                for matcher in matchers {
                    matcher.location = here;
                }
            }
        }
        s
    }
}

/// A YAML node about to be rendered.
#[derive(Clone, Debug)]
enum Y {
    /// A token written as it is: a number, a duration, a name.
    Raw(String),
    /// A string, quoted if a plain scalar would not read back as the same string.
    Str(String),
    Seq(Vec<Y>),
    /// Entries in order; `block` keeps the mapping in block style inside a list (steps).
    Map {
        entries: Vec<(String, Y)>,
        block: bool,
    },
}

fn raw(token: impl std::fmt::Display) -> Y {
    Y::Raw(token.to_string())
}

fn string(text: &str) -> Y {
    Y::Str(text.to_owned())
}

fn map(entries: Vec<(&str, Y)>) -> Y {
    Y::Map {
        entries: entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        block: false,
    }
}

/// Entries of a mapping, with the optional ones left out when absent.
#[derive(Default)]
struct Entries(Vec<(String, Y)>);

impl Entries {
    fn put(&mut self, key: &str, value: Y) -> &mut Self {
        self.0.push((key.to_owned(), value));
        self
    }

    fn opt<'v, T>(
        &mut self,
        key: &str,
        value: &'v Option<T>,
        render: impl FnOnce(&'v T) -> Y,
    ) -> &mut Self {
        if let Some(v) = value {
            self.put(key, render(v));
        }
        self
    }

    /// `key: true`/`false` when `value` is not the default.
    fn flag(&mut self, key: &str, value: bool, default: bool) -> &mut Self {
        if value != default {
            self.put(key, raw(value));
        }
        self
    }

    fn user_properties(&mut self, value: &[UserProperty]) -> &mut Self {
        if !value.is_empty() {
            self.put("user_properties", user_properties(value));
        }
        self
    }

    fn map(self) -> Y {
        Y::Map {
            entries: self.0,
            block: false,
        }
    }

    fn block(self) -> Y {
        Y::Map {
            entries: self.0,
            block: true,
        }
    }
}

fn top(s: &Scenario) -> Vec<(String, Y)> {
    let mut e = Entries::default();
    e.put("name", string(&s.name));
    e.opt("description", &s.description, |d| string(d));
    if !s.refs.is_empty() {
        e.put("refs", Y::Seq(s.refs.iter().map(|r| string(r)).collect()));
    }
    if !s.tags.is_empty() {
        e.put("tags", Y::Seq(s.tags.iter().map(|t| string(t)).collect()));
    }
    if s.protocol != Protocol::V5 {
        e.put("protocol", raw(s.protocol));
    }
    if s.level != Level::Must {
        e.put("level", level(s.level));
    }
    e.opt("seed", &s.seed, raw);
    e.opt("duration", &s.duration, |d| duration(*d));
    if s.broker != Overrides::default() {
        e.put("broker", broker(&s.broker));
    }
    if !s.control {
        e.put("control", raw(false));
    }
    e.put(
        "clients",
        Y::Map {
            entries: s
                .clients
                .iter()
                .map(|c| (c.name.clone(), client(c, s.protocol)))
                .collect(),
            block: true,
        },
    );
    e.put(
        "steps",
        Y::Seq(s.steps.iter().map(|st| step(s, st)).collect()),
    );
    if !s.expect.is_empty() {
        e.put("expect", final_expectations(s));
    }
    e.0
}

/// The settings the scenario sets, in the settings table's order.
fn broker(overrides: &Overrides) -> Y {
    let mut e = Entries::default();
    for setting in SETTINGS {
        let Some(value) = setting.get(overrides) else {
            continue;
        };
        e.put(
            setting.key,
            match value {
                Value::Bool(b) => raw(b),
                Value::Qos(q) => qos(q),
                Value::Number(n) => raw(n),
                Value::Credentials(list) => Y::Seq(
                    list.iter()
                        .map(|c| {
                            map(vec![
                                ("username", string(&c.username)),
                                ("password", string(&c.password)),
                            ])
                        })
                        .collect(),
                ),
            },
        );
    }
    e.map()
}

fn client(c: &ClientSpec, default_protocol: Protocol) -> Y {
    let mut e = Entries::default();
    if c.client_id != c.name {
        e.put("client_id", string(&c.client_id));
    }
    if c.protocol != default_protocol {
        e.put("protocol", raw(c.protocol));
    }
    e.flag("auto_ack", c.auto_ack, true)
        .flag("keep_alive_pings", c.keep_alive_pings, true);
    e.map()
}

fn step(s: &Scenario, step: &Step) -> Y {
    let mut e = Entries::default();
    match &step.kind {
        StepKind::Client { client, action } => {
            let spec = s.client(client);
            e.put(client, self::action(spec, action));
        }
        StepKind::Wait(d) => {
            e.put("wait", duration(*d));
        }
        // the name is the step's `mark`, written below
        StepKind::Mark => {}
        StepKind::BrokerRestart => {
            e.put("broker", raw("restart"));
        }
        StepKind::Net(actions) => {
            e.put("net", net(actions));
        }
    }
    e.opt("at", &step.at, time_ref);
    e.opt("mark", &step.mark, |m| string(m));
    let expect = match &step.kind {
        StepKind::Client { action, client } => {
            let v311 = s
                .client(client)
                .is_some_and(|c| c.protocol == Protocol::V311);
            let written = without_implied_outcome(action, &step.expect);
            let items: Vec<Y> = written.iter().map(|x| step_expectation(x, v311)).collect();
            match items.len() {
                0 => None,
                1 => items.into_iter().next(),
                _ => Some(Y::Seq(items)),
            }
        }
        _ => None,
    };
    if let Some(expect) = expect {
        e.put("expect", expect);
    }
    e.block()
}

/// The expectations to write for a step: the implied `reason: success` of a connect step is
/// left out when the parser would add it back in the same place.
fn without_implied_outcome(action: &Action, expect: &[StepExpectation]) -> Vec<StepExpectation> {
    let mut stripped = expect.to_vec();
    if let Some(i) = stripped
        .iter()
        .position(|x| x.level.is_none() && x.reason == Some(0))
    {
        stripped[i].reason = None;
        if stripped[i] == StepExpectation::default() {
            stripped.remove(i);
        }
        let mut again = stripped.clone();
        imply_outcome(action, &mut again);
        if again == expect {
            return stripped;
        }
    }
    expect.to_vec()
}

fn net(actions: &[NetAction]) -> Y {
    let clients = |names: &[String]| Y::Seq(names.iter().map(|n| string(n)).collect());
    let mut e = Entries::default();
    for action in actions {
        match action {
            NetAction::Partition(names) => e.put("partition", clients(names)),
            NetAction::Heal(None) => e.put("heal", raw("all")),
            NetAction::Heal(Some(names)) => e.put("heal", clients(names)),
            NetAction::Latency {
                clients: None,
                latency,
            } => e.put("latency", duration(*latency)),
            NetAction::Latency {
                clients: Some(names),
                latency,
            } => e.put(
                "latency",
                map(vec![
                    ("value", duration(*latency)),
                    ("clients", clients(names)),
                ]),
            ),
        };
    }
    e.map()
}

/// `NAME` for an action without options, `{NAME: MAIN, options...}` when its main option is
/// set, `{NAME: {options...}}` otherwise.
fn named(name: &str, main: Option<Y>, options: Entries) -> Y {
    match (main, options.0.is_empty()) {
        (None, true) => raw(name),
        (None, false) => map(vec![(name, options.map())]),
        (Some(main), _) => {
            let mut entries = vec![(name.to_owned(), main)];
            entries.extend(options.0);
            Y::Map {
                entries,
                block: false,
            }
        }
    }
}

fn action(client: Option<&ClientSpec>, action: &Action) -> Y {
    match action {
        Action::Connect(c) => named("connect", None, connect(client, c)),
        Action::Subscribe(spec) => subscribe(spec),
        Action::Unsubscribe(spec) => {
            let mut e = Entries::default();
            e.user_properties(&spec.user_properties);
            named("unsubscribe", Some(strings(&spec.filters)), e)
        }
        Action::Publish(p) => {
            let mut e = Entries::default();
            let main = match topic(&p.topic) {
                t @ (Y::Raw(_) | Y::Str(_)) => Some(t),
                t => {
                    e.put("topic", t);
                    None
                }
            };
            if !p.payload.is_empty() {
                e.put("payload", payload(&p.payload));
            }
            if p.qos != QoS::AtMostOnce {
                e.put("qos", qos(p.qos));
            }
            e.flag("retain", p.retain, false)
                .opt("topic_alias", &p.topic_alias, raw);
            message_properties(&mut e, &p.properties);
            named("publish", main, e)
        }
        Action::Ping => raw("ping"),
        Action::Disconnect(d) => disconnect(d),
        Action::Drop(DropMode::Rst) => raw("drop"),
        Action::Drop(DropMode::Fin) => map(vec![("drop", raw("fin"))]),
        Action::Silence => raw("silence"),
        Action::Vanish => raw("vanish"),
        Action::Ack => raw("ack"),
        Action::Send(bytes) => map(vec![("send", hex(bytes))]),
    }
}

fn connect(client: Option<&ClientSpec>, c: &Connect) -> Entries {
    let defaults = Connect::new(c.protocol, client.map_or("", |c| c.client_id.as_str()));
    let mut e = Entries::default();
    if c.client_id != defaults.client_id {
        e.put("client_id", string(&c.client_id));
    }
    e.flag("clean_start", c.clean_start, defaults.clean_start);
    if c.keep_alive != defaults.keep_alive {
        e.put("keep_alive", raw(c.keep_alive));
    }
    e.opt("session_expiry", &c.session_expiry_interval, raw)
        .opt("username", &c.username, |u| string(u))
        .opt("password", &c.password, payload)
        .opt("will", &c.will, will)
        .opt("receive_maximum", &c.receive_maximum, raw)
        .opt("maximum_packet_size", &c.maximum_packet_size, raw)
        .opt("topic_alias_maximum", &c.topic_alias_maximum, raw)
        .opt(
            "request_response_information",
            &c.request_response_information,
            raw,
        )
        .opt(
            "request_problem_information",
            &c.request_problem_information,
            raw,
        )
        .opt("authentication_method", &c.authentication_method, |m| {
            string(m)
        })
        .opt("authentication_data", &c.authentication_data, payload)
        .user_properties(&c.user_properties);
    e
}

fn will(w: &LastWill) -> Y {
    let mut e = Entries::default();
    e.put("topic", topic(&w.topic));
    if !w.payload.is_empty() {
        e.put("payload", payload(&w.payload));
    }
    if w.qos != QoS::AtMostOnce {
        e.put("qos", qos(w.qos));
    }
    e.flag("retain", w.retain, false)
        .opt("delay", &w.delay_interval, raw);
    message_properties(&mut e, &w.properties);
    e.map()
}

fn message_properties(e: &mut Entries, p: &MessageProperties) {
    e.opt("payload_format", &p.payload_format_indicator, raw)
        .opt("message_expiry", &p.message_expiry_interval, raw)
        .opt("content_type", &p.content_type, |t| string(t))
        .opt("response_topic", &p.response_topic, |t| string(t))
        .opt("correlation_data", &p.correlation_data, payload)
        .user_properties(&p.user_properties);
}

fn subscribe(spec: &SubscribeSpec) -> Y {
    let options = |r: &SubscriptionRequest| {
        let mut e = Entries::default();
        if r.qos != QoS::AtMostOnce {
            e.put("qos", qos(r.qos));
        }
        e.flag("no_local", r.no_local, false).flag(
            "retain_as_published",
            r.retain_as_published,
            false,
        );
        if r.retain_handling != RetainHandling::SendAtSubscribe {
            e.put("retain_handling", raw(r.retain_handling as u8));
        }
        e
    };
    let same = |a: &SubscriptionRequest, b: &SubscriptionRequest| {
        (a.qos, a.no_local, a.retain_as_published, a.retain_handling)
            == (b.qos, b.no_local, b.retain_as_published, b.retain_handling)
    };
    let (filters, mut e) = match spec.filters.first() {
        // options shared by every filter are written once, next to them
        Some(first) if spec.filters.iter().all(|f| same(f, first)) => {
            let names: Vec<String> = spec.filters.iter().map(|f| f.filter.clone()).collect();
            (strings(&names), options(first))
        }
        Some(_) => {
            let each = spec
                .filters
                .iter()
                .map(|f| {
                    let mut entries = vec![("filter".to_owned(), string(&f.filter))];
                    entries.extend(options(f).0);
                    Y::Map {
                        entries,
                        block: false,
                    }
                })
                .collect();
            (Y::Seq(each), Entries::default())
        }
        None => (Y::Seq(Vec::new()), Entries::default()),
    };
    e.opt("subscription_id", &spec.subscription_identifier, raw)
        .user_properties(&spec.user_properties);
    named("subscribe", Some(filters), e)
}

fn disconnect(d: &Disconnect) -> Y {
    let mut e = Entries::default();
    e.opt("session_expiry", &d.session_expiry_interval, raw)
        .opt("reason_string", &d.reason_string, |t| string(t))
        .opt("server_reference", &d.server_reference, |t| string(t))
        .user_properties(&d.user_properties);
    // a code a client may not send is written in hex: its name belongs to another packet
    let value = u8::from(d.code);
    let code = match d.code.is_client_disconnect() {
        true => reason_code(value),
        false => raw(format!("0x{value:02X}")),
    };
    named("disconnect", (value != 0).then_some(code), e)
}

fn step_expectation(x: &StepExpectation, v311: bool) -> Y {
    let code = |c: &u8| {
        if v311 {
            raw(format!("0x{c:02X}"))
        } else {
            reason_code(*c)
        }
    };
    let codes = |list: &Vec<u8>| Y::Seq(list.iter().map(|c| reason_code(*c)).collect());
    // SUBACK codes 0 to 2 are the granted QoS, written as such
    let granted = |list: &Vec<u8>| {
        Y::Seq(
            list.iter()
                .map(|&c| if c <= 2 { raw(c) } else { reason_code(c) })
                .collect(),
        )
    };
    let c = &x.connack;
    let mut e = Entries::default();
    e.opt("level", &x.level, |l| level(*l))
        .opt("reason", &x.reason, code)
        .opt("session_present", &x.session_present, raw)
        .opt("refused", &x.refused, raw)
        .opt("no_connack", &x.no_connack, raw)
        .opt("session_expiry", &c.session_expiry, |p| check(p, raw))
        .opt("receive_maximum", &c.receive_maximum, |p| check(p, raw))
        .opt("maximum_qos", &c.maximum_qos, |p| check(p, |q| qos(*q)))
        .opt("retain_available", &c.retain_available, |p| check(p, raw))
        .opt("maximum_packet_size", &c.maximum_packet_size, |p| {
            check(p, raw)
        })
        .opt("assigned_client_id", &c.assigned_client_id, |p| {
            check(p, |t| string(t))
        })
        .opt("topic_alias_maximum", &c.topic_alias_maximum, |p| {
            check(p, raw)
        })
        .opt(
            "wildcard_subscription_available",
            &c.wildcard_subscription_available,
            |p| check(p, raw),
        )
        .opt(
            "subscription_identifiers_available",
            &c.subscription_identifiers_available,
            |p| check(p, raw),
        )
        .opt(
            "shared_subscription_available",
            &c.shared_subscription_available,
            |p| check(p, raw),
        )
        .opt("server_keep_alive", &c.server_keep_alive, |p| check(p, raw))
        .opt("granted", &x.granted, granted)
        .opt("codes", &x.codes, codes)
        .opt("closed", &x.closed, raw)
        .opt("disconnect", &x.disconnect, |d| match d.reason {
            Some(c) => reason_code(c),
            None => raw("any"),
        })
        .opt("within", &x.within, |d| duration(*d));
    e.map()
}

/// The final `expect:`: one key per run of consecutive blocks of the same client (a list
/// when there are several), in the blocks' order.
fn final_expectations(s: &Scenario) -> Y {
    let mut entries: Vec<(String, Vec<Y>)> = Vec::new();
    for block in &s.expect {
        let rendered = client_expectation(block);
        match entries.last_mut() {
            Some((client, blocks)) if *client == block.client => blocks.push(rendered),
            _ => entries.push((block.client.clone(), vec![rendered])),
        }
    }
    Y::Map {
        entries: entries
            .into_iter()
            .map(|(client, mut blocks)| {
                let value = match blocks.len() {
                    1 => blocks.remove(0),
                    _ => Y::Seq(blocks),
                };
                (client, value)
            })
            .collect(),
        block: true,
    }
}

fn client_expectation(b: &ClientExpectation) -> Y {
    let mut e = Entries::default();
    e.opt("level", &b.level, |l| level(*l))
        .opt("receives", &b.receives, |r| match r {
            Receives::Nothing => raw("nothing"),
            Receives::Messages(list) => Y::Seq(list.iter().map(matcher).collect()),
        })
        .flag("ordered", b.ordered, false)
        .flag("only", b.only, false);
    match b.end_state {
        Some(EndState::Connected) => e.put("connected", raw(true)),
        Some(EndState::Closed) => e.put("closed", raw(true)),
        None => &mut e,
    };
    e.map()
}

fn matcher(m: &MessageMatcher) -> Y {
    let p = &m.properties;
    let mut e = Entries::default();
    e.opt("topic", &m.topic, |t| topic(t))
        .opt("payload", &m.payload, payload)
        .opt("qos", &m.qos, |q| qos(*q))
        .opt("retain", &m.retain, raw)
        .opt("dup", &m.dup, raw)
        .opt("payload_format", &p.payload_format, |c| check(c, raw))
        .opt("message_expiry", &p.message_expiry, |c| check(c, range))
        .opt("content_type", &p.content_type, |c| check(c, |t| string(t)))
        .opt("response_topic", &p.response_topic, |c| {
            check(c, |t| string(t))
        })
        .opt("correlation_data", &p.correlation_data, |c| {
            check(c, payload)
        })
        .opt("user_properties", &p.user_properties, |u| {
            user_properties(u)
        })
        .opt(
            "subscription_identifiers",
            &p.subscription_identifiers,
            |ids| Y::Seq(ids.iter().map(raw).collect()),
        )
        .opt("topic_alias", &p.topic_alias, |c| check(c, raw));
    if m.count != Range::exactly(1) {
        e.put("count", range(&m.count));
    }
    match &m.window {
        Some(Window::At(t)) => {
            e.put("at", time_ref(t));
        }
        Some(Window::Between { after, before }) => {
            e.opt("after", after, time_ref)
                .opt("before", before, time_ref);
        }
        None => {}
    }
    e.opt("level", &m.level, |l| level(*l));
    e.map()
}

// ---- values ------------------------------------------------------------------------------

fn qos(q: QoS) -> Y {
    raw(q.as_u8())
}

fn level(l: Level) -> Y {
    raw(match l {
        Level::Must => "must",
        Level::Should => "should",
        Level::May => "may",
    })
}

/// A reason code by its name when the name reads back as this code, else in hex.
fn reason_code(code: u8) -> Y {
    match ReasonCode::from(code).name() {
        Some(name) if ReasonCode::from_name(name).map(u8::from) == Some(code) => raw(name),
        _ => raw(format!("0x{code:02X}")),
    }
}

/// `5s`, `250ms`, or `1.000000001s`: the shortest form that reads back exactly.
fn duration(d: Duration) -> Y {
    let nanos = d.subsec_nanos();
    raw(if nanos == 0 {
        format!("{}s", d.as_secs())
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        let fraction = format!("{nanos:09}");
        format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
    })
}

/// An instant; a string, since a mark may be spelled like a word YAML reads otherwise.
fn time_ref(t: &TimeRef) -> Y {
    let offset = || match duration(t.offset) {
        Y::Raw(text) => text,
        _ => unreachable!("durations are raw tokens"),
    };
    Y::Str(match (&t.mark, t.offset.is_zero()) {
        (None, _) => offset(),
        (Some(mark), true) => mark.clone(),
        (Some(mark), false) => format!("{mark} + {}", offset()),
    })
}

fn range(r: &Range) -> Y {
    if r.min == r.max {
        raw(r.min)
    } else {
        raw(format!("{}..{}", r.min, r.max))
    }
}

fn check<'v, T>(c: &'v PropertyCheck<T>, value: impl FnOnce(&'v T) -> Y) -> Y {
    match c {
        PropertyCheck::Absent => raw("absent"),
        PropertyCheck::Present => raw("present"),
        PropertyCheck::Is(v) => value(v),
    }
}

/// One string, or a list of them.
fn strings(items: &[String]) -> Y {
    match items {
        [one] => string(one),
        _ => Y::Seq(items.iter().map(|s| string(s)).collect()),
    }
}

fn user_properties(list: &[UserProperty]) -> Y {
    Y::Seq(
        list.iter()
            .map(|(k, v)| Y::Map {
                entries: vec![(k.clone(), string(v))],
                block: false,
            })
            .collect(),
    )
}

/// Hex bytes, always quoted, as the catalogue writes them: `"0d ff"` (read back by
/// `values::hex`).
fn hex(bytes: &[u8]) -> Y {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Y::Raw(double_quoted(&pairs.join(" ")))
}

fn is_filler(bytes: &[u8]) -> bool {
    bytes.len() > FILLER && bytes.iter().all(|&b| b == b'x')
}

fn topic(t: &str) -> Y {
    if is_filler(t.as_bytes()) {
        map(vec![("size", raw(t.len()))])
    } else {
        string(t)
    }
}

/// Text when the bytes are printable UTF-8, `{size: N}` for long filler, `{hex: ...}` else.
fn payload(bytes: &Bytes) -> Y {
    if is_filler(bytes) {
        return map(vec![("size", raw(bytes.len()))]);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if text.chars().all(|c| !c.is_control()) => string(text),
        _ => map(vec![("hex", hex(bytes))]),
    }
}

// ---- rendering ---------------------------------------------------------------------------

/// Words that mean something else where they stand as plain scalars (null, booleans, the
/// language's own keywords); a string spelled like one is quoted.
const RESERVED: &[&str] = &[
    "null", "Null", "NULL", "~", "true", "false", "yes", "no", "absent", "present", "nothing",
    "any", "all", "start",
];

/// Whether `text` can stand unquoted, in block and flow context alike, and read back as itself:
/// words of letters, digits and `_/+.$#-` separated by single spaces, the first starting with a
/// letter or one of `_/+.$`, every later one with a letter or digit or being `+` (`mark + 5s`),
/// and not a reserved word.
fn plain_ok(text: &str) -> bool {
    let word_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '+' | '.' | '$' | '#' | '-');
    let starts = |w: &str, first: fn(char) -> bool| w.chars().next().is_some_and(first);
    text.split(' ').enumerate().all(|(i, word)| {
        word.chars().all(word_char)
            && if i == 0 {
                starts(word, |c| {
                    c.is_ascii_alphabetic() || matches!(c, '_' | '/' | '+' | '.' | '$')
                })
            } else {
                word == "+" || starts(word, |c| c.is_ascii_alphanumeric())
            }
    }) && !RESERVED.contains(&text)
}

/// Characters YAML would read as a line break or a byte order mark, or does not allow in a
/// file at all (outside its printable set).
fn needs_escape(c: char) -> bool {
    let printable = matches!(c as u32, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..);
    !printable || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn scalar(text: &str) -> String {
    if plain_ok(text) {
        text.to_owned()
    } else {
        double_quoted(text)
    }
}

/// A multi-line string that a literal block (`|`) carries exactly: printable, no line of
/// only blanks, not starting with a blank (which would need an indentation indicator).
fn literal_ok(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\t', '\n'])
        && text.chars().all(|c| c == '\n' || !needs_escape(c))
        && text
            .split('\n')
            .all(|line| line.is_empty() || !line.trim().is_empty())
}

/// The value in flow style, on one line; `None` for a multi-line literal.
fn flow(y: &Y) -> Option<String> {
    Some(match y {
        Y::Raw(t) => t.clone(),
        Y::Str(s) if literal_ok(s) => return None,
        Y::Str(s) => scalar(s),
        Y::Seq(items) => {
            let items: Option<Vec<String>> = items.iter().map(flow).collect();
            format!("[{}]", items?.join(", "))
        }
        Y::Map { entries, .. } => {
            let items: Option<Vec<String>> = entries
                .iter()
                .map(|(k, v)| Some(format!("{}: {}", scalar(k), flow(v)?)))
                .collect();
            format!("{{{}}}", items?.join(", "))
        }
    })
}

/// `key: value` lines of a block mapping at `indent`.
fn block_map(out: &mut String, indent: usize, entries: &[(String, Y)]) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&scalar(key));
        out.push(':');
        block_value(out, indent, scalar(key).len() + 2, value);
    }
}

/// The value after `key:` (the cursor is after the colon; `used` columns of the line are
/// taken by the key), then a newline.
fn block_value(out: &mut String, indent: usize, used: usize, value: &Y) {
    let empty = match value {
        Y::Seq(items) => items.is_empty(),
        Y::Map { entries, .. } => entries.is_empty(),
        _ => false,
    };
    match (value, flow(value)) {
        (Y::Str(s), None) => literal(out, indent + 2, s),
        (Y::Map { block: true, .. }, _) if !empty => {
            out.push('\n');
            out.push_str(&" ".repeat(indent + 2));
            nested(out, indent + 2, value);
        }
        (_, Some(text)) if empty || indent + used + text.len() <= WIDTH => {
            out.push(' ');
            out.push_str(&text);
            out.push('\n');
        }
        (Y::Seq(_) | Y::Map { .. }, _) => {
            out.push('\n');
            out.push_str(&" ".repeat(indent + 2));
            nested(out, indent + 2, value);
        }
        (_, Some(text)) => {
            out.push(' ');
            out.push_str(&text);
            out.push('\n');
        }
        (Y::Raw(_), None) => unreachable!("raw tokens always have a flow form"),
    }
}

/// A block collection whose first line starts at the cursor, at column `indent`.
fn nested(out: &mut String, indent: usize, value: &Y) {
    match value {
        Y::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str("- ");
                let collection = matches!(item, Y::Seq(_) | Y::Map { .. });
                match (item, flow(item)) {
                    (
                        Y::Map {
                            block: true,
                            entries,
                        },
                        _,
                    ) if !entries.is_empty() => block_map(out, indent + 2, entries),
                    (_, Some(text)) if !collection || indent + 2 + text.len() <= WIDTH => {
                        out.push_str(&text);
                        out.push('\n');
                    }
                    (Y::Map { entries, .. }, _) if !entries.is_empty() => {
                        block_map(out, indent + 2, entries)
                    }
                    (Y::Seq(list), _) if !list.is_empty() => nested(out, indent + 2, item),
                    (Y::Str(s), _) => {
                        out.push('|');
                        literal_body(out, indent + 2, s);
                    }
                    (_, text) => {
                        out.push_str(&text.unwrap_or_default());
                        out.push('\n');
                    }
                }
            }
        }
        Y::Map { entries, .. } => block_map(out, indent, entries),
        _ => unreachable!("only collections nest"),
    }
}

/// ` |` (or `|-`, `|+`) and the lines of a literal block scalar.
fn literal(out: &mut String, indent: usize, text: &str) {
    out.push_str(" |");
    literal_body(out, indent, text);
}

fn literal_body(out: &mut String, indent: usize, text: &str) {
    let body = text.trim_end_matches('\n');
    let chomp = match text.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    out.push_str(chomp);
    out.push('\n');
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
        out.push('\n');
    }
}
