//! Control arms: a negative expectation (`receives: nothing`, a matcher with `count: 0`) is
//! only worth something if its watcher could have received a will at all. A broker that
//! publishes no wills passes every negative scenario; the control arm catches it in the same
//! run.
//!
//! For every watcher of a negative expectation the runner adds a control client (not written
//! in the scenario): it connects when the run starts, in the scenario's protocol, with a QoS 0,
//! non-retained will carrying [`PAYLOAD`] on a concrete topic that one of the watcher's
//! subscriptions matches at the end of the run; when the scenario's steps (and `duration:`)
//! are over it is dropped by RST, and its will must reach the watcher within [`WITHIN`] — a
//! `must` check on the watcher's expectation block. The scenario's own expectations are judged
//! on the transcript without the control's will (see [`ControlArm::without_controls`]), so the
//! control changes nothing else they see.
//!
//! Which subscription is live at the end is read from the steps: a watcher that ends
//! disconnected, dropped, vanished, silenced, partitioned, taken over, closed by the server,
//! or with no subscription left cannot show anything, and the run fails that watcher's control
//! unless the scenario opts out with `control: false` and says why.

use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{Connect, LastWill, MessageProperties, Packet, Protocol, QoS};

use crate::scenario::{
    Action, ClientExpectation, ClientSpec, Location, NetAction, Receives, Scenario, StepKind,
};
use crate::transcript::{EventKind, Transcript};

/// The control will's payload: no scenario sends it, so it marks the control's message.
pub const PAYLOAD: &[u8] = b"lastwill control arm";

/// How long after the control's drop its will may take to reach the watchers.
pub const WITHIN: Duration = Duration::from_secs(3);

/// What a run adds to prove its negative expectations: control clients, and the watchers no
/// control can reach.
#[derive(Clone, Debug, Default)]
pub struct ControlArm {
    pub clients: Vec<ControlClient>,
    /// Watchers with a negative expectation that no control can reach, and why.
    pub unreachable: Vec<(Watcher, String)>,
}

/// One control client: its will's topic is matched by each of its watchers' subscriptions.
#[derive(Clone, Debug)]
pub struct ControlClient {
    pub spec: ClientSpec,
    pub connect: Connect,
    pub watchers: Vec<Watcher>,
}

impl ControlClient {
    pub fn topic(&self) -> &str {
        self.connect.will.as_ref().map_or("", |w| w.topic.as_str())
    }
}

/// A client whose final expectations include a negative one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watcher {
    pub client: String,
    /// The expectation block holding the negative expectation.
    pub location: Location,
}

impl ControlArm {
    /// The control arm of `scenario` as the runner runs it (topics and client ids already
    /// under the run's isolation `prefix`, if any, which the control's client id then takes
    /// too). Empty when the scenario opts out or expects nothing negative.
    pub fn plan(scenario: &Scenario, prefix: Option<&str>) -> ControlArm {
        let mut arm = ControlArm::default();
        if !scenario.control {
            return arm;
        }
        let mut watchers: Vec<Watcher> = Vec::new();
        // a client that never subscribes has nothing a will could reach: its `receives:
        // nothing` is about unsolicited PUBLISHes, and no control could make it see one
        let subscribes = |client: &str| {
            scenario.steps.iter().any(|s| {
                matches!(&s.kind, StepKind::Client { client: c, action: Action::Subscribe(_) } if c == client)
            })
        };
        for block in scenario
            .expect
            .iter()
            .filter(|b| is_negative(b) && subscribes(&b.client))
        {
            if !watchers.iter().any(|w| w.client == block.client) {
                watchers.push(Watcher {
                    client: block.client.clone(),
                    location: block.location,
                });
            }
        }
        for watcher in watchers {
            let end = match subscription_at_end(scenario, &watcher.client) {
                Ok(end) => end,
                Err(why) => {
                    arm.unreachable.push((watcher, why));
                    continue;
                }
            };
            let topic = concrete_topic(&end.filter);
            match arm.clients.iter_mut().find(|c| c.topic() == topic) {
                Some(control) => control.watchers.push(watcher),
                None => {
                    let name = free_name(scenario, arm.clients.len());
                    let client_id = match prefix {
                        Some(prefix) => format!("{prefix}-lastwill-{name}"),
                        None => format!("lastwill-{name}"),
                    };
                    let mut connect = Connect::new(scenario.protocol, client_id.clone());
                    // a broker that asks for credentials gets the watcher's own
                    connect.username = end.username;
                    connect.password = end.password;
                    connect.will = Some(LastWill {
                        topic,
                        payload: Bytes::from_static(PAYLOAD),
                        // QoS 0, no retain, no delay: valid whatever the `broker:` section
                        // takes away (Maximum QoS, Retain Available)
                        qos: QoS::AtMostOnce,
                        retain: false,
                        delay_interval: None,
                        properties: MessageProperties::default(),
                    });
                    arm.clients.push(ControlClient {
                        spec: ClientSpec {
                            name,
                            client_id,
                            protocol: scenario.protocol,
                            auto_ack: true,
                            keep_alive_pings: true,
                            location: Location::default(),
                        },
                        connect,
                        watchers: vec![watcher],
                    });
                }
            }
        }
        arm
    }

