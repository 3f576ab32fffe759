# shellcheck shell=bash
# tests/lib/pgimage.sh - a PostgreSQL server image for tests that cannot pull
# one: local/ballast-postgres, Debian's PostgreSQL 15 (with its libraries) and
# a static busybox, imported from a root file system made here.
#
#   pgimage_deps           install postgresql-15, postgresql-client-15 and
#                          busybox-static when missing (dbimage_apt: quiet,
#                          bounded, apt-get update and a retry on failure).
#                          Before the server package comes in it makes sure
#                          Debian neither creates nor starts a "main" cluster
#                          on this machine: create_main_cluster = false in
#                          /etc/postgresql-common/createcluster.conf (other
#                          lines kept), and a /usr/sbin/policy-rc.d that
#                          exits 101 for the time of the install (an existing
#                          one that already says 101 is used as it is; one
#                          that does not is put back afterwards). A cluster
#                          an earlier install made is left alone.
#   pgimage_build CLI...   import the image into the dockerd that the command
#                          CLI talks to (`pgimage_build dka`, `pgimage_build
#                          docker -H unix:///x.sock`); nothing when it has
#                          it already. The root file system is made once per
#                          script and kept for the next dockerd until
#                          pgimage_cleanup. CLI must bound itself (dk does).
#   pgimage_cleanup        remove that root file system (safe twice)
#
# The image (~90 MB): /bin/busybox with sh, su, sleep, ... linked to it;
# /usr/lib/postgresql/15/bin (postgres, initdb, pg_ctl, pg_controldata,
# pg_checksums, psql, ...), /usr/lib/postgresql/15/lib (extensions: amcheck,
# pageinspect, ...; not the LLVM JIT, so the server runs with jit=off),
# /usr/share/postgresql/15, /usr/share/zoneinfo and every library ldd names
# for them, all at their own paths; /etc/passwd and /etc/group with postgres
# (uid/gid 999, home /var/lib/postgresql); /tmp (1777); /run/pg. CMD is
# /usr/local/bin/pg-entry, PATH has the server's bin.
#
# Run it with the volume at /data and a host directory for the socket:
#   docker run -d --network none --stop-signal SIGINT \
#       -v VOL:/data -v HOSTSOCKDIR:/run/pg local/ballast-postgres
# and connect from outside the container through the socket
# HOSTSOCKDIR/.s.PGSQL.5432 (user postgres, trust, no password):
#   pg_isready -h HOSTSOCKDIR
#   psql -h HOSTSOCKDIR -U postgres -d postgres -c 'select 1'
# --stop-signal SIGINT: `docker stop` then asks for PostgreSQL's fast
# shutdown (clients cut off, checkpoint, "database system is shut down").
# The image cannot say so itself: docker import (dockerd 20.10) refuses
# STOPSIGNAL. Without it, docker stop's SIGTERM is a smart shutdown, clean
# only when no client is connected; else docker kills postgres after the
# stop timeout and the next start recovers from the WAL.
#
# pg-entry: PGDATA is /data/pg (mode 0700, owned by postgres). When it has
# no PG_VERSION, `initdb -U postgres --auth=trust --no-locale -E UTF8
# --data-checksums` (synced, as initdb does by default) makes it under
# /data/pg.initdb, which is then renamed to /data/pg and synced: /data/pg
# is never half made (a leftover /data/pg.initdb is removed; a /data/pg
# without PG_VERSION that is not empty is an error). /run/pg is given to
# postgres (or made 0777 when chown fails). Then postgres replaces the
# script as PID 1 with listen_addresses empty, unix_socket_directories
# /run/pg, fsync, synchronous_commit and full_page_writes on,
# max_connections 20, shared_buffers 16MB, jit off, timezone and
# log_timezone UTC, then $PGOPTS (`-e PGOPTS='-c KEY=VALUE ...'`); its log
# goes to `docker logs`. Any failing step prints
# one "pg-entry: ..." line and exits 1.
# PGIMAGE_NAME overrides the image name.

