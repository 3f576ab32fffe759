/*
 * gluster_copy.c - copies of gluster volumes (-o from=VOLUME): the tree
 * copied through gfapi into a hidden directory, one entry (or one chunk of
 * a big file) per job so that each call stays within the handle's timeout,
 * then renamed into place. Owners, modes, times, user extended attributes
 * and holes are kept.
 */
#define LOG_TAG "gluster"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "gluster_int.h"
#include "log.h"
#include "timeutil.h"

/* What one job copies of a file at most, and its buffer. */
#define GL_COPY_CHUNK (16u << 20)
#define GL_COPY_BUF (128u << 10)

static int all_zero(const char *buf, size_t n)
{
	return n == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0);
}

/* Copy src's bytes from off on into dst (made when off is 0), at most
 * GL_COPY_CHUNK; zeroes are skipped (holes). *next: where the next job
 * goes on, or -1 when the file is whole (sized and flushed). */
static int copy_chunk(struct gl_job *job, glfs_t *fs, const char *src, const char *dst, const struct stat *st,
		      long long off, long long *next)
{
	glfs_fd_t *in = NULL, *out = NULL;
	long long end = off + GL_COPY_CHUNK;
	char *buf = malloc(GL_COPY_BUF);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	in = glfs_open(fs, src, O_RDONLY);
	out = off == 0 ? glfs_creat(fs, dst, O_WRONLY | O_TRUNC, st->st_mode & 07777) : glfs_open(fs, dst, O_WRONLY);
	if (!in || !out || glfs_lseek(in, off, SEEK_SET) < 0 || glfs_lseek(out, off, SEEK_SET) < 0) {
		ret = -errno;
		goto out;
	}
	*next = -1;
	while (off < end) {
		ssize_t n = glfs_read(in, buf, GL_COPY_BUF, 0);

		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		if (gl_gave_up(job)) {
			ret = -ETIMEDOUT;
			goto out;
		}
		if (all_zero(buf, (size_t)n) ? glfs_lseek(out, n, SEEK_CUR) < 0
					     : glfs_write(out, buf, (size_t)n, 0) != n) {
			ret = errno ? -errno : -EIO;
			goto out;
		}
		off += n;
		if (off >= end)
			*next = off;
	}
	/* whole: its size (a trailing hole) and its data on the bricks */
	if (*next < 0 && (glfs_ftruncate(out, st->st_size, NULL, NULL) < 0 || glfs_fsync(out, NULL, NULL) < 0))
		ret = -errno;
out:
	if (in)
		glfs_close(in);
	if (out)
		glfs_close(out);
	free(buf);
	return ret;
}

