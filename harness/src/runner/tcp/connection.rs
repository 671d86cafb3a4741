//! Connections to a broker over TCP or TLS: the [`Stream`], the TLS settings, and the
//! harness's own packet connections (probe, clean-up, will storms).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lastwill_broker::codec::{self, Connect, Disconnect, Packet, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::Endpoint;

impl Endpoint {
    /// A new connection to the broker (TLS when the endpoint is `mqtts://`).
    pub(crate) async fn open(&self) -> io::Result<Stream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(connector) => {
                let name = rustls_pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let tls = connector.connect(name, tcp).await?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }
}

/// A plain or TLS connection to the broker.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Closes abruptly: with `SO_LINGER 0`, close() sends RST instead of FIN (and no TLS
    /// close_notify either).
    pub fn reset(self) {
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
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
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
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// TLS settings for `mqtts://` targets: trust `ca_file` (PEM) or the Mozilla roots, or, with
/// `insecure`, any certificate at all.
pub fn tls_connector(
    ca_file: Option<&std::path::Path>,
    insecure: bool,
) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// `--insecure`: accepts every server certificate (signatures are still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A connection of the harness's own (probe, clean-up, will storms): a CONNECT with the
/// endpoint's credentials, then whole packets in and out.
pub(crate) struct PacketLink {
    stream: Stream,
    protocol: Protocol,
    incoming: BytesMut,
}

/// Why a link stopped reading.
pub(crate) enum Incoming {
    Closed,
    Undecodable(String),
}

impl PacketLink {
    /// Opens a connection and sends `connect` (with the endpoint's credentials); the CONNACK is
    /// the caller's to read.
    pub(crate) async fn connect(
        endpoint: &Endpoint,
        mut connect: Connect,
    ) -> io::Result<PacketLink> {
        connect.username = endpoint.username.clone();
        connect.password = endpoint.password.clone().map(Bytes::from);
        let mut link = PacketLink {
            stream: endpoint.open().await?,
            protocol: connect.protocol,
            incoming: BytesMut::new(),
        };
        link.send(&[Packet::Connect(connect)]).await?;
        Ok(link)
    }

    pub(crate) async fn send(&mut self, packets: &[Packet]) -> io::Result<()> {
        let mut buf = BytesMut::new();
        for packet in packets {
            codec::encode(packet, self.protocol, &mut buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        self.stream.write_all(&buf).await
    }

    /// The next packet; `Ok(None)` when none comes within `limit`.
    pub(crate) async fn recv(&mut self, limit: Duration) -> Result<Option<Packet>, Incoming> {
        let read = async {
            loop {
                match codec::decode(&mut self.incoming, Some(self.protocol), u32::MAX) {
                    Ok(Some(packet)) => return Ok(packet),
                    Ok(None) => {}
                    Err(e) => return Err(Incoming::Undecodable(e.to_string())),
                }
                if matches!(
                    self.stream.read_buf(&mut self.incoming).await,
                    Ok(0) | Err(_)
                ) {
                    return Err(Incoming::Closed);
                }
            }
        };
        match tokio::time::timeout(limit, read).await {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The connection itself, to close it some other way than [`PacketLink::goodbye`].
    pub(crate) fn into_stream(self) -> Stream {
        self.stream
    }

    /// Sends `last`, then DISCONNECT 0x00, and closes.
    pub(crate) async fn goodbye(mut self, last: &[Packet]) {
        let mut packets = last.to_vec();
        packets.push(Packet::Disconnect(Disconnect::default()));
        let _ = self.send(&packets).await;
        let _ = self.stream.shutdown().await;
    }
}
