#!/usr/bin/env bash
# bench/run.sh - ballast's benchmarks (`make bench`). Needs root and the set-up
# of `make check` (tests/deps.sh); installs fio (and python3, for the helper
# scripts) with apt if missing, and falls back to dd when fio cannot be had.
#
# Starts a private dockerd (tests/lib/dockerd.sh) and its own ballastd(s), and
# measures, every comparison interleaved (A B A B ...) over BENCH_ROUNDS rounds:
#   a. dockerd:  docker volume create/inspect/rm cycles and docker run --rm -v
#                runs, ballast local vs dockerd's built-in `local`, through the
#                API by one persistent client (bench/dockerapi.py)
#   b. socket:   bench/loadgen Get and Create/Mount/Unmount/Remove cycles at 1
#                and 64 keep-alive connections: req/s, p50, p99
#   c. scale:    idle RSS; with BENCH_VOLUMES (10,000) volumes made through the
#                socket: start-to-Activate time (catalog recovery) against an
#                empty catalog, RSS, VolumeDriver.List and Ballast.List latency
#   d. data:     sequential overwrite (fsync at the end) and cold-cache read inside
#                a container on a ballast plain-dir volume and a sized-image
#                volume vs a host directory bind-mounted into the container
#   e. rbd / gluster: hooks only (BENCH_RBD=1 / BENCH_GLUSTER=1)
# then prints the table and writes the same figures to bench/results/latest.json
# (bench/report.py). Nothing is asserted: figures are reported, not judged.
#
# Environment:
#   BENCH_ROUNDS (5)        rounds of every interleaved comparison
#   BENCH_VOLUMES (10000)   catalog size for the scale rows
#   BENCH_FIO_SIZE (512M)   file size of the data-path jobs (the sized volume is 1G)
#   BENCH_IO_REPS (3)       data-path measurements per variant per round (median)
#   BENCH_GET_SECONDS (3), BENCH_CYCLE_SECONDS (4)   loadgen time per row per round
#   BENCH_VOLUME_CYCLES (100), BENCH_RUNS (20)   dockerd operations per driver per round
#   BENCH_SECTIONS ("dockerd socket scale data")   which sections to run
#   BENCH_PLUGIN (ballastbench)   the plugin name registered with our dockerd
#   BENCH_OUT (bench/results/latest.json)
#   BENCH_FORCE_DD=1        use dd even when fio is there
#   BENCH_KEEP=1            keep the work directory (logs) even on success
#   BUILD (build)           where ballastd, mount.ballast and loadgen are
#
# Cleans up everything it made (containers, dockerd, containerd, ballastd,
# mounts, loop devices, the spec file, the work directory) even on failure;
# on failure the daemons' logs are copied to /tmp/ballast-bench-logs.* first.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BALLAST_BUILD=$BUILD

ROUNDS=${BENCH_ROUNDS:-5}
NVOL=${BENCH_VOLUMES:-10000}
FIO_SIZE=${BENCH_FIO_SIZE:-512M}
IO_REPS=${BENCH_IO_REPS:-3}
GET_S=${BENCH_GET_SECONDS:-3}
CYCLE_S=${BENCH_CYCLE_SECONDS:-4}
VOL_CYCLES=${BENCH_VOLUME_CYCLES:-100}
RUNS=${BENCH_RUNS:-20}
SECTIONS=${BENCH_SECTIONS:-dockerd socket scale data}
PLUGIN=${BENCH_PLUGIN:-ballastbench}
OUT=${BENCH_OUT:-$HERE/results/latest.json}
PY=/usr/bin/python3
LOADGEN=$BUILD/bench/loadgen

# shellcheck source=../tests/lib/dockerd.sh
. "$ROOT/tests/lib/dockerd.sh"
# shellcheck source=../tests/lib/ballastd.sh
. "$ROOT/tests/lib/ballastd.sh"

say() { printf '# bench: %s\n' "$*" >&2; }
die() {
	say "FAILED: $*"
	exit 1
}
has_section() { [[ " $SECTIONS " == *" $1 "* ]]; }

[ "$(id -u)" -eq 0 ] || die "must run as root (dockerd, mounts, loop devices)"
for c in dockerd containerd docker curl jq losetup gcc; do
	command -v "$c" >/dev/null || die "$c not installed (run tests/deps.sh, or make check once)"
done
# bench/dockerapi.py and bench/report.py need Python 3's standard library.
if [ ! -x "$PY" ]; then
	say "installing python3 (apt)"
	DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 install \
		--no-install-recommends python3 >/dev/null 2>&1 || die "$PY missing and apt-get install python3 failed"
