# shellcheck shell=bash
# tests/lib/gluster.sh - a private, throw-away GlusterFS for integration tests.
#
#   gluster_deps          install glusterfs-server glusterfs-client
#                         libglusterfs-dev (quiet; nothing when installed)
#   gluster_start DIR     netns GL_NS with a veth pair (host GL_HOST_ADDR,
#                         namespace GL_ADDR), a glusterd with its own config
#                         under DIR (working directory DIR/wd, CLI socket
#                         DIR/glusterd.socket, logs DIR/log), a started
#                         volume GL_VOLUME with its brick in DIR/brick and
#                         quota enabled (hard/soft timeout 0, so limits bite
#                         at once). Exports GLUSTER_HOST, GLUSTER_VOLUME,
#                         GLUSTERD_SOCK, GLUSTER_DIR. Fails (with the log
#                         tail) when anything is not up within 60 s.
#   gluster_stop          stop every process in the netns, unmount every
#                         FUSE mount of our server, delete netns and veth.
#                         Safe to call twice or after a failed start.
#   gluster_cut / gluster_restore   take the link down / up (outage tests)
#   gluster_freeze / gluster_thaw   SIGSTOP / SIGCONT the servers (a hang)
#   gluster_cli ARGS...   gluster --mode=script through our CLI socket,
#                         bounded by a timeout
#   gluster_mounts        print our FUSE mount points (source GL_ADDR:...)
#
# After gluster_start / gluster_stop, GL_START_MS / GL_STOP_MS hold how long
# they took.
#
# Names and addresses are chosen not to clash with a system glusterd: it
# keeps /var/lib/glusterd and /run/glusterd.socket, we never touch them.
# GL_ADDR is reserved for this library: every glusterfs mount whose source
# starts with "$GL_ADDR:" is ours and is unmounted by gluster_stop.
#
# A namespace of the caller's: with GL_NS_PROVIDED non-empty, GL_NS is an
# existing network namespace that already holds GL_ADDR and is reachable from
# the root namespace (tests/lib/hosts.sh's bsrv). Then no veth is made and
# gluster_stop deletes nothing but our Gluster processes in it (other
# servers may share it); gluster_cut / gluster_restore refuse (cut the links
# of the namespace's owner), gluster_freeze / gluster_thaw stop only the
# Gluster processes.
#
# Must run in the main shell of the script (it keeps state in variables).
# shellcheck disable=SC2015 # `a && b && c || fail`: fail on any step

GL_NS=${GL_NS:-ballast-gl}
GL_VETH_HOST=${GL_VETH_HOST:-vbgl0}
GL_VETH_NS=${GL_VETH_NS:-vbgl1}
GL_HOST_ADDR=${GL_HOST_ADDR:-10.231.0.1}
GL_ADDR=${GL_ADDR:-10.231.0.2}
GL_VOLUME=${GL_VOLUME:-gv0}
GL_NS_PROVIDED=${GL_NS_PROVIDED:-}
GL_START_TIMEOUT=${GL_START_TIMEOUT:-60}
GL_DIR=""
GL_GLUSTERD_PID=""

