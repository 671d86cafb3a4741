//! The `lastwill` binary's promises to its users: a bad target or file is one line on stderr
//! and a non-zero exit (never a hang or a panic), and `--format junit` is well-formed XML.

use crate::reference_broker;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use crate::lastwill;
use std::time::{Duration, Instant};

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

// ---- selecting scenarios ------------------------------------------------------------------

/// The catalogue's scenarios, parsed, with their keys.
fn catalogue() -> Vec<(String, lastwill::scenario::Scenario)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    lastwill::scenario::discover(&root)
        .iter()
        .map(|file| {
            let scenario = lastwill::scenario::load(file).unwrap();
            (lastwill::scenario::key(&scenario.file), scenario)
        })
        .collect()
}

/// The keys in the first column of a `list` table, in order.
fn listed(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("│ "))
        .filter_map(|row| row.split('┆').next())
        .map(|key| key.trim().to_owned())
        .filter(|key| !key.is_empty() && key != "scenario")
        .collect()
}

#[test]
fn list_shows_each_selected_scenario_with_its_tags_protocol_level_and_length() {
    let output = lastwill(&["list", "--tag", "takeover"]);
    assert!(output.status.success(), "{output:?}");
    let expected: Vec<String> = catalogue()
        .into_iter()
        .filter(|(_, s)| s.tags.iter().any(|t| t == "takeover"))
        .map(|(key, _)| key)
        .collect();
    assert!(expected.len() > 3, "the catalogue has takeover scenarios");
    assert_eq!(listed(&output), expected);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for header in ["name", "tags", "protocol", "level", "lasts", "refs"] {
        assert!(stdout.contains(header), "no column {header}:\n{stdout}");
    }
    assert!(
        stdout.contains(&format!("{} scenarios", expected.len())),
        "{stdout}"
    );

    let output = lastwill(&["list", "--name", "will-delay/*", "--name", "*takeover*"]);
    let expected: Vec<String> = catalogue()
        .into_iter()
        .filter(|(key, s)| {
            key.starts_with("will-delay/")
                || key.contains("takeover")
                || s.name.contains("takeover")
        })
        .map(|(key, _)| key)
        .collect();
    assert_eq!(listed(&output), expected);
}

