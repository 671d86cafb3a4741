//! lastwill: a conformance and simulation test harness for MQTT Will messages.
//!
//! - [`scenario`]: the YAML scenario language, parsed strictly into a typed model.
//! - [`client`]: the scripted MQTT client that plays each scenario client.
//! - [`target`]: where scenarios run: the simulator ([`target::sim`]) or a broker over TCP
//!   ([`target::tcp`]).
//! - [`transcript`]: what happened, rendered as stable text.
//! - [`verdict`]: expectations checked against what happened.
//! - [`report`]: tables, JSON and JUnit XML over many scenarios.
//! - [`coverage`]: which spec statements the catalogue covers.
//! - [`generate`]: generated will histories (proptest strategies) as scenarios.
//! - [`suite`]: many scenarios on one target, in parallel.
//! - [`matrix`]: several targets side by side, and broker profiles of known divergences.
//! - [`storm`]: a will storm against a broker over TCP, for `lastwill bench`.

pub mod client;
pub mod coverage;
pub mod generate;
pub mod matrix;
pub mod report;
pub mod scenario;
pub mod storm;
pub mod suite;
pub mod target;
pub mod transcript;
pub mod verdict;
