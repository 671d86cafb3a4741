//! The scripted MQTT client.
//!
//! One [`Agent`] per scenario client. It owns at most one connection at a time over any
//! stream its [`Network`] opens, sends structured packets or raw bytes as the steps say,
//! answers the broker (acknowledgements, keep-alive pings) unless told to stay silent, and
//! records every packet in and out, with its time, into the transcript.
//!
//! The agent runs as its own task (in the simulator: on its own host) and takes one
//! [`Command`] at a time; a command's reply is the [`Outcome`] of that step.

mod agent;
mod network;
#[cfg(test)]
mod tests;

pub use agent::Agent;
pub use network::Network;

use std::time::Duration;

use lastwill_broker::codec::{ConnAck, Disconnect, SubAck, UnsubAck};
use tokio::sync::oneshot;

use crate::scenario::Action;

/// One step for an agent, and where to send its outcome.
pub struct Command {
    pub action: Action,
    pub wait: Wait,
    pub reply: oneshot::Sender<Outcome>,
}

/// What a step waits for after its action, beyond the action's own response.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    /// Until the peer closes the connection.
    pub close: bool,
    /// Until the server sends DISCONNECT (or closes).
    pub disconnect: bool,
    /// The longest the step waits for anything.
    pub within: Duration,
}

/// What happened during one step.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub connack: Option<ConnAck>,
    pub suback: Option<SubAck>,
    pub unsuback: Option<UnsubAck>,
    /// Reason code of the PUBACK or PUBREC answering this step's PUBLISH.
    pub publish_ack: Option<u8>,
    pub disconnect: Option<Disconnect>,
    /// A PINGRESP answered this step's PINGREQ.
    pub pong: bool,
    /// The connection was closed by the peer (or was never open) when the step ended.
    pub closed: bool,
    /// Why the step could not do what it was asked.
    pub error: Option<StepError>,
    /// The step's response did not come within its time.
    pub timed_out: bool,
}

/// Why a step could not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// No agent plays the client (it is not declared, or its task ended).
    NotRunning { client: String },
    /// The connection could not be opened, with the network's reason.
    ConnectFailed(String),
    /// The step sends a packet and the client has no connection.
    NotConnected { packet: &'static str },
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::NotRunning { client } => write!(f, "client {client} is not running"),
            StepError::ConnectFailed(why) => write!(f, "connect failed: {why}"),
            StepError::NotConnected { packet } => write!(f, "cannot send {packet}: not connected"),
        }
    }
}
