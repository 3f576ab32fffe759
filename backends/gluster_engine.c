/*
 * gluster_engine.c - the gluster backend's glfs_t handles and the job
 * engine every gfapi call runs on.
 *
 * gfapi calls can block for as long as a server does not answer, so each
 * runs on a worker thread and the request waits at most [gluster] timeout
 * seconds; after a timeout the handle is considered hung and replaced (the
 * old one is finalised in the background once its calls return), after a
 * back-off that grows with each hang in a row.
 *
 * A call stuck in gfapi cannot be cancelled: with a hung brick it lasts
 * until Gluster's own timeouts (ping 42 s, frames 30 min). Without a cap
 * every request would leave one more thread, and every timeout one more
 * connection (a dozen threads each), for as long as the hang lasts. So the
 * engine counts them, and past its caps (gl_admit_decide, pure) calls fail
 * at once with a message saying so; a call whose request gave up changes
 * nothing more (gl_gave_up).
 */
#define LOG_TAG "gluster"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gluster_int.h"
#include "log.h"
#include "timeutil.h"

/* --- limits (pure) -------------------------------------------------------- */

/* See gluster_int.h. */
long gl_backoff_ms(int fails)
{
	long ms = GL_BACKOFF_FIRST_MS;

	if (fails <= 0)
		return 0;
	for (int i = 1; i < fails && ms < GL_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < GL_BACKOFF_MAX_MS ? ms : GL_BACKOFF_MAX_MS;
}

/* See gluster_int.h. */
enum gl_admit gl_admit_decide(const struct gl_load *l)
{
	if (l->stuck_name > 0)
		return GL_ADMIT_STUCK_NAME;
	if (l->stuck >= GL_STUCK_MAX)
		return GL_ADMIT_STUCK_MAX;
	if (l->need_handle && l->handles >= GL_HANDLES_MAX)
		return GL_ADMIT_HANDLES_MAX;
	/* Waiting out the back-off must leave the call itself at least half
	 * of its time, or it would give up on a connection just opened. */
	if (l->need_handle && l->backoff_ms > 0 && (l->wait_ms <= 0 || l->backoff_ms > l->wait_ms / 2))
		return GL_ADMIT_BACKOFF;
	if (l->workers >= GL_WORKERS_MAX)
		return GL_ADMIT_WAIT;
	return GL_ADMIT_RUN;
}

/* --- handles -------------------------------------------------------------- */

static void *fini_thread(void *arg)
{
	struct gl_handle *h = arg;
	struct gl_ctx *gc = h->gc;

	glfs_fini(h->fs);
	free(h);
	/* Counted until closed: a hung server can hold glfs_fini too. */
	pthread_mutex_lock(&gc->mu);
	gc->nhandles--;
	pthread_cond_broadcast(&gc->cv);
	pthread_mutex_unlock(&gc->mu);
	return NULL;
}

/* Drop a reference; the last one finalises the glfs_t on a detached thread
 * (glfs_fini takes ~10 s and must never delay a request). Caller holds mu. */
static void handle_unref_locked(struct gl_ctx *gc, struct gl_handle *h)
{
	pthread_t t;
	pthread_attr_t attr;
	int ret = -1;

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
		ret = pthread_create(&t, &attr, fini_thread, h);
		pthread_attr_destroy(&attr);
		if (ret != 0)
			log_warnx("cannot start a thread to close a Gluster handle: leaked");
	}
	if (ret != 0) {
		gc->nhandles--;
		free(h);
	}
}

/* Stop handing out h: the next job opens a new handle. When h hung (why:
 * the timeout message, kept for the messages of calls refused meanwhile),
 * only after a back-off that grows with each hang in a row: a hung
 * connection leaves its calls stuck. One refused at once (why NULL) is
 * tried again at once: the servers may be back. Caller holds mu. */
