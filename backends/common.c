/*
 * common.c - what every backend shares (see common.h): running
 * mount.ballast, and the owner and mode of a volume's root.
 */
#define LOG_TAG "helper"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "run.h"
#include "timeutil.h"
#include "validate.h"

#define HELPER_ARGS_MAX 24
#define HELPER_EXIT_HAS_FS 3

int helper_run(const struct helper *h, const char *const *args, struct berr *err)
{
	return helper_run_out(h, args, NULL, 0, err);
}

int helper_run_out(const struct helper *h, const char *const *args, char *out, size_t outlen, struct berr *err)
{
	const char *argv[HELPER_ARGS_MAX + 4];
	char line[4 * BERR_MSG_MAX]; /* longer than a message: berr_set marks a cut */
	int argc = 0, status = 0, timeout;
	int ret;

	argv[argc++] = h->path;
	argv[argc++] = "--state-dir";
	argv[argc++] = h->state_dir;
	for (int i = 0; args[i]; i++) {
		if (argc >= HELPER_ARGS_MAX + 3)
			return berr_set(err, -E2BIG, "internal error: too many helper arguments");
		argv[argc++] = args[i];
	}
	argv[argc] = NULL;

	/* Bounded by the helper's timeout and by what is left of the
	 * request's own time (deadline_cap_s). */
	timeout = deadline_cap_s(h->timeout_s);
	if (timeout == 0)
		return berr_set(err, -ETIMEDOUT, "mount.ballast %s not started: the request's time is up", args[0]);
	ret = run_bounded(argv, timeout, &status, line, sizeof(line));
	if (ret == -ETIMEDOUT) {
		log_errx("%s %s timed out after %d s", h->path, args[0], timeout);
		return berr_set(err, -ETIMEDOUT, "mount.ballast %s did not finish within %d s%s", args[0], timeout,
				timeout < h->timeout_s ? " (what was left of the request's time)" : "");
	}
	if (ret < 0)
		return berr_set(err, ret, "cannot run %s: %s", h->path, strerror(-ret));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (out)
			snprintf(out, outlen, "%s", line);
		return 0;
	}
	log_warnx("mount.ballast %s failed: %s", args[0], line[0] ? line : "(no message)");
	if (WIFEXITED(status) && WEXITSTATUS(status) == HELPER_EXIT_HAS_FS)
		return berr_set(err, -EEXIST, "%s", line);
	if (line[0])
		return berr_set(err, -EIO, "%s", line);
	if (WIFSIGNALED(status))
		return berr_set(err, -EIO, "mount.ballast %s was killed by signal %d", args[0], WTERMSIG(status));
	return berr_set(err, -EIO, "mount.ballast %s failed with status %d", args[0], WEXITSTATUS(status));
}

int helper_freeze(const struct helper *h, const char *target, int max_s, struct frozen *f, struct berr *err)
{
	char max[16], line[4 * BERR_MSG_MAX];
	const char *argv[] = { h->path, "--state-dir", h->state_dir, "freeze", "--timeout", max, target, NULL };
	int timeout = deadline_cap_s(h->timeout_s), ret;

	if (timeout == 0)
		return berr_set(err, -ETIMEDOUT, "mount.ballast freeze not started: the request's time is up");
	snprintf(max, sizeof(max), "%d", max_s);
	snprintf(f->target, sizeof(f->target), "%s", target);
	ret = run_start(argv, timeout, &f->child, line, sizeof(line));
	if (ret == 0 && strcmp(line, "frozen") == 0)
		return 0;
	if (ret == 0) { /* not what freeze says: let it go */
		struct berr ignored = BERR_INIT;

		helper_thaw(h, f, &ignored);
		return berr_set(err, -EIO, "mount.ballast freeze said \"%.80s\", not \"frozen\"", line);
	}
	if (ret == -ETIMEDOUT)
		return berr_set(err, ret, "mount.ballast freeze did not freeze %s within %d s", target, timeout);
	if (ret == -EIO)
		return berr_set(err, ret, "%s", line[0] ? line : "mount.ballast freeze failed");
	return berr_set(err, ret, "cannot run %s: %s", h->path, strerror(-ret));
}

