//! The tokio driver under turmoil: real driver code, simulated network, virtual time.
//!
//! A broker host runs [`Server::serve`]; a subscriber host subscribes to `t/1`; a device host
//! connects with a will on `t/1` and then dies. Times are read with
//! [`turmoil::sim_elapsed`], so the assertions are about virtual time: a 30 s will delay costs
//! milliseconds of real time.
//!
//! The crate feature `turmoil` provides the driver's `Listener` impl for
//! `turmoil::net::TcpListener`. It is on whenever the whole workspace is built (the harness
//! enables it); for `cargo test -p lastwill-broker` alone, where it is off, this file wraps the
//! listener itself, so the test runs either way.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use lastwill_broker::codec::{
    self, Connect, LastWill, Packet, Protocol, QoS, Subscribe, SubscriptionRequest,
};
use lastwill_broker::config::Config;
use lastwill_broker::driver::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::TcpStream;

const PORT: u16 = 1883;
const WILL_PAYLOAD: &str = "A will message from MQTTX CLI";

#[cfg(feature = "turmoil")]
async fn bind() -> io::Result<turmoil::net::TcpListener> {
    turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await
}

#[cfg(not(feature = "turmoil"))]
async fn bind() -> io::Result<SimListener> {
    turmoil::net::TcpListener::bind(("0.0.0.0", PORT))
        .await
        .map(SimListener)
}

#[cfg(not(feature = "turmoil"))]
struct SimListener(turmoil::net::TcpListener);

#[cfg(not(feature = "turmoil"))]
impl lastwill_broker::driver::Listener for SimListener {
    type Stream = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, std::net::SocketAddr)> {
        self.0.accept().await
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}

/// Timestamped lines shared by every host of one simulation.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    /// Logs from inside a host, at the host's virtual time.
    fn push(&self, who: &str, what: impl std::fmt::Display) {
        let at = turmoil::sim_elapsed().expect("called from a simulated host");
        self.push_at(at, who, what);
    }

    fn push_at(&self, at: Duration, who: &str, what: impl std::fmt::Display) {
        self.0
            .borrow_mut()
            .push(format!("{:>9.3}s {who}: {what}", at.as_secs_f64()));
    }

    fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// A deliberately small MQTT client: whole packets in, whole packets out.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
    protocol: Protocol,
}

impl Client {
    /// Connects, sends `connect` and waits for a successful CONNACK.
    async fn connect(connect: Connect) -> io::Result<Client> {
        let stream = TcpStream::connect(("broker", PORT)).await?;
        let mut client = Client {
            stream,
            buf: BytesMut::new(),
            protocol: connect.protocol,
        };
        client.send(&Packet::Connect(connect)).await?;
        match client.recv().await? {
            Some(Packet::ConnAck(ack)) if ack.code.is_success() => Ok(client),
            other => Err(io::Error::other(format!(
                "expected CONNACK 0, got {other:?}"
            ))),
        }
    }

    async fn send(&mut self, packet: &Packet) -> io::Result<()> {
        let mut out = BytesMut::new();
        codec::encode(packet, self.protocol, &mut out).map_err(io::Error::other)?;
        self.stream.write_all(&out).await
    }

