//! The catalogue covers at least 90% of the MUST statements a single broker can exhibit, and
//! every `refs:` entry names a statement of its scenario's protocol version.

use std::path::Path;

use lastwill::coverage::{Coverage, STATEMENTS, parse_statements};
use lastwill::scenario;

#[test]
fn catalogue_covers_nine_tenths_of_the_must_statements() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let scenarios: Vec<_> = scenario::discover(root.join("scenarios"))
        .iter()
        .map(|f| scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let coverage = Coverage::of(
        parse_statements(STATEMENTS).expect("statement list"),
        &scenarios,
    );
    assert!(
        coverage.unknown.is_empty(),
        "refs naming no statement: {:?}",
        coverage.unknown
    );
    let (covered, total) = coverage.figure();
    assert!(covered * 10 >= total * 9, "{}", coverage.summary());
}
