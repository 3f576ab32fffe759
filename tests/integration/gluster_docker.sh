#!/usr/bin/env bash
# tests/integration/gluster_docker.sh - the gluster backend against a real
# GlusterFS, a real dockerd and two simulated hosts.
#
# Needs root, the packages of tests/deps.sh plus GlusterFS (installed here
# through gluster_deps) and a ballastd built with the gluster backend.
# Starts, under a fresh directory in /tmp: a glusterd with volume gv0 in the
# network namespace of tests/lib/gluster.sh, a private dockerd, and two
# ballastds ("host-a", registered with dockerd, and "host-b", driven
# through its socket) with their own state directories and host IDs,
# sharing gv0. Everything is removed at the end; the directory is kept (and
# named) on failure.
#
# Environment: BALLASTD (default $BALLAST_BUILD/ballastd) and BALLAST_HELPER
# (default $BALLAST_BUILD/mount.ballast) pick the binaries under test.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/dockerd.sh
. "$HERE/../lib/dockerd.sh"
# shellcheck source=../lib/ballastd.sh
. "$HERE/../lib/ballastd.sh"
# shellcheck source=../lib/gluster.sh
. "$HERE/../lib/gluster.sh"

t_group gluster_docker
PLUGIN=ballastgl
TIMEOUT=5 # [gluster] timeout of both daemons
LEASE=6   # [gluster] lease
BOUND=$((TIMEOUT + 5))
BALLASTD=${BALLASTD:-$BALLAST_BUILD/ballastd}
BALLAST_HELPER=${BALLAST_HELPER:-$BALLAST_BUILD/mount.ballast}
SUITE_T0=${EPOCHREALTIME/./}

[ "$(id -u)" -eq 0 ] || t_die "must run as root"
for c in jq curl docker dockerd ip; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done
for b in "$BALLASTD" "$BALLAST_HELPER"; do
	[ -x "$b" ] || t_die "$b missing: run make"
done
gluster_deps || t_die "cannot install GlusterFS"

T=$(mktemp -d /tmp/bgl.XXXXXX)
declare -A BD_PID=()

ms_since() { echo $(((${EPOCHREALTIME/./} - $1) / 1000)); }

