//! The `lastwill` binary's promises to its users: a bad target or file is one line on stderr
//! and a non-zero exit (never a hang or a panic), and `--format junit` is well-formed XML.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn lastwill(args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .current_dir(root)
        .args(args)
        .output()
        .expect("run lastwill")
}

/// The one line of an error, checked to be the only line on stderr.
fn one_line_error(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr)
        .trim_end()
        .to_owned();
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line, got:\n{stderr}"
    );
    assert!(stderr.starts_with("lastwill: error: "), "{stderr}");
    stderr
}

/// A free loopback port nobody listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn nothing_listening_is_one_line_and_exit_2() {
    let target = format!("mqtt://127.0.0.1:{}", closed_port());
    let output = lastwill(&["run", "scenarios/will-trigger", "--target", &target]);
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(error.contains("cannot connect"), "{error}");
}

/// Serves `reply` to every connection on a free port, from a background thread.
fn fake_server(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 256];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(reply);
            // keep the connection open for a while, like a server that is not MQTT
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    port
}

#[test]
fn a_server_that_is_not_mqtt_is_one_line_and_exit_2() {
    let port = fake_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    let started = Instant::now();
    let output = lastwill(&["run", "--target", &format!("mqtt://127.0.0.1:{port}")]);
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(
        error.contains("does not answer like an MQTT broker"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_bad_target_url_is_one_line() {
    let output = lastwill(&["run", "--target", "http://example"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("expected `sim`, mqtt://HOST:PORT"));
}

#[test]
fn a_bad_scenario_file_is_one_line_with_its_position() {
    let dir = std::env::temp_dir().join(format!("lastwill-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("typo.yaml");
    std::fs::write(
        &file,
        "name: x\nclients: {a: {}}\nsteps:\n  - a: {connect: {clean_strat: false}}\n",
    )
    .unwrap();
    let output = lastwill(&["run", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(
        error.contains("typo.yaml:4:19: unknown key `clean_strat`"),
        "{error}"
    );
    assert!(error.contains("did you mean `clean_start`?"), "{error}");
}

#[test]
fn junit_output_is_well_formed_xml_with_one_case_per_scenario() {
    let dir = std::env::temp_dir().join(format!("lastwill-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.xml");
    let output = lastwill(&[
        "run",
        "scenarios/takeover",
        "--format",
        "junit",
        "--output",
        report.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let xml = std::fs::read_to_string(&report).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut depth, mut cases) = (0i32, 0);
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) => {
                depth += 1;
                cases += usize::from(e.name().as_ref() == b"testcase");
            }
            quick_xml::events::Event::Empty(e) => {
                cases += usize::from(e.name().as_ref() == b"testcase")
            }
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced elements");
    let scenarios =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/takeover"))
            .unwrap()
            .count();
    assert_eq!(cases, scenarios);
}

/// The JSON report of a `lastwill bench` run that succeeded.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let mut line = vec!["bench", "--format", "json"];
    line.extend_from_slice(args);
    let output = lastwill(&line);
    assert!(
        output.status.success(),
        "lastwill {line:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("bench --format json prints JSON")
}

#[test]
fn bench_storms_the_embedded_reference_broker_and_counts_every_will() {
    for (qos, drop) in [("0", "rst"), ("1", "fin"), ("2", "rst")] {
        let report = bench_json(&[
            "--clients",
            "200",
            "--subscribers",
            "3",
            "--qos",
            qos,
            "--drop",
            drop,
        ]);
        assert_eq!(report["expected"], 600, "{report}");
        assert_eq!(report["delivered"], 600, "{report}");
        assert_eq!(report["missing"], 0, "{report}");
        assert_eq!(report["early"], 0, "{report}");
        assert_eq!(report["qos"], qos.parse::<u8>().unwrap(), "{report}");
        assert!(
            report["latency_ms"]["max"].as_f64().unwrap() >= 0.0,
            "{report}"
        );
    }
}

#[test]
fn bench_rounds_are_summed_up_in_one_report() {
    let report = bench_json(&["--clients", "50", "--subscribers", "2", "--rounds", "3"]);
    assert_eq!(report["rounds"], 3, "{report}");
    assert_eq!(report["delivered"], 100, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
}

#[test]
fn bench_waits_out_a_will_delay() {
    let report = bench_json(&["--clients", "50", "--will-delay", "1", "--protocol", "5"]);
    assert_eq!(report["delivered"], 50, "{report}");
    assert_eq!(report["early"], 0, "{report}");
    // a will delayed by 1 s arrives no sooner than that after its own client's close
    assert!(
        report["first_will_ms"].as_f64().unwrap() >= 1000.0,
        "{report}"
    );
}

#[test]
fn bench_errors_are_one_line() {
    let target = format!("mqtt://127.0.0.1:{}", closed_port());
    let output = lastwill(&["bench", "--target", &target]);
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("cannot connect"));
    let output = lastwill(&["bench", "--protocol", "3.1.1", "--will-delay", "5"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("--will-delay needs --protocol 5"));
}
