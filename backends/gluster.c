/*
 * gluster.c - volumes as directories of one GlusterFS volume, shared by
 * every host that reaches it.
 *
 * Layout inside the Gluster volume ([gluster] dir, default /ballast):
 *   <dir>/<name>                  the volume's data (a FUSE subdirectory
 *                                 mount on each host that mounts it)
 *   <dir>/.ballast/<name>.json    ballast's facts: options, created_at,
 *                                 creator host, complete flag
 *   <dir>/.ballast/<name>.holder  exclusive volumes: who holds it, since
 *                                 when, lease expiry (renewed while mounted)
 *   <dir>/.ballast/users/<name>@<host>  every volume: one record per host
 *                                 that has it mounted, with a lease, so that
 *                                 Remove elsewhere refuses while it is used
 *   <dir>/.ballast/<name>.fence   hosts fenced from the volume (auth.reject),
 *                                 so that each can lift its own fence
 *   <dir>/.ballast/trash/         removed volumes, deleted in the background
 *
 * Everything but the data path goes through libgfapi on ONE glfs_t per
 * daemon, opened on the first request (init never touches the network) and
 * kept for the daemon's life: glfs_fini takes ~10 s. gfapi calls can block
 * for as long as a server does not answer, so every operation runs on a
 * worker thread and the request waits at most [gluster] timeout seconds
 * (gluster_engine.c). Quotas and fences are set through glusterd's CLI
 * socket, since a client cannot set them itself (gluster_hold.c).
 *
 * This file: the ops (be_gluster_*) and the thread that renews this host's
 * leases while its volumes are mounted. gluster_int.h maps the rest.
 */
#define LOG_TAG "gluster"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "common.h"
#include "config.h"
#include "crashpoint.h"
#include "fsutil.h"
#include "gluster_int.h"
#include "log.h"
#include "timeutil.h"
#include "validate.h"

extern const struct backend_ops be_gluster_ops;

static const char *const bool_choices[] = { "true", "false", NULL };

/* The [gluster] section: every key with its type, default and range.
 * Values are checked when the config is read (config.c), never clamped. */
static const struct config_key gluster_config_keys[] = {
	CONFIG_KEY_STR("gluster", "servers", NULL, "volfile servers, comma-separated; the first reachable is used"),
	CONFIG_KEY_STR("gluster", "volume", NULL, "the Gluster volume that holds ballast volumes"),
	CONFIG_KEY_STR("gluster", "dir", "/ballast", "directory inside the Gluster volume for ballast volumes"),
	CONFIG_KEY_UINT("gluster", "timeout", "10", "seconds; bounds every Gluster call", 1, 3600),
	CONFIG_KEY_STR("gluster", "log", NULL, "gfapi log file (default: none)"),
	CONFIG_KEY_STR("gluster", "glusterd_socket", NULL,
		       "glusterd CLI socket, for quota (default: /run/glusterd.socket)"),
	CONFIG_KEY_UINT("gluster", "lease", "30", "seconds a holder of an exclusive volume keeps it without renewing",
			1, 86400),
	CONFIG_KEY_CHOICE("gluster", "takeover", "after-lease",
			  "after-lease or never: may another host take a dead holder's volume", takeover_choices),
	CONFIG_KEY_END,
};
static const char *const gl_opts[] = {
	"backend", "exclusive", "gid", "mode", "quota", "takeover", "uid", "from", NULL
};
#define GL_NO_SNAPSHOTS "Gluster's need thin LVM bricks and take the whole Gluster volume; copy one: from=VOLUME"
/* Options a copy (from=) takes from the volume it copies. */
static const char *const copy_inherits[] = { "uid", "gid", "mode", NULL };

/* Keeps what fini deliberately does not free reachable, so that leak
 * checkers do not report it: a handle (glfs_fini would block exit for 10 s)
 * or a context still used by a stuck worker thread. */
static void *volatile gl_kept_at_exit[2];

/* --- small lists ---------------------------------------------------------- */

