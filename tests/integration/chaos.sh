#!/usr/bin/env bash
# tests/integration/chaos.sh - PostgreSQL moves between two hosts on a
# ballast volume through a random schedule of operations and faults drawn
# from a seed; a checker that knows nothing of ballast's insides verifies
# the history after every step and at the end.
#
# The bed is handoff.sh's (tests/lib/hosts.sh): hosts A and B in network
# namespaces, each with its own ballastd and dockerd, Ceph and Gluster in a
# third namespace reached over veth links. The database is PostgreSQL from
# Debian's packages (tests/lib/pgimage.sh), its data directory on the
# ballast volume (rbd; gluster with exclusive=true). A client outside the
# containers (psql over the unix socket the container shares with the
# test) commits numbered rows, each tagged with the writing host and the
# hand-off epoch (one per start of the database), and records which
# commits were acknowledged.
#
# Operations and faults, drawn from the seed (the schedule is printed
# first, so `make chaos SEED=N ...` replays it); H is db (the host the
# database runs on when the step begins) or other:
#   move             stop the database cleanly and start it on the other host
#   kill_db H        kill -9 of the database container, then start it on H
#   kill_bd H MS     kill -9 of H's ballastd MS ms into a move (during its
#                    Unmount or Mount), restarted at once
#   kill_mapper      (rbd) kill -9 of the database host's mapper
#   stop_bd H S F    SIGSTOP of H's ballastd for S seconds (shorter or
#                    longer than the lease); F=1: meanwhile an orchestrator
#                    starts the database on the other host (as after a
#                    failed health check)
#   cut H S F        H's link to the cluster cut for S seconds, F as above
#   dockerd H SIG    dockerd of H stopped with SIGTERM or SIGKILL, restarted
#   force            `ballast release --force` on the other host while the
#                    holder writes, then the database started there
# After each step the system settles (bounded): the database must run on
# some host and commit. The checker, after every step and at the end:
#   lost    acknowledged commits missing where the database now runs
#   double  rows of an epoch committed after a later epoch's first row
#           (two writers), from the data itself (commit timestamps: the
#           containers share one clock)
#   bad     amcheck (bt_index_check with heapallindexed) or a full scan fails
#   stuck   the database could not be started on either host within the
#           bound, or at the end the volume cannot be mounted on both hosts
#           in turn, or something is left mapped, mounted or held; or a
#           failover from a holder cut off (or, gluster, stopped: an rbd
#           holder's mapper renews without ballastd) took longer than
#           TAKEOVER_MAX_RBD|GLUSTER s (the lease and 13 or 20 s: fence,
#           map, mount, start) or never came
#   stale   a fence in force against the host that holds the volume (the
#           holder's address in the gluster volume's auth.reject, the rbd
#           lock owner in `ceph osd blocklist ls`), or any fence of the
#           volume left once both hosts mounted it again
# and prints, per seed and backend:
#   chaos: seed N, K steps, H hand-offs, 0 lost commits, 0 double writes,
#   0 stuck volumes, 0 stale fences (0 failed integrity checks)
#
# CHAOS_SEEDS (list, for every backend; else CHAOS_SEEDS_RBD and
# CHAOS_SEEDS_GLUSTER, CI's), CHAOS_STEPS (per seed), CHAOS_BACKENDS ("rbd
# gluster"). The schedule uses bash's RANDOM seeded with the seed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOSTS_RBD_LEASE=${HOSTS_RBD_LEASE:-8}
HOSTS_GL_LEASE=${HOSTS_GL_LEASE:-8}
HOSTS_RBD_TIMEOUT=${HOSTS_RBD_TIMEOUT:-5}
HOSTS_GL_TIMEOUT=${HOSTS_GL_TIMEOUT:-5}
# a mount no container uses (dockerd killed never sends its Unmount) is
# undone after this many seconds: well within a step's settling
HOSTS_ORPHAN_GRACE=${HOSTS_ORPHAN_GRACE:-10}
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/ceph.sh
. "$HERE/../lib/ceph.sh"
# shellcheck source=../lib/gluster.sh
. "$HERE/../lib/gluster.sh"
# shellcheck source=../lib/hosts.sh
. "$HERE/../lib/hosts.sh"
# shellcheck source=../lib/pgimage.sh
. "$HERE/../lib/pgimage.sh"

