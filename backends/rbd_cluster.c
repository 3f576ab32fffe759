/*
 * rbd_cluster.c - the rbd backend's configuration, its cluster connection,
 * the Create options and the image metadata (see rbd_int.h).
 *
 * One rados_t for the daemon's life, connected on first use (init does no
 * network I/O so ballastd answers Activate while Ceph is down), with
 * client_mount_timeout, rados_mon_op_timeout and rados_osd_op_timeout set
 * from [rbd] timeout so that no call waits forever. An io context per call.
 */
#define LOG_TAG "rbd"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "rbd_int.h"
#include "timeutil.h"
#include "validate.h"

#define RBD_DEFAULT_FEATURES "layering,exclusive-lock"
/* mkfs.ext4 needs a few MiB; mkfs.xfs refuses anything under 300 MiB. */
#define RBD_MIN_EXT4 (16ULL << 20)
#define RBD_MIN_XFS (300ULL << 20)
#define RBD_META_MAX 4096

const char *const rbd_opts[] = { "backend", "data-pool",     "features", "fstype", "gid",  "mkfs-options",
				 "mode",    "mount-options", "pool",	 "shared", "size", "takeover",
				 "uid",	    "from",	     "flatten",	 NULL };

static const char *const fstype_choices[] = { "ext4", "xfs", NULL };
static const char *const mapper_choices[] = { "auto", "krbd", "nbd", "fuse", NULL };
static const char *const ms_mode_choices[] = { "legacy", "crc", "secure", "prefer-crc", "prefer-secure", NULL };
static const char *const shared_choices[] = { "ro", "no", NULL };
static const char *const bool_choices[] = { "true", "false", NULL };
/* Options a clone takes from its parent's snapshot. */
static const char *const clone_inherits[] = { "size", "fstype", "mkfs-options", "features", NULL };

/* The [rbd] section: every key with its type, default and range. Values
 * are checked when the config is read (config.c), never clamped here. */
const struct config_key rbd_config_keys[] = {
	CONFIG_KEY_STR("rbd", "conf", RBD_DEFAULT_CEPH_CONF, "Ceph config file of the cluster"),
	CONFIG_KEY_STR("rbd", "user", "admin", "cephx id (client.<user>)"),
	CONFIG_KEY_STR("rbd", "keyring", NULL, "keyring file (default: what the Ceph config says)"),
	CONFIG_KEY_STR("rbd", "pool", "rbd", "pool for volumes that name none"),
	CONFIG_KEY_UINT("rbd", "timeout", "10", "seconds; bounds every Ceph call", 1, 600),
	CONFIG_KEY_SIZE("rbd", "default_size", "10G", "size of volumes created without -o size"),
	CONFIG_KEY_CHOICE("rbd", "default_fstype", "ext4", "ext4 or xfs", fstype_choices),
	CONFIG_KEY_CHOICE("rbd", "mapper", "auto", "auto, krbd, nbd or fuse: how images become block devices",
			  mapper_choices),
	CONFIG_KEY_CHOICE("rbd", "ms_mode", NULL,
			  "krbd's messenger mode (legacy, crc, secure, prefer-crc, prefer-secure); msgr2-only "
			  "monitors need one",
			  ms_mode_choices),
	CONFIG_KEY_UINT(
		"rbd", "lease", "30",
		"seconds a holder keeps a volume without renewing; then another host may fence it and take over", 1,
		3600),
	CONFIG_KEY_CHOICE("rbd", "takeover", "after-lease",
			  "after-lease or never: may another host take a dead holder's volume", takeover_choices),
	CONFIG_KEY_END,
};

/* The string keys and where they go in struct rbd_ctx. */
#define RBD_STR_KEY(key, field)                                                                                        \
	{                                                                                                              \
		key, offsetof(struct rbd_ctx, field), sizeof(((struct rbd_ctx *)0)->field)                             \
	}
