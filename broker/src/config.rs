//! The broker's configuration: capabilities it announces in CONNACK and the limits it
//! enforces. Read from a TOML file (every key optional) and overridden by CLI flags.
//!
//! Every setting is declared once, as one row of the `settings!` table below: its key, type,
//! default, [`Kind`] (how it is written down) and, where a CONNACK announces it, the CONNACK
//! property that does. The table generates [`Config`] and its TOML reader, [`Overrides`] (a
//! few settings changed: a scenario's `broker:` section, the command line), the [`SETTINGS`]
//! list that every reader, writer and requirement check walks, and the capability properties
//! of the broker's CONNACK. Adding a setting is one row plus its behaviour.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::codec::{ConnAckProperties, QoS};

/// The largest packet MQTT can express: a 5-byte fixed header (type byte and a 4-byte
/// Remaining Length) around the largest Remaining Length, 268,435,455 (§2.2.3).
const LARGEST_PACKET: u64 = 268_435_460;

/// One user the broker accepts. When `credentials` is empty, anyone may connect.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

/// The settings table. A row reads
///
/// ```text
/// /// What it is (the doc comment of its `Config` and `Overrides` fields).
/// key: FieldType = default, Kind [in MIN..=MAX] [, announced as property "Spec Name" [absent VALUE]];
/// ```
///
/// `FieldType` is the field's type in [`Config`]; an `Option<T>` setting is unset by default
/// and set to `T`. `in` narrows a number's range below its type's. `announced as` names the
/// [`ConnAckProperties`] field that shows the setting and, with `absent`, what the property's
/// absence means (the broker then announces only other values).
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty = $default:expr, $kind:ident $(in $min:literal ..= $max:expr)?
            $(, announced as $property:ident $name:literal $(absent $absent:expr)?)?;
    )+) => {
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Config {
            /// Where the TCP listener binds.
            pub listen: SocketAddr,
            $($(#[doc = $doc])+ pub $key: $ty,)+
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
                    $($key: $default,)+
                }
            }
        }

        /// Settings to change, each `None` to keep what it was: a scenario's `broker:`
        /// section, the command line. Against an external broker, a scenario's overrides are
        /// requirements instead.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Overrides {
            $($(#[doc = $doc])+ pub $key: Option<<$ty as Field>::Set>,)+
        }

        /// Every setting's key, in declaration order.
        pub const KEYS: &[&str] = &[$(stringify!($key)),+];

        /// The keys of a configuration file: `listen`, then the settings'.
        const FILE_KEYS: &[&str] = &["listen", $(stringify!($key)),+];

        /// Every setting, in declaration order.
        pub static SETTINGS: &[Setting] = &[$(
            Setting {
                key: stringify!($key),
                kind: Kind::$kind,
                doc: &[$($doc),+],
                range: range!(<$ty as Field>::Set $(, $min, $max)?),
                announced_as: announced_as!($($name)?),
                get: |overrides| overrides.$key.as_ref().map(SettingValue::to_value),
                set: |overrides, value| {
                    overrides.$key = Some(SettingValue::from_value(value)?);
                    Some(())
                },
                configured: |config| Field::as_set(&config.$key).map(SettingValue::to_value),
            },
        )+];

        impl Overrides {
            /// Sets `config`'s fields that these overrides set.
            pub fn apply(&self, config: &mut Config) {
                $(if let Some(value) = &self.$key {
                    config.$key = Field::from_set(value.clone());
                })+
            }

            /// The announced settings as a CONNACK shows them: the property's value, or what
            /// its absence means; unset where the property is absent and that means nothing.
            pub fn announced_in(properties: &ConnAckProperties) -> Overrides {
                let mut seen = Overrides::default();
                $($(
                    let absent: Option<<$ty as Field>::Set> = absent!($($absent)?);
                    seen.$key = properties.$property.clone().or(absent);
                )?)+
                seen
            }
        }

        impl Config {
            /// The CONNACK properties that announce this configuration: each announced
            /// setting whose value is not what the property's absence already means.
            pub fn connack_properties(&self) -> ConnAckProperties {
                let mut properties = ConnAckProperties::default();
                $($(
                    let absent: Option<<$ty as Field>::Set> = absent!($($absent)?);
                    properties.$property =
                        Field::as_set(&self.$key).filter(|v| Some(*v) != absent.as_ref()).cloned();
                )?)+
                properties
            }
        }
    };
}

