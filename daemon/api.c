/*
 * api.c - the api's life, dockerd's volume-plugin endpoints and the routing
 * of every request (see api.h). Create is in api_create.c, the admin
 * endpoints in api_admin.c, recovery and the refresh of shared backends in
 * api_sync.c.
 */
#define LOG_TAG "api"
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "backend.h"
#include "crashpoint.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "validate.h"

#define HTTP_OK 200

/* --- The api's life ------------------------------------------------------- */

int api_new(const struct ballast_config *cfg, struct catalog *cat, struct api **out, struct berr *err)
{
	struct api *api = calloc(1, sizeof(*api));
	int ret = 0;

	if (!api)
		return berr_set(err, -ENOMEM, "out of memory");
	api->cfg = cfg;
	api->cat = cat;
	api->scope = "local";
	api->started_ms = monotonic_ms();
	pthread_mutex_init(&api->refresh_lock, NULL);
	pthread_mutex_init(&api->lookup_lock, NULL);
	pthread_mutex_init(&api->docker_list.lock, NULL);
	pthread_mutex_init(&api->admin_list.lock, NULL);
	pthread_cond_init(&api->refresh_cond, NULL);
	pthread_mutex_init(&api->gate_lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&api->gate_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	atomic_init(&api->catalog_gate, catalog_loaded(cat) ? 1 : 0);
	ret = config_get_uint(cfg, "ballast", "refresh_interval", &api->refresh_interval_s, err);
	if (ret == 0)
		ret = config_get_uint(cfg, "ballast", "orphan_grace", &api->orphan_grace_s, err);
	if (ret < 0)
		goto out_free;
	if (api->orphan_grace_s && !sees_host_pids()) {
		/* its containers' mounts are out of sight: every mount would
		 * look unused */
		log_warnx("this ballastd does not see the host's processes (a PID namespace of its own): mounts "
			  "dockerd forgets are not undone (orphan_grace is off; run it with the host's PIDs)");
		api->orphan_grace_s = 0;
	}
	for (const struct backend_ops *const *b = backend_all(); *b; b++) {
		if (api->nbackends == BACKENDS_MAX)
			break;
		ret = (*b)->init(cfg, &api->ctx[api->nbackends], err);
		if (ret < 0)
			goto out_free;
		api->ops[api->nbackends++] = *b;
		if (((*b)->caps & BE_CAP_GLOBAL) &&
		    (!(*b)->configured || (*b)->configured(api->ctx[api->nbackends - 1])))
			api->scope = "global";
	}
	*out = api;
	return 0;
out_free:
	api_free(api);
	return ret;
}

int api_backend_counters(const struct api *api, const char *backend, struct be_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < api->nbackends; i++) {
		if (strcmp(api->ops[i]->name, backend) != 0)
			continue;
		if (!api->ops[i]->counters)
			return 0;
		api->ops[i]->counters(api->ctx[i], out);
		return 0;
	}
	return -ENOENT;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	api_stop_refresh(api);
	for (int i = 0; i < api->nbackends; i++)
		api->ops[i]->fini(api->ctx[i]);
	pthread_cond_destroy(&api->refresh_cond);
	pthread_mutex_destroy(&api->refresh_lock);
	pthread_mutex_destroy(&api->lookup_lock);
	pthread_mutex_destroy(&api->docker_list.lock);
	pthread_mutex_destroy(&api->admin_list.lock);
	pthread_cond_destroy(&api->gate_cond);
	pthread_mutex_destroy(&api->gate_lock);
	free(api->docker_list.text);
	free(api->admin_list.text);
	free(api);
}

void api_serve_catalog(struct api *api, int ok)
{
	pthread_mutex_lock(&api->gate_lock);
	atomic_store(&api->catalog_gate, ok ? 1 : -1);
	pthread_cond_broadcast(&api->gate_cond);
	pthread_mutex_unlock(&api->gate_lock);
}

