//! Runners: where and how a scenario runs.
//!
//! - [`sim`]: the reference broker under the turmoil simulator, in virtual time.
//! - [`tcp`]: any running broker over real TCP (or TLS), in real time.
//!
//! Both hand each scenario client to an [`Agent`](crate::client::Agent) over their own
//! [`Network`](crate::client::Network), and let the same director walk the steps (see
//! `director`). A [`Target`] says which runner a suite uses; a [`Run`] is what one scenario
//! run produced.

pub mod control_arm;
mod director;
pub mod sim;
pub mod tcp;

use std::sync::Arc;

use crate::scenario::Scenario;
use crate::transcript::Transcript;
use crate::verdict::{self, Check, Timeline, Tolerance, Verdict};
use control_arm::ControlArm;
use director::Direction;
use tcp::{Capabilities, CleanupFailures, Cluster, Endpoint, Liveness, Skip, Unfinished};

/// Where a scenario runs.
#[derive(Clone, Debug)]
pub enum Target {
    /// The reference broker in the simulator, virtual time advancing `tick` at a time
    /// ([`sim::TICK`] unless a run needs it coarser).
    Simulator {
        seed: u64,
        tick: std::time::Duration,
    },
    /// A running broker over TCP, with the capabilities its CONNACK announced: one instance,
    /// or several identically configured ones, over which scenarios are spread (scenarios
    /// that need a broker to themselves then run on different instances at the same time),
    /// or the nodes of one `cluster`, over which each scenario's clients are spread.
    Tcp {
        instances: Vec<Endpoint>,
        cluster: Option<Cluster>,
        capabilities: Box<Capabilities>,
        /// Distinguishes this run's client ids and topics from every other run's.
        run_id: String,
        /// Whether the broker is still there (see [`Target::tcp`]).
        liveness: Arc<Liveness>,
        /// The clean-ups after scenarios that failed.
        cleanups: Arc<CleanupFailures>,
    },
}

/// Why a scenario did not run to a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRun {
    /// The broker over TCP cannot run it.
    Skipped(Skip),
    /// It could not be run at all (a simulation error, no runtime).
    Failed(String),
    /// The broker over TCP stopped answering, before it started or while it ran.
    Lost(String),
}

impl Target {
    /// A broker over TCP, as a run starts with it: probed, and not (yet) lost. The harness's
    /// own connections to every instance speak the protocol the probe found it speaks.
    pub fn tcp(mut instances: Vec<Endpoint>, capabilities: Capabilities, run_id: String) -> Target {
        for instance in &mut instances {
            instance.own_protocol = capabilities.own_protocol();
        }
        Target::Tcp {
            instances,
            cluster: None,
            capabilities: Box::new(capabilities),
            run_id,
            liveness: Arc::default(),
            cleanups: Arc::default(),
        }
    }

    /// The nodes of one clustered broker over TCP, probed, and not (yet) lost.
    pub fn cluster(
        nodes: Vec<Endpoint>,
        cluster: Cluster,
        capabilities: Capabilities,
        run_id: String,
    ) -> Target {
        let mut target = Target::tcp(nodes, capabilities, run_id);
        if let Target::Tcp { cluster: slot, .. } = &mut target {
            *slot = Some(cluster);
        }
        target
    }

    /// Scenarios at a time by default: the simulator is CPU-bound, a real broker mostly
    /// makes the harness wait.
    pub fn default_jobs(&self) -> usize {
        match self {
            Target::Simulator { .. } => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Target::Tcp { .. } => 32,
        }
    }

    /// One line per clean-up that failed so far (none in the simulator).
    pub fn cleanup_failures(&self) -> Vec<String> {
        match self {
            Target::Simulator { .. } => Vec::new(),
            Target::Tcp { cleanups, .. } => cleanups.lines(),
        }
    }

    /// How many broker instances scenarios can be spread over.
    pub fn instances(&self) -> usize {
        match self {
            Target::Simulator { .. } => 1,
            Target::Tcp {
                cluster: Some(_), ..
            } => 1,
            Target::Tcp { instances, .. } => instances.len().max(1),
        }
    }

