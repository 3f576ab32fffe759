#!/usr/bin/env bash
# tests/dead_daemon.sh - issue 15: tests that cannot pass by accident. Runs
# every integration group against a ballastd that never answers and shows
# that each one FAILS (reports a failed check, or dies or times out) rather
# than passing. A demonstration, run by hand as root; not part of make check.
#
#   tests/dead_daemon.sh [--mode mute|activate-only|both] [--timeout S] [GROUP...]
#
# The stand-in (tests/tools/dead_ballastd.c, built here) takes ballastd's
# command line: it hands --version, --help, --list-config-keys,
# --list-options and --check-config to the real binary (so a group's set-up
# checks pass), refuses what the real --check-config refuses, then binds the
# configured socket ([ballast] socket = of --config FILE, or the socket
# systemd passes) and accepts every connection:
#   mute           answers nothing at all
#   activate-only  answers POST /Plugin.Activate as ballastd does, and holds
#                  every other request open, unanswered
# SIGTERM removes the socket and exits 0, as ballastd does.
#
# For each mode: copies of the build dir and of the crash-point build
# ($DEAD_DIR/MODE/build and .../crash, from $BALLAST_BUILD or build/ and
# build/crash; the latter is built there when missing) with the stand-in
# in place of ballastd (the real one next to it as ballastd.real; a
# modification time in 2099, so that a group's `make` never relinks over
# it). Each group runs with BALLAST_BUILD and BUILD set to the copy,
# BALLAST_CRASH_BUILD to the crash copy with BALLAST_CRASH_PREBUILT=1
# (tests/lib/crashd.sh, handoff.sh) and BALLAST_DEB_BALLASTD to the
# stand-in (deb.sh), under `flock $DEAD_LOCK` (one group at a time on the
# machine, others' runs interleave) and `timeout` (DEAD_TIMEOUT, 300 s;
# DEAD_TIMEOUT_<group> for one group; deb builds a package first: 900 s).
# Its `# group NAME: P passed, F failed, K skipped` line is read.
#
# Prints one table: group, mode, passed, failed, skipped, stand-in starts
# (serving; -1 when it cannot be counted), seconds and the verdict:
#   fails: ok                   F > 0, or the group died or timed out
#                               after a check had failed
#   UNDECIDED                   died or timed out before any check failed
#   PASSED WITH A DEAD DAEMON   anything else (a finding: the group's checks
#                               can pass without a working daemon)
#   INVALID                     the stand-in was replaced during the run
# Groups that never run ballastd (read and listed in NO_DAEMON below) and
# the unit tests are listed, not run. Exits non-zero if any group passed, was undecided or
# a run was invalid. Logs: $DEAD_DIR/MODE/logs/GROUP.log; the table also in
# $DEAD_DIR/summary.txt.
#
# The test directories the failing groups keep are removed (DEAD_KEEP=1
# keeps them), and stand-ins a group left running are killed.
#
# Environment: DEAD_DIR (/tmp/ballast-dead), BALLAST_BUILD (the real
# binaries, default build/), DEAD_CRASH_SRC (build/crash), DEAD_TIMEOUT,
# DEAD_LOCK (/tmp/ballast-it.lock), DEAD_KEEP.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

# Groups that never start ballastd, by reading them:
#   layers        structure checks of the source tree (includes,
#                 clang-format, function and file lengths)
#   mount_helper  runs mount.ballast (and a throw-away Ceph) only
# (tests/deps.sh, not a group, installs packages only.)
NO_DAEMON=(layers mount_helper)

