#!/usr/bin/env bash
# rmqtt 0.24.0: peers/rmqtt/rmqttd-mini (the library with three plugins) built into the cache.
#   peers/rmqtt.sh install              build it unless the cache has it (~19 min at -j1)
#   peers/rmqtt.sh start [PORT]         one node; prints `mqtt=mqtt://127.0.0.1:PORT`
#   peers/rmqtt.sh start-cluster N      N nodes joined by rmqtt-cluster-broadcast; prints
#                                       `node1=mqtt://127.0.0.1:P1 … nodeN=mqtt://127.0.0.1:PN`
#   peers/rmqtt.sh node DIR kill|restart I
#                                       node I of the cluster started with
#                                       LASTWILL_PEERS_RUN_DIR=DIR: SIGKILL, or start again
PEER_NAME=rmqtt
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=0.24.0
SRC=$PEERS_DIR/rmqtt/rmqttd-mini
ROOT=$PEERS_CACHE/rmqtt-$VERSION
BIN=$ROOT/bin/rmqttd
# The build is redone when the sources in the clone change.
STAMP=$ROOT/source.sha256

source_hash() { (cd "$SRC" && sha256sum Cargo.toml Cargo.lock src/*.rs | sha256sum | cut -d' ' -f1); }

installed() {
	[[ -x $BIN ]] && [[ $("$BIN" -V 2>/dev/null) == "rmqtt/$VERSION-"* ]] &&
		[[ $(cat "$STAMP" 2>/dev/null) == "$(source_hash)" ]]
}

cmd_install() {
	if installed; then
		log "rmqtt $VERSION already in $ROOT"
		return 0
	fi
	command -v cargo >/dev/null || die "cargo is needed to build rmqtt"
	# handy-grpc's tonic-build runs protoc.
	apt_ensure protobuf-compiler
	local build=$PEERS_CACHE/build/rmqtt
	# Built from a copy so nothing is written into the clone and the clone's .cargo/config.toml
	# (tokio_unstable for lastwill) does not apply.
	rm -rf "$build/src"
	mkdir -p "$build/src" "$ROOT/bin"
	cp -r "$SRC/Cargo.toml" "$SRC/Cargo.lock" "$SRC/src" "$build/src/"
	(cd "$build/src" && CARGO_TARGET_DIR=$build/target nice -n 19 \
		cargo build --release --locked -j "${LASTWILL_PEERS_JOBS:-2}" >&2)
	install -m 755 "$build/target/release/lastwill-rmqttd" "$BIN"
	source_hash >"$STAMP"
	installed || die "built $BIN but it does not report rmqtt $VERSION"
	rm -rf "$build"
	rmdir "$PEERS_CACHE/build" 2>/dev/null || true
}

# Writes node $1's config into $RUN_DIR/node$1/ and spawns it: MQTT on port $2, gRPC on $3,
# with plugins $4 (a TOML list body) and cluster members $5 (a TOML list body, or empty).
spawn_node() {
	local id=$1 port=$2 rpc_port=$3 startups=$4 members=$5 dir=$RUN_DIR/node$1
	mkdir -p "$dir/plugins"
	render "$PEERS_DIR/rmqtt/rmqtt.toml" "$dir/rmqtt.toml" NODE_ID="$id" PORT="$port" \
		RPC_PORT="$rpc_port" PLUGINS_DIR="$dir/plugins/" STARTUPS="$startups"
	if [[ -n $members ]]; then
		render "$PEERS_DIR/rmqtt/plugins/rmqtt-cluster-broadcast.toml" \
			"$dir/plugins/rmqtt-cluster-broadcast.toml" NODE_GRPC_ADDRS="$members"
	fi
	respawn_node "$dir"
}

# Starts the node configured in $1 (again): in $1, since rmqtt also reads ./rmqtt.toml, which
# must be this node's; its pid (its process group) goes to $1/pid for `node`.
respawn_node() {
	spawn_broker "$1" "$BIN" -f "$1/rmqtt.toml"
	echo "${BROKER_PIDS[-1]}" >"$1/pid"
}

STARTUPS='"rmqtt-retainer", "rmqtt-shared-subscription"'

cmd_start() {
	installed || die "not installed; run $0 install"
	pick_ports 1 "$@"
	local rpc_port
	rpc_port=$(free_ports 1 "${PORTS[@]}")
	make_run_dir
	spawn_node 1 "${PORTS[0]}" "$rpc_port" "$STARTUPS" ""
	READY_LINE="mqtt=mqtt://127.0.0.1:${PORTS[0]}"
	serve "${PORTS[0]}"
}

# Listening is not enough for a cluster: the nodes' gRPC links come up a second or two later,
# and until then a message published on one node does not reach subscribers on another. So
# the cluster is ready once, for every ordered pair of nodes, a message published on the first
# reaches a subscriber on the second (publishes repeat every half second until they do).
cluster_routes() {
	local probe=lastwill-ready/$$ dir=$RUN_DIR/ready i j subs=() missing
	local deadline=$((SECONDS + PEERS_START_TIMEOUT))
	mkdir -p "$dir"
	for j in "${!PORTS[@]}"; do
		mosquitto_sub -h 127.0.0.1 -p "${PORTS[j]}" -t "$probe/#" -v >"$dir/node$((j + 1))" 2>&1 &
		subs+=("$!")
	done
	while :; do
		for i in "${!PORTS[@]}"; do
			mosquitto_pub -h 127.0.0.1 -p "${PORTS[i]}" -t "$probe/node$((i + 1))" -m x 2>/dev/null || true
		done
		sleep 0.5
		missing=0
		for j in "${!PORTS[@]}"; do
			for i in "${!PORTS[@]}"; do
				((i == j)) || grep -qx "$probe/node$((i + 1)) x" "$dir/node$((j + 1))" || missing=1
			done
		done
		((missing && SECONDS < deadline)) || break
	done
	kill "${subs[@]}" 2>/dev/null || true
	wait "${subs[@]}" 2>/dev/null || true
	return "$missing"
}

cmd_start_cluster() {
	local n=${1:-2} i members="" line=""
	if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 2 || n > 9)); then
		die "start-cluster N: N from 2 to 9, got '$n'"
	fi
	installed || die "not installed; run $0 install"
	command -v mosquitto_pub >/dev/null || die "the cluster's readiness probe needs mosquitto's clients; run peers/mosquitto.sh install"
	pick_ports "$n"
	local rpc_ports
	mapfile -t rpc_ports < <(free_ports "$n" "${PORTS[@]}")
	for ((i = 0; i < n; i++)); do
		members+="${members:+, }\"$((i + 1))@127.0.0.1:${rpc_ports[i]}\""
	done
	make_run_dir
	for ((i = 0; i < n; i++)); do
		spawn_node "$((i + 1))" "${PORTS[i]}" "${rpc_ports[i]}" \
			"$STARTUPS, \"rmqtt-cluster-broadcast\"" "$members"
		line+="${line:+ }node$((i + 1))=mqtt://127.0.0.1:${PORTS[i]}"
	done
	echo "${PORTS[*]}" >"$RUN_DIR/ports"
	READY_LINE=$line
	READY_CHECK=cluster_routes
	SUPERVISE=supervise_cluster
	serve "${PORTS[@]}" "${rpc_ports[@]}"
}

# A cluster's start ends when a node exits that `node` did not kill.
supervise_cluster() {
	local dir
	while sleep 0.5; do
		for dir in "$RUN_DIR"/node*/; do
			[[ -f $dir/killed ]] || kill -0 -- "-$(cat "$dir/pid")" 2>/dev/null || return 1
		done
	done
}

# `node DIR kill I`: node I of the cluster whose runtime state is DIR dies at once (SIGKILL to
# its process group: no shutdown of its own). `node DIR restart I`: killed first if it runs,
# then started again with its configuration; returns once its port answers and messages
# route between it and every other node again.
cmd_node() {
	(($# == 3)) || die "node DIR kill|restart I"
	local dir=$1/node$3 action=$2 pid i
	[[ -f $dir/pid && -f $1/ports ]] || die "$1 holds no cluster node $3"
	[[ $action == kill || $action == restart ]] || die "node: unknown action '$action'"
	pid=$(cat "$dir/pid")
	touch "$dir/killed"
	kill -KILL -- "-$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.1
	done
	[[ $action == restart ]] || return 0
	RUN_DIR=$1
	read -r -a PORTS <"$1/ports"
	respawn_node "$dir"
	wait_ports "${PORTS[$3 - 1]}" || die "node $3 did not listen again"
	cluster_routes || die "node $3 listens but messages do not route to and from it"
	rm -f "$dir/killed"
}

main "$@"
