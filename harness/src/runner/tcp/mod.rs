//! The TCP runner: the same scenarios against any running broker, over real sockets and in
//! real time.
//!
//! - Faults map to their nearest real equivalent: `drop rst` sets `SO_LINGER 0` and closes
//!   (the kernel sends RST), `drop fin` shuts the write side down without DISCONNECT,
//!   `silence` stops sending (the client keeps reading), `vanish` stops sending and reading
//!   and keeps the socket open until the run ends, so no FIN or RST ever leaves.
//! - Steps only the simulator can do (`net:`) and `broker: restart` without a restart command
//!   skip the scenario, with the reason; so do `broker:` requirements the broker's CONNACK
//!   shows it does not meet, and the capabilities the scenario's own packets need (a
//!   wildcard filter, a shared subscription, a QoS 2 or retained will: see `requirements`).
//! - Every client id and topic gets a per-run prefix, so parallel and repeated runs never see
//!   each other; retained messages a run leaves under its prefix are cleared afterwards.
//! - Time windows are checked on the harness's monotonic clock, widened by a tolerance for
//!   brokers that tick once a second.
//! - A broker that stops answering ends the run within seconds (see [`Liveness`]).

mod capabilities;
mod cleanup;
mod cluster;
mod connection;
mod control;
mod isolation;
mod liveness;
mod requirements;
mod tls;

pub use capabilities::{Capabilities, Refusal, Skip};
pub use cleanup::CleanupFailures;
pub use cluster::{Cluster, placed_on_one_broker, skip_reason as cluster_skip_reason};
pub(crate) use connection::Stream;
pub use isolation::needs_exclusive_run;
pub use liveness::Liveness;
pub use tls::tls_connector;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lastwill_broker::codec::Protocol;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Run;
use super::control_arm::ControlArm;
use super::director::direct;
use crate::client::{Agent, Network};
use crate::scenario::Scenario;
use crate::transcript::Recorder;
use crate::verdict::Tolerance;
use cleanup::{clear_retained, end_sessions};
use control::TcpControl;
use isolation::{with_credentials, with_prefix};

/// Defaults for real brokers, which usually run their timers on one-second ticks.
pub const DEFAULT_TOLERANCE: Tolerance = Tolerance {
    early: Duration::from_millis(500),
    late: Duration::from_millis(1500),
};

/// One address a broker listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where and how to reach a broker instance over TCP (or TLS), and how to judge its timing.
#[derive(Clone)]
pub struct Endpoint {
    /// Where the instance serves MQTT: every protocol, or 3.1.1 only when `v5_address` is set.
    pub address: Address,
    /// Where it serves MQTT 5, for brokers that listen on a port per protocol (`?v5=`).
    pub v5_address: Option<Address>,
    /// The protocol of the harness's own connections (probe aside: clean-ups, liveness
    /// checks, will storms): MQTT 5 unless the probe found the broker refuses it.
    pub own_protocol: Protocol,
    pub tls: Option<Arc<tokio_rustls::TlsConnector>>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A shell command that restarts the broker (enables `broker: restart`).
    pub restart_cmd: Option<String>,
    pub tolerance: Tolerance,
}

impl Endpoint {
    /// A plain-TCP instance at `host:port` for every protocol: no credentials, no restart
    /// command, the default tolerance.
    pub fn at(host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint {
            address: Address {
                host: host.into(),
                port,
            },
            v5_address: None,
            own_protocol: Protocol::V5,
            tls: None,
            username: None,
            password: None,
            restart_cmd: None,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Where the instance serves `protocol`.
    pub fn address(&self, protocol: Protocol) -> &Address {
        match (protocol, &self.v5_address) {
            (Protocol::V5, Some(v5)) => v5,
            _ => &self.address,
        }
    }
}

impl Endpoint {
    /// The URL of the instance's address for `protocol`, as errors name it.
    pub fn url(&self, protocol: Protocol) -> String {
        format!("{}://{}", self.scheme(), self.address(protocol))
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "mqtts" } else { "mqtt" }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.address)?;
        if let Some(v5) = &self.v5_address {
            write!(f, "?v5={v5}")?;
        }
        Ok(())
    }
}

/// How one scenario run on a broker over TCP ended without a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unfinished {
    /// It could not start (no runtime).
    Failed(String),
    /// The broker stopped answering while it ran: why, naming the broker.
    Lost(String),
}

