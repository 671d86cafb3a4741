#!/usr/bin/env bash
# The README's matrix: the catalogue on the reference broker (in the simulator) and on the six
# real brokers, each started by its peers/<name>.sh with the configuration its profile was
# observed with, each gated by profiles/<broker>-<version>.yaml.
#   peers/matrix.sh [LASTWILL_MATRIX_ARGS…]      e.g. --repeat 3 --format markdown --output m.md
# LASTWILL (default target/release/lastwill) is the binary; INSTANCES (default 4) how many
# identical instances of each broker serve the exclusive scenarios side by side.
# Exits with lastwill's status (1: a profile no longer matches).
PEER_NAME=matrix
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LASTWILL=${LASTWILL:-$PEERS_DIR/../target/release/lastwill}
INSTANCES=${INSTANCES:-4}
[[ -x $LASTWILL ]] || die "$LASTWILL is missing: cargo build --release (or set LASTWILL)"

# broker script, profile, credentials (ejabberd's anonymous login needs a user name)
BROKERS=(
	"mosquitto mosquitto-2.0.11.yaml"
	"rumqttd rumqttd-0.20.0.yaml"
	"rmqtt rmqtt-0.24.0.yaml"
	"amqtt amqtt-0.12.1.yaml"
	"aedes aedes-1.2.0.yaml"
	"ejabberd ejabberd-23.01.yaml anon:x@"
)

lines=$(mktemp -d "${TMPDIR:-/tmp}/lastwill-matrix.XXXXXX")
starts=()
# shellcheck disable=SC2317 # run by the EXIT trap
stop() {
	local pid
	for pid in "${starts[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${starts[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$lines"
}
trap stop EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

for entry in "${BROKERS[@]}"; do
	read -r name _ <<<"$entry"
	for ((i = 0; i < INSTANCES; i++)); do
		"$PEERS_DIR/$name.sh" start >"$lines/$name.$i" 2>>"$lines/$name.log" &
		starts+=("$!")
	done
done

# Each start prints its address line once the broker listens (or exits 1 on failure).
ready_line() {
	local file=$1 pid=$2
	until [[ -s $file ]]; do
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.2
	done
	cat "$file"
}

targets=(--target ref)
profiles=()
n=0
for entry in "${BROKERS[@]}"; do
	read -r name profile userinfo <<<"$entry"
	instances=()
	for ((i = 0; i < INSTANCES; i++, n++)); do
		line=$(ready_line "$lines/$name.$i" "${starts[n]}") || {
			log "peers/$name.sh start failed:"
			tail -n 20 "$lines/$name.log" >&2
			exit 1
		}
		# mqtt=mqtt://H:P, or rumqttd's v311=mqtt://H:P4 v5=mqtt://H:P5 (one instance, two ports)
		declare -A field=()
		for f in $line; do field[${f%%=*}]=${f#*=mqtt://}; done
		if [[ -n ${field[v5]:-} ]]; then
			instances+=("${field[v311]}?v5=${field[v5]}")
		else
			instances+=("${field[mqtt]}")
		fi
		unset field
	done
	targets+=(--target "$name=mqtt://${userinfo:-}$(
		IFS=,
		echo "${instances[*]}"
	)")
	profiles+=(--profile "$name=$PEERS_DIR/../profiles/$profile")
done
log "running: lastwill matrix ${targets[*]} ${profiles[*]} $*"
status=0
"$LASTWILL" matrix "${targets[@]}" "${profiles[@]}" "$@" || status=$?
exit "$status"
