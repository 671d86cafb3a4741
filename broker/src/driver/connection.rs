//! One task per client connection: bytes in, packets out to the core; bytes from the core out.
//!
//! The task owns the stream. It does two things, in one `select!` loop:
//!
//! - **Reading.** Bytes are appended to a buffer and cut into packets with
//!   [`codec::decode`]. Until a CONNECT has been decoded the codec is told no protocol
//!   (`None`), so only a CONNECT is accepted; afterwards the CONNECT's protocol decides how
//!   every later packet is parsed. Each packet goes to the core task as an [`Event`]. A frame
//!   that cannot be decoded is reported once, and then the task stops reading: the core decides
//!   how to close (CONNACK or DISCONNECT with a reason code, or a bare close). End of stream or
//!   a read error is reported once as [`Event::Lost`].
//!   The read buffer grows with the bytes that actually arrive, not with the length a frame
//!   announces, and is released whenever no frame is half-read (an idle connection waits for
//!   readability with no buffer at all). A frame started and
//!   not finished within `frame_timeout` ends the connection as lost: a client cannot hold a
//!   buffer forever by never sending a packet's last byte.
//! - **Writing.** The core task sends [`Outgoing`] batches through the connection's
//!   [`super::outbox`], already encoded, at most a window's worth at a time. Batches that
//!   queued up while the task was writing are gathered into one `write_all`. A write that
//!   waits longer than `write_timeout` for the peer to read ends the connection as lost.
//!   A batch marked `close` is written, then the write side is shut down (a FIN) and the
//!   stream dropped.
//!
//! Writes go before reads (`biased;`): a connection that is being closed should not keep
//! feeding the core. Nothing received from the network can make this task panic; should it
//! end in any unexpected way anyway (a panic in the codec, an abort), a drop guard still tells
//! the core that the connection is gone, so its will is not forgotten.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tracing::debug;

use crate::codec::{self, DecodeError, Packet, Protocol};
use crate::core::ConnectionId;

use super::metrics::Metrics;
use super::outbox::{Outgoing, WriteQueueReceiver};

/// What one read asks for at first; it doubles while reads fill it, up to [`MAX_READ`].
const MIN_READ: usize = 1024;
const MAX_READ: usize = 64 * 1024;

/// What a connection task tells the core task.
// Nearly every event is a packet: boxing it would add an allocation to the common case and
// save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Event {
    /// A whole packet was decoded.
    Packet(ConnectionId, Packet),
    /// The bytes could not be decoded; the task has stopped reading.
    DecodeFailed(ConnectionId, DecodeError),
    /// End of stream, a read or write error, a frame or write time limit, or the task ended
    /// unexpectedly.
    Lost(ConnectionId),
}

/// The limits one connection task enforces (from [`crate::config::Config`]).
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub max_packet_size: u32,
    pub frame_timeout: Duration,
    pub write_timeout: Duration,
}

/// A read buffer whose capacity is counted in [`Metrics`].
struct ReadBuffer {
    buf: BytesMut,
    /// How much the next read asks for.
    chunk: usize,
    counted: usize,
    metrics: Arc<Metrics>,
}

impl ReadBuffer {
    fn new(metrics: Arc<Metrics>) -> ReadBuffer {
        ReadBuffer {
            buf: BytesMut::new(),
            chunk: MIN_READ,
            counted: 0,
            metrics,
        }
    }

    /// Makes room for the next read; returns how much there is.
    fn prepare(&mut self) -> usize {
        if self.buf.capacity() - self.buf.len() < self.chunk / 2 {
            self.buf.reserve(self.chunk);
        }
        self.count();
        self.buf.capacity() - self.buf.len()
    }

    /// After a read of `n` bytes and decoding what it completed.
    fn after_read(&mut self, n: usize, spare_before: usize) {
        if n == spare_before {
            // the read filled what it asked for: more is coming, ask for more next time
            self.chunk = (self.chunk * 2).min(MAX_READ);
        }
        if self.buf.is_empty() {
            // Nothing half-read: hold no buffer while waiting for the next bytes (an idle
            // connection would otherwise keep its last read's capacity, 1 KiB or more).
            self.buf = BytesMut::new();
        }
        self.count();
    }

