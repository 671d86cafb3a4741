//! The Will lifecycle.
//!
//! ```text
//!   CONNECT with Will Flag          connection closes without          due time reached,
//!   ───────────────────▶ Armed ───  DISCONNECT 0x00  ──────▶ Pending ── or session ends ──▶ published
//!                          │                                    │
//!                          └── DISCONNECT 0x00 ──▶ discarded    └── new connection to the
//!                                                                   session ──▶ cancelled
//! ```
//!
//! `due = min(close + Will Delay Interval, session end)` ([MQTT-3.1.2-8]); in 3.1.1 there is
//! no delay, so a will is due the moment its connection closes.

use std::time::Duration;

use crate::codec::LastWill;

use super::timer::TimerKey;

#[derive(Debug, Default)]
pub enum WillState {
    #[default]
    None,
    /// Stored with the session while its connection is open ([MQTT-3.1.2-7]).
    Armed(LastWill),
    /// The connection closed abnormally; the will waits for its due time.
    Pending { will: LastWill, timer: TimerKey },
}

impl WillState {
    pub fn is_none(&self) -> bool {
        matches!(self, WillState::None)
    }
}

/// When a will whose connection closed at `closed_at` must be published: after its delay, or
/// when the session ends, whichever is first ([MQTT-3.1.2-8], {W5-WDI-MIN}).
pub fn due_time(closed_at: Duration, will: &LastWill, session_expiry: u32) -> Duration {
    let delay = will.delay_interval.unwrap_or(0);
    closed_at + Duration::from_secs(u64::from(delay.min(session_expiry)))
}

/// Why a connection ended, as far as its will is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// DISCONNECT with reason 0x00 (or any 3.1.1 DISCONNECT): the will is discarded
    /// ([MQTT-3.14.4-3]).
    NormalDisconnect,
    /// DISCONNECT with another reason code, 0x04 included: the will is published.
    DisconnectWithReason(u8),
    /// I/O error, FIN or RST from the client ([MQTT-3.1.2-8]).
    ConnectionLost,
    /// The server closed the connection (keep-alive expiry, protocol error, takeover,
    /// shutdown), naming the reason code it used.
    ServerClosed(u8),
}

impl CloseCause {
    pub fn keeps_will(self) -> bool {
        self != CloseCause::NormalDisconnect
    }
}

impl std::fmt::Display for CloseCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::codec::reason::name;
        match *self {
            CloseCause::NormalDisconnect => f.write_str("normal DISCONNECT"),
            CloseCause::DisconnectWithReason(code) => {
                write!(f, "client DISCONNECT 0x{code:02X} ({})", name(code))
            }
            CloseCause::ConnectionLost => f.write_str("connection lost"),
            CloseCause::ServerClosed(code) => {
                write!(f, "server closed 0x{code:02X} ({})", name(code))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{MessageProperties, QoS};

    fn will(delay: Option<u32>) -> LastWill {
        LastWill {
            topic: "t".into(),
            payload: "p".into(),
            qos: QoS::AtMostOnce,
            retain: false,
            delay_interval: delay,
            properties: MessageProperties::default(),
        }
    }

    #[test]
    fn due_is_the_earlier_of_delay_and_session_end() {
        // {W5-WDI-MIN}: (SEI=10, WDI=3) -> 3 s; (SEI=3, WDI=10) -> 3 s; (SEI=0, WDI=5) -> 0 s
        let t0 = Duration::from_secs(100);
        let s = Duration::from_secs;
        assert_eq!(due_time(t0, &will(Some(3)), 10), t0 + s(3));
        assert_eq!(due_time(t0, &will(Some(10)), 3), t0 + s(3));
        assert_eq!(due_time(t0, &will(Some(5)), 0), t0);
        assert_eq!(due_time(t0, &will(Some(3)), u32::MAX), t0 + s(3));
        // {W5-WDI-DEFAULT}: absent delay is 0
        assert_eq!(due_time(t0, &will(None), u32::MAX), t0);
    }
}
