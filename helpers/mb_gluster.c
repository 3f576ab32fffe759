/*
 * mb_gluster.c - mount.ballast's GlusterFS (FUSE) mounts: mount through
 * mount.glusterfs, unmount without touching a possibly hung target.
 */
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "mount_ballast.h"

/* --- GlusterFS (FUSE) mounts --------------------------------------------- */

/*
 * SOURCE is HOST:/VOLUME[/DIR...] from ballastd's gluster backend; the only
 * option is backup-volfile-servers=H1:H2, and nosuid,nodev are always added. The Gluster client
 * (mount.glusterfs, then the glusterfs FUSE daemon) logs to
 * <mounts>/.<name>.glusterfs.log, whose last error line is the reason we
 * give when the mount fails. A FUSE mount whose server is gone hangs every
 * stat of its root, so unmounting one never looks at the target itself.
 */
#define GLUSTER_FSTYPE "fuse.glusterfs"
#define GLUSTER_SOURCE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:/"
#define GLUSTER_HOST_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:"
#define GLUSTER_BACKUP_OPT "backup-volfile-servers="
#define GLUSTER_FORCED_OPTS "nosuid,nodev"

bool is_gluster(const char *fstype)
{
	return fstype && strcmp(fstype, "glusterfs") == 0;
}

int check_gluster_source(const char *src, char *why, size_t len)
{
	const char *sep = strstr(src, ":/");

	if (!sep || sep == src || strspn(src, GLUSTER_SOURCE_CHARS) != strlen(src) ||
	    strspn(src, GLUSTER_HOST_CHARS) < (size_t)(sep - src) || strstr(sep + 1, "//") || strstr(sep + 1, "/../") ||
	    strstr(sep + 1, "/./") || !sep[2] || src[strlen(src) - 1] == '/' ||
	    (strlen(src) >= 3 && strcmp(src + strlen(src) - 3, "/..") == 0))
		return why_set(why, len, -EINVAL, "invalid gluster source '%.128s' (expected HOST:/VOLUME/DIR)", src);
	return 0;
}

int build_gluster_options(const char *opts, const char *log, char *out, size_t len, char *why, size_t whylen)
{
	size_t used = 0;

	if (opts && *opts &&
	    (strncmp(opts, GLUSTER_BACKUP_OPT, strlen(GLUSTER_BACKUP_OPT)) != 0 || !opts[strlen(GLUSTER_BACKUP_OPT)] ||
	     strspn(opts + strlen(GLUSTER_BACKUP_OPT), GLUSTER_HOST_CHARS) !=
		     strlen(opts + strlen(GLUSTER_BACKUP_OPT))))
		return why_set(why, whylen, -EINVAL,
			       "mount option '%.128s' is not allowed for glusterfs (allowed: " GLUSTER_BACKUP_OPT
			       "HOST:HOST...)",
			       opts);
	appendf(out, len, &used, "log-file=%s", log);
	if (opts && *opts)
		appendf(out, len, &used, ",%s", opts);
	/* As on the block file systems: no set-uid program nor device node
	 * in a volume takes effect (mount.glusterfs hands both to FUSE). */
	appendf(out, len, &used, "," GLUSTER_FORCED_OPTS);
	if (used >= len - 1)
		return why_set(why, whylen, -E2BIG, "glusterfs mount options are too long");
	return 0;
}

char *gluster_log_message(char *line)
{
	char *msg;

	if (!strstr(line, "] E ["))
		return NULL;
	msg = strrchr(line, ']');
	msg = msg ? msg + 1 : line;
	msg += strspn(msg, " 0-");
	msg[strcspn(msg, "\n")] = '\0';
	return msg;
}

/* The last error line of the Gluster client's log ("[time] E [...] msg"),
 * reduced to its message, into buf; "" if there is none. */
static void gluster_log_error(const char *log, char *buf, size_t len)
{
	char line[1024], *msg;
	FILE *f = fopen(log, "re");

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		msg = gluster_log_message(line);
		if (msg)
			snprintf(buf, len, "%s", msg);
	}
	fclose(f);
}

/*
 * Whether target shows in the mount table already: 0 with *mounted false
 * when nothing is mounted there; 0 with *mounted true when source's
 * glusterfs volume is (the mount is done); -EBUSY when something else is
 * in the way, or -errno when the table cannot be read (reason recorded).
 */
static int gluster_mounted_already(const char *target, const char *source, bool *mounted)
{
	struct libmnt_table *tb;
	struct libmnt_fs *mnt;
	int rc;

	*mounted = false;
	rc = load_mount_table(&tb);
	if (rc)
		return rc;
	mnt = find_mount(tb, target);
	if (mnt) {
		*mounted = true;
		/* The same volume is success, anything else is in the way. */
		if (strcmp(mnt_fs_get_fstype(mnt) ?: "", GLUSTER_FSTYPE) != 0 ||
		    strcmp(mnt_fs_get_source(mnt) ?: "", source) != 0)
			rc = fail(EBUSY, EXIT_FAILED, "%s is already a mountpoint of %s", target,
				  mnt_fs_get_source(mnt) ?: "something else");
	}
	mnt_unref_table(tb);
	return rc;
}

