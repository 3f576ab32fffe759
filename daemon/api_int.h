/*
 * api_int.h - what the files of the api share (api.c, api_admin.c,
 * api_sync.c); not for anything outside daemon/api*.c, which sees api.h.
 */
#ifndef BALLAST_API_INT_H
#define BALLAST_API_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "api.h"
#include "backend.h"
#include "catalog.h"
#include "errors.h"

/* --- The api and the request ---------------------------------------------- */

/* Backends beyond this many are not started (api_new). */
/* A List older than this (since the last refresh) wakes the refresh. */
#define API_REFRESH_STALE_MS 2000
#define API_LOOKUP_BACKOFF_MS 5000
#define BACKENDS_MAX 8

/* The text of a List answer, kept while the catalog's generation is the one
 * it was built from: a List of 10,000 volumes is then a copy. */
struct list_cache {
	pthread_mutex_t lock;
	unsigned long gen;
	char *text; /* NULL: none built yet */
};

struct api {
	const struct ballast_config *cfg;
	struct catalog *cat;
	const struct backend_ops *ops[BACKENDS_MAX];
	void *ctx[BACKENDS_MAX];
	int nbackends;
	const char *scope;

	/* background refresh of shared backends' lists */
	pthread_t refresher;
	pthread_mutex_t refresh_lock;
	pthread_cond_t refresh_cond;
	int refresh_running, refresh_stop;
	int refresh_kick;	  /* a List found the last refresh old: now */
	atomic_long refreshed_ms; /* CLOCK_MONOTONIC end of the last refresh */
	unsigned long refresh_interval_s;
	unsigned long orphan_grace_s; /* [ballast] orphan_grace; 0: no sweep */
	long started_ms;	      /* CLOCK_MONOTONIC at api_new */

	/* A shared backend that could not answer a lookup of an unknown name
	 * is not asked again for API_LOOKUP_BACKOFF_MS (every Get of an
	 * unknown name would wait its whole timeout): when, and why. Cleared
	 * by a refresh that lists the backend. Guarded by lookup_lock. */
	pthread_mutex_t lookup_lock;
	long lookup_failed_ms[BACKENDS_MAX];
	char lookup_err[BACKENDS_MAX][BERR_MSG_MAX];

	struct list_cache docker_list, admin_list;

	/* Requests that read the catalog wait while ballastd loads it:
	 * 0 loading, 1 served, -1 the load failed (api_serve_catalog). */
	atomic_int catalog_gate;
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond; /* CLOCK_MONOTONIC */
};

/* One request as a handler sees it; api_handle owns all of it. */
struct request {
	json_t *body; /* the parsed object; NULL for Activate */
	json_t *resp; /* the answer being built */
	char *raw;    /* or, set by a handler, the whole answer as text */
	struct berr err;
};

/* One endpoint: fills req->resp and returns 0, or returns -errno with the
 * message for dockerd in req->err (api_handle turns both into the answer). */
typedef int (*handler_fn)(struct api *api, struct request *req);

/* --- Shared helpers (api.c) ----------------------------------------------- */

/* Answer a List from c: its text when the catalog has not changed since it
 * was built, else "Volumes" made of shape(api, snapshot) of every ready
 * volume in name order (shape returns a new reference). */
int api_cached_list(struct api *api, struct list_cache *c, struct request *req,
		    json_t *(*shape)(struct api *api, json_t *view));

/* The backend named name and its context (borrowed from api) in *ops and
 * *ctx; -ENOENT with a message in err (may be NULL) naming the backends
 * this ballastd has. */
int api_find_backend(struct api *api, const char *name, const struct backend_ops **ops, void **ctx, struct berr *err);

/* The request body's string member key in *out (borrowed from req->body);
 * -EINVAL with a message in req->err when it is missing or not a string. */
int api_req_string(struct request *req, const char *key, const char **out);

/* The request's Name (borrowed from req->body), validated; -EINVAL with a
 * message in req->err otherwise. */
int api_req_name(struct request *req, const char **name);

