/*
 * rbd_lease.c - who holds an rbd volume, and taking it from them: holder
 * and lease records, the takeover at Mount, fencing, `ballast holders`
 * and `ballast release` (see rbd_int.h).
 *
 * Leases and fencing: while another host's lease is fresh, Mount is
 * refused at once, naming that host. Once it has expired (the holder is
 * dead or cut off from the cluster) and takeover is allowed ([rbd]
 * takeover, or the volume's -o takeover), the holder is fenced before this
 * host maps: rbd_lock_break blocklists its Ceph client (its writes then
 * fail in the OSDs, even after it comes back) and breaks its lock. The
 * mapper also stops writing by itself once its lease has lapsed locally.
 *
 * A lease speaks only for the client it names, and only while that client
 * owns the lock: a lease left behind by an earlier holder (one that was
 * fenced or crashed, under a kernel mapping that writes no lease) must
 * never get the lock's current owner fenced. So the fence names the
 * owner's address, and librbd breaks the lock only while that address
 * still owns it: two hosts racing a takeover cannot fence each other.
 *
 * The decisions are pure functions (records, host and time in, a verdict
 * out) so that the unit tests cover them; the rest acts on the verdicts.
 */
#define LOG_TAG "rbd"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crashpoint.h"
#include "log.h"
#include "rbd_int.h"

/* --- holders and fencing -------------------------------------------------- */

/* "volume NAME is in use on HOST since TIME (lease until T)" from the
 * ballast.holder and ballast.lease records (or the lock owner's address
 * when there is no holder record). */
int rbd_in_use(const char *name, const char *holder, const char *lease, const char *owners, struct berr *err)
{
	json_t *h = holder[0] ? json_loads(holder, 0, NULL) : NULL;
	json_t *l = lease[0] ? json_loads(lease, 0, NULL) : NULL;
	const char *host = json_string_value(json_object_get(h, "host"));
	const char *since = json_string_value(json_object_get(h, "since"));
	const char *until = json_string_value(json_object_get(l, "expires"));
	char tail[80] = "";
	int ret;

	if (until)
		snprintf(tail, sizeof(tail), " (lease until %s)", until);
	if (host)
		ret = berr_set(err, -EBUSY, "volume %s is in use on %s since %s%s", name, host,
			       since ? since : "(unknown)", tail);
	else
		ret = berr_set(err, -EBUSY, "volume %s is in use by Ceph client %s%s", name,
			       owners[0] ? owners : "(unknown)", tail);
	json_decref(h);
	json_decref(l);
	return ret;
}

/* Drop image name's holder record if it names this host. */
void rbd_holder_drop_if_ours(struct rbd_ctx *rc, const char *pool, const char *name)
{
	struct berr ignored = BERR_INIT;
	rados_ioctx_t io = NULL;
	rbd_image_t img;
	char cur[512];

	if (rbd_ioctx_open(rc, pool, &io, &ignored) < 0)
		return;
	if (rbd_open(io, name, &img, NULL) == 0) {
		if (rbd_meta_get(img, META_HOLDER, cur, sizeof(cur)) == 0) {
			json_t *h = json_loads(cur, 0, NULL);
			const char *host = json_string_value(json_object_get(h, "host"));

			if (host && strcmp(host, rc->host_id) == 0)
				rbd_metadata_remove(img, META_HOLDER);
			json_decref(h);
		}
		rbd_close(img);
	}
	rados_ioctx_destroy(io);
}

/* Break image img's lock held by owner (an address), blocklisting it.
 * librbd breaks it only while owner still holds it: -EBUSY otherwise. */
static int fence_owner(rbd_image_t img, const char *pool, const char *name, const char *owner, struct berr *err)
{
	int ret = rbd_lock_break(img, RBD_LOCK_MODE_EXCLUSIVE, owner);

	if (ret == -ENOENT)
		return 0; /* released meanwhile */
	if (ret == -EBUSY)
		return berr_set(err, -EBUSY,
				"volume %s changed hands while this host took it over (Ceph client %s no longer "
				"holds it; its new holder is not fenced): try again",
				name, owner);
	if (ret < 0)
		return berr_set(err, ret, "cannot fence Ceph client %s of %s/%s: %s", owner, pool, name,
				strerror(-ret));
	log_warnx("image %s/%s: Ceph client %s fenced (blocklisted) and its lock broken", pool, name, owner);
	return 0;
}

