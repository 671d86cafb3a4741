//! Property tests for the codec: every valid packet of both protocols survives encode then
//! decode, framing never consumes a partial frame, and no input makes decode panic.

use bytes::{Bytes, BytesMut};
use lastwill_broker::codec::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

const VBI_MAX: u32 = 268_435_455;

/// A UTF-8 string the decoder accepts: anything but U+0000.
fn text() -> impl Strategy<Value = String> {
    "[^\\x00]{0,8}"
}

/// A valid Topic Name: not empty, no wildcards.
fn topic_name() -> impl Strategy<Value = String> {
    "[^\\x00+#]{1,10}"
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet_id() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn user_properties(protocol: Protocol) -> BoxedStrategy<Vec<UserProperty>> {
    match protocol {
        Protocol::V5 => vec((text(), text()), 0..3).boxed(),
        Protocol::V311 => Just(Vec::new()).boxed(),
    }
}

fn message_properties(protocol: Protocol) -> BoxedStrategy<MessageProperties> {
    if protocol == Protocol::V311 {
        return Just(MessageProperties::default()).boxed();
    }
    (
        option::of(0..=1u8),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(topic_name()),
        option::of(binary()),
        user_properties(protocol),
    )
        .prop_map(
            |(pfi, expiry, content_type, response_topic, correlation, user)| MessageProperties {
                payload_format_indicator: pfi,
                message_expiry_interval: expiry,
                content_type,
                response_topic,
                correlation_data: correlation,
                user_properties: user,
            },
        )
        .boxed()
}

fn v5_only<T: std::fmt::Debug + Clone + 'static>(
    protocol: Protocol,
    strategy: impl Strategy<Value = Option<T>> + 'static,
) -> BoxedStrategy<Option<T>> {
    match protocol {
        Protocol::V5 => strategy.boxed(),
        Protocol::V311 => Just(None).boxed(),
    }
}

fn will(protocol: Protocol) -> impl Strategy<Value = LastWill> {
    (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        v5_only(protocol, option::of(any::<u32>())),
        message_properties(protocol),
    )
        .prop_map(
            |(topic, payload, qos, retain, delay_interval, properties)| LastWill {
                topic,
                payload,
                qos,
                retain,
                delay_interval,
                properties,
            },
        )
}

fn connect(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let v5_props = (
        v5_only(protocol, option::of(any::<u32>())),
        v5_only(protocol, option::of(1..=u16::MAX)),
        v5_only(protocol, option::of(1..=u32::MAX)),
        v5_only(protocol, option::of(any::<u16>())),
        v5_only(protocol, option::of(0..=1u8)),
        v5_only(protocol, option::of(0..=1u8)),
        v5_only(protocol, option::of((text(), option::of(binary())))),
        user_properties(protocol),
    );
    let login = (option::of(text()), option::of(binary())).prop_filter(
        "3.1.1 has no password without a user name",
        move |(user, password)| protocol.is_v5() || user.is_some() || password.is_none(),
    );
    (
        text(),
        any::<bool>(),
        any::<u16>(),
        v5_props,
        option::of(will(protocol)),
        login,
    )
        .prop_map(
            move |(client_id, clean_start, keep_alive, props, will, login)| {
                let (sei, receive_max, max_packet, alias_max, rri, rpi, auth, user) = props;
                let (authentication_method, authentication_data) = match auth {
                    Some((method, data)) => (Some(method), data),
                    None => (None, None),
                };
                Packet::Connect(Connect {
                    protocol,
                    client_id,
                    clean_start,
                    keep_alive,
                    session_expiry_interval: sei,
                    receive_maximum: receive_max,
                    maximum_packet_size: max_packet,
                    topic_alias_maximum: alias_max,
                    request_response_information: rri,
                    request_problem_information: rpi,
                    authentication_method,
                    authentication_data,
                    user_properties: user,
                    will,
                    username: login.0,
                    password: login.1,
                })
            },
        )
}

