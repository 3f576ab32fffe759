#!/usr/bin/env bash
# tests/integration/security.sh - the daemon's security boundaries.
#
#  1. The socket is mode 0660 or stricter and not world-accessible, also when
#     ballastd starts under umask 000; the state dir, the catalog and its
#     records, the lock file and the local root are not world-readable.
#  2. mount.ballast refuses targets outside <state_dir>/mounts and options
#     outside its whitelist (exit status 1), and mounts nothing then.
#  3. ballastd runs mount.ballast without a shell: strace -f -e execve on
#     ballastd during a sized Create shows only mount.ballast and mkfs.*,
#     during Mount and Unmount only mount.ballast; never a shell.
#  4. A secret-looking value in a config key ballast does not know is never
#     echoed (ballastd start and --check-config). The cephx key of a real
#     cluster is looked for in every log by rbd_docker (tests/lib/secrets.sh).
#  5. Path traversal through every endpoint (names "../x", "a/../../etc",
#     absolute paths, very long names, NUL via \u0000, bad IDs and option
#     values) is refused and creates nothing: canary paths (where each
#     name would land if it were used as a path) stay absent, nothing named
#     after the canary token appears under /tmp /var /etc /run, and the
#     state dir is unchanged.
# No dockerd needed. Needs root, strace (installed if missing), jq, curl.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/ballastd.sh
. "$HERE/../lib/ballastd.sh"

t_group security

[ "$(id -u)" -eq 0 ] || t_die "must run as root"
if ! command -v strace >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 \
		install --no-install-recommends strace >/dev/null 2>&1 || true
fi
for c in jq curl strace stat losetup; do
	command -v "$c" >/dev/null || t_die "$c not installed"
done
for b in ballastd ballast mount.ballast; do
	[ -x "$BALLAST_BUILD/$b" ] || t_die "$BALLAST_BUILD/$b missing: run make"
done
MB=$BALLAST_BUILD/mount.ballast

T=$(mktemp -d /tmp/ballast-sec.XXXXXX)
STRACE_PID=""

cleanup() {
	local lp m
	if [ -n "$STRACE_PID" ]; then
		kill "$STRACE_PID" 2>/dev/null
		wait "$STRACE_PID" 2>/dev/null
	fi
	ballastd_kill9
	awk -v p="$T/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r |
		while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$T" 'index($2, d) == 1 { print $1 }' |
		while IFS= read -r lp; do losetup -d "$lp" 2>/dev/null || true; done
	if [ "$TAP_FAIL" -eq 0 ] && ! grep -qF "$T" /proc/mounts; then
		rm -rf "$T"
	else
		printf '# test directory kept: %s\n' "$T"
		if [ -f "$BALLASTD_DIR/ballastd.log" ]; then
			printf '# last lines of the ballastd log:\n'
			ballastd_log_tail 40
		fi
	fi
}
t_at_exit cleanup

