#!/usr/bin/env bash
# tests/integration/gluster_crash.sh - kill ballastd (SIGKILL) at each named
# step of the gluster backend's Create, Mount, Unmount and Remove, restart
# it, and check that the operation completed or left nothing that shows,
# that holders and mounts are right, and that the operation then works.
# Then freeze the brick (SIGSTOP) under bursts of requests: the stuck
# Gluster calls stay capped, every request is answered in time, and a call
# whose request gave up changes nothing once the brick is back.
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
metrics = unix:$T/metrics.sock
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

# ------------------------------------------------------------ a directory that is no volume
# Someone's directory under ballast's, made through a FUSE mount of the whole
# Gluster volume: a Create of its name neither takes it over (owner, mode)
# nor, failing, moves it to the trash.
mkdir -p "$T/whole"
if mount -t glusterfs "$GLUSTER_HOST:/$GLUSTER_VOLUME" "$T/whole" 2>"$T/whole.err"; then
	mkdir -p "$T/whole/ballast/foreign" && echo kept >"$T/whole/ballast/foreign/data" &&
		chmod 0751 "$T/whole/ballast/foreign"
	t_eq "foreign directory: control: the brick shows it" kept "$(cat "$GLUSTER_DIR/brick/ballast/foreign/data")"
	t_match "foreign directory: Create refused, naming it" "ballast/foreign already exists in gluster volume.*not a ballast volume" \
		"$(err VolumeDriver.Create '{"Name":"foreign","Opts":{"backend":"gluster","quota":"64M"}}')"
	t_eq "foreign directory: its data stays" kept "$(cat "$T/whole/ballast/foreign/data")"
	t_eq "foreign directory: and its mode" 751 "$(stat -c %a "$T/whole/ballast/foreign")"
	t_eq "foreign directory: nothing of it in the trash" "" "$(find "$META/trash" -mindepth 1 -maxdepth 1 -name 'foreign.*')"
	t_fail "foreign directory: no facts record left" test -e "$META/foreign.json"
	t_fail "foreign directory: not listed" exists foreign
	rm -rf "$T/whole/ballast/foreign"
	t_eq "foreign directory: once moved away, the Create works" "" \
		"$(err VolumeDriver.Create '{"Name":"foreign","Opts":{"backend":"gluster"}}')"
	t_ok "foreign directory: the volume then exists" exists foreign
	umount "$T/whole" || umount -l "$T/whole"
else
	t_ok "mount the whole Gluster volume: $(tail -n 1 "$T/whole.err")" false
fi

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

# ------------------------------------------------------------ a frozen brick
# Every Gluster call runs on a worker thread, and a call stuck in gfapi
# cannot be cancelled: with a hung brick it lasts until Gluster's own
# timeouts (ping 42 s, frames 30 min). The engine caps them (16 workers, 8
# calls given up on, 4 connections): past that, requests are refused at
# once. So however many requests come, ballastd's threads stay bounded and
# each request is answered within its bound; once the brick is back the
# backend works again, and a call whose request gave up changed nothing.
GT=3                          # [gluster] timeout for this part
BOUND_MS=$(((GT + 3) * 1000)) # per request: a refusal, or the timeout
# The most threads the caps allow above the start: the workers (16) and
# three more connections (gfapi runs ~6 threads each), plus during a burst
# one HTTP thread per request.
CAPPED=$((16 + 3 * 8))
ROUNDS=3
BURST=20
# The glusterd CLI through a wrapper (ballastd finds `gluster` in PATH):
# with $T/freeze-on-quota-remove present, a quota removal first freezes
# the brick, so that the hang strikes a Remove between its checks (which
# passed) and the move of its data.
mkdir -p "$T/bin"
cat >"$T/bin/gluster" <<WRAP
#!/bin/sh
case " \$* " in
*" quota "*" remove "*) [ -e "$T/freeze-on-quota-remove" ] && kill -STOP \$(cat "$T/brick.pids") ;;
esac
exec $(command -v gluster) "\$@"
WRAP
chmod +x "$T/bin/gluster"
export PATH="$T/bin:$PATH"
stop
sed -i "s/^timeout = .*/timeout = $GT/" "$T/b.conf"
start || t_die "ballastd did not restart"

