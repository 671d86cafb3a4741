//! The `lastwill broker` binary against real clients: Debian's `mosquitto-clients`.
//!
//! Each test starts the built binary on a free port and drives it with `mosquitto_sub` and
//! `mosquitto_pub` over real TCP (see [`crate::command_line_clients`]): a killed client's will
//! is delivered, a v5 will delay is honoured, and a clean DISCONNECT discards the will.
//!
//! When `mosquitto_sub` is not installed the tests print a loud SKIPPED notice and pass, unless
//! `LASTWILL_REQUIRE_PEERS=1` is set (CI), in which case they fail. Install the clients with
//! `apt-get install mosquitto-clients`.

use std::time::{Duration, Instant};

use crate::command_line_clients::{Broker, Clients, Subscriber};

const WILL_PAYLOAD: &str = "A will message from MQTTX CLI";

/// `true` when the mosquitto clients can be used (see [`crate::support::peers_available`]).
fn peers_available(test: &str) -> bool {
    crate::support::peers_available(
        test,
        &["mosquitto_sub", "mosquitto_pub"],
        "apt-get install mosquitto-clients",
    )
}

/// The reference broker, driven by `mosquitto_sub -v` and `mosquitto_pub`.
fn broker(name: &str) -> Broker {
    Broker::start(
        name,
        Clients {
            subscribe: vec!["mosquitto_sub".into(), "-v".into()],
            publish: vec!["mosquitto_pub".into()],
        },
    )
}

#[test]
fn will_of_a_killed_client_is_delivered() {
    if !peers_available("will_of_a_killed_client_is_delivered") {
        return;
    }
    let broker = broker("killed");
    let watcher = Subscriber::start(&broker, "watcher", &["-t", "t/1"]);
    let mut device = Subscriber::start(
        &broker,
        "device",
        &["--will-topic", "t/1", "--will-payload", WILL_PAYLOAD],
    );
    device.process.kill();
    let (_, line) = watcher
        .next_line(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no will within 10 s; broker log: {}", broker.log.display()));
    assert_eq!(line, format!("t/1 {WILL_PAYLOAD}"));
}

#[test]
fn v5_will_delay_is_honoured() {
    if !peers_available("v5_will_delay_is_honoured") {
        return;
    }
    let broker = broker("delay");
    let watcher = Subscriber::start(&broker, "watcher", &["-V", "5", "-t", "t/1"]);
    let mut device = Subscriber::start(
        &broker,
        "device",
        &[
            "-V",
            "5",
            // The will is due at min(close + delay, session end): keep the session longer.
            "-x",
            "60",
            "-D",
            "will",
            "will-delay-interval",
            "2",
            "--will-topic",
            "t/1",
            "--will-payload",
            WILL_PAYLOAD,
        ],
    );
    let killed = Instant::now();
    device.process.kill();
    let (at, line) = watcher
        .next_line(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no will within 10 s; broker log: {}", broker.log.display()));
    assert_eq!(line, format!("t/1 {WILL_PAYLOAD}"));
    let after = at.duration_since(killed);
    assert!(
        after >= Duration::from_secs(2),
        "will arrived {after:?} after the kill, before its 2 s delay; broker log: {}",
        broker.log.display()
    );
    assert!(
        after < Duration::from_secs(6),
        "will arrived {after:?} after the kill"
    );
}

#[test]
fn will_of_a_cleanly_disconnected_client_is_discarded() {
    if !peers_available("will_of_a_cleanly_disconnected_client_is_discarded") {
        return;
    }
    let broker = broker("clean");
    let watcher = Subscriber::start(&broker, "watcher", &["-t", "t/1"]);
    broker.publish_then_disconnect(&["--will-topic", "t/1", "--will-payload", "x"], &watcher);
    // Control: the watcher does still receive what is published on t/1.
    broker.pub_once("t/1", "control");
    let (_, line) = watcher
        .next_line(Duration::from_secs(10))
        .expect("control message");
    assert_eq!(line, "t/1 control");
}
