//! lastwill's reference MQTT broker.
//!
//! - [`codec`]: the wire format: our own strict encoder and decoder, the packet model and the
//!   reason codes.
//! - [`core`]: the sans-IO broker: sessions, subscriptions, retained messages and the Will
//!   lifecycle, driven by packets and time passed in.
//! - [`driver`]: runs the core on tokio over any [`driver::Listener`] (tokio TCP or turmoil).
//! - [`config`]: the broker's configuration (TOML file and flags).
//! - [`log_limit`]: warnings that would repeat per message, logged as counts.
//!
//! # Driving the core by hand
//!
//! The core has no sockets and no clock: whoever drives it says what happened and when, and
//! reads back what to send. Here a device with a will delayed by 5 s loses its connection,
//! and the will reaches a subscriber once the delay has passed:
//!
//! ```
//! use std::time::Duration;
//!
//! use lastwill_broker::codec::{
//!     Connect, LastWill, Packet, Protocol, QoS, Subscribe, SubscriptionRequest,
//! };
//! use lastwill_broker::config::Config;
//! use lastwill_broker::core::{Broker, Output};
//!
//! let secs = Duration::from_secs;
//! let mut broker = Broker::new(Config::default());
//!
//! // Connection 1, a watcher, subscribes to every status topic.
//! broker.connection_opened(secs(0), 1);
//! let watcher = Connect::new(Protocol::V5, "watcher");
//! broker.packet_received(secs(0), 1, Packet::Connect(watcher));
//! let subscribe = Subscribe {
//!     packet_id: 1,
//!     filters: vec![SubscriptionRequest::new("status/#", QoS::AtMostOnce)],
//!     subscription_identifier: None,
//!     user_properties: Vec::new(),
//! };
//! broker.packet_received(secs(0), 1, Packet::Subscribe(subscribe));
//!
//! // Connection 2, a device, sets a will with a 5 s delay in a session that outlives its
//! // connection by 60 s.
//! broker.connection_opened(secs(1), 2);
//! let mut device = Connect::new(Protocol::V5, "device");
//! device.session_expiry_interval = Some(60);
//! device.will = Some(LastWill {
//!     topic: "status/device".into(),
//!     payload: "offline".into(),
//!     qos: QoS::AtMostOnce,
//!     retain: false,
//!     delay_interval: Some(5),
//!     properties: Default::default(),
//! });
//! broker.packet_received(secs(1), 2, Packet::Connect(device));
//!
//! // Two CONNACKs and a SUBACK so far; a driver would encode and write them.
//! let sent: Vec<Output> = std::iter::from_fn(|| broker.poll_output()).collect();
//! assert_eq!(sent.len(), 3);
//!
//! // At 2 s the device's connection is lost: its will is pending, due at 2 + 5 s.
//! broker.connection_lost(secs(2), 2);
//! assert_eq!(broker.poll_output(), Some(Output::Close { connection: 2 }));
//! assert_eq!(broker.pending_wills(), ["device"]);
//! assert_eq!(broker.next_deadline(), Some(secs(7)));
//!
//! // Nothing is due before then.
//! broker.handle_timeout(secs(6));
//! assert_eq!(broker.poll_output(), None);
//!
//! // At 7 s the will is published to the watcher.
//! broker.handle_timeout(secs(7));
//! match broker.poll_output() {
//!     Some(Output::Send {
//!         connection: 1,
//!         packet: Packet::Publish(publish),
//!         ..
//!     }) => {
//!         assert_eq!(publish.topic, "status/device");
//!         assert_eq!(publish.payload, "offline");
//!     }
//!     other => panic!("expected the will to go to the watcher, got {other:?}"),
//! }
//! assert!(broker.pending_wills().is_empty());
//! ```

pub mod codec;
pub mod config;
pub mod core;
pub mod driver;
pub mod log_limit;
