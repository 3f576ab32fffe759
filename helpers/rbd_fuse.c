/*
 * rbd_fuse.c - ballast-rbd-map: one RBD image served as the regular file
 * MOUNTDIR/image through FUSE, for machines with neither krbd nor nbd.
 *
 *   ballast-rbd-map --conf C --id USER [--keyring K] --pool P --image I
 *                   --timeout S [--pidfile F] [--holder JSON [--lease S]] [--read-only]
 *                   MOUNTDIR
 *
 * Unlike rbd-fuse it takes the image's exclusive lock EXPLICITLY
 * (rbd_lock_acquire) before it serves a byte, so that any other librbd
 * client's write fails with EROFS instead of silently taking the lock over
 * (the exclusive-lock feature alone hands the lock to whoever writes). If
 * another client holds the lock, it fails at once naming that owner. A
 * dead owner's lock (its watch expired, ~30 s after a crash) is broken by
 * librbd itself, blocklisting the dead client.
 *
 * --holder JSON is stored as image metadata ballast.holder once the lock is
 * held and removed before it is released: only the lock owner can change
 * image metadata, so the record always names the real holder (another
 * client's metadata_set would need the lock and fail with EROFS).
 *
 * --lease S: the hold is a lease. Once the lock is held, image metadata
 * ballast.lease = {"client","lease","expires","expires_unix"} is written
 * and renewed every S/3 seconds. Another host takes the volume over only
 * after that expiry has passed, and then only after blocklisting this
 * client and breaking its lock (the fence), so this client's writes from
 * then on fail in the OSDs. Two more safeties here: once no renewal has
 * succeeded for S seconds, writes are refused (EIO) without asking the
 * cluster, since another host may be about to take over; and once a renewal
 * is refused for good (-ESHUTDOWN/-EBLOCKLISTED: fenced, -EROFS: the lock is
 * gone) the file <pidfile>.fenced is created, for ballastd, and every write
 * is refused.
 *
 * Process shape: the command forks at once; the child does all the work
 * (librados threads do not survive a fork, so the fork must come first),
 * starts a session of its own so it outlives whoever started it (ballastd
 * may be restarted while it serves), and tells the waiting parent through
 * a pipe when the FUSE mount is up. The parent then exits 0, silently, or
 * prints the child's one-line error and exits 1 (refused: bad arguments,
 * the lock is held elsewhere) or 2 (failed). The pid goes to --pidfile,
 * default MOUNTDIR/../<basename of MOUNTDIR>.pid.
 *
 * A second file, MOUNTDIR/size, is the control for resize: reading it gives
 * the image's size in bytes, writing a larger number grows the image
 * (rbd_resize by the lock owner: any other client would need the lock).
 * Shrinking is refused with EINVAL.
 *
 * Every librbd error of a read, write or flush (-EROFS the lock was lost,
 * -ESHUTDOWN this client was blocklisted, -ETIMEDOUT an op timeout) is
 * handed to the FUSE caller as that errno. SIGTERM, SIGINT or an unmount
 * end the loop; then it unmounts, flushes, removes its records, releases
 * the lock, removes the pid file (the sign for ballastd that the volume is
 * free), closes the image and shuts the cluster handle down.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "rbd_fuse_int.h"

struct map m = {
	.report_fd = -1,
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* May this client still write? Not once fenced, nor while its lease is
 * lapsed here (another host may be taking the volume over). */
int may_write(void)
{
	int ok;

	if (!m.lease)
		return 1;
	pthread_mutex_lock(&m.mu);
	ok = !m.fenced && mono_ms() < m.lease_ok_ms;
	pthread_mutex_unlock(&m.mu);
	return ok;
}

/* Tell the parent how start-up ended: "0" or "<code> <message>". */
static void report(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int code, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;
	int n;

	if (m.report_fd < 0)
		return;
	n = snprintf(msg, sizeof(msg), "%d ", code);
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	if (write(m.report_fd, msg, strlen(msg)) < 0) {
		/* the parent is gone: nobody to tell */
	}
	close(m.report_fd);
	m.report_fd = -1;
}

/* --- The cluster side ----------------------------------------------------- */

/* Connect with every wait bounded by the timeout. Returns 0 or -errno
 * with the reason in msg. */