macro_rules! range {
    ($set:ty) => {
        (0, <$set as SettingValue>::MAX)
    };
    ($set:ty, $min:literal, $max:expr) => {
        ($min, $max)
    };
}

macro_rules! announced_as {
    () => {
        None
    };
    ($name:literal) => {
        Some($name)
    };
}

macro_rules! absent {
    () => {
        None
    };
    ($absent:expr) => {
        Some($absent)
    };
}

// What an absent property means is the spec's (§3.2.2.3): QoS 2, retain available, no Topic
// Alias, a Receive Maximum of 65,535, wildcard, identifier and shared subscriptions available.
settings! {
    /// Highest QoS accepted for PUBLISH and for the Will; wills above it get CONNACK 0x9B.
    max_qos: QoS = QoS::ExactlyOnce, Qos,
        announced as maximum_qos "Maximum QoS" absent QoS::ExactlyOnce;
    /// Whether retained messages (and retained wills) are supported; if not, retained wills
    /// get CONNACK 0x9A.
    retain_available: bool = true, Bool,
        announced as retain_available "Retain Available" absent true;
    /// Largest packet accepted from a client, in bytes.
    max_packet_size: u32 = 1024 * 1024, Bytes in 2..=LARGEST_PACKET,
        announced as maximum_packet_size "Maximum Packet Size";
    /// When set, every v5 client is told to use this keep-alive, in seconds.
    server_keep_alive: Option<u16> = None, Seconds,
        announced as server_keep_alive "Server Keep Alive";
    /// Highest inbound Topic Alias a client may use.
    topic_alias_maximum: u16 = 16, Count,
        announced as topic_alias_maximum "Topic Alias Maximum" absent 0;
    /// How many unacknowledged inbound QoS 2 PUBLISH a client may have.
    receive_maximum: u16 = 1024, Count,
        announced as receive_maximum "Receive Maximum" absent u16::MAX;
    /// Upper bound on Session Expiry Interval, in seconds; larger requests are cut to it and
    /// the cut value is announced in the CONNACK that answers them.
    max_session_expiry: Option<u32> = None, Seconds;
    /// Whether subscriptions may use `+` and `#`.
    wildcard_subscriptions: bool = true, Bool,
        announced as wildcard_subscription_available "Wildcard Subscription Available" absent true;
    /// Whether SUBSCRIBE may carry a Subscription Identifier.
    subscription_identifiers: bool = true, Bool,
        announced as subscription_identifiers_available "Subscription Identifier Available"
        absent true;
    /// Whether `$share/GROUP/FILTER` subscriptions are supported.
    shared_subscriptions: bool = true, Bool,
        announced as shared_subscription_available "Shared Subscription Available" absent true;
    /// QoS 1/2 messages kept per session while it is offline or its window is full; the
    /// oldest is dropped (and logged) beyond this.
    max_queued_messages: usize = 10_000, Count;
    /// Connections beyond this are refused (v5 CONNACK 0x97, 3.1.1 0x03).
    max_connections: usize = 100_000, Count;
    /// Seconds a new connection may take to send CONNECT.
    connect_timeout: u16 = 10, Seconds;
    /// Accepted users; empty means anonymous access.
    credentials: Vec<Credential> = Vec::new(), Credentials;

    // Limits that keep hostile and heavy clients from stalling the broker or growing its
    // memory (the README's "The broker's limits" says what a client gets at each).
    /// Unacknowledged QoS 1/2 PUBLISH sent to one client at once: a v5 client's lower
    /// Receive Maximum wins; 3.1.1 clients, which cannot say, get this.
    max_inflight: u16 = 32, Count in 1..=65535;
    /// Bytes that may wait for one client, counted twice over: the payload and topic bytes
    /// of its session's queued and in-flight QoS 1/2 messages (past it the oldest queued is
    /// dropped), and the encoded bytes waiting to be written to its connection (past it the
    /// oldest QoS 0 PUBLISH are dropped; QoS 1/2 and acks are kept). Drops are counted.
    max_queued_bytes: usize = 64 * 1024 * 1024, Bytes;
    /// Bytes all connections together may hold in read buffers and waiting writes. Past it
    /// new connections are refused (v5 CONNACK 0x97, 3.1.1 0x03) and QoS 0 messages for
    /// clients that are behind are dropped.
    memory_budget: usize = 256 * 1024 * 1024, Bytes;
    /// Seconds a client may take to finish a packet it has started sending; then the
    /// connection is closed as lost (its will is published).
    frame_timeout: u16 = 30, Seconds in 1..=65535;
    /// Seconds one write to a client may wait for it to read; then the connection is closed
    /// as lost (its will is published).
    write_timeout: u16 = 30, Seconds in 1..=65535;
    /// Seconds shutdown waits for clients to receive what was published to them.
    shutdown_grace: u16 = 5, Seconds;
}

