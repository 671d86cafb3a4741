//! The [`Agent`]: one scenario client, its connection, and its answers to the broker.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Ack, ConnAckCode, Disconnect, Packet, Protocol, Publish, QoS, Subscribe, Unsubscribe,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Command, Network, Outcome, StepError, Wait};
use crate::io_error;
use crate::link::{Ended, Link};
use crate::scenario::{Action, ClientSpec, DropMode};
use crate::transcript::{EventKind, Fault, Recorder};

/// The agent's connection: its packet link and what the agent tracks about it.
struct Connection<S> {
    link: Link<S>,
    /// Seconds; the server's keep alive replaces the client's ([MQTT-3.2.2-21]).
    keep_alive: u16,
    last_sent: Instant,
    /// A CONNACK arrived on this connection.
    connack: bool,
}

/// What reading the connection produced.
type Incoming = Result<Packet, Ended>;

/// One scenario client: its spec, the network its runner gives it, and its connection.
pub struct Agent<N: Network> {
    spec: ClientSpec,
    network: N,
    recorder: Recorder,
    connection: Option<Connection<N::Stream>>,
    /// Sends nothing (acks and pings included) until the next command.
    silenced: bool,
    /// QoS 1/2 packets received and not yet acknowledged (with `auto_ack: false`).
    unacked: VecDeque<Packet>,
    /// A DISCONNECT the server sent while no step was running: it belongs to the outcome of
    /// the client's next step on the same connection (`- device: silence` with
    /// `expect: {disconnect: ...}` after a takeover).
    idle_disconnect: Option<Disconnect>,
    last_packet_id: u16,
}

impl<N: Network> Agent<N> {
    pub fn new(spec: ClientSpec, network: N, recorder: Recorder) -> Agent<N> {
        Agent {
            spec,
            network,
            recorder,
            connection: None,
            silenced: false,
            unacked: VecDeque::new(),
            idle_disconnect: None,
            last_packet_id: 0,
        }
    }

