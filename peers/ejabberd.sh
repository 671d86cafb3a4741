#!/usr/bin/env bash
# ejabberd 23.01 (Erlang) with mod_mqtt, Debian 12's package.
#   peers/ejabberd.sh install           apt-get install it unless 23.01 is installed
#   peers/ejabberd.sh start [PORT]      prints `mqtt=mqtt://127.0.0.1:PORT`
# Anonymous login still needs *a* user name in CONNECT (any, e.g. -u anon -P x): without one
# ejabberd answers CONNACK 0x87 not-authorized.
PEER_NAME=ejabberd
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=23.01

installed() { apt_has ejabberd "$VERSION"; }

cmd_install() {
	apt_install_pinned ejabberd "$VERSION"
	stop_package_epmd
}

# Installing the package has been seen to leave an `epmd -daemon` listening on 0.0.0.0:4369
# (policy-rc.d keeps ejabberd itself from starting). Nothing here needs it (start runs the node
# without epmd), and nothing may listen beyond loopback, so such an epmd is told to stop.
stop_package_epmd() {
	if ss -Hltn 'sport = :4369' | grep -qv '127.0.0.1:4369'; then
		log "stopping the epmd that the package started on 0.0.0.0:4369"
		epmd -kill >/dev/null || die "epmd -kill failed; stop the epmd on 0.0.0.0:4369 by hand"
	fi
}

cmd_start() {
	installed || die "not installed; run $0 install"
	need_root "starting ejabberd as its own user"
	pick_ports 1 "$@"
	local dist_port node
	dist_port=$(free_ports 1 "${PORTS[@]}")
	node="lastwill_${PORTS[0]}@localhost"
	make_run_dir
	mkdir -p "$RUN_DIR"/{conf,logs,spool,home}
	render "$PEERS_DIR/ejabberd/ejabberd.yml" "$RUN_DIR/conf/ejabberd.yml" PORT="${PORTS[0]}"
	render "$PEERS_DIR/ejabberd/ejabberdctl.cfg" "$RUN_DIR/conf/ejabberdctl.cfg" \
		DIST_PORT="$dist_port" RUN_DIR="$RUN_DIR"
	cp /etc/ejabberd/inetrc "$RUN_DIR/conf/"
	chown -R ejabberd:ejabberd "$RUN_DIR"/{conf,logs,spool,home}
	# setpriv, not ejabberdctl's own `su`: su resets the open-file limit to 1024, and beam then
	# stalls at ~1,050 connections in the storm bench. Raise the limit first; setpriv keeps it.
	ulimit -n "$(ulimit -Hn)"
	spawn_broker "$RUN_DIR" setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
		env HOME="$RUN_DIR/home" ejabberdctl --config-dir "$RUN_DIR/conf" \
		--config "$RUN_DIR/conf/ejabberd.yml" --ctl-config "$RUN_DIR/conf/ejabberdctl.cfg" \
		--logs "$RUN_DIR/logs" --spool "$RUN_DIR/spool" --node "$node" foreground
	READY_LINE="mqtt=mqtt://127.0.0.1:${PORTS[0]}"
	serve "${PORTS[0]}"
}

main "$@"