t_group chaos
B=$BALLAST_BUILD
# CI's seeds, per backend: each holds a takeover that needs a fence (a
# failover after a cut, or after SIGSTOP), so a skipped fence is caught
SEEDS_RBD=${CHAOS_SEEDS:-${CHAOS_SEEDS_RBD:-"25 39"}}
SEEDS_GLUSTER=${CHAOS_SEEDS:-${CHAOS_SEEDS_GLUSTER:-"1 25"}}
STEPS=${CHAOS_STEPS:-4}
BACKENDS=${CHAOS_BACKENDS:-"rbd gluster"}
PGIMG=$PGIMAGE_NAME
LEASE=$HOSTS_RBD_LEASE
[ "$HOSTS_GL_LEASE" -gt "$LEASE" ] && LEASE=$HOSTS_GL_LEASE
# how long the database may take to come up somewhere after a step: two
# leases (a takeover waits one out), the fence, the start, recovery
SETTLE=$((2 * LEASE + 60))
# a takeover from a holder that cannot renew: its lease, then the fence, the
# map, the mount and PostgreSQL's start (measured: rbd 9 to 15 s, gluster
# 14 to 20 s with leases of 8 s). Without ballast's fence librbd breaks a
# silent owner's lock itself, but only once its watch timed out (30 s):
# rbd's bound lies between.
TAKEOVER_MAX_RBD=$((HOSTS_RBD_LEASE + 13))
TAKEOVER_MAX_GLUSTER=$((HOSTS_GL_LEASE + 20))

[ "$(id -u)" -eq 0 ] || t_die "must run as root"
for c in docker jq curl nsenter ip; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done
for b in ballastd ballast mount.ballast ballast-rbd-map; do
	[ -x "$B/$b" ] || t_die "$B/$b missing: build with the rbd and gluster backends"
done
ceph_deps || t_die "cannot install the Ceph packages"
gluster_deps || t_die "cannot install the GlusterFS packages"
pgimage_deps || t_die "cannot install PostgreSQL and busybox-static"
for c in psql pg_isready; do
	command -v "$c" >/dev/null || t_die "$c not installed (pgimage_deps)"
done

T=$(mktemp -d /tmp/ballast-chaos.XXXXXX)
cleanup() {
	pgimage_cleanup
	writer_stop
	hosts_finish "$T"
}
t_at_exit cleanup

lower() { printf '%s' "${1,,}"; }
log() {
	local t=${EPOCHREALTIME/./}
	t_diag "[$SEED/$BE step $STEP, ms $((10#$t / 1000))] $*"
}

# ------------------------------------------------------------------ the bed
t0=$SECONDS
hosts_net_start || t_die "cannot make the network namespaces"
hosts_ceph_start "$T/ceph" || t_die "the Ceph cluster did not start"
hosts_gluster_start "$T/gluster" || t_die "GlusterFS did not start"
for x in A B; do
	hosts_ballastd_conf $x "$T/$(lower $x)" >/dev/null || t_die "cannot write ballastd $x's config"
done
for x in A B; do
	hosts_ballastd_start $x "$T/$(lower $x)" || t_die "ballastd $x did not start"
	hosts_dockerd_start $x "$T/d$(lower $x)" || t_die "dockerd $x did not start"
	pgimage_build hosts_dk $x || t_die "cannot import the PostgreSQL image into dockerd $x"
done
t_diag "two hosts, Ceph, Gluster, two ballastd, two dockerd and the image up in $((SECONDS - t0)) s"

# -------------------------------------------------------------- the schedule
# draw SEED STEPS BACKEND: one step per line. Hosts are named by role:
# db, the host the database runs on when the step begins; other, the other.
draw() {
	local i r h ops=(move move kill_db kill_bd kill_bd stop_bd cut cut dockerd force)
	[ "$3" = rbd ] && ops+=(kill_mapper)
	RANDOM=$1
	for ((i = 1; i <= $2; i++)); do
		r=${ops[RANDOM % ${#ops[@]}]}
		if ((RANDOM % 2)); then h=db; else h=other; fi
		case $r in
		move | kill_mapper | force) echo "$r" ;;
		kill_db) echo "$r $h" ;;
		kill_bd) echo "$r $h $((RANDOM % 6000))" ;;
		stop_bd | cut)
			if ((RANDOM % 2)); then
				echo "$r $h $((LEASE / 2)) 0"
			else
				echo "$r $h $((LEASE + 2 + RANDOM % LEASE)) $((RANDOM % 2))"
			fi
			;;
		dockerd) if ((RANDOM % 2)); then echo "$r $h TERM"; else echo "$r $h KILL"; fi ;;
		esac
	done
}

