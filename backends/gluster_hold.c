/*
 * gluster_hold.c - who uses a gluster volume: holder records (one host at
 * a time holds an exclusive volume, with a lease it renews), user records
 * (every host that has a volume mounted, so that Remove elsewhere
 * refuses), and what goes through glusterd's CLI: quotas, and fencing a
 * host whose lease ran out (auth.reject) before its volume is taken over.
 *
 * The decisions on a record (expired? ours? may this host take it?) are
 * pure functions at the top, unit tested in tests/unit/test_gluster_hold.c;
 * the rest reads and writes the records on the job engine's threads.
 * Holder records assume the hosts' clocks agree to well within the lease.
 */
#define LOG_TAG "gluster"
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "gl_reject.h"
#include "gluster_int.h"
#include "log.h"
#include "run.h"
#include "timeutil.h"
#include "validate.h"

/* --- holder records: the decisions (pure) --------------------------------- */

/* Parse a holder or user record; see gluster_int.h. */
int gl_holder_parse(const json_t *rec, struct gl_holder *h)
{
	const json_t *exp = json_object_get(rec, "expires_unix");

	h->host = json_string_value(json_object_get(rec, "host"));
	h->since = json_string_value(json_object_get(rec, "since"));
	h->expires = json_string_value(json_object_get(rec, "expires"));
	h->addr = json_string_value(json_object_get(rec, "addr"));
	h->expires_unix = json_integer_value(exp);
	return h->host && json_is_integer(exp) ? 0 : -EBADMSG;
}

/* 1 when h's lease ran out before now. */
int gl_holder_expired(const struct gl_holder *h, long long now)
{
	return h->expires_unix < now;
}

/* 1 when h names self as its host. */
int gl_holder_mine(const struct gl_holder *h, const char *self)
{
	return h->host && strcmp(h->host, self) == 0;
}

/* A new holder or user record; see gluster_int.h. */
json_t *gl_holder_make(const char *host, const char *since, long long now, int lease_s, const char *addr)
{
	char nowbuf[40], exp[40];

	rfc3339_format((time_t)now, nowbuf, sizeof(nowbuf));
	rfc3339_format((time_t)(now + lease_s), exp, sizeof(exp));
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "host", host, "since", since ? since : nowbuf, "expires",
			 exp, "expires_unix", (json_int_t)(now + lease_s), "lease", (json_int_t)lease_s, "addr", addr);
}

/* Do two holder records name the same hold; see gluster_int.h. */
int gl_holder_same(const json_t *a, const json_t *b)
{
	struct gl_holder ha, hb;

	if (gl_holder_parse(a, &ha) < 0 || gl_holder_parse(b, &hb) < 0 || !ha.since || !hb.since)
		return 0;
	return strcmp(ha.host, hb.host) == 0 && strcmp(ha.since, hb.since) == 0;
}

/* May self take the exclusive volume held by h; see gluster_int.h. Our
 * own record is ours whatever its lease says: this daemon restarted. */
enum gl_take gl_take_decide(const struct gl_holder *h, const char *self, int takeover, long long now)
{
	if (!h)
		return GL_TAKE_FREE;
	if (gl_holder_mine(h, self))
		return GL_TAKE_MINE;
	if (!gl_holder_expired(h, now))
		return GL_TAKE_BUSY;
	return takeover ? GL_TAKE_FENCE : GL_TAKE_NEVER;
}

/* May self renew its hold h; see gluster_int.h. */
enum gl_renew gl_renew_decide(const struct gl_holder *h, const char *self, int fenced_here)
{
	if (!h)
		return GL_RENEW_GONE;
	if (!gl_holder_mine(h, self))
		return GL_RENEW_OTHER;
	return fenced_here ? GL_RENEW_FENCED : GL_RENEW_OK;
}

/* What `ballast release` may do about h; see gluster_int.h. */
enum gl_release gl_release_decide(const struct gl_holder *h, const char *self, int mounted_here, int force,
				  long long now)
{
	int mine = gl_holder_mine(h, self);

	if (mine && mounted_here)
		return GL_RELEASE_MOUNTED_HERE;
	if (!force && !gl_holder_expired(h, now))
		return GL_RELEASE_FRESH;
	return mine ? GL_RELEASE_DROP : GL_RELEASE_FENCE;
}

/* The volume's -o takeover, else the configured default. */
int gl_takeover_policy(const char *opt, int configured)
{
	return opt ? strcmp(opt, "after-lease") == 0 : configured;
}

