//! Report files, opened before a run starts: a path that cannot be written is an error
//! before any scenario runs, not after the results exist.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use lastwill::io_error;

/// A file a report will be written to.
pub struct ReportFile {
    path: PathBuf,
    file: File,
}

impl ReportFile {
    /// Opens (or creates) `path` for writing, without emptying it yet: a run that does not
    /// get to its report leaves an earlier report as it was.
    pub fn open(path: &Path) -> Result<ReportFile, String> {
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("{}: {}", path.display(), io_error::describe(&e)))?;
        Ok(ReportFile {
            path: path.to_owned(),
            file,
        })
    }

    /// Replaces the file's contents with `text`.
    pub fn write(mut self, text: &str) -> Result<(), String> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all(text.as_bytes()))
            .map_err(|e| format!("{}: {}", self.path.display(), io_error::describe(&e)))
    }
}
