//! The conformance catalogue as tests: every `scenarios/**/*.yaml` is its own test, named by
//! its path, run against the reference broker in the simulator.
//!
//! Each test
//! - runs the scenario twice with the same seed and requires byte-identical transcripts
//!   (determinism),
//! - runs it once more with another seed and requires the same verdict (a seed may only
//!   change what the scenario allows to vary: link latency within its tolerance),
//! - fails, printing the transcript and the failed expectations, when the verdict is `fail`,
//! - compares the transcript with its insta snapshot in `snapshots/`. A scenario without a
//!   snapshot yet passes on its verdict and records its transcript as the snapshot, for review
//!   with `git diff`; under `CI` (set and not `0`, `false` or empty, as insta reads it) it fails
//!   instead, naming the command that records it. An `INSTA_UPDATE` other than `auto` leaves
//!   missing snapshots to insta as well.
//!
//! `LASTWILL_CATALOGUE=DIR` runs the catalogue of another folder (its `scenarios/` and
//! `snapshots/`) instead of the workspace's. One more test,
//! `catalogue-records-new-snapshots`, runs this binary on such a folder to check the above.

use std::path::{Path, PathBuf};
use std::process::Command;

use lastwill::runner::{NotRun, Target, sim};
use lastwill::scenario::{self, StepKind};
use lastwill::verdict::Verdict;
use libtest_mimic::{Arguments, Failed, Trial};

const SEED: u64 = 1;
const OTHER_SEED: u64 = 0x5eed;
/// The folder of another catalogue to run (see the module documentation).
const CATALOGUE_VAR: &str = "LASTWILL_CATALOGUE";

fn main() {
    let args = Arguments::from_args();
    let catalogue = Catalogue::from_env();
    let mut trials: Vec<Trial> = scenario::discover(catalogue.scenarios())
        .into_iter()
        .map(|file| {
            let catalogue = catalogue.clone();
            let name = catalogue.test_name(&file);
            Trial::test(name.clone(), move || catalogue.check(&file, &name))
        })
        .collect();
    trials.push(Trial::test(
        "catalogue-records-new-snapshots",
        new_scenarios_record_their_snapshot,
    ));
    libtest_mimic::run(&args, trials).exit();
}

/// Where the scenarios and their snapshots are.
#[derive(Clone)]
struct Catalogue {
    root: PathBuf,
    /// Whether `root` came from [`CATALOGUE_VAR`] (a command to rerun must then set it too).
    from_env: bool,
}

impl Catalogue {
    fn from_env() -> Catalogue {
        match std::env::var_os(CATALOGUE_VAR) {
            Some(root) => Catalogue {
                root: root.into(),
                from_env: true,
            },
            None => Catalogue {
                root: workspace_root(),
                from_env: false,
            },
        }
    }

    fn scenarios(&self) -> PathBuf {
        self.root.join("scenarios")
    }

    fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// `will-delay/published-when-delay-elapses` for `scenarios/will-delay/…elapses.yaml`.
    fn test_name(&self, file: &Path) -> String {
        file.strip_prefix(self.scenarios())
            .unwrap_or(file)
            .with_extension("")
            .to_string_lossy()
            .replace('\\', "/")
    }

    /// A path as the user should read it: relative to the workspace when it is inside it.
    fn display(&self, path: &Path) -> String {
        let root = workspace_root();
        path.strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn check(&self, file: &Path, name: &str) -> Result<(), Failed> {
        let scenario = scenario::load(file)?;
        // node steps need a cluster target: the simulator must say so instead of running them
        if scenario
            .steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::Node(_)))
        {
            let simulator = Target::Simulator {
                seed: SEED,
                tick: sim::TICK,
            };
            return match simulator.run(&scenario, 0, 0) {
                Err(NotRun::Skipped(why)) => {
                    eprintln!("{name}: skipped in the simulator: {why}");
                    Ok(())
                }
                other => Err(format!(
                    "{}: has node steps, yet the simulator did not skip it: {other:?}",
                    file.display()
                )
                .into()),
            };
        }
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
        let snapshot = self.snapshots().join(format!("{snapshot_name}.snap"));
        if !snapshot.exists() && missing_snapshots_are_ours() {
            if in_ci() {
                return Err(self.missing_snapshot(file, &snapshot, name).into());
            }
            record_snapshot(&snapshot, &scenario.name, &rendered)
                .map_err(|e| format!("cannot write {}: {e}", snapshot.display()))?;
            eprintln!(
                "new snapshot written: {} — review with git diff (after `git add -N` of the new file)",
                self.display(&snapshot)
            );
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(self.snapshots());
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(scenario.name.clone());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            settings.bind(|| insta::assert_snapshot!(snapshot_name.as_str(), rendered));
        }))
        .map_err(|_| {
            Failed::from(format!(
                "{}: transcript differs from {}",
                file.display(),
                self.display(&snapshot)
            ))
        })
    }

    /// Under CI a missing snapshot fails: what to run, outside CI, to record it.
    fn missing_snapshot(&self, file: &Path, snapshot: &Path, name: &str) -> String {
        let env = if self.from_env {
            format!("{CATALOGUE_VAR}={} ", self.root.display())
        } else {
            String::new()
        };
        format!(
            "{}: no snapshot {} yet; record it outside CI with \
             `{env}cargo test -p lastwill --test catalogue -- --exact {name}`, \
             review it and commit it",
            self.display(file),
            self.display(snapshot)
        )
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Whether this harness decides what a missing snapshot means: with insta's default update
/// mode (`INSTA_UPDATE` unset or `auto`). Any other mode was asked for, and insta applies it.
fn missing_snapshots_are_ours() -> bool {
    std::env::var_os("INSTA_UPDATE").is_none_or(|mode| mode == "auto")
}

/// CI as insta reads it: `CI` set to anything but `0`, `false` or nothing.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| !matches!(ci.as_str(), "" | "0" | "false"))
}

