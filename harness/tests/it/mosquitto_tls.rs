//! `mqtts://` targets against mosquitto serving TLS with a certificate from a throw-away CA:
//! scenarios and a will storm pass with `--ca-file` (and with `--insecure`), and an untrusted
//! certificate is a one-line error. Over TLS, `drop rst` still resets the TCP connection
//! underneath, so the will triggers are the same as over plain TCP. Then TLS as users often
//! have it: mosquitto serving a self-signed certificate (given to lastwill as `--ca-file`, as
//! to mosquitto_pub as `--cafile`) and requiring client certificates (`--cert`, `--key`).
//!
//! Needs the `mosquitto` and `mosquitto_pub` binaries (Debian: `apt-get install mosquitto
//! mosquitto-clients`). Without them a test says so loudly and passes, unless
//! `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which turns the skip into a failure.

use std::path::Path;
use std::process::{Command, Output};

use crate::mosquitto::Mosquitto;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

const SCENARIOS: &[&str] = &[
    "scenarios/will-trigger/drop-rst-publishes-will.yaml",
    "scenarios/will-trigger/drop-fin-publishes-will-v311.yaml",
    "scenarios/will-trigger/drop-rst-with-will-delay.yaml",
];

/// Certificate parameters for `names`, with its own common name (OpenSSL takes a certificate
/// whose subject is its issuer's for a self-signed one).
fn params(common_name: &str, names: &[&str]) -> CertificateParams {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
}

/// A self-signed certificate with `CA:TRUE`: a CA's, or a server's own as `openssl req -x509`
/// makes it (OpenSSL's default `v3_ca` extensions).
fn self_signed(common_name: &str, names: &[&str]) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = params(common_name, names);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap(), key)
}

/// Writes a CA certificate and a server certificate for 127.0.0.1 signed by it; returns the
/// mosquitto configuration lines that serve it.
fn certificates(dir: &Path) -> String {
    let (ca, ca_key) = self_signed("lastwill test CA", &[]);
    let server_key = KeyPair::generate().unwrap();
    let server = params("mosquitto", &["127.0.0.1", "localhost"])
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    // readable by all: mosquitto started as root reads them as its own unprivileged user
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    format!(
        "cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
        dir.display()
    )
}

fn lastwill(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .current_dir(root)
        .args(args)
        .output()
        .expect("run lastwill")
}

#[test]
fn scenarios_and_storms_run_over_tls() {
    if !crate::mosquitto::available("scenarios_and_storms_run_over_tls") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = std::env::temp_dir().join(format!("lastwill-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls = certificates(&dir);
    let mosquitto = Mosquitto::start(&dir, "tls", &tls);
    let target = format!("mqtts://127.0.0.1:{}", mosquitto.port);
    let ca_file = dir.join("ca.pem");
    let ca_file = ca_file.to_str().unwrap();

    for trust in [&["--ca-file", ca_file][..], &["--insecure"]] {
        let mut args = vec!["run", "--target", &target];
        args.extend_from_slice(trust);
        args.extend_from_slice(SCENARIOS);
        let output = lastwill(root, &args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("3 passed, 0 failed"),
            "{trust:?}: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // the CA is not among the Mozilla roots
    let output = lastwill(root, &["run", "--target", &target, SCENARIOS[0]]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the broker's certificate is not trusted: no CA in --ca-file"),
        "{stderr}"
    );

    let output = lastwill(
        root,
        &[
            "bench",
            "--target",
            &target,
            "--ca-file",
            ca_file,
            "--clients",
            "200",
            "--format",
            "json",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["delivered"], 200, "{report}");
    drop(mosquitto);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mosquitto serves a self-signed certificate and requires a client certificate signed by
/// `client-ca.pem`: lastwill runs with the server's certificate as `--ca-file` and the client's
/// as `--cert`/`--key`, like mosquitto_pub with the same files; without a client certificate it
/// stops at the start with one line.
#[test]
fn self_signed_server_and_client_certificates() {
    if !crate::support::peers_available(
        "self_signed_server_and_client_certificates",
        &["mosquitto", "mosquitto_pub"],
        "apt-get install mosquitto mosquitto-clients",
    ) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = std::env::temp_dir().join(format!("lastwill-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server, server_key) = self_signed("mosquitto", &["127.0.0.1", "localhost"]);
    let (client_ca, client_ca_key) = self_signed("lastwill client CA", &[]);
    let client_key = KeyPair::generate().unwrap();
    let client = params("device-1", &[])
        .signed_by(&client_key, &client_ca, &client_ca_key)
        .unwrap();
    for (name, pem) in [
        ("server.pem", server.pem()),
        ("server.key", server_key.serialize_pem()),
        ("client-ca.pem", client_ca.pem()),
        ("client.pem", client.pem()),
        ("client.key", client_key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let mosquitto = Mosquitto::start(
        &dir,
        "mtls",
        &format!(
            "certfile {}\nkeyfile {}\ncafile {}\nrequire_certificate true\n",
            path("server.pem"),
            path("server.key"),
            path("client-ca.pem")
        ),
    );
    let port = mosquitto.port.to_string();
    let target = format!("mqtts://127.0.0.1:{port}");
    let (ca_file, cert, key) = (path("server.pem"), path("client.pem"), path("client.key"));

    let published = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "lastwill/mtls",
            "-m",
            "x",
        ])
        .args(["--cafile", &ca_file, "--cert", &cert, "--key", &key])
        .output()
        .unwrap();
    assert!(
        published.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&published.stderr)
    );

    let mut args = vec!["run", "--target", &target, "--ca-file", &ca_file];
    args.extend_from_slice(&["--cert", &cert, "--key", &key]);
    args.extend_from_slice(SCENARIOS);
    let output = lastwill(root, &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("3 passed, 0 failed"),
        "{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = lastwill(
        root,
        &[
            "run",
            "--target",
            &target,
            "--ca-file",
            &ca_file,
            SCENARIOS[0],
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{target}: cannot connect: the broker requires a client certificate: give --cert and --key"
        )),
        "{stderr}"
    );
    drop(mosquitto);
    let _ = std::fs::remove_dir_all(&dir);
}
