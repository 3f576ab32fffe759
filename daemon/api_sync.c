/*
 * api_sync.c - keeping the catalog in line with the host and the clusters:
 * start-up recovery after a crash or reboot, and the background refresh of
 * the backends that list their volumes (see api.h).
 */
#define LOG_TAG "api"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_int.h"
#include "crashpoint.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "validate.h"

/* --- Start-up recovery ---------------------------------------------------- */

/* This boot's ID into now (size len); "" when the kernel has none. */
static void boot_id(char *now, size_t len)
{
	ssize_t n = -1;
	int fd;

	now[0] = '\0';
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, now, len - 1);
		close(fd);
	}
	now[n > 0 ? n : 0] = '\0';
}

/* Has the machine booted since the catalog was last used (the boot ID
 * recorded differs from now)? Mount counts from before a reboot are void:
 * every container of that boot is gone. */
static int booted_since(const char *state_dir, const char *now)
{
	char *before = NULL;
	size_t len = 0;
	int dirfd, changed = 0;

	if (!now[0])
		return 0;
	dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return 0;
	if (read_file_at(dirfd, "boot_id", 64, &before, &len) == 0)
		changed = strcmp(before, now) != 0;
	free(before);
	close(dirfd);
	return changed;
}

/* Record now as the boot the catalog was brought in line with: only after
 * recovery, so that a daemon killed during it still sees the reboot at its
 * next start. */
static void boot_mark(const char *state_dir, const char *now)
{
	int dirfd;

	if (!now[0])
		return;
	dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return;
	if (atomic_write_at(dirfd, "boot_id", now, strlen(now)) < 0)
		log_warnx("cannot record the boot ID in %s", state_dir);
	close(dirfd);
}

/* An interrupted Create is rolled back, an interrupted Remove finished;
 * but a Remove the backend now refuses because the volume is in use
 * (another host's container got it meanwhile) is given up: the volume is
 * ready again, and never retried. */
static void finish_leftover(struct api *api, const struct backend_ops *ops, void *ctx, struct volume *vol)
{
	const char *what =
		vol->state == VOL_CREATING ? "rolled back the unfinished create" : "finished the interrupted remove";
	struct be_volume bv = { .name = vol->name, .opts = vol->opts };
	struct berr err = BERR_INIT;
	int ret;

	ret = ops->remove(ctx, &bv, &err);
	if (ret == -EBUSY && vol->state == VOL_REMOVING) {
		vol->state = VOL_READY;
		if (catalog_commit(api->cat, vol, &err) == 0)
			log_warnx("volume %s: the interrupted remove is refused now (%s); the volume is kept, ready",
				  vol->name, err.msg);
		else
			vol->state = VOL_REMOVING;
		return;
	}
	if (ret < 0) {
		log_errx("volume %s: cannot clean up after a crash: %s", vol->name, err.msg);
		return;
	}
	vol->state = VOL_GONE;
	if (catalog_commit(api->cat, vol, &err) == 0)
		log_infox("volume %s: %s", vol->name, what);
}

void api_recover_volume(struct api *api, struct volume *vol, int rebooted)
{
	const struct backend_ops *ops;
	struct berr err = BERR_INIT;
	struct be_volume bv = { .name = vol->name, .opts = vol->opts };
	int mounted, dirty = 0;
	void *ctx;

	if (vol->state == VOL_DAMAGED)
		return; /* logged at load; an operator acts */
	if (api_find_backend(api, vol->backend, &ops, &ctx, &err) < 0) {
		log_warnx("volume %s: %s; left as it is", vol->name, err.msg);
		return;
	}
	if (vol->state == VOL_CREATING && (ops->caps & BE_CAP_GLOBAL)) {
		/* The crashed Create may have been adopting another host's
		 * volume: forget it here; the cluster's list brings it back
		 * if it is whole, and a new Create completes it if not. */
		vol->state = VOL_GONE;
		if (catalog_commit(api->cat, vol, &err) == 0)
			log_infox("volume %s: dropped the unfinished create (shared backend %s)", vol->name, ops->name);
		return;
	}
	if (vol->state == VOL_CREATING || vol->state == VOL_REMOVING) {
		finish_leftover(api, ops, ctx, vol);
		return;
	}
	if (rebooted && volume_mount_count(vol) > 0) {
		volume_drop_mounts(vol);
		dirty = 1;
	}
	mounted = ops->is_mounted(ctx, &bv);
	if (mounted == 0 && volume_mount_count(vol) > 0) {
		log_warnx("volume %s: not mounted any more; dropping %ld stale mount(s)", vol->name,
			  volume_mount_count(vol));
		volume_drop_mounts(vol);
		dirty = 1;
	}
	if ((mounted == 1 || mounted == BE_MOUNT_DEAD) && volume_mount_count(vol) == 0) {
		/* Mounted by a request that crashed before it was recorded:
		 * dockerd never got the answer, so nothing uses it. */
		log_infox("volume %s: unmounting a mount no container uses", vol->name);
		if (ops->unmount(ctx, &bv, &err) < 0)
			log_errx("volume %s: %s", vol->name, err.msg);
	}
	if (volume_mount_count(vol) == 0 && vol->mountpoint[0]) {
		vol->mountpoint[0] = '\0';
		dirty = 1;
	}
	if (dirty && catalog_commit(api->cat, vol, &err) < 0)
		log_errx("volume %s: %s", vol->name, err.msg);
}