    fn release(&mut self) {
        self.buf = BytesMut::new();
        self.count();
    }

    fn count(&mut self) {
        let capacity = self.buf.capacity();
        if capacity != self.counted {
            self.metrics.read_buffer_resized(self.counted, capacity);
            self.counted = capacity;
        }
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        self.metrics.read_buffer_resized(self.counted, 0);
    }
}

/// Reports [`Event::Lost`] when dropped, unless the core already knows the connection is
/// over (it was reported lost, or the core itself closed it).
struct LostGuard {
    id: ConnectionId,
    events: mpsc::Sender<Event>,
    settled: bool,
}

impl LostGuard {
    /// Reports the loss now (once); later calls and the drop do nothing.
    async fn report(&mut self) {
        if !self.settled {
            self.settled = true;
            // An error means the core task is gone (shutting down): nobody to tell.
            if let Ok(permit) = self.events.reserve().await {
                permit.send(Event::Lost(self.id));
            }
        }
    }
}

impl Drop for LostGuard {
    fn drop(&mut self) {
        if !self.settled {
            let _ = self.events.try_send(Event::Lost(self.id));
        }
    }
}

/// Waits until a stream has bytes to read (or an error or end of stream), without a buffer.
pub(crate) type PollReadReady<S> = fn(&S, &mut Context<'_>) -> Poll<io::Result<()>>;

/// Runs one connection until the core closes it or the core task goes away.
pub(crate) async fn run<S>(
    id: ConnectionId,
    mut stream: S,
    read_ready: PollReadReady<S>,
    limits: Limits,
    metrics: Arc<Metrics>,
    events: mpsc::Sender<Event>,
    mut outgoing: WriteQueueReceiver,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut guard = LostGuard {
        id,
        events: events.clone(),
        settled: false,
    };
    let mut read = ReadBuffer::new(Arc::clone(&metrics));
    let mut protocol: Option<Protocol> = None;
    let mut reading = true;
    let mut writable = true;
    // when the frame at the front of the read buffer must be complete; boxed, because most
    // connections never have one and a timer inline would grow every task's future
    let mut frame_deadline: Option<Pin<Box<Sleep>>> = None;
    loop {
        tokio::select! {
            biased;
            message = outgoing.recv() => {
                let Some(Outgoing { bytes, close }) = message else {
                    // The core task dropped us: it is shutting down or gave up on this peer.
                    guard.settled = true;
                    return;
                };
                if writable && !bytes.is_empty() {
                    let written =
                        tokio::time::timeout(limits.write_timeout, stream.write_all(&bytes)).await;
                    if !matches!(written, Ok(Ok(()))) {
                        debug!(connection = id, ?written, "write failed");
                        writable = false;
                        reading = false;
                        guard.report().await;
                    }
                }
                outgoing.written(bytes.len());
                if close {
                    let reported_lost = guard.settled;
                    guard.settled = true;
                    if reported_lost {
                        // The peer is gone (or given up on): dropping the stream closes it.
                        // A shutdown first would be one more syscall, on a socket that was
                        // usually reset, in every abnormal close.
                        debug!(connection = id, "connection released");
                    } else {
                        if writable {
                            let _ =
                                tokio::time::timeout(limits.write_timeout, stream.shutdown()).await;
                            linger(&mut stream).await;
                        }
                        debug!(connection = id, "connection closed by the broker");
                    }
                    return;
                }
            }
            result = read_some(&mut stream, read_ready, &mut read), if reading => {
                match result {
                    Ok((0, _)) | Err(_) => {
                        match result {
                            Ok(_) => debug!(connection = id, "connection closed by the peer"),
                            Err(error) => debug!(connection = id, %error, "connection failed"),
                        }
                        reading = false;
                        read.release();
                        guard.report().await;
                    }
                    Ok((n, spare)) => {
                        let max = limits.max_packet_size;
                        let decoded = decode_all(id, &mut read.buf, &mut protocol, max, &events).await;
                        read.after_read(n, spare);
                        // the clock runs from the first byte of the frame now at the front
                        frame_deadline = match (decoded, frame_deadline.take()) {
                            (None, _) => {
                                reading = false;
                                None
                            }
                            _ if read.buf.is_empty() => None,
                            (Some(0), Some(deadline)) => Some(deadline),
                            (Some(_), _) => Some(Box::pin(tokio::time::sleep(limits.frame_timeout))),
                        };
                    }
                }
            }
            () = expired(&mut frame_deadline), if reading => {
                debug!(connection = id, "a packet was not finished in time");
                metrics.unfinished_frame();
                reading = false;
                frame_deadline = None;
                read.release();
                guard.report().await;
            }
        }
    }
}

/// Completes when `deadline` passes; never when there is none.
async fn expired(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// How long, and for how many bytes, a closing connection is still read from.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// After the last bytes and a FIN: reads and discards what the peer still sends, until it
/// closes too, for a bounded time and amount. Closing a socket with unread bytes makes the
/// kernel send RST, and a RST can make the peer lose what was written just before it: the
/// CONNACK 0x95 for an oversized CONNECT ([MQTT-3.1.4-1]), a DISCONNECT with its reason.
async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    // on the heap: an array here would make every connection task's future 4 KiB larger
    let mut discard = vec![0u8; 4096];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while left > 0 {
            match stream.read(&mut discard).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Reads what has arrived into `read`; returns the count and the room the read had. With no
/// frame half-read, it first waits for the stream to be readable with no buffer allocated,
/// so that an idle connection holds none (cancel-safe: nothing is read until it returns).
async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    read_ready: PollReadReady<S>,
    read: &mut ReadBuffer,
) -> io::Result<(usize, usize)> {
    if read.buf.is_empty() {
        // moved in as `&mut S`, so the future is Send without asking S to be Sync
        let waiting = &mut *stream;
        std::future::poll_fn(move |cx| read_ready(waiting, cx)).await?;
    }
    let spare = read.prepare();
    let n = stream.read_buf(&mut read.buf).await?;
    Ok((n, spare))
}

/// Forwards every whole packet in `buf` to the core and says how many there were. `None`
/// when reading must stop (the bytes were undecodable, or the core task is gone).
///
/// A slot in the event channel is reserved before each decode, so no [`Event`] (a CONNECT is
/// several hundred bytes) is ever held across an `await`: that keeps it out of every
/// connection task's future, which is the bulk of what an idle connection costs.
async fn decode_all(
    id: ConnectionId,
    buf: &mut BytesMut,
    protocol: &mut Option<Protocol>,
    max_packet_size: u32,
    events: &mpsc::Sender<Event>,
) -> Option<usize> {
    let mut decoded = 0;
    while !buf.is_empty() {
        let permit = events.reserve().await.ok()?;
        let event = match codec::decode(buf, *protocol, max_packet_size) {
            Ok(None) => break,
            Ok(Some(packet)) => {
                if let Packet::Connect(connect) = &packet {
                    *protocol = Some(connect.protocol);
                }
                Event::Packet(id, packet)
            }
            Err(error) => {
                debug!(connection = id, %error, "undecodable input");
                // Whatever follows a bad frame is meaningless; the core will close.
                permit.send(Event::DecodeFailed(id, error));
                return None;
            }
        };
        permit.send(event);
        decoded += 1;
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::outbox::write_queue;

    /// Every connection holds one of these futures for its whole life: it is most of what an
    /// idle connection costs the broker, so it must stay small (no packet, event or buffer
    /// inside it across an `await`).
    #[test]
    fn a_connection_task_future_stays_small() {
        let (events, _events_rx) = mpsc::channel(1);
        let (drained, _drained_rx) = mpsc::unbounded_channel();
        let (_queue, outgoing) = write_queue(1, Arc::default(), drained);
        let (stream, _peer) = tokio::io::duplex(64);
        let limits = Limits {
            max_packet_size: 1024,
            frame_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
        };
        let ready: PollReadReady<tokio::io::DuplexStream> = |_, _| Poll::Ready(Ok(()));
        let task = run(1, stream, ready, limits, Arc::default(), events, outgoing);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1024, "the connection task's future is {size} bytes");
    }
}
