//! lastwill's reference MQTT broker.
//!
//! - [`codec`]: the wire format (the only module that knows mqttbytes).
//! - [`core`]: the sans-IO broker: sessions, subscriptions, retained messages and the Will
//!   lifecycle, driven by packets and time passed in.
//! - [`driver`]: runs the core on tokio over any [`driver::Listener`] (tokio TCP or turmoil).
//! - [`config`]: the broker's configuration (TOML file and flags).

pub mod codec;
pub mod config;
pub mod core;
pub mod driver;
