//! Unit tests: one per strictness rule and one per mqttbytes 0.6 defect the codec absorbs.
//! Frames are written as hex; `connect_v4`/`connect_v5` build CONNECTs around a flags byte.

use bytes::{Bytes, BytesMut};

use super::DecodeErrorKind::{
    Malformed, PacketTooLarge, ProtocolError, TopicNameInvalid, UnsupportedProtocolVersion,
};
use super::*;

const V4: Option<Protocol> = Some(Protocol::V311);
const V5: Option<Protocol> = Some(Protocol::V5);
const NONE: Option<Protocol> = None;

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// A length-prefixed UTF-8 string as hex.
fn s(text: &str) -> String {
    let mut out = format!("{:04X}", text.len());
    for byte in text.bytes() {
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// A fixed header (with a one- or two-byte Remaining Length) around `body`.
fn frame(byte1: u8, body: &str) -> Vec<u8> {
    let body = hex(body);
    let mut out = vec![byte1];
    if body.len() < 128 {
        out.push(body.len() as u8);
    } else {
        out.extend([(body.len() % 128) as u8 | 0x80, (body.len() / 128) as u8]);
    }
    out.extend(body);
    out
}

fn props(body: &str) -> String {
    format!("{:02X}{body}", hex(body).len())
}

fn connect_v4(flags: u8, payload: &str) -> Vec<u8> {
    frame(0x10, &format!("{}04{flags:02X}003C{payload}", s("MQTT")))
}

fn connect_v5(flags: u8, connect_props: &str, payload: &str) -> Vec<u8> {
    frame(
        0x10,
        &format!(
            "{}05{flags:02X}003C{}{payload}",
            s("MQTT"),
            props(connect_props)
        ),
    )
}

/// A v5 CONNECT with the Will Flag (QoS 0) and the given Will Properties and Will Topic.
fn will_v5(will_props: &str, topic: &str) -> Vec<u8> {
    connect_v5(
        0x04,
        "",
        &format!("{}{}{}{}", s("c"), props(will_props), s(topic), s("p")),
    )
}

fn decode_all(bytes: &[u8], protocol: Option<Protocol>) -> Result<Option<Packet>, DecodeError> {
    decode(&mut BytesMut::from(bytes), protocol, u32::MAX)
}

fn ok(bytes: &[u8], protocol: Option<Protocol>) -> Packet {
    match decode_all(bytes, protocol) {
        Ok(Some(packet)) => packet,
        other => panic!("{bytes:02X?}: expected a packet, got {other:?}"),
    }
}

fn err(bytes: &[u8], protocol: Option<Protocol>) -> DecodeError {
    match decode_all(bytes, protocol) {
        Err(err) => err,
        other => panic!("{bytes:02X?}: expected an error, got {other:?}"),
    }
}

fn kind(bytes: &[u8], protocol: Option<Protocol>) -> DecodeErrorKind {
    err(bytes, protocol).kind
}

fn encoded(packet: &Packet, protocol: Protocol) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode(packet, protocol, &mut buf).unwrap();
    buf.to_vec()
}

// --- mqttbytes 0.6 defects ------------------------------------------------------------------

#[test]
fn v5_disconnect_without_reason_code_decodes_as_normal() {
    assert_eq!(
        ok(&hex("E0 00"), V5),
        Packet::Disconnect(Disconnect::default())
    );
}

#[test]
fn v5_disconnect_with_only_a_reason_code_decodes_and_consumes_the_frame() {
    let mut buf = BytesMut::from(&hex("E0 01 8D C0 00")[..]);
    let packet = decode(&mut buf, V5, u32::MAX).unwrap();
    assert_eq!(
        packet,
        Some(Packet::Disconnect(Disconnect::with_code(
            ReasonCode::KEEP_ALIVE_TIMEOUT
        )))
    );
    assert_eq!(&buf[..], &hex("C0 00")[..]);
}

#[test]
fn an_incomplete_frame_is_never_consumed() {
    let mut buf = BytesMut::from(&hex("E0 01")[..]);
    assert_eq!(decode(&mut buf, V5, u32::MAX), Ok(None));
    assert_eq!(buf.len(), 2);
    buf.extend_from_slice(&[0x04]);
    let packet = decode(&mut buf, V5, u32::MAX).unwrap();
    assert_eq!(
        packet,
        Some(Packet::Disconnect(Disconnect::with_code(
            ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
        )))
    );
    assert!(buf.is_empty());
}

#[test]
fn v5_connack_without_property_length_is_malformed_and_consumed() {
    let mut buf = BytesMut::from(&hex("20 02 00 00")[..]);
    let err = decode(&mut buf, V5, u32::MAX).unwrap_err();
    assert_eq!(err.kind, Malformed);
    assert!(buf.is_empty());
}

#[test]
fn v5_disconnect_encoding_keeps_the_reason_code() {
    let bare = Packet::Disconnect(Disconnect::default());
    assert_eq!(encoded(&bare, Protocol::V5), hex("E0 00"));
    let code = Packet::Disconnect(Disconnect::with_code(
        ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
    ));
    assert_eq!(encoded(&code, Protocol::V5), hex("E0 01 04"));
    let with_props = Packet::Disconnect(Disconnect {
        reason_string: Some("x".into()),
        ..Disconnect::default()
    });
    assert_eq!(
        encoded(&with_props, Protocol::V5),
        hex("E0 06 00 04 1F 0001 78")
    );
    assert_eq!(encoded(&code, Protocol::V311), hex("E0 00"));
}

#[test]
fn publish_with_several_subscription_identifiers_keeps_them_out_of_the_payload() {
    let bytes = frame(
        0x30,
        &format!(
            "{}{}7879",
            s("t"),
            props(&format!("26 {} {} 0B 01 0B 80 01", s("k"), s("v")))
        ),
    );
    let Packet::Publish(publish) = ok(&bytes, V5) else {
        panic!()
    };
    assert_eq!(publish.subscription_identifiers, vec![1, 128]);
    assert_eq!(
        publish.properties.user_properties,
        vec![("k".into(), "v".into())]
    );
    assert_eq!(publish.payload, Bytes::from_static(b"xy"));
    assert_eq!(encoded(&Packet::Publish(publish), Protocol::V5), bytes);
}

#[test]
fn v4_connect_with_a_will_decodes_before_the_protocol_is_known() {
    let bytes = connect_v4(0x2E, &format!("{}{}{}", s("c"), s("w/t"), s("bye")));
    let Packet::Connect(connect) = ok(&bytes, NONE) else {
        panic!()
    };
    assert_eq!(connect.protocol, Protocol::V311);
    let will = connect.will.unwrap();
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("w/t", &b"bye"[..])
    );
    assert_eq!((will.qos, will.retain), (QoS::AtLeastOnce, true));
}

