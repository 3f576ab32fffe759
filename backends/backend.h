/*
 * backend.h - the contract every ballast backend implements.
 *
 * One const struct backend_ops per backend, registered in backends/registry.c.
 * All functions return 0 or -errno; whatever a user may read goes into the
 * caller's struct berr, which becomes the Err that dockerd shows.
 *
 * Concurrency: the catalog serialises calls per volume name (one lock per
 * volume), so a backend never sees two calls for the same name at once, but
 * calls for different names run in parallel on different threads.
 */
#ifndef BALLAST_BACKEND_H
#define BALLAST_BACKEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

struct ballast_config;
struct config_key;

/* Capability bits: each one is read by the daemon. What a backend can do
 * beyond that is said by the ops it fills in (resize, holder, release...). */
enum backend_caps {
	BE_CAP_GLOBAL = 1u << 0, /* volumes visible from every host: scope "global", lookup before Create */
};

/* is_mounted: mounted, but what serves the mount is gone (see there) */
#define BE_MOUNT_DEAD 2

/*
 * The facts a backend needs about one volume. Borrowed by every op: the
 * catalog owns it. opts is the validated option object given at Create
 * (string values only, never NULL: {} when none were given).
 */
struct be_volume {
	const char *name;
	json_t *opts;
};

/* create's answer for a volume that already existed in a shared cluster. */
#define BE_ADOPTED 1

/* Counters a backend keeps in its context, read by the daemon (metrics). */
struct be_counters {
	unsigned long lease_renewals; /* holders' leases this host renewed */
	unsigned long stuck_calls;    /* calls whose request gave up, still in the cluster's client */
};

struct backend_ops {
	const char *name;
	unsigned caps;
	/* Every Create option the backend takes (NULL-terminated), for
	 * messages, `ballastd --list-options` and the man page's test. */
	const char *const *options;
	/* The keys of the backend's own config section (types, defaults,
	 * ranges), ended by a zeroed entry; NULL when it has none. ballastd
	 * makes them known before it reads the config file. */
	const struct config_key *config_keys;
	/* Why a backend without snapshots has none, for its refusal (or NULL). */
	const char *no_snapshots;

	/*
	 * Long-lived state (cluster handles). init must not block on a cluster:
	 * connect lazily so that ballastd starts and answers Activate even when
	 * the cluster is down. *ctx is passed to every other op.
	 */
	int (*init)(const struct ballast_config *cfg, void **ctx, struct berr *err);
	void (*fini)(void *ctx);

	/* Optional: is the backend set up in the config (a cluster named)?
	 * An unconfigured shared backend does not make the driver global.
	 * NULL means always. */
	int (*configured)(void *ctx);

	/*
	 * Check the options of a Create before anything is made. opts is the
	 * raw object (string values already checked); the backend refuses any
	 * key it does not know, naming it and listing the valid ones.
	 */
	int (*validate_opts)(void *ctx, const json_t *opts, struct berr *err);

	/*
	 * Make the volume. Idempotent: an existing volume made by an earlier,
	 * interrupted Create of the same name is completed, not refused. On
	 * failure it removes whatever it made, and nothing else. Returns 0
	 * when it made the volume, BE_ADOPTED when a shared backend found the
	 * volume already in its cluster (another host's Create: ballastd never
	 * rolls that back), or -errno.
	 */
	int (*create)(void *ctx, const struct be_volume *vol, struct berr *err);

	/*
	 * Optional: make vol as a copy of the volume from (Create with
	 * -o from=VOLUME, for backends whose volumes live on this host). The
	 * daemon has checked from (ready, this backend, mounted nowhere),
	 * holds it for the call, and gave vol from's options besides "from".
	 * As create: on failure nothing of vol is left.
	 */
	int (*create_copy)(void *ctx, const struct be_volume *vol, const struct be_volume *from, struct berr *err);

	/*
	 * Optional: may vol be removed now? The non-destructive checks of
	 * remove (in use or held on another host), run before ballastd
	 * records the Remove, so that a refused Remove leaves nothing that a
	 * restart would carry out later under a live database. 0 when it may,
	 * -EBUSY with a message naming the user when not, another -errno when
	 * it cannot tell. Bounded in time.
	 */
	int (*remove_check)(void *ctx, const struct be_volume *vol, struct berr *err);

	/* Delete the volume and its data. Idempotent: a missing volume is 0.
	 * A volume in use or held on another host is refused with -EBUSY
	 * (and nothing deleted): ballastd then gives up an interrupted Remove
	 * instead of retrying it. */
	int (*remove)(void *ctx, const struct be_volume *vol, struct berr *err);

	/*
	 * Make the volume usable on this host and write the directory to hand
	 * to dockerd into path (size len). Called only when no mount ID uses
	 * the volume yet; must be idempotent (an earlier mount left behind by a
	 * crash is reused).
	 */
	int (*mount)(void *ctx, const struct be_volume *vol, char *path, size_t len, struct berr *err);

	/* Undo mount. Called when the last mount ID leaves. Idempotent. */
	int (*unmount)(void *ctx, const struct be_volume *vol, struct berr *err);

	/*
	 * Is the volume currently made usable on this host? Used at start to
	 * reconcile the catalog with the mount table, and by Mount before it
	 * hands out a mount already there. Returns 1, 0, BE_MOUNT_DEAD
	 * (mounted, but what serves it is gone: every I/O fails; unmount
	 * cleans it up, mount makes it anew) or -errno.
	 */
	int (*is_mounted)(void *ctx, const struct be_volume *vol);

