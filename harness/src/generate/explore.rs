//! Exploring a broker with generated histories: draw cases, let the oracle say what the spec
//! requires of each, run the prediction on the target through the ordinary verdict machinery,
//! and shrink every divergence on the target itself to a smallest history that still diverges.
//!
//! Case `k` of seed `S` is drawn from its own random generator, seeded from `(S, k)`, so any
//! case can be drawn again alone, in any thread, and a run is the same for the same seed
//! whatever the number of jobs. Shrinking drives proptest's [`ValueTree`] by hand
//! (`simplify` after a divergence, `complicate` after a pass), re-running every candidate on
//! the target, until the tree is exhausted or the time budget is spent; a shrunk history that
//! no longer diverges when run once more is reported as intermittent.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::History;
use super::strategy::Size;
use crate::oracle::{self, Prediction};
use crate::report::{ScenarioResult, Status};
use crate::runner::Target;
use crate::scenario::{self, Action, Scenario, StepKind};
use crate::suite;

/// Virtual time steps of generated runs on the simulator: a simulated run costs time for
/// every host and link at every step, and a generated history has up to 25 clients and a
/// minute of virtual time; 10 ms steps make it eight times cheaper than [`crate::runner::sim::TICK`]
/// with the same outcomes, well inside the simulator's tolerance.
pub const TICK: Duration = Duration::from_millis(10);

/// How to explore.
pub struct Exploration<'t> {
    /// Draws the histories, up to a size that grows with the case number
    /// ([`Size::of_case`]).
    pub strategy: fn(Size) -> BoxedStrategy<History>,
    pub target: &'t Target,
    /// Cases drawn.
    pub cases: usize,
    pub seed: u64,
    /// Cases run at the same time.
    pub jobs: usize,
    /// How long one divergence may spend shrinking.
    pub shrink_time: Duration,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Expectations the history itself implies, added to the oracle's before the run (see
    /// [`strategy::in_due_order`](super::strategy::in_due_order)).
    pub refine: Option<fn(&History, &mut Scenario)>,
}

/// One history, lowered, predicted and run.
#[derive(Clone, Debug)]
pub struct Judged {
    pub history: History,
    /// The lowered scenario, before the oracle's expectations.
    pub scenario: Scenario,
    pub outcome: Outcome,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    /// The oracle does not model the history (a race it cannot order, ...): not run.
    Unsupported(String),
    /// Run on the target.
    Ran {
        prediction: Box<Prediction>,
        result: Box<ScenarioResult>,
    },
}

impl Judged {
    /// The target failed the oracle's expectations (or the run failed).
    pub fn diverges(&self) -> bool {
        matches!(&self.outcome, Outcome::Ran { result, .. } if result.status.is_failure())
    }

    pub fn status(&self) -> Option<&Status> {
        match &self.outcome {
            Outcome::Ran { result, .. } => Some(&result.status),
            Outcome::Unsupported(_) => None,
        }
    }
}

/// A divergence, shrunk.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The first case that led to it.
    pub case: usize,
    /// How many cases shrank to the same shape.
    pub count: usize,
    /// The shrunk history, judged.
    pub judged: Judged,
    /// Runs spent shrinking it.
    pub shrink_runs: usize,
    /// Whether the shrunk history diverged again when run once more.
    pub confirmed: bool,
}

impl Finding {
    /// What the shrunk history does, as written: two divergences that shrink to the same
    /// shape are one finding.
    pub fn shape(&self) -> String {
        shape(&self.judged.scenario)
    }

    /// A file name for it: the events that end or replace connections, and a hash of the
    /// shape, e.g. `v5-disconnect-0x01-4f2a9c`.
    pub fn short_name(&self) -> String {
        short_name(&self.judged.scenario)
    }

    /// The predicted scenario, with what was found in its description, ready to drop into
    /// `scenarios/`.
    pub fn scenario(&self, found_by: &str) -> Scenario {
        let Outcome::Ran { prediction, result } = &self.judged.outcome else {
            return self.judged.scenario.clone();
        };
        let mut s = prediction.scenario.clone();
        let first = result
            .checks
            .iter()
            .find(|c| !c.passed)
            .map(|c| c.expected.clone())
            .unwrap_or_else(|| result.first_problem());
        s.name = format!("generated: {first}");
        let mut text = format!(
            "Found by {found_by} (case {}, {} case(s) shrank to this history; shrunk in {} \
             runs{}).\n\nWhat the spec requires (the oracle's reasoning):\n",
            self.case,
            self.count,
            self.shrink_runs,
            if self.confirmed {
                ""
            } else {
                "; did NOT diverge when run again: intermittent"
            }
        );
        for line in &prediction.reasoning {
            text.push_str(&format!("- {line}\n"));
        }
        text.push_str("\nWhat the broker did (failed checks):\n");
        for check in result.checks.iter().filter(|c| !c.passed) {
            text.push_str(&format!(
                "- expected {}\n  observed {}\n",
                check.expected, check.observed
            ));
        }
        if let Status::Error(why) = &result.status {
            text.push_str(&format!("- the run failed: {why}\n"));
        }
        s.description = Some(text);
        s.tags.push("explore".into());
        s
    }
}

