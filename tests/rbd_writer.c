/*
 * rbd_writer.c - a plain librbd client that writes 4 KiB at offset 0 of an
 * image, for the one-writer tests: while ballast holds the image's lock it
 * must be refused with EROFS.
 *
 *   rbd_writer CEPH_CONF POOL IMAGE [TIMEOUT_S [hold]]
 *
 * Prints "ok" or the negative errno of the first failing call with its
 * name ("rbd_write: -30 Read-only file system") and exits 0 / 1.
 *
 * With hold, once the write was tried (the image open) it prints a second
 * line, "client.N" (its Ceph client, as `rbd status` lists its watch), and
 * waits with the image still open until it is killed: a client that dies
 * that way leaves its watch behind until the OSD drops it (30 s), and
 * every watcher must answer librbd's notifications (issue 14).
 */
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *step = "rados_create", *t = argc > 4 ? argv[4] : "10";
	rados_ioctx_t io = NULL;
	rbd_image_t img = NULL;
	rados_t cl = NULL;
	char buf[4096];
	long ret;

	if (argc < 4) {
		fprintf(stderr, "usage: rbd_writer CEPH_CONF POOL IMAGE [TIMEOUT_S [hold]]\n");
		return 2;
	}
	memset(buf, 'w', sizeof(buf));
	if ((ret = rados_create(&cl, "admin")) < 0)
		goto out;
	step = "rados_conf";
	if ((ret = rados_conf_read_file(cl, argv[1])) < 0 ||
	    (ret = rados_conf_set(cl, "client_mount_timeout", t)) < 0 ||
	    (ret = rados_conf_set(cl, "rados_mon_op_timeout", t)) < 0 ||
	    (ret = rados_conf_set(cl, "rados_osd_op_timeout", t)) < 0)
		goto out;
	step = "rados_connect";
	if ((ret = rados_connect(cl)) < 0)
		goto out;
	step = "rados_ioctx_create";
	if ((ret = rados_ioctx_create(cl, argv[2], &io)) < 0)
		goto out;
	step = "rbd_open";
	if ((ret = rbd_open(io, argv[3], &img, NULL)) < 0)
		goto out;
	step = "rbd_write";
	if ((ret = (long)rbd_write(img, 0, sizeof(buf), buf)) >= 0)
		ret = 0;
out:
	if (ret < 0)
		printf("%s: %ld %s\n", step, ret, strerror((int)-ret));
	else
		printf("ok\n");
	if (img && argc > 5 && strcmp(argv[5], "hold") == 0) {
		printf("client.%llu\n", (unsigned long long)rados_get_instance_id(cl));
		fflush(stdout);
		for (;;)
			pause();
	}
	if (img)
		rbd_close(img);
	if (io)
		rados_ioctx_destroy(io);
	if (cl)
		rados_shutdown(cl);
	return ret < 0 ? 1 : 0;
}