# The daemon of host NAME: config, state and socket under $T/NAME.
gd_start() {
	local n=$1 d=$T/$1 i
	mkdir -p "$d"
	cat >"$d/ballast.conf" <<-EOF
		[ballast]
		socket = $d/ballast.sock
		state_dir = $d/state
		host_id = host-$n
		helper = $BALLAST_HELPER
		log_level = debug
		refresh_interval = 2
		metrics = unix:$d/metrics.sock
		[gluster]
		servers = $GLUSTER_HOST
		volume = $GLUSTER_VOLUME
		dir = /ballast
		timeout = $TIMEOUT
		lease = $LEASE
		glusterd_socket = $GLUSTERD_SOCK
		log = $d/gfapi.log
	EOF
	# gfapi's own allocations that a closing handle still holds at exit
	printf 'leak:libglusterfs.so\nleak:libgfapi.so\n' >"$T/lsan.supp"
	# Run through a link of another name: a `pkill ballastd` of some other
	# suite on the same machine must not take our hosts down mid-test.
	ln -sf "$BALLASTD" "$T/bglhost-$n"
	LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$T/lsan.supp:print_suppressions=0" \
		"$T/bglhost-$n" --config "$d/ballast.conf" \
		>>"$d/ballastd.log" 2>&1 </dev/null &
	BD_PID[$n]=$!
	i=$((SECONDS + 10)) # 10 s in all, whatever each try costs
	while [ "$SECONDS" -le "$i" ]; do
		if ! kill -0 "${BD_PID[$n]}" 2>/dev/null; then
			tail -n 20 "$d/ballastd.log" | sed 's/^/#   /'
			return 1
		fi
		[[ $(curl -s --max-time 2 --unix-socket "$T/$n/ballast.sock" -X POST http://ballast/Plugin.Activate) == \
			*VolumeDriver* ]] && served "$T/$n/ballast.sock" && return 0
		sleep 0.1
	done
	return 1
}

gd_stop() {
	local n=$1 pid=${BD_PID[$1]:-} i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null && printf '# ballastd of %s needed SIGKILL\n' "$n"
	wait "$pid" 2>/dev/null
	local rc=$?
	BD_PID[$n]=""
	return $rc
}

# gcall HOST METHOD JSON: POST to that host's ballastd, print the body.
gcall() {
	curl -s --max-time 60 --unix-socket "$T/$1/ballast.sock" -X POST --data-binary "$3" \
		"http://ballast/$2"
}

gerr() { gcall "$@" | err_of "$2"; }

# Every glusterfs mount of a host's ballastd.
host_mounts() {
	awk -v d="$T/$1/state/mounts/" 'index($2, d) == 1 { print $2 }' /proc/mounts
}

# suid_dev_opts MOUNTPOINT: "nosuid=yes|no nodev=yes|no" from the options
# of that mount in /proc/mounts ("none" when nothing is mounted there).
suid_dev_opts() {
	awk -v mp="$1" '$2 == mp { o = "," $4 ","; found = 1 }
		END {
			if (!found) { print "none"; exit }
			printf "nosuid=%s nodev=%s\n", index(o, ",nosuid,") ? "yes" : "no", index(o, ",nodev,") ? "yes" : "no"
		}' /proc/mounts
}

BRICK_ROOT="" # set once gluster runs
in_gluster() { [ -e "$BRICK_ROOT/$1" ]; }

final_cleanup() {
	local n mp
	dockerd_cleanup
	for n in a b; do
		gd_stop "$n" || true
	done
	# mounts the daemons left (a failed test): unmount them here, before
	# the server goes away
	awk -v d="$T/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while IFS= read -r mp; do umount -c "$mp" 2>/dev/null || umount -c -l "$mp" 2>/dev/null; done
	gluster_stop || true
	if [ "$TAP_FAIL" -eq 0 ] && [ -z "$(dockerd_leftovers "$T")" ]; then
		rm -rf "$T"
	else
		printf '# test directory kept: %s\n' "$T"
		for n in a b; do
			if [ -f "$T/$n/ballastd.log" ]; then
				printf '# last lines of the log of host-%s:\n' "$n"
				tail -n 30 "$T/$n/ballastd.log" | sed 's/^/#   /'
			fi
		done
	fi
}
t_at_exit final_cleanup
dockerd_trap

# --- setup --------------------------------------------------------------------
t0=${EPOCHREALTIME/./}
gluster_start "$T/gl" || t_die "glusterd did not start"
t_diag "gluster up in ${GL_START_MS} ms (volume $GLUSTER_VOLUME at $GLUSTER_HOST)"
BRICK_ROOT=$GLUSTER_DIR/brick/ballast
gd_start a || t_die "ballastd of host-a did not start"
gd_start b || t_die "ballastd of host-b did not start"
if ! gcall a Ballast.Version '{}' | jq -e '.Backends | index("gluster")' >/dev/null; then
	t_die "$BALLASTD has no gluster backend (build with -DHAVE_GLUSTER and glusterfs-api)"
fi
t_eq "Capabilities: scope is global" global "$(gcall a VolumeDriver.Capabilities '{}' | jq -r .Capabilities.Scope)"

dockerd_start "$T/d" || t_die "dockerd did not start"
# Our own busybox image: tests/lib/dockerd.sh's local/busybox has a 0700
# root directory (mktemp -d), in which a container run as uid 1000 cannot
# exec anything.
BB=local/busybox-gl
r=$T/bbroot
# shellcheck disable=SC2015 # any failing step dies
mkdir -p "$r/bin" "$r/tmp" "$r/etc" && chmod 0755 "$r" && chmod 1777 "$r/tmp" &&
	cp /bin/busybox "$r/bin/busybox" || t_die "cannot prepare $BB"
for cmd in sh cat echo id stat dd sync ls; do ln -s busybox "$r/bin/$cmd"; done
tar -C "$r" -c . | dk import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' - "$BB" >/dev/null ||
	t_die "docker import of $BB failed"
rm -rf "$r"
plugin_register "$PLUGIN" "$T/a/ballast.sock" || t_die "cannot register the plugin"
t_diag "setup took $(ms_since "$t0") ms"

# --- create through dockerd; one container writes, another reads ---------------
t0=${EPOCHREALTIME/./}
t_ok "docker volume create -o backend=gluster uid/gid/mode" \
	dk volume create -d "$PLUGIN" -o backend=gluster -o uid=1000 -o gid=1000 -o mode=0750 gdv
t_eq "docker volume inspect: scope global" global "$(dk volume inspect -f '{{.Scope}}' gdv 2>&1)"
t_ok "the volume is a directory in the Gluster volume" in_gluster gdv
t_ok "its facts are stored in Gluster" in_gluster .ballast/gdv.json
t_eq "owner and mode in Gluster" "1000:1000 750" "$(stat -c '%u:%g %a' "$BRICK_ROOT/gdv")"
t_ok "container (uid 1000) writes" \
	dk run --rm --network none --user 1000:1000 -v gdv:/data "$BB" \
	sh -c 'echo written-by-one > /data/f && stat -c "%u:%g %a" /data'
t_eq "another container reads it" written-by-one \
	"$(dk run --rm --network none -v gdv:/data "$BB" cat /data/f 2>&1)"
t_eq "the data is in Gluster" written-by-one "$(cat "$BRICK_ROOT/gdv/f" 2>&1)"
t_diag "docker create + two runs: $(ms_since "$t0") ms"
t_eq "no mount left after the containers" "" "$(host_mounts a)"

# --- two hosts at once --------------------------------------------------------------
opts='{"backend":"gluster","mode":"0777"}'
t0=${EPOCHREALTIME/./}
t_eq "A: create shared" "" "$(gerr a VolumeDriver.Create "{\"Name\":\"shared\",\"Opts\":$opts}")"
mpa=$(gcall a VolumeDriver.Mount '{"Name":"shared","ID":"a1"}' | jq -r .Mountpoint)
CREATE_MOUNT_MS=$(ms_since "$t0")
t_diag "create + mount latency (host-a, API): ${CREATE_MOUNT_MS} ms"
t_wait_eq "B lists A's volume without a Create (background refresh)" 10 shared \
	sh -c "curl -s --max-time 5 --unix-socket '$T/b/ballast.sock' -X POST -d '{}' http://b/VolumeDriver.List | jq -r '.Volumes[].Name | select(. == \"shared\")'"
t_eq "B: create of the existing volume with the same options succeeds" "" \
	"$(gerr b VolumeDriver.Create "{\"Name\":\"shared\",\"Opts\":$opts}")"
t_eq "A: create other" "" "$(gerr a VolumeDriver.Create '{"Name":"other","Opts":{"backend":"gluster"}}')"
t_match "B: create with other options is refused" "already exists.*other options" \
	"$(gerr b VolumeDriver.Create '{"Name":"other","Opts":{"backend":"gluster","mode":"0700"}}')"
t_ok "... and A's volume is intact" in_gluster .ballast/other.json
t_ok "... with its data directory" in_gluster other
mpb=$(gcall b VolumeDriver.Mount '{"Name":"shared","ID":"b1"}' | jq -r .Mountpoint)
t_match "A mounted at its own mountpoint" "^$T/a/state/mounts/shared$" "$mpa"
t_match "B mounted at the same time" "^$T/b/state/mounts/shared$" "$mpb"
t_ok "A's mount is a glusterfs mount" sh -c "grep -q ' $mpa fuse.glusterfs ' /proc/mounts"
t_ok "B's mount is a glusterfs mount" sh -c "grep -q ' $mpb fuse.glusterfs ' /proc/mounts"
# Issue 13, item 9: the FUSE mounts get nosuid,nodev as the block file
# systems do. Fails when the fix is reverted (A's options lack them). The
# probe's control: a tmpfs mounted here without them reads as lacking
# them, and one with them as having them.
mkdir -p "$T/ctl-suid" "$T/ctl-nosuid"
mount -t tmpfs -o size=1m ctl "$T/ctl-suid" && mount -t tmpfs -o size=1m,nosuid,nodev ctl "$T/ctl-nosuid"
t_eq "control: the probe reads a mount without nosuid,nodev as such" "nosuid=no nodev=no" \
	"$(suid_dev_opts "$T/ctl-suid")"
t_eq "control: ... and one with them as such" "nosuid=yes nodev=yes" "$(suid_dev_opts "$T/ctl-nosuid")"
umount "$T/ctl-suid" "$T/ctl-nosuid"
t_eq "A's glusterfs mount is nosuid,nodev (issue 13, item 9)" "nosuid=yes nodev=yes" "$(suid_dev_opts "$mpa")"
t_eq "B's glusterfs mount is nosuid,nodev" "nosuid=yes nodev=yes" "$(suid_dev_opts "$mpb")"
echo from-a >"$mpa/a.txt" 2>/dev/null
echo from-b >"$mpb/b.txt" 2>/dev/null
t_eq "A sees B's file" from-b "$(cat "$mpa/b.txt" 2>&1)"
t_eq "B sees A's file" from-a "$(cat "$mpb/a.txt" 2>&1)"
t_eq "A unmounts" "" "$(gerr a VolumeDriver.Unmount '{"Name":"shared","ID":"a1"}')"
t_eq "B still has its mount" from-a "$(cat "$mpb/a.txt" 2>&1)"
t_match "A cannot remove it while B uses it" "volume shared is mounted on host host-b" \
	"$(gerr a VolumeDriver.Remove '{"Name":"shared"}')"
t_ok "... and it is intact" in_gluster shared/b.txt
t_eq "B unmounts" "" "$(gerr b VolumeDriver.Unmount '{"Name":"shared","ID":"b1"}')"
t_eq "no mount left on A or B" "" "$(host_mounts a)$(host_mounts b)"

# --- exclusive ------------------------------------------------------------------------
ex='{"backend":"gluster","exclusive":"true"}'
t_eq "A: create exclusive" "" "$(gerr a VolumeDriver.Create "{\"Name\":\"ex\",\"Opts\":$ex}")"
t_eq "B: create exclusive (same volume)" "" "$(gerr b VolumeDriver.Create "{\"Name\":\"ex\",\"Opts\":$ex}")"
t_eq "A mounts it" "" "$(gerr a VolumeDriver.Mount '{"Name":"ex","ID":"a1"}')"
t_match "B is refused, naming A" "volume ex is in use on host host-a since [0-9T:-]+Z" \
	"$(gerr b VolumeDriver.Mount '{"Name":"ex","ID":"b1"}')"
t_match "B cannot remove it either" "in use on host host-a" "$(gerr b VolumeDriver.Remove '{"Name":"ex"}')"
sleep $((LEASE + 2))
t_match "still refused after the lease time (A renews)" "in use on host host-a" \
	"$(gerr b VolumeDriver.Mount '{"Name":"ex","ID":"b1"}')"
renewals=$(curl -s --max-time 10 --unix-socket "$T/a/metrics.sock" http://b/metrics |
	awk '$1 == "ballast_lease_renewals_total{backend=\"gluster\"}" { print $2 }')
t_match "A's renewals show in its metrics (${renewals:-none})" '^[1-9][0-9]*$' "$renewals"
t_eq "A unmounts (releases)" "" "$(gerr a VolumeDriver.Unmount '{"Name":"ex","ID":"a1"}')"
t_eq "B mounts it now" "" "$(gerr b VolumeDriver.Mount '{"Name":"ex","ID":"b1"}')"
t_match "and A is refused, naming B" "in use on host host-b" \
	"$(gerr a VolumeDriver.Mount '{"Name":"ex","ID":"a2"}')"
t_eq "B unmounts" "" "$(gerr b VolumeDriver.Unmount '{"Name":"ex","ID":"b1"}')"
t_fail "no holder record left" in_gluster .ballast/ex.holder

# --- quota ---------------------------------------------------------------------------
t_ok "docker volume create -o quota=64M" dk volume create -d "$PLUGIN" -o backend=gluster -o quota=64M quota64
out=$(dk run --rm --network none -v quota64:/data "$BB" \
	sh -c 'dd if=/dev/zero of=/data/big bs=1M count=100 && sync' 2>&1)
rc=$?
t_ne "writing 100 MiB into quota=64M fails" 0 "$rc"
t_match "... with a quota error" "[Qq]uota|No space" "$out"
sz=$(du -sm "$BRICK_ROOT/quota64" 2>/dev/null | cut -f1)
t_ok "... and stops near the limit (${sz:-?} MiB stored)" test "${sz:-999}" -le 80
t_match "quota below 1 MiB refused" "too small" \
	"$(gerr a VolumeDriver.Create '{"Name":"q2","Opts":{"backend":"gluster","quota":"4K"}}')"

# --- copies (-o from=VOLUME) ------------------------------------------------------------
# Issue 19: a gluster volume copied whole through gfapi, made aside and
# renamed into place: contents, owners, modes, times, user attributes,
# symlinks and holes kept; the copy is a volume of its own, on every host.
# A source mounted on another host, a snapshot, an unknown source: each
# refused, nothing left.
mpc=$(gcall a VolumeDriver.Mount '{"Name":"gdv","ID":"c1"}' | jq -r .Mountpoint)
mkdir -p "$mpc/sub" && echo deep >"$mpc/sub/g" && chown -R 1234:5678 "$mpc/sub" && chmod 0700 "$mpc/sub"
ln -s sub/g "$mpc/link"
truncate -s 32M "$mpc/sparse" && echo end >>"$mpc/sparse"
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.ballast", b"kept")' "$mpc/f"
touch -d '2020-01-02 03:04:05' "$mpc/f"
t_eq "the control: gdv's file has its attribute (through the mount)" kept \
	"$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.ballast").decode())' "$mpc/f" 2>&1)"
