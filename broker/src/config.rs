//! The broker's configuration: capabilities it announces in CONNACK and the limits it
//! enforces. Read from a TOML file (every key optional) and overridden by CLI flags.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::codec::QoS;

/// One user the broker accepts. When `credentials` is empty, anyone may connect.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the TCP listener binds.
    pub listen: SocketAddr,
    /// Highest QoS accepted for PUBLISH and for the Will (CONNACK Maximum QoS).
    #[serde(with = "qos_number")]
    pub max_qos: QoS,
    /// Whether retained messages (and retained wills) are supported.
    pub retain_available: bool,
    /// Largest packet accepted from a client, in bytes (CONNACK Maximum Packet Size).
    pub max_packet_size: u32,
    /// When set, every v5 client is told to use this keep-alive (CONNACK Server Keep Alive).
    pub server_keep_alive: Option<u16>,
    /// Highest inbound Topic Alias a client may use (CONNACK Topic Alias Maximum).
    pub topic_alias_maximum: u16,
    /// How many unacknowledged inbound QoS 2 PUBLISH a client may have (CONNACK Receive Maximum).
    pub receive_maximum: u16,
    /// Upper bound on Session Expiry Interval, seconds; larger requests are cut to it and
    /// the cut value is announced in CONNACK.
    pub max_session_expiry: Option<u32>,
    pub wildcard_subscriptions: bool,
    pub subscription_identifiers: bool,
    pub shared_subscriptions: bool,
    /// QoS 1/2 messages kept per session while it is offline or its window is full; the
    /// oldest is dropped (and logged) beyond this.
    pub max_queued_messages: usize,
    /// Connections beyond this are refused (v5 CONNACK 0x97, 3.1.1 0x03).
    pub max_connections: usize,
    /// Seconds a new connection may take to send CONNECT.
    pub connect_timeout: u16,
    /// Accepted users; empty means anonymous access.
    pub credentials: Vec<Credential>,

    // Limits that keep hostile and heavy clients from stalling the broker or growing its
    // memory (the README's "The broker's limits" says what a client gets at each).
    /// Unacknowledged QoS 1/2 PUBLISH sent to one client at once: a v5 client's lower
    /// Receive Maximum wins; 3.1.1 clients, which cannot say, get this.
    pub max_inflight: u16,
    /// Bytes that may wait for one client, counted twice over: the payload and topic bytes
    /// of its session's queued and in-flight QoS 1/2 messages (past it the oldest queued is
    /// dropped), and the encoded bytes waiting to be written to its connection (past it the
    /// oldest QoS 0 PUBLISH are dropped; QoS 1/2 and acks are kept). Drops are counted.
    pub max_queued_bytes: usize,
    /// Bytes all connections together may hold in read buffers and waiting writes. Past it
    /// new connections are refused (v5 CONNACK 0x97, 3.1.1 0x03) and QoS 0 messages for
    /// clients that are behind are dropped.
    pub memory_budget: usize,
    /// Seconds a client may take to finish a packet it has started sending; then the
    /// connection is closed as lost (its will is published).
    pub frame_timeout: u16,
    /// Seconds one write to a client may wait for it to read; then the connection is closed
    /// as lost (its will is published).
    pub write_timeout: u16,
    /// Seconds shutdown waits for clients to receive what was published to them.
    pub shutdown_grace: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            max_qos: QoS::ExactlyOnce,
            retain_available: true,
            max_packet_size: 1024 * 1024,
            server_keep_alive: None,
            topic_alias_maximum: 16,
            receive_maximum: 1024,
            max_session_expiry: None,
            wildcard_subscriptions: true,
            subscription_identifiers: true,
            shared_subscriptions: true,
            max_queued_messages: 10_000,
            max_connections: 100_000,
            connect_timeout: 10,
            credentials: Vec::new(),
            max_inflight: 32,
            max_queued_bytes: 64 * 1024 * 1024,
            memory_budget: 256 * 1024 * 1024,
            frame_timeout: 30,
            write_timeout: 30,
            shutdown_grace: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::from_toml(&text).map_err(|err| ConfigError::Parse {
            path: shown,
            message: one_line_toml_error(&text, &err),
        })
    }
}

/// `line:column: message` for a TOML error, on one line.
fn one_line_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{line}:{column}: {message}")
        }
        None => message,
    }
}

mod qos_number {
    use serde::{Deserialize, Deserializer};

    use crate::codec::QoS;

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<QoS, D::Error> {
        let n = u8::deserialize(de)?;
        QoS::from_u8(n)
            .ok_or_else(|| serde::de::Error::custom(format!("max_qos must be 0, 1 or 2, not {n}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults() {
        let config =
            Config::from_toml("max_qos = 1\nretain_available = false\nserver_keep_alive = 4\n")
                .unwrap();
        assert_eq!(config.max_qos, QoS::AtLeastOnce);
        assert!(!config.retain_available);
        assert_eq!(config.server_keep_alive, Some(4));
        assert_eq!(config.max_packet_size, Config::default().max_packet_size);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_with_a_position() {
        let dir = std::env::temp_dir().join(format!("lastwill-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "retain_available = true\nmax_qos = 3\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml: 2:11: max_qos must be 0, 1 or 2, not 3"),
            "{err}"
        );
        std::fs::write(&path, "retain = true\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("1:1: unknown field `retain`"), "{err}");
    }
}
