//! Everything the harness says about a scenario is written for people: no Rust debug
//! notation (`Some(..)`, `None`, `Foo { .. }`, `AtLeastOnce`) in any check, skip reason or
//! report line.
//!
//! Renders, for every scenario of the catalogue: its checks as the simulator run gives them
//! (held or not), its step checks against a step that got nothing back and against a CONNACK
//! carrying every property, its final checks against a run in which nothing was received,
//! its skip reasons on a broker that can do little and on one that can do much, and the
//! reports of all of that. Each line is then searched for debug shapes.

use std::time::Duration;

use lastwill::client::Outcome;
use lastwill::report::{self, ScenarioResult, Status};
use lastwill::runner::sim;
use lastwill::runner::tcp::{Capabilities, Endpoint, Skip};
use lastwill::scenario::{self, Scenario};
use lastwill::transcript::Transcript;
use lastwill::verdict::{self, Check, Marks, Tolerance};
use lastwill_broker::codec::{ConnAck, ConnAckCode, ConnAckProperties, Protocol, QoS};
use lastwill_broker::config::Overrides;

/// Debug notation that must never reach a user.
const DEBUG_SHAPES: &[&str] = &[
    "Some(",
    "None",
    "{ ",
    "Is(",
    "Absent",
    "Present(",
    "Range {",
    "AtMostOnce",
    "AtLeastOnce",
    "ExactlyOnce",
];

/// Whether `line` shows debug notation: one of [`DEBUG_SHAPES`], or a byte string literal
/// (`b"\0\xff"`, a `b"` that does not end a word like `device-b"`).
fn shows_debug(line: &str) -> bool {
    let byte_string = line.match_indices("b\"").any(|(at, _)| {
        line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
    });
    byte_string || DEBUG_SHAPES.iter().any(|shape| line.contains(shape))
}

