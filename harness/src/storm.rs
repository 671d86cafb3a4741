//! A will storm against a broker over real TCP: many clients holding wills die at once, and
//! subscribers time how the broker dispatches their wills.
//!
//! 1. `subscribers` clients subscribe to `<prefix>/storm/+`.
//! 2. `clients` clients connect, at most `concurrency` at a time, each with a will on
//!    `<prefix>/storm/<n>`, with the plan's Keep Alive (60 s by default; rumqttd refuses 0):
//!    will clients stay silent, as a dying client would, so a storm must connect them all
//!    within 1.5 times it [MQTT-3.1.2-24]; subscribers send PINGREQ when idle that long.
//! 3. Every will client's connection is closed abruptly (RST, or FIN without DISCONNECT), one
//!    after another as fast as the harness can, each close timestamped.
//! 4. Subscribers timestamp every will they receive, answering QoS 1 and 2 as a client must,
//!    until each has every will or `timeout` has passed since the last will was due.
//!
//! The [`Report`] gives the connect rate, how many wills arrived (missing ones, duplicates
//! beyond what QoS 1 allows, and wills that came before their client was closed are the
//! broker's failures), the time to the first and the last will, the delivery throughput, and
//! the latency of each delivery from its client's close (plus the will delay) on the harness's
//! monotonic clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use indicatif::ProgressBar;
use lastwill_broker::codec::{
    Connect, LastWill, MessageProperties, Packet, Protocol, QoS, Subscribe, SubscriptionRequest,
};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::broker_process::{BrokerProcess, Usage};
use crate::io_error;
use crate::link::{Ended, Link};
use crate::runner::tcp::{Endpoint, Stream};
use crate::scenario::DropMode;

/// How long a CONNACK or SUBACK may take.
const REPLY_LIMIT: Duration = Duration::from_secs(10);

/// What to throw at the broker.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Clients holding a will, all of which die.
    pub clients: usize,
    /// Clients subscribed to every will.
    pub subscribers: usize,
    pub protocol: Protocol,
    /// QoS of the wills and of the subscriptions.
    pub qos: QoS,
    /// Will payload size in bytes.
    pub payload: usize,
    /// Will Delay Interval in seconds (MQTT 5 only; 0 sends none).
    pub will_delay: u32,
    /// How the will clients' connections end.
    pub drop: DropMode,
    /// Will clients connecting at the same time.
    pub concurrency: usize,
    /// Keep Alive of every client, in seconds (0: none).
    pub keep_alive: u16,
    /// How long to wait for wills once the last one is due.
    pub timeout: Duration,
    /// Prepended to every client id and topic, so runs never see each other.
    pub prefix: String,
}

/// What a storm measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub target: String,
    /// Storms this report sums up ([`Report::combine`]); 1 for a single storm.
    pub rounds: usize,
    pub clients: usize,
    pub subscribers: usize,
    pub protocol: String,
    pub qos: u8,
    pub payload_bytes: usize,
    pub will_delay_s: u32,
    pub drop: &'static str,
    /// Time to connect every will client.
    pub connect_s: f64,
    pub connects_per_s: f64,
    /// Time the harness took to close every will client.
    pub close_s: f64,
    /// Wills owed: clients x subscribers.
    pub expected: usize,
    /// Distinct wills that reached a subscriber.
    pub delivered: usize,
    pub missing: usize,
    /// Deliveries of a will a subscriber already had.
    pub duplicates: usize,
    /// Wills that arrived before their client was closed, or before their delay was over.
    pub early: usize,
    /// From the first close to the first will, and to the last.
    pub first_will_ms: Option<f64>,
    pub last_will_ms: Option<f64>,
    /// From the last close (plus the will delay) to the last will: the broker's backlog once
    /// the harness stopped closing connections.
    pub drain_ms: Option<f64>,
    /// Deliveries per second, from the first close to the last will (without the delay).
    pub wills_per_s: Option<f64>,
    /// From each client's close (plus its will delay) to each delivery of its will.
    pub latency_ms: Option<Percentiles>,
    /// What the broker process itself spent, when the bench started it (`--spawn`).
    pub broker: Option<BrokerCost>,
}

