#!/usr/bin/env bash
# tests/run-valgrind.sh - every unit test binary under valgrind memcheck.
#
#   tests/run-valgrind.sh [unit_NAME...]
#
# Builds the unit tests (`make unit`, BUILD as in the Makefile, default
# build/) and runs each BUILD/tests/unit_* under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
#            --error-exitcode=99
# A binary passes when valgrind reports 0 errors (no invalid access, no
# uninitialised use, no definite or indirect leak) and the tests pass.
# Prints `ok`/`not ok` per binary and `# group valgrind: P passed, F failed`.
# Environment: BUILD, VALGRIND_JOBS for make (2), UNIT_TIMEOUT (600 s each).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
B=${BUILD:-build}
pass=0
fail=0

if ! command -v valgrind >/dev/null; then
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 \
			install --no-install-recommends valgrind >/dev/null 2>&1
	fi
	if ! command -v valgrind >/dev/null; then
		echo "not ok - valgrind is not installed"
		echo "# group valgrind: 0 passed, 1 failed"
		exit 1
	fi
fi
if ! make -s -j"${VALGRIND_JOBS:-2}" BUILD="$B" unit; then
	echo "not ok - make BUILD=$B unit failed"
	echo "# group valgrind: 0 passed, 1 failed"
	exit 1
fi

LOGDIR=$(mktemp -d /tmp/ballast-valgrind.XXXXXX)
for bin in "$B"/tests/unit_*; do
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
	name=$(basename "$bin")
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
		continue
	fi
	log=$LOGDIR/$name.vg
	rc=0
	SECONDS=0
	CMOCKA_MESSAGE_OUTPUT=stdout timeout -k 10 "${UNIT_TIMEOUT:-600}" \
		valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--show-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=yes \
		--log-file="$log" "$bin" >"$LOGDIR/$name.out" 2>&1 </dev/null || rc=$?
	errs=$(grep -c '^==[0-9]*== [A-Z]' "$log" 2>/dev/null || true)
	if [ "$rc" -eq 0 ] && [ ! -s "$log" ]; then
		echo "ok - $name: valgrind reports 0 errors and 0 leaks (${SECONDS} s)"
		pass=$((pass + 1))
	else
		echo "not ok - $name: exit status $rc (99 = valgrind errors), $errs report line(s)"
		grep -E '^==[0-9]+== ([A-Z]|   (at|by) )' "$log" | head -n 40 | sed 's/^/#   /'
		grep -E '^\[  (FAILED|PASSED)' "$LOGDIR/$name.out" | sed 's/^/#   /'
		fail=$((fail + 1))
	fi
done
if [ $((pass + fail)) -eq 0 ]; then
	echo "not ok - no unit test binary in $B/tests"
	fail=1
fi
[ "$fail" -eq 0 ] && rm -rf "$LOGDIR" || echo "# valgrind logs kept in $LOGDIR"
echo "# group valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
