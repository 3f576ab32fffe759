#!/usr/bin/env bash
# tests/integration/handoff.sh - a real database moves between two simulated
# hosts on ballast volumes, and a dead host is fenced.
#
# The bed (tests/lib/hosts.sh): hosts A and B in network namespaces of their
# own, each with its own ballastd (state dir, host id) and its own dockerd,
# a one-node Ceph cluster and a GlusterFS volume in a third namespace that
# both reach over veth links; A's link can be cut. The database is SQLite
# from Debian, in an image imported here (tests/lib/dbimage.sh); its data
# directory is the ballast volume. Every transaction is one sqlite3 run
# (PRAGMA synchronous=EXTRA: in the default rollback-journal mode a commit
# is the journal's unlink, made durable only by EXTRA's directory fsync;
# with FULL the last acknowledged commit may be rolled back after a crash,
# as SQLite documents), printing "ok N" once committed.
#
# For rbd and for gluster with exclusive=true:
# - 3 clean hand-offs (A's database commits, stops; B's starts and finds
#   every committed row, contiguous, PRAGMA integrity_check ok) and 2 after
#   SIGKILL of the database, alternating A -> B -> A ...; while one host's
#   database runs, the other host's Mount is refused naming it;
# - a partition: A cut off mid-write; B is refused while A's lease is fresh,
#   takes over once it expired (fencing A first), finds every row A
#   acknowledged; A's link restored: A's writes fail and never reach the
#   data; A's ballastd restarted does not mount the volume (held by B);
#   `ballast holders` and `ballast release` (refused while fresh); after B
#   lets go, A mounts it again;
# - `ballast release --force` while A writes: A is fenced at once, B mounts;
# - -o takeover=never: an expired lease still refuses B until an operator's
#   `ballast release`;
# - ballastd A killed while A's database writes, down past the lease: rbd
#   keeps the hold (the mapper renews it) and A keeps committing; gluster
#   (ballastd renews) is taken over by B, A's running database fenced;
# - on every volume, host B first hears of it from dockerd's Create without
#   options (B's list refresh is off): the volume A made, never a local one.
#
# HANDOFF_SOAK=N (make soak): instead, N hand-offs per backend alternating
# A -> B -> A (clean and SIGKILL in turn), a Mount tried on the other host
# during each (a success is a double-writer window), and a summary line
#   handoffs: N ok, L lost commits, D double-writer windows
# with the average hand-off time (stop on one host to database ready on
# the other).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# leases short enough for a test; timeouts bound every cluster call
HOSTS_RBD_LEASE=${HOSTS_RBD_LEASE:-8}
HOSTS_GL_LEASE=${HOSTS_GL_LEASE:-8}
HOSTS_RBD_TIMEOUT=${HOSTS_RBD_TIMEOUT:-5}
HOSTS_GL_TIMEOUT=${HOSTS_GL_TIMEOUT:-5}
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/ceph.sh
. "$HERE/../lib/ceph.sh"
# shellcheck source=../lib/gluster.sh
. "$HERE/../lib/gluster.sh"
# shellcheck source=../lib/hosts.sh
. "$HERE/../lib/hosts.sh"
# shellcheck source=../lib/dbimage.sh
. "$HERE/../lib/dbimage.sh"

t_group handoff
B=$BALLAST_BUILD
SOAK=${HANDOFF_SOAK:-0}
DBIMG=$DBIMAGE_NAME

[ "$(id -u)" -eq 0 ] || t_die "must run as root"
for c in docker jq curl nsenter ip; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done
for b in ballastd ballast mount.ballast ballast-rbd-map; do
	[ -x "$B/$b" ] || t_die "$B/$b missing: build with the rbd and gluster backends"
done
ceph_deps || t_die "cannot install the Ceph packages"
gluster_deps || t_die "cannot install the GlusterFS packages"
dbimage_deps || t_die "cannot install sqlite3 and busybox-static"

T=$(mktemp -d /tmp/ballast-handoff.XXXXXX)
# A `gluster` first on every PATH here (ballastd's too): glusterd's own CLI,
# except that `volume set VOL auth.reject VALUE` waits 2 s first while
# $GLSLOW names a string that VALUE holds (fence_race: a host slow between
# its read of auth.reject and its write). Otherwise nothing changes.
GLSLOW=$T/gluster-slow
GLREAL=$(command -v gluster) || t_die "gluster not installed"
{ mkdir -p "$T/bin" && : >"$GLSLOW"; } || t_die "cannot write in $T"
cat >"$T/bin/gluster" <<WRAPPER || t_die "cannot write $T/bin/gluster"
#!/bin/sh
pat=\$(cat '$GLSLOW' 2>/dev/null)
case " \$* " in
*" volume set "*" auth.reject "*) [ -n "\$pat" ] && case "\$*" in *"\$pat"*) sleep 2 ;; esac ;;
esac
exec '$GLREAL' "\$@"
WRAPPER
chmod 0755 "$T/bin/gluster" && export PATH="$T/bin:$PATH"
cleanup() {
	dbimage_cleanup
	hosts_finish "$T"
}
t_at_exit cleanup

