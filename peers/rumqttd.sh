#!/usr/bin/env bash
# rumqttd 0.20.0 (bytebeamio), built with cargo into the peers cache.
#   peers/rumqttd.sh install            build it unless the cache has it (~15 min at -j1)
#   peers/rumqttd.sh start [V4 [V5]]    serve MQTT 3.1.1 on V4 and MQTT 5 on V5 (free ports if
#                                       omitted); prints `v311=mqtt://127.0.0.1:V4 v5=mqtt://127.0.0.1:V5`
PEER_NAME=rumqttd
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=0.20.0
ROOT=$PEERS_CACHE/rumqttd-$VERSION
BIN=$ROOT/bin/rumqttd

installed() { [[ -x $BIN ]] && grep -q "^\"rumqttd $VERSION " "$ROOT/.crates.toml" 2>/dev/null; }

cmd_install() {
	if installed; then
		log "rumqttd $VERSION already in $ROOT"
		return 0
	fi
	command -v cargo >/dev/null || die "cargo is needed to build rumqttd"
	mkdir -p "$ROOT"
	# Not --locked: rumqttd 0.20.0's lock file pins metrics 0.22.1, which no longer compiles on
	# rustc 1.95 (E0521 in recorder/mod.rs); a fresh resolution picks metrics 0.22.4, which does.
	# nice: the machine's cores are shared with other builds.
	CARGO_TARGET_DIR=$PEERS_CACHE/build/rumqttd nice -n 19 \
		cargo install "rumqttd@$VERSION" --root "$ROOT" -j "${LASTWILL_PEERS_JOBS:-2}" >&2
	installed || die "cargo install finished but $BIN is missing"
	# The build tree is only needed to build again; the binary is all that is kept.
	rm -rf "$PEERS_CACHE/build/rumqttd"
	rmdir "$PEERS_CACHE/build" 2>/dev/null || true
}

cmd_start() {
	installed || die "not installed; run $0 install"
	pick_ports 2 "$@"
	make_run_dir
	render "$PEERS_DIR/rumqttd/rumqttd.toml" "$RUN_DIR/rumqttd.toml" \
		PORT_V4="${PORTS[0]}" PORT_V5="${PORTS[1]}"
	spawn_broker "$RUN_DIR" "$BIN" -c "$RUN_DIR/rumqttd.toml" -q
	READY_LINE="v311=mqtt://127.0.0.1:${PORTS[0]} v5=mqtt://127.0.0.1:${PORTS[1]}"
	serve "${PORTS[@]}"
}

main "$@"
