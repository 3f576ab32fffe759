/*
 * fsutil.h - small file-system helpers shared by the catalog and backends.
 */
#ifndef BALLAST_FSUTIL_H
#define BALLAST_FSUTIL_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with mode for every directory it makes, each made durable
 * (sync_entry). 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/*
 * What a power cut must not undo. sync_entry: path was made or renamed into
 * place; fsync it (a file or a directory), then the directory holding it.
 * sync_parent: an entry of the directory holding path changed (removed,
 * renamed away); fsync that directory. 0 or -errno.
 */
int sync_entry(const char *path);
int sync_parent(const char *path);
/* fsync path (a file or a directory) itself. 0 or -errno. */
int fsync_path(const char *path);

/*
 * Replace dirfd/name with data, crash-safely: write name.tmp, fsync it,
 * rename over name, fsync the directory. After a crash either the old or
 * the new content is there, never a mix. 0 or -errno.
 */
int atomic_write_at(int dirfd, const char *name, const char *data, size_t len);

/*
 * Group commit of one directory: threads that each changed an entry of the
 * directory and need the change durable share one fsync of it. A thread
 * joins the batch that has not begun yet; the first to find no fsync under
 * way runs the batch's fsync for all of it, the others wait for its
 * result. Every change made before a thread joins is covered by that
 * fsync, which begins after the last join. Initialise with
 * GROUP_SYNC_INIT; group_sync_destroy when no thread uses it.
 */
struct sync_batch;
struct group_sync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sync_batch *next; /* the batch threads join; NULL: none yet */
	int running;		 /* a batch's fsync is under way */
};
#define GROUP_SYNC_INIT                                                                                                \
	{                                                                                                              \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0                                           \
	}
void group_sync_destroy(struct group_sync *g);

/* fsync(fd) for a change already made, in g's batches (g NULL: alone). fd
 * must be the same for every caller of g. 0 or -errno of the fsync. */
int group_fsync(struct group_sync *g, int fd);

/* atomic_write_at, the directory's fsync shared in g (g NULL: alone). */
int atomic_write_group(int dirfd, struct group_sync *g, const char *name, const char *data, size_t len);

/*
 * Overwrite dirfd/name in place with len bytes (at most FS_SECTOR) and
 * fdatasync it, when it is a regular file of exactly len bytes: no new
 * file, no rename, no fsync of the directory. Crash-safe because a write
 * of one sector at offset 0 of an allocated block is atomic on disk (old
 * or new content after a power cut, which PostgreSQL's pg_control relies
 * on too) and a process killed cannot stop a pwrite halfway. -ESTALE when
 * the file is not a regular file of len bytes (replace it with
 * atomic_write_at instead), -ENOENT when it is missing, other -errno.
 */
#define FS_SECTOR 512
int overwrite_at(int dirfd, const char *name, const char *data, size_t len);

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