/// Runs one scenario against the broker at `nodes` (one endpoint, or the nodes of a
/// `cluster`, each client on its node, see [`Cluster`]), in real time, on the current thread.
/// With a `prefix`, its client ids and topics are moved under it; without one (an exclusive
/// run, see [`needs_exclusive_run`]) they are used as written. Stops as soon as `liveness`
/// says the broker is lost. A clean-up afterwards that fails is noted in `cleanups`.
pub fn run(
    scenario: &Scenario,
    nodes: &[Endpoint],
    cluster: Option<&Cluster>,
    prefix: Option<&str>,
    liveness: &Arc<Liveness>,
    cleanups: &CleanupFailures,
) -> Result<Run, Unfinished> {
    let Some(endpoint) = nodes.first() else {
        return Err(Unfinished::Failed("no broker address".into()));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Unfinished::Failed(format!("cannot start a runtime: {e}")))?;
    let local = tokio::task::LocalSet::new();
    let mut scenario = match prefix {
        Some(prefix) => with_prefix(scenario, prefix),
        None => scenario.clone(),
    };
    with_credentials(&mut scenario, endpoint);
    let arm = ControlArm::plan(&scenario, prefix);
    let played = async {
        let start = Instant::now();
        let graveyard = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder::default();
        let placement = cluster::placement(&scenario, nodes.len());
        let mut agents = BTreeMap::new();
        let mut tasks = Vec::new();
        for spec in scenario
            .clients
            .iter()
            .chain(arm.clients.iter().map(|c| &c.spec))
        {
            let (tx, rx) = mpsc::unbounded_channel();
            agents.insert(spec.name.clone(), tx);
            let network = TcpNetwork {
                // the control arm's clients are not the scenario's: they go to the first node
                endpoint: nodes[placement.get(&spec.name).copied().unwrap_or(0)].clone(),
                protocol: spec.protocol,
                start,
                graveyard: Arc::clone(&graveyard),
                liveness: Arc::clone(liveness),
            };
            let agent = Agent::new(spec.clone(), network, recorder.clone());
            tasks.push(tokio::task::spawn_local(agent.run(rx)));
        }
        let control = TcpControl {
            start,
            endpoint: endpoint.clone(),
            nodes: nodes.to_vec(),
            node_cmd: cluster.and_then(|c| c.node_cmd.clone()),
            down: Mutex::default(),
            liveness: Arc::clone(liveness),
        };
        let direction = direct(&scenario, &arm, &control, &agents, &recorder).await;
        // nodes the run killed come back before the next run; the clean-up goes through a
        // node that is up (node 1 unless it stayed down)
        control.revive().await;
        let endpoint = control.live_node().clone();
        drop(control);
        let endpoint = &endpoint;
        drop(agents);
        for task in tasks {
            let _ = task.await;
        }
        graveyard.lock().expect("graveyard lock").clear();
        let transcript = recorder.transcript();
        let filter = match prefix {
            Some(prefix) => format!("{prefix}/#"),
            None => "#".to_owned(),
        };
        let cleaned = match end_sessions(endpoint, &scenario).await {
            Ok(()) => clear_retained(endpoint, &filter, &transcript).await,
            Err(why) => Err(why),
        };
        if let Err(why) = cleaned {
            cleanups.record(&scenario, &filter, &why);
        }
        (direction, transcript)
    };
    let (direction, transcript) = local.block_on(&runtime, async {
        tokio::select! {
            biased;
            why = liveness.until_lost() => Err(Unfinished::Lost(why)),
            played = played => Ok(played),
        }
    })?;
    Ok(Run::judged(
        &scenario,
        &arm,
        direction,
        transcript,
        endpoint.tolerance,
    ))
}

#[derive(Clone)]
/// A client's network: real sockets to the broker's address for the client's protocol,
/// opened afresh for every connection, watched for a broker that went away.
struct TcpNetwork {
    endpoint: Endpoint,
    /// The client's protocol: its connections go to the broker's address for it.
    protocol: Protocol,
    start: Instant,
    /// Streams of vanished clients: open and untouched until the run ends.
    graveyard: Arc<Mutex<Vec<Stream>>>,
    liveness: Arc<Liveness>,
}

impl Network for TcpNetwork {
    type Stream = liveness::Watched;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn connect(&self, _client: &str) -> io::Result<Self::Stream> {
        match self.endpoint.open(self.protocol).await {
            Ok(stream) => Ok(liveness::Watched {
                stream,
                liveness: Arc::clone(&self.liveness),
            }),
            Err(error) => {
                self.liveness.suspect();
                Err(error)
            }
        }
    }

    fn reset(&self, stream: Self::Stream) {
        stream.stream.reset();
    }

    fn forget(&self, stream: Self::Stream) {
        self.graveyard
            .lock()
            .expect("graveyard lock")
            .push(stream.stream);
    }

    fn vanish(&self, _client: &str) {}

    fn reappear(&self, _client: &str) {}
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A broker that accepts every CONNECT (v5 CONNACK 0x00) and then ignores everything the
    /// client sends: SUBSCRIBE included, so no clean-up can see what is retained.
    fn deaf_broker() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        if matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {
                            let _ = socket.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).await;
                            while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                        }
                    });
                }
            });
        });
        port
    }

    #[test]
    fn a_failed_cleanup_is_recorded_naming_the_scenario_its_topics_and_the_step() {
        let scenario = crate::scenario::parse(
            "name: idle\nclients:\n  a: {}\nsteps:\n  - a: connect\n",
            "scenarios/idle.yaml",
        )
        .unwrap();
        let endpoint = Endpoint::at("127.0.0.1", deaf_broker());
        let cleanups = CleanupFailures::default();
        let liveness = Arc::default();
        let run = run(
            &scenario,
            std::slice::from_ref(&endpoint),
            None,
            Some("lwtests0"),
            &liveness,
            &cleanups,
        )
        .unwrap();
        assert_eq!(
            run.verdict,
            crate::verdict::Verdict::Pass,
            "{}",
            run.render()
        );
        assert_eq!(
            cleanups.lines(),
            [
                "scenarios/idle.yaml: clean-up of lwtests0/# failed: SUBSCRIBE lwtests0/#: no \
              SUBACK within 2s; its retained messages or sessions may be left on the broker"
            ]
        );
    }
}
