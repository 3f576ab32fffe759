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
#   d. data:     sequential overwrite (fsync at the end), cold-cache read and
#                random 4 KiB writes each with fsync (a database's log) inside
#                a container on a ballast plain-dir volume and a sized-image
#                volume vs a host directory bind-mounted into the container
#                (the random writes also on a sized volume made with
#                -o mkfs-options=-O fast_commit);
#                and a second host directory vs the first (an A/A control:
#                how far apart two measurements of the same thing land)
#   e. rbd / gluster: on a throw-away 1-mon 1-OSD Ceph cluster and a private
#                glusterd (the integration tests' recipes), through the socket
#                of a ballastd of their own: Create + first Mount, Unmount and
#                remount latency; sequential write+fsync on a mounted volume vs
#                the engine's own reference on the same cluster (rbd bench; a
#                plain `mount -t glusterfs`), over BENCH_CLUSTER_ROUNDS rounds
# then prints the table and writes the same figures to bench/results/latest.json
# (bench/report.py). Nothing is asserted: figures are reported, not judged.
#
# Environment:
#   BENCH_ROUNDS (5)        rounds of every interleaved comparison
#   BENCH_VOLUMES (10000)   catalog size for the scale rows
#   BENCH_FIO_SIZE (512M)   file size of the data-path jobs (the sized volume is 1G)
#   BENCH_IO_REPS (3)       data-path measurements per variant per round (median)
#   BENCH_RAND_SECONDS (5)  length of the random 4 KiB write+fsync job (fio only)
#   BENCH_GET_SECONDS (3), BENCH_CYCLE_SECONDS (4)   loadgen time per row per round
#   BENCH_VOLUME_CYCLES (100), BENCH_RUNS (20)   dockerd operations per driver per round
#   BENCH_SECTIONS ("dockerd socket scale data rbd gluster")   which sections
#                           to run (spaces or commas)
#   BENCH_RBD (1), BENCH_GLUSTER (1)   0 or empty: skip that section
#   BENCH_CLUSTER_ROUNDS (BENCH_ROUNDS)   rounds of the rbd and gluster rows
#   BENCH_CLUSTER_IO (256M)    size of their sequential writes
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
RAND_S=${BENCH_RAND_SECONDS:-5}
GET_S=${BENCH_GET_SECONDS:-3}
CYCLE_S=${BENCH_CYCLE_SECONDS:-4}
VOL_CYCLES=${BENCH_VOLUME_CYCLES:-100}
RUNS=${BENCH_RUNS:-20}
SECTIONS=${BENCH_SECTIONS:-dockerd socket scale data rbd gluster}
SECTIONS=${SECTIONS//,/ }
CL_ROUNDS=${BENCH_CLUSTER_ROUNDS:-$ROUNDS}
CL_IO=${BENCH_CLUSTER_IO:-256M}
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

# The rbd and gluster sections: on unless BENCH_RBD / BENCH_GLUSTER is 0 or
# empty, or the section is not in BENCH_SECTIONS; their cluster libraries are
# sourced here (cleanup() needs their stop functions).
RUN_RBD=0
RUN_GLUSTER=0
if has_section rbd && [ "${BENCH_RBD-1}" != 0 ] && [ -n "${BENCH_RBD-1}" ]; then
	[ -f "$ROOT/tests/lib/ceph.sh" ] || die "tests/lib/ceph.sh missing (set BENCH_RBD=0)"
	# a port range apart from the rbd tests' (16789..19789), in case they
	# run at the same time
	CEPH_PORT_MIN=${CEPH_PORT_MIN:-20789}
	CEPH_PORT_MAX=${CEPH_PORT_MAX:-23789}
	# shellcheck source=../tests/lib/ceph.sh
	. "$ROOT/tests/lib/ceph.sh"
	RUN_RBD=1
fi
if has_section gluster && [ "${BENCH_GLUSTER-1}" != 0 ] && [ -n "${BENCH_GLUSTER-1}" ]; then
	[ -f "$ROOT/tests/lib/gluster.sh" ] || die "tests/lib/gluster.sh missing (set BENCH_GLUSTER=0)"
	# Names and addresses of our own, so that a gluster test running at the
	# same time (netns ballast-gl, 10.231.0.0/24, volume gv0) is not
	# touched: gluster_start removes a leftover netns of its name.
	GL_NS=${BENCH_GL_NS:-bbench-gl}
	GL_VETH_HOST=bbgl0
	GL_VETH_NS=bbgl1
	GL_HOST_ADDR=10.231.7.1
	GL_ADDR=10.231.7.2
	GL_VOLUME=gvbench
	# shellcheck source=../tests/lib/gluster.sh
	. "$ROOT/tests/lib/gluster.sh"
	# No quota on our Gluster volume (these rows set none): its quotad
	# would listen on /var/run/gluster/quotad.socket, the one path every
	# glusterd on this machine uses, and take it from a test's glusterd.
	eval "_bench_gluster_cli() $(declare -f gluster_cli | tail -n +2)"
	gluster_cli() {
		case "$1 $2" in
		"volume quota") return 0 ;;
		"volume set") case ${4:-} in features.hard-timeout | features.soft-timeout) return 0 ;; esac ;;
		esac
		_bench_gluster_cli "$@"
	}
	RUN_GLUSTER=1