/* Wait, within the request's deadline, until the catalog is served. */
static int wait_catalog(struct api *api, struct request *req)
{
	struct timespec until;
	long end = deadline_get();
	int gate;

	if (atomic_load(&api->catalog_gate) == 1)
		return 0;
	until.tv_sec = end / 1000;
	until.tv_nsec = end % 1000 * 1000000;
	pthread_mutex_lock(&api->gate_lock);
	while (atomic_load(&api->catalog_gate) == 0 &&
	       pthread_cond_timedwait(&api->gate_cond, &api->gate_lock, &until) != ETIMEDOUT)
		;
	gate = atomic_load(&api->catalog_gate); /* again: it may have opened as the wait timed out */
	pthread_mutex_unlock(&api->gate_lock);
	if (gate == 1)
		return 0;
	if (gate < 0)
		return berr_set(&req->err, -EIO, "ballastd could not load its catalog (see its log) and is stopping");
	return berr_set(&req->err, -EAGAIN,
			"ballastd is still loading its catalog (started %ld s ago); try again shortly",
			(monotonic_ms() - api->started_ms) / 1000);
}

/* --- Helpers the handlers share ------------------------------------------- */

/* The backend named name and its context, or -ENOENT with a message. */
int api_find_backend(struct api *api, const char *name, const struct backend_ops **ops, void **ctx, struct berr *err)
{
	char list[128] = "";
	size_t off = 0;

	for (int i = 0; i < api->nbackends; i++) {
		if (strcmp(api->ops[i]->name, name) == 0) {
			*ops = api->ops[i];
			*ctx = api->ctx[i];
			return 0;
		}
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", api->ops[i]->name);
		if (off >= sizeof(list))
			off = sizeof(list) - 1;
	}
	if (backend_is_module(name))
		return berr_set(err, -ENOENT,
				"backend \"%s\" is not configured: this ballastd's config file has no [%s] section "
				"(it has: %s)",
				name, name, list);
	return berr_set(err, -ENOENT, "unknown backend \"%.40s\"; this ballastd has: %s", name, list);
}

/* A required string member of the request body. */
int api_req_string(struct request *req, const char *key, const char **out)
{
	json_t *v = json_object_get(req->body, key);

	if (!v)
		return berr_set(&req->err, -EINVAL, "request has no %s", key);
	if (!json_is_string(v))
		return berr_set(&req->err, -EINVAL, "%s must be a string", key);
	*out = json_string_value(v);
	return 0;
}

/* The request's Name, validated. */
int api_req_name(struct request *req, const char **name)
{
	int ret = api_req_string(req, "Name", name);

	return ret < 0 ? ret : validate_name(*name, &req->err);
}

static int not_found(struct request *req, const char *name)
{
	return berr_set(&req->err, -ENOENT, "volume %s not found", name);
}

/* dockerd's Status for a volume: ballast's facts plus the backend's. */
json_t *api_status_of(struct api *api, json_t *view)
{
	const struct backend_ops *ops;
	struct be_volume bv;
	json_t *st, *snaps;
	void *ctx;

	st = json_pack("{s:O, s:O, s:O, s:O, s:O}", "backend", json_object_get(view, "backend"), "options",
		       json_object_get(view, "options"), "size_bytes", json_object_get(view, "size_bytes"),
		       "mount_count", json_object_get(view, "mount_count"), "mount_ids",
		       json_object_get(view, "mount_ids"));
	if (!st)
		return NULL;
	/* the snapshots this host knows of, and what the volume was made from */
	snaps = json_object_get(view, "snapshots");
	json_object_set_new(st, "snapshots", snaps ? json_incref(snaps) : json_array());
	json_object_set_new(st, "parent", json_string(opt_get(json_object_get(view, "options"), "from")));
	if (api_find_backend(api, json_string_value(json_object_get(view, "backend")), &ops, &ctx, NULL) == 0 &&
	    ops->status) {
		json_t *extra;

		bv.name = json_string_value(json_object_get(view, "name"));
		bv.opts = json_object_get(view, "options");
		extra = ops->status(ctx, &bv);
		if (extra)
			json_object_update(st, extra);
		json_decref(extra);
	}
	return st;
}

/* Acquire name and its backend; -ENOENT with a message when either is
 * missing. */
