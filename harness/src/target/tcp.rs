//! The TCP target: the same scenarios against any running broker, over real sockets and in
//! real time.
//!
//! - Faults map to their nearest real equivalent: `drop rst` sets `SO_LINGER 0` and closes
//!   (the kernel sends RST), `drop fin` shuts the write side down without DISCONNECT,
//!   `silence` stops sending (the client keeps reading), `vanish` stops sending and reading
//!   and keeps the socket open until the run ends, so no FIN or RST ever leaves.
//! - Steps only the simulator can do (`net:`) and `broker: restart` without a restart command
//!   skip the scenario, with the reason; so do `broker:` requirements the target's CONNACK
//!   shows it does not meet.
//! - Every client id and topic gets a per-run prefix, so parallel and repeated runs never see
//!   each other; retained messages a run leaves under its prefix are cleared afterwards.
//! - Time windows are checked on the harness's monotonic clock, widened by a tolerance for
//!   brokers that tick once a second.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lastwill_broker::codec::{
    self, Connect, Disconnect, Packet, Protocol, Publish, QoS, Subscribe, SubscriptionRequest,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Control, Network, direct};
use crate::client::Agent;
use crate::scenario::{
    Action, BrokerConfig, MAX_TOPIC_BYTES, MessageMatcher, NetAction, Receives, Scenario, StepKind,
};
use crate::target::sim::Run;
use crate::transcript::{EventKind, Recorder};
use crate::verdict::{self, Tolerance, Verdict};

/// Defaults for real brokers, which usually run their timers on one-second ticks.
pub const DEFAULT_TOLERANCE: Tolerance = Tolerance {
    early: Duration::from_millis(500),
    late: Duration::from_millis(1500),
};

/// Where and how to reach the broker under test.
#[derive(Clone)]
pub struct TcpTarget {
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<tokio_rustls::TlsConnector>>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A shell command that restarts the broker (enables `broker: restart`).
    pub restart_cmd: Option<String>,
    pub tolerance: Tolerance,
}

impl std::fmt::Debug for TcpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// What the broker announced in the CONNACK of a plain v5 connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub maximum_qos: QoS,
    pub retain_available: bool,
    pub maximum_packet_size: Option<u32>,
    pub server_keep_alive: Option<u16>,
    pub topic_alias_maximum: u16,
    pub receive_maximum: u16,
    pub wildcard_subscriptions: bool,
    pub subscription_identifiers: bool,
    pub shared_subscriptions: bool,
}

impl TcpTarget {
    /// A new connection to the broker (TLS when the target is `mqtts://`).
    pub(crate) async fn open(&self) -> io::Result<Stream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(connector) => {
                let name = rustls_pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let tls = connector.connect(name, tcp).await?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }

    /// Connects with MQTT 5 and reads the broker's capabilities from its CONNACK. Fails with a
    /// one-line reason when nothing listens or the peer does not speak MQTT.
    pub async fn probe(&self) -> Result<Capabilities, String> {
        let target = format!("{self:?}");
        // Unique per probe: probes of one process (a matrix, parallel tests) may meet at the
        // same broker, and a shared client id would make one take the other over.
        static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let client_id = format!("lastwill-probe-{}-{n}", std::process::id());
        let mut probe = tokio::time::timeout(
            Duration::from_secs(5),
            PacketLink::connect(self, Connect::new(Protocol::V5, client_id)),
        )
        .await
        .map_err(|_| format!("{target}: connection timed out"))?
        .map_err(|e| format!("{target}: cannot connect: {e}"))?;
        let reply = match probe.recv(Duration::from_secs(5)).await {
            Ok(Some(packet)) => packet,
            Ok(None) => {
                return Err(format!(
                    "{target} sent no CONNACK within 5s: is it an MQTT 5 broker?"
                ));
            }
            Err(Incoming::Closed) => {
                return Err(format!("{target} closed the connection without a CONNACK"));
            }
            Err(Incoming::Undecodable(e)) => {
                return Err(format!("{target} does not answer like an MQTT broker: {e}"));
            }
        };
        let Packet::ConnAck(connack) = reply else {
            return Err(format!("{target} answered CONNECT with {}", reply.name()));
        };
        if !connack.code.is_success() {
            return Err(format!(
                "{target} refused the probe connection with CONNACK {}",
                connack.code
            ));
        }
        probe.goodbye(&[]).await;
        let p = connack.properties;
        Ok(Capabilities {
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available.unwrap_or(true),
            maximum_packet_size: p.maximum_packet_size,
            server_keep_alive: p.server_keep_alive,
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX),
            wildcard_subscriptions: p.wildcard_subscription_available.unwrap_or(true),
            subscription_identifiers: p.subscription_identifiers_available.unwrap_or(true),
            shared_subscriptions: p.shared_subscription_available.unwrap_or(true),
        })
    }

    /// Why this target cannot run `scenario`, if it cannot.
    pub fn skip_reason(&self, scenario: &Scenario, capabilities: &Capabilities) -> Option<String> {
        for step in &scenario.steps {
            match &step.kind {
                StepKind::Net(_) => {
                    return Some(format!(
                        "line {}: network faults (`net:`) need the simulator",
                        step.location.line
                    ));
                }
                StepKind::BrokerRestart if self.restart_cmd.is_none() => {
                    return Some(format!(
                        "line {}: `broker: restart` needs --restart-cmd",
                        step.location.line
                    ));
                }
                _ => {}
            }
        }
        unmet_requirement(&scenario.broker, capabilities)
    }
}

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