    /// The next packet, or `None` at end of stream.
    async fn recv(&mut self) -> io::Result<Option<Packet>> {
        loop {
            if let Some(packet) = codec::decode(&mut self.buf, Some(self.protocol), u32::MAX)
                .map_err(io::Error::other)?
            {
                return Ok(Some(packet));
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    async fn subscribe(&mut self, filter: &str) -> io::Result<()> {
        let subscribe = Subscribe {
            packet_id: 1,
            filters: vec![SubscriptionRequest::new(filter, QoS::AtLeastOnce)],
            subscription_identifier: None,
            user_properties: Vec::new(),
        };
        self.send(&Packet::Subscribe(subscribe)).await?;
        match self.recv().await? {
            Some(Packet::SubAck(ack)) if ack.codes.iter().all(|c| !c.is_failure()) => Ok(()),
            other => Err(io::Error::other(format!("expected SUBACK, got {other:?}"))),
        }
    }

    /// Waits for the next PUBLISH and returns it as `topic payload`.
    async fn next_publish(&mut self) -> io::Result<String> {
        loop {
            match self.recv().await? {
                Some(Packet::Publish(publish)) => {
                    return Ok(format!(
                        "{} {}",
                        publish.topic,
                        String::from_utf8_lossy(&publish.payload)
                    ));
                }
                Some(_) => continue,
                None => return Err(io::Error::other("broker closed the subscriber")),
            }
        }
    }
}

fn device_connect(protocol: Protocol, will_delay: Option<u32>) -> Connect {
    let mut connect = Connect::new(protocol, "device");
    connect.will = Some(LastWill {
        topic: "t/1".into(),
        payload: WILL_PAYLOAD.into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        delay_interval: will_delay,
        properties: Default::default(),
    });
    if will_delay.is_some() {
        // The will is due at min(close + delay, session end): the session must outlive it.
        connect.session_expiry_interval = Some(300);
    }
    connect
}

struct Scenario {
    seed: u64,
    protocol: Protocol,
    will_delay: Option<u32>,
    /// Fixed one-way latency; `None` keeps turmoil's seeded random latency.
    latency: Option<Duration>,
    /// Instead of being crashed, the device sends a malformed packet at 2 s.
    garbage: bool,
}

/// Runs one scenario and returns its log. The device host is crashed at 2 s of virtual time.
fn run(scenario: Scenario) -> Vec<String> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| {
            directives
                .parse::<tracing_subscriber::filter::Targets>()
                .ok()
        })
        .unwrap_or_default();
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .finish()
        .with(filter)
        .try_init();
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(scenario.seed)
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .simulation_duration(Duration::from_secs(120))
        // Coarser than the default 1 ms: a 30 s delay is 6,000 steps, not 30,000.
        .tick_duration(Duration::from_millis(5));
    if let Some(latency) = scenario.latency {
        builder
            .min_message_latency(latency)
            .max_message_latency(latency);
    }
    let mut sim = builder.build();
    let log = Log::default();

    sim.host("broker", || async {
        let listener = bind().await?;
        Server::new(Config::default())
            .serve(listener, std::future::pending::<()>())
            .await;
        Ok(())
    });

    let sub_log = log.clone();
    let protocol = scenario.protocol;
    sim.client("subscriber", async move {
        let mut sub = Client::connect(Connect::new(protocol, "subscriber")).await?;
        sub.subscribe("t/1").await?;
        sub_log.push("subscriber", "subscribed to t/1");
        let message = sub.next_publish().await?;
        sub_log.push("subscriber", format!("received {message}"));
        Ok(())
    });

    let device_log = log.clone();
    let will_delay = scenario.will_delay;
    let garbage = scenario.garbage;
    sim.host("device", move || {
        let log = device_log.clone();
        async move {
            // Let the subscriber get in first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut device = Client::connect(device_connect(protocol, will_delay)).await?;
            log.push("device", "connected with a will on t/1");
            if garbage {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                // PUBLISH with QoS 3: malformed ([MQTT-3.3.1-4]).
                device.stream.write_all(&[0x36, 0x00]).await?;
                log.push("device", "sent a PUBLISH with QoS 3");
            }
            // Stay connected (and silent) until the host is crashed or the broker closes.
            loop {
                match device.recv().await? {
                    Some(Packet::Disconnect(d)) => {
                        log.push("device", format!("received DISCONNECT 0x{:02X}", d.code))
                    }
                    Some(packet) => log.push("device", format!("received {}", packet.name())),
                    None => {
                        log.push("device", "connection closed by the broker");
                        return Ok(());
                    }
                }
            }
        }
    });

    let crash_at = Duration::from_secs(2);
    while sim.elapsed() < crash_at {
        sim.step().expect("simulation step");
    }
    if !garbage {
        log.push_at(sim.elapsed(), "test", "crashing the device host");
        sim.crash("device");
    }
    sim.run().expect("simulation");
    log.lines()
}

/// The virtual time, in seconds, of the first log line containing `needle`.
fn time_of(log: &[String], needle: &str) -> f64 {
    let line = log
        .iter()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in the log:\n{}", log.join("\n")));
    line.split('s').next().unwrap().trim().parse().unwrap()
}

#[test]
fn will_is_published_when_the_device_crashes() {
    for protocol in [Protocol::V311, Protocol::V5] {
        let log = run(Scenario {
            seed: 1,
            protocol,
            will_delay: None,
            latency: Some(Duration::from_millis(5)),
            garbage: false,
        });
        let crash = time_of(&log, "crashing the device host");
        let will = time_of(&log, &format!("received t/1 {WILL_PAYLOAD}"));
        let text = log.join("\n");
        assert!((2.0..2.1).contains(&crash), "{text}");
        // FIN to the broker, then the will to the subscriber: two 5 ms hops.
        assert!(will >= crash && will - crash < 0.05, "{protocol}:\n{text}");
    }
}

#[test]
fn delayed_will_arrives_after_the_delay_and_not_before() {
    let real = std::time::Instant::now();
    let log = run(Scenario {
        seed: 2,
        protocol: Protocol::V5,
        will_delay: Some(30),
        latency: Some(Duration::from_millis(5)),
        garbage: false,
    });
    let crash = time_of(&log, "crashing the device host");
    let will = time_of(&log, &format!("received t/1 {WILL_PAYLOAD}"));
    let text = log.join("\n");
    assert!(will >= crash + 30.0, "will came early:\n{text}");
    assert!(will < crash + 30.05, "will came late:\n{text}");
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "30 s of virtual time took {:?} of real time",
        real.elapsed()
    );
}

#[test]
fn same_seed_same_log() {
    let scenario = |seed| Scenario {
        seed,
        protocol: Protocol::V5,
        will_delay: Some(3),
        // turmoil's seeded random latency, so the seed matters.
        latency: None,
        garbage: false,
    };
    let first = run(scenario(42));
    let second = run(scenario(42));
    assert_eq!(first, second);
    assert!(
        first.iter().any(|line| line.contains(WILL_PAYLOAD)),
        "{}",
        first.join("\n")
    );
}

#[test]
fn undecodable_input_closes_the_connection_and_publishes_the_will() {
    let log = run(Scenario {
        seed: 3,
        protocol: Protocol::V5,
        will_delay: None,
        latency: Some(Duration::from_millis(5)),
        garbage: true,
    });
    let text = log.join("\n");
    let sent = time_of(&log, "sent a PUBLISH with QoS 3");
    // v5: DISCONNECT 0x81 Malformed Packet, then the close ([MQTT-4.13.1-1]).
    let disconnect = time_of(&log, "received DISCONNECT 0x81");
    let closed = time_of(&log, "connection closed by the broker");
    let will = time_of(&log, &format!("received t/1 {WILL_PAYLOAD}"));
    assert!(sent < disconnect && disconnect <= closed, "{text}");
    // A server-initiated close publishes the will ([MQTT-3.1.2-8]).
    assert!(will >= sent && will - sent < 0.05, "{text}");
}
