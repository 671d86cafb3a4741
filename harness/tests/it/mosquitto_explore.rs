//! `lastwill explore` against Debian's mosquitto 2.0.11, with a small case budget and a fixed
//! seed: it must find at least one divergence, and every scenario it saves must parse, have
//! at most 10 steps, fail on mosquitto with `lastwill run --target`, and pass on the
//! reference broker (the simulator).
//!
//! Needs the `mosquitto` binary (Debian: `apt-get install mosquitto`). Without it the test
//! says so loudly and passes, unless `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which
//! turns the skip into a failure.

use crate::mosquitto::{self, Mosquitto};

use std::path::Path;
use std::process::{Command, Output};

use lastwill::scenario;

/// The budget: the first cases of a seed are small (see `Size::of_case`), so what they find
/// shrinks in a few dozen runs.
const CASES: &str = "24";
const SEED: &str = "5";

fn lastwill(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run lastwill")
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn explore_finds_shrunk_divergences_in_mosquitto() {
    if !mosquitto::available("explore_finds_shrunk_divergences_in_mosquitto") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("lastwill-explore-{}", std::process::id()));
    let found = dir.join("found");
    std::fs::create_dir_all(&dir).unwrap();
    let broker = Mosquitto::start(&dir, "explore", "");
    let target = format!("mqtt://127.0.0.1:{}", broker.port);
    let save = found.display().to_string();
    let explored = lastwill(
        &[
            "explore",
            "--target",
            &target,
            "--cases",
            CASES,
            "--seed",
            SEED,
            "--jobs",
            CASES,
            "--shrink-time",
            "3m",
            "--save",
            &save,
        ],
        &dir,
    );
    assert_eq!(
        explored.status.code(),
        Some(1),
        "explore exits 1 when it finds a divergence no profile lists:\n{}",
        text(&explored)
    );
    let files = scenario::discover(&found);
    assert!(
        !files.is_empty(),
        "explore saved no scenario:\n{}",
        text(&explored)
    );
    for file in &files {
        let path = file.display().to_string();
        let saved = scenario::load(file).unwrap_or_else(|e| panic!("a saved file must parse: {e}"));
        assert!(
            saved.steps.len() <= 10,
            "{path} has {} steps; shrinking should get it to 10 or fewer",
            saved.steps.len()
        );
        let on_mosquitto = lastwill(&["run", "--target", &target, &path], &dir);
        assert_eq!(
            on_mosquitto.status.code(),
            Some(1),
            "{path} must fail on mosquitto:\n{}",
            text(&on_mosquitto)
        );
        let on_reference = lastwill(&["run", &path], &dir);
        assert!(
            on_reference.status.success(),
            "{path} must pass on the reference broker:\n{}",
            text(&on_reference)
        );
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