/// Writes `transcript` as the snapshot at `path`, in insta's own format: a minimal header,
/// then loaded and saved again by insta, which writes the file as `cargo insta` would.
fn record_snapshot(path: &Path, description: &str, transcript: &str) -> Result<(), String> {
    // a JSON string is a YAML double-quoted scalar: the description's quoting is insta's to redo
    let description = serde_json::to_string(description).map_err(|e| e.to_string())?;
    let header =
        format!("---\nsource: harness/tests/catalogue.rs\ndescription: {description}\n---\n");
    std::fs::write(path, format!("{header}{}\n", transcript.trim_end()))
        .map_err(|e| e.to_string())?;
    insta::Snapshot::from_file(path)
        .and_then(|snapshot| snapshot.save(path))
        .map_err(|e| e.to_string())
}

/// The promise "drop a YAML file into `scenarios/` and it is a test", checked on a copy of the
/// catalogue: the new scenario passes and records its snapshot, which the next run then
/// compares with; under `CI=true` the same scenario without a snapshot fails, naming the
/// command that records it, and writes nothing.
fn new_scenarios_record_their_snapshot() -> Result<(), Failed> {
    let catalogue = Catalogue::from_env();
    let copy = std::env::temp_dir().join(format!("lastwill-catalogue-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(&catalogue.scenarios(), &copy.join("scenarios"))?;
    copy_dir(&catalogue.snapshots(), &copy.join("snapshots"))?;
    std::fs::create_dir_all(copy.join("scenarios/mine"))?;
    std::fs::write(
        copy.join("scenarios/mine/first-scenario.yaml"),
        "name: my first scenario\n\
         clients: {watcher: {}, device: {}}\n\
         steps:\n\
         \x20 - watcher: connect\n\
         \x20 - watcher: {subscribe: will/#, qos: 1}\n\
         \x20 - device: {connect: {will: {topic: will/device, payload: gone, qos: 1}}}\n\
         \x20 - device: drop\n\
         \x20   mark: dropped\n\
         \x20 - wait: 2s\n\
         expect:\n\
         \x20 watcher: {receives: [{topic: will/device, payload: gone, at: dropped}]}\n",
    )?;
    let snapshot = copy.join("snapshots/mine__first-scenario.snap");
    let run = |ci: Option<&str>| -> Result<(bool, String), Failed> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["--exact", "mine/first-scenario"])
            .env(CATALOGUE_VAR, &copy)
            .env_remove("INSTA_UPDATE")
            .env_remove("CI");
        if let Some(ci) = ci {
            command.env("CI", ci);
        }
        let output = command.output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status.success(), text))
    };
    let outcome = (|| -> Result<(), Failed> {
        let (passed, output) = run(None)?;
        let written = format!(
            "new snapshot written: {} — review with git diff",
            snapshot.display()
        );
        if !passed || !output.contains(&written) || !snapshot.exists() {
            return Err(
                format!("a new scenario outside CI: expected `{written}`\n{output}").into(),
            );
        }
        let recorded = std::fs::read_to_string(&snapshot)?;
        if !recorded.contains("description: my first scenario")
            || !recorded.contains("watcher → SUBSCRIBE")
        {
            return Err(format!("the recorded snapshot:\n{recorded}").into());
        }
        let (passed, output) = run(None)?;
        if !passed || output.contains("new snapshot written") {
            return Err(format!("the run after recording:\n{output}").into());
        }
        std::fs::remove_file(&snapshot)?;
        let (passed, output) = run(Some("true"))?;
        let hint = "record it outside CI with `LASTWILL_CATALOGUE=";
        let command = "cargo test -p lastwill --test catalogue -- --exact mine/first-scenario`";
        if passed || !output.contains(hint) || !output.contains(command) {
            return Err(
                format!("a new scenario under CI=true: expected the hint\n{output}").into(),
            );
        }
        let pending = snapshot.with_extension("snap.new");
        if snapshot.exists() || pending.exists() {
            return Err("under CI=true the missing snapshot was written".into());
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&copy);
    outcome
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let target = to.join(path.file_name().expect("an entry has a name"));
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}