fn connack(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let flags = || v5_only(protocol, option::of(any::<bool>()));
    let strings = || v5_only(protocol, option::of(text()));
    let props = (
        (
            v5_only(protocol, option::of(any::<u32>())),
            v5_only(protocol, option::of(1..=u16::MAX)),
            v5_only(
                protocol,
                option::of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
            ),
            flags(),
            v5_only(protocol, option::of(1..=u32::MAX)),
            strings(),
            v5_only(protocol, option::of(any::<u16>())),
            strings(),
        ),
        (
            flags(),
            flags(),
            flags(),
            v5_only(protocol, option::of(any::<u16>())),
            strings(),
            strings(),
            user_properties(protocol),
        ),
    )
        .prop_map(|(a, b)| ConnAckProperties {
            session_expiry_interval: a.0,
            receive_maximum: a.1,
            maximum_qos: a.2,
            retain_available: a.3,
            maximum_packet_size: a.4,
            assigned_client_identifier: a.5,
            topic_alias_maximum: a.6,
            reason_string: a.7,
            wildcard_subscription_available: b.0,
            subscription_identifiers_available: b.1,
            shared_subscription_available: b.2,
            server_keep_alive: b.3,
            response_information: b.4,
            server_reference: b.5,
            user_properties: b.6,
        });
    (any::<bool>(), any::<u8>(), props).prop_map(move |(session_present, code, properties)| {
        Packet::ConnAck(ConnAck {
            session_present,
            code: ConnAckCode::read(protocol, code),
            properties,
        })
    })
}

fn publish(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let alias = v5_only(protocol, option::of(1..=u16::MAX));
    let sub_ids = match protocol {
        Protocol::V5 => vec(1..=VBI_MAX, 0..3).boxed(),
        Protocol::V311 => Just(Vec::new()).boxed(),
    };
    (
        qos(),
        any::<(bool, bool, bool)>(),
        topic_name(),
        packet_id(),
        binary(),
        message_properties(protocol),
        alias,
        sub_ids,
    )
        .prop_map(
            |(qos, (dup, retain, aliased_empty), topic, id, payload, properties, alias, ids)| {
                let at_least_once = qos != QoS::AtMostOnce;
                Packet::Publish(Publish {
                    dup: dup && at_least_once,
                    qos,
                    retain,
                    // v5 may replace the Topic Name with a Topic Alias.
                    topic: if aliased_empty && alias.is_some() {
                        String::new()
                    } else {
                        topic
                    },
                    packet_id: at_least_once.then_some(id),
                    payload,
                    properties,
                    topic_alias: alias,
                    subscription_identifiers: ids,
                })
            },
        )
}

fn ack(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let code = match protocol {
        Protocol::V5 => any::<u8>().boxed(),
        Protocol::V311 => Just(0).boxed(),
    };
    (0..4usize, packet_id(), code).prop_map(|(kind, packet_id, code)| {
        let ack = Ack {
            packet_id,
            code: code.into(),
        };
        match kind {
            0 => Packet::PubAck(ack),
            1 => Packet::PubRec(ack),
            2 => Packet::PubRel(ack),
            _ => Packet::PubComp(ack),
        }
    })
}

fn subscribe(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let options = match protocol {
        Protocol::V5 => (
            any::<bool>(),
            any::<bool>(),
            prop_oneof![
                Just(RetainHandling::SendAtSubscribe),
                Just(RetainHandling::SendIfNew),
                Just(RetainHandling::DoNotSend)
            ],
        )
            .boxed(),
        Protocol::V311 => Just((false, false, RetainHandling::SendAtSubscribe)).boxed(),
    };
    let request =
        (text(), qos(), options).prop_map(|(filter, qos, (nl, rap, rh))| SubscriptionRequest {
            filter,
            qos,
            no_local: nl,
            retain_as_published: rap,
            retain_handling: rh,
        });
    (
        packet_id(),
        vec(request, 1..4),
        v5_only(protocol, option::of(1..=VBI_MAX)),
        user_properties(protocol),
    )
        .prop_map(|(packet_id, filters, id, user)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                subscription_identifier: id,
                user_properties: user,
            })
        })
}

fn suback(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let code = match protocol {
        Protocol::V5 => any::<u8>().boxed(),
        Protocol::V311 => prop_oneof![Just(0u8), Just(1), Just(2), Just(0x80)].boxed(),
    };
    (
        packet_id(),
        vec(code, 0..4),
        v5_only(protocol, option::of(text())),
    )
        .prop_map(|(packet_id, codes, reason_string)| {
            Packet::SubAck(SubAck {
                packet_id,
                codes: codes.into_iter().map(ReasonCode::from).collect(),
                reason_string,
            })
        })
}

fn unsubscribe(protocol: Protocol) -> impl Strategy<Value = Packet> {
    (packet_id(), vec(text(), 1..4), user_properties(protocol)).prop_map(
        |(packet_id, filters, user_properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                user_properties,
            })
        },
    )
}

