//! Builds the typed [`Scenario`] from the YAML node tree, checking every key, type and name
//! against the grammar in `docs/scenario-language.md`.

use lastwill_broker::codec::{
    Connect, Disconnect, LastWill, MessageProperties, Protocol, QoS, RetainHandling,
    SubscriptionRequest,
};

use lastwill_broker::config::{self, Overrides, Setting};

use super::model::*;
use super::values::{
    check, duration, hex, human_duration, is_mark_name, level, payload, protocol, qos, range,
    reason_code, seconds, setting_value, time_ref, topic, user_properties,
};
use super::yaml::{Entry, Fields, Located, Node, R, Value, did_you_mean};

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "refs",
    "tags",
    "protocol",
    "level",
    "seed",
    "duration",
    "broker",
    "control",
    "clients",
    "steps",
    "expect",
];
const CLIENT_KEYS: &[&str] = &["client_id", "protocol", "auto_ack", "keep_alive_pings"];
/// Step keys that are not the step's action.
const STEP_MODIFIERS: &[&str] = &["mark", "at", "expect"];
/// Scenario-level step actions.
const STEP_ACTIONS: &[&str] = &["wait", "mark", "broker", "net"];
const NET_KEYS: &[&str] = &["partition", "heal", "latency"];

const ACTIONS: &[&str] = &[
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "ping",
    "disconnect",
    "drop",
    "silence",
    "vanish",
    "ack",
    "send",
];
/// Application Message properties, shared by the will and publish.
const MESSAGE_PROPERTIES: &[&str] = &[
    "payload_format",
    "message_expiry",
    "content_type",
    "response_topic",
    "correlation_data",
    "user_properties",
];
const CONNECT_KEYS: &[&str] = &[
    "client_id",
    "clean_start",
    "keep_alive",
    "session_expiry",
    "username",
    "password",
    "will",
    "receive_maximum",
    "maximum_packet_size",
    "topic_alias_maximum",
    "request_response_information",
    "request_problem_information",
    "authentication_method",
    "authentication_data",
    "user_properties",
];
const CONNECT_V5_KEYS: &[&str] = &[
    "session_expiry",
    "receive_maximum",
    "maximum_packet_size",
    "topic_alias_maximum",
    "request_response_information",
    "request_problem_information",
    "authentication_method",
    "authentication_data",
    "user_properties",
];
const WILL_KEYS: &[&str] = &["topic", "payload", "qos", "retain", "delay"];
const SUBSCRIPTION_KEYS: &[&str] = &[
    "filter",
    "qos",
    "no_local",
    "retain_as_published",
    "retain_handling",
];
const SUBSCRIBE_KEYS: &[&str] = &["subscription_id", "user_properties"];
const SUBSCRIBE_V5_KEYS: &[&str] = &[
    "no_local",
    "retain_as_published",
    "retain_handling",
    "subscription_id",
    "user_properties",
];
const UNSUBSCRIBE_KEYS: &[&str] = &["filter", "user_properties"];
const PUBLISH_KEYS: &[&str] = &["topic", "payload", "qos", "retain", "topic_alias"];
const DISCONNECT_KEYS: &[&str] = &[
    "reason",
    "session_expiry",
    "reason_string",
    "server_reference",
    "user_properties",
];

const EXPECT_COMMON: &[&str] = &["level", "closed", "within", "disconnect"];
const EXPECT_REPLY: &[&str] = &["reason", "code"];
const EXPECT_CONNECT: &[&str] = &["session_present", "refused", "no_connack"];
const EXPECT_CONNACK_PROPERTIES: &[&str] = &[
    "session_expiry",
    "receive_maximum",
    "maximum_qos",
    "retain_available",
    "maximum_packet_size",
    "assigned_client_id",
    "topic_alias_maximum",
    "wildcard_subscription_available",
    "subscription_identifiers_available",
    "shared_subscription_available",
    "server_keep_alive",
];

const FINAL_KEYS: &[&str] = &[
    "level",
    "receives",
    "ordered",
    "only",
    "connected",
    "closed",
];
const MATCHER_KEYS: &[&str] = &[
    "topic", "payload", "qos", "retain", "dup", "count", "at", "after", "before", "level",
];
const MATCHER_PROPERTIES: &[&str] = &[
    "payload_format",
    "message_expiry",
    "content_type",
    "response_topic",
    "correlation_data",
    "user_properties",
    "subscription_identifiers",
    "topic_alias",
];

