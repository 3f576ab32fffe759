# shellcheck shell=bash
# tests/lib/hosts.sh - two simulated hosts, A and B, and a server namespace
# for Ceph and GlusterFS, so that a volume (and a database on it) can move
# from one host to the other, and one host can be cut off (a partition).
#
#   network namespace HOSTS_NS_SRV (bsrv): the servers, on the service
#       address HOSTS_SVC_ADDR (10.236.0.10/32 on its lo)
#   HOSTS_NS_A (bhostA), HOSTS_NS_B (bhostB): one veth each into bsrv
#       (A HOSTS_ADDR_A=10.236.1.2 <-> 10.236.1.1, B HOSTS_ADDR_B=10.236.2.2
#       <-> 10.236.2.1) and a route to the service address, nothing else
#   the root namespace: a veth into bsrv too (HOSTS_ADDR_ROOT=10.236.3.2
#       <-> 10.236.3.1) and a route to the service address, so that the
#       test script itself can run ceph, rbd and gluster commands
#
# A host's processes (ballastd and what it spawns: mount.ballast, the rbd
# mapper, glusterfs FUSE clients; containerd, dockerd, the shims) run in its
# network namespace only: `nsenter --net`, NOT `ip netns exec`, which would
# also give them a private mount namespace (a slave of the root one), so
# that the mounts ballastd makes would be invisible to dockerd. All hosts
# share the root mount namespace, /etc/docker/plugins and /run.
#
#   hosts_net_start        make the namespaces, links, addresses and routes;
#                          fails (and removes what it made) when the
#                          addresses are already routed in the root namespace
#   hosts_net_stop         kill any process left in the namespaces, delete
#                          them and the root veth. Safe twice, and after a
#                          failed start.
#   hosts_cut X            take host X's link down (on the bsrv side): X's
#                          packets to the servers are dropped, so its
#                          connections time out rather than fail (X: A, B,
#                          or root). X keeps its address and route; after
#                          hosts_restore, TCP's retransmission back-off may
#                          delay X's old connections a little.
#   hosts_restore X        bring it up again (and put back X's route)
#   hosts_ns X             print X's namespace name (X: A, B, srv, a, b)
#   hosts_exec X CMD...    run CMD in X's network namespace (nsenter --net;
#                          mount namespace, files and /run are shared). Not
#                          bounded: bound CMD yourself (hosts_exec A timeout
#                          10 rbd ls)
#   hosts_ceph_start DIR   ceph_start (tests/lib/ceph.sh, source it first)
#                          with the mon and OSD in bsrv on the service
#                          address; CEPH_CONF and CEPH_KEYRING work from
#                          every namespace
#   hosts_gluster_start DIR  gluster_start (tests/lib/gluster.sh) with
#                          glusterd and the bricks in bsrv on the service
#                          address (the volume: $HOSTS_SVC_ADDR:/gv0)
#   hosts_ballastd_conf X DIR  write DIR/ballast.conf for host X: socket
#                          DIR/ballast.sock, state DIR/state, host_id host-x
#                          (lower case), helper BUILD/mount.ballast, log
#                          level debug, refresh_interval 1, orphan_grace
#                          HOSTS_ORPHAN_GRACE (0, off: tests that ask for
#                          Mounts themselves have no container to use them),
#                          plus [rbd] when
#                          Ceph runs (timeout HOSTS_RBD_TIMEOUT, lease
#                          HOSTS_RBD_LEASE) and [gluster] when Gluster runs
#                          (timeout HOSTS_GL_TIMEOUT, lease HOSTS_GL_LEASE).
#                          Append to it to change or add keys of the last
#                          section; prints the file's path.
#   hosts_ballastd_start X DIR [CONF]  start BUILD/ballastd --config CONF
#                          (default DIR/ballast.conf) in X's namespace,
#                          logging to DIR/ballastd.log (appended: a restart
#                          keeps the earlier runs), wait (10 s) until its
#                          socket (CONF's `socket =`) answers
#                          Plugin.Activate, and write the spec file
#                          /etc/docker/plugins/ballast-x.spec for it
#                          (drivers ballast-a and ballast-b: HOSTS_PLUGIN_A,
#                          HOSTS_PLUGIN_B). Call again to restart.
#   hosts_ballastd_kill9 X SIGKILL it and reap it (its mappers and mounts
#                          stay, as after a real crash)
#   hosts_ballastd_stop X  SIGTERM, wait 15 s (then SIGKILL and fail)
#   hosts_ballastd_pid X / hosts_ballastd_sock X   print them
#   hosts_bd X METHOD JSON POST JSON to X's ballastd, print the body (30 s)
#   hosts_wait_listed X NAME [SECONDS]  wait (15 s) until X's ballastd
#                          knows volume NAME (VolumeDriver.Get succeeds).
#                          Do this before X's dockerd first uses a volume
#                          made on the other host: dockerd sends a Create
#                          without options for a name it does not know, and
#                          a ballastd that has not yet listed the volume
#                          makes a new one of its default backend instead.
#   hosts_dockerd_start X DIR  a containerd and a dockerd of X's own, all
#                          their state under DIR (at most 60 bytes long: unix
#                          socket paths), both in X's namespace; waits until
#                          the API answers, pins the client's API version
#   hosts_dockerd_stop X   remove every container of X, stop its dockerd and
#                          containerd
#   hosts_dockerd_restart X [SIG]  stop X's dockerd alone with SIG (TERM:
#                          a shutdown, which stops its containers first;
#                          KILL: a crash, its containers run on under
#                          containerd) and start it again on its state;
#                          waits until the API answers
#   hosts_dk X ARGS...     docker ARGS against X's dockerd, bounded by
#                          HOSTS_DK_TIMEOUT (150 s); dka / dkb for A / B
#   hosts_plugin X / hosts_other X / hosts_addr X  X's driver name
#                          (HOSTS_PLUGIN_A or _B), the other host (B or A),
#                          X's address (HOSTS_ADDR_A or _B)
#   hosts_finish DIR       hosts_cleanup, then remove DIR (the test's
#                          directory) when that went well and no check
#                          failed; else keep it and print the last lines
#                          of DIR/a and DIR/b's ballastd.log but debug ones
#   hosts_track DIR        hosts_cleanup also unmounts what is mounted below
#                          DIR, detaches loop devices backed by files below
#                          it, and kills processes naming it (give it the
#                          test's directory)
#   hosts_leftovers        print what is left (mounts, loop devices,
#                          processes under those directories, namespaces)
#   hosts_cleanup          everything, in order: links restored, containers,
#                          dockerds and containerds, ballastds, mounts and
#                          loop devices under the directories given above,
#                          our Gluster's FUSE mounts, the rbd mappers left,
#                          processes left in A and B, Gluster, Ceph, then
#                          processes naming those directories, the spec
#                          files, the namespaces. Safe at any time and
#                          twice; hosts_trap installs it with tap.sh's
#                          t_at_exit (else as the EXIT trap). Returns 1 and
#                          says what when something was left behind.
#
# Addresses: HOSTS_NET (10.236) is the first two octets of every address
# above; set it (or any single address) before sourcing to move the bed.
# Every command that can hang is bounded by a timeout. Must run in the main
# shell of the script (the PIDs are kept in shell variables).

