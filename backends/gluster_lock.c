/*
 * gluster_lock.c - the fence lock: one host at a time edits auth.reject.
 *
 * Fencing reads the whole auth.reject value of the Gluster volume, edits
 * one directory's entry and writes it all back (gluster_hold.c). Two hosts
 * doing that at once (B fences A from v1 while C fences or unfences for
 * v2) could each write back a value without the other's entry, and a
 * fence checked a moment before would be gone. So every edit runs under
 * one lock object in the Gluster volume, <dir>/.ballast/fence.lock,
 * published with link (atomic, never replaces: one host wins) and with a
 * lease of its own, long enough for one edit; a host that finds the lock
 * past its lease (its holder died mid-edit) breaks it, checking that it
 * breaks the very record it judged stale.
 *
 * The decision on a lock record is pure (gl_lock_decide), unit tested in
 * tests/unit/test_gluster_hold.c. Like holder records, the lease assumes
 * the hosts' clocks agree to well within it.
 */
#define LOG_TAG "gluster"
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gluster_int.h"
#include "log.h"
#include "timeutil.h"

#define GL_LOCK_FILE "fence.lock"
#define GL_LOCK_POLL_MS 250

/* --- the decisions (pure) ------------------------------------------------- */

/* What to do about lock record rec; see gluster_int.h. */
enum gl_lock_state gl_lock_decide(const json_t *rec, const char *token, long long now)
{
	const json_t *exp = json_object_get(rec, "expires_unix");
	const char *theirs = json_string_value(json_object_get(rec, "token"));

	if (!rec)
		return GL_LOCK_FREE;
	if (theirs && token && strcmp(theirs, token) == 0)
		return GL_LOCK_MINE;
	/* A lock naming no expiry would block every fence forever. */
	if (!json_is_integer(exp) || json_integer_value(exp) < now)
		return GL_LOCK_STALE;
	return GL_LOCK_HELD;
}

/* A lock record; see gluster_int.h. */
json_t *gl_lock_make(const char *host, const char *token, long long now, int lease_s)
{
	char since[40];

	rfc3339_format((time_t)now, since, sizeof(since));
	return json_pack("{s:s, s:s, s:s, s:I}", "host", host, "token", token, "since", since, "expires_unix",
			 (json_int_t)(now + lease_s));
}

/* --- the lock record (worker threads) ------------------------------------- */

static int lock_path(const struct gl_ctx *gc, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/" GL_META "/" GL_LOCK_FILE, gc->dir) < len ? 0 : -ENAMETOOLONG;
}

/*
 * One try at the lock (in: our lock record). job->flag = 1 when it is
 * ours now. Otherwise the lock is another host's: job->out gets its record
 * (NULL: unreadable) and a stale one is broken on the way, so that the
 * caller's next try can take it.
 */
static int op_lock_try(struct gl_job *job, glfs_t *fs)
{
	const char *token = json_string_value(json_object_get(job->in, "token"));
	char path[GL_PATH_MAX], dir[GL_SUB_MAX];
	json_t *cur = NULL, *moved = NULL;
	int ret;

	if (lock_path(job->gc, path, sizeof(path)) < 0 || gl_sub_path(job->gc, GL_META, dir, sizeof(dir)) < 0)
		return berr_set(&job->err, -ENAMETOOLONG, "the fence lock's path is too long");
	ret = gl_read_json(fs, path, &cur);
	if (ret == -ENOENT) {
		ret = gl_mkdir_p(fs, dir, 0755);
		if (ret == 0)
			ret = gl_publish_new(job->gc, fs, path, job->in);
		job->flag = ret == 0;
		if (ret == -EEXIST)
			ret = 0; /* another host was first: the caller tries again */
	} else if (ret == -ESTALE) {
		ret = 0; /* replaced while read: try again */
	} else if (ret == 0 || ret == -EBADMSG) {
		enum gl_lock_state st = ret == 0 ? gl_lock_decide(cur, token, time(NULL)) : GL_LOCK_STALE;

		job->flag = st == GL_LOCK_MINE;
		ret = 0;
		if (st == GL_LOCK_STALE) {
			log_warnx(
				"breaking the fence lock of %s: its lease ran out (it died while editing auth.reject?)",
				cur ? json_string_value(json_object_get(cur, "host")) : "an unreadable record");
			ret = gl_break_record(job->gc, fs, path, cur, gl_json_equal, &moved);
			if (ret == -ENOENT || ret == -EBUSY)
				ret = 0; /* gone or replaced meanwhile: try again */
		}
		job->out = cur;
		cur = NULL;
	}
	if (ret < 0)
		berr_set(&job->err, ret, "cannot take the fence lock %s in gluster: %s", path, strerror(-ret));
	json_decref(cur);
	json_decref(moved);
	return ret;
}

