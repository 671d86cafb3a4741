//! `lastwill list [--tag T] [--name GLOB] [PATHS...]`: the scenarios a `run` with the same
//! selection would take, one row each, without running them.

use std::process::ExitCode;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use lastwill::scenario::{self, human_duration};

use super::select::SelectArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub select: SelectArgs,
}

pub fn run(args: Args) -> ExitCode {
    let scenarios = match args.select.load() {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    // on a terminal, wrap the long names to its width
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header([
        "scenario", "name", "tags", "protocol", "level", "lasts", "refs",
    ]);
    for s in &scenarios {
        table.add_row([
            scenario::key(&s.file),
            s.name.clone(),
            s.tags.join(", "),
            s.protocol.to_string(),
            s.level.as_str().to_owned(),
            human_duration(s.length()),
            s.refs.join(" "),
        ]);
    }
    super::print(table);
    super::print(format!("{} scenarios", scenarios.len()));
    ExitCode::SUCCESS
}
