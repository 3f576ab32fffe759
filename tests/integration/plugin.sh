#!/usr/bin/env bash
# tests/integration/plugin.sh - ballast as a managed ("v2") Docker plugin:
# assemble the rootfs, `docker plugin create`, enable it on the suite's own
# dockerd, create a volume with it, write from one container and read from
# another, check that mountpoints lie under the propagated mount, then
# disable and remove it.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/dockerd.sh
. "$HERE/../lib/dockerd.sh"

t_group plugin
BUILD=${BALLAST_BUILD:-${BUILD:-$ROOT/build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
P=ballast-test:latest

[ "$(id -u)" -eq 0 ] || t_die "must run as root"
for c in docker dockerd jq; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done

T=$(mktemp -d /tmp/ballast-plugin.XXXXXX)
MADE_ETC=0
cleanup() {
	if [ -n "${DOCKER_HOST:-}" ]; then
		dk plugin disable -f "$P" >/dev/null 2>&1
		dk plugin rm -f "$P" >/dev/null 2>&1
	fi
	dockerd_cleanup
	[ "$MADE_ETC" = 1 ] && rmdir /etc/ballast 2>/dev/null
	if [ "$TAP_FAIL" -eq 0 ]; then rm -rf "$T"; else printf '# test directory kept: %s\n' "$T"; fi
}
t_at_exit cleanup
dockerd_trap

# The plugin's config mount binds the host's /etc/ballast (empty here:
# all defaults).
if [ ! -d /etc/ballast ]; then
	mkdir -p /etc/ballast
	MADE_ETC=1
fi

SECONDS=0
t_ok "the plugin directory is assembled" bash "$ROOT/packaging/docker-plugin/build.sh" "$BUILD" "$T/plugin"
t_ok "its config.json is valid JSON" jq -e . "$T/plugin/config.json"
t_eq "it declares the volume driver interface" "docker.volumedriver/1.0" \
	"$(jq -r '.interface.types[0]' "$T/plugin/config.json")"
dockerd_start "$T/d" || t_die "dockerd did not start"
busybox_image || t_die "could not import local/busybox"
t_ok "docker plugin create" dk plugin create "$P" "$T/plugin"
t_ok "docker plugin set args (settable)" dk plugin set "$P" args="--log-level debug"
t_ok "docker plugin enable" dk plugin enable --timeout 60 "$P"
t_eq "the plugin is enabled" "true" "$(dk plugin inspect -f '{{.Enabled}}' "$P" 2>&1)"
t_diag "plugin enabled after $SECONDS s"

t_ok "volume create with the plugin" dk volume create -d "$P" -o uid=1000 pv1
t_ok "a sized volume too" dk volume create -d "$P" -o size=32M pv2
for v in pv1 pv2; do
	t_ok "a container writes to $v" dk run --rm --network none -v "$v:/data" local/busybox \
		sh -c "echo hello-$v > /data/f"
	t_eq "another container reads $v back" "hello-$v" \
		"$(dk run --rm --network none -v "$v:/data" local/busybox cat /data/f 2>&1)"
done
t_eq "pv1's root belongs to uid 1000" "1000" \
	"$(dk run --rm --network none -v pv1:/data local/busybox stat -c %u /data 2>&1)"
prop=$(dk plugin inspect -f '{{.Config.PropagatedMount}}' "$P" 2>&1)
t_eq "the plugin's propagated mount is ballast's state dir" "/var/lib/ballast" "$prop"
# While a container runs, the mountpoint the plugin answered lies under the
# propagated mount, and the data shows in the host directory dockerd keeps
# for it.
dk run -d --name pc --network none -v pv2:/data local/busybox sleep 300 >/dev/null
mp=$(dk volume inspect -f '{{.Mountpoint}}' pv2 2>&1)
t_match "the mountpoint lies under the propagated mount" '^/var/lib/ballast/mounts/pv2/data$' "$mp"
id=$(dk plugin inspect -f '{{.Id}}' "$P" 2>&1)
host=$(find "$T/d" -maxdepth 4 -type d -path "*/plugins/$id/propagated-mount" 2>/dev/null | head -n 1)
t_ne "dockerd keeps a host directory for the propagated mount" "" "$host"
t_eq "the data is there on the host side" "hello-pv2" "$(cat "$host/mounts/pv2/data/f" 2>&1)"
dk rm -f pc >/dev/null
t_ok "volume rm" dk volume rm pv1 pv2
t_ok "docker plugin disable" dk plugin disable "$P"
t_ok "docker plugin rm" dk plugin rm "$P"
t_eq "no plugin left" "" "$(dk plugin ls -q 2>&1)"
t_diag "total time $SECONDS s"