/* Drop the lock (in: our lock record) if it is still ours. */
static int op_lock_drop(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	json_t *moved = NULL;
	int ret;

	if (lock_path(job->gc, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	ret = gl_break_record(job->gc, fs, path, job->in, gl_json_equal, &moved);
	if (ret == -EBUSY)
		/* Ours ran out and another host holds the lock now. */
		berr_set(&job->err, ret, "the fence lock is %s's now",
			 json_string_value(json_object_get(moved, "host")));
	else if (ret < 0 && ret != -ENOENT)
		berr_set(&job->err, ret, "cannot drop the fence lock %s: %s", path, strerror(-ret));
	json_decref(moved);
	return ret == -ENOENT ? 0 : ret;
}

/* --- taking and dropping it ------------------------------------------------ */

/* The lock's lease: one edit is three calls of glusterd's CLI (read, write,
 * read back), each bounded by the timeout; an edit still running when it
 * ends stops before writing (gluster_hold.c). */
static int lock_lease(const struct gl_ctx *gc)
{
	return 4 * gc->timeout_s + 2;
}

/* Take the fence lock; see gluster_int.h. */
int gl_fence_lock(struct gl_ctx *gc, const char *name, json_t **lock, struct berr *err)
{
	static atomic_ulong seq;
	long deadline = monotonic_ms() + (long)(lock_lease(gc) + gc->timeout_s + 1) * 1000L;
	char token[sizeof(gc->host_id) + 64];
	json_t *holder = NULL;
	int mine = 0, ret;

	*lock = NULL;
	snprintf(token, sizeof(token), "%s/%ld/%lu/%ld", gc->host_id, (long)getpid(), atomic_fetch_add(&seq, 1),
		 monotonic_ms());
	for (;;) {
		json_t *rec = gl_lock_make(gc->host_id, token, time(NULL), lock_lease(gc));

		json_decref(holder);
		holder = NULL;
		ret = rec ? gl_run(gc, op_lock_try, name, rec, 0, &holder, &mine, err)
			  : berr_set(err, -ENOMEM, "out of memory");
		if (ret == 0 && mine) {
			*lock = rec;
			break;
		}
		json_decref(rec);
		if (ret < 0)
			break;
		if (monotonic_ms() > deadline) {
			ret = berr_set(
				err, -EBUSY,
				"cannot edit auth.reject of %s: its fence lock is held by %s (until %lld); retry",
				gc->volume, json_string_value(json_object_get(holder, "host")) ?: "?",
				json_integer_value(json_object_get(holder, "expires_unix")));
			break;
		}
		usleep(GL_LOCK_POLL_MS * 1000);
	}
	json_decref(holder);
	return ret;
}

/* Drop the fence lock; see gluster_int.h. */
void gl_fence_unlock(struct gl_ctx *gc, const char *name, const json_t *lock)
{
	struct berr err = BERR_INIT;

	if (lock && gl_run(gc, op_lock_drop, name, (json_t *)lock, 0, NULL, NULL, &err) < 0)
		log_warnx("volume %s: %s (the fence lock runs out with its lease)", name, err.msg);
}
