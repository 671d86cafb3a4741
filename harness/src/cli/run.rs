//! `lastwill run [PATHS...]`: runs scenarios on one target and reports.
//!
//! Paths are scenario files or folders (searched for `**/*.yaml`); the default is the
//! catalogue in `scenarios/`. The default target is the reference broker in the simulator;
//! `--target mqtt://host:port` runs the same scenarios against a running broker. Exit code 1
//! when a scenario fails (or cannot run), 2 for bad flags, files or targets, and for a target
//! that stopped answering during the run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use lastwill::report::{self, ScenarioResult, Status};
use lastwill::runner::Target;
use lastwill::suite;

use super::output::ReportFile;
use super::select::SelectArgs;
use super::target::TargetArgs;
use super::usage_error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
    /// One self-contained page: results, transcripts and a timeline per scenario.
    Html,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub select: SelectArgs,
    /// `sim` (the reference broker in the simulator), mqtt://HOST:PORT or mqtts://HOST:PORT;
    /// mqtt://HOST:PORT,HOST:PORT,... spreads the run over identically configured instances;
    /// mqtt://HOST:PORT?v5=HOST:PORT names a broker's separate MQTT 5 port (the first then
    /// serves 3.1.1). Scenarios of a protocol the broker refuses are skipped.
    #[arg(long, default_value = "sim", value_name = "TARGET")]
    pub target: String,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to FILE instead of standard output (the summary still goes to
    /// stderr); checked before the run starts.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the transcript of every failed scenario.
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub settings: TargetArgs,
}

pub fn run(args: Args) -> ExitCode {
    let scenarios = match args.select.load() {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    let output = match args.output.as_deref().map(ReportFile::open).transpose() {
        Ok(output) => output,
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
        Format::Html => report::html::run(&results, &args.target),
    };
    match output {
        Some(file) => {
            if let Err(message) = file.write(&rendered) {
                return usage_error(message);
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
    warn_of_failed_cleanups(&args.target, &target);
    if let Some(lost) = lost_target(&results) {
        return usage_error(lost);
    }
    if results.iter().any(|r| r.status.is_failure()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One warning line per clean-up that failed, and their count: what they left on the broker
/// may reach a later run.
pub fn warn_of_failed_cleanups(name: &str, target: &Target) {
    let failed = target.cleanup_failures();
    for line in &failed {
        eprintln!("lastwill: warning: {name}: {line}");
    }
    if !failed.is_empty() {
        eprintln!(
            "lastwill: warning: {name}: {} clean-ups failed",
            failed.len()
        );
    }
}

/// When the target stopped answering: why, and how many scenarios it left unrun, in one line.
pub fn lost_target(results: &[ScenarioResult]) -> Option<String> {
    let mut not_run = results.iter().filter_map(|r| match &r.status {
        Status::NotRun(why) => Some(why),
        _ => None,
    });
    let why = not_run.next()?;
    let count = 1 + not_run.count();
    Some(format!(
        "{why}; {count} of {} scenarios not run",
        results.len()
    ))
}
