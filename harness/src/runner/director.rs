//! The director: walks a scenario's steps in order, hands client actions to their agents,
//! waits, marks, and checks each step's inline expectations against its outcome. It is the
//! same on every runner; a runner supplies a [`Control`] for the scenario-level steps (broker
//! restart, network faults) and a [`Network`](crate::client::Network) for its clients.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::client::{Command, Outcome, StepError, Wait};
use crate::scenario::{Action, NetAction, NodeAction, Scenario, StepKind};
use crate::transcript::{EventKind, Recorder};
use crate::verdict::{self, Check, Marks};

/// Scenario-level steps a runner may or may not be able to perform.
pub trait Control {
    fn now(&self) -> Duration;

    /// Stops the broker gracefully and starts it again.
    fn restart_broker(&self) -> impl Future<Output = Result<(), String>>;

    fn net(&self, action: &NetAction) -> Result<(), String>;

    /// Kills or restarts one node of a cluster.
    fn node(&self, action: NodeAction) -> impl Future<Output = Result<(), String>>;
}

/// What the director learned: the instants of marks and the checks of inline expectations.
#[derive(Debug, Default)]
pub struct Direction {
    pub marks: Marks,
    pub checks: Vec<Check>,
}

/// Runs the scenario's steps in order. `agents` holds the command channel of each client.
pub async fn direct(
    scenario: &Scenario,
    control: &impl Control,
    agents: &BTreeMap<String, mpsc::UnboundedSender<Command>>,
    recorder: &Recorder,
) -> Direction {
    let mut direction = Direction::default();
    for step in &scenario.steps {
        if let Some(at) = &step.at
            && let Some(at) = verdict::resolve(at, &direction.marks)
        {
            let now = control.now();
            if at > now {
                tokio::time::sleep(at - now).await;
            }
        }
        let client = match &step.kind {
            StepKind::Client { client, action } => {
                let wait = Wait {
                    close: step.expect.iter().any(|e| e.closed == Some(true)),
                    disconnect: step.expect.iter().any(|e| e.disconnect.is_some()),
                    within: step.within(),
                };
                let outcome = run_action(agents, client, action.clone(), wait).await;
                let checks = verdict::step_checks(step, &outcome, scenario.level);
                for failed in checks.iter().filter(|c| !c.passed) {
                    recorder.record(
                        control.now(),
                        client,
                        EventKind::Check(format!(
                            "expected {}; observed {}",
                            failed.expected, failed.observed
                        )),
                    );
                }
                direction.checks.extend(checks);
                Some(client.as_str())
            }
            StepKind::Wait(duration) => {
                tokio::time::sleep(*duration).await;
                None
            }
            StepKind::Mark => None,
            StepKind::BrokerRestart => {
                recorder.record(control.now(), "", EventKind::Step("broker restart".into()));
                if let Err(why) = control.restart_broker().await {
                    direction.checks.push(cannot(step.location, why));
                }
                None
            }
            StepKind::Node(action) => {
                let what = format!("node {} {}", action.verb(), action.node());
                recorder.record(control.now(), "", EventKind::Step(what));
                if let Err(why) = control.node(*action).await {
                    direction.checks.push(cannot(step.location, why));
                }
                None
            }
            StepKind::Net(actions) => {
                for action in actions {
                    recorder.record(
                        control.now(),
                        "",
                        EventKind::Step(format!("net {}", describe_net(action))),
                    );
                    if let Err(why) = control.net(action) {
                        direction.checks.push(cannot(step.location, why));
                    }
                }
                None
            }
        };
        if let Some(mark) = &step.mark {
            let now = control.now();
            direction.marks.insert(mark.clone(), now);
            recorder.mark(now, client, mark);
        }
    }
    if let Some(duration) = scenario.duration {
        let now = control.now();
        if duration > now {
            tokio::time::sleep(duration - now).await;
        }
    }
    recorder.record(control.now(), "", EventKind::End);
    direction
}

async fn run_action(
    agents: &BTreeMap<String, mpsc::UnboundedSender<Command>>,
    client: &str,
    action: Action,
    wait: Wait,
) -> Outcome {
    let (reply, outcome) = oneshot::channel();
    let sent = agents.get(client).is_some_and(|agent| {
        agent
            .send(Command {
                action,
                wait,
                reply,
            })
            .is_ok()
    });
    match (sent, outcome.await) {
        (true, Ok(outcome)) => outcome,
        _ => Outcome {
            error: Some(StepError::NotRunning {
                client: client.to_owned(),
            }),
            ..Outcome::default()
        },
    }
}

fn cannot(location: crate::scenario::Location, why: String) -> Check {
    Check {
        level: crate::scenario::Level::Must,
        passed: false,
        expected: "the target can perform this step".into(),
        observed: why,
        location,
        scope: verdict::Scope::Step,
    }
}

fn describe_net(action: &NetAction) -> String {
    match action {
        NetAction::Partition(clients) => format!("partition [{}]", clients.join(", ")),
        NetAction::Heal(None) => "heal all".into(),
        NetAction::Heal(Some(clients)) => format!("heal [{}]", clients.join(", ")),
        NetAction::Latency {
            clients: None,
            latency,
        } => format!("latency {}ms", latency.as_millis()),
        NetAction::Latency {
            clients: Some(clients),
            latency,
        } => format!("latency {}ms [{}]", latency.as_millis(), clients.join(", ")),
    }
}
