//! Runs the sans-IO [`Broker`] core on tokio, over real or simulated TCP.
//!
//! The core ([`crate::core`]) knows nothing about sockets, tasks or clocks. This module is the
//! thin layer that gives it all three, in the style of `quinn` around `quinn-proto`:
//!
//! ```text
//!   Listener::accept ──▶ ┌────────────────────┐  Event (packet, decode error, lost)
//!                        │ connection task ×N │ ───────────────────────────────┐
//!   socket bytes ◀──────▶│ (frame + decode)   │ ◀──────────────┐               ▼
//!                        └────────────────────┘   Outgoing     │    ┌───────────────────┐
//!                                                 (bytes,close)└─── │  core task: owns  │
//!                                                                   │  the Broker, the  │
//!                                   tokio::time::sleep_until ─────▶ │  clock and timers │
//!                                                                   └───────────────────┘
//! ```
//!
//! - **One task owns the core.** [`Server::serve`] runs the loop that owns the [`Broker`]:
//!   it accepts connections, receives `connection::Event`s from the connection tasks over
//!   one bounded channel, and sleeps until [`Broker::next_deadline`]. Time is handed to the
//!   core as `tokio::time::Instant::now() - start`, so under turmoil (or tokio's paused test
//!   clock) the broker lives in virtual time without knowing it.
//! - **One task per connection** (`connection`) reads, frames and decodes, and writes what
//!   the core produced. Packets reach the core in the order they were read.
//! - **One write per connection per wake-up.** After each wake-up (an accepted connection, a
//!   burst of events, a timer) the core task drains [`Broker::poll_output`], encodes every
//!   [`Output::Send`] with the protocol the core names, and concatenates all bytes for one
//!   connection into a single `connection::Outgoing`: a will fanned out to a subscriber
//!   together with, say, a PUBACK is one `write` syscall (or one simulated segment).
//!   [`Output::Close`] marks that batch as the last: the connection task writes it, shuts the
//!   write side down and drops the stream.
//! - **Determinism.** Every `select!` is `biased;`, outputs are routed in a `BTreeMap` by
//!   connection id, and ids are handed out in accept order, so with turmoil's seeded scheduler
//!   the same seed always gives the same bytes at the same virtual times.
//! - **Back-pressure.** Connection tasks wait when the event channel is full. The core task
//!   never waits on a connection: if a client stops reading and the bytes waiting for it pass
//!   a limit (8 MiB), the broker drops that connection (logged) and treats it as lost, which
//!   applies the will rules like any other abnormal close.
//!
//! [`serve_tcp`] binds `config.listen`, reports the bound address and serves on it; that is
//! what `lastwill broker` runs.

mod connection;
mod listener;

pub use listener::Listener;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::codec;
use crate::config::Config;
use crate::core::{Broker, ConnectionId, Output};

use connection::{Event, Outgoing, WriteQueue};

/// Capacity of the channel from all connection tasks to the core task.
const EVENT_QUEUE: usize = 1024;
/// Events handled in one wake-up of the core task before its outputs are flushed.
const EVENTS_PER_WAKEUP: usize = 64;
/// Pause before accepting again after `accept` failed (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long shutdown waits for connection tasks to flush their last bytes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The reference broker: the [`Broker`] core plus the tokio plumbing around it.
pub struct Server {
    config: Config,
}

/// The core task's handle on one connection task.
struct ConnectionHandle {
    outgoing: WriteQueue,
    task: AbortHandle,
}

impl Server {
    pub fn new(config: Config) -> Server {
        Server { config }
    }

    /// Serves clients from `listener` until `shutdown` completes.
    ///
    /// On shutdown the core publishes every stored will and sends each client DISCONNECT
    /// (see [`Broker::shutdown`]); this returns once those bytes are written, or after a grace
    /// period of a few seconds for clients that do not read.
    pub async fn serve<L: Listener>(self, listener: L, shutdown: impl Future) {
        let mut driver = Driver::new(self.config);
        let mut shutdown = std::pin::pin!(shutdown);
        let (events_tx, mut events_rx) = mpsc::channel(EVENT_QUEUE);
        let mut tasks = JoinSet::new();
        let mut accept_paused_until: Option<Instant> = None;
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "broker listening");
        }
        loop {
            let deadline = driver.core.next_deadline().map(|due| driver.start + due);
            let accepting = accept_paused_until.is_none();
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                event = events_rx.recv() => {
                    // We hold a sender ourselves, so the channel never reports closed.
                    let Some(event) = event else { break };
                    let now = driver.now();
                    driver.handle(now, event);
                    for _ in 1..EVENTS_PER_WAKEUP {
                        match events_rx.try_recv() {
                            Ok(event) => driver.handle(now, event),
                            Err(_) => break,
                        }
                    }
                    // Events come first, but a busy broker must still take new clients: look
                    // at the listener once without waiting.
                    if accepting && let Some(accepted) = poll_once(listener.accept()).await {
                        accept_paused_until = driver.accepted(accepted, &mut tasks, &events_tx);
                    }
                }
                () = sleep_until_or_never(deadline) => {}
                () = sleep_until_or_never(accept_paused_until) => accept_paused_until = None,
                accepted = listener.accept(), if accepting => {
                    accept_paused_until = driver.accepted(accepted, &mut tasks, &events_tx);
                }
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(error) = joined
                        && error.is_panic()
                    {
                        error!(%error, "connection task panicked");
                    }
                }
            }
            // Whatever woke us, timers that are due run now, before outputs are flushed.
            let now = driver.now();
            if driver.core.next_deadline().is_some_and(|due| due <= now) {
                driver.core.handle_timeout(now);
            }
            driver.flush(now);
        }

        drop(listener);
        let now = driver.now();
        driver.core.shutdown(now);
        driver.flush(now);
        // Dropping the senders lets every connection task finish once its last batch is out.
        driver.connections.clear();
        drop(events_rx);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                remaining = tasks.len(),
                "connections did not finish writing in time; aborting them"
            );
            tasks.shutdown().await;
        }
        info!("broker stopped");
    }
}