fi

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

# the idle RSS floor (bench/idle.c), linked with ballastd's own libraries
IDLE=$BUILD/bench/idle
if [ ! -x "$IDLE" ] || [ "$HERE/idle.c" -nt "$IDLE" ] || [ "$BUILD/ballastd" -nt "$IDLE" ]; then
	mkdir -p "$BUILD/bench"
	mapfile -t idle_libs < <(readelf -d "$BUILD/ballastd" |
		sed -n 's/.*(NEEDED).*\[\(.*\)\]$/-l:\1/p' | grep -v -e '^-l:libc\.so' -e '^-l:ld-linux')
	[ "${#idle_libs[@]}" -gt 0 ] || die "readelf found no library that ballastd links"
	gcc -std=gnu11 -O2 -Wall -Wextra -Werror "$HERE/idle.c" -o "$IDLE" -Wl,--no-as-needed "${idle_libs[@]}" ||
		die "cannot build the idle RSS floor"
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
CL_PID="" # the ballastd of the rbd or gluster rows
FAILED=1
SECONDS=0

# cl_cleanup: what the rbd and gluster rows leave when they fail: their
# ballastd, the volumes' mounts, loop devices and rbd mappers, the glusterfs
# mounts, then the clusters themselves. Called by cleanup() and at the end of
# each backend's rows.
# shellcheck disable=SC2317 # also called through the EXIT trap
cl_cleanup() {
	local d f p mp lp
	if [ -n "$CL_PID" ]; then
		bench_ballastd_term "$CL_PID"
		CL_PID=""
	fi
	for d in "$T/rbd" "$T/glb"; do
		[ -d "$d" ] || continue
		# the file systems first (an rbd volume's ext4 sits on a loop
		# device over its mapper's FUSE file), then the loops, then the
		# mappers (by their pid files: they outlive ballastd)
		awk -v d="$d/state/mounts/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
			while IFS= read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; done
		losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$d/" 'index($2, d) == 1 { print $1 }' |
			while IFS= read -r lp; do losetup -d "$lp" 2>/dev/null; done
		for f in "$d"/state/rbd/*.pid; do
			[ -f "$f" ] || continue
			p=$(cat "$f" 2>/dev/null)
			[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
		done
		awk -v d="$d/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
			while IFS= read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; done
	done
	if [ -n "${CEPH_DIR:-}" ]; then
		ceph_stop
	fi
	if [ -n "${GL_DIR:-}" ]; then
		gluster_stop >/dev/null 2>&1 || say "gluster_stop left something behind"
	fi
	return 0
}

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
	cl_cleanup
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
# emit_metric SECTION METRIC UNIT VALUE ROUND [BETTER]: a record for the
# generic rows (rbd, gluster); BETTER is lower or higher.
emit_metric() {
	emit "$(jq -cn --arg s "$1" --arg m "$2" --arg u "$3" --argjson v "$4" --argjson r "$5" --arg b "${6:-}" \
		'{section: $s, metric: $m, unit: $u, value: $v, round: $r} + (if $b == "" then {} else {better: $b} end)')"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# cpu_us PID: the CPU time (user + system) the process has used, in us
cpu_us() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e6 / hz }' "/proc/$1/stat"
}

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
# socket to answer Plugin.Activate; LAUNCH_PID, LAUNCH_MS (exec to answer),
# LAUNCH_LIST_MS (exec to the answer of the first VolumeDriver.List, sent
# right after Activate's: it waits for the catalog's load).
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
	LAUNCH_LIST_MS=$(jq -r .first_ms <<<"$out")
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
say "work directory $T; rounds $ROUNDS ($CL_ROUNDS for rbd, gluster); sections: $SECTIONS; io tool $IO_TOOL"
emit "$(jq -cn --arg date "$(date -u +%FT%TZ)" --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--arg dirty "$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -qv '^??' && echo yes || echo no)" \
	--arg kernel "$(uname -r)" --argjson cpus "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--arg dockerd "$(dockerd --version 2>/dev/null)" --argjson rounds "$ROUNDS" --argjson volumes "$NVOL" \
	--arg io "$IO_TOOL" --arg io_size "$FIO_SIZE" --argjson cl_rounds "$CL_ROUNDS" --arg cl_io "$CL_IO" \
	--arg sections "$SECTIONS" \
	'{section: "meta", date: $date, commit: $commit, uncommitted_changes: $dirty, kernel: $kernel,
	  cpus: $cpus, loadavg_start: $load, dockerd: $dockerd, rounds: $rounds, volumes: $volumes,
	  io_tool: $io, io_size: $io_size, cluster_rounds: $cl_rounds, cluster_io_size: $cl_io,
	  sections: $sections}')"

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
	# the floor's durable writes, on the file system of ballastd's catalog
	mkdir -p "$BALLASTD_DIR/floor"
	"$PY" "$HERE/dockerapi.py" --socket "$DOCKERD_DIR/docker.sock" --api "${DOCKER_API_VERSION:-}" \
		--plugin "$PLUGIN" --rounds "$ROUNDS" --cycles "$VOL_CYCLES" --runs "$RUNS" \
		--durable-dir "$BALLASTD_DIR/floor" >>"$RAW" ||
		die "dockerapi.py failed"
	say "a. done at $SECONDS s"
fi

# ------------------------------------------------------------------ b. socket
if has_section socket; then
	say "b. straight to the socket: Get ${GET_S}s and cycles ${CYCLE_S}s at 1, 16 and 64 connections, $ROUNDS rounds"
	rows=("get 1" "get 64" "cycle 1" "cycle 16" "cycle 64")
	for ((r = 0; r < ROUNDS; r++)); do
		for ((k = 0; k < ${#rows[@]}; k++)); do
			# rotate the order every round
			read -r mode conns <<<"${rows[$(((k + r) % ${#rows[@]}))]}"
			secs=$GET_S
			[ "$mode" = cycle ] && secs=$CYCLE_S
			cpu0=$(cpu_us "$BALLASTD_PID")
			out=$("$LOADGEN" --socket "$BALLAST_SOCK" --mode "$mode" --conns "$conns" \
				--duration "$secs" --prefix "lg$r") || die "loadgen $mode c=$conns failed: $out"
			cpu=$(($(cpu_us "$BALLASTD_PID") - cpu0))
			emit "{\"section\":\"socket\",\"row\":\"${mode}_c$conns\",\"round\":$r,\"cpu_us\":$cpu,\"data\":$out}"
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
	# idle with both shared backends configured (their modules loaded;
	# no cluster behind them: only the memory of the libraries is asked)
	bench_ballastd_conf "$T/s"
	printf '%s\n' "[rbd]" "conf = $T/s/no-ceph.conf" "[gluster]" "servers = 127.0.0.1" "volume = none" \
		>>"$T/s/ballast.conf"
	bench_ballastd_launch "$T/s" || die "ballastd (s) did not start"
	SCALE_PID=$LAUNCH_PID
	sleep 1
	emit "{\"section\":\"scale\",\"row\":\"start_shared\",\"ms\":$LAUNCH_MS,\"rss_kib\":$(rss_kib "$SCALE_PID")}"
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
				emit "{\"section\":\"scale\",\"row\":\"start_empty\",\"round\":$r,\"ms\":$LAUNCH_MS,\"list_ms\":$LAUNCH_LIST_MS,\"rss_kib\":$rss}"
				"$IDLE" &
				pid=$!
				sleep 1
				rss=$(rss_kib "$pid")
				kill -KILL "$pid"
				wait "$pid" 2>/dev/null
				[ -n "$rss" ] || die "the idle RSS floor (bench/idle.c) did not run"
				emit "{\"section\":\"scale\",\"row\":\"idle_floor\",\"round\":$r,\"rss_kib\":$rss}"
			else
				emit "{\"section\":\"scale\",\"row\":\"start_10k\",\"round\":$r,\"volumes\":$NVOL,\"ms\":$LAUNCH_MS,\"list_ms\":$LAUNCH_LIST_MS,\"rss_kib\":$rss}"
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
		# a database's log: 4 KiB writes at random places of the laid-out
		# file, each followed by fsync, for RAND_S seconds; prints IOPS
		if [ "$op" = randwrite ]; then
			cmd="/usr/bin/fio --name=rand --filename=/data/bench.io --rw=randwrite --bs=4k --size=$FIO_SIZE"
			cmd+=" --ioengine=psync --fsync=1 --time_based --runtime=$RAND_S --output-format=json"
		fi
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
	if [ "$op" = randwrite ]; then
		jq -r '.jobs[0].write.iops' <<<"$out"
	elif [ "$IO_TOOL" = fio ]; then
		jq -r --arg op "$op" '.jobs[0][$op].bw_bytes / 1048576' <<<"$out"
	else
		# coreutils: "N bytes (...) copied, S s, R MB/s"
		sed -n 's/^\([0-9]*\) bytes .* copied, \([0-9.]*\) s.*/\1 \2/p' <<<"$out" |
			awk '{ printf "%.3f\n", $1 / $2 / 1048576 }'
	fi
}

