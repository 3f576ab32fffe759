#!/usr/bin/env bash
# tests/integration/crash_points.sh - kill ballastd (SIGKILL, as kill -9)
# at every named step of Create, Mount, Unmount and Remove of the local
# backend, restart it, and check that the operation either completed or
# left nothing behind, that mount counts match the mount table, and that
# the operation (or the next one) then works. Uses a build with the crash
# points compiled in (make CRASHPOINTS=1).
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"

t_group crash_points
[ "$(id -u)" -eq 0 ] || t_die "must run as root"
# shellcheck source=../lib/crashd.sh
. "$HERE/../lib/crashd.sh"
crashd_init ballast-crash
printf '[ballast]\nsocket = %s\nstate_dir = %s\nhelper = %s\n' "$SOCK" "$STATE" "$CB/mount.ballast" >"$T/b.conf"
cleanup() { crashd_cleanup; }
t_at_exit cleanup
loops() { losetup -n -j "$STATE/local/.images/$1.img" 2>/dev/null; }

SIZED='{"size":"32M"}'
PLAIN='{"mode":"0750"}'

# ------------------------------------------------------------ Create
for kind in plain sized; do
	opts=$PLAIN
	[ $kind = sized ] && opts=$SIZED
	points="create.after-record create.after-backend"
	[ $kind = sized ] && points="$points local.create.after-image local.create.after-mkfs"
	for p in $points; do
		n="c-$kind-${p//./-}"
		crash "$p" VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$opts}"
		t_ok "$p ($kind): the unfinished volume is not listed" unlisted "$n"
		t_fail "$p ($kind): its directory is gone" test -e "$STATE/local/$n"
		t_fail "$p ($kind): its image is gone" test -e "$STATE/local/.images/$n.img"
		t_fail "$p ($kind): its catalog record is gone" test -e "$STATE/catalog/$n.json"
		t_eq "$p ($kind): the Create can be retried" "" "$(err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$opts}")"
		t_ok "$p ($kind): and the volume then exists" exists "$n"
	done
	n="c-$kind-after-commit"
	crash create.after-commit VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$opts}"
	t_ok "create.after-commit ($kind): the volume exists" exists "$n"
	t_eq "create.after-commit ($kind): the retried Create succeeds" "" \
		"$(err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$opts}")"
done

# ------------------------------------------------------------ Mount
for p in mount.after-backend local.mount.after-mount; do
	n="m-${p//./-}"
	err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$SIZED}" >/dev/null
	crash "$p" VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}"
	t_eq "$p: no mount counted" 0 "$(count "$n")"
	t_fail "$p: the mount no container uses was undone" mounted "$n"
	t_eq "$p: no loop device left" "" "$(loops "$n")"
	t_eq "$p: the Mount can be retried" "" "$(err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}")"
	t_eq "$p: then counted once" 1 "$(count "$n")"
	t_ok "$p: and mounted" mounted "$n"
	t_ok "$p: with its data directory" test -d "$STATE/mounts/$n/data"
	t_eq "$p: Unmount works" "" "$(err VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id1\"}")"
	t_fail "$p: unmounted at the end" mounted "$n"
done
# mount.ballast killed right after it mounted (before it reported): the
# Mount fails and leaves no mount behind (issue 15, item 8)
n=m-mb-after-mount
err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$SIZED}" >/dev/null
start mb.mount.after-mount || t_die "ballastd did not start"
e=$(err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}")
t_nomatch "mb.mount.after-mount: the Mount is answered" "^NO (ANSWER|Err)" "$e"
t_ne "mb.mount.after-mount: ... with an error" "" "$e"
t_eq "mb.mount.after-mount: no mount counted" 0 "$(count "$n")"
t_fail "mb.mount.after-mount: nothing left mounted" mounted "$n"
t_eq "mb.mount.after-mount: no loop device left" "" "$(loops "$n")"
start || t_die "ballastd did not restart"
t_eq "mb.mount.after-mount: the Mount again works" "" "$(err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}")"
t_eq "mb.mount.after-mount: Unmount works" "" "$(err VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id1\"}")"
n=m-after-commit
err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$SIZED}" >/dev/null
crash mount.after-commit VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}"
t_eq "mount.after-commit: the mount is counted" 1 "$(count "$n")"
t_ok "mount.after-commit: and still mounted" mounted "$n"
t_eq "mount.after-commit: Unmount works" "" "$(err VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id1\"}")"
t_fail "mount.after-commit: then unmounted" mounted "$n"
t_eq "mount.after-commit: no loop device left" "" "$(loops "$n")"

