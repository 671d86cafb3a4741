//! Arbitrary bytes after a valid CONNECT, against the real broker over TCP: the broker never
//! panics, and another connected client keeps working after every case.

use crate::support::{Client, start_broker, subscriber};
use lastwill_broker::codec::{Connect, Packet, Protocol, Publish, QoS};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_after_connect_never_hurt_other_clients(
        cases in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)),
            1..8,
        )
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let broker = start_broker().await;
            let mut observer = subscriber(broker.addr, "observer", "echo/#").await;

            for (n, (v5, garbage)) in cases.iter().enumerate() {
                let protocol = if *v5 { Protocol::V5 } else { Protocol::V311 };
                let mut fuzzer = Client::connect(broker.addr, protocol).await;
                fuzzer.send(Packet::Connect(Connect::new(protocol, format!("fuzzer-{n}")))).await;
                assert!(matches!(fuzzer.recv().await, Some(Packet::ConnAck(c)) if c.code.is_success()));
                let _ = fuzzer.stream.write_all(garbage).await;
                drop(fuzzer);

                // the observer still gets its own message back
                let topic = format!("echo/{n}");
                observer.send(Packet::Publish(Publish::new(topic.clone(), "still here", QoS::AtMostOnce))).await;
                loop {
                    match observer.recv().await {
                        Some(Packet::Publish(p)) if p.topic == topic => break,
                        Some(Packet::Publish(_)) => continue,
                        other => panic!("observer stopped working after case {n} ({garbage:02x?}): {other:?}"),
                    }
                }
            }
        });
    }
}
