#!/usr/bin/env bash
# MQTT.js 5.16.0's command-line client (`mqtt sub`, `mqtt pub`), from npm into the peers cache.
# A client, not a broker: harness/tests/it/mqttjs_cli.rs drives it against the reference broker.
#   peers/mqttjs.sh install              npm install it unless the cache has it (~10 s)
#   peers/mqttjs.sh bin                  prints the path of its `mqtt` executable (exit 1, after
#                                        printing it, when it is not installed there)
PEER_NAME=mqttjs
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=5.16.0
HOME_DIR=$PEERS_CACHE/mqttjs-$VERSION
BIN=$HOME_DIR/node_modules/.bin/mqtt

installed() {
	[[ -x $BIN && $(node -p 'require(process.argv[1]).version' "$HOME_DIR/node_modules/mqtt/package.json" 2>/dev/null) == "$VERSION" ]]
}

cmd_install() {
	if installed; then
		log "mqtt (MQTT.js) $VERSION already in $HOME_DIR"
		return 0
	fi
	command -v npm >/dev/null || die "node and npm are needed for MQTT.js"
	mkdir -p "$HOME_DIR"
	npm install --prefix "$HOME_DIR" --no-audit --no-fund --save-exact "mqtt@$VERSION" >&2
	installed || die "npm finished but mqtt $VERSION is not in $HOME_DIR"
}

cmd_bin() {
	printf '%s\n' "$BIN"
	installed || die "not installed; run $0 install"
}

main "$@"
