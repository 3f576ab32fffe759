#!/bin/bash
# mount_helper.sh - integration tests for mount.ballast (helpers/).
#
# Needs root, loop devices, e2fsprogs and xfsprogs; ceph-common and rbd-nbd
# for the mapper tests, which also use a throw-away cluster (tests/lib/ceph.sh)
# when ceph-mon and ceph-osd are there. Runs the binary named by
# $MOUNT_BALLAST (default ${BUILD:-build}/mount.ballast) against a state
# directory in a fresh temp dir, prints "ok - ..." / "not ok - ..." per test
# and "# group mount_helper: P passed, F failed"; exits non-zero iff a test
# failed. Whatever happens, the trap unmounts what it mounted under the temp
# dir and detaches loop devices backed by its image files.
set -u

MB=${MOUNT_BALLAST:-${BUILD:-build}/mount.ballast}
PASS=0
FAIL=0
HOLDER_PID=
MAPPED=

WORK=$(mktemp -d /tmp/mount_helper.XXXXXX) || exit 1
STATE=$WORK/state
MOUNTS=$STATE/mounts
IMG=$WORK/img
mkdir -p "$MOUNTS" "$IMG" "$WORK/outside"

cleanup() {
	local m f
	[ -n "$HOLDER_PID" ] && kill "$HOLDER_PID" 2>/dev/null && wait "$HOLDER_PID" 2>/dev/null
	# What the mapper tests mapped (only where the kernel can) and their cluster.
	for m in $MAPPED; do "$MB" unmap --mapper "${m%%:*}" "${m#*:}" >/dev/null 2>&1; done
	[ -n "${CEPH_DIR:-}" ] && declare -F ceph_stop >/dev/null && ceph_stop >/dev/null 2>&1
	# Deepest first, so that stacked and nested mounts come off.
	awk -v p="$WORK/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	for f in "$IMG"/*; do
		[ -e "$f" ] || continue
		losetup -n -O NAME -j "$f" 2>/dev/null | while read -r m; do losetup -d "$m"; done
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
not_ok() {
	echo "not ok - $1"
	[ -n "${2:-}" ] && printf '#   %s\n' "$2"
	FAIL=$((FAIL + 1))
}

# run ARGS...: run mount.ballast with the test state dir; sets RC, OUT, ERR.
run() {
	OUT=$("$MB" --state-dir "$STATE" "$@" 2>"$WORK/stderr")
	RC=$?
	ERR=$(cat "$WORK/stderr")
}

# expect_ok DESC ARGS...: exit 0, stdout and stderr empty.
expect_ok() {
	local desc=$1
	shift
	run "$@"
	if [ "$RC" -eq 0 ] && [ -z "$ERR" ] && [ -z "$OUT" ]; then
		ok "$desc"
	else
		not_ok "$desc" "rc=$RC stdout: $OUT stderr: $ERR"
	fi
}

# expect_fail DESC STATUS PATTERN ARGS...: exit STATUS and exactly one
# stderr line "mount.ballast: ..." that contains PATTERN (fixed string).
expect_fail() {
	local desc=$1 status=$2 pattern=$3 lines
	shift 3
	run "$@"
	lines=$(printf '%s\n' "$ERR" | wc -l)
	if [ "$RC" -eq "$status" ] && [ "$lines" -eq 1 ] && [[ "$ERR" == "mount.ballast: "* ]] &&
		[[ "$ERR" == *"$pattern"* ]]; then
		ok "$desc"
	else
		not_ok "$desc" "rc=$RC (want $status), want '$pattern' in stderr: $ERR"
	fi
}

# check DESC COMMAND...: a test that is just a shell condition.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc" "failed: $*"; fi
}

