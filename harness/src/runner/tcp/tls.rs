//! TLS for `mqtts://` targets: whom to trust (`--ca-file`, the Mozilla roots, or anyone with
//! `--insecure`) and, for brokers that require client certificates, who we are (`--cert`,
//! `--key`).
//!
//! A `--ca-file` may hold CA certificates or the server's own self-signed certificate, as
//! `openssl req -x509` makes it and mosquitto_sub accepts it as `--cafile`. Such a certificate
//! carries `CA:TRUE`, and webpki refuses a CA certificate as the server's own
//! (`CaUsedAsEndEntity`): [`CaFile`] then trusts it when it is byte for byte one of the file's,
//! still checking its validity period, the server name and the handshake signature.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// TLS settings for `mqtts://` targets: trust `ca_file` (PEM: CA certificates or the server's
/// own), or the Mozilla roots, or, with `insecure`, any certificate at all; present `client`
/// (a PEM certificate chain and its private key) when the broker asks for one. Every file is
/// read and checked here, so a bad one is an error before anything connects.
pub fn tls_connector(
    ca_file: Option<&Path>,
    insecure: bool,
    client: Option<(&Path, &Path)>,
) -> Result<tokio_rustls::TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (insecure, ca_file) {
        (true, _) => Arc::new(AnyCertificate(Arc::clone(&provider))),
        (false, Some(path)) => Arc::new(CaFile::load(path, &provider)?),
        (false, None) => {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| format!("the Mozilla roots: {e}"))?
        }
    };
    // `dangerous` only because the verifier is ours to choose: webpki's (the default), webpki's
    // with the CA file's pinned certificates, or --insecure's
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certificates(cert, "--cert")?;
            let key = read_private_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("--cert {} with --key: {e}", cert.display()))?
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The certificates of a PEM file (`flag` names it in errors); none at all is an error.
fn read_certificates(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path, flag)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {}: not a valid PEM file: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{flag} {}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----){}",
            path.display(),
            der_hint(&bytes)
        ));
    }
    Ok(certificates)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path, "--key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "--key {}: no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----): {e}{}",
            path.display(),
            der_hint(&bytes)
        )
    })
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: cannot read it: {e}", path.display()))
}

/// A DER file (an ASN.1 SEQUENCE) where PEM was expected: say how to convert it.
fn der_hint(bytes: &[u8]) -> &'static str {
    if bytes.first() == Some(&0x30) {
        "; it looks like DER: convert it with `openssl x509 -inform der -in FILE -out FILE.pem`"
    } else {
        ""
    }
}

/// `--ca-file`: webpki's verification with the file's certificates as roots, and the file's
/// certificates themselves trusted as the server's own when webpki refuses them only for being
/// CA certificates (see the module documentation).
#[derive(Debug)]
struct CaFile {
    chain: Arc<WebPkiServerVerifier>,
    certificates: Vec<CertificateDer<'static>>,
}

impl CaFile {
    fn load(path: &Path, provider: &Arc<CryptoProvider>) -> Result<CaFile, String> {
        let certificates = read_certificates(path, "--ca-file")?;
        let mut roots = rustls::RootCertStore::empty();
        for (n, certificate) in certificates.iter().enumerate() {
            roots.add(certificate.clone()).map_err(|e| {
                format!(
                    "--ca-file {}: certificate {} of {} is not a usable X.509 certificate: {e}",
                    path.display(),
                    n + 1,
                    certificates.len()
                )
            })?;
        }
        let chain =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                .build()
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        Ok(CaFile {
            chain,
            certificates,
        })
    }
}

impl ServerCertVerifier for CaFile {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let verified = match verified {
            // webpki checks a certificate's validity period before its basic constraints, so
            // this refusal means it is current; what is left to check is the name
            Err(error)
                if is_ca_used_as_end_entity(&error)
                    && self.certificates.iter().any(|c| c == end_entity) =>
            {
                let certificate = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&certificate, server_name)
                    .map(|()| ServerCertVerified::assertion())
            }
            verified => verified,
        };
        verified.map_err(|error| match error {
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            }) if presented.is_empty() => {
                let error = NoSubjectAltName::new(server_name);
                CertificateError::Other(rustls::OtherError(Arc::new(error))).into()
            }
            error => error,
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// A certificate that names its server only in its Common Name, as `openssl req -x509 -subj
/// /CN=NAME` makes it: OpenSSL clients fall back to the CN, rustls (like browsers) does not.
/// Holds the subjectAltName entry the certificate needs (`DNS:localhost`, `IP:127.0.0.1`).
#[derive(Debug)]
struct NoSubjectAltName(String);

