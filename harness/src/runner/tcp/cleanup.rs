//! Clean-up after a run: nothing one run leaves on the broker (sessions, pending wills,
//! retained messages) may reach a later one.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, Packet, Protocol, Publish, QoS, Subscribe, SubscriptionRequest,
};
use tokio::time::Instant;

use super::capabilities::own_client_id;
use super::{Endpoint, Stream};
use crate::io_error;
use crate::link::Link;
use crate::scenario::{Action, Scenario, StepKind};
use crate::transcript::{EventKind, Transcript};

/// Ends every session the run's clients may have left on the broker (Clean Start 1, Session
/// Expiry 0, DISCONNECT 0x00), so that no delayed will or queued message of this run reaches
/// a later one. A will still pending in such a session is due at its session's end and comes
/// out now, while nothing of this run listens any more.
pub(super) async fn end_sessions(endpoint: &Endpoint, scenario: &Scenario) -> Result<(), String> {
    // each session in its client's protocol: a broker that serves the protocols on separate
    // ports keeps a client's session where the client connected
    let mut sessions: Vec<(&str, Protocol)> = scenario
        .clients
        .iter()
        .map(|c| (c.client_id.as_str(), c.protocol))
        .collect();
    for step in &scenario.steps {
        if let StepKind::Client {
            action: Action::Connect(connect),
            ..
        } = &step.kind
        {
            sessions.push((&connect.client_id, connect.protocol));
        }
    }
    sessions.retain(|(id, _)| !id.is_empty());
    sessions.sort_unstable();
    sessions.dedup();
    for (client_id, protocol) in sessions {
        let mut session = endpoint
            .connect(Connect::new(protocol, client_id))
            .await
            .map_err(|e| {
                format!(
                    "ending session {client_id}: cannot connect: {}",
                    io_error::describe(&e)
                )
            })?;
        // wait for the CONNACK before saying goodbye. A refusal, or a close, is an answer
        // too: a client id the broker refuses (as some scenarios use) has no session to end.
        if let Ok(None) = session.recv_within(ANSWER_LIMIT).await {
            return Err(format!(
                "ending session {client_id}: no CONNACK within {}s",
                ANSWER_LIMIT.as_secs()
            ));
        }
        session.goodbye(&[]).await;
    }
    Ok(())
}

/// How long a clean-up connection waits for the broker's CONNACK or SUBACK.
const ANSWER_LIMIT: Duration = Duration::from_secs(2);

/// Clears the retained messages a run left: subscribe to `filter` (the run's `PREFIX/#`, or
/// `#` for an exclusive run), collect what is retained for a moment, and publish an empty
/// retained message to each topic. `$` topics are not matched by `#`: those the run used
/// (as seen in its transcript) are subscribed to by name. Fails, saying at which step, when
/// the broker does not let it see what is retained.
pub(super) async fn clear_retained(
    endpoint: &Endpoint,
    filter: &str,
    transcript: &Transcript,
) -> Result<(), String> {
    let mut filters = vec![SubscriptionRequest::new(filter, QoS::AtMostOnce)];
    for event in &transcript.events {
        if let EventKind::Sent(Packet::Publish(p)) | EventKind::Received(Packet::Publish(p)) =
            &event.kind
            && p.topic.starts_with('$')
            && !filters.iter().any(|f| f.filter == p.topic)
        {
            filters.push(SubscriptionRequest::new(p.topic.clone(), QoS::AtMostOnce));
        }
    }
    let (cleaner, retained) = retained_under(endpoint, filters).await?;
    let clears: Vec<Packet> = retained.iter().map(|topic| empty_retained(topic)).collect();
    cleaner.goodbye(&clears).await;
    Ok(())
}