/* Another host's user record of name: its host, else NULL. A temporary
 * file (being written) starts with a dot and so never matches a name. */
const char *gl_user_entry_host(const char *entry, const char *name, const char *self)
{
	size_t nlen = strlen(name);

	if (strncmp(entry, name, nlen) != 0 || entry[nlen] != '@' || strcmp(entry + nlen + 1, self) == 0)
		return NULL;
	return entry + nlen + 1;
}

/* The volume name of a facts record <name>.json, into buf. */
int gl_meta_entry_name(const char *entry, char *buf, size_t len)
{
	size_t n = strlen(entry);

	if (n <= 5 || strcmp(entry + n - 5, ".json") != 0 || n - 5 > VOLUME_NAME_MAX || n - 5 >= len)
		return -EINVAL;
	snprintf(buf, len, "%.*s", (int)(n - 5), entry);
	return validate_name(buf, NULL) < 0 ? -EINVAL : 0;
}

/* --- holder records ------------------------------------------------------- */

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

/* This host's record (holder or user), with a lease from now, since since
 * (NULL: now): a new reference, or NULL without memory. */
static json_t *holder_record(struct gl_ctx *gc, const char *since)
{
	time_t now = time(NULL);
	char addr[64];

	local_addr(gc, addr, sizeof(addr));
	return gl_holder_make(gc->host_id, since, now, gc->lease_s, addr);
}

/* Write this host's record (holder or user) at path, replacing what is
 * there, since since (NULL: now). 0 or -errno. */
static int record_write(struct gl_ctx *gc, glfs_t *fs, const char *path, const char *since)
{
	json_t *rec = holder_record(gc, since);
	int ret = rec ? gl_replace(gc, fs, path, rec) : -ENOMEM;

	json_decref(rec);
	return ret;
}

/* Is record rec (borrowed) this host's? */
static int rec_mine(const struct gl_ctx *gc, const json_t *rec)
{
	struct gl_holder h;

	gl_holder_parse(rec, &h);
	return gl_holder_mine(&h, gc->host_id);
}

/* Did the lease of record rec (borrowed) run out? A malformed record
 * counts as expired. */
static int rec_expired(const json_t *rec)
{
	struct gl_holder h;

	gl_holder_parse(rec, &h);
	return gl_holder_expired(&h, time(NULL));
}

/* The refusal naming the holder of rec; see gluster_int.h. */
int gl_in_use_msg(struct gl_job *job, const json_t *rec)
{
	struct gl_holder h;

	gl_holder_parse(rec, &h);
	return berr_set(&job->err, -EBUSY, "volume %s is in use on host %s since %s (exclusive)", job->name,
			h.host ? h.host : "?", h.since ? h.since : "?");
}

/* No holder record at path: publish ours. -EEXIST when another host was
 * first; other errors with job->err set. */
static int hold_publish(struct gl_job *job, glfs_t *fs, const char *path)
{
	struct gl_ctx *gc = job->gc;
	json_t *mine = holder_record(gc, NULL);
	int ret = mine ? gl_publish_new(gc, fs, path, mine) : -ENOMEM;

	json_decref(mine);
	if (ret < 0 && ret != -EEXIST)
		berr_set(&job->err, ret, "cannot record the holder of %s in gluster: %s", job->name, strerror(-ret));
	return ret;
}

/* The holder record at path could not be read (ret): the refusal. */
static int hold_read_error(struct gl_job *job, const char *path, int ret)
{
	/* A record being replaced, or garbage: both mean wait. */
	if (ret == -EBADMSG)
		return berr_set(&job->err, -EBUSY, "volume %s has an unreadable holder record (%s); retry", job->name,
				path);
	return berr_set(&job->err, ret, "cannot read the holder of %s: %s", job->name, strerror(-ret));
}

/* json_equal, for gl_break_record. */
int gl_json_equal(const json_t *a, const json_t *b)
{
	return json_equal(a, b);
}

/* Move the record at path aside and drop it if it is still expect; see
 * gluster_int.h. */
