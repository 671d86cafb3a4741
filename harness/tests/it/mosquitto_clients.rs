//! The `lastwill broker` binary against real clients: Debian's `mosquitto-clients`.
//!
//! Each test starts the built binary on a free port and drives it with `mosquitto_sub` and
//! `mosquitto_pub` over real TCP: a killed client's will is delivered, a v5 will delay is
//! honoured, and a clean DISCONNECT discards the will.
//!
//! When `mosquitto_sub` is not installed the tests print a loud SKIPPED notice and pass, unless
//! `LASTWILL_REQUIRE_PEERS=1` is set (CI), in which case they fail. Install the clients with
//! `apt-get install mosquitto-clients`.
//!
//! These tests run real processes, so they use real (bounded) waits. Readiness is checked by
//! round-trips, not by sleeping: a client is known to be subscribed once a probe message
//! published to its probe topic comes back out of it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::reference_broker::ReferenceBroker;

const WILL_PAYLOAD: &str = "A will message from MQTTX CLI";

/// Kills and reaps the child process when dropped, so no test leaves processes behind.
struct Process {
    name: String,
    child: Child,
}

impl Process {
    fn spawn(command: &mut Command) -> Process {
        let name = format!("{command:?}");
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        Process { name, child }
    }

    /// SIGKILL: the process gets no chance to send DISCONNECT.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself, at most `limit`.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "{} did not exit within {limit:?}",
                self.name
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `true` when the mosquitto clients can be used (see [`crate::support::peers_available`]).
fn peers_available(test: &str) -> bool {
    crate::support::peers_available(
        test,
        &["mosquitto_sub", "mosquitto_pub"],
        "apt-get install mosquitto-clients",
    )
}

/// A running `lastwill broker` on a free local port, logging at debug level to a file.
struct Broker {
    process: ReferenceBroker,
    log: PathBuf,
}

impl Broker {
    fn start(name: &str) -> Broker {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("broker-{name}.log"));
        let log_file = std::fs::File::create(&log).expect("broker log file");
        let process =
            ReferenceBroker::start(&["--listen", "127.0.0.1:0"], "debug", log_file.into());
        Broker { process, log }
    }

    fn port(&self) -> String {
        self.process.port.to_string()
    }

    fn pub_once(&self, topic: &str, message: &str) {
        let status = Command::new("mosquitto_pub")
            .args(["-p", &self.port(), "-t", topic, "-m", message])
            .status()
            .expect("mosquitto_pub");
        assert!(status.success(), "mosquitto_pub failed: {status}");
    }
}

/// A `mosquitto_sub -v` process and the lines it printed, each with when it was read.
struct Subscriber {
    process: Process,
    lines: mpsc::Receiver<(Instant, String)>,
    probe_topic: String,
}

impl Subscriber {
    /// Starts `mosquitto_sub -v` with `args`, also subscribed to a probe topic, and returns
    /// once a probe published by the test has come back (so its subscriptions are active).
    fn start(broker: &Broker, probe: &str, args: &[&str]) -> Subscriber {
        let probe_topic = format!("probe/{probe}");
        let mut command = Command::new("mosquitto_sub");
        command
            .args(["-p", &broker.port(), "-v", "-t", &probe_topic])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut process = Process::spawn(&mut command);
        let stdout = process.child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut subscriber = Subscriber {
            process,
            lines,
            probe_topic,
        };
        subscriber.wait_ready(broker);
        subscriber
    }

    fn wait_ready(&mut self, broker: &Broker) {
        let start = Instant::now();
        let expected = format!("{} ready", self.probe_topic);
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} never became ready; broker log: {}",
                self.process.name,
                broker.log.display()
            );
            broker.pub_once(&self.probe_topic, "ready");
            if let Ok((_, line)) = self.lines.recv_timeout(Duration::from_millis(200))
                && line == expected
            {
                // Drain duplicates of the probe that may still arrive.
                while self.lines.recv_timeout(Duration::from_millis(50)).is_ok() {}
                return;
            }
        }
    }

    /// The next line that is not a probe, within `limit`.
    fn next_line(&self, limit: Duration) -> Option<(Instant, String)> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok((_, line)) if line.starts_with("probe/") => continue,
                Ok(item) => return Some(item),
                Err(_) => return None,
            }
        }
    }
}

#[test]
fn will_of_a_killed_client_is_delivered() {
    if !peers_available("will_of_a_killed_client_is_delivered") {
        return;
    }
    let broker = Broker::start("killed");
    let watcher = Subscriber::start(&broker, "watcher", &["-t", "t/1"]);
    let mut device = Subscriber::start(
        &broker,
        "device",
        &["--will-topic", "t/1", "--will-payload", WILL_PAYLOAD],
    );
    device.process.kill();
    let (_, line) = watcher
        .next_line(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no will within 10 s; broker log: {}", broker.log.display()));
    assert_eq!(line, format!("t/1 {WILL_PAYLOAD}"));
}

#[test]
fn v5_will_delay_is_honoured() {
    if !peers_available("v5_will_delay_is_honoured") {
        return;
    }
    let broker = Broker::start("delay");
    let watcher = Subscriber::start(&broker, "watcher", &["-V", "5", "-t", "t/1"]);
    let mut device = Subscriber::start(
        &broker,
        "device",
        &[
            "-V",
            "5",
            // The will is due at min(close + delay, session end): keep the session longer.
            "-x",
            "60",
            "-D",
            "will",
            "will-delay-interval",
            "2",
            "--will-topic",
            "t/1",
            "--will-payload",
            WILL_PAYLOAD,
        ],
    );
    let killed = Instant::now();
    device.process.kill();
    let (at, line) = watcher
        .next_line(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no will within 10 s; broker log: {}", broker.log.display()));
    assert_eq!(line, format!("t/1 {WILL_PAYLOAD}"));
    let after = at.duration_since(killed);
    assert!(
        after >= Duration::from_secs(2),
        "will arrived {after:?} after the kill, before its 2 s delay; broker log: {}",
        broker.log.display()
    );
    assert!(
        after < Duration::from_secs(6),
        "will arrived {after:?} after the kill"
    );
}

#[test]
fn will_of_a_cleanly_disconnected_client_is_discarded() {
    if !peers_available("will_of_a_cleanly_disconnected_client_is_discarded") {
        return;
    }
    let broker = Broker::start("clean");
    let watcher = Subscriber::start(&broker, "watcher", &["-t", "t/1"]);
    let mut publisher = Process::spawn(
        Command::new("mosquitto_pub")
            .args(["-p", &broker.port(), "-t", "other", "-m", "hello"])
            .args(["--will-topic", "t/1", "--will-payload", "x"])
            .stdout(Stdio::null()),
    );
    let status = publisher.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "mosquitto_pub failed: {status}");
    if let Some((_, line)) = watcher.next_line(Duration::from_secs(3)) {
        panic!(
            "got `{line}` after a clean DISCONNECT; broker log: {}",
            broker.log.display()
        );
    }
    // Control: the watcher does still receive what is published on t/1.
    broker.pub_once("t/1", "control");
    let (_, line) = watcher
        .next_line(Duration::from_secs(10))
        .expect("control message");
    assert_eq!(line, "t/1 control");
}
