//! `lastwill broker`: runs the reference broker on real TCP until Ctrl-C or SIGTERM.
//!
//! Configuration comes from an optional TOML file (`--config`, every key optional, see
//! `lastwill_broker::config::Config`) and then from flags, which override the file. Stopping
//! is graceful: stored wills are published and clients get DISCONNECT 0x8B (v5) before the
//! process exits.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use lastwill_broker::codec::QoS;
use lastwill_broker::config::{Config, Credential};

use super::{init_logging, usage_error};

/// The largest packet MQTT can express (a 4-byte Remaining Length plus a 5-byte header).
const MAX_MQTT_PACKET: u64 = 268_435_460;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TOML configuration file; flags override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:1883].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Highest QoS accepted for PUBLISH and Will (CONNACK Maximum QoS).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=2))]
    pub max_qos: Option<u8>,
    /// Refuse retained messages and retained wills (CONNACK Retain Available 0).
    #[arg(long)]
    pub no_retain: bool,
    /// Tell every v5 client to use this keep-alive (CONNACK Server Keep Alive).
    #[arg(long, value_name = "SECS")]
    pub server_keep_alive: Option<u16>,
    /// Largest packet accepted from a client, in bytes.
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<u32>::new().range(2..=MAX_MQTT_PACKET))]
    pub max_packet_size: Option<u32>,
    /// Upper bound on Session Expiry Interval, in seconds.
    #[arg(long, value_name = "SECS")]
    pub max_session_expiry: Option<u32>,
    /// QoS 1/2 messages kept per offline session; the oldest is dropped beyond this.
    #[arg(long, value_name = "N")]
    pub max_queued: Option<usize>,
    /// Accept only these users (repeatable); replaces the file's `credentials`.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    pub users: Vec<Credential>,
}

fn parse_user(text: &str) -> Result<Credential, String> {
    match text.split_once(':') {
        Some((username, password)) if !username.is_empty() => Ok(Credential {
            username: username.to_owned(),
            password: password.to_owned(),
        }),
        _ => Err("expected NAME:PASSWORD with a non-empty NAME".to_owned()),
    }
}

impl Args {
    /// The file's configuration (or the defaults) with the flags applied on top.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = match &self.config {
            Some(path) => Config::load(path).map_err(|err| err.to_string())?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(qos) = self.max_qos {
            config.max_qos = QoS::from_u8(qos).ok_or("--max-qos must be 0, 1 or 2")?;
        }
        if self.no_retain {
            config.retain_available = false;
        }
        if let Some(secs) = self.server_keep_alive {
            config.server_keep_alive = Some(secs);
        }
        if let Some(size) = self.max_packet_size {
            config.max_packet_size = size;
        }
        if let Some(secs) = self.max_session_expiry {
            config.max_session_expiry = Some(secs);
        }
        if let Some(n) = self.max_queued {
            config.max_queued_messages = n;
        }
        if !self.users.is_empty() {
            config.credentials = self.users.clone();
        }
        Ok(config)
    }
}

pub fn run(args: Args) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(message) => return usage_error(message),
    };
    init_logging("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(format!("cannot start the runtime: {error}")),
    };
    let listen = config.listen;
    // One line on stdout once the socket is bound: with `--listen 127.0.0.1:0` it is how a
    // script or test learns the port the OS chose, with no window for another process to take
    // a port picked in advance.
    let announce = |addr| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "lastwill broker listening on {addr}");
        let _ = stdout.flush();
    };
    match runtime.block_on(lastwill_broker::driver::serve_tcp(
        config,
        announce,
        stop_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        // a port in use, an address not of this machine: the configuration, exit code 2
        Err(error) => usage_error(format!(
            "cannot listen on {listen}: {}",
            lastwill::io_error::describe(&error)
        )),
    }
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    biased;
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop signal received");
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn args(line: &[&str]) -> super::Args {
        match Cli::try_parse_from(line).expect("parses").command {
            Command::Broker(args) => args,
            other => panic!("not the broker subcommand: {other:?}"),
        }
    }

    #[test]
    fn flags_override_the_defaults() {
        let config = args(&[
            "lastwill",
            "broker",
            "--listen",
            "0.0.0.0:1884",
            "--max-qos",
            "1",
            "--no-retain",
            "--server-keep-alive",
            "5",
            "--user",
            "alice:se:cret",
        ])
        .config()
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:1884");
        assert_eq!(config.max_qos, lastwill_broker::codec::QoS::AtLeastOnce);
        assert!(!config.retain_available);
        assert_eq!(config.server_keep_alive, Some(5));
        assert_eq!(config.credentials[0].username, "alice");
        assert_eq!(config.credentials[0].password, "se:cret");
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [
            &["lastwill", "broker", "--max-qos", "3"][..],
            &["lastwill", "broker", "--user", "nopassword"],
            &["lastwill", "broker", "--listen", "nowhere"],
            &["lastwill", "broker", "--max-packet-size", "0"],
        ] {
            let err = Cli::try_parse_from(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn default_listen_address() {
        let config = args(&["lastwill", "broker"]).config().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:1883");
    }
}
