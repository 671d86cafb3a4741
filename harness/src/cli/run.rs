//! `lastwill run [PATHS...]`: runs scenarios on one target and reports.
//!
//! Paths are scenario files or folders (searched for `**/*.yaml`); the default is the
//! catalogue in `scenarios/`. The default target is the reference broker in the simulator;
//! `--target mqtt://host:port` runs the same scenarios against a running broker. Exit code 1
//! when a scenario fails (or cannot run), 2 for bad flags, files or targets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use lastwill::report;
use lastwill::runner::Target;
use lastwill::scenario::{self, Scenario};
use lastwill::suite;

use super::target::TargetArgs;
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
    /// `sim` (the reference broker in the simulator), mqtt://HOST:PORT or mqtts://HOST:PORT;
    /// mqtt://HOST:PORT,HOST:PORT,... spreads the run over identically configured instances.
    #[arg(long, default_value = "sim", value_name = "TARGET")]
    pub target: String,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to FILE instead of standard output (the summary still goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the transcript of every failed scenario.
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub settings: TargetArgs,
}

pub fn run(args: Args) -> ExitCode {
    let scenarios = match load_all(&args.paths) {
        Ok(scenarios) => scenarios,
        Err(message) => return usage_error(message),
    };
    let target = match args.settings.target(&args.target) {
        Ok(target) => target,
        Err(message) => return usage_error(message),
    };
    let started = Instant::now();
    let jobs = args.settings.jobs(&target);
    let results = suite::run(&scenarios, &target, jobs);
    let wall = started.elapsed();

    let rendered = match args.format {
        Format::Table => report::table(&results),
        Format::Json => report::json(&results),
        Format::Junit => report::junit(&results, &format!("lastwill on {}", args.target)),
    };
    match &args.output {
        Some(path) => {
            if let Err(error) = std::fs::write(path, &rendered) {
                return usage_error(format!("{}: {error}", path.display()));
            }
        }
        None => super::print(&rendered),
    }
    if args.verbose {
        for r in results.iter().filter(|r| r.status.is_failure()) {
            eprintln!("\n── {} ──\n{}", r.file, r.transcript);
        }
    }
    let covered: f64 = results.iter().map(|r| r.covered.as_secs_f64()).sum();
    let clock = if matches!(target, Target::Simulator { .. }) {
        "virtual"
    } else {
        "real"
    };
    eprintln!(
        "{} scenarios covering {covered:.1}s of {clock} time in {:.2}s",
        results.len(),
        wall.as_secs_f64()
    );
    let summary = report::summary(&results);
    match (&args.output, args.format) {
        (None, Format::Table) => super::print(&summary),
        _ => eprintln!("{summary}"),
    }
    if results.iter().any(|r| r.status.is_failure()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Loads the scenarios named by `paths`; the first bad file is the error.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, String> {
    collect(paths)?
        .iter()
        .map(|file| scenario::load(file).map_err(|e| e.to_string()))
        .collect()
}

/// The scenario files named by `paths` (folders searched recursively), in order.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let defaults = [PathBuf::from("scenarios")];
    let paths = if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    };
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