/// Binds `config.listen` over real TCP, tells `listening` the address it got (port 0 asks the
/// OS for a free one), and serves until `shutdown` completes.
pub async fn serve_tcp(
    config: Config,
    listening: impl FnOnce(SocketAddr),
    shutdown: impl Future,
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    listening(listener.local_addr()?);
    Server::new(config).serve(listener, shutdown).await;
    Ok(())
}

/// Polls `future` once: its output if it is ready right away, `None` otherwise (and the future
/// is dropped, so it must be cancel-safe).
async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Sleeps until `deadline`, or forever when there is none (so a `select!` branch never fires).
async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The state of the core task.
struct Driver {
    core: Broker,
    start: Instant,
    next_id: ConnectionId,
    connections: BTreeMap<ConnectionId, ConnectionHandle>,
}

impl Driver {
    fn new(config: Config) -> Driver {
        Driver {
            core: Broker::new(config),
            start: Instant::now(),
            next_id: 1,
            connections: BTreeMap::new(),
        }
    }

    /// Broker time: how long the broker has been running.
    fn now(&self) -> Duration {
        Instant::now() - self.start
    }

    /// Starts a task for a newly accepted connection and tells the core. Returns when to
    /// try accepting again if `accept` failed (e.g. out of file descriptors).
    fn accepted<S>(
        &mut self,
        accepted: io::Result<(S, SocketAddr)>,
        tasks: &mut JoinSet<()>,
        events: &mpsc::Sender<Event>,
    ) -> Option<Instant>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed");
                return Some(Instant::now() + ACCEPT_BACKOFF);
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        info!(connection = id, %peer, "connection opened");
        let (outgoing, outgoing_rx) = connection::write_queue();
        let max_packet_size = self.core.config().max_packet_size;
        let task = tasks.spawn(connection::run(
            id,
            stream,
            max_packet_size,
            events.clone(),
            outgoing_rx,
        ));
        self.connections
            .insert(id, ConnectionHandle { outgoing, task });
        let now = self.now();
        self.core.connection_opened(now, id);
        None
    }

    fn handle(&mut self, now: Duration, event: Event) {
        match event {
            Event::Packet(id, packet) => self.core.packet_received(now, id, packet),
            Event::DecodeFailed(id, error) => self.core.decode_failed(now, id, &error),
            Event::Lost(id) => self.core.connection_lost(now, id),
        }
    }

    /// Drains the core's outputs and hands each connection its bytes in one batch.
    fn flush(&mut self, now: Duration) {
        loop {
            let mut batches: BTreeMap<ConnectionId, (BytesMut, bool)> = BTreeMap::new();
            while let Some(output) = self.core.poll_output() {
                match output {
                    Output::Send {
                        connection,
                        protocol,
                        packet,
                    } => {
                        let (buf, _) = batches.entry(connection).or_default();
                        if let Err(error) = codec::encode(&packet, protocol, buf) {
                            error!(connection, %error, "dropping a packet the codec cannot encode");
                        }
                    }
                    Output::Close { connection } => batches.entry(connection).or_default().1 = true,
                }
            }
            if batches.is_empty() {
                return;
            }
            let mut too_slow = Vec::new();
            for (id, (bytes, close)) in batches {
                let Some(handle) = self.connections.get(&id) else {
                    continue;
                };
                let batch = Outgoing {
                    bytes: bytes.freeze(),
                    close,
                };
                match handle.outgoing.push(batch) {
                    // After its last batch the task finishes on its own: forget it.
                    Ok(()) if close => drop(self.connections.remove(&id)),
                    Ok(()) => {}
                    // Over the backlog limit: the client does not read. Or its task is gone.
                    Err(_) => {
                        if let Some(handle) = self.connections.remove(&id) {
                            handle.task.abort();
                        }
                        if !close {
                            too_slow.push(id);
                        }
                    }
                }
            }
            // Losing a connection produces more outputs (a will, a close): go round again.
            for id in too_slow {
                warn!(
                    connection = id,
                    limit = connection::WRITE_BACKLOG_LIMIT,
                    "write backlog over the limit or connection task gone; dropping the connection"
                );
                self.core.connection_lost(now, id);
            }
        }
    }
}
