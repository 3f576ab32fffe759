/*
 * rbd.c - Ceph RBD volumes that follow the container to any host, with one
 * writer at a time.
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
 *                       every lease/3 s by the holder's mapper
 * Images without ballast.options were not made by ballast: never listed,
 * adopted or deleted.
 *
 * Mapping: on this kind of machine there is no krbd and no nbd, so the
 * image is served as a file by ballast-rbd-map (FUSE on librbd, a process
 * of its own that outlives ballastd) and loop-mounted by mount.ballast at
 * <state_dir>/mounts/<name>; dockerd gets its data/ subdirectory. The
 * mapper takes the image's exclusive lock explicitly, so any other
 * client's write fails with EROFS, and it writes ballast.holder itself:
 * only the lock owner may change image metadata while the lock is held.
 * Its mount directory is <state_dir>/rbd/<name>.map, its pid file
 * <state_dir>/rbd/<name>.map.pid; <name>.map.fenced appears when it finds
 * itself fenced.
 *
 * Leases and fencing: while another host's lease is fresh, Mount is
 * refused at once, naming that host. Once it has expired (the holder is
 * dead or cut off from the cluster) and takeover is allowed ([rbd]
 * takeover, or the volume's -o takeover), the holder is fenced before this
 * host maps: rbd_lock_break blocklists its Ceph client (its writes then
 * fail in the OSDs, even after it comes back) and breaks its lock. The
 * mapper also stops writing by itself once its lease has lapsed locally.
 *
 * One rados_t for the daemon's life, connected on first use (init does no
 * network I/O so ballastd answers Activate while Ceph is down), with
 * client_mount_timeout, rados_mon_op_timeout and rados_osd_op_timeout set
 * from [rbd] timeout so that no call waits forever. An io context per call.
 */
#define LOG_TAG "rbd"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "common.h"
#include "config.h"
#include "crashpoint.h"
#include "fsutil.h"
#include "log.h"
#include "timeutil.h"
#include "validate.h"

extern char **environ;

#define RBD_DEFAULT_CONF "/etc/ceph/ceph.conf"
#define RBD_DEFAULT_USER "admin"
#define RBD_DEFAULT_POOL "rbd"
#define RBD_DEFAULT_TIMEOUT "10"
#define RBD_DEFAULT_SIZE "10G"
#define RBD_DEFAULT_FSTYPE "ext4"
#define RBD_DEFAULT_MAPPER "auto"
#define RBD_DEFAULT_LEASE "30"
#define RBD_DEFAULT_TAKEOVER "after-lease"
/* How long a Remove waits for passing or dead watchers of an image. */
#define RBD_REMOVE_WAIT_S 40
#define RBD_DEFAULT_FEATURES "layering,exclusive-lock"
#define RBD_MAPPER_BIN "ballast-rbd-map"
/* mkfs.ext4 needs a few MiB; mkfs.xfs refuses anything under 300 MiB. */
#define RBD_MIN_EXT4 (16ULL << 20)
#define RBD_MIN_XFS (300ULL << 20)
#define RBD_META_MAX 4096
#define RBD_NAME_MAX 96 /* pool names */

#define META_OPTIONS "ballast.options"
#define META_FSTYPE "ballast.fstype"
#define META_CREATED "ballast.created_at"
#define META_STATE "ballast.state"
#define META_HOLDER "ballast.holder"
#define META_LEASE "ballast.lease"

/* Room for "/rbd/<name>.map.pid" and "/mounts/<name>/data" below state_dir. */
#define RBD_BASE_MAX (PATH_MAX - VOLUME_NAME_MAX - 64)

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
};

static const char *const rbd_opts[] = { "backend",	"data-pool", "features",      "fstype", "gid",
					"mkfs-options", "mode",	     "mount-options", "pool",	"shared",
					"size",		"takeover",  "uid",	      NULL };

static const char *const fstype_choices[] = { "ext4", "xfs", NULL };
static const char *const mapper_choices[] = { "auto", "krbd", "nbd", "fuse", NULL };
static const char *const ms_mode_choices[] = { "legacy", "crc", "secure", "prefer-crc", "prefer-secure", NULL };
static const char *const shared_choices[] = { "ro", "no", NULL };

/* ---- configuration ---- */

/* [rbd] key, or def when the key is unset (or unknown to config.c). */
static const char *cfg_str(const struct ballast_config *cfg, const char *key, const char *def)
{
	const char *v = config_get(cfg, "rbd", key);

	return v && v[0] ? v : def;
}

static int cfg_copy(char *dst, size_t len, const char *key, const char *v, struct berr *err)
{
	if ((size_t)snprintf(dst, len, "%s", v) >= len)
		return berr_set(err, -ENAMETOOLONG, "[rbd] %s is too long", key);
	return 0;
}

static int cfg_uint(const char *key, const char *v, unsigned max, unsigned *out, struct berr *err)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n == 0 || n > max)
		return berr_set(err, -EINVAL, "[rbd] %s = %s: expected a whole number 1..%u", key, v, max);
	*out = (unsigned)n;
	return 0;
}

/* ballast-rbd-map next to mount.ballast, else next to ballastd, else in
 * /usr/sbin. */
static void find_mapper(struct rbd_ctx *rc)
{
	char self[PATH_MAX];
	char *slash;
	ssize_t n;

	snprintf(self, sizeof(self), "%s", rc->helper.path);
	slash = strrchr(self, '/');
	if (slash) {
		snprintf(slash + 1, sizeof(self) - (size_t)(slash + 1 - self), RBD_MAPPER_BIN);
		if (access(self, X_OK) == 0)
			goto found;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			snprintf(slash + 1, sizeof(self) - (size_t)(slash + 1 - self), RBD_MAPPER_BIN);
			if (access(self, X_OK) == 0)
				goto found;
		}
	}
	snprintf(self, sizeof(self), "/usr/sbin/" RBD_MAPPER_BIN);
found:
	snprintf(rc->map_bin, sizeof(rc->map_bin), "%s", self);
}

/*
 * No network I/O here: the cluster is connected on first use.
 */
static int be_rbd_init(const struct ballast_config *cfg, void **ctx, struct berr *err)
{
	struct rbd_ctx *rc = calloc(1, sizeof(*rc));
	const char *state = config_get(cfg, "ballast", "state_dir");
	int ret;

	if (!rc)
		return berr_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->changed, NULL);
	rc->requested = config_section_given(cfg, "rbd");
	ret = cfg_copy(rc->conf, sizeof(rc->conf), "conf", cfg_str(cfg, "conf", RBD_DEFAULT_CONF), err);
	if (!ret)
		ret = cfg_copy(rc->user, sizeof(rc->user), "user", cfg_str(cfg, "user", RBD_DEFAULT_USER), err);
	if (!ret)
		ret = cfg_copy(rc->keyring, sizeof(rc->keyring), "keyring", cfg_str(cfg, "keyring", ""), err);
	if (!ret)
		ret = cfg_copy(rc->pool, sizeof(rc->pool), "pool", cfg_str(cfg, "pool", RBD_DEFAULT_POOL), err);
	if (!ret)
		ret = cfg_copy(rc->default_size, sizeof(rc->default_size), "default_size",
			       cfg_str(cfg, "default_size", RBD_DEFAULT_SIZE), err);
	if (!ret)
		ret = cfg_copy(rc->default_fstype, sizeof(rc->default_fstype), "default_fstype",
			       cfg_str(cfg, "default_fstype", RBD_DEFAULT_FSTYPE), err);
	if (!ret)
		ret = cfg_copy(rc->mapper, sizeof(rc->mapper), "mapper", cfg_str(cfg, "mapper", RBD_DEFAULT_MAPPER),
			       err);
	if (!ret)
		ret = cfg_copy(rc->takeover, sizeof(rc->takeover), "takeover",
			       cfg_str(cfg, "takeover", RBD_DEFAULT_TAKEOVER), err);
	if (!ret)
		ret = cfg_copy(rc->ms_mode, sizeof(rc->ms_mode), "ms_mode", cfg_str(cfg, "ms_mode", ""), err);
	if (!ret)
		ret = cfg_copy(rc->host_id, sizeof(rc->host_id), "host_id",
			       config_get(cfg, "ballast", "host_id") ? config_get(cfg, "ballast", "host_id")
								     : "localhost",
			       err);
	if (!ret)
		ret = cfg_uint("timeout", cfg_str(cfg, "timeout", RBD_DEFAULT_TIMEOUT), 600, &rc->timeout, err);
	if (!ret)
		ret = cfg_uint("lease", cfg_str(cfg, "lease", RBD_DEFAULT_LEASE), 3600, &rc->lease, err);
	if (ret < 0)
		goto out_free;
	ret = check_choice("rbd", "default_fstype", rc->default_fstype, fstype_choices, err);
	if (!ret)
		ret = check_choice("rbd", "mapper", rc->mapper, mapper_choices, err);
	if (!ret)
		ret = check_choice("rbd", "takeover", rc->takeover, takeover_choices, err);
	if (!ret && rc->ms_mode[0])
		ret = check_choice("rbd", "ms_mode", rc->ms_mode, ms_mode_choices, err);
	if (ret < 0)
		goto out_free;
	{
		uint64_t bytes;

		ret = parse_size(rc->default_size, &bytes, err);
		if (ret < 0)
			goto out_free;
	}
	if ((size_t)snprintf(rc->mapdir, sizeof(rc->mapdir), "%s/rbd", state) >= sizeof(rc->mapdir) ||
	    (size_t)snprintf(rc->mounts, sizeof(rc->mounts), "%s/mounts", state) >= sizeof(rc->mounts)) {
		ret = berr_set(err, -ENAMETOOLONG, "state_dir is too long");
		goto out_free;
	}
	ret = helper_init(&rc->helper, cfg, err);
	if (ret < 0)
		goto out_free;
	find_mapper(rc);
	*ctx = rc;
	return 0;
