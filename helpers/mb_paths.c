/*
 * mb_paths.c - mount.ballast's paths and mount table: the mounts directory
 * everything happens under, resolving a target without following a
 * symlink out of it, checking a source, and reading the mount table and
 * loop devices.
 */
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mount_ballast.h"

/* --- Paths --------------------------------------------------------------- */

int check_target_path(const char *target, char *why, size_t len)
{
	if (target[0] != '/')
		return why_set(why, len, -EINVAL, "target %.256s is not an absolute path", target);
	if (strlen(target) >= PATH_MAX)
		return why_set(why, len, -ENAMETOOLONG, "target path too long");
	return 0;
}

int split_target(const char *target, char *dir, char *base)
{
	size_t len;
	char *slash;

	strcpy(dir, target);
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return -EINVAL;
	if (strlen(slash + 1) > NAME_MAX)
		return -ENAMETOOLONG;
	strcpy(base, slash + 1);
	if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -EINVAL;
	/* Cut dir to the parent; for "/x" that is "/" itself. */
	slash[slash == dir] = '\0';
	return 0;
}

bool path_under_root(const char *root, const char *real)
{
	size_t len = strlen(root);

	return strncmp(real, root, len) == 0 && real[len] == '/' && real[len + 1] != '\0';
}

int check_source_mode(const char *source, mode_t want, bool loop, mode_t mode, char *why, size_t len)
{
	if (want == 0 && !S_ISREG(mode) && !S_ISBLK(mode))
		return why_set(why, len, -EINVAL, "source %s is neither a regular file nor a block device", source);
	if (want == S_IFREG && !S_ISREG(mode))
		return why_set(why, len, -EINVAL, "source %s is not a regular file (%s)", source,
			       loop ? "--loop needs an image file" : "expected an image file");
	if (want == S_IFBLK && !S_ISBLK(mode))
		return why_set(why, len, -EINVAL, "source %s is not a block device (use --loop for an image file)",
			       source);
	return 0;
}

/*
 * Find <state_dir>/mounts, the only directory under which anything is
 * mounted, unmounted or grown. The state directory is resolved (it may be
 * a symlink: /var/lib/ballast -> /data/ballast); mounts itself must be a
 * real directory, so that no single symlink can redirect all targets.
 * ballastd creates it; we do not. Returns 0 or -errno (reason recorded).
 */
int find_mounts_root(const char *state_dir, struct mounts_root *root)
{
	char real[PATH_MAX];
	struct stat st;
	int n, e;

	if (!realpath(state_dir, real)) {
		e = errno;
		return fail(e, EXIT_REFUSED, "state directory %s: %s", state_dir, strerror(e));
	}
	n = snprintf(root->path, sizeof(root->path), "%s/mounts", strcmp(real, "/") ? real : "");
	if (n < 0 || (size_t)n >= sizeof(root->path))
		return fail(ENAMETOOLONG, EXIT_REFUSED, "state directory %s: path too long", state_dir);
	if (lstat(root->path, &st) < 0) {
		e = errno;
		return fail(e, EXIT_REFUSED, "mounts directory %s: %s", root->path, strerror(e));
	}
	if (!S_ISDIR(st.st_mode))
		return fail(ENOTDIR, EXIT_REFUSED, "mounts directory %s is not a directory", root->path);
	root->dev = st.st_dev;
	return 0;
}

/*
 * Check that the resolved path real lies strictly under root, and that its
 * parent directory is on root's own filesystem. The second check matters
 * because directories inside a mounted volume are writable by containers:
 * a target there could be swapped for a symlink between our check and the
 * mount. Returns 0 or -EPERM (reason names target, as the user gave it).
 */
int check_under_root(const struct mounts_root *root, const char *target, const char *real)
{
	char parent[PATH_MAX];
	struct stat st;

	if (!path_under_root(root->path, real)) {
		if (strcmp(real, target) == 0)
			return fail(EPERM, EXIT_REFUSED, "target %s is not under %s", target, root->path);
		return fail(EPERM, EXIT_REFUSED, "target %s (resolved to %s) is not under %s", target, real,
			    root->path);
	}
	strcpy(parent, real);
	*strrchr(parent, '/') = '\0';
	if (stat(parent, &st) < 0 || st.st_dev != root->dev)
		return fail(EPERM, EXIT_REFUSED, "target %s is inside another mounted filesystem, not directly in %s",
			    target, root->path);
	return 0;
}

