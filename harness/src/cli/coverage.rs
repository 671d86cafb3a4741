//! `lastwill coverage [PATHS...]`: which spec statements the scenarios cover.
//!
//! Prints every statement that counts (MUST, exhibitable by a single broker) or needs a
//! cluster and is not covered, refs that name no statement, and the figure `covered/total`. `--all` lists every
//! statement with the scenarios covering it. Exits 1 when a ref names no statement.

use std::path::PathBuf;
use std::process::ExitCode;

use super::select::load_all;
use super::usage_error;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use lastwill::coverage::{Coverage, STATEMENTS, parse_statements};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files or folders [default: scenarios/].
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
    /// List every statement with its covering scenarios, not only the uncovered ones.
    #[arg(long)]
    pub all: bool,
}

pub fn run(args: Args) -> ExitCode {
    let statements = match parse_statements(STATEMENTS) {
        Ok(statements) => statements,
        Err(error) => return usage_error(format!("spec/statements.yaml:{error}")),
    };
    let scenarios = match load_all(&args.paths) {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    let coverage = Coverage::of(statements, &scenarios);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "statement",
        "version",
        "strength",
        "requirement",
        "covered by",
    ]);
    for (statement, files) in &coverage.rows {
        let listed = statement.counts() || statement.multi_node;
        if !args.all && (!listed || !files.is_empty()) {
            continue;
        }
        let strength = format!(
            "{}{}{}",
            statement.strength.as_str(),
            match (statement.single_broker, statement.multi_node) {
                (true, _) => "",
                (false, true) => " (not single-broker: cluster)",
                (false, false) => " (not single-broker)",
            },
            if statement.ambiguous {
                " (ambiguous)"
            } else {
                ""
            }
        );
        table.add_row([
            statement.id.clone(),
            statement.version.to_string(),
            strength,
            statement.requirement.clone(),
            if files.is_empty() {
                "-".to_owned()
            } else {
                files.join("\n")
            },
        ]);
    }
    if !table.is_empty() {
        let heading = if args.all {
            "All statements:"
        } else {
            "Uncovered MUST statements:"
        };
        super::print(format!("{heading}\n{table}"));
    }
    for (file, reference) in &coverage.unknown {
        super::print(format!(
            "{file}: ref `{reference}` names no statement of its protocol version"
        ));
    }
    super::print(coverage.summary());
    // a ref naming no statement is a mistake in the scenario files: bad input
    if coverage.unknown.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_USAGE)
    }
}
