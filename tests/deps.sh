#!/usr/bin/env bash
# tests/deps.sh - install every Debian package the build and the tests need.
#
# Idempotent: does nothing (and prints nothing) when every package is already
# installed; runs `apt-get update` only when something is missing. Loud on
# failure: prints apt's output and exits non-zero.
set -euo pipefail

# What ballast needs to build and to run (mkfs for sized volumes), every
# backend included: the rbd and gluster modules are loaded only when the
# config uses them, so their client libraries cost nothing until then.
BUILD_PACKAGES=(
	build-essential pkg-config
	libmicrohttpd-dev libjansson-dev libcmocka-dev
	libmount-dev libblkid-dev libinih-dev
	libcurl4-openssl-dev
	e2fsprogs xfsprogs util-linux
	libglusterfs-dev librados-dev librbd-dev libfuse3-dev
)
# What the tests need on top: the real dockerd and the tools the scripts use.
TEST_PACKAGES=(
	docker.io containerd runc busybox-static jq curl iproute2 sqlite3
	# building the Debian package
	debhelper dpkg-dev fakeroot
	# promtool, a real parser of the metrics text
	prometheus
	# the gluster backend: a real glusterd to test against
	glusterfs-server glusterfs-client
	# the rbd backend: a real Ceph (one monitor, one OSD) to test against
	ceph-mon ceph-osd ceph-common fuse3 rbd-fuse uuid-runtime
	# the kernel mappers' error paths (mount.ballast map --mapper nbd)
	rbd-nbd
	# the kernel mappers on a real kernel: a user-mode Linux guest with
	# rbd.ko and nbd.ko (tests/lib/uml.sh), and its modprobe
	user-mode-linux kmod
	# benchmarks: fio inside containers, the persistent dockerd API client
	fio python3
	# hardening: fuzzing (libFuzzer), memcheck, execve tracing
	clang libclang-rt-14-dev valgrind strace
	# the style check of the layers group; systemd-analyze for the units
	clang-format systemd
)

# --build: only what `make run` needs (a machine that runs Docker already
# has its own engine, which docker.io could conflict with).
if [ "${1:-}" = "--build" ]; then
	PACKAGES=("${BUILD_PACKAGES[@]}")
else
	PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$st" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root to install them" >&2
	exit 1
fi

log=$(mktemp /tmp/ballast-deps.XXXXXX)
trap 'rm -f "$log"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold)

fail() {
	echo "deps.sh: $1 failed; missing packages were: ${missing[*]}" >&2
	cat "$log" >&2
	exit 1
}

apt-get "${apt_opts[@]}" update >"$log" 2>&1 || fail "apt-get update"
apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" \
	>>"$log" 2>&1 || fail "apt-get install"

# Check again: apt-get can exit 0 and still leave a package out.
still=()
for p in "${missing[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || still+=("$p")
done
if [ "${#still[@]}" -ne 0 ]; then
	missing=("${still[@]}")
	fail "installation"
fi
exit 0