/// How a setting's value is written down, and so how every reader reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `true` or `false`.
    Bool,
    /// 0, 1 or 2.
    Qos,
    /// Whole seconds.
    Seconds,
    /// A number of bytes.
    Bytes,
    /// A number of things.
    Count,
    /// Users, each a username and a password.
    Credentials,
}

impl Kind {
    /// The kind's name in documentation and help.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bool => "boolean",
            Kind::Qos => "QoS",
            Kind::Seconds => "seconds",
            Kind::Bytes => "bytes",
            Kind::Count => "count",
            Kind::Credentials => "credentials",
        }
    }
}

/// A setting's value, whatever the setting: what readers produce and writers consume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Qos(QoS),
    /// Seconds, bytes or a count.
    Number(u64),
    Credentials(Vec<Credential>),
}

/// One row of the settings table.
pub struct Setting {
    /// The key in TOML, in a scenario's `broker:` section and in `--set KEY=VALUE`.
    pub key: &'static str,
    pub kind: Kind,
    /// The doc comment's lines.
    pub doc: &'static [&'static str],
    /// The smallest and largest value of a number setting.
    pub range: (u64, u64),
    /// The name of the CONNACK property that announces the setting, if one does.
    pub announced_as: Option<&'static str>,
    get: fn(&Overrides) -> Option<Value>,
    set: fn(&mut Overrides, Value) -> Option<()>,
    configured: fn(&Config) -> Option<Value>,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Setting({})", self.key)
    }
}

