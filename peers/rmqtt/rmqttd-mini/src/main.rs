//! rmqtt 0.24.0 as a broker for lastwill's real-peer runs: reads an rmqtt.toml (`-f FILE`,
//! the format of the published rmqttd), starts the gRPC node service, registers the retainer,
//! shared-subscription and cluster-broadcast plugins, and serves the TCP listeners of the file
//! until SIGTERM or SIGINT. TLS, WebSocket and QUIC listeners are not built in.

use clap::Parser;
use rmqtt::{
    args::CommandArgs, context::ServerContext, net::Builder, node::Node, server::MqttServer,
};
use rmqtt_conf::{listener::Listener, Options, Settings};
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        log::error!("{e}");
        eprintln!("rmqttd: {e}");
        std::process::exit(1);
    }
}

async fn run() -> rmqtt::Result<()> {
    let opts = Options::parse();
    if opts.version {
        // peers/rmqtt.sh install checks this line to know the cached build is 0.24.0.
        println!("{} rustc/{}", Node::version(), Node::rustc_version());
        return Ok(());
    }
    let conf = Settings::init(opts)?;
    env_logger::Builder::new()
        .parse_filters(conf.log.level.as_str())
        .parse_default_env()
        .init();
    log::info!(
        "Starting rmqtt (version={}, rustc={})",
        Node::version(),
        Node::rustc_version()
    );
    Settings::logs()?;

    let node = Node::new(
        conf.node.id,
        conf.node.busy.loadavg,
        conf.node.busy.cpuloadavg,
        conf.node.busy.update_interval,
    );
    let scx = ServerContext::new()
        .args(CommandArgs {
            node_id: conf.opts.node_id,
            plugins_default_startups: conf.opts.plugins_default_startups.clone(),
            node_grpc_addrs: conf.opts.node_grpc_addrs.clone(),
            raft_peer_addrs: conf.opts.raft_peer_addrs.clone(),
            raft_leader_id: conf.opts.raft_leader_id,
        })
        .node(node)
        .task_exec_workers(conf.task.exec_workers)
        .task_exec_queue_max(conf.task.exec_queue_max)
        // Off in peers/rmqtt/rmqtt.toml: by default rmqtt refuses connections while the load
        // average is high, which on a shared 2-core machine is most of the time.
        .busy_check_enable(conf.node.busy.check_enable)
        .busy_handshaking_limit(conf.node.busy.handshaking)
        .mqtt_max_sessions(conf.mqtt.max_sessions)
        .plugins_config_dir(conf.plugins.dir.as_str())
        .build()
        .await;

    // Cluster nodes talk to each other over this service.
    scx.node.start_grpc_server(
        scx.clone(),
        conf.rpc.server_addr,
        conf.rpc.reuseaddr,
        conf.rpc.reuseport,
    );

    let starts = |name: &str| conf.plugins.default_startups.iter().any(|n| n == name);
    rmqtt_retainer::register(&scx, starts("rmqtt-retainer"), false).await?;
    rmqtt_shared_subscription::register(&scx, starts("rmqtt-shared-subscription"), false).await?;
    // Immutable, as in rmqttd: a cluster's membership cannot be switched off at run time.
    rmqtt_cluster_broadcast::register(&scx, starts("rmqtt-cluster-broadcast"), true).await?;

    let mut server = MqttServer::new(scx);
    for cfg in conf.listeners.tcps.values() {
        let listener = listener_builder(cfg)
            .bind()
            .map_err(|e| anyhow::anyhow!("cannot bind the TCP listener on {}: {e}", cfg.addr))?
            .tcp()?;
        server = server.listener(listener);
    }
    server.build().start();

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        biased;
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    log::info!("rmqtt stopping on signal");
    Ok(())
}

/// Every setting of a `[listener.tcp.NAME]` section, so the file means what it means to rmqttd.
fn listener_builder(cfg: &Listener) -> Builder {
    Builder::new()
        .name(cfg.name.as_str())
        .laddr(cfg.addr)
        .max_connections(cfg.max_connections)
        .max_handshaking_limit(cfg.max_handshaking_limit)
        .max_packet_size(cfg.max_packet_size.as_u32())
        .backlog(cfg.backlog)
        .nodelay(cfg.nodelay)
        .reuseaddr(cfg.reuseaddr)
        .reuseport(cfg.reuseport)
        .tcp_keepalive(cfg.tcp_keepalive)
        .allow_anonymous(cfg.allow_anonymous)
        .min_keepalive(cfg.min_keepalive)
        .max_keepalive(cfg.max_keepalive)
        .allow_zero_keepalive(cfg.allow_zero_keepalive)
        .keepalive_backoff(cfg.keepalive_backoff)
        .max_inflight(cfg.max_inflight)
        .handshake_timeout(cfg.handshake_timeout)
        .max_mqueue_len(cfg.max_mqueue_len)
        .mqueue_rate_limit(cfg.mqueue_rate_limit.0, cfg.mqueue_rate_limit.1)
        .max_clientid_len(cfg.max_clientid_len)
        .max_qos_allowed(cfg.max_qos_allowed)
        .max_topic_levels(cfg.max_topic_levels)
        .session_expiry_interval(cfg.session_expiry_interval)
        .max_session_expiry_interval(cfg.max_session_expiry_interval)
        .message_retry_interval(cfg.message_retry_interval)
        .message_expiry_interval(cfg.message_expiry_interval)
        .max_subscriptions(cfg.max_subscriptions)
        .max_topic_aliases(cfg.max_topic_aliases)
        .limit_subscription(cfg.limit_subscription)
        .proxy_protocol(cfg.proxy_protocol)
        .proxy_protocol_timeout(cfg.proxy_protocol_timeout)
        .idle_timeout(cfg.idle_timeout)
}