fi
# dockerd looks for these before any spec file.
for s in "/run/docker/plugins/$PLUGIN.sock" "/run/docker/plugins/$PLUGIN/$PLUGIN.sock"; do
	[ -e "$s" ] && die "$s exists: dockerd would use it instead of our spec file (set BENCH_PLUGIN)"
done

# ------------------------------------------------------------------ build
if [ ! -x "$BUILD/ballastd" ] || [ ! -x "$BUILD/mount.ballast" ] || [ ! -x "$BUILD/ballast" ]; then
	say "building ballast (make all)"
	make -C "$ROOT" -s BUILD="$BUILD" all >&2 || die "make all failed"
fi
if [ ! -x "$LOADGEN" ] || [ "$HERE/loadgen.c" -nt "$LOADGEN" ]; then
	mkdir -p "$BUILD/bench"
	gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread "$HERE/loadgen.c" -o "$LOADGEN" ||
		die "cannot build loadgen"
fi

IO_TOOL=fio
if [ -n "${BENCH_FORCE_DD:-}" ]; then
	IO_TOOL="dd"
elif ! command -v fio >/dev/null; then
	say "installing fio (apt)"
	if ! DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 install \
		--no-install-recommends fio >/tmp/ballast-bench-fio.$$.log 2>&1; then
		say "apt-get install fio failed (log /tmp/ballast-bench-fio.$$.log): using dd conv=fsync"
		IO_TOOL="dd"
	else
		rm -f /tmp/ballast-bench-fio.$$.log
	fi
fi

# ------------------------------------------------------------------ state
T=$(mktemp -d /tmp/ballast-bench.XXXXXX)
RAW=$T/raw.jsonl
: >"$RAW"
SCALE_PID=""
FAILED=1
SECONDS=0

# Cleanup, in an order that cannot leave anything behind: containers and
# dockerd first (they hold mounts of our volumes), then the daemons, then
# whatever mounts and loop devices are still under $T.
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
	local lp keep=${BENCH_KEEP:-}
	trap - EXIT INT TERM
	if [ "$FAILED" -ne 0 ]; then
		local logs
		logs=$(mktemp -d /tmp/ballast-bench-logs.XXXXXX)
		find "$T" -maxdepth 3 -name '*.log' -exec cp --parents {} "$logs" \; 2>/dev/null
		cp "$RAW" "$logs/" 2>/dev/null
		say "logs kept in $logs"
	fi
	dockerd_cleanup
	if [ -n "$SCALE_PID" ]; then
		kill -KILL "$SCALE_PID" 2>/dev/null
		wait "$SCALE_PID" 2>/dev/null
		SCALE_PID=""
	fi
	ballastd_stop >/dev/null 2>&1 || ballastd_kill9
	awk -v d="$T" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while IFS= read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; done
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$T" 'index($2, d) == 1 { print $1 }' |
		while IFS= read -r lp; do losetup -d "$lp" 2>/dev/null; done
	_dk_force_clean "$T"
	if [ -n "$keep" ]; then
		say "work directory kept: $T"
	elif [ -z "$(dockerd_leftovers "$T")" ]; then
		rm -rf "$T"
	else
		say "leftovers under $T:"
		dockerd_leftovers "$T" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