static int cluster_connect(char *msg, size_t len)
{
	char t[32];
	int ret;

	ret = rados_create(&m.cluster, m.id);
	if (ret < 0) {
		snprintf(msg, len, "cannot create a cluster handle for client.%s: %s", m.id, strerror(-ret));
		m.cluster = NULL;
		return ret;
	}
	ret = rados_conf_read_file(m.cluster, m.conf);
	if (ret < 0) {
		snprintf(msg, len, "cannot read ceph config %s: %s", m.conf, strerror(-ret));
		return ret;
	}
	snprintf(t, sizeof(t), "%u", m.timeout);
	/* No librbd cache: its default policy (write-around) acknowledges a
	 * write before the OSDs have it and reports a failure to one later
	 * flush only; another flush (librbd's own when it loses the lock)
	 * swallows it, and the file system's fsync then succeeds for a write
	 * that never landed. Every write waits for the cluster instead. */
	if ((ret = rados_conf_set(m.cluster, "rbd_cache", "false")) < 0 ||
	    (ret = rados_conf_set(m.cluster, "client_mount_timeout", t)) < 0 ||
	    (ret = rados_conf_set(m.cluster, "rados_mon_op_timeout", t)) < 0 ||
	    (ret = rados_conf_set(m.cluster, "rados_osd_op_timeout", t)) < 0 ||
	    (m.keyring && (ret = rados_conf_set(m.cluster, "keyring", m.keyring)) < 0)) {
		snprintf(msg, len, "cannot set cluster options: %s", strerror(-ret));
		return ret;
	}
	ret = rados_connect(m.cluster);
	if (ret < 0) {
		snprintf(msg, len, "cannot connect to the Ceph cluster (%s) as client.%s: %s", m.conf, m.id,
			 strerror(-ret));
		return ret;
	}
	ret = rados_ioctx_create(m.cluster, m.pool, &m.io);
	if (ret < 0) {
		snprintf(msg, len, "cannot open pool %s: %s", m.pool, strerror(-ret));
		m.io = NULL;
		return ret;
	}
	return 0;
}

/* "owner1, owner2" of the image's exclusive lock into buf; 0 when there
 * is an owner, -ENOENT when there is none, else -errno. */
static int lock_owners(char *buf, size_t len)
{
	char *owners[8];
	size_t n = sizeof(owners) / sizeof(owners[0]), off = 0;
	rbd_lock_mode_t mode;
	int ret;

	buf[0] = '\0';
	ret = rbd_lock_get_owners(m.img, &mode, owners, &n);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++) {
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", owners[i]);
		if (off >= len)
			off = len - 1;
	}
	rbd_lock_get_owners_cleanup(owners, n);
	return n ? 0 : -ENOENT;
}

/* --- ballast's records in the image metadata ------------------------------ */

/*
 * Not rbd_metadata_set/remove: librbd follows each with a header-update
 * notification to every watcher of the image and waits for all answers, up
 * to 5 s (its fixed NOTIFY_TIMEOUT) when one does not answer. A librbd
 * client that died with the image open (killed, crashed, cut off; e.g. a
 * foreign writer after its EROFS) keeps its watch until the OSD drops it
 * (osd_client_watch_timeout, 30 s). Meanwhile each lease renewal took 5 s,
 * so the lease lapsed here between renewals (writes refused), and a stop
 * took 5 s per record plus 5 s for the close, past ballastd's bound: it
 * was killed, and its own watch then slowed the next holder the same way
 * (issue 14). Nobody needs that notification (rbd_metadata_get reads the
 * header object; librbd caches no metadata but its conf_ overrides), so
 * the records are written the way librbd stores them, omap keys
 * "metadata_<key>" of the header object, in one write op each, and only
 * while librbd says this client owns the lock (rbd_is_exclusive_lock_owner
 * asks the OSDs). A client fenced by a lock break is blocklisted: the OSDs
 * refuse its writes (-EBLOCKLISTED, which is ESHUTDOWN).
 */
#define META_PREFIX "metadata_"
#define META_KEY_MAX 64

/* Remember the image's header object; 0 or -errno. */
static int header_find(void)
{
	char id[96];
	int ret = rbd_get_id(m.img, id, sizeof(id));

	if (ret < 0)
		return ret;
	snprintf(m.header_oid, sizeof(m.header_oid), "rbd_header.%s", id);
	return 0;
}

