//! Runs the sans-IO [`Broker`] core on tokio, over real or simulated TCP.
//!
//! The core ([`crate::core`]) knows nothing about sockets, tasks or clocks. This module is the
//! thin layer that gives it all three, in the style of `quinn` around `quinn-proto`. It is
//! one task, and there is no task per connection: the core task owns every connection's
//! stream and polls it itself when the stream's waker says it is ready.
//!
//! ```text
//!                        ┌──────────────── the core task ────────────────────┐
//!   Listener::accept ──▶ │ Connection ×N: stream, read buffer, outbox,       │
//!                        │   deadlines; polled with its own waker (Signal)   │
//!   socket ready ──wake──┼─▶ ReadyList ──▶ turn: serve listed connections    │
//!   (Signal)             │                  in id order: read ≤ 64 KiB,      │
//!                        │                  decode, feed the Broker;         │
//!   sleep_until ─────────┼─▶ expire timers (frame, write stall, linger,      │
//!   (earliest deadline)  │                  the Broker's own);               │
//!                        │                  flush: Broker::poll_output ──▶   │
//!   socket bytes ◀───────┼── one write per connection per turn               │
//!                        └───────────────────────────────────────────────────┘
//! ```
//!
//! - **One task owns everything.** [`Server::serve`] runs the loop that owns the [`Broker`]
//!   and every [`connection::Connection`]. Each connection's stream is polled with the
//!   connection's [`ready::Signal`] as the waker; waking it lists the connection on the
//!   [`ready::ReadyList`] and wakes the core task. A *turn* serves every listed connection,
//!   runs what is due, and flushes the core's outputs. Time is handed to the core as
//!   `tokio::time::Instant::now() - start`, so under turmoil (or tokio's paused test clock)
//!   the broker lives in virtual time without knowing it.
//! - **Fairness.** A turn reads at most [`READ_PER_TURN`] bytes from one connection, then
//!   lists it again for the next turn; between turns that have more work waiting the loop
//!   yields to the runtime, so timers and the I/O driver keep running. The loop runs
//!   outside tokio's cooperative budget ([`tokio::task::unconstrained`]): it does the I/O of
//!   every connection, and the budget (meant for one task's own I/O) would otherwise fake
//!   a Pending every 128 polls and cost each such connection an extra turn.
//! - **Timers.** One ordered set holds every connection's deadlines (a frame started and not
//!   finished within `frame_timeout`, a write that made no progress for `write_timeout`, the
//!   end of a closing connection's linger); together with [`Broker::next_deadline`] it
//!   gives the one `sleep_until` the loop waits on.
//! - **One write per connection per turn.** The core task drains [`Broker::poll_output`],
//!   encodes every [`Output::Send`] with the protocol the core names into the connection's
//!   [`outbox`], and writes one batch of it: a will fanned out to a subscriber together with,
//!   say, a PUBACK is one `write` syscall (or one simulated segment). What the socket does
//!   not take waits for it to be writable. [`Output::Close`] marks the end: once the outbox
//!   is empty the write side is shut down and the stream dropped.
//! - **Determinism.** Every `select!` is `biased;`, connections are kept and served in a
//!   `BTreeMap`/sorted order by id, and ids are handed out in accept order, so with
//!   turmoil's seeded scheduler the same seed always gives the same bytes at the same
//!   virtual times.
//! - **Back-pressure.** The core task never waits on a connection: what a client does not
//!   read waits in its outbox, bounded by `max_queued_bytes` and the `memory_budget` (the
//!   oldest QoS 0 go first, counted in [`Metrics`]); a write the client leaves unread for
//!   `write_timeout` ends the connection as lost, which applies the will rules like any other
//!   abnormal close. Past the memory budget new clients are refused (v5 CONNACK 0x97 Quota
//!   exceeded, 3.1.1 0x03 Server unavailable).
//! - **Panic isolation.** Serving one connection (reading, decoding, the core's handling of
//!   its packets, writing) runs under `catch_unwind`: should it ever panic, that connection
//!   is closed as lost (its will rules apply), the panic is counted in [`Metrics`], and every
//!   other client goes on being served.
//!
//! [`serve_tcp`] binds `config.listen`, reports the bound address and serves on it; that is
//! what `lastwill broker` runs.

