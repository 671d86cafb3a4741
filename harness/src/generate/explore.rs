//! Exploring a broker with generated histories: draw cases, let the oracle say what the spec
//! requires of each, run the prediction on the target through the ordinary verdict machinery,
//! and shrink every divergence on the target itself to a smallest history that still diverges.
//!
//! Case `k` of seed `S` is drawn from its own random generator, seeded from `(S, k)`, so any
//! case can be drawn again alone, in any thread, and a run is the same for the same seed
//! whatever the number of jobs. Shrinking drives proptest's [`ValueTree`] by hand
//! (`simplify` after a divergence, `complicate` after a pass), re-running every candidate on
//! the target, until the tree is exhausted or the time budget is spent. A real broker's timing
//! is not the simulator's: a delay checked on a coarse tick meets a tolerance in one run and
//! misses it in the next. So, with [`Exploration::confirm`] above 0, a candidate replaces the
//! best history only if it diverges twice in a row, and the shrunk history is run `confirm`
//! more times: it is [reproducible](Record::reproducible) only if every run of it diverged,
//! intermittent otherwise.
//!
//! On a cluster target every client of a case is placed on a node drawn from the case's
//! seed (see [`Size::nodes`]); shrinking moves clients toward node 1, so a divergence that
//! needs two nodes keeps only the placements it needs.

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
    /// The target's nodes, over which each case's clients are placed (1: one broker).
    pub nodes: usize,
    /// Cases run at the same time.
    pub jobs: usize,
    /// How long one divergence may spend shrinking.
    pub shrink_time: Duration,
    /// Runs of each shrunk divergence after shrinking, to tell a reproducible one from an
    /// intermittent one; 0 when runs are deterministic (the simulator), which also lets one
    /// divergence accept a shrinking candidate instead of two.
    pub confirm: usize,
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
    /// How often the shrunk history diverged: the runs that accepted it while shrinking and
    /// the confirming runs after, of every case that shrank to it.
    pub record: Record,
}

/// How often one history diverged in the runs made of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub diverged: usize,
    pub runs: usize,
}

impl Record {
    /// Every run diverged: a divergence to save and gate on. One that diverged in only some
    /// runs depends on timing the verdict does not control, and is intermittent.
    pub fn reproducible(&self) -> bool {
        self.runs > 0 && self.diverged == self.runs
    }

    fn add(&mut self, other: Record) {
        self.diverged += other.diverged;
        self.runs += other.runs;
    }
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "diverged in {} of {} runs", self.diverged, self.runs)
    }
}

impl Finding {
    /// What the shrunk history does, as written: two divergences that shrink to the same
    /// shape are one finding.
    pub fn shape(&self) -> String {
        shape(&self.judged.scenario)
    }

