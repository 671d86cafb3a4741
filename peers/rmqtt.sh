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

# Starts the node configured in $1 (again; lib.sh's node_action calls it too): in $1, since
# rmqtt also reads ./rmqtt.toml, which must be this node's.
respawn_node() { spawn_node_process "$1" "$BIN" -f "$1/rmqtt.toml"; }

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

cmd_start_cluster() {
	cluster_size "${1:-2}"
	installed || die "not installed; run $0 install"
	local i members="" rpc_ports
	mapfile -t rpc_ports < <(free_ports "$NODES" "${PORTS[@]}")
	for ((i = 0; i < NODES; i++)); do
		members+="${members:+, }\"$((i + 1))@127.0.0.1:${rpc_ports[i]}\""
	done
	make_run_dir
	for ((i = 0; i < NODES; i++)); do
		spawn_node "$((i + 1))" "${PORTS[i]}" "${rpc_ports[i]}" \
			"$STARTUPS, \"rmqtt-cluster-broadcast\"" "$members"
	done
	serve_cluster "${rpc_ports[@]}"
}

cmd_node() { node_action "$@"; }

main "$@"