mod connection;
mod listener;
mod metrics;
mod outbox;
mod ready;

pub use listener::Listener;
pub use metrics::{Metrics, MetricsSnapshot};

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::codec::{
    self, ConnAck, ConnAckCode, ConnectReturnCode, Packet, Protocol, QoS, ReasonCode,
};
use crate::config::Config;
use crate::core::{Broker, ConnectionId, Output};
use crate::log_limit::DropLog;

use connection::{Connection, LINGER_TIME, Limits, Read};
use ready::{ReadyList, Signal};

/// The most bytes read from one connection in one turn: a client that floods the broker
/// waits for the next turn while everyone else is served.
const READ_PER_TURN: usize = 64 * 1024;
/// Pause before accepting again after `accept` failed (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The reference broker: the [`Broker`] core plus the tokio plumbing around it.
pub struct Server {
    config: Config,
    metrics: Arc<Metrics>,
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
        // See the module doc (Fairness) for why the budget is off and where the loop yields.
        tokio::task::unconstrained(self.run(listener, shutdown)).await;
    }

    async fn run<L: Listener>(self, listener: L, shutdown: impl Future) {
        let mut driver = Driver::<L>::new(self.config, self.metrics);
        let ready = Arc::clone(&driver.ready);
        let mut shutdown = std::pin::pin!(shutdown);
        let mut accept_paused_until: Option<Instant> = None;
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "broker listening");
        }
        loop {
            let deadline = driver.next_deadline();
            let accepting = accept_paused_until.is_none();
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                () = std::future::poll_fn(|cx| ready.poll_listed(cx)) => {
                    // Connections come first, but a busy broker must still take new clients:
                    // look at the listener once without waiting.
                    if accepting && let Some(accepted) = poll_once(listener.accept()).await {
                        accept_paused_until = driver.accepted(accepted);
                    }
                }
                () = sleep_until_or_never(deadline) => {}
                () = sleep_until_or_never(accept_paused_until) => accept_paused_until = None,
                accepted = listener.accept(), if accepting => {
                    accept_paused_until = driver.accepted(accepted);
                }
            }
            driver.turn();
            driver.yield_if_busy().await;
        }

        drop(listener);
        // From here on only the connections' own timers run, as the shutdown grace bounds
        // the rest.
        driver.shutting_down = true;
        let (at, now) = driver.clock();
        let wills = driver.core.begin_shutdown(now);
        driver.flush(at, now);
        // Deliver what was promised: keep taking acks, which open the clients' windows for
        // the rest of their queues, until every connected client has it or the grace is over.
        driver.serve_until(|d| d.core.undelivered() == 0).await;
        let unacknowledged = driver.core.undelivered();
        let (at, now) = driver.clock();
        driver.core.finish_shutdown(now);
        driver.flush(at, now);
        // Every connection is closing now; keep its outbox flowing until it is empty.
        let drained = driver.serve_until(|d| d.connections.is_empty()).await;
        let undelivered: usize = driver.connections.values().map(|c| c.backlog()).sum();
        let connections = driver.connections.len();
        let ids: Vec<ConnectionId> = driver.connections.keys().copied().collect();
        for id in ids {
            driver.remove(id);
        }
        if !drained || undelivered > 0 || unacknowledged > 0 {
            warn!(
                wills,
                unacknowledged_messages = unacknowledged,
                unwritten_bytes = undelivered,
                connections,
                "shutdown grace over: closing clients that had not received (QoS 0) or acked (QoS 1/2) everything"
            );
        } else {
            info!(
                wills,
                "shutdown: every message published to a connected client was delivered"
            );
        }
        let (_, now) = driver.clock();
        driver.bounds.drops.flush(now);
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

/// Which of a connection's two deadlines an entry in [`Driver::deadlines`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Deadline {
    /// The frame at the front of the read buffer must be complete (or the linger ends).
    Read,
    /// A write that made no progress is given up.
    Write,
}

/// Moves connection `id`'s `kind` deadline, kept in `slot`, to `at` in `deadlines`.
fn schedule(
    deadlines: &mut BTreeSet<(Instant, ConnectionId, Deadline)>,
    id: ConnectionId,
    kind: Deadline,
    slot: &mut Option<Instant>,
    at: Option<Instant>,
) {
    if *slot == at {
        return;
    }
    if let Some(old) = slot.take() {
        deadlines.remove(&(old, id, kind));
    }
    if let Some(new) = at {
        deadlines.insert((new, id, kind));
    }
    *slot = at;
}

