#!/usr/bin/env bash
# tests/run-all.sh - run every test group and sum the results.
#
#   tests/run-all.sh [NAME...]
#
# Groups: every executable BUILD/tests/unit_* (cmocka binaries; their
# `[  PASSED  ] N test(s).` / `[  FAILED  ] N test(s)` summary lines are
# counted) and every tests/integration/*.sh (their `# group NAME: P passed,
# F failed` line is counted). With NAME arguments only the groups whose name
# (unit_foo, local_docker, ...) is given run.
#
# Output: each group's own output, then one `group NAME: P passed, F failed`
# line per group and a last line `N passed, M failed, K skipped`. Exits
# non-zero when M > 0 or nothing ran. A group that exits non-zero without
# reporting a failure (crash, timeout), or in which nothing passed, counts
# as one failure. Skips (cmocka's SKIPPED, tap.sh's t_skip) are counted and
# named; with STRICT_SKIPS=1 (make check) each one is a failure too: no test
# may skip itself in CI.
#
# Installing packages is not done here: `make check` runs tests/deps.sh.
# Environment: BUILD (build directory, default build/, as in the Makefile),
# BALLAST_BUILD (binaries for the integration tests, default BUILD),
# UNIT_TIMEOUT (300 s per binary), INTEGRATION_TIMEOUT (1800 s per script).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