int gl_break_record(struct gl_ctx *gc, glfs_t *fs, const char *path, const json_t *expect,
		    int (*same)(const json_t *, const json_t *), json_t **moved)
{
	char tomb[GL_PATH_MAX + 320];
	int ret;

	*moved = NULL;
	if (gl_this_job_gave_up())
		return -ETIMEDOUT;
	/* Named by this host: two hosts breaking at once never share one. */
	if ((size_t)snprintf(tomb, sizeof(tomb), "%s.broken.%ld.%s", path, (long)time(NULL), gc->host_id) >=
	    sizeof(tomb))
		return -ENAMETOOLONG;
	if (glfs_rename(fs, path, tomb) < 0)
		return -errno;
	ret = gl_read_json(fs, tomb, moved);
	if (expect ? ret == 0 && !same(*moved, expect) : ret == 0) {
		/* We moved a record another host just wrote: put it back
		 * (link never replaces) and give way. */
		if (glfs_link(fs, tomb, path) < 0)
			log_errx("%s: lost a record written while breaking an older one: %s", path, strerror(errno));
		ret = -EBUSY;
	} else {
		json_decref(*moved);
		*moved = NULL;
		ret = 0;
	}
	glfs_unlink(fs, tomb);
	return ret;
}

/*
 * Take the holder record of job->name for this host (gl_take_decide). A
 * record of ours is renewed (a restart of this daemon); one of another
 * host is refused unless its lease ran out and the caller fenced that host
 * (in: "takeover", "fenced"): it is then moved aside (rename: only one host
 * can move a given file) and checked to be the expired one we read before
 * ours is published.
 */
static int hold_take(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	int takeover = json_is_true(json_object_get(job->in, "takeover"));
	char path[GL_PATH_MAX];
	json_t *rec = NULL, *moved = NULL;
	struct gl_holder h;
	enum gl_take take;
	int ret;

	gl_meta_path(gc, job->name, "holder", path, sizeof(path));
	for (int attempt = 0; attempt < 3; attempt++) {
		json_decref(rec);
		rec = NULL;
		ret = gl_read_json(fs, path, &rec);
		if (ret == -ENOENT) {
			ret = hold_publish(job, fs, path);
			if (ret == -EEXIST)
				continue; /* another host was first: look again */
			goto out;
		}
		if (ret < 0) {
			ret = hold_read_error(job, path, ret);
			goto out;
		}
		gl_holder_parse(rec, &h);
		take = gl_take_decide(&h, gc->host_id, takeover, time(NULL));
		if (take == GL_TAKE_MINE) {
			ret = record_write(gc, fs, path, h.since);
			if (ret < 0)
				berr_set(&job->err, ret, "cannot renew the holder of %s: %s", job->name,
					 strerror(-ret));
			else
				job->flag = 2; /* this host's hold all along */
			goto out;
		}
		/* Taken over only once its holder was fenced: the very record
		 * the caller read and fenced (not one renewed since). */
		if (take != GL_TAKE_FENCE || !json_equal(rec, json_object_get(job->in, "fenced"))) {
			ret = gl_in_use_msg(job, rec);
			goto out;
		}
		ret = gl_break_record(gc, fs, path, rec, gl_json_equal, &moved);
		if (ret == -ENOENT)
			continue;
		if (ret == -EBUSY) {
			/* a fresh record another host just wrote */
			ret = gl_in_use_msg(job, moved);
			goto out;
		}
		if (ret < 0) {
			ret = berr_set(&job->err, ret, "cannot break the expired hold of %s: %s", job->name,
				       strerror(-ret));
			goto out;
		}
		log_warnx("volume %s: taking over from %s, whose lease expired at %s", job->name, h.host, h.expires);
	}
	if (ret == 0 || ret == -EEXIST)
		ret = berr_set(&job->err, -EBUSY, "volume %s: the holder record keeps changing; retry", job->name);
out:
	json_decref(rec);
	json_decref(moved);
	return ret;
}

/* Drop our holder record of job->name (another host's is left alone). */
static int hold_drop(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	json_t *rec = NULL;
	int ret;

	gl_meta_path(job->gc, job->name, "holder", path, sizeof(path));
	ret = gl_read_json(fs, path, &rec);
	if (ret == -ENOENT)
		return 0;
	if (ret == 0 && rec_mine(job->gc, rec) && glfs_unlink(fs, path) < 0 && errno != ENOENT)
		ret = -errno;
	if (ret < 0)
		berr_set(&job->err, ret, "cannot release the hold of %s: %s", job->name, strerror(-ret));
	json_decref(rec);
	return ret;
}

/* 1 when the fence note of job->name names this host's address, 0 when
 * not (or there is no note), or -errno. */
