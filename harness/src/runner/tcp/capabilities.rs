//! What a broker can do: the capabilities its CONNACK announces, and what a scenario
//! requires of it (steps only the simulator can perform, `broker:` settings).

use std::time::Duration;

use bytes::BytesMut;
use lastwill_broker::codec::{self, ConnAck, ConnAckCode, Connect, Disconnect, Packet, Protocol};
use lastwill_broker::config::Overrides;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::connection::Stream;
use super::{Endpoint, requirements};
use crate::io_error;
use crate::link::Ended;
use crate::raw_connect;
use crate::scenario::{Action, Scenario, StepKind};

/// What a broker can do: which protocols it speaks, and what it announced in the CONNACK of
/// a plain v5 connection (the settings that a CONNACK shows, as this one shows them, see
/// [`Overrides::announced_in`]; none for a broker that speaks 3.1.1 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub announced: Overrides,
    /// The protocol the broker refuses, when it speaks only the other one.
    pub refused: Option<Refusal>,
}

impl Capabilities {
    /// The protocol the harness's own connections speak on this broker: MQTT 5 unless it
    /// refuses it.
    pub fn own_protocol(&self) -> Protocol {
        match &self.refused {
            Some(Refusal {
                protocol: Protocol::V5,
                ..
            }) => Protocol::V311,
            _ => Protocol::V5,
        }
    }
}

/// How a broker refused a protocol it does not speak, as its probe saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub protocol: Protocol,
    /// In words: `level 5 refused with 0x01`, `level 4 closed without a CONNACK`.
    pub how: String,
}

/// How long a probe waits for a connection, and then for its CONNACK.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// What a broker answered a probe CONNECT.
enum Hello {
    Accepted(ConnAck),
    /// It does not speak the CONNECT's protocol: how it said so.
    Refused(String),
}

