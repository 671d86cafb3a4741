//! A broker under test started as a child process (`lastwill bench --spawn`), and what it
//! cost: CPU time and resident memory read from procfs for that process alone, so that the
//! figures do not depend on how busy the load generator was.
//!
//! The command runs as `sh -c 'exec COMMAND'` (so the child *is* the broker). Its port is
//! `{port}` in the command, replaced by a free loopback port, or else read from the first line
//! of its standard output that ends with `listening on ADDR` (what `lastwill broker` prints).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// A running broker process; killed when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Child,
    pid: u32,
    pub addr: SocketAddr,
    /// Its usage once it first accepted a connection: the broker with no clients.
    pub at_start: Usage,
}

/// What the process has used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Resident set now.
    pub rss_bytes: u64,
    /// The most the resident set has been (VmHWM).
    pub peak_rss_bytes: u64,
}

impl BrokerProcess {
    /// Starts `command` and waits (at most `timeout`) until it accepts connections.
    pub async fn spawn(command: &str, timeout: Duration) -> Result<BrokerProcess, String> {
        let port = command
            .contains("{port}")
            .then(free_port)
            .transpose()
            .map_err(|e| format!("cannot find a free port: {e}"))?;
        let command = match port {
            Some(port) => command.replace("{port}", &port.to_string()),
            None => command.to_owned(),
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start `{command}`: {e}"))?;
        let pid = child.id().ok_or("the broker exited at once")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let started = tokio::time::timeout(timeout, async {
            let addr = match port {
                Some(port) => SocketAddr::from(([127, 0, 0, 1], port)),
                None => announced_addr(stdout).await?,
            };
            accepting(addr).await;
            Ok::<_, String>(addr)
        })
        .await
        .map_err(|_| format!("`{command}` did not accept connections within {timeout:?}"))??;
        let mut process = BrokerProcess {
            child,
            pid,
            addr: started,
            at_start: Usage::default(),
        };
        process.at_start = process.usage()?;
        Ok(process)
    }

    /// CPU time and memory of the broker process, from `/proc/<pid>`.
    pub fn usage(&self) -> Result<Usage, String> {
        let read = |file: &str| {
            std::fs::read_to_string(format!("/proc/{}/{file}", self.pid))
                .map_err(|e| format!("/proc/{}/{file}: {e}", self.pid))
        };
        let stat = read("stat")?;
        let status = read("status")?;
        parse_usage(&stat, &status, clock_ticks_per_second())
            .ok_or_else(|| format!("cannot read the usage of process {}", self.pid))
    }

    /// Stops the broker (SIGKILL: nothing it does after the storm is measured).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The address in the first stdout line ending with `listening on ADDR`; the rest of the
/// output is read and discarded so the broker never blocks on a full pipe.
async fn announced_addr(stdout: ChildStdout) -> Result<SocketAddr, String> {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let announced = line
            .rsplit_once("listening on ")
            .and_then(|(_, addr)| addr.trim().parse().ok());
        if let Some(addr) = announced {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(addr);
        }
    }
    Err("the broker ended its output without a `listening on ADDR` line".to_owned())
}

/// Returns once `addr` accepts a TCP connection.
async fn accepting(addr: SocketAddr) {
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// utime + stime from `/proc/<pid>/stat` (fields 14 and 15, counted after the `)` that ends
/// the command name, which may itself hold spaces), VmRSS and VmHWM from `status`.
fn parse_usage(stat: &str, status: &str, ticks_per_second: u64) -> Option<Usage> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after the name: state is field 3, so utime (14) and stime (15) are at 11 and 12
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let ticks = utime + stime;
    Some(Usage {
        cpu: Duration::from_micros(ticks * 1_000_000 / ticks_per_second),
        rss_bytes: kib("VmRSS:")? * 1024,
        peak_rss_bytes: kib("VmHWM:")? * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_after_a_command_name_with_spaces() {
        let stat = "4242 (my broker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 3 0";
        let status = "Name:\tmy broker\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        let usage = parse_usage(stat, status, 100).unwrap();
        assert_eq!(usage.cpu, Duration::from_secs(3));
        assert_eq!(usage.rss_bytes, 10 << 20);
        assert_eq!(usage.peak_rss_bytes, 20 << 20);
    }

    #[tokio::test]
    async fn the_port_is_read_from_the_announcement_and_usage_from_procfs() {
        // a stand-in broker: announces a port and listens on it
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let broker = BrokerProcess::spawn(
            &format!("sh -c 'echo lastwill broker listening on 127.0.0.1:{port}; sleep 30'"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(broker.addr.port(), port);
        let usage = broker.usage().unwrap();
        assert!(usage.peak_rss_bytes >= usage.rss_bytes && usage.rss_bytes > 0);
        broker.stop().await;
    }
}
