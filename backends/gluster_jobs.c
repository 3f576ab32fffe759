/*
 * gluster_jobs.c - the gluster backend's glfs_t handle and the job engine
 * every gfapi call runs on, the gfapi helpers, and the volume jobs
 * (facts records, the trash, listing).
 *
 * gfapi calls can block for as long as a server does not answer, so each
 * runs on a worker thread and the request waits at most [gluster] timeout
 * seconds; after a timeout the handle is considered hung and replaced (the
 * old one is finalised in the background once its calls return).
 */
#define LOG_TAG "gluster"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gluster_int.h"
#include "log.h"
#include "timeutil.h"
#include "validate.h"

/* --- handles -------------------------------------------------------------- */

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

/* The servers, comma-separated, into buf (for messages). */
void gl_servers_str(const struct gl_ctx *gc, char *buf, size_t len)
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

	gl_servers_str(gc, where, sizeof(where));
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

/* --- jobs: every gfapi call runs here ------------------------------------- */

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

/* Set err to the timeout message naming the volume and its servers. */
void gl_timeout_msg(struct gl_ctx *gc, struct berr *err)
{
	char where[GL_PATH_MAX];

	gl_servers_str(gc, where, sizeof(where));
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
int gl_run(struct gl_ctx *gc, int (*fn)(struct gl_job *, glfs_t *), const char *name, json_t *in, int background,
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
		gl_timeout_msg(gc, err);
		ret = -ETIMEDOUT;
		log_warnx("%s: %s", job->name[0] ? job->name : "gluster", err->msg);
	}
	job_unref_locked(job);
	pthread_mutex_unlock(&gc->mu);
	return ret;
}

/* --- gfapi helpers (worker threads only) ---------------------------------- */

/*
 * Paths in the volume. Names are at most VOLUME_NAME_MAX and dir at most
 * GL_DIR_MAX, so GL_PATH_MAX never truncates; a truncated path would still
 * be a wrong one, hence the checks (which also tell gcc that truncation is
 * handled). <dir>/<name>: the volume's data.
 */
int gl_vol_path(const struct gl_ctx *gc, const char *name, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%s", gc->dir, name) < len ? 0 : -ENAMETOOLONG;
}

/* <dir>/.ballast/<name>.<ext>: one of the volume's records. */
int gl_meta_path(const struct gl_ctx *gc, const char *name, const char *ext, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/" GL_META "/%s.%s", gc->dir, name, ext) < len ? 0 : -ENAMETOOLONG;
}

/* <dir>/<sub>, sub being GL_META, GL_TRASH or GL_USERS. */
int gl_sub_path(const struct gl_ctx *gc, const char *sub, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%s", gc->dir, sub) < len ? 0 : -ENAMETOOLONG;
}

/* mkdir -p through gfapi; path is absolute in the volume. 0 or -errno. */
int gl_mkdir_p(glfs_t *fs, const char *path, mode_t mode)
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
 * -EBADMSG when it is not JSON, or -errno. */
int gl_read_json(glfs_t *fs, const char *path, json_t **out)
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

/* Write v to a temporary file beside path and return its name in tmp. The
 * temporary name starts with a dot, which no volume name (and so no record
 * name) does: a listing can never take it for a record, nor a record for
 * it (volume names may hold ".tmp."). */
