//! `lastwill matrix --target ref --target NAME=URL ... [PATHS...]`: the catalogue on every
//! target, side by side.
//!
//! `--profile NAME=FILE` (or `--profile FILE` when there is one external target) compares a
//! target with the divergences its profile lists: a divergence the profile does not list, or
//! a listed one that no longer happens, fails the run (exit 1). `--repeat N` runs every
//! external target N times, so that timing noise shows up as intermittent instead of failing.

use std::path::PathBuf;
use std::process::ExitCode;

use lastwill::matrix::{Column, Matrix, Profile};
use lastwill::runner::Target;
use lastwill::suite;

use super::run::load_all;
use super::target::TargetArgs;
use super::usage_error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files or folders [default: scenarios/].
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
    /// A target: `ref` (the reference broker in the simulator) or NAME=mqtt://HOST:PORT[,HOST:PORT...].
    #[arg(long = "target", value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
    /// Known divergences of a target: NAME=FILE, or FILE when one target is external.
    #[arg(long = "profile", value_name = "[NAME=]FILE")]
    pub profiles: Vec<String>,
    /// Runs of each external target; outcomes that differ between runs are intermittent.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Write the matrix as Markdown.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the matrix as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the matrix as JUnit XML (one suite per target).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub settings: TargetArgs,
}

pub fn run(args: Args) -> ExitCode {
    let scenarios = match load_all(&args.paths) {
        Ok(scenarios) => scenarios,
        Err(message) => return usage_error(message),
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
            runs.push(suite::run(&scenarios, &target, jobs));
        }
        let profile = profiles
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone());
        columns.push(Column::new(name, url, &runs, profile));
    }
    let matrix = Matrix { columns };
    super::print(matrix.table());
    for (path, text) in [
        (&args.markdown, matrix.markdown()),
        (&args.json, matrix.json()),
        (&args.junit, matrix.junit()),
    ] {
        if let Some(path) = path
            && let Err(error) = std::fs::write(path, text)
        {
            return usage_error(format!("{}: {error}", path.display()));
        }
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
