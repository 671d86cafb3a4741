//! The will oracle: what the spec requires of a scenario's wills, written from the spec's
//! statements (`/work/shared/spec/will-statements.md`), not from the broker.
//!
//! [`predict`] replays a scenario's steps through an executable model of the will rules of
//! MQTT 3.1.1 and 5.0 ([`model`]) and writes what every client must receive — each will at
//! its due time, with its QoS, retain flag, properties and subscription identifiers — as the
//! scenario's final expectations: `must` where the spec decides, `may` where it leaves the
//! server a choice (naming the statement or ambiguity, `{A16}`, ...), and `receives: nothing`
//! where nothing may arrive. It shares no code with the reference broker (a test checks that
//! it imports nothing from `lastwill_broker::core`): two implementations that agree are the
//! point.
//!
//! - [`time`]: instants as marks plus offsets, and when two are far enough apart to order.
//! - [`topic`]: Topic Names and Filters (§4.7).
//! - [`raw`]: the raw packets (`send:`) whose meaning for a will the oracle knows.
//! - [`model`]: the will rules, step by step.
//! - [`expect`]: the predictions written as expectations.
//! - [`agreement`]: a scenario's own expectations compared with the prediction.

pub mod agreement;
mod expect;
pub mod model;
pub mod raw;
pub mod time;
pub mod topic;

#[cfg(test)]
mod tests;

use crate::scenario::Scenario;

pub use agreement::{Agreement, Difference, Kind};
pub use time::Timeline;

/// What the spec requires of a scenario's wills.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// The input scenario with the marks the predicted windows need added to its steps
    /// (`oracle-N`, only on steps that had no mark; existing marks are reused) and its final
    /// `expect` replaced by the oracle's: one block per client, listing every message it must
    /// (or may) receive with `only: true`, or `receives: nothing`.
    pub scenario: Scenario,
    /// One line per decision, citing statements, e.g. "device's will (will/device-1): due at
    /// dropped + 5.000s: the connection was reset without DISCONNECT [MQTT-3.1.2-8]; will delay
    /// 5 s < session expiry 60 s ({W5-WDI-MIN})".
    pub reasoning: Vec<String>,
    /// When each step starts and ends, for comparing time windows.
    pub timeline: Timeline,
}

impl Prediction {
    /// How the scenario's own expectations about wills compare with this prediction.
    pub fn agreement(&self, original: &Scenario) -> Agreement {
        agreement::compare(original, &self.scenario, &self.timeline)
    }
}

/// A scenario the oracle does not model (raw CONNECT bytes, `net:` steps, a broker restart,
/// races closer than it can order, ...): the reason, in words for people. The text before the
/// first colon names the kind of reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

/// Predicts what the spec requires of the scenario's wills.
pub fn predict(scenario: &Scenario) -> Result<Prediction, Unsupported> {
    let model = model::run(scenario)?;
    let (predicted, reasoning) = expect::write(scenario, &model);
    Ok(Prediction {
        scenario: predicted,
        reasoning,
        timeline: model.timeline,
    })
}
