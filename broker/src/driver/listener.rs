//! Where connections come from.
//!
//! The driver does not care whether a byte stream is a real TCP socket or a simulated one: it
//! only needs something that hands out new streams. [`Listener`] is that something. It is
//! implemented for [`tokio::net::TcpListener`] (the real broker) and, with the crate feature
//! `turmoil`, for `turmoil::net::TcpListener` (the deterministic simulator), so the very same
//! driver code runs in production and under simulated time and faults.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

/// A source of incoming byte streams, one per client connection.
///
/// `accept` must be cancel-safe: the driver waits for it inside `select!` next to other
/// work, and drops the future when another branch wins. Both implementations in this crate
/// are (a connection that was not returned stays queued for the next call).
pub trait Listener {
    /// One accepted connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection and returns it with the peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>>;

    /// The address this listener is bound to (useful after binding port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Ready once `stream` has bytes to read (or an error, or end of stream). The driver
    /// polls this before it allocates a read buffer, so an idle connection holds none. The
    /// default is always ready: the buffer is then allocated before the read is polled (and
    /// given back when the read is pending).
    fn poll_read_ready(_stream: &Self::Stream, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // MQTT packets are small and latency matters more than segment count: the driver
        // already coalesces everything for one connection into one write per wake-up.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
        }
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }

    fn poll_read_ready(stream: &Self::Stream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        stream.poll_read_ready(cx)
    }
}

#[cfg(feature = "turmoil")]
impl Listener for turmoil::net::TcpListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        turmoil::net::TcpListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        turmoil::net::TcpListener::local_addr(self)
    }
}
