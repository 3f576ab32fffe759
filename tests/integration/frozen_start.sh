#!/usr/bin/env bash
# tests/integration/frozen_start.sh - ballastd starts and answers while its
# clusters hang. Issue 14: a restarted ballastd finished an interrupted rbd
# Remove (and stopped the mapper of an interrupted rbd Create) before it
# opened its socket, so with a slow or hung cluster dockerd saw no plugin
# for up to the cluster timeout plus the mapper's stop bound.
#
# Here an interrupted Remove and an interrupted Create of each shared
# backend (rbd on a real Ceph, gluster on a real Gluster) are left by
# killing ballastd at crash points; then Ceph (mon and OSD) and Gluster
# (glusterd and the brick) are frozen with SIGSTOP and ballastd restarts:
# Activate must answer within 1 s of the start, and Get, List and
# Capabilities each within 1 s. Once the clusters are thawed, the leftovers
# must be finished: the removed volumes gone from the clusters, the mapper
# of the interrupted Create stopped, and both Creates can be retried.
#
# Fails (Activate after about 15 s) when rbd_create_leftovers settles the
# marks before it returns, as it did.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/ceph.sh
. "$HERE/../lib/ceph.sh"
# shellcheck source=../lib/gluster.sh
. "$HERE/../lib/gluster.sh"

t_group frozen_start
[ "$(id -u)" -eq 0 ] || t_die "must run as root"
ceph_deps || t_die "cannot install Ceph"
gluster_deps || t_die "cannot install GlusterFS"
# shellcheck source=../lib/crashd.sh
. "$HERE/../lib/crashd.sh"
crashd_init ballast-frozen rbd
"$CB/ballastd" --list-options | grep -q '^gluster ' || t_die "ballastd was built without the gluster backend"
engines_stop() {
	ceph_thaw
	gluster_thaw
	ceph_stop
	gluster_stop
}
cleanup() {
	stop
	pkill -f -- "ballast-rbd-map.*$T" 2>/dev/null
	crashd_cleanup engines_stop
}
t_at_exit cleanup

ceph_start "$T/ceph" || t_die "ceph did not start"
gluster_start "$T/gl" || t_die "gluster did not start"
cat >"$T/b.conf" <<CONF
[ballast]
socket = $SOCK
state_dir = $STATE
host_id = frozen-host
helper = $CB/mount.ballast
refresh_interval = 2
[rbd]
conf = $CEPH_CONF
user = admin
timeout = 5
[gluster]
servers = $GLUSTER_HOST
volume = $GLUSTER_VOLUME
timeout = 5
lease = 6
glusterd_socket = $GLUSTERD_SOCK
CONF

RBD='{"backend":"rbd","size":"64M"}'
GL='{"backend":"gluster","quota":"64M"}'
BRICK=$GLUSTER_DIR/brick/ballast
mapper_of() { pgrep -f -- "--image $1 .*$T" 2>/dev/null || true; }
image_exists() { timeout 20 rbd info "$1" >/dev/null 2>&1; }
# One request answered within 1 s: curl's own bound, and a JSON body.
quick() {
	local out
	out=$(curl -s --max-time 1 --unix-socket "$SOCK" -X POST -d "$2" "http://b/$1") || {
		echo "no answer from /$1 within 1 s"
		return 1
	}
	jq -e . >/dev/null <<<"$out" || { echo "/$1 answered: $out"; return 1; }
	printf '%s\n' "$out"
}
listed_names() { quick VolumeDriver.List '{}' | jq -r '[.Volumes[].Name] | sort | join(" ")'; }

start || t_die "ballastd did not start"
for v in r-ok r-rm; do
	t_eq "rbd volume $v made" "" "$(err VolumeDriver.Create "{\"Name\":\"$v\",\"Opts\":$RBD}")"
done
for v in g-ok g-rm; do
	t_eq "gluster volume $v made" "" "$(err VolumeDriver.Create "{\"Name\":\"$v\",\"Opts\":$GL}")"
done
t_eq "local volume l-ok made" "" "$(err VolumeDriver.Create '{"Name":"l-ok"}')"

# The interrupted operations, each killed at its crash point and not
# restarted: a restart would finish the earlier ones at once (the clusters
# answer now). A record of an interrupted Remove is kept aside while the
# later crashes are made and put back after: the state of a host where
# all four were interrupted.
crash_only() {
	start "$1" || t_die "ballastd did not start"
	call "$2" "$3" >/dev/null 2>&1
	t_ok "$1: the daemon died at the crash point" died
}
mkdir -p "$T/aside"
crash_only gluster.create.after-quota VolumeDriver.Create "{\"Name\":\"g-cr\",\"Opts\":$GL}"
for v in r-rm g-rm; do
	crash_only remove.after-record VolumeDriver.Remove "{\"Name\":\"$v\"}"
	t_eq "$v: recorded as being removed" removing "$(jq -r .state "$STATE/catalog/$v.json")"
	mv "$STATE/catalog/$v.json" "$T/aside/"
done
crash_only rbd.create.after-map VolumeDriver.Create "{\"Name\":\"r-cr\",\"Opts\":$RBD}"
mv "$T/aside/"*.json "$STATE/catalog/"
t_ne "the interrupted rbd Create left its mapper running (the control of 'stopped')" "" "$(mapper_of r-cr)"
t_ok "and its mark" test -e "$STATE/rbd/r-cr.creating"
t_ok "the removed rbd image is still in the cluster (the control of 'gone')" image_exists r-rm
t_ok "the removed gluster directory is still on the brick (the control of 'gone')" test -d "$BRICK/g-rm"