static void handle_retire_locked(struct gl_ctx *gc, struct gl_handle *h, const char *why)
{
	if (!h)
		return;
	if (h->state != GLH_BROKEN && why) {
		gc->fails++;
		gc->backoff_until = monotonic_ms() + gl_backoff_ms(gc->fails);
		snprintf(gc->last_fail, sizeof(gc->last_fail), "%s", why);
	}
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

/* Wait on gc->cv until until_ms (monotonic), or a broadcast. Caller holds mu. */
static void wait_until_locked(struct gl_ctx *gc, long until_ms)
{
	long left = until_ms - monotonic_ms();
	struct timespec ts;

	if (left <= 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&gc->cv, &gc->mu, &ts);
}

/* Refuse to open another handle: too many are alive. Caller holds mu. */
static int handles_full_msg(struct gl_ctx *gc, struct berr *err)
{
	char where[GL_PATH_MAX];

	gl_servers_str(gc, where, sizeof(where));
	return berr_set(err, -EAGAIN,
			"gluster volume %s at %s did not answer; %d connections still stuck or closing, "
			"not opening another",
			gc->volume, where, gc->nhandles);
}

/*
 * The current handle for job, once ready, into *out (a reference), or
 * NULL in *out when the caller is to open one: waits while another job
 * opens it (giving it up after the timeout) and while the back-off after
 * a failure runs. Stops when job's request gives up. Caller holds mu.
 */
static int handle_wait_locked(struct gl_ctx *gc, struct gl_job *job, struct gl_handle **out, struct berr *err)
{
	struct gl_handle *h;
	long until;

	*out = NULL;
	for (;;) {
		if (gc->stopping)
			return berr_set(err, -ECANCELED, "ballastd is stopping");
		if (gl_gave_up(job))
			return berr_set(err, -ETIMEDOUT, "the request stopped waiting");
		h = gc->cur;
		if (h && h->state == GLH_READY) {
			h->refs++;
			job->h = h; /* a request that gives up retires it */
			*out = h;
			return 0;
		}
		if (h) { /* opening */
			until = h->opened_ms + gc->timeout_s * 1000L;
			if (monotonic_ms() >= until) {
				struct berr t = BERR_INIT;

				log_warnx("glfs_init of volume %s did not finish within %d s: opening another handle",
					  gc->volume, gc->timeout_s);
				gl_timeout_msg(gc, &t);
				handle_retire_locked(gc, h, t.msg);
				continue;
			}
		} else if (gc->nhandles >= GL_HANDLES_MAX) {
			return handles_full_msg(gc, err);
		} else if (monotonic_ms() < gc->backoff_until) {
			until = gc->backoff_until;
		} else {
			return 0;
		}
		wait_until_locked(gc, until);
	}
}

/*
 * The handle for job, opened if there is none, into *out: a reference
 * the caller drops with handle_unref_locked. 0 or -errno with err set.
 */
static int handle_get(struct gl_ctx *gc, struct gl_job *job, struct gl_handle **out, struct berr *err)
{
	struct gl_handle *h;
	int ret;

	pthread_mutex_lock(&gc->mu);
	ret = handle_wait_locked(gc, job, out, err);
	if (ret < 0 || *out) {
		pthread_mutex_unlock(&gc->mu);
		return ret;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		pthread_mutex_unlock(&gc->mu);
		return berr_set(err, -ENOMEM, "out of memory");
	}
	h->gc = gc;
	h->state = GLH_OPENING;
	h->refs = 2; /* current + ours */
	h->opened_ms = monotonic_ms();
	h->next = gc->handles;
	gc->handles = h;
	gc->nhandles++;
	gc->cur = h;
	job->h = h; /* a request that gives up meanwhile retires it */
	pthread_mutex_unlock(&gc->mu);

	ret = handle_open(gc, h, err);

	pthread_mutex_lock(&gc->mu);
	if (ret == 0 && h->state == GLH_OPENING) {
		h->state = GLH_READY;
		log_infox("connected to gluster volume %s", gc->volume);
	} else if (ret < 0) {
		/* The next job tries again. */
		handle_retire_locked(gc, h, NULL);
		handle_unref_locked(gc, h);
		h = NULL;
	}
	pthread_cond_broadcast(&gc->cv);
	pthread_mutex_unlock(&gc->mu);
	*out = h;
	return ret;
}

/* --- jobs: every gfapi call runs here ------------------------------------- */

/* The job running on this thread (NULL elsewhere), for gl_gave_up in the
 * helpers that change the volume. */
static __thread struct gl_job *this_job;

int gl_gave_up(struct gl_job *job)
{
	return job && atomic_load(&job->abandoned);
}

int gl_this_job_gave_up(void)
{
	return gl_gave_up(this_job);
}

/* Caller holds mu. */
static void job_unref_locked(struct gl_job *job)
{
	if (--job->refs > 0)
		return;
	json_decref(job->in);
	json_decref(job->out);
	free(job);
}

/* Its thread ends: out of gc->jobs. Caller holds mu. */
static void job_unlink_locked(struct gl_ctx *gc, struct gl_job *job)
{
	for (struct gl_job **p = &gc->jobs; *p; p = &(*p)->next) {
		if (*p == job) {
			*p = job->next;
			break;
		}
	}
	gc->workers--;
}

static void *job_thread(void *arg)
{
	struct gl_job *job = arg;
	struct gl_ctx *gc = job->gc;
	struct berr err = BERR_INIT;
	struct gl_handle *h = NULL;
	int ret;

	this_job = job;
	ret = handle_get(gc, job, &h, &err);
	if (ret == 0 && gl_gave_up(job)) {
		ret = -ETIMEDOUT; /* connected too late: nobody waits */
	} else if (ret == 0) {
		ret = job->fn(job, h->fs);
		/* A name another host replaced or deleted since this client
		 * looked it up: gfapi does not always look it up again. */
		for (int i = 0; i < 2 && ret == -ESTALE && !gl_gave_up(job); i++) {
			berr_clear(&job->err);
			json_decref(job->out);
			job->out = NULL;
			ret = job->fn(job, h->fs);
		}
	} else {
		berr_set(&job->err, ret, "%s", err.msg);
	}
	this_job = NULL;
	pthread_mutex_lock(&gc->mu);
	if (h)
		handle_unref_locked(gc, h);
	if (ret == 0 && h) { /* the servers answer: no back-off */
		gc->fails = 0;
		gc->backoff_until = 0;
	}
	if (gl_gave_up(job) && h)
		log_infox("%s: a Gluster call given up on returned after %ld s: %s",
			  job->name[0] ? job->name : "gluster", (monotonic_ms() - job->started_ms) / 1000,
			  ret < 0 ? strerror(-ret) : "done");
	job_unlink_locked(gc, job);
	job->h = NULL;
	job->ret = ret;
	job->done = 1;
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

/* What a new call for job finds, waiting until deadline (monotonic ms; 0:
 * background). Caller holds mu. */
static void load_locked(struct gl_ctx *gc, const struct gl_job *job, long deadline, struct gl_load *l)
{
	long now = monotonic_ms();

	memset(l, 0, sizeof(*l));
	for (const struct gl_job *j = gc->jobs; j; j = j->next) {
		int stuck = atomic_load(&j->abandoned) && !j->done;

		l->workers++;
		l->stuck += stuck;
		l->stuck_name += stuck && job->name[0] && strcmp(j->name, job->name) == 0;
	}
	l->need_handle = gc->cur == NULL;
	l->handles = gc->nhandles;
	l->backoff_ms = gc->backoff_until > now ? gc->backoff_until - now : 0;
	l->wait_ms = deadline ? deadline - now : 0;
}

void gl_engine_load(struct gl_ctx *gc, int *stuck, int *handles)
{
	struct gl_load l;
	struct gl_job none = { .name = "" };

	pthread_mutex_lock(&gc->mu);
	load_locked(gc, &none, 0, &l);
	pthread_mutex_unlock(&gc->mu);
	*stuck = l.stuck;
	*handles = l.handles;
}

/* The refusal for decision a (about job, finding l). Caller holds mu. */
static int refuse_msg(struct gl_ctx *gc, const struct gl_job *job, enum gl_admit a, const struct gl_load *l,
		      struct berr *err)
{
	char where[GL_PATH_MAX];
	long oldest = monotonic_ms();

	gl_servers_str(gc, where, sizeof(where));
	for (const struct gl_job *j = gc->jobs; j; j = j->next)
		if (atomic_load(&j->abandoned) && !j->done && strcmp(j->name, job->name) == 0 && j->started_ms < oldest)
			oldest = j->started_ms;
	if (a == GL_ADMIT_STUCK_NAME)
		return berr_set(err, -EAGAIN,
				"gluster volume %s at %s did not answer: an earlier call on volume %s is still stuck "
				"(since %ld s); not starting another",
				gc->volume, where, job->name, (monotonic_ms() - oldest) / 1000);
	if (a == GL_ADMIT_STUCK_MAX)
		return berr_set(err, -EAGAIN,
				"gluster volume %s at %s did not answer; %d calls still stuck, not starting more",
				gc->volume, where, l->stuck);
	if (a == GL_ADMIT_HANDLES_MAX)
		return handles_full_msg(gc, err);
	if (a == GL_ADMIT_BACKOFF)
		return berr_set(err, -EAGAIN, "%s (%d time%s in a row); not connecting again for another %ld s",
				gc->last_fail[0] ? gc->last_fail : "gluster did not answer", gc->fails,
				gc->fails == 1 ? "" : "s", (l->backoff_ms + 999) / 1000);
	{
		struct berr t = BERR_INIT;

		gl_timeout_msg(gc, &t);
		return berr_set(err, -ETIMEDOUT, "%s (all %d Gluster workers busy)", t.msg, l->workers);
	}
}

/*
 * May job start (gl_admit_decide)? Waits, until deadline, while every
 * worker is busy. 0, or -errno with err set: -EAGAIN when refused,
 * -ETIMEDOUT when no worker came free in time. Caller holds mu.
 */
static int admit_locked(struct gl_ctx *gc, struct gl_job *job, long deadline, struct berr *err)
{
	struct gl_load l;
	enum gl_admit a;

	for (;;) {
		if (gc->stopping)
			return berr_set(err, -ECANCELED, "ballastd is stopping");
		load_locked(gc, job, deadline, &l);
		a = gl_admit_decide(&l);
		if (a == GL_ADMIT_RUN)
			return 0;
		if (a != GL_ADMIT_WAIT || job->background || monotonic_ms() >= deadline)
			return refuse_msg(gc, job, a, &l, err);
		wait_until_locked(gc, deadline);
	}
}

/* Start job's thread (admitted). Caller holds mu. */
static int job_start_locked(struct gl_ctx *gc, struct gl_job *job, struct berr *err)
{
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	job->started_ms = monotonic_ms();
	job->next = gc->jobs;
	gc->jobs = job;
	gc->workers++;
	ret = pthread_create(&t, &attr, job_thread, job);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		job_unlink_locked(gc, job);
		return berr_set(err, -ret, "cannot start a Gluster worker thread: %s", strerror(ret));
	}
	return 0;
}

/* Wait for job until deadline and take its result; see gl_run. Caller
 * holds mu. */
static int job_wait_locked(struct gl_ctx *gc, struct gl_job *job, long deadline, int full, json_t **out, int *flag,
			   struct berr *err)
{
	int ret;

	while (!job->done && !gc->stopping && monotonic_ms() < deadline)
		wait_until_locked(gc, deadline);
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
		return ret;
	}
	atomic_store(&job->abandoned, 1);
	pthread_cond_broadcast(&gc->cv); /* a worker waiting for a handle stops */
	if (flag)
		*flag = job->flag;
	if (gc->stopping)
		return berr_set(err, -ECANCELED, "ballastd is stopping");
	if (!full) {
		char where[GL_PATH_MAX];

		gl_servers_str(gc, where, sizeof(where));
		berr_set(err, -ETIMEDOUT, "gluster volume %s at %s did not answer before the request's deadline",
			 gc->volume, where);
	}
	gl_timeout_msg(gc, err);
	/* A hung handle is replaced, never reused: its calls may never
	 * return. The job keeps its reference until they do. Not so when the
	 * request's deadline cut the wait short: that proves no hang. */
	if (full && job->h)
		handle_retire_locked(gc, job->h, err->msg);
	else if (full && gc->cur && gc->cur->state == GLH_OPENING)
		handle_retire_locked(gc, gc->cur, err->msg);
	log_warnx("%s: %s", job->name[0] ? job->name : "gluster", err->msg);
	return -ETIMEDOUT;
}

