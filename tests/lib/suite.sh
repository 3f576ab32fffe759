# shellcheck shell=bash
# tests/lib/suite.sh - the set-up and clean-up shared by the suites that
# drive ballastd through the real dockerd (source tap.sh, dockerd.sh and
# ballastd.sh first).
#
#   suite_preflight PLUGIN TOOL...   root, the tools, no other ballast
#                          socket where dockerd looks first, the binaries
#   suite_dir PREFIX       make $T (/tmp/PREFIX.*) and $BD ($T/b), and clean
#                          up at exit: ballastd, dockerd, loop devices and
#                          mounts under $T; $T is kept (with the ballastd
#                          log's tail) when something failed

suite_preflight() {
	local plugin=$1 c s b
	shift
	[ "$(id -u)" -eq 0 ] || t_die "must run as root"
	for c in "$@"; do
		command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
	done
	# dockerd looks for these before any spec file: one would divert our
	# requests to another ballastd (e.g. a `make run` in progress).
	for s in "/run/docker/plugins/$plugin.sock" "/run/docker/plugins/$plugin/$plugin.sock"; do
		[ -e "$s" ] && t_die "$s exists: dockerd would use it instead of our spec file; stop that ballastd or remove the stale socket"
	done
	for b in ballastd ballast mount.ballast; do
		[ -x "$BALLAST_BUILD/$b" ] || t_die "$BALLAST_BUILD/$b missing: run make"
	done
}

_suite_cleanup() {
	local lp
	ballastd_kill9
	dockerd_cleanup
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$T" 'index($2, d) == 1 { print $1 }' |
		while IFS= read -r lp; do losetup -d "$lp" 2>/dev/null || true; done
	_dk_force_clean "$T"
	if [ "$TAP_FAIL" -eq 0 ] && [ -z "$(dockerd_leftovers "$T")" ]; then
		rm -rf "$T"
	else
		printf '# test directory kept: %s (ballastd log: %s/ballastd.log)\n' "$T" "$BD"
		if [ -f "$BD/ballastd.log" ]; then
			printf '# last lines of the ballastd log:\n'
			ballastd_log_tail 60
		fi
	fi
}

suite_dir() {
	T=$(mktemp -d "/tmp/$1.XXXXXX")
	BD=$T/b
	t_at_exit _suite_cleanup
	dockerd_trap
}