# ------------------------------------------------------------ the database
# State of the run: the database's host (RUN_ON, "" when down), its
# container (CT), socket dir (SOCK) and epoch; every writer appends the
# numbers it saw acknowledged to $T/acks.<epoch>.
EPOCH=0 RUN_ON="" CT="" SOCK="" W_PID="" W_STOP=""

q() { # SOCK SQL: one query as the client, bounded
	timeout -k 5 30 psql -h "$1" -U postgres -d postgres -qtAX -v ON_ERROR_STOP=1 -c "$2" 2>&1
}

# pg_launch X [OLDHOST OLDCT]: docker run of a new epoch's database on X,
# after stopping and removing OLDCT on OLDHOST when given (a move), in the
# background (PG_LAUNCH_PID; the run's output in $T/run.<epoch>)
pg_launch() {
	EPOCH=$((EPOCH + 1))
	local ct=pg$EPOCH sock=$T/s$EPOCH
	mkdir -p "$sock" && chmod 0777 "$sock"
	(
		if [ -n "${2:-}" ]; then
			hosts_dk "$2" stop -t 30 "$3" >/dev/null 2>&1
			hosts_dk "$2" rm -f "$3" >/dev/null 2>&1
		fi
		exec >"$T/run.$EPOCH" 2>&1
		hosts_dk "$1" run -d --name "$ct" --network none --stop-signal SIGINT \
			-e PGOPTS='-c track_commit_timestamp=on' --volume-driver "$(hosts_plugin "$1")" -v "$V:/data" -v "$sock:/run/pg" "$PGIMG"
	) &
	PG_LAUNCH_PID=$!
	PG_LAUNCH_HOST=$1
}

# pg_ready X: wait (60 s) for the launched database to answer and take
# the table; on success it is the database (RUN_ON, CT, SOCK) and its
# writer runs. On failure the container is removed; the reason in PG_WHY.
pg_ready() {
	local x=$PG_LAUNCH_HOST ct=pg$EPOCH sock=$T/s$EPOCH end=$((SECONDS + 60)) rc=0
	wait "$PG_LAUNCH_PID" || rc=$?
	if [ "$rc" -ne 0 ]; then
		PG_WHY="docker run on $x: $(grep -m 1 -i 'error' "$T/run.$EPOCH" || tail -n 1 "$T/run.$EPOCH")"
		hosts_dk "$x" rm -f "$ct" >/dev/null 2>&1
		return 1
	fi
	until pg_isready -q -h "$sock" -t 2 2>/dev/null; do
		if [ "$SECONDS" -ge "$end" ] ||
			[ "$(hosts_dk "$x" inspect -f '{{.State.Running}}' "$ct" 2>/dev/null)" != true ]; then
			PG_WHY="the database on $x did not answer: $(hosts_dk "$x" logs "$ct" 2>&1 | tail -n 2 | tr '\n' ' ')"
			hosts_dk "$x" rm -f "$ct" >/dev/null 2>&1
			return 1
		fi
		sleep 0.3
	done
	if ! q "$sock" "CREATE TABLE IF NOT EXISTS t (n bigint PRIMARY KEY, host text NOT NULL,
		epoch int NOT NULL, ts timestamptz NOT NULL DEFAULT clock_timestamp());
		CREATE EXTENSION IF NOT EXISTS amcheck;" >"$T/ddl.$EPOCH"; then
		PG_WHY="the database on $x refused the table: $(tail -n 1 "$T/ddl.$EPOCH")"
		hosts_dk "$x" rm -f "$ct" >/dev/null 2>&1
		return 1
	fi
	RUN_ON=$x CT=$ct SOCK=$sock
	writer_start
}