MODES=(mute activate-only)
TIMEOUT=${DEAD_TIMEOUT:-300}
DEAD_DIR=${DEAD_DIR:-/tmp/ballast-dead}
LOCK=${DEAD_LOCK:-/tmp/ballast-it.lock}
SRC_BUILD=${BALLAST_BUILD:-$ROOT/build}
case $SRC_BUILD in /*) ;; *) SRC_BUILD=$ROOT/$SRC_BUILD ;; esac
SRC_CRASH=${DEAD_CRASH_SRC:-$ROOT/build/crash}
SELECT=()

usage() {
	sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--mode)
		case ${2:-} in
		mute | activate-only) MODES=("$2") ;;
		both) MODES=(mute activate-only) ;;
		*) usage ;;
		esac
		shift 2
		;;
	--timeout)
		[[ ${2:-} =~ ^[0-9]+$ ]] || usage
		TIMEOUT=$2
		shift 2
		;;
	-h | --help) usage ;;
	-*) usage ;;
	*)
		SELECT+=("$1")
		shift
		;;
	esac
done

die() {
	echo "dead_daemon.sh: $*" >&2
	exit 2
}
say() { printf '## %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (the groups need it)"
for c in cc flock timeout tar sha256sum; do
	command -v "$c" >/dev/null || die "$c not found"
done
[ -x "$SRC_BUILD/ballastd" ] || die "$SRC_BUILD/ballastd missing: run make"
[ -f "$SRC_BUILD/.flags" ] || die "$SRC_BUILD is not a build dir (no .flags)"

wanted() {
	local n
	[ "${#SELECT[@]}" -eq 0 ] && return 0
	for n in "${SELECT[@]}"; do
		[ "$n" = "$1" ] && return 0
	done
	return 1
}

no_daemon() {
	local n
	for n in "${NO_DAEMON[@]}"; do
		[ "$n" = "$1" ] && return 0
	done
	return 1
}

group_timeout() {
	local v="DEAD_TIMEOUT_$1"
	if [ -n "${!v:-}" ]; then
		echo "${!v}"
	elif [ "$1" = deb ] && [ -z "${DEAD_TIMEOUT:-}" ]; then
		echo 900
	else
		echo "$TIMEOUT"
	fi
}

# copy_build SRC DST: the binaries, modules, objects and test programs of a build
# dir, modification times kept (other build dirs inside it are left out).
copy_build() {
	local src=$1 dst=$2 e keep=()
	mkdir -p "$dst" || return 1
	for e in "$src"/* "$src"/.flags; do
		[ -e "$e" ] || continue
		if [ -d "$e" ] && [ "${e##*/}" != obj ] && [ "${e##*/}" != tests ] && [ "${e##*/}" != backends ]; then
			continue
		fi
		keep+=("./${e##*/}")
	done
	tar -C "$src" -cf - "${keep[@]}" | tar -C "$dst" -xf -
}

# install_standin BIN DIR: DIR/ballastd becomes BIN, the real one
# DIR/ballastd.real.
install_standin() {
	local bin=$1 dir=$2
	[ -x "$dir/ballastd" ] || return 1
	mv "$dir/ballastd" "$dir/ballastd.real" || return 1
	cp "$bin" "$dir/ballastd" || return 1
	touch -d '2099-01-01 00:00:00' "$dir/ballastd"
	: >"$dir/dead-starts.log"
}

# prep MODE: $DEAD_DIR/MODE/{build,crash} with the stand-in.
prep() {
	local mode=$1 d=$DEAD_DIR/$1
	rm -rf "$d"
	mkdir -p "$d/logs" || die "cannot make $d"
	cc -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -DDEAD_MODE="\"$mode\"" \
		-o "$d/dead_ballastd" "$ROOT/tests/tools/dead_ballastd.c" || die "cannot build the stand-in"
	copy_build "$SRC_BUILD" "$d/build" || die "cannot copy $SRC_BUILD"
	if [ -x "$SRC_CRASH/ballastd" ]; then
		copy_build "$SRC_CRASH" "$d/crash" || die "cannot copy $SRC_CRASH"
	else
		say "no $SRC_CRASH/ballastd: building the crash-point build in $d/crash"
		make -s -C "$ROOT" BUILD="$d/crash" CRASHPOINTS=1 all >"$d/logs/crash-build.log" 2>&1 ||
			die "make CRASHPOINTS=1 failed (see $d/logs/crash-build.log)"
	fi
	install_standin "$d/dead_ballastd" "$d/build" || die "cannot install the stand-in in $d/build"
	install_standin "$d/dead_ballastd" "$d/crash" || die "cannot install the stand-in in $d/crash"
	sha256sum "$d/dead_ballastd" | cut -d' ' -f1 >"$d/standin.sha256"
}