/* An interrupted Remove of a shared backend's volume needs its cluster,
 * which may be slow or down: it is left to the refresh thread (started
 * right after), so that ballastd answers at once. Until then the volume is
 * refused as not ready. */
static int recover_later(struct api *api, const struct volume *vol)
{
	const struct backend_ops *ops;
	void *ctx;

	if (vol->state != VOL_REMOVING || api_find_backend(api, vol->backend, &ops, &ctx, NULL) < 0)
		return 0;
	return (ops->caps & BE_CAP_GLOBAL) != 0;
}

void api_recover(struct api *api)
{
	const char *state = config_get(api->cfg, "ballast", "state_dir");
	json_t *names = catalog_names(api->cat);
	char now[64];
	int rebooted;
	json_t *name;
	size_t i;

	boot_id(now, sizeof(now));
	rebooted = booted_since(state, now);
	if (rebooted)
		log_infox("the machine rebooted since the last run: mount counts reset");
	json_array_foreach (names, i, name) {
		struct volume *vol = catalog_acquire(api->cat, json_string_value(name), 0);

		if (!vol)
			continue;
		if (recover_later(api, vol))
			log_infox("volume %s: its interrupted remove is finished in the background", vol->name);
		else
			api_recover_volume(api, vol, rebooted);
		catalog_release(api->cat, vol);
		CRASH_POINT("recover.after-volume");
	}
	json_decref(names);
	boot_mark(state, now);
}

/* --- Adopting and dropping shared volumes --------------------------------- */

/* Record a volume of a global backend's cluster (item as its list gives
 * it) as ready here; caller holds vol, which is new. */
int api_adopt_locked(struct api *api, const struct backend_ops *ops, struct volume *vol, json_t *item, struct berr *err)
{
	const char *created = json_string_value(json_object_get(item, "created_at"));
	int ret;

	snprintf(vol->backend, sizeof(vol->backend), "%s", ops->name);
	volume_add_opts(vol, json_object_get(item, "options"));
	snprintf(vol->created_at, sizeof(vol->created_at), "%s", created ? created : "");
	if (!vol->created_at[0])
		rfc3339_now(vol->created_at, sizeof(vol->created_at));
	vol->state = VOL_READY;
	vol->touched_ms = monotonic_ms();
	ret = catalog_commit(api->cat, vol, err);
	if (ret < 0) {
		vol->state = VOL_NEW;
		volume_drop_opts(vol);
	}
	return ret;
}

/* Adopt one listed volume into the catalog, unless it is known already. */
static void adopt(struct api *api, const struct backend_ops *ops, json_t *item)
{
	const char *name = json_string_value(json_object_get(item, "name"));
	json_t *opts = json_object_get(item, "options");
	struct berr err = BERR_INIT;
	struct volume *vol;

	if (validate_name(name, &err) < 0 || !json_is_object(opts)) {
		log_warnx("%s lists a volume ballast cannot use: %s", ops->name, err.msg[0] ? err.msg : "no options");
		return;
	}
	vol = catalog_acquire(api->cat, name, 1);
	if (!vol)
		return;
	if (vol->state == VOL_NEW) {
		if (api_adopt_locked(api, ops, vol, item, &err) == 0)
			log_infox("volume %s (backend %s) appeared in the cluster; now listed", name, ops->name);
	} else if (strcmp(vol->backend, ops->name) != 0) {
		log_warnx("volume %s exists both in backend %s and here in backend %s; keeping %s", name, ops->name,
			  vol->backend, vol->backend);
	}
	catalog_release(api->cat, vol);
}

