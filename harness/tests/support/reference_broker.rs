//! The built `lastwill broker` binary as a child process, on a port the OS chose.
//!
//! Picking a free port in the test and handing it to the broker leaves a window in which
//! another broker of the same test (they start in parallel) can be handed the same port: one of
//! them then fails to bind and its test talks to the other's broker. Instead the broker is told
//! to listen on port 0 and the test reads the address it announces on stdout once bound.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a broker may take to bind and announce its address.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A running `lastwill broker`; killed and reaped when dropped.
pub struct ReferenceBroker {
    child: Child,
    pub port: u16,
}

impl ReferenceBroker {
    /// Runs `lastwill broker ARGS`, whose listen address must have port 0 (from `--listen` or
    /// the configuration file), with `stderr` as the broker's log, and waits for its
    /// `lastwill broker listening on ADDR` line.
    pub fn start(args: &[&str], log_level: &str, stderr: Stdio) -> ReferenceBroker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lastwill"))
            .arg("broker")
            .args(args)
            .env("RUST_LOG", log_level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start lastwill broker");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut broker = ReferenceBroker { child, port: 0 };
        let line = rx
            .recv_timeout(START_LIMIT)
            .unwrap_or_else(|_| panic!("lastwill broker {args:?} did not announce its address"));
        let Some(port) = line
            .trim_end()
            .strip_prefix("lastwill broker listening on ")
            .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
            .map(|addr| addr.port())
        else {
            // A broker that already exited keeps its own status; one still running is killed.
            let _ = broker.child.kill();
            let status = broker.child.wait().ok();
            panic!("lastwill broker {args:?} did not start ({status:?}); it printed {line:?}");
        };
        broker.port = port;
        broker
    }
}

impl Drop for ReferenceBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
