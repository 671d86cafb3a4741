//! Each kind of check, passing and failing: step expectations against hand-made outcomes,
//! final expectations against hand-made transcripts.

use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    ConnAck, ConnAckCode, ConnAckProperties, Disconnect, Packet, Protocol, Publish, QoS, SubAck,
    UnsubAck,
};

use super::*;
use crate::client::StepError;
use crate::scenario::{self, DropMode};
use crate::transcript::Event;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A scenario with the clients `watcher` and `device`; `steps` and `expect` are YAML blocks.
fn scenario(steps: &str, expect: &str) -> Scenario {
    let text = format!(
        "name: verdict\nclients:\n  watcher: {{}}\n  device: {{}}\nsteps:\n{steps}\n{expect}"
    );
    scenario::parse(&text, "verdict.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The checks of the scenario's last step with inline expectations (a `connect` has some
/// even when it states none), against `outcome`.
fn checks_of_step(steps: &str, outcome: &Outcome) -> Vec<Check> {
    let s = scenario(steps, "");
    let step = s
        .steps
        .iter()
        .rfind(|step| !step.expect.is_empty())
        .expect("a step with `expect`");
    step_checks(step, outcome, s.level)
}

/// The one check whose expectation reads `expected`.
fn the<'a>(checks: &'a [Check], expected: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.expected == expected)
        .unwrap_or_else(|| panic!("no check `{expected}` in {checks:#?}"))
}

fn connack(code: u8, session_present: bool) -> Outcome {
    Outcome {
        connack: Some(ConnAck {
            session_present,
            code: ConnAckCode::read(Protocol::V5, code),
            properties: ConnAckProperties::default(),
        }),
        ..Outcome::default()
    }
}

fn closed() -> Outcome {
    Outcome {
        closed: true,
        ..Outcome::default()
    }
}

#[test]
fn a_connect_without_a_stated_outcome_expects_success() {
    let steps = "  - device: connect\n    expect: {session_present: false}";
    let accepted = checks_of_step(steps, &connack(0x00, false));
    assert!(accepted.iter().all(|c| c.passed), "{accepted:#?}");
    let refused = checks_of_step(steps, &connack(0x87, false));
    let check = the(&refused, "reason 0x00 success");
    assert!(!check.passed);
    assert_eq!(check.observed, "CONNACK 0x87 not-authorized");
    assert_eq!(check.location.line, 6);
}

#[test]
fn a_3_1_1_reason_is_named_from_the_3_1_1_table() {
    let text = "name: v311\nprotocol: 3.1.1\nclients: {device: {}}\nsteps:\n  - device: connect\n    expect: {reason: 4}\n";
    let s = scenario::parse(text, "v311.yaml").unwrap();
    let refused = Outcome {
        connack: Some(ConnAck {
            session_present: false,
            code: ConnAckCode::read(Protocol::V311, 0x05),
            properties: ConnAckProperties::default(),
        }),
        ..Outcome::default()
    };
    let checks = step_checks(&s.steps[0], &refused, s.level);
    let check = the(&checks, "reason 0x04 bad-user-name-or-password");
    assert!(!check.passed);
    assert_eq!(check.observed, "CONNACK 0x05 not-authorized");
    let closed = step_checks(&s.steps[0], &closed(), s.level);
    assert!(!the(&closed, "reason 0x04 bad-user-name-or-password").passed);
}

#[test]
fn reason_is_the_connack_code_or_else_the_publish_ack() {
    let connect = "  - device: connect\n    expect: {reason: not-authorized}";
    assert!(
        the(
            &checks_of_step(connect, &connack(0x87, false)),
            "reason 0x87 not-authorized"
        )
        .passed
    );
    let publish =
        "  - device: connect\n  - device: {publish: t, qos: 1}\n    expect: {reason: 0x10}";
    let acked = Outcome {
        publish_ack: Some(0x10),
        ..Outcome::default()
    };
    assert!(
        the(
            &checks_of_step(publish, &acked),
            "reason 0x10 no-matching-subscribers"
        )
        .passed
    );
    let other = Outcome {
        publish_ack: Some(0x00),
        ..Outcome::default()
    };
    let check = checks_of_step(publish, &other);
    let check = the(&check, "reason 0x10 no-matching-subscribers");
    assert!(!check.passed);
    assert_eq!(check.observed, "ack 0x00 success");
}

