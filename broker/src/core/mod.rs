//! The sans-IO broker core.
//!
//! A synchronous state machine with no sockets, no clock and no randomness: drivers feed it
//! connection events, decoded packets and the current time (a monotonic [`Duration`] since the
//! broker started, kept inside as an 8-byte `Moment`), and drain [`Output`]s (packets to send,
//! connections to close). After each call the driver asks [`Broker::next_deadline`] and calls
//! [`Broker::handle_timeout`] then.
//!
//! Everything that reaches the wire is iterated in a deterministic order (`BTreeMap`s and
//! vectors), so that the same inputs always give the same outputs.
//!
//! Layout: this module holds the broker's state and its entry points, connection closing and
//! session ending; `will` holds every transition of the Will lifecycle; `connect` handles
//! CONNECT, `inbound` the other packets from clients, `subscriptions` SUBSCRIBE and
//! UNSUBSCRIBE, and `delivery` the way a message reaches each matching session. `session`,
//! `connection`, `timer`, `moment`, `topic`, `retained` and `subscription_index` are the state
//! they share. Only [`Broker`], [`Output`], [`ConnectionId`] and [`QueueStats`] are public.

mod connect;
mod connection;
mod delivery;
mod inbound;
mod moment;
mod retained;
mod session;
mod subscription_index;
mod subscriptions;
mod timer;
mod topic;
mod will;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info};

use crate::codec::{
    ConnAck, ConnAckCode, ConnectReturnCode, DecodeError, DecodeErrorKind, Disconnect, Packet,
    Protocol, ReasonCode,
};
use crate::config::Config;

pub use delivery::QueueStats;

use connection::{Connection, ConnectionState};
use delivery::QueueAccounting;
use moment::Moment;
use retained::RetainedStore;
use session::{NEVER_EXPIRES, Session};
use subscription_index::SubscriptionIndex;
use timer::TimerQueue;
use will::{CloseCause, WillState};

/// Identifies one network connection; chosen by the driver, never reused.
pub type ConnectionId = u64;

/// A client identifier, allocated once per session and shared by everything that names the
/// session: its key, its connection, its timers and the messages it publishes.
type ClientId = Arc<str>;

/// What the core asks its driver to do, in order.
// `Send` is the common case by far; boxing its packet would cost an allocation per packet to
// save a few hundred bytes on the rare `Close`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Encode `packet` for `protocol` and write it to the connection.
    Send {
        connection: ConnectionId,
        protocol: Protocol,
        packet: Packet,
    },
    /// Flush what was sent so far, then close the connection. The core has already applied
    /// the will rules; it will ignore later events for this connection.
    Close { connection: ConnectionId },
}

/// Everything the broker schedules goes through the one timer queue; the `TimerKey` a record
/// keeps tells which of its timers fired, so that a `Timer` is 16 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Timer {
    /// The connection's one timer: CONNECT did not arrive in time, or (once connected) check
    /// whether 1.5 x Keep Alive passed without a packet ([MQTT-3.1.2-22]).
    Connection(ConnectionId),
    /// The session's pending will is due, or the session expires.
    Session(ClientId),
}

pub struct Broker {
    config: Config,
    // boxed, so that the maps' nodes hold small entries (inserting moves them around)
    connections: BTreeMap<ConnectionId, Box<Connection>>,
    sessions: BTreeMap<ClientId, Box<Session>>,
    /// Every session's subscriptions by topic level, kept in step with `sessions`.
    subscribers: SubscriptionIndex,
    retained: RetainedStore,
    timers: TimerQueue<Timer>,
    outputs: VecDeque<Output>,
    /// Counter for Assigned Client Identifiers.
    assigned_ids: u64,
    /// Round-robin position for shared subscription groups.
    shared_turn: u64,
    /// Connections past CONNACK 0x00, held against `max_connections`.
    active_connections: usize,
    queues: QueueAccounting,
}