int api_acquire_ready(struct api *api, struct request *req, const char *name, struct volume **vol,
		      const struct backend_ops **ops, void **ctx)
{
	int ret;

	*vol = catalog_acquire(api->cat, name, 0);
	if (!*vol) {
		ret = api_adopt_unknown(api, req, name);
		if (ret <= 0)
			return ret < 0 ? ret : not_found(req, name);
		*vol = catalog_acquire(api->cat, name, 0);
		if (!*vol)
			return not_found(req, name);
	}
	ret = api_refuse_unready(req, *vol);
	if (ret == 0)
		ret = api_find_backend(api, (*vol)->backend, ops, ctx, &req->err);
	if (ret < 0) {
		catalog_release(api->cat, *vol);
		*vol = NULL;
	}
	return ret;
}

/* A request for name, whose volume is in state st, refused unless ready
 * (0). held: the caller holds the volume, so nobody else is working on it
 * and a Create or Remove under way is an interrupted one; else the state
 * was only seen. */
static int refuse_state(struct request *req, const char *name, enum vol_state st, int held)
{
	switch (st) {
	case VOL_READY:
		return 0;
	case VOL_DAMAGED:
		return berr_set(
			&req->err, -EIO,
			"volume %s: its catalog record is damaged (kept aside as catalog/%s.json.corrupt in the "
			"state dir); repair or remove that file, then restart ballastd",
			name, name);
	case VOL_CREATING:
		return berr_set(&req->err, -EAGAIN, "volume %s is not ready: %s; try again shortly", name,
				held ? "an interrupted Create is being rolled back"
				     : "it is being created (or an interrupted Create rolled back)");
	case VOL_REMOVING:
		return berr_set(&req->err, -EAGAIN, "volume %s is not ready: %s; try again shortly", name,
				held ? "an interrupted Remove is being finished"
				     : "it is being removed (or an interrupted Remove finished)");
	default:
		return not_found(req, name);
	}
}

int api_refuse_unready(struct request *req, const struct volume *vol)
{
	return refuse_state(req, vol->name, vol->state, 1);
}

int api_refuse_in_use(struct request *req, const struct volume *vol)
{
	long n = volume_mount_count(vol);

	return berr_set(&req->err, -EBUSY,
			"volume %s is in use on this host (%ld mount%s); stop the containers using it first", vol->name,
			n, n == 1 ? "" : "s");
}

/* The catalog's view of the request's volume (a new reference), without
 * waiting for the volume's lock. With snap: a kept answer instead, in
 * req->raw (*view NULL), or else *snap for catalog_keep_answer (NULL if
 * the view is not the catalog's snapshot). */
static int req_view(struct api *api, struct request *req, json_t **view, struct view_text **snap)
{
	enum vol_state shown;
	const char *name;
	int ret;

	ret = api_req_name(req, &name);
	if (ret < 0)
		return ret;
	*view = catalog_view_cached(api->cat, name, &shown, snap ? &req->raw : NULL, snap);
	if (*view || (snap && req->raw))
		return 0;
	/* Known here but not ready: said at once, without waiting for the
	 * request (or the recovery) that works on it. */
	if (shown != VOL_NEW && shown != VOL_READY)
		return refuse_state(req, name, shown, 0);
	ret = api_adopt_unknown(api, req, name);
	if (ret <= 0)
		return ret < 0 ? ret : not_found(req, name);
	*view = catalog_view(api->cat, name);
	return *view ? 0 : not_found(req, name);
}

int api_req_view(struct api *api, struct request *req, json_t **view)
{
	return req_view(api, req, view, NULL);
}

/* --- dockerd's endpoints -------------------------------------------------- */

static int h_activate(struct api *api, struct request *req)
{
	(void)api;
	json_object_set_new(req->resp, "Implements", json_pack("[s]", "VolumeDriver"));
	return 0;
}

static int h_capabilities(struct api *api, struct request *req)
{
	json_object_set_new(req->resp, "Capabilities", json_pack("{s:s}", "Scope", api->scope));
	return 0;
}

