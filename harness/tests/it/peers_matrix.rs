//! The catalogue against each of the six real brokers, gated by its profile: CI fails on any
//! divergence a profile does not list, and on any listed one that no longer happens.
//!
//! Each broker is started by its `peers/<name>.sh start` (pinned version, the configuration its
//! profile was observed with, free loopback ports). A broker that is not installed makes its
//! test say so loudly (naming `peers/<name>.sh install`) and pass, unless
//! `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which turns the skip into a failure.
//!
//! Keeping the gate from flaking: every external target runs `REPEAT` times, an outcome that
//! differs between repeats is intermittent, and intermittent outcomes never fail the gate;
//! rows seen to fail only now and then are `expect: intermittent` in their profile. A row
//! that flips rarely enough to agree with itself in both repeats, and was never seen to flip
//! while its profile was observed, can still fail the gate: a profile is evidence, re-observed
//! with `--repeat 3` whenever a broker, the catalogue or the harness changes.

use std::path::Path;
use std::process::Command;

use crate::peer::{MatrixSlot, Peer};

/// Runs of the catalogue per broker (`lastwill matrix --repeat`).
const REPEAT: &str = "2";

/// A broker under test: its `peers/` script, its profile, and how to name it as a target.
struct Broker {
    /// `peers/<script>.sh`.
    script: &'static str,
    profile: &'static str,
    /// Identical instances: scenarios that need a broker to themselves (raw bytes, `$`
    /// topics) then run side by side, one per instance.
    instances: usize,
    /// Extra `lastwill matrix` arguments.
    args: &'static [&'static str],
}

impl Broker {
    /// Starts the instances, runs the matrix against them with the profile, and fails the
    /// test on any gate failure.
    fn matches_its_profile(&self) {
        let _slot = MatrixSlot::take();
        let test = format!("{}_matches_its_profile", self.script);
        let mut peers = Vec::new();
        for _ in 0..self.instances {
            match Peer::start(&test, self.script) {
                Some(peer) => peers.push(peer),
                None => return,
            }
        }
        let target = format!("{}={}", self.script, target(&peers));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_lastwill"))
            .current_dir(root)
            .args(["matrix", "--repeat", REPEAT, "--target", &target])
            .arg("--profile")
            .arg(root.join("profiles").join(self.profile))
            .args(self.args)
            .output()
            .expect("run lastwill matrix");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        drop(peers);
        assert!(
            output.status.success(),
            "{} diverges from profiles/{}:\n{stderr}\n{stdout}",
            self.script,
            self.profile
        );
    }
}

/// One lastwill target over identical instances (`mqtt://a,b,c`: independent brokers). rumqttd
/// serves MQTT 3.1.1 and 5 on ports of their own: each instance is `V311?v5=V5`.
fn target(peers: &[Peer]) -> String {
    let instances: Vec<String> = peers
        .iter()
        .map(|peer| match peer.addresses.get("v5") {
            Some(v5) => format!("{}?v5={}", authority(peer.address("v311")), authority(v5)),
            None => authority(peer.address("mqtt")).to_owned(),
        })
        .collect();
    format!("mqtt://{}", instances.join(","))
}

fn authority(url: &str) -> &str {
    url.strip_prefix("mqtt://").unwrap_or(url)
}

#[test]
fn mosquitto_matches_its_profile() {
    Broker {
        script: "mosquitto",
        profile: "mosquitto-2.0.11.yaml",
        instances: 6,
        args: &[],
    }
    .matches_its_profile();
}

#[test]
fn rumqttd_matches_its_profile() {
    Broker {
        script: "rumqttd",
        profile: "rumqttd-0.20.0.yaml",
        instances: 6,
        args: &[],
    }
    .matches_its_profile();
}

#[test]
fn rmqtt_matches_its_profile() {
    Broker {
        script: "rmqtt",
        profile: "rmqtt-0.24.0.yaml",
        instances: 6,
        args: &[],
    }
    .matches_its_profile();
}

#[test]
fn amqtt_matches_its_profile() {
    Broker {
        script: "amqtt",
        profile: "amqtt-0.12.1.yaml",
        instances: 4,
        args: &[],
    }
    .matches_its_profile();
}

#[test]
fn aedes_matches_its_profile() {
    Broker {
        script: "aedes",
        profile: "aedes-1.2.0.yaml",
        instances: 4,
        args: &[],
    }
    .matches_its_profile();
}

#[test]
fn ejabberd_matches_its_profile() {
    Broker {
        script: "ejabberd",
        profile: "ejabberd-23.01.yaml",
        // Each instance is an Erlang VM (about 100 MB): three keep the exclusive scenarios
        // moving.
        instances: 3,
        // Anonymous login still needs a user name in CONNECT (peers/README.md).
        args: &["--username", "anon", "--password", "x"],
    }
    .matches_its_profile();
}