#[test]
fn auth_is_a_protocol_error_in_v5_and_a_reserved_type_in_3_1_1() {
    assert_eq!(kind(&hex("F0 00"), V5), ProtocolError);
    assert_eq!(kind(&hex("F0 00"), V4), Malformed);
    assert_eq!(kind(&hex("F0"), NONE), ProtocolError);
}

#[test]
fn strings_over_65535_bytes_fail_to_encode_and_write_nothing() {
    let mut buf = BytesMut::from(&b"kept"[..]);
    let publish = Packet::Publish(Publish::new("a".repeat(65_536), "x", QoS::AtMostOnce));
    let err = encode(&publish, Protocol::V5, &mut buf).unwrap_err();
    assert_eq!(err.packet, "PUBLISH");
    assert_eq!(&buf[..], b"kept");
    let mut connect = Connect::new(Protocol::V5, "c");
    connect
        .user_properties
        .push(("k".into(), "v".repeat(70_000)));
    assert!(encode(&Packet::Connect(connect), Protocol::V5, &mut buf).is_err());
    assert_eq!(&buf[..], b"kept");
}

#[test]
fn a_failed_encode_leaves_the_buffer_unchanged() {
    let mut buf = BytesMut::from(&b"kept"[..]);
    let no_id = Packet::Publish(Publish::new("t", "x", QoS::AtLeastOnce));
    assert!(encode(&no_id, Protocol::V311, &mut buf).is_err());
    let suback = Packet::SubAck(SubAck {
        packet_id: 1,
        codes: vec![0x05.into()],
        reason_string: None,
    });
    assert!(encode(&suback, Protocol::V311, &mut buf).is_err());
    assert_eq!(&buf[..], b"kept");
}

