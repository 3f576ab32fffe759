/*
 * rbd_int.h - the inside of the rbd backend: Ceph RBD volumes that follow
 * the container to any host, with one writer at a time. Shared by its
 * files, in the way QEMU's block/qcow2*.c share qcow2.h:
 *   rbd.c          the ops (Create, Remove, Mount, ...) and be_rbd_ops
 *   rbd_cluster.c  configuration, the cluster connection, options, metadata
 *   rbd_map.c      paths, the FUSE and kernel mappers, attach and detach
 *   rbd_lease.c    holders, leases, takeover, fencing, release
 *   rbd_snap.c     snapshots and clones
 * Only those files include it, and the unit tests (for the pure functions).
 *
 * A volume is the image <pool>/<name>. What ballast knows about it lives
 * with the image as image metadata, so any host's ballastd can list,
 * inspect and mount it with no shared local state:
 *   ballast.options     the Create options, JSON (without "backend")
 *   ballast.fstype      ext4 or xfs
 *   ballast.created_at  RFC 3339
 *   ballast.state       "creating" until Create finished, then "ready"
 *   ballast.holder      {"host","since","pid","lease"} while a host has it
 *                       mounted
 *   ballast.lease       {"client","lease","expires","expires_unix"}, renewed
 *                       every lease/3 s by the holder's mapper; a holder
 *                       that writes none (a kernel mapping) removes the
 *                       one before it, and a lease is only ever acted on
 *                       while the client it names owns the lock
 * Images without ballast.options were not made by ballast: never listed,
 * adopted or deleted.
 *
 * Every function returns 0 or -errno unless its comment says otherwise;
 * what a user may read goes into the caller's struct berr. Strings and
 * objects passed in are borrowed.
 */
#ifndef BALLAST_RBD_INT_H
#define BALLAST_RBD_INT_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "backend.h"
#include "common.h"
#include "config.h"
#include "errors.h"
#include "validate.h"

#define RBD_MAPPER_BIN "ballast-rbd-map"
#define RBD_NAME_MAX 96 /* pool names */

#define META_OPTIONS "ballast.options"
#define META_FSTYPE "ballast.fstype"
#define META_CREATED "ballast.created_at"
#define META_STATE "ballast.state"
#define META_HOLDER "ballast.holder"
#define META_LEASE "ballast.lease"

/* Room for "/rbd/<name>.map.pid" and "/mounts/<name>/data" below state_dir. */
#define RBD_BASE_MAX (PATH_MAX - VOLUME_NAME_MAX - 64)

/* Another host's Create reservation this old is from a Create that died. */
#define RBD_RESERVATION_STALE_S 600

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_UP };

struct rbd_ctx {
	pthread_mutex_t lock; /* guards cluster, state, attempt, last_err */
	pthread_cond_t changed;
	rados_t cluster;
	int requested; /* an [rbd] section in the config */
	enum conn_state state;
	unsigned long attempt;	     /* connect attempts finished */
	char last_err[BERR_MSG_MAX]; /* why the last one failed */

	/* The refresh's memory, "pool/image-id" -> {"item": listed entry} for
	 * finished ballast volumes (their listed facts never change), or
	 * {"checked_ms": n} for images that were not (yet) ballast's. Touched
	 * only by list, which the one refresh thread calls. */
	json_t *list_cache;

	char conf[PATH_MAX], user[64], keyring[PATH_MAX], pool[RBD_NAME_MAX];
	char default_size[32], default_fstype[8], mapper[8], takeover[16], ms_mode[16];
	unsigned timeout, lease;
	char host_id[128];
	char mapdir[RBD_BASE_MAX]; /* <state_dir>/rbd */
	char mounts[RBD_BASE_MAX]; /* <state_dir>/mounts */
	char map_bin[PATH_MAX];	   /* ballast-rbd-map */
	struct helper helper;

	/* Interrupted Creates found at start, name -> false while waiting,
	 * true while being settled; guarded by lock, waited on with
	 * left_done. Settled by left_thread, or by a request for the name. */
	json_t *leftovers;
	pthread_cond_t left_done;
	pthread_t left_thread;
	int left_started;
};