# The writer: rows EPOCH*10^6 + 1, 2, ... into the database of this epoch
# until its stop file exists; each commit bounded (10 s), acknowledged
# ones appended to $T/acks.<epoch>.
writer_start() {
	W_STOP=$T/stop.$EPOCH
	(
		i=0 base=$((EPOCH * 1000000)) h=$(lower "$RUN_ON") e=$EPOCH t=0
		while [ ! -e "$W_STOP" ]; do
			i=$((i + 1))
			if timeout -k 2 10 psql -h "$SOCK" -U postgres -d postgres -qtAX -v ON_ERROR_STOP=1 \
				-c "INSERT INTO t(n, host, epoch) VALUES($((base + i)), '$h', $e)" >/dev/null 2>&1; then
				t=${EPOCHREALTIME/./}
				echo "$((base + i)) $((10#$t / 1000))" >>"$T/acks.$e"
				sleep 0.05
			else
				sleep 0.3
			fi
		done
	) &
	W_PID=$!
}
writer_stop() {
	[ -n "$W_PID" ] || return 0
	touch "$W_STOP"
	wait "$W_PID" 2>/dev/null
	W_PID=""
}
acked() { cat "$T"/acks.* 2>/dev/null | wc -l; }

# pg_stop: stop the database cleanly (SIGINT: a fast shutdown) and remove it
pg_stop() {
	[ -n "$RUN_ON" ] || return 0
	writer_stop
	hosts_dk "$RUN_ON" stop -t 30 "$CT" >/dev/null 2>&1
	hosts_dk "$RUN_ON" rm -f "$CT" >/dev/null 2>&1
	RUN_ON=""
}

# pg_start X: the database on X, once; 1 (PG_WHY) when it did not start
pg_start() {
	pg_launch "$1"
	pg_ready
}

# commits_soon TRIES: the writer gets 3 more commits acknowledged within
# TRIES x 0.2 s
commits_soon() {
	local n0 try
	n0=$(acked)
	for ((try = 0; try < $1; try++)); do
		[ "$(acked)" -ge $((n0 + 3)) ] && return 0
		sleep 0.2
	done
	return 1
}

# settle [X]: the database must run and commit, on X first if given. A
# database that no longer commits is removed and started again, on either
# host, until SETTLE seconds passed (then the volume is stuck).
settle() {
	local pref=${1:-A} end=$((SECONDS + SETTLE)) x
	if [ -n "$RUN_ON" ]; then
		commits_soon 100 && return 0
		log "the database on $RUN_ON stopped committing: removed"
		writer_stop
		hosts_dk "$RUN_ON" rm -f "$CT" >/dev/null 2>&1
		pref=$RUN_ON
		RUN_ON=""
	fi
	x=$pref
	while [ "$SECONDS" -lt "$end" ]; do
		if pg_start "$x"; then
			commits_soon 150 && return 0
			PG_WHY="started on $x but commits nothing"
			writer_stop
			hosts_dk "$x" rm -f "$CT" >/dev/null 2>&1
			RUN_ON=""
		fi
		log "no database on $x: $PG_WHY"
		x=$(hosts_other "$x")
		sleep 2
	done
	STUCK=$((STUCK + 1))
	t_failed "$V: the database runs again within $SETTLE s of step $STEP" "last: $PG_WHY"
	return 1
}

# ----------------------------------------------------------------- checker
# fenced_at_cluster X: "yes" when a fence against host X on the volume is
# in force at the cluster: (gluster) X's address in the auth.reject entry
# of the volume's directory, as glusterd has it; (rbd) the lock owner's
# Ceph client, when it is X's, in the OSD blocklist.
fenced_at_cluster() {
	local a val owner
	a=$(hosts_addr "$1")
	if [ "$BE" = gluster ]; then
		val=$(gluster_cli volume get "$GLUSTER_VOLUME" auth.reject 2>/dev/null | awk '$1 == "auth.reject" { print $2 }')
		if [[ ",$val," == *",/ballast/$V("*"$a"*")"* ]]; then echo yes; else echo no; fi
		return
	fi
	owner=$(timeout 20 rbd lock ls --format json "$V" 2>/dev/null | jq -r '[.[]][0].address // empty')
	if [ -n "$owner" ] && [[ $owner == "$a:"* ]] &&
		timeout 20 ceph osd blocklist ls 2>/dev/null | awk '{ print $1 }' | grep -qxF "$owner"; then
		echo yes
	else
		echo no
	fi
}

