# shellcheck shell=bash
# tests/lib/ballastd.sh - run the daemon under test.
#
#   ballastd_start DIR     write DIR/ballast.conf (local backend under
#                          DIR/state), start BUILD/ballastd in the background
#                          (log: DIR/ballastd.log), wait until its socket
#                          answers Plugin.Activate (10 s). Calling it again
#                          with the same DIR restarts with the same config.
#   ballastd_kill9         SIGKILL the daemon (and reap it)
#   ballastd_stop          SIGTERM, wait (10 s), fail if the socket remains
#   ballastd_running       true while the daemon process lives
#   ballast_call METHOD JSON     POST JSON to /METHOD, print the body
#   ballast_post METHOD BODYFILE OUTFILE   POST a file, body to OUTFILE,
#                          print the HTTP code ("000" when the connection
#                          failed); curl's exit status is the return status
#   ballast_cli ARGS...    BUILD/ballast --socket SOCK ARGS
#   ballastd_log_tail [N]  print the last N (40) log lines, prefixed with '#'
#   ballastd_tmpdir PREFIX make $T (/tmp/PREFIX.XXXXXX) and clean up at
#                          exit: the daemon killed, what is mounted under $T
#                          unmounted, loop devices on files under $T
#                          detached; $T kept when a check failed
#
# BUILD is the repo's build/ directory, or $BALLAST_BUILD when set.
# BALLASTD_HELPER (a mount.ballast to use) and BALLASTD_EXTRA (a line for
# the [ballast] section) change the config ballastd_start writes;
# BALLASTD_WRAPPER (a command, split on spaces) is run with ballastd's
# command line as its arguments, and must exec it.
# Must run in the main shell of the script (it keeps the daemon's PID).

