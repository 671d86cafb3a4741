#!/usr/bin/env bash
# aedes 1.2.0 (Node.js, MQTT 3.1.1 only), from npm into the peers cache, served by
# peers/aedes/server.mjs; a cluster's nodes share aedes-persistence-redis 11.2.2 and
# mqemitter-redis 7.2.1 on a redis-server (Debian's) started for it.
#   peers/aedes.sh install              npm install them unless the cache has them (~5 s)
#   peers/aedes.sh start [PORT]         prints `mqtt=mqtt://127.0.0.1:PORT`
#   peers/aedes.sh start-cluster N      N instances on one redis-server on a free port; prints
#                                       `node1=mqtt://127.0.0.1:P1 … nodeN=mqtt://127.0.0.1:PN`
#   peers/aedes.sh node DIR kill|restart I
#                                       node I of the cluster started with
#                                       LASTWILL_PEERS_RUN_DIR=DIR: SIGKILL, or start again
PEER_NAME=aedes
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=1.2.0
HOME_DIR=$PEERS_CACHE/aedes-$VERSION
# The npm packages, pinned; the last two only for clusters.
PACKAGES=(aedes@$VERSION aedes-persistence-redis@11.2.2 mqemitter-redis@7.2.1)

# True when every pinned package is in the cache at its version.
installed() {
	local pkg
	for pkg in "${PACKAGES[@]}"; do
		[[ $(node -p 'require(process.argv[1]).version' "$HOME_DIR/node_modules/${pkg%@*}/package.json" 2>/dev/null) == "${pkg##*@}" ]] || return 1
	done
}

cmd_install() {
	if installed; then
		log "aedes $VERSION (and its redis modules) already in $HOME_DIR"
		return 0
	fi
	command -v npm >/dev/null || die "node and npm are needed for aedes"
	mkdir -p "$HOME_DIR"
	npm install --prefix "$HOME_DIR" --no-audit --no-fund --save-exact "${PACKAGES[@]}" >&2
	installed || die "npm finished but $HOME_DIR lacks one of ${PACKAGES[*]}"
}

cmd_start() {
	installed || die "not installed; run $0 install"
	pick_ports 1 "$@"
	make_run_dir
	spawn_broker "$RUN_DIR" env AEDES_HOME="$HOME_DIR" node "$PEERS_DIR/aedes/server.mjs" "${PORTS[0]}"
	READY_LINE="mqtt=mqtt://127.0.0.1:${PORTS[0]}"
	serve "${PORTS[0]}"
}

cmd_start_cluster() {
	cluster_size "${1:-2}"
	installed || die "not installed; run $0 install"
	command -v redis-server >/dev/null || die "a cluster needs redis-server (Debian's redis-server)"
	local i redis_port
	redis_port=$(free_ports 1 "${PORTS[@]}")
	make_run_dir
	# in memory only: nothing outlives the start
	mkdir "$RUN_DIR/redis"
	echo "$redis_port" >"$RUN_DIR/redis/port"
	spawn_node_process "$RUN_DIR/redis" redis-server --bind 127.0.0.1 --port "$redis_port" \
		--save '' --appendonly no --dir "$RUN_DIR/redis"
	for ((i = 1; i <= NODES; i++)); do
		mkdir "$RUN_DIR/node$i"
		respawn_node "$RUN_DIR/node$i" "$i"
	done
	serve_cluster "$redis_port"
}

# Starts node $2 of the cluster in directory $1 (again) on its port in PORTS.
respawn_node() {
	spawn_node_process "$1" env AEDES_HOME="$HOME_DIR" node "$PEERS_DIR/aedes/server.mjs" \
		"${PORTS[$2 - 1]}" "$(cat "$RUN_DIR/redis/port")"
}

cmd_node() { node_action "$@"; }

main "$@"