fn catalogue() -> Vec<Scenario> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    scenario::discover(root)
        .iter()
        .map(|f| scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A CONNACK with every property set, so that every property check has a value to name.
fn full_connack() -> Outcome {
    Outcome {
        connack: Some(ConnAck {
            session_present: true,
            code: ConnAckCode::read(Protocol::V5, 0x87),
            properties: ConnAckProperties {
                session_expiry_interval: Some(7),
                receive_maximum: Some(3),
                maximum_qos: Some(QoS::AtLeastOnce),
                retain_available: Some(false),
                maximum_packet_size: Some(99),
                assigned_client_identifier: Some("auto-1".into()),
                topic_alias_maximum: Some(2),
                reason_string: Some("why".into()),
                wildcard_subscription_available: Some(false),
                subscription_identifiers_available: Some(false),
                shared_subscription_available: Some(false),
                server_keep_alive: Some(9),
                response_information: None,
                server_reference: None,
                user_properties: vec![],
            },
        }),
        ..Outcome::default()
    }
}

/// Brokers that lack every capability, or have them all in unusual amounts.
fn capabilities() -> [Capabilities; 2] {
    let meagre = ConnAckProperties {
        maximum_qos: Some(QoS::AtMostOnce),
        retain_available: Some(false),
        topic_alias_maximum: Some(0),
        receive_maximum: Some(1),
        wildcard_subscription_available: Some(false),
        subscription_identifiers_available: Some(false),
        shared_subscription_available: Some(false),
        ..ConnAckProperties::default()
    };
    let ample = ConnAckProperties {
        maximum_qos: Some(QoS::ExactlyOnce),
        retain_available: Some(true),
        maximum_packet_size: Some(70_000),
        server_keep_alive: Some(1),
        topic_alias_maximum: Some(1000),
        receive_maximum: Some(1000),
        ..ConnAckProperties::default()
    };
    [meagre, ample].map(|properties| Capabilities {
        announced: Overrides::announced_in(&properties),
        refused: None,
    })
}

fn endpoint() -> Endpoint {
    Endpoint::at("127.0.0.1", 1883)
}

fn result(scenario: &Scenario, status: Status, checks: Vec<Check>) -> ScenarioResult {
    ScenarioResult {
        file: scenario.file.clone(),
        name: scenario.name.clone(),
        refs: scenario.refs.clone(),
        status,
        checks,
        transcript: String::new(),
        elapsed: Duration::ZERO,
        covered: Duration::ZERO,
        timeline: Default::default(),
    }
}

/// Every line the harness would show about `scenario`, in the simulator and elsewhere.
fn everything_said_about(scenario: &Scenario) -> Vec<String> {
    let mut said = Vec::new();
    let run = sim::run(scenario, 1).unwrap_or_else(|e| panic!("{}: {e}", scenario.file));
    said.push(run.render());
    let marks: Marks = run.timeline.marks.iter().cloned().collect();
    let mut checks = run.checks.clone();
    for step in &scenario.steps {
        for outcome in [Outcome::default(), full_connack()] {
            checks.extend(verdict::step_checks(step, &outcome, scenario.level));
        }
    }
    let nothing = Transcript::default();
    checks.extend(verdict::final_checks(
        scenario,
        &nothing,
        &marks,
        Tolerance::SIMULATOR,
    ));
    said.extend(checks.iter().map(Check::to_string));
    said.extend(checks.iter().filter_map(Check::recorded));
    said.extend(run.timeline.windows.iter().map(|w| w.what.clone()));
    said.extend(run.timeline.arrivals.iter().map(|a| a.what.clone()));
    let mut results = vec![result(scenario, Status::Fail, checks)];
    for capabilities in capabilities() {
        if let Some(why) = endpoint().skip_reason(scenario, &capabilities) {
            said.push(why.to_string());
            results.push(result(scenario, Status::Skip(why.to_string()), vec![]));
        }
    }
    said.extend(results.iter().map(ScenarioResult::note));
    said.push(report::table(&results));
    said
}

#[test]
fn no_check_skip_reason_or_report_line_of_the_catalogue_shows_debug_notation() {
    let catalogue = catalogue();
    let mut said: Vec<(String, String)> = Vec::new();
    for scenario in &catalogue {
        for line in everything_said_about(scenario) {
            said.push((scenario.file.clone(), line));
        }
    }
    // the skip reasons no catalogue scenario meets on the brokers above
    for why in [
        Skip::NetworkFaults { line: 3 },
        Skip::BrokerRestart { line: 4 },
        Skip::Unconfirmable {
            setting: "credentials",
        },
    ] {
        said.push(("(skip)".into(), why.to_string()));
    }
    let offending: Vec<String> = said
        .iter()
        .flat_map(|(file, text)| text.lines().map(move |line| (file, line)))
        .filter(|(_, line)| shows_debug(line))
        .map(|(file, line)| format!("{file}: {line}"))
        .collect();
    assert!(shows_debug(
        "properties=PropertiesMatcher { payload_format: Some(Is(1)) }"
    ));
    assert!(shows_debug("correlation_data: b\"\\0\\xff\""));
    assert!(!shows_debug(
        "topic=\"will/device-b\", payload=\"b-offline\""
    ));
    assert!(
        offending.is_empty(),
        "{} lines show debug notation:\n{}",
        offending.len(),
        offending.join("\n")
    );
    // the search saw what it is meant to: properties, CONNACK values and skip reasons
    let all: String = said
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for expected in [
        "payload_format=1",
        "message_expiry=24..25",
        "correlation_data=hex:00 ff 10 00",
        "subscription_ids=[7,9]",
        "topic_alias absent",
        "maximum_qos=1",
        "this one announces no ",
        "needs a broker with `max_qos: 1`; this one announces Maximum QoS 0",
        "recorded: ",
    ] {
        assert!(all.contains(expected), "nothing said `{expected}`");
    }
}
