//! The agent against a scripted broker: a fake [`Network`] hands the agent one end of an
//! in-memory duplex stream per connection and the test the other, wrapped in a [`Link`].
//! Time is tokio's paused clock, so keep-alive and timeouts cost nothing and are exact.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lastwill_broker::codec::{
    self, Ack, ConnAck, ConnAckProperties, Connect, Disconnect, Packet, Protocol, Publish, QoS,
};
use tokio::io::{DuplexStream, duplex};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Agent, Command, Network, Outcome, StepError, Wait};
use crate::link::{Ended, Link};
use crate::scenario::{self, Action, ClientSpec, StepKind};
use crate::transcript::Recorder;

/// A network of in-memory streams that logs what the agent asks of it.
#[derive(Clone)]
struct FakeNetwork {
    start: Instant,
    /// The broker ends of the connections the agent opens.
    accepted: mpsc::UnboundedSender<DuplexStream>,
    /// Connecting fails with "connection refused".
    refuse: Rc<Cell<bool>>,
    /// `reset`, `forget`, `vanish NAME`, `reappear NAME`, in order.
    log: Rc<RefCell<Vec<String>>>,
    /// Forgotten streams, kept open so that the broker end sees no EOF.
    forgotten: Rc<RefCell<Vec<DuplexStream>>>,
}

impl Network for FakeNetwork {
    type Stream = DuplexStream;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn connect(&self, _client: &str) -> io::Result<DuplexStream> {
        if self.refuse.get() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection refused",
            ));
        }
        let (agent, broker) = duplex(64 * 1024);
        let _ = self.accepted.send(broker);
        Ok(agent)
    }

    fn reset(&self, stream: DuplexStream) {
        self.log.borrow_mut().push("reset".into());
        drop(stream);
    }

    fn forget(&self, stream: DuplexStream) {
        self.log.borrow_mut().push("forget".into());
        self.forgotten.borrow_mut().push(stream);
    }

    fn vanish(&self, client: &str) {
        self.log.borrow_mut().push(format!("vanish {client}"));
    }

    fn reappear(&self, client: &str) {
        self.log.borrow_mut().push(format!("reappear {client}"));
    }
}

/// One agent under test, its network, and the broker ends of its connections.
struct Rig {
    commands: mpsc::UnboundedSender<Command>,
    accepted: mpsc::UnboundedReceiver<DuplexStream>,
    network: FakeNetwork,
    recorder: Recorder,
    /// The actions of the scenario's steps, in order, for [`Rig::action`].
    actions: Vec<Action>,
}

/// Runs `test` on a local task set (the agent's future is not `Send`).
async fn local<F: Future>(test: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(test).await
}

impl Rig {
    /// An agent for the client `device` (with `options`, YAML) whose scenario has `steps`
    /// (YAML, all of `device`).
    fn start(options: &str, steps: &str) -> Rig {
        let text = format!("name: client\nclients:\n  device: {options}\nsteps:\n{steps}");
        let scenario = scenario::parse(&text, "client.yaml").unwrap_or_else(|e| panic!("{e}"));
        let spec: ClientSpec = scenario.clients[0].clone();
        let actions = scenario
            .steps
            .iter()
            .filter_map(|step| match &step.kind {
                StepKind::Client { action, .. } => Some(action.clone()),
                _ => None,
            })
            .collect();
        let (accepted_tx, accepted) = mpsc::unbounded_channel();
        let network = FakeNetwork {
            start: Instant::now(),
            accepted: accepted_tx,
            refuse: Rc::default(),
            log: Rc::default(),
            forgotten: Rc::default(),
        };
        let recorder = Recorder::default();
        let (commands, rx) = mpsc::unbounded_channel();
        let agent = Agent::new(spec, network.clone(), recorder.clone());
        tokio::task::spawn_local(agent.run(rx));
        Rig {
            commands,
            accepted,
            network,
            recorder,
            actions,
        }
    }

    /// The action of step `n` (0-based).
    fn action(&self, n: usize) -> Action {
        self.actions[n].clone()
    }

    /// Hands the agent an action; its outcome comes through the receiver.
    fn begin(&self, action: Action, wait: Wait) -> oneshot::Receiver<Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.commands
            .send(Command {
                action,
                wait,
                reply,
            })
            .unwrap_or_else(|_| panic!("the agent stopped"));
        outcome
    }

    async fn step(&self, action: Action) -> Outcome {
        self.begin(action, wait()).await.expect("an outcome")
    }

    /// The broker end of the agent's next connection.
    async fn accept(&mut self, protocol: Protocol) -> Link<DuplexStream> {
        let stream = self.accepted.recv().await.expect("a connection");
        Link::new(stream, protocol)
    }

    /// Runs connect step `n` against a broker that answers `connack`.
    async fn connect(&mut self, n: usize, connack: ConnAck) -> (Link<DuplexStream>, Outcome) {
        let outcome = self.begin(self.action(n), wait());
        let mut broker = self.accept(Protocol::V5).await;
        let Ok(Packet::Connect(_)) = broker.recv().await else {
            panic!("expected CONNECT")
        };
        broker.send(&[Packet::ConnAck(connack)]).await.unwrap();
        (broker, outcome.await.expect("an outcome"))
    }

    fn transcript(&self) -> String {
        self.recorder.transcript().render()
    }

    fn log(&self) -> Vec<String> {
        self.network.log.borrow().clone()
    }
}