static int h_remove(struct api *api, struct request *req)
{
	const struct backend_ops *ops;
	struct volume *vol;
	const char *name;
	struct be_volume bv;
	void *ctx;
	int ret;

	ret = api_req_name(req, &name);
	if (ret == 0)
		ret = api_acquire_ready(api, req, name, &vol, &ops, &ctx);
	if (ret < 0)
		return ret;
	if (volume_mount_count(vol) > 0) {
		ret = api_refuse_in_use(req, vol);
		goto out_release;
	}
	bv.name = vol->name;
	bv.opts = vol->opts;
	/* The backend's checks (in use on another host?) come before the
	 * record: a refused Remove must leave nothing that a restart or the
	 * refresh would carry out later, under a live database. */
	if (ops->remove_check) {
		ret = ops->remove_check(ctx, &bv, &req->err);
		metrics_backend_error(ops->name, ret);
		if (ret < 0)
			goto out_release;
	}
	vol->state = VOL_REMOVING;
	ret = catalog_commit(api->cat, vol, &req->err);
	if (ret < 0) {
		vol->state = VOL_READY;
		goto out_release;
	}
	CRASH_POINT("remove.after-record");
	ret = ops->remove(ctx, &bv, &req->err);
	metrics_backend_error(ops->name, ret);
	if (ret < 0) {
		struct berr ignored = BERR_INIT;

		vol->state = VOL_READY;
		catalog_commit(api->cat, vol, &ignored);
		goto out_release;
	}
	CRASH_POINT("remove.after-backend");
	vol->state = VOL_GONE;
	ret = catalog_commit(api->cat, vol, &req->err);
	log_infox("removed volume %s", name);
out_release:
	catalog_release(api->cat, vol);
	return ret;
}

/* Mount and Unmount: the request's Name and ID, checked, and the volume
 * acquired with its backend. */
static int acquire_for_id(struct api *api, struct request *req, const char **name, const char **id, struct volume **vol,
			  const struct backend_ops **ops, void **ctx)
{
	int ret = api_req_name(req, name);

	if (ret == 0)
		ret = api_req_string(req, "ID", id);
	if (ret == 0)
		ret = validate_mount_id(*id, &req->err);
	if (ret == 0)
		ret = api_acquire_ready(api, req, *name, vol, ops, ctx);
	return ret;
}

static int h_mount(struct api *api, struct request *req)
{
	const struct backend_ops *ops;
	const char *name, *id;
	struct volume *vol;
	struct be_volume bv;
	int mounted_now = 0;
	void *ctx;
	int ret;

	ret = acquire_for_id(api, req, &name, &id, &vol, &ops, &ctx);
	if (ret < 0)
		return ret;
	bv.name = vol->name;
	bv.opts = vol->opts;
	/* In use already, but its mount may be gone under us (fenced by the
	 * host that took the volume over, unmounted by hand, or its mapper
	 * killed): never hand out a dead path (a gluster mount point is then
	 * a plain local directory); mount again, which the backend may
	 * refuse. */
	if (volume_mount_count(vol) > 0 && vol->mountpoint[0] &&
	    ((ret = ops->is_mounted(ctx, &bv)) == 0 || ret == BE_MOUNT_DEAD)) {
		log_warnx("volume %s: its mount at %s is gone; mounting it again", name, vol->mountpoint);
		vol->mountpoint[0] = '\0';
	}
	if (volume_mount_count(vol) == 0 || !vol->mountpoint[0]) {
		char path[PATH_MAX];

		ret = ops->mount(ctx, &bv, path, sizeof(path), &req->err);
		metrics_backend_error(ops->name, ret);
		if (ret < 0) {
			vol->mountpoint[0] = '\0';
			goto out_release;
		}
		if (volume_set_mountpoint(vol, path) < 0) {
			struct berr ignored = BERR_INIT;

			ops->unmount(ctx, &bv, &ignored);
			vol->mountpoint[0] = '\0';
			ret = berr_set(&req->err, -ENOMEM, "out of memory");
			goto out_release;
		}
		mounted_now = 1;
		CRASH_POINT("mount.after-backend");
		if (deadline_get() && monotonic_ms() > deadline_get()) {
			/* dockerd has given up on this Mount: it will never
			 * unmount it. Undo it rather than hold the volume. */
			struct berr ignored = BERR_INIT;

			ops->unmount(ctx, &bv, &ignored);
			vol->mountpoint[0] = '\0';
			ret = berr_set(&req->err, -ETIMEDOUT,
				       "mounting volume %s took longer than dockerd waits; undone", name);
			goto out_release;
		}
	}
	/* Counted per ID, never as a set: docker cp mounts an ID twice. */
	volume_count_mount(vol, id, 1);
	ret = catalog_commit(api->cat, vol, &req->err);
	if (ret < 0) {
		struct berr ignored = BERR_INIT;

		volume_count_mount(vol, id, -1);
		if (mounted_now) {
			ops->unmount(ctx, &bv, &ignored);
			vol->mountpoint[0] = '\0';
		}
		goto out_release;
	}
	CRASH_POINT("mount.after-commit");
	json_object_set_new(req->resp, "Mountpoint", json_string(vol->mountpoint));
	log_debugx("mounted %s for %s at %s", name, id, vol->mountpoint);
out_release:
	vol->mount_touched_ms = monotonic_ms();
	catalog_release(api->cat, vol);
	return ret;
}

