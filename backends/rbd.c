/*
 * rbd.c - the rbd backend's ops: Create, Remove, Mount, Unmount, Resize,
 * List and the rest of backend.h, on Ceph RBD images (see rbd_int.h for
 * the family of files and what lives with an image).
 */
#define LOG_TAG "rbd"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "fsutil.h"
#include "log.h"
#include "rbd_int.h"
#include "timeutil.h"
#include "validate.h"

/* How long a Remove waits for passing or dead watchers of an image. */
#define RBD_REMOVE_WAIT_S 40

/* How long an image without ballast metadata is believed foreign: one
 * caught between rbd_create4 and its metadata is listed this much later. */
#define LIST_RECHECK_MS 30000

/* --- create reservations -------------------------------------------------- */

/*
 * The reservation of a Create: a RADOS object "ballast.creating.<name>" in
 * the pool, written before the image is made and removed once the image
 * carries its metadata. An image with no ballast metadata but this host's
 * reservation is what a crash between rbd_create4 and the first
 * rbd_metadata_set leaves, and the next Create may replace it; any other
 * image without metadata is someone else's and is never touched.
 */
#define RESERVATION_PREFIX "ballast.creating."

static void reservation_oid(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, RESERVATION_PREFIX "%s", name);
}

static int reservation_write(struct rbd_ctx *rc, rados_ioctx_t io, const char *name)
{
	char oid[VOLUME_NAME_MAX + 32], body[256];
	int n;

	reservation_oid(name, oid, sizeof(oid));
	n = snprintf(body, sizeof(body), "{\"host\":\"%s\",\"time\":%lld}", rc->host_id, (long long)time(NULL));
	return rados_write_full(io, oid, body, (size_t)n);
}

static void reservation_remove(rados_ioctx_t io, const char *name)
{
	char oid[VOLUME_NAME_MAX + 32];

	reservation_oid(name, oid, sizeof(oid));
	rados_remove(io, oid);
}

/* Is there a reservation of name that this host may take over: its own,
 * or another host's that is stale? */
static int reservation_ours(struct rbd_ctx *rc, rados_ioctx_t io, const char *name)
{
	char oid[VOLUME_NAME_MAX + 32], body[256] = "";
	int n;

	reservation_oid(name, oid, sizeof(oid));
	n = rados_read(io, oid, body, sizeof(body) - 1, 0);
	if (n <= 0)
		return 0;
	body[n] = '\0';
	return rbd_reservation_takeable(body, rc->host_id, time(NULL));
}

int rbd_reservation_takeable(const char *body, const char *self, time_t now)
{
	json_t *j = json_loads(body, 0, NULL);
	int ours;

	ours = strcmp(json_string_value(json_object_get(j, "host")) ?: "", self) == 0 ||
	       now - (time_t)json_integer_value(json_object_get(j, "time")) > RBD_RESERVATION_STALE_S;
	json_decref(j);
	return ours;
}

/* --- create and remove ---------------------------------------------------- */