fn wait() -> Wait {
    Wait {
        close: false,
        disconnect: false,
        within: Duration::from_secs(10),
    }
}

fn success() -> ConnAck {
    ConnAck {
        session_present: false,
        code: codec::ConnAckCode::success(Protocol::V5),
        properties: ConnAckProperties::default(),
    }
}

/// A PUBLISH from the broker; `packet_id` only counts at QoS 1 and 2.
fn publish(qos: QoS, packet_id: u16) -> Packet {
    let mut publish = Publish::new("t", Bytes::from_static(b"x"), qos);
    publish.packet_id = (qos != QoS::AtMostOnce).then_some(packet_id);
    Packet::Publish(publish)
}

const NO_PINGS: &str = "{keep_alive_pings: false}";

#[tokio::test(start_paused = true)]
async fn connect_waits_for_the_connack_and_reports_it() {
    local(async {
        let mut rig = Rig::start("{}", "  - device: {connect: {keep_alive: 30}}");
        let (_broker, outcome) = rig.connect(0, success()).await;
        assert_eq!(outcome.connack, Some(success()));
        assert!(!outcome.closed && !outcome.timed_out && outcome.error.is_none());
        assert_eq!(
            rig.transcript(),
            concat!(
                "    0.000 device → CONNECT v5 client_id=\"device\" clean_start=1 keep_alive=30\n",
                "    0.000 device ← CONNACK 0x00 success session_present=0\n",
            )
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn incoming_qos1_and_qos2_are_acknowledged_by_themselves() {
    local(async {
        let mut rig = Rig::start(NO_PINGS, "  - device: connect");
        let (mut broker, _) = rig.connect(0, success()).await;
        broker.send(&[publish(QoS::AtLeastOnce, 5)]).await.unwrap();
        assert_eq!(broker.recv().await, Ok(Packet::PubAck(Ack::success(5))));
        broker.send(&[publish(QoS::ExactlyOnce, 6)]).await.unwrap();
        assert_eq!(broker.recv().await, Ok(Packet::PubRec(Ack::success(6))));
        broker
            .send(&[Packet::PubRel(Ack::success(6))])
            .await
            .unwrap();
        assert_eq!(broker.recv().await, Ok(Packet::PubComp(Ack::success(6))));
        // QoS 0 is not answered
        broker.send(&[publish(QoS::AtMostOnce, 7)]).await.unwrap();
        assert_eq!(broker.recv_within(Duration::from_secs(60)).await, Ok(None));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn without_auto_ack_acknowledgements_wait_for_the_ack_step() {
    local(async {
        let mut rig = Rig::start(
            "{auto_ack: false, keep_alive_pings: false}",
            "  - device: connect\n  - device: ack",
        );
        let (mut broker, _) = rig.connect(0, success()).await;
        broker
            .send(&[publish(QoS::AtLeastOnce, 1), publish(QoS::ExactlyOnce, 2)])
            .await
            .unwrap();
        assert_eq!(broker.recv_within(Duration::from_secs(30)).await, Ok(None));
        rig.step(rig.action(1)).await;
        assert_eq!(broker.recv().await, Ok(Packet::PubAck(Ack::success(1))));
        assert_eq!(broker.recv().await, Ok(Packet::PubRec(Ack::success(2))));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_qos2_publish_runs_its_flow_to_pubcomp() {
    local(async {
        let mut rig = Rig::start(
            NO_PINGS,
            "  - device: connect\n  - device: {publish: t, payload: x, qos: 2}",
        );
        let (mut broker, _) = rig.connect(0, success()).await;
        let outcome = rig.begin(rig.action(1), wait());
        let Ok(Packet::Publish(sent)) = broker.recv().await else {
            panic!("expected PUBLISH")
        };
        assert_eq!((sent.qos, sent.packet_id), (QoS::ExactlyOnce, Some(1)));
        broker
            .send(&[Packet::PubRec(Ack::success(1))])
            .await
            .unwrap();
        assert_eq!(broker.recv().await, Ok(Packet::PubRel(Ack::success(1))));
        broker
            .send(&[Packet::PubComp(Ack::success(1))])
            .await
            .unwrap();
        assert_eq!(outcome.await.unwrap().publish_ack, Some(0));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn keep_alive_pings_when_idle_and_the_server_keep_alive_replaces_the_client_one() {
    local(async {
        let mut rig = Rig::start("{}", "  - device: {connect: {keep_alive: 2}}");
        let (mut broker, _) = rig.connect(0, success()).await;
        let started = Instant::now();
        assert_eq!(broker.recv().await, Ok(Packet::PingReq));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        broker.send(&[Packet::PingResp]).await.unwrap();
        assert_eq!(broker.recv().await, Ok(Packet::PingReq));
        assert_eq!(started.elapsed(), Duration::from_secs(4));
        assert!(rig.transcript().contains("    4.000 device → PINGREQ\n"));

        // [MQTT-3.2.2-21]: a CONNACK Server Keep Alive of 1 s replaces the client's 2 s
        let mut rig = Rig::start("{}", "  - device: {connect: {keep_alive: 2}}");
        let mut connack = success();
        connack.properties.server_keep_alive = Some(1);
        let (mut broker, _) = rig.connect(0, connack).await;
        let started = Instant::now();
        assert_eq!(broker.recv().await, Ok(Packet::PingReq));
        assert_eq!(started.elapsed(), Duration::from_secs(1));

        let mut rig = Rig::start(NO_PINGS, "  - device: {connect: {keep_alive: 2}}");
        let (mut broker, _) = rig.connect(0, success()).await;
        assert_eq!(broker.recv_within(Duration::from_secs(60)).await, Ok(None));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn silence_sends_nothing_until_the_next_step() {
    local(async {
        let mut rig = Rig::start(
            "{}",
            "  - device: {connect: {keep_alive: 2}}\n  - device: silence\n  - device: ping",
        );
        let (mut broker, _) = rig.connect(0, success()).await;
        let outcome = rig.step(rig.action(1)).await;
        assert!(!outcome.closed, "silence keeps the connection open");
        // neither the acknowledgement nor keep-alive pings
        broker.send(&[publish(QoS::AtLeastOnce, 9)]).await.unwrap();
        assert_eq!(broker.recv_within(Duration::from_secs(30)).await, Ok(None));
        let ping = rig.begin(rig.action(2), wait());
        assert_eq!(broker.recv().await, Ok(Packet::PingReq));
        broker.send(&[Packet::PingResp]).await.unwrap();
        assert!(ping.await.unwrap().pong);
        assert!(rig.transcript().contains("device ✂ silence\n"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn drop_rst_resets_and_drop_fin_closes_in_order() {
    local(async {
        for (how, log) in [
            ("rst", ["reappear device", "reset"].as_slice()),
            ("fin", ["reappear device"].as_slice()),
        ] {
            let steps = format!("  - device: connect\n  - device: {{drop: {how}}}");
            let mut rig = Rig::start(NO_PINGS, &steps);
            let (mut broker, _) = rig.connect(0, success()).await;
            let outcome = rig.step(rig.action(1)).await;
            assert!(outcome.closed);
            assert_eq!(broker.recv().await, Err(Ended::Closed), "drop {how}");
            assert_eq!(rig.log(), log, "drop {how}");
            assert!(rig.transcript().contains(&format!("device ✂ drop {how}\n")));
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn vanish_forgets_the_stream_without_closing_it_and_reappears_to_connect() {
    local(async {
        let mut rig = Rig::start(
            NO_PINGS,
            "  - device: connect\n  - device: vanish\n  - device: connect",
        );
        let (mut broker, _) = rig.connect(0, success()).await;
        let outcome = rig.step(rig.action(1)).await;
        assert!(outcome.closed, "the client has no connection any more");
        assert_eq!(broker.recv_within(Duration::from_secs(60)).await, Ok(None));
        assert_eq!(rig.log(), ["reappear device", "vanish device", "forget"]);
        let (_again, outcome) = rig.connect(2, success()).await;
        assert_eq!(outcome.connack, Some(success()));
        assert_eq!(
            rig.log().last().map(String::as_str),
            Some("reappear device")
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn raw_bytes_are_sent_as_written_and_a_raw_connect_waits_for_its_connack() {
    local(async {
        let mut rig = Rig::start(NO_PINGS, "  - device: {send: \"c0 00\"}");
        // the send opens a connection of its own
        let sent = rig.begin(rig.action(0), wait());
        let mut broker = rig.accept(Protocol::V5).await;
        assert_eq!(broker.recv().await, Ok(Packet::PingReq));
        assert!(sent.await.unwrap().connack.is_none());
        assert!(rig.transcript().contains("device → RAW c0 00\n"));

        // a raw CONNECT (here a well-formed one): its CONNACK is the step's outcome
        let mut connect = BytesMut::new();
        codec::encode(
            &Packet::Connect(Connect::new(Protocol::V5, "r")),
            Protocol::V5,
            &mut connect,
        )
        .unwrap();
        let outcome = rig.begin(Action::Send(connect.freeze()), wait());
        let Ok(Packet::Connect(c)) = broker.recv().await else {
            panic!("expected the raw CONNECT")
        };
        assert_eq!(c.client_id, "r");
        broker.send(&[Packet::ConnAck(success())]).await.unwrap();
        assert_eq!(outcome.await.unwrap().connack, Some(success()));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_and_a_step_without_one_are_step_errors() {
    local(async {
        let rig = Rig::start(NO_PINGS, "  - device: connect\n  - device: {publish: t}");
        rig.network.refuse.set(true);
        let outcome = rig.step(rig.action(0)).await;
        assert_eq!(
            outcome.error,
            Some(StepError::ConnectFailed("connection refused".into()))
        );
        assert!(outcome.closed);
        assert!(
            rig.transcript()
                .contains("device ✖ connect failed: connection refused\n")
        );
        let outcome = rig.step(rig.action(1)).await;
        assert_eq!(
            outcome.error,
            Some(StepError::NotConnected { packet: "PUBLISH" })
        );
        assert_eq!(
            outcome.error.unwrap().to_string(),
            "cannot send PUBLISH: not connected"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_step_waits_for_the_close_it_expects_or_times_out() {
    local(async {
        let mut rig = Rig::start(NO_PINGS, "  - device: connect\n  - device: silence");
        let (broker, _) = rig.connect(0, success()).await;
        let until_close = Wait {
            close: true,
            disconnect: false,
            within: Duration::from_secs(5),
        };
        let started = Instant::now();
        let outcome = rig.begin(rig.action(1), until_close).await.unwrap();
        assert!(outcome.timed_out && !outcome.closed);
        assert_eq!(started.elapsed(), Duration::from_secs(5));

        let waiting = rig.begin(rig.action(1), until_close);
        broker.goodbye(&[]).await;
        let outcome = waiting.await.unwrap();
        assert_eq!(outcome.disconnect, Some(Disconnect::default()));
        assert!(outcome.closed && !outcome.timed_out);
        assert!(rig.transcript().contains("device ✖ closed by peer\n"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_disconnect_that_came_between_steps_belongs_to_the_next_one() {
    local(async {
        let mut rig = Rig::start(NO_PINGS, "  - device: connect\n  - device: silence");
        let (mut broker, _) = rig.connect(0, success()).await;
        let taken_over = Disconnect {
            code: 0x8E.into(),
            ..Disconnect::default()
        };
        broker
            .send(&[Packet::Disconnect(taken_over.clone())])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let outcome = rig.step(rig.action(1)).await;
        assert_eq!(outcome.disconnect, Some(taken_over));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn broken_server_rules_are_recorded_as_violations_and_garbage_closes() {
    local(async {
        let mut rig = Rig::start(NO_PINGS, "  - device: connect");
        let (mut broker, _) = rig.connect(0, success()).await;
        // [MQTT-3.2.0-2] one CONNACK per connection
        broker.send(&[Packet::ConnAck(success())]).await.unwrap();
        // packet type 0 is reserved: the agent records it and closes
        broker.write(&[0x00, 0x00]).await.unwrap();
        assert_eq!(broker.recv().await, Err(Ended::Closed));
        let transcript = rig.transcript();
        assert!(
            transcript.contains(
                "device ! protocol violation: [MQTT-3.2.0-2] a second CONNACK on one connection\n"
            ),
            "{transcript}"
        );
        assert!(
            transcript.contains("device ✖ undecodable bytes from broker: malformed packet (0x81)"),
            "{transcript}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_3_1_1_connack_outside_its_table_cites_the_3_1_1_statement() {
    local(async {
        let mut rig = Rig::start(
            "{protocol: 3.1.1, keep_alive_pings: false}",
            "  - device: connect",
        );
        let outcome = rig.begin(rig.action(0), wait());
        let mut broker = rig.accept(Protocol::V311).await;
        let Ok(Packet::Connect(_)) = broker.recv().await else {
            panic!("expected CONNECT")
        };
        // return code 0x87 is v5's not-authorized, and no 3.1.1 return code
        broker.write(&[0x20, 0x02, 0x00, 0x87]).await.unwrap();
        outcome.await.expect("an outcome");
        let transcript = rig.transcript();
        assert!(
            transcript.contains(
                "device ! protocol violation: [MQTT-3.2.2-6] CONNACK return code 0x87 is not in its version's table\n"
            ),
            "{transcript}"
        );
        assert!(!transcript.contains("MQTT-3.2.2-8"), "{transcript}");
    })
    .await;
}
