/*
 * fsutil.h - small file-system helpers shared by the catalog and backends.
 */
#ifndef BALLAST_FSUTIL_H
#define BALLAST_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with mode for every directory it makes. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/*
 * Replace dirfd/name with data, crash-safely: write name.tmp, fsync it,
 * rename over name, fsync the directory. After a crash either the old or
 * the new content is there, never a mix. 0 or -errno.
 */
int atomic_write_at(int dirfd, const char *name, const char *data, size_t len);

/* Read a whole file (at most max bytes) into a NUL-terminated buffer the
 * caller frees. 0 or -errno (-EFBIG when larger than max). */
int read_file_at(int dirfd, const char *name, size_t max, char **out, size_t *len);

/* Delete path and everything below it, never following symlinks nor
 * crossing into other mounted file systems. A missing path is 0. */
int rm_rf(const char *path);

/* Is path a mount point in this mount namespace (libmount)? 1, 0 or -errno. */
int is_mountpoint(const char *path);

#endif
