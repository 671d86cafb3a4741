//! Clean-up after a run: nothing one run leaves on the broker (sessions, pending wills,
//! retained messages) may reach a later one.

use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, Packet, Protocol, Publish, QoS, Subscribe, SubscriptionRequest,
};
use tokio::time::Instant;

use super::Endpoint;
use super::capabilities::own_client_id;
use crate::scenario::{Action, Scenario, StepKind};
use crate::transcript::{EventKind, Transcript};

/// Ends every session the run's clients may have left on the broker (Clean Start 1, Session
/// Expiry 0, DISCONNECT 0x00), so that no delayed will or queued message of this run reaches
/// a later one. A will still pending in such a session is due at its session's end and comes
/// out now, while nothing of this run listens any more.
pub(super) async fn end_sessions(endpoint: &Endpoint, scenario: &Scenario) {
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
        let Ok(mut session) = endpoint.connect(Connect::new(protocol, client_id)).await else {
            return;
        };
        // wait for the CONNACK (or the refusal) before saying goodbye
        let _ = session.recv_within(Duration::from_secs(2)).await;
        session.goodbye(&[]).await;
    }
}

/// Clears the retained messages a run left: subscribe to `filter` (the run's `PREFIX/#`, or
/// `#` for an exclusive run), collect what is retained for a moment, and publish an empty
/// retained message to each topic. `$` topics are not matched by `#`: those the run used
/// (as seen in its transcript) are subscribed to by name.
pub(super) async fn clear_retained(endpoint: &Endpoint, filter: &str, transcript: &Transcript) {
    let client_id = own_client_id("cleanup");
    let Ok(mut cleaner) = endpoint
        .connect(Connect::new(endpoint.own_protocol, client_id))
        .await
    else {
        return;
    };
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
    let subscribe = Subscribe {
        packet_id: 1,
        filters,
        subscription_identifier: None,
        user_properties: Vec::new(),
    };
    if cleaner.send(&[Packet::Subscribe(subscribe)]).await.is_err() {
        return;
    }
    // retained messages come right after SUBACK; half a second is plenty on a local broker
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut clears = Vec::new();
    while let Ok(Some(packet)) = cleaner
        .recv_within(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        if let Packet::Publish(p) = packet
            && p.retain
        {
            let mut clear = Publish::new(p.topic, Bytes::new(), QoS::AtMostOnce);
            clear.retain = true;
            clears.push(Packet::Publish(clear));
        }
    }
    cleaner.goodbye(&clears).await;
}
