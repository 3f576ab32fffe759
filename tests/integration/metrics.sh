#!/usr/bin/env bash
# tests/integration/metrics.sh - the optional Prometheus listener: off by
# default; on a unix socket or a loopback TCP port when configured; its text
# passes promtool (Prometheus' own parser and linter) and its numbers follow
# the traffic.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"

t_group metrics
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BALLAST_BUILD:-${BUILD:-$ROOT/build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
for c in promtool curl jq; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done

T=$(mktemp -d /tmp/ballast-metrics.XXXXXX)
PID=
stop_daemon() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
		PID=
	fi
}
cleanup() {
	stop_daemon
	if [ "$TAP_FAIL" -eq 0 ]; then rm -rf "$T"; else printf '# test directory kept: %s\n' "$T"; fi
}
t_at_exit cleanup

# start_daemon EXTRA_CONFIG_LINE: run ballastd with a fresh state dir.
start_daemon() {
	rm -rf "$T/state"
	printf '[ballast]\nsocket = %s\nstate_dir = %s\nhelper = %s\n%s\n' \
		"$T/b.sock" "$T/state" "$BUILD/mount.ballast" "$1" >"$T/b.conf"
	"$BUILD/ballastd" --config "$T/b.conf" >"$T/log" 2>&1 &
	PID=$!
	local end=$((SECONDS + 10)) # 10 s in all, whatever each try costs
	while [ "$SECONDS" -le "$end" ]; do
		curl -s --max-time 2 --unix-socket "$T/b.sock" -X POST http://b/Plugin.Activate >/dev/null &&
			served "$T/b.sock" && return 0
		sleep 0.1
	done
	cat "$T/log" >&2
	return 1
}
call() { curl -s --max-time 30 --unix-socket "$T/b.sock" -X POST -d "$2" "http://b/$1" >/dev/null; }
# value METRICS_FILE SERIES: the sample value of one series line
value() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }

# Off by default.
start_daemon "" || t_die "ballastd did not start"
t_nomatch "no metrics listener without [ballast] metrics" 'serving metrics' "$(cat "$T/log")"
t_eq "no TCP listener of ballastd" "" \
	"$(ss -Hltnp 2>/dev/null | grep "pid=$PID," || true)"
stop_daemon

# On a unix socket.
start_daemon "metrics = unix:$T/m.sock" || t_die "ballastd with metrics did not start"
t_eq "the metrics socket is mode 660" "660" "$(stat -c %a "$T/m.sock" 2>&1)"
call VolumeDriver.Create '{"Name":"m1"}'
call VolumeDriver.Create '{"Name":"m2","Opts":{}}'
call VolumeDriver.Create '{"Name":"bad/name"}'
call VolumeDriver.Mount '{"Name":"m1","ID":"i1"}'
call VolumeDriver.Mount '{"Name":"m2","ID":"i2"}'
call VolumeDriver.Unmount '{"Name":"m2","ID":"i2"}'
for _ in 1 2 3; do call VolumeDriver.Get '{"Name":"m1"}'; done
call VolumeDriver.Get '{"Name":"nope"}'
t_ok "scrape /metrics over the unix socket" \
	curl -sf --max-time 10 --unix-socket "$T/m.sock" -o "$T/m.txt" http://b/metrics
t_eq "promtool check metrics accepts the text" "" "$(promtool check metrics <"$T/m.txt" 2>&1)"
t_eq "every series is prefixed ballast_" "" \
	"$(grep -v '^#' "$T/m.txt" | grep -v '^ballast_' | head -3)"
f=$T/m.txt
t_eq "Create ok counted" 2 "$(value "$f" 'ballast_requests_total{endpoint="VolumeDriver.Create",outcome="ok"}')"
t_eq "Create error counted" 1 "$(value "$f" 'ballast_requests_total{endpoint="VolumeDriver.Create",outcome="error"}')"
t_eq "Get ok counted" 3 "$(value "$f" 'ballast_requests_total{endpoint="VolumeDriver.Get",outcome="ok"}')"
t_eq "Get error counted" 1 "$(value "$f" 'ballast_requests_total{endpoint="VolumeDriver.Get",outcome="error"}')"
t_eq "the Get histogram counts every Get" 4 \
	"$(value "$f" 'ballast_request_duration_seconds_count{endpoint="VolumeDriver.Get"}')"
t_eq "the +Inf bucket equals the count" 4 \
	"$(value "$f" 'ballast_request_duration_seconds_bucket{endpoint="VolumeDriver.Get",le="+Inf"}')"
t_eq "volumes by backend" 2 "$(value "$f" 'ballast_volumes{backend="local"}')"
t_eq "active mounts" 1 "$(value "$f" 'ballast_active_mounts')"
t_eq "no backend errors" 0 "$(value "$f" 'ballast_backend_errors_total{backend="local"}')"
t_eq "no snapshots yet (the control)" 0 "$(value "$f" 'ballast_snapshots{backend="local"}')"
# Issue 19: snapshots are counted by backend (m2 is not in use)
call Ballast.Snapshot '{"Name":"m2","Snapshot":"s1"}'
call Ballast.Snapshot '{"Name":"m2","Snapshot":"s2"}'
curl -sf --max-time 10 --unix-socket "$T/m.sock" -o "$T/m1.txt" http://b/metrics
t_eq "snapshots counted" 2 "$(value "$T/m1.txt" 'ballast_snapshots{backend="local"}')"
call Ballast.SnapshotRemove '{"Name":"m2","Snapshot":"s1"}'
call Ballast.SnapshotRemove '{"Name":"m2","Snapshot":"s2"}'
# A backend error: the directory of m2 vanishes behind ballast's back.
rm -rf "$T/state/local/m2"
call VolumeDriver.Mount '{"Name":"m2","ID":"i3"}'
curl -sf --max-time 10 --unix-socket "$T/m.sock" -o "$T/m2.txt" http://b/metrics
t_eq "a failed backend call is counted" 1 "$(value "$T/m2.txt" 'ballast_backend_errors_total{backend="local"}')"
t_eq "anything but GET /metrics is 404" 404 \
	"$(curl -s --max-time 10 --unix-socket "$T/m.sock" -o /dev/null -w '%{http_code}' http://b/other)"
stop_daemon
t_fail "the metrics socket is removed on exit" test -e "$T/m.sock"

# On a loopback TCP port.
port=$((20000 + RANDOM % 20000))
start_daemon "metrics = 127.0.0.1:$port" || t_die "ballastd with TCP metrics did not start"
call VolumeDriver.List '{}'
t_ok "scrape /metrics on 127.0.0.1:$port" curl -sf --max-time 10 -o "$T/t.txt" "http://127.0.0.1:$port/metrics"
t_eq "promtool accepts the TCP scrape" "" "$(promtool check metrics <"$T/t.txt" 2>&1)"
t_eq "List counted" 1 "$(value "$T/t.txt" 'ballast_requests_total{endpoint="VolumeDriver.List",outcome="ok"}')"
stop_daemon

# A bad listener spec is a clear start-up error.
rm -rf "$T/state"
printf '[ballast]\nsocket = %s\nstate_dir = %s\nmetrics = localhost\n' "$T/b.sock" "$T/state" >"$T/bad.conf"
out=$("$BUILD/ballastd" --config "$T/bad.conf" 2>&1)
t_match "metrics = localhost is refused with the accepted forms" 'metrics = localhost: use unix:' "$out"
