//! The conformance catalogue as tests: every `scenarios/**/*.yaml` is its own test, named by
//! its path, run against the reference broker in the simulator.
//!
//! Each test
//! - runs the scenario twice with the same seed and requires byte-identical transcripts
//!   (determinism),
//! - runs it once more with another seed and requires the same verdict (a seed may only
//!   change what the scenario allows to vary: link latency within its tolerance),
//! - fails, printing the transcript and the failed expectations, when the verdict is `fail`,
//! - compares the transcript with its insta snapshot in `snapshots/`.

use std::path::{Path, PathBuf};

use lastwill::runner::sim;
use lastwill::scenario;
use lastwill::verdict::Verdict;
use libtest_mimic::{Arguments, Failed, Trial};

const SEED: u64 = 1;
const OTHER_SEED: u64 = 0x5eed;

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned();
    let catalogue = root.join("scenarios");
    let trials = scenario::discover(&catalogue)
        .into_iter()
        .map(|file| {
            let name = file
                .strip_prefix(&catalogue)
                .unwrap_or(&file)
                .with_extension("")
                .to_string_lossy()
                .replace('\\', "/");
            let snapshots = root.join("snapshots");
            Trial::test(name.clone(), move || check(&file, &name, &snapshots))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn check(file: &PathBuf, name: &str, snapshots: &Path) -> Result<(), Failed> {
    let scenario = scenario::load(file)?;
    let first = sim::run(&scenario, SEED)?;
    let rendered = first.render();
    if first.verdict == Verdict::Fail {
        return Err(format!("{}\n{rendered}", file.display()).into());
    }
    let second = sim::run(&scenario, SEED)?;
    if second.render() != rendered {
        return Err(format!(
            "not deterministic: two runs with seed {SEED} differ\n--- first\n{rendered}\n--- second\n{}",
            second.render()
        )
        .into());
    }
    let other = sim::run(&scenario, OTHER_SEED)?;
    if other.verdict != first.verdict {
        return Err(format!(
            "seed {OTHER_SEED} changes the verdict from {} to {}\n{}",
            first.verdict.as_str(),
            other.verdict.as_str(),
            other.render()
        )
        .into());
    }
    let snapshot_name = name.replace('/', "__");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshots);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(scenario.name.clone());
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(snapshot_name.as_str(), rendered));
    }))
    .map_err(|_| {
        Failed::from(format!(
            "{}: transcript differs from snapshots/{snapshot_name}.snap",
            file.display()
        ))
    })
}