static struct gl_name *names_find(struct gl_name *l, const char *name)
{
	for (; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			return l;
	return NULL;
}

static int names_has(struct gl_name *l, const char *name)
{
	return names_find(l, name) != NULL;
}

/* Add name (once). Caller holds mu. */
static void names_add(struct gl_name **l, const char *name, int exclusive)
{
	struct gl_name *n;

	if (names_has(*l, name))
		return;
	n = calloc(1, sizeof(*n));
	if (!n) {
		log_errx("out of memory");
		return;
	}
	n->exclusive = exclusive;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->next = *l;
	*l = n;
}

/* Remove name; returns whether it was there. Caller holds mu. */
static int names_del(struct gl_name **l, const char *name)
{
	for (; *l; l = &(*l)->next) {
		if (strcmp((*l)->name, name) == 0) {
			struct gl_name *n = *l;

			*l = n->next;
			free(n);
			return 1;
		}
	}
	return 0;
}

static void names_free(struct gl_name **l)
{
	while (*l) {
		struct gl_name *n = *l;

		*l = n->next;
		free(n);
	}
}

/* --- the lease renewer ---------------------------------------------------- */

/* The volumes to renew now: [{"name", "exclusive"}] (new reference). A lost
 * hold is renewed no more: only the user record of its (dead) mount. */
static json_t *renew_list(struct gl_ctx *gc)
{
	json_t *names = json_array();

	pthread_mutex_lock(&gc->mu);
	for (struct gl_name *n = gc->mounted; n; n = n->next)
		json_array_append_new(names, json_pack("{s:s, s:b, s:I}", "name", n->name, "exclusive",
						       n->exclusive && !n->lost, "gen", (json_int_t)n->gen));
	pthread_mutex_unlock(&gc->mu);
	return names;
}

/* Renew one volume's records (item: from renew_list). 0, 1 when nothing
 * was renewed (not mounted here any more, or its hold found lost), or
 * -errno with err set. A hold found lost is marked so and logged once: it
 * is not an outage. */
static int renew_one(struct gl_ctx *gc, json_t *item, struct berr *err)
{
	const char *vname = json_string_value(json_object_get(item, "name"));
	struct gl_name *n;
	int lost = 0, still, ret = 0;

	/* Released since the list was taken: leave it. */
	pthread_mutex_lock(&gc->renew_mu);
	pthread_mutex_lock(&gc->mu);
	still = names_has(gc->mounted, vname);
	pthread_mutex_unlock(&gc->mu);
	if (still) {
		ret = gl_run(gc, gl_op_renew, vname, item, 0, NULL, &lost, err);
		if (ret == 0)
			CRASH_POINT("gluster.renew.after-write");
	}
	if (still && ret == 0 && !lost) {
		pthread_mutex_lock(&gc->mu);
		n = names_find(gc->mounted, vname);
		if (n)
			n->unverified = 0;
		pthread_mutex_unlock(&gc->mu);
	}
	if (still && lost) {
		pthread_mutex_lock(&gc->mu);
		n = names_find(gc->mounted, vname);
		if (n && !n->lost && (json_int_t)n->gen == json_integer_value(json_object_get(item, "gen"))) {
			n->lost = 1;
			log_errx("volume %s: this host's hold is lost: %s; not renewing it. Its mount here may be "
				 "fenced; the next Mount here takes the volume again, or is refused while another host "
				 "holds it",
				 vname, err->msg);
		}
		pthread_mutex_unlock(&gc->mu);
		ret = 1;
	}
	pthread_mutex_unlock(&gc->renew_mu);
	return still ? ret : 1;
}

/* Renew this host's records of the volumes mounted here (user records,
 * and the holds of exclusive ones) every third of the lease. */
static void *renewer_thread(void *arg)
{
	struct gl_ctx *gc = arg;
	int period = gc->lease_s / 3 > 0 ? gc->lease_s / 3 : 1;
	int failing = 0, failed = 0;

	pthread_mutex_lock(&gc->mu);
	while (!gc->stopping) {
		struct timespec ts;
		json_t *names, *item;
		size_t i;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += period;
		while (!gc->stopping && pthread_cond_timedwait(&gc->cv, &gc->mu, &ts) != ETIMEDOUT)
			;
		if (gc->stopping)
			break;
		pthread_mutex_unlock(&gc->mu);
		names = renew_list(gc);
		json_array_foreach (names, i, item) {
			struct berr err = BERR_INIT;
			int ret = renew_one(gc, item, &err);

			if (ret < 0) {
				/* Logged once per outage, not every period. */
				if (!failing && !gc->stopping)
					log_errx("volume %s: lease not renewed: %s",
						 json_string_value(json_object_get(item, "name")), err.msg);
				failed = 1;
			} else if (ret == 0) {
				atomic_fetch_add(&gc->lease_renewals, 1);
			}
		}
		if (failing && !failed)
			log_infox("leases renewed again");
		failing = failed;
		failed = 0;
		json_decref(names);
		pthread_mutex_lock(&gc->mu);
	}
	pthread_mutex_unlock(&gc->mu);
	return NULL;
}

/* Keep renewing name's records while it is mounted here. taken: a Mount
 * took its hold just now, so a hold it had lost is this host's again (not
 * so for a mount found at start). */
static void mounted_start(struct gl_ctx *gc, const char *name, int exclusive, int taken)
{
	struct gl_name *n;

	pthread_mutex_lock(&gc->mu);
	n = names_find(gc->mounted, name);
	if (!n) {
		names_add(&gc->mounted, name, exclusive);
		n = names_find(gc->mounted, name);
		if (n && !taken)
			n->unverified = exclusive;
	}
	if (n && taken) {
		n->lost = 0;
		n->unverified = 0;
		n->gen++;
	}
	if (!gc->renewer_started && !gc->stopping) {
		if (pthread_create(&gc->renewer, NULL, renewer_thread, gc) == 0)
			gc->renewer_started = 1;
		else
			log_errx("cannot start the lease renewal thread: mount records will expire");
	}
	pthread_mutex_unlock(&gc->mu);
}

/* Is name mounted here with a hold it lost (2: or one not yet seen to be
 * this host's since a restart)? */
static int mounted_lost(struct gl_ctx *gc, const char *name)
{
	struct gl_name *n;
	int lost;

	pthread_mutex_lock(&gc->mu);
	n = names_find(gc->mounted, name);
	lost = !n ? 0 : n->lost ? 1 : n->unverified ? 2 : 0;
	pthread_mutex_unlock(&gc->mu);
	return lost;
}

/* Stop renewing and drop this host's records of name (best effort: a
 * record left behind expires with its lease). */
static void mounted_stop(struct gl_ctx *gc, const char *name, int exclusive)
{
	struct berr err = BERR_INIT;
	json_t *in = json_pack("{s:b}", "exclusive", exclusive);

	pthread_mutex_lock(&gc->renew_mu);
	pthread_mutex_lock(&gc->mu);
	names_del(&gc->mounted, name);
	pthread_mutex_unlock(&gc->mu);
	if (gl_run(gc, gl_op_release, name, in, 0, NULL, NULL, &err) < 0)
		log_warnx("volume %s: %s (the lease will run out)", name, err.msg);
	pthread_mutex_unlock(&gc->renew_mu);
	json_decref(in);
}

/* --- init and fini -------------------------------------------------------- */

/* Free a context nothing uses any more (no thread, no handle). */
static void ctx_free(struct gl_ctx *gc)
{
	names_free(&gc->mounted);
	pthread_cond_destroy(&gc->cv);
	pthread_mutex_destroy(&gc->mu);
	pthread_mutex_destroy(&gc->renew_mu);
	free(gc);
}

static int be_gluster_init(const struct ballast_config *cfg, void **ctx, struct berr *err)
{
	struct gl_ctx *gc = calloc(1, sizeof(*gc));
	const char *servers = config_get(cfg, "gluster", "servers");
	const char *volume = config_get(cfg, "gluster", "volume");
	const char *dir = config_get(cfg, "gluster", "dir");
	const char *v;
	unsigned long n;
	char *save = NULL;
	int ret;

	if (!gc)
		return berr_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&gc->mu, NULL);
	pthread_mutex_init(&gc->renew_mu, NULL);
	pthread_cond_init(&gc->cv, NULL);
	ret = config_get_uint(cfg, "gluster", "timeout", &n, err);
	if (ret < 0)
		goto out_free;
	gc->timeout_s = (int)n; /* at most 3600: the key's range */
	ret = config_get_uint(cfg, "gluster", "lease", &n, err);
	if (ret < 0)
		goto out_free;
	gc->lease_s = (int)n; /* at most 86400: the key's range */
	v = config_get(cfg, "gluster", "takeover");
	if (v && (ret = check_choice("gluster", "takeover", v, takeover_choices, err)) < 0)
		goto out_free;
	gc->takeover = !v || strcmp(v, "after-lease") == 0;
	snprintf(gc->host_id, sizeof(gc->host_id), "%s", config_get(cfg, "ballast", "host_id"));
	snprintf(gc->log, sizeof(gc->log), "%s", (v = config_get(cfg, "gluster", "log")) ? v : "");
	snprintf(gc->sock, sizeof(gc->sock), "%s",
		 (v = config_get(cfg, "gluster", "glusterd_socket")) ? v : GL_DEFAULT_SOCK);
	if ((size_t)snprintf(gc->mounts, sizeof(gc->mounts), "%s/mounts", config_get(cfg, "ballast", "state_dir")) >=
	    sizeof(gc->mounts)) {
		ret = berr_set(err, -ENAMETOOLONG, "[ballast] state_dir is too long");
		goto out_free;
	}
	if (!dir || dir[0] != '/' || strlen(dir) >= GL_DIR_MAX || strstr(dir, "/.") || strchr(dir, ',')) {
		ret = berr_set(err, -EINVAL, "[gluster] dir = %s: expected an absolute path like /ballast",
			       dir ? dir : "");
		goto out_free;
	}
	snprintf(gc->dir, sizeof(gc->dir), "%s", dir);
	while (strlen(gc->dir) > 1 && gc->dir[strlen(gc->dir) - 1] == '/')
		gc->dir[strlen(gc->dir) - 1] = '\0';
	if (strcmp(gc->dir, "/") == 0)
		gc->dir[0] = '\0'; /* volumes at the root: "<dir>/<name>" stays right */
	ret = helper_init(&gc->helper, cfg, err);
	if (ret < 0)
		goto out_free;
	if (servers && volume && servers[0] && volume[0]) {
		if (strlen(volume) >= sizeof(gc->volume) || strlen(servers) >= sizeof(gc->servers_buf)) {
			ret = berr_set(err, -EINVAL, "[gluster] servers or volume is too long");
			goto out_free;
		}
		snprintf(gc->volume, sizeof(gc->volume), "%s", volume);
		snprintf(gc->servers_buf, sizeof(gc->servers_buf), "%s", servers);
		for (char *s = strtok_r(gc->servers_buf, ", ", &save); s; s = strtok_r(NULL, ", ", &save)) {
			if (gc->nservers == GL_SERVERS_MAX) {
				ret = berr_set(err, -EINVAL, "[gluster] servers: at most %d", GL_SERVERS_MAX);
				goto out_free;
			}
			if (strchr(s, ':') || strchr(s, '/')) {
				ret = berr_set(err, -EINVAL, "[gluster] servers: \"%s\" is not a host name or address",
					       s);
				goto out_free;
			}
			gc->servers[gc->nservers++] = s;
		}
		gc->configured = gc->nservers > 0;
	}
	if (!gc->configured)
		log_infox("[gluster] servers and volume are not set: the gluster backend refuses volumes");
	*ctx = gc;
	return 0;
out_free:
	ctx_free(gc);
	return ret;
}

