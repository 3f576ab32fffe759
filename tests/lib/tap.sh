# shellcheck shell=bash
# tests/lib/tap.sh - a tiny assertion library for the test scripts.
#
# Source it once at the top of a script:
#     . "$(dirname "$0")/../lib/tap.sh"
#     t_group my_group            # optional; default: script name without .sh
#
# Every assertion prints one line, `ok - DESC` or `not ok - DESC` followed by
# indented `#` diagnostic lines. A failed assertion never aborts the script.
# At exit the script prints `# group NAME: P passed, F failed, K skipped` and exits
# non-zero iff something failed (an assertion, a t_die, or the script itself
# dying on an error, which is counted as one more failure).
#
#   t_ok    DESC CMD...        CMD must exit 0
#   t_fail  DESC CMD...        CMD must exit non-zero
#   t_eq    DESC EXPECTED ACTUAL
#   t_ne    DESC UNEXPECTED ACTUAL
#   t_match DESC REGEX ACTUAL  (bash ERE, unanchored)
#   t_nomatch DESC REGEX ACTUAL
#   t_pass  DESC / t_failed DESC [DIAG...]   record a result directly
#   t_skip  DESC REASON        a check not made, and why (counted, shown in
#                              run-all's summary; make check fails on any)
#   t_diag  LINE...            print diagnostic lines
#   t_die   MSG                setup failure: counts as a failure, exits
#   t_at_exit CMD...           run CMD at exit (last registered runs first)
#   t_wait_eq DESC TIMEOUT EXPECTED CMD...   poll CMD's stdout until it
#                              equals EXPECTED (TIMEOUT seconds), then assert
#   t_watch_pid NAME PID       a daemon the test started: at exit, before the
#                              clean-up, a watched PID that is dead (or a
#                              zombie) is a failure naming it
#   t_unwatch_pid PID          the test stops or kills it on purpose
#   err_of ENDPOINT            read ballastd's answer on stdin, print its Err
#                              ("" only for an answer that says success);
#                              no answer, or one without a string Err, prints
#                              a line naming ENDPOINT: silence never reads as
#                              success
#
# The output of a t_ok / t_fail command is captured and shown (last 30 lines)
# only when the assertion fails. Commands run in the current shell, so they
# may be shell functions; bound slow external commands yourself (timeout).

TAP_GROUP=${TAP_GROUP:-$(basename "${0%.sh}")}
TAP_PASS=0
TAP_FAIL=0
TAP_SKIP=0
TAP_DIED=0
TAP_EXIT_CMDS=()
declare -A TAP_WATCH=()
TAP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tap.XXXXXX")

t_group() { TAP_GROUP=$1; }

t_diag() {
	local l line
	for l in "$@"; do
		while IFS= read -r line || [ -n "$line" ]; do
			printf '#   %s\n' "$line"
		done <<<"$l"
	done
}

t_pass() {
	TAP_PASS=$((TAP_PASS + 1))
	printf 'ok - %s\n' "$1"
}

t_watch_pid() { [ -n "${2:-}" ] && TAP_WATCH[$2]=$1; }
t_unwatch_pid() { [ -n "${1:-}" ] && unset "TAP_WATCH[$1]"; }

