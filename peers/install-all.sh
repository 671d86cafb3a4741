#!/usr/bin/env bash
# Installs all six real brokers and prints how long each took:
#   peers/install-all.sh
# The two cargo builds (rmqtt, then rumqttd: ~15-20 min each at -j1) start first, in the
# background, one after the other (two at once would only fight over the cores); the package
# installs (mosquitto, ejabberd, amqtt, aedes) run meanwhile. Each install's output goes to a
# log in a temp directory, kept and named when something fails.
PEER_NAME=install-all
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILDS=(rmqtt rumqttd)
PACKAGES=(mosquitto ejabberd amqtt aedes)

logs=$(mktemp -d "${TMPDIR:-/tmp}/lastwill-peers-install.XXXXXX")

# Installs broker $1, appending "NAME SECONDS ok|FAILED" to $logs/times.
install_one() {
	local name=$1 start=$SECONDS result=ok
	"$PEERS_DIR/$name.sh" install >"$logs/$name.log" 2>&1 || result=FAILED
	echo "$name $((SECONDS - start)) $result" >>"$logs/times"
	log "$name: $result after $((SECONDS - start)) s"
}

total=$SECONDS
(for name in "${BUILDS[@]}"; do install_one "$name"; done) &
builds=$!
log "building ${BUILDS[*]} in the background (logs in $logs)"
for name in "${PACKAGES[@]}"; do install_one "$name"; done
wait "$builds"

failed=0
printf '%-10s %8s  %s\n' broker seconds result
for name in "${BUILDS[@]}" "${PACKAGES[@]}"; do
	read -r _ secs result < <(grep "^$name " "$logs/times")
	printf '%-10s %8s  %s\n' "$name" "$secs" "$result"
	if [[ $result != ok ]]; then
		failed=1
		log "$name failed; the end of $logs/$name.log:"
		tail -n 20 "$logs/$name.log" >&2
	fi
done
printf '%-10s %8s\n' total "$((SECONDS - total))"
if ((failed)); then
	log "logs kept in $logs"
	exit 1
fi
rm -rf "$logs"
