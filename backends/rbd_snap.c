/*
 * rbd_snap.c - snapshots of rbd volumes (`ballast snapshot`): RBD
 * snapshots, taken while the volume's file system is frozen when it is
 * mounted on this host; and clones of them (-o from=VOLUME@SNAPSHOT).
 */
#define LOG_TAG "rbd"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crashpoint.h"
#include "fsutil.h"
#include "log.h"
#include "rbd_int.h"
#include "timeutil.h"

/* The longest a volume's file system stays frozen for a snapshot: an RBD
 * snapshot takes well under a second; past this the writers have waited
 * too long, the file system is thawed and the snapshot dropped. */
#define RBD_FREEZE_MAX_S 20

/* Open vol's image, once: a volume another host holds is refused, naming
 * the holder, unless held_ok. */
static int snap_open(struct rbd_ctx *rc, const struct be_volume *vol, int held_ok, rados_ioctx_t *io, rbd_image_t *img,
		     struct berr *err)
{
	const char *pool = rbd_vol_pool(rc, vol->opts);
	struct rbd_meta m;
	int ret;

	*img = NULL;
	ret = rbd_ioctx_open(rc, pool, io, err);
	if (ret < 0)
		return ret;
	/* one open: the metadata read on it (as rbd_meta_read does) */
	ret = rbd_open(*io, vol->name, img, NULL);
	if (ret == -ENOENT)
		ret = berr_set(err, -ENOENT, "volume %s: image %s/%s does not exist", vol->name, pool, vol->name);
	else if (ret < 0)
		berr_set(err, ret, "cannot open image %s/%s: %s", pool, vol->name, strerror(-ret));
	if (ret == 0)
		ret = rbd_meta_read_img(*img, pool, vol->name, &m, err);
	if (ret == 0) {
		if (m.locked && !held_ok)
			ret = rbd_in_use(vol->name, m.holder, m.lease, m.owners, err);
		rbd_meta_free(&m);
	}
	if (ret < 0) {
		if (*img)
			rbd_close(*img);
		*img = NULL;
		rados_ioctx_destroy(*io);
		*io = NULL;
	}
	return ret;
}

static void snap_close(rados_ioctx_t io, rbd_image_t img)
{
	if (img)
		rbd_close(img);
	rados_ioctx_destroy(io);
}

static int no_progress(uint64_t done, uint64_t total, void *arg)
{
	(void)done;
	(void)total;
	(void)arg;
	return 0;
}

/* The clones of img at the snapshot it is set to (all its snapshots' at
 * the head), as "a, b" into names (cut short when long): their number, or
 * -errno. */
static int clones_of(rbd_image_t img, char *names, size_t len)
{
	rbd_linked_image_spec_t *kids = NULL;
	size_t max = 8, at = 0;
	int ret;

	names[0] = '\0';
	for (;;) {
		free(kids);
		kids = calloc(max, sizeof(*kids));
		if (!kids)
			return -ENOMEM;
		ret = rbd_list_children3(img, kids, &max);
		if (ret != -ERANGE)
			break;
	}
	if (ret < 0) {
		free(kids);
		return ret;
	}
	for (size_t i = 0; i < max; i++) {
		int n = snprintf(names + at, len - at, "%s%s", i ? ", " : "", kids[i].image_name);

		if (n > 0 && (size_t)n < len - at)
			at += (size_t)n;
	}
	rbd_linked_image_spec_list_cleanup(kids, max);
	free(kids);
	return (int)max;
}

/* The clones of img's snapshot snap (see clones_of); img is back at its
 * head after. */
static int clones_of_snap(rbd_image_t img, const char *snap, char *names, size_t len)
{
	int ret = rbd_snap_set(img, snap);

	if (ret == 0) {
		ret = clones_of(img, names, len);
		rbd_snap_set(img, NULL);
	}
	return ret;
}

int be_rbd_snapshot(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	char target[4096];
	struct frozen fz;
	rados_ioctx_t io;
	rbd_image_t img;
	int ret, frozen = 0, mapped;

	/* held by this host (mapped here) is fine: its file system is frozen */
	mapped = rbd_mapped(rc, vol->name);
	ret = snap_open(rc, vol, mapped, &io, &img, err);
	if (ret < 0)
		return ret;
	rbd_mount_target(rc, vol->name, target, sizeof(target));
	if (mapped && is_mountpoint(target) == 1) {
		ret = helper_freeze(&rc->helper, target, RBD_FREEZE_MAX_S, &fz, err);
		if (ret < 0)
			goto out;
		frozen = 1;
	}
	CRASH_POINT("rbd.snapshot.after-freeze");
	/* No quiesce notification: the freeze is ours. librbd's would wait
	 * for every watcher's answer, and a dead client's watch (a killed
	 * ballastd's, kept ~30 s) made it take 26 s, past the freeze's bound;
	 * skipped, 0.13 s. */
	ret = rbd_snap_create2(img, snap, RBD_SNAP_CREATE_SKIP_QUIESCE, no_progress, NULL);
	if (ret == -EEXIST)
		berr_set(err, ret, "volume %s already has a snapshot %s", vol->name, snap);
	else if (ret < 0)
		berr_set(err, ret, "cannot snapshot image %s: %s", vol->name, strerror(-ret));
	if (frozen) {
		struct berr terr = BERR_INIT;
		int tret = helper_thaw(&rc->helper, &fz, &terr);

		if (tret < 0 && ret == 0) {
			/* the freeze ended before the snapshot was taken:
			 * not consistent; dropped */
			rbd_snap_remove(img, snap);
			ret = berr_set(err, tret, "snapshot %s of %s dropped: %s", snap, vol->name, terr.msg);
		}
	}
	if (ret == 0)
		log_infox("volume %s: snapshot %s taken%s", vol->name, snap, frozen ? " (file system frozen)" : "");
out:
	snap_close(io, img);
	return ret;
}