t_eq "A unmounts gdv" "" "$(gerr a VolumeDriver.Unmount '{"Name":"gdv","ID":"c1"}')"
t_ok "docker volume create -o from=gdv gdc" dk volume create -d "$PLUGIN" -o backend=gluster -o from=gdv gdc
t_eq "gdc has gdv's file, as a container reads it" written-by-one \
	"$(dk run --rm --network none -v gdc:/data "$BB" cat /data/f 2>&1)"
t_eq "gdc's directory has gdv's owner and mode" "1000:1000 750" "$(stat -c '%u:%g %a' "$BRICK_ROOT/gdc" 2>&1)"
t_eq "a subdirectory's owner and mode, and its file" "1234:5678 700 deep" \
	"$(stat -c '%u:%g %a' "$BRICK_ROOT/gdc/sub" 2>&1) $(cat "$BRICK_ROOT/gdc/sub/g" 2>&1)"
t_eq "the symlink" sub/g "$(readlink "$BRICK_ROOT/gdc/link" 2>&1)"
t_eq "the file's user attribute and time" "kept 2020-01-02 03:04:05" \
	"$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.ballast").decode())' "$BRICK_ROOT/gdc/f" 2>&1) $(date -d "@$(stat -c %Y "$BRICK_ROOT/gdc/f")" '+%F %T' 2>&1)"
