//! A packet link: whole MQTT packets in and out over any byte stream.
//!
//! The one framing of the harness: the scripted client, the TCP runner's probe and clean-up,
//! and the will storm all read and write through a [`Link`]. Reading is cancel-safe (bytes
//! read stay in the link's buffer until a whole packet decodes), so a link can sit in a
//! `select!` next to a command channel or a deadline.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lastwill_broker::codec::{self, DecodeError, Disconnect, EncodeError, Packet, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Packets over `S`, encoded and decoded as `protocol`.
pub struct Link<S> {
    stream: S,
    protocol: Protocol,
    incoming: BytesMut,
}

/// Why a link delivers no more packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The peer closed the stream (EOF).
    Closed,
    /// Reading the stream failed (a reset, a TLS alert): the error, in words.
    Failed(String),
    /// The peer sent bytes that do not decode.
    Undecodable(DecodeError),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    pub fn new(stream: S, protocol: Protocol) -> Link<S> {
        Link {
            stream,
            protocol,
            incoming: BytesMut::with_capacity(4096),
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The wire bytes of `packets`, for a caller that records what it sends before writing.
    pub fn encode(&self, packets: &[Packet]) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        for packet in packets {
            codec::encode(packet, self.protocol, &mut buf)?;
        }
        Ok(buf.freeze())
    }

    /// Writes `bytes` (whole packets or anything at all) and flushes them.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Encodes and writes `packets`; a packet that cannot be encoded is an `InvalidInput`
    /// error and nothing is written.
    pub async fn send(&mut self, packets: &[Packet]) -> io::Result<()> {
        let bytes = self
            .encode(packets)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.write(&bytes).await
    }

    /// The next packet. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Packet, Ended> {
        loop {
            match codec::decode(&mut self.incoming, Some(self.protocol), u32::MAX) {
                Ok(Some(packet)) => return Ok(packet),
                Ok(None) => {}
                Err(error) => return Err(Ended::Undecodable(error)),
            }
            match self.stream.read_buf(&mut self.incoming).await {
                Ok(0) => return Err(Ended::Closed),
                Err(error) => return Err(Ended::Failed(error.to_string())),
                Ok(_) => {}
            }
        }
    }

    /// The next packet; `Ok(None)` when none comes within `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Result<Option<Packet>, Ended> {
        match tokio::time::timeout(limit, self.recv()).await {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Closes the write side in order (FIN; TLS close_notify first).
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Sends `last`, then DISCONNECT 0x00, and closes.
    pub async fn goodbye(mut self, last: &[Packet]) {
        let mut packets = last.to_vec();
        packets.push(Packet::Disconnect(Disconnect::default()));
        let _ = self.send(&packets).await;
        self.close().await;
    }

    /// The stream itself, to end it some other way (a reset, a silent disappearance); bytes
    /// read and not yet decoded are dropped.
    pub fn into_stream(self) -> S {
        self.stream
    }
}

#[cfg(test)]
mod tests {
    use lastwill_broker::codec::{Ack, Connect, DecodeErrorKind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    fn wire(packets: &[Packet]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for packet in packets {
            codec::encode(packet, Protocol::V5, &mut buf).unwrap();
        }
        buf.to_vec()
    }

    #[tokio::test(start_paused = true)]
    async fn packets_split_across_reads_and_packed_into_one_decode_in_order() {
        let (ours, mut theirs) = duplex(1024);
        let mut link = Link::new(ours, Protocol::V5);
        let bytes = wire(&[
            Packet::PubAck(Ack::success(7)),
            Packet::PingResp,
            Packet::PubComp(Ack::success(8)),
        ]);
        // the first packet arrives in two pieces, the other two in one write
        theirs.write_all(&bytes[..2]).await.unwrap();
        let reading = tokio::spawn(async move {
            let first = link.recv().await;
            (link, first)
        });
        tokio::task::yield_now().await;
        theirs.write_all(&bytes[2..]).await.unwrap();
        let (mut link, first) = reading.await.unwrap();
        assert_eq!(first, Ok(Packet::PubAck(Ack::success(7))));
        assert_eq!(link.recv().await, Ok(Packet::PingResp));
        assert_eq!(link.recv().await, Ok(Packet::PubComp(Ack::success(8))));
        drop(theirs);
        assert_eq!(link.recv().await, Err(Ended::Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn undecodable_bytes_end_the_link_with_the_decoder_reason() {
        let (ours, mut theirs) = duplex(64);
        let mut link = Link::new(ours, Protocol::V5);
        // packet type 0 is reserved ([MQTT-2.1.3-1])
        theirs.write_all(&[0x00, 0x00]).await.unwrap();
        match link.recv().await {
            Err(Ended::Undecodable(error)) => assert_eq!(error.kind, DecodeErrorKind::Malformed),
            other => panic!("expected undecodable, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn recv_within_gives_up_at_its_limit_and_keeps_what_it_read() {
        let (ours, mut theirs) = duplex(64);
        let mut link = Link::new(ours, Protocol::V5);
        let bytes = wire(&[Packet::PingResp]);
        theirs.write_all(&bytes[..1]).await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(link.recv_within(Duration::from_secs(2)).await, Ok(None));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        theirs.write_all(&bytes[1..]).await.unwrap();
        assert_eq!(
            link.recv_within(Duration::from_secs(2)).await,
            Ok(Some(Packet::PingResp))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn goodbye_sends_the_last_packets_then_disconnect_then_fin() {
        let (ours, mut theirs) = duplex(1024);
        let link = Link::new(ours, Protocol::V5);
        let last = Packet::PubAck(Ack::success(3));
        link.goodbye(std::slice::from_ref(&last)).await;
        let mut received = Vec::new();
        theirs.read_to_end(&mut received).await.unwrap();
        assert_eq!(
            received,
            wire(&[last, Packet::Disconnect(Disconnect::default())])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_packet_that_cannot_be_encoded_writes_nothing() {
        let (ours, mut theirs) = duplex(1024);
        let mut link = Link::new(ours, Protocol::V5);
        let mut connect = Connect::new(Protocol::V5, "c");
        connect.client_id = "x".repeat(70_000);
        let error = link
            .send(&[Packet::PingReq, Packet::Connect(connect)])
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        link.close().await;
        let mut received = Vec::new();
        theirs.read_to_end(&mut received).await.unwrap();
        assert!(received.is_empty(), "wrote {received:?}");
    }
}