fn encoded(packet: &Packet, protocol: Protocol) -> Result<BytesMut, String> {
    let mut bytes = BytesMut::new();
    codec::encode(packet, protocol, &mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The broker's first packet on `stream` within [`PROBE_LIMIT`] (`None`: nothing whole
/// came; a close, FIN or RST, is [`Ended::Closed`]), decoded as MQTT 5 or else as 3.1.1: a
/// broker that does not speak the probe's protocol answers in its own. A v5 CONNACK always
/// has a property length, so a 3.1.1 one (two bytes of body) never decodes as v5.
async fn first_packet(mut stream: Stream) -> Result<(Option<Packet>, Stream), Ended> {
    let mut incoming = BytesMut::with_capacity(256);
    let deadline = Instant::now() + PROBE_LIMIT;
    loop {
        let mut first_error = None;
        let mut incomplete = false;
        for protocol in [Protocol::V5, Protocol::V311] {
            match codec::decode(&mut incoming.clone(), Some(protocol), u32::MAX) {
                Ok(Some(packet)) => return Ok((Some(packet), stream)),
                Ok(None) => incomplete = true,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if !incomplete && let Some(e) = first_error {
            return Err(Ended::Undecodable(e));
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut incoming)).await {
            Err(_) => return Ok((None, stream)),
            Ok(Ok(0)) => return Err(Ended::Closed),
            Ok(Ok(_)) => {}
            // a broker that closes with the CONNECT partly unread resets the connection
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(Ended::Closed);
            }
            Ok(Err(e)) => return Err(Ended::Failed(io_error::describe(&e))),
        }
    }
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

/// How often a close without CONNACK must repeat before it counts as a refusal.
const PROBE_CLOSES: usize = 3;

const CLOSED_WITHOUT_CONNACK: &str = "closed without a CONNACK";

impl Endpoint {
    /// Connects with MQTT 5 and with MQTT 3.1.1 (each at its address) and reads the broker's
    /// capabilities from the CONNACKs. A protocol the broker refuses the way a broker that
    /// does not speak it does ([MQTT-3.1.2-2]: CONNACK return code 0x01 unacceptable protocol
    /// version, or v5's 0x84 unsupported protocol version, or a close without CONNACK) is
    /// recorded as refused; the broker must speak the other. Anything else fails, with a
    /// one-line reason naming the probe and what happened.
    pub async fn probe(&self) -> Result<Capabilities, String> {
        let v5 = self.settled_hello(Protocol::V5).await?;
        let v311 = self.settled_hello(Protocol::V311).await?;
        let endpoint = format!("{self:?}");
        match (v5, v311) {
            (Hello::Accepted(connack), v311) => Ok(Capabilities {
                announced: Overrides::announced_in(&connack.properties),
                refused: match v311 {
                    Hello::Accepted(_) => None,
                    Hello::Refused(how) => Some(Refusal {
                        protocol: Protocol::V311,
                        how,
                    }),
                },
            }),
            (Hello::Refused(how), Hello::Accepted(_)) => Ok(Capabilities {
                announced: Overrides::default(),
                refused: Some(Refusal {
                    protocol: Protocol::V5,
                    how,
                }),
            }),
            (Hello::Refused(v5), Hello::Refused(v311)) => Err(format!(
                "{endpoint} speaks neither MQTT 5 ({v5}) nor MQTT 3.1.1 ({v311})"
            )),
        }
    }

    /// [`Endpoint::hello`], asked again while the broker closes without a CONNACK, up to
    /// `PROBE_CLOSES` times: rumqttd 0.20's 3.1.1 port now and then closes a CONNECT it
    /// otherwise accepts, and one such close made an instance of a multi-instance target look
    /// as if it refused 3.1.1 (CI: "announces other capabilities than the first instance").
    /// A refusal with a CONNACK code is final at once.
    async fn settled_hello(&self, protocol: Protocol) -> Result<Hello, String> {
        let mut hello = self.hello(protocol).await?;
        for _ in 1..PROBE_CLOSES {
            match &hello {
                Hello::Refused(how) if how.ends_with(CLOSED_WITHOUT_CONNACK) => {
                    hello = self.hello(protocol).await?;
                }
                _ => break,
            }
        }
        Ok(hello)
    }

    /// One probe connection in `protocol`: whether the broker accepts it, refuses the
    /// protocol, or fails otherwise (the error, naming the step).
    async fn hello(&self, protocol: Protocol) -> Result<Hello, String> {
        let level = protocol.level();
        let at = self.url(protocol);
        let step = format!("{at}: the MQTT {protocol} probe");
        let connect = self.credentialed(Connect::new(protocol, own_client_id("probe")));
        let mut stream = tokio::time::timeout(PROBE_LIMIT, self.open(protocol))
            .await
            .map_err(|_| format!("{at}: connection timed out"))?
            .map_err(|e| format!("{at}: cannot connect: {}", io_error::describe(&e)))?;
        stream
            .write_all(&encoded(&Packet::Connect(connect), protocol)?)
            .await
            .map_err(|e| format!("{step}: cannot send CONNECT: {}", io_error::describe(&e)))?;
        let (answer, mut stream) = match first_packet(stream).await {
            Ok(answered) => answered,
            Err(Ended::Closed) => {
                return Ok(Hello::Refused(format!(
                    "level {level} {CLOSED_WITHOUT_CONNACK}"
                )));
            }
            Err(Ended::Failed(why)) => {
                // a TLS alert (no client certificate, say) comes with the first read
                return Err(format!("{at}: cannot connect: {why}"));
            }
            Err(Ended::Undecodable(e)) => {
                return Err(format!(
                    "{at} does not answer like an MQTT broker ({step} got neither MQTT 5 nor 3.1.1): {e}"
                ));
            }
        };
        let connack = match answer {
            Some(Packet::ConnAck(connack)) => connack,
            Some(other) => return Err(format!("{step}: CONNECT answered with {}", other.name())),
            None => {
                return Err(format!(
                    "{step}: no CONNACK within {}s",
                    PROBE_LIMIT.as_secs()
                ));
            }
        };
        let code = u8::from(connack.code);
        let answered_as = match connack.code {
            ConnAckCode::V5(_) => Protocol::V5,
            ConnAckCode::V311(_) => Protocol::V311,
        };
        if code == 0 && answered_as == protocol {
            let goodbye = encoded(&Packet::Disconnect(Disconnect::default()), protocol)?;
            let _ = stream.write_all(&goodbye).await;
            let _ = stream.shutdown().await;
            return Ok(Hello::Accepted(connack));
        }
        // [MQTT-3.1.2-2]: 3.1.1's 0x01 for a level it does not support; v5's 0x84
        let unsupported = match answered_as {
            Protocol::V311 => 0x01,
            Protocol::V5 => 0x84,
        };
        if code == unsupported {
            return Ok(Hello::Refused(format!(
                "level {level} refused with {code:#04x}"
            )));
        }
        Err(format!(
            "{step} was refused with the MQTT {answered_as} CONNACK code {code:#04x} ({})",
            connack.code
        ))
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
        if let Some(refused) = &capabilities.refused
            && scenario
                .clients
                .iter()
                .any(|c| c.protocol == refused.protocol)
        {
            return Some(Skip::Unspoken(refused.clone()));
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
    /// A `node:` step, and the target is a single broker.
    NotACluster { line: usize },
    /// A client placed with `node:` (a cluster scenario), and the target is a single broker.
    Placed { line: usize },
    /// A `node:` step on a cluster target without a command to kill and restart nodes.
    NodeCommand { line: usize },
    /// The scenario names node `named`; the cluster has `nodes`.
    TooFewNodes { named: usize, nodes: usize },
    /// A client speaks a protocol the broker refuses.
    Unspoken(Refusal),
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
            Skip::NotACluster { line } => write!(
                f,
                "line {line}: `node:` steps need a cluster target (cluster:mqtt://HOST:PORT,…); \
                 this is a single broker"
            ),
            Skip::Placed { line } => write!(
                f,
                "line {line}: a client placed with `node:` makes this a cluster scenario \
                 (cluster:mqtt://HOST:PORT,…); on a single broker it repeats the single-broker \
                 scenario it mirrors"
            ),
            Skip::NodeCommand { line } => {
                write!(f, "line {line}: `node:` steps need --node-cmd")
            }
            Skip::TooFewNodes { named, nodes } => {
                write!(f, "names node {named}; the cluster has {nodes}")
            }
            Skip::Unspoken(Refusal { protocol, how }) => {
                let only = match protocol {
                    Protocol::V5 => Protocol::V311,
                    Protocol::V311 => Protocol::V5,
                };
                write!(f, "the target speaks MQTT {only} only: {how}")
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What a fake broker answers a CONNECT of each level: the bytes (none: it closes).
    struct Answers {
        level_5: &'static [u8],
        level_4: &'static [u8],
    }

    /// Probes a fake broker on a loopback port that answers CONNECTs as `answers` says (and
    /// then waits for the probe to close).
    async fn probe(answers: Answers) -> Result<Capabilities, String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut connect = [0u8; 9];
                socket.read_exact(&mut connect).await.unwrap();
                // fixed header (2 bytes), protocol name "MQTT" (6), then the level
                let answer = if connect[8] == 5 {
                    answers.level_5
                } else {
                    answers.level_4
                };
                if answer.is_empty() {
                    continue;
                }
                socket.write_all(answer).await.unwrap();
                tokio::spawn(async move {
                    let mut rest = Vec::new();
                    let _ = socket.read_to_end(&mut rest).await;
                });
            }
        });
        Endpoint::at("127.0.0.1", port).probe().await
    }

    const ACCEPTED_311: &[u8] = &[0x20, 0x02, 0x00, 0x00];
    const ACCEPTED_5: &[u8] = &[0x20, 0x03, 0x00, 0x00, 0x00];

    fn refused(protocol: Protocol, how: &str) -> Option<Refusal> {
        Some(Refusal {
            protocol,
            how: how.to_owned(),
        })
    }

    #[tokio::test]
    async fn a_broker_refusing_level_5_with_0x01_speaks_311_only() {
        let capabilities = probe(Answers {
            level_5: &[0x20, 0x02, 0x00, 0x01],
            level_4: ACCEPTED_311,
        })
        .await
        .unwrap();
        assert_eq!(
            capabilities.refused,
            refused(Protocol::V5, "level 5 refused with 0x01")
        );
        assert_eq!(capabilities.own_protocol(), Protocol::V311);
        assert_eq!(
            Skip::Unspoken(capabilities.refused.unwrap()).to_string(),
            "the target speaks MQTT 3.1.1 only: level 5 refused with 0x01"
        );
    }

    #[tokio::test]
    async fn a_close_without_connack_refuses_the_level() {
        let capabilities = probe(Answers {
            level_5: &[],
            level_4: ACCEPTED_311,
        })
        .await
        .unwrap();
        assert_eq!(
            capabilities.refused,
            refused(Protocol::V5, "level 5 closed without a CONNACK")
        );
        let capabilities = probe(Answers {
            level_5: ACCEPTED_5,
            level_4: &[],
        })
        .await
        .unwrap();
        assert_eq!(
            capabilities.refused,
            refused(Protocol::V311, "level 4 closed without a CONNACK")
        );
        assert_eq!(capabilities.own_protocol(), Protocol::V5);
    }

    #[tokio::test]
    async fn a_broker_speaking_both_refuses_nothing() {
        let capabilities = probe(Answers {
            level_5: ACCEPTED_5,
            level_4: ACCEPTED_311,
        })
        .await
        .unwrap();
        assert_eq!(capabilities.refused, None);
    }

    #[tokio::test]
    async fn other_refusals_and_no_protocol_at_all_fail_the_probe_naming_the_step() {
        let error = probe(Answers {
            level_5: &[0x20, 0x02, 0x00, 0x05],
            level_4: ACCEPTED_311,
        })
        .await
        .unwrap_err();
        assert!(
            error.contains(": the MQTT 5 probe was refused with the MQTT 3.1.1 CONNACK code 0x05"),
            "{error}"
        );
        let error = probe(Answers {
            level_5: &[],
            level_4: &[],
        })
        .await
        .unwrap_err();
        assert!(
            error.ends_with(
                "speaks neither MQTT 5 (level 5 closed without a CONNACK) nor MQTT 3.1.1 \
                 (level 4 closed without a CONNACK)"
            ),
            "{error}"
        );
    }
}
