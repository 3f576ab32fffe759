# shellcheck shell=bash
# tests/lib/uml.sh - a kernel of the tests' own: a user-mode Linux guest
# (Debian's user-mode-linux: Linux 6.1 run as an ordinary process, with its
# modules, rbd.ko and nbd.ko among them), for what the machine's kernel
# cannot do. Recipe and timings: ../shared/KERNEL.md.
#
# The guest's root is the host's file system (hostfs, read-write): the
# build's binaries, the tools and the test's directory are where they are
# on the host. It mounts its own /proc, /sys, /dev (a devtmpfs: device nodes
# without udev) and /run (a tmpfs: no udev socket, sockets of its own), and
# creates nothing on the host outside DIR. Modules come from the package
# (UML_MODULES/VERSION) through a modprobe wrapper in DIR; the guest's
# /proc/sys/kernel/modprobe names it. Its only link is a tap device on the
# host, UML_TAP, with UML_HOST_ADDR/30 on the host side and UML_GUEST_ADDR
# in the guest (vec0): start Ceph with CEPH_ADDR=$UML_HOST_ADDR
# (tests/lib/ceph.sh) and the guest reaches it.
#
# Commands run in the guest through files in DIR/cmd: the guest's init
# (an agent written to DIR/init.sh) runs each ID.sh in order, one at a
# time, under `timeout`, and writes its output to ID.out and its exit
# status to ID.rc. A unix socket made in the guest belongs to the guest's
# kernel even on a hostfs path: talk to the guest's daemons from commands
# run there. Commands get PATH, HOME=/root, LANG=C and TMPDIR=DIR/tmp.
#
#   uml_check              the kernel, its modules and modprobe are
#                          installed (tests/deps.sh installs them)
#   uml_net_start          make the tap link; fails when UML_TAP exists or
#                          an address of UML_NET/30 is in use already
#   uml_net_stop           remove it (safe twice)
#   uml_start DIR          boot a guest with its files in DIR (console.log,
#                          boot.log, cmd/; DIR must not exist or be empty),
#                          UML_MEM of memory, hostname UML_HOSTNAME; wait
#                          (UML_BOOT_TIMEOUT, 90 s) until its agent
#                          answers. Fails loudly, with the console's tail,
#                          when the guest dies or does not answer.
#   uml_run [-t S] CMD [ARG...]  run in the guest (with one argument, CMD
#                          is a bash script; with more, a command and its
#                          arguments); print its stdout and stderr; return
#                          its status: 124 when it ran over S seconds
#                          (UML_CMD_TIMEOUT, 120), 125 when the guest does
#                          not run or answer
#   uml_stop               halt the guest (sync first), wait 30 s, else
#                          SIGKILL it (and fail)
#   uml_kill               SIGKILL the guest and all its processes: a host
#                          that dies (its kernel's Ceph clients just stop)
#   uml_running            true while the guest's kernel runs
#   uml_console_tail [N]   the last N (30) lines of the console and boot
#                          log, prefixed '#'
#   uml_cleanup            uml_kill, then uml_net_stop
#
# Every wait is bounded. Must run in the main shell of the script for
# uml_start, uml_stop, uml_kill (the guest's PID is kept in a variable);
# uml_run may run in a subshell ($(uml_run ...)).

UML_NET=${UML_NET:-10.238.0.0}
UML_HOST_ADDR=${UML_HOST_ADDR:-10.238.0.1}
UML_GUEST_ADDR=${UML_GUEST_ADDR:-10.238.0.2}
UML_TAP=${UML_TAP:-bkern0}
UML_MEM=${UML_MEM:-768M}
UML_HOSTNAME=${UML_HOSTNAME:-uml}
UML_BOOT_TIMEOUT=${UML_BOOT_TIMEOUT:-90}
UML_CMD_TIMEOUT=${UML_CMD_TIMEOUT:-120}
UML_KERNEL=${UML_KERNEL:-/usr/bin/linux}
UML_MODULES=${UML_MODULES:-/usr/lib/uml/modules}
UML_PID=""
UML_DIR=""
UML_NET_UP=""

_uml_log() { printf '# uml.sh: %s\n' "$*" >&2; }

# _uml_version: the guest kernel's release (its modules' directory name).
_uml_version() {
	timeout 10 "$UML_KERNEL" --version 2>/dev/null | head -n 1
}

uml_check() {
	local v c
	[ -x "$UML_KERNEL" ] || {
		_uml_log "$UML_KERNEL missing: install user-mode-linux (tests/deps.sh)"
		return 1
	}
	v=$(_uml_version)
	if [ -z "$v" ] || [ ! -f "$UML_MODULES/$v/modules.dep" ]; then
		_uml_log "no modules for the guest kernel '$v' in $UML_MODULES (user-mode-linux)"
		return 1
	fi
	for c in modprobe ip timeout setsid; do
		command -v "$c" >/dev/null || {
			_uml_log "$c not found (tests/deps.sh: kmod, iproute2)"
			return 1
		}
	done
	[ -c /dev/net/tun ] || {
		_uml_log "/dev/net/tun missing: no tap device for the guest"
		return 1
	}
}

