/*
 * local.c - volumes on this host.
 *
 * A plain volume is the directory <root>/<name>, handed to dockerd as is.
 * A sized volume (-o size=) is an image <root>/.images/<name>.img, its
 * blocks allocated at Create (fallocate) so that a full disk is a refused
 * Create rather than EIO in a container and failed catalog writes later,
 * formatted at Create and loop-mounted by mount.ballast at
 * <state_dir>/mounts/<name>; dockerd gets its data/ subdirectory, so the
 * file system's lost+found never shows in the container and the size is a
 * hard limit (ENOSPC inside the container).
 */
#define LOG_TAG "local"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "common.h"
#include "config.h"
#include "crashpoint.h"
#include "fsutil.h"
#include "log.h"
#include "run.h"
#include "timeutil.h"
#include "validate.h"

#define LOCAL_IMAGES ".images"
#define LOCAL_SNAPSHOTS ".snapshots"
/* The longest a sized volume's file system stays frozen for a snapshot:
 * the copy of its image (quick with reflink, else proportional to what
 * was written); past this the snapshot is dropped. */
#define LOCAL_FREEZE_MAX_S 20
#define LOCAL_DEFAULT_FSTYPE "ext4"
/* mkfs.ext4 needs a few MiB; mkfs.xfs refuses anything under 300 MiB. */
#define LOCAL_MIN_EXT4 (16ULL << 20)
#define LOCAL_MIN_XFS (300ULL << 20)

/* Room for "/.images/<name>.img" and "/<name>/data" below any root. */
#define LOCAL_BASE_MAX (PATH_MAX - VOLUME_NAME_MAX - 64)

struct local_ctx {
	char root[LOCAL_BASE_MAX];
	char mounts[LOCAL_BASE_MAX]; /* <state_dir>/mounts */
	struct helper helper;
	/* the root, whose fsyncs concurrent Creates and Removes share */
	int rootfd;
	struct group_sync rootsync;
};

extern const struct backend_ops be_local_ops;

static const char *const local_opts[] = { "backend",	   "fstype", "gid", "mkfs-options", "mode",
					  "mount-options", "size",   "uid", "from",	    NULL };
/* Options a copy (from=) takes from the volume it copies. */
static const char *const copy_inherits[] = { "size", "fstype", "mkfs-options", "uid", "gid", "mode", NULL };

/* The longest a copy (from=) may take, within dockerd's 2 minutes for a
 * Create; a bigger volume is refused at its bound, leaving nothing. */
#define LOCAL_COPY_MAX_S 100

static const struct config_key local_config_keys[] = {
	CONFIG_KEY_STR("local", "root", NULL, "where local volumes live (default: <state_dir>/local)"),
	CONFIG_KEY_END,
};

