//! The director: walks a scenario's steps in order, hands client actions to their agents,
//! waits, marks, and checks each step's inline expectations against its outcome. It is the
//! same on every runner; a runner supplies a [`Control`] for the scenario-level steps (broker
//! restart, network faults) and a [`Network`](crate::client::Network) for its clients.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::control_arm::{self, ControlArm, ControlClient};
use crate::client::{Command, Outcome, StepError, Wait};
use crate::scenario::{Action, DropMode, Level, Location, NetAction, Scenario, StepKind};
use crate::transcript::{EventKind, Recorder, seconds};
use crate::verdict::{self, Check, Marks, Scope};

/// Scenario-level steps a runner may or may not be able to perform.
pub trait Control {
    fn now(&self) -> Duration;

    /// Stops the broker gracefully and starts it again.
    fn restart_broker(&self) -> impl Future<Output = Result<(), String>>;

    fn net(&self, action: &NetAction) -> Result<(), String>;
}

/// What the director learned: the instants of marks, the checks of inline expectations, and
/// the checks of the control arm.
#[derive(Debug, Default)]
pub struct Direction {
    pub marks: Marks,
    pub checks: Vec<Check>,
    pub control_checks: Vec<Check>,
}

/// Runs the scenario's steps in order, with the control arm's clients around them (see
/// `control_arm`). `agents` holds the command channel of each client, the control clients'
/// included.
pub async fn direct(
    scenario: &Scenario,
    arm: &ControlArm,
    control: &impl Control,
    agents: &BTreeMap<String, mpsc::UnboundedSender<Command>>,
    recorder: &Recorder,
) -> Direction {
    let mut direction = Direction::default();
    // the controls connect alongside the first steps, not before them: the scenario's own
    // timing stays as written
    let mut control_connects = connect_controls(arm, agents);
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
                // the restart closed the controls' connections
                control_connects = connect_controls(arm, agents);
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
    direction.control_checks =
        prove_watchers(arm, control_connects, control, agents, recorder).await;
    recorder.record(control.now(), "", EventKind::End);
    direction
}

/// Sends every control client its CONNECT, without waiting: the outcomes are read at the end.
fn connect_controls(
    arm: &ControlArm,
    agents: &BTreeMap<String, mpsc::UnboundedSender<Command>>,
) -> Vec<oneshot::Receiver<Outcome>> {
    arm.clients
        .iter()
        .map(|c| {
            let wait = Wait {
                close: false,
                disconnect: false,
                within: crate::scenario::DEFAULT_WITHIN,
            };
            dispatch(
                agents,
                &c.spec.name,
                Action::Connect(Box::new(c.connect.clone())),
                wait,
            )
        })
        .collect()
}