/// The broker's own CPU time and memory over a storm, read from its process, so that they do
/// not depend on how busy the load generator was.
#[derive(Clone, Debug, Serialize)]
pub struct BrokerCost {
    /// Broker CPU per will client, from before the subscribers connected to the last will
    /// received: a whole client lifecycle (connect, CONNECT, will stored, connection lost,
    /// will published and delivered).
    pub cpu_us_per_will: f64,
    /// Broker CPU per will client while they connected (the idle connections' share).
    pub connect_cpu_us_per_client: f64,
    /// Resident memory with every will client connected and idle.
    pub idle_rss_bytes: u64,
    /// What each idle connection adds to the resident memory of the broker with no clients.
    pub idle_bytes_per_connection: f64,
    /// The most the broker's resident memory has been (since it started).
    pub peak_rss_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Report {
    /// Several storms of one plan as one report: every time and rate is the median of the
    /// rounds (robust against one noisy round), every count of lost, duplicated or early wills
    /// is the worst round's, so that a single failing round fails the whole.
    pub fn combine(rounds: &[Report]) -> Option<Report> {
        let first = rounds.first()?;
        let median = |value: &dyn Fn(&Report) -> Option<f64>| {
            let mut values: Vec<f64> = rounds.iter().filter_map(value).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied()
        };
        let worst = |value: &dyn Fn(&Report) -> usize| rounds.iter().map(value).max();
        let percentile = |pick: fn(&Percentiles) -> f64| {
            median(&|r| r.latency_ms.as_ref().map(pick)).unwrap_or(0.0)
        };
        Some(Report {
            rounds: rounds.len(),
            connect_s: median(&|r| Some(r.connect_s))?,
            connects_per_s: median(&|r| Some(r.connects_per_s))?,
            close_s: median(&|r| Some(r.close_s))?,
            delivered: rounds.iter().map(|r| r.delivered).min()?,
            missing: worst(&|r| r.missing)?,
            duplicates: worst(&|r| r.duplicates)?,
            early: worst(&|r| r.early)?,
            first_will_ms: median(&|r| r.first_will_ms),
            last_will_ms: median(&|r| r.last_will_ms),
            drain_ms: median(&|r| r.drain_ms),
            wills_per_s: median(&|r| r.wills_per_s),
            broker: rounds.iter().all(|r| r.broker.is_some()).then(|| {
                let cost = |pick: fn(&BrokerCost) -> f64| {
                    median(&|r| r.broker.as_ref().map(pick)).unwrap_or(0.0)
                };
                BrokerCost {
                    cpu_us_per_will: cost(|b| b.cpu_us_per_will),
                    connect_cpu_us_per_client: cost(|b| b.connect_cpu_us_per_client),
                    idle_rss_bytes: cost(|b| b.idle_rss_bytes as f64) as u64,
                    idle_bytes_per_connection: cost(|b| b.idle_bytes_per_connection),
                    peak_rss_bytes: rounds
                        .iter()
                        .filter_map(|r| r.broker.as_ref())
                        .map(|b| b.peak_rss_bytes)
                        .max()
                        .unwrap_or(0),
                }
            }),
            latency_ms: rounds
                .iter()
                .any(|r| r.latency_ms.is_some())
                .then(|| Percentiles {
                    p50: percentile(|p| p.p50),
                    p90: percentile(|p| p.p90),
                    p99: percentile(|p| p.p99),
                    max: percentile(|p| p.max),
                }),
            ..first.clone()
        })
    }

    /// `Err` with what the broker did wrong, if it did.
    pub fn verdict(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.missing > 0 {
            problems.push(format!(
                "{} of {} wills never arrived",
                self.missing, self.expected
            ));
        }
        // QoS 1 is at least once: a redelivery is allowed, at QoS 0 and 2 it is not.
        if self.duplicates > 0 && self.qos != 1 {
            problems.push(format!(
                "{} wills arrived more than once at QoS {}",
                self.duplicates, self.qos
            ));
        }
        if self.early > 0 {
            problems.push(format!(
                "{} wills arrived before their client was closed or their delay was over",
                self.early
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// One delivery of a will to a subscriber.
struct Delivery {
    will: usize,
    at: Instant,
}

/// Runs `plan` against `target`; `progress` counts connected will clients, then wills
/// received. With `broker`, the broker process serving `target`, the report says what the
/// broker itself spent. Errors (the broker refused a connection, closed a subscriber) are one
/// line.
pub async fn run(
    target: &Endpoint,
    plan: &Plan,
    progress: &ProgressBar,
    broker: Option<&BrokerProcess>,
) -> Result<Report, String> {
    let usage = || broker.map(BrokerProcess::usage).transpose();
    let before = usage()?;
    let (stop, stopped) = watch::channel(false);
    let mut subscribers = JoinSet::new();
    for s in 0..plan.subscribers {
        let link = subscribe(target, plan, s).await?;
        subscribers.spawn(collect(
            link,
            Subscriber {
                n: s,
                expected: plan.clients,
                keep_alive: plan.keep_alive,
            },
            stopped.clone(),
            progress.clone(),
        ));
    }

    progress.set_length(plan.clients as u64);
    progress.set_message("will clients connected");
    let started = Instant::now();
    let mut links = connect_will_clients(target, plan, progress).await?;
    let connect_s = started.elapsed().as_secs_f64();
    let idle = usage()?;

    progress.reset();
    progress.set_length((plan.clients * plan.subscribers) as u64);
    progress.set_message("wills received");
    let mut closed_at = Vec::with_capacity(links.len());
    for link in links.drain(..) {
        closed_at.push(Instant::now());
        match plan.drop {
            DropMode::Rst => link.into_stream().reset(),
            DropMode::Fin => link.close().await,
        }
    }
    let last_close = Instant::now();
    let delay = Duration::from_secs(u64::from(plan.will_delay));
    let give_up = last_close + delay + plan.timeout;

    // Wait until every subscriber has every will, or give up.
    let mut received = Vec::with_capacity(plan.subscribers);
    let waiting = async {
        while let Some(result) = subscribers.join_next().await {
            received.push(result.map_err(|e| format!("subscriber task: {e}"))??);
        }
        Ok::<(), String>(())
    };
    let outcome = tokio::time::timeout_at(give_up, waiting).await;
    let _ = stop.send(true);
    if let Ok(Err(error)) = outcome {
        return Err(error);
    }
    while let Some(result) = subscribers.join_next().await {
        received.push(result.map_err(|e| format!("subscriber task: {e}"))??);
    }
    progress.finish_and_clear();
    let after = usage()?;
    let mut report = measure(target, plan, connect_s, &closed_at, last_close, &received);
    if let (Some(broker), Some(before), Some(idle), Some(after)) = (broker, before, idle, after) {
        report.broker = Some(broker_cost(
            plan.clients,
            broker.at_start,
            before,
            idle,
            after,
        ));
    }
    Ok(report)
}

/// The broker's cost from its usage with no clients at all, before the storm, with every
/// will client connected, and after the last will.
fn broker_cost(
    clients: usize,
    at_start: Usage,
    before: Usage,
    idle: Usage,
    after: Usage,
) -> BrokerCost {
    let per_client = |cpu: Duration| cpu.as_secs_f64() * 1e6 / clients as f64;
    BrokerCost {
        cpu_us_per_will: per_client(after.cpu.saturating_sub(before.cpu)),
        connect_cpu_us_per_client: per_client(idle.cpu.saturating_sub(before.cpu)),
        idle_rss_bytes: idle.rss_bytes,
        // against the fresh process: a later round reuses memory an earlier one freed
        idle_bytes_per_connection: idle.rss_bytes.saturating_sub(at_start.rss_bytes) as f64
            / clients as f64,
        peak_rss_bytes: after.peak_rss_bytes,
    }
}

/// A subscriber on the storm's topics, its SUBACK read.
async fn subscribe(target: &Endpoint, plan: &Plan, n: usize) -> Result<Link<Stream>, String> {
    let mut connect = Connect::new(plan.protocol, format!("{}-sub-{n}", plan.prefix));
    connect.keep_alive = plan.keep_alive;
    let who = format!("subscriber {n} ({})", connect.client_id);
    let mut link = connected(target, connect, &who).await?;
    let subscribe = Subscribe {
        packet_id: 1,
        filters: vec![SubscriptionRequest::new(
            format!("{}/storm/+", plan.prefix),
            plan.qos,
        )],
        subscription_identifier: None,
        user_properties: Vec::new(),
    };
    link.send(&[Packet::Subscribe(subscribe)])
        .await
        .map_err(|e| format!("{who}, subscribe: {e}"))?;
    match reply(&mut link)
        .await
        .map_err(|e| format!("{who}, subscribe: {e}"))?
    {
        Packet::SubAck(ack) if ack.codes.first().is_some_and(|code| !code.is_failure()) => Ok(link),
        other => Err(format!(
            "{who}, subscribe: SUBSCRIBE answered with {other:?}"
        )),
    }
}

/// Opens a connection with `connect` and reads a successful CONNACK; errors name `who` and
/// the phase.
async fn connected(target: &Endpoint, connect: Connect, who: &str) -> Result<Link<Stream>, String> {
    let mut link = tokio::time::timeout(REPLY_LIMIT, target.connect(connect))
        .await
        .map_err(|_| format!("{who}, connect: connection timed out ({FD_HINT})"))?
        .map_err(|e| format!("{who}, connect: cannot connect: {}", io_error::describe(&e)))?;
    match reply(&mut link)
        .await
        .map_err(|e| format!("{who}, connect: {e}"))?
    {
        Packet::ConnAck(ack) if ack.code.is_success() => Ok(link),
        Packet::ConnAck(ack) => Err(format!("{who}, connect: refused with CONNACK {}", ack.code)),
        other => Err(format!(
            "{who}, connect: CONNECT answered with {}",
            other.name()
        )),
    }
}

/// Why a broker stops answering in the middle of a storm, most often, and what to do.
const FD_HINT: &str = "the broker may have run out of file descriptors: see `Max open files` in \
                       /proc/BROKER_PID/limits, and start it after `ulimit -n 65536`";

/// The next packet, which must come within [`REPLY_LIMIT`].
async fn reply(link: &mut Link<Stream>) -> Result<Packet, String> {
    match link.recv_within(REPLY_LIMIT).await {
        Ok(Some(packet)) => Ok(packet),
        Ok(None) => Err(format!("no reply within {REPLY_LIMIT:?}; {FD_HINT}")),
        Err(Ended::Closed) => Err("the broker closed the connection".into()),
        Err(Ended::Failed(reason)) => Err(format!("the connection failed: {reason}")),
        Err(Ended::Undecodable(e)) => Err(format!("undecodable reply: {e}")),
    }
}

/// Connects every will client, `plan.concurrency` at a time; the links come back in will
/// order. The first refusal is the error.
async fn connect_will_clients(
    target: &Endpoint,
    plan: &Plan,
    progress: &ProgressBar,
) -> Result<Vec<Link<Stream>>, String> {
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let payload = Bytes::from(vec![b'w'; plan.payload]);
    let mut connecting = JoinSet::new();
    let mut links: Vec<Option<Link<Stream>>> = Vec::new();
    links.resize_with(plan.clients, || None);
    let mut settle =
        |done: Result<(usize, Result<Link<Stream>, String>), tokio::task::JoinError>| {
            let (n, link) = done.map_err(|e| format!("connect task: {e}"))?;
            links[n] = Some(link?);
            progress.inc(1);
            Ok::<(), String>(())
        };
    for n in 0..plan.clients {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        // finished connections are taken as they come, so a refusal stops the run early
        while let Some(done) = connecting.try_join_next() {
            settle(done)?;
        }
        let mut connect = Connect::new(plan.protocol, format!("{}-will-{n}", plan.prefix));
        connect.keep_alive = plan.keep_alive;
        connect.will = Some(LastWill {
            topic: format!("{}/storm/{n}", plan.prefix),
            payload: payload.clone(),
            qos: plan.qos,
            retain: false,
            delay_interval: (plan.will_delay > 0).then_some(plan.will_delay),
            properties: MessageProperties::default(),
        });
        if plan.will_delay > 0 {
            // the session must outlive the delay, or the will goes when the session ends
            connect.session_expiry_interval = Some(plan.will_delay);
        }
        let target = target.clone();
        connecting.spawn(async move {
            let who = format!("will client {n} ({})", connect.client_id);
            let link = connected(&target, connect, &who).await;
            drop(permit);
            (n, link)
        });
    }
    while let Some(done) = connecting.join_next().await {
        settle(done)?;
    }
    Ok(links.into_iter().flatten().collect())
}

/// One subscriber of a storm.
struct Subscriber {
    n: usize,
    /// Distinct wills it waits for.
    expected: usize,
    keep_alive: u16,
}

/// Reads wills on one subscriber until it has `expected` distinct ones or `stop` is raised,
/// sending PINGREQ whenever it has been idle for its Keep Alive [MQTT-3.1.2-23].
async fn collect(
    mut link: Link<Stream>,
    subscriber: Subscriber,
    mut stop: watch::Receiver<bool>,
    progress: ProgressBar,
) -> Result<Vec<Delivery>, String> {
    let Subscriber {
        n,
        expected,
        keep_alive,
    } = subscriber;
    let mut deliveries = Vec::with_capacity(expected);
    let mut seen = vec![false; expected];
    let mut distinct = 0;
    let idle = Duration::from_secs(u64::from(keep_alive.max(1)));
    let mut ping = Instant::now() + idle;
    while distinct < expected {
        let packet = tokio::select! {
            biased;
            _ = stop.changed() => break,
            packet = link.recv() => packet,
            _ = tokio::time::sleep_until(ping), if keep_alive > 0 => {
                link.send(&[Packet::PingReq])
                    .await
                    .map_err(|e| format!("subscriber {n}, receive: cannot send PINGREQ: {e}"))?;
                ping = Instant::now() + idle;
                continue;
            }
        };
        let packet = match packet {
            Ok(packet) => packet,
            Err(Ended::Closed) => {
                return Err(format!(
                    "subscriber {n}, receive: the broker closed the connection"
                ));
            }
            Err(Ended::Failed(reason)) => {
                return Err(format!(
                    "subscriber {n}, receive: the connection failed: {reason}"
                ));
            }
            Err(Ended::Undecodable(e)) => {
                return Err(format!("subscriber {n}, receive: undecodable packet: {e}"));
            }
        };
        let at = Instant::now();
        if let Packet::Publish(publish) = &packet
            && let Some(will) = publish
                .topic
                .rsplit('/')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n < expected)
        {
            deliveries.push(Delivery { will, at });
            if !std::mem::replace(&mut seen[will], true) {
                distinct += 1;
                progress.inc(1);
            }
        }
        let answer = packet.receiver_ack();
        if let Some(answer) = answer {
            link.send(&[answer])
                .await
                .map_err(|e| format!("subscriber {n}, receive: cannot acknowledge: {e}"))?;
        }
    }
    link.goodbye(&[]).await;
    Ok(deliveries)
}

/// Turns the timestamps into a report.
fn measure(
    target: &Endpoint,
    plan: &Plan,
    connect_s: f64,
    closed_at: &[Instant],
    last_close: Instant,
    received: &[Vec<Delivery>],
) -> Report {
    let delay = Duration::from_secs(u64::from(plan.will_delay));
    let first_close = closed_at.first().copied().unwrap_or(last_close);
    let mut latencies = Vec::new();
    let (mut duplicates, mut early) = (0, 0);
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for deliveries in received {
        let mut seen = vec![false; plan.clients];
        for Delivery { will, at } in deliveries {
            if std::mem::replace(&mut seen[*will], true) {
                duplicates += 1;
                continue;
            }
            let due = closed_at[*will] + delay;
            // a will may not beat its own close; a delayed one gets the second-tick slack real
            // brokers need, as scenario windows do
            if *at < closed_at[*will] || (plan.will_delay > 0 && *at + Duration::from_secs(1) < due)
            {
                early += 1;
            }
            latencies.push(at.saturating_duration_since(due));
            first = Some(first.map_or(*at, |f| f.min(*at)));
            last = Some(last.map_or(*at, |l| l.max(*at)));
        }
    }
    let expected = plan.clients * plan.subscribers;
    let delivered = latencies.len();
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let percentile = |p: f64| ms(latencies[((latencies.len() - 1) as f64 * p).round() as usize]);
    let span = |t: Option<Instant>| t.map(|t| ms(t.saturating_duration_since(first_close)));
    let dispatch = last.map(|l| l.saturating_duration_since(first_close + delay));
    Report {
        target: format!("{target:?}"),
        rounds: 1,
        clients: plan.clients,
        subscribers: plan.subscribers,
        protocol: plan.protocol.to_string(),
        qos: plan.qos.as_u8(),
        payload_bytes: plan.payload,
        will_delay_s: plan.will_delay,
        drop: plan.drop.as_str(),
        connect_s,
        connects_per_s: plan.clients as f64 / connect_s.max(f64::EPSILON),
        close_s: last_close.duration_since(first_close).as_secs_f64(),
        expected,
        delivered,
        missing: expected - delivered,
        duplicates,
        early,
        first_will_ms: span(first),
        last_will_ms: span(last),
        drain_ms: last.map(|l| ms(l.saturating_duration_since(last_close + delay))),
        wills_per_s: dispatch
            .filter(|d| !d.is_zero())
            .map(|d| delivered as f64 / d.as_secs_f64()),
        latency_ms: (!latencies.is_empty()).then(|| Percentiles {
            p50: percentile(0.50),
            p90: percentile(0.90),
            p99: percentile(0.99),
            max: percentile(1.0),
        }),
        broker: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(clients: usize, subscribers: usize, qos: QoS, will_delay: u32) -> Plan {
        Plan {
            clients,
            subscribers,
            protocol: Protocol::V5,
            qos,
            payload: 8,
            will_delay,
            drop: DropMode::Rst,
            concurrency: 1,
            keep_alive: 60,
            timeout: Duration::from_secs(1),
            prefix: "t".into(),
        }
    }

    fn target() -> Endpoint {
        Endpoint::at("127.0.0.1", 1883)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Clients closed 1 ms apart from `t0`; `deliveries` as (will, ms after t0) per subscriber.
    fn measured(plan: &Plan, deliveries: &[&[(usize, u64)]]) -> Report {
        let t0 = Instant::now();
        let closed_at: Vec<Instant> = (0..plan.clients as u64).map(|n| t0 + ms(n)).collect();
        let last_close = *closed_at.last().unwrap();
        let received: Vec<Vec<Delivery>> = deliveries
            .iter()
            .map(|list| {
                list.iter()
                    .map(|&(will, at)| Delivery {
                        will,
                        at: t0 + ms(at),
                    })
                    .collect()
            })
            .collect();
        measure(&target(), plan, 1.0, &closed_at, last_close, &received)
    }

    #[test]
    fn every_will_once_passes_and_is_timed_from_its_own_close() {
        let plan = plan(4, 2, QoS::AtMostOnce, 0);
        let report = measured(
            &plan,
            &[
                &[(0, 10), (1, 11), (2, 12), (3, 13)],
                &[(3, 14), (2, 14), (1, 14), (0, 14)],
            ],
        );
        assert_eq!(report.verdict(), Ok(()));
        assert_eq!((report.expected, report.delivered), (8, 8));
        assert_eq!(report.first_will_ms, Some(10.0));
        assert_eq!(report.last_will_ms, Some(14.0));
        assert_eq!(report.drain_ms, Some(11.0));
        let latency = report.latency_ms.unwrap();
        // latencies: 10,10,10,10 (first subscriber) and 14,13,12,11 (second)
        assert_eq!((latency.p50, latency.max), (11.0, 14.0));
        assert_eq!(report.wills_per_s, Some(8.0 / 0.014));
    }

    #[test]
    fn missing_duplicated_and_early_wills_fail() {
        let plan = plan(3, 1, QoS::ExactlyOnce, 0);
        // will 0 twice, will 1 before its client was closed (at 1 ms), will 2 never
        let report = measured(&plan, &[&[(0, 5), (0, 6), (1, 0)]]);
        assert_eq!((report.missing, report.duplicates, report.early), (1, 1, 1));
        let problem = report.verdict().unwrap_err();
        assert!(problem.contains("1 of 3 wills never arrived"), "{problem}");
        assert!(problem.contains("more than once at QoS 2"), "{problem}");
        assert!(
            problem.contains("before their client was closed"),
            "{problem}"
        );
    }

    #[test]
    fn rounds_combine_to_medians_and_the_worst_counts() {
        let plan = plan(2, 1, QoS::AtMostOnce, 0);
        let rounds = [
            measured(&plan, &[&[(0, 10), (1, 11)]]),
            measured(&plan, &[&[(0, 30)]]),
            measured(&plan, &[&[(0, 20), (1, 21)]]),
        ];
        let combined = Report::combine(&rounds).unwrap();
        assert_eq!(combined.rounds, 3);
        assert_eq!(combined.last_will_ms, Some(21.0));
        assert_eq!(combined.first_will_ms, Some(20.0));
        assert_eq!((combined.delivered, combined.missing), (1, 1));
        assert!(combined.verdict().is_err(), "one round lost a will");
        assert!(Report::combine(&[]).is_none());
    }

    #[test]
    fn qos1_may_deliver_twice() {
        let plan = plan(1, 1, QoS::AtLeastOnce, 0);
        let report = measured(&plan, &[&[(0, 5), (0, 6)]]);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.verdict(), Ok(()));
    }

    #[test]
    fn a_delayed_will_is_early_before_its_delay_less_a_second() {
        let plan = plan(2, 1, QoS::AtMostOnce, 5);
        // will 0 closed at 0 ms, due at 5000 ms: 3500 ms is too early; will 1 (due 5001) at
        // 4200 ms is within the one-second slack and counts as on time
        let report = measured(&plan, &[&[(0, 3_500), (1, 4_200)]]);
        assert_eq!(report.early, 1);
        assert!(report.verdict().is_err());
        let on_time = measured(&plan, &[&[(0, 5_010), (1, 5_020)]]);
        assert_eq!(on_time.verdict(), Ok(()));
        assert_eq!(on_time.latency_ms.unwrap().max, 19.0);
    }
}