# shellcheck disable=SC2015 # `a && b || fail`: fail on any step
PGIMAGE_NAME=${PGIMAGE_NAME:-local/ballast-postgres}
PGIMAGE_TAR=""
PGIMAGE_PGVER=15
# The files pgimage_deps changes (variables only so that it can be tried
# on copies).
PGIMAGE_CCCONF=${PGIMAGE_CCCONF:-/etc/postgresql-common/createcluster.conf}
PGIMAGE_POLICYRC=${PGIMAGE_POLICYRC:-/usr/sbin/policy-rc.d}

# shellcheck source-path=SCRIPTDIR source=dbimage.sh
declare -F dbimage_apt >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/dbimage.sh"

_pgi_log() { printf '# pgimage.sh: %s\n' "$*" >&2; }

_pgi_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# _pgi_no_main_cluster: create_main_cluster = false in createcluster.conf,
# keeping whatever else the file says.
_pgi_no_main_cluster() {
	local f=$PGIMAGE_CCCONF
	mkdir -p "$(dirname "$f")" || return 1
	if [ -f "$f" ] && grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=' "$f"; then
		sed -i -E 's/^[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$f"
	else
		printf 'create_main_cluster = false\n' >>"$f"
	fi
}

# _pgi_policy_on: a policy-rc.d that exits 101 (no service starts). Prints
# what _pgi_policy_off must undo: "keep", "remove" or the saved file.
_pgi_policy_on() {
	local p=$PGIMAGE_POLICYRC rc=0 saved
	if [ -e "$p" ] || [ -L "$p" ]; then
		"$p" postgresql start >/dev/null 2>&1 </dev/null || rc=$?
		if [ "$rc" -eq 101 ]; then
			printf 'keep\n'
			return 0
		fi
		saved=$p.ballast-saved.$$
		mv "$p" "$saved" || return 1
	else
		saved=remove
	fi
	mkdir -p "$(dirname "$p")" &&
		printf '#!/bin/sh\n# tests/lib/pgimage.sh: no services start during its apt-get\nexit 101\n' >"$p" &&
		chmod 0755 "$p" || {
		rm -f "$p"
		[ "$saved" = remove ] || mv "$saved" "$p"
		return 1
	}
	printf '%s\n' "$saved"
}

_pgi_policy_off() {
	local p=$PGIMAGE_POLICYRC undo=$1
	case $undo in
	keep) ;;
	remove) rm -f "$p" ;;
	*) mv -f "$undo" "$p" ;;
	esac
}

pgimage_deps() {
	local v=$PGIMAGE_PGVER undo rc=0
	if _pgi_installed "postgresql-$v"; then
		dbimage_apt "postgresql-client-$v" busybox-static
		return
	fi
	if ! _pgi_no_main_cluster; then
		_pgi_log "cannot write create_main_cluster = false into $PGIMAGE_CCCONF"
		return 1
	fi
	undo=$(_pgi_policy_on) || {
		_pgi_log "cannot install a policy-rc.d at $PGIMAGE_POLICYRC"
		return 1
	}
	# postgresql-common keeps createcluster.conf with ucf: keep ours.
	UCF_FORCE_CONFFOLD=1 dbimage_apt "postgresql-$v" "postgresql-client-$v" busybox-static || rc=1
	_pgi_policy_off "$undo" || {
		_pgi_log "cannot restore $PGIMAGE_POLICYRC (undo: $undo)"
		rc=1
	}
	return $rc
}

