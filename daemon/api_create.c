/*
 * api_create.c - dockerd's Create: the options, the lookup of a shared
 * volume another host made, copies (-o from=VOLUME), and the record
 * around the backend's work. The routes table in api.c points here.
 */
#define LOG_TAG "api"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "backend.h"
#include "crashpoint.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "validate.h"

/* Opts as given, checked to be null or an object of strings; never NULL
 * on success (a new reference: {} for null). */
static int create_opts(struct request *req, json_t **opts)
{
	json_t *given = json_object_get(req->body, "Opts");
	const char *k;
	json_t *v;

	if (!given || json_is_null(given)) {
		*opts = json_object();
		return 0;
	}
	if (!json_is_object(given))
		return berr_set(&req->err, -EINVAL, "Opts must be an object of strings");
	json_object_foreach (given, k, v)
		if (!json_is_string(v))
			return berr_set(&req->err, -EINVAL, "option \"%.40s\" must be a string", k);
	*opts = json_deep_copy(given);
	return *opts ? 0 : berr_set(&req->err, -ENOMEM, "out of memory");
}

/* Ask backend i whether it has name (its lookup op), unless it could not
 * answer one less than API_LOOKUP_BACKOFF_MS ago: then its failure again,
 * at once. */
static int lookup_one(struct api *api, int i, const char *name, json_t **item, struct berr *err)
{
	long now = monotonic_ms(), since;
	int ret;

	pthread_mutex_lock(&api->lookup_lock);
	since = api->lookup_failed_ms[i] ? now - api->lookup_failed_ms[i] : -1;
	if (since >= 0 && since < API_LOOKUP_BACKOFF_MS) {
		ret = berr_set(err, -ETIMEDOUT, "no lookup for %d s after one failed %ld s ago: %s",
			       API_LOOKUP_BACKOFF_MS / 1000, since / 1000, api->lookup_err[i]);
		pthread_mutex_unlock(&api->lookup_lock);
		return ret;
	}
	pthread_mutex_unlock(&api->lookup_lock);
	ret = api->ops[i]->lookup(api->ctx[i], name, item, err);
	pthread_mutex_lock(&api->lookup_lock);
	if (ret < 0) {
		api->lookup_failed_ms[i] = monotonic_ms();
		snprintf(api->lookup_err[i], sizeof(api->lookup_err[i]), "%s", err->msg);
	} else if (ret >= 0) {
		api->lookup_failed_ms[i] = 0;
	}
	pthread_mutex_unlock(&api->lookup_lock);
	return ret;
}

void api_lookup_answered(struct api *api, int i)
{
	pthread_mutex_lock(&api->lookup_lock);
	api->lookup_failed_ms[i] = 0;
	pthread_mutex_unlock(&api->lookup_lock);
}

/*
 * Is vol (held, VOL_NEW: unknown here) a volume another host made in a
 * shared cluster, that the refresh has not brought here yet? Ask each
 * configured global backend (bounded by its timeout, see lookup_one); one
 * that has it is adopted: 1. 0: nobody has it. -errno, with a message
 * naming the backend that could not answer, in err.
 */
static int lookup_shared(struct api *api, struct volume *vol, struct berr *err)
{
	for (int i = 0; i < api->nbackends; i++) {
		const struct backend_ops *o = api->ops[i];
		struct berr lerr = BERR_INIT;
		json_t *item = NULL;
		int ret;

		if (!(o->caps & BE_CAP_GLOBAL) || !o->lookup || (o->configured && !o->configured(api->ctx[i])))
			continue;
		ret = lookup_one(api, i, vol->name, &item, &lerr);
		if (ret < 0)
			return berr_set(err, ret, "backend %s cannot tell whether it has volume %s (%s)", o->name,
					vol->name, lerr.msg);
		if (ret == 0)
			continue;
		ret = api_adopt_locked(api, o, vol, item, err);
		json_decref(item);
		if (ret < 0)
			return ret;
		log_infox("volume %s exists in backend %s (made on another host): adopted", vol->name, o->name);
		return 1;
	}
	return 0;
}

int api_adopt_unknown(struct api *api, struct request *req, const char *name)
{
	struct berr err = BERR_INIT;
	struct volume *vol;
	int ret;

	vol = catalog_acquire(api->cat, name, 1);
	if (!vol)
		return berr_set(&req->err, -ENOMEM, "out of memory");
	/* Adopted (or made) by another request meanwhile: known now. */
	ret = vol->state == VOL_NEW ? lookup_shared(api, vol, &err) : 1;
	catalog_release(api->cat, vol); /* an entry still new is dropped */
	if (ret < 0)
		return berr_set(&req->err, -ENOENT, "volume %s not found here, and %s", name, err.msg);
	return ret;
}