HOSTS_NET=${HOSTS_NET:-10.236}
HOSTS_NS_SRV=${HOSTS_NS_SRV:-bsrv}
HOSTS_NS_A=${HOSTS_NS_A:-bhostA}
HOSTS_NS_B=${HOSTS_NS_B:-bhostB}
HOSTS_SVC_ADDR=${HOSTS_SVC_ADDR:-$HOSTS_NET.0.10}
HOSTS_ADDR_A=${HOSTS_ADDR_A:-$HOSTS_NET.1.2}
HOSTS_GW_A=${HOSTS_GW_A:-$HOSTS_NET.1.1}
HOSTS_ADDR_B=${HOSTS_ADDR_B:-$HOSTS_NET.2.2}
HOSTS_GW_B=${HOSTS_GW_B:-$HOSTS_NET.2.1}
HOSTS_ADDR_ROOT=${HOSTS_ADDR_ROOT:-$HOSTS_NET.3.2}
HOSTS_GW_ROOT=${HOSTS_GW_ROOT:-$HOSTS_NET.3.1}
# The root side of the root <-> bsrv veth (the only link in the root
# namespace); the other ends are named inside their namespaces.
HOSTS_VETH_ROOT=${HOSTS_VETH_ROOT:-vbhroot}
HOSTS_PLUGIN_A=${HOSTS_PLUGIN_A:-ballast-a}
HOSTS_PLUGIN_B=${HOSTS_PLUGIN_B:-ballast-b}
HOSTS_SPEC_DIR=${HOSTS_SPEC_DIR:-/etc/docker/plugins}
HOSTS_DK_TIMEOUT=${HOSTS_DK_TIMEOUT:-150}
HOSTS_RBD_TIMEOUT=${HOSTS_RBD_TIMEOUT:-5}
HOSTS_RBD_LEASE=${HOSTS_RBD_LEASE:-35}
HOSTS_GL_TIMEOUT=${HOSTS_GL_TIMEOUT:-5}
HOSTS_GL_LEASE=${HOSTS_GL_LEASE:-6}
export HOSTS_SVC_ADDR HOSTS_ADDR_A HOSTS_ADDR_B HOSTS_ADDR_ROOT

BALLAST_BUILD=${BALLAST_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
# containerd_config: the same private containerd as the one-host suites'
# shellcheck source=dockerd.sh
declare -F containerd_config >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/dockerd.sh"

declare -A HOSTS_BD_PID=() HOSTS_BD_DIR=() HOSTS_BD_SOCK=()
declare -A HOSTS_DKD_PID=() HOSTS_CTD_PID=() HOSTS_DK_DIR=() HOSTS_DK_API=()
HOSTS_SPECS=()
HOSTS_DIRS=() # every directory given to us: mounts and loops under them go at cleanup
HOSTS_NET_UP=""

_hosts_log() { printf '# hosts.sh: %s\n' "$*" >&2; }

# _hosts_x X: the canonical name of host X (A, B, srv, root), or fail.
_hosts_x() {
	case $1 in
	A | a) echo A ;;
	B | b) echo B ;;
	srv | SRV) echo srv ;;
	root | ROOT) echo root ;;
	*)
		_hosts_log "no host '$1' (A, B, srv or root)"
		return 1
		;;
	esac
}

