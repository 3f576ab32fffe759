/*
 * mb_fs.c - mount.ballast on block file systems (ext4, xfs): probing for
 * what a device holds, mkfs, mount and umount through libmount (glusterfs
 * is passed on to mb_gluster.c), growing, and status.
 */
#include <blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "mount_ballast.h"
#include "timeutil.h"

/* How long umount waits for an autoclear loop device to go away. */
#define LOOP_DETACH_WAIT_MS 5000
/* Stacked mounts umount removes before giving up. */
#define UMOUNT_MAX_LAYERS 8

/* --- Probing ------------------------------------------------------------- */

/*
 * Probe fd (path names it in messages) for filesystem and other superblocks
 * (LVM, RAID, LUKS, swap) and, with partitions, partition tables. Returns 1
 * when something was found (described in *sig), 0 when nothing was, or
 * -errno (reason recorded).
 */
static int probe_signatures(int fd, const char *path, bool partitions, struct signature *sig)
{
	const char *v;
	blkid_probe pr;
	int rc;

	memset(sig, 0, sizeof(*sig));
	pr = blkid_new_probe();
	if (!pr)
		return fail(ENOMEM, EXIT_FAILED, "cannot probe %s: out of memory", path);
	if (blkid_probe_set_device(pr, fd, 0, 0) != 0) {
		rc = fail(EIO, EXIT_FAILED, "cannot probe %s", path);
		goto out_free_probe;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID | BLKID_SUBLKS_USAGE);
	blkid_probe_enable_partitions(pr, partitions);
	if (partitions)
		blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);

	rc = blkid_do_safeprobe(pr);
	if (rc == 1) {
		rc = 0;
	} else if (rc == -2) {
		sig->ambiguous = true;
		rc = 1;
	} else if (rc == 0) {
		if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0) {
			snprintf(sig->type, sizeof(sig->type), "%s", v);
		} else if (blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0) {
			snprintf(sig->type, sizeof(sig->type), "%s", v);
			sig->partition_table = true;
		} else {
			snprintf(sig->type, sizeof(sig->type), "unknown");
		}
		if (blkid_probe_lookup_value(pr, "UUID", &v, NULL) == 0)
			snprintf(sig->uuid, sizeof(sig->uuid), "%s", v);
		if (blkid_probe_lookup_value(pr, "USAGE", &v, NULL) == 0)
			snprintf(sig->usage, sizeof(sig->usage), "%s", v);
		rc = 1;
	} else {
		rc = fail(EIO, EXIT_FAILED, "cannot probe %s for existing data", path);
	}
out_free_probe:
	blkid_free_probe(pr);
	return rc;
}

const char *article(const char *word)
{
	return strchr("aeiouxAEIOU", word[0]) && word[0] ? "an" : "a";
}

int existing_data_message(const char *source, const struct signature *sig, char *why, size_t len)
{
	if (sig->ambiguous)
		return why_set(why, len, -EEXIST, "%s already holds several conflicting signatures; refusing to format",
			       source);
	if (sig->partition_table)
		return why_set(why, len, -EEXIST, "%s already holds %s %s partition table; refusing to format", source,
			       article(sig->type), sig->type);
	return why_set(why, len, -EEXIST, "%s already holds %s %s %s%s%s%s; refusing to format", source,
		       article(sig->type), sig->type,
		       strcmp(sig->usage, "filesystem") == 0 ? "filesystem" : "signature",
		       sig->uuid[0] ? " (UUID " : "", sig->uuid, sig->uuid[0] ? ")" : "");
}

/*
 * Check that source holds a filesystem of type fstype before mounting it:
 * the kernel would only say "wrong fs type, bad option, bad superblock".
 * An inconclusive probe is left for the kernel to judge.
 */