t_eq "the sparse file's size" 33554436 "$(stat -c %s "$BRICK_ROOT/gdc/sparse" 2>&1)"
t_ok "... and its hole ($(($(stat -c '%b * %B' "$BRICK_ROOT/gdc/sparse") / 1024)) KiB on the brick, < 1024)" \
	test $(($(stat -c '%b * %B' "$BRICK_ROOT/gdc/sparse") / 1024)) -lt 1024
t_fail "nothing of the copy left aside" in_gluster .ballast/copy-gdc
t_wait_eq "B lists the copy" 10 gdc \
	sh -c "curl -s --max-time 5 --unix-socket '$T/b/ballast.sock' -X POST -d '{}' http://b/VolumeDriver.List | jq -r '.Volumes[].Name | select(. == \"gdc\")'"
mpb=$(gcall b VolumeDriver.Mount '{"Name":"gdc","ID":"b1"}' | jq -r .Mountpoint)
t_eq "B mounts it and reads the file" written-by-one "$(cat "$mpb/f" 2>&1)"
echo changed >"$mpb/f" 2>/dev/null
t_eq "B writes to the copy; gdv keeps its own" "changed written-by-one" \
	"$(cat "$BRICK_ROOT/gdc/f" 2>&1) $(cat "$BRICK_ROOT/gdv/f" 2>&1)"