hosts_ns() {
	local x
	x=$(_hosts_x "$1") || return 1
	case $x in
	A) echo "$HOSTS_NS_A" ;;
	B) echo "$HOSTS_NS_B" ;;
	srv) echo "$HOSTS_NS_SRV" ;;
	root)
		_hosts_log "the root namespace has no name"
		return 1
		;;
	esac
}

hosts_exec() {
	local ns
	ns=$(hosts_ns "$1") || return 1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

_hosts_ns_exists() { [ -e "/run/netns/$1" ]; }

# _hosts_kill_ns NS: TERM (2 s), then KILL, every process in NS.
_hosts_kill_ns() {
	local ns=$1 pids i
	_hosts_ns_exists "$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -n "$pids" ] || return 0
	_hosts_log "processes left in $ns: $(echo "$pids" | tr '\n' ' ')- killing them"
	# shellcheck disable=SC2086 # the PID list
	kill -CONT $pids 2>/dev/null || true
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	for ((i = 0; i < 20; i++)); do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -z "$pids" ] && return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -z "$pids" ] && return 0
		sleep 0.1
	done
	_hosts_log "processes still in $ns: $pids"
	return 1
}

hosts_net_stop() {
	local ns rc=0
	for ns in "$HOSTS_NS_A" "$HOSTS_NS_B" "$HOSTS_NS_SRV"; do
		_hosts_kill_ns "$ns" || rc=1
	done
	ip link del "$HOSTS_VETH_ROOT" 2>/dev/null || true
	for ns in "$HOSTS_NS_A" "$HOSTS_NS_B" "$HOSTS_NS_SRV"; do
		if _hosts_ns_exists "$ns" && ! ip netns del "$ns" 2>/dev/null; then
			_hosts_log "cannot delete netns $ns"
			rc=1
		fi
	done
	HOSTS_NET_UP=""
	return $rc
}

# _hosts_link X: the bsrv end of X's link, and X's own end, gateway, address.
_hosts_link() {
	case $1 in
	A) echo "vs-a vh0 $HOSTS_GW_A $HOSTS_ADDR_A" ;;
	B) echo "vs-b vh0 $HOSTS_GW_B $HOSTS_ADDR_B" ;;
	root) echo "vs-root $HOSTS_VETH_ROOT $HOSTS_GW_ROOT $HOSTS_ADDR_ROOT" ;;
	esac
}

hosts_net_start() {
	local c ns x srv_end end gw addr r
	for c in ip nsenter timeout curl; do
		command -v "$c" >/dev/null || {
			_hosts_log "$c not found"
			return 1
		}
	done
	if [ -n "$HOSTS_NET_UP" ]; then
		_hosts_log "network already started"
		return 1
	fi
	for ns in "$HOSTS_NS_SRV" "$HOSTS_NS_A" "$HOSTS_NS_B"; do
		if _hosts_ns_exists "$ns" || ip link show "$HOSTS_VETH_ROOT" >/dev/null 2>&1; then
			_hosts_log "netns $ns or link $HOSTS_VETH_ROOT left over by an earlier run: removing"
			hosts_net_stop || return 1
			break
		fi
	done
	# Our addresses must not already be reachable some other way (another
	# test bed on the same range): we would talk to someone else's servers.
	for addr in "$HOSTS_SVC_ADDR" "$HOSTS_GW_ROOT" "$HOSTS_ADDR_ROOT"; do
		r=$(ip -4 route show to match "$addr" 2>/dev/null | grep -v '^default' || true)
		if [ -n "$r" ]; then
			_hosts_log "$addr is already routed in the root namespace ($r): set HOSTS_NET to a free 10.x range"
			return 1
		fi
	done
	HOSTS_NET_UP=1
	{
		for ns in "$HOSTS_NS_SRV" "$HOSTS_NS_A" "$HOSTS_NS_B"; do
			ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
		done
		ip -n "$HOSTS_NS_SRV" addr add "$HOSTS_SVC_ADDR/32" dev lo || return 1
		for x in A B; do
			ns=$(hosts_ns "$x")
			read -r srv_end end gw addr <<<"$(_hosts_link "$x")"
			ip -n "$HOSTS_NS_SRV" link add "$srv_end" type veth peer name "$end" netns "$ns" &&
				ip -n "$HOSTS_NS_SRV" addr add "$gw/24" dev "$srv_end" &&
				ip -n "$HOSTS_NS_SRV" link set "$srv_end" up &&
				ip -n "$ns" addr add "$addr/24" dev "$end" &&
				ip -n "$ns" link set "$end" up &&
				ip -n "$ns" route add "$HOSTS_SVC_ADDR/32" via "$gw" || return 1
		done
		read -r srv_end end gw addr <<<"$(_hosts_link root)"
		ip link add "$end" type veth peer name "$srv_end" netns "$HOSTS_NS_SRV" &&
			ip -n "$HOSTS_NS_SRV" addr add "$gw/24" dev "$srv_end" &&
			ip -n "$HOSTS_NS_SRV" link set "$srv_end" up &&
			ip addr add "$addr/24" dev "$end" &&
			ip link set "$end" up &&
			ip route add "$HOSTS_SVC_ADDR/32" via "$gw" dev "$end" || return 1
	} 2>/tmp/hosts_net.$$.err || {
		_hosts_log "network setup failed: $(tr '\n' ' ' </tmp/hosts_net.$$.err)"
		rm -f /tmp/hosts_net.$$.err
		hosts_net_stop
		return 1
	}
	rm -f /tmp/hosts_net.$$.err
	return 0
}

