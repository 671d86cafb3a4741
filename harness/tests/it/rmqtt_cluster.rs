//! The cluster scenarios against a 2-node rmqtt 0.24.0 cluster started by
//! `peers/rmqtt.sh start-cluster 2`, gated by its profile: a divergence the profile does not
//! list, or a listed one that no longer happens, fails the test. Node steps go through
//! `peers/rmqtt.sh node DIR kill|restart N` on the cluster's runtime directory.
//!
//! Needs rmqtt built into the peers cache (`peers/rmqtt.sh install`) and mosquitto's clients
//! (the cluster's readiness probe). Without them the test says so loudly and passes, unless
//! `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which turns the skip into a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A cluster started by the peers script; stopped (SIGTERM: the script stops its nodes) when
/// dropped.
struct RmqttCluster {
    script: Child,
    /// `node1=mqtt://…` fields of the ready line, in node order.
    nodes: Vec<String>,
}

impl RmqttCluster {
    fn start(root: &Path, run_dir: &Path) -> RmqttCluster {
        let mut script = Command::new(root.join("peers/rmqtt.sh"))
            .args(["start-cluster", "2"])
            .env("LASTWILL_PEERS_RUN_DIR", run_dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start peers/rmqtt.sh");
        let mut line = String::new();
        let stdout = script.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the ready line");
        let nodes = line
            .split_whitespace()
            .filter_map(|field| field.split_once('=').map(|(_, url)| url.to_owned()))
            .collect();
        RmqttCluster { script, nodes }
    }
}

impl Drop for RmqttCluster {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.script.id().to_string())
            .status();
        let _ = self.script.wait();
    }
}

fn rmqttd() -> PathBuf {
    let cache = std::env::var_os("LASTWILL_PEERS_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/lastwill-peers"), PathBuf::from);
    cache.join("rmqtt-0.24.0/bin/rmqttd")
}

#[test]
fn rmqtt_cluster_matches_its_profile() {
    let rmqttd = rmqttd();
    let programs = [rmqttd.to_str().unwrap_or("rmqttd"), "mosquitto_pub"];
    if !crate::support::peers_available(
        "rmqtt_cluster_matches_its_profile",
        &programs,
        "peers/rmqtt.sh install && peers/mosquitto.sh install",
    ) {
        return;
    }
    let _slot = crate::peer::MatrixSlot::take();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = std::env::temp_dir().join(format!("lastwill-rmqtt-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run_dir = dir.join("cluster");
    let cluster = RmqttCluster::start(root, &run_dir);
    assert_eq!(
        cluster.nodes.len(),
        2,
        "peers/rmqtt.sh start-cluster 2 did not print two nodes"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .current_dir(root)
        .args(["matrix", "--repeat", "2", "--target"])
        .arg(format!("rmqtt-cluster=cluster:{}", cluster.nodes.join(",")))
        .arg("--node-cmd")
        .arg(format!(
            "{} node {}",
            root.join("peers/rmqtt.sh").display(),
            run_dir.display()
        ))
        .arg("--profile")
        .arg(root.join("profiles/rmqtt-0.24.0-cluster2.yaml"))
        .arg(root.join("scenarios/cluster"))
        .output()
        .expect("run lastwill matrix");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the rmqtt cluster diverges from its profile:\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("cluster/will-reaches-watcher-on-another-node"),
        "the matrix did not run the cluster scenarios:\n{stdout}"
    );
}

/// A negative control without rmqtt: two reference brokers that know nothing of each other,
/// given as a cluster, must fail the cross-node scenarios (the will set on node 1 never
/// reaches the watcher on node 2), and the same brokers one at a time pass them; a plain
/// target skips the scenario with node steps, naming why.
#[test]
fn unjoined_brokers_given_as_a_cluster_fail_the_cross_node_scenarios() {
    use crate::reference_broker::ReferenceBroker;
    let start = || ReferenceBroker::start(&["--listen", "127.0.0.1:0"], "warn", Stdio::null());
    let (one, two) = (start(), start());
    let cluster = format!(
        "cluster:mqtt://127.0.0.1:{},mqtt://127.0.0.1:{}",
        one.port, two.port
    );
    let scenario = "scenarios/cluster/will-reaches-watcher-on-another-node.yaml";
    let unjoined = crate::lastwill(&["run", "--target", &cluster, scenario]);
    let stdout = String::from_utf8_lossy(&unjoined.stdout);
    assert_eq!(unjoined.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    let single = format!("mqtt://127.0.0.1:{}", one.port);
    let killed = "scenarios/cluster/node-killed-with-connected-will-client.yaml";
    let alone = crate::lastwill(&["run", "--target", &single, scenario, killed]);
    let stdout = String::from_utf8_lossy(&alone.stdout);
    assert_eq!(alone.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("`node:` steps need a cluster target"),
        "{stdout}"
    );
}