# ------------------------------------------------------------------ network
uml_net_start() {
	local used
	if ip link show "$UML_TAP" >/dev/null 2>&1; then
		_uml_log "link $UML_TAP exists already (another test bed, or a leftover: ip link del $UML_TAP)"
		return 1
	fi
	used=$(ip -o -4 addr show to "$UML_NET/30" 2>/dev/null)
	if [ -n "$used" ]; then
		_uml_log "$UML_NET/30 is in use already: $used"
		return 1
	fi
	ip tuntap add dev "$UML_TAP" mode tap || return 1
	UML_NET_UP=1
	if ! ip addr add "$UML_HOST_ADDR/30" dev "$UML_TAP" || ! ip link set "$UML_TAP" up; then
		uml_net_stop
		return 1
	fi
}

uml_net_stop() {
	[ -n "$UML_NET_UP" ] || return 0
	ip link del "$UML_TAP" 2>/dev/null || true
	UML_NET_UP=""
}

# ------------------------------------------------------------------ the guest
# _uml_write_init DIR VERSION: the guest's init (set-up, then the agent).
_uml_write_init() {
	local d=$1 v=$2
	mkdir -p "$d/cmd" "$d/tmp" "$d/bin" "$d/modroot/lib/modules" || return 1
	ln -sfn "$UML_MODULES/$v" "$d/modroot/lib/modules/$v" || return 1
	# first in the guest's PATH, and the kernel's own modprobe
	cat >"$d/bin/modprobe" <<-EOF || return 1
		#!/bin/sh
		exec /sbin/modprobe -d $d/modroot "\$@"
	EOF
	cat >"$d/init.sh" <<-EOF || return 1
		#!/bin/bash
		# The guest's init, written by tests/lib/uml.sh: set up, then run
		# the commands the host puts in cmd/ until it asks for a halt.
		D=$d
		export PATH=\$D/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		export HOME=/root LANG=C TMPDIR=\$D/tmp
		step() { echo "+ \$*"; "\$@" || { echo "FAILED: \$*"; echo "\$*" >"\$D/boot.failed"; halt -f; }; }
		{
			step mount -t proc proc /proc
			step mount -t sysfs sysfs /sys
			# the kernel mounts its devtmpfs by itself (DEVTMPFS_MOUNT)
			grep -q '^devtmpfs /dev ' /proc/mounts || step mount -t devtmpfs devtmpfs /dev
			step mount -t tmpfs -o mode=0755 tmpfs /run
			ln -sfn /proc/self/fd /dev/fd
			ln -sfn /proc/self/fd/0 /dev/stdin
			ln -sfn /proc/self/fd/1 /dev/stdout
			ln -sfn /proc/self/fd/2 /dev/stderr
			step hostname "$UML_HOSTNAME"
			echo "\$D/bin/modprobe" >/proc/sys/kernel/modprobe
			step ip link set lo up
			step ip addr add "$UML_GUEST_ADDR/30" dev vec0
			step ip link set vec0 up
			mkfifo /run/uml-agent.fifo
			uname -r
		} >"\$D/boot.log" 2>&1
		exec 9<>/run/uml-agent.fifo
		cd /
		echo ready >"\$D/ready"
		# Forks are dear in a UML guest: builtins only, but for the command.
		last=""
		while :; do
			next=""
			for f in "\$D"/cmd/*.sh; do
				[[ \$f > \$last ]] && next=\$f && break
			done
			if [ -n "\$next" ] && [ -e "\$next" ]; then
				last=\$next
				id=\${next%.sh}
				read -r tmo <"\$id.tmo"
				timeout -k 5 "\$tmo" bash "\$next" >"\$id.out" 2>&1 </dev/null
				printf '%s\\n' \$? >"\$id.rc"
				continue
			fi
			[ -e "\$D/halt" ] && break
			read -r -t 0.05 -u 9 _ || true
		done
		sync
		halt -f
	EOF
	chmod 0755 "$d/init.sh" "$d/bin/modprobe"
}

uml_running() {
	[ -n "$UML_PID" ] && kill -0 "$UML_PID" 2>/dev/null
}

uml_console_tail() {
	local n=${1:-30} f
	for f in "$UML_DIR/boot.log" "$UML_DIR/console.log"; do
		[ -f "$f" ] || continue
		printf '# --- %s\n' "$f"
		tail -n "$n" "$f" | sed 's/^/#   /'
	done
}

uml_start() {
	local d v i
	if uml_running; then
		_uml_log "a guest runs already (pid $UML_PID)"
		return 1
	fi
	uml_check || return 1
	mkdir -p "$1" || return 1
	d=$(cd "$1" && pwd)
	if [ -n "$(ls -A "$d")" ]; then
		_uml_log "$d is not empty"
		return 1
	fi
	UML_DIR=$d
	v=$(_uml_version)
	_uml_write_init "$d" "$v" || return 1
	# A session of its own: the guest's processes are one process group.
	# gro=1: without it the guest drops the tap's GSO frames, and reads
	# from the OSD crawl (4 MiB in 18 s instead of 0.2 s).
	setsid "$UML_KERNEL" mem="$UML_MEM" rootfstype=hostfs rootflags=/ rw init="$d/init.sh" \
		"vec0:transport=tap,ifname=$UML_TAP,gro=1" con=null con0=fd:0,fd:1 \
		</dev/null >"$d/console.log" 2>&1 &
	UML_PID=$!
	# setsid runs the kernel itself (no fork) when it is no group leader,
	# as a background job of a shell without job control is not
	for ((i = 0; i < 50; i++)); do
		[ "$(ps -o pgid= -p "$UML_PID" 2>/dev/null | tr -d ' ')" = "$UML_PID" ] && break
		sleep 0.05
	done
	if [ "$i" -ge 50 ]; then
		_uml_log "the guest's kernel (pid $UML_PID) did not get a process group of its own (job control on?)"
		kill -KILL "$UML_PID" 2>/dev/null
		UML_PID=""
		return 1
	fi
	for ((i = 0; i < UML_BOOT_TIMEOUT * 10; i++)); do
		[ -e "$d/ready" ] && return 0
		if ! kill -0 "$UML_PID" 2>/dev/null; then
			wait "$UML_PID" 2>/dev/null || true
			UML_PID=""
			_uml_log "the guest died while booting$([ -e "$d/boot.failed" ] && echo ": $(cat "$d/boot.failed") failed")"
			uml_console_tail 30 >&2
			return 1
		fi
		sleep 0.1
	done
	_uml_log "the guest did not answer within $UML_BOOT_TIMEOUT s"
	uml_console_tail 30 >&2
	uml_kill
	return 1
}

uml_run() {
	local tmo=$UML_CMD_TIMEOUT id i
	if [ "${1:-}" = -t ]; then
		tmo=$2
		shift 2
	fi
	if ! uml_running || [ ! -e "$UML_DIR/ready" ]; then
		echo "uml_run: no guest runs" >&2
		return 125
	fi
	id=$UML_DIR/cmd/$(date +%s%N)-$BASHPID-$RANDOM
	if [ $# -eq 1 ]; then
		printf '%s\n' "$1" >"$id.tmp"
	else
		printf '%q ' "$@" >"$id.tmp"
		echo >>"$id.tmp"
	fi
	echo "$tmo" >"$id.tmo"
	mv "$id.tmp" "$id.sh"
	# the guest's own bound, its kill grace, and the agent's turn
	for ((i = 0; i < (tmo + 20) * 50; i++)); do
		[ -s "$id.rc" ] && break
		if ! kill -0 "$UML_PID" 2>/dev/null; then
			echo "uml_run: the guest died" >&2
			return 125
		fi
		sleep 0.02
	done
	if [ ! -s "$id.rc" ]; then
		echo "uml_run: the guest did not answer within $((tmo + 20)) s" >&2
		return 125
	fi
	[ -f "$id.out" ] && cat "$id.out"
	return "$(cat "$id.rc")"
}

# _uml_gone: wait (10 s) until no process of the guest's group is left.
_uml_gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		pgrep -g "$UML_PID" >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	_uml_log "processes of the guest still run: $(pgrep -g "$UML_PID" | tr '\n' ' ')"
	return 1
}

uml_kill() {
	[ -n "$UML_PID" ] || return 0
	kill -KILL -- "-$UML_PID" 2>/dev/null || true
	wait "$UML_PID" 2>/dev/null || true
	_uml_gone || return 1
	UML_PID=""
}

uml_stop() {
	local i
	[ -n "$UML_PID" ] || return 0
	touch "$UML_DIR/halt"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$UML_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$UML_PID" 2>/dev/null; then
		_uml_log "the guest did not halt within 30 s: SIGKILL"
		uml_kill
		return 1
	fi
	wait "$UML_PID" 2>/dev/null || true
	# the kernel's helper processes go with it
	_uml_gone || {
		kill -KILL -- "-$UML_PID" 2>/dev/null || true
		_uml_gone || true
	}
	UML_PID=""
	rm -f "$UML_DIR/halt" "$UML_DIR/ready"
}

uml_cleanup() {
	uml_kill || true
	uml_net_stop
}
