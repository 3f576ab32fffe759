/*
 * rbd_map.c - the rbd backend on this host: where things live under
 * <state_dir>, the mappers that serve an image as a block device or a
 * file, and mounting the volume's file system (see rbd_int.h).
 *
 * Mapping: on this kind of machine there is no krbd and no nbd, so the
 * image is served as a file by ballast-rbd-map (FUSE on librbd, a process
 * of its own that outlives ballastd) and loop-mounted by mount.ballast at
 * <state_dir>/mounts/<name>; dockerd gets its data/ subdirectory. The
 * mapper takes the image's exclusive lock explicitly, so any other
 * client's write fails with EROFS, and it writes ballast.holder itself:
 * only the lock owner may change image metadata while the lock is held.
 * Its mount directory is <state_dir>/rbd/<name>.map, its pid file
 * <state_dir>/rbd/<name>.map.pid; <name>.map.fenced appears when it finds
 * itself fenced. Where the kernel has rbd or nbd, mount.ballast maps the
 * image with it instead, and <state_dir>/rbd/<name>.dev records the
 * mapping. <state_dir>/rbd/<name>.creating marks a Create that maps and
 * mounts its new image here: one left by a ballastd that died is undone at
 * the next start.
 */
#define LOG_TAG "rbd"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashpoint.h"
#include "fsutil.h"
#include "log.h"
#include "rbd_int.h"
#include "timeutil.h"
#include "validate.h"

extern char **environ;

/* --- paths ---------------------------------------------------------------- */

void rbd_map_dir(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.map", rc->mapdir, name);
}

static void map_pidfile(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.map.pid", rc->mapdir, name);
}

/* Created by the mapper when it finds itself fenced. */
static void map_fencedfile(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.map.fenced", rc->mapdir, name);
}

int rbd_map_fenced(const struct rbd_ctx *rc, const char *name)
{
	char path[PATH_MAX];

	map_fencedfile(rc, name, path, sizeof(path));
	return access(path, F_OK) == 0;
}

void rbd_mount_target(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", rc->mounts, name);
}

/* --- the fuse mapper process ---------------------------------------------- */

/* Does pid run? A zombie does not: the mapper is re-parented to init,
 * which may take seconds to reap it. */
static int alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	int ret = 0;

	if (kill(pid, 0) < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		ret = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return ret;
}

/* The first line of a small file into buf (without its newline); 0, or
 * -errno when the file cannot be read. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The pid of name's mapper if it runs, else 0. */
pid_t rbd_mapper_pid(const struct rbd_ctx *rc, const char *name)
{
	char path[PATH_MAX], buf[32] = "", comm[64] = "", *end;
	FILE *f;
	long pid;

	map_pidfile(rc, name, path, sizeof(path));
	if (read_line(path, buf, sizeof(buf)) < 0)
		return 0;
	pid = strtol(buf, &end, 10);
	if (pid <= 1 || (*end && *end != '\n') || !alive((pid_t)pid))
		return 0;
	/* a recycled pid belongs to some other program */
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, RBD_MAPPER_BIN, 15) == 0 ? (pid_t)pid : 0;
}

/* The arguments naming the cluster and the image, as ballast-rbd-map and
 * mount.ballast map both take them (10 at most), from argv[argc]; the new
 * argc. */
static int image_args(const struct rbd_ctx *rc, const char *pool, const char *name, const char **argv, int argc)
{
	argv[argc++] = "--conf";
	argv[argc++] = rc->conf;
	argv[argc++] = "--id";
	argv[argc++] = rc->user;
	if (rc->keyring[0]) {
		argv[argc++] = "--keyring";
		argv[argc++] = rc->keyring;
	}
	argv[argc++] = "--pool";
	argv[argc++] = pool;
	argv[argc++] = "--image";
	argv[argc++] = name;
	return argc;
}

/* ballast-rbd-map's command line and the strings it points into. */
struct mapper_cmd {
	char dir[PATH_MAX], pidfile[PATH_MAX], t[16], lease[16], holder[512];
	const char *argv[24];
};

