/*
 * rbd_snap.c - snapshots of rbd volumes (`ballast snapshot`): RBD
 * snapshots, taken while the volume's file system is frozen when it is
 * mounted on this host.
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

/* Open vol's image (its metadata read into m): a volume another host holds
 * is refused, naming the holder, unless held_ok. */
static int snap_open(struct rbd_ctx *rc, const struct be_volume *vol, int held_ok, rados_ioctx_t *io, rbd_image_t *img,
		     struct berr *err)
{
	const char *pool = rbd_vol_pool(rc, vol->opts);
	struct rbd_meta m;
	int ret;

	*img = NULL;
	ret = rbd_volume_open(rc, vol, io, &m, err);
	if (ret < 0)
		return ret;
	if (m.locked && !held_ok)
		ret = rbd_in_use(vol->name, m.holder, m.lease, m.owners, err);
	rbd_meta_free(&m);
	if (ret == 0) {
		ret = rbd_open(*io, vol->name, img, NULL);
		if (ret < 0)
			berr_set(err, ret, "cannot open image %s/%s: %s", pool, vol->name, strerror(-ret));
	}
	if (ret < 0) {
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

int be_rbd_snapshot(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	char target[4096];
	struct frozen fz;
	rados_ioctx_t io;
	rbd_image_t img;
	int ret, frozen = 0;

	/* held by this host (mapped here) is fine: its file system is frozen */
	ret = snap_open(rc, vol, rbd_mapped(rc, vol->name), &io, &img, err);
	if (ret < 0)
		return ret;
	rbd_mount_target(rc, vol->name, target, sizeof(target));
	if (rbd_mapped(rc, vol->name) && is_mountpoint(target) == 1) {
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

int be_rbd_snapshots(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	rbd_snap_info_t *snaps = NULL;
	int max = 16, n = 0, ret;
	rados_ioctx_t io;
	rbd_image_t img;

	*out = NULL;
	ret = snap_open(rc, vol, 1, &io, &img, err);
	if (ret < 0)
		return ret;
	for (;;) {
		free(snaps);
		snaps = calloc((size_t)max, sizeof(*snaps));
		if (!snaps) {
			ret = berr_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		n = rbd_snap_list(img, snaps, &max);
		if (n != -ERANGE)
			break;
	}
	if (n < 0) {
		ret = berr_set(err, n, "cannot list the snapshots of %s: %s", vol->name, strerror(-n));
		goto out;
	}
	*out = json_array();
	for (int i = 0; i < n && *out; i++) {
		struct timespec ts = { 0 };
		char when[40] = "";

		if (rbd_snap_get_timestamp(img, snaps[i].id, &ts) == 0)
			rfc3339_format(ts.tv_sec, when, sizeof(when));
		json_array_append_new(*out, json_pack("{s:s, s:I, s:s}", "name", snaps[i].name, "size_bytes",
						      (json_int_t)snaps[i].size, "created_at", when));
	}
	rbd_snap_list_end(snaps);
	if (!*out)
		ret = berr_set(err, -ENOMEM, "out of memory");
out:
	free(snaps);
	snap_close(io, img);
	return ret;
}

int be_rbd_snapshot_remove(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	rados_ioctx_t io;
	rbd_image_t img;
	int ret;

	ret = snap_open(rc, vol, 1, &io, &img, err);
	if (ret < 0)
		return ret;
	ret = rbd_snap_remove(img, snap);
	if (ret == -ENOENT)
		berr_set(err, ret, "volume %s has no snapshot %s", vol->name, snap);
	else if (ret == -EBUSY)
		berr_set(err, ret, "snapshot %s of %s is protected or has clones", snap, vol->name);
	else if (ret < 0)
		berr_set(err, ret, "cannot remove snapshot %s of %s: %s", snap, vol->name, strerror(-ret));
	else
		log_infox("volume %s: snapshot %s removed", vol->name, snap);
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

int rbd_snap_refuse_remove(struct rbd_ctx *rc, const struct be_volume *vol, struct berr *err)
{
	struct berr lerr = BERR_INIT;
	char names[512] = "";
	json_t *snaps, *s;
	size_t i, at = 0;
	int ret;

	ret = be_rbd_snapshots(rc, vol, &snaps, &lerr);
	if (ret == -ENOENT)
		return 0; /* no image: nothing to keep */
	if (ret < 0)
		return berr_set(err, ret, "%s", lerr.msg);
	json_array_foreach (snaps, i, s) {
		int n = snprintf(names + at, sizeof(names) - at, "%s%s", i ? ", " : "",
				 json_string_value(json_object_get(s, "name")));

		if (n < 0 || (size_t)n >= sizeof(names) - at)
			break;
		at += (size_t)n;
	}
	if (json_array_size(snaps) > 0)
		ret = berr_set(err, -EBUSY,
			       "volume %s has %zu snapshot%s (%s); remove them first (ballast snapshot rm %s SNAP)",
			       vol->name, json_array_size(snaps), json_array_size(snaps) == 1 ? "" : "s", names,
			       vol->name);
	json_decref(snaps);
	return ret;
}
