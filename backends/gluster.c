/*
 * gluster.c - volumes as directories of one GlusterFS volume, shared by
 * every host that reaches it.
 *
 * Layout inside the Gluster volume ([gluster] dir, default /ballast):
 *   <dir>/<name>                  the volume's data (a FUSE subdirectory
 *                                 mount on each host that mounts it)
 *   <dir>/.ballast/<name>.json    ballast's facts: options, created_at,
 *                                 creator host, complete flag
 *   <dir>/.ballast/<name>.holder  exclusive volumes: who holds it, since
 *                                 when, lease expiry (renewed while mounted)
 *   <dir>/.ballast/users/<name>@<host>  every volume: one record per host
 *                                 that has it mounted, with a lease, so that
 *                                 Remove elsewhere refuses while it is used
 *   <dir>/.ballast/trash/         removed volumes, deleted in the background
 *
 * Everything but the data path goes through libgfapi on ONE glfs_t per
 * daemon, opened on the first request (init never touches the network) and
 * kept for the daemon's life: glfs_fini takes ~10 s. gfapi calls can block
 * for as long as a server does not answer, so every operation runs on a
 * worker thread and the request waits at most [gluster] timeout seconds;
 * after a timeout the handle is considered hung and replaced (the old one
 * is finalised in the background once its calls return). Quotas are set
 * through glusterd's CLI socket, since a client cannot set them itself.
 *
 * Holder records assume the hosts' clocks agree to well within the lease.
 */
#define LOG_TAG "gluster"
#include <errno.h>
#include <fcntl.h>
#include <glusterfs/api/glfs.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "common.h"
#include "config.h"
#include "crashpoint.h"
#include "fsutil.h"
#include "gl_reject.h"
#include "log.h"
#include "run.h"
#include "timeutil.h"
#include "validate.h"

#define GL_PORT 24007
#define GL_SERVERS_MAX 8
#define GL_META ".ballast"
#define GL_TRASH ".ballast/trash"
#define GL_USERS ".ballast/users"
#define GL_META_MAX (64 * 1024)
#define GL_DEFAULT_SOCK "/run/glusterd.socket"
#define GL_LOG_LEVEL 4 /* GF_LOG_WARNING */
#define GL_PATH_MAX 1024
#define GL_DIR_MAX 260 /* [gluster] dir */
#define GL_SUB_MAX (GL_DIR_MAX + 16)

enum gl_hstate { GLH_OPENING, GLH_READY, GLH_BROKEN };

/* One glfs_t. refs and state are under gl_ctx.mu; the context holds a
 * reference while the handle is current, every running job one more. */
struct gl_handle {
	glfs_t *fs;
	enum gl_hstate state;
	int refs;
	long opened_ms;
	struct gl_handle *next; /* every live handle, in gl_ctx.handles */
};

/* A name in a small list (volumes mounted here). */
struct gl_name {
	char name[VOLUME_NAME_MAX + 1];
	int exclusive;
	struct gl_name *next;
};

struct gl_ctx {
	int configured;
	atomic_ulong lease_renewals; /* for be_gluster_counters */
	char servers_buf[GL_PATH_MAX];
	const char *servers[GL_SERVERS_MAX];
	int nservers;
	char volume[256];
	char dir[GL_DIR_MAX]; /* "/ballast": absolute in the volume, no trailing '/' */
	char log[PATH_MAX];
	char sock[PATH_MAX];
	char host_id[256];
	char addr[64];				     /* local_addr's answer, once found (under mu) */
	char mounts[PATH_MAX - VOLUME_NAME_MAX - 2]; /* <state_dir>/mounts */
	int timeout_s;
	int lease_s;
	int takeover; /* may a dead holder's volume be taken after its lease */
	struct helper helper;

	pthread_mutex_t mu;
	/* Held across one renewal and across a release, so that a renewal
	 * already under way cannot write back a hold just released. */
	pthread_mutex_t renew_mu;
	pthread_cond_t cv; /* any job finished, a handle opened, or stopping */
	struct gl_handle *cur;
	struct gl_handle *handles; /* all live ones: current, hung, closing */
	struct gl_name *mounted;   /* volumes mounted here: leases to renew */
	int workers;		   /* job threads alive */
	int stopping;
	int renewer_started;
	pthread_t renewer;
};

/* One operation run on a worker thread. Shared by the waiting request and
 * the worker; the last to let go frees it (refs under gl_ctx.mu). */
struct gl_job {
	struct gl_ctx *gc;
	int (*fn)(struct gl_job *job, glfs_t *fs);
	char name[VOLUME_NAME_MAX + 1];
	json_t *in;  /* op input (owned) */
	json_t *out; /* op result (owned) */
	int flag;    /* op-specific result bit */
	int refs;
	int done;
	int abandoned; /* the request stopped waiting (timeout) */
	int ret;
	struct berr err;
	struct gl_handle *h;
};

extern const struct backend_ops be_gluster_ops;

static const char *const bool_choices[] = { "true", "false", NULL };
static const char *const gl_opts[] = { "backend", "exclusive", "gid", "mode", "quota", "takeover", "uid", NULL };

/* Keeps what fini deliberately does not free reachable, so that leak
 * checkers do not report it: a handle (glfs_fini would block exit for 10 s)
 * or a context still used by a stuck worker thread. */
static void *volatile gl_kept_at_exit[2];

/* --- small lists -------------------------------------------------------- */

static int names_has(struct gl_name *l, const char *name)
{
	for (; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			return 1;
	return 0;
}

/* Add name (once). Caller holds mu. */
static void names_add(struct gl_name **l, const char *name, int exclusive)
{
	struct gl_name *n;

	if (names_has(*l, name))
		return;
	n = calloc(1, sizeof(*n));
	if (!n) {
		log_errx("out of memory");
		return;
	}
	n->exclusive = exclusive;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->next = *l;
	*l = n;
}

/* Remove name; returns whether it was there. Caller holds mu. */
static int names_del(struct gl_name **l, const char *name)
{
	for (; *l; l = &(*l)->next) {
		if (strcmp((*l)->name, name) == 0) {
			struct gl_name *n = *l;

			*l = n->next;
			free(n);
			return 1;
		}
	}
	return 0;
}

static void names_free(struct gl_name **l)
{
	while (*l) {
		struct gl_name *n = *l;

		*l = n->next;
		free(n);
	}
}

/* --- handles ------------------------------------------------------------ */

static void *fini_thread(void *arg)
{
	glfs_t *fs = arg;

	glfs_fini(fs);
	return NULL;
}

/* Drop a reference; the last one finalises the glfs_t on a detached thread
 * (glfs_fini takes ~10 s and must never delay a request). Caller holds mu. */
static void handle_unref_locked(struct gl_ctx *gc, struct gl_handle *h)
{
	pthread_t t;
	pthread_attr_t attr;

	if (--h->refs > 0)
		return;
	for (struct gl_handle **p = &gc->handles; *p; p = &(*p)->next) {
		if (*p == h) {
			*p = h->next;
			break;
		}
	}
	if (h->fs) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, fini_thread, h->fs) != 0)
			log_warnx("cannot start a thread to close a Gluster handle: leaked");
		pthread_attr_destroy(&attr);
	}
	free(h);
}

/* Stop handing out the current handle: the next job opens a new one.
 * Caller holds mu. */
static void handle_retire_locked(struct gl_ctx *gc, struct gl_handle *h)
{
	if (!h)
		return;
	h->state = GLH_BROKEN;
	if (gc->cur == h) {
		gc->cur = NULL;
		handle_unref_locked(gc, h);
	}
}

static void servers_str(const struct gl_ctx *gc, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < gc->nservers && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", gc->servers[i]);
}

/* glfs_new .. glfs_init. Blocks as long as the servers make it; runs on a
 * worker thread only. */
static int handle_open(struct gl_ctx *gc, struct gl_handle *h, struct berr *err)
{
	char where[GL_PATH_MAX];
	int ret;

	servers_str(gc, where, sizeof(where));
	h->fs = glfs_new(gc->volume);
	if (!h->fs)
		return berr_set(err, -ENOMEM, "cannot create a Gluster handle for volume %s", gc->volume);
	for (int i = 0; i < gc->nservers; i++) {
		if (glfs_set_volfile_server(h->fs, "tcp", gc->servers[i], GL_PORT) < 0)
			return berr_set(err, -EINVAL, "invalid Gluster server %s", gc->servers[i]);
	}
	/* Records are replaced by other hosts: with md-cache's default 1 s
	 * a name looked up a moment ago keeps pointing at the deleted file
	 * (ESTALE on open, stat still succeeding). Metadata calls here are
	 * rare; take them fresh from the bricks. */
	if (glfs_set_xlator_option(h->fs, "*-md-cache", "md-cache-timeout", "0") < 0)
		log_warnx("cannot turn off gfapi's metadata cache: records may be read stale");
	glfs_set_logging(h->fs, gc->log[0] ? gc->log : "/dev/null", GL_LOG_LEVEL);
	errno = 0;
	if (glfs_init(h->fs) != 0) {
		/* glfs_init may fail without setting errno. */
		ret = errno ? -errno : -EIO;
		return berr_set(err, ret, "cannot connect to gluster volume %s at %s: %s", gc->volume, where,
				errno ? strerror(errno) : "initialisation failed (see the gfapi log)");
	}
	return 0;
}

/*
 * The handle for a job, opened if there is none, into *out: a reference
 * the caller drops with handle_unref_locked. A handle stuck in glfs_init longer
 * than the timeout is given up on. 0 or -errno with err set.
 */