hosts_cut() {
	local x srv_end end gw addr
	x=$(_hosts_x "$1") || return 1
	[ "$x" != srv ] || {
		_hosts_log "hosts_cut: srv has no link of its own (cut A, B or root)"
		return 1
	}
	read -r srv_end end gw addr <<<"$(_hosts_link "$x")"
	ip -n "$HOSTS_NS_SRV" link set "$srv_end" down || {
		_hosts_log "cannot take $srv_end (link of $x) down"
		return 1
	}
}

hosts_restore() {
	local x srv_end end gw addr
	x=$(_hosts_x "$1") || return 1
	[ "$x" != srv ] || return 1
	read -r srv_end end gw addr <<<"$(_hosts_link "$x")"
	ip -n "$HOSTS_NS_SRV" link set "$srv_end" up || {
		_hosts_log "cannot bring $srv_end (link of $x) up"
		return 1
	}
	# Only the bsrv end went down, so X's route is still there; make sure.
	if [ "$x" = root ]; then
		ip route replace "$HOSTS_SVC_ADDR/32" via "$gw" dev "$end"
	else
		ip -n "$(hosts_ns "$x")" route replace "$HOSTS_SVC_ADDR/32" via "$gw" dev "$end"
	fi
}

# ------------------------------------------------------------------ servers
hosts_ceph_start() {
	declare -F ceph_start >/dev/null || {
		_hosts_log "source tests/lib/ceph.sh before hosts_ceph_start"
		return 1
	}
	_hosts_ns_exists "$HOSTS_NS_SRV" || {
		_hosts_log "hosts_ceph_start: no netns $HOSTS_NS_SRV (hosts_net_start first)"
		return 1
	}
	mkdir -p "$1" && hosts_track "$1" || return 1
	# shellcheck disable=SC2034 # read by ceph.sh
	CEPH_NETNS=$HOSTS_NS_SRV
	# shellcheck disable=SC2034
	CEPH_ADDR=$HOSTS_SVC_ADDR
	ceph_start "$1"
}

hosts_gluster_start() {
	declare -F gluster_start >/dev/null || {
		_hosts_log "source tests/lib/gluster.sh before hosts_gluster_start"
		return 1
	}
	_hosts_ns_exists "$HOSTS_NS_SRV" || {
		_hosts_log "hosts_gluster_start: no netns $HOSTS_NS_SRV (hosts_net_start first)"
		return 1
	}
	mkdir -p "$1" && hosts_track "$1" || return 1
	# shellcheck disable=SC2034 # read by gluster.sh
	GL_NS=$HOSTS_NS_SRV GL_NS_PROVIDED=1 GL_ADDR=$HOSTS_SVC_ADDR
	gluster_start "$1"
}

# ------------------------------------------------------------------ ballastd
hosts_ballastd_conf() {
	local x d
	x=$(_hosts_x "$1") || return 1
	mkdir -p "$2" || return 1
	d=$(cd "$2" && pwd)
	{
		cat <<-EOF
			[ballast]
			socket = $d/ballast.sock
			state_dir = $d/state
			host_id = host-${x,,}
			helper = $BALLAST_BUILD/mount.ballast
			log_level = debug
			refresh_interval = 1
			orphan_grace = ${HOSTS_ORPHAN_GRACE:-0}
			[local]
			root = $d/state/local
		EOF
		if [ -n "${CEPH_CONF:-}" ]; then
			cat <<-EOF
				[rbd]
				conf = $CEPH_CONF
				user = admin
				keyring = ${CEPH_KEYRING:-}
				pool = rbd
				timeout = $HOSTS_RBD_TIMEOUT
				lease = $HOSTS_RBD_LEASE
			EOF
		fi
		if [ -n "${GLUSTER_HOST:-}" ]; then
			cat <<-EOF
				[gluster]
				servers = $GLUSTER_HOST
				volume = $GLUSTER_VOLUME
				dir = /ballast
				timeout = $HOSTS_GL_TIMEOUT
				lease = $HOSTS_GL_LEASE
				glusterd_socket = $GLUSTERD_SOCK
				log = $d/gfapi.log
			EOF
		fi
	} >"$d/ballast.conf" || return 1
	printf '%s\n' "$d/ballast.conf"
}