# _pgi_entry: the image's /usr/local/bin/pg-entry (busybox sh).
_pgi_entry() {
	cat <<-'EOF'
		#!/bin/sh
		# pg-entry (tests/lib/pgimage.sh): make /data/pg once, run postgres
		# as PID 1. Every failing step: one line on stderr, exit 1.
		BIN=/usr/lib/postgresql/15/bin
		PGDATA=/data/pg
		NEW=/data/pg.initdb
		die() {
			echo "pg-entry: $*" >&2
			exit 1
		}
		[ -d /data ] || die "/data is missing (mount the volume there)"
		mkdir -p /run/pg || die "cannot create /run/pg"
		if chown postgres:postgres /run/pg 2>/dev/null; then
			chmod 0755 /run/pg || die "cannot chmod /run/pg"
		else
			chmod 0777 /run/pg || die "cannot chown or chmod /run/pg"
		fi
		if [ ! -s "$PGDATA/PG_VERSION" ]; then
			if [ -d "$PGDATA" ]; then
				rmdir "$PGDATA" 2>/dev/null ||
					die "$PGDATA has no PG_VERSION but is not empty: not a data directory"
			fi
			rm -rf "$NEW" || die "cannot remove a leftover $NEW"
			mkdir -p "$NEW" && chown postgres:postgres "$NEW" && chmod 0700 "$NEW" ||
				die "cannot create $NEW for initdb"
			su postgres -s /bin/sh -c "TZ=UTC exec $BIN/initdb -D $NEW -U postgres \
				--auth=trust --no-locale -E UTF8 --data-checksums" >/tmp/initdb.log 2>&1 || {
				cat /tmp/initdb.log >&2
				die "initdb -D $NEW failed"
			}
			mv "$NEW" "$PGDATA" || die "cannot rename $NEW to $PGDATA"
			sync -f /data || die "cannot sync /data"
			echo "pg-entry: initdb made $PGDATA"
		fi
		chown postgres:postgres "$PGDATA" && chmod 0700 "$PGDATA" ||
			die "cannot give $PGDATA to postgres (mode 0700)"
		exec su postgres -s /bin/sh -c "exec $BIN/postgres -D $PGDATA \
			-c listen_addresses= -c unix_socket_directories=/run/pg \
			-c fsync=on -c synchronous_commit=on -c full_page_writes=on \
			-c max_connections=20 -c shared_buffers=16MB -c jit=off \
			-c timezone=UTC -c log_timezone=UTC ${PGOPTS:-}"
		die "cannot exec su postgres"
	EOF
}

# _pgi_copy ROOT PATH...: copy each PATH (a file: dereferenced) to the same
# path under ROOT.
_pgi_copy() {
	local r=$1 f
	shift
	for f in "$@"; do
		mkdir -p "$r$(dirname "$f")" && cp -L "$f" "$r$f" || {
			_pgi_log "cannot copy $f"
			return 1
		}
	done
}

