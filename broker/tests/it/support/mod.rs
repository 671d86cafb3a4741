//! What the broker's real-socket tests share: a broker on a free loopback port, a minimal
//! packet-level client, and a builder for raw CONNECT bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use lastwill_broker::codec::{
    self, Connect, Packet, Protocol, QoS, Subscribe, SubscriptionRequest,
};
use lastwill_broker::config::Config;
use lastwill_broker::driver::{Metrics, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A broker serving on 127.0.0.1; it stops when dropped.
pub struct TestBroker {
    pub addr: SocketAddr,
    /// The broker's own accounting of queued bytes, read buffers and drops.
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl TestBroker {
    /// Shuts the broker down gracefully and waits until it has stopped.
    pub async fn shut_down(mut self) {
        drop(self.stop.take());
        if let Some(served) = self.served.take() {
            served.await.unwrap();
        }
    }
}

pub async fn start_broker() -> TestBroker {
    start_broker_with(Config::default()).await
}

pub async fn start_broker_with(config: Config) -> TestBroker {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::new(config);
    let metrics = server.metrics();
    let served = tokio::spawn(server.serve(listener, stopped));
    TestBroker {
        addr,
        metrics,
        stop: Some(stop),
        served: Some(served),
    }
}

/// Whole packets in, whole packets out.
pub struct Client {
    pub stream: TcpStream,
    protocol: Protocol,
    buf: BytesMut,
}

impl Client {
    pub async fn connect(addr: SocketAddr, protocol: Protocol) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            protocol,
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        codec::encode(&packet, self.protocol, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next packet, or `None` when the connection closes or nothing comes within 5 s.
    pub async fn recv(&mut self) -> Option<Packet> {
        self.recv_within(Duration::from_secs(5)).await
    }

    /// The next packet, or `None` when the connection closes or nothing comes in `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Packet> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some(packet) =
                    codec::decode(&mut self.buf, Some(self.protocol), u32::MAX).unwrap()
                {
                    return Some(packet);
                }
                if matches!(self.stream.read_buf(&mut self.buf).await, Ok(0) | Err(_)) {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}

/// A v5 client `client_id`, connected and subscribed to `filter` at QoS 0.
pub async fn subscriber(addr: SocketAddr, client_id: &str, filter: &str) -> Client {
    subscribed(addr, Connect::new(Protocol::V5, client_id), filter).await
}

/// A client connected with `connect` (a v5 CONNECT) and subscribed to `filter` at QoS 0.
pub async fn subscribed(addr: SocketAddr, connect: Connect, filter: &str) -> Client {
    let mut client = Client::connect(addr, Protocol::V5).await;
    client.send(Packet::Connect(connect)).await;
    assert!(matches!(client.recv().await, Some(Packet::ConnAck(c)) if c.code.is_success()));
    client
        .send(Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![SubscriptionRequest::new(filter, QoS::AtMostOnce)],
            subscription_identifier: None,
            user_properties: vec![],
        }))
        .await;
    assert!(matches!(client.recv().await, Some(Packet::SubAck(_))));
    client
}

/// Everything the server sends until it closes the connection (at most 5 s).
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all)).await;
    all
}

/// CONNECT bytes with the given flags byte, v5 CONNECT properties (`None` for 3.1.1) and
/// payload; the Remaining Length is computed.
pub fn raw_connect(level: u8, flags: u8, properties: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 60];
    if let Some(properties) = properties {
        body.push(u8::try_from(properties.len()).unwrap());
        body.extend_from_slice(properties);
    }
    body.extend_from_slice(payload);
    let mut frame = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        frame.push(byte);
        if len == 0 {
            break;
        }
    }
    frame.extend(body);
    frame
}

/// A length-prefixed MQTT string or binary field.
pub fn field(bytes: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}