# The build directory: $BUILD as make passes it (`make check BUILD=dir`),
# else build/. The integration scripts take it from $BALLAST_BUILD.
BUILD_DIR=${BUILD:-build}
case $BUILD_DIR in
/*) ;;
*) BUILD_DIR=$ROOT/$BUILD_DIR ;;
esac
export BALLAST_BUILD=${BALLAST_BUILD:-$BUILD_DIR}

UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
INTEGRATION_TIMEOUT=${INTEGRATION_TIMEOUT:-1800}

LOGDIR=$(mktemp -d /tmp/ballast-run-all.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT

declare -a G_NAME=() G_PASS=() G_FAIL=() G_SKIP=() G_NOTE=()
TOTAL_PASS=0
TOTAL_FAIL=0
TOTAL_SKIP=0
STRICT_SKIPS=${STRICT_SKIPS:-0}

wanted() {
	local n
	[ "${#SELECT[@]}" -eq 0 ] && return 0
	for n in "${SELECT[@]}"; do
		[ "$n" = "$1" ] && return 0
	done
	return 1
}

record() { # NAME PASS FAIL SKIP NOTE
	local fail=$3 note=$5
	if [ "$2" -eq 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		note="$note (nothing passed)"
	fi
	if [ "$4" -gt 0 ] && [ "$STRICT_SKIPS" = 1 ]; then
		fail=$((fail + $4))
		note="$note (skips fail under STRICT_SKIPS)"
	fi
	G_NAME+=("$1")
	G_PASS+=("$2")
	G_FAIL+=("$fail")
	G_SKIP+=("$4")
	G_NOTE+=("$note")
	TOTAL_PASS=$((TOTAL_PASS + $2))
	TOTAL_FAIL=$((TOTAL_FAIL + fail))
	TOTAL_SKIP=$((TOTAL_SKIP + $4))
}

# skipped_in LOG: the skips a group's output names, one per line
skipped_in() {
	sed -n -e 's/^ok - \(.*\) # SKIP \(.*\)$/\1 (\2)/p' -e 's/^\[  SKIPPED \] \([^0-9].*\)$/\1/p' "$1"
}

# run_logged LOG TIMEOUT CMD...: run CMD, show its output and keep a copy;
# returns CMD's exit status (124 on timeout).
run_logged() {
	local log=$1 tmo=$2
	shift 2
	timeout -k 10 "$tmo" "$@" </dev/null 2>&1 | tee "$log"
	return "${PIPESTATUS[0]}"
}

run_unit() {
	local bin=$1 name log rc=0 pass fail skip note=""
	name=$(basename "$bin")
	log=$LOGDIR/$name.log
	echo "=== $name"
	CMOCKA_MESSAGE_OUTPUT=stdout run_logged "$log" "$UNIT_TIMEOUT" "$bin" || rc=$?
	pass=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$log" |
		awk '{ s += $1 } END { print s + 0 }')
	fail=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" |
		awk '{ s += $1 } END { print s + 0 }')
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		note=" (exited with status $rc without reporting a failure)"
	fi
	if [ "$rc" -eq 0 ] && ! grep -q '^\[  PASSED  \] [0-9]* test(s)\.' "$log"; then
		fail=1
		note=" (no cmocka summary in the output)"
	fi
	skip=$(sed -n 's/^\[  SKIPPED \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
	record "$name" "$pass" "$fail" "$skip" "$note"
}

run_script() {
	run_named "$(basename "$1" .sh)" bash "$1"
}

# run_named NAME CMD...: run CMD as the group NAME; count the
# `# group X: P passed, F failed` lines it prints.
run_named() {
	local name=$1 log rc=0 pass fail skip note="" line
	shift
	log=$LOGDIR/$name.log
	echo "=== $name"
	run_logged "$log" "$INTEGRATION_TIMEOUT" "$@" || rc=$?
	pass=0
	fail=0
	skip=0
	# A group that runs others (sanitized) reports its own total in a
	# line named after it: that one line counts, not the nested ones.
	if grep -Eq "^# group $name: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?\$" "$log"; then
		line=$(grep "^# group $name: " "$log" | tail -n 1)
		[[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]
		pass=${BASH_REMATCH[1]}
		fail=${BASH_REMATCH[2]}
		skip=${BASH_REMATCH[4]:-0}
	else
		while IFS= read -r line; do
			if [[ $line =~ ^#\ group\ [^:]*:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
				pass=$((pass + BASH_REMATCH[1]))
				fail=$((fail + BASH_REMATCH[2]))
				skip=$((skip + ${BASH_REMATCH[4]:-0}))
			fi
		done <"$log"
	fi
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		note=" (exited with status $rc without reporting a failure)"
	fi
	record "$name" "$pass" "$fail" "$skip" "$note"
}

# --extras: after the groups, the same tests under sanitizers, valgrind on
# the unit tests and a short fuzz run (FUZZ_SECONDS), each a group of its own,
# so that the last line covers everything `make check` ran.
EXTRAS=0
if [ "${1:-}" = "--extras" ]; then
	EXTRAS=1
	shift
fi
SELECT=("$@")

shopt -s nullglob
for bin in "$BUILD_DIR"/tests/unit_*; do
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
	wanted "$(basename "$bin")" || continue
	run_unit "$bin"
done
for script in tests/integration/*.sh; do
	[ -f "$script" ] || continue
	wanted "$(basename "$script" .sh)" || continue
	run_script "$script"
done

if [ "$EXTRAS" = 1 ]; then
	run_named sanitized bash tests/run-sanitized.sh
	run_named valgrind bash tests/run-valgrind.sh
	run_named fuzz bash tests/fuzz/run.sh "${FUZZ_SECONDS:-30}"
fi

echo
for i in "${!G_NAME[@]}"; do
	echo "group ${G_NAME[$i]}: ${G_PASS[$i]} passed, ${G_FAIL[$i]} failed, ${G_SKIP[$i]} skipped"
	[ -n "${G_NOTE[$i]}" ] && echo "#   ${G_NAME[$i]}:${G_NOTE[$i]}"
	if [ "${G_SKIP[$i]}" -gt 0 ]; then
		skipped_in "$LOGDIR/${G_NAME[$i]}.log" | sed "s/^/#   ${G_NAME[$i]}: skipped: /"
	fi
done
if [ "${#G_NAME[@]}" -eq 0 ]; then
	echo "no test group ran" >&2
	TOTAL_FAIL=$((TOTAL_FAIL + 1))
fi
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed, $TOTAL_SKIP skipped"
[ "$TOTAL_FAIL" -eq 0 ]