emit() { printf '%s\n' "$1" >>"$RAW"; }
# emit_metric SECTION METRIC UNIT VALUE ROUND: a record for the generic rows
# (the rbd and gluster hooks use it).
# shellcheck disable=SC2317 # unused until the hooks are filled in
emit_metric() {
	emit "$(jq -cn --arg s "$1" --arg m "$2" --arg u "$3" --argjson v "$4" --argjson r "$5" \
		'{section: $s, metric: $m, unit: $u, value: $v, round: $r}')"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# bench_ballastd_conf DIR: a config like tests/lib/ballastd.sh's, but at log
# level info (debug logs every request, which is not what a user runs).
bench_ballastd_conf() {
	mkdir -p "$1"
	cat >"$1/ballast.conf" <<-EOF
		[ballast]
		socket = $1/ballast.sock
		state_dir = $1/state
		helper = $BUILD/mount.ballast
		log_level = info
		[local]
		root = $1/state/local
	EOF
}

# bench_ballastd_launch DIR: start ballastd on DIR's config, wait for the
# socket to answer Plugin.Activate; LAUNCH_PID, LAUNCH_MS (exec to answer).
bench_ballastd_launch() {
	local d=$1 t0 out
	rm -f "$d/ballast.sock"
	t0=$(date +%s%N)
	"$BUILD/ballastd" --config "$d/ballast.conf" >>"$d/ballastd.log" 2>&1 </dev/null &
	LAUNCH_PID=$!
	if ! out=$("$LOADGEN" --socket "$d/ballast.sock" --mode activate --since "$t0" --timeout 120); then
		tail -n 20 "$d/ballastd.log" >&2
		bench_ballastd_term "$LAUNCH_PID"
		return 1
	fi
	LAUNCH_MS=$(jq -r .ms <<<"$out")
}

# bench_ballastd_term PID: SIGTERM and wait (30 s, then SIGKILL).
bench_ballastd_term() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# ------------------------------------------------------------------ set up
say "work directory $T; rounds $ROUNDS; sections: $SECTIONS; io tool $IO_TOOL"
emit "$(jq -cn --arg date "$(date -u +%FT%TZ)" --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--arg dirty "$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -qv '^??' && echo yes || echo no)" \
	--arg kernel "$(uname -r)" --argjson cpus "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--arg dockerd "$(dockerd --version 2>/dev/null)" --argjson rounds "$ROUNDS" --argjson volumes "$NVOL" \
	--arg io "$IO_TOOL" --arg io_size "$FIO_SIZE" \
	'{section: "meta", date: $date, commit: $commit, uncommitted_changes: $dirty, kernel: $kernel,
	  cpus: $cpus, loadavg_start: $load, dockerd: $dockerd, rounds: $rounds, volumes: $volumes,
	  io_tool: $io, io_size: $io_size}')"

need_docker=0
{ has_section dockerd || has_section data; } && need_docker=1

if [ "$need_docker" -eq 1 ]; then
	dockerd_start "$T/d" || die "dockerd did not start"
	busybox_image || die "could not import local/busybox"
fi
# The main ballastd (rows a, b, d), run as tests/lib/ballastd.sh runs it, so
# its ballastd_stop applies; its log level is info.
bench_ballastd_conf "$T/m"
bench_ballastd_launch "$T/m" || die "ballastd did not start"
BALLASTD_PID=$LAUNCH_PID
BALLASTD_DIR=$T/m
BALLAST_SOCK=$T/m/ballast.sock
if [ "$need_docker" -eq 1 ]; then
	plugin_register "$PLUGIN" "$BALLAST_SOCK" || die "could not write the plugin spec"
fi
say "set-up took $SECONDS s"

# ------------------------------------------------------------------ a. dockerd
if has_section dockerd; then
	say "a. through dockerd: $ROUNDS rounds of $VOL_CYCLES volume cycles and $RUNS container runs per driver"
	"$PY" "$HERE/dockerapi.py" --socket "$DOCKERD_DIR/docker.sock" --api "${DOCKER_API_VERSION:-}" \
		--plugin "$PLUGIN" --rounds "$ROUNDS" --cycles "$VOL_CYCLES" --runs "$RUNS" >>"$RAW" ||
		die "dockerapi.py failed"
	say "a. done at $SECONDS s"
fi