# _t_pid_alive PID: running, not a zombie
_t_pid_alive() {
	local st
	st=$(sed -n 's/^.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

_t_check_watched() {
	local pid
	for pid in "${!TAP_WATCH[@]}"; do
		_t_pid_alive "$pid" && continue
		t_failed "${TAP_WATCH[$pid]} (pid $pid) stayed up until the end" "it died during the test, and the test did not stop it"
	done
}

t_skip() {
	TAP_SKIP=$((TAP_SKIP + 1))
	printf 'ok - %s # SKIP %s\n' "$1" "${2:?t_skip needs a reason}"
}

t_failed() {
	local desc=$1
	shift
	TAP_FAIL=$((TAP_FAIL + 1))
	printf 'not ok - %s\n' "$desc"
	[ $# -gt 0 ] && t_diag "$@"
	return 0
}

# _t_run CMD...: run CMD with stdout+stderr into $TAP_TMP/out, set _t_rc.
_t_run() {
	_t_rc=0
	"$@" >"$TAP_TMP/out" 2>&1 </dev/null || _t_rc=$?
}

_t_out_tail() {
	if [ -s "$TAP_TMP/out" ]; then
		printf 'output (last 30 lines):\n'
		tail -n 30 "$TAP_TMP/out"
	else
		printf 'no output\n'
	fi
}

t_ok() {
	local desc=$1
	shift
	_t_run "$@"
	if [ "$_t_rc" -eq 0 ]; then
		t_pass "$desc"
		return 0
	fi
	t_failed "$desc" "command: $*" "exit status: $_t_rc (expected 0)" "$(_t_out_tail)"
	return 1
}

t_fail() {
	local desc=$1
	shift
	_t_run "$@"
	if [ "$_t_rc" -ne 0 ]; then
		t_pass "$desc"
		return 0
	fi
	t_failed "$desc" "command: $*" "exit status: 0 (expected non-zero)" "$(_t_out_tail)"
	return 1
}

t_eq() {
	if [ "$2" == "$3" ]; then
		t_pass "$1"
		return 0
	fi
	t_failed "$1" "expected: '$2'" "got:      '$3'"
	return 1
}

t_ne() {
	if [ "$2" != "$3" ]; then
		t_pass "$1"
		return 0
	fi
	t_failed "$1" "expected anything but: '$2'"
	return 1
}

t_match() {
	if [[ $3 =~ $2 ]]; then
		t_pass "$1"
		return 0
	fi
	t_failed "$1" "expected to match: $2" "got: '$3'"
	return 1
}

t_nomatch() {
	if ! [[ $3 =~ $2 ]]; then
		t_pass "$1"
		return 0
	fi
	t_failed "$1" "expected NOT to match: $2" "got: '$3'"
	return 1
}

# t_wait_eq DESC TIMEOUT EXPECTED CMD...
t_wait_eq() {
	local desc=$1 tmo=$2 exp=$3 got="" end
	shift 3
	end=$((SECONDS + tmo))
	while :; do
		got=$("$@" 2>&1) || true
		[ "$got" == "$exp" ] && break
		[ "$SECONDS" -ge "$end" ] && break
		sleep 0.2
	done
	t_eq "$desc" "$exp" "$got"
}

t_die() {
	TAP_FAIL=$((TAP_FAIL + 1))
	TAP_DIED=1
	printf 'not ok - setup: %s\n' "$1"
	shift
	[ $# -gt 0 ] && t_diag "$@"
	exit 1
}

t_at_exit() {
	local q
	printf -v q '%q ' "$@"
	TAP_EXIT_CMDS+=("$q")
}

_t_exit() {
	local rc=$? i
	trap - EXIT INT TERM HUP
	set +e
	if [ "$rc" -ne 0 ] && [ "$TAP_DIED" -eq 0 ]; then
		TAP_FAIL=$((TAP_FAIL + 1))
		printf 'not ok - script %s exited early with status %s\n' "$0" "$rc"
	fi
	_t_check_watched
	for ((i = ${#TAP_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
		eval "${TAP_EXIT_CMDS[$i]}"
	done
	rm -rf "$TAP_TMP"
	printf '# group %s: %d passed, %d failed, %d skipped\n' "$TAP_GROUP" "$TAP_PASS" "$TAP_FAIL" "$TAP_SKIP"
	[ "$TAP_FAIL" -eq 0 ] && exit 0
	exit 1
}

trap _t_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# served SOCKET: the ballastd on SOCKET serves its catalog (loaded and
# recovered): Ballast.Version, which waits for that, answers without Err
# within 2 s. ballastd answers Activate before; a test that looks at the
# state dir or a cluster right after a start waits for this.
served() {
	curl -s --max-time 2 --unix-socket "$1" -X POST http://b/Ballast.Version 2>/dev/null | grep -q '"Err":""'
}

err_of() {
	local body
	body=$(cat)
	if [ -z "$body" ]; then
		printf 'NO ANSWER from ballastd to %s\n' "$1"
		return 0
	fi
	jq -er 'if type == "object" and (.Err | type) == "string" then .Err else error("no Err") end' \
		<<<"$body" 2>/dev/null || printf 'NO Err in the answer of ballastd to %s: %.200s\n' "$1" "$body"
}