out_free:
	pthread_cond_destroy(&rc->changed);
	pthread_mutex_destroy(&rc->lock);
	free(rc);
	return ret;
}

/* Set up when the config has an [rbd] section or there is a Ceph config
 * to read: on a host with neither the rbd backend is unused, and does not
 * make the driver global. */
static int be_rbd_configured(void *ctx)
{
	const struct rbd_ctx *rc = ctx;

	return rc->requested || access(rc->conf, R_OK) == 0;
}

static void be_rbd_fini(void *ctx)
{
	struct rbd_ctx *rc = ctx;

	if (!rc)
		return;
	if (rc->cluster)
		rados_shutdown(rc->cluster);
	rc->cluster = NULL;
	json_decref(rc->list_cache);
	pthread_cond_destroy(&rc->changed);
	pthread_mutex_destroy(&rc->lock);
	free(rc);
}

/* ---- the cluster connection ---- */

/* One connect attempt, outside the lock. Returns a handle or NULL with
 * the reason in msg. */
static rados_t cluster_connect(const struct rbd_ctx *rc, char *msg, size_t len)
{
	rados_t cl = NULL;
	char t[16];
	int ret;

	ret = rados_create(&cl, rc->user);
	if (ret < 0) {
		snprintf(msg, len, "cannot make a Ceph handle for client.%s: %s", rc->user, strerror(-ret));
		return NULL;
	}
	ret = rados_conf_read_file(cl, rc->conf);
	if (ret < 0) {
		snprintf(msg, len, "cannot read Ceph config %.120s: %s", rc->conf, strerror(-ret));
		goto out_shutdown;
	}
	snprintf(t, sizeof(t), "%u", rc->timeout);
	if ((ret = rados_conf_set(cl, "client_mount_timeout", t)) < 0 ||
	    (ret = rados_conf_set(cl, "rados_mon_op_timeout", t)) < 0 ||
	    (ret = rados_conf_set(cl, "rados_osd_op_timeout", t)) < 0 ||
	    (rc->keyring[0] && (ret = rados_conf_set(cl, "keyring", rc->keyring)) < 0)) {
		snprintf(msg, len, "cannot set Ceph options: %s", strerror(-ret));
		goto out_shutdown;
	}
	ret = rados_connect(cl);
	if (ret < 0) {
		snprintf(msg, len, "cannot connect to the Ceph cluster (%.100s) as client.%.40s within %u s: %s",
			 rc->conf, rc->user, rc->timeout, strerror(-ret));
		goto out_shutdown;
	}
	return cl;
out_shutdown:
	rados_shutdown(cl);
	return NULL;
}

/*
 * The connected cluster handle, connecting it on first use. One attempt
 * runs at a time, without the lock held; callers that arrive meanwhile
 * wait for it and share its outcome instead of queueing attempts of their
 * own, so that no request waits longer than one [rbd] timeout (the
 * background refresh keeps trying while the cluster is down). A failed
 * attempt is not cached: the next caller tries again. Borrowed: valid for
 * the daemon's life. Returns 0 or -errno with a message.
 */
static int cluster_get(struct rbd_ctx *rc, rados_t *out, struct berr *err)
{
	char msg[BERR_MSG_MAX] = "";
	unsigned long seen;
	long t0;
	rados_t cl;
	int ret = 0;

	pthread_mutex_lock(&rc->lock);
	if (rc->state == CONN_CONNECTING) {
		seen = rc->attempt;
		while (rc->state == CONN_CONNECTING && rc->attempt == seen)
			pthread_cond_wait(&rc->changed, &rc->lock);
		if (rc->state != CONN_UP) {
			ret = berr_set(err, -ETIMEDOUT, "%s", rc->last_err);
			goto out_unlock;
		}
	}
	if (rc->state == CONN_UP)
		goto out_unlock;
	rc->state = CONN_CONNECTING;
	pthread_mutex_unlock(&rc->lock);

	t0 = monotonic_ms();
	cl = cluster_connect(rc, msg, sizeof(msg));

	pthread_mutex_lock(&rc->lock);
	rc->attempt++;
	if (cl) {
		rc->cluster = cl;
		rc->state = CONN_UP;
		log_infox("connected to the Ceph cluster (%s) as client.%s in %ld ms", rc->conf, rc->user,
			  monotonic_ms() - t0);
	} else {
		rc->state = CONN_IDLE;
		snprintf(rc->last_err, sizeof(rc->last_err), "%s", msg);
		ret = berr_set(err, -ETIMEDOUT, "%s", msg);
		log_debugx("%s (after %ld ms)", msg, monotonic_ms() - t0);
	}
	pthread_cond_broadcast(&rc->changed);
out_unlock:
	if (ret == 0)
		*out = rc->cluster;
	pthread_mutex_unlock(&rc->lock);
	return ret;
}

static const char *vol_pool(const struct rbd_ctx *rc, const json_t *opts)
{
	const char *p = opts ? opt_get(opts, "pool") : NULL;

	return p ? p : rc->pool;
}

/* An io context on pool; the caller destroys it. */
static int ioctx_open(struct rbd_ctx *rc, const char *pool, rados_ioctx_t *io, struct berr *err)
{
	rados_t cl = NULL;
	int ret;

	ret = cluster_get(rc, &cl, err);
	if (ret < 0)
		return ret;
	ret = rados_ioctx_create(cl, pool, io);
	if (ret < 0) {
		*io = NULL;
		return berr_set(err, ret, "cannot open Ceph pool %s: %s", pool,
				ret == -ENOENT ? "no such pool" : strerror(-ret));
	}
	return 0;
}

/*
 * Image metadata key into buf (NUL-terminated). 0, -ENOENT when the key is
 * missing, else -errno. librbd does not terminate the value and does not
 * update len on success: zero the buffer and pass one byte less.
 */
static int meta_get(rbd_image_t img, const char *key, char *buf, size_t len)
{
	size_t n = len - 1;

	memset(buf, 0, len);
	return rbd_metadata_get(img, key, buf, &n);
}

/* The image's lock owners ("addr, addr") into buf: 1 when owned, 0 when
 * not, else -errno. */
static int lock_owned(rbd_image_t img, char *buf, size_t len)
{
	char *owners[8];
	size_t n = sizeof(owners) / sizeof(owners[0]), off = 0;
	rbd_lock_mode_t mode;
	int ret;

	buf[0] = '\0';
	ret = rbd_lock_get_owners(img, &mode, owners, &n);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++) {
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", owners[i]);
		if (off >= len)
			off = len - 1;
	}
	rbd_lock_get_owners_cleanup(owners, n);
	return n > 0;
}

/* "volume NAME is in use on HOST since TIME (lease until T)" from the
 * ballast.holder and ballast.lease records (or the lock owner's address
 * when there is no holder record). */
static int in_use(const char *name, const char *holder, const char *lease, const char *owners, struct berr *err)
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

/* ---- options ---- */