#[test]
fn refused_accepts_a_refusing_code_or_a_close_and_3_1_1_return_codes() {
    let steps = "  - device: connect\n    expect: {refused: true}";
    let expected = "CONNECT refused (CONNACK >= 0x80 or close)";
    assert!(the(&checks_of_step(steps, &connack(0x87, false)), expected).passed);
    assert!(the(&checks_of_step(steps, &closed()), expected).passed);
    // 3.1.1 return code 5 (not authorized) is a refusal too
    assert!(the(&checks_of_step(steps, &connack(0x05, false)), expected).passed);
    let accepted = checks_of_step(steps, &connack(0x00, false));
    let check = the(&accepted, expected);
    assert!(!check.passed);
    assert_eq!(check.observed, "CONNACK 0x00 success");
    let silent = checks_of_step(steps, &Outcome::default());
    assert_eq!(the(&silent, expected).observed, "no CONNACK");
}

#[test]
fn no_connack_needs_a_close_and_no_connack() {
    let steps = "  - device: connect\n    expect: {no_connack: true}";
    assert!(the(&checks_of_step(steps, &closed()), "closed without CONNACK").passed);
    let answered = checks_of_step(steps, &connack(0x80, false));
    let check = the(&answered, "closed without CONNACK");
    assert!(!check.passed);
    assert_eq!(check.observed, "CONNACK 0x80 unspecified-error");
}

#[test]
fn session_present_is_compared_and_a_missing_connack_is_shown() {
    let steps = "  - device: connect\n    expect: {session_present: true}";
    assert!(
        the(
            &checks_of_step(steps, &connack(0, true)),
            "session_present=1"
        )
        .passed
    );
    let fresh = checks_of_step(steps, &connack(0, false));
    assert_eq!(
        the(&fresh, "session_present=1").observed,
        "session_present=0"
    );
    let gone = checks_of_step(steps, &closed());
    assert_eq!(
        the(&gone, "session_present=1").observed,
        "closed without CONNACK"
    );
}

#[test]
fn connack_properties_are_absent_present_or_a_value() {
    let steps = concat!(
        "  - device: connect\n",
        "    expect: {maximum_qos: 1, assigned_client_id: present, server_keep_alive: absent}"
    );
    let mut outcome = connack(0, false);
    let properties = &mut outcome.connack.as_mut().unwrap().properties;
    properties.maximum_qos = Some(QoS::AtLeastOnce);
    properties.assigned_client_identifier = Some("auto-1".into());
    let checks = checks_of_step(steps, &outcome);
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");

    let properties = &mut outcome.connack.as_mut().unwrap().properties;
    properties.maximum_qos = None;
    properties.assigned_client_identifier = None;
    properties.server_keep_alive = Some(5);
    let checks = checks_of_step(steps, &outcome);
    assert_eq!(the(&checks, "maximum_qos=1").observed, "maximum_qos absent");
    assert_eq!(
        the(&checks, "assigned_client_id present").observed,
        "assigned_client_id absent"
    );
    assert_eq!(
        the(&checks, "server_keep_alive absent (or the client's 60)").observed,
        "server_keep_alive=5"
    );
    let none = checks_of_step(steps, &closed());
    assert_eq!(the(&none, "CONNACK properties").observed, "no CONNACK");
}