/* "a, b" as ["a", "b"] (names have no commas). */
static json_t *names_array(const char *names)
{
	json_t *a = json_array();
	char *copy = strdup(names), *save = NULL;

	for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t; t = strtok_r(NULL, ", ", &save))
		json_array_append_new(a, json_string(t));
	free(copy);
	return a;
}

/* The snapshots of vol's open image img, as be_rbd_snapshots gives them. */
static int list_snaps(rbd_image_t img, const struct be_volume *vol, json_t **out, struct berr *err)
{
	rbd_snap_info_t *snaps = NULL;
	int max = 16, n = 0, ret = 0;

	*out = NULL;
	for (;;) {
		free(snaps);
		snaps = calloc((size_t)max, sizeof(*snaps));
		if (!snaps)
			return berr_set(err, -ENOMEM, "out of memory");
		n = rbd_snap_list(img, snaps, &max);
		if (n != -ERANGE)
			break;
	}
	if (n < 0) {
		free(snaps);
		return berr_set(err, n, "cannot list the snapshots of %s: %s", vol->name, strerror(-n));
	}
	*out = json_array();
	for (int i = 0; i < n && *out; i++) {
		struct timespec ts = { 0 };
		char when[40] = "", kids[512] = "";

		if (rbd_snap_get_timestamp(img, snaps[i].id, &ts) == 0)
			rfc3339_format(ts.tv_sec, when, sizeof(when));
		clones_of_snap(img, snaps[i].name, kids, sizeof(kids));
		json_array_append_new(*out, json_pack("{s:s, s:I, s:s, s:o}", "name", snaps[i].name, "size_bytes",
						      (json_int_t)snaps[i].size, "created_at", when, "clones",
						      names_array(kids)));
	}
	rbd_snap_list_end(snaps);
	free(snaps);
	if (!*out)
		ret = berr_set(err, -ENOMEM, "out of memory");
	return ret;
}

int be_rbd_snapshots(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err)
{
	rados_ioctx_t io;
	rbd_image_t img;
	int ret;

	*out = NULL;
	ret = snap_open(ctx, vol, 1, &io, &img, err);
	if (ret < 0)
		return ret;
	ret = list_snaps(img, vol, out, err);
	snap_close(io, img);
	return ret;
}

int be_rbd_snapshot_remove(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	rados_ioctx_t io;
	rbd_image_t img;
	int ret;

	char kids[512];
	int prot = 0;

	ret = snap_open(rc, vol, 1, &io, &img, err);
	if (ret < 0)
		return ret;
	ret = clones_of_snap(img, snap, kids, sizeof(kids));
	if (ret > 0) {
		ret = berr_set(err, -EBUSY,
			       "snapshot %s of %s has clones (%s); remove them first, or detach them with rbd flatten",
			       snap, vol->name, kids);
		goto out;
	}
	/* protected for clones that are gone now */
	if (ret == 0)
		ret = rbd_snap_is_protected(img, snap, &prot);
	if (ret == 0 && prot)
		ret = rbd_snap_unprotect(img, snap);
	if (ret == 0)
		ret = rbd_snap_remove(img, snap);
	if (ret == -ENOENT)
		berr_set(err, ret, "volume %s has no snapshot %s", vol->name, snap);
	else if (ret == -EBUSY)
		berr_set(err, ret, "snapshot %s of %s is protected or has clones", snap, vol->name);
	else if (ret < 0)
		berr_set(err, ret, "cannot remove snapshot %s of %s: %s", snap, vol->name, strerror(-ret));
	else
		log_infox("volume %s: snapshot %s removed", vol->name, snap);
out:
	snap_close(io, img);
	return ret;
}

int be_rbd_rollback(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	rados_ioctx_t io;
	rbd_image_t img;
	int ret;

	/* mounted nowhere: no holder (this host's mapping included) */
	ret = snap_open(rc, vol, 0, &io, &img, err);
	if (ret < 0)
		return ret;
	if (rbd_mapped(rc, vol->name)) {
		ret = berr_set(err, -EBUSY, "volume %s is still mapped on this host; unmount it first", vol->name);
		goto out;
	}
	ret = rbd_snap_rollback(img, snap);
	if (ret == -ENOENT)
		berr_set(err, ret, "volume %s has no snapshot %s", vol->name, snap);
	else if (ret < 0)
		berr_set(err, ret, "cannot roll %s back to %s: %s", vol->name, snap, strerror(-ret));
	else
		log_infox("volume %s: rolled back to snapshot %s", vol->name, snap);
out:
	snap_close(io, img);
	return ret;
}