# ------------------------------------------------------------ frozen
ceph_freeze
gluster_freeze
t_fail "Ceph is frozen: rbd ls gets no answer in 5 s" timeout 5 rbd ls
t_fail "Gluster is frozen: the CLI gets no answer" gluster_cli volume info

t0=$(_gl_ms)
start || t_failed "ballastd did not answer Activate within 5 s with the clusters frozen"
ms=$(($(_gl_ms) - t0))
t_diag "start to the first Activate answer: $ms ms"
t_ok "Activate answered within 1 s of the start (${ms} ms)" test "$ms" -le 1000
for v in r-ok g-ok l-ok; do
	t_ok "Get $v answered within 1 s" quick VolumeDriver.Get "{\"Name\":\"$v\"}"
	t_eq "Get $v: the volume" "$v" "$(quick VolumeDriver.Get "{\"Name\":\"$v\"}" | jq -r '.Volume.Name' 2>/dev/null)"
done
t_ok "Get of the volume being removed answered within 1 s" quick VolumeDriver.Get '{"Name":"r-rm"}'
t_ok "List answered within 1 s" quick VolumeDriver.List '{}'
t_match "List shows the ready volumes" '^g-ok l-ok r-ok$' "$(listed_names)"
t_ok "Capabilities answered within 1 s" quick VolumeDriver.Capabilities '{}'
# A Get of a name this host does not know asks the shared backends (a
# volume another host made a moment ago); one that cannot answer is not
# asked again for 5 s: every such Get would wait its whole timeout.
get_unknown() { # NAME: prints "MS ERR"
	local t0 out
	t0=$(_gl_ms)
	out=$(curl -s --max-time 30 --unix-socket "$SOCK" -X POST -d "{\"Name\":\"$1\"}" http://b/VolumeDriver.Get)
	printf '%s %s\n' "$(($(_gl_ms) - t0))" "$(err_of VolumeDriver.Get <<<"$out")"
}
read -r ms e <<<"$(get_unknown nowhere-1)"
t_diag "Get of an unknown name with the clusters frozen: $ms ms: $e"
t_match "Get of an unknown name: refused, naming the backend that cannot answer" 'backend rbd cannot tell' "$e"
t_ok "within the backend's timeout (5 s) and a margin (${ms} ms)" test "$ms" -le 8000
read -r ms e <<<"$(get_unknown nowhere-2)"
t_diag "the next one: $ms ms: $e"
t_match "the next one: the same refusal, from memory" "no lookup for 5 s after one failed [0-9]+ s ago: " "$e"
t_ok "the next one answered within 1 s (${ms} ms)" test "$ms" -le 1000
t_ok "ballastd lives" kill -0 "$PID"

# ------------------------------------------------------------ thawed
ceph_thaw
gluster_thaw
t_ok "Ceph answers again" timeout 20 rbd ls
gone_image() { if image_exists "$1"; then echo present; else echo gone; fi; }
gone_dir() { if [ -e "$BRICK/$1" ]; then echo present; else echo gone; fi; }
t_wait_eq "the interrupted rbd Remove is finished: the image is gone" 90 gone gone_image r-rm
t_ok "while the other image is there" image_exists r-ok
t_wait_eq "the interrupted gluster Remove is finished: the directory is gone" 90 gone gone_dir g-rm
t_ok "while the other directory is there" test -d "$BRICK/g-ok"
t_wait_eq "the mapper of the interrupted rbd Create is stopped" 60 "" mapper_of r-cr
t_fail "and its mark is gone" test -e "$STATE/rbd/r-cr.creating"
t_eq "the rbd Create can be retried" "" "$(err VolumeDriver.Create "{\"Name\":\"r-cr\",\"Opts\":$RBD}")" ||
	t_diag "$({
		set -x
		timeout 20 rbd status r-cr
		timeout 20 rbd lock ls r-cr
		time timeout 20 rbd info r-cr
		timeout 20 ceph osd blocklist ls
		timeout 20 ceph daemon "$CEPH_DIR/run/ceph-osd.0.asok" dump_ops_in_flight
		timeout 20 ceph daemon "$CEPH_DIR/run/ceph-osd.0.asok" dump_historic_ops
	} 2>&1 | head -150)"
t_eq "the gluster Create can be retried" "" "$(err VolumeDriver.Create "{\"Name\":\"g-cr\",\"Opts\":$GL}")"
t_eq "rbd mounts" "" "$(err VolumeDriver.Mount '{"Name":"r-cr","ID":"i1"}')"
t_eq "and unmounts" "" "$(err VolumeDriver.Unmount '{"Name":"r-cr","ID":"i1"}')"
t_wait_eq "no mapper left" 15 "" mapper_of r-cr
t_match "List shows every volume" '^g-cr g-ok l-ok r-cr r-ok$' "$(listed_names)"
t_wait_eq "a Get of an unknown name is answered as plain not found once the clusters answer" 30 \
	"volume nowhere-3 not found" err VolumeDriver.Get '{"Name":"nowhere-3"}'