#[test]
fn a_server_keep_alive_equal_to_the_clients_counts_as_absent() {
    let steps = concat!(
        "  - device: {connect: {keep_alive: 2}}
",
        "    expect: {server_keep_alive: absent}"
    );
    let expected = "server_keep_alive absent (or the client's 2)";
    let announcing = |value: Option<u16>| {
        let mut outcome = connack(0, false);
        outcome
            .connack
            .as_mut()
            .unwrap()
            .properties
            .server_keep_alive = value;
        checks_of_step(steps, &outcome)
    };
    assert!(the(&announcing(None), expected).passed);
    // [MQTT-3.2.2-22]: the same value changes nothing, so the client's Keep Alive applies
    assert!(the(&announcing(Some(2)), expected).passed);
    let other = announcing(Some(3));
    assert!(!the(&other, expected).passed);
    assert_eq!(the(&other, expected).observed, "server_keep_alive=3");
    // a raw CONNECT states no Keep Alive the harness can read: only absence meets it
    let raw = concat!(
        "  - device: {send: \"10 00\"}
",
        "    expect: {server_keep_alive: absent}"
    );
    let mut outcome = connack(0, false);
    outcome
        .connack
        .as_mut()
        .unwrap()
        .properties
        .server_keep_alive = Some(2);
    assert!(!the(&checks_of_step(raw, &outcome), "server_keep_alive absent").passed);
}

#[test]
fn suback_and_unsuback_codes_are_compared_in_order() {
    let subscribe =
        "  - device: connect\n  - device: {subscribe: t, qos: 1}\n    expect: {granted: [1]}";
    let granted = |codes: Vec<u8>| Outcome {
        suback: Some(SubAck {
            packet_id: 1,
            codes: codes.into_iter().map(Into::into).collect(),
            reason_string: None,
        }),
        ..Outcome::default()
    };
    assert!(
        the(
            &checks_of_step(subscribe, &granted(vec![1])),
            "SUBACK codes [0x01]"
        )
        .passed
    );
    let downgraded = checks_of_step(subscribe, &granted(vec![0]));
    assert_eq!(
        the(&downgraded, "SUBACK codes [0x01]").observed,
        "SUBACK codes [0x00]"
    );
    let nothing = checks_of_step(subscribe, &Outcome::default());
    assert_eq!(the(&nothing, "SUBACK codes [0x01]").observed, "no SUBACK");

    let unsubscribe =
        "  - device: connect\n  - device: {unsubscribe: t}\n    expect: {codes: [0x11]}";
    let unsuback = Outcome {
        unsuback: Some(UnsubAck {
            packet_id: 2,
            codes: vec![0x00.into()],
        }),
        ..Outcome::default()
    };
    let checks = checks_of_step(unsubscribe, &unsuback);
    assert_eq!(
        the(&checks, "UNSUBACK codes [0x11]").observed,
        "UNSUBACK codes [0x00]"
    );
}

#[test]
fn closed_and_disconnect_expectations() {
    let steps = "  - device: connect\n  - device: silence\n    expect: {closed: true, disconnect: session-taken-over}";
    let taken_over = Outcome {
        disconnect: Some(Disconnect {
            code: 0x8E.into(),
            ..Disconnect::default()
        }),
        closed: true,
        ..Outcome::default()
    };
    let checks = checks_of_step(steps, &taken_over);
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");
    let open = checks_of_step(steps, &Outcome::default());
    assert_eq!(
        the(&open, "the server closes the connection").observed,
        "still open"
    );
    assert_eq!(
        the(&open, "server DISCONNECT 0x8E session-taken-over").observed,
        "no DISCONNECT"
    );
    let dropped = checks_of_step(steps, &closed());
    assert_eq!(
        the(&dropped, "server DISCONNECT 0x8E session-taken-over").observed,
        "closed without DISCONNECT"
    );

    let any =
        "  - device: connect\n  - device: silence\n    expect: {disconnect: any, closed: false}";
    let normal = Outcome {
        disconnect: Some(Disconnect::default()),
        ..Outcome::default()
    };
    let checks = checks_of_step(any, &normal);
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");
    let checks = checks_of_step(any, &taken_over);
    assert!(the(&checks, "a server DISCONNECT").passed);
    assert_eq!(the(&checks, "the connection stays open").observed, "closed");
}

