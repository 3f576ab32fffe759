/* fsutil.c - file-system helpers (see fsutil.h). */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libmount.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t len;

	if (!slash)
		return fsync_path(".");
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, len);
	dir[len] = '\0';
	return fsync_path(dir);
}

int sync_entry(const char *path)
{
	int ret = fsync_path(path);

	return ret < 0 ? ret : sync_parent(path);
}

/* mkdir of one directory; one it made is made durable. */
static int mkdir_one(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0)
		return errno == EEXIST ? 0 : -errno;
	return sync_entry(path);
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	int ret;

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		ret = mkdir_one(buf, mode);
		if (ret < 0)
			return ret;
		*p = '/';
	}
	return mkdir_one(buf, mode);
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

struct sync_batch {
	int done, err, refs;
};

void group_sync_destroy(struct group_sync *g)
{
	free(g->next);
	g->next = NULL;
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
}

int group_fsync(struct group_sync *g, int fd)
{
	struct sync_batch *b;
	int ret;

	if (!g)
		return fsync(fd) < 0 ? -errno : 0;
	pthread_mutex_lock(&g->lock);
	b = g->next;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b) {
			pthread_mutex_unlock(&g->lock);
			return fsync(fd) < 0 ? -errno : 0;
		}
		g->next = b;
	}
	b->refs++;
	while (!b->done) {
		if (g->running) {
			pthread_cond_wait(&g->cond, &g->lock);
			continue;
		}
		/* b is the batch not yet begun: close it and run its fsync */
		g->running = 1;
		g->next = NULL;
		pthread_mutex_unlock(&g->lock);
		ret = fsync(fd) < 0 ? -errno : 0;
		pthread_mutex_lock(&g->lock);
		b->err = ret;
		b->done = 1;
		g->running = 0;
		pthread_cond_broadcast(&g->cond);
	}
	ret = b->err;
	if (--b->refs == 0)
		free(b);
	pthread_mutex_unlock(&g->lock);
	return ret;
}

int atomic_write_at(int dirfd, const char *name, const char *data, size_t len)
{
	return atomic_write_group(dirfd, NULL, name, data, len);
}

int atomic_write_group(int dirfd, struct group_sync *g, const char *name, const char *data, size_t len)
{
	char tmp[NAME_MAX + 1];
	int fd, ret;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = write_all(fd, data, len);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		ret = -errno;
	if (ret < 0) {
		unlinkat(dirfd, tmp, 0);
		return ret;
	}
	/* The rename is durable only once the directory is. */
	return group_fsync(g, dirfd);
}