ms_now() { local t=${EPOCHREALTIME/./}; echo $((10#$t / 1000)); }
lower() { printf '%s' "${1,,}"; }

# ------------------------------------------------------------------ the bed
t0=$(ms_now)
hosts_net_start || t_die "cannot make the network namespaces"
hosts_ceph_start "$T/ceph" || t_die "the Ceph cluster did not start"
hosts_gluster_start "$T/gluster" || t_die "GlusterFS did not start"
for x in A B; do
	d=$T/$(lower $x)
	hosts_ballastd_conf $x "$d" >/dev/null || t_die "cannot write ballastd $x's config"
done
# B learns of A's volumes only through dockerd's requests (see make_volume)
[ "$SOAK" -gt 0 ] || sed -i 's/^refresh_interval = .*/refresh_interval = 3600/' "$T/b/ballast.conf"
for x in A B; do
	hosts_ballastd_start $x "$T/$(lower $x)" || t_die "ballastd $x did not start"
done
for x in A B; do
	hosts_dockerd_start $x "$T/d$(lower $x)" || t_die "dockerd $x did not start"
done
dbimage_build dka || t_die "cannot import the database image into dockerd A"
dbimage_build dkb || t_die "cannot import the database image into dockerd B"
t_diag "two hosts, Ceph, Gluster, two ballastd, two dockerd and the image up in $((($(ms_now) - t0) / 1000)) s"

# ------------------------------------------------------------ the database
# db X VOL SQL: one sqlite3 run on host X with VOL as /data.
db() {
	local x=$1 v=$2
	shift 2
	hosts_dk "$x" run --rm --network none --volume-driver "$(hosts_plugin "$x")" -v "$v:/data" "$DBIMG" \
		sqlite3 /data/db "$@"
}

# check X VOL: "COUNT MAX INTEGRITY" of the table, as host X's database
# starting on VOL sees it (or the error that stopped it).
check() {
	db "$1" "$2" "SELECT count(*) || ' ' || coalesce(max(n), 0) FROM t; PRAGMA integrity_check;" 2>&1 |
		tr '\n' ' ' | sed 's/ $//'
}

# The writer: transactions FROM, FROM+1, ... (to TO; 0: no end), one
# sqlite3 run each; "ok N" after each commit, "fail N" and exit 1 on an
# error; after TO it stays up (holding the volume) until SIGTERM.
read -r -d '' WRITER <<'EOF'
trap 'exit 0' TERM
i=$FROM
while [ "$TO" = 0 ] || [ "$i" -le "$TO" ]; do
	sqlite3 /data/db "PRAGMA synchronous=EXTRA; INSERT INTO t(n, host) VALUES($i, '$H');" || { echo "fail $i"; exit 1; }
	echo "ok $i"
	i=$((i + 1))
done
echo done
while :; do sleep 1; done
EOF

# writer_start X VOL NAME FROM TO
writer_start() {
	hosts_dk "$1" run -d --name "$3" --network none --volume-driver "$(hosts_plugin "$1")" -v "$2:/data" \
		-e FROM="$4" -e TO="$5" -e H="$(lower "$1")" "$DBIMG" sh -c "$WRITER" >/dev/null
}
# acked X NAME: the last transaction NAME on X reported committed (0: none)
acked() {
	hosts_dk "$1" logs "$2" 2>/dev/null | awk '$1 == "ok" { n = $2 } END { print n + 0 }'
}
# wait_acked X NAME N SECONDS: until N transactions are acknowledged
wait_acked() {
	local end=$((SECONDS + $4))
	while [ "$(acked "$1" "$2")" -lt "$3" ]; do
		[ "$SECONDS" -ge "$end" ] && return 1
		hosts_dk "$1" logs "$2" 2>&1 | grep -q '^fail' && return 1
		sleep 0.2
	done
}
# wait_done X NAME SECONDS: until the writer printed "done"
wait_done() {
	local end=$((SECONDS + $3))
	until hosts_dk "$1" logs "$2" 2>/dev/null | grep -qx 'done'; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.2
	done
}

# mount_refused X VOL WHO: host X's Mount of VOL is refused naming host WHO
# (asked of ballastd X directly, as dockerd would). Prints the error; a
# Mount that succeeded is undone and returns 1.
mount_refused() {
	local out err
	out=$(hosts_bd "$1" VolumeDriver.Mount "{\"Name\":\"$2\",\"ID\":\"probe\"}")
	err=$(err_of Mount <<<"$out")
	if [ -z "$err" ]; then
		hosts_bd "$1" VolumeDriver.Unmount "{\"Name\":\"$2\",\"ID\":\"probe\"}" >/dev/null
		echo "MOUNTED: $out"
		return 1
	fi
	echo "$err"
	[[ $err == *"in use on"*"$3"* ]]
}

# wait_known X VOL: until ballastd X lists VOL (its refresh of the cluster)
wait_known() {
	local end=$((SECONDS + 20))
	until [ "$(hosts_bd "$1" VolumeDriver.Get "{\"Name\":\"$2\"}" | jq -r '.Volume.Name // ""')" = "$2" ]; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.2
	done
}

NEXT=1 # the next transaction number
HANDOFF_MS=()
SEQ=0

# handoff_clean X VOL K: X commits K transactions and stops cleanly; Y's
# database starts and must see all of them.
handoff_clean() {
	local x=$1 v=$2 k=$3 y w from to t0 res
	y=$(hosts_other "$x")
	SEQ=$((SEQ + 1))
	w=w$SEQ
	from=$NEXT
	to=$((NEXT + k - 1))
	writer_start "$x" "$v" "$w" "$from" "$to" || return 1
	if ! wait_done "$x" "$w" 120; then
		t_failed "$v: $x's database committed $from..$to" "$(hosts_dk "$x" logs "$w" 2>&1 | tail -n 3)"
		hosts_dk "$x" rm -f "$w" >/dev/null 2>&1
		return 1
	fi
	if [ "$SOAK" -eq 0 ] || [ $((SEQ % 2)) -eq 0 ]; then
		REFUSED=$(mount_refused "$y" "$v" "host-$(lower "$x")") || DOUBLE=$((DOUBLE + 1))
	fi
	t0=$(ms_now)
	hosts_dk "$x" stop -t 10 "$w" >/dev/null && hosts_dk "$x" rm "$w" >/dev/null
	res=$(check "$y" "$v")
	HANDOFF_MS+=($(($(ms_now) - t0)))
	LAST_RES=$res
	EXPECT="$to $to ok"
	NEXT=$((to + 1))
	[ "$res" = "$EXPECT" ]
}

# handoff_kill X VOL K: X's database is SIGKILLed after at least K commits;
# Y's database must see every acknowledged one, and no gap.
handoff_kill() {
	local x=$1 v=$2 k=$3 y w last res cnt max ok
	y=$(hosts_other "$x")
	SEQ=$((SEQ + 1))
	w=w$SEQ
	writer_start "$x" "$v" "$w" "$NEXT" 0 || return 1
	if ! wait_acked "$x" "$w" $((NEXT + k - 1)) 120; then
		t_failed "$v: $x's database committed $k" "$(hosts_dk "$x" logs "$w" 2>&1 | tail -n 3)"
		hosts_dk "$x" rm -f "$w" >/dev/null 2>&1
		return 1
	fi
	hosts_dk "$x" kill -s KILL "$w" >/dev/null
	last=$(acked "$x" "$w")
	hosts_dk "$x" rm -f "$w" >/dev/null
	res=$(check "$y" "$v")
	LAST_RES=$res
	read -r cnt max ok <<<"$res"
	[[ $cnt =~ ^[0-9]+$ && $max =~ ^[0-9]+$ ]] || cnt=-1 max=0
	EXPECT="every acknowledged commit (to $last), no gap, integrity ok"
	# a database the new host cannot read lost every acknowledged commit
	# as far as anyone can show (cnt -1): counted, never 0
	KILL_LOST=0
	[[ $last =~ ^[0-9]+$ ]] || last=0
	[ "$cnt" -lt "$last" ] && KILL_LOST=$((last - (cnt < 0 ? 0 : cnt)))
	NEXT=$((${max:-0} + 1))
	[[ $cnt =~ ^[0-9]+$ ]] && [ "$cnt" = "$max" ] && [ "$max" -ge "$last" ] && [ "$max" -le $((last + 1)) ] &&
		[ "$ok" = ok ]
}

# ---------------------------------------------------------------- volumes
make_volume() { # BACKEND VOL
	local v=$2
	if [ "$1" = rbd ]; then
		t_ok "$v: docker volume create on A (rbd, 256M)" \
			hosts_dk A volume create -d "$HOSTS_PLUGIN_A" -o backend=rbd -o size=256M "$v"
	else
		t_ok "$v: docker volume create on A (gluster, exclusive)" \
			hosts_dk A volume create -d "$HOSTS_PLUGIN_A" -o backend=gluster -o exclusive=true "$v"
	fi
	if [ "$SOAK" -gt 0 ]; then
		t_ok "$v: host B's ballastd lists it" wait_known B "$v"
		t_eq "$v: the table is made on A" "" "$(db A "$v" 'CREATE TABLE t(n INTEGER PRIMARY KEY, host TEXT NOT NULL);' 2>&1)"
		return
	fi
	# B's ballastd does not refresh its list here (refresh_interval is an
	# hour): B's dockerd sends a Create without options for a name B does
	# not know, which must find the volume in the cluster, never make an
	# empty local one in its place.
	# B's Get and `docker volume inspect` find it at once too: a name B
	# does not know is looked up in the shared backends (before: "not
	# found" until B's next refresh, 15 s by default).
	t_eq "$v: B's Get finds it at once (B's list never refreshed)" "" \
		"$(hosts_bd B VolumeDriver.Get "{\"Name\":\"$v\"}" | err_of Get)"
	# (ballast inspect, not docker volume inspect: dockerd B would ask
	# every plugin of the shared spec dir, A's too, and bind the name to
	# ballast-a.)
	t_eq "$v: ... and ballast inspect on B shows it" "$v" \
		"$(timeout 30 "$B/ballast" --socket "$(hosts_ballastd_sock B)" inspect "$v" --json 2>&1 | jq -r '.name // empty' 2>&1)"
	t_eq "$v: B's database makes the table at once, before B could list the volume" "" \
		"$(db B "$v" 'CREATE TABLE t(n INTEGER PRIMARY KEY, host TEXT NOT NULL);' 2>&1)"
	t_eq "$v: ... on the volume A made, not on a new local one" "$be" \
		"$(hosts_bd B Ballast.Inspect "{\"Name\":\"$v\"}" | jq -r '.Volume.backend')"
	t_eq "$v: A sees B's table" "0 0 ok" "$(check A "$v")"
}

# mount path of VOL on host X's ballastd (its mount.ballast target)
data_dir() { # X BACKEND VOL
	if [ "$2" = rbd ]; then echo "$T/$(lower "$1")/state/mounts/$3/data"; else echo "$T/$(lower "$1")/state/mounts/$3"; fi
}

# ---------------------------------------------------------------- soak
if [ "$SOAK" -gt 0 ]; then
	TOTAL_OK=0 TOTAL_LOST=0 DOUBLE=0 ALL_OK=0
	for be in rbd gluster; do
		v=soak$be
		NEXT=1
		make_volume "$be" "$v"
		x=A
		for ((i = 1; i <= SOAK; i++)); do
			if [ $((i % 4)) -eq 0 ]; then
				handoff_kill "$x" "$v" 3 && r=0 || r=1
				TOTAL_LOST=$((TOTAL_LOST + KILL_LOST))
			else
				handoff_clean "$x" "$v" 3 && r=0 || r=1
				if [ "$r" -ne 0 ]; then
					# unreadable on the new host: every commit so far is lost
					read -r cnt _ <<<"$LAST_RES"
					[[ $cnt =~ ^[0-9]+$ ]] || cnt=0
					[ "$cnt" -lt $((NEXT - 1)) ] && TOTAL_LOST=$((TOTAL_LOST + NEXT - 1 - cnt))
				fi
			fi
			if [ "$r" -eq 0 ]; then
				TOTAL_OK=$((TOTAL_OK + 1))
			else
				t_failed "$be hand-off $i from $x" "expected: $EXPECT" "got: $LAST_RES"
			fi
			x=$(hosts_other "$x")
		done
		t_eq "$be: $SOAK hand-offs" "$SOAK" "$TOTAL_OK"
		ALL_OK=$((ALL_OK + TOTAL_OK))
		TOTAL_OK=0
	done
	sum=0
	for m in "${HANDOFF_MS[@]}"; do sum=$((sum + m)); done
	n=${#HANDOFF_MS[@]}
	t_eq "no lost commits" 0 "$TOTAL_LOST"
	t_eq "no double-writer windows" 0 "$DOUBLE"
	printf 'handoffs: %d ok, %d lost commits, %d double-writer windows (average clean hand-off %d ms over %d)\n' \
		"$ALL_OK" "$TOTAL_LOST" "$DOUBLE" $((n ? sum / n : 0)) "$n"
	exit 0
fi

# ------------------------------------------------------------ hand-offs
DOUBLE=0
for be in rbd gluster; do
	v=db$be
	NEXT=1
	make_volume "$be" "$v"
	x=A
	for kind in clean clean clean kill kill; do
		y=$(hosts_other "$x")
		if [ "$kind" = clean ]; then
			handoff_clean "$x" "$v" 15
			t_eq "$v: clean hand-off $x -> $y: every commit there, integrity ok" "$EXPECT" "$LAST_RES"
			t_match "$v: while $x's database ran, $y's Mount was refused naming host-$(lower "$x")" \
				"in use on (host )?host-$(lower "$x")" "$REFUSED"
		else
			handoff_kill "$x" "$v" 10
			t_ok "$v: hand-off $x -> $y after SIGKILL: $EXPECT (got $LAST_RES)" test "$KILL_LOST" -eq 0 -a \
				"${LAST_RES##* }" = ok
			t_match "$v: ... no gap, all rows numbered 1..max" '^([0-9]+) \1 ok$' "$LAST_RES"
		fi
		x=$y
	done
done
t_eq "no double-writer window in any hand-off" 0 "$DOUBLE"
sum=0
for m in "${HANDOFF_MS[@]}"; do sum=$((sum + m)); done
t_diag "clean hand-off (stop on one host to the database answering on the other): average $((sum / ${#HANDOFF_MS[@]})) ms over ${#HANDOFF_MS[@]} (${HANDOFF_MS[*]} ms)"

# ------------------------------------------------------------ partitions
# starts_ok X VOL: "ok" when X's database starts on VOL and passes its check
starts_ok() {
	local r
	r=$(check "$1" "$2")
	if [[ $r =~ ^[0-9]+\ [0-9]+\ ok$ ]]; then echo ok; else echo "$r"; fi
}
# holder_of X VOL: "HOST expired=BOOL" of VOL in X's `ballast holders --json`
holder_of() {
	"$B/ballast" --socket "$(hosts_ballastd_sock "$1")" holders --json |
		jq -r --arg v "$2" '.Holders[] | select(.name == $v) | "\(.host) expired=\(.expired)"'
}
# a_write_fails BACKEND DIR NAME: a write of NAME through A's old mount of
# the volume fails (a gluster client refused by the bricks may also have
# unmounted itself: then nothing of A's reaches the volume by that path
# either)
a_write_fails() {
	if [ "$1" = gluster ] && ! mountpoint -q "$2"; then
		return 0
	fi
	! hosts_exec A timeout 60 dd if=/dev/zero of="$2/$3" bs=4k count=1 conv=fsync status=none 2>/dev/null
}
# files_on X VOL: the names in VOL's top directory, as a container on
# host X sees them (one line, sorted)
files_on() {
	hosts_dk "$1" run --rm --network none --volume-driver "$(hosts_plugin "$1")" -v "$2:/data" "$DBIMG" \
		ls -a /data 2>&1 | sort | tr '\n' ' '
}

a_failed() { if hosts_dk A logs "$1" 2>&1 | grep -q '^fail'; then echo yes; else echo no; fi; }

partition() {
	local be=$1 v=part$1 lease acked_cut err res tcut cnt max ok total a_dir files
	lease=$HOSTS_RBD_LEASE
	[ "$be" = gluster ] && lease=$HOSTS_GL_LEASE
	NEXT=1
	make_volume "$be" "$v"
	a_dir=$(data_dir A "$be" "$v")
	writer_start A "$v" pa 1 0
	t_ok "$v: A's database writes" wait_acked A pa 10 120 || return 1
	# the control of the data-plane probes below: while A holds the
	# volume, a write through its mount works and shows on the volume
	t_fail "$v: (control) a write through A's mount works while A holds it" a_write_fails "$be" "$a_dir" control-a
	hosts_cut A
	tcut=$(ms_now)
	sleep 1
	acked_cut=$(acked A pa)
	err=$(check B "$v")
	t_match "$v: A cut off mid-write; while its lease is fresh B's database cannot start (in use on host-a)" \
		"in use on (host )?host-a" "$err"
	t_wait_eq "$v: B's database starts once A's lease ($lease s) expired" $((lease + 60)) ok starts_ok B "$v"
	t_diag "$v: B's database answered $((($(ms_now) - tcut) / 1000)) s after A was cut off (lease $lease s)"
	res=$(check B "$v")
	read -r cnt max ok <<<"$res"
	[[ $cnt =~ ^[0-9]+$ && $max =~ ^[0-9]+$ ]] || cnt=-1 max=0
	t_eq "$v: A acknowledged nothing while cut off" "$acked_cut" "$(acked A pa)"
	t_ok "$v: B has every commit A acknowledged ($acked_cut), no gap, integrity ok (got $res)" \
		test "$cnt" = "$max" -a "${max:-0}" -ge "$acked_cut" -a "$ok" = ok
	NEXT=$((${max:-0} + 1))
	total=$((NEXT + 9))
	writer_start B "$v" pb "$NEXT" "$total"
	t_ok "$v: B's database commits 10 more and keeps running" wait_done B pb 120
	t_match "$v: B's ballastd fenced A before taking over" "fenced" \
		"$(grep -E "$v.*fenced|fenced.*$v" "$T/b/ballastd.log" | head -n 1)"

	hosts_restore A
	sleep 5
	t_ok "$v: A's link restored: a write through A's old mount fails" a_write_fails "$be" "$a_dir" probe-from-a
	sleep 3
	# A commit in flight at the cut can be acknowledged once the link is
	# back: its data reached the servers before the cut (B started with it)
	# and only the reply was held up. Seen once on gluster: 14 acknowledged
	# at the cut, 15 after the restore, B started with rows 1..15. What
	# must never be is an acknowledgement of a row B did not start with.
	late=$(acked A pa)
	t_ok "$v: ... and A acknowledged nothing B did not start with ($late acknowledged, B started with $max)" \
		test "${late:-999999}" -le "${max:-0}"
	t_match "$v: A's database saw its commit fail" "^fail [0-9]+$" "$(hosts_dk A logs pa 2>&1 | grep '^fail' | tail -n 1)"
	t_eq "$v: B's data: every commit, integrity ok, nothing of A's since the cut" "$total $total ok" \
		"$(check B "$v")"
	files=$(files_on B "$v")
	t_match "$v: (control) B sees the file A wrote while it held the volume" " control-a " " $files"
	t_nomatch "$v: A's probe write after the takeover is nowhere in B's volume" "probe-from-a" "$files"

	hosts_ballastd_kill9 A
	t_ok "$v: A's ballastd restarts (kill -9)" hosts_ballastd_start A "$T/a"
	t_match "$v: restarted A does not mount it again: in use on host-b" "in use on (host )?host-b" "$(check A "$v")"
	t_eq "$v: ballast holders (on A) names host-b, lease fresh" "host-b expired=false" "$(holder_of A "$v")"
	t_match "$v: ... and its table too: name, backend, host, since, lease until, held" \
		"^$v +$be +host-b +[0-9TZ:-]+ +[0-9TZ:-]+ +held$" \
		"$("$B/ballast" --socket "$(hosts_ballastd_sock A)" holders | grep "^$v ")"
	t_match "$v: ballast release without --force is refused while the lease is fresh" \
		"lease is fresh: --force" "$("$B/ballast" --socket "$(hosts_ballastd_sock A)" release "$v" 2>&1)"
	t_ok "$v: A's old database container is removed (Unmount on A)" hosts_dk A rm -f pa
	t_eq "$v: ... without touching B's hold" "host-b expired=false" "$(holder_of B "$v")"
	t_ok "$v: B's database stops" hosts_dk B stop -t 10 pb
	hosts_dk B rm pb >/dev/null
	t_eq "$v: nobody holds it after B let go" "" "$(holder_of B "$v")"
	t_eq "$v: A mounts it again and finds B's data" "$total $total ok" "$(check A "$v")"

	# An operator's forced release while A writes: A fenced at once.
	NEXT=$((total + 1))
	writer_start A "$v" pf "$NEXT" 0
	t_ok "$v: A's database writes again" wait_acked A pf $((NEXT + 4)) 120 || return 1
	t_match "$v: ballast release --force on B" "^released $v" \
		"$("$B/ballast" --socket "$(hosts_ballastd_sock B)" release "$v" --force 2>&1)"
	t_wait_eq "$v: A's database fails its next commit" 60 yes a_failed pf
	t_ok "$v: a write through A's old mount fails after the forced release" a_write_fails "$be" "$a_dir" probe-forced
	res=$(check B "$v")
	read -r cnt max ok <<<"$res"
	[[ $cnt =~ ^[0-9]+$ && $max =~ ^[0-9]+$ ]] || cnt=-1 max=0
	t_ok "$v: B's database starts with every commit A acknowledged ($(acked A pf)), integrity ok (got $res)" \
		test "$cnt" = "$max" -a "${max:-0}" -ge "$(acked A pf)" -a "$ok" = ok
	t_nomatch "$v: ... and A's probe write is nowhere in B's volume" "probe-forced" "$(files_on B "$v")"
	hosts_dk A rm -f pf >/dev/null
}

# never_takeover BACKEND: -o takeover=never: a dead holder's volume stays
# refused after its lease, until an operator releases it (fencing it).
never_takeover() {
	local be=$1 v=never$1 lease=$HOSTS_RBD_LEASE err
	[ "$be" = gluster ] && lease=$HOSTS_GL_LEASE
	if [ "$be" = rbd ]; then
		t_ok "$v: created with -o takeover=never" \
			hosts_dk A volume create -d "$HOSTS_PLUGIN_A" -o backend=rbd -o size=64M -o takeover=never "$v"
	else
		t_ok "$v: created with -o takeover=never" hosts_dk A volume create -d "$HOSTS_PLUGIN_A" \
			-o backend=gluster -o exclusive=true -o takeover=never "$v"
	fi
	t_eq "$v: B learns of it from a Create without options (as dockerd sends)" "$be" \
		"$(hosts_bd B VolumeDriver.Create "{\"Name\":\"$v\"}" >/dev/null
		hosts_bd B Ballast.Inspect "{\"Name\":\"$v\"}" | jq -r '.Volume.backend')"
	t_eq "$v: A mounts it" "" "$(hosts_bd A VolumeDriver.Mount "{\"Name\":\"$v\",\"ID\":\"n1\"}" | err_of Mount)"
	hosts_cut A
	sleep $((lease + 2))
	err=$(hosts_bd B VolumeDriver.Mount "{\"Name\":\"$v\",\"ID\":\"n2\"}" | err_of Mount)
	t_match "$v: A's lease expired, and B is still refused (takeover=never)" "in use on (host )?host-a" "$err"
	t_eq "$v: ballast holders says expired" "host-a expired=true" "$(holder_of B "$v")"
	t_match "$v: an operator releases it on B (fencing A)" "^released $v" \
		"$("$B/ballast" --socket "$(hosts_ballastd_sock B)" release "$v" 2>&1)"
	t_eq "$v: then B mounts it" "" "$(hosts_bd B VolumeDriver.Mount "{\"Name\":\"$v\",\"ID\":\"n2\"}" | err_of Mount)"
	hosts_restore A
	t_eq "$v: B unmounts it" "" "$(hosts_bd B VolumeDriver.Unmount "{\"Name\":\"$v\",\"ID\":\"n2\"}" | err_of Mount)"
	hosts_bd A VolumeDriver.Unmount "{\"Name\":\"$v\",\"ID\":\"n1\"}" >/dev/null
}

# api X ENDPOINT VOL ID: X's ballastd's Err for VolumeDriver.ENDPOINT of VOL
# with mount ID ("" on success; silence is never success: see err_of)
api() { hosts_bd "$1" "VolumeDriver.$2" "{\"Name\":\"$3\",\"ID\":\"$4\"}" | err_of "$2"; }
# gl_make VOL: an exclusive gluster volume made on A, which B learns of
gl_make() {
	hosts_bd A VolumeDriver.Create "{\"Name\":\"$1\",\"Opts\":{\"backend\":\"gluster\",\"exclusive\":\"true\"}}" |
		err_of Create
	hosts_bd B VolumeDriver.Create "{\"Name\":\"$1\"}" | err_of Create
}
# holder_expiry X VOL: expires_unix of VOL's hold in X's `ballast holders --json`
holder_expiry() {
	"$B/ballast" --socket "$(hosts_ballastd_sock "$1")" holders --json |
		jq -r --arg v "$2" '.Holders[] | select(.name == $v) | .expires_unix'
}
# lost_on X VOL: "lost" of VOL in X's status (true/false; "none" without)
lost_on() {
	hosts_bd "$1" Ballast.Inspect "{\"Name\":\"$2\"}" |
		jq -r '.Volume.status.lost | if . == null then "none" else tostring end'
}
both_lost() { echo "$(lost_on A race1) $(lost_on A race2)"; }
release_force() { "$B/ballast" --socket "$(hosts_ballastd_sock B)" release "$1" --force 2>&1; }

# lost_hold: issue 13, item 5 ("a lost gluster hold comes back"). A holds
# an exclusive gluster volume (mounted through the API: nothing unmounts
# it); B's operator forces a release (A fenced, its record dropped). A's
# renewer must not write its record back, and B can mount the volume; A's
# own next Mount takes the normal path: refused while B holds it, and once
# B let go, a live mount replaces A's dead one. Fails when the fix is
# reverted: A's renewer wrote its record back within lease/3, so after
# 2 x lease/3 B's holders named host-a and B's Mount was refused.
# gl_reachable X: "true" when X's ballastd's check of the Gluster volume passes
gl_reachable() {
	hosts_bd "$1" Ballast.Check '{}' | jq -r '[.Checks[]? | select(.check == "gluster volume") | .ok] | all and length > 0'
}
lost_hold() {
	local v=lostgl period=$((HOSTS_GL_LEASE / 3)) e1 e2 a_dir
	a_dir=$(data_dir A gluster "$v")
	# A's link was restored a moment ago (nevergluster): a gfapi connect
	# made at once may still find the servers unreachable
	t_wait_eq "$v: A's ballastd reaches Gluster again" 60 true gl_reachable A
	t_eq "$v: made on A (gluster, exclusive), known to B" "" "$(gl_make "$v")"
	t_eq "$v: A mounts it" "" "$(api A Mount "$v" l1)"
	e1=$(holder_expiry B "$v")
	sleep $((period + 1))
	e2=$(holder_expiry B "$v")
	t_ok "$v: control: A's renewer moves its lease on (expires_unix $e1 -> $e2)" test "${e2:-0}" -gt "${e1:-0}"
	t_eq "$v: control: B's holders shows A's record" "host-a expired=false" "$(holder_of B "$v")"
	t_eq "$v: control: A's status: not lost" false "$(lost_on A "$v")"
	t_match "$v: B's operator forces a release (fencing A)" "^released $v" "$(release_force "$v")"
	sleep $((2 * period + 1))
	t_eq "$v: 2 x lease/3 later, A has not written its hold again" "" "$(holder_of B "$v")"
	t_eq "$v: A's status says its hold is lost" true "$(lost_on A "$v")"
	t_match "$v: ... and A's log says so" "hold is lost" \
		"$(grep "volume $v: this host's hold is lost" "$T/a/ballastd.log")"
	t_eq "$v: B mounts it" "" "$(api B Mount "$v" l2)"
	t_match "$v: A's next Mount goes the take path: refused, naming host-b" "in use on (host )?host-b" \
		"$(api A Mount "$v" l3)"
	t_eq "$v: B unmounts it" "" "$(api B Unmount "$v" l2)"
	t_eq "$v: A's next Mount takes it again" "" "$(api A Mount "$v" l3)"
	t_eq "$v: ... A holds it" "host-a expired=false" "$(holder_of B "$v")"
	t_eq "$v: ... and its status is not lost" false "$(lost_on A "$v")"
	t_ok "$v: ... through a live mount (its dead one replaced, its fence lifted)" \
		timeout 20 sh -c "echo alive >'$a_dir/alive' && test \"\$(cat '$a_dir/alive')\" = alive"
	t_eq "$v: A unmounts both of its IDs" "" "$(api A Unmount "$v" l1)$(api A Unmount "$v" l3)"
}

# fenced_of VOL...: "VOL=yes|no ..." whether A's address is in the list of
# VOL's directory in auth.reject, as glusterd has it (read at the cluster)
fenced_of() {
	local val v e f out="" ents
	val=$(gluster_cli volume get "$GLUSTER_VOLUME" auth.reject 2>/dev/null | awk '$1 == "auth.reject" { print $2 }')
	IFS=, read -ra ents <<<"$val"
	for v in "$@"; do
		f=no
		for e in "${ents[@]}"; do
			[[ $e == "/ballast/$v("*")" ]] || continue
			e=${e#"/ballast/$v("}
			[[ "|${e%)}|" == *"|$HOSTS_ADDR_A|"* ]] && f=yes
		done
		out+="${out:+ }$v=$f"
	done
	echo "$out"
}

# fence_race: issue 13, item 2 ("gluster fences can be lost"). B fences A
# from two volumes at once (two `ballast release --force`), then A lifts
# both of its fences at once (its Mounts after the loss); no edit of
# auth.reject may drop the other's entry. One of the two edits is slow
# between its read and its write (the gluster wrapper above), so that they
# overlap every time, in one order and then the other. Fails when the fix
# (the fence lock) is reverted: the slow edit wrote back a value read
# before the other's entry went in, so auth.reject held one fence of two.
fence_race() {
	local i slow p1 p2 r1 r2
	t_eq "race1, race2: made on A (gluster, exclusive), known to B" "" "$(gl_make race1)$(gl_make race2)"
	for i in 1 2; do
		slow=race$((3 - i))
		t_eq "race $i: A mounts race1 and race2" "" "$(api A Mount race1 "m$i")$(api A Mount race2 "m$i")"
		t_eq "race $i: control: A is fenced from neither" "race1=no race2=no" "$(fenced_of race1 race2)"
		echo "/ballast/$slow(" >"$GLSLOW"
		release_force race1 >"$T/race1.out" &
		p1=$!
		release_force race2 >"$T/race2.out" &
		p2=$!
		wait "$p1"
		r1=$?
		wait "$p2"
		r2=$?
		t_eq "race $i: both releases --force on B succeed (the $slow edit slow)" "0 0" "$r1 $r2"
		t_eq "race $i: ... and both fences are in auth.reject" "race1=yes race2=yes" "$(fenced_of race1 race2)"
		t_wait_eq "race $i: A finds both holds lost" 30 "true true" both_lost
		api A Mount race1 "n$i" >"$T/race1.out" &
		p1=$!
		api A Mount race2 "n$i" >"$T/race2.out" &
		p2=$!
		wait "$p1" "$p2"
		t_eq "race $i: A takes both again at once" "" "$(cat "$T/race1.out" "$T/race2.out")"
		t_eq "race $i: ... and both of its fences are lifted" "race1=no race2=no" "$(fenced_of race1 race2)"
		: >"$GLSLOW"
		t_eq "race $i: A unmounts" "" \
			"$(for v in race1 race2; do api A Unmount $v "m$i" && api A Unmount $v "n$i"; done)"
	done
}

# daemon_dies BACKEND: ballastd A is killed while A's database writes and
# stays down past the lease. rbd: A's mapper (a process of its own) keeps
# the lease, so B stays refused and A's database keeps committing. gluster:
# ballastd renews the hold, so B takes over, fencing A: A's database's next
# commit fails, B's data is whole.
daemon_dies() {
	local be=$1 v=dies$1 lease=$HOSTS_RBD_LEASE before res cnt max ok
	[ "$be" = gluster ] && lease=$HOSTS_GL_LEASE
	NEXT=1
	make_volume "$be" "$v"
	writer_start A "$v" pd 1 0
	t_ok "$v: A's database writes" wait_acked A pd 5 120 || return 1
	hosts_ballastd_kill9 A
	sleep $((lease + 2))
	before=$(acked A pd)
	if [ "$be" = rbd ]; then
		t_match "$v: ballastd A dead past the lease: B still refused (A's mapper renews)" \
			"in use on host-a" "$(check B "$v")"
		t_ok "$v: ... and A's database still commits" wait_acked A pd $((before + 3)) 30
		t_ok "$v: ballastd A restarts" hosts_ballastd_start A "$T/a"
		t_ok "$v: A's database stops (Unmount through the restarted ballastd)" hosts_dk A rm -f pd
		res=$(check B "$v")
		read -r cnt max ok <<<"$res"
		t_ok "$v: B then has every commit, more than the $before before the lease ran out, integrity ok (got $res)" \
			test "$cnt" = "$max" -a "$ok" = ok -a "${max:-0}" -gt "$before"
	else
		t_wait_eq "$v: ballastd A dead past the lease: B takes over" 60 ok starts_ok B "$v"
		t_wait_eq "$v: A's database, still running, fails its next commit (fenced)" 60 yes a_failed pd
		res=$(check B "$v")
		read -r cnt max ok <<<"$res"
		[[ $cnt =~ ^[0-9]+$ && $max =~ ^[0-9]+$ ]] || cnt=-1 max=0
		t_ok "$v: B has every commit A acknowledged ($(acked A pd)), no gap, integrity ok (got $res)" \
			test "$cnt" = "$max" -a "$max" -ge "$(acked A pd)" -a "$ok" = ok
		t_ok "$v: ballastd A restarts" hosts_ballastd_start A "$T/a"
		hosts_dk A rm -f pd >/dev/null
		t_eq "$v: A's database starts again once B let go (A lifts its own fence)" ok "$(starts_ok A "$v")"
	fi
}

partition rbd
partition gluster
never_takeover rbd
never_takeover gluster
lost_hold
fence_race
daemon_dies rbd
daemon_dies gluster

# ------------------------------------------- a refused Remove never runs later
# Host B's container holds the volume. A's Remove must be refused before A
# records anything; and a Remove that A recorded while the volume was free
# (then killed at the crash point right after the record) and that finds the
# volume in use when A restarts is given up: A's record turns ready and is
# never retried, while B's container restarts twice with a free window of
# several of A's refresh intervals each. On the old code (the record before
# the backend's checks, every refused retry kept 'removing') the volume was
# deleted in the first free window: B's row is gone and the last checks fail.
CRASH_BUILD=${BALLAST_CRASH_BUILD:-$(cd "$HERE/../.." && pwd)/build/crash}
a_state() { jq -r .state "$T/a/state/catalog/$1.json" 2>/dev/null || echo none; }
a_alive() { if kill -0 "$(hosts_ballastd_pid A)" 2>/dev/null; then echo yes; else echo no; fi; }
# a_restart [POINT]: A's ballastd again, from the crash build, armed at POINT
a_restart() {
	hosts_ballastd_stop A >/dev/null 2>&1 || true
	hosts_ballastd_kill9 A
	BALLAST_CRASH_AT=${1:-} BALLAST_BUILD=$CRASH_BUILD hosts_ballastd_start A "$T/a"
}
b_hold() { # start (or restart) B's container holding VOL
	hosts_dk B rm -f "hold$1" >/dev/null 2>&1
	hosts_dk B run -d --name "hold$1" --network none --volume-driver "$HOSTS_PLUGIN_B" -v "$1:/data" "$DBIMG" \
		sleep 3600 >/dev/null
}
remove_err() { hosts_bd A VolumeDriver.Remove "{\"Name\":\"$1\"}" | err_of Remove; }

refused_remove() {
	local be=$1 v=rm$1 i
	NEXT=1
	make_volume "$be" "$v"
	t_eq "$v: B writes row 1" "" "$(db B "$v" "INSERT INTO t(n, host) VALUES(1, 'b');" 2>&1)"
	t_ok "$v: B's container holds the volume" b_hold "$v"
	t_ok "$v: A's ballastd (crash build) armed at remove.after-record" a_restart remove.after-record
	t_match "$v: A's Remove while B holds it: refused naming host-b" "in use on (host )?host-b" "$(remove_err "$v")"
	t_eq "$v: ... refused before the record: A is alive" yes "$(a_alive)"
	t_eq "$v: ... and A's record says ready" ready "$(a_state "$v")"
	hosts_dk B rm -f "hold$v" >/dev/null
	remove_err "$v" >/dev/null 2>&1
	t_wait_eq "$v: with the volume free, A's Remove dies at the crash point after its record" 15 no a_alive
	t_eq "$v: ... the record says removing" removing "$(a_state "$v")"
	t_ok "$v: B's container takes the volume before A is back" b_hold "$v"
	t_ok "$v: A's ballastd restarts (recovery retries the Remove)" a_restart ""
	t_eq "$v: the retried Remove, refused (in use), turns A's record ready" ready "$(a_state "$v")"
	t_match "$v: ... and A says so in its log" "interrupted remove is refused now" "$(tail -n 200 "$T/a/ballastd.log")"
	for i in 1 2; do
		hosts_dk B rm -f "hold$v" >/dev/null
		sleep 3 # three of A's refresh intervals with the volume free
		t_ok "$v: B's container restarts ($i)" b_hold "$v"
	done
	hosts_dk B rm -f "hold$v" >/dev/null
	t_eq "$v: after B's container restarted twice, B still has row 1 (integrity ok)" "1 1 ok" "$(check B "$v")"
	t_eq "$v: ... and A's record is still ready" ready "$(a_state "$v")"
	t_ok "$v: A's ballastd back to the normal build" a_restart_plain
}
a_restart_plain() {
	hosts_ballastd_stop A >/dev/null 2>&1 || true
	hosts_ballastd_kill9 A
	hosts_ballastd_start A "$T/a"
}

[ "${BALLAST_CRASH_PREBUILT:-0}" = 1 ] ||
	make -s -C "$(cd "$HERE/../.." && pwd)" BUILD="$CRASH_BUILD" CRASHPOINTS=1 all >/dev/null 2>&1 ||
	t_die "cannot build ballastd with crash points"
refused_remove rbd
refused_remove gluster

# ------------------------------------ crashes in a gluster fence and renewal
# Issue 15: crash points in the fence, the takeover, the forced release and
# the renewal of a gluster hold, each hit in a real two-host run, with what
# it must leave read at the cluster (auth.reject as glusterd has it; the
# fence note on the brick) and through the mounts. fence_crash fails on the
# old order of the fence (auth.reject first, then the note): a host fenced
# by a takeover that died between the two could never lift its fence (it
# lifts only what the note names), so its mount stayed dead while it held
# the volume again.
b_alive() { if kill -0 "$(hosts_ballastd_pid B)" 2>/dev/null; then echo yes; else echo no; fi; }
# x_restart X [POINT]: X's ballastd again; from the crash build, armed at
# POINT, when one is given
x_restart() {
	local x=$1 d
	d=$T/$(lower "$1")
	hosts_ballastd_stop "$x" >/dev/null 2>&1 || true
	hosts_ballastd_kill9 "$x"
	if [ -n "${2:-}" ]; then
		BALLAST_CRASH_AT=$2 BALLAST_BUILD=$CRASH_BUILD hosts_ballastd_start "$x" "$d"
	else
		hosts_ballastd_start "$x" "$d"
	fi
}
# noted VOL: "yes" when VOL's fence note (on the brick) names A's address
noted() {
	local f=$GL_DIR/brick/ballast/.ballast/$1.fence
	if [ -f "$f" ] && jq -e --arg a "$HOSTS_ADDR_A" 'has($a)' "$f" >/dev/null 2>&1; then echo yes; else echo no; fi
}
# a_writes DIR NAME: a write through A's mount at DIR works and reads back
a_writes() {
	hosts_exec A timeout 20 sh -c "echo '$2' >'$1/$2' && sync && test \"\$(cat '$1/$2')\" = '$2'"
}
# a_dies_after_lease: A's ballastd killed (its mount stays), its lease let run out
a_dies_after_lease() {
	hosts_ballastd_kill9 A
	sleep $((HOSTS_GL_LEASE + 2))
}
# a_takes_back VOL OLD NEW: A, whose hold of VOL was taken (its mount OLD
# dead), mounts it again as NEW: its fence lifted, its note gone, a live
# mount; then both IDs unmounted
a_takes_back() {
	t_eq "$1: A's Mount takes it again" "" "$(api A Mount "$1" "$3")"
	t_eq "$1: ... its fence lifted, its note gone" "$1=no no" "$(fenced_of "$1") $(noted "$1")"
	t_ok "$1: ... through a live mount" a_writes "$(data_dir A gluster "$1")" "live-$3"
	t_eq "$1: A unmounts both IDs" "" "$(api A Unmount "$1" "$2")$(api A Unmount "$1" "$3")"
}

fence_crash() {
	local v=fcr a_dir
	a_dir=$(data_dir A gluster "$v")
	t_wait_eq "$v: A's ballastd reaches Gluster" 60 true gl_reachable A
	t_eq "$v: made on A (gluster, exclusive), known to B" "" "$(gl_make "$v")"
	t_eq "$v: A mounts it" "" "$(api A Mount "$v" f1)"
	t_ok "$v: (control) a write through A's mount works" a_writes "$a_dir" c1
	a_dies_after_lease
	t_ok "$v: B's ballastd (crash build) armed at gluster.fence.after-note" x_restart B gluster.fence.after-note
	api B Mount "$v" f2 >/dev/null 2>&1
	t_wait_eq "$v: B's takeover dies between the fence's two steps" 30 no b_alive
	t_eq "$v: ... the note names A" yes "$(noted "$v")"
	t_eq "$v: ... auth.reject does not (yet)" "$v=no" "$(fenced_of "$v")"
	# The note means a taker got that far: A's renewals must not hold the
	# volume against it (a taker that is alive would be refused while A
	# ends up fenced: see stopped_holder). A gives the hold up, unfenced.
	t_ok "$v: A's ballastd restarts" hosts_ballastd_start A "$T/a"
	t_wait_eq "$v: ... finds the note naming it: its hold is lost, not renewed" 30 true lost_on A "$v"
	t_ok "$v: ... its mount still works (not fenced by the half-done takeover)" a_writes "$a_dir" c2
	t_ok "$v: B's ballastd restarts (normal build)" x_restart B
	t_eq "$v: B's Mount (the retry) takes it over" "" "$(api B Mount "$v" f2)"
	t_eq "$v: ... A is in auth.reject and in the note" "$v=yes yes" "$(fenced_of "$v") $(noted "$v")"
	t_ok "$v: ... a write through A's mount fails" a_write_fails gluster "$a_dir" probe-f
	t_eq "$v: B unmounts it" "" "$(api B Unmount "$v" f2)"
	a_takes_back "$v" f1 f3

	# the fence done, the hold not yet broken: B's retry takes over
	t_eq "$v: A mounts it (t1)" "" "$(api A Mount "$v" t1)"
	a_dies_after_lease
	t_ok "$v: B's ballastd armed at gluster.takeover.after-fence" x_restart B gluster.takeover.after-fence
	api B Mount "$v" t2 >/dev/null 2>&1
	t_wait_eq "$v: B's takeover dies after the fence, before breaking the hold" 30 no b_alive
	t_eq "$v: ... A is in auth.reject and in the note" "$v=yes yes" "$(fenced_of "$v") $(noted "$v")"
	t_ok "$v: ... a write through A's mount fails" a_write_fails gluster "$a_dir" probe-t
	t_ok "$v: B's ballastd restarts (normal build)" x_restart B
	t_eq "$v: B's Mount takes it over" "" "$(api B Mount "$v" t2)"
	t_eq "$v: ... B holds it" "host-b expired=false" "$(holder_of B "$v")"
	t_ok "$v: A's ballastd restarts" hosts_ballastd_start A "$T/a"
	t_match "$v: A's Mount is refused, naming host-b" "in use on (host )?host-b" "$(api A Mount "$v" t3)"
	t_eq "$v: B unmounts it" "" "$(api B Unmount "$v" t2)"
	a_takes_back "$v" t1 t3

	# a forced release that dies after its fence: the operator's retry
	t_eq "$v: A mounts it (r1)" "" "$(api A Mount "$v" r1)"
	t_ok "$v: B's ballastd armed at gluster.release.after-fence" x_restart B gluster.release.after-fence
	release_force "$v" >/dev/null 2>&1
	t_wait_eq "$v: B's release --force dies after fencing A" 30 no b_alive
	t_eq "$v: ... A is fenced, at the cluster" "$v=yes yes" "$(fenced_of "$v") $(noted "$v")"
	t_eq "$v: ... and still names itself the holder" "host-a expired=false" "$(holder_of A "$v")"
	t_ok "$v: B's ballastd restarts (normal build)" x_restart B
	t_match "$v: the operator's retry of release --force works" "^released $v" "$(release_force "$v")"
	t_wait_eq "$v: A finds its hold lost" 30 true lost_on A "$v"
	t_eq "$v: B mounts it" "" "$(api B Mount "$v" r2)"
	t_eq "$v: B unmounts it" "" "$(api B Unmount "$v" r2)"
	a_takes_back "$v" r1 r3

	# a renewal that dies: the restarted ballastd renews on
	t_ok "$v: A's ballastd armed at gluster.renew.after-write" x_restart A gluster.renew.after-write
	t_eq "$v: A mounts it (w1)" "" "$(api A Mount "$v" w1)"
	t_wait_eq "$v: A dies right after its first renewal" $((HOSTS_GL_LEASE + 10)) no a_alive
	t_ok "$v: A's ballastd restarts at once (normal build)" x_restart A
	sleep $((HOSTS_GL_LEASE + 2))
	t_eq "$v: a lease later, A still holds it" "host-a expired=false" "$(holder_of B "$v")"
	t_match "$v: ... B's Mount is refused" "in use on (host )?host-a" "$(api B Mount "$v" w2)"
	t_eq "$v: ... nobody was fenced" "$v=no no" "$(fenced_of "$v") $(noted "$v")"
	t_ok "$v: ... A writes" a_writes "$a_dir" c6
	t_eq "$v: A unmounts it" "" "$(api A Unmount "$v" w1)"
}
fence_crash

# stopped_holder: A's ballastd is stopped (SIGSTOP) past its lease while A
# holds an exclusive gluster volume, and resumes while B is fencing it to
# take the volume over (B's auth.reject edit slow, so the two overlap every
# time). A's renewer must not write its hold again once B's fence note
# names A: B checks that the record it fenced is still there before taking
# it. Fails on the old renewal (own record always renewed): B was refused,
# naming host-a, while A, fenced, renewed every period a hold its dead
# mount could not use (a stuck volume).
stopped_holder() {
	local v=stopgl a_dir p out
	a_dir=$(data_dir A gluster "$v")
	t_wait_eq "$v: A's ballastd reaches Gluster" 60 true gl_reachable A
	t_eq "$v: made on A (gluster, exclusive), known to B" "" "$(gl_make "$v")"
	t_eq "$v: A mounts it" "" "$(api A Mount "$v" s1)"
	t_ok "$v: (control) a write through A's mount works" a_writes "$a_dir" c1
	kill -STOP "$(hosts_ballastd_pid A)"
	sleep $((HOSTS_GL_LEASE + 2))
	t_eq "$v: A's ballastd stopped past its lease: B sees it expired" "host-a expired=true" "$(holder_of B "$v")"
	echo "/ballast/$v(" >"$GLSLOW"
	api B Mount "$v" s2 >"$T/stop.out" &
	p=$!
	t_wait_eq "$v: B starts fencing A" 30 yes noted "$v"
	kill -CONT "$(hosts_ballastd_pid A)"
	wait "$p"
	: >"$GLSLOW"
	out=$(cat "$T/stop.out")
	t_eq "$v: A resumed during B's fence: B's Mount takes it over" "" "$out"
	t_eq "$v: ... B holds it" "host-b expired=false" "$(holder_of B "$v")"
	t_eq "$v: ... A is fenced, at the cluster" "$v=yes yes" "$(fenced_of "$v") $(noted "$v")"
	t_wait_eq "$v: A finds its hold lost" 30 true lost_on A "$v"
	# (its first renewal after SIGCONT finds B's note; one that failed and
	# came a period later finds B's record)
	t_match "$v: ... its log says so" "fence note names this host|now held by host-b" \
		"$(grep "volume $v: this host's hold is lost" "$T/a/ballastd.log")"
	t_ok "$v: ... a write through A's mount fails" a_write_fails gluster "$a_dir" probe-s
	sleep $((HOSTS_GL_LEASE / 3 + 1))
	t_eq "$v: a renewal period later, B still holds it" "host-b expired=false" "$(holder_of A "$v")"
	t_eq "$v: B unmounts it" "" "$(api B Unmount "$v" s2)"
	a_takes_back "$v" s1 s3
}
stopped_holder

# ------------------------------------------- a mount dockerd forgot is undone
# Issue 17 (chaos, rbd seed 4): dockerd killed (SIGKILL) and restarted never
# sends the Unmount of the container it lost. Its mount ID stayed in A's
# catalog for good: the volume stayed mounted and held on A, its mapper
# renewing the lease, and every Mount on B was refused. Now a mount that no
# mount namespace of A shows (no container uses it) for orphan_grace
# seconds after the last Mount or Unmount is unmounted, as dockerd's
# Unmount would have. The control: past the grace, a running container
# keeps its volume. Fails (B refused until the end) without
# api_sweep_orphans.
GRACE=6
mount_count() { hosts_bd "$1" Ballast.Inspect "{\"Name\":\"$2\"}" | jq -r '.Volume.mount_count // "none"'; }
orphaned() {
	local be=$1 v=orph$1 ct=orphct$1 lease=$HOSTS_RBD_LEASE
	[ "$be" = gluster ] && lease=$HOSTS_GL_LEASE
	make_volume "$be" "$v"
	t_ok "$v: A's container uses it" hosts_dk A run -d --name "$ct" --network none \
		--volume-driver "$HOSTS_PLUGIN_A" -v "$v:/data" "$DBIMG" sleep 3600
	sleep $((GRACE + 4))
	t_ok "$v: the control: past the grace ($GRACE s), with the container running, B is refused naming host-a" \
		mount_refused B "$v" host-a
	t_eq "$v: ... and the container still writes" alive \
		"$(hosts_dk A exec "$ct" sh -c 'echo alive > /data/alive && sync && cat /data/alive' 2>&1)"
	t_ok "$v: dockerd A killed (SIGKILL) and restarted" hosts_dockerd_restart A KILL
	hosts_dk A rm -f "$ct" >/dev/null 2>&1
	t_eq "$v: A's ballastd still counts the lost container's mount (no Unmount came)" 1 "$(mount_count A "$v")"
	t_wait_eq "$v: within the grace and a lease, B mounts it" $((2 * GRACE + lease + 20)) "" api B Mount "$v" ob
	t_match "$v: A's log says why it unmounted" "dockerd never unmounted it" \
		"$(grep "volume $v: no container on this host" "$T/a/ballastd.log")"
	t_eq "$v: ... A counts no mount" 0 "$(mount_count A "$v")"
	t_eq "$v: B unmounts it" "" "$(api B Unmount "$v" ob)"
}
HOSTS_ORPHAN_GRACE=$GRACE hosts_ballastd_conf A "$T/a" >/dev/null
t_ok "A's ballastd restarts with orphan_grace = $GRACE" a_restart_plain
orphaned rbd
orphaned gluster