/// What an exploration found.
#[derive(Debug, Default)]
pub struct Report {
    pub cases: usize,
    /// Cases run on the target (the others the oracle did not model).
    pub judged: usize,
    pub passed: usize,
    pub warned: usize,
    pub skipped: usize,
    /// Unsupported cases by the oracle's kind of reason.
    pub unsupported: BTreeMap<String, usize>,
    /// Distinct divergences, in the order of the first case that found each.
    pub findings: Vec<Finding>,
    /// Runs on the target, shrinking included.
    pub runs: usize,
    /// Time spent drawing and running cases (shrinking excluded), and in all.
    pub exploring: Duration,
    pub elapsed: Duration,
}

impl Report {
    /// Cases per second of exploring (drawing, predicting and running; not shrinking).
    pub fn cases_per_second(&self) -> f64 {
        self.cases as f64 / self.exploring.as_secs_f64().max(1e-9)
    }

    pub fn diverged(&self) -> usize {
        self.findings.iter().map(|f| f.count).sum()
    }
}

/// The random generator of case `case` of `seed`.
fn case_runner(seed: u64, case: usize) -> TestRunner {
    // SplitMix64 over (seed, case): well-spread 32-byte ChaCha seeds from two small numbers
    let mut state = seed ^ (case as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// Case `case` of `seed`, as the exploration draws it.
pub fn draw(strategy: fn(Size) -> BoxedStrategy<History>, seed: u64, case: usize) -> History {
    let mut runner = case_runner(seed, case);
    strategy(Size::of_case(case))
        .new_tree(&mut runner)
        .map(|tree| tree.current())
        .unwrap_or_else(|why| panic!("the history strategy rejected case {case}: {why}"))
}

impl Exploration<'_> {
    /// Lowers, predicts and runs one history; `run` numbers the run (isolation prefixes on a
    /// broker), `worker` picks the broker instance.
    pub fn judge(&self, history: &History, case: usize, run: usize, worker: usize) -> Judged {
        let scenario = history.scenario(&format!("generated case {case}"));
        let outcome = match oracle::predict(&scenario) {
            Err(why) => Outcome::Unsupported(why.0),
            Ok(prediction) => {
                let mut prediction = prediction;
                if let Some(refine) = self.refine {
                    refine(history, &mut prediction.scenario);
                }
                let mut predicted = prediction.scenario.clone();
                predicted.file = format!("case-{case}.yaml");
                let mut result = suite::run_one(self.target, &predicted, run, worker);
                if let Some(prefix) = self.target.prefix(run) {
                    // what the broker saw, in the scenario's own names
                    let strip = |text: &mut String| {
                        *text = text
                            .replace(&format!("{prefix}/"), "")
                            .replace(&format!("{prefix}-"), "")
                    };
                    for check in &mut result.checks {
                        strip(&mut check.expected);
                        strip(&mut check.observed);
                    }
                    strip(&mut result.transcript);
                }
                Outcome::Ran {
                    prediction: Box::new(prediction),
                    result: Box::new(result),
                }
            }
        };
        Judged {
            history: history.clone(),
            scenario,
            outcome,
        }
    }

    /// Draws and judges every case, `jobs` at a time, shrinking each divergence.
    pub fn run(&self) -> Report {
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let runs = AtomicUsize::new(0);
        let shrinking = Mutex::new(Duration::ZERO);
        let report = Mutex::new(Report {
            cases: self.cases,
            ..Report::default()
        });
        let found: Mutex<Vec<Finding>> = Mutex::new(Vec::new());
        let progress = match self.progress {
            true => ProgressBar::new(self.cases as u64),
            false => ProgressBar::hidden(),
        };
        progress.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} cases {msg}")
                .expect("progress template"),
        );
        std::thread::scope(|scope| {
            for worker in 0..self.jobs.clamp(1, self.cases.max(1)) {
                let (next, runs, report, found, progress, shrinking) =
                    (&next, &runs, &report, &found, &progress, &shrinking);
                scope.spawn(move || {
                    while let Some(case) =
                        Some(next.fetch_add(1, Ordering::Relaxed)).filter(|&c| c < self.cases)
                    {
                        let mut runner = case_runner(self.seed, case);
                        let strategy = (self.strategy)(Size::of_case(case));
                        let Ok(mut tree) = strategy.new_tree(&mut runner) else {
                            continue;
                        };
                        let first = self.judge(
                            &tree.current(),
                            case,
                            runs.fetch_add(1, Ordering::Relaxed),
                            worker,
                        );
                        tally(&mut report.lock().expect("report lock"), &first);
                        if first.diverges() {
                            progress.set_message(format!("shrinking case {case}"));
                            let began = Instant::now();
                            let finding = self.shrink(&mut *tree, first, case, runs, worker);
                            *shrinking.lock().expect("shrink lock") += began.elapsed();
                            found.lock().expect("findings lock").push(finding);
                            progress.set_message("");
                        }
                        progress.inc(1);
                    }
                });
            }
        });
        progress.finish_and_clear();
        let mut report = report.into_inner().expect("report lock");
        report.findings = merge(found.into_inner().expect("findings lock"));
        report.runs = runs.into_inner();
        report.elapsed = started.elapsed();
        // shrinking ran in parallel with exploring: take out its share of the wall time
        let jobs = self.jobs.clamp(1, self.cases.max(1)) as u32;
        let shrink_share = shrinking.into_inner().expect("shrink lock") / jobs;
        report.exploring = report.elapsed.saturating_sub(shrink_share);
        report
    }

    /// Shrinks a divergence on the target within the time budget.
    fn shrink(
        &self,
        tree: &mut dyn ValueTree<Value = History>,
        first: Judged,
        case: usize,
        runs: &AtomicUsize,
        worker: usize,
    ) -> Finding {
        let deadline = Instant::now() + self.shrink_time;
        let mut best = first;
        let mut spent = 0;
        let mut more = tree.simplify();
        while more && Instant::now() < deadline {
            let candidate = tree.current();
            let run = runs.fetch_add(1, Ordering::Relaxed);
            let judged = self.judge(&candidate, case, run, worker);
            spent += 1;
            if judged.diverges() {
                best = judged;
                more = tree.simplify();
            } else {
                more = tree.complicate();
            }
        }
        let again = self.judge(
            &best.history,
            case,
            runs.fetch_add(1, Ordering::Relaxed),
            worker,
        );
        Finding {
            case,
            count: 1,
            judged: best,
            shrink_runs: spent,
            confirmed: again.diverges(),
        }
    }
}