/* Pool names go into argv and error messages: keep them plain. */
static int check_pool_name(const char *what, const char *v, struct berr *err)
{
	size_t n = strlen(v);

	if (n == 0 || n >= RBD_NAME_MAX || v[0] == '-' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz"
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789_.-") != n)
		return berr_set(err, -EINVAL, "invalid %s \"%.40s\": letters, digits, _ . - only", what, v);
	return 0;
}

static const char *vol_fstype(const struct rbd_ctx *rc, const json_t *opts)
{
	const char *f = opt_get(opts, "fstype");

	return f ? f : rc->default_fstype;
}

static int vol_size(const struct rbd_ctx *rc, const json_t *opts, uint64_t *bytes, struct berr *err)
{
	const char *s = opt_get(opts, "size");

	return parse_size(s ? s : rc->default_size, bytes, err);
}

static int vol_features(const json_t *opts, uint64_t *features, struct berr *err)
{
	const char *f = opt_get(opts, "features");

	if (!f)
		f = RBD_DEFAULT_FEATURES;
	if (strspn(f, "abcdefghijklmnopqrstuvwxyz-,") != strlen(f) || rbd_features_from_string(f, features) < 0)
		return berr_set(err, -EINVAL, "invalid features \"%.60s\": e.g. layering,exclusive-lock", f);
	if (!(*features & RBD_FEATURE_EXCLUSIVE_LOCK))
		return berr_set(err, -EINVAL,
				"features \"%.60s\" lack exclusive-lock: ballast needs it to guarantee one writer", f);
	return 0;
}

static int be_rbd_validate_opts(void *ctx, const json_t *opts, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *fstype = vol_fstype(rc, opts), *v;
	struct vol_perms perms;
	uint64_t bytes, features, min;
	int ret;

	ret = validate_opt_keys(opts, "rbd", rbd_opts, err);
	if (ret == 0)
		ret = parse_perms(opts, &perms, err);
	if (ret == 0)
		ret = vol_features(opts, &features, err);
	if (ret < 0)
		return ret;
	if ((ret = check_choice(NULL, "fstype", fstype, fstype_choices, err)) < 0)
		return ret;
	if ((v = opt_get(opts, "pool")) && (ret = check_pool_name("pool", v, err)) < 0)
		return ret;
	if ((v = opt_get(opts, "data-pool")) && (ret = check_pool_name("data-pool", v, err)) < 0)
		return ret;
	if ((v = opt_get(opts, "shared")) && (ret = check_choice(NULL, "shared", v, shared_choices, err)) < 0)
		return ret;
	if ((v = opt_get(opts, "takeover")) && (ret = check_choice(NULL, "takeover", v, takeover_choices, err)) < 0)
		return ret;
	/* mkfs-options and mount-options are checked by mount.ballast's own
	 * whitelist when Create formats and mounts the volume once. Here only
	 * what could never pass: */
	if ((v = opt_get(opts, "mkfs-options")) &&
	    (strlen(v) > 200 ||
	     strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=.:^-, ") != strlen(v)))
		return berr_set(err, -EINVAL, "invalid mkfs-options \"%.60s\"", v);
	if ((v = opt_get(opts, "mount-options")) &&
	    (strlen(v) > 200 ||
	     strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=.,-") != strlen(v)))
		return berr_set(err, -EINVAL, "invalid mount-options \"%.60s\"", v);
	ret = vol_size(rc, opts, &bytes, err);
	if (ret < 0)
		return ret;
	min = strcmp(fstype, "xfs") == 0 ? RBD_MIN_XFS : RBD_MIN_EXT4;
	if (bytes < min)
		return berr_set(err, -EINVAL, "size %s is too small for %s; the least is %llu MiB",
				opt_get(opts, "size") ? opt_get(opts, "size") : rc->default_size, fstype,
				(unsigned long long)(min >> 20));
	return 0;
}

/* ---- paths and the mapper process ---- */

static void map_dir(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.map", rc->mapdir, name);
}

static void map_pidfile(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.map.pid", rc->mapdir, name);
}

/* Created by the mapper when it finds itself fenced. */
static void map_fencedfile(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.map.fenced", rc->mapdir, name);
}

static int map_fenced(const struct rbd_ctx *rc, const char *name)
{
	char path[PATH_MAX];

	map_fencedfile(rc, name, path, sizeof(path));
	return access(path, F_OK) == 0;
}

static void mount_target(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", rc->mounts, name);
}

/* Does pid run? A zombie does not: the mapper is re-parented to init,
 * which may take seconds to reap it. */
static int alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	int ret = 0;

	if (kill(pid, 0) < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		ret = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return ret;
}

/* The first line of a small file into buf (without its newline); 0, or
 * -1 when the file cannot be read. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The pid of name's mapper if it runs, else 0. */
static pid_t mapper_pid(const struct rbd_ctx *rc, const char *name)
{
	char path[PATH_MAX], buf[32] = "", comm[64] = "", *end;
	FILE *f;
	long pid;

	map_pidfile(rc, name, path, sizeof(path));
	if (read_line(path, buf, sizeof(buf)) < 0)
		return 0;
	pid = strtol(buf, &end, 10);
	if (pid <= 1 || (*end && *end != '\n') || !alive((pid_t)pid))
		return 0;
	/* a recycled pid belongs to some other program */
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, RBD_MAPPER_BIN, 15) == 0 ? (pid_t)pid : 0;
}

/* The arguments naming the cluster and the image, as ballast-rbd-map and
 * mount.ballast map both take them (10 at most), from argv[argc]; the new
 * argc. */
static int image_args(const struct rbd_ctx *rc, const char *pool, const char *name, const char **argv, int argc)
{
	argv[argc++] = "--conf";
	argv[argc++] = rc->conf;
	argv[argc++] = "--id";
	argv[argc++] = rc->user;
	if (rc->keyring[0]) {
		argv[argc++] = "--keyring";
		argv[argc++] = rc->keyring;
	}
	argv[argc++] = "--pool";
	argv[argc++] = pool;
	argv[argc++] = "--image";
	argv[argc++] = name;
	return argc;
}

/*
 * Run ballast-rbd-map for the image and wait (bounded) until it reports:
 * it exits once the FUSE file is served, leaving its daemon behind. Its
 * one stderr line becomes the error.
 */
static int mapper_start(struct rbd_ctx *rc, const char *name, const char *pool, int read_only, struct berr *err)
{
	char dir[PATH_MAX], pidfile[PATH_MAX], t[16], lease[16], holder[512], since[40];
	const char *argv[24];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char out[1024] = "";
	size_t used = 0;
	int argc = 0, pipefd[2], status = 0, killed = 0, ret;
	long deadline;
	pid_t pid;

	map_dir(rc, name, dir, sizeof(dir));
	map_pidfile(rc, name, pidfile, sizeof(pidfile));
	ret = mkdir_p(dir, 0700);
	if (ret < 0)
		return berr_set(err, ret, "cannot create %s: %s", dir, strerror(-ret));
	rfc3339_now(since, sizeof(since));
	{
		json_t *h = json_pack("{s:s, s:s, s:I, s:I}", "host", rc->host_id, "since", since, "pid",
				      (json_int_t)getpid(), "lease", (json_int_t)rc->lease);
		char *s = h ? json_dumps(h, JSON_COMPACT) : NULL;

		snprintf(holder, sizeof(holder), "%s", s ? s : "{}");
		free(s);
		json_decref(h);
	}
	snprintf(t, sizeof(t), "%u", rc->timeout);
	snprintf(lease, sizeof(lease), "%u", rc->lease);
	argv[argc++] = rc->map_bin;
	argc = image_args(rc, pool, name, argv, argc);
	argv[argc++] = "--timeout";
	argv[argc++] = t;
	argv[argc++] = "--pidfile";
	argv[argc++] = pidfile;
	if (read_only) {
		argv[argc++] = "--read-only";
	} else {
		argv[argc++] = "--holder";
		argv[argc++] = holder;
		argv[argc++] = "--lease";
		argv[argc++] = lease;
	}
	argv[argc++] = dir;
	argv[argc] = NULL;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return berr_set(err, -errno, "cannot run %s: %s", rc->map_bin, strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
	/* ballastd blocks the signals it waits for; the mapper must get
	 * SIGTERM to stop cleanly, so it starts with none blocked. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	ret = posix_spawn(&pid, rc->map_bin, &fa, &attr, (char *const *)argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (ret != 0) {
		close(pipefd[0]);
		return berr_set(err, -ret, "cannot run %s: %s", rc->map_bin, strerror(ret));
	}
	/*
	 * A dead holder's lock is taken over only when its watch expires
	 * (~30 s after the crash): allow for that beyond the op timeout.
	 */
	deadline = monotonic_ms() + (long)(rc->timeout + rc->lease + 5) * 1000L;
	for (;;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		long left = deadline - monotonic_ms();
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			break;
		if (!pfd.revents)
			continue;
		n = read(pipefd[0], out + used, sizeof(out) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
		out[used] = '\0';
		if (used == sizeof(out) - 1)
			used = 0; /* keep reading; the last line matters */
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (killed)
		return berr_set(err, -ETIMEDOUT, "mapping image %s/%s did not finish within %u s", pool, name,
				rc->timeout + rc->lease + 5);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	{
		char *end = out + strlen(out), *start;

		while (end > out && (end[-1] == '\n' || end[-1] == ' '))
			*--end = '\0';
		start = strrchr(out, '\n');
		start = start ? start + 1 : out;
		if (strncmp(start, RBD_MAPPER_BIN ": ", strlen(RBD_MAPPER_BIN) + 2) == 0)
			start += strlen(RBD_MAPPER_BIN) + 2;
		return berr_set(err, WIFEXITED(status) && WEXITSTATUS(status) == 1 ? -EBUSY : -EIO,
				"cannot map image %s/%s: %s", pool, name,
				start[0] ? start : "the mapper failed with no message");
	}
}

/* Stop name's mapper: SIGTERM (it flushes, clears the holder, releases
 * the lock), wait; SIGKILL and a lazy FUSE unmount if it hangs. */
static int mapper_stop(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char dir[PATH_MAX], pidfile[PATH_MAX];
	pid_t pid = mapper_pid(rc, name);
	long deadline = monotonic_ms() + (long)(rc->timeout + 5) * 1000L;
	int ret = 0;

	map_dir(rc, name, dir, sizeof(dir));
	map_pidfile(rc, name, pidfile, sizeof(pidfile));
	if (pid > 0) {
		kill(pid, SIGTERM);
		while (alive(pid) && monotonic_ms() < deadline)
			usleep(10 * 1000);
		if (alive(pid)) {
			log_warnx("mapper of %s (pid %ld) did not stop on SIGTERM: SIGKILL", name, (long)pid);
			kill(pid, SIGKILL);
			ret = berr_set(err, -ETIMEDOUT,
				       "the mapper of volume %s did not stop within %u s; killed (its lock is "
				       "released when its watch expires)",
				       name, rc->timeout + 5);
		}
	}
	/* after a SIGKILL (or a crash) the FUSE mount is left behind */
	if (is_mountpoint(dir) == 1 && umount2(dir, MNT_DETACH) < 0)
		log_warn("cannot unmount %s", dir);
	unlink(pidfile);
	map_fencedfile(rc, name, pidfile, sizeof(pidfile));
	unlink(pidfile);
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_warn("cannot remove %s", dir);
	return ret;
}

/* ---- metadata ---- */

/* What ballast stored with an image; strings NUL-terminated, "" when
 * missing. options is a new reference or NULL (not ballast's image). */
struct rbd_meta {
	json_t *options;
	char fstype[16], created[40], state[16];
	char holder[512], lease[512];
	char owners[256];
	int locked;
};

static void meta_free(struct rbd_meta *m)
{
	json_decref(m->options);
	m->options = NULL;
}

/*
 * Read the image's ballast metadata and lock state. Returns 0, -ENOENT
 * when the image does not exist, else -errno with a message.
 */
static int meta_read(rados_ioctx_t io, const char *pool, const char *name, struct rbd_meta *m, struct berr *err)
{
	char buf[RBD_META_MAX];
	rbd_image_t img = NULL;
	int ret;

	memset(m, 0, sizeof(*m));
	/* not read-only: rbd_lock_get_owners refuses (EINVAL) on such a
	 * handle. Opening does not take the lock; only a write would. */
	ret = rbd_open(io, name, &img, NULL);
	if (ret == -ENOENT)
		return ret;
	if (ret < 0)
		return berr_set(err, ret, "cannot open image %s/%s: %s", pool, name, strerror(-ret));
	ret = meta_get(img, META_OPTIONS, buf, sizeof(buf));
	if (ret == 0)
		m->options = json_loads(buf, 0, NULL);
	else if (ret != -ENOENT)
		goto out_err;
	if ((ret = meta_get(img, META_FSTYPE, m->fstype, sizeof(m->fstype))) < 0 && ret != -ENOENT)
		goto out_err;
	if ((ret = meta_get(img, META_CREATED, m->created, sizeof(m->created))) < 0 && ret != -ENOENT)
		goto out_err;
	if ((ret = meta_get(img, META_STATE, m->state, sizeof(m->state))) < 0 && ret != -ENOENT)
		goto out_err;
	if ((ret = meta_get(img, META_HOLDER, m->holder, sizeof(m->holder))) < 0 && ret != -ENOENT)
		goto out_err;
	if ((ret = meta_get(img, META_LEASE, m->lease, sizeof(m->lease))) < 0 && ret != -ENOENT)
		goto out_err;
	ret = lock_owned(img, m->owners, sizeof(m->owners));
	if (ret < 0)
		goto out_err;
	m->locked = ret;
	ret = 0;
	goto out_close;
out_err:
	berr_set(err, ret, "cannot read the metadata of image %s/%s: %s", pool, name, strerror(-ret));
	meta_free(m);
out_close:
	rbd_close(img);
	return ret;
}

/* meta_read of a volume the catalog knows, where a missing image is the
 * user's error to read about, not a quiet -ENOENT. */
static int meta_read_volume(rados_ioctx_t io, const char *pool, const char *name, struct rbd_meta *m, struct berr *err)
{
	int ret = meta_read(io, pool, name, m, err);

	if (ret == -ENOENT)
		ret = berr_set(err, -ENOENT, "volume %s: image %s/%s does not exist", name, pool, name);
	return ret;
}

/* Set key=value on image name (takes and drops the lock cooperatively:
 * only while nobody holds it explicitly). */
static int meta_set(rados_ioctx_t io, const char *pool, const char *name, const char *const *kv, struct berr *err)
{
	rbd_image_t img = NULL;
	int ret;

	ret = rbd_open(io, name, &img, NULL);
	if (ret < 0)
		return berr_set(err, ret, "cannot open image %s/%s: %s", pool, name, strerror(-ret));
	for (; kv[0]; kv += 2) {
		ret = rbd_metadata_set(img, kv[0], kv[1]);
		if (ret < 0) {
			berr_set(err, ret, "cannot store %s with image %s/%s: %s", kv[0], pool, name, strerror(-ret));
			break;
		}
	}
	rbd_close(img);
	return ret;
}

/* ---- kernel mappers (krbd, rbd-nbd) ---- */

/*
 * The mapper Mount uses: [rbd] mapper, where auto means the kernel client
 * where the kernel has it (krbd, then nbd), else fuse.
 */
static const char *mapper_of(const struct rbd_ctx *rc)
{
	if (strcmp(rc->mapper, "auto") != 0)
		return rc->mapper;
	if (access("/sys/bus/rbd", F_OK) == 0)
		return "krbd";
	if (access("/sys/block/nbd0", F_OK) == 0)
		return "nbd";
	return "fuse";
}

/* <state_dir>/rbd/<name>.dev: "MAPPER DEVICE POOL" while a kernel mapper
 * has the image mapped here. */
static void kmap_file(const struct rbd_ctx *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.dev", rc->mapdir, name);
}

/* The kernel mapping of name: 1 with mapper, device (and pool), 0 when
 * none. */
static int kmap_read(const struct rbd_ctx *rc, const char *name, char *mapper, size_t mlen, char *dev, size_t dlen,
		     char *pool, size_t plen)
{
	char path[PATH_MAX], line[PATH_MAX + 128], *sp, *sp2;

	kmap_file(rc, name, path, sizeof(path));
	if (read_line(path, line, sizeof(line)) < 0)
		return 0;
	sp = strchr(line, ' ');
	sp2 = sp ? strchr(sp + 1, ' ') : NULL;
	if (!sp2)
		return 0;
	*sp = *sp2 = '\0';
	if ((size_t)(sp - line) >= mlen)
		return 0;
	memcpy(mapper, line, (size_t)(sp - line) + 1);
	snprintf(dev, dlen, "%s", sp + 1);
	if (pool)
		snprintf(pool, plen, "%s", sp2 + 1);
	return 1;
}

/* Is name mapped here (by a live fuse mapper or a kernel mapping)? */
static int mapped(struct rbd_ctx *rc, const char *name)
{
	char mapper[16], dev[PATH_MAX];

	if (kmap_read(rc, name, mapper, sizeof(mapper), dev, sizeof(dev), NULL, 0))
		return access(dev, F_OK) == 0;
	return mapper_pid(rc, name) > 0;
}

/* Drop image name's holder record if it names this host. */
static void holder_drop_if_ours(struct rbd_ctx *rc, const char *pool, const char *name)
{
	struct berr ignored = BERR_INIT;
	rados_ioctx_t io = NULL;
	rbd_image_t img;
	char cur[512];

	if (ioctx_open(rc, pool, &io, &ignored) < 0)
		return;
	if (rbd_open(io, name, &img, NULL) == 0) {
		if (meta_get(img, META_HOLDER, cur, sizeof(cur)) == 0) {
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

/*
 * Map name with a kernel mapper through mount.ballast map (rbd device map
 * -o exclusive / rbd-nbd --exclusive: the kernel holds the image's lock,
 * so any other client's write fails), device into dev. The holder record
 * is written first, by ballastd (once the kernel holds the lock only it
 * could): while the kernel client lives, another host's Mount is refused
 * by the lock; when it dies its lock is broken, and it blocklisted, once
 * its watch lapses. Errors are the mapper's own.
 */
static int kmap_start(struct rbd_ctx *rc, const char *name, const char *pool, const char *mapper, int read_only,
		      char *dev, size_t dlen, struct berr *err)
{
	char t[16], path[PATH_MAX], since[40], out[PATH_MAX] = "";
	const char *args[24];
	int argc = 0, ret;
	rados_ioctx_t io = NULL;
	FILE *f;

	if (!read_only) {
		json_t *h;
		char *js;

		rfc3339_now(since, sizeof(since));
		h = json_pack("{s:s, s:s, s:I, s:s}", "host", rc->host_id, "since", since, "pid", (json_int_t)getpid(),
			      "mapper", mapper);
		js = h ? json_dumps(h, JSON_COMPACT) : NULL;
		json_decref(h);
		ret = js ? ioctx_open(rc, pool, &io, err) : -ENOMEM;
		if (ret == 0) {
			const char *kv[] = { META_HOLDER, js, NULL };

			ret = meta_set(io, pool, name, kv, err);
			rados_ioctx_destroy(io);
		}
		free(js);
		/* another client holds the lock (a live kernel mapping
		 * refuses to hand it over): in use */
		if (ret == -EROFS)
			ret = -EBUSY;
		if (ret < 0)
			return ret;
	}
	snprintf(t, sizeof(t), "%u", rc->timeout + 5);
	args[argc++] = "map";
	args[argc++] = "--mapper";
	args[argc++] = mapper;
	argc = image_args(rc, pool, name, args, argc);
	if (read_only)
		args[argc++] = "--read-only";
	if (rc->ms_mode[0] && strcmp(mapper, "krbd") == 0) {
		args[argc++] = "--ms-mode";
		args[argc++] = rc->ms_mode;
	}
	args[argc++] = "--timeout";
	args[argc++] = t;
	args[argc] = NULL;
	{
		struct berr merr = BERR_INIT;

		ret = helper_run_out(&rc->helper, args, out, sizeof(out), &merr);
		if (ret < 0)
			berr_propagate(err, ret, &merr);
	}
	if (ret == 0 && strncmp(out, "/dev/", 5) != 0)
		ret = berr_set(err, -EIO, "mount.ballast map printed no device (\"%.80s\")", out);
	if (ret == 0) {
		kmap_file(rc, name, path, sizeof(path));
		ret = mkdir_p(rc->mapdir, 0700);
		f = ret == 0 ? fopen(path, "we") : NULL;
		if (!f || fprintf(f, "%s %s %s\n", mapper, out, pool) < 0 || fclose(f) != 0)
			ret = berr_set(err, -EIO, "cannot record the mapping of %s in %s", name, path);
	}
	if (ret < 0) {
		/* nothing mapped: the holder record goes, if still ours */
		if (!read_only)
			holder_drop_if_ours(rc, pool, name);
		return ret;
	}
	snprintf(dev, dlen, "%s", out);
	return 0;
}

/* Unmap name's kernel mapping, if any, and drop its holder record. */
static int kmap_stop(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char mapper[16], dev[PATH_MAX], pool[RBD_NAME_MAX], path[PATH_MAX];
	const char *args[] = { "unmap", "--mapper", mapper, dev, NULL };
	int ret;

	if (!kmap_read(rc, name, mapper, sizeof(mapper), dev, sizeof(dev), pool, sizeof(pool)))
		return 0;
	ret = access(dev, F_OK) == 0 ? helper_run(&rc->helper, args, err) : 0;
	if (ret < 0)
		return ret;
	kmap_file(rc, name, path, sizeof(path));
	unlink(path);
	holder_drop_if_ours(rc, pool, name);
	return 0;
}

/*
 * Map name with the mapper in use; into src what mount.ballast mounts:
 * the fuse mapper's image file (*loop = 1) or the kernel's device.
 */
static int map_image(struct rbd_ctx *rc, const char *name, const char *pool, int read_only, char *src, size_t len,
		     int *loop, struct berr *err)
{
	const char *mapper = mapper_of(rc);
	int ret;

	if (strcmp(mapper, "fuse") != 0) {
		*loop = 0;
		return kmap_start(rc, name, pool, mapper, read_only, src, len, err);
	}
	*loop = 1;
	ret = mapper_start(rc, name, pool, read_only, err);
	if (ret == 0) {
		map_dir(rc, name, src, len);
		strncat(src, "/image", len - strlen(src) - 1);
	}
	return ret;
}

/* Undo map_image, whichever mapper made the mapping. */
static int unmap_image(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char mapper[16], dev[PATH_MAX];

	if (kmap_read(rc, name, mapper, sizeof(mapper), dev, sizeof(dev), NULL, 0))
		return kmap_stop(rc, name, err);
	return mapper_stop(rc, name, err);
}

/*
 * Fence whoever holds image name's exclusive lock: rbd_lock_break
 * blocklists each owner's Ceph client (its writes fail in the OSDs from
 * then on, even once it reaches the cluster again) and breaks the lock.
 * 0 when nobody holds it.
 */
static int fence(rados_ioctx_t io, const char *pool, const char *name, struct berr *err)
{
	char *owners[8];
	size_t n = sizeof(owners) / sizeof(owners[0]);
	rbd_lock_mode_t mode;
	rbd_image_t img = NULL;
	int ret;

	ret = rbd_open(io, name, &img, NULL);
	if (ret < 0)
		return berr_set(err, ret, "cannot open image %s/%s: %s", pool, name, strerror(-ret));
	ret = rbd_lock_get_owners(img, &mode, owners, &n);
	if (ret == -ENOENT) {
		ret = 0;
		n = 0;
	} else if (ret < 0) {
		berr_set(err, ret, "cannot read the lock owners of %s/%s: %s", pool, name, strerror(-ret));
		n = 0;
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		ret = rbd_lock_break(img, mode, owners[i]);
		if (ret == -ENOENT)
			ret = 0; /* released meanwhile */
		if (ret < 0)
			berr_set(err, ret, "cannot fence Ceph client %s of %s/%s: %s", owners[i], pool, name,
				 strerror(-ret));
		else
			log_warnx("image %s/%s: Ceph client %s fenced (blocklisted) and its lock broken", pool, name,
				  owners[i]);
	}
	if (n)
		rbd_lock_get_owners_cleanup(owners, n);
	rbd_close(img);
	return ret;
}

/* ---- mount and unmount on this host ---- */

static int run_helper(struct rbd_ctx *rc, const char *const *args, struct berr *err)
{
	return helper_run(&rc->helper, args, err);
}

/* Unmount the file system (if mounted) and stop the mapper. Idempotent. */
static int detach(struct rbd_ctx *rc, const char *name, struct berr *err)
{
	char target[PATH_MAX];
	int ret = 0;

	long t0 = monotonic_ms(), t1;

	mount_target(rc, name, target, sizeof(target));
	if (is_mountpoint(target) == 1) {
		const char *args[] = { "umount", target, NULL };

		ret = run_helper(rc, args, err);
	}
	t1 = monotonic_ms();
	CRASH_POINT("rbd.detach.after-umount");
	if (ret == 0) {
		ret = unmap_image(rc, name, err);
		if (rmdir(target) < 0 && errno != ENOENT)
			log_warn("cannot remove mount point %s", target);
	}
	log_debugx("detach %s: umount %ld ms, mapper stop %ld ms", name, t1 - t0, monotonic_ms() - t1);
	return ret;
}

/*
 * Map name and mount its file system at <mounts>/name. With perms, the
 * data directory is made (Create); without, it must exist. Borrowed
 * inputs. On failure nothing stays mapped.
 */
static int attach(struct rbd_ctx *rc, const char *name, const char *pool, const char *fstype, const char *mount_opts,
		  int read_only, const struct vol_perms *perms, struct berr *err)
{
	char target[PATH_MAX], image[PATH_MAX + 8], data[PATH_MAX + 8], opts[256];
	struct berr ignored = BERR_INIT;
	int ret, loop = 1;

	mount_target(rc, name, target, sizeof(target));
	ret = mkdir_p(rc->mounts, 0700);
	if (ret == 0 && mkdir(target, 0755) < 0 && errno != EEXIST)
		ret = -errno;
	if (ret < 0)
		return berr_set(err, ret, "cannot create mount point %s: %s", target, strerror(-ret));
	ret = map_image(rc, name, pool, read_only, image, sizeof(image), &loop, err);
	if (ret < 0)
		goto out_rmdir;
	CRASH_POINT("rbd.attach.after-map");
	/* Read-only beside a live writer: its journal is never clean, and
	 * replaying it would need write access. */
	snprintf(opts, sizeof(opts), "%s%s%s",
		 read_only ? (strcmp(fstype, "xfs") == 0 ? "ro,norecovery" : "ro,noload") : "",
		 read_only && mount_opts ? "," : "", mount_opts ? mount_opts : "");
	{
		const char *args[10];
		int n = 0;

		args[n++] = "mount";
		args[n++] = "--fstype";
		args[n++] = fstype;
		if (loop)
			args[n++] = "--loop";
		if (opts[0]) {
			args[n++] = "--options";
			args[n++] = opts;
		}
		args[n++] = image;
		args[n++] = target;
		args[n] = NULL;
		ret = run_helper(rc, args, err);
	}
	if (ret < 0)
		goto out_unmap;
	snprintf(data, sizeof(data), "%s/data", target);
	if (perms) {
		if (mkdir(data, 0700) < 0 && errno != EEXIST)
			ret = berr_set(err, -errno, "cannot create %s: %s", data, strerror(errno));
		else
			ret = apply_perms(data, perms, err);
	} else if (access(data, F_OK) < 0) {
		ret = berr_set(err, -ENOENT, "volume %s has no data directory; was it made by ballast?", name);
	}
	if (ret < 0)
		goto out_detach;
	return 0;
out_detach:
	detach(rc, name, &ignored);
	return ret;
out_unmap:
	unmap_image(rc, name, &ignored);
out_rmdir:
	rmdir(target);
	return ret;
}

/* ---- the ops ---- */

/* Delete image name if ballast made it and nobody holds it. */
static int remove_image(struct rbd_ctx *rc, rados_ioctx_t io, const char *pool, const char *name, struct berr *err)
{
	struct rbd_meta m;
	int ret;

	ret = meta_read(io, pool, name, &m, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (!m.options) {
		ret = berr_set(err, -EPERM, "image %s/%s was not made by ballast; not deleting it", pool, name);
		goto out;
	}
	if (m.locked) {
		ret = in_use(name, m.holder, m.lease, m.owners, err);
		goto out;
	}
	/*
	 * -EBUSY: someone has the image open. Not a holder (checked above):
	 * another host's refresh reading the metadata for a moment, or the
	 * watch of a client that died (a killed ballastd), which Ceph drops
	 * after ~30 s. Both pass: wait for them, within dockerd's minute.
	 */
	for (long until = monotonic_ms() + RBD_REMOVE_WAIT_S * 1000L;;) {
		ret = rbd_remove(io, name);
		if (ret != -EBUSY || monotonic_ms() >= until)
			break;
		sleep(1);
	}
	if (ret == -ENOENT)
		ret = 0;
	else if (ret == -EBUSY)
		ret = berr_set(err, -EBUSY,
			       "volume %s is still open by a Ceph client (a watcher; one that crashed is "
			       "dropped after ~30 s): try again",
			       name);
	else if (ret < 0)
		berr_set(err, ret, "cannot delete image %s/%s: %s", pool, name, strerror(-ret));
out:
	meta_free(&m);
	(void)rc;
	return ret;
}

/*
 * Create (see backend.h): 0 when the image was made, formatted and given
 * its data directory; BE_ADOPTED when a finished ballast volume of that
 * name is already in the cluster and the options match (or none were
 * given); -EEXIST for another volume of that name, which is left alone.
 * On failure everything this call made is removed.
 */
/*
 * The reservation of a Create: a RADOS object "ballast.creating.<name>" in
 * the pool, written before the image is made and removed once the image
 * carries its metadata. An image with no ballast metadata but this host's
 * reservation is what a crash between rbd_create4 and the first
 * rbd_metadata_set leaves, and the next Create may replace it; any other
 * image without metadata is someone else's and is never touched.
 */
#define RESERVATION_PREFIX "ballast.creating."
/* Another host's reservation this old is from a Create that died. */
#define RESERVATION_STALE_S 600

static void reservation_oid(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, RESERVATION_PREFIX "%s", name);
}

static int reservation_write(struct rbd_ctx *rc, rados_ioctx_t io, const char *name)
{
	char oid[VOLUME_NAME_MAX + 32], body[256];
	int n;

	reservation_oid(name, oid, sizeof(oid));
	n = snprintf(body, sizeof(body), "{\"host\":\"%s\",\"time\":%lld}", rc->host_id, (long long)time(NULL));
	return rados_write_full(io, oid, body, (size_t)n);
}

static void reservation_remove(rados_ioctx_t io, const char *name)
{
	char oid[VOLUME_NAME_MAX + 32];

	reservation_oid(name, oid, sizeof(oid));
	rados_remove(io, oid);
}

/* Is there a reservation of name that this host may take over: its own,
 * or another host's that is stale? */
static int reservation_ours(struct rbd_ctx *rc, rados_ioctx_t io, const char *name)
{
	char oid[VOLUME_NAME_MAX + 32], body[256] = "";
	json_t *j;
	int n, ours;

	reservation_oid(name, oid, sizeof(oid));
	n = rados_read(io, oid, body, sizeof(body) - 1, 0);
	if (n <= 0)
		return 0;
	body[n] = '\0';
	j = json_loads(body, 0, NULL);
	ours = strcmp(json_string_value(json_object_get(j, "host")) ?: "", rc->host_id) == 0 ||
	       time(NULL) - (time_t)json_integer_value(json_object_get(j, "time")) > RESERVATION_STALE_S;
	json_decref(j);
	return ours;
}

static int be_rbd_create(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = vol_pool(rc, vol->opts), *fstype = vol_fstype(rc, vol->opts);
	char *opts_json = NULL, created[40];
	rbd_image_options_t io_opts = NULL;
	rados_ioctx_t io = NULL;
	struct vol_perms perms;
	struct rbd_meta m;
	uint64_t bytes, features;
	int ret;

	ret = vol_size(rc, vol->opts, &bytes, err);
	if (ret == 0)
		ret = vol_features(vol->opts, &features, err);
	if (ret == 0)
		ret = parse_perms(vol->opts, &perms, err);
	if (ret == 0)
		ret = ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;

	/* The same volume again (a resent Create, another Swarm node) is
	 * success; another volume of that name is refused and kept. */
	ret = meta_read(io, pool, vol->name, &m, err);
	if (ret == 0) {
		if (!m.options && !m.locked && reservation_ours(rc, io, vol->name)) {
			/* Our own Create died between making the image and
			 * labelling it: the image holds nothing yet. */
			log_infox("volume %s: replacing the unlabelled image of an interrupted create", vol->name);
			ret = rbd_remove(io, vol->name);
			if (ret < 0)
				berr_set(err, ret, "cannot replace image %s/%s of an interrupted create: %s", pool,
					 vol->name, strerror(-ret));
		} else if (!m.options) {
			ret = berr_set(err, -EEXIST, "image %s/%s exists and was not made by ballast", pool, vol->name);
		} else if (strcmp(m.state, "ready") == 0) {
			if (json_object_size(vol->opts) == 0 || json_equal(m.options, vol->opts)) {
				log_infox("volume %s exists in the cluster: adopted", vol->name);
				ret = BE_ADOPTED;
			} else {
				ret = berr_set(err, -EEXIST,
					       "volume %s already exists in the cluster with other options", vol->name);
			}
		} else if (m.locked) {
			ret = berr_set(err, -EBUSY, "volume %s is being created by another host", vol->name);
		} else {
			/* an interrupted Create: it holds no data yet */
			log_infox("volume %s: replacing the image of an unfinished create", vol->name);
			ret = remove_image(rc, io, pool, vol->name, err);
		}
		meta_free(&m);
		if (ret != 0) /* refused, failed or adopted */
			goto out_io;
	} else if (ret != -ENOENT) {
		goto out_io;
	}

	ret = reservation_write(rc, io, vol->name);
	if (ret < 0) {
		berr_set(err, ret, "cannot reserve volume %s in pool %s: %s", vol->name, pool, strerror(-ret));
		goto out_io;
	}
	io_opts = NULL;
	rbd_image_options_create(&io_opts);
	rbd_image_options_set_uint64(io_opts, RBD_IMAGE_OPTION_FORMAT, 2);
	rbd_image_options_set_uint64(io_opts, RBD_IMAGE_OPTION_FEATURES, features);
	if (opt_get(vol->opts, "data-pool"))
		rbd_image_options_set_string(io_opts, RBD_IMAGE_OPTION_DATA_POOL, opt_get(vol->opts, "data-pool"));
	ret = rbd_create4(io, vol->name, bytes, io_opts);
	rbd_image_options_destroy(io_opts);
	if (ret < 0) {
		berr_set(err, ret, "cannot create image %s/%s: %s", pool, vol->name, strerror(-ret));
		reservation_remove(io, vol->name);
		goto out_io;
	}
	CRASH_POINT("rbd.create.after-image");
	opts_json = json_dumps(vol->opts, JSON_COMPACT | JSON_SORT_KEYS);
	rfc3339_now(created, sizeof(created));
	{
		const char *kv[] = { META_STATE,  "creating", META_OPTIONS, opts_json ? opts_json : "{}",
				     META_FSTYPE, fstype,     META_CREATED, created,
				     NULL };

		ret = meta_set(io, pool, vol->name, kv, err);
	}
	if (ret < 0)
		goto out_remove;
	/* mkfs, then one mount so the data directory gets its owner and a
	 * bad mount option fails now rather than at the first Mount. */
	{
		char image[PATH_MAX + 8];
		const char *mkfs_opts = opt_get(vol->opts, "mkfs-options");
		const char *args[] = { "mkfs", "--fstype", fstype, "--mkfs-options", mkfs_opts, image, NULL };
		struct berr ignored = BERR_INIT;
		int loop;

		ret = map_image(rc, vol->name, pool, 0, image, sizeof(image), &loop, err);
		if (ret < 0)
			goto out_remove;
		if (!mkfs_opts) {
			args[3] = image;
			args[4] = NULL;
		}
		ret = run_helper(rc, args, err);
		unmap_image(rc, vol->name, ret < 0 ? &ignored : err);
	}
	if (ret < 0)
		goto out_remove;
	CRASH_POINT("rbd.create.after-mkfs");
	ret = attach(rc, vol->name, pool, fstype, opt_get(vol->opts, "mount-options"), 0, &perms, err);
	if (ret == 0)
		ret = detach(rc, vol->name, err);
	if (ret == 0) {
		const char *kv[] = { META_STATE, "ready", NULL };

		ret = meta_set(io, pool, vol->name, kv, err);
	}
	if (ret < 0)
		goto out_remove;
	reservation_remove(io, vol->name);
	log_infox("created image %s/%s (%llu MiB, %s)", pool, vol->name, (unsigned long long)(bytes >> 20), fstype);
	goto out_io;
out_remove : {
	struct berr ignored = BERR_INIT;

	detach(rc, vol->name, &ignored);
	if (remove_image(rc, io, pool, vol->name, &ignored) < 0)
		log_warnx("cannot remove image %s/%s after a failed create: %s", pool, vol->name, ignored.msg);
	else
		reservation_remove(io, vol->name);
}
out_io:
	free(opts_json);
	rados_ioctx_destroy(io);
	return ret;
}

static int be_rbd_remove(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = vol_pool(rc, vol->opts);
	rados_ioctx_t io = NULL;
	int ret;

	ret = detach(rc, vol->name, err);
	if (ret == 0)
		ret = ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	ret = remove_image(rc, io, pool, vol->name, err);
	rados_ioctx_destroy(io);
	return ret;
}

static int be_rbd_mount(void *ctx, const struct be_volume *vol, char *path, size_t len, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = vol_pool(rc, vol->opts);
	char target[PATH_MAX], data[PATH_MAX + 8];
	rados_ioctx_t io = NULL;
	struct rbd_meta m;
	int ret, read_only = 0;

	mount_target(rc, vol->name, target, sizeof(target));
	snprintf(data, sizeof(data), "%s/data", target);
	/* Left mounted by an earlier run (ballastd restarted while it was in
	 * use, or a crash before the mount was recorded): reuse it. */
	if (is_mountpoint(target) == 1 && mapped(rc, vol->name) && access(data, F_OK) == 0 &&
	    !map_fenced(rc, vol->name)) {
		snprintf(path, len, "%s", data);
		return 0;
	}
	if (map_fenced(rc, vol->name))
		log_warnx("volume %s: this host was fenced from it (another host took it over); dropping the "
			  "stale mapping",
			  vol->name);
	ret = detach(rc, vol->name, err); /* leftovers of a crash, or of a fence */
	if (ret == 0)
		ret = ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	ret = meta_read_volume(io, pool, vol->name, &m, err);
	if (ret < 0)
		goto out_io;
	if (!m.options || strcmp(m.state, "ready") != 0) {
		ret = berr_set(err, -ENOENT, "volume %s: image %s/%s is not a finished ballast volume", vol->name, pool,
			       vol->name);
		goto out_meta;
	}
	/*
	 * Held (locked) or last held by another host. A fresh lease of another
	 * host refuses at once. An expired one (or a lock our own dead mapper
	 * left) is broken after fencing its client, unless takeover is
	 * "never". A lock with no lease record (a mapper killed before its
	 * first lease) is left to the mapper's lock request: a live owner
	 * refuses it, a dead one's is broken by librbd once its watch lapses.
	 */
	{
		const char *shared = opt_get(m.options, "shared");
		const char *vt = opt_get(m.options, "takeover");
		int never = strcmp(vt ? vt : rc->takeover, "never") == 0;
		json_t *h = m.holder[0] ? json_loads(m.holder, 0, NULL) : NULL;
		json_t *l = m.lease[0] ? json_loads(m.lease, 0, NULL) : NULL;
		json_t *until = json_object_get(l, "expires_unix");
		int has_lease = json_is_integer(until);
		int fresh = has_lease && json_integer_value(until) >= (json_int_t)time(NULL);
		char host[128] = "";
		int other;

		snprintf(host, sizeof(host), "%s", json_string_value(json_object_get(h, "host")) ?: "");
		json_decref(h);
		json_decref(l);
		other = host[0] && strcmp(host, rc->host_id) != 0;
		if (m.locked && shared && strcmp(shared, "ro") == 0) {
			read_only = 1;
		} else if (other && (fresh || never)) {
			ret = in_use(vol->name, m.holder, m.lease, m.owners, err);
			goto out_meta;
		} else if (m.locked && never) {
			ret = in_use(vol->name, m.holder, m.lease, m.owners, err);
			goto out_meta;
		} else if (m.locked && ((has_lease && !fresh) || (host[0] && !other))) {
			log_warnx("volume %s: the lease of %s expired; fencing Ceph client %s before taking over",
				  vol->name, host[0] ? host : "its holder", m.owners);
			ret = fence(io, pool, vol->name, err);
			if (ret < 0)
				goto out_meta;
		} else if (m.locked) {
			log_infox("volume %s is locked by %s (%s): taking it over if that holder is dead", vol->name,
				  m.owners, host[0] ? host : "no holder record");
		}
	}
	{
		struct berr aerr = BERR_INIT;

		ret = attach(rc, vol->name, pool, m.fstype[0] ? m.fstype : vol_fstype(rc, m.options),
			     opt_get(m.options, "mount-options"), read_only, NULL, &aerr);
		if (ret == -EBUSY && m.holder[0])
			in_use(vol->name, m.holder, m.lease, m.owners, err);
		else if (ret < 0)
			berr_propagate(err, ret, &aerr);
	}
	if (ret == 0) {
		CRASH_POINT("rbd.mount.after-mount");
		snprintf(path, len, "%s", data);
	}
out_meta:
	meta_free(&m);
out_io:
	rados_ioctx_destroy(io);
	return ret;
}

static int be_rbd_unmount(void *ctx, const struct be_volume *vol, struct berr *err)
{
	return detach(ctx, vol->name, err);
}

static int be_rbd_is_mounted(void *ctx, const struct be_volume *vol)
{
	struct rbd_ctx *rc = ctx;
	char target[PATH_MAX];
	int ret;

	if (map_fenced(rc, vol->name)) {
		log_warnx("volume %s: this host was fenced from it (another host took it over): its mount here is "
			  "dead",
			  vol->name);
		return 0;
	}
	mount_target(rc, vol->name, target, sizeof(target));
	ret = is_mountpoint(target);
	if (ret == 1 && !mapped(rc, vol->name))
		log_warnx("volume %s is mounted but its mapper is gone: I/O on it fails", vol->name);
	if (ret == 0 && mapped(rc, vol->name)) {
		/* A mapper with nothing mounted on it (a crash between map and
		 * mount, or an unmount done by hand) would hold the lock, and
		 * keep every other host out, until the next Mount here. */
		struct berr ignored = BERR_INIT;

		log_infox("volume %s: stopping a mapper nothing uses", vol->name);
		unmap_image(rc, vol->name, &ignored);
	}
	return ret;
}

static json_t *be_rbd_status(void *ctx, const struct be_volume *vol)
{
	struct rbd_ctx *rc = ctx;
	char mapper[16], dev[PATH_MAX];
	json_t *st;

	/* the mapper of this host's mapping, else the one a Mount would use */
	if (!kmap_read(rc, vol->name, mapper, sizeof(mapper), dev, sizeof(dev), NULL, 0)) {
		snprintf(mapper, sizeof(mapper), "%s", mapper_of(rc));
		dev[0] = '\0';
	}
	st = json_pack("{s:s, s:s, s:s}", "mapper", mapper, "pool", vol_pool(rc, vol->opts), "image", vol->name);
	if (st && dev[0])
		json_object_set_new(st, "device", json_string(dev));
	return st;
}

/*
 * Grow the volume to bytes, and its file system with it. Shrinking is
 * refused. Mounted here: the mapper, which holds the lock, grows the image
 * (a write to its size file) and mount.ballast grows the mounted file
 * system online. Not mounted anywhere: ballastd grows the image itself,
 * then maps and mounts it once to grow the file system, so that the next
 * Mount finds it full size. Held by another host: refused, naming it.
 */
static int be_rbd_resize(void *ctx, const struct be_volume *vol, uint64_t bytes, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = vol_pool(rc, vol->opts), *fstype;
	char target[PATH_MAX], sizefile[PATH_MAX + 8], num[32];
	rados_ioctx_t io = NULL;
	rbd_image_t img = NULL;
	struct rbd_meta m;
	uint64_t cur = 0;
	int ret, fd;

	ret = ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	ret = meta_read_volume(io, pool, vol->name, &m, err);
	if (ret < 0)
		goto out_io;
	fstype = m.fstype[0] ? m.fstype : vol_fstype(rc, vol->opts);
	mount_target(rc, vol->name, target, sizeof(target));
	map_dir(rc, vol->name, sizefile, sizeof(sizefile));
	strncat(sizefile, "/size", sizeof(sizefile) - strlen(sizefile) - 1);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)bytes);
	if (is_mountpoint(target) == 1 && mapped(rc, vol->name) && mapper_pid(rc, vol->name) == 0) {
		/* the kernel holds the lock: nobody else may grow the image */
		ret = berr_set(err, -ENOTSUP,
			       "volume %s is mapped by a kernel mapper here: online growth needs the fuse mapper; "
			       "unmount it and resize again",
			       vol->name);
		goto out_meta;
	}
	if (is_mountpoint(target) == 1 && mapper_pid(rc, vol->name) > 0) {
		fd = open(sizefile, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, num, strlen(num)) != (ssize_t)strlen(num))
			ret = berr_set(err, -errno, "cannot grow image %s/%s to %s bytes: %s", pool, vol->name, num,
				       errno == EINVAL ? "smaller than it is (shrinking is refused)" : strerror(errno));
		if (fd >= 0)
			close(fd);
		if (ret == 0) {
			const char *args[] = { "grow", "--fstype", fstype, target, NULL };

			ret = run_helper(rc, args, err);
		}
		goto out_meta;
	}
	if (m.locked) {
		ret = in_use(vol->name, m.holder, m.lease, m.owners, err);
		goto out_meta;
	}
	ret = rbd_open(io, vol->name, &img, NULL);
	if (ret == 0)
		ret = rbd_get_size(img, &cur);
	if (ret == 0 && bytes < cur)
		ret = berr_set(err, -EINVAL, "volume %s is %llu bytes; shrinking is refused", vol->name,
			       (unsigned long long)cur);
	else if (ret == 0 && bytes > cur)
		ret = rbd_resize(img, bytes);
	if (img)
		rbd_close(img);
	if (ret < 0) {
		berr_set(err, ret, "cannot grow image %s/%s: %s", pool, vol->name, strerror(-ret));
		goto out_meta;
	}
	/* the file system follows now, not at some later Mount */
	ret = attach(rc, vol->name, pool, fstype, opt_get(m.options, "mount-options"), 0, NULL, err);
	if (ret == 0) {
		const char *args[] = { "grow", "--fstype", fstype, target, NULL };
		struct berr ignored = BERR_INIT;

		ret = run_helper(rc, args, err);
		if (ret == 0)
			ret = detach(rc, vol->name, err);
		else
			detach(rc, vol->name, &ignored);
	}
out_meta:
	meta_free(&m);
out_io:
	rados_ioctx_destroy(io);
	if (ret == 0)
		log_infox("volume %s grown to %s bytes", vol->name, num);
	return ret;
}

/*
 * Health checks for `ballast doctor`: config, programs, /dev/fuse, which
 * mapper would be used, and the cluster (bounded by the op timeout).
 */
static json_t *be_rbd_check(void *ctx)
{
	struct rbd_ctx *rc = ctx;
	json_t *checks = json_array();
	struct berr err = BERR_INIT;
	rados_ioctx_t io = NULL;
	int krbd = access("/sys/bus/rbd", F_OK) == 0;
	int nbd = access("/sys/block/nbd0", F_OK) == 0;

	if (!be_rbd_configured(ctx)) {
		/* Compiled in but unused: nothing to check, nothing wrong. */
		backend_check_add(checks, "rbd", 1, "not configured (no [rbd] section, no %s): unused", rc->conf);
		return checks;
	}
	if (access(rc->conf, R_OK) == 0)
		backend_check_add(checks, "ceph config", 1, "%s", rc->conf);
	else
		backend_check_add(checks, "ceph config", 0, "cannot read %s: %s", rc->conf, strerror(errno));
	if (access(rc->map_bin, X_OK) == 0)
		backend_check_add(checks, "rbd mapper", 1, "%s", rc->map_bin);
	else
		backend_check_add(checks, "rbd mapper", 0, "%s: %s", rc->map_bin, strerror(errno));
	if (access("/dev/fuse", R_OK | W_OK) == 0)
		backend_check_add(checks, "fuse", 1, "/dev/fuse is usable");
	else
		backend_check_add(checks, "fuse", 0, "/dev/fuse: %s (the fuse mapper cannot work)", strerror(errno));
	backend_check_add(checks, "rbd mapping", 1, "mapper = %s; kernel rbd %s, nbd %s; Mount maps with %s",
			  rc->mapper, krbd ? "present" : "absent", nbd ? "present" : "absent", mapper_of(rc));
	if (access(rc->helper.path, X_OK) == 0)
		backend_check_add(checks, "mount helper", 1, "%s", rc->helper.path);
	else
		backend_check_add(checks, "mount helper", 0, "%s: %s", rc->helper.path, strerror(errno));
	if (ioctx_open(rc, rc->pool, &io, &err) == 0) {
		backend_check_add(checks, "ceph cluster", 1, "connected as client.%s; pool %s is there", rc->user,
				  rc->pool);
		rados_ioctx_destroy(io);
	} else {
		backend_check_add(checks, "ceph cluster", 0, "%s", err.msg);
	}
	return checks;
}

/* How long an image without ballast metadata is believed foreign: one
 * caught between rbd_create4 and its metadata is listed this much later. */
#define LIST_RECHECK_MS 30000

/* Append pool's finished ballast volumes to all, reusing what the last
 * list learned (cache) and recording what this one learns (seen). */
static int list_pool(struct rbd_ctx *rc, const char *pool, json_t *all, json_t *seen, struct berr *err)
{
	rbd_image_spec_t *specs = NULL;
	rados_ioctx_t io = NULL;
	size_t n = 64;
	int ret;

	ret = ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	for (;;) {
		specs = calloc(n, sizeof(*specs));
		if (!specs) {
			ret = berr_set(err, -ENOMEM, "out of memory");
			goto out_io;
		}
		ret = rbd_list2(io, specs, &n);
		if (ret != -ERANGE)
			break;
		free(specs);
		specs = NULL;
	}
	if (ret < 0) {
		berr_set(err, ret, "cannot list images in pool %s: %s", pool, strerror(-ret));
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		struct berr ignored = BERR_INIT;
		char key[RBD_NAME_MAX + 64];
		json_t *known, *v = NULL;
		struct rbd_meta m;

		if (validate_name(specs[i].name, &ignored) < 0)
			continue;
		snprintf(key, sizeof(key), "%s/%s", pool, specs[i].id);
		known = rc->list_cache ? json_object_get(rc->list_cache, key) : NULL;
		if (json_object_get(known, "item")) {
			/* a copy: the caller owns what it gets */
			json_array_append_new(all, json_deep_copy(json_object_get(known, "item")));
			json_object_set(seen, key, known);
			continue;
		}
		if (known &&
		    monotonic_ms() - json_integer_value(json_object_get(known, "checked_ms")) < LIST_RECHECK_MS) {
			json_object_set(seen, key, known);
			continue;
		}
		if (meta_read(io, pool, specs[i].name, &m, &ignored) < 0)
			continue; /* not remembered: asked again next time */
		if (m.options && json_is_object(m.options) && strcmp(m.state, "ready") == 0 &&
		    strcmp(vol_pool(rc, m.options), pool) == 0) {
			v = json_pack("{s:s, s:O}", "name", specs[i].name, "options", m.options);
			/* dockerd cannot decode an empty CreatedAt */
			if (v && m.created[0])
				json_object_set_new(v, "created_at", json_string(m.created));
		}
		if (v) {
			json_array_append_new(all, json_deep_copy(v));
			json_object_set_new(seen, key, json_pack("{s:o}", "item", v));
		} else if (!m.options) {
			char oid[RBD_NAME_MAX + VOLUME_NAME_MAX + 32];
			uint64_t psize;
			time_t pmtime;

			/* Not ballast's, unless caught between rbd_create4 and
			 * the metadata of a Create under way (its reservation
			 * exists): then asked again next time, not in 30 s. */
			reservation_oid(specs[i].name, oid, sizeof(oid));
			if (rados_stat(io, oid, &psize, &pmtime) == -ENOENT)
				json_object_set_new(seen, key,
						    json_pack("{s:I}", "checked_ms", (json_int_t)monotonic_ms()));
		} /* ballast's but unfinished: asked again next time */
		meta_free(&m);
	}
	rbd_image_spec_list_cleanup(specs, n);
out_free:
	free(specs);
out_io:
	rados_ioctx_destroy(io);
	return ret;
}

/*
 * Every finished ballast volume in the cluster, for the catalog's refresh:
 * [{"name","options","created_at"}]. All pools are looked at, since a
 * volume may live in the one its pool option named. Images ballast did
 * not make, and unfinished ones, are left out. Every call is bounded by
 * the op timeout. A pool that cannot be read fails the whole list, so that
 * the refresh never drops a volume it merely could not see. Only images
 * not seen before are opened: a refresh of an unchanged cluster is one
 * pool listing and one image listing per pool.
 */
static int be_rbd_list(void *ctx, json_t **out, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	char *pools = NULL;
	rados_t cl = NULL;
	json_t *all = NULL, *seen = NULL;
	int len = 1024, ret;

	ret = cluster_get(rc, &cl, err);
	if (ret < 0)
		return ret;
	for (;;) {
		pools = calloc(1, (size_t)len);
		if (!pools)
			return berr_set(err, -ENOMEM, "out of memory");
		ret = rados_pool_list(cl, pools, (size_t)len);
		if (ret < 0) {
			berr_set(err, ret, "cannot list Ceph pools: %s", strerror(-ret));
			goto out_free;
		}
		if (ret <= len)
			break;
		len = ret;
		free(pools);
	}
	all = json_array();
	seen = json_object();
	ret = 0;
	for (const char *p = pools; *p && ret == 0; p += strlen(p) + 1)
		ret = list_pool(rc, p, all, seen, err);
	if (ret == 0) {
		/* images gone from the cluster are forgotten */
		json_decref(rc->list_cache);
		rc->list_cache = seen;
		seen = NULL;
		*out = all;
		all = NULL;
	}
out_free:
	json_decref(seen);
	json_decref(all);
	free(pools);
	return ret;
}

/* Is name a finished ballast volume in the default pool? (For dockerd's
 * implicit Create on a host whose default backend is not shared.) */
static int be_rbd_lookup(void *ctx, const char *name, json_t **item, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	rados_ioctx_t io = NULL;
	struct rbd_meta m;
	int ret;

	*item = NULL;
	ret = ioctx_open(rc, rc->pool, &io, err);
	if (ret < 0)
		return ret;
	ret = meta_read(io, rc->pool, name, &m, err);
	if (ret == -ENOENT) {
		ret = 0;
	} else if (ret == 0) {
		if (m.options && json_is_object(m.options) && strcmp(m.state, "ready") == 0) {
			*item = json_pack("{s:s, s:O}", "name", name, "options", m.options);
			if (*item && m.created[0])
				json_object_set_new(*item, "created_at", json_string(m.created));
			ret = *item ? 1 : -ENOMEM;
		}
		meta_free(&m);
	}
	rados_ioctx_destroy(io);
	return ret;
}

/* The hold of one image as an object for `ballast holders`, or NULL. */
static json_t *holder_view(const struct rbd_meta *m)
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
		json_t *until = json_object_get(l, "expires_unix");

		json_object_update(out, l);
		json_object_set_new(out, "expired", json_boolean(json_integer_value(until) < (json_int_t)time(NULL)));
	}
	json_object_set_new(out, "locked", json_boolean(m->locked));
	if (m->owners[0])
		json_object_set_new(out, "owner", json_string(m->owners));
	json_decref(l);
	return out;
}

static int be_rbd_holder(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = vol_pool(rc, vol->opts);
	rados_ioctx_t io = NULL;
	struct rbd_meta m;
	int ret;

	*out = NULL;
	ret = ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	ret = meta_read_volume(io, pool, vol->name, &m, err);
	if (ret == 0) {
		*out = holder_view(&m);
		meta_free(&m);
	}
	rados_ioctx_destroy(io);
	return ret;
}

/*
 * Break another host's hold by hand: fence its client (blocklist, break
 * the lock), then drop the holder and lease records so that the next
 * Mount anywhere goes ahead.
 */
static int be_rbd_release(void *ctx, const struct be_volume *vol, int force, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *pool = vol_pool(rc, vol->opts);
	rados_ioctx_t io = NULL;
	rbd_image_t img = NULL;
	struct rbd_meta m;
	json_t *view;
	int ret, expired, mine;

	ret = ioctx_open(rc, pool, &io, err);
	if (ret < 0)
		return ret;
	ret = meta_read_volume(io, pool, vol->name, &m, err);
	if (ret < 0)
		goto out_io;
	view = holder_view(&m);
	if (!view) {
		log_infox("volume %s: release asked, but nobody holds it", vol->name);
		goto out_meta;
	}
	expired = json_is_true(json_object_get(view, "expired"));
	mine = json_string_value(json_object_get(view, "host")) &&
	       strcmp(json_string_value(json_object_get(view, "host")), rc->host_id) == 0;
	if (mine && mapped(rc, vol->name)) {
		ret = berr_set(err, -EBUSY, "volume %s is held by this host (%s): unmount it instead", vol->name,
			       rc->host_id);
	} else if (!force && !expired && m.locked) {
		char msg[BERR_MSG_MAX];
		struct berr busy = BERR_INIT;

		in_use(vol->name, m.holder, m.lease, m.owners, &busy);
		snprintf(msg, sizeof(msg), "%s", busy.msg);
		ret = berr_set(err, -EBUSY, "%s; its lease is fresh: --force fences that host and breaks its hold",
			       msg);
	} else {
		log_warnx("volume %s: releasing the hold of %s by hand%s", vol->name,
			  json_string_value(json_object_get(view, "host")) ?: m.owners, force ? " (forced)" : "");
		ret = fence(io, pool, vol->name, err);
		if (ret == 0 && (ret = rbd_open(io, vol->name, &img, NULL)) < 0)
			berr_set(err, ret, "cannot open image %s/%s: %s", pool, vol->name, strerror(-ret));
		if (ret == 0) {
			const char *keys[] = { META_LEASE, META_HOLDER };

			for (size_t i = 0; i < 2 && ret == 0; i++) {
				ret = rbd_metadata_remove(img, keys[i]);
				if (ret == -ENOENT)
					ret = 0;
				if (ret < 0)
					berr_set(err, ret, "cannot drop %s of %s/%s: %s", keys[i], pool, vol->name,
						 strerror(-ret));
			}
			rbd_close(img);
		}
	}
	json_decref(view);
out_meta:
	meta_free(&m);
out_io:
	rados_ioctx_destroy(io);
	return ret;
}

const struct backend_ops be_rbd_ops = {
	.name = "rbd",
	.caps = BE_CAP_GLOBAL | BE_CAP_RESIZE,
	.options = rbd_opts,
	.init = be_rbd_init,
	.fini = be_rbd_fini,
	.configured = be_rbd_configured,
	.validate_opts = be_rbd_validate_opts,
	.create = be_rbd_create,
	.remove = be_rbd_remove,
	.mount = be_rbd_mount,
	.unmount = be_rbd_unmount,
	.is_mounted = be_rbd_is_mounted,
	.status = be_rbd_status,
	.list = be_rbd_list,
	.check = be_rbd_check,
	.resize = be_rbd_resize,
	.holder = be_rbd_holder,
	.release = be_rbd_release,
	.lookup = be_rbd_lookup,
};