/* Is this client still the lock owner? 0, -EROFS (not the owner), or
 * -errno (-ESHUTDOWN: blocklisted). librbd asserts its lock cookie at the
 * OSD, and the cookie changes when librbd re-takes its own lock after a
 * lost watch: a "no" is asked again once before it counts. */
static int owner_check(void)
{
	int owner = 0, ret = rbd_is_exclusive_lock_owner(m.img, &owner);

	if (ret == 0 && !owner) {
		usleep(500 * 1000);
		ret = rbd_is_exclusive_lock_owner(m.img, &owner);
	}
	if (ret < 0)
		return ret;
	return owner ? 0 : -EROFS;
}

/* Set key to val, or with val NULL remove the n keys, in one write op on
 * the header object (never creating it). 0 or -errno. */
static int meta_write(const char *const *keys, size_t n, const char *val)
{
	char raw[2][META_KEY_MAX];
	const char *rk[2];
	size_t len;
	rados_write_op_t op;
	int ret = owner_check();

	if (ret < 0)
		return ret;
	if (n == 0 || n > 2 || (val && n != 1))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		snprintf(raw[i], sizeof(raw[i]), META_PREFIX "%s", keys[i]);
		rk[i] = raw[i];
	}
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_assert_exists(op);
	if (val) {
		len = strlen(val);
		rados_write_op_omap_set(op, rk, &val, &len, 1);
	} else {
		rados_write_op_omap_rm_keys(op, rk, n);
	}
	ret = rados_write_op_operate(op, m.io, m.header_oid, NULL, 0);
	rados_release_write_op(op);
	return ret;
}

static int meta_set(const char *key, const char *val)
{
	return meta_write(&key, 1, val);
}

/* Remove the records this mapper wrote. */
static void meta_clear(void)
{
	const char *keys[2];
	size_t n = 0;

	if (m.lease_set)
		keys[n++] = "ballast.lease";
	if (m.holder_set)
		keys[n++] = "ballast.holder";
	if (n)
		meta_write(keys, n, NULL);
	m.lease_set = m.holder_set = 0;
}

/* Write (or renew) ballast.lease; on success the lease covers writes
 * until lease seconds after the call began. */
static int lease_write(void)
{
	char rec[256], exp[40];
	long start = mono_ms();
	time_t until = time(NULL) + (time_t)m.lease;
	struct tm tm;
	int ret;

	gmtime_r(&until, &tm);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(rec, sizeof(rec), "{\"client\":\"client.%llu\",\"lease\":%u,\"expires\":\"%s\",\"expires_unix\":%lld}",
		 (unsigned long long)rados_get_instance_id(m.cluster), m.lease, exp, (long long)until);
	ret = meta_set("ballast.lease", rec);
	if (ret == 0) {
		pthread_mutex_lock(&m.mu);
		m.lease_ok_ms = start + (long)m.lease * 1000L;
		pthread_mutex_unlock(&m.mu);
	}
	return ret;
}

/* Open the image and take its lock. Returns 0, or an exit code with the
 * reason in msg. */