/// The control arm's end: each control client connected is dropped by RST, and its will
/// must reach every one of its watchers within [`control_arm::WITHIN`]. One `must` check per
/// watcher, on its expectation block.
async fn prove_watchers(
    arm: &ControlArm,
    connects: Vec<oneshot::Receiver<Outcome>>,
    control: &impl Control,
    agents: &BTreeMap<String, mpsc::UnboundedSender<Command>>,
    recorder: &Recorder,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for (watcher, why) in &arm.unreachable {
        checks.push(control_check(
            watcher.location,
            format!("{} could receive a will", watcher.client),
            Some(format!(
                "control arm cannot run: {why}; its negative expectations prove nothing \
                 (a scenario that cannot show it says `control: false` and why)"
            )),
        ));
    }
    // the controls that connected, with the instant of their drop
    let mut dropped: Vec<(&ControlClient, std::time::Duration)> = Vec::new();
    for (client, connect) in arm.clients.iter().zip(connects) {
        let outcome = match connect.await {
            Ok(outcome) => outcome,
            Err(_) => Outcome {
                error: Some(StepError::NotRunning {
                    client: client.spec.name.clone(),
                }),
                ..Outcome::default()
            },
        };
        let accepted = outcome.error.is_none()
            && outcome
                .connack
                .as_ref()
                .is_some_and(|c| c.code.is_success());
        if !accepted {
            let why = match (&outcome.error, &outcome.connack) {
                (Some(error), _) => error.to_string(),
                (None, Some(connack)) => format!("CONNACK {}", connack.code),
                (None, None) => "no CONNACK".to_owned(),
            };
            for watcher in &client.watchers {
                checks.push(control_check(
                    watcher.location,
                    expected(&watcher.client, client),
                    Some(format!(
                        "control arm cannot run: {} could not connect: {why}",
                        client.spec.name
                    )),
                ));
            }
            continue;
        }
        let wait = Wait {
            close: false,
            disconnect: false,
            within: crate::scenario::DEFAULT_WITHIN,
        };
        run_action(agents, &client.spec.name, Action::Drop(DropMode::Rst), wait).await;
        dropped.push((client, control.now()));
    }
    // every watcher's first delivery of its control's will after the drop, polled for
    let arrival = |client: &ControlClient, watcher: &str, since| {
        recorder
            .transcript()
            .publishes(watcher)
            .find(|(at, p)| {
                *at >= since
                    && p.topic == client.topic()
                    && p.payload.as_ref() == control_arm::PAYLOAD
            })
            .map(|(at, _)| at)
    };
    let start = control.now();
    while control.now() < start + control_arm::WITHIN
        && !dropped.iter().all(|(client, since)| {
            client
                .watchers
                .iter()
                .all(|w| arrival(client, &w.client, *since).is_some())
        })
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for (client, since) in dropped {
        for watcher in &client.watchers {
            checks.push(match arrival(client, &watcher.client, since) {
                Some(at) => control_check(
                    watcher.location,
                    format!(
                        "control: {} received the will of {} at {}s, {}s after its drop (RST)",
                        watcher.client,
                        client.spec.name,
                        seconds(at),
                        seconds(at - since)
                    ),
                    None,
                ),
                None => control_check(
                    watcher.location,
                    expected(&watcher.client, client),
                    Some(format!(
                        "control failed: {} never received the will of a client dropped by RST \
                         (within {}s), so its negative expectations prove nothing",
                        watcher.client,
                        control_arm::WITHIN.as_secs()
                    )),
                ),
            });
        }
    }
    checks
}

fn expected(watcher: &str, client: &ControlClient) -> String {
    format!(
        "control: {watcher} receives the will of {} on {} when it is dropped by RST at the end",
        client.spec.name,
        client.topic()
    )
}

/// A control arm's check: `must`, about the whole run, failed when `failure` says why.
fn control_check(location: Location, expected: String, failure: Option<String>) -> Check {
    Check {
        level: Level::Must,
        passed: failure.is_none(),
        expected,
        observed: failure.unwrap_or_default(),
        location,
        scope: Scope::Run,
    }
}

/// Sends `client` its command; the receiver gets the outcome.
fn dispatch(
    agents: &BTreeMap<String, mpsc::UnboundedSender<Command>>,
    client: &str,
    action: Action,
    wait: Wait,
) -> oneshot::Receiver<Outcome> {
    let (reply, outcome) = oneshot::channel();
    if let Some(agent) = agents.get(client) {
        // a closed channel drops `reply`: the receiver then reads as not running
        let _ = agent.send(Command {
            action,
            wait,
            reply,
        });
    }
    outcome
}

async fn run_action(
    agents: &BTreeMap<String, mpsc::UnboundedSender<Command>>,
    client: &str,
    action: Action,
    wait: Wait,
) -> Outcome {
    match dispatch(agents, client, action, wait).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome {
            error: Some(StepError::NotRunning {
                client: client.to_owned(),
            }),
            ..Outcome::default()
        },
    }
}

fn cannot(location: Location, why: String) -> Check {
    Check {
        level: Level::Must,
        passed: false,
        expected: "the target can perform this step".into(),
        observed: why,
        location,
        scope: Scope::Step,
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