t_eq "B unmounts the copy" "" "$(gerr b VolumeDriver.Unmount '{"Name":"gdc","ID":"b1"}')"
t_eq "B mounts gdv" "" "$(gerr b VolumeDriver.Mount '{"Name":"gdv","ID":"b2"}')"
t_match "a copy of a volume mounted on another host is refused, naming it" \
	'volume gdv is mounted on host host-b' \
	"$(gerr a VolumeDriver.Create '{"Name":"gdx","Opts":{"backend":"gluster","from":"gdv"}}')"
t_eq "B unmounts gdv" "" "$(gerr b VolumeDriver.Unmount '{"Name":"gdv","ID":"b2"}')"
t_match "a copy of a snapshot is refused: gluster volumes have none" 'gluster volumes have no snapshots' \
	"$(gerr a VolumeDriver.Create '{"Name":"gdx","Opts":{"backend":"gluster","from":"gdv@s1"}}')"
t_match "a copy of an unknown volume" 'volume nosuch not found' \
	"$(gerr a VolumeDriver.Create '{"Name":"gdx","Opts":{"backend":"gluster","from":"nosuch"}}')"
t_match "a copy with its own owner" 'uid cannot be given with from=' \
	"$(gerr a VolumeDriver.Create '{"Name":"gdx","Opts":{"backend":"gluster","from":"gdv","uid":"1"}}')"