/* Drop volumes of ops that left the cluster, if nothing here uses them and
 * this process did not make them after the list was taken. Only the ready,
 * unmounted volumes of ops missing from items are acquired: with 10,000
 * volumes, each looked up in a list of 10,000 was 10^8 comparisons a
 * refresh. */
static void drop_vanished(struct api *api, const struct backend_ops *ops, json_t *items, long since_ms)
{
	const struct catalog_filter idle = { 1u << VOL_READY, 0, ops->name };
	json_t *names = catalog_names_where(api->cat, &idle);
	json_t *listed = json_object(), *name, *item;
	size_t i;

	json_array_foreach (items, i, item) {
		const char *n = json_string_value(json_object_get(item, "name"));

		if (n)
			json_object_set_new(listed, n, json_true());
	}
	json_array_foreach (names, i, name) {
		struct berr err = BERR_INIT;
		struct volume *vol;

		if (json_object_get(listed, json_string_value(name)))
			continue;
		vol = catalog_acquire(api->cat, json_string_value(name), 0);
		if (!vol)
			continue;
		if (vol->state == VOL_READY && strcmp(vol->backend, ops->name) == 0 && vol->touched_ms < since_ms &&
		    volume_mount_count(vol) == 0 && !json_object_get(listed, vol->name)) {
			vol->state = VOL_GONE;
			if (catalog_commit(api->cat, vol, &err) == 0)
				log_infox("volume %s was removed from backend %s elsewhere; dropped", vol->name,
					  ops->name);
			else
				vol->state = VOL_READY;
		}
		catalog_release(api->cat, vol);
	}
	json_decref(listed);
	json_decref(names);
}

/* Finish what start-up recovery could not (a cluster that did not answer
 * then): a volume still creating or removing that nobody holds is a
 * leftover, since requests hold a volume for as long as they work on it. */
static void retry_unfinished(struct api *api)
{
	const struct catalog_filter unfinished = { (1u << VOL_CREATING) | (1u << VOL_REMOVING), -1, NULL };
	json_t *names = catalog_names_where(api->cat, &unfinished);
	json_t *name;
	size_t i;

	json_array_foreach (names, i, name) {
		struct volume *vol = catalog_acquire(api->cat, json_string_value(name), 0);

		if (!vol)
			continue;
		if (vol->state == VOL_CREATING || vol->state == VOL_REMOVING)
			api_recover_volume(api, vol, 0);
		catalog_release(api->cat, vol);
	}
	json_decref(names);
}

/* --- Mounts dockerd forgot ----------------------------------------------- */

/* "id1 id2 ..." (each cut to 12 characters, as docker shows them) */
static void ids_of(const struct volume *vol, char *buf, size_t len)
{
	const char *id;
	json_t *v;
	size_t at = 0;

	buf[0] = '\0';
	json_object_foreach ((json_t *)vol->mounts, id, v) {
		int n = snprintf(buf + at, len - at, "%s%.12s", at ? " " : "", id);

		(void)v;
		if (n < 0 || (size_t)n >= len - at)
			break;
		at += (size_t)n;
	}
}

/* Drop every mount ID of vol, saying what found them forgotten and what
 * follows. */
static void forget_ids(struct volume *vol, const char *found, const char *then)
{
	char ids[160];

	ids_of(vol, ids, sizeof(ids));
	log_warnx("volume %s: %s, yet dockerd never unmounted it (mount IDs %s; was dockerd restarted?): %s", vol->name,
		  found, ids, then);
	volume_drop_mounts(vol);
}