static int be_local_init(const struct ballast_config *cfg, void **ctx, struct berr *err)
{
	struct local_ctx *lc = calloc(1, sizeof(*lc));
	const char *state = config_get(cfg, "ballast", "state_dir");
	const char *root = config_get(cfg, "local", "root");
	int n, ret;

	if (!lc)
		return berr_set(err, -ENOMEM, "out of memory");
	n = root ? snprintf(lc->root, sizeof(lc->root), "%s", root)
		 : snprintf(lc->root, sizeof(lc->root), "%s/local", state);
	if ((size_t)n >= sizeof(lc->root) ||
	    (size_t)snprintf(lc->mounts, sizeof(lc->mounts), "%s/mounts", config_get(cfg, "ballast", "state_dir")) >=
		    sizeof(lc->mounts)) {
		ret = berr_set(err, -ENAMETOOLONG, "[local] root or state_dir is too long");
		goto out_free;
	}
	ret = helper_init(&lc->helper, cfg, err);
	if (ret < 0)
		goto out_free;
	ret = mkdir_p(lc->root, 0700);
	if (ret == 0 && (lc->rootfd = open(lc->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		ret = -errno;
	if (ret < 0) {
		berr_set(err, ret, "cannot create local root %s: %s", lc->root, strerror(-ret));
		goto out_free;
	}
	lc->rootsync = (struct group_sync)GROUP_SYNC_INIT;
	*ctx = lc;
	return 0;
out_free:
	free(lc);
	return ret;
}

static void be_local_fini(void *ctx)
{
	struct local_ctx *lc = ctx;

	group_sync_destroy(&lc->rootsync);
	close(lc->rootfd);
	free(lc);
}

/* The options of a sized volume's file system. */
static const char *const fs_opts[] = { "fstype", "mkfs-options", "mount-options", NULL };

static int be_local_validate_opts(void *ctx, const json_t *opts, struct berr *err)
{
	const char *size = opt_get(opts, "size");
	const char *fstype = opt_get(opts, "fstype");
	struct vol_perms perms;
	uint64_t bytes, min;
	int ret;

	(void)ctx;
	ret = validate_opt_keys(opts, be_local_ops.name, be_local_ops.options, err);
	if (ret == 0)
		ret = parse_perms(opts, &perms, err);
	if (ret < 0)
		return ret;
	ret = validate_copy_from(opts, 1, NULL, copy_inherits, err);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	if (fstype && strcmp(fstype, "ext4") != 0 && strcmp(fstype, "xfs") != 0)
		return berr_set(err, -EINVAL, "invalid fstype \"%.40s\": use ext4 or xfs", fstype);
	ret = validate_fs_options(opts, err);
	if (ret < 0)
		return ret;
	for (const char *const *o = fs_opts; *o; o++)
		if (opt_get(opts, *o) && !size)
			return berr_set(err, -EINVAL,
					"option %s needs option size (a sized volume is a file system image)", *o);
	if (!size)
		return 0;
	ret = parse_size(size, &bytes, err);
	if (ret < 0)
		return ret;
	min = fstype && strcmp(fstype, "xfs") == 0 ? LOCAL_MIN_XFS : LOCAL_MIN_EXT4;
	if (bytes < min)
		return berr_set(err, -EINVAL, "size %s is too small for %s; the least is %llu MiB", size,
				fstype ? fstype : LOCAL_DEFAULT_FSTYPE, (unsigned long long)(min >> 20));
	return 0;
}

static void volume_dir(const struct local_ctx *lc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", lc->root, name);
}

static void image_path(const struct local_ctx *lc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" LOCAL_IMAGES "/%s.img", lc->root, name);
}

static void mount_target(const struct local_ctx *lc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", lc->mounts, name);
}

/* Where a copy into vol is made before it is renamed into place (no
 * volume name starts with a dot). */
static void copy_tmp_path(const struct local_ctx *lc, const struct be_volume *vol, char *buf, size_t len)
{
	if (opt_get(vol->opts, "size"))
		snprintf(buf, len, "%s/" LOCAL_IMAGES "/.tmp-%s.img", lc->root, vol->name);
	else
		snprintf(buf, len, "%s/.tmp-%s", lc->root, vol->name);
}

static int create_dir(struct local_ctx *lc, const struct be_volume *vol, struct berr *err)
{
	struct vol_perms perms;
	char dir[PATH_MAX];
	int made, ret;

	ret = parse_perms(vol->opts, &perms, err);
	if (ret < 0)
		return ret;
	volume_dir(lc, vol->name, dir, sizeof(dir));
	made = mkdir(dir, 0700) == 0;
	if (!made && errno != EEXIST)
		return berr_set(err, -errno, "cannot create %s: %s", dir, strerror(errno));
	ret = apply_perms(dir, &perms, err);
	/* also when it was there: a Create retried after a crash */
	if (ret == 0 && (ret = fsync_path(dir)) == 0)
		ret = group_fsync(&lc->rootsync, lc->rootfd);
	if (ret < 0)
		berr_set(err, ret, "cannot make %s durable: %s", dir, strerror(-ret));
	if (ret < 0 && made)
		rmdir(dir);
	return ret;
}

/*
 * Give the open image fd its bytes, allocated: the disk that holds it
 * (and the catalog) can then never be overcommitted by sized volumes. A
 * file system without fallocate gets a sparse file, and only when its free
 * space covers the size now. what names the image in messages.
 */
static int allocate_image(int fd, const char *what, uint64_t bytes, struct berr *err)
{
	struct statvfs sv;

	if (fallocate(fd, 0, 0, (off_t)bytes) == 0)
		return 0;
	if (errno == ENOSPC)
		return berr_set(err, -ENOSPC, "not enough free space for %s: %llu MiB needed", what,
				(unsigned long long)(bytes >> 20));
	if (errno != EOPNOTSUPP)
		return berr_set(err, -errno, "cannot allocate %llu bytes for %s: %s", (unsigned long long)bytes, what,
				strerror(errno));
	if (fstatvfs(fd, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < bytes)
		return berr_set(err, -ENOSPC, "not enough free space for %s: %llu MiB needed, %llu MiB free", what,
				(unsigned long long)(bytes >> 20),
				(unsigned long long)(((uint64_t)sv.f_bavail * sv.f_frsize) >> 20));
	if (ftruncate(fd, (off_t)bytes) < 0)
		return berr_set(err, -errno, "cannot size %s to %llu bytes: %s", what, (unsigned long long)bytes,
				strerror(errno));
	return 0;
}

/* Make an allocated image of the volume's size and format it (without
 * discard, which would punch the blocks out again, and with ext4's inode
 * tables zeroed now: ext4 would zero them after the first mount, and a
 * loop device zeroes by punching holes). A leftover image of an
 * interrupted Create holds no data yet: it is replaced. */
static int create_image(struct local_ctx *lc, const struct be_volume *vol, struct berr *err)
{
	const char *fstype = opt_get(vol->opts, "fstype");
	char img[PATH_MAX], dir[PATH_MAX];
	uint64_t bytes;
	int fd, ret;

	ret = parse_size(opt_get(vol->opts, "size"), &bytes, err);
	if (ret < 0)
		return ret;
	snprintf(dir, sizeof(dir), "%s/" LOCAL_IMAGES, lc->root);
	ret = mkdir_p(dir, 0700);
	if (ret < 0)
		return berr_set(err, ret, "cannot create %s: %s", dir, strerror(-ret));
	image_path(lc, vol->name, img, sizeof(img));
	if (unlink(img) < 0 && errno != ENOENT)
		return berr_set(err, -errno, "cannot replace %s: %s", img, strerror(errno));
	fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return berr_set(err, -errno, "cannot create %s: %s", img, strerror(errno));
	ret = allocate_image(fd, img, bytes, err);
	if (ret == 0 && fsync(fd) < 0)
		ret = berr_set(err, -errno, "fsync of %s failed: %s", img, strerror(errno));
	CRASH_POINT("local.create.after-image");
	if (ret == 0) {
		const char *fs = fstype ? fstype : LOCAL_DEFAULT_FSTYPE;
		const char *user = opt_get(vol->opts, "mkfs-options");
		char mkopts[256];
		const char *args[] = { "mkfs", "--fstype", fs, "--mkfs-options", mkopts, img, NULL };

		/* the user's after ours: mkfs takes the last of a value */
		snprintf(mkopts, sizeof(mkopts), "%s %s",
			 strcmp(fs, "xfs") == 0 ? "-K" : "-E nodiscard,lazy_itable_init=0", user ? user : "");
		ret = helper_run(&lc->helper, args, err);
		CRASH_POINT("local.create.after-mkfs");
	}
	/* mkfs zeroes some ranges by punching holes where the file system
	 * cannot zero in place (tmpfs): allocate them again. */
	if (ret == 0)
		ret = allocate_image(fd, img, bytes, err);
	if (ret == 0 && fsync(fd) < 0)
		ret = berr_set(err, -errno, "fsync of %s failed: %s", img, strerror(errno));
	close(fd);
	if (ret == 0 && (ret = sync_parent(img)) < 0)
		berr_set(err, ret, "cannot make %s durable: %s", img, strerror(-ret));
	if (ret < 0)
		unlink(img);
	return ret;
}

static int be_local_mount(void *ctx, const struct be_volume *vol, char *path, size_t len, struct berr *err);
static int be_local_unmount(void *ctx, const struct be_volume *vol, struct berr *err);

/*
 * mount.ballast checks mount-options when it mounts: a new sized volume
 * given some is mounted once, so that Create refuses what every Mount
 * would. On failure its image is deleted (the volume is not made).
 */
static int try_mount_options(struct local_ctx *lc, const struct be_volume *vol, struct berr *err)
{
	char path[PATH_MAX];
	int ret;

	if (!opt_get(vol->opts, "mount-options"))
		return 0;
	ret = be_local_mount(lc, vol, path, sizeof(path), err);
	if (ret == 0)
		ret = be_local_unmount(lc, vol, err);
	if (ret < 0) {
		mount_target(lc, vol->name, path, sizeof(path));
		rmdir(path);
		image_path(lc, vol->name, path, sizeof(path));
		unlink(path);
	}
	return ret;
}

static int be_local_create(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct local_ctx *lc = ctx;
	int ret;

	if (!opt_get(vol->opts, "size"))
		return create_dir(lc, vol, err);
	ret = create_image(lc, vol, err);
	return ret < 0 ? ret : try_mount_options(lc, vol, err);
}

/* cp (coreutils) src to dst, bounded: owners, modes, times, xattrs and
 * holes kept, blocks shared where the file system can (reflink). */
static int copy_tree(const char *src, const char *dst, struct berr *err)
{
	const char *argv[] = { "cp", "-a", "--preserve=xattr", "--reflink=auto", "--sparse=always", "-T", "--", src,
			       dst,  NULL };
	char line[4 * BERR_MSG_MAX] = "";
	int status = 0, timeout = deadline_cap_s(LOCAL_COPY_MAX_S), ret;

	if (timeout == 0)
		return berr_set(err, -ETIMEDOUT, "no time left to copy %s", src);
	ret = run_bounded(argv, timeout, &status, line, sizeof(line));
	if (ret == -ETIMEDOUT)
		return berr_set(err, ret, "copying %s took longer than %d s; the copy was dropped", src, timeout);
	if (ret < 0)
		return berr_set(err, ret, "cannot run cp: %s", strerror(-ret));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return berr_set(err, -EIO, "cannot copy %s: %s", src, line[0] ? line : "cp failed");
	return 0;
}

/* Flush the file system holding path (what cp wrote). */
static int sync_fs_of(const char *path, struct berr *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || syncfs(fd) < 0)
		ret = berr_set(err, -errno, "cannot flush the copy %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

/* rm_rf of path, made durable (the fsync of the root shared when lc is
 * given: path is in the root): what a power cut brought back would
 * reappear in a new volume of the same name. A missing path is 0. */
static int remove_durably(struct local_ctx *lc, const char *path)
{
	struct stat st;
	int ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = rm_rf(path);
	if (ret < 0)
		return ret;
	return lc ? group_fsync(&lc->rootsync, lc->rootfd) : sync_parent(path);
}

/* --- snapshots ------------------------------------------------------------ */

/* <root>/.snapshots/<name>, and snap in it: <snap>.img for a sized volume,
 * the directory <snap> for a plain one. Work in progress is named
 * ".tmp-<snap>", which no snapshot name can be. */
static void snap_dir(const struct local_ctx *lc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" LOCAL_SNAPSHOTS "/%s", lc->root, name);
}

static void snap_path(const struct local_ctx *lc, const struct be_volume *vol, const char *snap, int tmp, char *buf,
		      size_t len)
{
	snprintf(buf, len, "%s/" LOCAL_SNAPSHOTS "/%s/%s%s%s", lc->root, vol->name, tmp ? ".tmp-" : "", snap,
		 opt_get(vol->opts, "size") ? ".img" : "");
}

/* Where a copy of vol (-o from=VOLUME[@SNAPSHOT]) comes from: the source
 * volume's image or directory, or its snapshot's. */
static int copy_source_path(struct local_ctx *lc, const struct be_volume *vol, const struct be_volume *from, char *buf,
			    size_t len, struct berr *err)
{
	const char *at = strchr(opt_get(vol->opts, "from") ?: "", '@');
	struct stat st;

	if (at)
		snap_path(lc, from, at + 1, 0, buf, len);
	else if (opt_get(from->opts, "size"))
		image_path(lc, from->name, buf, len);
	else
		volume_dir(lc, from->name, buf, len);
	if (stat(buf, &st) < 0)
		return at ? berr_set(err, -ENOENT, "volume %s has no snapshot %s", from->name, at + 1)
			  : berr_set(err, -ENOENT, "the data of volume %s (%s) is missing", from->name, buf);
	return 0;
}

/* Make a copied image durable: allocated whole when allocate (a volume's
 * image; a snapshot stays sparse), then fsynced. */
static int image_finish(const char *path, int allocate, struct berr *err)
{
	struct stat st;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		ret = berr_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
	else if (allocate)
		ret = allocate_image(fd, path, (uint64_t)st.st_size, err);
	if (ret == 0 && fsync(fd) < 0)
		ret = berr_set(err, -errno, "fsync of %s failed: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Copy src (an image when image, else a directory) to dst through the
 * temporary name tmp, then rename: dst appears whole or not at all. */
static int copy_whole(const char *src, const char *tmp, const char *dst, int image, int allocate, struct berr *err)
{
	int ret = rm_rf(tmp);

	if (ret < 0)
		return berr_set(err, ret, "cannot replace %s: %s", tmp, strerror(-ret));
	ret = copy_tree(src, tmp, err);
	CRASH_POINT("local.copy.after-copy");
	if (ret == 0)
		ret = image ? image_finish(tmp, allocate, err) : sync_fs_of(tmp, err);
	if (ret == 0 && rename(tmp, dst) < 0)
		ret = berr_set(err, -errno, "cannot rename %s: %s", tmp, strerror(errno));
	if (ret == 0 && (ret = sync_parent(dst)) < 0)
		berr_set(err, ret, "cannot make %s durable: %s", dst, strerror(-ret));
	if (ret < 0)
		rm_rf(tmp);
	return ret;
}

static int be_local_snapshot(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err)
{
	struct local_ctx *lc = ctx;
	char dir[PATH_MAX], src[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];
	int sized = opt_get(vol->opts, "size") != NULL, frozen = 0, ret;
	struct frozen fz;
	struct stat st;

	snap_dir(lc, vol->name, dir, sizeof(dir));
	snap_path(lc, vol, snap, 0, dst, sizeof(dst));
	snap_path(lc, vol, snap, 1, tmp, sizeof(tmp));
	if (lstat(dst, &st) == 0)
		return berr_set(err, -EEXIST, "volume %s already has a snapshot %s", vol->name, snap);
	ret = mkdir_p(dir, 0700);
	if (ret < 0)
		return berr_set(err, ret, "cannot create %s: %s", dir, strerror(-ret));
	if (sized)
		image_path(lc, vol->name, src, sizeof(src));
	else
		volume_dir(lc, vol->name, src, sizeof(src));
	mount_target(lc, vol->name, target, sizeof(target));
	if (sized && is_mountpoint(target) == 1) {
		ret = helper_freeze(&lc->helper, target, LOCAL_FREEZE_MAX_S, &fz, err);
		if (ret < 0)
			return ret;
		frozen = 1;
	}
	CRASH_POINT("local.snapshot.after-freeze");
	ret = copy_whole(src, tmp, dst, sized, 0, err);
	if (frozen) {
		struct berr terr = BERR_INIT;

		/* thawed before the copy ended: not consistent; dropped */
		if (helper_thaw(&lc->helper, &fz, &terr) < 0 && ret == 0) {
			rm_rf(dst);
			ret = berr_set(err, -ETIMEDOUT, "snapshot %s of %s dropped: %s", snap, vol->name, terr.msg);
		}
	}
	if (ret < 0)
		return ret;
	log_infox("volume %s: snapshot %s taken%s", vol->name, snap, frozen ? " (file system frozen)" : "");
	return 0;
}

/* Bytes allocated below path (a snapshot of a plain volume). */
static uint64_t tree_bytes;
static int add_bytes(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	tree_bytes += (uint64_t)st->st_blocks * 512;
	return 0;
}

static int be_local_snapshots(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err)
{
	static pthread_mutex_t walk = PTHREAD_MUTEX_INITIALIZER;
	struct local_ctx *lc = ctx;
	char dir[PATH_MAX], path[PATH_MAX * 2], when[40];
	struct dirent **names = NULL;
	int n, sized = opt_get(vol->opts, "size") != NULL;

	snap_dir(lc, vol->name, dir, sizeof(dir));
	*out = json_array();
	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0 && errno != ENOENT) {
		json_decref(*out);
		*out = NULL;
		return berr_set(err, -errno, "cannot read %s: %s", dir, strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		char snap[NAME_MAX + 1];
		struct stat st;
		uint64_t bytes;
		size_t l;

		snprintf(snap, sizeof(snap), "%s", names[i]->d_name);
		l = strlen(snap);
		if (sized && l > 4 && strcmp(snap + l - 4, ".img") == 0)
			snap[l - 4] = '\0';
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (snap[0] == '.' || validate_name(snap, NULL) < 0 || lstat(path, &st) < 0) {
			free(names[i]);
			continue;
		}
		if (sized) {
			bytes = (uint64_t)st.st_size;
		} else {
			pthread_mutex_lock(&walk);
			tree_bytes = 0;
			nftw(path, add_bytes, 16, FTW_PHYS | FTW_MOUNT);
			bytes = tree_bytes;
			pthread_mutex_unlock(&walk);
		}
		/* renamed into place when it was taken */
		rfc3339_format(st.st_ctime, when, sizeof(when));
		json_array_append_new(*out, json_pack("{s:s, s:I, s:s, s:[]}", "name", snap, "size_bytes",
						      (json_int_t)bytes, "created_at", when, "clones"));
		free(names[i]);
	}
	free(names);
	return 0;
}

static int be_local_snapshot_remove(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err)
{
	struct local_ctx *lc = ctx;
	char path[PATH_MAX];
	struct stat st;
	int ret;

	snap_path(lc, vol, snap, 0, path, sizeof(path));
	if (lstat(path, &st) < 0)
		return berr_set(err, -ENOENT, "volume %s has no snapshot %s", vol->name, snap);
	ret = remove_durably(NULL, path);
	if (ret < 0)
		return berr_set(err, ret, "cannot remove snapshot %s of %s: %s", snap, vol->name, strerror(-ret));
	log_infox("volume %s: snapshot %s removed", vol->name, snap);
	return 0;
}

/* ballastd calls it with no container using vol; a sized volume is also
 * unmounted then (Unmount of the last one). */
static int be_local_rollback(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err)
{
	struct local_ctx *lc = ctx;
	char src[PATH_MAX], tmp[PATH_MAX + 16], dst[PATH_MAX], target[PATH_MAX];
	int sized = opt_get(vol->opts, "size") != NULL, ret;
	struct stat st;

	snap_path(lc, vol, snap, 0, src, sizeof(src));
	if (lstat(src, &st) < 0)
		return berr_set(err, -ENOENT, "volume %s has no snapshot %s", vol->name, snap);
	mount_target(lc, vol->name, target, sizeof(target));
	if (sized && is_mountpoint(target) == 1)
		return berr_set(err, -EBUSY, "volume %s is still mounted on this host; unmount it first", vol->name);
	if (sized)
		image_path(lc, vol->name, dst, sizeof(dst));
	else
		volume_dir(lc, vol->name, dst, sizeof(dst));
	snprintf(tmp, sizeof(tmp), "%s.rollback", dst);
	if (sized)
		/* the image replaced in one rename */
		ret = copy_whole(src, tmp, dst, 1, 1, err);
	else {
		/* the copy and the live directory swapped in one rename, the
		 * old one then deleted */
		ret = rm_rf(tmp);
		if (ret == 0)
			ret = copy_tree(src, tmp, err);
		if (ret == 0)
			ret = sync_fs_of(tmp, err);
		if (ret == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_EXCHANGE) < 0)
			ret = berr_set(err, -errno, "cannot put snapshot %s in place of %s: %s", snap, dst,
				       strerror(errno));
		if (ret == 0 && (ret = sync_parent(dst)) < 0)
			berr_set(err, ret, "cannot make %s durable: %s", dst, strerror(-ret));
		rm_rf(tmp);
	}
	if (ret == 0)
		log_infox("volume %s: rolled back to snapshot %s", vol->name, snap);
	return ret;
}

/* A plain directory cannot be frozen: its snapshots are taken only when
 * no container uses it. */
static int be_local_freezable(void *ctx, const struct be_volume *vol)
{
	(void)ctx;
	return opt_get(vol->opts, "size") != NULL;
}

/* Remove keeps a volume with snapshots, naming them. */
static int be_local_remove_check(void *ctx, const struct be_volume *vol, struct berr *err)
{
	json_t *snaps = NULL;
	int ret;

	ret = be_local_snapshots(ctx, vol, &snaps, err);
	if (ret == 0)
		ret = refuse_snapshots(vol->name, snaps, err);
	json_decref(snaps);
	return ret;
}

static int be_local_create_copy(void *ctx, const struct be_volume *vol, const struct be_volume *from, struct berr *err)
{
	struct local_ctx *lc = ctx;
	char src[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX];
	int sized = opt_get(from->opts, "size") != NULL, ret;

	if (sized && strcmp(opt_get(from->opts, "fstype") ?: LOCAL_DEFAULT_FSTYPE, "xfs") == 0)
		/* the copy would share the file system's UUID, which XFS
		 * refuses to mount twice on one host */
		return berr_set(err, -ENOTSUP, "volume %s is xfs; copies are made of ext4 volumes only", from->name);
	ret = copy_source_path(lc, vol, from, src, sizeof(src), err);
	if (ret < 0)
		return ret;
	copy_tmp_path(lc, vol, tmp, sizeof(tmp));
	if (sized)
		image_path(lc, vol->name, dst, sizeof(dst));
	else
		volume_dir(lc, vol->name, dst, sizeof(dst));
	/* what an interrupted copy left under the name */
	ret = rm_rf(dst);
	if (ret < 0)
		return berr_set(err, ret, "cannot replace %s: %s", dst, strerror(-ret));
	ret = copy_whole(src, tmp, dst, sized, 1, err);
	return ret < 0 || !sized ? ret : try_mount_options(lc, vol, err);
}

static int be_local_unmount(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct local_ctx *lc = ctx;
	char target[PATH_MAX];
	int ret;

	if (!opt_get(vol->opts, "size"))
		return 0;
	mount_target(lc, vol->name, target, sizeof(target));
	if (access(target, F_OK) < 0)
		return 0;
	{
		const char *args[] = { "umount", target, NULL };

		ret = helper_run(&lc->helper, args, err);
	}
	if (ret == 0 && rmdir(target) < 0 && errno != ENOENT)
		log_warn("cannot remove mount point %s", target);
	return ret;
}

static int be_local_remove(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct local_ctx *lc = ctx;
	char path[PATH_MAX];
	int ret;

	/* what an interrupted copy or snapshot left (remove_check kept a
	 * volume with snapshots) */
	copy_tmp_path(lc, vol, path, sizeof(path));
	rm_rf(path);
	/* snapshots that came back after a power cut would be offered to
	 * a new volume of the same name */
	snap_dir(lc, vol->name, path, sizeof(path));
	ret = remove_durably(NULL, path);
	if (ret < 0)
		return berr_set(err, ret, "cannot delete %s: %s", path, strerror(-ret));
	if (opt_get(vol->opts, "size")) {
		ret = be_local_unmount(ctx, vol, err);
		if (ret < 0)
			return ret;
		image_path(lc, vol->name, path, sizeof(path));
		ret = remove_durably(NULL, path);
	} else {
		volume_dir(lc, vol->name, path, sizeof(path));
		ret = remove_durably(lc, path);
	}
	if (ret < 0)
		return berr_set(err, ret, "cannot delete %s: %s", path, strerror(-ret));
	return 0;
}

/*
 * Allocate img whole again if it has holes: an image made before its
 * inode tables were zeroed at Create had them punched out by ext4's lazy
 * init through the loop device. Without the space it is mounted all the
 * same, as before, with a warning.
 */
static void reallocate_image(const char *img, const char *name)
{
	struct berr aerr = BERR_INIT;
	struct stat st;
	int fd = open(img, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return; /* the mount says why */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size) {
		if (allocate_image(fd, img, (uint64_t)st.st_size, &aerr) < 0)
			log_warnx("volume %s: its image is not allocated whole: %s", name, aerr.msg);
		else if (fstat(fd, &st) == 0 && (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size)
			log_infox("volume %s: holes in its image allocated again", name);
		/* else a file system without fallocate: sparse, as at Create */
	}
	close(fd);
}

static int be_local_mount(void *ctx, const struct be_volume *vol, char *path, size_t len, struct berr *err)
{
	struct local_ctx *lc = ctx;
	const char *fstype = opt_get(vol->opts, "fstype");
	char target[PATH_MAX], img[PATH_MAX], data[PATH_MAX + 8];
	struct vol_perms perms;
	struct stat st;
	int ret;

	if (!opt_get(vol->opts, "size")) {
		volume_dir(lc, vol->name, path, len);
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			return berr_set(err, -ENOENT, "the directory of volume %s (%s) is missing", vol->name, path);
		return 0;
	}
	ret = parse_perms(vol->opts, &perms, err);
	if (ret < 0)
		return ret;
	image_path(lc, vol->name, img, sizeof(img));
	if (access(img, F_OK) < 0)
		return berr_set(err, -ENOENT, "the image of volume %s (%s) is missing", vol->name, img);
	reallocate_image(img, vol->name);
	mount_target(lc, vol->name, target, sizeof(target));
	ret = mkdir_p(lc->mounts, 0700);
	if (ret == 0 && mkdir(target, 0755) < 0 && errno != EEXIST)
		ret = -errno;
	if (ret < 0)
		return berr_set(err, ret, "cannot create mount point %s: %s", target, strerror(-ret));
	{
		const char *mopts = opt_get(vol->opts, "mount-options");
		const char *args[] = { "mount",	    "--fstype", fstype ? fstype : LOCAL_DEFAULT_FSTYPE,
				       "--options", mopts,	"--loop",
				       img,	    target,	NULL };

		if (!mopts) /* no --options */
			memmove(&args[3], &args[5], 4 * sizeof(args[0]));
		ret = helper_run(&lc->helper, args, err);
	}
	if (ret < 0) {
		struct berr ignored = BERR_INIT;

		/* mounted after all (mount.ballast died or hit its bound
		 * after the mount): no count will ever cover it */
		if (is_mountpoint(target) == 1)
			be_local_unmount(ctx, vol, &ignored);
		return ret;
	}
	CRASH_POINT("local.mount.after-mount");
	/* The data directory is made on first mount, so it gets the
	 * volume's owner and mode; later a user's chmod is left alone. */
	snprintf(data, sizeof(data), "%s/data", target);
	if (mkdir(data, 0700) == 0)
		ret = apply_perms(data, &perms, err);
	else if (errno != EEXIST)
		ret = berr_set(err, -errno, "cannot create %s: %s", data, strerror(errno));
	if (ret < 0) {
		struct berr ignored = BERR_INIT;

		be_local_unmount(ctx, vol, &ignored);
		return ret;
	}
	snprintf(path, len, "%s", data);
	return 0;
}

/*
 * Grow a sized volume's image to bytes and its file system with it: online
 * when mounted, else by mounting it once now, so that the next Mount finds
 * it full size. Plain directories have no size; shrinking is refused.
 */
static int be_local_resize(void *ctx, const struct be_volume *vol, uint64_t bytes, struct berr *err)
{
	struct local_ctx *lc = ctx;
	const char *fstype = opt_get(vol->opts, "fstype");
	char img[PATH_MAX], target[PATH_MAX], path[PATH_MAX];
	struct berr ignored = BERR_INIT;
	int mounted, ret;
	struct stat st;

	if (!opt_get(vol->opts, "size"))
		return berr_set(err, -ENOTSUP, "volume %s is a plain directory: it has no size to grow", vol->name);
	image_path(lc, vol->name, img, sizeof(img));
	if (stat(img, &st) < 0)
		return berr_set(err, -errno, "the image of volume %s (%s): %s", vol->name, img, strerror(errno));
	if (bytes < (uint64_t)st.st_size)
		return berr_set(err, -EINVAL, "volume %s is %lld bytes; shrinking is refused", vol->name,
				(long long)st.st_size);
	{
		int fd = open(img, O_WRONLY | O_CLOEXEC);

		if (fd < 0)
			return berr_set(err, -errno, "cannot open %s: %s", img, strerror(errno));
		ret = allocate_image(fd, img, bytes, err);
		close(fd);
		if (ret < 0)
			return ret;
	}
	mount_target(lc, vol->name, target, sizeof(target));
	mounted = is_mountpoint(target) == 1;
	if (!mounted) {
		ret = be_local_mount(ctx, vol, path, sizeof(path), err);
		if (ret < 0)
			return ret;
	}
	{
		const char *args[] = { "grow", "--fstype", fstype ? fstype : LOCAL_DEFAULT_FSTYPE, target, NULL };

		ret = helper_run(&lc->helper, args, err);
	}
	if (!mounted) {
		int uret = be_local_unmount(ctx, vol, ret < 0 ? &ignored : err);

		if (ret == 0)
			ret = uret;
	}
	return ret;
}

static int be_local_is_mounted(void *ctx, const struct be_volume *vol)
{
	struct local_ctx *lc = ctx;
	char target[PATH_MAX];

	if (!opt_get(vol->opts, "size"))
		return -ENOTSUP; /* a directory is never "mounted" */
	mount_target(lc, vol->name, target, sizeof(target));
	return is_mountpoint(target);
}

static json_t *be_local_status(void *ctx, const struct be_volume *vol)
{
	struct local_ctx *lc = ctx;
	char path[PATH_MAX];

	if (opt_get(vol->opts, "size")) {
		const char *fstype = opt_get(vol->opts, "fstype");

		image_path(lc, vol->name, path, sizeof(path));
		return json_pack("{s:s, s:s}", "image", path, "fstype", fstype ? fstype : LOCAL_DEFAULT_FSTYPE);
	}
	volume_dir(lc, vol->name, path, sizeof(path));
	return json_pack("{s:s}", "path", path);
}

/* Is an executable named tool in the directories mount.ballast searches? */
static int find_tool(const char *tool, char *path, size_t len)
{
	static const char *const dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, len, "%s/%s", dirs[i], tool);
		if (access(path, X_OK) == 0)
			return 1;
	}
	return 0;
}

static json_t *be_local_check(void *ctx)
{
	static const char *const tools[] = { "mkfs.ext4", "mkfs.xfs" };
	struct local_ctx *lc = ctx;
	json_t *checks = json_array();
	char probe[PATH_MAX], path[PATH_MAX];
	int fd;

	snprintf(probe, sizeof(probe), "%s/.doctor-XXXXXX", lc->root);
	fd = mkstemp(probe);
	if (fd >= 0) {
		close(fd);
		unlink(probe);
		backend_check_add(checks, "local root", 1, "%s is writable", lc->root);
	} else {
		backend_check_add(checks, "local root", 0, "cannot write in %s: %s", lc->root, strerror(errno));
	}
	if (access(lc->helper.path, X_OK) == 0)
		backend_check_add(checks, "mount helper", 1, "%s", lc->helper.path);
	else
		backend_check_add(checks, "mount helper", 0, "%s: %s", lc->helper.path, strerror(errno));
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		if (find_tool(tools[i], path, sizeof(path)))
			backend_check_add(checks, tools[i], 1, "%s (sized volumes)", path);
		else
			backend_check_add(checks, tools[i], 0, "not found: sized %s volumes cannot be made",
					  strcmp(tools[i], "mkfs.xfs") == 0 ? "xfs" : "ext4");
	}
	return checks;
}

const struct backend_ops be_local_ops = {
	.name = "local",
	.options = local_opts,
	.config_keys = local_config_keys,
	.init = be_local_init,
	.fini = be_local_fini,
	.validate_opts = be_local_validate_opts,
	.create = be_local_create,
	.create_copy = be_local_create_copy,
	.remove_check = be_local_remove_check,
	.remove = be_local_remove,
	.mount = be_local_mount,
	.unmount = be_local_unmount,
	.is_mounted = be_local_is_mounted,
	.status = be_local_status,
	.status_fixed = 1,
	.check = be_local_check,
	.resize = be_local_resize,
	.snapshot = be_local_snapshot,
	.snapshots = be_local_snapshots,
	.snapshot_remove = be_local_snapshot_remove,
	.rollback = be_local_rollback,
	.freezable = be_local_freezable,
};