hosts_ballastd_pid() { printf '%s\n' "${HOSTS_BD_PID[$(_hosts_x "$1")]:-}"; }
hosts_ballastd_sock() { printf '%s\n' "${HOSTS_BD_SOCK[$(_hosts_x "$1")]:-}"; }

hosts_bd() {
	local x
	x=$(_hosts_x "$1") || return 1
	curl -s --max-time 30 --unix-socket "${HOSTS_BD_SOCK[$x]:-/nonexistent}" -X POST \
		--data-binary "$3" "http://ballast/$2"
}

hosts_wait_listed() {
	local x=$1 name=$2 end out
	end=$((SECONDS + ${3:-15}))
	while :; do
		out=$(hosts_bd "$x" VolumeDriver.Get "{\"Name\":\"$name\"}" 2>/dev/null)
		[[ $out == *'"Err":""'* ]] && return 0
		if [ "$SECONDS" -ge "$end" ]; then
			_hosts_log "ballastd of $x does not list $name after ${3:-15} s: ${out:-no answer}"
			return 1
		fi
		sleep 0.2
	done
}

_hosts_activate_ok() {
	local out
	out=$(curl -s --max-time 2 --unix-socket "$1" -X POST http://ballast/Plugin.Activate 2>/dev/null) ||
		return 1
	[[ $out == *VolumeDriver* ]] && served "$1"
}

hosts_ballastd_start() {
	local x d conf sock ns i plugin pid
	x=$(_hosts_x "$1") || return 1
	case $x in A | B) ;; *)
		_hosts_log "ballastd runs on A or B, not $x"
		return 1
		;;
	esac
	mkdir -p "$2" || return 1
	d=$(cd "$2" && pwd)
	conf=${3:-$d/ballast.conf}
	[ -f "$conf" ] || {
		_hosts_log "no config $conf (hosts_ballastd_conf $x $d writes one)"
		return 1
	}
	[ -x "$BALLAST_BUILD/ballastd" ] || {
		_hosts_log "$BALLAST_BUILD/ballastd missing: run make"
		return 1
	}
	sock=$(sed -n 's/^[[:space:]]*socket[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$conf" | head -n 1)
	[ -n "$sock" ] || {
		_hosts_log "$conf sets no socket"
		return 1
	}
	ns=$(hosts_ns "$x")
	_hosts_ns_exists "$ns" || {
		_hosts_log "no netns $ns (hosts_net_start first)"
		return 1
	}
	if [ -n "${HOSTS_BD_PID[$x]:-}" ] && kill -0 "${HOSTS_BD_PID[$x]}" 2>/dev/null; then
		_hosts_log "ballastd of $x already running (pid ${HOSTS_BD_PID[$x]})"
		return 1
	fi
	HOSTS_DIRS+=("$d")
	HOSTS_BD_DIR[$x]=$d
	HOSTS_BD_SOCK[$x]=$sock
	# Through a link of another name: a `pkill ballastd` elsewhere on the
	# machine must not take our hosts down. nsenter execs: $! is ballastd.
	ln -sf "$BALLAST_BUILD/ballastd" "$d/ballastd-host$x"
	printf -- '--- start %s\n' "$(date -u +%FT%TZ)" >>"$d/ballastd.log"
	nsenter --net="/run/netns/$ns" -- "$d/ballastd-host$x" --config "$conf" \
		>>"$d/ballastd.log" 2>&1 </dev/null &
	pid=$!
	HOSTS_BD_PID[$x]=$pid
	t_watch_pid "ballastd of host $x" "$pid"
	# 10 s in all, whatever each try costs (a daemon that accepts and
	# never answers costs curl's 2 s a try)
	i=$((SECONDS + 10))
	while :; do
		if [ "$SECONDS" -gt "$i" ]; then
			i=timeout
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			local rc=0
			wait "$pid" 2>/dev/null || rc=$?
			HOSTS_BD_PID[$x]=""
			_hosts_log "ballastd of $x exited during start (status $rc); log:"
			tail -n 20 "$d/ballastd.log" | sed 's/^/#   /' >&2
			return 1
		fi
		_hosts_activate_ok "$sock" && break
		sleep 0.1
	done
	if [ "$i" = timeout ]; then
		_hosts_log "ballastd of $x: $sock did not answer Plugin.Activate in 10 s; log:"
		tail -n 20 "$d/ballastd.log" | sed 's/^/#   /' >&2
		return 1
	fi
	if [ "$x" = A ]; then plugin=$HOSTS_PLUGIN_A; else plugin=$HOSTS_PLUGIN_B; fi
	if [ -e "/run/docker/plugins/$plugin.sock" ] || [ -e "/run/docker/plugins/$plugin/$plugin.sock" ]; then
		_hosts_log "/run/docker/plugins/$plugin.sock exists: dockerd would use it instead of our spec file"
		return 1
	fi
	mkdir -p "$HOSTS_SPEC_DIR" || return 1
	printf 'unix://%s\n' "$sock" >"$HOSTS_SPEC_DIR/$plugin.spec" || return 1
	[[ " ${HOSTS_SPECS[*]} " == *" $plugin "* ]] || HOSTS_SPECS+=("$plugin")
	return 0
}

