//! Reason codes, each kind built from one table: the MQTT 5 Reason Codes (Table 2-6, with the
//! CONNACK Table 3-1 and the DISCONNECT Table 3-10), and the MQTT 3.1.1 CONNACK return codes
//! (Table 3.1 of 3.1.1), whose values overlap the v5 ones with other meanings (0x01 is
//! "granted QoS 1" in v5 and "unacceptable protocol version" in 3.1.1).
//!
//! Both are newtypes over the wire byte rather than enums: a peer can send a value that is in
//! no table (a client's DISCONNECT 0x01, a broker's CONNACK 0xFF), and it has to be carried,
//! judged and printed as it is (`0x01 unknown`).

use std::fmt;

use super::Protocol;

/// Where a v5 reason code may appear, for the checks that need it (a bit set).
mod sent_in {
    /// A CONNACK (Table 3-1, [MQTT-3.2.2-8]).
    pub const CONNACK: u8 = 1;
    /// A DISCONNECT from a client (Table 3-10, "Sent by" Client, or Client or Server).
    pub const CLIENT_DISCONNECT: u8 = 2;
}

/// One row of a code table.
#[derive(Clone, Copy)]
struct Entry {
    name: &'static str,
    sent_in: u8,
}

/// Declares a code newtype from its table: one associated constant per row, the name lookup
/// by value and by name, and `Display` as `0x8E session-taken-over`. The table must be in
/// ascending value order (checked at compile time, which also rules out duplicates).
macro_rules! code_table {
    (
        $(#[$type_meta:meta])*
        pub struct $type:ident;
        $(
            $(#[$meta:meta])*
            $constant:ident = $value:literal, $name:literal $(, $sent_in:ident)*;
        )+
    ) => {
        $(#[$type_meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $type(u8);

        impl $type {
            $(
                $(#[$meta])*
                pub const $constant: $type = $type($value);
            )+

            /// Every code in the table, in value order.
            pub const ALL: &'static [$type] = &[$($type::$constant),+];

            /// The table indexed by value.
            const TABLE: [Option<Entry>; 256] = {
                let values: &[u8] = &[$($value),+];
                let mut i = 1;
                while i < values.len() {
                    assert!(values[i - 1] < values[i], "code table out of value order");
                    i += 1;
                }
                let mut table = [None; 256];
                $(
                    table[$value as usize] = Some(Entry {
                        name: $name,
                        sent_in: 0 $(| sent_in::$sent_in)*,
                    });
                )+
                table
            };

            fn entry(self) -> Option<Entry> {
                Self::TABLE[usize::from(self.0)]
            }

            /// The code's name in transcripts, logs and scenarios (`session-taken-over`), or
            /// `None` for a value outside the table.
            pub fn name(self) -> Option<&'static str> {
                self.entry().map(|entry| entry.name)
            }

            /// The code named `name`, if the table has one.
            pub fn from_name(name: &str) -> Option<$type> {
                Self::ALL.iter().copied().find(|code| code.name() == Some(name))
            }
        }

        impl From<u8> for $type {
            fn from(value: u8) -> $type {
                $type(value)
            }
        }

        impl From<$type> for u8 {
            fn from(code: $type) -> u8 {
                code.0
            }
        }

        /// `0x8E session-taken-over`; `0x01 unknown` for a value outside the table.
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{:02X} {}", self.0, self.name().unwrap_or("unknown"))
            }
        }

        /// The bare value, so that `{:02X}` prints `8E`.
        impl fmt::UpperHex for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::UpperHex::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($type))
            }
        }
    };
}