static void be_gluster_fini(void *ctx)
{
	struct gl_ctx *gc = ctx;
	int busy, listed = 0;

	pthread_mutex_lock(&gc->mu);
	gc->stopping = 1;
	pthread_cond_broadcast(&gc->cv);
	pthread_mutex_unlock(&gc->mu);
	if (gc->renewer_started)
		pthread_join(gc->renewer, NULL);
	pthread_mutex_lock(&gc->mu);
	for (struct gl_handle *h = gc->handles; h; h = h->next)
		listed++;
	/* A worker stuck in gfapi, or a handle closing, still uses gc. */
	busy = gc->workers > 0 || gc->nhandles > listed;
	/* Holds stay: the volumes stay mounted across a restart, and the
	 * lease runs out if this host does not come back. */
	if (gc->handles) {
		/* Not finalised: glfs_fini would hold up the exit ~10 s. */
		gl_kept_at_exit[0] = gc->handles;
		gc->handles = NULL;
		gc->cur = NULL;
	}
	pthread_mutex_unlock(&gc->mu);
	if (busy) {
		gl_kept_at_exit[1] = gc;
		return;
	}
	ctx_free(gc);
}

/* --- the ops -------------------------------------------------------------- */

static int not_configured(struct berr *err)
{
	return berr_set(err, -ENOTSUP,
			"the gluster backend is not configured: set [gluster] servers and volume in ballast.conf");
}

