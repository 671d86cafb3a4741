//! The Will lifecycle: every transition of a session's will is a method of the `impl Broker`
//! block below, and each one cites the statement it implements.
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
//! no delay, so a will is due the moment its connection closes. A will due at close skips
//! Pending. Graceful shutdown makes every Armed and Pending will due at once ({A1}).
//!
//! The callers only say what happened: `handle_connect` calls [`Broker::attach_will`],
//! `end_connection` calls [`Broker::detach_session`], the timer calls
//! [`Broker::will_delay_elapsed`], `end_session` calls [`Broker::will_at_session_end`] and
//! `shutdown` calls [`Broker::publish_every_will`].

use std::borrow::Cow;
use std::mem;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use tracing::debug;

use crate::codec::{LastWill, MessageProperties, Protocol, QoS, ReasonCode};

use super::delivery::Message;
use super::moment::Moment;
use super::timer::TimerKey;
use super::{Broker, ClientId, Timer};

#[derive(Debug, Default)]
pub enum WillState {
    #[default]
    None,
    /// Stored with the session while its connection is open ([MQTT-3.1.2-7]).
    Armed(StoredWill),
    /// The connection closed without DISCONNECT 0x00; the will waits for its due time.
    Pending { will: StoredWill, timer: TimerKey },
}

/// A will as its session keeps it, in 32 bytes and one allocation: every idle will client
/// holds one, so its size is most of what such a client costs
/// (`cargo bench -p lastwill-benches --bench will_memory`).
#[derive(Debug)]
pub struct StoredWill {
    /// The topic's bytes, then the payload's.
    body: Box<[u8]>,
    /// The Will Properties, allocated only when the CONNECT had any.
    properties: Option<Box<MessageProperties>>,
    /// Will Delay Interval, seconds ({W5-WDI-DEFAULT}: an absent one is 0).
    delay_interval: u32,
    /// Where the payload starts in `body`: a topic is a UTF-8 string of at most 65,535
    /// bytes (§1.5.4).
    topic_len: u16,
    qos: QoS,
    retain: bool,
}

impl From<LastWill> for StoredWill {
    fn from(will: LastWill) -> StoredWill {
        let LastWill {
            topic,
            payload,
            qos,
            retain,
            delay_interval,
            properties,
        } = will;
        let topic_len =
            u16::try_from(topic.len()).expect("the decoder keeps a will topic to 65,535 bytes");
        let mut body = Vec::with_capacity(topic.len() + payload.len());
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(&payload);
        StoredWill {
            body: body.into_boxed_slice(),
            properties: (!properties.is_empty()).then(|| Box::new(properties)),
            delay_interval: delay_interval.unwrap_or(0),
            topic_len,
            qos,
            retain,
        }
    }
}

impl StoredWill {
    pub fn topic(&self) -> Cow<'_, str> {
        // `body` starts with a `String`'s bytes, so this never replaces anything
        String::from_utf8_lossy(&self.body[..usize::from(self.topic_len)])
    }

    /// The will as an Application Message from `origin` at `now`: topic, payload, QoS and
    /// retain as given ([MQTT-3.1.2-14], [MQTT-3.1.2-15]), properties forwarded unaltered
    /// ([MQTT-3.1.3-10], [MQTT-3.3.2-17]), Message Expiry counted from now ({A12}). The Will
    /// Delay Interval is not a PUBLISH property: never forwarded ({W5-NO-WDI-IN-PUBLISH}).
    fn into_message(self, now: Moment, origin: &ClientId) -> Arc<Message> {
        let topic = self.topic().into_owned();
        // the payload is the rest of `body`, taken over without copying it
        let mut payload = Bytes::from(self.body);
        payload.advance(usize::from(self.topic_len));
        let properties = self.properties.map(|boxed| *boxed).unwrap_or_default();
        Message::new(
            now,
            origin,
            topic,
            payload,
            self.qos,
            self.retain,
            properties,
        )
    }
}

