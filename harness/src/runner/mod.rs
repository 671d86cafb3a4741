//! Runners: where and how a scenario runs.
//!
//! - [`sim`]: the reference broker under the turmoil simulator, in virtual time.
//! - [`tcp`]: any running broker over real TCP (or TLS), in real time.
//!
//! Both hand each scenario client to an [`Agent`](crate::client::Agent) over their own
//! [`Network`](crate::client::Network), and let the same director walk the steps (see
//! `director`). A [`Target`] says which runner a suite uses; a [`Run`] is what one scenario
//! run produced.

mod director;
pub mod sim;
pub mod tcp;

use crate::scenario::Scenario;
use crate::transcript::Transcript;
use crate::verdict::{self, Check, Tolerance, Verdict};
use director::Direction;
pub(crate) use director::STEP_TIMEOUT;
use tcp::{Capabilities, Endpoint, Skip};

/// Where a scenario runs.
#[derive(Clone, Debug)]
pub enum Target {
    /// The reference broker in the simulator.
    Simulator { seed: u64 },
    /// A running broker over TCP, with the capabilities its CONNACK announced: one instance,
    /// or several identically configured ones, over which scenarios are spread (scenarios
    /// that need a broker to themselves then run on different instances at the same time).
    Tcp {
        instances: Vec<Endpoint>,
        capabilities: Capabilities,
        /// Distinguishes this run's client ids and topics from every other run's.
        run_id: String,
    },
}

/// Why a scenario did not run to a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRun {
    /// The broker over TCP cannot run it.
    Skipped(Skip),
    /// It could not be run at all (a simulation error, no runtime).
    Failed(String),
}

impl Target {
    /// Scenarios at a time by default: the simulator is CPU-bound, a real broker mostly
    /// makes the harness wait.
    pub fn default_jobs(&self) -> usize {
        match self {
            Target::Simulator { .. } => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Target::Tcp { .. } => 32,
        }
    }

    /// How many broker instances scenarios can be spread over.
    pub fn instances(&self) -> usize {
        match self {
            Target::Simulator { .. } => 1,
            Target::Tcp { instances, .. } => instances.len().max(1),
        }
    }

    /// Whether `scenario` must have a broker instance to itself on this target (see
    /// [`tcp::needs_exclusive_run`]).
    pub fn needs_exclusive_run(&self, scenario: &Scenario) -> bool {
        match self {
            Target::Simulator { .. } => false,
            Target::Tcp { .. } => tcp::needs_exclusive_run(scenario),
        }
    }

    /// Runs one scenario on broker instance `instance` (modulo the number of instances);
    /// `index` keeps prefixes of one run apart.
    pub fn run(&self, scenario: &Scenario, index: usize, instance: usize) -> Result<Run, NotRun> {
        match self {
            Target::Simulator { seed } => sim::run(scenario, *seed).map_err(NotRun::Failed),
            Target::Tcp {
                instances,
                capabilities,
                run_id,
            } => {
                let endpoint = &instances[instance % instances.len()];
                if let Some(why) = endpoint.skip_reason(scenario, capabilities) {
                    return Err(NotRun::Skipped(why));
                }
                let prefix = format!("lw{run_id}s{index}");
                let exclusive = tcp::needs_exclusive_run(scenario);
                tcp::run(scenario, endpoint, (!exclusive).then_some(prefix.as_str()))
                    .map_err(NotRun::Failed)
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
}

impl Run {
    /// The run's result: the director's step checks, then the scenario's final expectations
    /// checked against the transcript with the runner's tolerance.
    fn judged(
        scenario: &Scenario,
        direction: Direction,
        transcript: Transcript,
        tolerance: Tolerance,
    ) -> Run {
        let mut checks = direction.checks;
        checks.extend(verdict::final_checks(
            scenario,
            &transcript,
            &direction.marks,
            tolerance,
        ));
        Run {
            verdict: Verdict::of(&checks),
            transcript,
            checks,
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