fn keys(groups: &[&[&'static str]]) -> Vec<&'static str> {
    groups.concat()
}

/// Builds the scenario from the document's root node.
pub fn scenario(root: &Node, file: &str) -> R<Scenario> {
    let f = Fields::of(root, "the scenario", TOP_KEYS)?;
    let what = "the scenario";
    let default_protocol = f.opt("protocol", protocol)?.unwrap_or(Protocol::V5);
    let clients = f.req("clients", what, |n| clients(n, default_protocol))?;
    let mut builder = Builder {
        clients: &clients,
        marks: Vec::new(),
    };
    let steps = f.req("steps", what, |n| match &n.value {
        Value::Seq(items) => items.iter().map(|s| builder.step(s)).collect(),
        _ => Err(n.expected("a list of steps")),
    })?;
    let expect = f
        .opt("expect", |n| builder.final_expectations(n))?
        .unwrap_or_default();
    let scenario = Scenario {
        file: file.to_owned(),
        name: f.req("name", what, Node::string)?,
        description: f.opt("description", Node::string)?,
        refs: f.opt("refs", strings)?.unwrap_or_default(),
        tags: f.opt("tags", strings)?.unwrap_or_default(),
        protocol: default_protocol,
        level: f.opt("level", level)?.unwrap_or_default(),
        seed: f.opt("seed", Node::uint::<u64>)?,
        duration: f.opt("duration", duration)?,
        broker: f.opt("broker", broker)?.unwrap_or_default(),
        control: f.opt("control", Node::bool)?.unwrap_or(true),
        clients,
        steps,
        expect,
    };
    within_horizon(&scenario, f.get("duration"))?;
    Ok(scenario)
}

/// Refuses a scenario that could run past [`MAX_LENGTH`], at the first step that could end
/// beyond it (each client step taking all of its `within`), or at its `duration:`.
fn within_horizon(scenario: &Scenario, duration: Option<&Node>) -> R<()> {
    let beyond = |what: String, location: Location| Located {
        location,
        message: format!(
            "{what}, past the {} a scenario may last (the simulator's horizon): split it or \
             shorten its waits",
            human_duration(MAX_LENGTH)
        ),
    };
    let (ends, _) = scenario.schedule(Step::longest);
    if let Some((step, end)) = scenario
        .steps
        .iter()
        .zip(ends)
        .find(|(_, end)| *end > MAX_LENGTH)
    {
        let what = format!("this step could end {} into the run", human_duration(end));
        return Err(beyond(what, step.location));
    }
    match (scenario.duration, duration) {
        (Some(length), Some(node)) if length > MAX_LENGTH => Err(beyond(
            format!("a duration of {}", human_duration(length)),
            node.location,
        )),
        _ => Ok(()),
    }
}

fn strings(node: &Node) -> R<Vec<String>> {
    node.list(Node::string)
}

/// `broker:` settings, each read by its kind (see `lastwill_broker::config`).
fn broker(node: &Node) -> R<Overrides> {
    let f = Fields::of(node, "broker", config::KEYS)?;
    let mut overrides = Overrides::default();
    for entry in &f.entries {
        let setting = Setting::named(entry.key).expect("Fields::of checked the key");
        let value = setting_value(entry.value, setting)?;
        setting
            .set(&mut overrides, value)
            .map_err(|message| entry.value.err(message))?;
    }
    Ok(overrides)
}

fn clients(node: &Node, default_protocol: Protocol) -> R<Vec<ClientSpec>> {
    let mut clients: Vec<ClientSpec> = Vec::new();
    for (key, value) in node.entries("`clients` (client name: options)")? {
        let name = key.string()?;
        if STEP_MODIFIERS.contains(&name.as_str()) || STEP_ACTIONS.contains(&name.as_str()) {
            return Err(key.err(format!(
                "`{name}` cannot name a client: it is a step keyword ({})",
                keys(&[STEP_ACTIONS, &["at", "expect"]]).join(", ")
            )));
        }
        if let Some(first) = clients.iter().find(|c| c.name == name) {
            return Err(key.err(format!(
                "client `{name}` is defined twice (first at {})",
                first.location
            )));
        }
        let what = format!("client `{name}`");
        let f = match value.is_null() {
            true => Fields::check(value.location, Vec::new(), &what, CLIENT_KEYS)?,
            false => Fields::of(value, &what, CLIENT_KEYS)?,
        };
        clients.push(ClientSpec {
            client_id: f
                .opt("client_id", Node::string)?
                .unwrap_or_else(|| name.clone()),
            protocol: f.opt("protocol", protocol)?.unwrap_or(default_protocol),
            auto_ack: f.opt("auto_ack", Node::bool)?.unwrap_or(true),
            keep_alive_pings: f.opt("keep_alive_pings", Node::bool)?.unwrap_or(true),
            location: key.location,
            name,
        });
    }
    Ok(clients)
}

struct Builder<'c> {
    clients: &'c [ClientSpec],
    /// Marks defined by the steps read so far.
    marks: Vec<(String, Location)>,
}

impl<'c> Builder<'c> {
    fn client(&self, node: &Node) -> R<&'c ClientSpec> {
        let name = node.text("a client name")?;
        self.clients.iter().find(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.clients.iter().map(|c| c.name.as_str()).collect();
            node.err(format!(
                "undefined client `{name}`; defined clients: {}{}",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                },
                did_you_mean(name, names.iter().copied())
            ))
        })
    }

    fn client_names(&self, node: &Node) -> R<Vec<String>> {
        node.list(|n| self.client(n).map(|c| c.name.clone()))
    }

    /// An instant whose mark, if any, is already defined.
    fn instant(&self, node: &Node) -> R<TimeRef> {
        let instant = time_ref(node)?;
        let unknown = instant
            .mark
            .as_ref()
            .filter(|&mark| !self.marks.iter().any(|(m, _)| m == mark));
        if let Some(mark) = unknown {
            let names: Vec<&str> = self.marks.iter().map(|(m, _)| m.as_str()).collect();
            return Err(node.err(format!(
                "unknown mark `{mark}`; marks must be defined by an earlier step ({}){}",
                if names.is_empty() {
                    "none is".to_owned()
                } else {
                    format!("defined so far: {}", names.join(", "))
                },
                did_you_mean(mark, names.iter().copied())
            )));
        }
        Ok(instant)
    }

    fn define_mark(&mut self, node: &Node) -> R<String> {
        let name = node.text("a mark name")?;
        if !is_mark_name(name) || name == "start" {
            return Err(node.err(format!(
                "invalid mark name `{name}`: use a letter, then letters, digits, `_`, `-` or `.` \
                 (`start` is reserved)"
            )));
        }
        if let Some((_, first)) = self.marks.iter().find(|(m, _)| m == name) {
            return Err(node.err(format!("mark `{name}` is already defined at {first}")));
        }
        self.marks.push((name.to_owned(), node.location));
        Ok(name.to_owned())
    }

    fn step(&mut self, node: &Node) -> R<Step> {
        let what = "a step";
        let client_names = self.clients.iter().map(|c| c.name.as_str());
        let allowed: Vec<&str> = client_names
            .chain(STEP_ACTIONS.iter().copied())
            .chain(STEP_MODIFIERS.iter().copied())
            .collect();
        let mut entries = Vec::new();
        for (key, value) in node.entries("a step (`CLIENT: ACTION`, `wait: 2s`, ...)")? {
            let name = key.text("a key")?;
            if !allowed.contains(&name) {
                self.client(key)?;
            }
            entries.push(Entry {
                key: name,
                key_node: key,
                value,
            });
        }
        let f = Fields::check(node.location, entries, what, &allowed)?;
        let mut heads = f
            .entries
            .iter()
            .filter(|e| !STEP_MODIFIERS.contains(&e.key));
        let head = heads.next();
        if let Some(second) = heads.next() {
            return Err(second.key_node.err(format!(
                "a step does one thing: `{}` and `{}` are both here; make them two steps",
                head.map_or("", |h| h.key),
                second.key
            )));
        }
        let at = f.opt("at", |n| self.instant(n))?;
        let kind = match head {
            None if f.has("mark") => StepKind::Mark,
            None => {
                return Err(node.err(format!(
                    "a step needs an action: a client ({}) or one of wait, mark, broker, net",
                    self.clients
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            Some(head) => match head.key {
                "wait" => StepKind::Wait(duration(head.value)?),
                "broker" => match head.value.text("`restart`")? {
                    "restart" => StepKind::BrokerRestart,
                    other => {
                        return Err(head.value.err(format!(
                            "unknown broker action `{other}`: expected `restart`"
                        )));
                    }
                },
                "net" => StepKind::Net(self.net(head.value)?),
                _ => {
                    let client = self.client(head.key_node)?;
                    StepKind::Client {
                        client: client.name.clone(),
                        action: action(client, head.value)?,
                    }
                }
            },
        };
        let expect = match (&kind, f.entries.iter().find(|e| e.key == "expect")) {
            (StepKind::Client { action, .. }, expect) => step_expectations(action, expect)?,
            (_, Some(e)) => {
                return Err(e.key_node.err(
                    "`expect` checks a client step's outcome; scenario-level steps have none",
                ));
            }
            (_, None) => Vec::new(),
        };
        let mark = f.opt("mark", |n| self.define_mark(n))?;
        Ok(Step {
            kind,
            mark,
            at,
            expect,
            location: node.location,
        })
    }

    fn net(&self, node: &Node) -> R<Vec<NetAction>> {
        let f = Fields::of(node, "net", NET_KEYS)?;
        f.entries
            .iter()
            .map(|e| match e.key {
                "partition" => Ok(NetAction::Partition(self.client_names(e.value)?)),
                "heal" => Ok(NetAction::Heal(match e.value.text("") {
                    Ok("all") => None,
                    _ => Some(self.client_names(e.value)?),
                })),
                _ => match &e.value.value {
                    Value::Map(_) => {
                        let f = Fields::of(e.value, "latency", &["value", "clients"])?;
                        Ok(NetAction::Latency {
                            latency: f.req("value", "latency", duration)?,
                            clients: f.opt("clients", |n| self.client_names(n))?,
                        })
                    }
                    _ => Ok(NetAction::Latency {
                        latency: duration(e.value)?,
                        clients: None,
                    }),
                },
            })
            .collect()
    }

    fn final_expectations(&self, node: &Node) -> R<Vec<ClientExpectation>> {
        let mut out = Vec::new();
        for (key, value) in node.entries("the final `expect` (client name: checks)")? {
            let client = self.client(key)?;
            for block in value.one_or_many() {
                out.push(self.client_expectation(client, block)?);
            }
        }
        Ok(out)
    }

    fn client_expectation(&self, client: &ClientSpec, node: &Node) -> R<ClientExpectation> {
        let what = format!("the expectations of `{}`", client.name);
        let f = Fields::of(node, &what, FINAL_KEYS)?;
        let connected = f.opt("connected", Node::bool)?;
        let closed = f.opt("closed", Node::bool)?;
        let end_state = match (connected, closed) {
            (Some(_), Some(_)) => {
                return Err(node.err("`connected` and `closed` say the same thing; use one"));
            }
            (Some(true), _) | (_, Some(false)) => Some(EndState::Connected),
            (Some(false), _) | (_, Some(true)) => Some(EndState::Closed),
            (None, None) => None,
        };
        Ok(ClientExpectation {
            client: client.name.clone(),
            level: f.opt("level", level)?,
            receives: f.opt("receives", |n| match &n.value {
                Value::Scalar { text, .. } if text == "nothing" => Ok(Receives::Nothing),
                Value::Seq(_) | Value::Map(_) => {
                    Ok(Receives::Messages(n.list(|m| self.matcher(m))?))
                }
                _ => Err(n.expected("`nothing` or a list of messages")),
            })?,
            ordered: f.opt("ordered", Node::bool)?.unwrap_or(false),
            only: f.opt("only", Node::bool)?.unwrap_or(false),
            end_state,
            location: node.location,
        })
    }

    fn matcher(&self, node: &Node) -> R<MessageMatcher> {
        let f = Fields::of(
            node,
            "a message",
            &keys(&[MATCHER_KEYS, MATCHER_PROPERTIES]),
        )?;
        let at = f.opt("at", |n| self.instant(n))?;
        let after = f.opt("after", |n| self.instant(n))?;
        let before = f.opt("before", |n| self.instant(n))?;
        let window = match (at, after, before) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(node.err("use `at` alone, or `after` and/or `before`"));
            }
            (Some(at), None, None) => Some(Window::At(at)),
            (None, None, None) => None,
            (None, after, before) => Some(Window::Between { after, before }),
        };
        Ok(MessageMatcher {
            topic: f.opt("topic", topic)?,
            payload: f.opt("payload", payload)?,
            qos: f.opt("qos", qos)?,
            retain: f.opt("retain", Node::bool)?,
            dup: f.opt("dup", Node::bool)?,
            properties: PropertiesMatcher {
                payload_format: f.opt("payload_format", |n| check(n, Node::uint))?,
                message_expiry: f.opt("message_expiry", |n| check(n, range))?,
                content_type: f.opt("content_type", |n| check(n, Node::string))?,
                response_topic: f.opt("response_topic", |n| check(n, Node::string))?,
                correlation_data: f.opt("correlation_data", |n| check(n, payload))?,
                user_properties: f.opt("user_properties", user_properties)?,
                subscription_identifiers: f.opt("subscription_identifiers", |n| {
                    match &n.value {
                        Value::Seq(_) => n.list(Node::uint),
                        _ => Err(n.expected("a list of subscription identifiers")),
                    }
                })?,
                topic_alias: f.opt("topic_alias", |n| check(n, Node::uint))?,
            },
            count: f.opt("count", range)?.unwrap_or(Range::exactly(1)),
            window,
            level: f.opt("level", level)?,
            location: node.location,
        })
    }
}

/// The options of a client action: the keys written next to the action key, the keys of a
/// mapping given as its value, or its value as the action's main option (`subscribe: a/b`
/// is `filter: a/b`).
fn action(client: &ClientSpec, node: &Node) -> R<Action> {
    let (name, name_node, mut entries) = match &node.value {
        Value::Map(_) => {
            let all = node.entries("")?;
            let mut actions = all
                .iter()
                .filter(|(k, _)| k.text("").is_ok_and(|t| ACTIONS.contains(&t)));
            let Some((action_key, action_value)) = actions.next() else {
                let (k, _) = all
                    .first()
                    .ok_or_else(|| node.expected("an action such as `connect`"))?;
                return Err(unknown_action(k));
            };
            if let Some((other, _)) = actions.next() {
                return Err(other.err(format!(
                    "a step does one thing: `{}` and `{}` are both here; make them two steps",
                    action_key.text("")?,
                    other.text("")?
                )));
            }
            let siblings = all
                .iter()
                .filter(|(k, _)| !std::ptr::eq(k, action_key))
                .map(|(k, v)| {
                    Ok(Entry {
                        key: k.text("a key")?,
                        key_node: k,
                        value: v,
                    })
                })
                .collect::<R<Vec<_>>>()?;
            let name = action_key.text("")?;
            let mut entries = siblings;
            match &action_value.value {
                _ if action_value.is_null() => {}
                Value::Map(inner) => {
                    for (k, v) in inner {
                        entries.push(Entry {
                            key: k.text("a key")?,
                            key_node: k,
                            value: v,
                        });
                    }
                }
                _ => match main_option(name) {
                    Some(main) => entries.push(Entry {
                        key: main,
                        key_node: action_key,
                        value: action_value,
                    }),
                    None => {
                        return Err(action_value
                            .expected(&format!("a mapping of `{name}` options (or nothing)")));
                    }
                },
            }
            (name, action_key, entries)
        }
        _ => {
            let name = node.text("an action such as `connect` or `{subscribe: a/b}`")?;
            if !ACTIONS.contains(&name) {
                return Err(unknown_action(node));
            }
            (name, node, Vec::new())
        }
    };
    entries.sort_by_key(|e| (e.key_node.location.line, e.key_node.location.column));
    let what = format!("`{name}`");
    let allowed = action_keys(name);
    let f = Fields::check(name_node.location, entries, &what, &allowed)?;
    let v5_only = |keys: &[&str]| only_v5(client, &f, &what, keys);
    Ok(match name {
        "connect" => {
            v5_only(CONNECT_V5_KEYS)?;
            Action::Connect(Box::new(connect(client, &f)?))
        }
        "subscribe" => {
            v5_only(SUBSCRIBE_V5_KEYS)?;
            Action::Subscribe(subscribe(client, &f)?)
        }
        "unsubscribe" => {
            v5_only(&["user_properties"])?;
            Action::Unsubscribe(UnsubscribeSpec {
                filters: f.req("filter", &what, strings)?,
                user_properties: f
                    .opt("user_properties", user_properties)?
                    .unwrap_or_default(),
            })
        }
        "publish" => {
            v5_only(&keys(&[MESSAGE_PROPERTIES, &["topic_alias"]]))?;
            Action::Publish(PublishSpec {
                topic: f.req("topic", &what, topic)?,
                payload: f.opt("payload", payload)?.unwrap_or_default(),
                qos: f.opt("qos", qos)?.unwrap_or_default(),
                retain: f.opt("retain", Node::bool)?.unwrap_or(false),
                properties: message_properties(&f)?,
                topic_alias: f.opt("topic_alias", Node::uint)?,
            })
        }
        "disconnect" => {
            v5_only(DISCONNECT_KEYS)?;
            Action::Disconnect(Disconnect {
                code: f.opt("reason", reason_code)?.unwrap_or(0).into(),
                session_expiry_interval: f.opt("session_expiry", seconds)?,
                reason_string: f.opt("reason_string", Node::string)?,
                server_reference: f.opt("server_reference", Node::string)?,
                user_properties: f
                    .opt("user_properties", user_properties)?
                    .unwrap_or_default(),
            })
        }
        "drop" => Action::Drop(
            match f.opt("mode", |n| n.text("`rst` or `fin`").map(str::to_owned))? {
                None => DropMode::Rst,
                Some(m) if m == "rst" => DropMode::Rst,
                Some(m) if m == "fin" => DropMode::Fin,
                Some(m) => {
                    let n = f.get("mode").unwrap_or(node);
                    return Err(n.err(format!("unknown drop mode `{m}`: expected `rst` or `fin`")));
                }
            },
        ),
        "send" => Action::Send(f.req("hex", &what, hex)?),
        "ping" => Action::Ping,
        "silence" => Action::Silence,
        "vanish" => Action::Vanish,
        _ => Action::Ack,
    })
}

fn unknown_action(node: &Node) -> Located {
    let name = node.text("").unwrap_or_default();
    node.err(format!(
        "unknown action `{name}`; expected one of: {}{}",
        ACTIONS.join(", "),
        did_you_mean(name, ACTIONS.iter().copied())
    ))
}

/// The option a bare value stands for: `subscribe: a/b` is `filter: a/b`.
fn main_option(action: &str) -> Option<&'static str> {
    Some(match action {
        "subscribe" | "unsubscribe" => "filter",
        "publish" => "topic",
        "disconnect" => "reason",
        "drop" => "mode",
        "send" => "hex",
        _ => return None,
    })
}

