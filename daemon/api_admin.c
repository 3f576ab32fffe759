/*
 * api_admin.c - ballast's admin endpoints (/Ballast.*, used by the ballast
 * command, never by dockerd); the routes table in api.c points here.
 */
#define LOG_TAG "api"
#include <errno.h>
#include <stdint.h>

#include "api_int.h"
#include "log.h"
#include "metrics.h"
#include "validate.h"
#include "version.h"

/* --- Reading -------------------------------------------------------------- */

/* `ballast ls`: every ready volume's snapshot as it is. */
static json_t *admin_list_volume(struct api *api, json_t *view)
{
	(void)api;
	return json_incref(view);
}

int h_admin_list(struct api *api, struct request *req)
{
	return api_cached_list(api, &api->admin_list, req, admin_list_volume);
}

int h_admin_inspect(struct api *api, struct request *req)
{
	json_t *view;
	int ret;

	ret = api_req_view(api, req, &view);
	if (ret < 0)
		return ret;
	json_object_set_new(view, "status", api_status_of(api, view));
	json_object_set_new(req->resp, "Volume", view);
	return 0;
}

int h_admin_version(struct api *api, struct request *req)
{
	json_t *names = json_array();

	for (int i = 0; i < api->nbackends; i++)
		json_array_append_new(names, json_string(api->ops[i]->name));
	json_object_set_new(req->resp, "Version", json_string(BALLAST_VERSION));
	json_object_set_new(req->resp, "Backends", names);
	json_object_set_new(req->resp, "HostID", json_string(config_get(api->cfg, "ballast", "host_id")));
	return 0;
}

int h_admin_check(struct api *api, struct request *req)
{
	json_t *all = json_array();

	for (int i = 0; i < api->nbackends; i++) {
		json_t *checks;

		if (!api->ops[i]->check)
			continue;
		checks = api->ops[i]->check(api->ctx[i]);
		if (checks)
			json_array_extend(all, checks);
		json_decref(checks);
	}
	json_object_set_new(req->resp, "Checks", all);
	return 0;
}

/* Who holds what: every volume whose backend knows holders, asked now
 * (bounded by each backend's timeout). A volume whose backend cannot be
 * reached is listed under Errors, the others still answer. */
int h_admin_holders(struct api *api, struct request *req)
{
	json_t *all = catalog_list(api->cat), *out = json_array(), *errs = json_array(), *view;
	size_t i;

	if (!all || !out || !errs) {
		json_decref(all);
		json_decref(out);
		json_decref(errs);
		return berr_set(&req->err, -ENOMEM, "out of memory");
	}
	json_array_foreach (all, i, view) {
		const struct backend_ops *ops;
		struct berr err = BERR_INIT;
		struct be_volume bv;
		json_t *h = NULL;
		void *ctx;

		if (api_find_backend(api, json_string_value(json_object_get(view, "backend")), &ops, &ctx, NULL) < 0 ||
		    !ops->holder)
			continue;
		bv.name = json_string_value(json_object_get(view, "name"));
		bv.opts = json_object_get(view, "options");
		if (ops->holder(ctx, &bv, &h, &err) < 0) {
			json_array_append_new(errs, json_pack("{s:s, s:s}", "name", bv.name, "error", err.msg));
			continue;
		}
		if (!h)
			continue;
		json_object_set_new(h, "name", json_string(bv.name));
		json_object_set_new(h, "backend", json_string(ops->name));
		json_array_append_new(out, h);
	}
	json_decref(all);
	json_object_set_new(req->resp, "Holders", out);
	json_object_set_new(req->resp, "Errors", errs);
	return 0;
}

/* --- Changing ------------------------------------------------------------- */

int h_admin_resize(struct api *api, struct request *req)
{
	const struct backend_ops *ops;
	const char *name, *size;
	struct volume *vol;
	struct be_volume bv;
	uint64_t bytes;
	void *ctx;
	int ret;

	ret = api_req_name(req, &name);
	if (ret == 0)
		ret = api_req_string(req, "Size", &size);
	if (ret == 0)
		ret = parse_size(size, &bytes, &req->err);
	if (ret == 0)
		ret = api_acquire_ready(api, req, name, &vol, &ops, &ctx);
	if (ret < 0)
		return ret;
	if (!ops->resize) {
		ret = berr_set(&req->err, -ENOTSUP, "volume %s: backend %s cannot resize volumes", name, ops->name);
		goto out_release;
	}
	bv.name = vol->name;
	bv.opts = vol->opts;
	ret = ops->resize(ctx, &bv, bytes, &req->err);
	metrics_backend_error(ops->name, ret);
	if (ret < 0)
		goto out_release;
	vol->resized_bytes = bytes;
	ret = catalog_commit(api->cat, vol, &req->err);
	log_infox("resized volume %s to %s", name, size);
out_release:
	catalog_release(api->cat, vol);
	return ret;
}

