# shellcheck shell=bash
# tests/lib/ceph.sh - a throw-away one-monitor, one-OSD Ceph cluster on
# 127.0.0.1 for the rbd tests (recipe and timings: ../shared/CEPH.md).
#
#   ceph_deps          install the Debian packages the rbd tests need
#                      (idempotent, quiet when all are there)
#   ceph_start DIR     make and start a cluster in DIR (cephx on, a port of
#                      its own from CEPH_PORT_MIN..CEPH_PORT_MAX, retried on a
#                      clash), create and init pool `rbd`, write DIR/ceph.conf
#                      and DIR/ceph.client.admin.keyring, export CEPH_CONF and
#                      CEPH_KEYRING. Fails loudly, with log tails, if the
#                      cluster does not answer within 60 s.
#   ceph_stop          kill the daemons by their pid files, wait, remove DIR
#   ceph_kill_osd      SIGKILL the OSD (the mon stays: I/O then hangs until
#                      rados_osd_op_timeout)
#   ceph_kill_all      SIGKILL the mon and the OSD, keep DIR (nothing listens)
#   ceph_freeze / ceph_thaw   SIGSTOP / SIGCONT the mon and the OSD (a hang:
#                      clients connect and get no answer)
#   ceph_log_tail [N]  the last N lines of the mon and OSD logs, prefixed '#'
#
# Optional: CEPH_ADDR (default 127.0.0.1) is the address the mon and the OSD
# bind to (`mon host`, `public addr`, `cluster addr`); with CEPH_NETNS set
# they run in that network namespace (nsenter --net: same files and mounts),
# which must already hold CEPH_ADDR, and the clients of this library (and
# of the test) reach it from the root namespace by a route of the caller's
# (tests/lib/hosts.sh sets both).
#
# Every ceph/rbd command run here is bounded by a timeout: a sick cluster
# makes the test fail, never hang. Must run in the main shell of the script.

CEPH_DIR=""
CEPH_PORT=""
CEPH_PORT_MIN=${CEPH_PORT_MIN:-16789}
CEPH_PORT_MAX=${CEPH_PORT_MAX:-19789}
CEPH_START_TIMEOUT=${CEPH_START_TIMEOUT:-60}
CEPH_ADDR=${CEPH_ADDR:-127.0.0.1}
CEPH_NETNS=${CEPH_NETNS:-}
CEPH_PKGS=(ceph-mon ceph-osd ceph-common librados-dev librbd-dev libfuse3-dev fuse3 rbd-fuse uuid-runtime)

_ceph_log() { printf '# ceph.sh: %s\n' "$*" >&2; }