fn action_keys(action: &str) -> Vec<&'static str> {
    match action {
        "connect" => CONNECT_KEYS.to_vec(),
        "subscribe" => keys(&[SUBSCRIPTION_KEYS, SUBSCRIBE_KEYS]),
        "unsubscribe" => UNSUBSCRIBE_KEYS.to_vec(),
        "publish" => keys(&[PUBLISH_KEYS, MESSAGE_PROPERTIES]),
        "disconnect" => DISCONNECT_KEYS.to_vec(),
        "drop" => vec!["mode"],
        "send" => vec!["hex"],
        _ => Vec::new(),
    }
}

/// MQTT 5 options on a 3.1.1 client are a mistake in the scenario: 3.1.1 cannot carry them.
fn only_v5(client: &ClientSpec, f: &Fields, what: &str, v5_keys: &[&str]) -> R<()> {
    match f.entries.iter().find(|e| v5_keys.contains(&e.key)) {
        Some(e) if client.protocol == Protocol::V311 => Err(e.key_node.err(format!(
            "`{}` in {what} is MQTT 5 only, and client `{}` speaks 3.1.1 (use `send` for raw bytes)",
            e.key, client.name
        ))),
        _ => Ok(()),
    }
}

fn connect(client: &ClientSpec, f: &Fields) -> R<Connect> {
    let mut c = Connect::new(client.protocol, client.client_id.clone());
    if let Some(id) = f.opt("client_id", Node::string)? {
        c.client_id = id;
    }
    c.clean_start = f.opt("clean_start", Node::bool)?.unwrap_or(true);
    c.keep_alive = f.opt("keep_alive", seconds)?.unwrap_or(c.keep_alive);
    c.session_expiry_interval = f.opt("session_expiry", seconds)?;
    c.receive_maximum = f.opt("receive_maximum", Node::uint)?;
    c.maximum_packet_size = f.opt("maximum_packet_size", Node::uint)?;
    c.topic_alias_maximum = f.opt("topic_alias_maximum", Node::uint)?;
    c.request_response_information = f.opt("request_response_information", Node::uint)?;
    c.request_problem_information = f.opt("request_problem_information", Node::uint)?;
    c.authentication_method = f.opt("authentication_method", Node::string)?;
    c.authentication_data = f.opt("authentication_data", payload)?;
    c.user_properties = f
        .opt("user_properties", user_properties)?
        .unwrap_or_default();
    c.username = f.opt("username", Node::string)?;
    c.password = f.opt("password", payload)?;
    c.will = f.opt("will", |n| will(client, n))?;
    Ok(c)
}

