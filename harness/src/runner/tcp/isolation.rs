//! Isolation of runs on a shared broker: per-run prefixes for client ids and topics, and the
//! scenarios that cannot take one and must have the broker to themselves.

use bytes::Bytes;

use super::Endpoint;
use crate::raw_connect;
use crate::scenario::{Action, MAX_TOPIC_BYTES, MessageMatcher, Receives, Scenario, StepKind};

/// Whether the scenario must run alone and without a prefix: raw `send:` bytes carry their
/// own client ids and topics, which cannot be rewritten, and `$` topics cannot be prefixed
/// without changing what they test. Isolation then comes from running nothing else meanwhile.
pub fn needs_exclusive_run(scenario: &Scenario) -> bool {
    let dollar = |topic: &str| {
        (topic.starts_with('$') && !topic.starts_with("$share/")) || too_long_to_prefix(topic)
    };
    scenario.steps.iter().any(|step| match &step.kind {
        StepKind::Client { action, .. } => match action {
            Action::Send(_) => true,
            Action::Connect(connect) => connect.will.as_ref().is_some_and(|w| dollar(&w.topic)),
            Action::Subscribe(spec) => spec.filters.iter().any(|f| dollar(&f.filter)),
            Action::Publish(spec) => dollar(&spec.topic),
            _ => false,
        },
        _ => false,
    })
}

/// A copy of the scenario whose client ids and topics live under `prefix`.
///
/// Topics become `PREFIX/topic` (shared subscriptions `$share/group/PREFIX/filter`);
/// `$` topics, empty strings and topics at the length limit are kept as they are, since
/// prefixing would change what they test. Raw `send:` bytes are not rewritten.
pub(super) fn with_prefix(scenario: &Scenario, prefix: &str) -> Scenario {
    let mut s = scenario.clone();
    let id = |client_id: &mut String| {
        if !client_id.is_empty() {
            *client_id = format!("{prefix}-{client_id}");
        }
    };
    let topic = |t: &mut String| *t = prefixed_topic(prefix, t);
    for client in &mut s.clients {
        id(&mut client.client_id);
    }
    for step in &mut s.steps {
        let StepKind::Client { action, .. } = &mut step.kind else {
            continue;
        };
        match action {
            Action::Connect(connect) => {
                id(&mut connect.client_id);
                if let Some(will) = &mut connect.will {
                    topic(&mut will.topic);
                }
            }
            Action::Subscribe(spec) => spec.filters.iter_mut().for_each(|f| topic(&mut f.filter)),
            Action::Unsubscribe(spec) => spec.filters.iter_mut().for_each(topic),
            Action::Publish(spec) => topic(&mut spec.topic),
            _ => {}
        }
    }
    for block in &mut s.expect {
        if let Some(Receives::Messages(matchers)) = &mut block.receives {
            for MessageMatcher { topic: t, .. } in matchers {
                if let Some(t) = t {
                    topic(t);
                }
            }
        }
    }
    s
}

/// Gives every CONNECT that names no user the endpoint's `--username`/`--password`: the
/// structured ones, and raw `send:` bytes that can take them (see
/// [`raw_connect::with_credentials`]; [`Endpoint::skip_reason`] skips a scenario whose raw
/// CONNECT cannot).
pub(super) fn with_credentials(scenario: &mut Scenario, endpoint: &Endpoint) {
    let Some(username) = &endpoint.username else {
        return;
    };
    for step in &mut scenario.steps {
        match &mut step.kind {
            StepKind::Client {
                action: Action::Connect(connect),
                ..
            } if connect.username.is_none() => {
                connect.username = Some(username.clone());
                connect.password = endpoint.password.clone().map(Bytes::from);
            }
            StepKind::Client {
                action: Action::Send(bytes),
                ..
            } => {
                if let Some(spliced) =
                    raw_connect::with_credentials(bytes, username, endpoint.password.as_deref())
                {
                    *bytes = spliced;
                }
            }
            _ => {}
        }
    }
}

/// Room kept for a run prefix (`lw<run>s<index>/`) in a topic of the longest encodable size.
const PREFIX_ROOM: usize = 64;

/// A topic at the encoding limit ([MQTT-4.7.3-3]) cannot take a prefix: it is used as written,
/// by a scenario that has a broker to itself.
fn too_long_to_prefix(topic: &str) -> bool {
    topic.len() + PREFIX_ROOM > MAX_TOPIC_BYTES as usize
}

fn prefixed_topic(prefix: &str, topic: &str) -> String {
    if let Some(rest) = topic.strip_prefix("$share/")
        && let Some((group, filter)) = rest.split_once('/')
    {
        return format!("$share/{group}/{}", prefixed_topic(prefix, filter));
    }
    if topic.is_empty() || topic.starts_with('$') || too_long_to_prefix(topic) {
        topic.to_owned()
    } else {
        format!("{prefix}/{topic}")
    }
}
