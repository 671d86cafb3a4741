//! What a broker can do: the capabilities its CONNACK announces, and what a scenario
//! requires of it (steps only the simulator can perform, `broker:` settings).

use std::time::Duration;

use lastwill_broker::codec::{Connect, Packet, Protocol, QoS};

use super::Endpoint;
use crate::link::Ended;
use crate::scenario::{BrokerConfig, Scenario, StepKind};

/// What the broker announced in the CONNACK of a plain v5 connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub maximum_qos: QoS,
    pub retain_available: bool,
    pub maximum_packet_size: Option<u32>,
    pub server_keep_alive: Option<u16>,
    pub topic_alias_maximum: u16,
    pub receive_maximum: u16,
    pub wildcard_subscriptions: bool,
    pub subscription_identifiers: bool,
    pub shared_subscriptions: bool,
}

impl Endpoint {
    /// Connects with MQTT 5 and reads the broker's capabilities from its CONNACK. Fails with a
    /// one-line reason when nothing listens or the peer does not speak MQTT.
    pub async fn probe(&self) -> Result<Capabilities, String> {
        let endpoint = format!("{self:?}");
        // Unique per probe: probes of one process (a matrix, parallel tests) may meet at the
        // same broker, and a shared client id would make one take the other over.
        static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let client_id = format!("lastwill-probe-{}-{n}", std::process::id());
        let mut probe = tokio::time::timeout(
            Duration::from_secs(5),
            self.connect(Connect::new(Protocol::V5, client_id)),
        )
        .await
        .map_err(|_| format!("{endpoint}: connection timed out"))?
        .map_err(|e| format!("{endpoint}: cannot connect: {e}"))?;
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
        let p = connack.properties;
        Ok(Capabilities {
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available.unwrap_or(true),
            maximum_packet_size: p.maximum_packet_size,
            server_keep_alive: p.server_keep_alive,
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX),
            wildcard_subscriptions: p.wildcard_subscription_available.unwrap_or(true),
            subscription_identifiers: p.subscription_identifiers_available.unwrap_or(true),
            shared_subscriptions: p.shared_subscription_available.unwrap_or(true),
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
                _ => {}
            }
        }
        unmet_requirement(&scenario.broker, capabilities)
    }
}

/// Why a broker over TCP cannot run a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A `net:` step: only the simulator can fault the network.
    NetworkFaults { line: usize },
    /// A `broker: restart` step, and no command to restart the broker.
    BrokerRestart { line: usize },
    /// A `broker:` setting that no CONNACK shows, so the broker cannot be seen to have it.
    Unconfirmable { setting: &'static str },
    /// A `broker:` setting the broker's CONNACK announces otherwise (values as `Debug`).
    Announced {
        setting: &'static str,
        wanted: String,
        has: String,
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
            Skip::Unconfirmable { setting } => write!(
                f,
                "needs broker setting `{setting}`, which a CONNACK cannot confirm"
            ),
            Skip::Announced {
                setting,
                wanted,
                has,
            } => write!(
                f,
                "needs a broker with {setting} {wanted}; this one announces {has}"
            ),
        }
    }
}

/// The first `broker:` requirement that the broker's capabilities do not meet.
fn unmet_requirement(wanted: &BrokerConfig, has: &Capabilities) -> Option<Skip> {
    fn differs<T: PartialEq + std::fmt::Debug>(
        setting: &'static str,
        wanted: Option<T>,
        has: T,
    ) -> Option<Skip> {
        let wanted = wanted?;
        (wanted != has).then(|| Skip::Announced {
            setting,
            wanted: format!("{wanted:?}"),
            has: format!("{has:?}"),
        })
    }
    let unverifiable = [
        ("max_session_expiry", wanted.max_session_expiry.is_some()),
        ("max_queued_messages", wanted.max_queued_messages.is_some()),
        ("max_connections", wanted.max_connections.is_some()),
        ("connect_timeout", wanted.connect_timeout.is_some()),
        ("credentials", wanted.credentials.is_some()),
    ];
    if let Some(&(setting, _)) = unverifiable.iter().find(|(_, set)| *set) {
        return Some(Skip::Unconfirmable { setting });
    }
    differs("max_qos", wanted.max_qos, has.maximum_qos)
        .or_else(|| {
            differs(
                "retain_available",
                wanted.retain_available,
                has.retain_available,
            )
        })
        .or_else(|| {
            differs(
                "max_packet_size",
                wanted.max_packet_size.map(Some),
                has.maximum_packet_size,
            )
        })
        .or_else(|| {
            differs(
                "server_keep_alive",
                wanted.server_keep_alive.map(Some),
                has.server_keep_alive,
            )
        })
        .or_else(|| {
            differs(
                "topic_alias_maximum",
                wanted.topic_alias_maximum,
                has.topic_alias_maximum,
            )
        })
        .or_else(|| {
            differs(
                "receive_maximum",
                wanted.receive_maximum,
                has.receive_maximum,
            )
        })
        .or_else(|| {
            differs(
                "wildcard_subscriptions",
                wanted.wildcard_subscriptions,
                has.wildcard_subscriptions,
            )
        })
        .or_else(|| {
            differs(
                "subscription_identifiers",
                wanted.subscription_identifiers,
                has.subscription_identifiers,
            )
        })
        .or_else(|| {
            differs(
                "shared_subscriptions",
                wanted.shared_subscriptions,
                has.shared_subscriptions,
            )
        })
}
