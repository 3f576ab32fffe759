#!/usr/bin/env bash
# tests/integration/rbd_docker.sh - the rbd backend on a real one-node Ceph
# cluster (tests/lib/ceph.sh), driven by a real dockerd on "host A" and by
# plain requests on a second ballastd, "host B" (own state dir, socket and
# host id, same cluster).
#
# Needs root, the packages of tests/deps.sh plus ceph_deps (installed here),
# and a tree built with the rbd backend (build/ballastd with rbd compiled in,
# build/ballast-rbd-map, build/tests/rbd_writer, build/mount.ballast).
# Removes its directory on success, keeps it (and says where) on failure.
#
# Covers: create through dockerd with size/fstype/uid/gid/mode, write and
# read back by later containers; one writer (a plain librbd client gets
# EROFS while mounted); two hosts on one cluster (B lists, is refused naming
# A while A holds it, mounts and reads after A releases; A refused naming B;
# Create of an existing volume is adoption); online grow through the
# mapper's size file; shared=ro readers; a dead host's volume taken over
# once its lease lapses (its client blocklisted); a lease left behind by an
# earlier holder never gets the lock's live owner fenced; a foreign client
# dead with the image open (its watch left) slows no Unmount on A or B;
# kill -9 of ballastd with a mounted volume (the mapper survives, Unmount
# and Remove work, nothing left mapped); every bad option refused with no
# image left; foreign images untouched; the cluster gone (Create/Mount fail
# within the bound, Get/List/docker volume ls answer, a fresh ballastd
# starts). Prints the timings it measured as # lines.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/dockerd.sh
. "$HERE/../lib/dockerd.sh"
# shellcheck source=../lib/ballastd.sh
. "$HERE/../lib/ballastd.sh"
# shellcheck source=../lib/ceph.sh
. "$HERE/../lib/ceph.sh"
# shellcheck source=../lib/dbimage.sh
. "$HERE/../lib/dbimage.sh"

t_group rbd_docker
PLUGIN=ballast
B=$BALLAST_BUILD
RBD_TIMEOUT=5
RBD_LEASE=10

[ "$(id -u)" -eq 0 ] || t_die "must run as root"
for c in jq losetup curl docker dockerd fusermount3; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done
for s in "/run/docker/plugins/$PLUGIN.sock" "/run/docker/plugins/$PLUGIN/$PLUGIN.sock"; do
	[ -e "$s" ] && t_die "$s exists: dockerd would use it instead of our spec file"
done
ceph_deps || t_die "cannot install the Ceph packages"
for b in ballastd ballast mount.ballast ballast-rbd-map tests/rbd_writer; do
	[ -x "$B/$b" ] || t_die "$B/$b missing: build with the rbd backend (make, with librbd-dev installed)"
done

T=$(mktemp -d /tmp/ballast-rbd.XXXXXX)
declare -A BD_PID=()

# ---------------------------------------------------------------- ballastd A and B
# bd_conf X HOSTID: the config of host X (a or b), rbd as default backend
bd_conf() {
	local x=$1 d=$T/$1
	mkdir -p "$d"
	cat >"$d/ballast.conf" <<-EOF
		[ballast]
		socket = $d/ballast.sock
		state_dir = $d/state
		helper = $B/mount.ballast
		log_level = debug
		host_id = $2
		default_backend = rbd
		refresh_interval = 1
		[rbd]
		conf = $T/ceph/ceph.conf
		user = admin
		keyring = $T/ceph/ceph.client.admin.keyring
		timeout = $RBD_TIMEOUT
		lease = $RBD_LEASE
	EOF
}
# bd_start X: start (or restart) ballastd X, wait until Activate answers
bd_start() {
	local x=$1 d=$T/$1 i
	printf -- '--- start %s\n' "$(date -u +%FT%TZ)" >>"$d/ballastd.log"
	"$B/ballastd" --config "$d/ballast.conf" >>"$d/ballastd.log" 2>&1 </dev/null &
	BD_PID[$x]=$!
	i=$((SECONDS + 10)) # 10 s in all, whatever each try costs
	while [ "$SECONDS" -le "$i" ]; do
		kill -0 "${BD_PID[$x]}" 2>/dev/null || break
		if curl -s --max-time 2 --unix-socket "$d/ballast.sock" -X POST http://b/Plugin.Activate 2>/dev/null |
			grep -q VolumeDriver && served "$d/ballast.sock"; then
			return 0
		fi
		sleep 0.1
	done
	printf '# ballastd %s did not start; log:\n' "$x"
	tail -n 20 "$d/ballastd.log" | sed 's/^/#   /'
	return 1
}
bd_kill9() {
	local x=$1
	[ -n "${BD_PID[$x]:-}" ] || return 0
	kill -KILL "${BD_PID[$x]}" 2>/dev/null || true
	wait "${BD_PID[$x]}" 2>/dev/null || true
	BD_PID[$x]=""
}
# bd X METHOD JSON: POST to ballastd X, print the body
bd() {
	curl -s --max-time 130 --unix-socket "$T/$1/ballast.sock" -X POST --data-binary "$3" "http://b/$2"
}
# bd_err X METHOD JSON: the Err of the answer ("" on success)
bd_err() { bd "$@" | err_of "$2"; }
# elapsed CMD...: run CMD, print its wall time in ms on fd 3
ms_now() { echo $((${EPOCHREALTIME/./} / 1000)); }

