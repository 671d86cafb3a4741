//! Targets that speak the broker's protocol, against real brokers started by their
//! `peers/<name>.sh start`: 3.1.1-only brokers (aedes, amqtt) run the 3.1.1 scenarios and skip
//! the v5 ones with the reason, rumqttd runs both protocols from one target definition, and
//! `bench --protocol 3.1.1` storms aedes.
//!
//! A peer that is not installed is a loud skip (with its `peers/<name>.sh install`), or a
//! failure when `LASTWILL_REQUIRE_PEERS=1`.

use crate::lastwill;
use crate::peer::Peer;

/// One will scenario per protocol: both pass on a broker that delivers wills on an RST.
const V311: &str = "scenarios/will-trigger/drop-rst-publishes-will-v311.yaml";
const V5: &str = "scenarios/will-trigger/drop-rst-publishes-will.yaml";

/// `lastwill run --format json` of the two scenarios against `target`: (status, reason) per
/// scenario file, in the order given.
fn run_both(target: &str) -> Vec<(String, String)> {
    let output = lastwill(&["run", "--target", target, "--format", "json", V311, V5]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.code() != Some(2),
        "lastwill run --target {target} refused the target: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("run --format json printed no JSON ({e}); stderr: {stderr}"));
    [V311, V5]
        .iter()
        .map(|file| {
            let result = report["scenarios"]
                .as_array()
                .expect("scenarios")
                .iter()
                .find(|r| r["file"] == *file)
                .unwrap_or_else(|| panic!("no result for {file} in {report}"));
            (
                result["status"].as_str().unwrap_or_default().to_owned(),
                result["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A 3.1.1-only broker: the 3.1.1 scenario runs (and passes), the v5 one skips naming how the
/// broker refused MQTT 5.
fn speaks_311_only(test: &str, name: &str) {
    let Some(peer) = Peer::start(test, name) else {
        return;
    };
    let results = run_both(peer.address("mqtt"));
    assert_eq!(results[0].0, "pass", "{name}, 3.1.1 scenario: {results:?}");
    assert_eq!(
        results[1],
        (
            "skip".to_owned(),
            "the target speaks MQTT 3.1.1 only: level 5 refused with 0x01".to_owned()
        ),
        "{name}, v5 scenario"
    );
}

#[test]
fn aedes_runs_the_311_scenarios_and_skips_the_v5_ones() {
    speaks_311_only(
        "aedes_runs_the_311_scenarios_and_skips_the_v5_ones",
        "aedes",
    );
}

#[test]
fn amqtt_runs_the_311_scenarios_and_skips_the_v5_ones() {
    speaks_311_only(
        "amqtt_runs_the_311_scenarios_and_skips_the_v5_ones",
        "amqtt",
    );
}

/// Whether both clients of a will scenario connected and the watcher got the will (at
/// whatever QoS: rumqttd 0.20.0 delivers it at the subscription's QoS 2, a bug of its own).
fn connected_and_will_arrived(target: &str, file: &str) {
    let output = lastwill(&["run", "--target", target, "--format", "json", file]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    let checks = report["scenarios"][0]["checks"].as_array().expect("checks");
    let connects: Vec<_> = checks
        .iter()
        .filter(|c| c["expected"] == "reason 0x00 success")
        .collect();
    assert_eq!(connects.len(), 2, "{file} on {target}: {report}");
    assert!(
        connects.iter().all(|c| c["passed"] == true),
        "{file} on {target}: {report}"
    );
    let will = checks
        .iter()
        .find(|c| c["line"] == 25)
        .expect("the receives check");
    assert!(
        will["passed"] == true
            || will["observed"]
                .as_str()
                .is_some_and(|o| o.contains("\"device gone\"")),
        "{file} on {target}: {report}"
    );
}

#[test]
fn rumqttd_runs_both_protocols_from_one_target() {
    let test = "rumqttd_runs_both_protocols_from_one_target";
    let Some(peer) = Peer::start(test, "rumqttd") else {
        return;
    };
    let v311 = peer.address("v311");
    let v5 = peer.address("v5");
    let both = format!("{v311}?v5={}", v5.trim_start_matches("mqtt://"));
    connected_and_will_arrived(&both, V311);
    connected_and_will_arrived(&both, V5);
    // each port alone: the other protocol is skipped, with how that port refused it
    let results = run_both(v5);
    assert_eq!(
        results[0],
        (
            "skip".to_owned(),
            "the target speaks MQTT 5 only: level 4 closed without a CONNACK".to_owned()
        )
    );
    assert_ne!(results[1].0, "skip", "{results:?}");
    let results = run_both(v311);
    assert_ne!(results[0].0, "skip", "{results:?}");
    assert_eq!(
        results[1],
        (
            "skip".to_owned(),
            "the target speaks MQTT 3.1.1 only: level 5 closed without a CONNACK".to_owned()
        )
    );
}

#[test]
fn bench_storms_aedes_in_311() {
    let Some(peer) = Peer::start("bench_storms_aedes_in_311", "aedes") else {
        return;
    };
    let output = lastwill(&[
        "bench",
        "--target",
        peer.address("mqtt"),
        "--format",
        "json",
        "--clients",
        "50",
        "--protocol",
        "3.1.1",
        "--qos",
        "1",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("bench --format json prints JSON");
    assert_eq!(report["delivered"], 50, "{report}");
    assert_eq!(report["protocol"], "3.1.1", "{report}");
    // MQTT 5 is refused, and the error says which protocol to ask for
    let output = lastwill(&["bench", "--target", peer.address("mqtt"), "--clients", "5"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "speaks MQTT 3.1.1 only: level 5 refused with 0x01; ask for --protocol 3.1.1"
        ),
        "{stderr}"
    );
}
