#!/usr/bin/env bash
# amqtt 0.12.1 (Python, MQTT 3.1.1 only), from PyPI into a venv in the peers cache.
#   peers/amqtt.sh install              pip install it unless the cache has it (~20 s)
#   peers/amqtt.sh start [PORT]         prints `mqtt=mqtt://127.0.0.1:PORT`
PEER_NAME=amqtt
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=0.12.1
VENV=$PEERS_CACHE/amqtt-$VERSION/venv

installed() {
	[[ -x $VENV/bin/amqtt ]] &&
		[[ $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("amqtt"))' 2>/dev/null) == "$VERSION" ]]
}

cmd_install() {
	if installed; then
		log "amqtt $VERSION already in $VENV"
		return 0
	fi
	rm -rf "$VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install --quiet "amqtt==$VERSION" >&2
	installed || die "pip finished but $VENV/bin/amqtt is not amqtt $VERSION"
}

cmd_start() {
	installed || die "not installed; run $0 install"
	pick_ports 1 "$@"
	make_run_dir
	render "$PEERS_DIR/amqtt/amqtt.yaml" "$RUN_DIR/amqtt.yaml" PORT="${PORTS[0]}"
	spawn_broker "$RUN_DIR" "$VENV/bin/amqtt" -c "$RUN_DIR/amqtt.yaml"
	READY_LINE="mqtt=mqtt://127.0.0.1:${PORTS[0]}"
	serve "${PORTS[0]}"
}

main "$@"