static const struct {
	const char *key;
	size_t off, len;
} rbd_str_keys[] = {
	RBD_STR_KEY("conf", conf),
	RBD_STR_KEY("user", user),
	RBD_STR_KEY("keyring", keyring),
	RBD_STR_KEY("pool", pool),
	RBD_STR_KEY("default_size", default_size),
	RBD_STR_KEY("default_fstype", default_fstype),
	RBD_STR_KEY("mapper", mapper),
	RBD_STR_KEY("takeover", takeover),
	RBD_STR_KEY("ms_mode", ms_mode),
};

/* --- configuration -------------------------------------------------------- */

/* Copy the [rbd] values into rc (their types and ranges were checked when
 * the config was read). */
static int read_config(struct rbd_ctx *rc, const struct ballast_config *cfg, struct berr *err)
{
	const char *host = config_get(cfg, "ballast", "host_id");
	unsigned long n;
	int ret;

	for (size_t i = 0; i < sizeof(rbd_str_keys) / sizeof(rbd_str_keys[0]); i++) {
		const char *v = config_get(cfg, "rbd", rbd_str_keys[i].key);

		if ((size_t)snprintf((char *)rc + rbd_str_keys[i].off, rbd_str_keys[i].len, "%s", v ? v : "") >=
		    rbd_str_keys[i].len)
			return berr_set(err, -ENAMETOOLONG, "[rbd] %s is too long", rbd_str_keys[i].key);
	}
	if ((size_t)snprintf(rc->host_id, sizeof(rc->host_id), "%s", host ? host : "localhost") >= sizeof(rc->host_id))
		return berr_set(err, -ENAMETOOLONG, "[ballast] host_id is too long");
	ret = config_get_uint(cfg, "rbd", "timeout", &n, err);
	if (ret < 0)
		return ret;
	rc->timeout = (unsigned)n;
	ret = config_get_uint(cfg, "rbd", "lease", &n, err);
	if (ret < 0)
		return ret;
	rc->lease = (unsigned)n;
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
 * No network I/O here: the cluster is connected on first use, and what a
 * Create interrupted by a crash left mapped here is stopped by a thread of
 * its own (the mapper does its own I/O as it stops).
 */
int be_rbd_init(const struct ballast_config *cfg, void **ctx, struct berr *err)
{
	struct rbd_ctx *rc = calloc(1, sizeof(*rc));
	const char *state = config_get(cfg, "ballast", "state_dir");
	int ret;

	if (!rc)
		return berr_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->changed, NULL);
	pthread_cond_init(&rc->left_done, NULL);
	rc->requested = config_section_given(cfg, "rbd");
	ret = read_config(rc, cfg, err);
	if (ret < 0)
		goto out_free;
	if ((size_t)snprintf(rc->mapdir, sizeof(rc->mapdir), "%s/rbd", state) >= sizeof(rc->mapdir) ||
	    (size_t)snprintf(rc->mounts, sizeof(rc->mounts), "%s/mounts", state) >= sizeof(rc->mounts)) {
		ret = berr_set(err, -ENAMETOOLONG, "state_dir is too long");
		goto out_free;
	}
	ret = helper_init(&rc->helper, cfg, err);
	if (ret < 0)
		goto out_free;
	find_mapper(rc);
	ret = rbd_create_leftovers(rc, err);
	if (ret < 0)
		goto out_free;
	*ctx = rc;
	return 0;
out_free:
	json_decref(rc->leftovers);
	pthread_cond_destroy(&rc->left_done);
	pthread_cond_destroy(&rc->changed);
	pthread_mutex_destroy(&rc->lock);
	free(rc);
	return ret;
}

/* Set up when the config has an [rbd] section or there is a Ceph config
 * to read: on a host with neither the rbd backend is unused, and does not
 * make the driver global. */
int be_rbd_configured(void *ctx)
{
	const struct rbd_ctx *rc = ctx;

	return rc->requested || access(rc->conf, R_OK) == 0;
}