/* Acquire the volume name and look up its backend: on success the caller
 * holds *vol (release with catalog_release) and *ops, *ctx are borrowed.
 * -ENOENT with a message in req->err when the volume or its backend is
 * missing; *vol is then NULL or not set. */
int api_acquire_ready(struct api *api, struct request *req, const char *name, struct volume **vol,
		      const struct backend_ops **ops, void **ctx);

/* The catalog's view of the request's volume in *view (a new reference),
 * without waiting for the volume's lock; -EINVAL or -ENOENT with a message
 * in req->err. */
int api_req_view(struct api *api, struct request *req, json_t **view);

/* dockerd's Status for a catalog view: ballast's facts plus what the
 * volume's backend adds. A new reference, or NULL when out of memory. */
json_t *api_status_of(struct api *api, json_t *view);

/* --- Create (api_create.c) ------------------------------------------------ */

/* /VolumeDriver.Create {"Name", "Opts"}. */
int h_create(struct api *api, struct request *req);

/* --- Admin endpoints (api_admin.c) ---------------------------------------- */

/* /Ballast.List: every volume as the catalog records it. */
int h_admin_list(struct api *api, struct request *req);
/* /Ballast.Inspect {"Name"}: one volume's record and its Status. */
int h_admin_inspect(struct api *api, struct request *req);
/* /Ballast.Version: ballastd's version, backends and host ID. */
int h_admin_version(struct api *api, struct request *req);
/* /Ballast.Check: every backend's own health checks. */
int h_admin_check(struct api *api, struct request *req);
/* /Ballast.Resize {"Name", "Size"}: grow a volume. */
int h_admin_resize(struct api *api, struct request *req);
/* /Ballast.Holders: who holds each volume of a backend that knows. */
int h_admin_holders(struct api *api, struct request *req);
/* /Ballast.Release {"Name", "Force"}: break another host's stale hold. */
int h_admin_release(struct api *api, struct request *req);
int h_admin_snapshot(struct api *api, struct request *req);
int h_admin_snapshots(struct api *api, struct request *req);
int h_admin_snapshot_remove(struct api *api, struct request *req);
int h_admin_rollback(struct api *api, struct request *req);

/* --- Start-up recovery and refresh (api_sync.c) --------------------------- */

/* Record a volume of a global backend's cluster (item as ops's list or
 * lookup gives it; borrowed) as ready here. The caller holds vol, which is
 * new. -errno with a message in err when the catalog cannot commit; vol is
 * then new again. */
int api_adopt_locked(struct api *api, const struct backend_ops *ops, struct volume *vol, json_t *item,
		     struct berr *err);

/* List is answered from the catalog; when its last refresh is older than
 * API_REFRESH_STALE_MS, wake the refresh thread at once (the answer after
 * next is then fresh). Never waits. */
void api_kick_refresh(struct api *api);

/* A name the catalog does not have may be a shared volume another host
 * made a moment ago (the refresh brings it here only later): ask the
 * shared backends (bounded) and adopt it when one has it. 1 adopted, 0
 * unknown everywhere, -errno (-ENOENT with the reason in req's err) when a
 * cluster could not answer. */
int api_adopt_unknown(struct api *api, struct request *req, const char *name);

/* Refuse a request for vol unless it is ready: a damaged record, or an
 * interrupted Create or Remove not finished yet, each with its message.
 * 0 when ready. */
int api_refuse_unready(struct request *req, const struct volume *vol);

/* -EBUSY: vol (held, with mounts here) is in use on this host, saying how
 * many mounts and what to do. */
int api_refuse_in_use(struct request *req, const struct volume *vol);

/* Backend i listed its volumes: lookups may ask it again. */
void api_lookup_answered(struct api *api, int i);

/* Bring one volume in line with this host after a crash or reboot: roll
 * back an unfinished Create, finish an interrupted Remove (or give it up
 * when the backend refuses it as in use: the volume is ready again), fix
 * mount counts against the mount table. Caller holds vol. */
void api_recover_volume(struct api *api, struct volume *vol, int rebooted);

#endif
