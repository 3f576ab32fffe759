#!/usr/bin/env bash
# tests/integration/gluster_crash.sh - kill ballastd (SIGKILL) at each named
# step of the gluster backend's Create, Mount, Unmount and Remove, restart
# it, and check that the operation completed or left nothing that shows,
# that holders and mounts are right, and that the operation then works.
# Real glusterd (tests/lib/gluster.sh), a build with crash points
# (make CRASHPOINTS=1), one ballastd driven through its socket.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/gluster.sh
. "$HERE/../lib/gluster.sh"

t_group gluster_crash
[ "$(id -u)" -eq 0 ] || t_die "must run as root"
gluster_deps || t_die "cannot install GlusterFS"
# shellcheck source=../lib/crashd.sh
. "$HERE/../lib/crashd.sh"
crashd_init ballast-glcrash gluster
cleanup() { crashd_cleanup gluster_stop; }
t_at_exit cleanup

gluster_start "$T/gl" || t_die "gluster did not start"
META=$GLUSTER_DIR/brick/ballast/.ballast
cat >"$T/b.conf" <<CONF
[ballast]
socket = $SOCK
state_dir = $STATE
host_id = crash-host
helper = $CB/mount.ballast
refresh_interval = 1
[gluster]
servers = $GLUSTER_HOST
volume = $GLUSTER_VOLUME
timeout = 10
lease = 6
glusterd_socket = $GLUSTERD_SOCK
CONF

# A directory quota is the limit-set xattr glusterd puts on the brick's
# directory (`quota list` needs an aux mount that a netns server lacks).
has_quota() {
	/usr/bin/python3 -c 'import os, sys; os.getxattr(sys.argv[1], "trusted.glusterfs.quota.limit-set.1")' \
		"$GLUSTER_DIR/brick/ballast/$1" 2>/dev/null
}
EXCL='{"backend":"gluster","exclusive":"true"}'

# ------------------------------------------------------------ Create
for p in create.after-record gluster.create.after-record gluster.create.after-quota; do
	n="c-${p//./-}"
	body="{\"Name\":\"$n\",\"Opts\":{\"backend\":\"gluster\",\"quota\":\"64M\"}}"
	crash "$p" VolumeDriver.Create "$body"
	t_fail "$p: the unfinished volume is not listed" exists "$n"
	t_fail "$p: no catalog record" test -e "$STATE/catalog/$n.json"
	t_eq "$p: the Create can be retried" "" "$(err VolumeDriver.Create "$body")"
	t_ok "$p: the volume then exists" exists "$n"
	t_ok "$p: with its quota" has_quota "$n"
	t_ok "$p: and its facts in Gluster" test -e "$META/$n.json"
done

# ------------------------------------------------------------ Mount (exclusive)
for p in gluster.mount.after-hold gluster.mount.after-mount; do
	n="m-${p//./-}"
	err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$EXCL}" >/dev/null
	crash "$p" VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}"
	t_eq "$p: no mount counted" 0 "$(count "$n")"
	t_fail "$p: no mount left that nobody uses" mounted "$n"
	t_eq "$p: this host mounts it again (its own hold)" "" "$(err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}")"
	t_ok "$p: mounted" mounted "$n"
	t_eq "$p: Unmount" "" "$(err VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id1\"}")"
	t_fail "$p: the hold is released" test -e "$META/$n.holder"
done

# ------------------------------------------------------------ Unmount (exclusive)
n=u-after-umount
err VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":$EXCL}" >/dev/null
err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id1\"}" >/dev/null
crash gluster.unmount.after-umount VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id1\"}"
t_fail "unmount.after-umount: the unmount happened" mounted "$n"
t_eq "unmount.after-umount: the stale count was dropped at start" 0 "$(count "$n")"
t_eq "unmount.after-umount: the volume mounts again" "" "$(err VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"id2\"}")"
t_eq "unmount.after-umount: and unmounts" "" "$(err VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"id2\"}")"
t_fail "unmount.after-umount: the hold is released" test -e "$META/$n.holder"

# ------------------------------------------------------------ Remove
for p in remove.after-record gluster.remove.after-quota gluster.remove.after-move; do
	n="r-${p//./-}"
	body="{\"Name\":\"$n\",\"Opts\":{\"backend\":\"gluster\",\"quota\":\"64M\"}}"
	err VolumeDriver.Create "$body" >/dev/null
	crash "$p" VolumeDriver.Remove "{\"Name\":\"$n\"}"
	# At start, or by the refresh thread if Gluster was slow to answer then.
	t_fail "$p: the volume is not listed" exists "$n"
	t_wait_eq "$p: the remove is finished: its facts are gone from Gluster" 30 gone \
		sh -c "test -e '$META/$n.json' && echo present || echo gone"
	# (a second removal after a crash finds it gone: "No data available")
	t_eq "$p: its quota was removed" "" \
		"$(grep -a "volume $n: quota remove" "$T/log" | grep -v 'No data available')"
	t_eq "$p: the name can be used again" "" "$(err VolumeDriver.Create "$body")"
done
stop
t_eq "no mounts left under the test dir" "" "$(awk -v d="$T/" 'index($2, d) == 1' /proc/mounts)"