/// The first `broker:` requirement that the target's capabilities do not meet.
fn unmet_requirement(wanted: &BrokerConfig, has: &Capabilities) -> Option<String> {
    fn differs<T: PartialEq + std::fmt::Debug>(
        name: &str,
        wanted: Option<T>,
        has: T,
    ) -> Option<String> {
        let wanted = wanted?;
        (wanted != has)
            .then(|| format!("needs a broker with {name} {wanted:?}; this one announces {has:?}"))
    }
    let unverifiable = [
        ("max_session_expiry", wanted.max_session_expiry.is_some()),
        ("max_queued_messages", wanted.max_queued_messages.is_some()),
        ("max_connections", wanted.max_connections.is_some()),
        ("connect_timeout", wanted.connect_timeout.is_some()),
        ("credentials", wanted.credentials.is_some()),
    ];
    if let Some((name, _)) = unverifiable.iter().find(|(_, set)| *set) {
        return Some(format!(
            "needs broker setting `{name}`, which a CONNACK cannot confirm"
        ));
    }
    differs("max_qos", wanted.max_qos, has.maximum_qos)
        .or_else(|| {
            differs(
                "retain_available",
                wanted.retain_available,
                has.retain_available,
            )
        })
        .or_else(|| {
            differs(
                "max_packet_size",
                wanted.max_packet_size.map(Some),
                has.maximum_packet_size,
            )
        })
        .or_else(|| {
            differs(
                "server_keep_alive",
                wanted.server_keep_alive.map(Some),
                has.server_keep_alive,
            )
        })
        .or_else(|| {
            differs(
                "topic_alias_maximum",
                wanted.topic_alias_maximum,
                has.topic_alias_maximum,
            )
        })
        .or_else(|| {
            differs(
                "receive_maximum",
                wanted.receive_maximum,
                has.receive_maximum,
            )
        })
        .or_else(|| {
            differs(
                "wildcard_subscriptions",
                wanted.wildcard_subscriptions,
                has.wildcard_subscriptions,
            )
        })
        .or_else(|| {
            differs(
                "subscription_identifiers",
                wanted.subscription_identifiers,
                has.subscription_identifiers,
            )
        })
        .or_else(|| {
            differs(
                "shared_subscriptions",
                wanted.shared_subscriptions,
                has.shared_subscriptions,
            )
        })
}