/* What ballast stored with an image; strings NUL-terminated, "" when
 * missing. options is a new reference or NULL (not ballast's image). */
struct rbd_meta {
	json_t *options;
	char fstype[16], created[40], state[16];
	char holder[512], lease[512];
	char owners[256];
	/* the lock owner's Ceph client ("client.N"), "" when unlocked or not
	 * known for sure (several owners, or the lock changed hands while it
	 * was read) */
	char lock_client[64];
	/* "image@snap" when the image is a clone (of that snapshot, in its
	 * own pool), "" when it has no parent */
	char parent[2 * VOLUME_NAME_MAX + 2];
	int locked;
};

/* --- rbd_cluster.c: configuration ----------------------------------------- */

/* The keys of the [rbd] section (backend_ops.config_keys). */
extern const struct config_key rbd_config_keys[];

/* The snapshot a clone is made from (its option "from", VOLUME@SNAPSHOT)
 * into vol and snap (VOLUME_NAME_MAX + 1 bytes each): 1, or 0 when opts
 * has no "from", or -EINVAL for a bad one. */
int rbd_clone_source(const json_t *opts, char *vol, char *snap, struct berr *err);

/* Every Create option the backend takes, NULL-terminated. */
extern const char *const rbd_opts[];

/* backend_ops.init: reads [rbd] and [ballast]; no network I/O (the
 * cluster is connected on first use). *ctx is a struct rbd_ctx. */
int be_rbd_init(const struct ballast_config *cfg, void **ctx, struct berr *err);

/* backend_ops.fini: shuts the cluster handle down and frees ctx (NULL is
 * fine). */
void be_rbd_fini(void *ctx);

/* backend_ops.configured: 1 when the config has an [rbd] section or the
 * Ceph config is readable, else 0. */
int be_rbd_configured(void *ctx);

/* --- rbd_cluster.c: the cluster connection -------------------------------- */

/*
 * The connected cluster handle into *out, connecting on first use; one
 * attempt at a time, bounded by [rbd] timeout. -ETIMEDOUT with the reason
 * when the cluster cannot be reached. Borrowed: valid until fini.
 */
int rbd_cluster_get(struct rbd_ctx *rc, rados_t *out, struct berr *err);

/* An io context on pool into *io (NULL on failure); the caller destroys
 * it with rados_ioctx_destroy. */
int rbd_ioctx_open(struct rbd_ctx *rc, const char *pool, rados_ioctx_t *io, struct berr *err);

/* --- rbd_cluster.c: options ----------------------------------------------- */

/* backend_ops.validate_opts: every Create option checked, the size
 * against the least the file system needs. */
int be_rbd_validate_opts(void *ctx, const json_t *opts, struct berr *err);

/* The pool of a volume: its pool option, else [rbd] pool. Borrowed from
 * opts or rc. opts may be NULL. */
const char *rbd_vol_pool(const struct rbd_ctx *rc, const json_t *opts);

/* The file system of a volume: its fstype option, else [rbd]
 * default_fstype. Borrowed from opts or rc. */
const char *rbd_vol_fstype(const struct rbd_ctx *rc, const json_t *opts);

/* The size of a volume in bytes: its size option, else [rbd]
 * default_size. -EINVAL with the reason when it does not parse. */
int rbd_vol_size(const struct rbd_ctx *rc, const json_t *opts, uint64_t *bytes, struct berr *err);

/* The image features of a volume (its features option, else the default)
 * as librbd's bits. -EINVAL when unknown or without exclusive-lock. */
int rbd_vol_features(const json_t *opts, uint64_t *features, struct berr *err);

/* --- rbd_cluster.c: metadata ---------------------------------------------- */

/* Image metadata key into buf (NUL-terminated). 0, -ENOENT when the key
 * is missing, else librbd's -errno (-ERANGE when buf is too small). No
 * message. */
int rbd_meta_get(rbd_image_t img, const char *key, char *buf, size_t len);

