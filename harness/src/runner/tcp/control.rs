//! The scenario-level steps a real broker allows: `broker: restart` and a cluster's node
//! steps through shell commands; network faults need the simulator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::cluster;
use super::liveness::DownOnPurpose;
use super::{Endpoint, Liveness};
use crate::runner::director::Control;
use crate::scenario::{NetAction, NodeAction};

/// A real broker's scenario-level steps, on the runner's clock.
pub(super) struct TcpControl {
    pub(super) start: Instant,
    pub(super) endpoint: Endpoint,
    /// Every node of a cluster target (the one endpoint otherwise).
    pub(super) nodes: Vec<Endpoint>,
    pub(super) node_cmd: Option<String>,
    /// Nodes killed by the run and not restarted (from 0): down on purpose.
    pub(super) down: Mutex<BTreeMap<usize, DownOnPurpose>>,
    pub(super) liveness: Arc<Liveness>,
}

impl Control for TcpControl {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn restart_broker(&self) -> Result<(), String> {
        self.liveness.restarting(self.restart()).await
    }

    fn net(&self, _action: &NetAction) -> Result<(), String> {
        Err("network faults need the simulator".into())
    }

    async fn node(&self, action: NodeAction) -> Result<(), String> {
        let (Some(cmd), Some(node)) = (&self.node_cmd, self.nodes.get(action.node() - 1)) else {
            return Err(format!(
                "`node:` steps need a cluster target with node {} and --node-cmd",
                action.node()
            ));
        };
        let index = action.node() - 1;
        // the node is down on purpose from before the kill until it is back up
        let guard = self.liveness.down_on_purpose();
        let result = cluster::act(cmd, action, node).await;
        let mut down = self.down.lock().expect("down nodes lock");
        match action {
            NodeAction::Kill(_) => {
                down.insert(index, guard);
            }
            NodeAction::Restart(_) if result.is_ok() => {
                down.remove(&index);
            }
            NodeAction::Restart(_) => {}
        }
        result
    }
}

impl TcpControl {
    /// Restarts every node the run killed and did not restart.
    pub(super) async fn revive(&self) {
        let killed: Vec<usize> = self
            .down
            .lock()
            .expect("down nodes lock")
            .keys()
            .copied()
            .collect();
        for index in killed {
            // one that does not come back stays down on purpose until this control drops;
            // the liveness watcher then finds the broker lost and says why
            let _ = self.node(NodeAction::Restart(index + 1)).await;
        }
    }

    /// A node the run did not leave killed, for the clean-up.
    pub(super) fn live_node(&self) -> &Endpoint {
        let down = self.down.lock().expect("down nodes lock");
        (0..self.nodes.len())
            .find(|i| !down.contains_key(i))
            .and_then(|i| self.nodes.get(i))
            .unwrap_or(&self.endpoint)
    }

    /// Runs the restart command and waits until the broker accepts connections again.
    async fn restart(&self) -> Result<(), String> {
        let Some(cmd) = &self.endpoint.restart_cmd else {
            return Err("`broker: restart` needs --restart-cmd".into());
        };
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .await
            .map_err(|e| format!("restart command: {e}"))?;
        if !status.success() {
            return Err(format!("restart command exited with {status}"));
        }
        // wait until the broker accepts connections again
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.endpoint.open(self.endpoint.own_protocol).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the broker did not come back within 30s".into())
    }
}