/*
 * Fence the holder of image name's exclusive lock: rbd_lock_break
 * blocklists its Ceph client (its writes fail in the OSDs from then on,
 * even once it reaches the cluster again) and breaks the lock. Only owner
 * when given; every owner when NULL. 0 when nobody holds it.
 */
int rbd_fence(rados_ioctx_t io, const char *pool, const char *name, const char *owner, struct berr *err)
{
	char *owners[8];
	size_t n = sizeof(owners) / sizeof(owners[0]);
	rbd_lock_mode_t mode;
	rbd_image_t img = NULL;
	int ret;

	ret = rbd_open(io, name, &img, NULL);
	if (ret < 0)
		return berr_set(err, ret, "cannot open image %s/%s: %s", pool, name, strerror(-ret));
	if (owner) {
		ret = fence_owner(img, pool, name, owner, err);
		goto out_close;
	}
	ret = rbd_lock_get_owners(img, &mode, owners, &n);
	if (ret == -ENOENT) {
		ret = 0;
		n = 0;
	} else if (ret < 0) {
		berr_set(err, ret, "cannot read the lock owners of %s/%s: %s", pool, name, strerror(-ret));
		n = 0;
	}
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = fence_owner(img, pool, name, owners[i], err);
	if (n)
		rbd_lock_get_owners_cleanup(owners, n);
out_close:
	rbd_close(img);
	return ret;
}

/* --- takeover at Mount ---------------------------------------------------- */

/*
 * Held (locked) or last held by another host. A fresh lease of another
 * host refuses at once. An expired one (or a lock our own dead mapper
 * left) is broken after fencing its client, unless takeover is "never";
 * only while that client owns the lock. A lock with no lease of its owner
 * (a mapper killed before its first lease, a kernel mapping, a lease left
 * by an earlier holder) is left to the mapper's lock request: a live owner
 * refuses it, a dead one's is broken by librbd once its watch lapses.
 */
int rbd_take_over(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const char *name, const struct rbd_meta *m,
		  int *read_only, struct berr *err)
{
	const char *shared = opt_get(m->options, "shared");
	const char *policy = opt_get(m->options, "takeover");
	struct rbd_hold h;
	int ret;

	*read_only = 0;
	rbd_hold_parse(m->holder, m->lease, m->locked, m->lock_client, &h);
	switch (rbd_take_decide(&h, rc->host_id, policy ? policy : rc->takeover, shared && strcmp(shared, "ro") == 0,
				time(NULL))) {
	case RBD_TAKE_READ_ONLY:
		*read_only = 1;
		break;
	case RBD_TAKE_REFUSE_FRESH:
	case RBD_TAKE_REFUSE_NEVER:
		return rbd_in_use(name, m->holder, m->lease, m->owners, err);
	case RBD_TAKE_FENCE:
	case RBD_TAKE_FENCE_MINE:
		log_warnx("volume %s: the lease of %s (%s) expired; fencing it (%s) before taking over", name,
			  h.host[0] ? h.host : "its holder", h.lease.client, m->owners);
		ret = rbd_fence(io, pool, name, m->owners, err);
		if (ret == 0)
			CRASH_POINT("rbd.takeover.after-fence");
		return ret;
	case RBD_TAKE_WAIT:
		log_infox("volume %s is locked by %s %s (%s%s%s): taking it over if that holder is dead", name,
			  m->lock_client[0] ? m->lock_client : "Ceph client", m->owners,
			  h.host[0] ? h.host : "no holder record", h.lease.present ? "; its lease names " : "",
			  h.lease.present ? (h.lease.client[0] ? h.lease.client : "no client") : "");
		break;
	case RBD_TAKE_FREE:
		break;
	}
	return 0;
}

/* --- the holders and release ops ------------------------------------------ */