# ------------------------------------------------------------ Unmount
n=u-before
err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$SIZED}" >/dev/null
err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}" >/dev/null
crash unmount.before-backend VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id1\"}"
t_eq "unmount.before-backend: nothing happened: still counted" 1 "$(count "$n")"
t_ok "unmount.before-backend: and still mounted" mounted "$n"
t_eq "unmount.before-backend: the Unmount can be retried" "" \
	"$(err VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id1\"}")"
t_fail "unmount.before-backend: then unmounted" mounted "$n"
t_eq "unmount.before-backend: count 0" 0 "$(count "$n")"
n=u-after
err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$SIZED}" >/dev/null
err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}" >/dev/null
crash unmount.after-backend VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id1\"}"
t_fail "unmount.after-backend: the unmount completed" mounted "$n"
t_eq "unmount.after-backend: the stale count was dropped at start" 0 "$(count "$n")"
t_eq "unmount.after-backend: no loop device left" "" "$(loops "$n")"
t_eq "unmount.after-backend: the volume mounts again" "" "$(err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id2\"}")"
t_eq "unmount.after-backend: and unmounts" "" "$(err VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id2\"}")"

# ------------------------------------------------------------ Remove
for kind in plain sized; do
	opts=$PLAIN
	[ $kind = sized ] && opts=$SIZED
	for p in remove.after-record remove.after-backend; do
		n="r-$kind-${p//./-}"
		err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$opts}" >/dev/null
		crash "$p" VolumeDriver.Remove "{\"Name\":\"$n\"}"
		t_match "$p ($kind): the remove was finished at start" "volume $n not found" "$(err VolumeDriver.Get "{\"Name\":\"$n\"}")"
		t_fail "$p ($kind): its directory is gone" test -e "$STATE/local/$n"
		t_fail "$p ($kind): its image is gone" test -e "$STATE/local/.images/$n.img"
		t_fail "$p ($kind): its catalog record is gone" test -e "$STATE/catalog/$n.json"
		t_eq "$p ($kind): the name can be used again" "" "$(err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$opts}")"
	done
done

# ------------------------------------------------------ Copy and Snapshot
# Issue 19: a copy (-o from=) killed after cp, before the rename that puts
# it in place: rolled back at start, nothing of it left, and the Create
# works then. A snapshot of a mounted sized volume killed with its file
# system frozen: thawed within 10 s (mount.ballast freeze sees its stdin
# close), no snapshot left, and the snapshot works then.
for kind in plain sized; do
	opts=$PLAIN
	[ $kind = sized ] && opts=$SIZED
	src="cp-src-$kind" n="cp-$kind"
	err VolumeDriver.Create "{\"Name\":\"$src\",\"Opts\":$opts}" >/dev/null
	body="{\"Name\":\"$n\",\"Opts\":{\"from\":\"$src\"}}"
	crash local.copy.after-copy VolumeDriver.Create "$body"
	t_ok "copy.after-copy ($kind): the unfinished copy is not listed" unlisted "$n"
	t_eq "copy.after-copy ($kind): nothing of it left (directory, image, temporary copy, record)" "" \
		"$(ls -d "$STATE/local/$n" "$STATE/local/.tmp-$n" "$STATE/local/.images/$n.img" \
			"$STATE/local/.images/.tmp-$n.img" "$STATE/catalog/$n.json" 2>/dev/null)"
	t_eq "copy.after-copy ($kind): the Create can be retried" "" "$(err VolumeDriver.Create "$body")"
	t_ok "copy.after-copy ($kind): and the copy then exists" exists "$n"
done
n=cp-src-sized
t_eq "snapshot: $n mounted" "" "$(err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"s1\"}")"
mp=$STATE/mounts/$n
writes() { timeout "$1" sh -c "echo x > '$mp/data/probe' && sync" 2>/dev/null && echo yes || echo no; }
t_eq "snapshot: the file system takes a write (before)" yes "$(writes 10)"
crash local.snapshot.after-freeze Ballast.Snapshot "{\"Name\":\"$n\",\"Snapshot\":\"x1\"}"
t_eq "snapshot.after-freeze: the file system is thawed (a write within 10 s)" yes "$(writes 10)"
t_eq "snapshot.after-freeze: no snapshot left" "" "$(ls -A "$STATE/local/.snapshots/$n" 2>/dev/null)"
t_eq "snapshot.after-freeze: the snapshot again" "" "$(err Ballast.Snapshot "{\"Name\":\"$n\",\"Snapshot\":\"x1\"}")"
t_eq "snapshot.after-freeze: taken" x1.img "$(ls -A "$STATE/local/.snapshots/$n" 2>/dev/null)"
t_eq "snapshot: Unmount" "" "$(err VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"s1\"}")"

