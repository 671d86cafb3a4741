//! `lastwill explore`: generated will histories against a broker, judged by the oracle.
//!
//! Cases are drawn from `--seed`, the oracle says what the spec requires of each, and the
//! prediction runs on the target like any scenario (against a real broker: in real time, in
//! parallel, under the isolation prefixes of `run`). Every divergence is shrunk on the target
//! within `--shrink-time`, then run `--confirm` more times: one that diverged in every run is
//! reproducible and, with `--save DIR`, written as `DIR/<short-name>.yaml`, ready to drop into
//! `scenarios/`; one that diverged in only some runs is intermittent, written under
//! `DIR/intermittent/` and never fails the run. Divergences that shrink to the same history
//! are reported once, with a count. Exit code 1 when a reproducible divergence is not in
//! `--profile` (matched by the short name: a profile entry `scenario: explore/<short-name>`),
//! 2 for bad flags or targets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use lastwill::generate::explore::{self, Exploration, Finding, Report};
use lastwill::generate::strategy;
use lastwill::matrix::Profile;
use lastwill::runner::Target;
use lastwill::scenario;
use proptest::strategy::Strategy;

use super::target::{TargetArgs, parse_duration};
use super::usage_error;

#[derive(Debug, clap::Args)]
#[command(mut_arg("seed", |a| a.help("Seed of the generated cases (and of the simulator)")))]
pub struct Args {
    /// `ref` (the reference broker in the simulator), mqtt://HOST:PORT or mqtts://HOST:PORT
    /// (mqtt://HOST:PORT?v5=HOST:PORT for a broker with a separate MQTT 5 port), or
    /// cluster:mqtt://A,mqtt://B,… (the nodes of one broker: each generated client is placed
    /// on a node drawn from the case's seed).
    #[arg(long, default_value = "ref", value_name = "TARGET")]
    pub target: String,
    /// Cases to draw.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub cases: usize,
    /// Write each reproducible divergence to DIR/<short-name>.yaml and each intermittent one
    /// to DIR/intermittent/<short-name>.yaml (`lastwill run DIR/*.yaml` runs only the first).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Known divergences of the target (a broker profile, as for `matrix`): a divergence whose
    /// short name it lists does not fail the run.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// How long each divergence may spend shrinking (re-running on the target).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
    pub shrink_time: Duration,
    /// Runs of each shrunk divergence after shrinking: one that diverges in every run is
    /// reproducible (saved, fails the run), one that diverges in only some is intermittent
    /// (saved apart, reported, does not fail the run). Above 0, a shrinking candidate must also
    /// diverge twice in a row to be kept. Default: 3 against a broker, 0 in the simulator,
    /// whose runs are deterministic.
    #[arg(long, value_name = "N")]
    pub confirm: Option<usize>,
    #[command(flatten)]
    pub settings: TargetArgs,
}

pub fn run(args: Args) -> ExitCode {
    let profile = match &args.profile {
        Some(path) => match Profile::load(path) {
            Ok(profile) => Some(profile),
            Err(message) => return usage_error(message),
        },
        None => None,
    };
    if let Some(dir) = &args.save
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        return usage_error(format!("{}: {error}", dir.display()));
    }
    let target = match args.settings.target(&args.target) {
        // generated histories are long and have many clients: coarser simulation steps
        Ok(Target::Simulator { seed, .. }) => Target::Simulator {
            seed,
            tick: explore::TICK,
        },
        Ok(target) => target,
        Err(message) => return usage_error(message),
    };
    let nodes = match &target {
        Target::Tcp {
            cluster: Some(_),
            instances,
            ..
        } => instances.len(),
        _ => 1,
    };
    let confirm = args.confirm.unwrap_or(match target {
        Target::Simulator { .. } => 0,
        Target::Tcp { .. } => 3,
    });
    let report = Exploration {
        strategy: |size| strategy::history(size).boxed(),
        target: &target,
        cases: args.cases,
        seed: args.settings.seed,
        nodes,
        jobs: args.settings.jobs(&target),
        shrink_time: args.shrink_time,
        confirm,
        progress: true,
        refine: None,
    }
    .run();
    let found_by = format!(
        "`lastwill explore --target {} --seed {} --cases {}`",
        args.target, args.settings.seed, args.cases
    );
    let known = |f: &Finding| {
        let name = f.short_name();
        profile.as_ref().is_some_and(|p| {
            p.divergences
                .iter()
                .any(|d| d.scenario.rsplit('/').next() == Some(name.as_str()))
        })
    };
    let mut saved = Vec::new();
    for finding in &report.findings {
        let mut found = finding.scenario(&found_by);
        found.seed = Some(args.settings.seed);
        let (kind, place) = match finding.reproducible() {
            true => ("reproducible", String::new()),
            false => ("intermittent", "intermittent/".to_owned()),
        };
        let name = format!("{place}{}.yaml", finding.short_name());
        let text = format!(
            "# {kind}: {} on {}\n{}",
            finding.record,
            args.target,
            scenario::write(&found)
        );
        match &args.save {
            Some(dir) => {
                let path = dir.join(&name);
                if let Err(error) = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&path, text))
                {
                    return usage_error(format!("{}: {error}", path.display()));
                }
                saved.push(path);
            }
            None => super::print(format!("# {name}\n{text}")),
        }
    }
    if report.findings.is_empty() {
        super::print("no divergences");
    } else {
        super::print(table(&report, &known));
    }
    for path in &saved {
        eprintln!("saved {}", path.display());
    }
    eprintln!("{}", summary(&report, &target));
    if let Some(placements) = report.placements() {
        eprintln!("{placements}");
    }
    // an intermittent divergence is reported, but a gate on it would be as flaky as it is
    let new = report
        .findings
        .iter()
        .any(|f| f.reproducible() && !known(f));
    if new {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn table(report: &Report, known: &dyn Fn(&Finding) -> bool) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["divergence", "cases", "steps", "judged", "first difference"]);
    for f in &report.findings {
        let judgement = match (f.reproducible(), known(f)) {
            (false, _) => format!("intermittent ({} of {})", f.record.diverged, f.record.runs),
            (true, true) => "known".to_owned(),
            (true, false) => "NEW".to_owned(),
        };
        let first = match &f.judged.outcome {
            explore::Outcome::Ran { result, .. } => result.first_problem(),
            explore::Outcome::Unsupported(why) => why.clone(),
        };
        table.add_row([
            f.short_name(),
            f.count.to_string(),
            f.judged.scenario.steps.len().to_string(),
            judgement,
            first.chars().take(120).collect(),
        ]);
    }
    table.to_string()
}

fn summary(report: &Report, target: &Target) -> String {
    let unsupported: usize = report.unsupported.values().sum();
    let kinds: Vec<String> = report
        .unsupported
        .iter()
        .map(|(why, n)| format!("{n} {why}"))
        .collect();
    let clock = match target {
        Target::Simulator { .. } => "virtual",
        Target::Tcp { .. } => "real",
    };
    format!(
        "{} cases in {:.1}s ({:.2} cases/s, {clock} time): {} passed, {} warned, {} skipped, \
         {} diverged ({} distinct: {} reproducible, {} intermittent), {unsupported} not modelled by the oracle{}; {} runs in all, \
         {:.1}s with shrinking",
        report.cases,
        report.exploring.as_secs_f64(),
        report.cases_per_second(),
        report.passed,
        report.warned,
        report.skipped,
        report.diverged(),
        report.findings.len(),
        report.reproducible(),
        report.findings.len() - report.reproducible(),
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        },
        report.runs,
        report.elapsed.as_secs_f64()
    )
}