fn will(client: &ClientSpec, node: &Node) -> R<LastWill> {
    let what = "the will";
    let f = Fields::of(node, what, &keys(&[WILL_KEYS, MESSAGE_PROPERTIES]))?;
    only_v5(client, &f, what, &keys(&[&["delay"], MESSAGE_PROPERTIES]))?;
    Ok(LastWill {
        topic: f.req("topic", what, topic)?,
        payload: f.opt("payload", payload)?.unwrap_or_default(),
        qos: f.opt("qos", qos)?.unwrap_or_default(),
        retain: f.opt("retain", Node::bool)?.unwrap_or(false),
        delay_interval: f.opt("delay", seconds)?,
        properties: message_properties(&f)?,
    })
}

fn message_properties(f: &Fields) -> R<MessageProperties> {
    Ok(MessageProperties {
        payload_format_indicator: f.opt("payload_format", Node::uint)?,
        message_expiry_interval: f.opt("message_expiry", seconds)?,
        content_type: f.opt("content_type", Node::string)?,
        response_topic: f.opt("response_topic", Node::string)?,
        correlation_data: f.opt("correlation_data", payload)?,
        user_properties: f
            .opt("user_properties", user_properties)?
            .unwrap_or_default(),
    })
}

fn subscribe(client: &ClientSpec, f: &Fields) -> R<SubscribeSpec> {
    let defaults = subscription_options(f, SubscriptionRequest::new("", QoS::AtMostOnce))?;
    let filters = f.req("filter", "`subscribe`", |n| {
        n.list(|item| match &item.value {
            Value::Map(_) => {
                let f = Fields::of(item, "a subscription", SUBSCRIPTION_KEYS)?;
                only_v5(client, &f, "a subscription", SUBSCRIBE_V5_KEYS)?;
                let mut request = subscription_options(&f, defaults.clone())?;
                request.filter = f.req("filter", "a subscription", Node::string)?;
                Ok(request)
            }
            _ => Ok(SubscriptionRequest {
                filter: item.string()?,
                ..defaults.clone()
            }),
        })
    })?;
    Ok(SubscribeSpec {
        filters,
        subscription_identifier: f.opt("subscription_id", |n| n.uint_in(1u32, 268_435_455))?,
        user_properties: f
            .opt("user_properties", user_properties)?
            .unwrap_or_default(),
    })
}