# check: the history so far against the data where the database runs
check() {
	local acks have lost dbl bad
	acks=$T/check.acks
	cat "$T"/acks.* 2>/dev/null | awk '{ print $1 }' | sort -u >"$acks" # read first: all committed
	if ! q "$SOCK" "COPY (SELECT n FROM t) TO STDOUT" >"$T/check.have"; then
		log "the database on $RUN_ON did not answer the check: $(tail -n 1 "$T/check.have")"
		return 1
	fi
	sort -u "$T/check.have" -o "$T/check.have"
	lost=$(comm -23 "$acks" "$T/check.have" | wc -l)
	if [ "$lost" -gt 0 ]; then
		# each lost commit counted once, however many checks miss it
		comm -23 "$acks" "$T/check.have" >>"$T/lost.all"
		LOST=$(sort -u "$T/lost.all" | wc -l)
		log "LOST $lost acknowledged commits (number, acknowledged at ms):$(comm -23 "$acks" "$T/check.have" |
			head -n 5 | while read -r n; do printf ' %s' "$(cat "$T"/acks.* | awk -v n="$n" '$1 == n')"; done)"
	fi
	have=$(wc -l <"$T/check.have")
	# rows of an epoch committed after the first commit of any later
	# epoch (commit timestamps: track_commit_timestamp is on; the insert's
	# clock_timestamp() for a row committed before it was)
	dbl=$(q "$SOCK" "WITH c AS (SELECT epoch, coalesce(pg_xact_commit_timestamp(xmin), ts) AS at FROM t),
		m AS (SELECT epoch, min(at) AS t0 FROM c GROUP BY epoch),
		l AS (SELECT epoch, min(t0) OVER (ORDER BY epoch DESC ROWS BETWEEN UNBOUNDED PRECEDING
			AND 1 PRECEDING) AS later FROM m)
		SELECT count(*) FROM c JOIN l USING (epoch) WHERE c.at > l.later")
	if ! [[ $dbl =~ ^[0-9]+$ ]]; then
		log "the double-writer query failed: $dbl"
		BAD=$((BAD + 1))
	elif [ "$dbl" -gt 0 ]; then
		DOUBLE=$((DOUBLE + dbl))
		log "DOUBLE WRITES: $dbl rows of an old epoch after a newer one began: $(q "$SOCK" \
			"SELECT string_agg(n || '/' || host || '/' || epoch, ' ') FROM (SELECT * FROM t ORDER BY ts DESC LIMIT 5) x")"
	fi
	bad=$(q "$SOCK" "SELECT bt_index_check('t_pkey', true); SELECT count(*) FROM t")
	if ! [[ $bad =~ [0-9]+$ ]]; then
		BAD=$((BAD + 1))
		log "INTEGRITY: $bad"
	fi
	if [ "$(fenced_at_cluster "$RUN_ON")" = yes ]; then
		STALE=$((STALE + 1))
		log "STALE FENCE: $RUN_ON runs the database but is fenced at the cluster"
	fi
	CHECKS=$((CHECKS + 1))
	log "check: $have rows, $(wc -l <"$acks") acknowledged, epoch $EPOCH on $RUN_ON"
}

# ------------------------------------------------------------------ steps
# old_detach: the database becomes the old one (OLD_ON, OLD_CT, OLD_W,
# OLD_STOP): its writer keeps writing (the data-plane probe) until old_gone
old_detach() {
	OLD_ON=$RUN_ON OLD_CT=$CT OLD_W=$W_PID OLD_STOP=$W_STOP
	W_PID="" RUN_ON=""
}

