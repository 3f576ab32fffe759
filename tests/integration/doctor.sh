#!/usr/bin/env bash
# tests/integration/doctor.sh - `ballast doctor`: one line per check, OK or
# FAIL with the reason, exit status 1 on any FAIL; against a live daemon, a
# stopped one, a bad config and a missing mount helper.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"

t_group doctor
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BALLAST_BUILD:-${BUILD:-$ROOT/build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

T=$(mktemp -d /tmp/ballast-doctor.XXXXXX)
PID=
stop_daemon() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	PID=
}
cleanup() {
	stop_daemon
	if [ "$TAP_FAIL" -eq 0 ]; then rm -rf "$T"; else printf '# test directory kept: %s\n' "$T"; fi
}
t_at_exit cleanup

# conf FILE HELPER: a config for a daemon under $T.
conf() {
	printf '[ballast]\nsocket = %s\nstate_dir = %s\nhelper = %s\n' "$T/b.sock" "$T/state" "$2" >"$1"
}
start_daemon() {
	"$BUILD/ballastd" --config "$1" >"$T/log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do
		[ -S "$T/b.sock" ] && return 0
		sleep 0.1
	done
	return 1
}
# has_line ERE: some line of $OUT matches.
has_line() { printf '%s\n' "$OUT" | grep -qE -- "$1"; }
# doctor CONF: run it, keep its output in $OUT and its status in $RC.
doctor() {
	OUT=$("$BUILD/ballast" doctor --config "$1" 2>&1)
	RC=$?
}

conf "$T/good.conf" "$BUILD/mount.ballast"
start_daemon "$T/good.conf" || t_die "ballastd did not start"
doctor "$T/good.conf"
t_eq "doctor exits 0 against a healthy daemon" 0 "$RC"
t_eq "every line is OK" "" "$(echo "$OUT" | grep -v '^OK ')"
for c in config socket daemon "local root" "mount helper" mkfs.ext4; do
	t_ok "it checks $c" has_line "^OK +$c: "
done
t_ok "the socket check shows its mode" has_line 'socket: .*\(mode 660\)'
stop_daemon

doctor "$T/good.conf"
t_eq "doctor exits 1 when the daemon is stopped" 1 "$RC"
t_ok "FAIL daemon names the socket" has_line "^FAIL daemon: cannot reach ballastd at $T/b.sock"

conf "$T/nohelper.conf" /nonexistent/mount.ballast
start_daemon "$T/nohelper.conf" || t_die "ballastd did not start"
doctor "$T/nohelper.conf"
t_eq "doctor exits 1 when mount.ballast is missing" 1 "$RC"
t_ok "FAIL mount helper names the path" has_line '^FAIL mount helper: /nonexistent/mount.ballast: No such file'
t_ok "the other checks still run" has_line '^OK +local root: '
stop_daemon

printf '[ballast]\nsocket = %s\nbogus = 1\n' "$T/b.sock" >"$T/bad.conf"
doctor "$T/bad.conf"
t_eq "doctor exits 1 for a bad config" 1 "$RC"
t_match "FAIL config names file, line and key" "^FAIL config: $T/bad.conf:3: unknown key \"bogus\"" "$OUT"
