# shellcheck shell=bash
# Shared by peers/<name>.sh: where things live, free loopback ports, readiness, and the
# foreground lifecycle of a started broker. Sourced, never run.

set -euo pipefail

# shellcheck disable=SC2034 # for the scripts that source this file
PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Long builds live outside the clone so a fresh checkout on a machine that already has them
# pays nothing.
# shellcheck disable=SC2034
PEERS_CACHE=${LASTWILL_PEERS_CACHE:-/var/cache/lastwill-peers}
# How long `start` waits for a broker's listeners before giving up.
PEERS_START_TIMEOUT=${LASTWILL_PEERS_START_TIMEOUT:-60}

log() { printf '%s: %s\n' "${PEER_NAME:-peers}" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

need_root() { [[ $(id -u) -eq 0 ]] || die "$1 needs root (apt-get, system users)"; }

# Installs Debian package $1 at upstream version $2 unless that version is already installed.
# The upstream version is pinned; the Debian revision is whatever the archive carries.
apt_install_pinned() {
	local pkg=$1 want=$2 candidate
	if apt_has "$pkg" "$want"; then
		log "$pkg $(dpkg-query -W -f='${Version}' "$pkg") already installed"
		return 0
	fi
	need_root "installing $pkg"
	apt_lock
	candidate=$(apt_candidate "$pkg")
	if ! upstream_is "$candidate" "$want"; then
		log "apt-get update (candidate for $pkg is '${candidate:-none}')"
		apt_get update -qq >&2
		candidate=$(apt_candidate "$pkg")
	fi
	upstream_is "$candidate" "$want" || die "$pkg $want is not in the archive (candidate '${candidate:-none}')"
	apt_get install -y -qq --no-install-recommends "$pkg=$candidate" >&2
}

# True when Debian package $1 is installed at upstream version $2.
apt_has() {
	local have
	have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null || true)
	[[ $have == "installed "* ]] && upstream_is "${have#installed }" "$2"
}

# install-all.sh runs the cargo builds (rmqtt needs protoc) beside the apt installs: one apt at
# a time among these scripts, and waiting rather than failing on anyone else's dpkg lock.
apt_lock() {
	exec {APT_LOCK_FD}>/var/lock/lastwill-peers-apt.lock
	flock "$APT_LOCK_FD"
}
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }

# Installs Debian package $1 (any version) unless it is installed: for build tools.
apt_ensure() {
	dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed && return 0
	need_root "installing $1"
	apt_lock
	apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]' || apt_get update -qq >&2
	apt_get install -y -qq --no-install-recommends "$1" >&2
}