/*
 * dockerd's implicit Create (no options) of a name this host does not
 * know, with a default backend that is not shared: the name may be a
 * shared volume another host made (lookup_shared: 1, adopted). A cluster
 * that cannot answer refuses the Create: an empty local volume in its
 * place would hide the data.
 */
static int implicit_shared(struct api *api, struct request *req, struct volume *vol)
{
	struct berr err = BERR_INIT;
	int ret = lookup_shared(api, vol, &err);

	if (ret < 0)
		return berr_set(&req->err, ret,
				"cannot tell whether volume %s already exists: %s; give -o backend= to create it",
				vol->name, err.msg);
	return ret;
}

/* A Create request, checked (create_parse); opts is caller-owned. */
struct create_req {
	const char *name;	       /* borrowed from the request */
	int implicit;		       /* no Opts: dockerd's implicit Create */
	json_t *opts;		       /* the options, without "backend" */
	const struct backend_ops *ops; /* the backend they name, or the default */
	void *ctx;
};

/* Fill c from the request: the Name, the options checked by the backend
 * they name. c->opts, set on success and on some failures, is a new
 * reference the caller decrefs. */
static int create_parse(struct api *api, struct request *req, struct create_req *c)
{
	const char *backend;
	int ret;

	ret = api_req_name(req, &c->name);
	if (ret < 0)
		return ret;
	c->implicit = json_is_null(json_object_get(req->body, "Opts")) || !json_object_get(req->body, "Opts");
	ret = create_opts(req, &c->opts);
	if (ret < 0)
		return ret;
	backend = opt_get(c->opts, "backend");
	if (!backend)
		backend = config_get(api->cfg, "ballast", "default_backend");
	ret = api_find_backend(api, backend, &c->ops, &c->ctx, &req->err);
	if (ret < 0)
		return ret;
	ret = c->ops->validate_opts(c->ctx, c->opts, &req->err);
	if (ret < 0)
		return ret;
	/* The backend is a column of its own, not an option. (This frees
	 * the string backend points to: use ops->name from here on.) */
	json_object_del(c->opts, "backend");
	return 0;
}

/* The volume a copy is made from (-o from=VOLUME[@SNAPSHOT], for backends
 * that copy their own volumes) into src: 1, or 0 when c is no copy. */
static int copy_source(const struct create_req *c, char src[VOLUME_NAME_MAX + 1])
{
	const char *from = c->ops->create_copy ? opt_get(c->opts, "from") : NULL;

	if (!from)
		return 0;
	/* checked by the backend: a volume name, then maybe @SNAPSHOT */
	snprintf(src, VOLUME_NAME_MAX + 1, "%.*s", (int)strcspn(from, "@"), from);
	return 1;
}

/* A copy takes its source's options (size, fstype, owner...) besides
 * "from", as the catalog shows them: they never change after Create. */
static int copy_options(struct api *api, struct request *req, struct create_req *c)
{
	char src[VOLUME_NAME_MAX + 1];
	json_t *view;
	int ret = 0;

	if (!copy_source(c, src))
		return 0;
	if (strcmp(src, c->name) == 0)
		return berr_set(&req->err, -EINVAL, "volume %s cannot be copied from itself", src);
	view = catalog_view(api->cat, src);
	if (!view)
		return berr_set(&req->err, -ENOENT, "from=%s: volume %s not found", src, src);
	if (strcmp(json_string_value(json_object_get(view, "backend")) ?: "", c->ops->name) != 0)
		ret = berr_set(&req->err, -EINVAL, "from=%s: volume %s is backend %s; a copy has its backend (%s)", src,
			       src, json_string_value(json_object_get(view, "backend")) ?: "?", c->ops->name);
	else
		json_object_update_missing(c->opts, json_object_get(view, "options"));
	json_decref(view);
	return ret;
}

/* Hold the source of a copy (*from, NULL when c is no copy) for the
 * Create: ready, this backend, and mounted nowhere, so that what is
 * copied is what the last container left. */
static int copy_acquire(struct api *api, struct request *req, const struct create_req *c, struct volume **from)
{
	char src[VOLUME_NAME_MAX + 1];

	*from = NULL;
	if (!copy_source(c, src))
		return 0;
	*from = catalog_acquire(api->cat, src, 0);
	if (!*from)
		return berr_set(&req->err, -ENOENT, "from=%s: volume %s not found", src, src);
	if ((*from)->state != VOL_READY)
		return api_refuse_unready(req, *from);
	if (strcmp((*from)->backend, c->ops->name) != 0)
		return berr_set(&req->err, -EINVAL, "from=%s: volume %s is backend %s", src, src, (*from)->backend);
	/* a snapshot does not change; the volume may be in use */
	if (!strchr(opt_get(c->opts, "from"), '@') && volume_mount_count(*from) > 0)
		return berr_set(&req->err, -EBUSY,
				"from=%s: volume %s is in use on this host; stop the containers using it, then copy it",
				src, src);
	return 0;
}

