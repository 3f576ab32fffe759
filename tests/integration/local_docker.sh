#!/usr/bin/env bash
# tests/integration/local_docker.sh - the local backend driven by a real dockerd.
#
# Needs root, the packages of tests/deps.sh and a built tree (build/ballastd,
# build/ballast, build/mount.ballast). Starts a private dockerd and ballastd
# under a fresh directory in /tmp; removes it on success, keeps it (and says
# where) on failure.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/dockerd.sh
. "$HERE/../lib/dockerd.sh"
# shellcheck source=../lib/ballastd.sh
. "$HERE/../lib/ballastd.sh"
# shellcheck source=../lib/dbimage.sh
. "$HERE/../lib/dbimage.sh"

t_group local_docker
PLUGIN=ballast

# shellcheck source=../lib/suite.sh
. "$HERE/../lib/suite.sh"
suite_preflight "$PLUGIN" jq losetup curl docker dockerd
suite_dir ballast-it

# ---------------------------------------------------------------- helpers
# (`inspect --json NAME`: the documented `inspect NAME --json` order has its
# own test below, so that a CLI bug there does not hide everything else)
mcount() { ballast_cli inspect --json "$1" | jq -r '.mount_count'; }
mpoint() { ballast_cli inspect --json "$1" | jq -r '.mountpoint'; }
nids() { ballast_cli inspect --json "$1" | jq -r '.mount_ids | length'; }
# run_c VOL CMD...: a throw-away container with VOL at /data
run_c() {
	local v=$1
	shift
	dk run --rm --network none --volume-driver "$PLUGIN" -v "$v:/data" local/busybox "$@"
}
# start_c NAME VOL: a running container (sleep) with VOL at /data
start_c() {
	dk run -d --name "$1" --network none --volume-driver "$PLUGIN" -v "$2:/data" \
		local/busybox sleep 600
}
is_mounted() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; }
mounts_under() { awk -v d="$1" 'index($2, d) == 1 { print $2 }' /proc/mounts; }
loops_of() { losetup -n -j "$1" 2>/dev/null; }

# ---------------------------------------------------------------- setup
SECONDS=0
dockerd_start "$T/d" || t_die "dockerd did not start"
busybox_image || t_die "could not import local/busybox"
ballastd_start "$BD" || t_die "ballastd did not start"
plugin_register "$PLUGIN" "$BALLAST_SOCK" || t_die "could not write the plugin spec"
STATE=$BALLAST_STATE
ROOT=$STATE/local
t_diag "setup took $SECONDS s (dir $T)"

# ------------------------------------------- 1. options, write, read back
t_ok "volume create v1 with uid/gid/mode" \
	dk volume create -d "$PLUGIN" -o uid=999 -o gid=999 -o mode=0700 v1
t_eq "ballast inspect v1 --json (documented argument order)" "v1" \
	"$(ballast_cli inspect v1 --json 2>&1 | jq -r .name 2>&1)"
t_eq "ballast inspect v1 --json shows the options" '{"gid":"999","mode":"0700","uid":"999"}' \
	"$(ballast_cli inspect --json v1 2>&1 | jq -cS .options 2>&1)"
t_ok "container writes a file to v1" \
	run_c v1 sh -c 'echo hello-from-c1 > /data/hello && sync'
t_eq "a later container reads it back" "hello-from-c1" "$(run_c v1 cat /data/hello 2>&1)"
t_eq "volume root is 999:999 mode 700 inside the container" "999:999:700" \
	"$(run_c v1 stat -c %u:%g:%a /data 2>&1)"
t_eq "file is in the volume directory on the host" "hello-from-c1" \
	"$(cat "$ROOT/v1/hello" 2>&1)"
t_wait_eq "v1 mount_count is 0 after the containers exited" 10 0 mcount v1
t_eq "v1 mountpoint is empty when not mounted" "" "$(mpoint v1 2>&1)"