/* Read the image's ballast metadata and lock state into *m (freed with
 * rbd_meta_free on success). -ENOENT, without a message, when the
 * image does not exist. */
int rbd_meta_read(rados_ioctx_t io, const char *pool, const char *name, struct rbd_meta *m, struct berr *err);

/* rbd_meta_read of the open image img (of pool/name, for messages). */
int rbd_meta_read_img(rbd_image_t img, const char *pool, const char *name, struct rbd_meta *m, struct berr *err);

/*
 * For an op on a volume the catalog knows: an io context on vol's pool
 * into *io and its image's metadata into *m (rbd_meta_read), a missing
 * image being -ENOENT with a message for the user. On success the caller
 * destroys *io (rados_ioctx_destroy) and frees m (rbd_meta_free); on
 * failure nothing is left open.
 */
int rbd_volume_open(struct rbd_ctx *rc, const struct be_volume *vol, rados_ioctx_t *io, struct rbd_meta *m,
		    struct berr *err);

/* Set the pairs of kv (key, value, ..., NULL) on image name, in order,
 * stopping at the first failure; a NULL value removes its key (a missing
 * one is no error). Takes and drops the lock cooperatively: -EROFS while
 * another client holds it explicitly. */
int rbd_meta_set(rados_ioctx_t io, const char *pool, const char *name, const char *const *kv, struct berr *err);

/* Release what rbd_meta_read allocated; m may be used again. */
void rbd_meta_free(struct rbd_meta *m);

/* --- rbd_map.c: paths ----------------------------------------------------- */

/* <state_dir>/rbd/<name>.map: the fuse mapper's mount directory. */
void rbd_map_dir(const struct rbd_ctx *rc, const char *name, char *buf, size_t len);

/* <state_dir>/mounts/<name>: where the volume's file system is mounted. */
void rbd_mount_target(const struct rbd_ctx *rc, const char *name, char *buf, size_t len);

/* 1 when name's fuse mapper found itself fenced (another host took the
 * volume over), else 0. */
int rbd_map_fenced(const struct rbd_ctx *rc, const char *name);

/* --- rbd_map.c: mappers --------------------------------------------------- */

/* The pid of name's fuse mapper when it runs, else 0. */
pid_t rbd_mapper_pid(const struct rbd_ctx *rc, const char *name);

/* The mapper Mount uses: [rbd] mapper, where auto is krbd, then nbd,
 * where the kernel has them, else fuse. Static string. */
const char *rbd_mapper_of(const struct rbd_ctx *rc);

/* This host's kernel mapping of name: 1 with the mapper, the device and
 * (pool non-NULL) the pool, 0 when there is none. */
int rbd_kmap_read(const struct rbd_ctx *rc, const char *name, char *mapper, size_t mlen, char *dev, size_t dlen,
		  char *pool, size_t plen);

/* 1 when name is mapped here (a live fuse mapper, or a kernel mapping
 * whose device exists), else 0. */
int rbd_mapped(struct rbd_ctx *rc, const char *name);

/* Map name with the mapper in use; into src what mount.ballast mounts:
 * the fuse mapper's image file (*loop = 1) or the kernel's device. -EBUSY
 * when another client holds the image. */
int rbd_map_image(struct rbd_ctx *rc, const char *name, const char *pool, int read_only, char *src, size_t len,
		  int *loop, struct berr *err);

/* Undo rbd_map_image, whichever mapper made the mapping. Idempotent. */
int rbd_unmap_image(struct rbd_ctx *rc, const char *name, struct berr *err);

/* --- rbd_map.c: Creates under way on this host --------------------------- */

/* Mark that a Create of name is about to map and mount its new image here
 * (<state_dir>/rbd/<name>.creating), so that a crash of ballastd leaves a
 * trace: the mapper it started outlives it. */
int rbd_create_mark(struct rbd_ctx *rc, const char *name, struct berr *err);

/* The Create of name is over (finished or undone): drop its mark. */
void rbd_create_unmark(struct rbd_ctx *rc, const char *name);

