//! Connections to a broker over TCP or TLS (set up in `tls.rs`): the [`Stream`], and the
//! harness's own packet links to it (probe, clean-up, will storms).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use lastwill_broker::codec::{Connect, Packet, Protocol};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Endpoint, tls};
use crate::link::Link;

impl Endpoint {
    /// A new connection to the broker's address for `protocol` (TLS when the endpoint is
    /// `mqtts://`).
    pub(crate) async fn open(&self, protocol: Protocol) -> io::Result<Stream> {
        let address = self.address(protocol);
        let tcp = TcpStream::connect((address.host.as_str(), address.port)).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(address.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let tls = connector.connect(name, tcp).await.map_err(tls::in_words)?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }

    /// A connection of the harness's own (probe, clean-up, will storms): opens one to the
    /// address of `connect`'s protocol and sends `connect` with the endpoint's credentials;
    /// the CONNACK is the caller's to read.
    pub(crate) async fn connect(&self, connect: Connect) -> io::Result<Link<Stream>> {
        let connect = self.credentialed(connect);
        let mut link = Link::new(self.open(connect.protocol).await?, connect.protocol);
        link.send(&[Packet::Connect(connect)]).await?;
        Ok(link)
    }

    /// `connect` with the endpoint's `--username`/`--password`.
    pub(crate) fn credentialed(&self, mut connect: Connect) -> Connect {
        connect.username = self.username.clone();
        connect.password = self.password.clone().map(Bytes::from);
        connect
    }
}

/// A plain or TLS connection to the broker.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Closes abruptly: with `SO_LINGER 0`, close() sends RST instead of FIN (and no TLS
    /// close_notify either).
    pub(crate) fn reset(self) {
        let tcp = match &self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
        drop(self);
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf).map_err(tls::in_words),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf).map_err(tls::in_words),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx).map_err(tls::in_words),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