/*
 * For a target that does not exist: resolve its parent (which must exist)
 * and write parent/basename to out. A basename that exists after all (a
 * dangling symlink) is refused: we never create through a symlink.
 * Returns 0 or -errno (reason recorded).
 */
static int resolve_missing(const char *target, char *out)
{
	char buf[PATH_MAX], parent[PATH_MAX], base[NAME_MAX + 1];
	struct stat st;
	int n, e;

	n = split_target(target, buf, base);
	if (n == -ENAMETOOLONG)
		return fail(ENAMETOOLONG, EXIT_REFUSED, "target %s: name too long", target);
	if (n)
		return fail(EINVAL, EXIT_REFUSED, "target %s does not name a directory", target);
	if (!realpath(buf, parent)) {
		e = errno;
		return fail(e, EXIT_REFUSED, "parent directory of target %s: %s", target, strerror(e));
	}
	n = snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "", base);
	if (n < 0 || n >= PATH_MAX)
		return fail(ENAMETOOLONG, EXIT_REFUSED, "target %s: path too long", target);
	if (lstat(out, &st) == 0)
		return fail(ELOOP, EXIT_REFUSED, "target %s is a dangling symlink", target);
	return 0;
}

/*
 * Resolve the user's target to the real directory it names (written to
 * out, PATH_MAX bytes) and check that it is strictly under root; create it
 * or accept its absence as mode says. *found says which happened, so that
 * a caller can remove a directory it created when the mount fails.
 * Returns 0 or -errno (reason recorded; refusals exit 1).
 */
int resolve_target(const struct mounts_root *root, const char *target, enum target_mode mode, char *out,
		   enum target_found *found)
{
	char why[MB_MSG_MAX];
	struct stat st;
	bool exists;
	int rc, e;

	rc = check_target_path(target, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	exists = realpath(target, out) != NULL;
	if (!exists) {
		e = errno;
		if (e != ENOENT)
			return fail(e, EXIT_REFUSED, "target %s: %s", target, strerror(e));
		if (mode == TARGET_EXISTING)
			return fail(e, EXIT_REFUSED, "target %s does not exist", target);
		rc = resolve_missing(target, out);
		if (rc)
			return rc;
	}
	rc = check_under_root(root, target, out);
	if (rc)
		return rc;

	if (exists) {
		if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
			return fail(ENOTDIR, EXIT_REFUSED, "target %s is not a directory", target);
		*found = TARGET_FOUND;
		return 0;
	}
	if (mode == TARGET_MAY_BE_MISSING) {
		*found = TARGET_MISSING;
		return 0;
	}
	if (mkdir(out, 0755) == 0) {
		*found = TARGET_CREATED;
		return 0;
	}
	e = errno;
	/* Lost a race with another creator: fine if it made a directory. */
	if (e == EEXIST && lstat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
		*found = TARGET_FOUND;
		return 0;
	}
	return fail(e, EXIT_FAILED, "cannot create target %s: %s", out, strerror(e));
}

int find_target(const char *state_dir, const char *target, enum target_mode mode, struct mounts_root *root, char *out,
		enum target_found *found)
{
	int rc;

