#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS - build the libFuzzer target fuzz_api (clang,
# -fsanitize=fuzzer,address,undefined) over the daemon's request path and run
# it for SECONDS (default 30) on the seed corpus tests/fuzz/corpus; then the
# smaller targets fuzz_config (the config file with every backend's keys),
# fuzz_catalog (a catalog record loaded at start), fuzz_mount_argv
# (mount.ballast's command line and option whitelists) and fuzz_http (the raw
# bytes of one client connection, pipelined requests, chunked bodies, lying
# Content-Lengths and headers past libmicrohttpd's limits, into the real
# http.c server on a unix socket; seeds in tests/fuzz/corpus_http, inputs up
# to 96 KiB), SECONDS/3 each (at least 5): each passes or fails on its own in
# the group's count.
#
# Objects come from the Makefile's own rules (CORE_OBJS with BUILD=build/fuzz,
# CC=clang, SANITIZE=address,undefined, -fsanitize=fuzzer-no-link), so the
# fuzzed code is exactly the daemon's. The working corpora (what libFuzzer
# finds) live in build/fuzz/corpus and build/fuzz/corpus-NAME and are reused
# by later runs; the seeds in tests/fuzz/corpus* are never written to.
#
# Prints libFuzzer's output, then `# fuzz: N executions in S s (E exec/s)`
# and an ok/not ok line per target, then `# group fuzz: 5 passed, 0 failed`.
# A crash of fuzz_api comes with the crashing input and the history of inputs
# since the last state reset (which reproduces state-dependent crashes in
# order); a crash of a smaller target with its work dir (log and input).
# Environment: BUILD_FUZZ (build/fuzz; relative to the tree or absolute),
# FUZZ_JOBS for make (2), FUZZ_ARGS (extra libFuzzer flags for fuzz_api).
set -uo pipefail

SECS=${1:-30}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
B=${BUILD_FUZZ:-build/fuzz}
case $B in
/*) ;;
*) B=$ROOT/$B ;;
esac
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
# Every make call gets the same flags: the Makefile rebuilds a build dir's
# objects whenever it sees other flags than last time (its .flags stamp).
MAKEVARS=(BUILD="$B" CC=clang 'SANITIZE=address,undefined' CFLAGS='-O1 -g -fsanitize=fuzzer-no-link -Wno-error')
mkvars() { # print a Makefile variable, evaluated with our BUILD
	make -s --no-print-directory -f Makefile -f - "${MAKEVARS[@]}" _fuzz_print_var VAR="$1" <<-'MK'
		_fuzz_print_var: ; @echo $(VAR_VALUE)
		VAR_VALUE = $($(VAR))
	MK
}
OBJS=$(mkvars CORE_OBJS)
LIBS=$(make -s --no-print-directory -f Makefile -f - "${MAKEVARS[@]}" _fuzz_libs <<-'MK'
	_fuzz_libs: ; @echo $(DAEMON_LIBS)
MK
)
CFL=$(make -s --no-print-directory -f Makefile -f - "${MAKEVARS[@]}" _fuzz_cflags <<-'MK'
	_fuzz_cflags: ; @echo $(BASEFLAGS) $(TEST_INC) $(call pc_cflags,$(DAEMON_PKGS) $(GLUSTER_PKGS))
MK
)
if [ -z "$OBJS" ]; then
	echo "not ok - cannot read CORE_OBJS from the Makefile"
	result 0 1
fi
echo "# building $BIN"
# shellcheck disable=SC2086 # word lists
if ! make -s -j"${FUZZ_JOBS:-2}" "${MAKEVARS[@]}" $OBJS; then
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
RUN=$(mktemp -d "$B/run.XXXXXX") || { echo "not ok - cannot make a work dir in $B"; result 0 1; }
mkdir -p "$B/corpus"
echo "# fuzzing for $SECS s (work dir $RUN)"
rc=0
# shellcheck disable=SC2086 # FUZZ_ARGS is a word list
TMPDIR=$RUN FUZZ_HISTORY=$RUN/history \
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

PASS=0
FAIL=0
if [ "$rc" -eq 0 ] && grep -q 'Done [0-9]* runs' "$RUN/log"; then
	echo "ok - fuzz_api: no crash in $SECS s"
	rm -rf "$RUN"
	PASS=1
else
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
	FAIL=1
fi

# ------------------------------------------------------- smaller targets
SMALL=$((SECS / 3))
[ "$SMALL" -ge 5 ] || SMALL=5
HOBJS=$(mkvars HELPER_LIB_OBJS)
LIBA=$(mkvars LIB_ARCHIVE)
# small_target NAME OBJS... : build tests/fuzz/NAME.c against OBJS, run it.
# For one call, MAX_LEN sets the largest input (4096) and SEEDS a seed corpus
# (read, never written).
small_target() {
	local name=$1 bin=$B/$1 run src=tests/fuzz/$1.c last
	shift
	# shellcheck disable=SC2086,SC2046 # word lists
	if ! clang $CFL -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all -Wall -Wextra -Werror -Wno-missing-prototypes \
		"$src" "$@" -o "$bin" $LIBS $(pkg-config --libs mount blkid) 2>"$B/$name.build.log"; then
		echo "not ok - building $name failed"
		sed 's/^/#   /' "$B/$name.build.log" | tail -n 10
		FAIL=$((FAIL + 1))
		return
	fi
	run=$(mktemp -d "$B/run-$name.XXXXXX") || {
		echo "not ok - cannot make a work dir in $B"
		FAIL=$((FAIL + 1))
		return
	}
	mkdir -p "$B/corpus-$name"
	if TMPDIR=$run ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$bin" -max_total_time="$SMALL" -timeout=20 -max_len="${MAX_LEN:-4096}" -artifact_prefix="$run/" \
		"$B/corpus-$name" ${SEEDS:+"$SEEDS"} >"$run/log" 2>&1 && grep -q 'Done [0-9]* runs' "$run/log"; then
		last=$(grep -E '^#[0-9]+' "$run/log" | tail -n 1)
		echo "ok - $name: no crash in $SMALL s ($(awk '{print $1}' <<<"$last" | tr -d '#') runs," \
			"$(sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p' <<<"$last") exec/s)"
		rm -rf "$run"
		PASS=$((PASS + 1))
	else
		echo "not ok - $name crashed; log and input: $run"
		grep -E 'ERROR: |runtime error:|==ERROR|deadly signal|INVARIANT BROKEN' "$run/log" | head -n 5 | sed 's/^/#   /'
		FAIL=$((FAIL + 1))
	fi
}
# shellcheck disable=SC2086 # word lists
if ! make -s -j"${FUZZ_JOBS:-2}" "${MAKEVARS[@]}" $HOBJS $LIBA; then
	echo "not ok - building mount.ballast's objects with clang failed"
	FAIL=$((FAIL + 1))
fi
# shellcheck disable=SC2086 # word lists
small_target fuzz_config $OBJS
# shellcheck disable=SC2086 # word lists
small_target fuzz_catalog $OBJS
# shellcheck disable=SC2086 # word lists
small_target fuzz_mount_argv $HOBJS $LIBA
# shellcheck disable=SC2086 # word lists
MAX_LEN=98304 SEEDS=tests/fuzz/corpus_http small_target fuzz_http $OBJS
result "$PASS" "$FAIL"
