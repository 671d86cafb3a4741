#!/usr/bin/env bash
# mosquitto 2.0.11, Debian 12's package: the baseline real broker (MQTT 3.1, 3.1.1 and 5).
#   peers/mosquitto.sh install          apt-get install it (and its clients) unless 2.0.11 is installed
#   peers/mosquitto.sh start [PORT]     prints `mqtt=mqtt://127.0.0.1:PORT`
PEER_NAME=mosquitto
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=2.0.11

# The clients (mosquitto_sub/pub) are what peers/check.sh and rmqtt's cluster probe use.
installed() { apt_has mosquitto "$VERSION"; }

cmd_install() {
	apt_install_pinned mosquitto "$VERSION"
	apt_install_pinned mosquitto-clients "$VERSION"
}

cmd_start() {
	installed || die "not installed; run $0 install"
	pick_ports 1 "$@"
	make_run_dir
	render "$PEERS_DIR/mosquitto/mosquitto.conf" "$RUN_DIR/mosquitto.conf" PORT="${PORTS[0]}"
	spawn_broker "$RUN_DIR" mosquitto -c "$RUN_DIR/mosquitto.conf"
	READY_LINE="mqtt=mqtt://127.0.0.1:${PORTS[0]}"
	serve "${PORTS[0]}"
}

main "$@"
