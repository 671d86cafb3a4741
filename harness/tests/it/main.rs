//! The harness's integration tests, as one test binary: each file directly under `tests/` is a
//! binary of its own and links the whole dependency graph again (a dozen of them made most of
//! `cargo test`'s link time). A new test file goes here as a module (`tests/it/NAME.rs` and a
//! `mod NAME;` line below). Apart stay `tests/catalogue.rs` (its own harness: one test per
//! scenario file) and the helpers in `tests/support/`, which files outside `it/` can include
//! too.

use std::path::Path;
use std::process::{Command, Output};

#[path = "../support/mosquitto.rs"]
mod mosquitto;
#[path = "../support/peer.rs"]
mod peer;
#[path = "../support/reference_broker.rs"]
mod reference_broker;
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod clusters;
mod command_line_clients;
mod completions;
mod control_arm;
mod coverage;
mod html_report;
mod messages;
mod module_graph;
mod mosquitto_bench;
mod mosquitto_capabilities;
mod mosquitto_clients;
mod mosquitto_explore;
mod mosquitto_tls;
mod mqttjs_cli;
mod oracle_catalogue;
mod oracle_independence;
mod peer_targets;
mod peers_matrix;
mod properties;
mod scenario_errors;
mod scenario_write;
mod settings;
mod tcp_reference;

/// Runs the `lastwill` binary in the repository's root and returns what it did.
fn lastwill(args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .current_dir(root)
        .args(args)
        .output()
        .expect("run lastwill")
}

/// What a run printed, stdout then stderr, for an assertion's message.
fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