    pub fn reproducible(&self) -> bool {
        self.record.reproducible()
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
             runs; {}: {}).\n\nWhat the spec requires (the oracle's reasoning):\n",
            self.case,
            self.count,
            self.shrink_runs,
            self.record,
            if self.reproducible() {
                "reproducible"
            } else {
                "intermittent"
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
    /// The clients of the cases as drawn, by the node they were placed on (none on one
    /// broker).
    pub placed: BTreeMap<usize, usize>,
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

    /// Distinct divergences that diverged in every run.
    pub fn reproducible(&self) -> usize {
        self.findings.iter().filter(|f| f.reproducible()).count()
    }

    /// `clients placed: 31 on node 1, 28 on node 2`, on a cluster target.
    pub fn placements(&self) -> Option<String> {
        let nodes: Vec<String> = self
            .placed
            .iter()
            .map(|(node, clients)| format!("{clients} on node {node}"))
            .collect();
        (!nodes.is_empty()).then(|| format!("clients placed: {}", nodes.join(", ")))
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
                        let size = Size::of_case(case).on_nodes(self.nodes);
                        let strategy = (self.strategy)(size);
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

    /// Shrinks a divergence on the target within the time budget, then confirms it.
    fn shrink(
        &self,
        tree: &mut dyn ValueTree<Value = History>,
        first: Judged,
        case: usize,
        runs: &AtomicUsize,
        worker: usize,
    ) -> Finding {
        let mut run = |history: &History| {
            self.judge(history, case, runs.fetch_add(1, Ordering::Relaxed), worker)
        };
        // a candidate that diverged by chance must not stand in for the real divergence
        let accept = if self.confirm > 0 { 2 } else { 1 };
        let deadline = Instant::now() + self.shrink_time;
        let mut shrunk = shrink_tree(tree, first, deadline, accept, &mut run, Judged::diverges);
        let again = confirm(
            &shrunk.best.history.clone(),
            self.confirm,
            &mut run,
            Judged::diverges,
        );
        shrunk.record.add(again);
        Finding {
            case,
            count: 1,
            judged: shrunk.best,
            shrink_runs: shrunk.spent,
            record: shrunk.record,
        }
    }
}

/// A divergence shrunk: the smallest judgement that diverged, how its runs went, and the runs
/// spent shrinking.
struct Shrunk<J> {
    best: J,
    record: Record,
    spent: usize,
}

/// Drives `tree` toward a smallest value whose `run` diverges (`simplify` after a divergence,
/// `complicate` after a pass) until the tree is exhausted or `deadline` passes. A candidate
/// replaces the best only if it diverges in `accept` runs in a row; `first`, the judgement of
/// the tree's first value, diverged once.
fn shrink_tree<V: std::fmt::Debug, J>(
    tree: &mut dyn ValueTree<Value = V>,
    first: J,
    deadline: Instant,
    accept: usize,
    run: &mut dyn FnMut(&V) -> J,
    diverges: fn(&J) -> bool,
) -> Shrunk<J> {
    let mut shrunk = Shrunk {
        best: first,
        record: Record {
            diverged: 1,
            runs: 1,
        },
        spent: 0,
    };
    let mut more = tree.simplify();
    while more && Instant::now() < deadline {
        let candidate = tree.current();
        let mut accepted = None;
        let mut record = Record::default();
        while record.runs < accept.max(1) {
            let judged = run(&candidate);
            shrunk.spent += 1;
            record.runs += 1;
            if !diverges(&judged) {
                break;
            }
            record.diverged += 1;
            accepted.get_or_insert(judged);
        }
        match accepted.filter(|_| record.reproducible()) {
            Some(judged) => {
                shrunk.best = judged;
                shrunk.record = record;
                more = tree.simplify();
            }
            None => more = tree.complicate(),
        }
    }
    shrunk
}

/// Runs `value` `times` more times and counts its divergences.
fn confirm<V, J>(
    value: &V,
    times: usize,
    run: &mut dyn FnMut(&V) -> J,
    diverges: fn(&J) -> bool,
) -> Record {
    Record {
        diverged: (0..times).filter(|_| diverges(&run(value))).count(),
        runs: times,
    }
}

fn tally(report: &mut Report, judged: &Judged) {
    for node in judged.scenario.clients.iter().filter_map(|c| c.node) {
        *report.placed.entry(node).or_default() += 1;
    }
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
                // the same history, run more times: its record is the sum of both
                same.record.add(finding.record);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A tree over 0..1000 that proptest shrinks toward 0, starting from a value of at least 10.
    fn tree() -> Box<dyn ValueTree<Value = u32>> {
        let mut runner = case_runner(5, 0);
        loop {
            let tree = (0u32..1000)
                .new_tree(&mut runner)
                .expect("a range never rejects");
            if tree.current() >= 10 {
                return Box::new(tree);
            }
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn diverged(judged: &(u32, bool)) -> bool {
        judged.1
    }

    #[test]
    fn shrinking_finds_the_smallest_value_that_diverges() {
        let mut tree = tree();
        let first = (tree.current(), true);
        let mut run = |v: &u32| (*v, *v >= 10);
        let shrunk = shrink_tree(&mut *tree, first, later(), 2, &mut run, diverged);
        assert_eq!(shrunk.best, (10, true));
        assert_eq!(
            shrunk.record,
            Record {
                diverged: 2,
                runs: 2
            }
        );
    }

    /// Values below 10 diverge in their first run only: a timing margin met once.
    fn by_chance() -> impl FnMut(&u32) -> (u32, bool) {
        let mut seen = BTreeSet::new();
        move |v: &u32| (*v, *v >= 10 || seen.insert(*v))
    }

    #[test]
    fn a_candidate_that_diverged_by_chance_does_not_replace_a_real_divergence() {
        let mut tree = tree();
        let first = (tree.current(), true);
        let shrunk = shrink_tree(&mut *tree, first, later(), 2, &mut by_chance(), diverged);
        assert_eq!(shrunk.best, (10, true));
        // trusting one run, shrinking is led below the real boundary
        let mut tree = self::tree();
        let first = (tree.current(), true);
        let misled = shrink_tree(&mut *tree, first, later(), 1, &mut by_chance(), diverged);
        assert!(misled.best.0 < 10, "{:?}", misled.best);
        assert_eq!(
            misled.record,
            Record {
                diverged: 1,
                runs: 1
            }
        );
    }

    /// Every node a history places a client on: its devices', their twins' and its watchers'.
    fn nodes(history: &History) -> Vec<Option<usize>> {
        let devices = history.devices.iter().flat_map(|d| [d.node, d.twin_node]);
        devices
            .chain(history.watchers.iter().map(|w| w.node))
            .collect()
    }

    fn cluster_tree(case: usize) -> Box<dyn ValueTree<Value = History>> {
        let size = Size::of_case(case).on_nodes(2);
        let strategy = super::super::strategy::history(size);
        Box::new(strategy.new_tree(&mut case_runner(9, case)).unwrap())
    }

    #[test]
    fn a_cluster_case_places_every_client_on_a_node_drawn_from_its_seed() {
        let mut seen = BTreeSet::new();
        for case in 0..40 {
            let history = cluster_tree(case).current();
            assert_eq!(history, cluster_tree(case).current(), "case {case}");
            for node in nodes(&history) {
                assert!(matches!(node, Some(1 | 2)), "case {case}: {node:?}");
                seen.insert(node);
            }
            let one_broker = super::super::strategy::history(Size::of_case(case));
            let mut runner = case_runner(9, case);
            let history = one_broker.new_tree(&mut runner).unwrap().current();
            assert!(nodes(&history).iter().all(Option::is_none), "case {case}");
        }
        assert_eq!(seen.len(), 2, "both nodes are drawn: {seen:?}");
    }

    #[test]
    fn shrinking_moves_clients_to_node_1_but_keeps_the_placement_a_divergence_needs() {
        let on_node_2 = |h: &History| nodes(h).iter().filter(|&&n| n == Some(2)).count();
        // the case: large enough to have several clients on node 2
        let case = (20..100)
            .find(|&c| on_node_2(&cluster_tree(c).current()) >= 3)
            .expect("a case with three clients on node 2");
        // a divergence that needs a client on node 2
        let mut tree = cluster_tree(case);
        let first = tree.current();
        let mut run = |h: &History| (h.clone(), on_node_2(h) > 0);
        let shrunk = shrink_tree(&mut *tree, (first, true), later(), 1, &mut run, |j| j.1);
        assert_eq!(on_node_2(&shrunk.best.0), 1, "{:?}", nodes(&shrunk.best.0));
        // one that needs none: everyone ends on node 1
        let mut tree = cluster_tree(case);
        let first = tree.current();
        let mut run = |h: &History| (h.clone(), true);
        let shrunk = shrink_tree(&mut *tree, (first, true), later(), 1, &mut run, |j| j.1);
        assert!(nodes(&shrunk.best.0).iter().all(|&n| n == Some(1)));
    }

    /// A saved divergence replays where it ran: the lowered scenario, written and parsed
    /// back, places every client (the takeover twin too) on its drawn node.
    #[test]
    fn lowered_placements_survive_writing_and_parsing() {
        let history = (0..100)
            .map(|case| cluster_tree(case).current())
            .find(|h| {
                let s = h.scenario("x");
                s.clients.iter().any(|c| c.name.ends_with('b'))
                    && s.clients.iter().any(|c| c.node == Some(2))
            })
            .expect("a case with a takeover and a client on node 2");
        let lowered = history.scenario("placed");
        let written = scenario::write(&lowered);
        let parsed = scenario::parse(&written, "placed.yaml").expect("a lowered history parses");
        let placed = |s: &Scenario| -> Vec<(String, Option<usize>)> {
            s.clients.iter().map(|c| (c.name.clone(), c.node)).collect()
        };
        assert_eq!(placed(&parsed), placed(&lowered));
        let twin = lowered
            .clients
            .iter()
            .find(|c| c.name.ends_with('b'))
            .unwrap();
        let device =
            &history.devices[twin.name[1..twin.name.len() - 1].parse::<usize>().unwrap() - 1];
        assert_eq!(twin.node, device.twin_node);
        assert!(placed(&lowered).iter().all(|(_, node)| node.is_some()));
    }

    #[test]
    fn confirming_tells_reproducible_from_intermittent() {
        let always = confirm(&10, 3, &mut |v: &u32| (*v, true), diverged);
        assert_eq!(
            always,
            Record {
                diverged: 3,
                runs: 3
            }
        );
        let mut record = Record {
            diverged: 2,
            runs: 2,
        };
        record.add(always);
        assert!(record.reproducible());
        assert_eq!(record.to_string(), "diverged in 5 of 5 runs");

        let mut flip = false;
        let mut every_other = |v: &u32| {
            flip = !flip;
            (*v, flip)
        };
        let mut record = Record {
            diverged: 1,
            runs: 1,
        };
        record.add(confirm(&10, 3, &mut every_other, diverged));
        assert_eq!(
            record,
            Record {
                diverged: 3,
                runs: 4
            }
        );
        assert!(!record.reproducible());
        assert_eq!(record.to_string(), "diverged in 3 of 4 runs");

        let mut record = Record {
            diverged: 1,
            runs: 1,
        };
        record.add(confirm(&10, 3, &mut |v: &u32| (*v, false), diverged));
        assert!(!record.reproducible(), "a divergence seen once only");
        // without confirming runs, one divergence stands (deterministic targets)
        assert!(
            Record {
                diverged: 1,
                runs: 1
            }
            .reproducible()
        );
        assert!(!Record::default().reproducible());
    }
}