/// When a will whose connection closed at `closed_at` must be published: after its delay, or
/// when the session ends, whichever is first ([MQTT-3.1.2-8], {W5-WDI-MIN}).
pub fn due_time(closed_at: Moment, will: &StoredWill, session_expiry: u32) -> Moment {
    let delay = will.delay_interval.min(session_expiry);
    closed_at + Duration::from_secs(u64::from(delay))
}

/// Why a connection ended, as far as its will is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// DISCONNECT with reason 0x00 (or any 3.1.1 DISCONNECT): the will is discarded
    /// ([MQTT-3.14.4-3]).
    NormalDisconnect,
    /// DISCONNECT with another reason code, 0x04 included: the will is published
    /// ([MQTT-3.1.2-8]/d).
    DisconnectWithReason(ReasonCode),
    /// I/O error, FIN or RST from the client ([MQTT-3.1.2-8]/a, /b).
    ConnectionLost,
    /// The server closed the connection (keep-alive expiry, protocol error, takeover,
    /// shutdown), naming the reason code it used ([MQTT-3.1.2-8]/c, /e, /f).
    ServerClosed(ReasonCode),
}

impl CloseCause {
    /// What a client's DISCONNECT with `code` means for its will; `None` for a v5 code a
    /// client may not send (Table 3-10), which makes the packet malformed ([MQTT-3.14.2-1]).
    pub fn of_disconnect(protocol: Protocol, code: ReasonCode) -> Option<CloseCause> {
        match protocol {
            // [MQTT-3.14.4-3] (3.1.1) any DISCONNECT discards the will
            Protocol::V311 => Some(CloseCause::NormalDisconnect),
            // [MQTT-3.14.4-3] only 0x00 discards it
            Protocol::V5 if code == ReasonCode::NORMAL_DISCONNECTION => {
                Some(CloseCause::NormalDisconnect)
            }
            // [MQTT-3.1.2-8]/d every other code leaves it to be published ({A4}, {A5})
            Protocol::V5 if code.is_client_disconnect() => {
                Some(CloseCause::DisconnectWithReason(code))
            }
            Protocol::V5 => None,
        }
    }

    pub fn keeps_will(self) -> bool {
        self != CloseCause::NormalDisconnect
    }
}

impl std::fmt::Display for CloseCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |code: ReasonCode| code.name().unwrap_or("unknown");
        match *self {
            CloseCause::NormalDisconnect => f.write_str("normal DISCONNECT"),
            CloseCause::DisconnectWithReason(code) => {
                write!(
                    f,
                    "client DISCONNECT 0x{:02X} ({})",
                    u8::from(code),
                    name(code)
                )
            }
            CloseCause::ConnectionLost => f.write_str("connection lost"),
            CloseCause::ServerClosed(code) => {
                write!(f, "server closed 0x{:02X} ({})", u8::from(code), name(code))
            }
        }
    }
}