static int be_gluster_validate_opts(void *ctx, const json_t *opts, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	struct vol_perms perms;
	const char *v;
	uint64_t bytes;
	int ret;

	ret = validate_opt_keys(opts, be_gluster_ops.name, be_gluster_ops.options, err);
	if (ret == 0)
		ret = parse_perms(opts, &perms, err);
	if (ret == 0)
		ret = validate_copy_from(opts, 0, "gluster volumes have no snapshots (" GL_NO_SNAPSHOTS ")",
					 copy_inherits, err);
	if (ret < 0)
		return ret;
	if ((v = opt_get(opts, "exclusive")) && (ret = check_choice(NULL, "exclusive", v, bool_choices, err)) < 0)
		return ret;
	if ((v = opt_get(opts, "takeover")) && (ret = check_choice(NULL, "takeover", v, takeover_choices, err)) < 0)
		return ret;
	if ((v = opt_get(opts, "quota"))) {
		ret = parse_size(v, &bytes, err);
		if (ret < 0)
			return ret;
		if (bytes < (1ULL << 20))
			return berr_set(err, -EINVAL, "quota %s is too small; the least is 1 MiB", v);
	}
	if (!gc->configured)
		return not_configured(err);
	return 0;
}

static int is_exclusive(const struct be_volume *vol)
{
	const char *v = opt_get(vol->opts, "exclusive");

	return v && strcmp(v, "true") == 0;
}

/* May another host's expired hold of vol be taken over: the volume's
 * -o takeover, else [gluster] takeover. */
static int may_take_over(const struct gl_ctx *gc, const struct be_volume *vol)
{
	return gl_takeover_policy(opt_get(vol->opts, "takeover"), gc->takeover);
}

static int be_gluster_remove(void *ctx, const struct be_volume *vol, struct berr *err);