impl Setting {
    /// The setting with this key.
    pub fn named(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key == key)
    }

    /// Its doc comment as one line.
    pub fn description(&self) -> String {
        let lines: Vec<&str> = self.doc.iter().map(|line| line.trim()).collect();
        lines.join(" ")
    }

    /// What `overrides` sets it to, if anything.
    pub fn get(&self, overrides: &Overrides) -> Option<Value> {
        (self.get)(overrides)
    }

    /// Its value in `config`; `None` for an optional setting that is not set.
    pub fn configured(&self, config: &Config) -> Option<Value> {
        (self.configured)(config)
    }

    /// Sets it in `overrides`, once [`check`](Self::check) accepts the value.
    pub fn set(&self, overrides: &mut Overrides, value: Value) -> Result<(), String> {
        let value = self.check(value)?;
        (self.set)(overrides, value).ok_or_else(|| {
            format!(
                "`{}` is a {} setting: its field cannot hold that value",
                self.key,
                self.kind.name()
            )
        })
    }

    /// The value, if it is one of this setting's: of its kind and, for a number, in range.
    /// The message says what is wrong, without the key (callers name the setting their way).
    pub fn check(&self, value: Value) -> Result<Value, String> {
        let (min, max) = self.range;
        match (self.kind, value) {
            (Kind::Bool, value @ Value::Bool(_)) | (Kind::Qos, value @ Value::Qos(_)) => Ok(value),
            (Kind::Credentials, value @ Value::Credentials(_)) => Ok(value),
            (Kind::Seconds | Kind::Bytes | Kind::Count, Value::Number(n)) => {
                if (min..=max).contains(&n) {
                    Ok(Value::Number(n))
                } else {
                    Err(format!("must be from {min} to {max}, not {n}"))
                }
            }
            (kind, value) => Err(format!(
                "expected {}, got {}",
                kind.name(),
                self.show(&value)
            )),
        }
    }

    /// A value written on the command line: `true`, `1`, `30`, `NAME:PASSWORD` (one user).
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        let value = match self.kind {
            Kind::Bool => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(format!("expected `true` or `false`, not `{text}`")),
            },
            Kind::Qos => text
                .parse()
                .ok()
                .and_then(QoS::from_u8)
                .map(Value::Qos)
                .ok_or_else(|| format!("must be 0, 1 or 2, not `{text}`"))?,
            Kind::Seconds | Kind::Bytes | Kind::Count => text
                .parse()
                .map(Value::Number)
                .map_err(|_| format!("expected a whole number, not `{text}`"))?,
            Kind::Credentials => match text.split_once(':') {
                Some((username, password)) if !username.is_empty() => {
                    Value::Credentials(vec![Credential {
                        username: username.to_owned(),
                        password: password.to_owned(),
                    }])
                }
                _ => return Err("expected NAME:PASSWORD with a non-empty NAME".to_owned()),
            },
        };
        self.check(value)
    }

    /// A value for people, as a scenario writes it: `true`, `1`, `30s`, `1048576`; users by
    /// name only (passwords are never shown).
    pub fn show(&self, value: &Value) -> String {
        match (self.kind, value) {
            (Kind::Seconds, Value::Number(n)) => format!("{n}s"),
            (_, Value::Number(n)) => n.to_string(),
            (_, Value::Bool(b)) => b.to_string(),
            (_, Value::Qos(q)) => q.as_u8().to_string(),
            (_, Value::Credentials(users)) if users.is_empty() => "no users".to_owned(),
            (_, Value::Credentials(users)) => {
                let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
                format!("users {}", names.join(", "))
            }
        }
    }
}

impl Overrides {
    /// The settings these overrides set, with their values, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Setting, Value)> + '_ {
        SETTINGS
            .iter()
            .filter_map(|setting| setting.get(self).map(|value| (setting, value)))
    }

    /// What a TOML configuration file says to set these settings.
    pub fn to_toml(&self) -> String {
        let table: toml::Table = self
            .iter()
            .map(|(setting, value)| {
                let value = match value {
                    Value::Bool(b) => toml::Value::Boolean(b),
                    Value::Qos(q) => toml::Value::Integer(q.as_u8().into()),
                    // past i64::MAX only when set around `Setting::set`, which caps numbers
                    // there; a count that large is as unbounded as i64::MAX
                    Value::Number(n) => toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
                    Value::Credentials(users) => toml::Value::Array(
                        users
                            .into_iter()
                            .map(|user| {
                                let fields = [
                                    ("username".to_owned(), toml::Value::String(user.username)),
                                    ("password".to_owned(), toml::Value::String(user.password)),
                                ];
                                toml::Value::Table(fields.into_iter().collect())
                            })
                            .collect(),
                    ),
                };
                (setting.key.to_owned(), value)
            })
            .collect();
        table.to_string()
    }
}

/// The type of an override's value: how it becomes a [`Value`] and back.
pub trait SettingValue: Clone + PartialEq + fmt::Debug {
    /// The largest value of a number type.
    const MAX: u64 = 0;
    fn to_value(&self) -> Value;
    /// `None` when the value is of another kind or out of the type's range.
    fn from_value(value: Value) -> Option<Self>;
}