# ------------------------------------------------------------ Reboot
# A daemon killed during start-up recovery after a reboot must still see
# the reboot at its next start: the boot ID is recorded only once recovery
# is done. Fails when it is recorded first (the next start then kept mount
# counts of containers the reboot ended).
t_eq "reboot: boot1 is made" "" "$(err VolumeDriver.Create '{"Name":"boot1"}')"
t_eq "reboot: boot1 mounts" "" "$(err VolumeDriver.Mount '{"Name":"boot1","ID":"b1"}')"
stop
OLDBOOT=00000000-0000-0000-0000-000000000000
echo "$OLDBOOT" >"$STATE/boot_id" # as the last boot left it
start recover.after-volume || true
t_ok "reboot: ballastd killed during recovery" died
t_eq "reboot: the old boot ID is still recorded" "$OLDBOOT" "$(cat "$STATE/boot_id")"
start || t_die "ballastd did not restart"
t_eq "reboot: the next start sees the reboot: boot1's mount count is reset" 0 "$(count boot1)"
t_eq "control: ... and now this boot's ID is recorded" "$(cat /proc/sys/kernel/random/boot_id)" \
	"$(cat "$STATE/boot_id")"

# ------------------------------------------------------------ Start
# ballastd answers Activate while its catalog is still loading (dockerd
# backs off for 1 s or more when a plugin's socket refuses it), and every
# request that reads the catalog waits for the load and recovery, within
# its deadline. Held at the pause point catalog.load: fails when the
# socket is opened only after the load (Activate unanswered).
t_eq "start: st1 is made" "" "$(err VolumeDriver.Create '{"Name":"st1"}')"
t_eq "start: st1 mounts" "" "$(err VolumeDriver.Mount '{"Name":"st1","ID":"s1"}')"
stop
: >"$T/pause"
BALLAST_PAUSE_AT=catalog.load BALLAST_PAUSE_FILE=$T/pause start
t_eq "start: Activate is answered while the catalog load is held" 0 $?
t_wait_eq "start: the load is held (the log says so)" 10 1 grep -c 'pause point catalog.load reached' "$T/log"
curl -s --max-time 30 --unix-socket "$SOCK" -X POST -d '{"Name":"st1"}' http://b/VolumeDriver.Get >"$T/get" &
GETPID=$!
curl -s --max-time 30 --unix-socket "$SOCK" -X POST -d '{}' http://b/VolumeDriver.List >"$T/list" &
LISTPID=$!
sleep 1
t_ok "start: Get waits for the catalog" kill -0 "$GETPID"
t_ok "start: List waits for the catalog" kill -0 "$LISTPID"
t_eq "start: ... and neither has an answer yet" "" "$(cat "$T/get" "$T/list")"
t_eq "start: Capabilities is answered meanwhile" local \
	"$(call VolumeDriver.Capabilities '{}' | jq -r .Capabilities.Scope)"
rm -f "$T/pause"
# answer FILE FILTER: FILTER applied to the answer kept in FILE
answer() { if [ -s "$1" ]; then jq -r "$2" "$1" 2>&1; else echo "NO ANSWER"; fi; }
wait "$GETPID"
t_eq "start: then Get is answered, with st1" st1 "$(answer "$T/get" .Volume.Name)"
wait "$LISTPID"
t_eq "start: and List, with st1" st1 "$(answer "$T/list" '.Volumes[].Name | select(. == "st1")')"
t_eq "start: st1's mount was kept" 1 "$(count st1)"
# bounded: a load that outlasts a request's deadline answers it with why
cp "$T/b.conf" "$T/b.conf.keep"
printf 'request_deadline = 2\n' >>"$T/b.conf"
stop
: >"$T/pause"
BALLAST_PAUSE_AT=catalog.load BALLAST_PAUSE_FILE=$T/pause start || t_die "ballastd did not answer Activate"
t0=$(date +%s%N)
e=$(call VolumeDriver.Get '{"Name":"st1"}' | err_of VolumeDriver.Get)
t1=$(date +%s%N)
t_match "start: a Get that waited its deadline is answered with why" "still loading its catalog" "$e"
t_ok "start: ... after its deadline (2 s), not before" test $(((t1 - t0) / 1000000)) -ge 1950
rm -f "$T/pause"
mv "$T/b.conf.keep" "$T/b.conf"
start || t_die "ballastd did not restart"
t_eq "start: st1 unmounts" "" "$(err VolumeDriver.Unmount '{"Name":"st1","ID":"s1"}')"

stop
t_eq "no mounts left under the test dir" "" "$(awk -v d="$T" 'index($2, d) == 1' /proc/mounts)"