# failover Y DUE: an orchestrator that believes the database's host dead
# starts it on Y, retrying until the lease could have run out twice; the
# old container is left alone (it may still write). DUE 1: the holder
# cannot renew, so the takeover must come within TAKEOVER_MAX_* s of the
# fault (ballast's fence; librbd alone breaks a silent owner's lock only
# once its watch times out, 30 s).
failover() {
	local y=$1 due=$2 t0=$SECONDS end=$((SECONDS + 2 * LEASE + 20)) max=$TAKEOVER_MAX_RBD
	[ "$BE" = gluster ] && max=$TAKEOVER_MAX_GLUSTER
	old_detach
	while [ "$SECONDS" -lt "$end" ]; do
		if pg_start "$y"; then
			HANDOFFS=$((HANDOFFS + 1))
			log "failover to $y: epoch $EPOCH, $((SECONDS - t0)) s after the fault"
			if [ "$due" = 1 ] && [ $((SECONDS - t0)) -gt "$max" ]; then
				STUCK=$((STUCK + 1))
				log "SLOW TAKEOVER: $((SECONDS - t0)) s, more than $max s"
			fi
			return 0
		fi
		log "failover to $y refused: $PG_WHY"
		sleep 1
	done
	if [ "$due" = 1 ]; then
		STUCK=$((STUCK + 1))
		log "NO TAKEOVER: refused for $((SECONDS - t0)) s while the holder could not renew"
	fi
	# Refused throughout (the holder renewed): the old one is the database.
	RUN_ON=$OLD_ON CT=$OLD_CT W_PID=$OLD_W W_STOP=$OLD_STOP OLD_ON=""
	return 0
}
# old_gone: after a failover, the old container is removed on its host
old_gone() {
	[ -n "${OLD_ON:-}" ] || return 0
	sleep 3 # let the old writer try (and fail) a few more commits
	touch "$OLD_STOP"
	hosts_dk "$OLD_ON" rm -f "$OLD_CT" >/dev/null 2>&1
	wait "$OLD_W" 2>/dev/null
	OLD_ON=""
}

step() { # the step's words
	local op=$1 h=${2:-} x y pid out
	x=$RUN_ON
	y=$(hosts_other "$x")
	case $h in db) h=$x ;; other) h=$y ;; esac
	case $op in
	move)
		pg_stop
		pg_start "$y" && HANDOFFS=$((HANDOFFS + 1))
		settle "$y"
		;;
	kill_db)
		hosts_dk "$x" kill -s KILL "$CT" >/dev/null 2>&1
		writer_stop
		hosts_dk "$x" rm -f "$CT" >/dev/null 2>&1
		RUN_ON=""
		pg_start "$h" && [ "$h" != "$x" ] && HANDOFFS=$((HANDOFFS + 1))
		settle "$h"
		;;
	kill_bd)
		# a move (x's Unmount, then y's Mount) with H's ballastd killed
		# MS ms into it, and restarted at once
		writer_stop
		pg_launch "$y" "$x" "$CT"
		RUN_ON=""
		sleep "$(($3 / 1000)).$(printf '%03d' $(($3 % 1000)))"
		hosts_ballastd_kill9 "$h"
		hosts_ballastd_start "$h" "$T/$(lower "$h")" || t_failed "ballastd $h restarts" "see its log"
		if pg_ready; then HANDOFFS=$((HANDOFFS + 1)); else log "the move failed: $PG_WHY"; fi
		settle "$y"
		;;
	kill_mapper)
		pid=$(pgrep -f -- "--image $V .*$T/$(lower "$x")/" | head -n 1)
		[ -n "$pid" ] && kill -KILL "$pid"
		log "killed mapper ${pid:-(none found)} on $x"
		settle "$x"
		;;
	stop_bd | cut)
		if [ "$op" = cut ]; then hosts_cut "$h"; else kill -STOP "$(hosts_ballastd_pid "$h")"; fi
		if [ "$4" = 1 ] && [ "$h" = "$x" ]; then
			failover "$y" "$([ "$op" = cut ] || [ "$BE" = gluster ] && echo 1 || echo 0)"
		else
			sleep "$3"
		fi
		if [ "$op" = cut ]; then hosts_restore "$h"; else kill -CONT "$(hosts_ballastd_pid "$h")"; fi
		old_gone
		settle "${RUN_ON:-$x}"
		;;
	dockerd)
		hosts_dockerd_restart "$h" "$3" || t_failed "dockerd $h restarts after SIG$3" "see its log"
		if [ "$h" = "$x" ]; then
			# its containers are gone or stopped: remove the database
			writer_stop
			hosts_dk "$x" rm -f "$CT" >/dev/null 2>&1
			RUN_ON=""
		fi
		settle "$x"
		;;
	force)
		out=$("$B/ballast" --socket "$(hosts_ballastd_sock "$y")" release "$V" --force 2>&1)
		log "release --force on $y: $out"
		old_detach
		pg_start "$y" && HANDOFFS=$((HANDOFFS + 1))
		old_gone
		settle "$y"
		;;
	esac
}

