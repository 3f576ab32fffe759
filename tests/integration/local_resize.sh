#!/usr/bin/env bash
# tests/integration/local_resize.sh - `ballast resize` of local volumes: a
# sized (xfs) volume grows online while mounted and offline while not, its
# data intact; shrinking, plain directories and bad sizes are refused.
# (xfs: online ext4 growth needs CAP_SYS_RESOURCE, which this machine lacks.)
# Then, on a 100 MiB local root: a sized image is allocated at Create (not
# sparse, and mkfs does not punch it out again), and a Create that does not
# fit is refused and leaves nothing (a sparse image overcommitted the disk
# that holds the catalog: the container got EIO, catalog writes failed).
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/ballastd.sh
. "$HERE/../lib/ballastd.sh"

t_group local_resize
[ "$(id -u)" -eq 0 ] || t_die "must run as root"
ballastd_tmpdir ballast-resize
BD=$T/b

ballastd_start "$BD" || t_die "ballastd did not start"
err() { ballast_call "$1" "$2" | err_of "$1"; }
# size_kib: the mounted file system's size in KiB
size_kib() { df -k --output=size "$BALLAST_STATE/mounts/g1" 2>/dev/null | tail -n 1 | tr -d ' '; }

t_eq "create g1 (xfs, 320M)" "" "$(err VolumeDriver.Create '{"Name":"g1","Opts":{"size":"320M","fstype":"xfs"}}')"
mp=$(ballast_call VolumeDriver.Mount '{"Name":"g1","ID":"i1"}' | jq -r .Mountpoint)
t_match "g1 mounts" '/mounts/g1/data$' "$mp"
echo keep-me >"$mp/f"
before=$(size_kib)
t_eq "ballast resize g1 640M (mounted)" "resized g1 to 640M" "$(ballast_cli resize g1 640M 2>&1)"
after=$(size_kib)
t_match "the mounted file system grew ($before -> $after KiB)" '^[0-9]+$' "$( ((after > before + 250000)) && echo "$after")"
t_eq "the image is 640 MiB" $((640 << 20)) "$(stat -c %s "$BALLAST_STATE/local/.images/g1.img")"
t_eq "ballast inspect shows the new size" $((640 << 20)) "$(ballast_cli inspect g1 --json | jq -r .size_bytes)"
t_eq "the data is intact" keep-me "$(cat "$mp/f" 2>&1)"
t_match "shrinking is refused" 'shrinking is refused' "$(ballast_cli resize g1 400M 2>&1)"
t_eq "Unmount" "" "$(err VolumeDriver.Unmount '{"Name":"g1","ID":"i1"}')"
t_eq "ballast resize g1 1G (not mounted)" "resized g1 to 1G" "$(ballast_cli resize g1 1G 2>&1)"
t_eq "nothing left mounted by the offline resize" "" "$(awk -v d="$T" 'index($2, d) == 1' /proc/mounts)"
mp=$(ballast_call VolumeDriver.Mount '{"Name":"g1","ID":"i2"}' | jq -r .Mountpoint)
t_match "the next mount sees about 1 GiB ($(size_kib) KiB)" '^[0-9]+$' "$( (($(size_kib) > 900000)) && size_kib)"
t_eq "the data is still intact" keep-me "$(cat "$mp/f" 2>&1)"
t_eq "Unmount" "" "$(err VolumeDriver.Unmount '{"Name":"g1","ID":"i2"}')"
t_eq "create p1 (plain)" "" "$(err VolumeDriver.Create '{"Name":"p1"}')"
t_match "a plain directory is refused" 'no size to grow' "$(ballast_cli resize p1 1G 2>&1)"
t_match "a bad size is refused" 'invalid size' "$(ballast_cli resize g1 huge 2>&1)"
t_match "an unknown volume is refused" 'not found' "$(ballast_cli resize nope 1G 2>&1)"
t_ok "ballastd stops on SIGTERM" ballastd_stop

# --- sized images are allocated; what does not fit is refused ------------
# Both checks fail on the old code: the image was sparse (and mkfs's discard
# punched it out: ~5 MiB of 48 allocated), and s2 was made over the limit.
SMALL=$T/small
mkdir -p "$SMALL/state/local" || t_die "cannot make $SMALL"
mount -t tmpfs -o size=100M ballast-test "$SMALL/state/local" || t_die "cannot mount a tmpfs"
ballastd_start "$SMALL" || t_die "ballastd did not start on the small root"
images=$BALLAST_STATE/local/.images
t_eq "create s1 (48M) on a 100M disk" "" "$(err VolumeDriver.Create '{"Name":"s1","Opts":{"size":"48M"}}')"
alloc=$(du -B1M "$images/s1.img" 2>&1 | cut -f1)
t_match "s1's image is allocated, not sparse ($alloc MiB of 48)" '^[0-9]+$' "$( ((alloc >= 48)) && echo "$alloc")"
t_match "create s2 (64M) does not fit: refused, saying why" 'not enough free space' \
	"$(err VolumeDriver.Create '{"Name":"s2","Opts":{"size":"64M"}}')"
