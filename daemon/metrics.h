/*
 * metrics.h - Prometheus metrics: counters and histograms kept with atomic
 * operations on the request path, rendered as text on scrape by an
 * optional listener ([ballast] metrics = unix:/path or 127.0.0.1:PORT).
 */
#ifndef BALLAST_METRICS_H
#define BALLAST_METRICS_H

#include "catalog.h"
#include "errors.h"

struct ballast_config;

/* Record one request: its endpoint label, whether it failed, how long it
 * took. Thread-safe and lock-free. */
void metrics_request(const char *endpoint, int failed, long elapsed_us);

/* Record a failed backend call (ret < 0), and whether it was a time-out. */
void metrics_backend_error(const char *backend, int ret);

struct api;

/* The whole exposition text (caller frees). cat and api may be NULL; the
 * backends' own counters (lease renewals) are read through api. */
char *metrics_render(struct catalog *cat, const struct api *api);

struct metrics_server;

/* Start the listener named by [ballast] metrics, if any (*out stays NULL
 * when it is off). cat and api are borrowed. */
int metrics_start(const struct ballast_config *cfg, struct catalog *cat, const struct api *api,
		  struct metrics_server **out, struct berr *err);
void metrics_stop(struct metrics_server *srv);

#endif