static int handle_get(struct gl_ctx *gc, struct gl_handle **out, struct berr *err)
{
	struct gl_handle *h;
	int ret;

	*out = NULL;
	pthread_mutex_lock(&gc->mu);
	for (;;) {
		h = gc->cur;
		if (h && h->state == GLH_READY) {
			h->refs++;
			pthread_mutex_unlock(&gc->mu);
			*out = h;
			return 0;
		}
		if (h && h->state == GLH_OPENING) {
			long left = h->opened_ms + gc->timeout_s * 1000L - monotonic_ms();
			struct timespec ts;

			if (left <= 0) {
				log_warnx("glfs_init of volume %s did not finish within %d s: opening another handle",
					  gc->volume, gc->timeout_s);
				handle_retire_locked(gc, h);
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += left / 1000 + 1;
			pthread_cond_timedwait(&gc->cv, &gc->mu, &ts);
			continue;
		}
		break;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		pthread_mutex_unlock(&gc->mu);
		return berr_set(err, -ENOMEM, "out of memory");
	}
	h->state = GLH_OPENING;
	h->refs = 2; /* current + ours */
	h->opened_ms = monotonic_ms();
	h->next = gc->handles;
	gc->handles = h;
	gc->cur = h;
	pthread_mutex_unlock(&gc->mu);

	ret = handle_open(gc, h, err);

	pthread_mutex_lock(&gc->mu);
	if (ret == 0 && h->state == GLH_OPENING) {
		h->state = GLH_READY;
		log_infox("connected to gluster volume %s", gc->volume);
	} else if (ret < 0) {
		/* The next job tries again: the servers may be back. */
		handle_retire_locked(gc, h);
		handle_unref_locked(gc, h);
		h = NULL;
	}
	pthread_cond_broadcast(&gc->cv);
	pthread_mutex_unlock(&gc->mu);
	*out = h;
	return ret;
}

/* --- jobs: every gfapi call runs here ------------------------------------ */

/* Caller holds mu. */
static void job_unref_locked(struct gl_job *job)
{
	if (--job->refs > 0)
		return;
	json_decref(job->in);
	json_decref(job->out);
	free(job);
}

static void *job_thread(void *arg)
{
	struct gl_job *job = arg;
	struct gl_ctx *gc = job->gc;
	struct berr err = BERR_INIT;
	struct gl_handle *h;
	int ret;

	ret = handle_get(gc, &h, &err);
	if (ret == 0) {
		pthread_mutex_lock(&gc->mu);
		job->h = h;
		pthread_mutex_unlock(&gc->mu);
		ret = job->fn(job, h->fs);
		/* A name another host replaced or deleted since this client
		 * looked it up: gfapi does not always look it up again. */
		for (int i = 0; i < 2 && ret == -ESTALE; i++) {
			berr_clear(&job->err);
			json_decref(job->out);
			job->out = NULL;
			ret = job->fn(job, h->fs);
		}
	} else {
		berr_set(&job->err, ret, "%s", err.msg);
	}
	pthread_mutex_lock(&gc->mu);
	if (h)
		handle_unref_locked(gc, h);
	job->h = NULL;
	job->ret = ret;
	job->done = 1;
	gc->workers--;
	pthread_cond_broadcast(&gc->cv);
	job_unref_locked(job);
	pthread_mutex_unlock(&gc->mu);
	return NULL;
}

static void timeout_msg(struct gl_ctx *gc, struct berr *err)
{
	char where[GL_PATH_MAX];

	servers_str(gc, where, sizeof(where));
	berr_set(err, -ETIMEDOUT, "gluster volume %s at %s did not answer within %d s", gc->volume, where,
		 gc->timeout_s);
}

/*
 * Run fn for name on a worker thread and wait at most the timeout
 * (bounded) or until it ends (unbounded, for background work: then the
 * call returns at once). in is borrowed (copied); *out, when given, gets
 * the job's result (a new reference, or NULL). *flag gets job->flag.
 * Returns the job's result, -ETIMEDOUT after the timeout (the handle is
 * then replaced), or -ECANCELED when the daemon stops.
 */
static int gl_run(struct gl_ctx *gc, int (*fn)(struct gl_job *, glfs_t *), const char *name, json_t *in, int background,
		  json_t **out, int *flag, struct berr *err)
{
	struct gl_job *job = calloc(1, sizeof(*job));
	pthread_attr_t attr;
	struct timespec ts;
	pthread_t t;
	int ret;

	if (out)
		*out = NULL;
	if (!job)
		return berr_set(err, -ENOMEM, "out of memory");
	job->gc = gc;
	job->fn = fn;
	snprintf(job->name, sizeof(job->name), "%s", name ? name : "");
	job->in = in ? json_deep_copy(in) : NULL;
	job->refs = background ? 1 : 2;

	pthread_mutex_lock(&gc->mu);
	if (gc->stopping) {
		pthread_mutex_unlock(&gc->mu);
		json_decref(job->in);
		free(job);
		return berr_set(err, -ECANCELED, "ballastd is stopping");
	}
	gc->workers++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, job_thread, job);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		gc->workers--;
		pthread_mutex_unlock(&gc->mu);
		json_decref(job->in);
		free(job);
		return berr_set(err, -ret, "cannot start a Gluster worker thread: %s", strerror(ret));
	}
	if (background) {
		pthread_mutex_unlock(&gc->mu);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += gc->timeout_s;
	while (!job->done && !gc->stopping) {
		if (pthread_cond_timedwait(&gc->cv, &gc->mu, &ts) == ETIMEDOUT)
			break;
	}
	if (job->done) {
		ret = job->ret;
		if (ret < 0)
			berr_set(err, ret, "%s", job->err.msg[0] ? job->err.msg : strerror(-ret));
		if (out) {
			*out = job->out;
			job->out = NULL;
		}
		if (flag)
			*flag = job->flag;
	} else if (gc->stopping) {
		ret = berr_set(err, -ECANCELED, "ballastd is stopping");
	} else {
		/* A hung handle is replaced, never reused: its calls may
		 * never return. The job keeps its reference until they do. */
		if (job->h)
			handle_retire_locked(gc, job->h);
		else if (gc->cur && gc->cur->state == GLH_OPENING)
			handle_retire_locked(gc, gc->cur);
		if (flag)
			*flag = job->flag;
		job->abandoned = 1;
		timeout_msg(gc, err);
		ret = -ETIMEDOUT;
		log_warnx("%s: %s", job->name[0] ? job->name : "gluster", err->msg);
	}
	job_unref_locked(job);
	pthread_mutex_unlock(&gc->mu);
	return ret;
}

/* --- gfapi helpers (worker threads only) --------------------------------- */

/*
 * Paths in the volume. Names are at most VOLUME_NAME_MAX and dir at most
 * GL_DIR_MAX, so GL_PATH_MAX never truncates; a truncated path would still
 * be a wrong one, hence the checks (which also tell gcc that truncation is
 * handled).
 */
static int vol_path(const struct gl_ctx *gc, const char *name, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%s", gc->dir, name) < len ? 0 : -ENAMETOOLONG;
}

static int meta_path(const struct gl_ctx *gc, const char *name, const char *ext, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/" GL_META "/%s.%s", gc->dir, name, ext) < len ? 0 : -ENAMETOOLONG;
}

/* <dir>/<sub>, sub being GL_META or GL_TRASH. */
static int sub_path(const struct gl_ctx *gc, const char *sub, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%s", gc->dir, sub) < len ? 0 : -ENAMETOOLONG;
}

