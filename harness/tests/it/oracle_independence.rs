//! The oracle is an independent implementation of the will rules: it may use the broker's
//! codec types (the scenario model holds them) but nothing of the broker's core, where the
//! reference broker's own will code lives. This test reads the oracle's source to check that.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the oracle's folder is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `lastwill_broker::…` path in the text, as the module right after the crate name
/// (`codec`, `core`, or `{` for a grouped import, which is resolved too).
fn broker_modules(text: &str) -> Vec<String> {
    let mut modules = Vec::new();
    for (at, _) in text.match_indices("lastwill_broker") {
        let rest = text[at + "lastwill_broker".len()..].trim_start();
        let Some(rest) = rest.strip_prefix("::") else {
            modules.push("(the crate itself)".into());
            continue;
        };
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let module = item.trim().split("::").next().unwrap_or("").trim();
                if !module.is_empty() {
                    modules.push(module.to_owned());
                }
            }
        } else {
            let module: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            modules.push(module);
        }
    }
    modules
}

/// The source without its comments (which may well name what the code must not use).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_oracle_uses_only_the_broker_codec() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/oracle");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    assert!(
        files.len() >= 5,
        "the oracle's sources are found: {files:?}"
    );
    let mut found = Vec::new();
    for file in &files {
        let text = code(&std::fs::read_to_string(file).expect("readable source"));
        for module in broker_modules(&text) {
            if module != "codec" {
                found.push(format!("{}: lastwill_broker::{module}", file.display()));
            }
        }
        for forbidden in ["broker/src/core", "#[path", "include!"] {
            if text.contains(forbidden) {
                found.push(format!("{}: {forbidden}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the oracle must not use the broker beyond its codec types:\n{}",
        found.join("\n")
    );
}

/// The harness itself must not hand the broker's core to the oracle through a re-export.
#[test]
fn the_harness_re_exports_nothing_of_the_broker_core() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let reexports: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let text = code(&std::fs::read_to_string(file).ok()?);
            let bad = text.lines().any(|line| {
                let line = line.trim_start();
                line.starts_with("pub use") && broker_modules(line).iter().any(|m| m == "core")
            });
            bad.then(|| file.display().to_string())
        })
        .collect();
    assert!(
        reexports.is_empty(),
        "re-exports of the broker core: {reexports:?}"
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    assert_eq!(
        broker_modules("use lastwill_broker::core::will;"),
        vec!["core".to_owned()]
    );
    assert_eq!(
        broker_modules("use lastwill_broker::{codec::QoS, core};"),
        vec!["codec".to_owned(), "core".to_owned()]
    );
    assert_eq!(
        broker_modules("lastwill_broker :: codec :: Connect"),
        vec!["codec".to_owned()]
    );
}