/// Runs one scenario against the target, in real time, on the current thread. With a
/// `prefix`, its client ids and topics are moved under it; without one (an exclusive run, see
/// [`needs_exclusive_run`]) they are used as written.
pub fn run(scenario: &Scenario, target: &TcpTarget, prefix: Option<&str>) -> Result<Run, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    let mut scenario = match prefix {
        Some(prefix) => with_prefix(scenario, prefix),
        None => scenario.clone(),
    };
    with_credentials(&mut scenario, target);
    let result = local.block_on(&runtime, async {
        let start = Instant::now();
        let graveyard = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder::default();
        let mut agents = BTreeMap::new();
        let mut tasks = Vec::new();
        for spec in &scenario.clients {
            let (tx, rx) = mpsc::unbounded_channel();
            agents.insert(spec.name.clone(), tx);
            let network = TcpNetwork {
                target: target.clone(),
                start,
                graveyard: Arc::clone(&graveyard),
            };
            let agent = Agent::new(spec.clone(), network, recorder.clone());
            tasks.push(tokio::task::spawn_local(agent.run(rx)));
        }
        let control = TcpControl {
            start,
            restart_cmd: target.restart_cmd.clone(),
            target: target.clone(),
        };
        let direction = direct(&scenario, &control, &agents, &recorder).await;
        drop(agents);
        for task in tasks {
            let _ = task.await;
        }
        graveyard.lock().expect("graveyard lock").clear();
        let transcript = recorder.transcript();
        let filter = match prefix {
            Some(prefix) => format!("{prefix}/#"),
            None => "#".to_owned(),
        };
        end_sessions(target, &scenario).await;
        clear_retained(target, &filter, &transcript).await;
        (direction, transcript)
    });
    let (direction, transcript) = result;
    let mut checks = direction.checks;
    checks.extend(verdict::final_checks(
        &scenario,
        &transcript,
        &direction.marks,
        target.tolerance,
    ));
    Ok(Run {
        verdict: Verdict::of(&checks),
        transcript,
        checks,
    })
}

