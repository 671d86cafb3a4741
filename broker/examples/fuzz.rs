//! A long fuzz run against a broker over TCP: generated and mutated MQTT frames, millions of
//! them, while a watchdog client checks that the broker keeps answering.
//!
//! ```sh
//! cargo build --release -p lastwill --bin lastwill
//! target/release/lastwill broker --listen 127.0.0.1:1883 &
//! cargo run --release -p lastwill-broker --example fuzz -- --target 127.0.0.1:1883 --frames 10000000
//! ```
//!
//! Without `--target` the reference broker runs inside this process on a free loopback port.
//! `--workers` fuzzing clients (default 4) each send a valid CONNECT (MQTT 3.1.1 or 5, drawn
//! at random), then batches of frames: valid packets of every kind a client may send
//! (PUBLISH at each QoS, retained or not, SUBSCRIBE, UNSUBSCRIBE, the four acks, PINGREQ)
//! with random ids, topics and payloads, half the batches ending with a mutated frame (bytes
//! flipped or overwritten, the frame cut short, its Remaining Length changed, random bytes
//! appended, or random bytes instead), after which the client reconnects. Only frames the
//! broker is known to have read are counted (see [`fuzz`]); everything it sends back must
//! decode.
//!
//! The watchdog is another client (keep-alive 10 s) that sends a PINGREQ every 500 ms; the run
//! fails (exit 1) if a PINGRESP takes longer than the keep-alive, if the watchdog's
//! connection ends, or if the broker stops accepting connections. At the end it prints the
//! frames written, the connections opened, the duration, and the slowest PINGRESP.
//! `--seed N` makes the frames reproducible (default 1).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use lastwill_broker::codec::{
    self, Ack, Connect, Packet, Protocol, Publish, QoS, Subscribe, SubscriptionRequest, Unsubscribe,
};
use lastwill_broker::config::Config;
use proptest::prelude::{Rng, RngCore};
use proptest::test_runner::{RngAlgorithm, TestRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The watchdog's keep-alive: a PINGRESP must come within it.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_millis(500);

struct Args {
    target: Option<SocketAddr>,
    frames: u64,
    workers: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        target: None,
        frames: 1_000_000,
        workers: 4,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--target" => args.target = Some(value.parse().map_err(|e| bad(&e))?),
            "--frames" => args.frames = value.parse().map_err(|e| bad(&e))?,
            "--workers" => args.workers = value.parse().map_err(|e| bad(&e))?,
            "--seed" => args.seed = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("fuzz: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let target = match args.target {
        Some(target) => target,
        None => {
            let config = Config {
                listen: "127.0.0.1:0".parse().expect("an address"),
                ..Config::default()
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(lastwill_broker::driver::serve_tcp(
                config,
                |addr| {
                    let _ = tx.send(addr);
                },
                std::future::pending::<()>(),
            ));
            rx.await.expect("the broker binds")
        }
    };
    let written = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let watchdog = tokio::spawn(watchdog(target, Arc::clone(&failed)));
    let mut workers = Vec::new();
    for worker in 0..args.workers {
        let share = args.frames / args.workers as u64
            + u64::from((worker as u64) < args.frames % args.workers as u64);
        let mut seed = [0u8; 16];
        seed[..8].copy_from_slice(&args.seed.to_le_bytes());
        seed[8..].copy_from_slice(&(worker as u64 + 1).to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::XorShift, &seed);
        workers.push(tokio::spawn(fuzz(
            target,
            worker,
            share,
            rng,
            Arc::clone(&written),
            Arc::clone(&connections),
            Arc::clone(&failed),
        )));
    }
    let mut progress = tokio::time::interval(Duration::from_secs(10));
    progress.tick().await;
    let all = futures_all(workers);
    tokio::pin!(all);
    loop {
        tokio::select! {
            biased;
            () = &mut all => break,
            _ = progress.tick() => eprintln!(
                "fuzz: {} frames, {} connections, {:.0} s",
                written.load(Ordering::Relaxed),
                connections.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64(),
            ),
        }
    }
    let elapsed = started.elapsed();
    // one last round trip, from a fresh client, after the last frame
    let verdict = {
        let watchdog_alive = !watchdog.is_finished();
        watchdog.abort();
        let last = ping_once(target).await;
        match (watchdog_alive, last) {
            (true, Ok(_)) => Ok(()),
            (false, _) => Err("the watchdog's connection ended".to_string()),
            (_, Err(e)) => Err(format!("a fresh client got no PINGRESP: {e}")),
        }
    };
    let frames = written.load(Ordering::Relaxed);
    println!(
        "fuzz: {frames} frames written over {} connections in {:.1} s ({:.0} frames/s), seed {}",
        connections.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        frames as f64 / elapsed.as_secs_f64(),
        args.seed,
    );
    println!(
        "fuzz: slowest PINGRESP to the watchdog: {} ms (keep-alive {} s)",
        SLOWEST_PING_MS.load(Ordering::Relaxed),
        KEEP_ALIVE.as_secs()
    );
    match verdict {
        Ok(()) if !failed.load(Ordering::Relaxed) => {
            println!("fuzz: the broker stayed up and answered throughout");
            ExitCode::SUCCESS
        }
        Ok(()) => {
            println!("fuzz: FAILED (see above)");
            ExitCode::FAILURE
        }
        Err(message) => {
            println!("fuzz: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn futures_all(handles: Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles {
        let _ = handle.await;
    }
}

static SLOWEST_PING_MS: AtomicU64 = AtomicU64::new(0);

/// Connects, CONNECTs and reads the CONNACK.
async fn connect(
    target: SocketAddr,
    protocol: Protocol,
    client_id: &str,
) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let mut connect = Connect::new(protocol, client_id);
    connect.keep_alive = KEEP_ALIVE.as_secs() as u16;
    stream
        .write_all(&encode(&Packet::Connect(connect), protocol))
        .await?;
    let mut connack = [0u8; 64];
    let n = stream.read(&mut connack).await?;
    if n < 4 || connack[0] != 0x20 || connack[3] != 0 {
        return Err(std::io::Error::other(format!(
            "no CONNACK 0x00: {:02x?}",
            &connack[..n]
        )));
    }
    Ok(stream)
}

/// Sends a PINGREQ and waits, within the keep-alive, for its PINGRESP; returns how long it took.
async fn ping(stream: &mut TcpStream) -> Result<Duration, String> {
    let sent = Instant::now();
    stream
        .write_all(&[0xC0, 0x00])
        .await
        .map_err(|e| e.to_string())?;
    let mut pingresp = [0u8; 2];
    match tokio::time::timeout(KEEP_ALIVE, stream.read_exact(&mut pingresp)).await {
        Ok(Ok(_)) if pingresp == [0xD0, 0x00] => Ok(sent.elapsed()),
        Ok(Ok(_)) => Err(format!("not a PINGRESP: {pingresp:02x?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no PINGRESP within {} s", KEEP_ALIVE.as_secs())),
    }
}

async fn ping_once(target: SocketAddr) -> Result<Duration, String> {
    let mut stream =
        tokio::time::timeout(KEEP_ALIVE, connect(target, Protocol::V5, "fuzz-last-ping"))
            .await
            .map_err(|_| "no CONNACK within the keep-alive".to_string())?
            .map_err(|e| e.to_string())?;
    ping(&mut stream).await
}

/// Pings every [`PING_EVERY`] and records the slowest answer; flags `failed` and returns on
/// the first late or missing one.
async fn watchdog(target: SocketAddr, failed: Arc<AtomicBool>) {
    let mut stream = match connect(target, Protocol::V5, "fuzz-watchdog").await {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("fuzz: the watchdog could not connect: {e}");
            failed.store(true, Ordering::Relaxed);
            return;
        }
    };
    loop {
        tokio::time::sleep(PING_EVERY).await;
        match ping(&mut stream).await {
            Ok(took) => {
                SLOWEST_PING_MS.fetch_max(took.as_millis() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("fuzz: watchdog: {e}");
                failed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// One fuzzing connection after another, until `frames` frames are written and read.
///
/// A connection sends batches of 1 to 64 valid frames, each followed by a PINGREQ whose
/// PINGRESP proves the broker read the batch. Half the batches end with a mutated frame
/// instead: then the client sends a PINGREQ, shuts its write side and reads until the broker
/// closes, so the broker has read every frame of the batch before its end of stream (or
/// stopped at the frame it could not decode), and the next batch goes to a new connection.
/// Only frames of batches settled this way are counted.
async fn fuzz(
    target: SocketAddr,
    worker: usize,
    frames: u64,
    mut rng: TestRng,
    written: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
) {
    let mut left = frames;
    let mut batch = BytesMut::new();
    'connections: while left > 0 && !failed.load(Ordering::Relaxed) {
        let protocol = if rng.random_bool(0.5) {
            Protocol::V5
        } else {
            Protocol::V311
        };
        let stream = match tokio::time::timeout(
            KEEP_ALIVE,
            connect(target, protocol, &format!("fuzz-{worker}")),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            // a refused CONNECT (takeover of the same id, say) is retried; a broker that
            // does not answer at all is a failure
            Ok(Err(_)) => continue,
            Err(_) => {
                eprintln!(
                    "fuzz: worker {worker}: no CONNACK within {} s",
                    KEEP_ALIVE.as_secs()
                );
                failed.store(true, Ordering::Relaxed);
                return;
            }
        };
        connections.fetch_add(1, Ordering::Relaxed);
        let (reader, mut writer) = stream.into_split();
        let (pongs_tx, mut pongs) = tokio::sync::mpsc::unbounded_channel();
        let reading = tokio::spawn(read_answers(reader, protocol, pongs_tx));
        while left > 0 {
            batch.clear();
            let count = rng.random_range(1..=64u64).min(left);
            let last_mutated = rng.random_bool(0.5);
            for n in 0..count {
                frame(
                    &mut rng,
                    protocol,
                    last_mutated && n + 1 == count,
                    &mut batch,
                );
            }
            batch.put_slice(&[0xC0, 0x00]); // PINGREQ
            if writer.write_all(&batch).await.is_err() {
                continue 'connections;
            }
            if last_mutated {
                let _ = writer.shutdown().await;
                match tokio::time::timeout(KEEP_ALIVE, reading).await {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(message))) => {
                        eprintln!("fuzz: worker {worker}: {message}");
                        failed.store(true, Ordering::Relaxed);
                        return;
                    }
                    Ok(Err(_)) | Err(_) => {
                        eprintln!(
                            "fuzz: worker {worker}: the broker did not close a connection within {} s of its end of stream",
                            KEEP_ALIVE.as_secs()
                        );
                        failed.store(true, Ordering::Relaxed);
                        return;
                    }
                }
                left -= count;
                written.fetch_add(count, Ordering::Relaxed);
                continue 'connections;
            }
            match tokio::time::timeout(KEEP_ALIVE, pongs.recv()).await {
                Ok(Some(())) => {
                    left -= count;
                    written.fetch_add(count, Ordering::Relaxed);
                }
                // closed by the broker: a valid frame can still break a rule (a second
                // SUBSCRIBE with the packet id in use, say); the batch is not counted
                Ok(None) => continue 'connections,
                Err(_) => {
                    eprintln!(
                        "fuzz: worker {worker}: no PINGRESP within {} s",
                        KEEP_ALIVE.as_secs()
                    );
                    failed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// Reads what the broker sends until it closes: every frame must decode, and each PINGRESP
/// is passed on.
async fn read_answers(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    protocol: Protocol,
    pongs: tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
        loop {
            match codec::decode(&mut buf, Some(protocol), u32::MAX) {
                Ok(None) => break,
                Ok(Some(Packet::PingResp)) => {
                    let _ = pongs.send(());
                }
                Ok(Some(_)) => {}
                Err(error) => return Err(format!("the broker sent an undecodable frame: {error}")),
            }
        }
    }
}

fn encode(packet: &Packet, protocol: Protocol) -> BytesMut {
    let mut buf = BytesMut::new();
    codec::encode(packet, protocol, &mut buf).expect("a valid packet encodes");
    buf
}

/// Appends one frame: a valid packet, or a mutated one.
fn frame(rng: &mut TestRng, protocol: Protocol, mutated: bool, out: &mut BytesMut) {
    let mut frame = encode(&valid_packet(rng), protocol);
    if mutated {
        mutate(rng, &mut frame);
    }
    out.put_slice(&frame);
}

fn valid_packet(rng: &mut TestRng) -> Packet {
    let topic = format!("fuzz/{}", rng.random_range(0..16u8));
    let id = rng.random_range(1..=u16::MAX);
    match rng.random_range(0..10u8) {
        0..=3 => {
            let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][rng.random_range(0..3)];
            let mut payload = vec![0u8; rng.random_range(0..64)];
            rng.fill_bytes(&mut payload);
            let mut publish = Publish::new(topic, payload, qos);
            publish.retain = rng.random_range(0..8u8) == 0;
            publish.packet_id = (qos != QoS::AtMostOnce).then_some(id);
            Packet::Publish(publish)
        }
        4 => Packet::Subscribe(Subscribe {
            packet_id: id,
            filters: vec![SubscriptionRequest::new(
                ["fuzz/#", "fuzz/+", topic.as_str()][rng.random_range(0..3)],
                QoS::AtLeastOnce,
            )],
            subscription_identifier: None,
            user_properties: Vec::new(),
        }),
        5 => Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            filters: vec![topic],
            user_properties: Vec::new(),
        }),
        6 => Packet::PubAck(Ack::success(id)),
        7 => Packet::PubRec(Ack::success(id)),
        8 => [
            Packet::PubRel(Ack::success(id)),
            Packet::PubComp(Ack::success(id)),
        ][rng.random_range(0..2)]
        .clone(),
        _ => Packet::PingReq,
    }
}

/// Damages `frame` in one of several ways, or replaces it with random bytes.
fn mutate(rng: &mut TestRng, frame: &mut BytesMut) {
    let len = frame.len();
    match rng.random_range(0..6u8) {
        // flip a few bits
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..len);
                frame[at] ^= 1 << rng.random_range(0..8);
            }
        }
        // overwrite a byte
        1 => {
            let at = rng.random_range(0..len);
            frame[at] = rng.random();
        }
        // cut short
        2 => frame.truncate(rng.random_range(1..len.max(2))),
        // another Remaining Length
        3 if len > 1 => frame[1] = rng.random(),
        // random bytes appended
        4 => {
            let mut tail = vec![0u8; rng.random_range(1..32)];
            rng.fill_bytes(&mut tail);
            frame.put_slice(&tail);
        }
        // random bytes instead
        _ => {
            frame.clear();
            let mut bytes = vec![0u8; rng.random_range(1..64)];
            rng.fill_bytes(&mut bytes);
            frame.put_slice(&bytes);
        }
    }
}
