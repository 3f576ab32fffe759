/*
 * common.h - what every backend shares: running mount.ballast (argv only, no
 * shell, a time bound, its one stderr line carried back as the user's
 * error), and the owner and mode of a volume's root from the Create options
 * uid, gid and mode.
 */
#ifndef BALLAST_BACKEND_COMMON_H
#define BALLAST_BACKEND_COMMON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "errors.h"
#include "run.h"

struct helper {
	char path[4096];      /* mount.ballast */
	char state_dir[4096]; /* passed as --state-dir */
	int timeout_s;
};

/*
 * Run `<path> --state-dir <state_dir> args...` (args NULL-terminated).
 * Returns 0 on exit status 0; otherwise -EIO (or -ETIMEDOUT when killed
 * after timeout_s, -EEXIST for exit status 3: the source holds a file
 * system) with the helper's last stderr line in err.
 */
int helper_run(const struct helper *h, const char *const *args, struct berr *err);

/* helper_run, and on success its last line of output into out (the
 * device `mount.ballast map` printed). */
int helper_run_out(const struct helper *h, const char *const *args, char *out, size_t outlen, struct berr *err);

/* A file system held frozen by `mount.ballast freeze`, until helper_thaw. */
struct frozen {
	struct run_child child;
	char target[4096];
};

/* Freeze the file system mounted at target (under the state dir's
 * mounts/) for at most max_s seconds: 0 once it is frozen, or -errno with
 * the helper's reason. If ballastd dies meanwhile, the helper thaws it. */
int helper_freeze(const struct helper *h, const char *target, int max_s, struct frozen *f, struct berr *err);

/* Thaw what helper_freeze froze. 0, or -ETIMEDOUT (or -EIO) when it had
 * been thawed already by its bound: then whatever was taken meanwhile was
 * not covered by the freeze. */
int helper_thaw(const struct helper *h, struct frozen *f, struct berr *err);

struct ballast_config;

/* Fill h from the config: [ballast] helper (default: mount.ballast next to
 * the running ballastd, else /sbin/mount.ballast), state_dir and
 * helper_timeout. */
int helper_init(struct helper *h, const struct ballast_config *cfg, struct berr *err);

#define VOL_DEFAULT_MODE 0755

struct vol_perms {
	uint32_t uid, gid;
	mode_t mode;
};

/* Parse options uid, gid and mode (defaults 0, 0, 0755) into *p. 0 or
 * -EINVAL with the reason. */
int parse_perms(const json_t *opts, struct vol_perms *p, struct berr *err);

/* Give dir that owner and mode. 0 or -errno with the reason. */
int apply_perms(const char *dir, const struct vol_perms *p, struct berr *err);

/* A Remove of volume name refused while it has snapshots (snaps: the
 * array of {"name"} that the backend's snapshots op gives): -EBUSY naming
 * them, else 0. */
int refuse_snapshots(const char *name, const json_t *snaps, struct berr *err);

/*
 * Option from=VOLUME[@SNAPSHOT] of a backend that copies its own volumes
 * (create_copy): the names checked; a snapshot only when snapshots, else
 * refused with no_snap; none of inherits (NULL-terminated) beside it, as
 * a copy has its source's. 1 when opts has from, 0 when not, or -EINVAL.
 */
int validate_copy_from(const json_t *opts, int snapshots, const char *no_snap, const char *const *inherits,
		       struct berr *err);

/*
 * Options mkfs-options and mount-options of a volume with a file system
 * (rbd, a sized local volume): what could never pass mount.ballast's own
 * whitelist (too long; a character none of its options has) is refused
 * here, naming the option; mount.ballast checks the rest when the volume
 * is formatted and mounted once at Create. 0 or -EINVAL.
 */
int validate_fs_options(const json_t *opts, struct berr *err);

#endif