# True when Debian version $1 ([epoch:]upstream[-revision]) has upstream version $2.
upstream_is() {
	local v=${1#*:}
	[[ -n $1 && ($v == "$2" || $v == "$2"-*) ]]
}

apt_candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'; }

# $1 distinct TCP ports on 127.0.0.1 that nothing uses now, none of them among "${@:2}", one a
# line. The kernel picks them; all sockets are held open together, so no port comes twice.
free_ports() {
	python3 - "$@" <<-'PY'
		import socket, sys
		want, taken = int(sys.argv[1]), set(sys.argv[2:])
		held, ports = [], []
		while len(ports) < want:
		    s = socket.socket()
		    s.bind(("127.0.0.1", 0))
		    held.append(s)
		    port = str(s.getsockname()[1])
		    if port not in taken:
		        ports.append(port)
		print("\n".join(ports))
	PY
}

# True once something accepts TCP connections on 127.0.0.1:$1.
port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until every port in "$@" answers, failing early if a spawned broker has died.
wait_ports() {
	local deadline=$((SECONDS + PEERS_START_TIMEOUT)) port pid
	for port in "$@"; do
		until port_answers "$port"; do
			for pid in "${BROKER_PIDS[@]}"; do
				kill -0 "$pid" 2>/dev/null || return 1
			done
			((SECONDS < deadline)) || return 1
			sleep 0.1
		done
	done
}

# Copies template $1 to $2, replacing each @KEY@ by VALUE for the KEY=VALUE pairs that follow.
render() {
	local template=$1 out=$2 kv script=()
	shift 2
	for kv in "$@"; do
		script+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
	done
	sed "${script[@]}" "$template" >"$out"
	! grep -q '@[A-Z_]*@' "$out" || die "$template: unreplaced placeholder in $out"
}

# Runtime state (configs, logs, pid files, spool) of one start, outside the clone. Sets RUN_DIR
# and arms the cleanup: from here on, however the script ends (SIGTERM, SIGINT, an error), the
# brokers spawned so far are stopped and RUN_DIR is removed (`LASTWILL_PEERS_KEEP=1` keeps it).
make_run_dir() {
	if [[ -n ${LASTWILL_PEERS_RUN_DIR:-} ]]; then
		# the caller names it, to reach the start's nodes (`rmqtt.sh node DIR …`)
		mkdir "$LASTWILL_PEERS_RUN_DIR" || die "cannot create $LASTWILL_PEERS_RUN_DIR"
		RUN_DIR=$LASTWILL_PEERS_RUN_DIR
	else
		RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lastwill-$PEER_NAME.XXXXXX")
	fi
	chmod 755 "$RUN_DIR"
	trap 'stop_brokers 143' TERM
	trap 'stop_brokers 130' INT
	trap 'stop_brokers $?' EXIT
}

# Runs "${@:2}" as a broker in directory $1 (its cwd, and where broker.log goes), in its own
# process group so that helpers it forks die with it. Appends its pid to BROKER_PIDS.
spawn_broker() {
	local dir=$1
	shift
	(cd "$dir" && exec setsid "$@" >>"$dir/broker.log" 2>&1 </dev/null) &
	BROKER_PIDS+=("$!")
}
BROKER_PIDS=()

# Stops every spawned broker (TERM, then KILL after 10 s), removes $RUN_DIR, exits with $1.
stop_brokers() {
	local status=$1 pid i f
	trap - TERM INT EXIT
	# brokers started again by another command (`rmqtt.sh node DIR restart N`) left pid files
	if [[ -n ${RUN_DIR:-} ]]; then
		for f in "$RUN_DIR"/*/pid; do
			[[ -f $f ]] && BROKER_PIDS+=("$(cat "$f")")
		done
	fi
	for pid in "${BROKER_PIDS[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for pid in "${BROKER_PIDS[@]}"; do
		# The whole group: a broker's launcher (ejabberdctl) may exit before the VM it started.
		for ((i = 0; i < 100; i++)); do
			kill -0 -- "-$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n ${RUN_DIR:-} ]]; then
		if [[ ${LASTWILL_PEERS_KEEP:-0} == 1 ]]; then
			log "kept $RUN_DIR"
		else
			rm -rf "$RUN_DIR"
		fi
	fi
	exit "$status"
}

# The last lines of every broker.log of this start, on stderr.
show_logs() {
	local f
	while IFS= read -r f; do
		printf '%s\n' "--- $f" >&2
		tail -n 40 "$f" >&2
	done < <(find "$RUN_DIR" -name broker.log | sort)
}

# The foreground part of `start`, after spawn_broker: waits for the ports in "$@" (and, if
# READY_CHECK names a function, until it succeeds), prints $READY_LINE on stdout (the one
# machine-readable line), then stays until a broker exits or this script gets SIGTERM/SIGINT.
serve() {
	if ! wait_ports "$@"; then
		log "broker did not accept connections on 127.0.0.1:{$(
			IFS=,
			echo "$*"
		)} within ${PEERS_START_TIMEOUT}s; its log:"
		show_logs
		stop_brokers 1
	fi
	if [[ -n ${READY_CHECK:-} ]] && ! "$READY_CHECK"; then
		log "listening, but $READY_CHECK failed within ${PEERS_START_TIMEOUT}s; the log:"
		show_logs
		stop_brokers 1
	fi
	printf '%s\n' "$READY_LINE"
	log "ready (runtime state in $RUN_DIR; SIGTERM stops it)"
	local status=0
	if [[ -n ${SUPERVISE:-} ]]; then
		"$SUPERVISE" || status=$?
	else
		# Any broker exiting by itself ends the start: `wait -n` returns on the first.
		wait -n "${BROKER_PIDS[@]}" || status=$?
	fi
	log "broker exited by itself (status $status); its log:"
	show_logs
	stop_brokers 1
}

# Ports for `start`: the ones given on the command line, else free ones; $1 is how many.
# Sets PORTS.
pick_ports() {
	local want=$1
	shift
	PORTS=("$@")
	((${#PORTS[@]} <= want)) || die "at most $want port(s), got ${#PORTS[@]}"
	local p
	for p in "${PORTS[@]}"; do
		if ! [[ $p =~ ^[0-9]+$ ]] || ((p == 0 || p > 65535)); then
			die "bad port '$p'"
		fi
		! port_answers "$p" || die "port $p on 127.0.0.1 is already in use"
	done
	if ((${#PORTS[@]} < want)); then
		mapfile -t -O "${#PORTS[@]}" PORTS < <(free_ports "$((want - ${#PORTS[@]}))" "${PORTS[@]}")
	fi
}

# ---- Clusters: `start-cluster N` of a script starts N nodes of one broker, node I in
# $RUN_DIR/nodeI/ (its pid file there), and `node DIR kill|restart I` acts on one of them. The
# script defines respawn_node DIR I, which starts node I configured in DIR (again).

# Checks `start-cluster`'s node count $1 (2 to 9) and the route probe's clients; sets NODES
# and PORTS (a free MQTT port per node).
cluster_size() {
	if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 2 || $1 > 9)); then
		die "start-cluster N: N from 2 to 9, got '$1'"
	fi
	NODES=$1
	command -v mosquitto_pub >/dev/null || die "the cluster's readiness probe needs mosquitto's clients; run peers/mosquitto.sh install"
	pick_ports "$NODES"
}

# spawn_broker for a cluster node in directory $1: its pid (its process group) goes to $1/pid,
# where node_action and stop_brokers find it.
spawn_node_process() {
	spawn_broker "$@"
	echo "${BROKER_PIDS[-1]}" >"$1/pid"
}

# The foreground part of `start-cluster`, once the nodes are spawned on PORTS: prints
# `node1=mqtt://127.0.0.1:P1 … nodeN=…` once every node listens (and every other port in "$@")
# and messages route between every pair of nodes, then stays until a node exits that
# node_action did not kill.
serve_cluster() {
	local i line=""
	for i in "${!PORTS[@]}"; do
		line+="${line:+ }node$((i + 1))=mqtt://127.0.0.1:${PORTS[i]}"
	done
	echo "${PORTS[*]}" >"$RUN_DIR/ports"
	READY_LINE=$line
	READY_CHECK=cluster_routes
	SUPERVISE=supervise_cluster
	serve "${PORTS[@]}" "$@"
}

# Listening is not enough for a cluster: the nodes' links come up a little later (rmqtt's gRPC
# a second or two), and until then a message published on one node does not reach subscribers
# on another. So the cluster is ready once, for every ordered pair of nodes, a message
# published on the first reaches a subscriber on the second (publishes repeat every half
# second until they do).
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

# A cluster's start ends when a process it spawned with a pid file (a node, or what the nodes
# share) exits and node_action did not kill it.
supervise_cluster() {
	local f
	while sleep 0.5; do
		for f in "$RUN_DIR"/*/pid; do
			[[ -f ${f%/pid}/killed ]] || kill -0 -- "-$(cat "$f")" 2>/dev/null || return 1
		done
	done
}

# `node DIR kill I`: node I of the cluster whose runtime state is DIR dies at once (SIGKILL to
# its process group: no shutdown of its own). `node DIR restart I`: killed first if it runs,
# then started again by respawn_node; returns once its port answers and messages route
# between it and every other node again.
node_action() {
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
	respawn_node "$dir" "$3"
	wait_ports "${PORTS[$3 - 1]}" || die "node $3 did not listen again"
	cluster_routes || die "node $3 listens but messages do not route to and from it"
	rm -f "$dir/killed"
}

# Dispatches `peers/<name>.sh COMMAND ARGS…` to the script's cmd_COMMAND function.
main() {
	local cmd=${1:-}
	shift || true
	if [[ -n $cmd ]] && declare -F "cmd_${cmd//-/_}" >/dev/null; then
		"cmd_${cmd//-/_}" "$@"
	else
		printf 'usage: %s {%s} [ARG…]\n' "$0" "$(declare -F | awk '$3 ~ /^cmd_/ { sub(/^cmd_/, "", $3); gsub(/_/, "-", $3); printf "%s%s", sep, $3; sep = "|" }')" >&2
		exit 2
	fi
}
