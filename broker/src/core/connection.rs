//! Per-connection state that is not session state: protocol, keep-alive, topic aliases.
//!
//! A broker holds one of these per idle client, so what every connection needs stays inline
//! (56 bytes) and what few use (topic aliases, the `$SYS` log flag) waits in a box that is
//! allocated on first use.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::codec::Protocol;

use super::ClientId;
use super::moment::Moment;
use super::timer::{TimerKey, TimerQueue};

#[derive(Debug)]
pub enum ConnectionState {
    /// Accepted; CONNECT not yet received.
    AwaitingConnect,
    /// CONNACK 0x00 sent; bound to the session of `client_id`.
    Active { client_id: ClientId },
}

#[derive(Debug)]
pub struct Connection {
    pub state: ConnectionState,
    pub last_activity: Moment,
    /// The connection's one timer: the CONNECT timeout until CONNECT, then the keep-alive
    /// check, if its keep-alive is not 0.
    pub timer: Option<TimerKey>,
    /// The keep-alive in force, in seconds; 0 means none.
    pub keep_alive: u16,
    /// Known once CONNECT has been read (even a CONNECT that is refused).
    pub protocol: Option<Protocol>,
    /// Whether CONNECT set Session Expiry 0: then a DISCONNECT may not set a non-zero one.
    pub connected_with_zero_expiry: bool,
    rare: Option<Box<RareState>>,
}

/// What only some connections ever use.
#[derive(Debug, Default)]
pub struct RareState {
    /// Inbound Topic Alias mappings; they live and die with the connection ([MQTT-3.3.2-7]).
    pub topic_aliases: BTreeMap<u16, String>,
    /// Whether this connection already tried to PUBLISH under `$SYS` (logged once).
    pub wrote_to_broker_topic: bool,
}

impl Connection {
    pub fn new(now: Moment, connect_timer: TimerKey) -> Connection {
        Connection {
            state: ConnectionState::AwaitingConnect,
            last_activity: now,
            timer: Some(connect_timer),
            keep_alive: 0,
            protocol: None,
            connected_with_zero_expiry: true,
            rare: None,
        }
    }

    /// 1.5 x the keep-alive in force ([MQTT-3.1.2-22]), when it is not 0.
    pub fn keep_alive_limit(&self) -> Option<Duration> {
        (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500))
    }

    pub fn topic_alias(&self, alias: u16) -> Option<&String> {
        self.rare.as_ref()?.topic_aliases.get(&alias)
    }

    /// The rarely used state, allocated now if this is its first use.
    pub fn rare_mut(&mut self) -> &mut RareState {
        self.rare.get_or_insert_default()
    }

    pub fn cancel_timer<T>(&mut self, timers: &mut TimerQueue<T>) {
        if let Some(timer) = self.timer.take() {
            timers.cancel(timer);
        }
    }
}
