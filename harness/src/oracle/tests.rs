//! The will rules the oracle must get right, each on a small scenario.

use super::{Prediction, predict};
use crate::scenario::{self, Level, Receives, TimeRef, Window};

fn prediction(yaml: &str) -> Prediction {
    let scenario = scenario::parse(yaml, "test.yaml").expect("test scenario parses");
    predict(&scenario).unwrap_or_else(|why| panic!("unsupported: {why}"))
}

fn time(t: &TimeRef) -> String {
    let mark = t.mark.as_deref().unwrap_or("start");
    if t.offset.is_zero() {
        mark.to_owned()
    } else {
        format!("{mark}+{}s", t.offset.as_secs_f64())
    }
}

/// What `client` is predicted to receive, one line per matcher:
/// `LEVEL TOPIC qos=Q retain=R [count=..] WINDOW`, or `nothing`.
fn expected(p: &Prediction, client: &str) -> Vec<String> {
    let block = p
        .scenario
        .expect
        .iter()
        .find(|b| b.client == client)
        .expect("a block per client");
    match block.receives.as_ref().expect("receives") {
        Receives::Nothing => vec!["nothing".into()],
        Receives::Messages(ms) => ms
            .iter()
            .map(|m| {
                let level = match m.level.unwrap_or(Level::Must) {
                    Level::Must => "must",
                    Level::Should => "should",
                    Level::May => "may",
                };
                let window = match &m.window {
                    Some(Window::At(t)) => format!("at {}", time(t)),
                    Some(Window::Between { after, before }) => format!(
                        "after {} before {}",
                        after.as_ref().map_or("-".into(), time),
                        before.as_ref().map_or("-".into(), time)
                    ),
                    None => "any time".into(),
                };
                let count = if m.count.min == 1 && m.count.max == 1 {
                    String::new()
                } else {
                    format!(" count={}..{}", m.count.min, m.count.max)
                };
                format!(
                    "{level} {} qos={} retain={}{count} {window}",
                    m.topic.as_deref().unwrap_or("?"),
                    m.qos.map_or(9, |q| q.as_u8()),
                    u8::from(m.retain.unwrap_or(false)),
                )
            })
            .collect(),
    }
}

/// A v5 watcher on `will/#` at QoS 2 and a device with the given CONNECT, then `events`.
fn device(protocol: &str, connect: &str, events: &str) -> String {
    format!(
        "name: t\nprotocol: {protocol}\nclients:\n  watcher: {{protocol: 5}}\n  device: {{}}\n  \
         again: {{client_id: device}}\nsteps:\n  - watcher: connect\n  - watcher: \
         {{subscribe: will/#, qos: 2}}\n  - device: {{connect: {connect}}}\n{events}"
    )
}

const WILL: &str = "{topic: will/d, payload: gone, qos: 1";

#[test]
fn will_is_due_at_the_earlier_of_its_delay_and_the_session_end() {
    let cases = [
        ("session_expiry: 60", "delay: 5", "at dropped+5s"),
        ("session_expiry: 3", "delay: 10", "at dropped+3s"),
        ("session_expiry: 3", "delay: 3", "at dropped+3s"),
        ("session_expiry: 0xFFFFFFFF", "delay: 7", "at dropped+7s"),
        // no session expiry: the session ends with the connection, before the delay ({A2})
        ("keep_alive: 60", "delay: 5", "at dropped"),
        ("session_expiry: 60", "delay: 0", "at dropped"),
    ];
    for (session, delay, due) in cases {
        let p = prediction(&device(
            "5",
            &format!("{{{session}, will: {WILL}, {delay}}}}}"),
            "  - device: drop\n    mark: dropped\n  - wait: 12s\n",
        ));
        assert_eq!(
            expected(&p, "watcher"),
            [format!("must will/d qos=1 retain=0 {due}")],
            "{session}, {delay}"
        );
    }
}

#[test]
fn a_3_1_1_will_has_no_delay_and_ignores_clean_session() {
    let p = prediction(&device(
        "3.1.1",
        &format!("{{clean_start: false, will: {WILL}}}}}"),
        "  - device: drop\n    mark: dropped\n  - device: {connect: {clean_start: false}}\n  \
         - wait: 3s\n",
    ));
    assert_eq!(
        expected(&p, "watcher"),
        ["must will/d qos=1 retain=0 at dropped"]
    );
}

