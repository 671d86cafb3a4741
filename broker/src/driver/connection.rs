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
//!   task was writing are gathered into one `write_all`. A batch marked `close` is written,
//!   then the write side is shut down (a FIN) and the stream dropped.
//!
//! Writes go before reads (`biased;`): a connection that is being closed should not keep
//! feeding the core. Nothing received from the network can make this task panic; should it
//! end in any unexpected way anyway (a panic in the codec, an abort), a drop guard still tells
//! the core that the connection is gone, so its will is not forgotten.

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
    mut outgoing: mpsc::Receiver<Outgoing>,
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
                let Some(first) = message else {
                    // The core task dropped us: it is shutting down or gave up on this peer.
                    guard.settled = true;
                    return;
                };
                let Outgoing { bytes, close } = gather(first, &mut outgoing);
                if writable && !bytes.is_empty() {
                    let written = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await;
                    if !matches!(written, Ok(Ok(()))) {
                        debug!(connection = id, ?written, "write failed");
                        writable = false;
                        reading = false;
                        guard.report().await;
                    }
                }
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

/// `first` and the batches already waiting behind it (up to a close, or [`GATHER_LIMIT`]
/// bytes) as one batch: a subscriber flooded with wills gets them in a few large writes
/// instead of one write per wake-up of the core, and keeps up with it.
fn gather(first: Outgoing, outgoing: &mut mpsc::Receiver<Outgoing>) -> Outgoing {
    if first.close {
        return first;
    }
    let Ok(mut next) = outgoing.try_recv() else {
        return first;
    };
    let mut bytes = BytesMut::with_capacity(first.bytes.len() + next.bytes.len());
    bytes.extend_from_slice(&first.bytes);
    loop {
        bytes.extend_from_slice(&next.bytes);
        if next.close || bytes.len() >= GATHER_LIMIT {
            return Outgoing {
                bytes: bytes.freeze(),
                close: next.close,
            };
        }
        match outgoing.try_recv() {
            Ok(batch) => next = batch,
            Err(_) => {
                return Outgoing {
                    bytes: bytes.freeze(),
                    close: false,
                };
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
