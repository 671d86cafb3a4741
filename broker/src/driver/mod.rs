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
//!   it accepts connections, receives [`connection::Event`]s from the connection tasks over
//!   one bounded channel, and sleeps until [`Broker::next_deadline`]. Time is handed to the
//!   core as `tokio::time::Instant::now() - start`, so under turmoil (or tokio's paused test
//!   clock) the broker lives in virtual time without knowing it.
//! - **One task per connection** ([`connection`]) reads, frames and decodes, and writes what
//!   the core produced. Packets reach the core in the order they were read.
//! - **One write per connection per wake-up.** After each wake-up (an accepted connection, a
//!   burst of events, a timer) the core task drains [`Broker::poll_output`], encodes every
//!   [`Output::Send`] with the protocol the core names into the connection's [`outbox`], and
//!   hands the connection task what fits in its write window as one batch: a will fanned out
//!   to a subscriber together with, say, a PUBACK is one `write` syscall (or one simulated
//!   segment). [`Output::Close`] marks the end: once the outbox is empty the connection task
//!   shuts the write side down and drops the stream.
//! - **Determinism.** Every `select!` is `biased;`, outputs are routed in a `BTreeMap` by
//!   connection id, and ids are handed out in accept order, so with turmoil's seeded scheduler
//!   the same seed always gives the same bytes at the same virtual times.
//! - **Back-pressure.** Connection tasks wait when the event channel is full. The core task
//!   never waits on a connection: what a client does not read waits in its outbox, bounded by
//!   `max_queued_bytes` and the `memory_budget` (the oldest QoS 0 go first, counted in
//!   [`Metrics`]); a write the client leaves unread for `write_timeout` ends the connection
//!   as lost, which applies the will rules like any other abnormal close. Past the memory
//!   budget new clients are refused (v5 CONNACK 0x97 Quota exceeded, 3.1.1 0x03 Server
//!   unavailable).
//!
//! [`serve_tcp`] binds `config.listen`, reports the bound address and serves on it; that is
//! what `lastwill broker` runs.

mod connection;
mod listener;
mod metrics;
mod outbox;

pub use listener::Listener;
pub use metrics::{Metrics, MetricsSnapshot};

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::codec::{
    self, ConnAck, ConnAckCode, ConnectReturnCode, Packet, Protocol, QoS, ReasonCode,
};
use crate::config::Config;
use crate::core::{Broker, ConnectionId, Output};
use crate::log_limit::DropLog;

use connection::{Event, Limits};
use outbox::{Outbox, WriteQueue};

/// Capacity of the channel from all connection tasks to the core task.
const EVENT_QUEUE: usize = 1024;
/// Events handled in one wake-up of the core task before its outputs are flushed.
const EVENTS_PER_WAKEUP: usize = 64;
/// Pause before accepting again after `accept` failed (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The reference broker: the [`Broker`] core plus the tokio plumbing around it.
pub struct Server {
    config: Config,
    metrics: Arc<Metrics>,
}

/// The core task's handle on one connection task.
struct ConnectionHandle {
    outbox: Outbox,
    writer: WriteQueue,
    task: AbortHandle,
}

impl Server {
    pub fn new(config: Config) -> Server {
        Server {
            config,
            metrics: Arc::default(),
        }
    }