static int h_unmount(struct api *api, struct request *req)
{
	const struct backend_ops *ops;
	const char *name, *id;
	struct volume *vol;
	struct be_volume bv;
	json_int_t n;
	void *ctx;
	int ret;

	ret = acquire_for_id(api, req, &name, &id, &vol, &ops, &ctx);
	if (ret < 0)
		return ret;
	n = json_integer_value(json_object_get(vol->mounts, id));
	if (n <= 0) {
		ret = berr_set(&req->err, -ENOENT, "volume %s has no mount with ID %.64s", name, id);
		goto out_release;
	}
	volume_count_mount(vol, id, -1);
	api_forgotten_ids(api, vol);
	/*
	 * The count follows dockerd, whatever the backend says next: if the
	 * unmount fails the volume stays mounted with no user, and the next
	 * Mount reuses it or the next Remove retries the unmount.
	 */
	if (volume_mount_count(vol) == 0) {
		bv.name = vol->name;
		bv.opts = vol->opts;
		CRASH_POINT("unmount.before-backend");
		ret = ops->unmount(ctx, &bv, &req->err);
		metrics_backend_error(ops->name, ret);
		vol->mountpoint[0] = '\0';
		CRASH_POINT("unmount.after-backend");
	}
	{
		struct berr cerr = BERR_INIT;
		int cret = catalog_commit(api->cat, vol, &cerr);

		if (ret == 0 && cret < 0) {
			ret = cret;
			berr_set(&req->err, cret, "%s", cerr.msg);
		}
	}
	log_debugx("unmounted %s for %s", name, id);
out_release:
	catalog_release(api->cat, vol);
	return ret;
}

static int h_path(struct api *api, struct request *req)
{
	json_t *view;
	int ret;

	ret = api_req_view(api, req, &view);
	if (ret < 0)
		return ret;
	json_object_set(req->resp, "Mountpoint", json_object_get(view, "mountpoint"));
	json_decref(view);
	return 0;
}

/* The Volume object dockerd expects, from a catalog view. */
static json_t *docker_volume(struct api *api, json_t *view, int with_status)
{
	json_t *v = json_pack("{s:O, s:O, s:O}", "Name", json_object_get(view, "name"), "Mountpoint",
			      json_object_get(view, "mountpoint"), "CreatedAt", json_object_get(view, "created_at"));

	if (v && with_status)
		json_object_set_new(v, "Status", api_status_of(api, view));
	return v;
}

/* dockerd calls Get before and after nearly every other call: a volume
 * whose status needs no live state keeps its answer until it changes. */