# ------------------------------------------------------------------- runs
# final: the database stopped, the volume mounts on A, then on B (within
# the bound each), and nothing is left mapped, mounted or held; no fence
# of the volume is left in force.
final() {
	local x end ok left
	pg_stop
	for x in A B; do
		end=$((SECONDS + LEASE + 30)) ok=no
		while [ "$SECONDS" -lt "$end" ]; do
			if hosts_dk "$x" run --rm --network none --volume-driver "$(hosts_plugin "$x")" -v "$V:/data" \
				"$PGIMG" ls /data/pg/PG_VERSION >"$T/final.out" 2>&1; then
				ok=yes
				break
			fi
			sleep 2
		done
		if [ "$ok" != yes ]; then
			STUCK=$((STUCK + 1))
			log "STUCK: $x cannot mount $V: $(grep -m 1 -i 'error' "$T/final.out" || tail -n 1 "$T/final.out")"
		fi
	done
	left=""
	for x in a b; do
		[ -n "$(awk -v d="$T/$x/state/mounts/$V" '$2 == d || index($2, d "/") == 1' /proc/mounts)" ] &&
			left+=" mounted on $x;"
		[ -n "$("$B/ballast" --socket "$(hosts_ballastd_sock "$x")" holders --json 2>/dev/null |
			jq -r --arg v "$V" '.Holders[]? | select(.name == $v) | .host')" ] && left+=" held (seen from $x);"
	done
	for ((end = 0; end < 75; end++)); do
		[ -z "$(pgrep -f -- "--image $V .*$T" || true)" ] && break
		sleep 0.2
	done
	[ -n "$(pgrep -f -- "--image $V .*$T" || true)" ] && left+=" a mapper runs;"
	if [ -n "$left" ]; then
		STUCK=$((STUCK + 1))
		log "LEFT:$left"
	fi
	for x in A B; do
		if [ "$BE" = gluster ] && [ "$(fenced_at_cluster "$x")" = yes ]; then
			STALE=$((STALE + 1))
			log "STALE FENCE: $x is still fenced from $V after it mounted it again"
		fi
	done
}

for BE in $BACKENDS; do
	seeds=$SEEDS_RBD
	[ "$BE" = gluster ] && seeds=$SEEDS_GLUSTER
	for SEED in $seeds; do
		V=chaos$BE$SEED STEP=0
		HANDOFFS=0 LOST=0 DOUBLE=0 STUCK=0 STALE=0 BAD=0 CHECKS=0
		rm -f "$T"/acks.* "$T"/stop.* "$T/lost.all"
		mapfile -t SCHED < <(draw "$SEED" "$STEPS" "$BE")
		t_diag "chaos schedule, seed $SEED, $BE: $(printf '%s; ' "${SCHED[@]}")"
		t1=$SECONDS
		if [ "$BE" = rbd ]; then
			t_ok "$V: created on A (rbd, 512M)" \
				hosts_dk A volume create -d "$HOSTS_PLUGIN_A" -o backend=rbd -o size=512M "$V"
		else
			t_ok "$V: created on A (gluster, exclusive)" \
				hosts_dk A volume create -d "$HOSTS_PLUGIN_A" -o backend=gluster -o exclusive=true "$V"
		fi
		t_ok "$V: B's ballastd knows it" hosts_wait_listed B "$V" 20
		if ! pg_start A || ! settle A; then
			t_failed "$V: PostgreSQL starts on A and commits" "$PG_WHY"
			continue
		fi
		check
		for line in "${SCHED[@]}"; do
			STEP=$((STEP + 1))
			log "$line (database on $RUN_ON, epoch $EPOCH, $(acked) acknowledged)"
			# shellcheck disable=SC2086 # the step's words
			step $line
			[ -n "$RUN_ON" ] || break
			check
		done
		[ -n "$RUN_ON" ] && check
		final
		summary="seed $SEED, $STEP steps, $HANDOFFS hand-offs, $LOST lost commits, $DOUBLE double writes,"
		summary+=" $STUCK stuck volumes, $STALE stale fences ($BAD failed integrity checks, $CHECKS checks,"
		summary+=" $(acked) commits acknowledged, $((SECONDS - t1)) s)"
		t_eq "chaos $BE: $summary" "0 0 0 0 0" "$LOST $DOUBLE $STUCK $STALE $BAD"
		t_diag "chaos: $summary"
		t_ok "$V: removed" hosts_dk A volume rm "$V"
	done
done
