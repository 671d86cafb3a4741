#!/usr/bin/env bash
# Checks that a started broker answers and delivers a Will message, with mosquitto's clients.
#   peers/check.sh [-V mqttv311|mqttv5] [-u USER -P PASS] SUB_URL [PUB_URL]
# SUB_URL and PUB_URL are mqtt://127.0.0.1:PORT (PUB_URL defaults to SUB_URL; give another
# node's address to check a cluster). Two checks, one line each on stdout:
#   pubsub  a subscriber on SUB_URL receives a message published on PUB_URL
#   will    a watcher on SUB_URL receives the will of a client on PUB_URL killed with SIGKILL
#           (no DISCONNECT, so the broker must publish the will [MQTT-3.1.2-8])
# Exits 0 when both pass, 1 otherwise.
PEER_NAME=check
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version=mqttv311
auth=()
while getopts 'V:u:P:' opt; do
	case $opt in
	V) version=$OPTARG ;;
	u | P) auth+=("-$opt" "$OPTARG") ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
(($# == 1 || $# == 2)) || {
	sed -n '3p' "$0" >&2
	exit 2
}

# "mqtt://127.0.0.1:PORT" (or "label=mqtt://…", as `start` prints it) -> "-h 127.0.0.1 -p PORT"
endpoint() {
	local url=${1#*=}
	[[ $url =~ ^mqtt://([^:/]+):([0-9]+)$ ]] || die "bad address '$1' (want mqtt://HOST:PORT)"
	printf '%s\n' -h "${BASH_REMATCH[1]}" -p "${BASH_REMATCH[2]}"
}
mapfile -t sub_at < <(endpoint "$1")
mapfile -t pub_at < <(endpoint "${2:-$1}")
client=(-V "$version" "${auth[@]}")
topic=lastwill-check/$$-$RANDOM

# A subscriber's SUBACK cannot be observed from outside mosquitto_sub; half a second is ample on
# loopback, and a slower broker shows up as a failed check rather than a hang (-W bounds it).
settle() { sleep 0.5; }

pubsub() {
	local out
	out=$(mktemp)
	mosquitto_sub "${client[@]}" "${sub_at[@]}" -t "$topic/msg" -C 1 -W 5 >"$out" &
	local sub=$!
	settle
	mosquitto_pub "${client[@]}" "${pub_at[@]}" -t "$topic/msg" -m hello -q 1
	wait "$sub" || true
	[[ $(cat "$out") == hello ]]
	local ok=$?
	rm -f "$out"
	return "$ok"
}

will() {
	local out
	out=$(mktemp)
	mosquitto_sub "${client[@]}" "${sub_at[@]}" -t "$topic/will/#" -C 1 -W 10 -v >"$out" &
	local watcher=$!
	settle
	mosquitto_sub "${client[@]}" "${pub_at[@]}" -t "$topic/idle" -k 30 \
		--will-topic "$topic/will/x" --will-payload gone --will-qos 1 >/dev/null &
	local dying=$!
	settle
	kill -KILL "$dying"
	wait "$dying" 2>/dev/null || true
	wait "$watcher" || true
	[[ $(cat "$out") == "$topic/will/x gone" ]]
	local ok=$?
	rm -f "$out"
	return "$ok"
}

status=0
if pubsub; then echo "pubsub ok"; else
	echo "pubsub FAILED"
	status=1
fi
if will; then echo "will ok"; else
	echo "will FAILED"
	status=1
fi
exit $status
