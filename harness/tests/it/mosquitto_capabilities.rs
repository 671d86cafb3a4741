//! The scenarios that need a broker with limited capabilities, against mosquitto configured to
//! have them: the catalogue run against a default mosquitto skips them (its CONNACK shows it
//! does not meet their `broker:` section), so each gets a mosquitto whose CONNACK does.
//!
//! Mosquitto 2.0.11 passes all of them. Not covered: `server_keep_alive: 2` (mosquitto's
//! `max_keepalive` refuses values below 10) and the scenarios that need credentials.
//!
//! Needs the `mosquitto` binary (Debian: `apt-get install mosquitto`). Without it the test
//! says so loudly and passes, unless `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which
//! turns the skip into a failure.

use std::path::Path;
use std::process::Command;

use crate::mosquitto::Mosquitto;

/// A mosquitto configuration line and the scenarios whose `broker:` section it meets.
const CONFIGURED: &[(&str, &[&str])] = &[
    (
        "max_qos 1",
        &[
            "will-trigger/publish-above-maximum-qos-publishes-will.yaml",
            "capabilities/will-qos-2-above-maximum-qos-1-refused.yaml",
            "capabilities/refused-will-connack-has-session-present-0.yaml",
            "capabilities/will-within-maximum-qos-accepted.yaml",
        ],
    ),
    (
        "max_qos 0",
        &["capabilities/will-qos-1-above-maximum-qos-0-refused.yaml"],
    ),
    (
        "retain_available false",
        &[
            "capabilities/non-retained-will-without-retain-available-accepted.yaml",
            "capabilities/retained-will-without-retain-available-refused.yaml",
        ],
    ),
    (
        "max_packet_size 256",
        &["capabilities/oversized-connect-refused-with-packet-too-large.yaml"],
    ),
    (
        "max_packet_size 128",
        &["will-trigger/packet-too-large-publishes-will.yaml"],
    ),
];

#[test]
fn configured_mosquitto_passes_the_capability_scenarios() {
    if !crate::mosquitto::available("configured_mosquitto_passes_the_capability_scenarios") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = std::env::temp_dir().join(format!("lastwill-capabilities-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // one mosquitto per configuration, all started before any run, so they run side by side
    let brokers: Vec<Mosquitto> = CONFIGURED
        .iter()
        .enumerate()
        .map(|(n, (line, _))| Mosquitto::start(&dir, &n.to_string(), &format!("{line}\n")))
        .collect();
    let runs: Vec<_> = CONFIGURED
        .iter()
        .zip(&brokers)
        .map(|((line, scenarios), broker)| {
            let child = Command::new(env!("CARGO_BIN_EXE_lastwill"))
                .current_dir(root)
                .arg("run")
                .args(scenarios.iter().map(|s| root.join("scenarios").join(s)))
                .args(["--target", &format!("mqtt://127.0.0.1:{}", broker.port)])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run lastwill");
            (line, scenarios.len(), child)
        })
        .collect();
    for (line, count, child) in runs {
        let output = child.wait_with_output().expect("lastwill run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains(&format!("{count} passed, 0 failed")),
            "mosquitto with `{line}`:\n{stderr}\n{stdout}"
        );
    }
    drop(brokers);
    let _ = std::fs::remove_dir_all(&dir);
}