/*
 * After mount.glusterfs exited with rc (0 or -EIO): the client daemonizes,
 * so believe the mount table, not its status; when the table cannot be
 * read, rc stands. On failure the reason is the last error of its log.
 */
static int gluster_mount_result(const char *source, const char *target, const char *log, int rc)
{
	struct libmnt_table *tb;
	struct libmnt_fs *mnt;
	char why[512];

	if (load_mount_table(&tb) == 0) {
		mnt = find_mount(tb, target);
		if (mnt && strcmp(mnt_fs_get_fstype(mnt) ?: "", GLUSTER_FSTYPE) == 0)
			rc = 0;
		else
			rc = -EIO;
		mnt_unref_table(tb);
	}
	if (!rc)
		return 0;
	gluster_log_error(log, why, sizeof(why));
	return fail(EIO, EXIT_FAILED, "cannot mount %s: %s", source,
		    why[0] ? why : "the glusterfs client failed without saying why");
}

int cmd_mount_gluster(const struct cmdline *cl)
{
	const char *source = cl->args[0];
	char options[OPTS_MAX + PATH_MAX], target[PATH_MAX], log[PATH_MAX + 32], why[MB_MSG_MAX];
	enum target_found found = TARGET_FOUND;
	struct arglist al = { .argc = 0 };
	struct mounts_root root;
	bool mounted;
	int rc, fd;

	if (cl->loop)
		return fail(EINVAL, EXIT_REFUSED, "--loop does not apply to glusterfs");
	rc = check_gluster_source(source, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	rc = find_target(cl->state_dir, cl->args[1], TARGET_CREATE, &root, target, &found);
	if (rc)
		return rc;
	snprintf(log, sizeof(log), "%s/.%s.glusterfs.log", root.path, strrchr(target, '/') + 1);
	rc = build_gluster_options(cl->options, log, options, sizeof(options), why, sizeof(why));
	if (rc) {
		rc = refuse(rc, why);
		goto out_rmdir_target;
	}
	rc = gluster_mounted_already(target, source, &mounted);
	if (rc || mounted)
		goto out_rmdir_target;
	/* A fresh log, so that its last error is this mount's. */
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		close(fd);
	rc = arg_add(&al, "mount.glusterfs") ?: arg_add(&al, source) ?: arg_add(&al, target) ?: arg_add(&al, "-o") ?:
	     arg_add(&al, options);
	if (rc)
		goto out_rmdir_target;
	rc = run_tool_quiet(&al, "mount.glusterfs");
	if (!rc || rc == -EIO)
		rc = gluster_mount_result(source, target, log, rc);
out_rmdir_target:
	if (rc && found == TARGET_CREATED)
		rmdir(target);
	return rc;
}

/*
 * If TARGET is a glusterfs FUSE mount, unmount it without ever looking at
 * the target itself (its root hangs when the server is gone): the parent
 * is resolved, the target is found by name in the mount table. *done says
 * whether it was one. Returns 0 or -errno (reason recorded).
 */
int umount_gluster(const struct mounts_root *root, const char *target, bool *done)
{
	char dir[PATH_MAX], parent[PATH_MAX], cand[PATH_MAX], base[NAME_MAX + 1];
	struct libmnt_table *tb;
	struct libmnt_fs *mnt;
	bool is_fuse;
	int rc, e;

	*done = false;
	/* Whatever is wrong with target, resolve_target gives the reason. */
	if (target[0] != '/' || strlen(target) >= PATH_MAX || split_target(target, dir, base) ||
	    strcmp(dir, "/") == 0 || !realpath(dir, parent))
		return 0;
	if ((size_t)snprintf(cand, sizeof(cand), "%s/%s", parent, base) >= sizeof(cand))
		return 0;
	rc = load_mount_table(&tb);
	if (rc)
		return rc;
	mnt = find_mount(tb, cand);
	is_fuse = mnt && strcmp(mnt_fs_get_fstype(mnt) ?: "", GLUSTER_FSTYPE) == 0;
	mnt_unref_table(tb);
	if (!is_fuse)
		return 0;
	rc = check_under_root(root, target, cand);
	if (rc)
		return rc;
	*done = true;
	if (umount2(cand, UMOUNT_NOFOLLOW) == 0)
		return 0;
	e = errno;
	if (e == EBUSY && umount2(cand, UMOUNT_NOFOLLOW | MNT_DETACH) == 0)
		return 0;
	return fail(e, EXIT_FAILED, "cannot unmount %s: %s", cand, strerror(e));
}