ceph_deps() {
	local missing=() p
	for p in "${CEPH_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	_ceph_log "installing ${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends "${missing[@]}" >/tmp/ceph_deps.$$.log 2>&1; then
		apt-get update -qq >/dev/null 2>&1 || true
		if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
			--no-install-recommends "${missing[@]}" >/tmp/ceph_deps.$$.log 2>&1; then
			_ceph_log "apt-get install failed:"
			tail -n 20 /tmp/ceph_deps.$$.log | sed 's/^/#   /' >&2
			rm -f /tmp/ceph_deps.$$.log
			return 1
		fi
	fi
	rm -f /tmp/ceph_deps.$$.log
}

ceph_log_tail() {
	local n=${1:-30} f
	for f in "$CEPH_DIR"/mon.log "$CEPH_DIR"/osd.log "$CEPH_DIR"/setup.log; do
		[ -f "$f" ] || continue
		printf '# --- %s\n' "$f"
		tail -n "$n" "$f" | sed 's/^/#   /'
	done
}

# _ceph_pid NAME: the pid in DIR/NAME.pid, if that process lives.
_ceph_pid() {
	local p
	p=$(cat "$CEPH_DIR/$1.pid" 2>/dev/null) || return 1
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null && printf '%s\n' "$p"
}

# _ceph_kill NAME...: SIGKILL the daemons and wait until they are gone (5 s).
_ceph_kill() {
	local n p pids=() i
	for n in "$@"; do
		p=$(_ceph_pid "$n") && pids+=("$p")
	done
	[ ${#pids[@]} -eq 0 ] && return 0
	kill -KILL "${pids[@]}" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		local alive=0
		for p in "${pids[@]}"; do
			# a zombie still answers kill -0; its /proc status says Z
			if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
				alive=1
			fi
		done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for n in "$@"; do rm -f "$CEPH_DIR/$n.pid"; done
}

ceph_kill_osd() { _ceph_kill osd.0; }

ceph_freeze() { _ceph_signal STOP; }
ceph_thaw() { _ceph_signal CONT; }
_ceph_signal() {
	local n p
	for n in mon.a osd.0; do
		p=$(_ceph_pid "$n") && kill "-$1" "$p"
	done
	return 0
}
ceph_kill_all() { _ceph_kill osd.0 mon.a; }

# _ceph_write_conf DIR PORT FSID
_ceph_write_conf() {
	local d=$1 port=$2 fsid=$3
	cat >"$d/ceph.conf" <<-EOF
		[global]
		fsid = $fsid
		mon host = [v2:$CEPH_ADDR:$port]
		mon initial members = a
		public addr = $CEPH_ADDR
		cluster addr = $CEPH_ADDR
		ms bind msgr1 = false
		ms bind port min = $((port + 1))
		ms bind port max = $((port + 40))
		ms bind retry count = 1
		ms bind retry delay = 1
		auth cluster required = cephx
		auth service required = cephx
		auth client required = cephx
		keyring = $d/ceph.client.admin.keyring
		run dir = $d/run
		admin socket = $d/run/\$cluster-\$name.asok
		pid file = $d/\$name.pid
		log file = $d/\$type.log
		log to stderr = false
		err to stderr = false
		mon allow pool size one = true
		mon allow pool delete = true
		mon data avail warn = 1
		mon warn on pool no redundancy = false
		osd pool default size = 1
		osd pool default min size = 1
		osd pool default pg num = 8
		osd pool default pgp num = 8
		osd pool default pg autoscale mode = off
		osd crush chooseleaf type = 0
		[mon]
		mon data = $d/mon
		paxos propose interval = 0.05
		paxos min wait = 0.01
		[osd]
		osd data = $d/osd
		keyring = $d/osd/keyring
		osd objectstore = bluestore
		bluestore block create = true
		bluestore block size = 4294967296
		osd memory target = 536870912
		# a PG's read lease (ratio x heartbeat grace, 16 s by default):
		# a lone OSD stopped longer (ceph_freeze) found its busy PGs
		# "laggy" when it resumed, their ops waiting minutes for readable
		osd pool default read lease ratio = 15
		bdev aio poll ms = 20
		[client]
		client mount timeout = 15
	EOF
}

# _ceph_try_start DIR PORT: one attempt; 0 when the mon and OSD are up,
# 2 on a port clash (retry elsewhere), 1 on anything else.
_ceph_try_start() {
	local d=$1 port=$2 fsid osd_uuid i TMO=(timeout -k 2 20) NS=()
	# the daemons (not the tools) run in CEPH_NETNS when set
	[ -z "$CEPH_NETNS" ] || NS=(nsenter --net="/run/netns/$CEPH_NETNS" --)
	fsid=$(uuidgen)
	osd_uuid=$(uuidgen)
	rm -rf "$d" && mkdir -p "$d/run" "$d/mon" "$d/osd" || return 1
	_ceph_write_conf "$d" "$port" "$fsid"
	{
		ceph-authtool --create-keyring "$d/ceph.client.admin.keyring" --gen-key -n client.admin \
			--cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' &&
			ceph-authtool --create-keyring "$d/osd/keyring" --gen-key -n osd.0 \
				--cap mon 'profile osd' --cap mgr 'profile osd' --cap osd 'allow *' &&
			ceph-authtool --create-keyring "$d/mkfs.keyring" --gen-key -n mon. --cap mon 'allow *' &&
			ceph-authtool "$d/mkfs.keyring" --import-keyring "$d/ceph.client.admin.keyring" &&
			ceph-authtool "$d/mkfs.keyring" --import-keyring "$d/osd/keyring" &&
			monmaptool --create --fsid "$fsid" --addv a "[v2:$CEPH_ADDR:$port]" "$d/monmap" &&
			"${TMO[@]}" ceph-mon -c "$d/ceph.conf" -i a --mkfs --monmap "$d/monmap" \
				--keyring "$d/mkfs.keyring"
	} >>"$d/setup.log" 2>&1 || return 1
	if ! "${TMO[@]}" "${NS[@]}" ceph-mon -c "$d/ceph.conf" -i a >>"$d/setup.log" 2>&1; then
		grep -q 'Address already in use\|unable to bind' "$d/mon.log" 2>/dev/null && return 2
		return 1
	fi
	# The mon forks; a clash on its port shows in its log at once.
	for ((i = 0; i < 30; i++)); do
		grep -q 'Address already in use\|unable to bind' "$d/mon.log" 2>/dev/null && return 2
		_ceph_pid mon.a >/dev/null && [ -S "$d/run/ceph-mon.a.asok" ] && break
		sleep 0.1
	done
	if ! "${TMO[@]}" ceph -c "$d/ceph.conf" --connect-timeout 15 osd new "$osd_uuid" 0 >>"$d/setup.log" 2>&1; then
		grep -q 'Address already in use\|unable to bind' "$d/mon.log" 2>/dev/null && return 2
		return 1
	fi
	"${TMO[@]}" "${NS[@]}" ceph-osd -c "$d/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" --monmap "$d/monmap" \
		>>"$d/setup.log" 2>&1 || return 1
	"${TMO[@]}" "${NS[@]}" ceph-osd -c "$d/ceph.conf" -i 0 >>"$d/setup.log" 2>&1 || return 1
	return 0
}

ceph_start() {
	local d port rc=1 tries t0 end TMO=(timeout -k 2 20)
	if [ -n "$CEPH_DIR" ] && _ceph_pid mon.a >/dev/null; then
		_ceph_log "a cluster is already running in $CEPH_DIR"
		return 1
	fi
	mkdir -p "$1" || return 1
	d=$(cd "$1" && pwd)
	CEPH_DIR=$d
	t0=${EPOCHREALTIME/./}
	end=$((SECONDS + CEPH_START_TIMEOUT))
	for ((tries = 0; tries < 8; tries++)); do
		# 50 ports per slot: the mon's port and the OSD's range above it.
		port=$((CEPH_PORT_MIN + 50 * ((RANDOM + $$) % ((CEPH_PORT_MAX - CEPH_PORT_MIN) / 50 + 1))))
		rc=0
		_ceph_try_start "$d" "$port" || rc=$?
		[ $rc -eq 2 ] || break
		_ceph_log "port $port in use; retrying on another"
		_ceph_kill osd.0 mon.a
	done
	if [ $rc -ne 0 ]; then
		_ceph_log "cluster setup failed in $d (port $port):"
		ceph_log_tail 30 >&2
		_ceph_kill osd.0 mon.a
		return 1
	fi
	export CEPH_PORT=$port
	export CEPH_CONF=$d/ceph.conf
	export CEPH_KEYRING=$d/ceph.client.admin.keyring
	# Up means: the OSD is up and in, and a pool can be created and used.
	while :; do
		if "${TMO[@]}" ceph --connect-timeout 10 osd dump 2>/dev/null | grep -q '^osd\.0 up  *in'; then
			break
		fi
		if [ $SECONDS -ge $end ] || ! _ceph_pid osd.0 >/dev/null; then
			_ceph_log "the OSD did not come up within ${CEPH_START_TIMEOUT}s in $d:"
			ceph_log_tail 30 >&2
			_ceph_kill osd.0 mon.a
			return 1
		fi
		sleep 0.1
	done
	if ! "${TMO[@]}" ceph osd pool create rbd >>"$d/setup.log" 2>&1 ||
		! "${TMO[@]}" rbd pool init rbd >>"$d/setup.log" 2>&1; then
		_ceph_log "cannot create pool rbd in $d:"
		ceph_log_tail 30 >&2
		_ceph_kill osd.0 mon.a
		return 1
	fi
	t0=$((${EPOCHREALTIME/./} - t0))
	CEPH_START_SECONDS=$((t0 / 1000000)).$(printf '%02d' $((t0 % 1000000 / 10000)))
	export CEPH_START_SECONDS
	return 0
}

ceph_stop() {
	[ -n "$CEPH_DIR" ] || return 0
	_ceph_kill osd.0 mon.a
	rm -rf "$CEPH_DIR"
	CEPH_DIR=""
	unset CEPH_CONF CEPH_KEYRING
}
