#!/usr/bin/env bash
# Back-to-back profile-gated matrix runs against one Mosquitto 2.0.11, checking after each run
# that nothing retained is left on the broker (a leak is a bug: a leftover can fail a later
# scenario, and the gate must never be flaky).
#   peers/soak-matrix.sh [N]            N runs (default 20) with the default --jobs
#   LASTWILL_SOAK_INSTANCES=4 peers/soak-matrix.sh 20   the same over 4 identical instances
# Environment: LASTWILL (the binary, default target/release/lastwill, else target/debug/lastwill),
# LASTWILL_SOAK_ARGS (extra `lastwill matrix` arguments). Prints one line per run and a summary
# line; exits 0 only when every run passed the gate and left nothing retained. Each run's
# output is kept in the run directory named on stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-20}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || {
	echo "soak-matrix: N must be a positive number, not '$RUNS'" >&2
	exit 1
}
LASTWILL=${LASTWILL:-}
if [[ -z $LASTWILL ]]; then
	LASTWILL=$ROOT/target/release/lastwill
	[[ -x $LASTWILL ]] || LASTWILL=$ROOT/target/debug/lastwill
fi
[[ -x $LASTWILL ]] || {
	echo "soak-matrix: no lastwill binary (cargo build --release)" >&2
	exit 1
}
command -v mosquitto_sub >/dev/null || {
	echo "soak-matrix: mosquitto_sub not found (peers/mosquitto.sh install)" >&2
	exit 1
}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/lastwill-soak.XXXXXX")
echo "soak-matrix: outputs in $OUT" >&2

# Identical instances (LASTWILL_SOAK_INSTANCES, default 1) form one multi-instance target, as
# the CI gate does: the scenarios that need a broker to themselves then run side by side.
INSTANCES=${LASTWILL_SOAK_INSTANCES:-1}
[[ $INSTANCES =~ ^[1-9][0-9]*$ ]] || {
	echo "soak-matrix: LASTWILL_SOAK_INSTANCES must be a positive number" >&2
	exit 1
}
broker_pids=()
stop_brokers() {
	for pid in "${broker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${broker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_brokers EXIT
for i in $(seq 1 "$INSTANCES"); do
	"$ROOT/peers/mosquitto.sh" start >"$OUT/broker-$i.address" 2>"$OUT/broker-$i.log" &
	broker_pids+=("$!")
done
ports=()
for i in $(seq 1 "$INSTANCES"); do
	# peers/mosquitto.sh prints its one `mqtt=mqtt://127.0.0.1:PORT` line once it listens
	for _ in $(seq 1 600); do
		[[ -s $OUT/broker-$i.address ]] && break
		kill -0 "${broker_pids[$((i - 1))]}" 2>/dev/null || break
		sleep 0.1
	done
	line=$(head -n 1 "$OUT/broker-$i.address")
	[[ $line == mqtt=mqtt://127.0.0.1:* ]] || {
		echo "soak-matrix: mosquitto $i did not start (log: $OUT/broker-$i.log)" >&2
		exit 1
	}
	ports+=("${line##*:}")
done
URL=mqtt://$(printf '127.0.0.1:%s,' "${ports[@]}")
URL=${URL%,}
echo "soak-matrix: mosquitto at $URL, $RUNS runs" >&2

# Every retained message on every instance, one `topic payload` line each: mosquitto sends
# the retained messages right after SUBACK, so -W 2 (then exit 27) is plenty on loopback.
retained() {
	for port in "${ports[@]}"; do
		mosquitto_sub -h 127.0.0.1 -p "$port" -t '#' -v --retained-only -W 2 2>/dev/null || true
	done
}

failed=0
leaked=0
for run in $(seq 1 "$RUNS"); do
	start=$(date +%s)
	status=pass
	# shellcheck disable=SC2086 # LASTWILL_SOAK_ARGS is a list of words
	if ! "$LASTWILL" matrix --target "mosquitto=$URL" \
		--profile "$ROOT/profiles/mosquitto-2.0.11.yaml" ${LASTWILL_SOAK_ARGS:-} \
		>"$OUT/run-$run.out" 2>"$OUT/run-$run.err"; then
		status=FAIL
		failed=$((failed + 1))
	fi
	left=$(retained)
	count=0
	if [[ -n $left ]]; then
		count=$(wc -l <<<"$left")
		leaked=$((leaked + 1))
		printf '%s\n' "$left" >"$OUT/run-$run.retained"
	fi
	echo "run $run/$RUNS: gate $status, $count retained left, $(($(date +%s) - start)) s"
done
echo "soak-matrix: $RUNS runs, $failed failed the gate, $leaked left retained messages"
[[ $failed -eq 0 && $leaked -eq 0 ]]
