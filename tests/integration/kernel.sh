#!/usr/bin/env bash
# tests/integration/kernel.sh - the rbd backend's kernel mappers, krbd and
# rbd-nbd, on a real kernel: a user-mode Linux guest (tests/lib/uml.sh)
# with rbd.ko and nbd.ko, reaching the suite's one-node Ceph
# (tests/lib/ceph.sh, bound to the guest's tap link) and running ballastd
# itself. No udev runs there: mount.ballast maps with noudev and waits for
# the device nodes.
#
# Covers, with ballastd in the guest: for mapper = krbd and mapper = nbd,
# Create (mkfs on the mapped device), Mount, a write read back after an
# Unmount and a new Mount, a foreign librbd writer refused (and let
# through once unmapped: the control), online growth refused (offline
# growth on krbd), Unmount leaving nothing mapped, Remove; mapper = auto
# choosing krbd; kill -9 of ballastd while mounted, the restarted daemon
# adopting the mapping (mount count, holder record) and unmapping at the
# last Unmount. Then two hosts, one a kernel: the guest's ballastd holds a
# volume; the host machine's ballastd (FUSE mapper) is refused naming the
# guest's host; the guest is killed; the host machine takes the volume
# over once the dead kernel client's watch lapses, the guest's client
# blocklisted and its lock broken, and reads what the guest wrote; the
# guest boots again (same host id and state), is refused naming the host
# machine, and its record of the mapping from before the crash (<vol>.dev,
# naming /dev/rbd0) is not taken for a mapping of this life (where
# /dev/rbd0 is another image's).
#
# Needs root, user-mode-linux and kmod (tests/deps.sh), the Ceph packages
# (installed here, as in rbd_docker) and a build with the rbd backend.
# Removes its directory on success, keeps it (and says where) on failure.
# Prints the time it took as a # line.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/ceph.sh
. "$HERE/../lib/ceph.sh"
# shellcheck source=../lib/uml.sh
. "$HERE/../lib/uml.sh"

t_group kernel
B=${BALLAST_BUILD:-$(cd "$HERE/../.." && pwd)/build}
GUEST_ID=kguest
HOST_ID=hostm
LEASE=10
T_START=$SECONDS

[ "$(id -u)" -eq 0 ] || t_die "must run as root"
for c in jq curl losetup fusermount3; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done
uml_check || t_die "no user-mode Linux kernel to run the kernel mappers on (tests/deps.sh installs user-mode-linux and kmod)"
ceph_deps || t_die "cannot install the Ceph packages"
command -v rbd-nbd >/dev/null || t_die "rbd-nbd not installed (run tests/deps.sh)"
for b in ballastd ballast mount.ballast ballast-rbd-map tests/rbd_writer; do
	[ -x "$B/$b" ] || t_die "$B/$b missing: build with the rbd backend (make, with librbd-dev installed)"
done

T=$(mktemp -d /tmp/ballast-kernel.XXXXXX)
GK=$T/gk # the guest's ballastd: config, state, log (the socket is in its /run)
HM=$T/hm # the host machine's ballastd
HM_PID=""

# ------------------------------------------------------------------ clean-up
final_cleanup() {
	local f p mp lp
	if [ -n "$HM_PID" ]; then
		kill -KILL "$HM_PID" 2>/dev/null
		wait "$HM_PID" 2>/dev/null
	fi
	# the host's rbd volumes: file systems on loop devices, then the FUSE
	# files under them, then their mappers (they outlive ballastd)
	awk -v d="$T/" 'index($2, d) == 1 && $3 !~ /^fuse/ { print $2 }' /proc/mounts | sort -r |
		while IFS= read -r mp; do timeout 20 umount "$mp" 2>/dev/null || umount -l "$mp"; done
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$T/" 'index($2, d) == 1 { print $1 }' |
		while IFS= read -r lp; do losetup -d "$lp" 2>/dev/null; done
	for f in "$HM"/state/rbd/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f" 2>/dev/null)
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	done
	awk -v d="$T/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while IFS= read -r mp; do timeout 20 umount "$mp" 2>/dev/null || umount -l "$mp"; done
	uml_kill || true
	ceph_stop
	uml_net_stop
	if [ "$TAP_FAIL" -eq 0 ]; then
		rm -rf "$T"
	else
		printf '# test directory kept: %s\n' "$T"
		for f in "$GK/ballastd.log" "$HM/ballastd.log"; do
			[ -f "$f" ] || continue
			printf '# last lines of %s:\n' "$f"
			tail -n 40 "$f" | sed 's/^/#   /'
		done
	fi
}
t_at_exit final_cleanup