t_fail "... none of which left a volume" in_gluster gdx
t_fail "... or a facts record" in_gluster .ballast/gdx.json
t_match "a snapshot of a gluster volume is refused with the reason" 'cannot take snapshots \(Gluster.s need thin LVM bricks' \
	"$(gerr a Ballast.Snapshot '{"Name":"gdv","Snapshot":"s1"}')"
t_ok "docker volume rm gdc" dk volume rm gdc

# --- bad options: refused, nothing created ----------------------------------------------
for o in '"color":"red"' '"exclusive":"maybe"' '"quota":"lots"' '"mode":"99999"' '"uid":"-1"' '"gid":"x"'; do
	e=$(gerr a VolumeDriver.Create "{\"Name\":\"bad\",\"Opts\":{\"backend\":\"gluster\",$o}}")
	t_ne "option {$o} refused" "" "$e"
done
t_match "unknown option named with the valid ones" 'unknown option "color".*valid options: backend, exclusive, gid, mode, quota, takeover, uid, from' \
	"$(gerr a VolumeDriver.Create '{"Name":"bad","Opts":{"backend":"gluster","color":"red"}}')"
t_fail "docker volume create with a bad option fails" \
	dk volume create -d "$PLUGIN" -o backend=gluster -o colour=blue bad
t_fail "nothing created in Gluster" in_gluster bad
t_fail "no facts record in Gluster" in_gluster .ballast/bad.json
t_eq "not listed" "" "$(gcall a VolumeDriver.List '{}' | jq -r '.Volumes[].Name | select(. == "bad")')"

