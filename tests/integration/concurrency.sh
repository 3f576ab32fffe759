#!/usr/bin/env bash
# tests/integration/concurrency.sh - many things at once.
#
# 1. Through a private real dockerd: 200 containers started in parallel (20
#    at a time) over 20 volumes (15 plain, 5 sized with -o size=32M), each
#    running `sleep`; then removed in random order, 20 at a time, with a
#    checkpoint after every batch: each volume's mount_count (ballast
#    inspect NAME --json) equals its number of running containers, a volume
#    is mounted while it has one and unmounted (mountpoint "", and for sized
#    ones no mount and no loop device) once its last container is gone.
#    0 errors, 0 leaked mounts or loop devices at the end.
# 2. Straight to the socket: 1000 mixed requests (Create, Get, List, Mount,
#    Unmount, Path, Remove, Ballast.List) over 50 names (5 sized), 50 in
#    parallel, in four phases so that what must be ordered is (a name is
#    created before it is mounted, ...); Mounts and Unmounts of one name run
#    in parallel with distinct mount IDs. 0 transport errors, every answer a
#    JSON object with a string Err, no Err where none is expected, and the
#    final catalog, state dir and mount table are what the sequence implies.
# 3. A ballastd whose own descriptors are all numbered 1200 or higher
#    (past select()'s FD_SETSIZE), making its socket and taking one passed
#    at descriptor 3 as systemd does: it starts, and answers 20 volumes'
#    Create, Get, Mount, Unmount and Remove sent at once.
#
# Figures (times, containers/s, requests/s) are printed as `#` lines.
# Needs root and the packages of tests/deps.sh; uses its own plugin name so
# that it can run beside local_docker.sh.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/dockerd.sh
. "$HERE/../lib/dockerd.sh"
# shellcheck source=../lib/ballastd.sh
. "$HERE/../lib/ballastd.sh"

t_group concurrency
# Not "ballast": a spec file of our own, so that a local_docker.sh running
# at the same time keeps its own.
PLUGIN=ballastconc
NVOL=20
NCONT=200
PAR=20
SIZED_EVERY=4 # volume i is sized when i % SIZED_EVERY == 0
NNAMES=50
SOCK_PAR=50

# shellcheck source=../lib/suite.sh
. "$HERE/../lib/suite.sh"
suite_preflight "$PLUGIN" jq losetup curl docker dockerd xargs shuf
suite_dir ballast-cc

# ---------------------------------------------------------------- helpers
vname() { printf 'cv%02d' "$1"; }
cname() { printf 'k%03d' "$1"; }
is_sized_idx() { [ $(($1 % SIZED_EVERY)) -eq 0 ]; }
is_mounted() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; }
mounts_under() { awk -v d="$1" 'index($2, d) == 1 { print $2 }' /proc/mounts; }
loops_of() { losetup -n -j "$1" 2>/dev/null; }
now_ms() { date +%s%3N; }
# our_containers [-a]: names of our (running, or all) containers
our_containers() { dk ps "$@" --format '{{.Names}}' 2>/dev/null | grep -E '^k[0-9]{3}$'; }
# secs MS: milliseconds as seconds with one decimal
secs() { awk -v m="$1" 'BEGIN { printf "%.1f", m / 1000 }'; }

# ---------------------------------------------------------------- setup
SECONDS=0
T0=$(now_ms)
dockerd_start "$T/d" || t_die "dockerd did not start"
busybox_image || t_die "could not import local/busybox"
ballastd_start "$BD" || t_die "ballastd did not start"
plugin_register "$PLUGIN" "$BALLAST_SOCK" || t_die "could not write the plugin spec"
STATE=$BALLAST_STATE
ROOT=$STATE/local
t_diag "setup took $SECONDS s (dir $T)"

# ================================================ part 1: through dockerd
fails=0
for ((i = 0; i < NVOL; i++)); do
	if is_sized_idx "$i"; then
		dk volume create -d "$PLUGIN" -o size=32M "$(vname "$i")" >/dev/null 2>"$T/vc.err" ||
			{ fails=$((fails + 1)); t_diag "create $(vname "$i"): $(cat "$T/vc.err")"; }
	else
		dk volume create -d "$PLUGIN" "$(vname "$i")" >/dev/null 2>"$T/vc.err" ||
			{ fails=$((fails + 1)); t_diag "create $(vname "$i"): $(cat "$T/vc.err")"; }
	fi