int overwrite_at(int dirfd, const char *name, const char *data, size_t len)
{
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	if (len > FS_SECTOR)
		return -EINVAL;
	/* O_NONBLOCK: a FIFO under the name must not hang the open */
	fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENXIO ? -ESTALE : -errno;
	if (fstat(fd, &st) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len)
		ret = -ESTALE;
	else if ((n = pwrite(fd, data, len, 0)) < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO; /* what a sector holds is written whole or not at all */
	else if (fdatasync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int read_file_at(int dirfd, const char *name, size_t max, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, ret = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out_close;
	}
	if ((size_t)st.st_size > max) {
		ret = -EFBIG;
		goto out_close;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out_free:
	free(buf);
out_close:
	close(fd);
	return ret;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP ? rmdir(path) : unlink(path))
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

int rm_rf(const char *path)
{
	struct stat st;
	int ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	return ret < 0 ? -errno : ret;
}

int is_mountpoint(const char *path)
{
	struct libmnt_table *tb = mnt_new_table();
	int ret;

	if (!tb)
		return -ENOMEM;
	ret = mnt_table_parse_mtab(tb, NULL);
	if (ret == 0)
		ret = mnt_table_find_target(tb, path, MNT_ITER_BACKWARD) ? 1 : 0;
	mnt_unref_table(tb);
	return ret;
}

/* What mount_users knows of one path: the file system it is on (dev), its
 * place within it (root), and the mount it is on here (target, fsroot,
 * and its peer group when shared, for copies propagated elsewhere). */
struct place {
	dev_t dev;
	char root[PATH_MAX];
	char target[PATH_MAX];
	char fsroot[PATH_MAX];
	long peers; /* shared:N of that mount; 0: not shared */
};

/* N of "TAG:N" among a mount's optional fields ("shared:3 master:1"), or 0 */
static long peer_tag(struct libmnt_fs *fs, const char *tag)
{
	const char *f = mnt_fs_get_optional_fields(fs), *p;
	size_t tl = strlen(tag);

	for (p = f; p && *p; p++) {
		if ((p == f || p[-1] == ' ') && strncmp(p, tag, tl) == 0 && p[tl] == ':')
			return strtol(p + tl + 1, NULL, 10);
	}
	return 0;
}

/* Where path is, from this namespace's mount table tb. */
static int place_of(struct libmnt_table *tb, const char *path, struct place *pl)
{
	struct libmnt_fs *fs = mnt_table_find_mountpoint(tb, path, MNT_ITER_BACKWARD);
	const char *target, *fsroot, *rest;
	size_t tl;
	int n;

	if (!fs || !(target = mnt_fs_get_target(fs)))
		return -ENOENT;
	fsroot = mnt_fs_get_root(fs);
	if (!fsroot)
		fsroot = "/";
	tl = strlen(target);
	if (strncmp(path, target, tl) != 0)
		return -ENOENT;
	rest = strcmp(target, "/") == 0 ? path : path + tl; /* "" or "/..." */
	if (strcmp(fsroot, "/") == 0)
		n = snprintf(pl->root, sizeof(pl->root), "%s", rest[0] ? rest : "/");
	else
		n = snprintf(pl->root, sizeof(pl->root), "%s%s", fsroot, rest);
	if (n < 0 || (size_t)n >= sizeof(pl->root) || strlen(target) >= sizeof(pl->target) ||
	    strlen(fsroot) >= sizeof(pl->fsroot))
		return -ENAMETOOLONG;
	snprintf(pl->target, sizeof(pl->target), "%s", target);
	snprintf(pl->fsroot, sizeof(pl->fsroot), "%s", fsroot);
	pl->dev = mnt_fs_get_devno(fs);
	pl->peers = peer_tag(fs, "shared");
	return 0;
}

/* Is a mount's root r the place p or below it? */
static int root_within(const char *r, const char *p)
{
	size_t pl = strlen(p);

	if (!r)
		return 0;
	if (strcmp(p, "/") == 0)
		return 1;
	return strncmp(r, p, pl) == 0 && (r[pl] == '\0' || r[pl] == '/');
}

/* Does mount fs show place pl to a user? Not the mount pl is on itself
 * (own: in this namespace), nor a copy of it that propagation made in
 * another namespace (at the same place, a peer or slave of its group).
 * Anything else of the same file system at or below pl's place does: a
 * bind mount of it. */
static int shows(struct libmnt_fs *fs, const struct place *pl, int own)
{
	const char *target = mnt_fs_get_target(fs);
	int same;

	if (mnt_fs_get_devno(fs) != pl->dev || !root_within(mnt_fs_get_root(fs), pl->root))
		return 0;
	same = target && strcmp(target, pl->target) == 0 && strcmp(mnt_fs_get_root(fs), pl->fsroot) == 0;
	if (same && own)
		return 0;
	if (same && pl->peers && (peer_tag(fs, "shared") == pl->peers || peer_tag(fs, "master") == pl->peers))
		return 0;
	return 1;
}

static void count_in(struct libmnt_table *tb, const struct place *pl, size_t n, int *users, int own)
{
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;

	if (!it)
		return;
	while (mnt_table_next_fs(tb, it, &fs) == 0)
		for (size_t i = 0; i < n; i++)
			if (users[i] >= 0 && shows(fs, &pl[i], own))
				users[i]++;
	mnt_free_iter(it);
}

int mount_users(const char *const *paths, size_t n, int *users)
{
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	struct place *pl = calloc(n ? n : 1, sizeof(*pl));
	ino_t *seen = NULL, self = 0;
	size_t nseen = 0, cap = 0;
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int ret = 0;

	if (!tb || !pl) {
		ret = -ENOMEM;
		goto out;
	}
	if (stat("/proc/self/ns/mnt", &st) < 0) {
		ret = -errno;
		goto out;
	}
	self = st.st_ino;
	for (size_t i = 0; i < n; i++)
		users[i] = place_of(tb, paths[i], &pl[i]) == 0 ? 0 : -1;
	d = opendir("/proc");
	if (!d) {
		ret = -errno;
		goto out;
	}
	while ((de = readdir(d))) {
		char p[300];
		struct libmnt_table *t;
		size_t k;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/ns/mnt", de->d_name);
		if (stat(p, &st) < 0)
			continue; /* ended, or a kernel thread */
		for (k = 0; k < nseen && seen[k] != st.st_ino; k++)
			;
		if (k < nseen)
			continue;
		if (nseen == cap) {
			ino_t *s = realloc(seen, (cap = cap ? 2 * cap : 64) * sizeof(*seen));

			if (!s) {
				ret = -ENOMEM;
				goto out;
			}
			seen = s;
		}
		seen[nseen++] = st.st_ino;
		snprintf(p, sizeof(p), "/proc/%s/mountinfo", de->d_name);
		t = mnt_new_table_from_file(p);
		if (t) {
			count_in(t, pl, n, users, st.st_ino == self);
			mnt_unref_table(t);
		}
	}
out:
	if (d)
		closedir(d);
	free(seen);
	free(pl);
	mnt_unref_table(tb);
	return ret;
}

int sees_host_pids(void)
{
	char line[128];
	FILE *f = fopen("/proc/2/status", "re");
	int ret = 0;

	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f))
		ret = strcmp(line, "Name:\tkthreadd\n") == 0;
	fclose(f);
	return ret;
}
