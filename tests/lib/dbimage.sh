# shellcheck shell=bash
# tests/lib/dbimage.sh - a database image for tests that cannot pull one:
# local/ballast-sqlite, Debian's sqlite3 (with its libraries) and a static
# busybox, imported from a root file system made here.
#
#   dbimage_deps           install sqlite3 and busybox-static when missing
#                          (apt-get, quiet; apt-get update on failure)
#   dbimage_apt PKG...     the same for any packages (pgimage.sh uses it):
#                          install those not installed, bounded (timeouts,
#                          DPkg lock wait), apt-get update and one retry on
#                          failure, the last lines of apt's output on error
#   dbimage_build CLI...   import the image into the dockerd that the command
#                          CLI talks to (`dbimage_build dka`, `dbimage_build
#                          docker -H unix:///x.sock`); nothing when it has
#                          it already. The root file system is made once per
#                          script and kept for the next dockerd until
#                          dbimage_cleanup. CLI must bound itself (dka does).
#   dbimage_cleanup        remove that root file system (safe twice)
#
# For tests of a volume driver DRV through the dockerd that CLI... talks to
# (each a container with VOL at /data, --network none; table t(n)):
#   dbimage_sql DRV VOL SQL CLI...      one sqlite3 run of SQL on /data/db
#   dbimage_rows DRV VOL CLI...         "COUNT MIN MAX INTEGRITY" of t
#   dbimage_writer DRV VOL NAME CLI...  container NAME (detached) commits
#                                       rows 1, 2, ... one sqlite3 run each
#                                       (synchronous=EXTRA), printing
#                                       "ok N" after each commit
#   dbimage_acked NAME CLI...           the last N that NAME printed (0)
#
# The image: /bin/busybox with sh, sleep, cat, ls, ... linked to it,
# /usr/bin/sqlite3 and the libraries ldd names (at their own paths), /tmp
# (1777), / 0755, PATH=/usr/bin:/bin, CMD sh. Run it with --network none:
#   docker run --rm --network none local/ballast-sqlite \
#       sqlite3 /data/db 'create table t(n); insert into t values(1);'
# DBIMAGE_NAME overrides the name.

# shellcheck disable=SC2015 # `a && b || fail`: fail on any step
DBIMAGE_NAME=${DBIMAGE_NAME:-local/ballast-sqlite}
DBIMAGE_TAR=""

_dbi_log() { printf '# dbimage.sh: %s\n' "$*" >&2; }

dbimage_deps() {
	dbimage_apt sqlite3 busybox-static
}

dbimage_apt() {
	local p st missing=() log
	for p in "$@"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$st" = "install ok installed" ] || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	_dbi_log "installing ${missing[*]}"
	log=$(mktemp /tmp/ballast-dbideps.XXXXXX)
	if ! DEBIAN_FRONTEND=noninteractive timeout -k 10 900 apt-get -q -y -o DPkg::Lock::Timeout=600 \
		install --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
		if ! DEBIAN_FRONTEND=noninteractive timeout -k 10 600 apt-get -q -y -o DPkg::Lock::Timeout=600 \
			update >>"$log" 2>&1 ||
			! DEBIAN_FRONTEND=noninteractive timeout -k 10 900 apt-get -q -y -o DPkg::Lock::Timeout=600 \
				install --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
			_dbi_log "installing ${missing[*]} failed:"
			tail -n 20 "$log" | sed 's/^/#   /' >&2
			rm -f "$log"
			return 1
		fi
	fi
	rm -f "$log"
}

