//! `lastwill bench` against Debian's mosquitto: a will storm over real TCP in which every will
//! must reach every subscriber, at each QoS, with both kinds of abrupt close.
//!
//! Needs the `mosquitto` binary (Debian: `apt-get install mosquitto`). Without it the test
//! says so loudly and passes, unless `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which
//! turns the skip into a failure.

use std::process::Command;

use crate::mosquitto::Mosquitto;

#[test]
fn mosquitto_delivers_every_will_of_a_storm() {
    if !crate::mosquitto::available("mosquitto_delivers_every_will_of_a_storm") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("lastwill-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mosquitto = Mosquitto::start(&dir, "bench", "");
    let target = format!("mqtt://127.0.0.1:{}", mosquitto.port);
    for (protocol, qos, drop) in [("5", "0", "rst"), ("3.1.1", "1", "fin"), ("5", "2", "rst")] {
        let output = Command::new(env!("CARGO_BIN_EXE_lastwill"))
            .args(["bench", "--target", &target, "--format", "json"])
            .args(["--clients", "300", "--subscribers", "2"])
            .args(["--protocol", protocol, "--qos", qos, "--drop", drop])
            .output()
            .expect("run lastwill bench");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {stderr}", output.status);
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("bench --format json prints JSON");
        assert_eq!(report["delivered"], 600, "{report}");
        assert_eq!(report["early"], 0, "{report}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