# _pgi_rootfs: make the image's tar file once (path in PGIMAGE_TAR).
_pgi_rootfs() {
	local t r bb lib cmd f v=$PGIMAGE_PGVER pgbin pglib pgshare libs
	if [ -n "$PGIMAGE_TAR" ] && [ -s "$PGIMAGE_TAR" ]; then
		return 0
	fi
	pgimage_deps || return 1
	pgbin=/usr/lib/postgresql/$v/bin
	pglib=/usr/lib/postgresql/$v/lib
	pgshare=/usr/share/postgresql/$v
	bb=/bin/busybox
	for f in "$bb" "$pgbin/postgres" "$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/pg_controldata" \
		"$pgbin/pg_checksums" "$pglib/amcheck.so" "$pgshare/postgres.bki" /usr/share/zoneinfo/UTC; do
		[ -e "$f" ] || {
			_pgi_log "$f not found after pgimage_deps"
			return 1
		}
	done
	if ldd "$bb" >/dev/null 2>&1; then
		_pgi_log "$bb is not static (install busybox-static)"
		return 1
	fi
	t=$(mktemp -d "${TMPDIR:-/tmp}/pgimage.XXXXXX") || return 1
	r=$t/root
	mkdir -p "$r/bin" "$r/tmp" "$r/etc" "$r/data" "$r/run/pg" "$r/var/lib/postgresql" \
		"$r/usr/local/bin" "$r/usr/lib/postgresql/$v" "$r/usr/share/postgresql" || {
		rm -rf "$t"
		return 1
	}
	chmod 0755 "$r" && chmod 1777 "$r/tmp" && ln -s ../run "$r/var/run" || {
		rm -rf "$t"
		return 1
	}
	# The server's directories as they are (symlinks kept); the extensions
	# without the LLVM JIT (libLLVM alone is ~100 MB) and pgxs.
	if ! cp -a "$pgbin" "$r$pgbin" || ! cp -a "$pgshare" "$r$pgshare" ||
		! mkdir -p "$r/usr/share" || ! cp -a /usr/share/zoneinfo "$r/usr/share/zoneinfo" ||
		! mkdir -p "$r$pglib" ||
		! (cd "$pglib" && find . -mindepth 1 -maxdepth 1 ! -name 'llvmjit*' ! -name bitcode \
			! -name pgxs -exec cp -a {} "$r$pglib/" \;); then
		_pgi_log "cannot copy the PostgreSQL $v files"
		rm -rf "$t"
		return 1
	fi
	# Every absolute path ldd prints for the programs and the extensions
	# (libraries and the loader), at the same path inside the image.
	libs=$(for f in "$r$pgbin"/* "$r$pglib"/*.so; do
		[ -f "$f" ] && [ ! -L "$f" ] && ldd "$f" 2>/dev/null | grep -o '/[^ ]*'
	done | sort -u)
	for lib in $libs; do
		[ -e "$lib" ] || continue
		_pgi_copy "$r" "$lib" || {
			rm -rf "$t"
			return 1
		}
	done
	cp "$bb" "$r/bin/busybox" || {
		rm -rf "$t"
		return 1
	}
	for cmd in sh su sleep cat ls mkdir chown chmod rm rmdir mv cp ln test '[' id kill ps \
		echo printf env sync true false grep sed awk head tail wc stat touch df du find \
		date hostname tr cut sort uniq xargs md5sum sha256sum seq dd; do
		ln -s busybox "$r/bin/$cmd"
	done
	_pgi_entry >"$r/usr/local/bin/pg-entry" && chmod 0755 "$r/usr/local/bin/pg-entry" &&
		printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
			'postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh' \
			'nobody:x:65534:65534:nobody:/:/bin/false' >"$r/etc/passwd" &&
		printf '%s\n' 'root:x:0:' 'postgres:x:999:' 'nogroup:x:65534:' >"$r/etc/group" &&
		printf '%s\n' 'passwd: files' 'group: files' 'hosts: files' >"$r/etc/nsswitch.conf" &&
		printf '%s\n' /bin/sh >"$r/etc/shells" &&
		chown 999:999 "$r/var/lib/postgresql" "$r/run/pg" || {
		_pgi_log "cannot write the image's /etc and pg-entry"
		rm -rf "$t"
		return 1
	}
	if ! tar -C "$r" --numeric-owner -cf "$t/rootfs.tar" . 2>"$t/tar.err"; then
		_pgi_log "tar of the root file system failed: $(head -n 3 "$t/tar.err")"
		rm -rf "$t"
		return 1
	fi
	rm -rf "$r"
	PGIMAGE_TAR=$t/rootfs.tar
}

pgimage_build() {
	local tar v=$PGIMAGE_PGVER
	[ $# -gt 0 ] || {
		_pgi_log "usage: pgimage_build DOCKER-COMMAND..."
		return 1
	}
	if "$@" image inspect "$PGIMAGE_NAME" >/dev/null 2>&1; then
		return 0
	fi
	# Not in $(...): the tar file's path must stay in this shell.
	_pgi_rootfs || return 1
	tar=$PGIMAGE_TAR
	if ! "$@" import -c 'CMD ["/usr/local/bin/pg-entry"]' \
		-c "ENV PATH=/usr/lib/postgresql/$v/bin:/usr/local/bin:/usr/bin:/bin" \
		"$tar" "$PGIMAGE_NAME" >/dev/null 2>"$tar.err"; then
		_pgi_log "docker import of $PGIMAGE_NAME failed ($*): $(head -n 3 "$tar.err")"
		return 1
	fi
	return 0
}

pgimage_cleanup() {
	[ -n "$PGIMAGE_TAR" ] && rm -rf "$(dirname "$PGIMAGE_TAR")"
	PGIMAGE_TAR=""
	return 0
}
