//! The `lastwill` command line. Each subcommand lives in its own module under `cli/`; this
//! file only parses the arguments and dispatches.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Broker(args) => cli::broker::run(args),
        Command::List(args) => cli::list::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::Explain(args) => cli::explain::run(args),
        Command::Coverage(args) => cli::coverage::run(args),
        Command::Matrix(args) => cli::matrix::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Explore(args) => cli::explore::run(args),
        Command::Completions(args) => cli::completions::run(args),
        Command::Man(args) => cli::man::run(args),
    }
}