# --- ballast doctor, live -----------------------------------------------------------------
# gdoctor HOST: `ballast doctor` against that host's daemon; output in
# DOC, status in DOC_RC.
gdoctor() {
	DOC=$("$BALLAST_BUILD/ballast" doctor --config "$T/$1/ballast.conf" 2>&1)
	DOC_RC=$?
}
doc_line() { printf '%s\n' "$DOC" | grep -qE -- "$1"; }
gdoctor a
t_eq "doctor: exit 0 with Gluster up" 0 "$DOC_RC"
t_ok "doctor: OK gluster volume, naming it and its server" doc_line "^OK +gluster volume: gv0 at $GLUSTER_HOST answers"
t_ok "doctor: OK glusterd socket" doc_line '^OK +glusterd socket: '
t_ok "doctor: OK mount.glusterfs" doc_line '^OK +mount.glusterfs: '

# --- Gluster unreachable ---------------------------------------------------------------
gluster_cut
t0=${EPOCHREALTIME/./}
gdoctor a
ms=$(ms_since "$t0")
t_eq "doctor: exit 1 with the link down" 1 "$DOC_RC"
t_ok "doctor: FAIL gluster volume, with the reason" doc_line '^FAIL gluster volume: .*gluster'
t_ok "doctor: the other checks still pass" doc_line '^OK +daemon: '
t_ok "doctor: answers within the bound (${ms} ms < ${BOUND} s)" test "$ms" -lt $((BOUND * 1000))
t0=${EPOCHREALTIME/./}
e=$(gerr a VolumeDriver.Create '{"Name":"cut1","Opts":{"backend":"gluster"}}')
ms=$(ms_since "$t0")
t_match "link down: Create fails with a clear error" "gluster volume gv0 at $GLUSTER_HOST (did not answer within $TIMEOUT s|.*not connected)|cannot connect to gluster" "$e"
t_ok "... within the bound (${ms} ms < ${BOUND} s)" test "$ms" -lt $((BOUND * 1000))
t0=${EPOCHREALTIME/./}
e=$(gerr a VolumeDriver.Mount '{"Name":"shared","ID":"c1"}')
ms=$(ms_since "$t0")
t_match "link down: Mount fails with a clear error" "gluster volume gv0|cannot connect to gluster" "$e"
t_ok "... within the bound (${ms} ms < ${BOUND} s)" test "$ms" -lt $((BOUND * 1000))
t0=${EPOCHREALTIME/./}
t_eq "link down: Get answers" "shared" "$(gcall a VolumeDriver.Get '{"Name":"shared"}' | jq -r .Volume.Name)"
t_match "link down: List answers" "ex.*shared" "$(gcall a VolumeDriver.List '{}' | jq -r '[.Volumes[].Name] | join(" ")')"
t_ok "... Get and List within 1 s ($(ms_since "$t0") ms)" test "$(ms_since "$t0")" -lt 1000
t_eq "docker volume inspect answers" shared "$(dk volume inspect -f '{{.Name}}' shared 2>&1)"
gluster_restore
# The calls left stuck by the cut end and their connections close before
# the hang below; else the cap on connections refuses first ("4
# connections still stuck or closing"), as it did once, instead of the
# bound that is checked there.
settled() { # X: ok when host X has no stuck call and at most one connection
	gcall "$1" Ballast.Inspect '{"Name":"shared"}' |
		jq -r 'if .Volume.status.gluster_stuck_calls == 0 and .Volume.status.gluster_connections <= 1
			then "ok" else "stuck \(.Volume.status.gluster_stuck_calls), connections \(.Volume.status.gluster_connections)" end'
}
t_wait_eq "back from the cut: host A's stuck calls ended, their connections closed" 60 ok settled a
t_wait_eq "back from the cut: host B's too" 60 ok settled b