#[test]
fn a_step_that_cannot_be_carried_out_fails_at_the_scenario_level() {
    let steps = "  - device: connect\n  - device: {publish: t}\n    expect: {closed: false}";
    let outcome = Outcome {
        error: Some(StepError::NotConnected { packet: "PUBLISH" }),
        closed: true,
        ..Outcome::default()
    };
    let checks = checks_of_step(steps, &outcome);
    let check = the(&checks, "the step can be carried out");
    assert_eq!(
        (check.level, check.passed, check.observed.as_str()),
        (Level::Must, false, "cannot send PUBLISH: not connected")
    );
}

#[test]
fn levels_weigh_failures_must_fails_should_warns_may_records() {
    let steps = concat!(
        "  - device: connect\n",
        "    expect:\n",
        "      - {session_present: true, level: should}\n",
        "      - {assigned_client_id: present, level: may}\n",
    );
    let checks = checks_of_step(steps, &connack(0, false));
    assert_eq!(the(&checks, "session_present=1").level, Level::Should);
    assert_eq!(the(&checks, "assigned_client_id present").level, Level::May);
    assert!(
        checks.iter().filter(|c| !c.passed).count() == 2,
        "{checks:#?}"
    );
    assert_eq!(Verdict::of(&checks), Verdict::Warn);
    let may_only: Vec<Check> = checks
        .iter()
        .filter(|c| c.level != Level::Should)
        .cloned()
        .collect();
    assert_eq!(Verdict::of(&may_only), Verdict::Pass);
    let refused = checks_of_step(steps, &connack(0x87, false));
    assert_eq!(Verdict::of(&refused), Verdict::Fail);
    assert_eq!(
        the(&refused, "session_present=1").to_string(),
        "line 6: WARNING: session_present=1\n    observed: session_present=0"
    );
}

#[test]
fn may_checks_record_what_the_broker_did() {
    let steps = concat!(
        "  - device: connect\n",
        "    expect: [{session_present: false}, {assigned_client_id: present, level: may}]\n",
    );
    let checks = checks_of_step(steps, &connack(0, false));
    assert_eq!(the(&checks, "session_present=0").recorded(), None);
    assert_eq!(
        the(&checks, "assigned_client_id present")
            .recorded()
            .unwrap(),
        "line 6: assigned_client_id absent, not assigned_client_id present"
    );
    let mut outcome = connack(0, false);
    outcome
        .connack
        .as_mut()
        .unwrap()
        .properties
        .assigned_client_identifier = Some("x".into());
    let checks = checks_of_step(steps, &outcome);
    assert_eq!(
        the(&checks, "assigned_client_id present")
            .recorded()
            .unwrap(),
        "line 6: assigned_client_id present"
    );
}

// ---- final expectations -------------------------------------------------------------------

fn will(payload: &str) -> Publish {
    Publish::new(
        "will/device",
        Bytes::from(payload.to_owned()),
        QoS::AtLeastOnce,
    )
}

fn event(at_ms: u64, client: &str, kind: EventKind) -> Event {
    Event {
        at: ms(at_ms),
        client: client.to_owned(),
        kind,
        mark: None,
    }
}

fn received(at_ms: u64, publish: Publish) -> Event {
    event(
        at_ms,
        "watcher",
        EventKind::Received(Packet::Publish(publish)),
    )
}

fn transcript(events: Vec<Event>) -> Transcript {
    Transcript { events }
}

/// Steps that define the mark `dropped` (at 1 s in the tests' transcripts).
const DROP: &str = "  - watcher: connect\n  - device: connect\n  - device: drop\n    mark: dropped";

fn marks() -> Marks {
    Marks::from([("dropped".to_owned(), ms(1_000))])
}

