//! Flags that say which broker to test and how to run on it, shared by `run` and `matrix`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lastwill::runner::Target;
use lastwill::runner::tcp::{Address, Cluster, Endpoint, tls_connector};
use lastwill::verdict::Tolerance;

#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Simulator seed (a scenario's own `seed:` wins).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scenarios run at the same time [default: CPUs for the simulator, 32 for a broker].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Shell command that restarts the external broker; enables `broker: restart` steps.
    #[arg(long, value_name = "CMD")]
    pub restart_cmd: Option<String>,
    /// Shell command run as `CMD kill N` / `CMD restart N` for the `node:` steps of a
    /// cluster target (nodes numbered from 1 in the target's order).
    #[arg(long, value_name = "CMD")]
    pub node_cmd: Option<String>,
    /// How much later than its window a message may arrive from an external broker.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1500ms")]
    pub late: Duration,
    /// How much earlier than its window a message may arrive from an external broker.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "500ms")]
    pub early: Duration,
    /// Clear the retained messages an external broker holds before the run, instead of
    /// refusing to run on it (a run needs a broker without retained messages).
    #[arg(long)]
    pub clear_retained: bool,
}

/// How to reach an external broker: TLS trust and credentials.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Certificates (PEM) trusted for mqtts:// targets: CA certificates, or the server's own
    /// self-signed one [default: the Mozilla roots].
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for brokers that require one (mutual TLS); needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any server certificate for mqtts:// targets.
    #[arg(long)]
    pub insecure: bool,
    /// User name for every CONNECT to an external broker (scenarios that set their own win).
    #[arg(long)]
    pub username: Option<String>,
    /// Password for every CONNECT that takes --username (visible to other local users in the
    /// process list: prefer a test account).
    #[arg(long)]
    pub password: Option<String>,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    lastwill::scenario::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration like 500ms or 1.5s"))
}

impl TargetArgs {
    /// Turns `sim`/`ref`, `mqtt[s]://host[:port][,host:port...]` or
    /// `cluster:mqtt[s]://host:port,host:port...` (the nodes of one broker) into a target,
    /// probing each broker instance's capabilities. Errors are one line.
    pub fn target(&self, url: &str) -> Result<Target, String> {
        if url == "sim" || url == "ref" {
            return Ok(Target::Simulator {
                seed: self.seed,
                tick: lastwill::runner::sim::TICK,
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let cluster = url.strip_prefix("cluster:");
        let nodes = cluster.map(cluster_nodes);
        let mut instances = Vec::new();
        let mut capabilities = None;
        for mut target in self.connection.instances(nodes.as_deref().unwrap_or(url))? {
            target.restart_cmd = self.restart_cmd.clone();
            target.tolerance = Tolerance {
                early: self.early,
                late: self.late,
            };
            let announced = runtime.block_on(target.probe())?;
            if capabilities.as_ref().is_some_and(|c| *c != announced) {
                return Err(format!(
                    "target `{url}`: {target:?} announces other capabilities than the first instance"
                ));
            }
            capabilities = Some(announced);
            instances.push(target);
        }
        let capabilities = capabilities.ok_or_else(|| format!("target `{url}`: no host"))?;
        for instance in &mut instances {
            instance.own_protocol = capabilities.own_protocol();
            self.no_retained(&runtime, instance)?;
        }
        Ok(match cluster {
            Some(_) => {
                let node_cmd = self.node_cmd.clone();
                Target::cluster(instances, Cluster { node_cmd }, capabilities, run_id())
            }
            None => Target::tcp(instances, capabilities, run_id()),
        })
    }

    /// Checks that `instance` holds no retained message (clearing them with
    /// `--clear-retained`): a leftover of an earlier run would reach this one's watchers.
    fn no_retained(
        &self,
        runtime: &tokio::runtime::Runtime,
        instance: &Endpoint,
    ) -> Result<(), String> {
        let retained = runtime.block_on(instance.retained_before_run(self.clear_retained))?;
        if retained.is_empty() {
            return Ok(());
        }
        let mut shown = retained
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if retained.len() > 3 {
            shown.push_str(", …");
        }
        if self.clear_retained {
            eprintln!(
                "lastwill: {instance:?}: cleared {} retained messages ({shown})",
                retained.len()
            );
            return Ok(());
        }
        Err(format!(
            "{instance:?} holds {} retained messages ({shown}), which this run's watchers would \
             see: a clean-up of an earlier run failed, or someone else uses the broker; clear \
             them with --clear-retained",
            retained.len()
        ))
    }

    /// `--jobs`, or the target's own default.
    pub fn jobs(&self, target: &Target) -> usize {
        self.jobs.unwrap_or_else(|| target.default_jobs())
    }
}

impl ConnectionArgs {
    /// The broker instances of `mqtt[s]://[USER[:PASSWORD]@]INSTANCE[,INSTANCE...]` (several identically
    /// configured instances), not yet probed, with default tolerances and no restart command.
    /// An instance is `HOST[:PORT]`, or `HOST[:PORT]?v5=HOST[:PORT]` for a broker that
    /// serves MQTT 5 on a port of its own (the first address then serves 3.1.1).
    pub fn instances(&self, url: &str) -> Result<Vec<Endpoint>, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(format!(
                "target `{url}`: expected `sim`, mqtt://HOST:PORT or mqtts://HOST:PORT"
            ));
        };
        let default_port = if tls { 8883 } else { 1883 };
        let tls = if tls {
            let client = self.cert.as_deref().zip(self.key.as_deref());
            Some(Arc::new(tls_connector(
                self.ca_file.as_deref(),
                self.insecure,
                client,
            )?))
        } else {
            None
        };
        // `user[:password]@` before the instances: credentials of this target alone (a matrix
        // may set brokers that need them beside brokers that do not); --username and
        // --password apply where the URL names none.
        let (username, password, rest) = match rest.split_once('@') {
            Some((userinfo, hosts)) => match userinfo.split_once(':') {
                Some((user, password)) => (Some(user), Some(password), hosts),
                None => (Some(userinfo), None, hosts),
            },
            None => (self.username.as_deref(), self.password.as_deref(), rest),
        };
        let mut instances = Vec::new();
        for instance in rest.trim_end_matches('/').split(',') {
            let (main, v5) = match instance.split_once('?') {
                Some((main, query)) => match query.strip_prefix("v5=") {
                    Some(v5) => (main, Some(v5)),
                    None => {
                        return Err(format!(
                            "target `{url}`: unknown parameter `?{query}` (expected ?v5=HOST:PORT)"
                        ));
                    }
                },
                None => (instance, None),
            };
            let parse = |authority| address(url, authority, default_port);
            let Address { host, port } = parse(main)?;
            instances.push(Endpoint {
                v5_address: v5.map(parse).transpose()?,
                tls: tls.clone(),
                username: username.map(str::to_owned),
                password: password.map(str::to_owned),
                ..Endpoint::at(host, port)
            });
        }
        Ok(instances)
    }
}

/// `mqtt://a:1,mqtt://b:2` as `mqtt://a:1,b:2`: a cluster's nodes may each carry the scheme.
fn cluster_nodes(nodes: &str) -> String {
    let (scheme, rest) = nodes.split_at(nodes.find("://").map_or(0, |i| i + 3));
    let authorities: Vec<&str> = rest
        .split(',')
        .map(|node| node.strip_prefix(scheme).unwrap_or(node))
        .collect();
    format!("{scheme}{}", authorities.join(","))
}

/// `HOST[:PORT]` (IPv6 hosts in brackets) of target `url`.
fn address(url: &str, authority: &str, default_port: u16) -> Result<Address, String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return Err(format!("target `{url}`: no `]` after `[{bracketed}`")),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(port) => port
            .parse()
            .map_err(|_| format!("target `{url}`: bad port `{port}`"))?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(format!("target `{url}`: no host"));
    }
    Ok(Address {
        host: host.to_owned(),
        port,
    })
}