# _dbi_rootfs: make the image's tar file once; print its path.
_dbi_rootfs() {
	local t r bb sq lib cmd
	if [ -n "$DBIMAGE_TAR" ] && [ -s "$DBIMAGE_TAR" ]; then
		printf '%s\n' "$DBIMAGE_TAR"
		return 0
	fi
	dbimage_deps || return 1
	bb=$(command -v busybox) && sq=$(command -v sqlite3) || {
		_dbi_log "busybox or sqlite3 not found after dbimage_deps"
		return 1
	}
	# Debian's busybox-static is /bin/busybox; the dynamic busybox package
	# would need its libraries too: refuse it rather than guess.
	if ldd "$bb" >/dev/null 2>&1; then
		_dbi_log "$bb is not static (install busybox-static)"
		return 1
	fi
	t=$(mktemp -d "${TMPDIR:-/tmp}/dbimage.XXXXXX") || return 1
	r=$t/root
	mkdir -p "$r/bin" "$r/usr/bin" "$r/tmp" "$r/etc" "$r/data" || return 1
	chmod 0755 "$r" && chmod 1777 "$r/tmp" || return 1
	cp "$bb" "$r/bin/busybox" && cp "$sq" "$r/usr/bin/sqlite3" || {
		_dbi_log "cannot copy $bb and $sq"
		rm -rf "$t"
		return 1
	}
	# Every absolute path ldd prints (libraries and the loader), at the
	# same path inside the image.
	for lib in $(ldd "$sq" | grep -o '/[^ ]*'); do
		[ -e "$lib" ] || continue
		mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib" || {
			_dbi_log "cannot copy $lib"
			rm -rf "$t"
			return 1
		}
	done
	for cmd in sh ls cat echo id stat dd df sleep touch mkdir rm wc head tail sync true \
		false test '[' grep cp mv printf md5sum sha256sum seq env find du chmod chown ln sed \
		awk tr cut sort uniq xargs date hostname ps kill; do
		ln -s busybox "$r/bin/$cmd"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	if ! tar -C "$r" -cf "$t/rootfs.tar" . 2>"$t/tar.err"; then
		_dbi_log "tar of the root file system failed: $(head -n 3 "$t/tar.err")"
		rm -rf "$t"
		return 1
	fi
	rm -rf "$r"
	DBIMAGE_TAR=$t/rootfs.tar
	printf '%s\n' "$DBIMAGE_TAR"
}

dbimage_build() {
	local tar
	[ $# -gt 0 ] || {
		_dbi_log "usage: dbimage_build DOCKER-COMMAND..."
		return 1
	}
	if "$@" image inspect "$DBIMAGE_NAME" >/dev/null 2>&1; then
		return 0
	fi
	# Not in $(...): the tar file's path must stay in this shell.
	_dbi_rootfs >/dev/null || return 1
	tar=$DBIMAGE_TAR
	if ! "$@" import -c 'CMD ["sh"]' -c 'ENV PATH=/usr/bin:/bin' "$tar" "$DBIMAGE_NAME" \
		>/dev/null 2>"$tar.err"; then
		_dbi_log "docker import of $DBIMAGE_NAME failed ($*): $(head -n 3 "$tar.err")"
		return 1
	fi
	return 0
}

dbimage_cleanup() {
	[ -n "$DBIMAGE_TAR" ] && rm -rf "$(dirname "$DBIMAGE_TAR")"
	DBIMAGE_TAR=""
	return 0
}

dbimage_sql() {
	local drv=$1 v=$2 sql=$3
	shift 3
	"$@" run --rm --network none --volume-driver "$drv" -v "$v:/data" "$DBIMAGE_NAME" sqlite3 /data/db "$sql"
}

dbimage_rows() {
	local drv=$1 v=$2
	shift 2
	dbimage_sql "$drv" "$v" "SELECT count(*) || ' ' || min(n) || ' ' || max(n) FROM t; PRAGMA integrity_check;" \
		"$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'
}

dbimage_writer() {
	local drv=$1 v=$2 name=$3
	shift 3
	# shellcheck disable=SC2016 # expanded by the container's shell
	"$@" run -d --name "$name" --network none --volume-driver "$drv" -v "$v:/data" "$DBIMAGE_NAME" sh -c \
		'i=1; while :; do sqlite3 /data/db "PRAGMA synchronous=EXTRA; INSERT INTO t VALUES($i)" || exit 1; echo "ok $i"; i=$((i + 1)); done' >/dev/null
}

dbimage_acked() {
	local name=$1
	shift
	"$@" logs "$name" 2>/dev/null | awk '$1 == "ok" { n = $2 } END { print n + 0 }'
}