fn unsuback(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let codes = match protocol {
        Protocol::V5 => vec(any::<u8>().prop_map(ReasonCode::from), 0..4).boxed(),
        Protocol::V311 => Just(Vec::new()).boxed(),
    };
    (packet_id(), codes)
        .prop_map(|(packet_id, codes)| Packet::UnsubAck(UnsubAck { packet_id, codes }))
}

fn disconnect(protocol: Protocol) -> BoxedStrategy<Packet> {
    if protocol == Protocol::V311 {
        return Just(Packet::Disconnect(Disconnect::default())).boxed();
    }
    (
        any::<u8>(),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(text()),
        user_properties(protocol),
    )
        .prop_map(|(code, sei, reason, reference, user)| {
            Packet::Disconnect(Disconnect {
                code: code.into(),
                session_expiry_interval: sei,
                reason_string: reason,
                server_reference: reference,
                user_properties: user,
            })
        })
        .boxed()
}

/// Any packet legal in `protocol`, with only the fields that protocol has.
fn packet(protocol: Protocol) -> BoxedStrategy<Packet> {
    prop_oneof![
        connect(protocol),
        connack(protocol),
        publish(protocol),
        ack(protocol),
        subscribe(protocol),
        suback(protocol),
        unsubscribe(protocol),
        unsuback(protocol),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(protocol),
    ]
    .boxed()
}

fn protocol_and_packet() -> impl Strategy<Value = (Protocol, Packet)> {
    prop_oneof![Just(Protocol::V311), Just(Protocol::V5)]
        .prop_flat_map(|protocol| (Just(protocol), packet(protocol)))
}

fn encoded(packet: &Packet, protocol: Protocol) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(packet, protocol, &mut buf).expect("a valid packet encodes");
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_then_decode_gives_the_same_packet((protocol, packet) in protocol_and_packet()) {
        let mut buf = encoded(&packet, protocol);
        let len = buf.len();
        prop_assert_eq!(encoded_len(&packet, protocol).unwrap(), len);
        buf.extend_from_slice(&[0xC0, 0x00]);
        let decoded = decode(&mut buf, Some(protocol), u32::MAX);
        prop_assert_eq!(decoded, Ok(Some(packet.clone())));
        // Exactly the encoded bytes were consumed: the trailing PINGREQ is still there.
        prop_assert_eq!(&buf[..], &[0xC0, 0x00][..]);
        if let Packet::Connect(_) = packet {
            let mut buf = encoded(&packet, protocol);
            prop_assert_eq!(decode(&mut buf, None, u32::MAX), Ok(Some(packet)));
        }
    }

    #[test]
    fn a_prefix_of_a_valid_frame_is_not_consumed((protocol, packet) in protocol_and_packet()) {
        let full = encoded(&packet, protocol);
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            prop_assert_eq!(decode(&mut buf, Some(protocol), u32::MAX), Ok(None), "cut at {}", cut);
            prop_assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn a_frame_over_the_limit_is_refused((protocol, packet) in protocol_and_packet()) {
        let full = encoded(&packet, protocol);
        let mut buf = full.clone();
        let limit = full.len() as u32 - 1;
        let err = decode(&mut buf, Some(protocol), limit).unwrap_err();
        prop_assert_eq!(err.kind, DecodeErrorKind::PacketTooLarge);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..96), which in 0..3usize) {
        let protocol = [None, Some(Protocol::V311), Some(Protocol::V5)][which];
        decode_until_stuck(&bytes, protocol);
    }

    #[test]
    fn corrupted_frames_never_panic(
        (protocol, packet) in protocol_and_packet(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = encoded(&packet, protocol).to_vec();
        let index = at.index(bytes.len());
        bytes[index] = byte;
        decode_until_stuck(&bytes, Some(protocol));
    }
}

/// Decodes frames until the input runs out or fails; each success must consume something.
fn decode_until_stuck(bytes: &[u8], protocol: Option<Protocol>) {
    let mut buf = BytesMut::from(bytes);
    let mut protocol = protocol;
    loop {
        let before = buf.len();
        match decode(&mut buf, protocol, 1 << 20) {
            Ok(Some(packet)) => {
                assert!(buf.len() < before, "a decoded packet consumed no bytes");
                if let Packet::Connect(connect) = packet {
                    protocol = Some(connect.protocol);
                }
            }
            Ok(None) => {
                assert_eq!(buf.len(), before);
                return;
            }
            Err(_) => return,
        }
    }
}
