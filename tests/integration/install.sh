#!/usr/bin/env bash
# tests/integration/install.sh - what `make install` lays down: binaries,
# the mount helper where mount(8) finds helpers, an example config that
# parses, systemd units, and man pages that document every config key and
# every volume option the code knows. Also ballastd under socket activation
# (LISTEN_FDS), as the systemd socket unit starts it.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"

t_group install

BUILD=${BALLAST_BUILD:-${BUILD:-$ROOT/build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
T=$(mktemp -d /tmp/ballast-inst.XXXXXX)
D=$T/dest
SA_PID=

cleanup() {
	[ -n "$SA_PID" ] && kill "$SA_PID" 2>/dev/null
	pkill -f -- "$T/run.conf" 2>/dev/null
	rm -rf "$T"
}
t_at_exit cleanup

t_ok "make install DESTDIR PREFIX=/usr" \
	make -s -C "$ROOT" install BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr
for f in usr/sbin/ballastd usr/bin/ballast sbin/mount.ballast; do
	t_ok "$f installed and executable" test -x "$D/$f"
done
for f in usr/share/man/man8/ballastd.8 usr/share/man/man1/ballast.1 \
	usr/share/man/man8/mount.ballast.8 etc/ballast/ballast.conf \
	lib/systemd/system/ballast.socket lib/systemd/system/ballast.service; do
	t_ok "$f installed" test -s "$D/$f"
done
# the shared backends are modules, where the installed ballastd finds them
for m in rbd gluster; do
	t_ok "usr/lib/ballast/$m.so installed" test -s "$D/usr/lib/ballast/$m.so"
done
t_eq "the installed ballastd loads both modules for its lists" "local rbd gluster" \
	"$("$D/usr/sbin/ballastd" --list-options | awk '{ print $1 }' | uniq | paste -sd' ')"
t_eq "the installed ballastd does not link the Ceph or Gluster libraries" "" \
	"$(ldd "$D/usr/sbin/ballastd" | grep -E 'librbd|librados|libgfapi' || true)"
t_eq "ballast.service runs the installed ballastd" \
	"ExecStart=/usr/sbin/ballastd --config /etc/ballast/ballast.conf" \
	"$(grep '^ExecStart=' "$D/lib/systemd/system/ballast.service")"
t_eq "ballast.socket listens where dockerd looks" \
	"ListenStream=/run/docker/plugins/ballast.sock" \
	"$(grep '^ListenStream=' "$D/lib/systemd/system/ballast.socket")"
t_eq "ballast.socket is mode 0660" "SocketMode=0660" \
	"$(grep '^SocketMode=' "$D/lib/systemd/system/ballast.socket")"
t_eq "ballast.service lifts systemd's soft limit of 1024 descriptors" "LimitNOFILE=65536" \
	"$(grep '^LimitNOFILE=' "$D/lib/systemd/system/ballast.service")"
t_match "ballast.service is ordered before docker.service" 'Before=.*docker\.service' \
	"$(cat "$D/lib/systemd/system/ballast.service")"
if command -v systemd-analyze >/dev/null; then
	# The staging root has no sysinit.target nor docker.service: those
	# two complaints are about the root, not the units.
	out=$(systemd-analyze verify --man=no --root="$D" \
		"$D/lib/systemd/system/ballast.socket" "$D/lib/systemd/system/ballast.service" 2>&1 |
		grep -v -e 'sysinit.target not found' -e 'docker.service' -e '^$' || true)
	t_eq "systemd-analyze verify finds nothing wrong in the units" "" "$out"
else
	t_failed "systemd-analyze verify of the units" "systemd-analyze not installed (tests/deps.sh installs systemd)"
fi

# A second install keeps an operator's config.
echo "# mine" >"$D/etc/ballast/ballast.conf"
make -s -C "$ROOT" install BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr >/dev/null 2>&1
t_eq "make install never overwrites an existing config" "# mine" "$(cat "$D/etc/ballast/ballast.conf")"

# The example config parses, commented or with every line uncommented.
EX=$ROOT/packaging/ballast.conf
t_ok "the example config parses" "$BUILD/ballastd" --config "$EX" --check-config
sed 's/^#\(\[\|[a-z_]* =\)/\1/' "$EX" >"$T/uncommented.conf"
t_ok "the example config parses with every key uncommented" \
	"$BUILD/ballastd" --config "$T/uncommented.conf" --check-config
keys=$("$BUILD/ballastd" --list-config-keys)
missing=""
for k in $keys; do
	grep -q "^${k#*.} =" "$T/uncommented.conf" || missing="$missing $k"
done
t_eq "the example config shows every config key" "" "${missing# }"

# Every config key is documented in ballastd(8), in its section.
MAN=$ROOT/man/ballastd.8
missing=""
for k in $keys; do
	sec=${k%%.*} key=${k#*.}
	awk -v sec="[$sec]" -v key="$key" '
		/^\.SS / { cur = $2 }
		cur == sec && $0 == ".B " key { found = 1 }
		END { exit !found }' "$MAN" || missing="$missing $k"
done
t_eq "ballastd(8) documents every config key in its section" "" "${missing# }"
t_ne "there are config keys to check" "" "$keys"

# Every volume option of every backend is documented.
missing=""
while read -r be opt; do
	awk -v be="$be" -v opt="$opt" '
		/^\.SH / { in_opts = ($0 == ".SH VOLUME OPTIONS") }
		in_opts && /^\.SS / { cur = $2 }
		in_opts && (opt == "backend" || cur == be) && /^\.BR? / {
			for (i = 2; i <= NF; i++) { f = $i; gsub(/[",]/, "", f); if (f == opt) found = 1 }
		}
		END { exit !found }' "$MAN" || missing="$missing $be:$opt"
done < <("$BUILD/ballastd" --list-options)
t_eq "ballastd(8) documents every volume option of every backend" "" "${missing# }"
for page in ballastd.8 ballast.1 mount.ballast.8; do
	t_eq "man $page renders without warnings" "" \
		"$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$ROOT/man/$page" 2>&1 >/dev/null)"
done

# The shared backends load on demand: a local-only ballastd maps neither
# the Ceph nor the Gluster libraries, and says so when a volume asks for
# one; the control: with [rbd] and [gluster] in its config, it maps both.
# mods_run NAME CONF...: start ballastd with the config lines, wait for its
# socket; MODS_PID is its PID
mods_run() {
	local dir=$T/mods-$1
	shift
	mkdir -p "$dir"
	printf '%s\n' "[ballast]" "socket = $dir/b.sock" "state_dir = $dir/state" \
		"helper = $BUILD/mount.ballast" "$@" >"$dir/b.conf"
	"$BUILD/ballastd" --config "$dir/b.conf" >"$dir/log" 2>&1 &
	MODS_PID=$!
	for _ in $(seq 100); do [ -S "$dir/b.sock" ] && break; sleep 0.05; done
	MODS_SOCK=$dir/b.sock
}
mods_mapped() { grep -oE 'lib(rbd|rados|gfapi)\.so' "/proc/$1/maps" | sort -u | paste -sd' '; }
mods_run local
t_eq "a local-only ballastd maps no Ceph or Gluster library" "" "$(mods_mapped "$MODS_PID")"
t_match "... and a Create with backend=rbd says rbd is not configured" \
	'backend \\"rbd\\" is not configured: this ballastd.s config file has no \[rbd\] section' \
	"$(curl -s --max-time 10 --unix-socket "$MODS_SOCK" -X POST \
		-d '{"Name":"m1","Opts":{"backend":"rbd"}}' http://b/VolumeDriver.Create)"
kill "$MODS_PID" && wait "$MODS_PID" 2>/dev/null
mods_run both "[rbd]" "conf = $T/no-ceph.conf" "[gluster]" "servers = 127.0.0.1" "volume = none"
t_eq "with [rbd] and [gluster] it maps both (the control)" "libgfapi.so librados.so librbd.so" \
	"$(mods_mapped "$MODS_PID")"
kill "$MODS_PID" && wait "$MODS_PID" 2>/dev/null

# Socket activation: systemd-socket-activate owns the socket (as the
# socket unit does) and hands it to ballastd through LISTEN_FDS.
if command -v systemd-socket-activate >/dev/null; then
	cat >"$T/run.conf" <<CONF
[ballast]
socket = $T/unused.sock
state_dir = $T/state
helper = $BUILD/mount.ballast
CONF
	systemd-socket-activate -l "$T/act.sock" "$BUILD/ballastd" --config "$T/run.conf" \
		>"$T/act.log" 2>&1 &
	SA_PID=$!
	for _ in $(seq 50); do [ -S "$T/act.sock" ] && break; sleep 0.1; done
	ans=$(curl -s --max-time 10 --unix-socket "$T/act.sock" -X POST http://b/Plugin.Activate)
	t_eq "ballastd answers on the socket systemd passed" '{"Implements":["VolumeDriver"],"Err":""}' "$ans"
	# more than Activate: a daemon that answers nothing else fails here
	t_eq "... and serves the volume API there" '{"Volumes":[],"Err":""}' \
		"$(curl -s --max-time 10 --unix-socket "$T/act.sock" -X POST -d '{}' http://b/VolumeDriver.List)"
	t_fail "ballastd did not create its own socket" test -e "$T/unused.sock"
	t_match "ballastd logs that it took the passed socket" 'socket passed by systemd' "$(cat "$T/act.log")"
else
	t_failed "systemd-socket-activate is installed (package systemd)"
fi
[ -n "$SA_PID" ] && kill "$SA_PID" 2>/dev/null && wait "$SA_PID" 2>/dev/null
SA_PID=

# Readiness (the service is Type=notify): ballastd sends READY=1 to the
# datagram socket NOTIFY_SOCKET names once it serves, and STOPPING=1 on
# SIGTERM. A listener stands in for systemd and prints what it receives.
notify_listen() { # SOCKET OUT: receive two datagrams (30 s at most)
	python3 - "$1" >"$2" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
print("bound", flush=True)
for _ in range(2):
    try:
        print(s.recv(4096).decode(), flush=True)
    except socket.timeout:
        print("timeout", flush=True)
        break
PY
	NL_PID=$!
	for _ in $(seq 50); do grep -q bound "$2" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
t_ok "a notify listener is bound" notify_listen "$T/notify.sock" "$T/notify.out"
NOTIFY_SOCKET=$T/notify.sock "$BUILD/ballastd" --config "$T/run.conf" >"$T/nt.log" 2>&1 &
SA_PID=$!
t_wait_eq "ballastd tells the service manager it is ready" 15 "bound READY=1" \
	sh -c "tr '\n' ' ' <'$T/notify.out' | sed 's/ $//'"
t_eq "... once it answers" '{"Implements":["VolumeDriver"],"Err":""}' \
	"$(curl -s --max-time 10 --unix-socket "$T/unused.sock" -X POST http://b/Plugin.Activate)"
kill -TERM "$SA_PID"
wait "$SA_PID" 2>/dev/null
SA_PID=
wait "$NL_PID" 2>/dev/null
t_eq "and that it stops, on SIGTERM" "bound READY=1 STOPPING=1" "$(tr '\n' ' ' <"$T/notify.out" | sed 's/ $//')"
