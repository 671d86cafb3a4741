//! `lastwill bench`: a will storm (see [`lastwill::storm`]) against a broker over real TCP.
//!
//! Without `--target` the reference broker is started in this process on a free loopback
//! port, so the command measures something on a fresh machine. With `--spawn COMMAND` the
//! bench starts the broker under test as a child process and reports, beside the wall-clock
//! figures, what that process spent (CPU per will, memory of idle connections, peak RSS).
//! Exit code 1 when the broker lost, duplicated or hurried wills, 2 for bad flags or an
//! unreachable broker.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use lastwill::broker_process::BrokerProcess;
use lastwill::runner::tcp::{Endpoint, Skip};
use lastwill::scenario::DropMode;
use lastwill::storm::{self, Plan, Report};
use lastwill_broker::codec::{Protocol, QoS};
use lastwill_broker::config::Config;
use lastwill_broker::driver::Server;

use super::target::{ConnectionArgs, parse_duration, run_id};
use super::usage_error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Version {
    #[value(name = "3.1.1")]
    V311,
    #[value(name = "5")]
    V5,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Close {
    /// RST (SO_LINGER 0, then close).
    Rst,
    /// FIN without DISCONNECT.
    Fin,
}

/// How long a spawned broker may take to accept connections.
const SPAWN_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Broker to storm, mqtt://HOST:PORT or mqtts://HOST:PORT, with ?v5=HOST:PORT for a
    /// separate MQTT 5 port [default: the reference broker, started in this process on a free
    /// loopback port].
    #[arg(long, value_name = "TARGET", conflicts_with = "spawn")]
    pub target: Option<String>,
    /// Start the broker to storm as a child process: COMMAND runs as `sh -c 'exec COMMAND'`,
    /// `{port}` in it becomes a free loopback port (else the port is read from a
    /// `listening on ADDR` line on its stdout). Its CPU time and memory are reported.
    #[arg(long, value_name = "COMMAND")]
    pub spawn: Option<String>,
    /// Clients holding a will; every one of them dies.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Clients subscribed to every will.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub subscribers: u32,
    /// MQTT version of every client.
    #[arg(long, value_enum, default_value_t = Version::V5)]
    pub protocol: Version,
    /// QoS of the wills and of the subscriptions.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Will payload size.
    #[arg(long, value_name = "BYTES", default_value_t = 32)]
    pub payload: usize,
    /// Will Delay Interval (MQTT 5 only).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub will_delay: u32,
    /// How the will clients' connections end.
    #[arg(long, value_enum, default_value_t = Close::Rst)]
    pub drop: Close,
    /// Will clients connecting at the same time.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Keep Alive of every client, in seconds; 0 turns it off (rumqttd refuses 0). Will
    /// clients send nothing until they die, so all must connect within 1.5 times it.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub keep_alive: u16,
    /// Storms to run one after the other; times are reported as their medians, lost and
    /// duplicated wills as the worst round's.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// How long to wait for wills once the last one is due.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn run(args: Args) -> ExitCode {
    // the embedded broker's warnings (a subscriber dropped as too slow) explain a failed storm
    super::init_logging("warn");
    let protocol = match args.protocol {
        Version::V311 => Protocol::V311,
        Version::V5 => Protocol::V5,
    };
    if args.will_delay > 0 && protocol == Protocol::V311 {
        return usage_error("--will-delay needs --protocol 5 (3.1.1 has no Will Delay Interval)");
    }
    let qos = QoS::from_u8(args.qos).expect("clap checked the range");
    let plan = Plan {
        clients: args.clients as usize,
        subscribers: args.subscribers as usize,
        protocol,
        qos,
        payload: args.payload,
        will_delay: args.will_delay,
        drop: match args.drop {
            Close::Rst => DropMode::Rst,
            Close::Fin => DropMode::Fin,
        },
        concurrency: args.concurrency as usize,
        keep_alive: args.keep_alive,
        timeout: args.timeout,
        prefix: format!("lastwill-bench-{}", run_id()),
    };
    // the embedded reference broker holds the other end of every connection in this process
    let ends = if args.target.is_none() && args.spawn.is_none() {
        2
    } else {
        1
    };
    if let Err(message) = open_files_for(ends * (plan.clients + plan.subscribers)) {
        return usage_error(message);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(format!("cannot start the runtime: {error}")),
    };
    let report = runtime.block_on(async {
        let mut process = None;
        let target = match (&args.target, &args.spawn) {
            (Some(url), _) => external(&args.connection, url, &plan).await?,
            (None, Some(command)) => {
                let spawned = BrokerProcess::spawn(command, SPAWN_LIMIT).await?;
                let url = format!("mqtt://{}", spawned.addr);
                eprintln!("lastwill: storming `{command}` (process {url})");
                process = Some(spawned);
                external(&args.connection, &url, &plan).await?
            }
            (None, None) => embedded(&plan).await?,
        };
        let mut rounds = Vec::new();
        for round in 1..=args.rounds {
            let progress = ProgressBar::new(0);
            progress.set_style(
                ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} {msg}")
                    .expect("progress template"),
            );
            progress.set_prefix(format!("round {round}/{}", args.rounds));
            let plan = Plan {
                prefix: format!("{}r{round}", plan.prefix),
                ..plan.clone()
            };
            rounds.push(storm::run(&target, &plan, &progress, process.as_ref()).await?);
        }
        if let Some(process) = process {
            process.stop().await;
        }
        Ok::<_, String>(Report::combine(&rounds).expect("at least one round"))
    });
    let report = match report {
        Ok(report) => report,
        Err(message) => return usage_error(message),
    };
    let rendered = match args.format {
        Format::Table => table(&report),
        Format::Json => serde_json::to_string_pretty(&report).expect("a report serializes"),
    };
    match &args.output {
        Some(path) => {
            if let Err(error) = std::fs::write(path, &rendered) {
                return usage_error(format!("{}: {error}", path.display()));
            }
        }
        None => super::print(&rendered),
    }
    match report.verdict() {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("lastwill: the broker failed the will storm: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Descriptors the bench needs besides its connections (stdio, the runtime, a spawned broker's
/// pipes).
const SPARE_FILES: u64 = 64;

/// Makes sure this process may open `connections` descriptors: raises its soft
/// RLIMIT_NOFILE towards the hard limit if needed, or says how to raise it.
fn open_files_for(connections: usize) -> Result<(), String> {
    let needed = connections as u64 + SPARE_FILES;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(()); // no limit to read: let the connects say what goes wrong
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max >= needed {
        let raised = libc::rlimit {
            rlim_cur: needed,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(());
        }
    }
    Err(format!(
        "{connections} connection ends need about {needed} open files, but this process may open \
         {} (hard limit {}): raise it with `ulimit -n {needed}` (as root above the hard limit), \
         or storm with fewer --clients; the broker needs as many, see `Max open files` in \
         /proc/BROKER_PID/limits",
        limit.rlim_cur, limit.rlim_max
    ))
}

/// The broker at `url`, probed: it must answer MQTT and allow the plan's QoS.
async fn external(connection: &ConnectionArgs, url: &str, plan: &Plan) -> Result<Endpoint, String> {
    let mut instances = connection.instances(url)?;
    if instances.len() != 1 {
        return Err(format!("target `{url}`: a storm needs exactly one broker"));
    }
    let mut target = instances.remove(0);
    let capabilities = target.probe().await?;
    target.own_protocol = capabilities.own_protocol();
    if let Some(refused) = capabilities
        .refused
        .as_ref()
        .filter(|r| r.protocol == plan.protocol)
    {
        let other = capabilities.own_protocol();
        return Err(format!(
            "{target:?}: {}; ask for --protocol {other}",
            Skip::Unspoken(refused.clone())
        ));
    }
    if let Some(max) = capabilities.announced.max_qos.filter(|max| plan.qos > *max) {
        return Err(format!(
            "{target:?} accepts QoS {} at most; ask for --qos {} or lower",
            max.as_u8(),
            max.as_u8()
        ));
    }
    Ok(target)
}

/// The reference broker, serving on a free loopback port for as long as the process runs.
async fn embedded(plan: &Plan) -> Result<Endpoint, String> {
    let config = Config {
        max_connections: plan.clients + plan.subscribers + 16,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot start the reference broker: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot start the reference broker: {e}"))?;
    tokio::spawn(Server::new(config).serve(listener, std::future::pending::<()>()));
    eprintln!("lastwill: storming the reference broker, in this process on {addr}");
    Ok(Endpoint::at(addr.ip().to_string(), addr.port()))
}

fn table(report: &Report) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["will storm", &report.target]);
    let rounds = if report.rounds > 1 {
        format!(
            " (median of {} rounds; counts: the worst round)",
            report.rounds
        )
    } else {
        String::new()
    };
    let delay = if report.will_delay_s > 0 {
        format!(", will delay {}s", report.will_delay_s)
    } else {
        String::new()
    };
    let optional = |value: Option<f64>, unit: &str| match value {
        Some(v) => format!("{v:.1} {unit}"),
        None => "-".to_owned(),
    };
    let mut rows = vec![
        (
            "shape",
            format!(
                "{} clients x {} subscribers, MQTT {}, QoS {}, {}-byte payload, drop {}{delay}{rounds}",
                report.clients,
                report.subscribers,
                report.protocol,
                report.qos,
                report.payload_bytes,
                report.drop
            ),
        ),
        (
            "connect",
            format!(
                "{:.2} s ({:.0} connections/s)",
                report.connect_s, report.connects_per_s
            ),
        ),
        ("close all", format!("{:.1} ms", report.close_s * 1e3)),
        (
            "wills delivered",
            format!(
                "{} of {} ({} missing, {} duplicate, {} early)",
                report.delivered, report.expected, report.missing, report.duplicates, report.early
            ),
        ),
        ("first will", optional(report.first_will_ms, "ms")),
        ("last will", optional(report.last_will_ms, "ms")),
        ("after last close", optional(report.drain_ms, "ms")),
        ("throughput", optional(report.wills_per_s, "wills/s")),
    ];
    if let Some(l) = &report.latency_ms {
        rows.push((
            "latency",
            format!(
                "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.p50, l.p90, l.p99, l.max
            ),
        ));
    }
    if let Some(b) = &report.broker {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        rows.push((
            "broker CPU",
            format!(
                "{:.1} µs per will (client lifecycle), {:.1} µs per connect",
                b.cpu_us_per_will, b.connect_cpu_us_per_client
            ),
        ));
        rows.push((
            "broker memory",
            format!(
                "peak RSS {:.1} MiB; {:.1} MiB with every will client idle ({:.0} B per connection)",
                mib(b.peak_rss_bytes),
                mib(b.idle_rss_bytes),
                b.idle_bytes_per_connection
            ),
        ));
    }
    for (name, value) in rows {
        table.add_row([name.to_owned(), value]);
    }
    table.to_string()
}