# ----------------------------------- 2. --volumes-from, several containers
t_ok "volume create v2" dk volume create -d "$PLUGIN" v2
if t_ok "c1 runs with v2" start_c c1 v2; then
	t_wait_eq "v2 mount_count 1 (c1)" 10 1 mcount v2
	t_ok "c2 runs with --volumes-from c1" \
		dk run -d --name c2 --network none --volumes-from c1 local/busybox sleep 600
	t_wait_eq "v2 mount_count 2 (c1, c2)" 10 2 mcount v2
	t_ok "c3 runs with -v v2:/data" start_c c3 v2
	t_wait_eq "v2 mount_count 3 (c1, c2, c3)" 10 3 mcount v2
	t_eq "v2 has 3 mount IDs" 3 "$(nids v2 2>&1)"
	mp=$(mpoint v2 2>/dev/null)
	t_match "v2 mountpoint is an absolute path while mounted" '^/' "$mp"
	t_ok "c1 writes to v2" dk exec c1 sh -c 'echo shared > /data/s'
	t_eq "c3 sees what c1 wrote" shared "$(dk exec c3 cat /data/s 2>&1)"
	t_ok "stop c1" dk rm -f c1
	t_wait_eq "v2 mount_count 2 after c1 stopped" 10 2 mcount v2
	t_ne "v2 still mounted after c1 stopped" "" "$(mpoint v2 2>&1)"
	t_ok "stop c2" dk rm -f c2
	t_wait_eq "v2 mount_count 1 after c2 stopped" 10 1 mcount v2
	t_ne "v2 still mounted after c2 stopped" "" "$(mpoint v2 2>&1)"
	t_ok "stop c3" dk rm -f c3
	t_wait_eq "v2 mount_count 0 after the last container stopped" 10 0 mcount v2
	t_eq "v2 has no mount IDs left" 0 "$(nids v2 2>&1)"
	t_eq "v2 mountpoint empty after the last container stopped" "" "$(mpoint v2 2>&1)"
fi

# -------------------------------------- 3. docker cp into a running container
t_ok "volume create v3" dk volume create -d "$PLUGIN" v3
if t_ok "cp1 runs with v3" start_c cp1 v3; then
	t_wait_eq "v3 mount_count 1" 10 1 mcount v3
	printf 'copied-in\n' >"$T/cpfile"
	t_ok "docker cp a file into cp1:/data" dk cp "$T/cpfile" cp1:/data/cpfile
	t_eq "the file is visible in the container" "copied-in" \
		"$(dk exec cp1 cat /data/cpfile 2>&1)"
	t_eq "the file landed in the volume on the host" "copied-in" \
		"$(cat "$ROOT/v3/cpfile" 2>&1)"
	t_ok "docker cp a file out of cp1:/data" dk cp cp1:/data/cpfile "$T/cpout"
	t_eq "the copied-out file has the content" "copied-in" "$(cat "$T/cpout" 2>&1)"
	t_wait_eq "v3 mount_count back to 1 after docker cp" 10 1 mcount v3
	t_ok "stop cp1" dk rm -f cp1
	t_wait_eq "v3 mount_count 0 after cp1 stopped" 10 0 mcount v3
fi

# -------------------------------------------- 4. docker volume ls vs ballast ls
dls=$(dk volume ls --format '{{.Name}}' --filter driver="$PLUGIN" 2>&1 | sort)
bls=$(ballast_cli ls --json 2>&1 | jq -r '.[].name' 2>&1 | sort)
t_eq "docker volume ls and ballast ls list the same volumes" "$dls" "$bls"
t_eq "ballast ls lists v1 v2 v3" "v1 v2 v3" "$(echo "$bls" | tr '\n' ' ' | sed 's/ $//')"

# -------------------------------------------- 5. docker volume inspect Status
st=$(dk volume inspect v1 --format '{{json .Status}}' 2>&1)
t_eq "docker volume inspect shows Status.backend local" "local" \
	"$(jq -r '.backend' <<<"$st" 2>&1)"
t_eq "docker volume inspect shows the driver" "$PLUGIN" \
	"$(dk volume inspect v1 --format '{{.Driver}}' 2>&1)"
created=$(dk volume inspect v1 --format '{{.CreatedAt}}' 2>&1)
t_match "docker volume inspect shows CreatedAt" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$created"

# ---------------------------------- 6. kill -9 of ballastd with a sized volume
K1_IMG=$ROOT/.images/k1.img
K1_MNT=$STATE/mounts/k1
# (a failed create would let `docker run` create k1 implicitly as a plain
# volume: the rest of the section only makes sense after a good create)
if t_ok "volume create k1 size=64M" dk volume create -d "$PLUGIN" -o size=64M k1 &&
	t_ok "k1 image file exists" test -f "$K1_IMG" &&
	t_ok "k1c runs with k1" start_c k1c k1; then
	t_wait_eq "k1 mount_count 1" 10 1 mcount k1
	t_eq "k1 mountpoint is <state>/mounts/k1/data" "$K1_MNT/data" "$(mpoint k1 2>&1)"
	t_ok "k1 filesystem is mounted at <state>/mounts/k1" is_mounted "$K1_MNT"
	t_ne "a loop device backs k1's image" "" "$(loops_of "$K1_IMG")"
	t_ok "k1c writes to k1" dk exec k1c sh -c 'echo before-kill > /data/f && sync'
	ballastd_kill9
	t_ok "ballastd restarts after kill -9" ballastd_start "$BD"
	if ballastd_running; then
		t_eq "k1 mount_count still 1 after the restart" 1 "$(mcount k1 2>&1)"
		t_eq "k1c still reads k1 after the restart" "before-kill" \
			"$(dk exec k1c cat /data/f 2>&1)"
	fi
	t_ok "stop k1c" dk rm -f k1c
	t_wait_eq "k1 mount_count 0 after k1c stopped" 10 0 mcount k1
	t_fail "k1 filesystem no longer mounted" is_mounted "$K1_MNT"
	t_fail "k1 .../data no longer mounted" is_mounted "$K1_MNT/data"
	t_eq "no loop device attached to k1's image" "" "$(loops_of "$K1_IMG")"
	t_eq "k1 data survives (new container)" "before-kill" "$(run_c k1 cat /data/f 2>&1)"
	t_eq "no loop device attached to k1's image after that" "" "$(loops_of "$K1_IMG")"