t_eq "control: the probe sees s1's image" "s1.img" "$(ls "$images" 2>&1)"
t_eq "no image of s2 is left" "" "$(ls "$images" | grep s2)"
t_eq "s2 is not in the catalog" "s1" "$(ballast_call VolumeDriver.List '{}' | jq -r '.Volumes[].Name' | tr '\n' ' ' | sed 's/ $//')"
mp=$(ballast_call VolumeDriver.Mount '{"Name":"s1","ID":"m1"}' | jq -r .Mountpoint)
t_ok "s1 mounts and takes 32 MiB with fsync" dd if=/dev/zero of="$mp/f" bs=1M count=32 conv=fsync status=none
t_eq "Unmount s1" "" "$(err VolumeDriver.Unmount '{"Name":"s1","ID":"m1"}')"
t_match "ballast resize s1 120M does not fit: refused" 'not enough free space' "$(ballast_cli resize s1 120M 2>&1)"
t_eq "s1's image keeps its size" $((48 << 20)) "$(stat -c %s "$images/s1.img")"
t_ok "ballastd stops on SIGTERM (small root)" ballastd_stop

# --- a state dir reached through a symlink --------------------------------
# Mount targets are compared with the mount table's (resolved) paths: with
# the state dir behind a symlink, the restarted daemon took the live mount
# for gone, dropped its count and left the volume mounted under the
# container with nobody counting it. Fails without resolve_state_dir.
mkdir -p "$T/real" && ln -s "$T/real" "$T/link" || t_die "cannot make the symlink"
ballastd_start "$T/link" || t_die "ballastd did not start behind the symlink"
t_eq "create l1 (sized) behind a symlinked state dir" "" "$(err VolumeDriver.Create '{"Name":"l1","Opts":{"size":"32M"}}')"
mp=$(ballast_call VolumeDriver.Mount '{"Name":"l1","ID":"c1"}' | jq -r .Mountpoint)
t_match "l1 mounts" '/mounts/l1/data$' "$mp"
t_ok "l1 takes a write" sh -c "echo kept >'$mp/f'"
ballastd_kill9
ballastd_start "$T/link" || t_die "ballastd did not restart behind the symlink"
t_eq "after kill -9 and restart, l1's mount is still counted" 1 \
	"$(ballast_call Ballast.Inspect '{"Name":"l1"}' | jq -r '.Volume.mount_count // "no answer"')"
t_eq "... still mounted, its data there" kept "$(cat "$T/real/state/mounts/l1/data/f" 2>&1)"
t_eq "Unmount l1" "" "$(err VolumeDriver.Unmount '{"Name":"l1","ID":"c1"}')"
t_eq "control: then nothing is mounted under the state dir" "" \
	"$(awk -v d="$T/real/state/mounts/" 'index($2, d) == 1' /proc/mounts)"
t_ok "ballastd stops on SIGTERM (symlinked state dir)" ballastd_stop

# --- one deadline per request ---------------------------------------------
# A Mount whose steps together take longer than its deadline (here: a
# mount.ballast 8 s slow at mounting, mount_deadline = 3) fails within the
# deadline, is undone and never counted: dockerd would have given up and
# never unmounted it. Fails without deadline_cap_s (the helper's own 110 s
# bound let the mount finish, 8 s later, counted).
cat >"$T/slow-helper" <<SH
#!/bin/sh
case " \$* " in *" mount "*) sleep 8 ;; esac
exec "$BALLAST_BUILD/mount.ballast" "\$@"
SH
chmod +x "$T/slow-helper"
BALLASTD_HELPER=$T/slow-helper BALLASTD_EXTRA="mount_deadline = 3" ballastd_start "$T/dl" ||
	t_die "ballastd did not start with the slow helper"
t_eq "create d1 (sized; mkfs is not slowed)" "" "$(err VolumeDriver.Create '{"Name":"d1","Opts":{"size":"32M"}}')"
t0=$SECONDS
t_match "a Mount past its deadline fails, saying so" "within [0-9]+ s \(what was left of the request's time\)|time is up|longer than dockerd waits" \
	"$(err VolumeDriver.Mount '{"Name":"d1","ID":"x1"}')"
t_match "... within the deadline, not the helper's 8 s ($((SECONDS - t0)) s)" '^[0-6]$' "$((SECONDS - t0))"
t_eq "... not counted" 0 "$(ballast_call Ballast.Inspect '{"Name":"d1"}' | jq -r '.Volume.mount_count // "no answer"')"
t_eq "... nothing mounted" "" "$(awk -v d="$T/dl/state/mounts/" 'index($2, d) == 1' /proc/mounts)"
t_ok "ballastd stops (slow helper)" ballastd_stop
# Control: with time enough, the same slow Mount succeeds and is counted.
BALLASTD_HELPER=$T/slow-helper BALLASTD_EXTRA="mount_deadline = 30" ballastd_start "$T/dl" ||
	t_die "ballastd did not restart with the slow helper"
t_match "control: with 30 s the slow Mount succeeds" '/mounts/d1/data$' \
	"$(ballast_call VolumeDriver.Mount '{"Name":"d1","ID":"x2"}' | jq -r '.Mountpoint // .Err')"
t_eq "control: ... and is counted" 1 "$(ballast_call Ballast.Inspect '{"Name":"d1"}' | jq -r '.Volume.mount_count // "no answer"')"
t_eq "Unmount d1" "" "$(err VolumeDriver.Unmount '{"Name":"d1","ID":"x2"}')"
t_ok "ballastd stops (deadline tests)" ballastd_stop
