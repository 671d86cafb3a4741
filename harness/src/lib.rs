//! lastwill: a conformance and simulation test harness for MQTT Will messages.
//!
//! Modules, each using only those listed before it (`tests/it/module_graph.rs` checks that the
//! imports between modules form no cycle):
//!
//! - [`io_error`]: I/O errors in words.
//! - [`broker_process`]: a broker started as a child process, and its CPU time and memory.
//! - [`scenario`]: the YAML scenario language, parsed strictly into a typed model.
//! - [`raw_connect`]: a `send:` step's CONNECT bytes: their protocol, credentials spliced in.
//! - [`selection`]: which scenarios a command takes (`--tag`, `--name`).
//! - [`transcript`]: what happened in a run, rendered as stable text.
//! - [`link`]: whole MQTT packets in and out over any byte stream.
//! - [`client`]: the scripted MQTT client that plays each scenario client, over the
//!   [`Network`](client::Network) a runner gives it.
//! - [`verdict`]: expectations checked against step outcomes and the transcript.
//! - [`runner`]: where a scenario runs ([`runner::Target`]): the reference broker in the
//!   simulator ([`runner::sim`]) or any broker over TCP ([`runner::tcp`]).
//! - [`oracle`]: what the spec requires of a scenario's wills, predicted from the statements
//!   by a model that shares no code with the broker.
//! - [`report`]: tables, JSON and JUnit XML over many scenarios.
//! - [`suite`]: many scenarios on one target, in parallel.
//! - [`coverage`]: which spec statements the catalogue covers.
//! - [`matrix`]: several targets side by side, and broker profiles of known divergences.
//! - [`generate`]: generated will histories (proptest strategies) as scenarios, and
//!   exploring a broker with them.
//! - [`storm`]: a will storm against a broker over TCP, for `lastwill bench`.

pub mod broker_process;
pub mod client;
pub mod coverage;
pub mod generate;
pub mod io_error;
pub mod link;
pub mod matrix;
pub mod oracle;
pub mod raw_connect;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod selection;
pub mod storm;
pub mod suite;
pub mod transcript;
pub mod verdict;