/* Make vol (held by the caller, not ready) as c asks: recorded as
 * creating, made by the backend, recorded as ready; on failure undone
 * and marked gone. */
static int create_volume(struct api *api, struct request *req, const struct create_req *c, struct volume *vol)
{
	const struct backend_ops *ops = c->ops;
	struct volume *from = NULL;
	struct be_volume bv, fbv;
	int made, ret;

	ret = copy_acquire(api, req, c, &from);
	if (ret < 0)
		goto out;

	snprintf(vol->backend, sizeof(vol->backend), "%s", ops->name);
	volume_add_opts(vol, c->opts);
	rfc3339_now(vol->created_at, sizeof(vol->created_at));
	vol->state = VOL_CREATING;
	/* Recorded before the backend acts, so that a crash in between is
	 * rolled back at start instead of leaving a half-made volume. */
	ret = catalog_commit(api->cat, vol, &req->err);
	if (ret < 0) {
		vol->state = VOL_GONE;
		goto out;
	}
	CRASH_POINT("create.after-record");
	bv.name = vol->name;
	bv.opts = vol->opts;
	if (from) {
		fbv.name = from->name;
		fbv.opts = from->opts;
		vol->resized_bytes = from->resized_bytes;
		made = ops->create_copy(c->ctx, &bv, &fbv, &req->err);
	} else {
		made = ops->create(c->ctx, &bv, &req->err);
	}
	metrics_backend_error(ops->name, made);
	CRASH_POINT("create.after-backend");
	ret = made < 0 ? made : 0;
	if (ret == 0) {
		vol->state = VOL_READY;
		vol->touched_ms = monotonic_ms();
		ret = catalog_commit(api->cat, vol, &req->err);
		CRASH_POINT("create.after-commit");
	}
	if (ret < 0) {
		struct berr ignored = BERR_INIT;

		/* A failed create cleaned up after itself; a volume it made
		 * that we then could not record is undone here. One it
		 * adopted is another host's and stays. */
		if (made == 0)
			ops->remove(c->ctx, &bv, &ignored);
		vol->state = VOL_GONE;
		catalog_commit(api->cat, vol, &ignored);
		goto out;
	}
	if (from)
		log_infox("created volume %s (backend %s), a copy of %s", c->name, ops->name, from->name);
	else
		log_infox("created volume %s (backend %s)", c->name, ops->name);
out:
	if (from)
		catalog_release(api->cat, from);
	return ret;
}

/* A Create of a name whose earlier Create or Remove was interrupted: the
 * leftover is finished (or rolled back) first, so that the new Create
 * starts from nothing (or finds the volume, when a refused Remove turned it
 * back to ready) and never merges into a half-made entry. A damaged record
 * is refused: creating over it could replace the volume's data. */
static int create_leftover(struct api *api, struct request *req, struct volume *vol)
{
	if (vol->state == VOL_DAMAGED)
		return api_refuse_unready(req, vol);
	if (vol->state != VOL_CREATING && vol->state != VOL_REMOVING)
		return 0;
	api_recover_volume(api, vol, 0);
	if (vol->state == VOL_GONE) {
		volume_clear(vol);
		return 0;
	}
	if (vol->state == VOL_READY)
		return 0;
	return berr_set(&req->err, -EAGAIN, "volume %s: an interrupted %s could not be finished yet; try again shortly",
			vol->name, vol->state == VOL_CREATING ? "Create" : "Remove");
}

int h_create(struct api *api, struct request *req)
{
	struct create_req c = { .opts = NULL };
	struct volume *vol;
	int ret;

	ret = create_parse(api, req, &c);
	if (ret == 0)
		ret = copy_options(api, req, &c);
	if (ret < 0)
		goto out;
	vol = catalog_acquire(api->cat, c.name, 1);
	if (!vol) {
		ret = berr_set(&req->err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = create_leftover(api, req, vol);
	if (ret < 0)
		goto out_release;
	if (vol->state == VOL_READY) {
		/* dockerd may resend a Create, and Swarm nodes each send one:
		 * the same volume again is success, a different one is not. */
		if (c.implicit || (strcmp(vol->backend, c.ops->name) == 0 && json_equal(vol->opts, c.opts)))
			ret = 0;
		else
			ret = berr_set(&req->err, -EEXIST, "volume %s already exists with other options (backend %s)",
				       c.name, vol->backend);
		goto out_release;
	}
	if (c.implicit && !(c.ops->caps & BE_CAP_GLOBAL) && vol->state == VOL_NEW) {
		ret = implicit_shared(api, req, vol);
		if (ret != 0) {
			ret = ret < 0 ? ret : 0;
			goto out_release;
		}
	}
	ret = create_volume(api, req, &c, vol);
out_release:
	catalog_release(api->cat, vol);
out:
	json_decref(c.opts);
	return ret;
}