/// What keeps the outboxes within their limits, and the accounting of what that costs.
struct Bounds {
    limits: Limits,
    metrics: Arc<Metrics>,
    drops: DropLog,
}

impl Bounds {
    fn over_budget(&self) -> bool {
        self.metrics.memory_in_use() > self.limits.memory_budget
    }

    /// Encodes `packet` into the outbox of `connection`.
    fn queue<S>(
        &mut self,
        connection: &mut Connection<S>,
        now: Duration,
        id: ConnectionId,
        protocol: Protocol,
        packet: &Packet,
    ) {
        let mut buf = BytesMut::new();
        if let Err(error) = codec::encode(packet, protocol, &mut buf) {
            error!(connection = id, %error, "dropping a packet the codec cannot encode");
            return;
        }
        let droppable = matches!(packet, Packet::Publish(p) if p.qos == QoS::AtMostOnce);
        self.metrics.queued(buf.len());
        connection.queue(buf.freeze(), droppable);
        self.trim(connection, now);
    }

    /// Keeps what waits for `connection` within `max_queued_bytes` and the memory budget by
    /// dropping its oldest QoS 0 PUBLISH.
    fn trim<S>(&mut self, connection: &mut Connection<S>, now: Duration) {
        while connection.queued() > self.limits.max_queued_bytes || self.over_budget() {
            let Some(len) = connection.drop_oldest_qos0() else {
                break;
            };
            self.metrics.unqueued(len);
            self.metrics.dropped();
            self.drops.dropped(now);
        }
        self.metrics.connection_queued(connection.backlog());
    }

    /// The memory budget is spent: a new client is refused before the core sees it, with
    /// the code the core uses for its other quota (v5 0x97 Quota exceeded, 3.1.1 0x03 Server
    /// unavailable), [MQTT-3.2.2-6] [MQTT-3.2.2-7].
    fn refuse<S>(
        &mut self,
        connection: &mut Connection<S>,
        now: Duration,
        id: ConnectionId,
        protocol: Protocol,
    ) {
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
        self.queue(connection, now, id, protocol, &connack);
    }
}

/// The state of the core task.
struct Driver<L: Listener> {
    core: Broker,
    /// Boxed: a B-tree node holds up to 11 entries and is about half full with ids that only
    /// grow, so inline 224-byte records would cost ~400 B per connection; boxed, ~270 B.
    connections: BTreeMap<ConnectionId, Box<Connection<L::Stream>>>,
    /// Every connection's deadlines, earliest first.
    deadlines: BTreeSet<(Instant, ConnectionId, Deadline)>,
    /// Connections to write to before this turn ends.
    to_write: BTreeSet<ConnectionId>,
    ready: Arc<ReadyList>,
    /// The connections listed for this turn (kept for its allocation).
    woken: Vec<ConnectionId>,
    bounds: Bounds,
    start: Instant,
    next_id: ConnectionId,
    /// The core's own timers no longer run (the shutdown grace bounds what is left).
    shutting_down: bool,
}

impl<L: Listener> Driver<L> {
    fn new(config: Config, metrics: Arc<Metrics>) -> Driver<L> {
        let limits = Limits {
            max_packet_size: config.max_packet_size,
            frame_timeout: Duration::from_secs(config.frame_timeout.into()),
            write_timeout: Duration::from_secs(config.write_timeout.into()),
            max_queued_bytes: config.max_queued_bytes,
            memory_budget: config.memory_budget,
        };
        Driver {
            core: Broker::new(config),
            connections: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            to_write: BTreeSet::new(),
            ready: Arc::default(),
            woken: Vec::new(),
            bounds: Bounds {
                limits,
                metrics,
                drops: DropLog::new(
                    "QoS 0 messages dropped for clients that do not read (max_queued_bytes or memory_budget)",
                ),
            },
            start: Instant::now(),
            next_id: 1,
            shutting_down: false,
        }
    }

    /// The time now, and broker time: how long the broker has been running.
    fn clock(&self) -> (Instant, Duration) {
        let at = Instant::now();
        (at, at - self.start)
    }

