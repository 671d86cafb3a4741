//! Cluster targets: several nodes that are one broker. A scenario's clients are placed on
//! nodes (`node: N`, or spread over them in file order), so a will set on one node must reach
//! a watcher on another, and a client id taken over on another node must end the first
//! connection; `node: {kill: N}` / `node: {restart: N}` go through the target's node command.
//!
//! In the simulator the reference broker is every node at once: placements change nothing
//! there, so the cluster scenarios run on it (checking that they are right) and only those
//! with node steps are skipped. A plain TCP target skips every scenario that places a client
//! with `node:` as well: on one broker it repeats the single-broker scenario it mirrors
//! (`scenarios/cluster/takeover-a-…` is `scenarios/takeover/…` on two nodes), so it would only
//! add rows, and profile entries, that say the same.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::Endpoint;
use super::capabilities::Skip;
use crate::scenario::{NodeAction, Scenario, StepKind};

/// How long a restarted node has to accept connections again.
const RESTART_LIMIT: Duration = Duration::from_secs(60);

/// What makes a set of endpoints one broker rather than independent instances.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    /// A shell command run as `CMD kill N` / `CMD restart N` for node steps.
    pub node_cmd: Option<String>,
}

/// Why a target with `nodes` nodes (0: a single broker, not a cluster) cannot run
/// `scenario`, if it cannot.
pub fn skip_reason(scenario: &Scenario, nodes: usize, node_cmd: bool) -> Option<Skip> {
    let first_node_step = scenario.steps.iter().find_map(|s| match s.kind {
        StepKind::Node(_) => Some(s.location.line),
        _ => None,
    });
    match first_node_step {
        Some(line) if nodes == 0 => return Some(Skip::NotACluster { line }),
        Some(line) if !node_cmd => return Some(Skip::NodeCommand { line }),
        _ => {}
    }
    let named = scenario.nodes();
    (nodes > 0 && named > nodes).then_some(Skip::TooFewNodes { named, nodes })
}

/// Why a plain TCP target (one broker) does not run `scenario`, beyond [`skip_reason`]: a
/// client placed with `node:` makes it a cluster scenario (see the module's comment).
pub fn placed_on_one_broker(scenario: &Scenario) -> Option<Skip> {
    scenario
        .clients
        .iter()
        .find(|c| c.node.is_some())
        .map(|c| Skip::Placed {
            line: c.location.line,
        })
}

/// The node (from 0) each client's connections go to: its `node:`, else the clients without
/// one take the nodes in turn, in file order, so that a watcher and a device written one
/// after the other sit on different nodes.
pub(super) fn placement(scenario: &Scenario, nodes: usize) -> BTreeMap<String, usize> {
    let mut spread = (0..nodes.max(1)).cycle();
    scenario
        .clients
        .iter()
        .map(|c| {
            let node = match c.node {
                Some(n) => (n - 1) % nodes.max(1),
                None => spread.next().unwrap_or(0),
            };
            (c.name.clone(), node)
        })
        .collect()
}

/// Runs the node command for `action` and, for a restart, waits until the node accepts
/// connections again.
pub(super) async fn act(cmd: &str, action: NodeAction, node: &Endpoint) -> Result<(), String> {
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} {} {}", action.verb(), action.node()))
        .status()
        .await
        .map_err(|e| format!("node command: {e}"))?;
    if !status.success() {
        return Err(format!(
            "node command `{cmd} {} {}` exited with {status}",
            action.verb(),
            action.node()
        ));
    }
    if let NodeAction::Restart(n) = action {
        let deadline = Instant::now() + RESTART_LIMIT;
        while node.open(node.own_protocol).await.is_err() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "node {n} ({node:?}) did not come back within {}s",
                    RESTART_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Scenario {
        crate::scenario::parse(text, "c.yaml").unwrap()
    }

    #[test]
    fn unplaced_clients_take_the_nodes_in_turn_and_placed_ones_keep_theirs() {
        let s = scenario(
            "name: x\nclients: {a: {}, b: {}, c: {node: 1}, d: {}}\nsteps: [{a: connect}]\n",
        );
        let placed = placement(&s, 2);
        assert_eq!(placed["a"], 0);
        assert_eq!(placed["b"], 1);
        assert_eq!(placed["c"], 0);
        assert_eq!(placed["d"], 0);
        assert!(placement(&s, 1).values().all(|&n| n == 0));
    }

    #[test]
    fn node_steps_need_a_cluster_with_a_node_command_and_enough_nodes() {
        let s = scenario(
            "name: x\nclients: {a: {node: 2}}\nsteps:\n  - a: connect\n  - node: {kill: 3}\n",
        );
        assert_eq!(
            skip_reason(&s, 0, false),
            Some(Skip::NotACluster { line: 5 })
        );
        assert_eq!(
            skip_reason(&s, 2, false),
            Some(Skip::NodeCommand { line: 5 })
        );
        assert_eq!(
            skip_reason(&s, 2, true),
            Some(Skip::TooFewNodes { named: 3, nodes: 2 })
        );
        assert_eq!(skip_reason(&s, 3, true), None);
        let placed_only = scenario("name: x\nclients: {a: {node: 2}}\nsteps: [{a: connect}]\n");
        assert_eq!(skip_reason(&placed_only, 0, false), None);
        assert_eq!(
            placed_on_one_broker(&placed_only),
            Some(Skip::Placed { line: 2 })
        );
        let unplaced = scenario("name: x\nclients: {a: {}}\nsteps: [{a: connect}]\n");
        assert_eq!(placed_on_one_broker(&unplaced), None);
    }
}