#[test]
fn disconnect_0x00_discards_and_every_other_code_publishes() {
    let cases = [
        ("{disconnect: 0x00}", "nothing"),
        (
            "{disconnect: 0x04}",
            "must will/d qos=1 retain=0 at left+3s",
        ),
        (
            "{disconnect: 0x80}",
            "must will/d qos=1 retain=0 at left+3s",
        ),
        // 0x04 asking for session expiry 0 ends the session now, before the delay
        (
            "{disconnect: {reason: 0x04, session_expiry: 0}}",
            "must will/d qos=1 retain=0 at left",
        ),
        // a code outside Table 3-10 is malformed: its session expiry is not taken
        (
            "{disconnect: {reason: 0xFF, session_expiry: 0}}",
            "must will/d qos=1 retain=0 at left+3s",
        ),
    ];
    for (disconnect, outcome) in cases {
        let p = prediction(&device(
            "5",
            &format!("{{session_expiry: 60, will: {WILL}, delay: 3}}}}"),
            &format!("  - device: {disconnect}\n    mark: left\n  - wait: 6s\n"),
        ));
        assert_eq!(expected(&p, "watcher"), [outcome], "{disconnect}");
    }
    let p = prediction(&device(
        "3.1.1",
        &format!("{{will: {WILL}}}}}"),
        "  - device: disconnect\n  - wait: 3s\n",
    ));
    assert_eq!(expected(&p, "watcher"), ["nothing"]);
}

#[test]
fn disconnect_session_expiry_changes_the_due_time() {
    // lengthened: the delay governs again
    let p = prediction(&device(
        "5",
        &format!("{{session_expiry: 2, will: {WILL}, delay: 10}}}}"),
        "  - device: {disconnect: {reason: 0x04, session_expiry: 60}}\n    mark: left\n  - wait: \
         13s\n",
    ));
    assert_eq!(
        expected(&p, "watcher"),
        ["must will/d qos=1 retain=0 at left+10s"]
    );
    // 0 at CONNECT, non-zero at DISCONNECT: a protocol error, so even 0x00 publishes at once
    let p = prediction(&device(
        "5",
        &format!("{{will: {WILL}, delay: 10}}}}"),
        "  - device: {disconnect: {reason: 0x00, session_expiry: 60}}\n    mark: left\n  - wait: \
         3s\n",
    ));
    assert_eq!(
        expected(&p, "watcher"),
        ["must will/d qos=1 retain=0 at left"]
    );
}

#[test]
fn a_reconnect_before_the_due_time_cancels_and_clean_start_publishes_at_once() {
    let resumed = prediction(&device(
        "5",
        &format!("{{session_expiry: 60, will: {WILL}, delay: 5}}}}"),
        "  - device: drop\n    mark: dropped\n  - device: {connect: {clean_start: false, \
         session_expiry: 60}}\n    at: dropped + 1s\n  - wait: 10s\n",
    ));
    assert_eq!(expected(&resumed, "watcher"), ["nothing"]);
    let clean = prediction(&device(
        "5",
        &format!("{{session_expiry: 60, will: {WILL}, delay: 30}}}}"),
        "  - device: drop\n    mark: dropped\n  - device: {connect: {clean_start: true, \
         session_expiry: 60}}\n    at: dropped + 2s\n    mark: back\n  - wait: 32s\n",
    ));
    assert_eq!(
        expected(&clean, "watcher"),
        ["must will/d qos=1 retain=0 at back"]
    );
    let late = prediction(&device(
        "5",
        &format!("{{session_expiry: 60, will: {WILL}, delay: 5}}}}"),
        "  - device: drop\n    mark: dropped\n  - device: {connect: {clean_start: false, \
         session_expiry: 60}}\n    at: dropped + 7s\n  - wait: 2s\n",
    ));
    assert_eq!(
        expected(&late, "watcher"),
        ["must will/d qos=1 retain=0 at dropped+5s"]
    );
}

