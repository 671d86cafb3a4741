//! `lastwill explain FILE`: runs one scenario on the simulator and prints its transcript,
//! its verdict and every check, passed or not.

use std::path::PathBuf;
use std::process::ExitCode;

use lastwill::runner::sim;
use lastwill::scenario;

use super::usage_error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file.
    pub file: PathBuf,
    /// Simulator seed (the scenario's own `seed:` wins).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: Args) -> ExitCode {
    let scenario = match scenario::load(&args.file) {
        Ok(scenario) => scenario,
        Err(error) => return usage_error(error),
    };
    match sim::run(&scenario, args.seed) {
        Ok(run) => {
            super::print(format!("{}\n{}", scenario.name, run.transcript.render()));
            for check in &run.checks {
                super::print(check);
            }
            super::print(format!("verdict: {}", run.verdict.as_str()));
            if run.verdict == lastwill::verdict::Verdict::Fail {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(why) => {
            eprintln!("lastwill: error: {}: {why}", args.file.display());
            ExitCode::FAILURE
        }
    }
}