BALLAST_BUILD=${BALLAST_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
BALLASTD_DIR=""
BALLASTD_PID=""
BALLAST_SOCK=""
# shellcheck disable=SC2034 # used by the test scripts
BALLAST_STATE=""

_bd_log() { printf '# ballastd.sh: %s\n' "$*" >&2; }

ballastd_log_tail() {
	local n=${1:-40}
	[ -f "$BALLASTD_DIR/ballastd.log" ] || return 0
	tail -n "$n" "$BALLASTD_DIR/ballastd.log" | sed 's/^/#   /'
}

ballastd_running() {
	[ -n "$BALLASTD_PID" ] && kill -0 "$BALLASTD_PID" 2>/dev/null
}

_bd_activate_ok() {
	local out
	out=$(curl -s --max-time 2 --unix-socket "$BALLAST_SOCK" -X POST \
		http://ballast/Plugin.Activate 2>/dev/null) || return 1
	[[ $out == *VolumeDriver* ]] && served "$BALLAST_SOCK"
}

ballastd_start() {
	local d i
	if ballastd_running; then
		_bd_log "ballastd already running (pid $BALLASTD_PID)"
		return 1
	fi
	BALLASTD_PID=""
	for b in ballastd ballast; do
		if [ ! -x "$BALLAST_BUILD/$b" ]; then
			_bd_log "$BALLAST_BUILD/$b missing: run make"
			return 1
		fi
	done
	if [ ! -x "$BALLAST_BUILD/mount.ballast" ]; then
		_bd_log "warning: $BALLAST_BUILD/mount.ballast missing"
	fi
	mkdir -p "$1" || return 1
	d=$(cd "$1" && pwd)
	BALLASTD_DIR=$d
	BALLAST_SOCK=$d/ballast.sock
	# shellcheck disable=SC2034 # used by the test scripts
	BALLAST_STATE=$d/state
	cat >"$d/ballast.conf" <<-EOF
		[ballast]
		socket = $d/ballast.sock
		state_dir = $d/state
		helper = ${BALLASTD_HELPER:-$BALLAST_BUILD/mount.ballast}
		log_level = debug
		${BALLASTD_EXTRA:-}
		[local]
		root = $d/state/local
	EOF
	printf -- '--- ballastd start %s\n' "$(date -u +%FT%TZ)" >>"$d/ballastd.log"
	# shellcheck disable=SC2086 # the wrapper is a command and its words
	${BALLASTD_WRAPPER:-} "$BALLAST_BUILD/ballastd" --config "$d/ballast.conf" \
		>>"$d/ballastd.log" 2>&1 </dev/null &
	BALLASTD_PID=$!
	t_watch_pid ballastd "$BALLASTD_PID"
	# 10 s in all, whatever each try costs (a daemon that accepts and
	# never answers costs curl's 2 s a try)
	i=$((SECONDS + 10))
	while [ "$SECONDS" -le "$i" ]; do
		if ! kill -0 "$BALLASTD_PID" 2>/dev/null; then
			local rc=0
			wait "$BALLASTD_PID" || rc=$?
			BALLASTD_PID=""
			_bd_log "ballastd exited during start (status $rc); log:"
			ballastd_log_tail 40 >&2
			return 1
		fi
		if [ -S "$BALLAST_SOCK" ] && _bd_activate_ok; then
			return 0
		fi
		sleep 0.1
	done
	_bd_log "ballastd socket $BALLAST_SOCK did not answer in 10 s; log:"
	ballastd_log_tail 40 >&2
	return 1
}

ballastd_kill9() {
	[ -n "$BALLASTD_PID" ] || return 0
	t_unwatch_pid "$BALLASTD_PID"
	kill -KILL "$BALLASTD_PID" 2>/dev/null || true
	wait "$BALLASTD_PID" 2>/dev/null || true
	BALLASTD_PID=""
}

# ballastd_stop: 0 when the daemon exited on SIGTERM within 10 s with status
# 0 and removed its socket. ballastd_stop_keep_socket: the same for a daemon
# given its socket (LISTEN_FDS), which is not its to remove.
ballastd_stop() { _bd_stop 1; }
ballastd_stop_keep_socket() { _bd_stop 0; }
_bd_stop() {
	local i rc=0 st=0
	[ -n "$BALLASTD_PID" ] || return 0
	t_unwatch_pid "$BALLASTD_PID"
	kill -TERM "$BALLASTD_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$BALLASTD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$BALLASTD_PID" 2>/dev/null; then
		_bd_log "ballastd did not exit within 10 s of SIGTERM: SIGKILL"
		ballastd_kill9
		return 1
	fi
	wait "$BALLASTD_PID" || st=$?
	BALLASTD_PID=""
	if [ "$st" -ne 0 ]; then
		_bd_log "ballastd exited with status $st after SIGTERM"
		rc=1
	fi
	if [ "$1" = 1 ] && [ -e "$BALLAST_SOCK" ]; then
		_bd_log "socket $BALLAST_SOCK still exists after stop"
		rc=1
	fi
	return $rc
}

ballast_call() {
	curl -s --max-time 30 --unix-socket "$BALLAST_SOCK" -X POST \
		--data-binary "$2" "http://ballast/$1"
}

ballast_post() {
	local method=$1 body=$2 out=$3 code rc=0
	code=$(curl -s --max-time 30 --unix-socket "$BALLAST_SOCK" -X POST \
		--data-binary "@$body" -o "$out" -w '%{http_code}' \
		"http://ballast/$method") || rc=$?
	printf '%s\n' "${code:-000}"
	return $rc
}

ballast_cli() {
	timeout -k 5 30 "$BALLAST_BUILD/ballast" --socket "$BALLAST_SOCK" "$@"
}

ballastd_tmpdir() {
	T=$(mktemp -d "/tmp/$1.XXXXXX")
	t_at_exit _bd_tmpdir_cleanup
}
_bd_tmpdir_cleanup() {
	local lp
	ballastd_kill9
	awk -v d="$T" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$T" 'index($2, d) == 1 { print $1 }' |
		while IFS= read -r lp; do losetup -d "$lp"; done
	if [ "$TAP_FAIL" -eq 0 ]; then rm -rf "$T"; else printf '# test directory kept: %s\n' "$T"; fi
}