    /// The transcript as the scenario's own expectations judge it: every delivery of a control
    /// will (its topic and [`PAYLOAD`]) left out, and nothing else.
    pub fn without_controls(&self, transcript: &Transcript) -> Transcript {
        if self.clients.is_empty() {
            return transcript.clone();
        }
        let mut own = transcript.clone();
        own.events.retain(|e| match &e.kind {
            EventKind::Received(Packet::Publish(p)) => !self
                .clients
                .iter()
                .any(|c| p.topic == c.topic() && p.payload.as_ref() == PAYLOAD),
            _ => true,
        });
        own
    }
}

/// Whether the block expects its client to receive nothing, or none of some message.
fn is_negative(block: &ClientExpectation) -> bool {
    match &block.receives {
        Some(Receives::Nothing) => true,
        Some(Receives::Messages(matchers)) => matchers.iter().any(|m| m.count.max == 0),
        None => false,
    }
}

/// `control`, or `control-2`, ... : the `index`th control's name, unused by the scenario.
fn free_name(scenario: &Scenario, index: usize) -> String {
    (index + 1..)
        .map(|n| match n {
            1 => "control".to_owned(),
            n => format!("control-{n}"),
        })
        .find(|name| scenario.client(name).is_none())
        .expect("an unused name")
}