hosts_ballastd_kill9() {
	local x
	x=$(_hosts_x "$1") || return 1
	[ -n "${HOSTS_BD_PID[$x]:-}" ] || return 0
	t_unwatch_pid "${HOSTS_BD_PID[$x]}"
	kill -KILL "${HOSTS_BD_PID[$x]}" 2>/dev/null || true
	wait "${HOSTS_BD_PID[$x]}" 2>/dev/null || true
	HOSTS_BD_PID[$x]=""
}

hosts_ballastd_stop() {
	local x pid i st=0
	x=$(_hosts_x "$1") || return 1
	pid=${HOSTS_BD_PID[$x]:-}
	[ -n "$pid" ] || return 0
	t_unwatch_pid "$pid"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		_hosts_log "ballastd of $x did not exit within 15 s of SIGTERM: SIGKILL"
		hosts_ballastd_kill9 "$x"
		return 1
	fi
	wait "$pid" 2>/dev/null || st=$?
	HOSTS_BD_PID[$x]=""
	if [ "$st" -ne 0 ]; then
		_hosts_log "ballastd of $x exited with status $st after SIGTERM"
		return 1
	fi
	return 0
}

# ------------------------------------------------------------------ dockerd
_hosts_fail_log() {
	_hosts_log "$1"
	if [ -f "$2" ]; then
		_hosts_log "last lines of $2:"
		tail -n 30 "$2" | sed 's/^/#   /' >&2
	fi
}

# _hosts_wait_gone PID SECONDS: wait for a child to exit, and reap it.
_hosts_wait_gone() {
	local pid=$1 i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && return 1
	wait "$pid" 2>/dev/null || true
	return 0
}

hosts_dk() {
	local x d
	x=$(_hosts_x "$1") || return 1
	shift
	d=${HOSTS_DK_DIR[$x]:-}
	[ -n "$d" ] || {
		_hosts_log "no dockerd on $x (hosts_dockerd_start)"
		return 1
	}
	DOCKER_HOST="unix://$d/docker.sock" DOCKER_CONFIG="$d/cli" DOCKER_CLI_HINTS=false \
		DOCKER_API_VERSION="${HOSTS_DK_API[$x]}" DOCKER_CONTEXT='' \
		timeout -k 10 "$HOSTS_DK_TIMEOUT" docker "$@"
}
dka() { hosts_dk A "$@"; }
dkb() { hosts_dk B "$@"; }

hosts_dockerd_start() {
	local x d ns c i api pid
	x=$(_hosts_x "$1") || return 1
	case $x in A | B) ;; *)
		_hosts_log "dockerd runs on A or B, not $x"
		return 1
		;;
	esac
	for c in dockerd containerd docker curl; do
		command -v "$c" >/dev/null || {
			_hosts_log "$c not found (run tests/deps.sh)"
			return 1
		}
	done
	if [ -n "${HOSTS_DKD_PID[$x]:-}${HOSTS_CTD_PID[$x]:-}" ]; then
		_hosts_log "dockerd of $x already running"
		return 1
	fi
	ns=$(hosts_ns "$x")
	_hosts_ns_exists "$ns" || {
		_hosts_log "no netns $ns (hosts_net_start first)"
		return 1
	}
	mkdir -p "$2" || return 1
	d=$(cd "$2" && pwd)
	# unix socket paths are limited to 107 bytes; containerd's shim and
	# ttrpc ones below DIR are the longest.
	if [ "${#d}" -gt 60 ]; then
		_hosts_log "directory path too long for unix sockets: $d"
		return 1
	fi
	HOSTS_DIRS+=("$d")
	HOSTS_DK_DIR[$x]=$d
	mkdir -p "$d/cli" && containerd_config "$d" || return 1
	nsenter --net="/run/netns/$ns" -- containerd --config "$d/ctd/config.toml" \
		>"$d/containerd.log" 2>&1 </dev/null &
	pid=$!
	HOSTS_CTD_PID[$x]=$pid
	for ((i = 0; i < 300; i++)); do
		[ -S "$d/x/ctd/ctd.sock" ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			HOSTS_CTD_PID[$x]=""
			_hosts_fail_log "containerd of $x exited during start" "$d/containerd.log"
			return 1
		fi
		sleep 0.1
	done
	if [ "$i" -ge 300 ]; then
		_hosts_fail_log "containerd of $x: no socket in 30 s" "$d/containerd.log"
		return 1
	fi
	printf '{}\n' >"$d/daemon.json"
	_hosts_dockerd_run "$x"
}

