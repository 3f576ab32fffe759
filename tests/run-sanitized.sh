#!/usr/bin/env bash
# tests/run-sanitized.sh - the unit tests and the local integration groups
# against an AddressSanitizer + UndefinedBehaviorSanitizer build.
#
#   tests/run-sanitized.sh [GROUP...]
#
# Builds with `make BUILD=build/san SANITIZE=address,undefined all unit`, then
# runs tests/run-all.sh on build/san for the unit binaries and the groups
# local_docker, bad_requests, mount_helper and rbd_docker (a real Ceph; the
# mapper and librbd under the sanitizers too) or the GROUPs given, with
# leak detection on and every sanitizer finding fatal. ASan and LSan reports
# of every process (ballastd, ballast, mount.ballast, the unit tests) go to
# files under a log dir (log_path) so that they survive the test scripts'
# clean-up; any such file fails the run. gcc's UBSan ignores log_path and
# writes to stderr (ballastd's log); halt_on_error makes the process die
# there, which fails the group, and the group output (which carries the
# ballastd log tail of a failed group) is grepped for reports too.
#
# Last line: `# group sanitized: P passed, F failed` (P/F are run-all's
# totals, plus one failure per process that reported).
# Environment: SAN_BUILD (build/san), SAN_JOBS for make (2).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
B=${SAN_BUILD:-build/san}

if ! make -s -j"${SAN_JOBS:-2}" BUILD="$B" SANITIZE=address,undefined all unit; then
	echo "not ok - sanitized build (make BUILD=$B SANITIZE=address,undefined all unit) failed"
	echo "# group sanitized: 0 passed, 1 failed"
	exit 1
fi

if [ $# -gt 0 ]; then
	groups=("$@")
else
	groups=()
	for b in "$B"/tests/unit_*; do
		[ -x "$b" ] && groups+=("$(basename "$b")")
	done
	groups+=(local_docker bad_requests mount_helper rbd_docker)
fi

SANLOG=$(mktemp -d /tmp/ballast-san.XXXXXX)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$SANLOG/asan:log_exe_name=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$SANLOG/ubsan:log_exe_name=1"
export LSAN_OPTIONS="log_path=$SANLOG/lsan:log_exe_name=1"

out=$SANLOG/run-all.out
rc=0
BUILD=$B bash tests/run-all.sh "${groups[@]}" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}

totals=$(tail -n 1 "$out")
pass=0
fail=0
if [[ $totals =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
	pass=${BASH_REMATCH[1]}
	fail=${BASH_REMATCH[2]}
elif [ "$rc" -ne 0 ]; then
	fail=1
fi
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1

reports=()
for f in "$SANLOG"/asan* "$SANLOG"/ubsan* "$SANLOG"/lsan*; do
	[ -s "$f" ] && reports+=("$f")
done
pat='ERROR: AddressSanitizer|runtime error:|LeakSanitizer|ERROR: UndefinedBehaviorSanitizer'
if grep -Eq "$pat" "$out"; then
	echo "not ok - sanitizer report in the test output:"
	grep -E "$pat" "$out" | sort | uniq -c | head -n 20 | sed 's/^/#   /'
	fail=$((fail + 1))
fi
if [ "${#reports[@]}" -gt 0 ]; then
	echo "not ok - ${#reports[@]} process(es) wrote sanitizer reports (kept in $SANLOG):"
	for f in "${reports[@]}"; do
		echo "#   $f:"
		grep -E "$pat|^    #[0-9] " "$f" | head -n 12 | sed 's/^/#     /'
	done
	fail=$((fail + ${#reports[@]}))
else
	echo "ok - no sanitizer report from any process"
	pass=$((pass + 1))
	[ "$fail" -eq 0 ] && rm -rf "$SANLOG"
fi
echo "# group sanitized: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