fn final_of(expect: &str, events: Vec<Event>, tolerance: Tolerance) -> Vec<Check> {
    let s = scenario(DROP, expect);
    final_checks(&s, &transcript(events), &marks(), tolerance)
}

#[test]
fn receives_nothing_passes_on_silence_and_lists_what_came() {
    let expect = "expect:\n  watcher: {receives: nothing}";
    let quiet = final_of(expect, vec![], Tolerance::SIMULATOR);
    assert!(the(&quiet, "watcher receives nothing").passed);
    let noisy = final_of(
        expect,
        vec![received(1_200, will("offline"))],
        Tolerance::SIMULATOR,
    );
    let check = the(&noisy, "watcher receives nothing");
    assert!(!check.passed);
    assert_eq!(
        check.observed,
        "received 1.200s \"will/device\" \"offline\" qos=1 retain=0"
    );
}

#[test]
fn a_window_is_widened_by_the_tolerance_and_a_copy_outside_it_fails() {
    let expect =
        "expect:\n  watcher:\n    receives:\n      - {topic: will/device, at: dropped + 3s}";
    let expected = "watcher receives exactly once {topic=\"will/device\"} at dropped + 3.000s [3.900s, 4.500s]";
    // the simulator's tolerance: 100 ms early, 500 ms late
    for at in [3_900, 4_000, 4_500] {
        let checks = final_of(
            expect,
            vec![received(at, will("offline"))],
            Tolerance::SIMULATOR,
        );
        assert!(the(&checks, expected).passed, "at {at} ms: {checks:#?}");
    }
    for at in [3_899, 4_501] {
        let checks = final_of(
            expect,
            vec![received(at, will("offline"))],
            Tolerance::SIMULATOR,
        );
        let check = the(&checks, expected);
        assert!(!check.passed, "at {at} ms");
        assert!(
            check.observed.starts_with(&format!(
                "0 matching in time and 1 outside its window (at {}s);",
                seconds(ms(at))
            )),
            "{}",
            check.observed
        );
    }
    // a wider tolerance (a real broker's) takes in what the simulator's does not
    let wide = Tolerance {
        early: ms(500),
        late: ms(1_500),
    };
    let checks = final_of(expect, vec![received(5_400, will("offline"))], wide);
    assert!(
        the(
            &checks,
            "watcher receives exactly once {topic=\"will/device\"} at dropped + 3.000s [3.500s, 5.500s]"
        )
        .passed
    );
}

#[test]
fn after_and_before_bound_a_window_on_either_side() {
    let expect = "expect:\n  watcher:\n    receives:\n      - {payload: offline, after: dropped, before: 3s}";
    let expected = "watcher receives exactly once {payload=\"offline\"} after dropped and before 3.000s [0.900s, 3.500s]";
    let inside = final_of(
        expect,
        vec![received(2_000, will("offline"))],
        Tolerance::SIMULATOR,
    );
    assert!(the(&inside, expected).passed);
    let late = final_of(
        expect,
        vec![received(3_600, will("offline"))],
        Tolerance::SIMULATOR,
    );
    assert!(!the(&late, expected).passed);
    let open_ended =
        "expect:\n  watcher:\n    receives:\n      - {payload: offline, after: dropped + 2s}";
    let checks = final_of(
        open_ended,
        vec![received(600_000, will("offline"))],
        Tolerance::SIMULATOR,
    );
    assert!(
        the(
            &checks,
            "watcher receives exactly once {payload=\"offline\"} after dropped + 2.000s [2.900s, end]"
        )
        .passed
    );
}

