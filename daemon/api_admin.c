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