fi

# ------------------------------------------------------------- 7. sized volume
if t_ok "volume create s1 size=64M" dk volume create -d "$PLUGIN" -o size=64M s1; then
	t_ok "write a small file to s1" run_c s1 sh -c 'echo keep-me > /data/keep && sync'
	dfk=$(run_c s1 df -k /data 2>&1 | awk 'NR == 2 { print $2 }')
	if [[ $dfk =~ ^[0-9]+$ ]] && [ "$dfk" -gt 32768 ] && [ "$dfk" -le 65536 ]; then
		t_pass "s1 filesystem size is about 64 MiB ($dfk KiB)"
	else
		t_failed "s1 filesystem size is about 64 MiB" "df -k size: '$dfk'"
	fi
	out=$(run_c s1 sh -c 'dd if=/dev/zero of=/data/big bs=1M count=100 2>&1; echo "rc=$?"; sync' 2>&1)
	t_match "writing 100 MiB to s1 fails with ENOSPC" 'No space left' "$out"
	t_match "dd exits non-zero" 'rc=[1-9]' "$out"
	t_eq "the small file survives a remount" "keep-me" "$(run_c s1 cat /data/keep 2>&1)"
	t_ok "remove the big file" run_c s1 rm -f /data/big
	t_wait_eq "s1 mount_count 0" 10 0 mcount s1
	t_fail "s1 not mounted" is_mounted "$STATE/mounts/s1"
	t_eq "no loop device on s1's image" "" "$(loops_of "$ROOT/.images/s1.img")"
fi

# ------------------------------------ 7a. a sized volume's image stays whole
# The image is allocated at Create, so that the disk under it cannot be
# overcommitted: a write inside the volume never meets a full disk. ext4
# zeroes the inode tables mkfs left after the first mount (lazy init), and
# through a loop device zeroing punches holes in the image.
blocks_kib() { echo $(($(stat -c '%b * %B' "$1") / 1024)); }
holes() { if [ "$(blocks_kib "$1")" -lt $(($(stat -c %s "$1") / 1024)) ]; then echo yes; else echo no; fi; }
A1_IMG=$ROOT/.images/a1.img
LAZY=$T/lazy.img
# control: an image made as before (lazy inode tables) and mounted by hand
mkdir -p "$T/lazy"
fallocate -l 64M "$LAZY" && mkfs.ext4 -q -E nodiscard "$LAZY" && fallocate -l 64M "$LAZY"
t_eq "control: the probe finds groups left for the lazy init in such an image" yes \
	"$(dumpe2fs "$LAZY" 2>/dev/null | grep '^Group [1-9]' | grep -qv ITABLE_ZEROED && echo yes)"
mount -o loop "$LAZY" "$T/lazy"
t0=$SECONDS
t_wait_eq "control: ext4's lazy init through a loop device punches holes in an image" 30 yes holes "$LAZY"
lazy_s=$((SECONDS - t0))
umount "$T/lazy"
if t_ok "volume create a1 size=64M" dk volume create -d "$PLUGIN" -o size=64M a1; then
	t_eq "a1's image is allocated whole at Create" no "$(holes "$A1_IMG")"
	t_eq "... and mkfs zeroed its inode tables (no group left for the lazy init)" 0 \
		"$(dumpe2fs "$A1_IMG" 2>/dev/null | grep '^Group [1-9]' | grep -vc ITABLE_ZEROED)"
	if t_ok "a1c runs with a1" start_c a1c a1; then
		wait_s=$((lazy_s < 15 ? lazy_s * 2 + 5 : 35))
		sleep "$wait_s"
		t_eq "a1's image is still whole after $wait_s s mounted (the control's holes came in $lazy_s s)" \
			no "$(holes "$A1_IMG")"
		t_ok "the loop mount has noinit_itable" grep -q "$STATE/mounts/a1 ext4 .*noinit_itable" /proc/mounts
		dk rm -f a1c >/dev/null
		t_wait_eq "a1 mount_count 0" 10 0 mcount a1
	fi
	# an image whose inode tables were punched out (as a volume made before
	# the change is): allocated again at Mount
	cp --sparse=always "$LAZY" "$A1_IMG"
	t_eq "control: a1's image now has holes" yes "$(holes "$A1_IMG")"
	t_eq "a1 mounts and is written to" ok "$(run_c a1 sh -c 'echo ok >/data/f && cat /data/f' 2>&1)"
	t_eq "... its image allocated whole again at Mount" no "$(holes "$A1_IMG")"
	t_match "... which ballastd logged" 'volume a1: holes in its image allocated again' \
		"$(grep 'volume a1: holes' "$BALLASTD_DIR/ballastd.log")"
	t_ok "docker volume rm a1" dk volume rm a1