code_table! {
    /// An MQTT 5 Reason Code (§2.4, Table 2-6): CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP,
    /// SUBACK, UNSUBACK, DISCONNECT and AUTH all draw from this one table.
    ///
    /// `Default` is 0x00: an omitted reason code means Success / Normal disconnection
    /// (§3.4.2.1, §3.14.2.1).
    #[derive(Default)]
    pub struct ReasonCode;
    // constant                            value  name                                   sent in
    SUCCESS                                = 0x00, "success", CONNACK, CLIENT_DISCONNECT;
    GRANTED_QOS_1                          = 0x01, "granted-qos-1";
    GRANTED_QOS_2                          = 0x02, "granted-qos-2";
    DISCONNECT_WITH_WILL_MESSAGE           = 0x04, "disconnect-with-will", CLIENT_DISCONNECT;
    NO_MATCHING_SUBSCRIBERS                = 0x10, "no-matching-subscribers";
    NO_SUBSCRIPTION_EXISTED                = 0x11, "no-subscription-existed";
    CONTINUE_AUTHENTICATION                = 0x18, "continue-authentication";
    RE_AUTHENTICATE                        = 0x19, "re-authenticate";
    UNSPECIFIED_ERROR                      = 0x80, "unspecified-error", CONNACK, CLIENT_DISCONNECT;
    MALFORMED_PACKET                       = 0x81, "malformed-packet", CONNACK, CLIENT_DISCONNECT;
    PROTOCOL_ERROR                         = 0x82, "protocol-error", CONNACK, CLIENT_DISCONNECT;
    IMPLEMENTATION_SPECIFIC_ERROR          = 0x83, "implementation-specific-error", CONNACK, CLIENT_DISCONNECT;
    UNSUPPORTED_PROTOCOL_VERSION           = 0x84, "unsupported-protocol-version", CONNACK;
    CLIENT_IDENTIFIER_NOT_VALID            = 0x85, "client-identifier-not-valid", CONNACK;
    BAD_USER_NAME_OR_PASSWORD              = 0x86, "bad-user-name-or-password", CONNACK;
    NOT_AUTHORIZED                         = 0x87, "not-authorized", CONNACK;
    SERVER_UNAVAILABLE                     = 0x88, "server-unavailable", CONNACK;
    SERVER_BUSY                            = 0x89, "server-busy", CONNACK;
    BANNED                                 = 0x8A, "banned", CONNACK;
    SERVER_SHUTTING_DOWN                   = 0x8B, "server-shutting-down";
    BAD_AUTHENTICATION_METHOD              = 0x8C, "bad-authentication-method", CONNACK;
    KEEP_ALIVE_TIMEOUT                     = 0x8D, "keep-alive-timeout";
    SESSION_TAKEN_OVER                     = 0x8E, "session-taken-over";
    TOPIC_FILTER_INVALID                   = 0x8F, "topic-filter-invalid";
    TOPIC_NAME_INVALID                     = 0x90, "topic-name-invalid", CONNACK, CLIENT_DISCONNECT;
    PACKET_IDENTIFIER_IN_USE               = 0x91, "packet-identifier-in-use";
    PACKET_IDENTIFIER_NOT_FOUND            = 0x92, "packet-identifier-not-found";
    RECEIVE_MAXIMUM_EXCEEDED               = 0x93, "receive-maximum-exceeded", CLIENT_DISCONNECT;
    TOPIC_ALIAS_INVALID                    = 0x94, "topic-alias-invalid", CLIENT_DISCONNECT;
    PACKET_TOO_LARGE                       = 0x95, "packet-too-large", CONNACK, CLIENT_DISCONNECT;
    MESSAGE_RATE_TOO_HIGH                  = 0x96, "message-rate-too-high", CLIENT_DISCONNECT;
    QUOTA_EXCEEDED                         = 0x97, "quota-exceeded", CONNACK, CLIENT_DISCONNECT;
    ADMINISTRATIVE_ACTION                  = 0x98, "administrative-action", CLIENT_DISCONNECT;
    PAYLOAD_FORMAT_INVALID                 = 0x99, "payload-format-invalid", CONNACK, CLIENT_DISCONNECT;
    RETAIN_NOT_SUPPORTED                   = 0x9A, "retain-not-supported", CONNACK;
    QOS_NOT_SUPPORTED                      = 0x9B, "qos-not-supported", CONNACK;
    USE_ANOTHER_SERVER                     = 0x9C, "use-another-server", CONNACK;
    SERVER_MOVED                           = 0x9D, "server-moved", CONNACK;
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED     = 0x9E, "shared-subscriptions-not-supported";
    CONNECTION_RATE_EXCEEDED               = 0x9F, "connection-rate-exceeded", CONNACK;
    MAXIMUM_CONNECT_TIME                   = 0xA0, "maximum-connect-time";
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "subscription-identifiers-not-supported";
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED   = 0xA2, "wildcard-subscriptions-not-supported";
}

impl ReasonCode {
    /// 0x00 in a DISCONNECT: the one code that discards the will ([MQTT-3.14.4-3]).
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode::SUCCESS;

    /// The SUBACK code granting `qos`: 0x00 (Granted QoS 0, the value of Success), 0x01 or
    /// 0x02.
    pub fn granted(qos: super::QoS) -> ReasonCode {
        ReasonCode(qos.as_u8())
    }

    /// 0x80 and above report failure (§2.4).
    pub fn is_failure(self) -> bool {
        self.0 >= 0x80
    }

    /// May a v5 CONNACK carry this code (Table 3-1, [MQTT-3.2.2-8])?
    pub fn is_connack(self) -> bool {
        self.is_sent_in(sent_in::CONNACK)
    }

    /// May a client put this code in a DISCONNECT (Table 3-10, "Sent by" Client or both)?
    /// Anything else from a client is a Malformed Packet ([MQTT-3.14.2-1]).
    pub fn is_client_disconnect(self) -> bool {
        self.is_sent_in(sent_in::CLIENT_DISCONNECT)
    }

    fn is_sent_in(self, packets: u8) -> bool {
        self.entry()
            .is_some_and(|entry| entry.sent_in & packets != 0)
    }
}