done
t_eq "$NVOL volumes created ($((NVOL / SIZED_EVERY)) sized 32M)" 0 "$fails"

# Container i uses volume i % NVOL: NCONT / NVOL containers per volume.
# start_one I: one container; its failure (with docker's message) goes to
# start.err, one line per failed container.
cat >"$T/start_one.sh" <<'EOF'
i=$1
c=$(printf 'k%03d' "$i")
v=$(printf 'cv%02d' $((i % NVOL)))
if ! out=$(timeout -k 10 150 docker run -d --name "$c" --network none \
	--volume-driver "$PLUGIN" -v "$v:/data" local/busybox sleep 3600 2>&1); then
	printf '%s %s: %s\n' "$c" "$v" "$(printf '%s' "$out" | tr '\n' ' ')" >>"$ERRS"
fi
EOF
: >"$T/start.err"
ts=$(now_ms)
seq 0 $((NCONT - 1)) | shuf |
	ERRS=$T/start.err NVOL=$NVOL PLUGIN=$PLUGIN xargs -P "$PAR" -n 1 bash "$T/start_one.sh"
start_ms=$(($(now_ms) - ts))
nerr=$(wc -l <"$T/start.err")
t_eq "$NCONT containers started in parallel ($PAR at a time) without an error" 0 "$nerr"
[ "$nerr" -gt 0 ] && t_diag "$(head -n 10 "$T/start.err")"
running=$(our_containers | wc -l)
t_eq "$NCONT containers running" "$NCONT" "$running"
t_diag "started $NCONT containers in $(secs "$start_ms") s: $(awk -v n="$NCONT" -v m="$start_ms" 'BEGIN { printf "%.1f", n * 1000 / m }') containers/s"