	/* Extra facts for Status (a new reference or NULL). Must be cheap: no
	 * cluster calls. */
	json_t *(*status)(void *ctx, const struct be_volume *vol);

	/* 1 when status depends on the volume's record and this ballastd's
	 * configuration alone, never on live state: a Get answer is then kept
	 * until the volume's next commit. */
	int status_fixed;

	/*
	 * Optional, for global backends: every finished volume this backend
	 * holds in its cluster, as a new JSON array of objects
	 * {"name": s, "options": {s: s}, "created_at": s (RFC 3339)}.
	 * Bounded in time by the backend. ballastd calls it from a background
	 * refresh (never on a request path) so that a volume created or
	 * removed on another host shows in Get and List without a restart.
	 * On error the catalog is left as it is.
	 */
	int (*list)(void *ctx, json_t **out, struct berr *err);

	/*
	 * Optional, for global backends: is name a finished volume in the
	 * cluster (made by another host, perhaps not listed here yet)?
	 * Returns 1 with *item as list gives it, 0 when it is not there, or
	 * -errno. Bounded in time. Asked before dockerd's implicit Create
	 * (no options) makes a volume in a local default backend, so that a
	 * host never shadows a shared volume with an empty local one.
	 */
	int (*lookup)(void *ctx, const char *name, json_t **item, struct berr *err);

	/*
	 * Optional: grow the volume to bytes, and its file system with it,
	 * online when it is mounted here; shrinking is refused. Bounded in
	 * time by the backend. For `ballast resize`.
	 */
	int (*resize)(void *ctx, const struct be_volume *vol, uint64_t bytes, struct berr *err);

	/*
	 * Optional: health checks for `ballast doctor`, as a new JSON array of
	 * {"check": s, "ok": b, "detail": s}: the cluster reachable, tools and
	 * mappers present. Bounded in time by the backend; never changes
	 * anything.
	 */
	json_t *(*check)(void *ctx);

	/*
	 * Optional, for backends where one host at a time holds a volume: who
	 * holds vol, as a new object {"host": s, "since": s, "expires": s,
	 * "expires_unix": i, "lease": i, "expired": b, ...} (what the backend
	 * knows; more keys allowed), or *out = NULL when nobody does or the
	 * volume is not exclusive. Bounded in time. For `ballast holders`.
	 */
	int (*holder)(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err);

	/*
	 * Optional: break another host's hold of vol by hand, fencing that
	 * host first so that it can never write to the volume again. Without
	 * force only an expired lease is broken; a hold by this host is
	 * refused (unmount instead). 0 also when nobody held it. Bounded in
	 * time. For `ballast release`.
	 */
	int (*release)(void *ctx, const struct be_volume *vol, int force, struct berr *err);

	/*
	 * Optional, all four or none: snapshots (`ballast snapshot`). snap
	 * follows the volume-name rule (checked by ballastd). Each is bounded
	 * in time and changes nothing on failure.
	 * snapshot: take snap of vol, crash-consistent: when vol is mounted on
	 * this host its file system is frozen for that moment and always
	 * thawed (by mount.ballast freeze, which outlives a killed ballastd);
	 * a volume another host holds is refused (-EBUSY) naming the holder.
	 * snapshots: vol's snapshots as a new array of {"name": s,
	 * "size_bytes": I, "created_at": s (RFC 3339)}, oldest first.
	 * snapshot_remove: delete snap (-ENOENT when vol has none of that name).
	 * rollback: make vol's data what it was at snap; ballastd calls it
	 * only with no mount on this host; the backend refuses (-EBUSY) a
	 * volume held anywhere.
	 */
	int (*snapshot)(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err);
	int (*snapshots)(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err);
	int (*snapshot_remove)(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err);
	int (*rollback)(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err);
	/* Optional: 0 when vol's file system cannot be frozen for a snapshot
	 * (a plain directory): ballastd then takes one only while no
	 * container on this host uses vol. NULL: always can. */
	int (*freezable)(void *ctx, const struct be_volume *vol);

	/* Optional: the backend's counters since init. Cheap; never blocks.
	 * A backend reports what it did this way, never by calling the
	 * daemon. */
	void (*counters)(void *ctx, struct be_counters *out);
};

/* Append one check result to an array built for backend_ops.check. */
void backend_check_add(json_t *checks, const char *name, int ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* [rbd] conf's default: its presence alone configures the rbd backend. */
#define RBD_DEFAULT_CEPH_CONF "/etc/ceph/ceph.conf"

/* Make every backend's config keys known to cfg (before config_load):
 * local's and those of the modules loaded. 0 or -errno (two backends
 * claiming one key). */
int backend_config_keys(struct ballast_config *cfg);

/* Registry: local, and the shared backends (modules) loaded so far. */
const struct backend_ops *backend_lookup(const char *name);
/* NULL-terminated list of every backend the registry has. */
const struct backend_ops *const *backend_all(void);
/* Is name a backend that comes as a module (rbd, gluster)? */
int backend_is_module(const char *name);
/* Load module name (dlopen of backends/NAME.so beside the program, or
 * ../lib/ballast/NAME.so from its directory) into the registry; loaded
 * already is 0. Before any thread starts. 0 or -errno with a message. */
int backend_load(const char *name, struct berr *err);
/* backend_load of every module; the first failure is returned, the
 * others are still loaded. */
int backend_load_all(struct berr *err);
/* backend_load of each module the configuration uses: given(name, arg)
 * says whether the config file sets a key of section name; rbd is also
 * used when RBD_DEFAULT_CEPH_CONF is there. */
int backend_load_configured(int (*given)(const char *section, void *arg), void *arg, struct berr *err);

#endif