/* mkdir -p through gfapi; path is absolute in the volume. */
static int gfs_mkdir_p(glfs_t *fs, const char *path, mode_t mode)
{
	char buf[GL_PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (glfs_mkdir(fs, buf, mode) < 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

/* Read a small file into a JSON value (new reference). -ENOENT when absent,
 * -EBADMSG when it is not JSON. */
static int gfs_read_json(glfs_t *fs, const char *path, json_t **out)
{
	char *buf = malloc(GL_META_MAX + 1);
	glfs_fd_t *fd;
	size_t used = 0;
	ssize_t n;
	int ret = 0;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	fd = glfs_open(fs, path, O_RDONLY);
	if (!fd) {
		ret = -errno;
		goto out_free;
	}
	while (used < GL_META_MAX && (n = glfs_read(fd, buf + used, GL_META_MAX - used, 0)) > 0)
		used += (size_t)n;
	if (n < 0)
		ret = -errno;
	glfs_close(fd);
	if (ret == 0) {
		buf[used] = '\0';
		*out = json_loadb(buf, used, 0, NULL);
		if (!*out)
			ret = -EBADMSG;
	}
out_free:
	free(buf);
	return ret;
}

/* Write v to a temporary file beside path and return its name in tmp. */
static int gfs_write_tmp(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v, char *tmp, size_t len)
{
	char *data = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	size_t dlen, off = 0;
	glfs_fd_t *fd;
	int ret = 0;

	if (!data)
		return -ENOMEM;
	dlen = strlen(data);
	snprintf(tmp, len, "%s.tmp.%s.%ld.%lx", path, gc->host_id, (long)getpid(), (unsigned long)pthread_self());
	fd = glfs_creat(fs, tmp, O_WRONLY | O_TRUNC, 0644);
	if (!fd) {
		ret = -errno;
		goto out_free;
	}
	while (off < dlen) {
		ssize_t n = glfs_write(fd, data + off, dlen - off, 0);

		if (n < 0) {
			ret = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (ret == 0 && glfs_fsync(fd, NULL, NULL) < 0)
		ret = -errno;
	if (glfs_close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		glfs_unlink(fs, tmp);
out_free:
	free(data);
	return ret;
}

/* Publish v at path only if nothing is there (link is atomic and never
 * replaces): -EEXIST when another writer was first. */
static int gfs_publish_new(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v)
{
	char tmp[GL_PATH_MAX + 128];
	int ret = gfs_write_tmp(gc, fs, path, v, tmp, sizeof(tmp));

	if (ret < 0)
		return ret;
	if (glfs_link(fs, tmp, path) < 0)
		ret = -errno;
	glfs_unlink(fs, tmp);
	return ret;
}

/* Replace path with v atomically. */
static int gfs_replace(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v)
{
	char tmp[GL_PATH_MAX + 128];
	int ret = gfs_write_tmp(gc, fs, path, v, tmp, sizeof(tmp));

	if (ret < 0)
		return ret;
	if (glfs_rename(fs, tmp, path) < 0) {
		ret = -errno;
		glfs_unlink(fs, tmp);
	}
	return ret;
}

/* Delete path and everything below it (never following symlinks). */
static int gfs_rm_rf(glfs_t *fs, const char *path)
{
	struct stat st;
	glfs_fd_t *dir;
	struct dirent *de;
	int ret = 0;

	if (glfs_lstat(fs, path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return glfs_unlink(fs, path) < 0 && errno != ENOENT ? -errno : 0;
	dir = glfs_opendir(fs, path);
	if (!dir)
		return -errno;
	while (ret == 0 && (errno = 0, de = glfs_readdir(dir))) {
		char child[GL_PATH_MAX];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, de->d_name) >= sizeof(child)) {
			ret = -ENAMETOOLONG;
			break;
		}
		ret = gfs_rm_rf(fs, child);
	}
	if (ret == 0 && errno)
		ret = -errno;
	glfs_closedir(dir);
	if (ret == 0 && glfs_rmdir(fs, path) < 0 && errno != ENOENT)
		ret = -errno;
	return ret;
}

/* --- holder records ------------------------------------------------------ */

/*
 * This host's address as the Gluster servers see it (the source address
 * of a route to the first server), for fencing: "" when unknown. Found
 * once; a UDP connect sends nothing.
 */
static void local_addr(struct gl_ctx *gc, char *buf, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[8];
	int fd = -1;

	pthread_mutex_lock(&gc->mu);
	snprintf(buf, len, "%s", gc->addr);
	pthread_mutex_unlock(&gc->mu);
	if (buf[0])
		return;
	snprintf(port, sizeof(port), "%d", GL_PORT);
	if (getaddrinfo(gc->servers[0], port, &hints, &ai) != 0 || !ai)
		return;
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST) == 0) {
		pthread_mutex_lock(&gc->mu);
		snprintf(gc->addr, sizeof(gc->addr), "%s", buf);
		pthread_mutex_unlock(&gc->mu);
	} else {
		buf[0] = '\0';
	}
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
}

static json_t *holder_record(struct gl_ctx *gc, const char *since)
{
	time_t now = time(NULL);
	char nowbuf[40], exp[40], addr[64];

	rfc3339_format(now, nowbuf, sizeof(nowbuf));
	rfc3339_format(now + gc->lease_s, exp, sizeof(exp));
	local_addr(gc, addr, sizeof(addr));
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "host", gc->host_id, "since", since ? since : nowbuf,
			 "expires", exp, "expires_unix", (json_int_t)(now + gc->lease_s), "lease",
			 (json_int_t)gc->lease_s, "addr", addr);
}

static int holder_is_ours(struct gl_ctx *gc, json_t *rec)
{
	const char *host = json_string_value(json_object_get(rec, "host"));

	return host && strcmp(host, gc->host_id) == 0;
}

static int holder_expired(json_t *rec)
{
	return json_integer_value(json_object_get(rec, "expires_unix")) < (json_int_t)time(NULL);
}

static int in_use_msg(struct gl_job *job, json_t *rec)
{
	const char *host = json_string_value(json_object_get(rec, "host"));
	const char *since = json_string_value(json_object_get(rec, "since"));

	return berr_set(&job->err, -EBUSY, "volume %s is in use on host %s since %s (exclusive)", job->name,
			host ? host : "?", since ? since : "?");
}

/*
 * Take the holder record of job->name for this host. A record of ours is
 * renewed (a restart of this daemon); one of another host is refused
 * unless its lease ran out and takeover is allowed: it is then moved aside
 * (rename: only one host can move a given file) and checked to be the
 * expired one we read before ours is published.
 */
static int hold_take(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX], tomb[GL_PATH_MAX + 64];
	json_t *rec = NULL, *moved = NULL, *mine = NULL;
	int ret;

	meta_path(gc, job->name, "holder", path, sizeof(path));
	for (int attempt = 0; attempt < 3; attempt++) {
		json_decref(rec);
		rec = NULL;
		ret = gfs_read_json(fs, path, &rec);
		if (ret == -ENOENT) {
			mine = holder_record(gc, NULL);
			ret = mine ? gfs_publish_new(gc, fs, path, mine) : -ENOMEM;
			json_decref(mine);
			mine = NULL;
			if (ret == -EEXIST)
				continue; /* another host was first: look again */
			if (ret < 0)
				berr_set(&job->err, ret, "cannot record the holder of %s in gluster: %s", job->name,
					 strerror(-ret));
			goto out;
		}
		if (ret == -EBADMSG) {
			/* A record being replaced, or garbage: both mean wait. */
			ret = berr_set(&job->err, -EBUSY, "volume %s has an unreadable holder record (%s); retry",
				       job->name, path);
			goto out;
		}
		if (ret < 0) {
			berr_set(&job->err, ret, "cannot read the holder of %s: %s", job->name, strerror(-ret));
			goto out;
		}
		if (holder_is_ours(gc, rec)) {
			mine = holder_record(gc, json_string_value(json_object_get(rec, "since")));
			ret = mine ? gfs_replace(gc, fs, path, mine) : -ENOMEM;
			if (ret < 0)
				berr_set(&job->err, ret, "cannot renew the holder of %s: %s", job->name,
					 strerror(-ret));
			goto out;
		}
		/* Taken over only once its holder was fenced: the very record
		 * the caller read and fenced (not one renewed since). */
		if (!holder_expired(rec) || !json_is_true(json_object_get(job->in, "takeover")) ||
		    !json_equal(rec, json_object_get(job->in, "fenced"))) {
			ret = in_use_msg(job, rec);
			goto out;
		}
		if ((size_t)snprintf(tomb, sizeof(tomb), "%s.broken.%ld", path, (long)time(NULL)) >= sizeof(tomb) ||
		    glfs_rename(fs, path, tomb) < 0) {
			if (errno == ENOENT)
				continue;
			ret = berr_set(&job->err, -errno, "cannot break the expired hold of %s: %s", job->name,
				       strerror(errno));
			goto out;
		}
		ret = gfs_read_json(fs, tomb, &moved);
		if (ret == 0 && !json_equal(moved, rec)) {
			/* We moved a fresh record another host just wrote: put
			 * it back (link never replaces) and give way. */
			if (glfs_link(fs, tomb, path) < 0)
				log_errx("volume %s: lost the holder record of %s while breaking an expired one",
					 job->name, json_string_value(json_object_get(moved, "host")));
			glfs_unlink(fs, tomb);
			ret = in_use_msg(job, moved);
			goto out;
		}
		glfs_unlink(fs, tomb);
		log_warnx("volume %s: taking over from %s, whose lease expired at %s", job->name,
			  json_string_value(json_object_get(rec, "host")),
			  json_string_value(json_object_get(rec, "expires")));
	}
	if (ret == 0 || ret == -EEXIST)
		ret = berr_set(&job->err, -EBUSY, "volume %s: the holder record keeps changing; retry", job->name);
out:
	json_decref(rec);
	json_decref(moved);
	json_decref(mine);
	return ret;
}

/* Drop our holder record of job->name (another host's is left alone). */
static int hold_drop(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	json_t *rec = NULL;
	int ret;

	meta_path(job->gc, job->name, "holder", path, sizeof(path));
	ret = gfs_read_json(fs, path, &rec);
	if (ret == -ENOENT)
		return 0;
	if (ret == 0 && holder_is_ours(job->gc, rec) && glfs_unlink(fs, path) < 0 && errno != ENOENT)
		ret = -errno;
	if (ret < 0)
		berr_set(&job->err, ret, "cannot release the hold of %s: %s", job->name, strerror(-ret));
	json_decref(rec);
	return ret;
}

/* Renew our holder record of job->name; job->flag = 1 when it is not ours
 * any more. */
static int hold_renew(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX];
	json_t *rec = NULL, *mine = NULL;
	int ret;

	meta_path(gc, job->name, "holder", path, sizeof(path));
	ret = gfs_read_json(fs, path, &rec);
	if (ret == 0 && !holder_is_ours(gc, rec)) {
		job->flag = 1;
		ret = berr_set(&job->err, -EBUSY, "volume %s is now held by %s", job->name,
			       json_string_value(json_object_get(rec, "host")));
	} else if (ret == 0 || ret == -ENOENT) {
		mine = holder_record(gc, ret == 0 ? json_string_value(json_object_get(rec, "since")) : NULL);
		ret = mine ? gfs_replace(gc, fs, path, mine) : -ENOMEM;
	}
	json_decref(rec);
	json_decref(mine);
	return ret;
}

/* --- user records: who has a volume mounted ------------------------------------ */

static int user_path(const struct gl_ctx *gc, const char *name, const char *host, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/" GL_USERS "/%s@%s", gc->dir, name, host) < len ? 0 : -ENAMETOOLONG;
}

/* Write (or renew) this host's user record of job->name. */
static int user_put(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX];
	json_t *rec;
	int ret;

	ret = sub_path(gc, GL_USERS, path, sizeof(path));
	if (ret == 0)
		ret = gfs_mkdir_p(fs, path, 0755);
	if (ret == 0)
		ret = user_path(gc, job->name, gc->host_id, path, sizeof(path));
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot record the mount of %s in gluster: %s", job->name,
				strerror(-ret));
	rec = holder_record(gc, NULL);
	ret = rec ? gfs_replace(gc, fs, path, rec) : -ENOMEM;
	json_decref(rec);
	if (ret < 0)
		berr_set(&job->err, ret, "cannot record the mount of %s in gluster: %s", job->name, strerror(-ret));
	return ret;
}

/* The first live user record of job->name by another host, as a refusal;
 * expired ones are deleted on the way. 0 when there is none. */