/*
 * At start-up: every Create mark left by a ballastd that died is a Create
 * that will never finish (recovery drops its record), so its mapping here
 * is stopped (rbd_detach) and the mark dropped. Stopping a mapper releases
 * its lock in the cluster, which may not answer: the marks are read here
 * (no I/O) and settled by a thread of their own, so that ballastd answers
 * at once. A mapping that cannot be stopped keeps its mark, for the next
 * start. rbd_leftovers_stop waits for that thread (at fini).
 */
int rbd_create_leftovers(struct rbd_ctx *rc, struct berr *err);
void rbd_leftovers_stop(struct rbd_ctx *rc);

/* Before a request maps, unmaps or replaces name: settle its leftover of
 * an interrupted Create first (or wait while the start-up thread does). */
void rbd_leftover_settle(struct rbd_ctx *rc, const char *name);

/* --- rbd_map.c: mount and unmount on this host ---------------------------- */

/* Run mount.ballast with args (NULL-terminated); see helper_run. */
int rbd_run_helper(struct rbd_ctx *rc, const char *const *args, struct berr *err);

/*
 * Map name and mount its file system at <mounts>/name. With perms, the
 * data directory is made (Create); without, it must exist. mount_opts may
 * be NULL. On failure nothing stays mapped.
 */
int rbd_attach(struct rbd_ctx *rc, const char *name, const char *pool, const char *fstype, const char *mount_opts,
	       int read_only, const struct vol_perms *perms, struct berr *err);

/* Unmount the file system (if mounted) and unmap the image. Idempotent. */
int rbd_detach(struct rbd_ctx *rc, const char *name, struct berr *err);

/* --- rbd_map.c: pure helpers ---------------------------------------------- */

/*
 * A line of <name>.dev, "MAPPER DEVICE POOL": 1 with its words in mapper,
 * dev and (pool non-NULL) pool, 0 when the line is not that or mapper
 * does not fit in mlen (dev and pool are cut to their buffers).
 */
int rbd_kmap_parse(const char *line, char *mapper, size_t mlen, char *dev, size_t dlen, char *pool, size_t plen);

/* The reason in ballast-rbd-map's output out: its last non-empty line
 * without the program's "ballast-rbd-map: " prefix, "" when there is
 * none. Trims out in place; the result points into it. */
const char *rbd_mapper_message(char *out);

/* The mount options for a volume into buf: a read-only mount beside a
 * live writer skips journal replay ("ro,noload", xfs "ro,norecovery"),
 * then mount_opts (may be NULL). */
void rbd_mount_opts(const char *fstype, const char *mount_opts, int read_only, char *buf, size_t len);

/* --- rbd_lease.c: holders and fencing ------------------------------------- */

/*
 * -EBUSY with "volume NAME is in use on HOST since TIME (lease until T)"
 * from the ballast.holder and ballast.lease texts ("" when missing), or
 * naming the lock owners when there is no holder record. Pure.
 */
int rbd_in_use(const char *name, const char *holder, const char *lease, const char *owners, struct berr *err);

/* Drop image name's holder record if it names this host. Best effort:
 * errors are ignored (the record is only advice once the lock is gone). */
void rbd_holder_drop_if_ours(struct rbd_ctx *rc, const char *pool, const char *name);

/*
 * Fence the holder of image name's exclusive lock: rbd_lock_break
 * blocklists its Ceph client and breaks the lock. owner is the lock
 * owner's address to fence, and only while it still owns the lock (-EBUSY
 * when the lock has passed to another client meanwhile); NULL fences
 * every owner (an operator's forced release). 0 when nobody holds it.
 */
int rbd_fence(rados_ioctx_t io, const char *pool, const char *name, const char *owner, struct berr *err);

/*
 * Before Mount maps name (whose metadata is m): refuse a fresh hold of
 * another host (-EBUSY naming it), fence an expired one, and set
 * *read_only for a shared=ro volume that is held. 0 to go ahead.
 */
int rbd_take_over(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const char *name, const struct rbd_meta *m,
		  int *read_only, struct berr *err);

/* backend_ops.holder: who holds vol, from its metadata (see backend.h). */
int be_rbd_holder(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err);