static int image_open(char *msg, size_t len)
{
	char owners[256];
	uint64_t features;
	int ret;

	if (m.read_only)
		ret = rbd_open_read_only(m.io, m.image, &m.img, NULL);
	else
		ret = rbd_open(m.io, m.image, &m.img, NULL);
	if (ret < 0) {
		snprintf(msg, len, "cannot open image %s/%s: %s", m.pool, m.image, strerror(-ret));
		m.img = NULL;
		return ret == -ENOENT ? EXIT_REFUSED : EXIT_FAILED;
	}
	if (m.read_only)
		return 0;
	ret = rbd_get_features(m.img, &features);
	if (ret < 0) {
		snprintf(msg, len, "cannot read the features of %s/%s: %s", m.pool, m.image, strerror(-ret));
		return EXIT_FAILED;
	}
	if (!(features & RBD_FEATURE_EXCLUSIVE_LOCK)) {
		snprintf(msg, len, "image %s/%s lacks the exclusive-lock feature: one writer cannot be guaranteed",
			 m.pool, m.image);
		return EXIT_REFUSED;
	}
	/* No look at the owners first: a dead owner's lock is broken by
	 * acquire, while a live owner refuses at once (EROFS). */
	ret = rbd_lock_acquire(m.img, RBD_LOCK_MODE_EXCLUSIVE);
	if (ret < 0) {
		if (lock_owners(owners, sizeof(owners)) == 0)
			snprintf(msg, len, "image %s/%s is locked by %s", m.pool, m.image, owners);
		else
			snprintf(msg, len, "cannot lock image %s/%s: %s", m.pool, m.image, strerror(-ret));
		return ret == -EROFS || ret == -EBUSY ? EXIT_REFUSED : EXIT_FAILED;
	}
	m.locked = 1;
	CRASH_POINT("rbd.mapper.after-lock");
	ret = header_find();
	if (ret < 0) {
		snprintf(msg, len, "cannot read the id of %s/%s: %s", m.pool, m.image, strerror(-ret));
		return EXIT_FAILED;
	}
	if (m.holder) {
		ret = meta_set("ballast.holder", m.holder);
		if (ret < 0) {
			snprintf(msg, len, "cannot record the holder of %s/%s: %s", m.pool, m.image, strerror(-ret));
			return EXIT_FAILED;
		}
		m.holder_set = 1;
	}
	if (m.lease) {
		ret = lease_write();
		if (ret < 0) {
			snprintf(msg, len, "cannot record the lease of %s/%s: %s", m.pool, m.image, strerror(-ret));
			return EXIT_FAILED;
		}
		m.lease_set = 1;
	}
	CRASH_POINT("rbd.mapper.after-records");
	return 0;
}

/* <pidfile without .pid>.fenced: tells ballastd this mapper was fenced. */
static void fenced_path(char *buf, size_t len)
{
	size_t n = strlen(m.pidfile);

	if (n > 4 && strcmp(m.pidfile + n - 4, ".pid") == 0)
		n -= 4;
	snprintf(buf, len, "%.*s.fenced", (int)n, m.pidfile);
}

static void mark_fenced(int why)
{
	char path[PATH_MAX + 8];
	int fd;

	pthread_mutex_lock(&m.mu);
	m.fenced = 1;
	pthread_mutex_unlock(&m.mu);
	fenced_path(path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dprintf(fd, "%s\n", strerror(-why));
		close(fd);
	}
}

/* Renew the lease every lease/3 seconds until stopped or fenced. */
static void *renew_main(void *arg)
{
	long period_ms = (long)m.lease * 1000L / 3;

	(void)arg;
	if (period_ms < 200)
		period_ms = 200;
	pthread_mutex_lock(&m.mu);
	while (!m.stopping && !m.fenced) {
		struct timespec ts;
		int ret;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += period_ms / 1000;
		ts.tv_nsec += (period_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&m.cv, &m.mu, &ts);
		if (m.stopping)
			break;
		pthread_mutex_unlock(&m.mu);
		ret = lease_write();
		if (ret == 0)
			CRASH_POINT("rbd.mapper.renew.after-write");
		/* blocklisted (EBLOCKLISTED is ESHUTDOWN) or the lock is gone:
		 * another host has the volume; never write again */
		if (ret == -ESHUTDOWN || ret == -EROFS)
			mark_fenced(ret);
		pthread_mutex_lock(&m.mu);
	}
	pthread_mutex_unlock(&m.mu);
	return NULL;
}

static void cleanup(void)
{
	if (m.renewer_running) {
		pthread_mutex_lock(&m.mu);
		m.stopping = 1;
		pthread_cond_broadcast(&m.cv);
		pthread_mutex_unlock(&m.mu);
		pthread_join(m.renewer, NULL);
		m.renewer_running = 0;
	}
	if (m.img) {
		/* Fenced: the volume is another host's now; touch nothing. */
		if (!m.read_only && !m.fenced)
			rbd_flush(m.img);
		if (!m.fenced)
			meta_clear();
		m.lease_set = m.holder_set = 0;
		if (m.locked && !m.fenced)
			rbd_lock_release(m.img);
		m.locked = 0;
		CRASH_POINT("rbd.mapper.stop.after-release");
	}
	/* Data flushed, records gone, lock released: ballastd's stop waits
	 * for this, not for the close, which waits (up to 5 s) for every
	 * watcher to hear of the release. */
	if (m.pid_written)
		unlink(m.pidfile);
	m.pid_written = 0;
	if (m.img) {
		rbd_close(m.img);
		m.img = NULL;
	}
	if (m.io) {
		rados_ioctx_destroy(m.io);
		m.io = NULL;
	}
	if (m.cluster) {
		rados_shutdown(m.cluster);
		m.cluster = NULL;
	}
}