/* The holder record the fuse mapper stores once it holds the lock:
 * {"host","since","pid","lease"}, "{}" when it cannot be made. */
static void mapper_holder(const struct rbd_ctx *rc, char *buf, size_t len)
{
	char since[40];
	json_t *h;
	char *s;

	rfc3339_now(since, sizeof(since));
	h = json_pack("{s:s, s:s, s:I, s:I}", "host", rc->host_id, "since", since, "pid", (json_int_t)getpid(), "lease",
		      (json_int_t)rc->lease);
	s = h ? json_dumps(h, JSON_COMPACT) : NULL;
	snprintf(buf, len, "%s", s ? s : "{}");
	free(s);
	json_decref(h);
}

/* Fill c->argv for mapping name (c->dir and c->pidfile already set). */
static void mapper_cmd_build(const struct rbd_ctx *rc, const char *name, const char *pool, int read_only,
			     struct mapper_cmd *c)
{
	int argc = 0;

	mapper_holder(rc, c->holder, sizeof(c->holder));
	snprintf(c->t, sizeof(c->t), "%u", rc->timeout);
	snprintf(c->lease, sizeof(c->lease), "%u", rc->lease);
	c->argv[argc++] = rc->map_bin;
	argc = image_args(rc, pool, name, c->argv, argc);
	c->argv[argc++] = "--timeout";
	c->argv[argc++] = c->t;
	c->argv[argc++] = "--pidfile";
	c->argv[argc++] = c->pidfile;
	if (read_only) {
		c->argv[argc++] = "--read-only";
	} else {
		c->argv[argc++] = "--holder";
		c->argv[argc++] = c->holder;
		c->argv[argc++] = "--lease";
		c->argv[argc++] = c->lease;
	}
	c->argv[argc++] = c->dir;
	c->argv[argc] = NULL;
}

/* Start ballast-rbd-map with argv, its stdout and stderr into a pipe
 * whose read end goes into *outfd; its pid into *pid. */