/// Subscription options from `f`, over `base`.
fn subscription_options(f: &Fields, base: SubscriptionRequest) -> R<SubscriptionRequest> {
    Ok(SubscriptionRequest {
        qos: f.opt("qos", qos)?.unwrap_or(base.qos),
        no_local: f.opt("no_local", Node::bool)?.unwrap_or(base.no_local),
        retain_as_published: f
            .opt("retain_as_published", Node::bool)?
            .unwrap_or(base.retain_as_published),
        retain_handling: f
            .opt("retain_handling", |n| {
                let help = "0, 1, 2, `send-at-subscribe`, `send-if-new` or `do-not-send`";
                match n.text(help)? {
                    "0" | "send-at-subscribe" => Ok(RetainHandling::SendAtSubscribe),
                    "1" | "send-if-new" => Ok(RetainHandling::SendIfNew),
                    "2" | "do-not-send" => Ok(RetainHandling::DoNotSend),
                    _ => Err(n.expected(help)),
                }
            })?
            .unwrap_or(base.retain_handling),
        filter: base.filter,
    })
}

/// The keys an inline `expect` accepts after this action.
fn expect_keys(action: &Action) -> Vec<&'static str> {
    match action {
        Action::Connect(_) => keys(&[
            EXPECT_COMMON,
            EXPECT_REPLY,
            EXPECT_CONNECT,
            EXPECT_CONNACK_PROPERTIES,
        ]),
        Action::Send(_) => keys(&[
            EXPECT_COMMON,
            EXPECT_REPLY,
            EXPECT_CONNECT,
            EXPECT_CONNACK_PROPERTIES,
            &["granted", "codes"],
        ]),
        Action::Publish(_) => keys(&[EXPECT_COMMON, EXPECT_REPLY]),
        Action::Subscribe(_) => keys(&[EXPECT_COMMON, &["granted"]]),
        Action::Unsubscribe(_) => keys(&[EXPECT_COMMON, &["codes"]]),
        _ => EXPECT_COMMON.to_vec(),
    }
}