brick_pids() {
	local p
	for p in $(ip netns pids "$GL_NS"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = glusterfsd ] && printf '%s\n' "$p"
	done
	return 0
}
brick_pids >"$T/brick.pids"
# shellcheck disable=SC2046 # a list of pids
freeze_bricks() { kill -STOP $(cat "$T/brick.pids"); }
# shellcheck disable=SC2046
thaw_bricks() { kill -CONT $(cat "$T/brick.pids"); }
threads() { find "/proc/$PID/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# names DIR...: the entries of the directories
names() { find "$@" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null; }
# status NAME FIELD: a field of the volume's Status (served without Gluster)
status() { call VolumeDriver.Get "{\"Name\":\"$1\"}" | jq -r ".Volume.Status.$2 // \"none\""; }
ms_since() { echo $(((${EPOCHREALTIME/./} - $1) / 1000)); }
# the stuck-calls gauge of the metrics listener ("none" without an answer)
stuck_metric() {
	curl -s --max-time 5 --unix-socket "$T/metrics.sock" http://m/metrics |
		awk '$1 == "ballast_backend_stuck_calls{backend=\"gluster\"}" { v = $2 } END { print v == "" ? "none" : v }'
}

# burst R: BURST Creates at once; each answer "MS<tab>ERR" in $T/burst.R.I
burst() {
	local r=$1 i pids=()
	for ((i = 1; i <= BURST; i++)); do
		(
			t0=${EPOCHREALTIME/./}
			e=$(err VolumeDriver.Create "{\"Name\":\"frz$r-$i\",\"Opts\":{\"backend\":\"gluster\"}}")
			printf '%s\t%s\n' "$(ms_since "$t0")" "$e" >"$T/burst.$r.$i"
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
}

t_eq "frozen: a volume to keep (with a quota)" "" \
	"$(err VolumeDriver.Create '{"Name":"keep","Opts":{"backend":"gluster","quota":"64M"}}')"
t_ok "frozen: its brick process found" test -s "$T/brick.pids"
base=$(threads)
( while [ -d "/proc/$PID" ]; do threads; sleep 0.1; done ) >"$T/threads.log" 2>/dev/null &
SAMPLER=$!
freeze_bricks
after=()
for ((r = 1; r <= ROUNDS; r++)); do
	burst "$r"
	after+=("$(threads)")
done
peak=$(sort -n "$T/threads.log" | tail -n 1)
stuck_now=$(status keep gluster_stuck_calls)
cat "$T"/burst.*.* >"$T/answers"
answered=$(grep -v 'NO ANSWER\|NO Err' "$T/answers" | grep -c "gluster volume $GLUSTER_VOLUME at $GLUSTER_HOST")
slowest=$(cut -f1 "$T/answers" | sort -n | tail -n 1)
t_diag "threads: $base before, ${after[*]} after each burst of $BURST Creates, $peak at most" \
	"(without the cap each request would leave its thread: $((base + ROUNDS * BURST)) and more);" \
	"calls stuck: $stuck_now; slowest answer: $slowest ms" \
	"$(cut -f2 "$T/answers" | sed 's/[0-9]\+ s)/N s)/; s/stuck (since [0-9]* s)/stuck/; s/[0-9]* calls/N calls/' | sort | uniq -c)"
t_eq "frozen: each of the $((ROUNDS * BURST)) Creates answered, naming the Gluster volume" \
	"$((ROUNDS * BURST))" "$answered"
t_ok "frozen: each within ${BOUND_MS} ms (slowest ${slowest} ms)" test "${slowest:-999999}" -lt "$BOUND_MS"
# The positive control: the freeze does leave calls stuck in gfapi.
t_ok "frozen: calls are stuck in gfapi (${stuck_now})" test "${stuck_now:-0}" -gt 0 2>/dev/null
m=$(stuck_metric)
t_ok "frozen: the metric ballast_backend_stuck_calls shows them ($m)" test "$m" -gt 0 2>/dev/null
t_ok "frozen: ballastd's threads grew with them (peak ${peak} > ${base})" test "${peak:-0}" -gt "$base"
t_match "frozen: past the cap, requests are refused at once" "[0-9]+ calls still stuck, not starting more" \
	"$(cat "$T/answers")"
t_ok "frozen: later bursts add no thread (${after[*]})" \
	test "${after[$((ROUNDS - 1))]}" -le "$((after[0] + 2))"
t_ok "frozen: at most $((base + CAPPED)) threads after each burst (${after[*]})" \
	test "$(printf '%s\n' "${after[@]}" | sort -n | tail -n 1)" -le "$((base + CAPPED))"
t_ok "frozen: at most $((base + CAPPED + BURST)) threads at any time (peak ${peak})" \
	test "${peak:-999}" -le "$((base + CAPPED + BURST))"
t0=${EPOCHREALTIME/./}
e=$(err VolumeDriver.Get '{"Name":"keep"}')
t_eq "frozen: Get still answers at once ($(ms_since "$t0") ms)" "" "$e"

# A Remove whose checks passed, frozen before it moves the data: it fails
# on its bound, and once the brick is back the stuck call must not move
# the data nor drop the records of a volume ballastd kept.
thaw_bricks
t_wait_eq "back: stuck calls end once the brick is back" 90 0 status keep gluster_stuck_calls
t_eq "back: the metric is 0 again" 0 "$(stuck_metric)"
t_wait_eq "back: Create works again" 30 "" err VolumeDriver.Create '{"Name":"after","Opts":{"backend":"gluster"}}'
t_eq "back: nothing of the given-up Creates in Gluster" "" \
	"$(names "$META" "$GLUSTER_DIR/brick/ballast" | grep '^frz' | head -n 5)"
: >"$T/freeze-on-quota-remove"
t0=${EPOCHREALTIME/./}
e=$(err VolumeDriver.Remove '{"Name":"keep"}')
ms=$(ms_since "$t0")
rm -f "$T/freeze-on-quota-remove"
t_match "frozen mid-Remove: the Remove fails naming the bound" "did not answer within $GT s" "$e"
t_ok "frozen mid-Remove: within $((BOUND_MS + GT * 1000)) ms, its quota step's bound included (${ms} ms)" \
	test "$ms" -lt $((BOUND_MS + GT * 1000))
t_eq "frozen mid-Remove: the volume is kept" "" "$(err VolumeDriver.Get '{"Name":"keep"}')"
thaw_bricks
t_wait_eq "frozen mid-Remove: the stuck call ends once the brick is back" 90 0 status keep gluster_stuck_calls
t_ok "frozen mid-Remove: its data stays in place" test -d "$GLUSTER_DIR/brick/ballast/keep"
t_ok "frozen mid-Remove: its facts record stays" test -e "$META/keep.json"
t_eq "frozen mid-Remove: nothing of it in the trash" "" "$(names "$GLUSTER_DIR/brick/ballast/.ballast/trash" | grep '^keep\.')"

t_wait_eq "back: Remove works" 30 "" err VolumeDriver.Remove '{"Name":"keep"}'

t_fail "back: and removes" test -e "$META/keep.json"
back_down() { if [ "$(threads)" -le $((base + 2)) ]; then echo yes; else threads; fi; }
t_wait_eq "back: threads back to at most $((base + 2))" 60 yes back_down
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
stop
t_eq "no mounts left under the test dir" "" "$(awk -v d="$T/" 'index($2, d) == 1' /proc/mounts)"