#[test]
fn counts_are_exact_ranges_or_zero() {
    let twice = "expect:\n  watcher:\n    receives:\n      - {topic: will/device, count: 2}";
    let expected = "watcher receives exactly 2 times {topic=\"will/device\"}";
    let two = vec![received(1_100, will("a")), received(1_200, will("b"))];
    assert!(
        the(
            &final_of(twice, two.clone(), Tolerance::SIMULATOR),
            expected
        )
        .passed
    );
    let one = final_of(
        twice,
        vec![received(1_100, will("a"))],
        Tolerance::SIMULATOR,
    );
    let check = the(&one, expected);
    assert!(!check.passed);
    assert!(
        check.observed.starts_with("1 matching in time; received "),
        "{}",
        check.observed
    );

    let range = "expect:\n  watcher:\n    receives:\n      - {topic: will/device, count: 0..1}";
    let expected = "watcher receives 0 to 1 times {topic=\"will/device\"}";
    assert!(the(&final_of(range, vec![], Tolerance::SIMULATOR), expected).passed);
    assert!(
        !the(
            &final_of(range, two.clone(), Tolerance::SIMULATOR),
            expected
        )
        .passed
    );

    let never = "expect:\n  watcher:\n    receives:\n      - {topic: will/device, count: 0}";
    let expected = "watcher receives exactly 0 times {topic=\"will/device\"}";
    assert!(!the(&final_of(never, two, Tolerance::SIMULATOR), expected).passed);
}

#[test]
fn ordered_compares_the_first_arrival_of_each_listed_message() {
    let expect = concat!(
        "expect:\n  watcher:\n    ordered: true\n    receives:\n",
        "      - {payload: first}\n      - {payload: second}"
    );
    let expected = "watcher receives the listed messages in order";
    let in_order = vec![
        received(1_100, will("first")),
        received(1_200, will("second")),
    ];
    assert!(the(&final_of(expect, in_order, Tolerance::SIMULATOR), expected).passed);
    let reversed = vec![
        received(1_100, will("second")),
        received(1_200, will("first")),
    ];
    let checks = final_of(expect, reversed, Tolerance::SIMULATOR);
    assert!(!the(&checks, expected).passed);
    // each message still arrived once: only the order check fails
    assert_eq!(
        checks.iter().filter(|c| !c.passed).count(),
        1,
        "{checks:#?}"
    );
}

#[test]
fn only_fails_on_any_message_no_matcher_expects() {
    let expect = "expect:\n  watcher:\n    only: true\n    receives:\n      - {payload: offline}";
    let expected = "watcher receives only the listed messages";
    let just = vec![received(1_100, will("offline"))];
    assert!(the(&final_of(expect, just, Tolerance::SIMULATOR), expected).passed);
    let extra = vec![
        received(1_100, will("offline")),
        received(
            1_300,
            Publish::new("other", Bytes::from_static(b"x"), QoS::AtMostOnce),
        ),
    ];
    let checks = final_of(expect, extra, Tolerance::SIMULATOR);
    let check = the(&checks, expected);
    assert!(!check.passed);
    assert_eq!(
        check.observed,
        "also received 1.300s \"other\" \"x\" qos=0 retain=0"
    );
}

#[test]
fn qos_retain_and_dup_must_match_when_given() {
    let expect = "expect:\n  watcher:\n    receives:\n      - {topic: will/device, qos: 1, dup: true, retain: false}";
    let expected = "watcher receives exactly once {topic=\"will/device\", qos=1, retain=0, dup=1}";
    let mut resent = will("offline");
    resent.dup = true;
    assert!(
        the(
            &final_of(
                expect,
                vec![received(1_100, resent.clone())],
                Tolerance::SIMULATOR
            ),
            expected
        )
        .passed
    );
    // the first delivery (DUP 0) does not count for a matcher of the redelivery
    let first = will("offline");
    assert!(
        !the(
            &final_of(expect, vec![received(1_100, first)], Tolerance::SIMULATOR),
            expected
        )
        .passed
    );
    let mut downgraded = resent.clone();
    downgraded.qos = QoS::AtMostOnce;
    assert!(
        !the(
            &final_of(
                expect,
                vec![received(1_100, downgraded)],
                Tolerance::SIMULATOR
            ),
            expected
        )
        .passed
    );
    let mut retained = resent;
    retained.retain = true;
    assert!(
        !the(
            &final_of(
                expect,
                vec![received(1_100, retained)],
                Tolerance::SIMULATOR
            ),
            expected
        )
        .passed
    );
}