static int user_check_others(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char dir[GL_SUB_MAX], path[GL_PATH_MAX];
	size_t nlen = strlen(job->name);
	struct dirent *de;
	glfs_fd_t *d;
	int ret = 0;

	if (sub_path(gc, GL_USERS, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	d = glfs_opendir(fs, dir);
	if (!d)
		return errno == ENOENT
			       ? 0
			       : berr_set(&job->err, -errno, "cannot read %s in gluster: %s", dir, strerror(errno));
	while (ret == 0 && (de = glfs_readdir(d))) {
		json_t *rec = NULL;

		if (strncmp(de->d_name, job->name, nlen) != 0 || de->d_name[nlen] != '@' ||
		    strcmp(de->d_name + nlen + 1, gc->host_id) == 0 || strstr(de->d_name, ".tmp."))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		ret = gfs_read_json(fs, path, &rec);
		if (ret == -ESTALE)
			break; /* replaced by a renewal: the caller reads again */
		if (ret < 0) {
			ret = 0;
			continue;
		}
		if (holder_expired(rec)) {
			glfs_unlink(fs, path);
		} else {
			const char *since = json_string_value(json_object_get(rec, "since"));

			ret = berr_set(&job->err, -EBUSY,
				       "volume %s is mounted on host %s (since %s); unmount it there first", job->name,
				       de->d_name + nlen + 1, since ? since : "?");
		}
		json_decref(rec);
	}
	glfs_closedir(d);
	return ret;
}

/* Renew this host's records of job->name (in: {"exclusive"}). */
static int op_renew(struct gl_job *job, glfs_t *fs)
{
	int ret = user_put(job, fs);

	if (ret == 0 && json_is_true(json_object_get(job->in, "exclusive")))
		ret = hold_renew(job, fs);
	return ret;
}

/* Drop this host's records of job->name (in: {"exclusive"}). */
static int op_release(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	int ret = 0;

	if (user_path(job->gc, job->name, job->gc->host_id, path, sizeof(path)) == 0 && glfs_unlink(fs, path) < 0 &&
	    errno != ENOENT)
		ret = berr_set(&job->err, -errno, "cannot drop the mount record of %s: %s", job->name, strerror(errno));
	if (json_is_true(json_object_get(job->in, "exclusive"))) {
		int hret = hold_drop(job, fs);

		ret = ret ? ret : hret;
	}
	return ret;
}

/* The record <name>.<ext> of job->name into job->out (none: NULL). */
static int read_record(struct gl_job *job, glfs_t *fs, const char *ext)
{
	char path[GL_PATH_MAX];
	int ret;

	meta_path(job->gc, job->name, ext, path, sizeof(path));
	ret = gfs_read_json(fs, path, &job->out);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		berr_set(&job->err, ret, "cannot read the %s record of %s: %s", ext, job->name, strerror(-ret));
	return ret;
}

/* The holder record of job->name into job->out (none: NULL). */
static int op_holder(struct gl_job *job, glfs_t *fs)
{
	return read_record(job, fs, "holder");
}

/* Drop the holder record of job->name, but only if it is still the one
 * in job->in "expect" (moved aside, compared, then deleted or put back). */
static int op_unhold(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX], tomb[GL_PATH_MAX + 64];
	json_t *moved = NULL;
	int ret;

	meta_path(job->gc, job->name, "holder", path, sizeof(path));
	if ((size_t)snprintf(tomb, sizeof(tomb), "%s.broken.%ld", path, (long)time(NULL)) >= sizeof(tomb))
		return berr_set(&job->err, -ENAMETOOLONG, "path too long");
	if (glfs_rename(fs, path, tomb) < 0)
		return errno == ENOENT ? 0
				       : berr_set(&job->err, -errno, "cannot break the hold of %s: %s", job->name,
						  strerror(errno));
	ret = gfs_read_json(fs, tomb, &moved);
	if (ret == 0 && !json_equal(moved, json_object_get(job->in, "expect"))) {
		if (glfs_link(fs, tomb, path) < 0)
			log_errx("volume %s: lost a holder record while releasing another", job->name);
		ret = in_use_msg(job, moved);
	} else {
		ret = 0;
	}
	glfs_unlink(fs, tomb);
	json_decref(moved);
	return ret;
}

/* The fence note of job->name ({addr: {"host","by","at"}}) into job->out. */
static int op_fence_read(struct gl_job *job, glfs_t *fs)
{
	return read_record(job, fs, "fence");
}

/* Add (in "add") or drop in "addr" in the fence note of job->name. */
static int op_fence_note(struct gl_job *job, glfs_t *fs)
{
	const char *addr = json_string_value(json_object_get(job->in, "addr"));
	char path[GL_PATH_MAX], at[40];
	json_t *note = NULL;
	int ret;

	meta_path(job->gc, job->name, "fence", path, sizeof(path));
	ret = gfs_read_json(fs, path, &note);
	if (ret == -ENOENT || ret == -EBADMSG) {
		note = json_object();
		ret = 0;
	}
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot read the fence note of %s: %s", job->name, strerror(-ret));
	rfc3339_format(time(NULL), at, sizeof(at));
	if (json_is_true(json_object_get(job->in, "add")))
		json_object_set_new(note, addr,
				    json_pack("{s:O, s:s, s:s}", "host", json_object_get(job->in, "host"), "by",
					      job->gc->host_id, "at", at));
	else
		json_object_del(note, addr);
	if (json_object_size(note))
		ret = gfs_replace(job->gc, fs, path, note);
	else if (glfs_unlink(fs, path) < 0 && errno != ENOENT)
		ret = -errno;
	json_decref(note);
	if (ret < 0)
		berr_set(&job->err, ret, "cannot write the fence note of %s: %s", job->name, strerror(-ret));
	return ret;
}

/* --- operations ----------------------------------------------------------- */

/* The options stored for a volume, from its facts record. */
static json_t *meta_opts(json_t *meta)
{
	return json_object_get(meta, "options");
}

/*
 * Create job. in: {"options", "created_at", "uid", "gid", "mode"}.
 * Claims the name by publishing the facts record (atomic: one host wins),
 * then makes the directory. A record with the same options is an existing
 * volume (success, job->flag = 0: nothing made here); other options are
 * refused. out: the record; job->flag = 1 when this call published it.
 */
static int op_create(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX], dir[GL_SUB_MAX];
	json_t *meta = NULL, *opts = json_object_get(job->in, "options");
	int made_dir = 0, ret;

	sub_path(gc, GL_TRASH, dir, sizeof(dir));
	ret = gfs_mkdir_p(fs, dir, 0755);
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot create %s in gluster volume %s: %s", dir, gc->volume,
				strerror(-ret));
	meta_path(gc, job->name, "json", path, sizeof(path));
	ret = gfs_read_json(fs, path, &meta);
	if (ret == -ENOENT) {
		meta = json_pack("{s:s, s:O, s:s, s:s, s:b}", "name", job->name, "options", opts, "created_at",
				 json_string_value(json_object_get(job->in, "created_at")), "created_by", gc->host_id,
				 "complete", 0);
		ret = meta ? gfs_publish_new(gc, fs, path, meta) : -ENOMEM;
		if (ret == 0)
			job->flag = 1;
		if (ret == -EEXIST) { /* another host, at the same moment */
			json_decref(meta);
			meta = NULL;
			ret = gfs_read_json(fs, path, &meta);
		}
	}
	if (ret < 0) {
		berr_set(&job->err, ret, "cannot record volume %s in gluster (%s): %s", job->name, path,
			 strerror(-ret));
		goto out;
	}
	if (!job->flag && !json_equal(meta_opts(meta), opts)) {
		char *had = json_dumps(meta_opts(meta), JSON_COMPACT | JSON_SORT_KEYS);

		ret = berr_set(&job->err, -EEXIST,
			       "volume %s already exists in gluster volume %s with other options (%s, created by %s)",
			       job->name, gc->volume, had ? had : "?",
			       json_string_value(json_object_get(meta, "created_by")));
		free(had);
		goto out;
	}
	vol_path(gc, job->name, path, sizeof(path));
	if (glfs_mkdir(fs, path, 0700) == 0)
		made_dir = 1;
	else if (errno != EEXIST) {
		ret = berr_set(&job->err, -errno, "cannot create %s in gluster volume %s: %s", path, gc->volume,
			       strerror(errno));
		goto out;
	}
	if (made_dir || job->flag || !json_is_true(json_object_get(meta, "complete"))) {
		/* Made now, or by an interrupted Create: give it the
		 * volume's owner and mode. A finished volume keeps what its
		 * users did to it. */
		if (glfs_chown(fs, path, (uid_t)json_integer_value(json_object_get(job->in, "uid")),
			       (gid_t)json_integer_value(json_object_get(job->in, "gid"))) < 0 ||
		    glfs_chmod(fs, path, (mode_t)json_integer_value(json_object_get(job->in, "mode"))) < 0) {
			ret = berr_set(&job->err, -errno, "cannot set owner and mode of %s in gluster: %s", path,
				       strerror(errno));
			goto out;
		}
	}
	job->out = json_incref(meta);
out:
	json_decref(meta);
	return ret;
}

/* Mark job->name's record complete (in: the record). */
static int op_complete(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	json_t *meta = json_deep_copy(job->in);
	int ret;

	if (!meta)
		return -ENOMEM;
	json_object_set_new(meta, "complete", json_true());
	meta_path(job->gc, job->name, "json", path, sizeof(path));
	ret = gfs_replace(job->gc, fs, path, meta);
	if (ret < 0)
		berr_set(&job->err, ret, "cannot update %s in gluster: %s", path, strerror(-ret));
	json_decref(meta);
	return ret;
}

/*
 * Remove job: refuse while another host holds or mounts it; move the data
 * aside into the trash (fast whatever its size), then drop the records.
 * in: {"check_only"} to stop after the checks. out: the facts record if
 * there was one; job->flag = 1 when data went to the trash.
 */
static int op_remove(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX], trash[GL_PATH_MAX], dir[GL_SUB_MAX];
	json_t *rec = NULL;
	int ret;

	meta_path(gc, job->name, "holder", path, sizeof(path));
	ret = gfs_read_json(fs, path, &rec);
	if (ret == -ESTALE) /* replaced under us (a renewal): read again */
		return ret;
	if (ret == 0 && !holder_is_ours(gc, rec) && !holder_expired(rec)) {
		ret = in_use_msg(job, rec);
		json_decref(rec);
		return ret;
	}
	json_decref(rec);
	ret = user_check_others(job, fs);
	if (ret < 0)
		return ret;
	meta_path(gc, job->name, "json", path, sizeof(path));
	if (gfs_read_json(fs, path, &job->out) < 0)
		job->out = NULL;
	if (json_is_true(json_object_get(job->in, "check_only")))
		return 0;
	if (user_path(gc, job->name, gc->host_id, path, sizeof(path)) == 0)
		glfs_unlink(fs, path);
	sub_path(gc, GL_TRASH, dir, sizeof(dir));
	ret = gfs_mkdir_p(fs, dir, 0755);
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot create %s in gluster: %s", dir, strerror(-ret));
	vol_path(gc, job->name, path, sizeof(path));
	if ((size_t)snprintf(trash, sizeof(trash), "%s/%s.%ld.%ld", dir, job->name, (long)time(NULL),
			     monotonic_ms() % 1000000) >= sizeof(trash))
		return berr_set(&job->err, -ENAMETOOLONG, "path too long");
	if (glfs_rename(fs, path, trash) == 0)
		job->flag = 1;
	else if (errno != ENOENT)
		return berr_set(&job->err, -errno, "cannot remove %s from gluster: %s", path, strerror(errno));
	meta_path(gc, job->name, "holder", path, sizeof(path));
	glfs_unlink(fs, path);
	meta_path(gc, job->name, "json", path, sizeof(path));
	if (glfs_unlink(fs, path) < 0 && errno != ENOENT)
		return berr_set(&job->err, -errno, "cannot remove %s from gluster: %s", path, strerror(errno));
	return 0;
}