/* Create, and Create of a copy of from (NULL: none). */
static int create_volume(void *ctx, const struct be_volume *vol, const struct be_volume *from, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	char created[40];
	json_t *in, *meta = NULL;
	struct vol_perms perms;
	uint64_t bytes = 0;
	int made = 0, ret;

	if (!gc->configured)
		return not_configured(err);
	ret = parse_perms(vol->opts, &perms, err);
	if (ret == 0 && opt_get(vol->opts, "quota"))
		ret = parse_size(opt_get(vol->opts, "quota"), &bytes, err);
	if (ret < 0)
		return ret;
	rfc3339_now(created, sizeof(created));
	in = json_pack("{s:O, s:s, s:I, s:I, s:I}", "options", vol->opts, "created_at", created, "uid",
		       (json_int_t)perms.uid, "gid", (json_int_t)perms.gid, "mode", (json_int_t)perms.mode);
	if (!in)
		return berr_set(err, -ENOMEM, "out of memory");
	ret = gl_run(gc, gl_op_create, vol->name, in, 0, &meta, &made, err);
	json_decref(in);
	CRASH_POINT("gluster.create.after-record");
	if (ret == 0 && from && !json_is_true(json_object_get(meta, "complete"))) {
		/* a copy another host makes is not finished here */
		if (!made && strcmp(json_string_value(json_object_get(meta, "created_by")) ?: "", gc->host_id) != 0)
			ret = berr_set(err, -EBUSY, "volume %s is being copied by %s", vol->name,
				       json_string_value(json_object_get(meta, "created_by")) ?: "another host");
		if (ret == 0)
			ret = gl_copy_volume(gc, vol->name, from->name, err);
		CRASH_POINT("gluster.copy.after-copy");
	}
	if (ret == 0 && !json_is_true(json_object_get(meta, "complete"))) {
		/* Made here, or by a Create that was interrupted: finish it.
		 * The quota must hold before anyone can use the volume. */
		if (bytes)
			ret = gl_set_quota(gc, vol->name, bytes, err);
		CRASH_POINT("gluster.create.after-quota");
		if (ret < 0)
			berr_set(err, ret, "cannot set quota on volume %s", vol->name);
		if (ret == 0)
			ret = gl_run(gc, gl_op_complete, vol->name, meta, 0, NULL, NULL, err);
	}
	json_decref(meta);
	if (ret < 0 && made) {
		/* Ours, and unfinished: undo it (backend.h's contract). A
		 * record that was there before is another host's volume and
		 * is left alone. */
		struct berr ignored = BERR_INIT;

		be_gluster_remove(ctx, vol, &ignored);
	}
	if (ret < 0)
		return ret;
	log_infox("volume %s: %s in gluster volume %s", vol->name, made ? "created" : "adopted", gc->volume);
	return made ? 0 : BE_ADOPTED;
}

static int be_gluster_create(void *ctx, const struct be_volume *vol, struct berr *err)
{
	return create_volume(ctx, vol, NULL, err);
}

static int mount_target(const struct gl_ctx *gc, const char *name, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%s", gc->mounts, name) < len ? 0 : -ENAMETOOLONG;
}

/* Remove's checks alone (held or mounted on another host?), before
 * ballastd records the Remove. */
static int be_gluster_remove_check(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	json_t *check, *meta = NULL;
	int ret;

	if (!gc->configured)
		return not_configured(err);
	check = json_pack("{s:b}", "check_only", 1);
	if (!check)
		return berr_set(err, -ENOMEM, "out of memory");
	ret = gl_run(gc, gl_op_remove, vol->name, check, 0, &meta, NULL, err);
	json_decref(check);
	json_decref(meta);
	return ret;
}

/* A copy of a volume no host uses (ballastd checked this one). */
static int be_gluster_create_copy(void *ctx, const struct be_volume *vol, const struct be_volume *from,
				  struct berr *err)
{
	int ret = be_gluster_remove_check(ctx, from, err);

	return ret < 0 ? ret : create_volume(ctx, vol, from, err);
}

static int be_gluster_remove(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	char target[PATH_MAX];
	json_t *meta = NULL, *check;
	int moved = 0, ret;

	if (!gc->configured)
		return not_configured(err);
	mount_target(gc, vol->name, target, sizeof(target));
	if (is_mountpoint(target) == 1) {
		/* Left mounted by a failed unmount with no user: retry. */
		const char *args[] = { "umount", target, NULL };

		ret = helper_run(&gc->helper, args, err);
		if (ret < 0)
			return ret;
	}
	/* The quota goes first, while its directory still has its path:
	 * glusterd finds limits by path. */
	check = json_pack("{s:b}", "check_only", 1);
	ret = gl_run(gc, gl_op_remove, vol->name, check, 0, &meta, NULL, err);
	json_decref(check);
	if (ret == 0 && opt_get(gl_meta_opts(meta), "quota")) {
		struct berr qerr = BERR_INIT;

		if (gl_set_quota(gc, vol->name, 0, &qerr) < 0)
			log_infox("volume %s: quota remove: %s", vol->name, qerr.msg);
	}
	json_decref(meta);
	meta = NULL;
	CRASH_POINT("gluster.remove.after-quota");
	if (ret == 0)
		ret = gl_run(gc, gl_op_remove, vol->name, NULL, 0, &meta, &moved, err);
	json_decref(meta);
	CRASH_POINT("gluster.remove.after-move");
	if (ret == 0 && moved) {
		struct berr ignored = BERR_INIT;

		/* The data goes in the background: a large tree must not hold
		 * up this request nor count as a hung server. */
		gl_run(gc, gl_op_purge, vol->name, NULL, 1, NULL, NULL, &ignored);
	}
	if (ret == 0)
		gl_unfence_all(gc, vol->name);
	if (rmdir(target) < 0 && errno != ENOENT && errno != ENOTDIR)
		log_warn("cannot remove mount point %s", target);
	pthread_mutex_lock(&gc->mu);
	names_del(&gc->mounted, vol->name);
	pthread_mutex_unlock(&gc->mu);
	return ret;
}