/* The names in directory path, as a new array. */
static int dir_names(glfs_t *fs, const char *path, json_t **out)
{
	glfs_fd_t *d = glfs_opendir(fs, path);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return -errno;
	*out = json_array();
	while ((errno = 0, de = glfs_readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			json_array_append_new(*out, json_string(de->d_name));
	if (errno)
		ret = -errno;
	glfs_closedir(d);
	return ret;
}

/*
 * Copy job, one entry: in {"src", "dst", "offset"} (paths in the volume).
 * A directory is made and its names listed (out {"children": [...]}); a
 * file is copied a chunk at a time (out {"offset": n} to go on, or {} when
 * whole); a symlink or a device node is made. Owners, modes and times come
 * after, with gl_op_copy_attrs.
 */
int gl_op_copy_entry(struct gl_job *job, glfs_t *fs)
{
	const char *src = json_string_value(json_object_get(job->in, "src"));
	const char *dst = json_string_value(json_object_get(job->in, "dst"));
	long long off = json_integer_value(json_object_get(job->in, "offset")), next = -1;
	char link[GL_PATH_MAX];
	json_t *kids = NULL;
	struct stat st;
	ssize_t n;
	int ret = 0;

	if (!src || !dst)
		return -EINVAL;
	if (glfs_lstat(fs, src, &st) < 0)
		return berr_set(&job->err, -errno, "cannot copy %s: %s", src, strerror(errno));
	if (gl_gave_up(job))
		return -ETIMEDOUT;
	if (S_ISDIR(st.st_mode)) {
		if (glfs_mkdir(fs, dst, 0700) < 0 && errno != EEXIST)
			ret = -errno;
		if (ret == 0)
			ret = dir_names(fs, src, &kids);
		if (ret == 0)
			job->out = json_pack("{s:o}", "children", kids);
	} else if (S_ISREG(st.st_mode)) {
		ret = copy_chunk(job, fs, src, dst, &st, off, &next);
		if (ret == 0)
			job->out = next < 0 ? json_object() : json_pack("{s:I}", "offset", (json_int_t)next);
	} else if (S_ISLNK(st.st_mode)) {
		n = glfs_readlink(fs, src, link, sizeof(link) - 1);
		if (n < 0 || (link[n] = '\0', glfs_symlink(fs, link, dst) < 0))
			ret = -errno;
	} else if (glfs_mknod(fs, dst, st.st_mode, st.st_rdev) < 0) {
		ret = -errno;
	}
	if (ret < 0 && !job->err.msg[0])
		berr_set(&job->err, ret, "cannot copy %s to %s: %s", src, dst, strerror(-ret));
	return ret;
}

/* Copy job, the end of one entry: in {"src", "dst"}: its owner, mode,
 * user.* extended attributes and times (a directory's after its
 * children, which change its mtime). */
int gl_op_copy_attrs(struct gl_job *job, glfs_t *fs)
{
	const char *src = json_string_value(json_object_get(job->in, "src"));
	const char *dst = json_string_value(json_object_get(job->in, "dst"));
	char names[4096], value[4096];
	struct timespec times[2];
	struct stat st;
	ssize_t len;

	if (!src || !dst)
		return -EINVAL;
	if (glfs_lstat(fs, src, &st) < 0 || glfs_lchown(fs, dst, st.st_uid, st.st_gid) < 0 ||
	    (!S_ISLNK(st.st_mode) && glfs_chmod(fs, dst, st.st_mode & 07777) < 0))
		return berr_set(&job->err, -errno, "cannot give %s the owner and mode of %s: %s", dst, src,
				strerror(errno));
	/* user attributes only: trusted.* and the like are Gluster's own */
	len = glfs_llistxattr(fs, src, names, sizeof(names));
	if (len < 0 && errno != ENOTSUP && errno != ENODATA)
		return berr_set(&job->err, -errno, "cannot list the attributes of %s: %s", src, strerror(errno));
	for (ssize_t at = 0; len > 0 && at < len; at += (ssize_t)strlen(names + at) + 1) {
		ssize_t vlen;

		if (strncmp(names + at, "user.", 5) != 0)
			continue;
		vlen = glfs_lgetxattr(fs, src, names + at, value, sizeof(value));
		if (vlen < 0 || glfs_lsetxattr(fs, dst, names + at, value, (size_t)vlen, 0) < 0)
			return berr_set(&job->err, -errno, "cannot copy attribute %s of %s: %s", names + at, src,
					strerror(errno));
	}
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	if (glfs_lutimens(fs, dst, times) < 0)
		return berr_set(&job->err, -errno, "cannot set the times of %s: %s", dst, strerror(errno));
	return 0;
}

/* Copy job, the last step: in {"tmp", "dst"}: what is at dst (the empty
 * directory Create made, or an interrupted copy's) goes to the trash, and
 * the copy takes its place. */
int gl_op_copy_place(struct gl_job *job, glfs_t *fs)
{
	const char *tmp = json_string_value(json_object_get(job->in, "tmp"));
	const char *dst = json_string_value(json_object_get(job->in, "dst"));
	int ret;

	if (!tmp || !dst)
		return -EINVAL;
	if (gl_gave_up(job))
		return -ETIMEDOUT;
	ret = gl_discard(job, fs, dst);
	if (ret == 0 && glfs_rename(fs, tmp, dst) < 0)
		ret = berr_set(&job->err, -errno, "cannot put the copy %s in place: %s", dst, strerror(errno));
	return ret;
}

/* Discard job: in {"path"} goes to the trash, if it is there. */
int gl_op_discard(struct gl_job *job, glfs_t *fs)
{
	const char *path = json_string_value(json_object_get(job->in, "path"));

	return path ? gl_discard(job, fs, path) : -EINVAL;
}

/* Copy src to dst (paths in the volume) entry by entry: each step a job of
 * its own, bounded by the handle's timeout and the request's deadline. */
static int copy_tree(struct gl_ctx *gc, const char *name, const char *src, const char *dst, struct berr *err)
{
	json_t *in, *out = NULL, *kids = NULL, *k;
	long long off = 0;
	size_t i;
	int ret;

	for (;;) {
		in = json_pack("{s:s, s:s, s:I}", "src", src, "dst", dst, "offset", (json_int_t)off);
		ret = in ? gl_run(gc, gl_op_copy_entry, name, in, 0, &out, NULL, err) : -ENOMEM;
		json_decref(in);
		if (ret < 0)
			return ret;
		kids = json_incref(json_object_get(out, "children"));
		off = json_integer_value(json_object_get(out, "offset"));
		json_decref(out);
		out = NULL;
		if (kids || off == 0)
			break;
	}
	json_array_foreach (kids, i, k) {
		char s[GL_PATH_MAX], d[GL_PATH_MAX];

		if ((size_t)snprintf(s, sizeof(s), "%s/%s", src, json_string_value(k)) >= sizeof(s) ||
		    (size_t)snprintf(d, sizeof(d), "%s/%s", dst, json_string_value(k)) >= sizeof(d)) {
			ret = berr_set(err, -ENAMETOOLONG, "cannot copy %s/%s: path too long", src,
				       json_string_value(k));
			break;
		}
		ret = copy_tree(gc, name, s, d, err);
		if (ret < 0)
			break;
	}
	json_decref(kids);
	if (ret < 0)
		return ret;
	in = json_pack("{s:s, s:s}", "src", src, "dst", dst);
	ret = in ? gl_run(gc, gl_op_copy_attrs, name, in, 0, NULL, NULL, err) : -ENOMEM;
	json_decref(in);
	return ret;
}

int gl_copy_volume(struct gl_ctx *gc, const char *name, const char *from, struct berr *err)
{
	char src[GL_PATH_MAX], dst[GL_PATH_MAX], tmp[GL_PATH_MAX], sub[GL_SUB_MAX];
	struct berr ignored = BERR_INIT;
	json_t *in;
	int ret;

	gl_vol_path(gc, from, src, sizeof(src));
	gl_vol_path(gc, name, dst, sizeof(dst));
	snprintf(sub, sizeof(sub), GL_META "/copy-%s", name);
	gl_sub_path(gc, sub, tmp, sizeof(tmp));
	/* an interrupted copy's leftover first */
	in = json_pack("{s:s}", "path", tmp);
	ret = in ? gl_run(gc, gl_op_discard, name, in, 0, NULL, NULL, err) : -ENOMEM;
	json_decref(in);
	if (ret == 0)
		ret = copy_tree(gc, name, src, tmp, err);
	if (ret == 0) {
		in = json_pack("{s:s, s:s}", "tmp", tmp, "dst", dst);
		ret = in ? gl_run(gc, gl_op_copy_place, name, in, 0, NULL, NULL, err) : -ENOMEM;
		json_decref(in);
	}
	if (ret < 0) {
		in = json_pack("{s:s}", "path", tmp);
		if (in)
			gl_run(gc, gl_op_discard, name, in, 0, NULL, NULL, &ignored);
		json_decref(in);
	}
	return ret;
}
