//! Debian's `mosquitto` as a child process on a free loopback port. Test files that include
//! this module also declare `mod support;` (as `tests/it/main.rs` does).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `true` when the `mosquitto` binary can be run (see `support::peers_available`: a loud skip,
/// or a failure under `LASTWILL_REQUIRE_PEERS=1`).
pub fn available(test: &str) -> bool {
    crate::support::peers_available(test, &["mosquitto"], "apt-get install mosquitto")
}

/// A running mosquitto, anonymous clients allowed, no persistence; killed when dropped.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
}

impl Mosquitto {
    /// Starts mosquitto with its configuration, plus the `extra` lines, written to
    /// `dir/mosquitto-<name>.conf`.
    pub fn start(dir: &Path, name: &str, extra: &str) -> Mosquitto {
        // mosquitto cannot be told to pick a port itself: pick one, and check below that the
        // process listening on it is this mosquitto
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join(format!("mosquitto-{name}.conf"));
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n{extra}"
            ),
        )
        .unwrap();
        let mut mosquitto = Mosquitto {
            child: Command::new("mosquitto")
                .arg("-c")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mosquitto"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Something listens on the port; if mosquitto itself exited, it lost the port to
        // another process between our pick and its bind, and that is not the broker to test.
        if let Some(status) = mosquitto.child.try_wait().expect("try_wait") {
            panic!("mosquitto exited with {status}: port {port} was taken by another process");
        }
        mosquitto
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