# standins_intact MODE: both copies still hold the stand-in.
standins_intact() {
	local d=$DEAD_DIR/$1 want b
	want=$(cat "$d/standin.sha256")
	for b in "$d/build/ballastd" "$d/crash/ballastd"; do
		[ "$(sha256sum "$b" 2>/dev/null | cut -d' ' -f1)" = "$want" ] || return 1
	done
}

# starts MODE: how many times a stand-in started serving (both copies).
starts() {
	cat "$DEAD_DIR/$1/build/dead-starts.log" "$DEAD_DIR/$1/crash/dead-starts.log" 2>/dev/null |
		grep -c ' serving:'
}

# reap MODE: SIGKILL stand-ins of MODE a group left running (by pid: the
# processes whose executable is one of our copies); prints how many.
reap() {
	local d=$DEAD_DIR/$1 p exe n=0
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		case $exe in
		"$d/build/ballastd" | "$d/crash/ballastd" | "$d/build/ballastd (deleted)" | "$d/crash/ballastd (deleted)")
			kill -KILL "${p#/proc/}" 2>/dev/null && n=$((n + 1))
			;;
		esac
	done
	echo "$n"
}

# tidy LOG: remove the test directories the group kept (it failed, as it
# should), unless something is still mounted under one or DEAD_KEEP=1.
tidy() {
	local dir
	[ "${DEAD_KEEP:-0}" = 1 ] && return 0
	sed -n 's/^# test directory kept: \(\/tmp\/[^ ]*\).*/\1/p' "$1" | sort -u |
		while IFS= read -r dir; do
			[ -d "$dir" ] || continue
			if awk -v d="$dir/" 'index($2, d) == 1 { f = 1 } END { exit !f }' /proc/mounts; then
				say "kept $dir: something is still mounted under it"
			else
				rm -rf "$dir"
			fi
		done
}

ROWS=()
NPASSED=0
NINVALID=0
NUNDECIDED=0

row() { # GROUP MODE PASSED FAILED SKIPPED STARTS SECONDS VERDICT
	ROWS+=("$(printf '%-14s %-13s %6s %6s %7s %6s %6s  %s' "$@")")
}

