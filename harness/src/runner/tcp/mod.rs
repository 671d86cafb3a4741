//! The TCP runner: the same scenarios against any running broker, over real sockets and in
//! real time.
//!
//! - Faults map to their nearest real equivalent: `drop rst` sets `SO_LINGER 0` and closes
//!   (the kernel sends RST), `drop fin` shuts the write side down without DISCONNECT,
//!   `silence` stops sending (the client keeps reading), `vanish` stops sending and reading
//!   and keeps the socket open until the run ends, so no FIN or RST ever leaves.
//! - Steps only the simulator can do (`net:`) and `broker: restart` without a restart command
//!   skip the scenario, with the reason; so do `broker:` requirements the broker's CONNACK
//!   shows it does not meet.
//! - Every client id and topic gets a per-run prefix, so parallel and repeated runs never see
//!   each other; retained messages a run leaves under its prefix are cleared afterwards.
//! - Time windows are checked on the harness's monotonic clock, widened by a tolerance for
//!   brokers that tick once a second.
//! - A broker that stops answering ends the run within seconds (see [`Liveness`]).

mod capabilities;
mod cleanup;
mod connection;
mod control;
mod isolation;
mod liveness;
mod tls;

pub use capabilities::{Capabilities, Skip};
pub(crate) use connection::Stream;
pub use isolation::needs_exclusive_run;
pub use liveness::Liveness;
pub use tls::tls_connector;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Where and how to reach a broker over TCP (or TLS), and how to judge its timing.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<tokio_rustls::TlsConnector>>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A shell command that restarts the broker (enables `broker: restart`).
    pub restart_cmd: Option<String>,
    pub tolerance: Tolerance,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
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

/// Runs one scenario against the broker at `endpoint`, in real time, on the current thread. With a
/// `prefix`, its client ids and topics are moved under it; without one (an exclusive run, see
/// [`needs_exclusive_run`]) they are used as written. Stops as soon as `liveness` says the
/// broker is lost.
pub fn run(
    scenario: &Scenario,
    endpoint: &Endpoint,
    prefix: Option<&str>,
    liveness: &Arc<Liveness>,
) -> Result<Run, Unfinished> {
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
                endpoint: endpoint.clone(),
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
            liveness: Arc::clone(liveness),
        };
        let direction = direct(&scenario, &arm, &control, &agents, &recorder).await;
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
        end_sessions(endpoint, &scenario).await;
        clear_retained(endpoint, &filter, &transcript).await;
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
/// The clients' network: real sockets, opened afresh for every connection, watched for a
/// broker that went away.
struct TcpNetwork {
    endpoint: Endpoint,
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
        match self.endpoint.open().await {
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