# mode PATH: octal permission bits
mode() { stat -c %a "$1" 2>/dev/null || echo missing; }
# no_bits DESC PATH MASK: none of the octal MASK bits is set on PATH
no_bits() {
	local m
	m=$(mode "$2")
	if [ "$m" = missing ]; then
		t_failed "$1" "$2 does not exist"
	elif [ $((8#$m & $3)) -eq 0 ]; then
		t_pass "$1 ($m)"
	else
		t_failed "$1" "$2 has mode $m"
	fi
}
is_mounted() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; }

# ------------------------------------------------ 1. socket and state modes
check_modes() { # LABEL: the running daemon's files
	local l=$1 s=$BALLAST_STATE
	t_ok "$l: the socket is a socket" test -S "$BALLAST_SOCK"
	no_bits "$l: socket mode is 0660 or stricter" "$BALLAST_SOCK" $((8#117))
	no_bits "$l: socket not world-accessible" "$BALLAST_SOCK" $((8#007))
	no_bits "$l: state dir not world-readable/writable" "$s" $((8#007))
	no_bits "$l: state dir not group-writable" "$s" $((8#020))
	no_bits "$l: catalog dir not world-readable/writable" "$s/catalog" $((8#007))
	no_bits "$l: catalog record not world-readable/writable" "$s/catalog/modecheck.json" $((8#007))
	no_bits "$l: lock file not world-readable/writable" "$s/lock" $((8#007))
	no_bits "$l: local root not world-readable/writable" "$s/local" $((8#007))
}
ballastd_start "$T/b1" || t_die "ballastd did not start"
ballast_call VolumeDriver.Create '{"Name":"modecheck"}' >/dev/null
check_modes "umask $(umask)"
ballastd_stop || t_failed "ballastd stops"

old_umask=$(umask)
umask 000
ballastd_start "$T/b0"
rc=$?
umask "$old_umask"
[ "$rc" -eq 0 ] || t_die "ballastd did not start under umask 000"
ballast_call VolumeDriver.Create '{"Name":"modecheck"}' >/dev/null
check_modes "umask 000"
# while we have a daemon started under umask 000: a sized volume's image
# and mount point
if [ "$(ballast_call VolumeDriver.Create '{"Name":"sized","Opts":{"size":"16M"}}' | err_of Create)" = "" ]; then
	no_bits "umask 000: image not world-readable/writable" "$BALLAST_STATE/local/.images/sized.img" $((8#007))
	no_bits "umask 000: images dir not world-readable/writable" "$BALLAST_STATE/local/.images" $((8#007))
else
	t_failed "umask 000: sized Create"
fi
ballast_call VolumeDriver.Remove '{"Name":"sized"}' >/dev/null
ballastd_stop || t_failed "ballastd stops"

# ------------------------------------------- 2. mount.ballast's whitelists
MS=$T/mb/state
mkdir -p "$MS/mounts" "$T/mb/outside" "$T/mb/img"
truncate -s 32M "$T/mb/img/e.img"
t_ok "mount.ballast mkfs ext4 of a test image" "$MB" --state-dir "$MS" mkfs --fstype ext4 "$T/mb/img/e.img"
ln -s "$T/mb/outside" "$MS/mounts/escape"
# refused DESC ARGS...: exit status exactly 1 and one stderr line
refused() {
	local desc=$1 rc=0 err
	shift
	err=$("$MB" --state-dir "$MS" "$@" 2>&1 >/dev/null) || rc=$?
	if [ "$rc" -eq 1 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ]; then
		t_pass "$desc"
		t_diag "$err"
	else
		t_failed "$desc" "exit status $rc (expected 1)" "stderr: $err"
	fi
}
for tgt in /mnt "$T/mb/outside" "$MS/mounts/../../outside" "$MS/mounts/escape" "$MS/mounts/escape/x" /etc; do
	refused "mount on $tgt is refused" mount --fstype ext4 --loop "$T/mb/img/e.img" "$tgt"
done
refused "umount of /proc is refused" umount /proc
refused "umount through ../ is refused" umount "$MS/mounts/../../outside"
# shellcheck disable=SC2016 # a literal $(id), for mount.ballast to refuse
for o in suid dev exec,suid "rw;rm -rf /" 'nosuid,$(id)' "x-mount.mkdir" "errors=panic"; do
	refused "mount option '$o' is refused" mount --fstype ext4 --loop --options "$o" "$T/mb/img/e.img" "$MS/mounts/o"
done
refused "mkfs option '-T huge' is refused" mkfs --fstype ext4 --mkfs-options "-T huge" "$T/mb/img/e.img"
refused "mkfs option with a shell command is refused" mkfs --fstype ext4 --mkfs-options '-m 1;touch /tmp/x' "$T/mb/img/e.img"
refused "fstype btrfs is refused" mkfs --fstype btrfs "$T/mb/img/e.img"
t_eq "nothing mounted by the refused calls" "" "$(awk -v p="$T/" 'index($2, p) == 1' /proc/mounts)"
t_eq "no loop device on the test image" "" "$(losetup -n -j "$T/mb/img/e.img" 2>/dev/null)"
t_eq "nothing created outside" "" "$(ls -A "$T/mb/outside")"

# ------------------------------------------------ 3. no shell in between
ballastd_start "$T/b2" || t_die "ballastd did not start"
# trace_during FILE CMD...: strace -f -e execve on ballastd while CMD runs
trace_during() {
	local out=$1 i
	shift
	strace -f -qq -e trace=execve -e signal=none -o "$out" -p "$BALLASTD_PID" 2>"$out.err" &
	STRACE_PID=$!
	# attached once strace has said nothing and the process shows a tracer
	for ((i = 0; i < 50; i++)); do
		[ "$(awk '/^TracerPid:/ { print $2 }' "/proc/$BALLASTD_PID/status")" != 0 ] && break
		sleep 0.1
	done
	sleep 0.3 # the other threads
	"$@" >/dev/null
	kill "$STRACE_PID" 2>/dev/null
	wait "$STRACE_PID" 2>/dev/null
	STRACE_PID=""
}
# programs FILE: basenames of every program execve'd, sorted, unique
programs() { sed -n 's/.*execve("\([^"]*\)".*/\1/p' "$1" | sed 's|.*/||' | sort -u | tr '\n' ' '; }
shells() { grep -E 'execve\("[^"]*/(ba|da|z|k|c|tc)?sh"|execve\("[^"]*/busybox"' "$1"; }

trace_during "$T/create.trace" ballast_call VolumeDriver.Create '{"Name":"traced","Opts":{"size":"16M"}}'
progs=$(programs "$T/create.trace")
t_diag "programs run during a sized Create: $progs"
t_match "sized Create runs mount.ballast" '(^| )mount\.ballast ' "$progs"
t_match "sized Create runs mkfs.ext4" '(^| )mkfs\.ext4 ' "$progs"
t_eq "sized Create runs nothing but mount.ballast and mkfs.*" "" \
	"$(tr ' ' '\n' <<<"$progs" | grep -v -E '^(mount\.ballast|mkfs\.[a-z0-9]+)?$')"
t_eq "no shell during the sized Create" "" "$(shells "$T/create.trace")"
id=$(printf '%064d' 7)
trace_during "$T/mount.trace" ballast_call VolumeDriver.Mount "{\"Name\":\"traced\",\"ID\":\"$id\"}"
t_ok "the traced volume is mounted" is_mounted "$BALLAST_STATE/mounts/traced"
trace_during "$T/umount.trace" ballast_call VolumeDriver.Unmount "{\"Name\":\"traced\",\"ID\":\"$id\"}"
progs=$(programs "$T/mount.trace")$(programs "$T/umount.trace")
t_diag "programs run during Mount and Unmount: $progs"
t_eq "Mount and Unmount run nothing but mount.ballast" "" \
	"$(tr ' ' '\n' <<<"$progs" | grep -v -E '^(mount\.ballast)?$')"
t_eq "no shell during Mount and Unmount" "" "$(shells "$T/mount.trace")$(shells "$T/umount.trace")"
t_fail "the traced volume is unmounted" is_mounted "$BALLAST_STATE/mounts/traced"
ballast_call VolumeDriver.Remove '{"Name":"traced"}' >/dev/null

# ------------------------------------------------------ 4. secrets in logs
SECRET="S3cr3t-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
for sect in ballast local gluster rbd; do
	mkdir -p "$T/cfg"
	printf '[%s]\nsecret_key = %s\n' "$sect" "$SECRET" >"$T/cfg/$sect.conf"
	out=$(timeout 10 "$BALLAST_BUILD/ballastd" --config "$T/cfg/$sect.conf" --check-config 2>&1)
	t_nomatch "--check-config with an unknown key in [$sect] does not echo its value" "$SECRET" "$out"
	t_diag "$out"
	printf '[ballast]\nsocket = %s\nstate_dir = %s\nlog_level = debug\n[%s]\nsecret_key = %s\n' \
		"$T/cfg/s.sock" "$T/cfg/state" "$sect" "$SECRET" >"$T/cfg/$sect.conf"
	out=$(timeout 10 "$BALLAST_BUILD/ballastd" --config "$T/cfg/$sect.conf" 2>&1)
	t_nomatch "ballastd refusing an unknown key in [$sect] does not echo its value" "$SECRET" "$out"
done

# ------------------------------------------------------ 5. path traversal
TOKEN=ballastcanary$$x$RANDOM
S=$BALLAST_STATE
id=$(printf '%064d' 9)
long129=$(printf 'a%.0s' $(seq 129))
long4k=$(printf 'b%.0s' $(seq 4100))
names=(
	"../$TOKEN" "../../$TOKEN" "../../../../../../../../../tmp/$TOKEN"
	"a/../../$TOKEN" "a/../../../../../../../../etc/$TOKEN" "/tmp/$TOKEN" "/etc/$TOKEN"
	"/var/lib/$TOKEN" "..\\/..\\/$TOKEN" "./$TOKEN" "$TOKEN/" "$TOKEN/.." ".." "."
	"$TOKEN\\u0000x" "x\\u0000/../../$TOKEN" "$TOKEN\\n" "$TOKEN\\t" "$TOKEN\\u00e9"
	"-$TOKEN" "$long129" "$long4k" "${long129}/../$TOKEN"
)
# paths_of NAME: where NAME would land if it were used as a path
paths_of() {
	local n=$1
	printf '%s\n' "$S/local/$n" "$S/mounts/$n" "$S/catalog/$n.json" "$S/local/.images/$n.img" \
		"$S/local/$n/data" "$S/mounts/$n/data"
}
find_token() { timeout 60 find /tmp /var /etc /run -xdev -name "*$TOKEN*" 2>/dev/null; }
snapshot() { (cd "$S" && find . -path ./lock -prune -o -printf '%p %m %s\n' | sort); }

ballast_call VolumeDriver.Create '{"Name":"good"}' >/dev/null
ballast_call VolumeDriver.Mount "{\"Name\":\"good\",\"ID\":\"$id\"}" >/dev/null
before=$(snapshot)
t_eq "no canary before the requests" "" "$(find_token)"

nreq=0
bad=""
# send METHOD JSON: must be answered 200 with a non-empty one-line Err
# (ANY=1: the Err may be empty; mount IDs are opaque strings that are never
# used as paths, so an odd one may be accepted)
send() {
	local body ans want='.Err != ""'
	[ "${ANY:-0}" = 1 ] && want=true
	body=$(mktemp "$T/req.XXXXXX")
	printf '%s' "$2" >"$body"
	ans=$(curl -s --max-time 30 --unix-socket "$BALLAST_SOCK" -X POST --data-binary "@$body" \
		-w '\n%{http_code}' "http://ballast/$1")
	nreq=$((nreq + 1))
	if [ "${ans##*$'\n'}" != 200 ] ||
		! jq -e "(.Err | type) == \"string\" and $want and (.Err | test(\"\\n\") | not)" \
			<<<"${ans%$'\n'*}" >/dev/null 2>&1; then
		bad+="$1 $(head -c 200 "$body"): $(head -c 200 <<<"$ans"); "
	fi
	rm -f "$body"
}
for n in "${names[@]}"; do
	for m in VolumeDriver.Create VolumeDriver.Get VolumeDriver.Path VolumeDriver.Remove Ballast.Inspect; do
		send "$m" "{\"Name\":\"$n\"}"
	done
	send VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":{\"size\":\"16M\"}}"
	send VolumeDriver.Create "{\"Name\":\"$n\",\"Opts\":null}"
	send VolumeDriver.Mount "{\"Name\":\"$n\",\"ID\":\"$id\"}"
	send VolumeDriver.Unmount "{\"Name\":\"$n\",\"ID\":\"$id\"}"
done
# traversal in IDs (may be accepted, as a Mount/Unmount pair: no effect
# on disk either way) and in option values of a good name
for bid in "../$TOKEN" "/tmp/$TOKEN" "$TOKEN\\u0000" "a/../../$TOKEN" ""; do
	ANY=1 send VolumeDriver.Mount "{\"Name\":\"good\",\"ID\":\"$bid\"}"
	ANY=1 send VolumeDriver.Unmount "{\"Name\":\"good\",\"ID\":\"$bid\"}"
done
for opts in "{\"backend\":\"../$TOKEN\"}" "{\"backend\":\"/tmp/$TOKEN\"}" \
	"{\"size\":\"16M\",\"fstype\":\"../../$TOKEN\"}" "{\"size\":\"../$TOKEN\"}" \
	"{\"mode\":\"../$TOKEN\"}" "{\"uid\":\"0/../$TOKEN\"}" "{\"$TOKEN/../x\":\"1\"}" \
	"{\"size\":\"16M\",\"fstype\":\"ext4 -E root_owner=0:0,$TOKEN\"}"; do
	send VolumeDriver.Create "{\"Name\":\"opt$RANDOM\",\"Opts\":$opts}"
done
t_eq "all $nreq traversal requests answered with a one-line Err (refused, but for odd mount IDs)" "" "$bad"

leaks=""
for n in "${names[@]}"; do
	while IFS= read -r p; do
		r=$(realpath -m -- "$p" 2>/dev/null) || continue
		[ "$r" = "$S/local" ] || [ "$r" = "$S/mounts" ] || [ "$r" = "$S/catalog" ] ||
			[ "$r" = "$S" ] || [ "$r" = "$S/local/.images" ] && continue
		[ -e "$r" ] && [ "$(basename "$r")" != good ] && leaks+="$r "
	done < <(paths_of "$n")
done
t_eq "no canary path exists (where the bad names would have landed)" "" "$leaks"
t_eq "nothing named after the canary token under /tmp /var /etc /run" "" "$(find_token)"
t_eq "state dir unchanged by the refused requests" "$before" "$(snapshot)"
t_eq "good is still mounted once" "1" "$(ballast_cli inspect good --json | jq -r .mount_count)"
t_ok "ballastd still running" ballastd_running
ballast_call VolumeDriver.Unmount "{\"Name\":\"good\",\"ID\":\"$id\"}" >/dev/null
ballast_call VolumeDriver.Remove '{"Name":"good"}' >/dev/null
t_ok "ballastd stops on SIGTERM" ballastd_stop
