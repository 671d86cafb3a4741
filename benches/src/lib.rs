//! A will storm on the reference broker's sans-IO core, for the benchmarks in `benches/`.
//!
//! [`Storm::prepare`] builds a broker the way a driver would: `subscribers` clients subscribed
//! to `storm/+`, then `clients` clients each holding a will on `storm/<n>`. The benchmarks then
//! time what happens when every will client's connection dies at once: the core's will rules,
//! the fan-out to every subscriber, the QoS handshakes the subscribers answer, and the encoding
//! of every packet the core sends (a driver encodes each one), with no sockets or tokio in the
//! way. [`Storm::drop_all`] and [`Storm::fire_delayed`] return how many wills reached a
//! subscriber, so the benchmarks (and the tests below) know the work really happened.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lastwill_broker::codec::{
    self, Connect, LastWill, MessageProperties, Packet, Protocol, QoS, Subscribe,
    SubscriptionRequest,
};
use lastwill_broker::config::Config;
use lastwill_broker::core::{Broker, ConnectionId, Output};

/// The topic filter every subscriber holds; will `n` goes to `storm/<n>`.
pub const FILTER: &str = "storm/+";

/// What a storm looks like.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Will-carrying clients, all of which lose their connection.
    pub clients: usize,
    /// Clients subscribed to every will.
    pub subscribers: usize,
    pub protocol: Protocol,
    /// QoS of the wills and of the subscriptions.
    pub qos: QoS,
    pub payload: usize,
    /// Will Delay Interval in seconds (MQTT 5), or none.
    pub will_delay: Option<u32>,
    /// Keep Alive of the will clients, seconds (0: none, so the core keeps no timer for them).
    pub keep_alive: u16,
}

impl Shape {
    /// `clients` v5 wills at QoS 0 with a 32-byte payload, no delay, no keep-alive, to one
    /// subscriber.
    pub fn new(clients: usize) -> Shape {
        Shape {
            clients,
            subscribers: 1,
            protocol: Protocol::V5,
            qos: QoS::AtMostOnce,
            payload: 32,
            will_delay: None,
            keep_alive: 0,
        }
    }
}

/// A broker with subscribers and will clients connected, ready to lose the will clients.
pub struct Storm {
    broker: Broker,
    shape: Shape,
    now: Duration,
    /// Connection ids of the subscribers: `1..=subscribers`.
    subscribers: std::ops::RangeInclusive<ConnectionId>,
    /// Connection ids of the will clients, in the order they die.
    will_clients: Vec<ConnectionId>,
    /// Reused for encoding, as a driver reuses its write buffer.
    wire: BytesMut,
}

impl Storm {
    pub fn prepare(shape: Shape) -> Storm {
        let config = Config {
            // room for every will client and subscriber
            max_connections: shape.clients + shape.subscribers + 1,
            ..Config::default()
        };
        let subscribers = 1..=shape.subscribers as ConnectionId;
        let mut storm = Storm {
            broker: Broker::new(config),
            shape,
            now: Duration::ZERO,
            subscribers: subscribers.clone(),
            will_clients: Vec::with_capacity(shape.clients),
            wire: BytesMut::with_capacity(4096),
        };
        for id in subscribers {
            storm.open(id, Connect::new(shape.protocol, format!("sub-{id}")));
            let subscribe = Subscribe {
                packet_id: 1,
                filters: vec![SubscriptionRequest::new(FILTER, shape.qos)],
                subscription_identifier: None,
                user_properties: Vec::new(),
            };
            storm
                .broker
                .packet_received(storm.now, id, Packet::Subscribe(subscribe));
            storm.settle();
        }
        let payload = vec![b'x'; shape.payload];
        for n in 0..shape.clients {
            let id = (shape.subscribers + 1 + n) as ConnectionId;
            let connect = Connect {
                will: Some(LastWill {
                    topic: format!("storm/{n}"),
                    // each client's own copy, as decoding its CONNECT would give
                    payload: Bytes::copy_from_slice(&payload),
                    qos: shape.qos,
                    retain: false,
                    delay_interval: shape.will_delay,
                    properties: MessageProperties::default(),
                }),
                // a session that outlives the delay, or the will would go at once
                session_expiry_interval: shape.will_delay,
                keep_alive: shape.keep_alive,
                ..Connect::new(shape.protocol, format!("device-{n}"))
            };
            storm.open(id, connect);
            storm.will_clients.push(id);
            // drained after every event, as a driver does (the output queue stays short)
            assert_eq!(storm.settle(), 0, "no will may go before the storm");
        }
        storm
    }

    fn open(&mut self, id: ConnectionId, connect: Connect) {
        self.broker.connection_opened(self.now, id);
        self.broker
            .packet_received(self.now, id, Packet::Connect(connect));
    }

    /// Every will client's connection is lost, one microsecond apart; returns how many wills
    /// reached a subscriber (all of them, times the subscribers, unless the wills are delayed).
    pub fn drop_all(&mut self) -> usize {
        let mut delivered = 0;
        for i in 0..self.will_clients.len() {
            self.now += Duration::from_micros(1);
            self.broker.connection_lost(self.now, self.will_clients[i]);
            delivered += self.settle();
        }
        delivered
    }

    /// Moves time to when every delayed will is due and fires the timers; returns how many
    /// wills reached a subscriber.
    pub fn fire_delayed(&mut self) -> usize {
        let mut delivered = 0;
        while let Some(deadline) = self.broker.next_deadline() {
            self.now = self.now.max(deadline);
            self.broker.handle_timeout(self.now);
            delivered += self.settle();
        }
        delivered
    }

    /// Encodes every output as a driver would and answers the subscribers' side of QoS 1 and
    /// 2 handshakes, until the core has nothing more to say. Returns the PUBLISH packets that
    /// reached subscribers.
    fn settle(&mut self) -> usize {
        let mut delivered = 0;
        while let Some(output) = self.broker.poll_output() {
            let Output::Send {
                connection,
                protocol,
                packet,
            } = output
            else {
                continue;
            };
            self.wire.clear();
            codec::encode(&packet, protocol, &mut self.wire).expect("the core sends valid packets");
            if !self.subscribers.contains(&connection) {
                continue;
            }
            if matches!(packet, Packet::Publish(_)) {
                delivered += 1;
            }
            let answer = packet.receiver_ack();
            if let Some(answer) = answer {
                self.broker.packet_received(self.now, connection, answer);
            }
        }
        delivered
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The broker, for measuring what it holds.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_will_reaches_every_subscriber_once() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for protocol in [Protocol::V311, Protocol::V5] {
                let mut storm = Storm::prepare(Shape {
                    subscribers: 3,
                    qos,
                    protocol,
                    ..Shape::new(100)
                });
                assert_eq!(storm.drop_all(), 300, "{qos:?} {protocol:?}");
                assert_eq!(storm.broker().session_count(), 3, "will sessions ended");
            }
        }
    }

    #[test]
    fn delayed_wills_wait_for_their_timers() {
        let mut storm = Storm::prepare(Shape {
            will_delay: Some(5),
            ..Shape::new(100)
        });
        assert_eq!(storm.drop_all(), 0, "nothing before the delay");
        assert_eq!(storm.broker().pending_wills().len(), 100);
        assert_eq!(storm.fire_delayed(), 100);
        assert!(storm.broker().pending_wills().is_empty());
    }
}