impl NoSubjectAltName {
    fn new(server: &ServerName<'_>) -> NoSubjectAltName {
        let kind = match server {
            ServerName::IpAddress(_) => "IP",
            _ => "DNS",
        };
        NoSubjectAltName(format!("{kind}:{}", server.to_str()))
    }
}

impl std::fmt::Display for NoSubjectAltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "it names its server only in its Common Name, which lastwill ignores (so do browsers); \
             make it with a subjectAltName: `openssl req -x509 ... -addext subjectAltName={}`",
            self.0
        )
    }
}

impl std::error::Error for NoSubjectAltName {}

fn is_ca_used_as_end_entity(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidCertificate(error) if is_ca_certificate(error)
    )
}

fn is_ca_certificate(error: &CertificateError) -> bool {
    matches!(error, CertificateError::Other(other)
        if other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity))
}

/// An I/O error of a TLS stream, with a TLS failure in it put in words (see [`describe`]).
pub(crate) fn in_words(error: std::io::Error) -> std::io::Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => std::io::Error::new(error.kind(), describe(tls)),
        None => error,
    }
}

/// A TLS failure as a person reads it: what went wrong and, when there is one, the flag that
/// fixes it. (rustls's own text of many of these is the Debug form of an enum.)
fn describe(error: &rustls::Error) -> String {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(error) => {
            format!(
                "the broker's certificate is not trusted: {}",
                certificate(error)
            )
        }
        rustls::Error::AlertReceived(Alert::CertificateRequired) => {
            "the broker requires a client certificate: give --cert and --key".to_owned()
        }
        rustls::Error::AlertReceived(
            alert @ (Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            | Alert::AccessDenied),
        ) => format!(
            "the broker refused the client certificate (TLS alert: {})",
            alert_words(alert)
        ),
        rustls::Error::AlertReceived(alert) => {
            format!("the broker ended the TLS handshake: {}", alert_words(alert))
        }
        error => error.to_string(),
    }
}

fn certificate(error: &CertificateError) -> String {
    match error {
        CertificateError::UnknownIssuer => "no CA in --ca-file (or, without it, among the Mozilla \
             roots) signed it; give its CA, or the broker's own certificate, as --ca-file"
            .to_owned(),
        CertificateError::BadSignature => "its signature does not verify".to_owned(),
        CertificateError::BadEncoding => "it is not a valid X.509 certificate".to_owned(),
        CertificateError::Expired => "it has expired".to_owned(),
        CertificateError::NotValidYet => "it is not valid yet".to_owned(),
        CertificateError::Revoked => "it is revoked".to_owned(),
        CertificateError::NotValidForName => "it is not valid for this host name".to_owned(),
        error if is_ca_certificate(error) => {
            "it is a CA certificate, not the broker's own; if it is the broker's own \
             (self-signed), give it as --ca-file"
                .to_owned()
        }
        CertificateError::Other(other) => other.0.to_string(),
        // the variants with context (expired, wrong name) have rustls's words, with times
        error => error.to_string(),
    }
}

/// `CertificateRequired` as `certificate required`, `UnknownCA` as `unknown CA`.
fn alert_words(alert: &rustls::AlertDescription) -> String {
    let Some(name) = alert.as_str() else {
        return format!("{}", u8::from(*alert));
    };
    let chars: Vec<char> = name.chars().collect();
    let mut words: Vec<String> = vec![String::new()];
    for (i, &c) in chars.iter().enumerate() {
        let after_lower = i > 0 && chars[i - 1].is_lowercase();
        let ends_acronym = i > 0
            && chars[i - 1].is_uppercase()
            && chars.get(i + 1).is_some_and(|next| next.is_lowercase());
        if c.is_uppercase() && (after_lower || ends_acronym) {
            words.push(String::new());
        }
        words.last_mut().expect("one word at least").push(c);
    }
    let words: Vec<String> = words
        .into_iter()
        .map(|word| {
            let acronym = word.len() > 1 && word.chars().all(char::is_uppercase);
            if acronym { word } else { word.to_lowercase() }
        })
        .collect();
    words.join(" ")
}

/// `--insecure`: accepts every server certificate (handshake signatures are still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