static int h_get(struct api *api, struct request *req)
{
	struct view_text *snap = NULL;
	const struct backend_ops *ops;
	json_t *view;
	void *ctx;
	int ret;

	ret = req_view(api, req, &view, &snap);
	if (ret < 0 || !view)
		return ret;
	json_object_set_new(req->resp, "Volume", docker_volume(api, view, 1));
	if (snap && api_find_backend(api, json_string_value(json_object_get(view, "backend")), &ops, &ctx, NULL) == 0 &&
	    ops->status_fixed && json_object_get(req->resp, "Volume")) {
		json_object_set_new(req->resp, "Err", json_string(""));
		req->raw = json_dumps(req->resp, JSON_COMPACT);
	}
	catalog_keep_answer(snap, req->raw);
	json_decref(view);
	return 0;
}

/* A List's text, built one volume at a time (json_dumps of the whole
 * answer, without ever holding every volume's object at once). */
struct list_text {
	struct api *api;
	json_t *(*shape)(struct api *api, json_t *view);
	char *buf;
	size_t len, cap;
};

static int list_text_add(struct list_text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *grown;

		while (cap < t->len + n + 1)
			cap *= 2;
		grown = realloc(t->buf, cap);
		if (!grown)
			return -ENOMEM;
		t->buf = grown;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n + 1);
	t->len += n;
	return 0;
}

static int list_text_volume(json_t *view, void *arg)
{
	struct list_text *t = arg;
	json_t *one = t->shape(t->api, view);
	char *s = one ? json_dumps(one, JSON_COMPACT) : NULL;
	int ret = s ? 0 : -ENOMEM;

	if (ret == 0 && t->buf[t->len - 1] != '[')
		ret = list_text_add(t, ",");
	if (ret == 0)
		ret = list_text_add(t, s);
	free(s);
	json_decref(one);
	return ret;
}

int api_cached_list(struct api *api, struct list_cache *c, struct request *req,
		    json_t *(*shape)(struct api *api, json_t *view))
{
	pthread_mutex_lock(&c->lock);
	if (!c->text || c->gen != catalog_gen(api->cat)) {
		struct list_text t = { .api = api, .shape = shape };
		unsigned long gen = 0;
		int ret = list_text_add(&t, "{\"Volumes\":[");

		if (ret == 0)
			ret = catalog_each_view(api->cat, &gen, list_text_volume, &t);
		if (ret == 0)
			ret = list_text_add(&t, "],\"Err\":\"\"}");
		free(c->text);
		c->text = NULL;
		if (ret == 0) {
			c->text = t.buf;
			c->gen = gen;
		} else {
			free(t.buf);
		}
	}
	req->raw = c->text ? strdup(c->text) : NULL;
	pthread_mutex_unlock(&c->lock);
	return req->raw ? 0 : berr_set(&req->err, -ENOMEM, "out of memory");
}

/* Docker's List: name, mountpoint and creation time of each volume. */
static json_t *docker_list_volume(struct api *api, json_t *view)
{
	return docker_volume(api, view, 0);
}

static int h_list(struct api *api, struct request *req)
{
	api_kick_refresh(api);
	return api_cached_list(api, &api->docker_list, req, docker_list_volume);
}

/* --- Routing -------------------------------------------------------------- */

/* What a route's flags say: it needs a body; it reads no catalog and is
 * answered while ballastd loads it (api_serve_catalog). */
#define ROUTE_BODY 1
#define ROUTE_EARLY 2