#[test]
fn a_message_in_time_with_other_flags_is_named_as_such() {
    let expect = "expect:\n  watcher:\n    receives:\n      - {topic: will/device, payload: offline, qos: 1, retain: false, at: dropped}";
    let expected = "watcher receives exactly once {topic=\"will/device\", payload=\"offline\", qos=1, retain=0} at dropped [0.900s, 1.500s]";
    let mut downgraded = will("offline");
    downgraded.qos = QoS::AtMostOnce;
    let checks = final_of(
        expect,
        vec![received(1_100, downgraded)],
        Tolerance::SIMULATOR,
    );
    let check = the(&checks, expected);
    assert!(!check.passed);
    assert_eq!(
        check.observed,
        "0 matching in time: arrived at 1.100s with qos=0, expected qos=1; received 1.100s \"will/device\" \"offline\" qos=0 retain=0"
    );
    // two fields at once, and a redelivery shows its DUP flag in the listing
    let mut resent = will("offline");
    resent.retain = true;
    resent.dup = true;
    let mut others = vec![received(1_100, resent)];
    // several that differ: the closest is named, the rest counted
    let mut retained_qos0 = will("offline");
    retained_qos0.retain = true;
    retained_qos0.qos = QoS::AtMostOnce;
    others.push(received(1_200, retained_qos0));
    // another message (other topic and payload) is no near miss
    others.push(received(
        1_300,
        Publish::new("x", Bytes::from("y"), QoS::AtMostOnce),
    ));
    let checks = final_of(expect, others, Tolerance::SIMULATOR);
    let observed = &the(&checks, expected).observed;
    assert!(
        observed.starts_with(
            "0 matching in time: arrived at 1.100s with retain=1, expected retain=0 (and 1 more in time that differ); received 1.100s \"will/device\" \"offline\" qos=1 retain=1 dup=1;"
        ),
        "{observed}"
    );
    // late and otherwise right: only the window is named, as before
    let checks = final_of(
        expect,
        vec![received(3_000, will("offline"))],
        Tolerance::SIMULATOR,
    );
    assert!(
        the(&checks, expected)
            .observed
            .starts_with("0 matching in time and 1 outside its window (at 3.000s); received")
    );
}

#[test]
fn property_mismatches_are_named_by_property() {
    let expect = "expect:\n  watcher:\n    receives:\n      - {topic: will/device, content_type: text/plain, user_properties: [{a: b}]}";
    let mut typed = will("offline");
    typed.properties.content_type = Some("application/json".into());
    let checks = final_of(expect, vec![received(1_100, typed)], Tolerance::SIMULATOR);
    let check = checks
        .iter()
        .find(|c| c.expected.starts_with("watcher receives"))
        .unwrap();
    assert!(
        check.observed.starts_with(
            "0 matching in time: arrived at 1.100s with content_type=\"application/json\" and no user properties, expected content_type=\"text/plain\" and only user[\"a\"]=\"b\";"
        ),
        "{}",
        check.observed
    );
}

#[test]
fn the_end_state_follows_the_last_connack_close_and_fault() {
    let expect = "expect:\n  device: {connected: true}";
    let expected = "device is connected at the end";
    let connack = |code| {
        EventKind::Received(Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnAckCode::read(Protocol::V5, code),
            properties: ConnAckProperties::default(),
        }))
    };
    let state = |events: Vec<Event>| {
        let checks = final_of(expect, events, Tolerance::SIMULATOR);
        let check = the(&checks, expected).clone();
        (check.passed, check.observed)
    };
    assert_eq!(
        state(vec![event(0, "device", connack(0))]),
        (true, "device is connected".into())
    );
    // silence leaves the connection open; a drop, a vanish or a close ends it
    let silent = vec![
        event(0, "device", connack(0)),
        event(10, "device", EventKind::Fault(Fault::Silence)),
    ];
    assert!(state(silent).0);
    for end in [
        EventKind::Fault(Fault::Drop(DropMode::Fin)),
        EventKind::Fault(Fault::Vanish),
        EventKind::Closed,
        EventKind::Sent(Packet::Disconnect(Disconnect::default())),
    ] {
        let events = vec![
            event(0, "device", connack(0)),
            event(10, "device", end.clone()),
        ];
        assert_eq!(
            state(events),
            (false, "device is closed".into()),
            "after {end:?}"
        );
    }
    assert!(
        !state(vec![event(0, "device", connack(0x87))]).0,
        "a refusal"
    );
    let back = vec![
        event(0, "device", connack(0)),
        event(10, "device", EventKind::Closed),
        event(20, "device", connack(0)),
    ];
    assert!(state(back).0, "reconnected");
}