/* Background job: delete everything in the trash. */
static int op_purge(struct gl_job *job, glfs_t *fs)
{
	char dir[GL_SUB_MAX], child[GL_PATH_MAX];
	glfs_fd_t *d;
	struct dirent *de;
	int ret = 0;

	sub_path(job->gc, GL_TRASH, dir, sizeof(dir));
	d = glfs_opendir(fs, dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = glfs_readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s/%s", dir, de->d_name);
		ret = gfs_rm_rf(fs, child);
		if (ret < 0)
			log_warnx("cannot delete %s from gluster: %s", child, strerror(-ret));
	}
	glfs_closedir(d);
	return ret;
}

/*
 * Mount preparation: the volume's directory must exist; an exclusive one
 * is taken for this host. job->flag = 1 when the hold was taken.
 */
static int op_prepare(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	struct stat st;
	int abandoned, ret;

	vol_path(job->gc, job->name, path, sizeof(path));
	if (glfs_stat(fs, path, &st) < 0)
		return berr_set(&job->err, -errno, "volume %s: %s in gluster volume %s: %s", job->name, path,
				job->gc->volume,
				errno == ENOENT ? "missing (removed on another host?)" : strerror(errno));
	if (json_is_true(json_object_get(job->in, "exclusive"))) {
		ret = hold_take(job, fs);
		if (ret < 0)
			return ret;
		job->flag = 1;
	}
	ret = user_put(job, fs);
	pthread_mutex_lock(&job->gc->mu);
	abandoned = job->abandoned;
	pthread_mutex_unlock(&job->gc->mu);
	if (abandoned) {
		/* The Mount already failed on its time bound: undo what this
		 * late call recorded, or it would block others until the
		 * lease runs out. */
		op_release(job, fs);
		ret = -ETIMEDOUT;
	}
	return ret;
}

/* List job: every complete volume's facts record. out: an array. */
static int op_list(struct gl_job *job, glfs_t *fs)
{
	char dir[GL_SUB_MAX], path[GL_PATH_MAX];
	json_t *all = json_array(), *meta;
	struct dirent *de;
	glfs_fd_t *d;
	int ret;

	if (!all)
		return -ENOMEM;
	sub_path(job->gc, GL_META, dir, sizeof(dir));
	d = glfs_opendir(fs, dir);
	if (!d) {
		if (errno == ENOENT) {
			job->out = all;
			return 0;
		}
		json_decref(all);
		return berr_set(&job->err, -errno, "cannot list %s in gluster: %s", dir, strerror(errno));
	}
	while ((de = glfs_readdir(d))) {
		size_t n = strlen(de->d_name);
		char name[VOLUME_NAME_MAX + 1];

		if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0 || n - 5 > VOLUME_NAME_MAX)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 5), de->d_name);
		if (validate_name(name, NULL) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ret = gfs_read_json(fs, path, &meta);
		if (ret == -ESTALE) {
			/* Replaced under us: the whole list is read again. A
			 * missing name would make the catalog drop it. */
			glfs_closedir(d);
			json_decref(all);
			return ret;
		}
		if (ret < 0)
			continue;
		if (json_is_true(json_object_get(meta, "complete")) && json_is_object(meta_opts(meta)))
			json_array_append_new(all, json_pack("{s:s, s:O, s:O, s:O}", "name", name, "options",
							     meta_opts(meta), "created_at",
							     json_object_get(meta, "created_at"), "created_by",
							     json_object_get(meta, "created_by")));
		json_decref(meta);
	}
	glfs_closedir(d);
	job->out = all;
	return 0;
}

/* Lookup job: job->name's facts, as op_list gives them, into job->out
 * (NULL when there is no complete volume of that name). */
static int op_lookup(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	json_t *meta = NULL;
	int ret;

	meta_path(job->gc, job->name, "json", path, sizeof(path));
	ret = gfs_read_json(fs, path, &meta);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot read %s in gluster: %s", path, strerror(-ret));
	if (json_is_true(json_object_get(meta, "complete")) && json_is_object(meta_opts(meta)))
		job->out = json_pack("{s:s, s:O, s:O, s:O}", "name", job->name, "options", meta_opts(meta),
				     "created_at", json_object_get(meta, "created_at"), "created_by",
				     json_object_get(meta, "created_by"));
	json_decref(meta);
	return 0;
}

/* --- glusterd CLI (quota) ------------------------------------------------- */

/* Run `gluster --mode=script --glusterd-sock=SOCK args...` with the time
 * bound; its last output line becomes the error. */
/* Run the gluster CLI through glusterd's socket; its last output line
 * into out (when given). */
static int gl_cli_out(struct gl_ctx *gc, const char *const *args, char *out, size_t outlen, struct berr *err)
{
	const char *argv[16];
	char sockopt[PATH_MAX + 32], line[BERR_MSG_MAX] = "";
	int argc = 0, status = 0, ret;

	if (access(gc->sock, F_OK) < 0)
		return berr_set(
			err, -ENOTSUP,
			"quotas and fencing need glusterd's CLI socket %s, which is missing on this host: set [gluster] glusterd_socket",
			gc->sock);
	snprintf(sockopt, sizeof(sockopt), "--glusterd-sock=%s", gc->sock);
	argv[argc++] = "gluster";
	argv[argc++] = "--mode=script";
	argv[argc++] = sockopt;
	for (int i = 0; args[i] && argc < 15; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	ret = run_bounded(argv, (int)gc->timeout_s, &status, line, sizeof(line));
	if (ret == -ETIMEDOUT) {
		timeout_msg(gc, err);
		return ret;
	}
	if (ret < 0)
		return berr_set(err, ret, "cannot run gluster (glusterfs-server): %s", strerror(-ret));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (out)
			snprintf(out, outlen, "%s", line);
		return 0;
	}
	return berr_set(err, -EIO, "%s", line[0] ? line : "gluster failed without a message");
}

static int gl_cli(struct gl_ctx *gc, const char *const *args, struct berr *err)
{
	return gl_cli_out(gc, args, NULL, 0, err);
}

/* --- fencing: auth.reject of one host's address for one directory ------- */

/*
 * The bricks refuse a client whose address auth.reject lists for the
 * directory it mounted ("/ballast/pgdata(10.0.0.5|10.0.0.6),..."), and
 * cut such a client at once when the option is set: its writes fail with
 * ENOTCONN, never reaching the brick, and it unmounts itself when it
 * reconnects. Other hosts, and the fenced host's mounts of other
 * directories, are untouched. The option is one string per Gluster
 * volume: read, edit, write, read back (a concurrent edit by another
 * host is retried).
 */
static int reject_get(struct gl_ctx *gc, char *val, size_t len, struct berr *err)
{
	const char *args[] = { "volume", "get", gc->volume, "auth.reject", NULL };
	char line[BERR_MSG_MAX];
	int ret = gl_cli_out(gc, args, line, sizeof(line), err);

	if (ret < 0)
		return ret;
	ret = gl_reject_parse(line, val, len);
	if (ret == -EINVAL)
		return berr_set(err, ret, "unexpected answer to gluster volume get %s auth.reject: %.80s", gc->volume,
				line);
	if (ret < 0)
		return berr_set(err, ret, "auth.reject of %s is too long", gc->volume);
	return 0;
}

/* Add addr to (add) or lift it from the fence of volume name. */
static int fence_set(struct gl_ctx *gc, const char *name, const char *addr, int add, struct berr *err)
{
	char path[GL_PATH_MAX], cur[4096], next[4096];
	int ret = 0;

	vol_path(gc, name, path, sizeof(path));
	for (int attempt = 0; attempt < 4; attempt++) {
		ret = reject_get(gc, cur, sizeof(cur), err);
		if (ret < 0)
			return ret;
		if (gl_reject_has(cur, path, addr) == add)
			return 0; /* as wanted (perhaps after a retry) */
		if (attempt == 3)
			break;
		if (gl_reject_edit(cur, path, addr, add, next, sizeof(next)) < 0)
			return berr_set(err, -E2BIG, "auth.reject of %s would be too long", gc->volume);
		if (next[0]) {
			const char *args[] = { "volume", "set", gc->volume, "auth.reject", next, NULL };

			ret = gl_cli(gc, args, err);
		} else {
			const char *args[] = { "volume", "reset", gc->volume, "auth.reject", NULL };

			ret = gl_cli(gc, args, err);
		}
		if (ret < 0)
			return ret;
	}
	return berr_set(err, -EAGAIN, "auth.reject of %s keeps changing under us; retry", gc->volume);
}

/* --- the ops -------------------------------------------------------------- */