#[test]
fn run_and_matrix_take_only_the_selected_scenarios() {
    let output = lastwill(&[
        "run",
        "--tag",
        "takeover",
        "--name",
        "takeover/*",
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ran: Vec<String> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| lastwill::scenario::key(s["file"].as_str().unwrap()))
        .collect();
    let expected: Vec<String> = catalogue()
        .into_iter()
        .filter(|(key, s)| key.starts_with("takeover/") && s.tags.iter().any(|t| t == "takeover"))
        .map(|(key, _)| key)
        .collect();
    assert_eq!(ran, expected);

    let output = lastwill(&["matrix", "--target", "ref", "--name", "takeover/*"]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // the summary is on the terminal, not only in a Markdown file
    let summary = format!(
        "ref: {} pass, 0 fail, 0 warn, 0 skip, 0 intermittent",
        expected.len()
    );
    assert!(stdout.contains(&summary), "{stdout}");

    let output = lastwill(&["run", "--tag", "no-such-tag"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("no scenario matches --tag no-such-tag"));
}

// ---- bad input is found before a run, all of it -------------------------------------------

#[test]
fn every_broken_file_is_reported_with_its_position() {
    let dir = std::env::temp_dir().join(format!("lastwill-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = |steps: &str| format!("name: x\nclients: {{a: {{}}}}\nsteps:\n{steps}");
    std::fs::write(
        dir.join("a.yaml"),
        scenario("  - a: {connect: {clean_strat: 1}}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("b.yaml"), scenario("  - wait: 3\n")).unwrap();
    std::fs::write(dir.join("c.yaml"), scenario("  - a: connect\n")).unwrap();
    std::fs::write(dir.join("d.yaml"), scenario("  - wait: 25h\n")).unwrap();
    let output = lastwill(&["run", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(lines[0].ends_with("a.yaml:4:19: unknown key `clean_strat` in `connect`; expected one of: client_id, clean_start, keep_alive, session_expiry, username, password, will, receive_maximum, maximum_packet_size, topic_alias_maximum, request_response_information, request_problem_information, authentication_method, authentication_data, user_properties (did you mean `clean_start`?)"), "{stderr}");
    assert!(
        lines[1].contains("b.yaml:4:11: invalid duration `3`"),
        "{stderr}"
    );
    // past the simulator's horizon: refused where it is written, not 50 s into a run
    assert!(
        lines[2].contains("d.yaml:4:5: this step could end 25h into the run, past the 24h"),
        "{stderr}"
    );
    assert_eq!(lines[3], "lastwill: 3 of 4 files are not valid scenarios");
    assert!(output.stdout.is_empty(), "nothing ran");
}

#[test]
fn report_paths_are_checked_before_the_run_starts() {
    let missing = std::env::temp_dir().join(format!("lastwill-no-such-dir-{}", std::process::id()));
    let report = missing.join("report.xml");
    let output = lastwill(&[
        "run",
        "--format",
        "junit",
        "--output",
        report.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(
        error.ends_with("report.xml: no such file or directory"),
        "{error}"
    );
    for format in ["table", "markdown", "json", "junit", "html"] {
        let output = lastwill(&[
            "matrix",
            "--target",
            "ref",
            "--format",
            format,
            "--output",
            report.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(2), "{format}");
        // one line: no matrix was run, and nothing else was printed
        assert!(
            one_line_error(&output).ends_with("no such file or directory"),
            "{format}"
        );
        assert!(output.stdout.is_empty(), "{format}");
    }
}

#[test]
fn a_one_hour_wait_runs_in_virtual_time() {
    let dir = std::env::temp_dir().join(format!("lastwill-hour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hour.yaml");
    std::fs::write(
        &file,
        "name: an hour later the connection is still there\nclients: {a: {}}\nsteps:\n  \
         - a: {connect: {keep_alive: 600}}\n  - wait: 1h\nexpect:\n  a: {connected: true}\n",
    )
    .unwrap();
    let output = lastwill(&["run", file.to_str().unwrap(), "--format", "json"]);
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let scenario = &report["scenarios"][0];
    assert_eq!(scenario["status"], "pass", "{report}");
    assert!(
        scenario["covered_s"].as_f64().unwrap() >= 3600.0,
        "{report}"
    );
}

// ---- exit codes ---------------------------------------------------------------------------

#[test]
fn a_port_in_use_is_a_usage_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = lastwill(&["broker", "--listen", &address]);
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(
        error.contains(&format!(
            "cannot listen on {address}: address already in use"
        )),
        "{error}"
    );
}

#[test]
fn every_connection_flag_says_what_it_does() {
    let output = lastwill(&["run", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--ca-file", "--insecure", "--username", "--password"] {
        let at = help
            .find(&format!("      {flag}"))
            .unwrap_or_else(|| panic!("{help}"));
        // the flag's line, then its description up to the next flag
        let description: Vec<&str> = help[at..]
            .lines()
            .skip(1)
            .take_while(|line| !line.trim_start().starts_with('-'))
            .filter(|line| !line.trim().is_empty())
            .collect();
        assert!(!description.is_empty(), "{flag} has no help:\n{help}");
    }
}

// ---- a target that dies -------------------------------------------------------------------

#[test]
fn a_broker_that_dies_mid_run_ends_the_run_within_seconds() {
    let broker = reference_broker::ReferenceBroker::start(
        &["--listen", "127.0.0.1:0"],
        "warn",
        std::process::Stdio::null(),
    );
    let target = format!("mqtt://127.0.0.1:{}", broker.port);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // the will-delay folder takes over 30 s on a live broker: its scenarios wait out delays
    let mut run = Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .current_dir(root)
        .args(["run", "scenarios/will-delay", "--target", &target])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run ended before the broker died"
    );
    drop(broker);
    let died = Instant::now();
    while run.try_wait().unwrap().is_none() && died.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended_after = died.elapsed();
    let output = run.wait_with_output().unwrap();
    assert!(
        ended_after < Duration::from_secs(10),
        "the run went on for {ended_after:?} after the broker died"
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .find(|line| line.starts_with("lastwill: error: "))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        error.contains(&format!(
            "{target} stopped answering: cannot connect: connection refused"
        )),
        "{error}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let not_run = stdout
        .lines()
        .filter(|l| l.starts_with("│ not run"))
        .count();
    assert!(not_run > 0, "{stdout}");
    assert!(
        error.contains(&format!("; {not_run} of ")),
        "{error}\n{stdout}"
    );
    assert!(stdout.contains(&format!(", {not_run} not run")), "{stdout}");
}