    /// When the loop must wake up for a timer even if no connection is ready.
    fn next_deadline(&self) -> Option<Instant> {
        let own = self.deadlines.first().map(|&(at, ..)| at);
        let core = match self.shutting_down {
            true => None,
            false => self.core.next_deadline().map(|due| self.start + due),
        };
        own.into_iter().chain(core).min()
    }

    /// Between turns: when connections are already listed for the next one, lets the
    /// runtime run first (the `select!` would not wait, so it would never yield).
    async fn yield_if_busy(&self) {
        if !self.ready.is_empty() {
            tokio::task::yield_now().await;
        }
    }

    /// Keeps serving connections until `done` holds (`true`) or `shutdown_grace` from now has
    /// passed (`false`).
    async fn serve_until(&mut self, done: impl Fn(&Self) -> bool) -> bool {
        let grace = Instant::now() + Duration::from_secs(self.core.config().shutdown_grace.into());
        let ready = Arc::clone(&self.ready);
        loop {
            if done(self) {
                return true;
            }
            // checked here too: with connections always listed, the select never gets to it
            if Instant::now() >= grace {
                return false;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                () = std::future::poll_fn(|cx| ready.poll_listed(cx)) => {}
                () = sleep_until_or_never(deadline) => {}
                () = tokio::time::sleep_until(grace) => return false,
            }
            self.turn();
            self.yield_if_busy().await;
        }
    }

    /// Takes a newly accepted connection and tells the core. Returns when to try accepting
    /// again if `accept` failed (e.g. out of file descriptors).
    fn accepted(&mut self, accepted: io::Result<(L::Stream, SocketAddr)>) -> Option<Instant> {
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
        let signal = Signal::new(id, Arc::clone(&self.ready));
        self.connections
            .insert(id, Box::new(Connection::new(stream, signal)));
        let (at, now) = self.clock();
        self.core.connection_opened(now, id);
        // Its first bytes may have come with it: poll its stream now, which also registers
        // its waker (the turn that follows flushes what the core made of them).
        self.guarded(now, id, |driver| driver.serve(at, now, id));
        None
    }

    /// One turn: serves the listed connections, runs what is due, flushes the outputs.
    fn turn(&mut self) {
        let (at, now) = self.clock();
        let mut woken = std::mem::take(&mut self.woken);
        self.ready.take(&mut woken);
        for &id in &woken {
            self.guarded(now, id, |driver| driver.serve(at, now, id));
        }
        self.woken = woken;
        while let Some(&(due, id, kind)) = self.deadlines.first()
            && due <= at
        {
            self.deadlines.pop_first();
            self.expired(now, id, kind);
        }
        if !self.shutting_down && self.core.next_deadline().is_some_and(|due| due <= now) {
            self.core.handle_timeout(now);
        }
        self.flush(at, now);
    }