static int fenced_here(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX], addr[64];
	json_t *note = NULL;
	int ret;

	local_addr(job->gc, addr, sizeof(addr));
	if (!addr[0])
		return 0;
	gl_meta_path(job->gc, job->name, "fence", path, sizeof(path));
	ret = gl_read_json(fs, path, &note);
	if (ret == -ENOENT || ret == -EBADMSG)
		return 0;
	if (ret < 0)
		return ret;
	ret = json_object_get(note, addr) != NULL;
	json_decref(note);
	return ret;
}

/*
 * Renew our holder record of job->name (gl_renew_decide). A record that
 * is gone or another host's, or a fence note naming this host, means the
 * hold is lost (released by hand, taken over, or being taken over after
 * fencing this host): it is never written again here (job->flag = 1,
 * -EBUSY), or a fenced host would hold the volume every period while its
 * mount is dead. Only a Mount takes a hold.
 */
static int hold_renew(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX];
	json_t *rec = NULL;
	struct gl_holder h;
	int ret, fenced = 0;

	gl_meta_path(gc, job->name, "holder", path, sizeof(path));
	ret = gl_read_json(fs, path, &rec);
	if (ret == 0) {
		gl_holder_parse(rec, &h);
		if (gl_holder_mine(&h, gc->host_id) && (fenced = fenced_here(job, fs)) < 0) {
			ret = berr_set(&job->err, fenced, "cannot read the fence note of %s: %s", job->name,
				       strerror(-fenced));
			goto out;
		}
	}
	if (ret < 0 && ret != -ENOENT) {
		ret = hold_read_error(job, path, ret);
		goto out;
	}
	switch (gl_renew_decide(ret == 0 ? &h : NULL, gc->host_id, fenced)) {
	case GL_RENEW_OK:
		ret = record_write(gc, fs, path, h.since);
		goto out;
	case GL_RENEW_GONE:
		ret = berr_set(&job->err, -EBUSY, "volume %s: its holder record is gone (released by hand?)",
			       job->name);
		break;
	case GL_RENEW_OTHER:
		ret = berr_set(&job->err, -EBUSY, "volume %s is now held by %s", job->name, h.host ? h.host : "?");
		break;
	case GL_RENEW_FENCED:
		ret = berr_set(
			&job->err, -EBUSY,
			"volume %s: a fence note names this host (another host takes the volume over): the hold is lost",
			job->name);
		break;
	}
	job->flag = 1;
out:
	json_decref(rec);
	return ret;
}

/* The record <name>.<ext> of job->name into job->out (none: NULL). */
static int read_record(struct gl_job *job, glfs_t *fs, const char *ext)
{
	char path[GL_PATH_MAX];
	int ret;

	gl_meta_path(job->gc, job->name, ext, path, sizeof(path));
	ret = gl_read_json(fs, path, &job->out);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		berr_set(&job->err, ret, "cannot read the %s record of %s: %s", ext, job->name, strerror(-ret));
	return ret;
}

/* The holder record of job->name into job->out (none: NULL). */
int gl_op_holder(struct gl_job *job, glfs_t *fs)
{
	return read_record(job, fs, "holder");
}

/* Drop the holder record of job->name, but only if it is still the hold
 * in job->in "expect", perhaps renewed since by its (fenced) host. */
int gl_op_unhold(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	json_t *moved = NULL;
	int ret;

	gl_meta_path(job->gc, job->name, "holder", path, sizeof(path));
	/* The fenced host may have renewed it meanwhile: the same hold. */
	ret = gl_break_record(job->gc, fs, path, json_object_get(job->in, "expect"), gl_holder_same, &moved);
	if (ret == -ENOENT)
		ret = 0;
	else if (ret == -EBUSY)
		ret = gl_in_use_msg(job, moved);
	else if (ret < 0)
		berr_set(&job->err, ret, "cannot break the hold of %s: %s", job->name, strerror(-ret));
	json_decref(moved);
	return ret;
}

/* --- user records: who has a volume mounted ------------------------------- */

/* <dir>/.ballast/users/<name>@<host>. */
int gl_user_path(const struct gl_ctx *gc, const char *name, const char *host, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/" GL_USERS "/%s@%s", gc->dir, name, host) < len ? 0 : -ENAMETOOLONG;
}

