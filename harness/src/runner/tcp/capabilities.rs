//! What a broker can do: the capabilities its CONNACK announces, and what a scenario
//! requires of it (steps only the simulator can perform, `broker:` settings).

use std::time::Duration;

use lastwill_broker::codec::{Connect, Packet, Protocol};
use lastwill_broker::config::Overrides;

use super::{Endpoint, requirements};
use crate::io_error;
use crate::link::Ended;
use crate::raw_connect;
use crate::scenario::{Action, Scenario, StepKind};

/// What the broker announced in the CONNACK of a plain v5 connection: the settings that a
/// CONNACK shows, as this one shows them (see [`Overrides::announced_in`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub announced: Overrides,
}

/// A client id for one of the harness's own connections (`lw-probe-PID-N`): unique per
/// connection, since connections of one process (a matrix, parallel scenarios' clean-ups)
/// may meet at the same broker, and a shared client id would make one take the other over;
/// short enough for the 23 characters every 3.1.1 broker must accept [MQTT-3.1.3-5].
pub(super) fn own_client_id(purpose: &str) -> String {
    static CONNECTIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("lw-{purpose}-{}-{n}", std::process::id())
}

impl Endpoint {
    /// Connects with MQTT 5 and reads the broker's capabilities from its CONNACK. Fails with a
    /// one-line reason when nothing listens or the peer does not speak MQTT.
    pub async fn probe(&self) -> Result<Capabilities, String> {
        let endpoint = format!("{self:?}");
        let client_id = own_client_id("probe");
        let mut probe = tokio::time::timeout(
            Duration::from_secs(5),
            self.connect(Connect::new(Protocol::V5, client_id)),
        )
        .await
        .map_err(|_| format!("{endpoint}: connection timed out"))?
        .map_err(|e| format!("{endpoint}: cannot connect: {}", io_error::describe(&e)))?;
        let reply = match probe.recv_within(Duration::from_secs(5)).await {
            Ok(Some(packet)) => packet,
            Ok(None) => {
                return Err(format!(
                    "{endpoint} sent no CONNACK within 5s: is it an MQTT 5 broker?"
                ));
            }
            Err(Ended::Closed) => {
                return Err(format!(
                    "{endpoint} closed the connection without a CONNACK"
                ));
            }
            Err(Ended::Failed(reason)) => {
                return Err(format!("{endpoint}: cannot connect: {reason}"));
            }
            Err(Ended::Undecodable(e)) => {
                return Err(format!(
                    "{endpoint} does not answer like an MQTT broker: {e}"
                ));
            }
        };
        let Packet::ConnAck(connack) = reply else {
            return Err(format!("{endpoint} answered CONNECT with {}", reply.name()));
        };
        if !connack.code.is_success() {
            return Err(format!(
                "{endpoint} refused the probe connection with CONNACK {}",
                connack.code
            ));
        }
        probe.goodbye(&[]).await;
        Ok(Capabilities {
            announced: Overrides::announced_in(&connack.properties),
        })
    }

    /// Why this broker cannot run `scenario`, if it cannot.
    pub fn skip_reason(&self, scenario: &Scenario, capabilities: &Capabilities) -> Option<Skip> {
        for step in &scenario.steps {
            let line = step.location.line;
            match &step.kind {
                StepKind::Net(_) => return Some(Skip::NetworkFaults { line }),
                StepKind::BrokerRestart if self.restart_cmd.is_none() => {
                    return Some(Skip::BrokerRestart { line });
                }
                StepKind::Client {
                    action: Action::Send(bytes),
                    ..
                } if self.username.as_ref().is_some_and(|user| {
                    raw_connect::with_credentials(bytes, user, self.password.as_deref()).is_none()
                }) =>
                {
                    return Some(Skip::Credentials { line });
                }
                _ => {}
            }
        }
        unmet_requirement(&scenario.broker, capabilities)
            .or_else(|| unmet_requirement(&requirements::implied(scenario), capabilities))
    }
}

/// Why a broker over TCP cannot run a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A `net:` step: only the simulator can fault the network.
    NetworkFaults { line: usize },
    /// A `broker: restart` step, and no command to restart the broker.
    BrokerRestart { line: usize },
    /// A raw CONNECT that `--username/--password` cannot be spliced into, on a target that
    /// needs them.
    Credentials { line: usize },
    /// A `broker:` setting that no CONNACK shows, so the broker cannot be seen to have it.
    Unconfirmable { setting: &'static str },
    /// A `broker:` setting the broker's CONNACK announces otherwise, both sides as people
    /// read them (`1`, `Maximum QoS 2`, `no Server Keep Alive`).
    Announced {
        setting: &'static str,
        wanted: String,
        announced: String,
    },
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NetworkFaults { line } => {
                write!(f, "line {line}: network faults (`net:`) need the simulator")
            }
            Skip::BrokerRestart { line } => {
                write!(f, "line {line}: `broker: restart` needs --restart-cmd")
            }
            Skip::Credentials { line } => write!(
                f,
                "line {line}: the raw CONNECT cannot take --username/--password (its bytes \
                 are not one well-formed CONNECT frame), and this target is run with them"
            ),
            Skip::Unconfirmable { setting } => write!(
                f,
                "needs broker setting `{setting}`, which a CONNACK cannot confirm"
            ),
            Skip::Announced {
                setting,
                wanted,
                announced,
            } => write!(
                f,
                "needs a broker with `{setting}: {wanted}`; this one announces {announced}"
            ),
        }
    }
}

/// The first `broker:` requirement that the broker's capabilities do not meet: first any
/// setting that no CONNACK shows, then any that this one shows otherwise.
fn unmet_requirement(wanted: &Overrides, has: &Capabilities) -> Option<Skip> {
    if let Some((setting, _)) = wanted.iter().find(|(s, _)| s.announced_as.is_none()) {
        return Some(Skip::Unconfirmable {
            setting: setting.key,
        });
    }
    wanted.iter().find_map(|(setting, value)| {
        let property = setting.announced_as?;
        let announced = setting.get(&has.announced);
        (announced.as_ref() != Some(&value)).then(|| Skip::Announced {
            setting: setting.key,
            wanted: setting.show(&value),
            announced: match announced {
                Some(shown) => format!("{property} {}", setting.show(&shown)),
                None => format!("no {property}"),
            },
        })
    })
}