fi

# ------------------------------------------------ 7b. copies: -o from=VOLUME
# Issue 19: a local volume copied whole through dockerd: a SQLite database
# in it, and the copy keeps owners, modes, extended attributes and holes;
# a sized volume's copy is the same size with the same files, its image
# allocated whole; the copy is a volume of its own; a source in use, a
# missing one, a snapshot, size with from: each refused, nothing left.
# rows_c VOL: "COUNT MIN MAX INTEGRITY" of table t, as a container sees VOL
rows_c() { dbimage_rows "$PLUGIN" "$1" dk; }
xattr_of() { python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.ballast").decode())' "$1" 2>&1; }
listed() { ballast_cli ls --json 2>&1 | jq -r --arg n "$1" '.[] | select(.name == $n) | .name'; }
if dbimage_build dk && t_ok "volume create d1 (uid, gid, mode)" dk volume create -d "$PLUGIN" -o uid=999 -o gid=999 -o mode=0750 d1 &&
	t_ok "a database with rows 1..50 in d1" dbimage_sql "$PLUGIN" d1 "CREATE TABLE t(n INTEGER PRIMARY KEY);
		WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 50) INSERT INTO t SELECT n FROM c;" dk; then
	# beside it: a file of another owner and mode, with an extended
	# attribute, and a file with a 64 MiB hole; the root's owner and mode
	# set again (dockerd's copy-up into the empty volume took the image's)
	chown 999:999 "$ROOT/d1" && chmod 0750 "$ROOT/d1"
	echo owned >"$ROOT/d1/owned" && chown 1234:5678 "$ROOT/d1/owned" && chmod 0640 "$ROOT/d1/owned"
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.ballast", b"kept")' "$ROOT/d1/owned"
	truncate -s 64M "$ROOT/d1/sparse" && echo end >>"$ROOT/d1/sparse"
	t_eq "the control: d1's file has its attribute" kept "$(xattr_of "$ROOT/d1/owned")"
	t_ok "docker volume create -o from=d1 d1c" dk volume create -d "$PLUGIN" -o from=d1 d1c
	t_eq "d1c holds d1's database, whole" "50 1 50 ok" "$(rows_c d1c)"
	t_eq "d1c's directory has d1's owner and mode" "999:999 750" "$(stat -c '%u:%g %a' "$ROOT/d1c" 2>&1)"
	t_eq "a file's owner and mode are kept" "1234:5678 640 owned" \
		"$(stat -c '%u:%g %a' "$ROOT/d1c/owned" 2>&1) $(cat "$ROOT/d1c/owned" 2>&1)"
	t_eq "... and its extended attribute" kept "$(xattr_of "$ROOT/d1c/owned")"
	t_eq "the sparse file's size is kept" 67108868 "$(stat -c %s "$ROOT/d1c/sparse" 2>&1)"
	t_ok "... and its hole ($(blocks_kib "$ROOT/d1c/sparse") KiB allocated, < 1024)" \
		test "$(blocks_kib "$ROOT/d1c/sparse")" -lt 1024
	t_eq "ballast ls: d1c has d1's options and its source" '{"from":"d1","gid":"999","mode":"0750","uid":"999"}' \
		"$(ballast_cli ls --json | jq -cS '.[] | select(.name == "d1c") | .options')"
	t_ok "a row written to the copy" dbimage_sql "$PLUGIN" d1c "INSERT INTO t VALUES(51)" dk
	t_eq "... is the copy's alone" "51 1 51 ok / 50 1 50 ok" "$(rows_c d1c) / $(rows_c d1)"
	# refused, and nothing left
	if t_ok "r2 runs with d1" start_c r2 d1; then
		t_match "a copy of a volume in use is refused" 'volume d1 is in use on this host' \
			"$(ballast_call VolumeDriver.Create '{"Name":"dx1","Opts":{"from":"d1"}}' | err_of Create)"
		t_ok "stop r2" dk rm -f r2
	fi
	t_match "a copy of a volume that does not exist" 'from=nosuch: volume nosuch not found' \
		"$(ballast_call VolumeDriver.Create '{"Name":"dx2","Opts":{"from":"nosuch"}}' | err_of Create)"
	t_match "a copy of a snapshot d1 does not have" 'volume d1 has no snapshot s1' \
		"$(ballast_call VolumeDriver.Create '{"Name":"dx3","Opts":{"from":"d1@s1"}}' | err_of Create)"
	t_match "a copy with a size" 'size cannot be given with from=' \
		"$(ballast_call VolumeDriver.Create '{"Name":"dx4","Opts":{"from":"d1","size":"1G"}}' | err_of Create)"
	t_match "a volume copied from itself" 'cannot be copied from itself' \
		"$(ballast_call VolumeDriver.Create '{"Name":"dx5","Opts":{"from":"dx5"}}' | err_of Create)"
	for v in dx1 dx2 dx3 dx4 dx5; do
		t_eq "... nothing of $v left (directory, catalog)" "" \
			"$(ls -d "$ROOT/$v" "$STATE/catalog/$v.json" 2>/dev/null)$(listed "$v")"
	done
	t_ok "docker volume create -o from=s1 s1c (a sized volume)" dk volume create -d "$PLUGIN" -o from=s1 s1c
	t_eq "s1c has s1's file" keep-me "$(run_c s1c cat /data/keep 2>&1)"
	t_eq "s1c's image has s1's size" "$(stat -c %s "$ROOT/.images/s1.img")" "$(stat -c %s "$ROOT/.images/s1c.img" 2>&1)"
	t_ok "... allocated whole ($(blocks_kib "$ROOT/.images/s1c.img") KiB)" \
		test "$(blocks_kib "$ROOT/.images/s1c.img")" -ge $(($(stat -c %s "$ROOT/.images/s1.img") / 1024))
	t_ok "s1c written to" run_c s1c sh -c 'echo copy > /data/keep && sync'
	t_eq "... s1 unchanged" keep-me "$(run_c s1 cat /data/keep 2>&1)"
	t_ok "docker volume rm d1 d1c s1c" dk volume rm d1 d1c s1c
