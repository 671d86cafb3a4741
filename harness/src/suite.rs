//! A suite run: many scenarios on one target, in parallel, into [`ScenarioResult`]s.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::report::{ScenarioResult, Status};
use crate::scenario::Scenario;
use crate::target::sim::{self, Run};
use crate::target::tcp::{self, Capabilities, TcpTarget};

/// Where a suite runs.
#[derive(Clone, Debug)]
pub enum Target {
    /// The reference broker in the simulator, virtual time advancing `tick` at a time
    /// ([`sim::TICK`] unless a run needs it coarser).
    Simulator { seed: u64, tick: Duration },
    /// A running broker over TCP, with the capabilities its CONNACK announced: one instance,
    /// or several identically configured ones, over which scenarios are spread (scenarios
    /// that need a broker to themselves then run on different instances at the same time).
    Tcp {
        instances: Vec<TcpTarget>,
        capabilities: Capabilities,
        /// Distinguishes this run's client ids and topics from every other run's.
        run_id: String,
    },
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
    pub fn run(&self, scenario: &Scenario, index: usize, instance: usize) -> ScenarioResult {
        let started = Instant::now();
        let outcome: Result<Run, String> = match self {
            Target::Simulator { seed, tick } => sim::run_with_tick(scenario, *seed, *tick),
            Target::Tcp {
                instances,
                capabilities,
                ..
            } => match instances[instance % instances.len()].skip_reason(scenario, capabilities) {
                Some(why) => return result(scenario, Status::Skip(why), None, Duration::ZERO),
                None => {
                    let target = &instances[instance % instances.len()];
                    let prefix = self.prefix(index).unwrap_or_default();
                    let exclusive = tcp::needs_exclusive_run(scenario);
                    tcp::run(scenario, target, (!exclusive).then_some(prefix.as_str()))
                }
            },
        };
        let elapsed = started.elapsed();
        match outcome {
            Ok(run) => result(
                scenario,
                Status::from_verdict(run.verdict),
                Some(run),
                elapsed,
            ),
            Err(why) => result(scenario, Status::Error(why), None, elapsed),
        }
    }
}

fn result(
    scenario: &Scenario,
    status: Status,
    run: Option<Run>,
    elapsed: Duration,
) -> ScenarioResult {
    ScenarioResult {
        file: scenario.file.clone(),
        name: scenario.name.clone(),
        refs: scenario.refs.clone(),
        status,
        covered: run
            .as_ref()
            .and_then(|r| r.transcript.events.last())
            .map(|e| e.at)
            .unwrap_or_default(),
        checks: run.as_ref().map(|r| r.checks.clone()).unwrap_or_default(),
        transcript: run.as_ref().map(Run::render).unwrap_or_default(),
        elapsed,
    }
}

/// Runs every scenario on `target`, `jobs` at a time, showing a progress bar on a terminal.
/// On a TCP target, scenarios that need a broker to themselves run afterwards, one per broker
/// instance at a time. Results come back in the scenarios' order.
pub fn run(scenarios: &[Scenario], target: &Target, jobs: usize) -> Vec<ScenarioResult> {
    let (shared, exclusive): (Vec<usize>, Vec<usize>) =
        (0..scenarios.len()).partition(|&i| match target {
            Target::Simulator { .. } => true,
            Target::Tcp { .. } => !tcp::needs_exclusive_run(&scenarios[i]),
        });
    let progress = ProgressBar::new(scenarios.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("progress template"),
    );
    let results: Mutex<Vec<Option<ScenarioResult>>> = Mutex::new(vec![None; scenarios.len()]);
    for (batch, jobs) in [(shared, jobs), (exclusive, target.instances())] {
        let jobs = jobs.clamp(1, batch.len().max(1));
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for worker in 0..jobs {
                let (next, batch, progress, results) = (&next, &batch, &progress, &results);
                scope.spawn(move || {
                    while let Some(&index) = batch.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let scenario = &scenarios[index];
                        // each worker keeps to one instance, so exclusive runs never share one
                        let result = target.run(scenario, index, worker);
                        progress.set_message(scenario.file.clone());
                        progress.inc(1);
                        results.lock().expect("results lock")[index] = Some(result);
                    }
                });
            }
        });
    }
    progress.finish_and_clear();
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .flatten()
        .collect()
}