json_t *rbd_holder_view(const struct rbd_meta *m, time_t now)
{
	json_t *h = m->holder[0] ? json_loads(m->holder, 0, NULL) : NULL;
	json_t *l = m->lease[0] ? json_loads(m->lease, 0, NULL) : NULL;
	json_t *out;

	if (!m->locked && !h) {
		json_decref(l);
		return NULL;
	}
	out = json_is_object(h) ? json_deep_copy(h) : json_object();
	json_decref(h);
	json_object_del(out, "pid");
	if (json_is_object(l)) {
		struct rbd_lease lease;

		rbd_lease_parse(m->lease, &lease);
		json_object_update(out, l);
		json_object_set_new(out, "expired", json_boolean(rbd_lease_expired(&lease, now)));
	}
	json_object_set_new(out, "locked", json_boolean(m->locked));
	if (m->owners[0])
		json_object_set_new(out, "owner", json_string(m->owners));
	json_decref(l);
	return out;
}

int be_rbd_holder(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err)
{
	rados_ioctx_t io = NULL;
	struct rbd_meta m;
	int ret;

	*out = NULL;
	ret = rbd_volume_open(ctx, vol, &io, &m, err);
	if (ret < 0)
		return ret;
	*out = rbd_holder_view(&m, time(NULL));
	rbd_meta_free(&m);
	rados_ioctx_destroy(io);
	return 0;
}

/* Fence the holder of image name (owner, or every owner when NULL) and
 * drop its lease and holder records, so that the next Mount anywhere goes
 * ahead. */
static int break_hold(rados_ioctx_t io, const char *pool, const char *name, const char *owner, struct berr *err)
{
	const char *keys[] = { META_LEASE, META_HOLDER };
	rbd_image_t img = NULL;
	int ret;

	ret = rbd_fence(io, pool, name, owner, err);
	if (ret < 0)
		return ret;
	CRASH_POINT("rbd.release.after-fence");
	ret = rbd_open(io, name, &img, NULL);
	if (ret < 0)
		return berr_set(err, ret, "cannot open image %s/%s: %s", pool, name, strerror(-ret));
	for (size_t i = 0; i < 2 && ret == 0; i++) {
		ret = rbd_metadata_remove(img, keys[i]);
		if (ret == -ENOENT)
			ret = 0;
		if (ret < 0)
			berr_set(err, ret, "cannot drop %s of %s/%s: %s", keys[i], pool, name, strerror(-ret));
	}
	rbd_close(img);
	return ret;
}

/*
 * Break another host's hold by hand: fence its client (blocklist, break
 * the lock), then drop the holder and lease records so that the next
 * Mount anywhere goes ahead.
 */
int be_rbd_release(void *ctx, const struct be_volume *vol, int force, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = rbd_vol_pool(rc, vol->opts);
	struct berr busy = BERR_INIT;
	rados_ioctx_t io = NULL;
	struct rbd_hold h;
	struct rbd_meta m;
	int ret;

	ret = rbd_volume_open(rc, vol, &io, &m, err);
	if (ret < 0)
		return ret;
	rbd_hold_parse(m.holder, m.lease, m.locked, m.lock_client, &h);
	switch (rbd_release_decide(&h, rc->host_id, rbd_mapped(rc, vol->name), force, time(NULL))) {
	case RBD_RELEASE_NOBODY:
		log_infox("volume %s: release asked, but nobody holds it", vol->name);
		break;
	case RBD_RELEASE_MINE:
		ret = berr_set(err, -EBUSY, "volume %s is held by this host (%s): unmount it instead", vol->name,
			       rc->host_id);
		break;
	case RBD_RELEASE_FRESH:
		rbd_in_use(vol->name, m.holder, m.lease, m.owners, &busy);
		ret = berr_set(err, -EBUSY, "%s; its lease is fresh: --force fences that host and breaks its hold",
			       busy.msg);
		break;
	case RBD_RELEASE_OTHER:
		rbd_in_use(vol->name, m.holder, m.lease, m.owners, &busy);
		ret = berr_set(err, -EBUSY,
			       "%s; the expired lease is not its lock owner's (%s): --force fences that owner and "
			       "breaks its hold",
			       busy.msg, m.lock_client[0] ? m.lock_client : m.owners);
		break;
	case RBD_RELEASE_FENCE:
		log_warnx("volume %s: releasing the hold of %s by hand%s", vol->name, h.has_host ? h.host : m.owners,
			  force ? " (forced)" : "");
		/* without force only the expired lease's own client */
		ret = break_hold(io, pool, vol->name, force || !m.locked ? NULL : m.owners, err);
		break;
	}
	rbd_meta_free(&m);
	rados_ioctx_destroy(io);
	return ret;
}