static int check_source_fstype(const char *source, const char *fstype)
{
	struct signature sig;
	int fd, rc;

	fd = open(source, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, EXIT_FAILED, "cannot open %s: %s", source, strerror(errno));
	rc = probe_signatures(fd, source, false, &sig);
	if (rc < 0)
		goto out_close_fd;
	if (rc == 0)
		rc = fail(ENOENT, EXIT_FAILED, "%s holds no filesystem (expected %s)", source, fstype);
	else if (!sig.ambiguous && strcmp(sig.type, fstype) != 0)
		rc = fail(EINVAL, EXIT_FAILED, "%s holds %s %s %s, not %s", source, article(sig.type), sig.type,
			  strcmp(sig.usage, "filesystem") == 0 ? "filesystem" : "signature", fstype);
	else
		rc = 0;
out_close_fd:
	close(fd);
	return rc;
}

/* --- libmount ------------------------------------------------------------ */

/*
 * A libmount context with the settings every operation wants: no
 * /sbin/mount.<type> or umount.<type> helpers (they would run as root but
 * outside our checks) and no utab writes (nothing needs them, and /run may
 * be read-only in a container). Returns NULL when out of memory.
 */
static struct libmnt_context *new_context(void)
{
	struct libmnt_context *cxt = mnt_new_context();

	if (!cxt)
		return NULL;
	if (mnt_context_disable_helpers(cxt, 1) != 0 || mnt_context_disable_mtab(cxt, 1) != 0) {
		mnt_free_context(cxt);
		return NULL;
	}
	return cxt;
}

/*
 * The errno and message for a failed libmount call rc on cxt: libmount's
 * explanation of what the kernel said (it names the device), else strerror.
 */
static int context_error(struct libmnt_context *cxt, int rc, char *msg, size_t len)
{
	int err;

	msg[0] = '\0';
	mnt_context_get_excode(cxt, rc, msg, len);
	err = mnt_context_get_syscall_errno(cxt);
	if (err <= 0)
		err = rc < 0 ? -rc : EIO;
	if (!msg[0])
		snprintf(msg, len, "%s", strerror(err));
	return err;
}

/*
 * Mount source on target with libmount; options are complete (validated,
 * with nosuid,nodev and loop added). With loop, libmount attaches a loop
 * device with autoclear, so that the kernel detaches it at umount.
 */
static int do_mount(const char *source, const char *target, const char *fstype, const char *options)
{
	struct libmnt_context *cxt;
	char msg[512];
	int rc, err;

	cxt = new_context();
	if (!cxt)
		return fail(ENOMEM, EXIT_FAILED, "cannot mount %s: out of memory", source);
	if (mnt_context_set_source(cxt, source) != 0 || mnt_context_set_target(cxt, target) != 0 ||
	    mnt_context_set_fstype(cxt, fstype) != 0 || mnt_context_set_options(cxt, options) != 0) {
		rc = fail(ENOMEM, EXIT_FAILED, "cannot mount %s: out of memory", source);
		goto out_free_ctx;
	}
	rc = mnt_context_mount(cxt);
	if (mnt_context_get_excode(cxt, rc, NULL, 0) == MNT_EX_SUCCESS) {
		rc = 0;
		goto out_free_ctx;
	}
	err = context_error(cxt, rc, msg, sizeof(msg));
	rc = fail(err, EXIT_FAILED, "cannot mount %s on %s: %s", source, target, msg);
out_free_ctx:
	mnt_free_context(cxt);
	return rc;
}

/* Unmount the topmost mount on target with libmount. */
static int do_umount(const char *target)
{
	struct libmnt_context *cxt;
	char msg[512];
	int rc, err;

	cxt = new_context();
	if (!cxt)
		return fail(ENOMEM, EXIT_FAILED, "cannot unmount %s: out of memory", target);
	if (mnt_context_set_target(cxt, target) != 0) {
		rc = fail(ENOMEM, EXIT_FAILED, "cannot unmount %s: out of memory", target);
		goto out_free_ctx;
	}
	rc = mnt_context_umount(cxt);
	if (mnt_context_get_excode(cxt, rc, NULL, 0) == MNT_EX_SUCCESS) {
		rc = 0;
		goto out_free_ctx;
	}
	err = context_error(cxt, rc, msg, sizeof(msg));
	rc = fail(err, EXIT_FAILED, "cannot unmount %s: %s", target, msg);
out_free_ctx:
	mnt_free_context(cxt);
	return rc;
}