fi
# ------------------------------------ 7c. snapshots of local volumes
# Issue 19: a sized volume's snapshot is a copy of its image taken with its
# file system frozen, while a container commits rows; a volume started
# from it (-o from=VOL@SNAP) has exactly the rows 1..N committed by then,
# and the original, stopped, rolls back to it. A plain directory cannot be
# frozen: its snapshot waits until no container uses it.
z1_acked() { dbimage_acked dbz dk; }
z1_has() { [ "$(z1_acked)" -ge "$1" ] && echo yes || echo no; }
snaps_of() { ballast_cli snapshot ls "$1" --json 2>&1 | jq -r '[.[] | "\(.name):\(.size_bytes)"] | join(" ")' 2>&1; }
if t_ok "volume create z1 size=128M" dk volume create -d "$PLUGIN" -o size=128M z1 &&
	t_ok "table t made in z1" dbimage_sql "$PLUGIN" z1 "CREATE TABLE t(n INTEGER PRIMARY KEY)" dk &&
	t_ok "container dbz commits rows 1, 2, ... to z1" dbimage_writer "$PLUGIN" z1 dbz dk; then
	t_wait_eq "dbz has committed 20 rows" 60 yes z1_has 20
	before=$(z1_acked)
	t_match "ballast snapshot create z1 zs1 while dbz commits" '^z1: took snapshot zs1$' \
		"$(ballast_cli snapshot create z1 zs1 2>&1)"
	sleep 0.5 # the last commit's "ok" through docker logs; a later count only widens the bound
	after=$(z1_acked)
	t_match "the file system was frozen for it (ballastd's log)" 'snapshot zs1 taken \(file system frozen\)' \
		"$(grep 'volume z1: snapshot zs1' "$BALLASTD_DIR/ballastd.log")"
	t_wait_eq "dbz commits on after the snapshot (thawed)" 60 yes z1_has $((after + 20))
	t_eq "snapshot ls z1: zs1, the image's size" "zs1:$(stat -c %s "$ROOT/.images/z1.img")" "$(snaps_of z1)"
	t_eq "ballast ls --json shows z1's snapshot" '["zs1"]' \
		"$(ballast_cli ls --json | jq -c '.[] | select(.name == "z1") | .snapshots')"
	t_eq "... and docker volume inspect (Status)" '["zs1"]' \
		"$(dk volume inspect -f '{{json .Status.snapshots}}' z1 2>&1)"
	t_ok "docker volume create -o from=z1@zs1 z1c, z1 still in use" \
		dk volume create -d "$PLUGIN" -o from=z1@zs1 z1c
	t_eq "docker volume inspect z1c: its parent" z1@zs1 "$(dk volume inspect -f '{{.Status.parent}}' z1c 2>&1)"
	got=$(rows_c z1c)
	read -r cnt lo hi ok <<<"$got"
	t_diag "local snapshot: $before rows acknowledged before it, $after after; the copy has: $got"
	t_ok "z1c has rows 1..N, none missing, and passes integrity_check ($got)" \
		test "${lo:-x}" = 1 -a "${hi:-x}" = "${cnt:-y}" -a "${ok:-x}" = ok
	t_ok "... N is what was committed by the snapshot: $before <= N <= $((after + 1))" \
		test "${cnt:-0}" -ge "$before" -a "${cnt:-0}" -le $((after + 1)) 2>/dev/null
	t_match "rollback while z1 is in use is refused" 'volume z1 is in use on this host' \
		"$(ballast_cli snapshot rollback z1 zs1 2>&1)"
	dk rm -f dbz >/dev/null 2>&1
	t_wait_eq "z1 mount_count 0 once dbz is gone" 10 0 mcount z1
	t_match "rollback z1 (stopped) to zs1" '^z1: rolled back to snapshot zs1$' \
		"$(ballast_cli snapshot rollback z1 zs1 2>&1)"
	t_eq "z1 holds the snapshot's rows again" "$cnt 1 $cnt ok" "$(rows_c z1)"
	t_match "Remove of z1 is refused while it has snapshots, naming them" \
		'volume z1 has 1 snapshot \(zs1\); remove them first' \
		"$(ballast_call VolumeDriver.Remove '{"Name":"z1"}' | err_of Remove)"
	t_match "snapshot rm z1 zs1" '^z1: removed snapshot zs1$' "$(ballast_cli snapshot rm z1 zs1 2>&1)"
	t_eq "... gone from docker volume inspect" '[]' "$(dk volume inspect -f '{{json .Status.snapshots}}' z1 2>&1)"
	t_ok "docker volume rm z1 z1c" dk volume rm z1 z1c
	t_eq "nothing of z1's snapshots left" "" "$(ls -A "$ROOT/.snapshots" 2>&1)"