/* Write (or renew) this host's user record of job->name. */
static int user_put(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX];
	int ret;

	ret = gl_sub_path(gc, GL_USERS, path, sizeof(path));
	if (ret == 0)
		ret = gl_mkdir_p(fs, path, 0755);
	if (ret == 0)
		ret = gl_user_path(gc, job->name, gc->host_id, path, sizeof(path));
	if (ret == 0)
		ret = record_write(gc, fs, path, NULL);
	if (ret < 0)
		berr_set(&job->err, ret, "cannot record the mount of %s in gluster: %s", job->name, strerror(-ret));
	return ret;
}

/* The first live user record of job->name by another host, as a refusal;
 * expired ones are deleted on the way. 0 when there is none. */
int gl_user_check_others(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char dir[GL_SUB_MAX], path[GL_PATH_MAX];
	struct dirent *de;
	glfs_fd_t *d;
	int ret = 0;

	if (gl_sub_path(gc, GL_USERS, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	d = glfs_opendir(fs, dir);
	if (!d)
		return errno == ENOENT
			       ? 0
			       : berr_set(&job->err, -errno, "cannot read %s in gluster: %s", dir, strerror(errno));
	while (ret == 0 && (de = glfs_readdir(d))) {
		const char *host = gl_user_entry_host(de->d_name, job->name, gc->host_id);
		json_t *rec = NULL;

		if (!host)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		ret = gl_read_json(fs, path, &rec);
		if (ret == -ESTALE)
			break; /* replaced by a renewal: the caller reads again */
		if (ret < 0) {
			ret = 0;
			continue;
		}
		if (gl_gave_up(job)) {
			ret = -ETIMEDOUT;
		} else if (rec_expired(rec)) {
			glfs_unlink(fs, path);
		} else {
			const char *since = json_string_value(json_object_get(rec, "since"));

			ret = berr_set(&job->err, -EBUSY,
				       "volume %s is mounted on host %s (since %s); unmount it there first", job->name,
				       host, since ? since : "?");
		}
		json_decref(rec);
	}
	glfs_closedir(d);
	return ret;
}

/* Renew this host's records of job->name (in: {"exclusive"}). */
int gl_op_renew(struct gl_job *job, glfs_t *fs)
{
	int ret = user_put(job, fs);

	if (ret == 0 && json_is_true(json_object_get(job->in, "exclusive")))
		ret = hold_renew(job, fs);
	return ret;
}

/* Drop this host's records of job->name (in: {"exclusive"}), whether or
 * not the request still waits (an undo). */
static int release_records(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	int ret = 0;

	if (gl_user_path(job->gc, job->name, job->gc->host_id, path, sizeof(path)) == 0 && glfs_unlink(fs, path) < 0 &&
	    errno != ENOENT)
		ret = berr_set(&job->err, -errno, "cannot drop the mount record of %s: %s", job->name, strerror(errno));
	if (json_is_true(json_object_get(job->in, "exclusive"))) {
		int hret = hold_drop(job, fs);

		ret = ret ? ret : hret;
	}
	return ret;
}

/* Drop this host's records of job->name (in: {"exclusive"}). Not once the
 * Unmount gave up: a Mount here since may have taken them again. */
int gl_op_release(struct gl_job *job, glfs_t *fs)
{
	if (gl_gave_up(job))
		return -ETIMEDOUT;
	return release_records(job, fs);
}

/*
 * Mount preparation: the volume's directory must exist; an exclusive one
 * is taken for this host. job->flag = 1 when the hold was taken, 2 when
 * it was this host's already (renewed).
 */
int gl_op_prepare(struct gl_job *job, glfs_t *fs)
{
	char path[GL_PATH_MAX];
	struct stat st;
	int ret;

	if (gl_gave_up(job))
		return -ETIMEDOUT;
	gl_vol_path(job->gc, job->name, path, sizeof(path));
	if (glfs_stat(fs, path, &st) < 0)
		return berr_set(&job->err, -errno, "volume %s: %s in gluster volume %s: %s", job->name, path,
				job->gc->volume,
				errno == ENOENT ? "missing (removed on another host?)" : strerror(errno));
	if (json_is_true(json_object_get(job->in, "exclusive"))) {
		job->flag = 0;
		ret = hold_take(job, fs);
		if (ret < 0)
			return ret;
		if (job->flag != 2)
			job->flag = 1;
	}
	ret = user_put(job, fs);
	if (gl_gave_up(job)) {
		/* The Mount already failed on its time bound: undo what this
		 * late call recorded, or it would block others until the
		 * lease runs out. (No later call on this volume ran since:
		 * the engine refuses them while this one is stuck.) */
		release_records(job, fs);
		ret = -ETIMEDOUT;
	}
	return ret;
}

/* --- glusterd's CLI, and quotas ------------------------------------------- */

/* Run `gluster --mode=script --glusterd-sock=SOCK args...` with the time
 * bound: its last output line into out (when given), or on failure into
 * err. */
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
		gl_timeout_msg(gc, err);
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

/* Set (or, with bytes == 0, remove) the quota of name's directory. */
int gl_set_quota(struct gl_ctx *gc, const char *name, uint64_t bytes, struct berr *err)
{
	char path[GL_PATH_MAX], size[32];
	int ret;

	gl_vol_path(gc, name, path, sizeof(path));
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

/* --- fencing: auth.reject of one host's address for one directory --------- */

/*
 * The bricks refuse a client whose address auth.reject lists for the
 * directory it mounted ("/ballast/pgdata(10.0.0.5|10.0.0.6),..."), and
 * cut such a client at once when the option is set: its writes fail with
 * ENOTCONN, never reaching the brick, and it unmounts itself when it
 * reconnects. Other hosts, and the fenced host's mounts of other
 * directories, are untouched. The option is one string per Gluster
 * volume: read, edit, write, read back, under the fence lock
 * (gluster_lock.c), so that two hosts' edits never drop each other's
 * entry; an edit by someone who does not take the lock is retried.
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

/* Add addr to (add) or lift it from the fence of volume name, holding the
 * fence lock, whose lease ends at until: no write is started that could
 * end after it (another host may break the lock then). */
static int fence_edit(struct gl_ctx *gc, const char *name, const char *addr, int add, long long until, struct berr *err)
{
	char path[GL_PATH_MAX], cur[4096], next[4096];
	int ret = 0;

	gl_vol_path(gc, name, path, sizeof(path));
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
		if (time(NULL) + gc->timeout_s > until)
			return berr_set(err, -EAGAIN,
					"the fence lock of %s ran out before auth.reject was written; retry",
					gc->volume);
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
	/* Someone edits it without the lock (an operator, an older ballastd). */
	return berr_set(err, -EAGAIN, "auth.reject of %s keeps changing under us; retry", gc->volume);
}

/* fence_edit under the fence lock: one host at a time edits auth.reject,
 * so that no edit drops another's entry. */
static int fence_set(struct gl_ctx *gc, const char *name, const char *addr, int add, struct berr *err)
{
	json_t *lock = NULL;
	int ret = gl_fence_lock(gc, name, &lock, err);

	if (ret < 0)
		return ret;
	ret = fence_edit(gc, name, addr, add, json_integer_value(json_object_get(lock, "expires_unix")), err);
	gl_fence_unlock(gc, name, lock);
	json_decref(lock);
	return ret;
}

/* Is addr fenced from name now, as glusterd has auth.reject? 0 when it
 * is, -EAGAIN when not, or -errno; err set either way. */
static int fence_in_force(struct gl_ctx *gc, const char *name, const char *addr, struct berr *err)
{
	char path[GL_PATH_MAX], cur[4096];
	int ret = reject_get(gc, cur, sizeof(cur), err);

	gl_vol_path(gc, name, path, sizeof(path));
	if (ret == 0 && !gl_reject_has(cur, path, addr))
		ret = berr_set(err, -EAGAIN, "%s is not in auth.reject of %s for %s any more (edited elsewhere?)", addr,
			       gc->volume, path);
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

	gl_meta_path(job->gc, job->name, "fence", path, sizeof(path));
	ret = gl_read_json(fs, path, &note);
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
		ret = gl_replace(job->gc, fs, path, note);
	else if (gl_gave_up(job))
		ret = -ETIMEDOUT;
	else if (glfs_unlink(fs, path) < 0 && errno != ENOENT)
		ret = -errno;
	json_decref(note);
	if (ret < 0)
		berr_set(&job->err, ret, "cannot write the fence note of %s: %s", job->name, strerror(-ret));
	return ret;
}

/* Note addr as fenced by this host (add, from host) or drop it from the
 * fence note of name. 0 or -errno with err set. */
static int fence_note(struct gl_ctx *gc, const char *name, const char *addr, const char *host, int add,
		      struct berr *err)
{
	json_t *in = add ? json_pack("{s:s, s:s, s:b}", "addr", addr, "host", host, "add", 1)
			 : json_pack("{s:s, s:b}", "addr", addr, "add", 0);
	int ret = in ? gl_run(gc, op_fence_note, name, in, 0, NULL, NULL, err) : -ENOMEM;

	json_decref(in);
	return ret;
}

/* Fence the host of holder record rec from name; see gluster_int.h. */
int gl_fence_host(struct gl_ctx *gc, const char *name, json_t *rec, struct berr *err)
{
	struct berr ferr = BERR_INIT;
	const char *host;
	struct gl_holder h;
	int ret;

	gl_holder_parse(rec, &h);
	host = h.host ? h.host : "?";
	if (!h.addr || !h.addr[0])
		return berr_set(
			err, -EBUSY,
			"volume %s: the hold of %s names no address to fence (an older ballastd?); not taking it "
			"over",
			name, host);
	/* The note first: a fence in auth.reject that no note names could
	 * never be lifted by its host (gl_unfence_self reads the note), and a
	 * crash between the two steps would leave one. A note without its
	 * fence (this crash, or a failed edit that may have been applied
	 * after all) costs only a needless lift. */
	ret = fence_note(gc, name, h.addr, h.host ? h.host : "", 1, err);
	if (ret < 0)
		return ret;
	CRASH_POINT("gluster.fence.after-note");
	ret = fence_set(gc, name, h.addr, 1, &ferr);
	if (ret < 0)
		return berr_set(err, ret, "volume %s: cannot fence %s (%s), so not taking it over: %s", name, host,
				h.addr, ferr.msg);
	log_warnx("volume %s: %s (%s) fenced: the bricks refuse its client for %s%s/%s", name, host, h.addr, gc->volume,
		  gc->dir, name);
	/* The caller breaks the hold next: the fence must hold right now. */
	if ((ret = fence_in_force(gc, name, h.addr, &ferr)) < 0)
		berr_set(err, ret, "volume %s: the fence of %s is not in force, so not taking it over: %s", name, host,
			 ferr.msg);
	return ret;
}

/* Lift this host's own fence from name, if any; see gluster_int.h. */
int gl_unfence_self(struct gl_ctx *gc, const char *name, struct berr *err)
{
	struct berr ferr = BERR_INIT;
	json_t *note = NULL;
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
	ret = fence_set(gc, name, addr, 0, &ferr);
	if (ret < 0)
		return berr_set(err, ret, "volume %s: this host (%s) was fenced from it and cannot lift the fence: %s",
				name, addr, ferr.msg);
	log_infox("volume %s: lifted the fence of this host (%s): it holds the volume again", name, addr);
	return fence_note(gc, name, addr, NULL, 0, err);
}

/* Fence the expired holder of name before taking it; see gluster_int.h. */
int gl_fence_expired(struct gl_ctx *gc, const char *name, int takeover, json_t *in, struct berr *err)
{
	json_t *rec = NULL;
	struct gl_holder h;
	int ret;

	ret = gl_run(gc, gl_op_holder, name, NULL, 0, &rec, NULL, err);
	if (ret < 0 || !rec)
		return ret;
	gl_holder_parse(rec, &h);
	if (gl_take_decide(&h, gc->host_id, takeover, time(NULL)) == GL_TAKE_FENCE) {
		log_warnx("volume %s: the lease of %s expired at %s; fencing it before taking over", name, h.host,
			  h.expires);
		ret = gl_fence_host(gc, name, rec, err);
		if (ret == 0) {
			json_object_set_new(in, "takeover", json_true());
			json_object_set(in, "fenced", rec);
		}
	}
	json_decref(rec);
	return ret;
}

/* Lift every fence of a removed volume; see gluster_int.h. */
void gl_unfence_all(struct gl_ctx *gc, const char *name)
{
	struct berr err = BERR_INIT;
	json_t *note = NULL, *v;
	const char *addr;

	if (gl_run(gc, op_fence_read, name, NULL, 0, &note, NULL, &err) < 0) {
		log_warnx("volume %s: %s", name, err.msg);
		return;
	}
	json_object_foreach (note, addr, v) {
		if (fence_set(gc, name, addr, 0, &err) < 0 || fence_note(gc, name, addr, NULL, 0, &err) < 0)
			log_warnx("volume %s: the fence of %s stays in auth.reject of %s: %s", name, addr, gc->volume,
				  err.msg);
	}
	json_decref(note);
}
