//! Differential tests against mqttbytes 0.6, an independent implementation: where it is
//! correct (3.1.1 PUBLISH, SUBSCRIBE, CONNECT with a will; v5 PUBLISH with at most one
//! Subscription Identifier), its reading of our encoding must agree with ours, and we must
//! read its encoding. The round-trip tests alone cannot catch a bug shared by our encoder and
//! decoder.

use bytes::{Bytes, BytesMut};
use lastwill_broker::codec::{
    Connect, LastWill, MessageProperties, Packet, Protocol, Publish, QoS, Subscribe,
    SubscriptionRequest, decode, encode,
};
use mqttbytes::{v4, v5};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn theirs(qos: QoS) -> mqttbytes::QoS {
    mqttbytes::qos(qos.as_u8()).unwrap()
}

fn ours(packet: &Packet, protocol: Protocol) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(packet, protocol, &mut buf).unwrap();
    buf
}

fn publish() -> impl Strategy<Value = Publish> {
    (
        "[a-z/]{1,12}",
        vec(any::<u8>(), 1..32),
        qos(),
        any::<bool>(),
        1..=u16::MAX,
    )
        .prop_map(|(topic, payload, qos, retain, id)| {
            let mut publish = Publish::new(topic, payload, qos);
            publish.retain = retain;
            publish.packet_id = (qos != QoS::AtMostOnce).then_some(id);
            publish
        })
}

proptest! {
    #[test]
    fn v311_publish_agrees(publish in publish()) {
        let packet = Packet::Publish(publish.clone());
        let mut buf = ours(&packet, Protocol::V311);
        let Ok(v4::Packet::Publish(read)) = v4::read(&mut buf, usize::MAX) else {
            panic!("mqttbytes could not read our PUBLISH");
        };
        prop_assert_eq!(&read.topic, &publish.topic);
        prop_assert_eq!(&read.payload, &publish.payload);
        prop_assert_eq!(read.qos, theirs(publish.qos));
        prop_assert_eq!(read.retain, publish.retain);
        prop_assert_eq!(read.pkid, publish.packet_id.unwrap_or(0));

        let mut their_bytes = BytesMut::new();
        read.write(&mut their_bytes).unwrap();
        prop_assert_eq!(decode(&mut their_bytes, Some(Protocol::V311), u32::MAX), Ok(Some(packet)));
    }

    #[test]
    fn v311_subscribe_agrees(id in 1..=u16::MAX, filters in vec(("[a-z/+#]{1,8}", qos()), 1..4)) {
        let packet = Packet::Subscribe(Subscribe {
            packet_id: id,
            filters: filters
                .iter()
                .map(|(filter, qos)| SubscriptionRequest::new(filter.clone(), *qos))
                .collect(),
            subscription_identifier: None,
            user_properties: Vec::new(),
        });
        let mut buf = ours(&packet, Protocol::V311);
        let Ok(v4::Packet::Subscribe(read)) = v4::read(&mut buf, usize::MAX) else {
            panic!("mqttbytes could not read our SUBSCRIBE");
        };
        prop_assert_eq!(read.pkid, id);
        let read: Vec<_> = read.filters.iter().map(|f| (f.path.clone(), f.qos)).collect();
        let expected: Vec<_> = filters.iter().map(|(f, q)| (f.clone(), theirs(*q))).collect();
        prop_assert_eq!(read, expected);
    }

    #[test]
    fn v311_connect_with_a_will_agrees(
        client_id in "[a-z0-9]{1,10}",
        topic in "[a-z/]{1,10}",
        payload in vec(any::<u8>(), 1..16),
        will_qos in qos(),
        retain in any::<bool>(),
        login in option::of(("[a-z]{1,8}", "[a-z]{1,8}")),
    ) {
        let mut connect = Connect::new(Protocol::V311, client_id.clone());
        connect.will = Some(LastWill {
            topic: topic.clone(),
            payload: Bytes::from(payload.clone()),
            qos: will_qos,
            retain,
            delay_interval: None,
            properties: MessageProperties::default(),
        });
        if let Some((user, password)) = &login {
            connect.username = Some(user.clone());
            connect.password = Some(Bytes::from(password.clone()));
        }
        let mut buf = ours(&Packet::Connect(connect), Protocol::V311);
        let Ok(v4::Packet::Connect(read)) = v4::read(&mut buf, usize::MAX) else {
            panic!("mqttbytes could not read our CONNECT");
        };
        prop_assert_eq!(read.client_id, client_id);
        let will = read.last_will.unwrap();
        prop_assert_eq!((will.topic, will.message.to_vec()), (topic, payload));
        prop_assert_eq!((will.qos, will.retain), (theirs(will_qos), retain));
        let read_login = read.login.map(|l| (l.username, l.password));
        prop_assert_eq!(read_login, login);
    }

    #[test]
    fn v5_publish_agrees(
        publish in publish(),
        sub_id in option::of(1..=268_435_455u32),
        expiry in option::of(any::<u32>()),
        content_type in option::of("[a-z/]{1,10}"),
        user in vec(("[a-z]{1,4}", "[a-z]{0,4}"), 0..3),
    ) {
        let mut publish = publish;
        publish.subscription_identifiers = sub_id.into_iter().collect();
        publish.properties.message_expiry_interval = expiry;
        publish.properties.content_type = content_type;
        publish.properties.user_properties = user;
        let mut buf = ours(&Packet::Publish(publish.clone()), Protocol::V5);
        let Ok(v5::Packet::Publish(read)) = v5::read(&mut buf, usize::MAX) else {
            panic!("mqttbytes could not read our v5 PUBLISH");
        };
        prop_assert_eq!(&read.topic, &publish.topic);
        prop_assert_eq!(&read.payload, &publish.payload);
        // mqttbytes reads an empty property set as `None`.
        let (ids, expiry, content_type, user) = match read.properties {
            Some(p) => (
                p.subscription_identifiers.iter().map(|&id| id as u32).collect(),
                p.message_expiry_interval,
                p.content_type,
                p.user_properties,
            ),
            None => (Vec::new(), None, None, Vec::new()),
        };
        prop_assert_eq!(ids, publish.subscription_identifiers);
        prop_assert_eq!(expiry, publish.properties.message_expiry_interval);
        prop_assert_eq!(content_type, publish.properties.content_type);
        prop_assert_eq!(user, publish.properties.user_properties);
    }
}