/* Delete image name if ballast made it and nobody holds it. */
static int remove_image(rados_ioctx_t io, const char *pool, const char *name, struct berr *err)
{
	struct rbd_meta m;
	int ret;

	ret = rbd_meta_read(io, pool, name, &m, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (!m.options) {
		ret = berr_set(err, -EPERM, "image %s/%s was not made by ballast; not deleting it", pool, name);
		goto out;
	}
	if (m.locked) {
		ret = rbd_in_use(name, m.holder, m.lease, m.owners, err);
		goto out;
	}
	/*
	 * -EBUSY: someone has the image open. Not a holder (checked above):
	 * another host's refresh reading the metadata for a moment, or the
	 * watch of a client that died (a killed ballastd), which Ceph drops
	 * after ~30 s. Both pass: wait for them, within dockerd's minute.
	 */
	for (long until = monotonic_ms() + RBD_REMOVE_WAIT_S * 1000L;;) {
		ret = rbd_remove(io, name);
		if (ret != -EBUSY || monotonic_ms() >= until)
			break;
		sleep(1);
	}
	if (ret == -ENOENT)
		ret = 0;
	else if (ret == -EBUSY)
		ret = berr_set(err, -EBUSY,
			       "volume %s is still open by a Ceph client (a watcher; one that crashed is "
			       "dropped after ~30 s): try again",
			       name);
	else if (ret < 0)
		berr_set(err, ret, "cannot delete image %s/%s: %s", pool, name, strerror(-ret));
out:
	rbd_meta_free(&m);
	return ret;
}

/* A finished ballast volume is adopted only with the options it was made
 * with (or none: dockerd's implicit Create); an image without metadata is
 * replaced only when it is this host's (or a dead host's) interrupted
 * Create, and an unfinished one only when nobody holds it, or this host
 * (the lock of its own interrupted Create, whose mapper outlived it). */
enum rbd_existing rbd_existing_decide(const struct rbd_meta *m, const json_t *want, int reserved, const char *self)
{
	struct rbd_hold h;
	int copied = rbd_labels_copied(m);

	/* a clone's labels copied from its parent are none of its own */
	if ((!m->options || copied) && !m->locked && reserved)
		return RBD_EXISTING_UNLABELLED;
	if (copied)
		return RBD_EXISTING_CREATING;
	if (!m->options)
		return RBD_EXISTING_FOREIGN;
	if (strcmp(m->state, "ready") == 0)
		return json_object_size(want) == 0 || json_equal(m->options, want) ? RBD_EXISTING_ADOPT
										   : RBD_EXISTING_OTHER_OPTS;
	rbd_hold_parse(m->holder, "", m->locked, "", &h);
	if (m->locked && h.has_host && strcmp(h.host, self) == 0)
		return RBD_EXISTING_MINE;
	if (m->locked)
		return RBD_EXISTING_CREATING;
	return RBD_EXISTING_UNFINISHED;
}

/*
 * An unfinished image locked by this host: a Create here was interrupted
 * (ballastd killed, or the host went down) after it mapped the image, and
 * the mapping outlived it. Stop this host's mapping (idempotent); a lock
 * still held then is a mapper of ours that died holding it, fenced when
 * its lease names the lock's owner. Then the image is replaced as any
 * unfinished one.
 */
static int replace_own_leftover(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const char *name,
				struct berr *err)
{
	struct rbd_hold h;
	struct rbd_meta m;
	int ret;

	ret = rbd_detach(rc, name, err);
	if (ret == 0)
		ret = rbd_meta_read(io, pool, name, &m, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	rbd_hold_parse(m.holder, m.lease, m.locked, m.lock_client, &h);
	if (m.locked && h.lease_owns_lock && strcmp(h.host, rc->host_id) == 0) {
		log_warnx("volume %s: a mapper of this host died holding the image of an interrupted create; "
			  "fencing it (%s)",
			  name, m.lock_client);
		ret = rbd_fence(io, pool, name, m.owners, err);
	}
	rbd_meta_free(&m);
	if (ret == 0)
		ret = remove_image(io, pool, name, err);
	return ret;
}

/*
 * Before Create makes the image: 0 when there is no image of that name
 * (any more: one left by an interrupted Create is removed), BE_ADOPTED
 * for the same volume again (a resent Create, another Swarm node), or
 * -errno refusing another volume of that name, which is kept.
 */
static int create_over_existing(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const struct be_volume *vol,
				struct berr *err)
{
	struct rbd_meta m;
	int reserved, ret;

	ret = rbd_meta_read(io, pool, vol->name, &m, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	/* the reservation is read only where it decides */
	reserved = (!m.options || rbd_labels_copied(&m)) && !m.locked && reservation_ours(rc, io, vol->name);
	switch (rbd_existing_decide(&m, vol->opts, reserved, rc->host_id)) {
	case RBD_EXISTING_UNLABELLED:
		/* Our own Create died between making the image and labelling
		 * it: the image holds nothing yet. */
		log_infox("volume %s: replacing the unlabelled image of an interrupted create", vol->name);
		ret = rbd_remove(io, vol->name);
		if (ret < 0)
			berr_set(err, ret, "cannot replace image %s/%s of an interrupted create: %s", pool, vol->name,
				 strerror(-ret));
		break;
	case RBD_EXISTING_FOREIGN:
		ret = berr_set(err, -EEXIST, "image %s/%s exists and was not made by ballast", pool, vol->name);
		break;
	case RBD_EXISTING_ADOPT:
		log_infox("volume %s exists in the cluster: adopted", vol->name);
		ret = BE_ADOPTED;
		break;
	case RBD_EXISTING_OTHER_OPTS:
		ret = berr_set(err, -EEXIST, "volume %s already exists in the cluster with other options", vol->name);
		break;
	case RBD_EXISTING_CREATING:
		ret = berr_set(err, -EBUSY, "volume %s is being created by another host", vol->name);
		break;
	case RBD_EXISTING_MINE:
		log_infox("volume %s: replacing the image of an interrupted create of this host", vol->name);
		ret = replace_own_leftover(rc, io, pool, vol->name, err);
		break;
	case RBD_EXISTING_UNFINISHED:
		/* an interrupted Create: it holds no data yet */
		log_infox("volume %s: replacing the image of an unfinished create", vol->name);
		ret = remove_image(io, pool, vol->name, err);
		break;
	}
	rbd_meta_free(&m);
	return ret;
}

/* Reserve the name, then make the image: bytes, features and the
 * volume's data-pool, or a clone of its from=; on failure the reservation
 * goes again. */
static int create_image(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const struct be_volume *vol,
			uint64_t bytes, uint64_t features, struct berr *err)
{
	char pvol[VOLUME_NAME_MAX + 1], snap[VOLUME_NAME_MAX + 1];
	rbd_image_options_t io_opts = NULL;
	int ret, clone;

	clone = rbd_clone_source(vol->opts, pvol, snap, err);
	if (clone < 0)
		return clone;
	ret = reservation_write(rc, io, vol->name);
	if (ret < 0)
		return berr_set(err, ret, "cannot reserve volume %s in pool %s: %s", vol->name, pool, strerror(-ret));
	rbd_image_options_create(&io_opts);
	rbd_image_options_set_uint64(io_opts, RBD_IMAGE_OPTION_FORMAT, 2);
	if (!clone)
		rbd_image_options_set_uint64(io_opts, RBD_IMAGE_OPTION_FEATURES, features);
	if (opt_get(vol->opts, "data-pool"))
		rbd_image_options_set_string(io_opts, RBD_IMAGE_OPTION_DATA_POOL, opt_get(vol->opts, "data-pool"));
	ret = clone ? rbd_clone3(io, pvol, snap, io, vol->name, io_opts) : rbd_create4(io, vol->name, bytes, io_opts);
	rbd_image_options_destroy(io_opts);
	if (ret < 0) {
		berr_set(err, ret, "cannot %s image %s/%s: %s", clone ? "clone" : "create", pool, vol->name,
			 strerror(-ret));
		reservation_remove(io, vol->name);
	}
	return ret;
}

/* Label the new image as ballast's, still "creating". */
static int create_label(rados_ioctx_t io, const char *pool, const struct be_volume *vol, const char *fstype,
			struct berr *err)
{
	char *opts_json = json_dumps(vol->opts, JSON_COMPACT | JSON_SORT_KEYS);
	char created[40];
	int ret;

	rfc3339_now(created, sizeof(created));
	{
		/* a clone's holder and lease records are its parent's:
		 * dropped */
		const char *kv[] = { META_STATE,  "creating", META_OPTIONS, opts_json ? opts_json : "{}",
				     META_FSTYPE, fstype,     META_CREATED, created,
				     META_HOLDER, NULL,	      META_LEASE,   NULL,
				     NULL };

		ret = rbd_meta_set(io, pool, vol->name, kv, err);
	}
	free(opts_json);
	return ret;
}

/* Map the new image once and make its file system (with the volume's
 * mkfs-options). */
static int create_mkfs(struct rbd_ctx *rc, const char *pool, const struct be_volume *vol, const char *fstype,
		       struct berr *err)
{
	char image[PATH_MAX + 8];
	const char *mkfs_opts = opt_get(vol->opts, "mkfs-options");
	const char *args[] = { "mkfs", "--fstype", fstype, "--mkfs-options", mkfs_opts, image, NULL };
	struct berr ignored = BERR_INIT;
	int loop, ret;

	ret = rbd_map_image(rc, vol->name, pool, 0, image, sizeof(image), &loop, err);
	if (ret < 0)
		return ret;
	CRASH_POINT("rbd.create.after-map");
	if (!mkfs_opts) {
		args[3] = image;
		args[4] = NULL;
	}
	ret = rbd_run_helper(rc, args, err);
	rbd_unmap_image(rc, vol->name, ret < 0 ? &ignored : err);
	return ret;
}

/* One mount, so that the data directory gets its owner and a bad mount
 * option fails now rather than at the first Mount; then "ready". */
static int create_finish(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const struct be_volume *vol,
			 const char *fstype, const struct vol_perms *perms, struct berr *err)
{
	int ret;

	ret = rbd_attach(rc, vol->name, pool, fstype, opt_get(vol->opts, "mount-options"), 0, perms, err);
	if (ret == 0) {
		CRASH_POINT("rbd.create.after-attach");
		ret = rbd_detach(rc, vol->name, err);
	}
	if (ret == 0) {
		const char *kv[] = { META_STATE, "ready", NULL };

		ret = rbd_meta_set(io, pool, vol->name, kv, err);
	}
	return ret;
}

/* Undo a Create that failed after making the image: whatever is mapped
 * or mounted, the image, then its reservation. */
static void create_undo(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const char *name)
{
	struct berr ignored = BERR_INIT;

	/* the mark stays while something may still be mapped here */
	if (rbd_detach(rc, name, &ignored) == 0)
		rbd_create_unmark(rc, name);
	if (remove_image(io, pool, name, &ignored) < 0)
		log_warnx("cannot remove image %s/%s after a failed create: %s", pool, name, ignored.msg);
	else
		reservation_remove(io, name);
}

/*
 * Create (see backend.h): 0 when the image was made, formatted and given
 * its data directory; BE_ADOPTED when a finished ballast volume of that
 * name is already in the cluster and the options match (or none were
 * given); -EEXIST for another volume of that name, which is left alone.
 * On failure everything this call made is removed.
 */
static int be_rbd_create(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = rbd_vol_pool(rc, vol->opts), *fstype = rbd_vol_fstype(rc, vol->opts);
	int clone = opt_get(vol->opts, "from") != NULL;
	char parent_fstype[16];
	rados_ioctx_t io = NULL;
	struct vol_perms perms;
	uint64_t bytes, features;
	int ret;

	ret = rbd_vol_size(rc, vol->opts, &bytes, err);
	if (ret == 0)
		ret = rbd_vol_features(vol->opts, &features, err);
	if (ret == 0)
		ret = parse_perms(vol->opts, &perms, err);
	if (ret == 0)
		ret = rbd_ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	rbd_leftover_settle(rc, vol->name);
	ret = create_over_existing(rc, io, pool, vol, err);
	if (ret != 0) /* refused, failed or adopted */
		goto out_io;
	if (clone) {
		ret = rbd_clone_parent(io, pool, vol, parent_fstype, sizeof(parent_fstype), err);
		if (ret < 0)
			goto out_io;
		fstype = parent_fstype;
	}
	ret = create_image(rc, io, pool, vol, bytes, features, err);
	if (ret < 0)
		goto out_io;
	CRASH_POINT("rbd.create.after-image");
	ret = create_label(io, pool, vol, fstype, err);
	/* from the first mapping on, a crash leaves a mapper running here */
	if (ret == 0)
		ret = rbd_create_mark(rc, vol->name, err);
	if (ret == 0 && !clone)
		ret = create_mkfs(rc, pool, vol, fstype, err);
	else if (ret == 0 && strcmp(opt_get(vol->opts, "flatten") ?: "false", "true") == 0)
		ret = rbd_clone_flatten(io, pool, vol, err);
	if (ret < 0)
		goto out_remove;
	CRASH_POINT("rbd.create.after-mkfs");
	ret = create_finish(rc, io, pool, vol, fstype, &perms, err);
	if (ret < 0)
		goto out_remove;
	reservation_remove(io, vol->name);
	rbd_create_unmark(rc, vol->name);
	if (clone)
		log_infox("created image %s/%s, a clone of %s (%s)", pool, vol->name, opt_get(vol->opts, "from"),
			  fstype);
	else
		log_infox("created image %s/%s (%llu MiB, %s)", pool, vol->name, (unsigned long long)(bytes >> 20),
			  fstype);
	goto out_io;
out_remove:
	create_undo(rc, io, pool, vol->name);
out_io:
	rados_ioctx_destroy(io);
	return ret;
}

/* Remove's checks alone (held by a host or a Ceph client?), before
 * ballastd records the Remove. A missing image is removable. */
static int be_rbd_remove_check(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = rbd_vol_pool(rc, vol->opts);
	rados_ioctx_t io = NULL;
	struct rbd_meta m;
	int ret;

	ret = rbd_ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	ret = rbd_meta_read(io, pool, vol->name, &m, err);
	if (ret == -ENOENT) {
		berr_clear(err);
		ret = 0;
	} else if (ret == 0) {
		if (m.locked && !rbd_mapped(rc, vol->name))
			ret = rbd_in_use(vol->name, m.holder, m.lease, m.owners, err);
		rbd_meta_free(&m);
	}
	rados_ioctx_destroy(io);
	/* rbd_remove would refuse later, after the Remove is recorded */
	if (ret == 0)
		ret = rbd_snap_refuse_remove(rc, vol, err);
	return ret;
}

static int be_rbd_remove(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = rbd_vol_pool(rc, vol->opts);
	rados_ioctx_t io = NULL;
	int ret;

	rbd_leftover_settle(rc, vol->name);
	ret = rbd_detach(rc, vol->name, err);
	if (ret == 0)
		ret = rbd_ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	ret = remove_image(io, pool, vol->name, err);
	rados_ioctx_destroy(io);
	return ret;
}

/* --- mount and unmount ---------------------------------------------------- */

static int be_rbd_mount(void *ctx, const struct be_volume *vol, char *path, size_t len, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = rbd_vol_pool(rc, vol->opts);
	char target[PATH_MAX], data[PATH_MAX + 8];
	rados_ioctx_t io = NULL;
	struct rbd_meta m;
	int ret, read_only = 0;

	rbd_leftover_settle(rc, vol->name);
	rbd_mount_target(rc, vol->name, target, sizeof(target));
	snprintf(data, sizeof(data), "%s/data", target);
	/* Left mounted by an earlier run (ballastd restarted while it was in
	 * use, or a crash before the mount was recorded): reuse it. */
	if (is_mountpoint(target) == 1 && rbd_mapped(rc, vol->name) && access(data, F_OK) == 0 &&
	    !rbd_map_fenced(rc, vol->name)) {
		snprintf(path, len, "%s", data);
		return 0;
	}
	if (rbd_map_fenced(rc, vol->name))
		log_warnx("volume %s: this host was fenced from it (another host took it over); dropping the "
			  "stale mapping",
			  vol->name);
	ret = rbd_detach(rc, vol->name, err); /* leftovers of a crash, or of a fence */
	if (ret == 0)
		ret = rbd_volume_open(rc, vol, &io, &m, err);
	if (ret < 0)
		return ret;
	if (!m.options || strcmp(m.state, "ready") != 0) {
		ret = berr_set(err, -ENOENT, "volume %s: image %s/%s is not a finished ballast volume", vol->name, pool,
			       vol->name);
		goto out_close_volume;
	}
	ret = rbd_take_over(rc, io, pool, vol->name, &m, &read_only, err);
	if (ret < 0)
		goto out_close_volume;
	{
		struct berr aerr = BERR_INIT;

		ret = rbd_attach(rc, vol->name, pool, m.fstype[0] ? m.fstype : rbd_vol_fstype(rc, m.options),
				 opt_get(m.options, "mount-options"), read_only, NULL, &aerr);
		if (ret == -EBUSY && m.holder[0])
			rbd_in_use(vol->name, m.holder, m.lease, m.owners, err);
		else if (ret < 0)
			berr_propagate(err, ret, &aerr);
	}
	if (ret == 0) {
		CRASH_POINT("rbd.mount.after-mount");
		snprintf(path, len, "%s", data);
	}
out_close_volume:
	rbd_meta_free(&m);
	rados_ioctx_destroy(io);
	return ret;
}

static int be_rbd_unmount(void *ctx, const struct be_volume *vol, struct berr *err)
{
	return rbd_detach(ctx, vol->name, err);
}

static int be_rbd_is_mounted(void *ctx, const struct be_volume *vol)
{
	struct rbd_ctx *rc = ctx;
	char target[PATH_MAX];
	int ret;

	if (rbd_map_fenced(rc, vol->name)) {
		log_warnx("volume %s: this host was fenced from it (another host took it over): its mount here is "
			  "dead",
			  vol->name);
		return 0;
	}
	rbd_mount_target(rc, vol->name, target, sizeof(target));
	ret = is_mountpoint(target);
	if (ret == 1 && !rbd_mapped(rc, vol->name)) {
		/* its mapper was killed: every read and write fails, and the
		 * file system went read-only; never hand it out again */
		log_warnx("volume %s is mounted but its mapper is gone: its mount here is dead", vol->name);
		return BE_MOUNT_DEAD;
	}
	if (ret == 0 && rbd_mapped(rc, vol->name)) {
		/* A mapper with nothing mounted on it (a crash between map and
		 * mount, or an unmount done by hand) would hold the lock, and
		 * keep every other host out, until the next Mount here. */
		struct berr ignored = BERR_INIT;

		log_infox("volume %s: stopping a mapper nothing uses", vol->name);
		rbd_unmap_image(rc, vol->name, &ignored);
	}
	return ret;
}

static json_t *be_rbd_status(void *ctx, const struct be_volume *vol)
{
	struct rbd_ctx *rc = ctx;
	char mapper[16], dev[PATH_MAX];
	json_t *st;

	/* the mapper of this host's mapping, else the one a Mount would use */
	if (!rbd_kmap_read(rc, vol->name, mapper, sizeof(mapper), dev, sizeof(dev), NULL, 0)) {
		snprintf(mapper, sizeof(mapper), "%s", rbd_mapper_of(rc));
		dev[0] = '\0';
	}
	st = json_pack("{s:s, s:s, s:s}", "mapper", mapper, "pool", rbd_vol_pool(rc, vol->opts), "image", vol->name);
	if (st && dev[0])
		json_object_set_new(st, "device", json_string(dev));
	return st;
}

/* --- resize --------------------------------------------------------------- */

/* Grow the file system mounted at target to fill its (grown) device. */
static int grow_fs(struct rbd_ctx *rc, const char *fstype, const char *target, struct berr *err)
{
	const char *args[] = { "grow", "--fstype", fstype, target, NULL };

	return rbd_run_helper(rc, args, err);
}

/* Mounted here under the fuse mapper, which holds the lock: it grows the
 * image (a write of the new size, num, to its size file), and
 * mount.ballast the mounted file system. */
static int resize_online(struct rbd_ctx *rc, const struct be_volume *vol, const char *pool, const char *fstype,
			 const char *target, const char *num, struct berr *err)
{
	char sizefile[PATH_MAX + 8];
	int fd, ret = 0;

	rbd_map_dir(rc, vol->name, sizefile, sizeof(sizefile));
	strncat(sizefile, "/size", sizeof(sizefile) - strlen(sizefile) - 1);
	fd = open(sizefile, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, num, strlen(num)) != (ssize_t)strlen(num))
		ret = berr_set(err, -errno, "cannot grow image %s/%s to %s bytes: %s", pool, vol->name, num,
			       errno == EINVAL ? "smaller than it is (shrinking is refused)" : strerror(errno));
	if (fd >= 0)
		close(fd);
	CRASH_POINT("rbd.resize.after-image");
	if (ret == 0)
		ret = grow_fs(rc, fstype, target, err);
	return ret;
}

/* Not mounted anywhere: ballastd grows the image itself, then maps and
 * mounts it once to grow the file system, so that the next Mount finds
 * it full size. */
static int resize_offline(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const struct be_volume *vol,
			  const struct rbd_meta *m, const char *fstype, const char *target, uint64_t bytes,
			  struct berr *err)
{
	struct berr ignored = BERR_INIT;
	rbd_image_t img = NULL;
	uint64_t cur = 0;
	int ret;

	ret = rbd_open(io, vol->name, &img, NULL);
	if (ret == 0)
		ret = rbd_get_size(img, &cur);
	if (ret == 0 && bytes < cur)
		ret = berr_set(err, -EINVAL, "volume %s is %llu bytes; shrinking is refused", vol->name,
			       (unsigned long long)cur);
	else if (ret == 0 && bytes > cur)
		ret = rbd_resize(img, bytes);
	if (img)
		rbd_close(img);
	if (ret < 0)
		return berr_set(err, ret, "cannot grow image %s/%s: %s", pool, vol->name, strerror(-ret));
	CRASH_POINT("rbd.resize.after-image");
	/* the file system follows now, not at some later Mount */
	ret = rbd_attach(rc, vol->name, pool, fstype, opt_get(m->options, "mount-options"), 0, NULL, err);
	if (ret < 0)
		return ret;
	CRASH_POINT("rbd.resize.after-attach");
	ret = grow_fs(rc, fstype, target, err);
	if (ret == 0)
		ret = rbd_detach(rc, vol->name, err);
	else
		rbd_detach(rc, vol->name, &ignored);
	return ret;
}

/*
 * Grow the volume to bytes, and its file system with it. Shrinking is
 * refused. Mounted here: online, under the fuse mapper (a kernel mapper
 * holds the lock itself: refused). Not mounted anywhere: offline. Held by
 * another host: refused, naming it.
 */
static int be_rbd_resize(void *ctx, const struct be_volume *vol, uint64_t bytes, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = rbd_vol_pool(rc, vol->opts), *fstype;
	char target[PATH_MAX], num[32];
	rados_ioctx_t io = NULL;
	struct rbd_meta m;
	int ret, mounted;

	rbd_leftover_settle(rc, vol->name);
	ret = rbd_volume_open(rc, vol, &io, &m, err);
	if (ret < 0)
		return ret;
	fstype = m.fstype[0] ? m.fstype : rbd_vol_fstype(rc, vol->opts);
	rbd_mount_target(rc, vol->name, target, sizeof(target));
	snprintf(num, sizeof(num), "%llu", (unsigned long long)bytes);
	mounted = is_mountpoint(target) == 1;
	if (mounted && rbd_mapped(rc, vol->name) && rbd_mapper_pid(rc, vol->name) == 0)
		/* the kernel holds the lock: nobody else may grow the image */
		ret = berr_set(err, -ENOTSUP,
			       "volume %s is mapped by a kernel mapper here: online growth needs the fuse mapper; "
			       "unmount it and resize again",
			       vol->name);
	else if (mounted && rbd_mapper_pid(rc, vol->name) > 0)
		ret = resize_online(rc, vol, pool, fstype, target, num, err);
	else if (m.locked)
		ret = rbd_in_use(vol->name, m.holder, m.lease, m.owners, err);
	else
		ret = resize_offline(rc, io, pool, vol, &m, fstype, target, bytes, err);
	rbd_meta_free(&m);
	rados_ioctx_destroy(io);
	if (ret == 0)
		log_infox("volume %s grown to %s bytes", vol->name, num);
	return ret;
}

/* --- health checks -------------------------------------------------------- */

/*
 * Health checks for `ballast doctor`: config, programs, /dev/fuse, which
 * mapper would be used, and the cluster (bounded by the op timeout).
 */
static json_t *be_rbd_check(void *ctx)
{
	struct rbd_ctx *rc = ctx;
	json_t *checks = json_array();
	struct berr err = BERR_INIT;
	rados_ioctx_t io = NULL;
	int krbd = access("/sys/bus/rbd", F_OK) == 0;
	int nbd = access("/sys/block/nbd0", F_OK) == 0;

	if (!be_rbd_configured(ctx)) {
		/* Compiled in but unused: nothing to check, nothing wrong. */
		backend_check_add(checks, "rbd", 1, "not configured (no [rbd] section, no %s): unused", rc->conf);
		return checks;
	}
	if (access(rc->conf, R_OK) == 0)
		backend_check_add(checks, "ceph config", 1, "%s", rc->conf);
	else
		backend_check_add(checks, "ceph config", 0, "cannot read %s: %s", rc->conf, strerror(errno));
	if (access(rc->map_bin, X_OK) == 0)
		backend_check_add(checks, "rbd mapper", 1, "%s", rc->map_bin);
	else
		backend_check_add(checks, "rbd mapper", 0, "%s: %s", rc->map_bin, strerror(errno));
	if (access("/dev/fuse", R_OK | W_OK) == 0)
		backend_check_add(checks, "fuse", 1, "/dev/fuse is usable");
	else
		backend_check_add(checks, "fuse", 0, "/dev/fuse: %s (the fuse mapper cannot work)", strerror(errno));
	backend_check_add(checks, "rbd mapping", 1, "mapper = %s; kernel rbd %s, nbd %s; Mount maps with %s",
			  rc->mapper, krbd ? "present" : "absent", nbd ? "present" : "absent", rbd_mapper_of(rc));
	if (access(rc->helper.path, X_OK) == 0)
		backend_check_add(checks, "mount helper", 1, "%s", rc->helper.path);
	else
		backend_check_add(checks, "mount helper", 0, "%s: %s", rc->helper.path, strerror(errno));
	if (rbd_ioctx_open(rc, rc->pool, &io, &err) == 0) {
		backend_check_add(checks, "ceph cluster", 1, "connected as client.%s; pool %s is there", rc->user,
				  rc->pool);
		rados_ioctx_destroy(io);
	} else {
		backend_check_add(checks, "ceph cluster", 0, "%s", err.msg);
	}
	return checks;
}

/* --- list and lookup ------------------------------------------------------ */

/* Every image of pool into *specs and *n (the caller cleans them up with
 * rbd_image_spec_list_cleanup and frees specs); rbd_list2's answer. */
static int list_images(rados_ioctx_t io, const char *pool, rbd_image_spec_t **specs, size_t *n, struct berr *err)
{
	int ret;

	*n = 64;
	for (;;) {
		*specs = calloc(*n, sizeof(**specs));
		if (!*specs)
			return berr_set(err, -ENOMEM, "out of memory");
		ret = rbd_list2(io, *specs, n);
		if (ret != -ERANGE)
			break;
		free(*specs);
		*specs = NULL;
	}
	if (ret < 0) {
		berr_set(err, ret, "cannot list images in pool %s: %s", pool, strerror(-ret));
		free(*specs);
		*specs = NULL;
	}
	return ret;
}

/* An image without ballast metadata is not ballast's, unless caught
 * between rbd_create4 and the metadata of a Create under way (its
 * reservation exists): then asked again next time, not in 30 s. */
static void list_foreign(rados_ioctx_t io, const char *name, const char *key, json_t *seen)
{
	char oid[RBD_NAME_MAX + VOLUME_NAME_MAX + 32];
	uint64_t psize;
	time_t pmtime;

	reservation_oid(name, oid, sizeof(oid));
	if (rados_stat(io, oid, &psize, &pmtime) == -ENOENT)
		json_object_set_new(seen, key, json_pack("{s:I}", "checked_ms", (json_int_t)monotonic_ms()));
}

/* Append image name (id) of pool to all when it is a finished ballast
 * volume, reusing what the last list learned (rc->list_cache) and
 * recording what this one learns (seen). An image whose metadata cannot
 * be read fails the list (-errno with a message naming it): left out, a
 * ready volume would look removed, and the refresh would drop it. */
static int list_image(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const rbd_image_spec_t *spec, json_t *all,
		      json_t *seen, struct berr *err)
{
	struct berr ignored = BERR_INIT;
	char key[RBD_NAME_MAX + 64];
	json_t *known, *v = NULL;
	struct rbd_meta m;
	int ret;

	if (validate_name(spec->name, &ignored) < 0)
		return 0;
	snprintf(key, sizeof(key), "%s/%s", pool, spec->id);
	known = rc->list_cache ? json_object_get(rc->list_cache, key) : NULL;
	if (json_object_get(known, "item")) {
		/* a copy: the caller owns what it gets */
		json_array_append_new(all, json_deep_copy(json_object_get(known, "item")));
		json_object_set(seen, key, known);
		return 0;
	}
	if (known && monotonic_ms() - json_integer_value(json_object_get(known, "checked_ms")) < LIST_RECHECK_MS) {
		json_object_set(seen, key, known);
		return 0;
	}
	ret = rbd_meta_read(io, pool, spec->name, &m, err);
	if (ret == -ENOENT)
		return 0; /* removed since the listing */
	if (ret < 0)
		return ret;
	if (rbd_meta_finished(&m) && strcmp(rbd_vol_pool(rc, m.options), pool) == 0) {
		v = json_pack("{s:s, s:O}", "name", spec->name, "options", m.options);
		/* dockerd cannot decode an empty CreatedAt */
		if (v && m.created[0])
			json_object_set_new(v, "created_at", json_string(m.created));
	}
	if (v) {
		json_array_append_new(all, json_deep_copy(v));
		json_object_set_new(seen, key, json_pack("{s:o}", "item", v));
	} else if (!m.options) {
		list_foreign(io, spec->name, key, seen);
	} /* ballast's but unfinished: asked again next time */
	rbd_meta_free(&m);
	return 0;
}

/* Append pool's finished ballast volumes to all (see list_image). */
static int list_pool(struct rbd_ctx *rc, const char *pool, json_t *all, json_t *seen, struct berr *err)
{
	rbd_image_spec_t *specs = NULL;
	rados_ioctx_t io = NULL;
	size_t n = 0;
	int ret;

	ret = rbd_ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	ret = list_images(io, pool, &specs, &n, err);
	if (ret >= 0) {
		ret = 0;
		for (size_t i = 0; i < n && ret == 0; i++)
			ret = list_image(rc, io, pool, &specs[i], all, seen, err);
		rbd_image_spec_list_cleanup(specs, n);
		free(specs);
	}
	rados_ioctx_destroy(io);
	return ret;
}

/*
 * Every finished ballast volume in the cluster, for the catalog's refresh:
 * [{"name","options","created_at"}]. All pools are looked at, since a
 * volume may live in the one its pool option named. Images ballast did
 * not make, and unfinished ones, are left out. Every call is bounded by
 * the op timeout. A pool, or an image's metadata, that cannot be read
 * fails the whole list, so that the refresh never drops a volume it merely
 * could not see (an image gone since the listing is just gone). Only images
 * not seen before are opened: a refresh of an unchanged cluster is one
 * pool listing and one image listing per pool.
 */
static int be_rbd_list(void *ctx, json_t **out, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	char *pools = NULL;
	rados_t cl = NULL;
	json_t *all = NULL, *seen = NULL;
	int len = 1024, ret;

	ret = rbd_cluster_get(rc, &cl, err);
	if (ret < 0)
		return ret;
	for (;;) {
		pools = calloc(1, (size_t)len);
		if (!pools)
			return berr_set(err, -ENOMEM, "out of memory");
		ret = rados_pool_list(cl, pools, (size_t)len);
		if (ret < 0) {
			berr_set(err, ret, "cannot list Ceph pools: %s", strerror(-ret));
			goto out_free;
		}
		if (ret <= len)
			break;
		len = ret;
		free(pools);
	}
	all = json_array();
	seen = json_object();
	ret = 0;
	for (const char *p = pools; *p && ret == 0; p += strlen(p) + 1)
		ret = list_pool(rc, p, all, seen, err);
	if (ret == 0) {
		/* images gone from the cluster are forgotten */
		json_decref(rc->list_cache);
		rc->list_cache = seen;
		seen = NULL;
		*out = all;
		all = NULL;
	}
out_free:
	json_decref(seen);
	json_decref(all);
	free(pools);
	return ret;
}

/* Is name a finished ballast volume in the default pool? (For dockerd's
 * implicit Create on a host whose default backend is not shared.) */
static int be_rbd_lookup(void *ctx, const char *name, json_t **item, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	rados_ioctx_t io = NULL;
	struct rbd_meta m;
	int ret;

	*item = NULL;
	ret = rbd_ioctx_open(rc, rc->pool, &io, err);
	if (ret < 0)
		return ret;
	ret = rbd_meta_read(io, rc->pool, name, &m, err);
	if (ret == -ENOENT) {
		ret = 0;
	} else if (ret == 0) {
		if (rbd_meta_finished(&m)) {
			*item = json_pack("{s:s, s:O}", "name", name, "options", m.options);
			if (*item && m.created[0])
				json_object_set_new(*item, "created_at", json_string(m.created));
			ret = *item ? 1 : -ENOMEM;
		}
		rbd_meta_free(&m);
	}
	rados_ioctx_destroy(io);
	return ret;
}

/* --- the ops table -------------------------------------------------------- */

const struct backend_ops be_rbd_ops = {
	.name = "rbd",
	.caps = BE_CAP_GLOBAL,
	.options = rbd_opts,
	.init = be_rbd_init,
	.fini = be_rbd_fini,
	.configured = be_rbd_configured,
	.validate_opts = be_rbd_validate_opts,
	.create = be_rbd_create,
	.config_keys = rbd_config_keys,
	.remove_check = be_rbd_remove_check,
	.remove = be_rbd_remove,
	.mount = be_rbd_mount,
	.unmount = be_rbd_unmount,
	.is_mounted = be_rbd_is_mounted,
	.status = be_rbd_status,
	.list = be_rbd_list,
	.check = be_rbd_check,
	.resize = be_rbd_resize,
	.holder = be_rbd_holder,
	.snapshot = be_rbd_snapshot,
	.snapshots = be_rbd_snapshots,
	.snapshot_remove = be_rbd_snapshot_remove,
	.rollback = be_rbd_rollback,
	.release = be_rbd_release,
	.lookup = be_rbd_lookup,
};