static int mapper_spawn(const struct rbd_ctx *rc, const char *const *argv, pid_t *pid, int *outfd, struct berr *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipefd[2], ret;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return berr_set(err, -errno, "cannot run %s: %s", rc->map_bin, strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
	/* ballastd blocks the signals it waits for; the mapper must get
	 * SIGTERM to stop cleanly, so it starts with none blocked. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	ret = posix_spawn(pid, rc->map_bin, &fa, &attr, (char *const *)argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (ret != 0) {
		close(pipefd[0]);
		return berr_set(err, -ret, "cannot run %s: %s", rc->map_bin, strerror(ret));
	}
	*outfd = pipefd[0];
	return 0;
}

/*
 * Read fd into out (NUL-terminated; when it fills up, reading starts over
 * at its beginning: the last line is what matters) until EOF or deadline
 * (monotonic ms). At the deadline pid is killed: 1, else 0.
 */
static int mapper_collect(int fd, pid_t pid, long deadline, char *out, size_t len)
{
	size_t used = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = deadline - monotonic_ms();
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			return 1;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return 0;
		if (!pfd.revents)
			continue;
		n = read(fd, out + used, len - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		used += (size_t)n;
		out[used] = '\0';
		if (used == len - 1)
			used = 0;
	}
}

/*
 * Run ballast-rbd-map for the image and wait (bounded) until it reports:
 * it exits once the FUSE file is served, leaving its daemon behind. Its
 * one stderr line becomes the error.
 */
static int mapper_start(struct rbd_ctx *rc, const char *name, const char *pool, int read_only, struct berr *err)
{
	struct mapper_cmd c;
	char out[1024] = "";
	int fd = -1, status = 0, killed, ret;
	pid_t pid;

	rbd_map_dir(rc, name, c.dir, sizeof(c.dir));
	map_pidfile(rc, name, c.pidfile, sizeof(c.pidfile));
	ret = mkdir_p(c.dir, 0700);
	if (ret < 0)
		return berr_set(err, ret, "cannot create %s: %s", c.dir, strerror(-ret));
	mapper_cmd_build(rc, name, pool, read_only, &c);
	ret = mapper_spawn(rc, c.argv, &pid, &fd, err);
	if (ret < 0)
		return ret;
	/*
	 * A dead holder's lock is taken over only when its watch expires
	 * (~30 s after the crash): allow for that beyond the op timeout.
	 */
	killed =
		mapper_collect(fd, pid, monotonic_ms() + (long)(rc->timeout + rc->lease + 5) * 1000L, out, sizeof(out));
	close(fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (killed)
		return berr_set(err, -ETIMEDOUT, "mapping image %s/%s did not finish within %u s", pool, name,
				rc->timeout + rc->lease + 5);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	{
		const char *why = rbd_mapper_message(out);

		return berr_set(err, WIFEXITED(status) && WEXITSTATUS(status) == 1 ? -EBUSY : -EIO,
				"cannot map image %s/%s: %s", pool, name,
				why[0] ? why : "the mapper failed with no message");
	}
}

/* Does pid still serve or hold a volume? The mapper removes its pid file
 * once it let go of the lock, before closing the image: the close waits
 * for every watcher to hear of the release, 5 s for a dead one. */
static int mapper_holds(pid_t pid, const char *pidfile)
{
	char buf[32];

	return alive(pid) && read_line(pidfile, buf, sizeof(buf)) == 0 && atol(buf) == (long)pid;
}

/* Stop name's mapper: SIGTERM (it flushes, clears its records, releases
 * the lock, removes its pid file), wait for that; SIGKILL and a lazy FUSE
 * unmount if it hangs. Even then the volume is unmounted here (the file
 * system on the mapper went first, flushing its data) and no error: the
 * killed client's lock is broken by the next holder once its watch
 * expires. */
static int mapper_stop(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char dir[PATH_MAX], pidfile[PATH_MAX];
	pid_t pid = rbd_mapper_pid(rc, name);
	long deadline = monotonic_ms() + (long)(rc->timeout + 5) * 1000L;

	(void)err;
	rbd_map_dir(rc, name, dir, sizeof(dir));
	map_pidfile(rc, name, pidfile, sizeof(pidfile));
	if (pid > 0) {
		kill(pid, SIGTERM);
		while (mapper_holds(pid, pidfile) && monotonic_ms() < deadline)
			usleep(10 * 1000);
		if (mapper_holds(pid, pidfile)) {
			log_warnx("mapper of %s (pid %ld) did not stop within %u s: SIGKILL (its lock is released "
				  "when its watch expires)",
				  name, (long)pid, rc->timeout + 5);
			kill(pid, SIGKILL);
		}
	}
	/* after a SIGKILL (or a crash) the FUSE mount is left behind */
	if (is_mountpoint(dir) == 1 && umount2(dir, MNT_DETACH) < 0)
		log_warn("cannot unmount %s", dir);
	unlink(pidfile);
	map_fencedfile(rc, name, pidfile, sizeof(pidfile));
	unlink(pidfile);
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_warn("cannot remove %s", dir);
	return 0;
}

/* --- kernel mappers (krbd, rbd-nbd) --------------------------------------- */

/*
 * The mapper Mount uses: [rbd] mapper, where auto means the kernel client
 * where the kernel has it (krbd, then nbd), else fuse.
 */
const char *rbd_mapper_of(const struct rbd_ctx *rc)
{
	if (strcmp(rc->mapper, "auto") != 0)
		return rc->mapper;
	if (access("/sys/bus/rbd", F_OK) == 0)
		return "krbd";
	if (access("/sys/block/nbd0", F_OK) == 0)
		return "nbd";
	return "fuse";
}

/* <state_dir>/rbd/<name>.dev: "MAPPER DEVICE POOL" while a kernel mapper
 * has the image mapped here. */
static void kmap_file(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.dev", rc->mapdir, name);
}

int rbd_kmap_read(const struct rbd_ctx *rc, const char *name, char *mapper, size_t mlen, char *dev, size_t dlen,
		  char *pool, size_t plen)
{
	char path[PATH_MAX], line[PATH_MAX + 128];

	kmap_file(rc, name, path, sizeof(path));
	if (read_line(path, line, sizeof(line)) < 0)
		return 0;
	return rbd_kmap_parse(line, mapper, mlen, dev, dlen, pool, plen);
}

/*
 * Does the kernel map pool/name at dev right now? A <name>.dev record
 * outlives its mapping (a reboot, a killed rbd-nbd) and the device node
 * may then belong to another image (/dev/rbd0 reused) or to nothing
 * (/dev/nbd0..15 exist once nbd is loaded): trusting the node unmapped
 * another image at start and reused dead mounts. krbd: sysfs names the
 * pool and image of each device; nbd: the device's rbd-nbd process names
 * the image on its command line.
 */
static int kmap_live(const char *mapper, const char *dev, const char *pool, const char *name)
{
	char path[PATH_MAX], buf[256], spec[RBD_NAME_MAX + VOLUME_NAME_MAX + 2];
	unsigned idx;

	if (strcmp(mapper, "krbd") == 0 && sscanf(dev, "/dev/rbd%u", &idx) == 1) {
		snprintf(path, sizeof(path), "/sys/bus/rbd/devices/%u/pool", idx);
		if (read_line(path, buf, sizeof(buf)) < 0 || strcmp(buf, pool) != 0)
			return 0;
		snprintf(path, sizeof(path), "/sys/bus/rbd/devices/%u/name", idx);
		return read_line(path, buf, sizeof(buf)) == 0 && strcmp(buf, name) == 0;
	}
	if (strcmp(mapper, "nbd") == 0 && sscanf(dev, "/dev/nbd%u", &idx) == 1) {
		char cmd[4096];
		size_t n;
		FILE *f;

		snprintf(path, sizeof(path), "/sys/block/nbd%u/pid", idx);
		if (read_line(path, buf, sizeof(buf)) < 0 || !buf[0] || strlen(buf) > 20)
			return 0;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", buf);
		f = fopen(path, "re");
		if (!f)
			return 0;
		n = fread(cmd, 1, sizeof(cmd) - 1, f);
		fclose(f);
		cmd[n] = '\0';
		snprintf(spec, sizeof(spec), "%s/%s", pool, name);
		for (size_t off = 0; off < n; off += strlen(cmd + off) + 1) {
			if (strcmp(cmd + off, spec) == 0)
				return 1;
		}
		return 0;
	}
	return 0;
}

/* Is name mapped here (by a live fuse mapper or a kernel mapping)? */
int rbd_mapped(struct rbd_ctx *rc, const char *name)
{
	char mapper[16], dev[PATH_MAX], pool[RBD_NAME_MAX];

	if (rbd_kmap_read(rc, name, mapper, sizeof(mapper), dev, sizeof(dev), pool, sizeof(pool)))
		return kmap_live(mapper, dev, pool, name);
	return rbd_mapper_pid(rc, name) > 0;
}

/*
 * Write the holder record of a kernel mapping of name ({"host","since",
 * "pid","mapper"}) before the kernel takes the lock: once it holds it,
 * only it could. The kernel client renews no lease, so the lease of an
 * earlier holder (a fuse mapper fenced or crashed) goes with it: left
 * behind it would look like this hold's, expire, and name a client that
 * does not own the lock. -EBUSY when another client holds the lock (a
 * live kernel mapping refuses to hand it over).
 */
static int kmap_claim(struct rbd_ctx *rc, const char *name, const char *pool, const char *mapper, struct berr *err)
{
	rados_ioctx_t io = NULL;
	char since[40];
	json_t *h;
	char *js;
	int ret;

	rfc3339_now(since, sizeof(since));
	h = json_pack("{s:s, s:s, s:I, s:s}", "host", rc->host_id, "since", since, "pid", (json_int_t)getpid(),
		      "mapper", mapper);
	js = h ? json_dumps(h, JSON_COMPACT) : NULL;
	json_decref(h);
	ret = js ? rbd_ioctx_open(rc, pool, &io, err) : -ENOMEM;
	if (ret == 0) {
		const char *kv[] = { META_HOLDER, js, META_LEASE, NULL, NULL };

		ret = rbd_meta_set(io, pool, name, kv, err);
		rados_ioctx_destroy(io);
	}
	free(js);
	return ret == -EROFS ? -EBUSY : ret;
}

/* Record in <name>.dev that mapper mapped name (of pool) at dev. */
static int kmap_record(const struct rbd_ctx *rc, const char *name, const char *mapper, const char *dev,
		       const char *pool, struct berr *err)
{
	char path[PATH_MAX];
	FILE *f;
	int ret;

	kmap_file(rc, name, path, sizeof(path));
	ret = mkdir_p(rc->mapdir, 0700);
	f = ret == 0 ? fopen(path, "we") : NULL;
	if (!f || fprintf(f, "%s %s %s\n", mapper, dev, pool) < 0 || fclose(f) != 0)
		return berr_set(err, -EIO, "cannot record the mapping of %s in %s", name, path);
	return 0;
}

/*
 * Map name with a kernel mapper through mount.ballast map (rbd device map
 * -o exclusive / rbd-nbd --exclusive: the kernel holds the image's lock,
 * so any other client's write fails), device into dev. The holder record
 * is written first, by ballastd (once the kernel holds the lock only it
 * could): while the kernel client lives, another host's Mount is refused
 * by the lock; when it dies its lock is broken, and it blocklisted, once
 * its watch lapses. Errors are the mapper's own.
 */
static int kmap_start(struct rbd_ctx *rc, const char *name, const char *pool, const char *mapper, int read_only,
		      char *dev, size_t dlen, struct berr *err)
{
	char t[16], out[PATH_MAX] = "";
	const char *args[24];
	struct berr merr = BERR_INIT;
	int argc = 0, ret;

	if (!read_only && (ret = kmap_claim(rc, name, pool, mapper, err)) < 0)
		return ret;
	snprintf(t, sizeof(t), "%u", rc->timeout + 5);
	args[argc++] = "map";
	args[argc++] = "--mapper";
	args[argc++] = mapper;
	argc = image_args(rc, pool, name, args, argc);
	if (read_only)
		args[argc++] = "--read-only";
	if (rc->ms_mode[0] && strcmp(mapper, "krbd") == 0) {
		args[argc++] = "--ms-mode";
		args[argc++] = rc->ms_mode;
	}
	args[argc++] = "--timeout";
	args[argc++] = t;
	args[argc] = NULL;
	ret = helper_run_out(&rc->helper, args, out, sizeof(out), &merr);
	if (ret < 0)
		berr_propagate(err, ret, &merr);
	if (ret == 0 && strncmp(out, "/dev/", 5) != 0)
		ret = berr_set(err, -EIO, "mount.ballast map printed no device (\"%.80s\")", out);
	if (ret == 0)
		ret = kmap_record(rc, name, mapper, out, pool, err);
	if (ret < 0) {
		/* nothing mapped: the holder record goes, if still ours */
		if (!read_only)
			rbd_holder_drop_if_ours(rc, pool, name);
		return ret;
	}
	snprintf(dev, dlen, "%s", out);
	return 0;
}

/* Unmap name's kernel mapping, if any, and drop its holder record. */
static int kmap_stop(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char mapper[16], dev[PATH_MAX], pool[RBD_NAME_MAX], path[PATH_MAX];
	const char *args[] = { "unmap", "--mapper", mapper, dev, NULL };
	int ret;

	if (!rbd_kmap_read(rc, name, mapper, sizeof(mapper), dev, sizeof(dev), pool, sizeof(pool)))
		return 0;
	/* A stale record (the mapping is gone, its device maybe another
	 * image's now) is dropped without touching the device. */
	ret = kmap_live(mapper, dev, pool, name) ? helper_run(&rc->helper, args, err) : 0;
	if (ret < 0)
		return ret;
	kmap_file(rc, name, path, sizeof(path));
	unlink(path);
	rbd_holder_drop_if_ours(rc, pool, name);
	return 0;
}

/*
 * Map name with the mapper in use; into src what mount.ballast mounts:
 * the fuse mapper's image file (*loop = 1) or the kernel's device.
 */
int rbd_map_image(struct rbd_ctx *rc, const char *name, const char *pool, int read_only, char *src, size_t len,
		  int *loop, struct berr *err)
{
	const char *mapper = rbd_mapper_of(rc);
	int ret;

	if (strcmp(mapper, "fuse") != 0) {
		*loop = 0;
		return kmap_start(rc, name, pool, mapper, read_only, src, len, err);
	}
	*loop = 1;
	ret = mapper_start(rc, name, pool, read_only, err);
	if (ret == 0) {
		rbd_map_dir(rc, name, src, len);
		strncat(src, "/image", len - strlen(src) - 1);
	}
	return ret;
}

int rbd_unmap_image(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char mapper[16], dev[PATH_MAX];

	if (rbd_kmap_read(rc, name, mapper, sizeof(mapper), dev, sizeof(dev), NULL, 0))
		return kmap_stop(rc, name, err);
	return mapper_stop(rc, name, err);
}

/* --- Creates under way on this host -------------------------------------- */

/* <state_dir>/rbd/<name>.creating */
static void create_markfile(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.creating", rc->mapdir, name);
}

int rbd_create_mark(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char path[PATH_MAX];
	int fd, ret;

	create_markfile(rc, name, path, sizeof(path));
	ret = mkdir_p(rc->mapdir, 0700);
	if (ret < 0)
		return berr_set(err, ret, "cannot create %s: %s", rc->mapdir, strerror(-ret));
	/* a crash of ballastd, not of the machine (that takes the mapper
	 * with it): no fsync needed */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return berr_set(err, -errno, "cannot create %s: %s", path, strerror(errno));
	close(fd);
	return 0;
}

void rbd_create_unmark(struct rbd_ctx *rc, const char *name)
{
	char path[PATH_MAX];

	create_markfile(rc, name, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove %s", path);
}

/* Whatever a marked Create mapped or mounted here is its own, and nobody
 * else's (no container had it: it was never ready). */
static void stop_leftover(struct rbd_ctx *rc, const char *name)
{
	struct berr err = BERR_INIT;

	char target[PATH_MAX];

	log_infox("volume %s: a create here was interrupted (ballastd died); stopping what it mapped", name);
	if (rbd_detach(rc, name, &err) == 0) {
		rbd_create_unmark(rc, name);
		return;
	}
	/* a mapper killed at its bound: nothing is mapped any more, and its
	 * lock is for the retried Create to fence (RBD_EXISTING_MINE) */
	rbd_mount_target(rc, name, target, sizeof(target));
	if (!rbd_mapped(rc, name) && is_mountpoint(target) != 1) {
		log_warnx("volume %s: the mapping of an interrupted create is gone, not cleanly: %s", name, err.msg);
		rbd_create_unmark(rc, name);
		return;
	}
	log_warnx("volume %s: cannot stop the mapping of an interrupted create: %s", name, err.msg);
}

void rbd_leftover_settle(struct rbd_ctx *rc, const char *name)
{
	json_t *v;

	pthread_mutex_lock(&rc->lock);
	while ((v = json_object_get(rc->leftovers, name)) && json_is_true(v))
		pthread_cond_wait(&rc->left_done, &rc->lock);
	if (!v) {
		pthread_mutex_unlock(&rc->lock);
		return;
	}
	json_object_set_new(rc->leftovers, name, json_true());
	pthread_mutex_unlock(&rc->lock);
	stop_leftover(rc, name);
	pthread_mutex_lock(&rc->lock);
	json_object_del(rc->leftovers, name);
	pthread_cond_broadcast(&rc->left_done);
	pthread_mutex_unlock(&rc->lock);
}

static void *leftovers_main(void *arg)
{
	struct rbd_ctx *rc = arg;
	json_t *names = json_array();
	const char *name;
	json_t *v;
	size_t i;

	pthread_mutex_lock(&rc->lock);
	json_object_foreach (rc->leftovers, name, v)
		json_array_append_new(names, json_string(name));
	pthread_mutex_unlock(&rc->lock);
	json_array_foreach (names, i, v)
		rbd_leftover_settle(rc, json_string_value(v));
	json_decref(names);
	return NULL;
}

int rbd_create_leftovers(struct rbd_ctx *rc, struct berr *err)
{
	static const char suffix[] = ".creating";
	const size_t sl = sizeof(suffix) - 1;
	struct dirent *de;
	DIR *d;
	int ret;

	rc->leftovers = json_object();
	if (!rc->leftovers)
		return berr_set(err, -ENOMEM, "out of memory");
	d = opendir(rc->mapdir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char name[VOLUME_NAME_MAX + 1];
		size_t n = strlen(de->d_name);

		if (n <= sl || n - sl > VOLUME_NAME_MAX || strcmp(de->d_name + n - sl, suffix) != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - sl), de->d_name);
		if (validate_name(name, NULL) == 0)
			json_object_set_new(rc->leftovers, name, json_false());
	}
	closedir(d);
	if (json_object_size(rc->leftovers) == 0)
		return 0;
	ret = pthread_create(&rc->left_thread, NULL, leftovers_main, rc);
	if (ret != 0)
		return berr_set(err, -ret, "cannot start a thread: %s", strerror(ret));
	rc->left_started = 1;
	return 0;
}

void rbd_leftovers_stop(struct rbd_ctx *rc)
{
	if (rc->left_started)
		pthread_join(rc->left_thread, NULL);
	rc->left_started = 0;
	json_decref(rc->leftovers);
	rc->leftovers = NULL;
}

/* --- mount and unmount on this host --------------------------------------- */

int rbd_run_helper(struct rbd_ctx *rc, const char *const *args, struct berr *err)
{
	return helper_run(&rc->helper, args, err);
}

/* Unmount the file system (if mounted) and stop the mapper. Idempotent. */
int rbd_detach(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char target[PATH_MAX];
	int ret = 0;

	long t0 = monotonic_ms(), t1;

	rbd_mount_target(rc, name, target, sizeof(target));
	if (is_mountpoint(target) == 1) {
		const char *args[] = { "umount", target, NULL };

		ret = rbd_run_helper(rc, args, err);
	}
	t1 = monotonic_ms();
	CRASH_POINT("rbd.detach.after-umount");
	if (ret == 0) {
		ret = rbd_unmap_image(rc, name, err);
		if (rmdir(target) < 0 && errno != ENOENT)
			log_warn("cannot remove mount point %s", target);
	}
	log_debugx("detach %s: umount %ld ms, mapper stop %ld ms", name, t1 - t0, monotonic_ms() - t1);
	return ret;
}

/* Mount image (a device, or with loop a file) at target with mount.ballast. */
static int mount_fs(struct rbd_ctx *rc, const char *image, const char *target, const char *fstype, int loop,
		    const char *opts, struct berr *err)
{
	const char *args[10];
	int n = 0;

	args[n++] = "mount";
	args[n++] = "--fstype";
	args[n++] = fstype;
	if (loop)
		args[n++] = "--loop";
	if (opts[0]) {
		args[n++] = "--options";
		args[n++] = opts;
	}
	args[n++] = image;
	args[n++] = target;
	args[n] = NULL;
	return rbd_run_helper(rc, args, err);
}

/* The volume's data directory below target: made and given perms
 * (Create), or, without perms, required to exist. */
static int data_dir(const char *name, const char *target, const struct vol_perms *perms, struct berr *err)
{
	char data[PATH_MAX + 8];

	snprintf(data, sizeof(data), "%s/data", target);
	if (perms) {
		if (mkdir(data, 0700) < 0 && errno != EEXIST)
			return berr_set(err, -errno, "cannot create %s: %s", data, strerror(errno));
		return apply_perms(data, perms, err);
	}
	if (access(data, F_OK) < 0)
		return berr_set(err, -ENOENT, "volume %s has no data directory; was it made by ballast?", name);
	return 0;
}

int rbd_attach(struct rbd_ctx *rc, const char *name, const char *pool, const char *fstype, const char *mount_opts,
	       int read_only, const struct vol_perms *perms, struct berr *err)
{
	char target[PATH_MAX], image[PATH_MAX + 8], opts[256];
	struct berr ignored = BERR_INIT;
	int ret, loop = 1;

	rbd_mount_target(rc, name, target, sizeof(target));
	ret = mkdir_p(rc->mounts, 0700);
	if (ret == 0 && mkdir(target, 0755) < 0 && errno != EEXIST)
		ret = -errno;
	if (ret < 0)
		return berr_set(err, ret, "cannot create mount point %s: %s", target, strerror(-ret));
	ret = rbd_map_image(rc, name, pool, read_only, image, sizeof(image), &loop, err);
	if (ret < 0)
		goto out_rmdir;
	CRASH_POINT("rbd.attach.after-map");
	rbd_mount_opts(fstype, mount_opts, read_only, opts, sizeof(opts));
	ret = mount_fs(rc, image, target, fstype, loop, opts, err);
	/* mounted after all (mount.ballast died or hit its bound after the
	 * mount): undo it, or a dead mount stays behind */
	if (ret < 0 && is_mountpoint(target) == 1)
		goto out_detach;
	if (ret < 0)
		goto out_unmap;
	ret = data_dir(name, target, perms, err);
	if (ret < 0)
		goto out_detach;
	return 0;
out_detach:
	rbd_detach(rc, name, &ignored);
	return ret;
out_unmap:
	rbd_unmap_image(rc, name, &ignored);
out_rmdir:
	rmdir(target);
	return ret;
}

/* --- pure helpers --------------------------------------------------------- */

int rbd_kmap_parse(const char *line, char *mapper, size_t mlen, char *dev, size_t dlen, char *pool, size_t plen)
{
	const char *sp = strchr(line, ' ');
	const char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
	size_t n;

	if (!sp2)
		return 0;
	n = (size_t)(sp - line);
	if (n >= mlen)
		return 0;
	memcpy(mapper, line, n);
	mapper[n] = '\0';
	snprintf(dev, dlen, "%.*s", (int)(sp2 - sp - 1), sp + 1);
	if (pool)
		snprintf(pool, plen, "%s", sp2 + 1);
	return 1;
}

const char *rbd_mapper_message(char *out)
{
	char *end = out + strlen(out), *start;

	while (end > out && (end[-1] == '\n' || end[-1] == ' '))
		*--end = '\0';
	start = strrchr(out, '\n');
	start = start ? start + 1 : out;
	if (strncmp(start, RBD_MAPPER_BIN ": ", strlen(RBD_MAPPER_BIN) + 2) == 0)
		start += strlen(RBD_MAPPER_BIN) + 2;
	return start;
}

/* Read-only beside a live writer: its journal is never clean, and
 * replaying it would need write access. */
void rbd_mount_opts(const char *fstype, const char *mount_opts, int read_only, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", read_only ? (strcmp(fstype, "xfs") == 0 ? "ro,norecovery" : "ro,noload") : "",
		 read_only && mount_opts ? "," : "", mount_opts ? mount_opts : "");
}
