//! The catalogue against Debian's mosquitto, gated by its profile: CI fails on any divergence
//! the profile does not list, and on any listed one that no longer happens.
//!
//! Needs the `mosquitto` binary (Debian: `apt-get install mosquitto`). Without it the test
//! says so loudly and passes, unless `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which
//! turns the skip into a failure.

use std::path::Path;
use std::process::Command;

use crate::mosquitto::Mosquitto;

/// Mosquitto processes serving the run.
const INSTANCES: usize = 6;

#[test]
fn mosquitto_matches_its_profile() {
    if !crate::mosquitto::available("mosquitto_matches_its_profile") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = std::env::temp_dir().join(format!("lastwill-mosquitto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Several identical instances: the scenarios that need a broker to themselves (raw bytes,
    // `$` topics) then run side by side, one per instance.
    let instances: Vec<Mosquitto> = (0..INSTANCES)
        .map(|n| Mosquitto::start(&dir, &n.to_string(), ""))
        .collect();
    let authorities: Vec<String> = instances
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.port))
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .current_dir(root)
        .args(["matrix", "--repeat", "2", "--target"])
        .arg(format!("mosquitto=mqtt://{}", authorities.join(",")))
        .arg("--profile")
        .arg(root.join("profiles/mosquitto-2.0.11.yaml"))
        .output()
        .expect("run lastwill matrix");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "mosquitto diverges from its profile:\n{stderr}\n{stdout}"
    );
}
