#!/usr/bin/env bash
# aedes 1.2.0 (Node.js, MQTT 3.1.1 only), from npm into the peers cache, served by
# peers/aedes/server.mjs.
#   peers/aedes.sh install              npm install it unless the cache has it (~5 s)
#   peers/aedes.sh start [PORT]         prints `mqtt=mqtt://127.0.0.1:PORT`
PEER_NAME=aedes
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=1.2.0
HOME_DIR=$PEERS_CACHE/aedes-$VERSION

installed() {
	[[ $(node -p 'require(process.argv[1]).version' "$HOME_DIR/node_modules/aedes/package.json" 2>/dev/null) == "$VERSION" ]]
}

cmd_install() {
	if installed; then
		log "aedes $VERSION already in $HOME_DIR"
		return 0
	fi
	command -v npm >/dev/null || die "node and npm are needed for aedes"
	mkdir -p "$HOME_DIR"
	npm install --prefix "$HOME_DIR" --no-audit --no-fund --save-exact "aedes@$VERSION" >&2
	installed || die "npm finished but aedes $VERSION is not in $HOME_DIR"
}

cmd_start() {
	installed || die "not installed; run $0 install"
	pick_ports 1 "$@"
	make_run_dir
	spawn_broker "$RUN_DIR" env AEDES_HOME="$HOME_DIR" node "$PEERS_DIR/aedes/server.mjs" "${PORTS[0]}"
	READY_LINE="mqtt=mqtt://127.0.0.1:${PORTS[0]}"
	serve "${PORTS[0]}"
}

main "$@"
