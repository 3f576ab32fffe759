/* http.c - libmicrohttpd on a unix socket (see http.h). */
#define LOG_TAG "http"
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "systemd.h"

#define SOCKET_MODE 0660
#define LISTEN_BACKLOG 128
#define CONNECTION_IDLE_S 300u
#define CONNECTION_LIMIT 1024u
#define THREAD_STACK (1024u * 1024u)
/* How much of an oversized body we read and drop before we hang up. */
#define DISCARD_MAX (16u * 1024u * 1024u)

struct http_server {
	struct MHD_Daemon *mhd;
	struct api *api;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	int ours; /* we made the socket file, so we remove it */
};

struct body {
	char *data;
	size_t len;
	size_t seen;
	int too_large;
};

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warnx("libmicrohttpd: %s", line);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *json)
{
	size_t len = strlen(json);
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, json, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(json);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct body *b = *con_cls;
	char *resp = NULL;
	unsigned status;

	(void)version;
	if (!b) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;
		*con_cls = b;
		/* An oversized body is read and dropped, then refused: a
		 * client still sending would see its connection reset if we
		 * answered first. Only a huge one is refused at once (and
		 * the connection closed) rather than read. */
		if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY)
			b->too_large = 1;
		if (!cl || strtoull(cl, NULL, 10) <= DISCARD_MAX)
			return MHD_YES;
	}
	if (*upload_size) {
		b->seen += *upload_size;
		if (!b->too_large && b->len + *upload_size > API_MAX_BODY) {
			b->too_large = 1;
			free(b->data);
			b->data = NULL;
			b->len = 0;
		}
		if (!b->too_large) {
			char *grown = realloc(b->data, b->len + *upload_size + 1);

			if (!grown)
				return MHD_NO;
			b->data = grown;
			memcpy(b->data + b->len, upload, *upload_size);
			b->len += *upload_size;
			b->data[b->len] = '\0';
		}
		*upload_size = 0;
		return b->seen > DISCARD_MAX ? MHD_NO : MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
		resp = strdup("{\"Err\":\"only POST is served\"}");
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else {
		status = (unsigned)api_handle(srv->api, url, b->data, b->len, b->too_large, &resp);
	}
	if (!resp)
		return MHD_NO;
	return reply(c, status, resp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct body *b = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (b) {
		free(b->data);
		free(b);
		*con_cls = NULL;
	}
}

/* Is something answering on path? Then it is not stale. */
static int socket_alive(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, alive;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return alive;
}

int unix_listen(const char *path, int *out, struct berr *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[PATH_MAX];
	char *slash;
	mode_t old;
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return berr_set(err, -ENAMETOOLONG, "socket path %s is too long", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		ret = mkdir_p(dir, 0755);
		if (ret < 0)
			return berr_set(err, ret, "cannot create %s: %s", dir, strerror(-ret));
	}
	if (socket_alive(path))
		return berr_set(err, -EADDRINUSE, "socket %s is in use by a running daemon", path);
	if (unlink(path) == 0)
		log_infox("replaced stale socket %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berr_set(err, -errno, "socket: %s", strerror(errno));
	/* Never world-accessible, not even for the moment between bind
	 * and chmod. */
	old = umask(0117);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0) {
		ret = berr_set(err, -errno, "cannot bind %s: %s", path, strerror(errno));
		goto out_close;
	}
	if (chmod(path, SOCKET_MODE) < 0) {
		ret = berr_set(err, -errno, "cannot chmod %s: %s", path, strerror(errno));
		goto out_unlink;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		ret = berr_set(err, -errno, "cannot listen on %s: %s", path, strerror(errno));
		goto out_unlink;
	}
	*out = fd;
	return 0;
out_unlink:
	unlink(path);
out_close:
	close(fd);
	return ret;
}

int http_start(struct api *api, const char *path, struct http_server **out, struct berr *err)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	int n, ret = 0;

	if (!srv)
		return berr_set(err, -ENOMEM, "out of memory");
	srv->api = api;
	srv->fd = -1;
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	n = systemd_listen_fds();
	if (n > 1) {
		ret = berr_set(err, -EINVAL, "systemd passed %d sockets; ballastd takes exactly one", n);
		goto out_free;
	}
	if (n == 1) {
		srv->fd = SYSTEMD_LISTEN_FDS_START;
		log_infox("serving the socket passed by systemd");
	} else {
		ret = unix_listen(path, &srv->fd, err);
		if (ret < 0)
			goto out_free;
		srv->ours = 1;
		log_infox("serving %s", path);
	}
	/* poll(), not select(): select() cannot watch a descriptor numbered
	 * 1024 (FD_SETSIZE) or higher, and libmicrohttpd then refuses to start
	 * or drops the connection. A ballastd may hold that many: librados
	 * keeps a socket per OSD, and runtimes give plugins a high
	 * RLIMIT_NOFILE. */
	srv->mhd = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG, 0,
		NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
		srv->fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT,
		CONNECTION_IDLE_S, MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT, MHD_OPTION_THREAD_STACK_SIZE,
		(size_t)THREAD_STACK, MHD_OPTION_END);
	if (!srv->mhd) {
		ret = berr_set(err, -EIO, "cannot start the HTTP server on %s", path);
		goto out_free;
	}
	*out = srv;
	return 0;
out_free:
	http_stop(srv);
	return ret;
}

unsigned http_connections(const struct http_server *srv)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return info ? info->num_connections : 0;
}

void http_stop(struct http_server *srv)
{
	if (!srv)
		return;
	/* libmicrohttpd closes the listening socket it was given. */
	if (srv->mhd)
		MHD_stop_daemon(srv->mhd);
	else if (srv->fd >= 0)
		close(srv->fd);
	if (srv->ours)
		unlink(srv->path);
	free(srv);
}
