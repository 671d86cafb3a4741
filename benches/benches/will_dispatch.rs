//! Will-dispatch throughput of the reference broker's core: how fast a storm of dying
//! connections turns into wills delivered to subscribers (see `lastwill_benches::Storm`).
//!
//! Every measured iteration starts from a freshly prepared broker (the preparation is not
//! timed) and ends when the core has nothing more to send. Throughput is in wills delivered
//! (one will reaching one subscriber), so fan-out shows as more elements, not slower ones.
//!
//! `cargo bench -p lastwill-benches --bench will_dispatch`

use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lastwill_benches::{Shape, Storm};
use lastwill_broker::codec::{Protocol, QoS};

/// Times `shape`'s storm from the first lost connection to the last delivery.
fn storm(c: &mut Criterion, group: &str, cases: &[(String, Shape)]) {
    let mut group = c.benchmark_group(group);
    group.measurement_time(Duration::from_secs(4));
    // each iteration prepares a whole broker: fewer, longer samples keep the run short
    group.sample_size(20);
    for (name, shape) in cases {
        let deliveries = shape.clients * shape.subscribers;
        group.throughput(Throughput::Elements(deliveries as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), shape, |b, shape| {
            b.iter_batched(
                || Storm::prepare(*shape),
                |mut storm| {
                    let delivered = if shape.will_delay.is_some() {
                        storm.drop_all() + storm.fire_delayed()
                    } else {
                        storm.drop_all()
                    };
                    assert_eq!(delivered, deliveries);
                    storm
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// Abnormal closes, immediate wills, one subscriber: the core's per-will cost as the broker
/// grows.
fn abnormal_close(c: &mut Criterion) {
    let cases: Vec<_> = [1_000, 10_000, 50_000]
        .into_iter()
        .map(|n| (format!("{n} clients"), Shape::new(n)))
        .collect();
    storm(c, "abnormal_close", &cases);
}

/// One thousand wills fanned out to more and more subscribers.
fn fan_out(c: &mut Criterion) {
    let cases: Vec<_> = [1, 10, 100]
        .into_iter()
        .map(|s| {
            let shape = Shape {
                subscribers: s,
                ..Shape::new(1_000)
            };
            (format!("{s} subscribers"), shape)
        })
        .collect();
    storm(c, "fan_out", &cases);
}

/// The QoS handshakes a will costs, and 3.1.1 against 5.
fn qos_and_protocol(c: &mut Criterion) {
    let mut cases = Vec::new();
    for protocol in [Protocol::V311, Protocol::V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let shape = Shape {
                protocol,
                qos,
                ..Shape::new(10_000)
            };
            cases.push((format!("{protocol} qos{}", qos.as_u8()), shape));
        }
    }
    storm(c, "qos_and_protocol", &cases);
}

/// Delayed wills: all go pending, then the timer queue fires them (O(n log n), not a scan).
fn delayed(c: &mut Criterion) {
    let cases: Vec<_> = [1_000, 10_000, 50_000]
        .into_iter()
        .map(|n| {
            let shape = Shape {
                will_delay: Some(5),
                ..Shape::new(n)
            };
            (format!("{n} clients"), shape)
        })
        .collect();
    storm(c, "delayed", &cases);
}

/// Payload size: wills are `Bytes` clones, so only the encoding should grow with it.
fn payload(c: &mut Criterion) {
    let cases: Vec<_> = [16, 1_024, 65_536]
        .into_iter()
        .map(|bytes| {
            let shape = Shape {
                payload: bytes,
                ..Shape::new(1_000)
            };
            (format!("{bytes} bytes"), shape)
        })
        .collect();
    storm(c, "payload", &cases);
}

criterion_group!(
    benches,
    abnormal_close,
    fan_out,
    qos_and_protocol,
    delayed,
    payload
);
criterion_main!(benches);
