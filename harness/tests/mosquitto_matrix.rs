//! The catalogue against Debian's mosquitto, gated by its profile: CI fails on any divergence
//! the profile does not list, and on any listed one that no longer happens.
//!
//! Needs the `mosquitto` binary (Debian: `apt-get install mosquitto`). Without it the test
//! says so loudly and passes, unless `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which
//! turns the skip into a failure.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Mosquitto processes serving the run.
const INSTANCES: usize = 6;

struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mosquitto_matches_its_profile() {
    if !support::peers_available(
        "mosquitto_matches_its_profile",
        &["mosquitto"],
        "apt-get install mosquitto",
    ) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = std::env::temp_dir().join(format!("lastwill-mosquitto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Several identical instances: the scenarios that need a broker to themselves (raw bytes,
    // `$` topics) then run side by side, one per instance.
    let mut instances = Vec::new();
    let mut authorities = Vec::new();
    for n in 0..INSTANCES {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join(format!("mosquitto-{n}.conf"));
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"),
        )
        .unwrap();
        let mut mosquitto = Mosquitto(
            Command::new("mosquitto")
                .arg("-c")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mosquitto"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Something listens on the port; if mosquitto itself exited, it lost the port to
        // another process between our pick and its bind, and that is not the broker to test.
        if let Some(status) = mosquitto.0.try_wait().expect("try_wait") {
            panic!("mosquitto exited with {status}: port {port} was taken by another process");
        }
        instances.push(mosquitto);
        authorities.push(format!("127.0.0.1:{port}"));
    }
    let markdown = dir.join("matrix.md");
    let output = Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .current_dir(root)
        .args(["matrix", "--repeat", "2", "--target"])
        .arg(format!("mosquitto=mqtt://{}", authorities.join(",")))
        .arg("--profile")
        .arg(root.join("profiles/mosquitto-2.0.11.yaml"))
        .arg("--markdown")
        .arg(&markdown)
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