// --- framing ---------------------------------------------------------------------------------

#[test]
fn frames_are_decoded_one_at_a_time() {
    let mut buf = BytesMut::from(&hex("C0 00 D0 00")[..]);
    assert_eq!(decode(&mut buf, V4, u32::MAX), Ok(Some(Packet::PingReq)));
    assert_eq!(decode(&mut buf, V4, u32::MAX), Ok(Some(Packet::PingResp)));
    assert_eq!(decode(&mut buf, V4, u32::MAX), Ok(None));
}

#[test]
fn oversized_frames_are_refused_as_soon_as_their_length_is_known() {
    let mut buf = BytesMut::from(&hex("30 C8 01")[..]);
    assert_eq!(decode(&mut buf, V5, 100).unwrap_err().kind, PacketTooLarge);
    assert_eq!(buf.len(), 3);
    // The limit counts the fixed header: a 2 + 98 byte frame fits in 100, 2 + 99 does not.
    let fits = frame(0x30, &format!("{}{}", s("t"), "00".repeat(95)));
    assert_eq!(fits.len(), 100);
    assert!(
        decode(&mut BytesMut::from(&fits[..]), V4, 100)
            .unwrap()
            .is_some()
    );
    let over = frame(0x30, &format!("{}{}", s("t"), "00".repeat(96)));
    assert_eq!(
        decode(&mut BytesMut::from(&over[..]), V4, 100)
            .unwrap_err()
            .kind,
        PacketTooLarge
    );
}

#[test]
fn reserved_fixed_header_flags_are_malformed() {
    for bytes in [
        "60 02 00 01", // PUBREL must be 0010
        "82 05 00 01 00 01 61",
        "A0 05 00 01 00 01 61",
        "41 02 00 01",
        "E1 00",
        "C8 00",
        "12 00",
    ] {
        assert_eq!(kind(&hex(bytes), V4), Malformed, "{bytes}");
        assert_eq!(kind(&hex(bytes), V5), Malformed, "{bytes}");
    }
}

#[test]
fn publish_qos_3_and_dup_at_qos_0_are_malformed() {
    assert_eq!(kind(&hex("36"), V5), Malformed);
    assert_eq!(kind(&hex("38 03 00 01 74"), V4), Malformed);
}

#[test]
fn remaining_length_must_be_minimal_and_at_most_four_bytes() {
    assert_eq!(kind(&hex("30 80 80 80 80 01"), V5), Malformed);
    assert_eq!(kind(&hex("C0 80 00"), V4), Malformed);
    assert_eq!(decode_all(&hex("30 FF FF FF"), V5), Ok(None));
}

#[test]
fn only_connect_is_accepted_before_the_protocol_is_known() {
    assert_eq!(kind(&hex("C0 00"), NONE), ProtocolError);
    assert_eq!(kind(&hex("30"), NONE), ProtocolError);
    assert_eq!(kind(&hex("00 00"), V5), Malformed);
}

// --- CONNECT ---------------------------------------------------------------------------------

#[test]
fn unsupported_protocol_names_and_levels_say_which_connack_to_send() {
    let mqisdp = frame(0x10, &format!("{}03 02 003C {}", s("MQIsdp"), s("c")));
    let level6 = frame(0x10, &format!("{}06 02 003C 00 {}", s("MQTT"), s("c")));
    let level3 = frame(0x10, &format!("{}03 02 003C {}", s("MQTT"), s("c")));
    let wrong_name = frame(0x10, &format!("{}05 02 003C 00 {}", s("MQTX"), s("c")));
    for (bytes, protocol) in [
        (mqisdp, Protocol::V311),
        (level6, Protocol::V5),
        (level3, Protocol::V311),
        (wrong_name, Protocol::V5),
    ] {
        let err = err(&bytes, NONE);
        assert_eq!(
            (err.kind, err.protocol),
            (UnsupportedProtocolVersion, Some(protocol))
        );
    }
    assert_eq!(err(&hex("10 03 00 04 4D"), NONE).protocol, None);
}