static int be_gluster_init(const struct ballast_config *cfg, void **ctx, struct berr *err)
{
	struct gl_ctx *gc = calloc(1, sizeof(*gc));
	const char *servers = config_get(cfg, "gluster", "servers");
	const char *volume = config_get(cfg, "gluster", "volume");
	const char *dir = config_get(cfg, "gluster", "dir");
	const char *v;
	unsigned long n;
	char *save = NULL;
	int ret;

	if (!gc)
		return berr_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&gc->mu, NULL);
	pthread_mutex_init(&gc->renew_mu, NULL);
	pthread_cond_init(&gc->cv, NULL);
	ret = config_get_uint(cfg, "gluster", "timeout", &n, err);
	if (ret < 0)
		goto out_free;
	gc->timeout_s = n > 3600 ? 3600 : (int)n;
	ret = config_get_uint(cfg, "gluster", "lease", &n, err);
	if (ret < 0)
		goto out_free;
	gc->lease_s = n > 86400 ? 86400 : (int)n;
	v = config_get(cfg, "gluster", "takeover");
	if (v && (ret = check_choice("gluster", "takeover", v, takeover_choices, err)) < 0)
		goto out_free;
	gc->takeover = !v || strcmp(v, "after-lease") == 0;
	snprintf(gc->host_id, sizeof(gc->host_id), "%s", config_get(cfg, "ballast", "host_id"));
	snprintf(gc->log, sizeof(gc->log), "%s", (v = config_get(cfg, "gluster", "log")) ? v : "");
	snprintf(gc->sock, sizeof(gc->sock), "%s",
		 (v = config_get(cfg, "gluster", "glusterd_socket")) ? v : GL_DEFAULT_SOCK);
	if ((size_t)snprintf(gc->mounts, sizeof(gc->mounts), "%s/mounts", config_get(cfg, "ballast", "state_dir")) >=
	    sizeof(gc->mounts)) {
		ret = berr_set(err, -ENAMETOOLONG, "[ballast] state_dir is too long");
		goto out_free;
	}
	if (!dir || dir[0] != '/' || strlen(dir) >= GL_DIR_MAX || strstr(dir, "/.") || strchr(dir, ',')) {
		ret = berr_set(err, -EINVAL, "[gluster] dir = %s: expected an absolute path like /ballast",
			       dir ? dir : "");
		goto out_free;
	}
	snprintf(gc->dir, sizeof(gc->dir), "%s", dir);
	while (strlen(gc->dir) > 1 && gc->dir[strlen(gc->dir) - 1] == '/')
		gc->dir[strlen(gc->dir) - 1] = '\0';
	if (strcmp(gc->dir, "/") == 0)
		gc->dir[0] = '\0'; /* volumes at the root: "<dir>/<name>" stays right */
	ret = helper_init(&gc->helper, cfg, err);
	if (ret < 0)
		goto out_free;
	if (servers && volume && servers[0] && volume[0]) {
		if (strlen(volume) >= sizeof(gc->volume) || strlen(servers) >= sizeof(gc->servers_buf)) {
			ret = berr_set(err, -EINVAL, "[gluster] servers or volume is too long");
			goto out_free;
		}
		snprintf(gc->volume, sizeof(gc->volume), "%s", volume);
		snprintf(gc->servers_buf, sizeof(gc->servers_buf), "%s", servers);
		for (char *s = strtok_r(gc->servers_buf, ", ", &save); s; s = strtok_r(NULL, ", ", &save)) {
			if (gc->nservers == GL_SERVERS_MAX) {
				ret = berr_set(err, -EINVAL, "[gluster] servers: at most %d", GL_SERVERS_MAX);
				goto out_free;
			}
			if (strchr(s, ':') || strchr(s, '/')) {
				ret = berr_set(err, -EINVAL, "[gluster] servers: \"%s\" is not a host name or address",
					       s);
				goto out_free;
			}
			gc->servers[gc->nservers++] = s;
		}
		gc->configured = gc->nservers > 0;
	}
	if (!gc->configured)
		log_infox("[gluster] servers and volume are not set: the gluster backend refuses volumes");
	*ctx = gc;
	return 0;
out_free:
	pthread_cond_destroy(&gc->cv);
	pthread_mutex_destroy(&gc->mu);
	pthread_mutex_destroy(&gc->renew_mu);
	free(gc);
	return ret;
}

static void be_gluster_fini(void *ctx)
{
	struct gl_ctx *gc = ctx;
	int busy;

	pthread_mutex_lock(&gc->mu);
	gc->stopping = 1;
	pthread_cond_broadcast(&gc->cv);
	pthread_mutex_unlock(&gc->mu);
	if (gc->renewer_started)
		pthread_join(gc->renewer, NULL);
	pthread_mutex_lock(&gc->mu);
	busy = gc->workers > 0;
	/* Holds stay: the volumes stay mounted across a restart, and the
	 * lease runs out if this host does not come back. */
	if (gc->handles) {
		/* Not finalised: glfs_fini would hold up the exit ~10 s. */
		gl_kept_at_exit[0] = gc->handles;
		gc->handles = NULL;
		gc->cur = NULL;
	}
	pthread_mutex_unlock(&gc->mu);
	if (busy) {
		/* A worker stuck in gfapi still uses gc. */
		gl_kept_at_exit[1] = gc;
		return;
	}
	names_free(&gc->mounted);
	pthread_cond_destroy(&gc->cv);
	pthread_mutex_destroy(&gc->mu);
	pthread_mutex_destroy(&gc->renew_mu);
	free(gc);
}

/* Options to the owner, group and mode of the volume's directory. */

static int not_configured(struct berr *err)
{
	return berr_set(err, -ENOTSUP,
			"the gluster backend is not configured: set [gluster] servers and volume in ballast.conf");
}

static int be_gluster_validate_opts(void *ctx, const json_t *opts, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	struct vol_perms perms;
	const char *v;
	uint64_t bytes;
	int ret;

	ret = validate_opt_keys(opts, be_gluster_ops.name, be_gluster_ops.options, err);
	if (ret == 0)
		ret = parse_perms(opts, &perms, err);
	if (ret < 0)
		return ret;
	if ((v = opt_get(opts, "exclusive")) && (ret = check_choice(NULL, "exclusive", v, bool_choices, err)) < 0)
		return ret;
	if ((v = opt_get(opts, "takeover")) && (ret = check_choice(NULL, "takeover", v, takeover_choices, err)) < 0)
		return ret;
	if ((v = opt_get(opts, "quota"))) {
		ret = parse_size(v, &bytes, err);
		if (ret < 0)
			return ret;
		if (bytes < (1ULL << 20))
			return berr_set(err, -EINVAL, "quota %s is too small; the least is 1 MiB", v);
	}
	if (!gc->configured)
		return not_configured(err);
	return 0;
}

static int is_exclusive(const struct be_volume *vol)
{
	const char *v = opt_get(vol->opts, "exclusive");

	return v && strcmp(v, "true") == 0;
}

/* May another host's expired hold of vol be taken over: the volume's
 * -o takeover, else [gluster] takeover. */
static int may_take_over(const struct gl_ctx *gc, const struct be_volume *vol)
{
	const char *v = opt_get(vol->opts, "takeover");

	return v ? strcmp(v, "after-lease") == 0 : gc->takeover;
}

/* Set (or, with bytes == 0, remove) the quota of name's directory. */
static int set_quota(struct gl_ctx *gc, const char *name, uint64_t bytes, struct berr *err)
{
	char path[GL_PATH_MAX], size[32];
	int ret;

	vol_path(gc, name, path, sizeof(path));
	snprintf(size, sizeof(size), "%llu", (unsigned long long)bytes);
	if (bytes) {
		const char *args[] = { "volume", "quota", gc->volume, "limit-usage", path, size, NULL };

		ret = gl_cli(gc, args, err);
	} else {
		const char *args[] = { "volume", "quota", gc->volume, "remove", path, NULL };

		ret = gl_cli(gc, args, err);
	}
	return ret;
}

static int be_gluster_remove(void *ctx, const struct be_volume *vol, struct berr *err);

static int be_gluster_create(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	char created[40];
	json_t *in, *meta = NULL;
	struct vol_perms perms;
	uint64_t bytes = 0;
	int made = 0, ret;

	if (!gc->configured)
		return not_configured(err);
	ret = parse_perms(vol->opts, &perms, err);
	if (ret == 0 && opt_get(vol->opts, "quota"))
		ret = parse_size(opt_get(vol->opts, "quota"), &bytes, err);
	if (ret < 0)
		return ret;
	rfc3339_now(created, sizeof(created));
	in = json_pack("{s:O, s:s, s:I, s:I, s:I}", "options", vol->opts, "created_at", created, "uid",
		       (json_int_t)perms.uid, "gid", (json_int_t)perms.gid, "mode", (json_int_t)perms.mode);
	if (!in)
		return berr_set(err, -ENOMEM, "out of memory");
	ret = gl_run(gc, op_create, vol->name, in, 0, &meta, &made, err);
	json_decref(in);
	CRASH_POINT("gluster.create.after-record");
	if (ret == 0 && !json_is_true(json_object_get(meta, "complete"))) {
		/* Made here, or by a Create that was interrupted: finish it.
		 * The quota must hold before anyone can use the volume. */
		if (bytes)
			ret = set_quota(gc, vol->name, bytes, err);
		CRASH_POINT("gluster.create.after-quota");
		if (ret < 0)
			berr_set(err, ret, "cannot set quota on volume %s", vol->name);
		if (ret == 0)
			ret = gl_run(gc, op_complete, vol->name, meta, 0, NULL, NULL, err);
	}
	json_decref(meta);
	if (ret < 0 && made) {
		/* Ours, and unfinished: undo it (backend.h's contract). A
		 * record that was there before is another host's volume and
		 * is left alone. */
		struct berr ignored = BERR_INIT;

		be_gluster_remove(ctx, vol, &ignored);
	}
	if (ret < 0)
		return ret;
	log_infox("volume %s: %s in gluster volume %s", vol->name, made ? "created" : "adopted", gc->volume);
	return made ? 0 : BE_ADOPTED;
}

static int mount_target(const struct gl_ctx *gc, const char *name, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%s", gc->mounts, name) < len ? 0 : -ENAMETOOLONG;
}

/* A removed volume's fences go with it (a new volume of the same name
 * starts with none). Best effort: what is left is logged. */
static void unfence_all(struct gl_ctx *gc, const char *name)
{
	struct berr err = BERR_INIT;
	json_t *note = NULL, *v;
	const char *addr;

	if (gl_run(gc, op_fence_read, name, NULL, 0, &note, NULL, &err) < 0) {
		log_warnx("volume %s: %s", name, err.msg);
		return;
	}
	json_object_foreach (note, addr, v) {
		json_t *in = json_pack("{s:s, s:b}", "addr", addr, "add", 0);

		if (fence_set(gc, name, addr, 0, &err) < 0 ||
		    gl_run(gc, op_fence_note, name, in, 0, NULL, NULL, &err) < 0)
			log_warnx("volume %s: the fence of %s stays in auth.reject of %s: %s", name, addr, gc->volume,
				  err.msg);
		json_decref(in);
	}
	json_decref(note);
}

