//! Which scenario files a command reads, and which of their scenarios it takes: the paths
//! and the `--tag`/`--name` filters shared by `list`, `run` and `matrix`.

use std::path::PathBuf;
use std::process::ExitCode;

use lastwill::scenario::{self, Scenario};
use lastwill::selection::Selection;

use super::{EXIT_USAGE, usage_error};

#[derive(Debug, Clone, clap::Args)]
pub struct SelectArgs {
    /// Scenario files or folders [default: scenarios/].
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
    /// Only scenarios with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only scenarios whose key (path under scenarios/, without .yaml) or name matches GLOB,
    /// e.g. 'will-delay/*' or '*takeover*' (repeatable: any of them).
    #[arg(long = "name", value_name = "GLOB")]
    pub names: Vec<String>,
}

impl SelectArgs {
    /// The selected scenarios. Every file that is not a valid scenario, or a selection that
    /// takes none, is reported (one line each) and is the usage exit code.
    pub fn load(&self) -> Result<Vec<Scenario>, ExitCode> {
        let selection = Selection::new(&self.tags, &self.names).map_err(usage_error)?;
        let selected = selection.apply(load_all(&self.paths)?);
        if selected.is_empty() {
            return Err(usage_error(format!(
                "no scenario matches {}",
                selection.describe()
            )));
        }
        Ok(selected)
    }
}

/// Loads every scenario named by `paths`. When some files are not valid scenarios, each is
/// reported on its own line and the result is the usage exit code.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, ExitCode> {
    let files = collect(paths).map_err(usage_error)?;
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for file in &files {
        match scenario::load(file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        return Ok(scenarios);
    }
    for error in &errors {
        eprintln!("lastwill: error: {error}");
    }
    let count = errors.len();
    if count > 1 {
        eprintln!(
            "lastwill: {count} of {} files are not valid scenarios",
            files.len()
        );
    }
    Err(ExitCode::from(EXIT_USAGE))
}

/// The scenario files named by `paths` (folders searched recursively), in order.
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
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
