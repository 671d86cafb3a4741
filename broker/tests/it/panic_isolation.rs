//! A panic while serving one connection closes that connection as lost, and only it: the
//! one core task serves every connection, so without isolation one bug would take every
//! client down (issue 10).
//!
//! How the panic is made: nothing a client sends can make the broker panic (that is what
//! `arbitrary_input.rs` checks), and the broker has no test hook. So the test brings its own
//! [`Listener`], whose streams panic inside `poll_read` once they have read a marker. The
//! driver polls a connection's stream in the same guarded step in which it decodes the
//! bytes and hands them to the core, so this is the very `catch_unwind` that would catch a
//! panic in the codec or the core.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{
    Connect, LastWill, MessageProperties, Packet, Protocol, Publish, QoS,
};
use lastwill_broker::config::Config;
use lastwill_broker::driver::{Listener, Server};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::support::{Client, subscriber};

/// A payload that makes the test's stream panic when the broker reads it.
const MARKER: &[u8] = b"make the broker's stream panic";

/// Real TCP, with streams that panic on [`MARKER`].
struct TrappedListener(TcpListener);

struct TrappedStream(TcpStream);

impl Listener for TrappedListener {
    type Stream = TrappedStream;

    async fn accept(&self) -> io::Result<(TrappedStream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((TrappedStream(stream), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn poll_read_ready(stream: &TrappedStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        stream.0.poll_read_ready(cx)
    }
}

impl AsyncRead for TrappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if buf.filled()[before..]
            .windows(MARKER.len())
            .any(|window| window == MARKER)
        {
            panic!("the test's stream read its marker");
        }
        polled
    }
}

impl AsyncWrite for TrappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

async fn connected(addr: SocketAddr, connect: Connect) -> Client {
    let mut client = Client::connect(addr, connect.protocol).await;
    client.send(Packet::Connect(connect)).await;
    match client.recv().await {
        Some(Packet::ConnAck(c)) if c.code.is_success() => client,
        other => panic!("expected CONNACK 0x00, got {other:?}"),
    }
}

fn publish(topic: &str, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish::new(
        topic,
        Bytes::from_static(payload),
        QoS::AtMostOnce,
    ))
}

/// The next PUBLISH `client` receives: its topic and payload.
async fn received(client: &mut Client) -> (String, Bytes) {
    match client.recv().await {
        Some(Packet::Publish(p)) => (p.topic.to_string(), p.payload),
        other => panic!("expected a PUBLISH, got {other:?}"),
    }
}

#[tokio::test]
async fn a_panic_closes_only_its_connection_and_publishes_its_will() {
    let listener = TrappedListener(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listener.local_addr().unwrap();
    let server = Server::new(Config::default());
    let metrics = server.metrics();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server.serve(listener, stopped));

    let mut watcher = subscriber(addr, "watcher", "t/#").await;
    let mut bystander = connected(addr, Connect::new(Protocol::V5, "bystander")).await;
    let mut victim_connect = Connect::new(Protocol::V5, "victim");
    victim_connect.will = Some(LastWill {
        topic: "t/will".into(),
        payload: Bytes::from_static(b"victim gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        delay_interval: None,
        properties: MessageProperties::default(),
    });
    let mut victim = connected(addr, victim_connect).await;

    victim.send(publish("t/boom", MARKER)).await;
    // Closed as lost: the connection ends and the will rules apply ([MQTT-3.1.2-8]).
    assert_eq!(
        received(&mut watcher).await,
        ("t/will".to_string(), Bytes::from_static(b"victim gone"))
    );
    assert!(
        victim.recv_within(Duration::from_secs(5)).await.is_none(),
        "the victim's connection stays open"
    );
    assert_eq!(metrics.snapshot().panicked_connections, 1);

    // Everyone else goes on being served, and new clients are taken.
    bystander.send(Packet::PingReq).await;
    assert!(matches!(bystander.recv().await, Some(Packet::PingResp)));
    bystander.send(publish("t/after", b"still here")).await;
    assert_eq!(
        received(&mut watcher).await,
        ("t/after".to_string(), Bytes::from_static(b"still here"))
    );
    let mut newcomer = connected(addr, Connect::new(Protocol::V311, "newcomer")).await;
    newcomer.send(Packet::PingReq).await;
    assert!(matches!(newcomer.recv().await, Some(Packet::PingResp)));
    assert_eq!(metrics.snapshot().panicked_connections, 1);

    drop(stop);
    served.await.unwrap();
}