code_table! {
    /// An MQTT 3.1.1 CONNACK return code (Table 3.1 of 3.1.1); 6 to 255 are reserved.
    pub struct ConnectReturnCode;
    // constant                   value  name
    /// Connection Accepted. Named like the v5 Success so that an accepted CONNECT reads
    /// `CONNACK 0x00 success` in both versions' transcripts.
    ACCEPTED                      = 0x00, "success";
    UNACCEPTABLE_PROTOCOL_VERSION = 0x01, "unacceptable-protocol-version";
    IDENTIFIER_REJECTED           = 0x02, "identifier-rejected";
    SERVER_UNAVAILABLE            = 0x03, "server-unavailable";
    BAD_USER_NAME_OR_PASSWORD     = 0x04, "bad-user-name-or-password";
    NOT_AUTHORIZED                = 0x05, "not-authorized";
}

/// The code of a CONNACK: a v5 Connect Reason Code or a 3.1.1 Connect Return Code. The two
/// share the byte but not the table, so the protocol travels with the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnAckCode {
    V5(ReasonCode),
    V311(ConnectReturnCode),
}

impl ConnAckCode {
    /// The code accepting a CONNECT of `protocol`.
    pub fn success(protocol: Protocol) -> ConnAckCode {
        ConnAckCode::read(protocol, 0x00)
    }

    /// The code `value` as a CONNACK of `protocol` carries it.
    pub fn read(protocol: Protocol, value: u8) -> ConnAckCode {
        match protocol {
            Protocol::V5 => ConnAckCode::V5(value.into()),
            Protocol::V311 => ConnAckCode::V311(value.into()),
        }
    }

    /// 0x00: the CONNECT was accepted, in either version.
    pub fn is_success(self) -> bool {
        u8::from(self) == 0x00
    }
}

impl From<ConnAckCode> for u8 {
    fn from(code: ConnAckCode) -> u8 {
        match code {
            ConnAckCode::V5(code) => code.into(),
            ConnAckCode::V311(code) => code.into(),
        }
    }
}

/// Each code named from its own version's table.
impl fmt::Display for ConnAckCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnAckCode::V5(code) => code.fmt(f),
            ConnAckCode::V311(code) => code.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values Table 3-1 allows in a v5 CONNACK.
    const CONNACK: &[u8] = &[
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
        0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ];
    /// The values Table 3-10 lets a client send in a DISCONNECT.
    const CLIENT_DISCONNECT: &[u8] = &[
        0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    ];

    #[test]
    fn predicates_follow_the_spec_tables() {
        for value in 0..=255u8 {
            let code = ReasonCode::from(value);
            assert_eq!(code.is_connack(), CONNACK.contains(&value), "{code}");
            assert_eq!(
                code.is_client_disconnect(),
                CLIENT_DISCONNECT.contains(&value),
                "{code}"
            );
            assert_eq!(code.is_failure(), value >= 0x80, "{code}");
        }
    }

    #[test]
    fn out_of_table_values_are_carried_and_named_unknown() {
        assert_eq!(
            ReasonCode::SESSION_TAKEN_OVER.to_string(),
            "0x8E session-taken-over"
        );
        assert_eq!(ReasonCode::from(0x03).to_string(), "0x03 unknown");
        assert_eq!(u8::from(ReasonCode::from(0xFF)), 0xFF);
        assert_eq!(ReasonCode::from(0xFF).name(), None);
        assert_eq!(format!("0x{:02X}", ReasonCode::from(0x0B)), "0x0B");
        assert_eq!(
            format!("{:?}", ReasonCode::PROTOCOL_ERROR),
            "ReasonCode(0x82 protocol-error)"
        );
    }

    #[test]
    fn names_map_back_to_their_codes() {
        for &code in ReasonCode::ALL {
            assert_eq!(ReasonCode::from_name(code.name().unwrap()), Some(code));
        }
        assert_eq!(ReasonCode::ALL.len(), 43);
        assert_eq!(ReasonCode::from_name("normal-disconnection"), None);
        assert_eq!(ReasonCode::from_name("unknown"), None);
    }

    #[test]
    fn v311_return_codes_have_their_own_names() {
        // 0x01 and 0x04 mean something else in each version
        let v311 = ConnAckCode::read(Protocol::V311, 0x04);
        let v5 = ConnAckCode::read(Protocol::V5, 0x04);
        assert_eq!(v311.to_string(), "0x04 bad-user-name-or-password");
        assert_eq!(v5.to_string(), "0x04 disconnect-with-will");
        assert_eq!(
            ConnAckCode::V311(ConnectReturnCode::UNACCEPTABLE_PROTOCOL_VERSION).to_string(),
            "0x01 unacceptable-protocol-version"
        );
        assert_eq!(
            ConnAckCode::read(Protocol::V311, 0x80).to_string(),
            "0x80 unknown"
        );
        assert_eq!(
            ConnAckCode::success(Protocol::V311).to_string(),
            "0x00 success"
        );
        assert!(ConnAckCode::success(Protocol::V5).is_success());
        assert!(!v311.is_success());
        assert_eq!(u8::from(v311), 0x04);
    }
}