/// The topics of the retained messages matching `filters` (the first must be granted), and
/// the connection that saw them, still open.
async fn retained_under(
    endpoint: &Endpoint,
    filters: Vec<SubscriptionRequest>,
) -> Result<(Link<Stream>, Vec<String>), String> {
    let first = filters
        .first()
        .map(|f| f.filter.clone())
        .unwrap_or_default();
    let mut cleaner = endpoint
        .connect(Connect::new(
            endpoint.own_protocol,
            own_client_id("cleanup"),
        ))
        .await
        .map_err(|e| format!("cannot connect: {}", io_error::describe(&e)))?;
    match cleaner.recv_within(ANSWER_LIMIT).await {
        Ok(Some(Packet::ConnAck(ack))) if ack.code.is_success() => {}
        Ok(Some(Packet::ConnAck(ack))) => return Err(format!("CONNECT refused with {}", ack.code)),
        Ok(Some(other)) => return Err(format!("CONNECT answered with {}", other.name())),
        Ok(None) => return Err(format!("no CONNACK within {}s", ANSWER_LIMIT.as_secs())),
        Err(_) => return Err("the broker closed the connection before its CONNACK".into()),
    }
    let subscribe = Subscribe {
        packet_id: 1,
        filters,
        subscription_identifier: None,
        user_properties: Vec::new(),
    };
    cleaner
        .send(&[Packet::Subscribe(subscribe)])
        .await
        .map_err(|e| format!("cannot send SUBSCRIBE {first}: {}", io_error::describe(&e)))?;
    let mut retained = Vec::new();
    // retained messages come right after SUBACK; half a second is plenty on a local broker
    let mut deadline = Instant::now() + ANSWER_LIMIT;
    let mut granted = false;
    loop {
        match cleaner
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Ok(Some(Packet::SubAck(ack))) => {
                if ack.codes.first().is_none_or(|code| code.is_failure()) {
                    return Err(format!("SUBSCRIBE {first} refused: {:?}", ack.codes));
                }
                granted = true;
                deadline = Instant::now() + Duration::from_millis(500);
            }
            Ok(Some(Packet::Publish(p))) if p.retain => retained.push(p.topic),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => return Err("the broker closed the connection after SUBSCRIBE".into()),
        }
    }
    if !granted {
        return Err(format!(
            "SUBSCRIBE {first}: no SUBACK within {}s",
            ANSWER_LIMIT.as_secs()
        ));
    }
    retained.sort_unstable();
    retained.dedup();
    Ok((cleaner, retained))
}

/// The clean-ups of one suite run that failed, in the order they failed: what the CLI warns
/// about and counts, since anything left on the broker may reach a later run.
#[derive(Debug, Default)]
pub struct CleanupFailures(Mutex<Vec<String>>);

impl CleanupFailures {
    /// Notes that cleaning up after `scenario` (its client ids and topics under `filter`)
    /// failed, and why.
    pub(super) fn record(&self, scenario: &Scenario, filter: &str, why: &str) {
        self.0.lock().expect("clean-up failures lock").push(format!(
            "{}: clean-up of {filter} failed: {why}; its retained messages or sessions may be left on the broker",
            scenario.file
        ));
    }

    /// One line per failed clean-up, naming the scenario, its topics and what failed.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("clean-up failures lock").clone()
    }
}

impl Endpoint {
    /// Every retained message on the broker (under `#`), as topics: a run starts on a broker
    /// that holds none, since its `#` watchers would see them and the clean-up of its
    /// exclusive scenarios clears everything under `#`. With `clear`, they are cleared
    /// instead (and still returned).
    pub async fn retained_before_run(&self, clear: bool) -> Result<Vec<String>, String> {
        let everything = || vec![SubscriptionRequest::new("#", QoS::AtMostOnce)];
        // once more after a failure: rumqttd 0.20.0's v5 port was seen closing this
        // connection right after its SUBSCRIBE, once, on a loaded machine
        let looked = match retained_under(self, everything()).await {
            Ok(looked) => Ok(looked),
            Err(_) => retained_under(self, everything()).await,
        };
        let (cleaner, retained) =
            looked.map_err(|why| format!("{self:?}: looking for retained messages: {why}"))?;
        let clears: Vec<Packet> = if clear {
            retained.iter().map(|topic| empty_retained(topic)).collect()
        } else {
            Vec::new()
        };
        cleaner.goodbye(&clears).await;
        Ok(retained)
    }
}

/// The message that clears what is retained on `topic` [MQTT-3.3.1-6].
fn empty_retained(topic: &str) -> Packet {
    let mut clear = Publish::new(topic, Bytes::new(), QoS::AtMostOnce);
    clear.retain = true;
    Packet::Publish(clear)
}
