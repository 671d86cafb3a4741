//! `mqtts://` targets against mosquitto serving TLS with a certificate from a throw-away CA:
//! scenarios and a will storm pass with `--ca-file` (and with `--insecure`), and an untrusted
//! certificate is a one-line error. Over TLS, `drop rst` still resets the TCP connection
//! underneath, so the will triggers are the same as over plain TCP.
//!
//! Needs the `mosquitto` binary (Debian: `apt-get install mosquitto`). Without it the test
//! says so loudly and passes, unless `LASTWILL_REQUIRE_PEERS=1` (as `.ci/run` sets), which
//! turns the skip into a failure.

#[path = "support/mosquitto.rs"]
mod mosquitto;
mod support;

use std::path::Path;
use std::process::{Command, Output};

use mosquitto::Mosquitto;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

const SCENARIOS: &[&str] = &[
    "scenarios/will-trigger/drop-rst-publishes-will.yaml",
    "scenarios/will-trigger/drop-fin-publishes-will-v311.yaml",
    "scenarios/will-trigger/drop-rst-with-will-delay.yaml",
];

/// Writes a CA certificate and a server certificate for 127.0.0.1 signed by it; returns the
/// mosquitto configuration lines that serve it.
fn certificates(dir: &Path) -> String {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
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
    if !mosquitto::available("scenarios_and_storms_run_over_tls") {
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
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");

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
