//! The oracle against the catalogue: for every scenario under `scenarios/` that the oracle
//! models, its prediction must say what the scenario's own expectations say about wills, and
//! the predicted scenario must pass on the reference broker in the simulator (two
//! implementations of the will rules that agree).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lastwill::oracle::{self, Kind, Prediction};
use lastwill::runner::sim;
use lastwill::scenario::{self, Scenario};
use lastwill::verdict::Verdict;

const SEED: u64 = 1;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Every catalogue scenario, by its path under `scenarios/`, with the oracle's prediction or
/// why it has none.
fn catalogue() -> Vec<(String, Scenario, Result<Prediction, oracle::Unsupported>)> {
    let dir = root().join("scenarios");
    scenario::discover(&dir)
        .into_iter()
        .map(|file| {
            let name = file
                .strip_prefix(&dir)
                .unwrap_or(&file)
                .with_extension("")
                .to_string_lossy()
                .replace('\\', "/");
            let scenario = scenario::load(&file).expect("catalogue scenarios parse");
            let prediction = oracle::predict(&scenario);
            (name, scenario, prediction)
        })
        .collect()
}

#[test]
fn the_oracle_says_what_the_catalogue_says_about_wills() {
    let mut unsupported: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut report = String::new();
    let mut conflicts = 0;
    let mut compared = 0;
    let mut agreeing = 0;
    for (name, scenario, prediction) in catalogue() {
        let prediction = match prediction {
            Ok(p) => p,
            Err(why) => {
                let kind = why.0.split(':').next().unwrap_or_default().to_owned();
                unsupported
                    .entry(kind)
                    .or_default()
                    .push(format!("{name}: {why}"));
                continue;
            }
        };
        let agreement = prediction.agreement(&scenario);
        if agreement.compared == 0 {
            unsupported
                .entry("no will expectations".into())
                .or_default()
                .push(name);
            continue;
        }
        compared += 1;
        if agreement.differences.is_empty() {
            agreeing += 1;
            continue;
        }
        for d in &agreement.differences {
            if d.kind == Kind::Conflict {
                conflicts += 1;
            }
            report.push_str(&format!("{name}: {d}\n"));
        }
        if agreement.conflicts().next().is_some() {
            report.push_str(&format!(
                "  reasoning:\n    {}\n",
                prediction.reasoning.join("\n    ")
            ));
        }
    }
    let skipped: usize = unsupported.values().map(Vec::len).sum();
    println!("{report}");
    println!("compared {compared} scenarios ({agreeing} agree fully), {skipped} not compared:");
    for (kind, names) in &unsupported {
        println!("  {kind}: {}", names.len());
        for n in names {
            println!("    {n}");
        }
    }
    assert_eq!(
        conflicts, 0,
        "the oracle and the catalogue disagree (see above)"
    );
    // most of the catalogue speaks about wills in ways the oracle models: a drop here means
    // the oracle stopped modelling something
    assert!(compared >= 130, "only {compared} scenarios compared");
}

#[test]
fn predictions_pass_on_the_reference_broker() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, _, prediction) in catalogue() {
        let Ok(prediction) = prediction else { continue };
        ran += 1;
        let run = sim::run(&prediction.scenario, SEED).expect("the simulation runs");
        if run.verdict == Verdict::Fail {
            failures.push(format!(
                "{name}\n{}\nreasoning:\n  {}",
                run.render(),
                prediction.reasoning.join("\n  ")
            ));
        }
    }
    println!("ran {ran} predicted scenarios on the reference broker");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
