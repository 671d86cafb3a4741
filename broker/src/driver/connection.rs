//! One client connection as the core task holds it: the stream, what is half-read, what waits
//! to be written, and the single non-blocking steps the driver takes on it when it is ready.
//!
//! - **Reading.** Bytes are appended to a buffer and cut into packets with
//!   [`codec::decode`]. Until a CONNECT has been decoded the codec is told no protocol
//!   (`None`), so only a CONNECT is accepted; afterwards the CONNECT's protocol decides how
//!   every later packet is parsed. The read buffer grows with the bytes that actually arrive,
//!   not with the length a frame announces, and is released whenever no frame is half-read:
//!   an idle connection waits for readability ([`Listener::poll_read_ready`]) with no buffer.
//! - **Writing.** One batch from the [`Outbox`] at a time, written as far as the socket takes
//!   it; the rest waits for the stream to be writable again.
//! - **Lingering.** After the broker's last bytes and a FIN, what the peer still sends is read
//!   and discarded for a bounded time and amount (see [`LINGER_TIME`]).
//!
//! Nothing here waits, holds a timer or knows the core: every method polls once with the
//! connection's own waker ([`super::ready::Signal`]) and says what happened.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::codec::{self, DecodeError, Packet, Protocol};

use super::listener::Listener;
use super::metrics::Metrics;
use super::outbox::{Outbox, WRITE_BATCH};
use super::ready::Signal;

/// What one read asks for at first; it doubles while reads fill it, up to [`MAX_READ`].
const MIN_READ: usize = 1024;
const MAX_READ: usize = 64 * 1024;

/// How long, and for how many bytes, a closing connection is still read from. Closing a
/// socket with unread bytes makes the kernel send RST, and a RST can make the peer lose what
/// was written just before it: the CONNACK 0x95 for an oversized CONNECT ([MQTT-3.1.4-1]), a
/// DISCONNECT with its reason.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);
pub(crate) const LINGER_BYTES: u32 = 1024 * 1024;

/// The limits the driver enforces per connection (from [`crate::config::Config`]).
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub max_packet_size: u32,
    pub frame_timeout: Duration,
    pub write_timeout: Duration,
    pub max_queued_bytes: usize,
    pub memory_budget: usize,
}

/// A read buffer whose capacity is counted in [`Metrics`].
#[derive(Debug, Default)]
struct ReadBuffer {
    buf: BytesMut,
    /// How much the next read asks for.
    chunk: u32,
    /// The capacity last reported to [`Metrics`].
    counted: u32,
}

impl ReadBuffer {
    /// Makes room for the next read; returns how much there is.
    fn prepare(&mut self, metrics: &Metrics) -> usize {
        let chunk = (self.chunk as usize).max(MIN_READ);
        if self.buf.capacity() - self.buf.len() < chunk / 2 {
            self.buf.reserve(chunk);
        }
        self.count(metrics);
        self.buf.capacity() - self.buf.len()
    }

    /// After a read of `n` bytes into `asked` bytes of room.
    fn after_read(&mut self, n: usize, asked: usize) {
        if n == asked {
            // the read filled what it asked for: more is coming, ask for more next time
            self.chunk = ((self.chunk as usize).max(MIN_READ) * 2).min(MAX_READ) as u32;
        }
    }

    /// Holds no buffer when nothing is half-read (an idle connection would otherwise keep its
    /// last read's capacity, 1 KiB or more).
    fn shrink(&mut self, metrics: &Metrics) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        self.count(metrics);
    }

    fn release(&mut self, metrics: &Metrics) {
        self.buf = BytesMut::new();
        self.count(metrics);
    }

    fn count(&mut self, metrics: &Metrics) {
        // a buffer never exceeds the largest packet allowed plus one read, both below 4 GiB
        let capacity = u32::try_from(self.buf.capacity()).unwrap_or(u32::MAX);
        if capacity != self.counted {
            metrics.read_buffer_resized(self.counted as usize, capacity as usize);
            self.counted = capacity;
        }
    }
}

