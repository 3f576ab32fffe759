/*
 * systemd.c - socket activation and readiness notification without
 * libsystemd (see systemd.h).
 */
#include "systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A decimal number of at most max, or -1 */
static long number(const char *s, long max)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno || *end || v < 0 || v > max ? -1 : v;
}

int systemd_listen_fds(void)
{
	long pid = number(getenv("LISTEN_PID"), 1L << 30), n = number(getenv("LISTEN_FDS"), 4096);
	int ret = 0;

	if (getenv("LISTEN_PID") || getenv("LISTEN_FDS")) {
		if (pid < 0 || n < 0)
			ret = -EINVAL;
		else if (pid == (long)getpid())
			ret = (int)n;
	}
	for (int fd = SYSTEMD_LISTEN_FDS_START; fd < SYSTEMD_LISTEN_FDS_START + ret; fd++) {
		int flags = fcntl(fd, F_GETFD);

		if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
			ret = -errno;
			break;
		}
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return ret;
}

int systemd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	ssize_t n;
	int fd, ret = 0;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* an abstract socket */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	if (n < 0)
		ret = -errno;
	close(fd);
	return ret;
}