impl Broker {
    pub fn new(config: Config) -> Broker {
        Broker {
            config,
            connections: BTreeMap::new(),
            sessions: BTreeMap::new(),
            subscribers: SubscriptionIndex::default(),
            retained: RetainedStore::default(),
            timers: TimerQueue::default(),
            outputs: VecDeque::new(),
            assigned_ids: 0,
            shared_turn: 0,
            active_connections: 0,
            queues: QueueAccounting::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A new network connection was accepted; it has `connect_timeout` to send CONNECT.
    pub fn connection_opened(&mut self, now: Duration, id: ConnectionId) {
        let now = Moment::from(now);
        let due = now + Duration::from_secs(u64::from(self.config.connect_timeout));
        let timer = self.timers.schedule(due, Timer::Connection(id));
        self.connections
            .insert(id, Box::new(Connection::new(now, timer)));
    }

    /// A whole packet arrived on `id`.
    pub fn packet_received(&mut self, now: Duration, id: ConnectionId, packet: Packet) {
        let now = Moment::from(now);
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        connection.last_activity = now;
        match (&connection.state, packet) {
            (ConnectionState::AwaitingConnect, Packet::Connect(connect)) => {
                self.handle_connect(now, id, connect)
            }
            (ConnectionState::AwaitingConnect, _) => {
                // [MQTT-3.1.0-1] the first packet must be CONNECT; no CONNACK is owed.
                self.close(id);
            }
            (ConnectionState::Active { client_id }, packet) => {
                let client_id = client_id.clone();
                self.handle_active_packet(now, id, &client_id, packet);
            }
        }
    }

    /// The bytes on `id` could not be decoded: close it with the reason the spec asks for.
    pub fn decode_failed(&mut self, now: Duration, id: ConnectionId, error: &DecodeError) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        debug!(connection = id, %error, "closing connection on undecodable input");
        if let ConnectionState::AwaitingConnect = connection.state {
            connection.protocol = error.protocol;
            let code = match (error.kind, error.protocol) {
                // [MQTT-3.1.2-2] unacceptable protocol level: 0x01 in 3.1.1, 0x84 in v5
                (DecodeErrorKind::UnsupportedProtocolVersion, Some(Protocol::V311)) => Some(
                    ConnAckCode::V311(ConnectReturnCode::UNACCEPTABLE_PROTOCOL_VERSION),
                ),
                // [MQTT-3.1.4-1] v5 MAY send a CONNACK with a reason code first
                (kind, Some(Protocol::V5)) => Some(ConnAckCode::V5(kind.reason_code())),
                // 3.1.1: a malformed CONNECT is closed without CONNACK ([MQTT-3.1.4-1])
                _ => None,
            };
            self.refuse_connect(id, code);
        } else {
            self.close_by_server(now.into(), id, error.kind.reason_code());
        }
    }

    /// The peer closed the connection (FIN or RST) or it failed with an I/O error.
    pub fn connection_lost(&mut self, now: Duration, id: ConnectionId) {
        if self.connections.contains_key(&id) {
            self.end_connection(now.into(), id, CloseCause::ConnectionLost);
        }
    }

    /// The earliest time at which [`Broker::handle_timeout`] has work to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.timers.next_deadline().map(Duration::from)
    }

