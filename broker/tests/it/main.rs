//! The broker's integration tests, as one test binary: each file under `tests/` would be a
//! binary of its own, linking the whole dependency graph again. A new test file goes here as
//! a module (`tests/it/NAME.rs` and a `mod NAME;` line below); what the tests share is in
//! `support/`.

mod support;

mod arbitrary_input;
mod codec_corpus;
mod codec_mqttbytes;
mod codec_roundtrip;
mod driver_sim;
mod hostile_clients;
mod malformed_connect;
mod panic_isolation;
mod spec_citations;
mod write_backlog;
