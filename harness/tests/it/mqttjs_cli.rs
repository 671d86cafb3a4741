//! The `lastwill broker` binary against MQTT.js's command-line client (npm `mqtt`, the
//! version `peers/mqttjs.sh` pins; MQTTX CLI is built on the same library).
//!
//! Each test starts the built binary on a free port and drives it with `mqtt sub` and
//! `mqtt pub` over real TCP (see [`crate::command_line_clients`]): the will of an `mqtt sub`
//! registered with `--will-topic`/`--will-message` and killed with SIGKILL (its socket closes
//! without DISCONNECT [MQTT-3.1.2-8]) reaches a watcher, in MQTT 3.1.1 (MQTT.js's default) and
//! MQTT 5; and, as the control, the will of an `mqtt pub` that ends with DISCONNECT is
//! discarded [MQTT-3.14.4-3] while the watcher still receives what is published.
//!
//! When MQTT.js is not installed where `peers/mqttjs.sh bin` says, the tests print a loud
//! SKIPPED notice and pass, unless `LASTWILL_REQUIRE_PEERS=1` is set (CI), in which case they
//! fail. Install it with `peers/mqttjs.sh install`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::command_line_clients::{Broker, Clients, Subscriber};

const WILL_PAYLOAD: &str = "A will message from MQTTX CLI";

/// The pinned `mqtt` executable, once it is known to run (see
/// [`crate::support::peers_available`]).
fn mqtt_bin(test: &str) -> Option<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../peers/mqttjs.sh");
    // `bin` prints the path whether or not MQTT.js is installed there.
    let output = Command::new(&script)
        .arg("bin")
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
    let bin = String::from_utf8(output.stdout)
        .expect("a UTF-8 path")
        .trim()
        .to_owned();
    crate::support::peers_available(test, &[&bin], "peers/mqttjs.sh install").then_some(bin)
}

/// The reference broker, driven by `mqtt sub -v` and `mqtt pub`.
fn broker(name: &str, bin: &str) -> Broker {
    Broker::start(
        &format!("mqttjs-{name}"),
        Clients {
            subscribe: vec![bin.into(), "sub".into(), "-v".into()],
            publish: vec![bin.into(), "pub".into()],
        },
    )
}

/// The will of a killed `mqtt sub` speaking `protocol` (extra arguments) reaches the watcher.
fn will_of_a_killed_client_is_delivered(test: &str, protocol: &[&str]) {
    let Some(bin) = mqtt_bin(test) else {
        return;
    };
    let broker = broker(test, &bin);
    let watcher = Subscriber::start(&broker, "watcher", &[&["-t", "t/1"], protocol].concat());
    let mut device = Subscriber::start(
        &broker,
        "device",
        &[
            &["--will-topic", "t/1", "--will-message", WILL_PAYLOAD],
            protocol,
        ]
        .concat(),
    );
    device.process.kill();
    let (_, line) = watcher
        .next_line(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no will within 10 s; broker log: {}", broker.log.display()));
    assert_eq!(line, format!("t/1 {WILL_PAYLOAD}"));
}

#[test]
fn will_of_a_killed_client_is_delivered_3_1_1() {
    will_of_a_killed_client_is_delivered("will_of_a_killed_client_is_delivered_3_1_1", &[]);
}

#[test]
fn will_of_a_killed_client_is_delivered_5() {
    // Not a documented flag: the CLI hands its parsed arguments to `mqtt.connect` as options.
    will_of_a_killed_client_is_delivered(
        "will_of_a_killed_client_is_delivered_5",
        &["--protocolVersion", "5"],
    );
}

#[test]
fn will_of_a_cleanly_disconnected_client_is_discarded() {
    let Some(bin) = mqtt_bin("will_of_a_cleanly_disconnected_client_is_discarded") else {
        return;
    };
    let broker = broker("will_of_a_cleanly_disconnected_client_is_discarded", &bin);
    let watcher = Subscriber::start(&broker, "watcher", &["-t", "t/1"]);
    // `mqtt pub` publishes, then ends with DISCONNECT. Its help says `--will-payload`, but it
    // reads `--will-message`, as `mqtt sub` does (`--will-payload` sends an empty will).
    broker.publish_then_disconnect(&["--will-topic", "t/1", "--will-message", "x"], &watcher);
    // The broker's own account that there was a will and that DISCONNECT discarded it: without
    // it, a flag the CLI ignored would pass this test with no will at all.
    // (Read after the 3 s above, by when the broker has long handled the DISCONNECT.)
    let log = std::fs::read_to_string(&broker.log).expect("broker log");
    assert!(
        log.contains("will discarded on normal DISCONNECT"),
        "the broker did not log a will discarded by DISCONNECT; its log: {}",
        broker.log.display()
    );
    // Control: the watcher does still receive what is published on t/1.
    broker.pub_once("t/1", "control");
    let (_, line) = watcher
        .next_line(Duration::from_secs(10))
        .expect("control message");
    assert_eq!(line, "t/1 control");
}
