//! What the harness's real-peer tests share.

use std::process::{Command, Stdio};

/// `true` when every one of `programs` can be run; otherwise says so loudly and returns
/// `false`, or fails the test when `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), so that
/// CI always runs what a developer's machine may skip.
pub fn peers_available(test: &str, programs: &[&str], install: &str) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|program| {
            Command::new(program)
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    peer_missing(test, &missing.join(", "), install);
    false
}

/// Says loudly that `test` skips because `missing` is not installed, and how to install it;
/// fails the test instead when `LASTWILL_REQUIRE_PEERS=1`.
pub fn peer_missing(test: &str, missing: &str, install: &str) {
    let required = std::env::var("LASTWILL_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "LASTWILL_REQUIRE_PEERS=1 but {missing} not installed ({install})"
    );
    // Straight to the process's stderr: `eprintln!` would be captured by the test harness
    // and never shown for a passing test.
    let notice = format!(
        "\n************************************************************************\n\
         * SKIPPED {test}: {missing} not found.\n\
         * Install with:  {install}\n\
         * Set LASTWILL_REQUIRE_PEERS=1 to make this a failure instead.\n\
         ************************************************************************\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
}
