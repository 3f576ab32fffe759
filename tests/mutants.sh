#!/usr/bin/env bash
# tests/mutants.sh - break the code each safety test guards, once, and see
# the test catch it. For each mutant: a copy of the working tree, one
# substitution (perl -0, which must match), a build, the group that must
# catch it. Prints `killed`/`SURVIVED` per mutant and a last line
# `mutants: K killed, S survived, E not applied`; exits non-zero unless
# every mutant was killed. Slow (each group runs whole): `make mutants`,
# not part of make check. MUTANTS="name ..." runs only those; with
# MUTANTS_LOCK=FILE each group runs under `flock FILE` (the builds do not),
# beside other users of the machine's engines. With MUTANTS_APPLY_ONLY=1
# it only checks that every substitution still matches (no build, no run:
# tests/integration/layers.sh does this in make check, so that a mutant
# the code moved away from is seen).
set -uo pipefail

ROOT=${MUTANTS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
WORK=$(mktemp -d /tmp/ballast-mutants.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# name | file | perl substitution | group that must fail
MUTANTS_TABLE=(
	"remove-ignores-mounts|daemon/api.c|s/if \(volume_mount_count\(vol\) > 0\) \{\n\t\tret = api_refuse_in_use/if (0 \&\& volume_mount_count(vol) > 0) {\n\t\tret = api_refuse_in_use/|local_docker"
	"remove-check-skipped|daemon/api.c|s/if \(ops->remove_check\) \{/if (0) {/|handoff"
	"fuse-mapper-no-lock|helpers/rbd_fuse.c|s/ret = rbd_lock_acquire\(m\.img, RBD_LOCK_MODE_EXCLUSIVE\);/ret = 0;/|rbd_docker"
	"gluster-no-fence|backends/gluster_hold.c|s/(int gl_fence_host\([^)]*\)\n\{\n)/\$1\treturn 0;\n/|handoff"
	"leftovers-at-start|backends/rbd_map.c|s/rc->left_started = 1;/rc->left_started = 0;\n\tpthread_join(rc->left_thread, NULL);/|frozen_start"
	"lookup-no-backoff|daemon/api_create.c|s/since >= 0 && since < API_LOOKUP_BACKOFF_MS/0/|frozen_start"
	"gluster-no-stuck-cap|backends/gluster_int.h|s/#define GL_STUCK_MAX 8\b/#define GL_STUCK_MAX 1000/; s/#define GL_WORKERS_MAX 16\b/#define GL_WORKERS_MAX 1000/|gluster_crash"
	"gluster-acts-after-give-up|backends/gluster_engine.c|s/return job && atomic_load\(&job->abandoned\);/return (void)job, 0;/|gluster_crash"
	"gluster-fence-reject-first|backends/gluster_hold.c|s/(\tret = fence_note\(gc, name, h\.addr, [^\n]*\n\tif \(ret < 0\)\n\t\treturn ret;\n)(\tCRASH_POINT\(.gluster\.fence\.after-note.\);\n)(\tret = fence_set\(gc, name, h\.addr, 1, &ferr\);\n.*?ferr\.msg\);\n)/\$3\$2\$1/s|handoff"
	"mapper-notifying-records|helpers/rbd_fuse.c|s/ret = rados_write_op_operate\(op, m\.io, m\.header_oid, NULL, 0\);/ret = val ? rbd_metadata_set(m.img, keys[0], val) : rbd_metadata_remove(m.img, keys[0]);\n\tif (!val \&\& n > 1 \&\& ret == 0)\n\t\tret = rbd_metadata_remove(m.img, keys[1]);/|rbd_docker"
	"rbd-no-fence-chaos|backends/rbd_lease.c|s/int ret = rbd_lock_break\(img, RBD_LOCK_MODE_EXCLUSIVE, owner\);/int ret = ((void)img, 0);/|chaos"
	"gluster-no-fence-chaos|backends/gluster_hold.c|s/(int gl_fence_host\([^)]*\)\n\{\n)/\$1\treturn 0;\n/|chaos"
	"mapper-rbd-cache|helpers/rbd_fuse.c|s/rados_conf_set\(m\.cluster, \"rbd_cache\", \"false\"\)/rados_conf_set(m.cluster, \"rbd_cache\", \"true\")/|rbd_docker"
	"dead-mapper-mount-reused|backends/rbd.c|s/return BE_MOUNT_DEAD;/return 1;/|rbd_docker"
	"orphan-sweep-off|daemon/api_sync.c|s/(void api_sweep_orphans\(struct api \*api\)\n\{\n)/\$1\treturn;\n/|handoff"
	"loop-buffered-io|helpers/mb_fs.c|s/LOOP_SET_DIRECT_IO, 1UL/LOOP_SET_DIRECT_IO, 0UL/|mount_helper"
	"freeze-ignores-stdin|helpers/mb_fs.c|s/\.fd = STDIN_FILENO, \.events = POLLIN/.fd = -1, .events = POLLIN/|rbd_crash"
	"local-create-not-durable|backends/local.c|s/if \(ret == 0 \&\& \(ret = fsync_path\(dir\)\) == 0\)\n\t\tret = group_fsync\(\&lc->rootsync, lc->rootfd\);\n//|power_loss"
	"local-remove-not-durable|backends/local.c|s/return lc \? group_fsync\(\&lc->rootsync, lc->rootfd\) : sync_parent\(path\);/return (void)lc, 0;/|power_loss"
	"record-in-place-unsynced|lib/fsutil.c|s/\telse if \(fdatasync\(fd\) < 0\)\n\t\tret = -errno;\n\tclose\(fd\);/\tclose(fd);/|power_loss"
	"sized-mount-nobarrier|helpers/mb_fs.c|s/rc = do_mount\(source, target, cl->fstype, options\);/rc = do_mount(source, target, cl->fstype, cl->loop ? \"nobarrier\" : options);/|power_loss"
	"local-mount-options-ignored|backends/local.c|s/if \(!mopts\) \/\* no --options \*\/\n/mopts = NULL;\n\t\tif (!mopts)\n/|local_docker"
	"local-mount-options-unchecked|backends/local.c|s/if \(!opt_get\(vol->opts, \"mount-options\"\)\)\n\t\treturn 0;/return 0;/|local_docker"
	"local-mkfs-options-ignored|backends/local.c|s/user \? user : \"\"\);/user ? \"\" : \"\");/|power_loss"
	"sized-image-sparse|backends/local.c|s/if \(fallocate\(fd, 0, 0, \(off_t\)bytes\) == 0\)/if (ftruncate(fd, (off_t)bytes) == 0)/|local_resize"
)

killed=0 survived=0 unapplied=0
for m in "${MUTANTS_TABLE[@]}"; do
	IFS='|' read -r name file subst group <<<"$m"
	if [ -n "${MUTANTS:-}" ] && [[ " $MUTANTS " != *" $name "* ]]; then
		continue
	fi
	if [ -n "${MUTANTS_APPLY_ONLY:-}" ]; then
		rm -f "$WORK/one"
		cp "$ROOT/$file" "$WORK/one" 2>/dev/null && perl -0pi -e "$subst" "$WORK/one"
		if [ ! -f "$WORK/one" ] || cmp -s "$ROOT/$file" "$WORK/one"; then
			echo "NOT APPLIED - $name: the substitution does not match $file (or it is gone)"
			unapplied=$((unapplied + 1))
		else
			echo "applies - $name"
		fi
		continue
	fi
	dir=$WORK/$name
	mkdir -p "$dir"
	(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$dir")
	before=$(sha1sum "$dir/$file" | cut -d' ' -f1)
	perl -0pi -e "$subst" "$dir/$file"
	if [ "$before" = "$(sha1sum "$dir/$file" | cut -d' ' -f1)" ]; then
		echo "NOT APPLIED - $name: the substitution does not match $file"
		unapplied=$((unapplied + 1))
		continue
	fi
	if ! make -s -C "$dir" BUILD="$dir/build" all unit >"$dir/build.log" 2>&1; then
		echo "NOT APPLIED - $name: the mutant does not build ($(tail -n 1 "$dir/build.log"))"
		unapplied=$((unapplied + 1))
		continue
	fi
	echo "# $name: running $group"
	lock=()
	[ -n "${MUTANTS_LOCK:-}" ] && lock=(flock "$MUTANTS_LOCK")
	if (cd "$dir" && BUILD="$dir/build" "${lock[@]}" bash tests/run-all.sh "$group") >"$dir/run.log" 2>&1; then
		echo "SURVIVED - $name: $group passed with $file broken"
		survived=$((survived + 1))
	else
		echo "killed - $name: $group failed ($(grep -m 3 '^not ok' "$dir/run.log" | tr '\n' ';'))"
		killed=$((killed + 1))
	fi
done
echo "mutants: $killed killed, $survived survived, $unapplied not applied"
[ "$survived" -eq 0 ] && [ "$unapplied" -eq 0 ]