/*
 * Wait until loop device devno, which had autoclear set, is detached. The
 * kernel detaches it when its last opener goes away, which can be a moment
 * after umount returns (udev probes the device after the change). ballastd
 * may delete the image next, so we wait rather than leave that to chance.
 * Gives up silently after LOOP_DETACH_WAIT_MS, as the detach is not ours
 * to force: whoever holds the device open triggers it when they close it.
 */
static void wait_loop_detached(dev_t devno)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	struct libmnt_table *tb;
	bool mounted;
	int waited;

	/* Still mounted elsewhere (another target): it stays, correctly. */
	tb = mnt_new_table_from_file(MOUNTINFO);
	if (!tb)
		return;
	mounted = mnt_table_find_devno(tb, devno, MNT_ITER_FORWARD) != NULL;
	mnt_unref_table(tb);
	if (mounted)
		return;
	for (waited = 0; waited < LOOP_DETACH_WAIT_MS && is_loop(devno); waited += 10)
		nanosleep(&tick, NULL);
}

/* --- Commands on block file systems -------------------------------------- */

/*
 * mkfs: format SOURCE, a regular file or block device that holds nothing
 * libblkid recognises. Never reformats: anything found is exit status 3.
 */
int cmd_mkfs(const struct cmdline *cl)
{
	const char *source = cl->args[0];
	char desc[PATH_MAX + 64], why[MB_MSG_MAX];
	struct arglist al = { .argc = 0 };
	struct signature sig;
	struct stat st;
	unsigned fs;
	int fd, rc;

	rc = parse_fstype(cl->fstype, &fs, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	rc = check_source(source, 0, false, &st);
	if (rc)
		return rc;
	rc = build_mkfs_argv(fs, cl->mkfs_options, cl->label, source, &al, why, sizeof(why));
	if (rc)
		return refuse(rc, why);

	/*
	 * O_EXCL on a block device fails with EBUSY while it is mounted or
	 * held (by device-mapper, md, ...): in use, whether or not it carries
	 * a signature we would recognise.
	 */
	fd = open(source, O_RDONLY | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0));
	if (fd < 0) {
		if (errno == EBUSY)
			return fail(EBUSY, EXIT_FAILED,
				    "%s is in use (mounted or held by another device); refusing to format", source);
		return fail(errno, EXIT_FAILED, "cannot open %s: %s", source, strerror(errno));
	}
	rc = probe_signatures(fd, source, true, &sig);
	close(fd);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		rc = existing_data_message(source, &sig, why, sizeof(why));
		return fail(rc, EXIT_HAS_FS, "%s", why);
	}

	snprintf(desc, sizeof(desc), "cannot format %s as %s", source, fs_name(fs));
	return run_tool(&al, desc);
}

/*
 * Switch the loop device mounted on target to direct I/O: its reads and
 * writes then go to the image file without passing through the page cache
 * a second time, and a flush of the file system inside is one flush of the
 * file. Where the file's file system cannot do direct I/O (the kernel says
 * EINVAL) the device keeps buffered I/O, which is as safe, only slower.
 */
static void loop_direct_io(const char *target)
{
	struct libmnt_table *tb;
	struct libmnt_fs *mnt;
	int fd;

	if (load_mount_table(&tb) != 0)
		return;
	mnt = find_mount(tb, target);
	if (mnt && is_loop(mnt_fs_get_devno(mnt)) && open_mounted_device(mnt, O_RDONLY, &fd) == 0) {
		(void)ioctl(fd, LOOP_SET_DIRECT_IO, 1UL);
		close(fd);
	}
	mnt_unref_table(tb);
}

/*
 * mount: mount SOURCE (a block device, or with --loop an image file) on
 * TARGET. Already mounted there is success; something else there is not.
 */
