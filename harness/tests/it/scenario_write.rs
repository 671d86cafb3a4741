//! The YAML writer round-trips with the parser: `parse(write(s)) == s` (modulo where the
//! scenario was read from) for every catalogue file and for arbitrary scenario models.

use std::path::Path;

use lastwill::scenario::{self, Scenario};

/// Writes `s`, parses the text back, and says what differs if anything does.
fn round_trip(s: &Scenario) -> Result<(), String> {
    let text = scenario::write(s);
    let back = scenario::parse(&text, "written.yaml")
        .map_err(|e| format!("the written text does not parse: {e}\n{text}"))?;
    if back.without_origin() == s.without_origin() {
        Ok(())
    } else {
        Err(format!(
            "the written text parses to another model\n--- written:\n{text}\n--- model before:\n{:#?}\n--- model after:\n{:#?}",
            s.without_origin(),
            back.without_origin()
        ))
    }
}

#[test]
fn every_catalogue_scenario_round_trips() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let files = scenario::discover(&root);
    assert!(files.len() > 100, "the catalogue is at {}", root.display());
    for file in files {
        let s = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        if let Err(why) = round_trip(&s) {
            panic!("{}: {why}", file.display());
        }
    }
}

/// Arbitrary scenario models: anything the parser can produce, with every field drawn.
mod arbitrary {
    use std::time::Duration;

