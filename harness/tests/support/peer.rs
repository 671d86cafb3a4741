//! A real broker started by its script, `peers/<name>.sh start` (see `peers/README.md`): the
//! script prints one line of `LABEL=mqtt://127.0.0.1:PORT` fields once the broker listens,
//! and stops it on SIGTERM. Test files that include this module also declare `mod support;`
//! (as `tests/it/main.rs` does).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A broker running under its `peers/<name>.sh start`; stopped (SIGTERM to the script, which
/// stops the broker's process group) when dropped.
pub struct Peer {
    child: Child,
    /// The fields of the ready line: label (`mqtt`, `v311`, `v5`, `node1`…) to address
    /// (`mqtt://127.0.0.1:PORT`).
    pub addresses: BTreeMap<String, String>,
}

/// How long a script may take to print its ready line: its own start timeout is 60 s.
const READY_LIMIT: Duration = Duration::from_secs(90);

impl Peer {
    /// Starts `peers/<name>.sh start` and waits for its ready line. `None` when the peer is
    /// not installed: said loudly, with the command that installs it, or a failure when
    /// `LASTWILL_REQUIRE_PEERS=1` (see `support::peers_available`). Any other failure to
    /// start fails the test, with the end of the script's stderr.
    pub fn start(test: &str, name: &str) -> Option<Peer> {
        Peer::launch(test, name, Command::new(script(name)).arg("start"))
    }

    /// As [`Peer::start`], for `peers/<name>.sh start-cluster NODES`, with the cluster's
    /// runtime state in `run_dir` (for `peers/<name>.sh node RUN_DIR kill|restart I`).
    pub fn start_cluster(test: &str, name: &str, nodes: usize, run_dir: &Path) -> Option<Peer> {
        let mut command = Command::new(script(name));
        command
            .args(["start-cluster", &nodes.to_string()])
            .env("LASTWILL_PEERS_RUN_DIR", run_dir);
        Peer::launch(test, name, &mut command)
    }

    fn launch(test: &str, name: &str, command: &mut Command) -> Option<Peer> {
        let script = script(name);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(READY_LIMIT).unwrap_or_default();
        if line.trim().is_empty() {
            let _ = child.kill();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            let _ = child.wait();
            // every script's `start` refuses with this when its `install` has not run
            if stderr.contains("not installed") {
                let install = format!("{} install", script.display());
                crate::support::peer_missing(test, name, &install);
                return None;
            }
            panic!(
                "{} {:?} printed no address line; stderr:\n{stderr}",
                script.display(),
                command.get_args().collect::<Vec<_>>()
            );
        }
        // the script logs to stderr for as long as it runs: drain it so it never blocks
        if let Some(mut err) = child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        }
        let addresses = line
            .split_whitespace()
            .filter_map(|field| field.split_once('='))
            .map(|(label, address)| (label.to_owned(), address.to_owned()))
            .collect();
        Some(Peer { child, addresses })
    }

    /// The address labelled `label` in the ready line.
    pub fn address(&self, label: &str) -> &str {
        self.addresses
            .get(label)
            .unwrap_or_else(|| panic!("no `{label}=` in the ready line {:?}", self.addresses))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SIGTERM: the script stops the broker's whole process group, then exits
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("peers")
        .join(format!("{name}.sh"))
}

/// Real-broker matrices that may run at once. A matrix against a real broker mostly waits on
/// the broker's timers (keep-alive expiry, will delays): two side by side kept the load
/// average near 1 on the project's 2 cores, so their timing rows stay as quiet as alone,
/// while the gates' wall time halves. More at once would start to compete for the cores.
const MATRIX_SLOTS: usize = 2;

static MATRICES_RUNNING: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// A place among the [`MATRIX_SLOTS`] real-broker matrices, held until dropped.
pub struct MatrixSlot(());

impl MatrixSlot {
    /// Waits for a free slot.
    pub fn take() -> MatrixSlot {
        let (running, freed) = &MATRICES_RUNNING;
        let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= MATRIX_SLOTS {
            running = freed.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        MatrixSlot(())
    }
}

impl Drop for MatrixSlot {
    fn drop(&mut self) {
        let (running, freed) = &MATRICES_RUNNING;
        *running.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        freed.notify_one();
    }
}