# ------------------------------------------------------------------ the guest
# The guest's side of the test, run there through uml_run: ballastd (its
# socket in the guest's /run) and what the kernel has mapped.
write_guest_script() {
	cat >"$T/guest.sh" <<-EOF
		#!/bin/bash
		# written by tests/integration/kernel.sh; runs in the guest
		SOCK=/run/ballast/ballast.sock
		PIDF=/run/ballast/ballastd.pid
		LOG=$GK/ballastd.log
		export CEPH_CONF=$CEPH_CONF
		case \$1 in
		start)
			mkdir -p /run/ballast
			printf -- '--- start %s\\n' "\$(date -u +%FT%TZ)" >>"\$LOG"
			setsid $B/ballastd --config $GK/ballast.conf >>"\$LOG" 2>&1 </dev/null &
			echo \$! >\$PIDF
			end=\$((SECONDS + 30)) # 30 s in all, whatever each try costs
			while [ "\$SECONDS" -le "\$end" ]; do
				curl -s --max-time 5 --unix-socket \$SOCK -X POST http://b/Plugin.Activate 2>/dev/null |
					grep -q VolumeDriver &&
					curl -s --max-time 5 --unix-socket \$SOCK -X POST http://b/Ballast.Version 2>/dev/null |
					grep -q '"Err":""' && exit 0
				kill -0 "\$(cat \$PIDF)" 2>/dev/null || { echo "ballastd exited"; exit 1; }
				sleep 0.1
			done
			echo "ballastd did not answer within 30 s"
			exit 1
			;;
		call) exec curl -s --max-time 150 --unix-socket \$SOCK -X POST --data-binary "\$3" "http://b/\$2" ;;
		cli)
			shift
			exec timeout 150 $B/ballast --socket \$SOCK "\$@"
			;;
		stop | kill9)
			p=\$(cat \$PIDF) || exit 1
			kill "\$([ "\$1" = stop ] && echo -TERM || echo -KILL)" "\$p"
			for ((i = 0; i < 300; i++)); do
				kill -0 "\$p" 2>/dev/null || exit 0
				sleep 0.1
			done
			echo "ballastd \$p still runs"
			exit 1
			;;
		mapped)
			# every mapping of the kernel, one line each
			for d in /sys/bus/rbd/devices/*; do
				[ -e "\$d" ] && echo "krbd \$(cat "\$d/pool")/\$(cat "\$d/name")"
			done
			for p in /sys/block/nbd*/pid; do
				[ -e "\$p" ] && echo "nbd \${p%/pid}"
			done
			exit 0
			;;
		esac
		echo "guest.sh: unknown command \$1"
		exit 2
	EOF
	chmod 0755 "$T/guest.sh"
}