/// What the driver holds for one connection (the one per-connection record; keep it small:
/// see the test below).
pub(crate) struct Connection<S> {
    stream: S,
    pub signal: Arc<Signal>,
    /// Only while bytes are in flight; `None` for an idle connection.
    in_flight: Option<Box<InFlight>>,
    protocol: Option<Protocol>,
    /// Bytes are still read and handed to the core.
    pub reading: bool,
    /// The core closed the connection: send a close once everything before it is out.
    pub closing: bool,
    /// The core was told this connection is lost: when it closes, the stream is just dropped.
    pub lost: bool,
    /// A write failed or timed out: nothing more is written.
    pub broken: bool,
    /// After the FIN: how many more bytes are read and discarded.
    pub lingering: Option<u32>,
    /// When the frame at the front of the read buffer must be complete, or the linger ends.
    pub read_deadline: Option<Instant>,
    /// When a write that made no progress is given up.
    pub write_deadline: Option<Instant>,
}

/// What a connection holds only while bytes are in flight: a half-read frame, packets waiting
/// to be written, the batch being written. Most connections of a broker are idle most of the
/// time (a device that sent its CONNECT and waits, will armed): boxed and freed once all three
/// are empty, this costs an idle connection 8 bytes instead of 128.
#[derive(Default)]
struct InFlight {
    read: ReadBuffer,
    outbox: Outbox,
    /// The rest of the batch being written: what the socket has not taken yet.
    writing: Bytes,
}

impl InFlight {
    fn backlog(&self) -> usize {
        self.outbox.bytes() + self.writing.len()
    }

    fn has_output(&self) -> bool {
        !self.writing.is_empty() || !self.outbox.is_empty()
    }

    /// Nothing half-read (and no read buffer counted), nothing to write.
    fn is_idle(&self) -> bool {
        self.read.buf.capacity() == 0 && self.read.counted == 0 && !self.has_output()
    }
}

/// What one read step brought.
pub(crate) enum Read {
    /// `n` more bytes are in the buffer.
    Bytes(usize),
    /// Nothing yet: the connection's signal is woken when there is.
    Pending,
    /// End of stream or a read error.
    Closed(Option<io::Error>),
}

impl<S> Connection<S> {
    pub fn new(stream: S, signal: Arc<Signal>) -> Connection<S> {
        Connection {
            stream,
            signal,
            in_flight: None,
            protocol: None,
            reading: true,
            closing: false,
            lost: false,
            broken: false,
            lingering: None,
            read_deadline: None,
            write_deadline: None,
        }
    }

    fn in_flight(&mut self) -> &mut InFlight {
        self.in_flight.get_or_insert_with(Box::default)
    }

    /// Frees the in-flight part once nothing is in flight.
    fn settle(&mut self) {
        if self.in_flight.as_ref().is_some_and(|f| f.is_idle()) {
            self.in_flight = None;
        }
    }

    /// The next whole packet in the read buffer, if there is one.
    pub fn next_frame(&mut self, max_packet_size: u32) -> Option<Result<Packet, DecodeError>> {
        let in_flight = self.in_flight.as_mut()?;
        if in_flight.read.buf.is_empty() {
            return None;
        }
        let frame =
            codec::decode(&mut in_flight.read.buf, self.protocol, max_packet_size).transpose();
        if let Some(Ok(Packet::Connect(connect))) = &frame {
            self.protocol = Some(connect.protocol);
        }
        frame
    }