/// A topic that `filter` matches: each wildcard level becomes `control`.
fn concrete_topic(filter: &str) -> String {
    filter
        .split('/')
        .map(|level| match level {
            "+" | "#" => "control",
            level => level,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A watcher's state at the end of the run, as far as its steps tell.
struct End {
    /// A subscription it still holds.
    filter: String,
    username: Option<String>,
    password: Option<Bytes>,
}

/// The first of the watcher's subscriptions still live when the steps are over, with the
/// credentials it connected with; or why it has none then.
fn subscription_at_end(scenario: &Scenario, watcher: &str) -> Result<End, String> {
    let mut filters: Vec<String> = Vec::new();
    // why the watcher is not connected (`None`: it is)
    let mut away = Some("it never connects".to_owned());
    let mut credentials = (None, None);
    let mut client_id = None;
    // whether the session outlives the connection: 3.1.1 Clean Session 0, v5 Session Expiry > 0
    let mut persistent = false;
    for step in &scenario.steps {
        let line = step.location.line;
        let (client, action) = match &step.kind {
            StepKind::Client { client, action } => (client, action),
            StepKind::BrokerRestart => {
                // sessions in memory are lost with the connections
                filters.clear();
                away = Some(format!("the broker restarts at line {line}"));
                continue;
            }
            StepKind::Net(actions) => {
                if actions.iter().any(
                    |a| matches!(a, NetAction::Partition(clients) if clients.iter().any(|c| c == watcher)),
                ) {
                    away = Some(format!("it is partitioned from the broker at line {line}"));
                }
                continue;
            }
            StepKind::Wait(_) | StepKind::Mark => continue,
        };
        if client != watcher {
            if let Action::Connect(connect) = action
                && client_id.as_deref() == Some(connect.client_id.as_str())
            {
                away = Some(format!("{client} takes its client id over at line {line}"));
            }
            continue;
        }
        let refused = step.expect.iter().any(|e| {
            e.refused == Some(true)
                || e.no_connack == Some(true)
                || e.reason.is_some_and(|r| r != 0)
        });
        match action {
            Action::Connect(connect) => {
                if refused {
                    away = Some(format!("its connect at line {line} is refused"));
                    continue;
                }
                if connect.clean_start || !persistent {
                    filters.clear();
                }
                persistent = match connect.protocol {
                    Protocol::V311 => !connect.clean_start,
                    Protocol::V5 => connect.session_expiry_interval.unwrap_or(0) > 0,
                };
                away = None;
                client_id = Some(connect.client_id.clone());
                credentials = (connect.username.clone(), connect.password.clone());
            }
            Action::Subscribe(spec) => {
                let granted = step.expect.iter().find_map(|e| e.granted.as_ref());
                for (i, request) in spec.filters.iter().enumerate() {
                    // a refused subscription (SUBACK >= 0x80) holds nothing
                    if granted
                        .and_then(|codes| codes.get(i))
                        .is_some_and(|&c| c >= 0x80)
                    {
                        continue;
                    }
                    filters.push(request.filter.clone());
                }
            }
            Action::Unsubscribe(spec) => filters.retain(|f| !spec.filters.contains(f)),
            Action::Disconnect(disconnect) => {
                if let Some(expiry) = disconnect.session_expiry_interval {
                    persistent = expiry > 0;
                }
                away = Some(format!("it disconnects at line {line}"));
            }
            Action::Drop(mode) => {
                away = Some(format!("it is dropped ({}) at line {line}", mode.as_str()))
            }
            Action::Vanish => away = Some(format!("it vanishes at line {line}")),
            Action::Silence => {
                away = Some(format!(
                    "it falls silent at line {line} (the broker may close it)"
                ))
            }
            Action::Send(_) => {
                away = Some(format!(
                    "it sends raw bytes at line {line}, whose effect the harness cannot follow"
                ))
            }
            Action::Publish(_) | Action::Ping | Action::Ack => {}
        }
        if step
            .expect
            .iter()
            .any(|e| e.closed == Some(true) || e.disconnect.is_some())
        {
            away = Some(format!("the server closes it at line {line}"));
        }
    }
    if let Some(why) = away {
        return Err(format!("{watcher} is not connected at the end: {why}"));
    }
    // a shared subscription may hand the will to another member; `$` topics are not for wills
    let filter = filters
        .into_iter()
        .find(|f| !f.starts_with('$'))
        .ok_or_else(|| format!("{watcher} holds no subscription a will can match at the end"))?;
    Ok(End {
        filter,
        username: credentials.0,
        password: credentials.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        crate::scenario::parse(yaml, "t.yaml").expect("parses")
    }

    const HEAD: &str = "name: t\nclients: {watcher: {}, device: {}}\n";

    #[test]
    fn a_wildcard_filter_becomes_a_topic_it_matches() {
        assert_eq!(concrete_topic("lw/+/state"), "lw/control/state");
        assert_eq!(concrete_topic("lw/x/#"), "lw/x/control");
        assert_eq!(concrete_topic("#"), "control");
        assert_eq!(concrete_topic("lw/exact"), "lw/exact");
    }

    #[test]
    fn a_watcher_subscribed_at_the_end_gets_a_control_on_its_filter() {
        let s = scenario(&format!(
            "{HEAD}steps:\n  - watcher: connect\n  - watcher: {{subscribe: \"lw/a/#\"}}\n  \
             - device: {{connect: {{will: {{topic: lw/a/d, payload: x}}}}}}\n  - device: disconnect\n\
             expect:\n  watcher: {{receives: nothing}}\n"
        ));
        let arm = ControlArm::plan(&s, Some("lw1s2"));
        assert!(arm.unreachable.is_empty(), "{:?}", arm.unreachable);
        let [control] = arm.clients.as_slice() else {
            panic!("one control: {arm:?}")
        };
        assert_eq!(control.topic(), "lw/a/control");
        assert_eq!(control.spec.name, "control");
        assert_eq!(control.connect.client_id, "lw1s2-lastwill-control");
        assert_eq!(control.watchers[0].client, "watcher");
    }

    #[test]
    fn a_watcher_gone_or_unsubscribed_by_the_end_is_unreachable() {
        for (steps, why) in [
            ("  - watcher: disconnect\n", "disconnects at line 6"),
            ("  - watcher: {unsubscribe: lw/a}\n", "no subscription"),
            (
                "  - watcher: connect\n",
                "no subscription", // a clean start clears the subscription
            ),
        ] {
            let s = scenario(&format!(
                "{HEAD}steps:\n  - watcher: connect\n  - watcher: {{subscribe: lw/a}}\n{steps}\
                 expect:\n  watcher: {{receives: [{{topic: lw/a, count: 0}}]}}\n"
            ));
            let arm = ControlArm::plan(&s, None);
            assert!(arm.clients.is_empty(), "{steps}");
            assert!(arm.unreachable[0].1.contains(why), "{:?}", arm.unreachable);
        }
    }

    #[test]
    fn opting_out_no_negative_or_a_watcher_that_never_subscribes_adds_nothing() {
        let steps = "steps:\n  - watcher: connect\n  - watcher: {subscribe: lw/a}\n";
        let out = scenario(&format!(
            "{HEAD}control: false\n{steps}expect:\n  watcher: {{receives: nothing}}\n"
        ));
        let positive = scenario(&format!(
            "{HEAD}{steps}expect:\n  watcher: {{receives: [{{topic: lw/a, count: 0..1}}]}}\n"
        ));
        let unsubscribed = scenario(&format!(
            "{HEAD}{steps}  - device: connect\nexpect:\n  device: {{receives: nothing}}\n"
        ));
        for s in [out, positive, unsubscribed] {
            let arm = ControlArm::plan(&s, None);
            assert!(arm.clients.is_empty() && arm.unreachable.is_empty());
        }
    }
}
