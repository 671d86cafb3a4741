//! How a client reaches the broker: the one thing a runner must give the scripted client.
//! The simulator's network is turmoil's (faults are partitions between hosts); the TCP
//! runner's is the operating system's.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// The client side of a runner's network.
pub trait Network: Clone + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;

    /// Time since the run started.
    fn now(&self) -> Duration;

    /// Opens a connection to the broker for `client`.
    fn connect(&self, client: &str) -> impl Future<Output = io::Result<Self::Stream>>;

    /// Closes abortively (RST) where the network can; otherwise closes.
    fn reset(&self, stream: Self::Stream);

    /// Gets rid of a vanished client's stream without anything reaching the broker.
    fn forget(&self, stream: Self::Stream);

    /// Cuts `client` off from the broker: nothing in or out, no FIN or RST.
    fn vanish(&self, client: &str);

    /// Undoes [`Network::vanish`] before the client connects again.
    fn reappear(&self, client: &str);
}
