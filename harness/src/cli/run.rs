//! `lastwill run [PATHS...]`: runs scenarios and reports.
//!
//! Paths are scenario files or folders (searched for `**/*.yaml`); the default is the
//! catalogue in `scenarios/`. The default target is the reference broker in the simulator.
//! Scenarios run in parallel, one simulation per thread. The exit code is 1 when a scenario
//! fails (or cannot run), 2 when a file is not a valid scenario.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use lastwill::report::{self, ScenarioResult, Status};
use lastwill::scenario::{self, Scenario};
use lastwill::target::sim;

use super::usage_error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files or folders [default: scenarios/].
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
    /// Simulator seed (a scenario's own `seed:` wins).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to FILE instead of standard output (the summary still goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Scenarios run at the same time [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the transcript of every failed scenario.
    #[arg(long)]
    pub verbose: bool,
}

pub fn run(args: Args) -> ExitCode {
    let files = match collect(&args.paths) {
        Ok(files) => files,
        Err(message) => return usage_error(message),
    };
    let mut scenarios = Vec::with_capacity(files.len());
    for file in &files {
        match scenario::load(file) {
            Ok(s) => scenarios.push(s),
            Err(error) => return usage_error(error),
        }
    }
    let started = Instant::now();
    let results = run_all(&scenarios, args.seed, args.jobs);
    let wall = started.elapsed();

    let rendered = match args.format {
        Format::Table => report::table(&results),
        Format::Json => report::json(&results),
        Format::Junit => report::junit(&results, "lastwill simulator"),
    };
    match &args.output {
        Some(path) => {
            if let Err(error) = std::fs::write(path, &rendered) {
                return usage_error(format!("{}: {error}", path.display()));
            }
        }
        None => println!("{rendered}"),
    }
    if args.verbose {
        for r in results.iter().filter(|r| r.status.is_failure()) {
            eprintln!("\n── {} ──\n{}", r.file, r.transcript);
        }
    }
    let covered: f64 = results.iter().map(|r| r.covered.as_secs_f64()).sum();
    eprintln!(
        "{} scenarios covering {covered:.1}s of virtual time in {:.2}s",
        results.len(),
        wall.as_secs_f64()
    );
    let summary = report::summary(&results);
    match (&args.output, args.format) {
        (None, Format::Table) => println!("{summary}"),
        _ => eprintln!("{summary}"),
    }
    if results.iter().any(|r| r.status.is_failure()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The scenario files named by `paths` (folders searched recursively), in order.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let defaults = [PathBuf::from("scenarios")];
    let paths = if paths.is_empty() { &defaults[..] } else { paths };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(scenario::discover(path));
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    if files.is_empty() {
        return Err("no scenario files (*.yaml) found".into());
    }
    Ok(files)
}

/// Runs every scenario on the simulator, `jobs` at a time, with a progress bar.
fn run_all(scenarios: &[Scenario], seed: u64, jobs: Option<usize>) -> Vec<ScenarioResult> {
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, scenarios.len().max(1));
    let progress = ProgressBar::new(scenarios.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("progress template"),
    );
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<ScenarioResult>> = vec![None; scenarios.len()];
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(scenario) = scenarios.get(index) else {
                        return;
                    };
                    let result = run_one(scenario, seed);
                    progress.set_message(scenario.file.clone());
                    progress.inc(1);
                    slots.lock().expect("results lock")[index] = Some(result);
                }
            });
        }
    });
    progress.finish_and_clear();
    results.into_iter().flatten().collect()
}

/// Runs one scenario on the simulator and turns the run into a result.
pub fn run_one(scenario: &Scenario, seed: u64) -> ScenarioResult {
    let started = Instant::now();
    let run = sim::run(scenario, seed);
    let elapsed = started.elapsed();
    let (status, checks, transcript, covered) = match run {
        Ok(run) => {
            let covered = run.transcript.events.last().map(|e| e.at).unwrap_or_default();
            (Status::from_verdict(run.verdict), run.checks.clone(), run.render(), covered)
        }
        Err(why) => (Status::Error(why), Vec::new(), String::new(), Default::default()),
    };
    ScenarioResult {
        file: scenario.file.clone(),
        name: scenario.name.clone(),
        refs: scenario.refs.clone(),
        status,
        checks,
        transcript,
        elapsed,
        covered,
    }
}