# expected_counts: "count" per volume (NVOL lines) from docker's own list of
# running containers (which also holds if a start failed).
expected_counts() {
	local names
	names=$(our_containers)
	awk -v n="$NVOL" -v names="$names" 'BEGIN {
		for (i = 0; i < n; i++) c[i] = 0
		m = split(names, a, "\n")
		for (j = 1; j <= m; j++) if (a[j] ~ /^k[0-9][0-9][0-9]$/) c[substr(a[j], 2) % n]++
		for (i = 0; i < n; i++) print c[i]
	}'
}
# actual_counts: mount_count per volume from ballast ls (NVOL lines)
actual_counts() {
	ballast_cli ls --json 2>/dev/null | jq -r --argjson n "$NVOL" '
		(map({key: .name, value: .mount_count}) | from_entries) as $m
		| range(0; $n) | ($m["cv" + (if . < 10 then "0" else "" end) + tostring] // "missing")'
}

# checkpoint LABEL: wait (20 s) until ballast's counts equal docker's, then
# assert per volume through `ballast inspect NAME --json`: mount_count,
# mountpoint set iff in use, and for sized volumes the mount table and
# the loop device.
CHECKS_BAD=0
checkpoint() {
	local label=$1 exp act i v wants got mp bad=0 end mnt loops detail=""
	end=$((SECONDS + 20))
	exp=$(expected_counts)
	while :; do
		act=$(actual_counts)
		[ "$act" == "$exp" ] && break
		[ "$SECONDS" -ge "$end" ] && break
		sleep 0.2
	done
	mapfile -t wants < <(printf '%s\n' "$exp")
	for ((i = 0; i < NVOL; i++)); do
		v=$(vname "$i")
		got=$(ballast_cli inspect "$v" --json 2>&1 | jq -r '.mount_count' 2>&1)
		mp=$(ballast_cli inspect "$v" --json 2>&1 | jq -r '.mountpoint' 2>&1)
		if [ "$got" != "${wants[$i]}" ]; then
			bad=1
			detail+="$v: mount_count $got, running containers ${wants[$i]}; "
		fi
		if [ "${wants[$i]}" -gt 0 ] && [ -z "$mp" ]; then
			bad=1
			detail+="$v: in use but no mountpoint; "
		fi
		if [ "${wants[$i]}" -eq 0 ] && [ -n "$mp" ]; then
			bad=1
			detail+="$v: unused but mountpoint $mp; "
		fi
		if is_sized_idx "$i"; then
			mnt=0
			is_mounted "$STATE/mounts/$v" && mnt=1
			loops=$(loops_of "$ROOT/.images/$v.img" | wc -l)
			if [ "${wants[$i]}" -gt 0 ] && { [ "$mnt" -ne 1 ] || [ "$loops" -ne 1 ]; }; then
				bad=1
				detail+="$v: in use, mounted=$mnt loop devices=$loops; "
			fi
			if [ "${wants[$i]}" -eq 0 ] && { [ "$mnt" -ne 0 ] || [ "$loops" -ne 0 ]; }; then
				bad=1
				detail+="$v: unused, mounted=$mnt loop devices=$loops; "
			fi
		fi
	done
	if [ "$bad" -eq 0 ]; then
		t_pass "checkpoint $label: counts, mountpoints, mounts and loop devices match docker's running containers"
	else
		CHECKS_BAD=$((CHECKS_BAD + 1))
		t_failed "checkpoint $label" "$detail" "expected: $(echo "$exp" | tr '\n' ' ')" "ballast:  $(echo "$act" | tr '\n' ' ')"
	fi
}

checkpoint "after all started"

# Remove in random order, PAR at a time, a checkpoint after each batch.
cat >"$T/stop_one.sh" <<'EOF'
if ! out=$(timeout -k 10 150 docker rm -f "$1" 2>&1); then
	printf '%s: %s\n' "$1" "$(printf '%s' "$out" | tr '\n' ' ')" >>"$ERRS"
fi
EOF
: >"$T/stop.err"
mapfile -t order < <(our_containers | shuf)
stop_ms=0
for ((b = 0; b < ${#order[@]}; b += PAR)); do
	ts=$(now_ms)
	printf '%s\n' "${order[@]:b:PAR}" | ERRS=$T/stop.err xargs -P "$PAR" -n 1 bash "$T/stop_one.sh"
	stop_ms=$((stop_ms + $(now_ms) - ts))
	checkpoint "after removing $((b + PAR > ${#order[@]} ? ${#order[@]} : b + PAR)) of ${#order[@]}"
done
nerr=$(wc -l <"$T/stop.err")
t_eq "every container removed without an error" 0 "$nerr"
[ "$nerr" -gt 0 ] && t_diag "$(head -n 10 "$T/stop.err")"
t_eq "no container left" 0 "$(our_containers -a | wc -l)"
t_diag "removed ${#order[@]} containers in $(secs "$stop_ms") s (without checkpoints): $(awk -v n="${#order[@]}" -v m="$stop_ms" 'BEGIN { if (m) printf "%.1f", n * 1000 / m }') containers/s"

fails=0
for ((i = 0; i < NVOL; i++)); do
	dk volume rm "$(vname "$i")" >/dev/null 2>"$T/vr.err" ||
		{ fails=$((fails + 1)); t_diag "rm $(vname "$i"): $(cat "$T/vr.err")"; }
done
t_eq "all $NVOL volumes removed" 0 "$fails"
t_eq "no mount left under the state dir" "" "$(mounts_under "$STATE")"
t_eq "no loop device backed by a file under $T" "" "$(losetup -a 2>/dev/null | grep -F "$T")"
t_eq "no image left" "" "$(ls -A "$ROOT/.images" 2>/dev/null)"
t_diag "part 1 (dockerd) took $(secs $(($(now_ms) - T0))) s including setup"

# ============================================= part 2: 1000 socket requests
nm() { printf 'sn%02d' "$1"; }
is_sized_name() { [ $(($1 % 10)) -eq 0 ]; } # 5 of 50
NIDS=7
mid() { printf '%064x' $((($1 + 1) * 1000 + $2)); } # distinct per name and k
# Requests: lines "EXPECT METHOD BODY"; EXPECT is ok (Err must be "") or
# any (Err may be anything, e.g. a Get racing a Remove).
req() { printf '%s %s %s\n' "$1" "$2" "$3"; }
phase1() {
	local i
	for ((i = 0; i < NNAMES; i++)); do
		if is_sized_name "$i"; then
			req ok VolumeDriver.Create "{\"Name\":\"$(nm "$i")\",\"Opts\":{\"size\":\"16M\"}}"
		else
			req ok VolumeDriver.Create "{\"Name\":\"$(nm "$i")\",\"Opts\":{}}"
		fi
	done
	# 25 repeated Creates of the same names (dockerd resends Create):
	# idempotent, racing the first ones
	for ((i = 1; i < NNAMES; i += 2)); do
		req ok VolumeDriver.Create "{\"Name\":\"$(nm "$i")\",\"Opts\":null}"
	done
}
phase2() {
	local i k
	for ((i = 0; i < NNAMES; i++)); do
		for ((k = 0; k < NIDS; k++)); do
			req ok VolumeDriver.Mount "{\"Name\":\"$(nm "$i")\",\"ID\":\"$(mid "$i" "$k")\"}"
		done
		req ok VolumeDriver.Get "{\"Name\":\"$(nm "$i")\"}"
		req ok VolumeDriver.Path "{\"Name\":\"$(nm "$i")\"}"
		[ $((i % 2)) -eq 0 ] && req ok VolumeDriver.List '{}'
	done
}
phase3() {
	local i k
	for ((i = 0; i < NNAMES; i++)); do
		for ((k = 0; k < NIDS; k++)); do
			req ok VolumeDriver.Unmount "{\"Name\":\"$(nm "$i")\",\"ID\":\"$(mid "$i" "$k")\"}"
		done
		[ $((i % 2)) -eq 1 ] && req ok Ballast.List '{}'
	done
}
phase4() {
	local i
	for ((i = 0; i < NNAMES; i++)); do
		if [ $((i % 2)) -eq 0 ]; then
			req ok VolumeDriver.Remove "{\"Name\":\"$(nm "$i")\"}"
			req ok VolumeDriver.List '{}'
		else
			req ok VolumeDriver.Get "{\"Name\":\"$(nm "$i")\"}"
		fi
	done
}

# One request per line of stdin; each worker appends one result line:
# "EXPECT CURL_RC HTTP_CODE METHOD BODY_OF_REQUEST<TAB>ANSWER".
cat >"$T/one_req.sh" <<'EOF'
exp=$1 method=$2 body=$3
rc=0
resp=$(curl -s --max-time 120 --unix-socket "$SOCK" -X POST --data-binary "$body" \
	-w '\n%{http_code}' "http://ballast/$method") || rc=$?
code=${resp##*$'\n'}
ans=${resp%$'\n'*}
[ "$code" = "$resp" ] && ans=""
ans=$(printf '%s' "$ans" | tr '\n\t' '  ')
# A file per request: appends of lines longer than PIPE_BUF (a List of 50
# volumes) from 50 processes at once would interleave.
printf '%s %s %s %s %s\t%s\n' "$exp" "$rc" "${code:-000}" "$method" "$body" "$ans" \
	>"$(mktemp "$RESULTS/r.XXXXXXXX")"
EOF
mkdir -p "$T/results.d"
run_phase() { # N: run phase N's requests, shuffled, SOCK_PAR at a time
	"phase$1" | shuf >"$T/phase$1.req"
	# shellcheck disable=SC2016 # expanded by the inner bash
	tr '\n' '\0' <"$T/phase$1.req" |
		SOCK=$BALLAST_SOCK RESULTS=$T/results.d xargs -0 -P "$SOCK_PAR" -n 1 \
			bash -c 'read -r e m b <<<"$1"; bash "$0" "$e" "$m" "$b"' "$T/one_req.sh"
}
# counts_of_names: "name count mountpoint-set" per sn* volume
counts_of_names() {
	ballast_cli ls --json | jq -r '.[] | select(.name | startswith("sn")) |
		"\(.name) \(.mount_count) \(if .mountpoint == "" then "unmounted" else "mounted" end)"'
}

ts=$(now_ms)
run_phase 1
run_phase 2
mid_state=$(counts_of_names)
want=$(for ((i = 0; i < NNAMES; i++)); do echo "$(nm "$i") $NIDS mounted"; done)
t_eq "after the parallel Mounts every name has mount_count $NIDS and is mounted" "$want" "$mid_state"
sized_mounted=0
for ((i = 0; i < NNAMES; i += 10)); do is_mounted "$STATE/mounts/$(nm "$i")" && sized_mounted=$((sized_mounted + 1)); done
t_eq "the 5 sized names are in the mount table" 5 "$sized_mounted"
run_phase 3
run_phase 4
sock_ms=$(($(now_ms) - ts))
find "$T/results.d" -type f -exec cat {} + >"$T/results"
nreq=$(wc -l <"$T/results")
t_eq "1000 requests answered" 1000 "$nreq"
t_diag "1000 requests ($SOCK_PAR in parallel, 4 phases) in $(secs "$sock_ms") s: $(awk -v m="$sock_ms" 'BEGIN { printf "%.0f", 1000000 / m }') requests/s (curl and bash per request included)"

t_eq "0 transport errors (curl status 0, HTTP 200)" "" \
	"$(awk '$2 != 0 || $3 != 200' "$T/results" | head -n 5)"
# Every answer a JSON object with a string Err of one line, in one jq run.
bad_json=$(cut -f2- "$T/results" |
	jq -R -r 'try (fromjson | if type == "object" and (.Err | type) == "string" and (.Err | test("\n") | not) then empty else "not an object with a string Err: \(.)" end) catch "invalid JSON: \(.)"' 2>&1 | head -n 5)
t_eq "every answer is a JSON object with a one-line string Err" "" "$bad_json"
errs=$(awk -F'\t' '$1 ~ /^ok / && $2 !~ /"Err":""/' "$T/results" | head -n 5)
t_eq "no request answered with an Err" "" "$errs"
mps=$(awk -F'\t' '$1 ~ / VolumeDriver.Mount / { print $2 }' "$T/results" | jq -r '.Mountpoint' | sort -u | wc -l)
t_eq "every Mount of a name got the same mountpoint ($NNAMES distinct)" "$NNAMES" "$mps"

# The final state the sequence implies: odd names remain, unmounted, with no
# mount IDs; even names are gone from the catalog, the disk and the mounts.
want=$(for ((i = 1; i < NNAMES; i += 2)); do echo "$(nm "$i") 0 unmounted"; done)
t_eq "final catalog: the 25 odd names, all counts 0, none mounted" "$want" "$(counts_of_names)"
t_eq "no mount IDs left" "0" "$(ballast_cli ls --json | jq '[.[] | .mount_ids | length] | add // 0')"
got=$(cd "$STATE/catalog" && for f in sn*; do printf '%s ' "$f"; done)
want=$(for ((i = 1; i < NNAMES; i += 2)); do printf '%s.json ' "$(nm "$i")"; done)
t_eq "catalog records on disk are the 25 odd names" "$want" "$got"
missing="" extra=""
for ((i = 0; i < NNAMES; i++)); do
	n=$(nm "$i")
	if is_sized_name "$i"; then p=$ROOT/.images/$n.img; else p=$ROOT/$n; fi
	if [ $((i % 2)) -eq 1 ] && [ ! -e "$p" ]; then missing+="$p "; fi
	if [ $((i % 2)) -eq 0 ] && [ -e "$p" ]; then extra+="$p "; fi
done
t_eq "every remaining name has its directory or image" "" "$missing"
t_eq "every removed name's directory or image is gone" "" "$extra"
t_eq "no mount left under the state dir" "" "$(mounts_under "$STATE")"
t_eq "no loop device backed by a file under $T" "" "$(losetup -a 2>/dev/null | grep -F "$T")"
t_ok "ballastd still running" ballastd_running

# ----------------------------------------------------------------- cleanup
for ((i = 1; i < NNAMES; i += 2)); do
	ballast_call VolumeDriver.Remove "{\"Name\":\"$(nm "$i")\"}" >/dev/null
done
t_eq "catalog empty after removing the rest" "0" "$(ballast_cli ls --json 2>&1 | jq -r 'length' 2>&1)"
t_ok "ballastd stops on SIGTERM and removes its socket" ballastd_stop

# ------------------------------- 3. descriptors numbered 1024 and higher
# A ballastd holding more than 1024 descriptors (librados keeps a socket per
# OSD it talks to; runtimes give plugins a high RLIMIT_NOFILE) gets new ones
# numbered 1024 or higher, which select() cannot watch. fdfill.py stands in
# for that: it fills every descriptor from 3 to 1199 with /dev/null in the
# child, then execs ballastd, so that all of ballastd's own are 1200 or
# higher. Twice: ballastd making its socket, and (the systemd case) taking a
# listening socket at descriptor 3, where only the connections are high.
ulimit -Sn 4096 || t_die "cannot raise the soft RLIMIT_NOFILE to 4096"
cat >"$T/fdfill.py" <<'PY'
import os, socket, sys
mode, path, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
skip = set()
if mode == "activated":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    s.bind(path)
    s.listen(128)
    fd = s.detach()
    if fd != 3:
        os.dup2(fd, 3)
    os.set_inheritable(3, True)
    skip.add(3)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
null = os.open("/dev/null", os.O_RDONLY)
for fd in range(3, 1200):
    if fd not in skip and fd != null:
        os.dup2(null, fd)
os.set_inheritable(null, True)
os.execv(argv[0], argv)
PY
# own_fds: ballastd's descriptors from 3 up that are not /dev/null
own_fds() {
	local f
	for f in /proc/"$BALLASTD_PID"/fd/*; do
		[ "${f##*/}" -ge 3 ] && [ "$(readlink "$f" 2>/dev/null)" != /dev/null ] && echo "${f##*/}"
	done | sort -n | tr '\n' ' '
}
# fd_load: 20 volumes' Create, Get, Mount, Unmount and Remove sent at once;
# prints what was not answered without Err
fd_load() {
	local i pids=()
	for ((i = 0; i < 20; i++)); do
		(
			n=fdvol$i
			for m in VolumeDriver.Create VolumeDriver.Get VolumeDriver.Mount VolumeDriver.Unmount VolumeDriver.Remove; do
				err=$(ballast_call "$m" "{\"Name\":\"$n\",\"ID\":\"c$i\"}" | err_of "$m")
				[ -z "$err" ] || echo "$m $n: $err"
			done
		) >"$T/fd.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	cat "$T"/fd.{0..19}
}
for mode in own activated; do
	started=no
	BALLASTD_WRAPPER="python3 $T/fdfill.py $mode $BD/ballast.sock" ballastd_start "$BD" && started=yes
	t_eq "$mode socket: ballastd starts with descriptors 3 to 1199 taken" "yes" "$started"
	[ "$started" = yes ] || continue
	own=$(own_fds)
	t_diag "$mode socket: ballastd's own descriptors: $own"
	if [ "$mode" = own ]; then
		# positive control: every descriptor it opened is 1024 or higher
		t_ok "... every descriptor it opened is 1024 or higher (lowest: ${own%% *})" \
			test "${own%% *}" -ge 1024
	else
		t_eq "... the passed socket is descriptor 3" "3" "${own%% *}"
		t_ok "... every other one is 1024 or higher (next: $(awk '{ print $2 }' <<<"$own"))" \
			test "$(awk '{ print $2 }' <<<"$own")" -ge 1024
	fi
	t_eq "... and answers Create, Get, Mount, Unmount, Remove of 20 volumes at once, each without Err" "" \
		"$(fd_load)"
	if [ "$mode" = own ]; then
		t_ok "... and stops on SIGTERM" ballastd_stop
	else
		# the socket is the service manager's (here: fdfill's): it stays
		t_ok "... and stops on SIGTERM" ballastd_stop_keep_socket
		rm -f "$BD/ballast.sock"
	fi
done
t_ok "dockerd stops" dockerd_stop
t_ok "plugin spec removed" plugin_unregister "$PLUGIN"
t_eq "no mounts left under $T" "" "$(mounts_under "$T")"
t_eq "no loop devices backed by files under $T" "" "$(losetup -a 2>/dev/null | grep -F "$T")"
t_diag "total time $SECONDS s"
