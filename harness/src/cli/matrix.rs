//! `lastwill matrix --target ref --target NAME=URL ... [PATHS...]`: the catalogue on every
//! target, side by side.
//!
//! `--profile NAME=FILE` (or `--profile FILE` when there is one external target) compares a
//! target with the divergences its profile lists: a divergence the profile does not list, or
//! a listed one that no longer happens, fails the run (exit 1). `--repeat N` runs every
//! external target N times, so that timing noise shows up as intermittent instead of failing.
//! `--format` and `--output` work as for `run`: one report, on standard output or in a file.

use std::path::PathBuf;
use std::process::ExitCode;

use lastwill::matrix::{Column, Matrix, Profile};
use lastwill::report::ScenarioResult;
use lastwill::runner::Target;
use lastwill::suite;

use super::output::ReportFile;
use super::run::{lost_target, warn_of_failed_cleanups};
use super::select::SelectArgs;
use super::target::TargetArgs;
use super::usage_error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Json,
    Junit,
    Html,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub select: SelectArgs,
    /// A target: `ref` (the reference broker in the simulator) or
    /// NAME=mqtt://[USER[:PASSWORD]@]HOST:PORT[?v5=HOST:PORT][,HOST:PORT...] (`?v5=`: the
    /// broker's separate MQTT 5 port; the first then serves 3.1.1; `USER:PASSWORD@`: this
    /// target's own credentials).
    #[arg(long = "target", value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
    /// Known divergences of a target: NAME=FILE, or FILE when one target is external.
    #[arg(long = "profile", value_name = "[NAME=]FILE")]
    pub profiles: Vec<String>,
    /// Runs of each external target; outcomes that differ between runs are intermittent.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to FILE instead of standard output (the summary still goes to
    /// stderr); checked before the run starts.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub settings: TargetArgs,
}

pub fn run(args: Args) -> ExitCode {
    let scenarios = match args.select.load() {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    let named: Vec<(String, String)> = args
        .targets
        .iter()
        .map(|t| match t.split_once('=') {
            Some((name, url)) => (name.to_owned(), url.to_owned()),
            None => (t.clone(), t.clone()),
        })
        .collect();
    let profiles = match profiles(&args.profiles, &named) {
        Ok(profiles) => profiles,
        Err(message) => return usage_error(message),
    };
    let output = match args.output.as_deref().map(ReportFile::open).transpose() {
        Ok(output) => output,
        Err(message) => return usage_error(message),
    };
    let mut columns = Vec::new();
    for (name, url) in &named {
        let target = match args.settings.target(url) {
            Ok(target) => target,
            Err(message) => return usage_error(message),
        };
        let repeats = match target {
            Target::Simulator { .. } => 1,
            Target::Tcp { .. } => args.repeat.max(1),
        };
        let jobs = args.settings.jobs(&target);
        let mut runs = Vec::new();
        for repeat in 1..=repeats {
            eprintln!(
                "{name}: run {repeat}/{repeats} of {} scenarios",
                scenarios.len()
            );
            let results = suite::run(&scenarios, &target, jobs);
            let lost = lost_target(&results).is_some();
            runs.push(results);
            if lost {
                break;
            }
        }
        warn_of_failed_cleanups(name, &target);
        let profile = profiles
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone());
        columns.push(Column::new(name, url, &runs, profile));
    }
    let matrix = Matrix { columns };
    let rendered = match args.format {
        Format::Table => matrix.table(),
        Format::Markdown => matrix.markdown(),
        Format::Json => matrix.json(),
        Format::Junit => matrix.junit(),
        Format::Html => matrix.html(),
    };
    match output {
        Some(file) => {
            if let Err(message) = file.write(&rendered) {
                return usage_error(message);
            }
        }
        None => super::print(&rendered),
    }
    match (&args.output, args.format) {
        (None, Format::Table) => super::print(matrix.summary()),
        _ => eprintln!("{}", matrix.summary()),
    }
    let mut failed = false;
    for column in &matrix.columns {
        for stale in column.unknown_profile_entries() {
            eprintln!(
                "{}: profile lists `{stale}`, which is not in the catalogue",
                column.name
            );
            failed = true;
        }
        for (scenario, judgement) in column.gate_failures() {
            eprintln!(
                "{}: {} divergence: {scenario}",
                column.name,
                judgement.as_str()
            );
            failed = true;
        }
    }
    let lost = matrix.columns.iter().find_map(|c| {
        let results: Vec<ScenarioResult> = c.results.values().flatten().cloned().collect();
        lost_target(&results).map(|why| format!("{}: {why}", c.name))
    });
    if let Some(lost) = lost {
        return usage_error(lost);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `NAME=FILE` pairs; a bare `FILE` belongs to the only external target.
fn profiles(
    args: &[String],
    targets: &[(String, String)],
) -> Result<Vec<(String, Profile)>, String> {
    let external: Vec<&String> = targets
        .iter()
        .filter(|(_, url)| url != "ref" && url != "sim")
        .map(|(name, _)| name)
        .collect();
    args.iter()
        .map(|arg| {
            let (name, file) = match arg.split_once('=') {
                Some((name, file)) => (name.to_owned(), file),
                None if external.len() == 1 => (external[0].clone(), arg.as_str()),
                None => {
                    return Err(format!(
                        "--profile {arg}: say which target it is for (NAME=FILE)"
                    ));
                }
            };
            if !targets.iter().any(|(n, _)| *n == name) {
                return Err(format!("--profile {arg}: no target named `{name}`"));
            }
            Ok((name, Profile::load(std::path::Path::new(file))?))
        })
        .collect()
}