/* backend_ops.release: fence the holder of vol and drop its records;
 * without force only an expired lease. */
int be_rbd_release(void *ctx, const struct be_volume *vol, int force, struct berr *err);

/* --- rbd_lease.c: pure decisions ------------------------------------------ */

/* A ballast.lease record, as the holder's mapper writes it. */
struct rbd_lease {
	int present;		/* the text is a JSON object */
	int dated;		/* with an integer expires_unix */
	long long expires_unix; /* 0 unless dated */
	char client[64];	/* the Ceph client it names ("client.N"), "" when none */
};

/* What a lease record promises at a given time. */
enum rbd_lease_state {
	RBD_LEASE_NONE,	   /* no record, or not a JSON object */
	RBD_LEASE_UNDATED, /* a record without an integer expires_unix */
	RBD_LEASE_FRESH,   /* expires_unix >= now: its holder may still write */
	RBD_LEASE_EXPIRED, /* expires_unix < now */
};

/* Parse a ballast.lease text into *l (always filled). 0 for a record,
 * -ENOENT for "" (none), -EINVAL for anything but a JSON object. */
int rbd_lease_parse(const char *text, struct rbd_lease *l);

/* The state of lease l at now (a lease is still fresh in its last
 * second: expires_unix == now). */
enum rbd_lease_state rbd_lease_state(const struct rbd_lease *l, time_t now);

/* 1 when a lease record exists and promises nothing at now (expired, or
 * undated), as `ballast holders` and release show it; 0 when fresh or
 * when there is no record. */
int rbd_lease_expired(const struct rbd_lease *l, time_t now);

/* The hold of an image: its lock and its holder and lease records. */
struct rbd_hold {
	int locked;	/* the exclusive lock has an owner */
	int recorded;	/* there is a holder record (it parses as JSON) */
	int has_host;	/* the holder record names a host */
	char host[128]; /* that host, "" when none */
	struct rbd_lease lease;
	/* the lease names the client that owns the lock: only then does the
	 * lease speak for the lock (a lease left by an earlier holder, under
	 * a holder that writes none, speaks for nobody) */
	int lease_owns_lock;
};

/* The hold from an image's metadata texts ("" when missing), its lock
 * state and its lock owner's client (lock_client, "" when unknown) into
 * *h. Garbage records count as missing. */
void rbd_hold_parse(const char *holder, const char *lease, int locked, const char *lock_client, struct rbd_hold *h);

/* What Mount does about the hold of the volume it maps. */
enum rbd_take {
	RBD_TAKE_FREE,	       /* not locked, no fresh hold of another host: map */
	RBD_TAKE_READ_ONLY,    /* locked, and the volume is shared=ro: map read-only */
	RBD_TAKE_REFUSE_FRESH, /* another host's lease is fresh: refuse, naming it */
	RBD_TAKE_REFUSE_NEVER, /* held, and takeover is "never": refuse, naming the holder */
	RBD_TAKE_FENCE,	       /* locked by the client of a lease that expired: fence it, then map */
	RBD_TAKE_FENCE_MINE,   /* locked by an earlier mapper of this host (its lease's client):
				  fence it, then map */
	RBD_TAKE_WAIT,	       /* locked, no lease of the lock's owner to go by: fence nobody;
				  map, and let the lock request wait for a dead owner's watch
				  to lapse (a live one refuses) */
};

/*
 * The takeover decision for hold h seen from host self, under policy
 * ("never" refuses any hold; anything else, after-lease, takes over once
 * a lease expired) at now. shared_ro: the volume's shared option is "ro".
 * Only the client a lease names is ever fenced, and only while it owns
 * the lock (h->lease_owns_lock).
 */
enum rbd_take rbd_take_decide(const struct rbd_hold *h, const char *self, const char *policy, int shared_ro,
			      time_t now);

