/*
 * gluster_jobs.c - the gluster backend's gfapi helpers and its volume jobs
 * (facts records, the trash, listing), run on the job engine
 * (gluster_engine.c). A job whose request gave up changes nothing more
 * (gl_gave_up), and undoes a change its request was told did not happen.
 */
#define LOG_TAG "gluster"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
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
	int ret;

	if (gl_this_job_gave_up())
		return -ETIMEDOUT;
	ret = gfs_write_tmp(gc, fs, path, v, tmp, sizeof(tmp));
	if (ret < 0)
		return ret;
	if (gl_this_job_gave_up())
		ret = -ETIMEDOUT;
	else if (glfs_link(fs, tmp, path) < 0)
		ret = -errno;
	glfs_unlink(fs, tmp);
	return ret;
}

/* Replace path with v atomically. 0 or -errno. */
int gl_replace(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v)
{
	char tmp[GL_PATH_MAX + 128];
	int ret;

	if (gl_this_job_gave_up())
		return -ETIMEDOUT;
	ret = gfs_write_tmp(gc, fs, path, v, tmp, sizeof(tmp));
	if (ret < 0)
		return ret;
	/* Checked again: writing the temporary file may be what hung. */
	if (gl_this_job_gave_up()) {
		glfs_unlink(fs, tmp);
		return -ETIMEDOUT;
	}
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
 * The Create job's directory (path), 0700 until its owner and mode are
 * set: 1 made now, 0 there already, or -errno with job->err. A directory
 * there when this job published the record (job->flag) is no volume of
 * ballast's (a Create publishes the record first, a Remove moves the data
 * before it drops the record): someone's data. It is refused, not taken
 * over, and the record is dropped so that the Create's undo leaves it be.
 */
static int make_vol_dir(struct gl_job *job, glfs_t *fs, const char *path)
{
	struct gl_ctx *gc = job->gc;
	char rec[GL_PATH_MAX];
	int ret;

	if (glfs_mkdir(fs, path, 0700) == 0)
		return 1;
	if (errno != EEXIST)
		return berr_set(&job->err, -errno, "cannot create %s in gluster volume %s: %s", path, gc->volume,
				strerror(errno));
	if (!job->flag)
		return 0;
	ret = berr_set(&job->err, -EEXIST,
		       "cannot create volume %s: %s already exists in gluster volume %s and is not a "
		       "ballast volume; move it away first",
		       job->name, path, gc->volume);
	job->flag = 0;
	gl_meta_path(gc, job->name, "json", rec, sizeof(rec));
	if (glfs_unlink(fs, rec) < 0 && errno != ENOENT)
		log_warn("volume %s: cannot drop the record %s just made", job->name, rec);
	return ret;
}

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
	if (gl_gave_up(job)) {
		/* The Create already failed on its time bound: a record
		 * published here stays incomplete (never listed), for a
		 * later Create to finish. */
		ret = -ETIMEDOUT;
		goto out;
	}
	gl_vol_path(gc, job->name, path, sizeof(path));
	made_dir = make_vol_dir(job, fs, path);
	if (made_dir < 0) {
		ret = made_dir;
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

/* The Remove's request gave up after its data moved from path to trash:
 * move it back (its records are still there). -ETIMEDOUT. */
static int remove_undo(struct gl_job *job, glfs_t *fs, const char *trash, const char *path)
{
	if (job->flag && glfs_rename(fs, trash, path) < 0)
		log_errx("volume %s: a Remove given up on moved its data to %s, and it could not be moved back: %s",
			 job->name, trash, strerror(errno));
	else if (job->flag)
		log_warnx("volume %s: a Remove given up on had moved its data aside: moved back", job->name);
	job->flag = 0;
	return -ETIMEDOUT;
}

/* A new name in the trash for what job->name discards, into buf. */
static int trash_path(struct gl_job *job, glfs_t *fs, char *buf, size_t len)
{
	static atomic_long seq;
	char dir[GL_SUB_MAX];
	int ret;

	gl_sub_path(job->gc, GL_TRASH, dir, sizeof(dir));
	ret = gl_mkdir_p(fs, dir, 0755);
	if (ret < 0)
		return berr_set(&job->err, ret, "cannot create %s in gluster: %s", dir, strerror(-ret));
	if ((size_t)snprintf(buf, len, "%s/%s.%ld.%ld", dir, job->name, (long)time(NULL), atomic_fetch_add(&seq, 1)) >=
	    len)
		return berr_set(&job->err, -ENAMETOOLONG, "path too long");
	return 0;
}

int gl_discard(struct gl_job *job, glfs_t *fs, const char *path)
{
	char trash[GL_PATH_MAX];
	int ret = trash_path(job, fs, trash, sizeof(trash));

	if (ret == 0 && glfs_rename(fs, path, trash) < 0 && errno != ENOENT)
		ret = berr_set(&job->err, -errno, "cannot move %s to the trash: %s", path, strerror(errno));
	return ret;
}

/*
 * The Remove itself, once its checks passed: the data moves into the trash,
 * then the records go. A request that gave up was told the volume stays:
 * nothing is done then, and a move already made is undone.
 */
static int remove_move(struct gl_job *job, glfs_t *fs)
{
	struct gl_ctx *gc = job->gc;
	char path[GL_PATH_MAX], trash[GL_PATH_MAX], data[GL_PATH_MAX];
	int ret;

	if (gl_gave_up(job))
		return -ETIMEDOUT;
	ret = trash_path(job, fs, trash, sizeof(trash));
	if (ret < 0)
		return ret;
	gl_vol_path(gc, job->name, path, sizeof(path));
	if (gl_gave_up(job))
		return -ETIMEDOUT;
	if (glfs_rename(fs, path, trash) == 0)
		job->flag = 1;
	else if (errno != ENOENT)
		return berr_set(&job->err, -errno, "cannot remove %s from gluster: %s", path, strerror(errno));
	if (gl_gave_up(job))
		return remove_undo(job, fs, trash, path);
	gl_meta_path(gc, job->name, "holder", data, sizeof(data));
	glfs_unlink(fs, data);
	/* The facts record is the volume: the last chance to keep it. */
	if (gl_gave_up(job))
		return remove_undo(job, fs, trash, path);
	if (gl_user_path(gc, job->name, gc->host_id, data, sizeof(data)) == 0)
		glfs_unlink(fs, data);
	gl_meta_path(gc, job->name, "json", data, sizeof(data));
	if (glfs_unlink(fs, data) < 0 && errno != ENOENT)
		return berr_set(&job->err, -errno, "cannot remove %s from gluster: %s", data, strerror(errno));
	return 0;
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
	char path[GL_PATH_MAX];
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
	return remove_move(job, fs);
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