fn tally(report: &mut Report, judged: &Judged) {
    match &judged.outcome {
        Outcome::Unsupported(why) => {
            let kind = why.split(':').next().unwrap_or(why).trim().to_owned();
            *report.unsupported.entry(kind).or_default() += 1;
        }
        Outcome::Ran { result, .. } => {
            report.judged += 1;
            match result.status {
                Status::Pass => report.passed += 1,
                Status::Warn => report.warned += 1,
                Status::Skip(_) => report.skipped += 1,
                Status::Fail | Status::Error(_) | Status::NotRun(_) => {}
            }
        }
    }
}

/// One finding per shape, counting the cases that shrank to it, in case order.
fn merge(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by_key(|f| f.case);
    let mut merged: Vec<Finding> = Vec::new();
    for finding in found {
        match merged.iter_mut().find(|m| m.shape() == finding.shape()) {
            Some(same) => {
                same.count += 1;
                same.confirmed |= finding.confirmed;
            }
            None => merged.push(finding),
        }
    }
    merged
}

/// The scenario as written, without its name: what makes two shrunk histories the same.
fn shape(scenario: &Scenario) -> String {
    let mut s = scenario.clone();
    s.name = String::new();
    scenario::write(&s)
}

/// `v5-disconnect-0x01-4f2a9c`: the protocols, what ends or replaces connections, a hash.
fn short_name(scenario: &Scenario) -> String {
    let protocols: Vec<String> = {
        let mut p: Vec<String> = scenario
            .clients
            .iter()
            .map(|c| format!("v{}", c.protocol).replace('.', ""))
            .collect();
        p.sort();
        p.dedup();
        p
    };
    let mut words = vec![protocols.join("-")];
    for step in &scenario.steps {
        let (StepKind::Client { action, .. }, Some(mark)) = (&step.kind, &step.mark) else {
            continue;
        };
        let word = match action {
            Action::Drop(mode) => format!("drop-{mode:?}").to_lowercase(),
            Action::Vanish => "vanish".into(),
            Action::Disconnect(d) if mark.contains("-gone") => match u8::from(d.code) {
                0 => "disconnect".into(),
                code => format!("disconnect-0x{code:02x}"),
            },
            Action::Disconnect(_) => "watcher-away".into(),
            Action::Connect(_) if mark.contains("-gone") => "second-connect".into(),
            Action::Connect(_) if mark.contains("-taken") => "takeover".into(),
            Action::Connect(_) if mark.starts_with('w') => "watcher-back".into(),
            Action::Connect(_) => "reconnect".into(),
            _ => continue,
        };
        if words.last() != Some(&word) && words.len() < 5 {
            words.push(word);
        }
    }
    words.push(format!(
        "{:06x}",
        fnv1a(shape(scenario).as_bytes()) & 0xff_ffff
    ));
    words.join("-")
}

/// FNV-1a: a hash that stays the same across Rust versions and platforms (file names).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
