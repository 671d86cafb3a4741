//! The simulator runner: the reference broker and every scenario client in one turmoil
//! simulation, in virtual time.
//!
//! The broker is the host `broker`; each client is the host `client-NAME`, so faults are real
//! network faults between hosts (a vanished client is partitioned, and no FIN ever reaches
//! the broker). A `director` client host walks the steps. The simulation is stepped by hand
//! so that steps needing the `Sim` itself (link latency) can be applied between ticks.
//!
//! Determinism: fixed seed, fixed epoch, `biased;` selects and `--cfg tokio_unstable`; every
//! transcript time is `turmoil::sim_elapsed()`.

use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lastwill_broker::config::{Config, Overrides};
use lastwill_broker::driver::Server;
use tokio::sync::{Notify, mpsc};

use super::Run;
use super::control_arm::ControlArm;
use super::director::{Control, direct};
use crate::client::{Agent, Network};
use crate::scenario::{NetAction, Scenario};
use crate::transcript::Recorder;
use crate::verdict::Tolerance;

const BROKER: &str = "broker";
const PORT: u16 = 1883;

/// The reference broker's configuration for a scenario's `broker:` section.
pub fn broker_config(requested: &Overrides) -> Config {
    let mut config = Config::default();
    requested.apply(&mut config);
    config
}

/// How far virtual time moves in one simulation step: fine enough for millisecond
/// transcripts. Every step costs time for every host and link, so long runs with many clients
/// (generated histories) may take coarser steps.
pub const TICK: Duration = Duration::from_millis(1);

/// Runs one scenario on the simulator with `seed` (the scenario's own `seed:` wins).
pub fn run(scenario: &Scenario, seed: u64) -> Result<Run, String> {
    run_with_tick(scenario, seed, TICK)
}

/// [`run`], with virtual time advancing `tick` at a time.
pub fn run_with_tick(scenario: &Scenario, seed: u64, tick: Duration) -> Result<Run, String> {
    let seed = scenario.seed.unwrap_or(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        // every run ends by `longest()`, which parsing keeps within MAX_LENGTH; the margin
        // is for the agents' goodbyes after the last step
        .simulation_duration(scenario.longest() + Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .tcp_capacity(4096)
        .tick_duration(tick)
        .build();

    let config = broker_config(&scenario.broker);
    let restart = Arc::new(BrokerRestart::default());
    {
        let restart = Arc::clone(&restart);
        sim.host(BROKER, move || {
            let config = config.clone();
            let restart = Arc::clone(&restart);
            async move {
                loop {
                    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
                    restart.up.notify_waiters();
                    Server::new(config.clone())
                        .serve(listener, restart.down.notified())
                        .await;
                }
            }
        });
    }

    let arm = ControlArm::plan(scenario, None);
    let recorder = Recorder::default();
    let mut agents = BTreeMap::new();
    for spec in scenario
        .clients
        .iter()
        .chain(arm.clients.iter().map(|c| &c.spec))
    {
        let (tx, rx) = mpsc::unbounded_channel();
        agents.insert(spec.name.clone(), tx);
        let rx = Rc::new(std::cell::RefCell::new(Some(rx)));
        let agent = Agent::new(spec.clone(), SimNetwork, recorder.clone());
        let agent = Rc::new(std::cell::RefCell::new(Some(agent)));
        sim.host(host_name(&spec.name), move || {
            let agent = agent.borrow_mut().take();
            let rx = rx.borrow_mut().take();
            async move {
                if let (Some(agent), Some(rx)) = (agent, rx) {
                    agent.run(rx).await;
                }
                Ok(())
            }
        });
    }

    let latency_requests: LatencyRequests = Rc::default();
    let direction = Rc::new(std::cell::RefCell::new(None));
    {
        let scenario = scenario.clone();
        let arm = arm.clone();
        let recorder = recorder.clone();
        let direction = Rc::clone(&direction);
        let control = SimControl {
            restart: Arc::clone(&restart),
            latency: Rc::clone(&latency_requests),
            clients: scenario.clients.iter().map(|c| c.name.clone()).collect(),
        };
        sim.client("director", async move {
            let result = direct(&scenario, &arm, &control, &agents, &recorder).await;
            *direction.borrow_mut() = Some(result);
            Ok(())
        });
    }

    loop {
        let finished = sim.step().map_err(|e| format!("simulation failed: {e}"))?;
        for (clients, latency) in latency_requests.lock().expect("latency lock").drain(..) {
            match clients {
                None => {
                    for name in &scenario.clients {
                        sim.set_link_latency(host_name(&name.name), BROKER, latency);
                    }
                }
                Some(clients) => {
                    for name in clients {
                        sim.set_link_latency(host_name(&name), BROKER, latency);
                    }
                }
            }
        }
        if finished {
            break;
        }
    }

    let direction = direction
        .borrow_mut()
        .take()
        .ok_or("the director did not finish")?;
    let transcript = recorder.transcript();
    Ok(Run::judged(
        scenario,
        &arm,
        direction,
        transcript,
        Tolerance::SIMULATOR,
    ))
}

/// Link latency changes asked for by `net: {latency: ...}` (for some clients, or all), which
/// only the `Sim` itself can apply, between two steps.
type LatencyRequests = Rc<Mutex<Vec<(Option<Vec<String>>, Duration)>>>;

fn host_name(client: &str) -> String {
    format!("client-{client}")
}

/// Signals between the director and the broker host for `broker: restart`.
#[derive(Default)]
struct BrokerRestart {
    /// The broker should shut down gracefully.
    down: Notify,
    /// The broker is listening (again).
    up: Notify,
}

struct SimControl {
    restart: Arc<BrokerRestart>,
    latency: LatencyRequests,
    clients: Vec<String>,
}

impl Control for SimControl {
    fn now(&self) -> Duration {
        turmoil::sim_elapsed().unwrap_or_default()
    }

    async fn restart_broker(&self) -> Result<(), String> {
        self.restart.down.notify_one();
        self.restart.up.notified().await;
        Ok(())
    }

    fn net(&self, action: &NetAction) -> Result<(), String> {
        match action {
            NetAction::Partition(clients) => {
                for client in clients {
                    turmoil::partition(host_name(client), BROKER);
                }
            }
            NetAction::Heal(clients) => {
                for client in clients.as_ref().unwrap_or(&self.clients) {
                    turmoil::repair(host_name(client), BROKER);
                }
            }
            NetAction::Latency { clients, latency } => {
                self.latency
                    .lock()
                    .expect("latency lock")
                    .push((clients.clone(), *latency));
            }
        }
        Ok(())
    }
}

/// A client's view of the simulated network, used from inside its own host.
#[derive(Clone, Copy)]
struct SimNetwork;

impl Network for SimNetwork {
    type Stream = turmoil::net::TcpStream;

    fn now(&self) -> Duration {
        turmoil::sim_elapsed().unwrap_or_default()
    }

    async fn connect(&self, _client: &str) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect((BROKER, PORT)).await
    }

    fn reset(&self, stream: Self::Stream) {
        // turmoil has no RST: the broker sees the stream end, as it would see a reset
        drop(stream);
    }

    fn forget(&self, stream: Self::Stream) {
        // the client is partitioned: the FIN this sends is lost on the way
        drop(stream);
    }

    fn vanish(&self, client: &str) {
        turmoil::partition(host_name(client), BROKER);
    }

    fn reappear(&self, client: &str) {
        turmoil::repair(host_name(client), BROKER);
    }
}