/* Break another host's stale hold by hand, fencing it ({"Name", "Force"}). */
int h_admin_release(struct api *api, struct request *req)
{
	const struct backend_ops *ops;
	json_t *force = json_object_get(req->body, "Force");
	const char *name;
	struct volume *vol;
	struct be_volume bv;
	void *ctx;
	int ret;

	ret = api_req_name(req, &name);
	if (ret == 0 && force && !json_is_boolean(force))
		ret = berr_set(&req->err, -EINVAL, "Force must be true or false");
	if (ret == 0)
		ret = api_acquire_ready(api, req, name, &vol, &ops, &ctx);
	if (ret < 0)
		return ret;
	if (!ops->release) {
		ret = berr_set(&req->err, -ENOTSUP, "volume %s: backend %s has no holders to release", name, ops->name);
	} else {
		bv.name = vol->name;
		bv.opts = vol->opts;
		ret = ops->release(ctx, &bv, json_is_true(force), &req->err);
		metrics_backend_error(ops->name, ret);
		if (ret == 0)
			log_infox("volume %s: hold released by hand%s", name, json_is_true(force) ? " (forced)" : "");
	}
	catalog_release(api->cat, vol);
	return ret;
}

/* --- Snapshots ------------------------------------------------------------- */

/* The request's Snapshot, checked by the volume-name rule. */
static int req_snapshot(struct request *req, const char **snap)
{
	int ret = api_req_string(req, "Snapshot", snap);

	if (ret == 0 && validate_name(*snap, NULL) < 0)
		ret = berr_set(&req->err, -EINVAL,
			       "invalid snapshot name \"%.64s\": like a volume name it starts with a letter or digit "
			       "and has at most %d letters, digits, '_', '.' and '-'",
			       *snap, VOLUME_NAME_MAX);
	return ret;
}

/* Acquire the request's volume, whose backend must take snapshots; with
 * snap set, the request's Snapshot too. */
static int snapshot_acquire(struct api *api, struct request *req, const char **snap, struct volume **vol,
			    const struct backend_ops **ops, void **ctx)
{
	const char *name;
	int ret;

	ret = api_req_name(req, &name);
	if (ret == 0 && snap)
		ret = req_snapshot(req, snap);
	if (ret == 0)
		ret = api_acquire_ready(api, req, name, vol, ops, ctx);
	if (ret < 0)
		return ret;
	if (!(*ops)->snapshot) {
		ret = berr_set(&req->err, -ENOTSUP, "volume %s: backend %s cannot take snapshots%s%s%s", name,
			       (*ops)->name, (*ops)->no_snapshots ? " (" : "", (*ops)->no_snapshots ?: "",
			       (*ops)->no_snapshots ? ")" : "");
		catalog_release(api->cat, *vol);
		*vol = NULL;
	}
	return ret;
}

enum snap_change { SNAP_TAKE, SNAP_REMOVE, SNAP_ROLLBACK };

/* After a snapshot was taken or removed: the names of vol's snapshots
 * (held) as the backend has them now, those other hosts took included,
 * into its record for `ballast ls`, Status and the metrics. The change
 * is done whatever becomes of the record. */
static void record_snapshots(struct api *api, struct volume *vol, const struct backend_ops *ops, void *ctx)
{
	struct be_volume bv = { .name = vol->name, .opts = vol->opts };
	struct berr err = BERR_INIT;
	json_t *snaps = NULL, *names = json_array(), *s;
	size_t i;

	if (names && ops->snapshots(ctx, &bv, &snaps, &err) == 0) {
		json_array_foreach (snaps, i, s)
			json_array_append(names, json_object_get(s, "name"));
		json_decref(vol->snapshots);
		vol->snapshots = json_array_size(names) ? json_incref(names) : NULL;
		if (catalog_commit(api->cat, vol, &err) < 0)
			log_warnx("volume %s: its snapshots not recorded: %s", vol->name, err.msg);
	} else if (names) {
		log_warnx("volume %s: its snapshots not listed: %s", vol->name, err.msg);
	}
	json_decref(snaps);
	json_decref(names);
}

/* Take, remove or roll back to the request's snapshot; a rollback only of
 * a volume mounted nowhere: here that is no mount count, the backend
 * checks the other hosts. */
