#!/usr/bin/env bash
# packaging/build-deb.sh OUTDIR - build ballast's .deb with
# `dpkg-buildpackage -us -uc -b` in a clean copy of the tracked tree, with
# packaging/debian/ as debian/. The .deb lands in OUTDIR.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:?usage: build-deb.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/ballast-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/ballast-0.1.0
mkdir -p "$SRC"
# Only tracked files: never build/ or work in progress.
(cd "$ROOT" && git ls-files -z) |
	(cd "$ROOT" && xargs -0 cp --parents -t "$SRC" 2>/dev/null || true)
cp -r "$ROOT/packaging/debian" "$SRC/debian"
(cd "$SRC" && dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1) || {
	tail -n 40 "$WORK/build.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed" >&2
	exit 1
}
cp "$WORK"/*.deb "$OUT"/
ls "$OUT"/*.deb
