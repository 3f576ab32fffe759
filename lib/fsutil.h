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

/*
 * Count, for each of the n paths, the mounts on this host that show it
 * (or something below it) elsewhere: bind mounts of it in any mount
 * namespace, this one included, such as the ones runc makes of a volume
 * inside a container. The file system a path is on and its root within it
 * are read from this namespace; every other namespace is read once from
 * /proc/PID/mountinfo (a process that ends meanwhile is skipped). The
 * mount of the path's own file system (root "/" for a mounted volume) is
 * never counted. users[i] is -1 when path i is not found. 0 or -errno.
 */
int mount_users(const char *const *paths, size_t n, int *users);

/* Does this process see every process of the host (the initial PID
 * namespace, where pid 2 is the kernel's kthreadd), as mount_users needs?
 * A managed plugin without "pidhost" sees only its own. 1 or 0. */
int sees_host_pids(void);

#endif
