/*
 * api.h - one handler per endpoint of dockerd's volume-plugin protocol,
 * plus ballast's admin endpoints (/Ballast.*, a prefix dockerd never uses).
 */
#ifndef BALLAST_API_H
#define BALLAST_API_H

#include <stddef.h>

#include "catalog.h"
#include "config.h"

/* Bodies larger than this are refused before they are parsed. */
#define API_MAX_BODY (64 * 1024)

struct api;

/* Start every compiled-in backend and take the catalog. Backends must not
 * touch a cluster here. *out is freed with api_free. cfg and cat are
 * borrowed and must outlive the api. */
int api_new(const struct ballast_config *cfg, struct catalog *cat, struct api **out, struct berr *err);
void api_free(struct api *api);

/*
 * ballastd answers Activate, Capabilities and Ballast.Check (the
 * backends' health) while its catalog loads
 * (opened with catalog_open_unloaded); every other request waits, within
 * its deadline, until api_serve_catalog(api, 1), called once the catalog
 * is loaded and recovered. ok 0: the load failed, and waiting requests are
 * answered with that. With a catalog loaded before api_new, requests are
 * served at once.
 */
void api_serve_catalog(struct api *api, int ok);

struct be_counters;

/* The counters of the backend named backend (zeros when it keeps none).
 * 0, or -ENOENT when no such backend runs. */
int api_backend_counters(const struct api *api, const char *backend, struct be_counters *out);

/*
 * Bring the catalog in line with this host after a crash or reboot: roll
 * back unfinished Creates, finish unfinished Removes, drop mount counts the
 * mount table disproves and unmount what no mount ID uses. Call before
 * api_serve_catalog.
 */
void api_recover(struct api *api);

/*
 * Bring the catalog in line with the volume lists of the backends that
 * have one (volumes in a cluster, made or removed by other hosts): adopt
 * new ones, drop ones gone from the cluster that nothing mounts here.
 * A backend whose list fails is skipped. Blocks for as long as the
 * backends' time bounds.
 */
void api_refresh(struct api *api);

/* Unmount what dockerd forgot: a volume mounted here that no mount
 * namespace of this host shows (no container uses it), looked at twice at
 * least ORPHAN_CONFIRM_MS apart, [ballast] orphan_grace seconds or more
 * after its last Mount (dockerd killed and restarted never sends the
 * Unmount of a container it lost). Run by the refresh thread. */
void api_sweep_orphans(struct api *api);

/* The sweep's decision for one mounted volume, looked at from at (ms) on
 * and found with users mounts elsewhere (-1: its path not found): its new
 * first-unused time (0: in use), or -1: unmount it now. touched_ms is its
 * last Mount (or ballastd's start). */
long api_orphan_decide(long touched_ms, long unused_since_ms, int users, long at, long grace_ms, long confirm_ms);
#define ORPHAN_CONFIRM_MS 1000

/* For an Unmount that leaves other IDs (vol held): when the last Mount is
 * orphan_grace old and no namespace shows the mount now, those IDs are ones
 * dockerd forgot; drop them (the caller then unmounts as for the last ID),
 * so that the volume is free for another host at once. 1 when dropped. */
int api_forgotten_ids(struct api *api, struct volume *vol);

/* Run api_refresh every [ballast] refresh_interval seconds on a thread of
 * its own, if any backend has a list; api_stop_refresh ends it. */
int api_start_refresh(struct api *api, struct berr *err);
void api_stop_refresh(struct api *api);

/*
 * Handle one request: path is the URL path ("/VolumeDriver.Create"), body
 * the raw request body (may be NULL when len is 0). Always produces a JSON
 * body in *resp (caller frees) and returns the HTTP status to send.
 * too_large says the body exceeded API_MAX_BODY and was not kept.
 */
int api_handle(struct api *api, const char *path, const char *body, size_t len, int too_large, char **resp);

#endif