#[test]
fn connect_flag_rules() {
    let c = s("c");
    for (flags, what) in [
        (0x03, "reserved bit 0 [MQTT-3.1.2-3]"),
        (0x1E, "Will QoS 3"),
        (0x0A, "Will QoS 1 without Will Flag"),
        (0x12, "Will QoS 2 without Will Flag"),
        (0x22, "Will Retain without Will Flag"),
    ] {
        let v4 = err(&connect_v4(flags, &c), NONE);
        assert_eq!((v4.kind, v4.protocol), (Malformed, V4), "3.1.1 {what}");
        let v5 = err(&connect_v5(flags, "", &c), NONE);
        assert_eq!((v5.kind, v5.protocol), (Malformed, V5), "5.0 {what}");
    }
}

#[test]
fn a_password_without_a_user_name_is_malformed_only_in_3_1_1() {
    let payload = format!("{}{}", s("c"), s("pw"));
    assert_eq!(kind(&connect_v4(0x42, &payload), NONE), Malformed);
    let Packet::Connect(connect) = ok(&connect_v5(0x42, "", &payload), NONE) else {
        panic!()
    };
    assert_eq!(
        (connect.username, connect.password),
        (None, Some(Bytes::from_static(b"pw")))
    );
}

#[test]
fn connect_fields_must_be_complete_and_nothing_may_follow() {
    let c = s("c");
    assert_eq!(kind(&connect_v4(0x02, &format!("{c}00")), NONE), Malformed);
    assert_eq!(
        kind(&connect_v5(0x02, "", &format!("{c}00")), NONE),
        Malformed
    );
    // Will Flag set, Will Payload missing.
    assert_eq!(
        kind(&connect_v4(0x06, &format!("{c}{}", s("t"))), NONE),
        Malformed
    );
    // User Name Flag set, nothing there.
    assert_eq!(kind(&connect_v4(0x82, &c), NONE), Malformed);
    // Client Identifier missing.
    assert_eq!(kind(&connect_v5(0x02, "", ""), NONE), Malformed);
    // A 3.1.1-style will payload sent at level 5: no Will Property Length.
    let no_will_props = connect_v5(0x06, "", &format!("{c}{}{}", s("topic"), s("p")));
    assert_eq!(kind(&no_will_props, NONE), Malformed);
}

