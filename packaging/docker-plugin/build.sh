#!/usr/bin/env bash
# packaging/docker-plugin/build.sh BUILD OUTDIR - assemble a managed-plugin
# directory for `docker plugin create`: OUTDIR/config.json and OUTDIR/rootfs
# with ballastd, ballast, mount.ballast, the mkfs and grow tools they run,
# and every shared library those need (from ldd).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:?usage: build.sh BUILD OUTDIR}
OUT=${2:?usage: build.sh BUILD OUTDIR}
ROOTFS=$OUT/rootfs

rm -rf "$OUT"
mkdir -p "$ROOTFS"/{usr/sbin,usr/bin,sbin,etc/ballast,run/docker/plugins,var/lib/ballast,tmp,dev,proc,sys}
chmod 1777 "$ROOTFS/tmp"
cp "$HERE/config.json" "$OUT/config.json"

# copy_bin SRC DEST: a program and, from ldd, the libraries it loads.
copy_bin() {
	local src=$1 dest=$2 lib
	install -D -m 0755 "$(readlink -f "$src")" "$ROOTFS$dest"
	for lib in $(ldd "$src" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
		[ -e "$ROOTFS$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$ROOTFS$lib"
	done
}

copy_bin "$BUILD/ballastd" /usr/sbin/ballastd
# the shared backends' modules, where ballastd looks (../lib/ballast)
for mod in "$BUILD"/backends/*.so; do
	if [ -e "$mod" ]; then copy_bin "$mod" "/usr/lib/ballast/$(basename "$mod")"; fi
done
copy_bin "$BUILD/ballast" /usr/bin/ballast
copy_bin "$BUILD/mount.ballast" /usr/sbin/mount.ballast
for tool in mkfs.ext4 mkfs.xfs resize2fs xfs_growfs; do
	path=$(command -v "$tool" || true)
	[ -n "$path" ] || { echo "build.sh: $tool not found (install e2fsprogs and xfsprogs)" >&2; exit 1; }
	copy_bin "$path" "/usr/sbin/$tool"
done
cp /etc/mke2fs.conf "$ROOTFS/etc/mke2fs.conf"
echo "ballast plugin rootfs: $(du -sh "$ROOTFS" | cut -f1) in $ROOTFS"