static const struct {
	const char *path;
	handler_fn fn;
	int flags;
} routes[] = {
	{ "/Plugin.Activate", h_activate, ROUTE_EARLY },
	{ "/VolumeDriver.Capabilities", h_capabilities, ROUTE_EARLY },
	{ "/VolumeDriver.Create", h_create, ROUTE_BODY },
	{ "/VolumeDriver.Remove", h_remove, ROUTE_BODY },
	{ "/VolumeDriver.Mount", h_mount, ROUTE_BODY },
	{ "/VolumeDriver.Unmount", h_unmount, ROUTE_BODY },
	{ "/VolumeDriver.Path", h_path, ROUTE_BODY },
	{ "/VolumeDriver.Get", h_get, ROUTE_BODY },
	{ "/VolumeDriver.List", h_list, 0 },
	{ "/Ballast.List", h_admin_list, 0 },
	{ "/Ballast.Inspect", h_admin_inspect, ROUTE_BODY },
	{ "/Ballast.Version", h_admin_version, 0 },
	{ "/Ballast.Check", h_admin_check, ROUTE_EARLY },
	{ "/Ballast.Resize", h_admin_resize, ROUTE_BODY },
	{ "/Ballast.Holders", h_admin_holders, 0 },
	{ "/Ballast.Release", h_admin_release, ROUTE_BODY },
	{ "/Ballast.Snapshot", h_admin_snapshot, ROUTE_BODY },
	{ "/Ballast.SnapshotRemove", h_admin_snapshot_remove, ROUTE_BODY },
	{ "/Ballast.Rollback", h_admin_rollback, ROUTE_BODY },
	{ "/Ballast.Snapshots", h_admin_snapshots, 0 },
};

/* Parse body into req->body: an object, or (for endpoints that need
 * nothing) an empty body. */
static int parse_body(struct request *req, const char *body, size_t len, int needs_body)
{
	json_error_t jerr;
	size_t i = 0;

	while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
		i++;
	if (i == len) {
		if (needs_body)
			return berr_set(&req->err, -EINVAL, "request body is empty; expected a JSON object");
		req->body = json_object();
		return 0;
	}
	req->body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req->body)
		return berr_set(&req->err, -EINVAL, "invalid JSON in request (line %d, column %d): %s", jerr.line,
				jerr.column, jerr.text);
	if (!json_is_object(req->body))
		return berr_set(&req->err, -EINVAL, "request body must be a JSON object");
	return 0;
}

/* How long a request to fn may take in all: below dockerd's limit for its
 * endpoint (2 minutes for Create and Mount, 1 for the rest). */
static long api_deadline_ms(const struct api *api, handler_fn fn)
{
	const char *key = fn == h_create || fn == h_mount ? "mount_deadline" : "request_deadline";
	unsigned long s = 55;

	config_get_uint(api->cfg, "ballast", key, &s, NULL);
	return (long)s * 1000;
}

int api_handle(struct api *api, const char *path, const char *body, size_t len, int too_large, char **resp)
{
	struct request req = { .body = NULL, .resp = json_object(), .raw = NULL, .err = { { 0 } } };
	long started = monotonic_us();
	const char *label = "other";
	handler_fn fn = NULL;
	int flags = 0;
	int ret;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, path) == 0) {
			fn = routes[i].fn;
			flags = routes[i].flags;
			label = routes[i].path + 1;
		}
	}
	if (!fn)
		ret = berr_set(&req.err, -ENOSYS, "unknown endpoint %.80s", path);
	else if (too_large)
		ret = berr_set(&req.err, -E2BIG, "request body is larger than %d bytes", API_MAX_BODY);
	else
		ret = parse_body(&req, body ? body : "", len, flags & ROUTE_BODY);
	if (ret == 0) {
		deadline_set(monotonic_ms() + api_deadline_ms(api, fn));
		if (!(flags & ROUTE_EARLY))
			ret = wait_catalog(api, &req);
		if (ret == 0)
			ret = fn(api, &req);
		deadline_set(0);
	}
	if (ret < 0) {
		if (!req.err.msg[0])
			berr_set(&req.err, ret, "%s failed: %s", path, strerror(-ret));
		json_object_clear(req.resp);
		json_object_set_new(req.resp, "Err", json_string(req.err.msg));
		log_infox("%s: %s", path, req.err.msg);
	} else {
		json_object_set_new(req.resp, "Err", json_string(""));
	}
	metrics_request(label, ret < 0, monotonic_us() - started);
	*resp = ret == 0 && req.raw ? req.raw : json_dumps(req.resp, JSON_COMPACT);
	if (*resp != req.raw)
		free(req.raw);
	json_decref(req.body);
	json_decref(req.resp);
	if (!*resp)
		*resp = strdup("{\"Err\":\"out of memory\"}");
	return HTTP_OK;
}