#[test]
fn will_property_ids_are_checked() {
    for id in [
        "11 00000001",
        "21 0001",
        "23 0001",
        "0B 01",
        "1F 0000",
        "7F 00",
    ] {
        assert_eq!(kind(&will_v5(id, "t"), NONE), Malformed, "{id}");
    }
    let all = format!(
        "01 01 02 0000000A 03 {} 08 {} 09 0002 00FF 18 00000005 26 {}{} 26 {}{}",
        s("text/plain"),
        s("resp"),
        s("a"),
        s("2"),
        s("a"),
        s("1")
    );
    let Packet::Connect(connect) = ok(&will_v5(&all, "t"), NONE) else {
        panic!()
    };
    let will = connect.will.unwrap();
    assert_eq!(will.delay_interval, Some(5));
    assert_eq!(will.properties.payload_format_indicator, Some(1));
    assert_eq!(will.properties.message_expiry_interval, Some(10));
    assert_eq!(will.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(will.properties.response_topic.as_deref(), Some("resp"));
    assert_eq!(
        will.properties.correlation_data.as_deref(),
        Some(&[0x00, 0xFF][..])
    );
    assert_eq!(
        will.properties.user_properties,
        vec![("a".into(), "2".into()), ("a".into(), "1".into())]
    );
}

#[test]
fn duplicate_properties_are_protocol_errors() {
    for dup in [
        "18 00000001 18 00000002".to_string(),
        "01 00 01 01".into(),
        "02 00000001 02 00000001".into(),
        format!("03 {} 03 {}", s("a"), s("a")),
        format!("08 {} 08 {}", s("a"), s("a")),
        "09 0000 09 0000".into(),
    ] {
        assert_eq!(kind(&will_v5(&dup, "t"), NONE), ProtocolError, "{dup}");
    }
    let dup_sei = connect_v5(0x02, "11 00000001 11 00000001", &s("c"));
    assert_eq!(kind(&dup_sei, NONE), ProtocolError);
}

#[test]
fn property_values_out_of_range_are_protocol_errors() {
    assert_eq!(kind(&will_v5("01 02", "t"), NONE), ProtocolError);
    for bad in ["21 0000", "27 00000000", "19 02", "17 02"] {
        assert_eq!(
            kind(&connect_v5(0x02, bad, &s("c")), NONE),
            ProtocolError,
            "{bad}"
        );
    }
    let data_without_method = connect_v5(0x02, "16 0001 00", &s("c"));
    assert_eq!(kind(&data_without_method, NONE), ProtocolError);
}

#[test]
fn a_non_minimal_property_length_is_malformed() {
    let payload = format!("{}80 00{}{}", s("c"), s("t"), s("p"));
    assert_eq!(kind(&connect_v5(0x04, "", &payload), NONE), Malformed);
    let connect_props = frame(0x10, &format!("{}05 02 003C 80 00 {}", s("MQTT"), s("c")));
    assert_eq!(kind(&connect_props, NONE), Malformed);
}

#[test]
fn ill_formed_utf8_and_nul_are_malformed_everywhere() {
    let bad = ["0001 FF", "0002 C080", "0003 EDA080", "0003 61 00 62"];
    for b in bad {
        // Client Identifier, Will Topic, User Name.
        assert_eq!(kind(&connect_v4(0x02, b), NONE), Malformed, "{b}");
        assert_eq!(
            kind(&connect_v4(0x06, &format!("{}{b}{}", s("c"), s("p"))), NONE),
            Malformed
        );
        assert_eq!(
            kind(&connect_v5(0x82, "", &format!("{}{b}", s("c"))), NONE),
            Malformed
        );
        // Will Content Type, Response Topic and User Property.
        for prop in [
            format!("03 {b}"),
            format!("08 {b}"),
            format!("26 {b} {}", s("v")),
        ] {
            assert_eq!(kind(&will_v5(&prop, "t"), NONE), Malformed, "{prop}");
        }
        // PUBLISH Topic Name, SUBSCRIBE and UNSUBSCRIBE filters.
        assert_eq!(kind(&frame(0x30, &format!("{b}00")), V5), Malformed);
        assert_eq!(
            kind(&frame(0x82, &format!("0001 00 {b} 00")), V5),
            Malformed
        );
        assert_eq!(kind(&frame(0xA2, &format!("0001 {b}")), V4), Malformed);
    }
}

#[test]
fn a_bom_is_kept() {
    let bytes = connect_v4(0x06, &format!("{}0004 EFBBBF 78 {}", s("c"), s("p")));
    let Packet::Connect(connect) = ok(&bytes, NONE) else {
        panic!()
    };
    assert_eq!(connect.will.unwrap().topic, "\u{FEFF}x");
}

#[test]
fn will_topics_must_be_valid_topic_names() {
    for topic in ["a/+", "a/#", "#", ""] {
        let v4 = connect_v4(0x06, &format!("{}{}{}", s("c"), s(topic), s("p")));
        assert_eq!(kind(&v4, NONE), TopicNameInvalid, "{topic:?}");
        assert_eq!(
            kind(&will_v5("", topic), NONE),
            TopicNameInvalid,
            "{topic:?}"
        );
    }
    assert!(matches!(
        ok(&will_v5("", "$will/x"), NONE),
        Packet::Connect(_)
    ));
}

#[test]
fn a_response_topic_with_wildcards_or_empty_is_a_protocol_error() {
    for topic in ["r/#", "r/+", ""] {
        assert_eq!(
            kind(&will_v5(&format!("08 {}", s(topic)), "t"), NONE),
            ProtocolError
        );
    }
}

// --- PUBLISH and acknowledgements ------------------------------------------------------------

#[test]
fn publish_topic_rules() {
    let wildcard = frame(0x30, &format!("{}00", s("a/#")));
    assert_eq!(kind(&wildcard, V5), TopicNameInvalid);
    assert_eq!(kind(&frame(0x30, &s("a/+")), V4), TopicNameInvalid);
    assert_eq!(kind(&frame(0x30, "0000"), V4), TopicNameInvalid);
    assert_eq!(kind(&frame(0x30, "0000 00"), V5), ProtocolError);
    let Packet::Publish(aliased) = ok(&frame(0x30, "0000 03 23 0007 41"), V5) else {
        panic!()
    };
    assert_eq!((aliased.topic.as_str(), aliased.topic_alias), ("", Some(7)));
    // Topic Alias 0 decodes: the receiver answers it (the broker with 0x94)
    let Packet::Publish(zero) = ok(&frame(0x30, &format!("{}03 23 0000", s("t"))), V5) else {
        panic!()
    };
    assert_eq!(zero.topic_alias, Some(0));
}

#[test]
fn packet_identifier_zero_is_a_protocol_error() {
    assert_eq!(
        kind(&frame(0x32, &format!("{}0000", s("t"))), V4),
        ProtocolError
    );
    assert_eq!(
        kind(&frame(0x34, &format!("{}0000 00", s("t"))), V5),
        ProtocolError
    );
    assert_eq!(kind(&hex("40 02 00 00"), V5), ProtocolError);
    assert_eq!(
        kind(&frame(0x82, &format!("0000{}00", s("a"))), V4),
        ProtocolError
    );
}

#[test]
fn publish_property_rules() {
    let t = s("t");
    assert_eq!(
        kind(&frame(0x30, &format!("{t}02 0B 00")), V5),
        ProtocolError
    );
    assert_eq!(
        kind(&frame(0x30, &format!("{t}05 18 00000001")), V5),
        Malformed
    );
    assert_eq!(
        kind(&frame(0x30, &format!("{t}06 23 0001 23 0002")), V5),
        ProtocolError
    );
    assert_eq!(
        kind(&frame(0x30, &format!("{t}02 01 05")), V5),
        ProtocolError
    );
    // The Property Length runs past the end of the packet.
    assert_eq!(kind(&frame(0x30, &format!("{t}05 01 01")), V5), Malformed);
}

#[test]
fn v5_acknowledgements_take_every_length_form() {
    assert_eq!(ok(&hex("40 02 00 07"), V5), Packet::PubAck(Ack::success(7)));
    let code = Ack {
        packet_id: 7,
        code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
    };
    assert_eq!(ok(&hex("50 03 00 07 10"), V5), Packet::PubRec(code));
    assert_eq!(ok(&hex("62 04 00 07 10 00"), V5), Packet::PubRel(code));
    let with_reason = frame(
        0x70,
        &format!("0007 92 {}", props(&format!("1F {}", s("gone")))),
    );
    assert_eq!(
        ok(&with_reason, V5),
        Packet::PubComp(Ack {
            packet_id: 7,
            code: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        })
    );
    assert_eq!(kind(&hex("40 04 00 07 00 01"), V5), Malformed);
    assert_eq!(kind(&hex("40 03 00 07 00"), V4), Malformed);
}

// --- SUBSCRIBE, UNSUBSCRIBE ------------------------------------------------------------------

#[test]
fn subscribe_needs_a_filter() {
    assert_eq!(kind(&hex("82 02 00 01"), V4), ProtocolError);
    assert_eq!(kind(&hex("82 03 00 01 00"), V5), ProtocolError);
    assert_eq!(kind(&hex("A2 02 00 01"), V4), ProtocolError);
    assert_eq!(kind(&hex("A2 03 00 01 00"), V5), ProtocolError);
}

#[test]
fn subscription_options_rules() {
    let sub = |options: &str, protocol| {
        let props = if protocol == V5 { "00" } else { "" };
        kind(
            &frame(0x82, &format!("0001 {props} {} {options}", s("a/b"))),
            protocol,
        )
    };
    assert_eq!(sub("40", V5), Malformed);
    assert_eq!(sub("80", V5), Malformed);
    assert_eq!(sub("04", V4), Malformed);
    assert_eq!(sub("03", V4), Malformed);
    assert_eq!(sub("03", V5), ProtocolError);
    assert_eq!(sub("30", V5), ProtocolError);
    let missing_options = frame(0x82, &format!("0001 00 {}", s("a")));
    assert_eq!(kind(&missing_options, V5), Malformed);
}

#[test]
fn subscribe_property_rules() {
    let a = s("a");
    assert_eq!(
        kind(&frame(0x82, &format!("0001 02 0B 00 {a} 00")), V5),
        ProtocolError
    );
    assert_eq!(
        kind(&frame(0x82, &format!("0001 04 0B 01 0B 02 {a} 00")), V5),
        ProtocolError
    );
    assert_eq!(
        kind(&frame(0x82, &format!("0001 03 23 0001 {a} 00")), V5),
        Malformed
    );
}

#[test]
fn topic_filter_syntax_is_left_to_the_broker() {
    let filters = ["a+/b", "a/#/b", "#x", ""];
    let payload: String = filters.iter().map(|f| format!("{}01", s(f))).collect();
    let Packet::Subscribe(subscribe) = ok(&frame(0x82, &format!("0001 00 {payload}")), V5) else {
        panic!()
    };
    let decoded: Vec<_> = subscribe
        .filters
        .iter()
        .map(|f| f.filter.as_str())
        .collect();
    assert_eq!(decoded, filters);
}

// --- DISCONNECT, PING ------------------------------------------------------------------------

#[test]
fn disconnect_rules() {
    assert_eq!(
        ok(&hex("E0 00"), V4),
        Packet::Disconnect(Disconnect::default())
    );
    assert_eq!(kind(&hex("E0 01 00"), V4), Malformed);
    assert_eq!(
        ok(&hex("E0 01 FF"), V5),
        Packet::Disconnect(Disconnect::with_code(0xFF.into()))
    );
    assert_eq!(
        ok(&hex("E0 02 00 00"), V5),
        Packet::Disconnect(Disconnect::default())
    );
    let sei = Disconnect {
        code: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        session_expiry_interval: Some(60),
        ..Disconnect::default()
    };
    assert_eq!(
        ok(&hex("E0 07 04 05 11 0000003C"), V5),
        Packet::Disconnect(sei)
    );
    assert_eq!(kind(&hex("E0 04 00 02 23 00"), V5), Malformed);
}

#[test]
fn ping_packets_have_no_body() {
    assert_eq!(kind(&hex("C0 01 00"), V5), Malformed);
    assert_eq!(kind(&hex("D0 01 00"), V4), Malformed);
}

// --- encodings -------------------------------------------------------------------------------

#[test]
fn connack_encodings() {
    let plain = Packet::ConnAck(ConnAck {
        session_present: true,
        code: ConnAckCode::V5(ReasonCode::SUCCESS),
        properties: ConnAckProperties::default(),
    });
    assert_eq!(encoded(&plain, Protocol::V5), hex("20 03 01 00 00"));
    assert_eq!(encoded(&plain, Protocol::V311), hex("20 02 01 00"));
    let rejected = Packet::ConnAck(ConnAck {
        session_present: false,
        // the encoder writes the code's byte, whichever table it is from
        code: ConnAckCode::V311(ConnectReturnCode::NOT_AUTHORIZED),
        properties: ConnAckProperties {
            retain_available: Some(false),
            ..ConnAckProperties::default()
        },
    });
    assert_eq!(encoded(&rejected, Protocol::V311), hex("20 02 00 05"));
    assert_eq!(
        encoded(&rejected, Protocol::V5),
        hex("20 05 00 05 02 25 00")
    );
}

#[test]
fn v311_suback_and_unsuback_forms() {
    let suback = Packet::SubAck(SubAck {
        packet_id: 9,
        codes: [0, 2, 0x8F, 0x80].map(ReasonCode::from).to_vec(),
        reason_string: Some("ignored".into()),
    });
    assert_eq!(
        encoded(&suback, Protocol::V311),
        hex("90 06 0009 00 02 80 80")
    );
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: 9,
        codes: vec![ReasonCode::NO_SUBSCRIPTION_EXISTED],
    });
    assert_eq!(encoded(&unsuback, Protocol::V311), hex("B0 02 0009"));
    assert_eq!(encoded(&unsuback, Protocol::V5), hex("B0 04 0009 00 11"));
}

#[test]
fn encoded_len_is_the_length_of_the_encoding() {
    let publish = Packet::Publish(Publish::new("t", vec![0u8; 300], QoS::AtMostOnce));
    assert_eq!(
        encoded_len(&publish, Protocol::V5).unwrap(),
        3 + 3 + 1 + 300
    );
}