static int be_gluster_remove(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	char target[PATH_MAX];
	json_t *meta = NULL, *check;
	int moved = 0, ret;

	if (!gc->configured)
		return not_configured(err);
	mount_target(gc, vol->name, target, sizeof(target));
	if (is_mountpoint(target) == 1) {
		/* Left mounted by a failed unmount with no user: retry. */
		const char *args[] = { "umount", target, NULL };

		ret = helper_run(&gc->helper, args, err);
		if (ret < 0)
			return ret;
	}
	/* The quota goes first, while its directory still has its path:
	 * glusterd finds limits by path. */
	check = json_pack("{s:b}", "check_only", 1);
	ret = gl_run(gc, op_remove, vol->name, check, 0, &meta, NULL, err);
	json_decref(check);
	if (ret == 0 && opt_get(meta_opts(meta), "quota")) {
		struct berr qerr = BERR_INIT;

		if (set_quota(gc, vol->name, 0, &qerr) < 0)
			log_infox("volume %s: quota remove: %s", vol->name, qerr.msg);
	}
	json_decref(meta);
	meta = NULL;
	CRASH_POINT("gluster.remove.after-quota");
	if (ret == 0)
		ret = gl_run(gc, op_remove, vol->name, NULL, 0, &meta, &moved, err);
	json_decref(meta);
	CRASH_POINT("gluster.remove.after-move");
	if (ret == 0 && moved) {
		struct berr ignored = BERR_INIT;

		/* The data goes in the background: a large tree must not hold
		 * up this request nor count as a hung server. */
		gl_run(gc, op_purge, vol->name, NULL, 1, NULL, NULL, &ignored);
	}
	if (ret == 0)
		unfence_all(gc, vol->name);
	if (rmdir(target) < 0 && errno != ENOENT && errno != ENOTDIR)
		log_warn("cannot remove mount point %s", target);
	pthread_mutex_lock(&gc->mu);
	names_del(&gc->mounted, vol->name);
	pthread_mutex_unlock(&gc->mu);
	return ret;
}

static void *renewer_thread(void *arg);

/* Keep renewing name's records while it is mounted here. */
static void mounted_start(struct gl_ctx *gc, const char *name, int exclusive)
{
	pthread_mutex_lock(&gc->mu);
	names_add(&gc->mounted, name, exclusive);
	if (!gc->renewer_started && !gc->stopping) {
		if (pthread_create(&gc->renewer, NULL, renewer_thread, gc) == 0)
			gc->renewer_started = 1;
		else
			log_errx("cannot start the lease renewal thread: mount records will expire");
	}
	pthread_mutex_unlock(&gc->mu);
}

/* Stop renewing and drop this host's records of name (best effort: a
 * record left behind expires with its lease). */
static void mounted_stop(struct gl_ctx *gc, const char *name, int exclusive)
{
	struct berr err = BERR_INIT;
	json_t *in = json_pack("{s:b}", "exclusive", exclusive);

	pthread_mutex_lock(&gc->renew_mu);
	pthread_mutex_lock(&gc->mu);
	names_del(&gc->mounted, name);
	pthread_mutex_unlock(&gc->mu);
	if (gl_run(gc, op_release, name, in, 0, NULL, NULL, &err) < 0)
		log_warnx("volume %s: %s (the lease will run out)", name, err.msg);
	pthread_mutex_unlock(&gc->renew_mu);
	json_decref(in);
}

static int be_gluster_unmount(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	char target[PATH_MAX];
	int ret = 0;

	mount_target(gc, vol->name, target, sizeof(target));
	if (is_mountpoint(target) == 1) {
		const char *args[] = { "umount", target, NULL };

		ret = helper_run(&gc->helper, args, err);
	}
	CRASH_POINT("gluster.unmount.after-umount");
	if (ret == 0 && rmdir(target) < 0 && errno != ENOENT)
		log_warn("cannot remove mount point %s", target);
	if (ret == 0)
		mounted_stop(gc, vol->name, is_exclusive(vol));
	return ret;
}

/*
 * Fence the host of holder record rec from volume name: its address goes
 * into auth.reject for the volume's directory, so that its Gluster client
 * is cut at once and can never write there again, and a note of it into
 * <dir>/.ballast/<name>.fence, so that the host lifts its own fence once
 * it holds the volume again.
 */
static int fence_host(struct gl_ctx *gc, const char *name, json_t *rec, struct berr *err)
{
	const char *addr = json_string_value(json_object_get(rec, "addr"));
	const char *host = json_string_value(json_object_get(rec, "host"));
	struct berr ferr = BERR_INIT;
	json_t *in;
	int ret;

	if (!addr || !addr[0])
		return berr_set(
			err, -EBUSY,
			"volume %s: the hold of %s names no address to fence (an older ballastd?); not taking it "
			"over",
			name, host ? host : "?");
	ret = fence_set(gc, name, addr, 1, &ferr);
	if (ret < 0)
		return berr_set(err, ret, "volume %s: cannot fence %s (%s), so not taking it over: %s", name,
				host ? host : "?", addr, ferr.msg);
	log_warnx("volume %s: %s (%s) fenced: the bricks refuse its client for %s%s/%s", name, host ? host : "?", addr,
		  gc->volume, gc->dir, name);
	in = json_pack("{s:s, s:s, s:b}", "addr", addr, "host", host ? host : "", "add", 1);
	ret = in ? gl_run(gc, op_fence_note, name, in, 0, NULL, NULL, err) : -ENOMEM;
	json_decref(in);
	return ret;
}

/*
 * This host holds name now: if it was fenced from it earlier (its address
 * in the fence note), lift that fence before mounting. Its old client is
 * gone by then (the volume is not mounted here).
 */
static int unfence_self(struct gl_ctx *gc, const char *name, struct berr *err)
{
	json_t *note = NULL, *in;
	char addr[64];
	int ret;

	local_addr(gc, addr, sizeof(addr));
	if (!addr[0])
		return 0;
	ret = gl_run(gc, op_fence_read, name, NULL, 0, &note, NULL, err);
	if (ret < 0 || !json_object_get(note, addr)) {
		json_decref(note);
		return ret;
	}
	json_decref(note);
	{
		struct berr ferr = BERR_INIT;

		ret = fence_set(gc, name, addr, 0, &ferr);
		if (ret < 0)
			return berr_set(err, ret,
					"volume %s: this host (%s) was fenced from it and cannot lift the fence: %s",
					name, addr, ferr.msg);
	}
	log_infox("volume %s: lifted the fence of this host (%s): it holds the volume again", name, addr);
	in = json_pack("{s:s, s:b}", "addr", addr, "add", 0);
	ret = in ? gl_run(gc, op_fence_note, name, in, 0, NULL, NULL, err) : -ENOMEM;
	json_decref(in);
	return ret;
}

/*
 * Before an exclusive volume held by another host is taken over: read its
 * holder record; if that host's lease expired and takeover is allowed,
 * fence it (fence_host) and put the fenced record into in["fenced"], the
 * only record op_prepare will then break. A fresh or absent record needs
 * nothing here (op_prepare refuses or takes it).
 */
static int fence_expired(struct gl_ctx *gc, const struct be_volume *vol, json_t *in, struct berr *err)
{
	json_t *rec = NULL;
	int ret;

	ret = gl_run(gc, op_holder, vol->name, NULL, 0, &rec, NULL, err);
	if (ret < 0 || !rec)
		return ret;
	if (!holder_is_ours(gc, rec) && holder_expired(rec) && may_take_over(gc, vol)) {
		log_warnx("volume %s: the lease of %s expired at %s; fencing it before taking over", vol->name,
			  json_string_value(json_object_get(rec, "host")),
			  json_string_value(json_object_get(rec, "expires")));
		ret = fence_host(gc, vol->name, rec, err);
		if (ret == 0) {
			json_object_set_new(in, "takeover", json_true());
			json_object_set(in, "fenced", rec);
		}
	}
	json_decref(rec);
	return ret;
}

static int be_gluster_mount(void *ctx, const struct be_volume *vol, char *path, size_t len, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	char target[PATH_MAX], source[GL_PATH_MAX + 512], options[GL_PATH_MAX + 64] = "";
	json_t *in;
	int held = 0, ret;

	if (!gc->configured)
		return not_configured(err);
	in = json_pack("{s:b}", "exclusive", is_exclusive(vol));
	if (!in)
		return berr_set(err, -ENOMEM, "out of memory");
	if (is_exclusive(vol)) {
		ret = fence_expired(gc, vol, in, err);
		if (ret < 0) {
			json_decref(in);
			return ret;
		}
	}
	ret = gl_run(gc, op_prepare, vol->name, in, 0, NULL, &held, err);
	json_decref(in);
	CRASH_POINT("gluster.mount.after-hold");
	if (ret < 0) {
		if (held) /* taken after all, by a call that outlived its wait */
			mounted_stop(gc, vol->name, 1);
		return ret;
	}
	mount_target(gc, vol->name, target, sizeof(target));
	ret = mkdir_p(gc->mounts, 0700);
	if (ret == 0 && mkdir(target, 0755) < 0 && errno != EEXIST)
		ret = -errno;
	if (ret < 0) {
		berr_set(err, ret, "cannot create mount point %s: %s", target, strerror(-ret));
		goto out_release;
	}
	if (is_mountpoint(target) != 1) {
		struct helper h = gc->helper;
		size_t off;

		if (is_exclusive(vol) && (ret = unfence_self(gc, vol->name, err)) < 0)
			goto out_rmdir;

		snprintf(source, sizeof(source), "%s:/%s%s/%s", gc->servers[0], gc->volume, gc->dir, vol->name);
		off = (size_t)snprintf(options, sizeof(options), "%s",
				       gc->nservers > 1 ? "backup-volfile-servers=" : "");
		for (int i = 1; i < gc->nservers && off < sizeof(options); i++)
			off += (size_t)snprintf(options + off, sizeof(options) - off, "%s%s", i > 1 ? ":" : "",
						gc->servers[i]);
		/* A client that cannot reach any server fails on its own
		 * well within this; the bound is for a hung one. */
		if (h.timeout_s > gc->timeout_s + 5)
			h.timeout_s = gc->timeout_s + 5;
		if (options[0]) {
			const char *args[] = { "mount", "--fstype", "glusterfs", "--options",
					       options, source,	    target,	 NULL };

			ret = helper_run(&h, args, err);
		} else {
			const char *args[] = { "mount", "--fstype", "glusterfs", source, target, NULL };

			ret = helper_run(&h, args, err);
		}
		if (ret < 0)
			goto out_rmdir;
		if (is_mountpoint(target) != 1) {
			ret = berr_set(err, -EIO, "mount.ballast reported success but %s is not a mount point", target);
			goto out_rmdir;
		}
		CRASH_POINT("gluster.mount.after-mount");
	}
	mounted_start(gc, vol->name, is_exclusive(vol));
	snprintf(path, len, "%s", target);
	return 0;
out_rmdir:
	rmdir(target);
out_release:
	mounted_stop(gc, vol->name, is_exclusive(vol));
	return ret;
}

