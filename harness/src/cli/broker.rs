//! `lastwill broker`: runs the reference broker on real TCP until Ctrl-C or SIGTERM.
//!
//! Configuration comes from an optional TOML file (`--config`, every key optional, see
//! `lastwill_broker::config::Config`) and then from flags, which override the file: one flag
//! per setting of the broker's settings table, plus older spellings. Stopping
//! is graceful: stored wills are published and clients get DISCONNECT 0x8B (v5) before the
//! process exits.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use lastwill_broker::config::{Config, Kind, Overrides, SETTINGS, Setting, Value};

use super::{init_logging, usage_error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TOML configuration file; flags override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:1883].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Refuse retained messages and retained wills: `--retain-available false`.
    #[arg(long, conflicts_with = "retain_available")]
    pub no_retain: bool,
    #[command(flatten)]
    pub settings: SettingFlags,
}

/// Older names of setting flags, kept working.
const ALIASES: &[(&str, &str)] = &[
    ("max_queued_messages", "max-queued"),
    ("credentials", "user"),
];

/// One flag per broker setting, from the settings table: the key with `-` for `_`
/// (`--max-qos 1`, `--server-keep-alive 30`), read as the setting's kind. A repeated flag
/// replaces the earlier value, except credentials, which add up (`--user a:x --user b:y`).
#[derive(Clone, Debug, Default)]
pub struct SettingFlags {
    pub overrides: Overrides,
}

fn flag(setting: &'static Setting) -> Arg {
    let value_name = match setting.kind {
        Kind::Bool => "true|false",
        Kind::Qos | Kind::Count => "N",
        Kind::Seconds => "SECS",
        Kind::Bytes => "BYTES",
        Kind::Credentials => "NAME:PASSWORD",
    };
    let default = setting
        .configured(&Config::default())
        .map(|value| format!(" [default: {}]", setting.show(&value)))
        .unwrap_or_default();
    let mut arg = Arg::new(setting.key)
        .long(setting.key.replace('_', "-"))
        .value_name(value_name)
        .help(format!("{}{default}", setting.description()))
        .value_parser(move |text: &str| setting.parse(text))
        .action(ArgAction::Append);
    for &(_, alias) in ALIASES.iter().filter(|(key, _)| *key == setting.key) {
        arg = arg.visible_alias(alias);
    }
    arg
}

impl clap::Args for SettingFlags {
    fn augment_args(cmd: Command) -> Command {
        SETTINGS
            .iter()
            .fold(cmd, |cmd, setting| cmd.arg(flag(setting)))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = SettingFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for setting in SETTINGS {
            for value in matches.get_many::<Value>(setting.key).into_iter().flatten() {
                let value = match (setting.get(&self.overrides), value.clone()) {
                    (Some(Value::Credentials(mut users)), Value::Credentials(more)) => {
                        users.extend(more);
                        Value::Credentials(users)
                    }
                    (_, value) => value,
                };
                setting.set(&mut self.overrides, value).map_err(|message| {
                    clap::Error::raw(clap::error::ErrorKind::ValueValidation, message)
                })?;
            }
        }
        Ok(())
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
        if self.no_retain {
            config.retain_available = false;
        }
        self.settings.overrides.apply(&mut config);
        Ok(config)
    }
}

pub fn run(args: Args) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(message) => return usage_error(message),
    };
    init_logging("info");
    // One thread: the broker is one task (its core task does every connection's I/O), so
    // more threads would only add wake-ups. (When every connection had its own task, packets
    // crossed threads twice on a multi-threaded runtime: 51 µs of CPU per will client at
    // 10,000 clients, against 35 µs on one thread.)
    let runtime = match tokio::runtime::Builder::new_current_thread()
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
    use lastwill_broker::codec::QoS;
    use lastwill_broker::config::{Config, Credential, Kind, SETTINGS, Value};

    use crate::cli::{Cli, Command};

    fn args(line: &[&str]) -> super::Args {
        match Cli::try_parse_from(line).expect("parses").command {
            Command::Broker(args) => args,
            other => panic!("not the broker subcommand: {other:?}"),
        }
    }

    fn user(username: &str, password: &str) -> Credential {
        Credential {
            username: username.into(),
            password: password.into(),
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
            "--max-queued",
            "7",
            "--user",
            "alice:se:cret",
            "--credentials",
            "bob:x",
            "--max-connections",
            "3",
            "--max-connections",
            "4",
        ])
        .config()
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:1884");
        assert_eq!(config.max_qos, QoS::AtLeastOnce);
        assert!(!config.retain_available);
        assert_eq!(config.server_keep_alive, Some(5));
        assert_eq!(config.max_queued_messages, 7);
        assert_eq!(
            config.credentials,
            [user("alice", "se:cret"), user("bob", "x")]
        );
        assert_eq!(config.max_connections, 4, "a repeated flag replaces");
    }

    /// Every setting of the table has its flag, `--KEY-WITH-DASHES VALUE`.
    #[test]
    fn every_setting_is_a_flag() {
        for setting in SETTINGS {
            let default = setting.configured(&Config::default());
            let (min, max) = setting.range;
            let (text, value) = match setting.kind {
                Kind::Bool => {
                    let b = default == Some(Value::Bool(false));
                    (b.to_string(), Value::Bool(b))
                }
                Kind::Qos => {
                    let q = if default == Some(Value::Qos(QoS::AtMostOnce)) {
                        QoS::ExactlyOnce
                    } else {
                        QoS::AtMostOnce
                    };
                    (q.as_u8().to_string(), Value::Qos(q))
                }
                Kind::Seconds | Kind::Bytes | Kind::Count => {
                    let n = if default == Some(Value::Number(max)) {
                        min
                    } else {
                        max
                    };
                    (n.to_string(), Value::Number(n))
                }
                Kind::Credentials => ("u:p".to_owned(), Value::Credentials(vec![user("u", "p")])),
            };
            let flag = format!("--{}", setting.key.replace('_', "-"));
            assert_ne!(default.as_ref(), Some(&value), "{setting:?}");
            let config = args(&["lastwill", "broker", &flag, &text])
                .config()
                .unwrap();
            assert_eq!(setting.configured(&config), Some(value), "{flag} {text}");
        }
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [
            &["lastwill", "broker", "--max-qos", "3"][..],
            &["lastwill", "broker", "--user", "nopassword"],
            &["lastwill", "broker", "--listen", "nowhere"],
            &["lastwill", "broker", "--max-packet-size", "0"],
            &["lastwill", "broker", "--server-keep-alive", "70000"],
            &["lastwill", "broker", "--retain-available", "no"],
            &[
                "lastwill",
                "broker",
                "--no-retain",
                "--retain-available",
                "true",
            ],
        ] {
            let err = Cli::try_parse_from(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let err = Cli::try_parse_from(["lastwill", "broker", "--max-qos", "3"]).unwrap_err();
        assert!(
            err.to_string().contains("must be 0, 1 or 2, not `3`"),
            "{err}"
        );
    }

    #[test]
    fn default_listen_address() {
        let config = args(&["lastwill", "broker"]).config().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:1883");
    }
}