#[test]
fn takeover_publishes_or_cancels_as_the_four_cases_say() {
    let cases = [
        // (a) old will without delay: at the takeover
        (
            "session_expiry: 60",
            "",
            "clean_start: false, session_expiry: 60",
            "at taken",
        ),
        // (b) old session without expiry: it ends with the old connection
        (
            "keep_alive: 60",
            ", delay: 30",
            "clean_start: false, session_expiry: 60",
            "at taken",
        ),
        // (c) the new connection has clean start 1: the old session ends
        (
            "session_expiry: 60",
            ", delay: 30",
            "clean_start: true, session_expiry: 60",
            "at taken",
        ),
        // (d) resumed within the delay: never
        (
            "session_expiry: 60",
            ", delay: 5",
            "clean_start: false, session_expiry: 60",
            "nothing",
        ),
    ];
    for (old, delay, new, outcome) in cases {
        let p = prediction(&device(
            "5",
            &format!("{{{old}, will: {WILL}{delay}}}}}"),
            &format!("  - again: {{connect: {{{new}}}}}\n    mark: taken\n  - wait: 32s\n"),
        ));
        let want = if outcome == "nothing" {
            "nothing".to_owned()
        } else {
            format!("must will/d qos=1 retain=0 {outcome}")
        };
        assert_eq!(expected(&p, "watcher"), [want], "{old}{delay} / {new}");
    }
    // 3.1.1: the old connection's will goes out even though the session resumes
    let p = prediction(&device(
        "3.1.1",
        &format!("{{clean_start: false, will: {WILL}}}}}"),
        "  - again: {connect: {clean_start: false}}\n    mark: taken\n  - wait: 3s\n",
    ));
    assert_eq!(
        expected(&p, "watcher"),
        ["must will/d qos=1 retain=0 at taken"]
    );
}

#[test]
fn a_vanished_client_is_dropped_within_one_and_a_half_keep_alives() {
    let p = prediction(&device(
        "5",
        &format!("{{keep_alive: 2, session_expiry: 60, will: {WILL}, delay: 1}}}}"),
        "  - device: vanish\n    mark: gone\n  - wait: 6s\n",
    ));
    assert_eq!(
        expected(&p, "watcher"),
        ["must will/d qos=1 retain=0 after gone+1s before gone+4s"]
    );
    // keep alive 0: nothing closes it ({W5-KA0})
    let p = prediction(&device(
        "5",
        &format!("{{keep_alive: 0, will: {WILL}}}}}"),
        "  - device: vanish\n  - wait: 10s\n",
    ));
    assert_eq!(expected(&p, "watcher"), ["nothing"]);
}

#[test]
fn offline_sessions_queue_qos_1_wills_and_may_queue_qos_0() {
    for (qos, outcome) in [
        (1, "must will/d qos=1 retain=0 after back before -"),
        (0, "may will/d qos=0 retain=0 after back before -"),
    ] {
        let yaml = format!(
            "name: t\nclients:\n  sub: {{}}\n  device: {{}}\nsteps:\n  - sub: {{connect: \
             {{session_expiry: 300}}}}\n  - sub: {{subscribe: will/#, qos: 1}}\n  - sub: \
             disconnect\n  - wait: 1s\n  - device: {{connect: {{will: {{topic: will/d, payload: \
             gone, qos: {qos}}}}}}}\n  - device: drop\n  - wait: 1s\n  - sub: {{connect: \
             {{clean_start: false, session_expiry: 300}}}}\n    mark: back\n  - wait: 1s\n"
        );
        assert_eq!(expected(&prediction(&yaml), "sub"), [outcome]);
    }
}

#[test]
fn retained_wills_reach_late_subscribers_with_retain_1() {
    let yaml = "name: t\nclients:\n  live: {}\n  device: {}\n  late: {}\nsteps:\n  - live: \
                connect\n  - live: {subscribe: will/#, qos: 2}\n  - device: {connect: {will: \
                {topic: will/d, payload: gone, qos: 1, retain: true}}}\n  - device: drop\n    \
                mark: dropped\n  - wait: 1s\n  - late: connect\n  - late: {subscribe: will/#, \
                qos: 0}\n    mark: subscribed\n  - wait: 1s\n";
    let p = prediction(yaml);
    assert_eq!(
        expected(&p, "live"),
        ["must will/d qos=1 retain=0 at dropped"]
    );
    assert_eq!(
        expected(&p, "late"),
        ["must will/d qos=0 retain=1 at subscribed"]
    );
}

