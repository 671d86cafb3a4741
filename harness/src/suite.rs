//! A suite run: many scenarios on one target, in parallel, into [`ScenarioResult`]s.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::report::{ScenarioResult, Status};
use crate::runner::{NotRun, Run, Target};
use crate::scenario::Scenario;

/// Runs one scenario on broker instance `instance` of `target` (see [`Target::run`]) and
/// times it.
pub fn run_one(
    target: &Target,
    scenario: &Scenario,
    index: usize,
    instance: usize,
) -> ScenarioResult {
    let started = Instant::now();
    let outcome = target.run(scenario, index, instance);
    let elapsed = started.elapsed();
    match outcome {
        Ok(run) => result(
            scenario,
            Status::from_verdict(run.verdict),
            Some(run),
            elapsed,
        ),
        Err(NotRun::Skipped(why)) => result(
            scenario,
            Status::Skip(why.to_string()),
            None,
            Duration::ZERO,
        ),
        Err(NotRun::Failed(why)) => result(scenario, Status::Error(why), None, elapsed),
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
        (0..scenarios.len()).partition(|&i| !target.needs_exclusive_run(&scenarios[i]));
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
                        let result = run_one(target, scenario, index, worker);
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