    use bytes::Bytes;
    use lastwill::scenario::*;
    use lastwill_broker::codec::{
        Connect, Disconnect, LastWill, MessageProperties, Protocol, QoS, RetainHandling,
        SubscriptionRequest, UserProperty,
    };
    use lastwill_broker::config::{self, Credential, Overrides, SETTINGS, Value};
    use proptest::collection::vec;
    use proptest::option::of;
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// Any text, control characters and all of Unicode included.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "[a-z/+#. -]{0,12}",
            1 => any::<String>(),
            1 => Just("x".repeat(80)),
        ]
    }

    fn bytes() -> impl Strategy<Value = Bytes> {
        prop_oneof![
            text().prop_map(Bytes::from),
            vec(any::<u8>(), 0..12).prop_map(Bytes::from),
            (65usize..200).prop_map(|n| Bytes::from(vec![b'x'; n])),
        ]
    }

    fn qos() -> impl Strategy<Value = QoS> {
        (0u8..=2).prop_map(|q| QoS::from_u8(q).unwrap())
    }

    fn level() -> impl Strategy<Value = Level> {
        prop_oneof![Just(Level::Must), Just(Level::Should), Just(Level::May)]
    }

    fn duration() -> BoxedStrategy<Duration> {
        prop_oneof![
            (0u64..100).prop_map(Duration::from_secs),
            (0u64..100_000).prop_map(Duration::from_millis),
            // Under 50 minutes: eight steps, each with a wait, an `at:` and a `within:`, stay
            // inside the 24 h a scenario may last.
            (0u64..3_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        ]
        .boxed()
    }

    fn protocol() -> impl Strategy<Value = Protocol> {
        prop_oneof![Just(Protocol::V5), Just(Protocol::V311)]
    }

    fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
        vec((text(), text()), 0..3)
    }

    fn check<T: std::fmt::Debug + Clone>(
        value: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = PropertyCheck<T>> {
        prop_oneof![
            Just(PropertyCheck::Absent),
            Just(PropertyCheck::Present),
            value.prop_map(PropertyCheck::Is),
        ]
    }

    fn range() -> impl Strategy<Value = Range> {
        (any::<u32>(), 0u32..3).prop_map(|(min, extra)| Range {
            min,
            max: min.saturating_add(extra),
        })
    }

    fn properties(v5: bool) -> BoxedStrategy<MessageProperties> {
        if !v5 {
            return Just(MessageProperties::default()).boxed();
        }
        (
            of(any::<u8>()),
            of(any::<u32>()),
            of(text()),
            of(text()),
            of(bytes()),
            user_properties(),
        )
            .prop_map(|(pf, me, ct, rt, cd, up)| MessageProperties {
                payload_format_indicator: pf,
                message_expiry_interval: me,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd,
                user_properties: up,
            })
            .boxed()
    }

    fn will(v5: bool) -> impl Strategy<Value = LastWill> {
        (
            text(),
            bytes(),
            qos(),
            any::<bool>(),
            of(any::<u32>()).prop_map(move |d| d.filter(|_| v5)),
            properties(v5),
        )
            .prop_map(
                |(topic, payload, qos, retain, delay, properties)| LastWill {
                    topic,
                    payload,
                    qos,
                    retain,
                    delay_interval: delay,
                    properties,
                },
            )
    }

    fn connect(client: &ClientSpec) -> impl Strategy<Value = Connect> + use<> {
        let (protocol, id, v5) = (
            client.protocol,
            client.client_id.clone(),
            client.protocol.is_v5(),
        );
        let v5_only = move |v: Option<u32>| v.filter(|_| v5);
        (
            (of(text()), any::<bool>(), any::<u16>(), of(any::<u32>())),
            (of(any::<u16>()), of(any::<u32>()), of(any::<u16>())),
            (of(any::<u8>()), of(any::<u8>()), of(text()), of(bytes())),
            (user_properties(), of(will(v5)), of(text()), of(bytes())),
        )
            .prop_map(move |(a, b, c, d)| {
                let mut connect = Connect::new(protocol, a.0.unwrap_or_else(|| id.clone()));
                connect.clean_start = a.1;
                connect.keep_alive = a.2;
                connect.session_expiry_interval = v5_only(a.3);
                if v5 {
                    connect.receive_maximum = b.0;
                    connect.maximum_packet_size = b.1;
                    connect.topic_alias_maximum = b.2;
                    connect.request_response_information = c.0;
                    connect.request_problem_information = c.1;
                    connect.authentication_method = c.2;
                    connect.authentication_data = c.3;
                    connect.user_properties = d.0;
                }
                connect.will = d.1;
                connect.username = d.2;
                connect.password = d.3;
                connect
            })
    }

    fn subscription(v5: bool) -> impl Strategy<Value = SubscriptionRequest> {
        (text(), qos(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(
            move |(filter, qos, nl, rap, rh)| SubscriptionRequest {
                filter,
                qos,
                no_local: nl && v5,
                retain_as_published: rap && v5,
                retain_handling: match rh {
                    _ if !v5 => RetainHandling::SendAtSubscribe,
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                },
            },
        )
    }

    fn action(client: &ClientSpec) -> BoxedStrategy<Action> {
        let v5 = client.protocol.is_v5();
        let v5_props = move |p: Vec<UserProperty>| if v5 { p } else { Vec::new() };
        prop_oneof![
            connect(client).prop_map(|c| Action::Connect(Box::new(c))),
            (
                vec(subscription(v5), 0..3),
                of(1u32..=268_435_455),
                user_properties()
            )
                .prop_map(move |(filters, id, up)| Action::Subscribe(SubscribeSpec {
                    filters,
                    subscription_identifier: id.filter(|_| v5),
                    user_properties: v5_props(up),
                })),
            (vec(text(), 0..3), user_properties()).prop_map(move |(filters, up)| {
                Action::Unsubscribe(UnsubscribeSpec {
                    filters,
                    user_properties: v5_props(up),
                })
            }),
            (
                text(),
                bytes(),
                qos(),
                any::<bool>(),
                properties(v5),
                of(any::<u16>())
            )
                .prop_map(move |(topic, payload, qos, retain, properties, alias)| {
                    Action::Publish(PublishSpec {
                        topic,
                        payload,
                        qos,
                        retain,
                        properties,
                        topic_alias: alias.filter(|_| v5),
                    })
                }),
            Just(Action::Ping),
            (
                any::<u8>(),
                of(any::<u32>()),
                of(text()),
                of(text()),
                user_properties()
            )
                .prop_map(move |(code, se, rs, sr, up)| Action::Disconnect(if v5 {
                    Disconnect {
                        code: code.into(),
                        session_expiry_interval: se,
                        reason_string: rs,
                        server_reference: sr,
                        user_properties: up,
                    }
                } else {
                    Disconnect::default()
                })),
            prop_oneof![Just(DropMode::Rst), Just(DropMode::Fin)].prop_map(Action::Drop),
            Just(Action::Silence),
            Just(Action::Vanish),
            Just(Action::Ack),
            vec(any::<u8>(), 0..16).prop_map(|b| Action::Send(b.into())),
        ]
        .boxed()
    }

    fn connack() -> impl Strategy<Value = ConnAckExpectation> {
        (
            (
                of(check(any::<u32>())),
                of(check(any::<u16>())),
                of(check(qos())),
            ),
            (
                of(check(any::<bool>())),
                of(check(any::<u32>())),
                of(check(text())),
            ),
            (
                of(check(any::<u16>())),
                of(check(any::<bool>())),
                of(check(any::<bool>())),
            ),
            (of(check(any::<bool>())), of(check(any::<u16>()))),
        )
            .prop_map(|(a, b, c, d)| ConnAckExpectation {
                session_expiry: a.0,
                receive_maximum: a.1,
                maximum_qos: a.2,
                retain_available: b.0,
                maximum_packet_size: b.1,
                assigned_client_id: b.2,
                topic_alias_maximum: c.0,
                wildcard_subscription_available: c.1,
                subscription_identifiers_available: c.2,
                shared_subscription_available: d.0,
                server_keep_alive: d.1,
            })
    }

    /// One inline expectation with only the keys the parser allows after `action`.
    fn step_expectation(action: &Action) -> impl Strategy<Value = StepExpectation> + use<> {
        let (reply, connect, granted, codes) = match action {
            Action::Connect(_) => (true, true, false, false),
            Action::Send(_) => (true, true, true, true),
            Action::Publish(_) => (true, false, false, false),
            Action::Subscribe(_) => (false, false, true, false),
            Action::Unsubscribe(_) => (false, false, false, true),
            _ => (false, false, false, false),
        };
        (
            (
                of(level()),
                of(any::<u8>()),
                of(any::<bool>()),
                of(any::<bool>()),
            ),
            (of(any::<bool>()), connack(), of(vec(any::<u8>(), 0..3))),
            (of(vec(any::<u8>(), 0..3)), of(any::<bool>())),
            (of(of(any::<u8>())), of(duration())),
        )
            .prop_map(move |(a, b, c, d)| StepExpectation {
                level: a.0,
                reason: a.1.filter(|_| reply),
                session_present: a.2.filter(|_| connect),
                refused: a.3.filter(|_| connect),
                no_connack: b.0.filter(|_| connect),
                connack: if connect {
                    b.1
                } else {
                    ConnAckExpectation::default()
                },
                granted: b.2.filter(|_| granted),
                codes: c.0.filter(|_| codes),
                closed: c.1,
                disconnect: d.0.map(|reason| DisconnectExpectation { reason }),
                within: d.1,
            })
    }

    /// What a step draws before its marks and instants are tied to earlier steps.
    #[derive(Clone, Debug)]
    enum Kind {
        Client(usize),
        Wait(Duration),
        Mark,
        Restart,
        Net(Vec<(u8, Vec<Index>, bool, Duration)>),
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            6 => any::<usize>().prop_map(Kind::Client),
            1 => duration().prop_map(Kind::Wait),
            1 => Just(Kind::Mark),
            1 => Just(Kind::Restart),
            1 => vec((0u8..3, vec(any::<Index>(), 0..3), any::<bool>(), duration()), 0..4)
                .prop_map(Kind::Net),
        ]
    }

    fn mark_name() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9_.-]{0,5}".prop_filter("`start` is reserved", |m| m != "start")
    }

    /// An instant on one of `marks` (or the start) plus an offset.
    fn instant(marks: &[String], pick: Option<Index>, offset: Duration) -> TimeRef {
        TimeRef {
            mark: pick
                .filter(|_| !marks.is_empty())
                .map(|i| i.get(marks).clone()),
            offset,
        }
    }

    fn clients() -> impl Strategy<Value = (Protocol, Vec<ClientSpec>)> {
        (
            protocol(),
            vec(
                (
                    text(),
                    of(text()),
                    of(protocol()),
                    any::<bool>(),
                    any::<bool>(),
                ),
                0..4,
            ),
        )
            .prop_map(|(default, drawn)| {
                let mut clients: Vec<ClientSpec> = Vec::new();
                for (i, (name, id, protocol, auto_ack, pings)) in drawn.into_iter().enumerate() {
                    let keyword = ["wait", "mark", "broker", "net", "at", "expect"];
                    let taken = |n: &String| clients.iter().any(|c| c.name == *n);
                    let name = if keyword.contains(&name.as_str()) || taken(&name) {
                        format!("{name}{i}")
                    } else {
                        name
                    };
                    clients.push(ClientSpec {
                        client_id: id.unwrap_or_else(|| name.clone()),
                        protocol: protocol.unwrap_or(default),
                        auto_ack,
                        keep_alive_pings: pings,
                        location: Location::default(),
                        name,
                    });
                }
                (default, clients)
            })
    }

    /// Steps for `clients`: actions valid for each client's protocol, marks defined once, and
    /// instants that only name marks of earlier steps.
    fn steps(clients: Vec<ClientSpec>) -> BoxedStrategy<(Vec<ClientSpec>, Vec<Step>)> {
        let drawn = vec(
            (
                kind(),
                of(mark_name()),
                of((of(any::<Index>()), duration())),
            ),
            0..8,
        );
        drawn
            .prop_flat_map(move |drawn| {
                let clients = clients.clone();
                let per_step: Vec<BoxedStrategy<(Option<Action>, Vec<StepExpectation>)>> = drawn
                    .iter()
                    .map(|(kind, _, _)| match kind {
                        Kind::Client(i) if !clients.is_empty() => {
                            let client = clients[i % clients.len()].clone();
                            action(&client)
                                .prop_flat_map(|action| {
                                    let expect = vec(step_expectation(&action), 0..3);
                                    (Just(Some(action)), expect)
                                })
                                .boxed()
                        }
                        _ => Just((None, Vec::new())).boxed(),
                    })
                    .collect();
                (Just(clients), Just(drawn), per_step)
            })
            .prop_map(|(clients, drawn, actions)| {
                let mut marks: Vec<String> = Vec::new();
                let mut steps = Vec::new();
                for (i, ((kind, mark, at), (action, mut expect))) in
                    drawn.into_iter().zip(actions).enumerate()
                {
                    let at = at.map(|(pick, offset)| instant(&marks, pick, offset));
                    let kind = match (kind, action) {
                        (Kind::Client(c), Some(action)) => {
                            let client = clients[c % clients.len()].name.clone();
                            if matches!(action, Action::Connect(_))
                                && !expect.iter().any(|e| {
                                    e.reason.is_some()
                                        || e.refused.is_some()
                                        || e.no_connack.is_some()
                                })
                            {
                                // a connect step always states an outcome (the parser adds
                                // `reason: success` where none is stated)
                                match expect.first_mut() {
                                    Some(first) => first.reason = Some(0x87),
                                    None => expect.push(StepExpectation {
                                        reason: Some(0x87),
                                        ..StepExpectation::default()
                                    }),
                                }
                            }
                            StepKind::Client { client, action }
                        }
                        (Kind::Wait(d), _) => StepKind::Wait(d),
                        (Kind::Restart, _) => StepKind::BrokerRestart,
                        (Kind::Net(parts), _) => StepKind::Net(net(&clients, parts)),
                        _ => StepKind::Mark,
                    };
                    if !matches!(kind, StepKind::Client { .. }) {
                        expect.clear();
                    }
                    let mark = match (&kind, mark) {
                        (StepKind::Mark, None) => Some(format!("m{i}")),
                        (_, mark) => mark,
                    }
                    .map(|m| {
                        if marks.contains(&m) {
                            format!("{m}.{i}")
                        } else {
                            m
                        }
                    });
                    marks.extend(mark.clone());
                    steps.push(Step {
                        kind,
                        mark,
                        at,
                        expect,
                        location: Location::default(),
                    });
                }
                (clients, steps)
            })
            .boxed()
    }

    /// `net:` actions: at most one of each kind (keys of one mapping), in drawn order.
    fn net(clients: &[ClientSpec], parts: Vec<(u8, Vec<Index>, bool, Duration)>) -> Vec<NetAction> {
        let names = |picks: &[Index]| -> Vec<String> {
            if clients.is_empty() {
                return Vec::new();
            }
            picks.iter().map(|i| i.get(clients).name.clone()).collect()
        };
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for (kind, picks, flag, latency) in parts {
            if seen.contains(&kind) {
                continue;
            }
            seen.push(kind);
            out.push(match kind {
                0 => NetAction::Partition(names(&picks)),
                1 => NetAction::Heal(flag.then(|| names(&picks))),
                _ => NetAction::Latency {
                    clients: flag.then(|| names(&picks)),
                    latency,
                },
            });
        }
        out
    }

    fn matcher(marks: Vec<String>) -> impl Strategy<Value = MessageMatcher> {
        let properties = (
            (
                of(check(any::<u8>())),
                of(check(range())),
                of(check(text())),
            ),
            (of(check(text())), of(check(bytes())), of(user_properties())),
            (of(vec(any::<u32>(), 0..3)), of(check(any::<u16>()))),
        )
            .prop_map(|(a, b, c)| PropertiesMatcher {
                payload_format: a.0,
                message_expiry: a.1,
                content_type: a.2,
                response_topic: b.0,
                correlation_data: b.1,
                user_properties: b.2,
                subscription_identifiers: c.0,
                topic_alias: c.1,
            });
        let time = (of(any::<Index>()), duration());
        (
            (
                of(text()),
                of(bytes()),
                of(qos()),
                of(any::<bool>()),
                of(any::<bool>()),
            ),
            properties,
            range(),
            (0u8..4, time.clone(), of(time)),
            of(level()),
        )
            .prop_map(move |(a, properties, count, window, level)| {
                let (shape, first, second) = window;
                let at = |(pick, offset)| instant(&marks, pick, offset);
                MessageMatcher {
                    topic: a.0,
                    payload: a.1,
                    qos: a.2,
                    retain: a.3,
                    dup: a.4,
                    properties,
                    count,
                    window: match shape {
                        0 => None,
                        1 => Some(Window::At(at(first))),
                        2 => Some(Window::Between {
                            after: Some(at(first)),
                            before: second.map(at),
                        }),
                        _ => Some(Window::Between {
                            after: second.map(at),
                            before: Some(at(first)),
                        }),
                    },
                    level,
                    location: Location::default(),
                }
            })
    }

    fn expectations(
        clients: Vec<ClientSpec>,
        marks: Vec<String>,
    ) -> BoxedStrategy<Vec<ClientExpectation>> {
        if clients.is_empty() {
            return Just(Vec::new()).boxed();
        }
        let receives = prop_oneof![
            Just(Receives::Nothing),
            vec(matcher(marks), 0..3).prop_map(Receives::Messages),
        ];
        let end = prop_oneof![Just(EndState::Connected), Just(EndState::Closed)];
        vec(
            (
                any::<Index>(),
                of(level()),
                of(receives),
                any::<bool>(),
                any::<bool>(),
                of(end),
            ),
            0..4,
        )
        .prop_map(move |blocks| {
            blocks
                .into_iter()
                .map(
                    |(who, level, receives, ordered, only, end_state)| ClientExpectation {
                        client: who.get(&clients).name.clone(),
                        level,
                        receives,
                        ordered,
                        only,
                        end_state,
                        location: Location::default(),
                    },
                )
                .collect()
        })
        .boxed()
    }

    /// Any overrides: each setting of the broker's table left out or set to a value of its
    /// kind within its range.
    fn broker() -> impl Strategy<Value = Overrides> {
        let values: Vec<BoxedStrategy<Option<Value>>> = SETTINGS
            .iter()
            .map(|setting| {
                let (min, max) = setting.range;
                let value: BoxedStrategy<Value> = match setting.kind {
                    config::Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
                    config::Kind::Qos => qos().prop_map(Value::Qos).boxed(),
                    config::Kind::Seconds | config::Kind::Bytes | config::Kind::Count => {
                        (min..=max).prop_map(Value::Number).boxed()
                    }
                    config::Kind::Credentials => vec((text(), text()), 0..2)
                        .prop_map(|list| {
                            Value::Credentials(
                                list.into_iter()
                                    .map(|(username, password)| Credential { username, password })
                                    .collect(),
                            )
                        })
                        .boxed(),
                };
                of(value).boxed()
            })
            .collect();
        values.prop_map(|values| {
            let mut overrides = Overrides::default();
            for (setting, value) in SETTINGS.iter().zip(values) {
                if let Some(value) = value {
                    setting
                        .set(&mut overrides, value)
                        .expect("a value within range");
                }
            }
            overrides
        })
    }

    pub fn scenario() -> impl Strategy<Value = Scenario> {
        let header = (
            text(),
            of(text()),
            vec(text(), 0..3),
            vec(text(), 0..2),
            level(),
            of(any::<u64>()),
            of(duration()),
            broker(),
            any::<bool>(),
        );
        (header, clients())
            .prop_flat_map(|(header, (protocol, clients))| {
                (Just(header), Just(protocol), steps(clients))
            })
            .prop_flat_map(|(header, protocol, (clients, steps))| {
                let marks: Vec<String> = steps.iter().filter_map(|s| s.mark.clone()).collect();
                let expect = expectations(clients.clone(), marks);
                (
                    Just(header),
                    Just(protocol),
                    Just(clients),
                    Just(steps),
                    expect,
                )
            })
            .prop_map(|(header, protocol, clients, steps, expect)| {
                let (name, description, refs, tags, level, seed, duration, broker, control) =
                    header;
                Scenario {
                    file: String::new(),
                    name,
                    description,
                    refs,
                    tags,
                    protocol,
                    level,
                    seed,
                    duration,
                    broker,
                    control,
                    clients,
                    steps,
                    expect,
                }
            })
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 500,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Any model the parser can produce is written so that it reads back the same.
    #[test]
    fn arbitrary_scenarios_round_trip(s in arbitrary::scenario()) {
        if let Err(why) = round_trip(&s) {
            panic!("{why}");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Every generated will history is a scenario file.
    #[test]
    fn generated_histories_round_trip(
        h in lastwill::generate::strategy::history(lastwill::generate::strategy::Size::FULL)
    ) {
        if let Err(why) = round_trip(&h.scenario("generated")) {
            panic!("{why}");
        }
    }

    /// So is every timer interleaving.
    #[test]
    fn delayed_wills_round_trip(h in lastwill::generate::strategy::delayed_wills(20..=24)) {
        if let Err(why) = round_trip(&h.scenario("delayed wills")) {
            panic!("{why}");
        }
    }
}
