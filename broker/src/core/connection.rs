//! Per-connection state that is not session state: protocol, keep-alive, topic aliases.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::codec::Protocol;

use super::Timer;
use super::timer::{TimerKey, TimerQueue};

#[derive(Debug)]
pub enum ConnectionState {
    /// Accepted; CONNECT not yet received.
    AwaitingConnect { timer: TimerKey },
    /// CONNACK 0x00 sent; bound to the session of `client_id`.
    Active { client_id: String },
}

#[derive(Debug)]
pub struct Connection {
    pub state: ConnectionState,
    /// Known once CONNECT has been read (even a CONNECT that is refused).
    pub protocol: Option<Protocol>,
    pub last_activity: Duration,
    /// 1.5 x the keep-alive in force, when it is not 0.
    pub keep_alive_limit: Option<Duration>,
    pub keep_alive_timer: Option<TimerKey>,
    /// Inbound Topic Alias mappings; they live and die with the connection ([MQTT-3.3.2-7]).
    pub topic_aliases: BTreeMap<u16, String>,
    /// Whether CONNECT set Session Expiry 0: then a DISCONNECT may not set a non-zero one.
    pub connected_with_zero_expiry: bool,
    /// Whether this connection already tried to PUBLISH under `$SYS` (logged once).
    pub wrote_to_broker_topic: bool,
}

impl Connection {
    pub fn new(now: Duration, connect_timer: TimerKey) -> Connection {
        Connection {
            state: ConnectionState::AwaitingConnect {
                timer: connect_timer,
            },
            protocol: None,
            last_activity: now,
            keep_alive_limit: None,
            keep_alive_timer: None,
            topic_aliases: BTreeMap::new(),
            connected_with_zero_expiry: true,
            wrote_to_broker_topic: false,
        }
    }

    pub fn cancel_timers(&self, timers: &mut TimerQueue<Timer>) {
        if let ConnectionState::AwaitingConnect { timer } = self.state {
            timers.cancel(timer);
        }
        if let Some(timer) = self.keep_alive_timer {
            timers.cancel(timer);
        }
    }
}