# Milliseconds since the epoch (bash 5).
_gl_ms() { local t=${EPOCHREALTIME/./}; printf '%s\n' $((10#$t / 1000)); }

_gl_log() { printf '# gluster.sh: %s\n' "$*" >&2; }

gluster_deps() {
	local p st missing=() log
	for p in glusterfs-server glusterfs-client libglusterfs-dev; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$st" = "install ok installed" ] || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	log=$(mktemp /tmp/ballast-gldeps.XXXXXX)
	if ! DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 \
		install --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
		if ! DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 update >>"$log" 2>&1 ||
			! DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 \
				install --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
			_gl_log "installing ${missing[*]} failed:"
			tail -n 20 "$log" | sed 's/^/#   /' >&2
			rm -f "$log"
			return 1
		fi
	fi
	rm -f "$log"
	# Debian's package starts nothing without systemd; where it did, the
	# system glusterd is left alone: ours uses other paths.
	return 0
}

gluster_cli() {
	timeout -k 5 "${GL_CLI_TIMEOUT:-60}" gluster --mode=script \
		--glusterd-sock="$GL_DIR/glusterd.socket" --log-file="$GL_DIR/log/cli.log" "$@"
}

# _gl_fail MSG: log MSG and the tail of glusterd's and the bricks' logs.
_gl_fail() {
	local f
	_gl_log "$1"
	for f in "$GL_DIR/log/glusterd.log" "$GL_DIR"/log/bricks/*.log "$GL_DIR/log/cli.log"; do
		[ -s "$f" ] || continue
		_gl_log "last lines of $f:"
		tail -n 15 "$f" | sed 's/^/#   /' >&2
	done
	return 1
}

# _gl_until SECONDS CMD...: poll CMD (quietly) until it succeeds.
_gl_until() {
	local end=$((SECONDS + $1))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.2
	done
}

_gl_brick_online() {
	gluster_cli volume status "$GL_VOLUME" "$GL_ADDR:$GL_DIR/brick" --xml 2>/dev/null |
		grep -q '<status>1</status>'
}

gluster_mounts() {
	awk -v a="$GL_ADDR:" '$3 ~ /^fuse\.glusterfs$/ && index($1, a) == 1 { print $2 }' /proc/mounts
}

gluster_start() {
	local d t0 vol end c
	t0=$(_gl_ms)
	if [ -n "$GL_DIR" ]; then
		_gl_log "gluster already started under $GL_DIR"
		return 1
	fi
	for c in glusterd gluster ip mount.glusterfs; do
		command -v "$c" >/dev/null || {
			_gl_log "$c not found (gluster_deps)"
			return 1
		}
	done
	mkdir -p "$1" || return 1
	d=$(cd "$1" && pwd)
	GL_DIR=$d
	if [ -n "$GL_NS_PROVIDED" ]; then
		if ! ip netns list | awk '{ print $1 }' | grep -qx -- "$GL_NS"; then
			_gl_log "GL_NS_PROVIDED is set but there is no netns $GL_NS"
			GL_DIR=""
			return 1
		fi
	elif ip netns list | awk '{ print $1 }' | grep -qx -- "$GL_NS" || ip link show "$GL_VETH_HOST" >/dev/null 2>&1; then
		_gl_log "netns $GL_NS or link $GL_VETH_HOST left over by an earlier run: removing"
		_gl_teardown_net
	fi
	rm -rf "$d/wd" "$d/brick" "$d/log" "$d/run"
	mkdir -p "$d/wd" "$d/brick" "$d/log" "$d/run" || return 1
	vol=$d/glusterd.vol
	sed -e "s|option working-directory .*|option working-directory $d/wd|" \
		-e "s|^end-volume|    option glusterd-sockfile $d/glusterd.socket\n    option run-directory $d/run\nend-volume|" \
		/etc/glusterfs/glusterd.vol >"$vol" || return 1
	grep -q "glusterd-sockfile $d/glusterd.socket" "$vol" || {
		_gl_log "could not write $vol"
		return 1
	}

	if [ -z "$GL_NS_PROVIDED" ]; then
		ip netns add "$GL_NS" &&
			ip link add "$GL_VETH_HOST" type veth peer name "$GL_VETH_NS" &&
			ip link set "$GL_VETH_NS" netns "$GL_NS" &&
			ip addr add "$GL_HOST_ADDR/24" dev "$GL_VETH_HOST" &&
			ip link set "$GL_VETH_HOST" up &&
			ip netns exec "$GL_NS" ip addr add "$GL_ADDR/24" dev "$GL_VETH_NS" &&
			ip netns exec "$GL_NS" ip link set "$GL_VETH_NS" up &&
			ip netns exec "$GL_NS" ip link set lo up || {
			_gl_log "network namespace setup failed"
			return 1
		}
	fi

	ip netns exec "$GL_NS" glusterd -N -f "$vol" --log-file="$d/log/glusterd.log" \
		--pid-file="$d/run/glusterd.pid" >"$d/log/glusterd.out" 2>&1 </dev/null &
	GL_GLUSTERD_PID=$!
	end=$((SECONDS + GL_START_TIMEOUT))
	while ! [ -S "$d/glusterd.socket" ] || ! gluster_cli volume list >/dev/null 2>&1; do
		if ! kill -0 "$GL_GLUSTERD_PID" 2>/dev/null; then
			wait "$GL_GLUSTERD_PID" 2>/dev/null
			GL_GLUSTERD_PID=""
			_gl_fail "glusterd exited during start"
			return 1
		fi
		if [ "$SECONDS" -ge "$end" ]; then
			_gl_fail "glusterd did not answer on $d/glusterd.socket within ${GL_START_TIMEOUT} s"
			return 1
		fi
		sleep 0.1
	done
	# bricks log below the glusterd's log directory only when told; keep
	# them here so a failure shows them.
	gluster_cli volume create "$GL_VOLUME" "$GL_ADDR:$d/brick" force >"$d/log/setup.out" 2>&1 &&
		gluster_cli volume set "$GL_VOLUME" diagnostics.brick-log-level WARNING >>"$d/log/setup.out" 2>&1 &&
		gluster_cli volume start "$GL_VOLUME" >>"$d/log/setup.out" 2>&1 || {
		cat "$d/log/setup.out" >&2
		_gl_fail "creating volume $GL_VOLUME failed"
		return 1
	}
	if ! _gl_until $((end - SECONDS)) _gl_brick_online; then
		_gl_fail "brick of $GL_VOLUME not online within ${GL_START_TIMEOUT} s"
		return 1
	fi
	gluster_cli volume quota "$GL_VOLUME" enable >>"$d/log/setup.out" 2>&1 &&
		gluster_cli volume set "$GL_VOLUME" features.hard-timeout 0 >>"$d/log/setup.out" 2>&1 &&
		gluster_cli volume set "$GL_VOLUME" features.soft-timeout 0 >>"$d/log/setup.out" 2>&1 || {
		cat "$d/log/setup.out" >&2
		_gl_fail "enabling quota on $GL_VOLUME failed"
		return 1
	}
	# quota enable restarts the brick graph: wait for it again.
	if ! _gl_until $((end - SECONDS)) _gl_brick_online; then
		_gl_fail "brick of $GL_VOLUME not online after quota enable"
		return 1
	fi
	export GLUSTER_HOST=$GL_ADDR GLUSTER_VOLUME=$GL_VOLUME GLUSTERD_SOCK=$d/glusterd.socket GLUSTER_DIR=$d
	# shellcheck disable=SC2034 # for the test scripts
	GL_START_MS=$(($(_gl_ms) - t0))
	return 0
}

# Unmount our FUSE mounts (the server is going away: lazily when busy).
_gl_unmount_all() {
	local mp
	gluster_mounts | sort -r | while IFS= read -r mp; do
		umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null ||
			_gl_log "cannot unmount $mp"
	done
	# glusterd's own auxiliary quota mount (source "$GL_VOLUME", fuse
	# client started by glusterd inside the netns) is unmounted once its
	# client has been stopped with the namespace; only ours are touched.
	if [ -n "${_GL_AUX_MOUNTS:-}" ]; then
		for mp in $_GL_AUX_MOUNTS; do
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
		done
	fi
}

# _gl_ns_pids: the processes in our netns to stop (all of them, or with
# GL_NS_PROVIDED only the Gluster ones: glusterd, glusterfsd, glusterfs).
_gl_ns_pids() {
	local pid
	for pid in $(ip netns pids "$GL_NS" 2>/dev/null); do
		if [ -n "$GL_NS_PROVIDED" ]; then
			case $(cat "/proc/$pid/comm" 2>/dev/null) in
			glusterd | glusterfsd | glusterfs) ;;
			*) continue ;;
			esac
		fi
		printf '%s\n' "$pid"
	done
	return 0
}

# Print the mount points of fuse.glusterfs mounts whose client runs in our
# netns (glusterd's auxiliary mounts for quota).
_gl_aux_mounts() {
	local pid mp
	for pid in $(_gl_ns_pids); do
		tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- '--volfile-id' || continue
		for mp in $(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | tail -n 1); do
			case $mp in /*) [ -d "$mp" ] && printf '%s\n' "$mp" ;; esac
		done
	done
}

# Sockets and pid files our servers keep outside DIR (glusterd puts brick
# and quotad sockets in /var/run/gluster whatever its run-directory).
_gl_server_files() {
	local pid
	for pid in $(_gl_ns_pids); do
		tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | awk 'prev == "-S" || prev == "-p" { print } { prev = $0 }'
	done
	return 0
}

_gl_teardown_net() {
	local pids i files f
	files=$(_gl_server_files)
	pids=$(_gl_ns_pids)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -CONT $pids 2>/dev/null || true # after gluster_freeze
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			pids=$(_gl_ns_pids)
			[ -z "$pids" ] && break
			sleep 0.1
		done
		if [ -n "$pids" ]; then
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null || true
			sleep 0.2
		fi
	fi
	for f in $files; do
		case $f in /var/run/gluster/* | /run/gluster/* | "$GL_DIR"/*) rm -f -- "$f" ;; esac
	done
	[ -n "$GL_NS_PROVIDED" ] && return 0
	ip link del "$GL_VETH_HOST" 2>/dev/null || true
	ip netns del "$GL_NS" 2>/dev/null || true
}

# Client processes of our server left outside the netns (FUSE clients of
# mounts that are gone): their command line names our address.
_gl_clients() {
	local pid
	for pid in $(pgrep -x glusterfs 2>/dev/null); do
		tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "--volfile-server=$GL_ADDR\b" &&
			printf '%s\n' "$pid"
	done
	return 0
}

gluster_stop() {
	local t0 pids i left
	t0=$(_gl_ms)
	_GL_AUX_MOUNTS=$(_gl_aux_mounts | tr '\n' ' ')
	# While the server still answers, unmount cleanly: the clients exit.
	[ -n "$GL_NS_PROVIDED" ] || ip link set "$GL_VETH_HOST" up 2>/dev/null || true
	_gl_unmount_all
	_gl_teardown_net
	_gl_unmount_all
	[ -n "$GL_GLUSTERD_PID" ] && wait "$GL_GLUSTERD_PID" 2>/dev/null
	GL_GLUSTERD_PID=""
	for ((i = 0; i < 30; i++)); do
		pids=$(_gl_clients)
		[ -z "$pids" ] && break
		sleep 0.1
	done
	if [ -n "$pids" ]; then
		_gl_log "gluster clients still running: $pids: killing"
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
	fi
	left=$(gluster_mounts)
	[ -n "$left" ] && _gl_log "mounts left: $left"
	GL_DIR=""
	unset GLUSTER_HOST GLUSTER_VOLUME GLUSTERD_SOCK GLUSTER_DIR
	# shellcheck disable=SC2034 # for the test scripts
	GL_STOP_MS=$(($(_gl_ms) - t0))
	[ -z "$left" ]
}

# _gl_own_link: refuse when the link belongs to the namespace's owner.
_gl_own_link() {
	[ -z "$GL_NS_PROVIDED" ] && return 0
	_gl_log "$1: GL_NS $GL_NS is provided; cut its owner's links instead"
	return 1
}

gluster_cut() {
	_gl_own_link gluster_cut || return 1
	ip link set "$GL_VETH_HOST" down
}

gluster_restore() {
	_gl_own_link gluster_restore || return 1
	ip link set "$GL_VETH_HOST" up &&
		ip netns exec "$GL_NS" ip link set "$GL_VETH_NS" up
}

# gluster_freeze / gluster_thaw: stop / continue every process in the netns.
# The link stays up, so clients connect and then get no answer: the hang
# that only a client-side time bound catches.
gluster_freeze() {
	# shellcheck disable=SC2046
	kill -STOP $(_gl_ns_pids) 2>/dev/null
}

gluster_thaw() {
	# shellcheck disable=SC2046
	kill -CONT $(_gl_ns_pids) 2>/dev/null
}