gluster_freeze
t0=${EPOCHREALTIME/./}
e=$(gerr a VolumeDriver.Create '{"Name":"frz1","Opts":{"backend":"gluster"}}')
ms=$(ms_since "$t0")
t_match "servers hung: Create fails naming the bound" "gluster volume gv0 at $GLUSTER_HOST did not answer within $TIMEOUT s" "$e"
t_ok "... within the bound (${ms} ms < ${BOUND} s)" test "$ms" -lt $((BOUND * 1000))
t0=${EPOCHREALTIME/./}
e=$(gerr b VolumeDriver.Mount '{"Name":"shared","ID":"c2"}')
ms=$(ms_since "$t0")
t_match "servers hung: Mount fails naming the bound" "did not answer within $TIMEOUT s" "$e"
t_ok "... within the bound (${ms} ms < ${BOUND} s)" test "$ms" -lt $((BOUND * 1000))
t_eq "servers hung: Get answers" "shared" "$(gcall b VolumeDriver.Get '{"Name":"shared"}' | jq -r .Volume.Name)"
gluster_thaw

t_wait_eq "back: Create works again (new handle)" 30 "" \
	gerr a VolumeDriver.Create '{"Name":"after","Opts":{"backend":"gluster"}}'
t_eq "back: Mount works again" "" "$(gerr a VolumeDriver.Mount '{"Name":"after","ID":"x"}')"
t_eq "back: Unmount" "" "$(gerr a VolumeDriver.Unmount '{"Name":"after","ID":"x"}')"
# Host B's calls hung too: it backs off before it connects again (up to
# 30 s), and a Mount there meanwhile says so instead of what it checks
# (seen once: "not connecting again for another 4 s" where the Mount of
# a removed volume below was to say why).
t_wait_eq "back: host B mounts again (its back-off over)" 40 "" \
	gerr b VolumeDriver.Mount '{"Name":"shared","ID":"b8"}'
t_eq "back: host B unmounts" "" "$(gerr b VolumeDriver.Unmount '{"Name":"shared","ID":"b8"}')"

# --- remove ------------------------------------------------------------------------------
t_eq "A removes shared" "" "$(gerr a VolumeDriver.Remove '{"Name":"shared"}')"
t_fail "its facts are gone from Gluster" in_gluster .ballast/shared.json
t_wait_eq "its data is gone from Gluster (background delete)" 20 gone \
	sh -c "[ -e '$BRICK_ROOT/shared' ] || [ -n \"\$(ls -A '$BRICK_ROOT/.ballast/trash')\" ] && echo present || echo gone"
t_match "B's Mount of the removed volume says why" "missing|removed" \
	"$(gerr b VolumeDriver.Mount '{"Name":"shared","ID":"b9"}')"
t_ok "docker volume rm of the quota volume" dk volume rm quota64
t_nomatch "... its quota was removed from glusterd too" "quota remove:" "$(cat "$T/a/ballastd.log")"
t_ok "docker volume rm" dk volume rm gdv
t_fail "gdv gone from Gluster" in_gluster .ballast/gdv.json

# --- teardown, checked ----------------------------------------------------------------------
dockerd_cleanup
t_ok "host-a ballastd stops cleanly" gd_stop a
t_ok "host-b ballastd stops cleanly" gd_stop b
t_eq "no mount left under the test directory" "" \
	"$(awk -v d="$T/" 'index($2, d) == 1 { print $2 }' /proc/mounts)"
gluster_stop
t_eq "gluster stopped: no mount of our server" "" "$(gluster_mounts)"
t_eq "gluster stopped: no process left in the netns" "" "$(ip netns pids "$GL_NS" 2>/dev/null)"
t_fail "gluster stopped: netns deleted" sh -c "ip netns list | awk '{ print \$1 }' | grep -qx -- '$GL_NS'"
t_diag "gluster stop took ${GL_STOP_MS} ms; suite run time $(ms_since "$SUITE_T0") ms"
