//! The scenario-level steps a real broker allows: `broker: restart` through a shell command;
//! network faults need the simulator.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Endpoint, Liveness};
use crate::runner::director::Control;
use crate::scenario::NetAction;

/// A real broker's scenario-level steps, on the runner's clock.
pub(super) struct TcpControl {
    pub(super) start: Instant,
    pub(super) endpoint: Endpoint,
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
}

impl TcpControl {
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