/* --- pure decisions ------------------------------------------------------- */

int rbd_lease_parse(const char *text, struct rbd_lease *l)
{
	json_t *j, *until;

	memset(l, 0, sizeof(*l));
	if (!text || !text[0])
		return -ENOENT;
	j = json_loads(text, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EINVAL;
	}
	until = json_object_get(j, "expires_unix");
	snprintf(l->client, sizeof(l->client), "%s", json_string_value(json_object_get(j, "client")) ?: "");
	l->present = 1;
	l->dated = json_is_integer(until);
	l->expires_unix = l->dated ? (long long)json_integer_value(until) : 0;
	json_decref(j);
	return 0;
}

enum rbd_lease_state rbd_lease_state(const struct rbd_lease *l, time_t now)
{
	if (!l->present)
		return RBD_LEASE_NONE;
	if (!l->dated)
		return RBD_LEASE_UNDATED;
	return l->expires_unix >= (long long)now ? RBD_LEASE_FRESH : RBD_LEASE_EXPIRED;
}

/* An undated record counts as expired here (it promises nothing), while
 * Mount, which fences on an expiry, treats it as no lease at all. */
int rbd_lease_expired(const struct rbd_lease *l, time_t now)
{
	enum rbd_lease_state st = rbd_lease_state(l, now);

	return st == RBD_LEASE_EXPIRED || st == RBD_LEASE_UNDATED;
}

void rbd_hold_parse(const char *holder, const char *lease, int locked, const char *lock_client, struct rbd_hold *h)
{
	json_t *j = holder && holder[0] ? json_loads(holder, 0, NULL) : NULL;
	const char *host = json_string_value(json_object_get(j, "host"));

	memset(h, 0, sizeof(*h));
	h->locked = locked;
	h->recorded = j != NULL;
	h->has_host = host != NULL;
	snprintf(h->host, sizeof(h->host), "%s", host ? host : "");
	json_decref(j);
	rbd_lease_parse(lease, &h->lease);
	h->lease_owns_lock = locked && lock_client && h->lease.client[0] && strcmp(h->lease.client, lock_client) == 0;
}

/*
 * The order matters: a shared=ro volume is mounted read-only beside any
 * holder; another host's fresh lease refuses before the policy is looked
 * at (the message names it either way); "never" refuses any lock, even
 * one this host left behind; only a lock is ever fenced, and only when
 * the lease names the client that owns it: a lease left by an earlier
 * holder says nothing about who holds the lock now.
 */
enum rbd_take rbd_take_decide(const struct rbd_hold *h, const char *self, const char *policy, int shared_ro, time_t now)
{
	enum rbd_lease_state lease = rbd_lease_state(&h->lease, now);
	int never = strcmp(policy, "never") == 0;
	int other = h->host[0] && strcmp(h->host, self) != 0;

	if (h->locked && shared_ro)
		return RBD_TAKE_READ_ONLY;
	if (other && lease == RBD_LEASE_FRESH)
		return RBD_TAKE_REFUSE_FRESH;
	if ((other || h->locked) && never)
		return RBD_TAKE_REFUSE_NEVER;
	if (!h->locked)
		return RBD_TAKE_FREE;
	if (!h->lease_owns_lock)
		return RBD_TAKE_WAIT;
	if (lease == RBD_LEASE_EXPIRED)
		return RBD_TAKE_FENCE;
	if (h->host[0] && !other)
		return RBD_TAKE_FENCE_MINE;
	return RBD_TAKE_WAIT;
}

enum rbd_release rbd_release_decide(const struct rbd_hold *h, const char *self, int mapped_here, int force, time_t now)
{
	int mine = h->has_host && strcmp(h->host, self) == 0;

	if (!h->locked && !h->recorded)
		return RBD_RELEASE_NOBODY;
	if (mine && mapped_here)
		return RBD_RELEASE_MINE;
	if (!force && h->locked && !rbd_lease_expired(&h->lease, now))
		return RBD_RELEASE_FRESH;
	if (!force && h->locked && !h->lease_owns_lock)
		return RBD_RELEASE_OTHER;
	return RBD_RELEASE_FENCE;
}
