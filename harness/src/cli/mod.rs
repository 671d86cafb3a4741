//! The `lastwill` subcommands, one module each.
//!
//! To add a subcommand `foo`: write `cli/foo.rs` with a clap `Args` struct and a
//! `pub fn run(args) -> ExitCode`, add a `Foo(foo::Args)` variant to [`Command`], and one arm
//! to the `match` in `main.rs`.
//!
//! Exit codes, the same for every subcommand: 0 success, 1 a run that found a divergence (a
//! failed scenario, a matrix outside its profile, a lost will in a storm), 2 a usage, input or
//! target error (bad flags — what clap itself uses —, files that are not valid scenarios, a
//! report path that cannot be written, a target that cannot be reached or stopped answering,
//! a port in use).

pub mod bench;
pub mod broker;
pub mod completions;
pub mod coverage;
pub mod explain;
pub mod explore;
pub mod list;
pub mod man;
pub mod matrix;
pub mod output;
pub mod run;
pub mod select;
pub mod target;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Conformance and simulation test harness for MQTT Will messages.
#[derive(Debug, Parser)]
#[command(name = "lastwill", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reference broker on real TCP.
    Broker(broker::Args),
    /// List scenarios (name, tags, protocol, level, length, refs) without running them.
    List(list::Args),
    /// Run scenarios (default: the catalogue in scenarios/ on the simulator) and report.
    Run(run::Args),
    /// Run one scenario on the simulator and print its transcript and checks.
    Explain(explain::Args),
    /// Report which spec statements the scenarios cover.
    Coverage(coverage::Args),
    /// Run the catalogue on several targets and compare them (and their profiles).
    #[command(
        after_help = "The six real brokers of the README's matrix (mosquitto, rumqttd, rmqtt, amqtt, aedes, ejabberd) install and start on free loopback ports with peers/<name>.sh, each with the configuration its profiles/<broker>-<version>.yaml was observed with: see peers/README.md to reproduce the matrix."
    )]
    Matrix(matrix::Args),
    /// Measure will dispatch: many clients with wills die at once (default: the reference
    /// broker, in this process).
    Bench(bench::Args),
    /// Generated will histories against a broker, judged by the oracle; divergences are
    /// shrunk and saved as scenarios.
    Explore(explore::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the manual page (roff), or write one page per subcommand with --dir.
    Man(man::Args),
}

/// Exit code for bad flags, unreadable or invalid configuration.
pub const EXIT_USAGE: u8 = 2;

/// Prints a one-line error (`lastwill: error: ...`) and returns the usage exit code.
pub fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("lastwill: error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Prints to standard output; when the reader has gone away (`lastwill explain x | head`),
/// stops quietly instead of panicking.
pub fn print(text: impl std::fmt::Display) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("lastwill: error: cannot write to standard output: {error}");
        std::process::exit(i32::from(EXIT_USAGE));
    }
}

/// Logs to stderr through `tracing`; `RUST_LOG` selects what (default: `default`, e.g. `info`),
/// as comma-separated `LEVEL` and `TARGET=LEVEL` directives (`info,lastwill_broker=debug`).
/// (`Targets` rather than `EnvFilter`: the span and field filters it lacks would cost the
/// regex engine in every build.)
pub fn init_logging(default: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    tracing_subscriber::fmt()
        // The builder's own default ceiling is INFO, which would cap `RUST_LOG=debug`: let
        // `filter` alone decide.
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .finish()
        .with(filter)
        .init();
}
