/*
 * rbd_fuse_ops.c - the FUSE operations of ballast-rbd-map: "/" holds two
 * files, "image" (the RBD image, read and written through librbd) and
 * "size" (read: the size in bytes; write a larger number: grow the image).
 * Every librbd error is handed to the caller as its errno.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "rbd_fuse_int.h"

static int is_image(const char *path)
{
	return strcmp(path, "/" IMAGE_FILE) == 0;
}

static int is_size(const char *path)
{
	return strcmp(path, "/" SIZE_FILE) == 0;
}

static int image_size(uint64_t *size)
{
	return rbd_get_size(m.img, size);
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	uint64_t size;
	int ret;

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_atime = st->st_mtime = st->st_ctime = m.started;
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
		return 0;
	}
	if (is_size(path)) {
		st->st_mode = S_IFREG | (m.read_only ? 0400 : 0600);
		st->st_nlink = 1;
		st->st_size = 0; /* served with direct_io: the length is what read returns */
		return 0;
	}
	if (!is_image(path))
		return -ENOENT;
	ret = image_size(&size); /* re-read: a grown image is seen */
	if (ret < 0)
		return ret;
	st->st_mode = S_IFREG | (m.read_only ? 0400 : 0600);
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, IMAGE_FILE, NULL, 0, 0);
	fill(buf, SIZE_FILE, NULL, 0, 0);
	return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	if (!is_image(path) && !is_size(path))
		return strcmp(path, "/") == 0 ? -EISDIR : -ENOENT;
	if (m.read_only && (fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	/* No page cache of our own on top of the loop device's and the
	 * file system's: every read and write reaches librbd. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

static int op_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	uint64_t size;
	ssize_t n;
	int ret;

	(void)fi;
	ret = image_size(&size);
	if (ret < 0)
		return ret;
	if (is_size(path)) {
		char num[32];
		int k = snprintf(num, sizeof(num), "%llu\n", (unsigned long long)size);

		if (off >= k)
			return 0;
		k -= (int)off;
		if ((size_t)k > len)
			k = (int)len;
		memcpy(buf, num + off, (size_t)k);
		return k;
	}
	if ((uint64_t)off >= size)
		return 0;
	if (len > size - (uint64_t)off)
		len = (size_t)(size - (uint64_t)off);
	n = rbd_read(m.img, (uint64_t)off, len, buf);
	return (int)n; /* bytes, or -errno straight from librbd */
}

/* A write to "size": grow the image to the number written. */
static int resize_to(const char *buf, size_t len, off_t off)
{
	char num[32], *end;
	unsigned long long want;
	uint64_t cur;
	int ret;

	if (off != 0 || len == 0 || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, buf, len);
	num[len] = '\0';
	errno = 0;
	want = strtoull(num, &end, 10);
	if (errno || end == num || (*end && *end != '\n') || num[0] == '-')
		return -EINVAL;
	ret = image_size(&cur);
	if (ret < 0)
		return ret;
	if (want < cur)
		return -EINVAL; /* shrinking would cut the file system */
	if (want > cur) {
		ret = rbd_resize(m.img, want);
		if (ret < 0)
			return ret;
	}
	return (int)len;
}

static int op_write(const char *path, const char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	uint64_t size;
	ssize_t n;
	int ret;

	(void)fi;
	if (!may_write())
		return -EIO;
	if (is_size(path))
		return resize_to(buf, len, off);
	ret = image_size(&size);
	if (ret < 0)
		return ret;
	if ((uint64_t)off >= size || len > size - (uint64_t)off)
		return -ENOSPC; /* the image grows by resize, never by writing */
	n = rbd_write(m.img, (uint64_t)off, len, buf);
	return (int)n;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	if (!m.read_only && !may_write())
		return -EIO;
	return rbd_flush(m.img);
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if (m.read_only)
		return 0;
	return may_write() ? rbd_flush(m.img) : -EIO;
}

/* Truncation to the current size is what O_TRUNC-free tools do; anything
 * else would change the image's size behind ballast's back. */
static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	uint64_t cur;
	int ret;

	(void)fi;
	if (is_size(path))
		return 0; /* `echo N > size` truncates first */
	if (!is_image(path))
		return -EISDIR;
	ret = image_size(&cur);
	if (ret < 0)
		return ret;
	return (uint64_t)size == cur ? 0 : -EOPNOTSUPP;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	uint64_t size;
	int ret;

	(void)path;
	ret = image_size(&size);
	if (ret < 0)
		return ret;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_blocks = size / 4096;
	sv->f_files = 2;
	sv->f_namemax = 255;
	return 0;
}

static int op_chmod_chown_ok(void)
{
	return 0;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path;
	(void)mode;
	(void)fi;
	return op_chmod_chown_ok();
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)path;
	(void)tv;
	(void)fi;
	return op_chmod_chown_ok();
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* Sizes change under us (resize): never cache attributes. */
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->use_ino = 0;
	cfg->direct_io = 1;
	return NULL;
}

const struct fuse_operations rbd_fuse_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.fsync = op_fsync,
	.flush = op_flush,
	.truncate = op_truncate,
	.statfs = op_statfs,
	.chmod = op_chmod,
	.utimens = op_utimens,
};
