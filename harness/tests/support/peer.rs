//! A real broker started by its `peers/<name>.sh start` (see peers/README.md): the script runs
//! the broker in its foreground, prints one line of `LABEL=mqtt://127.0.0.1:PORT` fields once
//! it listens, and stops it on SIGTERM. Test files that include this module also declare
//! `mod support;` (as `tests/it/main.rs` does).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("peers")
        .join(format!("{name}.sh"))
}

/// `true` when `peers/<name>.sh installed` says the pinned version is there; otherwise a loud
/// skip naming `peers/<name>.sh install`, or a failure under `LASTWILL_REQUIRE_PEERS=1`
/// (`support::peers_skipped`).
pub fn installed(test: &str, name: &str) -> bool {
    let status = Command::new("bash")
        .arg(script(name))
        .arg("installed")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the peer's script");
    status.success()
        || crate::support::peers_skipped(test, name, &format!("peers/{name}.sh install"))
}

/// A running broker; stopped (SIGTERM to its script, which stops the broker's process group)
/// when dropped.
pub struct Peer {
    name: String,
    child: Child,
    /// The fields of the address line, in order: (`mqtt`, `mqtt://127.0.0.1:PORT`), or
    /// (`v311`, …), (`v5`, …) for rumqttd.
    pub addresses: Vec<(String, String)>,
}

impl Peer {
    /// Runs `peers/<name>.sh start` and waits for its address line (the script gives up by
    /// itself when the broker does not listen in time). Panics with the script's stderr if it
    /// exits without one.
    pub fn start(name: &str) -> Peer {
        let log = tempfile(name);
        let mut child = Command::new("bash")
            .arg(script(name))
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create the peer's log"))
            .spawn()
            .expect("run the peer's script");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the peer's address line");
        let addresses: Vec<(String, String)> = line
            .split_whitespace()
            .filter_map(|field| field.split_once('='))
            .map(|(label, url)| (label.to_owned(), url.to_owned()))
            .collect();
        if addresses.is_empty() {
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("peers/{name}.sh start printed no address line:\n{stderr}");
        }
        let _ = std::fs::remove_file(&log);
        Peer {
            name: name.to_owned(),
            child,
            addresses,
        }
    }

    /// The `host:port` of the field labelled `label`.
    pub fn authority(&self, label: &str) -> &str {
        let url = self
            .addresses
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, url)| url)
            .unwrap_or_else(|| panic!("peers/{}.sh printed no {label}= address", self.name));
        url.strip_prefix("mqtt://").unwrap_or(url)
    }
}

/// One lastwill target over identical instances (`mqtt://a,b,c`: independent brokers, the
/// exclusive scenarios run side by side, one per instance).
pub fn target(peers: &[Peer]) -> String {
    let label = if peers[0].addresses.iter().any(|(l, _)| l == "v5") {
        "v5"
    } else {
        "mqtt"
    };
    let authorities: Vec<&str> = peers.iter().map(|p| p.authority(label)).collect();
    format!("mqtt://{}", authorities.join(","))
}

fn tempfile(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "lastwill-peer-{name}-{}-{n}.log",
        std::process::id()
    ))
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SIGTERM, not kill(): the script's trap stops the broker's whole process group.
        // SAFETY: kill(2) on our own child's pid, which wait() below has not yet reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}