	rc = find_mounts_root(state_dir, root);
	if (!rc)
		rc = resolve_target(root, target, mode, out, found);
	return rc;
}

/*
 * Check that source is an absolute path to an existing regular file (when
 * want is S_IFREG), block device (S_IFBLK), or either (0); fill *st.
 * Symlinks are followed: /dev/disk/by-id/... are symlinks.
 */
int check_source(const char *source, mode_t want, bool loop, struct stat *st)
{
	char why[MB_MSG_MAX];
	int e, rc;

	if (source[0] != '/')
		return fail(EINVAL, EXIT_REFUSED, "source %.256s is not an absolute path", source);
	if (stat(source, st) < 0) {
		e = errno;
		if (e == ENOENT)
			return fail(e, EXIT_REFUSED, "source %s does not exist", source);
		return fail(e, EXIT_REFUSED, "source %s: %s", source, strerror(e));
	}
	rc = check_source_mode(source, want, loop, st->st_mode, why, sizeof(why));
	return rc ? refuse(rc, why) : 0;
}

/* --- Mount table and loop devices ---------------------------------------- */

/*
 * Read the first line of sysfs attribute attr of block device devno into
 * buf. -ENOENT means there is no such attribute: for "loop/..." the device
 * is not an attached loop device. Returns 0 or -errno.
 */
int read_blockdev_attr(dev_t devno, const char *attr, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s", major(devno), minor(devno), attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		rc = -errno;
		goto out_close_fd;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
out_close_fd:
	close(fd);
	return rc;
}

/* Whether devno is an attached loop device. */
bool is_loop(dev_t devno)
{
	char buf[PATH_MAX + 16];

	return devno && read_blockdev_attr(devno, "loop/backing_file", buf, sizeof(buf)) == 0;
}

/* Parse /proc/self/mountinfo into *tb. Returns 0 or -errno. */
int load_mount_table(struct libmnt_table **tb)
{
	*tb = mnt_new_table_from_file(MOUNTINFO);
	if (!*tb)
		return fail(errno ? errno : ENOMEM, EXIT_FAILED, "cannot read %s", MOUNTINFO);
	return 0;
}

/*
 * The topmost mount on target (a resolved path) in tb, or NULL. Backward,
 * because when mounts are stacked the last one listed is the visible one.
 */
struct libmnt_fs *find_mount(struct libmnt_table *tb, const char *target)
{
	return mnt_table_find_target(tb, target, MNT_ITER_BACKWARD);
}

/*
 * Open the device of mount table entry fs, checking that the path the table
 * names really is that device (it may not be: the table records the name
 * used at mount time). Writes the fd to *fd. Returns 0 or -ENODEV/-errno.
 */
int open_mounted_device(struct libmnt_fs *fs, int flags, int *fd)
{
	const char *path = mnt_fs_get_srcpath(fs);
	struct stat st;
	int rc = 0;

	if (!path || path[0] != '/')
		return -ENODEV;
	*fd = open(path, flags | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != mnt_fs_get_devno(fs)) {
		rc = -ENODEV;
		goto out_close_fd;
	}
	return 0;
out_close_fd:
	close(*fd);
	*fd = -1;
	return rc;
}

/*
 * Whether mount table entry fs is a mount of the source stat'ed in *src:
 * the same block device or, with loop, a loop device whose backing file is
 * source. Device and inode numbers (LOOP_GET_STATUS64, as losetup does)
 * make the answer independent of how either path was spelled: symlinks,
 * bind mounts, /dev/mapper/x versus /dev/dm-N. Returns 1, 0 or -errno.
 */
int mount_is_of(struct libmnt_fs *fs, const struct stat *src, bool loop)
{
	dev_t devno = mnt_fs_get_devno(fs);
	struct loop_info64 info;
	int fd, rc;

	if (!loop)
		return S_ISBLK(src->st_mode) && devno && src->st_rdev == devno;
	if (!is_loop(devno))
		return 0;
	rc = open_mounted_device(fs, O_RDONLY, &fd);
	if (rc)
		return rc == -ENODEV ? 0 : rc;
	if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0) {
		rc = errno == ENXIO ? 0 : -errno;
		goto out_close_fd;
	}
	rc = info.lo_device == src->st_dev && info.lo_inode == src->st_ino && info.lo_offset == 0;
out_close_fd:
	close(fd);
	return rc;
}

/*
 * Describe the source of mount table entry fs. For messages: the device,
 * and for a loop device the file behind it. For status (file_only): what
 * `mount` was given, i.e. the backing file of a loop device that mount
 * --loop attached (autoclear), the device otherwise.
 */
void describe_source(struct libmnt_fs *fs, bool file_only, char *buf, size_t len)
{
	const char *src = mnt_fs_get_source(fs);
	dev_t devno = mnt_fs_get_devno(fs);
	char backing[PATH_MAX + 16], flag[8];

	if (!src)
		src = "none";
	if (read_blockdev_attr(devno, "loop/backing_file", backing, sizeof(backing)) != 0)
		snprintf(buf, len, "%s", src);
	else if (!file_only)
		snprintf(buf, len, "%s (loop device for %s)", src, backing);
	else if (read_blockdev_attr(devno, "loop/autoclear", flag, sizeof(flag)) == 0 && strcmp(flag, "1") == 0)
		snprintf(buf, len, "%s", backing);
	else
		snprintf(buf, len, "%s", src);
}