    /// Runs every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        let now = Moment::from(now);
        while let Some((key, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Connection(id) => {
                    let Some(connection) = self.connections.get(&id) else {
                        continue;
                    };
                    if connection.timer != Some(key) {
                        continue;
                    }
                    if let ConnectionState::AwaitingConnect = connection.state {
                        debug!(connection = id, "no CONNECT in time, closing");
                        self.close(id);
                    } else {
                        self.check_keep_alive(now, id, key.due());
                    }
                }
                Timer::Session(client_id) => {
                    self.will_delay_elapsed(now, &client_id, key);
                    let expired = self
                        .sessions
                        .get(&client_id)
                        .is_some_and(|s| s.connection.is_none() && s.expiry_timer == Some(key));
                    if expired {
                        self.end_session(now, &client_id, "session expired");
                    }
                }
            }
        }
    }

    /// The next packet to send or connection to close, in the order they were decided.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Graceful shutdown.
    ///
    /// The broker keeps no state across restarts, so shutting down ends every session and
    /// every stored and pending will is due now: each is published to the subscribers still
    /// connected, and only then does every client get DISCONNECT 0x8B and a close. A crash
    /// (no call to this method) publishes nothing: the spec lets a failed server defer wills,
    /// and ours has nothing to defer them with ({A1}).
    pub fn shutdown(&mut self, now: Duration) {
        self.begin_shutdown(now);
        self.finish_shutdown(now);
    }

    /// The first half of [`Broker::shutdown`]: publishes every stored and pending will and
    /// returns how many. Connections stay open, so that a driver can let the subscribers
    /// receive (and ack) what is now queued for them, within their Receive Maximum, until
    /// [`Broker::undelivered`] is 0 or its patience runs out.
    pub fn begin_shutdown(&mut self, now: Duration) -> usize {
        let published = self.publish_every_will(now.into());
        info!(
            wills = published,
            "shutting down: every stored will published"
        );
        published
    }

    /// The second half of [`Broker::shutdown`]: DISCONNECT 0x8B to every client, a close,
    /// and every session ended.
    pub fn finish_shutdown(&mut self, now: Duration) {
        let live: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for id in live {
            self.close_by_server(now.into(), id, ReasonCode::SERVER_SHUTTING_DOWN);
        }
        self.sessions.clear();
        self.queues.stats.queued_bytes = 0;
        self.subscribers = SubscriptionIndex::default();
        self.timers = TimerQueue::default();
    }

    /// QoS 1/2 messages queued for, or in flight to, connected clients.
    pub fn undelivered(&self) -> usize {
        self.sessions
            .values()
            .filter(|session| session.connection.is_some())
            .filter_map(|session| session.flow.as_deref())
            .map(|flow| flow.queue.len() + flow.inflight.len())
            .sum()
    }

    /// What the sessions hold in queues and windows, and what they dropped.
    pub fn queue_stats(&self) -> QueueStats {
        self.queues.stats
    }

    /// Number of sessions, connected or not.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Client ids whose will is pending (connection closed, will not yet due).
    pub fn pending_wills(&self) -> Vec<&str> {
        self.sessions
            .iter()
            .filter(|(_, s)| matches!(s.will, WillState::Pending { .. }))
            .map(|(id, _)| &**id)
            .collect()
    }

    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    fn send(&mut self, id: ConnectionId, packet: Packet) {
        if let Some(protocol) = self.connections.get(&id).and_then(|c| c.protocol) {
            self.outputs.push_back(Output::Send {
                connection: id,
                protocol,
                packet,
            });
        }
    }

    /// Refuses a CONNECT: an optional CONNACK with `code` (Session Present 0,
    /// [MQTT-3.2.2-6]), then close ([MQTT-3.2.2-7]). No session was touched and no will was
    /// stored, so nothing is published.
    fn refuse_connect(&mut self, id: ConnectionId, code: Option<ConnAckCode>) {
        if let Some(code) = code {
            let connack = ConnAck {
                session_present: false,
                code,
                properties: Default::default(),
            };
            self.send(id, Packet::ConnAck(connack));
        }
        self.close(id);
    }

    /// Closes a connection the server decided to end, then applies the will rules: any
    /// server-initiated close publishes the will ([MQTT-3.1.2-8]). v5 clients get a
    /// DISCONNECT with `code` first; the server never sends DISCONNECT before CONNACK
    /// ([MQTT-3.14.0-1]) and 3.1.1 servers never send DISCONNECT at all.
    fn close_by_server(&mut self, now: Moment, id: ConnectionId, code: ReasonCode) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        if !matches!(connection.state, ConnectionState::Active { .. }) {
            self.refuse_connect(id, None);
            return;
        }
        if connection.protocol == Some(Protocol::V5) {
            self.send(id, Packet::Disconnect(Disconnect::with_code(code)));
        }
        self.end_connection(now, id, CloseCause::ServerClosed(code));
    }

    /// Forgets a connection and asks the driver to close it, without will processing (for
    /// connections that never got a session).
    fn close(&mut self, id: ConnectionId) {
        if let Some(mut connection) = self.connections.remove(&id) {
            if matches!(connection.state, ConnectionState::Active { .. }) {
                self.active_connections -= 1;
            }
            connection.cancel_timer(&mut self.timers);
            self.outputs.push_back(Output::Close { connection: id });
        }
    }

    /// The connection ends for `cause`: close it, and detach its session, which decides the
    /// fate of the will.
    fn end_connection(&mut self, now: Moment, id: ConnectionId, cause: CloseCause) {
        let client_id = match self.connections.get(&id).map(|c| &c.state) {
            Some(ConnectionState::Active { client_id }) => Some(client_id.clone()),
            _ => None,
        };
        self.close(id);
        if let Some(client_id) = client_id {
            self.detach_session(now, &client_id, cause);
        }
    }

    /// A session just lost its connection: Session Expiry 0 ends it now (§3.1.2.11.2),
    /// anything else but "never" starts its expiry timer.
    fn start_session_expiry(&mut self, now: Moment, client_id: &ClientId) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        let expiry = session.expiry_interval;
        if expiry == 0 {
            self.end_session(now, client_id, "session expiry 0");
        } else if expiry != NEVER_EXPIRES {
            let due = now + Duration::from_secs(u64::from(expiry));
            session.expiry_timer = Some(
                self.timers
                    .schedule(due, Timer::Session(ClientId::clone(client_id))),
            );
        }
    }

    /// The session ends ([MQTT-4.1.0-2]): its subscriptions and timers go with it, and a will
    /// still pending in it is published now.
    fn end_session(&mut self, now: Moment, client_id: &str, why: &str) {
        let Some((client_id, session)) = self.sessions.remove_entry(client_id) else {
            return;
        };
        debug!(%client_id, why, "session ended");
        self.queues.released(session.queued_bytes());
        for (key, subscription) in &session.subscriptions {
            self.subscribers
                .remove(&subscription.filter.filter, &client_id, key);
        }
        if let Some(timer) = session.expiry_timer {
            self.timers.cancel(timer);
        }
        self.will_at_session_end(now, &client_id, session.will, why);
    }

    fn check_keep_alive(&mut self, now: Moment, id: ConnectionId, fired_at: Moment) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        let Some(limit) = connection.keep_alive_limit() else {
            return;
        };
        let deadline = connection.last_activity + limit;
        if deadline > fired_at {
            connection.timer = Some(self.timers.schedule(deadline, Timer::Connection(id)));
            return;
        }
        // [MQTT-3.1.2-22] no packet within 1.5 x Keep Alive: close as if the network failed
        debug!(connection = id, ?limit, "keep alive expired");
        connection.timer = None;
        self.close_by_server(now, id, ReasonCode::KEEP_ALIVE_TIMEOUT);
    }
}

#[cfg(test)]
mod tests;