# run_group MODE GROUP
run_group() {
	local mode=$1 g=$2 d=$DEAD_DIR/$1 log stamp tmo rc=0 before after line p=- f=- k=- verdict t0 secs left nok
	log=$d/logs/$g.log
	stamp=$d/logs/$g.start
	tmo=$(group_timeout "$g")
	before=$(starts "$mode")
	say "$mode: $g (timeout $tmo s; waiting for $LOCK)"
	rm -f "$stamp"
	# shellcheck disable=SC2016 # expanded by the inner shell
	env BALLAST_BUILD="$d/build" BUILD="$d/build" \
		BALLAST_CRASH_BUILD="$d/crash" BALLAST_CRASH_PREBUILT=1 \
		BALLAST_DEB_BALLASTD="$d/build/ballastd" \
		flock "$LOCK" bash -c 'date +%s >"$1"; shift; exec "$@"' _ "$stamp" \
		timeout -k 120 "$tmo" bash "$ROOT/tests/integration/$g.sh" </dev/null >"$log" 2>&1 || rc=$?
	t0=$(cat "$stamp" 2>/dev/null || date +%s)
	secs=$(($(date +%s) - t0))
	left=$(reap "$mode")
	tidy "$log"
	after=$(starts "$mode")
	# failed checks, not the lines the harness adds when the group is cut
	# short or its daemon died (a stand-in that dies is no proof)
	nok=$(grep '^not ok' "$log" | grep -cvE 'exited early with status|stayed up until the end')
	line=$(grep -E '^# group [^:]+: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
	if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
		p=${BASH_REMATCH[1]}
		f=${BASH_REMATCH[2]}
		k=${BASH_REMATCH[4]:-0}
	fi
	if ! standins_intact "$mode"; then
		verdict="INVALID: the stand-in was replaced during the run"
		NINVALID=$((NINVALID + 1))
	elif [ "$f" = - ] && [ "$nok" -eq 0 ]; then
		# cut short (or dead) before any check failed: no proof
		verdict="UNDECIDED: status $rc, no group line, no failed check (give it more time)"
		NUNDECIDED=$((NUNDECIDED + 1))
	elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		verdict="fails: ok (timed out after $tmo s, $nok failed by then)"
	elif [ "$f" = - ]; then
		verdict="fails: ok (died: status $rc, no group line, $nok failed by then)"
	elif [ "$f" -gt 0 ]; then
		verdict="fails: ok"
	elif [ "$rc" -ne 0 ]; then
		verdict="fails: ok (exit status $rc)"
	else
		verdict="PASSED WITH A DEAD DAEMON"
		[ "$p" -eq 0 ] && verdict="$verdict (nothing passed either)"
		[ "$k" -gt 0 ] && verdict="$verdict ($k skipped)"
		NPASSED=$((NPASSED + 1))
	fi
	[ "$left" -gt 0 ] && verdict="$verdict [$left stand-in(s) left running: killed]"
	MODE_SECS=$((MODE_SECS + secs))
	row "$g" "$mode" "$p" "$f" "$k" "$((after - before))" "$secs" "$verdict"
	say "$mode: $g: ${line:-no group line} (status $rc) -> $verdict"
	# the checks that passed, for a group that passed
	case $verdict in PASSED*) grep '^ok - ' "$log" | sed "s/^/##   $g passed: /" ;; esac
}

row group mode passed failed skipped starts secs verdict
T_ALL=$SECONDS
for mode in "${MODES[@]}"; do
	say "mode $mode: preparing $DEAD_DIR/$mode"
	prep "$mode"
	T_MODE=$SECONDS
	MODE_SECS=0
	for script in tests/integration/*.sh; do
		g=$(basename "$script" .sh)
		wanted "$g" || continue
		if no_daemon "$g"; then
			if grep -qE 'ballastd|BALLAST_BUILD|crashd\.sh|hosts\.sh|docker-plugin' "$script"; then
				say "warning: $g is listed as not using ballastd but mentions it now: running it"
			else
				row "$g" "$mode" - - - - - "does not use ballastd (not run)"
				continue
			fi
		fi
		run_group "$mode" "$g"
	done
	row "(mode total)" "$mode" - - - - "$MODE_SECS" "wall clock $((SECONDS - T_MODE)) s, waits for the lock included"
done
for u in tests/unit/test_*.c; do
	u=unit_$(basename "$u" .c)
	u=${u/unit_test_/unit_}
	wanted "$u" || continue
	row "$u" - - - - - - "not applicable (unit test: no ballastd)"
done

echo
printf '%s\n' "${ROWS[@]}" | tee "$DEAD_DIR/summary.txt"
echo "total $((SECONDS - T_ALL)) s; $NPASSED group run(s) passed with a dead daemon, $NUNDECIDED undecided," \
	"$NINVALID invalid" | tee -a "$DEAD_DIR/summary.txt"
[ "$NPASSED" -eq 0 ] && [ "$NINVALID" -eq 0 ] && [ "$NUNDECIDED" -eq 0 ]