    /// Runs `step` for connection `id`; should it panic, the connection is closed as lost
    /// and every other client goes on being served.
    fn guarded(&mut self, now: Duration, id: ConnectionId, step: impl FnOnce(&mut Self)) {
        let Err(panic) = catch_unwind(AssertUnwindSafe(|| step(self))) else {
            return;
        };
        let message = panic_message(&*panic);
        let first = self.bounds.metrics.panicked() == 1;
        if first {
            error!(
                connection = id,
                panic = message,
                "serving a connection panicked: it is closed as lost (later panics are logged at debug level and counted in the metrics)"
            );
        } else {
            debug!(
                connection = id,
                panic = message,
                "serving a connection panicked: it is closed as lost"
            );
        }
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.lingering = None;
        }
        self.broken(id);
        self.stop_reading(id);
        if catch_unwind(AssertUnwindSafe(|| self.lose(now, id))).is_err() {
            // The core panicked again on this connection: drop it without the core.
            error!(
                connection = id,
                "the core panicked again while closing the connection"
            );
            self.remove(id);
        }
    }

    /// Reads what connection `id` has for the core, at most [`READ_PER_TURN`] bytes (or
    /// discards it while lingering), and marks it for writing if it has output waiting.
    fn serve(&mut self, at: Instant, now: Duration, id: ConnectionId) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        connection.signal.served();
        let waker = Waker::from(Arc::clone(&connection.signal));
        let mut cx = Context::from_waker(&waker);
        if connection.lingering.is_some() {
            if connection.poll_discard(&mut cx, READ_PER_TURN).is_ready() {
                debug!(connection = id, "connection closed by the broker");
                self.remove(id);
            }
            return;
        }
        if connection.has_output() || connection.closing {
            self.to_write.insert(id);
        }
        let metrics = &*self.bounds.metrics;
        let limits = &self.bounds.limits;
        let mut budget = READ_PER_TURN;
        while connection.reading {
            match connection.poll_read::<L>(&mut cx, budget, metrics) {
                Read::Pending => break,
                Read::Closed(error) => {
                    match error {
                        None => debug!(connection = id, "connection closed by the peer"),
                        Some(error) => debug!(connection = id, %error, "connection failed"),
                    }
                    self.stop_reading(id);
                    self.lose(now, id);
                    return;
                }
                Read::Bytes(n) => budget -= n,
            }
            let mut decoded = 0;
            while let Some(frame) = connection.next_frame(limits.max_packet_size) {
                decoded += 1;
                match frame {
                    Ok(Packet::Connect(connect)) if self.bounds.over_budget() => {
                        self.bounds.refuse(connection, now, id, connect.protocol);
                        // The core has no session for it; this makes it forget the
                        // connection and close it (after the CONNACK).
                        self.core.connection_lost(now, id);
                        self.to_write.insert(id);
                        self.stop_reading(id);
                        return;
                    }
                    Ok(packet) => self.core.packet_received(now, id, packet),
                    Err(error) => {
                        debug!(connection = id, %error, "undecodable input");
                        // Whatever follows a bad frame is meaningless; the core will close.
                        self.core.decode_failed(now, id, &error);
                        self.stop_reading(id);
                        return;
                    }
                }
            }
            connection.decoded(metrics);
            // the clock runs from the first byte of the frame now at the front
            let deadline = match (connection.has_partial_frame(), decoded) {
                (false, _) => None,
                (true, 0) if connection.read_deadline.is_some() => connection.read_deadline,
                (true, _) => Some(at + limits.frame_timeout),
            };
            schedule(
                &mut self.deadlines,
                id,
                Deadline::Read,
                &mut connection.read_deadline,
                deadline,
            );
            if budget == 0 {
                connection.signal.requeue();
                break;
            }
        }
    }

    /// Tells the core that connection `id` is lost (once): it applies the will rules and
    /// closes it.
    fn lose(&mut self, now: Duration, id: ConnectionId) {
        if let Some(connection) = self.connections.get_mut(&id)
            && !connection.lost
        {
            connection.lost = true;
            self.core.connection_lost(now, id);
        }
    }

    /// Connection `id` hands the core nothing more.
    fn stop_reading(&mut self, id: ConnectionId) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.stop_reading(&self.bounds.metrics);
            schedule(
                &mut self.deadlines,
                id,
                Deadline::Read,
                &mut connection.read_deadline,
                None,
            );
        }
    }

    /// Connection `id`'s `kind` deadline has passed.
    fn expired(&mut self, now: Duration, id: ConnectionId, kind: Deadline) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        match kind {
            Deadline::Read => {
                connection.read_deadline = None;
                if connection.lingering.is_some() {
                    debug!(connection = id, "connection closed by the broker");
                    self.remove(id);
                    return;
                }
                // A client cannot hold a buffer forever by never sending a packet's last byte.
                debug!(connection = id, "a packet was not finished in time");
                self.bounds.metrics.unfinished_frame();
            }
            Deadline::Write => {
                connection.write_deadline = None;
                debug!(connection = id, "a write made no progress in time");
                self.broken(id);
            }
        }
        self.stop_reading(id);
        self.lose(now, id);
    }

    /// Nothing more can be written to connection `id`: what waits for it is forgotten, and
    /// it goes once the core has closed it.
    fn broken(&mut self, id: ConnectionId) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.broken = true;
            self.bounds.metrics.unqueued(connection.discard_output());
            schedule(
                &mut self.deadlines,
                id,
                Deadline::Write,
                &mut connection.write_deadline,
                None,
            );
            self.to_write.insert(id);
        }
    }

    /// Drains the core's outputs into the outboxes and writes them, one write per
    /// connection, until no write produced more (a lost connection's will, its close).
    fn flush(&mut self, at: Instant, now: Duration) {
        loop {
            while let Some(output) = self.core.poll_output() {
                let id = match output {
                    Output::Send {
                        connection: id,
                        protocol,
                        packet,
                    } => {
                        if let Some(connection) = self.connections.get_mut(&id) {
                            self.bounds.queue(connection, now, id, protocol, &packet);
                        }
                        id
                    }
                    Output::Close { connection: id } => {
                        if let Some(connection) = self.connections.get_mut(&id) {
                            connection.closing = true;
                        }
                        self.stop_reading(id);
                        id
                    }
                };
                self.to_write.insert(id);
            }
            let Some(id) = self.to_write.pop_first() else {
                break;
            };
            self.guarded(now, id, |driver| driver.write(at, now, id));
        }
        self.bounds.metrics.sessions(self.core.queue_stats());
    }

    /// Writes once to connection `id`; once its outbox is empty after a close, shuts it down
    /// (or, when it was lost, forgets it).
    fn write(&mut self, at: Instant, now: Duration, id: ConnectionId) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        if connection.lingering.is_some() {
            return;
        }
        if connection.broken {
            self.bounds.metrics.unqueued(connection.discard_output());
            if connection.closing {
                debug!(connection = id, "connection released");
                self.remove(id);
            }
            return;
        }
        let waker = Waker::from(Arc::clone(&connection.signal));
        let mut cx = Context::from_waker(&waker);
        let progressed = match connection.poll_write(&mut cx) {
            Poll::Ready(Ok(n)) => {
                self.bounds.metrics.unqueued(n);
                n > 0
            }
            Poll::Ready(Err(error)) => {
                debug!(connection = id, %error, "write failed");
                self.broken(id);
                self.stop_reading(id);
                self.lose(now, id);
                return;
            }
            Poll::Pending => false,
        };
        if connection.has_output() {
            if progressed {
                // The socket took bytes and may take more: write again next turn (a
                // Pending write registers the waker instead).
                connection.signal.requeue();
            }
            // [write_timeout] restarts on any progress
            let deadline = match connection.write_deadline {
                Some(deadline) if !progressed => deadline,
                _ => at + self.bounds.limits.write_timeout,
            };
            schedule(
                &mut self.deadlines,
                id,
                Deadline::Write,
                &mut connection.write_deadline,
                Some(deadline),
            );
            self.bounds.trim(connection, now);
            return;
        }
        schedule(
            &mut self.deadlines,
            id,
            Deadline::Write,
            &mut connection.write_deadline,
            None,
        );
        if !connection.closing {
            return;
        }
        if connection.lost {
            // The peer is gone (or given up on): dropping the stream closes it. A shutdown
            // first would be one more syscall, on a socket that was usually reset, in every
            // abnormal close.
            debug!(connection = id, "connection released");
            self.remove(id);
            return;
        }
        match connection.poll_shutdown(&mut cx) {
            Poll::Pending => {
                let deadline = at + self.bounds.limits.write_timeout;
                schedule(
                    &mut self.deadlines,
                    id,
                    Deadline::Write,
                    &mut connection.write_deadline,
                    Some(deadline),
                );
            }
            Poll::Ready(_) => {
                connection.lingering = Some(connection::LINGER_BYTES);
                schedule(
                    &mut self.deadlines,
                    id,
                    Deadline::Read,
                    &mut connection.read_deadline,
                    Some(at + LINGER_TIME),
                );
                if connection.poll_discard(&mut cx, READ_PER_TURN).is_ready() {
                    debug!(connection = id, "connection closed by the broker");
                    self.remove(id);
                }
            }
        }
    }

    /// Forgets connection `id`: its stream is dropped (closed).
    fn remove(&mut self, id: ConnectionId) {
        if let Some(connection) = self.connections.remove(&id) {
            for (slot, kind) in [
                (connection.read_deadline, Deadline::Read),
                (connection.write_deadline, Deadline::Write),
            ] {
                if let Some(at) = slot {
                    self.deadlines.remove(&(at, id, kind));
                }
            }
            connection.retire(&self.bounds.metrics);
        }
    }
}

/// What a panic said, when it said it with a string (as `panic!` and `expect` do).
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    match panic.downcast_ref::<&str>() {
        Some(message) => message,
        None => panic
            .downcast_ref::<String>()
            .map_or("(not a string)", String::as_str),
    }
}
