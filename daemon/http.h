/*
 * http.h - the HTTP side: libmicrohttpd on a unix socket we create (or get
 * from systemd), one thread per connection so that a slow Create never
 * holds up a Get.
 */
#ifndef BALLAST_HTTP_H
#define BALLAST_HTTP_H

#include "api.h"
#include "errors.h"

struct http_server;

/*
 * Listen on path (mode 0660; a stale socket is replaced, a live one is an
 * error) or, when systemd passed one (LISTEN_FDS), on that socket. Requests
 * go to api, which is borrowed. *out is freed with http_stop.
 */
int http_start(struct api *api, const char *path, struct http_server **out, struct berr *err);

/* Make a listening unix socket at path: mode 0660 from the start, parent
 * directories made, a stale socket replaced, a live one refused. */
int unix_listen(const char *path, int *fd, struct berr *err);

/* How many client connections libmicrohttpd holds: a closed one counts
 * until its thread has been joined. srv is borrowed. */
unsigned http_connections(const struct http_server *srv);

/* Stop serving, wait for requests under way, and remove the socket if we
 * made it. */
void http_stop(struct http_server *srv);

#endif