fi
dk rm -f dbz >/dev/null 2>&1
if t_ok "volume create d2 (a plain directory)" dk volume create -d "$PLUGIN" d2 &&
	t_ok "rows 1..30 in d2" dbimage_sql "$PLUGIN" d2 "CREATE TABLE t(n INTEGER PRIMARY KEY);
		WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 30) INSERT INTO t SELECT n FROM c;" dk; then
	if t_ok "r3 runs with d2" start_c r3 d2; then
		t_match "a snapshot of a plain directory in use is refused" 'cannot be frozen for a snapshot' \
			"$(ballast_cli snapshot create d2 ds1 2>&1)"
		t_eq "... and none was taken" "" "$(snaps_of d2)"
		t_ok "stop r3" dk rm -f r3
		t_wait_eq "d2 mount_count 0" 10 0 mcount d2
	fi
	t_match "ballast snapshot create d2 ds1" '^d2: took snapshot ds1$' "$(ballast_cli snapshot create d2 ds1 2>&1)"
	t_ok "rows 31..40 added to d2" dbimage_sql "$PLUGIN" d2 "WITH RECURSIVE c(n) AS (SELECT 31 UNION ALL SELECT n + 1 FROM c WHERE n < 40) INSERT INTO t SELECT n FROM c;" dk
	t_ok "docker volume create -o from=d2@ds1 d2c" dk volume create -d "$PLUGIN" -o from=d2@ds1 d2c
	t_eq "d2c has the snapshot's rows" "30 1 30 ok" "$(rows_c d2c)"
	t_match "a copy from a snapshot d2 does not have" 'volume d2 has no snapshot nope' \
		"$(ballast_call VolumeDriver.Create '{"Name":"dx6","Opts":{"from":"d2@nope"}}' | err_of Create)"
	t_eq "... nothing of dx6 left" "" "$(ls -d "$ROOT/dx6" "$ROOT/.tmp-dx6" "$STATE/catalog/dx6.json" 2>/dev/null)$(listed dx6)"
	t_match "rollback to a snapshot d2 does not have" 'volume d2 has no snapshot nope' \
		"$(ballast_cli snapshot rollback d2 nope 2>&1)"
	t_eq "d2 has rows 1..40 (the control)" "40 1 40 ok" "$(rows_c d2)"
	t_match "rollback d2 to ds1" '^d2: rolled back to snapshot ds1$' "$(ballast_cli snapshot rollback d2 ds1 2>&1)"
	t_eq "d2 has the snapshot's rows again" "30 1 30 ok" "$(rows_c d2)"
	t_eq "... and nothing of the rollback is left beside it" "" "$(ls -d "$ROOT"/d2.* 2>/dev/null)"
	t_match "ballast snapshot create d2 ds2" '^d2: took snapshot ds2$' "$(ballast_cli snapshot create d2 ds2 2>&1)"
	t_match "docker volume rm d2 is refused, naming both snapshots" \
		'volume d2 has 2 snapshots \(ds1, ds2\); remove them first \(ballast snapshot rm d2 --all\)' \
		"$(dk volume rm d2 2>&1)"
	t_eq "... d2 is still there, with its rows" "30 1 30 ok" "$(rows_c d2)"
	t_eq "--all goes with snapshot rm only" "ballast: --all goes with snapshot rm only" \
		"$(ballast_cli snapshot ls d2 --all 2>&1)"
	t_eq "ballast snapshot rm d2 --all" "d2: removed snapshot ds1|d2: removed snapshot ds2" \
		"$(ballast_cli snapshot rm d2 --all 2>&1 | paste -sd '|')"
	t_eq "... none left" "" "$(snaps_of d2)"
	t_eq "ballast snapshot rm d2 --all, again" "d2: no snapshots" "$(ballast_cli snapshot rm d2 --all 2>&1)"
	t_ok "docker volume rm d2 d2c" dk volume rm d2 d2c