fs_uuid() { blkid -p -s UUID -o value "$1" 2>/dev/null; }
fs_type() { blkid -p -s TYPE -o value "$1" 2>/dev/null; }
loops_of() { losetup -n -O NAME -j "$1" 2>/dev/null; }
no_loops() { [ -z "$(loops_of "$1")" ]; }
# loop_dio IMAGE: the direct-I/O flag (0 or 1) of the loop device backing IMAGE
loop_dio() { local d; d=$(loops_of "$1") && [ -n "$d" ] && cat "/sys/block/${d#/dev/}/loop/dio"; }
mount_count() { awk -v t="$1" '$5 == t' /proc/self/mountinfo | wc -l; }
is_mounted() { [ "$(mount_count "$1")" -gt 0 ]; }
not_mounted() { [ "$(mount_count "$1")" -eq 0 ]; }
size_kb() { df -k --output=size "$1" | tail -n 1 | tr -d ' '; }
has_cap_sys_resource() {
	local eff
	eff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
	(((16#$eff >> 24) & 1))
}

if [ ! -x "$MB" ]; then
	not_ok "mount.ballast binary exists at $MB"
	echo "# group mount_helper: $PASS passed, $FAIL failed"
	exit 1
fi

# --- usage ---------------------------------------------------------------
expect_fail "no command is refused" 1 "no command given"
expect_fail "unknown command is refused" 1 "unknown command 'frobnicate'" frobnicate
expect_fail "mkfs without --fstype is refused" 1 "needs --fstype" mkfs "$IMG/none.img"
expect_fail "unknown option is refused" 1 "unknown option '--force'" mkfs --fstype ext4 --force "$IMG/none.img"
expect_fail "unsupported fstype is refused" 1 "unsupported filesystem type 'btrfs'" \
	mkfs --fstype btrfs "$IMG/none.img"
run status "$MOUNTS/nothing"
OUT2=$(LIBMOUNT_DEBUG=all LIBBLKID_DEBUG=all "$MB" --state-dir "$STATE" status "$MOUNTS/nothing" 2>&1)
check "environment is cleared (LIBMOUNT_DEBUG prints nothing)" [ "$OUT2" = "not-mounted" ]

# --- mkfs ----------------------------------------------------------------
truncate -s 64M "$IMG/e.img"
truncate -s 320M "$IMG/x.img"
expect_ok "mkfs ext4 on a sparse file" mkfs --fstype ext4 --label ext-vol "$IMG/e.img"
check "mkfs ext4 made an ext4 filesystem with the label" \
	[ "$(fs_type "$IMG/e.img")" = ext4 -a "$(blkid -p -s LABEL -o value "$IMG/e.img")" = ext-vol ]
expect_ok "mkfs xfs on a sparse 320M file" mkfs --fstype xfs "$IMG/x.img"
check "mkfs xfs made an xfs filesystem" [ "$(fs_type "$IMG/x.img")" = xfs ]

uuid=$(fs_uuid "$IMG/e.img")
expect_fail "mkfs refuses an ext4-formatted file (exit 3)" 3 "already holds an ext4 filesystem" \
	mkfs --fstype ext4 "$IMG/e.img"
check "refused mkfs left the ext4 UUID unchanged" [ -n "$uuid" -a "$(fs_uuid "$IMG/e.img")" = "$uuid" ]
uuid=$(fs_uuid "$IMG/x.img")
expect_fail "mkfs ext4 refuses an xfs-formatted file (exit 3)" 3 "already holds an xfs filesystem" \
	mkfs --fstype ext4 "$IMG/x.img"
check "refused mkfs left the xfs UUID unchanged" [ -n "$uuid" -a "$(fs_uuid "$IMG/x.img")" = "$uuid" ]
truncate -s 64M "$IMG/swap.img"
mkswap "$IMG/swap.img" >/dev/null 2>&1
expect_fail "mkfs refuses a file with a swap signature (exit 3)" 3 "already holds a swap signature" \
	mkfs --fstype xfs "$IMG/swap.img"

truncate -s 64M "$IMG/opts.img"
expect_ok "mkfs ext4 with whitelisted options" \
	mkfs --fstype ext4 --mkfs-options "-m 1 -O ^has_journal,quota -E lazy_itable_init=0,nodiscard" "$IMG/opts.img"
check "mkfs options reached mkfs.ext4 (no journal)" \
	bash -c "! dumpe2fs -h '$IMG/opts.img' 2>/dev/null | grep -q has_journal"
truncate -s 64M "$IMG/blank.img"
expect_fail "mkfs option outside the whitelist is refused" 1 "mkfs option '-T' is not allowed" \
	mkfs --fstype ext4 --mkfs-options "-T huge" "$IMG/blank.img"
expect_fail "mkfs option value out of range is refused" 1 "'-m 99'" \
	mkfs --fstype ext4 --mkfs-options "-m 99" "$IMG/blank.img"
expect_fail "mkfs option with shell metacharacters is refused" 1 "mkfs option ';'" \
	mkfs --fstype ext4 --mkfs-options "-m 1 ; rm -rf /" "$IMG/blank.img"
expect_fail "mkfs option with a path is refused" 1 "mkfs option '/etc/x'" \
	mkfs --fstype ext4 --mkfs-options "-E /etc/x" "$IMG/blank.img"
expect_fail "ext4-only mkfs option is refused for xfs" 1 "mkfs option '-O' is not allowed for xfs" \
	mkfs --fstype xfs --mkfs-options "-O quota" "$IMG/blank.img"
expect_fail "over-long xfs label is refused" 1 "invalid xfs label" \
	mkfs --fstype xfs --label thirteen-char "$IMG/blank.img"
check "refused mkfs left the blank file blank" [ -z "$(fs_type "$IMG/blank.img")" ]
expect_fail "mkfs tool failure is reported with the tool's message (exit 2)" 2 \
	"Filesystem must be larger than 300MB" mkfs --fstype xfs "$IMG/blank.img"
expect_fail "mkfs refuses a character device" 1 "neither a regular file nor a block device" \
	mkfs --fstype ext4 /dev/null
expect_fail "mkfs refuses a relative source" 1 "not an absolute path" mkfs --fstype ext4 blank.img

# --- mount / umount (ext4, loop) --------------------------------------------
T=$MOUNTS/e
expect_ok "mount --loop ext4 creates the target and mounts" mount --fstype ext4 --loop "$IMG/e.img" "$T"
check "target is mounted nosuid,nodev" \
	bash -c "findmnt -n -o OPTIONS '$T' | tr , '\n' | grep -qx nosuid && findmnt -n -o OPTIONS '$T' | tr , '\n' | grep -qx nodev"
check "a loop device backs the image" [ -n "$(loops_of "$IMG/e.img")" ]
check "the loop device does direct I/O (no second page cache)" [ "$(loop_dio "$IMG/e.img")" = 1 ]
run status "$T"
check "status reports the mount" [ "$RC" -eq 0 -a "$OUT" = "mounted $IMG/e.img ext4" -a -z "$ERR" ]
token=$RANDOM-$RANDOM-$$
echo "$token" >"$T/data" && sync
expect_ok "mount is idempotent (same source, same target)" mount --fstype ext4 --loop "$IMG/e.img" "$T"
check "idempotent mount did not stack a second mount" [ "$(mount_count "$T")" -eq 1 ]
check "idempotent mount did not attach a second loop device" [ "$(loops_of "$IMG/e.img" | wc -l)" -eq 1 ]
expect_fail "mount of another source on a used target is refused (exit 2)" 2 "already a mountpoint of" \
	mount --fstype xfs --loop "$IMG/x.img" "$T"
expect_ok "umount" umount "$T"
check "target is unmounted" not_mounted "$T"
check "loop device detached after umount (losetup -j empty)" no_loops "$IMG/e.img"
run status "$T"
check "status reports not-mounted" [ "$RC" -eq 0 -a "$OUT" = "not-mounted" -a -z "$ERR" ]
expect_ok "umount is idempotent (not mounted)" umount "$T"
expect_ok "remount with options" mount --fstype ext4 --loop --options noatime,commit=30 "$IMG/e.img" "$T"
check "remount reads the data back" [ "$(cat "$T/data" 2>/dev/null)" = "$token" ]
check "mount options applied" bash -c "findmnt -n -o OPTIONS '$T' | tr , '\n' | grep -qx noatime"

# umount while busy: a process with its cwd inside.
(cd "$T" && exec sleep 30) &
HOLDER_PID=$!
sleep 0.3
expect_fail "umount of a busy target fails with the kernel's reason (exit 2)" 2 "busy" umount "$T"
check "busy target is still mounted" is_mounted "$T"
kill "$HOLDER_PID" 2>/dev/null
wait "$HOLDER_PID" 2>/dev/null
HOLDER_PID=
expect_ok "umount after the holder left" umount "$T"
check "loop device detached after the second umount" no_loops "$IMG/e.img"

expect_fail "mount with the wrong fstype is refused (exit 2)" 2 "holds an ext4 filesystem, not xfs" \
	mount --fstype xfs --loop "$IMG/e.img" "$MOUNTS/wrongtype"
check "failed mount removed the target it created" [ ! -e "$MOUNTS/wrongtype" ]
expect_fail "mount of an image without --loop is refused" 1 "not a block device" \
	mount --fstype ext4 "$IMG/e.img" "$MOUNTS/noloop"
expect_fail "mount of an unformatted image fails clearly (exit 2)" 2 "holds no filesystem" \
	mount --fstype ext4 --loop "$IMG/blank.img" "$MOUNTS/blank"
check "no loop device left for the unformatted image" no_loops "$IMG/blank.img"

# --- xfs -------------------------------------------------------------------
X=$MOUNTS/x
expect_ok "mount --loop xfs with xfs options" mount --fstype xfs --loop --options noatime,inode64 "$IMG/x.img" "$X"
run status "$X"
check "status reports the xfs mount" [ "$OUT" = "mounted $IMG/x.img xfs" ]
echo "$token" >"$X/data" && sync
expect_ok "umount xfs" umount "$X"
check "xfs loop device detached" no_loops "$IMG/x.img"
expect_ok "remount xfs" mount --fstype xfs --loop "$IMG/x.img" "$X"
check "xfs remount reads the data back" [ "$(cat "$X/data" 2>/dev/null)" = "$token" ]

# --- grow --------------------------------------------------------------------
before=$(size_kb "$X")
truncate -s 640M "$IMG/x.img"
expect_ok "grow xfs after extending the image" grow --fstype xfs "$X"
after=$(size_kb "$X")
check "df shows the xfs filesystem bigger ($before -> $after KiB)" [ "$after" -gt "$before" ]
expect_fail "grow with the wrong fstype is refused" 1 "mounted as xfs, not ext4" grow --fstype ext4 "$X"
expect_ok "umount grown xfs" umount "$X"
check "grown xfs loop device detached" no_loops "$IMG/x.img"

expect_ok "mount ext4 for grow" mount --fstype ext4 --loop "$IMG/e.img" "$T"
before=$(size_kb "$T")
truncate -s 128M "$IMG/e.img"
if has_cap_sys_resource; then
	expect_ok "grow ext4 after extending the image" grow --fstype ext4 "$T"
	after=$(size_kb "$T")
	check "df shows the ext4 filesystem bigger ($before -> $after KiB)" [ "$after" -gt "$before" ]
else
	# Online ext4 resize needs CAP_SYS_RESOURCE; without it, say so.
	expect_fail "grow ext4 without CAP_SYS_RESOURCE fails naming the capability" 2 \
		"needs CAP_SYS_RESOURCE" grow --fstype ext4 "$T"
	echo "# ext4 online grow not checked: this environment lacks CAP_SYS_RESOURCE"
fi
check "ext4 data intact after grow" [ "$(cat "$T/data" 2>/dev/null)" = "$token" ]
expect_ok "umount ext4 after grow" umount "$T"
check "ext4 loop device detached after grow" no_loops "$IMG/e.img"
expect_fail "grow of an unmounted target fails" 2 "is not mounted" grow --fstype ext4 "$T"

# --- a block device source (a loop device we attach ourselves) ------------------
truncate -s 64M "$IMG/blk.img"
DEV=$(losetup -f --show "$IMG/blk.img")
B=$MOUNTS/blk
if [ -b "$DEV" ]; then
	expect_ok "mkfs ext4 on a block device" mkfs --fstype ext4 "$DEV"
	expect_fail "mkfs refuses a formatted block device (exit 3)" 3 "already holds an ext4 filesystem" \
		mkfs --fstype ext4 "$DEV"
	expect_ok "mount a block device (no --loop)" mount --fstype ext4 "$DEV" "$B"
	expect_ok "block device mount is idempotent" mount --fstype ext4 "$DEV" "$B"
	# the control of the direct-I/O check: a loop device attached without it reads 0
	check "the dio probe reads 0 on a loop device mount.ballast did not attach" \
		[ "$(loop_dio "$IMG/blk.img")" = 0 ]
	check "idempotent block device mount did not stack" [ "$(mount_count "$B")" -eq 1 ]
	run status "$B"
	check "status names the block device" [ "$OUT" = "mounted $DEV ext4" ]
	expect_fail "mkfs refuses a mounted block device" 2 "is in use" mkfs --fstype ext4 "$DEV"
	expect_fail "a block device with --loop is refused" 1 "not a regular file" \
		mount --fstype ext4 --loop "$DEV" "$MOUNTS/blk2"
	expect_ok "umount the block device" umount "$B"
	check "umount left our own loop device attached (not autoclear)" [ -n "$(loops_of "$IMG/blk.img")" ]
	losetup -d "$DEV"
else
	not_ok "losetup attached a loop device for the block device tests"
fi

# --- targets outside <state-dir>/mounts ----------------------------------------
ln -s "$WORK/outside" "$MOUNTS/escape"
mkdir -p "$WORK/x"
for tgt in / /tmp/x "$WORK/outside" "$MOUNTS/../x" "$MOUNTS/escape" "$MOUNTS/escape/sub" "$MOUNTS"; do
	expect_fail "mount on $tgt is refused" 1 "" mount --fstype ext4 --loop "$IMG/e.img" "$tgt"
done
check "nothing was mounted by the refused mounts" no_loops "$IMG/e.img"
check "refused mounts created nothing outside" [ ! -e "$WORK/outside/sub" -a ! -e /tmp/x/lost+found ]
expect_fail "mount through a symlink escape names the resolved path" 1 "resolved to $WORK/outside" \
	mount --fstype ext4 --loop "$IMG/e.img" "$MOUNTS/escape"
expect_fail "umount of / is refused" 1 "is not under" umount /
expect_fail "umount of ../ escape is refused" 1 "is not under" umount "$MOUNTS/../../state"
expect_fail "umount of a symlink escape is refused" 1 "is not under" umount "$MOUNTS/escape"
expect_fail "umount of a missing target is refused" 1 "does not exist" umount "$MOUNTS/gone"
expect_fail "grow of /etc is refused" 1 "is not under" grow --fstype ext4 /etc
expect_fail "status of /etc is refused" 1 "is not under" status /etc
expect_fail "relative target is refused" 1 "not an absolute path" status mounts/e
ln -s "$STATE" "$WORK/statelink"
OUT=$("$MB" --state-dir "$WORK/statelink" status "$T" 2>&1)
check "a symlinked state dir is resolved" [ "$OUT" = "not-mounted" ]

# --- mount options ---------------------------------------------------------------
for opts in suid "exec;rm" rw,dev x=1 "ro nodev" "nosuid,\"dev\"" errors=panic data=journal/x; do
	name=${opts##*,}
	expect_fail "mount option '$opts' is refused" 1 "mount option '" \
		mount --fstype ext4 --loop --options "$opts" "$IMG/e.img" "$MOUNTS/opt"
done
check "refused options created no target" [ ! -e "$MOUNTS/opt" ]
expect_fail "refusal names the bad option" 1 "mount option 'dev' is not allowed" \
	mount --fstype ext4 --loop --options rw,dev "$IMG/e.img" "$MOUNTS/opt"
expect_fail "xfs-only option is refused for ext4" 1 "'inode64' is not valid for ext4" \
	mount --fstype ext4 --loop --options inode64 "$IMG/e.img" "$MOUNTS/opt"
check "no loop device left by refused options" no_loops "$IMG/e.img"

# --- kernel mappers: map, unmap, mappers -------------------------------------------
MAP_T0=$(date +%s%N)
# No cluster is needed here: the dead conf points at a port where nothing
# listens, and rbd and rbd-nbd give up after `client mount timeout` (1 s).
printf '%s\n' '[global]' 'fsid = 8c0d3a52-0000-4000-8000-000000000001' \
	'mon host = [v2:127.0.0.1:1]' 'auth cluster required = cephx' \
	'auth service required = cephx' 'auth client required = cephx' \
	'[client]' 'client mount timeout = 1' >"$WORK/dead.conf"
sed 's/client mount timeout = 1/client mount timeout = 60/' "$WORK/dead.conf" >"$WORK/slow.conf"
SECRET=AQBYBgZkAAAAABAAwXyPqMpFmXxTGF4tCoMq3w==
printf '[client.admin]\n\tkey = %s\n' "$SECRET" >"$WORK/keyring"
DEAD=(--pool rbd --image img --id admin --conf "$WORK/dead.conf" --keyring "$WORK/keyring")
# in_child_path TOOL: whether mount.ballast finds TOOL (it looks only there).
in_child_path() { PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$1" >/dev/null; }
# kmod NAME: whether the running kernel has NAME as a loadable module.
kmod() { grep -qE "(^|/)$1\.ko[^:]*:" "/lib/modules/$(uname -r)/modules.dep" 2>/dev/null; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
starts() { [[ "$1" == "$2"* ]]; }
no_device_no_key() { [ -z "$OUT" ] && [[ "$ERR" != *"$SECRET"* ]]; }
is_mapped_dev() { [[ "$1" =~ ^/dev/(rbd|nbd)[0-9]+$ ]] && [ -b "$1" ]; }
one_line_with() { [ "$RC" -eq 2 ] && [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] &&
	[[ "$ERR" == "mount.ballast: $1"*"$2"* ]]; }

expect_fail "map without --mapper is refused" 1 "map needs --mapper" map --pool rbd --image img --id admin
expect_fail "map with an unknown mapper is refused" 1 "unknown mapper 'ublk' (expected krbd or nbd)" \
	map --mapper ublk "${DEAD[@]}"
for name in -x a/b "a b" "a;b"; do
	expect_fail "map refuses pool name '$name'" 1 "invalid pool name '$name'" \
		map --mapper krbd --pool "$name" --image img --id admin
	expect_fail "map refuses image name '$name'" 1 "invalid image name '$name'" \
		map --mapper nbd --pool rbd --image "$name" --id admin
done
expect_fail "map refuses an image name with @ (a snapshot)" 1 "invalid image name 'img@snap'" \
	map --mapper krbd --pool rbd --image img@snap --id admin
expect_fail "map refuses a user id starting with -" 1 "invalid user id '--conf=/x'" \
	map --mapper krbd --pool rbd --image img --id --conf=/x
expect_fail "map refuses a relative --conf" 1 "--conf ceph.conf is not an absolute path" \
	map --mapper krbd --pool rbd --image img --id admin --conf ceph.conf
expect_fail "map refuses a relative --keyring" 1 "--keyring keyring is not an absolute path" \
	map --mapper nbd --pool rbd --image img --id admin --keyring keyring
expect_fail "map refuses --timeout 0" 1 "invalid --timeout '0'" map --mapper krbd "${DEAD[@]}" --timeout 0
expect_fail "map refuses --ms-mode with nbd" 1 "--ms-mode is for krbd only" \
	map --mapper nbd "${DEAD[@]}" --ms-mode crc
expect_fail "map refuses an unknown --ms-mode" 1 "invalid --ms-mode 'plain'" \
	map --mapper krbd "${DEAD[@]}" --ms-mode plain

if in_child_path rbd; then
	expect_fail "krbd map fails with rbd's own message (exit 2)" 2 \
		"cannot map rbd/img with krbd: rbd: couldn't connect to the cluster!" map --mapper krbd "${DEAD[@]}"
	check "failed krbd map printed no device and not the key" no_device_no_key
	# Leaked into rbd, CEPH_ARGS would make it say "unrecognised option".
	CEPH_ARGS="--no-such-option" CEPH_CONF=/nonexistent expect_fail \
		"the caller's CEPH_ARGS and CEPH_CONF do not reach rbd" 2 \
		"cannot map rbd/img with krbd: rbd: couldn't connect to the cluster!" map --mapper krbd "${DEAD[@]}"
	t0=$(date +%s%N)
	expect_fail "map is killed at --timeout (exit 2)" 2 \
		"cannot map rbd/img with krbd: rbd did not finish within 1 s" \
		map --mapper krbd --pool rbd --image img --id admin --conf "$WORK/slow.conf" \
		--keyring "$WORK/keyring" --timeout 1
	ms=$(ms_since "$t0")
	check "the killed map returned within 3 s ($ms ms)" [ "$ms" -lt 3000 ]
	check "the killed rbd is gone" bash -c "! pgrep -f '^rbd device map .*$WORK/slow.conf' >/dev/null"
else
	expect_fail "krbd map says rbd is not installed" 2 "cannot map rbd/img with krbd: rbd is not installed" \
		map --mapper krbd "${DEAD[@]}"
fi
if in_child_path rbd-nbd; then
	expect_fail "nbd map fails with rbd-nbd's own message (exit 2)" 2 \
		"cannot map rbd/img with nbd: failed to fetch mon config" map --mapper nbd "${DEAD[@]}" --read-only
	check "failed nbd map printed no device and not the key" no_device_no_key
else
	expect_fail "nbd map says rbd-nbd is not installed" 2 \
		"cannot map rbd/img with nbd: rbd-nbd is not installed" map --mapper nbd "${DEAD[@]}"
fi

expect_fail "unmap without --mapper is refused" 1 "unmap needs --mapper" unmap /dev/rbd0
expect_fail "unmap of /dev/sda is refused" 1 "refusing to unmap /dev/sda: not a krbd device" \
	unmap --mapper krbd /dev/sda
expect_fail "unmap of an nbd device with krbd is refused" 1 "not a krbd device" unmap --mapper krbd /dev/nbd0
expect_fail "unmap of a path that leaves /dev/nbdN is refused" 1 "refusing to unmap /dev/nbd0/../sda" \
	unmap --mapper nbd /dev/nbd0/../sda
if [ ! -e /dev/rbd0 ] && in_child_path rbd; then
	expect_fail "unmap of an unmapped krbd device fails in rbd's words (exit 2)" 2 \
		"cannot unmap /dev/rbd0 with krbd: rbd: '/dev/rbd0' is not a block device" \
		unmap --mapper krbd /dev/rbd0
fi
if [ ! -e /dev/nbd0 ] && in_child_path rbd-nbd; then
	expect_fail "unmap of an unmapped nbd device fails in rbd-nbd's words (exit 2)" 2 \
		"cannot unmap /dev/nbd0 with nbd: rbd-nbd: failed to open device: /dev/nbd0" \
		unmap --mapper nbd /dev/nbd0
fi

run mappers
check "mappers prints three lines and nothing on stderr" \
	[ "$RC" -eq 0 -a -z "$ERR" -a "$(printf '%s\n' "$OUT" | wc -l)" -eq 3 ]
krbd_line=$(printf '%s\n' "$OUT" | grep '^krbd ')
nbd_line=$(printf '%s\n' "$OUT" | grep '^nbd ')
fuse_line=$(printf '%s\n' "$OUT" | grep '^fuse ')
if [ ! -e /sys/bus/rbd ] && ! kmod rbd; then
	check "mappers: $krbd_line" starts "$krbd_line" "krbd no (/sys/bus/rbd missing"
elif in_child_path rbd; then
	check "mappers: $krbd_line" starts "$krbd_line" "krbd yes ("
fi
if [ ! -e /sys/block/nbd0 ] && ! kmod nbd; then
	check "mappers: $nbd_line" starts "$nbd_line" "nbd no (/sys/block/nbd0 missing"
elif in_child_path rbd-nbd; then
	check "mappers: $nbd_line" starts "$nbd_line" "nbd yes ("
fi
if [ -c /dev/fuse ] && { [ -x "$(dirname "$MB")/ballast-rbd-map" ] || in_child_path ballast-rbd-map; }; then
	check "mappers: $fuse_line (/dev/fuse and ballast-rbd-map are there)" starts "$fuse_line" "fuse yes ("
else
	check "mappers: $fuse_line" starts "$fuse_line" "fuse no ("
fi

# Against a live cluster, when one can be made here: the kernel's own
# refusal is what reaches the user or, on a kernel with the mapper, a real
# mapping is made and unmade.
LIB=$(dirname "$0")/../lib
if [ -r "$LIB/ceph.sh" ] && in_child_path ceph-mon && in_child_path ceph-osd && in_child_path rbd &&
	in_child_path rbd-nbd; then
	# shellcheck source=../lib/ceph.sh
	. "$LIB/ceph.sh"
	if ceph_start "$WORK/ceph" >"$WORK/ceph-start.log" 2>&1 &&
		timeout 20 rbd create --size 64M rbd/img >/dev/null 2>&1; then
		expect_fail "krbd map of a missing image fails in rbd's words" 2 \
			"cannot map rbd/nosuch with krbd: rbd: error opening image nosuch: (2) No such file or directory" \
			map --mapper krbd --pool rbd --image nosuch --id admin --conf "$CEPH_CONF" --keyring "$CEPH_KEYRING"
		for mp in krbd nbd; do
			# The test cluster binds msgr2 only: krbd needs an ms_mode for that.
			extra=(--timeout 20)
			[ "$mp" = krbd ] && extra+=(--ms-mode prefer-crc)
			run map --mapper "$mp" --pool rbd --image img --id admin --conf "$CEPH_CONF" \
				--keyring "$CEPH_KEYRING" "${extra[@]}"
			if [ "$RC" -eq 0 ]; then
				MAPPED="$MAPPED $mp:$OUT"
				check "$mp map printed the device it mapped ($OUT)" is_mapped_dev "$OUT"
				expect_ok "$mp unmap of $OUT" unmap --mapper "$mp" "$OUT"
				[ "$RC" -eq 0 ] && MAPPED=${MAPPED% "$mp:$OUT"}
			elif [ "$mp" = krbd ]; then
				check "krbd map where the kernel has no rbd fails in rbd's words: $ERR" \
					one_line_with "cannot map rbd/img with krbd: rbd: " "rbd: map failed: "
			else
				check "nbd map where the kernel has no nbd fails in rbd-nbd's words: $ERR" \
					one_line_with "cannot map rbd/img with nbd: " "rbd-nbd: failed to find unused device"
			fi
		done
	else
		not_ok "a throw-away Ceph cluster for the mapper tests started" "$(tail -n 5 "$WORK/ceph-start.log")"
	fi
	ceph_stop >/dev/null 2>&1
	CEPH_DIR=
else
	not_ok "live mapper tests" "they need ceph-mon, ceph-osd, rbd, rbd-nbd and tests/lib/ceph.sh (tests/deps.sh installs them)"
fi

echo "# mapper tests took $(ms_since "$MAP_T0") ms"
echo "# group mount_helper: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