int helper_thaw(const struct helper *h, struct frozen *f, struct berr *err)
{
	char line[4 * BERR_MSG_MAX] = "";
	int status = 0, ret;

	ret = run_finish(&f->child, h->timeout_s, &status, line, sizeof(line));
	if (ret < 0) {
		log_errx("mount.ballast freeze of %s did not end within %d s", f->target, h->timeout_s);
		return berr_set(err, ret, "mount.ballast freeze of %s did not end within %d s", f->target,
				h->timeout_s);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	log_warnx("mount.ballast freeze of %s: %s", f->target, line[0] ? line : "failed");
	return berr_set(err, -ETIMEDOUT, "%s", line[0] ? line : "mount.ballast freeze failed");
}

int helper_init(struct helper *h, const struct ballast_config *cfg, struct berr *err)
{
	const char *path = config_get(cfg, "ballast", "helper");
	unsigned long timeout;
	char self[4096];
	ssize_t n;
	int ret;

	ret = config_get_uint(cfg, "ballast", "helper_timeout", &timeout, err);
	if (ret < 0)
		return ret;
	h->timeout_s = (int)timeout; /* at most 3600: the key's range */
	snprintf(h->state_dir, sizeof(h->state_dir), "%s", config_get(cfg, "ballast", "state_dir"));
	if (path) {
		snprintf(h->path, sizeof(h->path), "%s", path);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			snprintf(slash + 1, sizeof(self) - (size_t)(slash + 1 - self), "mount.ballast");
			if (access(self, X_OK) == 0) {
				snprintf(h->path, sizeof(h->path), "%s", self);
				return 0;
			}
		}
	}
	snprintf(h->path, sizeof(h->path), "/sbin/mount.ballast");
	return 0;
}

int parse_perms(const json_t *opts, struct vol_perms *p, struct berr *err)
{
	const char *v;
	int ret = 0;

	p->uid = 0;
	p->gid = 0;
	p->mode = VOL_DEFAULT_MODE;
	if ((v = opt_get(opts, "uid")))
		ret = parse_id("uid", v, &p->uid, err);
	if (!ret && (v = opt_get(opts, "gid")))
		ret = parse_id("gid", v, &p->gid, err);
	if (!ret && (v = opt_get(opts, "mode")))
		ret = parse_mode(v, &p->mode, err);
	return ret;
}

int apply_perms(const char *dir, const struct vol_perms *p, struct berr *err)
{
	if (chown(dir, p->uid, p->gid) < 0 || chmod(dir, p->mode) < 0)
		return berr_set(err, -errno, "cannot set owner and mode of %s: %s", dir, strerror(errno));
	return 0;
}

int validate_copy_from(const json_t *opts, int snapshots, const char *no_snap, const char *const *inherits,
		       struct berr *err)
{
	const char *from = opt_get(opts, "from"), *at;
	struct berr nerr = BERR_INIT;
	char src[VOLUME_NAME_MAX + 1];

	if (!from)
		return 0;
	at = strchr(from, '@');
	if (at && !snapshots)
		return berr_set(err, -EINVAL, "from=%.60s: %s", from, no_snap);
	snprintf(src, sizeof(src), "%.*s", at ? (int)(at - from) : (int)strlen(from), from);
	if ((at && (size_t)(at - from) > VOLUME_NAME_MAX) || validate_name(src, &nerr) < 0 ||
	    (at && validate_name(at + 1, &nerr) < 0))
		return berr_set(err, -EINVAL, "from=%.60s: invalid volume or snapshot name (%s)", from, nerr.msg);
	for (int i = 0; inherits[i]; i++)
		if (opt_get(opts, inherits[i]))
			return berr_set(err, -EINVAL,
					"%s cannot be given with from=: a copy has the %s of the volume it copies",
					inherits[i], inherits[i]);
	return 1;
}

int validate_fs_options(const json_t *opts, struct berr *err)
{
	const char *v;

	if ((v = opt_get(opts, "mkfs-options")) &&
	    (strlen(v) > 200 ||
	     strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=.:^-, ") != strlen(v)))
		return berr_set(err, -EINVAL, "invalid mkfs-options \"%.60s\"", v);
	if ((v = opt_get(opts, "mount-options")) &&
	    (strlen(v) > 200 ||
	     strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=.,-") != strlen(v)))
		return berr_set(err, -EINVAL, "invalid mount-options \"%.60s\"", v);
	return 0;
}

int refuse_snapshots(const char *name, const json_t *snaps, struct berr *err)
{
	char names[512] = "";
	const json_t *s;
	size_t i, at = 0;

	if (json_array_size(snaps) == 0)
		return 0;
	json_array_foreach (snaps, i, s) {
		int n = snprintf(names + at, sizeof(names) - at, "%s%s", i ? ", " : "",
				 json_string_value(json_object_get(s, "name")));

		if (n < 0 || (size_t)n >= sizeof(names) - at)
			break;
		at += (size_t)n;
	}
	return berr_set(err, -EBUSY,
			"volume %s has %zu snapshot%s (%s); remove them first (ballast snapshot rm %s --all)", name,
			json_array_size(snaps), json_array_size(snaps) == 1 ? "" : "s", names, name);
}