# g ARGS...: guest.sh ARGS in the guest; gerr METHOD JSON: the Err of the
# guest's ballastd's answer ("" on success)
g() { uml_run -t 170 "$T/guest.sh" "$@"; }
# gmapped: what the guest's kernel has mapped ("" for nothing; a guest that
# does not answer says so)
gmapped() {
	local out rc=0
	out=$(g mapped 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || out="NO ANSWER from the guest (status $rc): $out"
	printf '%s\n' "$out"
}
gerr() { g call "$1" "$2" | err_of "$1"; }
# gmp NAME ID: Mount NAME in the guest; its mount point, or the error
gmp() {
	local body
	body=$(g call VolumeDriver.Mount "{\"Name\":\"$1\",\"ID\":\"$2\"}")
	jq -er '(.Mountpoint // "") | select(. != "")' <<<"$body" 2>/dev/null || err_of VolumeDriver.Mount <<<"$body"
}
# gstatus NAME FIELD: a field of the volume's Status in the guest
gstatus() {
	g call VolumeDriver.Get "{\"Name\":\"$1\"}" | jq -r ".Volume.Status.$2 // empty" 2>/dev/null
}
# the guest's ballast.conf with [rbd] mapper = $1
guest_conf() {
	mkdir -p "$GK"
	cat >"$GK/ballast.conf" <<-EOF
		[ballast]
		socket = /run/ballast/ballast.sock
		state_dir = $GK/state
		helper = $B/mount.ballast
		log_level = debug
		host_id = $GUEST_ID
		default_backend = rbd
		refresh_interval = 2
		[rbd]
		conf = $CEPH_CONF
		user = admin
		timeout = 10
		lease = $LEASE
		default_size = 64M
		mapper = $1
		ms_mode = crc
	EOF
}
image_exists() { timeout 20 rbd ls rbd 2>/dev/null | grep -qx "$1"; }
# image_gone NAME: the cluster answers, and NAME is not in its list
image_gone() {
	local l
	l=$(timeout 20 rbd ls rbd 2>&1) || return 1
	! grep -qx "$1" <<<"$l"
}
lock_addr() { timeout 20 rbd lock ls --format json "$1" 2>/dev/null | jq -r '[.[]][0].address // empty'; }
# holder_host NAME: the host of the image's holder record, "none" without
# one ("" when the cluster does not answer)
holder_host() {
	timeout 20 rbd image-meta list --format json "$1" 2>/dev/null |
		jq -r 'if has("ballast.holder") then (.["ballast.holder"] | fromjson | .host) else "none" end' 2>/dev/null
}
writer() { timeout 60 "$B/tests/rbd_writer" "$CEPH_CONF" rbd "$1" 10 2>&1; }

# ------------------------------------------------------------------ set-up
uml_net_start || t_die "cannot make the guest's link ($UML_TAP, $UML_HOST_ADDR/30)"
CEPH_ADDR=$UML_HOST_ADDR
ceph_start "$T/ceph" || t_die "cannot start Ceph on $UML_HOST_ADDR"
t_diag "Ceph on $UML_HOST_ADDR up in ${CEPH_START_SECONDS:-?} s"
write_guest_script
t0=$SECONDS
uml_start "$T/g1" || t_die "the user-mode Linux guest does not boot"
t_diag "guest booted in $((SECONDS - t0)) s"
t_ok "the guest loads rbd and nbd" uml_run "modprobe rbd && modprobe nbd && test -d /sys/bus/rbd && test -e /sys/block/nbd0"
t_eq "no udev runs in the guest (the case noudev is for)" none \
	"$(uml_run 'test -e /run/udev/control && echo /run/udev/control; pgrep -a udevd || echo none')"
t_match "the guest reaches the monitor" 'rbd' "$(uml_run "timeout 60 ceph --connect-timeout 30 -c $CEPH_CONF osd pool ls 2>&1")"

# ------------------------------------------------------------------ one mapper
# scenario MAPPER VOL: the whole life of VOL in the guest with MAPPER.
scenario() {
	local m=$1 v=$2 mp t0
	guest_conf "$m"
	t_ok "$m: ballastd starts in the guest" g start || return 1
	t0=$SECONDS
	t_eq "$m: Create $v (mapped, mkfs, mounted once)" "" \
		"$(gerr VolumeDriver.Create "{\"Name\":\"$v\",\"Opts\":{\"size\":\"64M\"}}")" || return 1
	t_diag "$m: Create took $((SECONDS - t0)) s"
	t_ok "$m: the image is in the cluster" image_exists "$v"
	t_eq "$m: nothing left mapped after Create" "" "$(gmapped)"
	t0=$SECONDS
	mp=$(gmp "$v" c1)
	t_match "$m: Mount gives a mount point" "^$GK/state/" "$mp" || return 1
	t_diag "$m: Mount took $((SECONDS - t0)) s"
	t_match "$m: the kernel maps the image" "^$m rbd/$v\$|^nbd /sys/block/nbd" "$(gmapped)"
	t_eq "$m: Status names the mapper" "$m" "$(gstatus "$v" mapper)"
	t_match "$m: ... and the device" "^/dev/${m/krbd/rbd}[0-9]+\$" "$(gstatus "$v" device)"
	t_ok "$m: the mapping is recorded ($v.dev)" test -e "$GK/state/rbd/$v.dev"
	t_match "$m: the mount point is the device's ext4" "^/dev/${m/krbd/rbd}[0-9]+ ext4\$" \
		"$(uml_run "findmnt -n -o SOURCE,FSTYPE --target '$mp'")"
	t_ok "$m: the guest writes" uml_run "echo written-by-$m >'$mp/f' && sync"
	t_match "$m: a foreign librbd writer is refused (EROFS)" '^rbd_write: -30 ' "$(writer "$v")"
	t_match "$m: online growth is refused under a kernel mapper" 'online growth needs the fuse mapper' \
		"$(g cli resize "$v" 96M 2>&1)"
	t_eq "$m: Unmount" "" "$(gerr VolumeDriver.Unmount "{\"Name\":\"$v\",\"ID\":\"c1\"}")"
	t_eq "$m: nothing mapped after Unmount (sysfs)" "" "$(gmapped)"
	if [ "$m" = krbd ]; then
		t_eq "$m: ... nor in rbd device list" END "$(uml_run 'rbd device list 2>/dev/null && echo END')"
	else
		t_eq "$m: ... nor in rbd-nbd list-mapped" END "$(uml_run 'rbd-nbd list-mapped 2>/dev/null && echo END')"
	fi
	t_fail "$m: no mapping recorded" test -e "$GK/state/rbd/$v.dev"
	mp=$(gmp "$v" c2)
	t_match "$m: Mount again" "^$GK/state/" "$mp"
	t_eq "$m: what was written is read back from the image" "written-by-$m" "$(uml_run "cat '$mp/f'")"
	t_eq "$m: Unmount again" "" "$(gerr VolumeDriver.Unmount "{\"Name\":\"$v\",\"ID\":\"c2\"}")"
	t_eq "$m: nothing mapped" "" "$(gmapped)"
	if [ "$m" = krbd ]; then
		t0=$SECONDS
		t_match "$m: offline growth maps, grows and unmaps" '^resized ' "$(g cli resize "$v" 96M 2>&1)"
		t_diag "$m: offline resize took $((SECONDS - t0)) s"
		t_match "$m: the image is 96 MiB" '"size": ?100663296' \
			"$(timeout 20 rbd info --format json "$v" 2>&1 | tr -d '\n')"
		t_eq "$m: nothing mapped after the resize" "" "$(gmapped)"
	fi
	# it writes over the file system: last
	t_eq "$m: the foreign writer gets through once unmapped (the control)" ok "$(writer "$v")"
	t_eq "$m: Remove" "" "$(gerr VolumeDriver.Remove "{\"Name\":\"$v\"}")"
	t_ok "$m: the image is gone" image_gone "$v"
	t_ok "$m: ballastd stops" g stop
}

t0=$SECONDS
scenario krbd kv-krbd
t_diag "krbd: $((SECONDS - t0)) s"
t0=$SECONDS
scenario nbd kv-nbd
t_diag "nbd: $((SECONDS - t0)) s"

# ------------------------------------------------------------------ auto, kill -9
# auto_restart VOL: mapper = auto chooses krbd; ballastd killed while VOL
# is mounted; the restarted daemon adopts the mapping.
auto_restart() {
	local v=$1 mp mp2
	guest_conf auto
	t_ok "auto: ballastd starts in the guest" g start || return 1
	t_eq "auto: Create $v" "" "$(gerr VolumeDriver.Create "{\"Name\":\"$v\"}")" || return 1
	mp=$(gmp "$v" c1)
	t_match "auto: Mount" "^$GK/state/" "$mp" || return 1
	t_eq "auto: mapper = auto chose krbd" krbd "$(gstatus "$v" mapper)"
	t_eq "auto: ... and the kernel maps it" "krbd rbd/$v" "$(gmapped)"
	t_ok "auto: the guest writes" uml_run "echo written-by-the-guest >'$mp/f' && sync"
	t_eq "auto: the holder record names the guest" "$GUEST_ID" "$(holder_host "$v")"
	t_ok "auto: kill -9 of ballastd while mounted" g kill9
	t_eq "auto: the mapping outlives ballastd" "krbd rbd/$v" "$(gmapped)"
	t_ok "auto: ballastd restarts" g start
	t_eq "auto: the restarted daemon keeps the mount count" 1 "$(gstatus "$v" mount_count)"
	mp2=$(gmp "$v" c2)
	t_eq "auto: a second Mount gets the same mount point" "$mp" "$mp2"
	t_eq "auto: ... on the same mapping, not a new one" "krbd rbd/$v" "$(gmapped)"
	t_eq "auto: the data is there" written-by-the-guest "$(uml_run "cat '$mp2/f'")"
	t_eq "auto: the holder record still names the guest" "$GUEST_ID" "$(holder_host "$v")"
	t_eq "auto: Unmount of the first" "" "$(gerr VolumeDriver.Unmount "{\"Name\":\"$v\",\"ID\":\"c1\"}")"
	t_eq "auto: still mapped for the second" "krbd rbd/$v" "$(gmapped)"
	t_eq "auto: Unmount of the second" "" "$(gerr VolumeDriver.Unmount "{\"Name\":\"$v\",\"ID\":\"c2\"}")"
	t_eq "auto: the adopted mapping is unmapped" "" "$(gmapped)"
	t_eq "auto: ... and its holder record dropped" none "$(holder_host "$v")"
}
t0=$SECONDS
auto_restart kv-auto
t_diag "auto and kill -9: $((SECONDS - t0)) s"

# ------------------------------------------------------------------ two hosts
# The host machine's ballastd: the FUSE mapper, the same cluster.
hm_start() {
	local i
	mkdir -p "$HM"
	cat >"$HM/ballast.conf" <<-EOF
		[ballast]
		socket = $HM/ballast.sock
		state_dir = $HM/state
		helper = $B/mount.ballast
		log_level = debug
		host_id = $HOST_ID
		default_backend = rbd
		refresh_interval = 1
		[rbd]
		conf = $CEPH_CONF
		user = admin
		timeout = 5
		lease = $LEASE
		mapper = fuse
	EOF
	"$B/ballastd" --config "$HM/ballast.conf" >>"$HM/ballastd.log" 2>&1 </dev/null &
	HM_PID=$!
	i=$((SECONDS + 10)) # 10 s in all, whatever each try costs
	while [ "$SECONDS" -le "$i" ]; do
		kill -0 "$HM_PID" 2>/dev/null || return 1
		curl -s --max-time 2 --unix-socket "$HM/ballast.sock" -X POST http://b/Plugin.Activate 2>/dev/null |
			grep -q VolumeDriver && served "$HM/ballast.sock" && return 0
		sleep 0.1
	done
	return 1
}
hm_err() {
	curl -s --max-time 150 --unix-socket "$HM/ballast.sock" -X POST --data-binary "$2" "http://b/$1" | err_of "$1"
}
blocklisted() { timeout 20 ceph osd blocklist ls 2>/dev/null | grep -q "^$1:"; }
# not_blocklisted ADDR: the cluster answers, and ADDR is not in its blocklist
not_blocklisted() {
	local l
	l=$(timeout 20 ceph osd blocklist ls 2>/dev/null) || return 1
	! grep -q "^$1:" <<<"$l"
}

# reboot_guest VOL: the dead guest boots again (same host id, same state
# directory, VOL held by the host machine). Its <VOL>.dev from before the
# crash names /dev/rbd0, which in this life is another image's device.
reboot_guest() {
	local v=$1 err
	t_ok "reboot: the guest boots again" uml_start "$T/g2" || return 1
	t_ok "reboot: rbd and nbd loaded" uml_run "modprobe rbd && modprobe nbd"
	t_match "reboot: the record of the dead mapping is still there" "^krbd /dev/rbd0 " \
		"$(cat "$GK/state/rbd/$v.dev" 2>&1)"
	t_ok "reboot: an image not ballast's" timeout 20 rbd create --size 16M rbd/other
	t_eq "reboot: ... mapped by hand in the guest gets /dev/rbd0" /dev/rbd0 \
		"$(uml_run "CEPH_CONF=$CEPH_CONF timeout 60 rbd device map -o noudev,ms_mode=crc rbd/other 2>&1")"
	t_ok "reboot: ballastd starts in the guest" g start
	err=$(gmp "$v" g2)
	t_match "reboot: the guest's Mount is refused, naming the host machine" "^volume $v is in use on $HOST_ID since " \
		"$err"
	t_eq "reboot: the stale record did not cost the other image its mapping" "krbd rbd/other" "$(gmapped)"
	t_eq "reboot: no mount counted in the guest" 0 "$(gstatus "$v" mount_count)"
	t_ok "reboot: ballastd stops" g stop
	t_ok "reboot: the guest halts" uml_stop
	timeout 30 rbd rm rbd/other >/dev/null 2>&1
}

two_hosts() {
	local v=$1 mp t0 err
	mp=$(gmp "$v" g1)
	t_match "two hosts: the guest mounts $v" "^$GK/state/" "$mp" || return 1
	t_ok "two hosts: the guest writes" uml_run "echo before-the-crash >'$mp/f' && sync"
	t_match "two hosts: the guest's kernel client holds the lock" "^$UML_GUEST_ADDR:" "$(lock_addr "$v")"
	t_ok "two hosts: the host machine's ballastd (FUSE mapper) starts" hm_start || return 1
	err=$(hm_err VolumeDriver.Mount "{\"Name\":\"$v\",\"ID\":\"h1\"}")
	t_match "two hosts: the host machine is refused, naming the guest's host" \
		"^volume $v is in use on $GUEST_ID since " "$err"
	t_ok "two hosts: the guest's client is not blocklisted yet" not_blocklisted "$UML_GUEST_ADDR"
	t_ok "two hosts: the guest dies (its kernel holding the lock)" uml_kill
	t0=$SECONDS
	t_wait_eq "two hosts: the host machine takes $v over once the dead client's watch lapses" 150 "" \
		hm_err VolumeDriver.Mount "{\"Name\":\"$v\",\"ID\":\"h1\"}"
	t_diag "two hosts: takeover $((SECONDS - t0)) s after the guest died"
	t_ok "two hosts: the guest's client is blocklisted" blocklisted "$UML_GUEST_ADDR"
	t_match "two hosts: the lock is the host machine's now" "^$UML_HOST_ADDR:" "$(lock_addr "$v")"
	t_eq "two hosts: the holder record names the host machine" "$HOST_ID" "$(holder_host "$v")"
	t_eq "two hosts: the host machine reads what the guest wrote" before-the-crash \
		"$(cat "$HM/state/mounts/$v/data/f" 2>&1)"
	t0=$SECONDS
	reboot_guest "$v"
	t_diag "two hosts: the guest's second life $((SECONDS - t0)) s"
	t_eq "two hosts: Unmount on the host machine" "" "$(hm_err VolumeDriver.Unmount "{\"Name\":\"$v\",\"ID\":\"h1\"}")"
	t_eq "two hosts: Remove on the host machine" "" "$(hm_err VolumeDriver.Remove "{\"Name\":\"$v\"}")"
	t_ok "two hosts: the image is gone" image_gone "$v"
}
t0=$SECONDS
two_hosts kv-auto
t_diag "two hosts: $((SECONDS - t0)) s"
t_diag "the kernel group took $((SECONDS - T_START)) s"