static int be_gluster_unmount(void *ctx, const struct be_volume *vol, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	char target[PATH_MAX];
	int ret = 0;

	mount_target(gc, vol->name, target, sizeof(target));
	if (is_mountpoint(target) == 1) {
		const char *args[] = { "umount", target, NULL };

		ret = helper_run(&gc->helper, args, err);
	}
	CRASH_POINT("gluster.unmount.after-umount");
	if (ret == 0 && rmdir(target) < 0 && errno != ENOENT)
		log_warn("cannot remove mount point %s", target);
	if (ret == 0)
		mounted_stop(gc, vol->name, is_exclusive(vol));
	return ret;
}

/* Mount name's directory of the Gluster volume at target (FUSE, through
 * mount.ballast). 0 or -errno with err set. */
static int fuse_mount(struct gl_ctx *gc, const char *name, const char *target, struct berr *err)
{
	char source[GL_PATH_MAX + 512], options[GL_PATH_MAX + 64] = "";
	struct helper h = gc->helper;
	size_t off;
	int ret;

	snprintf(source, sizeof(source), "%s:/%s%s/%s", gc->servers[0], gc->volume, gc->dir, name);
	off = (size_t)snprintf(options, sizeof(options), "%s", gc->nservers > 1 ? "backup-volfile-servers=" : "");
	for (int i = 1; i < gc->nservers && off < sizeof(options); i++)
		off += (size_t)snprintf(options + off, sizeof(options) - off, "%s%s", i > 1 ? ":" : "", gc->servers[i]);
	/* A client that cannot reach any server fails on its own
	 * well within this; the bound is for a hung one. */
	if (h.timeout_s > gc->timeout_s + 5)
		h.timeout_s = gc->timeout_s + 5;
	if (options[0]) {
		const char *args[] = { "mount", "--fstype", "glusterfs", "--options", options, source, target, NULL };

		ret = helper_run(&h, args, err);
	} else {
		const char *args[] = { "mount", "--fstype", "glusterfs", source, target, NULL };

		ret = helper_run(&h, args, err);
	}
	if (ret == 0 && is_mountpoint(target) != 1)
		ret = berr_set(err, -EIO, "mount.ballast reported success but %s is not a mount point", target);
	if (ret < 0 && is_mountpoint(target) == 1) {
		/* mounted after all (mount.ballast died or hit its bound after
		 * the mount): undo it */
		const char *args[] = { "umount", target, NULL };
		struct berr ignored = BERR_INIT;

		helper_run(&gc->helper, args, &ignored);
	}
	return ret;
}

/* The mount of a hold this host lost (fenced, or released by hand) is dead
 * or belongs to the past holder: now that the hold is this host's again,
 * it goes, and a fresh mount (after lifting this host's fence) replaces
 * it. 0 or -errno with err set. */
static int drop_lost_mount(struct gl_ctx *gc, const struct be_volume *vol, const char *target, int held,
			   struct berr *err)
{
	const char *args[] = { "umount", target, NULL };
	int lost = mounted_lost(gc, vol->name);

	/* A mount found at start whose hold this Mount had to take anew
	 * (not merely renew) dates from a hold lost meanwhile. */
	if (lost == 2)
		lost = held == 1;
	if (!is_exclusive(vol) || !lost || is_mountpoint(target) != 1)
		return 0;
	log_warnx("volume %s: taken again after its hold was lost: replacing its old mount at %s", vol->name, target);
	return helper_run(&gc->helper, args, err);
}

static int be_gluster_mount(void *ctx, const struct be_volume *vol, char *path, size_t len, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	char target[PATH_MAX];
	json_t *in;
	int held = 0, ret;

	if (!gc->configured)
		return not_configured(err);
	in = json_pack("{s:b}", "exclusive", is_exclusive(vol));
	if (!in)
		return berr_set(err, -ENOMEM, "out of memory");
	if (is_exclusive(vol)) {
		ret = gl_fence_expired(gc, vol->name, may_take_over(gc, vol), in, err);
		if (ret < 0) {
			json_decref(in);
			return ret;
		}
		if (json_object_get(in, "fenced"))
			CRASH_POINT("gluster.takeover.after-fence");
	}
	ret = gl_run(gc, gl_op_prepare, vol->name, in, 0, NULL, &held, err);
	json_decref(in);
	CRASH_POINT("gluster.mount.after-hold");
	if (ret < 0) {
		if (held) /* taken after all, by a call that outlived its wait */
			mounted_stop(gc, vol->name, 1);
		return ret;
	}
	mount_target(gc, vol->name, target, sizeof(target));
	ret = mkdir_p(gc->mounts, 0700);
	if (ret == 0 && mkdir(target, 0755) < 0 && errno != EEXIST)
		ret = -errno;
	if (ret < 0) {
		berr_set(err, ret, "cannot create mount point %s: %s", target, strerror(-ret));
		goto out_release;
	}
	ret = drop_lost_mount(gc, vol, target, held, err);
	if (ret < 0)
		goto out_release;
	if (is_mountpoint(target) != 1) {
		if (is_exclusive(vol) && (ret = gl_unfence_self(gc, vol->name, err)) < 0)
			goto out_rmdir;
		ret = fuse_mount(gc, vol->name, target, err);
		if (ret < 0)
			goto out_rmdir;
		CRASH_POINT("gluster.mount.after-mount");
	}
	mounted_start(gc, vol->name, is_exclusive(vol), 1);
	snprintf(path, len, "%s", target);
	return 0;
out_rmdir:
	rmdir(target);
out_release:
	mounted_stop(gc, vol->name, is_exclusive(vol));
	return ret;
}

