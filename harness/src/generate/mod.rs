//! Generated will histories: proptest strategies that draw [`History`] values, and their
//! lowering to [`Scenario`](crate::scenario::Scenario)s, the model the YAML parser produces.
//!
//! - [`history`]: what a history is (devices, wills, watchers, events) and how it becomes a
//!   scenario.
//! - [`strategy`]: the proptest strategies, which shrink toward fewer clients, fewer events,
//!   shorter waits and QoS 0.
//! - [`explore`]: drawing cases, judging them with the oracle on a target, and shrinking
//!   every divergence on the target (`lastwill explore`, and the property tests).

pub mod explore;
pub mod history;
pub mod strategy;

pub use history::History;
