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
//! - **Writing.** The core task sends [`Outgoing`] batches: every byte produced for this
//!   connection in one wake-up of the core, already encoded. Batches that queued up while the
//!   task was writing are gathered into one `write_all`. The queue is bounded by the bytes
//!   waiting in it ([`WRITE_BACKLOG_LIMIT`]): past that the peer is too slow and is dropped.
//!   A batch marked `close` is written, then the write side is shut down (a FIN) and the
//!   stream dropped.
//!
//! Writes go before reads (`biased;`): a connection that is being closed should not keep
//! feeding the core. Nothing received from the network can make this task panic; should it
//! end in any unexpected way anyway (a panic in the codec, an abort), a drop guard still tells
//! the core that the connection is gone, so its will is not forgotten.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::codec::{self, DecodeError, Packet, Protocol};
use crate::core::ConnectionId;

/// How long one write may take before the peer is considered gone. A client that stops
/// reading must not pin a task and its buffers forever.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes gathered from queued batches into one write, at most (plus the last batch).
const GATHER_LIMIT: usize = 256 * 1024;

/// How many bytes one read asks for (the buffer grows as needed for bigger packets).
const READ_CHUNK: usize = 8 * 1024;

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
    /// End of stream, a read or write error, or the task ended unexpectedly.
    Lost(ConnectionId),
}

/// What the core task sends a connection task: bytes to write, then perhaps close.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub bytes: Bytes,
    pub close: bool,
}

/// How many bytes may wait for one connection, queued by the core task and not yet written,
/// before the broker drops it as too slow. A client that stops reading must not hold the
/// broker's memory, but the backlog of a healthy subscriber that a burst of wills briefly
/// outruns (10,000 small wills are about half a megabyte) must fit.
pub(crate) const WRITE_BACKLOG_LIMIT: usize = 8 * 1024 * 1024;

/// Creates a connection's write queue: the core task's end and the connection task's end.
pub(crate) fn write_queue() -> (WriteQueue, WriteQueueReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(AtomicUsize::new(0));
    (
        WriteQueue {
            tx,
            backlog: Arc::clone(&backlog),
        },
        WriteQueueReceiver { rx, backlog },
    )
}

/// The core task's end of a connection's write queue. It is bounded by the bytes waiting in
/// it ([`WRITE_BACKLOG_LIMIT`]), not by how many wake-ups of the core produced them.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    tx: mpsc::UnboundedSender<Outgoing>,
    backlog: Arc<AtomicUsize>,
}

impl WriteQueue {
    /// Queues `batch`. Fails when the backlog would pass the limit (the peer does not read
    /// fast enough) or the connection task is gone.
    pub(crate) fn push(&self, batch: Outgoing) -> Result<(), Outgoing> {
        let len = batch.bytes.len();
        if self.backlog.fetch_add(len, Ordering::AcqRel) + len > WRITE_BACKLOG_LIMIT {
            self.backlog.fetch_sub(len, Ordering::AcqRel);
            return Err(batch);
        }
        self.tx.send(batch).map_err(|unsent| unsent.0)
    }
}

/// The connection task's end of its write queue.
pub(crate) struct WriteQueueReceiver {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    backlog: Arc<AtomicUsize>,
}

impl WriteQueueReceiver {
    /// The next batch and the batches already waiting behind it (up to a close, or
    /// [`GATHER_LIMIT`] bytes) as one: a subscriber flooded with wills gets them in a few
    /// large writes instead of one write per wake-up of the core, and keeps up with it.
    /// `None` once the core task has dropped its end.
    async fn recv(&mut self) -> Option<Outgoing> {
        let first = self.rx.recv().await?;
        if first.close {
            return Some(first);
        }
        let Ok(mut next) = self.rx.try_recv() else {
            return Some(first);
        };
        let mut bytes = BytesMut::with_capacity(first.bytes.len() + next.bytes.len());
        bytes.extend_from_slice(&first.bytes);
        loop {
            bytes.extend_from_slice(&next.bytes);
            if next.close || bytes.len() >= GATHER_LIMIT {
                break;
            }
            match self.rx.try_recv() {
                Ok(batch) => next = batch,
                Err(_) => {
                    next.close = false;
                    break;
                }
            }
        }
        Some(Outgoing {
            bytes: bytes.freeze(),
            close: next.close,
        })
    }

    /// `len` bytes taken from the queue were written (or will never be).
    fn written(&self, len: usize) {
        self.backlog.fetch_sub(len, Ordering::AcqRel);
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
            let _ = self.events.send(Event::Lost(self.id)).await;
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

/// Runs one connection until the core closes it or the core task goes away.
pub(crate) async fn run<S>(
    id: ConnectionId,
    mut stream: S,
    max_packet_size: u32,
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
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut protocol: Option<Protocol> = None;
    let mut reading = true;
    let mut writable = true;
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
                    let written = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await;
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
                    if writable {
                        let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
                    }
                    if reported_lost {
                        debug!(connection = id, "connection released");
                    } else {
                        info!(connection = id, "connection closed by the broker");
                    }
                    return;
                }
            }
            read = stream.read_buf(&mut buf), if reading => {
                match read {
                    Ok(0) | Err(_) => {
                        match read {
                            Ok(_) => info!(connection = id, "connection closed by the peer"),
                            Err(error) => info!(connection = id, %error, "connection failed"),
                        }
                        reading = false;
                        guard.report().await;
                    }
                    Ok(_) => {
                        if !decode_all(id, &mut buf, &mut protocol, max_packet_size, &events).await {
                            reading = false;
                        }
                        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                            buf.reserve(READ_CHUNK);
                        }
                    }
                }
            }
        }
    }
}

/// Forwards every whole packet in `buf` to the core. Returns `false` when reading must stop
/// (the bytes were undecodable, or the core task is gone).
async fn decode_all(
    id: ConnectionId,
    buf: &mut BytesMut,
    protocol: &mut Option<Protocol>,
    max_packet_size: u32,
    events: &mpsc::Sender<Event>,
) -> bool {
    loop {
        let event = match codec::decode(buf, *protocol, max_packet_size) {
            Ok(None) => return true,
            Ok(Some(packet)) => {
                if let Packet::Connect(connect) = &packet {
                    *protocol = Some(connect.protocol);
                }
                Event::Packet(id, packet)
            }
            Err(error) => {
                debug!(connection = id, %error, "undecodable input");
                // Whatever follows a bad frame is meaningless; the core will close.
                let _ = events.send(Event::DecodeFailed(id, error)).await;
                return false;
            }
        };
        if events.send(event).await.is_err() {
            return false;
        }
    }
}
