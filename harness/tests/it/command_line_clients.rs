//! What the tests that drive the `lastwill broker` binary with real command-line MQTT clients
//! share (`mosquitto_clients`: Debian's `mosquitto_sub`/`mosquitto_pub`; `mqttjs_cli`:
//! MQTT.js's `mqtt sub`/`mqtt pub`): the client processes, the broker they talk to, and a
//! subscriber whose printed lines the test reads.
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

/// A family of command-line clients. Both commands take `-h HOST -p PORT -t TOPIC`, the
/// publisher `-m MESSAGE` too, and the subscriber's leading arguments make it print each
/// message as one `TOPIC PAYLOAD` line.
pub struct Clients {
    /// Program and leading arguments of the subscriber.
    pub subscribe: Vec<String>,
    /// Program and leading arguments of the publisher, which publishes one message and exits.
    pub publish: Vec<String>,
}

impl Clients {
    fn command(program_and_args: &[String]) -> Command {
        let (program, args) = program_and_args.split_first().expect("a program");
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

/// Kills and reaps the child process when dropped, so no test leaves processes behind.
pub struct Process {
    name: String,
    pub child: Child,
}

impl Process {
    pub fn spawn(command: &mut Command) -> Process {
        let name = format!("{command:?}");
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        Process { name, child }
    }

    /// SIGKILL: the process gets no chance to send DISCONNECT.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
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

/// A running `lastwill broker` on a free local port, logging at debug level to a file, and
/// the clients the test talks to it with.
pub struct Broker {
    process: ReferenceBroker,
    pub log: PathBuf,
    clients: Clients,
}

impl Broker {
    /// `name` names the log file, `target/tmp/broker-NAME.log`.
    pub fn start(name: &str, clients: Clients) -> Broker {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("broker-{name}.log"));
        let log_file = std::fs::File::create(&log).expect("broker log file");
        let process =
            ReferenceBroker::start(&["--listen", "127.0.0.1:0"], "debug", log_file.into());
        Broker {
            process,
            log,
            clients,
        }
    }

    /// A command of the broker's client family, pointed at it.
    fn command(&self, program_and_args: &[String]) -> Command {
        let mut command = Clients::command(program_and_args);
        // Where the broker listens, whatever `localhost` resolves to.
        command.args(["-h", "127.0.0.1", "-p", &self.process.port.to_string()]);
        command
    }

    /// The publisher, pointed at the broker, for the test to add its arguments to.
    pub fn publisher(&self) -> Command {
        self.command(&self.clients.publish)
    }

    /// Publishes `message` on `topic` once and waits for the publisher to exit successfully.
    /// The publisher client publishes once on `other` with the will `will_args` and ends with
    /// DISCONNECT, so the will is discarded [MQTT-3.14.4-3]: `watcher` receives nothing.
    pub fn publish_then_disconnect(&self, will_args: &[&str], watcher: &Subscriber) {
        let mut publisher = Process::spawn(
            self.publisher()
                .args(["-t", "other", "-m", "hello"])
                .args(will_args)
                .stdout(Stdio::null()),
        );
        let status = publisher.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "the publisher failed: {status}");
        if let Some((_, line)) = watcher.next_line(Duration::from_secs(3)) {
            panic!(
                "got `{line}` after a clean DISCONNECT; broker log: {}",
                self.log.display()
            );
        }
    }

    pub fn pub_once(&self, topic: &str, message: &str) {
        let status = self
            .publisher()
            .args(["-t", topic, "-m", message])
            .stdout(Stdio::null())
            .status()
            .expect("run the publisher");
        assert!(status.success(), "publishing failed: {status}");
    }
}

/// A subscriber process and the lines it printed, each with when it was read.
pub struct Subscriber {
    pub process: Process,
    lines: mpsc::Receiver<(Instant, String)>,
    probe_topic: String,
}

impl Subscriber {
    /// Starts the broker's subscriber with `args`, also subscribed to a probe topic, and
    /// returns once a probe published by the test has come back (so its subscriptions are
    /// active).
    pub fn start(broker: &Broker, probe: &str, args: &[&str]) -> Subscriber {
        let probe_topic = format!("probe/{probe}");
        let mut command = broker.command(&broker.clients.subscribe);
        command
            .args(["-t", &probe_topic])
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
    pub fn next_line(&self, limit: Duration) -> Option<(Instant, String)> {
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