int cmd_mount(const struct cmdline *cl)
{
	const char *source = cl->args[0];
	char options[OPTS_MAX + 64], target[PATH_MAX], what[PATH_MAX + 64], why[MB_MSG_MAX];
	enum target_found found = TARGET_FOUND;
	struct libmnt_table *tb;
	struct mounts_root root;
	struct libmnt_fs *mnt;
	struct stat st;
	unsigned fs;
	int rc;

	if (is_gluster(cl->fstype))
		return cmd_mount_gluster(cl);
	rc = parse_fstype(cl->fstype, &fs, why, sizeof(why));
	if (!rc)
		rc = build_mount_options(fs, cl->options, cl->loop, options, sizeof(options), why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	rc = check_source(source, cl->loop ? S_IFREG : S_IFBLK, cl->loop, &st);
	if (rc)
		return rc;
	rc = find_target(cl->state_dir, cl->args[1], TARGET_CREATE, &root, target, &found);
	if (rc)
		return rc;

	rc = load_mount_table(&tb);
	if (rc)
		goto out_rmdir_target;
	mnt = find_mount(tb, target);
	if (mnt) {
		rc = mount_is_of(mnt, &st, cl->loop);
		if (rc < 0) {
			rc = fail(rc, EXIT_FAILED, "cannot check what is mounted on %s: %s", target, strerror(-rc));
		} else if (rc == 0) {
			describe_source(mnt, false, what, sizeof(what));
			rc = fail(EBUSY, EXIT_FAILED, "%s is already a mountpoint of %s", target, what);
		} else {
			rc = 0;
		}
		goto out_free_table;
	}
	rc = check_source_fstype(source, cl->fstype);
	if (!rc)
		rc = do_mount(source, target, cl->fstype, options);
	if (!rc && cl->loop)
		loop_direct_io(target);
	if (!rc)
		CRASH_POINT("mb.mount.after-mount");
out_free_table:
	mnt_unref_table(tb);
out_rmdir_target:
	/* Leave no trace of a mount that did not happen. */
	if (rc && found == TARGET_CREATED)
		rmdir(target);
	return rc;
}

/*
 * umount: unmount TARGET, every layer if mounts are stacked; not mounted is
 * success. Loop devices that libmount attached (autoclear) are detached by
 * the kernel; we wait for that so that it is done when we exit.
 */
int cmd_umount(const struct cmdline *cl)
{
	dev_t loops[UMOUNT_MAX_LAYERS];
	char target[PATH_MAX], flag[8];
	enum target_found found;
	struct libmnt_table *tb;
	struct mounts_root root;
	struct libmnt_fs *mnt;
	int rc, layer, nloops = 0, i;
	dev_t devno;

	bool done;

	rc = find_mounts_root(cl->state_dir, &root);
	if (rc)
		return rc;
	rc = umount_gluster(&root, cl->args[0], &done);
	if (rc || done)
		return rc;
	rc = resolve_target(&root, cl->args[0], TARGET_EXISTING, target, &found);
	if (rc)
		return rc;

	for (layer = 0; layer < UMOUNT_MAX_LAYERS; layer++) {
		rc = load_mount_table(&tb);
		if (rc)
			return rc;
		mnt = find_mount(tb, target);
		devno = mnt ? mnt_fs_get_devno(mnt) : 0;
		mnt_unref_table(tb);
		if (!mnt)
			break;
		/* Only loop devices set to go away by themselves are waited for. */
		if (read_blockdev_attr(devno, "loop/autoclear", flag, sizeof(flag)) == 0 && strcmp(flag, "1") == 0)
			loops[nloops++] = devno;
		rc = do_umount(target);
		if (rc)
			return rc;
	}
	if (layer == UMOUNT_MAX_LAYERS)
		return fail(EBUSY, EXIT_FAILED, "%s is still mounted after %d unmounts", target, UMOUNT_MAX_LAYERS);
	for (i = 0; i < nloops; i++)
		wait_loop_detached(loops[i]);
	return 0;
}

/*
 * Whether capability cap is in our effective set. When that cannot be
 * told, say yes and let the operation itself fail with its own message.
 */
static bool has_effective_cap(unsigned cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (cap >= 64 || syscall(SYS_capget, &hdr, data) < 0)
		return true;
	return data[cap / 32].effective & (1u << (cap % 32));
}

/*
 * Make the device of mnt (the mount of target, a fs filesystem) ready to
 * grow: online ext4 resize needs CAP_SYS_RESOURCE, and a loop device is
 * told that its file grew. Returns 0 or -errno (reason recorded).
 */
static int grow_prepare_device(struct libmnt_fs *mnt, unsigned fs, const char *target)
{
	const char *dev = mnt_fs_get_srcpath(mnt);
	int rc, fd;

	/*
	 * The kernel refuses an online ext4 resize without CAP_SYS_RESOURCE
	 * (resize2fs then says only "Permission denied"); a plugin or
	 * container may well run without it. Check before touching anything.
	 */
	if (fs == FS_EXT4 && !has_effective_cap(CAP_SYS_RESOURCE))
		return fail(
			EPERM, EXIT_FAILED,
			"cannot grow the ext4 filesystem on %s: online ext4 resize needs CAP_SYS_RESOURCE, which this process lacks",
			target);
	if (!is_loop(mnt_fs_get_devno(mnt)) && fs != FS_EXT4)
		return 0;
	rc = open_mounted_device(mnt, O_RDONLY, &fd);
	if (rc)
		return fail(rc, EXIT_FAILED, "cannot open the device of %s (%s): %s", target, dev ? dev : "none",
			    strerror(-rc));
	/* The loop device keeps the file size it saw at attach time. */
	if (is_loop(mnt_fs_get_devno(mnt)) && ioctl(fd, LOOP_SET_CAPACITY, 0) < 0)
		rc = fail(errno, EXIT_FAILED, "cannot update the size of %s: %s", dev, strerror(errno));
	close(fd);
	return rc;
}

/* TARGET (cl->args[0], under the mounts directory) into target, and its
 * mount in *mnt from the mount table *tb, which the caller unrefs; fails
 * when it is not mounted. */
static int mounted_target(const struct cmdline *cl, char *target, struct libmnt_table **tb, struct libmnt_fs **mnt)
{
	enum target_found found;
	struct mounts_root root;
	int rc;

	rc = find_target(cl->state_dir, cl->args[0], TARGET_EXISTING, &root, target, &found);
	if (rc)
		return rc;
	rc = load_mount_table(tb);
	if (rc)
		return rc;
	*mnt = find_mount(*tb, target);
	if (*mnt)
		return 0;
	mnt_unref_table(*tb);
	return fail(EINVAL, EXIT_FAILED, "%s is not mounted", target);
}

/*
 * grow: grow the filesystem mounted on TARGET to the size of its device.
 * For a loop mount the loop device is told first that its file grew.
 */
int cmd_grow(const struct cmdline *cl)
{
	char target[PATH_MAX], desc[PATH_MAX + 64], why[MB_MSG_MAX];
	struct arglist al = { .argc = 0 };
	struct libmnt_table *tb;
	struct libmnt_fs *mnt;
	const char *type;
	unsigned fs;
	int rc;

	rc = parse_fstype(cl->fstype, &fs, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	rc = mounted_target(cl, target, &tb, &mnt);
	if (rc)
		return rc;
	type = mnt_fs_get_fstype(mnt);
	if (!type || strcmp(type, fs_name(fs)) != 0) {
		rc = fail(EINVAL, EXIT_REFUSED, "%s is mounted as %s, not %s", target, type ? type : "unknown",
			  fs_name(fs));
		goto out_free_table;
	}
	rc = grow_prepare_device(mnt, fs, target);
	if (rc)
		goto out_free_table;

	if (fs == FS_EXT4) {
		/* resize2fs sees that dev is mounted and resizes online. */
		rc = arg_add(&al, "resize2fs") ?: arg_add(&al, mnt_fs_get_srcpath(mnt));
		snprintf(desc, sizeof(desc), "cannot grow the ext4 filesystem on %s", target);
	} else {
		rc = arg_add(&al, "xfs_growfs") ?: arg_add(&al, "-d") ?: arg_add(&al, target);
		snprintf(desc, sizeof(desc), "cannot grow the xfs filesystem on %s", target);
	}
	if (!rc)
		rc = run_tool(&al, desc);
out_free_table:
	mnt_unref_table(tb);
	return rc;
}

/*
 * status: print "mounted SOURCE FSTYPE" or "not-mounted" on stdout. SOURCE
 * is the device, or for a loop device its backing file. A target that does
 * not exist (but would be under the mounts directory) is not mounted.
 */
int cmd_status(const struct cmdline *cl)
{
	char target[PATH_MAX], source[PATH_MAX + 64];
	enum target_found found;
	struct libmnt_table *tb = NULL;
	struct mounts_root root;
	struct libmnt_fs *mnt = NULL;
	const char *type;
	int rc;

	rc = find_target(cl->state_dir, cl->args[0], TARGET_MAY_BE_MISSING, &root, target, &found);
	if (rc)
		return rc;
	if (found != TARGET_MISSING) {
		rc = load_mount_table(&tb);
		if (rc)
			return rc;
		mnt = find_mount(tb, target);
	}
	if (mnt) {
		describe_source(mnt, true, source, sizeof(source));
		type = mnt_fs_get_fstype(mnt);
		printf("mounted %s %s\n", source, type ? type : "unknown");
	} else {
		printf("not-mounted\n");
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = fail(errno ? errno : EIO, EXIT_FAILED, "cannot write the status: %s",
			  strerror(errno ? errno : EIO));
	mnt_unref_table(tb);
	return rc;
}

/*
 * freeze: freeze the file system mounted at TARGET (FIFREEZE), say
 * "frozen" on stdout, and thaw it (FITHAW) at the end of stdin or a line
 * on it (ballastd's cue that the snapshot is taken; its death closes the
 * pipe too), on SIGTERM, SIGINT or SIGHUP, or after --timeout seconds (30),
 * whichever comes first. Thawed by the bound, the freeze did not cover
 * the snapshot: a failure, so that ballastd drops it.
 */
int cmd_freeze(const struct cmdline *cl)
{
	char target[PATH_MAX], why[MB_MSG_MAX], buf[64];
	struct libmnt_table *tb;
	struct libmnt_fs *mnt;
	struct pollfd pfd[2];
	sigset_t sigs;
	int rc, fd, sfd, timeout_s, ready;
	long until;

	rc = parse_timeout(cl->timeout, &timeout_s, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	rc = mounted_target(cl, target, &tb, &mnt);
	if (rc)
		return rc;
	mnt_unref_table(tb);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || fd < 0) {
		rc = fail(errno, EXIT_FAILED, "cannot open %s: %s", target, strerror(errno));
		goto out_close;
	}
	if (ioctl(fd, FIFREEZE, 0) < 0) {
		rc = fail(errno, EXIT_FAILED, "cannot freeze the file system on %s: %s", target, strerror(errno));
		goto out_close;
	}
	printf("frozen\n");
	fflush(stdout);
	pfd[0] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	until = monotonic_ms() + timeout_s * 1000L;
	do {
		long left = until - monotonic_ms();

		ready = left > 0 ? poll(pfd, 2, (int)left) : 0;
	} while (ready < 0 && errno == EINTR);
	/* the cue (a line, or the end) is not read further: nothing to keep */
	if (ready > 0 && pfd[0].revents && read(STDIN_FILENO, buf, sizeof(buf)) < 0)
		ready = 1;
	while (ioctl(fd, FITHAW, 0) < 0 && errno == EINTR)
		;
	if (ready == 0)
		rc = fail(ETIMEDOUT, EXIT_FAILED, "the file system on %s was frozen for %d s, the most allowed; thawed",
			  target, timeout_s);
out_close:
	if (fd >= 0)
		close(fd);
	if (sfd >= 0)
		close(sfd);
	return rc;
}
