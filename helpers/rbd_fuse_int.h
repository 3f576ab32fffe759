/*
 * rbd_fuse_int.h - what the parts of ballast-rbd-map share: the one map
 * this process serves (m), and the FUSE operations (rbd_fuse_ops.c) that
 * rbd_fuse.c mounts.
 */
#ifndef BALLAST_RBD_FUSE_INT_H
#define BALLAST_RBD_FUSE_INT_H

#include <pthread.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <time.h>

#define EXIT_REFUSED 1
#define EXIT_FAILED 2
#define IMAGE_FILE "image"
#define SIZE_FILE "size"
#define MSG_MAX 512

struct map {
	const char *conf, *id, *keyring, *pool, *image, *pidfile, *mountdir, *holder;
	unsigned timeout, lease;
	int read_only;
	rados_t cluster;
	rados_ioctx_t io;
	rbd_image_t img;
	int locked, holder_set, lease_set, pid_written;
	char header_oid[128]; /* the image's header object: its metadata */
	time_t started;
	/* the lease: renewed by renew_main; lease_ok_ms is the monotonic time
	 * until which the last successful renewal covers writes */
	pthread_t renewer;
	int renewer_running, stopping;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long lease_ok_ms;
	int fenced;
	int report_fd; /* write end of the pipe to the waiting parent */
};

extern struct map m;

/* the monotonic clock in ms */
long mono_ms(void);
/* May this client still write? Not once fenced, nor while its lease is
 * lapsed here. */
int may_write(void);

struct fuse_operations;
extern const struct fuse_operations rbd_fuse_ops;

#endif