# ------------------------------------------------------------------ b. socket
if has_section socket; then
	say "b. straight to the socket: Get ${GET_S}s and cycles ${CYCLE_S}s at 1 and 64 connections, $ROUNDS rounds"
	rows=("get 1" "get 64" "cycle 1" "cycle 64")
	for ((r = 0; r < ROUNDS; r++)); do
		for ((k = 0; k < ${#rows[@]}; k++)); do
			# rotate the order every round
			read -r mode conns <<<"${rows[$(((k + r) % ${#rows[@]}))]}"
			secs=$GET_S
			[ "$mode" = cycle ] && secs=$CYCLE_S
			out=$("$LOADGEN" --socket "$BALLAST_SOCK" --mode "$mode" --conns "$conns" \
				--duration "$secs" --prefix "lg$r") || die "loadgen $mode c=$conns failed: $out"
			emit "{\"section\":\"socket\",\"row\":\"${mode}_c$conns\",\"round\":$r,\"data\":$out}"
		done
	done
	say "b. done at $SECONDS s"
fi

# ------------------------------------------------------------------ c. scale
if has_section scale; then
	say "c. memory and scale: $NVOL volumes through the socket, then $ROUNDS rounds of empty vs full restarts"
	bench_ballastd_conf "$T/k"
	bench_ballastd_conf "$T/e"
	bench_ballastd_launch "$T/k" || die "ballastd (k) did not start"
	SCALE_PID=$LAUNCH_PID
	out=$("$LOADGEN" --socket "$T/k/ballast.sock" --mode create --conns 16 --count "$NVOL" --prefix v) ||
		die "creating $NVOL volumes failed: $out"
	emit "{\"section\":\"scale\",\"row\":\"create\",\"data\":$out}"
	bench_ballastd_term "$SCALE_PID"
	SCALE_PID=""
	for ((r = 0; r < ROUNDS; r++)); do
		order=(e k)
		[ $((r % 2)) -eq 1 ] && order=(k e)
		for which in "${order[@]}"; do
			bench_ballastd_launch "$T/$which" || die "ballastd ($which) did not start"
			SCALE_PID=$LAUNCH_PID
			sleep 1
			rss=$(rss_kib "$SCALE_PID")
			if [ "$which" = e ]; then
				emit "{\"section\":\"scale\",\"row\":\"start_empty\",\"round\":$r,\"ms\":$LAUNCH_MS,\"rss_kib\":$rss}"
			else
				emit "{\"section\":\"scale\",\"row\":\"start_10k\",\"round\":$r,\"volumes\":$NVOL,\"ms\":$LAUNCH_MS,\"rss_kib\":$rss}"
				for m in VolumeDriver.List Ballast.List; do
					out=$("$LOADGEN" --socket "$T/k/ballast.sock" --mode list --method "$m" --count 20) ||
						die "loadgen list $m failed: $out"
					emit "{\"section\":\"scale\",\"row\":\"list\",\"method\":\"$m\",\"round\":$r,\"data\":$out}"
				done
				emit "{\"section\":\"scale\",\"row\":\"rss_after_list\",\"round\":$r,\"rss_kib\":$(rss_kib "$SCALE_PID")}"
			fi
			bench_ballastd_term "$SCALE_PID"
			SCALE_PID=""
		done
	done
	say "c. done at $SECONDS s"
fi

# ------------------------------------------------------------------ d. data
# io_job VOLSPEC OP: one container with VOLSPEC at /data runs the job and
# prints MiB/s. The host's /usr is bound read-only into the busybox image, so
# fio (or coreutils dd) and their libraries come from the host without being
# copied into every container (vfs storage copies the image per container).
io_job() {
	local spec=$1 op=$2 cmd out
	local bytes
	bytes=$(numfmt --from=iec "$FIO_SIZE")
	if [ "$IO_TOOL" = fio ]; then
		cmd="/usr/bin/fio --name=seq$op --filename=/data/bench.io --rw=$op --bs=1M --size=$FIO_SIZE"
		cmd+=" --ioengine=psync --output-format=json"
		[ "$op" = write ] && cmd+=" --overwrite=1 --end_fsync=1"
	else
		if [ "$op" = write ]; then
			cmd="/usr/bin/dd if=/dev/zero of=/data/bench.io bs=1M count=$((bytes / 1048576)) conv=fsync,notrunc 2>&1"
		else
			cmd="/usr/bin/dd if=/data/bench.io of=/dev/null bs=1M 2>&1"
		fi
	fi
	out=$(dk run --rm --network none --volume-driver "$PLUGIN" -v "$spec:/data" \
		-v /usr:/usr:ro -v /lib:/lib:ro -v /lib64:/lib64:ro local/busybox sh -c "$cmd" \
		2>"$T/io.err") || {
		say "io job ($spec $op) failed: $out $(cat "$T/io.err")"
		return 1
	}
	if [ "$IO_TOOL" = fio ]; then
		jq -r --arg op "$op" '.jobs[0][$op].bw_bytes / 1048576' <<<"$out"
	else
		# coreutils: "N bytes (...) copied, S s, R MB/s"
		sed -n 's/^\([0-9]*\) bytes .* copied, \([0-9.]*\) s.*/\1 \2/p' <<<"$out" |
			awk '{ printf "%.3f\n", $1 / $2 / 1048576 }'
	fi
}

if has_section data; then
	say "d. data path: $IO_TOOL, $FIO_SIZE sequential overwrite+fsync and cold read, $ROUNDS rounds of $IO_REPS"
	mkdir -p "$T/hostdir"
	dk volume create -d "$PLUGIN" bench-dir >/dev/null || die "volume create bench-dir failed"
	dk volume create -d "$PLUGIN" -o size=1G bench-img >/dev/null || die "volume create bench-img failed"
	declare -A spec=([dir]=bench-dir [image]=bench-img [host]=$T/hostdir)
	variants=(dir image host)
	# Lay each file out once, untimed: every timed write then overwrites the
	# same blocks, so that where the file system happens to allocate (fresh
	# blocks of a thin virtual disk are much slower here) does not decide.
	for v in "${variants[@]}"; do
		io_job "${spec[$v]}" write >/dev/null || die "data path layout on $v failed"
	done
	for ((r = 0; r < ROUNDS; r++)); do
		for ((rep = 0; rep < IO_REPS; rep++)); do
			# the three writes back to back (order rotated every time),
			# then the three reads, so that both sides of a ratio are
			# seconds apart
			order=()
			for ((k = 0; k < 3; k++)); do
				order+=("${variants[$(((k + r + rep) % 3))]}")
			done
			declare -A wr=() rd=()
			for v in "${order[@]}"; do
				wr[$v]=$(io_job "${spec[$v]}" write) || die "data path write on $v failed"
			done
			# cold reads: nothing of the files left in the page cache
			# (the image's loop backing file included)
			sync
			echo 3 >/proc/sys/vm/drop_caches
			for v in "${order[@]}"; do
				rd[$v]=$(io_job "${spec[$v]}" read) || die "data path read on $v failed"
			done
			for v in "${order[@]}"; do
				for op in write read; do
					if [ "$op" = write ]; then val=${wr[$v]}; else val=${rd[$v]}; fi
					emit "{\"section\":\"data\",\"row\":\"$op\",\"variant\":\"$v\",\"round\":$r,\"rep\":$rep,\"mib_s\":$val,\"tool\":\"$IO_TOOL\",\"size\":\"$FIO_SIZE\"}"
				done
			done
		done
	done
	for v in dir image; do
		dk run --rm --network none -v "${spec[$v]}:/data" local/busybox rm -f /data/bench.io >/dev/null
	done
	dk volume rm bench-dir bench-img >/dev/null || say "warning: could not remove the data-path volumes"
	say "d. done at $SECONDS s"
fi

# ------------------------------------------------------------------ e. rbd, gluster
# HOOKS, not implemented yet. Each is called only when its variable is set and
# the cluster library exists. When the backend lands, fill the function in:
#   - start the cluster (ceph_start "$T/ceph" / gluster_start "$T/gl", whose
#     stop must then be added to cleanup()), restart the main ballastd with the
#     backend's config section, register nothing new (the plugin stays $PLUGIN);
#   - per round r, interleaved: create + first mount and remount latency of a
#     1 GiB volume (dk volume create -o size=1G -o backend=rbd|gluster, then
#     two dk run on it), and filesystem throughput on the volume vs the engine's
#     own tool on the same cluster (`rbd bench --io-type write`, a gfapi or
#     FUSE-mount direct write);
#   - emit each figure with: emit_metric rbd|gluster "METRIC" UNIT VALUE r
#     (UNIT "ratio" for a same-round ratio); report.py makes the rows.
bench_rbd() {
	say "e. rbd rows: hook only, not implemented yet (bench_rbd in bench/run.sh)"
}
bench_gluster() {
	say "e. gluster rows: hook only, not implemented yet (bench_gluster in bench/run.sh)"
}
if [ -n "${BENCH_RBD:-}" ]; then
	if [ -f "$ROOT/tests/lib/ceph.sh" ]; then
		# shellcheck source=../tests/lib/ceph.sh
		. "$ROOT/tests/lib/ceph.sh"
		bench_rbd
	else
		say "BENCH_RBD set but tests/lib/ceph.sh is missing: no rbd rows"
	fi
fi
if [ -n "${BENCH_GLUSTER:-}" ]; then
	if [ -f "$ROOT/tests/lib/gluster.sh" ]; then
		# shellcheck source=../tests/lib/gluster.sh
		. "$ROOT/tests/lib/gluster.sh"
		bench_gluster
	else
		say "BENCH_GLUSTER set but tests/lib/gluster.sh is missing: no gluster rows"
	fi
fi

# ------------------------------------------------------------------ report
emit "$(jq -cn --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson s "$SECONDS" \
	'{section: "meta", loadavg_end: $load, elapsed_s: $s}')"
mkdir -p "$(dirname "$OUT")"
"$PY" "$HERE/report.py" "$RAW" "$OUT.tmp" || die "report.py failed"
mv "$OUT.tmp" "$OUT"
say "figures written to $OUT; total $SECONDS s"
FAILED=0
exit 0