run_c() {
	local v=$1
	shift
	dk run --rm --network none --volume-driver "$PLUGIN" -v "$v:/data" local/busybox "$@"
}
start_c() {
	dk run -d --name "$1" --network none --volume-driver "$PLUGIN" -v "$2:/data" \
		local/busybox sleep 600
}
image_exists() { timeout 20 rbd ls rbd 2>/dev/null | grep -qx "$1"; }
mapper_of() { pgrep -f -- "--image $1 .*$T" 2>/dev/null || true; }
mounts_under() { awk -v d="$1" 'index($2, d) == 1 { print $2 }' /proc/mounts; }
# lock_addr IMAGE: the address of the image's lock owner ("" when unlocked)
lock_addr() { timeout 20 rbd lock ls --format json "$1" 2>/dev/null | jq -r '[.[]][0].address // empty'; }
# blocklisted ADDR: the cluster's blocklist holds the client at ADDR
# (ip:port/nonce; matched on its nonce, whatever the address type prefix)
blocklisted() {
	local nonce=${1##*/}
	[ -n "$nonce" ] && timeout 20 ceph osd blocklist ls 2>/dev/null | grep -qE "/$nonce( |$)"
}
loops_under() { losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$1" 'index($2, d) == 1 { print $1 }'; }

final_cleanup() {
	local p f lp
	for x in a b k; do bd_kill9 "$x"; done
	dockerd_cleanup
	# mappers: by the pids in their pid files (they outlive ballastd)
	for f in "$T"/*/state/rbd/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f" 2>/dev/null)
		if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi
	done
	mounts_under "$T" | sort -r | while IFS= read -r mp; do umount -l "$mp" 2>/dev/null || true; done
	loops_under "$T" | while IFS= read -r lp; do losetup -d "$lp" 2>/dev/null || true; done
	_dk_force_clean "$T"
	dbimage_cleanup
	ceph_stop
	if [ "$TAP_FAIL" -eq 0 ] && [ -z "$(dockerd_leftovers "$T")" ]; then
		rm -rf "$T"
	else
		printf '# test directory kept: %s\n' "$T"
		for x in a b; do
			[ -f "$T/$x/ballastd.log" ] || continue
			printf '# last lines of ballastd %s log:\n' "$x"
			tail -n 40 "$T/$x/ballastd.log" | sed 's/^/#   /'
		done
	fi
}
t_at_exit final_cleanup
dockerd_trap

# ---------------------------------------------------------------- setup
SECONDS=0
ceph_start "$T/ceph" || t_die "the Ceph cluster did not start"
t_diag "Ceph cluster (1 mon, 1 OSD, pool rbd) up in ${CEPH_START_SECONDS} s"
dockerd_start "$T/d" || t_die "dockerd did not start"
busybox_image || t_die "could not import local/busybox"
bd_conf a host-a
bd_conf b host-b
bd_start a || t_die "ballastd A did not start (is rbd compiled in and [rbd] known to config.c?)"
bd_start b || t_die "ballastd B did not start"
[[ $(bd a Ballast.Version '{}' | jq -r '.Backends | index("rbd")') =~ ^[0-9]+$ ]] ||
	t_die "ballastd has no rbd backend: build with librbd-dev installed"
plugin_register "$PLUGIN" "$T/a/ballast.sock" || t_die "could not write the plugin spec"
t_diag "setup took $SECONDS s (dir $T)"
A_MNT=$T/a/state/mounts
B_MNT=$T/b/state/mounts

# ------------------------------------------------- 1. create, write, read back
t_eq "Capabilities scope is global" global \
	"$(bd a VolumeDriver.Capabilities '{}' | jq -r .Capabilities.Scope)"
t0=$(ms_now)
t_ok "docker volume create r1 size=1G fstype=ext4 uid/gid 999" \
	dk volume create -d "$PLUGIN" -o backend=rbd -o size=1G -o fstype=ext4 -o uid=999 -o gid=999 \
	-o mode=0750 r1
t_create=$(($(ms_now) - t0))
t_ok "image r1 exists in pool rbd" image_exists r1
t_eq "image r1 is 1 GiB" 1073741824 "$(timeout 20 rbd info --format json r1 | jq -r .size)"
t_eq "ballast.fstype stored with the image" ext4 "$(timeout 20 rbd image-meta get r1 ballast.fstype)"
t0=$(ms_now)
t_ok "a container writes to r1" run_c r1 sh -c 'echo hello-rbd > /data/hello && sync'
t_first=$(($(ms_now) - t0))
t0=$(ms_now)
t_eq "a later container reads it back" hello-rbd "$(run_c r1 cat /data/hello 2>&1)"
t_again=$(($(ms_now) - t0))
t_eq "the volume root is 999:999 mode 750 in the container" "999:999:750" \
	"$(run_c r1 stat -c %u:%g:%a /data 2>&1)"
t_eq "lost+found is not in the container's directory" "hello" "$(run_c r1 ls /data 2>&1)"
r1_left() { echo "$(mapper_of r1)$(mounts_under "$A_MNT")"; }
t_wait_eq "nothing of r1 stays mapped after the containers" 15 "" r1_left
st=$(dk volume inspect r1 --format '{{json .Status}}' 2>&1)
t_eq "docker volume inspect shows mapper fuse" fuse "$(jq -r .mapper <<<"$st" 2>&1)"
t_eq "docker volume inspect shows the pool" rbd "$(jq -r .pool <<<"$st" 2>&1)"
# The plugin's own calls, without dockerd's container set-up around them
t0=$(ms_now)
bd a VolumeDriver.Mount '{"Name":"r1","ID":"lat"}' >/dev/null
t_mount=$(($(ms_now) - t0))
t0=$(ms_now)
bd a VolumeDriver.Unmount '{"Name":"r1","ID":"lat"}' >/dev/null
t_umount=$(($(ms_now) - t0))
t0=$(ms_now)
t_ok "a container writes 64 MiB with fsync" run_c r1 dd if=/dev/zero of=/data/big bs=1M count=64 conv=fsync
t_dd=$(($(ms_now) - t0))
run_c r1 rm -f /data/big >/dev/null 2>&1
t_diag "docker run + 64 MiB dd conv=fsync: ${t_dd} ms (~$((64000 / (t_dd > 0 ? t_dd : 1))) MB/s including the container's start)"
t_diag "1 GiB ext4: Create ${t_create} ms (docker volume create), first docker run ${t_first} ms," \
	"next docker run ${t_again} ms; plugin Mount ${t_mount} ms, Unmount ${t_umount} ms"

# ------------------------------------------------- 2. one writer while mounted
if t_ok "container c1 runs with r1" start_c c1 r1; then
	t_ne "a mapper serves r1" "" "$(mapper_of r1)"
	t_eq "ballast.holder names host-a" host-a \
		"$(timeout 20 rbd image-meta get r1 ballast.holder | jq -r .host)"
	t_eq "a plain librbd client's write gets EROFS" "rbd_write: -30 Read-only file system" \
		"$(timeout 60 "$B/tests/rbd_writer" "$CEPH_CONF" rbd r1 "$RBD_TIMEOUT" 2>&1)"
	t_eq "c1 still writes after that" ok \
		"$(dk exec c1 sh -c 'echo c1 > /data/c1 && sync && echo ok' 2>&1)"
	t_wait_eq "host B lists r1 (catalog refresh from the cluster)" 15 r1 \
		bash -c "curl -s --max-time 10 --unix-socket $T/b/ballast.sock -X POST -d '{\"Name\":\"r1\"}' http://b/VolumeDriver.Get | jq -r '.Volume.Name // empty'"
	t0=$(ms_now)
	err=$(bd_err b VolumeDriver.Mount '{"Name":"r1","ID":"b1"}')
	t_match "host B's Mount is refused naming host-a and since when" \
		'^volume r1 is in use on host-a since [0-9]{4}-[0-9]{2}-[0-9]{2}T' "$err"
	t_match "and at once (< 2 s)" '^[01]$' "$((($(ms_now) - t0) / 1000))"
	t_fail "docker volume rm of a volume in use is refused" dk volume rm r1
	t_ok "stop c1" dk rm -f c1
fi
t_wait_eq "r1 released on A: no mapper" 10 "" mapper_of r1

# ----------------------------------------- 3. the volume follows to host B
err=$(bd_err b VolumeDriver.Mount '{"Name":"r1","ID":"b1"}')
t_eq "host B mounts r1 after A released it" "" "$err"
t_eq "host B reads what host A's container wrote" hello-rbd "$(cat "$B_MNT/r1/data/hello" 2>&1)"
t_eq "and what c1 wrote while mounted" c1 "$(cat "$B_MNT/r1/data/c1" 2>&1)"
t_ok "host B writes" sh -c "echo from-b > '$B_MNT/r1/data/b' && sync"
err=$(dk run --rm --network none --volume-driver "$PLUGIN" -v r1:/data local/busybox true 2>&1)
t_match "host A's docker run is refused while B holds r1" 'in use on host-b since' "$err"
t_match "host A's Remove is refused while B holds r1" 'in use on host-b since' \
	"$(bd_err a VolumeDriver.Remove '{"Name":"r1"}')"
t_ok "and the image is kept" image_exists r1
t_eq "host B unmounts" "" "$(bd_err b VolumeDriver.Unmount '{"Name":"r1","ID":"b1"}')"
t_eq "host A's container reads what B wrote" from-b "$(run_c r1 cat /data/b 2>&1)"

# -------------------------------- 3b. Create of an existing volume (Swarm)
t_eq "host B's Create of r1 with the same options succeeds" "" \
	"$(bd_err b VolumeDriver.Create '{"Name":"r1","Opts":{"backend":"rbd","size":"1G","fstype":"ext4","uid":"999","gid":"999","mode":"0750"}}')"
t_match "host B's Create of r1 with other options is refused" 'already exists' \
	"$(bd_err b VolumeDriver.Create '{"Name":"r1","Opts":{"size":"2G"}}')"
t_ok "and the image is still there" image_exists r1
t_eq "with its data" hello-rbd "$(run_c r1 cat /data/hello 2>&1)"

# ------------------------- 3e. shared=ro: readers beside the one writer
# (needs mount.ballast to allow noload for ext4 and norecovery for xfs with ro)
if t_ok "volume create s1 shared=ro" dk volume create -d "$PLUGIN" -o size=256M -o shared=ro s1 &&
	t_ok "writer container s1w runs on host A" start_c s1w s1; then
	t_ok "the writer writes" dk exec s1w sh -c 'echo written-by-a > /data/f && sync'
	t_wait_eq "host B lists s1" 15 s1 \
		bash -c "curl -s --max-time 10 --unix-socket $T/b/ballast.sock -X POST -d '{\"Name\":\"s1\"}' http://b/VolumeDriver.Get | jq -r '.Volume.Name // empty'"
	t_eq "host B mounts s1 read-only while A writes" "" "$(bd_err b VolumeDriver.Mount '{"Name":"s1","ID":"r"}')"
	t_eq "host B reads the writer's data" written-by-a "$(cat "$B_MNT/s1/data/f" 2>&1)"
	t_match "host B cannot write" 'Read-only file system' \
		"$(sh -c "echo x > '$B_MNT/s1/data/x'" 2>&1)"
	t_eq "the writer still writes" ok "$(dk exec s1w sh -c 'echo more > /data/g && sync && echo ok' 2>&1)"
	t_eq "host B unmounts s1" "" "$(bd_err b VolumeDriver.Unmount '{"Name":"s1","ID":"r"}')"
	t_eq "the writer's lock is untouched" host-a \
		"$(timeout 20 rbd image-meta get s1 ballast.holder | jq -r .host)"
	t_ok "stop s1w" dk rm -f s1w
fi

# ------------------------------------ 3c. grow a mounted volume online
# `ballast resize`: the mapper (which holds the lock) grows the image and
# mount.ballast grows the mounted file system.
# (xfs: online ext4 growth needs CAP_SYS_RESOURCE, which this machine lacks)
if t_ok "volume create g1 size=512M fstype=xfs" dk volume create -d "$PLUGIN" -o size=512M -o fstype=xfs g1 &&
	t_ok "container g1c runs with g1" start_c g1c g1; then
	before=$(dk exec g1c df -k /data 2>&1 | awk 'NR == 2 { print $2 }')
	t_eq "ballast resize g1 1G" "resized g1 to 1G" \
		"$("$B/ballast" --socket "$T/a/ballast.sock" resize g1 1G 2>&1)"
	after=$(dk exec g1c df -k /data 2>&1 | awk 'NR == 2 { print $2 }')
	t_match "the container sees the new size ($before -> $after KiB)" '^[0-9]+$' \
		"$( ((after > before + 400000)) && echo "$after")"
	t_eq "image g1 is 1 GiB" 1073741824 "$(timeout 20 rbd info --format json g1 | jq -r .size)"
	t_eq "ballast inspect shows the new size" 1073741824 \
		"$("$B/ballast" --socket "$T/a/ballast.sock" inspect g1 --json | jq -r .size_bytes)"
	t_match "shrinking is refused" 'shrinking is refused|smaller' \
		"$("$B/ballast" --socket "$T/a/ballast.sock" resize g1 100M 2>&1)"
	t_wait_eq "host B lists g1 (refresh)" 30 g1 \
		sh -c "curl -s --max-time 10 --unix-socket '$T/b/ballast.sock' -X POST -d '{\"Name\":\"g1\"}' http://b/VolumeDriver.Get | jq -r '.Volume.Name // empty'"
	t_match "host B's resize is refused while A holds it" 'in use on host-a' \
		"$(bd_err b Ballast.Resize '{"Name":"g1","Size":"2G"}')"
	t_ok "stop g1c" dk rm -f g1c
	t_eq "resize while unmounted" "resized g1 to 1536M" \
		"$("$B/ballast" --socket "$T/a/ballast.sock" resize g1 1536M 2>&1)"
	t_match "and the next container sees that size" '^1[45][0-9]{5}$' \
		"$(run_c g1 df -k /data 2>&1 | awk 'NR == 2 { print $2 }')"
fi

# ---------------------------- 3d. host A dies holding a volume; B takes over
if t_ok "volume create h1" dk volume create -d "$PLUGIN" -o size=256M h1 &&
	t_eq "host A mounts h1" "" "$(bd_err a VolumeDriver.Mount '{"Name":"h1","ID":"h"}')"; then
	t_ok "host A writes" sh -c "echo from-dead-a > '$A_MNT/h1/data/f' && sync"
	t_wait_eq "host B lists h1" 15 h1 \
		bash -c "curl -s --max-time 10 --unix-socket $T/b/ballast.sock -X POST -d '{\"Name\":\"h1\"}' http://b/VolumeDriver.Get | jq -r '.Volume.Name // empty'"
	hpid=$(mapper_of h1)
	haddr=$(lock_addr h1)
	t_fail "A's Ceph client is not in the blocklist yet" blocklisted "$haddr"
	bd_kill9 a
	[ -n "$hpid" ] && kill -KILL "$hpid" 2>/dev/null
	t0=$(ms_now)
	err=$(bd_err b VolumeDriver.Mount '{"Name":"h1","ID":"hb"}')
	t_match "while A's lease is fresh, B is refused at once naming host-a and the lease" \
		'^volume h1 is in use on host-a since .* \(lease until .*Z\)$' "$err"
	t_ok "... within a second" test $(($(ms_now) - t0)) -lt 1500
	t_wait_eq "host B takes h1 over once A's lease ($RBD_LEASE s) expired" $((RBD_LEASE + 15)) "" \
		bd_err b VolumeDriver.Mount '{"Name":"h1","ID":"hb"}'
	dt=$((($(ms_now) - t0) / 1000))
	t_diag "takeover of a dead host's volume took ${dt} s after its death (lease $RBD_LEASE s)"
	t_match "A's Ceph client was fenced (blocklisted) on the way" 'blocklisted' \
		"$(grep 'h1: Ceph client .* fenced' "$T/b/ballastd.log" | tail -n 1)"
	t_ok "... and is in the cluster's blocklist (the control of 3g)" blocklisted "$haddr"
	t_eq "host B reads what the dead host A wrote" from-dead-a "$(cat "$B_MNT/h1/data/f" 2>&1)"
	t_eq "ballast.holder names host-b" host-b \
		"$(timeout 20 rbd image-meta get h1 ballast.holder | jq -r .host)"
	t_ok "ballastd A comes back" bd_start a
	t_eq "host A's Unmount cleans its side up" "" \
		"$(bd_err a VolumeDriver.Unmount '{"Name":"h1","ID":"h"}')"
	t_eq "without touching B's hold" host-b \
		"$(timeout 20 rbd image-meta get h1 ballast.holder | jq -r .host)"
	t_eq "nothing of h1 left on A" "" "$(mounts_under "$A_MNT/h1")"
	t_eq "host B unmounts h1" "" "$(bd_err b VolumeDriver.Unmount '{"Name":"h1","ID":"hb"}')"
	t_ok "docker volume rm h1" dk volume rm h1
fi

# ------------- 3g. a lease left behind never gets the lock's owner fenced
# Issue 13, item 3 ("An rbd takeover can fence the wrong client"): a holder
# X that crashed or was fenced leaves its lease; a new holder Y that writes
# none (a kernel mapping: here a fuse mapper run by hand without --lease,
# since this kernel cannot map) owns the lock; once X's lease has expired,
# host B's Mount fenced whoever owned the lock: the live Y. Now only the
# client the lease names is fenced, and only while it owns the lock. Fails
# (B mounts, Y blocklisted, Y's writes fail) when the lease_owns_lock check
# of rbd_take_decide is reverted.
Y=$T/y/state/rbd
if t_eq "volume w1 created on A" "" "$(bd_err a VolumeDriver.Create '{"Name":"w1","Opts":{"size":"64M"}}')"; then
	past=$(($(date +%s) - 100))
	t_ok "a lease of a dead client X left with w1, expired" timeout 20 rbd image-meta set w1 ballast.lease \
		"{\"client\":\"client.999999\",\"lease\":10,\"expires\":\"$(date -u -d "@$past" +%FT%TZ)\",\"expires_unix\":$past}"
	mkdir -p "$Y/w1.map"
	t_ok "a live holder Y takes w1 (a mapper without a lease, as a kernel client)" \
		"$B/ballast-rbd-map" --conf "$CEPH_CONF" --id admin --pool rbd --image w1 --timeout "$RBD_TIMEOUT" \
		--pidfile "$Y/w1.map.pid" --holder '{"host":"host-y","since":"2024-01-01T00:00:00Z"}' "$Y/w1.map"
	yaddr=$(lock_addr w1)
	t_ne "Y owns w1's lock" "" "$yaddr"
	t_wait_eq "host B lists w1" 15 w1 \
		bash -c "curl -s --max-time 10 --unix-socket $T/b/ballast.sock -X POST -d '{\"Name\":\"w1\"}' http://b/VolumeDriver.Get | jq -r '.Volume.Name // empty'"
	t_match "host B's Mount is refused naming Y's host, X's lease expired or not" 'in use on host-y' \
		"$(bd_err b VolumeDriver.Mount '{"Name":"w1","ID":"wb"}')"
	t_fail "Y was not fenced (not in the cluster's blocklist)" blocklisted "$yaddr"
	t_eq "Y still owns the lock" "$yaddr" "$(lock_addr w1)"
	last=$(($(stat -c %s "$Y/w1.map/image" 2>/dev/null || echo 4096) / 4096 - 1))
	t_ok "Y still writes (the image's last block, synced)" \
		dd if=/dev/zero of="$Y/w1.map/image" bs=4k count=1 seek="$last" conv=notrunc,fsync status=none
	kill -TERM "$(cat "$Y/w1.map.pid" 2>/dev/null)" 2>/dev/null
	t_wait_eq "Y lets go" 15 "" lock_addr w1
	t_eq "then host B mounts w1" "" "$(bd_err b VolumeDriver.Mount '{"Name":"w1","ID":"wb"}')"
	t_eq "host B unmounts w1" "" "$(bd_err b VolumeDriver.Unmount '{"Name":"w1","ID":"wb"}')"
	t_eq "w1 removed" "" "$(bd_err a VolumeDriver.Remove '{"Name":"w1"}')"
fi

# --------- 3i. a write is acknowledged only once the cluster stored it
# Issue 17 (chaos seed 3: a commit acknowledged around a forced release
# was not in the new holder's data): librbd's default cache policy
# (write-around) acknowledges a write before the OSDs have it and hands a
# failure only to the first flush after it; any other flush, librbd's own
# when it loses the lock included, swallows it, and the file system's
# fsync then succeeds for a write that never landed. The mapper runs
# without librbd's cache. With the only OSD stopped, a write through the
# mapper must not be acknowledged: it fails at the op timeout. Fails
# (acknowledged at the timeout, while the OSD is stopped) with rbd_cache
# left on.
osd=$(_ceph_pid osd.0)
if t_ne "the OSD's pid is known" "" "$osd" &&
	t_eq "volume wa1 created on A" "" "$(bd_err a VolumeDriver.Create '{"Name":"wa1","Opts":{"size":"64M"}}')"; then
	mkdir -p "$Y/wa1.map"
	t_ok "a mapper of wa1 runs (by hand, as in 3g)" \
		"$B/ballast-rbd-map" --conf "$CEPH_CONF" --id admin --pool rbd --image wa1 --timeout "$RBD_TIMEOUT" \
		--pidfile "$Y/wa1.map.pid" --holder '{"host":"host-y","since":"2024-01-01T00:00:00Z"}' "$Y/wa1.map"
	t_ok "the control: a write and fsync through it succeed" \
		dd if=/dev/zero of="$Y/wa1.map/image" bs=4k count=1 conv=notrunc,fsync status=none
	# the write alone, on a descriptor kept open: no flush of close()
	exec 7<>"$Y/wa1.map/image"
	kill -STOP "$osd"
	t0=$(ms_now)
	printf 'acked-%04090d' 1 >&7 2>"$T/wa1.err"
	rc=$? dt=$(($(ms_now) - t0))
	kill -CONT "$osd"
	exec 7>&-
	t_ne "with the only OSD stopped, a write is not acknowledged (${dt} ms: $(head -c 80 "$T/wa1.err"))" 0 "$rc"
	t_ok "... it failed at the op timeout ($RBD_TIMEOUT s), not at once" test "$dt" -ge $((RBD_TIMEOUT * 1000 - 500))
	t_ok "the OSD answers again: a write and fsync succeed" \
		dd if=/dev/zero of="$Y/wa1.map/image" bs=4k count=1 seek=2 conv=notrunc,fsync status=none
	kill -TERM "$(cat "$Y/wa1.map.pid" 2>/dev/null)" 2>/dev/null
	t_wait_eq "the mapper lets go" 15 "" lock_addr wa1
	t_eq "wa1 removed" "" "$(bd_err a VolumeDriver.Remove '{"Name":"wa1"}')"
fi

# ------------ 3j. a mount whose mapper died is never handed out again
# Issue 17 (chaos, rbd seed 5): the mapper of a mounted volume was killed;
# its ext4 had gone read-only on a dead device, and ballastd handed that
# mount to A's next container ("chown: /data/pg: Read-only file system").
# Now a mount whose mapper is gone counts as gone: the next Mount maps and
# mounts the volume afresh. Fails (the new container cannot write) when
# be_rbd_is_mounted reports such a mount as alive.
if t_ok "volume dm1 created" dk volume create -d "$PLUGIN" -o size=64M dm1 &&
	t_ok "container dmc uses dm1" start_c dmc dm1; then
	t_ok "dmc writes" dk exec dmc sh -c 'echo before > /data/f && sync'
	dpid=$(mapper_of dm1)
	t_ne "dm1's mapper runs" "" "$dpid"
	[ -n "$dpid" ] && kill -KILL "$dpid"
	t_wait_eq "dm1's mapper is gone" 10 "" mapper_of dm1
	t_eq "the next container on A gets a working dm1: it writes and reads back" after \
		"$(run_c dm1 sh -c 'echo after > /data/g && sync && cat /data/g' 2>&1)"
	t_eq "... and reads what dmc wrote before the mapper died" before "$(run_c dm1 cat /data/f 2>&1)"
	t_ne "... through a new mapper" "" "$(mapper_of dm1)"
	dk rm -f dmc >/dev/null 2>&1
	t_wait_eq "once dmc is gone, nothing of dm1 is mapped" 15 "" mapper_of dm1
	t_ok "docker volume rm dm1" dk volume rm dm1
fi

# ------------ 3k. snapshots: taken while a container writes, rolled back
# Issue 19: `ballast snapshot` on an rbd volume in use on this host freezes
# its file system for the RBD snapshot; the snapshot holds a prefix of
# what the writer had synced (a consistent file system, no torn line);
# rollback only once the volume is mounted nowhere; a volume with
# snapshots is not removed; another host's volume is refused naming it.
bal() { "$B/ballast" --socket "$T/a/ballast.sock" "$@"; }
lines_ok() { # FILE CONTENT: the lines are 1..N, each whole; prints N
	awk '$0 != NR { bad = 1 } END { if (bad || NR == 0) print "bad"; else print NR }' <<<"$1"
}
if t_ok "volume s1 created" dk volume create -d "$PLUGIN" -o size=128M s1 &&
	t_ok "container sc writes numbered lines to s1, each synced" \
		dk run -d --name sc --network none --volume-driver "$PLUGIN" -v s1:/data local/busybox \
		sh -c 'i=0; while :; do i=$((i + 1)); echo $i >> /data/log; sync; sleep 0.02; done'; then
	count_sc() { dk exec sc sh -c 'wc -l < /data/log' 2>/dev/null || echo 0; }
	enough() { [ "$(count_sc)" -ge "$1" ] && echo yes || echo no; }
	t_wait_eq "sc has written 20 lines" 30 yes enough 20
	before=$(count_sc)
	t_match "ballast snapshot create s1 snap1 while sc writes" '^s1: took snapshot snap1$' \
		"$(bal snapshot create s1 snap1 2>&1)"
	after=$(count_sc)
	t_match "the file system was frozen for it (ballastd's log)" 'snapshot snap1 taken \(file system frozen\)' \
		"$(grep 'volume s1: snapshot snap1' "$T/a/ballastd.log")"
	t_wait_eq "sc writes on after the snapshot (thawed)" 30 yes enough $((after + 20))
	size=$(timeout 20 rbd info --format json s1 | jq -r .size)
	t_eq "snapshot ls s1 --json: snap1, the image's size" "snap1 $size s1" \
		"$(bal snapshot ls s1 --json | jq -r '.[] | "\(.name) \(.size_bytes) \(.volume)"')"
	t_match "snapshot ls (all volumes) shows it" 's1 +snap1 +[0-9]+M +20[0-9][0-9]-' "$(bal snapshot ls 2>&1)"
	t_match "rollback while mounted here is refused" 'volume s1 is in use on this host' \
		"$(bal snapshot rollback s1 snap1 2>&1)"
	t_match "a second snapshot of the same name is refused" 'already has a snapshot snap1' \
		"$(bal snapshot create s1 snap1 2>&1)"
	dk rm -f sc >/dev/null 2>&1
	t_wait_eq "sc gone: nothing of s1 mapped" 15 "" mapper_of s1
	t_ge_lines() { n=$(lines_ok "$(run_c s1 cat /data/log 2>&1)"); echo "$n"; }
	full=$(t_ge_lines)
	t_ok "the live volume has every line ($full >= $((after + 20)))" test "$full" -ge $((after + 20)) 2>/dev/null
	t_match "rollback s1 to snap1" '^s1: rolled back to snapshot snap1$' "$(bal snapshot rollback s1 snap1 2>&1)"
	got=$(t_ge_lines)
	t_diag "snapshot: $before lines before it, $after after; rolled back to $got of $full"
	t_ok "rolled back: whole lines 1..N, with $before <= N <= $after (got $got)" \
		test "$got" != bad -a "$got" -ge "$before" -a "$got" -le "$after" 2>/dev/null
	t_match "Remove of a volume with snapshots is refused, naming them" \
		'volume s1 has 1 snapshot \(snap1\); remove them first' "$(bd_err a VolumeDriver.Remove '{"Name":"s1"}')"
	t_ok "... and the image is kept" image_exists s1
	t_match "rollback to a snapshot s1 does not have" 'volume s1 has no snapshot nope' \
		"$(bal snapshot rollback s1 nope 2>&1)"
	t_match "a bad snapshot name" 'invalid snapshot name "-x"' "$(bal snapshot create s1 -- -x 2>&1)"
	t_match "a snapshot of an unknown volume" 'volume nosuch not found' "$(bal snapshot create nosuch a 2>&1)"
	t_eq "... none of which left a snapshot" snap1 "$(bal snapshot ls s1 --json | jq -r '.[].name')"
	# held by host B: refused, naming it
	t_eq "host B mounts s1" "" "$(bd_err b VolumeDriver.Mount '{"Name":"s1","ID":"bs"}')"
	t_match "a snapshot of s1 while host B holds it is refused naming host-b" 'in use on host-b' \
		"$(bal snapshot create s1 snap2 2>&1)"
	t_eq "host B unmounts s1" "" "$(bd_err b VolumeDriver.Unmount '{"Name":"s1","ID":"bs"}')"
	t_match "snapshot rm s1 snap1" '^s1: removed snapshot snap1$' "$(bal snapshot rm s1 snap1 2>&1)"
	t_eq "no snapshot left" "" "$(bal snapshot ls s1 --json | jq -r '.[].name')"
	t_ok "docker volume rm s1, its snapshots gone" dk volume rm s1
fi

# ------------ 3l. clones: a database's snapshot started on host B
# Issue 19: SQLite commits numbered rows in a container on A; a snapshot
# taken meanwhile is cloned (-o from=VOL@SNAP) through dockerd and mounted
# on host B: the clone holds exactly the rows 1..N committed before the
# snapshot and passes SQLite's integrity check; flatten=true detaches a
# clone from its parent; a snapshot or a volume with clones is not
# removed, naming them; the original, stopped, rolls back to the snapshot.
# dbw_acked: the last row the writer reported committed (0: none)
dbw_acked() { dbimage_acked dbw dk; }
dbw_has() { [ "$(dbw_acked)" -ge "$1" ] && echo yes || echo no; }
# rows PATH: "COUNT MIN MAX INTEGRITY" of table t in the database at PATH
rows() { timeout 30 sqlite3 "$1" "SELECT count(*) || ' ' || min(n) || ' ' || max(n) FROM t; PRAGMA integrity_check;" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
# rows_c VOL: the same, as a container on A sees VOL
rows_c() { dbimage_rows "$PLUGIN" "$1" dk; }
parent_of() { timeout 20 rbd info --format json "$1" 2>/dev/null | jq -r '.parent | if . then "\(.image)@\(.snapshot)" else "none" end'; }
if dbimage_build dk && t_ok "volume db1 created" dk volume create -d "$PLUGIN" -o size=128M db1 &&
	t_ok "table t made in db1" dbimage_sql "$PLUGIN" db1 "CREATE TABLE t(n INTEGER PRIMARY KEY)" dk &&
	t_ok "container dbw commits rows 1, 2, ... to db1" dbimage_writer "$PLUGIN" db1 dbw dk; then
	t_wait_eq "dbw has committed 20 rows" 60 yes dbw_has 20
	before=$(dbw_acked)
	t_match "ballast snapshot create db1 s1 while dbw commits" '^db1: took snapshot s1$' \
		"$(bal snapshot create db1 s1 2>&1)"
	sleep 0.5 # the last commit's "ok" through docker logs; a later count only widens the bound
	after=$(dbw_acked)
	t_wait_eq "dbw commits on after the snapshot" 60 yes dbw_has $((after + 20))
	t_ok "docker volume create -o from=db1@s1 db1c" dk volume create -d "$PLUGIN" -o from=db1@s1 db1c
	t_eq "db1c is a clone of db1@s1 in the cluster" db1@s1 "$(parent_of db1c)"
	t_eq "docker volume inspect: db1c's parent, db1's snapshot" "db1@s1 [\"s1\"]" \
		"$(dk volume inspect -f '{{.Status.parent}}' db1c 2>&1) $(dk volume inspect -f '{{json .Status.snapshots}}' db1 2>&1)"
	t_wait_eq "host B lists db1c" 15 db1c \
		bash -c "curl -s --max-time 10 --unix-socket $T/b/ballast.sock -X POST -d '{\"Name\":\"db1c\"}' http://b/VolumeDriver.Get | jq -r '.Volume.Name // empty'"
	t_eq "host B mounts the clone db1c" "" "$(bd_err b VolumeDriver.Mount '{"Name":"db1c","ID":"bc"}')"
	got=$(rows "$B_MNT/db1c/data/db")
	read -r cnt lo hi ok <<<"$got"
	t_diag "clone: $before rows acknowledged before the snapshot, $after after it; the clone has: $got"
	t_ok "on B the clone has rows 1..N, none missing, and passes integrity_check ($got)" \
		test "${lo:-x}" = 1 -a "${hi:-x}" = "${cnt:-y}" -a "${ok:-x}" = ok
	t_ok "... N is what was committed by the snapshot: $before <= N <= $((after + 1))" \
		test "${cnt:-0}" -ge "$before" -a "${cnt:-0}" -le $((after + 1)) 2>/dev/null
	t_ok "host B writes to the clone" timeout 30 sqlite3 "$B_MNT/db1c/data/db" "INSERT INTO t VALUES(1000000)"
	t_eq "snapshot ls db1 --json names the clone" "s1 db1c" \
		"$(bal snapshot ls db1 --json | jq -r '.[] | "\(.name) \(.clones | join(","))"')"
	t_match "snapshot rm of a snapshot with clones is refused, naming them" \
		'snapshot s1 of db1 has clones \(db1c\)' "$(bal snapshot rm db1 s1 2>&1)"
	t_match "snapshot create db1 s2" '^db1: took snapshot s2$' "$(bal snapshot create db1 s2 2>&1)"
	t_ok "docker volume create -o from=db1@s2 db1d" dk volume create -d "$PLUGIN" -o from=db1@s2 db1d
	t_eq "snapshot rm db1 --all is refused, naming every snapshot's clones" \
		"ballast: snapshot db1@s1 has clones (db1c); remove them first; nothing removed|ballast: snapshot db1@s2 has clones (db1d); remove them first; nothing removed" \
		"$(bal snapshot rm db1 --all 2>&1 | paste -sd '|')"
	t_eq "... nothing removed" "s1 s2" "$(bal snapshot ls db1 --json | jq -r '[.[].name] | join(" ")')"
	t_ok "docker volume rm db1d" dk volume rm db1d
	t_ok "docker volume create -o from=db1@s1 -o flatten=true db1f" \
		dk volume create -d "$PLUGIN" -o from=db1@s1 -o flatten=true db1f
	t_eq "db1f has no parent in the cluster (flattened)" none "$(parent_of db1f)"
	t_eq "db1f holds the snapshot's rows" "$cnt 1 $cnt ok" "$(rows_c db1f)"
	# bad input: each a one-line error, no image left
	for bad in "nope from=db1@nope volume db1 has no snapshot nope" \
		"nosuch from=nosuch@s1 no volume nosuch in pool rbd" \
		"nosnap from=db1 cloned from a snapshot: from=VOLUME@SNAPSHOT" \
		"badname from=db1@-x invalid volume or snapshot name"; do
		read -r v o msg <<<"$bad"
		t_match "a clone $o is refused: $msg" "$msg" \
			"$(bd_err a VolumeDriver.Create "{\"Name\":\"c$v\",\"Opts\":{\"${o%%=*}\":\"${o#*=}\"}}")"
		t_fail "... no image c$v left" image_exists "c$v"
	done
	t_match "a clone with size is refused" 'size cannot be given with from=' \
		"$(bd_err a VolumeDriver.Create '{"Name":"csize","Opts":{"from":"db1@s1","size":"1G"}}')"
	t_fail "... no image csize left" image_exists csize
	dk rm -f dbw >/dev/null 2>&1
	t_wait_eq "dbw gone: nothing of db1 mapped" 15 "" mapper_of db1
	t_match "Remove of db1 is refused while it has clones, naming them" 'volume db1 has clones \(db1c\)' \
		"$(bd_err a VolumeDriver.Remove '{"Name":"db1"}')"
	t_ok "... db1 kept" image_exists db1
	t_match "rollback db1 (stopped) to s1" '^db1: rolled back to snapshot s1$' "$(bal snapshot rollback db1 s1 2>&1)"
	t_eq "db1 holds the snapshot's rows again" "$cnt 1 $cnt ok" "$(rows_c db1)"
	t_eq "host B unmounts db1c" "" "$(bd_err b VolumeDriver.Unmount '{"Name":"db1c","ID":"bc"}')"
	t_eq "a container on A sees B's row in db1c" "$((cnt + 1)) 1 1000000 ok" "$(rows_c db1c)"
	t_ok "docker volume rm db1c" dk volume rm db1c
	t_eq "then snapshot rm db1 --all (s1's protection lifted)" "db1: removed snapshot s1|db1: removed snapshot s2" \
		"$(bal snapshot rm db1 --all 2>&1 | paste -sd '|')"
	t_ok "docker volume rm db1 and db1f" dk volume rm db1 db1f
	t_fail "... no image db1 left" image_exists db1
fi
dk rm -f dbw >/dev/null 2>&1

# ------- 3h. a foreign client dies with the image open: prompt Unmounts
# Issue 14: a librbd client that dies with the image open (here a foreign
# writer refused with EROFS, then killed) leaves its watch for 30 s, and
# librbd waits up to 5 s for every watcher at each notification. The
# mapper wrote and removed its records with notifying calls: its stop took
# 5 s a record plus 5 s for the close, ballastd killed it at its bound and
# answered the Unmount with an error, and the killed mapper's own watch did
# the same to the next host. Now the records are written without
# notifications and ballastd waits for the lock's release, not for the
# close. Fails (Unmounts of ~10 s, the mapper killed, its lock left) with
# rbd_metadata_set/remove back in the mapper's meta_write.
kill_quiet() { kill -KILL "$@" 2>/dev/null || true; }
watchers_of() { timeout 20 rbd status "$1" --format json 2>/dev/null | jq -r '[.watchers[].client] | join(" ")'; }
# umount_ms X ID: host X's Unmount of fw1; sets ERR and MS
umount_ms() {
	local t0
	t0=$(ms_now)
	ERR=$(bd_err "$1" VolumeDriver.Unmount "{\"Name\":\"fw1\",\"ID\":\"$2\"}")
	MS=$(($(ms_now) - t0))
}
# fw1_left X: what of fw1 is left on host X (mounts, loop devices, lock)
fw1_left() {
	mounts_under "$T/$1/state/mounts/fw1"
	mounts_under "$T/$1/state/rbd/fw1"
	loops_under "$T/$1/state/rbd/fw1"
	lock_addr fw1
}
if t_eq "volume fw1 created on A" "" "$(bd_err a VolumeDriver.Create '{"Name":"fw1","Opts":{"size":"64M"}}')" &&
	t_wait_eq "host B lists fw1" 15 fw1 \
		bash -c "curl -s --max-time 10 --unix-socket $T/b/ballast.sock -X POST -d '{\"Name\":\"fw1\"}' http://b/VolumeDriver.Get | jq -r '.Volume.Name // empty'" &&
	t_eq "host A mounts fw1" "" "$(bd_err a VolumeDriver.Mount '{"Name":"fw1","ID":"fa"}')"; then
	t_ok "host A writes to fw1" sh -c "echo from-a > '$A_MNT/fw1/data/f' && sync"
	"$B/tests/rbd_writer" "$CEPH_CONF" rbd fw1 "$RBD_TIMEOUT" hold >"$T/fw1.writer" 2>&1 &
	wpid=$!
	t_at_exit kill_quiet "$wpid" # it waits until killed
	t_wait_eq "a foreign librbd client's write to fw1 is refused" 30 "rbd_write: -30 Read-only file system" \
		sed -n 1p "$T/fw1.writer"
	t_wait_eq "... and it holds the image open" 10 1 sh -c "sed -n 2p '$T/fw1.writer' | grep -c '^client\.[0-9]*$'"
	wcl=$(sed -n 2p "$T/fw1.writer")
	wcl=${wcl#client.}
	kill -KILL "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	t_match "the control: the client died, its watch stays" "(^| )${wcl:-none}( |$)" "$(watchers_of fw1)"
	umount_ms a fa
	t_eq "host A's Unmount succeeds" "" "$ERR"
	t_ok "... promptly (${MS} ms, < 2 s; the bound is $((RBD_TIMEOUT + 5)) s)" test "$MS" -lt 2000
	t_eq "... the lock released, nothing of fw1 mounted or looped on A" "" "$(fw1_left a)"
	t0=$(ms_now)
	t_eq "host B mounts fw1" "" "$(bd_err b VolumeDriver.Mount '{"Name":"fw1","ID":"fb"}')"
	t_diag "host B's Mount beside the dead watch: $(($(ms_now) - t0)) ms"
	t_eq "host B reads what A wrote" from-a "$(cat "$B_MNT/fw1/data/f" 2>&1)"
	umount_ms b fb
	t_eq "host B's Unmount right after its Mount succeeds" "" "$ERR"
	# librbd's release first waits for its acquire's notification (5 s at
	# most for a dead watcher): bounded, far below the bound
	t_ok "... within that notification's 5 s (${MS} ms, < 7 s)" test "$MS" -lt 7000
	t_eq "... nothing of fw1 left on B" "" "$(fw1_left b)"
	t_eq "host B mounts fw1 again" "" "$(bd_err b VolumeDriver.Mount '{"Name":"fw1","ID":"fb2"}')"
	sleep 6 # a container's life: the Mount's notification timed out meanwhile
	umount_ms b fb2
	t_eq "host B's next Unmount succeeds" "" "$ERR"
	t_ok "... promptly (${MS} ms, < 2 s)" test "$MS" -lt 2000
	t_eq "... nothing of fw1 left on B" "" "$(fw1_left b)"
	t_match "the control: the dead client's watch was there all along" "(^| )${wcl:-none}( |$)" "$(watchers_of fw1)"
	t0=$(ms_now)
	timeout 60 rbd image-meta set fw1 probe x >/dev/null 2>&1
	dt=$(($(ms_now) - t0))
	t_ok "the control: a notifying librbd call still waits for it (rbd image-meta set: ${dt} ms, >= 4 s)" \
		test "$dt" -ge 4000
	t_wait_eq "no mapper of fw1 left on A or B (closing waits for the dead watch)" 15 "" mapper_of fw1
	t_eq "no mapper of fw1 was killed" "" "$(grep -h 'mapper of fw1 .*SIGKILL' "$T/a/ballastd.log" "$T/b/ballastd.log")"
	t_eq "fw1 removed" "" "$(bd_err a VolumeDriver.Remove '{"Name":"fw1"}')"
fi

# ------------------ 3f. kernel mappers: chosen by config, their own errors
# This kernel has neither rbd nor nbd: `mapper = auto` maps with fuse, and a
# host configured for krbd or nbd gets that mapper's own error, with nothing
# left behind (no holder record, no mount, no mapping).
t_eq "mapper = auto picks fuse on this kernel (Status)" fuse \
	"$(bd a Ballast.Inspect '{"Name":"r1"}' | jq -r '.Volume.status.mapper')"
if t_eq "volume km1 for the kernel mappers" "" \
	"$(bd_err a VolumeDriver.Create '{"Name":"km1","Opts":{"size":"64M"}}')"; then
	for m in krbd nbd; do
		bd_kill9 k
		bd_conf k host-k
		echo "mapper = $m" >>"$T/k/ballast.conf"
		# krbd against our msgr2-only monitor: with ms_mode it gets past
		# the monitors and fails on the missing kernel module only
		[ "$m" = krbd ] && echo "ms_mode = prefer-crc" >>"$T/k/ballast.conf"
		t_ok "ballastd with mapper = $m starts" bd_start k
		t_wait_eq "... and lists km1" 15 km1 \
			bash -c "curl -s --max-time 10 --unix-socket $T/k/ballast.sock -X POST -d '{\"Name\":\"km1\"}' http://b/VolumeDriver.Get | jq -r '.Volume.Name // empty'"
		t_eq "Status names the $m mapper" "$m" \
			"$(bd k Ballast.Inspect '{"Name":"km1"}' | jq -r '.Volume.status.mapper')"
		err=$(bd_err k VolumeDriver.Mount '{"Name":"km1","ID":"k"}')
		if [ "$m" = krbd ]; then
			t_match "Mount with krbd fails with rbd's own error" 'cannot map rbd/km1 with krbd: rbd: ' "$err"
			t_nomatch "... with [rbd] ms_mode passed on (no messenger mismatch)" 'ms_mode mismatch' "$err"
		else
			t_match "Mount with nbd fails with rbd-nbd's own error" 'cannot map rbd/km1 with nbd: ' "$err"
		fi
		t_diag "$m: $err"
		t_fail "... no holder record left" timeout 20 rbd image-meta get km1 ballast.holder
		t_eq "... nothing mounted or mapped on that host" "" \
			"$(mounts_under "$T/k/"; ls "$T/k/state/rbd/" 2>/dev/null | grep -E '\.(dev|pid)$')"
	done
	bd_kill9 k
	bd_conf k host-k
	echo "ms_mode = sloppy" >>"$T/k/ballast.conf"
	t_match "a bad [rbd] ms_mode is refused at start, naming it" 'ms_mode = sloppy: use legacy' \
		"$(timeout 20 "$B/ballastd" --config "$T/k/ballast.conf" 2>&1)"
	t_eq "host A still mounts km1 with fuse" "" "$(bd_err a VolumeDriver.Mount '{"Name":"km1","ID":"ka"}')"
	t_eq "host A unmounts km1" "" "$(bd_err a VolumeDriver.Unmount '{"Name":"km1","ID":"ka"}')"
	t_eq "km1 removed" "" "$(bd_err a VolumeDriver.Remove '{"Name":"km1"}')"
fi

# ---------------------------------------------- 4. kill -9 of ballastd A
if t_ok "volume create k1" dk volume create -d "$PLUGIN" -o size=256M k1 &&
	t_ok "container k1c runs with k1" start_c k1c k1; then
	t_ok "k1c writes" dk exec k1c sh -c 'echo before-kill > /data/f && sync'
	mpid=$(mapper_of k1)
	bd_kill9 a
	t_ok "ballastd A restarts after kill -9" bd_start a
	t_eq "the mapper outlived ballastd (same pid)" "$mpid" "$(mapper_of k1)"
	t_eq "k1c still reads k1" before-kill "$(dk exec k1c cat /data/f 2>&1)"
	t_ok "k1c still writes" dk exec k1c sh -c 'echo after-kill > /data/g && sync'
	t_ok "stop k1c (Unmount)" dk rm -f k1c
	t_wait_eq "no mapper left for k1" 15 "" mapper_of k1
	t_eq "no mount left under A's mounts" "" "$(mounts_under "$A_MNT")"
	t_eq "no loop device left" "" "$(loops_under "$T")"
	t_eq "k1 lock released" "" "$(timeout 20 rbd lock ls --format json k1 | jq -r '.[]?' 2>&1)"
	t_ok "docker volume rm k1 (Remove)" dk volume rm k1
	t_fail "image k1 is gone" image_exists k1
fi

# ---------------------------------------------- 5. bad options leave nothing
bad() {
	local desc=$1 name=$2
	shift 2
	t_fail "refused: $desc" dk volume create -d "$PLUGIN" "$@" "$name"
	t_fail "no image left after: $desc" image_exists "$name"
}
bad "unknown option" bad1 -o size=1G -o colour=blue
bad "bad size" bad2 -o size=12Q
bad "size too small" bad3 -o size=1M
bad "bad fstype" bad4 -o size=1G -o fstype=ntfs
bad "mount-options injection" bad5 -o size=1G -o 'mount-options=noatime;reboot'
bad "mount-options not whitelisted" bad6 -o size=1G -o mount-options=suid
bad "mkfs-options not whitelisted" bad7 -o size=1G -o mkfs-options=--bogus
bad "features without exclusive-lock" bad8 -o size=1G -o features=layering
bad "no such pool" bad9 -o size=1G -o pool=nopool
t_ok "an image ballast did not make" timeout 20 rbd create --size 64M foreign
t_fail "is not adopted by Create" dk volume create -d "$PLUGIN" -o size=64M foreign
t_ok "and not deleted by that failure" image_exists foreign
t_eq "and not listed" "" "$(bd a VolumeDriver.List '{}' | jq -r '.Volumes[].Name' | grep -x foreign)"

# ---------------------------------------------- 6. the cluster goes away
ceph_kill_all
bound=$((2 * RBD_TIMEOUT + 2))
t0=$(ms_now)
err=$(bd_err a VolumeDriver.Create '{"Name":"down1","Opts":{"size":"1G"}}')
dt=$((($(ms_now) - t0) / 1000))
t_ne "Create fails with the cluster down" "" "$err"
t_match "within the bound (${dt}s <= ${bound}s)" '^[0-9]+$' "$( ((dt <= bound)) && echo $dt)"
t_diag "Create with the cluster down: ${dt} s: $err"
t0=$(ms_now)
err=$(bd_err a VolumeDriver.Mount '{"Name":"r1","ID":"down"}')
dt=$((($(ms_now) - t0) / 1000))
t_ne "Mount fails with the cluster down" "" "$err"
t_match "within the bound (${dt}s <= ${bound}s)" '^[0-9]+$' "$( ((dt <= bound)) && echo $dt)"
t_diag "Mount with the cluster down: ${dt} s: $err"
t_eq "Get still answers for r1" r1 "$(bd a VolumeDriver.Get '{"Name":"r1"}' | jq -r '.Volume.Name')"
t_eq "List still answers" r1 "$(bd a VolumeDriver.List '{}' | jq -r '.Volumes[].Name' | grep -x r1)"
t_eq "docker volume ls still answers" r1 \
	"$(DK_TIMEOUT=60 dk volume ls -q --filter driver="$PLUGIN" 2>&1 | grep -x r1)"
bd_kill9 b
t0=$(ms_now)
t_ok "a fresh ballastd starts and answers Activate with the cluster down" bd_start b
t_match "at once (< 2 s)" '^[01]$' "$((($(ms_now) - t0) / 1000))"
t0=$(ms_now)
err=$(bd_err b VolumeDriver.Create '{"Name":"down2","Opts":{"size":"1G"}}')
dt=$((($(ms_now) - t0) / 1000))
t_match "its Create fails clearly within the bound (${dt}s)" 'cannot connect to the Ceph cluster' "$err"
t_diag "Create on a fresh ballastd with the cluster down: ${dt} s: $err"
t_match "(${dt}s <= ${bound}s)" '^[0-9]+$' "$( ((dt <= bound)) && echo $dt)"

# ---------------------------------------------------------------- secrets
# Every ballastd and mapper here logged at debug level: none of it may hold
# the cephx key the cluster handed out.
# shellcheck source=../lib/secrets.sh
. "$HERE/../lib/secrets.sh"
mapfile -t logs < <(find "$T/a" "$T/b" "$T/k" -type f 2>/dev/null; find "$T/d" -maxdepth 1 -name '*.log' 2>/dev/null)
t_match "the files to look in (${#logs[@]}) include ballastd's and dockerd's logs" 'ballastd.log.*dockerd.log' \
	"$(printf '%s ' "${logs[@]}" | tr ' ' '\n' | grep -E 'ballastd.log|dockerd.log' | sort | tr '\n' ' ')"
t_ne "the probe sees the cephx key where it is (the keyring itself)" "" \
	"$(leaks_of "$T/a/ballast.conf" "$T/ceph/ceph.client.admin.keyring")"
check_no_secret_in_logs "$T/a/ballast.conf" "${logs[@]}"