static void unmount_orphan(struct api *api, struct volume *vol)
{
	const struct backend_ops *ops;
	struct berr err = BERR_INIT;
	struct be_volume bv;
	void *ctx;
	int ret;

	if (api_find_backend(api, vol->backend, &ops, &ctx, &err) < 0)
		return;
	bv.name = vol->name;
	bv.opts = vol->opts;
	ret = ops->unmount(ctx, &bv, &err);
	metrics_backend_error(ops->name, ret);
	if (ret < 0) {
		log_warnx("volume %s: no container uses it, but it cannot be unmounted (trying again later): %s",
			  vol->name, err.msg);
		return;
	}
	forget_ids(vol, "no container on this host uses it", "unmounted");
	vol->mountpoint[0] = '\0';
	if (catalog_commit(api->cat, vol, &err) < 0)
		log_warnx("volume %s: %s", vol->name, err.msg);
}

long api_orphan_decide(long touched_ms, long unused_since_ms, int users, long at, long grace_ms, long confirm_ms)
{
	if (touched_ms >= at || users != 0)
		return 0; /* in use, not found, or a Mount since the look began */
	if (!unused_since_ms || touched_ms >= unused_since_ms)
		return at; /* the first look since the last Mount that found it unused */
	return at - unused_since_ms >= confirm_ms && at - touched_ms >= grace_ms ? -1 : unused_since_ms;
}

/* The last Mount of vol by this process, or its start */
static long last_mount_ms(const struct api *api, const struct volume *vol)
{
	return vol->mount_touched_ms ? vol->mount_touched_ms : api->started_ms;
}

int api_forgotten_ids(struct api *api, struct volume *vol)
{
	const char *path = vol->mountpoint;
	int users;

	if (!api->orphan_grace_s || volume_mount_count(vol) == 0 || !vol->mountpoint[0] ||
	    monotonic_ms() - last_mount_ms(api, vol) < (long)api->orphan_grace_s * 1000)
		return 0;
	if (mount_users(&path, 1, &users) < 0 || users != 0)
		return 0;
	forget_ids(vol, "its last container here is gone", "the IDs are dropped");
	return 1;
}

void api_sweep_orphans(struct api *api)
{
	const struct catalog_filter mounted = { 1u << VOL_READY, 1, NULL };
	json_t *names, *name, *cand = json_array();
	const char **paths = NULL;
	int *users = NULL;
	size_t i, n = 0;
	long at;

	if (!api->orphan_grace_s || !cand)
		goto out;
	names = catalog_names_where(api->cat, &mounted);
	json_array_foreach (names, i, name) {
		struct volume *vol = catalog_acquire(api->cat, json_string_value(name), 0);

		if (!vol)
			continue;
		if (vol->state == VOL_READY && volume_mount_count(vol) > 0 && vol->mountpoint[0])
			json_array_append_new(cand, json_pack("[s,s]", vol->name, vol->mountpoint));
		catalog_release(api->cat, vol);
	}
	json_decref(names);
	n = json_array_size(cand);
	if (!n)
		goto out;
	paths = calloc(n, sizeof(*paths));
	users = calloc(n, sizeof(*users));
	if (!paths || !users)
		goto out;
	for (i = 0; i < n; i++)
		paths[i] = json_string_value(json_array_get(json_array_get(cand, i), 1));
	at = monotonic_ms(); /* a Mount or Unmount from now on is newer than this look */
	if (mount_users(paths, n, users) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct volume *vol =
			catalog_acquire(api->cat, json_string_value(json_array_get(json_array_get(cand, i), 0)), 0);

		if (!vol)
			continue;
		if (vol->state != VOL_READY || volume_mount_count(vol) == 0 || strcmp(vol->mountpoint, paths[i]) != 0) {
			vol->unused_since_ms = 0; /* changed meanwhile */
		} else {
			long since = vol->unused_since_ms;

			vol->unused_since_ms = api_orphan_decide(last_mount_ms(api, vol), since, users[i], at,
								 (long)api->orphan_grace_s * 1000, ORPHAN_CONFIRM_MS);
			if (vol->unused_since_ms < 0) {
				vol->unused_since_ms = since;
				unmount_orphan(api, vol);
			}
		}
		catalog_release(api->cat, vol);
	}
out:
	free(paths);
	free(users);
	json_decref(cand);
}

/* --- The refresh and its thread ------------------------------------------- */

