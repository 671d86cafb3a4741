//! Trust decisions of `--ca-file`, and the errors of every TLS file, without a network: the
//! verifier is asked directly about certificates made with rcgen. (Handshakes against
//! mosquitto, and mutual TLS, are in `harness/tests/it/mosquitto_tls.rs`.)

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::*;

/// A folder for one test's files, removed when dropped.
struct Files(PathBuf);

impl Files {
    fn new(test: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("lastwill-tls-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `names` with `CA:TRUE`, as `openssl req -x509` makes one
/// (its default extensions are OpenSSL's `v3_ca`), valid from two days ago for `days` days.
/// Each has a subject of its own (`CN=lastwill test N`): certificates are looked up by subject.
fn self_signed(names: &[&str], days: u64) -> (rcgen::Certificate, KeyPair) {
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("lastwill test {n}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let start = SystemTime::now() - Duration::from_secs(2 * 86_400);
    params.not_before = start.into();
    params.not_after = (start + Duration::from_secs(days * 86_400)).into();
    (params.self_signed(&key).unwrap(), key)
}

fn verify(
    ca_file: &Path,
    certificate: &rcgen::Certificate,
    name: &str,
) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = CaFile::load(ca_file, &provider).unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    verifier
        .verify_server_cert(certificate.der(), &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn a_self_signed_server_certificate_is_trusted_for_its_names() {
    let files = Files::new("self-signed");
    let (server, _) = self_signed(&["127.0.0.1", "localhost"], 30);
    let ca_file = files.write("server.pem", server.pem());
    // webpki alone refuses it
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.der().clone()).unwrap();
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let refused = webpki.verify_server_cert(
        server.der(),
        &[],
        &ServerName::try_from("localhost").unwrap(),
        &[],
        UnixTime::now(),
    );
    assert!(is_ca_used_as_end_entity(&refused.unwrap_err()));

    verify(&ca_file, &server, "127.0.0.1").unwrap();
    verify(&ca_file, &server, "localhost").unwrap();
    let wrong_name = verify(&ca_file, &server, "broker.example").unwrap_err();
    assert!(matches!(
        wrong_name,
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
    ));
    assert!(
        describe(&wrong_name).starts_with(
            "the broker's certificate is not trusted: certificate not valid for name \"broker.example\""
        ),
        "{}",
        describe(&wrong_name)
    );
}

#[test]
fn a_certificate_naming_its_server_only_in_the_common_name_is_refused_with_the_fix() {
    let files = Files::new("common-name");
    // what `openssl req -x509 -subj /CN=localhost` makes: no subjectAltName
    let (server, _) = self_signed(&[], 30);
    let ca_file = files.write("server.pem", server.pem());
    let error = verify(&ca_file, &server, "localhost").unwrap_err();
    assert_eq!(
        describe(&error),
        "the broker's certificate is not trusted: it names its server only in its Common Name, \
         which lastwill ignores (so do browsers); make it with a subjectAltName: \
         `openssl req -x509 ... -addext subjectAltName=DNS:localhost`"
    );
    let error = verify(&ca_file, &server, "127.0.0.1").unwrap_err();
    assert!(describe(&error).ends_with("-addext subjectAltName=IP:127.0.0.1`"));
}

#[test]
fn a_pinned_certificate_must_be_current_and_the_one_in_the_file() {
    let files = Files::new("pinned");
    // valid for one day, which ended yesterday
    let (expired, _) = self_signed(&["localhost"], 1);
    let expired_file = files.write("expired.pem", expired.pem());
    assert!(matches!(
        verify(&expired_file, &expired, "localhost"),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext { .. }
        ))
    ));

    let (listed, _) = self_signed(&["localhost"], 30);
    let (other, _) = self_signed(&["localhost"], 30);
    let ca_file = files.write("listed.pem", listed.pem());
    let unlisted = verify(&ca_file, &other, "localhost").unwrap_err();
    assert_eq!(
        describe(&unlisted),
        "the broker's certificate is not trusted: it is a CA certificate, not the broker's own; \
         if it is the broker's own (self-signed), give it as --ca-file"
    );
}

#[test]
fn a_server_certificate_signed_by_a_ca_in_the_file_is_trusted() {
    let files = Files::new("ca");
    let (ca, ca_key) = self_signed(&[], 30);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let ca_file = files.write("ca.pem", ca.pem());
    verify(&ca_file, &server, "localhost").unwrap();
    assert!(verify(&ca_file, &server, "127.0.0.1").is_err());
    let (stranger, stranger_key) = self_signed(&[], 30);
    let foreign = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&KeyPair::generate().unwrap(), &stranger, &stranger_key)
        .unwrap();
    assert_eq!(
        describe(&verify(&ca_file, &foreign, "localhost").unwrap_err()),
        "the broker's certificate is not trusted: no CA in --ca-file (or, without it, among the \
         Mozilla roots) signed it; give its CA, or the broker's own certificate, as --ca-file"
    );
}

fn connector_error(ca_file: Option<&Path>, client: Option<(&Path, &Path)>) -> String {
    match tls_connector(ca_file, false, client) {
        Ok(_) => panic!("accepted {ca_file:?} {client:?}"),
        Err(error) => error,
    }
}

#[test]
fn unusable_ca_files_are_errors_in_words() {
    let files = Files::new("ca-errors");
    let missing = files.0.join("missing.pem");
    assert_eq!(
        connector_error(Some(&missing), None),
        format!(
            "--ca-file {}: cannot read it: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let empty = files.write("empty.pem", "");
    assert_eq!(
        connector_error(Some(&empty), None),
        format!(
            "--ca-file {}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
            empty.display()
        )
    );
    let binary = files.write("random.bin", [0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]);
    assert!(
        connector_error(Some(&binary), None)
            .ends_with("no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)")
    );
    let (server, key) = self_signed(&["localhost"], 30);
    let der = files.write("server.der", server.der());
    assert!(
        connector_error(Some(&der), None)
            .contains("it looks like DER: convert it with `openssl x509 -inform der"),
    );
    let key_only = files.write("key.pem", key.serialize_pem());
    assert!(connector_error(Some(&key_only), None).contains("no certificate in it"));
    let garbage = files.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let error = connector_error(Some(&garbage), None);
    assert!(
        error.starts_with(&format!(
            "--ca-file {}: certificate 1 of 1 is not a usable X.509 certificate: ",
            garbage.display()
        )),
        "{error}"
    );
}

#[test]
fn client_certificates_are_checked_before_connecting() {
    let files = Files::new("client");
    let (client, key) = self_signed(&["device-1"], 30);
    let cert = files.write("client.pem", client.pem());
    let key_file = files.write("client.key", key.serialize_pem());
    assert!(tls_connector(None, false, Some((&cert, &key_file))).is_ok());

    let empty = files.write("empty.key", "");
    assert!(
        connector_error(None, Some((&cert, &empty))).starts_with(&format!(
            "--key {}: no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----)",
            empty.display()
        ))
    );
    let (_, other_key) = self_signed(&["device-2"], 30);
    let other_key = files.write("other.key", other_key.serialize_pem());
    let error = connector_error(None, Some((&cert, &other_key)));
    assert!(
        error.starts_with(&format!("--cert {} with --key: ", cert.display())),
        "{error}"
    );
    let missing = files.0.join("missing.pem");
    assert!(
        connector_error(None, Some((&missing, &key_file)))
            .starts_with(&format!("--cert {}: cannot read it: ", missing.display()))
    );
}

#[test]
fn the_brokers_tls_alerts_in_words() {
    use rustls::AlertDescription as Alert;
    assert_eq!(
        describe(&rustls::Error::AlertReceived(Alert::CertificateRequired)),
        "the broker requires a client certificate: give --cert and --key"
    );
    assert_eq!(
        describe(&rustls::Error::AlertReceived(Alert::UnknownCA)),
        "the broker refused the client certificate (TLS alert: unknown CA)"
    );
    assert_eq!(
        describe(&rustls::Error::AlertReceived(Alert::HandshakeFailure)),
        "the broker ended the TLS handshake: handshake failure"
    );
    assert_eq!(
        alert_words(&Alert::UnknownPSKIdentity),
        "unknown PSK identity"
    );
}
