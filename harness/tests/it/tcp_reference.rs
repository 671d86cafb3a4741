//! Interop check of the reference broker itself: the built `lastwill broker` binary, over real
//! TCP, must pass every scenario that passes in the simulator; scenarios only the simulator can
//! run are skipped with a reason.
//!
//! Each scenario gets a broker process configured as its `broker:` section says (the broker
//! starts in milliseconds), so scenarios run in parallel without sharing a broker, and
//! requirements such as credentials, which a CONNACK cannot show, are met by construction.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::reference_broker::ReferenceBroker;

use lastwill::runner::tcp::{Endpoint, Skip};
use lastwill::runner::{NotRun, Run, Target};
use lastwill::scenario::{self, Scenario};
use lastwill::verdict::Verdict;
use lastwill_broker::config::Overrides;

/// Scenarios running at once (each with its own broker process).
const PARALLEL: usize = 24;

fn start_broker(overrides: &Overrides, dir: &Path, name: &str) -> ReferenceBroker {
    let path = dir.join(format!("{name}.toml"));
    let toml = format!("listen = \"127.0.0.1:0\"\n{}", overrides.to_toml());
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(toml.as_bytes()))
        .unwrap();
    ReferenceBroker::start(
        &["--config", path.to_str().expect("UTF-8 temp path")],
        "warn",
        Stdio::null(),
    )
}

fn run_on_own_broker(scenario: &Scenario, index: usize, dir: &Path) -> Result<Run, NotRun> {
    let broker = start_broker(&scenario.broker, dir, &format!("broker-{index}"));
    let target = Endpoint::at("127.0.0.1", broker.port);
    // the probe needs the scenario's credentials; its clients bring their own (or none)
    let first = scenario.broker.credentials.iter().flatten().next();
    let prober = Endpoint {
        username: first.map(|c| c.username.clone()),
        password: first.map(|c| c.password.clone()),
        ..target.clone()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let capabilities = runtime
        .block_on(prober.probe())
        .expect("probe the reference broker");
    let target = Target::tcp(vec![target], capabilities, format!("{index}"));
    // The broker was configured from the scenario, so only simulator-only steps may skip it:
    // requirements a CONNACK cannot show (credentials, limits) hold by construction. The
    // announced ones stay: the CONNACK confirms them, and they tell the requirements that a
    // scenario sending a QoS 2 will to a Maximum QoS 1 broker does so on purpose.
    let mut unconstrained = scenario.clone();
    unconstrained.broker = Overrides::default();
    for (setting, value) in scenario.broker.iter() {
        if setting.announced_as.is_some() {
            setting
                .set(&mut unconstrained.broker, value)
                .expect("a value read from the scenario");
        }
    }
    target.run(&unconstrained, index, 0)
}

#[test]
fn reference_broker_over_tcp_passes_what_passes_in_the_simulator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let scenarios: Vec<Scenario> = scenario::discover(root.join("scenarios"))
        .iter()
        .map(|f| scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let dir = std::env::temp_dir().join(format!("lastwill-tcp-reference-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let simulator = Target::Simulator {
        seed: 1,
        tick: lastwill::runner::sim::TICK,
    };
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    let skipped = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                while let Some(scenario) = scenarios.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let index = scenarios
                        .iter()
                        .position(|s| s.file == scenario.file)
                        .unwrap();
                    let passes = |run: &Result<Run, NotRun>| {
                        run.as_ref().is_ok_and(|run| run.verdict == Verdict::Pass)
                    };
                    if !passes(&simulator.run(scenario, index, 0)) {
                        continue;
                    }
                    let tcp = run_on_own_broker(scenario, index, &dir);
                    match &tcp {
                        _ if passes(&tcp) => {}
                        // only what the simulator alone can do may be skipped (network
                        // faults, restarts; cluster scenarios, whose nodes it is all at once)
                        Err(NotRun::Skipped(
                            why @ (Skip::NetworkFaults { .. }
                            | Skip::BrokerRestart { .. }
                            | Skip::Placed { .. }),
                        )) => skipped
                            .lock()
                            .unwrap()
                            .push(format!("{}: {why}", scenario.file)),
                        Err(NotRun::Skipped(why)) => problems.lock().unwrap().push(format!(
                            "{} passes in the simulator but is skipped over TCP: {why}",
                            scenario.file
                        )),
                        Ok(run) => problems.lock().unwrap().push(format!(
                            "{} passes in the simulator but is {:?} over TCP\n{}",
                            scenario.file,
                            run.verdict,
                            run.render()
                        )),
                        Err(NotRun::Failed(why) | NotRun::Lost(why)) => {
                            problems.lock().unwrap().push(format!(
                                "{} passes in the simulator but cannot run over TCP: {why}",
                                scenario.file
                            ))
                        }
                    }
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let skipped = skipped.into_inner().unwrap();
    for skip in &skipped {
        eprintln!("skipped over TCP: {skip}");
    }
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