/* A Remove of vol refused while its image has clones or snapshots (the
 * clones named first: their snapshots cannot go before them). One open of
 * the image. */
int rbd_snap_refuse_remove(struct rbd_ctx *rc, const struct be_volume *vol, struct berr *err)
{
	struct berr lerr = BERR_INIT;
	json_t *snaps = NULL;
	rados_ioctx_t io;
	rbd_image_t img;
	char kids[512];
	int ret;

	ret = snap_open(rc, vol, 1, &io, &img, &lerr);
	if (ret == -ENOENT)
		return 0; /* no image: nothing to keep */
	if (ret < 0)
		return berr_set(err, ret, "%s", lerr.msg);
	ret = clones_of(img, kids, sizeof(kids));
	if (ret > 0)
		ret = berr_set(err, -EBUSY,
			       "volume %s has clones (%s); remove them first, or detach them with rbd flatten",
			       vol->name, kids);
	else if (ret < 0)
		ret = berr_set(err, ret, "cannot list the clones of %s: %s", vol->name, strerror(-ret));
	if (ret == 0)
		ret = list_snaps(img, vol, &snaps, err);
	if (ret == 0)
		ret = refuse_snapshots(vol->name, snaps, err);
	json_decref(snaps);
	snap_close(io, img);
	return ret;
}

/* --- clones ---------------------------------------------------------------- */

int rbd_clone_parent(rados_ioctx_t io, const char *pool, const struct be_volume *vol, char *fstype, size_t len,
		     struct berr *err)
{
	char pvol[VOLUME_NAME_MAX + 1], snap[VOLUME_NAME_MAX + 1];
	rbd_image_t img = NULL;
	struct rbd_meta m;
	int ret, prot = 0;

	ret = rbd_clone_source(vol->opts, pvol, snap, err);
	if (ret <= 0)
		return ret;
	ret = rbd_meta_read(io, pool, pvol, &m, err);
	if (ret == -ENOENT)
		return berr_set(err, -ENOENT,
				"cannot clone %s: no volume %s in pool %s (a clone is made in its parent's pool)",
				vol->name, pvol, pool);
	if (ret < 0)
		return ret;
	if (!rbd_meta_finished(&m))
		ret = berr_set(err, -EINVAL, "cannot clone %s: %s/%s is not a finished ballast volume", vol->name, pool,
			       pvol);
	else if (strcmp(m.fstype, "xfs") == 0)
		/* its copy would share the parent's file system UUID, which
		 * XFS refuses to mount twice on one host */
		ret = berr_set(err, -ENOTSUP, "cannot clone %s: volume %s is xfs; clones are made of ext4 volumes only",
			       vol->name, pvol);
	snprintf(fstype, len, "%s", m.fstype);
	rbd_meta_free(&m);
	if (ret == 0)
		ret = rbd_open(io, pvol, &img, NULL);
	if (ret == 0)
		ret = rbd_snap_is_protected(img, snap, &prot);
	if (ret == 0 && !prot)
		ret = rbd_snap_protect(img, snap);
	if (ret == -ENOENT)
		berr_set(err, ret, "cannot clone %s: volume %s has no snapshot %s", vol->name, pvol, snap);
	else if (ret < 0 && !err->msg[0])
		berr_set(err, ret, "cannot clone %s from %s@%s: %s", vol->name, pvol, snap, strerror(-ret));
	if (img)
		rbd_close(img);
	return ret;
}

/* The longest flatten=true may copy a clone's data from its parent, well
 * within dockerd's 2 minutes for a Create. */
#define RBD_FLATTEN_MAX_S 60

static int flatten_progress(uint64_t done, uint64_t total, void *arg)
{
	(void)done;
	(void)total;
	/* librbd stops issuing copies when this is negative */
	return monotonic_ms() > *(long *)arg ? -ETIMEDOUT : 0;
}

int rbd_clone_flatten(rados_ioctx_t io, const char *pool, const struct be_volume *vol, struct berr *err)
{
	long deadline = monotonic_ms() + RBD_FLATTEN_MAX_S * 1000L;
	rbd_image_t img = NULL;
	int ret;

	ret = rbd_open(io, vol->name, &img, NULL);
	if (ret == 0) {
		ret = rbd_flatten_with_progress(img, flatten_progress, &deadline);
		rbd_close(img);
	}
	if (ret == -ETIMEDOUT)
		return berr_set(err, ret, "flattening clone %s took longer than %d s; create it without flatten=true",
				vol->name, RBD_FLATTEN_MAX_S);
	if (ret < 0)
		return berr_set(err, ret, "cannot flatten clone %s/%s: %s", pool, vol->name, strerror(-ret));
	log_infox("volume %s: flattened (no longer depends on %s)", vol->name, opt_get(vol->opts, "from"));
	return 0;
}