static int snapshot_change(struct api *api, struct request *req, enum snap_change what)
{
	const struct backend_ops *ops;
	struct volume *vol;
	struct be_volume bv;
	const char *snap;
	void *ctx;
	int ret;

	ret = snapshot_acquire(api, req, &snap, &vol, &ops, &ctx);
	if (ret < 0)
		return ret;
	bv.name = vol->name;
	bv.opts = vol->opts;
	if (what == SNAP_ROLLBACK && volume_mount_count(vol) > 0) {
		ret = api_refuse_in_use(req, vol);
	} else if (what == SNAP_TAKE && volume_mount_count(vol) > 0 && ops->freezable && !ops->freezable(ctx, &bv)) {
		ret = berr_set(&req->err, -EBUSY,
			       "volume %s is in use on this host and cannot be frozen for a snapshot (a plain "
			       "directory); stop the containers using it first, or use a sized volume",
			       vol->name);
	} else {
		ret = what == SNAP_TAKE	    ? ops->snapshot(ctx, &bv, snap, &req->err)
		      : what == SNAP_REMOVE ? ops->snapshot_remove(ctx, &bv, snap, &req->err)
					    : ops->rollback(ctx, &bv, snap, &req->err);
		metrics_backend_error(ops->name, ret);
		if (ret == 0 && what != SNAP_ROLLBACK)
			record_snapshots(api, vol, ops, ctx);
	}
	catalog_release(api->cat, vol);
	return ret;
}

int h_admin_snapshot(struct api *api, struct request *req)
{
	return snapshot_change(api, req, SNAP_TAKE);
}

int h_admin_snapshot_remove(struct api *api, struct request *req)
{
	return snapshot_change(api, req, SNAP_REMOVE);
}

int h_admin_rollback(struct api *api, struct request *req)
{
	return snapshot_change(api, req, SNAP_ROLLBACK);
}

/* Append the snapshots of the volume of view to out as {"volume", ...};
 * a volume whose backend takes none is skipped, one whose cluster does not
 * answer goes to errs. */
static void snapshots_of(struct api *api, json_t *view, json_t *out, json_t *errs)
{
	const struct backend_ops *ops;
	struct berr err = BERR_INIT;
	struct be_volume bv;
	json_t *snaps = NULL, *s;
	void *ctx;
	size_t i;

	if (api_find_backend(api, json_string_value(json_object_get(view, "backend")), &ops, &ctx, NULL) < 0 ||
	    !ops->snapshots)
		return;
	bv.name = json_string_value(json_object_get(view, "name"));
	bv.opts = json_object_get(view, "options");
	if (ops->snapshots(ctx, &bv, &snaps, &err) < 0) {
		json_array_append_new(errs, json_pack("{s:s, s:s}", "name", bv.name, "error", err.msg));
		return;
	}
	json_array_foreach (snaps, i, s) {
		json_object_set_new(s, "volume", json_string(bv.name));
		json_array_append(out, s);
	}
	json_decref(snaps);
}

/* One volume's snapshots ({"Name"}: its backend must take them, and a
 * cluster that does not answer fails the request), or every volume's
 * ({}: those that cannot be read are listed under Errors). */
int h_admin_snapshots(struct api *api, struct request *req)
{
	json_t *out = json_array(), *errs = json_array(), *all = NULL, *view;
	const int one = json_object_get(req->body, "Name") != NULL;
	const struct backend_ops *ops;
	void *ctx;
	size_t i;
	int ret = 0;

	if (one) {
		ret = api_req_view(api, req, &view);
		if (ret == 0) {
			ret = api_find_backend(api, json_string_value(json_object_get(view, "backend")), &ops, &ctx,
					       &req->err);
			if (ret == 0 && !ops->snapshots)
				ret = berr_set(&req->err, -ENOTSUP, "volume %s: backend %s cannot take snapshots",
					       json_string_value(json_object_get(view, "name")), ops->name);
			all = json_pack("[o]", view);
		}
	} else {
		all = catalog_list(api->cat);
	}
	if (ret == 0 && (!out || !errs || !all))
		ret = berr_set(&req->err, -ENOMEM, "out of memory");
	if (ret == 0)
		json_array_foreach (all, i, view)
			snapshots_of(api, view, out, errs);
	if (ret == 0 && one && json_array_size(errs) > 0)
		ret = berr_set(&req->err, -EIO, "%s",
			       json_string_value(json_object_get(json_array_get(errs, 0), "error")));
	if (ret == 0) {
		json_object_set(req->resp, "Snapshots", out);
		json_object_set(req->resp, "Errors", errs);
	}
	json_decref(all);
	json_decref(out);
	json_decref(errs);
	return ret;
}