if has_section data; then
	say "d. data path: $IO_TOOL, $FIO_SIZE sequential overwrite+fsync and cold read, $ROUNDS rounds of $IO_REPS"
	mkdir -p "$T/hostdir" "$T/hostdir2"
	dk volume create -d "$PLUGIN" bench-dir >/dev/null || die "volume create bench-dir failed"
	dk volume create -d "$PLUGIN" -o size=1G bench-img >/dev/null || die "volume create bench-img failed"
	# with ext4's fast commits: random writes only (a database's log)
	dk volume create -d "$PLUGIN" -o size=1G -o 'mkfs-options=-O fast_commit' bench-imgfc >/dev/null ||
		die "volume create bench-imgfc failed"
	# host2: the same kind of directory as host, so that the spread of
	# host2/host is the noise of this machine's disk (report.py judges the
	# sized volume's goals only when that spread is within their margin)
	declare -A spec=([dir]=bench-dir [image]=bench-img [imagefc]=bench-imgfc [host]=$T/hostdir [host2]=$T/hostdir2)
	variants=(dir image host host2)
	# rotate_order N VARIANTS...: ORDER, the variants for the n-th time:
	# rotated by n/2, reversed when n is odd, so that each comes right
	# before and right after each other one equally often
	rotate_order() {
		local n=$1 k
		shift
		local vs=("$@")
		ORDER=()
		for ((k = 0; k < ${#vs[@]}; k++)); do
			if ((n % 2)); then
				ORDER+=("${vs[$(((${#vs[@]} - 1 - k + n / 2) % ${#vs[@]}))]}")
			else
				ORDER+=("${vs[$(((k + n / 2) % ${#vs[@]}))]}")
			fi
		done
	}
	# Lay each file out once, untimed: every timed write then overwrites the
	# same blocks, so that where the file system happens to allocate (fresh
	# blocks of a thin virtual disk are much slower here) does not decide.
	for v in "${variants[@]}" imagefc; do
		io_job "${spec[$v]}" write >/dev/null || die "data path layout on $v failed"
	done
	for ((r = 0; r < ROUNDS; r++)); do
		for ((rep = 0; rep < IO_REPS; rep++)); do
			# the writes back to back, then the reads, so that both sides
			# of a ratio are seconds apart; the order rotated
			nth=$((r * IO_REPS + rep))
			rotate_order "$nth" "${variants[@]}"
			order=("${ORDER[@]}")
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
			[ "$IO_TOOL" = fio ] || continue
			rotate_order "$nth" "${variants[@]}" imagefc
			for v in "${ORDER[@]}"; do
				val=$(io_job "${spec[$v]}" randwrite) || die "data path random writes on $v failed"
				emit "{\"section\":\"data\",\"row\":\"randwrite\",\"variant\":\"$v\",\"round\":$r,\"rep\":$rep,\"iops\":$val,\"tool\":\"$IO_TOOL\",\"size\":\"4k\"}"
			done
		done
	done
	for v in dir image imagefc; do
		dk run --rm --network none -v "${spec[$v]}:/data" local/busybox rm -f /data/bench.io >/dev/null
	done
	dk volume rm bench-dir bench-img bench-imgfc >/dev/null || say "warning: could not remove the data-path volumes"
	say "d. done at $SECONDS s"
fi

# ------------------------------------------------------------------ e. rbd, gluster
# Each backend gets a throw-away cluster of its own (the integration tests'
# recipes: tests/lib/ceph.sh, tests/lib/gluster.sh) and a ballastd of its own
# with just that backend configured ($T/rbd, $T/glb; the main ballastd is not
# touched), started when its rows begin and stopped when they end. Every call
# is a POST to that ballastd's socket, timed by curl (time_total: connect to
# last byte, not curl's start-up). Per round r, in this order:
#   1. latency: Create of a fresh volume (rbd: 1 GiB ext4 image), its first
#      Mount, Unmount, Mount again (remount), then Unmount and Remove (untimed);
#   2. throughput, BENCH_IO_REPS pairs of the two sides back to back (order
#      flipped every time; per round the median of each side, and their ratio):
#      dd bs=4M conv=fsync,notrunc of CL_IO over a file laid out once,
#      untimed, in the data directory of a volume mounted through the socket
#      for all rounds (wall clock around dd, the final fsync included) vs the
#      engine's reference on the same cluster:
#        rbd:     rbd bench --io-type write --io-size 4M --io-total CL_IO on a
#                 plain 1 GiB image (its own bytes/sec; default 16 I/O threads)
#        gluster: the same dd into a plain `mount -t glusterfs` of the same
#                 Gluster volume (default options), outside ballast's dir.
# Figures go out with emit_metric; report.py makes the rows.
CL_CURL_TIMEOUT=180

# cl_call SOCK METHOD JSON: POST; CALL_MS (curl's time_total in ms) and
# CALL_BODY; fails (saying why) on a transport error or a non-empty Err.
cl_call() {
	local t err
	CALL_BODY="" CALL_MS=""
	t=$(curl -s --max-time "$CL_CURL_TIMEOUT" --unix-socket "$1" -X POST --data-binary "$3" \
		-o "$T/call.out" -w '%{time_total}' "http://ballast/$2") || {
		say "$2 $3: curl failed (exit $?)"
		return 1
	}
	CALL_BODY=$(cat "$T/call.out")
	err=$(jq -r '.Err // ""' <<<"$CALL_BODY" 2>&1) || err="not JSON: $CALL_BODY"
	if [ -n "$err" ]; then
		say "$2 $3: $err"
		return 1
	fi
	CALL_MS=$(awk -v t="$t" 'BEGIN { printf "%.1f", t * 1000 }')
}

# cl_dd DIR: dd CL_IO (bs 4M) over DIR/bench.io ending in fsync; MiB/s
# from the wall clock around it.
cl_dd() {
	local t0 t1 n
	n=$(($(numfmt --from=iec "$CL_IO") / 4194304))
	t0=${EPOCHREALTIME/./}
	dd if=/dev/zero of="$1/bench.io" bs=4M count="$n" conv=fsync,notrunc status=none || return 1
	t1=${EPOCHREALTIME/./}
	awk -v b="$((n * 4194304))" -v us="$((t1 - t0))" 'BEGIN { printf "%.3f\n", b / 1048576 / (us / 1e6) }'
}

# cl_latency SECTION SOCK NAME OPTS_JSON R: the latency rows of round R.
cl_latency() {
	local sec=$1 sock=$2 name=$3 opts=$4 r=$5 c_ms m_ms
	cl_call "$sock" VolumeDriver.Create "{\"Name\":\"$name\",\"Opts\":$opts}" || return 1
	c_ms=$CALL_MS
	cl_call "$sock" VolumeDriver.Mount "{\"Name\":\"$name\",\"ID\":\"lat\"}" || return 1
	m_ms=$CALL_MS
	emit_metric "$sec" "Create" ms "$c_ms" "$r" lower
	emit_metric "$sec" "first Mount" ms "$m_ms" "$r" lower
	emit_metric "$sec" "Create + first Mount" ms "$(awk -v a="$c_ms" -v b="$m_ms" 'BEGIN { print a + b }')" "$r" lower
	cl_call "$sock" VolumeDriver.Unmount "{\"Name\":\"$name\",\"ID\":\"lat\"}" || return 1
	emit_metric "$sec" "Unmount" ms "$CALL_MS" "$r" lower
	cl_call "$sock" VolumeDriver.Mount "{\"Name\":\"$name\",\"ID\":\"lat\"}" || return 1
	emit_metric "$sec" "remount (Mount after Unmount)" ms "$CALL_MS" "$r" lower
	cl_call "$sock" VolumeDriver.Unmount "{\"Name\":\"$name\",\"ID\":\"lat\"}" || return 1
	cl_call "$sock" VolumeDriver.Remove "{\"Name\":\"$name\"}" || return 1
}

# cl_ballastd DIR SECTION-TEXT: start the backend's own ballastd on DIR.
cl_ballastd() {
	bench_ballastd_conf "$1"
	printf '%s\n' "$2" >>"$1/ballast.conf"
	bench_ballastd_launch "$1" || return 1
	CL_PID=$LAUNCH_PID
}

# median X...: the median of the numbers
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# rbd bench's "bytes/sec: 116 MiB/s" (last line) in MiB/s
rbd_bench_mib_s() {
	awk '/^elapsed:/ { for (i = 1; i < NF; i++) if ($i == "bytes/sec:") { v = $(i + 1); u = $(i + 2) } }
		END {
			if (v == "") exit 1
			f = 1 / 1048576
			if (u ~ /^KiB/) f = 1 / 1024; else if (u ~ /^MiB/) f = 1; else if (u ~ /^GiB/) f = 1024
			printf "%.3f\n", v * f
		}'
}

bench_rbd() {
	local sock=$T/rbd/ballast.sock r v mp order vol eng out rep vols engs
	local rbd_cmd=(timeout -k 5 300 rbd bench --io-type write --io-size 4M --io-total "$CL_IO" rbd/benchref)
	say "e. rbd: starting a 1-mon 1-OSD Ceph cluster"
	ceph_deps || die "cannot install the Ceph packages"
	[ -x "$BUILD/ballast-rbd-map" ] || die "$BUILD/ballast-rbd-map missing: build with librbd-dev installed"
	ceph_start "$T/ceph" || die "the Ceph cluster did not start"
	say "e. rbd: cluster up in $CEPH_START_SECONDS s; $CL_ROUNDS rounds"
	cl_ballastd "$T/rbd" "$(printf '[rbd]\nconf = %s\nuser = admin\ntimeout = 60\n' "$CEPH_CONF")" ||
		die "ballastd (rbd) did not start"
	jq -e '.Backends | index("rbd")' <<<"$(curl -s --max-time 10 --unix-socket "$sock" -X POST \
		http://ballast/Ballast.Version)" >/dev/null || die "ballastd has no rbd backend"
	# untimed set-up: the throughput volume (whose Create also opens
	# ballastd's cluster handle, so round 0's Create does not pay for it),
	# the reference image, and both files laid out once
	cl_call "$sock" VolumeDriver.Create '{"Name":"rbdtp","Opts":{"backend":"rbd","size":"1G"}}' ||
		die "rbd: Create rbdtp failed"
	cl_call "$sock" VolumeDriver.Mount '{"Name":"rbdtp","ID":"tp"}' || die "rbd: Mount rbdtp failed"
	mp=$(jq -r .Mountpoint <<<"$CALL_BODY")
	[ -d "$mp" ] || die "rbd: Mountpoint $mp is not a directory"
	timeout -k 2 30 rbd create --size 1G rbd/benchref >>"$T/rbd/bench.log" 2>&1 || die "rbd create benchref failed"
	cl_dd "$mp" >/dev/null || die "rbd: layout write on the volume failed"
	"${rbd_cmd[@]}" >>"$T/rbd/bench.log" 2>&1 || die "rbd bench (layout) failed"
	for ((r = 0; r < CL_ROUNDS; r++)); do
		cl_latency rbd "$sock" "rbdlat$r" '{"backend":"rbd","size":"1G"}' "$r" || die "rbd: latency round $r failed"
		vols=() engs=()
		for ((rep = 0; rep < IO_REPS; rep++)); do
			order=(vol eng)
			[ $(((r + rep) % 2)) -eq 1 ] && order=(eng vol)
			for v in "${order[@]}"; do
				if [ "$v" = vol ]; then
					vols+=("$(cl_dd "$mp")") || die "rbd: dd on the volume failed"
				else
					out=$("${rbd_cmd[@]}" 2>&1) || die "rbd bench failed: $out"
					printf '%s\n' "$out" >>"$T/rbd/bench.log"
					engs+=("$(rbd_bench_mib_s <<<"$out")") || die "cannot read rbd bench's output: $out"
				fi
			done
		done
		vol=$(median "${vols[@]}")
		eng=$(median "${engs[@]}")
		emit_metric rbd "seq write+fsync $CL_IO, volume (dd bs=4M)" MiB/s "$vol" "$r" higher
		emit_metric rbd "rbd bench write 4M x $CL_IO (16 threads)" MiB/s "$eng" "$r" higher
		emit_metric rbd "seq write $CL_IO: volume/rbd bench" ratio "$(awk -v a="$vol" -v b="$eng" 'BEGIN { print a / b }')" "$r" higher
	done
	rm -f "$mp/bench.io"
	cl_call "$sock" VolumeDriver.Unmount '{"Name":"rbdtp","ID":"tp"}' || die "rbd: Unmount rbdtp failed"
	cl_call "$sock" VolumeDriver.Remove '{"Name":"rbdtp"}' || die "rbd: Remove rbdtp failed"
	cl_cleanup
	say "e. rbd done at $SECONDS s"
}

bench_gluster() {
	local sock=$T/glb/ballast.sock r v mp order vol direct_mib dir direct=$T/gldirect rep vols dirs
	say "e. gluster: starting glusterd (netns $GL_NS, $GL_ADDR) with volume $GL_VOLUME"
	gluster_deps || die "cannot install GlusterFS"
	gluster_start "$T/gl" || die "glusterd did not start"
	say "e. gluster: up in $GL_START_MS ms; $CL_ROUNDS rounds"
	cl_ballastd "$T/glb" "$(printf '[gluster]\nservers = %s\nvolume = %s\ndir = /ballast\ntimeout = 30\nglusterd_socket = %s\nlog = %s\n' \
		"$GLUSTER_HOST" "$GLUSTER_VOLUME" "$GLUSTERD_SOCK" "$T/glb/gfapi.log")" ||
		die "ballastd (gluster) did not start"
	jq -e '.Backends | index("gluster")' <<<"$(curl -s --max-time 10 --unix-socket "$sock" -X POST \
		http://ballast/Ballast.Version)" >/dev/null || die "ballastd has no gluster backend"
	cl_call "$sock" VolumeDriver.Create '{"Name":"gltp","Opts":{"backend":"gluster"}}' ||
		die "gluster: Create gltp failed"
	cl_call "$sock" VolumeDriver.Mount '{"Name":"gltp","ID":"tp"}' || die "gluster: Mount gltp failed"
	mp=$(jq -r .Mountpoint <<<"$CALL_BODY")
	[ -d "$mp" ] || die "gluster: Mountpoint $mp is not a directory"
	mkdir -p "$direct"
	timeout -k 5 60 mount -t glusterfs "$GLUSTER_HOST:/$GLUSTER_VOLUME" "$direct" >>"$T/glb/bench.log" 2>&1 ||
		die "mount -t glusterfs $GLUSTER_HOST:/$GLUSTER_VOLUME failed"
	dir=$direct/bench-direct
	mkdir -p "$dir" || die "cannot make $dir"
	cl_dd "$mp" >/dev/null || die "gluster: layout write on the volume failed"
	cl_dd "$dir" >/dev/null || die "gluster: layout write on the direct mount failed"
	for ((r = 0; r < CL_ROUNDS; r++)); do
		cl_latency gluster "$sock" "gllat$r" '{"backend":"gluster"}' "$r" || die "gluster: latency round $r failed"
		vols=() dirs=()
		for ((rep = 0; rep < IO_REPS; rep++)); do
			order=(vol dir)
			[ $(((r + rep) % 2)) -eq 1 ] && order=(dir vol)
			for v in "${order[@]}"; do
				if [ "$v" = vol ]; then
					vols+=("$(cl_dd "$mp")") || die "gluster: dd on the volume failed"
				else
					dirs+=("$(cl_dd "$dir")") || die "gluster: dd on the direct mount failed"
				fi
			done
		done
		vol=$(median "${vols[@]}")
		direct_mib=$(median "${dirs[@]}")
		emit_metric gluster "seq write+fsync $CL_IO, volume (dd bs=4M)" MiB/s "$vol" "$r" higher
		emit_metric gluster "seq write+fsync $CL_IO, plain mount -t glusterfs" MiB/s "$direct_mib" "$r" higher
		emit_metric gluster "seq write $CL_IO: volume/plain mount" ratio "$(awk -v a="$vol" -v b="$direct_mib" 'BEGIN { print a / b }')" "$r" higher
	done
	rm -rf "$dir" "$mp/bench.io"
	umount "$direct" 2>/dev/null || umount -l "$direct"
	cl_call "$sock" VolumeDriver.Unmount '{"Name":"gltp","ID":"tp"}' || die "gluster: Unmount gltp failed"
	cl_call "$sock" VolumeDriver.Remove '{"Name":"gltp"}' || die "gluster: Remove gltp failed"
	cl_cleanup
	say "e. gluster done at $SECONDS s"
}

if [ "$RUN_RBD" -eq 1 ]; then
	bench_rbd
fi
if [ "$RUN_GLUSTER" -eq 1 ]; then
	bench_gluster
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
