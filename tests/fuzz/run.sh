#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS - build the libFuzzer target fuzz_api (clang,
# -fsanitize=fuzzer,address,undefined) over the daemon's request path and run
# it for SECONDS (default 30) on the seed corpus tests/fuzz/corpus.
#
# Objects come from the Makefile's own rules (CORE_OBJS with BUILD=build/fuzz,
# CC=clang, SANITIZE=address,undefined, -fsanitize=fuzzer-no-link), so the
# fuzzed code is exactly the daemon's. The working corpus (what libFuzzer
# finds) lives in build/fuzz/corpus and is reused by later runs; the seeds in
# tests/fuzz/corpus are never written to.
#
# Prints libFuzzer's output, then `# fuzz: N executions in S s (E exec/s)`
# and `# group fuzz: 1 passed, 0 failed`, or on a crash `# group fuzz: 0
# passed, 1 failed` with the crashing input and the history of inputs since
# the last state reset (which reproduces state-dependent crashes in order).
# Environment: BUILD_FUZZ (build/fuzz), FUZZ_JOBS for make (2),
# FUZZ_WORKAROUNDS=1 (steer around the known bugs listed in fuzz_api.c),
# FUZZ_ARGS (extra libFuzzer flags).
set -uo pipefail

SECS=${1:-30}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
B=${BUILD_FUZZ:-build/fuzz}
BIN=$B/fuzz_api

result() { # PASS FAIL
	printf '# group fuzz: %d passed, %d failed\n' "$1" "$2"
	[ "$2" -eq 0 ]
	exit $?
}

case $SECS in
'' | *[!0-9]*)
	echo "usage: tests/fuzz/run.sh SECONDS" >&2
	exit 2
	;;
esac

# ------------------------------------------------------------- toolchain
fuzzer_lib() {
	local d
	for d in /usr/lib/llvm-*/lib/clang/*/lib/linux; do
		[ -e "$d/libclang_rt.fuzzer-x86_64.a" ] && return 0
	done
	return 1
}
if ! command -v clang >/dev/null || ! fuzzer_lib; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "not ok - clang and libclang-rt-14-dev are needed (run as root to install them)"
		result 0 1
	fi
	echo "# installing clang and libclang-rt-14-dev"
	DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 \
		install --no-install-recommends clang libclang-rt-14-dev >/dev/null ||
		{ echo "not ok - apt-get install clang libclang-rt-14-dev failed"; result 0 1; }
fi

# ----------------------------------------------------------------- build
mkvars() { # print a Makefile variable, evaluated with our BUILD
	make -s --no-print-directory -f Makefile -f - BUILD="$B" _fuzz_print_var VAR="$1" <<-'MK'
		_fuzz_print_var: ; @echo $(VAR_VALUE)
		VAR_VALUE = $($(VAR))
	MK
}
OBJS=$(mkvars CORE_OBJS)
LIBS=$(make -s --no-print-directory -f Makefile -f - BUILD="$B" _fuzz_libs <<-'MK'
	_fuzz_libs: ; @echo $(DAEMON_LIBS)
MK
)
CFL=$(make -s --no-print-directory -f Makefile -f - BUILD="$B" _fuzz_cflags <<-'MK'
	_fuzz_cflags: ; @echo $(BASEFLAGS) $(TEST_INC) $(call pc_cflags,$(DAEMON_PKGS))
MK
)
if [ -z "$OBJS" ]; then
	echo "not ok - cannot read CORE_OBJS from the Makefile"
	result 0 1
fi
echo "# building $BIN"
# shellcheck disable=SC2086 # word lists
if ! make -s -j"${FUZZ_JOBS:-2}" BUILD="$B" CC=clang SANITIZE=address,undefined \
	CFLAGS='-O1 -g -fsanitize=fuzzer-no-link -Wno-error' $OBJS; then
	echo "not ok - building the daemon objects with clang failed"
	result 0 1
fi
# shellcheck disable=SC2086 # word lists
if ! clang $CFL -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Wall -Wextra -Werror -Wno-missing-prototypes \
	tests/fuzz/fuzz_api.c $OBJS -o "$BIN" $LIBS; then
	echo "not ok - building fuzz_api failed"
	result 0 1
fi

# ------------------------------------------------------------------- run
RUN=$(mktemp -d "$ROOT/$B/run.XXXXXX")
mkdir -p "$B/corpus"
echo "# fuzzing for $SECS s (work dir $RUN)"
rc=0
# shellcheck disable=SC2086 # FUZZ_ARGS is a word list
TMPDIR=$RUN FUZZ_HISTORY=$RUN/history FUZZ_WORKAROUNDS=${FUZZ_WORKAROUNDS:-0} \
	ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$BIN" -max_total_time="$SECS" -timeout=20 -max_len=8192 -print_final_stats=1 \
	-dict=tests/fuzz/api.dict -artifact_prefix="$RUN/" ${FUZZ_ARGS:-} \
	"$B/corpus" tests/fuzz/corpus >"$RUN/log" 2>&1 || rc=$?
grep -v '^#[0-9]*[[:space:]]*\(NEW\|REDUCE\|pulse\)' "$RUN/log" | tail -n 60

execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$RUN/log" | tail -n 1)
last=$(grep -E '^#[0-9]+' "$RUN/log" | tail -n 1)
[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
rate=$(sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p' <<<"$last")
echo "# fuzz: last stats line: $last"
echo "# fuzz: ${execs:-0} executions in $SECS s (${rate:-?} exec/s), corpus $(find "$B/corpus" -type f | wc -l) files"

if [ "$rc" -eq 0 ] && grep -q 'Done [0-9]* runs' "$RUN/log"; then
	echo "ok - fuzz_api: no crash in $SECS s"
	rm -rf "$RUN"
	result 1 0
fi
crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$RUN/log" | tail -n 1)
echo "not ok - fuzz_api crashed (libFuzzer status $rc)"
echo "#   crashing input: ${crash:-none written}; log: $RUN/log"
if [ -s "$RUN/history" ]; then
	FUZZ_SPLIT_HISTORY="$RUN/history:$RUN/replay" "$BIN" >/dev/null 2>&1
	echo "#   inputs since the last reset: $RUN/replay/ (replay in order:"
	echo "#     $BIN -runs=0 $RUN/replay/0* )"
fi
grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|INVARIANT BROKEN|==ERROR' "$RUN/log" |
	head -n 5 | sed 's/^/#   /'
result 0 1