/* A new job (refs: the worker's, and the caller's unless background), or
 * NULL without memory. */
static struct gl_job *job_new(struct gl_ctx *gc, int (*fn)(struct gl_job *, glfs_t *), const char *name, json_t *in,
			      int background)
{
	struct gl_job *job = calloc(1, sizeof(*job));

	if (!job)
		return NULL;
	job->gc = gc;
	job->fn = fn;
	snprintf(job->name, sizeof(job->name), "%s", name ? name : "");
	job->in = in ? json_deep_copy(in) : NULL;
	job->refs = background ? 1 : 2;
	job->background = background;
	return job;
}

/*
 * Run fn for name on a worker thread and wait at most the timeout, or
 * what is left of the request's deadline when less (bounded), or not at
 * all (background); see gluster_int.h.
 */
int gl_run(struct gl_ctx *gc, int (*fn)(struct gl_job *, glfs_t *), const char *name, json_t *in, int background,
	   json_t **out, int *flag, struct berr *err)
{
	long now = monotonic_ms(), deadline = now + gc->timeout_s * 1000L;
	struct gl_job *job;
	int full = 1, ret;

	if (out)
		*out = NULL;
	if (!background && deadline_get() && deadline_get() < deadline) {
		deadline = deadline_get();
		full = 0;
		if (deadline <= now)
			return berr_set(err, -ETIMEDOUT, "gluster call not started: the request's time is up");
	}
	job = job_new(gc, fn, name, in, background);
	if (!job)
		return berr_set(err, -ENOMEM, "out of memory");
	pthread_mutex_lock(&gc->mu);
	ret = admit_locked(gc, job, background ? 0 : deadline, err);
	if (ret == 0)
		ret = job_start_locked(gc, job, err);
	if (ret < 0) {
		pthread_mutex_unlock(&gc->mu);
		if (background)
			log_warnx("%s: background Gluster call not started: %s", job->name, err->msg);
		json_decref(job->in);
		free(job);
		return ret;
	}
	if (!background) {
		ret = job_wait_locked(gc, job, deadline, full, out, flag, err);
		job_unref_locked(job);
	}
	pthread_mutex_unlock(&gc->mu);
	return ret;
}