/* What `ballast release` does about the hold of a volume. */
enum rbd_release {
	RBD_RELEASE_NOBODY, /* neither locked nor recorded: nothing to do */
	RBD_RELEASE_MINE,   /* held and mapped by this host: refuse, unmount instead */
	RBD_RELEASE_FRESH,  /* locked, its lease not expired (or none), no force: refuse */
	RBD_RELEASE_OTHER,  /* locked, the expired lease is not the lock owner's, no force:
			       refuse (the owner holds no lease that lapsed) */
	RBD_RELEASE_FENCE,  /* fence the holder and drop its records */
};

/* The release decision for hold h from host self, which has the volume
 * mapped (mapped_here) or not, with or without force, at now. */
enum rbd_release rbd_release_decide(const struct rbd_hold *h, const char *self, int mapped_here, int force, time_t now);

/*
 * The hold of an image (metadata m) as `ballast holders` shows it: the
 * holder record without its pid, the lease record's keys, "expired"
 * (rbd_lease_expired at now), "locked" and the lock "owner". A new
 * reference, or NULL when nothing holds the image.
 */
json_t *rbd_holder_view(const struct rbd_meta *m, time_t now);

/* --- rbd.c: pure decisions ------------------------------------------------ */

/* What Create does about an image of the volume's name already there. */
enum rbd_existing {
	RBD_EXISTING_UNLABELLED, /* no metadata, our (or a stale) reservation: replace it */
	RBD_EXISTING_FOREIGN,	 /* no metadata: someone else's image, refuse */
	RBD_EXISTING_ADOPT,	 /* a finished volume, the options asked (or none): adopt */
	RBD_EXISTING_OTHER_OPTS, /* a finished volume with other options: refuse */
	RBD_EXISTING_CREATING,	 /* unfinished and locked: another host creates it, refuse */
	RBD_EXISTING_MINE,	 /* unfinished, locked by this host (its holder record): an
				    interrupted Create here whose mapping outlived ballastd;
				    stop it, then replace the image */
	RBD_EXISTING_UNFINISHED, /* unfinished, unlocked: an interrupted Create, replace it */
};

/* The decision for the existing image m when Create on host self asks for
 * options want ({} when none were given). reserved: there is a Create
 * reservation of the name this host may take over
 * (rbd_reservation_takeable). */
enum rbd_existing rbd_existing_decide(const struct rbd_meta *m, const json_t *want, int reserved, const char *self);

/* 1 when m's labels are its parent's, copied by librbd when the image was
 * cloned, and not yet replaced by its own: ballast's clones name their
 * parent in the option "from". */
int rbd_labels_copied(const struct rbd_meta *m);

/* 1 when m is a finished ballast volume: its own labels, "ready". */
int rbd_meta_finished(const struct rbd_meta *m);

/* 1 when a Create reservation with body text (JSON {"host","time"}) may be
 * taken over by host self at now: it is self's, or older than
 * RBD_RESERVATION_STALE_S. A body that does not parse counts as stale. */
int rbd_reservation_takeable(const char *body, const char *self, time_t now);

/* --- rbd_snap.c: snapshots (the ops of backend.h) ------------------------ */

int be_rbd_snapshot(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err);
int be_rbd_snapshots(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err);
int be_rbd_snapshot_remove(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err);
int be_rbd_rollback(void *ctx, const struct be_volume *vol, const char *snap, struct berr *err);

/* The parent of the clone vol asks for (from=VOLUME@SNAPSHOT, in the
 * clone's pool): a finished ballast volume with that snapshot, which is
 * protected here if it is not yet (clones of format 1 need it; removing
 * the snapshot unprotects it). Its file system type into fstype. */
int rbd_clone_parent(rados_ioctx_t io, const char *pool, const struct be_volume *vol, char *fstype, size_t len,
		     struct berr *err);

/* Detach the new clone vol from its parent (flatten=true): its data
 * copied, within RBD_FLATTEN_MAX_S. */
int rbd_clone_flatten(rados_ioctx_t io, const char *pool, const struct be_volume *vol, struct berr *err);

/* A Remove of vol refused (-EBUSY, naming them) while it has snapshots;
 * 0 when it has none (or no image), -errno when they cannot be read. */
int rbd_snap_refuse_remove(struct rbd_ctx *rc, const struct be_volume *vol, struct berr *err);

#endif