static int be_gluster_is_mounted(void *ctx, const struct be_volume *vol)
{
	struct gl_ctx *gc = ctx;
	char target[PATH_MAX];
	int ret;

	mount_target(gc, vol->name, target, sizeof(target));
	ret = is_mountpoint(target);
	/* Found mounted at start (a restart of ballastd): keep its leases. */
	if (ret == 1 && gc->configured)
		mounted_start(gc, vol->name, is_exclusive(vol));
	return ret;
}

static json_t *be_gluster_status(void *ctx, const struct be_volume *vol)
{
	struct gl_ctx *gc = ctx;
	char path[GL_PATH_MAX], servers[GL_PATH_MAX];
	json_t *st;
	int held;

	vol_path(gc, vol->name, path, sizeof(path));
	servers_str(gc, servers, sizeof(servers));
	st = json_pack("{s:s, s:s, s:s}", "gluster_volume", gc->volume, "gluster_path", path[0] ? path : "/", "servers",
		       servers);
	if (st && is_exclusive(vol)) {
		pthread_mutex_lock(&gc->mu);
		held = names_has(gc->mounted, vol->name);
		pthread_mutex_unlock(&gc->mu);
		json_object_set_new(st, "held_here", json_boolean(held));
	}
	return st;
}

/*
 * Every complete volume in the Gluster volume, as an array of
 * {"name","options","created_at","created_by"} (new reference), for the
 * catalog's background refresh. Bounded by the timeout.
 */
static int be_gluster_list(void *ctx, json_t **out, struct berr *err)
{
	struct gl_ctx *gc = ctx;

	*out = NULL;
	if (!gc->configured)
		return not_configured(err);
	return gl_run(gc, op_list, "list", NULL, 0, out, NULL, err);
}

/* Stat the volumes' directory: the cheapest call that needs every layer. */
static int op_ping(struct gl_job *job, glfs_t *fs)
{
	struct stat st;

	if (glfs_stat(fs, job->gc->dir[0] ? job->gc->dir : "/", &st) < 0 && errno != ENOENT)
		return berr_set(&job->err, -errno, "stat of %s failed: %s", job->gc->dir, strerror(errno));
	return 0;
}

/* Health checks for `ballast doctor`; bounded by the timeout. */
static json_t *be_gluster_check(void *ctx)
{
	struct gl_ctx *gc = ctx;
	json_t *checks = json_array();
	struct berr err = BERR_INIT;
	char where[GL_PATH_MAX];
	long t0 = monotonic_ms();

	if (!checks)
		return NULL;
	if (!gc->configured) {
		/* Compiled in but unused: nothing to check, nothing wrong. */
		backend_check_add(checks, "gluster", 1, "not configured ([gluster] servers and volume unset): unused");
		return checks;
	}
	servers_str(gc, where, sizeof(where));
	if (gl_run(gc, op_ping, "check", NULL, 0, NULL, NULL, &err) == 0)
		backend_check_add(checks, "gluster volume", 1, "%s at %s answers (%ld ms)", gc->volume, where,
				  monotonic_ms() - t0);
	else
		backend_check_add(checks, "gluster volume", 0, "%s", err.msg);
	if (access(gc->sock, F_OK) == 0)
		backend_check_add(checks, "glusterd socket", 1, "%s (quota)", gc->sock);
	else
		backend_check_add(checks, "glusterd socket", 0, "%s missing: -o quota cannot be set from this host",
				  gc->sock);
	if (access("/sbin/mount.glusterfs", X_OK) == 0 || access("/usr/sbin/mount.glusterfs", X_OK) == 0)
		backend_check_add(checks, "mount.glusterfs", 1, "FUSE client present");
	else
		backend_check_add(checks, "mount.glusterfs", 0, "not found: install glusterfs-client");
	if (access(gc->helper.path, X_OK) == 0)
		backend_check_add(checks, "mount helper", 1, "%s", gc->helper.path);
	else
		backend_check_add(checks, "mount helper", 0, "%s: %s", gc->helper.path, strerror(errno));
	return checks;
}

/* Renew the holds of this host's mounted exclusive volumes, every third of
 * the lease. */
static void *renewer_thread(void *arg)
{
	struct gl_ctx *gc = arg;
	int period = gc->lease_s / 3 > 0 ? gc->lease_s / 3 : 1;
	int failing = 0, failed = 0;

	pthread_mutex_lock(&gc->mu);
	while (!gc->stopping) {
		struct timespec ts;
		json_t *names = json_array();

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += period;
		while (!gc->stopping && pthread_cond_timedwait(&gc->cv, &gc->mu, &ts) != ETIMEDOUT)
			;
		if (gc->stopping) {
			json_decref(names);
			break;
		}
		for (struct gl_name *n = gc->mounted; n; n = n->next)
			json_array_append_new(names,
					      json_pack("{s:s, s:b}", "name", n->name, "exclusive", n->exclusive));
		pthread_mutex_unlock(&gc->mu);
		{
			size_t i;
			json_t *name;

			json_array_foreach (names, i, name) {
				const char *vname = json_string_value(json_object_get(name, "name"));
				struct berr err = BERR_INIT;
				int lost = 0, still, rret = 0;

				/* Released since the list was taken: leave it. */
				pthread_mutex_lock(&gc->renew_mu);
				pthread_mutex_lock(&gc->mu);
				still = names_has(gc->mounted, vname);
				pthread_mutex_unlock(&gc->mu);
				if (still)
					rret = gl_run(gc, op_renew, vname, name, 0, NULL, &lost, &err);
				pthread_mutex_unlock(&gc->renew_mu);
				if (!still)
					continue;
				if (rret < 0) {
					/* Logged once per outage, not every period. */
					if (!failing && !gc->stopping)
						log_errx("volume %s: lease not renewed: %s", vname, err.msg);
					failed = 1;
				} else {
					atomic_fetch_add(&gc->lease_renewals, 1);
				}
			}
			if (failing && !failed)
				log_infox("leases renewed again");
			failing = failed;
			failed = 0;
		}
		json_decref(names);
		pthread_mutex_lock(&gc->mu);
	}
	pthread_mutex_unlock(&gc->mu);
	return NULL;
}

static int be_gluster_holder(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	int ret;

	*out = NULL;
	if (!gc->configured)
		return not_configured(err);
	if (!is_exclusive(vol))
		return 0;
	ret = gl_run(gc, op_holder, vol->name, NULL, 0, out, NULL, err);
	if (ret == 0 && *out)
		json_object_set_new(*out, "expired", json_boolean(holder_expired(*out)));
	return ret;
}

/* Break another host's hold by hand: fence that host, then drop its
 * record (only if it is still the one fenced). */
static void be_gluster_counters(void *ctx, struct be_counters *out)
{
	struct gl_ctx *gc = ctx;

	out->lease_renewals = atomic_load(&gc->lease_renewals);
}

static int be_gluster_release(void *ctx, const struct be_volume *vol, int force, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	json_t *rec = NULL, *in;
	int ret, mounted;

	if (!gc->configured)
		return not_configured(err);
	if (!is_exclusive(vol))
		return berr_set(err, -EINVAL, "volume %s is not exclusive: nobody holds it", vol->name);
	ret = gl_run(gc, op_holder, vol->name, NULL, 0, &rec, NULL, err);
	if (ret < 0 || !rec)
		return ret;
	pthread_mutex_lock(&gc->mu);
	mounted = names_has(gc->mounted, vol->name);
	pthread_mutex_unlock(&gc->mu);
	if (holder_is_ours(gc, rec) && mounted) {
		ret = berr_set(err, -EBUSY, "volume %s is held by this host (%s): unmount it instead", vol->name,
			       gc->host_id);
	} else if (!force && !holder_expired(rec)) {
		ret = berr_set(err, -EBUSY,
			       "volume %s is held by %s until %s; its lease is fresh: --force fences that host and "
			       "breaks its hold",
			       vol->name, json_string_value(json_object_get(rec, "host")),
			       json_string_value(json_object_get(rec, "expires")));
	} else {
		log_warnx("volume %s: releasing the hold of %s by hand%s", vol->name,
			  json_string_value(json_object_get(rec, "host")), force ? " (forced)" : "");
		ret = holder_is_ours(gc, rec) ? 0 : fence_host(gc, vol->name, rec, err);
		in = ret == 0 ? json_pack("{s:O}", "expect", rec) : NULL;
		if (in)
			ret = gl_run(gc, op_unhold, vol->name, in, 0, NULL, NULL, err);
		json_decref(in);
	}
	json_decref(rec);
	return ret;
}

static int be_gluster_lookup(void *ctx, const char *name, json_t **item, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	int ret;

	*item = NULL;
	if (!gc->configured)
		return 0;
	ret = gl_run(gc, op_lookup, name, NULL, 0, item, NULL, err);
	return ret < 0 ? ret : *item ? 1 : 0;
}

static int be_gluster_configured(void *ctx)
{
	return ((struct gl_ctx *)ctx)->configured;
}

const struct backend_ops be_gluster_ops = {
	.name = "gluster",
	.caps = BE_CAP_GLOBAL | BE_CAP_SHARED | BE_CAP_QUOTA,
	.options = gl_opts,
	.init = be_gluster_init,
	.fini = be_gluster_fini,
	.configured = be_gluster_configured,
	.validate_opts = be_gluster_validate_opts,
	.create = be_gluster_create,
	.remove = be_gluster_remove,
	.mount = be_gluster_mount,
	.unmount = be_gluster_unmount,
	.is_mounted = be_gluster_is_mounted,
	.status = be_gluster_status,
	.list = be_gluster_list,
	.check = be_gluster_check,
	.holder = be_gluster_holder,
	.release = be_gluster_release,
	.counters = be_gluster_counters,
	.lookup = be_gluster_lookup,
};