static int gfs_write_tmp(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v, char *tmp, size_t len)
{
	char *data = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	size_t dlen, off = 0;
	glfs_fd_t *fd;
	int ret = 0;

	if (!data)
		return -ENOMEM;
	dlen = strlen(data);
	{
		const char *base = strrchr(path, '/');
		int dlen_ = base ? (int)(base - path) : 0;

		snprintf(tmp, len, "%.*s/.%s.tmp.%s.%ld.%lx", dlen_, path, base ? base + 1 : path, gc->host_id,
			 (long)getpid(), (unsigned long)pthread_self());
	}
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
int gl_publish_new(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v)
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

/* Replace path with v atomically. 0 or -errno. */
int gl_replace(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v)
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

/* --- volume jobs: facts records, the trash, listing ----------------------- */

/*
 * Create job. in: {"options", "created_at", "uid", "gid", "mode"}.
 * Claims the name by publishing the facts record (atomic: one host wins),
 * then makes the directory. A record with the same options is an existing
 * volume (success, job->flag = 0: nothing made here); other options are
 * refused. out: the record; job->flag = 1 when this call published it.
 */
int gl_op_create(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX], dir[GL_SUB_MAX];
	json_t *meta = NULL, *opts = json_object_get(job->in, "options");
	int made_dir = 0, ret;

	gl_sub_path(gc, GL_TRASH, dir, sizeof(dir));
	ret = gl_mkdir_p(fs, dir, 0755);
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot create %s in gluster volume %s: %s", dir, gc->volume,
				strerror(-ret));
	gl_meta_path(gc, job->name, "json", path, sizeof(path));
	ret = gl_read_json(fs, path, &meta);
	if (ret == -ENOENT) {
		meta = json_pack("{s:s, s:O, s:s, s:s, s:b}", "name", job->name, "options", opts, "created_at",
				 json_string_value(json_object_get(job->in, "created_at")), "created_by", gc->host_id,
				 "complete", 0);
		ret = meta ? gl_publish_new(gc, fs, path, meta) : -ENOMEM;
		if (ret == 0)
			job->flag = 1;
		if (ret == -EEXIST) { /* another host, at the same moment */
			json_decref(meta);
			meta = NULL;
			ret = gl_read_json(fs, path, &meta);
		}
	}
	if (ret < 0) {
		berr_set(&job->err, ret, "cannot record volume %s in gluster (%s): %s", job->name, path,
			 strerror(-ret));
		goto out;
	}
	if (!job->flag && !json_equal(gl_meta_opts(meta), opts)) {
		char *had = json_dumps(gl_meta_opts(meta), JSON_COMPACT | JSON_SORT_KEYS);

		ret = berr_set(&job->err, -EEXIST,
			       "volume %s already exists in gluster volume %s with other options (%s, created by %s)",
			       job->name, gc->volume, had ? had : "?",
			       json_string_value(json_object_get(meta, "created_by")));
		free(had);
		goto out;
	}
	gl_vol_path(gc, job->name, path, sizeof(path));
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
int gl_op_complete(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	json_t *meta = json_deep_copy(job->in);
	int ret;

	if (!meta)
		return -ENOMEM;
	json_object_set_new(meta, "complete", json_true());
	gl_meta_path(job->gc, job->name, "json", path, sizeof(path));
	ret = gl_replace(job->gc, fs, path, meta);
	if (ret < 0)
		berr_set(&job->err, ret, "cannot update %s in gluster: %s", path, strerror(-ret));
	json_decref(meta);
	return ret;
}

/* Does holder record rec (borrowed) keep this host from removing the
 * volume: another host's fresh lease. A malformed record reads as expired
 * and does not. */
static int held_elsewhere(const struct gl_ctx *gc, const json_t *rec)
{
	struct gl_holder h;

	gl_holder_parse(rec, &h);
	return !gl_holder_mine(&h, gc->host_id) && !gl_holder_expired(&h, time(NULL));
}

/*
 * Remove job: refuse while another host holds or mounts it; move the data
 * aside into the trash (fast whatever its size), then drop the records.
 * in: {"check_only"} to stop after the checks. out: the facts record if
 * there was one; job->flag = 1 when data went to the trash.
 */
