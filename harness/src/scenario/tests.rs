use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, Disconnect, LastWill, MessageProperties, Protocol, QoS, RetainHandling,
    SubscriptionRequest,
};
use lastwill_broker::config::Overrides;

use super::*;

const DELAYED: &str = r#"name: delayed will is cancelled by a reconnect within the delay
refs: [MQTT-3.1.3-9, MQTT-3.1.2-5]     # spec statements this scenario checks
protocol: 5                             # default for every client: 3.1.1 or 5
clients:
  watcher: {}                           # client id defaults to the name
  device: {client_id: device-1}
steps:
  - watcher: connect
  - watcher: {subscribe: status/#, qos: 1}
  - device:
      connect:
        session_expiry: 60s
        will: {topic: status/device-1, payload: offline, qos: 1, delay: 5s}
  - device: drop                        # the connection dies without DISCONNECT
    mark: dropped
  - wait: 2s
  - device: {connect: {clean_start: false, session_expiry: 60s}}
    expect: {session_present: true}
  - wait: 10s
expect:
  watcher: {receives: nothing}          # exactly nothing, over the whole run
"#;

const POSITIVE_TWIN_EXPECT: &str = r#"
expect:
  watcher:
    receives:
      - {topic: status/device-1, payload: offline, qos: 1, retain: false, at: dropped + 5s}
"#;

fn ok(source: &str) -> Scenario {
    parse(source, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn err(source: &str) -> String {
    parse(source, "t.yaml").unwrap_err().to_string()
}

/// A scenario with clients `a` (v5) and `b` (3.1.1) and the given steps.
fn with_steps(steps: &str) -> String {
    format!("name: t\nclients:\n  a: {{}}\n  b: {{protocol: 3.1.1}}\nsteps:\n{steps}")
}

fn action(scenario: &Scenario, step: usize) -> &Action {
    match &scenario.steps[step].kind {
        StepKind::Client { action, .. } => action,
        other => panic!("not a client step: {other:?}"),
    }
}

fn at(line: usize, column: usize) -> Location {
    Location { line, column }
}

fn success() -> StepExpectation {
    StepExpectation {
        reason: Some(0),
        ..StepExpectation::default()
    }
}

fn client_step(client: &str, action: Action, line: usize) -> Step {
    Step {
        kind: StepKind::Client {
            client: client.into(),
            action,
        },
        mark: None,
        at: None,
        expect: Vec::new(),
        location: at(line, 5),
    }
}

fn expected_delayed_steps() -> Vec<Step> {
    let mut will = LastWill {
        topic: "status/device-1".into(),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: false,
        delay_interval: Some(5),
        properties: MessageProperties::default(),
    };
    will.delay_interval = Some(5);
    let mut device = Connect::new(Protocol::V5, "device-1");
    device.session_expiry_interval = Some(60);
    device.will = Some(will);
    let mut reconnect = Connect::new(Protocol::V5, "device-1");
    reconnect.clean_start = false;
    reconnect.session_expiry_interval = Some(60);
    vec![
        Step {
            expect: vec![success()],
            ..client_step(
                "watcher",
                Action::Connect(Box::new(Connect::new(Protocol::V5, "watcher"))),
                8,
            )
        },
        client_step(
            "watcher",
            Action::Subscribe(SubscribeSpec {
                filters: vec![SubscriptionRequest::new("status/#", QoS::AtLeastOnce)],
                subscription_identifier: None,
                user_properties: vec![],
            }),
            9,
        ),
        Step {
            expect: vec![success()],
            ..client_step("device", Action::Connect(Box::new(device)), 10)
        },
        Step {
            mark: Some("dropped".into()),
            ..client_step("device", Action::Drop(DropMode::Rst), 14)
        },
        Step {
            kind: StepKind::Wait(Duration::from_secs(2)),
            mark: None,
            at: None,
            expect: vec![],
            location: at(16, 5),
        },
        Step {
            expect: vec![StepExpectation {
                session_present: Some(true),
                ..success()
            }],
            ..client_step("device", Action::Connect(Box::new(reconnect)), 17)
        },
        Step {
            kind: StepKind::Wait(Duration::from_secs(10)),
            mark: None,
            at: None,
            expect: vec![],
            location: at(19, 5),
        },
    ]
}

#[test]
fn design_example_parses_into_the_model() {
    let s = ok(DELAYED);
    assert_eq!(
        s.name,
        "delayed will is cancelled by a reconnect within the delay"
    );
    assert_eq!(s.refs, ["MQTT-3.1.3-9", "MQTT-3.1.2-5"]);
    assert_eq!(s.protocol, Protocol::V5);
    assert_eq!(s.level, Level::Must);
    assert_eq!(s.broker, Overrides::default());
    assert_eq!(
        s.clients,
        [
            ClientSpec {
                name: "watcher".into(),
                client_id: "watcher".into(),
                protocol: Protocol::V5,
                auto_ack: true,
                keep_alive_pings: true,
                node: None,
                location: at(5, 3),
            },
            ClientSpec {
                name: "device".into(),
                client_id: "device-1".into(),
                protocol: Protocol::V5,
                auto_ack: true,
                keep_alive_pings: true,
                node: None,
                location: at(6, 3),
            },
        ]
    );
    assert_eq!(s.steps, expected_delayed_steps());
    assert_eq!(
        s.expect,
        [ClientExpectation {
            client: "watcher".into(),
            level: None,
            receives: Some(Receives::Nothing),
            ordered: false,
            only: false,
            end_state: None,
            location: at(21, 12),
        }]
    );
    assert_eq!(s.marks().collect::<Vec<_>>(), ["dropped"]);
}

#[test]
fn design_positive_twin_parses_into_the_model() {
    let source = DELAYED.replace(
        "expect:\n  watcher: {receives: nothing}          # exactly nothing, over the whole run\n",
        POSITIVE_TWIN_EXPECT,
    );
    let s = ok(&source);
    assert_eq!(s.steps, expected_delayed_steps());
    let [expect] = &s.expect[..] else {
        panic!("{:?}", s.expect)
    };
    assert_eq!(expect.client, "watcher");
    assert_eq!(
        expect.receives,
        Some(Receives::Messages(vec![MessageMatcher {
            topic: Some("status/device-1".into()),
            payload: Some(Bytes::from_static(b"offline")),
            qos: Some(QoS::AtLeastOnce),
            retain: Some(false),
            dup: None,
            properties: PropertiesMatcher::default(),
            count: Range::exactly(1),
            window: Some(Window::At(TimeRef {
                mark: Some("dropped".into()),
                offset: Duration::from_secs(5),
            })),
            level: None,
            location: at(24, 9),
        }]))
    );
}

#[test]
fn durations() {
    let d = values::parse_duration;
    assert_eq!(d("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(d("5s"), Some(Duration::from_secs(5)));
    assert_eq!(d("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(d("2m"), Some(Duration::from_secs(120)));
    assert_eq!(d("1h"), Some(Duration::from_secs(3600)));
    for bad in ["5", "s", "5 s", "5.s", ".5s", "5sec", "-1s", "1e3ms", ""] {
        assert_eq!(d(bad), None, "{bad}");
    }
}

#[test]
fn flat_and_nested_options_are_the_same() {
    let flat = ok(&with_steps(
        "  - a: {subscribe: [x/#, y], qos: 2, no_local: true}\n",
    ));
    let nested = ok(&with_steps(
        "  - a: {subscribe: {filter: [x/#, y], qos: 2, no_local: true}}\n",
    ));
    assert_eq!(flat.steps[0].kind, nested.steps[0].kind);
    let Action::Subscribe(sub) = action(&flat, 0) else {
        panic!()
    };
    assert_eq!(sub.filters.len(), 2);
    assert!(
        sub.filters
            .iter()
            .all(|f| f.qos == QoS::ExactlyOnce && f.no_local)
    );
}

#[test]
fn subscribe_per_filter_options_override_the_shared_ones() {
    let s = ok(&with_steps(
        "  - a:\n      subscribe:\n        - t/1\n        - {filter: t/2, qos: 0, retain_handling: do-not-send}\n      qos: 1\n      subscription_id: 7\n      retain_as_published: true\n",
    ));
    let Action::Subscribe(sub) = action(&s, 0) else {
        panic!()
    };
    assert_eq!(sub.subscription_identifier, Some(7));
    assert_eq!(sub.filters[0].qos, QoS::AtLeastOnce);
    assert_eq!(sub.filters[1].qos, QoS::AtMostOnce);
    assert!(sub.filters.iter().all(|f| f.retain_as_published));
    assert_eq!(sub.filters[1].retain_handling, RetainHandling::DoNotSend);
}

#[test]
fn will_properties_and_payload_forms() {
    let s = ok(&with_steps(
        r#"  - a:
      connect:
        keep_alive: 2
        username: u
        password: {hex: "00 ff"}
        user_properties: [{k: v}]
        will:
          topic: t
          payload: {size: 3}
          qos: 2
          retain: true
          delay: 1m
          message_expiry: 30
          content_type: application/json
          response_topic: r/1
          correlation_data: {hex: "00FF1000"}
          payload_format: 1
          user_properties: [{a: "2"}, [c, 3], {a: "1"}]
"#,
    ));
    let Action::Connect(c) = action(&s, 0) else {
        panic!()
    };
    assert_eq!(c.keep_alive, 2);
    assert_eq!(c.password.as_deref(), Some(&[0x00, 0xff][..]));
    assert_eq!(c.user_properties, [("k".into(), "v".into())]);
    let will = c.will.as_ref().unwrap();
    assert_eq!(&will.payload[..], b"xxx");
    assert_eq!(
        (will.qos, will.retain, will.delay_interval),
        (QoS::ExactlyOnce, true, Some(60))
    );
    let p = &will.properties;
    assert_eq!(p.message_expiry_interval, Some(30));
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.response_topic.as_deref(), Some("r/1"));
    assert_eq!(p.correlation_data.as_deref(), Some(&[0, 0xff, 0x10, 0][..]));
    assert_eq!(p.payload_format_indicator, Some(1));
    let pairs: Vec<(&str, &str)> = p
        .user_properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(pairs, [("a", "2"), ("c", "3"), ("a", "1")]);
}

#[test]
fn client_actions() {
    let s = ok(&with_steps(
        r#"  - a: {publish: t, payload: hi, qos: 1, retain: true, topic_alias: 3, message_expiry: 10s}
    expect: {reason: no-matching-subscribers}
  - a: ping
  - a: silence
    expect: {closed: true, within: 10s, disconnect: {reason: 0x8D}}
  - a: {disconnect: disconnect-with-will, session_expiry: 0}
  - a: {drop: fin}
  - a: vanish
  - a: ack
  - a: {send: "e0 02 04 00"}
  - a: {unsubscribe: [t, u]}
    expect: {codes: [0, no-subscription-existed]}
  - b: disconnect
"#,
    ));
    let Action::Publish(p) = action(&s, 0) else {
        panic!()
    };
    assert_eq!(
        (p.qos, p.retain, p.topic_alias),
        (QoS::AtLeastOnce, true, Some(3))
    );
    assert_eq!(p.properties.message_expiry_interval, Some(10));
    assert_eq!(s.steps[0].expect[0].reason, Some(0x10));
    assert_eq!(action(&s, 1), &Action::Ping);
    assert_eq!(
        s.steps[2].expect[0],
        StepExpectation {
            closed: Some(true),
            within: Some(Duration::from_secs(10)),
            disconnect: Some(DisconnectExpectation { reason: Some(0x8D) }),
            ..StepExpectation::default()
        }
    );
    let Action::Disconnect(d) = action(&s, 3) else {
        panic!()
    };
    assert_eq!((u8::from(d.code), d.session_expiry_interval), (4, Some(0)));
    assert_eq!(action(&s, 4), &Action::Drop(DropMode::Fin));
    assert_eq!(action(&s, 5), &Action::Vanish);
    assert_eq!(action(&s, 6), &Action::Ack);
    assert_eq!(
        action(&s, 7),
        &Action::Send(Bytes::from_static(&[0xe0, 2, 4, 0]))
    );
    assert_eq!(s.steps[8].expect[0].codes, Some(vec![0, 0x11]));
    assert_eq!(action(&s, 9), &Action::Disconnect(Disconnect::default()));
}

#[test]
fn connect_expectations() {
    let s = ok(&with_steps(
        r#"  - a: {connect: {will: {topic: t, qos: 2}}}
    expect:
      - {refused: true, closed: true}
      - {reason: qos-not-supported, session_present: false, level: should}
  - a: connect
    expect: {maximum_qos: 1, retain_available: absent, assigned_client_id: present, server_keep_alive: 4s}
  - b: {send: "10 0c 00 04 4d 51 54 54 04 0e 00 3c 00 00"}
    expect: {no_connack: true, closed: true}
"#,
    ));
    let e = &s.steps[0].expect;
    assert_eq!(e.len(), 2);
    assert_eq!((e[0].refused, e[0].reason), (Some(true), None));
    assert_eq!((e[1].reason, e[1].level), (Some(0x9B), Some(Level::Should)));
    let c = &s.steps[1].expect[0];
    assert_eq!(c.reason, Some(0), "success is implied");
    assert_eq!(
        c.connack.maximum_qos,
        Some(PropertyCheck::Is(QoS::AtLeastOnce))
    );
    assert_eq!(c.connack.retain_available, Some(PropertyCheck::Absent));
    assert_eq!(c.connack.assigned_client_id, Some(PropertyCheck::Present));
    assert_eq!(c.connack.server_keep_alive, Some(PropertyCheck::Is(4)));
    assert_eq!(s.steps[2].expect[0].no_connack, Some(true));
    assert_eq!(s.steps[2].expect[0].reason, None, "send implies nothing");
}

#[test]
fn scenario_level_steps_and_instants() {
    let s = ok(&with_steps(
        r#"  - a: connect
    mark: up
  - mark: later
    at: up + 1.5s
  - wait: 250ms
  - broker: restart
  - net: {partition: [a, b], latency: 50ms}
  - net: {heal: all, latency: {value: 1s, clients: [b]}}
  - a: connect
    at: 3s
"#,
    ));
    assert_eq!(s.steps[1].kind, StepKind::Mark);
    assert_eq!(
        s.steps[1].at,
        Some(TimeRef {
            mark: Some("up".into()),
            offset: Duration::from_millis(1500)
        })
    );
    assert_eq!(s.steps[3].kind, StepKind::BrokerRestart);
    assert_eq!(
        s.steps[4].kind,
        StepKind::Net(vec![
            NetAction::Partition(vec!["a".into(), "b".into()]),
            NetAction::Latency {
                clients: None,
                latency: Duration::from_millis(50)
            },
        ])
    );
    assert_eq!(
        s.steps[5].kind,
        StepKind::Net(vec![
            NetAction::Heal(None),
            NetAction::Latency {
                clients: Some(vec!["b".into()]),
                latency: Duration::from_secs(1)
            },
        ])
    );
    assert_eq!(
        s.steps[6].at,
        Some(TimeRef {
            mark: None,
            offset: Duration::from_secs(3)
        })
    );
}

#[test]
fn final_expectations() {
    let s = ok(r#"name: t
level: should
broker: {max_qos: 1, retain_available: false, server_keep_alive: 4s, credentials: {username: u, password: p}}
clients: {a: {auto_ack: false}, b: {}}
steps:
  - a: connect
    mark: m
expect:
  a:
    - receives:
        - {topic: t, message_expiry: 29..30, content_type: absent, user_properties: [], subscription_identifiers: [7, 9], after: m, before: m + 6s}
        - {topic: u, count: 0..1, level: may, dup: true}
      ordered: true
      only: true
    - {closed: true, level: must}
  b: {connected: true}
"#);
    assert_eq!(s.level, Level::Should);
    assert_eq!(s.broker.max_qos, Some(QoS::AtLeastOnce));
    assert_eq!(s.broker.server_keep_alive, Some(4));
    assert_eq!(s.broker.credentials.as_ref().unwrap()[0].username, "u");
    assert!(!s.clients[0].auto_ack);
    assert_eq!(s.expect.len(), 3);
    let Some(Receives::Messages(m)) = &s.expect[0].receives else {
        panic!()
    };
    assert!(s.expect[0].ordered && s.expect[0].only);
    assert_eq!(
        m[0].properties.message_expiry,
        Some(PropertyCheck::Is(Range { min: 29, max: 30 }))
    );
    assert_eq!(m[0].properties.content_type, Some(PropertyCheck::Absent));
    assert_eq!(m[0].properties.user_properties, Some(vec![]));
    assert_eq!(m[0].properties.subscription_identifiers, Some(vec![7, 9]));
    assert_eq!(
        m[0].window,
        Some(Window::Between {
            after: Some(TimeRef {
                mark: Some("m".into()),
                offset: Duration::ZERO
            }),
            before: Some(TimeRef {
                mark: Some("m".into()),
                offset: Duration::from_secs(6)
            }),
        })
    );
    assert_eq!(
        (m[1].count, m[1].level, m[1].dup),
        (Range { min: 0, max: 1 }, Some(Level::May), Some(true))
    );
    assert_eq!(s.expect[1].end_state, Some(EndState::Closed));
    assert_eq!(s.expect[1].level, Some(Level::Must));
    assert_eq!(s.expect[2].end_state, Some(EndState::Connected));
}

#[test]
fn anchors_and_aliases_are_expanded() {
    let s = ok(&with_steps(
        "  - a: {connect: &c {session_expiry: 60}}\n  - a: {connect: *c}\n",
    ));
    assert_eq!(action(&s, 0), action(&s, 1));
}

#[test]
fn semantic_errors() {
    let cases = [
        (
            "  - a: {connect: {session_expiry: 1500ms}}\n",
            "t.yaml:6:35: `1500ms` is not a whole number of seconds (this interval travels in seconds)",
        ),
        (
            "  - a: {connect: {keep_alive: 70000}}\n",
            "t.yaml:6:31: 70000 is out of range: expected an integer from 0 to 65535",
        ),
        (
            "  - b: {connect: {session_expiry: 60}}\n",
            "t.yaml:6:19: `session_expiry` in `connect` is MQTT 5 only, and client `b` speaks 3.1.1 (use `send` for raw bytes)",
        ),
        (
            "  - a: connect\n    wait: 1s\n",
            "t.yaml:7:5: a step does one thing: `a` and `wait` are both here; make them two steps",
        ),
        (
            "  - a: {connect: {}, publish: t}\n",
            "t.yaml:6:22: a step does one thing: `connect` and `publish` are both here; make them two steps",
        ),
        (
            "  - a: conect\n",
            "t.yaml:6:8: unknown action `conect`; expected one of: connect, subscribe, unsubscribe, publish, ping, disconnect, drop, silence, vanish, ack, send (did you mean `connect`?)",
        ),
        (
            "  - a: subscribe\n",
            "t.yaml:6:8: missing key `filter` in `subscribe`",
        ),
        (
            "  - wait: 1s\n    expect: {closed: true}\n",
            "t.yaml:7:5: `expect` checks a client step's outcome; scenario-level steps have none",
        ),
        (
            "  - a: ping\n    expect: {session_present: true}\n",
            "t.yaml:7:14: unknown key `session_present` in this step's `expect`; expected one of: level, closed, within, disconnect",
        ),
        (
            "  - a: drop\n    mark: x\n  - a: drop\n    mark: x\n",
            "t.yaml:9:11: mark `x` is already defined at 7:11",
        ),
        (
            "  - a: {connect: {will: {topic: t, qos: 3}}}\n",
            "t.yaml:6:41: 3 is out of range: expected an integer from 0 to 2",
        ),
        (
            "  - a: {publish: t, payload: {hex: \"0\"}}\n",
            "t.yaml:6:37: malformed hex: a lone hex digit; every byte takes two digits (`0d`, not `d`)",
        ),
        (
            "  - a: {publish: t, payload: [1]}\n",
            "t.yaml:6:30: expected a payload: text, `{hex: \"00 ff\"}` or `{size: 1024}`, got a list",
        ),
        (
            "  - a: {drop: slow}\n",
            "t.yaml:6:15: unknown drop mode `slow`: expected `rst` or `fin`",
        ),
        (
            "  - net: {partition: [c]}\n",
            "t.yaml:6:23: undefined client `c`; defined clients: a, b",
        ),
        (
            "  - a: connect\n  - a: connect\n  - a: {connect: {clean_start: false}, clean_start: true}\n",
            "t.yaml:8:40: duplicate key `clean_start` in `connect` (first at 8:19)",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(steps, expected)| err(&with_steps(steps)) != *expected)
        .map(|(steps, _)| format!("{steps:?} => {}", err(&with_steps(steps))))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn document_level_errors() {
    assert_eq!(
        err(""),
        "t.yaml:1:1: the file is empty: expected a scenario with at least `name`, `clients` and `steps`"
    );
    assert_eq!(
        err("name: x\nclients: {}\n"),
        "t.yaml:1:1: missing key `steps` in the scenario"
    );
    assert_eq!(
        err("- a\n"),
        "t.yaml:1:1: expected a mapping for the scenario, got a list"
    );
    assert_eq!(
        err("name: x\nclients: {wait: {}}\nsteps: []\n"),
        "t.yaml:2:11: `wait` cannot name a client: it is a step keyword (wait, mark, broker, net, node, at, expect)"
    );
    assert_eq!(
        err("name: x\nname: y\n"),
        "t.yaml:2:1: duplicate key `name` in the scenario (first at 1:1)"
    );
    assert_eq!(
        err("name: a\n---\nname: b\n"),
        "t.yaml:2:1: a scenario file holds one YAML document; found a second `---`"
    );
}

#[test]
fn broker_section_errors() {
    let broker = |section: &str| {
        err(&format!(
            "name: t\nbroker: {section}\nclients: {{a: {{}}}}\nsteps: []\n"
        ))
    };
    let unknown = broker("{max_qso: 1}");
    assert!(
        unknown.starts_with("t.yaml:2:10: unknown key `max_qso` in broker; expected one of: max_qos, retain_available,"),
        "{unknown}"
    );
    assert!(
        unknown.ends_with(", shutdown_grace (did you mean `max_qos`?)"),
        "{unknown}"
    );
    assert_eq!(
        broker("{server_keep_alive: 2d}"),
        "t.yaml:2:29: invalid duration `2d`: expected seconds (`60`) or a number and a unit (ms, s, m or h), like `250ms`, `5s` or `2m`"
    );
    assert_eq!(
        broker("{connect_timeout: 70000s}"),
        "t.yaml:2:27: `70000s` is out of range: at most 65535 seconds"
    );
    assert_eq!(
        broker("{max_packet_size: 1}"),
        "t.yaml:2:27: 1 is out of range: expected an integer from 2 to 268435460"
    );
    assert_eq!(
        broker("{retain_available: no}"),
        "t.yaml:2:28: expected `true` or `false`, got string `no`"
    );
    assert_eq!(
        broker("{credentials: [{username: u}]}"),
        "t.yaml:2:24: missing key `password` in a credential"
    );
}

#[test]
fn reference_example_parses() {
    let doc = include_str!("../../../docs/scenario-language.md");
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the reference has a complete example");
    let s = ok(example);
    assert_eq!(s.clients.len(), 2);
    assert_eq!(s.steps.len(), 5);
    assert_eq!(s.expect.len(), 2);
}

#[test]
fn topic_fillers_reach_the_encoding_limit_and_no_further() {
    let s = ok(&with_steps(
        r#"  - a: {connect: {will: {topic: {size: 65535}}}}
  - a: {publish: {topic: {size: 2}}}
"#,
    ));
    let Action::Connect(c) = action(&s, 0) else {
        panic!()
    };
    assert_eq!(c.will.as_ref().unwrap().topic, "x".repeat(65_535));
    let Action::Publish(p) = action(&s, 1) else {
        panic!()
    };
    assert_eq!(p.topic, "xx");
    let error = err(&with_steps(
        "  - a: {connect: {will: {topic: {size: 65536}}}}\n",
    ));
    assert!(
        error.ends_with("65536 is out of range: expected an integer from 0 to 65535"),
        "{error}"
    );
    let error = err(&with_steps("  - a: {connect: {will: {topic: [t]}}}\n"));
    assert!(
        error.ends_with("expected a topic: text or `{size: 65535}`, got a list"),
        "{error}"
    );
}

#[test]
fn keys_are_paths_under_scenarios() {
    assert_eq!(
        super::key("scenarios/will-delay/cancel.yaml"),
        "will-delay/cancel"
    );
    assert_eq!(super::key("/work/x/scenarios/a/b.yaml"), "a/b");
    assert_eq!(super::key("elsewhere/c.yaml"), "elsewhere/c");
}

#[test]
fn lengths_add_waits_at_and_duration_and_bound_each_step_by_its_within() {
    let s = ok(&with_steps(
        "  - a: connect\n    mark: up\n  - wait: 2s\n  - a: ping\n    at: up + 5s\n    expect: {within: 3s}\n  - wait: 1h\n",
    ));
    assert_eq!(s.length(), Duration::from_secs(3600 + 5));
    // connect 10s (mark `up` at 10s), wait to 12s, ping starts at up + 5s = 15s, takes 3s
    assert_eq!(s.longest(), Duration::from_secs(3600 + 18));
    let s = ok("name: t\nduration: 30s\nclients: {a: {}}\nsteps:\n  - wait: 1s\n");
    assert_eq!(
        (s.length(), s.longest()),
        (Duration::from_secs(30), Duration::from_secs(30))
    );
}

#[test]
fn a_scenario_longer_than_the_horizon_is_refused_where_it_crosses_it() {
    let e = err(&with_steps(
        "  - a: connect\n  - wait: 23h\n  - wait: 2h\n  - a: ping\n",
    ));
    assert_eq!(
        e,
        "t.yaml:8:5: this step could end 25h 0m 10s into the run, past the 24h a scenario may \
         last (the simulator's horizon): split it or shorten its waits"
    );
    let e = err("name: t\nduration: 30h\nclients: {a: {}}\nsteps:\n  - wait: 1s\n");
    assert!(
        e.starts_with("t.yaml:2:11: a duration of 30h, past the 24h"),
        "{e}"
    );
}

#[test]
fn durations_are_shown_in_their_largest_units() {
    let shown = |ms: u64| human_duration(Duration::from_millis(ms));
    assert_eq!(shown(0), "0s");
    assert_eq!(shown(250), "250ms");
    assert_eq!(shown(1500), "1.5s");
    assert_eq!(shown(45_000), "45s");
    assert_eq!(shown(150_000), "2m 30s");
    assert_eq!(shown(3_600_000), "1h");
    assert_eq!(shown(5_400_000), "1h 30m");
    assert_eq!(shown(90_010_000), "25h 0m 10s");
}

#[test]
fn cluster_placements_and_node_steps() {
    let s = parse(
        "name: x\nclients: {a: {node: 2}, b: {}}\nsteps:\n  - a: connect\n  - node: {kill: 2}\n  - node: {restart: 2}\n",
        "t.yaml",
    )
    .unwrap();
    assert_eq!(s.clients[0].node, Some(2));
    assert_eq!(s.clients[1].node, None);
    assert_eq!(s.steps[1].kind, StepKind::Node(NodeAction::Kill(2)));
    assert_eq!(s.steps[2].kind, StepKind::Node(NodeAction::Restart(2)));
    assert_eq!(s.nodes(), 2);
    assert_eq!(
        err("name: x\nclients: {a: {node: 0}}\nsteps: [{a: connect}]\n"),
        "t.yaml:2:21: 0 is out of range: expected an integer from 1 to 9"
    );
    assert_eq!(
        err("name: x\nclients: {a: {}}\nsteps: [{node: {kill: 1, restart: 1}}]\n"),
        "t.yaml:3:16: expected one of `{kill: N}` or `{restart: N}`, got a mapping"
    );
}