#[test]
fn overlapping_subscriptions_get_one_copy_at_the_highest_qos_and_may_get_more() {
    let yaml = "name: t\nclients:\n  watcher: {}\n  device: {}\nsteps:\n  - watcher: connect\n  \
                - watcher: {subscribe: [{filter: will/#, qos: 1}, {filter: will/d, qos: 0}]}\n  \
                - device: {connect: {will: {topic: will/d, payload: gone, qos: 2}}}\n  - device: \
                drop\n    mark: dropped\n  - wait: 1s\n";
    assert_eq!(
        expected(&prediction(yaml), "watcher"),
        [
            "must will/d qos=1 retain=0 at dropped",
            "must will/d qos=0 retain=0 count=0..1 at dropped"
        ]
    );
}

#[test]
fn instants_too_close_to_order_are_not_guessed() {
    // the reconnect comes 0.2 s after the due time: a server may run its timers late
    let scenario = scenario::parse(
        &device(
            "5",
            &format!("{{session_expiry: 60, will: {WILL}, delay: 5}}}}"),
            "  - device: drop\n    mark: dropped\n  - device: {connect: {clean_start: false, \
             session_expiry: 60}}\n    at: dropped + 5200ms\n  - wait: 2s\n",
        ),
        "test.yaml",
    )
    .expect("parses");
    let why = predict(&scenario).expect_err("a race");
    assert!(why.0.starts_with("race:"), "{why}");
    // 0.2 s before it, the reconnect certainly cancels it: wills are never early
    let p = prediction(&device(
        "5",
        &format!("{{session_expiry: 60, will: {WILL}, delay: 5}}}}"),
        "  - device: drop\n    mark: dropped\n  - device: {connect: {clean_start: false, \
         session_expiry: 60}}\n    at: dropped + 4800ms\n  - wait: 2s\n",
    ));
    assert_eq!(expected(&p, "watcher"), ["nothing"]);
}

#[test]
fn the_reasoning_cites_the_statements() {
    let p = prediction(&device(
        "5",
        &format!("{{session_expiry: 60, will: {WILL}, delay: 5}}}}"),
        "  - device: drop\n    mark: dropped\n  - wait: 8s\n",
    ));
    let text = p.reasoning.join("\n");
    assert!(text.contains("due at dropped + 5.000s"), "{text}");
    assert!(text.contains("[MQTT-3.1.2-8]"), "{text}");
    assert!(text.contains("[MQTT-3.8.4-8]"), "{text}");
}

/// The scenario of [`device`] with a final expectation for the watcher.
fn with_expectation(expect: &str) -> scenario::Scenario {
    let yaml = device(
        "5",
        &format!("{{session_expiry: 60, will: {WILL}, delay: 5}}}}"),
        &format!(
            "  - device: drop\n    mark: dropped\n  - wait: 8s\nexpect:\n  watcher: {expect}\n"
        ),
    );
    scenario::parse(&yaml, "test.yaml").expect("parses")
}

fn differences(expect: &str) -> Vec<(super::Kind, String)> {
    let scenario = with_expectation(expect);
    let p = predict(&scenario).expect("predicted");
    let agreement = p.agreement(&scenario);
    assert_eq!(agreement.compared, 1, "{expect}");
    agreement
        .differences
        .into_iter()
        .map(|d| (d.kind, d.oracle))
        .collect()
}

#[test]
fn the_agreement_finds_what_differs() {
    use super::Kind::{Conflict, Looser};
    let agree =
        "{receives: [{topic: will/d, payload: gone, qos: 1, at: dropped + 5s}], only: true}";
    assert_eq!(differences(agree), []);
    let early = "{receives: [{topic: will/d, payload: gone, qos: 1, at: dropped + 4s}]}";
    assert!(
        differences(early).iter().all(|(k, _)| *k == Conflict),
        "{early}"
    );
    assert!(!differences(early).is_empty());
    let qos = "{receives: [{topic: will/d, qos: 0, at: dropped + 5s}]}";
    assert_eq!(differences(qos).first().map(|d| d.0), Some(Conflict));
    let nothing = "{receives: nothing}";
    assert_eq!(differences(nothing).first().map(|d| d.0), Some(Conflict));
    let twice = "{receives: [{topic: will/d, count: 2}]}";
    assert_eq!(differences(twice).first().map(|d| d.0), Some(Conflict));
    let no_window = "{receives: [{topic: will/d, payload: gone}]}";
    assert_eq!(differences(no_window).first().map(|d| d.0), Some(Looser));
    let weaker = "{level: should, receives: [{topic: will/d, at: dropped + 5s}]}";
    assert_eq!(differences(weaker).first().map(|d| d.0), Some(Looser));
}
