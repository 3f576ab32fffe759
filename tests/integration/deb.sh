#!/usr/bin/env bash
# tests/integration/deb.sh - the Debian package: build it with
# dpkg-buildpackage, check its dependencies and contents, install it with
# dpkg -i, run a container through the installed ballastd and the real
# dockerd, then purge it and check that nothing of it is left.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/dockerd.sh
. "$HERE/../lib/dockerd.sh"

t_group deb
PLUGIN=ballast

[ "$(id -u)" -eq 0 ] || t_die "must run as root"
for c in dpkg-buildpackage dh docker dockerd jq curl; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done
if dpkg-query -W -f='${Status}' ballast 2>/dev/null | grep -q 'install ok installed'; then
	t_die "a ballast package is installed on this machine already; this test would replace it"
fi
for s in "/run/docker/plugins/$PLUGIN.sock" "/run/docker/plugins/$PLUGIN/$PLUGIN.sock"; do
	[ -e "$s" ] && t_die "$s exists: dockerd would use it instead of our spec file"
done

T=$(mktemp -d /tmp/ballast-deb.XXXXXX)
# ballastd.sh runs the binaries of $BALLAST_BUILD: point it at the
# installed ones.
export BALLAST_BUILD=$T/installed
# shellcheck source=../lib/ballastd.sh
. "$HERE/../lib/ballastd.sh"

cleanup() {
	ballastd_kill9
	dockerd_cleanup
	dpkg --purge ballast >/dev/null 2>&1
	if [ "$TAP_FAIL" -eq 0 ]; then rm -rf "$T"; else printf '# test directory kept: %s\n' "$T"; fi
}
t_at_exit cleanup
dockerd_trap

SECONDS=0
t_ok "dpkg-buildpackage -us -uc -b builds the package" bash "$ROOT/packaging/build-deb.sh" "$T/out"
t_diag "package build took $SECONDS s"
DEB=$(ls "$T"/out/ballast_*_*.deb 2>/dev/null | head -n 1)
[ -n "$DEB" ] || t_die "no .deb was built"

deps=$(dpkg-deb -f "$DEB" Depends)
for lib in libmicrohttpd12 libjansson4 libmount1 libblkid1 libinih1 libcurl4 e2fsprogs; do
	t_match "Depends names $lib" "(^|, )$lib( |,|$)" "$deps"
done
# ballastd speaks systemd's protocols itself (daemon/systemd.c); the
# control: the same probe finds libmicrohttpd12 above
t_nomatch "Depends does not name libsystemd0" "(^|, )libsystemd0( |,|$)" "$deps"
contents=$(dpkg-deb -c "$DEB" | awk '{ print $6 }')
for f in ./usr/sbin/ballastd ./usr/bin/ballast ./sbin/mount.ballast ./etc/ballast/ballast.conf \
	./lib/systemd/system/ballast.socket ./lib/systemd/system/ballast.service \
	./usr/share/man/man8/ballastd.8.gz ./usr/lib/ballast/rbd.so ./usr/lib/ballast/gluster.so; do
	t_match "the package holds $f" "(^|$(printf '\n'))$f($(printf '\n')|$)" "$contents"
done
t_eq "the config is a conffile" "/etc/ballast/ballast.conf" \
	"$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles 2>/dev/null)"

t_ok "dpkg -i installs it" dpkg -i "$DEB"
t_eq "dpkg knows it as installed" "install ok installed" "$(dpkg-query -W -f='${Status}' ballast 2>&1)"
t_ok "its maintainer scripts enabled ballast.socket" \
	test -L /etc/systemd/system/sockets.target.wants/ballast.socket
t_eq "the installed ballastd runs" "ballastd 0.1.0" "$(/usr/sbin/ballastd --version 2>&1)"
t_ok "the installed config parses" /usr/sbin/ballastd --config /etc/ballast/ballast.conf --check-config

mkdir -p "$BALLAST_BUILD"
# (BALLAST_DEB_BALLASTD: another ballastd in its place; tests/dead_daemon.sh)
ln -s "${BALLAST_DEB_BALLASTD:-/usr/sbin/ballastd}" "$BALLAST_BUILD/ballastd"
ln -s /usr/bin/ballast "$BALLAST_BUILD/ballast"
ln -s /sbin/mount.ballast "$BALLAST_BUILD/mount.ballast"
dockerd_start "$T/d" || t_die "dockerd did not start"
busybox_image || t_die "could not import local/busybox"
ballastd_start "$T/b" || t_die "the installed ballastd did not start"
plugin_register "$PLUGIN" "$BALLAST_SOCK" || t_die "could not write the plugin spec"
t_ok "volume create through the installed ballastd" \
	dk volume create -d "$PLUGIN" -o size=32M -o uid=1000 pkgvol
t_ok "a container writes to it" dk run --rm --network none --volume-driver "$PLUGIN" \
	-v pkgvol:/data local/busybox sh -c 'echo from-the-package > /data/f'
t_eq "another container reads it back" "from-the-package" \
	"$(dk run --rm --network none --volume-driver "$PLUGIN" -v pkgvol:/data local/busybox cat /data/f 2>&1)"
t_ok "volume rm" dk volume rm pkgvol
t_ok "ballastd stops on SIGTERM" ballastd_stop
dockerd_stop

t_ok "dpkg --purge removes it" dpkg --purge ballast
t_eq "dpkg no longer knows it" "" "$(dpkg-query -W -f='${Status}' ballast 2>/dev/null | grep installed)"
for f in /usr/sbin/ballastd /usr/bin/ballast /sbin/mount.ballast /etc/ballast \
	/lib/systemd/system/ballast.socket /etc/systemd/system/sockets.target.wants/ballast.socket \
	/usr/share/man/man8/ballastd.8.gz; do
	t_fail "$f is gone after purge" test -e "$f"
done
t_diag "total time $SECONDS s"