static int write_pidfile(char *msg, size_t len)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", m.pidfile);
	f = fopen(tmp, "we");
	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0 || rename(tmp, m.pidfile) < 0) {
		snprintf(msg, len, "cannot write pid file %s: %s", m.pidfile, strerror(errno));
		return -errno;
	}
	return 0;
}

/* The daemon's life: connect, lock, mount, serve, undo. */
static int serve(void)
{
	char msg[MSG_MAX] = "", fsname[256];
	char *argv[] = { "ballast-rbd-map", "-o", fsname, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct fuse *f = NULL;
	int code = EXIT_FAILED, ret;

	m.started = time(NULL);
	if (cluster_connect(msg, sizeof(msg)) < 0)
		goto out_report;
	code = image_open(msg, sizeof(msg));
	if (code != 0)
		goto out_report;
	code = EXIT_FAILED;
	snprintf(fsname, sizeof(fsname), "fsname=rbd:%s/%s,subtype=ballast-rbd%s", m.pool, m.image,
		 m.read_only ? ",ro" : "");
	f = fuse_new(&args, &rbd_fuse_ops, sizeof(rbd_fuse_ops), NULL);
	if (!f) {
		snprintf(msg, sizeof(msg), "cannot set up FUSE");
		goto out_report;
	}
	if (fuse_mount(f, m.mountdir) != 0) {
		snprintf(msg, sizeof(msg), "cannot mount FUSE at %s (is /dev/fuse there?)", m.mountdir);
		goto out_destroy;
	}
	if (fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
		snprintf(msg, sizeof(msg), "cannot install signal handlers");
		goto out_unmount;
	}
	if (write_pidfile(msg, sizeof(msg)) < 0)
		goto out_signals;
	m.pid_written = 1;
	{
		char fp[PATH_MAX + 8];

		fenced_path(fp, sizeof(fp));
		unlink(fp); /* a fence of an earlier mapper of this volume */
	}
	if (m.lease_set) {
		if (pthread_create(&m.renewer, NULL, renew_main, NULL) != 0) {
			snprintf(msg, sizeof(msg), "cannot start the lease renewal thread");
			goto out_signals;
		}
		m.renewer_running = 1;
	}
	report(0, NULL);
	/* From here on nobody reads our stderr. */
	{
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
	}
	ret = fuse_loop_mt(f, 0);
	/* a signal ends the loop with its number: a clean stop all the same */
	code = ret == 0 || fuse_session_exited(fuse_get_session(f)) ? 0 : EXIT_FAILED;
out_signals:
	fuse_remove_signal_handlers(fuse_get_session(f));
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
out_report:
	fuse_opt_free_args(&args);
	cleanup();
	if (msg[0])
		report(code, "%s", msg);
	return code;
}

/* --- The command line and the fork ---------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: ballast-rbd-map --conf C --id USER [--keyring K] --pool P --image I "
			"--timeout S [--pidfile F] [--holder JSON [--lease S]] [--read-only] MOUNTDIR\n");
	exit(EXIT_REFUSED);
}

/* Parent side: wait for the child's report; exit with its verdict. */
static int wait_report(pid_t child, int fd)
{
	char buf[MSG_MAX + 1];
	ssize_t n;
	size_t got = 0;
	int code, status;

	while (got < MSG_MAX && (n = read(fd, buf + got, MSG_MAX - got)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	if (got == 0) {
		waitpid(child, &status, 0);
		fprintf(stderr, "ballast-rbd-map: the mapper died during start-up\n");
		return EXIT_FAILED;
	}
	code = atoi(buf);
	if (code != 0) {
		const char *sp = strchr(buf, ' ');

		waitpid(child, &status, 0);
		fprintf(stderr, "ballast-rbd-map: %s\n", sp && sp[1] ? sp + 1 : "start-up failed");
		return code == EXIT_REFUSED ? EXIT_REFUSED : EXIT_FAILED;
	}
	return 0;
}

/* A number of seconds, 1..max, for --flag; EXIT_REFUSED (said on stderr)
 * when arg is not one. */
static int parse_seconds(const char *flag, const char *arg, unsigned long max, unsigned *out)
{
	unsigned long t;
	char *end;

	errno = 0;
	t = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || t == 0 || t > max) {
		fprintf(stderr, "ballast-rbd-map: --%s %s: expected seconds, 1..%lu\n", flag, arg, max);
		return EXIT_REFUSED;
	}
	*out = (unsigned)t;
	return 0;
}

/* The flags into m; exits through usage() on an unknown one or a missing
 * required one. Returns 0 or EXIT_REFUSED (said on stderr). */
static int read_flags(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "conf", required_argument, NULL, 'c' },    { "id", required_argument, NULL, 'u' },
		{ "keyring", required_argument, NULL, 'k' }, { "pool", required_argument, NULL, 'p' },
		{ "image", required_argument, NULL, 'i' },   { "timeout", required_argument, NULL, 't' },
		{ "pidfile", required_argument, NULL, 'P' }, { "read-only", no_argument, NULL, 'r' },
		{ "holder", required_argument, NULL, 'H' },  { "state-dir", required_argument, NULL, 'S' },
		{ "lease", required_argument, NULL, 'L' },   { NULL, 0, NULL, 0 },
	};
	int c, ret = 0;

	while (ret == 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			m.conf = optarg;
			break;
		case 'u':
			m.id = optarg;
			break;
		case 'k':
			m.keyring = optarg;
			break;
		case 'p':
			m.pool = optarg;
			break;
		case 'i':
			m.image = optarg;
			break;
		case 'P':
			m.pidfile = optarg;
			break;
		case 'r':
			m.read_only = 1;
			break;
		case 'H':
			m.holder = optarg;
			break;
		case 'S':
			break; /* accepted for helper_run's sake; unused */
		case 'L':
			ret = parse_seconds("lease", optarg, 86400, &m.lease);
			break;
		case 't':
			ret = parse_seconds("timeout", optarg, 3600, &m.timeout);
			break;
		default:
			usage();
		}
	}
	return ret;
}