    /// The broker's accounting of queued bytes, read buffers and what it dropped; it stays
    /// live while the server runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Serves clients from `listener` until `shutdown` completes.
    ///
    /// On shutdown the core publishes every stored will ([`Broker::begin_shutdown`]); the
    /// connected clients then get what is queued for them within their Receive Maximum,
    /// acking as they go, and only then DISCONNECT 0x8B ([`Broker::finish_shutdown`]). This
    /// returns once everything is written, or after `shutdown_grace` for clients that do not
    /// read or ack; the log says which it was.
    pub async fn serve<L: Listener>(self, listener: L, shutdown: impl Future) {
        let (drained_tx, mut drained_rx) = mpsc::unbounded_channel();
        let mut driver = Driver::new(self.config, self.metrics, drained_tx);
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
                        accept_paused_until = driver.accepted::<L>(accepted, &mut tasks, &events_tx);
                    }
                }
                Some(id) = drained_rx.recv() => driver.fill(id),
                () = sleep_until_or_never(deadline) => {}
                () = sleep_until_or_never(accept_paused_until) => accept_paused_until = None,
                accepted = listener.accept(), if accepting => {
                    accept_paused_until = driver.accepted::<L>(accepted, &mut tasks, &events_tx);
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
        let wills = driver.core.begin_shutdown(now);
        driver.flush(now);
        // Deliver what was promised: keep taking acks, which open the clients' windows for
        // the rest of their queues, until every connected client has it or the grace is over.
        driver
            .serve_until(&mut events_rx, &mut drained_rx, |d| {
                d.core.undelivered() == 0
            })
            .await;
        let unacknowledged = driver.core.undelivered();
        let now = driver.now();
        driver.core.finish_shutdown(now);
        driver.flush(now);
        // Every connection is closing now; keep its outbox flowing until it is empty, and
        // keep taking events so that no connection task waits on a full channel.
        let grace = driver
            .serve_until(&mut events_rx, &mut drained_rx, |d| {
                d.connections.is_empty()
            })
            .await;
        let undelivered: usize = driver
            .connections
            .values()
            .map(|handle| handle.writer.backlog(&handle.outbox))
            .sum();
        // Dropping the senders lets every connection task finish once its last batch is out.
        driver.connections.clear();
        drop(events_rx);
        let drained =
            tokio::time::timeout_at(grace, async { while tasks.join_next().await.is_some() {} })
                .await;
        if drained.is_err() || undelivered > 0 || unacknowledged > 0 {
            warn!(
                wills,
                unacknowledged_messages = unacknowledged,
                unwritten_bytes = undelivered,
                connections = tasks.len(),
                "shutdown grace over: closing clients that had not received (QoS 0) or acked (QoS 1/2) everything"
            );
            tasks.shutdown().await;
        } else {
            info!(
                wills,
                "shutdown: every message published to a connected client was delivered"
            );
        }
        driver.drops.flush(driver.now());
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
pub(crate) async fn sleep_until_or_never(deadline: Option<Instant>) {
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
    metrics: Arc<Metrics>,
    /// Where connection tasks say they have room for more.
    drained: mpsc::UnboundedSender<ConnectionId>,
    drops: DropLog,
}

impl Driver {
    /// Keeps taking connection events and refilling outboxes until `done` holds or
    /// `shutdown_grace` from now has passed; returns that grace's end.
    async fn serve_until(
        &mut self,
        events_rx: &mut mpsc::Receiver<Event>,
        drained_rx: &mut mpsc::UnboundedReceiver<ConnectionId>,
        done: impl Fn(&Driver) -> bool,
    ) -> Instant {
        let grace = Instant::now() + Duration::from_secs(self.core.config().shutdown_grace.into());
        while !done(self) {
            tokio::select! {
                biased;
                Some(event) = events_rx.recv() => {
                    let now = self.now();
                    self.handle(now, event);
                    self.flush(now);
                }
                Some(id) = drained_rx.recv() => self.fill(id),
                () = tokio::time::sleep_until(grace) => break,
            }
        }
        grace
    }

    fn new(
        config: Config,
        metrics: Arc<Metrics>,
        drained: mpsc::UnboundedSender<ConnectionId>,
    ) -> Driver {
        Driver {
            core: Broker::new(config),
            start: Instant::now(),
            next_id: 1,
            connections: BTreeMap::new(),
            metrics,
            drained,
            drops: DropLog::new(
                "QoS 0 messages dropped for clients that do not read (max_queued_bytes or memory_budget)",
            ),
        }
    }

    /// Broker time: how long the broker has been running.
    fn now(&self) -> Duration {
        Instant::now() - self.start
    }

    /// Starts a task for a newly accepted connection and tells the core. Returns when to
    /// try accepting again if `accept` failed (e.g. out of file descriptors).
    fn accepted<L: Listener>(
        &mut self,
        accepted: io::Result<(L::Stream, SocketAddr)>,
        tasks: &mut JoinSet<()>,
        events: &mpsc::Sender<Event>,
    ) -> Option<Instant> {
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed");
                return Some(Instant::now() + ACCEPT_BACKOFF);
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        debug!(connection = id, %peer, "connection opened");
        let (writer, outgoing) =
            outbox::write_queue(id, Arc::clone(&self.metrics), self.drained.clone());
        let config = self.core.config();
        let limits = Limits {
            max_packet_size: config.max_packet_size,
            frame_timeout: Duration::from_secs(config.frame_timeout.into()),
            write_timeout: Duration::from_secs(config.write_timeout.into()),
        };
        let task = tasks.spawn(connection::run(
            id,
            stream,
            L::poll_read_ready,
            limits,
            Arc::clone(&self.metrics),
            events.clone(),
            outgoing,
        ));
        let handle = ConnectionHandle {
            outbox: Outbox::default(),
            writer,
            task,
        };
        self.connections.insert(id, handle);
        let now = self.now();
        self.core.connection_opened(now, id);
        None
    }

    fn handle(&mut self, now: Duration, event: Event) {
        match event {
            Event::Packet(id, Packet::Connect(connect)) if self.over_budget() => {
                self.refuse_over_budget(now, id, connect.protocol)
            }
            Event::Packet(id, packet) => self.core.packet_received(now, id, packet),
            Event::DecodeFailed(id, error) => self.core.decode_failed(now, id, &error),
            Event::Lost(id) => self.core.connection_lost(now, id),
        }
    }

    fn over_budget(&self) -> bool {
        self.metrics.memory_in_use() > self.core.config().memory_budget
    }

    /// The memory budget is spent: a new client is refused before the core sees it, with
    /// the code the core uses for its other quota (v5 0x97 Quota exceeded, 3.1.1 0x03 Server
    /// unavailable), [MQTT-3.2.2-6] [MQTT-3.2.2-7].
    fn refuse_over_budget(&mut self, now: Duration, id: ConnectionId, protocol: Protocol) {
        self.metrics.refused();
        let code = match protocol {
            Protocol::V5 => ConnAckCode::V5(ReasonCode::QUOTA_EXCEEDED),
            Protocol::V311 => ConnAckCode::V311(ConnectReturnCode::SERVER_UNAVAILABLE),
        };
        debug!(connection = id, %code, "memory budget spent: CONNECT refused");
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            code,
            properties: Default::default(),
        });
        self.queue(id, protocol, &connack);
        // The core has no session for it; this makes it forget the connection and close it.
        self.core.connection_lost(now, id);
    }

    /// Encodes `packet` into the outbox of connection `id`.
    fn queue(&mut self, id: ConnectionId, protocol: Protocol, packet: &Packet) {
        let Some(handle) = self.connections.get_mut(&id) else {
            return;
        };
        let mut buf = BytesMut::new();
        if let Err(error) = codec::encode(packet, protocol, &mut buf) {
            error!(connection = id, %error, "dropping a packet the codec cannot encode");
            return;
        }
        let droppable = matches!(packet, Packet::Publish(p) if p.qos == QoS::AtMostOnce);
        self.metrics.queued(buf.len());
        handle.outbox.push(buf.freeze(), droppable);
        self.trim(id);
    }

    /// Keeps what waits for `id` within `max_queued_bytes` and the memory budget by dropping
    /// its oldest QoS 0 PUBLISH.
    fn trim(&mut self, id: ConnectionId) {
        let now = self.now();
        let config = self.core.config();
        let (max_queued, budget) = (config.max_queued_bytes, config.memory_budget);
        let Some(handle) = self.connections.get_mut(&id) else {
            return;
        };
        while handle.outbox.bytes() > max_queued || self.metrics.memory_in_use() > budget {
            let Some(len) = handle.outbox.drop_oldest_qos0() else {
                break;
            };
            self.metrics.unqueued(len);
            self.metrics.dropped();
            self.drops.dropped(now);
        }
        self.metrics
            .connection_queued(handle.writer.backlog(&handle.outbox));
    }

    /// Drains the core's outputs into the outboxes and starts them flowing.
    fn flush(&mut self, now: Duration) {
        loop {
            let mut touched = BTreeSet::new();
            while let Some(output) = self.core.poll_output() {
                match output {
                    Output::Send {
                        connection,
                        protocol,
                        packet,
                    } => {
                        self.queue(connection, protocol, &packet);
                        touched.insert(connection);
                    }
                    Output::Close { connection } => {
                        if let Some(handle) = self.connections.get_mut(&connection) {
                            handle.outbox.closing = true;
                        }
                        touched.insert(connection);
                    }
                }
            }
            if touched.is_empty() {
                self.metrics.sessions(self.core.queue_stats());
                return;
            }
            let gone: Vec<ConnectionId> = touched
                .into_iter()
                .filter(|&id| !self.fill_one(id))
                .collect();
            if gone.is_empty() {
                self.metrics.sessions(self.core.queue_stats());
                return;
            }
            // Losing a connection produces more outputs (a will, a close): go round again.
            for id in gone {
                self.core.connection_lost(now, id);
            }
        }
    }

    /// A connection task has room again.
    fn fill(&mut self, id: ConnectionId) {
        if !self.fill_one(id) {
            let now = self.now();
            self.core.connection_lost(now, id);
            self.flush(now);
        }
    }

    /// Moves what fits from the outbox of `id` to its task, closes it once the outbox is
    /// empty after a close, and keeps what is left within the limits. `false` when the task
    /// is gone (the connection is forgotten).
    fn fill_one(&mut self, id: ConnectionId) -> bool {
        let Some(handle) = self.connections.get_mut(&id) else {
            return true;
        };
        let mut alive = handle.writer.fill(&mut handle.outbox).is_ok();
        if alive && handle.outbox.is_empty() && handle.outbox.closing {
            // After its last batch the task finishes on its own: forget it.
            alive = handle.writer.close().is_ok();
            self.forget(id);
            return alive;
        }
        if !alive {
            if let Some(handle) = self.connections.remove(&id) {
                self.metrics.unqueued(handle.outbox.bytes());
                handle.task.abort();
            }
            return false;
        }
        // What is left waits behind a client that has not read the window yet.
        self.trim(id);
        true
    }

    /// Forgets connection `id` (its task finishes with what it was given).
    fn forget(&mut self, id: ConnectionId) {
        if let Some(handle) = self.connections.remove(&id) {
            self.metrics.unqueued(handle.outbox.bytes());
        }
    }
}