fi

dbimage_cleanup

# ----------------------- 7d. a sized volume's mkfs-options and mount-options
# As for rbd volumes: passed to mkfs and to the mount, both whitelisted by
# mount.ballast; a database's log is fsynced faster with ext4's fast commits.
# (The control is s1, made without them.)
opts_of() { awk -v p="$1" '$2 == p { print $4 }' /proc/mounts; }
features_of() { dumpe2fs -h "$1" 2>/dev/null | sed -n 's/^Filesystem features: *//p'; }
reserved_of() { dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Reserved block count/ { gsub(/ /, "", $2); print $2 }'; }
blocks_of() { dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Block count/ { gsub(/ /, "", $2); print $2 }'; }
if t_ok "volume create f1 size=64M mkfs-options='-O fast_commit -m 1' mount-options=noatime,commit=1" \
	dk volume create -d "$PLUGIN" -o size=64M -o 'mkfs-options=-O fast_commit -m 1' -o mount-options=noatime,commit=1 f1; then
	F1_IMG=$ROOT/.images/f1.img
	t_match "f1's file system has fast_commit" '(^| )fast_commit( |$)' "$(features_of "$F1_IMG")"
	t_fail "control: s1's has not (the probe tells them apart)" grep -qw fast_commit <<<"$(features_of "$ROOT/.images/s1.img")"
	t_match "control: ... though the probe reads s1's features" '(^| )has_journal( |$)' "$(features_of "$ROOT/.images/s1.img")"
	rb=$(reserved_of "$F1_IMG") bc=$(blocks_of "$F1_IMG")
	t_eq "f1 reserves 1% of its blocks (-m 1)" "$((bc / 100))" "$rb"
	t_ok "f1c runs with f1" start_c f1c f1
	t_match "f1 is mounted noatime,commit=1" '(^|,)noatime(,.*)?,commit=1(,|$)' "$(opts_of "$STATE/mounts/f1")"
	t_match "... and nosuid,nodev, always" '(^|,)nosuid,nodev(,|$)' "$(opts_of "$STATE/mounts/f1")"
	if t_ok "s1c runs with s1 (control)" start_c s1c s1; then
		t_match "control: s1's mount options are read" '^rw,' "$(opts_of "$STATE/mounts/s1")"
		t_fail "control: ... and s1 is not noatime" grep -q noatime <<<"$(opts_of "$STATE/mounts/s1")"
		t_ok "stop s1c" dk rm -f s1c
	fi
	t_ok "f1c writes 16 blocks, each fsynced" dk exec f1c sh -c \
		'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do dd if=/dev/zero of=/data/log bs=4k count=1 oflag=append conv=notrunc,fsync 2>/dev/null || exit 1; done'
	t_eq "f1's log has 16 blocks" $((16 * 4096)) "$(dk exec f1c stat -c %s /data/log 2>&1)"
	t_ok "stop f1c" dk rm -f f1c
	t_ok "a copy of f1" dk volume create -d "$PLUGIN" -o from=f1 f1c2
	t_eq "the copy shows f1's options" "-O fast_commit -m 1|noatime,commit=1" \
		"$(ballast_cli inspect --json f1c2 | jq -r '.options | "\(."mkfs-options")|\(."mount-options")"' 2>&1)"
	t_eq "the copy mounts noatime, with f1's log" "$((16 * 4096))" \
		"$(run_c f1c2 sh -c 'grep " /data " /proc/mounts | grep -q noatime && stat -c %s /data/log' 2>&1)"
	t_ok "docker volume rm f1 f1c2" dk volume rm f1 f1c2
fi
# refused at Create, leaving nothing: no image, no record, no mount point
refused_fs() {
	local desc=$1 name=$2 want=$3
	shift 3
	t_match "refused: $desc" "$want" "$(dk volume create -d "$PLUGIN" "$@" "$name" 2>&1)"
	t_fail "... no image of $name left" test -e "$ROOT/.images/$name.img"
	t_fail "... no mount point of $name left" test -e "$STATE/mounts/$name"
	t_fail "... ballast does not know $name" ballast_cli inspect "$name"
}
refused_fs "mount-options not whitelisted" f2 "mount option 'suid' is not allowed" -o size=64M -o mount-options=suid
refused_fs "mkfs-options not whitelisted" f3 "mkfs option '-T' is not allowed" -o size=64M -o 'mkfs-options=-T huge'
refused_fs "mount-options with a shell command" f4 'invalid mount-options "noatime;reboot"' \
	-o size=64M -o 'mount-options=noatime;reboot'
refused_fs "mkfs-options on a plain directory" f5 "option mkfs-options needs option size" -o 'mkfs-options=-m 1'
t_ok "create f6 (sized, the source of a copy)" dk volume create -d "$PLUGIN" -o size=64M f6
refused_fs "mkfs-options on a copy" f7 "mkfs-options cannot be given with from=" -o from=f6 -o 'mkfs-options=-m 1'
refused_fs "a copy given mount-options not whitelisted" f8 "mount option 'nodev' is not allowed" \
	-o from=f6 -o mount-options=nodev
t_ok "docker volume rm f6" dk volume rm f6

# ------------------------------------------------- 8. rm while in use is refused
if t_ok "r1 runs with v1" start_c r1 v1; then
	t_wait_eq "v1 mount_count 1 (r1)" 10 1 mcount v1
	t_fail "docker volume rm v1 refused while in use" dk volume rm v1
	t_ok "v1 still known to docker" dk volume inspect v1
	t_ok "v1 still known to ballast" ballast_cli inspect v1
	t_eq "v1 data intact" "hello-from-c1" "$(dk exec r1 cat /data/hello 2>&1)"
	# dockerd refuses the rm above by itself; ballastd must too, for a
	# Remove that reaches it (another dockerd, a restarted one that lost
	# its references, a client of the socket). make mutants checks it.
	t_match "a Remove sent straight to ballastd while r1 runs: refused" "v1 is in use on this host" \
		"$(ballast_call VolumeDriver.Remove '{"Name":"v1"}' | err_of Remove)"
	t_eq "... v1's data still there" "hello-from-c1" "$(dk exec r1 cat /data/hello 2>&1)"
	t_ok "stop r1" dk rm -f r1
	t_wait_eq "v1 mount_count 0 after r1 stopped" 10 0 mcount v1
fi
t_ok "docker volume rm v1 works once unused" dk volume rm v1
t_eq "ballast ls no longer lists v1" "" \
	"$(ballast_cli ls --json 2>&1 | jq -r '.[] | select(.name == "v1") | .name' 2>&1)"
t_fail "ballast inspect v1 fails" ballast_cli inspect v1
t_fail "v1's directory is gone" test -e "$ROOT/v1"

# ----------------------------------------------------------------- 9. cleanup
for v in k1 s1; do
	if dk volume inspect "$v" >/dev/null 2>&1; then
		t_ok "docker volume rm $v" dk volume rm "$v"
	fi
	t_fail "$v's image file is gone" test -e "$ROOT/.images/$v.img"
	t_fail "$v's mount directory is gone" test -e "$STATE/mounts/$v"
done
t_ok "docker volume rm v2 v3" dk volume rm v2 v3
t_eq "ballast ls is empty" "0" "$(ballast_cli ls --json 2>&1 | jq -r 'length' 2>&1)"
t_ok "ballastd stops on SIGTERM and removes its socket" ballastd_stop
t_ok "dockerd stops" dockerd_stop
t_ok "plugin spec removed" plugin_unregister "$PLUGIN"
t_fail "no $PLUGIN_SPEC_DIR/$PLUGIN.spec" test -e "$PLUGIN_SPEC_DIR/$PLUGIN.spec"
t_eq "no mounts left under $T" "" "$(mounts_under "$T")"
t_eq "no loop devices backed by files under $T" "" \
	"$(losetup -a 2>/dev/null | grep -F "$T")"
t_eq "no processes left that refer to $T" "" "$(pgrep -a -f -- "$T")"
t_diag "total time $SECONDS s"