/* The command line into m: flags, MOUNTDIR made absolute, the default
 * pid file. Returns 0 or EXIT_REFUSED (said on stderr). */
static int parse_args(int argc, char **argv)
{
	static char pidbuf[PATH_MAX], mountbuf[PATH_MAX];
	char dirtmp[PATH_MAX], basetmp[PATH_MAX];
	int ret = read_flags(argc, argv);

	if (ret != 0)
		return ret;
	if (optind != argc - 1 || !m.conf || !m.id || !m.pool || !m.image || !m.timeout)
		usage();
	if (m.lease && (!m.holder || m.read_only)) {
		fprintf(stderr, "ballast-rbd-map: --lease needs --holder (and a writable mapping)\n");
		return EXIT_REFUSED;
	}
	if (!realpath(argv[optind], mountbuf)) {
		fprintf(stderr, "ballast-rbd-map: mount directory %s: %s\n", argv[optind], strerror(errno));
		return EXIT_REFUSED;
	}
	m.mountdir = mountbuf;
	if (m.pidfile)
		return 0;
	snprintf(dirtmp, sizeof(dirtmp), "%s", mountbuf);
	snprintf(basetmp, sizeof(basetmp), "%s", mountbuf);
	if ((size_t)snprintf(pidbuf, sizeof(pidbuf), "%s/%s.pid", dirname(dirtmp), basename(basetmp)) >=
	    sizeof(pidbuf)) {
		fprintf(stderr, "ballast-rbd-map: mount directory path too long\n");
		return EXIT_REFUSED;
	}
	m.pidfile = pidbuf;
	return 0;
}

/* The child after the fork: a session of its own, every signal let
 * through, reporting to the parent on report_fd. */
static void detach(int report_fd)
{
	sigset_t none;

	m.report_fd = report_fd;
	setsid();
	/* whoever started us may have blocked SIGTERM: we need it */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir("/") < 0) {
		/* harmless: every path we use is absolute */
	}
}

int main(int argc, char **argv)
{
	int fds[2], ret;
	pid_t pid;

	ret = parse_args(argc, argv);
	if (ret != 0)
		return ret;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "ballast-rbd-map: pipe: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "ballast-rbd-map: fork: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	if (pid > 0) {
		close(fds[1]);
		return wait_report(pid, fds[0]);
	}
	close(fds[0]);
	detach(fds[1]);
	return serve();
}