impl SettingValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl SettingValue for QoS {
    fn to_value(&self) -> Value {
        Value::Qos(*self)
    }
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Qos(q) => Some(q),
            _ => None,
        }
    }
}

impl SettingValue for Vec<Credential> {
    fn to_value(&self) -> Value {
        Value::Credentials(self.clone())
    }
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Credentials(users) => Some(users),
            _ => None,
        }
    }
}

macro_rules! number_setting {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            // TOML integers are i64: no reader goes past what a configuration file can say
            const MAX: u64 = if (<$t>::MAX as u64) < i64::MAX as u64 {
                <$t>::MAX as u64
            } else {
                i64::MAX as u64
            };
            fn to_value(&self) -> Value {
                Value::Number(*self as u64)
            }
            fn from_value(value: Value) -> Option<Self> {
                match value {
                    Value::Number(n) => <$t>::try_from(n).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
number_setting!(u16, u32, usize);

/// The type of a setting's field in [`Config`]: the override's value type itself, or
/// `Option` of it for a setting that is unset by default.
pub trait Field {
    type Set: SettingValue;
    fn from_set(value: Self::Set) -> Self;
    fn as_set(&self) -> Option<&Self::Set>;
}

impl<T: SettingValue> Field for T {
    type Set = T;
    fn from_set(value: T) -> T {
        value
    }
    fn as_set(&self) -> Option<&T> {
        Some(self)
    }
}

impl<T: SettingValue> Field for Option<T> {
    type Set = T;
    fn from_set(value: T) -> Option<T> {
        Some(value)
    }
    fn as_set(&self) -> Option<&T> {
        self.as_ref()
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

/// A configuration file: `listen` and any of the settings, every key optional. Keys and
/// values are read by the table; errors come from within the key or the value, so that the
/// TOML reader can say where they are.
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
        deserializer.deserialize_map(ConfigFile)
    }
}

struct ConfigFile;

/// A key of the configuration file.
enum FileKey {
    Listen,
    Setting(&'static Setting),
}

impl<'de> Visitor<'de> for ConfigFile {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of broker settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let mut listen = None;
        let mut overrides = Overrides::default();
        while let Some(key) = map.next_key_seed(FileKeySeed)? {
            match key {
                FileKey::Listen => listen = Some(map.next_value()?),
                FileKey::Setting(setting) => {
                    let value = map.next_value_seed(setting)?;
                    setting
                        .set(&mut overrides, value)
                        .map_err(de::Error::custom)?;
                }
            }
        }
        let mut config = Config::default();
        if let Some(listen) = listen {
            config.listen = listen;
        }
        overrides.apply(&mut config);
        Ok(config)
    }
}

struct FileKeySeed;

impl<'de> DeserializeSeed<'de> for FileKeySeed {
    type Value = FileKey;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FileKey, D::Error> {
        let key = String::deserialize(deserializer)?;
        if key == "listen" {
            return Ok(FileKey::Listen);
        }
        Setting::named(&key)
            .map(FileKey::Setting)
            .ok_or_else(|| de::Error::unknown_field(&key, FILE_KEYS))
    }
}

/// A setting's value in TOML, read by its kind; a bad value's message names the setting.
impl<'de> DeserializeSeed<'de> for &'static Setting {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        let key = self.key;
        let value = match self.kind {
            Kind::Bool => Value::Bool(bool::deserialize(deserializer)?),
            Kind::Qos => {
                let n = u64::deserialize(deserializer)?;
                let qos = u8::try_from(n).ok().and_then(QoS::from_u8).ok_or_else(|| {
                    de::Error::custom(format!("{key} must be 0, 1 or 2, not {n}"))
                })?;
                Value::Qos(qos)
            }
            Kind::Seconds | Kind::Bytes | Kind::Count => {
                Value::Number(u64::deserialize(deserializer)?)
            }
            Kind::Credentials => Value::Credentials(Vec::deserialize(deserializer)?),
        };
        self.check(value)
            .map_err(|message| de::Error::custom(format!("{key} {message}")))
    }
}

#[cfg(test)]
mod tests;