    /// Serves commands until the director hangs up, answering the broker in between.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        enum Next {
            Command(Option<Command>),
            Incoming(Incoming),
            Ping,
        }
        loop {
            let ping_at = self.ping_due();
            let next = tokio::select! {
                biased;
                command = commands.recv() => Next::Command(command),
                incoming = next_incoming(&mut self.connection), if self.connection.is_some() => Next::Incoming(incoming),
                _ = sleep_until(ping_at), if ping_at.is_some() => Next::Ping,
            };
            match next {
                Next::Command(None) => return,
                Next::Command(Some(command)) => {
                    let outcome = self.execute(command.action, command.wait).await;
                    let _ = command.reply.send(outcome);
                }
                Next::Incoming(incoming) => self.on_idle_incoming(incoming).await,
                Next::Ping => self.send(Packet::PingReq).await,
            }
        }
    }

    fn now(&self) -> Duration {
        self.network.now()
    }

    fn record(&self, kind: EventKind) {
        self.recorder.record(self.now(), &self.spec.name, kind);
    }

    fn ping_due(&self) -> Option<Instant> {
        let connection = self.connection.as_ref()?;
        if self.silenced || !self.spec.keep_alive_pings || connection.keep_alive == 0 {
            return None;
        }
        Some(connection.last_sent + Duration::from_secs(u64::from(connection.keep_alive)))
    }

    /// Handles what arrived while no step was running.
    async fn on_idle_incoming(&mut self, incoming: Incoming) {
        let mut idle = Outcome::default();
        self.on_incoming(incoming, &mut idle).await;
        if idle.disconnect.is_some() {
            self.idle_disconnect = idle.disconnect;
        }
    }

    async fn execute(&mut self, action: Action, wait: Wait) -> Outcome {
        // First take in whatever has already arrived (a close after a broker restart, say),
        // so that the step acts on the connection as it really is now.
        while self.connection.is_some() {
            let ready = tokio::select! {
                biased;
                incoming = next_incoming(&mut self.connection) => Some(incoming),
                () = std::future::ready(()) => None,
            };
            match ready {
                Some(incoming) => self.on_idle_incoming(incoming).await,
                None => break,
            }
        }
        let deadline = Instant::now() + wait.within;
        let mut outcome = Outcome {
            disconnect: self.idle_disconnect.take(),
            ..Outcome::default()
        };
        self.silenced = false;
        match action {
            Action::Connect(connect) => {
                if self.ensure_connection(connect.protocol, &mut outcome).await {
                    if let Some(connection) = &mut self.connection {
                        connection.keep_alive = connect.keep_alive;
                    }
                    self.send(Packet::Connect(*connect)).await;
                    self.await_until(&mut outcome, deadline, |o| o.connack.is_some())
                        .await;
                }
            }
            Action::Subscribe(spec) => {
                let packet_id = self.next_packet_id();
                let packet = Packet::Subscribe(Subscribe {
                    packet_id,
                    filters: spec.filters,
                    subscription_identifier: spec.subscription_identifier,
                    user_properties: spec.user_properties,
                });
                if self.send_connected(packet, &mut outcome).await {
                    self.await_until(&mut outcome, deadline, |o| o.suback.is_some())
                        .await;
                }
            }
            Action::Unsubscribe(spec) => {
                let packet_id = self.next_packet_id();
                let packet = Packet::Unsubscribe(Unsubscribe {
                    packet_id,
                    filters: spec.filters,
                    user_properties: spec.user_properties,
                });
                if self.send_connected(packet, &mut outcome).await {
                    self.await_until(&mut outcome, deadline, |o| o.unsuback.is_some())
                        .await;
                }
            }
            Action::Publish(spec) => {
                let packet_id = (spec.qos != QoS::AtMostOnce).then(|| self.next_packet_id());
                let publish = Publish {
                    dup: false,
                    qos: spec.qos,
                    retain: spec.retain,
                    topic: spec.topic,
                    packet_id,
                    payload: spec.payload,
                    properties: spec.properties,
                    topic_alias: spec.topic_alias,
                    subscription_identifiers: Vec::new(),
                };
                if self
                    .send_connected(Packet::Publish(publish), &mut outcome)
                    .await
                    && packet_id.is_some()
                {
                    self.await_until(&mut outcome, deadline, |o| o.publish_ack.is_some())
                        .await;
                }
            }
            Action::Ping => {
                if self.send_connected(Packet::PingReq, &mut outcome).await {
                    self.await_until(&mut outcome, deadline, |o| o.pong).await;
                }
            }
            Action::Disconnect(disconnect) => {
                if self
                    .send_connected(Packet::Disconnect(disconnect), &mut outcome)
                    .await
                {
                    self.close().await;
                }
            }
            Action::Drop(mode) => {
                self.record(EventKind::Fault(Fault::Drop(mode)));
                if let Some(connection) = self.connection.take() {
                    match mode {
                        DropMode::Rst => self.network.reset(connection.link.into_stream()),
                        DropMode::Fin => connection.link.close().await,
                    }
                }
            }
            Action::Silence => {
                self.record(EventKind::Fault(Fault::Silence));
                self.silenced = true;
            }
            Action::Vanish => {
                self.record(EventKind::Fault(Fault::Vanish));
                self.network.vanish(&self.spec.name);
                // the socket is forgotten without a word: nothing it would send gets through
                if let Some(connection) = self.connection.take() {
                    self.network.forget(connection.link.into_stream());
                }
            }
            Action::Ack => {
                while let Some(packet) = self.unacked.pop_front() {
                    self.send(packet).await;
                }
            }
            Action::Send(bytes) => {
                if self
                    .ensure_connection(self.spec.protocol, &mut outcome)
                    .await
                {
                    self.send_raw(bytes.clone()).await;
                    // a raw CONNECT waits for its CONNACK like a structured one
                    if bytes.first().is_some_and(|b| b >> 4 == 1) {
                        self.await_until(&mut outcome, deadline, |o| o.connack.is_some())
                            .await;
                    }
                }
            }
        }
        if wait.close || wait.disconnect {
            let until_close = wait.close;
            self.await_until(&mut outcome, deadline, move |o| {
                !until_close && o.disconnect.is_some()
            })
            .await;
        }
        outcome.closed = self.connection.is_none();
        outcome
    }

    /// Reads and handles packets until `done`, the connection closes, or `deadline`.
    async fn await_until(
        &mut self,
        outcome: &mut Outcome,
        deadline: Instant,
        done: impl Fn(&Outcome) -> bool,
    ) {
        while !done(outcome) && self.connection.is_some() {
            let incoming = tokio::select! {
                biased;
                incoming = next_incoming(&mut self.connection) => incoming,
                _ = tokio::time::sleep_until(deadline) => {
                    outcome.timed_out = true;
                    return;
                }
            };
            self.on_incoming(incoming, outcome).await;
        }
    }

    async fn on_incoming(&mut self, incoming: Incoming, outcome: &mut Outcome) {
        let packet = match incoming {
            Ok(packet) => packet,
            // a reset reads as a failure: to the scenario, either way the connection closed
            Err(Ended::Closed | Ended::Failed(_)) => {
                self.record(EventKind::Closed);
                self.connection = None;
                return;
            }
            Err(Ended::Undecodable(error)) => {
                self.record(EventKind::Undecodable(error));
                self.close().await;
                return;
            }
        };
        self.record(EventKind::Received(packet.clone()));
        self.check_rules(&packet);
        let auto = self.spec.auto_ack && !self.silenced;
        match packet {
            Packet::ConnAck(connack) => {
                if let (Some(connection), Some(server)) =
                    (&mut self.connection, connack.properties.server_keep_alive)
                {
                    connection.keep_alive = server;
                }
                outcome.connack = Some(connack);
            }
            Packet::SubAck(suback) => outcome.suback = Some(suback),
            Packet::UnsubAck(unsuback) => outcome.unsuback = Some(unsuback),
            Packet::PubAck(ack) => outcome.publish_ack = Some(ack.code.into()),
            Packet::PubRec(ack) => {
                if !ack.code.is_failure() {
                    self.reply(Packet::PubRel(Ack::success(ack.packet_id)), !self.silenced)
                        .await;
                } else {
                    outcome.publish_ack = Some(ack.code.into());
                }
            }
            Packet::PubComp(ack) => outcome.publish_ack = Some(ack.code.into()),
            Packet::Publish(_) | Packet::PubRel(_) => {
                if let Some(ack) = packet.receiver_ack() {
                    self.reply(ack, auto).await
                }
            }
            Packet::Disconnect(disconnect) => outcome.disconnect = Some(disconnect),
            Packet::PingResp => outcome.pong = true,
            _ => {}
        }
    }

    /// Records what breaks a rule every server must keep, whatever the scenario expects.
    fn check_rules(&mut self, packet: &Packet) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        let v5 = connection.link.protocol() == Protocol::V5;
        let mut violations = Vec::new();
        match packet {
            Packet::ConnAck(connack) => {
                // each version's own statements: 3.1.1 has none against a second CONNACK, and
                // its return codes are Table 3.1's, a CONNACK outside it being one it must
                // not send [MQTT-3.2.2-6 (3.1.1)]
                let (second, known, unknown, refused_present) = match connack.code {
                    ConnAckCode::V5(code) => (
                        "[MQTT-3.2.0-2] a second CONNACK on one connection",
                        code.is_connack(),
                        "[MQTT-3.2.2-8] CONNACK reason code",
                        "[MQTT-3.2.2-6]",
                    ),
                    ConnAckCode::V311(code) => (
                        "a second CONNACK on one connection",
                        code.name().is_some(),
                        "[MQTT-3.2.2-6] CONNACK return code",
                        "[MQTT-3.2.2-4]",
                    ),
                };
                if connection.connack {
                    violations.push(second.to_owned());
                }
                connection.connack = true;
                if !known {
                    violations.push(format!(
                        "{unknown} 0x{:02X} is not in its version's table",
                        u8::from(connack.code)
                    ));
                }
                if !connack.code.is_success() && connack.session_present {
                    violations.push(format!(
                        "{refused_present} a refusing CONNACK has Session Present 1"
                    ));
                }
            }
            Packet::Disconnect(_) if !connection.connack => {
                violations
                    .push("[MQTT-3.14.0-1] DISCONNECT before a successful CONNACK".to_owned());
            }
            Packet::Disconnect(_) if !v5 => {
                violations
                    .push("a 3.1.1 server sent DISCONNECT, which 3.1.1 does not allow".to_owned());
            }
            _ => {}
        }
        for violation in violations {
            self.record(EventKind::Violation(violation));
        }
    }

    /// Sends an acknowledgement now, or keeps it for a later `ack` step.
    async fn reply(&mut self, packet: Packet, now: bool) {
        if now {
            self.send(packet).await;
        } else if !self.silenced {
            self.unacked.push_back(packet);
        }
    }

    async fn ensure_connection(&mut self, protocol: Protocol, outcome: &mut Outcome) -> bool {
        if self.connection.is_some() {
            return true;
        }
        self.network.reappear(&self.spec.name);
        match self.network.connect(&self.spec.name).await {
            Ok(stream) => {
                self.connection = Some(Connection {
                    link: Link::new(stream, protocol),
                    keep_alive: 0,
                    last_sent: Instant::now(),
                    connack: false,
                });
                self.unacked.clear();
                outcome.disconnect = None;
                true
            }
            Err(err) => {
                let why = io_error::describe(&err);
                self.record(EventKind::ConnectFailed(why.clone()));
                outcome.error = Some(StepError::ConnectFailed(why));
                false
            }
        }
    }

    async fn send_connected(&mut self, packet: Packet, outcome: &mut Outcome) -> bool {
        if self.connection.is_none() {
            outcome.error = Some(StepError::NotConnected {
                packet: packet.name(),
            });
            return false;
        }
        self.send(packet).await;
        true
    }

    async fn send(&mut self, packet: Packet) {
        let Some(connection) = &self.connection else {
            return;
        };
        let bytes = match connection.link.encode(std::slice::from_ref(&packet)) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.record(EventKind::Check(format!("cannot encode: {err}")));
                return;
            }
        };
        self.record(EventKind::Sent(packet));
        self.write(bytes).await;
    }

    async fn send_raw(&mut self, bytes: Bytes) {
        self.record(EventKind::SentRaw(bytes.clone()));
        self.write(bytes).await;
    }

    async fn write(&mut self, bytes: Bytes) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        connection.last_sent = Instant::now();
        if connection.link.write(&bytes).await.is_err() {
            self.record(EventKind::Closed);
            self.connection = None;
        }
    }

    /// Closes our side in order (FIN) after a DISCONNECT.
    async fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.link.close().await;
        }
    }

    fn next_packet_id(&mut self) -> u16 {
        self.last_packet_id = self.last_packet_id.checked_add(1).unwrap_or(1);
        self.last_packet_id
    }
}

/// The next packet on the connection, if there is one; never, if there is none.
async fn next_incoming<S: AsyncRead + AsyncWrite + Unpin>(
    connection: &mut Option<Connection<S>>,
) -> Incoming {
    match connection {
        Some(connection) => connection.link.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