int gl_op_remove(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX], trash[GL_PATH_MAX], dir[GL_SUB_MAX];
	json_t *rec = NULL;
	int ret;

	gl_meta_path(gc, job->name, "holder", path, sizeof(path));
	ret = gl_read_json(fs, path, &rec);
	if (ret == -ESTALE) /* replaced under us (a renewal): read again */
		return ret;
	if (ret == 0 && held_elsewhere(gc, rec)) {
		ret = gl_in_use_msg(job, rec);
		json_decref(rec);
		return ret;
	}
	json_decref(rec);
	ret = gl_user_check_others(job, fs);
	if (ret < 0)
		return ret;
	gl_meta_path(gc, job->name, "json", path, sizeof(path));
	if (gl_read_json(fs, path, &job->out) < 0)
		job->out = NULL;
	if (json_is_true(json_object_get(job->in, "check_only")))
		return 0;
	if (gl_user_path(gc, job->name, gc->host_id, path, sizeof(path)) == 0)
		glfs_unlink(fs, path);
	gl_sub_path(gc, GL_TRASH, dir, sizeof(dir));
	ret = gl_mkdir_p(fs, dir, 0755);
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot create %s in gluster: %s", dir, strerror(-ret));
	gl_vol_path(gc, job->name, path, sizeof(path));
	if ((size_t)snprintf(trash, sizeof(trash), "%s/%s.%ld.%ld", dir, job->name, (long)time(NULL),
			     monotonic_ms() % 1000000) >= sizeof(trash))
		return berr_set(&job->err, -ENAMETOOLONG, "path too long");
	if (glfs_rename(fs, path, trash) == 0)
		job->flag = 1;
	else if (errno != ENOENT)
		return berr_set(&job->err, -errno, "cannot remove %s from gluster: %s", path, strerror(errno));
	gl_meta_path(gc, job->name, "holder", path, sizeof(path));
	glfs_unlink(fs, path);
	gl_meta_path(gc, job->name, "json", path, sizeof(path));
	if (glfs_unlink(fs, path) < 0 && errno != ENOENT)
		return berr_set(&job->err, -errno, "cannot remove %s from gluster: %s", path, strerror(errno));
	return 0;
}

/* Background job: delete everything in the trash. */
int gl_op_purge(struct gl_job *job, glfs_t *fs)
{
	char dir[GL_SUB_MAX], child[GL_PATH_MAX];
	glfs_fd_t *d;
	struct dirent *de;
	int ret = 0;

	gl_sub_path(job->gc, GL_TRASH, dir, sizeof(dir));
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

/* List job: every complete volume's facts record, as an array of
 * {"name","options","created_at","created_by"} in out. */
int gl_op_list(struct gl_job *job, glfs_t *fs)
{
	char dir[GL_SUB_MAX], path[GL_PATH_MAX];
	json_t *all = json_array(), *meta;
	struct dirent *de;
	glfs_fd_t *d;
	int ret;

	if (!all)
		return -ENOMEM;
	gl_sub_path(job->gc, GL_META, dir, sizeof(dir));
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
		char name[VOLUME_NAME_MAX + 1];

		if (gl_meta_entry_name(de->d_name, name, sizeof(name)) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ret = gl_read_json(fs, path, &meta);
		if (ret == -ESTALE) {
			/* Replaced under us: the whole list is read again. A
			 * missing name would make the catalog drop it. */
			glfs_closedir(d);
			json_decref(all);
			return ret;
		}
		if (ret < 0)
			continue;
		if (json_is_true(json_object_get(meta, "complete")) && json_is_object(gl_meta_opts(meta)))
			json_array_append_new(all, json_pack("{s:s, s:O, s:O, s:O}", "name", name, "options",
							     gl_meta_opts(meta), "created_at",
							     json_object_get(meta, "created_at"), "created_by",
							     json_object_get(meta, "created_by")));
		json_decref(meta);
	}
	glfs_closedir(d);
	job->out = all;
	return 0;
}

/* Lookup job: job->name's facts, as gl_op_list gives them, into job->out
 * (NULL when there is no complete volume of that name). */
int gl_op_lookup(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	json_t *meta = NULL;
	int ret;

	gl_meta_path(job->gc, job->name, "json", path, sizeof(path));
	ret = gl_read_json(fs, path, &meta);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot read %s in gluster: %s", path, strerror(-ret));
	if (json_is_true(json_object_get(meta, "complete")) && json_is_object(gl_meta_opts(meta)))
		job->out = json_pack("{s:s, s:O, s:O, s:O}", "name", job->name, "options", gl_meta_opts(meta),
				     "created_at", json_object_get(meta, "created_at"), "created_by",
				     json_object_get(meta, "created_by"));
	json_decref(meta);
	return 0;
}

/* Stat the volumes' directory: the cheapest call that needs every layer. */
int gl_op_ping(struct gl_job *job, glfs_t *fs)
{
	struct stat st;

	if (glfs_stat(fs, job->gc->dir[0] ? job->gc->dir : "/", &st) < 0 && errno != ENOENT)
		return berr_set(&job->err, -errno, "stat of %s failed: %s", job->gc->dir, strerror(errno));
	return 0;
}
