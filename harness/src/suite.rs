//! A suite run: many scenarios on one target, in parallel, into [`ScenarioResult`]s.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
        Err(NotRun::Lost(why)) => result(scenario, Status::NotRun(why), None, elapsed),
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
        timeline: run.map(|r| r.timeline).unwrap_or_default(),
        elapsed,
    }
}

/// How often a run without a terminal says how far it got.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Progress where the bar is hidden (stderr is no terminal: CI logs, pipes): one line on
/// stderr when a scenario finishes `every` or more after the last line, so a long run against
/// a real broker is not minutes of silence.
struct Heartbeat {
    total: usize,
    every: Duration,
    started: Instant,
    last: Mutex<Instant>,
    on: bool,
}

impl Heartbeat {
    fn new(total: usize, every: Duration) -> Heartbeat {
        use std::io::IsTerminal as _;
        let now = Instant::now();
        Heartbeat {
            total,
            every,
            started: now,
            last: Mutex::new(now),
            on: !std::io::stderr().is_terminal(),
        }
    }

    /// The line due at `now` with `done` scenarios finished, if one is due.
    fn line(&self, done: u64, now: Instant) -> Option<String> {
        let mut last = self.last.lock().expect("heartbeat lock");
        if now.duration_since(*last) < self.every {
            return None;
        }
        *last = now;
        Some(format!(
            "lastwill: {done}/{} scenarios done, {}s elapsed",
            self.total,
            now.duration_since(self.started).as_secs()
        ))
    }

    fn tick(&self, done: u64) {
        if self.on
            && let Some(line) = self.line(done, Instant::now())
        {
            eprintln!("{line}");
        }
    }
}

/// Runs every scenario on `target`, `jobs` at a time, showing a progress bar on a terminal
/// (and a line every ten seconds without one).
/// On a TCP target, scenarios that need a broker to themselves run afterwards, one per broker
/// instance at a time; a broker that stops answering ends the run within seconds, and the
/// scenarios it cut short or never started are [`Status::NotRun`]. Results come back in the
/// scenarios' order.
pub fn run(scenarios: &[Scenario], target: &Target, jobs: usize) -> Vec<ScenarioResult> {
    let (shared, exclusive): (Vec<usize>, Vec<usize>) =
        (0..scenarios.len()).partition(|&i| !target.needs_exclusive_run(&scenarios[i]));
    let progress = ProgressBar::new(scenarios.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("progress template"),
    );
    let heartbeat = Heartbeat::new(scenarios.len(), HEARTBEAT);
    let results: Mutex<Vec<Option<ScenarioResult>>> = Mutex::new(vec![None; scenarios.len()]);
    let finished = AtomicBool::new(false);
    std::thread::scope(|watching| {
        if let Target::Tcp {
            instances,
            liveness,
            ..
        } = target
        {
            watching.spawn(|| liveness.watch(instances, &finished));
        }
        for (batch, jobs) in [(shared, jobs), (exclusive, target.instances())] {
            let jobs = jobs.clamp(1, batch.len().max(1));
            let next = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for worker in 0..jobs {
                    let (next, batch, progress, results, heartbeat) =
                        (&next, &batch, &progress, &results, &heartbeat);
                    scope.spawn(move || {
                        while let Some(&index) = batch.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let scenario = &scenarios[index];
                            // each worker keeps to one instance, so exclusive runs never share one
                            let result = run_one(target, scenario, index, worker);
                            progress.set_message(scenario.file.clone());
                            progress.inc(1);
                            heartbeat.tick(progress.position());
                            results.lock().expect("results lock")[index] = Some(result);
                        }
                    });
                }
            });
        }
        finished.store(true, Ordering::SeqCst);
    });
    progress.finish_and_clear();
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_speaks_once_per_interval() {
        let beat = Heartbeat::new(189, Duration::from_secs(10));
        let at = |s: u64| beat.started + Duration::from_secs(s);
        assert_eq!(beat.line(3, at(4)), None);
        assert_eq!(
            beat.line(40, at(10)).as_deref(),
            Some("lastwill: 40/189 scenarios done, 10s elapsed")
        );
        assert_eq!(beat.line(41, at(15)), None);
        assert_eq!(
            beat.line(80, at(31)).as_deref(),
            Some("lastwill: 80/189 scenarios done, 31s elapsed")
        );
    }
}