void be_rbd_fini(void *ctx)
{
	struct rbd_ctx *rc = ctx;

	if (!rc)
		return;
	rbd_leftovers_stop(rc);
	if (rc->cluster)
		rados_shutdown(rc->cluster);
	rc->cluster = NULL;
	json_decref(rc->list_cache);
	pthread_cond_destroy(&rc->left_done);
	pthread_cond_destroy(&rc->changed);
	pthread_mutex_destroy(&rc->lock);
	free(rc);
}

/* --- the cluster connection ----------------------------------------------- */

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
int rbd_cluster_get(struct rbd_ctx *rc, rados_t *out, struct berr *err)
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

/* An io context on pool; the caller destroys it. */
int rbd_ioctx_open(struct rbd_ctx *rc, const char *pool, rados_ioctx_t *io, struct berr *err)
{
	rados_t cl = NULL;
	int ret;

	ret = rbd_cluster_get(rc, &cl, err);
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

/* --- options -------------------------------------------------------------- */

const char *rbd_vol_pool(const struct rbd_ctx *rc, const json_t *opts)
{
	const char *p = opts ? opt_get(opts, "pool") : NULL;

	return p ? p : rc->pool;
}

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

const char *rbd_vol_fstype(const struct rbd_ctx *rc, const json_t *opts)
{
	const char *f = opt_get(opts, "fstype");

	return f ? f : rc->default_fstype;
}

int rbd_vol_size(const struct rbd_ctx *rc, const json_t *opts, uint64_t *bytes, struct berr *err)
{
	const char *s = opt_get(opts, "size");

	return parse_size(s ? s : rc->default_size, bytes, err);
}

int rbd_vol_features(const json_t *opts, uint64_t *features, struct berr *err)
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

int rbd_clone_source(const json_t *opts, char *vol, char *snap, struct berr *err)
{
	const char *from = opt_get(opts, "from"), *at;
	struct berr nerr = BERR_INIT;

	if (!from)
		return 0;
	at = strchr(from, '@');
	if (!at)
		return berr_set(err, -EINVAL,
				"from=%.60s: an rbd volume is cloned from a snapshot: from=VOLUME@SNAPSHOT", from);
	snprintf(vol, VOLUME_NAME_MAX + 1, "%.*s", (int)(at - from), from);
	snprintf(snap, VOLUME_NAME_MAX + 1, "%s", at + 1);
	if ((size_t)(at - from) > VOLUME_NAME_MAX || strlen(at + 1) > VOLUME_NAME_MAX ||
	    validate_name(vol, &nerr) < 0 || validate_name(snap, &nerr) < 0)
		return berr_set(err, -EINVAL, "from=%.60s: invalid volume or snapshot name (%s)", from, nerr.msg);
	return 1;
}

/* The options of a clone (from=), or flatten without it. */
static int validate_clone_opts(const json_t *opts, struct berr *err)
{
	char vol[VOLUME_NAME_MAX + 1], snap[VOLUME_NAME_MAX + 1];
	const char *v = opt_get(opts, "flatten");
	int ret;

	if (v && (ret = check_choice(NULL, "flatten", v, bool_choices, err)) < 0)
		return ret;
	ret = rbd_clone_source(opts, vol, snap, err);
	if (ret < 0)
		return ret;
	if (ret == 0 && v)
		return berr_set(err, -EINVAL, "flatten=%s is only for a clone (with from=VOLUME@SNAPSHOT)", v);
	for (int i = 0; ret == 1 && clone_inherits[i]; i++)
		if (opt_get(opts, clone_inherits[i]))
			return berr_set(err, -EINVAL, "%s cannot be given with from=: a clone has its parent's %s",
					clone_inherits[i],
					strcmp(clone_inherits[i], "size") == 0
						? "size (grow it later with ballast resize)"
						: "file system and features");
	return ret;
}

int be_rbd_validate_opts(void *ctx, const json_t *opts, struct berr *err)
{
	struct rbd_ctx *rc = ctx;
	const char *fstype = rbd_vol_fstype(rc, opts), *v;
	struct vol_perms perms;
	uint64_t bytes, features, min;
	int ret;

	ret = validate_opt_keys(opts, "rbd", rbd_opts, err);
	if (ret == 0)
		ret = parse_perms(opts, &perms, err);
	if (ret == 0)
		ret = rbd_vol_features(opts, &features, err);
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
	if ((ret = validate_fs_options(opts, err)) < 0)
		return ret;
	ret = validate_clone_opts(opts, err);
	if (ret != 0) /* a clone has its parent's size */
		return ret < 0 ? ret : 0;
	ret = rbd_vol_size(rc, opts, &bytes, err);
	if (ret < 0)
		return ret;
	min = strcmp(fstype, "xfs") == 0 ? RBD_MIN_XFS : RBD_MIN_EXT4;
	if (bytes < min)
		return berr_set(err, -EINVAL, "size %s is too small for %s; the least is %llu MiB",
				opt_get(opts, "size") ? opt_get(opts, "size") : rc->default_size, fstype,
				(unsigned long long)(min >> 20));
	return 0;
}

/* --- metadata ------------------------------------------------------------- */

/*
 * Image metadata key into buf (NUL-terminated). 0, -ENOENT when the key is
 * missing, else -errno. librbd does not terminate the value and does not
 * update len on success: zero the buffer and pass one byte less.
 */
int rbd_meta_get(rbd_image_t img, const char *key, char *buf, size_t len)
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

/*
 * The Ceph client ("client.N") of the lock owner at address owner into
 * buf, from the image's lockers (which name the client beside its
 * address); "" when they do not show that owner: the lock changed hands
 * between the two reads, and a lease is then matched to nobody.
 */
static void lock_client_of(rbd_image_t img, const char *owner, char *buf, size_t len)
{
	char tag[128], clients[512], cookies[512], addrs[512];
	size_t tlen = sizeof(tag), clen = sizeof(clients), klen = sizeof(cookies), alen = sizeof(addrs);
	const char *c = clients, *a = addrs;
	int exclusive = 0;
	ssize_t n;

	buf[0] = '\0';
	n = rbd_list_lockers(img, &exclusive, tag, &tlen, clients, &clen, cookies, &klen, addrs, &alen);
	for (ssize_t i = 0; i < n; i++, c += strlen(c) + 1, a += strlen(a) + 1) {
		if (strcmp(a, owner) == 0) {
			snprintf(buf, len, "%s", c);
			break;
		}
	}
}

void rbd_meta_free(struct rbd_meta *m)
{
	json_decref(m->options);
	m->options = NULL;
}

/*
 * Read the image's ballast metadata and lock state. Returns 0, -ENOENT
 * when the image does not exist, else -errno with a message.
 */
/* img's parent as "image@snap" into buf, "" when it has none. */
static void parent_of(rbd_image_t img, char *buf, size_t len)
{
	rbd_linked_image_spec_t image = { 0 };
	rbd_snap_spec_t snap = { 0 };

	buf[0] = '\0';
	if (rbd_get_parent(img, &image, &snap) < 0)
		return;
	snprintf(buf, len, "%s@%s", image.image_name ? image.image_name : "", snap.name ? snap.name : "");
	rbd_linked_image_spec_cleanup(&image);
	rbd_snap_spec_cleanup(&snap);
}

int rbd_meta_read_img(rbd_image_t img, const char *pool, const char *name, struct rbd_meta *m, struct berr *err)
{
	char buf[RBD_META_MAX];
	int ret;

	memset(m, 0, sizeof(*m));
	ret = rbd_meta_get(img, META_OPTIONS, buf, sizeof(buf));
	if (ret == 0)
		m->options = json_loads(buf, 0, NULL);
	else if (ret != -ENOENT)
		goto out_err;
	if ((ret = rbd_meta_get(img, META_FSTYPE, m->fstype, sizeof(m->fstype))) < 0 && ret != -ENOENT)
		goto out_err;
	if ((ret = rbd_meta_get(img, META_CREATED, m->created, sizeof(m->created))) < 0 && ret != -ENOENT)
		goto out_err;
	if ((ret = rbd_meta_get(img, META_STATE, m->state, sizeof(m->state))) < 0 && ret != -ENOENT)
		goto out_err;
	if ((ret = rbd_meta_get(img, META_HOLDER, m->holder, sizeof(m->holder))) < 0 && ret != -ENOENT)
		goto out_err;
	if ((ret = rbd_meta_get(img, META_LEASE, m->lease, sizeof(m->lease))) < 0 && ret != -ENOENT)
		goto out_err;
	ret = lock_owned(img, m->owners, sizeof(m->owners));
	if (ret < 0)
		goto out_err;
	m->locked = ret;
	if (m->locked && !strchr(m->owners, ','))
		lock_client_of(img, m->owners, m->lock_client, sizeof(m->lock_client));
	parent_of(img, m->parent, sizeof(m->parent));
	return 0;
out_err:
	berr_set(err, ret, "cannot read the metadata of image %s/%s: %s", pool, name, strerror(-ret));
	rbd_meta_free(m);
	return ret;
}

int rbd_meta_read(rados_ioctx_t io, const char *pool, const char *name, struct rbd_meta *m, struct berr *err)
{
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
	ret = rbd_meta_read_img(img, pool, name, m, err);
	rbd_close(img);
	return ret;
}

int rbd_labels_copied(const struct rbd_meta *m)
{
	const char *from = m->options ? json_string_value(json_object_get(m->options, "from")) : NULL;

	return m->parent[0] && m->options && (!from || strcmp(from, m->parent) != 0);
}

int rbd_meta_finished(const struct rbd_meta *m)
{
	return m->options && json_is_object(m->options) && strcmp(m->state, "ready") == 0 && !rbd_labels_copied(m);
}

/* For a volume the catalog knows a missing image is the user's error to
 * read about, not a quiet -ENOENT. */
int rbd_volume_open(struct rbd_ctx *rc, const struct be_volume *vol, rados_ioctx_t *io, struct rbd_meta *m,
		    struct berr *err)
{
	const char *pool = rbd_vol_pool(rc, vol->opts);
	int ret;

	ret = rbd_ioctx_open(rc, pool, io, err);
	if (ret < 0)
		return ret;
	ret = rbd_meta_read(*io, pool, vol->name, m, err);
	if (ret == -ENOENT)
		ret = berr_set(err, -ENOENT, "volume %s: image %s/%s does not exist", vol->name, pool, vol->name);
	if (ret < 0) {
		rados_ioctx_destroy(*io);
		*io = NULL;
	}
	return ret;
}

/* Set key=value on image name, or remove key for a NULL value (takes and
 * drops the lock cooperatively: only while nobody holds it explicitly). */
int rbd_meta_set(rados_ioctx_t io, const char *pool, const char *name, const char *const *kv, struct berr *err)
{
	rbd_image_t img = NULL;
	int ret;

	ret = rbd_open(io, name, &img, NULL);
	if (ret < 0)
		return berr_set(err, ret, "cannot open image %s/%s: %s", pool, name, strerror(-ret));
	for (; kv[0]; kv += 2) {
		ret = kv[1] ? rbd_metadata_set(img, kv[0], kv[1]) : rbd_metadata_remove(img, kv[0]);
		if (ret == -ENOENT && !kv[1])
			ret = 0;
		if (ret < 0) {
			berr_set(err, ret, "cannot %s %s %s image %s/%s: %s", kv[1] ? "store" : "drop", kv[0],
				 kv[1] ? "with" : "of", pool, name, strerror(-ret));
			break;
		}
	}
	rbd_close(img);
	return ret;
}