    /// Whether a frame is half-read.
    pub fn has_partial_frame(&self) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|f| !f.read.buf.is_empty())
    }

    /// After decoding what a read completed: gives back the buffer if nothing is half-read.
    pub fn decoded(&mut self, metrics: &Metrics) {
        if let Some(in_flight) = &mut self.in_flight {
            in_flight.read.shrink(metrics);
        }
    }

    /// Stops reading for good: the buffer goes.
    pub fn stop_reading(&mut self, metrics: &Metrics) {
        self.reading = false;
        if let Some(in_flight) = &mut self.in_flight {
            in_flight.read.release(metrics);
        }
        self.settle();
    }

    /// Queues one encoded packet; `droppable` for a QoS 0 PUBLISH.
    pub fn queue(&mut self, bytes: Bytes, droppable: bool) {
        self.in_flight().outbox.push(bytes, droppable);
    }

    /// Bytes queued and not being written yet.
    pub fn queued(&self) -> usize {
        self.in_flight.as_ref().map_or(0, |f| f.outbox.bytes())
    }

    /// Drops the oldest queued QoS 0 PUBLISH; returns its size, or `None` when there is none.
    pub fn drop_oldest_qos0(&mut self) -> Option<usize> {
        self.in_flight.as_mut()?.outbox.drop_oldest_qos0()
    }

    /// Bytes waiting for this connection: in its outbox and in the batch being written.
    pub fn backlog(&self) -> usize {
        self.in_flight.as_ref().map_or(0, |f| f.backlog())
    }

    /// Something is left to write.
    pub fn has_output(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.has_output())
    }

    /// Forgets everything not written yet; returns how many bytes that was.
    pub fn discard_output(&mut self) -> usize {
        let Some(in_flight) = &mut self.in_flight else {
            return 0;
        };
        let bytes = in_flight.backlog();
        in_flight.writing = Bytes::new();
        in_flight.outbox.discard();
        self.settle();
        bytes
    }

    /// The connection is done with: takes its bytes out of the accounting.
    pub fn retire(mut self, metrics: &Metrics) {
        metrics.unqueued(self.backlog());
        if let Some(in_flight) = &mut self.in_flight {
            in_flight.read.release(metrics);
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Reads once, at most `limit` bytes. With no frame half-read it first polls for
    /// readability with no buffer allocated, so that an idle connection holds none.
    pub fn poll_read<L: Listener<Stream = S>>(
        &mut self,
        cx: &mut Context<'_>,
        limit: usize,
        metrics: &Metrics,
    ) -> Read {
        if !self.has_partial_frame() {
            match L::poll_read_ready(&self.stream, cx) {
                Poll::Pending => return Read::Pending,
                Poll::Ready(Err(error)) => return Read::Closed(Some(error)),
                Poll::Ready(Ok(())) => {}
            }
        }
        let in_flight = self.in_flight.get_or_insert_with(Box::default);
        let asked = in_flight.read.prepare(metrics).min(limit);
        let mut room = (&mut in_flight.read.buf).limit(asked);
        // `read_buf` polled once and dropped: nothing is read unless it returns Ready
        let read = pin!(self.stream.read_buf(&mut room)).poll(cx);
        let outcome = match read {
            Poll::Pending => Read::Pending,
            Poll::Ready(Ok(0)) => Read::Closed(None),
            Poll::Ready(Err(error)) => Read::Closed(Some(error)),
            Poll::Ready(Ok(n)) => {
                in_flight.read.after_read(n, asked);
                Read::Bytes(n)
            }
        };
        if !matches!(outcome, Read::Bytes(_)) {
            in_flight.read.shrink(metrics);
            self.settle();
        }
        outcome
    }

    /// Writes once from the batch being written (taking the next batch from the outbox when
    /// there is none). `Ready(Ok(n))` with the count written; `Ready(Ok(0))` when nothing was
    /// left to write.
    pub fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(in_flight) = &mut self.in_flight else {
            return Poll::Ready(Ok(0));
        };
        if in_flight.writing.is_empty() {
            match in_flight.outbox.take(WRITE_BATCH) {
                Some(batch) => in_flight.writing = batch,
                None => {
                    self.settle();
                    return Poll::Ready(Ok(0));
                }
            }
        }
        let written = match Pin::new(&mut self.stream).poll_write(cx, &in_flight.writing) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                in_flight.writing.advance(n);
                n
            }
            other => return other,
        };
        self.settle();
        Poll::Ready(Ok(written))
    }

    /// Shuts the write side down (a FIN).
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    /// Reads and discards what the peer still sends after the FIN, at most `limit` bytes.
    /// `Ready` once lingering is over (the peer closed too, or sent too much).
    pub fn poll_discard(&mut self, cx: &mut Context<'_>, limit: usize) -> Poll<()> {
        let mut discard = [0u8; 4096];
        let mut taken = 0;
        while taken < limit {
            let mut buf = ReadBuf::new(&mut discard);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    taken += n;
                    let left = self.lingering.unwrap_or(0);
                    let left = left.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
                    if left == 0 {
                        return Poll::Ready(());
                    }
                    self.lingering = Some(left);
                }
            }
        }
        // more may be waiting: come back next turn
        self.signal.requeue();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection holds one of these for its whole life, next to tokio's registration
    /// and its [`Signal`]: it is most of what an idle connection costs the driver, so it must
    /// stay small.
    #[test]
    fn a_connection_stays_small() {
        let size = std::mem::size_of::<Connection<tokio::net::TcpStream>>();
        assert!(size <= 112, "a connection record is {size} bytes");
    }
}
