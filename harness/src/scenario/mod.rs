//! The scenario language: YAML files under `scenarios/` that describe one test each.
//!
//! [`load`] or [`parse`] turn a file into a [`Scenario`]: a typed, fully checked model with
//! every default resolved, ready for a runner. Every error is one line,
//! `FILE:LINE:COLUMN: message`, saying what was expected there. The grammar is documented in
//! `docs/scenario-language.md`. [`write`] turns a model back into a file that parses to it.

mod model;
mod parse;
mod values;
mod write;

pub use values::{MAX_TOPIC_BYTES, human_duration, parse_duration};
pub use write::write;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use model::*;

/// Why a scenario file could not be read; its [`Display`](std::fmt::Display) is one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    /// `None` when the file could not be read at all.
    pub location: Option<Location>,
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.location {
            Some(at) => write!(f, "{}:{at}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Parses scenario text; `file_name` is used in errors and kept in [`Scenario::file`].
pub fn parse(source: &str, file_name: &str) -> Result<Scenario, ScenarioError> {
    let error = |e: yaml::Located| ScenarioError {
        file: file_name.to_owned(),
        location: Some(e.location),
        message: e.message,
    };
    let root = yaml::parse(source)
        .map_err(error)?
        .ok_or_else(|| ScenarioError {
            file: file_name.to_owned(),
            location: Some(Location { line: 1, column: 1 }),
            message: "the file is empty: expected a scenario with at least `name`, `clients` and \
                  `steps`"
                .into(),
        })?;
    parse::scenario(&root, file_name).map_err(error)
}

/// Reads and parses a scenario file.
pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: file.clone(),
        location: None,
        message: format!("cannot read: {}", crate::io_error::describe(&e)),
    })?;
    parse(&source, &file)
}

/// A scenario's key in test names, matrices, profiles and `--name` filters: its path under
/// `scenarios/`, without `.yaml`.
pub fn key(file: &str) -> String {
    let path = file.replace('\\', "/");
    let under = path
        .rsplit_once("scenarios/")
        .map_or(path.as_str(), |(_, rest)| rest);
    under.strip_suffix(".yaml").unwrap_or(under).to_owned()
}

/// Every `*.yaml` file under `dir`, recursively, sorted by path. Unreadable directories are
/// skipped.
pub fn discover(dir: impl AsRef<Path>) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir.as_ref(), &mut out);
    out.sort();
    out
}
