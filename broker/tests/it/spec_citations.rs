//! The project's own citation tags resolve inside the repository: every `{A<n>}` cited in the
//! broker, the benches and the statement list is defined in `spec/ambiguities.yaml`, every
//! `{W5-...}`/`{W3-...}` cited in source is a statement of `spec/statements.yaml`, and source
//! comments cite ambiguities only in the braced form. (Official `[MQTT-x.y.z-n]` ids are
//! defined by the OASIS standards, not here.)

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `id:` of every `- {id: ..., ...}` entry of a spec list.
fn defined_ids(file: &str) -> BTreeSet<String> {
    let text = fs::read_to_string(repo().join("spec").join(file)).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("- {id: "))
        .map(|rest| rest.split(',').next().unwrap().trim().to_owned())
        .collect()
}

/// Every `.rs` file under the given directories of the repository.
fn sources(dirs: &[&str]) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    for dir in dirs {
        walk(&repo().join(dir), &mut out);
    }
    out
}

fn is_ambiguity_tag(tag: &str) -> bool {
    tag.strip_prefix('A')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn is_statement_tag(tag: &str) -> bool {
    (tag.starts_with("W5-") || tag.starts_with("W3-"))
        && tag[3..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// The project tags written in braces in `text`: `{A12}`, `{W5-WDI-MIN}`.
fn braced_tags(text: &str) -> Vec<&str> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(tag, _)| tag))
        .filter(|tag| is_ambiguity_tag(tag) || is_statement_tag(tag))
        .collect()
}

/// Ambiguity ids written without braces (`(A12)`, `A9)`) in `comment`.
fn bare_ambiguity_tags(comment: &str) -> Vec<String> {
    let bytes = comment.as_bytes();
    let mut found = Vec::new();
    for (i, _) in comment.match_indices('A') {
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 1 + digits).copied();
        let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if digits > 0 && !word(before) && !word(after) && before != Some(b'{') {
            found.push(comment[i..i + 1 + digits].to_owned());
        }
    }
    found
}

#[test]
fn every_cited_tag_is_defined_in_the_repository() {
    let ambiguities = defined_ids("ambiguities.yaml");
    let statements = defined_ids("statements.yaml");
    assert_eq!(ambiguities.len(), 18, "A1..A18 of the matrix");
    let mut undefined = Vec::new();
    let mut cited = BTreeSet::new();
    let statement_list = repo().join("spec/statements.yaml");
    let mut files = sources(&["broker/src", "broker/tests", "benches"]);
    files.push((
        statement_list.clone(),
        fs::read_to_string(&statement_list).unwrap(),
    ));
    for (path, text) in &files {
        for (n, line) in text.lines().enumerate() {
            for tag in braced_tags(line) {
                let known = if is_ambiguity_tag(tag) {
                    cited.insert(tag.to_owned());
                    ambiguities.contains(tag)
                } else {
                    statements.contains(tag)
                };
                if !known {
                    undefined.push(format!("{}:{}: {{{tag}}}", path.display(), n + 1));
                }
            }
        }
    }
    assert_eq!(
        undefined,
        Vec::<String>::new(),
        "tags cited but not defined"
    );
    // the broker cites its choices; a check that found nothing would prove nothing
    assert!(cited.len() >= 5, "ambiguities cited: {cited:?}");
}

#[test]
fn source_comments_cite_ambiguities_in_braces() {
    let mut bare = Vec::new();
    let files = sources(&["broker/src", "broker/tests", "benches"]);
    // this file's own examples of the bare form excepted
    let this_file = |path: &Path| path.file_name().is_some_and(|n| n == "spec_citations.rs");
    for (path, text) in files.iter().filter(|(path, _)| !this_file(path)) {
        for (n, line) in text.lines().enumerate() {
            let Some((_, comment)) = line.split_once("//") else {
                continue;
            };
            for tag in bare_ambiguity_tags(comment) {
                bare.push(format!("{}:{}: {tag}", path.display(), n + 1));
            }
        }
    }
    assert_eq!(bare, Vec::<String>::new(), "write {{A<n>}}");
}

#[test]
fn the_scanners_find_what_they_look_for() {
    assert_eq!(
        braced_tags("x ({W5-WDI-MIN}, {A12}) {not} {a1} {A}"),
        ["W5-WDI-MIN", "A12"]
    );
    assert_eq!(
        bare_ambiguity_tags(" counts from publication (A12), not {A9}; 0xA1 A0B"),
        ["A12"]
    );
}
