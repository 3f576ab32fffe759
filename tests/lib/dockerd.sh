# shellcheck shell=bash
# tests/lib/dockerd.sh - a private, throw-away dockerd for integration tests.
#
#   dockerd_start DIR     start containerd + dockerd with all their state under
#                         DIR, wait until the API answers, export DOCKER_HOST
#   dockerd_stop          remove every container, stop dockerd and containerd
#   dk ARGS...            `docker ARGS` bounded by a timeout (DK_TIMEOUT, 150 s)
#   busybox_image         import local/busybox from /bin/busybox (once)
#   plugin_register NAME SOCKETPATH / plugin_unregister NAME
#   containerd_config DIR the directories and config.toml of a private
#                         containerd under DIR (also used by hosts.sh)
#   dockerd_cleanup       stop everything and remove spec files; safe to call
#                         at any time, even twice (use it in an EXIT trap;
#                         dockerd_trap installs it through tap.sh's t_at_exit
#                         when available, else as the EXIT trap)
#
# Why a containerd of our own: Debian's dockerd starts a private containerd
# (under --exec-root) only when /run/containerd/containerd.sock does not
# exist; otherwise it shares the system's. Starting one ourselves and passing
# --containerd gives every test run the same, private setup.
#
# Must run in the main shell of the script (not in $(...)), since it keeps
# the PIDs of the daemons it starts in shell variables.

DOCKERD_DIR=""
DOCKERD_PID=""
CONTAINERD_PID=""
DOCKERD_SPECS=()
PLUGIN_SPEC_DIR=${PLUGIN_SPEC_DIR:-/etc/docker/plugins}
DK_TIMEOUT=${DK_TIMEOUT:-150}

_dk_log() { printf '# dockerd.sh: %s\n' "$*" >&2; }

dk() {
	timeout -k 10 "$DK_TIMEOUT" docker "$@"
}