/// A copy of the scenario whose client ids and topics live under `prefix`.
///
/// Topics become `PREFIX/topic` (shared subscriptions `$share/group/PREFIX/filter`);
/// `$` topics, empty strings and topics at the length limit are kept as they are, since
/// prefixing would change what they test. Raw `send:` bytes are not rewritten.
pub fn with_prefix(scenario: &Scenario, prefix: &str) -> Scenario {
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

/// Gives every structured CONNECT that names no user the target's `--username`/`--password`.
fn with_credentials(scenario: &mut Scenario, target: &TcpTarget) {
    if target.username.is_none() {
        return;
    }
    for step in &mut scenario.steps {
        if let StepKind::Client {
            action: Action::Connect(connect),
            ..
        } = &mut step.kind
            && connect.username.is_none()
        {
            connect.username = target.username.clone();
            connect.password = target.password.clone().map(Bytes::from);
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

/// Ends every session the run's clients may have left on the broker (Clean Start 1, Session
/// Expiry 0, DISCONNECT 0x00), so that no delayed will or queued message of this run reaches
/// a later one. A will still pending in such a session is due at its session's end and comes
/// out now, while nothing of this run listens any more.
async fn end_sessions(target: &TcpTarget, scenario: &Scenario) {
    let mut client_ids: Vec<&str> = scenario
        .clients
        .iter()
        .map(|c| c.client_id.as_str())
        .collect();
    for step in &scenario.steps {
        if let StepKind::Client {
            action: Action::Connect(connect),
            ..
        } = &step.kind
        {
            client_ids.push(&connect.client_id);
        }
    }
    client_ids.retain(|id| !id.is_empty());
    client_ids.sort_unstable();
    client_ids.dedup();
    for client_id in client_ids {
        let Ok(mut session) =
            PacketLink::connect(target, Connect::new(Protocol::V5, client_id)).await
        else {
            return;
        };
        // wait for the CONNACK (or the refusal) before saying goodbye
        let _ = session.recv(Duration::from_secs(2)).await;
        session.goodbye(&[]).await;
    }
}

/// Clears the retained messages a run left: subscribe to `filter` (the run's `PREFIX/#`, or
/// `#` for an exclusive run), collect what is retained for a moment, and publish an empty
/// retained message to each topic. `$` topics are not matched by `#`: those the run used
/// (as seen in its transcript) are subscribed to by name.
async fn clear_retained(
    target: &TcpTarget,
    filter: &str,
    transcript: &crate::transcript::Transcript,
) {
    let client_id = format!("lastwill-cleanup-{}", std::process::id());
    let Ok(mut cleaner) =
        PacketLink::connect(target, Connect::new(Protocol::V311, client_id)).await
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
        .recv(deadline.saturating_duration_since(Instant::now()))
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

/// A connection of the harness's own (probe, clean-up, will storms): a CONNECT with the
/// target's credentials, then whole packets in and out.
pub(crate) struct PacketLink {
    stream: Stream,
    protocol: Protocol,
    incoming: BytesMut,
}

/// Why a link stopped reading.
pub(crate) enum Incoming {
    Closed,
    Undecodable(String),
}

impl PacketLink {
    /// Opens a connection and sends `connect` (with the target's credentials); the CONNACK is
    /// the caller's to read.
    pub(crate) async fn connect(
        target: &TcpTarget,
        mut connect: Connect,
    ) -> io::Result<PacketLink> {
        connect.username = target.username.clone();
        connect.password = target.password.clone().map(Bytes::from);
        let mut link = PacketLink {
            stream: target.open().await?,
            protocol: connect.protocol,
            incoming: BytesMut::new(),
        };
        link.send(&[Packet::Connect(connect)]).await?;
        Ok(link)
    }

    pub(crate) async fn send(&mut self, packets: &[Packet]) -> io::Result<()> {
        let mut buf = BytesMut::new();
        for packet in packets {
            codec::encode(packet, self.protocol, &mut buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        self.stream.write_all(&buf).await
    }

    /// The next packet; `Ok(None)` when none comes within `limit`.
    pub(crate) async fn recv(&mut self, limit: Duration) -> Result<Option<Packet>, Incoming> {
        let read = async {
            loop {
                match codec::decode(&mut self.incoming, Some(self.protocol), u32::MAX) {
                    Ok(Some(packet)) => return Ok(packet),
                    Ok(None) => {}
                    Err(e) => return Err(Incoming::Undecodable(e.to_string())),
                }
                if matches!(
                    self.stream.read_buf(&mut self.incoming).await,
                    Ok(0) | Err(_)
                ) {
                    return Err(Incoming::Closed);
                }
            }
        };
        match tokio::time::timeout(limit, read).await {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The connection itself, to close it some other way than [`PacketLink::goodbye`].
    pub(crate) fn into_stream(self) -> Stream {
        self.stream
    }

    /// Sends `last`, then DISCONNECT 0x00, and closes.
    pub(crate) async fn goodbye(mut self, last: &[Packet]) {
        let mut packets = last.to_vec();
        packets.push(Packet::Disconnect(Disconnect::default()));
        let _ = self.send(&packets).await;
        let _ = self.stream.shutdown().await;
    }
}

/// TLS settings for `mqtts://` targets: trust `ca_file` (PEM) or the Mozilla roots, or, with
/// `insecure`, any certificate at all.
pub fn tls_connector(
    ca_file: Option<&std::path::Path>,
    insecure: bool,
) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// `--insecure`: accepts every server certificate (signatures are still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Clone)]
struct TcpNetwork {
    target: TcpTarget,
    start: Instant,
    /// Streams of vanished clients: open and untouched until the run ends.
    graveyard: Arc<Mutex<Vec<Stream>>>,
}

impl Network for TcpNetwork {
    type Stream = Stream;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn connect(&self, _client: &str) -> io::Result<Stream> {
        self.target.open().await
    }

    fn reset(&self, stream: Stream) {
        stream.reset();
    }

    fn forget(&self, stream: Stream) {
        self.graveyard.lock().expect("graveyard lock").push(stream);
    }

    fn vanish(&self, _client: &str) {}

    fn reappear(&self, _client: &str) {}
}

struct TcpControl {
    start: Instant,
    restart_cmd: Option<String>,
    target: TcpTarget,
}

impl Control for TcpControl {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn restart_broker(&self) -> Result<(), String> {
        let Some(cmd) = &self.restart_cmd else {
            return Err("`broker: restart` needs --restart-cmd".into());
        };
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .await
            .map_err(|e| format!("restart command: {e}"))?;
        if !status.success() {
            return Err(format!("restart command exited with {status}"));
        }
        // wait until the broker accepts connections again
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.target.open().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the broker did not come back within 30s".into())
    }

    fn net(&self, _action: &NetAction) -> Result<(), String> {
        Err("network faults need the simulator".into())
    }
}

/// A plain or TLS connection to the broker.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Closes abruptly: with `SO_LINGER 0`, close() sends RST instead of FIN (and no TLS
    /// close_notify either).
    pub fn reset(self) {
        let tcp = match &self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
        drop(self);
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