# _hosts_dockerd_run X: start X's dockerd (its containerd runs) and wait
# until its API answers
_hosts_dockerd_run() {
	local x=$1 d=${HOSTS_DK_DIR[$1]} ns i api pid
	ns=$(hosts_ns "$x") || return 1
	nsenter --net="/run/netns/$ns" -- dockerd --config-file "$d/daemon.json" \
		--data-root "$d/data" --exec-root "$d/x/docker" \
		-H "unix://$d/docker.sock" --pidfile "$d/docker.pid" \
		--containerd "$d/x/ctd/ctd.sock" \
		--iptables=false --ip-masq=false --ip-forward=false \
		--bridge=none --storage-driver=vfs \
		>>"$d/dockerd.log" 2>&1 </dev/null &
	pid=$!
	HOSTS_DKD_PID[$x]=$pid
	for ((i = 0; i < 600; i++)); do
		[ "$(curl -s --max-time 2 --unix-socket "$d/docker.sock" http://docker/_ping 2>/dev/null)" = OK ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			HOSTS_DKD_PID[$x]=""
			_hosts_fail_log "dockerd of $x exited during start" "$d/dockerd.log"
			return 1
		fi
		sleep 0.1
	done
	if [ "$i" -ge 600 ]; then
		_hosts_fail_log "dockerd of $x did not answer in 60 s" "$d/dockerd.log"
		return 1
	fi
	# The 28.x client would negotiate anyway; pinning the daemon's own API
	# version keeps every call the same whatever the client.
	api=$(curl -s --max-time 5 --unix-socket "$d/docker.sock" http://docker/version |
		sed -n 's/.*"ApiVersion":"\([0-9.]*\)".*/\1/p')
	HOSTS_DK_API[$x]=$api
	if ! hosts_dk "$x" info >/dev/null 2>"$d/info.err"; then
		_hosts_fail_log "docker info on $x fails: $(head -n 3 "$d/info.err")" "$d/dockerd.log"
		return 1
	fi
	return 0
}

hosts_dockerd_restart() {
	local x pid sig=${2:-TERM}
	x=$(_hosts_x "$1") || return 1
	pid=${HOSTS_DKD_PID[$x]:-}
	[ -n "$pid" ] || {
		_hosts_log "no dockerd on $x to restart"
		return 1
	}
	kill -"$sig" "$pid" 2>/dev/null || true
	if ! _hosts_wait_gone "$pid" 40; then
		_hosts_fail_log "dockerd of $x did not stop in 40 s of SIG$sig: SIGKILL" "${HOSTS_DK_DIR[$x]}/dockerd.log"
		kill -KILL "$pid" 2>/dev/null || true
		_hosts_wait_gone "$pid" 10 || true
	fi
	HOSTS_DKD_PID[$x]=""
	printf -- '--- restart after SIG%s %s\n' "$sig" "$(date -u +%FT%TZ)" >>"${HOSTS_DK_DIR[$x]}/dockerd.log"
	_hosts_dockerd_run "$x"
}

hosts_dockerd_stop() {
	local x ids rc=0 pid
	x=$(_hosts_x "$1") || return 1
	pid=${HOSTS_DKD_PID[$x]:-}
	if [ -n "$pid" ]; then
		ids=$(HOSTS_DK_TIMEOUT=30 hosts_dk "$x" ps -aq 2>/dev/null) || true
		if [ -n "$ids" ]; then
			# shellcheck disable=SC2086 # the ID list
			HOSTS_DK_TIMEOUT=60 hosts_dk "$x" rm -f $ids >/dev/null 2>&1 || true
		fi
		kill -TERM "$pid" 2>/dev/null || true
		if ! _hosts_wait_gone "$pid" 40; then
			_hosts_fail_log "dockerd of $x did not stop in 40 s: SIGKILL" "${HOSTS_DK_DIR[$x]}/dockerd.log"
			kill -KILL "$pid" 2>/dev/null || true
			_hosts_wait_gone "$pid" 10 || true
			rc=1
		fi
		HOSTS_DKD_PID[$x]=""
	fi
	pid=${HOSTS_CTD_PID[$x]:-}
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! _hosts_wait_gone "$pid" 20; then
			_hosts_fail_log "containerd of $x did not stop in 20 s: SIGKILL" "${HOSTS_DK_DIR[$x]}/containerd.log"
			kill -KILL "$pid" 2>/dev/null || true
			_hosts_wait_gone "$pid" 10 || true
			rc=1
		fi
		HOSTS_CTD_PID[$x]=""
	fi
	return $rc
}

# ------------------------------------------------------------------ cleanup
hosts_track() {
	local d
	d=$(cd "$1" && pwd) || return 1
	HOSTS_DIRS+=("$d")
}

# hosts_leftovers: mounts, loop devices and processes that still refer to
# our directories, and namespaces still there (one per line).
hosts_leftovers() {
	local d ns
	for d in "${HOSTS_DIRS[@]}"; do
		awk -v d="$d/" 'index($2, d) == 1 { print "mount: " $2 }' /proc/mounts
		losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$d/" 'index($2, d) == 1 { print "loop: " $1 " " $2 }'
		pgrep -a -f -- "$d/" 2>/dev/null | sed 's/^/process: /' || true
	done
	for ns in "$HOSTS_NS_SRV" "$HOSTS_NS_A" "$HOSTS_NS_B"; do
		_hosts_ns_exists "$ns" && echo "netns: $ns"
	done
	ip link show "$HOSTS_VETH_ROOT" >/dev/null 2>&1 && echo "link: $HOSTS_VETH_ROOT"
	return 0
}

# _hosts_umount_under DIR fuse|other: unmount those mounts below DIR,
# deepest first.
_hosts_umount_under() {
	local mp
	awk -v d="$1/" -v kind="$2" 'index($2, d) == 1 && (($3 ~ /^fuse/) == (kind == "fuse")) { print $2 }' \
		/proc/mounts | sort -r |
		while IFS= read -r mp; do
			timeout -k 2 20 umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null ||
				_hosts_log "cannot unmount $mp"
		done
}

hosts_plugin() { if [ "$(_hosts_x "$1")" = A ]; then echo "$HOSTS_PLUGIN_A"; else echo "$HOSTS_PLUGIN_B"; fi; }
hosts_other() { if [ "$(_hosts_x "$1")" = A ]; then echo B; else echo A; fi; }
hosts_addr() { if [ "$(_hosts_x "$1")" = A ]; then echo "$HOSTS_ADDR_A"; else echo "$HOSTS_ADDR_B"; fi; }

hosts_finish() {
	local x
	if hosts_cleanup && [ "${TAP_FAIL:-0}" -eq 0 ]; then
		rm -rf "$1"
		return 0
	fi
	printf '# test directory kept: %s\n' "$1"
	for x in a b; do
		[ -f "$1/$x/ballastd.log" ] || continue
		printf '# last lines of ballastd %s:\n' "$x"
		grep -v ' debug ' "$1/$x/ballastd.log" | tail -n 25 | sed 's/^/#   /'
	done
}

hosts_cleanup() {
	local x f p d lp n left mp
	# A test that ends during a partition: reconnect first, so that clients
	# can shut down cleanly.
	if _hosts_ns_exists "$HOSTS_NS_SRV"; then
		for x in A B root; do hosts_restore "$x" 2>/dev/null || true; done
	fi
	# Containers first (their unmounts go through ballastd), then the daemons.
	for x in A B; do
		hosts_dockerd_stop "$x" || true
	done
	for x in A B; do
		hosts_ballastd_kill9 "$x"
	done
	# File systems on loop devices (rbd volumes) before the FUSE files
	# under them, while the mappers still serve them.
	for d in "${HOSTS_DIRS[@]}"; do
		_hosts_umount_under "$d" other
		losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$d/" 'index($2, d) == 1 { print $1 }' |
			while IFS= read -r lp; do losetup -d "$lp" 2>/dev/null || true; done
		_hosts_umount_under "$d" fuse
	done
	# FUSE clients of our Gluster mounted anywhere (e.g. by the test), while
	# the server still answers.
	if declare -F gluster_mounts >/dev/null && [ -n "${GL_DIR:-}" ]; then
		gluster_mounts | sort -r | while IFS= read -r mp; do
			timeout -k 2 20 umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
		done
	fi
	# rbd mappers outlive ballastd: by the PIDs in their pid files.
	for x in A B; do
		d=${HOSTS_BD_DIR[$x]:-}
		[ -n "$d" ] || continue
		for f in "$d"/state/rbd/*.pid; do
			[ -f "$f" ] || continue
			p=$(cat "$f" 2>/dev/null)
			[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
		done
	done
	# Whatever still runs in the hosts' namespaces is ours.
	_hosts_kill_ns "$HOSTS_NS_A" || true
	_hosts_kill_ns "$HOSTS_NS_B" || true
	for d in "${HOSTS_DIRS[@]}"; do
		_hosts_umount_under "$d" other
		_hosts_umount_under "$d" fuse
	done
	# The servers, by their own libraries (their command lines name our
	# directories too: they must go before the sweep below).
	if declare -F gluster_stop >/dev/null && [ -n "${GL_DIR:-}" ]; then
		gluster_stop || true
	fi
	if declare -F ceph_stop >/dev/null && [ -n "${CEPH_DIR:-}" ]; then
		ceph_stop || true
	fi
	# Last resort: processes naming our directories (containers and shims
	# after a failed dockerd stop), then what they kept mounted.
	for d in "${HOSTS_DIRS[@]}"; do
		for p in $(pgrep -f -- "$d/" 2>/dev/null); do
			[ "$p" = "$$" ] || kill -KILL "$p" 2>/dev/null || true
		done
	done
	for d in "${HOSTS_DIRS[@]}"; do
		_hosts_umount_under "$d" other
		_hosts_umount_under "$d" fuse
	done
	for n in "${HOSTS_SPECS[@]}"; do
		rm -f "$HOSTS_SPEC_DIR/$n.spec"
	done
	HOSTS_SPECS=()
	hosts_net_stop || true
	left=$(hosts_leftovers)
	if [ -n "$left" ]; then
		_hosts_log "left behind after cleanup:"
		printf '%s\n' "$left" | sed 's/^/#   /' >&2
		return 1
	fi
	return 0
}

hosts_trap() {
	if declare -F t_at_exit >/dev/null; then
		t_at_exit hosts_cleanup
	else
		trap hosts_cleanup EXIT
	fi
}