# _dk_wait_gone PID SECONDS: wait for a child to exit (and reap it).
_dk_wait_gone() {
	local pid=$1 tmo=$2 i
	for ((i = 0; i < tmo * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		return 1
	fi
	wait "$pid" 2>/dev/null || true
	return 0
}

_dk_fail_log() {
	local what=$1 log=$2
	_dk_log "$what"
	if [ -f "$log" ]; then
		_dk_log "last lines of $log:"
		tail -n 40 "$log" | sed 's/^/#   /' >&2
	fi
}

# containerd_config DIR: a private containerd's directories and config
# under DIR (socket DIR/x/ctd/ctd.sock), for every dockerd we start.
containerd_config() {
	local d=$1
	mkdir -p "$d/ctd/root" "$d/x/ctd/state" "$d/ctd/opt" || return 1
	cat >"$d/ctd/config.toml" <<-EOF
		version = 2
		root = "$d/ctd/root"
		state = "$d/x/ctd/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri"]
		[grpc]
		  address = "$d/x/ctd/ctd.sock"
		[ttrpc]
		  address = ""
		[debug]
		  address = ""
		  level = "info"
		[metrics]
		  address = ""
		[plugins]
		  [plugins."io.containerd.internal.v1.opt"]
		    path = "$d/ctd/opt"
	EOF
}

_containerd_start() {
	local d=$1 i
	containerd_config "$d"
	containerd --config "$d/ctd/config.toml" >"$d/containerd.log" 2>&1 </dev/null &
	CONTAINERD_PID=$!
	for ((i = 0; i < 300; i++)); do
		[ -S "$d/x/ctd/ctd.sock" ] && return 0
		if ! kill -0 "$CONTAINERD_PID" 2>/dev/null; then
			wait "$CONTAINERD_PID" 2>/dev/null || true
			CONTAINERD_PID=""
			_dk_fail_log "containerd exited during start" "$d/containerd.log"
			return 1
		fi
		sleep 0.1
	done
	_dk_fail_log "containerd socket did not appear in 30 s" "$d/containerd.log"
	return 1
}

dockerd_start() {
	local d i sock api
	if [ -n "$DOCKERD_PID" ]; then
		_dk_log "dockerd already running (pid $DOCKERD_PID)"
		return 1
	fi
	for cmd in dockerd containerd docker curl; do
		if ! command -v "$cmd" >/dev/null; then
			_dk_log "$cmd not found (run tests/deps.sh)"
			return 1
		fi
	done
	mkdir -p "$1" || return 1
	d=$(cd "$1" && pwd)
	DOCKERD_DIR=$d
	sock=$d/docker.sock
	# unix socket paths are limited to 107 bytes; containerd's ttrpc one is
	# the longest we create.
	if [ "${#d}" -gt 70 ]; then
		_dk_log "directory path too long for unix sockets: $d"
		return 1
	fi
	_containerd_start "$d" || return 1

	printf '{}\n' >"$d/daemon.json"
	mkdir -p "$d/cli"
	dockerd --config-file "$d/daemon.json" \
		--data-root "$d/data" --exec-root "$d/x/docker" \
		-H "unix://$sock" --pidfile "$d/docker.pid" \
		--containerd "$d/x/ctd/ctd.sock" \
		--iptables=false --ip-masq=false --ip-forward=false \
		--bridge=none --storage-driver=vfs \
		>"$d/dockerd.log" 2>&1 </dev/null &
	DOCKERD_PID=$!
	for ((i = 0; i < 600; i++)); do
		if [ "$(curl -s --max-time 2 --unix-socket "$sock" http://docker/_ping 2>/dev/null)" = OK ]; then
			break
		fi
		if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
			wait "$DOCKERD_PID" 2>/dev/null || true
			DOCKERD_PID=""
			_dk_fail_log "dockerd exited during start" "$d/dockerd.log"
			return 1
		fi
		sleep 0.1
	done
	if [ "$i" -ge 600 ]; then
		_dk_fail_log "dockerd did not answer in 60 s" "$d/dockerd.log"
		return 1
	fi
	export DOCKER_HOST="unix://$sock"
	export DOCKER_CONFIG="$d/cli"
	export DOCKER_CLI_HINTS=false
	unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
	# A client newer than the 20.10 daemon may refuse it: pin the API.
	if ! dk info >/dev/null 2>&1; then
		api=$(curl -s --max-time 5 --unix-socket "$sock" http://docker/version |
			sed -n 's/.*"ApiVersion":"\([0-9.]*\)".*/\1/p')
		if [ -n "$api" ]; then
			export DOCKER_API_VERSION=$api
		fi
	fi
	if ! dk info >/dev/null 2>"$d/info.err"; then
		_dk_fail_log "docker info fails: $(head -n 3 "$d/info.err")" "$d/dockerd.log"
		return 1
	fi
	return 0
}

dockerd_stop() {
	local ids rc=0
	if [ -n "$DOCKERD_PID" ]; then
		ids=$(DK_TIMEOUT=30 dk ps -aq 2>/dev/null) || true
		if [ -n "$ids" ]; then
			# shellcheck disable=SC2086 # word splitting of the ID list
			DK_TIMEOUT=60 dk rm -f $ids >/dev/null 2>&1 || true
		fi
		kill -TERM "$DOCKERD_PID" 2>/dev/null || true
		if ! _dk_wait_gone "$DOCKERD_PID" 40; then
			_dk_fail_log "dockerd did not stop in 40 s: SIGKILL" "$DOCKERD_DIR/dockerd.log"
			kill -KILL "$DOCKERD_PID" 2>/dev/null || true
			_dk_wait_gone "$DOCKERD_PID" 10 || true
			rc=1
		fi
		DOCKERD_PID=""
	fi
	if [ -n "$CONTAINERD_PID" ]; then
		kill -TERM "$CONTAINERD_PID" 2>/dev/null || true
		if ! _dk_wait_gone "$CONTAINERD_PID" 20; then
			_dk_fail_log "containerd did not stop in 20 s: SIGKILL" "$DOCKERD_DIR/containerd.log"
			kill -KILL "$CONTAINERD_PID" 2>/dev/null || true
			_dk_wait_gone "$CONTAINERD_PID" 10 || true
			rc=1
		fi
		CONTAINERD_PID=""
	fi
	unset DOCKER_HOST DOCKER_API_VERSION
	return $rc
}

# dockerd_leftovers DIR: print mounts and processes that still refer to DIR.
dockerd_leftovers() {
	local d=$1
	awk -v d="$d" 'index($2, d) == 1 { print "mount: " $2 }' /proc/mounts
	pgrep -a -f -- "$d" 2>/dev/null | sed 's/^/process: /' || true
}

# _dk_force_clean DIR: last resort after a failed stop. Kills, by PID, the
# processes whose command line names our private directory (containerd shims
# of our containers), and lazily unmounts whatever is left under DIR.
_dk_force_clean() {
	local d=$1 pids mp
	[ -n "$d" ] || return 0
	pids=$(pgrep -f -- "$d" 2>/dev/null || true)
	for p in $pids; do
		[ "$p" = "$$" ] && continue
		kill -KILL "$p" 2>/dev/null || true
	done
	awk -v d="$d" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while IFS= read -r mp; do
			umount -l "$mp" 2>/dev/null || true
		done
}

busybox_image() {
	local r cmd
	if dk image inspect local/busybox >/dev/null 2>&1; then
		return 0
	fi
	if [ ! -x /bin/busybox ]; then
		_dk_log "/bin/busybox missing (apt-get install busybox-static)"
		return 1
	fi
	r=$(mktemp -d "${TMPDIR:-/tmp}/bbroot.XXXXXX")
	# The image's / must be 0755 (mktemp makes 0700): a container running
	# as another user could not start anything otherwise.
	chmod 0755 "$r"
	mkdir -p "$r/bin" "$r/tmp" "$r/etc"
	chmod 1777 "$r/tmp"
	cp /bin/busybox "$r/bin/busybox"
	for cmd in sh ls cat echo id stat dd df sleep touch mkdir rm wc head \
		tail sync true false test '[' grep cp mv printf md5sum sha256sum \
		seq env find du mount chmod chown ln sed awk tr cut sort uniq xargs \
		date hostname ps kill; do
		ln -s busybox "$r/bin/$cmd"
	done
	if ! tar -C "$r" -c . | dk import -c 'CMD ["sh"]' - local/busybox >/dev/null; then
		rm -rf "$r"
		_dk_log "docker import of local/busybox failed"
		return 1
	fi
	rm -rf "$r"
	return 0
}

plugin_register() {
	local name=$1 sock=$2
	case $sock in
	/*) ;;
	*)
		_dk_log "plugin_register: socket path must be absolute: $sock"
		return 1
		;;
	esac
	mkdir -p "$PLUGIN_SPEC_DIR" || return 1
	if [ -e "$PLUGIN_SPEC_DIR/$name.spec" ]; then
		_dk_log "replacing existing $PLUGIN_SPEC_DIR/$name.spec ($(cat "$PLUGIN_SPEC_DIR/$name.spec"))"
	fi
	printf 'unix://%s\n' "$sock" >"$PLUGIN_SPEC_DIR/$name.spec" || return 1
	DOCKERD_SPECS+=("$name")
}

plugin_unregister() {
	local name=$1
	rm -f "$PLUGIN_SPEC_DIR/$name.spec"
}

dockerd_cleanup() {
	local n
	for n in "${DOCKERD_SPECS[@]}"; do
		plugin_unregister "$n"
	done
	DOCKERD_SPECS=()
	if [ -n "$DOCKERD_PID$CONTAINERD_PID" ]; then
		dockerd_stop || true
	fi
	if [ -n "$DOCKERD_DIR" ] && [ -n "$(dockerd_leftovers "$DOCKERD_DIR")" ]; then
		_dk_log "leftovers under $DOCKERD_DIR after stop:"
		dockerd_leftovers "$DOCKERD_DIR" | sed 's/^/#   /' >&2
		_dk_force_clean "$DOCKERD_DIR"
	fi
}

dockerd_trap() {
	if declare -F t_at_exit >/dev/null; then
		t_at_exit dockerd_cleanup
	else
		trap dockerd_cleanup EXIT
	fi
}