void api_refresh(struct api *api)
{
	retry_unfinished(api);
	for (int i = 0; i < api->nbackends; i++) {
		const struct backend_ops *ops = api->ops[i];
		struct berr err = BERR_INIT;
		json_t *items = NULL, *item;
		long since = monotonic_ms();
		size_t j;

		if (!ops->list || (ops->configured && !ops->configured(api->ctx[i])))
			continue;
		int lret = ops->list(api->ctx[i], &items, &err);

		metrics_backend_error(ops->name, lret);
		if (lret < 0 || !json_is_array(items)) {
			log_warnx("cannot refresh the volumes of backend %s: %s", ops->name,
				  err.msg[0] ? err.msg : "no list");
			json_decref(items);
			continue;
		}
		api_lookup_answered(api, i);
		json_array_foreach (items, j, item)
			if (!catalog_has(api->cat, json_string_value(json_object_get(item, "name")) ?: "", ops->name))
				adopt(api, ops, item); /* new here, or known in another backend */
		drop_vanished(api, ops, items, since);
		json_decref(items);
	}
	atomic_store(&api->refreshed_ms, monotonic_ms());
}

void api_kick_refresh(struct api *api)
{
	if (monotonic_ms() - atomic_load(&api->refreshed_ms) < API_REFRESH_STALE_MS)
		return;
	pthread_mutex_lock(&api->refresh_lock);
	if (api->refresh_running) {
		api->refresh_kick = 1;
		pthread_cond_signal(&api->refresh_cond);
	}
	pthread_mutex_unlock(&api->refresh_lock);
}

/* Seconds between looks for mounts dockerd forgot: a quarter of the grace,
 * 1 to 15 s, whatever the refresh interval. */
static unsigned long sweep_period_s(const struct api *api)
{
	unsigned long s = api->orphan_grace_s / 4;

	if (!api->orphan_grace_s)
		return api->refresh_interval_s;
	return s < 1 ? 1 : s > 15 ? 15 : s;
}

static void *refresh_main(void *arg)
{
	struct api *api = arg;
	struct timespec until;
	long next_refresh = 0;
	int kicked = 1;

	pthread_mutex_lock(&api->refresh_lock);
	while (!api->refresh_stop) {
		unsigned long wait_s = sweep_period_s(api);
		long left;

		kicked |= api->refresh_kick;
		api->refresh_kick = 0;
		pthread_mutex_unlock(&api->refresh_lock);
		if (kicked || monotonic_ms() >= next_refresh) {
			api_refresh(api);
			next_refresh = monotonic_ms() + (long)api->refresh_interval_s * 1000;
		}
		kicked = 0;
		api_sweep_orphans(api);
		/* the next sweep, or the next refresh if it comes first */
		left = next_refresh - monotonic_ms();
		if (left < (long)wait_s * 1000)
			wait_s = left > 0 ? (unsigned long)(left + 999) / 1000 : 0;
		pthread_mutex_lock(&api->refresh_lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)wait_s;
		while (!api->refresh_stop && !api->refresh_kick &&
		       pthread_cond_timedwait(&api->refresh_cond, &api->refresh_lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&api->refresh_lock);
	return NULL;
}

int api_start_refresh(struct api *api, struct berr *err)
{
	int any = 0, ret;

	for (int i = 0; i < api->nbackends; i++)
		any |= api->ops[i]->list != NULL;
	if (!any || api->refresh_running)
		return 0;
	api->refresh_stop = 0;
	ret = pthread_create(&api->refresher, NULL, refresh_main, api);
	if (ret != 0)
		return berr_set(err, -ret, "cannot start the refresh thread: %s", strerror(ret));
	pthread_mutex_lock(&api->refresh_lock);
	api->refresh_running = 1;
	pthread_mutex_unlock(&api->refresh_lock);
	return 0;
}

void api_stop_refresh(struct api *api)
{
	if (!api->refresh_running)
		return;
	pthread_mutex_lock(&api->refresh_lock);
	api->refresh_stop = 1;
	pthread_cond_signal(&api->refresh_cond);
	pthread_mutex_unlock(&api->refresh_lock);
	pthread_join(api->refresher, NULL);
	pthread_mutex_lock(&api->refresh_lock);
	api->refresh_running = 0;
	api->refresh_stop = 0;
	pthread_mutex_unlock(&api->refresh_lock);
}