/// A short id for one run against an external broker, prefixed to its client ids and topics
/// so that runs never see each other: the clock's microseconds, in hex.
pub fn run_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    format!("{:x}", micros & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use lastwill_broker::codec::Protocol;

    use super::*;

    fn connection() -> ConnectionArgs {
        ConnectionArgs {
            ca_file: None,
            cert: None,
            key: None,
            insecure: false,
            username: None,
            password: None,
        }
    }

    fn addresses(url: &str) -> Result<Vec<String>, String> {
        Ok(connection()
            .instances(url)?
            .iter()
            .map(|e| format!("{e:?}"))
            .collect())
    }

    #[test]
    fn credentials_in_the_url_are_the_targets_own() {
        let flag = ConnectionArgs {
            username: Some("flag".to_owned()),
            ..connection()
        };
        let instances = flag
            .instances("mqtt://anon:x@127.0.0.1:1884,127.0.0.1:1885?v5=127.0.0.1:1886")
            .unwrap();
        let seen: Vec<_> = instances
            .iter()
            .map(|e| (e.address.port, e.username.as_deref(), e.password.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (1884, Some("anon"), Some("x")),
                (1885, Some("anon"), Some("x"))
            ]
        );
        let plain = flag.instances("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!(plain[0].username.as_deref(), Some("flag"));
    }

    #[test]
    fn an_instance_may_name_a_separate_v5_address() {
        let instances = connection()
            .instances("mqtt://127.0.0.1:1883?v5=127.0.0.1:1884")
            .unwrap();
        let [rumqttd] = instances.as_slice() else {
            panic!("one instance: {instances:?}")
        };
        assert_eq!(
            rumqttd.address(Protocol::V311).to_string(),
            "127.0.0.1:1883"
        );
        assert_eq!(rumqttd.address(Protocol::V5).to_string(), "127.0.0.1:1884");
    }

    #[test]
    fn instances_keep_their_own_v5_addresses_and_default_ports() {
        assert_eq!(
            addresses("mqtt://a,b:1885?v5=b:1886,[::1]").unwrap(),
            [
                "mqtt://a:1883",
                "mqtt://b:1885?v5=b:1886",
                "mqtt://[::1]:1883"
            ]
        );
        assert_eq!(
            addresses("mqtt://h:1?v5=h").unwrap(),
            ["mqtt://h:1?v5=h:1883"]
        );
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        assert_eq!(
            addresses("mqtt://h:1?v3=h:2").unwrap_err(),
            "target `mqtt://h:1?v3=h:2`: unknown parameter `?v3=h:2` (expected ?v5=HOST:PORT)"
        );
        assert_eq!(
            addresses("mqtt://h:1?v5=h:x").unwrap_err(),
            "target `mqtt://h:1?v5=h:x`: bad port `x`"
        );
        assert_eq!(
            addresses("mqtt://h:1?v5=").unwrap_err(),
            "target `mqtt://h:1?v5=`: no host"
        );
    }
}