#[test]
fn a_protocol_violation_fails_the_run_whatever_was_expected() {
    let violation = event(
        1_500,
        "device",
        EventKind::Violation("[MQTT-3.2.0-2] a second CONNACK on one connection".into()),
    );
    let checks = final_of("", vec![violation], Tolerance::SIMULATOR);
    let check = the(&checks, "device gets only well-formed protocol exchanges");
    assert_eq!(check.level, Level::Must);
    assert_eq!(
        check.observed,
        "[MQTT-3.2.0-2] a second CONNACK on one connection at 1.500s"
    );
    assert_eq!(check.location.line, 4, "the client's declaration");
    assert_eq!(Verdict::of(&checks), Verdict::Fail);
}

#[test]
fn a_block_level_applies_to_its_messages_unless_one_says_otherwise() {
    let expect = concat!(
        "expect:\n  watcher:\n    level: should\n    receives:\n",
        "      - {payload: a}\n      - {payload: b, level: may}"
    );
    let checks = final_of(expect, vec![], Tolerance::SIMULATOR);
    assert_eq!(
        the(&checks, "watcher receives exactly once {payload=\"a\"}").level,
        Level::Should
    );
    assert_eq!(
        the(&checks, "watcher receives exactly once {payload=\"b\"}").level,
        Level::May
    );
    assert_eq!(Verdict::of(&checks), Verdict::Warn);
}

#[test]
fn remaining_message_expiry_strays_by_whole_seconds_of_lateness_only() {
    let expect =
        "expect:\n  watcher:\n    receives:\n      - {topic: will/device, message_expiry: 24..25}";
    let expected = "watcher receives exactly once";
    let with_expiry = |seconds| {
        let mut publish = will("offline");
        publish.properties.message_expiry_interval = Some(seconds);
        vec![received(6_000, publish)]
    };
    let passes = |seconds, tolerance| {
        let checks = final_of(expect, with_expiry(seconds), tolerance);
        let check = checks
            .iter()
            .find(|c| c.expected.starts_with(expected))
            .expect("the matcher's check");
        check.passed
    };
    // The simulator's sub-second tolerance keeps the range exact.
    assert!(passes(25, Tolerance::SIMULATOR));
    assert!(!passes(26, Tolerance::SIMULATOR));
    assert!(!passes(23, Tolerance::SIMULATOR));
    // A TCP run that allows 1.5 s of lateness allows one second either side, no more.
    let tcp = Tolerance {
        early: ms(500),
        late: ms(1_500),
    };
    assert!(passes(26, tcp));
    assert!(passes(23, tcp));
    assert!(!passes(27, tcp));
    assert!(!passes(22, tcp));
}

#[test]
fn a_raw_3_1_1_connect_has_its_reason_named_from_the_3_1_1_table() {
    // a v5 client's raw CONNECT of level 4 (3.1.1), refused by a close
    let steps = concat!(
        "  - device: {send: \"10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00\"}\n",
        "    expect: {reason: 4}"
    );
    let checks = checks_of_step(steps, &closed());
    assert!(!the(&checks, "reason 0x04 bad-user-name-or-password").passed);
}
