//! lastwill: a conformance and simulation test harness for MQTT Will messages.
//!
//! - [`scenario`]: the YAML scenario language, parsed strictly into a typed model.
//! - [`client`]: the scripted MQTT client that plays each scenario client.
//! - [`target`]: where scenarios run: the simulator ([`target::sim`]).
//! - [`transcript`]: what happened, rendered as stable text.
//! - [`verdict`]: expectations checked against what happened.

pub mod client;
pub mod report;
pub mod scenario;
pub mod target;
pub mod transcript;
pub mod verdict;
