# shellcheck shell=bash
# tests/lib/crashd.sh - one ballastd built with crash points (make
# CRASHPOINTS=1), killed at a named point and restarted on the same state.
#
#   crashd_init PREFIX [BACKEND]   make the test dir $T (/tmp/PREFIX.*), build
#                          $CB (build/crash) with crash points, check that
#                          BACKEND was built in (t_die otherwise)
#                          ($BALLAST_CRASH_BUILD: another dir; with
#                          BALLAST_CRASH_PREBUILT=1 it is used as is)
#   crashd_cleanup [CMD...]   stop ballastd, undo every mount and loop device
#                          under $T, run CMD (the engine's stop), remove $T
#                          unless something failed
# The config is $T/b.conf (the test writes it), the socket $SOCK, the state
# dir $STATE, the log $T/log.
#   start [CRASH_AT]       (re)start ballastd, armed at CRASH_AT if given
#   stop                   SIGKILL it
#   crash POINT METHOD BODY   arm POINT, send the request, assert the daemon
#                          died there, restart it unarmed
#   call METHOD JSON / err METHOD JSON   the answer / its Err
#   count NAME / exists NAME / mounted NAME   mount count, Get finds it,
#                          its <state>/mounts/NAME is mounted
#   unlisted NAME          Get answers that NAME is not found (or not ready:
#                          an interrupted Create or Remove being finished);
#                          no answer is never 'unlisted'

CB=${BALLAST_CRASH_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/crash}
PID=

crashd_build() {
	[ "${BALLAST_CRASH_PREBUILT:-0}" = 1 ] && return 0
	make -s -C "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)" BUILD="$CB" CRASHPOINTS=1 all \
		>/dev/null 2>&1 || t_die "cannot build with crash points"
}

crashd_init() {
	T=$(mktemp -d "/tmp/$1.XXXXXX")
	SOCK=$T/b.sock
	STATE=$T/state
	: >"$T/log"
	crashd_build
	if [ -n "${2:-}" ] && ! "$CB/ballastd" --list-options | grep -q "^$2 "; then
		t_die "ballastd was built without the $2 backend"
	fi
}

crashd_cleanup() {
	local mp lp
	stop
	# -c: never stat a target (a FUSE root hangs when its server is gone)
	awk -v d="$T/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while IFS= read -r mp; do umount -c "$mp" 2>/dev/null || umount -c -l "$mp" 2>/dev/null; done
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$T" 'index($2, d) == 1 { print $1 }' |
		while IFS= read -r lp; do losetup -d "$lp"; done
	[ $# -gt 0 ] && { "$@" || true; }
	if [ "$TAP_FAIL" -eq 0 ]; then rm -rf "$T"; else printf '# test directory kept: %s\n' "$T"; fi
}

stop() {
	if [ -n "$PID" ]; then
		t_unwatch_pid "$PID"
		kill -9 "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
		PID=
	fi
}

start() {
	stop
	BALLAST_CRASH_AT=${1:-} "$CB/ballastd" --config "$T/b.conf" >>"$T/log" 2>&1 &
	PID=$!
	t_watch_pid ballastd "$PID"
	local end=$((SECONDS + 10)) # 10 s in all, whatever each try costs
	while [ "$SECONDS" -le "$end" ]; do
		# held at a pause point, the catalog may never be served
		curl -s --max-time 2 --unix-socket "$SOCK" -X POST http://b/Plugin.Activate >/dev/null &&
			{ [ -n "${BALLAST_PAUSE_AT:-}" ] || served "$SOCK"; } && return 0
		sleep 0.05
	done
	return 1
}

call() { curl -s --max-time 30 --unix-socket "$SOCK" -X POST -d "$2" "http://b/$1"; }
err() { call "$@" | err_of "$1"; }
count() { call Ballast.Inspect "{\"Name\":\"$1\"}" | jq -r '.Volume.mount_count // "none"'; }
exists() { [ "$(err VolumeDriver.Get "{\"Name\":\"$1\"}")" = "" ]; }
unlisted() { [[ $(err VolumeDriver.Get "{\"Name\":\"$1\"}") =~ not\ found|is\ not\ ready ]]; }
mounted() { awk -v p="$STATE/mounts/$1" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; }

died() {
	for _ in $(seq 50); do
		kill -0 "$PID" 2>/dev/null || { t_unwatch_pid "$PID"; wait "$PID" 2>/dev/null; PID=; return 0; }
		sleep 0.1
	done
	return 1
}

crash() {
	start "$1" || t_die "ballastd did not start"
	call "$2" "$3" >/dev/null 2>&1
	t_ok "$1: the daemon died at the crash point" died
	start || t_die "ballastd did not restart"
}