impl Broker {
    /// A CONNECT was accepted into the session of `client_id`.
    pub(super) fn attach_will(&mut self, client_id: &str, will: Option<LastWill>) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if let WillState::Pending { will, timer } = mem::take(&mut session.will) {
            // Pending → cancelled: [MQTT-3.1.3-9] a new connection to the session before
            // the will is due means it is never sent
            self.timers.cancel(timer);
            debug!(client_id, topic = %will.topic(), "pending will cancelled by reconnect");
        }
        if let Some(will) = will {
            // → Armed: [MQTT-3.1.2-7] the will is stored with the session
            session.will = WillState::Armed(will.into());
        }
    }

    /// The session of `client_id` lost its connection for `cause`: this decides the will's
    /// fate, then starts the session's expiry.
    pub(super) fn detach_session(&mut self, now: Moment, client_id: &ClientId, cause: CloseCause) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        session.connection = None;
        let mut due_now = None;
        match mem::take(&mut session.will) {
            WillState::Armed(will) if cause.keeps_will() => {
                // [MQTT-3.1.2-8] closed without DISCONNECT 0x00: published once due
                let due = due_time(now, &will, session.expiry_interval);
                if due <= now {
                    due_now = Some(will);
                } else {
                    // Armed → Pending until close + Will Delay Interval ({W5-WDI-MIN})
                    debug!(%client_id, topic = %will.topic(), %cause, delay = ?(due - now), "will pending");
                    let timer = self
                        .timers
                        .schedule(due, Timer::Session(ClientId::clone(client_id)));
                    session.will = WillState::Pending { will, timer };
                }
            }
            WillState::Armed(will) => {
                // Armed → discarded: [MQTT-3.14.4-3] [MQTT-3.1.2-10] DISCONNECT 0x00
                debug!(%client_id, topic = %will.topic(), "will discarded on normal DISCONNECT");
            }
            other => session.will = other,
        }
        self.start_session_expiry(now, client_id);
        if let Some(will) = due_now {
            // Armed → published at close: no delay ({W5-WDI-DEFAULT}, 3.1.1) or a session
            // that ends at close ({W5-SEI-ABSENT}, {A2}). Published last, once the session's
            // expiry is settled (expiry 0 has ended it already), as after a delay.
            self.publish_will(now, client_id, will, &cause.to_string());
        }
    }

    /// The timer of a pending will fired. `key` tells a stale timer (of a will since
    /// cancelled or published) from the current one.
    pub(super) fn will_delay_elapsed(&mut self, now: Moment, client_id: &ClientId, key: TimerKey) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if !matches!(&session.will, WillState::Pending { timer, .. } if timer == &key) {
            return;
        }
        if let WillState::Pending { will, .. } = mem::take(&mut session.will) {
            // Pending → published: [MQTT-3.1.2-8] the Will Delay Interval passed
            self.publish_will(now, client_id, will, "will delay elapsed");
        }
    }

    /// The session of `client_id` ended ([MQTT-4.1.0-2]) with `will` in it. An ended session
    /// has no connection, so its will is pending or gone.
    pub(super) fn will_at_session_end(
        &mut self,
        now: Moment,
        client_id: &ClientId,
        will: WillState,
        why: &str,
    ) {
        if let WillState::Pending { will, timer } = will {
            // Pending → published: [MQTT-3.1.2-8]/g the session ended before the delay
            // (expiry, or Clean Start from a new connection: {W5-WDI-CS1})
            self.timers.cancel(timer);
            self.publish_will(now, client_id, will, why);
        }
    }

    /// Graceful shutdown ends every session, so by `due = min(close + delay, session end)`
    /// every armed and pending will is due now ({W5-SHUTDOWN}, {A1}): the wills of live
    /// connections first, in client id order, then pending ones in due order.
    /// Returns how many wills were published.
    pub(super) fn publish_every_will(&mut self, now: Moment) -> usize {
        let mut armed = Vec::new();
        let mut pending = Vec::new();
        for (client_id, session) in &mut self.sessions {
            match mem::take(&mut session.will) {
                WillState::Armed(will) => armed.push((ClientId::clone(client_id), will)),
                WillState::Pending { will, timer } => {
                    pending.push((timer, ClientId::clone(client_id), will))
                }
                WillState::None => {}
            }
        }
        pending.sort_by_key(|(timer, _, _)| *timer);
        let wills = armed.into_iter().chain(
            pending
                .into_iter()
                .map(|(_, client_id, will)| (client_id, will)),
        );
        let wills: Vec<_> = wills.collect();
        let published = wills.len();
        for (client_id, will) in wills {
            // Armed or Pending → published
            self.publish_will(now, &client_id, will, "server shutting down");
        }
        published
    }

    /// Publishes a will as an ordinary Application Message from its client
    /// ([`StoredWill::into_message`]). Every caller has taken the will out of the session
    /// first, so it is published at most once ([MQTT-3.1.2-10], {A14}).
    fn publish_will(&mut self, now: Moment, client_id: &ClientId, will: StoredWill, why: &str) {
        debug!(%client_id, topic = %will.topic(), qos = will.qos.as_u8(), retain = will.retain, why, "will published");
        let message = will.into_message(now, client_id);
        self.route(now, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn will(delay: Option<u32>) -> StoredWill {
        LastWill {
            topic: "t".into(),
            payload: "p".into(),
            qos: QoS::AtMostOnce,
            retain: false,
            delay_interval: delay,
            properties: MessageProperties::default(),
        }
        .into()
    }

    #[test]
    fn due_is_the_earlier_of_delay_and_session_end() {
        // {W5-WDI-MIN}: (SEI=10, WDI=3) -> 3 s; (SEI=3, WDI=10) -> 3 s; (SEI=0, WDI=5) -> 0 s
        let t0 = Moment::from(Duration::from_secs(100));
        let s = Duration::from_secs;
        assert_eq!(due_time(t0, &will(Some(3)), 10), t0 + s(3));
        assert_eq!(due_time(t0, &will(Some(10)), 3), t0 + s(3));
        assert_eq!(due_time(t0, &will(Some(5)), 0), t0);
        assert_eq!(due_time(t0, &will(Some(3)), u32::MAX), t0 + s(3));
        // {W5-WDI-DEFAULT}: absent delay is 0
        assert_eq!(due_time(t0, &will(None), u32::MAX), t0);
    }

    #[test]
    fn a_stored_will_publishes_what_it_was_given_without_copying_the_payload() {
        let properties = MessageProperties {
            content_type: Some("text/plain".into()),
            message_expiry_interval: Some(30),
            ..MessageProperties::default()
        };
        let stored = StoredWill::from(LastWill {
            topic: "dev/1/status".into(),
            payload: Bytes::from(vec![7; 65_535]),
            qos: QoS::ExactlyOnce,
            retain: true,
            delay_interval: Some(9),
            properties: properties.clone(),
        });
        assert_eq!(stored.topic(), "dev/1/status");
        assert_eq!(stored.delay_interval, 9);
        let payload_in_body = stored.body[usize::from(stored.topic_len)..].as_ptr();
        let now = Moment::from(Duration::from_secs(5));
        let message = stored.into_message(now, &"dev-1".into());
        assert_eq!(message.topic, "dev/1/status");
        assert_eq!(message.payload, vec![7; 65_535]);
        assert_eq!(message.payload.as_ptr(), payload_in_body);
        assert_eq!((message.qos, message.retain), (QoS::ExactlyOnce, true));
        assert_eq!(message.properties, properties);
        assert_eq!(message.expires_at, Some(now + Duration::from_secs(30)));
        assert_eq!(&*message.origin, "dev-1");
    }

    #[test]
    fn a_will_without_properties_allocates_none() {
        assert!(will(None).properties.is_none());
    }

    #[test]
    fn only_a_v5_zero_or_any_v311_disconnect_discards_the_will() {
        use CloseCause::*;
        let v5 = |code: u8| CloseCause::of_disconnect(Protocol::V5, code.into());
        assert_eq!(v5(0x00), Some(NormalDisconnect));
        assert_eq!(
            v5(0x04),
            Some(DisconnectWithReason(
                ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
            ))
        );
        assert_eq!(v5(0x98), Some(DisconnectWithReason(0x98.into())));
        // server-only and out-of-table codes are malformed from a client
        assert_eq!(v5(0x8E), None);
        assert_eq!(v5(0x01), None);
        let v311 = CloseCause::of_disconnect(Protocol::V311, ReasonCode::SUCCESS);
        assert_eq!(v311, Some(NormalDisconnect));
    }
}