static int be_gluster_is_mounted(void *ctx, const struct be_volume *vol)
{
	struct gl_ctx *gc = ctx;
	char target[PATH_MAX];
	int ret;

	/* A lost hold's mount is not one to hand out, nor one found at
	 * start whose hold is not yet seen to be this host's: the next
	 * Mount must take the volume (again), or be refused. */
	if (mounted_lost(gc, vol->name))
		return 0;
	mount_target(gc, vol->name, target, sizeof(target));
	ret = is_mountpoint(target);
	/* Found mounted at start (a restart of ballastd): keep its leases. */
	if (ret == 1 && gc->configured)
		mounted_start(gc, vol->name, is_exclusive(vol), 0);
	return ret;
}

static json_t *be_gluster_status(void *ctx, const struct be_volume *vol)
{
	struct gl_ctx *gc = ctx;
	char path[GL_PATH_MAX], servers[GL_PATH_MAX];
	struct gl_name *n;
	json_t *st;
	int held, lost, stuck, conns;

	gl_vol_path(gc, vol->name, path, sizeof(path));
	gl_servers_str(gc, servers, sizeof(servers));
	gl_engine_load(gc, &stuck, &conns);
	/* Calls whose request gave up, still waiting on a server: a hang. */
	st = json_pack("{s:s, s:s, s:s, s:i, s:i}", "gluster_volume", gc->volume, "gluster_path", path[0] ? path : "/",
		       "servers", servers, "gluster_stuck_calls", stuck, "gluster_connections", conns);
	if (st && is_exclusive(vol)) {
		pthread_mutex_lock(&gc->mu);
		n = names_find(gc->mounted, vol->name);
		held = n && !n->lost;
		lost = n && n->lost;
		pthread_mutex_unlock(&gc->mu);
		json_object_set_new(st, "held_here", json_boolean(held));
		/* Mounted here, but its hold was released by hand or taken
		 * over: the mount is likely fenced. */
		json_object_set_new(st, "lost", json_boolean(lost));
	}
	return st;
}

/*
 * Every complete volume in the Gluster volume, as an array of
 * {"name","options","created_at","created_by"} (new reference), for the
 * catalog's background refresh. Bounded by the timeout.
 */
static int be_gluster_list(void *ctx, json_t **out, struct berr *err)
{
	struct gl_ctx *gc = ctx;

	*out = NULL;
	if (!gc->configured)
		return not_configured(err);
	return gl_run(gc, gl_op_list, NULL, NULL, 0, out, NULL, err);
}

/* Health checks for `ballast doctor`; bounded by the timeout. */
static json_t *be_gluster_check(void *ctx)
{
	struct gl_ctx *gc = ctx;
	json_t *checks = json_array();
	struct berr err = BERR_INIT;
	char where[GL_PATH_MAX];
	long t0 = monotonic_ms();
	int stuck, conns;

	if (!checks)
		return NULL;
	if (!gc->configured) {
		/* Compiled in but unused: nothing to check, nothing wrong. */
		backend_check_add(checks, "gluster", 1, "not configured ([gluster] servers and volume unset): unused");
		return checks;
	}
	gl_servers_str(gc, where, sizeof(where));
	if (gl_run(gc, gl_op_ping, NULL, NULL, 0, NULL, NULL, &err) == 0)
		backend_check_add(checks, "gluster volume", 1, "%s at %s answers (%ld ms)", gc->volume, where,
				  monotonic_ms() - t0);
	else
		backend_check_add(checks, "gluster volume", 0, "%s", err.msg);
	gl_engine_load(gc, &stuck, &conns);
	backend_check_add(checks, "gluster calls", stuck == 0, "%d stuck (at most %d), %d connection%s open", stuck,
			  GL_STUCK_MAX, conns, conns == 1 ? "" : "s");
	if (access(gc->sock, F_OK) == 0)
		backend_check_add(checks, "glusterd socket", 1, "%s (quota)", gc->sock);
	else
		backend_check_add(checks, "glusterd socket", 0, "%s missing: -o quota cannot be set from this host",
				  gc->sock);
	if (access("/sbin/mount.glusterfs", X_OK) == 0 || access("/usr/sbin/mount.glusterfs", X_OK) == 0)
		backend_check_add(checks, "mount.glusterfs", 1, "FUSE client present");
	else
		backend_check_add(checks, "mount.glusterfs", 0, "not found: install glusterfs-client");
	if (access(gc->helper.path, X_OK) == 0)
		backend_check_add(checks, "mount helper", 1, "%s", gc->helper.path);
	else
		backend_check_add(checks, "mount helper", 0, "%s: %s", gc->helper.path, strerror(errno));
	return checks;
}