    /// Whether `scenario` must have a broker instance to itself on this target (see
    /// [`tcp::needs_exclusive_run`]); a node kill takes down a node under everyone.
    pub fn needs_exclusive_run(&self, scenario: &Scenario) -> bool {
        match self {
            Target::Simulator { .. } => false,
            Target::Tcp { .. } => {
                tcp::needs_exclusive_run(scenario)
                    || scenario
                        .steps
                        .iter()
                        .any(|s| matches!(s.kind, crate::scenario::StepKind::Node(_)))
            }
        }
    }

    /// The isolation prefix of run `index` on a broker (`lw<run id>s<index>`), under which
    /// its client ids and topics live; none in the simulator.
    pub fn prefix(&self, index: usize) -> Option<String> {
        match self {
            Target::Simulator { .. } => None,
            Target::Tcp { run_id, .. } => Some(format!("lw{run_id}s{index}")),
        }
    }

    /// Runs one scenario on broker instance `instance` (modulo the number of instances);
    /// `index` keeps prefixes of one run apart.
    pub fn run(&self, scenario: &Scenario, index: usize, instance: usize) -> Result<Run, NotRun> {
        match self {
            Target::Simulator { seed, tick } => {
                // the reference broker is one node (see `tcp::Cluster`)
                if let Some(why) = tcp::cluster_skip_reason(scenario, 0, false) {
                    return Err(NotRun::Skipped(why));
                }
                sim::run_with_tick(scenario, *seed, *tick).map_err(NotRun::Failed)
            }
            Target::Tcp {
                instances,
                cluster,
                capabilities,
                liveness,
                cleanups,
                ..
            } => {
                if let Some(why) = liveness.lost() {
                    return Err(NotRun::Lost(why));
                }
                let nodes = match cluster {
                    Some(_) => instances.as_slice(),
                    None => std::slice::from_ref(&instances[instance % instances.len()]),
                };
                let node_cmd = cluster.as_ref().is_some_and(|c| c.node_cmd.is_some());
                let size = if cluster.is_some() { nodes.len() } else { 0 };
                let skip = tcp::cluster_skip_reason(scenario, size, node_cmd)
                    .or_else(|| match cluster {
                        Some(_) => None,
                        None => tcp::placed_on_one_broker(scenario),
                    })
                    .or_else(|| nodes[0].skip_reason(scenario, capabilities));
                if let Some(why) = skip {
                    return Err(NotRun::Skipped(why));
                }
                let prefix = self.prefix(index).unwrap_or_default();
                let exclusive = tcp::needs_exclusive_run(scenario);
                let prefix = (!exclusive).then_some(prefix.as_str());
                tcp::run(
                    scenario,
                    nodes,
                    cluster.as_ref(),
                    prefix,
                    liveness,
                    cleanups,
                )
                .map_err(|end| match end {
                    Unfinished::Failed(why) => NotRun::Failed(why),
                    Unfinished::Lost(why) => NotRun::Lost(why),
                })
            }
        }
    }
}

/// The result of one scenario run.
#[derive(Debug)]
pub struct Run {
    pub transcript: Transcript,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
    /// When messages arrived against their expected windows.
    pub timeline: Timeline,
}

impl Run {
    /// The run's result: the director's step checks, then the scenario's final expectations
    /// checked against the transcript with the runner's tolerance (without the control arm's
    /// wills), then the control arm's checks.
    fn judged(
        scenario: &Scenario,
        arm: &ControlArm,
        direction: Direction,
        transcript: Transcript,
        tolerance: Tolerance,
    ) -> Run {
        let own = arm.without_controls(&transcript);
        let mut checks = direction.checks;
        checks.extend(verdict::final_checks(
            scenario,
            &own,
            &direction.marks,
            tolerance,
        ));
        let timeline = verdict::timeline(scenario, &own, &direction.marks, tolerance, &checks);
        checks.extend(direction.control_checks);
        Run {
            verdict: Verdict::of(&checks),
            transcript,
            checks,
            timeline,
        }
    }

    /// The transcript followed by the verdict and every failed check: what a snapshot holds
    /// and what a failing test prints.
    pub fn render(&self) -> String {
        let mut out = self.transcript.render();
        let passed = self.checks.iter().filter(|c| c.passed).count();
        out.push_str(&format!(
            "verdict: {} ({passed}/{} checks passed)\n",
            self.verdict.as_str(),
            self.checks.len()
        ));
        for check in self.checks.iter().filter(|c| !c.passed) {
            out.push_str(&format!("{check}\n"));
        }
        out
    }
}