fn step_expectations(action: &Action, expect: Option<&Entry>) -> R<Vec<StepExpectation>> {
    let allowed = expect_keys(action);
    let what = "this step's `expect`";
    let mut out = match expect {
        Some(e) => e
            .value
            .list(|n| step_expectation(&Fields::of(n, what, &allowed)?))?,
        None => Vec::new(),
    };
    imply_outcome(action, &mut out);
    Ok(out)
}

/// A connect step that states no outcome (`reason`, `refused`, `no_connack`) expects CONNACK
/// success: `reason: success` joins its first expectation without a level, or comes first.
pub(super) fn imply_outcome(action: &Action, out: &mut Vec<StepExpectation>) {
    let states_outcome = out
        .iter()
        .any(|e| e.reason.is_some() || e.refused.is_some() || e.no_connack.is_some());
    if matches!(action, Action::Connect(_)) && !states_outcome {
        match out.iter_mut().find(|e| e.level.is_none()) {
            Some(first) => first.reason = Some(0),
            None => out.insert(
                0,
                StepExpectation {
                    reason: Some(0),
                    ..StepExpectation::default()
                },
            ),
        }
    }
}

fn step_expectation(f: &Fields) -> R<StepExpectation> {
    let reason = match (f.get("reason"), f.get("code")) {
        (Some(_), Some(code)) => {
            return Err(code.err("`reason` and `code` mean the same thing; use one"));
        }
        (reason, code) => reason.or(code).map(reason_code).transpose()?,
    };
    let codes = |n: &Node| match &n.value {
        Value::Seq(_) => n.list(reason_code),
        _ => Err(n.expected("a list of codes like `[1, 0x80]`")),
    };
    Ok(StepExpectation {
        level: f.opt("level", level)?,
        reason,
        session_present: f.opt("session_present", Node::bool)?,
        refused: f.opt("refused", Node::bool)?,
        no_connack: f.opt("no_connack", Node::bool)?,
        connack: ConnAckExpectation {
            session_expiry: f.opt("session_expiry", |n| check(n, seconds))?,
            receive_maximum: f.opt("receive_maximum", |n| check(n, Node::uint))?,
            maximum_qos: f.opt("maximum_qos", |n| check(n, qos))?,
            retain_available: f.opt("retain_available", |n| check(n, Node::bool))?,
            maximum_packet_size: f.opt("maximum_packet_size", |n| check(n, Node::uint))?,
            assigned_client_id: f.opt("assigned_client_id", |n| check(n, Node::string))?,
            topic_alias_maximum: f.opt("topic_alias_maximum", |n| check(n, Node::uint))?,
            wildcard_subscription_available: f
                .opt("wildcard_subscription_available", |n| check(n, Node::bool))?,
            subscription_identifiers_available: f
                .opt("subscription_identifiers_available", |n| {
                    check(n, Node::bool)
                })?,
            shared_subscription_available: f
                .opt("shared_subscription_available", |n| check(n, Node::bool))?,
            server_keep_alive: f.opt("server_keep_alive", |n| check(n, seconds))?,
        },
        granted: f.opt("granted", codes)?,
        codes: f.opt("codes", codes)?,
        closed: f.opt("closed", Node::bool)?,
        disconnect: f.opt("disconnect", |n| match &n.value {
            Value::Map(_) => Ok(DisconnectExpectation {
                reason: Fields::of(n, "`disconnect`", &["reason"])?.opt("reason", reason_code)?,
            }),
            Value::Scalar { text, .. } if text == "any" => Ok(DisconnectExpectation::default()),
            _ => Ok(DisconnectExpectation {
                reason: Some(reason_code(n)?),
            }),
        })?,
        within: f.opt("within", duration)?,
    })
}