static int be_gluster_holder(void *ctx, const struct be_volume *vol, json_t **out, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	int ret;

	*out = NULL;
	if (!gc->configured)
		return not_configured(err);
	if (!is_exclusive(vol))
		return 0;
	ret = gl_run(gc, gl_op_holder, vol->name, NULL, 0, out, NULL, err);
	if (ret == 0 && *out) {
		struct gl_holder h;

		gl_holder_parse(*out, &h);
		json_object_set_new(*out, "expired", json_boolean(gl_holder_expired(&h, time(NULL))));
	}
	return ret;
}

static void be_gluster_counters(void *ctx, struct be_counters *out)
{
	struct gl_ctx *gc = ctx;
	int stuck, conns;

	out->lease_renewals = atomic_load(&gc->lease_renewals);
	gl_engine_load(gc, &stuck, &conns);
	out->stuck_calls = stuck > 0 ? (unsigned long)stuck : 0;
}

/* Break another host's hold by hand: fence that host, then drop its
 * record (only if it is still the hold fenced: its host may have renewed
 * it meanwhile, but not taken it anew). */
static int be_gluster_release(void *ctx, const struct be_volume *vol, int force, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	json_t *rec = NULL, *in;
	struct gl_holder h;
	enum gl_release what;
	int ret, mounted;

	if (!gc->configured)
		return not_configured(err);
	if (!is_exclusive(vol))
		return berr_set(err, -EINVAL, "volume %s is not exclusive: nobody holds it", vol->name);
	ret = gl_run(gc, gl_op_holder, vol->name, NULL, 0, &rec, NULL, err);
	if (ret < 0 || !rec)
		return ret;
	pthread_mutex_lock(&gc->mu);
	mounted = names_has(gc->mounted, vol->name);
	pthread_mutex_unlock(&gc->mu);
	gl_holder_parse(rec, &h);
	what = gl_release_decide(&h, gc->host_id, mounted, force, time(NULL));
	if (what == GL_RELEASE_MOUNTED_HERE) {
		ret = berr_set(err, -EBUSY, "volume %s is held by this host (%s): unmount it instead", vol->name,
			       gc->host_id);
	} else if (what == GL_RELEASE_FRESH) {
		ret = berr_set(err, -EBUSY,
			       "volume %s is held by %s until %s; its lease is fresh: --force fences that host and "
			       "breaks its hold",
			       vol->name, h.host, h.expires);
	} else {
		log_warnx("volume %s: releasing the hold of %s by hand%s", vol->name, h.host, force ? " (forced)" : "");
		ret = what == GL_RELEASE_DROP ? 0 : gl_fence_host(gc, vol->name, rec, err);
		if (ret == 0 && what != GL_RELEASE_DROP)
			CRASH_POINT("gluster.release.after-fence");
		in = ret == 0 ? json_pack("{s:O}", "expect", rec) : NULL;
		if (in)
			ret = gl_run(gc, gl_op_unhold, vol->name, in, 0, NULL, NULL, err);
		json_decref(in);
	}
	json_decref(rec);
	return ret;
}

static int be_gluster_lookup(void *ctx, const char *name, json_t **item, struct berr *err)
{
	struct gl_ctx *gc = ctx;
	int ret;

	*item = NULL;
	if (!gc->configured)
		return 0;
	ret = gl_run(gc, gl_op_lookup, name, NULL, 0, item, NULL, err);
	return ret < 0 ? ret : *item ? 1 : 0;
}

static int be_gluster_configured(void *ctx)
{
	return ((struct gl_ctx *)ctx)->configured;
}

const struct backend_ops be_gluster_ops = {
	.name = "gluster",
	.caps = BE_CAP_GLOBAL,
	.options = gl_opts,
	.no_snapshots = GL_NO_SNAPSHOTS,
	.init = be_gluster_init,
	.fini = be_gluster_fini,
	.configured = be_gluster_configured,
	.validate_opts = be_gluster_validate_opts,
	.create = be_gluster_create,
	.create_copy = be_gluster_create_copy,
	.config_keys = gluster_config_keys,
	.remove_check = be_gluster_remove_check,
	.remove = be_gluster_remove,
	.mount = be_gluster_mount,
	.unmount = be_gluster_unmount,
	.is_mounted = be_gluster_is_mounted,
	.status = be_gluster_status,
	.list = be_gluster_list,
	.check = be_gluster_check,
	.holder = be_gluster_holder,
	.release = be_gluster_release,
	.counters = be_gluster_counters,
	.lookup = be_gluster_lookup,
};
